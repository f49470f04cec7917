#include "storage/state_store.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <set>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "core/dead_letter.h"
#include "core/status_util.h"
#include "rocksdb/cache.h"
#include "rocksdb/convenience.h"
#include "rocksdb/db.h"
#include "rocksdb/filter_policy.h"
#include "rocksdb/options.h"
#include "rocksdb/table.h"
#include "rocksdb/utilities/backup_engine.h"
#include "rocksdb/utilities/write_batch_with_index.h"
#include "rocksdb/write_batch.h"
#include "rocksdb/write_buffer_manager.h"

namespace fs = std::filesystem;

namespace rtdw {

class StateCache {
 public:
  std::shared_ptr<rocksdb::Cache> cache;
  std::shared_ptr<rocksdb::WriteBufferManager> wbm;
  size_t bytes = 0;
};

std::shared_ptr<StateCache> NewStateCache(int64_t block_cache_mb) {
  auto c = std::make_shared<StateCache>();
  c->bytes = static_cast<size_t>(std::max<int64_t>(block_cache_mb, 8)) << 20;
  c->cache = rocksdb::NewLRUCache(c->bytes, /*num_shard_bits=*/-1,
                                  /*strict_capacity_limit=*/false,
                                  /*high_pri_pool_ratio=*/0.5);
  // Memtables are charged to the block cache; together they may use at most half of it before
  // a flush is forced.
  c->wbm = std::make_shared<rocksdb::WriteBufferManager>(c->bytes / 2, c->cache,
                                                         /*allow_stall=*/false);
  return c;
}

struct StateStore::Rocks {
  std::shared_ptr<StateCache> cache;
  std::unique_ptr<rocksdb::DB> db;
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  std::map<std::string, rocksdb::ColumnFamilyHandle*, std::less<>> by_name;
  // A commit failed (disk full, I/O error): RocksDB refuses every write from then on (its
  // background error) until DB::Resume(), which the next commit calls first.
  std::atomic<bool> write_failed{false};
  std::mutex write_error_mu;
  std::string write_error;  // what the failed write said (a full disk), for the next error
};

namespace {

using state_keys::DecodeSeqKey;
using state_keys::SeqKey;

int64_t NowMs() { return absl::ToUnixMillis(absl::Now()); }

std::string RocksText(const rocksdb::Status& s) { return s.ToString(); }

// A RocksDB failure as an absl::Status whose message names what was done and where.
absl::Status FromRocks(const rocksdb::Status& s, std::string_view what) {
  std::string msg = absl::StrCat(ToAbsl(what), ": ", RocksText(s));
  if (s.IsCorruption()) return absl::DataLossError(msg);
  if (s.IsNotFound()) return absl::NotFoundError(msg);
  if (s.IsNoSpace()) return absl::ResourceExhaustedError(msg);
  if (s.IsBusy() || s.IsTimedOut() || s.IsTryAgain()) return absl::UnavailableError(msg);
  if (s.IsInvalidArgument()) return absl::InvalidArgumentError(msg);
  if (s.IsNotSupported()) return absl::UnimplementedError(msg);
  return absl::InternalError(msg);
}

bool StartsWith(const rocksdb::Slice& key, std::string_view prefix) {
  // (An empty prefix may have a null data(): memcmp must not see it, even for 0 bytes.)
  return prefix.empty() || (key.size() >= prefix.size() &&
                            std::memcmp(key.data(), prefix.data(), prefix.size()) == 0);
}

std::string_view View(const rocksdb::Slice& s) { return {s.data(), s.size()}; }

absl::Status CheckPartition(int32_t partition) {
  if (partition < 0) {
    return absl::InvalidArgumentError(absl::StrCat("partition ", partition, " is negative"));
  }
  return absl::OkStatus();
}

absl::Status CheckId(std::string_view what, std::string_view v, bool allow_empty = false) {
  if (v.empty() && !allow_empty)
    return absl::InvalidArgumentError(absl::StrCat(ToAbsl(what), " is empty"));
  if (v.find('\0') != std::string_view::npos) {
    return absl::InvalidArgumentError(absl::StrCat(ToAbsl(what), " contains a NUL byte"));
  }
  return absl::OkStatus();
}

absl::Status CheckDay(DayNumber day) {
  if (!ValidDay(day))
    return absl::InvalidArgumentError(absl::StrCat("day ", day, " is not yyyymmdd"));
  return absl::OkStatus();
}

rocksdb::CompressionType PickCompression() {
  auto supported = rocksdb::GetSupportedCompressions();
  for (auto c : {rocksdb::kLZ4Compression, rocksdb::kSnappyCompression}) {
    if (std::find(supported.begin(), supported.end(), c) != supported.end()) return c;
  }
  return rocksdb::kNoCompression;
}

rocksdb::ColumnFamilyOptions CfOptions(const StateCache& cache, std::string_view name) {
  rocksdb::ColumnFamilyOptions o;
  rocksdb::BlockBasedTableOptions t;
  t.block_cache = cache.cache;
  t.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
  t.whole_key_filtering = true;
  t.cache_index_and_filter_blocks = true;
  t.cache_index_and_filter_blocks_with_high_priority = true;
  t.pin_l0_filter_and_index_blocks_in_cache = true;
  t.optimize_filters_for_memory = true;
  t.format_version = 5;
  o.table_factory.reset(rocksdb::NewBlockBasedTableFactory(t));
  // Modest memtables: the busy families get 1/16 of the cache (4..32 MB), the small ones 2 MB.
  bool busy = name == kCfDedup || name == kCfJoin || name == kCfJournal;
  size_t wb = busy ? std::clamp<size_t>(cache.bytes / 16, 4 << 20, 32 << 20) : 2 << 20;
  o.write_buffer_size = wb;
  o.max_write_buffer_number = 3;
  o.min_write_buffer_number_to_merge = 1;
  o.target_file_size_base = 32 << 20;
  o.max_bytes_for_level_base = 128 << 20;
  o.level_compaction_dynamic_level_bytes = true;
  o.compression = PickCompression();
  if (name == kCfDedup) {
    // Almost every de-dup lookup misses (a new mid): a memtable bloom filter answers those
    // without walking the skip list (profile: 18% of dau's CPU was memtable lookups).
    o.memtable_prefix_bloom_size_ratio = 0.1;
    o.memtable_whole_key_filtering = true;
  }
  return o;
}

// RocksDB's info log (<store>/LOG, the previous one kept as LOG.old) written with stdio.
// RocksDB 7.8's own file logger (EnvLogger) keeps using its file writer after a failed write and
// asserts on it: on a full disk, Debian's librocksdb (built with assertions) aborts the daemon at
// the next info line (seen at shutdown). This one drops a line it cannot write.
class StdioInfoLogger : public rocksdb::Logger {
 public:
  explicit StdioInfoLogger(FILE* f) : rocksdb::Logger(rocksdb::InfoLogLevel::INFO_LEVEL), f_(f) {}
  ~StdioInfoLogger() override { (void)CloseImpl(); }
  using rocksdb::Logger::Logv;
  void Logv(const char* format, va_list ap) override {
    char buf[4096];
    struct timeval now;
    gettimeofday(&now, nullptr);
    struct tm t;
    localtime_r(&now.tv_sec, &t);
    int n = snprintf(buf, sizeof buf, "%04d/%02d/%02d-%02d:%02d:%02d.%06ld ", t.tm_year + 1900,
                     t.tm_mon + 1, t.tm_mday, t.tm_hour, t.tm_min, t.tm_sec,
                     static_cast<long>(now.tv_usec));
    va_list copy;
    va_copy(copy, ap);
    int m = vsnprintf(buf + n, sizeof buf - n - 1, format, copy);
    va_end(copy);
    size_t len = static_cast<size_t>(n) + std::clamp<size_t>(m < 0 ? 0 : m, 0, sizeof buf - n - 2);
    if (buf[len - 1] != '\n') buf[len++] = '\n';
    std::lock_guard<std::mutex> lock(mu_);
    if (f_ == nullptr) return;
    if (fwrite(buf, 1, len, f_) != len || fflush(f_) != 0) clearerr(f_);
  }

