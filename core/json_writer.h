// The one JSON writer of rtdw's output records and documents (log-split's and db-split's DWD
// records, dau's and order-wide's ES documents, dimension rows).
//
// It writes the same bytes as RapidJSON's rapidjson::Writer<rapidjson::StringBuffer> (the writer
// rtdw used before; tests/transforms/json_writer_test.cc compares the two on hand-made and
// thousands of random values): no whitespace; a string's characters as they are except `"` and
// `\` (escaped as `\"`, `\\`) and the control characters U+0000-U+001F (`\b`, `\t`, `\n`, `\f`,
// `\r`, else `\u00XX` with upper-case hex digits); bytes >= 0x80, `/`, DEL and U+2028/U+2029
// unescaped. A number of a parsed record is written as its source text, byte for byte.
//
// What differs is the cost: a string is written with one append per run of characters that need
// no escape (found eight bytes at a time) and a number text or raw value with one append, where
// RapidJSON's Writer pushes byte by byte.
//
// Thread-safety: a JsonWriter is not thread-safe; WriteJson/AppendJsonValue keep per-thread
// scratch. Errors: none — every call succeeds (the bool results mirror rapidjson::Writer's so that
// the two are interchangeable); the text written is valid JSON when the calls are (one value at
// the root, keys only directly in objects), as with RapidJSON's Writer. Input strings are not
// validated as UTF-8: they come from JsonParser, which has validated them, or from rtdw itself.
#ifndef RTDW_CORE_JSON_WRITER_H_
#define RTDW_CORE_JSON_WRITER_H_

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>
#include <vector>

#include "core/json_limits.h"
#include "rapidjson/rapidjson.h"
#include "rapidjson/stringbuffer.h"

namespace rtdw {

namespace json_internal {
// The position of the first byte of s[0..n) that JSON must escape (< 0x20, `"`, `\`), or n.
inline size_t FirstToEscape(const char* s, size_t n) {
  constexpr uint64_t kOnes = 0x0101010101010101ull;
  constexpr uint64_t kHigh = 0x8080808080808080ull;
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t w;
    std::memcpy(&w, s + i, 8);
    const uint64_t quote = w ^ (kOnes * '"');
    const uint64_t backslash = w ^ (kOnes * '\\');
    // Each term is non-zero iff some byte is < 0x20, is 0 (i.e. `"`), is 0 (i.e. `\`).
    const uint64_t hit =
        ((w - kOnes * 0x20) & ~w) | ((quote - kOnes) & ~quote) | ((backslash - kOnes) & ~backslash);
    if (hit & kHigh) break;
  }
  for (; i < n; ++i) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c < 0x20 || c == '"' || c == '\\') return i;
  }
  return n;
}
// The escaping path of AppendJsonString: s[0..n) from its first byte to escape, `at`.
void AppendJsonStringSlow(rapidjson::StringBuffer* out, const char* s, size_t n, size_t at);
}  // namespace json_internal

// Appends `s` as a JSON string (quoted, escaped as described above).
inline void AppendJsonString(rapidjson::StringBuffer* out, std::string_view s) {
  const size_t n = s.size();
  const size_t at = json_internal::FirstToEscape(s.data(), n);
  if (at != n) {
    json_internal::AppendJsonStringSlow(out, s.data(), n, at);
    return;
  }
  char* p = out->Push(n + 2);
  p[0] = '"';
  if (n > 0) std::memcpy(p + 1, s.data(), n);
  p[n + 1] = '"';
}

// Appends `text` as it is (a number's source text, or JSON text rtdw wrote before).
inline void AppendRaw(rapidjson::StringBuffer* out, std::string_view text) {
  if (!text.empty()) std::memcpy(out->Push(text.size()), text.data(), text.size());
}

