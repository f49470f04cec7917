// The one runner skeleton of every job (docs/DESIGN.md "The batch transaction"): the loop that
// owns the source, the assignment, polling and the job's health, with the way a batch reaches its
// output plugged in behind a DeliveryStrategy (the engine schedules and retries; a strategy says
// done, retry or error):
//
//   Start:   open the job's store -> strategy Start (connect, replay what is owed) -> build the
//            source (a factory the caller gives: Kafka in rtdwd, tests/engine/fakes/fake_source.h
//            in the unit tests) -> assign (AssignSources; again on every RunOnce until it works).
//   RunOnce: strategy Abandoned? (wait for the stop) -> assign -> free-space gate (skipped while
//            the strategy holds a batch in flight) -> strategy MayPoll (back-pressure) -> poll at
//            most batch_max_records within batch_max_ms (the strategy may shorten the wait) ->
//              lost offset: rtdw_offset_lost_total{job} +1, the OutOfRange status is returned;
//              a failed poll or nothing polled: strategy NothingPolled (commit what is in flight);
//                a failure goes to /health; an empty poll decides "caught up"
//                (RecordSource::VerifiedAtEnd) and, lone mode, picks up partitions added while
//                running (NewPartitionWatch; a metadata failure only goes to /health);
//              records: strategy Deliver, retried with kBatchRetryBackoff while it says kRetry
//                (until a stop: then the batch is given up uncommitted, read again at the next
//                start, and GivenUp() says so).
//   Group:   OnAssigned asks the group's committed offsets (GroupCommitted), the strategy says
//            where each partition starts; OnRevoked lets the strategy finish and hand over.
//   Stop:    strategy StopBeforeClose -> the source closes (group mode: the group is left, its
//            revoke runs) -> strategy StopAfterClose -> the source goes -> strategy Release -> the
//            store closes.
//
// The two strategies are "produce and await acks" (ProduceStrategy, produce_strategy.h: the split
// jobs) and "journal and deliver" (JournalStrategy, journal_strategy.h: the ES jobs).
//
// Thread-safety: every method but HealthProblem(), CaughtUp(), lag(), BeginStop() and Cancel()
// runs on the job's thread (the group callbacks inside the source's Poll, on that thread too).
// Those read atomics, the JobProblem and the lag tracker (each thread-safe) and call the
// strategy's thread-safe Drained/HealthProblem/Wake/Cancel. The runner has no lock of its own.
#ifndef RTDW_CORE_ENGINE_BATCH_RUNNER_H_
#define RTDW_CORE_ENGINE_BATCH_RUNNER_H_

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/backoff.h"
#include "core/config/config.h"
#include "core/engine/batch_transaction.h"
#include "core/engine/job_health.h"
#include "core/engine/job_runner.h"
#include "core/engine/lag_tracker.h"
#include "core/engine/record_source.h"
#include "core/engine/retry_policies.h"
#include "core/engine/source_assignment.h"
#include "core/metrics.h"
#include "storage/state_store.h"

namespace rtdw {

// What the runner lends its strategy: the job's settings and its parts. The pointers are the
// runner's and live as long as it; `store` is set by Start() before the strategy's Start(),
// `source` right after it (both null before). Job thread only, but for the thread-safe
// `problem`, `lag` and `stop`.
struct RunnerContext {
  const Config* config = nullptr;
  std::string job;
  std::vector<std::string> source_topics;
  bool group_mode = false;  // kafka.group is set
  MetricsRegistry* metrics = nullptr;
  const StopControl* stop = nullptr;
  JobProblem* problem = nullptr;
  KafkaLagTracker* lag = nullptr;
  StateStore* store = nullptr;
  RecordSource* source = nullptr;

