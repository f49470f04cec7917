// Rebuilding DAU de-dup state from the DAU documents in Elasticsearch: the one implementation
// behind rtdwd's group hand-over (a partition this member did not own before gets its de-dup slots
// from ES) and `rtdw dedup restore` (an operator rebuilds a day after a loss).
//
// RestoreDedup() keeps the rules both depend on:
//  - Refresh before the scan: a search sees only what the index's last refresh made visible, so
//    without it documents written just before (by the partition's previous owner, or by a daemon
//    stopped a moment ago) would be missed and their users counted again.
//  - One slot per (day, source partition, mid), filled by docs/FORMATS.md §4 (PutDedupIfBeats):
//    a document only replaces an incumbent it beats, so restoring twice, or over live state, never
//    makes a worse winner.
//  - The slot's day is the document's index day when the caller names it (`rtdw dedup restore
//    --day`), else the day of its `ts` in the job's time zone (the daemon reads every DAU index).
//  - Optionally (the daemon) each restored partition's event-time watermark is raised to the
//    newest restored `ts`, never ahead of the wall clock (docs/FORMATS.md §6): a replay after the
//    restore then judges lateness as the previous owner did.
//
// Where the documents come from (DauDocumentReader: ES over connectors/es, with the index and
// query each caller needs) and where the slots go (DedupRestoreTarget: a state store's batches)
// are interfaces, so that the rules above are tested with fakes and shared by both callers.
#ifndef RTDW_CORE_DEDUP_RESTORE_H_
#define RTDW_CORE_DEDUP_RESTORE_H_

#include <cstdint>
#include <functional>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "core/es_transform.h"
#include "core/state_types.h"

namespace rtdw {

// The DAU documents a restore reads. Implementations are not required to be thread-safe; one
// restore uses one reader from one thread.
class DauDocumentReader {
 public:
  virtual ~DauDocumentReader() = default;
  // Makes every document indexed so far visible to ForEach (ES: POST /<index>/_refresh).
  // NotFound when the index does not exist.
  virtual absl::Status Refresh() = 0;
  // Calls fn(id, source_json) for every document (the source holds at least `ts` and
  // `rtdw_src`), stopping at fn's first error and returning it. NotFound when the index does not
  // exist.
  virtual absl::Status ForEach(
      const std::function<absl::Status(std::string_view id, std::string_view source)>& fn) = 0;
};

// Where restored slots are written: a batch of the job's state store, committed as it fills.
class DedupRestoreTarget {
 public:
  virtual ~DedupRestoreTarget() = default;
  // The batch being filled (reads see the committed state and the batch's own writes).
  virtual BatchState& batch() = 0;
  // Commits batch() and starts an empty one.
  virtual absl::Status Commit() = 0;
};

// A DedupRestoreTarget over a state store (storage/state_store.h's StateStore, or anything with
// NewBatch() returning a BatchState and Commit(Batch)). Not thread-safe.
template <typename Store>
class StoreRestoreTarget : public DedupRestoreTarget {
 public:
  explicit StoreRestoreTarget(Store* store) : store_(store), batch_(store->NewBatch()) {}
  BatchState& batch() override { return batch_; }
  absl::Status Commit() override {
    absl::Status s = store_->Commit(std::move(batch_)).status();
    batch_ = store_->NewBatch();
    return s;
  }

 private:
  Store* store_;
  decltype(std::declval<Store&>().NewBatch()) batch_;
};

struct DedupRestoreOptions {
  // Every document's slot day (`rtdw dedup restore --day`); nullopt: the day of its `ts` in
  // time_zone.
  std::optional<DayNumber> day;
  absl::TimeZone time_zone = absl::UTCTimeZone();
  // Only documents of this source topic ("": any topic) and of these source partitions (empty:
  // every partition). Documents of others are counted in other_partitions.
  std::string topic;
  std::set<int32_t> partitions;
  // The daemon: raise each restored partition's watermark to its newest restored `ts`, capped at
  // now_ms.
  bool raise_watermarks = false;
  int64_t now_ms = 0;
  // A missing index means "nothing to restore" (OK) instead of NotFound.
  bool missing_index_is_empty = false;
  // Commit after this many restored slots (bounds the batch's memory).
  size_t commit_every = 5000;
  // At most this many ids of skipped documents are kept in DedupRestoreStats::skipped_samples.
  size_t max_samples = 10;
};

struct DedupRestoreStats {
  uint64_t documents = 0;         // read from the reader
  uint64_t restored = 0;          // slots put (empty, or the document beat the incumbent)
  uint64_t kept = 0;              // the incumbent beat the document
  uint64_t skipped = 0;           // not a DAU document of rtdw (no `ts` or `rtdw_src`, no id)
  uint64_t other_partitions = 0;  // of another topic or partition than asked
  std::vector<std::string> skipped_samples;  // ids of skipped documents
};

// Refreshes, reads every document of `reader` and puts its de-dup slot into `target` as described
// at the top, committing every options.commit_every slots and once at the end (when anything was
// written). `stats` (required) counts what happened, also on an error. On an error the slots
// committed so far stay (each is a valid §4 winner); nothing of the uncommitted rest is written.
absl::Status RestoreDedup(DauDocumentReader& reader, DedupRestoreTarget& target,
                          const DedupRestoreOptions& options, DedupRestoreStats* stats);

}  // namespace rtdw

#endif  // RTDW_CORE_DEDUP_RESTORE_H_
