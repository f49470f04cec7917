#include "core/json_limits.h"

#include <algorithm>
#include <charconv>
#include <cstring>
#include <type_traits>

#include "absl/strings/str_cat.h"
#include "core/status_util.h"
#include "rapidjson/error/en.h"

namespace rtdw {
namespace {

// The double nearest to the text of a JSON number (already checked against the JSON grammar by
// the reader), correctly rounded (std::from_chars); false when its magnitude is beyond the double
// range (RapidJSON's "number too big"). One below the range is a signed zero.
bool NumberToDouble(const char* s, size_t n, double* d) {
  const char* end = s + n;
  auto r = std::from_chars(s, end, *d);
  if (r.ptr != end) return false;
  if (r.ec == std::errc::result_out_of_range) {
    // Too large or too small: the decimal exponent of the first significant digit says which.
    const char* p = s + (*s == '-' ? 1 : 0);
    int64_t int_digits = 0;
    while (p < end && *p == '0') ++p;
    while (p < end && *p >= '0' && *p <= '9') ++p, ++int_digits;
    int64_t lead = int_digits;  // digits before the point after leading zeros
    if (p < end && *p == '.') {
      ++p;
      if (int_digits == 0) {
        while (p < end && *p == '0') ++p, --lead;
      }
      while (p < end && *p >= '0' && *p <= '9') ++p;
    }
    int64_t exp = 0;
    if (p < end && (*p == 'e' || *p == 'E')) {
      ++p;
      bool neg = p < end && *p == '-';
      if (p < end && (*p == '-' || *p == '+')) ++p;
      for (; p < end && exp < 1'000'000; ++p) exp = exp * 10 + (*p - '0');
      if (neg) exp = -exp;
    }
    if (lead + exp > 0) return false;  // too big for a double
    *d = *s == '-' ? -0.0 : 0.0;
  } else if (r.ec != std::errc()) {
    return false;
  }
  return true;
}

bool IsIntegerText(const char* s, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    if (s[i] == '.' || s[i] == 'e' || s[i] == 'E') return false;
  }
  return n > 0;
}

// Whether the text of a JSON number lies within the double range, cheaply: RapidJSON's reader
// refuses long mantissas and large exponents itself, but lets through an exponent near the limit
// (`9e308`); without an exponent only a number of more than 308 digits can be beyond the range.
bool NumberInDoubleRange(const char* s, size_t n) {
  bool exponent = false;
  for (size_t i = 0; i < n; ++i) exponent |= (s[i] | 0x20) == 'e';
  if (!exponent && n < 300) return true;
  double d;
  return NumberToDouble(s, n, &d);
}

// A rapidjson::Document as the target of the reader with numbers as text: each number becomes
// the call RapidJSON itself would make: Int64/Uint64 for an integer that fits, Double otherwise
// (NumberToDouble). RapidJSON 1.1's own full-precision conversion turns a zero with a large
// exponent into garbage (`0e300` -> -1.9e109, found by fuzz/log_record; its DiyFp::Normalize
// calls clz(0)).
class ConvertingDocument {
 public:
  explicit ConvertingDocument(rapidjson::Document* d) : d_(d) {}
  bool Null() { return d_->Null(); }
  bool Bool(bool b) { return d_->Bool(b); }
  bool RawNumber(const char* s, rapidjson::SizeType n, bool /*copy*/) {
    const char* end = s + n;
    if (IsIntegerText(s, n)) {
      if (*s == '-') {
        int64_t i;
        auto r = std::from_chars(s, end, i);
        if (r.ec == std::errc() && r.ptr == end) return d_->Int64(i);
      } else {
        uint64_t u;
        auto r = std::from_chars(s, end, u);
        if (r.ec == std::errc() && r.ptr == end) return d_->Uint64(u);
      }
    }
    double d = 0;
    if (!NumberToDouble(s, n, &d)) {
      out_of_range_ = true;
      return false;
    }
    return d_->Double(d);
  }
  bool String(const char* s, rapidjson::SizeType n, bool copy) { return d_->String(s, n, copy); }
  bool Key(const char* s, rapidjson::SizeType n, bool copy) { return d_->Key(s, n, copy); }
  bool StartObject() { return d_->StartObject(); }
  bool EndObject(rapidjson::SizeType n) { return d_->EndObject(n); }
  bool StartArray() { return d_->StartArray(); }
  bool EndArray(rapidjson::SizeType n) { return d_->EndArray(n); }
  bool out_of_range() const { return out_of_range_; }

