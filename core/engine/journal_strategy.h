// "Journal and deliver": the ES jobs' (dau, order-wide) DeliveryStrategy for the BatchRunner
// (docs/DESIGN.md "The batch transaction", "Scaling out"):
//
//   batch -> transform (dedup/join state through the pending batch; dims, batched)
//   -> ONE synced WriteBatch: offsets + state mutations + watermarks + dead letters + the journal
//      entry (CommitJournaledBatch) -> JournalDelivery sends entries strictly in seq order.
//
// Building batch N+1 overlaps the delivery of batch N; at most `max_backlog` entries are owed at
// once — a full backlog pauses polling (MayPoll). Start-up re-delivers every owed entry, in
// order, before consuming (JournalDelivery::Start).
//
// Group mode (kafka.group): the group's committed offset of a partition — where its next owner
// starts — is the hand-over offset: it never passes a record whose documents are not acknowledged,
// nor (for the join) a row still waiting in the `join` column family (BatchHandover). Every
// second the hand-over offsets that moved are committed (CommitHandover); the membership lease is
// confirmed with a synchronous commit when more than half used (RenewLease). A revoke delivers
// what is owed within kafka.revoke_timeout, then fences the rest (JournalDelivery::Revoke), and
// commits the hand-over; a clean hand-over is marked in the store (`handover.<topic>.<p>` meta)
// so that a partition that comes back keeps its local state exactly when the group's offset is
// still that mark. Otherwise the partition's state is dropped and rebuilt (RestorePartition):
// join rows by replay from the hand-over offset; de-dup (dau) from the partition's documents in
// the sink's cluster, through the services' DauDocumentReader, retried with kServiceWaitBackoff
// while the cluster is unreachable (a failed attempt's partial restore dropped first).
//
// What lives outside the engine comes in through JournalServices (tools/rtdwd implements it over
// Elasticsearch and Redis; tests/engine with fakes).
//
// Thread-safety: as BatchRunner's: the job's thread, but for Drained(), HealthProblem(), Wake()
// and Cancel() (any thread: JournalDelivery is thread-safe).
#ifndef RTDW_CORE_ENGINE_JOURNAL_STRATEGY_H_
#define RTDW_CORE_ENGINE_JOURNAL_STRATEGY_H_

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "core/dedup_restore.h"
#include "core/engine/batch_runner.h"
#include "core/engine/batch_transaction.h"
#include "core/engine/job_metrics.h"
#include "core/engine/journal_delivery.h"
#include "core/es_transform.h"
#include "core/journal_sink.h"

namespace rtdw {

// The outside world of an ES job.
class JournalServices {
 public:
  virtual ~JournalServices() = default;
  // Start-up, before the journal's replay: connect the sink's cluster (waiting for it; a stop
  // ends the wait: Cancelled), honouring `delivery`'s abort_flag() and MaySend() in the sink.
  // Waits go to `problem` (the /health line).
  virtual absl::Status ConnectSink(JournalDelivery* delivery, const StopControl& stop,
                                   JobProblem* problem) = 0;
  // Valid after ConnectSink.
  virtual JournalSink* sink() = 0;
  // After the replay: the dimension lookups of the transform (null: none).
  virtual absl::StatusOr<DimensionSource*> OpenDimensions() = 0;
  // Group mode, dau: the DAU documents of `topic`/`partition` in every DAU index.
  virtual std::unique_ptr<DauDocumentReader> DedupReader(const std::string& topic,
                                                         int32_t partition) = 0;
  // Test-only: before every delivery attempt of `entry` (rtdwd's "mid_delivery" crash point).
  virtual void BeforeAttempt(const JournalEntry& entry) { (void)entry; }
};

struct JournalStrategyOptions {
  size_t max_backlog = 4;  // owed journal entries before polling pauses
  // order-wide: source_topics = {order topic, detail topic}; join rows hold back the hand-over.
  bool join_state = false;
  // dau (group mode): a rebuilt partition's de-dup slots come from the cluster.
  bool restore_dedup = false;
  // dau: keep the watermark's day and the N-1 days before it (0 = no de-dup state to drop).
  int dedup_retention_days = 0;
  // order-wide: a source partition at its end for this long is named idle to the transform
  // (EsTransform::SetIdleInputs). Unset: none is ever idle.
  std::optional<std::chrono::seconds> idle_input;
  absl::TimeZone time_zone;
  // The wall clock that judges event time; empty: the real one.
  std::function<int64_t()> now_ms;
  // Test-only crash points (before_commit, after_commit, after_delivery). May be empty.
  FaultHook fault;
  // Overrides for tests (null / unset: the policies of retry_policies.h and the real clock).
  Sleeper* sleeper = nullptr;
  std::optional<BackoffOptions> delivery_backoff;
};

class JournalStrategy : public DeliveryStrategy {
 public:
  // Registers the job's ES metrics at construction (rtdw_documents_total, ...).
  JournalStrategy(JournalStrategyOptions options, std::unique_ptr<EsTransform> transform,
                  std::unique_ptr<JournalServices> services);
  ~JournalStrategy() override;

