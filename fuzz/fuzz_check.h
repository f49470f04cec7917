// Helpers shared by the fuzz targets: a check that aborts (libFuzzer and the replay runner both
// report an abort as a crash, with the input that caused it), and a JSON validity check.
#ifndef RTDW_FUZZ_FUZZ_CHECK_H_
#define RTDW_FUZZ_FUZZ_CHECK_H_

#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "core/json_limits.h"
#include "core/json_writer.h"
#include "fuzz/rapidjson_writer_oracle.h"

#define FUZZ_CHECK(cond, what)                                                                   \
  do {                                                                                           \
    if (!(cond)) {                                                                               \
      std::fprintf(stderr, "%s:%d: fuzz invariant broken: %s (%s)\n", __FILE__, __LINE__, #cond, \
                   what);                                                                        \
      std::abort();                                                                              \
    }                                                                                            \
  } while (0)

namespace rtdw::fuzz {

// True when `text` is one valid JSON object (UTF-8, any depth up to the supported maximum).
inline bool IsJsonObject(std::string_view text) {
  rapidjson::Document doc;
  return ParseJsonSafely(text, JsonLimits{0, kMaxSupportedJsonDepth}, &doc) == JsonStatus::kOk &&
         doc.IsObject();
}

// True when `output` is JSON whose every number is written exactly as some number text of
// `input` (numbers pass through byte-exact: nothing converted them) and whose objects name each
// key once (duplicate keys resolved to one member).
inline bool NumbersAndNamesFrom(std::string_view output, std::string_view input) {
  JsonParser parser(JsonLimits{0, kMaxSupportedJsonDepth});
  if (parser.Parse(output) != JsonStatus::kOk) return false;
  std::vector<const JsonValue*> stack = {&parser.root()};
  while (!stack.empty()) {
    const JsonValue* v = stack.back();
    stack.pop_back();
    if (v->IsNumber()) {
      if (input.find(v->text()) == std::string_view::npos) return false;
    } else if (v->IsObject()) {
      std::vector<std::string_view> names;
      for (JsonValue::Member m : v->Members()) {
        for (std::string_view n : names) {
          if (n == m.name.text()) return false;
        }
        names.push_back(m.name.text());
        stack.push_back(&m.value);
      }
    } else if (v->IsArray()) {
      for (const JsonValue& e : v->Elements()) stack.push_back(&e);
    }
  }
  return true;
}

// True when rtdw's JSON writer (core/json_writer.h) writes `input`, if it parses, with the same
// bytes as RapidJSON's Writer (the oracle: rtdw's output path before the writer); true for input
// that does not parse. The oracle recurses: the depth is that of the job's parser (<= 64 here).
inline bool WriterAgreesWithRapidJson(std::string_view input, int max_depth) {
  JsonParser parser(JsonLimits{0, max_depth});
  if (parser.Parse(input) != JsonStatus::kOk) return true;
  rapidjson::StringBuffer sb;
  AppendJsonValue(&sb, parser.root());
  return std::string_view(sb.GetString(), sb.GetSize()) == RapidJsonWritten(parser.root());
}

// The tree of a parse, value by value in document order: type, size or text, and span, so that
// two parses can be compared exactly.
inline std::string TapeOf(const JsonValue& root) {
  std::string out;
  for (const JsonValue* v = &root; v != root.Next(); ++v) {
    out += std::to_string(static_cast<int>(v->type()));
    out += ' ';
    out += std::to_string(v->Next() - v);
    out += ' ';
    if (v->IsObject() || v->IsArray()) {
      out += std::to_string(v->Size());
    } else {
      out += std::to_string(v->text().size());
      out += ':';
      out += v->text();
    }
    out += '\n';
  }
  return out;
}

// True when JsonParser::Parse (rtdw's scanner, the reader for what it gives up on) and the
// reader alone agree on `input`: the same status, detail and tree.
inline bool ScannerAgreesWithReader(std::string_view input, int max_depth) {
  JsonParser scanned(JsonLimits{0, max_depth});
  JsonParser read(JsonLimits{0, max_depth});
  const JsonStatus a = scanned.Parse(input);
  const JsonStatus b = read.ParseWithReaderOnly(input);
  if (a != b || scanned.detail() != read.detail()) return false;
  return a != JsonStatus::kOk || TapeOf(scanned.root()) == TapeOf(read.root());
}

}  // namespace rtdw::fuzz

#endif  // RTDW_FUZZ_FUZZ_CHECK_H_
