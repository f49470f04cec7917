#include "core/engine/job_runner.h"

#include <algorithm>

namespace rtdw {

void StopControl::Begin(Clock::time_point deadline) {
  Clock::rep unset = Clock::time_point::max().time_since_epoch().count();
  deadline_.compare_exchange_strong(unset, deadline.time_since_epoch().count());
  stopping_ = true;
}

void StopControl::Cancel() {
  Begin(Clock::now());
  cancelled_ = true;
}

std::chrono::milliseconds StopControl::Bound(std::chrono::milliseconds limit) const {
  if (cancelled()) return std::chrono::milliseconds(0);
  if (!stopping()) return limit;
  auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline() - Clock::now());
  return std::clamp(left, std::chrono::milliseconds(0), limit);
}

}  // namespace rtdw
