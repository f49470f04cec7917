// Reads a whole Kafka topic (every partition, beginning to end) for test assertions.
#ifndef RTDW_TESTS_HARNESS_KAFKA_READER_H_
#define RTDW_TESTS_HARNESS_KAFKA_READER_H_

#include <chrono>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace rtdw::testing {

struct TopicRecord {
  int32_t partition = 0;
  int64_t offset = 0;
  std::string key;
  std::string value;
  std::map<std::string, std::string> headers;
};

// Every record of `topic` from the beginning until each partition reports its end (or `timeout`
// passes: DeadlineExceeded). In (partition, offset) order.
absl::StatusOr<std::vector<TopicRecord>> ReadTopic(
    const std::string& bootstrap, const std::string& topic,
    std::chrono::milliseconds timeout = std::chrono::seconds(60));

// Produces `values` (with `keys[i]` when keys is not empty) to `topic`, lz4, and flushes.
absl::Status ProduceAll(const std::string& bootstrap, const std::string& topic,
                        const std::vector<std::string>& values,
                        const std::vector<std::string>& keys = {});

// Commits `next_offsets` (partition -> next offset) of `topic` to consumer group `group` from
// outside the group (no member joins), as an operator's tool would; any offset, even one the
// broker does not hold (a lost offset, for tests of its handling).
absl::Status CommitGroupOffsets(const std::string& bootstrap, const std::string& group,
                                const std::string& topic,
                                const std::map<int32_t, int64_t>& next_offsets);

// The committed next offsets of `topic`'s partitions [0, partitions) in consumer group `group`,
// read from outside the group (no member joins); a partition without one is absent.
absl::StatusOr<std::map<int32_t, int64_t>> GroupOffsets(const std::string& bootstrap,
                                                        const std::string& group,
                                                        const std::string& topic, int partitions);

}  // namespace rtdw::testing

#endif  // RTDW_TESTS_HARNESS_KAFKA_READER_H_
