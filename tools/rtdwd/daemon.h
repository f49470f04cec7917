// The daemon: runs every enabled job on its own thread, serves /metrics and /health, and stops
// on SIGTERM/SIGINT (drain) or, with --exit-when-idle, once every job is caught up and quiet.
#ifndef RTDW_TOOLS_RTDWD_DAEMON_H_
#define RTDW_TOOLS_RTDWD_DAEMON_H_

#include <chrono>
#include <memory>
#include <optional>
#include <vector>

#include "absl/status/status.h"
#include "core/metrics.h"
#include "tools/common/config.h"
#include "tools/rtdwd/job_runner.h"

namespace rtdw {

struct DaemonOptions {
  std::optional<std::chrono::milliseconds> exit_when_idle;
};

class Daemon {
 public:
  Daemon(Config config, DaemonOptions options);
  // Runs until a stop. OK after a clean stop; an error when a job cannot go on.
  absl::Status Run();

 private:
  Config config_;
  DaemonOptions options_;
  MetricsRegistry metrics_;
};

}  // namespace rtdw

#endif  // RTDW_TOOLS_RTDWD_DAEMON_H_
