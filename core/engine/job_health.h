// What a job reports on its /health line (JobProblem) and how Elasticsearch's refusals show
// there and in the log (RejectionNotice). Both thread-safe.
#ifndef RTDW_CORE_ENGINE_JOB_HEALTH_H_
#define RTDW_CORE_ENGINE_JOB_HEALTH_H_

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace rtdw {

// A job's /health line: set on the job's threads (a change to a new non-empty problem is logged
// once as a warning, "<job>: <problem>"), read from any thread. "" = healthy.
class JobProblem {
 public:
  explicit JobProblem(std::string job) : job_(std::move(job)) {}
  void Set(std::string problem);
  std::string Get() const;

 private:
  const std::string job_;
  mutable absl::Mutex mu_;
  std::string problem_ ABSL_GUARDED_BY(mu_);
};

// Documents Elasticsearch refused for good (es_rejected dead letters): each refusal is logged as
// a warning, and the job's /health names them until kClearAfter has passed without a new one
// (below RtdwJobDown's 5 minutes: one burst shows on /health and in the log without paging as a
// job down; refusals that go on keep it). Thread-safe.
class RejectionNotice {
 public:
  static constexpr std::chrono::minutes kClearAfter{4};
  explicit RejectionNotice(std::string job) : job_(std::move(job)) {}
  // `rejected` documents of journal entry `seq` (of `docs`) were refused; `example` is one ES
  // error ("TYPE: reason" of index/id), `letter_seqs` their dead letters.
  void Note(uint64_t seq, size_t docs, size_t rejected, std::string_view example,
            const std::vector<uint64_t>& letter_seqs);
  // The /health line while refusals are recent, else "".
  std::string Problem() const;

 private:
  const std::string job_;
  mutable absl::Mutex mu_;
  std::chrono::steady_clock::time_point last_ ABSL_GUARDED_BY(mu_){};
  uint64_t count_ ABSL_GUARDED_BY(mu_) = 0;  // since the line appeared
  std::string example_ ABSL_GUARDED_BY(mu_);
};

}  // namespace rtdw

#endif  // RTDW_CORE_ENGINE_JOB_HEALTH_H_
