#include "tools/es_lite/mapping.h"

#include <cmath>
#include <set>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace rtdw::eslite {
namespace {

constexpr int kMaxMappingDepth = 20;
constexpr size_t kMaxTotalFields = 1000;

EsError MapperParsing(std::string reason) {
  return BadRequest("mapper_parsing_exception", std::move(reason));
}

std::optional<FieldType> TypeFromName(absl::string_view name) {
  static const std::pair<absl::string_view, FieldType> kTypes[] = {
      {"keyword", FieldType::kKeyword},
      {"text", FieldType::kText},
      {"long", FieldType::kLong},
      {"integer", FieldType::kInteger},
      {"short", FieldType::kShort},
      {"byte", FieldType::kByte},
      {"double", FieldType::kDouble},
      {"float", FieldType::kFloat},
      {"half_float", FieldType::kHalfFloat},
      {"scaled_float", FieldType::kScaledFloat},
      {"date", FieldType::kDate},
      {"boolean", FieldType::kBoolean},
      {"object", FieldType::kObject},
  };
  for (const auto& [n, t] : kTypes) {
    if (n == name) return t;
  }
  return std::nullopt;
}

bool IsKnownEsType(absl::string_view name) {
  static const std::set<absl::string_view> kEs = {"nested",         "geo_point",
                                                  "geo_shape",      "ip",
                                                  "binary",         "completion",
                                                  "integer_range",  "long_range",
                                                  "float_range",    "double_range",
                                                  "date_range",     "ip_range",
                                                  "flattened",      "join",
                                                  "percolator",     "rank_feature",
                                                  "rank_features",  "dense_vector",
                                                  "sparse_vector",  "search_as_you_type",
                                                  "token_count",    "constant_keyword",
                                                  "wildcard",       "unsigned_long",
                                                  "date_nanos",     "alias",
                                                  "version",        "match_only_text",
                                                  "histogram",      "aggregate_metric_double",
                                                  "point",          "shape",
                                                  "annotated_text", "murmur3",
                                                  "semantic_text"};
  return kEs.count(name) > 0;
}

// Parameters each type accepts. Parameters that would change search results in a way this
// implementation does not reproduce (null_value, copy_to, analyzers, ...) are not listed, so
// they are refused instead of ignored.
bool ParamAllowed(FieldType t, absl::string_view p) {
  static const std::set<absl::string_view> kCommon = {"type",  "index", "doc_values",
                                                      "store", "meta",  "fields"};
  if (kCommon.count(p)) return t != FieldType::kObject || p == "type";
  switch (t) {
    case FieldType::kKeyword:
      return p == "ignore_above" || p == "norms" || p == "eager_global_ordinals" ||
             p == "split_queries_on_whitespace" || p == "similarity";
    case FieldType::kText:
      return p == "norms" || p == "index_options" || p == "position_increment_gap" ||
             p == "term_vector" || p == "similarity" || p == "eager_global_ordinals" ||
             p == "index_phrases" || p == "index_prefixes";
    case FieldType::kDate:
      return p == "format" || p == "locale";
    case FieldType::kBoolean:
      return false;
    case FieldType::kObject:
      return p == "properties" || p == "dynamic" || p == "enabled";
    case FieldType::kScaledFloat:
      return p == "coerce" || p == "scaling_factor";
    default:
      return p == "coerce";
  }
}

std::string Preview(const rapidjson::Value& v) {
  std::string s = v.IsString() ? std::string(Sv(v)) : ToJson(v);
  if (s.size() > 20) s = s.substr(0, 20) + "...";
  return s;
}

EsError FieldParseError(const FieldInfo& f, absl::string_view path, const rapidjson::Value& v,
                        absl::string_view id, std::string cause) {
  EsError e = MapperParsing(absl::StrCat("failed to parse field [", path, "] of type [",
                                         TypeName(f.type), "] in document with id '", id,
                                         "'. Preview of field's value: '", Preview(v), "'"));
  e.caused_by_type = "illegal_argument_exception";
  e.caused_by_reason = std::move(cause);
  return e;
}

bool IntegralRange(FieldType t, double d, int64_t* lo, int64_t* hi) {
  switch (t) {
    case FieldType::kInteger:
      *lo = INT32_MIN;
      *hi = INT32_MAX;
      break;
    case FieldType::kShort:
      *lo = INT16_MIN;
      *hi = INT16_MAX;
      break;
    case FieldType::kByte:
      *lo = INT8_MIN;
      *hi = INT8_MAX;
      break;
    default:
      *lo = INT64_MIN;
      *hi = INT64_MAX;
      return d >= -9.223372036854775808e18 && d < 9.223372036854775808e18;
  }
  return d >= static_cast<double>(*lo) && d <= static_cast<double>(*hi);
}

const char* RangeNoun(FieldType t) {
  switch (t) {
    case FieldType::kInteger:
      return "an integer";
    case FieldType::kShort:
      return "a short";
    case FieldType::kByte:
      return "a byte";
    default:
      return "a long";
  }
}

}  // namespace

