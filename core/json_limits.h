// Safe JSON parsing for untrusted records (RapidJSON).
//
// Promises:
//  - Never recurses on input: the parse is iterative (kParseIterativeFlag), and nesting deeper
//    than the limit stops it early, so a 200,000-deep `[[[...` record costs a few microseconds
//    and no stack. The limit is clamped to kMaxSupportedJsonDepth because code that later walks
//    a document (Value::Accept) does recurse.
//  - Strings are validated as UTF-8 (kParseValidateEncodingFlag; an escape of an unpaired UTF-16
//    surrogate, which RapidJSON 1.1 lets through for a low one, is kBadUtf8 too) and numbers are converted
//    exactly (std::from_chars, correctly rounded; not RapidJSON 1.1's full-precision path, which
//    turns `0e300` into garbage): a double written back is the same double. Integers that fit
//    int64/uint64 stay integers; a number beyond the double range is not JSON we accept.
//  - A successful parse consumed all of the text (an embedded NUL or trailing bytes fail it).
//  - Each failure has one reason, checked in this order: kTooBig (before any work), then the parse:
//    kTooDeep, kBadUtf8 (the text is not valid UTF-8), kNotJson (anything else).
//  - JsonParser reuses its buffers: in steady state a parse of a record that fits the pool does
//    no heap allocation except RapidJSON's small parse stack.
#ifndef RTDW_CORE_JSON_LIMITS_H_
#define RTDW_CORE_JSON_LIMITS_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "rapidjson/document.h"
#include "rapidjson/reader.h"

namespace rtdw {

inline constexpr int kMaxSupportedJsonDepth = 1024;

inline constexpr unsigned kSafeParseFlags = rapidjson::kParseIterativeFlag |
                                            rapidjson::kParseValidateEncodingFlag |
                                            rapidjson::kParseFullPrecisionFlag;

struct JsonLimits {
  uint64_t max_bytes = 0;  // 0: no size limit
  int max_depth = 64;      // objects and arrays; the root object is depth 1
};

enum class JsonStatus { kOk, kTooBig, kTooDeep, kBadUtf8, kNotJson };
// The dead-letter reason code of a failure: "too_big", "too_deep", "bad_utf8", "not_json";
// "" for kOk.
std::string_view JsonStatusCode(JsonStatus s);

// Strict UTF-8 (no overlong forms, no surrogates, nothing above U+10FFFF).
bool IsValidUtf8(std::string_view s);
// The length of the longest prefix of `s` of at most `limit` bytes that does not split a
// multi-byte character (for cutting valid UTF-8 text).
size_t Utf8PrefixLength(std::string_view s, size_t limit);

// A reusable in-place parser. Not thread-safe; one per worker.
class JsonParser {
 public:
  explicit JsonParser(JsonLimits limits, size_t pool_bytes = 64 * 1024);
  JsonParser(const JsonParser&) = delete;
  JsonParser& operator=(const JsonParser&) = delete;

  // Parses a copy of `text` in place. On kOk, root() is the document; its strings point into this
  // parser's buffer and stay valid until the next Parse (or the parser's destruction).
  JsonStatus Parse(std::string_view text);
  const rapidjson::Value& root() const { return doc_; }
  // A sentence for a person after a failure ("Missing a comma ... at offset 17").
  const std::string& detail() const { return detail_; }
  const JsonLimits& limits() const { return limits_; }

 private:
  JsonLimits limits_;
  std::unique_ptr<char[]> pool_buffer_;
  rapidjson::MemoryPoolAllocator<> pool_;
  rapidjson::Document doc_;
  rapidjson::Reader reader_;
  std::string buffer_;
  std::string detail_;
};

// A one-shot, copying parse with the same checks, for code off the hot path. `doc` owns its
// strings afterwards. `detail` (optional) receives the sentence on failure.
JsonStatus ParseJsonSafely(std::string_view text, const JsonLimits& limits,
                           rapidjson::Document* doc, std::string* detail = nullptr);

}  // namespace rtdw

#endif  // RTDW_CORE_JSON_LIMITS_H_
