// Internals shared by query.cc, aggs.cc and search.cc (not a public interface).
#ifndef RTDW_TOOLS_ES_LITE_SEARCH_INTERNAL_H_
#define RTDW_TOOLS_ES_LITE_SEARCH_INTERNAL_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "rapidjson/document.h"
#include "tools/es_lite/json.h"
#include "tools/es_lite/mapping.h"
#include "tools/es_lite/store.h"

namespace rtdw::eslite {

// A typed value of a field: a number (integer or floating), a string, or missing.
struct Val {
  enum Kind : uint8_t { kMissing, kInt, kDouble, kStr } kind = kMissing;
  int64_t i = 0;
  double d = 0;
  std::string s;

  static Val Int(int64_t v) {
    Val x;
    x.kind = kInt;
    x.i = v;
    return x;
  }
  static Val Double(double v) {
    Val x;
    x.kind = kDouble;
    x.d = v;
    return x;
  }
  static Val Str(std::string v) {
    Val x;
    x.kind = kStr;
    x.s = std::move(v);
    return x;
  }
  bool missing() const { return kind == kMissing; }
  double AsDouble() const { return kind == kInt ? static_cast<double>(i) : d; }
  void Write(Writer& w) const;
};

// Total order: numbers (compared numerically) < strings (bytewise); missing sorts first.
int CompareVal(const Val& a, const Val& b);
struct ValLess {
  bool operator()(const Val& a, const Val& b) const { return CompareVal(a, b) < 0; }
};

// One document during a scan; the source is parsed on first use.
class DocCtx {
 public:
  DocCtx() : alloc_(buffer_, sizeof(buffer_)) {}
  void Reset(const IndexInfo* index, int ordinal, absl::string_view id, const DocRecord* rec) {
    index_ = index;
    ordinal_ = ordinal;
    id_ = id;
    rec_ = rec;
    parsed_ = false;
  }
  const IndexInfo& index() const { return *index_; }
  int ordinal() const { return ordinal_; }
  absl::string_view id() const { return id_; }
  const DocRecord& record() const { return *rec_; }
  // The parsed source (an empty object when it cannot be parsed).
  const rapidjson::Value& source();

 private:
  const IndexInfo* index_ = nullptr;
  int ordinal_ = 0;
  absl::string_view id_;
  const DocRecord* rec_ = nullptr;
  bool parsed_ = false;
  alignas(8) char buffer_[65536];  // MemoryPoolAllocator puts 8-byte-aligned headers in it
  rapidjson::MemoryPoolAllocator<> alloc_;
  std::unique_ptr<rapidjson::Document> doc_;
};

// Every value at dotted `path` of `src` (objects and dotted keys both resolve; arrays flatten).
void CollectPath(const rapidjson::Value& src, absl::string_view path,
                 std::vector<const rapidjson::Value*>* out);
// The typed values of a mapped field (text fields give none: see Tokenize).
void FieldVals(const FieldInfo& f, const rapidjson::Value& src, std::vector<Val>* out);
// Converts one JSON value to the field's type; nullopt with *error when it cannot be.
std::optional<Val> ConvertForField(const FieldInfo& f, const rapidjson::Value& v,
                                   const DateFormat* format_override, std::string* error);
// ES's standard analyzer, approximately: lower-case runs of letters and digits.
std::vector<std::string> Tokenize(absl::string_view text);

EsError FielddataError(absl::string_view field);

// ---------------------------------------------------------------- queries

// A parsed query, independent of any mapping.
struct QueryNode {
  enum Kind {
    kMatchAll,
    kMatchNone,
    kTerm,
    kTerms,
    kRange,
    kMatch,
    kPrefix,
    kExists,
    kIds,
    kBool,
  } kind = kMatchAll;
  std::string field;
  std::vector<const rapidjson::Value*> values;  // term(s), match (one), prefix (one)
  const rapidjson::Value* gt = nullptr;
  const rapidjson::Value* gte = nullptr;
  const rapidjson::Value* lt = nullptr;
  const rapidjson::Value* lte = nullptr;
  std::string format;     // range on dates
  std::string time_zone;  // range on dates
  bool match_and = false;
  std::vector<std::string> ids;
  std::vector<QueryNode> must, filter, should, must_not;
  int minimum_should_match = -1;  // -1: ES default
};

Result<QueryNode> ParseQuery(const rapidjson::Value& q);

// A query bound to one index's mapping.
struct CompiledQuery {
  QueryNode::Kind kind = QueryNode::kMatchAll;
  enum Target { kField, kId, kIndex, kUnmapped } target = kField;
  const FieldInfo* field = nullptr;
  std::string path;  // source path
  bool text = false;
  std::vector<Val> values;
  std::vector<std::string> tokens;  // text term/match/prefix
  std::optional<Val> lo, hi;
  bool lo_incl = true, hi_incl = true;
  bool match_and = false;
  std::vector<std::string> ids;
  std::vector<CompiledQuery> must, filter, should, must_not;
  int msm = 0;
};

Result<CompiledQuery> CompileQuery(const QueryNode& q, const IndexInfo& index);
bool Matches(const CompiledQuery& q, DocCtx& doc);
// True when the query accepts every document (no source needed).
bool IsMatchAll(const CompiledQuery& q);

// ---------------------------------------------------------------- aggregations

class Collector {
 public:
  virtual ~Collector() = default;
  virtual void Collect(DocCtx& doc) = 0;
  // Writes the aggregation's result object.
  virtual Result<bool> Write(Writer& w) = 0;
};

struct AggNode;
using AggList = std::vector<AggNode>;

struct AggNode {
  std::string name;
  std::string type;
  const rapidjson::Value* params = nullptr;
  AggList subs;
  // Parsed parameters.
  std::string field;
  int size = 10;
  int64_t min_doc_count = -1;  // -1: the type's default
  bool order_by_key = false;
  bool order_asc = false;
  std::string format;
  std::string time_zone;
  // date_histogram
  char calendar_unit = 0;  // 'm','h','d','w','M','q','y' for calendar intervals
  int64_t fixed_interval_ms = 0;
  double histogram_interval = 0;
  QueryNode filter;
};

// Parses an "aggs"/"aggregations" object and checks it against the mappings of `indices`.
Result<AggList> ParseAggs(const rapidjson::Value& aggs, const std::vector<IndexInfo>& indices);
// Fresh collectors for a list of aggregations.
std::vector<std::unique_ptr<Collector>> MakeCollectors(const AggList& aggs,
                                                       const std::vector<IndexInfo>* indices,
                                                       bool typed_keys);
// Writes {"name": result, ...} members (the caller opened the object).
Result<bool> WriteAggs(Writer& w, const AggList& aggs,
                       std::vector<std::unique_ptr<Collector>>& collectors, bool typed_keys);

}  // namespace rtdw::eslite

#endif  // RTDW_TOOLS_ES_LITE_SEARCH_INTERNAL_H_
