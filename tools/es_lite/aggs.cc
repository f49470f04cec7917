// Aggregations of rtdw-es-lite: terms, value_count, cardinality, min, max, sum, avg,
// date_histogram, histogram, filter.
#include <algorithm>
#include <cmath>
#include <map>
#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/civil_time.h"
#include "tools/es_lite/search_internal.h"

namespace rtdw::eslite {
namespace {

constexpr size_t kMaxBuckets = 65536;

bool IsMetric(absl::string_view t) {
  return t == "value_count" || t == "cardinality" || t == "min" || t == "max" || t == "sum" ||
         t == "avg";
}

bool IsKnownEsAgg(absl::string_view t) {
  static const char* const kNames[] = {"stats",
                                       "extended_stats",
                                       "percentiles",
                                       "percentile_ranks",
                                       "top_hits",
                                       "range",
                                       "date_range",
                                       "filters",
                                       "nested",
                                       "reverse_nested",
                                       "significant_terms",
                                       "composite",
                                       "geo_distance",
                                       "geohash_grid",
                                       "missing",
                                       "global",
                                       "sampler",
                                       "auto_date_histogram",
                                       "variable_width_histogram",
                                       "rare_terms",
                                       "multi_terms",
                                       "weighted_avg",
                                       "median_absolute_deviation",
                                       "scripted_metric",
                                       "top_metrics",
                                       "string_stats",
                                       "boxplot",
                                       "t_test",
                                       "rate",
                                       "bucket_sort",
                                       "bucket_selector",
                                       "bucket_script",
                                       "cumulative_sum",
                                       "derivative",
                                       "avg_bucket",
                                       "sum_bucket",
                                       "max_bucket",
                                       "min_bucket",
                                       "stats_bucket",
                                       "moving_fn",
                                       "serial_diff",
                                       "ip_range",
                                       "adjacency_matrix",
                                       "diversified_sampler",
                                       "significant_text",
                                       "geotile_grid",
                                       "geo_bounds",
                                       "geo_centroid",
                                       "matrix_stats",
                                       "categorize_text",
                                       "frequent_item_sets",
                                       "random_sampler",
                                       "time_series",
                                       "ip_prefix",
                                       "geo_line"};
  for (const char* k : kNames) {
    if (t == k) return true;
  }
  return false;
}

EsError AggError(std::string reason) { return ParsingException(std::move(reason)); }

std::optional<EsError> OnlyParams(absl::string_view agg, absl::string_view type,
                                  const rapidjson::Value& p,
                                  std::initializer_list<absl::string_view> allowed) {
  for (auto it = p.MemberBegin(); it != p.MemberEnd(); ++it) {
    absl::string_view key = Sv(it->name);
    if (std::find(allowed.begin(), allowed.end(), key) == allowed.end()) {
      if (key == "script" || key == "missing" || key == "include" || key == "exclude" ||
          key == "extended_bounds" || key == "hard_bounds" || key == "offset" || key == "order" ||
          key == "keyed" || key == "value_type" || key == "interval") {
        return Unsupported(
            absl::StrCat("[", key, "] in aggregation [", agg, "] of type [", type, "]"));
      }
      return AggError(absl::StrCat("[", type, "] unknown field [", key, "]"));
    }
  }
  return std::nullopt;
}

std::optional<EsError> CheckField(const AggNode& n, const std::vector<IndexInfo>& indices) {
  if (n.field == "_index" || n.field == "_id") {
    if (n.type == "terms" || n.type == "value_count" || n.type == "cardinality") {
      return std::nullopt;
    }
    return IllegalArgument(absl::StrCat("Field [", n.field,
                                        "] of type [keyword] is not supported "
                                        "for aggregation [",
                                        n.type, "]"));
  }
  for (const auto& idx : indices) {
    const FieldInfo* f = idx.mapping->Find(n.field);
    if (f == nullptr) continue;
    if (f->type == FieldType::kText) return FielddataError(n.field);
    bool ok = false;
    if (n.type == "terms" || n.type == "value_count" || n.type == "cardinality") {
      ok = f->type != FieldType::kObject;
    } else if (n.type == "date_histogram" || n.type == "histogram" || n.type == "min" ||
               n.type == "max" || n.type == "sum" || n.type == "avg") {
      ok = IsNumeric(f->type) || f->type == FieldType::kDate ||
           (f->type == FieldType::kBoolean && n.type != "date_histogram" && n.type != "histogram");
    }
    if (!ok) {
      return IllegalArgument(absl::StrCat("Field [", n.field, "] of type [", TypeName(f->type),
                                          "] is not supported for aggregation [", n.type, "]"));
    }
  }
  return std::nullopt;
}

Result<bool> ParseOne(AggNode* n, const rapidjson::Value& p,
                      const std::vector<IndexInfo>& indices) {
  const std::string& t = n->type;
  if (t == "filter") {
    auto q = ParseQuery(p);
    if (!q.ok()) return q.error();
    n->filter = std::move(q.value());
    for (const auto& idx : indices) {
      auto c = CompileQuery(n->filter, idx);
      if (!c.ok()) return c.error();
    }
    return true;
  }
  if (!p.IsObject()) return AggError(absl::StrCat("[", t, "] aggregation must be an object"));
  auto field = p.FindMember("field");
  if (field == p.MemberEnd() || !field->value.IsString()) {
    if (p.HasMember("script"))
      return Unsupported(absl::StrCat("[script] in aggregation [", n->name, "]"));
    return IllegalArgument(
        absl::StrCat("Required one of fields [field, script], but none were "
                     "specified. (aggregation [",
                     n->name, "])"));
  }
  n->field = std::string(Sv(field->value));
  if (t == "terms") {
    if (auto e = OnlyParams(
            n->name, t, p,
            {"field", "size", "min_doc_count", "order", "shard_size", "show_term_doc_count_error",
             "execution_hint", "collect_mode", "shard_min_doc_count"})) {
      return *e;
    }
    if (p.HasMember("size")) {
      if (!p["size"].IsInt() || p["size"].GetInt() < 1) {
        return IllegalArgument(absl::StrCat("[size] must be greater than 0. Found [",
                                            ScalarText(p["size"]), "] in [", n->name, "]"));
      }
      n->size = p["size"].GetInt();
    }
    if (p.HasMember("min_doc_count")) {
      if (!p["min_doc_count"].IsInt64() || p["min_doc_count"].GetInt64() < 0) {
        return IllegalArgument("[min_doc_count] must be >= 0");
      }
      n->min_doc_count = p["min_doc_count"].GetInt64();
    }
    if (p.HasMember("order")) {
      const rapidjson::Value* o = &p["order"];
      if (o->IsArray()) {
        if (o->Size() != 1) return Unsupported("[order] with several criteria in [terms]");
        o = &(*o)[0];
      }
      if (!o->IsObject() || o->MemberCount() != 1 || !o->MemberBegin()->value.IsString()) {
        return AggError("[terms] order must be {\"_count\"|\"_key\": \"asc\"|\"desc\"}");
      }
      absl::string_view by = Sv(o->MemberBegin()->name);
      std::string dir = absl::AsciiStrToLower(Sv(o->MemberBegin()->value));
      if (dir != "asc" && dir != "desc")
        return AggError("Unknown terms order direction [" + dir + "]");
      if (by == "_key" || by == "_term") {
        n->order_by_key = true;
      } else if (by != "_count") {
        return Unsupported(absl::StrCat("[terms] order by [", by, "]"));
      }
      n->order_asc = dir == "asc";
    }
  } else if (IsMetric(t)) {
    if (auto e = OnlyParams(n->name, t, p, {"field", "precision_threshold", "format"})) return *e;
    if (p.HasMember("format")) {
      if (!p["format"].IsString()) return AggError("[format] must be a string");
      n->format = std::string(Sv(p["format"]));
    }
  } else if (t == "date_histogram") {
    if (auto e = OnlyParams(n->name, t, p,
                            {"field", "calendar_interval", "fixed_interval", "time_zone", "format",
                             "min_doc_count"})) {
      return *e;
    }
    if (p.HasMember("calendar_interval")) {
      const auto& v = p["calendar_interval"];
      std::string s = v.IsString() ? std::string(Sv(v)) : "";
      static const std::pair<const char*, char> kUnits[] = {
          {"minute", 'm'},  {"1m", 'm'},   {"hour", 'h'}, {"1h", 'h'},    {"day", 'd'},
          {"1d", 'd'},      {"week", 'w'}, {"1w", 'w'},   {"month", 'M'}, {"1M", 'M'},
          {"quarter", 'q'}, {"1q", 'q'},   {"year", 'y'}, {"1y", 'y'}};
      for (const auto& [name, unit] : kUnits) {
        if (s == name) n->calendar_unit = unit;
      }
      if (n->calendar_unit == 0) {
        return IllegalArgument(absl::StrCat("The supplied interval [", s,
                                            "] could not be parsed as a calendar interval."));
      }
    }
    if (p.HasMember("fixed_interval")) {
      if (n->calendar_unit != 0) {
        return IllegalArgument(
            "Cannot use [fixed_interval] with [calendar_interval] configuration option.");
      }
      const auto& v = p["fixed_interval"];
      std::string s = v.IsString() ? std::string(Sv(v)) : "";
      size_t digits = 0;
      while (digits < s.size() && absl::ascii_isdigit(static_cast<unsigned char>(s[digits])))
        ++digits;
      int64_t num = 0;
      std::string unit = s.substr(digits);
      int64_t scale = unit == "ms"  ? 1
                      : unit == "s" ? 1000
                      : unit == "m" ? 60000
                      : unit == "h" ? 3600000
                      : unit == "d" ? 86400000
                                    : 0;
      if (digits == 0 || !absl::SimpleAtoi(s.substr(0, digits), &num) || num <= 0 || scale == 0) {
        return IllegalArgument(
            absl::StrCat("failed to parse setting [date_histogram.fixedInterval] with value [", s,
                         "] as a time value: unit is missing or unrecognized"));
      }
      n->fixed_interval_ms = num * scale;
    }
    if (n->calendar_unit == 0 && n->fixed_interval_ms == 0) {
      return IllegalArgument(
          "Required one of fields [fixed_interval, calendar_interval], but none "
          "were specified.");
    }
    if (p.HasMember("time_zone")) {
      if (!p["time_zone"].IsString() || !ParseTimeZone(Sv(p["time_zone"]))) {
        return IllegalArgument(absl::StrCat("Unknown time-zone ID: ", ScalarText(p["time_zone"])));
      }
      n->time_zone = std::string(Sv(p["time_zone"]));
    }
    if (p.HasMember("format")) {
      std::string err;
      if (!p["format"].IsString() || !DateFormat::Create(Sv(p["format"]), &err)) {
        return IllegalArgument(absl::StrCat("Invalid format in [", n->name, "]: ", err));
      }
      n->format = std::string(Sv(p["format"]));
    }
    if (p.HasMember("min_doc_count")) {
      if (!p["min_doc_count"].IsInt64() || p["min_doc_count"].GetInt64() < 0) {
        return IllegalArgument("[min_doc_count] must be >= 0");
      }
      n->min_doc_count = p["min_doc_count"].GetInt64();
    }
  } else if (t == "histogram") {
    if (auto e = OnlyParams(n->name, t, p, {"field", "interval", "min_doc_count"})) return *e;
    if (!p.HasMember("interval") || !p["interval"].IsNumber() || !(p["interval"].GetDouble() > 0)) {
      return IllegalArgument("[interval] must be >0 for histogram aggregation [" + n->name + "]");
    }
    n->histogram_interval = p["interval"].GetDouble();
    if (p.HasMember("min_doc_count")) {
      if (!p["min_doc_count"].IsInt64()) return IllegalArgument("[min_doc_count] must be >= 0");
      n->min_doc_count = p["min_doc_count"].GetInt64();
    }
  }
  if (auto e = CheckField(*n, indices)) return *e;
  return true;
}

}  // namespace

Result<AggList> ParseAggs(const rapidjson::Value& aggs, const std::vector<IndexInfo>& indices) {
  if (!aggs.IsObject()) return AggError("aggregations must be an object");
  AggList out;
  for (auto it = aggs.MemberBegin(); it != aggs.MemberEnd(); ++it) {
    AggNode n;
    n.name = std::string(Sv(it->name));
    if (n.name.find_first_of("[]>") != std::string::npos) {
      return AggError(absl::StrCat("Invalid aggregation name [", n.name,
                                   "]. Aggregation names can contain any character except '[', "
                                   "']', and '>'"));
    }
    const auto& def = it->value;
    if (!def.IsObject()) {
      return AggError(absl::StrCat("Expected [START_OBJECT] under [", n.name, "]"));
    }
    const rapidjson::Value* subs = nullptr;
    for (auto jt = def.MemberBegin(); jt != def.MemberEnd(); ++jt) {
      absl::string_view key = Sv(jt->name);
      if (key == "aggs" || key == "aggregations") {
        subs = &jt->value;
      } else if (key == "meta") {
      } else if (!n.type.empty()) {
        return AggError(absl::StrCat("Found two aggregation type definitions in [", n.name, "]: [",
                                     n.type, "] and [", key, "]"));
      } else {
        n.type = std::string(key);
        n.params = &jt->value;
      }
    }
    if (n.type.empty()) {
      return AggError(absl::StrCat("Missing definition for aggregation [", n.name, "]"));
    }
    bool known = n.type == "terms" || IsMetric(n.type) || n.type == "date_histogram" ||
                 n.type == "histogram" || n.type == "filter";
    if (!known) {
      if (IsKnownEsAgg(n.type)) return Unsupported(absl::StrCat("aggregation [", n.type, "]"));
      EsError e = AggError(absl::StrCat("Unknown aggregation type [", n.type, "]"));
      e.caused_by_type = "named_object_not_found_exception";
      e.caused_by_reason = absl::StrCat("unknown field [", n.type, "]");
      return e;
    }
    auto parsed = ParseOne(&n, *n.params, indices);
    if (!parsed.ok()) return parsed.error();
    if (subs != nullptr) {
      if (IsMetric(n.type)) {
        return BadRequest("aggregation_initialization_exception",
                          absl::StrCat("Aggregator [", n.name, "] of type [", n.type,
                                       "] cannot accept sub-aggregations"));
      }
      auto sub = ParseAggs(*subs, indices);
      if (!sub.ok()) return sub.error();
      n.subs = std::move(sub.value());
    }
    out.push_back(std::move(n));
  }
  return out;
}

namespace {

// Values of an aggregation's field in a document; *info is the field (null for _id/_index or
// unmapped).
void AggVals(const std::string& field, DocCtx& doc, std::vector<Val>* out, const FieldInfo** info) {
  *info = nullptr;
  if (field == "_index") {
    out->push_back(Val::Str(doc.index().name));
    return;
  }
  if (field == "_id") {
    out->push_back(Val::Str(std::string(doc.id())));
    return;
  }
  const FieldInfo* f = doc.index().mapping->Find(field);
  if (f == nullptr || f->type == FieldType::kText || f->type == FieldType::kObject) return;
  *info = f;
  FieldVals(*f, doc.source(), out);
}

struct Bucket {
  uint64_t count = 0;
  std::vector<std::unique_ptr<Collector>> subs;
};

class BucketCollectorBase : public Collector {
 public:
  BucketCollectorBase(const AggNode& node, const std::vector<IndexInfo>* indices, bool typed_keys)
      : node_(node), indices_(indices), typed_keys_(typed_keys) {}

