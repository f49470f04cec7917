// [kafka.properties] reach only the clients that understand them (issue 17, item 7): one table
// serves producers and consumers, so a group-mode setting (session.timeout.ms, ...) must not
// reach a producer, nor a producer setting (acks, linger.ms, ...) a consumer — librdkafka would
// log "is a consumer property and will be ignored by this producer instance" for each.
//
// Truth: librdkafka itself — the value a built configuration holds (rd_kafka_conf_get), and the
// configuration warnings rd_kafka_new logs (facility CONFWARN) through the clients' log hook.
#include <gtest/gtest.h>
#include <librdkafka/rdkafka.h>

#include <chrono>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "connectors/kafka/conf.h"
#include "connectors/kafka/consumer.h"
#include "connectors/kafka/producer.h"

namespace rtdw {
namespace {

using kafka_internal::ClientRole;
using kafka_internal::NewKafkaConf;

// Operator properties of each scope, with values that differ from librdkafka's defaults.
const std::map<std::string, std::string> kMixed = {
    {"session.timeout.ms", "10000"},     // C
    {"heartbeat.interval.ms", "2500"},   // C
    {"max.poll.interval.ms", "120000"},  // C
    {"fetch.min.bytes", "7"},            // C
    {"message.timeout.ms", "123456"},    // P (topic-level)
    {"retry.backoff.ms", "77"},          // P
    {"client.id", "rtdw-scope-test"},    // both
};

std::string Get(rd_kafka_conf_t* conf, const char* key) {
  char value[512];
  size_t size = sizeof value;
  if (rd_kafka_conf_get(conf, key, value, &size) != RD_KAFKA_CONF_OK) return "<unknown>";
  return value;
}

TEST(KafkaPropertyScopeTest, EachRoleGetsItsOwnAndSharedPropertiesOnly) {
  auto producer = NewKafkaConf(ClientRole::kProducer, kMixed, {}, {});
  ASSERT_TRUE(producer.ok()) << producer.status();
  auto consumer = NewKafkaConf(ClientRole::kConsumer, kMixed, {}, {});
  ASSERT_TRUE(consumer.ok()) << consumer.status();
  for (const char* c :
       {"session.timeout.ms", "heartbeat.interval.ms", "max.poll.interval.ms", "fetch.min.bytes"}) {
    EXPECT_EQ(Get(*consumer, c), kMixed.at(c)) << c;
    EXPECT_NE(Get(*producer, c), kMixed.at(c)) << c << " reached the producer";
  }
  EXPECT_EQ(Get(*producer, "retry.backoff.ms"), "77");
  EXPECT_NE(Get(*consumer, "retry.backoff.ms"), "77") << "retry.backoff.ms reached the consumer";
  EXPECT_EQ(Get(*producer, "client.id"), "rtdw-scope-test");
  EXPECT_EQ(Get(*consumer, "client.id"), "rtdw-scope-test");
  rd_kafka_conf_destroy(*producer);
  rd_kafka_conf_destroy(*consumer);
}

TEST(KafkaPropertyScopeTest, ScopesComeFromLibrdkafka) {
  EXPECT_TRUE(kafka_internal::IsOtherRoleProperty(ClientRole::kProducer, "session.timeout.ms"));
  EXPECT_TRUE(kafka_internal::IsOtherRoleProperty(ClientRole::kProducer, "group.instance.id"));
  EXPECT_TRUE(kafka_internal::IsOtherRoleProperty(ClientRole::kConsumer, "linger.ms"));
  EXPECT_TRUE(kafka_internal::IsOtherRoleProperty(ClientRole::kConsumer, "acks"));
  EXPECT_FALSE(kafka_internal::IsOtherRoleProperty(ClientRole::kProducer, "linger.ms"));
  EXPECT_FALSE(kafka_internal::IsOtherRoleProperty(ClientRole::kConsumer, "session.timeout.ms"));
  EXPECT_FALSE(kafka_internal::IsOtherRoleProperty(ClientRole::kProducer, "security.protocol"));
  EXPECT_FALSE(kafka_internal::IsOtherRoleProperty(ClientRole::kConsumer, "no.such.property"));
}

TEST(KafkaPropertyScopeTest, AnUnknownPropertyIsStillRefusedByName) {
  for (ClientRole role : {ClientRole::kProducer, ClientRole::kConsumer}) {
    auto conf = NewKafkaConf(role, {{"sesion.timeout.ms", "10000"}}, {}, {});
    ASSERT_FALSE(conf.ok());
    EXPECT_TRUE(absl::StrContains(conf.status().message(), "sesion.timeout.ms")) << conf.status();
  }
}

// The clients as the daemon builds them: no configuration warning from librdkafka.
class WarningLog {
 public:
  std::function<void(int, std::string_view, std::string_view)> Hook() {
    return [this](int, std::string_view facility, std::string_view message) {
      std::lock_guard<std::mutex> lock(mu_);
      if (facility == "CONFWARN") warnings_.push_back(std::string(message));
    };
  }
  std::string Warnings() {
    std::lock_guard<std::mutex> lock(mu_);
    std::string all;
    for (const std::string& w : warnings_) absl::StrAppend(&all, w, "\n");
    return all;
  }

