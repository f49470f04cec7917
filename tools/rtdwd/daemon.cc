#include "tools/rtdwd/daemon.h"

#include <fcntl.h>
#include <pwd.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "connectors/kafka/destroy.h"
#include "core/config/reload.h"
#include "core/dead_letter.h"
#include "core/engine/record_source.h"
#include "core/process/build_info.h"
#include "core/process/logging.h"
#include "core/process/signals.h"
#include "httplib.h"
#include "spdlog/spdlog.h"
#include "storage/state_store.h"
#include "tools/rtdwd/job_common.h"
#include "tools/rtdwd/jobs.h"
#include "tools/rtdwd/probes.h"
#include "tools/rtdwd/progress.h"
#include "tools/rtdwd/sd_notify.h"

namespace rtdw {
namespace {

using Clock = std::chrono::steady_clock;

// How often the state stores' figures are refreshed for /metrics: every 5 s, or every
// log.progress_interval when that is shorter (so a progress line never shows older figures).
constexpr auto kStatsInterval = std::chrono::seconds(5);
// How long past shutdown.timeout a cancelled job may take to let go (its calls honour their
// timeouts, all bounded by the deadline) before the process exits without it.
constexpr auto kCancelGrace = std::chrono::seconds(3);

std::chrono::milliseconds StatsInterval(const Config& config) {
  const auto progress = config.log.progress_interval;
  if (progress.count() > 0 && progress < kStatsInterval) return progress;
  return kStatsInterval;
}

bool HasJournal(std::string_view job) { return job == kJobDau || job == kJobOrderWide; }

// "user rtdw (uid 998)".
std::string EffectiveUser() {
  uid_t uid = geteuid();
  passwd* pw = getpwuid(uid);
  return absl::StrCat("user ", pw != nullptr ? pw->pw_name : "?", " (uid ", uid, ")");
}

// The status a job stops with when its stored offset is gone from the broker: what was lost,
// the broker's range, and the commands that choose where it resumes.
// In group mode (`group` = kafka.group) the command commits to the job's group, which only
// works while no member of it runs the job.
absl::Status LostOffsetStatus(const absl::Status& polled, const LostOffset& lost,
                              const std::string& job, const std::string& config_path,
                              const std::string& group) {
  const std::string cli =
      config_path.empty() ? std::string("rtdw") : absl::StrCat("rtdw --config ", config_path);
  const std::string set = absl::StrCat(cli, " offsets set --job ", job, " --topic ", lost.topic,
                                       " --partition ", lost.partition);
  std::string choices =
      lost.low >= 0 ? absl::StrCat("`", set, " --to-earliest` (resume at ", lost.low,
                                   ", the oldest record the broker keeps), `--to-latest` (",
                                   lost.high, ": only new records) or `--offset N` with ", lost.low,
                                   " <= N <= ", lost.high)
                    : absl::StrCat("`", set, " --to-earliest` (or `--to-latest`, `--offset N`)");
  return absl::OutOfRangeError(absl::StrCat(
      std::string(polled.message()), ". Job ", job,
      " stopped (the daemon's other jobs go on; /health names it; rtdwd exits 1 when none is "
      "left): choose where it resumes — ",
      choices,
      group.empty()
          ? std::string()
          : absl::StrCat(" (group mode: it commits the offset to the group ", group, ".", job,
                         ", where every member starts; run it once, on any member, while the job "
                         "is stopped on every member)"),
      " — then restart rtdwd (docs/OPERATIONS.md, \"A stored offset is lost\")"));
}

}  // namespace

// One job on its own thread, with what the daemon's other threads read of it. Thread safety: the
// atomics and what `mu` / `store_mu` guard are shared with the main, stats and HTTP threads; the
// rest is the job's thread's (or set before it starts).
struct Daemon::RunningJob {
  std::string name;
  // The job's own copy of the config: its runner keeps references into it. Written only on the
  // job's thread (a reload's live settings, between batches), so the runner never sees it change
  // under its feet.
  std::unique_ptr<Config> config;
  std::unique_ptr<JobRunner> runner;
  std::thread thread;
  std::atomic<bool> started{false};
  std::atomic<bool> failed{false};  // the daemon stops (exit code by its status)
  // A lost stored offset stopped this job alone (its status says how to resume): the daemon's
  // other jobs go on; it exits 1 once they end too.
  std::atomic<bool> stopped_alone{false};
  std::atomic<bool> done{false};
  std::atomic<int64_t> last_record_ns{0};  // steady clock of the last batch that had records

