// The consumer wakes librdkafka 2.0.2's fetcher when a poll leaves its queue under half the
// prefetch bound (connectors/kafka/fetch_waker.h).
//
// What breaks without it: once the queue reaches queued.max.messages.kbytes the fetcher stops
// and decides again only when its broker thread wakes — after up to one second. The data here
// makes every fetch overshoot a tiny bound (256 KB queued, fetches of up to 1 MB), so reading
// ~28 MB takes ~28 refills: without the wake each one waits for that timer (seconds in all),
// with it the refill follows the poll. The same data is read both ways in one test, so the
// comparison is with librdkafka's own timing on this machine, not with a fixed speed.
// Truth for the records: what was produced (every one exactly once, in order per partition).
#include "connectors/kafka/fetch_waker.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "absl/random/random.h"
#include "absl/strings/str_cat.h"
#include "connectors/kafka/consumer.h"
#include "tests/harness/kafka_reader.h"
#include "tests/harness/services.h"

namespace rtdw {
namespace {

TEST(FetchWakerTest, WakesOnceAQueueNearTheBoundIsUnderHalfOfIt) {
  EXPECT_TRUE(ShouldWakeFetcher(0, 300, 1 << 20));
  EXPECT_TRUE(ShouldWakeFetcher(1000, 300, 1 << 20));   // 300,000 < 524,288
  EXPECT_FALSE(ShouldWakeFetcher(1748, 300, 1 << 20));  // 524,400: not under half
  EXPECT_FALSE(ShouldWakeFetcher(100000, 300, 1 << 20));
  EXPECT_FALSE(ShouldWakeFetcher(0, 300, 0));               // no bound known: never
  EXPECT_TRUE(FetcherMayHaveStopped(2622, 300, 1 << 20));   // 786,600 >= 786,432
  EXPECT_FALSE(FetcherMayHaveStopped(2621, 300, 1 << 20));  // 786,300
  EXPECT_FALSE(FetcherMayHaveStopped(100000, 300, 0));
}

TEST(FetchWakerTest, StopIsBoundedAndIdempotentWhateverTheState) {
  testing::KafkaMock kafka;
  ASSERT_TRUE(kafka.Start().ok());
  KafkaConsumerOptions co;
  co.brokers = kafka.bootstrap();
  co.group_id = "fetch-waker-stop";
  auto consumer = KafkaConsumer::Create(co);
  ASSERT_TRUE(consumer.ok()) << consumer.status();
  ASSERT_TRUE((*consumer)->Assign({{"ODS_BASE_LOG", 0, PartitionStart::kBeginning}}).ok());
  kafka.Stop();  // a wake now waits for a broker that is gone, bounded by its timeout
  ConsumedBatch batch;
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < 3; ++i) {
    batch.Clear();
    (void)(*consumer)->Poll(100, std::chrono::milliseconds(50), &batch);
  }
  (void)(*consumer)->Close(std::chrono::steady_clock::now() + std::chrono::seconds(2));
  consumer->reset();
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(6));
}

TEST(FetchWakerTest, AConsumerThatKeepsUpSendsNoWake) {
  // Its queue never comes near the bound (16 MB): the fetcher is never stopped by it, and a wake
  // would only cost the broker a request per poll.
  testing::KafkaMock kafka;
  ASSERT_TRUE(kafka.Start().ok());
  std::vector<std::string> values;
  for (int i = 0; i < 2000; ++i) values.push_back(absl::StrCat("{\"i\":", i, "}"));
  ASSERT_TRUE(testing::ProduceAll(kafka.bootstrap(), "ODS_BASE_LOG", values).ok());
  KafkaConsumerOptions co;
  co.brokers = kafka.bootstrap();
  co.group_id = "fetch-waker-keeps-up";
  Counter counted;  // rtdwd's rtdw_kafka_fetch_wakes_total{job}
  co.fetch_wakes = &counted;
  auto consumer = KafkaConsumer::Create(co);
  ASSERT_TRUE(consumer.ok()) << consumer.status();
  std::vector<PartitionStart> starts;
  for (int p = 0; p < 4; ++p) starts.push_back({"ODS_BASE_LOG", p, PartitionStart::kBeginning});
  ASSERT_TRUE((*consumer)->Assign(starts).ok());
  ConsumedBatch batch;
  size_t got = 0;
  const auto start = std::chrono::steady_clock::now();
  // Small polls, then a while caught up: every poll leaves the queue (nearly) empty.
  while (std::chrono::steady_clock::now() - start < std::chrono::seconds(3)) {
    batch.Clear();
    ASSERT_TRUE((*consumer)->Poll(50, std::chrono::milliseconds(20), &batch).ok());
    got += batch.size();
  }
  EXPECT_EQ(got, values.size());
  EXPECT_EQ((*consumer)->fetch_wakes(), 0u);
  (void)(*consumer)->Close(std::chrono::steady_clock::now() + std::chrono::seconds(5));
  EXPECT_EQ(counted.value(), 0u);
}

struct ReadResult {
  std::map<int32_t, std::vector<std::string>> values;  // per partition, in offset order
  double seconds = 0;
  uint64_t wakes = 0;    // KafkaConsumer::fetch_wakes()
  uint64_t counted = 0;  // KafkaConsumerOptions::fetch_wakes, after the consumer is gone
};

