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
// The delivery half — the owed entries, the delivery thread, the start-up replay, back-pressure,
// fencing by assignment epoch and membership lease, the stop's drain — is the engine's
// JournalDelivery (core/engine/journal_delivery.h, whose header states its rules). This runner
// owns the consumer: it tells JournalDelivery about assignments (OnAssigned), revokes
// (OnRevoked) and the coordinator's confirmations (RenewLease), and commits the hand-over
// offsets JournalDelivery computes.
#ifndef RTDW_TOOLS_RTDWD_ES_JOB_H_
#define RTDW_TOOLS_RTDWD_ES_JOB_H_

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "connectors/es/es_client.h"
#include "connectors/es/es_journal_sink.h"
#include "connectors/kafka/consumer.h"
#include "connectors/redis/dimension_cache.h"
#include "connectors/redis/redis_client.h"
#include "core/config/config.h"
#include "core/engine/batch_transaction.h"
#include "core/engine/job_runner.h"
#include "core/engine/journal_delivery.h"
#include "core/es_transform.h"
#include "core/metrics.h"
#include "storage/state_store.h"
#include "tools/rtdwd/fault_points.h"
#include "tools/rtdwd/job_common.h"
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
  absl::Status ConnectEs();
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
  // Group mode, job thread: confirms this member's place in the group with a synchronous commit
  // of the hand-over offsets when the lease is more than half used (JournalDelivery::Confirmed).
  void RenewLease();
  // Test-only fault point "mid_delivery": sends the first half of `entry`'s documents, then
  // (maybe) dies — a crash mid-delivery.
  void MidDelivery(const JournalEntry& entry);
  void DropOldDedupDays();
  // After a poll: which source partitions are idle (at their end for settings_.idle_input, no
  // record since), told to the transform when that set changes.
  void UpdateIdleInputs();
  // Lone mode, after an empty poll: partitions added to a source topic while running are noticed
  // (a metadata check every minute, and before the job first says it is at its end, then every
  // second) and picked up by assigning again (TryAssign). True when the job reassigns.
  bool PickUpNewPartitions(bool at_end);
  void SetProblem(std::string problem);

  const Config& config_;
  EsJobSettings settings_;
  std::unique_ptr<EsTransform> transform_;
  MetricsRegistry* metrics_;
  KafkaLagTracker lag_;  // the job's thread feeds it
  JobMetrics common_;    // records in/out, dead letters, batches, batch latency
  JobProblem problem_;   // the /health line
  FaultPoints faults_;
  const bool group_mode_;

  // Every member below is the job thread's (the rebalance callbacks run in its poll), but for
  // delivery_, which is thread-safe. Destroyed in reverse: the delivery thread ends (delivery_)
  // before the sink and the store it uses go.
  std::unique_ptr<StateStore> store_;
  std::unique_ptr<EsClient> es_;
  std::unique_ptr<EsJournalSink> sink_;
  JournalDelivery delivery_;  // the owed entries and the delivery thread
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

  // Group mode: the hand-over offsets last committed, the next offsets committed per partition,
  // when the hand-over was last committed, and when the membership lease was last renewed.
  std::map<TopicPartition, int64_t> last_handover_;
  std::map<TopicPartition, int64_t> consumed_next_;
  std::chrono::steady_clock::time_point last_handover_time_{};
  std::chrono::steady_clock::time_point lease_sent_{};
  std::string given_up_;  // GivenUp()
  std::atomic<bool> consumer_at_end_{false};

  Counter* documents_;
  Counter* es_retries_;
  Counter* es_too_large_;
  Counter* redis_errors_;
  Counter* dims_missing_;
  Counter* duplicates_;
  Counter* group_assignments_;   // group mode: assignments received
  Counter* partitions_rebuilt_;  // group mode: partitions whose state was rebuilt
  Counter* dedup_restored_;      // group mode: de-dup entries restored from ES
};

}  // namespace rtdw

#endif  // RTDW_TOOLS_RTDWD_ES_JOB_H_
