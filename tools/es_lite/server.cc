#include "tools/es_lite/server.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <map>
#include <thread>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "httplib.h"
#include "rapidjson/prettywriter.h"
#include "tools/es_lite/bulk_request.h"
#include "tools/es_lite/search.h"

namespace rtdw::eslite {
namespace {

using Reply = EsLiteServer::Reply;
using Clock = std::chrono::steady_clock;

Reply JsonReply(int status, std::string body) {
  Reply r;
  r.status = status;
  r.body = std::move(body);
  return r;
}

Reply ErrorReply(const EsError& e) { return JsonReply(e.status, e.Body()); }

Reply SimpleError(int status, const std::string& message) {
  rapidjson::StringBuffer buf;
  Writer w(buf);
  w.StartObject();
  w.Key("error");
  WriteStr(w, message);
  w.Key("status");
  w.Int(status);
  w.EndObject();
  return JsonReply(status, std::string(buf.GetString(), buf.GetSize()));
}

Reply NoHandler(const httplib::Request& req) {
  return SimpleError(
      400, absl::StrCat("no handler found for uri [", req.path, "] and method [", req.method, "]"));
}

Reply BadMethod(const httplib::Request& req, absl::string_view allowed) {
  return SimpleError(
      405, absl::StrCat("Incorrect HTTP method for uri [", req.path, "] and method [", req.method,
                        "], allowed: [", allowed, "]"));
}

std::string Done(Writer&, rapidjson::StringBuffer& buf) {
  return std::string(buf.GetString(), buf.GetSize());
}

bool IsGetOrHead(const httplib::Request& req) {
  return req.method == "GET" || req.method == "HEAD";
}

std::optional<EsError> CheckParams(const httplib::Request& req,
                                   std::initializer_list<absl::string_view> allowed) {
  static constexpr absl::string_view kCommon[] = {"pretty", "human", "error_trace", "timeout",
                                                  "master_timeout"};
  for (const auto& [key, value] : req.params) {
    if (key == "filter_path") return Unsupported("[filter_path]");
    if (std::find(std::begin(kCommon), std::end(kCommon), key) != std::end(kCommon)) continue;
    if (std::find(allowed.begin(), allowed.end(), key) != allowed.end()) continue;
    return IllegalArgument(
        absl::StrCat("request [", req.path, "] contains unrecognized parameter: [", key, "]"));
  }
  return std::nullopt;
}

bool ParamBool(const httplib::Request& req, const std::string& key, bool def) {
  if (!req.has_param(key.c_str())) return def;
  std::string v = req.get_param_value(key.c_str());
  return v.empty() || v == "true";
}

// ?refresh= of a write (ES's WriteRequest.RefreshPolicy.parse): "" and "true" refresh the touched
// indices before answering, "wait_for" waits for a refresh to show the write.
enum class RefreshPolicy { kNone, kImmediate, kWaitFor };

Result<RefreshPolicy> ParseRefresh(const httplib::Request& req) {
  if (!req.has_param("refresh")) return RefreshPolicy::kNone;
  std::string v = req.get_param_value("refresh");
  if (v.empty() || v == "true") return RefreshPolicy::kImmediate;
  if (v == "false") return RefreshPolicy::kNone;
  if (v == "wait_for") return RefreshPolicy::kWaitFor;
  return IllegalArgument(absl::StrCat("Unknown value for refresh: [", v, "]."));
}

// ?version= and ?version_type= of a single-document write, validated as ES does.
std::optional<EsError> ParseVersionParams(const httplib::Request& req, OpType type, WriteOp* op) {
  if (req.has_param("version")) {
    std::string v = req.get_param_value("version");
    int64_t n = 0;
    if (!absl::SimpleAtoi(v, &n)) {
      return IllegalArgument(
          absl::StrCat("Failed to parse long parameter [version] with value [", v, "]"));
    }
    op->version = n;
  }
  if (req.has_param("version_type")) {
    auto t = ParseVersionType(req.get_param_value("version_type"));
    if (!t.ok()) return t.error();
    op->version_type = t.value();
  }
  auto problems = ValidateVersioning(type, op->version, op->version_type);
  if (!problems.empty()) return ValidationFailed(problems);
  return std::nullopt;
}

// Parses the body as JSON; *present is false for an empty body.
std::optional<EsError> ParseBody(const httplib::Request& req, rapidjson::Document* doc,
                                 bool* present) {
  *present = false;
  if (absl::StripAsciiWhitespace(req.body).empty()) return std::nullopt;
  if (auto err = ParseJson(req.body, doc)) {
    EsError e = BadRequest("parse_exception", absl::StrCat("Failed to parse request body: ", *err));
    e.caused_by_type = "json_parse_exception";
    e.caused_by_reason = *err;
    return e;
  }
  *present = true;
  return std::nullopt;
}

void WriteShards(Writer& w, int total, int successful) {
  w.Key("_shards");
  w.StartObject();
  w.Key("total");
  w.Int(total);
  w.Key("successful");
  w.Int(successful);
  w.Key("failed");
  w.Int(0);
  w.EndObject();
}

std::string HumanBytes(uint64_t b) {
  const char* units[] = {"b", "kb", "mb", "gb", "tb"};
  double v = static_cast<double>(b);
  int u = 0;
  while (v >= 1024 && u < 4) {
    v /= 1024;
    ++u;
  }
  if (u == 0) return absl::StrCat(b, "b");
  char buf[32];
  snprintf(buf, sizeof(buf), "%.1f%s", v, units[u]);
  return buf;
}

// Writes "index.a.b": "v" settings as nested objects.
void WriteNestedSettings(Writer& w, const std::map<std::string, std::string>& flat) {
  // Build a tree of maps first.
  struct Node {
    std::map<std::string, Node> children;
    std::optional<std::string> value;
  };
  Node root;
  for (const auto& [k, v] : flat) {
    Node* n = &root;
    for (absl::string_view part : absl::StrSplit(k, '.')) n = &n->children[std::string(part)];
    n->value = v;
  }
  std::function<void(const Node&)> write = [&](const Node& n) {
    if (n.value && n.children.empty()) {
      WriteStr(w, *n.value);
      return;
    }
    w.StartObject();
    for (const auto& [k, c] : n.children) {
      WriteKey(w, k);
      write(c);
    }
    w.EndObject();
  };
  write(root);
}

// Shuts the socket of this request's connection down, so the client gets no answer.
bool AbortConnection(const httplib::Request& req) {
  DIR* dir = opendir("/proc/self/fd");
  if (dir == nullptr) return false;
  bool done = false;
  while (dirent* e = readdir(dir)) {
    int fd = 0;
    if (!absl::SimpleAtoi(e->d_name, &fd) || fd < 3 || fd == dirfd(dir)) continue;
    sockaddr_storage peer{};
    socklen_t len = sizeof(peer);
    if (getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &len) != 0) continue;
    int port = -1;
    char host[INET6_ADDRSTRLEN] = {0};
    if (peer.ss_family == AF_INET) {
      auto* in = reinterpret_cast<sockaddr_in*>(&peer);
      port = ntohs(in->sin_port);
      inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
    } else if (peer.ss_family == AF_INET6) {
      auto* in6 = reinterpret_cast<sockaddr_in6*>(&peer);
      port = ntohs(in6->sin6_port);
      inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
    } else {
      continue;
    }
    if (port != req.remote_port || req.remote_addr != host) continue;
    if (req.local_port > 0) {
      sockaddr_storage self{};
      socklen_t slen = sizeof(self);
      if (getsockname(fd, reinterpret_cast<sockaddr*>(&self), &slen) == 0) {
        int local = self.ss_family == AF_INET
                        ? ntohs(reinterpret_cast<sockaddr_in*>(&self)->sin_port)
                        : ntohs(reinterpret_cast<sockaddr_in6*>(&self)->sin6_port);
        if (local != req.local_port) continue;
      }
    }
    shutdown(fd, SHUT_RDWR);
    done = true;
    break;
  }
  closedir(dir);
  return done;
}

std::string Pretty(const std::string& body) {
  rapidjson::Document doc;
  if (ParseJson(body, &doc)) return body;
  rapidjson::StringBuffer buf;
  rapidjson::PrettyWriter<rapidjson::StringBuffer> w(buf);
  w.SetIndent(' ', 2);
  doc.Accept(w);
  return std::string(buf.GetString(), buf.GetSize()) + "\n";
}

bool HasProductHeader(Identity id) { return id == Identity::kEs8 || id == Identity::kEs7; }
bool HasDocType(Identity id) {
  return id == Identity::kEs7 || id == Identity::kEs710 || id == Identity::kEs6;
}

// ---------------------------------------------------------------- the API

class Api {
 public:
  Api(Store* store, Faults* faults, const ServerOptions& options)
      : store_(store), faults_(faults), options_(options) {}

