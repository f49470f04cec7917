// Issue 17 for the split jobs, with real rtdwd / rtdw processes against rtdw-kafka-mock and a
// real redis-server:
//  - fencing: a db-split member that lost its partition while it owed a Redis write never puts its
//    old dimension row over the new owner's newer one;
//  - `rtdw offsets set` of db-split bumps the dimension position epoch, so rows read again from
//    an earlier offset are written (without the bump they lose against the stored positions);
//  - dead letters are counted once per record however often their batch ran.
#include <signal.h>

#include <algorithm>
#include <fstream>
#include <iostream>
#include <map>
#include <string>
#include <thread>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "rapidjson/document.h"
#include "tests/harness/kafka_reader.h"
#include "tests/harness/metrics.h"
#include "tests/harness/services.h"

namespace rtdw::testing {
namespace {

std::string Maxwell(const std::string& table, const std::string& type, const std::string& data) {
  return absl::StrCat("{\"database\":\"gmall\",\"table\":\"", table, "\",\"type\":\"", type,
                      "\",\"ts\":1764036001,\"xid\":1,\"commit\":true,\"data\":", data, "}");
}

std::string UserRow(int id, int level) {
  return absl::StrCat("{\"id\":", id, ",\"login_name\":\"u", id, "\",\"user_level\":\"", level,
                      "\"}");
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// A sample of `name` whose labels include every one of `labels` (`key="value"` texts); -1 when
// there is none.
double SampleWith(const std::string& page, const std::string& name,
                  const std::vector<std::string>& labels) {
  return SampleSum(page, name, labels).value_or(-1);
}

std::string LoneConfig(const TempDir& dir, const std::string& brokers, const std::string& redis_url,
                       int http_port = 0) {
  std::string path = dir.Sub("lone.toml");
  std::ofstream(path) << "[kafka]\nbrokers = \"" << brokers << "\"\n[redis]\nurl = \"" << redis_url
                      << "\"\n[es]\n[state]\ndir = \"" << dir.Sub("state")
                      << "\"\n[http]\nlisten = \""
                      << (http_port > 0 ? absl::StrCat("127.0.0.1:", http_port) : "")
                      << "\"\n[jobs]\nenabled = [\"db-split\"]\nbatch_max_records = 1000\n"
                      << "batch_max_ms = 50\n";
  return path;
}

int RunToIdle(const std::string& config, std::string* err) {
  CommandResult r = RunCommand(
      {BinDir() + "/rtdwd", "--config", config, "--job", "db-split", "--exit-when-idle", "1"},
      std::chrono::seconds(180));
  *err = r.out + r.err;
  return r.exit_code;
}

// One group member's config: its own state dir, Redis URL and metrics port.
std::string MemberConfig(const TempDir& dir, const std::string& name, const std::string& brokers,
                         const std::string& redis_url, int http_port, int revoke_timeout_s) {
  std::string path = dir.Sub(name + ".toml");
  std::ofstream(path) << "[kafka]\nbrokers = \"" << brokers
                      << "\"\ngroup = \"fence\"\nrevoke_timeout = " << revoke_timeout_s
                      << "\n[kafka.properties]\n"
                      << "\"session.timeout.ms\" = 6000\n\"heartbeat.interval.ms\" = 500\n"
                      << "[redis]\nurl = \"" << redis_url << "\"\n[es]\n[state]\ndir = \""
                      << dir.Sub("state-" + name)
                      << "\"\n[http]\nlisten = \"127.0.0.1:" << http_port
                      << "\"\n[jobs]\nenabled = [\"db-split\"]\n"
                      << "batch_max_records = 100\nbatch_max_ms = 50\n";
  return path;
}

// Zombie member (Done-when, db-split part). A owns the one source partition and owes the Redis
// write of a batch of user updates (its Redis user may not run EVALSHA: every attempt fails and
// is retried). A is SIGSTOPped past the session timeout and evicted; B takes the partition over,
// re-processes that batch from the hand-over offset and then a newer update of some of the same
// rows. A's Redis access comes back and A is SIGCONTed: its retry must be fenced (dropped and
// counted), and every dimension row in Redis must equal the last row per id of the input.
// Without fencing and without the position check, A's older rows replace B's newer ones.
TEST(SplitFencingTest, StoppedMemberNeverPutsAnOldDimensionRowOverTheNewOwners) {
  KafkaMock kafka;
  RedisServer redis;
  ASSERT_TRUE(kafka.Start({.brokers = 1, .partitions = 1, .topics = {}}).ok());
  ASSERT_TRUE(redis.Start().ok());
  // Member A connects as its own Redis user, so that its writes alone can be refused.
  ASSERT_TRUE(redis.Command({"ACL", "SETUSER", "member-a", "on", ">pa", "~*", "&*", "+@all"}).ok());
  const std::string url_a = absl::StrCat("redis://member-a:pa@127.0.0.1:", redis.port(), "/0");

  constexpr int kUsers = 6;
  // Long enough that A, retrying its batch, does not put it back for a poll while stopped (the
  // retry after SIGCONT is then A's first move, whatever the machine's load).
  constexpr int kZombieRevoke = 120;
  std::map<int, int> truth;  // user id -> user_level of its last row in the input
  auto produce = [&](int level, int users) {
    std::vector<std::string> rows, keys;
    for (int id = 1; id <= users; ++id) {
      rows.push_back(Maxwell("user_info", level == 1 ? "insert" : "update", UserRow(id, level)));
      keys.push_back(absl::StrCat(id));
      truth[id] = level;
    }
    return ProduceAll(kafka.bootstrap(), "ODS_BASE_DB", rows, keys);
  };
  auto level_in_redis = [&](int id) {
    auto v = redis.Command({"GET", absl::StrCat("DIM:USER_INFO:", id)});
    if (!v.ok() || *v == "(nil)") return -1;
    rapidjson::Document d;
    d.Parse(v->c_str(), v->size());
    if (!d.IsObject() || !d.HasMember("user_level")) return -2;
    return std::stoi(d["user_level"].GetString());
  };

  TempDir dir;
  const int port_a = FreePort(), port_b = FreePort();
  const std::string log_a = dir.Sub("a.log"), log_b = dir.Sub("b.log");
  auto a =
      ChildProcess::Start({BinDir() + "/rtdwd", "--config",
                           MemberConfig(dir, "a", kafka.bootstrap(), url_a, port_a, kZombieRevoke),
                           "--job", "db-split"},
                          {.stdout_path = log_a, .stderr_path = log_a});
  ASSERT_TRUE(a.ok());
  ASSERT_TRUE(produce(1, kUsers).ok());
  ASSERT_TRUE(WaitFor([&] { return level_in_redis(kUsers) == 1; }, std::chrono::seconds(120)))
      << ReadFile(log_a);
  ASSERT_EQ(SampleWith(ScrapeMetrics(port_a), "rtdw_fenced_batches_total", {"job=\"db-split\""}), 0)
      << "exported at 0 from the start";

  // A owes the next batch's writes: Redis refuses its script from now on.
  ASSERT_TRUE(redis.Command({"ACL", "SETUSER", "member-a", "-evalsha", "-eval"}).ok());
  ASSERT_TRUE(produce(2, kUsers).ok());
  ASSERT_TRUE(WaitFor(
      [&] {
        return SampleWith(ScrapeMetrics(port_a), "rtdw_batch_retries_total",
                          {"job=\"db-split\""}) >= 1;
      },
      std::chrono::seconds(120)))
      << ReadFile(log_a);
  EXPECT_EQ(level_in_redis(1), 1) << "A's update batch must still be owed";
  (*a)->Signal(SIGSTOP);

  // B joins; the group evicts A after its session timeout and gives B the partition.
  auto b = ChildProcess::Start(
      {BinDir() + "/rtdwd", "--config",
       MemberConfig(dir, "b", kafka.bootstrap(), redis.url(), port_b, kZombieRevoke), "--job",
       "db-split"},
      {.stdout_path = log_b, .stderr_path = log_b});
  ASSERT_TRUE(b.ok());
  ASSERT_TRUE(
      WaitFor([&] { return ReadFile(log_b).find("group gives 1 partitions") != std::string::npos; },
              std::chrono::seconds(180)))
      << ReadFile(log_b);
  // B re-processes A's owed batch, then newer rows of half the users.
  ASSERT_TRUE(WaitFor([&] { return level_in_redis(kUsers) == 2; }, std::chrono::seconds(120)))
      << ReadFile(log_b);
  ASSERT_TRUE(produce(3, kUsers / 2).ok());
  ASSERT_TRUE(WaitFor([&] { return level_in_redis(1) == 3; }, std::chrono::seconds(120)))
      << ReadFile(log_b);

  // A comes back with its Redis access restored and retries its old batch.
  ASSERT_TRUE(redis.Command({"ACL", "SETUSER", "member-a", "+@all"}).ok());
  (*a)->Signal(SIGCONT);
  // A leaves its retry loop (fenced, or — without fencing — after its write went through) and
  // only then takes the revoke of the assignment it lost (the rejoin may give it the partition
  // again, from B's committed offset). Nothing of A's old batch can come after that line.
  ASSERT_TRUE(
      WaitFor([&] { return ReadFile(log_a).find("(assignment lost)") != std::string::npos; },
              std::chrono::seconds(120)))
      << ReadFile(log_a);
  EXPECT_GE(SampleWith(ScrapeMetrics(port_a), "rtdw_fenced_batches_total", {"job=\"db-split\""}), 1)
      << "A's retry of its old batch must be fenced\n"
      << ReadFile(log_a);
  {
    const std::string la = ReadFile(log_a);
    const size_t at = la.find("uncommitted, fenced");
    if (at != std::string::npos) {
      const size_t from = la.rfind('\n', at) + 1;
      std::cout << "zombie: " << la.substr(from, la.find('\n', at) - from) << "\n";
    }
  }
  std::this_thread::sleep_for(std::chrono::seconds(2));

  std::map<int, int> in_redis;
  for (int id = 1; id <= kUsers; ++id) in_redis[id] = level_in_redis(id);
  EXPECT_EQ(in_redis, truth) << "Redis must hold the last row per id\n--- a:\n"
                             << ReadFile(log_a) << "\n--- b:\n"
                             << ReadFile(log_b);
  auto keys = redis.Command({"KEYS", "DIM:USER_INFO:*"});
  ASSERT_TRUE(keys.ok());
  EXPECT_EQ(std::count(keys->begin(), keys->end(), '\n') + 1, kUsers) << *keys;
  EXPECT_EQ((*a)->Stop(std::chrono::seconds(30)), 0) << ReadFile(log_a);
  EXPECT_EQ((*b)->Stop(std::chrono::seconds(30)), 0) << ReadFile(log_b);
}

// A member stuck on Redis does not hold the group up: its retries put the batch back after
// kafka.revoke_timeout and poll, so a rebalance (B joining) completes while Redis still refuses
// A's writes — instead of waiting for max.poll.interval.ms (5 min) to evict A. Afterwards both
// members converge on the truth.
TEST(SplitFencingTest, MemberStuckOnRedisDoesNotHoldTheRebalanceUp) {
  KafkaMock kafka;
  RedisServer redis;
  ASSERT_TRUE(kafka.Start({.brokers = 1, .partitions = 2, .topics = {}}).ok());
  ASSERT_TRUE(redis.Start().ok());
  ASSERT_TRUE(redis.Command({"ACL", "SETUSER", "member-a", "on", ">pa", "~*", "&*", "+@all"}).ok());
  const std::string url_a = absl::StrCat("redis://member-a:pa@127.0.0.1:", redis.port(), "/0");
  constexpr int kUsers = 10;
  std::map<int, int> truth;
  auto produce = [&](int level) {
    std::vector<std::string> rows, keys;
    for (int id = 1; id <= kUsers; ++id) {
      rows.push_back(Maxwell("user_info", level == 1 ? "insert" : "update", UserRow(id, level)));
      keys.push_back(absl::StrCat(id));
      truth[id] = level;
    }
    return ProduceAll(kafka.bootstrap(), "ODS_BASE_DB", rows, keys);
  };
  auto levels = [&] {
    std::map<int, int> out;
    for (int id = 1; id <= kUsers; ++id) {
      auto v = redis.Command({"GET", absl::StrCat("DIM:USER_INFO:", id)});
      rapidjson::Document d;
      if (v.ok() && *v != "(nil)") d.Parse(v->c_str(), v->size());
      out[id] =
          d.IsObject() && d.HasMember("user_level") ? std::stoi(d["user_level"].GetString()) : -1;
    }
    return out;
  };
  TempDir dir;
  const int port_a = FreePort(), port_b = FreePort();
  const std::string log_a = dir.Sub("a.log"), log_b = dir.Sub("b.log");
  auto a = ChildProcess::Start(
      {BinDir() + "/rtdwd", "--config", MemberConfig(dir, "a", kafka.bootstrap(), url_a, port_a, 2),
       "--job", "db-split"},
      {.stdout_path = log_a, .stderr_path = log_a});
  ASSERT_TRUE(a.ok());
  ASSERT_TRUE(produce(1).ok());
  ASSERT_TRUE(WaitFor([&] { return levels() == truth; }, std::chrono::seconds(120)))
      << ReadFile(log_a);
  ASSERT_TRUE(redis.Command({"ACL", "SETUSER", "member-a", "-evalsha", "-eval"}).ok());
  ASSERT_TRUE(produce(2).ok());
  ASSERT_TRUE(WaitFor(
      [&] {
        return SampleWith(ScrapeMetrics(port_a), "rtdw_batch_retries_total",
                          {"job=\"db-split\""}) >= 1;
      },
      std::chrono::seconds(120)))
      << ReadFile(log_a);

  const auto joined = std::chrono::steady_clock::now();
  auto b = ChildProcess::Start(
      {BinDir() + "/rtdwd", "--config",
       MemberConfig(dir, "b", kafka.bootstrap(), redis.url(), port_b, 2), "--job", "db-split"},
      {.stdout_path = log_b, .stderr_path = log_b});
  ASSERT_TRUE(b.ok());
  // Far below max.poll.interval.ms (300 s), the bound a member that never polls would impose.
  ASSERT_TRUE(
      WaitFor([&] { return ReadFile(log_b).find("group gives 1 partitions") != std::string::npos; },
              std::chrono::seconds(90)))
      << "the rebalance waited for the member stuck on Redis\n--- a:\n"
      << ReadFile(log_a) << "\n--- b:\n"
      << ReadFile(log_b);
  std::cout << "rebalance with a member stuck on Redis done after "
            << std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() -
                                                                joined)
                   .count()
            << " s\n";
  EXPECT_NE(ReadFile(log_a).find("put back uncommitted"), std::string::npos) << ReadFile(log_a);
  ASSERT_TRUE((*a)->Running());

  ASSERT_TRUE(redis.Command({"ACL", "SETUSER", "member-a", "+@all"}).ok());
  EXPECT_TRUE(WaitFor([&] { return levels() == truth; }, std::chrono::seconds(120)))
      << "--- a:\n"
      << ReadFile(log_a) << "\n--- b:\n"
      << ReadFile(log_b);
  EXPECT_EQ((*a)->Stop(std::chrono::seconds(30)), 0) << ReadFile(log_a);
  EXPECT_EQ((*b)->Stop(std::chrono::seconds(30)), 0) << ReadFile(log_b);
}

// Rebuilding dimension rows by replay: the operator deletes the rows and moves db-split back to
// the earliest offset. The positions stored in Redis are those of the same records, so without a
// new epoch every replayed write is "not newer" and the rows stay missing; `offsets set` bumps
// DIMPOS:EPOCH first and the replay brings every row back equal to the input's last row per id.
TEST(DimEpochTest, OffsetsSetOfDbSplitBumpsTheEpochSoAReplayWrites) {
  KafkaMock kafka;
  RedisServer redis;
  ASSERT_TRUE(kafka.Start({.brokers = 1, .partitions = 2, .topics = {}}).ok());
  ASSERT_TRUE(redis.Start().ok());
  constexpr int kUsers = 8;
  std::vector<std::string> rows, keys;
  std::map<int, int> truth;
  for (int level = 1; level <= 3; ++level) {
    for (int id = 1; id <= kUsers; ++id) {
      if (level == 3 && id % 2 == 0) continue;  // half the users get a third row
      rows.push_back(Maxwell("user_info", level == 1 ? "insert" : "update", UserRow(id, level)));
      keys.push_back(absl::StrCat(id));
      truth[id] = level;
    }
  }
  ASSERT_TRUE(ProduceAll(kafka.bootstrap(), "ODS_BASE_DB", rows, keys).ok());
  TempDir dir;
  const std::string config = LoneConfig(dir, kafka.bootstrap(), redis.url());
  auto levels = [&] {
    std::map<int, int> out;
    for (int id = 1; id <= kUsers; ++id) {
      auto v = redis.Command({"GET", absl::StrCat("DIM:USER_INFO:", id)});
      rapidjson::Document d;
      if (v.ok() && *v != "(nil)") d.Parse(v->c_str(), v->size());
      out[id] =
          d.IsObject() && d.HasMember("user_level") ? std::stoi(d["user_level"].GetString()) : -1;
    }
    return out;
  };
  auto drop_rows = [&] {
    for (int id = 1; id <= kUsers; ++id) {
      ASSERT_TRUE(redis.Command({"DEL", absl::StrCat("DIM:USER_INFO:", id)}).ok());
    }
  };
  auto offsets_set = [&](std::vector<std::string> extra) {
    std::vector<std::string> argv = {BinDir() + "/rtdw", "--config",     config, "--job",
                                     "db-split",         "offsets",      "set",  "--topic",
                                     "ODS_BASE_DB",      "--to-earliest"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    return RunCommand(argv, std::chrono::seconds(60));
  };
  std::string err;
  ASSERT_EQ(RunToIdle(config, &err), 0) << err;
  ASSERT_EQ(levels(), truth);

  // Control: the same reset without the bump replays into stale positions: rows stay missing.
  drop_rows();
  CommandResult r = offsets_set({"--skip-dim-epoch"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  ASSERT_EQ(RunToIdle(config, &err), 0) << err;
  EXPECT_EQ(levels(), (std::map<int, int>{
                          {1, -1}, {2, -1}, {3, -1}, {4, -1}, {5, -1}, {6, -1}, {7, -1}, {8, -1}}))
      << "without a new epoch the replay must lose against the stored positions";

  // With the bump (the default): every row comes back, equal to the input's last row per id.
  r = offsets_set({});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("DIMPOS:EPOCH in Redis"), std::string::npos) << r.out;
  EXPECT_EQ(*redis.Command({"GET", "DIMPOS:EPOCH"}), "1");
  ASSERT_EQ(RunToIdle(config, &err), 0) << err;
  EXPECT_EQ(levels(), truth);

  // Redis unreachable: refused, nothing changed, the message names Redis and the way out.
  TempDir dead_dir;
  const std::string dead =
      LoneConfig(dead_dir, kafka.bootstrap(), absl::StrCat("redis://127.0.0.1:", FreePort(), "/0"));
  r = RunCommand({BinDir() + "/rtdw", "--config", dead, "--job", "db-split", "offsets", "set",
                  "--topic", "ODS_BASE_DB", "--to-earliest"},
                 std::chrono::seconds(60));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE((r.out + r.err).find("offsets not changed: cannot bump DIMPOS:EPOCH in Redis"),
            std::string::npos)
      << r.out << r.err;
  EXPECT_NE((r.out + r.err).find("--skip-dim-epoch"), std::string::npos);
}

// A batch run again (its produce failed) produces its dead letters again; the per-reason counter
// counts each record once, when the batch commits.
TEST(DeadLetterCountTest, RetriedBatchCountsEachDeadLetterOnce) {
  KafkaMock kafka;
  RedisServer redis;
  ASSERT_TRUE(kafka.Start({.brokers = 1, .partitions = 1, .topics = {}}).ok());
  ASSERT_TRUE(redis.Start().ok());
  std::vector<std::string> in = {Maxwell("user_info", "insert", UserRow(1, 1)),
                                 "{not json 1",
                                 Maxwell("base_province", "insert", "{\"id\":11}"),
                                 "{not json 2",
                                 "{not json 3",
                                 Maxwell("user_info", "insert", "{\"name\":\"no id\"}")};
  ASSERT_TRUE(ProduceAll(kafka.bootstrap(), "ODS_BASE_DB", in).ok());
  // The daemon's first produce request fails for good (MESSAGE_TOO_LARGE): the batch runs again.
  CommandResult pushed =
      RunCommand({"curl", "-s", "-X", "POST", "-d", "",
                  kafka.control_url() + "/request-errors?api=0&error=10&count=1"},
                 std::chrono::seconds(10));
  ASSERT_EQ(pushed.exit_code, 0) << pushed.out;
  ASSERT_NE(pushed.out.find("\"ok\":true"), std::string::npos) << pushed.out;
  TempDir dir;
  const int port = FreePort();
  const std::string log = dir.Sub("rtdwd.log");
  auto d = ChildProcess::Start(
      {BinDir() + "/rtdwd", "--config", LoneConfig(dir, kafka.bootstrap(), redis.url(), port),
       "--job", "db-split"},
      {.stdout_path = log, .stderr_path = log});
  ASSERT_TRUE(d.ok());
  const std::vector<std::string> job = {"job=\"db-split\""};
  ASSERT_TRUE(WaitFor(
      [&] {
        std::string m = ScrapeMetrics(port);
        return SampleWith(m, "rtdw_batch_retries_total", job) >= 1 &&
               SampleWith(m, "rtdw_dead_letter_records_total", job) >= 4;
      },
      std::chrono::seconds(120)))
      << ScrapeMetrics(port) << ReadFile(log);
  std::string m = ScrapeMetrics(port);
  EXPECT_EQ(SampleWith(m, "rtdw_dead_letters_total", {"job=\"db-split\"", "reason=\"not_json\""}),
            3)
      << m;
  EXPECT_EQ(SampleWith(m, "rtdw_dead_letters_total", {"job=\"db-split\"", "reason=\"no_id\""}), 1)
      << m;
  EXPECT_EQ(SampleWith(m, "rtdw_dead_letter_records_total", job), 4) << m;
  // The records were produced more than once (at least once per attempt), counted once.
  auto dead = ReadTopic(kafka.bootstrap(), "DWD_DEAD_LETTER");
  ASSERT_TRUE(dead.ok());
  EXPECT_GE(dead->size(), 4u);
  EXPECT_EQ((*d)->Stop(std::chrono::seconds(30)), 0) << ReadFile(log);
}

}  // namespace
}  // namespace rtdw::testing
