// rtdw-bench's outputs: the table on stdout, DIR/results.json (docs/BENCHMARKS.md: machine,
// commit, scenarios with figures named with their units), the target verdicts, and the plots
// (SVG, drawn by gnuplot with the scripts of bench/plots).
#ifndef RTDW_BENCH_RTDW_BENCH_REPORT_H_
#define RTDW_BENCH_RTDW_BENCH_REPORT_H_

#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "bench/rtdw_bench/bench_util.h"

namespace rtdw::bench {

struct Machine {
  std::string cpu_model;
  int cores = 0;
  double memory_mb = 0;
  std::string kernel;
  std::string os;
};
Machine DescribeMachine();

// The build of the rtdwd a run measures (its `--version` line: the git commit it was built from),
// which is not always rtdw-bench's own: RTDW_BIN_DIR may point at another build (A/B pairs).
struct Commit {
  std::string sha;  // "unknown" when rtdwd was built outside a git checkout or did not answer
  bool dirty = false;
  std::string version_line;  // "rtdwd 0.1.0 (commit <sha>)", as printed
};
Commit DescribeRtdwdBuild();

// A job's rate against its floor, both measured in this run (docs/BENCHMARKS.md, "Floors").
struct FloorRatio {
  std::string job;    // "log-split"
  std::string floor;  // "kafka-pipe-floor"
  double job_records_per_s = 0;
  double floor_records_per_s = 0;
  double ratio = 0;
  double target = 0;  // the ratio the job should reach
};
// The pairs of which both sides ran: log-split / kafka-pipe-floor, db-split /
// kafka-pipe-floor-db, dau / consume-floor, order-wide / consume-floor (its two topics).
std::vector<FloorRatio> FloorRatios(const std::map<std::string, ScenarioResult>& results);

// One target of issues 7 and 20, judged on this run's figures.
struct TargetVerdict {
  std::string target;    // "log-split >= 0.5 x kcat-ceiling"
  std::string measured;  // "0.09 x"
  double value = 0;
  double threshold = 0;
  bool met = false;
  bool evaluated = false;  // false when a scenario it needs did not run
  std::string detail;      // "short by 82%", the sizes it was measured at, ...
};
std::vector<TargetVerdict> JudgeTargets(const std::map<std::string, ScenarioResult>& results,
                                        int64_t records);

struct RunInfo {
  Machine machine;
  Commit commit;
  int64_t records = 0;
  std::string started_at;  // UTC, ISO 8601
  double duration_s = 0;
  std::vector<std::string> order;  // scenario order
  std::string extra_config;        // --extra-config TOML ("" = the defaults)
  double load_avg_start = 0;       // 1-minute load average before and after the run
  double load_avg_end = 0;
};

// Prints the table and the target verdicts.
void PrintTable(const RunInfo& info, const std::map<std::string, ScenarioResult>& results,
                const std::vector<TargetVerdict>& targets);

absl::Status WriteResultsJson(const std::string& path, const RunInfo& info,
                              const std::map<std::string, ScenarioResult>& results,
                              const std::vector<TargetVerdict>& targets);

// Writes the plot data under DIR/plots and draws DIR/plots/*.svg with gnuplot (scripts from
// `plots_dir`). Returns the SVG files written.
absl::StatusOr<std::vector<std::string>> DrawPlots(
    const std::string& out_dir, const std::string& plots_dir, const RunInfo& info,
    const std::map<std::string, ScenarioResult>& results);

}  // namespace rtdw::bench

#endif  // RTDW_BENCH_RTDW_BENCH_REPORT_H_
