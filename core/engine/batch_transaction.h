// The batch transaction of the jobs (docs/DESIGN.md "The batch transaction"), as steps a runner
// calls (tools/rtdwd drives them with Kafka, Redis and Elasticsearch; tests/engine with fakes):
//
//   OffsetsOf(records)      the next (and first) offset of every source partition of a batch —
//                           the one way every job computes what a batch commits;
//   CommitJournaledBatch    transform -> ONE WriteBatch: offsets + state + dead letters + the
//                           journal entry owed to ES (nothing of it, or all of it, is stored);
//   DeliverJournalEntry     the entry through a JournalSink, then CompleteJournal: the entry
//                           deleted and refused documents dead-lettered in one write.
//
// Exactly-once in ES follows from the order of the steps, whatever instant a process dies at:
//  - before the commit: nothing of the batch is stored; the restart reads it again from the
//    stored offsets (the state is that of before the batch, so it is judged the same way);
//  - after the commit, before (or during) delivery: the entry is in the journal; the restart
//    delivers it (ListJournal, in seq order) before reading anything new;
//  - after delivery, before CompleteJournal: the entry is delivered again; its `_id`s are
//    deterministic and its versions external (core/es_version.h), so ES ends the same.
// Each step is one attempt: the caller retries (RetryUntil, core/backoff.h) and counts.
//
// Thread-compatible functions; the StateStore they write is thread-safe, so the delivery of entry
// N may run on another thread while batch N+1 commits.
#ifndef RTDW_CORE_ENGINE_BATCH_TRANSACTION_H_
#define RTDW_CORE_ENGINE_BATCH_TRANSACTION_H_

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
#include "core/es_transform.h"
#include "core/journal_entry.h"
#include "core/journal_sink.h"
#include "core/records.h"
#include "storage/state_store.h"

namespace rtdw {

// Called at a named point of the transaction ("before_commit", "after_commit",
// "after_delivery"); crash tests end the process (or the test's simulated process) there. May be
// empty.
using FaultHook = std::function<void(std::string_view point)>;

struct BatchOffsets {
  // Per source partition: one past the largest offset of the batch (what the batch commits).
  std::map<TopicPartition, int64_t> next;
  // Per source partition: the smallest offset of the batch (where it is read again from).
  std::map<TopicPartition, int64_t> first;
};

// The offsets of `records` (any order; a partition's records usually come in runs, which is
// the fast path).
BatchOffsets OffsetsOf(std::span<const InputRecord> records);

// Where CommitJournaledBatch failed, for the caller's retry decision.
enum class BatchStage {
  kTransform,  // EsTransform::ProcessBatch (Unavailable: dimensions unreachable)
  kStage,      // writing the batch's offsets into the pending batch (not retryable)
  kCommit,     // StateStore::Commit (the disk said no: nothing was stored)
};

struct JournaledBatch {
  BatchOffsets offsets;
  // The entry owed to ES (its seq assigned by the commit); none when the batch made no document.
  std::optional<JournalEntry> entry;
};

// One attempt at the transaction of `records`: ProcessBatch through a pending batch of `store`,
// the batch's dead letters of records read again resolved, the next offsets set, the journal
// entry (when the transform wrote documents) set, then ONE Commit. `fault` is called with
// "before_commit" and "after_commit". On an error nothing was stored and `*failed_at` (when not
// null) says where it failed; the transform's counters moved only on success (EsTransform).
absl::StatusOr<JournaledBatch> CommitJournaledBatch(StateStore& store, EsTransform& transform,
                                                    DimensionSource* dims,
                                                    std::span<const InputRecord> records,
                                                    int64_t now_ms, const FaultHook& fault,
                                                    BatchStage* failed_at);

struct DeliveredEntry {
  DeliveryReport report;
  std::vector<uint64_t> letter_seqs;  // the dead letters of its refused documents
};

// One attempt at delivering owed `entry` of `job`: JournalSink::Deliver, `fault`
// ("after_delivery"), then CompleteJournal with one es_rejected dead letter (stamped `now_ms`)
// per refused document. An error (delivery or completion; the message says which and names the
// entry) leaves the entry owed: it is delivered again, whole.
absl::StatusOr<DeliveredEntry> DeliverJournalEntry(StateStore& store, JournalSink& sink,
                                                   const JournalEntry& entry, std::string_view job,
                                                   int64_t now_ms, const FaultHook& fault);

// The runners' free-space gate: before polling, a job whose state disk is (nearly) full
// (StateStore::CheckFreeSpace) reads nothing, so that a long disk outage does not read — and,
// for split jobs, produce — one batch per retry that could never commit. Job thread only.
class FreeSpaceGate {
 public:
  // True when a batch could commit now. Otherwise false, and `problem` is told
  // "not reading: <why>"; once space is back, `problem` is told "" (once).
  bool Open(const StateStore& store, const std::function<void(std::string)>& problem);

 private:
  bool waiting_ = false;
};

}  // namespace rtdw

#endif  // RTDW_CORE_ENGINE_BATCH_TRANSACTION_H_