 protected:
  void Add(Bucket& b, DocCtx& doc) {
    if (b.count++ == 0 && !node_.subs.empty())
      b.subs = MakeCollectors(node_.subs, indices_, typed_keys_);
    for (auto& s : b.subs) s->Collect(doc);
  }
  Result<bool> WriteSubs(Writer& w, Bucket& b) {
    if (node_.subs.empty()) return true;
    if (b.subs.empty()) b.subs = MakeCollectors(node_.subs, indices_, typed_keys_);
    return WriteAggs(w, node_.subs, b.subs, typed_keys_);
  }

  const AggNode& node_;
  const std::vector<IndexInfo>* indices_;
  bool typed_keys_;
};

class TermsCollector : public BucketCollectorBase {
 public:
  using BucketCollectorBase::BucketCollectorBase;

  void Collect(DocCtx& doc) override {
    vals_.clear();
    const FieldInfo* f = nullptr;
    AggVals(node_.field, doc, &vals_, &f);
    if (f != nullptr && key_type_ == nullptr) key_type_ = f;
    std::sort(vals_.begin(), vals_.end(), ValLess());
    vals_.erase(std::unique(vals_.begin(), vals_.end(),
                            [](const Val& a, const Val& b) { return CompareVal(a, b) == 0; }),
                vals_.end());
    for (const Val& v : vals_) Add(buckets_[v], doc);
  }

