// Event time through the whole daemon (docs/FORMATS.md §5, §6), on the real local services
// (rtdw-kafka-mock, redis-server, rtdw-es-lite) and rtdwd processes killed with SIGKILL on the
// way. Each scenario is built so that the old watermark (one per partition number, the largest
// event time of either topic, not capped by the wall clock) fails it:
//  - CatchUp: three days of orders read before any detail exists (one topic days ahead of the
//    other): ES must equal rtdw-gen's truth, with no `late` and no `join_expired`.
//  - DetailsDaysBehind: the same skew from the change stream itself (rtdw-gen --detail-lag-days).
//  - IdleInput: a silent detail topic stops holding the join back after idle_input seconds.
//  - DauDisorder: three days of logs, a share of devices' first pages delivered largest-ts-first
//    across batches and days, SIGKILLs at random moments: ES == truth.
//  - FastClock: a device 20 h ahead on a busy partition, then delayed first pages of yesterday and
//    today on that partition: every one has its document, the fast one in its own day's index.
//
// Sizes: smoke by default; RTDW_TEST_SIZE=full multiplies the data.
#include <signal.h>

#include <chrono>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "core/event_time.h"
#include "gtest/gtest.h"
#include "rapidjson/document.h"
#include "tests/harness/kafka_reader.h"
#include "tests/harness/process.h"
#include "tests/pipeline/pipeline_stack.h"

