// rtdwd's wiring of the jobs to their services: the Kafka, ES and producer client options from
// the config, librdkafka's log into spdlog, and the start-up check before an ES job's store is
// created. What the job runners share that needs no client library — the job's store, the source
// assignment, the lag — is the engine's (core/engine/job_store.h, source_assignment.h,
// lag_tracker.h; included here for the runners).
#ifndef RTDW_TOOLS_RTDWD_JOB_COMMON_H_
#define RTDW_TOOLS_RTDWD_JOB_COMMON_H_

#include <functional>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "connectors/es/es_client.h"
#include "connectors/kafka/consumer.h"
#include "connectors/kafka/producer.h"
#include "connectors/redis/redis_client.h"
#include "core/config/config.h"
#include "core/engine/batch_runner.h"
#include "core/engine/job_health.h"
#include "core/engine/job_metrics.h"
#include "core/engine/job_store.h"
#include "core/engine/lag_tracker.h"
#include "core/engine/retry_policies.h"
#include "core/engine/source_assignment.h"
#include "core/metrics.h"
#include "storage/state_store.h"

namespace rtdw {

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

// The Redis client options of rtdwd (db-split, the ES jobs' dimensions, the service probe) from
// [redis]: address, db, credentials; the default 5 s timeout.
RedisClientOptions JobRedisClientOptions(const Config& config);

// The consumer options every job uses: brokers, [kafka.properties], the group id ("<group>.<job>",
// group "rtdw" when kafka.group is absent) and librdkafka's log lines through spdlog.
KafkaConsumerOptions JobConsumerOptions(const Config& config, const std::string& job);

// The BatchRunner's source of `job`: a KafkaConsumer with JobConsumerOptions, the runner's
// rtdw_kafka_fetch_wakes_total{job} (SourceMetrics) counting its fetch wakes, and librdkafka's
// "range" assignment when `range` (group mode of a co-partitioned job: partition p of every source
// topic on one member).
SourceFactory JobSourceFactory(const Config& config, const std::string& job, bool range = false);

}  // namespace rtdw

#endif  // RTDW_TOOLS_RTDWD_JOB_COMMON_H_
