// Order-independent dimension writes (db-split, spec "Order-independent dimension writes"):
// RedisClient::ApplyAtomically against a real redis-server applies a write only when its
// (epoch, offset) is newer than the position that made the key's current value. Each case
// delivers an older write after a newer one — what the MULTI/EXEC writes before applied blindly.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "connectors/redis/redis_client.h"
#include "tests/harness/services.h"

namespace rtdw {
namespace {

RedisWrite Set(const std::string& key, const std::string& value, int64_t offset) {
  RedisWrite w;
  w.op = RedisWrite::Op::kSet;
  w.key = key;
  w.value = value;
  w.offset = offset;
  w.src = "ODS_BASE_DB/0/" + std::to_string(offset);
  return w;
}
RedisWrite Del(const std::string& key, int64_t offset) {
  RedisWrite w;
  w.op = RedisWrite::Op::kDel;
  w.key = key;
  w.offset = offset;
  w.src = "ODS_BASE_DB/0/" + std::to_string(offset);
  return w;
}

class DimPositionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto st = redis_.Start();
    ASSERT_TRUE(st.ok()) << st;
    RedisClientOptions o;
    o.port = redis_.port();
    client_ = std::make_unique<RedisClient>(o);
  }
  std::string Get(const std::string& key) {
    auto v = redis_.Command({"GET", key});
    EXPECT_TRUE(v.ok()) << v.status();
    return v.ok() ? *v : "";
  }
  // Applies `writes`; returns how many were skipped as older.
  uint64_t Apply(const std::vector<RedisWrite>& writes) {
    uint64_t stale = 99;
    auto st = client_->ApplyAtomically(writes, &stale);
    EXPECT_TRUE(st.ok()) << st;
    return stale;
  }

  testing::RedisServer redis_;
  std::unique_ptr<RedisClient> client_;
};

TEST_F(DimPositionTest, AnOlderWriteOrDeleteNeverReplacesANewerOne) {
  const std::string k = "DIM:USER_INFO:7";
  EXPECT_EQ(Apply({Set(k, R"({"id":7,"name":"new"})", 10)}), 0u);
  // Readers see plain row JSON; the position lives beside it.
  EXPECT_EQ(Get(k), R"({"id":7,"name":"new"})");
  EXPECT_EQ(Get("DIMPOS:USER_INFO:7"), "0:10");

  EXPECT_EQ(Apply({Set(k, R"({"id":7,"name":"old"})", 5)}), 1u);  // older write
  EXPECT_EQ(Get(k), R"({"id":7,"name":"new"})");
  EXPECT_EQ(Apply({Del(k, 7)}), 1u);  // older delete
  EXPECT_EQ(Get(k), R"({"id":7,"name":"new"})");
  EXPECT_EQ(Apply({Set(k, R"({"id":7,"name":"new"})", 10)}), 1u);  // the same write again
  EXPECT_EQ(Get("DIMPOS:USER_INFO:7"), "0:10");

  // A newer delete leaves a tombstone position: an older write cannot bring the row back.
  EXPECT_EQ(Apply({Del(k, 20)}), 0u);
  EXPECT_EQ(Get(k), "(nil)");
  EXPECT_EQ(Get("DIMPOS:USER_INFO:7"), "0:20");
  EXPECT_EQ(Apply({Set(k, R"({"id":7,"name":"resurrected"})", 15)}), 1u);
  EXPECT_EQ(Get(k), "(nil)");
  EXPECT_EQ(Apply({Set(k, R"({"id":7,"name":"again"})", 21)}), 0u);  // a newer insert
  EXPECT_EQ(Get(k), R"({"id":7,"name":"again"})");
}

TEST_F(DimPositionTest, WithinOneBatchTheNewestWinsWhateverItsPlace) {
  const std::string a = "DIM:BASE_PROVINCE:1", b = "DIM:BASE_PROVINCE:2";
  // Newest first in the batch (a re-sent batch after a newer one, merged): still the newest stays.
  EXPECT_EQ(Apply({Set(a, "A30", 30), Set(a, "A25", 25), Set(b, "B3", 3), Del(b, 2)}), 2u);
  EXPECT_EQ(Get(a), "A30");
  EXPECT_EQ(Get(b), "B3");
}

