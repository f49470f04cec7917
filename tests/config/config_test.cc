// The config loader against docs/CONFIG.md and deploy/rtdw.example.toml: defaults, every kind of
// problem and its message (FILE:LINE: KEY: what (expected)), secrets and their masking, environment
// overrides, the shipped example and local configs.

#include "core/config/config.h"

#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace rtdw {
namespace {

using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

constexpr char kMinimal[] = "[kafka]\n[redis]\n[es]\n[state]\n[jobs]\n";

// An environment with only the given variables.
EnvLookup FakeEnv(std::map<std::string, std::string> vars = {}) {
  return [vars = std::move(vars)](const std::string& name) -> std::optional<std::string> {
    auto it = vars.find(name);
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };
}

std::string Message(const absl::StatusOr<Config>& c) {
  return c.ok() ? std::string() : std::string(c.status().message());
}

// Loads `text` as "t.toml" and returns the problems (empty when valid).
std::vector<std::string> Problems(const std::string& text, const EnvLookup& env = FakeEnv()) {
  return LoadConfigFromStringDetailed(text, "t.toml", env).problems;
}

Config LoadOk(const std::string& text, const EnvLookup& env = FakeEnv()) {
  absl::StatusOr<Config> c = LoadConfigFromString(text, "t.toml", env);
  EXPECT_TRUE(c.ok()) << Message(c);
  return c.ok() ? *c : Config{};
}

class TempDir {
 public:
  TempDir() {
    std::string templ = (std::filesystem::temp_directory_path() / "rtdw-config-XXXXXX").string();
    path_ = mkdtemp(templ.data());
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  std::string Write(const std::string& name, const std::string& content) const {
    std::string p = path_ + "/" + name;
    std::ofstream(p) << content;
    return p;
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

TEST(ConfigTest, MinimalFileLoadsWithEveryDefault) {
  Config c = LoadOk(kMinimal);
  EXPECT_EQ(c.source, "t.toml");
  EXPECT_EQ(c.kafka.brokers, "127.0.0.1:9092");
  EXPECT_THAT(c.kafka.broker_list, ElementsAre(HostPort{"127.0.0.1", 9092}));
  EXPECT_FALSE(c.kafka.group.has_value());
  EXPECT_EQ(c.kafka.auto_offset_reset, AutoOffsetReset::kEarliest);
  EXPECT_TRUE(c.kafka.properties.empty());
  EXPECT_EQ(c.redis.url, "redis://127.0.0.1:6379/0");
  EXPECT_EQ(c.redis.host, "127.0.0.1");
  EXPECT_EQ(c.redis.port, 6379);
  EXPECT_EQ(c.redis.db, 0);
  EXPECT_FALSE(c.redis.password.has_value());
  EXPECT_THAT(c.es.urls, ElementsAre("http://127.0.0.1:9200"));
  EXPECT_FALSE(c.es.user || c.es.password || c.es.api_key || c.es.ca_file);
  EXPECT_TRUE(c.es.verify_tls);
  EXPECT_EQ(c.es.bulk_max_bytes, 5242880);
  EXPECT_EQ(c.es.max_response_mb, 256);
  EXPECT_EQ(c.state.min_free_mb, 64);
  EXPECT_EQ(c.state.dir, "./var/state");
  EXPECT_EQ(c.state.block_cache_mb, 256);
  EXPECT_TRUE(c.state.sync);
  EXPECT_EQ(c.dedup.retention_days, 2);
  EXPECT_EQ(c.shutdown.timeout, std::chrono::seconds(30));
  EXPECT_EQ(c.http.listen, "127.0.0.1:9464");
  EXPECT_TRUE(c.http.enabled());
  EXPECT_EQ(c.http.host, "127.0.0.1");
  EXPECT_EQ(c.http.port, 9464);
  EXPECT_EQ(c.log.level, LogLevel::kInfo);
  EXPECT_EQ(c.log.format, LogFormat::kText);
  EXPECT_EQ(c.log.progress_interval, std::chrono::seconds(10));
  EXPECT_THAT(c.jobs.enabled, ElementsAre("log-split", "db-split", "dau", "order-wide"));
  EXPECT_EQ(c.jobs.time_zone, "Asia/Shanghai");
  EXPECT_EQ(c.jobs.batch_max_records, 10000);
  EXPECT_EQ(c.jobs.batch_max_ms, std::chrono::milliseconds(200));
  for (std::string_view job : kJobNames) {
    const JobCommon* common = c.jobs.Common(job);
    ASSERT_NE(common, nullptr) << job;
    EXPECT_EQ(common->time_zone, "Asia/Shanghai") << job;
    EXPECT_EQ(common->tz.name(), "Asia/Shanghai") << job;
    EXPECT_EQ(common->batch_max_records, 10000) << job;
    EXPECT_EQ(common->batch_max_ms, std::chrono::milliseconds(200)) << job;
  }
  const LogSplitJob& ls = c.jobs.log_split;
  EXPECT_EQ(ls.source_topic, "ODS_BASE_LOG");
  EXPECT_EQ(ls.start_topic, "DWD_START_LOG_TOPIC");
  EXPECT_EQ(ls.page_topic, "DWD_PAGE_LOG_TOPIC");
  EXPECT_EQ(ls.display_topic, "DWD_PAGE_DISPLAY_TOPIC");
  EXPECT_EQ(ls.action_topic, "DWD_PAGE_ACTION_TOPIC");
  EXPECT_EQ(ls.error_topic, "DWD_ERROR_LOG_TOPIC");
  EXPECT_EQ(ls.dead_letter_topic, "DWD_DEAD_LETTER");
  EXPECT_EQ(ls.max_record_bytes, 524288);
  EXPECT_EQ(ls.max_depth, 64);
  EXPECT_EQ(ls.max_array_items, 1000);
  EXPECT_EQ(c.jobs.db_split.source_topic, "ODS_BASE_DB");
  EXPECT_EQ(c.jobs.db_split.dead_letter_topic, "DWD_DEAD_LETTER");
  EXPECT_THAT(c.jobs.db_split.fact_tables, ElementsAre("order_info", "order_detail"));
  EXPECT_THAT(c.jobs.db_split.dim_tables, ElementsAre("user_info", "base_province"));
  EXPECT_EQ(c.jobs.dau.source_topic, "DWD_PAGE_LOG_TOPIC");
  EXPECT_EQ(c.jobs.dau.index_prefix, "gmall_dau_info_");
  EXPECT_EQ(c.jobs.dau.max_future, std::chrono::seconds(86400));
  EXPECT_EQ(c.jobs.order_wide.order_topic, "DWD_ORDER_INFO_I");
  EXPECT_EQ(c.jobs.order_wide.detail_topic, "DWD_ORDER_DETAIL_I");
  EXPECT_EQ(c.jobs.order_wide.index_prefix, "gmall_order_wide_");
  EXPECT_EQ(c.jobs.order_wide.join_ttl, std::chrono::seconds(86400));
  EXPECT_EQ(c.jobs.order_wide.max_future, std::chrono::seconds(86400));
  EXPECT_EQ(c.jobs.order_wide.idle_input, std::chrono::seconds(60));
  EXPECT_EQ(c.NeededServices(), (ServiceNeeds{true, true, true}));
}

// kafka.revoke_timeout: a revoke runs inside the poll, so it must end well before the group gives
// up on the member (max.poll.interval.ms); the error names the key and the bound.
TEST(ConfigTest, RevokeTimeoutIsWellUnderMaxPollInterval) {
  EXPECT_EQ(LoadOk(kMinimal).kafka.revoke_timeout, std::chrono::seconds(10));
  const std::string rest = "[redis]\n[es]\n[state]\n[jobs]\n";
  EXPECT_EQ(LoadOk("[kafka]\nrevoke_timeout = 150\n" + rest).kafka.revoke_timeout,
            std::chrono::seconds(150));
  EXPECT_THAT(Problems("[kafka]\nrevoke_timeout = 151\n" + rest),
              ElementsAre("t.toml:2: kafka.revoke_timeout: 151 s is not well under "
                          "max.poll.interval.ms (300000 ms): a revoke must end long before the "
                          "group gives up on the member (expected at most 150 s, half of it)"));
  EXPECT_THAT(Problems("[kafka]\nrevoke_timeout = -1\n" + rest),
              ElementsAre(HasSubstr("kafka.revoke_timeout: negative value -1")));
  // The default against a short max.poll.interval.ms: reported too (no line of its own).
  EXPECT_THAT(Problems("[kafka]\n[kafka.properties]\n\"max.poll.interval.ms\" = 15000\n" + rest),
              ElementsAre(HasSubstr("t.toml:1: kafka.revoke_timeout: 10 s (the default) is not "
                                    "well under max.poll.interval.ms (15000 ms)")));
  EXPECT_EQ(LoadOk("[kafka]\nrevoke_timeout = 5\n[kafka.properties]\n"
                   "\"max.poll.interval.ms\" = 15000\n" +
                   rest)
                .kafka.revoke_timeout,
            std::chrono::seconds(5));
}

TEST(ConfigTest, ValidFullFile) {
  Config c = LoadOk(R"(
[kafka]
brokers = " k1:9092 , [::1]:9093 "
group = "rtdw"
auto_offset_reset = "latest"
[kafka.properties]
"security.protocol" = "SASL_SSL"
linger.ms = 20
"enable.partition.eof" = false
[redis]
url = "redis://10.0.0.5:6380/3"
[es]
url = ["http://es1:9200/", "https://es2:9243/prefix"]
verify_tls = false
bulk_max_bytes = 1000
max_response_mb = 16
[state]
dir = "/var/lib/rtdw"
sync = false
min_free_mb = 0
[http]
listen = ""
[log]
level = "debug"
format = "json"
progress_interval = 0
[jobs]
enabled = ["dau"]
time_zone = "UTC"
batch_max_records = 50
[jobs.dau]
time_zone = "America/New_York"
batch_max_ms = 1000
)");
  EXPECT_EQ(c.kafka.brokers, "k1:9092,[::1]:9093");
  EXPECT_THAT(c.kafka.broker_list, ElementsAre(HostPort{"k1", 9092}, HostPort{"::1", 9093}));
  EXPECT_EQ(c.kafka.group, "rtdw");
  EXPECT_EQ(c.kafka.auto_offset_reset, AutoOffsetReset::kLatest);
  EXPECT_EQ(c.kafka.ResolvedProperties(),
            (std::map<std::string, std::string>{{"enable.partition.eof", "false"},
                                                {"linger.ms", "20"},
                                                {"security.protocol", "SASL_SSL"}}));
  EXPECT_EQ(c.redis.host, "10.0.0.5");
  EXPECT_EQ(c.redis.port, 6380);
  EXPECT_EQ(c.redis.db, 3);
  EXPECT_THAT(c.es.urls, ElementsAre("http://es1:9200", "https://es2:9243/prefix"));
  EXPECT_FALSE(c.es.verify_tls);
  EXPECT_EQ(c.es.bulk_max_bytes, 1000);
  EXPECT_EQ(c.es.max_response_mb, 16);
  EXPECT_EQ(c.state.dir, "/var/lib/rtdw");
  EXPECT_FALSE(c.state.sync);
  EXPECT_EQ(c.state.min_free_mb, 0);
  EXPECT_FALSE(c.http.enabled());
  EXPECT_EQ(c.log.level, LogLevel::kDebug);
  EXPECT_EQ(c.log.format, LogFormat::kJson);
  EXPECT_EQ(c.log.progress_interval, std::chrono::seconds(0));
  EXPECT_THAT(c.jobs.enabled, ElementsAre("dau"));
  EXPECT_TRUE(c.jobs.IsEnabled("dau"));
  EXPECT_FALSE(c.jobs.IsEnabled("log-split"));
  // The job section overrides [jobs]; the others inherit [jobs].
  EXPECT_EQ(c.jobs.dau.time_zone, "America/New_York");
  EXPECT_EQ(c.jobs.dau.tz.name(), "America/New_York");
  EXPECT_EQ(c.jobs.dau.batch_max_records, 50);
  EXPECT_EQ(c.jobs.dau.batch_max_ms, std::chrono::milliseconds(1000));
  EXPECT_EQ(c.jobs.order_wide.time_zone, "UTC");
  EXPECT_EQ(c.jobs.order_wide.batch_max_records, 50);
  EXPECT_EQ(c.jobs.order_wide.batch_max_ms, std::chrono::milliseconds(200));
}

TEST(ConfigTest, MissingFileNamesThePath) {
  absl::StatusOr<Config> c = LoadConfig("/nonexistent/rtdw.toml", FakeEnv());
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(Message(c), StartsWith("/nonexistent/rtdw.toml: cannot read config file: "));
  EXPECT_THAT(Message(c), HasSubstr("No such file or directory"));
}

TEST(ConfigTest, LoadsFromFileAndNamesItInErrors) {
  TempDir dir;
  std::string ok = dir.Write("ok.toml", kMinimal);
  absl::StatusOr<Config> c = LoadConfig(ok, FakeEnv());
  ASSERT_TRUE(c.ok()) << Message(c);
  EXPECT_EQ(c->source, ok);

  std::string bad = dir.Write("bad.toml", std::string(kMinimal) + "[state]\n");
  c = LoadConfig(bad, FakeEnv());
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Message(c), StartsWith(bad + ":6: TOML syntax error"));
}

TEST(ConfigTest, SyntaxErrorStopsAtTheFirstWithFileAndLine) {
  std::vector<std::string> p = Problems("[kafka]\n[redis]\nurl = \"redis://x\n[es]\nx = = 1\n");
  ASSERT_EQ(p.size(), 1u);
  EXPECT_THAT(p[0], StartsWith("t.toml:3: TOML syntax error at column "));
  EXPECT_THAT(p[0], HasSubstr("(expected valid TOML)"));
}

TEST(ConfigTest, UnknownKeyWithSuggestion) {
  std::vector<std::string> p = Problems(std::string(kMinimal) + "[shutdown]\ntimout = 5\n");
  EXPECT_THAT(p, ElementsAre("t.toml:7: shutdown.timout: unknown key (did you mean "
                             "`shutdown.timeout`?)"));
  p = Problems("[kafka]\nbroker = \"k:1\"\n[redis]\n[es]\n[state]\n[jobs]\n");
  EXPECT_THAT(
      p,
      ElementsAre(HasSubstr("t.toml:2: kafka.broker: unknown key (did you mean `kafka.brokers`?")));
}

TEST(ConfigTest, UnknownKeyWithoutSuggestionListsTheKnownOnes) {
  std::vector<std::string> p =
      Problems("[kafka]\n[redis]\n[es]\n[state]\ncompression = \"lz4\"\n[jobs]\n");
  EXPECT_THAT(p, ElementsAre("t.toml:5: state.compression: unknown key (known keys: dir, "
                             "block_cache_mb, sync, min_free_mb)"));
}

TEST(ConfigTest, LibrdkafkaPropertyInKafkaPointsAtProperties) {
  std::vector<std::string> p =
      Problems("[kafka]\n\"security.protocol\" = \"SSL\"\n[redis]\n[es]\n[state]\n[jobs]\n");
  EXPECT_THAT(p, ElementsAre("t.toml:2: kafka.\"security.protocol\": unknown key (known keys: "
                             "brokers, group, auto_offset_reset, revoke_timeout, properties; "
                             "librdkafka properties go in [kafka.properties])"));
}

TEST(ConfigTest, UnknownSections) {
  std::vector<std::string> p =
      Problems("[kafak]\n[redis]\n[es]\n[state]\n[jobs]\n[jobs.dua]\n[metrics]\n");
  EXPECT_THAT(
      p, ElementsAre("t.toml:1: kafka: missing section [kafka] (every rtdw config has [kafka], "
                     "[redis], [es], [state] and [jobs]; an empty section is fine)",
                     "t.toml:1: kafak: unknown section (did you mean `kafka`?)",
                     "t.toml:6: jobs.dua: unknown section (did you mean `jobs.dau`?)",
                     HasSubstr("t.toml:7: metrics: unknown section (known sections: kafka, redis, "
                               "es, state, dedup, shutdown, http, log, jobs)")));
}

TEST(ConfigTest, EveryRequiredSectionMustBePresent) {
  std::vector<std::string> p = Problems("[kafka]\n[state]\n");
  EXPECT_THAT(p, ElementsAre(HasSubstr("t.toml:1: redis: missing section [redis]"),
                             HasSubstr("t.toml:1: es: missing section [es]"),
                             HasSubstr("t.toml:1: jobs: missing section [jobs]")));
}

TEST(ConfigTest, WrongTypes) {
  std::vector<std::string> p = Problems(R"([kafka]
brokers = ["a:1"]
[redis]
[es]
verify_tls = "yes"
[state]
block_cache_mb = "big"
[jobs]
enabled = "dau"
[log]
level = 3
)");
  EXPECT_THAT(
      p, ElementsAre("t.toml:2: kafka.brokers: wrong type array (expected comma-separated "
                     "host:port)",
                     "t.toml:5: es.verify_tls: wrong type string (expected true or false)",
                     "t.toml:7: state.block_cache_mb: wrong type string (expected an integer "
                     "from 1 to 1048576 MiB)",
                     "t.toml:9: jobs.enabled: wrong type string (expected an array of job names)",
                     "t.toml:11: log.level: wrong type integer (expected one of trace | debug | "
                     "info | warn | error)"));
}

TEST(ConfigTest, BadUrlsAndAddresses) {
  std::vector<std::string> p = Problems(R"([kafka]
brokers = "k1:9092,k2"
[redis]
url = "http://127.0.0.1:6379"
[es]
url = ["http://es:9200", "ftp://es:21", "http://es:99999"]
[state]
[http]
listen = "localhost"
[jobs]
)");
  EXPECT_THAT(
      p, ElementsAre("t.toml:2: kafka.brokers: no port in \"k2\" (expected host:port with port "
                     "1-65535)",
                     "t.toml:4: redis.url: bad URL \"http://127.0.0.1:6379\": scheme \"http://\" "
                     "(expected redis://[[user]:password@]host:port/db)",
                     "t.toml:6: es.url[1]: bad URL \"ftp://es:21\": scheme \"ftp://\" (expected "
                     "http(s)://host[:port][/path])",
                     "t.toml:6: es.url[2]: bad port in URL \"http://es:99999\" (expected "
                     "http(s)://host[:port][/path], port 1-65535)",
                     "t.toml:9: http.listen: no port in \"localhost\" (expected host:port with "
                     "port 0-65535); \"\" turns HTTP off"));
}

TEST(ConfigTest, RedissIsAClearError) {
  std::vector<std::string> p =
      Problems("[kafka]\n[redis]\nurl = \"rediss://:pw@r:6380/0\"\n[es]\n[state]\n[jobs]\n");
  ASSERT_EQ(p.size(), 1u);
  EXPECT_THAT(p[0], StartsWith("t.toml:3: redis.url: TLS URL \"rediss://:***@r:6380/0\" is not "
                               "supported: hiredis 0.14 has no TLS"));
  EXPECT_THAT(p[0], Not(HasSubstr("pw")));
}

TEST(ConfigTest, BadTimeZones) {
  std::vector<std::string> p = Problems(R"([kafka]
[redis]
[es]
[state]
[jobs]
time_zone = "Mars/Olympus_Mons"
[jobs.dau]
time_zone = "Asia/Shangai"
)");
  EXPECT_THAT(p, ElementsAre("t.toml:6: jobs.time_zone: unknown time zone \"Mars/Olympus_Mons\" "
                             "(expected an IANA time zone name such as \"Asia/Shanghai\" or "
                             "\"UTC\")",
                             HasSubstr("t.toml:8: jobs.dau.time_zone: unknown time zone "
                                       "\"Asia/Shangai\"")));
}

TEST(ConfigTest, NegativeAndZeroSizes) {
  std::vector<std::string> p = Problems(R"([kafka]
[redis]
[es]
bulk_max_bytes = -1
[state]
block_cache_mb = 0
[dedup]
retention_days = 0
[jobs]
[jobs.log-split]
max_record_bytes = -5
[jobs.order-wide]
join_ttl = 0
idle_input = -1
)");
  EXPECT_THAT(
      p, ElementsAre("t.toml:4: es.bulk_max_bytes: negative value -1 (expected an integer >= 1 "
                     "bytes)",
                     "t.toml:6: state.block_cache_mb: value 0 too small (expected an integer from "
                     "1 to 1048576 MiB)",
                     "t.toml:8: dedup.retention_days: value 0 too small (expected an integer from "
                     "1 to 3650 days)",
                     "t.toml:11: jobs.log-split.max_record_bytes: negative value -5 (expected an "
                     "integer from 1 to 1073741824 bytes)",
                     "t.toml:13: jobs.order-wide.join_ttl: value 0 too small (expected an integer "
                     "from 1 to 31536000 seconds)",
                     "t.toml:14: jobs.order-wide.idle_input: negative value -1 (expected an "
                     "integer from 0 to 31536000 seconds)"));
}

TEST(ConfigTest, BadEnumValuesSuggest) {
  std::vector<std::string> p = Problems(
      "[kafka]\nauto_offset_reset = \"earlist\"\n[redis]\n[es]\n[state]\n[jobs]\n"
      "enabled = [\"dau\", \"dua\", \"dau\", \"spark\"]\n");
  EXPECT_THAT(
      p, ElementsAre("t.toml:2: kafka.auto_offset_reset: unknown value \"earlist\" (expected one "
                     "of earliest | latest | error; did you mean \"earliest\"?)",
                     "t.toml:7: jobs.enabled[1]: unknown job \"dua\" (expected one of log-split, "
                     "db-split, dau, order-wide; did you mean \"dau\"?)",
                     "t.toml:7: jobs.enabled[2]: job \"dau\" listed twice (expected each once)",
                     "t.toml:7: jobs.enabled[3]: unknown job \"spark\" (expected one of "
                     "log-split, db-split, dau, order-wide)"));
}

TEST(ConfigTest, TopicAndIndexChecks) {
  std::vector<std::string> p = Problems(R"([kafka]
[redis]
[es]
[state]
[jobs]
[jobs.log-split]
page_topic = "ODS_BASE_LOG"
error_topic = "bad topic"
[jobs.dau]
index_prefix = "Gmall_"
[jobs.order-wide]
detail_topic = "DWD_ORDER_INFO_I"
[jobs.db-split]
fact_tables = ["order-info"]
)");
  EXPECT_THAT(
      p, ElementsAre("t.toml:7: jobs.log-split.page_topic: same topic \"ODS_BASE_LOG\" as "
                     "jobs.log-split.source_topic (expected a different topic)",
                     "t.toml:8: jobs.log-split.error_topic: bad topic name \"bad topic\" "
                     "(expected 1-249 characters of A-Z a-z 0-9 . _ -)",
                     HasSubstr("t.toml:10: jobs.dau.index_prefix: bad index prefix \"Gmall_\" "
                               "(expected a lowercase"),
                     "t.toml:12: jobs.order-wide.detail_topic: same topic \"DWD_ORDER_INFO_I\" as "
                     "jobs.order-wide.order_topic (expected a different topic)",
                     "t.toml:14: jobs.db-split.fact_tables[0]: bad table name \"order-info\" "
                     "(expected 1-64 characters of A-Z a-z 0-9 _)"));
}

TEST(ConfigTest, RefusedKafkaProperties) {
  std::vector<std::string> p = Problems(R"([kafka]
[kafka.properties]
"group.id" = "mine"
enable.auto.commit = true
"acks" = "1"
"client.id" = "ok"
"auto.offset.reset" = "latest"
[redis]
[es]
[state]
[jobs]
)");
  EXPECT_THAT(
      p, ElementsAre("t.toml:3: kafka.properties.\"group.id\": refused property \"group.id\": "
                     "rtdw derives it from kafka.group and the job (remove it)",
                     HasSubstr("t.toml:4: kafka.properties.\"enable.auto.commit\": refused "
                               "property \"enable.auto.commit\""),
                     HasSubstr("t.toml:5: kafka.properties.\"acks\": refused property \"acks\""),
                     "t.toml:7: kafka.properties.\"auto.offset.reset\": refused property "
                     "\"auto.offset.reset\": use kafka.auto_offset_reset (remove it)"));
  std::vector<std::string> more = Problems(
      "[kafka.properties]\n\"enable.idempotence\" = false\n\"isolation.level\" = \"x\"\n"
      "\"enable.auto.offset.store\" = true\n[redis]\n[es]\n[state]\n[jobs]\n");
  EXPECT_THAT(more, ElementsAre(HasSubstr("refused property \"enable.idempotence\""),
                                HasSubstr("refused property \"isolation.level\""),
                                HasSubstr("refused property \"enable.auto.offset.store\"")));
}

TEST(ConfigTest, SecretsFromEnvAndFileAreResolvedAndMaskedInTheDump) {
  TempDir dir;
  std::string key_file = dir.Write("es.key", "api-key-from-file\n");
  std::string text = R"([kafka]
[kafka.properties]
"sasl.username" = "rtdw"
"sasl.password" = { env = "KAFKA_PASSWORD" }
"ssl.key.password" = "inline-key-pw"
[redis]
url = "redis://:redis-url-pw@r:6379/2"
[es]
api_key = { file = ")" +
                     key_file + R"(" }
[state]
[jobs]
)";
  Config c = LoadOk(text, FakeEnv({{"KAFKA_PASSWORD", "kafka-env-pw"}}));
  const Secret& kafka_pw = std::get<Secret>(c.kafka.properties.at("sasl.password"));
  EXPECT_EQ(kafka_pw.value, "kafka-env-pw");
  EXPECT_EQ(kafka_pw.origin, "env KAFKA_PASSWORD");
  EXPECT_EQ(c.kafka.ResolvedProperties().at("sasl.password"), "kafka-env-pw");
  ASSERT_TRUE(c.es.api_key.has_value());
  EXPECT_EQ(c.es.api_key->value, "api-key-from-file");  // trailing newline dropped
  EXPECT_EQ(c.es.api_key->origin, "file " + key_file);
  ASSERT_TRUE(c.redis.password.has_value());
  EXPECT_EQ(c.redis.password->value, "redis-url-pw");
  EXPECT_EQ(c.redis.url, "redis://:***@r:6379/2");
  EXPECT_EQ(c.redis.db, 2);

  std::string dump = DumpConfig(c);
  for (const char* secret :
       {"kafka-env-pw", "api-key-from-file", "redis-url-pw", "inline-key-pw"}) {
    EXPECT_THAT(dump, Not(HasSubstr(secret)));
  }
  EXPECT_THAT(dump, HasSubstr("\"sasl.password\" = \"***\"  # env KAFKA_PASSWORD"));
  EXPECT_THAT(dump, HasSubstr("\"ssl.key.password\" = \"***\""));
  EXPECT_THAT(dump, HasSubstr("\"sasl.username\" = \"rtdw\""));
  EXPECT_THAT(dump, HasSubstr("api_key = \"***\"  # file " + key_file));
  EXPECT_THAT(dump, HasSubstr("url = \"redis://:***@r:6379/2\""));
}

TEST(ConfigTest, EsUserPasswordAndRedisPasswordKey) {
  Config c = LoadOk(
      "[kafka]\n[redis]\npassword = { env = \"RP\" }\n[es]\nuser = \"u\"\n"
      "password = \"es-inline-pw\"\n[state]\n[jobs]\n",
      FakeEnv({{"RP", "redis-pw"}}));
  EXPECT_EQ(c.redis.password->value, "redis-pw");
  EXPECT_EQ(c.es.user, "u");
  EXPECT_EQ(c.es.password->value, "es-inline-pw");
  EXPECT_THAT(DumpConfig(c), AllOf(Not(HasSubstr("redis-pw")), Not(HasSubstr("es-inline-pw"))));
}

TEST(ConfigTest, UnresolvableSecretsNameTheVariableOrFile) {
  std::vector<std::string> p = Problems(R"([kafka]
[kafka.properties]
"sasl.password" = { env = "NO_SUCH_VAR" }
[redis]
[es]
user = "u"
password = { file = "/nonexistent/es.pw" }
api_key = { env = "X", file = "/y" }
[state]
[jobs]
)");
  EXPECT_THAT(
      p, ElementsAre("t.toml:3: kafka.properties.\"sasl.password\": environment variable "
                     "NO_SUCH_VAR is not set (expected it to hold the secret)",
                     "t.toml:7: es.password: cannot read secret file \"/nonexistent/es.pw\": No "
                     "such file or directory (expected a readable file holding the secret)",
                     "t.toml:8: es.api_key: bad secret table with 2 key(s) (expected a string, { "
                     "env = \"NAME\" } or { file = \"/path\" })",
                     "t.toml:8: es.api_key: both an API key and user/password (expected either "
                     "es.api_key or es.user + es.password)"));
}

TEST(ConfigTest, EnvOverridesApplyAfterTheFile) {
  Config c = LoadOk(kMinimal, FakeEnv({{"RTDW_KAFKA_BROKERS", "b1:1,b2:2"},
                                       {"RTDW_REDIS_URL", "redis://:envpw@rhost:7000/5"},
                                       {"RTDW_ES_URL", "http://e1:9200, https://e2:443/"},
                                       {"RTDW_STATE_DIR", "/tmp/rtdw-state"}}));
  EXPECT_EQ(c.kafka.brokers, "b1:1,b2:2");
  EXPECT_THAT(c.kafka.broker_list, ElementsAre(HostPort{"b1", 1}, HostPort{"b2", 2}));
  EXPECT_EQ(c.redis.host, "rhost");
  EXPECT_EQ(c.redis.port, 7000);
  EXPECT_EQ(c.redis.db, 5);
  EXPECT_EQ(c.redis.password->value, "envpw");
  EXPECT_EQ(c.redis.password->origin, "env RTDW_REDIS_URL");
  EXPECT_EQ(c.redis.url, "redis://:***@rhost:7000/5");
  EXPECT_THAT(c.es.urls, ElementsAre("http://e1:9200", "https://e2:443"));
  EXPECT_EQ(c.state.dir, "/tmp/rtdw-state");

  // Unset and empty variables change nothing.
  Config d = LoadOk(kMinimal, FakeEnv({{"RTDW_STATE_DIR", ""}}));
  EXPECT_EQ(d.state.dir, "./var/state");
}

TEST(ConfigTest, BadEnvOverridesAreNamedAsEnv) {
  std::vector<std::string> p =
      Problems(kMinimal, FakeEnv({{"RTDW_KAFKA_BROKERS", "b1"},
                                  {"RTDW_REDIS_URL", "redis://:secretpw@h:0/0"},
                                  {"RTDW_ES_URL", "http://ok:9200,localhost:9200"}}));
  EXPECT_THAT(
      p, ElementsAre("env RTDW_KAFKA_BROKERS: kafka.brokers: no port in \"b1\" (expected "
                     "host:port with port 1-65535)",
                     "env RTDW_REDIS_URL: redis.url: bad port in URL \"redis://:***@h:0/0\" "
                     "(expected redis://[[user]:password@]host:port/db, port 1-65535)",
                     "env RTDW_ES_URL: es.url: bad URL \"localhost:9200\": no scheme (expected "
                     "http(s)://host[:port][/path])"));
}

TEST(ConfigTest, EveryProblemIsReportedAtOnceInFileOrder) {
  absl::StatusOr<Config> c = LoadConfigFromString(R"([kafka]
auto_offset_reset = "never"
[redis]
url = "redis://h:1/x"
[es]
bulk_max_bytes = 0
[state]
dirr = "/x"
[jobs]
time_zone = "Nowhere/City"
batch_max_ms = -1
)",
                                                  "multi.toml", FakeEnv({{"RTDW_STATE_DIR", ""}}));
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument);
  std::vector<std::string> lines;
  for (absl::string_view l : absl::StrSplit(c.status().message(), '\n')) lines.emplace_back(l);
  EXPECT_THAT(lines,
              ElementsAre(StartsWith("multi.toml:2: kafka.auto_offset_reset: unknown value"),
                          StartsWith("multi.toml:4: redis.url: bad database number"),
                          StartsWith("multi.toml:6: es.bulk_max_bytes: value 0 too small"),
                          StartsWith("multi.toml:8: state.dirr: unknown key (did you mean "
                                     "`state.dir`?)"),
                          StartsWith("multi.toml:10: jobs.time_zone: unknown time zone"),
                          StartsWith("multi.toml:11: jobs.batch_max_ms: negative value -1")));
}