 private:
  rapidjson::Document* d_;
  bool out_of_range_ = false;
};

}  // namespace

// Builds the JsonValue array of an in-place parse: every value is appended in document order; a
// container's size and span are filled in at its end.
class JsonTapeBuilder {
 public:
  JsonTapeBuilder(std::vector<JsonValue>* tape, std::vector<uint32_t>* open)
      : tape_(tape), open_(open) {}

  bool Null() { return Scalar(JsonValue::Type::kNull, nullptr, 0); }
  bool Bool(bool b) {
    return Scalar(b ? JsonValue::Type::kTrue : JsonValue::Type::kFalse, nullptr, 0);
  }
  // In place (kParseInsituFlag) the text of numbers and strings stays in the parser's buffer.
  bool RawNumber(const char* s, rapidjson::SizeType n, bool /*copy*/) {
    if (!NumberInDoubleRange(s, n)) {
      out_of_range_ = true;
      return false;
    }
    return Scalar(JsonValue::Type::kNumber, s, n);
  }
  bool String(const char* s, rapidjson::SizeType n, bool /*copy*/) {
    return Scalar(JsonValue::Type::kString, s, n);
  }
  bool Key(const char* s, rapidjson::SizeType n, bool copy) { return String(s, n, copy); }
  bool StartObject() { return Open(JsonValue::Type::kObject); }
  bool EndObject(rapidjson::SizeType n) { return Close(n); }
  bool StartArray() { return Open(JsonValue::Type::kArray); }
  bool EndArray(rapidjson::SizeType n) { return Close(n); }

  bool out_of_range() const { return out_of_range_; }

 private:
  bool Scalar(JsonValue::Type t, const char* s, rapidjson::SizeType n) {
    JsonValue& v = tape_->emplace_back();
    v.ptr_ = s;
    v.len_ = n;
    v.meta_ = (1u << 3) | static_cast<uint32_t>(t);
    return true;
  }
  bool Open(JsonValue::Type t) {
    open_->push_back(static_cast<uint32_t>(tape_->size()));
    tape_->emplace_back().meta_ = static_cast<uint32_t>(t);
    return true;
  }
  bool Close(rapidjson::SizeType n) {
    uint32_t at = open_->back();
    open_->pop_back();
    JsonValue& v = (*tape_)[at];
    v.len_ = n;
    v.meta_ |= (static_cast<uint32_t>(tape_->size()) - at) << 3;
    return true;
  }

  std::vector<JsonValue>* tape_;
  std::vector<uint32_t>* open_;
  bool out_of_range_ = false;
};

// rtdw's own scanner of records, for the common case (JsonParser::Parse on valid UTF-8): it builds
// the same tape as RapidJSON's reader and JsonTapeBuilder, in place and in one pass, without the
// reader's per-event calls and its number conversion. It accepts a subset of what the reader
// accepts and gives up (false) on anything else: any error, nesting beyond the limit, a number
// with an exponent or of 300 bytes or more (whose range the reader and NumberInDoubleRange judge),
// an escape of an unpaired surrogate, a control character in a string. A text it gives up on is
// parsed again by the reader, which then decides, with the reader's status and detail; so a text
// it accepts is one the reader accepts with the same tape (json_limits_test's
// ScannerAgreesWithTheReader; the fuzz targets compare the two on every input). Strings are
// unescaped in place and, as the reader does in place, followed by a NUL byte.
class JsonScanner {
 public:
  // Scans text[0, n): valid UTF-8, followed by at least kJsonScanPadding NUL bytes (which end
  // every scan: NUL is a control character, and no token).
  static bool Scan(char* text, size_t n, int max_depth, std::vector<JsonValue>* tape,
                   std::vector<uint32_t>* open) {
    return Run(text, text + n, max_depth, tape, open);
  }

