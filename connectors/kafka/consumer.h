// The Kafka RecordSource (core/engine/record_source.h, which states what every source promises):
// librdkafka's consumer for rtdw's batch loop. Records are polled in batches straight from
// librdkafka's buffers (no copy: a ConsumedBatch holds the messages), and the consumer knows when
// each assigned partition is at its end.
//
// Two ways to own partitions:
//  - Assign(): the caller owns every partition it names, at offsets it chooses (the state store's
//    `offsets` column family is the source of truth); Kafka's committed offsets are written only
//    for lag monitoring (CommitAsync).
//  - Subscribe() (kafka.group; docs/DESIGN.md "Scaling out"): the coordinator splits partitions
//    among the members. A RebalanceListener is called on the polling thread, inside Poll(), when
//    partitions are given (it says where each starts) or taken away (it finishes what it owes
//    for them first); the group's committed offsets are the hand-over point between owners.
//
// Thread safety: as every RecordSource, one thread at a time (librdkafka's own threads only call
// the log callback).
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
#include "core/engine/record_source.h"
#include "core/metrics.h"
#include "core/records.h"

typedef struct rd_kafka_s rd_kafka_t;
typedef struct rd_kafka_queue_s rd_kafka_queue_t;
typedef struct rd_kafka_message_s rd_kafka_message_t;

namespace rtdw {

class FetchWaker;

struct KafkaConsumerOptions {
  std::string brokers;
  // Assign(): "rtdw.<job>", for the lag-monitoring commits only. Subscribe(): the group.
  std::string group_id;
  std::map<std::string, std::string> properties;  // passed through first; rtdw's own win
  // Subscribe() only: "range" keeps partition p of every subscribed topic on one member (what a
  // co-partitioned join needs); "" leaves librdkafka's default.
  std::string assignment_strategy;
  // Prefetch, bounded by bytes, never by a message count (docs/BENCHMARKS.md, "Memory"): the
  // consumer queue all partitions forward into holds up to `prefetch_kbytes` of payload
  // (librdkafka's queued.max.messages.kbytes), one fetch response brings at most half of that
  // (fetch.max.bytes, at least 4 MB; it may land on a queue just under the bound), and
  // queued.min.messages is librdkafka's maximum, so the byte bound binds first whatever the
  // record size. librdkafka holds ~2.9 x the payload for ~330-byte records (per-message ops,
  // decompressed message sets, the response being parsed). When the queue is full librdkafka
  // 2.0.2's fetcher sleeps up to 1 s (fetch.queue.backoff.ms came in 2.4); the consumer wakes it
  // when a poll leaves a queue that was near the bound under half of it
  // (connectors/kafka/fetch_waker.h), so the bound only has to cover what a job takes between a
  // wake and the refill, not a second of its input: 16 MB is ~5 of dau's batches (10,000 records of
  // ~330 bytes) and keeps dau at 10 M mids a day under 512 MB. Every rtdwd job and rtdw-bench's
  // floors use this default. 0 leaves librdkafka's own (100000 messages / 65536 KB / 50 MB). A
  // value in `properties` wins.
  static constexpr int kDefaultPrefetchKbytes = 16384;
  int prefetch_kbytes = kDefaultPrefetchKbytes;
  // Wake librdkafka's fetcher when a poll leaves the queue under half the bound (above).
  // false: librdkafka's own timing (tests and A/B measurements only).
  bool wake_fetcher = true;
  // When set, +1 for every wake request sent (rtdwd: rtdw_kafka_fetch_wakes_total{job}, given by
  // the job's runner to every consumer it builds, so the count goes on across them). Added to on
  // the waker's thread until Close() or the destructor; must outlive the consumer.
  Counter* fetch_wakes = nullptr;
  // librdkafka's own log lines (syslog level 0-7, facility, message), from its threads. Unset:
  // librdkafka prints them to stderr.
  std::function<void(int level, std::string_view facility, std::string_view message)> log;
};

class KafkaConsumer : public RecordSource {
 public:
  static absl::StatusOr<std::unique_ptr<KafkaConsumer>> Create(const KafkaConsumerOptions& options);
  // Close()s if not closed yet. After Close(deadline), destroys the client without waiting past
  // that deadline (+1 s): a client librdkafka cannot finish destroying by then is left behind
  // (connectors/kafka/destroy.h).
  ~KafkaConsumer() override;
  KafkaConsumer(const KafkaConsumer&) = delete;
  KafkaConsumer& operator=(const KafkaConsumer&) = delete;

  // ---- RecordSource (what each promises is stated there; Kafka's particulars here)

