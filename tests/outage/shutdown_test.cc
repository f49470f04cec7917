// A stop during an outage (issue 22): SIGTERM while the Kafka broker, Redis, Elasticsearch or all
// three are down, and while the start-up replays the journal to an Elasticsearch that refuses it.
// Each time rtdwd must be gone within shutdown.timeout + 5 s (the stack's config says 5 s), say
// in its exit code and its last log line what it gave up, and lose nothing by it: a restart with
// the services back ends with ES and the DWD topics equal to rtdw-gen's truth.
//
// Before the fix, the broker-down stop hung for minutes (rd_kafka_query_watermark_offsets and
// rd_kafka_consumer_close wait without a bound for an unreachable broker), so this test would
// time out there.
#include <csignal>
#include <iostream>
#include <optional>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"
#include "tests/outage/outage_helpers.h"
#include "tests/pipeline/pipeline_stack.h"

namespace rtdw::testing {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

// The stack's shutdown.timeout (tests/pipeline/pipeline_stack.cc) and the issue's bound on top.
constexpr auto kShutdownTimeout = seconds(5);
constexpr auto kStopBound = kShutdownTimeout + seconds(5);

// Exit codes of rtdwd (tools/rtdwd/main.cc).
constexpr int kExitClean = 0;
constexpr int kExitGaveUp = 3;

std::string LastLine(const std::string& log) {
  std::string last;
  for (absl::string_view line : absl::StrSplit(log, '\n', absl::SkipEmpty())) {
    last = std::string(line);
  }
  return last;
}

// SIGTERM; the daemon must exit within kStopBound. The exit code (nullopt when it did not).
std::optional<int> SigtermAndWait(ChildProcess& daemon, double* took_s) {
  const auto signalled = std::chrono::steady_clock::now();
  daemon.Signal(SIGTERM);
  std::optional<int> code = daemon.Wait(kStopBound);
  *took_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - signalled).count();
  return code;
}

// The exit code and the last log line agree, and say what was given up: 0 and "stopped
// cleanly" after a full drain, 3 and "giving up ...: <what>" otherwise. `must_give_up`: the test
// made sure something could not be done (e.g. ES down with journal entries owed).
void ExpectStopReport(int code, const std::string& log, bool must_give_up,
                      const std::string& must_name = "") {
  const std::string last = LastLine(log);
  std::cout << "exit " << code << "; last line: " << last << "\n";
  ASSERT_TRUE(code == kExitClean || code == kExitGaveUp) << "exit " << code << "\n" << log;
  if (code == kExitClean) {
    EXPECT_FALSE(must_give_up) << "nothing given up although it could not be done:\n" << log;
    EXPECT_TRUE(absl::StrContains(last, "rtdwd stopped cleanly")) << last;
  } else {
    EXPECT_TRUE(absl::StrContains(last, "rtdwd stopped, giving up at shutdown.timeout")) << last;
    EXPECT_TRUE(absl::StrContains(last, "(exit 3)")) << last;
  }
  if (!must_name.empty()) EXPECT_TRUE(absl::StrContains(last, must_name)) << last;
}

// The services are back: a restart runs the day to its end, and nothing was lost by the stop.
void ExpectRestartEndsWithTruth(PipelineStack& stack) {
  ASSERT_EQ(stack.RunToIdle("", 1.5), 0) << stack.DaemonLog();
  ExpectEsExact(stack);
  ExpectDwdComplete(stack, stack.log_truth());
  ExpectDwdComplete(stack, stack.db_truth());
}

