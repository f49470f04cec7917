// The metrics every job registers (rtdw_records_in_total, ..., rtdw_dead_letters_total{reason}).
#ifndef RTDW_CORE_ENGINE_JOB_METRICS_H_
#define RTDW_CORE_ENGINE_JOB_METRICS_H_

#include <string>
#include <string_view>
#include <vector>

#include "core/metrics.h"

namespace rtdw {

// The metrics every job has, registered under one name and help text each (split and ES jobs
// alike; `records_out` counts Kafka records for split jobs and documents for ES jobs). The
// constructor also creates, at 0, `rtdw_dead_letters_total{job,reason}` for every reason the job
// can give (JobDeadLetterReasons).
struct JobMetrics {
  JobMetrics(MetricsRegistry* metrics, const std::string& job);
  // rtdw_dead_letters_total{job,reason} (`reason`: a ReasonCode()); thread-safe.
  Counter* DeadLetters(std::string_view reason) const;

  MetricsRegistry* registry;
  std::string job;
  Counter* records_in;
  Counter* records_out;
  Counter* dead_letters;  // every reason
  Counter* batches;
  Histogram* batch_seconds;  // poll to commit
};

// The dead-letter reasons (core/dead_letter.h) `job` can give: the split jobs' parse and shape
// reasons; the ES jobs' own (dau: late, future; order-wide: late, future, join_expired; both:
// es_rejected) besides the parse reasons of their input.
std::vector<std::string_view> JobDeadLetterReasons(std::string_view job);

}  // namespace rtdw

#endif  // RTDW_CORE_ENGINE_JOB_METRICS_H_
