// SIGHUP's reload plan: which differences between the running config and the re-read one are
// applied live, which need a restart, and that nothing secret is shown.
#include <string>

#include "absl/strings/str_cat.h"
#include "core/config/config.h"
#include "core/config/reload.h"
#include "gtest/gtest.h"

namespace rtdw {
namespace {

Config Load(const std::string& text) {
  auto env = [](const std::string&) -> std::optional<std::string> { return std::nullopt; };
  ConfigLoadResult r = LoadConfigFromStringDetailed(text, "test.toml", env);
  EXPECT_TRUE(r.ok()) << (r.problems.empty() ? "" : r.problems.front());
  return r.config;
}

constexpr char kBase[] =
    "[kafka]\n[redis]\n[es]\n[state]\n[jobs]\nenabled = [\"log-split\", \"db-split\"]\n";

TEST(ReloadPlanTest, SameConfigChangesNothing) {
  ReloadPlan plan = PlanReload(Load(kBase), Load(kBase));
  EXPECT_TRUE(plan.empty());
  EXPECT_EQ(plan.Summary(), "nothing changed");
}

TEST(ReloadPlanTest, LiveKeysAreAppliedAndNamedWithTheirValues) {
  Config next = Load(absl::StrCat(
      kBase,
      "batch_max_ms = 50\n[log]\nlevel = \"debug\"\nformat = \"json\"\nprogress_interval = 3\n"
      "[shutdown]\ntimeout = 5\n[jobs.db-split]\nbatch_max_records = 9\n"
      "fact_tables = [\"order_info\"]\ndim_tables = [\"user_info\", \"sku_info\"]\n"));
  ReloadPlan plan = PlanReload(Load(kBase), next);
  EXPECT_TRUE(plan.restart.empty()) << plan.Summary();
  const std::string s = plan.Summary();
  for (const char* want :
       {"log.level \"info\" -> \"debug\"", "log.format \"text\" -> \"json\"",
        "log.progress_interval 10 -> 3", "shutdown.timeout 30 -> 5", "jobs.batch_max_ms 200 -> 50",
        "jobs.log-split.batch_max_ms 200 -> 50", "jobs.db-split.batch_max_ms 200 -> 50",
        "jobs.db-split.batch_max_records 10000 -> 9",
        "jobs.db-split.fact_tables [\"order_info\", \"order_detail\"] -> [\"order_info\"]",
        "jobs.db-split.dim_tables"}) {
    EXPECT_NE(s.find(want), std::string::npos) << want << " not in: " << s;
  }

  Config running = Load(kBase);
  ApplyLiveSettings(next, &running);
  EXPECT_EQ(running.log.level, LogLevel::kDebug);
  EXPECT_EQ(running.jobs.db_split.batch_max_records, 9);
  EXPECT_EQ(running.jobs.log_split.batch_max_ms.count(), 50);
  EXPECT_EQ(running.jobs.db_split.fact_tables, std::vector<std::string>{"order_info"});
  EXPECT_EQ(running.shutdown.timeout.count(), 5);
  EXPECT_TRUE(PlanReload(running, next).empty()) << PlanReload(running, next).Summary();
}

TEST(ReloadPlanTest, OtherKeysNeedARestartAndStayReported) {
  Config next = Load(
      "[kafka]\nbrokers = \"k1:9092,k2:9092\"\n[redis]\nurl = \"redis://r:6379/1\"\n[es]\n"
      "[state]\ndir = \"/elsewhere\"\n[http]\nlisten = \"\"\n[jobs]\n"
      "enabled = [\"log-split\", \"db-split\"]\ntime_zone = \"UTC\"\n"
      "[jobs.log-split]\nsource_topic = \"OTHER\"\n");
  Config running = Load(kBase);
  ReloadPlan plan = PlanReload(running, next);
  EXPECT_TRUE(plan.live.empty()) << plan.Summary();
  const std::string s = plan.Summary();
  for (const char* want :
       {"needs a restart (not applied):", "kafka.brokers", "redis.url", "state.dir", "http.listen",
        "jobs.time_zone", "jobs.log-split.source_topic"}) {
    EXPECT_NE(s.find(want), std::string::npos) << want << " not in: " << s;
  }
  // Not applied: the same differences are reported again at the next reload.
  ApplyLiveSettings(next, &running);
  EXPECT_EQ(running.kafka.brokers, "127.0.0.1:9092");
  EXPECT_EQ(PlanReload(running, next).restart.size(), plan.restart.size());
}

TEST(ReloadPlanTest, SectionsOfJobsThatAreNotEnabledAreIgnored) {
  ReloadPlan plan = PlanReload(Load(kBase), Load(absl::StrCat(kBase,
                                                              "[jobs.dau]\nbatch_max_records = 5\n"
                                                              "index_prefix = \"other_\"\n")));
  EXPECT_TRUE(plan.empty()) << plan.Summary();
  // ... but enabling a job is a restart.
  plan = PlanReload(Load(kBase),
                    Load("[kafka]\n[redis]\n[es]\n[state]\n[jobs]\nenabled = [\"dau\"]\n"));
  EXPECT_NE(plan.Summary().find("jobs.enabled"), std::string::npos) << plan.Summary();
}

TEST(ReloadPlanTest, AChangedSecretIsNamedButNeverShown) {
  Config a = Load(absl::StrCat(kBase, "[kafka.properties]\n\"sasl.password\" = \"old-s3cret\"\n"));
  Config b = Load(absl::StrCat(kBase, "[kafka.properties]\n\"sasl.password\" = \"new-s3cret\"\n"));
  Config c = Load(
      "[kafka]\n[redis]\nurl = \"redis://:pw1@127.0.0.1:6379/0\"\n[es]\n[state]\n[jobs]\n"
      "enabled = [\"log-split\", \"db-split\"]\n");
  Config d = Load(
      "[kafka]\n[redis]\nurl = \"redis://:pw2@127.0.0.1:6379/0\"\n[es]\n[state]\n[jobs]\n"
      "enabled = [\"log-split\", \"db-split\"]\n");
  std::string s = PlanReload(a, b).Summary();
  EXPECT_NE(s.find("kafka.properties"), std::string::npos) << s;
  EXPECT_EQ(s.find("s3cret"), std::string::npos) << s;
  s = PlanReload(c, d).Summary();
  EXPECT_NE(s.find("redis.url"), std::string::npos) << s;
  EXPECT_EQ(s.find("pw"), std::string::npos) << s;
}

}  // namespace
}  // namespace rtdw
