#include "tools/rtdwd/probes.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "connectors/es/es_client.h"
#include "connectors/kafka/producer.h"
#include "connectors/redis/redis_client.h"
#include "spdlog/spdlog.h"
#include "tools/rtdwd/job_common.h"

namespace rtdw {
namespace {

using Clock = std::chrono::steady_clock;

constexpr auto kUpInterval = std::chrono::seconds(3);
constexpr int kConnectTimeoutMs = 2000;

}  // namespace

ServiceMonitor::ServiceMonitor(const Config& config, MetricsRegistry* metrics) {
  const ServiceNeeds needs = config.NeededServices();
  auto add = [&](std::string name, std::string where, std::string fix) {
    Service s;
    s.name = std::move(name);
    s.where = std::move(where);
    s.fix = std::move(fix);
    s.up_gauge =
        metrics->GetGauge("rtdw_service_up", "1 when the service answered the last probe, else 0",
                          {{"service", s.name}});
    s.up_gauge->Set(1);
    services_.push_back(std::move(s));
  };
  if (needs.kafka) {
    // The jobs' own client settings ([kafka.properties]: TLS, SASL), so that the probe reaches
    // the brokers exactly as they do.
    auto producer = KafkaProducer::Create(JobProducerOptions(config, "probe"));
    if (producer.ok()) {
      kafka_ = std::move(*producer);
    } else {
      fatal_ = producer.status();
    }
    add("kafka", config.kafka.brokers,
        "start Kafka or fix kafka.brokers (env RTDW_KAFKA_BROKERS); the jobs wait and retry");
  }
  if (needs.redis) {
    RedisClientOptions ro;
    ro.host = config.redis.host;
    ro.port = config.redis.port;
    ro.db = config.redis.db;
    ro.username = config.redis.username;
    if (config.redis.password) ro.password = config.redis.password->value;
    ro.timeout = std::chrono::milliseconds(kConnectTimeoutMs);
    redis_ = std::make_unique<RedisClient>(ro);
    add("redis", absl::StrCat(config.redis.host, ":", config.redis.port),
        "start Redis or fix redis.url (env RTDW_REDIS_URL); the jobs wait and retry");
  }
  if (needs.es) {
    EsClientOptions o = JobEsClientOptions(config, "probe");
    o.connect_timeout = std::chrono::milliseconds(kConnectTimeoutMs);
    o.request_timeout = std::chrono::milliseconds(5000);
    o.read_retries = 0;
    o.warn = [](std::string_view m) { spdlog::debug("probe: elasticsearch: {}", std::string(m)); };
    auto client = EsClient::Create(o);
    if (client.ok()) {
      es_ = std::move(*client);
    } else {
      fatal_ = client.status();
    }
    add("elasticsearch", absl::StrJoin(config.es.urls, ","),
        "start it or fix es.url (env RTDW_ES_URL); the jobs wait and retry");
  }
}

ServiceMonitor::~ServiceMonitor() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
}

absl::Status ServiceMonitor::Probe(const Service& service) {
  if (service.name == "kafka") {
    if (!kafka_) return absl::OkStatus();  // fatal_ says why
    return kafka_->Ping(std::chrono::milliseconds(kConnectTimeoutMs));
  }
  if (service.name == "redis") return redis_->Ping();
  if (service.name == "elasticsearch") {
    if (!es_) return absl::OkStatus();  // fatal_ says why
    auto info = es_->Info();
    if (!info.ok()) return info.status();
    spdlog::debug("probe: elasticsearch {} ({})", info->version, info->cluster_name);
    return absl::OkStatus();
  }
  return absl::OkStatus();
}

void ServiceMonitor::ProbeOne(Service& service) {
  absl::Status st = Probe(service);
  std::lock_guard<std::mutex> lock(mu_);
  service.probed = true;
  if (st.ok()) {
    if (!service.up) spdlog::info("{} at {} is reachable again", service.name, service.where);
    service.up = true;
    service.problem.clear();
    service.backoff.Reset();
    service.next_probe = Clock::now() + kUpInterval;
    service.up_gauge->Set(1);
    return;
  }
  if (absl::IsFailedPrecondition(st) && service.name == "elasticsearch") {
    // Reachable, but not usable (version): waiting will not fix it.
    fatal_ = absl::FailedPreconditionError(
        absl::StrCat("Elasticsearch at ", service.where, ": ", std::string(st.message()),
                     " — point es.url at a supported cluster"));
  }
  auto delay = service.backoff.NextDelay();
  service.problem = absl::StrCat(service.name, " unreachable at ", service.where, " (",
                                 std::string(st.message()), ") — ", service.fix);
  if (service.up) {  // it was up (or never probed): say so once per outage
    spdlog::warn("{} (probing again with backoff, up to 15 s)", service.problem);
  }
  service.up = false;
  service.next_probe = Clock::now() + delay;
  service.up_gauge->Set(0);
}

void ServiceMonitor::Start() {
  for (Service& s : services_) ProbeOne(s);
  thread_ = std::thread([this] { Loop(); });
}

void ServiceMonitor::Loop() {
  while (!stop_.load()) {
    for (Service& s : services_) {
      if (stop_.load()) return;
      Clock::time_point due;
      {
        std::lock_guard<std::mutex> lock(mu_);
        due = s.next_probe;
      }
      if (Clock::now() >= due) ProbeOne(s);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

std::vector<std::string> ServiceMonitor::Problems() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<std::string> out;
  for (const Service& s : services_) {
    if (!s.up) out.push_back(s.problem);
  }
  return out;
}

absl::Status ServiceMonitor::Fatal() const {
  std::lock_guard<std::mutex> lock(mu_);
  return fatal_;
}

}  // namespace rtdw
