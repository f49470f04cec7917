// The ES jobs' transform settings from a loaded config: one place for rtdwd's jobs and for
// `rtdw deadletter retry`, which re-judges dead-lettered records exactly as the job would.
#ifndef RTDW_CORE_CONFIG_TRANSFORM_OPTIONS_H_
#define RTDW_CORE_CONFIG_TRANSFORM_OPTIONS_H_

#include <memory>
#include <string_view>

#include "core/config/config.h"
#include "core/dau_transform.h"
#include "core/es_transform.h"
#include "core/order_wide_transform.h"

namespace rtdw {

// [jobs.dau] and [dedup] as DauOptions.
DauOptions DauTransformOptions(const Config& config);
// [jobs.order-wide] as OrderWideOptions.
OrderWideOptions OrderWideTransformOptions(const Config& config);
// The transform of ES job `job` (dau, order-wide); null for any other job.
std::unique_ptr<EsTransform> MakeEsTransform(const Config& config, std::string_view job);

}  // namespace rtdw

#endif  // RTDW_CORE_CONFIG_TRANSFORM_OPTIONS_H_
