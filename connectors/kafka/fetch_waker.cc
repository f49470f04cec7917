#include "connectors/kafka/fetch_waker.h"

#include <librdkafka/rdkafka.h>

#include <utility>

namespace rtdw {

bool ShouldWakeFetcher(int64_t queued_messages, double mean_message_bytes, int64_t bound_bytes) {
  if (bound_bytes <= 0) return false;
  return static_cast<double>(queued_messages) * mean_message_bytes <
         static_cast<double>(bound_bytes) / 2;
}

FetchWaker::FetchWaker(rd_kafka_t* rk, Options options) : rk_(rk), options_(options) {
  thread_ = std::thread([this] { Run(); });
}

FetchWaker::~FetchWaker() { Stop(); }

void FetchWaker::SetPartitions(std::vector<TopicPartition> partitions) {
  std::lock_guard<std::mutex> lock(mu_);
  partitions_ = std::move(partitions);
}

void FetchWaker::Wake() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_ || partitions_.empty() || pending_) return;
    pending_ = true;
  }
  cv_.notify_one();
}

void FetchWaker::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_one();
  if (thread_.joinable()) thread_.join();
}

void FetchWaker::Run() {
  std::unique_lock<std::mutex> lock(mu_);
  auto next_allowed = std::chrono::steady_clock::now();
  while (true) {
    cv_.wait(lock, [this] { return stopping_ || pending_; });
    if (stopping_) return;
    // Two requests at least min_interval apart; a Stop() meanwhile ends the wait.
    if (cv_.wait_until(lock, next_allowed, [this] { return stopping_; })) return;
    pending_ = false;
    std::vector<TopicPartition> partitions = partitions_;
    lock.unlock();
    if (!partitions.empty()) {
      rd_kafka_topic_partition_list_t* list =
          rd_kafka_topic_partition_list_new(static_cast<int>(partitions.size()));
      for (const auto& [topic, partition] : partitions) {
        rd_kafka_topic_partition_list_add(list, topic.c_str(), partition)->offset =
            RD_KAFKA_OFFSET_END;
      }
      // Bounded by its timeout even when the leader is down (where
      // rd_kafka_query_watermark_offsets in 2.0.2 is not). The answer is not needed.
      (void)rd_kafka_offsets_for_times(rk_, list,
                                       static_cast<int>(options_.request_timeout.count()));
      rd_kafka_topic_partition_list_destroy(list);
      wakes_sent_.fetch_add(1, std::memory_order_relaxed);
    }
    next_allowed = std::chrono::steady_clock::now() + options_.min_interval;
    lock.lock();
  }
}

}  // namespace rtdw
