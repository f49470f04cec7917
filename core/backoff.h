// The one retry-delay policy of rtdw: exponential backoff with full jitter.
//
// Every component that retries (ES bulk delivery, Redis, Kafka) asks a Backoff for the delay
// before its next attempt and calls Reset() after a success. Delay number n (0-based, counted
// since the last Reset) is drawn uniformly from
//
//     [min_delay, max(min_delay, min(max_delay, initial_delay * multiplier^n))]
//
// i.e. "full jitter" (AWS architecture blog) above an optional floor: retries of many clients
// spread out instead of hammering a recovering server in lock-step, and the ceiling never passes
// max_delay however long the outage lasts. With min_delay = 0 it is the textbook full jitter.
//
// RetryUntil (below) is the one retry loop built on it: every loop that retries an operation
// runs through it, so each waits by this policy and each wait ends as soon as its stop condition
// holds (no sleep in rtdw is longer than 20 ms without checking for a stop).
#ifndef RTDW_CORE_BACKOFF_H_
#define RTDW_CORE_BACKOFF_H_

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <random>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace rtdw {

struct BackoffOptions {
  std::chrono::milliseconds initial_delay{100};  // ceiling of the first delay
  std::chrono::milliseconds min_delay{0};        // floor of every delay
  std::chrono::milliseconds max_delay{30000};    // cap of every delay
  double multiplier = 2.0;                       // growth of the ceiling per attempt
};

// OK when min_delay <= max_delay, initial_delay > 0, all delays >= 0 and multiplier >= 1.
absl::Status ValidateBackoffOptions(const BackoffOptions& options);

// Thread-compatible: one Backoff per retry loop. Invalid options are clamped into the valid
// range (the config loader should have called ValidateBackoffOptions first).
class Backoff {
 public:
  explicit Backoff(const BackoffOptions& options = {});
  // Deterministic sequence for tests.
  Backoff(const BackoffOptions& options, uint64_t seed);

  // The delay to wait before the next attempt; counts the attempt.
  std::chrono::milliseconds NextDelay();
  // After a success: the next delay starts from the first ceiling again.
  void Reset() { attempts_ = 0; }
  // Delays handed out since the last Reset.
  int attempts() const { return attempts_; }
  // The upper bound of delay number `attempt` (0-based).
  std::chrono::milliseconds Ceiling(int attempt) const;
  const BackoffOptions& options() const { return options_; }

 private:
  BackoffOptions options_;
  int attempts_ = 0;
  std::mt19937_64 rng_;
};

// A stop condition: a wait or a retry loop ends once it returns true. Must be cheap and callable
// from the waiting thread at any time; an empty function never stops.
using StopCondition = std::function<bool()>;

// The stop condition "*flag is true" (never, for a null flag). `flag` must outlive its use.
StopCondition StopWhenSet(const std::atomic<bool>* flag);

// Sleeps for `delay`, checking `stop` at least every 20 ms. Returns false when the sleep was cut
// short because stop() became true (also when it was true at the start).
bool SleepUnless(std::chrono::milliseconds delay, const StopCondition& stop);
// The same with StopWhenSet(cancel).
bool SleepUnlessCancelled(std::chrono::milliseconds delay, const std::atomic<bool>* cancel);

// How RetryUntil waits; tests substitute a fake that records the delays and returns at once.
// Implementations are thread-safe.
class Sleeper {
 public:
  virtual ~Sleeper() = default;
  // Waits `delay` unless stop() becomes true first; false when cut short (as SleepUnless).
  virtual bool Sleep(std::chrono::milliseconds delay, const StopCondition& stop) = 0;
  // SleepUnless on the real clock.
  static Sleeper* Real();
};

struct RetryOptions {
  BackoffOptions backoff;
  // Attempts in all (the first included); 0 = no limit: until success, a permanent error or a
  // stop.
  int max_attempts = 0;
  // Which errors are worth another attempt; empty = every error.
  std::function<bool(const absl::Status&)> retryable;
  // Called after each failed attempt that will be retried, before its wait, with the attempt's
  // error and the delay about to be waited (to log it, count it or show it as a problem).
  std::function<void(const absl::Status&, std::chrono::milliseconds delay)> on_retry;
  // Checked before every attempt and during every wait.
  StopCondition stop;
  // The first attempt is made even when stop() is already true (work in hand that a stop should
  // still finish when it can, e.g. a batch already read); the waits and later attempts still
  // end at the stop.
  bool attempt_once_despite_stop = false;
  // What is retried, for the Cancelled message ("bulk delivery" -> "bulk delivery cancelled").
  std::string what = "retry";
  Sleeper* sleeper = nullptr;  // null: Sleeper::Real()
  uint64_t seed = 0;           // 0: a random jitter sequence; otherwise deterministic
};

// Calls `attempt` until it returns OK, waiting NextDelay() of one Backoff(options.backoff)
// between attempts. Returns:
//  - OK, when an attempt succeeded;
//  - the attempt's error, when it is not retryable, or when it was attempt number max_attempts;
//  - Cancelled ("<what> cancelled", with the last error when there was one) when stop() was true
//    before an attempt (but the first, with attempt_once_despite_stop) or became true during a
//    wait; an attempt itself is never interrupted.
// Thread-compatible: runs on the calling thread; the callbacks run there too.
absl::Status RetryUntil(const RetryOptions& options, const std::function<absl::Status()>& attempt);

// The same for an attempt that produces a value.
template <typename T>
absl::StatusOr<T> RetryUntil(const RetryOptions& options,
                             const std::function<absl::StatusOr<T>()>& attempt) {
  absl::StatusOr<T> result = absl::UnknownError("not attempted");
  absl::Status st = RetryUntil(options, [&]() -> absl::Status {
    result = attempt();
    return result.status();
  });
  if (!st.ok()) return st;
  return result;
}

}  // namespace rtdw

#endif  // RTDW_CORE_BACKOFF_H_
