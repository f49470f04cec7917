// What rtdwd tells an operator about its jobs, besides /health: the Kafka lag per partition, the
// state stores' sizes, the de-dup keys per day, the process's memory, and the one-line progress
// report per job every `log.progress_interval` seconds.
//
// Every series here is created when the job is created, at 0 (docs/OPERATIONS.md,
// "Monitoring": per-job series "exist from the job's start, at 0"), except the per-day de-dup
// counts, which exist only for the days the store holds (they are rendered from a snapshot, so a
// day dropped by retention disappears instead of lingering at its last value).
#ifndef RTDW_TOOLS_RTDWD_PROGRESS_H_
#define RTDW_TOOLS_RTDWD_PROGRESS_H_

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "connectors/kafka/consumer.h"
#include "core/metrics.h"
#include "tools/rtdwd/job_common.h"

namespace rtdw {

class StateStore;

using TopicPartition = std::pair<std::string, int32_t>;

// Kafka lag of one job's source partitions: `rtdw_kafka_lag{job,topic,partition}` = the
// partition's high watermark (as last seen by the fetcher) minus the job's position (the next
// offset it will read). Fed on the job's own thread; total() and partitions() are readable from
// any thread.
//
// Before the first record of a partition the position is known only when it was stored (a
// resumed job). Started at `latest`, the lag is 0 until records arrive; started at `earliest`
// with no stored offset it is the high watermark (an upper bound: it assumes the log starts at 0).
class KafkaLagTracker {
 public:
  KafkaLagTracker(MetricsRegistry* metrics, std::string job);

  // A new assignment: every partition's series exists from now on (at 0 until an Update).
  void Assigned(const std::vector<PartitionStart>& starts);
  // After a committed batch: the next offset of each partition the batch read.
  void Committed(const std::map<TopicPartition, int64_t>& next_offsets);
  // With the fetcher's high watermarks (KafkaConsumer::HighWatermarks()). `at_end`: the consumer
  // verified that every assigned partition is at its end, so every lag is 0.
  void Update(const std::map<TopicPartition, int64_t>& high_watermarks, bool at_end = false);

  int64_t total() const { return total_.load(std::memory_order_relaxed); }
  int partitions() const { return partitions_.load(std::memory_order_relaxed); }

 private:
  struct Part {
    int64_t position = -1;  // next offset to read; -1 unknown
    bool from_end = false;  // assigned at `latest` without a stored offset
    Gauge* gauge = nullptr;
  };
  MetricsRegistry* metrics_;
  std::string job_;
  std::map<TopicPartition, Part> parts_;  // the job's thread only
  std::atomic<int64_t> total_{0};
  std::atomic<int> partitions_{0};
};

// The state store's figures as gauges (`rtdw_state_*{job[,cf]}`, with the free space of its file
// system and the floor state.min_free_mb) plus the de-dup keys per day
// (`rtdw_dedup_keys{job,day}`, counted exactly by a scan of each day; a scan is repeated no more
// often than 20 times its own duration, so a large store costs at most ~5% of one thread).
class StoreMetrics {
 public:
  StoreMetrics(MetricsRegistry* metrics, std::string job, bool has_dedup);
  // Reads `store`'s Stats() (and the de-dup days when due). Call from one thread at a time.
  void Refresh(StateStore& store);
  // The per-day series in the Prometheus text format (no HELP/TYPE lines).
  std::string RenderDedupDays() const;

 private:
  std::string job_;
  bool has_dedup_;
  std::map<std::string, Gauge*> sst_bytes_, memtable_bytes_, keys_;  // by column family
  Gauge* journal_bytes_;
  Gauge* stored_dead_letters_;
  Gauge* free_bytes_;      // the store's file system
  Gauge* min_free_bytes_;  // its floor (state.min_free_mb)
  std::chrono::steady_clock::time_point next_scan_{};
  mutable std::mutex mu_;
  std::map<uint32_t, uint64_t> dedup_days_;  // yyyymmdd -> keys
};

// The HELP/TYPE header and samples of every series StoreMetrics renders itself.
std::string RenderDedupDaysFamily(const std::vector<const StoreMetrics*>& stores);

// Resident set size of this process in bytes (/proc/self/statm); 0 when unknown.
uint64_t ProcessRssBytes();

// The one-line progress report of a job: rates since the previous report, lag, backlog and dead
// letters, read from the job's series in the registry.
class ProgressReporter {
 public:
  ProgressReporter(MetricsRegistry* metrics, std::string job, bool has_journal,
                   const KafkaLagTracker* lag);
  // The line for the interval since the previous call (or since construction).
  std::string Line(std::string_view health_problem);

 private:
  std::string job_;
  const KafkaLagTracker* lag_;
  JobMetrics series_;  // the same series the job updates (one object per name and labels)
  Gauge* backlog_ = nullptr;
  std::chrono::steady_clock::time_point last_time_;
  uint64_t last_in_ = 0, last_out_ = 0, last_dead_ = 0, last_batches_ = 0;
};

}  // namespace rtdw

#endif  // RTDW_TOOLS_RTDWD_PROGRESS_H_
