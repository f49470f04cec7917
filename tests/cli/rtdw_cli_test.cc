// The rtdw CLI, run as a real binary on stores made with StateStore in a temp dir: exit codes,
// the --json documents (parsed and checked), empty vs missing state dirs, refusal while a
// daemon (here: rtdw-state-test-child hold) holds a store, and that reading creates nothing.
#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/es_version.h"
#include "core/journal_entry.h"
#include "core/journal_sink.h"
#include "gtest/gtest.h"
#include "rapidjson/document.h"
#include "storage/state_store.h"
#include "tests/harness/process.h"
#include "tests/harness/services.h"

namespace rtdw {
namespace {

namespace fs = std::filesystem;
using testing::ChildProcess;
using testing::CommandResult;
using testing::ProcessOptions;
using testing::ReadFileOrEmpty;
using testing::RunCommand;
using testing::TempDir;
using testing::WaitFor;

constexpr DayNumber kDay = 20241125;
constexpr char kIndex[] = "gmall_dau_info_2024-11-25";

// Every file and directory under `dir`, with sizes (what "reading creates nothing" compares).
std::set<std::string> Snapshot(const std::string& dir) {
  std::set<std::string> out;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(dir, ec);
       it != fs::recursive_directory_iterator(); it.increment(ec)) {
    std::string entry = it->path().string();
    if (it->is_regular_file()) entry += absl::StrCat(" ", it->file_size());
    out.insert(entry);
  }
  return out;
}

std::string DauDoc(const std::string& mid, int64_t ts, int partition, int64_t offset) {
  return absl::StrCat("{\"mid\":\"", mid, "\",\"dt\":\"2024-11-25\",\"hr\":\"10\",\"ts\":", ts,
                      ",\"rtdw_src\":\"DWD_PAGE_LOG_TOPIC/", partition, "/", offset, "\"}");
}

class RtdwCliTest : public ::testing::Test {
 protected:
  std::string root() const { return tmp_.Sub("state"); }

  CommandResult Run(std::vector<std::string> args, const std::vector<std::string>& env = {}) {
    args.insert(args.begin(), RTDW_CLI);
    return RunCommand(args, std::chrono::seconds(120), env);
  }
  // Runs with --json and the state dir; checks stdout is exactly one JSON document.
  CommandResult RunJson(std::vector<std::string> args, rapidjson::Document* doc) {
    args.insert(args.begin(), {"--state-dir", root(), "--json"});
    CommandResult r = Run(args);
    doc->Parse(r.out.c_str());
    EXPECT_FALSE(doc->HasParseError()) << "stdout is not one JSON document: [" << r.out << "]";
    EXPECT_TRUE(doc->IsObject()) << r.out;
    return r;
  }

  std::unique_ptr<StateStore> Open(const std::string& job = "dau") {
    StateStoreOptions o;
    o.root = root();
    o.job = job;
    o.block_cache_mb = 16;
    o.topic_fingerprint = "fp-" + job;
    auto s = StateStore::Open(o);
    EXPECT_TRUE(s.ok()) << s.status();
    return s.ok() ? std::move(s).value() : nullptr;
  }

  // A dau store: offsets, de-dup entries, two journal entries, two dead letters (an ES item and
  // a late record). Closed on return.
  void Populate() {
    auto store = Open("dau");
    auto b = store->NewBatch();
    ASSERT_TRUE(b.SetOffset("DWD_PAGE_LOG_TOPIC", 0, 100).ok());
    ASSERT_TRUE(b.SetOffset("DWD_PAGE_LOG_TOPIC", 1, 250).ok());
    ASSERT_TRUE(b.PutDedup(kDay, 0, "mid_1", {1732500000000, 10}).ok());
    ASSERT_TRUE(b.PutDedup(kDay, 1, "mid_2", {1732500001000, 20}).ok());
    JournalEntry e;
    e.target = kIndex;
    AppendJournalIndexAction(&e.body, kIndex, "mid_1", DauDoc("mid_1", 1732500000000, 0, 10));
    e.doc_count = 1;
    b.SetJournal(e);
    RejectedItem item;
    item.index = kIndex;
    item.id = "mid_9";
    item.status = 400;
    item.error_type = "mapper_parsing_exception";
    item.error_reason = "bad";
    item.document = DauDoc("mid_9", 1732500009000, 2, 90);
    b.AddDeadLetter(EsRejectedDeadLetter("dau", item, 1));
    b.AddDeadLetter("{\"job\":\"dau\",\"reason\":\"late\",\"detail\":\"old\",\"raw\":\"x\"}");
    ASSERT_TRUE(store->Commit(std::move(b)).ok());
    auto b2 = store->NewBatch();
    JournalEntry e2;
    e2.target = kIndex;
    AppendJournalIndexAction(&e2.body, kIndex, "mid_2", DauDoc("mid_2", 1732500001000, 1, 20));
    e2.doc_count = 1;
    b2.SetJournal(e2);
    ASSERT_TRUE(store->Commit(std::move(b2)).ok());
    ASSERT_TRUE(store->Close().ok());
  }

  // Starts a process holding the dau store's lock (as rtdwd would).
  std::unique_ptr<ChildProcess> Hold(const std::string& job = "dau") {
    std::string out = tmp_.Sub("hold-" + job);
    ProcessOptions po;
    po.stdout_path = out;
    auto c = ChildProcess::Start({RTDW_STATE_CHILD, "hold", root(), job}, po);
    EXPECT_TRUE(c.ok());
    EXPECT_TRUE(
        WaitFor([&] { return ReadFileOrEmpty(out) == "ready\n"; }, std::chrono::seconds(30)));
    return std::move(c).value();
  }

