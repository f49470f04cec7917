// A Kafka producer (librdkafka) with rtdw's guarantees built in: idempotent (acks=all, ordered
// per partition, no duplicates from retries), lz4 compression by default, and two ways to know
// that records are durably acknowledged before a batch's source offsets are committed (the
// seed's "flush every partition before the offset commit"); the engine's RecordProducer:
//  - Flush(): every record produced since the previous Flush() was acknowledged;
//  - a KafkaDeliveryGroup per batch: Await(group) returns once every record produced with that
//    group has its delivery report, so batch N can be committed while batch N+1's records are
//    still in flight (the split jobs' pipeline).
#ifndef RTDW_CONNECTORS_KAFKA_PRODUCER_H_
#define RTDW_CONNECTORS_KAFKA_PRODUCER_H_

#include <atomic>
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

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "core/engine/record_producer.h"

typedef struct rd_kafka_s rd_kafka_t;
typedef struct rd_kafka_topic_s rd_kafka_topic_t;

namespace rtdw {

// The engine's delivery group (core/engine/record_producer.h) under its Kafka name.
using KafkaDeliveryGroup = DeliveryGroup;

struct KafkaProducerOptions {
  std::string brokers;
  // librdkafka properties passed through (e.g. from [kafka.properties]); applied before rtdw's
  // own, which win: enable.idempotence=true, acks=all.
  std::map<std::string, std::string> properties;
  std::string compression = "lz4";
  // Java-client-compatible key hashing, so keys land where other clients would put them.
  std::string partitioner = "murmur2_random";
  int linger_ms = 5;
  int batch_size = 1000000;
  // librdkafka's own log lines (syslog level 0-7, facility, message), from its threads. Unset:
  // librdkafka's default (stderr).
  std::function<void(int level, std::string_view facility, std::string_view message)> log;
};

using KafkaHeader = RecordHeader;

// A topic of one producer, resolved once (its handle is librdkafka's rd_kafka_topic_t): producing
// to it skips the lookup by name. Valid as long as its producer.
using KafkaTopicRef = ProducerTopic;

// The engine's RecordProducer on librdkafka (Await/Flush: core/engine/record_producer.h, with
// "kafka" in their messages).
//
// Thread-safe: Produce, Topic, Flush and Await may be called from several threads (librdkafka's
// handle is thread-safe; the topic cache and the first delivery error each have their own
// absl::Mutex, and delivery reports are served by whichever thread polls: rd_kafka_poll runs the
// report callback on the calling thread). Close() may overlap a Ping or a wait (it is a Flush
// plus the deadline only the destructor reads); nothing may be produced after it. The destructor
// must not run concurrently with other calls.
class KafkaProducer : public RecordProducer {
 public:
  static absl::StatusOr<std::unique_ptr<KafkaProducer>> Create(const KafkaProducerOptions& options);
  // Without Close(deadline): waits up to 5 s for queued records, then destroys the client. After
  // it: destroys the client without waiting past the deadline (+1 s); a client librdkafka cannot
  // finish destroying by then is left behind (connectors/kafka/destroy.h). Records still queued
  // are dropped either way (their delivery reports never come: the caller did not commit them).
  ~KafkaProducer() override;
  KafkaProducer(const KafkaProducer&) = delete;
  KafkaProducer& operator=(const KafkaProducer&) = delete;

  // Queues one record (copied). partition < 0 = by key (murmur2), round-robin without a key.
  // Blocks (serving delivery reports) while the local queue is full; never drops. With a
  // `group`, the record's delivery report is counted there (and its error, if any, goes to the
  // group and to the next Flush()). Serves pending delivery reports now and then.
  absl::Status Produce(std::string_view topic, std::string_view key, std::string_view value,
                       const std::vector<KafkaHeader>& headers = {}, int32_t partition = -1,
                       KafkaDeliveryGroup* group = nullptr);
  absl::Status Produce(KafkaTopicRef topic, std::string_view key, std::string_view value,
                       const std::vector<KafkaHeader>& headers, int32_t partition,
                       KafkaDeliveryGroup* group) override;
  // The handle of `topic` (created on first use, kept until the producer is destroyed).
  absl::StatusOr<KafkaTopicRef> Topic(std::string_view topic) override;
  // Await(group, timeout, interrupt) and Flush(timeout, interrupt) as RecordProducer says; they
  // serve delivery reports (rd_kafka_poll / rd_kafka_flush) while they wait.
  // The end of a stop: Flush() until `deadline` (OK when everything queued was acknowledged),
  // and the destructor will not wait past it. Nothing may be produced after it.
  absl::Status Close(std::chrono::steady_clock::time_point deadline,
                     const std::atomic<bool>* interrupt = nullptr);
  // Number of partitions of `topic` (metadata request); NotFound when it does not exist.
  absl::StatusOr<int> PartitionCount(const std::string& topic, std::chrono::milliseconds timeout);
  // A brokers-only metadata request: OK when some broker of the cluster answers it within
  // `timeout` (a broker that accepts TCP connections but serves no requests does not count);
  // Unavailable with librdkafka's reason otherwise.
  absl::Status Ping(std::chrono::milliseconds timeout);
  // Records acknowledged since creation.
  uint64_t delivered() const { return delivered_.load(); }

  // Internal: delivery report callback target.
  void OnDelivery(int err, const char* errstr, void* msg_opaque);

 private:
  struct Callbacks;
  absl::Status AwaitImpl(DeliveryGroup* group, std::chrono::milliseconds timeout,
                         const std::atomic<bool>* interrupt) override;
  absl::Status FlushImpl(std::chrono::milliseconds timeout,
                         const std::atomic<bool>* interrupt) override;
  explicit KafkaProducer(rd_kafka_t* rk) : rk_(rk) {}
  rd_kafka_t* rk_;
  // librdkafka's opaque (log lines, delivery reports): shared with a destroy that outlives this
  // object.
  std::shared_ptr<Callbacks> callbacks_;
  // Set by Close(deadline): the destructor does not wait for librdkafka past it.
  std::optional<std::chrono::steady_clock::time_point> destroy_by_;
  absl::Mutex topics_mu_;
  absl::flat_hash_map<std::string, rd_kafka_topic_t*> topics_ ABSL_GUARDED_BY(topics_mu_);
  std::atomic<uint32_t> since_poll_{0};  // records produced since reports were last served
  std::atomic<uint64_t> delivered_{0};
  absl::Mutex mu_;
  std::string first_error_ ABSL_GUARDED_BY(mu_);  // reset by Flush
};

}  // namespace rtdw

#endif  // RTDW_CONNECTORS_KAFKA_PRODUCER_H_
