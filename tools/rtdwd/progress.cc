#include "tools/rtdwd/progress.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/state_types.h"
#include "spdlog/spdlog.h"
#include "storage/state_store.h"

namespace rtdw {
namespace {

using Clock = std::chrono::steady_clock;

}  // namespace

// ---------------------------------------------------------------------------------------------
// StoreMetrics

StoreMetrics::StoreMetrics(MetricsRegistry* metrics, std::string job, bool has_dedup)
    : job_(std::move(job)), has_dedup_(has_dedup) {
  for (std::string_view cf_view : kStateColumnFamilies) {
    std::string cf(cf_view);
    const Labels labels = {{"job", job_}, {"cf", cf}};
    sst_bytes_[cf] = metrics->GetGauge("rtdw_state_sst_bytes",
                                       "RocksDB SST file bytes per column family", labels);
    memtable_bytes_[cf] = metrics->GetGauge("rtdw_state_memtable_bytes",
                                            "RocksDB memtable bytes per column family", labels);
    keys_[cf] =
        metrics->GetGauge("rtdw_state_keys",
                          "Keys per column family (RocksDB's estimate for dedup and join)", labels);
  }
  const Labels labels = {{"job", job_}};
  journal_bytes_ = metrics->GetGauge("rtdw_state_journal_bytes",
                                     "Bytes of the bulk bodies owed to ES (journal)", labels);
  stored_dead_letters_ = metrics->GetGauge(
      "rtdw_state_dead_letters", "Dead letters kept in the store (rtdw deadletter list)", labels);
  free_bytes_ = metrics->GetGauge("rtdw_state_free_bytes",
                                  "Bytes available on the file system of the job's store", labels);
  min_free_bytes_ = metrics->GetGauge(
      "rtdw_state_min_free_bytes",
      "state.min_free_mb in bytes: below it nothing commits (0: no floor)", labels);
}

void StoreMetrics::Refresh(StateStore& store) {
  auto stats = store.Stats(/*exact_counts=*/false);
  if (!stats.ok()) {
    spdlog::debug("{}: state stats: {}", job_, std::string(stats.status().message()));
    return;
  }
  for (const ColumnFamilyStats& cf : stats->column_families) {
    if (auto it = sst_bytes_.find(cf.name); it != sst_bytes_.end()) {
      it->second->Set(static_cast<double>(cf.sst_bytes));
    }
    if (auto it = memtable_bytes_.find(cf.name); it != memtable_bytes_.end()) {
      it->second->Set(static_cast<double>(cf.memtable_bytes));
    }
    if (auto it = keys_.find(cf.name); it != keys_.end()) {
      it->second->Set(static_cast<double>(cf.keys));
    }
  }
  journal_bytes_->Set(static_cast<double>(stats->journal_bytes));
  stored_dead_letters_->Set(static_cast<double>(stats->dead_letters));
  if (std::optional<uint64_t> free = store.FreeBytes()) {
    free_bytes_->Set(static_cast<double>(*free));
  }
  min_free_bytes_->Set(static_cast<double>(std::max<int64_t>(store.min_free_mb(), 0) << 20));

  if (!has_dedup_ || Clock::now() < next_scan_) return;
  const auto started = Clock::now();
  std::map<uint32_t, uint64_t> days;
  auto listed = store.DedupDays();
  if (!listed.ok()) return;
  for (DayNumber day : *listed) {
    uint64_t n = 0;
    absl::Status st = store.ScanDedupDay(day, [&n](int32_t, std::string_view, const DedupValue&) {
      ++n;
      return true;
    });
    if (!st.ok()) return;
    days[day] = n;
  }
  next_scan_ = Clock::now() + 20 * (Clock::now() - started);
  absl::MutexLock lock(&mu_);
  dedup_days_ = std::move(days);
}

std::string StoreMetrics::RenderDedupDays() const {
  absl::MutexLock lock(&mu_);
  std::string out;
  for (const auto& [day, n] : dedup_days_) {
    absl::StrAppend(&out, "rtdw_dedup_keys{job=\"", job_, "\",day=\"", FormatDay(day), "\"} ", n,
                    "\n");
  }
  return out;
}

std::string RenderDedupDaysFamily(const std::vector<const StoreMetrics*>& stores) {
  std::string out =
      "# HELP rtdw_dedup_keys De-dup keys (first visits) per event day, counted in the store\n"
      "# TYPE rtdw_dedup_keys gauge\n";
  for (const StoreMetrics* s : stores) out += s->RenderDedupDays();
  return out;
}

uint64_t ProcessRssBytes() {
  std::ifstream in("/proc/self/statm");
  uint64_t size = 0, resident = 0;
  if (!(in >> size >> resident)) return 0;
  return resident * static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
}

// ---------------------------------------------------------------------------------------------
// ProgressReporter

ProgressReporter::ProgressReporter(MetricsRegistry* metrics, std::string job, bool has_journal,
                                   const KafkaLagTracker* lag)
    : job_(std::move(job)), lag_(lag), series_(metrics, job_), last_time_(Clock::now()) {
  const Labels labels = {{"job", job_}};
  if (has_journal) {
    backlog_ = metrics->GetGauge("rtdw_journal_backlog", "Journal entries owed to ES", labels);
  }
  last_in_ = series_.records_in->value();
  last_out_ = series_.records_out->value();
  last_dead_ = series_.dead_letters->value();
  last_batches_ = series_.batches->value();
}

std::string ProgressReporter::Line(std::string_view health_problem) {
  const auto now = Clock::now();
  const double secs = std::max(1e-3, std::chrono::duration<double>(now - last_time_).count());
  const uint64_t in = series_.records_in->value(), out = series_.records_out->value();
  const uint64_t dead = series_.dead_letters->value(), batches = series_.batches->value();
  std::string line = absl::StrFormat(
      "%s: progress: %.1f records/s in, %.1f/s out, %d batches in %.0f s; lag %s", job_,
      static_cast<double>(in - last_in_) / secs, static_cast<double>(out - last_out_) / secs,
      static_cast<int64_t>(batches - last_batches_), secs,
      lag_ == nullptr || lag_->partitions() == 0
          ? std::string("n/a (no partition assigned)")
          : absl::StrCat(lag_->total(), " records over ", lag_->partitions(), " partitions"));
  if (backlog_ != nullptr) {
    absl::StrAppend(&line, "; journal backlog ", static_cast<int64_t>(backlog_->value()));
  }
  absl::StrAppend(&line, "; dead letters ", dead, " (+", dead - last_dead_, "); total in ", in);
  if (!health_problem.empty())
    absl::StrAppend(&line, "; not healthy: ", std::string(health_problem));
  last_time_ = now;
  last_in_ = in;
  last_out_ = out;
  last_dead_ = dead;
  last_batches_ = batches;
  return line;
}

}  // namespace rtdw
