// Micro benchmarks of the ingest transforms: log-split (parse + validate + split into DWD records)
// and db-split (parse + route a Maxwell record), on realistic records built here (the same shapes
// as rtdw-gen's). Sinks only count, so the figures are the transforms' own cost on one core.
//
//   build/bin/rtdw-micro-log-split --benchmark_counters_tabular=true
#include <cstdint>
#include <string>
#include <vector>

#include "benchmark/benchmark.h"
#include "core/db_split.h"
#include "core/json_limits.h"
#include "core/log_split.h"
#include "core/records.h"

namespace rtdw {
namespace {

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

// App-log records: 85% pages (0-10 displays, 0-3 actions), 15% starts, 2% with err. About 570
// bytes on average, like rtdw-gen's.
std::vector<std::string> MakeLogRecords(size_t n) {
  static const char* kPages[] = {"home", "good_list", "good_detail", "cart", "trade", "mine"};
  static const char* kDisplay[] = {"query", "promotion", "recommend", "activity"};
  Rand r{7};
  std::vector<std::string> out;
  out.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    std::string s = "{\"common\":{\"ar\":\"" + std::to_string(r.Range(1, 34)) +
                    "\",\"ba\":\"Xiaomi\",\"ch\":\"xiaomi\",\"is_new\":\"0\",\"md\":\"Xiaomi 10 "
                    "Pro\",\"mid\":\"mid_" +
                    std::to_string(r.Range(1, 100000)) + "\",\"os\":\"Android 11.0\",\"uid\":\"" +
                    std::to_string(r.Range(1, 80000)) + "\",\"vc\":\"v2.1.134\"},";
    int64_t ts = 1764000000000 + static_cast<int64_t>(r.Next() % 86400000);
    if (r.Range(0, 99) < 15) {
      s +=
          "\"start\":{\"entry\":\"icon\",\"loading_time\":" + std::to_string(r.Range(1000, 20000)) +
          ",\"open_ad_id\":" + std::to_string(r.Range(1, 20)) +
          ",\"open_ad_ms\":5213,\"open_ad_skip_ms\":0},";
    } else {
      s += "\"page\":{\"during_time\":" + std::to_string(r.Range(1000, 20000)) +
           ",\"item\":\"31\",\"item_type\":\"sku_id\",\"last_page_id\":\"home\",\"page_id\":\"" +
           kPages[r.Range(0, 5)] + "\",\"source_type\":\"recommend\"},";
      int nd = r.Range(0, 10);
      if (nd > 0) {
        s += "\"displays\":[";
        for (int d = 0; d < nd; ++d) {
          if (d) s += ",";
          s += "{\"display_type\":\"" + std::string(kDisplay[r.Range(0, 3)]) + "\",\"item\":\"" +
               std::to_string(r.Range(1, 35)) +
               "\",\"item_type\":\"sku_id\",\"order\":" + std::to_string(d + 1) +
               ",\"pos_id\":" + std::to_string(r.Range(1, 5)) + "}";
        }
        s += "],";
      }
      int na = r.Range(0, 3) == 0 ? r.Range(1, 3) : 0;
      if (na > 0) {
        s += "\"actions\":[";
        for (int a = 0; a < na; ++a) {
          if (a) s += ",";
          s += "{\"action_id\":\"cart_add\",\"item\":\"31\",\"item_type\":\"sku_id\",\"ts\":" +
               std::to_string(ts + 1000 * a) + "}";
        }
        s += "],";
      }
    }
    if (r.Range(0, 99) < 2) {
      s += "\"err\":{\"error_code\":1245,\"msg\":\" Exception in thread java.net."
           "SocketTimeoutException\"},";
    }
    s += "\"ts\":" + std::to_string(ts) + "}";
    out.push_back(std::move(s));
  }
  return out;
}

std::vector<std::string> MakeDbRecords(size_t n) {
  Rand r{9};
  std::vector<std::string> out;
  out.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    int kind = r.Range(0, 9);
    std::string id = std::to_string(i + 1);
    if (kind < 3) {
      out.push_back(
          "{\"database\":\"gmall\",\"table\":\"order_info\",\"type\":\"insert\",\"ts\":1764036001,"
          "\"xid\":8713,\"xoffset\":0,\"data\":{\"id\":" +
          id +
          ",\"consignee\":\"张三\",\"total_amount\":8197.00,\"order_status\":\"1001\",\"user_id\":"
          "37,"
          "\"payment_way\":\"3501\",\"out_trade_no\":\"469857061091052\",\"trade_body\":\"Apple "
          "iPhone 12 等1件商品\",\"create_time\":\"2025-11-25 10:00:01\",\"operate_time\":null,"
          "\"expire_time\":\"2025-11-25 10:15:01\",\"province_id\":11,\"activity_reduce_amount\":"
          "0.00,\"coupon_reduce_amount\":0.00,\"original_total_amount\":8197.00,\"feight_fee\":5."
          "00,"
          "\"feight_fee_reduce\":0.00,\"refundable_time\":\"2025-12-02 10:00:01\"}}");
    } else if (kind < 9) {
      out.push_back(
          "{\"database\":\"gmall\",\"table\":\"order_detail\",\"type\":\"insert\",\"ts\":"
          "1764036001,"
          "\"xid\":8713,\"xoffset\":1,\"data\":{\"id\":" +
          id + ",\"order_id\":" + std::to_string(i / 3 + 1) +
          ",\"sku_id\":3,\"sku_name\":\"Apple iPhone 12 (A2404) 64GB "
          "黑色\",\"order_price\":8197.00,"
          "\"sku_num\":1,\"create_time\":\"2025-11-25 10:00:01\",\"split_total_amount\":8197.00,"
          "\"split_activity_amount\":0.00,\"split_coupon_amount\":0.00}}");
    } else {
      out.push_back(
          "{\"database\":\"gmall\",\"table\":\"user_info\",\"type\":\"update\",\"ts\":1764036001,"
          "\"xid\":8714,\"commit\":true,\"data\":{\"id\":" +
          std::to_string(r.Range(1, 1000)) +
          ",\"login_name\":\"xfttjpbk\",\"nick_name\":\"小美\",\"name\":\"罗超\",\"phone_num\":"
          "\"13510577564\",\"email\":\"xfttjpbk@sina.com\",\"user_level\":\"3\",\"birthday\":"
          "\"1974-06-09\",\"gender\":\"F\",\"create_time\":\"2025-01-07 "
          "15:51:39\",\"operate_time\":"
          "\"2025-11-25 10:00:01\",\"status\":null},\"old\":{\"user_level\":\"2\"}}");
    }
  }
  return out;
}

