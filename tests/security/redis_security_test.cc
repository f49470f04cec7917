// The Redis password, end to end against a real redis-server started with --requirepass: the
// config's redis.url (redis://:pw@host:port/db) reaches the client, which authenticates and
// selects the database; a missing or wrong password is a clear error that does not echo the
// password; rediss:// is refused at load time naming the missing TLS support.
#include <gtest/gtest.h>

#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "connectors/redis/redis_client.h"
#include "core/config/config.h"
#include "tests/harness/services.h"

namespace rtdw {
namespace {

constexpr char kPassword[] = "pw-7f3a9c-secret";

// The client as the daemon builds it from the config (tools/rtdwd: host, port, db, user, pw).
RedisClientOptions FromConfig(const Config& c) {
  RedisClientOptions o;
  o.host = c.redis.host;
  o.port = c.redis.port;
  o.db = c.redis.db;
  o.username = c.redis.username;
  if (c.redis.password) o.password = c.redis.password->value;
  o.timeout = std::chrono::milliseconds(2000);
  return o;
}

absl::StatusOr<Config> Load(const std::string& redis_section) {
  return LoadConfigFromString(
      absl::StrCat("[kafka]\n[redis]\n", redis_section, "[es]\n[state]\n[jobs]\n"), "t.toml",
      [](const std::string& name) -> std::optional<std::string> {
        if (name == "REDIS_PW") return std::string(kPassword);
        return std::nullopt;
      });
}

class RedisPasswordTest : public ::testing::Test {
 protected:
  void SetUp() override {
    redis_.SetPassword(kPassword);
    auto st = redis_.Start();
    ASSERT_TRUE(st.ok()) << st;
  }
  testing::RedisServer redis_;
};

TEST_F(RedisPasswordTest, ThePasswordInTheUrlAuthenticatesAndSelectsTheDb) {
  auto c =
      Load(absl::StrCat("url = \"redis://:", kPassword, "@127.0.0.1:", redis_.port(), "/3\"\n"));
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->redis.url, absl::StrCat("redis://:***@127.0.0.1:", redis_.port(), "/3"));
  EXPECT_FALSE(absl::StrContains(DumpConfig(*c), kPassword));
  RedisClient client(FromConfig(*c));
  ASSERT_TRUE(client.Ping().ok());
  ASSERT_TRUE(
      client.ApplyAtomically({{RedisWrite::Op::kSet, "DIM:USER_INFO:1", "{}", "t/0/0"}}).ok());
  auto got = client.MGet({"DIM:USER_INFO:1"});
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ((*got)[0].value_or(""), "{}");
  // It went to db 3, not db 0.
  auto keyspace = redis_.Command({"INFO", "keyspace"});
  ASSERT_TRUE(keyspace.ok()) << keyspace.status();
  EXPECT_TRUE(absl::StrContains(*keyspace, "db3:keys=1")) << *keyspace;
  EXPECT_FALSE(absl::StrContains(*keyspace, "db0:")) << *keyspace;
}

TEST_F(RedisPasswordTest, ThePasswordKeyFromTheEnvironmentWorksToo) {
  auto c = Load(absl::StrCat("url = \"redis://127.0.0.1:", redis_.port(),
                             "/0\"\npassword = { env = \"REDIS_PW\" }\n"));
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_FALSE(absl::StrContains(DumpConfig(*c), kPassword));
  RedisClient client(FromConfig(*c));
  EXPECT_TRUE(client.Ping().ok());
}

TEST_F(RedisPasswordTest, NoOrAWrongPasswordIsAClearErrorWithoutThePassword) {
  auto none = Load(absl::StrCat("url = \"redis://127.0.0.1:", redis_.port(), "/0\"\n"));
  ASSERT_TRUE(none.ok());
  RedisClient anonymous(FromConfig(*none));
  absl::Status st = anonymous.Ping();
  ASSERT_FALSE(st.ok());
  EXPECT_TRUE(absl::StrContains(st.message(), "NOAUTH")) << st;

  auto wrong =
      Load(absl::StrCat("url = \"redis://:not-the-pw@127.0.0.1:", redis_.port(), "/0\"\n"));
  ASSERT_TRUE(wrong.ok());
  RedisClient client(FromConfig(*wrong));
  st = client.Ping();
  ASSERT_FALSE(st.ok());
  EXPECT_TRUE(absl::StrContains(st.message(), "WRONGPASS") ||
              absl::StrContains(st.message(), "invalid password"))
      << st;
  EXPECT_FALSE(absl::StrContains(st.message(), "not-the-pw")) << st;
}

TEST(RedisTlsTest, RedissIsRefusedNamingTheMissingSupport) {
  auto c = Load("url = \"rediss://:pw@127.0.0.1:6380/0\"\n");
  ASSERT_FALSE(c.ok());
  std::string msg(c.status().message());
  EXPECT_TRUE(absl::StrContains(msg, "t.toml:3: redis.url")) << msg;
  EXPECT_TRUE(absl::StrContains(msg, "hiredis_ssl")) << msg;
  EXPECT_TRUE(absl::StrContains(msg, "no TLS support")) << msg;
  EXPECT_FALSE(absl::StrContains(msg, ":pw@")) << msg;
}

}  // namespace
}  // namespace rtdw