  void SetProblem(std::string p) const { problem->Set(std::move(p)); }
  // A batch's `next` offsets were committed to the store: lag monitoring learns them, and (when
  // `to_source`) the source's committed offsets too (lone mode: for lag monitoring only).
  void Committed(const std::map<TopicPartition, int64_t>& next, bool to_source) const;
};

// How a batch reaches its output, and what the job owes there. Called by the runner on the job's
// thread (the group callbacks inside the source's poll), except where a method says otherwise.
class DeliveryStrategy {
 public:
  // What an attempt at a batch came to: the runner retries kRetry (kBatchRetryBackoff, with the
  // status on /health) until a stop; kError stops the daemon.
  enum class Outcome { kDone, kRetry, kError };
  struct Result {
    Outcome outcome = Outcome::kDone;
    absl::Status status;
    static Result Done() { return {}; }
    static Result Retry(absl::Status st) { return {Outcome::kRetry, std::move(st)}; }
    static Result Error(absl::Status st) { return {Outcome::kError, std::move(st)}; }
  };

  virtual ~DeliveryStrategy() = default;

  // Once, by the runner's constructor.
  virtual void Attach(RunnerContext* context) = 0;
  // After the store opened, before the source exists: connect the outputs, deliver what is owed.
  // Cancelled when a stop ended a wait.
  virtual absl::Status Start() = 0;
  // The sources were assigned (group mode: subscribed).
  virtual void SourcesAssigned() {}

  // True when the job must poll nothing more until it is stopped (a stop gave batches up).
  virtual bool Abandoned() const { return false; }
  // A batch is in flight (produced, not committed): the free-space gate is skipped (the batch
  // may still commit) and the poll waits at most PollWait().
  virtual bool Holding() const { return false; }
  // Back-pressure, after the free-space gate: false pauses polling this time (the strategy may
  // wait a little first).
  virtual bool MayPoll() { return true; }
  // Where the next poll's records go (kept until the strategy releases them).
  virtual ConsumedBatch* NextBatch() = 0;
  // The poll's longest wait, given the configured one.
  virtual std::chrono::milliseconds PollWait(std::chrono::milliseconds configured) const {
    return configured;
  }
  // After every successful poll, empty or not (group mode's hand-over commits, idle inputs).
  virtual void Polled(const ConsumedBatch& batch) { (void)batch; }
  // Nothing was polled (the poll failed or was empty): finish what is in flight. True when it
  // did (the runner decides "caught up" at a later empty poll); an error stops the daemon.
  virtual absl::StatusOr<bool> NothingPolled() { return false; }
  // One attempt at the (non-empty) polled `batch`; `attempt` counts from 0.
  virtual Result Deliver(ConsumedBatch& batch, std::chrono::steady_clock::time_point polled_at,
                         int attempt) = 0;

  // Group mode, inside the poll: the group gave `partitions`, whose committed offsets are
  // `committed` (absent: none). Where each starts.
  virtual absl::StatusOr<std::vector<PartitionStart>> OnAssigned(
      const std::vector<TopicPartition>& partitions,
      const std::map<TopicPartition, int64_t>& committed) = 0;
  // Group mode, inside the poll or the close: `partitions` go. Finish, commit the hand-over.
  virtual void OnRevoked(const std::vector<TopicPartition>& partitions) = 0;

  // Any thread: nothing is owed downstream (part of CaughtUp()).
  virtual bool Drained() const { return true; }
  // Any thread: a /health line of the strategy's own, shown when the job has none ("" = none).
  virtual std::string HealthProblem() const { return ""; }
  // Any thread: a stop began / give up now (JobRunner::BeginStop, Cancel).
  virtual void Wake() {}
  virtual void Cancel() {}

