#include "core/engine/owed_journal.h"

#include <algorithm>
#include <utility>

namespace rtdw {

void OwedJournal::Committed(std::optional<JournalEntry> entry,
                            std::map<TopicPartition, int64_t> next,
                            const std::map<TopicPartition, int64_t>& first, uint64_t epoch) {
  // A partition with nothing delivered yet hands over where this batch started.
  for (const auto& [tp, offset] : first) delivered_next_.try_emplace(tp, offset);
  if (entry) {
    owed_.push_back(
        Owed{std::make_shared<const JournalEntry>(std::move(*entry)), std::move(next), epoch});
    return;
  }
  // Nothing of its own to deliver: hand-over-able once what precedes it is.
  auto& into = owed_.empty() ? delivered_next_ : owed_.back().next;
  for (const auto& [tp, offset] : next) into[tp] = offset;
}

const OwedJournal::Owed* OwedJournal::Find(uint64_t seq) const {
  for (const Owed& o : owed_) {
    if (o.entry->seq == seq) return &o;
  }
  return nullptr;
}

bool OwedJournal::Delivered(uint64_t seq) {
  if (owed_.empty() || owed_.front().entry->seq != seq) return false;
  for (const auto& [tp, offset] : owed_.front().next) delivered_next_[tp] = offset;
  owed_.pop_front();
  return true;
}

std::vector<OwedJournal::Owed> OwedJournal::Fence() {
  std::vector<Owed> out(std::make_move_iterator(owed_.begin()),
                        std::make_move_iterator(owed_.end()));
  owed_.clear();
  return out;
}

std::map<TopicPartition, int64_t> OwedJournal::Handover(
    const std::vector<TopicPartition>& partitions) const {
  std::map<TopicPartition, int64_t> out;
  for (const auto& [tp, offset] : delivered_next_) {
    if (partitions.empty() ||
        std::find(partitions.begin(), partitions.end(), tp) != partitions.end()) {
      out[tp] = offset;
    }
  }
  return out;
}

}  // namespace rtdw
