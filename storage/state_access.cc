// The state store's reads, and its single writes outside a batch (offsets, de-dup retention,
// partition hand-over, journal and dead-letter deletes); statistics.
#include <sys/statvfs.h>

#include "rocksdb/write_batch.h"
#include "storage/state_store.h"
#include "storage/state_store_internal.h"

namespace rtdw {

using state_internal::CheckDay;
using state_internal::CheckId;
using state_internal::CheckPartition;
using state_internal::DecodeSeqKey;
using state_internal::FromRocks;
using state_internal::InputWatermarkName;
using state_internal::IsLetterKey;
using state_internal::ScanPrefix;
using state_internal::SeqKey;
using state_internal::View;
using state_internal::WatermarkName;

// ---------------------------------------------------------------------------------------------
// Offsets

absl::StatusOr<std::vector<OffsetEntry>> StateStore::GetOffsets() const {
  return GetOffsets(std::string_view());
}

absl::StatusOr<std::vector<OffsetEntry>> StateStore::GetOffsets(std::string_view topic) const {
  std::string prefix = topic.empty() ? std::string() : state_keys::OffsetTopicPrefix(topic);
  std::vector<OffsetEntry> out;
  bool bad = false;
  RTDW_RETURN_IF_ERROR(ScanPrefix(
      rocks_->db.get(), cf(kCfOffsets), prefix, [&](std::string_view k, std::string_view v) {
        OffsetEntry e;
        auto off = state_keys::DecodeOffsetValue(v);
        if (!state_keys::DecodeOffsetKey(k, &e.topic, &e.partition) || !off) {
          bad = true;
          return false;
        }
        e.next_offset = *off;
        out.push_back(std::move(e));
        return true;
      }));
  if (bad) return absl::DataLossError(absl::StrCat(path_, ": bad offsets entry"));
  return out;
}

absl::StatusOr<std::optional<int64_t>> StateStore::GetOffset(std::string_view topic,
                                                             int32_t partition) const {
  RTDW_RETURN_IF_ERROR(CheckId("topic", topic));
  RTDW_RETURN_IF_ERROR(CheckPartition(partition));
  std::string v;
  rocksdb::Status s = rocks_->db->Get(rocksdb::ReadOptions(), cf(kCfOffsets),
                                      state_keys::OffsetKey(topic, partition), &v);
  if (s.IsNotFound()) return std::optional<int64_t>();
  if (!s.ok()) return FromRocks(s, absl::StrCat("read ", path_));
  auto off = state_keys::DecodeOffsetValue(v);
  if (!off) return absl::DataLossError(absl::StrCat(path_, ": bad offsets value"));
  return off;
}

absl::Status StateStore::SetOffset(std::string_view topic, int32_t partition, int64_t next_offset) {
  RTDW_RETURN_IF_ERROR(CheckWritable());
  RTDW_RETURN_IF_ERROR(CheckId("topic", topic));
  RTDW_RETURN_IF_ERROR(CheckPartition(partition));
  if (next_offset < 0) {
    return absl::InvalidArgumentError(absl::StrCat("offset ", next_offset, " is negative"));
  }
  rocksdb::WriteOptions wo;
  wo.sync = true;
  rocksdb::Status s = rocks_->db->Put(wo, cf(kCfOffsets), state_keys::OffsetKey(topic, partition),
                                      state_keys::EncodeOffsetValue(next_offset));
  if (!s.ok()) return FromRocks(s, absl::StrCat("write ", path_));
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------------------------
// Dedup

absl::StatusOr<std::optional<DedupValue>> StateStore::GetDedup(DayNumber day, int32_t partition,
                                                               std::string_view mid) const {
  RTDW_RETURN_IF_ERROR(CheckDay(day));
  RTDW_RETURN_IF_ERROR(CheckPartition(partition));
  RTDW_RETURN_IF_ERROR(CheckId("mid", mid));
  std::string v;
  rocksdb::Status s = rocks_->db->Get(rocksdb::ReadOptions(), cf(kCfDedup),
                                      state_keys::DedupKey(day, partition, mid), &v);
  if (s.IsNotFound()) return std::optional<DedupValue>();
  if (!s.ok()) return FromRocks(s, absl::StrCat("read ", path_));
  auto d = state_keys::DecodeDedupValue(v);
  if (!d) return absl::DataLossError(absl::StrCat(path_, ": bad dedup value"));
  return d;
}

absl::Status StateStore::ScanDedupDay(
    DayNumber day,
    const std::function<bool(int32_t, std::string_view, const DedupValue&)>& fn) const {
  RTDW_RETURN_IF_ERROR(CheckDay(day));
  bool bad = false;
  RTDW_RETURN_IF_ERROR(ScanPrefix(rocks_->db.get(), cf(kCfDedup), state_keys::DedupDayPrefix(day),
                                  [&](std::string_view k, std::string_view v) {
                                    DayNumber d;
                                    int32_t partition;
                                    std::string mid;
                                    auto value = state_keys::DecodeDedupValue(v);
                                    if (!state_keys::DecodeDedupKey(k, &d, &partition, &mid) ||
                                        !value) {
                                      bad = true;
                                      return false;
                                    }
                                    return fn(partition, mid, *value);
                                  }));
  if (bad) return absl::DataLossError(absl::StrCat(path_, ": bad dedup entry"));
  return absl::OkStatus();
}

absl::StatusOr<std::vector<DayNumber>> StateStore::DedupDays() const {
  std::vector<DayNumber> days;
  std::unique_ptr<rocksdb::Iterator> it(
      rocks_->db->NewIterator(state_internal::TotalOrder(), cf(kCfDedup)));
  it->SeekToFirst();
  while (it->Valid()) {
    if (it->key().size() < 4) return absl::DataLossError(absl::StrCat(path_, ": bad dedup key"));
    DayNumber day = state_keys::GetBE32(it->key().data());
    days.push_back(day);
    if (day == UINT32_MAX) break;
    it->Seek(state_keys::DedupDayPrefix(day + 1));  // jump to the next day
  }
  if (!it->status().ok()) return FromRocks(it->status(), absl::StrCat("read ", path_));
  return days;
}

absl::Status StateStore::DropDedupDaysBefore(DayNumber day) {
  RTDW_RETURN_IF_ERROR(CheckWritable());
  rocksdb::WriteOptions wo;
  wo.sync = sync_;
  rocksdb::Status s =
      rocks_->db->DeleteRange(wo, cf(kCfDedup), rocksdb::Slice(), state_keys::DedupDayPrefix(day));
  if (!s.ok()) return FromRocks(s, absl::StrCat("drop dedup days of ", path_));
  return absl::OkStatus();
}

absl::StatusOr<std::optional<int64_t>> StateStore::MinJoinSourceOffset(int32_t partition,
                                                                       JoinSide side) const {
  RTDW_RETURN_IF_ERROR(CheckPartition(partition));
  const std::string prefix = state_keys::JoinOffsetPrefix(partition, side);
  std::unique_ptr<rocksdb::Iterator> it(
      rocks_->db->NewIterator(state_internal::TotalOrder(), cf(kCfJoin)));
  it->Seek(prefix);
  if (!it->status().ok()) return FromRocks(it->status(), absl::StrCat("read ", path_));
  if (!it->Valid() || !it->key().starts_with(prefix)) return std::optional<int64_t>();
  auto offset = state_keys::DecodeJoinOffsetKey(View(it->key()));
  if (!offset) return absl::DataLossError(absl::StrCat(path_, ": bad join offset key"));
  return offset;
}

absl::Status StateStore::DropPartitionState(int32_t partition,
                                            const std::vector<std::string>& topics) {
  RTDW_RETURN_IF_ERROR(CheckWritable());
  RTDW_RETURN_IF_ERROR(CheckPartition(partition));
  RTDW_ASSIGN_OR_RETURN(std::vector<DayNumber> days, DedupDays());
  rocksdb::WriteBatch wb;
  auto fail = [&](const rocksdb::Status& s) {
    return FromRocks(s, absl::StrCat("drop the state of partition ", partition, " in ", path_));
  };
  for (DayNumber day : days) {
    rocksdb::Status s =
        wb.DeleteRange(cf(kCfDedup), state_keys::DedupDayPartitionPrefix(day, partition),
                       state_keys::DedupDayPartitionPrefix(day, partition + 1));
    if (!s.ok()) return fail(s);
  }
  std::string from, to;
  state_keys::PutBE32(&from, static_cast<uint32_t>(partition));
  state_keys::PutBE32(&to, static_cast<uint32_t>(partition) + 1);
  if (auto s = wb.DeleteRange(cf(kCfJoin), from, to); !s.ok()) return fail(s);
  if (auto s = wb.Delete(cf(kCfMeta), WatermarkName(partition)); !s.ok()) return fail(s);
  for (const auto& topic : topics) {
    RTDW_RETURN_IF_ERROR(CheckId("topic", topic));
    if (auto s = wb.Delete(cf(kCfOffsets), state_keys::OffsetKey(topic, partition)); !s.ok()) {
      return fail(s);
    }
    if (auto s = wb.Delete(cf(kCfMeta), InputWatermarkName(topic, partition)); !s.ok()) {
      return fail(s);
    }
  }
  rocksdb::WriteOptions wo;
  wo.sync = true;
  if (auto s = rocks_->db->Write(wo, &wb); !s.ok()) return fail(s);
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------------------------
// Join

absl::StatusOr<std::vector<JoinRow>> StateStore::GetJoinRows(int32_t partition,
                                                             size_t limit) const {
  RTDW_RETURN_IF_ERROR(CheckPartition(partition));
  std::vector<JoinRow> rows;
  bool bad = false;
  RTDW_RETURN_IF_ERROR(ScanPrefix(
      rocks_->db.get(), cf(kCfJoin), state_keys::JoinPartitionPrefix(partition),
      [&](std::string_view k, std::string_view v) {
        if (rows.size() >= limit) return false;
        JoinRow row;
        if (!state_keys::DecodeJoinRowKey(k, &row) || !state_keys::DecodeJoinValue(v, &row)) {
          bad = true;
          return false;
        }
        rows.push_back(std::move(row));
        return true;
      }));
  if (bad) return absl::DataLossError(absl::StrCat(path_, ": bad join row"));
  return rows;
}

// ---------------------------------------------------------------------------------------------
// Journal

absl::StatusOr<std::vector<JournalEntry>> StateStore::ListJournal(bool with_bodies) const {
  std::vector<JournalEntry> out;
  absl::Status bad;
  RTDW_RETURN_IF_ERROR(ScanPrefix(rocks_->db.get(), cf(kCfJournal), std::string_view(),
                                  [&](std::string_view k, std::string_view v) {
                                    auto seq = DecodeSeqKey(k);
                                    if (!seq) {
                                      bad = absl::DataLossError("bad journal key");
                                      return false;
                                    }
                                    auto e = DecodeJournalValue(*seq, v, with_bodies);
                                    if (!e.ok()) {
                                      bad = e.status();
                                      return false;
                                    }
                                    out.push_back(std::move(e).value());
                                    return true;
                                  }));
  if (!bad.ok()) return absl::Status(bad.code(), absl::StrCat(path_, ": ", bad.message()));
  return out;
}

absl::StatusOr<JournalEntry> StateStore::ReadJournal(uint64_t seq) const {
  std::string v;
  rocksdb::Status s = rocks_->db->Get(rocksdb::ReadOptions(), cf(kCfJournal), SeqKey(seq), &v);
  if (s.IsNotFound()) return absl::NotFoundError(absl::StrCat("no journal entry ", seq));
  if (!s.ok()) return FromRocks(s, absl::StrCat("read ", path_));
  return DecodeJournalValue(seq, v, true);
}

absl::Status StateStore::DeleteJournal(uint64_t seq) {
  RTDW_RETURN_IF_ERROR(CheckWritable());
  rocksdb::WriteOptions wo;
  wo.sync = false;
  rocksdb::Status s = rocks_->db->Delete(wo, cf(kCfJournal), SeqKey(seq));
  if (!s.ok()) return FromRocks(s, absl::StrCat("delete journal entry of ", path_));
  return absl::OkStatus();
}

absl::StatusOr<uint64_t> StateStore::JournalBacklog() const { return CountKeys(kCfJournal); }

// ---------------------------------------------------------------------------------------------
// Dead letters

absl::StatusOr<std::vector<DeadLetter>> StateStore::ListDeadLetters(uint64_t after_seq,
                                                                    size_t limit) const {
  std::vector<DeadLetter> out;
  std::string start = after_seq == UINT64_MAX ? std::string("\xff\xff\xff\xff\xff\xff\xff\xff\xff")
                                              : SeqKey(after_seq + 1);
  std::unique_ptr<rocksdb::Iterator> it(
      rocks_->db->NewIterator(state_internal::TotalOrder(), cf(kCfDeadLetter)));
  for (it->Seek(start); it->Valid() && out.size() < limit && IsLetterKey(it->key()); it->Next()) {
    auto seq = DecodeSeqKey(View(it->key()));
    if (!seq) return absl::DataLossError(absl::StrCat(path_, ": bad deadletter key"));
    out.push_back(DeadLetter{*seq, it->value().ToString()});
  }
  if (!it->status().ok()) return FromRocks(it->status(), absl::StrCat("read ", path_));
  return out;
}

absl::StatusOr<DeadLetter> StateStore::GetDeadLetter(uint64_t seq) const {
  std::string v;
  rocksdb::Status s = rocks_->db->Get(rocksdb::ReadOptions(), cf(kCfDeadLetter), SeqKey(seq), &v);
  if (s.IsNotFound()) return absl::NotFoundError(absl::StrCat("no dead letter ", seq));
  if (!s.ok()) return FromRocks(s, absl::StrCat("read ", path_));
  return DeadLetter{seq, std::move(v)};
}

absl::Status StateStore::DeleteDeadLetter(uint64_t seq) {
  RTDW_RETURN_IF_ERROR(CheckWritable());
  RTDW_ASSIGN_OR_RETURN(DeadLetter letter, GetDeadLetter(seq));
  rocksdb::WriteBatch wb;
  RTDW_RETURN_IF_ERROR(DeleteLetterIn(&wb, seq, letter.line));
  rocksdb::WriteOptions wo;
  wo.sync = sync_;
  rocksdb::Status s = rocks_->db->Write(wo, &wb);
  if (!s.ok()) return FromRocks(s, absl::StrCat("delete dead letter of ", path_));
  return absl::OkStatus();
}

absl::StatusOr<uint64_t> StateStore::DeadLetterCount() const {
  uint64_t n = 0;
  std::unique_ptr<rocksdb::Iterator> it(
      rocks_->db->NewIterator(state_internal::TotalOrder(), cf(kCfDeadLetter)));
  for (it->SeekToFirst(); it->Valid() && IsLetterKey(it->key()); it->Next()) ++n;
  if (!it->status().ok()) return FromRocks(it->status(), absl::StrCat("read ", path_));
  return n;
}

absl::StatusOr<uint64_t> StateStore::CountKeys(std::string_view cf_name) const {
  uint64_t n = 0;
  RTDW_RETURN_IF_ERROR(ScanPrefix(rocks_->db.get(), cf(cf_name), std::string_view(),
                                  [&](std::string_view, std::string_view) {
                                    ++n;
                                    return true;
                                  }));
  return n;
}

// ---------------------------------------------------------------------------------------------
// Stats

absl::StatusOr<StoreStats> StateStore::Stats(bool exact_counts) const {
  StoreStats stats;
  for (auto name : kStateColumnFamilies) {
    ColumnFamilyStats c;
    c.name = std::string(name);
    rocksdb::ColumnFamilyHandle* h = cf(name);
    uint64_t v = 0;
    if (rocks_->db->GetIntProperty(h, "rocksdb.total-sst-files-size", &v)) c.sst_bytes = v;
    if (rocks_->db->GetIntProperty(h, "rocksdb.cur-size-all-mem-tables", &v)) {
      c.memtable_bytes = v;
    }
    // Small families are always counted exactly (the estimate is poor for a few keys).
    bool exact = exact_counts || name == kCfOffsets || name == kCfMeta || name == kCfJournal ||
                 name == kCfDeadLetter;
    if (exact) {
      uint64_t n = 0, join_rows = 0, bytes = 0, letters = 0;
      RTDW_RETURN_IF_ERROR(ScanPrefix(rocks_->db.get(), h, std::string_view(),
                                      [&](std::string_view k, std::string_view val) {
                                        ++n;
                                        bytes += val.size();
                                        if (name == kCfDeadLetter && IsLetterKey(k)) ++letters;
                                        if (name == kCfJoin && state_keys::IsJoinRowKey(k)) {
                                          ++join_rows;
                                        }
                                        return true;
                                      }));
      c.keys = n;
      c.keys_exact = true;
      if (name == kCfJournal) {
        stats.journal_backlog = n;
        stats.journal_bytes = bytes;
      }
      if (name == kCfDeadLetter) stats.dead_letters = letters;
      if (name == kCfJoin) stats.join_rows = join_rows;
    } else if (rocks_->db->GetIntProperty(h, "rocksdb.estimate-num-keys", &v)) {
      c.keys = v;
      if (name == kCfJoin) stats.join_rows = v / 2;  // a row and its time-index entry
    }
    stats.column_families.push_back(std::move(c));
  }
  stats.next_seq = next_seq();
  return stats;
}

}  // namespace rtdw
