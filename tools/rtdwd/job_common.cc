#include "tools/rtdwd/job_common.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "core/backoff.h"
#include "core/dead_letter.h"
#include "core/event_time.h"
#include "core/json_limits.h"
#include "core/status_util.h"
#include "spdlog/spdlog.h"

namespace rtdw {

namespace {

// The number of days, today included, whose indices of `job` a lost store's state covered.
int FreshStoreWindowDays(const Config& config, const std::string& job) {
  if (job == kJobDau) return std::max(1, config.dedup.retention_days);
  const int64_t ttl_days = (config.jobs.order_wide.join_ttl.count() + 86399) / 86400;
  return static_cast<int>(std::max<int64_t>(2, ttl_days + 1));
}

// The indices of `prefix` ES holds (GET _cat/indices/<prefix>*), by name.
absl::StatusOr<std::vector<std::string>> JobIndices(EsClient& es, const std::string& prefix) {
  RTDW_ASSIGN_OR_RETURN(HttpResponse r, es.Perform("GET", absl::StrCat("/_cat/indices/", prefix,
                                                                       "*?format=json&h=index")));
  if (r.status != 200) {
    return absl::UnavailableError(absl::StrCat("GET _cat/indices/", prefix, "*: HTTP ", r.status,
                                               ": ", r.body.substr(0, 200)));
  }
  rapidjson::Document d;
  if (ParseJsonSafely(r.body, JsonLimits{}, &d) != JsonStatus::kOk || !d.IsArray()) {
    return absl::UnavailableError(
        absl::StrCat("GET _cat/indices/", prefix, "*: not a JSON array: ", r.body.substr(0, 200)));
  }
  std::vector<std::string> out;
  for (const auto& row : d.GetArray()) {
    if (row.IsObject() && row.HasMember("index") && row["index"].IsString()) {
      out.emplace_back(row["index"].GetString(), row["index"].GetStringLength());
    }
  }
  return out;
}

}  // namespace

absl::Status CheckFreshStore(const Config& config, const std::string& job,
                             const std::string& config_path, const std::function<bool()>& stopped,
                             const std::function<void(std::string_view)>& problem) {
  if (job != kJobDau && job != kJobOrderWide) return absl::OkStatus();
  // Group mode: a member starts empty by design (scaling out) and rebuilds each partition it is
  // given — dau's de-dup from ES, order-wide's join by replay (docs/OPERATIONS.md, "Scaling").
  if (config.kafka.group) return absl::OkStatus();
  if (!StoreMissing(config.state.dir, job)) return absl::OkStatus();
  const std::string& prefix =
      job == kJobDau ? config.jobs.dau.index_prefix : config.jobs.order_wide.index_prefix;
  const absl::TimeZone tz = config.jobs.Common(job)->tz;
  const int window = FreshStoreWindowDays(config, job);
  auto client = EsClient::Create(JobEsClientOptions(config, job));
  if (!client.ok()) return client.status();
  // Elasticsearch unreachable: asked again until it answers (never a silent creation).
  RetryOptions retry;
  retry.backoff = kServiceWaitBackoff;
  retry.stop = stopped;
  retry.attempt_once_despite_stop = true;
  retry.what = "checking Elasticsearch for the job's indices";
  retry.on_retry = [&](const absl::Status& st, std::chrono::milliseconds) {
    problem(absl::StrCat("waiting for Elasticsearch at ", config.es.urls.front(),
                         ": no state store yet, and whether Elasticsearch holds the job's recent "
                         "indices cannot be checked (",
                         std::string(st.message()),
                         "); the store is created only once it answers that it holds none"));
  };
  auto indices =
      RetryUntil<std::vector<std::string>>(retry, [&] { return JobIndices(**client, prefix); });
  if (absl::IsCancelled(indices.status())) {
    return absl::CancelledError("stopped while checking Elasticsearch for the job's indices");
  }
  if (!indices.ok()) return indices.status();
  const absl::CivilDay today = absl::ToCivilDay(absl::Now(), tz);
  const absl::CivilDay first = today - (window - 1);
  std::vector<std::string> held;
  for (const std::string& index : *indices) {
    auto day = ParseCivilDay(std::string_view(index).substr(prefix.size()));
    if (day.ok() && *day >= first) held.push_back(index);
  }
  std::sort(held.begin(), held.end());
  if (held.empty()) {
    spdlog::info(
        "{}: no state store yet and Elasticsearch holds no {}* index of the last {} days: "
        "creating an empty store",
        job, prefix, window);
    return absl::OkStatus();
  }
  const std::string cli =
      config_path.empty() ? std::string("rtdw") : absl::StrCat("rtdw --config ", config_path);
  return absl::FailedPreconditionError(absl::StrCat(
      "no state store for job ", job, " at ", StorePath(config.state.dir, job),
      ", but Elasticsearch holds its indices of the last ", window, " days (",
      absl::StrJoin(held, ", "), "): refusing to create an empty store — ",
      job == kJobDau ? "the de-dup state of those days would be gone and users counted again"
                     : "the join rows waiting for a partner would be gone",
      ". Restore the state first (docs/OPERATIONS.md, \"Disaster recovery\": `", cli,
      " state init --job ", job, "`, `offsets import-group`, ",
      job == kJobDau ? "`dedup restore --from-es --day D` for each of those days"
                     : "`offsets set --to-earliest` of both source topics",
      ") or a backup (`", cli, " backup restore --from DIR --job ", job,
      "`); to start empty on purpose, create the store with `", cli, " state init --job ", job,
      "`, then start rtdwd"));
}

KafkaConsumerOptions JobConsumerOptions(const Config& config, const std::string& job) {
  KafkaConsumerOptions co;
  co.brokers = config.kafka.brokers;
  co.group_id = absl::StrCat(config.kafka.group.value_or("rtdw"), ".", job);
  co.properties = config.kafka.ResolvedProperties();
  // The prefetch is KafkaConsumerOptions' default, bounded by bytes (connectors/kafka/consumer.h;
  // rtdw-bench's floors use the same); [kafka.properties] queued.* / fetch.max.bytes override it.
  // Partitions added to a source topic are noticed within a minute (group mode: librdkafka's
  // metadata refresh then rebalances; lone mode: BatchRunner checks itself, NewPartitionWatch).
  co.properties.try_emplace("topic.metadata.refresh.interval.ms", "60000");
  co.log = KafkaLogToSpdlog(job);
  return co;
}

std::function<void(int, std::string_view, std::string_view)> KafkaLogToSpdlog(std::string who) {
  return [who = std::move(who)](int level, std::string_view facility, std::string_view message) {
    // syslog levels: 0-3 error, 4 warning, 5-6 info, 7 debug.
    spdlog::level::level_enum l = level <= 3   ? spdlog::level::err
                                  : level == 4 ? spdlog::level::warn
                                  : level <= 6 ? spdlog::level::info
                                               : spdlog::level::debug;
    spdlog::log(l, "{}: kafka: {}: {}", who, std::string(facility), std::string(message));
  };
}

RedisClientOptions JobRedisClientOptions(const Config& config) {
  RedisClientOptions o;
  o.host = config.redis.host;
  o.port = config.redis.port;
  o.db = config.redis.db;
  o.username = config.redis.username;
  if (config.redis.password) o.password = config.redis.password->value;
  return o;
}

EsClientOptions JobEsClientOptions(const Config& config, const std::string& who) {
  EsClientOptions o;
  o.urls = config.es.urls;
  if (config.es.user) o.user = *config.es.user;
  if (config.es.password) o.password = config.es.password->value;
  if (config.es.api_key) o.api_key = config.es.api_key->value;
  if (config.es.ca_file) o.ca_file = *config.es.ca_file;
  o.verify_tls = config.es.verify_tls;
  o.bulk_max_bytes = static_cast<size_t>(config.es.bulk_max_bytes);
  o.max_response_bytes = static_cast<size_t>(config.es.max_response_mb) << 20;
  o.warn = [who](std::string_view m) { spdlog::warn("{}: es: {}", who, std::string(m)); };
  return o;
}

KafkaProducerOptions JobProducerOptions(const Config& config, const std::string& who) {
  KafkaProducerOptions po;
  po.brokers = config.kafka.brokers;
  po.properties = config.kafka.ResolvedProperties();
  po.log = KafkaLogToSpdlog(who);
  return po;
}

SourceFactory JobSourceFactory(const Config& config, const std::string& job, bool range) {
  return [&config, job,
          range](const SourceMetrics& metrics) -> absl::StatusOr<std::unique_ptr<RecordSource>> {
    KafkaConsumerOptions co = JobConsumerOptions(config, job);
    if (range) co.assignment_strategy = "range";
    co.fetch_wakes = metrics.fetch_wakes;
    auto consumer = KafkaConsumer::Create(co);
    if (!consumer.ok()) return consumer.status();
    return std::unique_ptr<RecordSource>(std::move(*consumer));
  };
}

}  // namespace rtdw
