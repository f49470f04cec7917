// "Produce and await acks": the batch transaction of the split jobs (log-split, db-split),
// pipelined two deep (docs/DESIGN.md "The batch transaction"):
//
//   batch N+1 polled by the caller -> Run(): the step over each record -> side effects (db-split:
//   Redis) -> produce (counted in N+1's delivery group) -> await N's delivery reports (they came
//   back while N+1 was polled and produced) -> commit N's next offsets to the state store (one
//   synced WriteBatch) -> ConsumerControl::Committed (the caller's Kafka commit, for lag only).
//
// At most two batches are uncommitted: N (produced, awaiting acknowledgements: "in flight") and
// N+1 (being produced). The caller keeps the consumer: it polls into the slot FreeSlot() names
// and hands the records over; the pipeline reaches the consumer only through ConsumerControl.
//
// Guarantee: at-least-once with stable record identity. A kill at any point loses nothing: the
// offsets of a batch are committed only after every record of it was acknowledged and the step's
// BeforeFlush (db-split's Redis writes) succeeded, and batches commit in order (N+1 never before
// N), so a restart re-reads from the last committed offsets; re-sent records carry the same key
// and `rtdw-src` header. A delivery error, a failed BeforeFlush or a failed commit stops the
// pipeline: the producer is flushed, then the failed batch is run again alone (produce -> flush
// -> commit, with kBatchRetryBackoff) until it commits, and the batch behind it is run again
// after it (keeping their order in the output topics); nothing is committed meanwhile. A batch
// whose produce failed lets the one in flight commit first (it does not depend on the later
// one), then runs alone.
//
// Fencing (group mode): before every attempt at a batch and before every commit the pipeline asks
// ConsumerControl::AssignmentLost(); a step may also fail a batch with FencedError (db-split's
// Redis fencing tokens). A fenced batch and the one behind it are dropped uncommitted, counted in
// rtdw_fenced_batches_total{job}, and the consumer is moved back to their first offsets
// (ConsumerControl::Rewind). A batch that keeps failing in group mode is retried in place for at
// most kafka.revoke_timeout, then put back the same way (not counted as fenced) so that the
// caller polls — a rebalance is served only by a poll — before it is tried again.
//
// Stop: a failure while a stop is under way gives the batches in hand up uncommitted instead of
// retrying (GivenUp() says how many records, and why); nothing is polled any more (abandoned()).
// FinishAtStop() commits the batch in flight when its acknowledgements come by the stop's
// deadline.
//
// Thread-compatible: every method runs on the job's thread (Revoke() inside the consumer's poll,
// on that thread too). The one object shared with another thread is each slot's DeliveryGroup,
// which the producer's delivery reports update (it is thread-safe); the StopControl is read.
#ifndef RTDW_CORE_ENGINE_PRODUCE_PIPELINE_H_
#define RTDW_CORE_ENGINE_PRODUCE_PIPELINE_H_

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "core/backoff.h"
#include "core/engine/batch_transaction.h"
#include "core/engine/job_health.h"
#include "core/engine/job_metrics.h"
#include "core/engine/job_runner.h"
#include "core/engine/record_producer.h"
#include "core/engine/retry_policies.h"
#include "core/engine/split_step.h"
#include "core/metrics.h"
#include "storage/state_store.h"

