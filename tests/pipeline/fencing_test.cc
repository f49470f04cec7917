// Fencing of the ES jobs in group mode and mode switches (docs/OPERATIONS.md "Fencing"):
//
// - Zombie: member A owes a DAU document for each mid (ES refuses every item), is SIGSTOPped past
//   the session timeout and evicted; member B takes the partition over, a smaller-ts first page
//   of every mid arrives, ES recovers and B delivers the winners; A is SIGCONTed. A must fence
//   its entry (never send it) and ES must keep B's documents — compared, field by field, with
//   the winners computed here from the records the test wrote.
// - Mode switches: a lone daemon killed with owed entries (its lag-monitoring commits are ahead
//   of them) and restarted in group mode delivers them first; a group member killed with owed
//   entries and restarted lone delivers them too: ES == rtdw-gen's truth both ways.
#include <signal.h>

#include <fstream>
#include <regex>
#include <thread>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "rapidjson/document.h"
#include "tests/harness/kafka_reader.h"
#include "tests/pipeline/pipeline_stack.h"

namespace rtdw::testing {
namespace {

size_t Count(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

class Fixture {
 public:
  explicit Fixture(PipelineStack* stack) : stack_(stack) {}
  // Waits (generously: the machine is loaded) until `log` holds `what` at least `n` times.
  bool WaitLog(const std::string& log, const std::string& what, size_t n = 1,
               int seconds = 120) const {
    for (int i = 0; i < seconds * 10; ++i) {
      if (Count(stack_->LogTail(log, 1 << 22), what) >= n) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return false;
  }
  int SetFaults(const std::string& body) const {
    return RunCommand({"curl", "-s", "-X", "POST", "-H", "Content-Type: application/json", "-d",
                       body, stack_->es().url() + "/_rtdw/faults"})
        .exit_code;
  }

 private:
  PipelineStack* stack_;
};

constexpr int64_t kNoon = 1795492800000;  // 2026-11-24 12:00 Asia/Shanghai (the jobs' zone)
constexpr int kMids = 10;

std::string Page(int mid, int64_t ts) {
  return absl::StrCat("{\"mid\":\"mid-", mid, "\",\"user_id\":\"", 100 + mid,
                      "\",\"province_id\":\"1\",\"channel\":\"web\",\"page_id\":\"home\","
                      "\"during_time\":1000,\"ts\":",
                      ts, "}");
}

// What ES must hold: per mid, the winner (the smallest ts) among the pages written, with its
// input position. Compared on the fields the winner decides; every other document is extra.
struct Winner {
  int64_t ts;
  int64_t offset;
};

std::string CompareWinners(PipelineStack& stack, const std::map<std::string, Winner>& expected) {
  auto docs = stack.EsDocuments("gmall_dau_info_*");
  if (!docs.ok()) return std::string(docs.status().message());
  std::string diff;
  if (docs->size() != expected.size()) {
    absl::StrAppend(&diff, docs->size(), " documents, expected ", expected.size(), "; ");
  }
  for (const auto& [mid, w] : expected) {
    auto it = docs->find(mid);
    if (it == docs->end()) {
      absl::StrAppend(&diff, mid, " missing; ");
      continue;
    }
    rapidjson::Document d;
    d.Parse(it->second.c_str());
    const std::string src = absl::StrCat("DWD_PAGE_LOG_TOPIC/0/", w.offset);
    if (d.HasParseError() || !d.HasMember("ts") || !d["ts"].IsInt64() ||
        d["ts"].GetInt64() != w.ts || !d.HasMember("rtdw_src") || !d["rtdw_src"].IsString() ||
        src != d["rtdw_src"].GetString() || !d.HasMember("mid") || mid != d["mid"].GetString()) {
      absl::StrAppend(&diff, mid, " is ", it->second, " (expected ts ", w.ts, " from ", src, "); ");
    }
  }
  return diff;
}

TEST(FencingTest, StoppedMemberNeverOverwritesTheNewOwnersWinner) {
  StackOptions o;
  o.partitions = 1;  // one partition: its owner is A, then B
  o.batch_max_records = 100;
  PipelineStack stack(o);
  ASSERT_TRUE(stack.Start().ok());
  Fixture f(&stack);
  ASSERT_EQ(f.SetFaults("{\"bulk_item_429_fraction\":1.0}"), 0);  // ES refuses every item

  // A's input: one page per mid, late in the day (the worse winner).
  std::map<std::string, Winner> expected;
  std::vector<std::string> values, keys;
  for (int m = 0; m < kMids; ++m) {
    values.push_back(Page(m, kNoon + 3600000 + m));
    keys.push_back(absl::StrCat("mid-", m));
    expected[absl::StrCat("mid-", m)] = Winner{kNoon + 3600000 + m, m};
  }
  ASSERT_TRUE(ProduceAll(stack.kafka().bootstrap(), "DWD_PAGE_LOG_TOPIC", values, keys).ok());

  const std::map<std::string, std::string> props = {{"session.timeout.ms", "6000"},
                                                    {"heartbeat.interval.ms", "500"}};
  const std::string kafka_lines = "group = \"fence\"\nrevoke_timeout = 2";
  auto config_a = stack.WriteInstanceConfig("a", {"dau"}, kafka_lines, props);
  auto config_b = stack.WriteInstanceConfig("b", {"dau"}, kafka_lines, props);
  ASSERT_TRUE(config_a.ok() && config_b.ok());
  auto a = stack.StartInstance(*config_a, "a.log");
  ASSERT_TRUE(a.ok());
  ASSERT_TRUE(f.WaitLog("a.log", "dau: group gives 1 partitions")) << stack.LogTail("a.log");
  // A committed its entry and tries to deliver it: ES answers 429 to every item.
  ASSERT_TRUE(f.WaitLog("a.log", "bulk: re-sending")) << stack.LogTail("a.log");
  (*a)->Signal(SIGSTOP);

  // B joins; the group waits for A's heartbeats until its session times out, then gives B the
  // partition. B rebuilds de-dup from ES (nothing there) and processes A's records again.
  auto b = stack.StartInstance(*config_b, "b.log");
  ASSERT_TRUE(b.ok());
  ASSERT_TRUE(f.WaitLog("b.log", "dau: group gives 1 partitions", 1, 180))
      << stack.LogTail("b.log");
  // The first page of every mid arrives late, with a smaller ts: the better winner.
  values.clear();
  for (int m = 0; m < kMids; ++m) {
    values.push_back(Page(m, kNoon + m));
    expected[absl::StrCat("mid-", m)] = Winner{kNoon + m, kMids + m};
  }
  ASSERT_TRUE(ProduceAll(stack.kafka().bootstrap(), "DWD_PAGE_LOG_TOPIC", values, keys).ok());
  ASSERT_TRUE(f.WaitLog("b.log", "bulk: re-sending")) << stack.LogTail("b.log");

  // ES recovers; B delivers: ES holds B's winners.
  ASSERT_EQ(f.SetFaults("{\"bulk_item_429_fraction\":0.0}"), 0);
  std::string diff = "not compared";
  for (int i = 0; i < 240 && !diff.empty(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    diff = CompareWinners(stack, expected);
  }
  ASSERT_EQ(diff, "") << stack.LogTail("b.log");

  // A wakes up owing its entry, its place in the group long gone. It learns so from the group
  // (its partition is taken away) and rejoins; its delivery thread has every chance to send.
  (*a)->Signal(SIGCONT);
  ASSERT_TRUE(f.WaitLog("a.log", "dau: group takes away", 1, 180)) << stack.LogTail("a.log");
  ASSERT_TRUE(f.WaitLog("a.log", "dau: group gives", 2, 180)) << stack.LogTail("a.log");
  // Give anything A still had in flight time to land (were it sent, ES would show it below).
  std::this_thread::sleep_for(std::chrono::seconds(2));

  const std::string log_a = stack.LogTail("a.log", 1 << 22);
  // A's owed entry (10 documents) is fenced, never sent. Woken, A may first poll B's page too
  // before it learns that its assignment is gone (a clean-clone run saw "fenced 2 ... (20
  // documents)"): that entry is fenced with it. Versions alone (no fencing) log no such line.
  static const std::regex kFenced(R"(dau: fenced (\d+) owed journal entries \((\d+) documents\))");
  std::smatch fenced;
  ASSERT_TRUE(std::regex_search(log_a, fenced, kFenced)) << log_a;
  const int fenced_entries = std::stoi(fenced[1].str());
  EXPECT_TRUE(fenced_entries == 1 || fenced_entries == 2) << fenced[0];
  EXPECT_EQ(std::stoi(fenced[2].str()), 10 * fenced_entries) << fenced[0];
  EXPECT_EQ(CompareWinners(stack, expected), "") << log_a;
  ASSERT_TRUE((*a)->Running()) << log_a;
  ASSERT_TRUE((*b)->Running()) << stack.LogTail("b.log");
  EXPECT_EQ((*a)->Stop(std::chrono::seconds(30)), 0) << stack.LogTail("a.log");
  EXPECT_EQ((*b)->Stop(std::chrono::seconds(30)), 0) << stack.LogTail("b.log");
  EXPECT_EQ(CompareWinners(stack, expected), "");
}

// The rebalance never waits on ES: B joins while ES refuses everything A owes. A's revoke waits
// kafka.revoke_timeout (2 s), fences its entry and lets the group move on; once ES recovers, the
// partition's owner (whichever member the group chose) delivers the winners.
TEST(FencingTest, RevokeDuringAnOutageIsBoundedAndFences) {
  StackOptions o;
  o.partitions = 1;
  o.batch_max_records = 100;
  PipelineStack stack(o);
  ASSERT_TRUE(stack.Start().ok());
  Fixture f(&stack);
  ASSERT_EQ(f.SetFaults("{\"bulk_item_429_fraction\":1.0}"), 0);
  std::map<std::string, Winner> expected;
  std::vector<std::string> values, keys;
  for (int m = 0; m < kMids; ++m) {
    values.push_back(Page(m, kNoon + 1000 * m));
    keys.push_back(absl::StrCat("mid-", m));
    expected[absl::StrCat("mid-", m)] = Winner{kNoon + 1000 * m, m};
  }
  ASSERT_TRUE(ProduceAll(stack.kafka().bootstrap(), "DWD_PAGE_LOG_TOPIC", values, keys).ok());
  const std::map<std::string, std::string> props = {{"session.timeout.ms", "6000"},
                                                    {"heartbeat.interval.ms", "500"}};
  const std::string kafka_lines = "group = \"fence\"\nrevoke_timeout = 2";
  auto config_a = stack.WriteInstanceConfig("a", {"dau"}, kafka_lines, props);
  auto config_b = stack.WriteInstanceConfig("b", {"dau"}, kafka_lines, props);
  ASSERT_TRUE(config_a.ok() && config_b.ok());
  auto a = stack.StartInstance(*config_a, "a.log");
  ASSERT_TRUE(a.ok());
  ASSERT_TRUE(f.WaitLog("a.log", "dau: group gives 1 partitions")) << stack.LogTail("a.log");
  ASSERT_TRUE(f.WaitLog("a.log", "bulk: re-sending")) << stack.LogTail("a.log");
  auto b = stack.StartInstance(*config_b, "b.log");
  ASSERT_TRUE(b.ok());
  // ES still refuses: the rebalance completes all the same.
  ASSERT_TRUE(f.WaitLog("a.log",
                        "dau: fenced 1 owed journal entries (10 documents) at the revoke "
                        "(kafka.revoke_timeout 2 s passed)"))
      << stack.LogTail("a.log");
  ASSERT_TRUE(f.WaitLog("b.log", "dau: group gives")) << stack.LogTail("b.log");
  ASSERT_TRUE(f.WaitLog("a.log", "dau: group gives", 2)) << stack.LogTail("a.log");
  ASSERT_EQ(f.SetFaults("{\"bulk_item_429_fraction\":0.0}"), 0);
  std::string diff = "not compared";
  for (int i = 0; i < 240 && !diff.empty(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    diff = CompareWinners(stack, expected);
  }
  EXPECT_EQ(diff, "") << stack.LogTail("a.log") << stack.LogTail("b.log");
  EXPECT_EQ((*a)->Stop(std::chrono::seconds(30)), 0) << stack.LogTail("a.log");
  EXPECT_EQ((*b)->Stop(std::chrono::seconds(30)), 0) << stack.LogTail("b.log");
}

// Lone -> group: a lone daemon commits its lag-monitoring offsets (group "rtdw.dau") before ES
// acknowledges; killed owing entries and restarted with kafka.group = "rtdw" (the same group
// id), it must deliver them before joining — the group's offset is past their records.
TEST(FencingTest, LoneToGroupSwitchDeliversWhatIsOwedFirst) {
  StackOptions o;
  o.partitions = 2;
  o.batch_max_records = 200;
  o.events = 8000;
  o.mids = o.events / 10;
  o.users = o.events / 50;
  o.orders = 100;
  PipelineStack stack(o);
  ASSERT_TRUE(stack.Start().ok());
  Fixture f(&stack);
  ASSERT_TRUE(stack.GenerateDb().ok());
  ASSERT_EQ(stack.RunToIdle("db-split"), 0) << stack.DaemonLog();
  ASSERT_TRUE(stack.GenerateLogs().ok());
  ASSERT_EQ(stack.RunToIdle("log-split"), 0) << stack.DaemonLog();

  ASSERT_EQ(f.SetFaults("{\"bulk_item_429_fraction\":1.0}"), 0);
  const std::string progress = "[log]\nprogress_interval = 1\n";
  auto lone = stack.WriteInstanceConfig("m", {"dau"}, "", {}, progress);
  ASSERT_TRUE(lone.ok());
  auto first = stack.StartInstance(*lone, "lone.log");
  ASSERT_TRUE(first.ok());
  // The backlog fills up (4 entries owed, polling paused): their batches' offsets were committed
  // to Kafka right after each batch.
  ASSERT_TRUE(f.WaitLog("lone.log", "journal backlog 4", 2)) << stack.LogTail("lone.log");
  (*first)->Kill9();

  ASSERT_EQ(f.SetFaults("{\"bulk_item_429_fraction\":0.0}"), 0);
  auto group =
      stack.WriteInstanceConfig("m", {"dau"}, "group = \"rtdw\"", {{"session.timeout.ms", "6000"}});
  ASSERT_TRUE(group.ok());
  CommandResult second =
      RunCommand({BinDir() + "/rtdwd", "--config", *group, "--exit-when-idle", "1.5"},
                 std::chrono::seconds(240));
  { std::ofstream(stack.dir().Sub("group.log")) << second.err; }
  EXPECT_EQ(second.exit_code, 0) << second.err;
  EXPECT_NE(second.err.find("switching to group mode: delivering 4 journal entries"),
            std::string::npos)
      << second.err;
  auto dau = stack.CompareDau();
  ASSERT_TRUE(dau.ok()) << dau.status();
  EXPECT_TRUE(dau->exact()) << dau->Summary() << "\n" << second.err;
}

// Group -> lone: a group member killed owing entries, restarted without kafka.group, delivers them
// in its start-up replay (its store's offsets are past their records; dropping them would lose
// documents).
TEST(FencingTest, GroupToLoneSwitchDeliversWhatIsOwedFirst) {
  StackOptions o;
  o.partitions = 2;
  o.batch_max_records = 200;
  o.events = 8000;
  o.mids = o.events / 10;
  o.users = o.events / 50;
  o.orders = 100;
  PipelineStack stack(o);
  ASSERT_TRUE(stack.Start().ok());
  Fixture f(&stack);
  ASSERT_TRUE(stack.GenerateDb().ok());
  ASSERT_EQ(stack.RunToIdle("db-split"), 0) << stack.DaemonLog();
  ASSERT_TRUE(stack.GenerateLogs().ok());
  ASSERT_EQ(stack.RunToIdle("log-split"), 0) << stack.DaemonLog();

  ASSERT_EQ(f.SetFaults("{\"bulk_item_429_fraction\":1.0}"), 0);
  const std::string progress = "[log]\nprogress_interval = 1\n";
  auto group = stack.WriteInstanceConfig("m", {"dau"}, "group = \"solo\"",
                                         {{"session.timeout.ms", "6000"}}, progress);
  ASSERT_TRUE(group.ok());
  auto first = stack.StartInstance(*group, "group.log");
  ASSERT_TRUE(first.ok());
  ASSERT_TRUE(f.WaitLog("group.log", "journal backlog 4", 2)) << stack.LogTail("group.log");
  (*first)->Kill9();

  ASSERT_EQ(f.SetFaults("{\"bulk_item_429_fraction\":0.0}"), 0);
  auto lone = stack.WriteInstanceConfig("m", {"dau"}, "", {});
  ASSERT_TRUE(lone.ok());
  CommandResult second =
      RunCommand({BinDir() + "/rtdwd", "--config", *lone, "--exit-when-idle", "1.5"},
                 std::chrono::seconds(240));
  { std::ofstream(stack.dir().Sub("lone.log")) << second.err; }
  EXPECT_EQ(second.exit_code, 0) << second.err;
  EXPECT_NE(second.err.find("switching to lone mode: delivering 4 journal entries"),
            std::string::npos)
      << second.err;
  auto dau = stack.CompareDau();
  ASSERT_TRUE(dau.ok()) << dau.status();
  EXPECT_TRUE(dau->exact()) << dau->Summary() << "\n" << second.err;
}

}  // namespace
}  // namespace rtdw::testing
