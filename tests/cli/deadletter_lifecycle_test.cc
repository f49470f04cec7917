// The dead-letter and repair procedures of docs/OPERATIONS.md ("Dead letters and repairs"), run
// exactly as written: the command lines are read from the file's drill blocks (the indented lines
// after `<!-- drill: NAME -->`), so the test and the document cannot drift apart. Each test builds
// the fault the procedure is for (a clock behind, a wrong mapping, a join window closed before the
// details came, documents deleted from ES, a reprocess), checks what the operator is told (letters
// by reason, verify, the WARN line, /health), runs the procedure, and compares ES with rtdw-gen's
// truth afterwards.
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <string>
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
#include "tests/harness/process.h"
#include "tests/harness/services.h"
#include "tests/pipeline/doc_drill.h"
#include "tests/pipeline/pipeline_stack.h"

namespace rtdw::testing {
namespace {

constexpr char kDocConfig[] = "/etc/rtdw/rtdw.toml";
constexpr char kDocDay[] = "2025-11-25";
const std::string kOperationsMd = std::string(RTDW_SOURCE_DIR) + "/docs/OPERATIONS.md";

rapidjson::Document Json(const std::string& text) {
  rapidjson::Document d;
  d.Parse(text.c_str());
  EXPECT_FALSE(d.HasParseError()) << "not one JSON document: [" << text << "]";
  return d;
}

class DeadLetterDrill : public ::testing::Test {
 protected:
  void Start(StackOptions o = {}) {
    stack_ = std::make_unique<PipelineStack>(o);
    ASSERT_TRUE(stack_->Start().ok());
    ASSERT_TRUE(stack_->GenerateDb().ok());
    ASSERT_TRUE(stack_->GenerateLogs().ok());
  }

  // rtdw with the stack's config; `args` as an operator would type them after `rtdw`.
  CommandResult Rtdw(std::vector<std::string> args) {
    args.insert(args.begin(), {BinDir() + "/rtdw", "--config", stack_->config()});
    return RunCommand(args, std::chrono::seconds(300));
  }
  rapidjson::Document RtdwJson(std::vector<std::string> args, int want_exit = 0) {
    args.push_back("--json");
    CommandResult r = Rtdw(args);
    EXPECT_EQ(r.exit_code, want_exit) << absl::StrJoin(args, " ") << "\n" << r.out << r.err;
    return Json(r.out);
  }

  // Runs drill `name` as written: `rtdw` lines with the stack's config and day, `systemctl stop
  // rtdwd` (nothing runs between the steps of a test), `systemctl start rtdwd` = rtdwd of `jobs`
  // until idle, with `env` (a clock still wrong). A line's comment `# exit N` is its expected
  // exit code (default 0).
  void RunDrill(const std::string& name, const std::string& jobs = "",
                const std::vector<std::string>& env = {}) {
    for (const DrillStep& step : ReadDrill(kOperationsMd, name)) {
      const std::string& written = step.line;
      std::string line = step.line;
      const int want = absl::StrContains(step.comment, "exit 1") ? 1 : 0;
      std::cout << "drill " << name << ": " << line << "\n";
      if (line == "systemctl stop rtdwd") continue;
      if (line == "systemctl start rtdwd") {
        ASSERT_EQ(stack_->RunToIdle(jobs, 1.5, env), 0) << stack_->DaemonLog();
        continue;
      }
      line = absl::StrReplaceAll(
          line, {{kDocConfig, stack_->config()}, {kDocDay, stack_->options().day}});
      std::vector<std::string> argv = absl::StrSplit(line, ' ', absl::SkipEmpty());
      ASSERT_EQ(argv.front(), "rtdw") << "a drill line the test cannot run: " << written;
      argv.front() = BinDir() + "/rtdw";
      CommandResult r = RunCommand(argv, std::chrono::seconds(300));
      std::cout << r.out;
      ASSERT_EQ(r.exit_code, want) << written << "\n" << r.out << r.err;
    }
  }

  // The store's letters of `job`: count by reason, and every src once (checked).
  std::map<std::string, int> Letters(const std::string& job, size_t* count = nullptr) {
    rapidjson::Document d = RtdwJson({"deadletter", "list", "--job", job});
    std::map<std::string, int> out;
    std::set<std::string> srcs;
    if (!d.IsObject() || !d.HasMember("jobs")) return out;
    const auto& j = d["jobs"][0];
    for (const auto& l : j["dead_letters"].GetArray()) {
      ++out[l["letter"]["reason"].GetString()];
      if (l["letter"].HasMember("src") && l["letter"]["reason"] != "es_rejected") {
        EXPECT_TRUE(srcs.insert(l["letter"]["src"].GetString()).second)
            << "two letters of one record: " << l["letter"]["src"].GetString();
      }
    }
    // The summary agrees with the list.
    for (const auto& [reason, n] : out) {
      EXPECT_EQ(j["by_reason"][reason.c_str()].GetInt(), n) << reason;
    }
    if (count) *count = j["dead_letters"].Size();
    return out;
  }