 private:
  static bool IsWs(char c) { return c == ' ' || c == '\n' || c == '\r' || c == '\t'; }
  static char* SkipWs(char* p) {
    while (IsWs(*p)) ++p;
    return p;
  }
  static void Scalar(std::vector<JsonValue>* tape, JsonValue::Type t, const char* s, size_t n) {
    JsonValue v;  // built whole, then stored once
    v.ptr_ = s;
    v.len_ = static_cast<uint32_t>(n);
    v.meta_ = (1u << 3) | static_cast<uint32_t>(t);
    tape->push_back(v);
  }
  static unsigned Hex(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return 16;
  }
  // Four hex digits at p (the padding's NULs are not digits).
  static bool Hex4(const char* p, unsigned* cp) {
    unsigned v = 0;
    for (int i = 0; i < 4; ++i) {
      const unsigned h = Hex(p[i]);
      if (h > 15) return false;
      v = v * 16 + h;
    }
    *cp = v;
    return true;
  }
  // The first byte at or after p that is a quote, a backslash or a control character (NUL
  // included, so the padding stops it), eight bytes at a time. In each mask only bytes at or
  // above the first true hit can be false hits, so its lowest set bit is exact.
  static char* NextSpecial(char* p) {
    constexpr uint64_t kOnes = 0x0101010101010101ull;
    constexpr uint64_t kHigh = 0x8080808080808080ull;
    while (true) {
      uint64_t x;
      std::memcpy(&x, p, 8);
      const uint64_t q = x ^ (kOnes * '"');
      const uint64_t b = x ^ (kOnes * '\\');
      const uint64_t hit =
          (((x - kOnes * 0x20) & ~x) | ((q - kOnes) & ~q) | ((b - kOnes) & ~b)) & kHigh;
      if (hit != 0) return p + (__builtin_ctzll(hit) >> 3);
      p += 8;
    }
  }

  // At the opening quote *p: appends the string's value (kString) to the tape and returns the
  // position after its closing quote, or nullptr. The common case (nothing to unescape) inline.
  __attribute__((always_inline)) static char* String(char* p, std::vector<JsonValue>* tape) {
    char* const start = p + 1;
    p = NextSpecial(start);
    if (__builtin_expect(*p == '"', 1)) {
      Scalar(tape, JsonValue::Type::kString, start, p - start);
      *p = '\0';  // as the reader does in place
      return p + 1;
    }
    return StringWithEscapes(start, p, tape);
  }
  // The rest of String from the first byte `p` of the string at `start` that is not a plain
  // character.
  __attribute__((noinline)) static char* StringWithEscapes(char* const start, char* p,
                                                           std::vector<JsonValue>* tape) {
    char* w = p;  // where unescaped bytes go
    while (true) {
      if (*p == '"') break;
      if (*p != '\\') return nullptr;  // a control character, NUL or the end: not a string
      ++p;
      switch (*p++) {
        case '"':
          *w++ = '"';
          break;
        case '\\':
          *w++ = '\\';
          break;
        case '/':
          *w++ = '/';
          break;
        case 'b':
          *w++ = '\b';
          break;
        case 'f':
          *w++ = '\f';
          break;
        case 'n':
          *w++ = '\n';
          break;
        case 'r':
          *w++ = '\r';
          break;
        case 't':
          *w++ = '\t';
          break;
        case 'u': {
          unsigned cp;
          if (!Hex4(p, &cp)) return nullptr;
          p += 4;
          if (cp >= 0xD800 && cp <= 0xDFFF) {
            // Only a high surrogate followed by the escape of a low one is a character.
            unsigned lo;
            if (cp > 0xDBFF || p[0] != '\\' || p[1] != 'u' || !Hex4(p + 2, &lo) || lo < 0xDC00 ||
                lo > 0xDFFF) {
              return nullptr;
            }
            p += 6;
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
          }
          if (cp < 0x80) {
            *w++ = static_cast<char>(cp);
          } else if (cp < 0x800) {
            *w++ = static_cast<char>(0xC0 | (cp >> 6));
            *w++ = static_cast<char>(0x80 | (cp & 0x3F));
          } else if (cp < 0x10000) {
            *w++ = static_cast<char>(0xE0 | (cp >> 12));
            *w++ = static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
            *w++ = static_cast<char>(0x80 | (cp & 0x3F));
          } else {
            *w++ = static_cast<char>(0xF0 | (cp >> 18));
            *w++ = static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
            *w++ = static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
            *w++ = static_cast<char>(0x80 | (cp & 0x3F));
          }
          break;
        }
        default:
          return nullptr;  // an unknown escape, or the text ended after the backslash
      }
      // The run up to the next special byte, moved down over the escapes.
      char* run = p;
      p = NextSpecial(p);
      std::memmove(w, run, p - run);
      w += p - run;
    }
    Scalar(tape, JsonValue::Type::kString, start, w - start);
    *w = '\0';  // as the reader does in place (at the closing quote or before it)
    return p + 1;
  }