  Reply Route(const httplib::Request& req) {
    std::vector<std::string> seg = absl::StrSplit(req.path, '/', absl::SkipEmpty());
    const std::string& m = req.method;
    if (seg.empty()) {
      if (!IsGetOrHead(req)) return BadMethod(req, "GET, HEAD");
      return Info();
    }
    const std::string& s0 = seg[0];
    if (s0 == "_rtdw" && seg.size() == 2 && seg[1] == "faults") return FaultsApi(req);
    if (s0 == "_bulk" && seg.size() == 1) {
      if (m != "POST" && m != "PUT") return BadMethod(req, "POST, PUT");
      return Bulk(req, "");
    }
    if ((s0 == "_search" || s0 == "_count" || s0 == "_refresh" || s0 == "_mget") &&
        seg.size() == 1) {
      return IndexAction(req, "_all", s0);
    }
    if (s0 == "_cat" && seg.size() >= 2 && seg[1] == "indices" && seg.size() <= 3) {
      if (!IsGetOrHead(req)) return BadMethod(req, "GET");
      return CatIndices(req, seg.size() == 3 ? seg[2] : "_all");
    }
    if (s0 == "_cluster" && seg.size() >= 2 && seg[1] == "health" && seg.size() <= 3) {
      if (!IsGetOrHead(req)) return BadMethod(req, "GET");
      return ClusterHealth(req, seg.size() == 3 ? seg[2] : "_all");
    }
    if (s0 == "_index_template" && seg.size() <= 2) {
      return IndexTemplate(req, seg.size() == 2 ? seg[1] : "");
    }
    if (s0 == "_mapping" && seg.size() == 1) {
      if (!IsGetOrHead(req)) return BadMethod(req, "GET");
      return GetIndex(req, "_all", "mappings");
    }
    if (s0[0] == '_') return NoHandler(req);
    // /<index>...
    if (seg.size() == 1) return IndexCrud(req, s0);
    const std::string& s1 = seg[1];
    if (seg.size() == 2) {
      if (s1 == "_bulk") {
        if (m != "POST" && m != "PUT") return BadMethod(req, "POST, PUT");
        return Bulk(req, s0);
      }
      if (s1 == "_search" || s1 == "_count" || s1 == "_refresh" || s1 == "_mget") {
        return IndexAction(req, s0, s1);
      }
      if (s1 == "_settings" && m == "PUT") return PutSettings(req, s0);
      if (s1 == "_mapping" || s1 == "_settings") {
        if (!IsGetOrHead(req)) return BadMethod(req, s1 == "_settings" ? "GET, PUT" : "GET");
        return GetIndex(req, s0, s1 == "_mapping" ? "mappings" : "settings");
      }
      if (s1 == "_doc") {
        if (m != "POST") return BadMethod(req, "POST");
        return WriteDoc(req, s0, Store::NewId(), OpType::kCreate);
      }
      return NoHandler(req);
    }
    if (seg.size() == 3) {
      const std::string& id = seg[2];
      if (s1 == "_doc") {
        if (IsGetOrHead(req)) return GetDoc(req, s0, id, false);
        if (m == "PUT" || m == "POST") {
          bool create = req.get_param_value("op_type") == "create";
          return WriteDoc(req, s0, id, create ? OpType::kCreate : OpType::kIndex);
        }
        if (m == "DELETE") return DeleteDoc(req, s0, id);
        return BadMethod(req, "DELETE, GET, HEAD, POST, PUT");
      }
      if (s1 == "_create") {
        if (m != "PUT" && m != "POST") return BadMethod(req, "POST, PUT");
        return WriteDoc(req, s0, id, OpType::kCreate);
      }
      if (s1 == "_update") {
        if (m != "POST") return BadMethod(req, "POST");
        return UpdateDoc(req, s0, id);
      }
      if (s1 == "_source") {
        if (!IsGetOrHead(req)) return BadMethod(req, "GET, HEAD");
        return GetDoc(req, s0, id, true);
      }
    }
    return NoHandler(req);
  }

 private:
  // ------------------------------------------------------------ GET /
  Reply Info() {
    rapidjson::StringBuffer buf;
    Writer w(buf);
    if (options_.identity != Identity::kEs8) return InfoAs(options_.identity);
    w.StartObject();
    w.Key("name");
    WriteStr(w, options_.node_name);
    w.Key("cluster_name");
    WriteStr(w, options_.cluster_name);
    w.Key("cluster_uuid");
    WriteStr(w, store_->cluster_uuid());
    w.Key("version");
    w.StartObject();
    w.Key("number");
    w.String("8.11.0");
    w.Key("build_flavor");
    w.String("default");
    w.Key("build_type");
    w.String("rtdw-es-lite");
    w.Key("build_hash");
    w.String("0000000000000000000000000000000000000000");
    w.Key("build_date");
    w.String("2023-11-04T10:04:57.184859352Z");
    w.Key("build_snapshot");
    w.Bool(false);
    w.Key("lucene_version");
    w.String("9.8.0");
    w.Key("minimum_wire_compatibility_version");
    w.String("7.17.0");
    w.Key("minimum_index_compatibility_version");
    w.String("7.0.0");
    w.EndObject();
    w.Key("tagline");
    w.String("You Know, for Search");
    w.EndObject();
    return JsonReply(200, Done(w, buf));
  }

  // GET / as the other identities answer it (versions of late releases of each line).
  Reply InfoAs(Identity id) {
    struct Shape {
      const char* number;
      const char* lucene;
      const char* wire;
      const char* index;
      bool opensearch;
    };
    Shape shape{};
    switch (id) {
      case Identity::kEs7:
        shape = {"7.17.15", "8.11.1", "6.8.0", "6.0.0-beta1", false};
        break;
      case Identity::kEs710:
        shape = {"7.10.2", "8.7.0", "6.8.0", "6.0.0-beta1", false};
        break;
      case Identity::kOpenSearch2:
        shape = {"2.11.1", "9.7.0", "7.10.0", "7.0.0", true};
        break;
      case Identity::kOpenSearch1:
        shape = {"1.3.14", "8.10.1", "6.8.0", "6.0.0-beta1", true};
        break;
      case Identity::kEs6:
        shape = {"6.8.23", "7.7.3", "5.6.0", "5.0.0", false};
        break;
      case Identity::kOther:
        // Some other HTTP service answering JSON on GET /.
        return JsonReply(200,
                         R"({"status":"ok","service":"not-a-search-engine","version":"3.1.4"})");
      case Identity::kEs8:
        break;
    }
    rapidjson::StringBuffer buf;
    Writer w(buf);
    w.StartObject();
    w.Key("name");
    WriteStr(w, options_.node_name);
    w.Key("cluster_name");
    WriteStr(w, options_.cluster_name);
    w.Key("cluster_uuid");
    WriteStr(w, store_->cluster_uuid());
    w.Key("version");
    w.StartObject();
    if (shape.opensearch) {
      w.Key("distribution");
      w.String("opensearch");
    }
    w.Key("number");
    w.String(shape.number);
    if (!shape.opensearch) {
      w.Key("build_flavor");
      w.String("default");
    }
    w.Key("build_type");
    w.String("tar");
    w.Key("build_hash");
    w.String("0000000000000000000000000000000000000000");
    w.Key("build_date");
    w.String("2023-11-04T10:04:57.184859352Z");
    w.Key("build_snapshot");
    w.Bool(false);
    w.Key("lucene_version");
    w.String(shape.lucene);
    w.Key("minimum_wire_compatibility_version");
    w.String(shape.wire);
    w.Key("minimum_index_compatibility_version");
    w.String(shape.index);
    w.EndObject();
    w.Key("tagline");
    w.String(shape.opensearch ? "The OpenSearch Project: https://opensearch.org/"
                              : "You Know, for Search");
    w.EndObject();
    return JsonReply(200, Done(w, buf));
  }

