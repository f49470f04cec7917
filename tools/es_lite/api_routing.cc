// rtdw-es-lite: the route of each request (method and path) to its handler, and the fault API.

#include "absl/strings/str_split.h"
#include "httplib.h"
#include "tools/es_lite/api.h"

namespace rtdw::eslite {

Reply Api::Route(const httplib::Request& req) {
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
  if ((s0 == "_search" || s0 == "_count" || s0 == "_refresh" || s0 == "_mget") && seg.size() == 1) {
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

Reply Api::FaultsApi(const httplib::Request& req) {
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

}  // namespace rtdw::eslite
