// Safe JSON parsing for untrusted records (rtdw's scanner for the common case, RapidJSON's reader
// for everything else and as the judge of what is refused).
//
// Two entry points share one reader, one set of checks and one classification of failures:
//  - JsonParser: the records parser of the jobs (log-split, db-split, dau, order-wide, dimension
//    rows). It builds a compact read-only tree (JsonValue) in which a number is kept as its JSON
//    text, exactly as in the source, so that whatever a job copies from a record into a DWD record,
//    a Redis row or an ES document is copied byte for byte (`10130.00` stays `10130.00`,
//    `4500000001.512456777` and 2^64-1 keep every digit): no number goes through a double. A
//    number is read as a value only where rtdw computes with it, and then only as an exact integer
//    (JsonValue::IsInt64/IsUint64, IdText). Duplicate keys: the last one wins (Find, FindMembers,
//    WriteJson), as in the seed's fastjson; the record is not rejected for it. On valid UTF-8 it
//    first runs its own one-pass scanner (JsonParser::Parse), which accepts a subset of what the
//    reader accepts and builds the same tree; anything else goes to the reader.
//  - ParseJsonSafely: a rapidjson::Document, for protocol JSON (ES requests and answers); numbers
//    there are converted exactly (std::from_chars, correctly rounded; not RapidJSON 1.1's
//    full-precision path, which turns `0e300` into garbage): a double written back is the same
//    double. Integers that fit int64/uint64 stay integers.
//
// Promises of both:
//  - The input's nesting never sets the stack depth: nesting deeper than the limit stops the parse
//    early, so a 200,000-deep `[[[...` record costs a few microseconds and no stack.
//    ParseJsonSafely and JsonParser on a text that is not valid UTF-8 are iterative
//    (kParseIterativeFlag); JsonParser's scanner is iterative (an explicit stack) and gives up at
//    the limit; on valid UTF-8 the reader JsonParser falls back to is RapidJSON's faster recursive
//    one, which the depth limit stops before it descends further (at most kMaxSupportedJsonDepth
//    levels, well under 256 KB of stack). The limit is clamped to kMaxSupportedJsonDepth.
//  - Strings are validated as UTF-8 (kParseValidateEncodingFlag; an escape of an unpaired UTF-16
//    surrogate, which RapidJSON 1.1 lets through for a low one, is kBadUtf8 too). A number beyond
//    the double range (`1e400`) is not JSON we accept (kNotJson): nothing downstream could read it.
//  - A successful parse consumed all of the text (an embedded NUL or trailing bytes fail it).
//  - Each failure has one reason, checked in this order: kTooBig (before any work), then the parse:
//    kTooDeep, kBadUtf8 (the text is not valid UTF-8), kNotJson (anything else).
//  - JsonParser reuses its buffers: in steady state a parse does no heap allocation except
//    RapidJSON's small parse stack.
#ifndef RTDW_CORE_JSON_LIMITS_H_
#define RTDW_CORE_JSON_LIMITS_H_

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "rapidjson/document.h"
#include "rapidjson/reader.h"
#include "rapidjson/stringbuffer.h"  // (for the includers that write JSON)
#include "rapidjson/writer.h"

namespace rtdw {

inline constexpr int kMaxSupportedJsonDepth = 1024;
// JsonParser refuses longer texts (kTooBig) whatever JsonLimits::max_bytes says: a text of n bytes
// has at most n values, and a JsonValue counts up to 2^29 - 1 of them.
inline constexpr uint64_t kMaxJsonRecordBytes = (uint64_t{1} << 29) - 1;

inline constexpr unsigned kSafeParseFlags = rapidjson::kParseIterativeFlag |
                                            rapidjson::kParseValidateEncodingFlag |
                                            rapidjson::kParseFullPrecisionFlag;

struct JsonLimits {
  uint64_t max_bytes = 0;  // 0: no size limit (JsonParser: kMaxJsonRecordBytes)
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

// One value of a document parsed by JsonParser: a read-only view into the parser's buffers, valid
// until the parser's next Parse (or its destruction). Values of one document lie in one array in
// document order (an object's members as key, value, key, value...), so navigation is pointer
// arithmetic. The accessors mirror rapidjson::Value's names where they mean the same.
class JsonValue {
 public:
  enum class Type : uint8_t { kNull, kFalse, kTrue, kNumber, kString, kObject, kArray };

