#include "core/engine/job_health.h"

#include "absl/strings/str_cat.h"
#include "spdlog/spdlog.h"

namespace rtdw {

void RejectionNotice::Note(uint64_t seq, size_t docs, size_t rejected, std::string_view example,
                           const std::vector<uint64_t>& letter_seqs) {
  if (rejected == 0) return;
  const auto now = std::chrono::steady_clock::now();
  {
    absl::MutexLock lock(&mu_);
    if (count_ == 0 || now - last_ >= kClearAfter) count_ = 0;
    count_ += rejected;
    last_ = now;
    example_ = std::string(example);
  }
  std::string seqs;
  for (size_t i = 0; i < letter_seqs.size() && i < 5; ++i) {
    absl::StrAppend(&seqs, i ? "," : "", letter_seqs[i]);
  }
  if (letter_seqs.size() > 5) absl::StrAppend(&seqs, ",...");
  spdlog::warn(
      "{}: Elasticsearch refused {} of the {} documents of journal entry {} for good (e.g. {}); "
      "they are dead letters es_rejected (seqs {}): see `rtdw deadletter list --job {}`, fix the "
      "cause (mapping, index block, ...), then `rtdw deadletter retry --job {}` with rtdwd stopped",
      job_, rejected, docs, seq, example, seqs, job_, job_);
}

std::string RejectionNotice::Problem() const {
  absl::MutexLock lock(&mu_);
  if (count_ == 0 || std::chrono::steady_clock::now() - last_ >= kClearAfter) return "";
  return absl::StrCat(count_, " documents refused by Elasticsearch for good in the last minutes (",
                      "e.g. ", example_, "): es_rejected dead letters, see `rtdw deadletter list ",
                      "--job ", job_, "`; fix the cause, then `rtdw deadletter retry` (clears ",
                      kClearAfter.count(), " min after the last refusal)");
}

void JobProblem::Set(std::string problem) {
  absl::MutexLock lock(&mu_);
  if (problem != problem_ && !problem.empty()) spdlog::warn("{}: {}", job_, problem);
  problem_ = std::move(problem);
}

std::string JobProblem::Get() const {
  absl::MutexLock lock(&mu_);
  return problem_;
}

}  // namespace rtdw