 protected:
  rocksdb::Status CloseImpl() override {
    std::lock_guard<std::mutex> lock(mu_);
    if (f_ != nullptr) fclose(f_);
    f_ = nullptr;
    return rocksdb::Status::OK();
  }

 private:
  std::mutex mu_;
  FILE* f_;
};

// The info logger of a writable store at `dir`; null (RocksDB's own) when LOG cannot be opened.
std::shared_ptr<rocksdb::Logger> OpenInfoLog(const std::string& dir) {
  const std::string log = dir + "/LOG";
  std::error_code ec;
  if (std::filesystem::exists(log, ec)) std::filesystem::rename(log, dir + "/LOG.old", ec);
  FILE* f = fopen(log.c_str(), "we");
  if (f == nullptr) return nullptr;
  return std::make_shared<StdioInfoLogger>(f);
}

rocksdb::DBOptions DbOptions(const StateCache& cache) {
  rocksdb::DBOptions o;
  o.create_missing_column_families = true;
  o.write_buffer_manager = cache.wbm;
  o.max_background_jobs = 2;
  o.paranoid_checks = true;
  o.keep_log_file_num = 3;
  o.max_log_file_size = 8 << 20;
  // Small families would otherwise pin old WAL files for a long time.
  o.max_total_wal_size = 64 << 20;
  return o;
}

// Reads /proc/locks for a POSIX lock on `file` held by a process other than this one. Opens
// nothing: closing a descriptor of the LOCK file would drop this process's own POSIX locks on it.
std::optional<pid_t> LockHolderOf(const std::string& file) {
  struct stat st;
  if (::stat(file.c_str(), &st) != 0) return std::nullopt;
  std::ifstream in("/proc/locks");
  std::string line;
  while (std::getline(in, line)) {
    // "1: POSIX  ADVISORY  WRITE 12345 fd:01:1234567 0 EOF"  (blocked waiters have "->")
    if (line.find("->") != std::string::npos) continue;
    std::istringstream ls(line);
    std::string n, kind, mode, rw, pid_s, dev_ino;
    if (!(ls >> n >> kind >> mode >> rw >> pid_s >> dev_ino)) continue;
    size_t last = dev_ino.rfind(':');
    if (last == std::string::npos) continue;
    unsigned long long ino = std::strtoull(dev_ino.c_str() + last + 1, nullptr, 10);
    if (ino != static_cast<unsigned long long>(st.st_ino)) continue;
    pid_t pid = static_cast<pid_t>(std::atol(pid_s.c_str()));
    if (pid > 0 && pid != ::getpid()) return pid;
  }
  return std::nullopt;
}

absl::Status OpenError(const std::string& path, const std::string& job, const rocksdb::Status& s) {
  std::string text = RocksText(s);
  if (s.IsIOError() && (absl::StrContains(text, "/LOCK") || absl::StrContains(text, "lock "))) {
    std::string who;
    if (auto pid = LockHolderOf(path + "/LOCK")) who = absl::StrCat(" (pid ", *pid, ")");
    return absl::UnavailableError(
        absl::StrCat("state store ", path, " is locked by another process", who,
                     " — a running rtdwd holds it; stop it first (RocksDB: ", text, ")"));
  }
  std::string advice = absl::StrCat(
      "; it was left untouched: restore a backup (rtdw backup restore --from DIR --job ", job,
      ") or move it aside to start empty");
  if (s.IsCorruption()) {
    return absl::DataLossError(
        absl::StrCat("state store ", path, " is corrupt (RocksDB: ", text, ")", advice));
  }
  return absl::FailedPreconditionError(absl::StrCat(
      "state store ", path, " exists but cannot be opened (RocksDB: ", text, ")", advice));
}

void FsyncDir(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
}

// A store being created lives in `<root>/.<job>.creating-<pid>-<n>` until it is complete.
constexpr char kCreatingInfix[] = ".creating-";

// Removes what a creation killed midway left behind: `.<job>.creating-<pid>-*` directories whose
// process is gone (a live one may be creating the store right now). Best effort.
void RemoveCreationLeftovers(const std::string& root, const std::string& job) {
  std::error_code ec;
  const std::string prefix = absl::StrCat(".", job, kCreatingInfix);
  fs::directory_iterator it(root, ec);
  if (ec) return;
  for (const auto& entry : it) {
    std::string name = entry.path().filename().string();
    if (!absl::StartsWith(name, prefix)) continue;
    std::string rest = name.substr(prefix.size());
    int pid = 0;
    if (!absl::SimpleAtoi(rest.substr(0, rest.find('-')), &pid) || pid <= 0) continue;
    if (pid != ::getpid() && ::kill(pid, 0) != 0 && errno == ESRCH) {
      std::error_code e2;
      fs::remove_all(entry.path(), e2);
    }
  }
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Directory helpers

std::string StorePath(std::string_view root, std::string_view job) {
  std::string p(root);
  while (p.size() > 1 && p.back() == '/') p.pop_back();
  return absl::StrCat(p, "/", std::string(job));
}

bool ValidJobName(std::string_view job) {
  if (job.empty() || job.size() > 200 || job[0] == '.') return false;
  for (char c : job) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

absl::StatusOr<std::vector<std::string>> ListJobStores(const std::string& root) {
  std::error_code ec;
  auto st = fs::status(root, ec);
  if (ec || !fs::exists(st)) {
    return absl::NotFoundError(absl::StrCat("state dir ", root, " does not exist"));
  }
  if (!fs::is_directory(st)) {
    return absl::FailedPreconditionError(absl::StrCat("state dir ", root, " is not a directory"));
  }
  std::vector<std::string> jobs;
  fs::directory_iterator it(root, ec);
  if (ec) {
    return absl::PermissionDeniedError(
        absl::StrCat("cannot list state dir ", root, ": ", ec.message()));
  }
  for (const auto& entry : it) {
    std::string name = entry.path().filename().string();
    if (!ValidJobName(name)) continue;
    std::error_code e2;
    if (!entry.is_directory(e2) || fs::is_empty(entry.path(), e2)) continue;
    jobs.push_back(name);
  }
  std::sort(jobs.begin(), jobs.end());
  return jobs;
}

std::optional<pid_t> StoreLockHolder(const std::string& store_path) {
  return LockHolderOf(store_path + "/LOCK");
}

// ---------------------------------------------------------------------------------------------
// PendingBatch

struct PendingBatch::Impl {
  explicit Impl(StateStore* s)
      : store(s),
        wbwi(rocksdb::BytewiseComparator(), /*reserved_bytes=*/0, /*overwrite_key=*/true) {}
  StateStore* store;
  rocksdb::WriteBatchWithIndex wbwi;
  std::optional<JournalEntry> journal;
  std::vector<std::string> dead_letters;
  std::vector<StateStore::ResolveRange> resolve;
  size_t mutations = 0;

  rocksdb::DB* db() const { return store->rocks_->db.get(); }
  rocksdb::ColumnFamilyHandle* cf(std::string_view name) const { return store->cf(name); }

  absl::Status Put(std::string_view cf_name, const std::string& key, const std::string& value) {
    rocksdb::Status s = wbwi.Put(cf(cf_name), key, value);
    if (!s.ok()) return FromRocks(s, "batch put");
    ++mutations;
    return absl::OkStatus();
  }
  absl::Status Delete(std::string_view cf_name, const std::string& key) {
    rocksdb::Status s = wbwi.Delete(cf(cf_name), key);
    if (!s.ok()) return FromRocks(s, "batch delete");
    ++mutations;
    return absl::OkStatus();
  }
  // Batch-then-committed read of one key.
  absl::StatusOr<std::optional<std::string>> Get(std::string_view cf_name, const std::string& key) {
    std::string value;
    rocksdb::Status s =
        wbwi.GetFromBatchAndDB(db(), rocksdb::ReadOptions(), cf(cf_name), key, &value);
    if (s.IsNotFound()) return std::optional<std::string>();
    if (!s.ok()) return FromRocks(s, absl::StrCat("read ", store->path(), " ", ToAbsl(cf_name)));
    return std::optional<std::string>(std::move(value));
  }
  std::unique_ptr<rocksdb::Iterator> Iter(std::string_view cf_name) {
    rocksdb::ColumnFamilyHandle* h = cf(cf_name);
    return std::unique_ptr<rocksdb::Iterator>(
        wbwi.NewIteratorWithBase(h, db()->NewIterator(rocksdb::ReadOptions(), h)));
  }
};

PendingBatch::PendingBatch(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
PendingBatch::PendingBatch(PendingBatch&&) noexcept = default;
PendingBatch& PendingBatch::operator=(PendingBatch&&) noexcept = default;
PendingBatch::~PendingBatch() = default;

absl::Status PendingBatch::SetOffset(std::string_view topic, int32_t partition,
                                     int64_t next_offset) {
  RTDW_RETURN_IF_ERROR(CheckId("topic", topic));
  RTDW_RETURN_IF_ERROR(CheckPartition(partition));
  return impl_->Put(kCfOffsets, state_keys::OffsetKey(topic, partition),
                    state_keys::EncodeOffsetValue(next_offset));
}

absl::Status PendingBatch::DeleteOffset(std::string_view topic, int32_t partition) {
  RTDW_RETURN_IF_ERROR(CheckId("topic", topic));
  RTDW_RETURN_IF_ERROR(CheckPartition(partition));
  return impl_->Delete(kCfOffsets, state_keys::OffsetKey(topic, partition));
}

absl::Status PendingBatch::PutDedup(DayNumber day, int32_t partition, std::string_view mid,
                                    const DedupValue& value) {
  RTDW_RETURN_IF_ERROR(CheckDay(day));
  RTDW_RETURN_IF_ERROR(CheckPartition(partition));
  RTDW_RETURN_IF_ERROR(CheckId("mid", mid));
  return impl_->Put(kCfDedup, state_keys::DedupKey(day, partition, mid),
                    state_keys::EncodeDedupValue(value));
}

absl::Status PendingBatch::DeleteDedup(DayNumber day, int32_t partition, std::string_view mid) {
  RTDW_RETURN_IF_ERROR(CheckDay(day));
  RTDW_RETURN_IF_ERROR(CheckPartition(partition));
  RTDW_RETURN_IF_ERROR(CheckId("mid", mid));
  return impl_->Delete(kCfDedup, state_keys::DedupKey(day, partition, mid));
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
        RTDW_RETURN_IF_ERROR(
            impl_->Delete(kCfJoin, state_keys::JoinTimeKey(row.partition, prev.event_ms,
                                                           row.order_id, row.side, row.row_id)));
      }
      if (prev.source_offset >= 0 && prev.source_offset != row.source_offset) {
        RTDW_RETURN_IF_ERROR(impl_->Delete(
            kCfJoin, state_keys::JoinOffsetKey(row.partition, row.side, prev.source_offset,
                                               row.order_id, row.row_id)));
      }
    }
  }
  if (row.source_offset >= 0) {
    RTDW_RETURN_IF_ERROR(
        impl_->Put(kCfJoin,
                   state_keys::JoinOffsetKey(row.partition, row.side, row.source_offset,
                                             row.order_id, row.row_id),
                   std::string()));
  }
  RTDW_RETURN_IF_ERROR(impl_->Put(kCfJoin, key, state_keys::EncodeJoinValue(row)));
  return impl_->Put(
      kCfJoin,
      state_keys::JoinTimeKey(row.partition, row.event_ms, row.order_id, row.side, row.row_id),
      std::string());
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
    RTDW_RETURN_IF_ERROR(impl_->Delete(
        kCfJoin, state_keys::JoinTimeKey(partition, prev.event_ms, order_id, side, row_id)));
    if (prev.source_offset >= 0) {
      RTDW_RETURN_IF_ERROR(impl_->Delete(
          kCfJoin,
          state_keys::JoinOffsetKey(partition, side, prev.source_offset, order_id, row_id)));
    }
  }
  return impl_->Delete(kCfJoin, key);
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
  auto it = impl_->Iter(kCfJoin);
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

namespace {
std::string WatermarkName(int32_t partition) { return absl::StrCat("watermark.", partition); }
std::string InputWatermarkName(std::string_view topic, int32_t partition) {
  return absl::StrCat("watermark.", ToAbsl(topic), ".", partition);
}
}  // namespace

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
  return impl_->Put(kCfMeta, WatermarkName(partition), std::to_string(event_ms));
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
  return impl_->Put(kCfMeta, InputWatermarkName(topic, partition), std::to_string(event_ms));
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
  for (const auto& k : index_keys) RTDW_RETURN_IF_ERROR(impl_->Delete(kCfJoin, k));
  for (const auto& k : row_keys) RTDW_RETURN_IF_ERROR(impl_->Delete(kCfJoin, k));
  for (const JoinRow& r : rows) {
    if (r.source_offset < 0) continue;
    RTDW_RETURN_IF_ERROR(impl_->Delete(
        kCfJoin,
        state_keys::JoinOffsetKey(r.partition, r.side, r.source_offset, r.order_id, r.row_id)));
  }
  return rows;
}

bool PendingBatch::empty() const {
  return impl_->mutations == 0 && !impl_->journal && impl_->dead_letters.empty() &&
         impl_->resolve.empty();
}

size_t PendingBatch::mutation_count() const { return impl_->mutations; }

void PendingBatch::Clear() {
  impl_->wbwi.Clear();
  impl_->journal.reset();
  impl_->dead_letters.clear();
  impl_->resolve.clear();
  impl_->mutations = 0;
}

// ---------------------------------------------------------------------------------------------
// StateStore: open and close

absl::StatusOr<std::unique_ptr<StateStore>> StateStore::Open(const StateStoreOptions& options) {
  if (options.root.empty()) return absl::InvalidArgumentError("state dir is empty");
  if (!ValidJobName(options.job)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "job name \"", options.job, "\" is not usable as a store name ([A-Za-z0-9._-]+)"));
  }
  std::unique_ptr<StateStore> store(new StateStore());
  store->root_ = options.root;
  store->path_ = StorePath(options.root, options.job);
  store->job_ = options.job;
  RTDW_RETURN_IF_ERROR(store->OpenImpl(options));
  return store;
}

