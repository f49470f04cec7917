// rtdw-baseline-dau: the SEED-STYLE BASELINE of the dau job, for the benchmark suite only.
//
// This is the seed's own design (the Spark-Streaming "DauApp" of the system rtdw replaces;
// docs/BENCHMARKS.md, "The seed-style baseline"),
// written honestly and well in C++ with rtdw's connectors, so that rtdw-bench can put it side by
// side with rtdw's `dau` job on the same data. It is NOT part of the pipeline and must not be
// deployed: it loses users when it crashes at the wrong moment (the state-restoration problem).
//
// One batch (a Spark micro-batch):
//   poll up to batch_max_records / batch_max_ms from the assigned partitions (KafkaConsumer)
//   -> per source partition, in parallel on `parallelism` workers ("foreachPartition"), each
//      worker with its own Redis connections (the seed's one Jedis connection per partition):
//        keep pages whose last_page_id is empty or absent ("self-check");
//        SADD <state_key_prefix><yyyy-MM-dd> mid, per record ("third-party check": the reply says
//          whether the mid is new, i.e. SISMEMBER + SADD in one atomic round trip);
//        for a new mid: GET its user and province dimension rows (one MGET of the record's two
//          keys: one round trip per record);
//        build the DauInfo document (the same fields as rtdw's dau, docs/FORMATS.md §4, without
//          rtdw's lineage field rtdw_src)
//   -> [fault point after_sadd: the seed's crash window — state written, output not]
//   -> per partition, in parallel: ES bulk of its documents (`index`, _id = mid, idempotent)
//   -> commit the batch's next offsets to Kafka (asynchronously, as Spark's commitAsync does).
// Start-up: partitions are assigned at the group's committed offsets (earliest when none).
// With restore_state_from_es (the seed's remedy, §4): before consuming, the day's Redis set is
// replaced by the mids found in the day's ES index.
//
// What it does not do (as the seed does not): no atomicity between the Redis set, the ES write and
// the offsets. A crash after SADD and before the ES write loses those users for good: the retry
// finds them in the set and filters them out.
#ifndef RTDW_BENCH_BASELINE_BASELINE_DAU_H_
#define RTDW_BENCH_BASELINE_BASELINE_DAU_H_

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace rtdw::baseline {

struct BaselineOptions {
  std::string brokers;
  std::string topic = "DWD_PAGE_LOG_TOPIC";
  std::string group = "rtdw-baseline-dau";
  std::string redis_host = "127.0.0.1";
  int redis_port = 6379;
  std::string es_url = "http://127.0.0.1:9200";
  std::string index_prefix = "baseline_dau_info_";
  std::string state_key_prefix = "BASELINE:DAU:";  // + yyyy-MM-dd: the day's set of mids
  std::string time_zone = "Asia/Shanghai";
  int64_t batch_max_records = 10000;
  std::chrono::milliseconds batch_max_ms{200};
  int parallelism = 4;  // partitions processed at once (Spark executor cores)
  // Exit 0 once every partition is at its end and nothing arrived for this long (nullopt: run
  // until SIGTERM/SIGINT).
  std::optional<std::chrono::milliseconds> exit_when_idle;
  // The seed's remedy: replace the day's Redis set by the mids in ES before consuming.
  std::optional<std::string> restore_day;  // yyyy-MM-dd
  // Appends "<epoch ms> <records consumed so far> <documents written so far>" after every batch.
  std::string progress_file;
  // "after_sadd:K": SIGKILL itself after the K-th batch's SADDs, before its ES write (tests).
  std::string fault;
};

struct BaselineStats {
  uint64_t records = 0;      // consumed
  uint64_t first_pages = 0;  // passed the last_page_id check
  uint64_t new_mids = 0;     // SADD said new
  uint64_t documents = 0;    // acknowledged by ES
  uint64_t rejected = 0;     // refused by ES for good (logged, dropped: as the seed)
  uint64_t batches = 0;
  uint64_t redis_round_trips = 0;
  uint64_t restored_mids = 0;
  double restore_seconds = 0;
  double seconds = 0;  // from start to the last batch's offset commit
};

// Runs until idle (or stopped); the stats of the whole run.
absl::StatusOr<BaselineStats> RunBaselineDau(const BaselineOptions& options);

}  // namespace rtdw::baseline

#endif  // RTDW_BENCH_BASELINE_BASELINE_DAU_H_