absl::string_view TypeName(FieldType t) {
  switch (t) {
    case FieldType::kKeyword:
      return "keyword";
    case FieldType::kText:
      return "text";
    case FieldType::kLong:
      return "long";
    case FieldType::kInteger:
      return "integer";
    case FieldType::kShort:
      return "short";
    case FieldType::kByte:
      return "byte";
    case FieldType::kDouble:
      return "double";
    case FieldType::kFloat:
      return "float";
    case FieldType::kHalfFloat:
      return "half_float";
    case FieldType::kScaledFloat:
      return "scaled_float";
    case FieldType::kDate:
      return "date";
    case FieldType::kBoolean:
      return "boolean";
    case FieldType::kObject:
      return "object";
  }
  return "object";
}

bool IsIntegral(FieldType t) {
  return t == FieldType::kLong || t == FieldType::kInteger || t == FieldType::kShort ||
         t == FieldType::kByte;
}

bool IsFloating(FieldType t) {
  return t == FieldType::kDouble || t == FieldType::kFloat || t == FieldType::kHalfFloat ||
         t == FieldType::kScaledFloat;
}

void DeepMerge(rapidjson::Value& base, const rapidjson::Value& overlay,
               rapidjson::Document::AllocatorType& alloc) {
  if (!base.IsObject() || !overlay.IsObject()) {
    base.CopyFrom(overlay, alloc);
    return;
  }
  for (auto it = overlay.MemberBegin(); it != overlay.MemberEnd(); ++it) {
    auto found = base.FindMember(it->name);
    if (found != base.MemberEnd()) {
      DeepMerge(found->value, it->value, alloc);
    } else {
      rapidjson::Value name(it->name, alloc);
      rapidjson::Value value(it->value, alloc);
      base.AddMember(name, value, alloc);
    }
  }
}

std::optional<EsError> CheckFieldValue(const FieldInfo& f, absl::string_view path,
                                       const rapidjson::Value& v, absl::string_view id) {
  if (v.IsNull()) return std::nullopt;
  if (v.IsObject() || v.IsArray()) {
    return FieldParseError(f, path, v, id, "Can't parse an object or array as a concrete value");
  }
  switch (f.type) {
    case FieldType::kKeyword:
    case FieldType::kText:
      return std::nullopt;
    case FieldType::kBoolean:
      if (v.IsBool()) return std::nullopt;
      if (v.IsString() && (Sv(v) == "true" || Sv(v) == "false" || Sv(v).empty())) {
        return std::nullopt;
      }
      return FieldParseError(f, path, v, id,
                             absl::StrCat("Failed to parse value [", ScalarText(v),
                                          "] as only [true] or [false] are allowed."));
    case FieldType::kDate: {
      if (f.format->Parse(v)) return std::nullopt;
      return FieldParseError(f, path, v, id,
                             absl::StrCat("failed to parse date field [", ScalarText(v),
                                          "] with format [", f.format->spec(), "]"));
    }
    case FieldType::kObject:
      return MapperParsing(absl::StrCat("object mapping for [", path, "] tried to parse field [",
                                        path, "] as object, but found a concrete value"));
    default:
      break;
  }
  // Numbers.
  double d = 0;
  if (v.IsNumber()) {
    if (IsIntegral(f.type) && !v.IsInt64() && !v.IsDouble()) {  // uint64 beyond int64
      return FieldParseError(
          f, path, v, id,
          absl::StrCat("Value [", ScalarText(v), "] is out of range for ", RangeNoun(f.type)));
    }
    d = v.GetDouble();
    if (v.IsInt64() && IsIntegral(f.type)) {
      int64_t lo, hi;
      IntegralRange(f.type, 0, &lo, &hi);
      int64_t i = v.GetInt64();
      if (i < lo || i > hi) {
        return FieldParseError(
            f, path, v, id,
            absl::StrCat("Value [", i, "] is out of range for ", RangeNoun(f.type)));
      }
      return std::nullopt;
    }
    if (!v.IsInt64() && !f.coerce && IsIntegral(f.type) && d != std::trunc(d)) {
      return FieldParseError(f, path, v, id,
                             absl::StrCat("Value [", ScalarText(v), "] has a decimal part"));
    }
  } else if (v.IsString()) {
    std::string s(Sv(v));
    if (!f.coerce) {
      return FieldParseError(f, path, v, id, "Value must be a number (coerce is false)");
    }
    if (!absl::SimpleAtod(s, &d) || s.empty() ||
        s.find_first_not_of("0123456789+-.eE") != std::string::npos) {
      return FieldParseError(f, path, v, id, absl::StrCat("For input string: \"", s, "\""));
    }
  } else {  // bool
    return FieldParseError(
        f, path, v, id,
        absl::StrCat("Current token (", v.GetBool() ? "VALUE_TRUE" : "VALUE_FALSE",
                     ") not numeric, can not use numeric value accessors"));
  }
  if (!std::isfinite(d)) {
    return FieldParseError(f, path, v, id, "[" + ScalarText(v) + "] is not a finite number");
  }
  if (IsIntegral(f.type)) {
    int64_t lo, hi;
    if (!IntegralRange(f.type, std::trunc(d), &lo, &hi)) {
      return FieldParseError(
          f, path, v, id,
          absl::StrCat("Value [", ScalarText(v), "] is out of range for ", RangeNoun(f.type)));
    }
  }
  return std::nullopt;
}

