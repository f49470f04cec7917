// Test-only crash points of the batch transaction. `RTDW_TEST_FAULT=POINT:N` (environment) makes
// the daemon SIGKILL itself the N-th time it reaches POINT — the "kill at many points" tests of
// the transaction use it. Unset (always, in production), every check is one branch.
//
// Points: before_commit, after_commit (state and the journal entry committed, nothing delivered:
// the seed's "state-restoration problem" moment), mid_delivery (half of an entry's documents sent),
// after_delivery (delivered, journal entry not yet deleted).
#ifndef RTDW_TOOLS_RTDWD_FAULT_POINTS_H_
#define RTDW_TOOLS_RTDWD_FAULT_POINTS_H_

#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <string>
#include <string_view>

namespace rtdw {

class FaultPoints {
 public:
  FaultPoints() {
    const char* spec = getenv("RTDW_TEST_FAULT");
    if (spec == nullptr) return;
    std::string s(spec);
    auto colon = s.find(':');
    point_ = s.substr(0, colon);
    countdown_ = colon == std::string::npos ? 1 : atoi(s.c_str() + colon + 1);
  }
  bool armed(std::string_view point) const { return !point_.empty() && point_ == point; }
  // SIGKILLs the process the N-th time `point` is reached.
  void Hit(std::string_view point) {
    if (!armed(point)) return;
    if (countdown_.fetch_sub(1) == 1) {
      static const char kMsg[] = "rtdwd: RTDW_TEST_FAULT reached, SIGKILL\n";
      (void)!write(2, kMsg, sizeof kMsg - 1);
      kill(getpid(), SIGKILL);
    }
  }

 private:
  std::string point_;
  std::atomic<int> countdown_{0};
};

// Test-only: `RTDW_TEST_CLOCK_OFFSET_S=N` (environment) moves the wall clock the ES jobs judge
// event time by (`max_future`, watermark caps) N seconds (negative: a clock behind), as a machine
// whose clock is wrong would. Unset (always, in production): 0.
inline int64_t TestClockOffsetMs() {
  static const int64_t offset = [] {
    const char* v = getenv("RTDW_TEST_CLOCK_OFFSET_S");
    return v == nullptr ? int64_t{0} : static_cast<int64_t>(atoll(v)) * 1000;
  }();
  return offset;
}

}  // namespace rtdw

#endif  // RTDW_TOOLS_RTDWD_FAULT_POINTS_H_
