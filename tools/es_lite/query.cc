// Values of documents and the query language of rtdw-es-lite.
#include <algorithm>
#include <cmath>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "tools/es_lite/search_internal.h"

namespace rtdw::eslite {

// ---------------------------------------------------------------- values

void Val::Write(Writer& w) const {
  switch (kind) {
    case kMissing:
      w.Null();
      break;
    case kInt:
      w.Int64(i);
      break;
    case kDouble:
      if (std::isfinite(d)) {
        w.Double(d);
      } else {
        w.Null();
      }
      break;
    case kStr:
      WriteStr(w, s);
      break;
  }
}

int CompareVal(const Val& a, const Val& b) {
  auto rank = [](const Val& v) {
    return v.kind == Val::kMissing ? 0 : v.kind == Val::kStr ? 2 : 1;
  };
  int ra = rank(a), rb = rank(b);
  if (ra != rb) return ra < rb ? -1 : 1;
  if (ra == 0) return 0;
  if (ra == 2) {
    int c = a.s.compare(b.s);
    return c < 0 ? -1 : c > 0 ? 1 : 0;
  }
  if (a.kind == Val::kInt && b.kind == Val::kInt) return a.i < b.i ? -1 : a.i > b.i ? 1 : 0;
  double x = a.AsDouble(), y = b.AsDouble();
  return x < y ? -1 : x > y ? 1 : 0;
}

const rapidjson::Value& DocCtx::source() {
  if (!parsed_) {
    parsed_ = true;
    alloc_.Clear();
    doc_ = std::make_unique<rapidjson::Document>(&alloc_);
    if (ParseJson(rec_->source, doc_.get()) || !doc_->IsObject()) doc_->SetObject();
  }
  return *doc_;
}

namespace {

void CollectLeaf(const rapidjson::Value& v, std::vector<const rapidjson::Value*>* out) {
  if (v.IsArray()) {
    for (const auto& e : v.GetArray()) CollectLeaf(e, out);
  } else if (!v.IsNull()) {
    out->push_back(&v);
  }
}

}  // namespace

void CollectPath(const rapidjson::Value& node, absl::string_view path,
                 std::vector<const rapidjson::Value*>* out) {
  if (node.IsArray()) {
    for (const auto& e : node.GetArray()) CollectPath(e, path, out);
    return;
  }
  if (!node.IsObject()) return;
  for (auto it = node.MemberBegin(); it != node.MemberEnd(); ++it) {
    absl::string_view name = Sv(it->name);
    if (name == path) {
      CollectLeaf(it->value, out);
    } else if (path.size() > name.size() && path[name.size()] == '.' &&
               path.substr(0, name.size()) == name) {
      CollectPath(it->value, path.substr(name.size() + 1), out);
    }
  }
}

namespace {

std::optional<double> NumberOf(const rapidjson::Value& v) {
  if (v.IsNumber()) return v.GetDouble();
  if (v.IsString()) {
    double d;
    std::string s(Sv(v));
    if (!s.empty() && s.find_first_not_of("0123456789+-.eE") == std::string::npos &&
        absl::SimpleAtod(s, &d) && std::isfinite(d)) {
      return d;
    }
  }
  return std::nullopt;
}

std::optional<Val> ValueOf(const FieldInfo& f, const rapidjson::Value& v,
                           const DateFormat* format) {
  switch (f.type) {
    case FieldType::kKeyword: {
      if (v.IsObject() || v.IsArray() || v.IsNull()) return std::nullopt;
      std::string s = ScalarText(v);
      if (f.ignore_above > 0 && static_cast<int>(s.size()) > f.ignore_above) return std::nullopt;
      return Val::Str(std::move(s));
    }
    case FieldType::kText:
    case FieldType::kObject:
      return std::nullopt;
    case FieldType::kBoolean:
      if (v.IsBool()) return Val::Int(v.GetBool() ? 1 : 0);
      if (v.IsString() && Sv(v) == "true") return Val::Int(1);
      if (v.IsString() && (Sv(v) == "false" || Sv(v).empty())) return Val::Int(0);
      return std::nullopt;
    case FieldType::kDate: {
      auto ms = (format != nullptr ? format : f.format.get())->Parse(v);
      if (!ms) return std::nullopt;
      return Val::Int(*ms);
    }
    default:
      break;
  }
  if (IsIntegral(f.type)) {
    if (v.IsInt64()) return Val::Int(v.GetInt64());
    auto d = NumberOf(v);
    if (!d || std::fabs(*d) >= 9.2e18) return std::nullopt;
    return Val::Int(static_cast<int64_t>(std::trunc(*d)));
  }
  auto d = NumberOf(v);
  if (!d) return std::nullopt;
  if (f.type == FieldType::kFloat || f.type == FieldType::kHalfFloat) {
    return Val::Double(static_cast<double>(static_cast<float>(*d)));
  }
  return Val::Double(*d);
}

}  // namespace

void FieldVals(const FieldInfo& f, const rapidjson::Value& src, std::vector<Val>* out) {
  std::vector<const rapidjson::Value*> raw;
  CollectPath(src, f.source_path, &raw);
  for (const rapidjson::Value* v : raw) {
    if (auto val = ValueOf(f, *v, nullptr)) out->push_back(std::move(*val));
  }
}

std::optional<Val> ConvertForField(const FieldInfo& f, const rapidjson::Value& v,
                                   const DateFormat* format_override, std::string* error) {
  if (v.IsObject() || v.IsArray() || v.IsNull()) {
    *error = "[" + ToJson(v) + "] is not a value";
    return std::nullopt;
  }
  if (IsIntegral(f.type) && v.IsDouble() && v.GetDouble() != std::trunc(v.GetDouble())) {
    *error = absl::StrCat("Value [", ScalarText(v), "] has a decimal part");
    return std::nullopt;
  }
  auto val = ValueOf(f, v, format_override);
  if (!val && f.type == FieldType::kKeyword) return Val::Str(ScalarText(v));  // ignore_above
  if (!val) {
    if (f.type == FieldType::kDate) {
      *error = absl::StrCat("failed to parse date field [", ScalarText(v), "] with format [",
                            format_override != nullptr ? format_override->spec() : f.format->spec(),
                            "]");
    } else if (f.type == FieldType::kBoolean) {
      *error = absl::StrCat("Can't parse boolean value [", ScalarText(v),
                            "], expected [true] or [false]");
    } else {
      *error = absl::StrCat("For input string: \"", ScalarText(v), "\"");
    }
  }
  return val;
}

std::vector<std::string> Tokenize(absl::string_view text) {
  std::vector<std::string> out;
  std::string cur;
  for (char ch : text) {
    auto c = static_cast<unsigned char>(ch);
    if (absl::ascii_isalnum(c) || c >= 0x80) {
      cur.push_back(static_cast<char>(absl::ascii_tolower(c)));
    } else if (!cur.empty()) {
      out.push_back(std::move(cur));
      cur.clear();
    }
  }
  if (!cur.empty()) out.push_back(std::move(cur));
  return out;
}

EsError FielddataError(absl::string_view field) {
  return IllegalArgument(absl::StrCat(
      "Text fields are not optimised for operations that require per-document field data like "
      "aggregations and sorting, so these operations are disabled by default. Please use a "
      "keyword field instead. Alternatively, set fielddata=true on [",
      field,
      "] in order to load field data by uninverting the inverted index. Note that this can use "
      "significant memory."));
}

// ---------------------------------------------------------------- parsing queries

namespace {

bool IsEsQueryName(absl::string_view n) {
  static const char* const kNames[] = {"match_phrase",
                                       "match_phrase_prefix",
                                       "multi_match",
                                       "query_string",
                                       "simple_query_string",
                                       "wildcard",
                                       "regexp",
                                       "fuzzy",
                                       "nested",
                                       "has_child",
                                       "has_parent",
                                       "geo_distance",
                                       "geo_bounding_box",
                                       "geo_shape",
                                       "script",
                                       "script_score",
                                       "function_score",
                                       "dis_max",
                                       "boosting",
                                       "more_like_this",
                                       "terms_set",
                                       "span_term",
                                       "span_near",
                                       "intervals",
                                       "distance_feature",
                                       "pinned",
                                       "rank_feature",
                                       "percolate",
                                       "wrapper",
                                       "combined_fields",
                                       "match_bool_prefix",
                                       "knn",
                                       "semantic",
                                       "sparse_vector",
                                       "text_expansion",
                                       "weighted_tokens"};
  for (const char* k : kNames) {
    if (n == k) return true;
  }
  return false;
}

EsError QueryError(std::string reason) { return ParsingException(std::move(reason)); }

// A clause's single {"<field>": <value or object>} member, skipping boost/_name.
Result<std::pair<std::string, const rapidjson::Value*>> SingleField(absl::string_view query,
                                                                    const rapidjson::Value& body) {
  if (!body.IsObject())
    return QueryError(absl::StrCat("[", query, "] query malformed, no start_object"));
  std::string field;
  const rapidjson::Value* value = nullptr;
  for (auto it = body.MemberBegin(); it != body.MemberEnd(); ++it) {
    absl::string_view key = Sv(it->name);
    if (key == "boost" || key == "_name") continue;
    if (value != nullptr) {
      return QueryError(absl::StrCat("[", query, "] query doesn't support multiple fields, found [",
                                     field, "] and [", key, "]"));
    }
    field = std::string(key);
    value = &it->value;
  }
  if (value == nullptr) return QueryError(absl::StrCat("[", query, "] query has no field"));
  return std::make_pair(field, value);
}

Result<bool> ParseClauses(const rapidjson::Value& v, std::vector<QueryNode>* out) {
  if (v.IsObject()) {
    auto q = ParseQuery(v);
    if (!q.ok()) return q.error();
    out->push_back(std::move(q.value()));
    return true;
  }
  if (v.IsArray()) {
    for (const auto& e : v.GetArray()) {
      auto q = ParseQuery(e);
      if (!q.ok()) return q.error();
      out->push_back(std::move(q.value()));
    }
    return true;
  }
  return QueryError("[bool] query clause must be an object or an array");
}

// Allows only the listed keys in an object.
std::optional<EsError> OnlyKeys(absl::string_view query, const rapidjson::Value& obj,
                                std::initializer_list<absl::string_view> allowed) {
  for (auto it = obj.MemberBegin(); it != obj.MemberEnd(); ++it) {
    absl::string_view key = Sv(it->name);
    if (std::find(allowed.begin(), allowed.end(), key) == allowed.end()) {
      return QueryError(
          absl::StrCat("[", query, "] query does not support [", key, "]", " (in rtdw-es-lite)"));
    }
  }
  return std::nullopt;
}

}  // namespace

Result<QueryNode> ParseQuery(const rapidjson::Value& q) {
  if (!q.IsObject()) return QueryError("query malformed, must start with start_object");
  if (q.MemberCount() != 1) {
    if (q.MemberCount() == 0) return QueryError("query malformed, empty clause found");
    return QueryError(absl::StrCat("[", Sv(q.MemberBegin()->name),
                                   "] malformed query, expected [END_OBJECT] but found "
                                   "[FIELD_NAME]"));
  }
  absl::string_view name = Sv(q.MemberBegin()->name);
  const rapidjson::Value& body = q.MemberBegin()->value;
  QueryNode node;
  if (name == "match_all" || name == "match_none") {
    if (!body.IsObject()) return QueryError(absl::StrCat("[", name, "] query malformed"));
    if (auto e = OnlyKeys(name, body, {"boost", "_name"})) return *e;
    node.kind = name == "match_all" ? QueryNode::kMatchAll : QueryNode::kMatchNone;
    return node;
  }
  if (name == "term" || name == "match" || name == "prefix") {
    auto f = SingleField(name, body);
    if (!f.ok()) return f.error();
    node.kind = name == "term"    ? QueryNode::kTerm
                : name == "match" ? QueryNode::kMatch
                                  : QueryNode::kPrefix;
    node.field = f->first;
    const rapidjson::Value* v = f->second;
    if (v->IsObject()) {
      const char* value_key = name == "match" ? "query" : "value";
      if (name == "match") {
        if (auto e = OnlyKeys(name, *v, {"query", "operator", "boost", "_name"})) return *e;
        if (v->HasMember("operator")) {
          const auto& op = (*v)["operator"];
          std::string o = op.IsString() ? absl::AsciiStrToLower(Sv(op)) : "";
          if (o != "and" && o != "or") return QueryError("[match] operator must be and or or");
          node.match_and = o == "and";
        }
      } else {
        if (auto e = OnlyKeys(name, *v, {"value", "boost", "_name", "case_insensitive"})) return *e;
        if (v->HasMember("case_insensitive") && (*v)["case_insensitive"].IsBool() &&
            (*v)["case_insensitive"].GetBool()) {
          return Unsupported(absl::StrCat("[", name, "] case_insensitive"));
        }
      }
      if (!v->HasMember(value_key)) {
        return QueryError(absl::StrCat("[", name, "] query requires [", value_key, "]"));
      }
      v = &(*v)[value_key];
    }
    if (v->IsObject() || v->IsArray()) {
      return QueryError(absl::StrCat("[", name, "] query does not support array or object values"));
    }
    if (node.kind == QueryNode::kPrefix && !v->IsString()) {
      return QueryError("[prefix] query requires a string value");
    }
    node.values.push_back(v);
    return node;
  }
  if (name == "terms") {
    auto f = SingleField(name, body);
    if (!f.ok()) return f.error();
    node.kind = QueryNode::kTerms;
    node.field = f->first;
    if (!f->second->IsArray()) {
      if (f->second->IsObject()) return Unsupported("[terms] lookup");
      return QueryError("[terms] query requires an array of values");
    }
    for (const auto& v : f->second->GetArray()) {
      if (v.IsObject() || v.IsArray()) return QueryError("[terms] values must be scalars");
      node.values.push_back(&v);
    }
    return node;
  }
  if (name == "range") {
    auto f = SingleField(name, body);
    if (!f.ok()) return f.error();
    node.kind = QueryNode::kRange;
    node.field = f->first;
    const rapidjson::Value& r = *f->second;
    if (!r.IsObject()) return QueryError("[range] query malformed, no start_object");
    for (auto it = r.MemberBegin(); it != r.MemberEnd(); ++it) {
      absl::string_view key = Sv(it->name);
      const rapidjson::Value* v = &it->value;
      if (key == "gt") {
        node.gt = v;
      } else if (key == "gte") {
        node.gte = v;
      } else if (key == "lt") {
        node.lt = v;
      } else if (key == "lte") {
        node.lte = v;
      } else if (key == "format") {
        if (!v->IsString()) return QueryError("[range] format must be a string");
        node.format = std::string(Sv(*v));
      } else if (key == "time_zone") {
        if (!v->IsString()) return QueryError("[range] time_zone must be a string");
        node.time_zone = std::string(Sv(*v));
      } else if (key == "boost" || key == "_name") {
      } else if (key == "relation") {
        if (!v->IsString() || absl::AsciiStrToLower(Sv(*v)) != "intersects") {
          return Unsupported("[range] relation other than INTERSECTS");
        }
      } else {
        return QueryError(
            absl::StrCat("[range] query does not support [", key, "]", " (in rtdw-es-lite)"));
      }
    }
    for (const rapidjson::Value* b : {node.gt, node.gte, node.lt, node.lte}) {
      if (b != nullptr && (b->IsObject() || b->IsArray())) {
        return QueryError("[range] bounds must be values");
      }
      if (b != nullptr && b->IsString() &&
          (Sv(*b).find("now") != absl::string_view::npos ||
           Sv(*b).find("||") != absl::string_view::npos)) {
        return Unsupported(absl::StrCat("date math [", Sv(*b), "] in [range]"));
      }
    }
    return node;
  }
  if (name == "exists") {
    if (!body.IsObject()) return QueryError("[exists] query malformed");
    if (auto e = OnlyKeys(name, body, {"field", "boost", "_name"})) return *e;
    if (!body.HasMember("field") || !body["field"].IsString()) {
      return QueryError("[exists] must be provided with a [field]");
    }
    node.kind = QueryNode::kExists;
    node.field = std::string(Sv(body["field"]));
    return node;
  }
  if (name == "ids") {
    if (!body.IsObject()) return QueryError("[ids] query malformed");
    if (auto e = OnlyKeys(name, body, {"values", "boost", "_name"})) return *e;
    node.kind = QueryNode::kIds;
    if (body.HasMember("values")) {
      if (!body["values"].IsArray()) return QueryError("[ids] values must be an array");
      for (const auto& v : body["values"].GetArray()) {
        if (!v.IsString()) return QueryError("[ids] values must be strings");
        node.ids.emplace_back(Sv(v));
      }
    }
    return node;
  }
  if (name == "bool") {
    if (!body.IsObject()) return QueryError("[bool] query malformed");
    node.kind = QueryNode::kBool;
    for (auto it = body.MemberBegin(); it != body.MemberEnd(); ++it) {
      absl::string_view key = Sv(it->name);
      Result<bool> r = true;
      if (key == "must") {
        r = ParseClauses(it->value, &node.must);
      } else if (key == "filter") {
        r = ParseClauses(it->value, &node.filter);
      } else if (key == "should") {
        r = ParseClauses(it->value, &node.should);
      } else if (key == "must_not") {
        r = ParseClauses(it->value, &node.must_not);
      } else if (key == "minimum_should_match") {
        int n = 0;
        if (it->value.IsInt()) {
          n = it->value.GetInt();
        } else if (!it->value.IsString() || !absl::SimpleAtoi(Sv(it->value), &n)) {
          return Unsupported("[bool] minimum_should_match other than an integer");
        }
        node.minimum_should_match = std::max(0, n);
      } else if (key == "boost" || key == "_name" || key == "adjust_pure_negative") {
      } else {
        return QueryError(absl::StrCat("[bool] query does not support [", key, "]"));
      }
      if (!r.ok()) return r.error();
    }
    return node;
  }
  if (name == "constant_score") {
    if (!body.IsObject() || !body.HasMember("filter")) {
      return QueryError("[constant_score] requires a 'filter' element");
    }
    if (auto e = OnlyKeys(name, body, {"filter", "boost", "_name"})) return *e;
    node.kind = QueryNode::kBool;
    auto r = ParseClauses(body["filter"], &node.filter);
    if (!r.ok()) return r.error();
    return node;
  }
  if (IsEsQueryName(name)) return Unsupported(absl::StrCat("query [", name, "]"));
  EsError e = QueryError(absl::StrCat("unknown query [", name, "]"));
  e.caused_by_type = "named_object_not_found_exception";
  e.caused_by_reason = absl::StrCat("[1:1] unknown field [", name, "]");
  return e;
}

// ---------------------------------------------------------------- compiling and matching

namespace {

EsError CreateQueryError(std::string reason) {
  return BadRequest("query_shard_exception", absl::StrCat("failed to create query: ", reason));
}

}  // namespace

Result<CompiledQuery> CompileQuery(const QueryNode& q, const IndexInfo& index) {
  CompiledQuery c;
  c.kind = q.kind;
  c.match_and = q.match_and;
  c.ids = q.ids;
  if (q.kind == QueryNode::kBool) {
    auto compile_all = [&](const std::vector<QueryNode>& in,
                           std::vector<CompiledQuery>* out) -> std::optional<EsError> {
      for (const auto& sub : in) {
        auto cq = CompileQuery(sub, index);
        if (!cq.ok()) return cq.error();
        out->push_back(std::move(cq.value()));
      }
      return std::nullopt;
    };
    if (auto e = compile_all(q.must, &c.must)) return *e;
    if (auto e = compile_all(q.filter, &c.filter)) return *e;
    if (auto e = compile_all(q.should, &c.should)) return *e;
    if (auto e = compile_all(q.must_not, &c.must_not)) return *e;
    c.msm = q.minimum_should_match >= 0
                ? q.minimum_should_match
                : (!q.should.empty() && q.must.empty() && q.filter.empty() ? 1 : 0);
    return c;
  }
  if (q.kind == QueryNode::kMatchAll || q.kind == QueryNode::kMatchNone ||
      q.kind == QueryNode::kIds) {
    return c;
  }
  // Field queries.
  if (q.field == "_id" || q.field == "_index") {
    c.target = q.field == "_id" ? CompiledQuery::kId : CompiledQuery::kIndex;
    if (q.kind == QueryNode::kRange) return Unsupported(absl::StrCat("[range] on ", q.field));
    for (const auto* v : q.values) c.values.push_back(Val::Str(ScalarText(*v)));
    return c;
  }
  const FieldInfo* f = index.mapping->Find(q.field);
  if (f == nullptr) {
    c.target = CompiledQuery::kUnmapped;
    return c;
  }
  c.field = f;
  c.path = f->source_path;
  if (q.kind == QueryNode::kExists) return c;
  if (f->type == FieldType::kObject) {
    c.target = CompiledQuery::kUnmapped;  // like ES: a value query on an object field finds nothing
    return c;
  }
  c.text = f->type == FieldType::kText;
  if (c.text) {
    if (q.kind == QueryNode::kRange) return Unsupported("[range] on a text field");
    for (const auto* v : q.values) {
      std::string s = ScalarText(*v);
      if (q.kind == QueryNode::kMatch) {
        for (auto& t : Tokenize(s)) c.tokens.push_back(std::move(t));
      } else {
        c.tokens.push_back(std::move(s));  // term / prefix: not analysed, as in ES
      }
    }
    return c;
  }
  if (q.kind == QueryNode::kPrefix) {
    if (f->type != FieldType::kKeyword) {
      return CreateQueryError(
          absl::StrCat("Can only use prefix queries on keyword and text fields - "
                       "not on [",
                       q.field, "] which is of type [", TypeName(f->type), "]"));
    }
    c.tokens.push_back(ScalarText(*q.values[0]));
    return c;
  }
  std::optional<DateFormat> override_format;
  if (!q.format.empty()) {
    std::string err;
    override_format = DateFormat::Create(q.format, &err);
    if (!override_format) return BadRequest("parse_exception", err);
  }
  std::optional<absl::TimeZone> tz;
  if (!q.time_zone.empty()) {
    tz = ParseTimeZone(q.time_zone);
    if (!tz) return IllegalArgument(absl::StrCat("Unknown time-zone ID: ", q.time_zone));
  }
  auto convert = [&](const rapidjson::Value& v) -> Result<Val> {
    std::string err;
    auto val = ConvertForField(*f, v, override_format ? &*override_format : nullptr, &err);
    if (!val) {
      if (f->type == FieldType::kDate) return BadRequest("parse_exception", err);
      return CreateQueryError(err);
    }
    if (tz && f->type == FieldType::kDate && v.IsString()) {
      // A text bound without a zone is local to time_zone: shift by the zone's offset.
      absl::Time t = absl::FromUnixMillis(val->i);
      int offset = tz->At(t).offset;
      bool has_zone = Sv(v).find_first_of("Z+") != absl::string_view::npos ||
                      (Sv(v).size() > 10 && Sv(v).find('-', 10) != absl::string_view::npos);
      if (!has_zone) val->i -= static_cast<int64_t>(offset) * 1000;
    }
    return std::move(*val);
  };
  for (const auto* v : q.values) {
    auto val = convert(*v);
    if (!val.ok()) return val.error();
    c.values.push_back(std::move(val.value()));
  }
  if (q.kind == QueryNode::kRange) {
    auto bound = [&](const rapidjson::Value* v, std::optional<Val>* out) -> std::optional<EsError> {
      if (v == nullptr || v->IsNull()) return std::nullopt;
      auto val = convert(*v);
      if (!val.ok()) return val.error();
      *out = std::move(val.value());
      return std::nullopt;
    };
    if (q.gte != nullptr) {
      if (auto e = bound(q.gte, &c.lo)) return *e;
      c.lo_incl = true;
    }
    if (q.gt != nullptr) {
      if (auto e = bound(q.gt, &c.lo)) return *e;
      c.lo_incl = false;
    }
    if (q.lte != nullptr) {
      if (auto e = bound(q.lte, &c.hi)) return *e;
      c.hi_incl = true;
    }
    if (q.lt != nullptr) {
      if (auto e = bound(q.lt, &c.hi)) return *e;
      c.hi_incl = false;
    }
  }
  return c;
}

bool IsMatchAll(const CompiledQuery& q) {
  if (q.kind == QueryNode::kMatchAll) return true;
  if (q.kind != QueryNode::kBool || !q.must_not.empty() || q.msm > 0) return false;
  for (const auto& s : q.must) {
    if (!IsMatchAll(s)) return false;
  }
  for (const auto& s : q.filter) {
    if (!IsMatchAll(s)) return false;
  }
  return true;
}

bool Matches(const CompiledQuery& q, DocCtx& doc) {
  switch (q.kind) {
    case QueryNode::kMatchAll:
      return true;
    case QueryNode::kMatchNone:
      return false;
    case QueryNode::kIds:
      return std::find(q.ids.begin(), q.ids.end(), doc.id()) != q.ids.end();
    case QueryNode::kBool: {
      for (const auto& s : q.must) {
        if (!Matches(s, doc)) return false;
      }
      for (const auto& s : q.filter) {
        if (!Matches(s, doc)) return false;
      }
      for (const auto& s : q.must_not) {
        if (Matches(s, doc)) return false;
      }
      if (q.msm > 0) {
        int n = 0;
        for (const auto& s : q.should) {
          if (Matches(s, doc) && ++n >= q.msm) break;
        }
        if (n < q.msm) return false;
      }
      return true;
    }
    default:
      break;
  }
  if (q.target == CompiledQuery::kUnmapped) return false;
  if (q.target == CompiledQuery::kId || q.target == CompiledQuery::kIndex) {
    absl::string_view subject = q.target == CompiledQuery::kId ? doc.id() : doc.index().name;
    if (q.kind == QueryNode::kExists) return true;
    for (const auto& v : q.values) {
      if (q.kind == QueryNode::kPrefix ? subject.substr(0, v.s.size()) == v.s : subject == v.s) {
        return true;
      }
    }
    return false;
  }
  if (q.kind == QueryNode::kExists) {
    std::vector<const rapidjson::Value*> raw;
    CollectPath(doc.source(), q.path, &raw);
    if (q.field->type == FieldType::kObject) return !raw.empty();
    std::vector<Val> vals;
    if (q.text) return !raw.empty();
    FieldVals(*q.field, doc.source(), &vals);
    return !vals.empty();
  }
  if (q.text) {
    std::vector<const rapidjson::Value*> raw;
    CollectPath(doc.source(), q.path, &raw);
    std::vector<std::string> tokens;
    for (const auto* v : raw) {
      if (v->IsObject()) continue;
      for (auto& t : Tokenize(ScalarText(*v))) tokens.push_back(std::move(t));
    }
    auto has = [&](const std::string& t) {
      if (q.kind == QueryNode::kPrefix) {
        return std::any_of(tokens.begin(), tokens.end(),
                           [&](const std::string& x) { return absl::StartsWith(x, t); });
      }
      return std::find(tokens.begin(), tokens.end(), t) != tokens.end();
    };
    if (q.tokens.empty()) return false;
    if (q.kind == QueryNode::kMatch && q.match_and) {
      return std::all_of(q.tokens.begin(), q.tokens.end(), has);
    }
    return std::any_of(q.tokens.begin(), q.tokens.end(), has);
  }
  std::vector<Val> vals;
  FieldVals(*q.field, doc.source(), &vals);
  if (vals.empty()) return false;
  switch (q.kind) {
    case QueryNode::kTerm:
    case QueryNode::kTerms:
    case QueryNode::kMatch:
      for (const auto& dv : vals) {
        for (const auto& qv : q.values) {
          if (CompareVal(dv, qv) == 0) return true;
        }
      }
      return false;
    case QueryNode::kPrefix:
      for (const auto& dv : vals) {
        if (dv.kind == Val::kStr && absl::StartsWith(dv.s, q.tokens[0])) return true;
      }
      return false;
    case QueryNode::kRange:
      for (const auto& dv : vals) {
        if (q.lo) {
          int c = CompareVal(dv, *q.lo);
          if (c < 0 || (c == 0 && !q.lo_incl)) continue;
        }
        if (q.hi) {
          int c = CompareVal(dv, *q.hi);
          if (c > 0 || (c == 0 && !q.hi_incl)) continue;
        }
        return true;
      }
      return false;
    default:
      return false;
  }
}

}  // namespace rtdw::eslite