 private:
  std::mutex mu_;
  std::vector<std::string> warnings_;
};

TEST(KafkaPropertyScopeTest, ClientsLogNoConfigurationWarning) {
  WarningLog producer_log;
  {
    KafkaProducerOptions o;
    o.brokers = "127.0.0.1:9";
    o.properties = kMixed;
    o.log = producer_log.Hook();
    auto producer = KafkaProducer::Create(o);
    ASSERT_TRUE(producer.ok()) << producer.status();
  }
  EXPECT_EQ(producer_log.Warnings(), "");

  WarningLog consumer_log;
  {
    KafkaConsumerOptions o;
    o.brokers = "127.0.0.1:9";
    o.group_id = "rtdw.scope-test";
    o.properties = kMixed;
    o.log = consumer_log.Hook();
    auto consumer = KafkaConsumer::Create(o);
    ASSERT_TRUE(consumer.ok()) << consumer.status();
    (*consumer)->Close(std::chrono::steady_clock::now() + std::chrono::seconds(5)).IgnoreError();
  }
  EXPECT_EQ(consumer_log.Warnings(), "");
}

// The configuration a producer is built with, as librdkafka dumps it (debug=conf: one
// "  <name> = <value>" line per property that differs from librdkafka's defaults).
std::string ProducerConfDump(std::map<std::string, std::string> properties) {
  std::mutex mu;
  std::string dump;
  properties["debug"] = "conf";
  KafkaProducerOptions o;
  o.brokers = "127.0.0.1:9";
  o.properties = std::move(properties);
  o.log = [&](int, std::string_view facility, std::string_view message) {
    std::lock_guard<std::mutex> lock(mu);
    if (facility == "CONF") dump.append(message).append("\n");
  };
  {
    auto producer = KafkaProducer::Create(o);
    EXPECT_TRUE(producer.ok()) << producer.status();
  }
  std::lock_guard<std::mutex> lock(mu);
  return dump;
}

// linger.ms and batch.size are tuning: rtdw's values are defaults that [kafka.properties] may
// override (they were once set after the operator's and silently won); the guarantees still win.
TEST(KafkaPropertyScopeTest, AnOperatorsLingerAndBatchSizeReachTheProducer) {
  const std::string rtdw = ProducerConfDump({});
  EXPECT_TRUE(absl::StrContains(rtdw, "  queue.buffering.max.ms = 5\n")) << rtdw;
  EXPECT_TRUE(absl::StrContains(rtdw, "  batch.size = 1000000\n")) << rtdw;
  const std::string own = ProducerConfDump(
      {{"linger.ms", "50"}, {"batch.size", "12345"}, {"enable.idempotence", "false"}});
  EXPECT_TRUE(absl::StrContains(own, "  queue.buffering.max.ms = 50\n")) << own;
  EXPECT_TRUE(absl::StrContains(own, "  batch.size = 12345\n")) << own;
  EXPECT_TRUE(absl::StrContains(own, "  enable.idempotence = true\n")) << own;
}

}  // namespace
}  // namespace rtdw
