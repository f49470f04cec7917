#include "core/dau_transform.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "core/dau_document.h"
#include "core/dead_letter.h"
#include "core/es_version.h"
#include "core/journal_entry.h"
#include "core/status_util.h"

namespace rtdw {
namespace {

using Value = JsonValue;

// ES refuses an `_id` longer than this many bytes.
constexpr size_t kMaxIdBytes = 512;

// What pass 1 reads of a page record.
enum { kMid, kTs, kLastPageId, kUserId, kProvinceId, kPass1Fields };
constexpr std::string_view kPass1Names[kPass1Fields] = {"mid", "ts", "last_page_id", "user_id",
                                                        "province_id"};

// The DauInfo fields copied from the DWD record, in docs/FORMATS.md §4 order, then `ts` (written
// after the fields of its own).
constexpr std::string_view kDocSourceFields[] = {
    "mid",       "user_id",        "province_id",  "channel",     "is_new",
    "model",     "operate_system", "version_code", "brand",       "page_id",
    "page_item", "page_item_type", "source_type",  "during_time", "ts"};
constexpr size_t kDocSourceCount = std::size(kDocSourceFields);
constexpr size_t kCopiedCount = kDocSourceCount - 1;  // all but ts
constexpr size_t kDocTs = kDocSourceCount - 1;

}  // namespace

DauTransform::DauTransform(DauOptions options)
    : options_(std::move(options)),
      max_future_ms_(options_.max_future.count() * 1000),
      parser_(JsonLimits{static_cast<uint64_t>(std::max<int64_t>(options_.max_record_bytes, 0)),
                         options_.max_depth}),
      days_(options_.tz),
      wm_days_(options_.tz),
      writer_(doc_) {
  if (options_.retention_days < 1) options_.retention_days = 1;
}

void DauTransform::DeadLetter(const InputRecord& in, std::string_view reason,
                              std::string_view detail, int64_t now_ms, BatchState* state,
                              EsTransformCounters* c) {
  ++c->dead_letters;
  ++c->dead_letters_by_reason[std::string(reason)];
  DeadLetterFields f;
  f.job = options_.job;
  f.reason = reason;
  f.detail = detail;
  f.src = src_;
  f.ts_ingest_ms = now_ms;
  f.raw = in.value;
  state->AddDeadLetter(DeadLetterJson(f));
}

absl::Status DauTransform::ProcessBatch(std::span<const InputRecord> records, int64_t now_ms,
                                        DimensionSource* dims, BatchState* state, BulkOutput* out) {
  EsTransformCounters c;
  winners_.clear();
  winner_index_.clear();
  fields_.clear();
  watermarks_.clear();
  dims_.Clear();

  // --- Pass 1: validate, filter, judge time, de-dup. ---
  for (size_t i = 0; i < records.size(); ++i) {
    const InputRecord& in = records[i];
    ++c.records;
    src_.clear();
    AppendSourcePosition(in.topic, in.partition, in.offset, &src_);

    JsonStatus st = parser_.Parse(in.value);
    if (st != JsonStatus::kOk) {
      DeadLetter(in, JsonStatusCode(st), parser_.detail(), now_ms, state, &c);
      continue;
    }
    const Value& root = parser_.root();
    if (!root.IsObject()) {
      DeadLetter(in, ReasonCode(Reason::kNotObject), "the record is not a JSON object", now_ms,
                 state, &c);
      continue;
    }
    const Value* f[kPass1Fields];
    FindMembers(root, kPass1Names, kPass1Fields, f);
    const Value* mid = f[kMid];
    if (mid == nullptr || !mid->IsString() || mid->GetStringLength() == 0) {
      DeadLetter(in, ReasonCode(Reason::kNoMid), "mid is missing or not a non-empty string", now_ms,
                 state, &c);
      continue;
    }
    std::string_view mid_text = JsonStringView(*mid);
    if (mid_text.find('\0') != std::string_view::npos || mid_text.size() > kMaxIdBytes) {
      DeadLetter(in, ReasonCode(Reason::kNoMid),
                 "mid holds a NUL byte or is longer than 512 bytes (not usable as a document id)",
                 now_ms, state, &c);
      continue;
    }
    const Value* ts_value = f[kTs];
    if (ts_value == nullptr || !ts_value->IsInt64()) {
      DeadLetter(in, ReasonCode(Reason::kBadType),
                 ts_value == nullptr ? "ts is missing" : "ts is not an integer", now_ms, state, &c);
      continue;
    }
    const int64_t ts = ts_value->GetInt64();
    const EventDay& day = days_.Get(ts);
    if (!day.valid()) {
      DeadLetter(in, ReasonCode(Reason::kBadType), "ts is outside the years 1..9999", now_ms, state,
                 &c);
      continue;
    }
    if (!OmittedValue(f[kLastPageId])) {
      ++c.filtered;
      continue;
    }
    if (ts > now_ms + max_future_ms_) {
      scratch_ = absl::StrCat("ts ", ts, " is more than ", options_.max_future.count(),
                              " s ahead of the wall clock ", now_ms);
      DeadLetter(in, ReasonCode(Reason::kFuture), scratch_, now_ms, state, &c);
      continue;
    }

    // Watermark and retention (docs/FORMATS.md §6).
    auto [wm_it, wm_new] = watermarks_.try_emplace(in.partition);
    Watermark& wm = wm_it->second;
    if (wm_new) {
      RTDW_ASSIGN_OR_RETURN(wm.ms, state->GetWatermark(in.partition));
    }
    if (wm.ms && ts < *wm.ms) {
      const EventDay& wm_day = wm_days_.Get(*wm.ms);
      if (day.civil < wm_day.civil - (options_.retention_days - 1)) {
        scratch_ = absl::StrCat(
            "day ", ToAbsl(day.day_view()), " is older than the de-dup retention (watermark day ",
            ToAbsl(wm_day.day_view()), ", retention_days ", options_.retention_days, ")");
        DeadLetter(in, ReasonCode(Reason::kLate), scratch_, now_ms, state, &c);
        continue;
      }
    }
    // Never ahead of the wall clock (§6): a future record moves the watermark to now_ms only.
    const int64_t wm_ts = std::min(ts, now_ms);
    if (!wm.ms || wm_ts > *wm.ms) {
      wm.ms = wm_ts;
      wm.dirty = true;
    }

    // De-dup: the smallest (ts, offset) of (day, partition, mid) wins.
    const DedupValue candidate{ts, in.offset};
    RTDW_ASSIGN_OR_RETURN(bool won,
                          PutDedupIfBeats(*state, day.number, in.partition, mid_text, candidate));
    if (!won) {
      ++c.duplicates;
      continue;
    }
    Winner w;
    w.record = static_cast<uint32_t>(i);
    w.day = day.number;
    w.ts = ts;
    KeepRecordFields(root, mid_text, &w);
    if (f[kUserId] != nullptr && IdText(*f[kUserId], &scratch_)) w.user = dims_.AddUser(scratch_);
    if (f[kProvinceId] != nullptr && IdText(*f[kProvinceId], &scratch_)) {
      w.province = dims_.AddProvince(scratch_);
    }
    auto [it, inserted] = winner_index_.try_emplace(
        std::make_pair(day.number, std::string(mid_text)), static_cast<uint32_t>(winners_.size()));
    if (inserted) {
      winners_.push_back(w);
    } else {
      winners_[it->second] = w;
    }
  }

  // --- Dimensions: one lookup for the whole batch. ---
  if (!dims_.keys().empty()) {
    RTDW_ASSIGN_OR_RETURN(auto rows, dims->Get(dims_.keys()));
    RTDW_RETURN_IF_ERROR(dims_.SetRows(rows));
  }

  // --- Pass 2: watermarks and documents. ---
  for (auto& [partition, wm] : watermarks_) {
    if (wm.dirty) RTDW_RETURN_IF_ERROR(state->SetWatermark(partition, *wm.ms));
  }
  out->Clear();
  out_days_.clear();
  // The body is sized from the previous batch's bytes per document (+1/8): grown by doubling it
  // would hold up to twice its size, and the journal keeps it until it is delivered.
  if (bytes_per_doc_ > 0)
    out->body.reserve(winners_.size() * (bytes_per_doc_ + bytes_per_doc_ / 8));
  for (const Winner& w : winners_) WriteDocument(records[w.record], w, out, &c);
  if (out->docs > 0) bytes_per_doc_ = out->body.size() / out->docs;
  std::sort(out_days_.begin(), out_days_.end());
  out_days_.erase(std::unique(out_days_.begin(), out_days_.end()), out_days_.end());
  for (uint32_t d : out_days_) {
    if (!out->target.empty()) out->target.push_back(',');
    absl::StrAppend(&out->target, options_.index_prefix, FormatDay(d));
  }
  counters_.Add(c);
  return absl::OkStatus();
}

void DauTransform::KeepRecordFields(const JsonValue& root, std::string_view mid, Winner* w) {
  const Value* f[kDocSourceCount];
  FindMembers(root, kDocSourceFields, kDocSourceCount, f);
  // The copied fields as the members of an object, without its braces: `{` + these + `,` + the
  // rest is the document (pass 2). `mid` is one of them (a non-empty string), so never empty.
  doc_.Clear();
  writer_.Reset(doc_);
  writer_.StartObject();
  for (size_t i = 0; i < kCopiedCount; ++i) WriteField(writer_, kDocSourceFields[i], f[i]);
  auto keep = [this](std::string_view text, uint32_t* at, uint32_t* len) {
    *at = static_cast<uint32_t>(fields_.size());
    *len = static_cast<uint32_t>(text.size());
    fields_.append(text);
  };
  keep(std::string_view(doc_.GetString() + 1, doc_.GetSize() - 1), &w->fields_at, &w->fields_len);
  keep(mid, &w->mid_at, &w->mid_len);
  keep(f[kDocTs]->text(), &w->ts_at, &w->ts_len);  // pass 1 checked it: an integer
}

void DauTransform::WriteDocument(const InputRecord& in, const Winner& w, BulkOutput* out,
                                 EsTransformCounters* c) {
  const std::string_view kept(fields_);
  const int64_t ts = w.ts;
  const EventDay& day = days_.Get(ts);

  // The fields after the record's own, as an object; its `{` is replaced by them below.
  doc_.Clear();
  writer_.Reset(doc_);
  writer_.StartObject();
  if (w.user != DimensionBatch::kNone) {
    if (const UserDim* u = dims_.user(w.user)) {
      WriteRawField(writer_, "user_gender", u->gender_json);
      if (auto age = u->AgeOn(day.civil)) {
        writer_.Key("user_age");
        writer_.Int(*age);
      }
    } else {
      ++c->dims_missing;
    }
  }
  if (w.province != DimensionBatch::kNone) {
    if (const ProvinceDim* p = dims_.province(w.province)) {
      WriteRawField(writer_, "province_name", p->name_json);
      WriteRawField(writer_, "province_iso_code", p->iso_code_json);
      WriteRawField(writer_, "province_3166_2", p->iso_3166_2_json);
      WriteRawField(writer_, "province_area_code", p->area_code_json);
    } else {
      ++c->dims_missing;
    }
  }
  WriteStringField(writer_, "dt", day.day_view());
  WriteStringField(writer_, "hr", day.hour_view());
  writer_.Key("ts");
  writer_.RawValue(kept.data() + w.ts_at, w.ts_len,
                   rapidjson::kNumberType);  // the integer as written in the source
  src_.clear();
  AppendSourcePosition(in.topic, in.partition, in.offset, &src_);
  WriteStringField(writer_, "rtdw_src", src_);
  writer_.EndObject();

  source_.clear();
  source_.push_back('{');
  source_.append(kept.substr(w.fields_at, w.fields_len));
  source_.push_back(',');
  source_.append(doc_.GetString() + 1, doc_.GetSize() - 1);
  index_.assign(options_.index_prefix);
  index_.append(day.day_view());
  AppendJournalIndexAction(&out->body, index_, kept.substr(w.mid_at, w.mid_len), source_,
                           DauEsVersion(ts, day.start_ms, in.offset));
  ++out->docs;
  ++c->documents;
  out_days_.push_back(w.day);
}

}  // namespace rtdw
