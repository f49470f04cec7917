#include "core/engine/batch_transaction.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace rtdw {

BatchOffsets OffsetsOf(std::span<const InputRecord> records) {
  BatchOffsets out;
  // A partition's records come in runs: the map is looked up only when the partition changes.
  std::map<TopicPartition, int64_t>::iterator next = out.next.end();
  std::map<TopicPartition, int64_t>::iterator first = out.first.end();
  for (const InputRecord& rec : records) {
    if (next == out.next.end() || next->first.second != rec.partition ||
        next->first.first != rec.topic) {
      TopicPartition tp{std::string(rec.topic), rec.partition};
      next = out.next.try_emplace(tp, rec.offset + 1).first;
      first = out.first.try_emplace(std::move(tp), rec.offset).first;
    }
    next->second = std::max(next->second, rec.offset + 1);
    first->second = std::min(first->second, rec.offset);
  }
  return out;
}

absl::StatusOr<JournaledBatch> CommitJournaledBatch(StateStore& store, EsTransform& transform,
                                                    DimensionSource* dims,
                                                    std::span<const InputRecord> records,
                                                    int64_t now_ms, const FaultHook& fault,
                                                    BatchStage* failed_at) {
  auto fail = [&](BatchStage stage, absl::Status st) {
    if (failed_at != nullptr) *failed_at = stage;
    return st;
  };
  PendingBatch pending = store.NewBatch();
  BulkOutput out;
  if (absl::Status st = transform.ProcessBatch(records, now_ms, dims, &pending, &out); !st.ok()) {
    return fail(BatchStage::kTransform, std::move(st));
  }
  pending.ResolveDeadLetters(records);  // records read again: their old letters
  JournaledBatch batch;
  batch.offsets = OffsetsOf(records);
  for (const auto& [tp, offset] : batch.offsets.next) {
    if (absl::Status st = pending.SetOffset(tp.first, tp.second, offset); !st.ok()) {
      return fail(BatchStage::kStage, std::move(st));
    }
  }
  if (out.docs > 0) {
    JournalEntry entry;
    entry.target = std::move(out.target);
    entry.body = std::move(out.body);
    entry.doc_count = out.docs;
    pending.SetJournal(std::move(entry));  // handed back, as committed, by Commit()
  }
  if (fault) fault("before_commit");
  auto committed = store.Commit(std::move(pending));
  if (!committed.ok()) return fail(BatchStage::kCommit, committed.status());
  if (fault) fault("after_commit");
  batch.entry = std::move(committed->journal);
  return batch;
}

absl::StatusOr<DeliveredEntry> DeliverJournalEntry(StateStore& store, JournalSink& sink,
                                                   const JournalEntry& entry, std::string_view job,
                                                   int64_t now_ms, const FaultHook& fault) {
  auto report = sink.Deliver(entry);
  if (!report.ok()) {
    return absl::Status(report.status().code(), absl::StrCat("delivering journal entry ", entry.seq,
                                                             ": ", report.status().message()));
  }
  if (fault) fault("after_delivery");
  std::vector<std::string> lines;
  lines.reserve(report->rejected.size());
  for (const RejectedItem& item : report->rejected) {
    lines.push_back(EsRejectedDeadLetter(job, item, now_ms));
  }
  auto done = store.CompleteJournal(entry.seq, lines);
  if (!done.ok()) {
    return absl::Status(
        done.status().code(),
        absl::StrCat("cannot complete journal entry ", entry.seq, ": ", done.status().message()));
  }
  return DeliveredEntry{std::move(*report), std::move(*done)};
}

bool FreeSpaceGate::Open(const StateStore& store, const std::function<void(std::string)>& problem) {
  if (absl::Status space = store.CheckFreeSpace(); !space.ok()) {
    problem(absl::StrCat("not reading: ", space.message()));
    waiting_ = true;
    return false;
  }
  if (std::exchange(waiting_, false)) problem("");
  return true;
}

}  // namespace rtdw
