// The daemon: runs every enabled job on its own thread, serves /metrics and /health, watches the
// services the jobs use, reports progress, reloads the config on SIGHUP, and stops on
// SIGTERM/SIGINT (drain) or, with --exit-when-idle, once every job is caught up and quiet.
//
// Lifecycle (docs/OPERATIONS.md):
//  - Start-up checks before any job starts, each naming the thing and what to do: the state dir
//    must be creatable and writable, and no other process may hold a job's store (exit 1 —
//    waiting will not fix either); Kafka / Redis / Elasticsearch are probed, and one that cannot
//    be reached is reported (log, /health) and waited for with backoff, not an exit;
//    Elasticsearch of an unsupported version is an exit 1. A dau / order-wide job without a
//    store does not create one while Elasticsearch holds the job's recent indices (exit 1,
//    CheckFreshStore in tools/rtdwd/job_common.h), and waits while ES cannot be asked.
//  - A job whose stored offset the broker lost stops alone (its /health line says how to
//    resume); the others go on, and the run ends with exit 1 once none is left.
//  - Exit codes (tools/rtdwd/main.cc): Run()'s error status decides between 1 (needs an
//    operator) and 4 (a restart may heal it).
//  - systemd: READY=1 once the HTTP server listens and the jobs are launched (Type=notify);
//    RELOADING=1 / READY=1 around a reload; STOPPING=1 at a stop; STATUS= the health summary.
//  - SIGTERM/SIGINT: no new poll; each job finishes and commits the batch in hand, delivers its
//    journal, closes its Kafka clients and its store (clean-shutdown flag) — all of it within
//    shutdown.timeout, whatever service is down: every wait ends at that deadline, a job still
//    busy then is cancelled, and one still busy 3 s later is left to the process exit. What was
//    given up stays owed, safely (GivenUp()): exit 0 after a full drain, 3 otherwise.
//  - SIGHUP: re-reads the config file; applies what can change live (core/config/reload.h) and
//    logs one line naming what changed and what needs a restart; an invalid file is reported
//    (FILE:LINE lines) and ignored.
#ifndef RTDW_TOOLS_RTDWD_DAEMON_H_
#define RTDW_TOOLS_RTDWD_DAEMON_H_

#include <atomic>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "core/config/config.h"
#include "core/metrics.h"
#include "core/engine/job_runner.h"

namespace rtdw {

struct DaemonOptions {
  std::optional<std::chrono::milliseconds> exit_when_idle;
  // The file SIGHUP re-reads ("" = config.source).
  std::string config_path;
  // --job NAME: kept across reloads ("" = the config's jobs.enabled).
  std::string job;
};

class Daemon {
 public:
  Daemon(Config config, DaemonOptions options);
  // Runs until a stop. OK after a stop (see GivenUp()); an error when a job cannot go on or a
  // start-up check fails (its message names the thing and what to do).
  absl::Status Run();
  // After Run(): what the stop gave up at shutdown.timeout, one line per job ("" none: a full
  // drain). Everything in it is safe (owed stays owed, uncommitted batches are read again).
  const std::vector<std::string>& GivenUp() const { return given_up_; }
  // After Run(): threads or Kafka clients were left behind still running; the process must end
  // with _exit (static destructors would race them).
  bool MustExitNow() const { return exit_now_; }

 private:
  struct RunningJob;
  absl::Status CheckStateDir() const;
  void Reload(std::vector<std::unique_ptr<RunningJob>>& jobs);

  Config config_;  // the main thread's; each job has its own copy (RunningJob::config)
  DaemonOptions options_;
  MetricsRegistry metrics_;
  std::vector<std::string> given_up_;
  bool exit_now_ = false;
  std::atomic<bool> stop_jobs_{false};  // the job threads stop polling
};

}  // namespace rtdw

#endif  // RTDW_TOOLS_RTDWD_DAEMON_H_
