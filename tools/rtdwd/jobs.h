// The factory from a job name to its runner.
#ifndef RTDW_TOOLS_RTDWD_JOBS_H_
#define RTDW_TOOLS_RTDWD_JOBS_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "core/config/config.h"
#include "core/metrics.h"
#include "core/engine/job_runner.h"

namespace rtdw {

// The runner of `job` (a known job name) configured from `config`. Not yet built jobs are an
// Unimplemented error naming the job.
absl::StatusOr<std::unique_ptr<JobRunner>> MakeJobRunner(const std::string& job,
                                                         const Config& config,
                                                         MetricsRegistry* metrics);

// The runners of each job (one file each).
std::unique_ptr<JobRunner> MakeLogSplitRunner(const Config& config, MetricsRegistry* metrics);
std::unique_ptr<JobRunner> MakeDbSplitRunner(const Config& config, MetricsRegistry* metrics);
std::unique_ptr<JobRunner> MakeDauRunner(const Config& config, MetricsRegistry* metrics);
std::unique_ptr<JobRunner> MakeOrderWideRunner(const Config& config, MetricsRegistry* metrics);

}  // namespace rtdw

#endif  // RTDW_TOOLS_RTDWD_JOBS_H_
