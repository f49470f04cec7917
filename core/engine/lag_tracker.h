// The source lag of a job, per partition, as the metric `rtdw_kafka_lag{job,topic,partition}` and
// as totals for the progress line and /health.
#ifndef RTDW_CORE_ENGINE_LAG_TRACKER_H_
#define RTDW_CORE_ENGINE_LAG_TRACKER_H_

#include <atomic>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "core/engine/record_source.h"
#include "core/metrics.h"
#include "core/records.h"

namespace rtdw {

// Lag of one job's source partitions: `rtdw_kafka_lag{job,topic,partition}` = the partition's
// high watermark (RecordSource::HighWatermarks(), as last seen) minus the job's position (the
// next offset it will read).
//
// Thread safety: Assigned(), Committed() and Update() are called on the job's own thread (one
// at a time); total() and partitions() are readable from any thread.
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
  // With the source's high watermarks. `at_end`: the source verified that every assigned
  // partition is at its end (RecordSource::VerifiedAtEnd), so every lag is 0.
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

}  // namespace rtdw

#endif  // RTDW_CORE_ENGINE_LAG_TRACKER_H_
