// What the daemon needs of a job: start it, run batches until asked to stop, report idleness and
// health. Each enabled job gets one JobRunner, driven on its own thread.
#ifndef RTDW_TOOLS_RTDWD_JOB_RUNNER_H_
#define RTDW_TOOLS_RTDWD_JOB_RUNNER_H_

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace rtdw {

class JobRunner {
 public:
  virtual ~JobRunner() = default;
  virtual const std::string& name() const = 0;
  // Connects, opens the job's store, re-delivers what is owed, assigns partitions. A non-OK
  // status stops the daemon with exit code 1.
  virtual absl::Status Start() = 0;
  // Runs one batch (poll -> transform -> commit -> deliver). Returns the number of source records
  // it consumed (0 when nothing arrived within the batch interval).
  virtual absl::StatusOr<size_t> RunOnce() = 0;
  // True when every source partition is assigned and at its end and nothing is owed downstream.
  virtual bool CaughtUp() const = 0;
  // "" when healthy; otherwise why not (shown by /health).
  virtual std::string HealthProblem() const = 0;
  // Finishes the batch in hand, delivers what it can within the shutdown timeout, closes cleanly.
  virtual absl::Status Stop() = 0;
};

}  // namespace rtdw

#endif  // RTDW_TOOLS_RTDWD_JOB_RUNNER_H_
