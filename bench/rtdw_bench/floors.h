// The floors rtdw-bench compares the jobs with (docs/BENCHMARKS.md, "Floors"): what librdkafka
// alone does on the same topic, on the same broker, in the same run, with rtdw's own client
// settings — KafkaConsumer / KafkaProducer from connectors/kafka with the options every rtdwd job
// gets (so a change of those settings moves the floor and the job together), and the jobs' batch
// loop (batches of up to 10,000 records or 200 ms), but no JSON and no state.
//
//  - ConsumeFloor: consume a topic to its end, touching every payload (dau's, order-wide's input
//    side).
//  - PipeFloor: consume a topic and, per input record, produce `fanout` messages (fractional: the
//    job's mean) of `mean_value_bytes` to `topics` output topics, keyed by the input key, with the
//    `rtdw-src` and `rtdw-idx` headers the split jobs write — idempotent, acks=all, lz4 — and
//    pipelined two batches deep as the split jobs are (core/engine/produce_pipeline.h): batch N+1 is produced while N's delivery
//    reports come back. The payload is the input record's own bytes (repeated or cut to the size),
//    so it compresses like JSON; it is never parsed. The log-split and db-split floors.
//
// Not thread-safe; each call owns its clients. Errors: Unavailable / DeadlineExceeded from the
// clients, or when no record arrives for `stall` seconds.
#ifndef RTDW_BENCH_RTDW_BENCH_FLOORS_H_
#define RTDW_BENCH_RTDW_BENCH_FLOORS_H_

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace rtdw::bench {

struct FloorRun {
  int64_t input_records = 0;
  int64_t output_records = 0;  // PipeFloor: messages produced (and acknowledged)
  double output_value_bytes = 0;
  double seconds = 0;  // from creating the clients to the last record consumed (and acknowledged)
};

// Consumes `topics` (every partition, from the beginning) until `expected` records were read.
absl::StatusOr<FloorRun> ConsumeFloor(const std::string& bootstrap,
                                      const std::vector<std::string>& topics, int64_t expected,
                                      std::chrono::seconds stall = std::chrono::seconds(60));

struct PipeShape {
  double fanout = 1;                // output messages per input record (the job's mean)
  double mean_value_bytes = 0;      // of an output message's value
  std::vector<std::string> topics;  // output topics (round-robin), e.g. "BENCH_FLOOR_0".."_4"
};
absl::StatusOr<FloorRun> PipeFloor(const std::string& bootstrap, const std::string& topic,
                                   int64_t expected, const PipeShape& shape,
                                   std::chrono::seconds stall = std::chrono::seconds(60));

// Records and value bytes of whole topics (consumed to their end, a second pass after a job):
// the fan-out and mean output size a pipe floor must reproduce.
struct TopicBytes {
  int64_t records = 0;
  double value_bytes = 0;
};
absl::StatusOr<TopicBytes> ReadTopicBytes(const std::string& bootstrap,
                                          const std::vector<std::string>& topics);

}  // namespace rtdw::bench

#endif  // RTDW_BENCH_RTDW_BENCH_FLOORS_H_
