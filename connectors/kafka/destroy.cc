#include "connectors/kafka/destroy.h"

#include <atomic>
#include <memory>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace rtdw {
namespace {

std::atomic<int> g_still_destroying{0};

struct DestroyState {
  absl::Mutex mu;
  bool done ABSL_GUARDED_BY(mu) = false;
  bool abandoned ABSL_GUARDED_BY(mu) = false;  // counted in g_still_destroying
};

}  // namespace

int KafkaClientsStillDestroying() { return g_still_destroying.load(); }

namespace kafka_internal {

bool DestroyBy(std::function<void()> destroy, std::chrono::steady_clock::time_point deadline) {
  auto state = std::make_shared<DestroyState>();
  std::thread thread([state, destroy = std::move(destroy)]() mutable {
    destroy();
    destroy = nullptr;  // what it owns goes now, not when the last state reference does
    absl::MutexLock lock(&state->mu);
    state->done = true;
    if (state->abandoned) g_still_destroying.fetch_sub(1);
  });
  bool done = false;
  {
    absl::MutexLock lock(&state->mu);
    done =
        state->mu.AwaitWithTimeout(absl::Condition(&state->done),
                                   absl::FromChrono(deadline - std::chrono::steady_clock::now()));
    if (!done) {
      state->abandoned = true;
      g_still_destroying.fetch_add(1);
    }
  }
  if (done) {
    thread.join();
    return true;
  }
  thread.detach();
  return false;
}

}  // namespace kafka_internal
}  // namespace rtdw
