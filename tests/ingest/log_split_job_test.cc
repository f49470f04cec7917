// log-split end to end: the real rtdwd against a real Kafka-protocol broker (rtdw-kafka-mock).
#include <signal.h>

#include <fstream>
#include <map>
#include <random>
#include <set>
#include <string>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "rapidjson/document.h"
#include "tests/harness/kafka_reader.h"
#include "tests/harness/services.h"

namespace rtdw::testing {
namespace {

std::string WriteConfig(const TempDir& dir, const std::string& brokers, int batch_max_records) {
  std::string path = dir.Sub("rtdw.toml");
  std::ofstream(path) << "[kafka]\nbrokers = \"" << brokers
                      << "\"\n[redis]\n[es]\n[state]\ndir = \"" << dir.Sub("state")
                      << "\"\n[http]\nlisten = \"\"\n[jobs]\nenabled = "
                      << "[\"log-split\"]\nbatch_max_records = " << batch_max_records
                      << "\nbatch_max_ms = 50\n";
  return path;
}

rapidjson::Document Parse(const std::string& text) {
  rapidjson::Document d;
  d.Parse(text.c_str(), text.size());
  return d;
}

std::string PageRecord(int i, int64_t ts, int displays, int actions) {
  std::string rec = absl::StrCat(
      "{\"common\":{\"ar\":\"", i % 34 + 1,
      "\",\"ba\":\"Xiaomi\",\"ch\":\"xiaomi\",\"is_new\":\"1\","
      "\"md\":\"Xiaomi 10\",\"mid\":\"mid_",
      i % 97, "\",\"os\":\"Android 11.0\",\"uid\":\"", i,
      "\",\"vc\":\"v2.1.134\"},\"page\":{\"during_time\":", 1000 + i,
      ",\"item\":\"31\",\"item_type\":\"sku_id\",\"last_page_id\":\"home\",\"page_id\":"
      "\"good_detail\",\"source_type\":\"recommend\"}");
  if (displays > 0) {
    rec += ",\"displays\":[";
    for (int d = 0; d < displays; ++d) {
      absl::StrAppend(&rec, d ? "," : "", "{\"display_type\":\"query\",\"item\":\"", d,
                      "\",\"item_type\":\"sku_id\",\"order\":", d + 1, ",\"pos_id\":", d % 5, "}");
    }
    rec += "]";
  }
  if (actions > 0) {
    rec += ",\"actions\":[";
    for (int a = 0; a < actions; ++a) {
      absl::StrAppend(&rec, a ? "," : "", "{\"action_id\":\"cart_add\",\"item\":\"", a,
                      "\",\"item_type\":\"sku_id\",\"ts\":", ts + a, "}");
    }
    rec += "]";
  }
  absl::StrAppend(&rec, ",\"ts\":", ts, "}");
  return rec;
}

TEST(LogSplitJobTest, SplitsRoutesAndDeadLettersEndToEnd) {
  KafkaMock kafka;
  ASSERT_TRUE(kafka.Start({.brokers = 1, .partitions = 2, .topics = {}}).ok());
  std::vector<std::string> input = {
      // 0: start
      "{\"common\":{\"mid\":\"mid_1\",\"uid\":\"7\",\"ar\":\"1\",\"ch\":\"xiaomi\",\"is_new\":"
      "\"1\"},"
      "\"start\":{\"entry\":\"icon\",\"loading_time\":2354,\"open_ad_id\":7,\"open_ad_ms\":5213,"
      "\"open_ad_skip_ms\":0},\"ts\":1764036000000}",
      // 1: page with 2 displays and 1 action
      PageRecord(1, 1764036001000, 2, 1),
      // 2: error record (goes whole to the error topic)
      "{\"common\":{\"mid\":\"mid_2\"},\"page\":{\"page_id\":\"home\"},\"err\":{\"error_code\":"
      "1245,"
      "\"msg\":\"boom\"},\"ts\":1764036002000}",
      // 3..6: malformed
      "not json at all",
      "{\"common\":{\"uid\":\"1\"},\"page\":{\"page_id\":\"home\"},\"ts\":1}",
      "{\"common\":{\"mid\":\"m\"},\"page\":{\"page_id\":\"home\"},\"ts\":\"yesterday\"}",
      std::string(100000, '[') + std::string(100000, ']'),
  };
  ASSERT_TRUE(ProduceAll(kafka.bootstrap(), "ODS_BASE_LOG", input).ok());

  TempDir dir;
  std::string config = WriteConfig(dir, kafka.bootstrap(), 1000);
  CommandResult r = RunCommand(
      {BinDir() + "/rtdwd", "--config", config, "--job", "log-split", "--exit-when-idle", "1"},
      std::chrono::seconds(60));
  ASSERT_EQ(r.exit_code, 0) << r.err;

  auto start = ReadTopic(kafka.bootstrap(), "DWD_START_LOG_TOPIC");
  auto page = ReadTopic(kafka.bootstrap(), "DWD_PAGE_LOG_TOPIC");
  auto display = ReadTopic(kafka.bootstrap(), "DWD_PAGE_DISPLAY_TOPIC");
  auto action = ReadTopic(kafka.bootstrap(), "DWD_PAGE_ACTION_TOPIC");
  auto error = ReadTopic(kafka.bootstrap(), "DWD_ERROR_LOG_TOPIC");
  auto dead = ReadTopic(kafka.bootstrap(), "DWD_DEAD_LETTER");
  ASSERT_TRUE(start.ok() && page.ok() && display.ok() && action.ok() && error.ok() && dead.ok());
  ASSERT_EQ(start->size(), 1u);
  ASSERT_EQ(page->size(), 1u);
  ASSERT_EQ(display->size(), 2u);
  ASSERT_EQ(action->size(), 1u);
  ASSERT_EQ(error->size(), 1u);
  ASSERT_EQ(dead->size(), 4u);

  // StartLog fields, types and renames; key = mid; rtdw-src names the ODS record.
  auto s = Parse((*start)[0].value);
  EXPECT_EQ((*start)[0].key, "mid_1");
  EXPECT_STREQ(s["mid"].GetString(), "mid_1");
  EXPECT_STREQ(s["user_id"].GetString(), "7");
  EXPECT_STREQ(s["province_id"].GetString(), "1");
  EXPECT_STREQ(s["open_ad_id"].GetString(), "7");
  EXPECT_EQ(s["loading_time_ms"].GetInt64(), 2354);
  EXPECT_EQ(s["ts"].GetInt64(), 1764036000000);
  EXPECT_FALSE(s.HasMember("model")) << "absent source fields are omitted";
  EXPECT_EQ((*start)[0].headers.at("rtdw-src").rfind("ODS_BASE_LOG/", 0), 0u);

  auto p = Parse((*page)[0].value);
  EXPECT_STREQ(p["page_id"].GetString(), "good_detail");
  EXPECT_STREQ(p["page_item"].GetString(), "31");
  EXPECT_EQ(p["during_time"].GetInt64(), 1001);
  std::set<std::string> idx;
  for (const auto& d : *display) {
    auto dj = Parse(d.value);
    EXPECT_TRUE(dj["display_order"].IsString());
    EXPECT_TRUE(dj["display_pos_id"].IsString());
    EXPECT_STREQ(dj["page_id"].GetString(), "good_detail");
    EXPECT_EQ(d.headers.at("rtdw-src"), (*page)[0].headers.at("rtdw-src"));
    idx.insert(d.headers.at("rtdw-idx"));
  }
  EXPECT_EQ(idx, (std::set<std::string>{"0", "1"}));
  EXPECT_EQ(Parse((*action)[0].value)["action_ts"].GetInt64(), 1764036001000);
  EXPECT_EQ((*error)[0].value, input[2]) << "an error record goes whole and unchanged";

  std::multiset<std::string> reasons;
  for (const auto& d : *dead) {
    auto dj = Parse(d.value);
    ASSERT_TRUE(dj.IsObject()) << d.value.substr(0, 200);
    EXPECT_STREQ(dj["job"].GetString(), "log-split");
    EXPECT_EQ(d.headers.at("rtdw-reason"), dj["reason"].GetString());
    EXPECT_TRUE(dj.HasMember("detail") && dj.HasMember("src") && dj.HasMember("ts_ingest"));
    reasons.insert(dj["reason"].GetString());
  }
  EXPECT_EQ(reasons, (std::multiset<std::string>{"not_json", "no_mid", "bad_type", "too_deep"}));
}

// Kill -9 at random moments, restart each time: in the end every input record's outputs are
// there (duplicates allowed: at-least-once, recognisable by rtdw-src + rtdw-idx).
TEST(LogSplitJobTest, KillNineLoopLosesNothing) {
  const bool full = getenv("RTDW_TEST_SIZE") && std::string(getenv("RTDW_TEST_SIZE")) == "full";
  const int kRecords = full ? 200000 : 30000;
  const int kKills = full ? 100 : 20;
  KafkaMock kafka;
  ASSERT_TRUE(kafka.Start({.brokers = 1, .partitions = 4, .topics = {}}).ok());
  std::vector<std::string> input;
  std::vector<std::string> keys;
  std::mt19937 rng(42);
  int expected_displays = 0;
  for (int i = 0; i < kRecords; ++i) {
    int displays = static_cast<int>(rng() % 3);
    expected_displays += displays;
    input.push_back(PageRecord(i, 1764036000000 + i, displays, 0));
  }
  ASSERT_TRUE(ProduceAll(kafka.bootstrap(), "ODS_BASE_LOG", input).ok());

  TempDir dir;
  std::string config = WriteConfig(dir, kafka.bootstrap(), 100);
  std::uniform_int_distribution<int> delay_ms(100, 900);
  for (int k = 0; k < kKills; ++k) {
    ProcessOptions popts;
    popts.stderr_path = dir.Sub("rtdwd.log");
    auto proc =
        ChildProcess::Start({BinDir() + "/rtdwd", "--config", config, "--job", "log-split"}, popts);
    ASSERT_TRUE(proc.ok());
    std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms(rng)));
    ASSERT_TRUE((*proc)->Running()) << ReadFileOrEmpty(dir.Sub("rtdwd.log"));
    (*proc)->Kill9();
  }
  CommandResult r = RunCommand(
      {BinDir() + "/rtdwd", "--config", config, "--job", "log-split", "--exit-when-idle", "1"},
      std::chrono::seconds(300));
  ASSERT_EQ(r.exit_code, 0) << r.err;

  auto page = ReadTopic(kafka.bootstrap(), "DWD_PAGE_LOG_TOPIC", std::chrono::seconds(120));
  auto display = ReadTopic(kafka.bootstrap(), "DWD_PAGE_DISPLAY_TOPIC", std::chrono::seconds(120));
  ASSERT_TRUE(page.ok()) << page.status();
  ASSERT_TRUE(display.ok()) << display.status();
  std::set<std::string> page_srcs;
  for (const auto& rec : *page) page_srcs.insert(rec.headers.at("rtdw-src"));
  std::set<std::string> display_ids;
  for (const auto& rec : *display) {
    display_ids.insert(rec.headers.at("rtdw-src") + "#" + rec.headers.at("rtdw-idx"));
  }
  EXPECT_EQ(page_srcs.size(), static_cast<size_t>(kRecords)) << "every page record arrived";
  EXPECT_EQ(display_ids.size(), static_cast<size_t>(expected_displays));
  EXPECT_GE(page->size(), page_srcs.size());
  std::cout << "kills: " << kKills << ", page records: " << page->size() << " for " << kRecords
            << " inputs (" << page->size() - page_srcs.size() << " re-sent duplicates)\n";
}

}  // namespace
}  // namespace rtdw::testing
