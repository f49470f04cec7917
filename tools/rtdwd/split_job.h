// The Kafka -> Kafka jobs (log-split, db-split) on one batch loop:
//
//   poll (<= batch_max_records or batch_max_ms) -> transform each record -> side effects
//   (db-split: Redis MULTI/EXEC) -> produce (idempotent, lz4) -> flush: every record acknowledged
//   -> commit the next offsets to the state store (one synced WriteBatch)
//   -> commit them to Kafka too, asynchronously, for lag monitoring only.
//
// Guarantee: at-least-once with stable record identity. A kill at any point loses nothing: the
// offsets of a batch are committed only after its records were acknowledged and its Redis writes
// applied, so a restart re-reads from the last committed offsets; re-sent records carry the same
// key and `rtdw-src` header. A failed flush or Redis write retries the same batch (backoff), and
// nothing is committed until it succeeds.
#ifndef RTDW_TOOLS_RTDWD_SPLIT_JOB_H_
#define RTDW_TOOLS_RTDWD_SPLIT_JOB_H_

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "connectors/kafka/consumer.h"
#include "connectors/kafka/producer.h"
#include "core/metrics.h"
#include "core/records.h"
#include "storage/state_store.h"
#include "tools/common/config.h"
#include "tools/rtdwd/job_runner.h"
#include "tools/rtdwd/progress.h"

namespace rtdw {

// The job-specific part of a split job.
class SplitStep {
 public:
  virtual ~SplitStep() = default;
  // Before a batch's records (db-split: re-read the table lists from Redis).
  virtual absl::Status BeginBatch() { return absl::OkStatus(); }
  virtual void Process(const InputRecord& record, RecordSink* sink) = 0;
  // After every record of the batch went through Process(), before the producer is flushed and
  // the offsets commit (db-split: apply the batch's Redis writes in one MULTI/EXEC, then hand its
  // buffered fact records to `sink`, so a fact never reaches its topic before the dimension rows
  // written ahead of it). An error makes the whole batch run again.
  virtual absl::Status BeforeFlush(RecordSink* sink) {
    (void)sink;
    return absl::OkStatus();
  }
  // Forget the batch in hand (it will be read again).
  virtual void AbortBatch() {}
  // Topic names of the log slots (log-split); empty for jobs that emit by name.
  virtual std::vector<std::string> SlotTopics() const { return {}; }
};

struct SplitJobSettings {
  std::string job;
  std::string source_topic;
  std::string dead_letter_topic;
  int64_t batch_max_records = 10000;
  std::chrono::milliseconds batch_max_ms{200};
};

class SplitJobRunner : public JobRunner {
 public:
  SplitJobRunner(const Config& config, SplitJobSettings settings, std::unique_ptr<SplitStep> step,
                 MetricsRegistry* metrics);
  ~SplitJobRunner() override;

  const std::string& name() const override { return settings_.job; }
  absl::Status Start() override;
  absl::StatusOr<size_t> RunOnce() override;
  bool CaughtUp() const override { return caught_up_.load(); }
  std::string HealthProblem() const override;
  absl::Status Stop() override;
  StateStore* store() override { return store_.get(); }
  const KafkaLagTracker* lag() const override { return &lag_; }
  void SetBatchLimits(int64_t max_records, std::chrono::milliseconds max_ms) override {
    settings_.batch_max_records = max_records;
    settings_.batch_max_ms = max_ms;
  }

 private:
  class ProducingSink;
  absl::Status TryAssign();
  absl::Status ProcessBatch();
  void SetProblem(std::string problem);

  const Config& config_;
  SplitJobSettings settings_;
  std::unique_ptr<SplitStep> step_;
  MetricsRegistry* metrics_;
  KafkaLagTracker lag_;  // the job's thread feeds it

  std::unique_ptr<StateStore> store_;
  std::unique_ptr<KafkaConsumer> consumer_;
  std::unique_ptr<KafkaProducer> producer_;
  std::unique_ptr<ProducingSink> sink_;
  ConsumedBatch batch_;
  bool assigned_ = false;
  std::atomic<bool> caught_up_{false};
  mutable std::mutex problem_mu_;
  std::string problem_;

  Counter* records_in_;
  Counter* records_out_;
  Counter* dead_letters_;
  Counter* batches_;
  Counter* retries_;
  Histogram* batch_seconds_;
};

}  // namespace rtdw

#endif  // RTDW_TOOLS_RTDWD_SPLIT_JOB_H_
