#include "core/order_wide_transform.h"

#include <algorithm>
#include <limits>
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/dead_letter.h"
#include "core/es_version.h"
#include "core/journal_entry.h"
#include "core/status_util.h"

namespace rtdw {
namespace {

using Value = JsonValue;

// What pass 1 reads of a row.
enum { kId, kOrderId, kCreateTime, kUserId, kProvinceId, kPass1Fields };
constexpr std::string_view kPass1Names[kPass1Fields] = {"id", "order_id", "create_time", "user_id",
                                                        "province_id"};

// Document fields from the detail row: source name -> document name (docs/FORMATS.md §5 order).
constexpr std::string_view kDetailSource[] = {"id",
                                              "order_id",
                                              "sku_id",
                                              "order_price",
                                              "sku_num",
                                              "sku_name",
                                              "split_total_amount",
                                              "split_activity_amount",
                                              "split_coupon_amount"};
constexpr std::string_view kDetailDoc[] = {"detail_id",
                                           "order_id",
                                           "sku_id",
                                           "order_price",
                                           "sku_num",
                                           "sku_name",
                                           "split_total_amount",
                                           "split_activity_amount",
                                           "split_coupon_amount"};
constexpr size_t kDetailCount = std::size(kDetailSource);
static_assert(std::size(kDetailDoc) == kDetailCount);

// Document fields from the order row (same names in both).
constexpr std::string_view kOrderFields[] = {"province_id",
                                             "order_status",
                                             "user_id",
                                             "total_amount",
                                             "activity_reduce_amount",
                                             "coupon_reduce_amount",
                                             "original_total_amount",
                                             "feight_fee",
                                             "feight_fee_reduce",
                                             "expire_time",
                                             "refundable_time",
                                             "create_time",
                                             "operate_time"};
constexpr size_t kOrderCount = std::size(kOrderFields);
constexpr size_t kOrderCreateTime = 11;
static_assert(kOrderFields[kOrderCreateTime] == "create_time");

constexpr std::string_view kBufferedPrefix = "{\"src\":";
constexpr std::string_view kBufferedMiddle = ",\"row\":";

}  // namespace

std::string EncodeBufferedRow(std::string_view src, std::string_view row) {
  rapidjson::StringBuffer sb;
  DocWriter w(sb);
  w.String(src.data(), static_cast<rapidjson::SizeType>(src.size()));
  std::string out;
  out.reserve(kBufferedPrefix.size() + sb.GetSize() + kBufferedMiddle.size() + row.size() + 1);
  out.append(kBufferedPrefix);
  out.append(sb.GetString(), sb.GetSize());
  out.append(kBufferedMiddle);
  out.append(row);
  out.push_back('}');
  return out;
}

bool DecodeBufferedRow(std::string_view row_json, std::string_view* src, std::string_view* row) {
  *src = {};
  *row = row_json;
  // `{"src":"<src without escapes>","row":<row>}`; source positions never need escapes.
  if (row_json.substr(0, kBufferedPrefix.size()) != kBufferedPrefix || row_json.empty() ||
      row_json.back() != '}') {
    return false;
  }
  size_t open = kBufferedPrefix.size();
  if (open >= row_json.size() || row_json[open] != '"') return false;
  size_t close = row_json.find_first_of("\"\\", open + 1);
  if (close == std::string_view::npos || row_json[close] != '"') return false;
  size_t body = close + 1;
  if (row_json.substr(body, kBufferedMiddle.size()) != kBufferedMiddle) return false;
  body += kBufferedMiddle.size();
  if (body > row_json.size() - 1) return false;
  *src = row_json.substr(open + 1, close - open - 1);
  *row = row_json.substr(body, row_json.size() - 1 - body);
  return true;
}

// What pass 1 knows of an order row.
struct OrderWideTransform::OrderInfo {
  std::string_view text;  // the row (stable for the batch)
  std::string_view create_time;
  absl::CivilDay create_day;
  std::string user_id;  // "" = none to look up
  std::string province_id;
};

OrderWideTransform::OrderWideTransform(OrderWideOptions options)
    : options_(std::move(options)),
      ttl_ms_(options_.join_ttl.count() * 1000),
      max_future_ms_(options_.max_future.count() * 1000),
      parser_(JsonLimits{static_cast<uint64_t>(std::max<int64_t>(options_.max_record_bytes, 0)),
                         options_.max_depth}),
      aux_parser_(JsonLimits{0, options_.max_depth}),
      writer_(doc_) {
  if (options_.expire_limit == 0) options_.expire_limit = 1;
}

void OrderWideTransform::SetIdleInputs(std::vector<std::pair<std::string, int32_t>> idle) {
  idle_.clear();
  for (const auto& [topic, partition] : idle) {
    if (topic == options_.order_topic) idle_.insert({kOrderInput, partition});
    if (topic == options_.detail_topic) idle_.insert({kDetailInput, partition});
  }
}

void OrderWideTransform::AdvanceWatermark(int32_t partition, Watermark* wm) const {
  // The slowest input that is not idle; an input that has delivered nothing holds it back. When
  // every input is idle, the furthest of them (nothing is arriving to be judged).
  std::optional<int64_t> slowest, furthest_idle;
  bool all_idle = true;
  for (int side : {kOrderInput, kDetailInput}) {
    const std::optional<int64_t>& in = wm->input[side];
    if (idle_.contains({side, partition})) {
      if (in && (!furthest_idle || *in > *furthest_idle)) furthest_idle = in;
      continue;
    }
    all_idle = false;
    if (!in) return;  // held back
    if (!slowest || *in < *slowest) slowest = in;
  }
  std::optional<int64_t> candidate = all_idle ? furthest_idle : slowest;
  // Never back: an input that comes back from idleness behind it cannot undo what was judged.
  if (candidate && (!wm->ms || *candidate > *wm->ms)) {
    wm->ms = candidate;
    wm->dirty = true;
  }
}

std::string_view OrderWideTransform::Keep(std::string s) {
  arena_.push_back(std::move(s));
  return arena_.back();
}

void OrderWideTransform::DeadLetter(std::string_view reason, std::string_view detail,
                                    std::string_view src, std::string_view raw, int64_t now_ms,
                                    BatchState* state, EsTransformCounters* c) {
  ++c->dead_letters;
  ++c->dead_letters_by_reason[std::string(reason)];
  DeadLetterFields f;
  f.job = options_.job;
  f.reason = reason;
  f.detail = detail;
  f.src = src;
  f.ts_ingest_ms = now_ms;
  f.raw = raw;
  state->AddDeadLetter(DeadLetterJson(f));
}

bool OrderWideTransform::ReadOrder(const Value& row, std::string_view text, OrderInfo* info) {
  if (!row.IsObject()) return false;
  const Value* f[kPass1Fields];
  FindMembers(row, kPass1Names, kPass1Fields, f);
  if (f[kCreateTime] == nullptr || !f[kCreateTime]->IsString()) return false;
  info->text = text;
  info->create_time = JsonStringView(*f[kCreateTime]);
  auto t = ParseLocalTime(info->create_time, options_.tz);
  if (!t.ok()) return false;
  info->create_day = t->day;
  if (f[kUserId] == nullptr || !IdText(*f[kUserId], &info->user_id)) info->user_id.clear();
  if (f[kProvinceId] == nullptr || !IdText(*f[kProvinceId], &info->province_id)) {
    info->province_id.clear();
  }
  return true;
}

void OrderWideTransform::AddEmit(const OrderInfo& order, std::string_view detail_row,
                                 std::string_view detail_src, std::string_view detail_id) {
  Emit& e = emits_.emplace_back();
  e.order_row = order.text;
  e.detail_row = detail_row;
  e.detail_src = detail_src;
  e.detail_id.assign(detail_id.data(), detail_id.size());
  std::copy_n(order.create_time.data(), 10, e.create_date);
  e.create_day = order.create_day;
  if (!order.user_id.empty()) e.user = dims_.AddUser(order.user_id);
  if (!order.province_id.empty()) e.province = dims_.AddProvince(order.province_id);
}

absl::Status OrderWideTransform::ProcessBatch(std::span<const InputRecord> records, int64_t now_ms,
                                              DimensionSource* dims, BatchState* state,
                                              BulkOutput* out) {
  batch_version_ = OrderWideEsVersion(now_ms);
  EsTransformCounters c;
  emits_.clear();
  arena_.clear();
  watermarks_.clear();
  dims_.Clear();

  // Dead-letters a buffered row found past its TTL (by a lookup or by expiry), unless it matched.
  auto expired = [&](const JoinRow& r) {
    if (r.matched) return;
    ++c.join_expired;
    std::string_view src, raw;
    DecodeBufferedRow(r.row_json, &src, &raw);
    scratch_ = r.side == JoinSide::kOrder
                   ? absl::StrCat("order ", r.order_id, " met no detail within the join TTL (",
                                  options_.join_ttl.count(), " s of event time)")
                   : absl::StrCat("detail ", r.row_id, " of order ", r.order_id,
                                  " met no order within the join TTL (", options_.join_ttl.count(),
                                  " s of event time)");
    DeadLetter(ReasonCode(Reason::kJoinExpired), scratch_, src, raw, now_ms, state, &c);
  };

  // --- Pass 1: validate, judge time, join. ---
  for (const InputRecord& in : records) {
    ++c.records;
    src_.clear();
    AppendSourcePosition(in.topic, in.partition, in.offset, &src_);
    auto dead = [&](std::string_view reason, std::string_view detail) {
      DeadLetter(reason, detail, src_, in.value, now_ms, state, &c);
    };

    const bool is_order = in.topic == options_.order_topic;
    if (!is_order && in.topic != options_.detail_topic) {
      dead(ReasonCode(Reason::kUnknownTopic),
           absl::StrCat("topic ", ToAbsl(in.topic), " is neither the order topic ",
                        options_.order_topic, " nor the detail topic ", options_.detail_topic));
      continue;
    }
    JsonStatus st = parser_.Parse(in.value);
    if (st != JsonStatus::kOk) {
      dead(JsonStatusCode(st), parser_.detail());
      continue;
    }
    const Value& root = parser_.root();
    if (!root.IsObject()) {
      dead(ReasonCode(Reason::kNotObject), "the row is not a JSON object");
      continue;
    }
    const Value* f[kPass1Fields];
    FindMembers(root, kPass1Names, kPass1Fields, f);
    if (f[kId] == nullptr || !IdText(*f[kId], &row_id_)) {
      dead(ReasonCode(Reason::kNoId), "id is missing or not a non-empty string or an integer");
      continue;
    }
    if (is_order) {
      order_id_ = row_id_;
    } else if (f[kOrderId] == nullptr || !IdText(*f[kOrderId], &order_id_)) {
      dead(ReasonCode(Reason::kNoId),
           "order_id is missing or not a non-empty string or an integer");
      continue;
    }
    if (f[kCreateTime] == nullptr || !f[kCreateTime]->IsString()) {
      dead(ReasonCode(Reason::kBadType),
           f[kCreateTime] == nullptr ? "create_time is missing" : "create_time is not a string");
      continue;
    }
    auto t = ParseLocalTime(JsonStringView(*f[kCreateTime]), options_.tz);
    if (!t.ok()) {
      dead(ReasonCode(Reason::kBadType), absl::StrCat("create_time: ", t.status().message()));
      continue;
    }
    const int64_t event_ms = t->epoch_ms;
    if (event_ms > now_ms + max_future_ms_) {
      dead(ReasonCode(Reason::kFuture),
           absl::StrCat("create_time ", ToAbsl(JsonStringView(*f[kCreateTime])), " is more than ",
                        options_.max_future.count(), " s ahead of the wall clock ", now_ms));
      continue;
    }
    auto [wm_it, wm_new] = watermarks_.try_emplace(in.partition);
    Watermark& wm = wm_it->second;
    if (wm_new) {
      RTDW_ASSIGN_OR_RETURN(wm.ms, state->GetWatermark(in.partition));
      for (int side : {kOrderInput, kDetailInput}) {
        RTDW_ASSIGN_OR_RETURN(wm.input[side],
                              state->GetInputWatermark(InputTopic(side), in.partition));
      }
    }
    if (wm.ms && event_ms < *wm.ms - ttl_ms_) {
      dead(ReasonCode(Reason::kLate),
           absl::StrCat("create_time ", ToAbsl(JsonStringView(*f[kCreateTime])),
                        " is older than the partition's watermark minus the join TTL (",
                        options_.join_ttl.count(), " s)"));
      continue;
    }
    // This input's watermark, never ahead of the wall clock (§6); then the join's.
    const int side = is_order ? kOrderInput : kDetailInput;
    const int64_t capped_ms = std::min(event_ms, now_ms);
    if (!wm.input[side] || capped_ms > *wm.input[side]) {
      wm.input[side] = capped_ms;
      wm.input_dirty[side] = true;
    }
    AdvanceWatermark(in.partition, &wm);
    // Before the join has a watermark (an input still silent) nothing is expired.
    const int64_t cutoff_ms = wm.ms ? *wm.ms - ttl_ms_ : std::numeric_limits<int64_t>::min();

    if (is_order) {
      // The order's buffered rows: its details waiting, and itself if it came before.
      RTDW_ASSIGN_OR_RETURN(std::vector<JoinRow> rows, state->JoinLookup(in.partition, order_id_));
      OrderInfo info;
      if (!ReadOrder(root, in.value, &info)) {
        return absl::InternalError("order row no longer reads after validation");
      }
      bool matched = false;
      for (JoinRow& r : rows) {
        if (r.event_ms < cutoff_ms) {  // past its TTL: expired, whether or not expiry ran yet
          expired(r);
          RTDW_RETURN_IF_ERROR(state->DeleteJoinRow(r.partition, r.order_id, r.side, r.row_id));
          continue;
        }
        if (r.side == JoinSide::kOrder) {
          matched = matched || r.matched;  // a repeated order keeps its flag
          continue;
        }
        std::string_view detail_src, detail_row;
        std::string_view kept = Keep(std::move(r.row_json));
        DecodeBufferedRow(kept, &detail_src, &detail_row);
        AddEmit(info, detail_row, detail_src, r.row_id);
        RTDW_RETURN_IF_ERROR(
            state->DeleteJoinRow(in.partition, order_id_, JoinSide::kDetail, r.row_id));
        matched = true;
      }
      JoinRow row;
      row.partition = in.partition;
      row.order_id = order_id_;
      row.side = JoinSide::kOrder;
      row.row_id = order_id_;
      row.event_ms = event_ms;
      row.matched = matched;
      row.source_offset = in.offset;
      row.row_json = EncodeBufferedRow(src_, in.value);
      RTDW_RETURN_IF_ERROR(state->PutJoinRow(row));
      if (!matched) ++c.join_waiting;
    } else {
      RTDW_ASSIGN_OR_RETURN(std::vector<JoinRow> orders,
                            state->JoinLookup(in.partition, order_id_, JoinSide::kOrder));
      JoinRow* order = nullptr;
      for (JoinRow& r : orders) {
        if (r.event_ms < cutoff_ms) {
          expired(r);
          RTDW_RETURN_IF_ERROR(state->DeleteJoinRow(r.partition, r.order_id, r.side, r.row_id));
        } else {
          order = &r;
        }
      }
      if (order != nullptr) {
        if (!order->matched) {
          order->matched = true;
          RTDW_RETURN_IF_ERROR(state->PutJoinRow(*order));
        }
        std::string_view order_src, order_row;
        std::string_view kept = Keep(std::move(order->row_json));
        DecodeBufferedRow(kept, &order_src, &order_row);
        if (aux_parser_.Parse(order_row) != JsonStatus::kOk) {
          return absl::DataLossError(absl::StrCat("buffered order ", order_id_, " of partition ",
                                                  in.partition, " is not valid JSON"));
        }
        OrderInfo info;
        if (!ReadOrder(aux_parser_.root(), order_row, &info)) {
          return absl::DataLossError(absl::StrCat("buffered order ", order_id_, " of partition ",
                                                  in.partition, " lacks a valid create_time"));
        }
        AddEmit(info, in.value, Keep(src_), row_id_);
      } else {
        JoinRow row;
        row.partition = in.partition;
        row.order_id = order_id_;
        row.side = JoinSide::kDetail;
        row.row_id = row_id_;
        row.event_ms = event_ms;
        row.source_offset = in.offset;
        row.row_json = EncodeBufferedRow(src_, in.value);
        RTDW_RETURN_IF_ERROR(state->PutJoinRow(row));
        ++c.join_waiting;
      }
    }
  }

  // --- Expiry and watermarks, per touched partition, in partition order. ---
  std::vector<int32_t> partitions;
  partitions.reserve(watermarks_.size());
  for (const auto& [p, wm] : watermarks_) partitions.push_back(p);
  std::sort(partitions.begin(), partitions.end());
  for (int32_t p : partitions) {
    const Watermark& wm = watermarks_[p];
    for (int side : {kOrderInput, kDetailInput}) {
      if (wm.input_dirty[side]) {
        RTDW_RETURN_IF_ERROR(state->SetInputWatermark(InputTopic(side), p, *wm.input[side]));
      }
    }
    if (!wm.ms) continue;
    if (wm.dirty) RTDW_RETURN_IF_ERROR(state->SetWatermark(p, *wm.ms));
    RTDW_ASSIGN_OR_RETURN(std::vector<JoinRow> rows,
                          state->ExpireJoinRows(p, *wm.ms - ttl_ms_, options_.expire_limit));
    for (const JoinRow& r : rows) expired(r);
  }

  // --- Dimensions: one lookup for the whole batch. ---
  if (!dims_.keys().empty()) {
    RTDW_ASSIGN_OR_RETURN(auto rows, dims->Get(dims_.keys()));
    RTDW_RETURN_IF_ERROR(dims_.SetRows(rows));
  }

  // --- Pass 2: the documents, one per (index, _id): the last one made, at the first's place. ---
  absl::flat_hash_map<std::string, uint32_t> slot_of;
  std::vector<uint32_t> slots;
  for (uint32_t i = 0; i < emits_.size(); ++i) {
    const Emit& e = emits_[i];
    scratch_.assign(e.create_date, 10);
    scratch_.push_back('\0');
    scratch_.append(e.detail_id);
    auto [it, inserted] = slot_of.try_emplace(scratch_, static_cast<uint32_t>(slots.size()));
    if (inserted) {
      slots.push_back(i);
    } else {
      slots[it->second] = i;
    }
  }
  out->Clear();
  order_parts_.clear();
  order_text_.clear();
  std::vector<std::string_view> dates;
  body_size_.Reserve(slots.size(), out);
  for (uint32_t i : slots) {
    const Emit& e = emits_[i];
    if (!WriteDocument(e, out, &c)) continue;
    dates.emplace_back(e.create_date, 10);
  }
  body_size_.Learn(*out);
  std::sort(dates.begin(), dates.end());
  dates.erase(std::unique(dates.begin(), dates.end()), dates.end());
  for (std::string_view d : dates) {
    if (!out->target.empty()) out->target.push_back(',');
    absl::StrAppend(&out->target, options_.index_prefix, ToAbsl(d));
  }
  counters_.Add(c);
  return absl::OkStatus();
}

bool OrderWideTransform::WriteDocument(const Emit& e, BulkOutput* out, EsTransformCounters* c) {
  // Both rows were parsed in pass 1; parsing them again cannot fail. The order row is parsed
  // once per batch: its part of the document is kept for its other details.
  auto [part, fresh] = order_parts_.try_emplace(e.order_row);
  if (fresh) {
    const Value* o[kOrderCount];
    const Value* create_time = nullptr;
    if (aux_parser_.Parse(e.order_row) == JsonStatus::kOk && aux_parser_.root().IsObject()) {
      FindMembers(aux_parser_.root(), kOrderFields, kOrderCount, o);
      create_time = o[kOrderCreateTime];
    }
    if (create_time == nullptr || !create_time->IsString() ||
        create_time->GetStringLength() != 19) {
      order_parts_.erase(part);
      return false;
    }
    std::string_view ct = JsonStringView(*create_time);
    doc_.Clear();
    writer_.Reset(doc_);
    writer_.StartObject();
    for (size_t i = 0; i < kOrderCount; ++i) WriteField(writer_, kOrderFields[i], o[i]);
    WriteStringField(writer_, "create_date", ct.substr(0, 10));
    WriteStringField(writer_, "create_hour", ct.substr(11, 2));
    part->second = {static_cast<uint32_t>(order_text_.size()),
                    static_cast<uint32_t>(doc_.GetSize() - 1)};
    order_text_.append(doc_.GetString() + 1, doc_.GetSize() - 1);  // without the `{`
  }
  if (parser_.Parse(e.detail_row) != JsonStatus::kOk || !parser_.root().IsObject()) return false;
  const Value* d[kDetailCount];
  FindMembers(parser_.root(), kDetailSource, kDetailCount, d);

  // The document: `{`, the detail's fields, the order's part, then the rest (written below);
  // parts joined by a comma where both sides have members.
  doc_.Clear();
  writer_.Reset(doc_);
  writer_.StartObject();
  for (size_t i = 0; i < kDetailCount; ++i) WriteField(writer_, kDetailDoc[i], d[i]);
  source_.assign(doc_.GetString(), doc_.GetSize());
  auto append_members = [this](std::string_view members) {
    if (source_.size() > 1 && !members.empty() && members.front() != '}') source_.push_back(',');
    source_.append(members);
  };
  append_members(std::string_view(order_text_).substr(part->second.first, part->second.second));

  doc_.Clear();
  writer_.Reset(doc_);
  writer_.StartObject();
  if (e.province != DimensionBatch::kNone) {
    if (const ProvinceDim* p = dims_.province(e.province)) {
      WriteRawField(writer_, "province_name", p->name_json);
      WriteRawField(writer_, "province_area_code", p->area_code_json);
      WriteRawField(writer_, "province_3166_2_code", p->iso_3166_2_json);
      WriteRawField(writer_, "province_iso_code", p->iso_code_json);
    } else {
      ++c->dims_missing;
    }
  }
  if (e.user != DimensionBatch::kNone) {
    if (const UserDim* u = dims_.user(e.user)) {
      if (auto age = u->AgeOn(e.create_day)) {
        writer_.Key("user_age");
        writer_.Int(*age);
      }
      WriteRawField(writer_, "user_gender", u->gender_json);
    } else {
      ++c->dims_missing;
    }
  }
  WriteStringField(writer_, "rtdw_src", e.detail_src);
  writer_.EndObject();
  append_members(std::string_view(doc_.GetString() + 1, doc_.GetSize() - 1));  // ends with `}`

  index_.assign(options_.index_prefix);
  index_.append(e.create_date, 10);
  AppendJournalIndexAction(&out->body, index_, e.detail_id, source_, batch_version_);
  ++out->docs;
  ++c->documents;
  return true;
}

}  // namespace rtdw