// ---------------------------------------------------------------- building

std::shared_ptr<const Mapping> Mapping::Empty() {
  auto m = std::make_shared<Mapping>();
  m->json_.SetObject();
  m->Build();
  return m;
}

Result<std::shared_ptr<const Mapping>> Mapping::FromJson(const rapidjson::Value& mappings) {
  if (!mappings.IsObject()) return MapperParsing("mappings must be an object");
  auto m = std::make_shared<Mapping>();
  m->json_.CopyFrom(mappings, m->json_.GetAllocator());
  // ES 7+ accepts {"_doc": {...}} only with include_type_name; refuse the typed form clearly.
  if (auto err = m->Build()) return *err;
  return std::shared_ptr<const Mapping>(m);
}

Result<std::shared_ptr<const Mapping>> Mapping::Merge(const rapidjson::Value& base,
                                                      const rapidjson::Value& overlay) {
  rapidjson::Document merged;
  merged.SetObject();
  if (base.IsObject()) merged.CopyFrom(base, merged.GetAllocator());
  if (overlay.IsObject()) DeepMerge(merged, overlay, merged.GetAllocator());
  return FromJson(merged);
}

const FieldInfo* Mapping::Find(absl::string_view field) const {
  auto it = fields_.find(std::string_view(field.data(), field.size()));
  return it == fields_.end() ? nullptr : &it->second;
}

namespace {

std::optional<Dynamic> ParseDynamic(const rapidjson::Value& v) {
  if (v.IsBool()) return v.GetBool() ? Dynamic::kTrue : Dynamic::kFalse;
  if (v.IsString()) {
    absl::string_view s = Sv(v);
    if (s == "true") return Dynamic::kTrue;
    if (s == "false") return Dynamic::kFalse;
    if (s == "strict") return Dynamic::kStrict;
  }
  return std::nullopt;
}

}  // namespace

std::optional<EsError> Mapping::Build() {
  fields_.clear();
  root_dynamic_ = Dynamic::kTrue;
  date_detection_ = true;
  numeric_detection_ = false;
  for (auto it = json_.MemberBegin(); it != json_.MemberEnd(); ++it) {
    absl::string_view key = Sv(it->name);
    const auto& v = it->value;
    if (key == "properties") {
      if (!v.IsObject()) return MapperParsing("[properties] must be an object");
      if (auto err = BuildProperties(v, "", 1)) return err;
    } else if (key == "dynamic") {
      auto d = ParseDynamic(v);
      if (!d) return MapperParsing(absl::StrCat("Unsupported dynamic value [", ScalarText(v), "]"));
      root_dynamic_ = *d;
    } else if (key == "date_detection") {
      if (!v.IsBool()) return MapperParsing("[date_detection] must be a boolean");
      date_detection_ = v.GetBool();
    } else if (key == "numeric_detection") {
      if (!v.IsBool()) return MapperParsing("[numeric_detection] must be a boolean");
      numeric_detection_ = v.GetBool();
    } else if (key == "_meta") {
      // kept as is
    } else if (key == "dynamic_templates" && v.IsArray() && v.Empty()) {
      // nothing to apply
    } else if (key == "_source" && v.IsObject() && v.MemberCount() == 1 && v.HasMember("enabled") &&
               v["enabled"].IsBool() && v["enabled"].GetBool()) {
      // the default
    } else {
      return MapperParsing(absl::StrCat("Root mapping definition has unsupported parameters:  [",
                                        key, " : ", ToJson(v),
                                        "] (rtdw-es-lite supports properties, dynamic, "
                                        "date_detection, numeric_detection, _meta)"));
    }
  }
  return std::nullopt;
}