  // ------------------------------------------------------------ faults
  Reply FaultsApi(const httplib::Request& req) {
    if (req.method == "DELETE") {
      faults_->Reset();
      return JsonReply(200, faults_->ToJson());
    }
    if (req.method == "POST" || req.method == "PUT") {
      rapidjson::Document body;
      bool present = false;
      if (auto e = ParseBody(req, &body, &present)) return ErrorReply(*e);
      if (!present) return ErrorReply(BadRequest("parse_exception", "request body is required"));
      if (auto e = faults_->Update(body)) return ErrorReply(*e);
      return JsonReply(200, faults_->ToJson());
    }
    if (IsGetOrHead(req)) return JsonReply(200, faults_->ToJson());
    return BadMethod(req, "DELETE, GET, POST, PUT");
  }

  // ------------------------------------------------------------ _bulk
  Reply Bulk(const httplib::Request& req, const std::string& default_index) {
    const auto started = Clock::now();
    if (auto e = CheckParams(req, {"refresh", "wait_for_active_shards", "routing", "require_alias",
                                   "_source", "_source_includes", "_source_excludes"})) {
      return ErrorReply(*e);
    }
    auto refresh = ParseRefresh(req);
    if (!refresh.ok()) return ErrorReply(refresh.error());
    std::vector<WriteOp> ops;
    if (auto e = ParseBulkRequest(req.body, default_index, &ops)) return ErrorReply(*e);
    // Fault injection: some items are refused as by a full write queue.
    double p429 = faults_->config().bulk_item_429_fraction;
    if (p429 > 0) {
      for (auto& op : ops) {
        if (!op.error && faults_->Roll(p429)) {
          EsError e;
          e.status = 429;
          e.type = "es_rejected_execution_exception";
          e.reason =
              "rejected execution of primary operation [rtdw-es-lite fault injection: "
              "write queue full]";
          op.error = e;
          faults_->counters().bulk_items_429++;
        }
      }
    }
    auto results = store_->Write(ops);
    if (!results.ok()) return ErrorReply(results.error());
    const bool forced = ApplyRefresh(refresh.value(), results.value());
    rapidjson::StringBuffer buf;
    Writer w(buf);
    bool errors = false;
    for (const auto& r : results.value()) errors = errors || r.error.has_value();
    w.StartObject();
    w.Key("took");
    w.Int64(std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - started).count());
    w.Key("errors");
    w.Bool(errors);
    w.Key("items");
    w.StartArray();
    for (size_t i = 0; i < ops.size(); ++i) {
      const WriteResult& r = results.value()[i];
      w.StartObject();
      WriteKey(w, OpName(ops[i].type));
      WriteItem(w, r, true, forced);
      w.EndObject();
    }
    w.EndArray();
    w.EndObject();
    return JsonReply(200, Done(w, buf));
  }

  // Refreshes (or waits for a refresh of) the indices `results` wrote to. True when it refreshed
  // (ES then marks the successful items "forced_refresh": true).
  bool ApplyRefresh(RefreshPolicy policy, const std::vector<WriteResult>& results) {
    if (policy == RefreshPolicy::kNone) return false;
    std::vector<std::string> names;
    for (const auto& r : results) {
      if (!r.error && std::find(names.begin(), names.end(), r.index) == names.end()) {
        names.push_back(r.index);
      }
    }
    if (policy == RefreshPolicy::kImmediate) {
      store_->Refresh(names);
      return true;
    }
    store_->WaitForRefresh(names);
    return false;
  }

  // The object of one write outcome (bulk item or single-document answer).
  void WriteItem(Writer& w, const WriteResult& r, bool with_status, bool forced_refresh) {
    w.StartObject();
    w.Key("_index");
    WriteStr(w, r.index);
    if (HasDocType(options_.identity)) {
      w.Key("_type");
      w.String("_doc");
    }
    w.Key("_id");
    WriteStr(w, r.id);
    if (r.error) {
      if (with_status) {
        w.Key("status");
        w.Int(r.status);
      }
      w.Key("error");
      r.error->WriteCause(w);
    } else {
      w.Key("_version");
      w.Uint64(r.version);
      w.Key("result");
      WriteStr(w, r.result);
      if (forced_refresh) {
        w.Key("forced_refresh");
        w.Bool(true);
      }
      if (r.result == "noop") {
        WriteShards(w, 0, 0);
      } else {
        WriteShards(w, 2, 1);
      }
      w.Key("_seq_no");
      w.Uint64(r.seq_no);
      w.Key("_primary_term");
      w.Int(1);
      if (with_status) {
        w.Key("status");
        w.Int(r.status);
      }
    }
    w.EndObject();
  }

  // ------------------------------------------------------------ single documents
  // One document write; errors (409, 403 blocks, 400 mapping) are the top-level answer, except
  // a delete's not_found, which is a 404 with the item body (as in ES).
  Reply WriteOne(const httplib::Request& req, WriteOp op) {
    auto refresh = ParseRefresh(req);
    if (!refresh.ok()) return ErrorReply(refresh.error());
    std::vector<WriteOp> ops;
    ops.push_back(std::move(op));
    auto results = store_->Write(ops);
    if (!results.ok()) return ErrorReply(results.error());
    const WriteResult& r = results.value()[0];
    if (r.error) return ErrorReply(*r.error);
    const bool forced = ApplyRefresh(refresh.value(), results.value());
    rapidjson::StringBuffer buf;
    Writer w(buf);
    WriteItem(w, r, false, forced);
    return JsonReply(r.status, Done(w, buf));
  }

  Reply WriteDoc(const httplib::Request& req, const std::string& index, const std::string& id,
                 OpType type) {
    if (auto e = CheckParams(req, {"refresh", "op_type", "routing", "wait_for_active_shards",
                                   "require_alias", "version", "version_type"})) {
      return ErrorReply(*e);
    }
    if (auto e = Store::ValidateIndexName(index)) return ErrorReply(*e);
    WriteOp op;
    if (auto e = ParseVersionParams(req, type, &op)) return ErrorReply(*e);
    auto doc = std::make_shared<rapidjson::Document>();
    bool present = false;
    if (auto e = ParseBody(req, doc.get(), &present)) return ErrorReply(*e);
    if (!present) return ErrorReply(BadRequest("parse_exception", "request body is required"));
    if (!doc->IsObject()) {
      return ErrorReply(BadRequest("mapper_parsing_exception", "failed to parse"));
    }
    op.type = type;
    op.index = index;
    op.id = id;
    op.source = std::string(absl::StripAsciiWhitespace(req.body));
    if (op.source.find_first_of("\r\n") != std::string::npos) op.source = ToJson(*doc);
    op.body = std::move(doc);
    if (op.id.size() > 512) {
      return ErrorReply(BadRequest("action_request_validation_exception",
                                   "Validation Failed: 1: id is too long, must be no longer than "
                                   "512 bytes;"));
    }
    return WriteOne(req, std::move(op));
  }

