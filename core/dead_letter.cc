#include "core/dead_letter.h"

#include <algorithm>

#include "absl/strings/escaping.h"
#include "core/dau_document.h"
#include "core/json_limits.h"
#include "rapidjson/stringbuffer.h"
#include "rapidjson/writer.h"

namespace rtdw {

std::string_view ReasonCode(Reason r) {
  switch (r) {
    case Reason::kNotJson:
      return "not_json";
    case Reason::kNotObject:
      return "not_object";
    case Reason::kBadUtf8:
      return "bad_utf8";
    case Reason::kTooBig:
      return "too_big";
    case Reason::kTooDeep:
      return "too_deep";
    case Reason::kTooManyItems:
      return "too_many_items";
    case Reason::kNoMid:
      return "no_mid";
    case Reason::kBadType:
      return "bad_type";
    case Reason::kNoPayload:
      return "no_payload";
    case Reason::kNoId:
      return "no_id";
    case Reason::kLate:
      return "late";
    case Reason::kFuture:
      return "future";
    case Reason::kJoinExpired:
      return "join_expired";
    case Reason::kEsRejected:
      return "es_rejected";
    case Reason::kUnknownTopic:
      return "unknown_topic";
  }
  return "unknown";
}

namespace {

using JsonWriter = rapidjson::Writer<rapidjson::StringBuffer>;

void Str(JsonWriter& w, std::string_view s) {
  w.String(s.data(), static_cast<rapidjson::SizeType>(s.size()));
}

// `s` as valid UTF-8 text for a JSON string: invalid sequences become U+FFFD. Used for the
// human fields (job, reason, detail, ...), which should be valid already.
std::string_view SafeText(std::string_view s, size_t limit, std::string* scratch) {
  s = s.substr(0, Utf8PrefixLength(s, limit));
  if (IsValidUtf8(s)) return s;
  scratch->clear();
  for (unsigned char c : s) {
    if (c < 0x80) {
      scratch->push_back(static_cast<char>(c));
    } else {
      scratch->append("\xEF\xBF\xBD");
    }
  }
  return *scratch;
}

}  // namespace

void AppendDeadLetterJson(const DeadLetterFields& f, std::string* out) {
  rapidjson::StringBuffer sb;
  JsonWriter w(sb);
  std::string scratch;
  w.StartObject();
  w.Key("job");
  Str(w, SafeText(f.job, 256, &scratch));
  w.Key("reason");
  Str(w, SafeText(f.reason, 256, &scratch));
  w.Key("detail");
  Str(w, SafeText(f.detail, kDeadLetterMaxDetailBytes, &scratch));
  if (!f.index.empty()) {
    w.Key("index");
    Str(w, SafeText(f.index, 1024, &scratch));
  }
  if (!f.id.empty()) {
    w.Key("id");
    Str(w, SafeText(f.id, 1024, &scratch));
  }
  if (f.status >= 0) {
    w.Key("status");
    w.Int(f.status);
  }
  if (f.version >= 0) {
    w.Key("version");
    w.Int64(f.version);
  }
  if (!f.src.empty()) {
    w.Key("src");
    Str(w, SafeText(f.src, 1024, &scratch));
  }
  w.Key("ts_ingest");
  w.Int64(f.ts_ingest_ms);
  bool truncated = false;
  if (IsValidUtf8(f.raw)) {
    size_t n = Utf8PrefixLength(f.raw, kDeadLetterMaxRawBytes);
    truncated = n < f.raw.size();
    w.Key("raw");
    Str(w, f.raw.substr(0, n));
  } else {
    size_t n = std::min(f.raw.size(), kDeadLetterMaxRawBytes);
    truncated = n < f.raw.size();
    w.Key("raw_base64");
    std::string b64 = absl::Base64Escape(absl::string_view(f.raw.data(), n));
    Str(w, b64);
  }
  if (truncated) {
    w.Key("truncated");
    w.Bool(true);
  }
  w.EndObject();
  out->append(sb.GetString(), sb.GetSize());
}

std::string DeadLetterJson(const DeadLetterFields& f) {
  std::string s;
  AppendDeadLetterJson(f, &s);
  return s;
}

DeadLetterIdentity IdentifyDeadLetter(std::string_view line) {
  // The same reading of the fields as the readers of kept letters (dead letters are rare: the
  // copy of `raw` it makes does not matter).
  const ParsedDeadLetter p = ParseDeadLetter(line);
  DeadLetterIdentity out;
  out.reason = p.reason;
  if (!p.ok) return out;
  if (out.reason == ReasonCode(Reason::kEsRejected)) {
    if (!p.index.empty() && !p.id.empty() && p.index.find('\0') == std::string::npos) {
      out.kind = DeadLetterIdentity::kDocument;
      out.index = p.index;
      out.id = p.id;
    }
    return out;
  }
  if (ParseRtdwSrc(p.src, &out.topic, &out.partition, &out.offset) && out.offset >= 0 &&
      out.topic.find('\0') == std::string::npos) {
    out.kind = DeadLetterIdentity::kPosition;
  }
  return out;
}

void SendToDeadLetter(const InputRecord& in, std::string_view job, Reason reason,
                      std::string_view detail, std::string_view src, int64_t ts_ingest_ms,
                      std::string* line, RecordSink* sink) {
  DeadLetterFields f;
  f.job = job;
  f.reason = ReasonCode(reason);
  f.detail = detail;
  f.src = src;
  f.ts_ingest_ms = ts_ingest_ms;
  f.raw = in.value;
  line->clear();
  AppendDeadLetterJson(f, line);
  sink->DeadLetter(DeadLetterRecord{in.key, *line, f.reason, src});
}

ParsedDeadLetter ParseDeadLetter(std::string_view line) {
  ParsedDeadLetter p;
  JsonParser parser(JsonLimits{0, kMaxSupportedJsonDepth});
  if (parser.Parse(line) != JsonStatus::kOk || !parser.root().IsObject()) return p;
  const JsonValue& d = parser.root();
  auto str = [&](const char* k, std::string* out) {  // of duplicate keys the last one
    const JsonValue* v = d.Find(k);
    if (v == nullptr || !v->IsString()) return false;
    out->assign(v->text());
    return true;
  };
  p.ok = true;
  str("reason", &p.reason);
  str("index", &p.index);
  str("id", &p.id);
  p.has_raw = str("raw", &p.raw);
  str("src", &p.src);
  if (const JsonValue* v = d.Find("version"); v != nullptr && v->IsInt64() && v->GetInt64() >= 0) {
    p.version = v->GetInt64();
  }
  const JsonValue* t = d.Find("truncated");
  p.truncated = t != nullptr && t->GetBool();
  return p;
}

}  // namespace rtdw
