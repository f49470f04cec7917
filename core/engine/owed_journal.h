// The "journal and deliver" bookkeeping of an ES job (docs/DESIGN.md "The batch transaction",
// "Scaling out"): the journal entries committed and not yet delivered, in seq order, and the
// hand-over offsets — per source partition, how far every record's documents are acknowledged
// by ES. In group mode the hand-over offset is what the job commits to the consumer group: the
// partition's next owner starts there, so it must never pass a record whose documents are owed.
//
// The rules it keeps:
//  - a batch's next offsets become hand-over-able when its entry is delivered (Delivered), or —
//    for a batch without documents — once everything committed before it is;
//  - a partition with nothing delivered yet hands over where its first batch started;
//  - a revoke (Fence) gives every owed entry up: their offsets never become hand-over-able, so
//    the next owner reads their records again.
//
// Thread-compatible: the runner guards it with its own lock (the delivery thread and the job
// thread both use it) and waits on its own condition variable.
#ifndef RTDW_CORE_ENGINE_OWED_JOURNAL_H_
#define RTDW_CORE_ENGINE_OWED_JOURNAL_H_

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <vector>

#include "core/engine/batch_transaction.h"
#include "core/journal_entry.h"

namespace rtdw {

class OwedJournal {
 public:
  // An owed entry and the next offsets that become hand-over-able once it is delivered (its
  // batch's and those of the entry-less batches committed after it). The entry is shared so that
  // a delivering thread holds it (its bulk body is never copied) even after a fence took it away.
  struct Owed {
    std::shared_ptr<const JournalEntry> entry;
    std::map<TopicPartition, int64_t> next;
    uint64_t epoch = 0;  // group mode: the assignment it was made under
  };

  // A batch committed (CommitJournaledBatch): `entry` owed when it has one, `next` its
  // hand-over offsets once delivered, `first` where it started per partition.
  void Committed(std::optional<JournalEntry> entry, std::map<TopicPartition, int64_t> next,
                 const std::map<TopicPartition, int64_t>& first, uint64_t epoch);
  // The oldest owed entry, nullptr when none is owed.
  const Owed* front() const { return owed_.empty() ? nullptr : &owed_.front(); }
  // The owed entry `seq`, nullptr when it is not owed (delivered or fenced).
  const Owed* Find(uint64_t seq) const;
  size_t size() const { return owed_.size(); }
  bool empty() const { return owed_.empty(); }
  const std::deque<Owed>& entries() const { return owed_; }
  // Entry `seq` was delivered: when it is still the front, its offsets become hand-over-able and
  // it is no longer owed (true); otherwise (a fence took it) nothing changes (false).
  bool Delivered(uint64_t seq);
  // A revoke: every owed entry is given up and returned (their records are the next owner's).
  std::vector<Owed> Fence();
  // The hand-over offsets of `partitions` (every partition known when empty).
  std::map<TopicPartition, int64_t> Handover(const std::vector<TopicPartition>& partitions) const;
  // The group's committed offset of a newly assigned partition: hand-over-able by definition.
  void SetHandover(const TopicPartition& tp, int64_t offset) { delivered_next_[tp] = offset; }
  // A partition whose state is rebuilt: nothing of it is known to be delivered.
  void ForgetHandover(const TopicPartition& tp) { delivered_next_.erase(tp); }

 private:
  std::deque<Owed> owed_;
  std::map<TopicPartition, int64_t> delivered_next_;
};

}  // namespace rtdw

#endif  // RTDW_CORE_ENGINE_OWED_JOURNAL_H_
