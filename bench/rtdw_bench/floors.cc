#include "bench/rtdw_bench/floors.h"

#include <algorithm>
#include <cmath>
#include <memory>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "bench/rtdw_bench/bench_util.h"
#include "connectors/kafka/consumer.h"
#include "connectors/kafka/producer.h"
#include "core/records.h"

namespace rtdw::bench {
namespace {

// The jobs' batch bound (rtdwd's defaults: batch_max_records, batch_max_ms).
constexpr size_t kBatchRecords = 10000;
constexpr std::chrono::milliseconds kBatchWait(200);
constexpr std::chrono::seconds kDeliveryTimeout(120);

// A consumer with the options every rtdwd job's consumer gets (connectors/kafka's defaults; rtdwd
// adds only its group id, [kafka.properties] and its log), assigned every partition of `topics`
// from the beginning.
absl::StatusOr<std::unique_ptr<KafkaConsumer>> FloorConsumer(
    const std::string& bootstrap, const std::vector<std::string>& topics) {
  KafkaConsumerOptions co;
  co.brokers = bootstrap;
  co.group_id = "rtdw-bench.floor";
  auto consumer = KafkaConsumer::Create(co);
  if (!consumer.ok()) return consumer.status();
  std::vector<PartitionStart> starts;
  for (const auto& topic : topics) {
    auto n = (*consumer)->PartitionCount(topic, std::chrono::seconds(10));
    if (!n.ok()) return n.status();
    for (int p = 0; p < *n; ++p) starts.push_back({topic, p, PartitionStart::kBeginning});
  }
  if (auto st = (*consumer)->Assign(starts); !st.ok()) return st;
  return consumer;
}

// Polls one batch; an error after `stall` without a record.
absl::Status PollSome(KafkaConsumer& consumer, ConsumedBatch* batch, Clock::time_point* last,
                      std::chrono::seconds stall) {
  batch->Clear();
  if (auto st = consumer.Poll(kBatchRecords, kBatchWait, batch); !st.ok()) return st;
  if (!batch->empty()) {
    *last = Clock::now();
  } else if (Clock::now() - *last > stall) {
    return absl::DeadlineExceededError(
        absl::StrCat("floor: no record for ", stall.count(), " s before the topic's end"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<FloorRun> ConsumeFloor(const std::string& bootstrap,
                                      const std::vector<std::string>& topics, int64_t expected,
                                      std::chrono::seconds stall) {
  FloorRun run;
  const auto start = Clock::now();
  auto consumer = FloorConsumer(bootstrap, topics);
  if (!consumer.ok()) return consumer.status();
  ConsumedBatch batch;
  auto last = Clock::now();
  uint64_t touched = 0;  // every payload's bytes are read (a job reads them all)
  while (run.input_records < expected) {
    if (auto st = PollSome(**consumer, &batch, &last, stall); !st.ok()) return st;
    for (const InputRecord& r : batch.records()) {
      for (char c : r.value) touched += static_cast<unsigned char>(c);
    }
    run.input_records += static_cast<int64_t>(batch.size());
  }
  run.seconds = SecondsSince(start);
  if (touched == 1) Log("floor: (checksum)");  // keeps the loop above from being optimized out
  return run;
}

absl::StatusOr<FloorRun> PipeFloor(const std::string& bootstrap, const std::string& topic,
                                   int64_t expected, const PipeShape& shape,
                                   std::chrono::seconds stall) {
  if (shape.topics.empty() || shape.fanout < 0 || shape.mean_value_bytes < 1) {
    return absl::InvalidArgumentError("pipe floor: no output topics, or no output to make");
  }
  FloorRun run;
  const auto start = Clock::now();
  // The producer options every split job gets (rtdwd adds [kafka.properties] and its log).
  KafkaProducerOptions po;
  po.brokers = bootstrap;
  auto producer = KafkaProducer::Create(po);
  if (!producer.ok()) return producer.status();
  std::vector<KafkaTopicRef> refs;
  for (const auto& t : shape.topics) {
    auto ref = (*producer)->Topic(t);
    if (!ref.ok()) return ref.status();
    refs.push_back(*ref);
  }
  auto consumer = FloorConsumer(bootstrap, {topic});
  if (!consumer.ok()) return consumer.status();

  ConsumedBatch batch;
  auto last = Clock::now();
  KafkaDeliveryGroup groups[2];
  int current = 0;
  double credit = 0;
  double size_credit = 0;
  std::string value, src;
  char idx[24];
  std::vector<KafkaHeader> headers(2);
  while (run.input_records < expected) {
    if (auto st = PollSome(**consumer, &batch, &last, stall); !st.ok()) return st;
    if (batch.empty()) continue;
    KafkaDeliveryGroup* group = &groups[current];
    group->ResetError();
    for (const InputRecord& r : batch.records()) {
      src.clear();
      AppendSourcePosition(r.topic, r.partition, r.offset, &src);
      credit += shape.fanout;
      for (int i = 0; credit >= 1; ++i, credit -= 1) {
        // Sizes alternate around the mean so that their mean is the job's.
        size_credit += shape.mean_value_bytes;
        const size_t n = static_cast<size_t>(size_credit);
        size_credit -= static_cast<double>(n);
        value.clear();
        const std::string_view in = r.value.empty() ? std::string_view("{}") : r.value;
        size_t from = (static_cast<size_t>(i) * 37) % in.size();
        while (value.size() < n) {
          const size_t take = std::min(n - value.size(), in.size() - from);
          value.append(in.data() + from, take);
          from = 0;
        }
        const int idx_len = snprintf(idx, sizeof idx, "%d", i);
        headers[0] = {kHeaderSrc, src};
        headers[1] = {kHeaderIdx, std::string_view(idx, static_cast<size_t>(idx_len))};
        const KafkaTopicRef ref = refs[static_cast<size_t>(run.output_records) % refs.size()];
        if (auto st = (*producer)->Produce(ref, r.key, value, headers, -1, group); !st.ok()) {
          return st;
        }
        ++run.output_records;
        run.output_value_bytes += static_cast<double>(n);
      }
    }
    run.input_records += static_cast<int64_t>(batch.size());
    // Batch N-1 acknowledged before batch N+1 is polled (the split jobs' pipeline).
    current = 1 - current;
    if (auto st = (*producer)->Await(&groups[current], kDeliveryTimeout); !st.ok()) return st;
  }
  for (auto& g : groups) {
    if (auto st = (*producer)->Await(&g, kDeliveryTimeout); !st.ok()) return st;
  }
  run.seconds = SecondsSince(start);
  return run;
}

absl::StatusOr<TopicBytes> ReadTopicBytes(const std::string& bootstrap,
                                          const std::vector<std::string>& topics) {
  TopicBytes out;
  if (topics.empty()) return out;
  int64_t expected = 0;
  for (const auto& t : topics) {
    auto c = CountTopic(bootstrap, t);
    if (!c.ok()) return c.status();
    expected += c->records;
  }
  auto consumer = FloorConsumer(bootstrap, topics);
  if (!consumer.ok()) return consumer.status();
  ConsumedBatch batch;
  auto last = Clock::now();
  while (out.records < expected) {
    if (auto st = PollSome(**consumer, &batch, &last, std::chrono::seconds(60)); !st.ok()) {
      return st;
    }
    for (const InputRecord& r : batch.records()) out.value_bytes += r.value.size();
    out.records += static_cast<int64_t>(batch.size());
  }
  return out;
}

}  // namespace rtdw::bench