  Reply UpdateDoc(const httplib::Request& req, const std::string& index, const std::string& id) {
    if (auto e = CheckParams(req, {"refresh", "routing", "retry_on_conflict",
                                   "wait_for_active_shards", "require_alias"})) {
      return ErrorReply(*e);
    }
    auto doc = std::make_shared<rapidjson::Document>();
    bool present = false;
    if (auto e = ParseBody(req, doc.get(), &present)) return ErrorReply(*e);
    if (!present || !doc->IsObject()) {
      return ErrorReply(BadRequest("action_request_validation_exception",
                                   "Validation Failed: 1: script or doc is missing;"));
    }
    if (doc->HasMember("script")) return ErrorReply(Unsupported("[script] in update"));
    if ((!doc->HasMember("doc") || !(*doc)["doc"].IsObject()) && !doc->HasMember("upsert")) {
      return ErrorReply(BadRequest("action_request_validation_exception",
                                   "Validation Failed: 1: script or doc is missing;"));
    }
    if (!store_->GetIndex(index)) return ErrorReply(IndexNotFound(index));
    WriteOp op;
    op.type = OpType::kUpdate;
    op.index = index;
    op.id = id;
    op.body = std::move(doc);
    return WriteOne(req, std::move(op));
  }

  Reply DeleteDoc(const httplib::Request& req, const std::string& index, const std::string& id) {
    if (auto e = CheckParams(
            req, {"refresh", "routing", "wait_for_active_shards", "version", "version_type"})) {
      return ErrorReply(*e);
    }
    if (!store_->GetIndex(index)) return ErrorReply(IndexNotFound(index));
    WriteOp op;
    if (auto e = ParseVersionParams(req, OpType::kDelete, &op)) return ErrorReply(*e);
    op.type = OpType::kDelete;
    op.index = index;
    op.id = id;
    return WriteOne(req, std::move(op));
  }

  void WriteFoundDoc(Writer& w, const IndexInfo& idx, absl::string_view id,
                     const std::optional<DocRecord>& rec, const SourceFilter& filter) {
    w.StartObject();
    w.Key("_index");
    WriteStr(w, idx.name);
    if (HasDocType(options_.identity)) {
      w.Key("_type");
      w.String("_doc");
    }
    w.Key("_id");
    WriteStr(w, id);
    if (rec) {
      w.Key("_version");
      w.Uint64(rec->version);
      w.Key("_seq_no");
      w.Uint64(rec->seq_no);
      w.Key("_primary_term");
      w.Int(1);
      w.Key("found");
      w.Bool(true);
      if (filter.fetch()) {
        w.Key("_source");
        filter.Write(w, rec->source);
      }
    } else {
      w.Key("found");
      w.Bool(false);
    }
    w.EndObject();
  }

  Reply GetDoc(const httplib::Request& req, const std::string& index, const std::string& id,
               bool source_only) {
    if (auto e =
            CheckParams(req, {"_source", "_source_includes", "_source_excludes", "realtime",
                              "refresh", "routing", "preference", "stored_fields", "version"})) {
      return ErrorReply(*e);
    }
    auto idx = store_->GetIndex(index);
    if (!idx) return ErrorReply(IndexNotFound(index));
    auto filter = SourceFilter::Create(nullptr, req.params);
    if (!filter.ok()) return ErrorReply(filter.error());
    // Real-time unless realtime=false (then as of the last refresh); refresh=true refreshes first.
    if (ParamBool(req, "refresh", false)) {
      store_->Refresh({index});
      idx = store_->GetIndex(index);
      if (!idx) return ErrorReply(IndexNotFound(index));
    }
    auto rec = ParamBool(req, "realtime", true) ? store_->GetDoc(index, id)
                                                : store_->GetRefreshedDoc(*idx, id);
    if (source_only) {
      if (!rec) {
        EsError e;
        e.status = 404;
        e.type = "resource_not_found_exception";
        e.reason = absl::StrCat("Document not found [", index, "]/[", id, "]");
        return ErrorReply(e);
      }
      rapidjson::StringBuffer buf;
      Writer w(buf);
      filter->Write(w, rec->source);
      return JsonReply(200, Done(w, buf));
    }
    rapidjson::StringBuffer buf;
    Writer w(buf);
    WriteFoundDoc(w, *idx, id, rec, filter.value());
    return JsonReply(rec ? 200 : 404, Done(w, buf));
  }

  Reply Mget(const httplib::Request& req, const std::string& url_index) {
    if (auto e = CheckParams(req, {"_source", "_source_includes", "_source_excludes", "realtime",
                                   "refresh", "routing", "preference", "stored_fields"})) {
      return ErrorReply(*e);
    }
    rapidjson::Document body;
    bool present = false;
    if (auto e = ParseBody(req, &body, &present)) return ErrorReply(*e);
    if (!present || !body.IsObject()) {
      return ErrorReply(BadRequest("action_request_validation_exception",
                                   "Validation Failed: 1: no documents to get;"));
    }
    auto url_filter = SourceFilter::Create(nullptr, req.params);
    if (!url_filter.ok()) return ErrorReply(url_filter.error());
    struct Item {
      std::string index, id;
      std::optional<SourceFilter> filter;
    };
    std::vector<Item> items;
    std::string errors;
    int n = 0;
    for (auto it = body.MemberBegin(); it != body.MemberEnd(); ++it) {
      absl::string_view key = Sv(it->name);
      const auto& v = it->value;
      if (key == "ids") {
        if (!v.IsArray()) return ErrorReply(ParsingException("[ids] must be an array"));
        for (const auto& id : v.GetArray()) {
          if (!id.IsString()) return ErrorReply(ParsingException("[ids] must be strings"));
          items.push_back({url_index, std::string(Sv(id)), std::nullopt});
        }
      } else if (key == "docs") {
        if (!v.IsArray()) return ErrorReply(ParsingException("[docs] must be an array"));
        for (const auto& d : v.GetArray()) {
          if (!d.IsObject()) return ErrorReply(ParsingException("[docs] must hold objects"));
          Item item{url_index, "", std::nullopt};
          for (auto jt = d.MemberBegin(); jt != d.MemberEnd(); ++jt) {
            absl::string_view k = Sv(jt->name);
            if (k == "_index" && jt->value.IsString()) {
              item.index = std::string(Sv(jt->value));
            } else if (k == "_id" && jt->value.IsString()) {
              item.id = std::string(Sv(jt->value));
            } else if (k == "_source") {
              auto f = SourceFilter::Create(&jt->value, {});
              if (!f.ok()) return ErrorReply(f.error());
              item.filter = std::move(f.value());
            } else if (k == "routing") {
            } else {
              return ErrorReply(ParsingException(absl::StrCat("unknown key [", k, "] in docs")));
            }
          }
          items.push_back(std::move(item));
        }
      } else {
        return ErrorReply(ParsingException(absl::StrCat("unknown key [", key, "] for mget")));
      }
    }
    for (const auto& item : items) {
      ++n;
      if (item.index.empty())
        absl::StrAppend(&errors, n, ": index is missing for doc ", n - 1, ";");
      if (item.id.empty()) absl::StrAppend(&errors, n, ": id is missing for doc ", n - 1, ";");
    }
    if (items.empty()) errors = "1: no documents to get;";
    if (!errors.empty()) {
      return ErrorReply(
          BadRequest("action_request_validation_exception", "Validation Failed: " + errors));
    }
    const bool realtime = ParamBool(req, "realtime", true);
    if (ParamBool(req, "refresh", false)) {
      std::vector<std::string> names;
      for (const auto& item : items) names.push_back(item.index);
      store_->Refresh(names);
    }
    rapidjson::StringBuffer buf;
    Writer w(buf);
    w.StartObject();
    w.Key("docs");
    w.StartArray();
    for (const auto& item : items) {
      auto idx = store_->GetIndex(item.index);
      if (!idx) {
        w.StartObject();
        w.Key("_index");
        WriteStr(w, item.index);
        w.Key("_id");
        WriteStr(w, item.id);
        w.Key("error");
        EsError e = IndexNotFound(item.index);
        w.StartObject();
        w.Key("root_cause");
        w.StartArray();
        e.WriteCause(w);
        w.EndArray();
        w.Key("type");
        WriteStr(w, e.type);
        w.Key("reason");
        WriteStr(w, e.reason);
        for (const auto& [k, v] : e.extra) {
          WriteKey(w, k);
          WriteStr(w, v);
        }
        w.EndObject();
        w.EndObject();
        continue;
      }
      WriteFoundDoc(
          w, *idx, item.id,
          realtime ? store_->GetDoc(item.index, item.id) : store_->GetRefreshedDoc(*idx, item.id),
          item.filter ? *item.filter : url_filter.value());
    }
    w.EndArray();
    w.EndObject();
    return JsonReply(200, Done(w, buf));
  }

