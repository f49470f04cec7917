// The rtdw configuration: one TOML file (docs/CONFIG.md), loaded and validated in one place.
//
// Promise: a Config returned by LoadConfig* is complete and valid — every key holds its effective
// value (the file's, else the environment override's, else the documented default), every URL is
// parsed, every time zone exists, every secret is resolved. Nothing downstream needs to re-check.
//
// Errors: every semantic problem in the file is reported at once, one per line, as
//   FILE:LINE: KEY: what is wrong (what was expected)
// where KEY is the dotted path (`jobs.dau.max_future`, `jobs.enabled[1]`). Environment overrides
// are reported as `env RTDW_NAME: KEY: ...`. A TOML syntax error stops at the first one, reported
// as `FILE:LINE: TOML syntax error at column C: ...`. A missing required section is reported at
// line 1. No error message or dump ever contains a secret (kafka.properties values, es.password,
// es.api_key, redis passwords).
//
// Relative paths (state.dir, es.ca_file, secret files) are relative to the process's working
// directory, not to the config file.
#ifndef RTDW_CORE_CONFIG_CONFIG_H_
#define RTDW_CORE_CONFIG_CONFIG_H_

#include <array>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace rtdw {

// The four jobs, by their config / CLI names.
inline constexpr std::string_view kJobLogSplit = "log-split";
inline constexpr std::string_view kJobDbSplit = "db-split";
inline constexpr std::string_view kJobDau = "dau";
inline constexpr std::string_view kJobOrderWide = "order-wide";
inline constexpr std::array<std::string_view, 4> kJobNames = {kJobLogSplit, kJobDbSplit, kJobDau,
                                                              kJobOrderWide};
bool IsKnownJob(std::string_view job);

// Every key the loader accepts, as sorted dotted paths ("kafka.brokers", "jobs.dau.max_future";
// "kafka.properties" is the free-form table of librdkafka properties); sections are not listed.
// docs/CONFIG.md documents exactly these (tests/config/config_doc_test.cc keeps them equal).
std::vector<std::string> AcceptedConfigKeys();

// A secret: resolved at load time from an inline string, `{ env = "NAME" }` or
// `{ file = "/path" }` (the file's content without trailing CR/LF). Never print `value`;
// `origin` ("inline", "env NAME", "file /path") is safe to show.
struct Secret {
  std::string value;
  std::string origin;
};

struct HostPort {
  std::string host;  // IPv6 literals without brackets
  int port = 0;
  friend bool operator==(const HostPort&, const HostPort&) = default;
};

enum class AutoOffsetReset { kEarliest, kLatest, kError };
enum class LogLevel { kTrace, kDebug, kInfo, kWarn, kError };
enum class LogFormat { kText, kJson };
std::string_view ToString(AutoOffsetReset v);  // "earliest" | "latest" | "error"
std::string_view ToString(LogLevel v);         // "trace" | ... | "error"
std::string_view ToString(LogFormat v);        // "text" | "json"

// A [kafka.properties] value: plain text, or a secret (never logged).
using KafkaProperty = std::variant<std::string, Secret>;

struct KafkaConfig {
  std::string brokers = "127.0.0.1:9092";  // normalised: "host:port,host:port"
  std::vector<HostPort> broker_list = {{"127.0.0.1", 9092}};
  std::optional<std::string> group;  // absent: assign mode, group.id "rtdw.<job>" for lag only
  AutoOffsetReset auto_offset_reset = AutoOffsetReset::kEarliest;
  // Group mode: how long a revoke waits for the journal entries owed to ES before it gives the
  // partitions up without them (fenced: never sent; the next owner processes their records again
  // from the hand-over offset). At most half of max.poll.interval.ms (checked at load).
  std::chrono::seconds revoke_timeout{10};
  // librdkafka properties passed through (none of the refused ones). Integer, float and boolean
  // TOML values are kept as their text; unquoted dotted keys are joined back ("linger.ms").
  std::map<std::string, KafkaProperty> properties;

  // The properties as plain strings (secrets resolved), for rd_kafka_conf_set. Do not log.
  std::map<std::string, std::string> ResolvedProperties() const;
};

