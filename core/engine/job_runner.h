// What the daemon needs of a job: start it, run batches until asked to stop, report idleness and
// health. Each enabled job gets one JobRunner, driven on its own thread.
#ifndef RTDW_CORE_ENGINE_JOB_RUNNER_H_
#define RTDW_CORE_ENGINE_JOB_RUNNER_H_

#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace rtdw {

class StateStore;
class KafkaLagTracker;  // core/engine/lag_tracker.h

// A job's stop, as its threads see it: requested (with the deadline by which the whole stop must
// be over) and cancelled (give up every wait now). Set from the daemon's thread, read from the
// job's; thread-safe. Every wait of a job on a service is bounded by it: a wait that can last
// longer than a poll checks stopping() / the flags, and the stop's own waits end at deadline().
class StopControl {
 public:
  using Clock = std::chrono::steady_clock;
  // A stop was requested; it must be over by `deadline`. The first call wins.
  void Begin(Clock::time_point deadline);
  // Give up now (what is owed stays owed). Implies Begin(now) when not begun.
  void Cancel();
  bool stopping() const { return stopping_.load(); }
  bool cancelled() const { return cancelled_.load(); }
  // Clock::time_point::max() until Begin().
  Clock::time_point deadline() const {
    return Clock::time_point(Clock::duration(deadline_.load()));
  }
  // `limit`, cut to what is left until the deadline (0 once cancelled or past it).
  std::chrono::milliseconds Bound(std::chrono::milliseconds limit) const;
  // For the interruptible waits (core/backoff.h SleepUnlessCancelled, KafkaProducer::Await, ...).
  const std::atomic<bool>* stopping_flag() const { return &stopping_; }
  const std::atomic<bool>* cancelled_flag() const { return &cancelled_; }

 private:
  std::atomic<bool> stopping_{false};
  std::atomic<bool> cancelled_{false};
  std::atomic<Clock::rep> deadline_{Clock::time_point::max().time_since_epoch().count()};
};

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
  // Finishes the batch in hand, delivers what it can until the stop's deadline (BeginStop; when
  // none was given, shutdown.timeout from now), closes cleanly. Every wait in it is bounded by
  // that deadline: what cannot be done by then is given up (GivenUp() says what) and stays owed.
  virtual absl::Status Stop() = 0;
  // After Stop(), or a Start() that returned Cancelled: what the stop gave up that the next start
  // does again (journal entries owed, a batch not committed, a group left uncleanly), one
  // sentence; "" after a full drain.
  virtual std::string GivenUp() const { return ""; }

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
  // From another thread, when the daemon starts to stop: no new poll; waits for a service end
  // now, waits for what is owed (the batch in hand, the journal) end at `deadline`.
  virtual void BeginStop(std::chrono::steady_clock::time_point deadline) { stop_.Begin(deadline); }
  // From another thread: give up waiting (a start-up replay, a wait for a service, a delivery) as
  // soon as possible; what is owed stays owed. Start() then returns Cancelled.
  virtual void Cancel() { stop_.Cancel(); }

 protected:
  StopControl stop_;
};

}  // namespace rtdw

#endif  // RTDW_CORE_ENGINE_JOB_RUNNER_H_
