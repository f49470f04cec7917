// rtdw-es-lite: _search, _count, _refresh and _mget on an index expression.

#include "httplib.h"
#include "tools/es_lite/api.h"
#include "tools/es_lite/search.h"

namespace rtdw::eslite {

Reply Api::IndexAction(const httplib::Request& req, const std::string& expr,
                       const std::string& what) {
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
    if (auto e = CheckParams(req, {"ignore_unavailable", "allow_no_indices", "expand_wildcards"})) {
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

}  // namespace rtdw::eslite
