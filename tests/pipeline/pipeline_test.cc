// The whole pipeline on the real local stack: rtdw-gen -> rtdw-kafka-mock -> rtdwd (four jobs)
// -> redis-server / rtdw-es-lite, compared document by document with the generator's truth.
#include <signal.h>

#include <fstream>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "rapidjson/document.h"
#include "tests/pipeline/pipeline_stack.h"

namespace rtdw::testing {
namespace {

// Dimension rows first (docs/FORMATS.md §4: tests that compare with a truth load dimensions first).
void LoadDims(PipelineStack& stack) {
  ASSERT_TRUE(stack.GenerateDb().ok());
  ASSERT_EQ(stack.RunToIdle("db-split"), 0) << stack.DaemonLog();
  auto keys = stack.redis().Command({"EVAL", "return #redis.call('keys','DIM:*')", "0"});
  ASSERT_TRUE(keys.ok()) << keys.status();
  ASSERT_EQ(*keys, std::to_string(stack.ExpectedDimKeys()));
}

TEST(PipelineTest, AllFourJobsMatchTheTruthDocumentByDocument) {
  PipelineStack stack;
  ASSERT_TRUE(stack.Start().ok());
  LoadDims(stack);
  ASSERT_TRUE(stack.GenerateLogs().ok());
  ASSERT_EQ(stack.RunToIdle(), 0) << stack.DaemonLog();

  auto dau = stack.CompareDau();
  ASSERT_TRUE(dau.ok()) << dau.status();
  EXPECT_TRUE(dau->exact()) << dau->Summary();
  EXPECT_GT(dau->expected, 500u);
  auto ow = stack.CompareOrderWide();
  ASSERT_TRUE(ow.ok()) << ow.status();
  EXPECT_TRUE(ow->exact()) << ow->Summary();
  EXPECT_GT(ow->expected, 1000u);
}

// The batch transaction killed (SIGKILL) at each of its points, several times, then restarted:
// ES ends up with every expected document exactly once, with the right content.
TEST(PipelineTest, TransactionKilledAtEveryPointConvergesToTheTruth) {
  StackOptions o;
  // Many batches, many commits: every run below must still find records to commit (order-wide's
  // ~2,000 records last ~20 batches of 100; at 300 a late run could find it drained and exit 0).
  o.batch_max_records = 100;
  PipelineStack stack(o);
  ASSERT_TRUE(stack.Start().ok());
  LoadDims(stack);
  ASSERT_TRUE(stack.GenerateLogs().ok());
  ASSERT_EQ(stack.RunToIdle("log-split"), 0) << stack.DaemonLog();

  const char* const kFaults[] = {"before_commit:3",  "after_commit:2",  "mid_delivery:2",
                                 "after_delivery:2", "after_commit:1",  "mid_delivery:1",
                                 "before_commit:1",  "after_delivery:1"};
  for (const char* fault : kFaults) {
    for (const char* job : {"dau", "order-wide"}) {
      int code = stack.RunToIdle(job, 1.5, {absl::StrCat("RTDW_TEST_FAULT=", fault)});
      EXPECT_EQ(code, 128 + SIGKILL) << job << " should have died at " << fault << "\n"
                                     << stack.DaemonLog();
    }
  }
  ASSERT_EQ(stack.RunToIdle("dau"), 0) << stack.DaemonLog();
  ASSERT_EQ(stack.RunToIdle("order-wide"), 0) << stack.DaemonLog();
  ExpectEsExact(stack);
}

// The seed's state-restoration problem, reproduced and beaten: the daemon dies right after the
// de-dup state of its first batch was committed and before anything reached ES. The seed would
// now filter those mids out forever; rtdw's journal owes their documents and delivers them.
TEST(PipelineTest, DeathAfterDedupStateBeforeEsWriteLosesNoUser) {
  PipelineStack stack;
  ASSERT_TRUE(stack.Start().ok());
  LoadDims(stack);
  ASSERT_TRUE(stack.GenerateLogs().ok());
  ASSERT_EQ(stack.RunToIdle("log-split"), 0) << stack.DaemonLog();

  ASSERT_EQ(stack.RunToIdle("dau", 1.5, {"RTDW_TEST_FAULT=after_commit:1"}), 128 + SIGKILL)
      << stack.DaemonLog();
  // The moment of the seed's bug: state says "seen", ES has nothing.
  CommandResult state = RunCommand({BinDir() + "/rtdw", "--state-dir", stack.dir().Sub("state"),
                                    "--job", "dau", "--json", "journal", "list"});
  ASSERT_EQ(state.exit_code, 0) << state.err;
  EXPECT_NE(state.out.find("\"seq\""), std::string::npos) << "one entry owed: " << state.out;
  auto before = stack.EsDocuments("gmall_dau_info_*");
  ASSERT_TRUE(before.ok());
  EXPECT_EQ(before->size(), 0u);

  // Restart: the start-up replay delivers what was owed, then the rest is consumed.
  ASSERT_EQ(stack.RunToIdle("dau"), 0) << stack.DaemonLog();
  auto dau = stack.CompareDau();
  ASSERT_TRUE(dau.ok()) << dau.status();
  EXPECT_TRUE(dau->exact()) << dau->Summary();
  ExpectVerifyOk(stack);
}

}  // namespace
}  // namespace rtdw::testing