  static bool IsDigit(char c) { return c >= '0' && c <= '9'; }
  // At a number's first byte (or anything else): appends it (kNumber, its text) and returns the
  // position after it, or nullptr.
  static char* Number(char* p, std::vector<JsonValue>* tape) {
    char* const s = p;
    if (*p == '-') ++p;
    if (*p == '0') {
      ++p;
    } else if (*p >= '1' && *p <= '9') {
      while (IsDigit(*++p)) {
      }
    } else {
      return nullptr;
    }
    if (*p == '.') {
      if (!IsDigit(*++p)) return nullptr;
      while (IsDigit(*++p)) {
      }
    }
    if (*p == 'e' || *p == 'E') return nullptr;  // the reader and the range check decide
    if (p - s >= 300) return nullptr;
    Scalar(tape, JsonValue::Type::kNumber, s, p - s);
    return p;
  }

  static char* Literal(char* p, const char* word, size_t n, JsonValue::Type t,
                       std::vector<JsonValue>* tape) {
    for (size_t i = 0; i < n; ++i) {
      if (p[i] != word[i]) return nullptr;  // stops at the padding's NUL
    }
    Scalar(tape, t, nullptr, 0);
    return p + n;
  }

  static bool Run(char* p, char* end, int max_depth, std::vector<JsonValue>* tape,
                  std::vector<uint32_t>* open) {
    // Each turn of `value` reads one value; a container's members and elements are counted in its
    // len_ as they start, its span filled in at its end.
    auto open_container = [&](JsonValue::Type t) {
      if (open->size() >= static_cast<size_t>(max_depth)) return false;  // the reader says
      open->push_back(static_cast<uint32_t>(tape->size()));
      JsonValue& v = tape->emplace_back();
      v.len_ = 0;
      v.meta_ = static_cast<uint32_t>(t);
      ++p;
      return true;
    };
    auto close_container = [&] {
      const uint32_t at = open->back();
      open->pop_back();
      (*tape)[at].meta_ |= (static_cast<uint32_t>(tape->size()) - at) << 3;
      ++p;
    };
  value:
    p = SkipWs(p);
    switch (*p) {
      case '{':
        if (!open_container(JsonValue::Type::kObject)) return false;
        p = SkipWs(p);
        if (*p == '}') {
          close_container();
          goto after_value;
        }
        goto member;
      case '[':
        if (!open_container(JsonValue::Type::kArray)) return false;
        p = SkipWs(p);
        if (*p == ']') {
          close_container();
          goto after_value;
        }
        (*tape)[open->back()].len_ = 1;
        goto value;
      case '"':
        p = String(p, tape);
        break;
      case 'n':
        p = Literal(p, "null", 4, JsonValue::Type::kNull, tape);
        break;
      case 't':
        p = Literal(p, "true", 4, JsonValue::Type::kTrue, tape);
        break;
      case 'f':
        p = Literal(p, "false", 5, JsonValue::Type::kFalse, tape);
        break;
      default:
        p = Number(p, tape);
    }
    if (p == nullptr) return false;
  after_value:
    p = SkipWs(p);
    if (open->empty()) return p == end;
    {
      JsonValue& c = (*tape)[open->back()];
      const bool object = c.type() == JsonValue::Type::kObject;
      if (*p == ',') {
        ++p;
        if (!object) {
          ++c.len_;
          goto value;
        }
        p = SkipWs(p);
        goto member;
      }
      if (*p == (object ? '}' : ']')) {
        close_container();
        goto after_value;
      }
      return false;
    }
  member:
    if (*p != '"') return false;
    ++(*tape)[open->back()].len_;
    p = String(p, tape);
    if (p == nullptr) return false;
    p = SkipWs(p);
    if (*p != ':') return false;
    ++p;
    goto value;
  }
};