absl::Status StateStore::OpenImpl(const StateStoreOptions& options) {
  read_only_ = options.read_only;
  sync_ = options.sync;
  min_free_mb_ = options.min_free_mb;
  track_shutdown_ = options.track_shutdown && !options.read_only;
  log_ = options.log;

  std::error_code ec;
  auto st = fs::status(path_, ec);
  bool exists = !ec && fs::exists(st);
  if (exists && !fs::is_directory(st)) {
    return absl::FailedPreconditionError(
        absl::StrCat("state store ", path_, " exists but is not a directory"));
  }
  if (!read_only_) RemoveCreationLeftovers(root_, job_);
  bool fresh = !exists || fs::is_empty(path_, ec);
  if (fresh) {
    if (read_only_ || !options.create_if_missing) {
      return absl::NotFoundError(absl::StrCat("no state store for job ", job_, " at ", path_));
    }
    RTDW_ASSIGN_OR_RETURN(created_, CreateAtomically(options));
  }
  RTDW_RETURN_IF_ERROR(OpenRocks(options, /*create=*/false));
  if (created_ && log_) log_(absl::StrCat("created state store for job ", job_, " at ", path_));
  if (log_ && track_shutdown_ && previous_shutdown_clean_ == false) {
    log_(absl::StrCat("state store ", path_,
                      ": the previous run did not shut down cleanly (it crashed or was killed)"));
  }
  return absl::OkStatus();
}

