#include "core/json_limits.h"

#include <algorithm>
#include <charconv>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "core/status_util.h"
#include "rapidjson/error/en.h"

namespace rtdw {
namespace {

// Converts the text of a JSON number (already checked against the JSON grammar by the reader) into
// the handler call RapidJSON itself would make: Int64/Uint64 for an integer that fits, Double
// otherwise (correctly rounded, std::from_chars). A magnitude beyond the double range fails the
// parse (RapidJSON's "number too big"); one below it is a signed zero.
template <typename Target>
bool ConvertNumber(const char* s, size_t n, Target* t) {
  const char* end = s + n;
  if (std::find_if(s, end, [](char c) { return c == '.' || c == 'e' || c == 'E'; }) == end) {
    if (*s == '-') {
      int64_t i;
      auto r = std::from_chars(s, end, i);
      if (r.ec == std::errc() && r.ptr == end) return t->Int64(i);
    } else {
      uint64_t u;
      auto r = std::from_chars(s, end, u);
      if (r.ec == std::errc() && r.ptr == end) return t->Uint64(u);
    }
  }
  double d = 0;
  auto r = std::from_chars(s, end, d);
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
    d = *s == '-' ? -0.0 : 0.0;
  } else if (r.ec != std::errc()) {
    return false;
  }
  return t->Double(d);
}

// Forwards SAX events to `Target` (a rapidjson::Document) and stops the parse, by returning
// false, as soon as the nesting passes `max_depth`.
template <typename Target>
class DepthLimitedHandler {
 public:
  using Ch = char;
  DepthLimitedHandler(Target* target, int max_depth) : t_(target), max_depth_(max_depth) {}

  bool Null() { return t_->Null(); }
  bool Bool(bool b) { return t_->Bool(b); }
  bool Int(int i) { return t_->Int(i); }
  bool Uint(unsigned i) { return t_->Uint(i); }
  bool Int64(int64_t i) { return t_->Int64(i); }
  bool Uint64(uint64_t i) { return t_->Uint64(i); }
  bool Double(double d) { return t_->Double(d); }
  // Numbers arrive as their text (kParseNumbersAsStringsFlag) and are converted here: RapidJSON
  // 1.1's full-precision conversion turns a zero with a large exponent into garbage (`0e300` ->
  // -1.9e109, found by fuzz/log_record; its DiyFp::Normalize calls clz(0)).
  bool RawNumber(const Ch* s, rapidjson::SizeType n, bool /*copy*/) {
    return ConvertNumber(s, n, t_);
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

// The generator for Document::Populate: runs `reader` over `stream` into the document.
template <unsigned kFlags, typename Stream>
struct LimitedParse {
  rapidjson::Reader* reader;
  Stream* stream;
  int max_depth;
  rapidjson::ParseResult result;
  bool exceeded = false;

  bool operator()(rapidjson::Document& doc) {
    DepthLimitedHandler<rapidjson::Document> handler(&doc, max_depth);
    result = reader->Parse<kFlags>(*stream, handler);
    exceeded = handler.exceeded();
    return !result.IsError();
  }
};

// What the reader is asked for: kSafeParseFlags, numbers as text (converted by ConvertNumber).
constexpr unsigned kReaderFlags = kSafeParseFlags | rapidjson::kParseNumbersAsStringsFlag;

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
template <typename Gen>
JsonStatus Classify(const Gen& gen, size_t consumed, std::string_view text, int max_depth,
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
      if (gen.result.IsError()) {
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
    // ASCII fast path, eight bytes at a time.
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

JsonParser::JsonParser(JsonLimits limits, size_t pool_bytes)
    : limits_(limits),
      pool_buffer_(new char[std::max<size_t>(pool_bytes, 1024)]),
      pool_(pool_buffer_.get(), std::max<size_t>(pool_bytes, 1024)),
      doc_(&pool_) {
  limits_.max_depth = EffectiveDepth(limits_.max_depth);
}

JsonStatus JsonParser::Parse(std::string_view text) {
  detail_.clear();
  doc_.SetNull();
  pool_.Clear();
  if (limits_.max_bytes > 0 && text.size() > limits_.max_bytes) {
    detail_ =
        absl::StrCat("record of ", text.size(), " bytes is over the limit of ", limits_.max_bytes);
    return JsonStatus::kTooBig;
  }
  buffer_.assign(text.data(), text.size());  // NUL-terminated by std::string
  rapidjson::InsituStringStream stream(buffer_.data());
  LimitedParse<kReaderFlags | rapidjson::kParseInsituFlag, rapidjson::InsituStringStream> gen{
      &reader_, &stream, limits_.max_depth, {}, false};
  doc_.Populate(gen);
  JsonStatus st = Classify(gen, stream.Tell(), text, limits_.max_depth, &detail_);
  if (st != JsonStatus::kOk) doc_.SetNull();
  return st;
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
  LimitedParse<kReaderFlags, rapidjson::MemoryStream> gen{&reader, &ms, depth, {}, false};
  doc->Populate(gen);
  JsonStatus st = Classify(gen, ms.Tell(), text, depth, detail);
  if (st != JsonStatus::kOk) doc->SetNull();
  return st;
}

}  // namespace rtdw