  Type type() const { return static_cast<Type>(meta_ & 7); }
  bool IsNull() const { return type() == Type::kNull; }
  bool IsBool() const { return type() == Type::kFalse || type() == Type::kTrue; }
  bool GetBool() const { return type() == Type::kTrue; }
  bool IsNumber() const { return type() == Type::kNumber; }
  bool IsString() const { return type() == Type::kString; }
  bool IsObject() const { return type() == Type::kObject; }
  bool IsArray() const { return type() == Type::kArray; }

  // A string's characters (unescaped; may hold NUL bytes), or a number's JSON text exactly as in
  // the source (`10130.00`, `-0.50`, `1.5E+3`); "" for other types.
  std::string_view text() const {
    return IsString() || IsNumber() ? std::string_view(ptr_, len_) : std::string_view();
  }
  // Strings only (as rapidjson): the characters and their count.
  const char* GetString() const { return ptr_; }
  uint32_t GetStringLength() const { return len_; }

  // Exact integers. True only for a number written as an integer (`-?digits`: no fraction, no
  // exponent, so `1.5E+3`, `1E3` and `1000.0` are not integers) whose value fits the type.
  bool IsInt64() const;
  bool IsUint64() const;
  int64_t GetInt64() const;    // 0 unless IsInt64()
  uint64_t GetUint64() const;  // 0 unless IsUint64()

  // Objects: the number of members as written (duplicate keys counted); arrays: of elements.
  uint32_t Size() const { return IsObject() || IsArray() ? len_ : 0; }

  // The value of the LAST member named `name` (duplicate keys: the last one wins); nullptr when
  // there is none or this is not an object.
  const JsonValue* Find(std::string_view name) const;

  // The members of an object in source order, duplicates included: for (auto m : v.Members())
  // with m.name (a string value) and m.value. Empty for a non-object.
  struct Member {
    const JsonValue& name;
    const JsonValue& value;
  };
  class MemberIterator {
   public:
    Member operator*() const { return {*p_, *(p_ + 1)}; }
    MemberIterator& operator++() {
      p_ = (p_ + 1)->Next();
      --left_;
      return *this;
    }
    bool operator!=(const MemberIterator& o) const { return left_ != o.left_; }

   private:
    friend class JsonValue;
    MemberIterator(const JsonValue* p, uint32_t left) : p_(p), left_(left) {}
    const JsonValue* p_;
    uint32_t left_;
  };
  // The elements of an array in order: for (const JsonValue& e : v.Elements()). Empty for a
  // non-array.
  class ElementIterator {
   public:
    const JsonValue& operator*() const { return *p_; }
    ElementIterator& operator++() {
      p_ = p_->Next();
      --left_;
      return *this;
    }
    bool operator!=(const ElementIterator& o) const { return left_ != o.left_; }

   private:
    friend class JsonValue;
    ElementIterator(const JsonValue* p, uint32_t left) : p_(p), left_(left) {}
    const JsonValue* p_;
    uint32_t left_;
  };
  template <typename It>
  struct Range {
    It b, e;
    It begin() const { return b; }
    It end() const { return e; }
  };
  Range<MemberIterator> Members() const {
    uint32_t n = IsObject() ? len_ : 0;
    return {MemberIterator(this + 1, n), MemberIterator(nullptr, 0)};
  }
  Range<ElementIterator> Elements() const {
    uint32_t n = IsArray() ? len_ : 0;
    return {ElementIterator(this + 1, n), ElementIterator(nullptr, 0)};
  }

  // The value after this one and all it contains (the next sibling in document order).
  const JsonValue* Next() const { return this + (meta_ >> 3); }

 private:
  friend class JsonTapeBuilder;
  friend class JsonScanner;

  const char* ptr_ = nullptr;  // kString, kNumber: the text (in the parser's buffer)
  uint32_t len_ = 0;           // kString, kNumber: text bytes; kObject, kArray: members, elements
  uint32_t meta_ = 1 << 3;     // type in the low 3 bits; above them the number of values this one
                               // spans (itself and everything it contains; 1 for a scalar)
};

// A reusable in-place parser of records into JsonValues. Not thread-safe; one per worker.
class JsonParser {
 public:
  explicit JsonParser(JsonLimits limits);
  JsonParser(const JsonParser&) = delete;
  JsonParser& operator=(const JsonParser&) = delete;

