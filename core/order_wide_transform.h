// order-wide: DWD order_info and order_detail insert rows (docs/FORMATS.md §3 `data` objects, from
// DWD_ORDER_INFO_I / DWD_ORDER_DETAIL_I, co-partitioned by order id) joined into OrderWide
// documents (§5), one per order detail, through the batch transaction of docs/DESIGN.md. Pure: no
// I/O; join rows through BatchState, dimensions through DimensionSource.
//
// Promises of ProcessBatch (records are taken in input order; a record's side is told by its
// topic: order_topic or detail_topic):
//  1. Validation, one dead letter per failure (§7, src = "topic/partition/offset"): a record of
//     another topic (unknown_topic); the safe parse (too_big, too_deep, bad_utf8, not_json); not
//     an object (not_object); no usable `id` — a non-empty string without NUL or an integer —
//     or, for a detail, no usable `order_id` (no_id); `create_time` missing or not a real
//     "yyyy-MM-dd HH:mm:ss" (bad_type).
//  2. Event time (§6) = `create_time` read in the job's zone. A row more than max_future ahead of
//     now_ms: `future`. Each input topic partition has its own watermark: the largest event
//     time of its accepted rows, but never more than now_ms (a future row moves it to now_ms
//     only). The join's watermark of partition number p (§5) is the slower input's: the
//     minimum of the two topics' watermarks for p — none while one of them has delivered
//     nothing — leaving out an input that SetIdleInputs named idle (when both are, the
//     larger); it never goes back. All are read with GetWatermark / GetInputWatermark and
//     written back once per batch when they moved. A row older than the join's watermark -
//     join_ttl on arrival: `late`. Neither moves a watermark. Without a join watermark nothing
//     is late and nothing expires.
//  3. Join (partition = the record's partition number; row ids: the order id, the detail id):
//     - a detail whose order is buffered emits its document and marks the order matched; else
//       the detail is buffered (side kDetail) until its order comes or the TTL passes;
//     - an order is buffered (side kOrder) and kept after matches until the TTL (an order has
//       several details); every buffered detail of it emits its document and leaves the buffer.
//       A repeated order (at-least-once input) replaces the buffered row, keeping its matched
//       flag.
//     A buffered row whose event time is below the current cutoff (watermark - join_ttl, as of
//     the record being processed) counts as expired even while it still sits in the buffer, so
//     what matches never depends on when expiry ran.
//  4. Expiry: at the end of the batch, for every partition the batch touched (in partition
//     order), ExpireJoinRows(partition, watermark - join_ttl, expire_limit). An expired row that
//     never matched becomes a `join_expired` dead letter (src and raw: the buffered row's own) and
//     counts join_expired; an expired matched order is dropped.
//  5. Dimensions: ONE DimensionSource::Get per batch, for the distinct DIM:USER_INFO:<user_id> /
//     DIM:BASE_PROVINCE:<province_id> keys of the orders of the batch's documents (pass 1 joins,
//     pass 2 writes). An error from it is returned; the batch then committed nothing.
//  6. Output: `*out` is replaced by the bulk body: one `index` action per document (`_index` =
//     index_prefix + create_date of the order, `_id` = detail id, `version` =
//     OrderWideEsVersion(now_ms), external_gte: core/es_version.h), at most one per (_index, _id)
//     — the last one the batch made, placed where the batch first made one for that key;
//     `out->target` lists the distinct indices, sorted, comma-separated. The document has the §5
//     fields in §5 order, then `rtdw_src` (of the detail row): detail_id (the detail's `id`),
//     order_id, sku_id, order_price, sku_num, sku_name, split_total_amount, split_activity_amount,
//     split_coupon_amount from the detail; province_id, order_status, user_id, total_amount,
//     activity_reduce_amount, coupon_reduce_amount, original_total_amount, feight_fee,
//     feight_fee_reduce, expire_time, refundable_time, create_time, operate_time from the order;
//     create_date / create_hour = characters 0-9 / 11-12 of the order's create_time; province_name,
//     province_area_code, province_3166_2_code, province_iso_code from the province row
//     (name, area_code, iso_3166_2, iso_code); user_age (whole years from birthday to
//     create_date) and user_gender from the user row. Values keep their Maxwell JSON types, and
//     ids and amounts their exact source text (`10130.00`, 2^64-1); of duplicate keys in a row
//     the last one counts; absent, null and "" fields are left out; a missing dimension row leaves
//     its fields out and counts dims_missing (once per missing row per document written).
// Hence the same inputs in the same order give the same documents whatever the batch boundaries.
//
// Buffered rows (JoinRow::row_json) are `{"src":"<topic/partition/offset>","row":<the input
// row, byte for byte>}`, so a detail that waited still carries its own rtdw_src.
//
// Not thread-safe: one transform per job instance.
#ifndef RTDW_CORE_ORDER_WIDE_TRANSFORM_H_
#define RTDW_CORE_ORDER_WIDE_TRANSFORM_H_

#include <chrono>
#include <cstdint>
#include <deque>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/time/time.h"
#include "core/dims.h"
#include "core/es_transform.h"
#include "core/json_limits.h"

