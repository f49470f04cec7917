#include "connectors/kafka/destroy.h"

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>

namespace rtdw {
namespace {

std::atomic<int> g_still_destroying{0};

struct DestroyState {
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;       // guarded by mu
  bool abandoned = false;  // guarded by mu: counted in g_still_destroying
};

}  // namespace

int KafkaClientsStillDestroying() { return g_still_destroying.load(); }

namespace kafka_internal {

bool DestroyBy(std::function<void()> destroy, std::chrono::steady_clock::time_point deadline) {
  auto state = std::make_shared<DestroyState>();
  std::thread thread([state, destroy = std::move(destroy)]() mutable {
    destroy();
    destroy = nullptr;  // what it owns goes now, not when the last state reference does
    std::lock_guard<std::mutex> lock(state->mu);
    state->done = true;
    if (state->abandoned) g_still_destroying.fetch_sub(1);
    state->cv.notify_all();
  });
  std::unique_lock<std::mutex> lock(state->mu);
  if (state->cv.wait_until(lock, deadline, [&] { return state->done; })) {
    lock.unlock();
    thread.join();
    return true;
  }
  state->abandoned = true;
  g_still_destroying.fetch_add(1);
  lock.unlock();
  thread.detach();
  return false;
}

}  // namespace kafka_internal
}  // namespace rtdw