  void Attach(RunnerContext* context) override;
  absl::Status Start() override;
  void SourcesAssigned() override;
  bool MayPoll() override;
  ConsumedBatch* NextBatch() override { return &batch_; }
  void Polled(const ConsumedBatch& batch) override;
  Result Deliver(ConsumedBatch& batch, std::chrono::steady_clock::time_point polled_at,
                 int attempt) override;
  absl::StatusOr<std::vector<PartitionStart>> OnAssigned(
      const std::vector<TopicPartition>& partitions,
      const std::map<TopicPartition, int64_t>& committed) override;
  void OnRevoked(const std::vector<TopicPartition>& partitions) override;
  bool Drained() const override;
  std::string HealthProblem() const override;
  void Wake() override;
  void Cancel() override;
  void StopBeforeClose() override;
  void StopAfterClose() override;
  std::string GivenUp() const override;

  // For tests.
  JournalDelivery* delivery() { return delivery_.get(); }

 private:
  int64_t NowMs() const;
  // Group mode, right after a batch's commit: the hand-over offsets it earns once delivered.
  std::map<TopicPartition, int64_t> BatchHandover(const std::map<TopicPartition, int64_t>& next);
  void CommitHandover(bool force);
  // Group mode: confirms this member's place in the group with a synchronous commit of the
  // hand-over offsets when the lease is more than half used (JournalDelivery::Confirmed).
  void RenewLease();
  absl::Status RestorePartition(int32_t partition);
  absl::Status RestoreDedup(int32_t partition);
  void DropOldDedupDays();
  // After a poll: which source partitions are idle (at their end for idle_input, no record
  // since), told to the transform when that set changes.
  void UpdateIdleInputs(const ConsumedBatch& batch);

  const JournalStrategyOptions options_;
  std::unique_ptr<EsTransform> transform_;
  std::unique_ptr<JournalServices> services_;
  RunnerContext* ctx_ = nullptr;
  std::unique_ptr<JobMetrics> common_;  // records in/out, dead letters, batches, latency
  // The owed entries and the delivery thread; destroyed (the thread joined) before the services'
  // sink it uses (the destructor resets it first).
  std::unique_ptr<JournalDelivery> delivery_;
  DimensionSource* dims_ = nullptr;
  ConsumedBatch batch_;
  int64_t batch_now_ms_ = 0;  // the clock of the batch in hand (its first attempt's)
  uint64_t batches_since_retention_ = 0;
  std::map<TopicPartition, std::chrono::steady_clock::time_point> at_end_since_;
  std::vector<TopicPartition> idle_inputs_;  // as last told to the transform

  // Group mode: the hand-over offsets last committed, the next offsets committed per partition,
  // when the hand-over was last committed, and when the membership lease was last renewed.
  std::map<TopicPartition, int64_t> last_handover_;
  std::map<TopicPartition, int64_t> consumed_next_;
  std::chrono::steady_clock::time_point last_handover_time_{};
  std::chrono::steady_clock::time_point lease_sent_{};

  Counter* documents_ = nullptr;
  Counter* redis_errors_ = nullptr;
  Counter* dims_missing_ = nullptr;
  Counter* duplicates_ = nullptr;
  Counter* group_assignments_ = nullptr;   // group mode: assignments received
  Counter* partitions_rebuilt_ = nullptr;  // group mode: partitions whose state was rebuilt
  Counter* dedup_restored_ = nullptr;      // group mode: de-dup entries restored
};

// Group mode's membership lease: half of session.timeout.ms in [kafka.properties] (librdkafka's
// default 45000).
std::chrono::milliseconds MembershipLease(const Config& config);

}  // namespace rtdw

#endif  // RTDW_CORE_ENGINE_JOURNAL_STRATEGY_H_