  TempDir tmp_;
};

// ---------------------------------------------------------------------------------------------
// Help and usage

TEST_F(RtdwCliTest, HelpExitsZero) {
  auto r = Run({"--help"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(absl::StrContains(r.out, "state")) << r.out;
  r = Run({"offsets", "set", "--help"});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_TRUE(absl::StrContains(r.out, "--partition")) << r.out;
}

TEST_F(RtdwCliTest, UsageErrorsExitTwo) {
  std::vector<std::vector<std::string>> cases = {
      {},
      {"nonsense"},
      {"state"},
      {"state", "show", "--bogus"},
      {"--state-dir", root(), "offsets", "set", "--topic", "T"},
      {"--state-dir", root(), "offsets", "set", "--topic", "T", "--partition", "-1", "--offset",
       "1"},
      {"--state-dir", root(), "offsets", "set", "--topic", "T", "--partition", "0", "--offset",
       "1"},  // no --job
      {"--state-dir", root(), "--job", "dau", "deadletter", "drop"},
      {"--state-dir", root(), "dedup", "restore", "--day", "2024-11-25"},  // no --from-es
      {"--state-dir", root(), "verify", "--day", "2024-13-45"},
      {"--state-dir", root(), "backup", "restore", "--from", "x"},  // no --job
      {"--state-dir", root(), "--job", "dau", "meta", "reset-fingerprint", "extra"},
  };
  for (const auto& args : cases) {
    auto r = Run(args);
    EXPECT_EQ(r.exit_code, 2) << absl::StrJoin(args, " ") << "\n" << r.out << r.err;
    EXPECT_FALSE(r.err.empty());
  }
  // With --json a usage error is still one JSON document.
  rapidjson::Document d;
  auto r = RunJson({"offsets", "set", "--topic", "T"}, &d);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_TRUE(d.HasMember("error"));
  // A bad config is a usage error too.
  std::ofstream(tmp_.Sub("bad.toml")) << "[state\n";
  r = Run({"--config", tmp_.Sub("bad.toml"), "state", "show"});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  r = Run({"--config", tmp_.Sub("missing.toml"), "state", "show"});
  EXPECT_EQ(r.exit_code, 2) << r.err;
}

// ---------------------------------------------------------------------------------------------
// Empty and missing state dirs

TEST_F(RtdwCliTest, MissingStateDirIsAnErrorAndStaysMissing) {
  for (std::vector<std::string> cmd :
       std::vector<std::vector<std::string>>{{"state", "show"},
                                             {"offsets", "show"},
                                             {"journal", "list"},
                                             {"deadletter", "list"},
                                             {"meta", "show"},
                                             {"journal", "replay"},
                                             {"backup", "create", "--to", tmp_.Sub("bk")}}) {
    rapidjson::Document d;
    auto r = RunJson(cmd, &d);
    EXPECT_EQ(r.exit_code, 1) << cmd[0];
    ASSERT_TRUE(d.IsObject());
    ASSERT_TRUE(d.HasMember("error")) << r.out;
    EXPECT_TRUE(absl::StrContains(d["error"].GetString(), "does not exist")) << r.out;
    EXPECT_FALSE(fs::exists(root()));
  }
  // Write commands do not create a store either.
  auto r = Run({"--state-dir", root(), "--job", "dau", "offsets", "set", "--topic", "T",
                "--partition", "0", "--offset", "5", "--unchecked"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_FALSE(fs::exists(root()));
}

TEST_F(RtdwCliTest, EmptyStateDirIsAnEmptyAnswer) {
  fs::create_directories(root());
  for (std::vector<std::string> cmd :
       std::vector<std::vector<std::string>>{{"state", "show"},
                                             {"offsets", "show"},
                                             {"journal", "list"},
                                             {"deadletter", "list"},
                                             {"meta", "show"},
                                             {"journal", "replay"},
                                             {"backup", "create", "--to", tmp_.Sub("bk")}}) {
    rapidjson::Document d;
    auto r = RunJson(cmd, &d);
    EXPECT_EQ(r.exit_code, 0) << cmd[0] << " " << r.err;
    ASSERT_TRUE(d.HasMember("jobs")) << r.out;
    EXPECT_TRUE(d["jobs"].IsArray());
    EXPECT_EQ(d["jobs"].Size(), 0u);
    EXPECT_FALSE(d.HasMember("error"));
  }
  EXPECT_TRUE(fs::is_empty(root()));
  // An unknown --job is an error.
  rapidjson::Document d;
  auto r = RunJson({"--job", "dau", "state", "show"}, &d);
  EXPECT_EQ(r.exit_code, 1);
}

// ---------------------------------------------------------------------------------------------
// state show

TEST_F(RtdwCliTest, StateShow) {
  Populate();
  { Open("order-wide"); }
  rapidjson::Document d;
  auto r = RunJson({"state", "show", "--exact"}, &d);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(std::string(d["state_dir"].GetString()), root());
  ASSERT_EQ(d["jobs"].Size(), 2u);
  const auto& j = d["jobs"][0];
  EXPECT_STREQ(j["job"].GetString(), "dau");
  EXPECT_EQ(std::string(j["path"].GetString()), root() + "/dau");
  EXPECT_EQ(j["schema_version"].GetInt(), 1);
  EXPECT_STREQ(j["topic_fingerprint"].GetString(), "fp-dau");
  EXPECT_FALSE(j["running"].GetBool());
  EXPECT_TRUE(j["held_by_pid"].IsNull());
  EXPECT_TRUE(j["clean_shutdown"].GetBool());
  EXPECT_TRUE(j["last_clean_shutdown_ms"].IsInt64());
  EXPECT_EQ(j["journal_backlog"].GetUint64(), 2u);
  EXPECT_GT(j["journal_bytes"].GetUint64(), 0u);
  EXPECT_EQ(j["dead_letters"].GetUint64(), 2u);
  EXPECT_EQ(j["next_seq"].GetUint64(), 5u);
  EXPECT_EQ(j["offsets"].GetUint64(), 2u);
  ASSERT_EQ(j["dedup_days"].Size(), 1u);
  EXPECT_STREQ(j["dedup_days"][0].GetString(), "2024-11-25");
  ASSERT_EQ(j["column_families"].Size(), 6u);
  const auto& dedup = j["column_families"][1];
  EXPECT_STREQ(dedup["name"].GetString(), "dedup");
  EXPECT_EQ(dedup["keys"].GetUint64(), 2u);
  EXPECT_TRUE(dedup["keys_exact"].GetBool());
  EXPECT_TRUE(dedup["sst_bytes"].IsUint64());
  EXPECT_TRUE(dedup["memtable_bytes"].IsUint64());
  EXPECT_STREQ(d["jobs"][1]["job"].GetString(), "order-wide");

  // --job narrows; text output names the job and the backlog.
  r = RunJson({"--job", "order-wide", "state", "show"}, &d);
  EXPECT_EQ(d["jobs"].Size(), 1u);
  r = Run({"--state-dir", root(), "state", "show"});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_TRUE(absl::StrContains(r.out, "journal backlog 2")) << r.out;
  // Options may come after the command.
  r = Run({"state", "show", "--state-dir", root(), "--json"});
  EXPECT_EQ(r.exit_code, 0);
  d.Parse(r.out.c_str());
  EXPECT_FALSE(d.HasParseError());
}

TEST_F(RtdwCliTest, StateShowReportsAnUnopenableStoreAndExitsOne) {
  Populate();
  { Open("order-wide"); }
  std::ofstream(root() + "/order-wide/CURRENT", std::ios::trunc) << "garbage\n";
  rapidjson::Document d;
  auto r = RunJson({"state", "show"}, &d);
  EXPECT_EQ(r.exit_code, 1);
  ASSERT_EQ(d["jobs"].Size(), 2u);
  EXPECT_FALSE(d["jobs"][0].HasMember("error"));
  ASSERT_TRUE(d["jobs"][1].HasMember("error"));
  EXPECT_TRUE(absl::StrContains(d["jobs"][1]["error"].GetString(), root() + "/order-wide"));
}

// ---------------------------------------------------------------------------------------------
// Reading creates nothing, and works while a daemon runs

TEST_F(RtdwCliTest, ReadingCreatesNothing) {
  Populate();
  auto before = Snapshot(tmp_.path());
  for (std::vector<std::string> cmd :
       std::vector<std::vector<std::string>>{{"state", "show"},
                                             {"state", "show", "--exact"},
                                             {"offsets", "show"},
                                             {"journal", "list", "--body"},
                                             {"deadletter", "list"},
                                             {"meta", "show"},
                                             {"--job", "dau", "state", "show"}}) {
    rapidjson::Document d;
    auto r = RunJson(cmd, &d);
    EXPECT_EQ(r.exit_code, 0) << cmd[0] << r.err;
  }
  EXPECT_EQ(Snapshot(tmp_.path()), before);
}

TEST_F(RtdwCliTest, ReadsWorkWhileLockedAndWritesAreRefused) {
  Populate();
  rapidjson::Document d;
  ASSERT_EQ(RunJson({"backup", "create", "--to", tmp_.Sub("bk")}, &d).exit_code, 0);
  auto holder = Hold();
  auto r = RunJson({"state", "show"}, &d);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(d["jobs"][0]["running"].GetBool());
  EXPECT_EQ(d["jobs"][0]["held_by_pid"].GetInt64(), holder->pid());
  r = RunJson({"offsets", "show"}, &d);
  EXPECT_EQ(r.exit_code, 0);
  for (std::vector<std::string> cmd : std::vector<std::vector<std::string>>{
           {"--job", "dau", "offsets", "set", "--topic", "T", "--partition", "0", "--offset", "1",
            "--unchecked"},
           {"--job", "dau", "offsets", "delete", "--topic", "DWD_PAGE_LOG_TOPIC"},
           {"--job", "dau", "state", "init"},
           {"--job", "dau", "journal", "replay"},
           {"--job", "dau", "deadletter", "drop", "--seq", "2"},
           {"--job", "dau", "deadletter", "retry"},
           {"--job", "dau", "meta", "reset-fingerprint"},
           {"--job", "dau", "backup", "create", "--to", tmp_.Sub("bk")},
           {"--job", "dau", "backup", "restore", "--from", tmp_.Sub("bk")},
           {"--job", "dau", "dedup", "restore", "--from-es", "--day", "2024-11-25"}}) {
    auto w = RunJson(cmd, &d);
    EXPECT_EQ(w.exit_code, 1) << absl::StrJoin(cmd, " ") << "\n" << w.out;
    std::string text = w.out + w.err;
    bool says_locked = absl::StrContains(text, "locked") || absl::StrContains(text, "held by");
    EXPECT_TRUE(says_locked) << absl::StrJoin(cmd, " ") << "\n" << text;
    EXPECT_TRUE(absl::StrContains(text, absl::StrCat(holder->pid()))) << text;
  }
  holder->Kill9();
  // Nothing changed.
  auto store = Open();
  EXPECT_EQ(store->GetOffset("DWD_PAGE_LOG_TOPIC", 0)->value_or(-1), 100);
  EXPECT_FALSE(store->GetOffset("T", 0)->has_value());
  EXPECT_EQ(*store->DeadLetterCount(), 2u);
  EXPECT_EQ(*store->JournalBacklog(), 2u);
}

// ---------------------------------------------------------------------------------------------
// offsets

TEST_F(RtdwCliTest, OffsetsShowAndSet) {
  Populate();
  rapidjson::Document d;
  auto r = RunJson({"offsets", "show"}, &d);
  ASSERT_EQ(r.exit_code, 0);
  const auto& offs = d["jobs"][0]["offsets"];
  ASSERT_EQ(offs.Size(), 2u);
  EXPECT_STREQ(offs[1]["topic"].GetString(), "DWD_PAGE_LOG_TOPIC");
  EXPECT_EQ(offs[1]["partition"].GetInt(), 1);
  EXPECT_EQ(offs[1]["offset"].GetInt64(), 250);
  // (Unchecked: no broker here; tests/cli/rtdw_recovery_test.cc checks against one.)
  r = RunJson({"--job", "dau", "offsets", "set", "--topic", "DWD_PAGE_LOG_TOPIC", "--partition",
               "1", "--offset", "7", "--unchecked"},
              &d);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_STREQ(d["job"].GetString(), "dau");
  EXPECT_EQ(d["previous"].GetInt64(), 250);
  EXPECT_EQ(d["offset"].GetInt64(), 7);
  r = RunJson({"--job", "dau", "offsets", "set", "--topic", "NEW", "--partition", "3", "--offset",
               "0", "--unchecked"},
              &d);
  ASSERT_EQ(r.exit_code, 0);
  EXPECT_TRUE(d["previous"].IsNull());
  r = RunJson({"offsets", "show", "--topic", "DWD_PAGE_LOG_TOPIC"}, &d);
  EXPECT_EQ(d["jobs"][0]["offsets"].Size(), 2u);
  EXPECT_EQ(d["jobs"][0]["offsets"][1]["offset"].GetInt64(), 7);
  // The CLI's write did not touch the daemon's shutdown record.
  auto store = Open();
  EXPECT_EQ(store->previous_shutdown_clean(), true);
  EXPECT_EQ(store->GetOffset("NEW", 3)->value_or(-1), 0);
}

// ---------------------------------------------------------------------------------------------
// journal

TEST_F(RtdwCliTest, JournalList) {
  Populate();
  rapidjson::Document d;
  auto r = RunJson({"journal", "list"}, &d);
  ASSERT_EQ(r.exit_code, 0);
  const auto& j = d["jobs"][0];
  EXPECT_EQ(j["backlog"].GetUint64(), 2u);
  ASSERT_EQ(j["entries"].Size(), 2u);
  EXPECT_EQ(j["entries"][0]["seq"].GetUint64(), 1u);
  EXPECT_EQ(j["entries"][1]["seq"].GetUint64(), 4u);
  EXPECT_STREQ(j["entries"][0]["target"].GetString(), kIndex);
  EXPECT_EQ(j["entries"][0]["docs"].GetUint(), 1u);
  EXPECT_GT(j["entries"][0]["bytes"].GetUint64(), 0u);
  EXPECT_GT(j["entries"][0]["created_ms"].GetInt64(), 0);
  EXPECT_FALSE(j["entries"][0].HasMember("body"));
  r = RunJson({"journal", "list", "--body"}, &d);
  ASSERT_TRUE(d["jobs"][0]["entries"][0].HasMember("body"));
  EXPECT_TRUE(absl::StrContains(d["jobs"][0]["entries"][0]["body"].GetString(), "mid_1"));
}

TEST_F(RtdwCliTest, JournalReplayWithAnEmptyJournalNeedsNoEs) {
  { Open(); }
  rapidjson::Document d;
  auto r = RunJson({"--job", "dau", "journal", "replay", "--es-url", "http://127.0.0.1:1"}, &d);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_STREQ(d["jobs"][0]["status"].GetString(), "ok");
  EXPECT_EQ(d["jobs"][0]["remaining"].GetUint64(), 0u);
}

TEST_F(RtdwCliTest, JournalReplayFailureKeepsTheJournal) {
  Populate();
  rapidjson::Document d;
  // Nothing listens on port 1: the entry cannot be delivered.
  auto r = RunJson(
      {"--job", "dau", "journal", "replay", "--es-url", "http://127.0.0.1:1", "--timeout", "2"},
      &d);
  EXPECT_EQ(r.exit_code, 1);
  ASSERT_EQ(d["jobs"].Size(), 1u);
  EXPECT_STREQ(d["jobs"][0]["status"].GetString(), "error");
  EXPECT_EQ(d["jobs"][0]["remaining"].GetUint64(), 2u);
  EXPECT_EQ(d["jobs"][0]["delivered"].Size(), 0u);
#if !RTDW_CLI_HAS_ES
  EXPECT_TRUE(absl::StrContains(d["jobs"][0]["error"].GetString(), "ES connector")) << r.out;
#endif
  auto store = Open();
  EXPECT_EQ(*store->JournalBacklog(), 2u);
}

// ---------------------------------------------------------------------------------------------
// dead letters

TEST_F(RtdwCliTest, DeadLetterListRetryDrop) {
  Populate();
  rapidjson::Document d;
  auto r = RunJson({"deadletter", "list"}, &d);
  ASSERT_EQ(r.exit_code, 0);
  const auto& j = d["jobs"][0];
  EXPECT_EQ(j["count"].GetUint64(), 2u);
  ASSERT_EQ(j["dead_letters"].Size(), 2u);
  EXPECT_EQ(j["dead_letters"][0]["seq"].GetUint64(), 2u);
  EXPECT_STREQ(j["dead_letters"][0]["letter"]["reason"].GetString(), "es_rejected");
  EXPECT_STREQ(j["dead_letters"][0]["letter"]["id"].GetString(), "mid_9");
  EXPECT_STREQ(j["dead_letters"][1]["letter"]["reason"].GetString(), "late");
  r = RunJson({"deadletter", "list", "--after", "2", "--limit", "5"}, &d);
  EXPECT_EQ(d["jobs"][0]["dead_letters"].Size(), 1u);

  // retry: the ES item becomes a journal entry, the late record stays.
  r = RunJson({"--job", "dau", "deadletter", "retry"}, &d);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ASSERT_EQ(d["requeued"].Size(), 1u);
  EXPECT_EQ(d["requeued"][0].GetUint64(), 2u);
  EXPECT_EQ(d["journal_seq"].GetUint64(), 5u);
  ASSERT_EQ(d["skipped"].Size(), 1u);
  EXPECT_EQ(d["skipped"][0]["seq"].GetUint64(), 3u);
  {
    auto store = Open();
    auto e = store->ReadJournal(5);
    ASSERT_TRUE(e.ok());
    EXPECT_EQ(e->doc_count, 1u);
    auto actions = ParseJournalActions(e->body);
    ASSERT_TRUE(actions.ok());
    EXPECT_EQ((*actions)[0].id, "mid_9");
    EXPECT_EQ((*actions)[0].index, kIndex);
    EXPECT_EQ(*store->DeadLetterCount(), 1u);
  }
  // retry of a missing seq: exit 1.
  r = RunJson({"--job", "dau", "deadletter", "retry", "--seq", "99"}, &d);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(d["not_found"][0].GetUint64(), 99u);

  // drop
  r = RunJson({"--job", "dau", "deadletter", "drop", "--seq", "3", "--seq", "77"}, &d);
  EXPECT_EQ(r.exit_code, 1);  // 77 does not exist
  EXPECT_EQ(d["dropped"][0].GetUint64(), 3u);
  EXPECT_EQ(d["not_found"][0].GetUint64(), 77u);
  {
    auto store = Open();
    ASSERT_TRUE(store->AddDeadLetter("{\"reason\":\"x\"}").ok());
    ASSERT_TRUE(store->AddDeadLetter("not json").ok());
  }
  r = RunJson({"deadletter", "list"}, &d);
  ASSERT_EQ(d["jobs"][0]["dead_letters"].Size(), 2u);
  EXPECT_TRUE(d["jobs"][0]["dead_letters"][1]["letter"].IsNull());
  EXPECT_STREQ(d["jobs"][0]["dead_letters"][1]["line"].GetString(), "not json");
  r = RunJson({"--job", "dau", "deadletter", "drop", "--all"}, &d);
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(d["dropped"].Size(), 2u);
  EXPECT_EQ(*Open()->DeadLetterCount(), 0u);
}

// A letter's JSON is read with the safe parse (core/json_limits.h): bounded depth (a deep letter
// is shown as its line, not copied recursively into the output) and exact numbers (`0e300` is 0,
// not RapidJSON 1.1's full-precision garbage).
TEST_F(RtdwCliTest, DeadLetterListParsesLettersSafely) {
  const std::string deep =
      absl::StrCat("{\"job\":\"dau\",\"reason\":\"x\",\"raw\":", std::string(200000, '['),
                   std::string(200000, ']'), "}");
  {
    auto store = Open();
    ASSERT_TRUE(store->AddDeadLetter("{\"job\":\"dau\",\"reason\":\"x\",\"n\":0e300}").ok());
    ASSERT_TRUE(store->AddDeadLetter(deep).ok());
  }
  rapidjson::Document d;
  auto r = RunJson({"deadletter", "list"}, &d);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto& letters = d["jobs"][0]["dead_letters"];
  ASSERT_EQ(letters.Size(), 2u);
  ASSERT_TRUE(letters[0]["letter"].IsObject());
  EXPECT_EQ(letters[0]["letter"]["n"].GetDouble(), 0.0);
  EXPECT_TRUE(letters[1]["letter"].IsNull());
  EXPECT_EQ(letters[1]["line"].GetString(), deep);
}

TEST_F(RtdwCliTest, DeadLetterRetrySkipsASupersededDocument) {
  {
    auto store = Open();
    auto b = store->NewBatch();
    // The state's winner for mid_9 is older than the rejected document.
    ASSERT_TRUE(b.PutDedup(kDay, 2, "mid_9", {1732500000000, 5}).ok());
    RejectedItem item;
    item.index = kIndex;
    item.id = "mid_9";
    item.status = 400;
    item.document = DauDoc("mid_9", 1732500009000, 2, 90);
    b.AddDeadLetter(EsRejectedDeadLetter("dau", item, 1));
    ASSERT_TRUE(store->Commit(std::move(b)).ok());
  }
  rapidjson::Document d;
  auto r = RunJson({"--job", "dau", "deadletter", "retry"}, &d);
  ASSERT_EQ(r.exit_code, 0);
  EXPECT_EQ(d["requeued"].Size(), 0u);
  EXPECT_TRUE(d["journal_seq"].IsNull());
  ASSERT_EQ(d["skipped"].Size(), 1u);
  EXPECT_TRUE(absl::StrContains(d["skipped"][0]["why"].GetString(), "superseded"));
}

// ---------------------------------------------------------------------------------------------
// backup

TEST_F(RtdwCliTest, BackupCreateListRestore) {
  Populate();
  { Open("order-wide"); }
  std::string bk = tmp_.Sub("bk");
  rapidjson::Document d;
  auto r = RunJson({"backup", "create", "--to", bk}, &d);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ASSERT_EQ(d["jobs"].Size(), 2u);
  EXPECT_EQ(std::string(d["jobs"][0]["backup_dir"].GetString()), bk + "/dau");
  EXPECT_EQ(d["jobs"][0]["backup_id"].GetUint(), 1u);
  EXPECT_GT(d["jobs"][0]["size_bytes"].GetUint64(), 0u);
  EXPECT_GT(d["jobs"][0]["files"].GetUint(), 0u);
  EXPECT_GT(d["jobs"][0]["timestamp"].GetInt64(), 0);

  r = RunJson({"backup", "list", "--from", bk}, &d);
  ASSERT_EQ(r.exit_code, 0);
  ASSERT_EQ(d["jobs"].Size(), 2u);
  EXPECT_EQ(d["jobs"][0]["backups"].Size(), 1u);

  // Change the store, then restore: the change is gone, the replaced store kept aside.
  ASSERT_EQ(Run({"--state-dir", root(), "--job", "dau", "offsets", "set", "--topic",
                 "DWD_PAGE_LOG_TOPIC", "--partition", "0", "--offset", "999", "--unchecked"})
                .exit_code,
            0);
  r = RunJson({"--job", "dau", "backup", "restore", "--from", bk}, &d);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(std::string(d["path"].GetString()), root() + "/dau");
  EXPECT_EQ(d["backup_id"].GetUint(), 1u);
  ASSERT_TRUE(d["previous_kept_at"].IsString());
  EXPECT_TRUE(fs::exists(std::string(d["previous_kept_at"].GetString()) + "/CURRENT"));
  EXPECT_EQ(Open()->GetOffset("DWD_PAGE_LOG_TOPIC", 0)->value_or(-1), 100);
  // A missing backup is exit 1.
  r = RunJson({"--job", "dau", "backup", "restore", "--from", tmp_.Sub("nothing")}, &d);
  EXPECT_EQ(r.exit_code, 1);
}

// ---------------------------------------------------------------------------------------------
// meta

TEST_F(RtdwCliTest, MetaShowAndResetFingerprint) {
  Populate();
  rapidjson::Document d;
  auto r = RunJson({"meta", "show"}, &d);
  ASSERT_EQ(r.exit_code, 0);
  const auto& m = d["jobs"][0]["meta"];
  EXPECT_STREQ(m["schema_version"].GetString(), "1");
  EXPECT_STREQ(m["job"].GetString(), "dau");
  EXPECT_STREQ(m["topic_fingerprint"].GetString(), "fp-dau");
  EXPECT_STREQ(m["clean_shutdown"].GetString(), "true");
  EXPECT_STREQ(m["next_seq"].GetString(), "5");

  r = RunJson({"--job", "dau", "meta", "reset-fingerprint", "--to", "fp-new"}, &d);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_STREQ(d["previous"].GetString(), "fp-dau");
  EXPECT_STREQ(d["fingerprint"].GetString(), "fp-new");
  r = RunJson({"--job", "dau", "meta", "reset-fingerprint"}, &d);
  ASSERT_EQ(r.exit_code, 0);
  EXPECT_STREQ(d["previous"].GetString(), "fp-new");
  EXPECT_TRUE(d["fingerprint"].IsNull());
  // The daemon's next open (with its own fingerprint) is accepted and records it.
  EXPECT_EQ(Open()->GetMeta(kMetaTopicFingerprint)->value_or(""), "fp-dau");
}

TEST_F(RtdwCliTest, ConfigGivesTheStateDirAndTheFingerprint) {
  Populate();
  std::string cfg = tmp_.Sub("rtdw.toml");
  std::ofstream(cfg) << "[kafka]\n[redis]\n[es]\n[state]\ndir = \"" << root() << "\"\n[jobs]\n";
  auto r = Run({"--config", cfg, "--json", "state", "show"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  rapidjson::Document d;
  d.Parse(r.out.c_str());
  ASSERT_FALSE(d.HasParseError());
  EXPECT_EQ(d["jobs"].Size(), 1u);
  // --state-dir wins over the config.
  r = Run({"--config", cfg, "--state-dir", tmp_.Sub("elsewhere"), "--json", "state", "show"});
  EXPECT_EQ(r.exit_code, 1);
  // reset-fingerprint with a config stores the config's fingerprint of the job.
  r = Run({"--config", cfg, "--job", "dau", "--json", "meta", "reset-fingerprint"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  d.Parse(r.out.c_str());
  ASSERT_TRUE(d["fingerprint"].IsString());
  EXPECT_TRUE(absl::StrContains(d["fingerprint"].GetString(), "dau")) << r.out;
  // RTDW_STATE_DIR applies without a config.
  r = Run({"--json", "state", "show"}, {"RTDW_STATE_DIR=" + root()});
  EXPECT_EQ(r.exit_code, 0) << r.err;
}

// ---------------------------------------------------------------------------------------------
// ES commands: journal replay, dedup restore, verify (against rtdw-es-lite)

#if RTDW_CLI_HAS_ES
}  // namespace
}  // namespace rtdw
#include "connectors/es/es_client.h"
namespace rtdw {
namespace {

class RtdwCliEsTest : public RtdwCliTest {
 protected:
  void SetUp() override {
    absl::Status s = es_.Start();
    if (!s.ok()) GTEST_SKIP() << "rtdw-es-lite did not start: " << s;
  }
  testing::EsLite es_;
};

TEST_F(RtdwCliEsTest, ReplayThenVerifyThenRestoreALostDisk) {
  Populate();
  rapidjson::Document d;
  // verify before delivery: the journal owes both mids, so nothing is lost yet.
  auto r = RunJson({"verify", "--day", "2024-11-25", "--es-url", es_.url()}, &d);
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_STREQ(d["status"].GetString(), "ok");
  EXPECT_EQ(d["owed_by_journal"].GetUint64(), 2u);

  r = RunJson({"--job", "dau", "journal", "replay", "--es-url", es_.url()}, &d);
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  const auto& j = d["jobs"][0];
  EXPECT_STREQ(j["status"].GetString(), "ok");
  ASSERT_EQ(j["delivered"].Size(), 2u);
  EXPECT_EQ(j["delivered"][0]["seq"].GetUint64(), 1u);
  EXPECT_EQ(j["delivered"][1]["seq"].GetUint64(), 4u);
  EXPECT_EQ(j["delivered"][0]["acknowledged"].GetUint(), 1u);
  EXPECT_EQ(j["remaining"].GetUint64(), 0u);
  EXPECT_EQ(*Open()->JournalBacklog(), 0u);

  r = RunJson({"verify", "--day", "2024-11-25", "--es-url", es_.url()}, &d);
  EXPECT_EQ(r.exit_code, 0) << r.out;
  EXPECT_STREQ(d["status"].GetString(), "ok");
  EXPECT_EQ(d["state_mids"].GetUint64(), 2u);
  EXPECT_EQ(d["es_docs"].GetUint64(), 2u);

  // Lose the disk: verify sees the difference, restore rebuilds the day from ES.
  fs::remove_all(root());
  { Open(); }
  r = RunJson({"verify", "--day", "2024-11-25", "--es-url", es_.url()}, &d);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_STREQ(d["status"].GetString(), "differs");
  EXPECT_EQ(d["missing_in_state"].GetUint64(), 2u);
  r = RunJson({"dedup", "restore", "--from-es", "--day", "2024-11-25", "--es-url", es_.url()}, &d);
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_EQ(d["documents"].GetUint64(), 2u);
  EXPECT_EQ(d["restored"].GetUint64(), 2u);
  EXPECT_EQ(d["skipped"].GetUint64(), 0u);
  auto store = Open();
  EXPECT_EQ(store->GetDedup(kDay, 1, "mid_2")->value_or(DedupValue{}),
            (DedupValue{1732500001000, 20}));
  store.reset();
  r = RunJson({"verify", "--day", "2024-11-25", "--es-url", es_.url()}, &d);
  EXPECT_EQ(r.exit_code, 0) << r.out;

  // A state entry ES never got (and no journal owes): a loss.
  {
    auto s = Open();
    auto b = s->NewBatch();
    ASSERT_TRUE(b.PutDedup(kDay, 3, "mid_lost", {1732500000000, 1}).ok());
    ASSERT_TRUE(s->Commit(std::move(b)).ok());
  }
  r = RunJson({"verify", "--day", "2024-11-25", "--es-url", es_.url()}, &d);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_STREQ(d["status"].GetString(), "differs");
  EXPECT_EQ(d["missing_in_es"].GetUint64(), 1u);
  EXPECT_STREQ(d["samples"]["missing_in_es"][0].GetString(), "mid_lost");

  // ES unreachable: "error", exit 1.
  r = RunJson({"verify", "--day", "2024-11-25", "--es-url", "http://127.0.0.1:1"}, &d);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_STREQ(d["status"].GetString(), "error");
}

TEST_F(RtdwCliEsTest, ReplayDeadLettersARejectedDocument) {
  {
    auto store = Open();
    auto b = store->NewBatch();
    JournalEntry e;
    e.target = kIndex;
    AppendJournalIndexAction(&e.body, kIndex, "mid_ok", DauDoc("mid_ok", 1732500000000, 0, 1));
    // ts is a date (epoch_millis) in the DAU template: this document cannot be indexed.
    AppendJournalIndexAction(&e.body, kIndex, "mid_bad",
                             "{\"mid\":\"mid_bad\",\"ts\":\"not a time\",\"dt\":\"2024-11-25\"}");
    e.doc_count = 2;
    b.SetJournal(e);
    ASSERT_TRUE(store->Commit(std::move(b)).ok());
  }
  rapidjson::Document d;
  auto r = RunJson({"--job", "dau", "journal", "replay", "--es-url", es_.url()}, &d);
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  const auto& sent = d["jobs"][0]["delivered"][0];
  EXPECT_EQ(sent["docs"].GetUint(), 2u);
  EXPECT_EQ(sent["acknowledged"].GetUint(), 1u);
  EXPECT_EQ(sent["rejected"].GetUint64(), 1u);
  ASSERT_EQ(sent["dead_letter_seqs"].Size(), 1u);
  r = RunJson({"deadletter", "list"}, &d);
  ASSERT_EQ(d["jobs"][0]["dead_letters"].Size(), 1u);
  const auto& letter = d["jobs"][0]["dead_letters"][0]["letter"];
  EXPECT_STREQ(letter["reason"].GetString(), "es_rejected");
  EXPECT_STREQ(letter["id"].GetString(), "mid_bad");
  EXPECT_STREQ(letter["index"].GetString(), kIndex);
  EXPECT_EQ(letter["status"].GetInt(), 400);
  EXPECT_EQ(*Open()->JournalBacklog(), 0u);
}

// "Retry after retention": a DAU document ES refused (its index was write-blocked) is
// dead-lettered with its version; a better winner (smaller ts) of the same mid is delivered
// later; the de-dup day is gone (no de-dup entry, as after retention dropped it), so
// `deadletter retry` cannot tell the document is stale and re-queues it. ES must keep the winner:
// the re-sent document carries its version and is refused as superseded (409), which counts as
// delivered.
TEST_F(RtdwCliEsTest, DeadLetterRetryAfterRetentionKeepsTheBetterWinner) {
  EsClientOptions eo;
  eo.urls = {es_.url()};
  auto es = EsClient::Create(eo);
  ASSERT_TRUE(es.ok()) << es.status();
  auto put = [&](const std::string& path, const std::string& body) {
    auto r = (*es)->Perform("PUT", path, body);
    ASSERT_TRUE(r.ok()) << r.status();
    ASSERT_EQ(r->status, 200) << path << ": " << r->body;
  };
  constexpr int64_t kDayStart = 1732492800000;  // 2024-11-25T00:00:00Z (the store's zone: UTC)
  const int64_t worse_ts = kDayStart + 36000000, better_ts = kDayStart + 30000000;
  auto journal = [&](int64_t ts, int64_t offset) {
    auto store = Open();
    auto b = store->NewBatch();
    JournalEntry e;
    e.target = kIndex;
    AppendJournalIndexAction(&e.body, kIndex, "mid_r", DauDoc("mid_r", ts, 0, offset),
                             DauEsVersion(ts, kDayStart, offset));
    e.doc_count = 1;
    b.SetJournal(e);
    ASSERT_TRUE(store->Commit(std::move(b)).ok());
  };
  rapidjson::Document d;
  put(absl::StrCat("/", kIndex), "{}");
  put(absl::StrCat("/", kIndex, "/_settings"), R"({"index.blocks.write":true})");
  journal(worse_ts, 50);
  auto r = RunJson({"--job", "dau", "journal", "replay", "--es-url", es_.url()}, &d);
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  ASSERT_EQ(d["jobs"][0]["delivered"][0]["rejected"].GetUint64(), 1u) << r.out;
  put(absl::StrCat("/", kIndex, "/_settings"), R"({"index.blocks.write":false})");

  // The better winner is written by another instance (group mode: the partition's next owner):
  // a delivery through this store would resolve the letter (tested in storage's
  // DeadLetterIndexTest), so it comes straight to ES with its version.
  {
    const std::string path = absl::StrCat("/", kIndex, "/_doc/mid_r?version_type=external_gte",
                                          "&version=", DauEsVersion(better_ts, kDayStart, 80));
    auto w = (*es)->Perform("PUT", path, DauDoc("mid_r", better_ts, 0, 80));
    ASSERT_TRUE(w.ok()) << w.status();
    ASSERT_EQ(w->status / 100, 2) << w->body;
  }

  r = RunJson({"--job", "dau", "deadletter", "retry"}, &d);
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  ASSERT_EQ(d["requeued"].Size(), 1u) << r.out;
  r = RunJson({"--job", "dau", "journal", "replay", "--es-url", es_.url()}, &d);
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  const auto& sent = d["jobs"][0]["delivered"][0];
  EXPECT_EQ(sent["acknowledged"].GetUint(), 1u) << r.out;
  EXPECT_EQ(sent["superseded"].GetUint(), 1u) << r.out;
  EXPECT_EQ(sent["rejected"].GetUint64(), 0u) << r.out;

  auto doc = (*es)->Perform("GET", absl::StrCat("/", kIndex, "/_doc/mid_r"));
  ASSERT_TRUE(doc.ok());
  rapidjson::Document got;
  got.Parse(doc->body.c_str());
  ASSERT_TRUE(got.IsObject() && got.HasMember("_source")) << doc->body;
  EXPECT_EQ(got["_source"]["ts"].GetInt64(), better_ts) << doc->body;
  EXPECT_EQ(*Open()->JournalBacklog(), 0u);
}
#else
TEST_F(RtdwCliTest, EsCommandsSayTheConnectorIsMissing) {
  Populate();
  rapidjson::Document d;
  auto r = RunJson({"verify", "--day", "2024-11-25"}, &d);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_STREQ(d["status"].GetString(), "error");
  EXPECT_TRUE(absl::StrContains(d["error"].GetString(), "ES connector"));
  r = RunJson({"dedup", "restore", "--from-es", "--day", "2024-11-25"}, &d);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_TRUE(absl::StrContains(d["error"].GetString(), "ES connector"));
}
#endif

}  // namespace
}  // namespace rtdw