  mutable absl::Mutex mu;
  absl::Status status ABSL_GUARDED_BY(mu);
  std::string start_problem ABSL_GUARDED_BY(mu);  // a start-up check waiting (CheckFreshStore)
  std::optional<Config> pending_reload ABSL_GUARDED_BY(mu);  // live settings to apply
  // Held by the stats thread while it reads the store, so that Stop() cannot close it meanwhile.
  absl::Mutex store_mu;
  bool store_ready ABSL_GUARDED_BY(store_mu) = false;  // runner->store() may be read

  std::unique_ptr<ProgressReporter> progress;   // the main thread's
  std::unique_ptr<StoreMetrics> store_metrics;  // refreshed by the stats thread
  Gauge* up = nullptr;
  Gauge* batch_max_records = nullptr;
  Gauge* batch_max_seconds = nullptr;
  Counter* reloads_applied = nullptr;

  void SetStatus(absl::Status st) {
    absl::MutexLock lock(&mu);
    status = std::move(st);
  }
  absl::Status GetStatus() const {
    absl::MutexLock lock(&mu);
    return status;
  }
  // Applies a pending reload (the job's thread, between batches).
  void ApplyPendingReload() {
    std::optional<Config> next;
    {
      absl::MutexLock lock(&mu);
      next.swap(pending_reload);
    }
    if (!next) return;
    ApplyLiveSettings(*next, config.get());
    const JobCommon* common = config->jobs.Common(name);
    runner->SetBatchLimits(common->batch_max_records, common->batch_max_ms);
    batch_max_records->Set(static_cast<double>(common->batch_max_records));
    batch_max_seconds->Set(std::chrono::duration<double>(common->batch_max_ms).count());
    reloads_applied->Add();
  }
  void SetStartProblem(std::string_view p) {
    std::string line(p);
    {
      absl::MutexLock lock(&mu);
      if (line == start_problem) return;
      start_problem = line;
    }
    if (!line.empty()) spdlog::warn("{}: {}", name, line);
  }
  // The /health line of this job; "" when it is consuming.
  std::string Problem() const {
    if (failed) {
      return absl::StrCat(name, ": failed: ", std::string(GetStatus().message()));
    }
    if (stopped_alone) {
      return absl::StrCat(name, ": stopped: ", std::string(GetStatus().message()));
    }
    std::string p = runner->HealthProblem();
    if (p.empty()) {
      absl::MutexLock lock(&mu);
      p = start_problem;
    }
    if (!started) return absl::StrCat(name, ": starting", p.empty() ? "" : ": ", p);
    return p.empty() ? "" : absl::StrCat(name, ": ", p);
  }
};

Daemon::Daemon(Config config, DaemonOptions options)
    : config_(std::move(config)), options_(std::move(options)) {
  if (options_.config_path.empty()) options_.config_path = config_.source;
}

absl::Status Daemon::CheckStateDir() const {
  namespace fs = std::filesystem;
  const std::string& dir = config_.state.dir;
  const std::string where = "set state.dir (env RTDW_STATE_DIR) to a directory it can write";
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) {
    return absl::FailedPreconditionError(absl::StrCat(
        "state dir ", dir, " cannot be created by ", EffectiveUser(), ": ", ec.message(),
        " — create it writable by that user (the systemd unit's StateDirectory=rtdw does "
        "this for /var/lib/rtdw), or ",
        where));
  }
  if (!fs::is_directory(dir, ec)) {
    return absl::FailedPreconditionError(
        absl::StrCat("state dir ", dir, " is not a directory — ", where));
  }
  // Writable: create, write and remove a file (access(2) would trust root's override and
  // ignore read-only mounts).
  const std::string probe = absl::StrCat(dir, "/.rtdwd-write-check-", getpid());
  int fd = open(probe.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  int err = fd < 0 ? errno : 0;
  if (fd >= 0) {
    if (write(fd, "x", 1) != 1) err = errno;
    close(fd);
    unlink(probe.c_str());
  }
  if (err != 0) {
    return absl::FailedPreconditionError(absl::StrCat(
        "state dir ", dir, " is not writable by ", EffectiveUser(), ": ", strerror(err),
        " — give that user write access (e.g. chown -R rtdw:rtdw ", dir, "), or ", where));
  }
  for (const std::string& job : config_.jobs.enabled) {
    const std::string path = StorePath(dir, job);
    if (auto pid = StoreLockHolder(path)) {
      return absl::FailedPreconditionError(
          absl::StrCat("state store ", path, " is held by another process (pid ", *pid,
                       "): another rtdwd runs on this state dir — stop it first (kill -TERM ", *pid,
                       ", or systemctl stop rtdwd) or give this instance its own state.dir"));
    }
    if (fs::exists(path, ec) && access(path.c_str(), W_OK) != 0) {
      return absl::FailedPreconditionError(absl::StrCat(
          "state store ", path, " is not writable by ", EffectiveUser(), ": ", strerror(errno),
          " — was it created by another user? give it back (e.g. chown -R rtdw:rtdw ", dir, ")"));
    }
  }
  return absl::OkStatus();
}

void Daemon::Reload(std::vector<std::unique_ptr<RunningJob>>& jobs) {
  SdNotify("RELOADING=1");
  const std::string& path = options_.config_path;
  ConfigLoadResult loaded = LoadConfigDetailed(path);
  Counter* outcome =
      metrics_.GetCounter("rtdw_config_reloads_total", "SIGHUP config reloads, by result",
                          {{"result", loaded.ok() ? "ok" : "error"}});
  outcome->Add();
  if (!loaded.ok()) {
    spdlog::error("SIGHUP: {} is invalid ({} problem{}); keeping the running config", path,
                  loaded.problems.size(), loaded.problems.size() == 1 ? "" : "s");
    for (const std::string& problem : loaded.problems) spdlog::error("SIGHUP: {}", problem);
    SdNotify("READY=1");
    return;
  }
  Config& next = loaded.config;
  if (!options_.job.empty()) next.jobs.enabled = {options_.job};
  ReloadPlan plan = PlanReload(config_, next);
  ApplyLiveSettings(next, &config_);
  InitLogging(config_.log.level, config_.log.format);
  for (auto& job : jobs) {
    absl::MutexLock lock(&job->mu);
    job->pending_reload = config_;
  }
  metrics_
      .GetGauge("rtdw_config_last_reload_timestamp_seconds",
                "Time of the last successful SIGHUP reload (epoch seconds)")
      ->Set(static_cast<double>(absl::ToUnixSeconds(absl::Now())));
  spdlog::info("SIGHUP: reloaded {}: {}", path, plan.Summary());
  SdNotify("READY=1");
}

absl::Status Daemon::Run() {
  spdlog::info("{} starting: config {}, jobs [{}], state {}", VersionLine("rtdwd"), config_.source,
               absl::StrJoin(config_.jobs.enabled, ", "), config_.state.dir);

  // Start-up checks that waiting cannot fix.
  if (absl::Status st = CheckStateDir(); !st.ok()) return st;

  std::vector<std::unique_ptr<RunningJob>> jobs;
  for (const auto& name : config_.jobs.enabled) {
    auto job = std::make_unique<RunningJob>();
    job->name = name;
    job->config = std::make_unique<Config>(config_);
    auto runner = MakeJobRunner(name, *job->config, &metrics_);
    if (absl::IsUnimplemented(runner.status())) {
      spdlog::warn("{}; skipped", std::string(runner.status().message()));
      continue;
    }
    if (!runner.ok()) return runner.status();
    job->runner = std::move(*runner);
    // Every per-job series exists from here on, at 0 (the runners create theirs; these are the
    // ones created lazily elsewhere).
    const Labels labels = {{"job", name}};
    metrics_.GetCounter("rtdw_offset_lost_total", "Stored offsets the broker no longer has",
                        labels);
    job->up = metrics_.GetGauge("rtdw_job_up", "1 while the job is consuming and healthy, else 0",
                                labels);
    const JobCommon* common = job->config->jobs.Common(name);
    job->batch_max_records = metrics_.GetGauge("rtdw_batch_max_records",
                                               "The job's batch_max_records in effect", labels);
    job->batch_max_records->Set(static_cast<double>(common->batch_max_records));
    job->batch_max_seconds = metrics_.GetGauge(
        "rtdw_batch_max_seconds", "The job's batch_max_ms in effect, in seconds", labels);
    job->batch_max_seconds->Set(std::chrono::duration<double>(common->batch_max_ms).count());
    job->reloads_applied = metrics_.GetCounter(
        "rtdw_job_config_reloads_total",
        "SIGHUP reloads the job has applied (between two batches: the next one uses them)", labels);
    job->progress =
        std::make_unique<ProgressReporter>(&metrics_, name, HasJournal(name), job->runner->lag());
    job->store_metrics = std::make_unique<StoreMetrics>(&metrics_, name, name == kJobDau);
    jobs.push_back(std::move(job));
  }
  metrics_.GetCounter("rtdw_config_reloads_total", "SIGHUP config reloads, by result",
                      {{"result", "ok"}});
  metrics_.GetCounter("rtdw_config_reloads_total", "SIGHUP config reloads, by result",
                      {{"result", "error"}});
  Gauge* rss = metrics_.GetGauge("rtdw_process_resident_memory_bytes",
                                 "Resident set size of the rtdwd process");
  rss->Set(static_cast<double>(ProcessRssBytes()));
  metrics_.GetGauge("rtdw_process_start_time_seconds", "Start time of the process (epoch seconds)")
      ->Set(static_cast<double>(absl::ToUnixSeconds(absl::Now())));
  metrics_
      .GetGauge("rtdw_build_info", "Always 1; the labels say which build of rtdwd runs",
                {{"version", std::string(BuildVersion())},
                 {"commit", std::string(BuildCommit())},
                 {"dirty", BuildDirty() ? "true" : "false"}})
      ->Set(1);

  // The services the jobs use: probed now (the start-up report), then watched.
  ServiceMonitor monitor(config_, &metrics_);
  monitor.Start();
  if (absl::Status fatal = monitor.Fatal(); !fatal.ok()) return fatal;

  std::atomic<bool> stopping{false};
  // What /health lists (and rtdw_healthy is 0 for).
  auto health_problems = [&] {
    std::vector<std::string> problems;
    if (stopping) problems.push_back("stopping");
    for (std::string& p : monitor.Problems()) problems.push_back(std::move(p));
    for (const auto& job : jobs) {
      if (std::string p = job->Problem(); !p.empty()) problems.push_back(std::move(p));
    }
    return problems;
  };
  Gauge* healthy = metrics_.GetGauge("rtdw_healthy", "1 when /health answers 200 ok, else 0 (503)");
  // HTTP: /metrics and /health.
  httplib::Server http;
  std::thread http_thread;
  if (config_.http.enabled()) {
    // SO_REUSEADDR only: cpp-httplib's default adds SO_REUSEPORT, with which a second rtdwd on
    // the same http.listen binds too and the kernel splits the scrapes between the two.
    http.set_socket_options([](socket_t sock) {
      int yes = 1;
      setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
    });
    http.Get("/metrics", [&](const httplib::Request&, httplib::Response& res) {
      rss->Set(static_cast<double>(ProcessRssBytes()));
      healthy->Set(health_problems().empty() ? 1 : 0);  // as /health says now
      std::vector<const StoreMetrics*> stores;
      for (const auto& job : jobs) {
        job->up->Set(job->started && job->Problem().empty() ? 1 : 0);
        stores.push_back(job->store_metrics.get());
      }
      res.set_content(metrics_.RenderPrometheus() + RenderDedupDaysFamily(stores),
                      "text/plain; version=0.0.4");
    });
    http.Get("/health", [&](const httplib::Request&, httplib::Response& res) {
      std::vector<std::string> problems = health_problems();
      if (problems.empty()) {
        res.set_content("ok\n", "text/plain");
      } else {
        res.status = 503;
        res.set_content(absl::StrJoin(problems, "\n") + "\n", "text/plain");
      }
    });
    int port =
        config_.http.port == 0
            ? http.bind_to_any_port(config_.http.host)
            : (http.bind_to_port(config_.http.host, config_.http.port) ? config_.http.port : -1);
    if (port < 0) {
      return absl::UnavailableError(absl::StrCat(
          "http.listen ", config_.http.listen,
          ": cannot listen (port in use? another rtdwd?) — free it or change http.listen"));
    }
    spdlog::info("http: /metrics and /health on {}:{}", config_.http.host, port);
    http_thread = std::thread([&] { http.listen_after_bind(); });
  }

  // A member: a job thread left behind at the stop may still read it after Run() returns.
  std::atomic<bool>& stop_jobs = stop_jobs_;
  const std::string config_path = options_.config_path;
  for (auto& job_ptr : jobs) {
    RunningJob* job = job_ptr.get();
    job->thread = std::thread([job, &stop_jobs, &config_path] {
      // No store yet for an ES job: never created while ES holds the job's recent indices.
      absl::Status st = CheckFreshStore(
          *job->config, job->name, config_path,
          [&stop_jobs] { return stop_jobs.load() || StopRequested(); },
          [job](std::string_view p) { job->SetStartProblem(p); });
      job->SetStartProblem("");
      if (!st.ok()) {  // the runner has not started: nothing to stop
        if (absl::IsCancelled(st) && (stop_jobs.load() || StopRequested())) {
          spdlog::info("{}: start-up interrupted by the stop: {}", job->name,
                       std::string(st.message()));
        } else {
          job->SetStatus(st);
          job->failed = true;
        }
        job->done = true;
        return;
      }
      st = job->runner->Start();
      if (!st.ok()) {
        if (absl::IsCancelled(st) && (stop_jobs.load() || StopRequested())) {
          spdlog::info("{}: start-up interrupted by the stop: {}", job->name,
                       std::string(st.message()));
          job->SetStatus(job->runner->Stop());
        } else {
          job->SetStatus(st);
          job->failed = true;
          (void)job->runner->Stop();  // what it opened is closed, bounded like any stop
        }
        job->done = true;
        return;
      }
      {
        absl::MutexLock lock(&job->store_mu);
        job->store_ready = job->runner->store() != nullptr;
      }
      job->started = true;
      while (!stop_jobs.load()) {
        job->ApplyPendingReload();
        auto n = job->runner->RunOnce();
        if (!n.ok()) {
          if (auto lost = LostOffsetOf(n.status())) {
            // This job alone stops: the operator decides where it resumes.
            job->SetStatus(LostOffsetStatus(n.status(), *lost, job->name, config_path,
                                            job->config->kafka.group.value_or("")));
            spdlog::error("{}: {}", job->name, std::string(job->GetStatus().message()));
            job->stopped_alone = true;
          } else {
            job->SetStatus(n.status());
            job->failed = true;
          }
          break;
        }
        if (*n > 0) job->last_record_ns = Clock::now().time_since_epoch().count();
      }
      {
        absl::MutexLock lock(&job->store_mu);
        job->store_ready = false;  // the stats thread lets go of the store before it closes
      }
      absl::Status stopped = job->runner->Stop();
      if (!job->failed && !job->stopped_alone) job->SetStatus(stopped);
      job->done = true;
    });
  }

  // The stats thread: the stores' figures for /metrics.
  std::atomic<bool> stop_stats{false};
  std::atomic<int64_t> stats_interval_ms{StatsInterval(config_).count()};  // follows reloads
  std::thread stats_thread([&] {
    auto next = Clock::now();
    while (!stop_stats.load()) {
      if (Clock::now() >= next) {
        for (auto& job : jobs) {
          absl::MutexLock lock(&job->store_mu);
          if (job->store_ready) job->store_metrics->Refresh(*job->runner->store());
        }
        next = Clock::now() + std::chrono::milliseconds(stats_interval_ms.load());
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  });

  SdNotify("READY=1\nSTATUS=starting jobs");

  const auto started_at = Clock::now();
  auto next_progress = started_at + config_.log.progress_interval;
  auto next_tick = started_at;
  std::string last_status;
  absl::Status result = absl::OkStatus();
  while (true) {
    if (StopRequested()) {
      spdlog::info("rtdwd: stop requested, draining (shutdown.timeout {} s)",
                   config_.shutdown.timeout.count());
      break;
    }
    bool any_failed = false;
    bool all_stopped_alone = !jobs.empty();
    for (const auto& job : jobs) {
      any_failed |= job->failed.load();
      all_stopped_alone &= job->stopped_alone.load() && job->done.load();
    }
    if (any_failed) break;
    if (all_stopped_alone) {
      spdlog::error("rtdwd: every job stopped on a lost stored offset; exiting (exit 1)");
      break;
    }
    if (absl::Status fatal = monitor.Fatal(); !fatal.ok()) {
      result = fatal;
      break;
    }
    if (TakeReloadRequest()) {
      Reload(jobs);
      stats_interval_ms = StatsInterval(config_).count();
      next_progress = std::min(next_progress, Clock::now() + config_.log.progress_interval);
    }
    const auto now = Clock::now();
    if (now >= next_tick) {
      next_tick = now + std::chrono::seconds(1);
      std::vector<std::string> problems = monitor.Problems();
      for (auto& job : jobs) {
        std::string p = job->Problem();
        job->up->Set(p.empty() && job->started ? 1 : 0);
        if (!p.empty()) problems.push_back(std::move(p));
      }
      std::string status =
          problems.empty() ? "consuming" : absl::StrCat("not healthy: ", problems.front());
      if (status != last_status) {
        SdNotify(absl::StrCat("STATUS=", status));
        last_status = status;
      }
    }
    if (config_.log.progress_interval.count() > 0 && now >= next_progress) {
      next_progress = now + config_.log.progress_interval;
      for (auto& job : jobs) {
        std::string p = job->Problem();
        spdlog::info("{}", job->progress->Line(p));
      }
    }
    if (options_.exit_when_idle) {
      bool idle = true;
      int running = 0;
      for (const auto& job : jobs) {
        if (job->stopped_alone) continue;  // the run ends with exit 1 (see below)
        ++running;
        if (!job->started || !job->runner->CaughtUp()) {
          idle = false;
          break;
        }
        int64_t last = job->last_record_ns.load();
        auto last_tp = last == 0 ? started_at : Clock::time_point(Clock::duration(last));
        if (now - last_tp < *options_.exit_when_idle) idle = false;
      }
      if (running == 0) idle = jobs.empty() && now - started_at >= *options_.exit_when_idle;
      if (idle) {
        spdlog::info("rtdwd: every job caught up and idle; exiting (--exit-when-idle)");
        break;
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }

  // Drain, all of it bounded by shutdown.timeout: no new poll; each job commits the batch in
  // hand and delivers its journal until the deadline (every wait of its Stop() ends there). At
  // the deadline every job still busy is cancelled; one still busy kCancelGrace later (stuck in
  // a call that does not honour its timeout) is left behind and the process exits without it.
  stopping = true;
  SdNotify("STOPPING=1\nSTATUS=draining");
  stop_jobs = true;  // before BeginStop: a start-up it cancels counts as interrupted by the stop
  const auto deadline = Clock::now() + config_.shutdown.timeout;
  monitor.Stop(deadline);
  for (auto& job : jobs) job->runner->BeginStop(deadline);
  auto wait_all_done = [&jobs](Clock::time_point until) {
    while (Clock::now() < until) {
      bool all = true;
      for (const auto& job : jobs) all &= job->done.load();
      if (all) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  };
  wait_all_done(deadline);
  for (auto& job : jobs) {
    if (!job->done) {
      spdlog::warn(
          "{}: still {} after shutdown.timeout ({} s); cancelling (what is owed stays owed)",
          job->name, job->started ? "stopping" : "starting", config_.shutdown.timeout.count());
      job->runner->Cancel();
    }
  }
  wait_all_done(deadline + kCancelGrace);
  for (auto& job : jobs) {
    if (!job->done) {
      // Its thread still uses the runner: both are left to the process exit (_exit).
      spdlog::error(
          "{}: still stopping {} s after shutdown.timeout; leaving it (its store is not closed "
          "cleanly: the next start recovers it as after a crash, nothing committed is lost)",
          job->name, std::chrono::duration_cast<std::chrono::seconds>(kCancelGrace).count());
      given_up_.push_back(absl::StrCat(job->name, ": did not stop in time (store not closed)"));
      exit_now_ = true;
      job->thread.detach();
      continue;
    }
    if (job->thread.joinable()) job->thread.join();
    if (std::string g = job->runner->GivenUp(); !g.empty()) {
      given_up_.push_back(absl::StrCat(job->name, ": ", g));
    }
    absl::Status st = job->GetStatus();
    if (!st.ok()) {
      spdlog::error("job {}: {}", job->name, std::string(st.message()));
      if (result.ok()) {
        result = absl::Status(st.code(),
                              absl::StrCat("job ", job->name, ": ", std::string(st.message())));
      }
    }
  }
  // Not work given up, but said: clients left closing mean the process ends with _exit.
  std::string note;
  if (int left = KafkaClientsStillDestroying(); left > 0) {
    note = absl::StrCat(" (", left, " Kafka client", left == 1 ? "" : "s",
                        " left closing: a broker does not answer)");
    exit_now_ = true;
  }
  stop_stats = true;
  stats_thread.join();
  if (http_thread.joinable()) {
    http.stop();
    http_thread.join();
  }
  // A job left behind is never destroyed: its thread still uses it until the process ends.
  for (auto& job : jobs) {
    if (!job->done) (void)job.release();
  }
  if (!result.ok()) {
    spdlog::info("rtdwd stopped with an error{}", note);
  } else if (given_up_.empty()) {
    spdlog::info("rtdwd stopped cleanly{}", note);
  } else {
    // The last line: what the stop gave up (all of it safe: the next start does it again).
    spdlog::warn("rtdwd stopped, giving up at shutdown.timeout ({} s): {}{} (exit 3)",
                 config_.shutdown.timeout.count(), absl::StrJoin(given_up_, "; "), note);
  }
  return result;
}

}  // namespace rtdw