  // The stop (StopControl begun): before the source closes, after it closed (group mode: after
  // the revoke), and after it was destroyed (before the store closes).
  virtual void StopBeforeClose() {}
  virtual void StopAfterClose() {}
  virtual void Release() {}
  // After the stop: what it left owed ("" = nothing).
  virtual std::string GivenUp() const { return ""; }
};

struct BatchRunnerOptions {
  std::string job;
  std::vector<std::string> source_topics;
  bool co_partitioned = false;  // the source topics must have equal partition counts
  int64_t batch_max_records = 10000;
  std::chrono::milliseconds batch_max_ms{200};
  // Backoff of the retries of a batch whose Deliver said kRetry.
  BackoffOptions retry_backoff = kBatchRetryBackoff;
  Sleeper* sleeper = nullptr;  // the retries' waits; null: the real clock (tests substitute)
};

// The series a job's source adds to: registered by the runner's constructor (so /metrics shows
// them from the start, at 0) and given to every source it builds (the count goes on across
// sources). They live as long as the MetricsRegistry, longer than any source.
struct SourceMetrics {
  // rtdw_kafka_fetch_wakes_total{job}: the wakes of librdkafka's fetcher the job's consumers sent
  // (KafkaConsumerOptions::fetch_wakes); a source with no fetcher to wake leaves it at 0.
  Counter* fetch_wakes = nullptr;
};
// Builds the job's source, once, in Start() (the store is open then), with the runner's series.
using SourceFactory =
    std::function<absl::StatusOr<std::unique_ptr<RecordSource>>(const SourceMetrics& metrics)>;
// Opens the job's store (default: OpenJobStore(config, job)).
using StoreOpener = std::function<absl::StatusOr<std::unique_ptr<StateStore>>()>;

class BatchRunner : public JobRunner, private RebalanceListener {
 public:
  // `config` and `metrics` must outlive the runner. Registers rtdw_offset_lost_total{job},
  // rtdw_kafka_fetch_wakes_total{job} (SourceMetrics) and the lag gauges now, so that /metrics
  // shows them before the start.
  BatchRunner(const Config& config, BatchRunnerOptions options,
              std::unique_ptr<DeliveryStrategy> strategy, SourceFactory source,
              MetricsRegistry* metrics, StoreOpener open_store = nullptr);
  // Cancels, then closes the source (its final revoke runs while the strategy is whole).
  ~BatchRunner() override;

  const std::string& name() const override { return options_.job; }
  absl::Status Start() override;
  absl::StatusOr<size_t> RunOnce() override;
  bool CaughtUp() const override;
  std::string HealthProblem() const override;
  absl::Status Stop() override;
  std::string GivenUp() const override { return given_up_; }
  StateStore* store() override { return store_.get(); }
  const KafkaLagTracker* lag() const override { return &lag_; }
  void SetBatchLimits(int64_t max_records, std::chrono::milliseconds max_ms) override {
    options_.batch_max_records = max_records;
    options_.batch_max_ms = max_ms;
  }
  void BeginStop(std::chrono::steady_clock::time_point deadline) override;
  void Cancel() override;

  // For tests: the source (null before Start and after Stop).
  RecordSource* source() { return source_.get(); }

 private:
  absl::Status TryAssign();
  // Lone mode, after an empty poll: partitions added to a source topic are picked up by
  // assigning again. True when the job is not at its end because of them.
  bool PickUpNewPartitions(bool at_end);
  // Deliver with retries (see the header's top).
  absl::Status DeliverBatch(ConsumedBatch& batch, std::chrono::steady_clock::time_point polled_at);
  absl::StatusOr<std::vector<PartitionStart>> OnAssigned(
      const std::vector<TopicPartition>& partitions) override;
  void OnRevoked(const std::vector<TopicPartition>& partitions) override;

  const Config& config_;
  BatchRunnerOptions options_;
  const bool group_mode_;
  KafkaLagTracker lag_;  // the job's thread feeds it
  JobProblem problem_;   // the /health line
  Counter* offset_lost_;
  const SourceMetrics source_metrics_;
  StoreOpener open_store_;
  SourceFactory make_source_;
  RunnerContext context_;

  // Destroyed in reverse: the strategy (its batches point into the source's buffers, its threads
  // use the store) first, then the source, then the store.
  std::unique_ptr<StateStore> store_;
  std::unique_ptr<RecordSource> source_;
  std::unique_ptr<DeliveryStrategy> strategy_;

  bool assigned_ = false;
  std::atomic<bool> at_end_{false};   // every source partition at its end (as last verified)
  FreeSpaceGate space_;               // nothing is read while the state disk is (nearly) full
  NewPartitionWatch new_partitions_;  // lone mode
  std::string batch_given_up_;        // a batch a stop gave up during its retries
  std::string given_up_;              // GivenUp()
};

}  // namespace rtdw

#endif  // RTDW_CORE_ENGINE_BATCH_RUNNER_H_
