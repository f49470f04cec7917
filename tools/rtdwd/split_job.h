// The Kafka -> Kafka jobs (log-split, db-split): a KafkaConsumer, its assignment and group
// callbacks, wired to the engine's "produce and await acks" transaction
// (core/engine/produce_pipeline.h: two batches pipelined, commit after every acknowledgement,
// retry alone in order, drops for fencing and yielding, give-up at a stop):
//
//   poll N+1 (<= batch_max_records or batch_max_ms) into the pipeline's free slot -> Run() it
//   (the step, produce, await N's acknowledgements, commit N's next offsets to the state store)
//   -> commit them to Kafka too, asynchronously, for lag monitoring only (Committed()).
//
// With a batch in flight, the poll waits only kPipelinedPollWait: when the source is quiet the
// batch in flight is committed rather than waiting out the whole batch window. A stop (SIGTERM)
// finishes the batch in flight: Stop() awaits its acknowledgements and commits it.
//
// Group mode (kafka.group): the source's partitions are split among the group's members. The
// group's committed offsets (written after each commit, as in assign mode) are where a partition
// starts on its new owner. A revoke waits for the acknowledgements of the batch in flight at most
// kafka.revoke_timeout, commits it when they came, and commits the hand-over offsets to the group
// (again at most kafka.revoke_timeout); a batch not acknowledged by then is dropped uncommitted
// (the next owner reads it again). It never waits on Redis. A batch that keeps failing is retried
// in place for at most kafka.revoke_timeout, then put back uncommitted (the consumer moves back to
// its first offsets) so that the job polls — a rebalance is served only by a poll — before trying
// again; waits on Kafka are bounded by kafka.revoke_timeout too.
//
// Fencing (group mode; docs/OPERATIONS.md "Fencing of the split jobs"): a member applies no Redis
// write, produces no DWD record and commits no offset for partitions it no longer owns. Before
// every attempt at a batch (the first and each retry) and before every commit, the pipeline asks
// whether librdkafka found the assignment lost (AssignmentLost()); db-split's Redis writes also
// carry a fencing token per partition that every new owner claims (RedisClient::ClaimFence), so
// Redis itself refuses a stalled member's late writes. A fenced batch (and the one behind it) is
// dropped uncommitted, counted in rtdw_fenced_batches_total{job}, and the consumer is moved back
// to its first offset (Rewind(): the revoke that follows, or the same member if it still owns the
// partition, reads it again).
//
// Thread-safety: every method but HealthProblem(), CaughtUp(), GivenUp() after Stop(), lag() and
// the JobRunner stop hooks runs on the job's thread (the group callbacks inside its Poll());
// those read an atomic (caught_up_), the JobProblem and the lag tracker, each thread-safe. The
// runner has no lock of its own.
#ifndef RTDW_TOOLS_RTDWD_SPLIT_JOB_H_
#define RTDW_TOOLS_RTDWD_SPLIT_JOB_H_

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "connectors/kafka/consumer.h"
#include "connectors/kafka/producer.h"
#include "core/config/config.h"
#include "core/engine/batch_transaction.h"
#include "core/engine/job_runner.h"
#include "core/engine/produce_pipeline.h"
#include "core/engine/split_step.h"
#include "core/metrics.h"
#include "storage/state_store.h"
#include "tools/rtdwd/job_common.h"
#include "tools/rtdwd/progress.h"

namespace rtdw {

struct SplitJobSettings {
  std::string job;
  std::string source_topic;
  std::string dead_letter_topic;
  int64_t batch_max_records = 10000;
  std::chrono::milliseconds batch_max_ms{200};
};

class SplitJobRunner : public JobRunner, private RebalanceListener, private ConsumerControl {
 public:
  SplitJobRunner(const Config& config, SplitJobSettings settings, std::unique_ptr<SplitStep> step,
                 MetricsRegistry* metrics);
  // Max wait of a poll while a batch is in flight: when nothing arrives within it, the batch in
  // flight is committed rather than waiting out the whole batch window.
  static constexpr std::chrono::milliseconds kPipelinedPollWait{10};
  // Longest wait for a batch's acknowledgements before it is run again (a stop cuts it short).
  static constexpr std::chrono::milliseconds kDeliveryTimeout{60000};
  ~SplitJobRunner() override;

  const std::string& name() const override { return settings_.job; }
  absl::Status Start() override;
  absl::StatusOr<size_t> RunOnce() override;
  // False while a batch is in flight (produced, not committed).
  bool CaughtUp() const override { return caught_up_.load(); }
  std::string HealthProblem() const override;
  absl::Status Stop() override;
  std::string GivenUp() const override { return given_up_; }
  StateStore* store() override { return store_.get(); }
  const KafkaLagTracker* lag() const override { return &lag_; }
  void SetBatchLimits(int64_t max_records, std::chrono::milliseconds max_ms) override {
    settings_.batch_max_records = max_records;
    settings_.batch_max_ms = max_ms;
  }

 private:
  absl::Status TryAssign();
  // RebalanceListener (group mode, inside Poll()).
  absl::StatusOr<std::vector<PartitionStart>> OnAssigned(
      const std::vector<TopicPartition>& partitions) override;
  void OnRevoked(const std::vector<TopicPartition>& partitions) override;
  // ConsumerControl (the pipeline's way to the consumer).
  bool AssignmentLost() const override;
  absl::Status Rewind(const std::map<TopicPartition, int64_t>& first) override;
  void Committed(const std::map<TopicPartition, int64_t>& next) override;
  void Release(int slot) override { batches_[slot].Clear(); }
  void SetProblem(std::string problem);

  const Config& config_;
  SplitJobSettings settings_;
  std::unique_ptr<SplitStep> step_;
  MetricsRegistry* metrics_;
  KafkaLagTracker lag_;                      // the job's thread feeds it
  ProducePipelineMetrics pipeline_metrics_;  // records in/out, dead letters, batches, retries
  JobProblem problem_;                       // the /health line

  std::unique_ptr<StateStore> store_;
  std::unique_ptr<KafkaConsumer> consumer_;
  // What each pipeline slot was polled into; declared after the consumer (destroyed before it).
  ConsumedBatch batches_[ProducePipeline::kSlots];
  // Declared before the producer: its delivery groups must outlive the producer's last reports.
  std::unique_ptr<ProducePipeline> pipeline_;
  std::unique_ptr<KafkaProducer> producer_;
  bool assigned_ = false;
  const bool group_mode_;
  // Group mode: next offsets committed while this member owns the partitions (the hand-over).
  std::map<TopicPartition, int64_t> owned_next_;
  FreeSpaceGate space_;   // nothing is read while the state disk is (nearly) full
  std::string given_up_;  // GivenUp(): what the stop left for the next start
  std::atomic<bool> caught_up_{false};
  NewPartitionWatch new_partitions_;  // lone mode
};

}  // namespace rtdw

#endif  // RTDW_TOOLS_RTDWD_SPLIT_JOB_H_
