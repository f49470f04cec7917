#include "tools/rtdwd/daemon.h"

#include <atomic>
#include <mutex>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "httplib.h"
#include "spdlog/spdlog.h"
#include "tools/common/signals.h"
#include "tools/rtdwd/jobs.h"

namespace rtdw {
namespace {

using Clock = std::chrono::steady_clock;

// One job on its own thread, with the state the daemon reads from other threads.
struct RunningJob {
  std::unique_ptr<JobRunner> runner;
  std::thread thread;
  std::atomic<bool> started{false};
  std::atomic<bool> failed{false};
  std::atomic<int64_t> last_record_ns{0};  // steady clock of the last batch that had records
  absl::Status status;
};

}  // namespace

Daemon::Daemon(Config config, DaemonOptions options)
    : config_(std::move(config)), options_(options) {}

absl::Status Daemon::Run() {
  spdlog::info("rtdwd starting: config {}, jobs [{}], state {}", config_.source,
               absl::StrJoin(config_.jobs.enabled, ", "), config_.state.dir);

  std::vector<std::unique_ptr<RunningJob>> jobs;
  for (const auto& name : config_.jobs.enabled) {
    auto runner = MakeJobRunner(name, config_, &metrics_);
    if (absl::IsUnimplemented(runner.status())) {
      spdlog::warn("{}; skipped", std::string(runner.status().message()));
      continue;
    }
    if (!runner.ok()) return runner.status();
    auto job = std::make_unique<RunningJob>();
    job->runner = std::move(*runner);
    jobs.push_back(std::move(job));
  }

  // HTTP: /metrics and /health.
  httplib::Server http;
  std::thread http_thread;
  if (config_.http.enabled()) {
    http.Get("/metrics", [&](const httplib::Request&, httplib::Response& res) {
      res.set_content(metrics_.RenderPrometheus(), "text/plain; version=0.0.4");
    });
    http.Get("/health", [&](const httplib::Request&, httplib::Response& res) {
      std::vector<std::string> problems;
      for (const auto& job : jobs) {
        if (job->failed) {
          problems.push_back(absl::StrCat(job->runner->name(), ": failed"));
        } else if (!job->started) {
          problems.push_back(absl::StrCat(job->runner->name(), ": starting"));
        } else if (std::string p = job->runner->HealthProblem(); !p.empty()) {
          problems.push_back(absl::StrCat(job->runner->name(), ": ", p));
        }
      }
      if (problems.empty()) {
        res.set_content("ok\n", "text/plain");
      } else {
        res.status = 503;
        res.set_content(absl::StrJoin(problems, "\n") + "\n", "text/plain");
      }
    });
    int port = config_.http.port == 0 ? http.bind_to_any_port(config_.http.host)
                                      : (http.bind_to_port(config_.http.host, config_.http.port)
                                             ? config_.http.port
                                             : -1);
    if (port < 0) {
      return absl::UnavailableError(
          absl::StrCat("http.listen ", config_.http.listen, ": cannot listen (port in use?)"));
    }
    spdlog::info("http: /metrics and /health on {}:{}", config_.http.host, port);
    http_thread = std::thread([&] { http.listen_after_bind(); });
  }

  std::atomic<bool> stop_jobs{false};
  for (auto& job_ptr : jobs) {
    RunningJob* job = job_ptr.get();
    job->thread = std::thread([job, &stop_jobs] {
      absl::Status st = job->runner->Start();
      if (!st.ok()) {
        job->status = st;
        job->failed = true;
        return;
      }
      job->started = true;
      while (!stop_jobs.load()) {
        auto n = job->runner->RunOnce();
        if (!n.ok()) {
          job->status = n.status();
          job->failed = true;
          return;
        }
        if (*n > 0) {
          job->last_record_ns = Clock::now().time_since_epoch().count();
        }
      }
      job->status = job->runner->Stop();
    });
  }

  const auto started_at = Clock::now();
  absl::Status result = absl::OkStatus();
  while (true) {
    if (StopRequested()) {
      spdlog::info("rtdwd: stop requested, draining");
      break;
    }
    bool any_failed = false;
    for (const auto& job : jobs) any_failed |= job->failed.load();
    if (any_failed) break;
    if (options_.exit_when_idle) {
      bool idle = true;
      for (const auto& job : jobs) {
        if (!job->started || !job->runner->CaughtUp()) {
          idle = false;
          break;
        }
        int64_t last = job->last_record_ns.load();
        auto last_tp = last == 0 ? started_at : Clock::time_point(Clock::duration(last));
        if (Clock::now() - last_tp < *options_.exit_when_idle) idle = false;
      }
      if (jobs.empty() && Clock::now() - started_at >= *options_.exit_when_idle) idle = true;
      if (idle) {
        spdlog::info("rtdwd: every job caught up and idle; exiting (--exit-when-idle)");
        break;
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }

  stop_jobs = true;
  for (auto& job : jobs) {
    if (job->thread.joinable()) job->thread.join();
    if (!job->status.ok()) {
      spdlog::error("job {}: {}", job->runner->name(), std::string(job->status.message()));
      if (result.ok()) {
        result = absl::Status(job->status.code(),
                              absl::StrCat("job ", job->runner->name(), ": ",
                                           std::string(job->status.message())));
      }
    }
  }
  if (http_thread.joinable()) {
    http.stop();
    http_thread.join();
  }
  spdlog::info("rtdwd stopped{}", result.ok() ? " cleanly" : " with an error");
  return result;
}

}  // namespace rtdw
