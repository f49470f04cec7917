#include "tools/rtdwd/jobs.h"

#include "absl/strings/str_cat.h"

namespace rtdw {

absl::StatusOr<std::unique_ptr<JobRunner>> MakeJobRunner(const std::string& job,
                                                         const Config& config,
                                                         MetricsRegistry* metrics) {
  if (job == kJobLogSplit) return MakeLogSplitRunner(config, metrics);
  if (job == kJobDbSplit) return MakeDbSplitRunner(config, metrics);
  if (job == kJobDau) return MakeDauRunner(config, metrics);
  if (job == kJobOrderWide) return MakeOrderWideRunner(config, metrics);
  return absl::UnimplementedError(
      absl::StrCat("job ", job, " is not built in this version of rtdwd yet"));
}

}  // namespace rtdw
