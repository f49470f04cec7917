// State store micro benchmarks: committed batches/s and keys/s for batches of 100, 1k and 10k
// de-dup keys with sync on (every commit fsyncs the WAL), plus the transforms' read path.
//
//   build/bin/rtdw-micro-state-store [--benchmark_filter=Commit]
//
// The store lives under $TMPDIR (default /tmp): its disk's fsync latency dominates small batches.
#include <stdlib.h>

#include <filesystem>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "bench/micro/temp_store.h"
#include "benchmark/benchmark.h"
#include "core/journal_entry.h"
#include "storage/state_store.h"

namespace rtdw {
namespace {

std::string Doc(int64_t n) {
  return absl::StrCat("{\"mid\":\"mid_", n,
                      "\",\"user_id\":\"1234\",\"province_id\":\"12\",\"channel\":\"xiaomi\","
                      "\"is_new\":\"1\",\"model\":\"Mi 10\",\"operate_system\":\"Android 11.0\","
                      "\"version_code\":\"v2.1.134\",\"page_id\":\"home\",\"during_time\":1234,"
                      "\"dt\":\"2024-11-25\",\"hr\":\"10\",\"ts\":1732500000000,"
                      "\"rtdw_src\":\"DWD_PAGE_LOG_TOPIC/0/",
                      n, "\"}");
}

// A de-dup batch: N de-dup puts + 4 partition offsets, one WriteBatch, synced.
void BM_CommitDedupBatch(benchmark::State& state) {
  const int64_t n = state.range(0);
  TempStore ts(/*sync=*/true);
  int64_t next = 0;
  int64_t keys = 0;
  for (auto _ : state) {
    PendingBatch b = ts.store().NewBatch();
    for (int64_t i = 0; i < n; ++i, ++next) {
      if (!b.PutDedup(20241125, static_cast<int32_t>(next % 4), absl::StrCat("mid_", next),
                      DedupValue{1732500000000 + next, next})
               .ok()) {
        state.SkipWithError("PutDedup");
        return;
      }
    }
    for (int p = 0; p < 4; ++p) (void)b.SetOffset("DWD_PAGE_LOG_TOPIC", p, next);
    keys += n + 4;
    if (!ts.store().Commit(std::move(b)).ok()) {
      state.SkipWithError("Commit");
      return;
    }
  }
  state.counters["batches/s"] =
      benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
  state.counters["keys/s"] =
      benchmark::Counter(static_cast<double>(keys), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_CommitDedupBatch)->Arg(100)->Arg(1000)->Arg(10000)->UseRealTime()->MinTime(2.0);

// The DAU job's batch: N de-dup puts, offsets, and the journal entry owing N documents.
void BM_CommitDauBatch(benchmark::State& state) {
  const int64_t n = state.range(0);
  TempStore ts(/*sync=*/true);
  int64_t next = 0;
  int64_t keys = 0;
  int64_t bytes = 0;
  for (auto _ : state) {
    PendingBatch b = ts.store().NewBatch();
    JournalEntry e;
    e.target = "gmall_dau_info_2024-11-25";
    for (int64_t i = 0; i < n; ++i, ++next) {
      std::string mid = absl::StrCat("mid_", next);
      (void)b.PutDedup(20241125, static_cast<int32_t>(next % 4), mid,
                       DedupValue{1732500000000 + next, next});
      AppendJournalIndexAction(&e.body, e.target, mid, Doc(next));
    }
    e.doc_count = static_cast<uint32_t>(n);
    bytes += static_cast<int64_t>(e.body.size());
    b.SetJournal(std::move(e));
    for (int p = 0; p < 4; ++p) (void)b.SetOffset("DWD_PAGE_LOG_TOPIC", p, next);
    keys += n + 4 + 1;
    auto r = ts.store().Commit(std::move(b));
    if (!r.ok()) {
      state.SkipWithError("Commit");
      return;
    }
    // Delivered: the journal entry is deleted (unsynced), as the transaction does.
    (void)ts.store().DeleteJournal(*r->journal_seq);
  }
  state.counters["batches/s"] =
      benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
  state.counters["keys/s"] =
      benchmark::Counter(static_cast<double>(keys), benchmark::Counter::kIsRate);
  state.SetBytesProcessed(bytes);
}
BENCHMARK(BM_CommitDauBatch)->Arg(100)->Arg(1000)->Arg(10000)->UseRealTime()->MinTime(2.0);

// The transform's read: a de-dup lookup through a pending batch (batch overlay + RocksDB),
// against 1 M committed keys.
void BM_DedupLookupThroughBatch(benchmark::State& state) {
  TempStore ts(/*sync=*/false);
  constexpr int64_t kKeys = 1000000;
  for (int64_t base = 0; base < kKeys; base += 10000) {
    PendingBatch b = ts.store().NewBatch();
    for (int64_t i = base; i < base + 10000; ++i) {
      (void)b.PutDedup(20241125, static_cast<int32_t>(i % 4), absl::StrCat("mid_", i),
                       DedupValue{i, i});
    }
    (void)ts.store().Commit(std::move(b));
  }
  PendingBatch b = ts.store().NewBatch();
  int64_t i = 0;
  for (auto _ : state) {
    // Half hits, half misses.
    int64_t k = (i * 7919) % (2 * kKeys);
    auto v = b.DedupLookup(20241125, static_cast<int32_t>(k % 4), absl::StrCat("mid_", k));
    benchmark::DoNotOptimize(v);
    ++i;
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_DedupLookupThroughBatch);

}  // namespace
}  // namespace rtdw

BENCHMARK_MAIN();