  Result<bool> Write(Writer& w) override {
    std::vector<std::pair<const Val*, Bucket*>> list;
    int64_t min_count = node_.min_doc_count < 0 ? 1 : std::max<int64_t>(1, node_.min_doc_count);
    for (auto& [k, b] : buckets_) {
      if (static_cast<int64_t>(b.count) >= min_count) list.emplace_back(&k, &b);
    }
    auto by_key = [](const auto& a, const auto& b) { return CompareVal(*a.first, *b.first) < 0; };
    if (node_.order_by_key) {
      std::stable_sort(list.begin(), list.end(), by_key);
      if (!node_.order_asc) std::reverse(list.begin(), list.end());
    } else {
      std::stable_sort(list.begin(), list.end(), [&](const auto& a, const auto& b) {
        if (a.second->count != b.second->count) {
          return node_.order_asc ? a.second->count < b.second->count
                                 : a.second->count > b.second->count;
        }
        return CompareVal(*a.first, *b.first) < 0;
      });
    }
    uint64_t other = 0;
    for (size_t i = node_.size; i < list.size(); ++i) other += list[i].second->count;
    if (list.size() > static_cast<size_t>(node_.size)) list.resize(node_.size);
    w.StartObject();
    WriteKey(w, "doc_count_error_upper_bound");
    w.Int(0);
    WriteKey(w, "sum_other_doc_count");
    w.Uint64(other);
    WriteKey(w, "buckets");
    w.StartArray();
    for (auto& [key, bucket] : list) {
      w.StartObject();
      WriteKey(w, "key");
      key->Write(w);
      if (key_type_ != nullptr && key_type_->type == FieldType::kDate) {
        WriteKey(w, "key_as_string");
        WriteStr(w, key_type_->format->Format(key->i));
      } else if (key_type_ != nullptr && key_type_->type == FieldType::kBoolean) {
        WriteKey(w, "key_as_string");
        WriteStr(w, key->i != 0 ? "true" : "false");
      }
      WriteKey(w, "doc_count");
      w.Uint64(bucket->count);
      auto r = WriteSubs(w, *bucket);
      if (!r.ok()) return r;
      w.EndObject();
    }
    w.EndArray();
    w.EndObject();
    return true;
  }

