// Micro benchmarks of the wide-table transforms (core/dau_transform.h,
// core/order_wide_transform.h) on realistic DWD records built here, in batches of 10,000 (the
// default jobs.batch_max_records):
//
//  - BM_Dau/memory:  the transform alone (state in maps, dimensions from a map): parse, filter,
//                    de-dup, one dimension lookup, documents and the bulk body.
//  - BM_Dau/rocksdb: the transform on the real state store's pending batch, plus the commit of
//                    the batch transaction (offsets + de-dup + journal entry in one WriteBatch,
//                    fsync per batch): everything dau does per batch but Kafka and ES I/O.
//  - BM_OrderWide:   the join (details arrive around their order), state in maps.
//
//   build/bin/rtdw-micro-dau --benchmark_counters_tabular=true
//
// Rates: records/s = input records per second of one core; docs/s = documents made.
#include <stdlib.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/time.h"
#include "bench/micro/temp_store.h"
#include "benchmark/benchmark.h"
#include "core/dau_transform.h"
#include "core/order_wide_transform.h"
#include "storage/state_store.h"
#include "tests/wide/memory_state.h"

namespace rtdw {
namespace {

using ::rtdw::testing::MapDimensionSource;
using ::rtdw::testing::MemoryBatch;
using ::rtdw::testing::MemoryStore;

constexpr size_t kBatch = 10000;
constexpr int32_t kPartitions = 4;
// 2025-11-25 00:00:00 in Asia/Shanghai.
constexpr int64_t kDayStart = 1764000000000;
constexpr int64_t kNow = kDayStart + 36LL * 3600 * 1000;

// Deterministic pseudo-random numbers (splitmix64).
struct Rand {
  uint64_t s;
  uint64_t Next() {
    uint64_t x = (s += 0x9e3779b97f4a7c15ull);
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
  }
  int Range(int lo, int hi) { return lo + static_cast<int>(Next() % (hi - lo + 1)); }
};

absl::TimeZone Shanghai() {
  absl::TimeZone tz;
  if (!absl::LoadTimeZone("Asia/Shanghai", &tz)) std::abort();
  return tz;
}

// A day of DWD page records of 100,000 devices, in upload order (event time + jitter): about a
// sixth are the first page of a visit (no last_page_id), like rtdw-gen's visits of ~6 pages.
// Records of a mid stay on one partition (log-split keys by mid). About 330 bytes each.
struct Input {
  std::vector<std::string> values;
  std::vector<InputRecord> records;
};

Input MakePages(size_t n) {
  static const char* kPages[] = {"home", "good_list", "good_detail", "cart", "trade", "mine"};
  static const char* kBrands[] = {"Xiaomi", "iPhone", "Huawei", "OPPO", "vivo"};
  Rand r{17};
  Input in;
  in.values.reserve(n);
  std::vector<int64_t> next_offset(kPartitions, 0);
  for (size_t i = 0; i < n; ++i) {
    int mid = r.Range(1, 100000);
    int64_t ts =
        kDayStart + static_cast<int64_t>(i) * 86400000 / static_cast<int64_t>(n) + r.Range(0, 2000);
    bool first = r.Range(0, 5) == 0;
    std::string s = absl::StrCat(
        R"({"mid":"mid_)", mid, R"(","user_id":")", r.Range(1, 80000), R"(","province_id":")",
        r.Range(1, 34), R"(","channel":"xiaomi","is_new":")", r.Range(0, 9) == 0 ? "1" : "0",
        R"(","model":"Xiaomi 10 Pro","operate_system":"Android 11.0","version_code":"v2.1.134",)",
        R"("brand":")", kBrands[mid % 5], R"(","page_id":")", kPages[r.Range(0, 5)], "\"");
    if (!first) absl::StrAppend(&s, R"(,"last_page_id":")", kPages[r.Range(0, 5)], "\"");
    absl::StrAppend(&s, R"(,"page_item":"31","page_item_type":"sku_id","during_time":)",
                    r.Range(1000, 20000), R"(,"source_type":"recommend","ts":)", ts, "}");
    in.values.push_back(std::move(s));
  }
  in.records.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    // Partition by mid, as log-split's key does.
    size_t at = in.values[i].find("mid_") + 4;
    int mid = std::atoi(in.values[i].c_str() + at);
    InputRecord rec;
    rec.topic = "DWD_PAGE_LOG_TOPIC";
    rec.partition = mid % kPartitions;
    rec.offset = next_offset[rec.partition]++;
    rec.value = in.values[i];
    in.records.push_back(rec);
  }
  return in;
}

