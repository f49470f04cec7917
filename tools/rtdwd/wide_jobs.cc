// The two ES jobs on the engine's runner (es_job.h): dau and order-wide.
#include "core/config/transform_options.h"
#include "core/dau_transform.h"
#include "core/order_wide_transform.h"
#include "tools/rtdwd/es_job.h"
#include "tools/rtdwd/jobs.h"

namespace rtdw {

std::unique_ptr<JobRunner> MakeDauRunner(const Config& config, MetricsRegistry* metrics) {
  const DauJob& job = config.jobs.dau;
  EsJobSettings s;
  s.job = std::string(kJobDau);
  s.source_topics = {job.source_topic};
  s.batch_max_records = job.batch_max_records;
  s.batch_max_ms = job.batch_max_ms;
  s.dau_index_prefix = job.index_prefix;
  s.dedup_retention_days = config.dedup.retention_days;
  s.time_zone = job.tz;
  return MakeEsRunner(config, s, std::make_unique<DauTransform>(DauTransformOptions(config)),
                      metrics);
}

std::unique_ptr<JobRunner> MakeOrderWideRunner(const Config& config, MetricsRegistry* metrics) {
  const OrderWideJob& job = config.jobs.order_wide;
  EsJobSettings s;
  s.job = std::string(kJobOrderWide);
  s.source_topics = {job.order_topic, job.detail_topic};
  s.co_partitioned = true;
  s.join_state = true;
  s.batch_max_records = job.batch_max_records;
  s.batch_max_ms = job.batch_max_ms;
  s.order_wide_index_prefix = job.index_prefix;
  s.idle_input = job.idle_input;
  s.time_zone = job.tz;
  return MakeEsRunner(
      config, s, std::make_unique<OrderWideTransform>(OrderWideTransformOptions(config)), metrics);
}

}  // namespace rtdw