  std::string TypedPrefix() const {
    if (key_type_ == nullptr) return "sterms";
    if (IsIntegral(key_type_->type) || key_type_->type == FieldType::kDate ||
        key_type_->type == FieldType::kBoolean) {
      return "lterms";
    }
    if (IsFloating(key_type_->type)) return "dterms";
    return "sterms";
  }

 private:
  std::vector<Val> vals_;
  std::map<Val, Bucket, ValLess> buckets_;
  const FieldInfo* key_type_ = nullptr;
};

class MetricCollector : public Collector {
 public:
  explicit MetricCollector(const AggNode& node) : node_(node) {}

  void Collect(DocCtx& doc) override {
    vals_.clear();
    const FieldInfo* f = nullptr;
    AggVals(node_.field, doc, &vals_, &f);
    if (f != nullptr && info_ == nullptr) info_ = f;
    for (const Val& v : vals_) {
      ++count_;
      if (node_.type == "cardinality") {
        distinct_.insert(v);
        continue;
      }
      double d = v.AsDouble();
      sum_ += d;
      min_ = std::min(min_, d);
      max_ = std::max(max_, d);
    }
  }

  Result<bool> Write(Writer& w) override {
    w.StartObject();
    WriteKey(w, "value");
    const std::string& t = node_.type;
    std::optional<double> value;
    if (t == "value_count") {
      w.Uint64(count_);
    } else if (t == "cardinality") {
      w.Uint64(distinct_.size());
    } else if (t == "sum") {
      value = sum_;
      w.Double(sum_);
    } else if (count_ == 0) {
      w.Null();
    } else {
      value = t == "min" ? min_ : t == "max" ? max_ : sum_ / static_cast<double>(count_);
      w.Double(*value);
    }
    if (value && info_ != nullptr && info_->type == FieldType::kDate && count_ > 0) {
      WriteKey(w, "value_as_string");
      WriteStr(w, info_->format->Format(static_cast<int64_t>(*value)));
    }
    w.EndObject();
    return true;
  }

