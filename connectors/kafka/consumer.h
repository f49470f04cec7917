// A Kafka consumer (librdkafka) for rtdw's batch loop. Records are polled in batches straight from
// librdkafka's buffers (no copy), and the consumer knows when each assigned partition is at its
// end.
//
// Two ways to own partitions:
//  - Assign(): the caller owns every partition it names, at offsets it chooses (the state store's
//    `offsets` column family is the source of truth); Kafka's committed offsets are written only
//    for lag monitoring (CommitAsync).
//  - Subscribe() (kafka.group; docs/DESIGN.md "Scaling out"): the coordinator splits partitions
//    among the members. A RebalanceListener is called on the polling thread, inside Poll(), when
//    partitions are given (it says where each starts) or taken away (it finishes what it owes
//    for them first); the group's committed offsets are the hand-over point between owners.
#ifndef RTDW_CONNECTORS_KAFKA_CONSUMER_H_
#define RTDW_CONNECTORS_KAFKA_CONSUMER_H_

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/records.h"

typedef struct rd_kafka_s rd_kafka_t;
typedef struct rd_kafka_queue_s rd_kafka_queue_t;
typedef struct rd_kafka_message_s rd_kafka_message_t;

namespace rtdw {

struct KafkaConsumerOptions {
  std::string brokers;
  // Assign(): "rtdw.<job>", for the lag-monitoring commits only. Subscribe(): the group.
  std::string group_id;
  std::map<std::string, std::string> properties;  // passed through first; rtdw's own win
  // Subscribe() only: "range" keeps partition p of every subscribed topic on one member (what a
  // co-partitioned join needs); "" leaves librdkafka's default.
  std::string assignment_strategy;
  // Prefetch bound (librdkafka's queued.min.messages / queued.max.messages.kbytes; 0 keeps
  // librdkafka's default, 100000 / 65536). Both apply to the one consumer queue; when either is
  // reached fetching pauses until the fetcher wakes again (up to ~1 s in librdkafka 2.0.2), so
  // a tight bound caps throughput. A value given in `properties` wins over these.
  int queued_min_messages = 0;
  int queued_max_kbytes = 0;
  // librdkafka's own log lines (syslog level 0-7, facility, message), from its threads. Unset:
  // librdkafka prints them to stderr.
  std::function<void(int level, std::string_view facility, std::string_view message)> log;
};

using TopicPartition = std::pair<std::string, int32_t>;

// Where an assigned partition starts.
struct PartitionStart {
  std::string topic;
  int32_t partition = 0;
  // >= 0: this offset; kBeginning / kEnd: the log's start / end.
  int64_t offset = kBeginning;
  static constexpr int64_t kBeginning = -2;
  static constexpr int64_t kEnd = -1;
};

struct PartitionStart;

// Group mode's callbacks, on the thread that calls Poll().
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

// The records of one poll. Owns librdkafka's messages; InputRecord views point into them and are
// valid until the batch is cleared or destroyed.
class ConsumedBatch {
 public:
  ConsumedBatch() = default;
  ~ConsumedBatch();
  ConsumedBatch(const ConsumedBatch&) = delete;
  ConsumedBatch& operator=(const ConsumedBatch&) = delete;
  void Clear();
  size_t size() const { return records_.size(); }
  bool empty() const { return records_.empty(); }
  const InputRecord& operator[](size_t i) const { return records_[i]; }
  const std::vector<InputRecord>& records() const { return records_; }

 private:
  friend class KafkaConsumer;
  std::vector<rd_kafka_message_t*> messages_;
  std::vector<InputRecord> records_;
};

class KafkaConsumer {
 public:
  static absl::StatusOr<std::unique_ptr<KafkaConsumer>> Create(const KafkaConsumerOptions& options);
  // Close()s if not closed yet. After Close(deadline), destroys the client without waiting past
  // that deadline (+1 s): a client librdkafka cannot finish destroying by then is left behind
  // (connectors/kafka/destroy.h).
  ~KafkaConsumer();
  // Leaves the group (group mode: the listener's OnRevoked runs, on this thread) and stops
  // fetching, waiting as long as that takes. Idempotent; nothing but the destructor may follow.
  void Close();
  // The same, giving up at `deadline` (a stop): OK when the consumer closed (the group was left,
  // pending commits answered); DeadlineExceeded when the coordinator did not answer in time —
  // then the group drops this member after session.timeout.ms, and what was committed stays
  // committed (an uncommitted hand-over is read again by the next owner).
  absl::Status Close(std::chrono::steady_clock::time_point deadline);
  KafkaConsumer(const KafkaConsumer&) = delete;
  KafkaConsumer& operator=(const KafkaConsumer&) = delete;

