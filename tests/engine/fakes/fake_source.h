// An in-memory RecordSource (core/engine/record_source.h) for the engine's unit tests: Kafka's
// behaviour that the engine depends on, with nothing else in the way, so that a test can build
// the exact order, revocation and failure that would break a guarantee.
//
//  - FakeLog: the broker side. Topics of numbered partitions holding records (offsets from 0, or
//    from a retention point: Truncate), partitions that can be added (GrowTopic), and the
//    committed offsets of each consumer group. Shared by every FakeSource of a test (the members
//    of a group, a job and its restart).
//  - FakeSource: one consumer on a FakeLog. Lone mode (Assign) and group mode (Subscribe) as the
//    Kafka connector has them: in group mode the listener's OnRevoked / OnAssigned run inside
//    Poll() on the polling thread, as librdkafka runs them; a partition that starts before the
//    log's retained range is an OutOfRange error with a LostOffset. The test steers the group
//    (ScheduleRevoke, ScheduleAssign, LoseAssignment — or lets a one-member group assign every
//    partition by itself) and injects failures into any call (FailNext: an unreachable broker
//    or coordinator, a refused commit, a close that times out).
//
// What the fake does not model: timing (Poll returns at once what is there, waiting only while
// nothing is), prefetching past a Seek, transactions, headers, compaction.
//
// Thread safety: FakeLog is thread-safe. A FakeSource's RecordSource methods and its
// inspection methods (Position, subscribed_topics) belong to the polling thread, as every
// RecordSource's; its test controls (FailNext, ClearFailures, calls, Schedule*, LoseAssignment)
// may be called from any thread at any time and take effect at the next call they concern.
#ifndef RTDW_TESTS_ENGINE_FAKES_FAKE_SOURCE_H_
#define RTDW_TESTS_ENGINE_FAKES_FAKE_SOURCE_H_

#include <array>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "core/engine/record_source.h"

namespace rtdw {

// The broker side of the fake: topics, their records, the groups' committed offsets.
// Thread-safe; every method may be called from any thread.
class FakeLog {
 public:
  struct Record {
    std::string key;
    std::string value;
    int64_t timestamp_ms = 0;
  };

  // Creates `topic` with `partitions` empty partitions (an existing topic is grown instead).
  void CreateTopic(const std::string& topic, int partitions);
  // Adds empty partitions to `topic` until it has `partitions` (never removes any).
  void GrowTopic(const std::string& topic, int partitions);
  // Appends a record to `topic`/`partition` (both must exist); returns its offset.
  int64_t Append(const std::string& topic, int32_t partition, std::string value,
                 std::string key = "", int64_t timestamp_ms = 0);
  // Retention: the records of `topic`/`partition` before `offset` are gone; a consumer that asks
  // for one of them meets a lost offset.
  void Truncate(const std::string& topic, int32_t partition, int64_t offset);

  // The partition count of `topic`; nullopt when it does not exist.
  std::optional<int> PartitionCount(const std::string& topic) const;
  // The first retained offset and the next offset to be written (0, 0 for a partition that does
  // not exist).
  std::pair<int64_t, int64_t> Watermarks(const TopicPartition& tp) const;
  // Calls `each` with every retained record of `tp` from offset `from` on, at most `max` of them,
  // in offset order, under the log's lock (it must not call the log).
  void Read(const TopicPartition& tp, int64_t from, size_t max,
            const std::function<void(int64_t offset, const Record&)>& each) const;

  // The committed next offsets of `group` (what Committed / CommitSync of its members see).
  std::map<TopicPartition, int64_t> GroupOffsets(const std::string& group) const;
  void SetGroupOffsets(const std::string& group, const std::map<TopicPartition, int64_t>& next);

  // Counts appends and added partitions; a poller waits for it to move (AwaitChange).
  uint64_t version() const;
  // Waits until version() != `seen` or `deadline`; true when it moved.
  bool AwaitChange(uint64_t seen, absl::Time deadline) const;

 private:
  struct Partition {
    int64_t low = 0;             // offset of records.front()
    std::deque<Record> records;  // records[i] has offset low + i
  };
  mutable absl::Mutex mu_;
  std::map<std::string, std::vector<Partition>> topics_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, std::map<TopicPartition, int64_t>> groups_ ABSL_GUARDED_BY(mu_);
  uint64_t version_ ABSL_GUARDED_BY(mu_) = 0;
};

struct FakeSourceOptions {
  // The consumer group: Committed / CommitSync / CommitAsync read and write its offsets.
  std::string group_id = "rtdw.test";
  // Group mode: a group of this member alone. Every Poll() first compares the subscribed topics'
  // partitions with the assignment and, when they differ (the first poll after Subscribe,
  // partitions added, a revoke the test scheduled), revokes what is assigned and assigns every
  // partition, as a coordinator would. false: partitions come and go only as the test schedules.
  bool single_member_group = true;
  // Records taken from one partition before the next partition's turn within a Poll()
  // (0: all of them). Each Poll() starts one partition further on, so small turns interleave the
  // partitions differently from poll to poll (Kafka keeps order only within a partition).
  size_t records_per_turn = 0;
  // Poll() with nothing to read waits up to its max_wait for an append (false: returns at once).
  bool wait_for_records = true;
};

class FakeSource : public RecordSource {
 public:
  // The calls a test can count and fail (FailNext).
  enum class Op {
    kPartitionCount,
    kAssign,
    kSubscribe,
    kPoll,
    kSeek,
    kVerifiedAtEnd,  // a failure: the broker does not answer (false)
    kCommitted,
    kCommitSync,
    kCommitAsync,  // a failure: the commit is dropped (nobody is told)
    kClose,        // a failure: returned after the final revoke (a coordinator that timed out)
  };
  static constexpr int kOpCount = 10;

