// The Kafka -> Kafka jobs (log-split, db-split) on one batch loop, pipelined two deep:
//
//   poll N+1 (<= batch_max_records or batch_max_ms) -> transform each record -> side effects
//   (db-split: Redis MULTI/EXEC) -> produce (idempotent, lz4), counted in N+1's delivery group
//   -> await N's delivery reports (they came back while N+1 was polled and produced)
//   -> commit N's next offsets to the state store (one synced WriteBatch)
//   -> commit them to Kafka too, asynchronously, for lag monitoring only.
//
// Batch N's records are acknowledged while batch N+1 is polled, transformed and produced; the
// job thread no longer sits in a flush between batches. At most two batches are uncommitted: N
// (produced, awaiting acknowledgements) and N+1 (being produced).
//
// Guarantee: at-least-once with stable record identity. A kill at any point loses nothing: the
// offsets of a batch are committed only after every record of it was acknowledged and its Redis
// writes applied, and batches commit in order (N+1 never before N), so a restart re-reads from
// the last committed offsets; re-sent records carry the same key and `rtdw-src` header. A
// delivery error, a failed Redis write or a failed commit stops the pipeline: the producer is
// flushed, then the failed batch is run again alone (produce -> flush -> commit, with backoff)
// until it succeeds, and the batch behind it is run again after it (keeping their order in the
// output topics); nothing is committed meanwhile. A stop (SIGTERM) finishes the batch in flight:
// Stop() awaits its acknowledgements and commits it.
//
// Group mode (kafka.group): the source's partitions are split among the group's members. The
// group's committed offsets (written after each commit, as in assign mode) are where a partition
// starts on its new owner. A revoke waits for the acknowledgements of the batch in flight at most
// kafka.revoke_timeout, commits it when they came, and commits the hand-over offsets to the group
// (again at most kafka.revoke_timeout); a batch not acknowledged by then is dropped uncommitted
// (the next owner reads it again). It never waits on Redis. A batch that keeps failing is retried
// in place for at most kafka.revoke_timeout, then put back uncommitted (the consumer moves back to
// its first offsets) so that the job polls — a rebalance is served only by a poll — before trying
// again; waits on Kafka are bounded by kafka.revoke_timeout too (DeliveryTimeout).
//
// Fencing (group mode; docs/OPERATIONS.md "Fencing of the split jobs"): a member applies no Redis
// write, produces no DWD record and commits no offset for partitions it no longer owns. Before
// every attempt at a batch (the first and each retry) and before every commit, the runner asks
// the consumer whether librdkafka found the assignment lost; db-split's Redis writes also carry
// a fencing token per partition that every new owner claims (RedisClient::ClaimFence), so Redis
// itself refuses a stalled member's late writes. A fenced batch (and the one behind it) is
// dropped uncommitted, counted in rtdw_fenced_batches_total{job}, and the consumer is moved back
// to its first offset (the revoke that follows, or the same member if it still owns the
// partition, reads it again).
#ifndef RTDW_TOOLS_RTDWD_SPLIT_JOB_H_
#define RTDW_TOOLS_RTDWD_SPLIT_JOB_H_

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "connectors/kafka/consumer.h"
#include "connectors/kafka/producer.h"
#include "core/config/config.h"
#include "core/engine/batch_transaction.h"
#include "core/metrics.h"
#include "core/records.h"
#include "storage/state_store.h"
#include "tools/rtdwd/job_common.h"
#include "core/engine/job_runner.h"
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
  // Group mode, on the job thread inside the consumer's poll: partitions given to this member /
  // taken away from it (db-split: claim / forget their Redis fencing tokens). Never block.
  virtual void Assigned(const std::vector<TopicPartition>& partitions) { (void)partitions; }
  virtual void Revoked(const std::vector<TopicPartition>& partitions) { (void)partitions; }
  // Topic names of the log slots (log-split); empty for jobs that emit by name.
  virtual std::vector<std::string> SlotTopics() const { return {}; }
};

// The status of a batch this member may no longer work on (group mode: its partitions were taken
// away). Never retried: the batch is dropped uncommitted.
absl::Status FencedError(std::string_view why);
bool IsFenced(const absl::Status& st);

struct SplitJobSettings {
  std::string job;
  std::string source_topic;
  std::string dead_letter_topic;
  int64_t batch_max_records = 10000;
  std::chrono::milliseconds batch_max_ms{200};
};

