// The oracle of rtdw's JSON writer (core/json_writer.h): a JsonValue written with RapidJSON's
// rapidjson::Writer, as rtdw wrote its output before the writer (json_limits.cc's WriteJsonValue
// up to 6df71c4: numbers as their source text through RawValue, strings through Writer::String,
// the last of duplicate keys at its place). Recursive: for tests and fuzz targets only, on values
// of bounded depth.
//
// One difference to rtdw's old output, on purpose: the oracle's Writer writes to a plain stream
// (OracleStream), so it escapes byte by byte as RapidJSON documents. rtdw's old path,
// Writer<StringBuffer> built with RAPIDJSON_SSE2 (no longer enabled), scans 16 bytes at a time with
// a mask that RapidJSON 1.1.0 gets wrong (writer.h: `space` is 0x19, not 0x1F): the control
// characters U+001A-U+001F inside an aligned 16-byte block of a string went out unescaped — not
// JSON. rtdw's writer escapes them as `\u001A`..`\u001F`, as the oracle does (json_writer_test:
// ControlCharactersRapidJsonsSse2WriterLeftRaw).
#ifndef RTDW_FUZZ_RAPIDJSON_WRITER_ORACLE_H_
#define RTDW_FUZZ_RAPIDJSON_WRITER_ORACLE_H_

#include <string>
#include <string_view>
#include <vector>

#include "core/json_limits.h"
#include "rapidjson/writer.h"

namespace rtdw::fuzz {

// A plain output stream for rapidjson::Writer (not StringBuffer: no SSE2 scan).
struct OracleStream {
  using Ch = char;
  std::string s;
  void Put(char c) { s.push_back(c); }
  void Flush() {}
};
using OracleWriter = rapidjson::Writer<OracleStream>;

inline void RapidJsonWrite(OracleWriter& w, const JsonValue& v) {
  switch (v.type()) {
    case JsonValue::Type::kNull:
      w.Null();
      return;
    case JsonValue::Type::kFalse:
    case JsonValue::Type::kTrue:
      w.Bool(v.GetBool());
      return;
    case JsonValue::Type::kNumber:
      w.RawValue(v.GetString(), v.GetStringLength(), rapidjson::kNumberType);
      return;
    case JsonValue::Type::kString:
      w.String(v.GetString(), v.GetStringLength());
      return;
    case JsonValue::Type::kArray:
      w.StartArray();
      for (const JsonValue& e : v.Elements()) RapidJsonWrite(w, e);
      w.EndArray();
      return;
    case JsonValue::Type::kObject: {
      std::vector<JsonValue::Member> members;
      for (JsonValue::Member m : v.Members()) members.push_back(m);
      w.StartObject();
      for (size_t i = 0; i < members.size(); ++i) {
        bool later = false;  // a later member has this name: it replaces this one
        for (size_t j = i + 1; j < members.size() && !later; ++j) {
          later = members[j].name.text() == members[i].name.text();
        }
        if (later) continue;
        w.Key(members[i].name.GetString(), members[i].name.GetStringLength());
        RapidJsonWrite(w, members[i].value);
      }
      w.EndObject();
      return;
    }
  }
}

// The text RapidJSON's Writer makes of `v`.
inline std::string RapidJsonWritten(const JsonValue& v) {
  OracleStream out;
  OracleWriter w(out);
  RapidJsonWrite(w, v);
  return out.s;
}

}  // namespace rtdw::fuzz

#endif  // RTDW_FUZZ_RAPIDJSON_WRITER_ORACLE_H_
