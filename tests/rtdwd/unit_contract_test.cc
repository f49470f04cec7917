// The exit-code contract between rtdwd and its systemd unit (deploy/rtdwd.service; docs/
// OPERATIONS.md "Exit codes"): the shipped unit file is parsed (ExecStart=, Restart=,
// RestartPreventExitStatus=, SuccessExitStatus=), rtdwd is run exactly as its ExecStart= line
// runs it (the same flags; only the binary's and the config's paths differ) with each exit
// condition, and systemd's rule decides from the unit's own settings whether it would restart:
// what needs an operator (exit 1) and a bad config (2) must not be restarted, a crash and what a
// restart may heal (4) must be, a clean stop (0) and a stop that left work owed (3) are clean.
// `systemd-analyze verify` checks the unit itself when it is installed.
#include <signal.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "tests/harness/kafka_reader.h"
#include "tests/outage/outage_helpers.h"
#include "tests/pipeline/pipeline_stack.h"

namespace rtdw::testing {
namespace {

using std::chrono::seconds;

std::string SourceDir() { return RTDW_SOURCE_DIR; }

// The [Service] settings of a unit file that decide about restarts, and its ExecStart= words.
struct Unit {
  std::map<std::string, std::vector<std::string>> service;  // key -> every value, in order
  std::vector<std::string> Words(const std::string& key) const {
    std::vector<std::string> out;
    auto it = service.find(key);
    if (it == service.end()) return out;
    for (const std::string& v : it->second) {
      for (absl::string_view w : absl::StrSplit(v, ' ', absl::SkipEmpty())) out.emplace_back(w);
    }
    return out;
  }
  std::string One(const std::string& key) const {
    auto it = service.find(key);
    return it == service.end() || it->second.empty() ? "" : it->second.back();
  }
};

Unit ParseUnit(const std::string& path) {
  Unit unit;
  std::ifstream in(path);
  std::string line, section;
  while (std::getline(in, line)) {
    absl::string_view l = absl::StripAsciiWhitespace(line);
    if (l.empty() || l[0] == '#' || l[0] == ';') continue;
    if (l[0] == '[') {
      section = std::string(l);
      continue;
    }
    if (section != "[Service]") continue;
    size_t eq = l.find('=');
    if (eq == absl::string_view::npos) continue;
    unit.service[std::string(absl::StripAsciiWhitespace(l.substr(0, eq)))].push_back(
        std::string(absl::StripAsciiWhitespace(l.substr(eq + 1))));
  }
  return unit;
}

// How a run ended, as systemd sees it: an exit code, or the signal that ended the process.
struct Outcome {
  bool signaled = false;
  int value = 0;  // the exit code, or the signal number
  std::string Describe() const {
    return signaled ? absl::StrCat("signal ", value) : absl::StrCat("exit ", value);
  }
};

// ChildProcess reports a signal as 128+N; rtdwd's own codes are 0-4.
Outcome OutcomeOf(int code) {
  if (code > 128) return {true, code - 128};
  return {false, code};
}

std::string SignalName(int sig) {
  switch (sig) {
    case SIGHUP:
      return "SIGHUP";
    case SIGINT:
      return "SIGINT";
    case SIGTERM:
      return "SIGTERM";
    case SIGPIPE:
      return "SIGPIPE";
    case SIGKILL:
      return "SIGKILL";
    case SIGSEGV:
      return "SIGSEGV";
    case SIGABRT:
      return "SIGABRT";
    default:
      return absl::StrCat(sig);
  }
}

bool Listed(const std::vector<std::string>& list, const Outcome& o) {
  const std::string want = o.signaled ? SignalName(o.value) : absl::StrCat(o.value);
  return std::find(list.begin(), list.end(), want) != list.end();
}

// systemd.service(5): a clean exit is exit code 0, a code or signal in SuccessExitStatus=, or
// (for a service without its own handling) SIGHUP, SIGINT, SIGTERM or SIGPIPE. Restart=on-failure
// restarts after an unclean one — a non-zero exit code or a signal — unless
// RestartPreventExitStatus= lists it; Restart=always after any exit not prevented; Restart=no
// never.
bool WouldRestart(const Unit& unit, const Outcome& o) {
  const std::string restart = unit.One("Restart");
  if (Listed(unit.Words("RestartPreventExitStatus"), o)) return false;
  bool clean = o.signaled ? (o.value == SIGHUP || o.value == SIGINT || o.value == SIGTERM ||
                             o.value == SIGPIPE || Listed(unit.Words("SuccessExitStatus"), o))
                          : (o.value == 0 || Listed(unit.Words("SuccessExitStatus"), o));
  if (restart == "always") return true;
  if (restart == "on-failure") return !clean;
  if (restart == "on-abnormal") return o.signaled && !clean;
  return false;
}

class UnitContractTest : public ::testing::Test {
 protected:
  static constexpr char kUnitConfig[] = "/etc/rtdw/rtdw.toml";