namespace rtdw {

// The settings of [jobs.order-wide] the transform uses.
struct OrderWideOptions {
  std::string job = "order-wide";  // the `job` field of dead letters
  std::string order_topic = "DWD_ORDER_INFO_I";
  std::string detail_topic = "DWD_ORDER_DETAIL_I";
  std::string index_prefix = "gmall_order_wide_";
  absl::TimeZone tz;  // the job's zone (JobCommon::tz); UTC when left default
  std::chrono::seconds join_ttl{86400};
  std::chrono::seconds max_future{86400};
  // Join rows expired per partition and batch at most (the rest in that partition's next
  // batches; rows past the cutoff never match meanwhile, see promise 3).
  size_t expire_limit = 100000;
  // Safe-parse limits of the input rows.
  int64_t max_record_bytes = 1 << 20;
  int max_depth = 64;
};

// The JSON kept in JoinRow::row_json for a buffered input row.
std::string EncodeBufferedRow(std::string_view src, std::string_view row);
// Splits a buffered row back into its src and its original row text; false when `row_json` is
// not of that shape (then `*row` is the whole text and `*src` empty).
bool DecodeBufferedRow(std::string_view row_json, std::string_view* src, std::string_view* row);

class OrderWideTransform : public EsTransform {
 public:
  explicit OrderWideTransform(OrderWideOptions options);
  OrderWideTransform(const OrderWideTransform&) = delete;
  OrderWideTransform& operator=(const OrderWideTransform&) = delete;

  absl::Status ProcessBatch(std::span<const InputRecord> records, int64_t now_ms,
                            DimensionSource* dims, BatchState* state, BulkOutput* out) override;
  // Accumulated over the batches that returned OK.
  const EsTransformCounters& counters() const override { return counters_; }
  // Topic partitions (of order_topic / detail_topic) that stop holding the join's watermark back.
  void SetIdleInputs(std::vector<std::pair<std::string, int32_t>> idle) override;

 private:
  enum { kOrderInput = 0, kDetailInput = 1 };
  // A document owed by this batch (pass 1), written in pass 2.
  struct Emit {
    std::string_view order_row;   // the order_info row (JSON text)
    std::string_view detail_row;  // the order_detail row
    std::string_view detail_src;  // its source position
    std::string detail_id;
    char create_date[10] = {};  // of the order, the index suffix
    absl::CivilDay create_day;  // the same, for user_age
    DimensionBatch::Handle user = DimensionBatch::kNone;
    DimensionBatch::Handle province = DimensionBatch::kNone;
  };
  struct Watermark {
    std::optional<int64_t> ms;  // the join's: the slower input's
    bool dirty = false;
    std::optional<int64_t> input[2];  // by kOrderInput / kDetailInput
    bool input_dirty[2] = {false, false};
  };
  struct OrderInfo;  // what pass 1 knows of an order row

  const std::string& InputTopic(int side) const {
    return side == kOrderInput ? options_.order_topic : options_.detail_topic;
  }
  // Moves wm->ms up to the slower non-idle input's watermark (promise 2).
  void AdvanceWatermark(int32_t partition, Watermark* wm) const;

  void DeadLetter(std::string_view reason, std::string_view detail, std::string_view src,
                  std::string_view raw, int64_t now_ms, BatchState* state, EsTransformCounters* c);
  std::string_view Keep(std::string s);  // moves `s` into arena_
  bool ReadOrder(const JsonValue& row, std::string_view text, OrderInfo* info);
  void AddEmit(const OrderInfo& order, std::string_view detail_row, std::string_view detail_src,
               std::string_view detail_id);
  // False (and nothing written) if a row no longer reads, which pass 1 rules out.
  bool WriteDocument(const Emit& e, BulkOutput* out, EsTransformCounters* c);

  OrderWideOptions options_;
  int64_t ttl_ms_;
  int64_t max_future_ms_;
  JsonParser parser_;      // the record being processed; in pass 2 the detail row
  JsonParser aux_parser_;  // buffered rows; in pass 2 the order row
  DimensionBatch dims_;
  std::vector<Emit> emits_;
  BodySizeHint body_size_;  // sizes the bulk body before the documents are written
  int64_t batch_version_ = 0;      // OrderWideEsVersion of the batch (core/es_version.h)
  std::deque<std::string> arena_;  // owned texts the emits point into (stable addresses)
  absl::flat_hash_map<int32_t, Watermark> watermarks_;
  absl::flat_hash_set<std::pair<int, int32_t>> idle_;  // (input, partition)
  std::string src_;
  std::string scratch_;
  std::string order_id_;
  std::string row_id_;
  std::string index_;
  // Pass 2: an order row's part of its documents (its fields, create_date, create_hour: JSON
  // members without braces), written once per batch however many of its details are emitted.
  absl::flat_hash_map<std::string_view, std::pair<uint32_t, uint32_t>> order_parts_;
  std::string order_text_;  // the parts (offset, length in order_parts_)
  std::string source_;      // one document's source line
  rapidjson::StringBuffer doc_;
  DocWriter writer_;
  EsTransformCounters counters_;
};

}  // namespace rtdw

#endif  // RTDW_CORE_ORDER_WIDE_TRANSFORM_H_
