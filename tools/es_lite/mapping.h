// Index mappings in rtdw-es-lite: explicit ones (create-index, templates), dynamic additions the
// way ES makes them, and the type checks ES applies when a document is indexed.
//
// Supported field types: keyword, text, long, integer, short, byte, double, float, half_float,
// scaled_float, date, boolean, object (with properties, dynamic true/false/strict, enabled).
// Multi-fields (`fields`) are supported. Unknown parameters and unsupported types are refused
// with mapper_parsing_exception, never ignored.
#ifndef RTDW_TOOLS_ES_LITE_MAPPING_H_
#define RTDW_TOOLS_ES_LITE_MAPPING_H_

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>

#include "rapidjson/document.h"
#include "tools/es_lite/dates.h"
#include "tools/es_lite/json.h"

namespace rtdw::eslite {

enum class FieldType {
  kKeyword,
  kText,
  kLong,
  kInteger,
  kShort,
  kByte,
  kDouble,
  kFloat,
  kHalfFloat,
  kScaledFloat,
  kDate,
  kBoolean,
  kObject,
};

absl::string_view TypeName(FieldType t);
bool IsIntegral(FieldType t);  // long, integer, short, byte
bool IsFloating(FieldType t);  // double, float, half_float, scaled_float
inline bool IsNumeric(FieldType t) { return IsIntegral(t) || IsFloating(t); }

enum class Dynamic { kTrue, kFalse, kStrict };

struct FieldInfo {
  FieldType type = FieldType::kKeyword;
  std::string source_path;                   // where the values live in _source
  std::shared_ptr<const DateFormat> format;  // dates (never null for a date)
  int ignore_above = 0;                      // keyword: longer values are not indexed
  bool coerce = true;                        // numbers: accept numeric strings / fractions
  bool enabled = true;                       // objects
  bool has_dynamic = false;                  // objects: own `dynamic` setting
  Dynamic dynamic = Dynamic::kTrue;
};

class Mapping {
 public:
  // From a "mappings" object (create-index body, template). Errors: mapper_parsing_exception.
  static Result<std::shared_ptr<const Mapping>> FromJson(const rapidjson::Value& mappings);
  static std::shared_ptr<const Mapping> Empty();
  // Deep merge of two "mappings" objects (overlay wins), then FromJson.
  static Result<std::shared_ptr<const Mapping>> Merge(const rapidjson::Value& base,
                                                      const rapidjson::Value& overlay);

  // The field of a dotted name (multi-fields included); null when unmapped.
  const FieldInfo* Find(absl::string_view field) const;
  // The mapping as ES shows it under "mappings".
  const rapidjson::Value& json() const { return json_; }
  size_t field_count() const { return fields_.size(); }

  // Checks `doc` (an object) against `mapping`, adding dynamic fields. On success returns the
  // mapping to use from now on (the same pointer when nothing was added).
  static Result<std::shared_ptr<const Mapping>> CheckDocument(
      const std::shared_ptr<const Mapping>& mapping, const rapidjson::Value& doc,
      absl::string_view id);

 private:
  friend class DocChecker;
  std::optional<EsError> Build();
  std::optional<EsError> BuildProperties(const rapidjson::Value& props, const std::string& prefix,
                                         int depth);
  std::optional<EsError> BuildField(const std::string& path, const rapidjson::Value& def,
                                    const std::string& source_path, bool multi_field, int depth);
  // Adds a field definition at `path`, creating parent objects; rebuilds the index.
  std::optional<EsError> AddField(const std::string& path, rapidjson::Value def);

  // Looked up by string_view (Find is called for every field of every document indexed).
  struct PathHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>()(s); }
  };

  rapidjson::Document json_;
  std::unordered_map<std::string, FieldInfo, PathHash, std::equal_to<>> fields_;
  Dynamic root_dynamic_ = Dynamic::kTrue;
  bool date_detection_ = true;
  bool numeric_detection_ = false;
};

// Validates one value against a mapped (non-object) field; the error ES would give.
std::optional<EsError> CheckFieldValue(const FieldInfo& field, absl::string_view path,
                                       const rapidjson::Value& v, absl::string_view id);

// Deep-merges JSON object `overlay` into `base` (objects merge, anything else is replaced).
void DeepMerge(rapidjson::Value& base, const rapidjson::Value& overlay,
               rapidjson::Document::AllocatorType& alloc);

}  // namespace rtdw::eslite

#endif  // RTDW_TOOLS_ES_LITE_MAPPING_H_
