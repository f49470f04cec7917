#include "core/engine/lag_tracker.h"

#include <algorithm>

namespace rtdw {
namespace {

constexpr char kLagHelp[] = "Records behind the partition's high watermark";

}  // namespace

KafkaLagTracker::KafkaLagTracker(MetricsRegistry* metrics, std::string job)
    : metrics_(metrics), job_(std::move(job)) {}

void KafkaLagTracker::Assigned(const std::vector<PartitionStart>& starts) {
  parts_.clear();
  for (const PartitionStart& s : starts) {
    Part& p = parts_[{s.topic, s.partition}];
    p.position = s.offset >= 0 ? s.offset : -1;
    p.from_end = s.offset == PartitionStart::kEnd;
    p.gauge = metrics_->GetGauge(
        "rtdw_kafka_lag", kLagHelp,
        {{"job", job_}, {"topic", s.topic}, {"partition", std::to_string(s.partition)}});
    p.gauge->Set(0);
  }
  partitions_ = static_cast<int>(parts_.size());
  total_ = 0;
}

void KafkaLagTracker::Committed(const std::map<TopicPartition, int64_t>& next_offsets) {
  for (const auto& [tp, offset] : next_offsets) {
    auto it = parts_.find(tp);
    if (it != parts_.end()) it->second.position = std::max(it->second.position, offset);
  }
}

void KafkaLagTracker::Update(const std::map<TopicPartition, int64_t>& high_watermarks,
                             bool at_end) {
  int64_t total = 0;
  for (auto& [tp, part] : parts_) {
    auto it = high_watermarks.find(tp);
    if (it == high_watermarks.end()) {  // not fetched yet: keep the last figure
      total += static_cast<int64_t>(part.gauge->value());
      continue;
    }
    const int64_t high = it->second;
    if (at_end || (part.position < 0 && part.from_end)) part.position = high;
    const int64_t lag = std::max<int64_t>(0, high - std::max<int64_t>(0, part.position));
    part.gauge->Set(static_cast<double>(lag));
    total += lag;
  }
  total_ = total;
}

}  // namespace rtdw