absl::StatusOr<bool> StateStore::CreateAtomically(const StateStoreOptions& options) {
  std::error_code ec;
  fs::create_directories(root_, ec);
  if (ec) return absl::InternalError(absl::StrCat("cannot create ", root_, ": ", ec.message()));
  // A hidden sibling (skipped by ListJobStores), named by this process so that a later open can
  // tell a leftover of a killed creation from a creation in progress.
  static std::atomic<uint64_t> counter{0};
  std::string tmp = absl::StrCat(StorePath(root_, ""), ".", job_, kCreatingInfix, ::getpid(), "-",
                                 counter.fetch_add(1));
  fs::remove_all(tmp, ec);
  fs::create_directory(tmp, ec);
  if (ec) return absl::InternalError(absl::StrCat("cannot create ", tmp, ": ", ec.message()));
  {
    std::unique_ptr<StateStore> staging(new StateStore());
    staging->root_ = root_;
    staging->path_ = tmp;
    staging->job_ = job_;
    staging->read_only_ = false;
    staging->sync_ = true;
    staging->track_shutdown_ = false;  // the real open below records the open
    absl::Status s = staging->OpenRocks(options, /*create=*/true);
    if (s.ok()) s = staging->Close();
    staging.reset();
    if (!s.ok()) {
      fs::remove_all(tmp, ec);
      return absl::Status(s.code(), absl::StrCat("create state store ", path_, ": ", s.message()));
    }
  }
  // rename(2) replaces an empty directory at path_ and fails on a non-empty one.
  if (::rename(tmp.c_str(), path_.c_str()) != 0) {
    int err = errno;
    fs::remove_all(tmp, ec);
    if (err == ENOTEMPTY || err == EEXIST) return false;  // another process created it meanwhile
    return absl::InternalError(absl::StrCat("cannot move the new state store ", tmp, " to ", path_,
                                            ": ", std::strerror(err)));
  }
  FsyncDir(root_);
  return true;
}

absl::Status StateStore::OpenRocks(const StateStoreOptions& options, bool create) {
  rocks_ = std::make_unique<Rocks>();
  rocks_->cache = options.cache ? options.cache : NewStateCache(options.block_cache_mb);
  rocksdb::DBOptions db_options = DbOptions(*rocks_->cache);
  db_options.create_if_missing = create;
  db_options.error_if_exists = create;
  if (!read_only_) db_options.info_log = OpenInfoLog(path_);

  std::vector<std::string> names;
  if (!create) {
    rocksdb::Status s = rocksdb::DB::ListColumnFamilies(db_options, path_, &names);
    if (!s.ok()) {
      rocks_.reset();
      return OpenError(path_, job_, s);
    }
  }
  // Every family present must be opened (RocksDB's rule for a writable open), ours always.
  std::vector<std::string> wanted = {rocksdb::kDefaultColumnFamilyName};
  for (auto n : kStateColumnFamilies) wanted.emplace_back(n);
  for (const auto& n : names) {
    if (std::find(wanted.begin(), wanted.end(), n) == wanted.end()) wanted.push_back(n);
  }
  if (read_only_) {
    for (auto n : kStateColumnFamilies) {
      if (std::find(names.begin(), names.end(), n) == names.end()) {
        rocks_.reset();
        return absl::FailedPreconditionError(
            absl::StrCat("state store ", path_, " has no column family \"", ToAbsl(n),
                         "\" (not an rtdw state store, or one whose creation was interrupted)"));
      }
    }
  }
  std::vector<rocksdb::ColumnFamilyDescriptor> descriptors;
  for (const auto& n : wanted) descriptors.emplace_back(n, CfOptions(*rocks_->cache, n));

  rocksdb::DB* raw = nullptr;
  rocksdb::Status s;
  if (read_only_) {
    s = rocksdb::DB::OpenForReadOnly(db_options, path_, descriptors, &rocks_->handles, &raw);
  } else {
    s = rocksdb::DB::Open(db_options, path_, descriptors, &rocks_->handles, &raw);
  }
  if (!s.ok()) {
    rocks_.reset();
    if (create) return FromRocks(s, absl::StrCat("create state store ", path_));
    return OpenError(path_, job_, s);
  }
  rocks_->db.reset(raw);
  for (auto* h : rocks_->handles) rocks_->by_name[h->GetName()] = h;
  absl::Status meta = InitMeta(options, create);
  if (!meta.ok()) {
    closed_ = true;  // refused: close without touching meta
    for (auto* h : rocks_->handles) rocks_->db->DestroyColumnFamilyHandle(h);
    rocks_->handles.clear();
    rocks_->db->Close().PermitUncheckedError();
    rocks_.reset();
    return meta;
  }
  return absl::OkStatus();
}

