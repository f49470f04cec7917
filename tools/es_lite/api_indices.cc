// rtdw-es-lite: the index API: create, delete, exists, _settings, _mapping, _index_template.

#include <map>

#include "absl/strings/str_cat.h"
#include "httplib.h"
#include "tools/es_lite/api.h"
#include "tools/es_lite/search.h"

namespace rtdw::eslite {

Reply Api::IndexCrud(const httplib::Request& req, const std::string& name) {
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
    if (auto e = CheckParams(req, {"ignore_unavailable", "allow_no_indices", "expand_wildcards"})) {
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
Reply Api::PutSettings(const httplib::Request& req, const std::string& expr) {
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

Reply Api::GetIndex(const httplib::Request& req, const std::string& expr, const std::string& part) {
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

Reply Api::IndexTemplate(const httplib::Request& req, const std::string& name) {
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

}  // namespace rtdw::eslite
