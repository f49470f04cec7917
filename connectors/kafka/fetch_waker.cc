#include "connectors/kafka/fetch_waker.h"

#include <librdkafka/rdkafka.h>

#include <utility>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "connectors/kafka/partition_list.h"

namespace rtdw {

bool ShouldWakeFetcher(int64_t queued_messages, double mean_message_bytes, int64_t bound_bytes) {
  if (bound_bytes <= 0) return false;
  return static_cast<double>(queued_messages) * mean_message_bytes <
         static_cast<double>(bound_bytes) / 2;
}

bool FetcherMayHaveStopped(int64_t queued_messages, double mean_message_bytes,
                           int64_t bound_bytes) {
  if (bound_bytes <= 0) return false;
  return static_cast<double>(queued_messages) * mean_message_bytes >=
         static_cast<double>(bound_bytes) * 3 / 4;
}

FetchWaker::FetchWaker(rd_kafka_t* rk, Options options) : rk_(rk), options_(options) {
  thread_ = std::thread([this] { Run(); });
}

FetchWaker::~FetchWaker() { Stop(); }

void FetchWaker::SetPartitions(std::vector<TopicPartition> partitions) {
  absl::MutexLock lock(&mu_);
  partitions_ = std::move(partitions);
}

void FetchWaker::Wake() {
  absl::MutexLock lock(&mu_);
  if (stopping_ || partitions_.empty() || pending_) return;
  pending_ = true;
  cv_.Signal();
}

void FetchWaker::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
    cv_.Signal();
  }
  if (thread_.joinable()) thread_.join();
}

void FetchWaker::Run() {
  absl::Time next_allowed = absl::Now();
  mu_.Lock();
  while (true) {
    while (!stopping_ && !pending_) cv_.Wait(&mu_);
    // Two requests at least min_interval apart; a Stop() meanwhile ends the wait.
    while (!stopping_ && absl::Now() < next_allowed) cv_.WaitWithDeadline(&mu_, next_allowed);
    if (stopping_) break;
    pending_ = false;
    std::vector<TopicPartition> partitions = partitions_;
    mu_.Unlock();
    if (!partitions.empty()) {
      // Bounded by its timeout even when the leader is down (where
      // rd_kafka_query_watermark_offsets in 2.0.2 is not). The answer is not needed.
      (void)rd_kafka_offsets_for_times(
          rk_, kafka_internal::NewPartitionList(partitions, RD_KAFKA_OFFSET_END).get(),
          static_cast<int>(options_.request_timeout.count()));
      wakes_sent_.fetch_add(1, std::memory_order_relaxed);
      if (options_.wakes != nullptr) options_.wakes->Add();
    }
    next_allowed = absl::Now() + absl::FromChrono(options_.min_interval);
    mu_.Lock();
  }
  mu_.Unlock();
}

}  // namespace rtdw
