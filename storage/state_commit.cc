// The state store's seq-allocating writes — Commit, CompleteJournal, AddDeadLetter,
// RequeueDeadLetters — and the dead-letter identity index they keep.
#include <map>
#include <set>

#include "core/dead_letter.h"
#include "rocksdb/write_batch.h"
#include "storage/state_store.h"
#include "storage/state_store_internal.h"

namespace rtdw {

using state_internal::FromRocks;
using state_internal::IsLetterKey;
using state_internal::NowMs;
using state_internal::RocksText;
using state_internal::SeqKey;
using state_internal::View;

// ---------------------------------------------------------------------------------------------
// Commit and seq-allocating writes

namespace {
// An upper bound of what a WriteBatch adds to an entry's key and value: a tag byte, the column
// family id and two lengths as varint32s (5 bytes each at most), and the entry's share of the
// meta next-seq entry's key.
constexpr size_t kWriteBatchEntryOverhead = 1 + 3 * 5 + 16;
}  // namespace

PendingBatch StateStore::NewBatch() {
  return PendingBatch(std::make_unique<PendingBatch::Impl>(this));
}

absl::Status StateStore::WriteWithSeqs(rocksdb::WriteBatch* wb, uint64_t seqs_needed, bool sync,
                                       std::vector<uint64_t>* seqs) {
  // Caller holds seq_mu_. `wb` already holds the seq-keyed entries of the seqs
  // [next_seq_, next_seq_ + seqs_needed).
  if (rocks_->write_failed.load()) {
    // Space may have come back: clear RocksDB's background error (it flushes the memtables
    // to a fresh WAL). Failing again leaves the store as it was at the last commit.
    // Busy: RocksDB's own recovery from a full disk is waiting for free space.
    rocksdb::Status r = rocks_->db->Resume();
    if (!r.ok()) {
      absl::MutexLock lock(&rocks_->write_error_mu);
      return FromRocks(
          r, absl::StrCat("resume writes to ", path_, " after \"", rocks_->write_error, "\""));
    }
    rocks_->write_failed = false;
  }
  uint64_t next = next_seq_ + seqs_needed;
  if (seqs_needed > 0) {
    std::string v;
    state_keys::PutBE64(&v, next);
    rocksdb::Status ps = wb->Put(cf(kCfMeta), std::string(kMetaNextSeq), v);
    if (!ps.ok()) return FromRocks(ps, "batch put");
    for (uint64_t i = 0; i < seqs_needed; ++i) seqs->push_back(next_seq_ + i);
  }
  rocksdb::WriteOptions wo;
  wo.sync = sync;
  rocksdb::Status s = rocks_->db->Write(wo, wb);
  // Advanced even on failure: a seq is never handed out twice.
  next_seq_ = next;
  if (!s.ok()) {
    {
      absl::MutexLock lock(&rocks_->write_error_mu);
      rocks_->write_error = RocksText(s);
    }
    rocks_->write_failed = true;
    return FromRocks(s, absl::StrCat("commit to ", path_));
  }
  return absl::OkStatus();
}

absl::StatusOr<CommitResult> StateStore::Commit(PendingBatch* batch) {
  absl::StatusOr<CommitResult> result = CommitBatch(*batch);
  if (batch->impl_ != nullptr) batch->Clear();
  return result;
}

absl::StatusOr<CommitResult> StateStore::Commit(PendingBatch batch) { return CommitBatch(batch); }

absl::StatusOr<CommitResult> StateStore::CommitReplacingDeadLetters(
    const std::vector<uint64_t>& seqs, PendingBatch* batch) {
  for (uint64_t seq : seqs) RTDW_RETURN_IF_ERROR(GetDeadLetter(seq).status());
  absl::StatusOr<CommitResult> result = CommitBatch(*batch, seqs);
  if (batch->impl_ != nullptr) batch->Clear();
  return result;
}

absl::StatusOr<CommitResult> StateStore::CommitBatch(PendingBatch& batch,
                                                     const std::vector<uint64_t>& drop_letters) {
  RTDW_RETURN_IF_ERROR(CheckWritable());
  if (!batch.impl_ || batch.impl_->store != this) {
    return absl::InvalidArgumentError("the batch belongs to another store");
  }
  PendingBatch::Impl& b = *batch.impl_;
  b.join_seek.reset();  // the lookups are over; its pinned memtables may go
  CommitResult result;
  if (b.mutations == 0 && !b.journal && b.dead_letters.empty() && b.resolve.empty() &&
      drop_letters.empty()) {
    return result;
  }
  RTDW_RETURN_IF_ERROR(CheckFreeSpace());
  absl::MutexLock lock(&seq_mu_);
  uint64_t seq = next_seq_;
  uint64_t needed = 0;
  // The WriteBatch's buffer is sized for the whole batch before the first write: grown by doubling
  // it would reach up to twice the batch (a dau batch's journal entry is several MB) and hold the
  // old and the new buffer at once while it grows — the process's peak memory is at this moment.
  size_t bytes = kWriteBatchEntryOverhead * (3 + b.dead_letters.size());  // header, meta, journal
  for (const BatchWrites& w : b.writes) {
    for (const auto& [key, value] : w) {
      bytes += kWriteBatchEntryOverhead + key.size() + (value ? value->size() : 0);
    }
  }
  if (b.journal) bytes += b.journal->target.size() + b.journal->body.size();
  for (const std::string& line : b.dead_letters) bytes += line.size();
  // The store's kept buffer (Rocks::commit_batch) is replaced only when it is too small.
  rocksdb::WriteBatch* wb = &rocks_->commit_batch;
  if (wb->Data().capacity() < bytes) *wb = rocksdb::WriteBatch(bytes);
  wb->Clear();
  // The batch's writes, each family in key order (a BatchWrites is ordered): the memtable's skip
  // list then finds each insert's place from the previous one's.
  for (size_t i = 0; i < kStateColumnFamilies.size(); ++i) {
    rocksdb::ColumnFamilyHandle* h = cf(kStateColumnFamilies[i]);
    for (const auto& [key, value] : b.writes[i]) {
      rocksdb::Status s = value ? wb->Put(h, key, *value) : wb->Delete(h, key);
      if (!s.ok()) return FromRocks(s, "batch put");
    }
  }
  if (b.journal) {
    JournalEntry& e = *b.journal;
    e.seq = seq + needed;
    if (e.created_ms == 0) e.created_ms = NowMs();
    // The body goes into the write batch without an encoded copy of it first (it is the bulk
    // body of every document of the batch: megabytes).
    const std::string key = SeqKey(e.seq);
    const std::string header = EncodeJournalHeader(e);
    const rocksdb::Slice key_part(key);
    const rocksdb::Slice value_parts[2] = {rocksdb::Slice(header), rocksdb::Slice(e.body)};
    rocksdb::Status s = wb->Put(cf(kCfJournal), rocksdb::SliceParts(&key_part, 1),
                                rocksdb::SliceParts(value_parts, 2));
    if (!s.ok()) return FromRocks(s, "batch put");
    result.journal_seq = e.seq;
    ++needed;
  }
  RTDW_RETURN_IF_ERROR(
      PutDeadLetters(wb, b.dead_letters, seq + needed, b.resolve, drop_letters, &result));
  needed += b.dead_letters.size();
  std::vector<uint64_t> seqs;
  absl::Status written = WriteWithSeqs(wb, needed, sync_, &seqs);
  // The next commit clears the kept buffer before its first write; a spike's is not kept.
  if (wb->GetDataSize() > Rocks::kMaxKeptCommitBytes) *wb = rocksdb::WriteBatch();
  RTDW_RETURN_IF_ERROR(written);
  if (result.journal_seq) seqs.erase(seqs.begin());
  result.dead_letter_seqs = std::move(seqs);
  if (b.journal) result.journal = std::move(b.journal);
  return result;
}

absl::StatusOr<std::vector<uint64_t>> StateStore::CompleteJournal(
    uint64_t seq, const std::vector<std::string>& dead_letter_lines) {
  RTDW_RETURN_IF_ERROR(CheckWritable());
  absl::MutexLock lock(&seq_mu_);
  rocksdb::WriteBatch wb;
  rocksdb::Status s = wb.Delete(cf(kCfJournal), SeqKey(seq));
  if (!s.ok()) return FromRocks(s, "batch put");
  RTDW_RETURN_IF_ERROR(ResolveDeliveredDocuments(&wb, seq, dead_letter_lines));
  CommitResult ignored;
  RTDW_RETURN_IF_ERROR(PutDeadLetters(&wb, dead_letter_lines, next_seq_, {}, {}, &ignored));
  std::vector<uint64_t> seqs;
  RTDW_RETURN_IF_ERROR(
      WriteWithSeqs(&wb, dead_letter_lines.size(), sync_ && !dead_letter_lines.empty(), &seqs));
  return seqs;
}

absl::StatusOr<uint64_t> StateStore::AddDeadLetter(std::string_view json_line) {
  RTDW_RETURN_IF_ERROR(CheckWritable());
  absl::MutexLock lock(&seq_mu_);
  rocksdb::WriteBatch wb;
  CommitResult ignored;
  RTDW_RETURN_IF_ERROR(PutDeadLetters(&wb, {std::string(json_line)}, next_seq_, {}, {}, &ignored));
  std::vector<uint64_t> seqs;
  RTDW_RETURN_IF_ERROR(WriteWithSeqs(&wb, 1, sync_, &seqs));
  return seqs[0];
}

namespace {

std::string IdentityKey(const DeadLetterIdentity& id) {
  switch (id.kind) {
    case DeadLetterIdentity::kPosition:
      return state_keys::DeadLetterPositionKey(id.topic, id.partition, id.offset);
    case DeadLetterIdentity::kDocument:
      return state_keys::DeadLetterDocumentKey(id.index, id.id);
    case DeadLetterIdentity::kNone:
      break;
  }
  return std::string();
}

}  // namespace

absl::Status StateStore::DeleteLetterIn(rocksdb::WriteBatch* wb, uint64_t seq,
                                        std::string_view line) {
  rocksdb::Status s = wb->Delete(cf(kCfDeadLetter), SeqKey(seq));
  std::string key = IdentityKey(IdentifyDeadLetter(line));
  if (s.ok() && !key.empty()) {
    std::string v;
    rocksdb::Status g = rocks_->db->Get(rocksdb::ReadOptions(), cf(kCfDeadLetter), key, &v);
    if (g.ok() && v.size() == 8 && state_keys::GetBE64(v.data()) == seq) {
      s = wb->Delete(cf(kCfDeadLetter), key);
    } else if (!g.ok() && !g.IsNotFound()) {
      s = g;
    }
  }
  if (!s.ok()) return FromRocks(s, absl::StrCat("dead letters of ", path_));
  return absl::OkStatus();
}

absl::Status StateStore::PutDeadLetters(rocksdb::WriteBatch* wb,
                                        const std::vector<std::string>& lines, uint64_t first_seq,
                                        const std::vector<ResolveRange>& resolve,
                                        const std::vector<uint64_t>& drop, CommitResult* result) {
  rocksdb::ColumnFamilyHandle* h = cf(kCfDeadLetter);
  std::set<uint64_t> removed;  // kept letters deleted by this write
  for (uint64_t seq : drop) {
    std::string line;
    rocksdb::Status g = rocks_->db->Get(rocksdb::ReadOptions(), h, SeqKey(seq), &line);
    if (g.IsNotFound()) continue;
    if (!g.ok()) return FromRocks(g, absl::StrCat("read ", path_));
    RTDW_RETURN_IF_ERROR(DeleteLetterIn(wb, seq, line));
    removed.insert(seq);
  }
  std::vector<std::string> keys;  // identity keys of `lines` ("" = none)
  keys.reserve(lines.size());
  std::set<std::string> relettered;
  for (const auto& line : lines) {
    keys.push_back(IdentityKey(IdentifyDeadLetter(line)));
    if (!keys.back().empty()) relettered.insert(keys.back());
  }
  // Letters of records read again: deleted; counted resolved unless `lines` has a new verdict.
  std::set<std::string> index_deleted;
  for (const ResolveRange& r : resolve) {
    const std::string from = state_keys::DeadLetterPositionKey(r.topic, r.partition, r.first);
    const std::string to = state_keys::DeadLetterPositionKey(r.topic, r.partition, r.last);
    std::unique_ptr<rocksdb::Iterator> it(rocks_->db->NewIterator(state_internal::TotalOrder(), h));
    for (it->Seek(from); it->Valid() && it->key().compare(to) <= 0; it->Next()) {
      if (it->value().size() != 8) continue;
      const uint64_t seq = state_keys::GetBE64(it->value().data());
      rocksdb::Status s = wb->Delete(h, SeqKey(seq));
      if (s.ok()) s = wb->Delete(h, it->key());
      if (!s.ok()) return FromRocks(s, "batch delete");
      index_deleted.insert(it->key().ToString());
      if (removed.insert(seq).second) {
        if (relettered.count(it->key().ToString())) {
          ++result->dead_letters_replaced;
        } else {
          ++result->dead_letters_resolved;
        }
      }
    }
    if (!it->status().ok()) return FromRocks(it->status(), absl::StrCat("read ", path_));
  }
  std::map<std::string, uint64_t> written;  // identity key -> seq, in this write
  for (size_t i = 0; i < lines.size(); ++i) {
    const uint64_t seq = first_seq + i;
    rocksdb::Status s = wb->Put(h, SeqKey(seq), lines[i]);
    if (!s.ok()) return FromRocks(s, "batch put");
    const std::string& key = keys[i];
    if (key.empty()) continue;
    if (auto w = written.find(key); w != written.end()) {
      s = wb->Delete(h, SeqKey(w->second));  // an earlier letter of this write, same identity
    } else if (!index_deleted.count(key)) {
      std::string v;
      rocksdb::Status g = rocks_->db->Get(rocksdb::ReadOptions(), h, key, &v);
      if (g.ok() && v.size() == 8) {
        const uint64_t old = state_keys::GetBE64(v.data());
        s = wb->Delete(h, SeqKey(old));
        if (removed.insert(old).second) ++result->dead_letters_replaced;
      } else if (!g.ok() && !g.IsNotFound()) {
        return FromRocks(g, absl::StrCat("read ", path_));
      }
    }
    std::string v;
    state_keys::PutBE64(&v, seq);
    if (s.ok()) s = wb->Put(h, key, v);
    if (!s.ok()) return FromRocks(s, "batch put");
    written[key] = seq;
  }
  return absl::OkStatus();
}

absl::Status StateStore::ResolveDeliveredDocuments(rocksdb::WriteBatch* wb, uint64_t seq,
                                                   const std::vector<std::string>& rejected) {
  rocksdb::ColumnFamilyHandle* h = cf(kCfDeadLetter);
  const std::string prefix = {state_keys::kDeadLetterIndexTag, 'D'};
  {
    std::unique_ptr<rocksdb::Iterator> it(rocks_->db->NewIterator(state_internal::TotalOrder(), h));
    it->Seek(prefix);  // the common case: no es_rejected letter kept, nothing to read
    if (!it->status().ok()) return FromRocks(it->status(), absl::StrCat("read ", path_));
    if (!it->Valid() || !it->key().starts_with(prefix)) return absl::OkStatus();
  }
  std::string value;
  rocksdb::Status g = rocks_->db->Get(rocksdb::ReadOptions(), cf(kCfJournal), SeqKey(seq), &value);
  if (g.IsNotFound()) return absl::OkStatus();
  if (!g.ok()) return FromRocks(g, absl::StrCat("read ", path_));
  auto entry = DecodeJournalValue(seq, value);
  if (!entry.ok()) return absl::OkStatus();  // not ours to judge here; the delete goes on
  auto actions = ParseJournalActions(entry->body);
  if (!actions.ok()) return absl::OkStatus();
  std::set<std::string> refused;
  for (const auto& line : rejected) refused.insert(IdentityKey(IdentifyDeadLetter(line)));
  for (const auto& act : *actions) {
    const std::string key = state_keys::DeadLetterDocumentKey(act.index, act.id);
    if (refused.count(key)) continue;
    std::string v;
    rocksdb::Status r = rocks_->db->Get(rocksdb::ReadOptions(), h, key, &v);
    if (r.IsNotFound() || v.size() != 8) continue;
    if (!r.ok()) return FromRocks(r, absl::StrCat("read ", path_));
    rocksdb::Status d = wb->Delete(h, SeqKey(state_keys::GetBE64(v.data())));
    if (d.ok()) d = wb->Delete(h, key);
    if (!d.ok()) return FromRocks(d, "batch delete");
  }
  return absl::OkStatus();
}

absl::Status StateStore::IndexDeadLetters() {
  constexpr std::string_view kMetaIndexed = "deadletter_index";
  RTDW_ASSIGN_OR_RETURN(std::optional<std::string> done, GetMeta(kMetaIndexed));
  if (done == "1") return absl::OkStatus();
  rocksdb::ColumnFamilyHandle* h = cf(kCfDeadLetter);
  rocksdb::WriteBatch wb;
  std::map<std::string, uint64_t> seen;  // identity -> the newest seq
  std::unique_ptr<rocksdb::Iterator> it(rocks_->db->NewIterator(state_internal::TotalOrder(), h));
  for (it->SeekToFirst(); it->Valid() && IsLetterKey(it->key()); it->Next()) {
    const uint64_t seq = state_keys::GetBE64(it->key().data());
    std::string key = IdentityKey(IdentifyDeadLetter(View(it->value())));
    if (key.empty()) continue;
    auto [w, inserted] = seen.try_emplace(key, seq);
    if (!inserted) {  // an older duplicate (a reprocess before the index existed): the newer stays
      wb.Delete(h, SeqKey(w->second)).PermitUncheckedError();
      w->second = seq;
    }
  }
  if (!it->status().ok()) return FromRocks(it->status(), absl::StrCat("read ", path_));
  for (const auto& [key, seq] : seen) {
    std::string v;
    state_keys::PutBE64(&v, seq);
    wb.Put(h, key, v).PermitUncheckedError();
  }
  wb.Put(cf(kCfMeta), std::string(kMetaIndexed), "1").PermitUncheckedError();
  rocksdb::WriteOptions wo;
  wo.sync = true;
  rocksdb::Status s = rocks_->db->Write(wo, &wb);
  if (!s.ok()) return FromRocks(s, absl::StrCat("index the dead letters of ", path_));
  return absl::OkStatus();
}

absl::StatusOr<uint64_t> StateStore::RequeueDeadLetters(const std::vector<uint64_t>& seqs,
                                                        JournalEntry entry) {
  RTDW_RETURN_IF_ERROR(CheckWritable());
  for (uint64_t seq : seqs) {
    std::string v;
    rocksdb::Status s = rocks_->db->Get(rocksdb::ReadOptions(), cf(kCfDeadLetter), SeqKey(seq), &v);
    if (s.IsNotFound()) return absl::NotFoundError(absl::StrCat("no dead letter ", seq));
    if (!s.ok()) return FromRocks(s, absl::StrCat("read ", path_));
  }
  absl::MutexLock lock(&seq_mu_);
  rocksdb::WriteBatch wb;
  entry.seq = next_seq_;
  if (entry.created_ms == 0) entry.created_ms = NowMs();
  rocksdb::Status s = wb.Put(cf(kCfJournal), SeqKey(entry.seq), EncodeJournalValue(entry));
  if (!s.ok()) return FromRocks(s, "batch put");
  CommitResult ignored;
  RTDW_RETURN_IF_ERROR(PutDeadLetters(&wb, {}, next_seq_, {}, seqs, &ignored));
  std::vector<uint64_t> out;
  RTDW_RETURN_IF_ERROR(WriteWithSeqs(&wb, 1, sync_, &out));
  return out[0];
}

}  // namespace rtdw
