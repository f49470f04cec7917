// db-split end to end: the real rtdwd against rtdw-kafka-mock and a real redis-server.
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <string>
#include <thread>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "rapidjson/document.h"
#include "tests/harness/kafka_reader.h"
#include "tests/harness/services.h"

namespace rtdw::testing {
namespace {

std::string WriteConfig(const TempDir& dir, const std::string& brokers, const std::string& redis,
                        int batch_max_records = 1000, int batch_max_ms = 50) {
  std::string path = dir.Sub("rtdw.toml");
  std::ofstream(path) << "[kafka]\nbrokers = \"" << brokers << "\"\n[redis]\nurl = \"" << redis
                      << "\"\n[es]\n[state]\ndir = \"" << dir.Sub("state")
                      << "\"\n[http]\nlisten = \"\"\n[jobs]\nenabled = [\"db-split\"]\n"
                      << "batch_max_records = " << batch_max_records
                      << "\nbatch_max_ms = " << batch_max_ms << "\n";
  return path;
}

std::string Maxwell(const std::string& table, const std::string& type, const std::string& data,
                    int64_t ts = 1764036001) {
  return absl::StrCat("{\"database\":\"gmall\",\"table\":\"", table, "\",\"type\":\"", type,
                      "\",\"ts\":", ts, ",\"xid\":1,\"commit\":true,\"data\":", data, "}");
}

std::string UserRow(int id, int level) {
  return absl::StrCat("{\"id\":", id, ",\"login_name\":\"u", id, "\",\"user_level\":\"", level,
                      "\",\"birthday\":\"1990-0", id % 9 + 1, "-15\",\"gender\":\"",
                      id % 2 ? "M" : "F", "\"}");
}

std::string OrderRow(int id, const char* status) {
  return absl::StrCat("{\"id\":", id, ",\"user_id\":", id % 10, ",\"province_id\":", id % 34 + 1,
                      ",\"order_status\":\"", status, "\",\"total_amount\":8197.00,",
                      "\"create_time\":\"2025-11-25 10:00:00\"}");
}

std::string DetailRow(int id, int order_id) {
  return absl::StrCat("{\"id\":", id, ",\"order_id\":", order_id, ",\"sku_id\":", id % 50,
                      ",\"sku_num\":1,\"order_price\":99.5}");
}

rapidjson::Document Parse(const std::string& text) {
  rapidjson::Document d;
  d.Parse(text.c_str(), text.size());
  return d;
}

int RunToIdle(const std::string& config, std::string* err = nullptr) {
  CommandResult r = RunCommand(
      {BinDir() + "/rtdwd", "--config", config, "--job", "db-split", "--exit-when-idle", "1"},
      std::chrono::seconds(180));
  if (err) *err = r.err;
  return r.exit_code;
}

TEST(DbSplitJobTest, RoutesFactsDimsSkipsAndDeadLetters) {
  KafkaMock kafka;
  RedisServer redis;
  ASSERT_TRUE(kafka.Start({.brokers = 1, .partitions = 3, .topics = {}}).ok());
  ASSERT_TRUE(redis.Start().ok());
  std::vector<std::string> in = {
      Maxwell("user_info", "bootstrap-start", "{}"),
      Maxwell("user_info", "bootstrap-insert", UserRow(1, 1)),
      Maxwell("user_info", "bootstrap-insert", UserRow(2, 1)),
      Maxwell("user_info", "bootstrap-complete", "{}"),
      Maxwell("base_province", "insert", "{\"id\":11,\"name\":\"Beijing\",\"iso_code\":\"CN-11\"}"),
      Maxwell("order_info", "insert", OrderRow(3501, "1001")),
      Maxwell("order_detail", "insert", DetailRow(9001, 3501)),
      Maxwell("order_detail", "insert", DetailRow(9002, 3501)),
      Maxwell("order_info", "update", OrderRow(3501, "1002")),
      Maxwell("order_info", "bootstrap-insert", OrderRow(3502, "1001")),
      Maxwell("user_info", "delete", UserRow(2, 1)),
      Maxwell("sku_info", "insert", "{\"id\":1}"),  // in neither list: skipped
      Maxwell("order_info", "table-create", "{}"),  // DDL: skipped
      "{not json",
      "{\"database\":\"gmall\",\"type\":\"insert\",\"data\":{\"id\":1}}",  // no table
      Maxwell("user_info", "insert", "{\"name\":\"no id\"}"),              // dim without id
      Maxwell("order_info", "insert", "[1,2]"),                            // data not object
  };
  // Keyed by row id as Maxwell does (one key here: one partition, so order is the input's).
  ASSERT_TRUE(
      ProduceAll(kafka.bootstrap(), "ODS_BASE_DB", in, std::vector<std::string>(in.size(), "k"))
          .ok());
  TempDir dir;
  std::string err;
  ASSERT_EQ(RunToIdle(WriteConfig(dir, kafka.bootstrap(), redis.url()), &err), 0) << err;

  auto info_i = ReadTopic(kafka.bootstrap(), "DWD_ORDER_INFO_I");
  auto info_u = ReadTopic(kafka.bootstrap(), "DWD_ORDER_INFO_U");
  auto detail_i = ReadTopic(kafka.bootstrap(), "DWD_ORDER_DETAIL_I");
  auto dead = ReadTopic(kafka.bootstrap(), "DWD_DEAD_LETTER");
  ASSERT_TRUE(info_i.ok() && info_u.ok() && detail_i.ok() && dead.ok());
  ASSERT_EQ(info_i->size(), 2u) << "insert + bootstrap-insert of a fact table";
  ASSERT_EQ(info_u->size(), 1u);
  ASSERT_EQ(detail_i->size(), 2u);
  auto order = Parse((*info_i)[0].value);
  EXPECT_EQ(order["id"].GetInt64(), 3501);
  EXPECT_DOUBLE_EQ(order["total_amount"].GetDouble(), 8197.0) << "numbers stay numbers";
  EXPECT_EQ((*info_i)[0].key, "3501");
  for (const auto& d : *detail_i) {
    EXPECT_EQ(d.key, "3501") << "order_detail is keyed by its order id";
    EXPECT_EQ(d.partition, (*info_i)[0].partition) << "co-partitioned with its order";
    EXPECT_EQ(d.headers.at("rtdw-src").rfind("ODS_BASE_DB/", 0), 0u);
  }
  EXPECT_STREQ(Parse((*info_u)[0].value)["order_status"].GetString(), "1002");

  auto user1 = redis.Command({"GET", "DIM:USER_INFO:1"});
  ASSERT_TRUE(user1.ok());
  EXPECT_STREQ(Parse(*user1)["login_name"].GetString(), "u1");
  EXPECT_EQ(*redis.Command({"EXISTS", "DIM:USER_INFO:2"}), "0") << "delete removes the key";
  EXPECT_STREQ(Parse(*redis.Command({"GET", "DIM:BASE_PROVINCE:11"}))["name"].GetString(),
               "Beijing");
  EXPECT_EQ(*redis.Command({"EXISTS", "DIM:SKU_INFO:1"}), "0");

  std::multiset<std::string> reasons;
  for (const auto& d : *dead) reasons.insert(d.headers.at("rtdw-reason"));
  EXPECT_EQ(reasons.size(), 4u);
  EXPECT_EQ(reasons.count("not_json"), 1u);
  EXPECT_EQ(reasons.count("no_id"), 1u);
  EXPECT_EQ(reasons.count("no_payload"), 1u);
}

TEST(DbSplitJobTest, TableMovedFromFactsToDimsIsRoutedTheNewWayWithoutRestart) {
  KafkaMock kafka;
  RedisServer redis;
  ASSERT_TRUE(kafka.Start({.brokers = 1, .partitions = 2, .topics = {"DWD_SKU_INFO_I:2"}}).ok());
  ASSERT_TRUE(redis.Start().ok());
  ASSERT_TRUE(
      redis.Command({"SADD", "FACT:TABLES", "order_info", "order_detail", "sku_info"}).ok());
  ASSERT_TRUE(redis.Command({"SADD", "DIM:TABLES", "user_info", "base_province"}).ok());
  TempDir dir;
  std::string config = WriteConfig(dir, kafka.bootstrap(), redis.url(), 100);
  ProcessOptions popts;
  popts.stderr_path = dir.Sub("rtdwd.log");
  auto proc =
      ChildProcess::Start({BinDir() + "/rtdwd", "--config", config, "--job", "db-split"}, popts);
  ASSERT_TRUE(proc.ok());

  ASSERT_TRUE(ProduceAll(kafka.bootstrap(), "ODS_BASE_DB",
                         {Maxwell("sku_info", "insert", "{\"id\":1,\"sku_name\":\"phone\"}")})
                  .ok());
  ASSERT_TRUE(WaitFor(
      [&] {
        auto sku = ReadTopic(kafka.bootstrap(), "DWD_SKU_INFO_I", std::chrono::seconds(5));
        return sku.ok() && sku->size() == 1;
      },
      std::chrono::seconds(30)))
      << ReadFileOrEmpty(dir.Sub("rtdwd.log"));

  // The operator moves sku_info to the dimensions while the job runs.
  ASSERT_TRUE(redis.Command({"SREM", "FACT:TABLES", "sku_info"}).ok());
  ASSERT_TRUE(redis.Command({"SADD", "DIM:TABLES", "sku_info"}).ok());
  ASSERT_TRUE(ProduceAll(kafka.bootstrap(), "ODS_BASE_DB",
                         {Maxwell("sku_info", "insert", "{\"id\":2,\"sku_name\":\"tv\"}")})
                  .ok());
  EXPECT_TRUE(WaitFor(
      [&] {
        auto v = redis.Command({"GET", "DIM:SKU_INFO:2"});
        return v.ok() && v->find("\"tv\"") != std::string::npos;
      },
      std::chrono::seconds(30)))
      << ReadFileOrEmpty(dir.Sub("rtdwd.log"));
  auto sku = ReadTopic(kafka.bootstrap(), "DWD_SKU_INFO_I");
  ASSERT_TRUE(sku.ok());
  EXPECT_EQ(sku->size(), 1u) << "the second row went to Redis, not to the fact topic";
  EXPECT_EQ((*proc)->Stop(), 0) << ReadFileOrEmpty(dir.Sub("rtdwd.log"));
}

// A value of `INFO commandstats` for `command` (e.g. rejected_calls of evalsha); 0 when absent.
int64_t CommandStat(const RedisServer& redis, const std::string& command,
                    const std::string& field) {
  auto info = redis.Command({"INFO", "commandstats"});
  if (!info.ok()) return 0;
  const std::string line = absl::StrCat("cmdstat_", command, ":");
  size_t at = info->find(line);
  if (at == std::string::npos) return 0;
  at = info->find(field + "=", at);
  if (at == std::string::npos) return 0;
  return std::stoll(info->substr(at + field.size() + 1));
}

// The batch's dimension writes go to Redis in several script runs sent while the batch is
// transformed (kWritesPerRun = 256 writes each); its facts must wait for the answer of every run.
// Here the first run (user rows) applies and a later one (a province row, which db-split's Redis
// user may not write) is refused, again and again: no fact of the batch may reach Kafka, however
// often the batch is retried, until the province row is written; then all of it arrives. Facts
// produced when the first run was answered (or before any answer) would show up in the topic.
TEST(DbSplitJobTest, FactsWaitForEveryScriptRunOfTheirBatchsDimensionWrites) {
  KafkaMock kafka;
  RedisServer redis;
  ASSERT_TRUE(kafka.Start({.brokers = 1, .partitions = 1, .topics = {"DWD_ORDER_INFO_I:1"}}).ok());
  ASSERT_TRUE(redis.Start().ok());
  // db-split's user may write every key it needs but the province rows.
  ASSERT_TRUE(
      redis
          .Command({"ACL", "SETUSER", "dbsplit", "on", ">pw", "resetkeys", "~DIM:USER_INFO:*",
                    "~DIMPOS:*", "~DIMFENCE:*", "~FACT:TABLES", "~DIM:TABLES", "&*", "+@all"})
          .ok());
  const std::string url = absl::StrCat("redis://dbsplit:pw@127.0.0.1:", redis.port(), "/0");
  constexpr int kUsers = 300;  // more than one run's worth before the province row
  std::vector<std::string> in;
  for (int id = 1; id <= kUsers; ++id) in.push_back(Maxwell("user_info", "insert", UserRow(id, 1)));
  in.push_back(Maxwell("base_province", "insert", "{\"id\":7,\"name\":\"Hebei\"}"));
  in.push_back(Maxwell("order_info", "insert", OrderRow(3501, "1001")));
  in.push_back(Maxwell("order_info", "insert", OrderRow(3502, "1001")));
  ASSERT_TRUE(
      ProduceAll(kafka.bootstrap(), "ODS_BASE_DB", in, std::vector<std::string>(in.size(), "k"))
          .ok());
  TempDir dir;
  // One batch for all of it (the poll waits up to 1 s for 2000 records).
  const std::string config = WriteConfig(dir, kafka.bootstrap(), url, 2000, 1000);
  ProcessOptions popts;
  popts.stderr_path = dir.Sub("rtdwd.log");
  auto proc =
      ChildProcess::Start({BinDir() + "/rtdwd", "--config", config, "--job", "db-split"}, popts);
  ASSERT_TRUE(proc.ok());
  auto facts = [&] {
    auto f = ReadTopic(kafka.bootstrap(), "DWD_ORDER_INFO_I", std::chrono::seconds(10));
    return f.ok() ? static_cast<int>(f->size()) : -1;
  };
  // The refused run was tried at least three times (the batch ran again twice), while the first
  // run's rows are in Redis.
  ASSERT_TRUE(WaitFor([&] { return CommandStat(redis, "evalsha", "rejected_calls") >= 3; },
                      std::chrono::seconds(60)))
      << ReadFileOrEmpty(dir.Sub("rtdwd.log"));
  EXPECT_EQ(*redis.Command({"EXISTS", "DIM:USER_INFO:1"}), "1");
  EXPECT_EQ(*redis.Command({"EXISTS", "DIM:BASE_PROVINCE:7"}), "0");
  EXPECT_EQ(facts(), 0) << "a fact reached Kafka before its batch's dimension rows were written";

  // Redis accepts the province row: the batch commits, every fact once.
  ASSERT_TRUE(redis.Command({"ACL", "SETUSER", "dbsplit", "~*"}).ok());
  EXPECT_TRUE(WaitFor([&] { return facts() == 2; }, std::chrono::seconds(60)))
      << ReadFileOrEmpty(dir.Sub("rtdwd.log"));
  EXPECT_STREQ(Parse(*redis.Command({"GET", "DIM:BASE_PROVINCE:7"}))["name"].GetString(), "Hebei");
  EXPECT_STREQ(Parse(*redis.Command({"GET", absl::StrCat("DIM:USER_INFO:", kUsers)}))["login_name"]
                   .GetString(),
               absl::StrCat("u", kUsers).c_str());
  EXPECT_EQ((*proc)->Stop(), 0) << ReadFileOrEmpty(dir.Sub("rtdwd.log"));
  EXPECT_EQ(facts(), 2);
}

// Many updates per row, kill -9 at random moments: in the end Redis holds each row's last
// version, every fact row arrived, and the updates of one order are in order in the DWD topic.
TEST(DbSplitJobTest, KillNineLoopKeepsPerIdOrderAndLosesNothing) {
  const bool full = getenv("RTDW_TEST_SIZE") && std::string(getenv("RTDW_TEST_SIZE")) == "full";
  const int kRows = full ? 2000 : 300;
  const int kVersions = 20;
  const int kKills = full ? 100 : 20;
  KafkaMock kafka;
  RedisServer redis;
  ASSERT_TRUE(kafka.Start({.brokers = 1, .partitions = 4, .topics = {}}).ok());
  ASSERT_TRUE(redis.Start().ok());
  std::vector<std::string> in, keys;
  for (int v = 0; v < kVersions; ++v) {
    for (int id = 1; id <= kRows; ++id) {
      in.push_back(Maxwell("user_info", v == 0 ? "insert" : "update", UserRow(id, v)));
      keys.push_back(std::to_string(id));
      in.push_back(Maxwell("order_info", v == 0 ? "insert" : "update",
                           OrderRow(id, std::to_string(1000 + v).c_str())));
      keys.push_back(std::to_string(id));
    }
  }
  ASSERT_TRUE(ProduceAll(kafka.bootstrap(), "ODS_BASE_DB", in, keys).ok());
  TempDir dir;
  std::string config = WriteConfig(dir, kafka.bootstrap(), redis.url(), 200);
  std::mt19937 rng(7);
  for (int k = 0; k < kKills; ++k) {
    ProcessOptions popts;
    popts.stderr_path = dir.Sub("rtdwd.log");
    auto proc =
        ChildProcess::Start({BinDir() + "/rtdwd", "--config", config, "--job", "db-split"}, popts);
    ASSERT_TRUE(proc.ok());
    std::this_thread::sleep_for(std::chrono::milliseconds(100 + rng() % 700));
    (*proc)->Kill9();
  }
  std::string err;
  ASSERT_EQ(RunToIdle(config, &err), 0) << err;

  for (int id = 1; id <= kRows; ++id) {
    auto v = redis.Command({"GET", absl::StrCat("DIM:USER_INFO:", id)});
    ASSERT_TRUE(v.ok());
    ASSERT_STREQ(Parse(*v)["user_level"].GetString(), std::to_string(kVersions - 1).c_str())
        << "row " << id << " must end at its last version";
  }
  auto updates = ReadTopic(kafka.bootstrap(), "DWD_ORDER_INFO_U", std::chrono::seconds(120));
  ASSERT_TRUE(updates.ok()) << updates.status();
  std::map<int64_t, int> last_status;
  std::set<std::string> srcs;
  for (const auto& rec : *updates) {
    auto d = Parse(rec.value);
    int64_t id = d["id"].GetInt64();
    int status = std::stoi(d["order_status"].GetString());
    // A restart may re-send a tail of updates, so a status may repeat or step back only to a
    // version re-sent after a crash; within the first delivery it only rises. Check that the
    // sequence of distinct statuses per id ends at the last version.
    last_status[id] = status;
    srcs.insert(rec.headers.at("rtdw-src"));
  }
  EXPECT_EQ(srcs.size(), static_cast<size_t>(kRows * (kVersions - 1))) << "every update arrived";
  for (int id = 1; id <= kRows; ++id) {
    EXPECT_EQ(last_status[id], 1000 + kVersions - 1) << "order " << id;
  }
}

}  // namespace
}  // namespace rtdw::testing
