// The recovery commands of `rtdw` against a real broker (rtdw-kafka-mock): `state init`,
// `offsets set` checked against the broker, `offsets delete`, `offsets import-group`, and the
// procedures of docs/OPERATIONS.md — lost state directory (dau, order-wide), backup and restore,
// reprocess — read from its `<!-- drill: NAME -->` code blocks and run exactly as written, with
// ES compared to the generator's truth afterwards.
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "rapidjson/document.h"
#include "tests/harness/kafka_reader.h"
#include "tests/harness/process.h"
#include "tests/harness/services.h"
#include "tests/pipeline/doc_drill.h"
#include "tests/pipeline/pipeline_stack.h"

namespace rtdw::testing {
namespace {

namespace fs = std::filesystem;
constexpr char kTopic[] = "DWD_PAGE_LOG_TOPIC";

CommandResult Rtdw(std::vector<std::string> args) {
  args.insert(args.begin(), BinDir() + "/rtdw");
  return RunCommand(args, std::chrono::seconds(120));
}

rapidjson::Document Json(const CommandResult& r) {
  rapidjson::Document d;
  d.Parse(r.out.c_str());
  EXPECT_FALSE(d.HasParseError()) << "not one JSON document: [" << r.out << "] " << r.err;
  return d;
}

// The stored offsets of `job`: (topic, partition) -> next offset.
std::map<std::pair<std::string, int>, int64_t> StoredOffsets(const std::string& state_dir,
                                                             const std::string& job) {
  std::map<std::pair<std::string, int>, int64_t> out;
  CommandResult r = Rtdw({"--state-dir", state_dir, "--job", job, "--json", "offsets", "show"});
  if (r.exit_code != 0) return out;
  rapidjson::Document d = Json(r);
  if (!d.IsObject() || !d.HasMember("jobs")) return out;
  for (const auto& j : d["jobs"].GetArray()) {
    for (const auto& o : j["offsets"].GetArray()) {
      out[{o["topic"].GetString(), o["partition"].GetInt()}] = o["offset"].GetInt64();
    }
  }
  return out;
}

// Today in Asia/Shanghai (the config's default time zone), yyyy-mm-dd: the drills' data are of
// today, so that ES holds the jobs' indices of the days rtdwd's fresh-store check looks at.
std::string Today() {
  absl::TimeZone tz;
  EXPECT_TRUE(absl::LoadTimeZone("Asia/Shanghai", &tz));
  return absl::FormatCivilTime(absl::ToCivilDay(absl::Now(), tz));
}

class RecoveryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(kafka_.Start().ok());
    std::vector<std::string> values, keys;
    for (int i = 0; i < 200; ++i) {
      values.push_back(absl::StrCat("{\"i\":", i, "}"));
      keys.push_back(absl::StrCat("k", i));
    }
    ASSERT_TRUE(ProduceAll(kafka_.bootstrap(), kTopic, values, keys).ok());
    auto records = ReadTopic(kafka_.bootstrap(), kTopic);
    ASSERT_TRUE(records.ok()) << records.status();
    for (const auto& r : *records) high_[r.partition] = std::max(high_[r.partition], r.offset + 1);
    ASSERT_GT(high_[0], 1) << "partition 0 got records";
  }
  std::string root() const { return tmp_.Sub("state"); }
  CommandResult Run(std::vector<std::string> args) {
    args.insert(args.begin(),
                {"--state-dir", root(), "--brokers", kafka_.bootstrap(), "--job", "dau", "--json"});
    return Rtdw(args);
  }

  KafkaMock kafka_;
  TempDir tmp_;
  std::map<int, int64_t> high_;  // per partition of kTopic: the next offset to be written
};

