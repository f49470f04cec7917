// The ES-writing jobs (dau, order-wide) on the batch transaction of docs/DESIGN.md:
//
//   poll -> transform (dedup/join state through the pending batch; dims from Redis, batched)
//   -> ONE synced WriteBatch: offsets + state mutations + watermarks + dead letters + the journal
//      entry (the exact bulk body owed to ES, deterministic _ids)
//   -> the delivery thread sends entries strictly in seq order (failed items retried before the
//      next entry) -> CompleteJournal: delete the entry, dead-letter refused items.
//
// Building batch N+1 overlaps the delivery of batch N; at most `max_backlog` entries are owed at
// once — a full backlog pauses polling (back-pressure, bounded memory). Start-up re-delivers every
// owed entry, in order, before consuming.
//
// Exactly-once in ES: a crash at any instant leaves a batch wholly committed (offsets, state and
// the entry) or not at all; an owed entry is re-delivered after any restart; ids are
// deterministic, so a re-delivery is harmless.
//
// Group mode (kafka.group; docs/DESIGN.md "Scaling out"): partitions come and go through the
// consumer group. The group's committed offset of a partition — where its next owner starts — is
// the hand-over offset: it never passes a record whose documents are not acknowledged by ES, nor
// (for the join) a row still waiting in the `join` column family. A new owner whose local state of
// a partition is not exactly at that offset drops it and rebuilds it: de-dup from the partition's
// documents in ES (their `rtdw_src`), join rows by replaying from the hand-over offset. Owed
// journal entries a group-mode run left at start-up are dropped, not delivered: their records lie
// after the group's offset and are processed again by whoever owns the partition now. Entries a
// lone-mode run left (the store's `journal_mode` meta) are delivered before joining: the group's
// offset may already be past them (lone mode commits its lag-monitoring offsets before delivery).
//
// Fencing (group mode; docs/OPERATIONS.md "Fencing"): a member sends an entry only while it owns
// the entry's partitions. Every entry is tagged with the assignment it was made under (an epoch
// counted by OnAssigned); before every bulk request the delivery thread checks that this
// assignment is still the member's and that the member's place in the group was confirmed by
// the coordinator within the lease (a synchronous commit accepted less than half a
// session.timeout.ms ago). A revoke waits at most kafka.revoke_timeout for what is owed, then
// fences the rest: never sent, deleted from the journal (the partitions' next owner processes
// their records again from the hand-over offset, which stays at what was delivered), counted in
// rtdw_es_fenced_entries_total. A stop leaves what it could not deliver in the journal instead.
// librdkafka's eager assignors revoke a member's whole assignment at once, so a fence takes every
// owed entry, whatever partitions it spans. ES's external versions are the safety net for a request
// already in flight when the fence falls.
#ifndef RTDW_TOOLS_RTDWD_ES_JOB_H_
#define RTDW_TOOLS_RTDWD_ES_JOB_H_

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "connectors/es/es_client.h"
#include "connectors/es/es_journal_sink.h"
#include "connectors/kafka/consumer.h"
#include "connectors/redis/dimension_cache.h"
#include "connectors/redis/redis_client.h"
#include "core/config/config.h"
#include "core/engine/batch_transaction.h"
#include "core/engine/owed_journal.h"
#include "core/es_transform.h"
#include "core/metrics.h"
#include "storage/state_store.h"
#include "tools/rtdwd/fault_points.h"
#include "tools/rtdwd/job_common.h"
#include "core/engine/job_runner.h"
#include "tools/rtdwd/progress.h"