void AddDims(MapDimensionSource* dims) {
  for (int u = 1; u <= 80000; ++u) {
    dims->rows[absl::StrCat("DIM:USER_INFO:", u)] =
        absl::StrCat(R"({"id":)", u,
                     R"(,"login_name":"xfttjpbk","nick_name":"小美","name":"罗超",)"
                     R"("phone_num":"13510577564","email":"xfttjpbk@sina.com","user_level":"3",)"
                     R"("birthday":"19)",
                     60 + u % 40, R"(-06-09","gender":")", u % 2 ? "F" : "M",
                     R"(","create_time":"2025-01-07 15:51:39","operate_time":null,"status":null})");
  }
  for (int p = 1; p <= 34; ++p) {
    dims->rows[absl::StrCat("DIM:BASE_PROVINCE:", p)] =
        absl::StrCat(R"({"id":)", p,
                     R"(,"name":"北京","region_id":"1","area_code":"110000","iso_code":"CN-11",)"
                     R"("iso_3166_2":"CN-BJ"})");
  }
}

DauOptions BenchDauOptions() {
  DauOptions o;
  o.tz = Shanghai();
  return o;
}

void SetRates(benchmark::State& state, uint64_t records, uint64_t docs, uint64_t bytes) {
  state.counters["records/s"] =
      benchmark::Counter(static_cast<double>(records), benchmark::Counter::kIsRate);
  state.counters["docs/s"] =
      benchmark::Counter(static_cast<double>(docs), benchmark::Counter::kIsRate);
  state.SetBytesProcessed(static_cast<int64_t>(bytes));
}

// One batch per iteration of the transform `make()` builds, over in-memory state; a fresh
// transform and a fresh day of state whenever the input is used up.
template <typename MakeTransform>
void RunInMemory(benchmark::State& state, const Input& input, MakeTransform make) {
  MapDimensionSource dims;
  AddDims(&dims);
  auto transform = make();
  auto store = std::make_unique<MemoryStore>();
  BulkOutput out;
  size_t pos = 0;
  uint64_t records = 0, docs = 0, bytes = 0;
  for (auto _ : state) {
    if (pos >= input.records.size()) {
      state.PauseTiming();
      transform = make();
      store = std::make_unique<MemoryStore>();
      pos = 0;
      state.ResumeTiming();
    }
    size_t n = std::min(kBatch, input.records.size() - pos);
    std::span<const InputRecord> batch(input.records.data() + pos, n);
    MemoryBatch b(store.get());
    absl::Status st = transform->ProcessBatch(batch, kNow, &dims, &b, &out);
    if (!st.ok()) state.SkipWithError(std::string(st.message()).c_str());
    for (const auto& r : batch) bytes += r.value.size();
    records += n;
    docs += out.docs;
    pos += n;
  }
  SetRates(state, records, docs, bytes);
}

void BM_DauMemory(benchmark::State& state) {
  static const Input input = MakePages(400000);
  RunInMemory(state, input, [] { return std::make_unique<DauTransform>(BenchDauOptions()); });
}
BENCHMARK(BM_DauMemory)->Name("BM_Dau/memory")->Unit(benchmark::kMillisecond);
// Fixed counts for callgrind A/B pairs (instructions per record, independent of the machine's
// load): 4 batches = 40,000 records (docs/BENCHMARKS.md, "Issue 20").
//   valgrind --tool=callgrind --toggle-collect='rtdw::DauTransform::ProcessBatch*'
//     build/bin/rtdw-micro-dau --benchmark_filter='BM_Dau/memory/iterations'
BENCHMARK(BM_DauMemory)->Name("BM_Dau/memory")->Iterations(4);

