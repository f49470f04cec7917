// rtdw-bench: the end-to-end benchmark driver (docs/BENCHMARKS.md).
//
//   rtdw-bench --scenario NAME|all [--scenario ...] [--records N] [--out DIR]
//
// Starts its own local stack (rtdw-kafka-mock, redis-server, rtdw-es-lite in temporary
// directories), generates data with rtdw-gen, runs the scenarios, prints a table and writes
// DIR/results.json and DIR/plots/*.svg. Exit 0 when every selected scenario ran, 1 when one
// failed, 2 for a usage error.
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "bench/rtdw_bench/bench_util.h"
#include "bench/rtdw_bench/report.h"
#include "bench/rtdw_bench/scenarios.h"

int main(int argc, char** argv) {
  using namespace rtdw::bench;
  CLI::App app{"rtdw-bench: rtdw's end-to-end benchmarks (docs/BENCHMARKS.md)"};
  std::vector<std::string> scenarios;
  BenchOptions o;
  o.out_dir = "bench-results";
  o.baseline_parallelism = std::max(1u, std::thread::hardware_concurrency());
  bool list = false;
  app.add_option(
      "--scenario", scenarios,
      absl::StrCat("scenario to run, repeatable: all | ", absl::StrJoin(AllScenarios(), " | ")));
  app.add_option("--records", o.records,
                 "app-log records of the data set (also sizes the other scenarios)")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{1000}, int64_t{100000000}));
  app.add_option("--out", o.out_dir, "directory for results.json and plots/")
      ->capture_default_str();
  app.add_option("--baseline-parallelism", o.baseline_parallelism,
                 "partitions the seed-style baseline processes at once (default: the cores, "
                 "as Spark local[*])")
      ->check(CLI::Range(1, 256));
  app.add_option("--memory-sink", o.memory_sink,
                 "where the memory scenario's documents go: es-lite, or null (rtdw-bench's own "
                 "bulk acknowledger, for 10 M documents within minutes)")
      ->capture_default_str()
      ->check(CLI::IsMember({"es-lite", "null"}));
  std::string extra_config;
  app.add_option("--extra-config", extra_config,
                 "TOML file appended to every rtdwd config rtdw-bench writes (experiments: the "
                 "results then describe that configuration, not the defaults)")
      ->check(CLI::ExistingFile);
  app.add_flag("--list", list, "list the scenarios and exit");
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    app.exit(e);
    return 2;
  }
  if (list) {
    for (const auto& s : AllScenarios()) std::cout << s << "\n";
    return 0;
  }
  if (scenarios.empty()) {
    std::cerr << "rtdw-bench: give --scenario NAME or --scenario all (see --list)\n";
    return 2;
  }
  for (const auto& s : scenarios) {
    if (s == "all") {
      o.scenarios.insert(AllScenarios().begin(), AllScenarios().end());
    } else if (std::find(AllScenarios().begin(), AllScenarios().end(), s) == AllScenarios().end()) {
      std::cerr << "rtdw-bench: unknown scenario " << s << " (see --list)\n";
      return 2;
    } else {
      o.scenarios.insert(s);
    }
  }
  // The sibling binaries (rtdwd, rtdw-gen, ...) live next to this one.
  if (getenv("RTDW_BIN_DIR") == nullptr) {
    std::error_code ec;
    auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
    if (!ec) setenv("RTDW_BIN_DIR", self.parent_path().c_str(), 1);
  }
  if (!extra_config.empty()) {
    o.extra_config = rtdw::testing::ReadFileOrEmpty(extra_config);
    SetGlobalExtraConfig(o.extra_config);
  }
  std::error_code ec;
  std::filesystem::create_directories(o.out_dir, ec);
  if (ec) {
    std::cerr << "rtdw-bench: cannot create " << o.out_dir << ": " << ec.message() << "\n";
    return 1;
  }

  RunInfo info;
  info.machine = DescribeMachine();
  info.commit = DescribeRtdwdBuild();  // after RTDW_BIN_DIR is settled
  info.records = o.records;
  info.extra_config = o.extra_config;
  info.started_at = absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", absl::Now(), absl::UTCTimeZone());
  for (const auto& s : AllScenarios()) {
    if (o.scenarios.count(s)) info.order.push_back(s);
  }
  Log(absl::StrCat("rtdw-bench: ", absl::StrJoin(info.order, ", "), " with ", o.records,
                   " records; machine: ", info.machine.cpu_model, ", ", info.machine.cores,
                   " cores"));
  const auto start = Clock::now();
  info.load_avg_start = LoadAverage1m();
  auto results = RunScenarios(o);
  info.duration_s = SecondsSince(start);
  info.load_avg_end = LoadAverage1m();

  auto targets = JudgeTargets(results, o.records);
  PrintTable(info, results, targets);
  const std::string json = o.out_dir + "/results.json";
  int code = 0;
  if (auto st = WriteResultsJson(json, info, results, targets); !st.ok()) {
    std::cerr << "rtdw-bench: " << st.message() << "\n";
    code = 1;
  } else {
    std::cout << "results: " << json << "\n";
  }
  auto plots = DrawPlots(o.out_dir, RTDW_BENCH_PLOTS_DIR, info, results);
  if (!plots.ok()) {
    std::cerr << "rtdw-bench: plots: " << plots.status().message() << "\n";
  } else {
    for (const auto& p : *plots) std::cout << "plot: " << p << "\n";
  }
  for (const auto& name : info.order) {
    auto it = results.find(name);
    if (it == results.end() || it->second.failed) code = 1;
  }
  std::cout << "rtdw-bench: done in " << static_cast<int>(info.duration_s) << " s"
            << (code == 0 ? "" : " (some scenarios FAILED)") << "\n";
  return code;
}