namespace {

// Forwards SAX events to `Target` (JsonTapeBuilder or ConvertingDocument) and stops the parse, by
// returning false, as soon as the nesting passes `max_depth`.
template <typename Target>
class DepthLimitedHandler {
 public:
  using Ch = char;
  DepthLimitedHandler(Target* target, int max_depth) : t_(target), max_depth_(max_depth) {}

  bool Null() { return t_->Null(); }
  bool Bool(bool b) { return t_->Bool(b); }
  // Numbers arrive as their text only (kParseNumbersAsStringsFlag): the reader never calls
  // Int/Uint/Int64/Uint64/Double.
  bool Int(int) { return false; }
  bool Uint(unsigned) { return false; }
  bool Int64(int64_t) { return false; }
  bool Uint64(uint64_t) { return false; }
  bool Double(double) { return false; }
  bool RawNumber(const Ch* s, rapidjson::SizeType n, bool copy) {
    return t_->RawNumber(s, n, copy);
  }
  bool String(const Ch* s, rapidjson::SizeType n, bool copy) { return t_->String(s, n, copy); }
  bool Key(const Ch* s, rapidjson::SizeType n, bool copy) { return t_->Key(s, n, copy); }
  bool StartObject() { return Enter() && t_->StartObject(); }
  bool EndObject(rapidjson::SizeType n) {
    --depth_;
    return t_->EndObject(n);
  }
  bool StartArray() { return Enter() && t_->StartArray(); }
  bool EndArray(rapidjson::SizeType n) {
    --depth_;
    return t_->EndArray(n);
  }

  bool exceeded() const { return exceeded_; }

 private:
  bool Enter() {
    if (++depth_ > max_depth_) {
      exceeded_ = true;
      return false;
    }
    return true;
  }
  Target* t_;
  int max_depth_;
  int depth_ = 0;
  bool exceeded_ = false;
};

// What one run of the reader left: its result and the target's own reasons to stop it.
struct ParseRun {
  rapidjson::ParseResult result;
  bool exceeded = false;      // nesting deeper than the limit
  bool out_of_range = false;  // a number beyond the double range
};

// Runs `reader` over `stream` into `target` through the depth limit.
template <unsigned kFlags, typename Stream, typename Target>
ParseRun RunParse(rapidjson::Reader* reader, Stream* stream, Target* target, int max_depth) {
  DepthLimitedHandler<Target> handler(target, max_depth);
  ParseRun run;
  run.result = reader->Parse<kFlags>(*stream, handler);
  run.exceeded = handler.exceeded();
  run.out_of_range = target->out_of_range();
  return run;
}

// The generator for Document::Populate: runs `reader` over `stream` into the document.
template <unsigned kFlags, typename Stream>
struct DocumentParse {
  rapidjson::Reader* reader;
  Stream* stream;
  int max_depth;
  ParseRun run;