absl::Status StateStore::InitMeta(const StateStoreOptions& options, bool create) {
  RTDW_ASSIGN_OR_RETURN(std::optional<std::string> version, GetMeta(kMetaSchemaVersion));
  if (version) {
    int v = 0;
    if (version->empty() || version->size() > 9 ||
        !std::all_of(version->begin(), version->end(),
                     [](char c) { return c >= '0' && c <= '9'; })) {
      return absl::DataLossError(absl::StrCat("state store ", path_, ": meta schema_version \"",
                                              *version, "\" is not a number"));
    }
    v = std::stoi(*version);
    if (v > kStateSchemaVersion) {
      return absl::FailedPreconditionError(absl::StrCat(
          "state store ", path_, " has schema version ", v, ", newer than this rtdw understands (",
          kStateSchemaVersion, "): run a newer rtdw, or restore a backup made by this version"));
    }
    schema_version_ = v;
  }
  RTDW_ASSIGN_OR_RETURN(std::optional<std::string> job, GetMeta(kMetaJob));
  if (job && *job != job_) {
    return absl::FailedPreconditionError(
        absl::StrCat("state store ", path_, " belongs to job \"", *job, "\", not \"", job_, "\""));
  }
  RTDW_ASSIGN_OR_RETURN(std::optional<std::string> fingerprint, GetMeta(kMetaTopicFingerprint));
  std::string merged_fingerprint;
  if (!options.topic_fingerprint.empty()) {
    RTDW_ASSIGN_OR_RETURN(merged_fingerprint,
                          MergedFingerprint(fingerprint.value_or(""), options.topic_fingerprint));
  }
  RTDW_ASSIGN_OR_RETURN(std::optional<std::string> clean, GetMeta(kMetaCleanShutdown));
  if (clean) previous_shutdown_clean_ = (*clean == "true");

  // The next seq: the stored counter, but never below what the keys show.
  uint64_t next = 1;
  RTDW_ASSIGN_OR_RETURN(std::optional<std::string> counter, GetMeta(kMetaNextSeq));
  if (counter && counter->size() == 8) next = std::max(next, state_keys::GetBE64(counter->data()));
  for (auto name : {kCfJournal, kCfDeadLetter}) {
    std::unique_ptr<rocksdb::Iterator> it(
        rocks_->db->NewIterator(rocksdb::ReadOptions(), cf(name)));
    // The last seq key: the dead-letter index (keys from 0xFF on) sorts after every one.
    it->SeekForPrev(std::string(1, state_keys::kDeadLetterIndexTag));
    if (it->Valid()) {
      if (auto seq = DecodeSeqKey(View(it->key()))) next = std::max(next, *seq + 1);
    }
    if (!it->status().ok()) return FromRocks(it->status(), absl::StrCat("read ", path_));
  }
  next_seq_ = next;

  if (read_only_) return absl::OkStatus();
  rocksdb::WriteBatch wb;
  auto put = [&](std::string_view k, std::string_view v) {
    wb.Put(cf(kCfMeta), rocksdb::Slice(k.data(), k.size()), rocksdb::Slice(v.data(), v.size()))
        .PermitUncheckedError();
  };
  if (!version) put(kMetaSchemaVersion, absl::StrCat(kStateSchemaVersion));
  if (!job) put(kMetaJob, job_);
  if (!merged_fingerprint.empty() && merged_fingerprint != fingerprint.value_or("")) {
    put(kMetaTopicFingerprint, merged_fingerprint);
  }
  if (create || !version) put(kMetaCreatedMs, absl::StrCat(NowMs()));
  if (track_shutdown_) {
    put(kMetaLastOpenMs, absl::StrCat(NowMs()));
    put(kMetaCleanShutdown, "false");
  }
  if (wb.Count() > 0) {
    rocksdb::WriteOptions wo;
    wo.sync = true;
    rocksdb::Status s = rocks_->db->Write(wo, &wb);
    if (!s.ok()) return FromRocks(s, absl::StrCat("write meta of ", path_));
  }
  return IndexDeadLetters();
}

absl::Status StateStore::Close() {
  if (closed_ || !rocks_ || !rocks_->db) {  // closed, or a failed open
    closed_ = true;
    rocks_.reset();
    return absl::OkStatus();
  }
  closed_ = true;
  absl::Status result;
  if (!read_only_) {
    if (rocks_->write_failed.load() && rocks_->db->Resume().ok()) rocks_->write_failed = false;
    if (track_shutdown_) {
      rocksdb::WriteBatch wb;
      wb.Put(cf(kCfMeta), std::string(kMetaCleanShutdown), "true").PermitUncheckedError();
      wb.Put(cf(kCfMeta), std::string(kMetaLastCleanShutdownMs), absl::StrCat(NowMs()))
          .PermitUncheckedError();
      rocksdb::WriteOptions wo;
      wo.sync = true;
      rocksdb::Status s = rocks_->db->Write(wo, &wb);
      if (!s.ok()) result = FromRocks(s, absl::StrCat("mark clean shutdown of ", path_));
    }
    // Not after a failed write: the WAL writer may hold the error, and RocksDB 7.8 (Debian's,
    // built with assertions) aborts the process when such a writer is synced.
    if (result.ok() && !rocks_->write_failed.load()) {
      rocksdb::Status s = rocks_->db->SyncWAL();
      if (!s.ok() && !s.IsNotSupported()) {
        result = FromRocks(s, absl::StrCat("sync WAL of ", path_));
      }
    }
  }
  for (auto* h : rocks_->handles) rocks_->db->DestroyColumnFamilyHandle(h);
  rocks_->handles.clear();
  rocks_->by_name.clear();
  rocksdb::Status s = rocks_->db->Close();
  if (!s.ok() && result.ok()) result = FromRocks(s, absl::StrCat("close ", path_));
  rocks_->db.reset();
  rocks_.reset();
  return result;
}

