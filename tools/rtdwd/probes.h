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
//
// Thread-safety: Problems() and Fatal() may be called from any thread (the HTTP server's) while
// the monitor's own thread probes; Start(), Stop() and the destructor are called by the owner.
// A probe runs outside the lock (it may take seconds) and records what it found under mu_. The
// clients are probed by one thread at a time (Start() before the probing thread exists, then that
// thread only). Stop() closes the Kafka client while a Ping may still be under way: that Close is
// a Flush of nothing (thread-safe) plus the deadline its destructor reads, and the destructor runs
// only after the probing thread is joined.
#ifndef RTDW_TOOLS_RTDWD_PROBES_H_
#define RTDW_TOOLS_RTDWD_PROBES_H_

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
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
  // Stops the probing thread and joins it (a probe under way ends within its own timeout).
  ~ServiceMonitor();
  ServiceMonitor(const ServiceMonitor&) = delete;
  ServiceMonitor& operator=(const ServiceMonitor&) = delete;

  // Probes every service once, now, logging what is down (the start-up check); then keeps
  // probing on a thread of its own until destroyed. Called once.
  void Start();
  // One line per service that is down, for /health (empty when none).
  std::vector<std::string> Problems() const ABSL_LOCKS_EXCLUDED(mu_);
  // Non-OK when a service can never be used as it is (the daemon exits 1).
  absl::Status Fatal() const ABSL_LOCKS_EXCLUDED(mu_);
  // A stop: no probe starts after this; the one under way ends within its own timeout (2-5 s),
  // and the destructor does not wait for the Kafka client past `deadline` (+1 s).
  void Stop(std::chrono::steady_clock::time_point deadline);

 private:
  // What a service is and how it shows: fixed once the constructor has returned.
  struct Target {
    std::string name;           // "kafka" | "redis" | "elasticsearch"
    std::string where;          // brokers / host:port / URLs
    std::string fix;            // what to do when it is down
    Gauge* up_gauge = nullptr;  // thread-safe
  };
  // What the probes found (one per target, same index).
  struct Finding {
    bool up = true;
    std::string problem;
    Backoff backoff{BackoffOptions{std::chrono::milliseconds(500), std::chrono::milliseconds(500),
                                   std::chrono::milliseconds(15000), 2.0}};
    std::chrono::steady_clock::time_point next_probe{};
  };
  // Asks the service (no lock held: it may take seconds).
  absl::Status Probe(const Target& target) ABSL_LOCKS_EXCLUDED(mu_);
  // Probes target `i` and records the result in findings_[i].
  void ProbeOne(size_t i) ABSL_LOCKS_EXCLUDED(mu_);
  void Loop() ABSL_LOCKS_EXCLUDED(mu_);

  // The clients the probes use (see the thread-safety note at the top).
  std::unique_ptr<KafkaProducer> kafka_;
  std::unique_ptr<RedisClient> redis_;
  std::unique_ptr<EsClient> es_;
  std::vector<Target> targets_;  // fixed after the constructor: read without the lock
  mutable absl::Mutex mu_;
  std::vector<Finding> findings_ ABSL_GUARDED_BY(mu_);  // findings_[i] is of targets_[i]
  absl::Status fatal_ ABSL_GUARDED_BY(mu_);
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace rtdw

#endif  // RTDW_TOOLS_RTDWD_PROBES_H_