  // ------------------------------------------------------------ search, count, refresh, mget
  Reply IndexAction(const httplib::Request& req, const std::string& expr, const std::string& what) {
    const std::string& m = req.method;
    if (what == "_mget") {
      if (m != "GET" && m != "POST") return BadMethod(req, "GET, POST");
      if (expr != "_all") {
        if (auto e = Store::ValidateIndexName(expr)) return ErrorReply(*e);
      }
      return Mget(req, expr == "_all" ? "" : expr);
    }
    if (m != "GET" && m != "POST") return BadMethod(req, "GET, POST");
    ResolveOptions ro;
    ro.ignore_unavailable = ParamBool(req, "ignore_unavailable", false);
    ro.allow_no_indices = ParamBool(req, "allow_no_indices", true);
    if (what == "_refresh") {
      if (auto e =
              CheckParams(req, {"ignore_unavailable", "allow_no_indices", "expand_wildcards"})) {
        return ErrorReply(*e);
      }
      auto indices = store_->Resolve(expr, ro);
      if (!indices.ok()) return ErrorReply(indices.error());
      std::vector<std::string> names;
      for (const auto& idx : indices.value()) names.push_back(idx.name);
      store_->Refresh(names);
      int total = 0, ok = 0;
      for (const auto& idx : indices.value()) {
        total += idx.settings->shards * (1 + idx.settings->replicas);
        ok += idx.settings->shards;
      }
      rapidjson::StringBuffer buf;
      Writer w(buf);
      w.StartObject();
      WriteShards(w, total, ok);
      w.EndObject();
      return JsonReply(200, Done(w, buf));
    }
    rapidjson::Document body;
    bool present = false;
    if (auto e = ParseBody(req, &body, &present)) return ErrorReply(*e);
    if (what == "_count") {
      if (auto e = CheckParams(req, {"ignore_unavailable", "allow_no_indices", "expand_wildcards",
                                     "routing", "preference", "ignore_throttled"})) {
        return ErrorReply(*e);
      }
      if (req.has_param("q")) return ErrorReply(Unsupported("[q] (query string)"));
      auto indices = store_->Resolve(expr, ro);
      if (!indices.ok()) return ErrorReply(indices.error());
      auto count = RunCount(*store_, indices.value(), present ? &body : nullptr);
      if (!count.ok()) return ErrorReply(count.error());
      rapidjson::StringBuffer buf;
      Writer w(buf);
      w.StartObject();
      w.Key("count");
      w.Uint64(count.value());
      w.Key("_shards");
      w.StartObject();
      w.Key("total");
      w.Uint64(indices->size());
      w.Key("successful");
      w.Uint64(indices->size());
      w.Key("skipped");
      w.Int(0);
      w.Key("failed");
      w.Int(0);
      w.EndObject();
      w.EndObject();
      return JsonReply(200, Done(w, buf));
    }
    // _search
    if (auto e = CheckParams(req, {"size",
                                   "from",
                                   "sort",
                                   "_source",
                                   "_source_includes",
                                   "_source_excludes",
                                   "track_total_hits",
                                   "rest_total_hits_as_int",
                                   "typed_keys",
                                   "ignore_unavailable",
                                   "allow_no_indices",
                                   "expand_wildcards",
                                   "search_type",
                                   "request_cache",
                                   "preference",
                                   "routing",
                                   "batched_reduce_size",
                                   "ccs_minimize_roundtrips",
                                   "allow_partial_search_results",
                                   "max_concurrent_shard_requests",
                                   "pre_filter_shard_size",
                                   "version",
                                   "seq_no_primary_term",
                                   "track_scores",
                                   "ignore_throttled"})) {
      return ErrorReply(*e);
    }
    if (req.has_param("q")) return ErrorReply(Unsupported("[q] (query string)"));
    if (req.has_param("scroll")) return ErrorReply(Unsupported("[scroll]"));
    auto indices = store_->Resolve(expr, ro);
    if (!indices.ok()) return ErrorReply(indices.error());
    SearchOptions so;
    so.id_field_data = options_.identity != Identity::kEs8;
    so.doc_type = HasDocType(options_.identity);
    auto result = RunSearch(*store_, indices.value(), present ? &body : nullptr, req.params, so);
    if (!result.ok()) return ErrorReply(result.error());
    return JsonReply(200, std::move(result.value()));
  }

  // ------------------------------------------------------------ indices
  Reply IndexCrud(const httplib::Request& req, const std::string& name) {
    const std::string& m = req.method;
    if (m == "PUT") {
      if (auto e = CheckParams(req, {"wait_for_active_shards"})) return ErrorReply(*e);
      rapidjson::Document body;
      bool present = false;
      if (auto e = ParseBody(req, &body, &present)) return ErrorReply(*e);
      if (auto e = store_->CreateIndex(name, present ? &body : nullptr)) return ErrorReply(*e);
      rapidjson::StringBuffer buf;
      Writer w(buf);
      w.StartObject();
      w.Key("acknowledged");
      w.Bool(true);
      w.Key("shards_acknowledged");
      w.Bool(true);
      w.Key("index");
      WriteStr(w, name);
      w.EndObject();
      return JsonReply(200, Done(w, buf));
    }
    if (m == "DELETE") {
      if (auto e =
              CheckParams(req, {"ignore_unavailable", "allow_no_indices", "expand_wildcards"})) {
        return ErrorReply(*e);
      }
      if (name == "_all" || name.find('*') != std::string::npos) {
        return ErrorReply(IllegalArgument("Wildcard expressions or all indices are not allowed"));
      }
      ResolveOptions ro;
      ro.ignore_unavailable = ParamBool(req, "ignore_unavailable", false);
      auto indices = store_->Resolve(name, ro);
      if (!indices.ok()) return ErrorReply(indices.error());
      std::vector<std::string> names;
      for (const auto& idx : indices.value()) names.push_back(idx.name);
      if (auto e = store_->DeleteIndices(names)) return ErrorReply(*e);
      return JsonReply(200, "{\"acknowledged\":true}");
    }
    if (m == "HEAD") {
      ResolveOptions ro;
      ro.allow_no_indices = false;
      auto indices = store_->Resolve(name, ro);
      return JsonReply(indices.ok() && !indices->empty() ? 200 : 404, "");
    }
    if (m == "GET") return GetIndex(req, name, "");
    return BadMethod(req, "DELETE, GET, HEAD, PUT");
  }