// Appends `v` and all it contains: numbers as their source text, strings escaped, objects with
// each name once — where a name occurs more than once only its last member is written, at that
// member's place (duplicate keys: the last one wins). Iterative: no recursion on the input.
namespace json_internal {
void AppendJsonContainer(rapidjson::StringBuffer* out, const JsonValue& v);
}  // namespace json_internal
inline void AppendJsonValue(rapidjson::StringBuffer* out, const JsonValue& v) {
  switch (v.type()) {
    case JsonValue::Type::kString:
      AppendJsonString(out, v.text());
      break;
    case JsonValue::Type::kNumber:
      AppendRaw(out, v.text());
      break;
    case JsonValue::Type::kNull:
      AppendRaw(out, "null");
      break;
    case JsonValue::Type::kFalse:
      AppendRaw(out, "false");
      break;
    case JsonValue::Type::kTrue:
      AppendRaw(out, "true");
      break;
    case JsonValue::Type::kObject:
    case JsonValue::Type::kArray:
      json_internal::AppendJsonContainer(out, v);
      break;
  }
}

// A streaming writer with rapidjson::Writer's interface (the calls rtdw makes of it), writing
// into a rapidjson::StringBuffer: it places the commas and colons between the values it is given.
class JsonWriter {
 public:
  JsonWriter() = default;
  explicit JsonWriter(rapidjson::StringBuffer& out) : out_(&out) {}

  // Writes to `out` from now on, as a new document (the buffer itself is not cleared).
  void Reset(rapidjson::StringBuffer& out) {
    out_ = &out;
    levels_.clear();
  }

  bool Null() { return Raw("null"); }
  bool Bool(bool b) { return Raw(b ? "true" : "false"); }
  bool Int(int i) { return Int64(i); }
  bool Uint(unsigned u) { return Uint64(u); }
  bool Int64(int64_t i);
  bool Uint64(uint64_t u);
  bool String(const char* s, size_t n) {
    Prefix();
    AppendJsonString(out_, std::string_view(s, n));
    return true;
  }
  bool String(std::string_view s) { return String(s.data(), s.size()); }
  bool Key(const char* s, size_t n) { return String(s, n); }
  bool Key(std::string_view s) { return String(s.data(), s.size()); }
  // `json` is written as it is, as one value (RapidJSON: RawValue; the type is not used).
  bool RawValue(const char* json, size_t n, rapidjson::Type /*type*/) {
    return Raw(std::string_view(json, n));
  }
  bool StartObject() { return Open(false, '{'); }
  bool EndObject(rapidjson::SizeType = 0) { return Close('}'); }
  bool StartArray() { return Open(true, '['); }
  bool EndArray(rapidjson::SizeType = 0) { return Close(']'); }

  // Writes `v` as one value (AppendJsonValue).
  void Value(const JsonValue& v) {
    Prefix();
    AppendJsonValue(out_, v);
  }

 private:
  // What rapidjson::Writer writes before a value: in an object `,` before a name (not the first)
  // and `:` before a value; in an array `,` before each element but the first.
  void Prefix() {
    if (levels_.empty()) return;
    uint32_t& level = levels_.back();  // values written in it * 2 + 1 for an array
    const uint32_t count = level >> 1;
    if (count > 0) out_->Put((level & 1) || count % 2 == 0 ? ',' : ':');
    level += 2;
  }
  bool Raw(std::string_view text) {
    Prefix();
    AppendRaw(out_, text);
    return true;
  }
  bool Open(bool array, char c) {
    Prefix();
    out_->Put(c);
    levels_.push_back(array ? 1 : 0);
    return true;
  }
  bool Close(char c) {
    levels_.pop_back();
    out_->Put(c);
    return true;
  }

  rapidjson::StringBuffer* out_ = nullptr;
  std::vector<uint32_t> levels_;  // the open containers, innermost last
};

// Writes `v` (and all it contains) to `w` as one value: AppendJsonValue.
inline void WriteJson(JsonWriter& w, const JsonValue& v) { w.Value(v); }

}  // namespace rtdw

#endif  // RTDW_CORE_JSON_WRITER_H_
