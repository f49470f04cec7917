// "Produce and await acks": the split jobs' (log-split, db-split) DeliveryStrategy for the
// BatchRunner, over the ProducePipeline (produce_pipeline.h: two batches pipelined, commit after
// every acknowledgement, retry alone in order, drops for fencing and yielding, give-up at a stop):
//
//   poll N+1 into the pipeline's free slot -> Deliver: Run() it (the step, produce, await N's
//   acknowledgements, commit N's next offsets to the store) -> the source's committed offsets
//   follow, asynchronously, for lag monitoring only (RunnerContext::Committed).
//
// With a batch in flight, the poll waits only kPipelinedPollWait: when the source is quiet the
// batch in flight is committed (NothingPolled) rather than waiting out the whole batch window. A
// stop finishes the batch in flight: it is committed when its acknowledgements come by the
// stop's deadline, then the producer closes.
//
// Group mode: the next offsets committed while this member owns a partition are its hand-over.
// A revoke waits for the acknowledgements of the batch in flight at most kafka.revoke_timeout,
// commits it when they came (ProducePipeline::Revoke), and commits the hand-over offsets to the
// group (again at most kafka.revoke_timeout) unless the assignment is already lost. The pipeline
// reaches the source through ConsumerControl, which this strategy implements over the
// RecordSource (AssignmentLost, Seek for a rewind, the commit's bookkeeping).
//
// Retries: the pipeline retries a failed batch itself (alone, in order: a batch behind it is
// already produced), so Deliver never says kRetry.
//
// Thread-safety: the job's thread only (Drained/HealthProblem are the defaults); the producer's
// delivery reports update the pipeline's DeliveryGroups, which are thread-safe.
#ifndef RTDW_CORE_ENGINE_PRODUCE_STRATEGY_H_
#define RTDW_CORE_ENGINE_PRODUCE_STRATEGY_H_

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "core/engine/batch_runner.h"
#include "core/engine/produce_pipeline.h"
#include "core/engine/record_producer.h"
#include "core/engine/split_step.h"

namespace rtdw {

// The producer of a split job and how it closes at the stop.
struct ProducerClient {
  std::unique_ptr<RecordProducer> producer;
  // Drops what is still queued once `deadline` passes or `cancel` is set (an error says what was
  // not acknowledged). Empty: nothing to close.
  std::function<absl::Status(std::chrono::steady_clock::time_point deadline,
                             const std::atomic<bool>* cancel)>
      close;
};
// Builds the producer, in Start().
using ProducerFactory = std::function<absl::StatusOr<ProducerClient>()>;

struct ProduceStrategyOptions {
  std::string dead_letter_topic;
  // Longest wait for a batch's acknowledgements before it is run again (a stop cuts it short).
  std::chrono::milliseconds delivery_timeout{60000};
  // Overrides for tests (unset / null: kBatchRetryBackoff and the real clock).
  std::optional<BackoffOptions> retry_backoff;
  Sleeper* sleeper = nullptr;
  FaultHook fault;  // "before_commit", "after_commit" (crash tests). May be empty.
};

class ProduceStrategy : public DeliveryStrategy, private ConsumerControl {
 public:
  // Max wait of a poll while a batch is in flight.
  static constexpr std::chrono::milliseconds kPipelinedPollWait{10};

  ProduceStrategy(ProduceStrategyOptions options, std::unique_ptr<SplitStep> step,
                  ProducerFactory make_producer);
  ~ProduceStrategy() override;

  void Attach(RunnerContext* context) override;
  absl::Status Start() override;
  bool Abandoned() const override { return pipeline_ != nullptr && pipeline_->abandoned(); }
  bool Holding() const override { return pipeline_ != nullptr && pipeline_->in_flight(); }
  ConsumedBatch* NextBatch() override;
  std::chrono::milliseconds PollWait(std::chrono::milliseconds configured) const override;
  absl::StatusOr<bool> NothingPolled() override;
  Result Deliver(ConsumedBatch& batch, std::chrono::steady_clock::time_point polled_at,
                 int attempt) override;
  absl::StatusOr<std::vector<PartitionStart>> OnAssigned(
      const std::vector<TopicPartition>& partitions,
      const std::map<TopicPartition, int64_t>& committed) override;
  void OnRevoked(const std::vector<TopicPartition>& partitions) override;
  void StopBeforeClose() override;
  void StopAfterClose() override;
  void Release() override;
  std::string GivenUp() const override { return given_up_; }

 private:
  // ConsumerControl (the pipeline's way to the source).
  bool AssignmentLost() const override;
  absl::Status Rewind(const std::map<TopicPartition, int64_t>& first) override;
  void Committed(const std::map<TopicPartition, int64_t>& next) override;
  void Release(int slot) override { batches_[slot].Clear(); }

  const ProduceStrategyOptions options_;
  std::unique_ptr<SplitStep> step_;
  ProducerFactory make_producer_;
  RunnerContext* ctx_ = nullptr;
  std::unique_ptr<ProducePipelineMetrics> metrics_;  // registered at Attach
  // What each pipeline slot was polled into (cleared before the source goes: StopAfterClose).
  ConsumedBatch batches_[ProducePipeline::kSlots];
  int slot_ = 0;  // the slot NextBatch() gave
  // Declared before the producer: its delivery groups must outlive the producer's last reports.
  std::unique_ptr<ProducePipeline> pipeline_;
  ProducerClient producer_;
  // Group mode: next offsets committed while this member owns the partitions (the hand-over).
  std::map<TopicPartition, int64_t> owned_next_;
  std::string given_up_;
};

}  // namespace rtdw

#endif  // RTDW_CORE_ENGINE_PRODUCE_STRATEGY_H_
