#include "bench/rtdw_bench/report.h"

#include <sys/utsname.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/strip.h"
#include "core/process/build_info.h"
#include "rapidjson/prettywriter.h"
#include "rapidjson/stringbuffer.h"

namespace rtdw::bench {
namespace {

std::string FirstMatch(const std::string& path, const std::string& prefix) {
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(prefix, 0) == 0) {
      std::string v = line.substr(prefix.size());
      auto colon = v.find_first_not_of(" \t:=\"");
      v = colon == std::string::npos ? "" : v.substr(colon);
      while (!v.empty() && (v.back() == '"' || v.back() == ' ')) v.pop_back();
      return v;
    }
  }
  return "";
}

std::string FormatValue(double v) {
  if (std::isnan(v)) return "nan";
  if (std::fabs(v) >= 1000 || v == std::floor(v)) {
    // Thousands separators for big numbers.
    std::string digits = absl::StrFormat("%.0f", std::fabs(v));
    std::string out;
    for (size_t i = 0; i < digits.size(); ++i) {
      if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
      out += digits[i];
    }
    return v < 0 ? "-" + out : out;
  }
  return absl::StrFormat("%.3g", v);
}

const ScenarioResult* Find(const std::map<std::string, ScenarioResult>& r, const std::string& n) {
  auto it = r.find(n);
  return it == r.end() || it->second.failed ? nullptr : &it->second;
}

double Fig(const ScenarioResult* r, const std::string& name, double def = NAN) {
  if (r == nullptr) return def;
  auto v = r->Get(name);
  return v ? *v : def;
}

// Writes blocks ("title\ty" header, then x\ty rows), separated by two blank lines.
int WriteBlocks(const std::string& path, const std::vector<const Series*>& series) {
  bool any = false;
  for (const Series* s : series) any = any || !s->points.empty();
  if (!any) return 0;
  std::ofstream out(path);
  int n = 0;
  for (const Series* s : series) {
    if (s->points.empty()) continue;
    if (n > 0) out << "\n\n";
    out << s->name << "\ty\n";
    for (const auto& [x, y] : s->points) out << x << "\t" << y << "\n";
    ++n;
  }
  return n;
}

}  // namespace

Machine DescribeMachine() {
  Machine m;
  m.cpu_model = FirstMatch("/proc/cpuinfo", "model name");
  m.cores = static_cast<int>(std::thread::hardware_concurrency());
  std::string mem = FirstMatch("/proc/meminfo", "MemTotal");
  m.memory_mb = std::atof(mem.c_str()) / 1024.0;
  utsname u{};
  if (uname(&u) == 0) m.kernel = absl::StrCat(u.sysname, " ", u.release, " ", u.machine);
  m.os = FirstMatch("/etc/os-release", "PRETTY_NAME");
  return m;
}

Commit DescribeRtdwdBuild() {
  Commit c;
  c.sha = "unknown";
  testing::CommandResult r =
      testing::RunCommand({testing::BinDir() + "/rtdwd", "--version"}, std::chrono::seconds(10));
  c.version_line = std::string(absl::StripAsciiWhitespace(r.out));
  if (r.exit_code != 0) return c;
  if (std::optional<VersionLineBuild> b = ParseVersionLine(c.version_line)) {
    c.sha = b->commit;
    c.dirty = b->dirty;
  }
  return c;
}

// order-wide's rate before issue 20 (docs/BENCHMARKS.md, run of 2026-11-25): its target is 2 x.
constexpr double kOrderWideBefore = 28448;

std::vector<FloorRatio> FloorRatios(const std::map<std::string, ScenarioResult>& results) {
  struct Pair {
    const char* job;
    const char* floor;
    const char* floor_figure;
    double target;
  };
  static const Pair kPairs[] = {
      {"log-split", "kafka-pipe-floor", "input_records_per_s", 0.85},
      {"db-split", "kafka-pipe-floor-db", "input_records_per_s", 0.85},
      {"dau", "consume-floor", "input_records_per_s", 0.5},
      {"order-wide", "consume-floor", "order_input_records_per_s", 0},
  };
  std::vector<FloorRatio> out;
  for (const Pair& p : kPairs) {
    const double job = Fig(Find(results, p.job), "input_records_per_s");
    const double floor = Fig(Find(results, p.floor), p.floor_figure);
    if (std::isnan(job) || std::isnan(floor) || floor <= 0) continue;
    out.push_back({p.job, p.floor, job, floor, job / floor, p.target});
  }
  return out;
}