class SplitJobRunner : public JobRunner, private RebalanceListener {
 public:
  SplitJobRunner(const Config& config, SplitJobSettings settings, std::unique_ptr<SplitStep> step,
                 MetricsRegistry* metrics);
  // Max wait of a poll while a batch is in flight: when nothing arrives within it, the batch in
  // flight is committed rather than waiting out the whole batch window.
  static constexpr std::chrono::milliseconds kPipelinedPollWait{10};
  // Longest wait for a batch's acknowledgements before it is run again (a stop cuts it short).
  static constexpr std::chrono::milliseconds kDeliveryTimeout{60000};
  // Longest wait for the coordinator's answer to a hand-over commit (a stop cuts it short).
  static constexpr std::chrono::milliseconds kCommitTimeout{10000};
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
  class ProducingSink;
  // One polled batch and what its commit needs.
  struct Slot {
    ConsumedBatch batch;
    KafkaDeliveryGroup deliveries;  // its records' delivery reports
    std::chrono::steady_clock::time_point polled_at;
    uint64_t emitted = 0;  // records produced for it (dead letters excluded)
    uint64_t dead = 0;     // dead letters produced for it
    // Its dead letters by reason, counted in rtdw_dead_letters_total{job,reason} at its commit
    // (once per record, however many attempts produced them).
    std::map<std::string, uint64_t, std::less<>> dead_by_reason;
  };
  absl::Status TryAssign();
  absl::StatusOr<std::vector<PartitionStart>> OnAssigned(
      const std::vector<TopicPartition>& partitions) override;
  void OnRevoked(const std::vector<TopicPartition>& partitions) override;
  // Runs the step over the slot's records and produces what it emits (counted in its delivery
  // group). No flush, no commit.
  absl::Status ProduceBatch(Slot* slot);
  // The slot's next offsets to the state store, then the metrics; clears its batch.
  absl::Status CommitBatch(Slot* slot);
  // Awaits the in-flight batch's acknowledgements and commits it. On a failure, flushes and
  // runs it again alone, then `behind` (already produced after it, not committed) likewise;
  // during a stop, gives both up instead (GiveUp); when fenced, drops both (DropFenced).
  // Afterwards nothing is in flight.
  absl::Status FinishInFlight(Slot* behind);
  // The old, unpipelined loop for one batch: produce -> flush -> commit, retried with backoff
  // after `failure` (when not OK) until it commits or a stop is requested (then GiveUp).
  // Returns a fenced status (IsFenced) without dropping anything when the batch was fenced; in
  // group mode, a yield status (IsYield) once it has failed for kafka.revoke_timeout: the caller
  // puts the batch back (DropUncommitted kYield) and polls, so that a rebalance is never held up
  // by a Redis or Kafka outage for longer than that.
  absl::Status RunAlone(Slot* slot, absl::Status failure);
  // Group mode: FencedError when librdkafka found the assignment lost; OK otherwise.
  absl::Status CheckOwnership() const;
  // Why batches are dropped uncommitted (DropUncommitted).
  enum class Drop {
    kFenced,          // this member no longer owns them: counted in rtdw_fenced_batches_total
    kFencedAtRevoke,  // the same, inside a revoke (their partitions go: no seek)
    kYield,           // group mode: a retry lasted kafka.revoke_timeout; poll (serve the group)
  };
  // Drops `slot` and `behind` (either may be null) uncommitted after `why`: forgets the step's
  // batch and (but for kFencedAtRevoke) moves the consumer back to their first offsets, so that
  // they are read again by whoever owns their partitions after the next poll.
  void DropUncommitted(Slot* slot, Slot* behind, const absl::Status& why, Drop kind);
  // Group mode: how long a wait on Kafka outside a revoke may last (kafka.revoke_timeout, so that
  // the job polls — and serves a rebalance — at least that often); otherwise kDeliveryTimeout.
  std::chrono::milliseconds DeliveryTimeout() const;
  // Producer waits of up to `timeout`, cut short by a stop: once one begins, they last until
  // the stop's deadline at most (what is acknowledged by then still commits).
  absl::Status AwaitDeliveries(KafkaDeliveryGroup* group, std::chrono::milliseconds timeout);
  absl::Status FlushProducer(std::chrono::milliseconds timeout);
  // A stop gives up the batch(es) in hand uncommitted (abandoned_; given_up_ says why).
  void GiveUp(Slot* slot, Slot* behind, const absl::Status& why);
  void SetProblem(std::string problem);

  const Config& config_;
  SplitJobSettings settings_;
  std::unique_ptr<SplitStep> step_;
  MetricsRegistry* metrics_;
  KafkaLagTracker lag_;  // the job's thread feeds it
  JobMetrics common_;    // records in/out, dead letters, batches, batch latency
  JobProblem problem_;   // the /health line

  std::unique_ptr<StateStore> store_;
  std::optional<PendingBatch> pending_;  // the store's; one for every commit (Clear()ed)
  std::unique_ptr<KafkaConsumer> consumer_;
  // Declared before the producer: its delivery groups must outlive the producer's last reports.
  Slot slots_[2];
  Slot* in_flight_ = nullptr;  // produced, awaiting acknowledgements and its commit
  std::unique_ptr<KafkaProducer> producer_;
  std::unique_ptr<ProducingSink> sink_;
  bool assigned_ = false;
  const bool group_mode_;
  // Group mode: next offsets committed while this member owns the partitions (the hand-over).
  std::map<TopicPartition, int64_t> owned_next_;
  // A batch was given up uncommitted because a stop was requested: poll nothing more (a later
  // batch's commit would skip its records).
  bool abandoned_ = false;
  FreeSpaceGate space_;   // nothing is read while the state disk is (nearly) full
  std::string given_up_;  // GivenUp(): what the stop left for the next start
  std::atomic<bool> caught_up_{false};
  NewPartitionWatch new_partitions_;  // lone mode

  Counter* retries_;
  Counter* fenced_;  // rtdw_fenced_batches_total{job}
  // Where the fenced drops of this RunOnce() moved the consumer back to: the first offset per
  // partition of every batch dropped (several drops in one call keep the earliest).
  std::map<TopicPartition, int64_t> rewind_;
};

}  // namespace rtdw

#endif  // RTDW_TOOLS_RTDWD_SPLIT_JOB_H_