namespace rtdw {

// What the pipeline needs of the consumer that polled its batches (ProduceStrategy implements it
// over the runner's RecordSource; tests over an in-memory topic). Called on the job's thread.
class ConsumerControl {
 public:
  virtual ~ConsumerControl() = default;
  // Group mode: the group took this member's partitions away (e.g. the session timed out);
  // nothing may be written or committed for them any more. False in assign mode.
  virtual bool AssignmentLost() const = 0;
  // Batches were dropped uncommitted: the next poll of each partition starts again at `first`
  // (their first offsets; everything before them is committed). An error is logged.
  virtual absl::Status Rewind(const std::map<TopicPartition, int64_t>& first) = 0;
  // A batch's `next` offsets were committed to the state store (the caller commits them to
  // Kafka for lag monitoring, and keeps them as hand-over offsets in group mode).
  virtual void Committed(const std::map<TopicPartition, int64_t>& next) = 0;
  // The pipeline no longer holds the records of slot `slot` (committed, dropped or given up):
  // the caller may free them.
  virtual void Release(int slot) = 0;
};

// The counters of the pipeline, registered when the job is built (so that /metrics shows them at
// 0 before its start).
struct ProducePipelineMetrics {
  ProducePipelineMetrics(MetricsRegistry* registry, const std::string& job);
  JobMetrics common;  // records in/out, dead letters, batches, batch latency
  Counter* retries;   // rtdw_batch_retries_total{job}
  Counter* fenced;    // rtdw_fenced_batches_total{job}
};

struct ProducePipelineOptions {
  std::string job;
  std::string dead_letter_topic;
  // kafka.group is set: fencing checks, bounded retries in place.
  bool group_mode = false;
  // kafka.revoke_timeout: group mode's bound on a wait for acknowledgements at a revoke, on a
  // batch's retries in place and (at least 1 s) on every other wait on the producer.
  std::chrono::milliseconds revoke_timeout{10000};
  // Longest wait for a batch's acknowledgements before it is run again (a stop cuts it short).
  std::chrono::milliseconds delivery_timeout{60000};
  BackoffOptions retry_backoff = kBatchRetryBackoff;
  Sleeper* sleeper = nullptr;  // the retries' waits; null: the real clock
  // Called at "before_commit" (acknowledged, before the WriteBatch) and "after_commit"; crash
  // tests end the process there. May be empty.
  FaultHook fault;
};

class ProducePipeline {
 public:
  static constexpr int kSlots = 2;

  // Every pointer must outlive the pipeline; the pipeline must outlive the producer's delivery
  // reports of its records (destroy it after the producer, or once nothing is pending).
  ProducePipeline(ProducePipelineOptions options, RecordProducer* producer, StateStore* store,
                  SplitStep* step, ConsumerControl* consumer, const StopControl* stop,
                  ProducePipelineMetrics* metrics, JobProblem* problem);
  ~ProducePipeline();
  ProducePipeline(const ProducePipeline&) = delete;
  ProducePipeline& operator=(const ProducePipeline&) = delete;

  // Resolves the output topics (the step's slots and the dead-letter topic).
  absl::Status Init();

  // The slot the next poll's records go to (never the one in flight).
  int FreeSlot() const;
  // A batch is produced and not committed yet.
  bool in_flight() const { return in_flight_ != nullptr; }
  // A batch was given up uncommitted because a stop was requested: the caller must poll nothing
  // more (a later batch's commit would skip its records).
  bool abandoned() const { return abandoned_; }
  // What a stop gave up ("" when nothing): "<n> records read but not committed (<why>): read
  // again at the next start".
  const std::string& given_up() const { return given_up_; }

  // Takes the (non-empty) `records` of slot FreeSlot(), polled at `polled_at`; they stay valid
  // until the pipeline Release()s the slot. Produces them, then commits the batch in flight (or
  // runs it again, drops it, gives it up, as the header says); afterwards the new batch is in
  // flight, or committed, dropped or given up. An error that is neither fenced nor a retry's
  // yield (a commit that cannot even be staged, a retry ended by a stop is not one) is returned.
  absl::Status Run(int slot, std::span<const InputRecord> records,
                   std::chrono::steady_clock::time_point polled_at);
  // Nothing new was polled: awaits the batch in flight and commits it (or as Run()).
  absl::Status CommitInFlight();
  // Group mode, inside the revoke (on the polling thread): the batch in flight is committed when
  // its acknowledgements come within revoke_timeout (not waited for when `lost`), otherwise
  // dropped uncommitted as fenced, without moving the consumer (its partitions go).
  void Revoke(bool lost);
  // The stop: the batch in flight is committed when all of it is acknowledged by the stop's
  // deadline; otherwise given up.
  void FinishAtStop();