namespace rtdw::testing {
namespace {

bool FullSize() {
  const char* v = getenv("RTDW_TEST_SIZE");
  return v != nullptr && std::string(v) == "full";
}

// The reasons of a job's dead letters (`rtdw deadletter list`), counted.
std::map<std::string, int> DeadLetterReasons(PipelineStack& stack, const std::string& job) {
  CommandResult dl = RunCommand({BinDir() + "/rtdw", "--state-dir", stack.state_dir(), "--json",
                                 "deadletter", "list", "--job", job});
  EXPECT_EQ(dl.exit_code, 0) << dl.out << dl.err;
  std::map<std::string, int> out;
  rapidjson::Document listed;
  listed.Parse(dl.out.c_str());
  if (!listed.IsObject() || !listed.HasMember("jobs")) {
    ADD_FAILURE() << dl.out;
    return out;
  }
  for (const auto& j : listed["jobs"].GetArray()) {
    for (const auto& d : j["dead_letters"].GetArray()) ++out[d["letter"]["reason"].GetString()];
  }
  return out;
}

// Runs rtdwd with `config` until it is idle (exit 0 expected).
void RunToIdle(const std::string& config, const std::string& job, const std::string& log_path) {
  CommandResult r =
      RunCommand({BinDir() + "/rtdwd", "--config", config, "--job", job, "--exit-when-idle", "1.5"},
                 std::chrono::seconds(240));
  std::ofstream(log_path, std::ios::app) << r.err;
  ASSERT_EQ(r.exit_code, 0) << r.err.substr(r.err.size() > 4000 ? r.err.size() - 4000 : 0);
}

// Starts order-wide, lets it work until `ready` or `max_wait`, then SIGKILLs it.
template <typename Ready>
void RunAndKill(PipelineStack& stack, Ready ready, std::chrono::milliseconds max_wait) {
  auto daemon = stack.StartDaemon("order-wide");
  ASSERT_TRUE(daemon.ok()) << daemon.status();
  WaitFor(ready, max_wait);
  (*daemon)->Kill9();
}

TEST(EventTimePipelineTest, CatchUpWithOneTopicDaysAheadLosesNothing) {
  const bool full = FullSize();
  StackOptions o;
  o.day = "2026-11-21";
  o.days = 3;
  o.orders = full ? 6000 : 600;
  o.users = 300;
  o.batch_max_records = full ? 500 : 50;
  // Long enough that an input silent in this test never counts as idle on a loaded machine
  // (the idle rule has its own unit test).
  o.extra_config = "[jobs.order-wide]\nidle_input = 3600\n";
  PipelineStack stack(o);
  ASSERT_TRUE(stack.Start().ok());
  ASSERT_TRUE(stack.GenerateDb().ok());
  ASSERT_EQ(stack.db_truth()["order_wide"].MemberCount(), 3u);

  // Two db-split instances over the same change stream, each with its own state: the first
  // writes only order_info (and the dimensions), the second only order_detail. So the order topic
  // holds three days while the detail topic is empty.
  auto split_config = [&](const std::string& name, const std::string& table) {
    auto path = stack.WriteInstanceConfig(name, {"db-split"}, "", {});
    EXPECT_TRUE(path.ok()) << path.status();
    std::ofstream(*path, std::ios::app) << "[jobs.db-split]\nfact_tables = [\"" << table << "\"]\n";
    return *path;
  };
  const std::string log = stack.dir().Sub("split.log");
  ASSERT_NO_FATAL_FAILURE(RunToIdle(split_config("orders", "order_info"), "db-split", log));

  // order-wide reads all three days of orders, killed once on the way.
  ASSERT_NO_FATAL_FAILURE(RunAndKill(
      stack, [] { return false; }, std::chrono::milliseconds(2500)));
  ASSERT_EQ(stack.RunToIdle("order-wide"), 0) << stack.DaemonLog();
  EXPECT_TRUE(DeadLetterReasons(stack, "order-wide").empty());

  // Now the details arrive, days behind the orders; killed twice while joining.
  ASSERT_NO_FATAL_FAILURE(RunToIdle(split_config("details", "order_detail"), "db-split", log));
  auto some_docs = [&] {
    auto docs = stack.EsDocuments("gmall_order_wide_*");
    return docs.ok() && !docs->empty();
  };
  ASSERT_NO_FATAL_FAILURE(RunAndKill(stack, some_docs, std::chrono::seconds(30)));
  ASSERT_NO_FATAL_FAILURE(RunAndKill(
      stack, [] { return false; }, std::chrono::milliseconds(1500)));
  ASSERT_EQ(stack.RunToIdle("order-wide"), 0) << stack.DaemonLog();

  auto ow = stack.CompareOrderWide();
  ASSERT_TRUE(ow.ok()) << ow.status();
  EXPECT_TRUE(ow->exact()) << "order-wide: " << ow->Summary();
  std::cout << "order-wide " << ow->Summary() << "\n";
  // Every detail of the truth has its order: no row is late or expires.
  std::map<std::string, int> reasons = DeadLetterReasons(stack, "order-wide");
  EXPECT_TRUE(reasons.empty()) << "late: " << reasons["late"]
                               << ", join_expired: " << reasons["join_expired"];
}

// Three days of app logs in which a share of devices' visits arrive a day late, later visits
// first (rtdw-gen --disorder), read by dau in small batches and SIGKILLed at random moments: ES
// holds exactly the truth (the smallest-ts first page of every (day, mid), nothing else) and
// nothing is dead-lettered (the generator never delivers a record more than a day behind).
TEST(EventTimePipelineTest, DauDisorderOverThreeDaysMatchesTheTruth) {
  const bool full = FullSize();
  StackOptions o;
  o.day = "2026-11-20";
  o.log_days = 3;
  o.log_disorder = 0.3;
  o.events = full ? 200000 : 20000;
  o.mids = full ? 5000 : 800;
  o.orders = 50;
  o.batch_max_records = full ? 500 : 40;
  PipelineStack stack(o);
  ASSERT_TRUE(stack.Start().ok());
  ASSERT_TRUE(stack.GenerateDb().ok());
  ASSERT_TRUE(stack.GenerateLogs().ok());
  ASSERT_EQ(stack.log_truth()["dau"].MemberCount(), 3u);
  ASSERT_EQ(stack.RunToIdle("db-split"), 0) << stack.DaemonLog();
  ASSERT_EQ(stack.RunToIdle("log-split"), 0) << stack.DaemonLog();
  std::mt19937 rng(7);
  std::uniform_int_distribution<int> pause_ms(300, 2500);
  for (int k = 0; k < (full ? 6 : 3); ++k) {
    auto daemon = stack.StartDaemon("dau");
    ASSERT_TRUE(daemon.ok()) << daemon.status();
    std::this_thread::sleep_for(std::chrono::milliseconds(pause_ms(rng)));
    (*daemon)->Kill9();
  }
  ASSERT_EQ(stack.RunToIdle("dau"), 0) << stack.DaemonLog();
  auto dau = stack.CompareDau();
  ASSERT_TRUE(dau.ok()) << dau.status();
  EXPECT_TRUE(dau->exact()) << "dau: " << dau->Summary();
  std::cout << "dau " << dau->Summary() << "\n";
  std::map<std::string, int> reasons = DeadLetterReasons(stack, "dau");
  EXPECT_TRUE(reasons.empty()) << "late: " << reasons["late"];
}

// The idle rule in the daemon: with the detail topic silent (at its end) for idle_input seconds,
// the orders alone move the join's watermark, and an order that waited past the TTL expires.
TEST(EventTimePipelineTest, AnIdleInputStopsHoldingTheJoinBack) {
  StackOptions o;
  o.extra_config = "[jobs.order-wide]\nidle_input = 2\njoin_ttl = 3600\n";
  PipelineStack stack(o);
  ASSERT_TRUE(stack.Start().ok());
  auto order = [](int id, const std::string& ct) {
    return absl::StrCat(R"({"id":)", id, R"(,"user_id":1,"province_id":1,"create_time":")", ct,
                        R"("})");
  };
  const std::string bootstrap = stack.kafka().bootstrap();
  ASSERT_TRUE(
      ProduceAll(bootstrap, "DWD_ORDER_INFO_I", {order(1, "2026-11-20 10:00:00")}, {"1"}).ok());
  auto daemon = stack.StartDaemon("order-wide");
  ASSERT_TRUE(daemon.ok()) << daemon.status();
  // The detail partitions are at their end from the start; after 2 s they are idle. Wait for
  // every one of them (the order partitions say the same, and a batch joined before the detail
  // side went idle would judge order 2 with the join still held back).
  ASSERT_TRUE(WaitFor(
      [&] {
        const std::string log = ReadFileOrEmpty(stack.dir().Sub("rtdwd.log"));
        for (int p = 0; p < 4; ++p) {
          if (!absl::StrContains(
                  log, absl::StrCat("DWD_ORDER_DETAIL_I/", p, " is at its end and idle"))) {
            return false;
          }
        }
        return true;
      },
      std::chrono::seconds(60)))
      << stack.DaemonLog();
  // Two hours later (TTL 1 h): order 1 expires unmatched.
  ASSERT_TRUE(
      ProduceAll(bootstrap, "DWD_ORDER_INFO_I", {order(2, "2026-11-20 12:00:00")}, {"1"}).ok());
  EXPECT_TRUE(WaitFor(
      [&] {
        CommandResult dl = RunCommand({BinDir() + "/rtdw", "--state-dir", stack.state_dir(),
                                       "--json", "deadletter", "list", "--job", "order-wide"});
        return absl::StrContains(dl.out, "join_expired");
      },
      std::chrono::seconds(60)))
      << stack.DaemonLog();
  (*daemon)->Signal(SIGTERM);
  EXPECT_EQ((*daemon)->Wait(std::chrono::seconds(30)), 0) << stack.DaemonLog();
  std::map<std::string, int> reasons = DeadLetterReasons(stack, "order-wide");
  EXPECT_EQ(reasons["join_expired"], 1);
  EXPECT_EQ(reasons.size(), 1u);
}

