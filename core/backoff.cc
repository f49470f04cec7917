#include "core/backoff.h"

#include <algorithm>
#include <cmath>
#include <thread>

#include "absl/strings/str_cat.h"

namespace rtdw {

using std::chrono::milliseconds;

absl::Status ValidateBackoffOptions(const BackoffOptions& o) {
  if (o.initial_delay.count() <= 0) {
    return absl::InvalidArgumentError("backoff initial delay must be > 0");
  }
  if (o.min_delay.count() < 0 || o.max_delay.count() < 0) {
    return absl::InvalidArgumentError("backoff delays must be >= 0");
  }
  if (o.min_delay > o.max_delay) {
    return absl::InvalidArgumentError(absl::StrCat("backoff min delay (", o.min_delay.count(),
                                                   " ms) exceeds max delay (", o.max_delay.count(),
                                                   " ms)"));
  }
  if (!(o.multiplier >= 1.0) || !std::isfinite(o.multiplier)) {
    return absl::InvalidArgumentError("backoff multiplier must be >= 1");
  }
  return absl::OkStatus();
}

namespace {

BackoffOptions Clamp(BackoffOptions o) {
  if (o.initial_delay.count() <= 0) o.initial_delay = milliseconds(1);
  if (o.min_delay.count() < 0) o.min_delay = milliseconds(0);
  if (o.max_delay < o.min_delay) o.max_delay = o.min_delay;
  if (!(o.multiplier >= 1.0) || !std::isfinite(o.multiplier)) o.multiplier = 1.0;
  return o;
}

}  // namespace

Backoff::Backoff(const BackoffOptions& options)
    : options_(Clamp(options)), rng_(std::random_device{}()) {}

Backoff::Backoff(const BackoffOptions& options, uint64_t seed)
    : options_(Clamp(options)), rng_(seed) {}

milliseconds Backoff::Ceiling(int attempt) const {
  const double max = static_cast<double>(options_.max_delay.count());
  double ceiling = static_cast<double>(options_.initial_delay.count()) *
                   std::pow(options_.multiplier, std::max(0, attempt));
  if (!(ceiling <= max)) ceiling = max;  // also catches overflow to inf
  auto c = milliseconds(static_cast<int64_t>(ceiling));
  return std::max(c, options_.min_delay);
}

milliseconds Backoff::NextDelay() {
  milliseconds ceiling = Ceiling(attempts_);
  if (attempts_ < 1'000'000) ++attempts_;
  std::uniform_int_distribution<int64_t> dist(options_.min_delay.count(), ceiling.count());
  return milliseconds(dist(rng_));
}

StopCondition StopWhenSet(const std::atomic<bool>* flag) {
  if (flag == nullptr) return {};
  return [flag] { return flag->load(std::memory_order_acquire); };
}

bool SleepUnlessCancelled(milliseconds delay, const std::atomic<bool>* cancel) {
  return SleepUnless(delay, StopWhenSet(cancel));
}

bool SleepUnless(milliseconds delay, const StopCondition& stop) {
  const auto deadline = std::chrono::steady_clock::now() + delay;
  while (true) {
    if (stop && stop()) return false;
    auto now = std::chrono::steady_clock::now();
    if (now >= deadline) return true;
    auto step = std::min<std::chrono::steady_clock::duration>(deadline - now, milliseconds(20));
    std::this_thread::sleep_for(step);
  }
}

namespace {

class RealSleeper : public Sleeper {
 public:
  bool Sleep(milliseconds delay, const StopCondition& stop) override {
    return SleepUnless(delay, stop);
  }
};

}  // namespace

Sleeper* Sleeper::Real() {
  static RealSleeper* real = new RealSleeper();
  return real;
}

absl::Status RetryUntil(const RetryOptions& options, const std::function<absl::Status()>& attempt) {
  Backoff backoff =
      options.seed == 0 ? Backoff(options.backoff) : Backoff(options.backoff, options.seed);
  Sleeper* sleeper = options.sleeper != nullptr ? options.sleeper : Sleeper::Real();
  absl::Status last;
  auto cancelled = [&] {
    std::string message = absl::StrCat(options.what, " cancelled");
    if (!last.ok()) absl::StrAppend(&message, " (last error: ", last.message(), ")");
    return absl::CancelledError(message);
  };
  for (int n = 1;; ++n) {
    if (options.stop && !(n == 1 && options.attempt_once_despite_stop) && options.stop()) {
      return cancelled();
    }
    last = attempt();
    if (last.ok()) return last;
    if (options.retryable && !options.retryable(last)) return last;
    if (options.max_attempts > 0 && n >= options.max_attempts) return last;
    const milliseconds delay = backoff.NextDelay();
    if (options.on_retry) options.on_retry(last, delay);
    if (!sleeper->Sleep(delay, options.stop)) return cancelled();
  }
}

}  // namespace rtdw
