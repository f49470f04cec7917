// rtdw-kafka-mock is a real Kafka-protocol broker: librdkafka and kcat produce and consume
// through it, and it holds the topics it was asked to create.
#include <librdkafka/rdkafka.h>

#include <atomic>
#include <cstring>
#include <iostream>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"
#include "tests/harness/kafka_reader.h"
#include "tests/harness/services.h"

namespace rtdw::testing {
namespace {

rd_kafka_t* NewClient(rd_kafka_type_t type, const std::string& bootstrap,
                      const std::vector<std::pair<std::string, std::string>>& props) {
  char errstr[512];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  EXPECT_EQ(rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap.c_str(), errstr, sizeof errstr),
            RD_KAFKA_CONF_OK);
  for (const auto& [k, v] : props) {
    EXPECT_EQ(rd_kafka_conf_set(conf, k.c_str(), v.c_str(), errstr, sizeof errstr),
              RD_KAFKA_CONF_OK)
        << k << ": " << errstr;
  }
  rd_kafka_t* rk = rd_kafka_new(type, conf, errstr, sizeof errstr);
  EXPECT_NE(rk, nullptr) << errstr;
  return rk;
}

TEST(KafkaMockTest, ProducesAndConsumesThroughLibrdkafka) {
  KafkaMock kafka;
  ASSERT_TRUE(kafka.Start({.brokers = 1, .partitions = 3, .topics = {"rtdw_test_topic:2"}}).ok());
  ASSERT_FALSE(kafka.bootstrap().empty());

  // Produce 1000 keyed, lz4-compressed records with the idempotent producer.
  rd_kafka_t* producer =
      NewClient(RD_KAFKA_PRODUCER, kafka.bootstrap(),
                {{"enable.idempotence", "true"}, {"compression.codec", "lz4"}, {"linger.ms", "5"}});
  ASSERT_NE(producer, nullptr);
  constexpr int kRecords = 1000;
  for (int i = 0; i < kRecords; ++i) {
    std::string key = absl::StrCat("mid_", i % 17);
    std::string value = absl::StrCat("{\"n\":", i, "}");
    rd_kafka_resp_err_t err = rd_kafka_producev(
        producer, RD_KAFKA_V_TOPIC("rtdw_test_topic"), RD_KAFKA_V_KEY(key.data(), key.size()),
        RD_KAFKA_V_VALUE(value.data(), value.size()), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
        RD_KAFKA_V_END);
    ASSERT_EQ(err, RD_KAFKA_RESP_ERR_NO_ERROR) << rd_kafka_err2str(err);
  }
  ASSERT_EQ(rd_kafka_flush(producer, 30000), RD_KAFKA_RESP_ERR_NO_ERROR);
  rd_kafka_destroy(producer);

  // Consume both partitions from the beginning with assign().
  rd_kafka_t* consumer = NewClient(RD_KAFKA_CONSUMER, kafka.bootstrap(),
                                   {{"group.id", "rtdw-test"}, {"enable.auto.commit", "false"}});
  ASSERT_NE(consumer, nullptr);
  rd_kafka_poll_set_consumer(consumer);
  rd_kafka_topic_partition_list_t* parts = rd_kafka_topic_partition_list_new(2);
  for (int p = 0; p < 2; ++p) {
    rd_kafka_topic_partition_list_add(parts, "rtdw_test_topic", p)->offset =
        RD_KAFKA_OFFSET_BEGINNING;
  }
  ASSERT_EQ(rd_kafka_assign(consumer, parts), RD_KAFKA_RESP_ERR_NO_ERROR);
  rd_kafka_topic_partition_list_destroy(parts);

  std::set<std::string> seen;
  std::set<int> partitions_seen;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (seen.size() < kRecords && std::chrono::steady_clock::now() < deadline) {
    rd_kafka_message_t* m = rd_kafka_consumer_poll(consumer, 100);
    if (m == nullptr) continue;
    if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
      seen.insert(std::string(static_cast<const char*>(m->payload), m->len));
      partitions_seen.insert(m->partition);
    }
    rd_kafka_message_destroy(m);
  }
  rd_kafka_consumer_close(consumer);
  rd_kafka_destroy(consumer);
  EXPECT_EQ(seen.size(), static_cast<size_t>(kRecords));
  EXPECT_TRUE(seen.count("{\"n\":0}") && seen.count("{\"n\":999}"));
  EXPECT_EQ(partitions_seen.size(), 2u) << "keys must spread over both partitions";
}