// A stack with the dimension rows in Redis, the day's logs in ODS_BASE_LOG, and rtdwd running
// all four jobs until the jobs have read `min_records` of the day (mid-run).
struct Running {
  explicit Running(int events)
      : stack([&] {
          StackOptions o = SizedWithHttp(events, &port);
          o.batch_max_records = 200;
          return o;
        }()),
        ep(port) {}
  void Start(const char* job_started, double min_records) {
    Prepare();
    Launch(job_started, min_records);
  }
  // The services, the dimension rows and the day's logs.
  void Prepare() {
    absl::Status started = StartWithDims(stack);
    ASSERT_TRUE(started.ok()) << started;
    ASSERT_TRUE(stack.GenerateLogs().ok());
  }
  // rtdwd, until `job_started` has read `min_records`.
  void Launch(const char* job_started, double min_records) {
    auto d = stack.StartDaemon();
    ASSERT_TRUE(d.ok()) << d.status();
    daemon = std::move(*d);
    ASSERT_TRUE(WaitFor([&] { return ep.Up(); }, seconds(20))) << stack.DaemonLog();
    ASSERT_TRUE(WaitFor(
        [&] {
          return ep.Value("rtdw_records_in_total", absl::StrCat("job=\"", job_started, "\"")) >=
                 min_records;
        },
        seconds(60)))
        << stack.DaemonLog();
  }
  int port = 0;
  PipelineStack stack;
  Endpoint ep;
  std::unique_ptr<ChildProcess> daemon;
};

void BrokerDown(PipelineStack& stack, bool down) {
  int code = 0;
  std::string out =
      Http(absl::StrCat(stack.kafka().control_url(), "/brokers/1/", down ? "down" : "up"), &code,
           "POST");
  ASSERT_EQ(code, 200) << out;
}

int Events() { return Full() ? 200000 : 30000; }

// (a) The broker goes away while log-split has batches in flight: their acknowledgements never
// come. The stop gives them up uncommitted (read again at the next start) and does not wait for
// the unreachable broker anywhere (watermark queries, the consumer's close, the clients'
// destruction).
TEST(ShutdownTest, BrokerDown) {
  Running r(Events());
  r.Start("log-split", 1);
  BrokerDown(r.stack, true);
  SleepMs(1500);  // the jobs meet the outage (produce requests and fetches fail)
  double took = 0;
  std::optional<int> code = SigtermAndWait(*r.daemon, &took);
  ASSERT_TRUE(code.has_value()) << "still running " << took << " s after SIGTERM:\n"
                                << r.stack.DaemonLog();
  std::cout << "broker down: stopped in " << took << " s\n";
  ExpectStopReport(*code, r.stack.DaemonLog(), /*must_give_up=*/false);
  BrokerDown(r.stack, false);
  ExpectRestartEndsWithTruth(r.stack);
}

// (b) Redis goes away (with its data, SHUTDOWN SAVE) while the ES jobs look up dimensions: their
// batches cannot commit and are retried; the stop ends the retries and gives the batch up.
TEST(ShutdownTest, RedisDown) {
  Running r(Events());
  r.Start("dau", 1);
  ASSERT_TRUE(r.stack.redis().StopSaving().ok());
  ASSERT_TRUE(WaitFor([&] { return r.ep.Value("rtdw_redis_errors_total") > 0; }, seconds(30)))
      << r.stack.DaemonLog();
  double took = 0;
  std::optional<int> code = SigtermAndWait(*r.daemon, &took);
  ASSERT_TRUE(code.has_value()) << "still running " << took << " s after SIGTERM:\n"
                                << r.stack.DaemonLog();
  std::cout << "redis down: stopped in " << took << " s\n";
  ExpectStopReport(*code, r.stack.DaemonLog(), /*must_give_up=*/false);
  ASSERT_TRUE(r.stack.redis().Start().ok());
  ExpectRestartEndsWithTruth(r.stack);
}