TEST(ConfigTest, AJobThatIsNotEnabledNeedsNoSection) {
  Config c = LoadOk(
      "[kafka]\n[redis]\n[es]\n[state]\n[jobs]\nenabled = [\"log-split\"]\n"
      "[jobs.log-split]\nsource_topic = \"MY_LOGS\"\n");
  EXPECT_THAT(c.jobs.enabled, ElementsAre("log-split"));
  EXPECT_EQ(c.jobs.log_split.source_topic, "MY_LOGS");
  EXPECT_EQ(c.NeededServices(), (ServiceNeeds{true, false, false}));
  EXPECT_EQ(c.NeededServices("db-split"), (ServiceNeeds{true, true, false}));
  EXPECT_EQ(c.NeededServices("order-wide"), (ServiceNeeds{true, true, true}));
  EXPECT_EQ(c.NeededServices("nope"), (ServiceNeeds{}));
}

TEST(ConfigTest, APresentSectionOfADisabledJobIsStillChecked) {
  std::vector<std::string> p = Problems(
      "[kafka]\n[redis]\n[es]\n[state]\n[jobs]\nenabled = [\"log-split\"]\n[jobs.dau]\n"
      "max_futur = 5\n");
  EXPECT_THAT(p, ElementsAre("t.toml:8: jobs.dau.max_futur: unknown key (did you mean "
                             "`jobs.dau.max_future`?)"));
}