  size_t TruthDauDocs() {
    return stack_->log_truth()["dau"][stack_->options().day.c_str()].MemberCount();
  }

  // Seconds to set rtdwd's clock off so that it runs two days before the stack's day starts:
  // every record of the day is then more than max_future (a day) ahead of it.
  int64_t ClockBehindSeconds() {
    absl::TimeZone tz;
    EXPECT_TRUE(absl::LoadTimeZone("Asia/Shanghai", &tz));
    absl::CivilDay day;
    EXPECT_TRUE(absl::ParseCivilTime(stack_->options().day, &day));
    const absl::Time start = absl::FromCivil(day, tz);
    return absl::ToInt64Seconds(start - absl::Now()) - 2 * 86400;
  }

  std::string EsUrl(const std::string& path) { return stack_->es().url() + path; }
  CommandResult Curl(const std::vector<std::string>& args) {
    std::vector<std::string> argv = {"curl", "-s"};
    argv.insert(argv.end(), args.begin(), args.end());
    return RunCommand(argv, std::chrono::seconds(60));
  }

  std::unique_ptr<PipelineStack> stack_;
};

// future: rtdwd's clock two days behind; every first page of the day is a `future` letter, no DAU
// document reaches ES, and verify says which documents the letters hold back. Reprocessing twice
// with the clock still wrong keeps one letter per record (before letters were keyed by their
// record, each pass added them all again). The clock fixed, the documented retry re-judges them
// and ES equals the truth.
TEST_F(DeadLetterDrill, FutureLettersRetriedAfterTheClockIsFixed) {
  Start();
  for (const char* job : {"log-split", "db-split", "order-wide"}) {
    ASSERT_EQ(stack_->RunToIdle(job), 0) << stack_->DaemonLog();
  }
  const std::vector<std::string> behind = {
      absl::StrCat("RTDW_TEST_CLOCK_OFFSET_S=", ClockBehindSeconds())};
  ASSERT_EQ(stack_->RunToIdle("dau", 1.5, behind), 0) << stack_->DaemonLog();
  size_t letters = 0;
  std::map<std::string, int> reasons = Letters("dau", &letters);
  ASSERT_GT(reasons["future"], 0);
  EXPECT_EQ(reasons.size(), 1u) << "only future letters";
  std::cout << "future letters: " << letters << ", truth documents " << TruthDauDocs() << "\n";

  // verify: the day's documents are all held back by dead letters.
  rapidjson::Document v = RtdwJson({"verify", "--day", stack_->options().day}, /*want_exit=*/1);
  EXPECT_EQ(v["status"], "differs");
  EXPECT_EQ(v["dead_lettered"].GetUint64(), TruthDauDocs());
  EXPECT_EQ(v["dead_letters"].GetUint64(), letters);
  EXPECT_EQ(v["missing_in_es"].GetUint64(), 0u);

  // Reprocessing twice, the clock still wrong: the same letters, not three times as many.
  for (int pass = 0; pass < 2; ++pass) RunDrill("reprocess-dau", "dau", behind);
  size_t after = 0;
  EXPECT_EQ(Letters("dau", &after), reasons);
  EXPECT_EQ(after, letters);

  // The clock fixed (rtdwd without the offset), the documented retry.
  RunDrill("deadletter-retry", "dau");
  EXPECT_TRUE(Letters("dau").empty());
  ExpectEsExact(*stack_);
  ExpectVerifyOk(*stack_);
}

// es_rejected: the day's DAU index was created by hand with a wrong mapping (dt as a number):
// every document is refused. rtdwd says so in a WARN line and on /health, verify counts the
// documents, the letters are one per document however often a better winner was refused again.
// The mapping fixed (the wrong index dropped, so that the template makes it again), the
// documented retry delivers them.
TEST_F(DeadLetterDrill, RejectedDocumentsRetriedAfterTheMappingIsFixed) {
  StackOptions o;
  int port = FreePort();
  o.http_listen = absl::StrCat("127.0.0.1:", port);
  Start(o);
  const std::string index = "gmall_dau_info_" + stack_->options().day;
  CommandResult made =
      Curl({"-XPUT", "-H", "Content-Type: application/json", "-d",
            R"({"mappings":{"properties":{"dt":{"type":"long"}}}})", EsUrl("/" + index)});
  ASSERT_EQ(made.exit_code, 0) << made.out << made.err;
  ASSERT_TRUE(absl::StrContains(made.out, "\"acknowledged\":true")) << made.out;

  for (const char* job : {"db-split", "log-split", "order-wide"}) {
    ASSERT_EQ(stack_->RunToIdle(job), 0) << stack_->DaemonLog();
  }
  auto daemon = stack_->StartDaemon();  // all four jobs, /health and /metrics on `port`
  ASSERT_TRUE(daemon.ok()) << daemon.status();
  const std::string health = absl::StrCat("http://127.0.0.1:", port, "/health");
  std::string answer;
  EXPECT_TRUE(WaitFor(
      [&] {
        answer = Curl({health}).out;
        return absl::StrContains(answer, "dau: ") &&
               absl::StrContains(answer, "documents refused by Elasticsearch for good");
      },
      std::chrono::seconds(120)))
      << answer << stack_->DaemonLog();
  std::cout << "/health: " << answer << "\n";
  EXPECT_TRUE(absl::StrContains(stack_->DaemonLog(), "dau: Elasticsearch refused"))
      << stack_->DaemonLog();
  // Every reason order-wide can give is exported from its start, unknown_topic too.
  const std::string metrics = Curl({absl::StrCat("http://127.0.0.1:", port, "/metrics")}).out;
  EXPECT_TRUE(absl::StrContains(
      metrics, "rtdw_dead_letters_total{job=\"order-wide\",reason=\"unknown_topic\"} 0"))
      << metrics;
  // Until dau has read everything: one es_rejected letter per document of the day.
  EXPECT_TRUE(WaitFor([&] { return Letters("dau")["es_rejected"] == int(TruthDauDocs()); },
                      std::chrono::seconds(180)))
      << Letters("dau")["es_rejected"] << " of " << TruthDauDocs() << stack_->DaemonLog();
  EXPECT_EQ((*daemon)->Stop(std::chrono::seconds(60)), 0) << stack_->DaemonLog();
  EXPECT_EQ(Letters("dau").size(), 1u);

  rapidjson::Document v = RtdwJson({"verify", "--day", stack_->options().day}, 1);
  EXPECT_EQ(v["dead_lettered"].GetUint64(), TruthDauDocs());
  EXPECT_EQ(v["missing_in_es"].GetUint64(), 0u);
  EXPECT_EQ(v["dead_letters_by_reason"]["es_rejected"].GetUint64(), TruthDauDocs());

  // The fix: drop the wrongly made (empty) index; the template makes it right at the next write.
  CommandResult dropped = Curl({"-XDELETE", EsUrl("/" + index)});
  ASSERT_TRUE(absl::StrContains(dropped.out, "\"acknowledged\":true")) << dropped.out;
  RunDrill("deadletter-retry");
  EXPECT_TRUE(Letters("dau").empty());
  ExpectEsExact(*stack_);
}

// late: three days of logs, a share of devices a day late (rtdw-gen --disorder), read with
// dedup.retention_days = 1: their first pages are `late`. The retention raised to cover the
// letters' days (the state fingerprint accepted as documented), the retry re-judges them and ES
// equals the truth.
TEST_F(DeadLetterDrill, LateLettersRetriedAfterTheRetentionIsRaised) {
  StackOptions o;
  o.day = "2026-11-20";
  o.log_days = 3;
  o.log_disorder = 0.3;
  o.mids = 600;
  o.events = 12000;
  o.orders = 50;
  o.batch_max_records = 100;
  o.extra_config = "[dedup]\nretention_days = 1\n";
  Start(o);
  ASSERT_EQ(stack_->RunToIdle("db-split"), 0) << stack_->DaemonLog();
  ASSERT_EQ(stack_->RunToIdle("log-split"), 0) << stack_->DaemonLog();
  ASSERT_EQ(stack_->RunToIdle("order-wide"), 0) << stack_->DaemonLog();
  ASSERT_EQ(stack_->RunToIdle("dau"), 0) << stack_->DaemonLog();
  std::map<std::string, int> reasons = Letters("dau");
  ASSERT_GT(reasons["late"], 0) << "the data made no late letter: the test proves nothing";
  auto before = stack_->CompareDau();
  ASSERT_TRUE(before.ok());
  EXPECT_GT(before->missing + before->wrong, 0u) << before->Summary();
  std::cout << "late letters " << reasons["late"] << "; dau before the retry: " << before->Summary()
            << "\n";

  // The cause fixed: a retention covering the three days from the last one.
  std::string config = ReadFileOrEmpty(stack_->config());
  ASSERT_TRUE(absl::StrContains(config, "retention_days = 1"));
  std::ofstream(stack_->config()) << absl::StrReplaceAll(
      config, {{"retention_days = 1", "retention_days = 4"}});
  RunDrill("deadletter-retry-late", "dau");
  EXPECT_TRUE(Letters("dau").empty());
  auto dau = stack_->CompareDau();
  ASSERT_TRUE(dau.ok()) << dau.status();
  EXPECT_TRUE(dau->exact()) << dau->Summary();
}

// join_expired (order-wide): three days of orders reach order-wide before any of their details
// (two db-split instances over the change stream, the first splitting only order_info), and the
// silent detail topic stops holding the join back at once (idle_input = 0): the orders older than
// the watermark minus join_ttl (a day) expire, `join_expired`. Their details, produced after the
// window closed, are `late`; ES lacks every document of those orders. The cause fixed as
// documented — join_ttl covering the letters' days, the fingerprint accepted — the
// documented retry re-judges orders and details together and ES equals the truth.
TEST_F(DeadLetterDrill, JoinExpiredLettersRetriedAfterTheTtlIsRaised) {
  StackOptions o;
  o.day = "2026-11-21";
  o.days = 3;
  o.orders = 300;
  o.users = 200;
  o.batch_max_records = 50;
  o.extra_config = "[jobs.order-wide]\nidle_input = 0\njoin_ttl = 86400\n";
  stack_ = std::make_unique<PipelineStack>(o);
  ASSERT_TRUE(stack_->Start().ok());
  ASSERT_TRUE(stack_->GenerateDb().ok());
  auto split = [&](const std::string& name, const std::string& table) {
    auto path = stack_->WriteInstanceConfig(name, {"db-split"}, "", {});
    ASSERT_TRUE(path.ok()) << path.status();
    std::ofstream(*path, std::ios::app) << "[jobs.db-split]\nfact_tables = [\"" << table << "\"]\n";
    CommandResult r = RunCommand(
        {BinDir() + "/rtdwd", "--config", *path, "--job", "db-split", "--exit-when-idle", "1.5"},
        std::chrono::seconds(240));
    ASSERT_EQ(r.exit_code, 0) << r.err;
  };
  // The orders (and the dimension rows) first: order-wide judges them with no detail in sight.
  ASSERT_NO_FATAL_FAILURE(split("orders", "order_info"));
  ASSERT_EQ(stack_->RunToIdle("order-wide"), 0) << stack_->DaemonLog();
  std::map<std::string, int> reasons = Letters("order-wide");
  ASSERT_GT(reasons["join_expired"], 0) << "no order expired: the test proves nothing";
  EXPECT_EQ(reasons.size(), 1u) << "only join_expired letters before the details exist";
  const int expired_orders = reasons["join_expired"];

  // The details, after the window closed: of the expired orders `late` (or expired themselves
  // when they wait past it), of the others joined.
  ASSERT_NO_FATAL_FAILURE(split("details", "order_detail"));
  ASSERT_EQ(stack_->RunToIdle("order-wide"), 0) << stack_->DaemonLog();
  size_t letters = 0;
  reasons = Letters("order-wide", &letters);
  EXPECT_EQ(reasons["join_expired"] + reasons["late"], int(letters)) << "only these two reasons";
  EXPECT_GE(reasons["join_expired"], expired_orders);
  auto before = stack_->CompareOrderWide();
  ASSERT_TRUE(before.ok()) << before.status();
  EXPECT_GT(before->missing, 0u) << before->Summary();
  EXPECT_GT(before->found, 0u) << "the orders within the window joined: " << before->Summary();
  std::cout << "order-wide letters " << letters << " (join_expired " << reasons["join_expired"]
            << ", late " << reasons["late"] << "); before the retry: " << before->Summary() << "\n";

  // The cause fixed: a join_ttl covering the three days from the watermark (the last day).
  std::string config = ReadFileOrEmpty(stack_->config());
  ASSERT_TRUE(absl::StrContains(config, "join_ttl = 86400"));
  std::ofstream(stack_->config()) << absl::StrReplaceAll(
      config, {{"join_ttl = 86400", "join_ttl = 345600"}});
  RunDrill("deadletter-retry-join-expired", "order-wide");
  EXPECT_TRUE(Letters("order-wide").empty());
  auto ow = stack_->CompareOrderWide();
  ASSERT_TRUE(ow.ok()) << ow.status();
  EXPECT_TRUE(ow->exact()) << ow->Summary();
  std::cout << "order-wide after the drill: " << ow->Summary() << "\n";
}

// A document lost from ES (deleted by mistake): reprocessing alone skips it (its de-dup slot says
// "seen"); the documented repair writes it again.
TEST_F(DeadLetterDrill, LostDocumentsRepairedAsDocumented) {
  Start();
  for (const char* job : {"db-split", "log-split", "dau", "order-wide"}) {
    ASSERT_EQ(stack_->RunToIdle(job), 0) << stack_->DaemonLog();
  }
  ExpectEsExact(*stack_);
  const std::string index = "gmall_dau_info_" + stack_->options().day;
  std::vector<std::string> lost;
  for (const auto& m : stack_->log_truth()["dau"][stack_->options().day.c_str()].GetObject()) {
    if (lost.size() == 7) break;
    lost.push_back(m.name.GetString());
  }
  // A delete leaves a tombstone one version above the document for index.gc_deletes (60 s), and
  // a rewrite with the document's own version is refused as older meanwhile (as in ES): a
  // mistake is found later than that. Here it is shortened instead of waited for.
  CommandResult gc = Curl({"-XPUT", "-H", "Content-Type: application/json", "-d",
                           R"({"index":{"gc_deletes":"0s"}})", EsUrl("/" + index + "/_settings")});
  ASSERT_TRUE(absl::StrContains(gc.out, "\"acknowledged\":true")) << gc.out;
  for (const auto& mid : lost) {
    CommandResult r = Curl({"-XDELETE", EsUrl(absl::StrCat("/", index, "/_doc/", mid))});
    ASSERT_TRUE(absl::StrContains(r.out, "\"deleted\"")) << r.out;
  }
  // Reprocessing alone does not bring them back.
  RunDrill("reprocess-dau", "dau");
  auto still = stack_->CompareDau();
  ASSERT_TRUE(still.ok());
  EXPECT_EQ(still->missing, lost.size()) << still->Summary();

  RunDrill("repair-lost-documents", "dau");
  ExpectEsExact(*stack_);
  ExpectVerifyOk(*stack_);
}

// log-split's letters are in its dead-letter topic, not its store: `deadletter list` says where,
// and --from-topic reads them, by reason equal to the truth's — each record once after a
// reprocess produced them all again.
TEST_F(DeadLetterDrill, SplitJobLettersListedFromTheirTopic) {
  StackOptions o;
  o.log_args = {"--malformed-share", "0.01"};
  Start(o);
  ASSERT_EQ(stack_->RunToIdle("log-split"), 0) << stack_->DaemonLog();
  CommandResult plain = Rtdw({"deadletter", "list", "--job", "log-split"});
  ASSERT_EQ(plain.exit_code, 0) << plain.err;
  EXPECT_TRUE(absl::StrContains(plain.out, "dead letters go to the Kafka topic DWD_DEAD_LETTER"))
      << plain.out;
  const rapidjson::Value& truth = stack_->log_truth()["dead_letters"];
  ASSERT_GT(truth.MemberCount(), 0u);
  auto check = [&](uint64_t want_repeats) {
    rapidjson::Document d =
        RtdwJson({"deadletter", "list", "--job", "log-split", "--from-topic", "--summary"});
    const auto& j = d["jobs"][0];
    int total = 0;
    for (const auto& m : truth.GetObject()) {
      EXPECT_EQ(j["by_reason"][m.name.GetString()].GetInt(), m.value.GetInt())
          << m.name.GetString();
      total += m.value.GetInt();
    }
    EXPECT_EQ(j["count"].GetInt(), total);
    EXPECT_EQ(j["by_reason"].MemberCount(), truth.MemberCount());
    EXPECT_EQ(j["repeated_in_topic"].GetUint64(), want_repeats);
    return total;
  };
  const int total = check(0);
  ASSERT_EQ(
      Rtdw({"offsets", "set", "--job", "log-split", "--topic", "ODS_BASE_LOG", "--to-earliest"})
          .exit_code,
      0);
  ASSERT_EQ(stack_->RunToIdle("log-split"), 0) << stack_->DaemonLog();
  check(total);
}

}  // namespace
}  // namespace rtdw::testing
