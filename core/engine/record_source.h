// Where a job's records come from: the partitioned, offset-addressed log the engine reads
// (Kafka in production: connectors/kafka/consumer.h; an in-memory log in the engine's unit
// tests: tests/engine/fakes/fake_source.h).
//
// A source holds topics of numbered partitions; every record of a partition has an offset, one
// more than the record before it. The job owns partitions in one of two ways:
//  - Assign(): lone mode. The job owns every partition it names, starting at offsets it chooses
//    (the state store's `offsets` column family is the source of truth); the source's own
//    committed offsets are for lag monitoring only (CommitAsync).
//  - Subscribe(): group mode (kafka.group; docs/DESIGN.md "Scaling out"). A coordinator splits
//    the partitions among the members of a group. A RebalanceListener is called on the polling
//    thread, inside Poll() (and Close()), when partitions are given (it says where each starts)
//    or taken away (it finishes what it owes for them first). The group's committed offsets
//    (CommitSync, Committed) are the hand-over point between owners.
//
// Thread safety: a RecordSource is used by one thread, the job's (the "polling thread"); none of
// its methods may run concurrently with another. The listener's callbacks run on that thread,
// inside Poll() or Close(), and may call the source's other methods (Committed, CommitSync,
// AssignmentLost, assignment) but not Poll(), Assign(), Subscribe() or Close().
//
// Errors are absl::Status, never exceptions: Unavailable / DeadlineExceeded for a broker or
// coordinator that did not answer (worth asking again later), NotFound for a topic that does not
// exist, OutOfRange (with a LostOffset payload) for a stored offset the log no longer holds.
#ifndef RTDW_CORE_ENGINE_RECORD_SOURCE_H_
#define RTDW_CORE_ENGINE_RECORD_SOURCE_H_

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/records.h"

namespace rtdw {

// Where an assigned partition starts.
struct PartitionStart {
  std::string topic;
  int32_t partition = 0;
  // >= 0: this offset; kBeginning / kEnd: the log's start / end.
  int64_t offset = kBeginning;
  static constexpr int64_t kBeginning = -2;
  static constexpr int64_t kEnd = -1;
};

// What a Poll() that met a lost stored offset knows of it: carried by its OutOfRange status (a
// payload), so that the daemon can say where the log's range is and how to resume.
struct LostOffset {
  std::string topic;
  int32_t partition = 0;
  int64_t offset = -1;  // the offset the job asked for (-1: unknown)
  int64_t low = -1;     // the log's first retained offset (-1: the broker did not answer)
  int64_t high = -1;    // the next offset to be written
};
// The OutOfRange status a source's Poll() returns for `lost`: `message`, with `lost` attached as
// its payload (LostOffsetOf reads it back).
absl::Status LostOffsetError(const LostOffset& lost, std::string_view message);
// The LostOffset of a status returned by RecordSource::Poll (nullopt for any other status).
std::optional<LostOffset> LostOffsetOf(const absl::Status& status);

// Group mode's callbacks, on the thread that calls Poll() (and Close()).
class RebalanceListener {
 public:
  virtual ~RebalanceListener() = default;
  // The group gave this member `partitions`: restore their state and say where each starts. An
  // error leaves them unassigned and is returned by the Poll() that ran the callback.
  virtual absl::StatusOr<std::vector<PartitionStart>> OnAssigned(
      const std::vector<TopicPartition>& partitions) = 0;
  // `partitions` are about to be taken away: commit and deliver what is owed for them and write
  // the hand-over offsets (CommitSync) before returning.
  virtual void OnRevoked(const std::vector<TopicPartition>& partitions) = 0;
};

// The records of one or more polls of one source, until Clear(). The InputRecord views point
// into buffers the batch owns (a source's own, e.g. librdkafka's messages: no copy) and are
// valid until the batch is cleared or destroyed. Thread-compatible.
class ConsumedBatch {
 public:
  // What keeps a batch's record bytes alive; each source type has its own.
  class Buffers {
   public:
    virtual ~Buffers() = default;
    // The batch is cleared: release what its records point into. The object itself stays with
    // the batch, for the next poll into it.
    virtual void Release() = 0;
  };

  ConsumedBatch() = default;
  ConsumedBatch(const ConsumedBatch&) = delete;
  ConsumedBatch& operator=(const ConsumedBatch&) = delete;
  void Clear() {
    records_.clear();
    if (buffers_) buffers_->Release();
  }
  size_t size() const { return records_.size(); }
  bool empty() const { return records_.empty(); }
  const InputRecord& operator[](size_t i) const { return records_[i]; }
  const std::vector<InputRecord>& records() const { return records_; }

  // ---- For RecordSource::Poll implementations only.

  // The batch's buffers of the source type B (default-constructed the first time). nullptr when
  // the batch still holds records of another source type (a batch collects one source's
  // records between Clear()s).
  template <typename B>
  B* BuffersOf() {
    if (B* b = dynamic_cast<B*>(buffers_.get())) return b;
    if (!records_.empty()) return nullptr;
    if (buffers_) buffers_->Release();
    auto owned = std::make_unique<B>();
    B* b = owned.get();
    buffers_ = std::move(owned);
    return b;
  }
  // The records, for the source to append to (and to cut back to what it keeps).
  std::vector<InputRecord>& mutable_records() { return records_; }

