#include "core/json_limits.h"

#include <algorithm>
#include <charconv>
#include <cstring>
#include <type_traits>

#include "absl/container/flat_hash_set.h"
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
  buffer_.assign(text.data(), text.size());  // NUL-terminated by std::string
  rapidjson::InsituStringStream stream(buffer_.data());
  JsonTapeBuilder builder(&tape_, &open_);
  // RapidJSON's encoding validation decodes every byte of every string one by one (45 % of
  // log-split's transform, docs/BENCHMARKS.md). A text that is valid UTF-8 as a whole (one pass,
  // eight ASCII bytes at a time) cannot fail it, so it is parsed without: the same events, the
  // same result. Any other text takes the validating parse, as before, with the same errors.
  ParseRun run = IsValidUtf8(text)
                     ? RunParse<kTrustedUtf8ReaderFlags | rapidjson::kParseInsituFlag>(
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

namespace {

using Writer = rapidjson::Writer<rapidjson::StringBuffer>;

void WriteScalar(Writer& w, const JsonValue& v) {
  switch (v.type()) {
    case JsonValue::Type::kNull:
      w.Null();
      break;
    case JsonValue::Type::kFalse:
    case JsonValue::Type::kTrue:
      w.Bool(v.GetBool());
      break;
    case JsonValue::Type::kNumber:
      // Writer::RawNumber of RapidJSON 1.1 quotes the text; RawValue writes it as it is.
      w.RawValue(v.GetString(), v.GetStringLength(), rapidjson::kNumberType);
      break;
    case JsonValue::Type::kString:
      w.String(v.GetString(), v.GetStringLength());
      break;
    case JsonValue::Type::kObject:
    case JsonValue::Type::kArray:
      break;
  }
}

// Scratch of WriteJson, per thread (reused: no allocation in steady state).
struct WriteScratch {
  struct Frame {
    const JsonValue* next;  // the next member's name, or the next element
    uint32_t left;          // members or elements still to visit
    uint32_t index;         // of the next member
    size_t dropped_base;    // where this object's flags start in `dropped`
    bool object;
  };
  std::vector<Frame> frames;
  std::vector<uint8_t> dropped;  // per member of the open objects: 1 = a later one has its name
  std::vector<std::string_view> names;
  absl::flat_hash_set<std::string_view> seen;
};

// Appends to `dropped` one flag per member of `obj`: 1 when a later member has the same name.
void MarkSuperseded(const JsonValue& obj, WriteScratch* s) {
  const size_t base = s->dropped.size();
  const uint32_t n = obj.Size();
  s->dropped.resize(base + n, 0);
  if (n < 2) return;
  if (n <= 32) {
    // A small open-addressing table of member indexes (+1), at most half full.
    const JsonValue* names[32];  // uninitialized: only the first j are read
    uint8_t slots[64] = {};
    uint32_t j = 0;
    for (JsonValue::Member m : obj.Members()) {
      const std::string_view k(m.name.GetString(), m.name.GetStringLength());
      names[j] = &m.name;
      uint32_t h = static_cast<uint32_t>(k.size());
      if (!k.empty()) {
        h = h * 31 + static_cast<uint8_t>(k.front());
        h = h * 31 + static_cast<uint8_t>(k[k.size() / 2]);
        h = h * 31 + static_cast<uint8_t>(k.back());
      }
      h = (h * 0x9E3779B1u) >> 26;
      for (;; h = (h + 1) & 63) {
        if (slots[h] == 0) {
          slots[h] = static_cast<uint8_t>(j + 1);
          break;
        }
        const uint32_t i = slots[h] - 1u;
        if (names[i]->GetStringLength() == k.size() &&
            std::memcmp(names[i]->GetString(), k.data(), k.size()) ==
                0) {  // an earlier member of this name: the later one replaces it
          s->dropped[base + i] = 1;
          slots[h] = static_cast<uint8_t>(j + 1);
          break;
        }
      }
      ++j;
    }
    return;
  }
  s->names.clear();
  for (JsonValue::Member m : obj.Members()) s->names.push_back(m.name.text());
  s->seen.clear();
  for (uint32_t i = n; i-- > 0;) {
    if (!s->seen.insert(s->names[i]).second) s->dropped[base + i] = 1;
  }
}

}  // namespace

namespace json_internal {

void WriteJsonValue(Writer& w, const JsonValue& v) {
  if (!v.IsObject() && !v.IsArray()) {
    WriteScalar(w, v);
    return;
  }
  thread_local WriteScratch scratch;
  WriteScratch* s = &scratch;
  const size_t frames_base = s->frames.size();
  auto open = [&](const JsonValue& c) {
    WriteScratch::Frame f{&c + 1, c.Size(), 0, s->dropped.size(), c.IsObject()};
    if (f.object) {
      w.StartObject();
      MarkSuperseded(c, s);
    } else {
      w.StartArray();
    }
    s->frames.push_back(f);
  };
  open(v);
  while (s->frames.size() > frames_base) {
    WriteScratch::Frame& f = s->frames.back();
    if (f.left == 0) {
      if (f.object) {
        w.EndObject();
      } else {
        w.EndArray();
      }
      s->dropped.resize(f.dropped_base);
      s->frames.pop_back();
      continue;
    }
    const JsonValue* item = f.next;
    --f.left;
    if (f.object) {
      const JsonValue* name = item;
      item = name + 1;
      f.next = item->Next();
      if (s->dropped[f.dropped_base + f.index++]) continue;
      w.Key(name->GetString(), name->GetStringLength());
    } else {
      f.next = item->Next();
    }
    if (item->IsObject() || item->IsArray()) {
      open(*item);  // invalidates `f`
    } else {
      WriteScalar(w, *item);
    }
  }
}

}  // namespace json_internal

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