 private:
  class ProducingSink;
  // One polled batch and what its commit needs.
  struct Slot {
    int index = 0;
    std::span<const InputRecord> records;
    DeliveryGroup deliveries;  // its records' delivery reports
    std::chrono::steady_clock::time_point polled_at;
    uint64_t emitted = 0;  // records produced for it (dead letters excluded)
    uint64_t dead = 0;     // dead letters produced for it
    // Its dead letters by reason, counted in rtdw_dead_letters_total{job,reason} at its commit
    // (once per record, however many attempts produced them).
    std::map<std::string, uint64_t, std::less<>> dead_by_reason;
    bool empty() const { return records.empty(); }
  };
  // Why batches are dropped uncommitted (DropUncommitted).
  enum class Drop {
    kFenced,          // this member no longer owns them: counted in rtdw_fenced_batches_total
    kFencedAtRevoke,  // the same, inside a revoke (their partitions go: no rewind)
    kYield,           // group mode: a retry lasted revoke_timeout; poll (serve the group)
  };

  // The slot's records are no longer held (the consumer may free them).
  void Clear(Slot* slot);
  // Runs the step over the slot's records and produces what it emits (counted in its delivery
  // group). No flush, no commit.
  absl::Status ProduceBatch(Slot* slot);
  // The slot's next offsets to the state store, then the metrics; clears it.
  absl::Status CommitBatch(Slot* slot);
  // Awaits the in-flight batch's acknowledgements and commits it. On a failure, flushes and
  // runs it again alone, then `behind` (already produced after it, not committed) likewise;
  // during a stop, gives both up instead (GiveUp); when fenced, drops both. Afterwards nothing
  // is in flight.
  absl::Status FinishInFlight(Slot* behind);
  // The unpipelined loop for one batch: produce -> flush -> commit, retried with backoff after
  // `failure` (when not OK) until it commits or a stop is requested (then GiveUp). Returns a
  // fenced status (IsFenced) without dropping anything when the batch was fenced; in group mode,
  // a yield status once it has failed for revoke_timeout: the caller drops the batch (kYield).
  absl::Status RunAlone(Slot* slot, absl::Status failure);
  // Group mode: FencedError when the assignment is lost; OK otherwise.
  absl::Status CheckOwnership() const;
  // Drops `slot` and `behind` (either may be null) uncommitted after `why`: forgets the step's
  // batch and (but for kFencedAtRevoke) moves the consumer back to their first offsets, so that
  // they are read again by whoever owns their partitions after the next poll.
  void DropUncommitted(Slot* slot, Slot* behind, const absl::Status& why, Drop kind);
  // Group mode: how long a wait on the producer outside a revoke may last (revoke_timeout, at
  // least 1 s, so that the job polls — and serves a rebalance — at least that often); otherwise
  // delivery_timeout.
  std::chrono::milliseconds DeliveryTimeout() const;
  // Producer waits of up to `timeout`, cut short by a stop: once one begins, they last until
  // the stop's deadline at most (what is acknowledged by then still commits).
  absl::Status AwaitDeliveries(DeliveryGroup* group, std::chrono::milliseconds timeout);
  absl::Status FlushProducer(std::chrono::milliseconds timeout);
  // A stop gives up the batch(es) in hand uncommitted (abandoned_; given_up_ says why).
  void GiveUp(Slot* slot, Slot* behind, const absl::Status& why);

  const ProducePipelineOptions options_;
  RecordProducer* const producer_;
  StateStore* const store_;
  SplitStep* const step_;
  ConsumerControl* const consumer_;
  const StopControl* const stop_;
  ProducePipelineMetrics* const metrics_;
  JobProblem* const problem_;

  std::unique_ptr<ProducingSink> sink_;
  std::optional<PendingBatch> pending_;  // the store's; one for every commit (Clear()ed)
  Slot slots_[kSlots];
  Slot* in_flight_ = nullptr;  // produced, awaiting acknowledgements and its commit
  bool abandoned_ = false;
  std::string given_up_;
  // Where the drops of this Run() / CommitInFlight() moved the consumer back to: the first offset
  // per partition of every batch dropped (several drops in one call keep the earliest).
  std::map<TopicPartition, int64_t> rewind_;
};

}  // namespace rtdw

#endif  // RTDW_CORE_ENGINE_PRODUCE_PIPELINE_H_