 private:
  const AggNode& node_;
  const FieldInfo* info_ = nullptr;
  std::vector<Val> vals_;
  uint64_t count_ = 0;
  double sum_ = 0;
  double min_ = INFINITY;
  double max_ = -INFINITY;
  std::set<Val, ValLess> distinct_;
};

int64_t FloorDiv(int64_t a, int64_t b) {
  int64_t q = a / b;
  if ((a % b != 0) && ((a < 0) != (b < 0))) --q;
  return q;
}

class DateHistogramCollector : public BucketCollectorBase {
 public:
  DateHistogramCollector(const AggNode& node, const std::vector<IndexInfo>* indices,
                         bool typed_keys)
      : BucketCollectorBase(node, indices, typed_keys),
        tz_(ParseTimeZone(node.time_zone).value_or(absl::UTCTimeZone())) {
    if (!node.format.empty()) {
      std::string err;
      if (auto f = DateFormat::Create(node.format, &err)) format_ = std::move(*f);
    }
  }

  void Collect(DocCtx& doc) override {
    vals_.clear();
    const FieldInfo* f = nullptr;
    AggVals(node_.field, doc, &vals_, &f);
    if (f != nullptr && info_ == nullptr) info_ = f;
    keys_.clear();
    for (const Val& v : vals_)
      keys_.push_back(Round(v.kind == Val::kInt ? v.i : static_cast<int64_t>(v.d)));
    std::sort(keys_.begin(), keys_.end());
    keys_.erase(std::unique(keys_.begin(), keys_.end()), keys_.end());
    for (int64_t k : keys_) Add(buckets_[k], doc);
  }

