// [kafka.properties] reach librdkafka as they are (SASL_SSL, SCRAM, mTLS ssl.* keys), secrets
// come from the environment or a file, and the config dump masks them.
//
// Proof that a property reaches librdkafka: librdkafka's own validation answers, naming the
// property (an invalid enum value; an SSL CA file that does not exist, which only SSL context
// set-up in rd_kafka_new reads). A valid SASL_SSL + SCRAM-SHA-256 set is accepted by both the
// producer and the consumer.
#include <gtest/gtest.h>

#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "connectors/kafka/consumer.h"
#include "connectors/kafka/producer.h"
#include "core/config/config.h"
#include "tests/harness/process.h"

namespace rtdw {
namespace {

constexpr char kSaslPassword[] = "scram-pw-8d2e41";
constexpr char kKeyPassword[] = "key-pw-0c9b77";

absl::StatusOr<Config> Load(const std::string& properties) {
  return LoadConfigFromString(
      absl::StrCat("[kafka]\nbrokers = \"127.0.0.1:9\"\n[kafka.properties]\n", properties,
                   "[redis]\n[es]\n[state]\n[jobs]\n"),
      "t.toml", [](const std::string& name) -> std::optional<std::string> {
        if (name == "KAFKA_PASSWORD") return std::string(kSaslPassword);
        return std::nullopt;
      });
}

absl::Status MakeProducer(const Config& c) {
  KafkaProducerOptions o;
  o.brokers = c.kafka.brokers;
  o.properties = c.kafka.ResolvedProperties();
  return KafkaProducer::Create(o).status();
}

absl::Status MakeConsumer(const Config& c) {
  KafkaConsumerOptions o;
  o.brokers = c.kafka.brokers;
  o.group_id = "rtdw.test";
  o.properties = c.kafka.ResolvedProperties();
  return KafkaConsumer::Create(o).status();
}

TEST(KafkaPropertiesTest, AnInvalidValueGetsLibrdkafkasErrorNamingTheProperty) {
  auto c = Load("\"security.protocol\" = \"SASL_BOGUS\"\n");
  ASSERT_TRUE(c.ok()) << c.status();  // rtdw does not second-guess librdkafka's values
  for (const absl::Status& st : {MakeProducer(*c), MakeConsumer(*c)}) {
    ASSERT_FALSE(st.ok());
    EXPECT_TRUE(absl::StrContains(st.message(), "security.protocol")) << st;
    EXPECT_TRUE(absl::StrContains(st.message(), "SASL_BOGUS")) << st;
  }
  auto mech = Load(
      "\"sasl.mechanisms\" = \"SCRAM-SHA-999\"\n\"security.protocol\" = \"SASL_SSL\"\n"
      "\"sasl.username\" = \"u\"\n\"sasl.password\" = \"p\"\n");
  ASSERT_TRUE(mech.ok());
  absl::Status st = MakeProducer(*mech);
  ASSERT_FALSE(st.ok());
  EXPECT_TRUE(absl::StrContains(st.message(), "SCRAM-SHA-999")) << st;
}

TEST(KafkaPropertiesTest, SslPropertiesReachTheTlsSetUp) {
  // mTLS keys: librdkafka reads the CA file when it builds its SSL context in rd_kafka_new.
  auto c = Load(
      "\"security.protocol\" = \"SSL\"\n"
      "\"ssl.ca.location\" = \"/nonexistent/rtdw-test-ca.pem\"\n");
  ASSERT_TRUE(c.ok()) << c.status();
  absl::Status st = MakeProducer(*c);
  ASSERT_FALSE(st.ok());
  EXPECT_TRUE(absl::StrContains(st.message(), "ssl.ca.location")) << st;
}

TEST(KafkaPropertiesTest, SaslSslWithScramAndSecretsIsAcceptedAndMasked) {
  testing::TempDir dir;
  std::string key_pw_file = dir.Sub("key.pw");
  {
    FILE* f = fopen(key_pw_file.c_str(), "w");
    ASSERT_NE(f, nullptr);
    fprintf(f, "%s\n", kKeyPassword);
    fclose(f);
  }
  auto c =
      Load(absl::StrCat("\"security.protocol\" = \"SASL_SSL\"\n"
                        "\"sasl.mechanisms\" = \"SCRAM-SHA-256\"\n"
                        "\"sasl.username\" = \"rtdw\"\n"
                        "\"sasl.password\" = { env = \"KAFKA_PASSWORD\" }\n"
                        "\"ssl.key.password\" = { file = \"",
                        key_pw_file,
                        "\" }\n"
                        "\"ssl.endpoint.identification.algorithm\" = \"https\"\n"));
  ASSERT_TRUE(c.ok()) << c.status();
  // The secrets are resolved for librdkafka ...
  auto props = c->kafka.ResolvedProperties();
  EXPECT_EQ(props["sasl.password"], kSaslPassword);
  EXPECT_EQ(props["ssl.key.password"], kKeyPassword);  // the file's content, without the newline
  EXPECT_EQ(props["security.protocol"], "SASL_SSL");
  // ... and accepted by it (creating a client connects later, in the background).
  EXPECT_TRUE(MakeProducer(*c).ok()) << MakeProducer(*c);
  EXPECT_TRUE(MakeConsumer(*c).ok()) << MakeConsumer(*c);
  // The dump (what logs and --print-config show) masks them and says where they come from.
  std::string dump = DumpConfig(*c);
  EXPECT_FALSE(absl::StrContains(dump, kSaslPassword)) << dump;
  EXPECT_FALSE(absl::StrContains(dump, kKeyPassword)) << dump;
  EXPECT_TRUE(absl::StrContains(dump, "\"sasl.password\" = \"***\"  # env KAFKA_PASSWORD")) << dump;
  EXPECT_TRUE(
      absl::StrContains(dump, absl::StrCat("\"ssl.key.password\" = \"***\"  # file ", key_pw_file)))
      << dump;
  EXPECT_TRUE(absl::StrContains(dump, "\"sasl.mechanisms\" = \"SCRAM-SHA-256\"")) << dump;
}

TEST(KafkaPropertiesTest, AnInlinePasswordIsMaskedToo) {
  auto c = Load(absl::StrCat("\"sasl.password\" = \"", kSaslPassword, "\"\n"));
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_FALSE(absl::StrContains(DumpConfig(*c), kSaslPassword));
}

TEST(KafkaPropertiesTest, AnUnresolvableSecretNamesTheVariableNotAValue) {
  auto c = Load("\"sasl.password\" = { env = \"NO_SUCH_KAFKA_PW\" }\n");
  ASSERT_FALSE(c.ok());
  EXPECT_TRUE(absl::StrContains(c.status().message(), "NO_SUCH_KAFKA_PW")) << c.status();
}

}  // namespace
}  // namespace rtdw