StateStore::~StateStore() { Close().IgnoreError(); }

rocksdb::ColumnFamilyHandle* StateStore::cf(std::string_view name) const {
  auto it = rocks_->by_name.find(name);
  return it == rocks_->by_name.end() ? nullptr : it->second;
}

absl::Status StateStore::CheckWritable() const {
  if (closed_ || !rocks_) return absl::FailedPreconditionError(absl::StrCat(path_, " is closed"));
  if (read_only_) {
    return absl::FailedPreconditionError(absl::StrCat("state store ", path_, " is open read-only"));
  }
  return absl::OkStatus();
}

std::optional<uint64_t> StateStore::FreeBytes() const {
  struct statvfs st;
  if (::statvfs(path_.c_str(), &st) != 0) return std::nullopt;
  return static_cast<uint64_t>(st.f_bavail) * st.f_frsize;
}

absl::Status StateStore::CheckFreeSpace() const {
  if (min_free_mb_ <= 0) return absl::OkStatus();
  const std::optional<uint64_t> free = FreeBytes();
  if (!free) return absl::OkStatus();  // unknown: RocksDB will tell
  const uint64_t free_bytes = *free;
  if (free_bytes >= static_cast<uint64_t>(min_free_mb_) << 20) return absl::OkStatus();
  return absl::ResourceExhaustedError(
      absl::StrCat("No space left for a commit to ", path_, ": ", free_bytes >> 20,
                   " MiB free, below state.min_free_mb = ", min_free_mb_,
                   " (nothing written; waiting for space)"));
}

uint64_t StateStore::next_seq() const {
  std::lock_guard<std::mutex> lock(seq_mu_);
  return next_seq_;
}

// ---------------------------------------------------------------------------------------------
// Commit and seq-allocating writes

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
      std::lock_guard<std::mutex> lock(rocks_->write_error_mu);
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
      std::lock_guard<std::mutex> lock(rocks_->write_error_mu);
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
  CommitResult result;
  if (b.mutations == 0 && !b.journal && b.dead_letters.empty() && b.resolve.empty() &&
      drop_letters.empty()) {
    return result;
  }
  RTDW_RETURN_IF_ERROR(CheckFreeSpace());
  std::lock_guard<std::mutex> lock(seq_mu_);
  uint64_t seq = next_seq_;
  uint64_t needed = 0;
  rocksdb::WriteBatch* wb = b.wbwi.GetWriteBatch();
  if (b.journal) {
    JournalEntry& e = *b.journal;
    e.seq = seq + needed;
    if (e.created_ms == 0) e.created_ms = NowMs();
    rocksdb::Status s = wb->Put(cf(kCfJournal), SeqKey(e.seq), EncodeJournalValue(e));
    if (!s.ok()) return FromRocks(s, "batch put");
    result.journal_seq = e.seq;
    ++needed;
  }
  RTDW_RETURN_IF_ERROR(
      PutDeadLetters(wb, b.dead_letters, seq + needed, b.resolve, drop_letters, &result));
  needed += b.dead_letters.size();
  std::vector<uint64_t> seqs;
  RTDW_RETURN_IF_ERROR(WriteWithSeqs(wb, needed, sync_, &seqs));
  if (result.journal_seq) seqs.erase(seqs.begin());
  result.dead_letter_seqs = std::move(seqs);
  return result;
}

absl::StatusOr<std::vector<uint64_t>> StateStore::CompleteJournal(
    uint64_t seq, const std::vector<std::string>& dead_letter_lines) {
  RTDW_RETURN_IF_ERROR(CheckWritable());
  std::lock_guard<std::mutex> lock(seq_mu_);
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
  std::lock_guard<std::mutex> lock(seq_mu_);
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

// A letter's key (BE64 seq), not one of the index after them.
bool IsLetterKey(std::string_view key) {
  return key.size() == 8 && key[0] != state_keys::kDeadLetterIndexTag;
}
bool IsLetterKey(const rocksdb::Slice& key) { return IsLetterKey(View(key)); }

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
    std::unique_ptr<rocksdb::Iterator> it(rocks_->db->NewIterator(rocksdb::ReadOptions(), h));
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
    std::unique_ptr<rocksdb::Iterator> it(rocks_->db->NewIterator(rocksdb::ReadOptions(), h));
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
  std::unique_ptr<rocksdb::Iterator> it(rocks_->db->NewIterator(rocksdb::ReadOptions(), h));
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
  std::lock_guard<std::mutex> lock(seq_mu_);
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

// ---------------------------------------------------------------------------------------------
// Offsets

namespace {

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

}  // namespace

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
      rocks_->db->NewIterator(rocksdb::ReadOptions(), cf(kCfDedup)));
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
      rocks_->db->NewIterator(rocksdb::ReadOptions(), cf(kCfJoin)));
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
      rocks_->db->NewIterator(rocksdb::ReadOptions(), cf(kCfDeadLetter)));
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
      rocks_->db->NewIterator(rocksdb::ReadOptions(), cf(kCfDeadLetter)));
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
// Meta

absl::StatusOr<std::optional<std::string>> StateStore::GetMeta(std::string_view name) const {
  std::string v;
  rocksdb::Status s = rocks_->db->Get(rocksdb::ReadOptions(), cf(kCfMeta),
                                      rocksdb::Slice(name.data(), name.size()), &v);
  if (s.IsNotFound()) return std::optional<std::string>();
  if (!s.ok()) return FromRocks(s, absl::StrCat("read meta of ", path_));
  return std::optional<std::string>(std::move(v));
}

absl::Status StateStore::SetMeta(std::string_view name, std::string_view value) {
  RTDW_RETURN_IF_ERROR(CheckWritable());
  rocksdb::WriteOptions wo;
  wo.sync = true;
  rocksdb::Status s = rocks_->db->Put(wo, cf(kCfMeta), rocksdb::Slice(name.data(), name.size()),
                                      rocksdb::Slice(value.data(), value.size()));
  if (!s.ok()) return FromRocks(s, absl::StrCat("write meta of ", path_));
  return absl::OkStatus();
}

absl::StatusOr<std::vector<std::pair<std::string, std::string>>> StateStore::ListMeta() const {
  std::vector<std::pair<std::string, std::string>> out;
  RTDW_RETURN_IF_ERROR(ScanPrefix(rocks_->db.get(), cf(kCfMeta), std::string_view(),
                                  [&](std::string_view k, std::string_view v) {
                                    if (k == kMetaNextSeq && v.size() == 8) {
                                      out.emplace_back(std::string(k),
                                                       absl::StrCat(state_keys::GetBE64(v.data())));
                                    } else {
                                      out.emplace_back(std::string(k), std::string(v));
                                    }
                                    return true;
                                  }));
  return out;
}