  Result<bool> Write(Writer& w) override {
    int64_t min_count = node_.min_doc_count < 0 ? 0 : node_.min_doc_count;
    std::vector<int64_t> keys;
    if (!buckets_.empty()) {
      if (min_count == 0) {
        for (int64_t k = buckets_.begin()->first; k <= buckets_.rbegin()->first; k = Next(k)) {
          keys.push_back(k);
          if (keys.size() > kMaxBuckets) break;
        }
      } else {
        for (const auto& [k, b] : buckets_) {
          if (static_cast<int64_t>(b.count) >= min_count) keys.push_back(k);
        }
      }
    }
    if (keys.size() > kMaxBuckets) {
      return BadRequest("too_many_buckets_exception",
                        absl::StrCat("Trying to create too many buckets. Must be less than or "
                                     "equal to: [",
                                     kMaxBuckets,
                                     "]. This limit can be set by "
                                     "changing the [search.max_buckets] cluster level setting."));
    }
    const DateFormat* fmt = format_ ? &*format_
                            : (info_ != nullptr && info_->type == FieldType::kDate)
                                ? info_->format.get()
                                : &DateFormat::Default();
    w.StartObject();
    WriteKey(w, "buckets");
    w.StartArray();
    Bucket empty;
    for (int64_t k : keys) {
      auto it = buckets_.find(k);
      Bucket& b = it == buckets_.end() ? empty : it->second;
      w.StartObject();
      WriteKey(w, "key_as_string");
      WriteStr(w, fmt->Format(k, tz_));
      WriteKey(w, "key");
      w.Int64(k);
      WriteKey(w, "doc_count");
      w.Uint64(b.count);
      auto r = WriteSubs(w, b);
      if (!r.ok()) return r;
      if (it == buckets_.end()) empty.subs.clear();
      w.EndObject();
    }
    w.EndArray();
    w.EndObject();
    return true;
  }

