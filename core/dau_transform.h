// dau: DWD page records (docs/FORMATS.md §2 PageLog) into DauInfo documents (§4), one per mid and
// day, through the batch transaction of docs/DESIGN.md. Pure: no I/O; state through BatchState,
// dimensions through DimensionSource.
//
// Promises of ProcessBatch (records are taken in input order):
//  1. Validation: a record that fails the safe parse (too_big, too_deep, bad_utf8, not_json), is
//     not an object (not_object), lacks a usable string `mid` (no_mid: absent, not a string, "",
//     holding a NUL byte, or over 512 bytes — the ES `_id` limit), or whose `ts` is missing, not an
//     integer, or outside the years 1..9999 (bad_type) becomes one dead letter (§7, src = the
//     record's "topic/partition/offset") and nothing else.
//  2. A valid record whose `last_page_id` is present and neither null nor "" is not a first page:
//     counted `filtered`, nothing else (it neither moves the watermark nor is judged late/future).
//  3. Event time (§6): the day and hour of `ts` in the job's zone. A first page more than
//     max_future ahead of now_ms is dead-lettered `future`. The partition's watermark is the
//     largest `ts` of its accepted first pages, but never more than now_ms (a future record gets
//     its document and moves the watermark to now_ms only); a record whose day is before the
//     watermark's day minus (retention_days - 1) is dead-lettered `late`. Watermarks are read
//     with GetWatermark and written back (SetWatermark) once per batch, only when they moved.
//  4. De-dup (§4): the winner of (day, source partition, mid) has the smallest (ts, offset)
//     (DedupBeats). A record that beats the stored incumbent (or has none) is PutDedup'ed and
//     becomes the batch's document for (day, mid), replacing one of this batch; any other record
//     counts `duplicates`.
//  5. Dimensions: ONE DimensionSource::Get per batch (none when no document has ids to look up)
//     for the distinct DIM:USER_INFO:<user_id> / DIM:BASE_PROVINCE:<province_id> keys of the
//     batch's winners. An error from it is returned; the batch then committed nothing (its
//     BatchState writes are the driver's pending batch; counters are only added on success).
//  6. Output: `*out` is replaced by the bulk body: one `index` action per document (`_index` =
//     index_prefix + dt, `_id` = mid, `version` = DauEsVersion(ts, start of dt, offset) with
//     version_type external_gte: core/es_version.h), at most one per (_index, _id), in the
//     order in which the batch first made a document for that key; `out->target` is the
//     sorted, comma-separated list of the distinct indices. The document has the §4 fields in
//     §4 order, then `rtdw_src`: the DWD fields keep their JSON types, numbers their exact source
//     text (`during_time`, `ts`); absent, null and "" fields are left out; user_gender/user_age
//     from the user row (age in whole years on `dt`), province_name, province_iso_code,
//     province_3166_2, province_area_code from the province row; a missing row leaves its fields
//     out and counts `dims_missing` (once per missing row per document written). dt "yyyy-MM-dd",
//     hr "HH", ts the epoch-ms integer as the record wrote it.
// Hence the documents that reach ES, applied batch after batch, depend neither on batch
// boundaries nor on the order in which records arrive (apart from which records are late) —
// given that all records of a mid are on one partition, as log-split's key (the mid) makes them.
// (De-dup is per partition, docs/DESIGN.md "Scaling out"; were a mid on two partitions, each
// partition's winner would be written in turn, the last one written staying.)
//
// Not thread-safe: one transform per job instance.
#ifndef RTDW_CORE_DAU_TRANSFORM_H_
#define RTDW_CORE_DAU_TRANSFORM_H_

#include <chrono>
#include <cstdint>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/time/time.h"
#include "core/dims.h"
#include "core/es_transform.h"
#include "core/json_limits.h"

namespace rtdw {

// The settings of [jobs.dau] and [dedup] the transform uses.
struct DauOptions {
  std::string job = "dau";  // the `job` field of dead letters
  std::string index_prefix = "gmall_dau_info_";
  absl::TimeZone tz;  // the job's zone (JobCommon::tz); UTC when left default
  std::chrono::seconds max_future{86400};
  int retention_days = 2;  // values below 1 count as 1
  // Safe-parse limits of the input records.
  int64_t max_record_bytes = 1 << 20;
  int max_depth = 64;
};

class DauTransform : public EsTransform {
 public:
  explicit DauTransform(DauOptions options);
  DauTransform(const DauTransform&) = delete;
  DauTransform& operator=(const DauTransform&) = delete;

  absl::Status ProcessBatch(std::span<const InputRecord> records, int64_t now_ms,
                            DimensionSource* dims, BatchState* state, BulkOutput* out) override;
  // Accumulated over the batches that returned OK.
  const EsTransformCounters& counters() const override { return counters_; }

 private:
  // A document owed by this batch: the winning record, its dimension handles, and what pass 2
  // needs of the record — written in pass 1 while it is parsed, so that pass 2 does not parse it
  // again: in `fields_`, the document's fields copied from the record (JSON text, no braces),
  // its `mid` (unescaped, the `_id`) and `ts` (its source text).
  struct Winner {
    uint32_t record = 0;
    uint32_t day = 0;  // DayNumber
    DimensionBatch::Handle user = DimensionBatch::kNone;
    DimensionBatch::Handle province = DimensionBatch::kNone;
    int64_t ts = 0;
    uint32_t fields_at = 0, fields_len = 0;
    uint32_t mid_at = 0, mid_len = 0;
    uint32_t ts_at = 0, ts_len = 0;
  };
  struct Watermark {
    std::optional<int64_t> ms;
    bool dirty = false;
  };

  void DeadLetter(const InputRecord& in, std::string_view reason, std::string_view detail,
                  int64_t now_ms, BatchState* state, EsTransformCounters* c);
  // Fills the record fields of `w` (the parsed record `root`) in `fields_`.
  void KeepRecordFields(const JsonValue& root, std::string_view mid, Winner* w);
  // Appends the document of winner `w` (record `in`) to `out`.
  void WriteDocument(const InputRecord& in, const Winner& w, BulkOutput* out,
                     EsTransformCounters* c);

  DauOptions options_;
  int64_t max_future_ms_;
  JsonParser parser_;
  EventDayCache days_;     // of record ts
  EventDayCache wm_days_;  // of watermarks
  DimensionBatch dims_;
  std::vector<Winner> winners_;
  absl::flat_hash_map<std::pair<uint32_t, std::string>, uint32_t> winner_index_;
  absl::flat_hash_map<int32_t, Watermark> watermarks_;
  std::string src_;
  std::string scratch_;
  std::string fields_;  // the winners' record fields (Winner::fields_at ...), per batch
  std::string source_;  // one document's source line
  std::string index_;
  rapidjson::StringBuffer doc_;
  DocWriter writer_;
  std::vector<uint32_t> out_days_;  // days of the documents written (index names)
  size_t bytes_per_doc_ = 0;        // of the last batch's body, to size the next one
  EsTransformCounters counters_;
};

}  // namespace rtdw

#endif  // RTDW_CORE_DAU_TRANSFORM_H_