void SetRates(benchmark::State& state, size_t records, size_t bytes, uint64_t outputs) {
  state.counters["records/s"] =
      benchmark::Counter(static_cast<double>(records), benchmark::Counter::kIsRate);
  state.counters["outputs/s"] =
      benchmark::Counter(static_cast<double>(outputs), benchmark::Counter::kIsRate);
  state.SetBytesProcessed(static_cast<int64_t>(bytes));
}

void BM_LogSplit(benchmark::State& state) {
  const auto records = MakeLogRecords(20000);
  LogSplitTransform split{LogSplitOptions()};
  CountingSink sink;
  InputRecord in;
  in.topic = "ODS_BASE_LOG";
  size_t i = 0, n = 0, bytes = 0;
  for (auto _ : state) {
    in.value = records[i];
    in.offset = static_cast<int64_t>(n);
    benchmark::DoNotOptimize(split.Process(in, &sink));
    bytes += records[i].size();
    if (++i == records.size()) i = 0;
    ++n;
  }
  uint64_t outputs = 0;
  for (uint64_t c : sink.per_slot) outputs += c;
  SetRates(state, n, bytes, outputs);
}
BENCHMARK(BM_LogSplit);
// Fixed counts for callgrind A/B pairs (instructions per record, independent of the machine's
// load): valgrind --tool=callgrind --toggle-collect='rtdw::LogSplitTransform::Process*'
//   build/bin/rtdw-micro-log-split --benchmark_filter='BM_LogSplit/iterations'
// then divide the collected Ir by 20,000 (docs/BENCHMARKS.md).
BENCHMARK(BM_LogSplit)->Iterations(20000);

// The parse alone (copy + in-place parse + limits), to see what the split itself adds.
void BM_LogParseOnly(benchmark::State& state) {
  const auto records = MakeLogRecords(20000);
  JsonParser parser(JsonLimits{524288, 64});
  size_t i = 0, n = 0, bytes = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(parser.Parse(records[i]));
    bytes += records[i].size();
    if (++i == records.size()) i = 0;
    ++n;
  }
  SetRates(state, n, bytes, 0);
}
BENCHMARK(BM_LogParseOnly);

void BM_DbSplit(benchmark::State& state) {
  const auto records = MakeDbRecords(20000);
  DbSplitTransform split{DbSplitOptions()};
  TableLists tables =
      TableLists::From({"order_info", "order_detail"}, {"user_info", "base_province"});
  CountingSink sink;
  std::vector<RedisWrite> redis;
  InputRecord in;
  in.topic = "ODS_BASE_DB";
  size_t i = 0, n = 0, bytes = 0;
  for (auto _ : state) {
    in.value = records[i];
    in.offset = static_cast<int64_t>(n);
    benchmark::DoNotOptimize(split.Process(in, tables, &sink, &redis));
    if (redis.size() > 4096) redis.clear();  // the driver applies them per batch
    bytes += records[i].size();
    if (++i == records.size()) i = 0;
    ++n;
  }
  SetRates(state, n, bytes, sink.by_name + split.counters().dim_sets);
}
BENCHMARK(BM_DbSplit);
BENCHMARK(BM_DbSplit)->Iterations(20000);  // for callgrind, as BM_LogSplit

}  // namespace
}  // namespace rtdw

BENCHMARK_MAIN();