std::vector<TargetVerdict> JudgeTargets(const std::map<std::string, ScenarioResult>& results,
                                        int64_t records) {
  std::vector<TargetVerdict> out;
  auto at_least = [&](TargetVerdict v, const std::string& unit) {
    v.evaluated = !std::isnan(v.value);
    if (v.evaluated) {
      v.met = v.value >= v.threshold;
      v.measured = absl::StrCat(FormatValue(v.value), unit);
      if (!v.met) {
        v.detail = absl::StrFormat("short by %.0f%% (%.2g x of the target)",
                                   (1 - v.value / v.threshold) * 100, v.value / v.threshold);
      }
    }
    out.push_back(std::move(v));
  };
  auto at_most = [&](TargetVerdict v, const std::string& unit) {
    v.evaluated = !std::isnan(v.value);
    if (v.evaluated) {
      v.met = v.value <= v.threshold;
      v.measured = absl::StrCat(FormatValue(v.value), unit);
      if (!v.met) {
        v.detail = absl::StrFormat("over by %.0f%% (%.2g x the limit)",
                                   (v.value / v.threshold - 1) * 100, v.value / v.threshold);
      }
    }
    out.push_back(std::move(v));
  };
  auto ratio = [&](double a, double b) {
    return std::isnan(a) || std::isnan(b) || b <= 0 ? NAN : a / b;
  };

  const auto* dau = Find(results, "dau");
  const auto* base = Find(results, "baseline-dau");
  const auto* all = Find(results, "all-jobs");
  const auto* lat = Find(results, "latency");
  const auto* rec = Find(results, "recovery");
  const auto* mem = Find(results, "memory");

  // Issue 20: each job against its floor, measured in the same run.
  const std::vector<FloorRatio> floors = FloorRatios(results);
  for (const auto& [job, floor] :
       std::vector<std::pair<std::string, std::string>>{{"log-split", "kafka-pipe-floor"},
                                                        {"db-split", "kafka-pipe-floor-db"},
                                                        {"dau", "consume-floor"}}) {
    TargetVerdict t;
    t.value = NAN;
    t.threshold = job == "dau" ? 0.5 : 0.85;
    for (const FloorRatio& f : floors) {
      if (f.job == job) t.value = f.ratio;
    }
    t.target = absl::StrCat(job, " >= ", FormatValue(t.threshold), " x ", floor, " (records/s)");
    at_least(t, " x");
  }
  TargetVerdict tow;
  tow.target = absl::StrCat("order-wide >= 2 x its rate before issue 20 (",
                            FormatValue(kOrderWideBefore), " records/s)");
  tow.value = ratio(Fig(Find(results, "order-wide"), "input_records_per_s"), kOrderWideBefore);
  tow.threshold = 2;
  at_least(tow, " x");

  TargetVerdict t2;
  t2.target = "dau >= 10 x baseline-dau (records/s)";
  t2.value = ratio(Fig(dau, "input_records_per_s"), Fig(base, "input_records_per_s"));
  t2.threshold = 10;
  at_least(t2, " x");

  TargetVerdict t3;
  t3.target = "all-jobs sustains 100,000 page records/s with no growing lag";
  t3.threshold = 100000;
  t3.value = Fig(all, "sustain_dau_page_records_per_s");
  if (!std::isnan(t3.value)) {
    t3.evaluated = true;
    t3.met = Fig(all, "sustain_ok", 0) == 1;
    t3.measured =
        absl::StrCat(FormatValue(t3.value), " page records/s taken in, lag growing ",
                     FormatValue(Fig(all, "sustain_lag_growth_records_per_s", 0)), " records/s");
    if (!t3.met) {
      t3.detail = absl::StrFormat("short by %.0f%% (%.2g x of the target rate)",
                                  std::max(0.0, (1 - t3.value / t3.threshold) * 100),
                                  t3.value / t3.threshold);
    }
  }
  out.push_back(t3);

  TargetVerdict t4;
  t4.target = "latency p99 <= 500 ms at half the maximum rate";
  t4.value = Fig(lat, "p99_latency_ms");
  t4.threshold = 500;
  at_most(t4, " ms");

  TargetVerdict t5;
  t5.target = "recovery of 100k journaled docs + 1M records of lag <= 10 s";
  t5.value = Fig(rec, "recovery_s");
  t5.threshold = 10;
  at_most(t5, " s");
  if (rec != nullptr && !out.empty()) {
    out.back().detail =
        absl::StrCat(out.back().detail, out.back().detail.empty() ? "" : "; ", "measured with ",
                     FormatValue(Fig(rec, "journaled_docs")), " journaled docs + ",
                     FormatValue(Fig(rec, "lag_records")), " records of lag");
  }

  TargetVerdict t6;
  t6.target = "peak RSS <= 512 MB at 10M distinct mids/day";
  const std::string level = absl::StrCat("peak_rss_mb_at_", 10 * records, "_mids");
  t6.value = Fig(mem, level);
  t6.threshold = 512;
  at_most(t6, " MB");
  if (mem != nullptr) {
    out.back().detail = absl::StrCat(out.back().detail, out.back().detail.empty() ? "" : "; ",
                                     "measured at ", FormatValue(10.0 * records), " mids");
  }
  return out;
}