  // Partition count of `topic`; NotFound when the broker does not have it (never auto-creates).
  absl::StatusOr<int> PartitionCount(const std::string& topic, std::chrono::milliseconds timeout);
  // Replaces the assignment.
  absl::Status Assign(const std::vector<PartitionStart>& starts);
  // Joins the group (options.group_id) for `topics`; partitions arrive through `listener` during
  // Poll(). The listener must outlive the consumer.
  absl::Status Subscribe(const std::vector<std::string>& topics, RebalanceListener* listener);
  bool group_mode() const { return listener_ != nullptr; }
  // Group mode, inside OnRevoked: true when the assignment is already lost (the coordinator
  // dropped this member, e.g. after session.timeout.ms without a heartbeat): the partitions may
  // belong to another member by now, and nothing may be written for them any more.
  bool AssignmentLost() const;
  // The group's committed next offset per partition (absent: none committed). Synchronous.
  absl::StatusOr<std::map<TopicPartition, int64_t>> Committed(
      const std::vector<TopicPartition>& partitions, std::chrono::milliseconds timeout);
  // The partition's low watermark (first retained offset) and high watermark (the next offset to
  // be written), asked of its leader now (ListOffsets). Unavailable when it does not answer
  // within `timeout`.
  absl::StatusOr<std::pair<int64_t, int64_t>> QueryWatermarks(const std::string& topic,
                                                              int32_t partition,
                                                              std::chrono::milliseconds timeout);
  // Per partition: the first offset whose record timestamp is >= `ms` (ListOffsets by time),
  // or -1 when no retained record is that late. Brokers without time lookups answer -1 too.
  absl::StatusOr<std::map<int32_t, int64_t>> OffsetsForTime(const std::string& topic,
                                                            const std::vector<int32_t>& partitions,
                                                            int64_t ms,
                                                            std::chrono::milliseconds timeout);
  // Commits next offsets to the group and waits for the coordinator's answer, at most `timeout`
  // (DeadlineExceeded then: the commit may still land later, or not).
  absl::Status CommitSync(const std::map<TopicPartition, int64_t>& next_offsets,
                          std::chrono::milliseconds timeout);
  // Appends up to `max_records` records, waiting at most `max_wait` for the first ones. A
  // partition whose stored offset the broker no longer has is an OutOfRange error naming it
  // (never a silent jump); other consumer errors are retried by librdkafka and logged via the
  // returned warnings count.
  absl::Status Poll(size_t max_records, std::chrono::milliseconds max_wait, ConsumedBatch* out);
  // True when every assigned partition has reported its end since its last record.
  bool AtEnd() const;
  // The same for one assigned partition (false for one not assigned). No network call.
  bool PartitionAtEnd(const TopicPartition& tp) const;
  // (In group mode, false until the first assignment: a member still joining is not at its end.)
  // AtEnd(), confirmed against the broker: for every assigned partition, the position (next
  // offset handed to the application) has reached the high watermark the broker reports now.
  // Records produced since the end-of-partition event therefore count as "not at end" even
  // before they are fetched. One ListOffsets round trip per partition leader, bounded by
  // `timeout` (false when the broker does not answer in time): call it when idle.
  bool VerifiedAtEnd(std::chrono::milliseconds timeout = std::chrono::milliseconds(2000));
  // Assigned (topic, partition) pairs.
  const std::vector<std::pair<std::string, int32_t>>& assignment() const { return assigned_; }
  // High watermark per assigned partition as last seen by the fetcher (no network call), for lag.
  std::map<std::pair<std::string, int32_t>, int64_t> HighWatermarks() const;
  // Commits next-offsets to Kafka's group coordinator, asynchronously, for lag monitoring only.
  void CommitAsync(const std::map<std::pair<std::string, int32_t>, int64_t>& next_offsets);

 private:
  struct Callbacks;
  explicit KafkaConsumer(rd_kafka_t* rk, rd_kafka_queue_t* queue,
                         std::shared_ptr<Callbacks> callbacks);
  // The rebalance callback's work (librdkafka's rebalance_cb, on the polling thread).
  void Rebalance(int err, void* partitions);
  void SetAssigned(const std::vector<PartitionStart>& starts);
  rd_kafka_t* rk_;
  rd_kafka_queue_t* queue_;
  std::shared_ptr<Callbacks> callbacks_;  // shared with a destroy that outlives this object
  RebalanceListener* listener_ = nullptr;
  bool ever_assigned_ = false;
  bool closed_ = false;
  // Set by Close(deadline): the destructor does not wait for librdkafka past it.
  std::optional<std::chrono::steady_clock::time_point> destroy_by_;
  uint64_t rebalance_epoch_ = 0;  // counts rebalance callbacks
  // Group mode: where the current assignment started (the listener's choice), to seek back to
  // when a poll drops records around a rebalance.
  std::vector<PartitionStart> assigned_starts_;
  absl::Status rebalance_error_;  // returned by the Poll() during which it happened
  std::vector<std::pair<std::string, int32_t>> assigned_;
  // Per assigned partition: the end-of-partition event came after its last record.
  std::map<std::pair<std::string, int32_t>, bool> at_end_;
  // Per assigned partition: the next offset to read as last seen (a record's offset + 1, or the
  // end offset an end-of-partition event reported); -1 while unknown.
  std::map<std::pair<std::string, int32_t>, int64_t> next_;
};

}  // namespace rtdw

#endif  // RTDW_CONNECTORS_KAFKA_CONSUMER_H_
