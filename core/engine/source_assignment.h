// How every job takes its source partitions (docs/DESIGN.md "The batch transaction"): the start of
// each partition (a stored or committed next offset, else kafka.auto_offset_reset), the partition
// counts its state was built with, lone mode's assignment and its watch for partitions added
// while running, and group mode's subscription and the committed offsets a new owner starts from.
//
// Everything here works on the engine's interfaces — a RecordSource and the job's StateStore —
// so that the job runners share one copy and the engine's unit tests drive it with an in-memory
// source (tests/engine/fakes/fake_source.h). Job thread only, as the source it is given.
//
// Errors: what stops the daemon (exit 1: the operator must act) is a non-OK status —
// FailedPrecondition for a fingerprint mismatch, broken co-partitioning or a partition with no
// offset under kafka.auto_offset_reset "error"; what waiting fixes (a missing topic, an
// unreachable broker or coordinator) is reported through the job's `problem` callback (its
// /health line) and tried again.
#ifndef RTDW_CORE_ENGINE_SOURCE_ASSIGNMENT_H_
#define RTDW_CORE_ENGINE_SOURCE_ASSIGNMENT_H_

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/config/config.h"
#include "core/engine/lag_tracker.h"
#include "core/engine/record_source.h"
#include "storage/state_store.h"

namespace rtdw {

// Where `topic`/`partition` starts: `known` (a stored or committed next offset) when there is
// one, else the beginning or the end per kafka.auto_offset_reset; FailedPrecondition naming the
// partition and what was missing (`missing`: "stored offset", "committed offset in the group")
// when it is "error".
absl::StatusOr<PartitionStart> StartOf(const Config& config, const std::string& topic,
                                       int32_t partition, std::optional<int64_t> known,
                                       std::string_view missing);

// The start of partitions 0..partitions-1 of `topic`: the offset stored in `store`, or, for a
// partition without one, StartOf's choice (FailedPrecondition naming the partition when
// kafka.auto_offset_reset is "error").
absl::StatusOr<std::vector<PartitionStart>> PartitionStarts(const StateStore& store,
                                                            const Config& config,
                                                            const std::string& topic,
                                                            int partitions);

// Checks a source topic's partition count against the one the store's state was built with (its
// fingerprint, StateStore::MergeFingerprint) and records it the first time: FailedPrecondition
// (rtdwd exits 1) naming the topic, both counts and `rtdw meta reset-fingerprint`.
absl::Status CheckPartitionCount(StateStore& store, const std::string& topic, int partitions);

// Lone mode: asks the source for the partition counts of `topics` and returns those larger than
// what `source` has assigned of the topic, as (topic, new count), after recording each new count
// in the store's fingerprint and logging it. A topic the source cannot describe now is left out
// (checked again next time).
absl::StatusOr<std::vector<std::pair<std::string, int>>> GrownTopics(
    RecordSource& source, StateStore& store, const std::string& job,
    const std::vector<std::string>& topics);

// How an attempt at assigning a job's source partitions ended (AssignSources).
enum class Assignment {
  kAssigned,          // lone mode: assigned; group mode: subscribed
  kTopicMissing,      // a source topic does not exist (yet): the job counts as at its end
  kKafkaUnreachable,  // the broker did not answer the metadata request
};

// The assignment step of every runner, taken until it returns kAssigned: checks each source
// topic's partition count against the store's fingerprint (CheckPartitionCount) and, when
// `co_partitioned`, that the counts are equal; then group mode (`listener` not null) subscribes,
// and lone mode assigns every partition from the store's offsets (PartitionStarts) and tells
// `lag`. A missing topic or an unreachable broker goes to `problem` (the job's /health line);
// an assignment clears it (`problem("")`). Errors (a fingerprint mismatch, co-partitioning
// broken, kafka.auto_offset_reset "error" with no offset, the source refusing the assignment)
// stop the daemon; nothing is assigned then.
absl::StatusOr<Assignment> AssignSources(RecordSource& source, StateStore& store,
                                         const Config& config, const std::string& job,
                                         const std::vector<std::string>& topics,
                                         bool co_partitioned, RebalanceListener* listener,
                                         KafkaLagTracker& lag,
                                         const std::function<void(std::string)>& problem);

// Lone mode's watch for partitions added to the source topics while the job runs
// (docs/OPERATIONS.md, "Scaling"), shared by every runner. Job thread only.
class NewPartitionWatch {
 public:
  // After an empty poll: asks the source (GrownTopics) every minute, and when the job is about
  // to say it is at its end (`at_end` and not `was_at_end`; then every second), so that
  // --exit-when-idle never leaves new partitions unread. The topics that grew (the job assigns
  // again); empty when none did or it was not time to ask.
  absl::StatusOr<std::vector<std::pair<std::string, int>>> Grown(
      RecordSource& source, StateStore& store, const std::string& job,
      const std::vector<std::string>& topics, bool at_end, bool was_at_end);

 private:
  std::chrono::steady_clock::time_point last_check_{};
};

// Group mode: the group's committed next offsets of `partitions` (a partition without one is
// absent), asked until the coordinator answers: each failure goes to `problem` (the job's
// /health line) and is asked again after kServiceWaitBackoff (0.5 s doubling to 10 s). Asked
// once even when a stop has begun; Cancelled once `stopped()` is true after a failure.
absl::StatusOr<std::map<TopicPartition, int64_t>> GroupCommitted(
    RecordSource& source, const std::vector<TopicPartition>& partitions,
    const std::function<bool()>& stopped, const std::function<void(std::string_view)>& problem);

}  // namespace rtdw

#endif  // RTDW_CORE_ENGINE_SOURCE_ASSIGNMENT_H_
