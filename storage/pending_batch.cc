// PendingBatch: the writes of one batch transaction (ordered maps per column family, Impl::writes),
// and reads that see committed state overlaid with them.
#include <algorithm>
#include <map>
#include <span>
#include <utility>

#include "absl/strings/numbers.h"
#include "storage/state_store.h"
#include "storage/state_store_internal.h"

namespace rtdw {

using state_internal::CheckDay;
using state_internal::CheckId;
using state_internal::CheckPartition;
using state_internal::FromRocks;
using state_internal::InputWatermarkName;
using state_internal::StartsWith;
using state_internal::View;
using state_internal::WatermarkName;

PendingBatch::PendingBatch(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
PendingBatch::PendingBatch(PendingBatch&&) noexcept = default;
PendingBatch& PendingBatch::operator=(PendingBatch&&) noexcept = default;
PendingBatch::~PendingBatch() = default;

absl::Status PendingBatch::SetOffset(std::string_view topic, int32_t partition,
                                     int64_t next_offset) {
  RTDW_RETURN_IF_ERROR(CheckId("topic", topic));
  RTDW_RETURN_IF_ERROR(CheckPartition(partition));
  impl_->Put(kCfOffsets, state_keys::OffsetKey(topic, partition),
             state_keys::EncodeOffsetValue(next_offset));
  return absl::OkStatus();
}

absl::Status PendingBatch::DeleteOffset(std::string_view topic, int32_t partition) {
  RTDW_RETURN_IF_ERROR(CheckId("topic", topic));
  RTDW_RETURN_IF_ERROR(CheckPartition(partition));
  impl_->Delete(kCfOffsets, state_keys::OffsetKey(topic, partition));
  return absl::OkStatus();
}

absl::Status PendingBatch::PutDedup(DayNumber day, int32_t partition, std::string_view mid,
                                    const DedupValue& value) {
  RTDW_RETURN_IF_ERROR(CheckDay(day));
  RTDW_RETURN_IF_ERROR(CheckPartition(partition));
  RTDW_RETURN_IF_ERROR(CheckId("mid", mid));
  impl_->Put(kCfDedup, state_keys::DedupKey(day, partition, mid),
             state_keys::EncodeDedupValue(value));
  return absl::OkStatus();
}

absl::Status PendingBatch::DeleteDedup(DayNumber day, int32_t partition, std::string_view mid) {
  RTDW_RETURN_IF_ERROR(CheckDay(day));
  RTDW_RETURN_IF_ERROR(CheckPartition(partition));
  RTDW_RETURN_IF_ERROR(CheckId("mid", mid));
  impl_->Delete(kCfDedup, state_keys::DedupKey(day, partition, mid));
  return absl::OkStatus();
}

absl::Status PendingBatch::PutJoinRow(const JoinRow& row) {
  RTDW_RETURN_IF_ERROR(CheckPartition(row.partition));
  RTDW_RETURN_IF_ERROR(CheckId("order id", row.order_id));
  RTDW_RETURN_IF_ERROR(CheckId("row id", row.row_id));
  std::string key = state_keys::JoinRowKey(row.partition, row.order_id, row.side, row.row_id);
  RTDW_ASSIGN_OR_RETURN(std::optional<std::string> old, impl_->Get(kCfJoin, key));
  if (old) {
    JoinRow prev;
    if (state_keys::DecodeJoinValue(*old, &prev)) {
      if (prev.event_ms != row.event_ms) {
        impl_->Delete(kCfJoin, state_keys::JoinTimeKey(row.partition, prev.event_ms, row.order_id,
                                                       row.side, row.row_id));
      }
      if (prev.source_offset >= 0 && prev.source_offset != row.source_offset) {
        impl_->Delete(kCfJoin,
                      state_keys::JoinOffsetKey(row.partition, row.side, prev.source_offset,
                                                row.order_id, row.row_id));
      }
    }
  }
  if (row.source_offset >= 0) {
    impl_->Put(kCfJoin,
               state_keys::JoinOffsetKey(row.partition, row.side, row.source_offset, row.order_id,
                                         row.row_id),
               std::string());
  }
  impl_->Put(kCfJoin, key, state_keys::EncodeJoinValue(row));
  impl_->Put(
      kCfJoin,
      state_keys::JoinTimeKey(row.partition, row.event_ms, row.order_id, row.side, row.row_id),
      std::string());
  return absl::OkStatus();
}

absl::Status PendingBatch::DeleteJoinRow(int32_t partition, std::string_view order_id,
                                         JoinSide side, std::string_view row_id) {
  RTDW_RETURN_IF_ERROR(CheckPartition(partition));
  RTDW_RETURN_IF_ERROR(CheckId("order id", order_id));
  RTDW_RETURN_IF_ERROR(CheckId("row id", row_id));
  std::string key = state_keys::JoinRowKey(partition, order_id, side, row_id);
  RTDW_ASSIGN_OR_RETURN(std::optional<std::string> old, impl_->Get(kCfJoin, key));
  if (!old) return absl::OkStatus();
  JoinRow prev;
  if (state_keys::DecodeJoinValue(*old, &prev)) {
    impl_->Delete(kCfJoin,
                  state_keys::JoinTimeKey(partition, prev.event_ms, order_id, side, row_id));
    if (prev.source_offset >= 0) {
      impl_->Delete(kCfJoin, state_keys::JoinOffsetKey(partition, side, prev.source_offset,
                                                       order_id, row_id));
    }
  }
  impl_->Delete(kCfJoin, key);
  return absl::OkStatus();
}

void PendingBatch::SetJournal(JournalEntry entry) { impl_->journal = std::move(entry); }

void PendingBatch::AddDeadLetter(std::string json_line) {
  impl_->dead_letters.push_back(std::move(json_line));
}

void PendingBatch::ResolveDeadLetters(std::string_view topic, int32_t partition,
                                      int64_t first_offset, int64_t last_offset) {
  if (first_offset > last_offset || partition < 0 || topic.find('\0') != std::string_view::npos) {
    return;
  }
  impl_->resolve.push_back(
      StateStore::ResolveRange{std::string(topic), partition, first_offset, last_offset});
}

void PendingBatch::ResolveDeadLetters(std::span<const InputRecord> records) {
  std::map<std::pair<std::string_view, int32_t>, std::pair<int64_t, int64_t>> ranges;
  for (const InputRecord& r : records) {
    auto [it, inserted] = ranges.try_emplace({r.topic, r.partition}, r.offset, r.offset);
    if (!inserted) {
      it->second.first = std::min(it->second.first, r.offset);
      it->second.second = std::max(it->second.second, r.offset);
    }
  }
  for (const auto& [tp, range] : ranges) {
    ResolveDeadLetters(tp.first, tp.second, range.first, range.second);
  }
}

absl::StatusOr<std::optional<DedupValue>> PendingBatch::DedupLookup(DayNumber day,
                                                                    int32_t partition,
                                                                    std::string_view mid) const {
  RTDW_RETURN_IF_ERROR(CheckDay(day));
  RTDW_RETURN_IF_ERROR(CheckPartition(partition));
  RTDW_RETURN_IF_ERROR(CheckId("mid", mid));
  RTDW_ASSIGN_OR_RETURN(std::optional<std::string> v,
                        impl_->Get(kCfDedup, state_keys::DedupKey(day, partition, mid)));
  if (!v) return std::optional<DedupValue>();
  auto d = state_keys::DecodeDedupValue(*v);
  if (!d) return absl::DataLossError(absl::StrCat(impl_->store->path(), ": bad dedup value"));
  return d;
}

absl::StatusOr<std::vector<JoinRow>> PendingBatch::JoinLookup(int32_t partition,
                                                              std::string_view order_id,
                                                              std::optional<JoinSide> side) const {
  RTDW_RETURN_IF_ERROR(CheckPartition(partition));
  RTDW_RETURN_IF_ERROR(CheckId("order id", order_id));
  std::string prefix = side ? state_keys::JoinOrderSidePrefix(partition, order_id, *side)
                            : state_keys::JoinOrderPrefix(partition, order_id);
  std::vector<JoinRow> rows;
  auto it = impl_->JoinOrderIter();
  for (it->Seek(prefix); it->Valid() && StartsWith(it->key(), prefix); it->Next()) {
    JoinRow row;
    if (!state_keys::DecodeJoinRowKey(View(it->key()), &row) ||
        !state_keys::DecodeJoinValue(View(it->value()), &row)) {
      return absl::DataLossError(absl::StrCat(impl_->store->path(), ": bad join row"));
    }
    rows.push_back(std::move(row));
  }
  if (!it->status().ok()) return FromRocks(it->status(), "join lookup");
  return rows;
}

absl::StatusOr<std::optional<int64_t>> PendingBatch::GetOffset(std::string_view topic,
                                                               int32_t partition) const {
  RTDW_RETURN_IF_ERROR(CheckId("topic", topic));
  RTDW_RETURN_IF_ERROR(CheckPartition(partition));
  RTDW_ASSIGN_OR_RETURN(std::optional<std::string> v,
                        impl_->Get(kCfOffsets, state_keys::OffsetKey(topic, partition)));
  if (!v) return std::optional<int64_t>();
  return state_keys::DecodeOffsetValue(*v);
}

absl::StatusOr<std::optional<int64_t>> PendingBatch::ReadWatermark(const std::string& name) const {
  RTDW_ASSIGN_OR_RETURN(std::optional<std::string> v, impl_->Get(kCfMeta, name));
  if (!v) return std::optional<int64_t>();
  int64_t ms = 0;
  if (!absl::SimpleAtoi(*v, &ms)) {
    return absl::DataLossError(absl::StrCat("meta ", name, " is not a number"));
  }
  return std::optional<int64_t>(ms);
}

absl::StatusOr<std::optional<int64_t>> PendingBatch::GetWatermark(int32_t partition) const {
  RTDW_RETURN_IF_ERROR(CheckPartition(partition));
  return ReadWatermark(WatermarkName(partition));
}

absl::Status PendingBatch::SetWatermark(int32_t partition, int64_t event_ms) {
  RTDW_RETURN_IF_ERROR(CheckPartition(partition));
  // Decimal text, so `rtdw meta show` prints it as it is.
  impl_->Put(kCfMeta, WatermarkName(partition), std::to_string(event_ms));
  return absl::OkStatus();
}

absl::StatusOr<std::optional<int64_t>> PendingBatch::GetInputWatermark(std::string_view topic,
                                                                       int32_t partition) const {
  RTDW_RETURN_IF_ERROR(CheckId("topic", topic));
  RTDW_RETURN_IF_ERROR(CheckPartition(partition));
  return ReadWatermark(InputWatermarkName(topic, partition));
}

absl::Status PendingBatch::SetInputWatermark(std::string_view topic, int32_t partition,
                                             int64_t event_ms) {
  RTDW_RETURN_IF_ERROR(CheckId("topic", topic));
  RTDW_RETURN_IF_ERROR(CheckPartition(partition));
  impl_->Put(kCfMeta, InputWatermarkName(topic, partition), std::to_string(event_ms));
  return absl::OkStatus();
}

absl::StatusOr<std::vector<JoinRow>> PendingBatch::ExpireJoinRows(int32_t partition,
                                                                  int64_t cutoff_ms, size_t limit) {
  RTDW_RETURN_IF_ERROR(CheckPartition(partition));
  std::string prefix = state_keys::JoinTimePrefix(partition);
  std::vector<JoinRow> rows;
  std::vector<std::string> index_keys;
  std::vector<std::string> row_keys;
  {
    auto it = impl_->Iter(kCfJoin);
    for (it->Seek(prefix); it->Valid() && StartsWith(it->key(), prefix) && rows.size() < limit;
         it->Next()) {
      std::string row_key;
      int64_t event_ms = 0;
      if (!state_keys::JoinTimeKeyToRowKey(View(it->key()), &row_key, &event_ms)) {
        return absl::DataLossError(absl::StrCat(impl_->store->path(), ": bad join index key"));
      }
      if (event_ms >= cutoff_ms) break;
      index_keys.emplace_back(it->key().data(), it->key().size());
      RTDW_ASSIGN_OR_RETURN(std::optional<std::string> v, impl_->Get(kCfJoin, row_key));
      if (!v) continue;  // a stale index entry: dropped below
      JoinRow row;
      if (!state_keys::DecodeJoinRowKey(row_key, &row) || !state_keys::DecodeJoinValue(*v, &row)) {
        return absl::DataLossError(absl::StrCat(impl_->store->path(), ": bad join row"));
      }
      if (row.event_ms != event_ms) continue;  // stale index entry of a re-put row
      row_keys.push_back(std::move(row_key));
      rows.push_back(std::move(row));
    }
    if (!it->status().ok()) return FromRocks(it->status(), "join expiry scan");
  }
  // Deleted after the scan: updating the batch under a live iterator is not safe.
  for (const auto& k : index_keys) impl_->Delete(kCfJoin, k);
  for (const auto& k : row_keys) impl_->Delete(kCfJoin, k);
  for (const JoinRow& r : rows) {
    if (r.source_offset < 0) continue;
    impl_->Delete(kCfJoin, state_keys::JoinOffsetKey(r.partition, r.side, r.source_offset,
                                                     r.order_id, r.row_id));
  }
  return rows;
}

bool PendingBatch::empty() const {
  return impl_->mutations == 0 && !impl_->journal && impl_->dead_letters.empty() &&
         impl_->resolve.empty();
}

size_t PendingBatch::mutation_count() const { return impl_->mutations; }

void PendingBatch::Clear() { impl_->Clear(); }

}  // namespace rtdw
