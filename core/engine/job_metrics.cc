#include "core/engine/job_metrics.h"

#include "core/config/config.h"
#include "core/dead_letter.h"

namespace rtdw {

JobMetrics::JobMetrics(MetricsRegistry* metrics, const std::string& job)
    : registry(metrics), job(job) {
  const Labels labels = {{"job", job}};
  records_in = metrics->GetCounter("rtdw_records_in_total", "Source records consumed", labels);
  records_out = metrics->GetCounter(
      "rtdw_records_out_total",
      "Records produced (split jobs: Kafka records; ES jobs: documents journaled for ES)", labels);
  dead_letters = metrics->GetCounter("rtdw_dead_letter_records_total",
                                     "Records sent to the dead letters", labels);
  batches = metrics->GetCounter("rtdw_batches_total", "Batches committed", labels);
  batch_seconds = metrics->GetHistogram("rtdw_batch_seconds", "Batch latency, poll to commit",
                                        labels, MetricsRegistry::LatencyBounds());
  for (std::string_view reason : JobDeadLetterReasons(job)) DeadLetters(reason);
}

Counter* JobMetrics::DeadLetters(std::string_view reason) const {
  return registry->GetCounter("rtdw_dead_letters_total",
                              "Records rejected to the dead letters, by reason",
                              {{"job", job}, {"reason", std::string(reason)}});
}

std::vector<std::string_view> JobDeadLetterReasons(std::string_view job) {
  const bool split = job == kJobLogSplit || job == kJobDbSplit;
  std::vector<std::string_view> out;
  for (int r = 0; r < kReasonCount; ++r) {
    const Reason reason = static_cast<Reason>(r);
    bool gives;
    switch (reason) {
      case Reason::kLate:
      case Reason::kFuture:
      case Reason::kEsRejected:
        gives = !split;
        break;
      case Reason::kJoinExpired:
      case Reason::kUnknownTopic:
        gives = job == kJobOrderWide;
        break;
      case Reason::kNoMid:
        gives = job != kJobOrderWide;
        break;
      case Reason::kNoId:
        gives = job != kJobDau;
        break;
      case Reason::kNoPayload:
      case Reason::kTooManyItems:
        gives = split;
        break;
      default:  // parse and shape: every job reads JSON records
        gives = true;
    }
    if (gives) out.push_back(ReasonCode(reason));
  }
  return out;
}

}  // namespace rtdw
