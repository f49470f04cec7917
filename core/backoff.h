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
#ifndef RTDW_CORE_BACKOFF_H_
#define RTDW_CORE_BACKOFF_H_

#include <atomic>
#include <chrono>
#include <cstdint>
#include <random>

#include "absl/status/status.h"

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

// Sleeps for `delay`, checking `*cancel` (may be null) at least every 20 ms. Returns false when
// the sleep was cut short because *cancel became true.
bool SleepUnlessCancelled(std::chrono::milliseconds delay, const std::atomic<bool>* cancel);

}  // namespace rtdw

#endif  // RTDW_CORE_BACKOFF_H_