namespace rtdw {

struct EsJobSettings {
  std::string job;
  std::vector<std::string> source_topics;
  bool co_partitioned = false;  // the source topics must have equal partition counts
  // order-wide: source_topics = {order topic, detail topic}; join rows hold back the hand-over.
  bool join_state = false;
  int64_t batch_max_records = 10000;
  std::chrono::milliseconds batch_max_ms{200};
  size_t max_backlog = 4;               // owed journal entries before polling pauses
  std::string dau_index_prefix;         // "" = no DAU template
  std::string order_wide_index_prefix;  // "" = no order-wide template
  // dau: keep the watermark's day and the N-1 days before it (0 = no de-dup state to drop).
  int dedup_retention_days = 0;
  // order-wide (jobs.order-wide.idle_input): a source partition at its end for this long is
  // named idle to the transform (EsTransform::SetIdleInputs). Unset: none is ever idle.
  std::optional<std::chrono::seconds> idle_input;
  absl::TimeZone time_zone;
};

class EsJobRunner : public JobRunner, private RebalanceListener {
 public:
  EsJobRunner(const Config& config, EsJobSettings settings, std::unique_ptr<EsTransform> transform,
              MetricsRegistry* metrics);
  ~EsJobRunner() override;

  const std::string& name() const override { return settings_.job; }
  absl::Status Start() override;
  absl::StatusOr<size_t> RunOnce() override;
  bool CaughtUp() const override;
  std::string HealthProblem() const override;
  absl::Status Stop() override;
  StateStore* store() override { return store_.get(); }
  const KafkaLagTracker* lag() const override { return &lag_; }
  void SetBatchLimits(int64_t max_records, std::chrono::milliseconds max_ms) override {
    settings_.batch_max_records = max_records;
    settings_.batch_max_ms = max_ms;
  }
  std::string GivenUp() const override { return given_up_; }
  void BeginStop(std::chrono::steady_clock::time_point deadline) override;
  void Cancel() override;

 private:
  enum class Delivered { kDone, kFenced, kCancelled };

  absl::Status ConnectEs();
  absl::Status ReplayJournal();
  // Group mode: the hand-over offsets of `partitions` (all assigned when empty).
  absl::StatusOr<std::map<TopicPartition, int64_t>> HandoverOffsets(
      const std::vector<TopicPartition>& partitions);
  // Group mode, right after a batch's commit: the hand-over offsets it earns once delivered.
  std::map<TopicPartition, int64_t> BatchHandover(const std::map<TopicPartition, int64_t>& next);
  void CommitHandover(bool force);
  absl::StatusOr<std::vector<PartitionStart>> OnAssigned(
      const std::vector<TopicPartition>& partitions) override;
  void OnRevoked(const std::vector<TopicPartition>& partitions) override;
  absl::Status RestorePartition(int32_t partition);
  absl::Status RestoreDedupFromEs(int32_t partition);
  absl::Status TryAssign();
  absl::Status CommitBatch(int64_t now_ms);
  void DeliveryLoop();
  // Delivers one entry until it is done, fenced (group mode: its assignment was revoked) or the
  // runner is cancelled.
  Delivered DeliverOne(const JournalEntry& entry);
  // The delivery thread, right before every bulk request of entry `seq`: OK when it may be sent.
  // Group mode: Aborted when the entry's assignment is gone (fenced), Unavailable while the
  // membership lease is not confirmed. Sets may_not_.
  absl::Status MaySend(uint64_t seq);
  // Group mode, job thread: confirms this member's place in the group with a synchronous commit
  // of the hand-over offsets when the lease is more than half used; extends the lease on success.
  void RenewLease();
  void DropOldDedupDays();
  // After a poll: which source partitions are idle (at their end for settings_.idle_input, no
  // record since), told to the transform when that set changes.
  void UpdateIdleInputs();
  // Lone mode, after an empty poll: partitions added to a source topic while running are noticed
  // (a metadata check every minute, and before the job first says it is at its end, then every
  // second) and picked up by assigning again (TryAssign). True when the job reassigns.
  bool PickUpNewPartitions(bool at_end);
  void SetProblem(std::string problem);
  size_t Backlog() const;

  const Config& config_;
  EsJobSettings settings_;
  std::unique_ptr<EsTransform> transform_;
  MetricsRegistry* metrics_;
  KafkaLagTracker lag_;  // the job's thread feeds it
  JobMetrics common_;    // records in/out, dead letters, batches, batch latency
  JobProblem problem_;   // the /health line
  // Documents ES refused: a warning each, a /health line while recent.
  RejectionNotice rejections_;
  FaultPoints faults_;