TEST(ConfigTest, EmptyJobListIsAnError) {
  std::vector<std::string> p = Problems("[kafka]\n[redis]\n[es]\n[state]\n[jobs]\nenabled = []\n");
  EXPECT_THAT(p, ElementsAre("t.toml:6: jobs.enabled: no job enabled (expected at least one of "
                             "log-split, db-split, dau, order-wide)"));
}

TEST(ConfigTest, StateFingerprintIsStableAndFollowsWhatStateDependsOn) {
  Config a = LoadOk(kMinimal);
  EXPECT_EQ(StateFingerprint(a, "dau"),
            "rtdw-topics/1 job=dau source_topic=DWD_PAGE_LOG_TOPIC time_zone=Asia/Shanghai "
            "index_prefix=gmall_dau_info_ retention_days=2");
  EXPECT_EQ(StateFingerprint(a, "order-wide"),
            "rtdw-topics/1 job=order-wide order_topic=DWD_ORDER_INFO_I "
            "detail_topic=DWD_ORDER_DETAIL_I time_zone=Asia/Shanghai "
            "index_prefix=gmall_order_wide_ join_ttl=86400");
  EXPECT_EQ(StateFingerprint(a, "unknown"), "");
  Config b = LoadOk(std::string(kMinimal) +
                    "[jobs.dau]\nsource_topic = \"OTHER\"\n"
                    "max_future = 5\n");
  EXPECT_NE(StateFingerprint(a, "dau"), StateFingerprint(b, "dau"));
  for (const char* extra :
       {"[jobs.dau]\ntime_zone = \"UTC\"\n", "[jobs.dau]\nindex_prefix = \"x_\"\n",
        "[dedup]\nretention_days = 3\n"}) {
    Config c = LoadOk(std::string(kMinimal) + extra);
    EXPECT_NE(StateFingerprint(a, "dau"), StateFingerprint(c, "dau")) << extra;
  }
  Config e = LoadOk(std::string(kMinimal) + "[jobs.order-wide]\njoin_ttl = 60\n");
  EXPECT_THAT(StateFingerprint(e, "order-wide"), HasSubstr(" join_ttl=60"));
  // Only what state depends on counts: a changed tuning key keeps the fingerprint.
  Config d = LoadOk(std::string(kMinimal) + "[jobs.log-split]\nmax_depth = 10\n");
  EXPECT_EQ(StateFingerprint(a, "log-split"), StateFingerprint(d, "log-split"));
  EXPECT_THAT(StateFingerprint(a, "log-split"),
              AllOf(HasSubstr("source_topic=ODS_BASE_LOG"), HasSubstr("page_topic=")));
}

