#include "tools/es_lite/json.h"

#include "absl/strings/str_cat.h"
#include "core/json_limits.h"
#include "rapidjson/error/en.h"

namespace rtdw::eslite {

namespace {

bool DepthExceeds(absl::string_view json, int max_depth) {
  int depth = 0;
  bool in_string = false;
  for (size_t i = 0; i < json.size(); ++i) {
    char c = json[i];
    if (in_string) {
      if (c == '\\') {
        ++i;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > max_depth) return true;
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return false;
}

}  // namespace

std::optional<std::string> ParseJson(absl::string_view text, rapidjson::Document* doc) {
  // rtdw's safe parse (core/json_limits.h): the same flags, and numbers converted exactly
  // (RapidJSON 1.1's full-precision path stores `0e300` as garbage; found by fuzz/).
  //
  // The answer is that of a bracket count over the whole text (DepthExceeds) before the parse:
  // nesting beyond kMaxDepth anywhere in the text is refused as too deep even when the text is
  // malformed earlier. The count runs only when the parse fails: a parse limited to kMaxDepth
  // that succeeds consumed all of the text as JSON, whose bracket count outside strings is its
  // nesting, so the count could not have refused it; a failed parse reached at most kMaxDepth
  // levels (or stopped at kMaxDepth + 1, which the count then finds too), so its reason is the one
  // a parse limited to kMaxSupportedJsonDepth gave before. (The count alone was a tenth of a bulk
  // request's instructions.)
  std::string detail;
  rtdw::JsonStatus st = rtdw::ParseJsonSafely(std::string_view(text.data(), text.size()),
                                              rtdw::JsonLimits{0, kMaxDepth}, doc, &detail);
  if (st == rtdw::JsonStatus::kOk) return std::nullopt;
  if (DepthExceeds(text, kMaxDepth)) {
    return absl::StrCat("Document nesting depth exceeds the maximum allowed (", kMaxDepth, ")");
  }
  return detail;
}

absl::string_view Sv(const rapidjson::Value& v) { return {v.GetString(), v.GetStringLength()}; }

void WriteStr(Writer& w, absl::string_view s) {
  w.String(s.data(), static_cast<rapidjson::SizeType>(s.size()));
}

void WriteKey(Writer& w, absl::string_view s) {
  w.Key(s.data(), static_cast<rapidjson::SizeType>(s.size()));
}

std::string ToJson(const rapidjson::Value& v) {
  rapidjson::StringBuffer buf;
  Writer w(buf);
  v.Accept(w);
  return std::string(buf.GetString(), buf.GetSize());
}

std::string ScalarText(const rapidjson::Value& v) {
  if (v.IsString()) return std::string(Sv(v));
  if (v.IsBool()) return v.GetBool() ? "true" : "false";
  if (v.IsNull()) return "null";
  if (v.IsInt64()) return std::to_string(v.GetInt64());
  if (v.IsUint64()) return std::to_string(v.GetUint64());
  return ToJson(v);
}

void EsError::WriteCause(Writer& w) const {
  w.StartObject();
  WriteKey(w, "type");
  WriteStr(w, type);
  WriteKey(w, "reason");
  WriteStr(w, reason);
  for (const auto& [k, v] : extra) {
    WriteKey(w, k);
    WriteStr(w, v);
  }
  if (!caused_by_type.empty()) {
    WriteKey(w, "caused_by");
    w.StartObject();
    WriteKey(w, "type");
    WriteStr(w, caused_by_type);
    WriteKey(w, "reason");
    WriteStr(w, caused_by_reason);
    w.EndObject();
  }
  w.EndObject();
}

std::string EsError::Body() const {
  rapidjson::StringBuffer buf;
  Writer w(buf);
  w.StartObject();
  WriteKey(w, "error");
  w.StartObject();
  WriteKey(w, "root_cause");
  w.StartArray();
  EsError root = *this;
  root.caused_by_type.clear();
  if (!root_cause_type.empty()) {
    root = EsError();
    root.type = root_cause_type;
    root.reason = root_cause_reason;
  }
  root.WriteCause(w);
  w.EndArray();
  WriteKey(w, "type");
  WriteStr(w, type);
  WriteKey(w, "reason");
  WriteStr(w, reason);
  for (const auto& [k, v] : extra) {
    WriteKey(w, k);
    WriteStr(w, v);
  }
  if (!caused_by_type.empty()) {
    WriteKey(w, "caused_by");
    w.StartObject();
    WriteKey(w, "type");
    WriteStr(w, caused_by_type);
    WriteKey(w, "reason");
    WriteStr(w, caused_by_reason);
    w.EndObject();
  }
  w.EndObject();
  WriteKey(w, "status");
  w.Int(status);
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize());
}

EsError BadRequest(std::string type, std::string reason) {
  EsError e;
  e.status = 400;
  e.type = std::move(type);
  e.reason = std::move(reason);
  return e;
}

EsError IllegalArgument(std::string reason) {
  return BadRequest("illegal_argument_exception", std::move(reason));
}

EsError ParsingException(std::string reason) {
  return BadRequest("parsing_exception", std::move(reason));
}

EsError IndexNotFound(absl::string_view index) {
  EsError e;
  e.status = 404;
  e.type = "index_not_found_exception";
  e.reason = absl::StrCat("no such index [", index, "]");
  e.extra = {{"resource.type", "index_or_alias"},
             {"resource.id", std::string(index)},
             {"index_uuid", "_na_"},
             {"index", std::string(index)}};
  return e;
}

EsError Unsupported(std::string what) {
  return IllegalArgument(absl::StrCat(what, " is not supported by rtdw-es-lite"));
}

}  // namespace rtdw::eslite