// (c) Elasticsearch is killed with journal entries owed: they cannot be delivered by the
// deadline, so they stay owed (exit 3, the last line counts them) and the restart delivers them.
TEST(ShutdownTest, EsDown) {
  Running r(Events());
  r.Start("dau", 1);
  r.stack.es().Kill9();
  ASSERT_TRUE(WaitFor([&] { return r.ep.Value("rtdw_journal_backlog") >= 1; }, seconds(30)))
      << r.stack.DaemonLog();
  double took = 0;
  std::optional<int> code = SigtermAndWait(*r.daemon, &took);
  ASSERT_TRUE(code.has_value()) << "still running " << took << " s after SIGTERM:\n"
                                << r.stack.DaemonLog();
  std::cout << "es down: stopped in " << took << " s\n";
  ExpectStopReport(*code, r.stack.DaemonLog(), /*must_give_up=*/true,
                   "owed to Elasticsearch: delivered first at the next start");
  EXPECT_EQ(*code, kExitGaveUp);
  ASSERT_TRUE(r.stack.es().Restart().ok());
  ExpectRestartEndsWithTruth(r.stack);
}

// (d) All three at once.
TEST(ShutdownTest, BrokerRedisAndEsDown) {
  Running r(Events());
  r.Start("dau", 1);
  r.stack.es().Kill9();
  ASSERT_TRUE(WaitFor([&] { return r.ep.Value("rtdw_journal_backlog") >= 1; }, seconds(30)))
      << r.stack.DaemonLog();
  ASSERT_TRUE(r.stack.redis().StopSaving().ok());
  BrokerDown(r.stack, true);
  SleepMs(1500);
  double took = 0;
  std::optional<int> code = SigtermAndWait(*r.daemon, &took);
  ASSERT_TRUE(code.has_value()) << "still running " << took << " s after SIGTERM:\n"
                                << r.stack.DaemonLog();
  std::cout << "all down: stopped in " << took << " s\n";
  ExpectStopReport(*code, r.stack.DaemonLog(), /*must_give_up=*/true, "owed to Elasticsearch");
  EXPECT_EQ(*code, kExitGaveUp);
  BrokerDown(r.stack, false);
  ASSERT_TRUE(r.stack.redis().Start().ok());
  ASSERT_TRUE(r.stack.es().Restart().ok());
  ExpectRestartEndsWithTruth(r.stack);
}

// (e) A stop during the start-up replay of the journal while Elasticsearch refuses every
// document (429): the replay is cut at the deadline, the entries stay owed, and a restart with
// ES answering delivers them.
TEST(ShutdownTest, DuringStartupReplayWithEsRefusing) {
  Running r(Events());
  int code = 0;
  r.Prepare();
  std::string out = Http(r.stack.es().url() + "/_rtdw/faults", &code, "POST",
                         R"({"bulk_item_429_fraction":1.0})");
  ASSERT_EQ(code, 200) << out;
  r.Launch("dau", 1);
  // First run: the journal fills up (ES refuses), the stop leaves it owed.
  ASSERT_TRUE(
      WaitFor([&] { return r.ep.Value("rtdw_journal_backlog", "job=\"dau\"") >= 2; }, seconds(60)))
      << r.stack.DaemonLog();
  double took = 0;
  std::optional<int> first = SigtermAndWait(*r.daemon, &took);
  ASSERT_TRUE(first.has_value()) << r.stack.DaemonLog();
  EXPECT_EQ(*first, kExitGaveUp) << r.stack.DaemonLog();

  // Second run: it starts by replaying the owed entries, which ES still refuses.
  auto second = r.stack.StartInstance(r.stack.config(), "rtdwd-replay.log");
  ASSERT_TRUE(second.ok());
  ASSERT_TRUE(WaitFor(
      [&] { return absl::StrContains(r.stack.LogTail("rtdwd-replay.log"), "re-delivering"); },
      seconds(30)))
      << r.stack.LogTail("rtdwd-replay.log");
  SleepMs(500);
  std::optional<int> stopped = SigtermAndWait(**second, &took);
  const std::string log = r.stack.LogTail("rtdwd-replay.log", 20000);
  ASSERT_TRUE(stopped.has_value()) << "still running " << took << " s after SIGTERM:\n" << log;
  std::cout << "replay refused: stopped in " << took << " s\n";
  EXPECT_TRUE(absl::StrContains(log, "dau: start-up interrupted by the stop")) << log;
  ExpectStopReport(*stopped, log, /*must_give_up=*/true, "dau: ");
  EXPECT_EQ(*stopped, kExitGaveUp);

  out = Http(r.stack.es().url() + "/_rtdw/faults", &code, "DELETE");
  ASSERT_EQ(code, 200) << out;
  ExpectRestartEndsWithTruth(r.stack);
}