  void SetUp() override {
    unit_ = ParseUnit(SourceDir() + "/deploy/rtdwd.service");
    exec_ = unit_.Words("ExecStart");
    ASSERT_FALSE(exec_.empty()) << "no ExecStart= in the unit";
  }
  // The unit's ExecStart= words with the binary and the config file replaced by the test's.
  std::vector<std::string> ExecStart(const std::string& config) const {
    std::vector<std::string> argv = exec_;
    EXPECT_TRUE(absl::EndsWith(argv[0], "/rtdwd")) << argv[0];
    argv[0] = BinDir() + "/rtdwd";
    for (std::string& a : argv) {
      if (a == kUnitConfig) a = config;
    }
    return argv;
  }
  // rtdwd as the unit starts it; stderr to `log`.
  std::unique_ptr<ChildProcess> Start(const std::string& config, const std::string& log) {
    ProcessOptions po;
    po.stderr_path = log;
    po.stdout_path = log + ".out";
    auto child = ChildProcess::Start(ExecStart(config), po);
    EXPECT_TRUE(child.ok()) << child.status();
    return child.ok() ? std::move(*child) : nullptr;
  }
  // Waits for the exit (generous: a loaded machine) and checks the code and systemd's verdict.
  Outcome ExpectEnds(ChildProcess& p, const std::string& log, int code, bool restarted,
                     const std::string& condition, seconds timeout = seconds(90)) {
    std::optional<int> got = p.Wait(timeout);
    EXPECT_TRUE(got.has_value()) << condition << ": still running\n" << ReadFileOrEmpty(log);
    if (!got) {
      p.Kill9();
      return {};
    }
    Outcome o = OutcomeOf(*got);
    EXPECT_FALSE(o.signaled) << condition << ": " << o.Describe();
    EXPECT_EQ(o.value, code) << condition << "\n" << ReadFileOrEmpty(log);
    ExpectRestart(o, restarted, condition);
    return o;
  }
  void ExpectRestart(const Outcome& o, bool restarted, const std::string& condition) {
    EXPECT_EQ(WouldRestart(unit_, o), restarted)
        << condition << ": " << o.Describe() << " would " << (restarted ? "not " : "")
        << "be restarted by the unit";
    std::cout << condition << ": " << o.Describe() << " -> "
              << (WouldRestart(unit_, o) ? "restarted" : "not restarted") << "\n";
  }
  std::string Config(const std::string& state, const std::string& jobs, const std::string& es_url,
                     const std::string& extra = "", const std::string& kafka_lines = "") {
    static int n = 0;
    std::string path = dir_.Sub(absl::StrCat("rtdw-", ++n, ".toml"));
    std::ofstream(path) << "[kafka]\nbrokers = \"" << stack_->kafka().bootstrap() << "\"\n"
                        << kafka_lines << "[redis]\nurl = \"" << stack_->redis().url() << "\"\n"
                        << "[es]\nurl = \"" << es_url << "\"\n"
                        << "[state]\ndir = \"" << dir_.Sub(state) << "\"\n"
                        << "[log]\nprogress_interval = 0\n"
                        << "[shutdown]\ntimeout = 3\n"
                        << "[jobs]\nenabled = [" << jobs << "]\nbatch_max_records = 100\n"
                        << "batch_max_ms = 50\n"
                        << extra
                        // Never the default 127.0.0.1:9464: tests running in parallel
                        // (security_daemon_test checks that default) would take it.
                        << (absl::StrContains(extra, "[http]") ? "" : Http(FreePort()));
    return path;
  }
  // `rtdw state init`: a store to write offsets into before the first start.
  void StateInit(const std::string& config, const std::string& job) {
    CommandResult r =
        RunCommand({BinDir() + "/rtdw", "--config", config, "state", "init", "--job", job});
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }
  std::string Http(int port) { return absl::StrCat("[http]\nlisten = \"127.0.0.1:", port, "\"\n"); }
  void StartStack() {
    StackOptions o;
    o.mids = 40;
    o.users = 40;
    o.events = 400;
    stack_ = std::make_unique<PipelineStack>(o);
    ASSERT_TRUE(stack_->Start().ok());
  }

