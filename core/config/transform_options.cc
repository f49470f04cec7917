#include "core/config/transform_options.h"

#include <string>

namespace rtdw {

DauOptions DauTransformOptions(const Config& config) {
  const DauJob& job = config.jobs.dau;
  DauOptions o;
  o.job = std::string(kJobDau);
  o.index_prefix = job.index_prefix;
  o.tz = job.tz;
  o.max_future = job.max_future;
  o.retention_days = config.dedup.retention_days;
  return o;
}

OrderWideOptions OrderWideTransformOptions(const Config& config) {
  const OrderWideJob& job = config.jobs.order_wide;
  OrderWideOptions o;
  o.job = std::string(kJobOrderWide);
  o.order_topic = job.order_topic;
  o.detail_topic = job.detail_topic;
  o.index_prefix = job.index_prefix;
  o.tz = job.tz;
  o.join_ttl = job.join_ttl;
  o.max_future = job.max_future;
  return o;
}

std::unique_ptr<EsTransform> MakeEsTransform(const Config& config, std::string_view job) {
  if (job == kJobDau) return std::make_unique<DauTransform>(DauTransformOptions(config));
  if (job == kJobOrderWide) {
    return std::make_unique<OrderWideTransform>(OrderWideTransformOptions(config));
  }
  return nullptr;
}

}  // namespace rtdw