TEST_F(DimPositionTest, AnEpochBumpMakesRestartedOffsetsNewer) {
  const std::string k = "DIM:USER_INFO:9";
  EXPECT_EQ(Apply({Set(k, "before-reset", 5000)}), 0u);
  // The source topic is re-created: offsets start again at 0 and look older...
  EXPECT_EQ(Apply({Set(k, "after-reset", 1)}), 1u);
  EXPECT_EQ(Get(k), "before-reset");
  // ...until the operator bumps the epoch (docs/OPERATIONS.md).
  ASSERT_TRUE(redis_.Command({"INCR", RedisClient::kDimEpochKey}).ok());
  EXPECT_EQ(Apply({Set(k, "after-reset", 1)}), 0u);
  EXPECT_EQ(Get(k), "after-reset");
  EXPECT_EQ(Get("DIMPOS:USER_INFO:9"), "1:1");
  // A write of the old epoch (a stale member) is older than every write of the new one.
  ASSERT_TRUE(redis_.Command({"SET", "DIMPOS:USER_INFO:10", "0:99999"}).ok());
  EXPECT_EQ(Apply({Set("DIM:USER_INFO:10", "new-epoch", 0)}), 0u);
  EXPECT_EQ(Get("DIM:USER_INFO:10"), "new-epoch");
}

TEST_F(DimPositionTest, SurvivesAFlushedScriptCacheAndAppliesUnpositionedWrites) {
  EXPECT_EQ(Apply({Set("DIM:USER_INFO:1", "one", 1)}), 0u);
  ASSERT_TRUE(redis_.Command({"SCRIPT", "FLUSH"}).ok());  // as after a Redis restart
  EXPECT_EQ(Apply({Set("DIM:USER_INFO:1", "two", 2)}), 0u);
  EXPECT_EQ(Get("DIM:USER_INFO:1"), "two");
  RedisWrite plain = Set("DIM:USER_INFO:1", "plain", -1);  // no position: applied as is
  EXPECT_EQ(Apply({plain}), 0u);
  EXPECT_EQ(Get("DIM:USER_INFO:1"), "plain");
  EXPECT_EQ(Get("DIMPOS:USER_INFO:1"), "0:2");
}

}  // namespace
// Fencing (group mode): a partition's new owner claims it (INCR of its fence key); a batch
// carrying the previous owner's token is refused whole — even a write newer than the stored
// position, and even when it carries no write at all — while the new owner's batches apply.
TEST_F(DimPositionTest, AStaleFencingTokenIsRefusedWholeAndWritesNothing) {
  const std::string fence = RedisClient::FenceKey("ODS_BASE_DB", 3);
  EXPECT_EQ(fence, "DIMFENCE:ODS_BASE_DB:3");
  auto old_owner = client_->ClaimFence(fence);
  ASSERT_TRUE(old_owner.ok()) << old_owner.status();
  uint64_t stale = 99;
  ASSERT_TRUE(
      client_->ApplyAtomically({Set("DIM:USER_INFO:1", "v10", 10)}, &stale, {{fence, *old_owner}})
          .ok());
  EXPECT_EQ(stale, 0u);
  RedisClientOptions o;
  o.port = redis_.port();
  RedisClient new_client(o);
  auto new_owner = new_client.ClaimFence(fence);
  ASSERT_TRUE(new_owner.ok());
  EXPECT_GT(*new_owner, *old_owner);

  absl::Status st = client_->ApplyAtomically(
      {Set("DIM:USER_INFO:1", "v20", 20), Set("DIM:USER_INFO:2", "w20", 20)}, &stale,
      {{fence, *old_owner}});
  EXPECT_TRUE(RedisClient::IsFencedRejection(st)) << st;
  EXPECT_EQ(Get("DIM:USER_INFO:1"), "v10") << "nothing of a fenced batch is applied";
  EXPECT_EQ(Get("DIM:USER_INFO:2"), "(nil)");
  EXPECT_EQ(Get("DIMPOS:USER_INFO:1"), "0:10");
  EXPECT_TRUE(
      RedisClient::IsFencedRejection(client_->ApplyAtomically({}, &stale, {{fence, *old_owner}})))
      << "a batch without writes is checked too (its facts must not be produced)";
  // Another partition's fence does not matter; an unclaimed one is refused.
  EXPECT_TRUE(RedisClient::IsFencedRejection(
      client_->ApplyAtomically({Set("DIM:USER_INFO:1", "v30", 30)}, &stale,
                               {{RedisClient::FenceKey("ODS_BASE_DB", 4), 1}})));

  ASSERT_TRUE(
      new_client.ApplyAtomically({Set("DIM:USER_INFO:1", "v20", 20)}, &stale, {{fence, *new_owner}})
          .ok());
  EXPECT_EQ(Get("DIM:USER_INFO:1"), "v20");
  EXPECT_FALSE(RedisClient::IsFencedRejection(absl::UnavailableError("fenced: no")));
}