// A stop while the start-up waits for Elasticsearch (down before the daemon starts): the wait
// ends at once (nothing is owed), and the restart with ES back runs the day.
TEST(ShutdownTest, DuringStartupWaitingForEs) {
  Running r(Events());
  r.Prepare();
  r.stack.es().Kill9();
  auto d = r.stack.StartDaemon();
  ASSERT_TRUE(d.ok());
  ASSERT_TRUE(WaitFor(
      [&] { return absl::StrContains(r.stack.DaemonLog(), "dau: waiting for Elasticsearch"); },
      seconds(30)))
      << r.stack.DaemonLog();
  double took = 0;
  std::optional<int> code = SigtermAndWait(**d, &took);
  ASSERT_TRUE(code.has_value()) << "still running " << took << " s after SIGTERM:\n"
                                << r.stack.DaemonLog();
  std::cout << "waiting for ES: stopped in " << took << " s\n";
  EXPECT_LT(took, 3.0) << "a wait for a service should end at once";
  EXPECT_TRUE(absl::StrContains(r.stack.DaemonLog(), "dau: start-up interrupted by the stop"))
      << r.stack.DaemonLog();
  ExpectStopReport(*code, r.stack.DaemonLog(), /*must_give_up=*/false);
  ASSERT_TRUE(r.stack.es().Restart().ok());
  ExpectRestartEndsWithTruth(r.stack);
}

// Group mode (kafka.group) with the broker down: leaving the group needs the coordinator, which
// does not answer; the stop does not wait for it past the deadline. The restart (a new member:
// the old one is dropped after session.timeout.ms) runs the day to the truth.
TEST(ShutdownTest, GroupModeBrokerDown) {
  Running r(Events());
  r.Prepare();
  auto config = r.stack.WriteInstanceConfig(
      "g", {"log-split", "dau", "order-wide"}, "group = \"g\"",
      {{"session.timeout.ms", "6000"}, {"heartbeat.interval.ms", "500"}});
  ASSERT_TRUE(config.ok()) << config.status();
  auto d = r.stack.StartInstance(*config, "group.log");
  ASSERT_TRUE(d.ok());
  ASSERT_TRUE(WaitFor(
      [&] {
        const std::string log = r.stack.LogTail("group.log", 1 << 22);
        return absl::StrContains(log, "log-split: group gives") &&
               absl::StrContains(log, "dau: group gives");
      },
      seconds(60)))
      << r.stack.LogTail("group.log");
  SleepMs(1000);
  BrokerDown(r.stack, true);
  SleepMs(1500);
  double took = 0;
  std::optional<int> code = SigtermAndWait(**d, &took);
  const std::string log = r.stack.LogTail("group.log", 1 << 22);
  ASSERT_TRUE(code.has_value()) << "still running " << took << " s after SIGTERM:\n" << log;
  std::cout << "group mode, broker down: stopped in " << took << " s\n";
  ExpectStopReport(*code, log, /*must_give_up=*/false);
  BrokerDown(r.stack, false);
  CommandResult again = RunCommand(
      {BinDir() + "/rtdwd", "--config", *config, "--exit-when-idle", "1.5"}, seconds(180));
  ASSERT_EQ(again.exit_code, 0) << again.err;
  ExpectEsExact(r.stack);
  ExpectDwdComplete(r.stack, r.stack.log_truth());
}

}  // namespace
}  // namespace rtdw::testing
