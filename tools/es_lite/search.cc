#include "tools/es_lite/search.h"

#include <algorithm>
#include <chrono>
#include <cmath>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "tools/es_lite/search_internal.h"

namespace rtdw::eslite {
namespace {

const std::string* Param(const Params& params, const std::string& key) {
  auto it = params.find(key);
  return it == params.end() ? nullptr : &it->second;
}

std::vector<std::string> SplitList(absl::string_view s) {
  std::vector<std::string> out;
  for (absl::string_view part : absl::StrSplit(s, ',', absl::SkipEmpty())) {
    out.emplace_back(absl::StripAsciiWhitespace(part));
  }
  return out;
}

Result<std::vector<std::string>> StringList(const rapidjson::Value& v, absl::string_view what) {
  std::vector<std::string> out;
  if (v.IsString()) {
    out.emplace_back(Sv(v));
  } else if (v.IsArray()) {
    for (const auto& e : v.GetArray()) {
      if (!e.IsString()) return ParsingException(absl::StrCat("[", what, "] must be strings"));
      out.emplace_back(Sv(e));
    }
  } else {
    return ParsingException(absl::StrCat("[", what, "] must be a string or an array of strings"));
  }
  return out;
}

// ---------------------------------------------------------------- _source filtering

// Could `pattern` match a path below `prefix` (i.e. "prefix.<something>")?
bool MayMatchBelow(const std::string& pattern, const std::string& prefix) {
  std::string p = prefix + ".";
  size_t star = pattern.find('*');
  std::string literal = pattern.substr(0, star);
  size_t n = std::min(literal.size(), p.size());
  return literal.compare(0, n, p, 0, n) == 0 &&
         (star != std::string::npos || literal.size() > p.size());
}

bool AnyGlob(const std::vector<std::string>& patterns, const std::string& path) {
  for (const auto& p : patterns) {
    if (GlobMatch(p, path)) return true;
  }
  return false;
}

class Filterer {
 public:
  Filterer(const std::vector<std::string>& inc, const std::vector<std::string>& exc)
      : inc_(inc), exc_(exc) {}

  // Writes the filtered `obj`; returns false (writing nothing) when nothing of it is kept.
  bool Object(const rapidjson::Value& obj, const std::string& prefix, bool included,
              rapidjson::Value* out, rapidjson::Document::AllocatorType& alloc) {
    out->SetObject();
    for (auto it = obj.MemberBegin(); it != obj.MemberEnd(); ++it) {
      std::string path =
          prefix.empty() ? std::string(Sv(it->name)) : absl::StrCat(prefix, ".", Sv(it->name));
      if (AnyGlob(exc_, path)) continue;
      bool inc = included || inc_.empty() || AnyGlob(inc_, path);
      rapidjson::Value v;
      if (Value(it->value, path, inc, &v, alloc)) {
        out->AddMember(rapidjson::Value(it->name, alloc), v, alloc);
      }
    }
    return included || out->MemberCount() > 0;
  }

 private:
  bool Value(const rapidjson::Value& in, const std::string& path, bool included,
             rapidjson::Value* out, rapidjson::Document::AllocatorType& alloc) {
    if (in.IsObject()) {
      if (!included && !std::any_of(inc_.begin(), inc_.end(),
                                    [&](const std::string& p) { return MayMatchBelow(p, path); })) {
        return false;
      }
      return Object(in, path, included, out, alloc);
    }
    if (in.IsArray()) {
      out->SetArray();
      for (const auto& e : in.GetArray()) {
        rapidjson::Value v;
        if (Value(e, path, included, &v, alloc)) out->PushBack(v, alloc);
      }
      return included || !out->Empty();
    }
    if (!included) return false;
    out->CopyFrom(in, alloc);
    return true;
  }

