// The ES-writing jobs (dau, order-wide) wired to the engine: a BatchRunner
// (core/engine/batch_runner.h) over a KafkaConsumer with the "journal and deliver" strategy
// (core/engine/journal_strategy.h: the batch transaction, the journal's delivery, the group
// hand-over), whose services are Elasticsearch (the journal's sink, the index templates, the
// de-dup restore's reader) and Redis (the dimension rows), and rtdwd's test-only fault points.
#ifndef RTDW_TOOLS_RTDWD_ES_JOB_H_
#define RTDW_TOOLS_RTDWD_ES_JOB_H_

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "core/config/config.h"
#include "core/engine/job_runner.h"
#include "core/es_transform.h"
#include "core/metrics.h"

namespace rtdw {

struct EsJobSettings {
  std::string job;
  std::vector<std::string> source_topics;
  bool co_partitioned = false;  // the source topics must have equal partition counts
  // order-wide: source_topics = {order topic, detail topic}; join rows hold back the hand-over.
  bool join_state = false;
  int64_t batch_max_records = 10000;
  std::chrono::milliseconds batch_max_ms{200};
  size_t max_backlog = 4;               // owed journal entries before polling pauses
  std::string dau_index_prefix;         // "" = no DAU template
  std::string order_wide_index_prefix;  // "" = no order-wide template
  // dau: keep the watermark's day and the N-1 days before it (0 = no de-dup state to drop).
  int dedup_retention_days = 0;
  // order-wide (jobs.order-wide.idle_input): a source partition at its end for this long is
  // named idle to the transform (EsTransform::SetIdleInputs). Unset: none is ever idle.
  std::optional<std::chrono::seconds> idle_input;
  absl::TimeZone time_zone;
};

// The runner of an ES job. `config` and `metrics` must outlive it.
std::unique_ptr<JobRunner> MakeEsRunner(const Config& config, EsJobSettings settings,
                                        std::unique_ptr<EsTransform> transform,
                                        MetricsRegistry* metrics);

}  // namespace rtdw

#endif  // RTDW_TOOLS_RTDWD_ES_JOB_H_