TEST(ConfigTest, DumpIsValidTomlThatLoadsBackToTheSameDump) {
  Config c = LoadOk(std::string(kMinimal) + "[jobs.dau]\ntime_zone = \"UTC\"\n");
  std::string dump = DumpConfig(c);
  EXPECT_THAT(dump, HasSubstr("[jobs.dau]\ntime_zone = \"UTC\""));
  absl::StatusOr<Config> again = LoadConfigFromString(dump, "dump.toml", FakeEnv());
  ASSERT_TRUE(again.ok()) << Message(again) << "\n" << dump;
  again->source = c.source;
  EXPECT_EQ(DumpConfig(*again), dump);
}

TEST(ConfigTest, ShippedExampleAndLocalConfigsLoadCleanly) {
  for (const char* file : {"/deploy/rtdw.example.toml", "/config/local.toml"}) {
    absl::StatusOr<Config> c = LoadConfig(std::string(RTDW_SOURCE_DIR) + file, FakeEnv());
    ASSERT_TRUE(c.ok()) << file << ":\n" << Message(c);
    EXPECT_EQ(c->kafka.brokers, "127.0.0.1:9092") << file;
    EXPECT_EQ(c->redis.port, 6379) << file;
    EXPECT_THAT(c->es.urls, ElementsAre("http://127.0.0.1:9200")) << file;
    EXPECT_EQ(c->state.dir, "./var/state") << file;
    EXPECT_EQ(c->jobs.enabled.size(), 4u) << file;
  }
}