TEST(KafkaMockTest, KcatListsThePreCreatedTopics) {
  KafkaMock kafka;
  ASSERT_TRUE(kafka.Start({.brokers = 2, .partitions = 6, .topics = {"EXTRA_TOPIC:3"}}).ok());
  CommandResult r = RunCommand({"kcat", "-b", kafka.bootstrap(), "-L", "-J"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (const char* topic :
       {"ODS_BASE_LOG", "ODS_BASE_DB", "DWD_START_LOG_TOPIC", "DWD_PAGE_LOG_TOPIC",
        "DWD_PAGE_DISPLAY_TOPIC", "DWD_PAGE_ACTION_TOPIC", "DWD_ERROR_LOG_TOPIC", "DWD_DEAD_LETTER",
        "DWD_ORDER_INFO_I", "DWD_ORDER_INFO_U", "DWD_ORDER_INFO_D", "DWD_ORDER_DETAIL_I",
        "DWD_ORDER_DETAIL_U", "DWD_ORDER_DETAIL_D", "EXTRA_TOPIC"}) {
    EXPECT_NE(r.out.find(absl::StrCat("\"topic\":\"", topic, "\"")), std::string::npos)
        << topic << " missing from: " << r.out.substr(0, 400);
  }
  // Partition counts: 6 for defaults, 3 for the extra topic (kcat -L plain text says so).
  CommandResult plain = RunCommand({"kcat", "-b", kafka.bootstrap(), "-L", "-t", "EXTRA_TOPIC"});
  EXPECT_NE(plain.out.find("with 3 partitions"), std::string::npos) << plain.out;
  plain = RunCommand({"kcat", "-b", kafka.bootstrap(), "-L", "-t", "ODS_BASE_LOG"});
  EXPECT_NE(plain.out.find("with 6 partitions"), std::string::npos) << plain.out;
  EXPECT_NE(plain.out.find("2 brokers"), std::string::npos) << plain.out;
}

TEST(KafkaMockTest, KcatRoundTripAndBadArguments) {
  KafkaMock kafka;
  ASSERT_TRUE(kafka.Start().ok());
  TempDir dir;
  {
    std::FILE* f = std::fopen(dir.Sub("in.txt").c_str(), "w");
    ASSERT_NE(f, nullptr);
    for (int i = 0; i < 50; ++i) std::fprintf(f, "line-%d\n", i);
    std::fclose(f);
  }
  CommandResult produce = RunCommand({"kcat", "-P", "-b", kafka.bootstrap(), "-t", "ODS_BASE_LOG",
                                      "-p", "0", "-l", dir.Sub("in.txt")});
  ASSERT_EQ(produce.exit_code, 0) << produce.err;
  CommandResult consume = RunCommand({"kcat", "-C", "-b", kafka.bootstrap(), "-t", "ODS_BASE_LOG",
                                      "-p", "0", "-o", "beginning", "-e", "-q"});
  ASSERT_EQ(consume.exit_code, 0) << consume.err;
  std::vector<std::string> lines = absl::StrSplit(consume.out, '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 50u);
  EXPECT_EQ(lines.front(), "line-0");
  EXPECT_EQ(lines.back(), "line-49");

  CommandResult bad = RunCommand({BinDir() + "/rtdw-kafka-mock", "--topic", "X:0"});
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_NE(bad.err.find("--topic X:0"), std::string::npos) << bad.err;
}

// Outcome of InjectedProduceErrorWithTwoRequests.
struct TwoRequests {
  int acknowledged = 0;     // delivery reports without an error (of "A" and "B")
  bool a_in_topic = false;  // "A" (whose Produce request failed) is in the topic
  bool b_in_topic = false;
};

// An idempotent producer (max.in.flight.requests.per.connection = `max_in_flight`) sends "A",
// whose Produce request the mock fails (NOT_LEADER_OR_FOLLOWER, injected), and "B" 100 ms later
// to the same partition, while A's answer is held back (broker rtt 600 ms): with more than one
// request in flight, B's request is on the wire before A's error comes back.
TwoRequests InjectedProduceErrorWithTwoRequests(int max_in_flight) {
  TwoRequests out;
  KafkaMock kafka;
  EXPECT_TRUE(kafka.Start({.brokers = 1, .partitions = 1, .topics = {"GAP_TOPIC:1"}}).ok());
  static std::atomic<int> acknowledged;
  acknowledged = 0;
  char errstr[512];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  for (const auto& [k, v] : std::vector<std::pair<std::string, std::string>>{
           {"bootstrap.servers", kafka.bootstrap()},
           {"enable.idempotence", "true"},
           {"linger.ms", "0"},
           {"max.in.flight.requests.per.connection", std::to_string(max_in_flight)}}) {
    EXPECT_EQ(rd_kafka_conf_set(conf, k.c_str(), v.c_str(), errstr, sizeof errstr),
              RD_KAFKA_CONF_OK)
        << k << ": " << errstr;
  }
  rd_kafka_conf_set_dr_msg_cb(conf, [](rd_kafka_t*, const rd_kafka_message_t* m, void*) {
    if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR && m->_private != nullptr) ++acknowledged;
  });
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
  EXPECT_NE(rk, nullptr) << errstr;
  if (rk == nullptr) return out;
  auto produce = [&](const char* value, void* opaque) {
    EXPECT_EQ(rd_kafka_producev(rk, RD_KAFKA_V_TOPIC("GAP_TOPIC"), RD_KAFKA_V_PARTITION(0),
                                RD_KAFKA_V_VALUE(const_cast<char*>(value), strlen(value)),
                                RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_OPAQUE(opaque),
                                RD_KAFKA_V_END),
              RD_KAFKA_RESP_ERR_NO_ERROR);
  };
  // The producer id and the partition's leader are known before the fault.
  produce("warm-up", nullptr);
  EXPECT_EQ(rd_kafka_flush(rk, 30000), RD_KAFKA_RESP_ERR_NO_ERROR);
  auto post = [&](const std::string& path) {
    CommandResult r = RunCommand({"curl", "-sf", "-d", "", kafka.control_url() + path});
    EXPECT_EQ(r.exit_code, 0) << path << ": " << r.err;
  };
  post("/brokers/1/rtt?ms=600");
  post("/request-errors?api=0&error=6&count=1");
  static int tag;
  produce("A", &tag);
  rd_kafka_poll(rk, 100);  // A's request is sent; its answer comes 600 ms later
  produce("B", &tag);
  EXPECT_EQ(rd_kafka_flush(rk, 30000), RD_KAFKA_RESP_ERR_NO_ERROR);
  rd_kafka_destroy(rk);
  post("/brokers/1/rtt?ms=0");
  out.acknowledged = acknowledged.load();
  auto records = ReadTopic(kafka.bootstrap(), "GAP_TOPIC");
  EXPECT_TRUE(records.ok()) << records.status();
  if (!records.ok()) return out;
  for (const TopicRecord& r : *records) {
    if (r.value == "A") out.a_in_topic = true;
    if (r.value == "B") out.b_in_topic = true;
  }
  return out;
}

// The mock (librdkafka's mock cluster) checks no producer sequence numbers for an idempotent
// producer without a transactional.id: it appends a Produce request that follows a failed one,
// where a real broker answers OUT_OF_ORDER_SEQUENCE_NUMBER. librdkafka reads that success as
// proof that the failed request was persisted too ("implicit ack") and reports the failed
// request's records delivered — records the topic never got. A client of the mock can
// therefore see an acknowledged record missing after an injected Produce error, unless only one
// request is in flight: then the failed request is sent again before anything behind it.
// Tests that inject Produce errors and check the output topics run with
// max.in.flight.requests.per.connection = 1 (tests/outage/outage_test.cc).
TEST(KafkaMockTest, InjectedProduceErrorLosesNothingWithOneRequestInFlight) {
  TwoRequests one = InjectedProduceErrorWithTwoRequests(1);
  EXPECT_EQ(one.acknowledged, 2);
  EXPECT_TRUE(one.a_in_topic) << "a record whose Produce request failed is not in the topic";
  EXPECT_TRUE(one.b_in_topic);

  // The mock's gap, shown (not asserted: whether B's request leaves before A's answer is up to
  // librdkafka's broker thread on a loaded machine).
  TwoRequests five = InjectedProduceErrorWithTwoRequests(5);
  std::cout << "max.in.flight 5: " << five.acknowledged << " of 2 acknowledged, A "
            << (five.a_in_topic ? "in" : "NOT in") << " the topic, B "
            << (five.b_in_topic ? "in" : "NOT in") << " the topic\n";
}

TEST(KafkaMockTest, ControlChannelTakesABrokerDownAndUp) {
  KafkaMock kafka;
  ASSERT_TRUE(kafka.Start().ok());
  ASSERT_FALSE(kafka.control_url().empty());
  CommandResult down =
      RunCommand({"curl", "-sf", "-d", "", kafka.control_url() + "/brokers/1/down"});
  ASSERT_EQ(down.exit_code, 0) << down.err;
  EXPECT_NE(down.out.find("\"ok\":true"), std::string::npos);
  // With its only broker down, a metadata request fails.
  CommandResult meta = RunCommand({"kcat", "-b", kafka.bootstrap(), "-L", "-m", "2"});
  EXPECT_NE(meta.exit_code, 0);
  CommandResult up = RunCommand({"curl", "-sf", "-d", "", kafka.control_url() + "/brokers/1/up"});
  ASSERT_EQ(up.exit_code, 0) << up.err;
  meta = RunCommand({"kcat", "-b", kafka.bootstrap(), "-L", "-m", "10"});
  EXPECT_EQ(meta.exit_code, 0) << meta.err;
}

}  // namespace
}  // namespace rtdw::testing
