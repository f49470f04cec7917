// What rtdwd tells an operator about its jobs, besides /health and the Kafka lag per partition
// (core/engine/lag_tracker.h, fed by the jobs): the state stores' sizes, the de-dup keys per day,
// the process's memory, and the one-line progress report per job every `log.progress_interval`
// seconds.
//
// Every series here is created when the job is created, at 0 (docs/OPERATIONS.md,
// "Monitoring": per-job series "exist from the job's start, at 0"), except the per-day de-dup
// counts, which exist only for the days the store holds (they are rendered from a snapshot, so a
// day dropped by retention disappears instead of lingering at its last value).
#ifndef RTDW_TOOLS_RTDWD_PROGRESS_H_
#define RTDW_TOOLS_RTDWD_PROGRESS_H_

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "core/engine/job_metrics.h"
#include "core/engine/lag_tracker.h"
#include "core/metrics.h"

namespace rtdw {

class StateStore;

// The state store's figures as gauges (`rtdw_state_*{job[,cf]}`, with the free space of its file
// system and the floor state.min_free_mb) plus the de-dup keys per day
// (`rtdw_dedup_keys{job,day}`, counted exactly by a scan of each day; a scan is repeated no more
// often than 20 times its own duration, so a large store costs at most ~5% of one thread).
//
// Thread safety: Refresh() runs on one thread at a time (rtdwd's stats thread); RenderDedupDays()
// may run concurrently with it, from any thread (the /metrics handler).
class StoreMetrics {
 public:
  StoreMetrics(MetricsRegistry* metrics, std::string job, bool has_dedup);
  // Reads `store`'s Stats() (and the de-dup days when due).
  void Refresh(StateStore& store);
  // The per-day series in the Prometheus text format (no HELP/TYPE lines).
  std::string RenderDedupDays() const;

 private:
  std::string job_;
  bool has_dedup_;
  std::map<std::string, Gauge*> sst_bytes_, memtable_bytes_, keys_;  // by column family
  Gauge* journal_bytes_;
  Gauge* stored_dead_letters_;
  Gauge* free_bytes_;      // the store's file system
  Gauge* min_free_bytes_;  // its floor (state.min_free_mb)
  std::chrono::steady_clock::time_point next_scan_{};
  mutable absl::Mutex mu_;
  std::map<uint32_t, uint64_t> dedup_days_ ABSL_GUARDED_BY(mu_);  // yyyymmdd -> keys
};

// The HELP/TYPE header and samples of every series StoreMetrics renders itself.
std::string RenderDedupDaysFamily(const std::vector<const StoreMetrics*>& stores);

// Resident set size of this process in bytes (/proc/self/statm); 0 when unknown.
uint64_t ProcessRssBytes();

// The one-line progress report of a job: rates since the previous report, lag, backlog and dead
// letters, read from the job's series in the registry. Thread-compatible: Line() is called from
// one thread (rtdwd's main loop); the series and the lag it reads are thread-safe.
class ProgressReporter {
 public:
  ProgressReporter(MetricsRegistry* metrics, std::string job, bool has_journal,
                   const KafkaLagTracker* lag);
  // The line for the interval since the previous call (or since construction).
  std::string Line(std::string_view health_problem);

 private:
  std::string job_;
  const KafkaLagTracker* lag_;
  JobMetrics series_;  // the same series the job updates (one object per name and labels)
  Gauge* backlog_ = nullptr;
  std::chrono::steady_clock::time_point last_time_;
  uint64_t last_in_ = 0, last_out_ = 0, last_dead_ = 0, last_batches_ = 0;
};

}  // namespace rtdw

#endif  // RTDW_TOOLS_RTDWD_PROGRESS_H_