std::optional<EsError> Mapping::BuildProperties(const rapidjson::Value& props,
                                                const std::string& prefix, int depth) {
  if (depth > kMaxMappingDepth) {
    return IllegalArgument(
        absl::StrCat("Limit of mapping depth [", kMaxMappingDepth, "] has been exceeded"));
  }
  for (auto it = props.MemberBegin(); it != props.MemberEnd(); ++it) {
    std::string name(Sv(it->name));
    if (name.empty()) return MapperParsing("field name cannot be an empty string");
    std::string path = prefix.empty() ? name : absl::StrCat(prefix, ".", name);
    if (!it->value.IsObject()) {
      return MapperParsing(absl::StrCat("Expected map for property [fields] on field [", name,
                                        "] but got a class java.lang.String"));
    }
    if (auto err = BuildField(path, it->value, path, false, depth)) return err;
  }
  if (fields_.size() > kMaxTotalFields) {
    return IllegalArgument(
        absl::StrCat("Limit of total fields [", kMaxTotalFields, "] has been exceeded"));
  }
  return std::nullopt;
}

std::optional<EsError> Mapping::BuildField(const std::string& path, const rapidjson::Value& def,
                                           const std::string& source_path, bool multi_field,
                                           int depth) {
  FieldInfo info;
  info.source_path = source_path;
  auto type_it = def.FindMember("type");
  std::string type_name = "object";
  if (type_it != def.MemberEnd()) {
    if (!type_it->value.IsString()) {
      return MapperParsing(absl::StrCat("type must be a string on field [", path, "]"));
    }
    type_name = std::string(Sv(type_it->value));
  } else if (multi_field) {
    return MapperParsing(absl::StrCat("No type specified for field [", path, "]"));
  }
  auto type = TypeFromName(type_name);
  if (!type) {
    if (IsKnownEsType(type_name)) {
      return MapperParsing(absl::StrCat("field type [", type_name, "] of field [", path,
                                        "] is not supported by rtdw-es-lite"));
    }
    return MapperParsing(
        absl::StrCat("No handler for type [", type_name, "] declared on field [", path, "]"));
  }
  if (multi_field && *type == FieldType::kObject) {
    return MapperParsing(absl::StrCat("Type [object] cannot be used in multi field [", path, "]"));
  }
  info.type = *type;
  for (auto it = def.MemberBegin(); it != def.MemberEnd(); ++it) {
    absl::string_view p = Sv(it->name);
    if (!ParamAllowed(info.type, p) || (multi_field && p == "fields")) {
      return MapperParsing(absl::StrCat("unknown parameter [", p, "] on mapper [", path,
                                        "] of type [", type_name,
                                        "] (or not supported by rtdw-es-lite)"));
    }
    const auto& v = it->value;
    if (p == "ignore_above") {
      if (!v.IsInt() || v.GetInt() < 0) return MapperParsing("[ignore_above] must be >= 0");
      info.ignore_above = v.GetInt();
    } else if (p == "coerce") {
      if (!v.IsBool()) return MapperParsing("[coerce] must be a boolean");
      info.coerce = v.GetBool();
    } else if (p == "enabled") {
      if (!v.IsBool()) return MapperParsing("[enabled] must be a boolean");
      info.enabled = v.GetBool();
    } else if (p == "dynamic") {
      auto d = ParseDynamic(v);
      if (!d) return MapperParsing(absl::StrCat("Unsupported dynamic value [", ScalarText(v), "]"));
      info.has_dynamic = true;
      info.dynamic = *d;
    } else if (p == "scaling_factor") {
      if (!v.IsNumber()) return MapperParsing("[scaling_factor] must be a number");
    }
  }
  if (info.type == FieldType::kScaledFloat && !def.HasMember("scaling_factor")) {
    return MapperParsing(absl::StrCat("Field [scaling_factor] is required on field [", path, "]"));
  }
  if (info.type == FieldType::kDate) {
    std::string spec = "strict_date_optional_time||epoch_millis";
    auto fmt = def.FindMember("format");
    if (fmt != def.MemberEnd()) {
      if (!fmt->value.IsString()) return MapperParsing("[format] must be a string");
      spec = std::string(Sv(fmt->value));
    }
    std::string error;
    auto df = DateFormat::Create(spec, &error);
    if (!df) {
      EsError e =
          MapperParsing(absl::StrCat("Error parsing [format] on field [", path, "]: ", error));
      return e;
    }
    info.format = std::make_shared<const DateFormat>(std::move(*df));
  }
  fields_[path] = info;
  if (info.type == FieldType::kObject) {
    auto props = def.FindMember("properties");
    if (props != def.MemberEnd()) {
      if (!props->value.IsObject()) return MapperParsing("[properties] must be an object");
      if (auto err = BuildProperties(props->value, path, depth + 1)) return err;
    }
    return std::nullopt;
  }
  auto multi = def.FindMember("fields");
  if (multi != def.MemberEnd()) {
    if (!multi->value.IsObject()) return MapperParsing("[fields] must be an object");
    for (auto it = multi->value.MemberBegin(); it != multi->value.MemberEnd(); ++it) {
      if (!it->value.IsObject()) return MapperParsing("multi field definition must be an object");
      std::string sub = absl::StrCat(path, ".", Sv(it->name));
      if (auto err = BuildField(sub, it->value, source_path, true, depth)) return err;
    }
  }
  return std::nullopt;
}

