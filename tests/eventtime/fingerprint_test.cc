// State that knows the config it was built under (docs/STATE.md "State
// fingerprint"), through rtdwd and rtdw on the real local services: each fingerprinted setting
// changed in turn stops the start with exit 1 naming the key, its stored and its new value and
// the accepting command; `rtdw meta reset-fingerprint` then lets the job start, and the store
// records the new value (the old config is refused from then on).
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/harness/process.h"
#include "tests/pipeline/pipeline_stack.h"

namespace rtdw::testing {
namespace {

class FingerprintTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(stack_.Start().ok());
    base_ = ReadFileOrEmpty(stack_.config());
    ASSERT_FALSE(base_.empty());
    // The first starts record the fingerprints (with the partition counts).
    for (const char* job : {"dau", "order-wide"}) {
      CommandResult r = Rtdwd(stack_.config(), job);
      ASSERT_EQ(r.exit_code, 0) << r.err;
    }
  }

  CommandResult Rtdwd(const std::string& config, const std::string& job) {
    return RunCommand(
        {BinDir() + "/rtdwd", "--config", config, "--job", job, "--exit-when-idle", "1"},
        std::chrono::seconds(120));
  }
  CommandResult Rtdw(std::vector<std::string> args) {
    std::vector<std::string> argv = {BinDir() + "/rtdw", "--state-dir", stack_.state_dir()};
    argv.insert(argv.end(), args.begin(), args.end());
    return RunCommand(argv, std::chrono::seconds(60));
  }
  // The stack's config with `extra` appended.
  std::string Config(const std::string& name, const std::string& extra) {
    std::string path = stack_.dir().Sub(name + ".toml");
    std::ofstream(path) << base_ << "\n" << extra;
    return path;
  }
  std::string Fingerprint(const std::string& job) {
    CommandResult r = Rtdw({"--job", job, "--json", "meta", "show"});
    EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
    return r.out;
  }

  PipelineStack stack_;
  std::string base_;
};

struct Change {
  const char* job;
  const char* extra;  // appended to the config
  const char* key;    // as the refusal names it
  const char* stored;
  const char* now;
};

TEST_F(FingerprintTest, EachChangedSettingIsRefusedUntilAccepted) {
  const Change changes[] = {
      {"dau", "[jobs.dau]\nsource_topic = \"DWD_START_LOG_TOPIC\"\n", "jobs.dau.source_topic",
       "DWD_PAGE_LOG_TOPIC", "DWD_START_LOG_TOPIC"},
      {"dau", "[jobs.dau]\ntime_zone = \"UTC\"\n", "jobs.dau.time_zone", "Asia/Shanghai", "UTC"},
      {"dau", "[jobs.dau]\nindex_prefix = \"other_dau_\"\n", "jobs.dau.index_prefix",
       "gmall_dau_info_", "other_dau_"},
      {"dau", "[dedup]\nretention_days = 5\n", "dedup.retention_days", "2", "5"},
      {"order-wide", "[jobs.order-wide]\njoin_ttl = 3600\n", "jobs.order-wide.join_ttl", "86400",
       "3600"},
      {"order-wide", "[jobs.order-wide]\nindex_prefix = \"other_ow_\"\n",
       "jobs.order-wide.index_prefix", "gmall_order_wide_", "other_ow_"},
      {"order-wide", "[jobs.order-wide]\ntime_zone = \"UTC\"\n", "jobs.order-wide.time_zone",
       "Asia/Shanghai", "UTC"},
  };
  int n = 0;
  for (const Change& c : changes) {
    SCOPED_TRACE(c.key);
    const std::string changed = Config(absl::StrCat("changed-", n++), c.extra);
    CommandResult r = Rtdwd(changed, c.job);
    EXPECT_EQ(r.exit_code, 1) << r.err;
    EXPECT_TRUE(absl::StrContains(
        r.err, absl::StrCat(c.key, ": stored \"", c.stored, "\", now \"", c.now, "\"")))
        << r.err;
    EXPECT_TRUE(absl::StrContains(r.err, absl::StrCat("rtdw meta reset-fingerprint --job ", c.job)))
        << r.err;
    // Accepting: the changed config starts; the store now records the new value, so the old
    // config is the changed one now.
    CommandResult accept = Rtdw({"--job", c.job, "meta", "reset-fingerprint"});
    ASSERT_EQ(accept.exit_code, 0) << accept.out << accept.err;
    r = Rtdwd(changed, c.job);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_TRUE(absl::StrContains(Fingerprint(c.job), absl::StrCat("=", c.now)));
    r = Rtdwd(stack_.config(), c.job);
    EXPECT_EQ(r.exit_code, 1) << r.err;
    // Back to the stack's config for the next change.
    ASSERT_EQ(Rtdw({"--job", c.job, "meta", "reset-fingerprint"}).exit_code, 0);
    r = Rtdwd(stack_.config(), c.job);
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }
}

// A source topic whose partition count differs from the one the state was built with. The mock
// broker cannot repartition a topic, so the stored count is set to 8 by `rtdw meta
// reset-fingerprint --to` (the topic has 4).
TEST_F(FingerprintTest, ChangedPartitionCountIsRefusedUntilAccepted) {
  CommandResult show = Rtdw({"--job", "dau", "--json", "meta", "show"});
  ASSERT_TRUE(absl::StrContains(show.out, "partitions.DWD_PAGE_LOG_TOPIC=4")) << show.out;
  std::string fp =
      "rtdw-topics/1 job=dau source_topic=DWD_PAGE_LOG_TOPIC time_zone=Asia/Shanghai "
      "index_prefix=gmall_dau_info_ retention_days=2 partitions.DWD_PAGE_LOG_TOPIC=8";
  ASSERT_EQ(Rtdw({"--job", "dau", "meta", "reset-fingerprint", "--to", fp}).exit_code, 0);
  CommandResult r = Rtdwd(stack_.config(), "dau");
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_TRUE(absl::StrContains(
      r.err, "the partition count of topic DWD_PAGE_LOG_TOPIC: stored \"8\", now \"4\""))
      << r.err;
  EXPECT_TRUE(absl::StrContains(r.err, "rtdw meta reset-fingerprint --job dau")) << r.err;
  ASSERT_EQ(Rtdw({"--job", "dau", "meta", "reset-fingerprint"}).exit_code, 0);
  r = Rtdwd(stack_.config(), "dau");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(absl::StrContains(Fingerprint("dau"), "partitions.DWD_PAGE_LOG_TOPIC=4"));
}

}  // namespace
}  // namespace rtdw::testing
