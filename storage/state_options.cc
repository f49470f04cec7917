// The state store's RocksDB tuning: the block cache shared by the stores of a process, the
// options of each column family and of the database, and the info log.
#include <sys/time.h>

#include <algorithm>
#include <cstdarg>
#include <cstdio>
#include <ctime>
#include <filesystem>

#include "rocksdb/convenience.h"
#include "rocksdb/filter_policy.h"
#include "rocksdb/slice_transform.h"
#include "rocksdb/table.h"
#include "storage/state_store.h"
#include "storage/state_store_internal.h"

namespace rtdw {

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

namespace state_internal {

namespace {

// The join family's prefix extractor: a join row key's order (state_keys::JoinOrderPrefixOf). A
// join lookup is a prefix seek (OrderPrefixSeek), so the memtables' and table files' prefix
// bloom filters skip every one without a row of the order; the index entries ('T', 'O') are
// outside its domain and read with total-order seeks only (TotalOrder).
class JoinOrderPrefixTransform : public rocksdb::SliceTransform {
 public:
  // Persisted in the table files' properties: a change of the rule needs a new name.
  const char* Name() const override { return "rtdw.JoinOrderPrefix.1"; }
  // Total: RocksDB's prefix iterator calls it on every key it steps onto, in the domain or not
  // (DBIter::FindNextUserEntry with prefix_same_as_start). A key outside the domain is its own
  // "prefix", which no order prefix equals (its 5th byte is not 'R', or it has no order id), so
  // such an iterator ends there.
  rocksdb::Slice Transform(const rocksdb::Slice& key) const override {
    std::string_view p = state_keys::JoinOrderPrefixOf(View(key)).value_or(View(key));
    return rocksdb::Slice(p.data(), p.size());
  }
  bool InDomain(const rocksdb::Slice& key) const override {
    return state_keys::JoinOrderPrefixOf(View(key)).has_value();
  }
};

}  // namespace

std::shared_ptr<const rocksdb::SliceTransform> JoinOrderPrefixExtractor() {
  return std::make_shared<JoinOrderPrefixTransform>();
}

namespace {

rocksdb::CompressionType PickCompression() {
  auto supported = rocksdb::GetSupportedCompressions();
  for (auto c : {rocksdb::kLZ4Compression, rocksdb::kSnappyCompression}) {
    if (std::find(supported.begin(), supported.end(), c) != supported.end()) return c;
  }
  return rocksdb::kNoCompression;
}

}  // namespace

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
  if (name == kCfJoin) {
    // Each order-wide row seeks its order's rows and reads its own row key (new rows: a miss);
    // most memtables and table files hold neither (profile: 27 % of order-wide's job thread
    // was these reads, a third of it memtable seeks). The table files' filters get the order
    // prefixes beside the whole keys; the memtables a bloom filter of both (1 % of the
    // memtable's size: ~20 bits per key of order-wide's ~1 KB rows).
    o.prefix_extractor = JoinOrderPrefixExtractor();
    o.memtable_prefix_bloom_size_ratio = 0.01;
    o.memtable_whole_key_filtering = true;
  }
  return o;
}

namespace {

// RocksDB's info log (<store>/LOG, the previous one kept as LOG.old) written with stdio.
// RocksDB 7.8's own file logger (EnvLogger) keeps using its file writer after a failed write and
// asserts on it: on a full disk, Debian's librocksdb (built with assertions) aborts the daemon at
// the next info line (seen at shutdown). This one drops a line it cannot write.
// Thread-safe: RocksDB logs from its background threads and every caller's; mu_ serializes the
// writes and the close.
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
    absl::MutexLock lock(&mu_);
    if (f_ == nullptr) return;
    if (fwrite(buf, 1, len, f_) != len || fflush(f_) != 0) clearerr(f_);
  }

 protected:
  rocksdb::Status CloseImpl() override {
    absl::MutexLock lock(&mu_);
    if (f_ != nullptr) fclose(f_);
    f_ = nullptr;
    return rocksdb::Status::OK();
  }

 private:
  absl::Mutex mu_;
  FILE* f_ ABSL_GUARDED_BY(mu_);
};

}  // namespace

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

}  // namespace state_internal

}  // namespace rtdw
