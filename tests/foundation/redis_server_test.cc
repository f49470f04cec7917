// The harness's private redis-server is a real Redis: hiredis talks to it, and a restart
// "with its data" (SHUTDOWN SAVE) keeps what was written.
#include <hiredis/hiredis.h>

#include "gtest/gtest.h"
#include "tests/harness/services.h"

namespace rtdw::testing {
namespace {

TEST(RedisServerTest, HiredisRoundTripAndPipelining) {
  RedisServer redis;
  ASSERT_TRUE(redis.Start().ok());
  redisContext* c = redisConnect("127.0.0.1", redis.port());
  ASSERT_TRUE(c != nullptr && c->err == 0);
  // Pipeline 100 SETs, then read the replies.
  for (int i = 0; i < 100; ++i) {
    redisAppendCommand(c, "SET DIM:USER_INFO:%d {\"id\":%d}", i, i);
  }
  for (int i = 0; i < 100; ++i) {
    void* reply = nullptr;
    ASSERT_EQ(redisGetReply(c, &reply), REDIS_OK);
    EXPECT_STREQ(static_cast<redisReply*>(reply)->str, "OK");
    freeReplyObject(reply);
  }
  auto* r = static_cast<redisReply*>(redisCommand(c, "GET DIM:USER_INFO:42"));
  ASSERT_NE(r, nullptr);
  ASSERT_EQ(r->type, REDIS_REPLY_STRING);
  EXPECT_EQ(std::string(r->str, r->len), "{\"id\":42}");
  freeReplyObject(r);
  redisFree(c);

  auto size = redis.Command({"DBSIZE"});
  ASSERT_TRUE(size.ok());
  EXPECT_EQ(*size, "100");
}

TEST(RedisServerTest, RestartWithDataKeepsKeysAndKillLosesThem) {
  RedisServer redis;
  ASSERT_TRUE(redis.Start().ok());
  ASSERT_TRUE(redis.Command({"SADD", "DIM:TABLES", "user_info", "base_province"}).ok());
  ASSERT_TRUE(redis.StopSaving().ok());
  ASSERT_TRUE(redis.Start().ok());
  auto members = redis.Command({"SMEMBERS", "DIM:TABLES"});
  ASSERT_TRUE(members.ok()) << members.status();
  EXPECT_NE(members->find("user_info"), std::string::npos);
  EXPECT_NE(members->find("base_province"), std::string::npos);

  int port = redis.port();
  redis.Kill9();
  EXPECT_FALSE(PortOpen(port));
  EXPECT_FALSE(redis.Command({"PING"}).ok());
}

}  // namespace
}  // namespace rtdw::testing
