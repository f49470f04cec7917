// The seam between an ES job's transform (dau, order-wide: core/) and the batch transaction
// driver that runs it (core/engine/journal_strategy.h, on the BatchRunner of batch_runner.h):
//
//   driver: poll a batch -> transform.ProcessBatch(records, dims, state, out) -> commit `state`
//           (offsets + dedup/join mutations + dead letters) and `out` (the journal entry) in ONE
//           WriteBatch -> deliver the entry to ES -> delete it.
//
// A transform owns no I/O: dimension rows come from a DimensionSource (Redis behind a cache in the
// daemon, a map in unit tests), state reads and writes go through BatchState (the state store's
// pending batch: committed state overlaid with this batch's own writes).
#ifndef RTDW_CORE_ES_TRANSFORM_H_
#define RTDW_CORE_ES_TRANSFORM_H_

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/records.h"
#include "core/state_types.h"

namespace rtdw {

// Reads and writes of one batch transaction. Reads see the batch's own earlier writes.
class BatchState {
 public:
  virtual ~BatchState() = default;
  virtual absl::StatusOr<std::optional<DedupValue>> DedupLookup(DayNumber day, int32_t partition,
                                                                std::string_view mid) const = 0;
  virtual absl::Status PutDedup(DayNumber day, int32_t partition, std::string_view mid,
                                const DedupValue& value) = 0;
  virtual absl::Status PutJoinRow(const JoinRow& row) = 0;
  virtual absl::Status DeleteJoinRow(int32_t partition, std::string_view order_id, JoinSide side,
                                     std::string_view row_id) = 0;
  virtual absl::StatusOr<std::vector<JoinRow>> JoinLookup(
      int32_t partition, std::string_view order_id,
      std::optional<JoinSide> side = std::nullopt) const = 0;
  // Rows of `partition` with event time < cutoff_ms, oldest first, deleted in this batch.
  virtual absl::StatusOr<std::vector<JoinRow>> ExpireJoinRows(int32_t partition, int64_t cutoff_ms,
                                                              size_t limit) = 0;
  // One dead-letter line (docs/FORMATS.md §7), committed with the batch.
  virtual void AddDeadLetter(std::string json_line) = 0;
  // The event-time watermark of a source partition number (the largest event time, epoch ms, it
  // has seen; docs/FORMATS.md §6), committed with the batch so a replay judges lateness exactly as
  // the first run did. nullopt before the partition's first record.
  virtual absl::StatusOr<std::optional<int64_t>> GetWatermark(int32_t partition) const = 0;
  virtual absl::Status SetWatermark(int32_t partition, int64_t event_ms) = 0;
  // The watermark of one input topic's partition, for a job with several inputs (order-wide: the
  // join's watermark above is the slower input's, docs/FORMATS.md §5). Committed with the batch
  // too. nullopt before that topic partition's first record.
  virtual absl::StatusOr<std::optional<int64_t>> GetInputWatermark(std::string_view topic,
                                                                   int32_t partition) const = 0;
  virtual absl::Status SetInputWatermark(std::string_view topic, int32_t partition,
                                         int64_t event_ms) = 0;
};

// Dimension rows by Redis key (`DIM:USER_INFO:37`). Unavailable when the store cannot be reached
// (the driver retries the batch; nothing is committed).
class DimensionSource {
 public:
  virtual ~DimensionSource() = default;
  // Values in the order of `keys`; nullopt for a row that does not exist.
  virtual absl::StatusOr<std::vector<std::optional<std::string>>> Get(
      const std::vector<std::string>& keys) = 0;
};

// What a batch owes ES: the NDJSON bulk body (action + source line per document, deterministic
// `_id`s, at most one action per `_id`), and for people a short description of the target.
struct BulkOutput {
  std::string body;
  uint32_t docs = 0;
  std::string target;  // e.g. "gmall_dau_info_2025-11-25" (or a comma list)
  void Clear() {
    body.clear();
    docs = 0;
    target.clear();
  }
};

// Sizes a batch's bulk body before its documents are written, from the mean document size of
// the previous batch: a body grown by doubling copies itself at every step and pages in about
// twice its final size (megabytes per batch for order-wide). Not thread-safe (one per transform).
class BodySizeHint {
 public:
  // Reserves room in out->body for `docs` more documents.
  void Reserve(size_t docs, BulkOutput* out) const {
    if (bytes_per_doc_ > 0) out->body.reserve(out->body.size() + docs * bytes_per_doc_);
  }
  // Learns from the batch just written (out->docs documents in out->body), with 1/8 to spare.
  void Learn(const BulkOutput& out) {
    if (out.docs > 0) bytes_per_doc_ = out.body.size() / out.docs * 9 / 8 + 1;
  }

 private:
  size_t bytes_per_doc_ = 0;
};

struct EsTransformCounters {
  uint64_t records = 0;       // input records seen
  uint64_t filtered = 0;      // not for this job (dau: not a first page)
  uint64_t documents = 0;     // documents written to the bulk body
  uint64_t duplicates = 0;    // dau: records that lost to an earlier one of the same mid and day
  uint64_t dims_missing = 0;  // dimension rows looked up but absent
  uint64_t dead_letters = 0;  // records dead-lettered (late, future, bad input, join_expired)
  // The same records by reason code (ReasonCode(): "late", "not_json", ...); sums to dead_letters.
  std::map<std::string, uint64_t, std::less<>> dead_letters_by_reason;
  uint64_t join_waiting = 0;  // order-wide: rows buffered awaiting their partner
  uint64_t join_expired = 0;  // order-wide: rows expired unmatched

  // Adds every counter of `o` to this one.
  void Add(const EsTransformCounters& o) {
    records += o.records;
    filtered += o.filtered;
    documents += o.documents;
    duplicates += o.duplicates;
    dims_missing += o.dims_missing;
    dead_letters += o.dead_letters;
    for (const auto& [reason, n] : o.dead_letters_by_reason) dead_letters_by_reason[reason] += n;
    join_waiting += o.join_waiting;
    join_expired += o.join_expired;
  }
};

class EsTransform {
 public:
  virtual ~EsTransform() = default;
  // Processes one batch. On an error nothing of the batch may be committed (the driver aborts it
  // and runs it again); on OK `state` and `out` hold everything the batch changes.
  // `now_ms` is the wall clock (only for max_future and ts_ingest).
  virtual absl::Status ProcessBatch(std::span<const InputRecord> records, int64_t now_ms,
                                    DimensionSource* dims, BatchState* state, BulkOutput* out) = 0;
  virtual const EsTransformCounters& counters() const = 0;
  // The input topic partitions that are at their end and have been idle for the job's idle time
  // (jobs.order-wide.idle_input): they stop holding a multi-input watermark back. Applies to the
  // following ProcessBatch calls. A single-input job ignores it.
  virtual void SetIdleInputs(std::vector<std::pair<std::string, int32_t>> idle) { (void)idle; }
};

}  // namespace rtdw

#endif  // RTDW_CORE_ES_TRANSFORM_H_