struct RedisConfig {
  // The URL with any password replaced by "***": safe to log. Connect with the parsed fields.
  std::string url = "redis://127.0.0.1:6379/0";
  std::string host = "127.0.0.1";
  int port = 6379;
  int db = 0;
  std::optional<std::string> username;  // redis://user:password@... (Redis 6 ACL)
  std::optional<Secret> password;       // from the URL or the `password` key
};

struct EsConfig {
  std::vector<std::string> urls = {
      "http://127.0.0.1:9200"};     // http(s)://host[:port][/path], no '/'
  std::optional<std::string> user;  // set together with password
  std::optional<Secret> password;
  std::optional<Secret> api_key;       // exclusive with user/password
  std::optional<std::string> ca_file;  // checked readable at load
  bool verify_tls = true;
  int64_t bulk_max_bytes = 5242880;
  int64_t max_response_mb = 256;  // a larger ES answer is refused (and counted)
};

struct StateConfig {
  std::string dir = "./var/state";  // one RocksDB per job under dir/<job>
  int64_t block_cache_mb = 256;
  bool sync = true;
  int64_t min_free_mb = 64;  // commits wait while the state disk has less free
};

struct DedupConfig {
  int retention_days = 2;
};

struct ShutdownConfig {
  std::chrono::seconds timeout{30};
};

struct HttpConfig {
  std::string listen = "127.0.0.1:9464";  // "" turns the HTTP server off
  std::string host = "127.0.0.1";         // parsed from listen (empty when off)
  int port = 9464;                        // 0: any free port
  bool enabled() const { return !listen.empty(); }
};

struct LogConfig {
  LogLevel level = LogLevel::kInfo;
  LogFormat format = LogFormat::kText;
  std::chrono::seconds progress_interval{10};  // 0 turns progress lines off
};

// Settings every job section may override; holds the job's effective values after loading.
struct JobCommon {
  std::string time_zone = "Asia/Shanghai";
  absl::TimeZone tz;  // time_zone, loaded (set by the loader; UTC in a default-constructed Config)
  int64_t batch_max_records = 10000;
  std::chrono::milliseconds batch_max_ms{200};
};

struct LogSplitJob : JobCommon {
  std::string source_topic = "ODS_BASE_LOG";
  std::string start_topic = "DWD_START_LOG_TOPIC";
  std::string page_topic = "DWD_PAGE_LOG_TOPIC";
  std::string display_topic = "DWD_PAGE_DISPLAY_TOPIC";
  std::string action_topic = "DWD_PAGE_ACTION_TOPIC";
  std::string error_topic = "DWD_ERROR_LOG_TOPIC";
  std::string dead_letter_topic = "DWD_DEAD_LETTER";
  int64_t max_record_bytes = 524288;
  int max_depth = 64;
  int max_array_items = 1000;
};

struct DbSplitJob : JobCommon {
  std::string source_topic = "ODS_BASE_DB";
  std::string dead_letter_topic = "DWD_DEAD_LETTER";
  std::vector<std::string> fact_tables = {"order_info", "order_detail"};
  std::vector<std::string> dim_tables = {"user_info", "base_province"};
};

struct DauJob : JobCommon {
  std::string source_topic = "DWD_PAGE_LOG_TOPIC";
  std::string index_prefix = "gmall_dau_info_";
  std::chrono::seconds max_future{86400};
};

struct OrderWideJob : JobCommon {
  std::string order_topic = "DWD_ORDER_INFO_I";
  std::string detail_topic = "DWD_ORDER_DETAIL_I";
  std::string index_prefix = "gmall_order_wide_";
  std::chrono::seconds join_ttl{86400};
  std::chrono::seconds max_future{86400};
  // An input topic partition at its end for this long stops holding the join's watermark back.
  std::chrono::seconds idle_input{60};
};

struct JobsConfig {
  std::vector<std::string> enabled = {std::string(kJobLogSplit), std::string(kJobDbSplit),
                                      std::string(kJobDau), std::string(kJobOrderWide)};
  // Defaults for the job sections (each job's own fields hold the effective values).
  std::string time_zone = "Asia/Shanghai";
  int64_t batch_max_records = 10000;
  std::chrono::milliseconds batch_max_ms{200};

