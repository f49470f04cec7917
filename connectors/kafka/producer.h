// A Kafka producer (librdkafka) with rtdw's guarantees built in: idempotent (acks=all, ordered
// per partition, no duplicates from retries), lz4 compression by default, and a Flush() that
// reports whether every record produced since the previous Flush() was acknowledged. A batch's
// offsets may be committed only after Flush() returns OK — the seed's "flush every partition
// before the offset commit", in one place.
#ifndef RTDW_CONNECTORS_KAFKA_PRODUCER_H_
#define RTDW_CONNECTORS_KAFKA_PRODUCER_H_

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

typedef struct rd_kafka_s rd_kafka_t;

namespace rtdw {

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
};

struct KafkaHeader {
  std::string_view name;
  std::string_view value;
};

class KafkaProducer {
 public:
  static absl::StatusOr<std::unique_ptr<KafkaProducer>> Create(const KafkaProducerOptions& options);
  ~KafkaProducer();
  KafkaProducer(const KafkaProducer&) = delete;
  KafkaProducer& operator=(const KafkaProducer&) = delete;

  // Queues one record (copied). partition < 0 = by key (murmur2), round-robin without a key.
  // Blocks (serving delivery reports) while the local queue is full; never drops.
  absl::Status Produce(std::string_view topic, std::string_view key, std::string_view value,
                       const std::vector<KafkaHeader>& headers = {}, int32_t partition = -1);
  // Waits until every queued record is acknowledged or failed. OK only when all records produced
  // since the previous Flush were acknowledged; otherwise the first delivery error (the caller
  // must not commit its source offsets, and re-produces the batch).
  absl::Status Flush(std::chrono::milliseconds timeout);
  // Number of partitions of `topic` (metadata request); NotFound when it does not exist.
  absl::StatusOr<int> PartitionCount(const std::string& topic, std::chrono::milliseconds timeout);
  // Records acknowledged since creation.
  uint64_t delivered() const { return delivered_.load(); }

  // Internal: delivery report callback target.
  void OnDelivery(int err, const char* errstr);

 private:
  explicit KafkaProducer(rd_kafka_t* rk) : rk_(rk) {}
  rd_kafka_t* rk_;
  std::atomic<uint64_t> delivered_{0};
  std::mutex mu_;
  std::string first_error_;  // guarded by mu_; reset by Flush
};

}  // namespace rtdw

#endif  // RTDW_CONNECTORS_KAFKA_PRODUCER_H_