  // Parses a copy of `text` in place. On kOk, root() is the document; it and everything reached
  // from it stay valid until the next Parse (or the parser's destruction). After a failure root()
  // is null.
  //
  // How: rtdw's own one-pass scanner builds the tree from a text that is valid UTF-8; a text it
  // does not accept (any error, nesting beyond the limit, a number with an exponent, an escaped
  // unpaired surrogate) is parsed again by RapidJSON's reader, which decides the status and the
  // detail. What the scanner accepts, the reader accepts with the same tree.
  JsonStatus Parse(std::string_view text);
  // The same parse with RapidJSON's reader only: the reference Parse is compared with (tests,
  // fuzz targets). The same contract and results as Parse.
  JsonStatus ParseWithReaderOnly(std::string_view text) {
    use_scanner_ = false;
    JsonStatus st = Parse(text);
    use_scanner_ = true;
    return st;
  }
  const JsonValue& root() const { return tape_.empty() ? kNull : tape_.front(); }
  // A sentence for a person after a failure ("Missing a comma ... at offset 17").
  const std::string& detail() const { return detail_; }
  const JsonLimits& limits() const { return limits_; }

 private:
  JsonStatus ParseWithReader(std::string_view text, bool valid_utf8);
  // buffer_ = text followed by kJsonScanPadding NUL bytes (the reader's terminator, the scanner's
  // stop for its eight-byte loads).
  void CopyToBuffer(std::string_view text);
  static constexpr size_t kJsonScanPadding = 16;

  static const JsonValue kNull;
  JsonLimits limits_;
  bool use_scanner_ = true;
  rapidjson::Reader reader_;
  std::unique_ptr<char[]> buffer_;
  size_t buffer_capacity_ = 0;
  std::vector<JsonValue> tape_;
  std::vector<uint32_t> open_;  // the containers being built, by their index in tape_
  std::string detail_;
};

// ---------------------------------------------------------------------------------------------
// Reading and copying records (JsonValue)

inline std::string_view JsonStringView(const JsonValue& v) { return v.text(); }

// True for a value a document leaves out: a missing member (nullptr), null, or "".
inline bool OmittedValue(const JsonValue* v) {
  return v == nullptr || v->IsNull() || (v->IsString() && v->GetStringLength() == 0);
}

// Whether the string value `name` (a member's name) is `s`: length and first byte before the call
// to memcmp, since most names looked up differ from a member's in one of them.
inline bool JsonNameIs(const JsonValue& name, std::string_view s) {
  return name.GetStringLength() == s.size() &&
         (s.empty() ||
          (name.GetString()[0] == s[0] && std::memcmp(name.GetString(), s.data(), s.size()) == 0));
}

// Fills found[i] with the value of the member of `obj` named names[i] (nullptr when absent; the
// last one when the name occurs twice). One pass over the members; `obj` must be an object.
void FindMembers(const JsonValue& obj, const std::string_view* names, size_t count,
                 const JsonValue** found);

// The text of an id as it appears in keys (Kafka keys, Redis keys, state keys, ES `_id`s): a
// non-empty string as is; an integer (JsonValue::IsInt64 or IsUint64: -2^63 .. 2^64-1) in
// decimal. False for anything else: null, a fraction or exponent form (`7.0`, `7E0`), an integer
// beyond 64 bits, a boolean, an object, an array, "", or a string holding a NUL byte (which the
// state store refuses).
bool IdText(const JsonValue& v, std::string* out);

// Writing a JsonValue back as JSON (numbers as their source text, the last of duplicate keys):
// WriteJson, AppendJsonValue in core/json_writer.h.

// A one-shot, copying parse into a rapidjson::Document with the same checks, for protocol JSON
// (ES requests and answers); numbers become int64/uint64/double as described above, and
// FindMember finds the first of duplicate keys. `doc` owns its strings afterwards. `detail`
// (optional) receives the sentence on failure. Records are read with JsonParser instead.
JsonStatus ParseJsonSafely(std::string_view text, const JsonLimits& limits,
                           rapidjson::Document* doc, std::string* detail = nullptr);

}  // namespace rtdw

#endif  // RTDW_CORE_JSON_LIMITS_H_
