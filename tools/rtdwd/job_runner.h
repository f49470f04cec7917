// What the daemon needs of a job: start it, run batches until asked to stop, report idleness and
// health. Each enabled job gets one JobRunner, driven on its own thread.
#ifndef RTDW_TOOLS_RTDWD_JOB_RUNNER_H_
#define RTDW_TOOLS_RTDWD_JOB_RUNNER_H_

#include <chrono>
#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace rtdw {

class StateStore;
class KafkaLagTracker;  // tools/rtdwd/progress.h

class JobRunner {
 public:
  virtual ~JobRunner() = default;
  virtual const std::string& name() const = 0;
  // Connects, opens the job's store, re-delivers what is owed, assigns partitions. A non-OK
  // status stops the daemon with exit code 1 (a Cancelled status after Cancel() or a stop
  // request is a clean stop).
  virtual absl::Status Start() = 0;
  // Runs one batch (poll -> transform -> commit -> deliver). Returns the number of source records
  // it consumed (0 when nothing arrived within the batch interval).
  virtual absl::StatusOr<size_t> RunOnce() = 0;
  // True when every source partition is assigned and at its end and nothing is owed downstream.
  virtual bool CaughtUp() const = 0;
  // "" when healthy; otherwise why not (shown by /health). Any thread, also during Start().
  virtual std::string HealthProblem() const = 0;
  // Finishes the batch in hand, delivers what it can within the shutdown timeout, closes cleanly.
  virtual absl::Status Stop() = 0;

  // ---- operations hooks (tools/rtdwd/daemon.cc); the defaults do nothing.

  // The job's state store: valid from a successful Start() until Stop() begins. The daemon reads
  // its Stats() from another thread (StateStore is thread-safe) and never past Stop().
  virtual StateStore* store() { return nullptr; }
  // Per-partition Kafka lag of the job's sources (any thread); nullptr when not tracked.
  virtual const KafkaLagTracker* lag() const { return nullptr; }
  // SIGHUP reload of the batch limits. Called on the job's own thread, between RunOnce() calls;
  // the next poll uses them.
  virtual void SetBatchLimits(int64_t max_records, std::chrono::milliseconds max_ms) {
    (void)max_records;
    (void)max_ms;
  }
  // From another thread: give up waiting (a start-up replay, a wait for a service) as soon as
  // possible; what is owed stays owed. Start() then returns Cancelled.
  virtual void Cancel() {}
};

}  // namespace rtdw

#endif  // RTDW_TOOLS_RTDWD_JOB_RUNNER_H_