// The same skew arising by itself: a change stream whose order_detail rows come two days (of
// event time) after their orders, split and joined by one running daemon: while db-split works
// through it, the order topic runs days ahead of the detail topic.
TEST(EventTimePipelineTest, DetailsDaysBehindInTheChangeStream) {
  StackOptions o;
  o.day = "2026-11-21";
  o.days = 3;
  o.detail_lag_days = 2;
  o.orders = FullSize() ? 6000 : 600;
  o.users = 300;
  o.batch_max_records = 50;
  o.extra_config = "[jobs.order-wide]\nidle_input = 3600\n";
  PipelineStack stack(o);
  ASSERT_TRUE(stack.Start().ok());
  ASSERT_TRUE(stack.GenerateDb().ok());
  // The dimensions first (docs/FORMATS.md §4: tests load them before the facts), by a db-split of
  // its own that splits no fact table.
  auto dims_only = stack.WriteInstanceConfig("dims", {"db-split"}, "", {});
  ASSERT_TRUE(dims_only.ok()) << dims_only.status();
  std::ofstream(*dims_only, std::ios::app) << "[jobs.db-split]\nfact_tables = []\n";
  ASSERT_NO_FATAL_FAILURE(RunToIdle(*dims_only, "db-split", stack.dir().Sub("split.log")));
  // The rows themselves (DIM:*), not their source positions (DIMPOS:*, docs/STATE.md).
  ASSERT_EQ(
      stack.redis().Command({"EVAL", "return #redis.call('KEYS', 'DIM:*')", "0"}).value_or(""),
      std::to_string(stack.ExpectedDimKeys()));
  auto daemon = stack.StartDaemon();
  ASSERT_TRUE(daemon.ok()) << daemon.status();
  absl::StatusOr<Comparison> ow;
  WaitFor(
      [&] {
        ow = stack.CompareOrderWide();
        return ow.ok() && ow->exact();
      },
      std::chrono::seconds(180));
  (*daemon)->Signal(SIGTERM);
  EXPECT_EQ((*daemon)->Wait(std::chrono::seconds(60)), 0) << stack.DaemonLog();
  ASSERT_TRUE(ow.ok()) << ow.status();
  EXPECT_TRUE(ow->exact()) << "order-wide: " << ow->Summary();
  std::map<std::string, int> reasons = DeadLetterReasons(stack, "order-wide");
  EXPECT_TRUE(reasons.empty()) << "late: " << reasons["late"]
                               << ", join_expired: " << reasons["join_expired"];
}