  bool operator()(rapidjson::Document& doc) {
    ConvertingDocument target(&doc);
    run = RunParse<kFlags>(reader, stream, &target, max_depth);
    return !run.result.IsError();
  }
};

// What the reader is asked for: kSafeParseFlags, numbers as text.
constexpr unsigned kReaderFlags = kSafeParseFlags | rapidjson::kParseNumbersAsStringsFlag;
// For a text already known to be valid UTF-8 (JsonParser::Parse): validation cannot fail there.
// And RapidJSON's recursive reader instead of its iterative state machine: 15 % fewer instructions
// per log-split record, 10 % per dau record (docs/BENCHMARKS.md, "Issue 20"). Its recursion is
// bounded by the depth limit, not by the input: DepthLimitedHandler refuses a container beyond
// max_depth in StartObject/StartArray, which the reader calls before it descends into it, so the
// reader is never more than max_depth (at most kMaxSupportedJsonDepth) containers deep, whatever
// the text's nesting (json_limits_test: the deepest allowed parse on a 256 KB stack).
constexpr unsigned kTrustedUtf8ReaderFlags =
    kReaderFlags & ~rapidjson::kParseValidateEncodingFlag & ~rapidjson::kParseIterativeFlag;

int EffectiveDepth(int max_depth) { return std::clamp(max_depth, 1, kMaxSupportedJsonDepth); }

// The offset of the first `\u` escape of a UTF-16 low surrogate (DC00-DFFF) that does not end a
// pair, or npos. RapidJSON 1.1 refuses an unpaired high surrogate but turns an unpaired low one
// into the three bytes of a surrogate code point, which are not UTF-8 (and not valid JSON text for
// ES once written back). `text` parsed as JSON: a backslash occurs only in strings, as an escape.
size_t LoneLowSurrogateEscape(std::string_view text) {
  auto hex = [](char c) -> unsigned {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return 16;
  };
  size_t high_end = std::string_view::npos;  // where the last high-surrogate escape ended
  for (size_t i = text.find('\\'); i != std::string_view::npos && i + 1 < text.size();) {
    size_t next = i + 2;
    if (text[i + 1] == 'u' && i + 6 <= text.size()) {
      unsigned cp = 0;
      for (size_t k = i + 2; k < i + 6; ++k) cp = cp * 16 + hex(text[k]);
      next = i + 6;
      if (cp >= 0xDC00 && cp <= 0xDFFF && high_end != i) return i;
      high_end = cp >= 0xD800 && cp <= 0xDBFF ? next : std::string_view::npos;
    }
    i = text.find('\\', next);
  }
  return std::string_view::npos;
}

// Classifies a finished parse; fills `detail` on failure.
JsonStatus Classify(const ParseRun& gen, size_t consumed, std::string_view text, int max_depth,
                    std::string* detail) {
  if (gen.exceeded) {
    if (detail) *detail = absl::StrCat("JSON nesting deeper than ", max_depth);
    return JsonStatus::kTooDeep;
  }
  if (gen.result.IsError() || consumed != text.size()) {
    if (!IsValidUtf8(text)) {
      if (detail) *detail = "the record is not valid UTF-8";
      return JsonStatus::kBadUtf8;
    }
    if (gen.result.Code() == rapidjson::kParseErrorStringUnicodeSurrogateInvalid) {
      if (detail) {
        *detail = absl::StrCat("unpaired UTF-16 surrogate escape at offset ", gen.result.Offset(),
                               " (not a character)");
      }
      return JsonStatus::kBadUtf8;
    }
    if (detail) {
      if (gen.out_of_range) {
        *detail = absl::StrCat("number beyond the double range at offset ", gen.result.Offset());
      } else if (gen.result.IsError()) {
        *detail = absl::StrCat(rapidjson::GetParseError_En(gen.result.Code()), " at offset ",
                               gen.result.Offset());
      } else {
        *detail = absl::StrCat("unexpected NUL byte at offset ", consumed);
      }
    }
    return JsonStatus::kNotJson;
  }
  if (size_t at = LoneLowSurrogateEscape(text); at != std::string_view::npos) {
    if (detail) {
      *detail = absl::StrCat("unpaired UTF-16 surrogate escape ", ToAbsl(text.substr(at, 6)),
                             " at offset ", at, " (not a character)");
    }
    return JsonStatus::kBadUtf8;
  }
  return JsonStatus::kOk;
}

}  // namespace

std::string_view JsonStatusCode(JsonStatus s) {
  switch (s) {
    case JsonStatus::kOk:
      return "";
    case JsonStatus::kTooBig:
      return "too_big";
    case JsonStatus::kTooDeep:
      return "too_deep";
    case JsonStatus::kBadUtf8:
      return "bad_utf8";
    case JsonStatus::kNotJson:
      return "not_json";
  }
  return "not_json";
}