namespace {

// "<tag> key=value key=value ...": the keyed tokens in order, and the rest (the tag).
struct ParsedFingerprint {
  std::string tag;
  std::vector<std::pair<std::string, std::string>> values;
  const std::string* Find(std::string_view key) const {
    for (const auto& [k, v] : values) {
      if (k == key) return &v;
    }
    return nullptr;
  }
};

ParsedFingerprint ParseFingerprint(std::string_view text) {
  ParsedFingerprint out;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find(' ', pos);
    if (end == std::string_view::npos) end = text.size();
    std::string_view token = text.substr(pos, end - pos);
    pos = end + 1;
    if (token.empty()) continue;
    size_t eq = token.find('=');
    if (eq == std::string_view::npos) {
      if (!out.tag.empty()) out.tag.push_back(' ');
      out.tag.append(token);
    } else {
      out.values.emplace_back(std::string(token.substr(0, eq)), std::string(token.substr(eq + 1)));
    }
  }
  return out;
}

// The config key (or what else) a fingerprint key stands for, and what accepting its change does.
std::pair<std::string, std::string> DescribeFingerprintKey(std::string_view job_view,
                                                           std::string_view key_view) {
  const std::string job(job_view), key(key_view);
  if (absl::StartsWith(key, "partitions.")) {
    return {absl::StrCat("the partition count of topic ", key.substr(11)),
            "de-dup and join state are kept per partition number, and a key may now hash to "
            "another partition: state of the old partitions stays where it was"};
  }
  if (key == "retention_days") {
    return {"dedup.retention_days",
            "the de-dup window follows the new value (a shorter one drops the older days at the "
            "next retention pass)"};
  }
  std::string name = absl::StrCat("jobs.", job, ".", key);
  if (key == "time_zone") {
    return {name,
            "days stored so far (de-dup days, documents already written) keep the old zone's "
            "days; new records get the new zone's"};
  }
  if (key == "index_prefix") {
    return {name,
            "documents go to the new indices while the de-dup state still holds the mids written "
            "under the old prefix (they are not written again): to start de-dup over, `rtdw "
            "backup create`, then move the store aside"};
  }
  if (key == "join_ttl") return {name, "rows waiting in the join expire by the new TTL"};
  if (absl::EndsWith(key, "_topic")) {
    return {name,
            "offsets and state belong to the old topic: set the new topic's offsets with `rtdw "
            "offsets set`, or it starts from kafka.auto_offset_reset"};
  }
  return {name, ""};
}

}  // namespace

absl::StatusOr<std::string> StateStore::MergedFingerprint(std::string_view stored,
                                                          std::string_view current,
                                                          bool replace) const {
  if (stored.empty()) return std::string(current);
  if (stored == current) return std::string(stored);
  ParsedFingerprint old_fp = ParseFingerprint(stored);
  ParsedFingerprint new_fp = ParseFingerprint(current);
  std::vector<std::string> changes;
  auto change = [&](std::string_view key, std::string_view was, std::string_view now) {
    auto [name, effect] = DescribeFingerprintKey(job_, key);
    changes.push_back(absl::StrCat(name, ": stored \"", ToAbsl(was), "\", now \"", ToAbsl(now),
                                   "\"", effect.empty() ? "" : " (accepting: ", effect,
                                   effect.empty() ? "" : ")"));
  };
  for (const auto& [key, value] : new_fp.values) {
    const std::string* was = old_fp.Find(key);
    if (was != nullptr && *was != value && !replace) change(key, *was, value);
  }
  if (old_fp.values.empty() && new_fp.values.empty()) change("fingerprint", stored, current);
  if (!changes.empty()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "the settings the state of job ", job_, " was built under changed (state store ", path_,
        "): ", absl::StrJoin(changes, "; "),
        ". To accept the change, run `rtdw meta reset-fingerprint --job ", job_,
        "` (the store then records the new settings at the next start) and start again"));
  }
  // Keep the stored tag and values (but those replaced), add the keys it did not record yet.
  std::string merged = old_fp.tag;
  for (const auto& [key, value] : old_fp.values) {
    const std::string* now = replace ? new_fp.Find(key) : nullptr;
    absl::StrAppend(&merged, merged.empty() ? "" : " ", key, "=", now ? *now : value);
  }
  for (const auto& [key, value] : new_fp.values) {
    if (old_fp.Find(key) == nullptr) absl::StrAppend(&merged, " ", key, "=", value);
  }
  return merged;
}

absl::Status StateStore::MergeFingerprint(std::string_view values, bool replace) {
  RTDW_RETURN_IF_ERROR(CheckWritable());
  std::lock_guard<std::mutex> lock(fingerprint_mu_);
  RTDW_ASSIGN_OR_RETURN(std::optional<std::string> stored, GetMeta(kMetaTopicFingerprint));
  RTDW_ASSIGN_OR_RETURN(std::string merged,
                        MergedFingerprint(stored.value_or(""), values, replace));
  if (merged == stored.value_or("")) return absl::OkStatus();
  return SetMeta(kMetaTopicFingerprint, merged);
}