std::optional<EsError> Mapping::AddField(const std::string& path, rapidjson::Value def) {
  auto& alloc = json_.GetAllocator();
  std::vector<std::string> parts = absl::StrSplit(path, '.');
  if (static_cast<int>(parts.size()) > kMaxMappingDepth) {
    return IllegalArgument(
        absl::StrCat("Limit of mapping depth [", kMaxMappingDepth, "] has been exceeded"));
  }
  rapidjson::Value* node = &json_;
  for (size_t i = 0; i < parts.size(); ++i) {
    auto props = node->FindMember("properties");
    if (props == node->MemberEnd()) {
      node->AddMember("properties", rapidjson::Value(rapidjson::kObjectType), alloc);
      props = node->FindMember("properties");
    }
    rapidjson::Value& p = props->value;
    rapidjson::Value key(parts[i].c_str(), static_cast<rapidjson::SizeType>(parts[i].size()),
                         alloc);
    auto child = p.FindMember(key);
    if (i + 1 == parts.size()) {
      if (child == p.MemberEnd()) p.AddMember(key, def, alloc);
      break;
    }
    if (child == p.MemberEnd()) {
      rapidjson::Value obj(rapidjson::kObjectType);
      p.AddMember(key, obj, alloc);
      child = p.FindMember(parts[i].c_str());
    }
    node = &child->value;
  }
  if (auto err = Build()) return err;
  return std::nullopt;
}

// ---------------------------------------------------------------- document checks

class DocChecker {
 public:
  DocChecker(const std::shared_ptr<const Mapping>& m, absl::string_view id)
      : current_(m), id_(id) {}

  std::optional<EsError> CheckObject(const rapidjson::Value& obj, absl::string_view prefix,
                                     Dynamic dyn) {
    std::string nested;  // the dotted path of a field below the root
    for (auto it = obj.MemberBegin(); it != obj.MemberEnd(); ++it) {
      absl::string_view name = Sv(it->name);
      if (name.empty()) return MapperParsing("field name cannot be an empty string");
      if (name.front() == '.' || name.back() == '.' || name.find("..") != absl::string_view::npos) {
        return MapperParsing(absl::StrCat(
            "object field starting or ending with a [.] makes object resolution ambiguous: [", name,
            "]"));
      }
      absl::string_view path = name;
      if (!prefix.empty()) {
        nested.assign(prefix.data(), prefix.size());
        nested.push_back('.');
        nested.append(name.data(), name.size());
        path = nested;
      }
      if (auto err = CheckValue(it->value, path, dyn, prefix)) return err;
    }
    return std::nullopt;
  }

  std::shared_ptr<const Mapping> result() const { return current_; }

