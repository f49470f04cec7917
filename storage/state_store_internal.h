// Private to storage/: the pieces the state store's source files share (storage/state_store.h is
// the interface). The store is split by purpose:
//   state_options.cc   RocksDB tuning: the shared block cache, column family and DB options, the
//                      info log
//   state_store.cc     the state dir, opening (atomic creation) and closing
//   state_meta.cc      the `meta` family: the guards checked at open, the fingerprint
//   pending_batch.cc   PendingBatch: one transaction's writes, and reads overlaid with them
//   state_commit.cc    Commit and every other seq-allocating write; the dead-letter index
//   state_access.cc    reads and single writes outside a batch; statistics
//   state_backup.cc    backups (BackupEngine) and restore
#ifndef RTDW_STORAGE_STATE_STORE_INTERNAL_H_
#define RTDW_STORAGE_STATE_STORE_INTERNAL_H_

#include <array>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/btree_map.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "core/journal_entry.h"
#include "core/status_util.h"
#include "rocksdb/cache.h"
#include "rocksdb/db.h"
#include "rocksdb/options.h"
#include "rocksdb/slice_transform.h"
#include "rocksdb/write_batch.h"
#include "rocksdb/write_buffer_manager.h"
#include "storage/state_keys.h"
#include "storage/state_store.h"

namespace rtdw {

// A block cache and the write-buffer manager charging memtables to it (NewStateCache).
class StateCache {
 public:
  std::shared_ptr<rocksdb::Cache> cache;
  std::shared_ptr<rocksdb::WriteBufferManager> wbm;
  size_t bytes = 0;
};

// The open database. Written by Open and Close only; read by every other method.
struct StateStore::Rocks {
  std::shared_ptr<StateCache> cache;
  std::unique_ptr<rocksdb::DB> db;
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  std::map<std::string, rocksdb::ColumnFamilyHandle*, std::less<>> by_name;
  // A commit failed (disk full, I/O error): RocksDB refuses every write from then on (its
  // background error) until DB::Resume(), which the next commit calls first.
  std::atomic<bool> write_failed{false};
  absl::Mutex write_error_mu;
  // What the failed write said (a full disk), for the next error.
  std::string write_error ABSL_GUARDED_BY(write_error_mu);
  // What CommitBatch writes (the batch's writes, its journal entry, dead letters). Used only
  // under the store's seq_mu_; cleared, not freed, between commits, so that a job's commits do
  // not allocate (and page in) a buffer the size of their journal entry each time. One that
  // grew past kMaxKeptCommitBytes is freed after its write.
  rocksdb::WriteBatch commit_batch;
  static constexpr size_t kMaxKeptCommitBytes = size_t{64} << 20;
};

namespace state_internal {

using state_keys::DecodeSeqKey;
using state_keys::SeqKey;

inline int64_t NowMs() { return absl::ToUnixMillis(absl::Now()); }

inline std::string RocksText(const rocksdb::Status& s) { return s.ToString(); }

// A RocksDB failure as an absl::Status whose message names what was done and where.
inline absl::Status FromRocks(const rocksdb::Status& s, std::string_view what) {
  std::string msg = absl::StrCat(ToAbsl(what), ": ", RocksText(s));
  if (s.IsCorruption()) return absl::DataLossError(msg);
  if (s.IsNotFound()) return absl::NotFoundError(msg);
  if (s.IsNoSpace()) return absl::ResourceExhaustedError(msg);
  if (s.IsBusy() || s.IsTimedOut() || s.IsTryAgain()) return absl::UnavailableError(msg);
  if (s.IsInvalidArgument()) return absl::InvalidArgumentError(msg);
  if (s.IsNotSupported()) return absl::UnimplementedError(msg);
  return absl::InternalError(msg);
}

inline bool StartsWith(const rocksdb::Slice& key, std::string_view prefix) {
  // (An empty prefix may have a null data(): memcmp must not see it, even for 0 bytes.)
  return prefix.empty() || (key.size() >= prefix.size() &&
                            std::memcmp(key.data(), prefix.data(), prefix.size()) == 0);
}

inline std::string_view View(const rocksdb::Slice& s) { return {s.data(), s.size()}; }

// Read options of every scan but a join lookup: key order over the whole family. The `join`
// family has a prefix extractor (one order's rows, JoinOrderPrefixOf); without total_order_seek
// a seek there would be a prefix seek, allowed to skip keys outside the seek key's prefix.
inline rocksdb::ReadOptions TotalOrder() {
  rocksdb::ReadOptions o;
  o.total_order_seek = true;
  return o;
}

// Read options of a lookup of one order's join rows: a prefix seek (the memtables' and the
// table files' prefix bloom filters skip the ones without the order); the iterator ends at the
// last key of the seek key's prefix.
inline rocksdb::ReadOptions OrderPrefixSeek() {
  rocksdb::ReadOptions o;
  o.prefix_same_as_start = true;
  return o;
}

inline absl::Status CheckPartition(int32_t partition) {
  if (partition < 0) {
    return absl::InvalidArgumentError(absl::StrCat("partition ", partition, " is negative"));
  }
  return absl::OkStatus();
}

inline absl::Status CheckId(std::string_view what, std::string_view v, bool allow_empty = false) {
  if (v.empty() && !allow_empty)
    return absl::InvalidArgumentError(absl::StrCat(ToAbsl(what), " is empty"));
  if (v.find('\0') != std::string_view::npos) {
    return absl::InvalidArgumentError(absl::StrCat(ToAbsl(what), " contains a NUL byte"));
  }
  return absl::OkStatus();
}

inline absl::Status CheckDay(DayNumber day) {
  if (!ValidDay(day))
    return absl::InvalidArgumentError(absl::StrCat("day ", day, " is not yyyymmdd"));
  return absl::OkStatus();
}

// `meta` names of a partition's watermark and of an input topic partition's.
inline std::string WatermarkName(int32_t partition) {
  return absl::StrCat("watermark.", partition);
}
inline std::string InputWatermarkName(std::string_view topic, int32_t partition) {
  return absl::StrCat("watermark.", ToAbsl(topic), ".", partition);
}

// A dead letter's key (BE64 seq), not one of the index after them.
inline bool IsLetterKey(std::string_view key) {
  return key.size() == 8 && key[0] != state_keys::kDeadLetterIndexTag;
}
inline bool IsLetterKey(const rocksdb::Slice& key) { return IsLetterKey(View(key)); }

// Calls fn(key, value) for every key of `h` starting with `prefix`, in key order, until it
// returns false.
template <typename Fn>
absl::Status ScanPrefix(rocksdb::DB* db, rocksdb::ColumnFamilyHandle* h, std::string_view prefix,
                        Fn fn) {
  std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(TotalOrder(), h));
  for (it->Seek(rocksdb::Slice(prefix.data(), prefix.size()));
       it->Valid() && StartsWith(it->key(), prefix); it->Next()) {
    if (!fn(View(it->key()), View(it->value()))) break;
  }
  if (!it->status().ok()) return FromRocks(it->status(), "scan");
  return absl::OkStatus();
}

// ---- state_options.cc
// Options of column family `name` (one of kStateColumnFamilies) on `cache`.
rocksdb::ColumnFamilyOptions CfOptions(const StateCache& cache, std::string_view name);
// The join family's prefix extractor: a join row key's order prefix
// (state_keys::JoinOrderPrefixOf); any other key is its own prefix.
std::shared_ptr<const rocksdb::SliceTransform> JoinOrderPrefixExtractor();
rocksdb::DBOptions DbOptions(const StateCache& cache);
// The info logger of a writable store at `dir` (<dir>/LOG, the previous one kept as LOG.old);
// null (RocksDB's own) when LOG cannot be opened.
std::shared_ptr<rocksdb::Logger> OpenInfoLog(const std::string& dir);

// ---- state_store.cc
// fsync(2) of a directory (after a rename in it). Best effort.
void FsyncDir(const std::string& dir);

}  // namespace state_internal