  std::unique_ptr<StateStore> store_;
  std::unique_ptr<EsClient> es_;
  std::unique_ptr<EsJournalSink> sink_;
  std::unique_ptr<RedisClient> redis_;
  std::unique_ptr<RedisDimensionCache> dims_;
  std::unique_ptr<KafkaConsumer> consumer_;
  ConsumedBatch batch_;
  FreeSpaceGate space_;  // nothing is read while the state disk is (nearly) full
  bool assigned_ = false;
  uint64_t batches_since_retention_ = 0;
  // Since when each source partition has been at its end with no record (UpdateIdleInputs).
  std::map<TopicPartition, std::chrono::steady_clock::time_point> at_end_since_;
  std::vector<TopicPartition> idle_inputs_;  // as last told to the transform
  NewPartitionWatch new_partitions_;         // lone mode

  // Delivery: entries committed and not yet completed, in seq order, each tagged with the
  // assignment it was made under (assignment_epoch_), and (group mode) the hand-over offsets.
  // Guarded by mu_.
  mutable std::mutex mu_;
  std::condition_variable cv_;
  OwedJournal owed_;
  std::map<TopicPartition, int64_t> last_handover_;  // job thread
  std::map<TopicPartition, int64_t> consumed_next_;  // job thread: next offsets committed
  std::chrono::steady_clock::time_point last_handover_time_{};
  const bool group_mode_;
  bool delivery_stop_ = false;
  // Fencing (group mode), guarded by mu_: the assignment entries are made under, whether it is
  // still this member's, the delivery thread holding an entry, a fence in progress, and until
  // when the coordinator's last confirmation of membership is trusted.
  uint64_t assignment_epoch_ = 0;
  bool owning_ = false;
  bool delivering_ = false;
  bool fencing_ = false;
  std::chrono::steady_clock::time_point lease_until_{};
  // Delivery thread: why MaySend last refused.
  enum class MayNot { kNone, kLease, kFenced } may_not_ = MayNot::kNone;
  const std::chrono::milliseconds lease_;               // half of session.timeout.ms
  std::chrono::steady_clock::time_point lease_sent_{};  // job thread: last renewal sent
  // Job thread: the last confirmation (or the assignment, before the first one).
  std::chrono::steady_clock::time_point confirmed_at_{};
  // The sink's cancel flag: cancel_ or a fence (which also aborts a request in flight). Set
  // under mu_.
  std::atomic<bool> abort_delivery_{false};
  // Ownership is checked from the group subscription on (not in the start-up replay).
  std::atomic<bool> check_ownership_{false};
  // Deliveries (and the start-up replay) give up: set by Cancel(), and by Stop() at its deadline
  // (the rest of the stop, e.g. the group's hand-over commit, still has until the deadline).
  std::atomic<bool> cancel_{false};
  std::string given_up_;  // job thread: GivenUp()
  std::thread delivery_thread_;
  std::atomic<bool> consumer_at_end_{false};

  Counter* documents_;
  Counter* es_retries_;
  Counter* es_too_large_;
  Counter* redis_errors_;
  Counter* dims_missing_;
  Counter* duplicates_;
  Counter* delivered_docs_;
  Counter* rejected_docs_;
  Counter* superseded_docs_;
  Counter* fenced_entries_;     // group mode: owed entries given up at a revoke, never sent
  Counter* revokes_timed_out_;  // group mode: revokes that gave up after kafka.revoke_timeout
  Histogram* revoke_wait_seconds_;
  Gauge* backlog_gauge_;
  Counter* es_rejected_;         // rtdw_dead_letters_total{reason="es_rejected"}
  Counter* group_assignments_;   // group mode: assignments received
  Counter* partitions_rebuilt_;  // group mode: partitions whose state was rebuilt
  Counter* dedup_restored_;      // group mode: de-dup entries restored from ES
  Histogram* delivery_seconds_;
};

}  // namespace rtdw

#endif  // RTDW_TOOLS_RTDWD_ES_JOB_H_