TEST(ConfigTest, ExampleDocumentsEveryKeyTheLoaderKnows) {
  // Every key of the dump (the loader's full key set) appears in the example, set or commented.
  std::ifstream in(std::string(RTDW_SOURCE_DIR) + "/deploy/rtdw.example.toml");
  std::string example((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  for (const char* key : {"brokers",
                          "group",
                          "auto_offset_reset",
                          "[kafka.properties]",
                          "url",
                          "password",
                          "user",
                          "api_key",
                          "ca_file",
                          "verify_tls",
                          "bulk_max_bytes",
                          "max_response_mb",
                          "dir",
                          "block_cache_mb",
                          "sync",
                          "min_free_mb",
                          "retention_days",
                          "timeout",
                          "listen",
                          "level",
                          "format",
                          "progress_interval",
                          "enabled",
                          "time_zone",
                          "batch_max_records",
                          "batch_max_ms",
                          "source_topic",
                          "start_topic",
                          "page_topic",
                          "display_topic",
                          "action_topic",
                          "error_topic",
                          "dead_letter_topic",
                          "max_record_bytes",
                          "max_depth",
                          "max_array_items",
                          "fact_tables",
                          "dim_tables",
                          "index_prefix",
                          "max_future",
                          "order_topic",
                          "detail_topic",
                          "join_ttl",
                          "idle_input"}) {
    EXPECT_THAT(example, HasSubstr(key));
  }
}

}  // namespace
}  // namespace rtdw