// One column family's writes in a pending batch, by key: the value, or nullopt for a delete; the
// last write of a key replaces the earlier ones (as a WriteBatchWithIndex with overwrite_key).
using BatchWrites = absl::btree_map<std::string, std::optional<std::string>>;

// A column family's committed keys overlaid with a batch's writes, in key order: the batch's
// value where it wrote the key, nothing where it deleted it, the committed value elsewhere. The
// batch's writes must not change while it is used.
class OverlayIterator {
 public:
  OverlayIterator(const BatchWrites* writes, std::unique_ptr<rocksdb::Iterator> base)
      : writes_(writes), owned_(std::move(base)), base_(owned_.get()) {}
  // Over a base iterator the caller keeps (alive and unused elsewhere while this one is used).
  OverlayIterator(const BatchWrites* writes, rocksdb::Iterator* base)
      : writes_(writes), base_(base) {}
  void Seek(std::string_view target) {
    base_->Seek(rocksdb::Slice(target.data(), target.size()));
    if (writes_ != nullptr) at_ = writes_->lower_bound(ToAbsl(target));
    Settle();
  }
  bool Valid() const { return from_base_ || from_writes_; }
  void Next() {
    if (from_base_) {
      base_->Next();
    } else {
      ++at_;
    }
    Settle();
  }
  rocksdb::Slice key() const { return from_base_ ? base_->key() : rocksdb::Slice(at_->first); }
  rocksdb::Slice value() const {
    return from_base_ ? base_->value() : rocksdb::Slice(*at_->second);
  }
  rocksdb::Status status() const { return base_->status(); }