 private:
  std::optional<EsError> CheckValue(const rapidjson::Value& v, absl::string_view path, Dynamic dyn,
                                    absl::string_view parent) {
    if (v.IsNull()) return std::nullopt;
    if (v.IsArray()) {
      for (const auto& e : v.GetArray()) {
        if (auto err = CheckValue(e, path, dyn, parent)) return err;
      }
      return std::nullopt;
    }
    const FieldInfo* f = current_->Find(path);
    if (f == nullptr) {
      if (dyn == Dynamic::kFalse) return std::nullopt;
      if (dyn == Dynamic::kStrict) {
        absl::string_view leaf = path.substr(parent.empty() ? 0 : parent.size() + 1);
        EsError e = BadRequest(
            "strict_dynamic_mapping_exception",
            absl::StrCat("mapping set to strict, dynamic introduction of [", leaf, "] within [",
                         parent.empty() ? "_doc" : parent, "] is not allowed"));
        return e;
      }
      if (auto err = AddDynamic(v, std::string(path))) return err;
      f = current_->Find(path);
      if (f == nullptr) return std::nullopt;  // e.g. nothing to map
    }
    if (v.IsObject()) {
      if (f->type != FieldType::kObject) {
        return FieldParseError(*f, path, v, id_, "Can't get text on a START_OBJECT");
      }
      if (!f->enabled) return std::nullopt;
      return CheckObject(v, path, f->has_dynamic ? f->dynamic : dyn);
    }
    return CheckFieldValue(*f, path, v, id_);
  }

  std::optional<EsError> AddDynamic(const rapidjson::Value& v, const std::string& path) {
    if (!owned_) {
      owned_ = std::make_shared<Mapping>();
      owned_->json_.CopyFrom(current_->json_, owned_->json_.GetAllocator());
      if (auto err = owned_->Build()) return err;
      current_ = owned_;
    }
    auto& alloc = owned_->json_.GetAllocator();
    rapidjson::Value def(rapidjson::kObjectType);
    auto set_type = [&](const char* t) { def.AddMember("type", rapidjson::StringRef(t), alloc); };
    if (v.IsObject()) {
      // An object mapping with no type member, as ES shows dynamic objects.
      def.AddMember("properties", rapidjson::Value(rapidjson::kObjectType), alloc);
    } else if (v.IsBool()) {
      set_type("boolean");
    } else if (v.IsInt64() || v.IsUint64()) {
      set_type("long");
    } else if (v.IsNumber()) {
      set_type("float");
    } else if (v.IsString()) {
      absl::string_view s = Sv(v);
      double d;
      int64_t i;
      if (owned_->date_detection_ && LooksLikeDate(s)) {
        set_type("date");
      } else if (owned_->numeric_detection_ && absl::SimpleAtoi(s, &i)) {
        set_type("long");
      } else if (owned_->numeric_detection_ && absl::SimpleAtod(s, &d)) {
        set_type("float");
      } else {
        set_type("text");
        rapidjson::Value kw(rapidjson::kObjectType);
        kw.AddMember("type", "keyword", alloc);
        kw.AddMember("ignore_above", 256, alloc);
        rapidjson::Value fields(rapidjson::kObjectType);
        fields.AddMember("keyword", kw, alloc);
        def.AddMember("fields", fields, alloc);
      }
    } else {
      return std::nullopt;
    }
    if (auto err = owned_->AddField(path, std::move(def))) return err;
    if (owned_->fields_.size() > kMaxTotalFields) {
      return IllegalArgument(absl::StrCat("Limit of total fields [", kMaxTotalFields,
                                          "] has been exceeded while adding new fields [1]"));
    }
    return std::nullopt;
  }

  std::shared_ptr<const Mapping> current_;
  std::shared_ptr<Mapping> owned_;  // the copy dynamic fields go into
  absl::string_view id_;
};

Result<std::shared_ptr<const Mapping>> Mapping::CheckDocument(
    const std::shared_ptr<const Mapping>& mapping, const rapidjson::Value& doc,
    absl::string_view id) {
  if (!doc.IsObject()) {
    EsError e = MapperParsing("failed to parse");
    e.caused_by_type = "not_x_content_exception";
    e.caused_by_reason =
        "Compressor detection can only be called on some xcontent bytes or "
        "compressed xcontent bytes";
    return e;
  }
  DocChecker checker(mapping, id);
  if (auto err = checker.CheckObject(doc, "", mapping->root_dynamic_)) return *err;
  return checker.result();
}

}  // namespace rtdw::eslite
