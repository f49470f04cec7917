// The Kafka -> Kafka jobs (log-split, db-split) wired to the engine: a BatchRunner
// (core/engine/batch_runner.h) over a KafkaConsumer, with the "produce and await acks" strategy
// (core/engine/produce_strategy.h) over a KafkaProducer and the job's SplitStep.
//
// Fencing (group mode; docs/OPERATIONS.md "Fencing of the split jobs"): a member applies no Redis
// write, produces no DWD record and commits no offset for partitions it no longer owns: the
// pipeline asks the source whether the assignment is lost before every attempt and commit, and
// db-split's Redis writes carry a fencing token per partition (RedisClient::ClaimFence).
#ifndef RTDW_TOOLS_RTDWD_SPLIT_JOB_H_
#define RTDW_TOOLS_RTDWD_SPLIT_JOB_H_

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "core/config/config.h"
#include "core/engine/job_runner.h"
#include "core/engine/split_step.h"
#include "core/metrics.h"

namespace rtdw {

struct SplitJobSettings {
  std::string job;
  std::string source_topic;
  std::string dead_letter_topic;
  int64_t batch_max_records = 10000;
  std::chrono::milliseconds batch_max_ms{200};
};

// The runner of a split job. `config` and `metrics` must outlive it.
std::unique_ptr<JobRunner> MakeSplitRunner(const Config& config, SplitJobSettings settings,
                                           std::unique_ptr<SplitStep> step,
                                           MetricsRegistry* metrics);

}  // namespace rtdw

#endif  // RTDW_TOOLS_RTDWD_SPLIT_JOB_H_