void PrintTable(const RunInfo& info, const std::map<std::string, ScenarioResult>& results,
                const std::vector<TargetVerdict>& targets) {
  printf("\nrtdw-bench: %lld records, rtdwd commit %s%s\n", static_cast<long long>(info.records),
         info.commit.sha.c_str(), info.commit.dirty ? " (+ local changes)" : "");
  printf("machine: %s, %d cores, %.0f MB, %s\n", info.machine.cpu_model.c_str(), info.machine.cores,
         info.machine.memory_mb, info.machine.kernel.c_str());
  if (!info.extra_config.empty()) {
    printf("rtdwd configs extended with (--extra-config):\n%s\n", info.extra_config.c_str());
  }
  printf("\n");
  printf("%-14s %-38s %16s\n", "scenario", "figure", "value");
  printf("%s\n", std::string(70, '-').c_str());
  for (const auto& name : info.order) {
    auto it = results.find(name);
    if (it == results.end()) continue;
    const ScenarioResult& r = it->second;
    if (r.failed) {
      printf("%-14s FAILED: %s\n", name.c_str(), r.error.substr(0, 300).c_str());
      continue;
    }
    bool first = true;
    for (const auto& [fig, v] : r.figures) {
      printf("%-14s %-38s %16s\n", first ? name.c_str() : "", fig.c_str(), FormatValue(v).c_str());
      first = false;
    }
    for (const auto& n : r.notes) printf("%-14s   note: %s\n", "", n.c_str());
  }
  const std::vector<FloorRatio> floors = FloorRatios(results);
  if (!floors.empty()) {
    printf("\njobs against their floors (same run):\n");
    for (const auto& f : floors) {
      printf("  %-11s %12s rec/s / %-20s %12s rec/s = %5.2f x%s\n", f.job.c_str(),
             FormatValue(f.job_records_per_s).c_str(), f.floor.c_str(),
             FormatValue(f.floor_records_per_s).c_str(), f.ratio,
             f.target > 0 ? absl::StrFormat("  (target %.2f x)", f.target).c_str() : "");
    }
  }
  printf("load average (1 min): %.2f at the start, %.2f at the end\n", info.load_avg_start,
         info.load_avg_end);
  printf("\ntargets:\n");
  for (const auto& t : targets) {
    if (!t.evaluated) {
      printf("  %-62s  not measured in this run\n", t.target.c_str());
      continue;
    }
    printf("  %-62s  %-7s %s%s%s\n", t.target.c_str(), t.met ? "MET" : "MISSED", t.measured.c_str(),
           t.detail.empty() ? "" : " — ", t.detail.c_str());
  }
  printf("\n");
  fflush(stdout);
}