  // PUT /<indices>/_settings: {"index":{...}}, {"settings":{...}} or flat keys.
  Reply PutSettings(const httplib::Request& req, const std::string& expr) {
    if (auto e = CheckParams(req, {"ignore_unavailable", "allow_no_indices", "expand_wildcards",
                                   "flat_settings", "preserve_existing", "reopen"})) {
      return ErrorReply(*e);
    }
    rapidjson::Document body;
    bool present = false;
    if (auto e = ParseBody(req, &body, &present)) return ErrorReply(*e);
    if (!present || !body.IsObject()) {
      return ErrorReply(BadRequest("action_request_validation_exception",
                                   "Validation Failed: 1: no settings to update;"));
    }
    const rapidjson::Value* settings = &body;
    if (body.HasMember("settings") && body.MemberCount() == 1) settings = &body["settings"];
    ResolveOptions ro;
    ro.ignore_unavailable = ParamBool(req, "ignore_unavailable", false);
    auto indices = store_->Resolve(expr, ro);
    if (!indices.ok()) return ErrorReply(indices.error());
    std::vector<std::string> names;
    for (const auto& idx : indices.value()) names.push_back(idx.name);
    if (auto e = store_->UpdateSettings(names, *settings)) return ErrorReply(*e);
    return JsonReply(200, "{\"acknowledged\":true}");
  }

  Reply GetIndex(const httplib::Request& req, const std::string& expr, const std::string& part) {
    if (auto e = CheckParams(req, {"ignore_unavailable", "allow_no_indices", "expand_wildcards",
                                   "include_defaults", "flat_settings", "local"})) {
      return ErrorReply(*e);
    }
    ResolveOptions ro;
    ro.ignore_unavailable = ParamBool(req, "ignore_unavailable", false);
    auto indices = store_->Resolve(expr, ro);
    if (!indices.ok()) return ErrorReply(indices.error());
    const bool flat = ParamBool(req, "flat_settings", false);
    rapidjson::StringBuffer buf;
    Writer w(buf);
    w.StartObject();
    for (const auto& idx : indices.value()) {
      WriteKey(w, idx.name);
      w.StartObject();
      if (part.empty()) {
        w.Key("aliases");
        w.StartObject();
        w.EndObject();
      }
      if (part.empty() || part == "mappings") {
        w.Key("mappings");
        idx.mapping->json().Accept(w);
      }
      if (part.empty() || part == "settings") {
        std::map<std::string, std::string> settings = idx.settings->values;
        settings["index.creation_date"] = std::to_string(idx.creation_date);
        settings["index.uuid"] = idx.uuid;
        settings["index.provided_name"] = idx.name;
        settings["index.version.created"] = "8110099";
        w.Key("settings");
        if (flat) {
          w.StartObject();
          for (const auto& [k, v] : settings) {
            WriteKey(w, k);
            WriteStr(w, v);
          }
          w.EndObject();
        } else {
          WriteNestedSettings(w, settings);
        }
      }
      w.EndObject();
    }
    w.EndObject();
    return JsonReply(200, Done(w, buf));
  }

  Reply CatIndices(const httplib::Request& req, const std::string& expr) {
    if (auto e =
            CheckParams(req, {"format", "h", "s", "v", "bytes", "pri", "health", "expand_wildcards",
                              "help", "local", "include_unloaded_segments", "time"})) {
      return ErrorReply(*e);
    }
    auto indices = store_->Resolve(expr, {});
    if (!indices.ok()) return ErrorReply(indices.error());
    static const std::vector<std::string> kDefault = {
        "health",     "status",       "index",      "uuid",           "pri",         "rep",
        "docs.count", "docs.deleted", "store.size", "pri.store.size", "dataset.size"};
    std::vector<std::string> cols = kDefault;
    if (req.has_param("h")) cols = absl::StrSplit(req.get_param_value("h"), ',', absl::SkipEmpty());
    std::string bytes_unit = req.get_param_value("bytes");
    auto size_text = [&](uint64_t b) {
      if (bytes_unit.empty()) return HumanBytes(b);
      static const std::map<std::string, uint64_t> kUnits = {
          {"b", 1}, {"kb", 1024}, {"mb", 1024 * 1024}, {"gb", 1024ull * 1024 * 1024}};
      auto it = kUnits.find(bytes_unit);
      return std::to_string(b / (it == kUnits.end() ? 1 : it->second));
    };
    std::vector<std::map<std::string, std::string>> rows;
    for (const auto& idx : indices.value()) {
      std::map<std::string, std::string> row;
      row["health"] = idx.settings->replicas > 0 ? "yellow" : "green";
      row["status"] = "open";
      row["index"] = row["i"] = idx.name;
      row["uuid"] = row["id"] = idx.uuid;
      row["pri"] = row["p"] = std::to_string(idx.settings->shards);
      row["rep"] = row["r"] = std::to_string(idx.settings->replicas);
      row["docs.count"] = row["dc"] = std::to_string(idx.docs);
      row["docs.deleted"] = row["dd"] = "0";
      row["store.size"] = row["ss"] = size_text(idx.bytes);
      row["pri.store.size"] = size_text(idx.bytes);
      row["dataset.size"] = size_text(idx.bytes);
      row["creation.date"] = row["cd"] = std::to_string(idx.creation_date);
      row["health"] = row["h"] = row["health"];
      rows.push_back(std::move(row));
    }
    if (req.has_param("health")) {
      std::string h = req.get_param_value("health");
      rows.erase(
          std::remove_if(rows.begin(), rows.end(), [&](auto& r) { return r["health"] != h; }),
          rows.end());
    }
    if (req.has_param("s")) {
      std::vector<std::string> keys =
          absl::StrSplit(req.get_param_value("s"), ',', absl::SkipEmpty());
      std::stable_sort(rows.begin(), rows.end(), [&](auto& a, auto& b) {
        for (std::string key : keys) {
          bool desc = false;
          if (absl::EndsWith(key, ":desc")) {
            desc = true;
            key = key.substr(0, key.size() - 5);
          } else if (absl::EndsWith(key, ":asc")) {
            key = key.substr(0, key.size() - 4);
          }
          auto get = [&](const std::map<std::string, std::string>& row) {
            auto it = row.find(key);
            return it == row.end() ? std::string() : it->second;
          };
          const std::string x = get(a);
          const std::string y = get(b);
          int64_t nx, ny;
          int c;
          if (absl::SimpleAtoi(x, &nx) && absl::SimpleAtoi(y, &ny)) {
            c = nx < ny ? -1 : nx > ny ? 1 : 0;
          } else {
            c = x.compare(y);
          }
          if (c != 0) return desc ? c > 0 : c < 0;
        }
        return false;
      });
    }
    if (req.get_param_value("format") == "json") {
      rapidjson::StringBuffer buf;
      Writer w(buf);
      w.StartArray();
      for (auto& row : rows) {
        w.StartObject();
        for (const auto& c : cols) {
          WriteKey(w, c);
          auto it = row.find(c);
          if (it == row.end()) {
            w.Null();
          } else {
            WriteStr(w, it->second);
          }
        }
        w.EndObject();
      }
      w.EndArray();
      return JsonReply(200, Done(w, buf));
    }
    // Text table, columns padded like ES's.
    std::vector<std::vector<std::string>> table;
    if (req.has_param("v")) table.push_back(cols);
    for (auto& row : rows) {
      std::vector<std::string> line;
      for (const auto& c : cols) line.push_back(row.count(c) ? row[c] : "");
      table.push_back(std::move(line));
    }
    std::vector<size_t> width(cols.size(), 0);
    for (const auto& line : table) {
      for (size_t i = 0; i < line.size(); ++i) width[i] = std::max(width[i], line[i].size());
    }
    std::string out;
    for (const auto& line : table) {
      for (size_t i = 0; i < line.size(); ++i) {
        out += line[i];
        if (i + 1 < line.size()) out += std::string(width[i] - line[i].size() + 1, ' ');
      }
      out += "\n";
    }
    Reply r;
    r.status = 200;
    r.body = out;
    r.content_type = "text/plain; charset=UTF-8";  // small: compression is fine
    return r;
  }

