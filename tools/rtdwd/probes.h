// Start-up checks and watching of the services the enabled jobs use (Kafka, Redis, Elasticsearch).
//
// A service that cannot be reached is something waiting can fix: it is reported (a warning naming
// the service, where rtdwd looks for it and what to do; /health 503 with the same reason;
// `rtdw_service_up{service}` 0) and probed again with backoff, while the jobs wait and retry on
// their own. When it comes back the log says so. A service that answers but cannot be used as it
// is (Elasticsearch of an unsupported major version) is fatal: Fatal() says why, and the daemon
// exits 1 — waiting will not fix it.
//
// Probes: Kafka — a brokers-only metadata request with the jobs' client settings (a broker that
// accepts connections but serves no requests is down); Redis — PING (auth and db included);
// Elasticsearch — GET / (version). While a service is up it is probed every 3 s; while down, with
// backoff from 0.5 s up to 15 s.
#ifndef RTDW_TOOLS_RTDWD_PROBES_H_
#define RTDW_TOOLS_RTDWD_PROBES_H_

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "core/backoff.h"
#include "core/config/config.h"
#include "core/metrics.h"

namespace rtdw {

class RedisClient;
class EsClient;
class KafkaProducer;

class ServiceMonitor {
 public:
  // Watches what `config`'s enabled jobs need (config.NeededServices()).
  ServiceMonitor(const Config& config, MetricsRegistry* metrics);
  ~ServiceMonitor();
  ServiceMonitor(const ServiceMonitor&) = delete;
  ServiceMonitor& operator=(const ServiceMonitor&) = delete;

  // Probes every service once, now, logging what is down (the start-up check); then keeps
  // probing on a thread of its own until destroyed.
  void Start();
  // One line per service that is down, for /health ("" when none).
  std::vector<std::string> Problems() const;
  // Non-OK when a service can never be used as it is (the daemon exits 1).
  absl::Status Fatal() const;
  // A stop: no probe starts after this; the one under way ends within its own timeout (2-5 s),
  // and the destructor does not wait for the Kafka client past `deadline` (+1 s).
  void Stop(std::chrono::steady_clock::time_point deadline);

 private:
  struct Service {
    std::string name;   // "kafka" | "redis" | "elasticsearch"
    std::string where;  // brokers / host:port / URLs
    std::string fix;    // what to do when it is down
    bool up = true;
    bool probed = false;
    std::string problem;
    Backoff backoff{BackoffOptions{std::chrono::milliseconds(500), std::chrono::milliseconds(500),
                                   std::chrono::milliseconds(15000), 2.0}};
    std::chrono::steady_clock::time_point next_probe{};
    Gauge* up_gauge = nullptr;
  };
  absl::Status Probe(const Service& service);
  void ProbeOne(Service& service);
  void Loop();

  std::unique_ptr<KafkaProducer> kafka_;
  std::unique_ptr<RedisClient> redis_;
  std::unique_ptr<EsClient> es_;
  std::vector<Service> services_;  // guarded by mu_ (probing happens outside the lock)
  mutable std::mutex mu_;
  absl::Status fatal_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace rtdw

#endif  // RTDW_TOOLS_RTDWD_PROBES_H_