bool IsValidUtf8(std::string_view s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const unsigned char* end = p + s.size();
  while (p < end) {
    // ASCII fast path: 32 bytes at a time, then eight.
    while (end - p >= 32) {
      uint64_t w[4];
      std::memcpy(w, p, 32);
      if ((w[0] | w[1] | w[2] | w[3]) & 0x8080808080808080ull) break;
      p += 32;
    }
    while (end - p >= 8) {
      uint64_t w;
      std::memcpy(&w, p, 8);
      if (w & 0x8080808080808080ull) break;
      p += 8;
    }
    if (p >= end) break;
    unsigned char c = *p;
    if (c < 0x80) {
      ++p;
      continue;
    }
    int n;
    unsigned char lo = 0x80, hi = 0xbf;  // bounds of the second byte
    if (c >= 0xc2 && c <= 0xdf) {
      n = 1;
    } else if (c >= 0xe0 && c <= 0xef) {
      n = 2;
      if (c == 0xe0) lo = 0xa0;  // no overlong forms
      if (c == 0xed) hi = 0x9f;  // no surrogates
    } else if (c >= 0xf0 && c <= 0xf4) {
      n = 3;
      if (c == 0xf0) lo = 0x90;  // no overlong forms
      if (c == 0xf4) hi = 0x8f;  // nothing above U+10FFFF
    } else {
      return false;
    }
    if (end - p <= n) return false;
    if (p[1] < lo || p[1] > hi) return false;
    for (int k = 2; k <= n; ++k) {
      if ((p[k] & 0xc0) != 0x80) return false;
    }
    p += n + 1;
  }
  return true;
}

size_t Utf8PrefixLength(std::string_view s, size_t limit) {
  if (s.size() <= limit) return s.size();
  size_t n = limit;
  while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xc0) == 0x80) --n;
  return n;
}

// ---------------------------------------------------------------------------------------------
// JsonValue, JsonParser

namespace {

// The sign and magnitude of a number written as an integer (`-?digits`, as the JSON grammar
// writes one); false for a fraction or exponent form or a magnitude beyond uint64.
bool IntegerParts(const JsonValue& v, bool* negative, uint64_t* magnitude) {
  if (!v.IsNumber()) return false;
  const char* p = v.GetString();
  const char* end = p + v.GetStringLength();
  *negative = p < end && *p == '-';
  if (*negative) ++p;
  if (p == end) return false;
  uint64_t m = 0;
  for (; p < end; ++p) {
    const unsigned digit = static_cast<unsigned char>(*p) - '0';
    if (digit > 9) return false;  // '.', 'e', 'E'
    if (m > (UINT64_MAX - digit) / 10) return false;
    m = m * 10 + digit;
  }
  *magnitude = m;
  return true;
}

template <typename T>
bool IntegerOf(const JsonValue& v, T* out) {
  bool negative;
  uint64_t m;
  if (!IntegerParts(v, &negative, &m)) return false;
  if constexpr (std::is_unsigned_v<T>) {
    if (negative && m != 0) return false;
    *out = m;
  } else {
    if (negative) {
      if (m > uint64_t{1} << 63) return false;
      *out = static_cast<int64_t>(0 - m);
    } else {
      if (m > static_cast<uint64_t>(INT64_MAX)) return false;
      *out = static_cast<int64_t>(m);
    }
  }
  return true;
}

}  // namespace

bool JsonValue::IsInt64() const {
  int64_t i;
  return IntegerOf(*this, &i);
}

bool JsonValue::IsUint64() const {
  uint64_t u;
  return IntegerOf(*this, &u);
}

int64_t JsonValue::GetInt64() const {
  int64_t i = 0;
  return IntegerOf(*this, &i) ? i : 0;
}

uint64_t JsonValue::GetUint64() const {
  uint64_t u = 0;
  return IntegerOf(*this, &u) ? u : 0;
}

const JsonValue* JsonValue::Find(std::string_view name) const {
  const JsonValue* found = nullptr;
  for (Member m : Members()) {
    if (JsonNameIs(m.name, name)) found = &m.value;
  }
  return found;
}

const JsonValue JsonParser::kNull;

JsonParser::JsonParser(JsonLimits limits) : limits_(limits) {
  limits_.max_depth = EffectiveDepth(limits_.max_depth);
}