  Reply ClusterHealth(const httplib::Request& req, const std::string& expr) {
    if (auto e =
            CheckParams(req, {"wait_for_status", "wait_for_nodes", "wait_for_events",
                              "wait_for_no_relocating_shards", "wait_for_no_initializing_shards",
                              "wait_for_active_shards", "level", "local", "expand_wildcards"})) {
      return ErrorReply(*e);
    }
    auto indices = store_->Resolve(expr, {});
    if (!indices.ok()) return ErrorReply(indices.error());
    int primaries = 0, unassigned = 0;
    for (const auto& idx : indices.value()) {
      primaries += idx.settings->shards;
      unassigned += idx.settings->shards * idx.settings->replicas;
    }
    rapidjson::StringBuffer buf;
    Writer w(buf);
    w.StartObject();
    w.Key("cluster_name");
    WriteStr(w, options_.cluster_name);
    w.Key("status");
    w.String(unassigned > 0 ? "yellow" : "green");
    w.Key("timed_out");
    w.Bool(false);
    w.Key("number_of_nodes");
    w.Int(1);
    w.Key("number_of_data_nodes");
    w.Int(1);
    w.Key("active_primary_shards");
    w.Int(primaries);
    w.Key("active_shards");
    w.Int(primaries);
    w.Key("relocating_shards");
    w.Int(0);
    w.Key("initializing_shards");
    w.Int(0);
    w.Key("unassigned_shards");
    w.Int(unassigned);
    w.Key("delayed_unassigned_shards");
    w.Int(0);
    w.Key("number_of_pending_tasks");
    w.Int(0);
    w.Key("number_of_in_flight_fetch");
    w.Int(0);
    w.Key("task_max_waiting_in_queue_millis");
    w.Int(0);
    w.Key("active_shards_percent_as_number");
    w.Double(primaries + unassigned == 0 ? 100.0 : 100.0 * primaries / (primaries + unassigned));
    w.EndObject();
    return JsonReply(200, Done(w, buf));
  }

  // ------------------------------------------------------------ templates
  Reply IndexTemplate(const httplib::Request& req, const std::string& name) {
    const std::string& m = req.method;
    if (m == "PUT" || m == "POST") {
      if (name.empty()) return BadMethod(req, "GET");
      if (auto e = CheckParams(req, {"create", "cause"})) return ErrorReply(*e);
      rapidjson::Document body;
      bool present = false;
      if (auto e = ParseBody(req, &body, &present)) return ErrorReply(*e);
      if (!present) return ErrorReply(BadRequest("parse_exception", "request body is required"));
      if (auto e = store_->PutTemplate(name, body, ParamBool(req, "create", false))) {
        return ErrorReply(*e);
      }
      return JsonReply(200, "{\"acknowledged\":true}");
    }
    auto not_found = [&] {
      EsError e;
      e.status = 404;
      e.type = "resource_not_found_exception";
      e.reason = absl::StrCat("index template matching [", name, "] not found");
      return ErrorReply(e);
    };
    if (m == "DELETE") {
      if (name.empty()) return BadMethod(req, "GET");
      if (!store_->DeleteTemplate(name)) return not_found();
      return JsonReply(200, "{\"acknowledged\":true}");
    }
    if (!IsGetOrHead(req)) return BadMethod(req, "DELETE, GET, HEAD, POST, PUT");
    if (auto e = CheckParams(req, {"flat_settings", "local", "include_defaults"})) {
      return ErrorReply(*e);
    }
    auto list = store_->Templates(name);
    if (list.empty() && !name.empty() && name.find('*') == std::string::npos) return not_found();
    if (m == "HEAD") return JsonReply(list.empty() ? 404 : 200, "");
    std::string out = "{\"index_templates\":[";
    for (size_t i = 0; i < list.size(); ++i) {
      if (i > 0) out += ",";
      rapidjson::StringBuffer nb;
      Writer nw(nb);
      WriteStr(nw, list[i].first);
      absl::StrAppend(&out, "{\"name\":", std::string(nb.GetString(), nb.GetSize()),
                      ",\"index_template\":", list[i].second, "}");
    }
    out += "]}";
    return JsonReply(200, out);
  }

  Store* store_;
  Faults* faults_;
  const ServerOptions& options_;
};

bool AcceptedMediaType(absl::string_view ct, Identity identity, std::string* error) {
  std::string lower = absl::AsciiStrToLower(ct);
  absl::string_view base = lower;
  base = base.substr(0, base.find(';'));
  base = absl::StripAsciiWhitespace(base);
  if (base == "application/json" || base == "application/x-ndjson") return true;
  const bool vendor_types = identity == Identity::kEs8 || identity == Identity::kEs7;
  if (vendor_types && (base == "application/vnd.elasticsearch+json" ||
                       base == "application/vnd.elasticsearch+x-ndjson")) {
    size_t p = lower.find("compatible-with=");
    if (p == std::string::npos) {
      *error = absl::StrCat("Invalid media-type value on headers [Content-Type]: ", ct);
      return false;
    }
    std::string v(absl::StripAsciiWhitespace(lower.substr(p + 16)));
    if (v != "7" && (v != "8" || identity != Identity::kEs8)) {
      *error = absl::StrCat(
          "A compatible version is required on both Content-Type and Accept "
          "headers if either one has requested a compatible version. Accept=null"
          ", Content-Type=",
          ct);
      return false;
    }
    return true;
  }
  *error = absl::StrCat("Content-Type header [", ct, "] is not supported");
  return false;
}

}  // namespace

// ---------------------------------------------------------------- EsLiteServer

std::optional<Identity> ParseIdentity(const std::string& name) {
  static const std::pair<const char*, Identity> kNames[] = {
      {"es-8", Identity::kEs8},
      {"es-7", Identity::kEs7},
      {"es-7.10", Identity::kEs710},
      {"opensearch-2", Identity::kOpenSearch2},
      {"opensearch-1", Identity::kOpenSearch1},
      {"es-6", Identity::kEs6},
      {"other", Identity::kOther}};
  for (const auto& [n, id] : kNames) {
    if (name == n) return id;
  }
  return std::nullopt;
}

const char* IdentityNames() {
  return "es-8, es-7, es-7.10, opensearch-2, opensearch-1, es-6, other";
}

