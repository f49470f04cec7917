// rtdw-es-lite: the document API: _bulk, single-document index/create/update/delete, GET of a
// document or its _source, _mget.

#include <algorithm>
#include <chrono>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "httplib.h"
#include "tools/es_lite/api.h"
#include "tools/es_lite/bulk_request.h"
#include "tools/es_lite/search.h"

namespace rtdw::eslite {

using Clock = std::chrono::steady_clock;

Reply Api::Bulk(const httplib::Request& req, const std::string& default_index) {
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
bool Api::ApplyRefresh(RefreshPolicy policy, const std::vector<WriteResult>& results) {
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
void Api::WriteItem(Writer& w, const WriteResult& r, bool with_status, bool forced_refresh) {
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

// One document write; errors (409, 403 blocks, 400 mapping) are the top-level answer, except
// a delete's not_found, which is a 404 with the item body (as in ES).
Reply Api::WriteOne(const httplib::Request& req, WriteOp op) {
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

Reply Api::WriteDoc(const httplib::Request& req, const std::string& index, const std::string& id,
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

Reply Api::UpdateDoc(const httplib::Request& req, const std::string& index, const std::string& id) {
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

Reply Api::DeleteDoc(const httplib::Request& req, const std::string& index, const std::string& id) {
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

void Api::WriteFoundDoc(Writer& w, const IndexInfo& idx, absl::string_view id,
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

Reply Api::GetDoc(const httplib::Request& req, const std::string& index, const std::string& id,
                  bool source_only) {
  if (auto e = CheckParams(req, {"_source", "_source_includes", "_source_excludes", "realtime",
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

Reply Api::Mget(const httplib::Request& req, const std::string& url_index) {
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
    if (item.index.empty()) absl::StrAppend(&errors, n, ": index is missing for doc ", n - 1, ";");
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

}  // namespace rtdw::eslite