// The real store's pending batch as the transform's BatchState (watermarks kept beside it, as the
// driver keeps them).
class StoreBatchState : public BatchState {
 public:
  StoreBatchState(PendingBatch* b, std::map<int32_t, int64_t>* wm) : b_(b), wm_(wm) {}
  absl::StatusOr<std::optional<DedupValue>> DedupLookup(DayNumber day, int32_t partition,
                                                        std::string_view mid) const override {
    return b_->DedupLookup(day, partition, mid);
  }
  absl::Status PutDedup(DayNumber day, int32_t partition, std::string_view mid,
                        const DedupValue& value) override {
    return b_->PutDedup(day, partition, mid, value);
  }
  absl::Status PutJoinRow(const JoinRow& row) override { return b_->PutJoinRow(row); }
  absl::Status DeleteJoinRow(int32_t partition, std::string_view order_id, JoinSide side,
                             std::string_view row_id) override {
    return b_->DeleteJoinRow(partition, order_id, side, row_id);
  }
  absl::StatusOr<std::vector<JoinRow>> JoinLookup(int32_t partition, std::string_view order_id,
                                                  std::optional<JoinSide> side) const override {
    return b_->JoinLookup(partition, order_id, side);
  }
  absl::StatusOr<std::vector<JoinRow>> ExpireJoinRows(int32_t partition, int64_t cutoff_ms,
                                                      size_t limit) override {
    return b_->ExpireJoinRows(partition, cutoff_ms, limit);
  }
  void AddDeadLetter(std::string json_line) override { b_->AddDeadLetter(std::move(json_line)); }
  absl::StatusOr<std::optional<int64_t>> GetWatermark(int32_t partition) const override {
    auto it = wm_->find(partition);
    return it == wm_->end() ? std::optional<int64_t>() : std::optional<int64_t>(it->second);
  }
  absl::Status SetWatermark(int32_t partition, int64_t event_ms) override {
    (*wm_)[partition] = event_ms;
    return absl::OkStatus();
  }
  absl::StatusOr<std::optional<int64_t>> GetInputWatermark(std::string_view topic,
                                                           int32_t partition) const override {
    return b_->GetInputWatermark(topic, partition);
  }
  absl::Status SetInputWatermark(std::string_view topic, int32_t partition,
                                 int64_t event_ms) override {
    return b_->SetInputWatermark(topic, partition, event_ms);
  }

 private:
  PendingBatch* b_;
  std::map<int32_t, int64_t>* wm_;
};

// One batch per iteration of the transform `make()` builds, on the real state store's pending
// batch, and the commit of the batch transaction (offsets + state + journal entry in one
// WriteBatch, fsync per batch): everything the job does per batch but Kafka and ES I/O. A fresh
// transform and store whenever the input is used up.
template <typename MakeTransform>
void RunOnStore(benchmark::State& state, const Input& input, MakeTransform make) {
  MapDimensionSource dims;
  AddDims(&dims);
  auto transform = make();
  auto temp = std::make_unique<TempStore>();
  std::map<int32_t, int64_t> watermarks;
  BulkOutput out;
  size_t pos = 0;
  uint64_t records = 0, docs = 0, bytes = 0;
  for (auto _ : state) {
    if (pos >= input.records.size()) {
      state.PauseTiming();
      transform = make();
      temp.reset();
      temp = std::make_unique<TempStore>();
      watermarks.clear();
      pos = 0;
      state.ResumeTiming();
    }
    size_t n = std::min(kBatch, input.records.size() - pos);
    std::span<const InputRecord> batch(input.records.data() + pos, n);
    PendingBatch pending = temp->store().NewBatch();
    StoreBatchState view(&pending, &watermarks);
    absl::Status st = transform->ProcessBatch(batch, kNow, &dims, &view, &out);
    if (!st.ok()) {
      state.SkipWithError(std::string(st.message()).c_str());
      break;
    }
    std::map<std::pair<std::string_view, int32_t>, int64_t> next;
    for (const auto& r : batch) next[{r.topic, r.partition}] = r.offset + 1;
    for (const auto& [tp, o] : next) (void)pending.SetOffset(tp.first, tp.second, o);
    JournalEntry entry;
    entry.target = out.target;
    entry.body = std::move(out.body);
    entry.doc_count = out.docs;
    pending.SetJournal(std::move(entry));
    auto committed = temp->store().Commit(std::move(pending));
    if (!committed.ok()) {
      state.SkipWithError(std::string(committed.status().message()).c_str());
      break;
    }
    for (const auto& r : batch) bytes += r.value.size();
    records += n;
    docs += out.docs;
    pos += n;
  }
  SetRates(state, records, docs, bytes);
}

void BM_DauRocksDb(benchmark::State& state) {
  static const Input input = MakePages(400000);
  RunOnStore(state, input, [] { return std::make_unique<DauTransform>(BenchDauOptions()); });
}
BENCHMARK(BM_DauRocksDb)->Name("BM_Dau/rocksdb")->Unit(benchmark::kMillisecond)->UseRealTime();
// For callgrind, as BM_Dau/memory: 4 batches = 40,000 records, the transform and the commit
// (--toggle-collect='rtdw::DauTransform::ProcessBatch*'
// --toggle-collect='rtdw::StateStore::Commit*').
BENCHMARK(BM_DauRocksDb)->Name("BM_Dau/rocksdb")->Iterations(4);