 private:
  int64_t Round(int64_t ms) const {
    absl::Time t = absl::FromUnixMillis(ms);
    if (node_.fixed_interval_ms > 0) {
      int64_t off = static_cast<int64_t>(tz_.At(t).offset) * 1000;
      return FloorDiv(ms + off, node_.fixed_interval_ms) * node_.fixed_interval_ms - off;
    }
    absl::CivilSecond cs = tz_.At(t).cs;
    absl::CivilSecond floor;
    switch (node_.calendar_unit) {
      case 'm':
        floor = absl::CivilMinute(cs);
        break;
      case 'h':
        floor = absl::CivilHour(cs);
        break;
      case 'd':
        floor = absl::CivilDay(cs);
        break;
      case 'w': {
        absl::CivilDay d(cs);
        int wd = static_cast<int>(absl::GetWeekday(d));  // Monday = 0
        floor = d - wd;
        break;
      }
      case 'M':
        floor = absl::CivilMonth(cs);
        break;
      case 'q':
        floor = absl::CivilMonth(cs.year(), ((cs.month() - 1) / 3) * 3 + 1, 1);
        break;
      default:
        floor = absl::CivilYear(cs);
        break;
    }
    return absl::ToUnixMillis(tz_.At(floor).pre);
  }

  int64_t Next(int64_t key) const {
    if (node_.fixed_interval_ms > 0) return key + node_.fixed_interval_ms;
    absl::CivilSecond cs = tz_.At(absl::FromUnixMillis(key)).cs;
    absl::CivilSecond next;
    switch (node_.calendar_unit) {
      case 'm':
        next = absl::CivilMinute(cs) + 1;
        break;
      case 'h':
        next = absl::CivilHour(cs) + 1;
        break;
      case 'd':
        next = absl::CivilDay(cs) + 1;
        break;
      case 'w':
        next = absl::CivilDay(cs) + 7;
        break;
      case 'M':
        next = absl::CivilMonth(cs) + 1;
        break;
      case 'q':
        next = absl::CivilMonth(cs) + 3;
        break;
      default:
        next = absl::CivilYear(cs) + 1;
        break;
    }
    int64_t k = absl::ToUnixMillis(tz_.At(next).pre);
    return k > key ? k : key + 1;
  }

  absl::TimeZone tz_;
  std::optional<DateFormat> format_;
  const FieldInfo* info_ = nullptr;
  std::vector<Val> vals_;
  std::vector<int64_t> keys_;
  std::map<int64_t, Bucket> buckets_;
};

class HistogramCollector : public BucketCollectorBase {
 public:
  using BucketCollectorBase::BucketCollectorBase;

  void Collect(DocCtx& doc) override {
    vals_.clear();
    const FieldInfo* f = nullptr;
    AggVals(node_.field, doc, &vals_, &f);
    std::set<double> keys;
    for (const Val& v : vals_) {
      keys.insert(std::floor(v.AsDouble() / node_.histogram_interval) * node_.histogram_interval);
    }
    for (double k : keys) Add(buckets_[k], doc);
  }