JsonStatus JsonParser::Parse(std::string_view text) {
  detail_.clear();
  tape_.clear();
  open_.clear();
  const uint64_t max_bytes = limits_.max_bytes > 0 && limits_.max_bytes < kMaxJsonRecordBytes
                                 ? limits_.max_bytes
                                 : kMaxJsonRecordBytes;
  if (text.size() > max_bytes) {
    detail_ = absl::StrCat("record of ", text.size(), " bytes is over the limit of ", max_bytes);
    return JsonStatus::kTooBig;
  }
  CopyToBuffer(text);
  // RapidJSON's encoding validation decodes every byte of every string one by one (45 % of
  // log-split's transform, docs/BENCHMARKS.md). A text that is valid UTF-8 as a whole (one pass,
  // eight ASCII bytes at a time) cannot fail it, so it is parsed without: the same events, the
  // same result. Any other text takes the validating parse, as before, with the same errors.
  const bool valid_utf8 = IsValidUtf8(text);
  if (valid_utf8 && use_scanner_) {
    // rtdw's scanner first; what it gives up on, the reader parses again from the source text.
    if (JsonScanner::Scan(buffer_.get(), text.size(), limits_.max_depth, &tape_, &open_)) {
      return JsonStatus::kOk;
    }
    tape_.clear();
    open_.clear();
    CopyToBuffer(text);
  }
  return ParseWithReader(text, valid_utf8);
}

void JsonParser::CopyToBuffer(std::string_view text) {
  if (buffer_capacity_ < text.size() + kJsonScanPadding) {
    buffer_capacity_ = std::max(text.size() + kJsonScanPadding, 2 * buffer_capacity_);
    buffer_ = std::make_unique<char[]>(buffer_capacity_);
  }
  std::memcpy(buffer_.get(), text.data(), text.size());
  std::memset(buffer_.get() + text.size(), 0, kJsonScanPadding);
}

JsonStatus JsonParser::ParseWithReader(std::string_view text, bool valid_utf8) {
  rapidjson::InsituStringStream stream(buffer_.get());
  JsonTapeBuilder builder(&tape_, &open_);
  ParseRun run = valid_utf8 ? RunParse<kTrustedUtf8ReaderFlags | rapidjson::kParseInsituFlag>(
                                  &reader_, &stream, &builder, limits_.max_depth)
                            : RunParse<kReaderFlags | rapidjson::kParseInsituFlag>(
                                  &reader_, &stream, &builder, limits_.max_depth);
  JsonStatus st = Classify(run, stream.Tell(), text, limits_.max_depth, &detail_);
  if (st != JsonStatus::kOk) tape_.clear();
  return st;
}

// ---------------------------------------------------------------------------------------------
// Reading and copying records

void FindMembers(const JsonValue& obj, const std::string_view* names, size_t count,
                 const JsonValue** found) {
  for (size_t i = 0; i < count; ++i) found[i] = nullptr;
  for (JsonValue::Member m : obj.Members()) {
    for (size_t i = 0; i < count; ++i) {
      if (JsonNameIs(m.name, names[i])) {
        found[i] = &m.value;  // a later duplicate replaces an earlier one
        break;
      }
    }
  }
}

bool IdText(const JsonValue& v, std::string* out) {
  out->clear();
  if (v.IsString()) {
    std::string_view s = v.text();
    if (s.empty() || s.find('\0') != std::string_view::npos) return false;
    out->assign(s.data(), s.size());
    return true;
  }
  char buf[24];
  int64_t i;
  if (IntegerOf(v, &i)) {
    out->assign(buf, std::to_chars(buf, buf + sizeof(buf), i).ptr);
    return true;
  }
  uint64_t u;
  if (IntegerOf(v, &u)) {
    out->assign(buf, std::to_chars(buf, buf + sizeof(buf), u).ptr);
    return true;
  }
  return false;
}

JsonStatus ParseJsonSafely(std::string_view text, const JsonLimits& limits,
                           rapidjson::Document* doc, std::string* detail) {
  if (limits.max_bytes > 0 && text.size() > limits.max_bytes) {
    if (detail) {
      *detail =
          absl::StrCat("record of ", text.size(), " bytes is over the limit of ", limits.max_bytes);
    }
    return JsonStatus::kTooBig;
  }
  // MemoryStream reads an embedded NUL as the end: Tell() then says whether all text was read.
  rapidjson::MemoryStream ms(text.data(), text.size());
  rapidjson::Reader reader;
  int depth = EffectiveDepth(limits.max_depth);
  DocumentParse<kReaderFlags, rapidjson::MemoryStream> gen{&reader, &ms, depth, {}};
  doc->Populate(gen);
  JsonStatus st = Classify(gen.run, ms.Tell(), text, depth, detail);
  if (st != JsonStatus::kOk) doc->SetNull();
  return st;
}

}  // namespace rtdw