absl::Status WriteResultsJson(const std::string& path, const RunInfo& info,
                              const std::map<std::string, ScenarioResult>& results,
                              const std::vector<TargetVerdict>& targets) {
  rapidjson::StringBuffer buf;
  rapidjson::PrettyWriter<rapidjson::StringBuffer> w(buf);
  w.SetIndent(' ', 2);
  auto str = [&](const std::string& s) {
    w.String(s.c_str(), static_cast<rapidjson::SizeType>(s.size()));
  };
  auto num = [&](double v) {
    if (std::isnan(v) || std::isinf(v)) {
      w.Null();
    } else if (v == std::floor(v) && std::fabs(v) < 9e15) {
      w.Int64(static_cast<int64_t>(v));
    } else {
      w.Double(v);
    }
  };
  w.StartObject();
  w.Key("machine");
  w.StartObject();
  w.Key("cpu_model");
  str(info.machine.cpu_model);
  w.Key("cores");
  w.Int(info.machine.cores);
  w.Key("memory_mb");
  num(std::round(info.machine.memory_mb));
  w.Key("kernel");
  str(info.machine.kernel);
  w.Key("os");
  str(info.machine.os);
  w.EndObject();
  w.Key("commit");
  str(info.commit.sha);
  w.Key("commit_dirty");
  w.Bool(info.commit.dirty);
  w.Key("rtdwd_version");
  str(info.commit.version_line);
  w.Key("records");
  w.Int64(info.records);
  w.Key("extra_config");
  if (info.extra_config.empty()) {
    w.Null();
  } else {
    str(info.extra_config);
  }
  w.Key("started_at");
  str(info.started_at);
  w.Key("duration_s");
  num(std::round(info.duration_s * 10) / 10);
  w.Key("load_avg_1m_start");
  num(std::round(info.load_avg_start * 100) / 100);
  w.Key("load_avg_1m_end");
  num(std::round(info.load_avg_end * 100) / 100);
  w.Key("ratios");
  w.StartArray();
  for (const auto& f : FloorRatios(results)) {
    w.StartObject();
    w.Key("job");
    str(f.job);
    w.Key("floor");
    str(f.floor);
    w.Key("job_input_records_per_s");
    num(std::round(f.job_records_per_s));
    w.Key("floor_input_records_per_s");
    num(std::round(f.floor_records_per_s));
    w.Key("ratio");
    num(std::round(f.ratio * 1000) / 1000);
    w.Key("target_ratio");
    if (f.target > 0) {
      num(f.target);
    } else {
      w.Null();
    }
    w.EndObject();
  }
  w.EndArray();
  w.Key("scenarios");
  w.StartObject();
  for (const auto& name : info.order) {
    auto it = results.find(name);
    if (it == results.end() || it->second.failed) continue;
    str(name);
    w.StartObject();
    for (const auto& [fig, v] : it->second.figures) {
      str(fig);
      num(v);
    }
    w.EndObject();
  }
  w.EndObject();
  w.Key("failed");
  w.StartObject();
  for (const auto& name : info.order) {
    auto it = results.find(name);
    if (it == results.end() || !it->second.failed) continue;
    str(name);
    str(it->second.error);
  }
  w.EndObject();
  w.Key("notes");
  w.StartObject();
  for (const auto& name : info.order) {
    auto it = results.find(name);
    if (it == results.end() || it->second.notes.empty()) continue;
    str(name);
    w.StartArray();
    for (const auto& n : it->second.notes) str(n);
    w.EndArray();
  }
  w.EndObject();
  w.Key("targets");
  w.StartArray();
  for (const auto& t : targets) {
    w.StartObject();
    w.Key("target");
    str(t.target);
    w.Key("measured");
    if (t.evaluated) {
      num(t.value);
    } else {
      w.Null();
    }
    w.Key("threshold");
    num(t.threshold);
    w.Key("met");
    if (t.evaluated) {
      w.Bool(t.met);
    } else {
      w.Null();
    }
    w.Key("detail");
    str(t.evaluated ? absl::StrCat(t.measured, t.detail.empty() ? "" : "; ", t.detail)
                    : "not measured in this run");
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  std::ofstream out(path);
  out << buf.GetString() << "\n";
  if (!out) return absl::InternalError(absl::StrCat("cannot write ", path));
  return absl::OkStatus();
}

absl::StatusOr<std::vector<std::string>> DrawPlots(
    const std::string& out_dir, const std::string& plots_dir, const RunInfo& info,
    const std::map<std::string, ScenarioResult>& results) {
  const std::string dir = out_dir + "/plots";
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return absl::InternalError(absl::StrCat("cannot create ", dir, ": ", ec.message()));
  std::vector<std::string> written;
  const std::string subtitle =
      absl::StrFormat("%lld records, %s, %d cores", static_cast<long long>(info.records),
                      info.machine.cpu_model, info.machine.cores);

  auto gnuplot = [&](const std::string& script, const std::string& vars,
                     const std::string& svg) -> absl::Status {
    testing::CommandResult r = testing::RunCommand(
        {"gnuplot", "-e", absl::StrCat(vars, "; outfile='", svg, "'"), plots_dir + "/" + script},
        std::chrono::seconds(60));
    if (r.exit_code != 0) {
      return absl::InternalError(absl::StrCat("gnuplot ", script, ": ", r.err.substr(0, 500)));
    }
    written.push_back(svg);
    return absl::OkStatus();
  };

  // 1. Throughput of every scenario that processes records.
  {
    std::ofstream out(dir + "/throughput.dat");
    int n = 0;
    for (const auto& name : info.order) {
      const ScenarioResult* r = Find(results, name);
      double v = Fig(r, "input_records_per_s");
      if (std::isnan(v)) continue;
      out << name << "\t" << v << "\n";
      ++n;
    }
    out.close();
    if (n > 0) {
      if (auto st = gnuplot(
              "throughput.gp",
              absl::StrCat("datafile='", dir, "/throughput.dat'; subtitle='", subtitle, "'"),
              dir + "/throughput.svg");
          !st.ok()) {
        return st;
      }
    }
  }
  // 1b. Each job next to its floor, with the ratio.
  {
    const std::vector<FloorRatio> floors = FloorRatios(results);
    if (!floors.empty()) {
      std::ofstream out(dir + "/floors.dat");
      for (const auto& f : floors) {
        out << f.job << " / " << f.floor << "\t" << f.job_records_per_s << "\t"
            << f.floor_records_per_s << "\t" << absl::StrFormat("%.2f x", f.ratio) << "\n";
      }
      out.close();
      if (auto st =
              gnuplot("floors.gp",
                      absl::StrCat("datafile='", dir, "/floors.dat'; subtitle='", subtitle, "'"),
                      dir + "/floors.svg");
          !st.ok()) {
        return st;
      }
    }
  }
  auto lines = [&](const std::string& file, const std::vector<const Series*>& series,
                   const std::string& title, const std::string& xlab, const std::string& ylab,
                   bool logy = false) -> absl::Status {
    const int n = WriteBlocks(dir + "/" + file + ".dat", series);
    if (n == 0) return absl::OkStatus();
    return gnuplot("lines.gp",
                   absl::StrCat("datafile='", dir, "/", file, ".dat'; n=", n, "; plottitle='",
                                title, "'; xlab='", xlab, "'; ylab='", ylab, "'; subtitle='",
                                subtitle, "'; logy=", logy ? 1 : 0),
                   dir + "/" + file + ".svg");
  };
  auto series_of = [&](const std::vector<std::string>& names, const std::string& contains) {
    std::vector<const Series*> out;
    for (const auto& name : names) {
      const ScenarioResult* r = Find(results, name);
      if (r == nullptr) continue;
      for (const auto& s : r->series) {
        if (s.name.find(contains) != std::string::npos) out.push_back(&s);
      }
    }
    return out;
  };
  // 2. records/s over time of the drain runs: each job alone, then the four together.
  if (auto st = lines(
          "timeline",
          series_of({"log-split", "db-split", "dau", "order-wide", "baseline-dau"}, "records/s"),
          "records/s over time, each job alone draining its topic",
          "seconds since the process started", "records/s");
      !st.ok()) {
    return st;
  }
  if (auto st = lines("all_jobs", series_of({"all-jobs"}, "records/s"),
                      "all-jobs: the four jobs in one rtdwd draining a day of data",
                      "seconds since rtdwd started", "records/s");
      !st.ok()) {
    return st;
  }
  // 3. all-jobs lag under the sustained load.
  if (auto st = lines("all_jobs_lag", series_of({"all-jobs"}, "lag"),
                      "all-jobs at the target rate: consumer lag", "seconds since the load began",
                      "records behind");
      !st.ok()) {
    return st;
  }
  // 4. recovery progress.
  if (auto st = lines("recovery", series_of({"recovery"}, "after the restart"),
                      "recovery: progress after the restart", "seconds since the restart",
                      "records / documents");
      !st.ok()) {
    return st;
  }
  // 5. memory.
  {
    std::vector<const Series*> s = series_of({"memory"}, "RSS");
    Series limit{"target 512 MB", {}};
    if (!s.empty() && !s[0]->points.empty()) {
      limit.points = {{0, 512}, {s[0]->points.back().first, 512}};
      s.push_back(&limit);
    }
    if (auto st = lines("memory", s, "memory: rtdwd --job dau RSS by distinct mids in a day",
                        "distinct mids consumed", "MB");
        !st.ok()) {
      return st;
    }
  }
  // 6. latency: scatter over time and the distribution.
  {
    std::vector<const Series*> s = series_of({"latency"}, "probe latency");
    if (!s.empty() && !s[0]->points.empty()) {
      std::ofstream scatter(dir + "/latency.dat");
      std::vector<double> ms;
      for (const auto& [t, l] : s[0]->points) {
        scatter << t << "\t" << l << "\n";
        ms.push_back(l);
      }
      scatter.close();
      std::sort(ms.begin(), ms.end());
      std::ofstream cdf(dir + "/latency_cdf.dat");
      for (size_t i = 0; i < ms.size(); ++i)
        cdf << ms[i] << "\t" << 100.0 * (i + 1) / ms.size() << "\n";
      cdf.close();
      if (auto st = gnuplot("latency.gp",
                            absl::StrCat("datafile='", dir, "/latency.dat'; cdffile='", dir,
                                         "/latency_cdf.dat'; subtitle='", subtitle, "'"),
                            dir + "/latency.svg");
          !st.ok()) {
        return st;
      }
    }
  }
  return written;
}

}  // namespace rtdw::bench
