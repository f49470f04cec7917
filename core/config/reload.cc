#include "core/config/reload.h"

#include <map>
#include <set>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"

namespace rtdw {
namespace {

// The dump (DumpConfig) as "section.key" -> "value  # comment" (comments carry secret origins).
std::map<std::string, std::string> Flatten(const Config& config) {
  std::map<std::string, std::string> out;
  std::istringstream in(DumpConfig(config));
  std::string line, section;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    if (line.front() == '[' && line.back() == ']') {
      section = line.substr(1, line.size() - 2);
      continue;
    }
    size_t eq = line.find(" = ");
    if (eq == std::string::npos) continue;
    out[absl::StrCat(section, ".", line.substr(0, eq))] = line.substr(eq + 3);
  }
  return out;
}

std::string StripComment(const std::string& value) {
  size_t hash = value.find("  # ");
  return hash == std::string::npos ? value : value.substr(0, hash);
}

bool IsLiveKey(const std::string& key) {
  static const std::set<std::string> kLive = {"log.level",
                                              "log.format",
                                              "log.progress_interval",
                                              "shutdown.timeout",
                                              "jobs.batch_max_records",
                                              "jobs.batch_max_ms",
                                              "jobs.db-split.fact_tables",
                                              "jobs.db-split.dim_tables"};
  if (kLive.count(key) > 0) return true;
  for (std::string_view job : kJobNames) {
    std::string prefix = absl::StrCat("jobs.", std::string(job), ".");
    if (key == prefix + "batch_max_records" || key == prefix + "batch_max_ms") return true;
  }
  return false;
}

// The job whose section holds `key` ("" for other keys).
std::string_view JobOfKey(const std::string& key) {
  for (std::string_view job : kJobNames) {
    if (absl::StartsWith(key, absl::StrCat("jobs.", std::string(job), "."))) return job;
  }
  return {};
}

bool SameSecret(const std::optional<Secret>& a, const std::optional<Secret>& b) {
  if (a.has_value() != b.has_value()) return false;
  return !a || a->value == b->value;
}

}  // namespace

std::string ReloadPlan::Summary() const {
  if (empty()) return "nothing changed";
  std::vector<std::string> applied;
  for (const ConfigChange& c : live) {
    applied.push_back(absl::StrCat(c.key, " ", c.before, " -> ", c.after));
  }
  std::string out;
  if (!applied.empty()) absl::StrAppend(&out, "applied: ", absl::StrJoin(applied, ", "));
  if (!restart.empty()) {
    absl::StrAppend(&out, out.empty() ? "" : "; ",
                    "needs a restart (not applied): ", absl::StrJoin(restart, ", "));
  }
  return out;
}

ReloadPlan PlanReload(const Config& running, const Config& next) {
  ReloadPlan plan;
  const auto before = Flatten(running);
  const auto after = Flatten(next);
  std::set<std::string> keys;
  for (const auto& [k, v] : before) keys.insert(k);
  for (const auto& [k, v] : after) keys.insert(k);
  for (const std::string& key : keys) {
    auto b = before.find(key);
    auto a = after.find(key);
    const std::string bv = b == before.end() ? "(absent)" : b->second;
    const std::string av = a == after.end() ? "(absent)" : a->second;
    if (bv == av) continue;
    std::string_view job = JobOfKey(key);
    if (!job.empty() && !running.jobs.IsEnabled(job) && !next.jobs.IsEnabled(job)) continue;
    if (IsLiveKey(key)) {
      plan.live.push_back({key, StripComment(bv), StripComment(av)});
    } else {
      plan.restart.push_back(key);
    }
  }
  // What the dump masks or leaves out: secret values and the redis user name.
  auto note = [&plan](const std::string& key) {
    for (const auto& k : plan.restart) {
      if (k == key) return;
    }
    plan.restart.push_back(key);
  };
  if (!SameSecret(running.redis.password, next.redis.password) ||
      running.redis.username != next.redis.username) {
    note("redis.url");
  }
  if (!SameSecret(running.es.password, next.es.password)) note("es.password");
  if (!SameSecret(running.es.api_key, next.es.api_key)) note("es.api_key");
  if (running.kafka.ResolvedProperties() != next.kafka.ResolvedProperties()) {
    note("kafka.properties");
  }
  return plan;
}

void ApplyLiveSettings(const Config& next, Config* config) {
  config->log.level = next.log.level;
  config->log.format = next.log.format;
  config->log.progress_interval = next.log.progress_interval;
  config->shutdown.timeout = next.shutdown.timeout;
  config->jobs.batch_max_records = next.jobs.batch_max_records;
  config->jobs.batch_max_ms = next.jobs.batch_max_ms;
  auto common = [](const JobCommon& from, JobCommon* to) {
    to->batch_max_records = from.batch_max_records;
    to->batch_max_ms = from.batch_max_ms;
  };
  common(next.jobs.log_split, &config->jobs.log_split);
  common(next.jobs.db_split, &config->jobs.db_split);
  common(next.jobs.dau, &config->jobs.dau);
  common(next.jobs.order_wide, &config->jobs.order_wide);
  config->jobs.db_split.fact_tables = next.jobs.db_split.fact_tables;
  config->jobs.db_split.dim_tables = next.jobs.db_split.dim_tables;
}

}  // namespace rtdw
