// RetryUntil (core/backoff.h): the one retry loop. A fake Sleeper records the waits, so these
// tests check the policy (which errors are retried, how often, how long each wait may be, when a
// stop ends the loop) without sleeping; one test uses the real clock to show that a long wait is
// cut short by a stop.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "core/backoff.h"

namespace rtdw {
namespace {

using std::chrono::milliseconds;

// Returns at once; records each delay; stops when `stop_at_wait` waits have been asked for.
class FakeSleeper : public Sleeper {
 public:
  bool Sleep(milliseconds delay, const StopCondition& stop) override {
    delays.push_back(delay);
    if (stop && stop()) return false;
    return static_cast<int>(delays.size()) != stop_at_wait;
  }
  std::vector<milliseconds> delays;
  int stop_at_wait = -1;
};

RetryOptions Options(FakeSleeper* sleeper) {
  RetryOptions o;
  o.backoff = {milliseconds(100), milliseconds(10), milliseconds(1000), 2.0};
  o.sleeper = sleeper;
  o.seed = 42;
  return o;
}

TEST(RetryUntil, RetriesUntilSuccessWithinTheBackoffCeilings) {
  FakeSleeper sleeper;
  RetryOptions o = Options(&sleeper);
  std::vector<std::string> seen;
  std::vector<milliseconds> announced;
  o.on_retry = [&](const absl::Status& st, milliseconds delay) {
    seen.emplace_back(st.message());
    announced.push_back(delay);
  };
  int calls = 0;
  absl::Status st = RetryUntil(o, [&] {
    ++calls;
    return calls < 8 ? absl::UnavailableError(std::to_string(calls)) : absl::OkStatus();
  });
  ASSERT_TRUE(st.ok()) << st;
  EXPECT_EQ(calls, 8);
  ASSERT_EQ(sleeper.delays.size(), 7u);
  EXPECT_EQ(announced, sleeper.delays);  // on_retry is told the delay actually waited
  EXPECT_EQ(seen.front(), "1");
  EXPECT_EQ(seen.back(), "7");
  Backoff reference(o.backoff);
  for (size_t i = 0; i < sleeper.delays.size(); ++i) {
    EXPECT_GE(sleeper.delays[i], o.backoff.min_delay) << i;
    EXPECT_LE(sleeper.delays[i], reference.Ceiling(static_cast<int>(i))) << i;
  }
  // The ceiling grows to the cap and stays there.
  EXPECT_EQ(reference.Ceiling(6), milliseconds(1000));
}

TEST(RetryUntil, SameSeedSameDelays) {
  FakeSleeper a, b;
  auto fail = [] { return absl::UnavailableError("x"); };
  RetryOptions oa = Options(&a), ob = Options(&b);
  oa.max_attempts = ob.max_attempts = 6;
  (void)RetryUntil(oa, fail);
  (void)RetryUntil(ob, fail);
  EXPECT_EQ(a.delays, b.delays);
  EXPECT_EQ(a.delays.size(), 5u);
}

TEST(RetryUntil, APermanentErrorIsReturnedAtOnce) {
  FakeSleeper sleeper;
  RetryOptions o = Options(&sleeper);
  o.retryable = [](const absl::Status& st) { return absl::IsUnavailable(st); };
  int calls = 0;
  absl::Status st = RetryUntil(o, [&] {
    ++calls;
    return calls == 1 ? absl::UnavailableError("down") : absl::FailedPreconditionError("wrong");
  });
  EXPECT_EQ(st.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(calls, 2);
  EXPECT_EQ(sleeper.delays.size(), 1u);
}

TEST(RetryUntil, MaxAttemptsReturnsTheLastError) {
  FakeSleeper sleeper;
  RetryOptions o = Options(&sleeper);
  o.max_attempts = 3;
  int calls = 0;
  absl::Status st = RetryUntil(o, [&] {
    ++calls;
    return absl::UnavailableError(std::to_string(calls));
  });
  EXPECT_EQ(st.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(st.message(), "3");
  EXPECT_EQ(calls, 3);
  EXPECT_EQ(sleeper.delays.size(), 2u);
}

TEST(RetryUntil, AStopBeforeTheFirstAttemptAttemptsNothing) {
  FakeSleeper sleeper;
  RetryOptions o = Options(&sleeper);
  std::atomic<bool> stop{true};
  o.stop = StopWhenSet(&stop);
  o.what = "waiting for the moon";
  int calls = 0;
  absl::Status st = RetryUntil(o, [&] {
    ++calls;
    return absl::OkStatus();
  });
  EXPECT_EQ(st.code(), absl::StatusCode::kCancelled);
  EXPECT_EQ(st.message(), "waiting for the moon cancelled");
  EXPECT_EQ(calls, 0);
}

// Work in hand (a batch already read) is tried once even when the stop has begun; its retries
// are not.
TEST(RetryUntil, AttemptOnceDespiteStopMakesOnlyTheFirstAttempt) {
  FakeSleeper sleeper;
  RetryOptions o = Options(&sleeper);
  std::atomic<bool> stop{true};
  o.stop = StopWhenSet(&stop);
  o.attempt_once_despite_stop = true;
  o.what = "batch commit";
  int calls = 0;
  absl::Status st = RetryUntil(o, [&] {
    ++calls;
    return absl::UnavailableError("disk full");
  });
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(st.code(), absl::StatusCode::kCancelled);
  EXPECT_EQ(st.message(), "batch commit cancelled (last error: disk full)");
  calls = 0;
  st = RetryUntil(o, [&] {
    ++calls;
    return absl::OkStatus();
  });
  EXPECT_TRUE(st.ok());
  EXPECT_EQ(calls, 1);
}

TEST(RetryUntil, AStopDuringAWaitEndsTheLoopWithTheLastError) {
  FakeSleeper sleeper;
  sleeper.stop_at_wait = 3;
  RetryOptions o = Options(&sleeper);
  o.what = "delivery";
  int calls = 0;
  absl::Status st = RetryUntil(o, [&] {
    ++calls;
    return absl::UnavailableError("429 es_rejected_execution_exception");
  });
  EXPECT_EQ(st.code(), absl::StatusCode::kCancelled);
  EXPECT_TRUE(absl::StrContains(st.message(), "delivery cancelled")) << st;
  EXPECT_TRUE(absl::StrContains(st.message(), "429 es_rejected")) << st;
  EXPECT_EQ(calls, 3);  // no attempt after the interrupted wait
}

TEST(RetryUntil, ReturnsTheValueOfAStatusOrAttempt) {
  FakeSleeper sleeper;
  RetryOptions o = Options(&sleeper);
  int calls = 0;
  absl::StatusOr<int> r = RetryUntil<int>(o, [&]() -> absl::StatusOr<int> {
    if (++calls < 3) return absl::UnavailableError("not yet");
    return 7;
  });
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(*r, 7);
  o.max_attempts = 1;
  r = RetryUntil<int>(o, [] { return absl::StatusOr<int>(absl::NotFoundError("gone")); });
  EXPECT_EQ(r.status().code(), absl::StatusCode::kNotFound);
}

// The real clock: a wait of 10 s (the longest any rtdw loop waits) ends within a generous bound
// of the stop, whichever thread sets it.
TEST(RetryUntil, ARealWaitEndsSoonAfterAStop) {
  RetryOptions o;
  o.backoff = {milliseconds(10000), milliseconds(10000), milliseconds(10000), 2.0};
  std::atomic<bool> stop{false};
  o.stop = StopWhenSet(&stop);
  std::atomic<int> calls{0};
  auto start = std::chrono::steady_clock::now();
  std::thread stopper([&] {
    while (calls.load() == 0) std::this_thread::sleep_for(milliseconds(5));
    stop = true;
  });
  absl::Status st = RetryUntil(o, [&] {
    ++calls;
    return absl::UnavailableError("down");
  });
  stopper.join();
  EXPECT_EQ(st.code(), absl::StatusCode::kCancelled);
  EXPECT_EQ(calls.load(), 1);
  EXPECT_LT(std::chrono::steady_clock::now() - start, milliseconds(5000));
  // A predicate works as well as a flag.
  start = std::chrono::steady_clock::now();
  EXPECT_FALSE(SleepUnless(milliseconds(10000), [&] {
    return std::chrono::steady_clock::now() - start > milliseconds(50);
  }));
  EXPECT_LT(std::chrono::steady_clock::now() - start, milliseconds(5000));
  EXPECT_TRUE(SleepUnless(milliseconds(1), {}));
}

}  // namespace
}  // namespace rtdw