ReadResult ReadAll(const std::string& bootstrap, const std::string& topic, int partitions,
                   size_t expected, bool wake) {
  KafkaConsumerOptions co;
  co.brokers = bootstrap;
  co.group_id = absl::StrCat("fetch-waker-", wake);
  co.wake_fetcher = wake;
  co.properties = {{"queued.max.messages.kbytes", "256"}, {"fetch.max.bytes", "1000000"}};
  Counter counted;  // rtdwd's rtdw_kafka_fetch_wakes_total{job}: outlives the consumer
  co.fetch_wakes = &counted;
  auto consumer = KafkaConsumer::Create(co);
  EXPECT_TRUE(consumer.ok()) << consumer.status();
  ReadResult out;
  if (!consumer.ok()) return out;
  std::vector<PartitionStart> starts;
  for (int p = 0; p < partitions; ++p) starts.push_back({topic, p, PartitionStart::kBeginning});
  EXPECT_TRUE((*consumer)->Assign(starts).ok());
  ConsumedBatch batch;
  size_t got = 0;
  const auto start = std::chrono::steady_clock::now();
  while (got < expected && std::chrono::steady_clock::now() - start < std::chrono::seconds(60)) {
    batch.Clear();
    EXPECT_TRUE((*consumer)->Poll(500, std::chrono::milliseconds(100), &batch).ok());
    for (const InputRecord& r : batch.records()) {
      out.values[r.partition].emplace_back(r.value);
      ++got;
    }
  }
  out.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  (void)(*consumer)->Close(std::chrono::steady_clock::now() + std::chrono::seconds(5));
  out.wakes = (*consumer)->fetch_wakes();  // final: the waker stopped in Close()
  consumer->reset();
  out.counted = counted.value();
  return out;
}

TEST(FetchWakerTest, ADrainedQueueIsRefilledWithoutWaitingForLibrdkafkasTimer) {
  testing::KafkaMock kafka;
  testing::KafkaMock::Options ko;
  ko.brokers = 2;  // partitions on two leaders: a wake must reach both broker threads
  ko.partitions = 8;
  ASSERT_TRUE(kafka.Start(ko).ok());
  const std::string topic = "ODS_BASE_LOG";
  // ~28 MB of values that lz4 cannot shrink much (random hex), keyed to spread them: ~3.5 MB a
  // partition, under what the mock keeps of a partition (~5 MB).
  absl::BitGen gen;
  std::vector<std::string> values, keys;
  for (int i = 0; i < 28000; ++i) {
    std::string v = absl::StrCat(i, ":");
    while (v.size() < 1000) absl::StrAppend(&v, absl::Hex(absl::Uniform<uint64_t>(gen)));
    values.push_back(std::move(v));
    keys.push_back(absl::StrCat("k", i));
  }
  ASSERT_TRUE(testing::ProduceAll(kafka.bootstrap(), topic, values, keys).ok());
  // Truth: one producer wrote value i before value i+1, so each partition holds its values in
  // increasing i, and every i once.
  auto check = [&](const ReadResult& r, const char* how) {
    std::vector<int> seen(values.size(), 0);
    for (const auto& [partition, vs] : r.values) {
      int last = -1;
      for (const std::string& v : vs) {
        const int i = std::stoi(v.substr(0, v.find(':')));
        ASSERT_TRUE(i >= 0 && i < static_cast<int>(values.size())) << how;
        EXPECT_EQ(v, values[i]) << how;
        EXPECT_GT(i, last) << how << ": partition " << partition << " out of order";
        last = i;
        ++seen[i];
      }
    }
    for (size_t i = 0; i < seen.size(); ++i) {
      ASSERT_EQ(seen[i], 1) << how << ": value " << i << " read " << seen[i] << " times";
    }
    EXPECT_GE(r.values.size(), 2u) << how;
  };

  ReadResult woken = ReadAll(kafka.bootstrap(), topic, ko.partitions, values.size(), true);
  ReadResult slept = ReadAll(kafka.bootstrap(), topic, ko.partitions, values.size(), false);
  check(woken, "with the wake");
  check(slept, "librdkafka's own timing");
  std::printf("woken: %.2f s, %llu wakes; librdkafka's own timing: %.2f s\n", woken.seconds,
              static_cast<unsigned long long>(woken.wakes), slept.seconds);
  EXPECT_GT(woken.wakes, 0u);
  EXPECT_EQ(slept.wakes, 0u);
  // The counter rtdwd exports counts each wake the consumer sent, none more.
  EXPECT_GT(woken.counted, 0u);
  EXPECT_EQ(woken.counted, woken.wakes);
  EXPECT_EQ(slept.counted, 0u);
  // Without the wake every refill waits for the broker thread's timer (up to 1 s each); the
  // data must show that, or it could not tell the two apart.
  EXPECT_GT(slept.seconds, 3.0) << "the data did not make librdkafka's fetcher sleep";
  EXPECT_LT(woken.seconds * 2, slept.seconds)
      << "woken " << woken.seconds << " s, librdkafka's own timing " << slept.seconds << " s";
}

}  // namespace
}  // namespace rtdw