  Unit unit_;
  std::vector<std::string> exec_;
  TempDir dir_;
  std::unique_ptr<PipelineStack> stack_;
};

// The unit runs no ExecStartPre= (its failure would not be covered by RestartPreventExitStatus=),
// and the unit file passes systemd's own checks.
TEST_F(UnitContractTest, TheUnitChecksTheConfigInItsMainProcess) {
  EXPECT_TRUE(unit_.Words("ExecStartPre").empty())
      << "ExecStartPre= exits are not covered by RestartPreventExitStatus=";
  EXPECT_EQ(unit_.One("Restart"), "on-failure");
  EXPECT_EQ(exec_.size(), 3u) << absl::StrJoin(exec_, " ");
  // --help lists the codes the unit's settings are about.
  CommandResult help = RunCommand({BinDir() + "/rtdwd", "--help"});
  for (const char* code : {"  1  needs an operator", "  2  bad config", "  3  a stop that left",
                           "  4  failed, a restart may succeed"}) {
    EXPECT_TRUE(absl::StrContains(help.out, code)) << code << "\n" << help.out;
  }
  if (RunCommand({"sh", "-c", "command -v systemd-analyze"}).exit_code != 0) {
    std::cout << "systemd-analyze not installed: the unit's syntax is not verified\n";
    return;
  }
  // The unit as installed, with the binary at this build's path (verify checks it exists).
  std::string text = ReadFileOrEmpty(SourceDir() + "/deploy/rtdwd.service");
  text = absl::StrReplaceAll(text, {{"/usr/local/bin/rtdwd", BinDir() + "/rtdwd"}});
  std::string copy = dir_.Sub("rtdwd.service");
  std::ofstream(copy) << text;
  CommandResult r = RunCommand({"systemd-analyze", "verify", copy});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_EQ(r.err, "") << "systemd-analyze verify warns";
}

TEST_F(UnitContractTest, BadOrMissingConfigIsExit2AndNotRestarted) {
  std::string bad = dir_.Sub("bad.toml");
  std::ofstream(bad) << "[kafka]\nbrokers = 12\n[state]\nblock_cach_mb = 5\n";
  std::string log = dir_.Sub("bad.log");
  auto p = Start(bad, log);
  ASSERT_TRUE(p);
  ExpectEnds(*p, log, 2, false, "bad config", seconds(30));
  EXPECT_TRUE(absl::StrContains(ReadFileOrEmpty(log), bad + ":2: kafka.brokers"));

  log = dir_.Sub("missing.log");
  p = Start(dir_.Sub("no-such.toml"), log);
  ASSERT_TRUE(p);
  ExpectEnds(*p, log, 2, false, "missing config", seconds(30));
  EXPECT_TRUE(absl::StrContains(ReadFileOrEmpty(log), dir_.Sub("no-such.toml")));
}

// A clean stop is 0; a crash (SIGKILL) is restarted; a second rtdwd on the same state dir needs
// an operator (1, not restarted); a port another process holds may free up (4, restarted).
TEST_F(UnitContractTest, CleanStopCrashHeldStoreAndPortTaken) {
  ASSERT_NO_FATAL_FAILURE(StartStack());
  const int port = FreePort();
  std::string config = Config("state", "\"log-split\"", stack_->es().url(), Http(port));
  std::string log = dir_.Sub("first.log");
  auto first = Start(config, log);
  ASSERT_TRUE(first);
  Endpoint ep(port);
  ASSERT_TRUE(WaitFor([&] { return ep.Up(); }, seconds(60))) << ReadFileOrEmpty(log);
  ASSERT_TRUE(
      WaitFor([&] { return absl::StrContains(ReadFileOrEmpty(log), "assigned"); }, seconds(60)))
      << ReadFileOrEmpty(log);

  // Held store: the same config (its own HTTP port would clash first, so without HTTP).
  std::string second_config = Config("state", "\"log-split\"", stack_->es().url());
  std::string log2 = dir_.Sub("second.log");
  auto second = Start(second_config, log2);
  ASSERT_TRUE(second);
  ExpectEnds(*second, log2, 1, false, "held store", seconds(60));
  EXPECT_TRUE(absl::StrContains(ReadFileOrEmpty(log2),
                                absl::StrCat("is held by another process (pid ", first->pid())))
      << ReadFileOrEmpty(log2);

  // Port taken: the first daemon holds it.
  std::string log3 = dir_.Sub("port.log");
  auto third = Start(Config("state-3", "\"log-split\"", stack_->es().url(), Http(port)), log3);
  ASSERT_TRUE(third);
  ExpectEnds(*third, log3, 4, true, "http.listen port taken", seconds(60));
  EXPECT_TRUE(absl::StrContains(ReadFileOrEmpty(log3), "cannot listen")) << ReadFileOrEmpty(log3);

  first->Signal(SIGTERM);
  ExpectEnds(*first, log, 0, false, "clean SIGTERM", seconds(60));

  // A crash: SIGKILL.
  std::string log4 = dir_.Sub("crash.log");
  auto crashed = Start(config, log4);
  ASSERT_TRUE(crashed);
  ASSERT_TRUE(
      WaitFor([&] { return absl::StrContains(ReadFileOrEmpty(log4), "assigned"); }, seconds(60)))
      << ReadFileOrEmpty(log4);
  crashed->Kill9();
  ASSERT_TRUE(crashed->exit_code().has_value());
  Outcome o = OutcomeOf(*crashed->exit_code());
  EXPECT_TRUE(o.signaled && o.value == SIGKILL) << o.Describe();
  ExpectRestart(o, true, "crash (SIGKILL)");
}

// A stop that gave up at shutdown.timeout (ES refusing every item: the journal stays owed) is 3,
// a clean stop for the unit.
TEST_F(UnitContractTest, StopThatLeftWorkOwedIsExit3AndClean) {
  ASSERT_NO_FATAL_FAILURE(StartStack());
  ASSERT_TRUE(stack_->GenerateLogs().ok());
  ASSERT_EQ(stack_->RunToIdle("log-split"), 0) << stack_->DaemonLog();
  ASSERT_EQ(RunCommand({"curl", "-sf", "-XPOST", "-H", "Content-Type: application/json", "-d",
                        R"({"bulk_item_429_fraction":1})", stack_->es().url() + "/_rtdw/faults"})
                .exit_code,
            0);
  const int port = FreePort();
  std::string config = Config("state", "\"dau\"", stack_->es().url(), Http(port));
  std::string log = dir_.Sub("dau.log");
  auto p = Start(config, log);
  ASSERT_TRUE(p);
  Endpoint ep(port);
  ASSERT_TRUE(
      WaitFor([&] { return ep.Value("rtdw_journal_backlog", "job=\"dau\"") > 0; }, seconds(90)))
      << ReadFileOrEmpty(log);
  p->Signal(SIGTERM);
  ExpectEnds(*p, log, 3, false, "stop giving up at shutdown.timeout", seconds(60));
}

// ES holds dau's index of today and there is no store: refused (1, not restarted), the message
// naming the procedure and how to start empty on purpose; that command (`rtdw state init`) then
// lets the same unit start. With ES unreachable, rtdwd waits (never creates the store).
TEST_F(UnitContractTest, FreshStoreRefusedWhileEsHoldsTheJobsIndices) {
  ASSERT_NO_FATAL_FAILURE(StartStack());
  // ES unreachable: no creation, /health says why; a stop is clean.
  const int port = FreePort();
  std::string unreachable =
      Config("state", "\"dau\"", absl::StrCat("http://127.0.0.1:", FreePort()), Http(port));
  std::string log = dir_.Sub("unreachable.log");
  auto p = Start(unreachable, log);
  ASSERT_TRUE(p);
  Endpoint ep(port);
  int code = 0;
  ASSERT_TRUE(WaitFor(
      [&] {
        return absl::StrContains(ep.Health(&code),
                                 "dau: starting: waiting for Elasticsearch at http://127.0.0.1:");
      },
      seconds(60)))
      << ep.Health(&code) << ReadFileOrEmpty(log);
  EXPECT_EQ(code, 503);
  EXPECT_FALSE(std::filesystem::exists(dir_.Sub("state/dau")));
  p->Signal(SIGTERM);
  ExpectEnds(*p, log, 0, false, "stop while waiting for ES at the fresh-store check", seconds(60));
  EXPECT_FALSE(std::filesystem::exists(dir_.Sub("state/dau")))
      << "created a store without knowing what ES holds";

  // ES holds today's dau index.
  const std::string today = absl::FormatCivilTime(absl::ToCivilDay(absl::Now(), [] {
    absl::TimeZone tz;
    EXPECT_TRUE(absl::LoadTimeZone("Asia/Shanghai", &tz));
    return tz;
  }()));
  const std::string index = "gmall_dau_info_" + today;
  ASSERT_EQ(RunCommand({"curl", "-sf", "-XPUT", stack_->es().url() + "/" + index}).exit_code, 0);
  std::string config = Config("state", "\"dau\"", stack_->es().url());
  log = dir_.Sub("refused.log");
  p = Start(config, log);
  ASSERT_TRUE(p);
  ExpectEnds(*p, log, 1, false, "refused fresh store");
  const std::string text = ReadFileOrEmpty(log);
  EXPECT_TRUE(absl::StrContains(text, "refusing to create an empty store")) << text;
  EXPECT_TRUE(absl::StrContains(text, index)) << text;
  EXPECT_TRUE(absl::StrContains(text, "docs/OPERATIONS.md, \"Disaster recovery\"")) << text;
  const std::string init = absl::StrCat("rtdw --config ", config, " state init --job dau");
  EXPECT_TRUE(absl::StrContains(text, "to start empty on purpose, create the store with `" + init))
      << text;
  EXPECT_FALSE(std::filesystem::exists(dir_.Sub("state/dau")));

  // Group mode has no such check: a new member starts empty by design and rebuilds what it is
  // given.
  std::string group = Config("state-group", "\"dau\"", stack_->es().url(), "", "group = \"g\"\n");
  log = dir_.Sub("group.log");
  p = Start(group, log);
  ASSERT_TRUE(p);
  EXPECT_TRUE(
      WaitFor([&] { return std::filesystem::exists(dir_.Sub("state-group/dau")); }, seconds(90)))
      << ReadFileOrEmpty(log);
  p->Signal(SIGTERM);
  std::optional<int> stopped = p->Wait(seconds(60));
  ASSERT_TRUE(stopped.has_value()) << ReadFileOrEmpty(log);
  EXPECT_TRUE(*stopped == 0 || *stopped == 3) << *stopped << "\n" << ReadFileOrEmpty(log);

  // The documented way to start empty on purpose, then the unit's start.
  CommandResult r =
      RunCommand({BinDir() + "/rtdw", "--config", config, "state", "init", "--job", "dau"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  log = dir_.Sub("after-init.log");
  p = Start(config, log);
  ASSERT_TRUE(p);
  ASSERT_TRUE(WaitFor([&] { return absl::StrContains(ReadFileOrEmpty(log), "dau: assigned"); },
                      seconds(90)))
      << ReadFileOrEmpty(log);
  p->Signal(SIGTERM);
  ExpectEnds(*p, log, 0, false, "start after state init", seconds(60));
}

// A stored offset the broker does not have stops only its job: the message gives the offset, the
// broker's range and the command; /health names it; the daemon's other job goes on. Following the
// message's command (the daemon still running) and restarting resumes it. When every job has
// stopped this way the daemon exits 1 (needs an operator: not restarted).
TEST_F(UnitContractTest, LostOffsetStopsOnlyItsJob) {
  ASSERT_NO_FATAL_FAILURE(StartStack());
  ASSERT_TRUE(stack_->GenerateLogs().ok());
  auto records = ReadTopic(stack_->kafka().bootstrap(), "ODS_BASE_LOG");
  ASSERT_TRUE(records.ok()) << records.status();
  std::map<int, int64_t> high;
  for (const auto& r : *records) high[r.partition] = std::max(high[r.partition], r.offset + 1);
  ASSERT_GT(high[0], 0);
  const int64_t lost = high[0] + 1000;

  const int port = FreePort();
  std::string config =
      Config("state", "\"log-split\", \"db-split\"", stack_->es().url(), Http(port));
  StateInit(config, "log-split");
  CommandResult r = RunCommand({BinDir() + "/rtdw", "--config", config, "offsets", "set", "--job",
                                "log-split", "--topic", "ODS_BASE_LOG", "--partition", "0",
                                "--offset", absl::StrCat(lost), "--unchecked"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::string log = dir_.Sub("lost.log");
  auto p = Start(config, log);
  ASSERT_TRUE(p);
  Endpoint ep(port);
  int code = 0;
  ASSERT_TRUE(WaitFor(
      [&] { return absl::StrContains(ep.Health(&code), "log-split: stopped: ODS_BASE_LOG/0"); },
      seconds(90)))
      << ep.Health(&code) << ReadFileOrEmpty(log);
  EXPECT_EQ(code, 503);
  std::string text = ReadFileOrEmpty(log);
  EXPECT_TRUE(absl::StrContains(
      text, absl::StrCat("the stored offset ", lost, " is no longer on the broker")))
      << text;
  EXPECT_TRUE(absl::StrContains(
      text, absl::StrCat("the broker holds offsets 0 to ", high[0], " (the next one")))
      << text;
  const std::string fix = absl::StrCat("rtdw --config ", config,
                                       " offsets set --job log-split --topic ODS_BASE_LOG "
                                       "--partition 0 --to-earliest");
  EXPECT_TRUE(absl::StrContains(text, "`" + fix + "`")) << text;
  EXPECT_EQ(ep.Value("rtdw_offset_lost_total", "job=\"log-split\""), 1);

  // db-split goes on: the day's CDC produced now is consumed, all of it.
  ASSERT_TRUE(p->Running()) << "the daemon stopped with its other job";
  ASSERT_TRUE(stack_->GenerateDb().ok());
  auto cdc = ReadTopic(stack_->kafka().bootstrap(), "ODS_BASE_DB");
  ASSERT_TRUE(cdc.ok()) << cdc.status();
  EXPECT_TRUE(WaitFor(
      [&] {
        return ep.Value("rtdw_records_in_total", "job=\"db-split\"") ==
               static_cast<double>(cdc->size());
      },
      seconds(90)))
      << cdc->size() << " records\n"
      << ReadFileOrEmpty(log);

  // The message's command, as printed (the stopped job let go of its store), then a restart.
  std::vector<std::string> argv = absl::StrSplit(fix, ' ');
  argv[0] = BinDir() + "/rtdw";
  r = RunCommand(argv);
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  p->Signal(SIGTERM);
  ExpectEnds(*p, log, 1, false, "stop with a job stopped on a lost offset", seconds(60));
  ASSERT_EQ(RunCommand(absl::StrSplit(absl::StrCat(absl::StrJoin(ExecStart(config), " "),
                                                   " --exit-when-idle 1.5"),
                                      ' '),
                       seconds(180))
                .exit_code,
            0);
  auto dwd = ReadTopic(stack_->kafka().bootstrap(), "DWD_PAGE_LOG_TOPIC");
  ASSERT_TRUE(dwd.ok());
  EXPECT_GT(dwd->size(), 0u);
  ExpectDwdComplete(*stack_, stack_->log_truth());
  ExpectDwdComplete(*stack_, stack_->db_truth());

  // Every job stopped this way: exit 1 on its own, not restarted.
  std::string lone = Config("state-lone", "\"log-split\"", stack_->es().url());
  StateInit(lone, "log-split");
  r = RunCommand({BinDir() + "/rtdw", "--config", lone, "offsets", "set", "--job", "log-split",
                  "--topic", "ODS_BASE_LOG", "--partition", "0", "--offset", absl::StrCat(lost),
                  "--unchecked"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  log = dir_.Sub("lone.log");
  p = Start(lone, log);
  ASSERT_TRUE(p);
  ExpectEnds(*p, log, 1, false, "lost offset (every job stopped)");
  EXPECT_TRUE(absl::StrContains(ReadFileOrEmpty(log), "every job stopped on a lost stored offset"))
      << ReadFileOrEmpty(log);
}

}  // namespace
}  // namespace rtdw::testing
