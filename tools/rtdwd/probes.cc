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
    Target t;
    t.name = std::move(name);
    t.where = std::move(where);
    t.fix = std::move(fix);
    t.up_gauge =
        metrics->GetGauge("rtdw_service_up", "1 when the service answered the last probe, else 0",
                          {{"service", t.name}});
    t.up_gauge->Set(1);
    targets_.push_back(std::move(t));
  };
  if (needs.kafka) {
    // The jobs' own client settings ([kafka.properties]: TLS, SASL), so that the probe reaches
    // the brokers exactly as they do.
    auto producer = KafkaProducer::Create(JobProducerOptions(config, "probe"));
    if (producer.ok()) {
      kafka_ = std::move(*producer);
    } else {
      absl::MutexLock lock(&mu_);
      fatal_ = producer.status();
    }
    add("kafka", config.kafka.brokers,
        "start Kafka or fix kafka.brokers (env RTDW_KAFKA_BROKERS); the jobs wait and retry");
  }
  if (needs.redis) {
    RedisClientOptions ro = JobRedisClientOptions(config);
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
      absl::MutexLock lock(&mu_);
      fatal_ = client.status();
    }
    add("elasticsearch", absl::StrJoin(config.es.urls, ","),
        "start it or fix es.url (env RTDW_ES_URL); the jobs wait and retry");
  }
  absl::MutexLock lock(&mu_);
  findings_.resize(targets_.size());
}

ServiceMonitor::~ServiceMonitor() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
}

void ServiceMonitor::Stop(std::chrono::steady_clock::time_point deadline) {
  stop_ = true;
  // While a probe may still be under way (see the thread-safety note in the header). Now, not in
  // the destructor: Close's flush serves the client's queued log lines, and they must come before
  // the daemon's last line.
  if (kafka_) (void)kafka_->Close(deadline);  // nothing is queued: only bounds the destroy
}

absl::Status ServiceMonitor::Probe(const Target& target) {
  if (target.name == "kafka") {
    if (!kafka_) return absl::OkStatus();  // fatal_ says why
    return kafka_->Ping(std::chrono::milliseconds(kConnectTimeoutMs));
  }
  if (target.name == "redis") return redis_->Ping();
  if (target.name == "elasticsearch") {
    if (!es_) return absl::OkStatus();  // fatal_ says why
    auto info = es_->Info();
    if (!info.ok()) return info.status();
    spdlog::debug("probe: elasticsearch {} ({})", info->version, info->cluster_name);
    return absl::OkStatus();
  }
  return absl::OkStatus();
}

void ServiceMonitor::ProbeOne(size_t i) {
  const Target& target = targets_[i];
  const absl::Status st = Probe(target);
  absl::MutexLock lock(&mu_);
  Finding& f = findings_[i];
  if (st.ok()) {
    if (!f.up) spdlog::info("{} at {} is reachable again", target.name, target.where);
    f.up = true;
    f.problem.clear();
    f.backoff.Reset();
    f.next_probe = Clock::now() + kUpInterval;
    target.up_gauge->Set(1);
    return;
  }
  if (absl::IsFailedPrecondition(st) && target.name == "elasticsearch") {
    // Reachable, but not usable (version): waiting will not fix it.
    fatal_ = absl::FailedPreconditionError(absl::StrCat("Elasticsearch at ", target.where, ": ",
                                                        std::string(st.message()),
                                                        " — point es.url at a supported cluster"));
  }
  auto delay = f.backoff.NextDelay();
  f.problem = absl::StrCat(target.name, " unreachable at ", target.where, " (",
                           std::string(st.message()), ") — ", target.fix);
  if (f.up) {  // it was up (or never probed): say so once per outage
    spdlog::warn("{} (probing again with backoff, up to 15 s)", f.problem);
  }
  f.up = false;
  f.next_probe = Clock::now() + delay;
  target.up_gauge->Set(0);
}

void ServiceMonitor::Start() {
  for (size_t i = 0; i < targets_.size(); ++i) ProbeOne(i);
  thread_ = std::thread([this] { Loop(); });
}

void ServiceMonitor::Loop() {
  while (!stop_.load()) {
    for (size_t i = 0; i < targets_.size(); ++i) {
      if (stop_.load()) return;
      Clock::time_point due;
      {
        absl::MutexLock lock(&mu_);
        due = findings_[i].next_probe;
      }
      if (Clock::now() >= due) ProbeOne(i);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

std::vector<std::string> ServiceMonitor::Problems() const {
  absl::MutexLock lock(&mu_);
  std::vector<std::string> out;
  for (const Finding& f : findings_) {
    if (!f.up) out.push_back(f.problem);
  }
  return out;
}

absl::Status ServiceMonitor::Fatal() const {
  absl::MutexLock lock(&mu_);
  return fatal_;
}

}  // namespace rtdw
