// What every job runner does the same way: open its state store from the config, and compute
// where each source partition starts (the stored or the group's committed next offset, else
// kafka.auto_offset_reset).
#ifndef RTDW_TOOLS_RTDWD_JOB_COMMON_H_
#define RTDW_TOOLS_RTDWD_JOB_COMMON_H_

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "connectors/es/es_client.h"
#include "connectors/kafka/consumer.h"
#include "connectors/kafka/producer.h"
#include "core/backoff.h"
#include "core/config/config.h"
#include "core/engine/job_health.h"
#include "core/engine/job_metrics.h"
#include "core/engine/retry_policies.h"
#include "core/metrics.h"
#include "storage/state_store.h"

namespace rtdw {

class KafkaLagTracker;  // tools/rtdwd/progress.h

// `<state.dir>/<job>` with the config's cache size, sync and the job's state fingerprint; the
// store's messages go to the log.
absl::StatusOr<std::unique_ptr<StateStore>> OpenJobStore(const Config& config,
                                                         const std::string& job);

// True when `job` has no state store under `state_dir` yet (no directory, or an empty one): the
// daemon's open would create it.
bool StoreMissing(const std::string& state_dir, const std::string& job);

// The start-up check before rtdwd creates a fresh store for an ES job (dau, order-wide): OK when
// the store exists, when the job is not an ES job, in group mode (kafka.group: a new member
// rebuilds each partition it is given), or when Elasticsearch holds none of the job's
// daily indices (`<index_prefix><yyyy-mm-dd>`) of the days a lost store's state covered — dau:
// today (the wall clock in the job's time zone) and the dedup.retention_days-1 days before;
// order-wide: today and the days join_ttl reaches back (at least yesterday); a later day too.
// FailedPrecondition (rtdwd exits 1) when it does, naming the indices, the restore procedure
// (docs/OPERATIONS.md "Disaster recovery") and `rtdw state init --job J` (start empty on
// purpose). Elasticsearch unreachable: asked again with backoff (0.5 s doubling to 10 s), each
// failure going to `problem` (the job's /health line) — never a silent creation; Cancelled once
// `stopped()` is true.
absl::Status CheckFreshStore(const Config& config, const std::string& job,
                             const std::string& config_path, const std::function<bool()>& stopped,
                             const std::function<void(std::string_view)>& problem);

// librdkafka's log lines of `who` (a job, "probe") into spdlog at the matching level, as
// "<who>: kafka: <facility>: <message>": for KafkaConsumerOptions::log and
// KafkaProducerOptions::log.
std::function<void(int, std::string_view, std::string_view)> KafkaLogToSpdlog(std::string who);

// The producer options every split job (and the service probe) uses: brokers, [kafka.properties],
// librdkafka's log lines through spdlog.
KafkaProducerOptions JobProducerOptions(const Config& config, const std::string& who);

// The ES client options of rtdwd (the ES jobs and the service probe) from [es]: URLs,
// credentials, TLS, bulk and response bounds; warnings go to spdlog as "<who>: es: ...".
EsClientOptions JobEsClientOptions(const Config& config, const std::string& who);

// The consumer options every job uses: brokers, [kafka.properties], the group id ("<group>.<job>",
// group "rtdw" when kafka.group is absent) and librdkafka's log lines through spdlog.
KafkaConsumerOptions JobConsumerOptions(const Config& config, const std::string& job);

// The start of partitions 0..partitions-1 of `topic`: the offset stored in `store`, or, for a
// partition without one, the beginning / the end per kafka.auto_offset_reset (FailedPrecondition
// naming the partition when it is "error").
// Checks a source topic's partition count against the one the store's state was built with (its
// fingerprint, StateStore::MergeFingerprint) and records it the first time: FailedPrecondition
// (rtdwd exits 1) naming the topic, both counts and `rtdw meta reset-fingerprint`.
absl::Status CheckPartitionCount(StateStore& store, const std::string& topic, int partitions);

// Lone mode's watch for partitions added to source topics while rtdwd runs (docs/OPERATIONS.md,
// "Scaling"):
// asks the broker for the partition counts of `topics` (one metadata request each) and returns
// those larger than what `consumer` has assigned of the topic, as (topic, new count), after
// recording each new count in the store's fingerprint and logging it. A topic the broker cannot
// describe now is left out (checked again next time).
absl::StatusOr<std::vector<std::pair<std::string, int>>> GrownTopics(
    KafkaConsumer& consumer, StateStore& store, const std::string& job,
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
// an assignment clears it. Errors (a fingerprint mismatch, co-partitioning broken,
// kafka.auto_offset_reset "error" with no offset) stop the daemon.
absl::StatusOr<Assignment> AssignSources(KafkaConsumer& consumer, StateStore& store,
                                         const Config& config, const std::string& job,
                                         const std::vector<std::string>& topics,
                                         bool co_partitioned, RebalanceListener* listener,
                                         KafkaLagTracker& lag,
                                         const std::function<void(std::string)>& problem);

// Lone mode's watch for partitions added to the source topics while the job runs
// (docs/OPERATIONS.md, "Scaling"), shared by every runner. Job thread only.
class NewPartitionWatch {
 public:
  // After an empty poll: asks the broker (GrownTopics) every minute, and when the job is about
  // to say it is at its end (`at_end` and not `was_at_end`; then every second), so that
  // --exit-when-idle never leaves new partitions unread. The topics that grew (the job assigns
  // again); empty when none did or it was not time to ask.
  absl::StatusOr<std::vector<std::pair<std::string, int>>> Grown(
      KafkaConsumer& consumer, StateStore& store, const std::string& job,
      const std::vector<std::string>& topics, bool at_end, bool was_at_end);

 private:
  std::chrono::steady_clock::time_point last_check_{};
};

absl::StatusOr<std::vector<PartitionStart>> PartitionStarts(const StateStore& store,
                                                            const Config& config,
                                                            const std::string& topic,
                                                            int partitions);

// Where `topic`/`partition` starts: `known` (a stored or committed next offset) when there is
// one, else the beginning or the end per kafka.auto_offset_reset; FailedPrecondition naming the
// partition and what was missing (`missing`: "stored offset", "committed offset in the group")
// when it is "error".
absl::StatusOr<PartitionStart> StartOf(const Config& config, const std::string& topic,
                                       int32_t partition, std::optional<int64_t> known,
                                       std::string_view missing);

// The group's committed next offsets of `partitions` (a partition without one is absent), asked
// until the coordinator answers: each failure goes to `problem` (the job's /health line) and is
// asked again after a backoff (0.5 s doubling to 10 s). Cancelled once `stopped()` is true.
absl::StatusOr<std::map<TopicPartition, int64_t>> GroupCommitted(
    KafkaConsumer& consumer, const std::vector<TopicPartition>& partitions,
    const std::function<bool()>& stopped, const std::function<void(std::string_view)>& problem);

}  // namespace rtdw

#endif  // RTDW_TOOLS_RTDWD_JOB_COMMON_H_
