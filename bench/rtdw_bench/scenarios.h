// rtdw-bench's scenarios. Each reports a ScenarioResult: figures named with their units (every
// scenario that processes records reports input_records_per_s, the records read from its source
// topic per second), notes, and series for the plots. docs/BENCHMARKS.md says what each measures.
#ifndef RTDW_BENCH_RTDW_BENCH_SCENARIOS_H_
#define RTDW_BENCH_RTDW_BENCH_SCENARIOS_H_

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "bench/rtdw_bench/bench_util.h"

namespace rtdw::bench {

// Every scenario, in the order `all` runs them.
const std::vector<std::string>& AllScenarios();

struct BenchOptions {
  std::set<std::string> scenarios;
  int64_t records = 1000000;
  std::string out_dir;
  int baseline_parallelism = 2;         // the machine's cores (Spark local[*])
  std::string memory_sink = "es-lite";  // or "null": rtdw-bench's own bulk acknowledger
  // TOML appended to every rtdwd config (experiments, e.g. [kafka.properties] overrides).
  std::string extra_config;
};

// Runs the selected scenarios; one result per scenario (failed ones say why).
std::map<std::string, ScenarioResult> RunScenarios(const BenchOptions& options);

}  // namespace rtdw::bench

#endif  // RTDW_BENCH_RTDW_BENCH_SCENARIOS_H_
