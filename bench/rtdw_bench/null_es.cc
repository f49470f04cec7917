#include "bench/rtdw_bench/null_es.h"

#include "absl/strings/str_cat.h"
#include "connectors/es/bulk.h"
#include "httplib.h"
#include "rapidjson/stringbuffer.h"
#include "rapidjson/writer.h"

namespace rtdw::bench {

absl::StatusOr<std::unique_ptr<NullEs>> NullEs::Start() {
  auto es = std::unique_ptr<NullEs>(new NullEs);
  es->server_ = std::make_unique<httplib::Server>();
  httplib::Server& s = *es->server_;
  NullEs* self = es.get();
  auto reply = [](httplib::Response& res, const std::string& body) {
    res.set_header("X-Elastic-Product", "Elasticsearch");
    res.set_content(body, "application/json");
  };
  s.Get("/", [reply](const httplib::Request&, httplib::Response& res) {
    reply(res,
          "{\"name\":\"null-es\",\"cluster_name\":\"null-es\",\"cluster_uuid\":\"null\","
          "\"version\":{\"number\":\"8.11.0\",\"build_flavor\":\"default\"},"
          "\"tagline\":\"You Know, for Search\"}");
  });
  // rtdwd's start-up check of a fresh store asks which of the job's indices exist: none here.
  s.Get(R"(/_cat/indices(/.*)?)",
        [reply](const httplib::Request&, httplib::Response& res) { reply(res, "[]"); });
  s.Put(R"(/_index_template/.*)", [reply](const httplib::Request&, httplib::Response& res) {
    reply(res, "{\"acknowledged\":true}");
  });
  s.Post(R"(/(.*/)?_bulk)", [reply, self](const httplib::Request& req, httplib::Response& res) {
    auto actions = ParseBulkBody(req.body);
    if (!actions.ok()) {
      res.status = 400;
      reply(res, "{\"error\":{\"type\":\"parse_exception\"},\"status\":400}");
      return;
    }
    rapidjson::StringBuffer buf;
    rapidjson::Writer<rapidjson::StringBuffer> w(buf);
    w.StartObject();
    w.Key("took");
    w.Int(0);
    w.Key("errors");
    w.Bool(false);
    w.Key("items");
    w.StartArray();
    for (const auto& a : *actions) {
      w.StartObject();
      const std::string_view op = BulkOpName(a.op);
      w.Key(op.data(), static_cast<rapidjson::SizeType>(op.size()));
      w.StartObject();
      w.Key("_index");
      w.String(a.index.c_str(), static_cast<rapidjson::SizeType>(a.index.size()));
      w.Key("_id");
      w.String(a.id.c_str(), static_cast<rapidjson::SizeType>(a.id.size()));
      w.Key("_version");
      w.Int(1);
      w.Key("result");
      w.String(a.op == BulkOp::kDelete ? "deleted" : "created");
      w.Key("status");
      w.Int(a.op == BulkOp::kDelete ? 200 : 201);
      w.EndObject();
      w.EndObject();
    }
    w.EndArray();
    w.EndObject();
    self->documents_ += actions->size();
    reply(res, std::string(buf.GetString(), buf.GetSize()));
  });
  s.Post(R"(/.*)", [reply](const httplib::Request&, httplib::Response& res) { reply(res, "{}"); });
  es->port_ = s.bind_to_any_port("127.0.0.1");
  if (es->port_ <= 0) return absl::UnavailableError("null ES: cannot listen");
  es->thread_ = std::thread([self] { self->server_->listen_after_bind(); });
  return es;
}

NullEs::~NullEs() {
  if (server_) server_->stop();
  if (thread_.joinable()) thread_.join();
}

std::string NullEs::url() const { return absl::StrCat("http://127.0.0.1:", port_); }

}  // namespace rtdw::bench