  const std::vector<std::string>& inc_;
  const std::vector<std::string>& exc_;
};

}  // namespace

Result<SourceFilter> SourceFilter::Create(const rapidjson::Value* body_source,
                                          const Params& params) {
  SourceFilter f;
  if (body_source != nullptr) {
    const auto& v = *body_source;
    if (v.IsBool()) {
      f.fetch_ = v.GetBool();
    } else if (v.IsString() || v.IsArray()) {
      auto list = StringList(v, "_source");
      if (!list.ok()) return list.error();
      f.includes_ = std::move(list.value());
    } else if (v.IsObject()) {
      for (auto it = v.MemberBegin(); it != v.MemberEnd(); ++it) {
        absl::string_view key = Sv(it->name);
        auto list = StringList(it->value, key);
        if (!list.ok()) return list.error();
        if (key == "includes" || key == "include") {
          f.includes_ = std::move(list.value());
        } else if (key == "excludes" || key == "exclude") {
          f.excludes_ = std::move(list.value());
        } else {
          return ParsingException(absl::StrCat("Unknown key for a START_ARRAY in [", key, "]."));
        }
      }
    } else if (!v.IsNull()) {
      return ParsingException("[_source] must be a boolean, string, array or object");
    }
  }
  if (const std::string* s = Param(params, "_source")) {
    if (*s == "false") {
      f.fetch_ = false;
    } else if (*s == "true") {
      f.fetch_ = true;
    } else {
      f.fetch_ = true;
      f.includes_ = SplitList(*s);
    }
  }
  if (const std::string* s = Param(params, "_source_includes")) {
    f.fetch_ = true;
    f.includes_ = SplitList(*s);
  }
  if (const std::string* s = Param(params, "_source_excludes")) {
    f.fetch_ = true;
    f.excludes_ = SplitList(*s);
  }
  return f;
}

void SourceFilter::Write(Writer& w, absl::string_view source) const {
  if (identity()) {
    w.RawValue(source.data(), source.size(), rapidjson::kObjectType);
    return;
  }
  rapidjson::Document doc;
  if (ParseJson(source, &doc) || !doc.IsObject()) {
    w.StartObject();
    w.EndObject();
    return;
  }
  rapidjson::Document out;
  Filterer filterer(includes_, excludes_);
  filterer.Object(doc, "", includes_.empty(), &out, out.GetAllocator());
  out.Accept(w);
}

// ---------------------------------------------------------------- sorting

namespace {

struct SortSpec {
  enum Special { kField, kScore, kDoc, kId, kIndex } special = kField;
  std::string field;
  bool desc = false;
  bool missing_first = false;
  int mode = 0;  // 0 default (min asc / max desc), 1 min, 2 max
  std::string unmapped_type;
  // Integral-like (long, date, boolean...): missing values become +-Long.MAX_VALUE as in ES.
  bool sentinel = false;
  const FieldInfo* representative = nullptr;  // the field's mapping in the first index having it
  std::optional<FieldType> unmapped_ft;
};

Result<SortSpec> MakeSpec(absl::string_view field, const rapidjson::Value* opts) {
  SortSpec s;
  s.field = std::string(field);
  if (field == "_score") {
    s.special = SortSpec::kScore;
    s.desc = true;
  } else if (field == "_doc") {
    s.special = SortSpec::kDoc;
  } else if (field == "_id") {
    s.special = SortSpec::kId;
  } else if (field == "_index") {
    s.special = SortSpec::kIndex;
  } else if (field == "_shard_doc") {
    return Unsupported("sorting on [_shard_doc] (point in time)");
  }
  if (opts == nullptr) return s;
  auto set_order = [&](const rapidjson::Value& v) -> std::optional<EsError> {
    std::string o = v.IsString() ? absl::AsciiStrToLower(Sv(v)) : "";
    if (o != "asc" && o != "desc") {
      return IllegalArgument(absl::StrCat("Unknown SortOrder [", ScalarText(v), "]"));
    }
    s.desc = o == "desc";
    return std::nullopt;
  };
  if (opts->IsString()) {
    if (auto e = set_order(*opts)) return *e;
    return s;
  }
  if (!opts->IsObject()) return ParsingException("[sort] option must be a string or an object");
  for (auto it = opts->MemberBegin(); it != opts->MemberEnd(); ++it) {
    absl::string_view key = Sv(it->name);
    const auto& v = it->value;
    if (key == "order") {
      if (auto e = set_order(v)) return *e;
    } else if (key == "missing") {
      std::string m = v.IsString() ? std::string(Sv(v)) : "";
      if (m == "_first") {
        s.missing_first = true;
      } else if (m != "_last") {
        return Unsupported("[sort] missing values other than _first/_last");
      }
    } else if (key == "mode") {
      std::string m = v.IsString() ? std::string(Sv(v)) : "";
      if (m == "min") {
        s.mode = 1;
      } else if (m == "max") {
        s.mode = 2;
      } else {
        return Unsupported(absl::StrCat("[sort] mode [", m, "]"));
      }
    } else if (key == "unmapped_type") {
      if (!v.IsString()) return ParsingException("[unmapped_type] must be a string");
      s.unmapped_type = std::string(Sv(v));
      if (s.unmapped_type == "keyword") {
        s.unmapped_ft = FieldType::kKeyword;
      } else if (s.unmapped_type == "long" || s.unmapped_type == "integer" ||
                 s.unmapped_type == "short" || s.unmapped_type == "byte") {
        s.unmapped_ft = FieldType::kLong;
      } else if (s.unmapped_type == "date") {
        s.unmapped_ft = FieldType::kDate;
      } else if (s.unmapped_type == "boolean") {
        s.unmapped_ft = FieldType::kBoolean;
      } else if (s.unmapped_type == "double" || s.unmapped_type == "float") {
        s.unmapped_ft = FieldType::kDouble;
      } else {
        return Unsupported(absl::StrCat("[sort] unmapped_type [", s.unmapped_type, "]"));
      }
    } else if (key == "format" && s.special == SortSpec::kField && v.IsString() &&
               Sv(v) == "epoch_millis") {
    } else {
      return Unsupported(absl::StrCat("[sort] option [", key, "]"));
    }
  }
  return s;
}

Result<std::vector<SortSpec>> ParseSortBody(const rapidjson::Value& v) {
  std::vector<SortSpec> out;
  auto one = [&](const rapidjson::Value& e) -> std::optional<EsError> {
    if (e.IsString()) {
      auto s = MakeSpec(Sv(e), nullptr);
      if (!s.ok()) return s.error();
      out.push_back(std::move(s.value()));
      return std::nullopt;
    }
    if (e.IsObject()) {
      for (auto it = e.MemberBegin(); it != e.MemberEnd(); ++it) {
        auto s = MakeSpec(Sv(it->name), &it->value);
        if (!s.ok()) return s.error();
        out.push_back(std::move(s.value()));
      }
      return std::nullopt;
    }
    return ParsingException("[sort] elements must be strings or objects");
  };
  if (v.IsArray()) {
    for (const auto& e : v.GetArray()) {
      if (auto err = one(e)) return *err;
    }
  } else if (auto err = one(v)) {
    return *err;
  }
  return out;
}

Result<std::vector<SortSpec>> ParseSortParam(absl::string_view param) {
  std::vector<SortSpec> out;
  for (const std::string& part : SplitList(param)) {
    std::string field = part;
    std::string order;
    if (size_t c = part.rfind(':'); c != std::string::npos) {
      field = part.substr(0, c);
      order = part.substr(c + 1);
    }
    rapidjson::Value ov;
    if (!order.empty()) ov.SetString(rapidjson::StringRef(order.c_str(), order.size()));
    auto s = MakeSpec(field, order.empty() ? nullptr : &ov);
    if (!s.ok()) return s.error();
    out.push_back(std::move(s.value()));
  }
  return out;
}

// Resolves the sort fields against the mappings; per index, the FieldInfo of each spec.
Result<std::vector<std::vector<const FieldInfo*>>> BindSort(std::vector<SortSpec>& specs,
                                                            const std::vector<IndexInfo>& indices) {
  std::vector<std::vector<const FieldInfo*>> bound(indices.size(),
                                                   std::vector<const FieldInfo*>(specs.size()));
  for (size_t s = 0; s < specs.size(); ++s) {
    SortSpec& spec = specs[s];
    if (spec.special != SortSpec::kField) {
      spec.sentinel = spec.special == SortSpec::kDoc;
      continue;
    }
    for (size_t i = 0; i < indices.size(); ++i) {
      const FieldInfo* f = indices[i].mapping->Find(spec.field);
      if (f == nullptr) continue;
      if (f->type == FieldType::kText) return FielddataError(spec.field);
      if (f->type == FieldType::kObject) {
        return IllegalArgument(absl::StrCat("Fielddata is not supported on field [", spec.field,
                                            "] of type [object]"));
      }
      bound[i][s] = f;
      if (spec.representative == nullptr) spec.representative = f;
    }
    std::optional<FieldType> t;
    if (spec.representative != nullptr) {
      t = spec.representative->type;
    } else if (spec.unmapped_ft) {
      t = spec.unmapped_ft;
    } else if (!indices.empty()) {
      return BadRequest("query_shard_exception", absl::StrCat("No mapping found for [", spec.field,
                                                              "] in order to sort on"));
    }
    spec.sentinel = t && (IsIntegral(*t) || *t == FieldType::kDate || *t == FieldType::kBoolean);
  }
  return bound;
}

Val MissingValue(const SortSpec& s) {
  if (!s.sentinel) return Val();
  return Val::Int(s.desc == s.missing_first ? INT64_MAX : INT64_MIN);
}

void ComputeKey(const std::vector<SortSpec>& specs, const std::vector<const FieldInfo*>& infos,
                DocCtx& doc, std::vector<Val>* key, std::vector<Val>* scratch) {
  key->clear();
  for (size_t i = 0; i < specs.size(); ++i) {
    const SortSpec& s = specs[i];
    switch (s.special) {
      case SortSpec::kScore:
        key->push_back(Val::Double(1.0));
        continue;
      case SortSpec::kDoc:
        key->push_back(Val::Int((static_cast<int64_t>(doc.ordinal()) << 40) +
                                static_cast<int64_t>(doc.record().seq_no)));
        continue;
      case SortSpec::kId:
        key->push_back(Val::Str(std::string(doc.id())));
        continue;
      case SortSpec::kIndex:
        key->push_back(Val::Str(doc.index().name));
        continue;
      case SortSpec::kField:
        break;
    }
    scratch->clear();
    if (infos[i] != nullptr) FieldVals(*infos[i], doc.source(), scratch);
    if (scratch->empty()) {
      key->push_back(MissingValue(s));
      continue;
    }
    bool want_max = s.mode == 2 || (s.mode == 0 && s.desc);
    const Val* best = &(*scratch)[0];
    for (const Val& v : *scratch) {
      int c = CompareVal(v, *best);
      if (want_max ? c > 0 : c < 0) best = &v;
    }
    key->push_back(*best);
  }
}

int CompareKeys(const std::vector<Val>& a, const std::vector<Val>& b,
                const std::vector<SortSpec>& specs) {
  for (size_t i = 0; i < specs.size() && i < a.size() && i < b.size(); ++i) {
    const bool am = a[i].missing(), bm = b[i].missing();
    if (am || bm) {
      if (am && bm) continue;
      if (am) return specs[i].missing_first ? -1 : 1;
      return specs[i].missing_first ? 1 : -1;
    }
    int c = CompareVal(a[i], b[i]);
    if (specs[i].desc) c = -c;
    if (c != 0) return c;
  }
  return 0;
}

Result<std::vector<Val>> ParseSearchAfter(const rapidjson::Value& v,
                                          const std::vector<SortSpec>& specs) {
  if (!v.IsArray()) return ParsingException("[search_after] must be an array");
  if (specs.empty()) {
    return IllegalArgument("Sort must contain at least one field.");
  }
  if (v.Size() != specs.size()) {
    return IllegalArgument(
        absl::StrCat("search_after has ", v.Size(), " value(s) but sort has ", specs.size(), "."));
  }
  std::vector<Val> out;
  for (size_t i = 0; i < specs.size(); ++i) {
    const auto& e = v[static_cast<rapidjson::SizeType>(i)];
    const SortSpec& s = specs[i];
    if (e.IsNull()) {
      out.push_back(Val());
      continue;
    }
    if (e.IsObject() || e.IsArray())
      return ParsingException("[search_after] values must be scalars");
    if (s.special == SortSpec::kId || s.special == SortSpec::kIndex) {
      out.push_back(Val::Str(ScalarText(e)));
      continue;
    }
    if (s.special == SortSpec::kScore) {
      out.push_back(Val::Double(e.IsNumber() ? e.GetDouble() : 0));
      continue;
    }
    if (s.special == SortSpec::kDoc) {
      if (!e.IsInt64()) return IllegalArgument("[search_after] _doc value must be an integer");
      out.push_back(Val::Int(e.GetInt64()));
      continue;
    }
    FieldType t = s.representative != nullptr ? s.representative->type
                                              : s.unmapped_ft.value_or(FieldType::kKeyword);
    if (t == FieldType::kKeyword) {
      out.push_back(Val::Str(ScalarText(e)));
      continue;
    }
    if (e.IsInt64() && (s.sentinel)) {
      out.push_back(Val::Int(e.GetInt64()));
      continue;
    }
    if (e.IsBool()) {
      out.push_back(Val::Int(e.GetBool() ? 1 : 0));
      continue;
    }
    if (e.IsNumber()) {
      out.push_back(s.sentinel ? Val::Int(static_cast<int64_t>(e.GetDouble()))
                               : Val::Double(e.GetDouble()));
      continue;
    }
    // A string for a numeric or date sort.
    if (t == FieldType::kDate && s.representative != nullptr) {
      auto ms = s.representative->format->ParseText(Sv(e));
      if (!ms)
        return IllegalArgument(absl::StrCat("failed to parse search_after value [", Sv(e),
                                            "] for field [", s.field, "]"));
      out.push_back(Val::Int(*ms));
      continue;
    }
    double d;
    if (!absl::SimpleAtod(Sv(e), &d)) {
      return IllegalArgument(absl::StrCat("failed to parse search_after value [", Sv(e),
                                          "] for field [", s.field, "]"));
    }
    out.push_back(s.sentinel ? Val::Int(static_cast<int64_t>(d)) : Val::Double(d));
  }
  return out;
}

// ---------------------------------------------------------------- the search

struct Candidate {
  std::vector<Val> key;
  int ordinal = 0;
  std::string id;
  DocRecord rec;
};

struct Request {
  const rapidjson::Value* query = nullptr;
  const rapidjson::Value* post_filter = nullptr;
  const rapidjson::Value* search_after = nullptr;
  const rapidjson::Value* aggs = nullptr;
  const rapidjson::Value* sort = nullptr;
  const rapidjson::Value* source = nullptr;
  int64_t from = 0;
  int64_t size = 10;
  int64_t track_total = 10000;  // -1 exact, 0 off
  bool version = false;
  bool seq_no_primary_term = false;
  bool track_scores = false;
};

Result<int64_t> IntParam(const std::string& name, absl::string_view text) {
  int64_t v;
  if (!absl::SimpleAtoi(text, &v)) {
    return IllegalArgument(
        absl::StrCat("Failed to parse int parameter [", name, "] with value [", text, "]"));
  }
  return v;
}

Result<int64_t> TrackTotal(const rapidjson::Value& v) {
  if (v.IsBool()) return v.GetBool() ? -1 : 0;
  if (v.IsInt64()) {
    if (v.GetInt64() < 0) {
      return IllegalArgument("[track_total_hits] parameter must be positive or equals to -1");
    }
    return v.GetInt64() == 0 ? 0 : v.GetInt64();
  }
  return ParsingException("[track_total_hits] must be a boolean or an integer");
}

Result<Request> ParseRequest(const rapidjson::Value* body, const Params& params) {
  Request r;
  if (body != nullptr) {
    if (!body->IsObject()) return ParsingException("request body must be an object");
    for (auto it = body->MemberBegin(); it != body->MemberEnd(); ++it) {
      absl::string_view key = Sv(it->name);
      const auto& v = it->value;
      if (key == "query") {
        r.query = &v;
      } else if (key == "post_filter") {
        r.post_filter = &v;
      } else if (key == "search_after") {
        r.search_after = &v;
      } else if (key == "aggs" || key == "aggregations") {
        r.aggs = &v;
      } else if (key == "sort") {
        r.sort = &v;
      } else if (key == "_source") {
        r.source = &v;
      } else if (key == "from" || key == "size") {
        if (!v.IsInt64()) return ParsingException(absl::StrCat("[", key, "] must be an integer"));
        (key == "from" ? r.from : r.size) = v.GetInt64();
      } else if (key == "track_total_hits") {
        auto t = TrackTotal(v);
        if (!t.ok()) return t.error();
        r.track_total = t.value();
      } else if (key == "version" || key == "seq_no_primary_term" || key == "track_scores" ||
                 key == "explain" || key == "profile") {
        if (!v.IsBool()) return ParsingException(absl::StrCat("[", key, "] must be a boolean"));
        if (key == "version") r.version = v.GetBool();
        if (key == "seq_no_primary_term") r.seq_no_primary_term = v.GetBool();
        if (key == "track_scores") r.track_scores = v.GetBool();
        if ((key == "explain" || key == "profile") && v.GetBool()) {
          return Unsupported(absl::StrCat("[", key, "]"));
        }
      } else if (key == "timeout") {
      } else if (key == "stored_fields" && v.IsString() && Sv(v) == "_none_") {
      } else if (key == "highlight" || key == "collapse" || key == "rescore" || key == "suggest" ||
                 key == "pit" || key == "runtime_mappings" || key == "fields" ||
                 key == "script_fields" || key == "docvalue_fields" || key == "stored_fields" ||
                 key == "min_score" || key == "terminate_after" || key == "indices_boost" ||
                 key == "knn" || key == "slice" || key == "ext" || key == "stats" ||
                 key == "retriever" || key == "rank") {
        return Unsupported(absl::StrCat("search option [", key, "]"));
      } else {
        return ParsingException(absl::StrCat("Unknown key for a ",
                                             v.IsObject()  ? "START_OBJECT"
                                             : v.IsArray() ? "START_ARRAY"
                                                           : "VALUE",
                                             " in [", key, "]."));
      }
    }
  }
  for (const auto& [key, value] : params) {
    if (key == "size" || key == "from") {
      auto v = IntParam(key, value);
      if (!v.ok()) return v.error();
      (key == "from" ? r.from : r.size) = v.value();
    } else if (key == "track_total_hits") {
      if (value == "true" || value.empty()) {
        r.track_total = -1;
      } else if (value == "false") {
        r.track_total = 0;
      } else {
        auto v = IntParam(key, value);
        if (!v.ok()) return v.error();
        r.track_total = v.value();
      }
    } else if (key == "version") {
      r.version = value != "false";
    } else if (key == "seq_no_primary_term") {
      r.seq_no_primary_term = value != "false";
    } else if (key == "track_scores") {
      r.track_scores = value != "false";
    }
  }
  if (r.size < 0)
    return IllegalArgument("[size] parameter cannot be negative, found [" + std::to_string(r.size) +
                           "]");
  if (r.from < 0) return IllegalArgument("[from] parameter cannot be negative");
  if (r.search_after != nullptr && r.from > 0) {
    return IllegalArgument("[from] parameter must be set to 0 when [search_after] is used");
  }
  return r;
}

bool ParamTrue(const Params& params, const std::string& key) {
  const std::string* v = Param(params, key);
  return v != nullptr && *v != "false";
}

}  // namespace

Result<std::string> RunSearch(const Store& store, const std::vector<IndexInfo>& indices,
                              const rapidjson::Value* body, const Params& params,
                              const SearchOptions& options) {
  const auto started = std::chrono::steady_clock::now();
  auto req_or = ParseRequest(body, params);
  if (!req_or.ok()) return req_or.error();
  Request& req = req_or.value();
  const bool typed_keys = ParamTrue(params, "typed_keys");
  const bool total_as_int = ParamTrue(params, "rest_total_hits_as_int");
  if (total_as_int && req.track_total > 0) req.track_total = -1;

  int64_t window = 10000;
  for (const auto& idx : indices)
    window = std::min<int64_t>(window, idx.settings->max_result_window);
  if (req.from + req.size > window) {
    return IllegalArgument(absl::StrCat(
        "Result window is too large, from + size must be less than or equal to: [", window,
        "] but was [", req.from + req.size,
        "]. See the scroll api for a more efficient way to request large data sets. This limit "
        "can be set by changing the [index.max_result_window] index level setting."));
  }

  // Query, post_filter, sort, aggs, _source.
  QueryNode query;
  if (req.query != nullptr) {
    auto q = ParseQuery(*req.query);
    if (!q.ok()) return q.error();
    query = std::move(q.value());
  }
  std::optional<QueryNode> post;
  if (req.post_filter != nullptr) {
    auto q = ParseQuery(*req.post_filter);
    if (!q.ok()) return q.error();
    post = std::move(q.value());
  }
  std::vector<CompiledQuery> compiled, compiled_post;
  for (const auto& idx : indices) {
    auto c = CompileQuery(query, idx);
    if (!c.ok()) return c.error();
    compiled.push_back(std::move(c.value()));
    if (post) {
      auto p = CompileQuery(*post, idx);
      if (!p.ok()) return p.error();
      compiled_post.push_back(std::move(p.value()));
    }
  }
  std::vector<SortSpec> specs;
  if (const std::string* s = Param(params, "sort")) {
    auto parsed = ParseSortParam(*s);
    if (!parsed.ok()) return parsed.error();
    specs = std::move(parsed.value());
  } else if (req.sort != nullptr) {
    auto parsed = ParseSortBody(*req.sort);
    if (!parsed.ok()) return parsed.error();
    specs = std::move(parsed.value());
  }
  if (!options.id_field_data) {
    for (const auto& spec : specs) {
      if (spec.special != SortSpec::kId) continue;
      const std::string why =
          "Fielddata access on the _id field is disallowed, you can re-enable it by updating the "
          "dynamic cluster setting: indices.id_field_data.enabled";
      EsError e = BadRequest("search_phase_execution_exception", "all shards failed");
      e.extra = {{"phase", "query"}};
      e.root_cause_type = "illegal_argument_exception";
      e.root_cause_reason = why;
      e.caused_by_type = "illegal_argument_exception";
      e.caused_by_reason = why;
      return e;
    }
  }
  auto bound = BindSort(specs, indices);
  if (!bound.ok()) return bound.error();
  std::optional<std::vector<Val>> after;
  if (req.search_after != nullptr) {
    auto a = ParseSearchAfter(*req.search_after, specs);
    if (!a.ok()) return a.error();
    after = std::move(a.value());
  }
  AggList aggs;
  if (req.aggs != nullptr) {
    auto a = ParseAggs(*req.aggs, indices);
    if (!a.ok()) return a.error();
    aggs = std::move(a.value());
  }
  auto collectors = MakeCollectors(aggs, &indices, typed_keys);
  auto source_filter = SourceFilter::Create(req.source, params);
  if (!source_filter.ok()) return source_filter.error();

  // Scan.
  const size_t k = static_cast<size_t>(req.from + req.size);
  std::vector<Candidate> heap;
  auto cand_less = [&](const Candidate& a, const Candidate& b) {
    int c = CompareKeys(a.key, b.key, specs);
    if (c != 0) return c < 0;
    if (a.ordinal != b.ordinal) return a.ordinal < b.ordinal;
    return a.id < b.id;
  };
  uint64_t total = 0;
  bool total_known = false;
  bool all_match = !post;
  for (const auto& c : compiled) all_match = all_match && IsMatchAll(c);
  if (all_match) {
    for (const auto& idx : indices) total += idx.docs;
    total_known = true;
  }
  // Sorted on _id (optionally after _index): each index is read in sort order from the
  // search_after point on, and stops after k hits.
  const bool id_order = aggs.empty() && !specs.empty() && !specs[0].desc &&
                        (specs[0].special == SortSpec::kId ||
                         (specs[0].special == SortSpec::kIndex && specs.size() > 1 &&
                          specs[1].special == SortSpec::kId && !specs[1].desc));
  const bool index_first = id_order && specs[0].special == SortSpec::kIndex;
  const bool stop_early_unsorted = specs.empty() && aggs.empty();

  DocCtx ctx;
  std::vector<Val> key, scratch;
  for (size_t ord = 0; ord < indices.size(); ++ord) {
    const IndexInfo& idx = indices[ord];
    std::string from_id;
    if (id_order && after) {
      const Val& first = (*after)[0];
      if (index_first) {
        if (!first.missing() && idx.name < first.s) continue;
        if (!first.missing() && idx.name == first.s && !(*after)[1].missing()) {
          from_id = (*after)[1].s;
        }
      } else if (!first.missing()) {
        from_id = first.s;
      }
    }
    size_t taken_here = 0;
    bool stop_all = false;
    store.Scan(idx, from_id, [&](absl::string_view id, const DocRecord& rec) {
      ctx.Reset(&idx, static_cast<int>(ord), id, &rec);
      if (!Matches(compiled[ord], ctx)) return true;
      for (auto& c : collectors) c->Collect(ctx);
      if (post && !Matches(compiled_post[ord], ctx)) return true;
      if (!total_known) ++total;
      if (k == 0) {
        return !(id_order || stop_early_unsorted) || !total_known;
      }
      ComputeKey(specs, (*bound)[ord], ctx, &key, &scratch);
      if (after && CompareKeys(key, *after, specs) <= 0) return true;
      Candidate cand;
      cand.key = key;
      cand.ordinal = static_cast<int>(ord);
      if (heap.size() < k) {
        cand.id = std::string(id);
        cand.rec = rec;
        heap.push_back(std::move(cand));
        std::push_heap(heap.begin(), heap.end(), cand_less);
      } else {
        cand.id = std::string(id);
        if (!cand_less(cand, heap.front())) {
          if (id_order) return false;  // later docs of this index only sort later
          return true;
        }
        cand.rec = rec;
        std::pop_heap(heap.begin(), heap.end(), cand_less);
        heap.back() = std::move(cand);
        std::push_heap(heap.begin(), heap.end(), cand_less);
      }
      ++taken_here;
      if (id_order && taken_here >= k) return false;
      if (stop_early_unsorted && heap.size() >= k && total_known) {
        stop_all = true;
        return false;
      }
      return true;
    });
    if (stop_all) break;
  }
  // Totals the shortcuts above did not count.
  if (!total_known && id_order && req.track_total != 0) {
    total = 0;
    const uint64_t limit =
        req.track_total < 0 ? UINT64_MAX : static_cast<uint64_t>(req.track_total);
    for (size_t ord = 0; ord < indices.size() && total < limit; ++ord) {
      store.Scan(indices[ord], "", [&](absl::string_view id, const DocRecord& rec) {
        ctx.Reset(&indices[ord], static_cast<int>(ord), id, &rec);
        if (Matches(compiled[ord], ctx) && (!post || Matches(compiled_post[ord], ctx))) ++total;
        return total < limit;
      });
    }
  }
  std::sort_heap(heap.begin(), heap.end(), cand_less);

  // Answer.
  rapidjson::StringBuffer buf;
  Writer w(buf);
  w.StartObject();
  WriteKey(w, "took");
  w.Int64(std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                                started)
              .count());
  WriteKey(w, "timed_out");
  w.Bool(false);
  WriteKey(w, "_shards");
  w.StartObject();
  WriteKey(w, "total");
  w.Uint64(indices.size());
  WriteKey(w, "successful");
  w.Uint64(indices.size());
  WriteKey(w, "skipped");
  w.Int(0);
  WriteKey(w, "failed");
  w.Int(0);
  w.EndObject();
  WriteKey(w, "hits");
  w.StartObject();
  if (req.track_total != 0) {
    WriteKey(w, "total");
    bool capped = req.track_total > 0 && total > static_cast<uint64_t>(req.track_total);
    uint64_t shown = capped ? static_cast<uint64_t>(req.track_total) : total;
    if (total_as_int) {
      w.Uint64(total);
    } else {
      w.StartObject();
      WriteKey(w, "value");
      w.Uint64(shown);
      WriteKey(w, "relation");
      w.String(capped ? "gte" : "eq");
      w.EndObject();
    }
  }
  const bool scored = specs.empty() || req.track_scores;
  WriteKey(w, "max_score");
  if (scored && heap.size() > static_cast<size_t>(req.from)) {
    w.Double(1.0);
  } else {
    w.Null();
  }
  WriteKey(w, "hits");
  w.StartArray();
  for (size_t i = static_cast<size_t>(req.from); i < heap.size(); ++i) {
    const Candidate& c = heap[i];
    w.StartObject();
    WriteKey(w, "_index");
    WriteStr(w, indices[c.ordinal].name);
    if (options.doc_type) {
      WriteKey(w, "_type");
      WriteStr(w, "_doc");
    }
    WriteKey(w, "_id");
    WriteStr(w, c.id);
    if (req.version) {
      WriteKey(w, "_version");
      w.Uint64(c.rec.version);
    }
    if (req.seq_no_primary_term) {
      WriteKey(w, "_seq_no");
      w.Uint64(c.rec.seq_no);
      WriteKey(w, "_primary_term");
      w.Int(1);
    }
    WriteKey(w, "_score");
    if (scored) {
      w.Double(1.0);
    } else {
      w.Null();
    }
    if (source_filter->fetch()) {
      WriteKey(w, "_source");
      source_filter->Write(w, c.rec.source);
    }
    if (!specs.empty()) {
      WriteKey(w, "sort");
      w.StartArray();
      for (const Val& v : c.key) v.Write(w);
      w.EndArray();
    }
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  if (!aggs.empty()) {
    WriteKey(w, "aggregations");
    w.StartObject();
    auto r = WriteAggs(w, aggs, collectors, typed_keys);
    if (!r.ok()) return r.error();
    w.EndObject();
  }
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize());
}

Result<uint64_t> RunCount(const Store& store, const std::vector<IndexInfo>& indices,
                          const rapidjson::Value* body) {
  QueryNode query;
  if (body != nullptr) {
    if (!body->IsObject()) return ParsingException("request body must be an object");
    for (auto it = body->MemberBegin(); it != body->MemberEnd(); ++it) {
      absl::string_view key = Sv(it->name);
      if (key != "query") {
        return ParsingException(absl::StrCat("request does not support [", key, "]"));
      }
      auto q = ParseQuery(it->value);
      if (!q.ok()) return q.error();
      query = std::move(q.value());
    }
  }
  uint64_t total = 0;
  DocCtx ctx;
  for (size_t ord = 0; ord < indices.size(); ++ord) {
    auto c = CompileQuery(query, indices[ord]);
    if (!c.ok()) return c.error();
    if (IsMatchAll(c.value())) {
      total += indices[ord].docs;
      continue;
    }
    store.Scan(indices[ord], "", [&](absl::string_view id, const DocRecord& rec) {
      ctx.Reset(&indices[ord], static_cast<int>(ord), id, &rec);
      if (Matches(c.value(), ctx)) ++total;
      return true;
    });
  }
  return total;
}

}  // namespace rtdw::eslite
