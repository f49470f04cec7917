// FetchWaker: wakes librdkafka's fetcher when a consumer's prefetch queue runs low.
//
// Why: librdkafka 2.0.2 (Debian 12) stops fetching for a partition whose consumer queue holds
// `queued.max.messages.kbytes` or more, and decides again only when its broker thread wakes up:
// on I/O, on an operation queued for it, or after at most one second (rd_kafka_max_block_ms;
// `fetch.queue.backoff.ms` came in 2.4, librdkafka issue #2879). A job that drains the queue
// faster than that waits out the rest of the second, so its rate was bounded by about
// 1-2 x the prefetch bound per second, and a job's rate could only be bought with memory
// (docs/BENCHMARKS.md, "The fetcher's one-second sleep").
//
// How: Wake() asks the leaders of the assigned partitions for their end offsets
// (rd_kafka_offsets_for_times with the "latest" timestamp: one ListOffsets request per leader),
// on a thread of its own. Queuing that request wakes each leader's broker thread, which then
// decides again and fetches if the queue is below the bound. The answer is not used; the
// request changes no consumer state (positions, the fetch queue, the group).
//
// When: once per fill — the consumer calls Wake() after a poll that found its queue near the
// bound (FetcherMayHaveStopped) and leaves it under half of it (ShouldWakeFetcher). A consumer
// that keeps up with its topics never comes near the bound and sends nothing. Wakes are coalesced:
// while one request is in flight, further calls only leave one more pending, and two requests start
// at least `min_interval` apart.
//
// Counted: wakes_sent() per waker, and `Options::wakes` (rtdwd: rtdw_kafka_fetch_wakes_total{job},
// a series that outlives the consumers of the job) when given.
//
// Thread-safety: every method may be called from any thread. Stop() (and the destructor) joins
// the thread; it waits at most for the request in flight (`request_timeout`), so a stop while
// Kafka is down stays bounded.
#ifndef RTDW_CONNECTORS_KAFKA_FETCH_WAKER_H_
#define RTDW_CONNECTORS_KAFKA_FETCH_WAKER_H_

#include <atomic>
#include <chrono>
#include <cstdint>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "core/metrics.h"
#include "core/records.h"

typedef struct rd_kafka_s rd_kafka_t;

namespace rtdw {

// True when a queue holding `queued_messages` of about `mean_message_bytes` each is below half
// of `bound_bytes` (queued.max.messages.kbytes in bytes): the fetcher may be asleep on a queue
// that was full, and has room for at least half a bound of new records. False for a bound <= 0.
bool ShouldWakeFetcher(int64_t queued_messages, double mean_message_bytes, int64_t bound_bytes);
// True when such a queue holds three quarters of the bound or more: the fetcher, which stops at
// the bound, may have stopped (the slack covers the estimate's error: the mean of the last poll
// against librdkafka's own count). False for a bound <= 0.
bool FetcherMayHaveStopped(int64_t queued_messages, double mean_message_bytes, int64_t bound_bytes);

class FetchWaker {
 public:
  struct Options {
    std::chrono::milliseconds min_interval{10};
    std::chrono::milliseconds request_timeout{250};
    // When set, +1 for every request sent (on the waker's thread, as wakes_sent()).
    Counter* wakes = nullptr;
  };
  // `rk`, and `options.wakes` when set, must outlive this object (or its Stop(): no request is
  // sent or counted after it returns).
  FetchWaker(rd_kafka_t* rk, Options options);
  ~FetchWaker();
  FetchWaker(const FetchWaker&) = delete;
  FetchWaker& operator=(const FetchWaker&) = delete;

  // The partitions whose leaders a wake reaches (the consumer's assignment).
  void SetPartitions(std::vector<TopicPartition> partitions);
  // Non-blocking. Ignored after Stop() and while no partition is set.
  void Wake();
  // Idempotent. After it, Wake() does nothing.
  void Stop();
  // Requests sent so far (each one ListOffsets round trip per leader).
  uint64_t wakes_sent() const { return wakes_sent_.load(std::memory_order_relaxed); }

 private:
  void Run();
  rd_kafka_t* const rk_;
  const Options options_;
  absl::Mutex mu_;
  absl::CondVar cv_;
  std::vector<TopicPartition> partitions_ ABSL_GUARDED_BY(mu_);
  bool pending_ ABSL_GUARDED_BY(mu_) = false;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::atomic<uint64_t> wakes_sent_{0};
  std::thread thread_;
};

}  // namespace rtdw

#endif  // RTDW_CONNECTORS_KAFKA_FETCH_WAKER_H_