// `rtdw offsets set` of db-split bumps the epoch: writes of earlier offsets win again.
TEST_F(DimPositionTest, BumpDimEpochMakesEarlierOffsetsWinAgain) {
  EXPECT_EQ(Apply({Set("DIM:USER_INFO:1", "v50", 50)}), 0u);
  EXPECT_EQ(Apply({Set("DIM:USER_INFO:1", "v5", 5)}), 1u);
  auto epoch = client_->BumpDimEpoch();
  ASSERT_TRUE(epoch.ok()) << epoch.status();
  EXPECT_EQ(*epoch, 1);
  EXPECT_EQ(Apply({Set("DIM:USER_INFO:1", "v5", 5)}), 0u);
  EXPECT_EQ(Get("DIM:USER_INFO:1"), "v5");
  EXPECT_EQ(Get("DIMPOS:USER_INFO:1"), "1:5");
}

// The pipelined form (SendApply / FinishApplies, what db-split uses while it transforms a batch):
// several runs sent before any answer is read behave as one ApplyAtomically of all their writes —
// the newest position wins per key whichever run or place within a run holds it (a key written
// twice in one run compares with what the run itself wrote), and the stale counts add up.
TEST_F(DimPositionTest, PipelinedRunsApplyAsOneBatchWhateverTheOrder) {
  ASSERT_TRUE(client_
                  ->SendApply(std::vector<RedisWrite>{Set("DIM:USER_INFO:1", "v20", 20),
                                                      Set("DIM:USER_INFO:2", "a5", 5),
                                                      Set("DIM:USER_INFO:2", "a3", 3)},
                              {})
                  .ok());
  ASSERT_TRUE(client_
                  ->SendApply(std::vector<RedisWrite>{Set("DIM:USER_INFO:1", "v10", 10),
                                                      Set("DIM:USER_INFO:3", "b1", 1),
                                                      Del("DIM:USER_INFO:3", 2),
                                                      Set("DIM:USER_INFO:3", "b0", 0)},
                              {})
                  .ok());
  ASSERT_TRUE(
      client_->SendApply(std::vector<RedisWrite>{Set("DIM:USER_INFO:2", "a4", 4)}, {}).ok());
  uint64_t stale = 99;
  ASSERT_TRUE(client_->FinishApplies(&stale).ok());
  EXPECT_EQ(stale, 4u) << "v10, a3, b0 and a4 are older than what their keys hold";
  EXPECT_EQ(Get("DIM:USER_INFO:1"), "v20");
  EXPECT_EQ(Get("DIM:USER_INFO:2"), "a5");
  EXPECT_EQ(Get("DIM:USER_INFO:3"), "(nil)");
  EXPECT_EQ(Get("DIMPOS:USER_INFO:3"), "0:2") << "the delete's tombstone";
  EXPECT_EQ(Apply({}), 0u) << "nothing left unanswered";
}

// A refused run in the middle fails FinishApplies, yet every answer is read: the runs around it
// apply (they are independent; the caller runs its batch again, which applies nothing twice) and
// the connection stays in step — the next call reads its own answer, not a left-over one.
TEST_F(DimPositionTest, ARefusedRunFailsTheFinishAndLeavesTheConnectionInStep) {
  ASSERT_TRUE(redis_
                  .Command({"ACL", "SETUSER", "limited", "on", ">pw", "resetkeys",
                            "~DIM:USER_INFO:*", "~DIMPOS:*", "&*", "+@all"})
                  .ok());
  RedisClientOptions o;
  o.port = redis_.port();
  o.username = "limited";
  o.password = "pw";
  RedisClient limited(o);
  ASSERT_TRUE(
      limited.SendApply(std::vector<RedisWrite>{Set("DIM:USER_INFO:1", "one", 1)}, {}).ok());
  ASSERT_TRUE(
      limited.SendApply(std::vector<RedisWrite>{Set("DIM:BASE_PROVINCE:1", "refused", 2)}, {})
          .ok());
  ASSERT_TRUE(
      limited.SendApply(std::vector<RedisWrite>{Set("DIM:USER_INFO:2", "two", 3)}, {}).ok());
  absl::Status st = limited.FinishApplies();
  EXPECT_FALSE(st.ok());
  EXPECT_FALSE(RedisClient::IsFencedRejection(st)) << st;
  EXPECT_EQ(Get("DIM:USER_INFO:1"), "one");
  EXPECT_EQ(Get("DIM:USER_INFO:2"), "two");
  EXPECT_EQ(Get("DIM:BASE_PROVINCE:1"), "(nil)");
  uint64_t stale = 99;
  EXPECT_TRUE(limited.ApplyAtomically({Set("DIM:USER_INFO:1", "older", 0)}, &stale).ok());
  EXPECT_EQ(stale, 1u);
  auto members = limited.SMembers("DIM:TABLES");
  EXPECT_FALSE(members.ok()) << "DIM:TABLES is not among the user's keys: its own answer";
}