  Result<bool> Write(Writer& w) override {
    int64_t min_count = node_.min_doc_count < 0 ? 0 : node_.min_doc_count;
    std::vector<double> keys;
    if (!buckets_.empty()) {
      if (min_count == 0) {
        double first = buckets_.begin()->first, last = buckets_.rbegin()->first;
        double n = std::round((last - first) / node_.histogram_interval);
        if (n > kMaxBuckets) {
          return BadRequest("too_many_buckets_exception",
                            absl::StrCat("Trying to create too many buckets. Must be less than or "
                                         "equal to: [",
                                         kMaxBuckets, "]."));
        }
        for (int64_t i = 0; i <= static_cast<int64_t>(n); ++i) {
          keys.push_back(first + static_cast<double>(i) * node_.histogram_interval);
        }
      } else {
        for (const auto& [k, b] : buckets_) {
          if (static_cast<int64_t>(b.count) >= min_count) keys.push_back(k);
        }
      }
    }
    w.StartObject();
    WriteKey(w, "buckets");
    w.StartArray();
    for (double k : keys) {
      auto it = buckets_.find(k);
      Bucket empty;
      Bucket& b = it == buckets_.end() ? empty : it->second;
      w.StartObject();
      WriteKey(w, "key");
      w.Double(k);
      WriteKey(w, "doc_count");
      w.Uint64(b.count);
      auto r = WriteSubs(w, b);
      if (!r.ok()) return r;
      w.EndObject();
    }
    w.EndArray();
    w.EndObject();
    return true;
  }

 private:
  std::vector<Val> vals_;
  std::map<double, Bucket> buckets_;
};

class FilterCollector : public BucketCollectorBase {
 public:
  FilterCollector(const AggNode& node, const std::vector<IndexInfo>* indices, bool typed_keys)
      : BucketCollectorBase(node, indices, typed_keys) {
    for (const auto& idx : *indices) {
      auto c = CompileQuery(node.filter, idx);
      compiled_.push_back(c.ok() ? std::optional<CompiledQuery>(std::move(c.value()))
                                 : std::nullopt);
    }
  }

  void Collect(DocCtx& doc) override {
    size_t ord = static_cast<size_t>(doc.ordinal());
    if (ord < compiled_.size() && compiled_[ord] && Matches(*compiled_[ord], doc)) {
      Add(bucket_, doc);
    }
  }

  Result<bool> Write(Writer& w) override {
    w.StartObject();
    WriteKey(w, "doc_count");
    w.Uint64(bucket_.count);
    auto r = WriteSubs(w, bucket_);
    if (!r.ok()) return r;
    w.EndObject();
    return true;
  }

 private:
  std::vector<std::optional<CompiledQuery>> compiled_;
  Bucket bucket_;
};

}  // namespace

std::vector<std::unique_ptr<Collector>> MakeCollectors(const AggList& aggs,
                                                       const std::vector<IndexInfo>* indices,
                                                       bool typed_keys) {
  std::vector<std::unique_ptr<Collector>> out;
  for (const auto& n : aggs) {
    if (n.type == "terms") {
      out.push_back(std::make_unique<TermsCollector>(n, indices, typed_keys));
    } else if (n.type == "date_histogram") {
      out.push_back(std::make_unique<DateHistogramCollector>(n, indices, typed_keys));
    } else if (n.type == "histogram") {
      out.push_back(std::make_unique<HistogramCollector>(n, indices, typed_keys));
    } else if (n.type == "filter") {
      out.push_back(std::make_unique<FilterCollector>(n, indices, typed_keys));
    } else {
      out.push_back(std::make_unique<MetricCollector>(n));
    }
  }
  return out;
}

Result<bool> WriteAggs(Writer& w, const AggList& aggs,
                       std::vector<std::unique_ptr<Collector>>& collectors, bool typed_keys) {
  for (size_t i = 0; i < aggs.size(); ++i) {
    std::string name = aggs[i].name;
    if (typed_keys) {
      std::string prefix = aggs[i].type;
      if (aggs[i].type == "terms") {
        prefix = static_cast<TermsCollector*>(collectors[i].get())->TypedPrefix();
      }
      name = absl::StrCat(prefix, "#", name);
    }
    WriteKey(w, name);
    auto r = collectors[i]->Write(w);
    if (!r.ok()) return r;
  }
  return true;
}

}  // namespace rtdw::eslite