namespace rtdw::testing {
namespace {

// order-wide's join relies on co-partitioning: different partition counts are refused (exit 1).
TEST(PipelineTest, OrderWideRefusesTopicsWithDifferentPartitionCounts) {
  KafkaMock kafka;
  ASSERT_TRUE(
      kafka.Start({.brokers = 1, .partitions = 4, .topics = {"DWD_ORDER_DETAIL_I:3"}}).ok());
  RedisServer redis;
  ASSERT_TRUE(redis.Start().ok());
  EsLite es;
  ASSERT_TRUE(es.Start().ok());
  TempDir dir;
  std::string config = dir.Sub("rtdw.toml");
  std::ofstream(config) << "[kafka]\nbrokers = \"" << kafka.bootstrap() << "\"\n[redis]\nurl = \""
                        << redis.url() << "\"\n[es]\nurl = \"" << es.url()
                        << "\"\n[state]\ndir = \"" << dir.Sub("state")
                        << "\"\n[http]\nlisten = \"\"\n[jobs]\n";
  CommandResult r = RunCommand(
      {BinDir() + "/rtdwd", "--config", config, "--job", "order-wide", "--exit-when-idle", "1"},
      std::chrono::seconds(60));
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find("different partition counts (4 vs 3)"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace rtdw::testing

namespace rtdw::testing {
namespace {

// The pipeline against es-lite presenting itself as each supported server other than the default
// Elasticsearch 8 (which every other pipeline test uses): GET / recognised, product header absent
// where that server sends none, _id sorts allowed there (so refusing them is not what keeps rtdw
// correct), and the day ends with ES == truth and `rtdw verify` ok (its scan pages on `mid`).
// Smoke size: each run is a few seconds.
class PipelineOnServerTest : public ::testing::TestWithParam<std::string> {};

TEST_P(PipelineOnServerTest, EndsWithEsEqualToTheTruth) {
  StackOptions o;
  o.es_args = {"--identity", GetParam()};
  o.mids = 600;
  o.users = 200;
  o.events = 6000;
  o.orders = 200;
  PipelineStack stack(o);
  ASSERT_TRUE(stack.Start().ok());
  LoadDims(stack);
  ASSERT_TRUE(stack.GenerateLogs().ok());
  std::string log;
  ASSERT_EQ(stack.RunToIdle("", 1.5, {}, &log), 0) << log;
  EXPECT_EQ(log.find("Elasticsearch at"), std::string::npos) << log;
  ExpectEsExact(stack);
  ExpectVerifyOk(stack);
}

INSTANTIATE_TEST_SUITE_P(Servers, PipelineOnServerTest,
                         ::testing::Values("es-7", "es-7.10", "opensearch-2"),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           std::string name = info.param;
                           for (char& c : name) {
                             if (!isalnum(static_cast<unsigned char>(c))) c = '_';
                           }
                           return name;
                         });

// `rtdw verify` and `rtdw dedup restore` read ES with searches, which see only refreshed writes:
// they must refresh first. The day's index is made before rtdwd with refresh_interval -1 (and so
// without the DAU template: `mid` is text, which cannot be sorted on — the scan's fallback to
// `mid.keyword` runs too, never `_id`, which this ES 8 refuses). Without their _refresh, verify
// would find no document and say "differs", and the restore would restore nothing.
TEST(PipelineTest, VerifyAndDedupRestoreRefreshBeforeReading) {
  PipelineStack stack;
  ASSERT_TRUE(stack.Start().ok());
  LoadDims(stack);
  ASSERT_TRUE(stack.GenerateLogs().ok());
  const std::string index = "gmall_dau_info_" + stack.options().day;
  CommandResult made =
      RunCommand({"curl", "-s", "-XPUT", stack.es().url() + "/" + index, "-H",
                  "Content-Type: application/json", "-d",
                  R"({"settings":{"index":{"refresh_interval":"-1","number_of_replicas":0}}})"});
  ASSERT_NE(made.out.find("\"acknowledged\":true"), std::string::npos) << made.out;
  ASSERT_EQ(stack.RunToIdle(), 0) << stack.DaemonLog();
  CommandResult count = RunCommand({"curl", "-s", stack.es().url() + "/" + index + "/_count"});
  ASSERT_NE(count.out.find("\"count\":0"), std::string::npos)
      << "the index was refreshed already; the test would prove nothing: " << count.out;
  ExpectVerifyOk(stack);
  // One more document, not refreshed (the index refreshes only when asked): dedup restore must
  // see it — its lineage is a mid the state does not have, so it is restored.
  RunCommand({"curl", "-s", "-XPOST", stack.es().url() + "/" + index + "/_refresh"});
  CommandResult counted = RunCommand({"curl", "-s", stack.es().url() + "/" + index + "/_count"});
  rapidjson::Document cd;
  cd.Parse(counted.out.c_str());
  ASSERT_TRUE(cd.IsObject() && cd.HasMember("count")) << counted.out;
  const uint64_t before = cd["count"].GetUint64();
  ASSERT_GT(before, 100u);
  CommandResult extra2 = RunCommand(
      {"curl", "-s", "-XPUT", stack.es().url() + "/" + index + "/_doc/zz-extra-2", "-H",
       "Content-Type: application/json", "-d",
       R"({"mid":"zz-extra-2","ts":1795968000000,"rtdw_src":"DWD_PAGE_LOG_TOPIC/0/999998"})"});
  ASSERT_NE(extra2.out.find("\"created\""), std::string::npos) << extra2.out;
  CommandResult restore = RunCommand({BinDir() + "/rtdw", "--state-dir", stack.state_dir(),
                                      "--json", "dedup", "restore", "--from-es", "--day",
                                      stack.options().day, "--es-url", stack.es().url()});
  ASSERT_EQ(restore.exit_code, 0) << restore.out << restore.err;
  EXPECT_NE(restore.out.find(absl::StrCat("\"documents\":", before + 1)), std::string::npos)
      << "expected " << before + 1 << " documents: " << restore.out;
  EXPECT_NE(restore.out.find("\"restored\":1,"), std::string::npos) << restore.out;
}

// A server rtdw does not support is refused at start-up (exit 1), naming what was found and what
// is supported; waiting would not fix it.
TEST(PipelineTest, UnsupportedServerIsRefusedAtStartUp) {
  struct Case {
    std::string identity;
    std::string found;
  };
  for (const Case& c : {Case{"es-6", "Elasticsearch 6.8.23 is too old"},
                        Case{"other", "neither Elasticsearch's nor OpenSearch's"}}) {
    SCOPED_TRACE(c.identity);
    StackOptions o;
    o.es_args = {"--identity", c.identity};
    PipelineStack stack(o);
    ASSERT_TRUE(stack.Start().ok());
    std::string log;
    EXPECT_EQ(stack.RunToIdle("dau", 1.5, {}, &log), 1) << log;
    EXPECT_NE(log.find(c.found), std::string::npos) << log;
    EXPECT_NE(log.find("rtdw supports Elasticsearch 7.10+ and 8.x, and OpenSearch 1.3+ and 2.x"),
              std::string::npos)
        << log;
  }
}

}  // namespace
}  // namespace rtdw::testing