  // Always filled (defaults when the section is absent), enabled or not.
  LogSplitJob log_split;
  DbSplitJob db_split;
  DauJob dau;
  OrderWideJob order_wide;

  bool IsEnabled(std::string_view job) const;
  // The effective common settings of a known job; nullptr for an unknown name.
  const JobCommon* Common(std::string_view job) const;
};

// The services a set of jobs connects to.
struct ServiceNeeds {
  bool kafka = false;
  bool redis = false;
  bool es = false;
  friend bool operator==(const ServiceNeeds&, const ServiceNeeds&) = default;
};

struct Config {
  std::string source;  // the file (or display name) it was loaded from
  KafkaConfig kafka;
  RedisConfig redis;
  EsConfig es;
  StateConfig state;
  DedupConfig dedup;
  ShutdownConfig shutdown;
  HttpConfig http;
  LogConfig log;
  JobsConfig jobs;

  // What the enabled jobs need (log-split: kafka; db-split: +redis; dau, order-wide: +redis, es).
  // With `job` non-empty, what that one job needs (enabled or not; nothing for an unknown name).
  ServiceNeeds NeededServices(std::string_view job = {}) const;
};

// Looks up an environment variable; nullopt when unset. Injectable for tests.
using EnvLookup = std::function<std::optional<std::string>(const std::string& name)>;
// getenv().
EnvLookup ProcessEnv();

// Environment overrides, applied after the file. Unset or empty means no override.
inline constexpr std::string_view kEnvKafkaBrokers = "RTDW_KAFKA_BROKERS";
inline constexpr std::string_view kEnvRedisUrl = "RTDW_REDIS_URL";
inline constexpr std::string_view kEnvEsUrl = "RTDW_ES_URL";  // comma-separated
inline constexpr std::string_view kEnvStateDir = "RTDW_STATE_DIR";

// The outcome of loading: `problems` empty means `config` is complete and valid.
struct ConfigLoadResult {
  Config config;
  std::vector<std::string> problems;  // one line each, in file order, then the env ones
  bool not_found = false;             // the file does not exist
  bool ok() const { return problems.empty(); }
};

// Reads, parses and validates `path`. Never throws.
ConfigLoadResult LoadConfigDetailed(const std::string& path, const EnvLookup& env = ProcessEnv());
// Same for TOML text; `display_name` takes the file's place in messages.
ConfigLoadResult LoadConfigFromStringDetailed(std::string_view text,
                                              const std::string& display_name,
                                              const EnvLookup& env = ProcessEnv());

// As above, as a status: NotFoundError naming the path for a missing file, otherwise
// InvalidArgumentError whose message is the problems joined by '\n'. Any error is a bad config
// (rtdwd exit code 2).
absl::StatusOr<Config> LoadConfig(const std::string& path, const EnvLookup& env = ProcessEnv());
absl::StatusOr<Config> LoadConfigFromString(std::string_view text, const std::string& display_name,
                                            const EnvLookup& env = ProcessEnv());

// A readable dump of the effective config, valid TOML, every secret (and the redis URL's
// password) shown as "***" with its origin in a comment. Safe to log.
std::string DumpConfig(const Config& config);

// A stable, human-readable fingerprint of what a job's state depends on (docs/STATE.md
// "State fingerprint"): its topic names (source and output topics, in a fixed
// order), then for dau `time_zone`, `index_prefix`, `retention_days` (dedup.retention_days) and
// for order-wide `time_zone`, `index_prefix`, `join_ttl`, e.g. "rtdw-topics/1 job=dau
// source_topic=DWD_PAGE_LOG_TOPIC time_zone=Asia/Shanghai index_prefix=gmall_dau_info_
// retention_days=2". The state store keeps it and names each key that changed (the partition
// counts are added by the daemon once Kafka answers). Empty for an unknown job.
std::string StateFingerprint(const Config& config, std::string_view job);

}  // namespace rtdw

#endif  // RTDW_CORE_CONFIG_CONFIG_H_