// Orders and their 1-5 details (Maxwell `data` rows), details arriving from just before their
// order to a minute after; co-partitioned by order id.
Input MakeOrderRows(size_t orders, absl::TimeZone tz) {
  Rand r{5};
  struct Row {
    int64_t at;
    bool order;
    int64_t partition;
    std::string value;
  };
  std::vector<Row> rows;
  int64_t detail_id = 1;
  for (size_t o = 1; o <= orders; ++o) {
    int64_t at = kDayStart + static_cast<int64_t>(o) * 86400000 / static_cast<int64_t>(orders);
    std::string ct = absl::FormatTime("%Y-%m-%d %H:%M:%S", absl::FromUnixMillis(at), tz);
    int64_t p = static_cast<int64_t>(o % kPartitions);
    rows.push_back(
        {at, true, p,
         absl::StrFormat(
             R"({"id":%d,"consignee":"张三","total_amount":8197.00,"order_status":"1001",)"
             R"("user_id":%d,"payment_way":"3501","out_trade_no":"469857061091052",)"
             R"("trade_body":"Apple iPhone 12 等1件商品","create_time":"%s","operate_time":null,)"
             R"("expire_time":"2025-11-25 10:15:01","province_id":%d,)"
             R"("activity_reduce_amount":0.00,"coupon_reduce_amount":0.00,)"
             R"("original_total_amount":8197.00,"feight_fee":5.00,"feight_fee_reduce":0.00,)"
             R"("refundable_time":"2025-12-02 10:00:01"})",
             o, r.Range(1, 80000), ct, r.Range(1, 34))});
    int details = r.Range(1, 5);
    for (int d = 0; d < details; ++d) {
      rows.push_back(
          {at + r.Range(-500, 60000), false, p,
           absl::StrFormat(R"({"id":%d,"order_id":%d,"sku_id":3,"sku_name":"Apple iPhone 12 )"
                           R"((A2404) 64GB 黑色","order_price":8197.00,"sku_num":1,)"
                           R"("create_time":"%s","split_total_amount":8197.00,)"
                           R"("split_activity_amount":0.00,"split_coupon_amount":0.00})",
                           detail_id++, o, ct)});
    }
  }
  std::stable_sort(rows.begin(), rows.end(),
                   [](const Row& a, const Row& b) { return a.at < b.at; });
  Input in;
  in.values.reserve(rows.size());
  std::map<std::pair<bool, int64_t>, int64_t> offsets;
  for (auto& row : rows) in.values.push_back(std::move(row.value));
  for (size_t i = 0; i < rows.size(); ++i) {
    InputRecord rec;
    rec.topic = rows[i].order ? "DWD_ORDER_INFO_I" : "DWD_ORDER_DETAIL_I";
    rec.partition = static_cast<int32_t>(rows[i].partition);
    rec.offset = offsets[{rows[i].order, rows[i].partition}]++;
    rec.value = in.values[i];
    in.records.push_back(rec);
  }
  return in;
}

void BM_OrderWide(benchmark::State& state) {
  static const Input input = MakeOrderRows(60000, Shanghai());
  RunInMemory(state, input, [] {
    OrderWideOptions o;
    o.tz = Shanghai();
    return std::make_unique<OrderWideTransform>(o);
  });
}
BENCHMARK(BM_OrderWide)->Unit(benchmark::kMillisecond);
// For callgrind, as BM_Dau/memory: 4 batches = 40,000 rows
// (--toggle-collect='rtdw::OrderWideTransform::ProcessBatch*').
BENCHMARK(BM_OrderWide)->Iterations(4);

// The join on the real state store (join rows, their time and offset index entries in RocksDB
// through the pending batch), with the commit: BM_OrderWide as the job runs it.
void BM_OrderWideRocksDb(benchmark::State& state) {
  static const Input input = MakeOrderRows(60000, Shanghai());
  RunOnStore(state, input, [] {
    OrderWideOptions o;
    o.tz = Shanghai();
    return std::make_unique<OrderWideTransform>(o);
  });
}
BENCHMARK(BM_OrderWideRocksDb)
    ->Name("BM_OrderWide/rocksdb")
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
// For callgrind: 4 batches = 40,000 rows
// (--toggle-collect='rtdw::OrderWideTransform::ProcessBatch*'
//  --toggle-collect='rtdw::StateStore::CommitBatch*').
BENCHMARK(BM_OrderWideRocksDb)->Name("BM_OrderWide/rocksdb")->Iterations(4);

}  // namespace
}  // namespace rtdw

BENCHMARK_MAIN();
