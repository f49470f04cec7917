// rtdwd: the rtdw daemon. Runs the enabled jobs of a TOML config (docs/CONFIG.md).
//
// Exit codes (docs/OPERATIONS.md): 0 after a clean stop (SIGTERM drain that finished,
// --exit-when-idle, --check of a valid file); 1 when it cannot go on (a start-up check that waiting
// cannot fix, a job that failed); 2 for a bad config or command line (incl. a missing file); 3
// after a stop that gave something up at shutdown.timeout (journal entries left owed, a batch left
// uncommitted, a consumer group not left, a job left behind) — all of it safe, the next start does
// it again; the last log line names it. Signals: SIGTERM/SIGINT drain and stop, SIGHUP reloads
// the config (tools/rtdwd/daemon.h).
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <iostream>
#include <string>
#include <thread>

#include "CLI/CLI.hpp"
#include "connectors/kafka/destroy.h"
#include "spdlog/spdlog.h"
#include "tools/common/config.h"
#include "tools/common/logging.h"
#include "tools/common/signals.h"
#include "tools/rtdwd/daemon.h"

namespace {

constexpr int kExitOk = 0;
constexpr int kExitFailed = 1;
constexpr int kExitUsage = 2;
constexpr int kExitGaveUp = 3;

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"rtdwd: the rtdw real-time data warehouse daemon"};
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
  int code = kExitOk;
  if (!status.ok()) {
    spdlog::error("rtdwd: {}", std::string(status.message()));
    code = kExitFailed;
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