// The server lost its scripts between the runs' sending and their answers (a restart, SCRIPT
// FLUSH): the runs answered NOSCRIPT are sent again once the script is loaded, and a stale
// fencing token in any run fails the whole finish as fenced.
TEST_F(DimPositionTest, PipelinedRunsSurviveAFlushedScriptCacheAndReportAFence) {
  EXPECT_EQ(Apply({Set("DIM:USER_INFO:1", "one", 1)}), 0u);  // the script is loaded
  ASSERT_TRUE(redis_.Command({"SCRIPT", "FLUSH"}).ok());
  ASSERT_TRUE(
      client_->SendApply(std::vector<RedisWrite>{Set("DIM:USER_INFO:1", "two", 2)}, {}).ok());
  ASSERT_TRUE(client_->SendApply(std::vector<RedisWrite>{Set("DIM:USER_INFO:2", "b", 3)}, {}).ok());
  uint64_t stale = 99;
  ASSERT_TRUE(client_->FinishApplies(&stale).ok());
  EXPECT_EQ(stale, 0u);
  EXPECT_EQ(Get("DIM:USER_INFO:1"), "two");
  EXPECT_EQ(Get("DIM:USER_INFO:2"), "b");

  const std::string fence = RedisClient::FenceKey("ODS_BASE_DB", 0);
  auto old_owner = client_->ClaimFence(fence);
  ASSERT_TRUE(old_owner.ok());
  auto new_owner = client_->ClaimFence(fence);
  ASSERT_TRUE(new_owner.ok());
  ASSERT_TRUE(client_
                  ->SendApply(std::vector<RedisWrite>{Set("DIM:USER_INFO:3", "c", 4)},
                              {{fence, *new_owner}})
                  .ok());
  ASSERT_TRUE(client_
                  ->SendApply(std::vector<RedisWrite>{Set("DIM:USER_INFO:4", "d", 5)},
                              {{fence, *old_owner}})
                  .ok());
  absl::Status st = client_->FinishApplies();
  EXPECT_TRUE(RedisClient::IsFencedRejection(st)) << st;
  EXPECT_EQ(Get("DIM:USER_INFO:4"), "(nil)") << "the fenced run wrote nothing";
}

// Another call while runs are unanswered would read their answers as its own: it drops the
// connection instead, and FinishApplies reports the runs as not known to be applied.
TEST_F(DimPositionTest, AnotherCallWhileRunsAreUnansweredFailsTheirFinish) {
  ASSERT_TRUE(
      client_->SendApply(std::vector<RedisWrite>{Set("DIM:USER_INFO:1", "one", 1)}, {}).ok());
  auto members = client_->SMembers("DIM:TABLES");
  ASSERT_TRUE(members.ok()) << members.status();
  EXPECT_FALSE(members->has_value()) << "its own answer: the set does not exist";
  absl::Status st = client_->FinishApplies();
  EXPECT_TRUE(absl::IsUnavailable(st)) << st;
  EXPECT_EQ(Apply({Set("DIM:USER_INFO:2", "two", 2)}), 0u) << "and the client goes on";
}

// db-split's table lists, read every batch: both sets in one round trip (SMembersOf); an absent
// set is told from a present one, and an error answer in the middle (a key of another type) fails
// the call without leaving an answer behind for the next one.
TEST_F(DimPositionTest, TableListsComeInOneRoundTripAndAnErrorLeavesNoAnswerBehind) {
  ASSERT_TRUE(redis_.Command({"SADD", "FACT:TABLES", "order_info", "order_detail"}).ok());
  ASSERT_TRUE(redis_.Command({"SET", "DIM:TABLES", "not a set"}).ok());
  auto lists = client_->SMembersOf({"FACT:TABLES", "NO:SUCH:SET"});
  ASSERT_TRUE(lists.ok()) << lists.status();
  ASSERT_EQ(lists->size(), 2u);
  ASSERT_TRUE((*lists)[0].has_value());
  std::vector<std::string> facts = *(*lists)[0];
  std::sort(facts.begin(), facts.end());
  EXPECT_EQ(facts, (std::vector<std::string>{"order_detail", "order_info"}));
  EXPECT_FALSE((*lists)[1].has_value()) << "absent, not empty";
  EXPECT_FALSE(client_->SMembersOf({"DIM:TABLES", "FACT:TABLES"}).ok()) << "WRONGTYPE";
  auto again = client_->SMembers("NO:SUCH:SET");
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_FALSE(again->has_value()) << "its own answer, not FACT:TABLES' left-over one";
}

}  // namespace rtdw
