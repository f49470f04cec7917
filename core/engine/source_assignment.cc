#include "core/engine/source_assignment.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/backoff.h"
#include "core/engine/retry_policies.h"
#include "core/status_util.h"
#include "spdlog/spdlog.h"

namespace rtdw {

absl::StatusOr<PartitionStart> StartOf(const Config& config, const std::string& topic,
                                       int32_t partition, std::optional<int64_t> known,
                                       std::string_view missing) {
  PartitionStart s{topic, partition, PartitionStart::kBeginning};
  if (known) {
    s.offset = *known;
    return s;
  }
  switch (config.kafka.auto_offset_reset) {
    case AutoOffsetReset::kEarliest:
      s.offset = PartitionStart::kBeginning;
      break;
    case AutoOffsetReset::kLatest:
      s.offset = PartitionStart::kEnd;
      break;
    case AutoOffsetReset::kError:
      return absl::FailedPreconditionError(
          absl::StrCat(topic, "/", partition, " has no ", ToAbsl(missing),
                       " and kafka.auto_offset_reset is \"error\""));
  }
  return s;
}

absl::StatusOr<std::vector<PartitionStart>> PartitionStarts(const StateStore& store,
                                                            const Config& config,
                                                            const std::string& topic,
                                                            int partitions) {
  auto stored = store.GetOffsets(topic);
  if (!stored.ok()) return stored.status();
  std::vector<PartitionStart> starts;
  for (int p = 0; p < partitions; ++p) {
    std::optional<int64_t> known;
    for (const auto& o : *stored) {
      if (o.partition == p) known = o.next_offset;
    }
    RTDW_ASSIGN_OR_RETURN(PartitionStart s, StartOf(config, topic, p, known, "stored offset"));
    starts.push_back(s);
  }
  return starts;
}

absl::Status CheckPartitionCount(StateStore& store, const std::string& topic, int partitions) {
  return store.MergeFingerprint(absl::StrCat("partitions.", topic, "=", partitions));
}

absl::StatusOr<std::vector<std::pair<std::string, int>>> GrownTopics(
    RecordSource& source, StateStore& store, const std::string& job,
    const std::vector<std::string>& topics) {
  std::vector<std::pair<std::string, int>> grown;
  for (const std::string& topic : topics) {
    int assigned = 0;
    for (const auto& [t, p] : source.assignment()) {
      if (t == topic) ++assigned;
    }
    auto count = source.PartitionCount(topic, std::chrono::seconds(5));
    if (!count.ok() || *count <= assigned) continue;
    RTDW_RETURN_IF_ERROR(store.MergeFingerprint(absl::StrCat("partitions.", topic, "=", *count),
                                                /*replace=*/true));
    spdlog::warn(
        "{}: {} has {} partitions now, {} when assigned: partitions {}-{} are picked up (from "
        "their stored offsets, else kafka.auto_offset_reset)",
        job, topic, *count, assigned, assigned, *count - 1);
    grown.emplace_back(topic, *count);
  }
  return grown;
}

absl::StatusOr<Assignment> AssignSources(RecordSource& source, StateStore& store,
                                         const Config& config, const std::string& job,
                                         const std::vector<std::string>& topics,
                                         bool co_partitioned, RebalanceListener* listener,
                                         KafkaLagTracker& lag,
                                         const std::function<void(std::string)>& problem) {
  std::vector<PartitionStart> starts;
  int first_count = -1;
  for (const auto& topic : topics) {
    auto partitions = source.PartitionCount(topic, std::chrono::seconds(5));
    if (absl::IsNotFound(partitions.status())) {
      problem(absl::StrCat("waiting for source topic ", topic));
      return Assignment::kTopicMissing;
    }
    if (!partitions.ok()) {
      problem(absl::StrCat("kafka unreachable (", config.kafka.brokers,
                           "): ", std::string(partitions.status().message())));
      return Assignment::kKafkaUnreachable;
    }
    RTDW_RETURN_IF_ERROR(CheckPartitionCount(store, topic, *partitions));
    if (co_partitioned && first_count >= 0 && *partitions != first_count) {
      return absl::FailedPreconditionError(
          absl::StrCat(job, ": the source topics ", absl::StrJoin(topics, " and "),
                       " have different partition counts (", first_count, " vs ", *partitions,
                       "); the join relies on co-partitioning"));
    }
    first_count = *partitions;
    if (listener != nullptr) continue;
    RTDW_ASSIGN_OR_RETURN(auto topic_starts, PartitionStarts(store, config, topic, *partitions));
    starts.insert(starts.end(), topic_starts.begin(), topic_starts.end());
  }
  if (listener != nullptr) {
    RTDW_RETURN_IF_ERROR(source.Subscribe(topics, listener));
    problem("");
    spdlog::info("{}: joined consumer group {}.{} for {}", job, config.kafka.group.value_or("rtdw"),
                 job, absl::StrJoin(topics, ","));
    return Assignment::kAssigned;
  }
  RTDW_RETURN_IF_ERROR(source.Assign(starts));
  lag.Assigned(starts);
  problem("");
  spdlog::info("{}: assigned {} partitions of {}", job, starts.size(), absl::StrJoin(topics, ","));
  return Assignment::kAssigned;
}

absl::StatusOr<std::vector<std::pair<std::string, int>>> NewPartitionWatch::Grown(
    RecordSource& source, StateStore& store, const std::string& job,
    const std::vector<std::string>& topics, bool at_end, bool was_at_end) {
  const auto now = std::chrono::steady_clock::now();
  const bool arriving_at_end = at_end && !was_at_end;
  const auto interval = at_end ? std::chrono::seconds(1) : std::chrono::seconds(60);
  if (!arriving_at_end && now - last_check_ < interval) {
    return std::vector<std::pair<std::string, int>>{};
  }
  last_check_ = now;
  return GrownTopics(source, store, job, topics);
}

absl::StatusOr<std::map<TopicPartition, int64_t>> GroupCommitted(
    RecordSource& source, const std::vector<TopicPartition>& partitions,
    const std::function<bool()>& stopped, const std::function<void(std::string_view)>& problem) {
  RetryOptions retry;
  retry.backoff = kServiceWaitBackoff;
  retry.stop = stopped;
  retry.attempt_once_despite_stop = true;  // the group is asked even when a stop has begun
  retry.what = "asking the group for its offsets";
  retry.on_retry = [&](const absl::Status& st, std::chrono::milliseconds) {
    problem(std::string(st.message()));
  };
  return RetryUntil<std::map<TopicPartition, int64_t>>(
      retry, [&] { return source.Committed(partitions, std::chrono::seconds(10)); });
}

}  // namespace rtdw