TEST_F(RecoveryTest, StateInitCreatesAMissingStoreOnly) {
  CommandResult r = Run({"state", "init"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  rapidjson::Document d = Json(r);
  EXPECT_TRUE(d["created"].GetBool());
  EXPECT_EQ(std::string(d["path"].GetString()), root() + "/dau");
  // A store that exists is never replaced.
  ASSERT_EQ(
      Run({"offsets", "set", "--topic", kTopic, "--partition", "0", "--offset", "1"}).exit_code, 0);
  r = Run({"state", "init"});
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_TRUE(absl::StrContains(r.err, "already exists")) << r.err;
  EXPECT_EQ(StoredOffsets(root(), "dau").size(), 1u);
  // --job is required.
  EXPECT_EQ(Rtdw({"--state-dir", root(), "state", "init"}).exit_code, 2);
}

TEST_F(RecoveryTest, StateInitWithAConfigRecordsTheDaemonsFingerprint) {
  std::string config = tmp_.Sub("rtdw.toml");
  std::ofstream(config) << "[kafka]\nbrokers = \"" << kafka_.bootstrap() << "\"\n[state]\ndir = \""
                        << root() << "\"\n[redis]\n[es]\n[jobs]\n";
  CommandResult r = Rtdw({"--config", config, "--job", "dau", "--json", "state", "init"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_EQ(std::string(Json(r)["topic_fingerprint"].GetString()),
            "rtdw-topics/1 job=dau source_topic=DWD_PAGE_LOG_TOPIC time_zone=Asia/Shanghai "
            "index_prefix=gmall_dau_info_ retention_days=2");
  r = Rtdw({"--state-dir", root(), "--job", "dau", "--json", "meta", "show"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  rapidjson::Document d = Json(r);
  const auto& meta = d["jobs"][0]["meta"];
  EXPECT_EQ(std::string(meta["job"].GetString()), "dau");
  EXPECT_EQ(std::string(meta["schema_version"].GetString()), "1");
  EXPECT_EQ(std::string(meta["topic_fingerprint"].GetString()),
            "rtdw-topics/1 job=dau source_topic=DWD_PAGE_LOG_TOPIC time_zone=Asia/Shanghai "
            "index_prefix=gmall_dau_info_ retention_days=2");
  // With a config, a topic the job does not read is refused.
  r = Rtdw({"--config", config, "--job", "dau", "--json", "offsets", "set", "--topic",
            "ODS_BASE_LOG", "--partition", "0", "--offset", "0"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_TRUE(absl::StrContains(r.err, "--topic ODS_BASE_LOG: job dau does not read it")) << r.err;
}

TEST_F(RecoveryTest, OffsetsSetIsCheckedAgainstTheBroker) {
  ASSERT_EQ(Run({"state", "init"}).exit_code, 0);
  // A misspelled topic, partition 17 of a 4-partition topic, an offset past the end: refused
  // (exit 1), each naming its flag and what the broker has; nothing stored.
  CommandResult r =
      Run({"offsets", "set", "--topic", "DWD_PAGE_LOG_TOPC", "--partition", "0", "--offset", "0"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_TRUE(absl::StrContains(r.err, "--topic DWD_PAGE_LOG_TOPC: no such topic")) << r.err;
  EXPECT_TRUE(Json(r).HasMember("error"));
  r = Run({"offsets", "set", "--topic", kTopic, "--partition", "17", "--offset", "0"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_TRUE(absl::StrContains(r.err, "--partition 17: topic DWD_PAGE_LOG_TOPIC has 4 partitions"))
      << r.err;
  std::string past = absl::StrCat(high_[0] + 1);
  r = Run({"offsets", "set", "--topic", kTopic, "--partition", "0", "--offset", past});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_TRUE(absl::StrContains(r.err, absl::StrCat("--offset ", past,
                                                    ": DWD_PAGE_LOG_TOPIC [0] "
                                                    "holds offsets 0 to ",
                                                    high_[0])))
      << r.err;
  EXPECT_TRUE(StoredOffsets(root(), "dau").empty());

  // Within range: stored, with the broker's range in the answer.
  r = Run({"offsets", "set", "--topic", kTopic, "--partition", "0", "--offset", "1"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  rapidjson::Document d = Json(r);
  EXPECT_EQ(d["offset"].GetInt64(), 1);
  EXPECT_TRUE(d["previous"].IsNull());
  EXPECT_EQ(d["broker_range"]["high"].GetInt64(), high_[0]);
  // The end itself is valid (nothing to read yet), and so are --to-latest / --to-earliest.
  r = Run({"offsets", "set", "--topic", kTopic, "--partition", "1", "--to-latest"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(Json(r)["offset"].GetInt64(), high_[1]);
  r = Run({"offsets", "set", "--topic", kTopic, "--partition", "0", "--to-earliest"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  d = Json(r);
  EXPECT_EQ(d["offset"].GetInt64(), 0);
  EXPECT_EQ(d["previous"].GetInt64(), 1);
  // --to-time: rtdw-kafka-mock has no offsets-for-times (it answers "none"), which means "no
  // record that late": the end. A real broker answers the first offset at or after the time.
  r = Run({"offsets", "set", "--topic", kTopic, "--partition", "2", "--to-time",
           "2030-01-01T00:00:00Z"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(Json(r)["offset"].GetInt64(), high_[2]);
  auto stored = StoredOffsets(root(), "dau");
  EXPECT_EQ(stored.size(), 3u);
  EXPECT_EQ((stored[{kTopic, 0}]), 0);
  EXPECT_EQ((stored[{kTopic, 1}]), high_[1]);

  // --to-* without --partition: every partition of the topic, in one write.
  r = Run({"offsets", "set", "--topic", kTopic, "--to-latest"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  d = Json(r);
  ASSERT_EQ(d["offsets"].Size(), 4u) << r.out;
  for (const auto& o : d["offsets"].GetArray()) {
    EXPECT_EQ(o["offset"].GetInt64(), high_[o["partition"].GetInt()]) << r.out;
  }
  stored = StoredOffsets(root(), "dau");
  EXPECT_EQ((stored[{kTopic, 0}]), high_[0]);
  EXPECT_EQ((stored[{kTopic, 3}]), high_[3]);

  // Malformed: exit 2, naming the flag.
  r = Run({"offsets", "set", "--topic", kTopic, "--offset", "1"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_TRUE(absl::StrContains(r.err, "--offset needs --partition")) << r.err;
  r = Run({"offsets", "set", "--topic", kTopic, "--partition", "0", "--to-time", "yesterday"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_TRUE(absl::StrContains(r.err, "--to-time \"yesterday\": expected")) << r.err;
  r = Run(
      {"offsets", "set", "--topic", kTopic, "--partition", "0", "--offset", "1", "--to-latest"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_TRUE(absl::StrContains(r.err, "exactly one of --offset")) << r.err;
  // No broker to check against: usage, unless --unchecked.
  r = Rtdw({"--state-dir", root(), "--job", "dau", "offsets", "set", "--topic", kTopic,
            "--partition", "3", "--offset", "5"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_TRUE(absl::StrContains(r.err, "--brokers")) << r.err;
  r = Rtdw({"--state-dir", root(), "--job", "dau", "offsets", "set", "--topic", kTopic,
            "--partition", "3", "--offset", "5", "--unchecked"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ((StoredOffsets(root(), "dau")[{kTopic, 3}]), 5);
}

TEST_F(RecoveryTest, OffsetsDeleteForgetsStaleEntries) {
  ASSERT_EQ(Run({"state", "init"}).exit_code, 0);
  for (const char* p : {"0", "1", "2"}) {
    ASSERT_EQ(
        Run({"offsets", "set", "--topic", kTopic, "--partition", p, "--offset", "0"}).exit_code, 0);
  }
  ASSERT_EQ(Rtdw({"--state-dir", root(), "--job", "dau", "offsets", "set", "--topic", "OLD",
                  "--partition", "0", "--offset", "7", "--unchecked"})
                .exit_code,
            0);
  CommandResult r = Run({"offsets", "delete", "--topic", kTopic, "--partition", "1"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  rapidjson::Document d = Json(r);
  ASSERT_EQ(d["deleted"].Size(), 1u);
  EXPECT_EQ(d["deleted"][0]["partition"].GetInt(), 1);
  r = Run({"offsets", "delete", "--topic", "OLD"});  // every partition; no broker needed
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(Json(r)["deleted"][0]["offset"].GetInt64(), 7);
  auto stored = StoredOffsets(root(), "dau");
  EXPECT_EQ(stored.size(), 2u);
  EXPECT_EQ(stored.count({kTopic, 1}), 0u);
  // Nothing to delete: exit 1, saying so.
  r = Run({"offsets", "delete", "--topic", kTopic, "--partition", "1"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_TRUE(absl::StrContains(r.err, "no stored offset for DWD_PAGE_LOG_TOPIC [1]")) << r.err;
}

TEST_F(RecoveryTest, ImportGroupWithoutCommitsIsRefused) {
  ASSERT_EQ(Run({"state", "init"}).exit_code, 0);
  CommandResult r = Run({"offsets", "import-group", "--topic", kTopic});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_TRUE(absl::StrContains(r.err, "group rtdw.dau has no committed offsets")) << r.err;
  r = Run({"offsets", "import-group", "--topic", "NO_SUCH_TOPIC"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_TRUE(absl::StrContains(r.err, "--topic NO_SUCH_TOPIC: no such topic")) << r.err;
  // Without a config the topics must be given.
  r = Run({"offsets", "import-group"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_TRUE(StoredOffsets(root(), "dau").empty());
}

// docs/OPERATIONS.md "Disaster recovery", exactly as written. The job is stopped part-way through
// the day (a clean stop: nothing owed) and its state directory removed; `steps` then run the
// documented commands, the daemon runs to the end, and ES must equal the generator's truth.
class RecoveryDrill : public ::testing::Test {
 protected:
  void SetUp() override {
    so_.batch_max_records = 50;
    so_.day = Today();
    stack_ = std::make_unique<PipelineStack>(so_);
    ASSERT_TRUE(stack_->Start().ok());
    ASSERT_TRUE(stack_->GenerateDb().ok());
    ASSERT_TRUE(stack_->GenerateLogs().ok());
  }
  int64_t StoredSum(const std::string& job) {
    int64_t n = 0;
    for (const auto& [tp, o] : StoredOffsets(stack_->state_dir(), job)) n += o;
    return n;
  }
  // Whether ES holds an index of `job` (a document was delivered): order-wide may consume a
  // quarter of its records — order rows read ahead of their details — and write none.
  bool EsHoldsAnIndexOf(const std::string& job) {
    const std::string prefix = job == "dau" ? "gmall_dau_info_" : "gmall_order_wide_";
    CommandResult r = RunCommand(
        {"curl", "-sf", stack_->es().url() + "/_cat/indices/" + prefix + "*?h=index"});
    return r.exit_code == 0 && absl::StrContains(r.out, prefix);
  }
  // Runs `job` until it stored offsets summing to a quarter of `total` records and ES holds an
  // index of it, and stops it. Returns the offsets' sum at the stop.
  int64_t RunPartWay(const std::string& job, int64_t total) {
    // Every bulk answered 150 ms late: the journal backlog then paces the job (back-pressure),
    // so the stop below reliably lands part-way, however fast or loaded the machine is.
    const std::string faults = stack_->es().url() + "/_rtdw/faults";
    EXPECT_EQ(RunCommand({"curl", "-sf", "-XPOST", "-H", "Content-Type: application/json", "-d",
                          R"({"latency_ms":150})", faults})
                  .exit_code,
              0);
    auto daemon = stack_->StartDaemon(job);
    EXPECT_TRUE(daemon.ok());
    if (!daemon.ok()) return -1;
    EXPECT_TRUE(WaitFor([&] { return StoredSum(job) >= total / 4 && EsHoldsAnIndexOf(job); },
                        std::chrono::seconds(120)))
        << stack_->DaemonLog();
    EXPECT_EQ((*daemon)->Stop(std::chrono::seconds(60)), 0) << stack_->DaemonLog();
    EXPECT_EQ(RunCommand({"curl", "-sf", "-XDELETE", faults}).exit_code, 0);
    int64_t consumed = StoredSum(job);
    EXPECT_LT(consumed, total) << job << " finished before the stop: the drill proves nothing";
    return consumed;
  }
  // RunPartWay, then its state directory is removed; a plain start is then refused (ES holds the
  // job's index of today), creating nothing.
  int64_t RunPartWayAndLoseTheDisk(const std::string& job, int64_t total) {
    int64_t consumed = RunPartWay(job, total);
    const std::string store = stack_->state_dir() + "/" + job;
    fs::remove_all(store);
    std::string log;
    EXPECT_EQ(stack_->RunToIdle(job, 1.5, {}, &log), 1) << log;
    EXPECT_TRUE(absl::StrContains(log, "refusing to create an empty store")) << log;
    EXPECT_FALSE(fs::exists(store)) << "the refused start created the store";
    return consumed;
  }
  // Runs the drill `name` of docs/OPERATIONS.md as written: `rtdw` lines with this build's
  // binary, the stack's config for /etc/rtdw/rtdw.toml, `backup_dir` for /backup/rtdw and the
  // stack's day for the example day; `systemctl start rtdwd` runs `job` ("" all) to the end of
  // its input, `systemctl stop rtdwd` checks that no daemon runs (each drill starts stopped).
  // `before_start` runs just before `systemctl start rtdwd` (checks of what the commands did).
  void RunDrill(const std::string& name, const std::string& job, const std::string& backup_dir = "",
                const std::function<void()>& before_start = {}) {
    for (const DrillStep& step :
         ReadDrill(std::string(RTDW_SOURCE_DIR) + "/docs/OPERATIONS.md", name)) {
      std::vector<std::string> argv = step.argv;
      const std::string& line = step.line;
      std::cout << "drill " << name << ": " << line << "\n";
      if (line == "systemctl start rtdwd") {
        if (before_start) before_start();
        ASSERT_EQ(stack_->RunToIdle(job), 0) << line << "\n" << stack_->DaemonLog();
        continue;
      }
      if (line == "systemctl stop rtdwd") continue;  // the drills begin with the daemon stopped
      ASSERT_EQ(argv[0], "rtdw") << "a drill line this test cannot run: " << line;
      argv[0] = BinDir() + "/rtdw";
      for (std::string& a : argv) {
        if (a == "/etc/rtdw/rtdw.toml") a = stack_->config();
        if (a == "/backup/rtdw") a = backup_dir;
        if (a == "2025-11-25") a = so_.day;
      }
      MustRun(argv);
    }
  }
  int64_t RecordCount(const std::string& topic) {
    auto records = ReadTopic(stack_->kafka().bootstrap(), topic);
    EXPECT_TRUE(records.ok()) << records.status();
    return records.ok() ? static_cast<int64_t>(records->size()) : 0;
  }
  CommandResult MustRun(std::vector<std::string> args) {
    if (args.empty() || args[0] != BinDir() + "/rtdw")
      args.insert(args.begin(), BinDir() + "/rtdw");
    CommandResult r = RunCommand(args, std::chrono::seconds(120));
    EXPECT_EQ(r.exit_code, 0) << absl::StrJoin(args, " ") << "\n" << r.out << r.err;
    return r;
  }

  StackOptions so_;
  std::unique_ptr<PipelineStack> stack_;
};

// dau: the imported offsets make it read records again whose mids it saw before the loss; without
// the restored de-dup state those would overwrite their documents (492 of 1194 wrong when the
// restore step is left out).
TEST_F(RecoveryDrill, LostDauStateDirectoryAsDocumented) {
  for (const char* job : {"log-split", "db-split", "order-wide"}) {
    ASSERT_EQ(stack_->RunToIdle(job), 0) << stack_->DaemonLog();
  }
  const int64_t total = RecordCount(kTopic);
  const int64_t consumed = RunPartWayAndLoseTheDisk("dau", total);
  ASSERT_FALSE(HasFailure());

  RunDrill("lost-dau", "dau");
  std::cout << "records " << total << ", consumed before the stop " << consumed << "\n";
  ExpectEsExact(*stack_);
  ExpectVerifyOk(*stack_);
}

// order-wide: join rows waiting for a partner are gone with the disk; the documented rewind
// (--to-earliest of both source topics, after the import) lets them meet again (without it, 90
// of 1846 documents are missing).
TEST_F(RecoveryDrill, LostOrderWideStateDirectoryAsDocumented) {
  for (const char* job : {"log-split", "db-split", "dau"}) {
    ASSERT_EQ(stack_->RunToIdle(job), 0) << stack_->DaemonLog();
  }
  const int64_t total = RecordCount("DWD_ORDER_INFO_I") + RecordCount("DWD_ORDER_DETAIL_I");
  RunPartWayAndLoseTheDisk("order-wide", total);
  ASSERT_FALSE(HasFailure());

  RunDrill("lost-order-wide", "order-wide");
  ExpectEsExact(*stack_);
}

// Group mode (kafka.group): a member of dau and order-wide dies (SIGKILL) part-way through the
// day while ES refuses every item, so that it owes journal entries, and its state directory is
// lost. The documented procedure is a plain start: the group's hand-over offsets are never past
// an unacknowledged document or a waiting join row, and the new member rebuilds every partition
// (de-dup from ES, the join by replay). ES must equal the truth. (Were the group's offsets
// committed past the owed entries, their documents would be missing; without the de-dup restore,
// re-read mids would overwrite their documents with later visits.)
TEST_F(RecoveryDrill, LostGroupMemberStateDirectoryAsDocumented) {
  for (const char* job : {"log-split", "db-split"}) {
    ASSERT_EQ(stack_->RunToIdle(job), 0) << stack_->DaemonLog();
  }
  auto config = stack_->WriteInstanceConfig(
      "m", {"dau", "order-wide"}, "group = \"shop\"",
      {{"session.timeout.ms", "6000"}, {"heartbeat.interval.ms", "500"}});
  ASSERT_TRUE(config.ok()) << config.status();
  const std::string state = stack_->dir().Sub("state-m");
  const std::string faults = stack_->es().url() + "/_rtdw/faults";
  auto set_faults = [&](const std::string& body) {
    return RunCommand({"curl", "-sf", "-XPOST", "-H", "Content-Type: application/json", "-d", body,
                       faults})
        .exit_code;
  };
  // Paced by slow bulk answers (the journal's back-pressure), so that the crash lands mid-day.
  ASSERT_EQ(set_faults(R"({"latency_ms":150})"), 0);
  const int64_t total = RecordCount(kTopic);
  auto consumed = [&] {
    int64_t n = 0;
    for (const auto& [tp, o] : StoredOffsets(state, "dau")) n += o;
    return n;
  };
  {
    auto member = stack_->StartInstance(*config, "m1.log");
    ASSERT_TRUE(member.ok()) << member.status();
    ASSERT_TRUE(WaitFor([&] { return consumed() >= total / 4; }, std::chrono::seconds(120)))
        << stack_->LogTail("m1.log");
    ASSERT_EQ(set_faults(R"({"latency_ms":0,"bulk_item_429_fraction":1.0})"), 0);
    std::this_thread::sleep_for(std::chrono::milliseconds(1500));
    ASSERT_TRUE((*member)->Running()) << stack_->LogTail("m1.log");
    (*member)->Kill9();
  }
  ASSERT_EQ(RunCommand({"curl", "-sf", "-XDELETE", faults}).exit_code, 0);
  CommandResult shown = MustRun({"--state-dir", state, "--job", "dau", "--json", "state", "show"});
  const int64_t owed = Json(shown)["jobs"][0]["journal_backlog"].GetInt64();
  std::cout << "records " << total << ", consumed before the crash " << consumed()
            << ", dau journal entries owed " << owed << "\n";
  EXPECT_GT(owed, 0) << "nothing owed at the crash: the drill proves less" << shown.out;
  EXPECT_LT(consumed(), total) << "dau finished before the crash: the drill proves nothing";
  fs::remove_all(state);

  for (const DrillStep& step :
       ReadDrill(std::string(RTDW_SOURCE_DIR) + "/docs/OPERATIONS.md", "lost-group-member")) {
    std::cout << "drill lost-group-member: " << step.line << "\n";
    ASSERT_EQ(step.line, "systemctl start rtdwd") << "a drill line this test cannot run";
    auto member = stack_->StartInstance(*config, "m2.log");
    ASSERT_TRUE(member.ok()) << member.status();
    absl::StatusOr<Comparison> dau, ow;
    WaitFor(
        [&] {
          dau = stack_->CompareDau();
          ow = stack_->CompareOrderWide();
          return dau.ok() && ow.ok() && dau->exact() && ow->exact();
        },
        std::chrono::seconds(180));
    EXPECT_EQ((*member)->Stop(std::chrono::seconds(30)), 0) << stack_->LogTail("m2.log");
    EXPECT_TRUE(absl::StrContains(stack_->LogTail("m2.log", 1 << 22), "rebuilt"))
        << stack_->LogTail("m2.log");
  }
  ExpectEsExact(*stack_);
  CommandResult v =
      RunCommand({BinDir() + "/rtdw", "--config", *config, "verify", "--day", so_.day},
                 std::chrono::seconds(120));
  EXPECT_EQ(v.exit_code, 0) << v.out << v.err;
}

// Group mode: the group's committed offset of DWD_PAGE_LOG_TOPIC/0 is past the end (as after a
// re-created, shorter topic). The dau member stops the job and, its only job, exits 1 with the
// stored offset, the broker's range and the command; a start as such fails again (the lost
// offset is the group's, not the store's). The documented drill — `offsets set` with the
// group-mode config, which commits to the group — then lets the member read the whole day: ES
// equals the truth. (Before `offsets set` committed to the group, the start after the drill
// exited 1 again.)
TEST_F(RecoveryDrill, LostGroupOffsetAsDocumented) {
  for (const char* job : {"log-split", "db-split"}) {
    ASSERT_EQ(stack_->RunToIdle(job), 0) << stack_->DaemonLog();
  }
  auto config = stack_->WriteInstanceConfig(
      "g", {"dau"}, "group = \"shop\"",
      {{"session.timeout.ms", "6000"}, {"heartbeat.interval.ms", "500"}});
  ASSERT_TRUE(config.ok()) << config.status();
  auto records = ReadTopic(stack_->kafka().bootstrap(), kTopic);
  ASSERT_TRUE(records.ok()) << records.status();
  int64_t high0 = 0;
  for (const auto& r : *records) {
    if (r.partition == 0) high0 = std::max(high0, r.offset + 1);
  }
  ASSERT_GT(high0, 0);
  const int64_t lost = high0 + 1000;
  ASSERT_TRUE(
      CommitGroupOffsets(stack_->kafka().bootstrap(), "shop.dau", kTopic, {{0, lost}}).ok());

  const std::string message = absl::StrCat(
      "`rtdw --config ", *config,
      " offsets set --job dau --topic DWD_PAGE_LOG_TOPIC --partition 0 --to-earliest`");
  for (const char* log : {"g1.log", "g2.log"}) {
    auto member = stack_->StartInstance(*config, log);
    ASSERT_TRUE(member.ok()) << member.status();
    std::optional<int> code = (*member)->Wait(std::chrono::seconds(120));
    ASSERT_TRUE(code.has_value()) << "still running: " << stack_->LogTail(log);
    EXPECT_EQ(*code, 1) << stack_->LogTail(log);
    const std::string text = stack_->LogTail(log, 1 << 20);
    EXPECT_TRUE(absl::StrContains(
        text, absl::StrCat("the stored offset ", lost, " is no longer on the broker")))
        << text;
    EXPECT_TRUE(absl::StrContains(text, message)) << text;
    EXPECT_TRUE(absl::StrContains(text, "group mode: it commits the offset to the group shop.dau"))
        << text;
  }

  for (const DrillStep& step :
       ReadDrill(std::string(RTDW_SOURCE_DIR) + "/docs/OPERATIONS.md", "lost-offset-group")) {
    std::cout << "drill lost-offset-group: " << step.line << "\n";
    if (step.line == "systemctl stop rtdwd") continue;  // the member has exited
    if (step.line == "systemctl start rtdwd") {
      auto member = stack_->StartInstance(*config, "g3.log");
      ASSERT_TRUE(member.ok()) << member.status();
      absl::StatusOr<Comparison> dau;
      WaitFor(
          [&] {
            dau = stack_->CompareDau();
            return !(*member)->Running() || (dau.ok() && dau->exact());
          },
          std::chrono::seconds(180));
      ASSERT_TRUE((*member)->Running()) << stack_->LogTail("g3.log");
      EXPECT_EQ((*member)->Stop(std::chrono::seconds(30)), 0) << stack_->LogTail("g3.log");
      continue;
    }
    std::vector<std::string> argv = step.argv;
    ASSERT_EQ(argv[0], "rtdw") << "a drill line this test cannot run: " << step.line;
    argv[0] = BinDir() + "/rtdw";
    for (std::string& a : argv) {
      if (a == "/etc/rtdw/rtdw.toml") a = *config;
    }
    CommandResult r = MustRun(argv);
    std::cout << r.out;
    EXPECT_TRUE(absl::StrContains(r.out, "committed to the group shop.dau")) << r.out;
  }
  auto dau = stack_->CompareDau();
  ASSERT_TRUE(dau.ok()) << dau.status();
  EXPECT_TRUE(dau->exact()) << dau->Summary();
  std::cout << "dau " << dau->Summary() << "\n";
  CommandResult v =
      RunCommand({BinDir() + "/rtdw", "--config", *config, "verify", "--day", so_.day},
                 std::chrono::seconds(120));
  EXPECT_EQ(v.exit_code, 0) << v.out << v.err;
}

// Backup part-way through the day, the rest of the day, then the restore: the restored store
// resumes from its backed-up offsets and ES converges to the truth.
TEST_F(RecoveryDrill, BackupAndRestoreAsDocumented) {
  for (const char* job : {"log-split", "db-split", "order-wide"}) {
    ASSERT_EQ(stack_->RunToIdle(job), 0) << stack_->DaemonLog();
  }
  const int64_t total = RecordCount(kTopic);
  const int64_t at_backup = RunPartWay("dau", total);
  ASSERT_FALSE(HasFailure());
  const std::string backup = stack_->dir().Sub("backup");
  RunDrill("backup-create", "dau", backup);  // ... systemctl start: dau runs to the end
  ASSERT_FALSE(HasFailure());
  EXPECT_EQ(StoredSum("dau"), total);
  // The restore brings back the store of the backup: its offsets, not the later ones.
  RunDrill("backup-restore", "dau", backup, [&] { EXPECT_EQ(StoredSum("dau"), at_backup); });
  ExpectEsExact(*stack_);
  ExpectVerifyOk(*stack_);
}

// After a full day, the documented rewind reads everything again: order-wide writes its documents
// a second time (a newer version), dau rewrites nothing, and ES still equals the truth.
TEST_F(RecoveryDrill, ReprocessAsDocumented) {
  // The dimension rows first (db-split), as in production's steady state.
  for (const char* job : {"log-split", "db-split", "dau", "order-wide"}) {
    ASSERT_EQ(stack_->RunToIdle(job), 0) << stack_->DaemonLog();
  }
  auto docs = stack_->EsDocuments("gmall_order_wide_*", /*by_index=*/true);
  ASSERT_TRUE(docs.ok() && !docs->empty()) << docs.status();
  const std::string one = docs->begin()->first;  // "<index>/<_id>"
  const std::string doc_url =
      absl::StrCat(stack_->es().url(), "/", absl::StrReplaceAll(one, {{"/", "/_doc/"}}));
  auto version = [&] {
    CommandResult r = RunCommand({"curl", "-sf", doc_url});
    rapidjson::Document d;
    d.Parse(r.out.c_str());
    return !d.HasParseError() && d.IsObject() && d.HasMember("_version") ? d["_version"].GetInt64()
                                                                         : -1;
  };
  const int64_t before = version();
  ASSERT_GT(before, 0) << doc_url;
  RunDrill("reprocess", "", "", [&] {
    EXPECT_EQ(StoredSum("order-wide"), 0) << "not rewound";  // the mock keeps every record
    EXPECT_EQ(StoredSum("dau"), 0) << "not rewound";
  });
  EXPECT_GT(version(), before) << one << " was not written again";
  EXPECT_EQ(StoredSum("dau"), RecordCount(kTopic));
  ExpectEsExact(*stack_);
  ExpectVerifyOk(*stack_);
}

}  // namespace
}  // namespace rtdw::testing
