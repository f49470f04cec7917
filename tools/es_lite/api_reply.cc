// rtdw-es-lite: the reply and request-parameter helpers of the API handlers (tools/es_lite/api.h).

#include <algorithm>
#include <cstdio>
#include <map>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "httplib.h"
#include "tools/es_lite/api.h"

namespace rtdw::eslite {

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

bool HasDocType(Identity id) {
  return id == Identity::kEs7 || id == Identity::kEs710 || id == Identity::kEs6;
}

}  // namespace rtdw::eslite