 private:
  // Positions on the smaller of the two current keys, skipping committed keys the batch wrote
  // and the batch's deletes.
  void Settle() {
    from_base_ = from_writes_ = false;
    while (true) {
      const bool w = writes_ != nullptr && at_ != writes_->end();
      const bool b = base_->Valid();
      if (w && b) {
        const int c = base_->key().compare(rocksdb::Slice(at_->first));
        if (c < 0) {
          from_base_ = true;
          return;
        }
        if (c == 0) {  // the batch's write (or delete) replaces the committed value
          base_->Next();
          continue;
        }
      } else if (b) {
        from_base_ = true;
        return;
      } else if (!w) {
        return;
      }
      if (at_->second) {
        from_writes_ = true;
        return;
      }
      ++at_;  // deleted by the batch
    }
  }

  const BatchWrites* writes_;
  std::unique_ptr<rocksdb::Iterator> owned_;
  rocksdb::Iterator* base_;
  BatchWrites::const_iterator at_;
  bool from_base_ = false;
  bool from_writes_ = false;
};

// A PendingBatch's state: its writes per column family (read through by its lookups) and what
// Commit() turns into seq-keyed entries. The writes are ordered maps, not a RocksDB
// WriteBatchWithIndex, whose skip-list index cost two searches per put and one per lookup with a
// comparator reached through the batch's buffer (a third of a dau record's state work, and more
// than half of an order-wide row's); Commit() writes them into one WriteBatch, each family in
// key order (the memtable then finds each insert's place from the previous one's).
struct PendingBatch::Impl {
  explicit Impl(StateStore* s) : store(s) {}
  StateStore* store;
  std::array<BatchWrites, kStateColumnFamilies.size()> writes;  // kStateColumnFamilies order
  std::optional<JournalEntry> journal;
  std::vector<std::string> dead_letters;
  std::vector<StateStore::ResolveRange> resolve;
  size_t mutations = 0;
  // JoinOrderIter's database iterator and the sequence number it reads at.
  std::unique_ptr<rocksdb::Iterator> join_seek;
  rocksdb::SequenceNumber join_seek_seq = 0;

  rocksdb::DB* db() const { return store->rocks_->db.get(); }
  rocksdb::ColumnFamilyHandle* cf(std::string_view name) const { return store->cf(name); }
  BatchWrites& WritesOf(std::string_view cf_name) {
    for (size_t i = 0; i < kStateColumnFamilies.size(); ++i) {
      if (kStateColumnFamilies[i] == cf_name) return writes[i];
    }
    std::abort();  // only the store's own family names are passed
  }

  void Put(std::string_view cf_name, std::string key, std::string value) {
    WritesOf(cf_name).insert_or_assign(std::move(key), std::move(value));
    ++mutations;
  }
  void Delete(std::string_view cf_name, std::string key) {
    WritesOf(cf_name).insert_or_assign(std::move(key), std::nullopt);
    ++mutations;
  }
  // Batch-then-committed read of one key.
  absl::StatusOr<std::optional<std::string>> Get(std::string_view cf_name, const std::string& key) {
    const BatchWrites& w = WritesOf(cf_name);
    if (auto it = w.find(key); it != w.end()) return it->second;
    std::string value;
    rocksdb::Status s = db()->Get(rocksdb::ReadOptions(), cf(cf_name), key, &value);
    if (s.IsNotFound()) return std::optional<std::string>();
    if (!s.ok())
      return state_internal::FromRocks(s,
                                       absl::StrCat("read ", store->path(), " ", ToAbsl(cf_name)));
    return std::optional<std::string>(std::move(value));
  }
  // The family's keys in key order from a Seek on.
  std::unique_ptr<OverlayIterator> Iter(std::string_view cf_name) {
    return std::make_unique<OverlayIterator>(
        &WritesOf(cf_name), std::unique_ptr<rocksdb::Iterator>(
                                db()->NewIterator(state_internal::TotalOrder(), cf(cf_name))));
  }
  // The join family's keys of one order (the seek key's order prefix, OrderPrefixSeek), then the
  // batch's writes. One database iterator serves the batch's lookups: created at the first one
  // and again whenever the database has been written since (its sequence number moved: a commit,
  // a delivered journal entry deleted, a partition's rows dropped), so every lookup sees what a
  // new iterator would. (A new iterator per lookup was half of a lookup's instructions.)
  std::unique_ptr<OverlayIterator> JoinOrderIter() {
    const rocksdb::SequenceNumber now = db()->GetLatestSequenceNumber();
    if (join_seek == nullptr || join_seek_seq != now) {
      join_seek.reset();  // before the new one: the old one's pinned memtables go first
      join_seek.reset(db()->NewIterator(state_internal::OrderPrefixSeek(), cf(kCfJoin)));
      join_seek_seq = now;
    }
    return std::make_unique<OverlayIterator>(&WritesOf(kCfJoin), join_seek.get());
  }
  void Clear() {
    join_seek.reset();
    for (BatchWrites& w : writes) w.clear();
    journal.reset();
    dead_letters.clear();
    resolve.clear();
    mutations = 0;
  }
};
}  // namespace rtdw

#endif  // RTDW_STORAGE_STATE_STORE_INTERNAL_H_