 private:
  std::vector<InputRecord> records_;
  std::unique_ptr<Buffers> buffers_;  // after records_: destroyed first
};

class RecordSource {
 public:
  virtual ~RecordSource() = default;

  // ---- Metadata

  // The partition count of `topic`; NotFound when the source does not have it (a source never
  // creates a topic), Unavailable when the broker did not answer within `timeout`.
  virtual absl::StatusOr<int> PartitionCount(const std::string& topic,
                                             std::chrono::milliseconds timeout) = 0;

  // ---- Owning partitions

  // Lone mode: replaces the assignment with `starts` (each read from its start on).
  virtual absl::Status Assign(const std::vector<PartitionStart>& starts) = 0;
  // Group mode: joins the group for `topics`; partitions arrive through `listener` during
  // Poll(). The listener must outlive the source (or its Close()).
  virtual absl::Status Subscribe(const std::vector<std::string>& topics,
                                 RebalanceListener* listener) = 0;
  // The assigned (topic, partition) pairs, in the order they were assigned. Changed only by
  // Assign(), and in group mode by Poll() / Close() (a rebalance).
  virtual const std::vector<TopicPartition>& assignment() const = 0;
  // Group mode: true when the assignment is already lost (the coordinator dropped this member,
  // e.g. after its session timed out): the partitions may belong to another member by now, and
  // nothing may be written for them any more. Always false in lone mode.
  virtual bool AssignmentLost() const = 0;

  // ---- Reading

  // Appends up to `max_records` records of the assigned partitions to `out`, waiting at most
  // `max_wait` for the first ones (each partition's records in offset order). Group mode runs
  // the listener's callbacks in here; a rebalance inside the call drops what the call had
  // collected and starts each newly assigned partition where OnAssigned said (nothing skipped:
  // whoever owns a partition now reads the dropped records again). An error of OnAssigned is
  // returned (its partitions stay unassigned). A partition whose start the log no longer holds
  // is an OutOfRange error carrying a LostOffset (LostOffsetError) — never a silent jump. Other
  // errors (broker unreachable) are retried inside and may surface as Unavailable.
  virtual absl::Status Poll(size_t max_records, std::chrono::milliseconds max_wait,
                            ConsumedBatch* out) = 0;
  // Moves the next poll of each given assigned partition to its offset (records fetched past it
  // are dropped). Waits at most `timeout`; an error for a partition not assigned.
  virtual absl::Status Seek(const std::map<TopicPartition, int64_t>& next_offsets,
                            std::chrono::milliseconds timeout) = 0;

  // ---- Ends and lag (no effect on what is read)

  // True when `tp` is assigned and its end was reached after its last record polled (as of the
  // last Poll(); no broker call).
  virtual bool PartitionAtEnd(const TopicPartition& tp) const = 0;
  // True when every assigned partition's next offset has reached its end as the broker reports
  // it now (records written since the last poll count as "not at end"); false in group mode
  // before the first assignment, and when the broker does not answer within `timeout`. Call it
  // when idle: it may cost a round trip.
  virtual bool VerifiedAtEnd(std::chrono::milliseconds timeout) = 0;
  bool VerifiedAtEnd() { return VerifiedAtEnd(kVerifyAtEndTimeout); }
  static constexpr std::chrono::milliseconds kVerifyAtEndTimeout{2000};
  // The end offset (next offset to be written) of each assigned partition as last seen, for lag;
  // a partition not seen yet is absent. No broker call.
  virtual std::map<TopicPartition, int64_t> HighWatermarks() const = 0;

  // ---- The group's committed offsets

  // The group's committed next offset per partition (a partition without one is absent).
  // Unavailable / DeadlineExceeded when the coordinator did not answer within `timeout`.
  virtual absl::StatusOr<std::map<TopicPartition, int64_t>> Committed(
      const std::vector<TopicPartition>& partitions, std::chrono::milliseconds timeout) = 0;
  // Commits next offsets to the group and waits for the coordinator's answer, at most `timeout`
  // (DeadlineExceeded then: the commit may still land later, or not). A member whose assignment
  // is lost is refused. Group mode: the hand-over offsets, and the lease confirmation.
  virtual absl::Status CommitSync(const std::map<TopicPartition, int64_t>& next_offsets,
                                  std::chrono::milliseconds timeout) = 0;
  // The same, not waiting for the answer (lag monitoring: a failure is not reported).
  virtual void CommitAsync(const std::map<TopicPartition, int64_t>& next_offsets) = 0;

  // ---- Closing

  // Leaves the group (group mode: the listener's OnRevoked runs, on this thread) and stops
  // reading, giving up at `deadline`: OK when closed; DeadlineExceeded when the coordinator did
  // not answer in time (the group drops this member after its session timeout; what was
  // committed stays committed). Idempotent; nothing but the destructor may follow.
  virtual absl::Status Close(std::chrono::steady_clock::time_point deadline) = 0;
  // The same without a deadline.
  void Close() { (void)Close(std::chrono::steady_clock::time_point::max()); }
};

}  // namespace rtdw

#endif  // RTDW_CORE_ENGINE_RECORD_SOURCE_H_
