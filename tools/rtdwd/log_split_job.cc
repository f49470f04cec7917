// log-split on the split-job loop: ODS app logs -> the five DWD log topics (docs/FORMATS.md §2).
#include "core/log_split.h"
#include "tools/rtdwd/jobs.h"
#include "tools/rtdwd/split_job.h"

namespace rtdw {
namespace {

class LogSplitStep : public SplitStep {
 public:
  explicit LogSplitStep(const LogSplitJob& job)
      : job_(job),
        transform_(LogSplitOptions{std::string(kJobLogSplit), job.max_record_bytes, job.max_depth,
                                   job.max_array_items, nullptr}) {}

  void Process(const InputRecord& record, RecordSink* sink) override {
    transform_.Process(record, sink);
  }

  std::vector<std::string> SlotTopics() const override {
    // In LogSlot order.
    return {job_.start_topic, job_.page_topic, job_.display_topic, job_.action_topic,
            job_.error_topic};
  }

 private:
  const LogSplitJob& job_;
  LogSplitTransform transform_;
};

}  // namespace

std::unique_ptr<JobRunner> MakeLogSplitRunner(const Config& config, MetricsRegistry* metrics) {
  const LogSplitJob& job = config.jobs.log_split;
  SplitJobSettings settings{std::string(kJobLogSplit), job.source_topic, job.dead_letter_topic,
                            job.batch_max_records, job.batch_max_ms};
  return MakeSplitRunner(config, settings, std::make_unique<LogSplitStep>(job), metrics);
}

}  // namespace rtdw