EsLiteServer::EsLiteServer(Store* store, Faults* faults, const ServerOptions& options)
    : store_(store), faults_(faults), options_(options) {
  if (!options_.tls_cert_file.empty() || !options_.tls_key_file.empty()) {
    auto ssl = std::make_unique<httplib::SSLServer>(options_.tls_cert_file.c_str(),
                                                    options_.tls_key_file.c_str());
    if (!ssl->is_valid()) {
      error_ = absl::StrCat("cannot load the TLS certificate ", options_.tls_cert_file, " and key ",
                            options_.tls_key_file);
    }
    http_ = std::move(ssl);
  } else {
    http_ = std::make_unique<httplib::Server>();
  }
  const int threads = std::max(4, options_.threads);
  http_->new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  http_->set_payload_max_length(options_.max_content_length);
  http_->set_tcp_nodelay(true);  // headers and body go in separate writes
  http_->set_keep_alive_max_count(1000000);
  http_->set_keep_alive_timeout(30);
  http_->set_read_timeout(120);
  http_->set_write_timeout(120);
  if (HasProductHeader(options_.identity)) {
    http_->set_default_headers({{"X-Elastic-Product", "Elasticsearch"}});
  } else {
    http_->set_default_headers({});
  }
  auto handler = [this](const httplib::Request& req, httplib::Response& res) {
    in_flight_++;
    Reply r = Handle(req);
    in_flight_--;
    if (r.abort_connection) {
      AbortConnection(req);
      res.status = 500;
      return;
    }
    res.status = r.status;
    for (const auto& [name, value] : r.headers) res.set_header(name.c_str(), value);
    std::string ct = r.content_type;
    if (ct == "application/json") {
      std::string accept = absl::AsciiStrToLower(req.get_header_value("Accept"));
      std::string sent = absl::AsciiStrToLower(req.get_header_value("Content-Type"));
      if (absl::StrContains(accept, "vnd.elasticsearch") ||
          absl::StrContains(sent, "vnd.elasticsearch")) {
        ct = options_.identity == Identity::kEs8
                 ? "application/vnd.elasticsearch+json;compatible-with=8"
                 : "application/vnd.elasticsearch+json;compatible-with=7";
      }
      if (req.has_param("pretty") && !r.body.empty()) r.body = Pretty(r.body);
      // With the charset parameter cpp-httplib does not compress the answer: its brotli at the
      // highest quality costs far more than loopback bandwidth.
      if (ct == "application/json") ct = "application/json; charset=UTF-8";
    }
    if (req.method == "HEAD") {
      res.set_header("Content-Type", ct);
      res.set_header("Content-Length", std::to_string(r.body.size()));
      return;
    }
    res.set_content(r.body, ct);
    if (options_.log_requests) {
      fprintf(stderr, "rtdw-es-lite: %s %s -> %d\n", req.method.c_str(), req.path.c_str(),
              r.status);
    }
  };
  // A request without Content-Length and without chunked Transfer-Encoding has no body (RFC 9112
  // 6.3; what Elasticsearch does too). cpp-httplib would read such a body until the client closes
  // the connection, which hangs a client that waits for the answer: answer it here, before the
  // library reads anything, as a request with an empty body.
  http_->set_pre_routing_handler([handler](const httplib::Request& req, httplib::Response& res) {
    const bool may_have_body = req.method == "POST" || req.method == "PUT" ||
                               req.method == "PATCH" || req.method == "DELETE";
    if (!may_have_body || req.has_header("Content-Length") || req.has_header("Transfer-Encoding")) {
      return httplib::Server::HandlerResponse::Unhandled;
    }
    handler(req, res);
    return httplib::Server::HandlerResponse::Handled;
  });
  // cpp-httplib answers a body over the payload limit with a bare 413 (it reads and drops the
  // body, so the connection stays usable): give it the ES error body.
  const size_t max_content_length = options_.max_content_length;
  http_->set_error_handler(httplib::Server::HandlerWithResponse(
      [max_content_length](const httplib::Request& req, httplib::Response& res) {
        if (res.status != 413 || !res.body.empty())
          return httplib::Server::HandlerResponse::Unhandled;
        EsError e;
        e.status = 413;
        e.type = "request_entity_too_large_exception";
        e.reason =
            absl::StrCat("request body of ", req.get_header_value("Content-Length"),
                         " bytes exceeds http.max_content_length [", max_content_length, "]");
        res.set_content(e.Body(), "application/json; charset=UTF-8");
        return httplib::Server::HandlerResponse::Handled;
      }));
  http_->Get("/.*", handler);
  http_->Post("/.*", handler);
  http_->Put("/.*", handler);
  http_->Delete("/.*", handler);
  http_->Patch("/.*", handler);
  http_->set_exception_handler(
      [](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
        std::string what = "unknown";
        try {
          if (ep) std::rethrow_exception(ep);
        } catch (const std::exception& e) {
          what = e.what();
        } catch (...) {
        }
        EsError e;
        e.status = 500;
        e.type = "exception";
        e.reason = what;
        res.status = 500;
        res.set_content(e.Body(), "application/json; charset=UTF-8");
      });
}

EsLiteServer::~EsLiteServer() = default;

bool EsLiteServer::valid() const { return error_.empty() && http_->is_valid(); }

std::optional<EsLiteServer::Reply> EsLiteServer::CheckAuth(const httplib::Request& req) const {
  if (options_.basic_auth.empty() && options_.api_key.empty()) return std::nullopt;
  std::string given = req.get_header_value("Authorization");
  absl::string_view scheme(given);
  scheme = scheme.substr(0, scheme.find(' '));
  absl::string_view credential = absl::StripAsciiWhitespace(
      absl::string_view(given).substr(std::min(given.size(), scheme.size() + 1)));
  if (!options_.basic_auth.empty() && absl::EqualsIgnoreCase(scheme, "Basic") &&
      credential == absl::Base64Escape(options_.basic_auth)) {
    return std::nullopt;
  }
  if (!options_.api_key.empty() && absl::EqualsIgnoreCase(scheme, "ApiKey") &&
      credential == options_.api_key) {
    return std::nullopt;
  }
  EsError e;
  e.status = 401;
  e.type = "security_exception";
  e.reason = given.empty() ? absl::StrCat("missing authentication credentials for REST request [",
                                          req.path, "]")
                           : absl::StrCat(
                                 "unable to authenticate with provided credentials for REST "
                                 "request [",
                                 req.path, "]");
  Reply r = ErrorReply(e);
  r.headers.emplace_back("WWW-Authenticate", "Basic realm=\"security\" charset=\"UTF-8\"");
  r.headers.emplace_back("WWW-Authenticate", "ApiKey");
  return r;
}

int EsLiteServer::Bind(const std::string& host, int port) {
  if (port == 0) return http_->bind_to_any_port(host);
  return http_->bind_to_port(host, port) ? port : -1;
}

bool EsLiteServer::Listen() { return http_->listen_after_bind(); }

void EsLiteServer::Stop() {
  http_->stop();
  auto deadline = Clock::now() + std::chrono::seconds(5);
  while (in_flight_.load() > 0 && Clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  // Idle keep-alive connections would hold their worker threads until the keep-alive timeout.
  DIR* dir = opendir("/proc/self/fd");
  if (dir == nullptr) return;
  while (dirent* e = readdir(dir)) {
    int fd = 0;
    if (!absl::SimpleAtoi(e->d_name, &fd) || fd < 3 || fd == dirfd(dir)) continue;
    sockaddr_storage peer{};
    socklen_t len = sizeof(peer);
    if (getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &len) == 0) shutdown(fd, SHUT_RDWR);
  }
  closedir(dir);
}

EsLiteServer::Reply EsLiteServer::Handle(const httplib::Request& req) {
  if (auto denied = CheckAuth(req)) return *denied;
  const bool fault_free = absl::StartsWith(req.path, "/_rtdw/");
  if (!fault_free) {
    FaultConfig f = faults_->config();
    if (f.latency_ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(f.latency_ms));
    if (faults_->Roll(f.close_after_read_fraction)) {
      faults_->counters().closed_after_read++;
      Reply r;
      r.abort_connection = true;
      return r;
    }
    if (faults_->Roll(f.request_503_fraction)) {
      faults_->counters().requests_503++;
      EsError e;
      e.status = 503;
      e.type = "unavailable_shards_exception";
      e.reason = "[rtdw-es-lite fault injection] primary shard is not active";
      return ErrorReply(e);
    }
  }
  if (!req.body.empty()) {
    std::string error;
    std::string ct = req.get_header_value("Content-Type");
    if (ct.empty()) return SimpleError(406, "Content-Type header is missing");
    if (!AcceptedMediaType(ct, options_.identity, &error)) {
      if (absl::StartsWith(error, "Content-Type header")) return SimpleError(406, error);
      return ErrorReply(BadRequest("media_type_header_exception", error));
    }
  }
  Api api(store_, faults_, options_);
  Reply reply = api.Route(req);
  if (!fault_free) {
    const FaultConfig f = faults_->config();
    if (faults_->Roll(f.close_after_write_fraction)) {
      faults_->counters().closed_after_write++;
      reply.abort_connection = true;
    } else if (f.answer_late_ms > 0 && faults_->Roll(f.answer_late_fraction)) {
      // Applied and synced above; the answer comes late (after the client's timeout, if set so).
      faults_->counters().answered_late++;
      std::this_thread::sleep_for(std::chrono::milliseconds(f.answer_late_ms));
    }
  }
  return reply;
}

}  // namespace rtdw::eslite
