// rtdwd: the rtdw daemon. Runs the enabled jobs of a TOML config (docs/CONFIG.md).
//
// Exit codes (docs/OPERATIONS.md "Exit codes", kept in step with deploy/rtdwd.service):
//  0  a clean stop (a SIGTERM drain that finished, --exit-when-idle, --check of a valid file);
//  1  needs an operator — waiting or restarting cannot fix it: a store held by another process,
//     a store that cannot be opened (corrupt, newer schema, changed settings), a refused fresh
//     store (Elasticsearch holds the job's recent indices), a stored offset the broker lost
//     (that job stops alone; exit 1 once no job is left), order-wide's topics with different
//     partition counts, an unsupported Elasticsearch, a state dir it cannot write;
//     the unit's RestartPreventExitStatus=;
//  2  bad config or command line (incl. a missing file); also RestartPreventExitStatus=;
//  3  a stop that gave something up at shutdown.timeout (safe: the next start does it again);
//     the unit's SuccessExitStatus=;
//  4  failed, but a restart may succeed (http.listen's port taken, a failure of a service or of
//     the disk that ended a job): the unit restarts it (Restart=on-failure).
// Everything a service outage causes is waited for in-process, not an exit. Signals: SIGTERM /
// SIGINT drain and stop, SIGHUP reloads the config (tools/rtdwd/daemon.h).
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <iostream>
#include <string>
#include <thread>

#include "CLI/CLI.hpp"
#include "connectors/kafka/destroy.h"
#include "core/config/config.h"
#include "core/process/build_info.h"
#include "core/process/logging.h"
#include "core/process/signals.h"
#include "spdlog/spdlog.h"
#include "tools/rtdwd/daemon.h"

namespace {

constexpr int kExitOk = 0;
constexpr int kExitNeedsOperator = 1;
constexpr int kExitUsage = 2;
constexpr int kExitGaveUp = 3;
constexpr int kExitRestartable = 4;

// The exit code of a run that ended with `status`: the codes of what a restart may heal (a port,
// a service, the disk, an unexpected internal error) give 4; the others — the daemon's refusals,
// which name what to do — give 1.
int ExitCodeOf(const absl::Status& status) {
  switch (status.code()) {
    case absl::StatusCode::kOk:
      return kExitOk;
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kDeadlineExceeded:
    case absl::StatusCode::kResourceExhausted:
    case absl::StatusCode::kAborted:
    case absl::StatusCode::kInternal:
    case absl::StatusCode::kUnknown:
    case absl::StatusCode::kCancelled:
      return kExitRestartable;
    default:
      return kExitNeedsOperator;
  }
}

constexpr char kExitCodesHelp[] =
    "Exit codes (docs/OPERATIONS.md \"Exit codes\"; deploy/rtdwd.service restarts only 4 and "
    "crashes):\n"
    "  0  clean stop\n"
    "  1  needs an operator: the last log line says what and what to do (a store held by another\n"
    "     process or that cannot be opened, a refused fresh store, a stored offset the broker\n"
    "     lost, ...)\n"
    "  2  bad config or command line\n"
    "  3  a stop that left work owed at shutdown.timeout (safe; counts as a clean stop)\n"
    "  4  failed, a restart may succeed (http.listen's port taken, a service or disk failure)";

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"rtdwd: the rtdw real-time data warehouse daemon"};
  app.footer(kExitCodesHelp);
  app.set_version_flag("--version", rtdw::VersionLine("rtdwd"),
                       "print the version and the git commit of this build, and exit");
  std::string config_path;
  std::string job;
  double exit_when_idle = -1;
  bool check = false;
  bool print_config = false;
  app.add_option("-c,--config", config_path, "TOML config file (spec: docs/CONFIG.md)")->required();
  app.add_option("--job", job,
                 "run only this job of the config (log-split|db-split|dau|order-wide)");
  app.add_option("--exit-when-idle", exit_when_idle,
                 "exit 0 once every source partition is at its end and nothing arrived for S "
                 "seconds")
      ->check(CLI::NonNegativeNumber);
  app.add_flag("--check", check, "validate the config and exit (0 valid, 2 invalid)");
  app.add_flag("--print-config", print_config,
               "print the effective config (secrets masked) and exit");
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    app.exit(e);
    return kExitUsage;
  }

  rtdw::ConfigLoadResult loaded = rtdw::LoadConfigDetailed(config_path);
  if (!loaded.ok()) {
    for (const auto& problem : loaded.problems) std::cerr << problem << "\n";
    std::cerr << "rtdwd: invalid config " << config_path << " (" << loaded.problems.size()
              << " problem" << (loaded.problems.size() == 1 ? "" : "s") << ")\n";
    return kExitUsage;
  }
  rtdw::Config& config = loaded.config;
  if (!job.empty()) {
    if (!rtdw::IsKnownJob(job)) {
      std::cerr << "rtdwd: --job " << job
                << ": unknown job (expected log-split, db-split, dau or order-wide)\n";
      return kExitUsage;
    }
    config.jobs.enabled = {job};
  }
  if (check) {
    std::cout << "rtdwd: " << config_path << " is valid; jobs:";
    for (const auto& j : config.jobs.enabled) std::cout << " " << j;
    std::cout << "\n";
    return kExitOk;
  }
  if (print_config) {
    std::cout << rtdw::DumpConfig(config);
    return kExitOk;
  }

  rtdw::InitLogging(config.log.level, config.log.format);
  rtdw::InstallSignalHandlers();
  rtdw::DaemonOptions options;
  options.config_path = config_path;
  options.job = job;
  options.exit_when_idle = exit_when_idle < 0
                               ? std::nullopt
                               : std::optional<std::chrono::milliseconds>(std::chrono::milliseconds(
                                     static_cast<int64_t>(exit_when_idle * 1000)));
  // Heap-allocated: after a stop that left threads or Kafka clients behind, nothing of it may be
  // destroyed (they still use it) and the process ends with _exit.
  auto* daemon = new rtdw::Daemon(config, options);
  absl::Status status = daemon->Run();
  int code = ExitCodeOf(status);
  if (!status.ok()) {
    spdlog::error("rtdwd: {} (exit {})", std::string(status.message()), code);
  } else if (!daemon->GivenUp().empty()) {
    code = kExitGaveUp;
  }
  if (daemon->MustExitNow() || rtdw::KafkaClientsStillDestroying() > 0) {
    spdlog::shutdown();  // flushes the log
    std::fflush(nullptr);
    _exit(code);
  }
  delete daemon;
  return code;
}