  // One metadata request.
  absl::StatusOr<int> PartitionCount(const std::string& topic,
                                     std::chrono::milliseconds timeout) override;
  absl::Status Assign(const std::vector<PartitionStart>& starts) override;
  // Joins the group options.group_id.
  absl::Status Subscribe(const std::vector<std::string>& topics,
                         RebalanceListener* listener) override;
  const std::vector<TopicPartition>& assignment() const override { return assigned_; }
  bool AssignmentLost() const override;
  // Other consumer errors than a lost offset are retried by librdkafka (its log says which).
  absl::Status Poll(size_t max_records, std::chrono::milliseconds max_wait,
                    ConsumedBatch* out) override;
  absl::Status Seek(const std::map<TopicPartition, int64_t>& next_offsets,
                    std::chrono::milliseconds timeout) override;
  bool PartitionAtEnd(const TopicPartition& tp) const override;
  // One ListOffsets round trip per partition leader, bounded by `timeout`.
  bool VerifiedAtEnd(std::chrono::milliseconds timeout) override;
  using RecordSource::VerifiedAtEnd;
  // As last seen by the fetcher.
  std::map<TopicPartition, int64_t> HighWatermarks() const override;
  absl::StatusOr<std::map<TopicPartition, int64_t>> Committed(
      const std::vector<TopicPartition>& partitions, std::chrono::milliseconds timeout) override;
  absl::Status CommitSync(const std::map<TopicPartition, int64_t>& next_offsets,
                          std::chrono::milliseconds timeout) override;
  void CommitAsync(const std::map<TopicPartition, int64_t>& next_offsets) override;
  // OK when the consumer closed (the group was left, pending commits answered); DeadlineExceeded
  // when the coordinator did not answer by `deadline` — then the group drops this member after
  // session.timeout.ms (an uncommitted hand-over is read again by the next owner).
  absl::Status Close(std::chrono::steady_clock::time_point deadline) override;
  using RecordSource::Close;

  // ---- Kafka only (the operator CLI's and the benchmarks')

  bool group_mode() const { return listener_ != nullptr; }
  // True when every assigned partition has reported its end since its last record (in group
  // mode, false until the first assignment: a member still joining is not at its end).
  bool AtEnd() const;
  // Wake requests this consumer sent to librdkafka's fetcher so far
  // (connectors/kafka/fetch_waker.h; KafkaConsumerOptions::fetch_wakes counts them too).
  uint64_t fetch_wakes() const;
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

 private:
  struct Callbacks;
  KafkaConsumer(rd_kafka_t* rk, rd_kafka_queue_t* queue, std::shared_ptr<Callbacks> callbacks,
                int64_t prefetch_bound_bytes, Counter* fetch_wakes);
  // After a poll: wakes the fetcher when the queue is under half the prefetch bound
  // (`records` from index `from` on are this poll's).
  void MaybeWakeFetcher(const std::vector<InputRecord>& records, size_t from);
  // Before a poll: notes a queue at (about) the bound, which may have stopped the fetcher.
  void NoteQueueBeforePoll();
  // The rebalance callback's work (librdkafka's rebalance_cb, on the polling thread).
  void Rebalance(int err, void* partitions);
  void SetAssigned(const std::vector<PartitionStart>& starts);
  // The OutOfRange error of a fetch that met a lost offset (`m`), with its LostOffset payload.
  absl::Status LostOffsetStatus(const rd_kafka_message_t* m, const std::string& where);
  rd_kafka_t* rk_;
  rd_kafka_queue_t* queue_;
  std::shared_ptr<Callbacks> callbacks_;  // shared with a destroy that outlives this object
  // queued.max.messages.kbytes in bytes (0: unknown, no waker), and the waker of librdkafka
  // 2.0.2's fetcher (connectors/kafka/fetch_waker.h): stopped before the client is closed.
  const int64_t prefetch_bound_bytes_;
  std::unique_ptr<FetchWaker> fetch_waker_;
  double mean_record_bytes_ = 0;           // of the last poll that took records
  bool fetcher_may_have_stopped_ = false;  // the queue was near the bound since the last wake
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
  std::vector<TopicPartition> assigned_;
  // Per assigned partition: the end-of-partition event came after its last record.
  std::map<TopicPartition, bool> at_end_;
  // Per assigned partition: the next offset to read as last seen (a record's offset + 1, or the
  // end offset an end-of-partition event reported); -1 while unknown.
  std::map<TopicPartition, int64_t> next_;
};

}  // namespace rtdw

#endif  // RTDW_CONNECTORS_KAFKA_CONSUMER_H_