absl::Status StateStore::ResetFingerprint(std::string_view fingerprint) {
  RTDW_RETURN_IF_ERROR(CheckWritable());
  if (fingerprint.empty()) {
    rocksdb::WriteOptions wo;
    wo.sync = true;
    rocksdb::Status s = rocks_->db->Delete(wo, cf(kCfMeta), std::string(kMetaTopicFingerprint));
    if (!s.ok()) return FromRocks(s, absl::StrCat("write meta of ", path_));
    return absl::OkStatus();
  }
  return SetMeta(kMetaTopicFingerprint, fingerprint);
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

// ---------------------------------------------------------------------------------------------
// Backups

namespace {

BackupResult FromInfo(const std::string& dir, const rocksdb::BackupInfo& info) {
  BackupResult r;
  r.backup_dir = dir;
  r.backup_id = info.backup_id;
  r.timestamp = info.timestamp;
  r.size_bytes = info.size;
  r.files = info.number_files;
  return r;
}

}  // namespace

absl::StatusOr<BackupResult> StateStore::CreateBackup(const std::string& backup_dir) {
  RTDW_RETURN_IF_ERROR(CheckWritable());
  std::error_code ec;
  fs::create_directories(backup_dir, ec);
  if (ec) {
    return absl::InternalError(absl::StrCat("cannot create ", backup_dir, ": ", ec.message()));
  }
  rocksdb::BackupEngineOptions bo(backup_dir);
  bo.sync = true;
  rocksdb::BackupEngine* raw = nullptr;
  rocksdb::IOStatus s = rocksdb::BackupEngine::Open(bo, rocksdb::Env::Default(), &raw);
  if (!s.ok()) return FromRocks(s, absl::StrCat("open backup dir ", backup_dir));
  std::unique_ptr<rocksdb::BackupEngine> engine(raw);
  rocksdb::CreateBackupOptions co;
  co.flush_before_backup = true;
  rocksdb::BackupID id = 0;
  // The job name is the backup's application metadata: a restore checks it.
  s = engine->CreateNewBackupWithMetadata(co, rocks_->db.get(), job_, &id);
  if (!s.ok()) return FromRocks(s, absl::StrCat("back up ", path_, " to ", backup_dir));
  rocksdb::BackupInfo info;
  rocksdb::Status is = engine->GetBackupInfo(id, &info);
  if (!is.ok()) return FromRocks(is, absl::StrCat("read backup info in ", backup_dir));
  return FromInfo(backup_dir, info);
}

absl::StatusOr<std::vector<BackupResult>> StateStore::ListBackups(const std::string& backup_dir) {
  std::error_code ec;
  if (!fs::is_directory(backup_dir, ec)) {
    return absl::NotFoundError(absl::StrCat("backup dir ", backup_dir, " does not exist"));
  }
  rocksdb::BackupEngineOptions bo(backup_dir);
  rocksdb::BackupEngineReadOnly* raw = nullptr;
  rocksdb::IOStatus s = rocksdb::BackupEngineReadOnly::Open(bo, rocksdb::Env::Default(), &raw);
  if (!s.ok()) return FromRocks(s, absl::StrCat("open backup dir ", backup_dir));
  std::unique_ptr<rocksdb::BackupEngineReadOnly> engine(raw);
  std::vector<rocksdb::BackupInfo> infos;
  engine->GetBackupInfo(&infos);
  if (infos.empty()) return absl::NotFoundError(absl::StrCat("no backup in ", backup_dir));
  std::vector<BackupResult> out;
  for (const auto& i : infos) out.push_back(FromInfo(backup_dir, i));
  return out;
}

absl::StatusOr<RestoreResult> StateStore::RestoreBackup(const std::string& backup_dir,
                                                        const std::string& root,
                                                        const std::string& job) {
  if (!ValidJobName(job)) {
    return absl::InvalidArgumentError(absl::StrCat("job name \"", job, "\" is not usable"));
  }
  std::error_code ec;
  if (!fs::is_directory(backup_dir, ec)) {
    return absl::NotFoundError(absl::StrCat("backup dir ", backup_dir, " does not exist"));
  }
  rocksdb::BackupEngineOptions bo(backup_dir);
  rocksdb::BackupEngineReadOnly* raw = nullptr;
  rocksdb::IOStatus s = rocksdb::BackupEngineReadOnly::Open(bo, rocksdb::Env::Default(), &raw);
  if (!s.ok()) return FromRocks(s, absl::StrCat("open backup dir ", backup_dir));
  std::unique_ptr<rocksdb::BackupEngineReadOnly> engine(raw);
  std::vector<rocksdb::BackupInfo> infos;
  engine->GetBackupInfo(&infos);
  std::vector<rocksdb::BackupID> corrupt;
  engine->GetCorruptedBackups(&corrupt);
  const rocksdb::BackupInfo* latest = nullptr;
  for (const auto& i : infos) {
    if (std::find(corrupt.begin(), corrupt.end(), i.backup_id) != corrupt.end()) continue;
    if (!latest || i.backup_id > latest->backup_id) latest = &i;
  }
  if (!latest) return absl::NotFoundError(absl::StrCat("no usable backup in ", backup_dir));
  if (!latest->app_metadata.empty() && latest->app_metadata != job) {
    return absl::FailedPreconditionError(absl::StrCat("the backup in ", backup_dir, " is of job \"",
                                                      latest->app_metadata, "\", not \"", job,
                                                      "\""));
  }

  std::string path = StorePath(root, job);
  fs::create_directories(root, ec);
  if (ec) return absl::InternalError(absl::StrCat("cannot create ", root, ": ", ec.message()));
  bool had_store = fs::exists(path, ec);
  // Exclude a daemon for the whole restore: hold the old store's RocksDB LOCK ourselves.
  int lock_fd = -1;
  if (had_store) {
    if (auto pid = StoreLockHolder(path)) {
      return absl::UnavailableError(absl::StrCat("refusing to restore over ", path,
                                                 ": it is held by process ", *pid,
                                                 " (a running rtdwd); stop it first"));
    }
    std::string lock_file = path + "/LOCK";
    lock_fd = ::open(lock_file.c_str(), O_RDWR | O_CLOEXEC);
    if (lock_fd >= 0) {
      struct flock fl;
      std::memset(&fl, 0, sizeof(fl));
      fl.l_type = F_WRLCK;
      fl.l_whence = SEEK_SET;
      if (::fcntl(lock_fd, F_SETLK, &fl) != 0) {
        ::close(lock_fd);
        return absl::UnavailableError(
            absl::StrCat("refusing to restore over ", path, ": it is locked by another process"));
      }
    }
  }
  auto unlock = [&] {
    if (lock_fd >= 0) ::close(lock_fd);
    lock_fd = -1;
  };

  std::string tmp = absl::StrCat(StorePath(root, ""), ".", job, ".restore-", ::getpid());
  fs::remove_all(tmp, ec);
  fs::create_directories(tmp, ec);
  s = engine->RestoreDBFromBackup(rocksdb::RestoreOptions(), latest->backup_id, tmp, tmp);
  if (!s.ok()) {
    unlock();
    fs::remove_all(tmp, ec);
    return FromRocks(s, absl::StrCat("restore ", backup_dir, " into ", tmp));
  }
  // Check the restored copy before it replaces anything.
  {
    std::unique_ptr<StateStore> check(new StateStore());
    check->root_ = root;
    check->path_ = tmp;
    check->job_ = job;
    StateStoreOptions o;
    o.root = root;
    o.job = job;
    o.read_only = true;
    o.block_cache_mb = 8;
    absl::Status cs = check->OpenImpl(o);
    if (!cs.ok()) {
      unlock();
      fs::remove_all(tmp, ec);
      return absl::Status(cs.code(),
                          absl::StrCat("the restored backup does not open: ", cs.message()));
    }
  }
  RestoreResult result;
  result.path = path;
  result.backup_dir = backup_dir;
  result.backup_id = latest->backup_id;
  if (had_store) {
    std::string aside =
        absl::StrCat(StorePath(root, ""), ".", job, ".replaced-",
                     absl::FormatTime("%Y%m%d-%H%M%S", absl::Now(), absl::UTCTimeZone()));
    if (fs::exists(aside, ec)) aside += absl::StrCat("-", ::getpid());
    fs::rename(path, aside, ec);
    if (ec) {
      unlock();
      fs::remove_all(tmp, ec);
      return absl::InternalError(
          absl::StrCat("cannot move ", path, " aside to ", aside, ": ", ec.message()));
    }
    result.previous_kept_at = aside;
  }
  fs::rename(tmp, path, ec);
  unlock();
  if (ec) {
    return absl::InternalError(
        absl::StrCat("cannot move the restored store ", tmp, " to ", path, ": ", ec.message()));
  }
  FsyncDir(root);
  return result;
}

}  // namespace rtdw