  // `log` must outlive the source.
  explicit FakeSource(FakeLog* log, FakeSourceOptions options = {});
  // Unlike the Kafka consumer's, never calls the listener (a test's listener may be gone by
  // then): a test that wants the final revoke calls Close().
  ~FakeSource() override;
  FakeSource(const FakeSource&) = delete;
  FakeSource& operator=(const FakeSource&) = delete;

  // ---- RecordSource

  absl::StatusOr<int> PartitionCount(const std::string& topic,
                                     std::chrono::milliseconds timeout) override;
  // kBeginning / kEnd are resolved against the log now.
  absl::Status Assign(const std::vector<PartitionStart>& starts) override;
  absl::Status Subscribe(const std::vector<std::string>& topics,
                         RebalanceListener* listener) override;
  const std::vector<TopicPartition>& assignment() const override { return assigned_; }
  bool AssignmentLost() const override;
  // Group mode: runs the scheduled moves of the group first (then nothing of an earlier
  // assignment can be in the batch). A partition whose position is outside the log's retained
  // range fails the whole poll (nothing appended) with LostOffsetError.
  absl::Status Poll(size_t max_records, std::chrono::milliseconds max_wait,
                    ConsumedBatch* out) override;
  // FailedPrecondition for a partition not assigned (nothing moved then).
  absl::Status Seek(const std::map<TopicPartition, int64_t>& next_offsets,
                    std::chrono::milliseconds timeout) override;
  bool PartitionAtEnd(const TopicPartition& tp) const override;
  bool VerifiedAtEnd(std::chrono::milliseconds timeout) override;
  using RecordSource::VerifiedAtEnd;
  // The log's end offsets as of the last Poll().
  std::map<TopicPartition, int64_t> HighWatermarks() const override;
  absl::StatusOr<std::map<TopicPartition, int64_t>> Committed(
      const std::vector<TopicPartition>& partitions, std::chrono::milliseconds timeout) override;
  // Unavailable while the assignment is lost (a coordinator refusing an old generation).
  absl::Status CommitSync(const std::map<TopicPartition, int64_t>& next_offsets,
                          std::chrono::milliseconds timeout) override;
  void CommitAsync(const std::map<TopicPartition, int64_t>& next_offsets) override;
  // Group mode: OnRevoked with the whole assignment (when there is one), then the injected
  // failure if any. Later polls fail (FailedPrecondition).
  absl::Status Close(std::chrono::steady_clock::time_point deadline) override;
  using RecordSource::Close;

  // ---- Test controls (any thread)

  // The next `times` calls of `op` fail with `status` (times < 0: every call until
  // ClearFailures). A failed call changes nothing.
  void FailNext(Op op, absl::Status status, int times = 1);
  void ClearFailures(Op op);
  // Calls of `op` so far, failed ones included.
  int calls(Op op) const;

  // Group mode: moves of the coordinator, run in order by the next Poll() on its thread. A
  // revoke takes the whole assignment away (OnRevoked with every assigned partition: eager, as
  // librdkafka's range and round-robin assignors); an assign gives `partitions` (OnAssigned,
  // then each starts where it said).
  void ScheduleRevoke();
  void ScheduleAssign(std::vector<TopicPartition> partitions);
  // The coordinator dropped this member (its session timed out): AssignmentLost() is true from
  // now until the next assignment, commits are refused, and a revoke is scheduled.
  void LoseAssignment();

  // ---- Inspection (the polling thread, or while it is idle)

  // The next offset a poll reads of `tp`; nullopt when it is not assigned.
  std::optional<int64_t> Position(const TopicPartition& tp) const;
  const std::vector<std::string>& subscribed_topics() const { return topics_; }
  // Rebalance callbacks run so far (OnAssigned, OnRevoked).
  int assigned_callbacks() const { return assigned_callbacks_; }
  int revoked_callbacks() const { return revoked_callbacks_; }

 private:
  struct Move {
    bool revoke = false;
    std::vector<TopicPartition> partitions;  // assign
  };
  // Counts a call of `op`; its injected failure, if one is due.
  absl::Status Enter(Op op);
  // Group mode, at the start of Poll(): the scheduled moves (and a one-member group's own),
  // with the listener called outside the lock. The first OnAssigned error.
  absl::Status Rebalance();
  void Revoke();
  void SetAssignment(const std::vector<PartitionStart>& starts);
  // Partitions of the subscribed topics, in topic order.
  std::vector<TopicPartition> SubscribedPartitions() const;

  FakeLog* const log_;
  const FakeSourceOptions options_;

  // Test controls, from any thread.
  mutable absl::Mutex mu_;
  struct Failure {
    absl::Status status;
    int times = 0;  // < 0: until cleared
  };
  std::array<Failure, kOpCount> failures_ ABSL_GUARDED_BY(mu_);
  std::array<int, kOpCount> calls_ ABSL_GUARDED_BY(mu_){};
  std::deque<Move> moves_ ABSL_GUARDED_BY(mu_);
  bool lost_ ABSL_GUARDED_BY(mu_) = false;

  // The polling thread's.
  RebalanceListener* listener_ = nullptr;
  std::vector<std::string> topics_;  // subscribed
  bool ever_assigned_ = false;
  bool closed_ = false;
  std::vector<TopicPartition> assigned_;
  std::map<TopicPartition, int64_t> position_;
  std::map<TopicPartition, bool> at_end_;
  std::map<TopicPartition, int64_t> high_seen_;
  size_t turn_ = 0;  // the partition a poll starts with
  int assigned_callbacks_ = 0;
  int revoked_callbacks_ = 0;
};

}  // namespace rtdw

#endif  // RTDW_TESTS_ENGINE_FAKES_FAKE_SOURCE_H_
