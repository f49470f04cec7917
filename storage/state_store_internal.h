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
#include "absl/container/flat_hash_map.h"
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
#include "rocksdb/utilities/write_batch_with_index.h"
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
  std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(rocksdb::ReadOptions(), h));
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
rocksdb::DBOptions DbOptions(const StateCache& cache);
// The info logger of a writable store at `dir` (<dir>/LOG, the previous one kept as LOG.old);
// null (RocksDB's own) when LOG cannot be opened.
std::shared_ptr<rocksdb::Logger> OpenInfoLog(const std::string& dir);

// ---- state_store.cc
// fsync(2) of a directory (after a rename in it). Best effort.
void FsyncDir(const std::string& dir);

}  // namespace state_internal

// A PendingBatch's state: its indexed WriteBatch (read through by its lookups), its de-dup writes
// and what Commit() turns into seq-keyed entries.
struct PendingBatch::Impl {
  explicit Impl(StateStore* s)
      : store(s),
        wbwi(rocksdb::BytewiseComparator(), /*reserved_bytes=*/0, /*overwrite_key=*/true) {}
  StateStore* store;
  rocksdb::WriteBatchWithIndex wbwi;
  // The batch's `dedup` writes by key: the encoded value, or nullopt for a delete; the last write
  // of a key replaces the earlier ones. Kept out of `wbwi`, whose index costs two skip-list
  // searches per put and one per lookup (a third of a dau record's state work): DedupLookup
  // reads this map, then the database; Commit() appends the entries to the WriteBatch. Every
  // write of the family goes through PutDedup / DeleteDedup, so nothing of it is in `wbwi`.
  absl::flat_hash_map<std::string, std::optional<std::string>> dedup;
  std::optional<JournalEntry> journal;
  std::vector<std::string> dead_letters;
  std::vector<StateStore::ResolveRange> resolve;
  size_t mutations = 0;

  rocksdb::DB* db() const { return store->rocks_->db.get(); }
  rocksdb::ColumnFamilyHandle* cf(std::string_view name) const { return store->cf(name); }

  absl::Status Put(std::string_view cf_name, const std::string& key, const std::string& value) {
    rocksdb::Status s = wbwi.Put(cf(cf_name), key, value);
    if (!s.ok()) return state_internal::FromRocks(s, "batch put");
    ++mutations;
    return absl::OkStatus();
  }
  absl::Status Delete(std::string_view cf_name, const std::string& key) {
    rocksdb::Status s = wbwi.Delete(cf(cf_name), key);
    if (!s.ok()) return state_internal::FromRocks(s, "batch delete");
    ++mutations;
    return absl::OkStatus();
  }
  // Batch-then-committed read of one key.
  absl::StatusOr<std::optional<std::string>> Get(std::string_view cf_name, const std::string& key) {
    std::string value;
    rocksdb::Status s =
        wbwi.GetFromBatchAndDB(db(), rocksdb::ReadOptions(), cf(cf_name), key, &value);
    if (s.IsNotFound()) return std::optional<std::string>();
    if (!s.ok())
      return state_internal::FromRocks(s,
                                       absl::StrCat("read ", store->path(), " ", ToAbsl(cf_name)));
    return std::optional<std::string>(std::move(value));
  }
  std::unique_ptr<rocksdb::Iterator> Iter(std::string_view cf_name) {
    rocksdb::ColumnFamilyHandle* h = cf(cf_name);
    return std::unique_ptr<rocksdb::Iterator>(
        wbwi.NewIteratorWithBase(h, db()->NewIterator(rocksdb::ReadOptions(), h)));
  }
};
}  // namespace rtdw

#endif  // RTDW_STORAGE_STATE_STORE_INTERNAL_H_