// Local "yyyy-MM-dd" of an instant in `tz`.
std::string Day(int64_t ms, const absl::TimeZone& tz) { return DayOf(ms, tz); }

std::string FirstPage(const std::string& mid, int64_t ts) {
  return absl::StrCat(R"({"mid":")", mid, R"(","channel":"web","is_new":"0","model":"m1",)",
                      R"("operate_system":"Android 11","version_code":"v1","brand":"b1",)",
                      R"("page_id":"home","during_time":1000,"ts":)", ts, "}");
}

TEST(EventTimePipelineTest, FastClockDoesNotMakeOthersLate) {
  const bool full = FullSize();
  const int64_t now = static_cast<int64_t>(time(nullptr)) * 1000;
  const int64_t hour = 3600 * 1000;
  // A zone whose local time is now 06:00-18:00, so that now + 20 h is tomorrow there and
  // yesterday is inside the default 2-day retention only when judged from today.
  const int utc_hour = static_cast<int>((now / hour) % 24);
  int offset = 12 - utc_hour;  // local noon
  if (offset > 14) offset -= 24;
  if (offset < -12) offset += 24;
  // Etc/GMT-X is X hours *ahead* of UTC.
  const std::string zone =
      offset == 0 ? "Etc/UTC" : absl::StrCat("Etc/GMT", offset > 0 ? "-" : "+", std::abs(offset));
  absl::TimeZone tz;
  ASSERT_TRUE(absl::LoadTimeZone(zone, &tz)) << zone;
  const int64_t today_start = absl::ToUnixMillis(tz.At(absl::CivilSecond(CivilDayOf(now, tz))).pre);
  const int64_t yesterday_start = today_start - 24 * hour;

  StackOptions o;
  o.batch_max_records = 20;
  o.extra_config = absl::StrCat("[jobs.dau]\ntime_zone = \"", zone, "\"\n");
  PipelineStack stack(o);
  ASSERT_TRUE(stack.Start().ok());
  const std::string topic = "DWD_PAGE_LOG_TOPIC";
  const std::string key = "busy";  // one key: one partition

  // The busy partition's traffic of today, then the device 20 h fast.
  const int busy = full ? 2000 : 200;
  std::map<std::string, std::string> expected;  // mid -> index day
  std::vector<std::string> values;
  for (int i = 0; i < busy; ++i) {
    std::string mid = absl::StrCat("busy_", i);
    int64_t ts = today_start + (now - today_start) * i / busy;
    values.push_back(FirstPage(mid, ts));
    expected[mid] = Day(ts, tz);
  }
  const int64_t fast_ts = now + 20 * hour;
  values.push_back(FirstPage("fast", fast_ts));
  expected["fast"] = Day(fast_ts, tz);
  ASSERT_NE(expected["fast"], Day(now, tz));  // tomorrow there
  ASSERT_TRUE(ProduceAll(stack.kafka().bootstrap(), topic, values,
                         std::vector<std::string>(values.size(), key))
                  .ok());
  ASSERT_EQ(stack.RunToIdle("dau"), 0) << stack.DaemonLog();

  // Delayed first pages of yesterday and of today, on the same partition, in small batches and
  // with a SIGKILL in between.
  values.clear();
  const int delayed = full ? 500 : 60;
  for (int i = 0; i < delayed; ++i) {
    std::string y = absl::StrCat("yesterday_", i), t = absl::StrCat("today_", i);
    int64_t yts = yesterday_start + 24 * hour * i / delayed;
    int64_t tts = today_start + (now - today_start) * i / delayed;
    values.push_back(FirstPage(y, yts));
    values.push_back(FirstPage(t, tts));
    expected[y] = Day(yts, tz);
    expected[t] = Day(tts, tz);
  }
  ASSERT_TRUE(ProduceAll(stack.kafka().bootstrap(), topic, values,
                         std::vector<std::string>(values.size(), key))
                  .ok());
  {
    auto daemon = stack.StartDaemon("dau");
    ASSERT_TRUE(daemon.ok()) << daemon.status();
    std::this_thread::sleep_for(std::chrono::milliseconds(1500));
    (*daemon)->Kill9();
  }
  ASSERT_EQ(stack.RunToIdle("dau"), 0) << stack.DaemonLog();

  // Every document in its own event day's index, none missing, none extra, no dead letter.
  std::set<std::string> days;
  for (const auto& [mid, day] : expected) days.insert(day);
  size_t found = 0, missing = 0;
  std::vector<std::string> samples;
  for (const std::string& day : days) {
    auto docs = stack.EsDocuments("gmall_dau_info_" + day);
    ASSERT_TRUE(docs.ok()) << day << ": " << docs.status();
    for (const auto& [mid, d] : expected) {
      if (d != day) continue;
      if (docs->count(mid)) {
        ++found;
      } else if (++missing <= 5) {
        samples.push_back(absl::StrCat(mid, " not in gmall_dau_info_", day));
      }
    }
  }
  auto all = stack.EsDocuments("gmall_dau_info_*");
  ASSERT_TRUE(all.ok()) << all.status();
  EXPECT_EQ(missing, 0u) << absl::StrJoin(samples, "; ");
  EXPECT_EQ(found, expected.size());
  EXPECT_EQ(all->size(), expected.size());
  std::map<std::string, int> reasons = DeadLetterReasons(stack, "dau");
  EXPECT_TRUE(reasons.empty()) << "late: " << reasons["late"];
}

}  // namespace
}  // namespace rtdw::testing
