// The in-memory source the engine's tests rely on (tests/engine/fakes/fake_source.h) keeps the
// RecordSource contract where the engine's guarantees depend on it: order within a partition,
// no silent jump over a lost offset, rebalances inside Poll() with the lost-assignment rules,
// ends that see records written since the last poll.
#include "tests/engine/fakes/fake_source.h"

#include <thread>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace rtdw {
namespace {

using Op = FakeSource::Op;
constexpr std::chrono::milliseconds kNoWait{0};

TEST(FakeSourceTest, PollKeepsPartitionOrderAndSmallTurnsInterleave) {
  FakeLog log;
  log.CreateTopic("T", 2);
  for (int i = 0; i < 5; ++i) {
    log.Append("T", 0, absl::StrCat("a", i), "k", 1000 + i);
    log.Append("T", 1, absl::StrCat("b", i));
  }
  FakeSourceOptions o;
  o.records_per_turn = 2;
  FakeSource source(&log, o);
  ASSERT_TRUE(source.Assign({{"T", 0, PartitionStart::kBeginning}, {"T", 1, 0}}).ok());
  ConsumedBatch batch;
  ASSERT_TRUE(source.Poll(100, kNoWait, &batch).ok());
  ASSERT_EQ(batch.size(), 10u);
  // Turns of two: a0 a1 b0 b1 a2 a3 ...
  EXPECT_EQ(batch[0].value, "a0");
  EXPECT_EQ(batch[1].value, "a1");
  EXPECT_EQ(batch[2].value, "b0");
  EXPECT_EQ(batch[0].key, "k");
  EXPECT_EQ(batch[1].timestamp_ms, 1001);
  std::map<int32_t, int64_t> last{{0, -1}, {1, -1}};
  for (const InputRecord& r : batch.records()) {
    EXPECT_EQ(r.topic, "T");
    EXPECT_EQ(r.offset, last[r.partition] + 1) << "out of order on partition " << r.partition;
    last[r.partition] = r.offset;
  }
  // The batch's views stay valid after more appends, until Clear().
  for (int i = 0; i < 100; ++i) log.Append("T", 0, "more");
  EXPECT_EQ(batch[9].value, "b4");
  // max_records bounds a poll; the next one goes on from there.
  batch.Clear();
  ASSERT_TRUE(source.Poll(30, kNoWait, &batch).ok());
  EXPECT_EQ(batch.size(), 30u);
  EXPECT_EQ(batch[0].offset, 5);
  EXPECT_EQ(source.Position({"T", 0}), 35);
}

TEST(FakeSourceTest, ALostOffsetIsAnOutOfRangeNamingTheRetainedRange) {
  FakeLog log;
  log.CreateTopic("T", 1);
  for (int i = 0; i < 10; ++i) log.Append("T", 0, "v");
  log.Truncate("T", 0, 5);
  FakeSource source(&log);
  ASSERT_TRUE(source.Assign({{"T", 0, 2}}).ok());
  ConsumedBatch batch;
  absl::Status st = source.Poll(100, kNoWait, &batch);
  ASSERT_TRUE(absl::IsOutOfRange(st)) << st;
  EXPECT_TRUE(batch.empty());
  std::optional<LostOffset> lost = LostOffsetOf(st);
  ASSERT_TRUE(lost.has_value());
  EXPECT_EQ(lost->topic, "T");
  EXPECT_EQ(lost->partition, 0);
  EXPECT_EQ(lost->offset, 2);
  EXPECT_EQ(lost->low, 5);
  EXPECT_EQ(lost->high, 10);
  // Another status carries none.
  EXPECT_FALSE(LostOffsetOf(absl::OutOfRangeError("x")).has_value());
  // Moved into the range, it reads again.
  ASSERT_TRUE(source.Seek({{{"T", 0}, 5}}, kNoWait).ok());
  ASSERT_TRUE(source.Poll(100, kNoWait, &batch).ok());
  EXPECT_EQ(batch.size(), 5u);
}

class RecordingListener : public RebalanceListener {
 public:
  explicit RecordingListener(FakeSource* source) : source_(source) {}
  absl::StatusOr<std::vector<PartitionStart>> OnAssigned(
      const std::vector<TopicPartition>& partitions) override {
    events.push_back(absl::StrCat("assigned ", partitions.size()));
    std::vector<PartitionStart> starts;
    for (const auto& [t, p] : partitions) starts.push_back({t, p, PartitionStart::kBeginning});
    return starts;
  }
  void OnRevoked(const std::vector<TopicPartition>& partitions) override {
    const bool lost = source_->AssignmentLost();
    // What a runner does at a revoke: the hand-over commit (refused when the assignment is lost).
    const bool committed = source_->CommitSync({{partitions.front(), 1}}, kNoWait).ok();
    events.push_back(absl::StrCat("revoked ", partitions.size(), lost ? " lost" : "",
                                  committed ? " committed" : " refused"));
  }
  std::vector<std::string> events;

 private:
  FakeSource* source_;
};

TEST(FakeSourceTest, TheGroupsMovesRunInsidePollOnThePollingThread) {
  FakeLog log;
  log.CreateTopic("T", 2);
  log.Append("T", 0, "a");
  log.Append("T", 1, "b");
  FakeSourceOptions o;
  o.single_member_group = false;  // the test moves the partitions
  FakeSource source(&log, o);
  RecordingListener listener(&source);
  ASSERT_TRUE(source.Subscribe({"T"}, &listener).ok());
  EXPECT_FALSE(source.VerifiedAtEnd());  // a member still joining is not at its end

  source.ScheduleAssign({{"T", 0}, {"T", 1}});
  EXPECT_TRUE(listener.events.empty());  // not before a poll
  ConsumedBatch batch;
  ASSERT_TRUE(source.Poll(100, kNoWait, &batch).ok());
  EXPECT_EQ(listener.events, std::vector<std::string>{"assigned 2"});
  EXPECT_EQ(batch.size(), 2u);

  source.ScheduleRevoke();
  batch.Clear();
  ASSERT_TRUE(source.Poll(100, kNoWait, &batch).ok());
  EXPECT_EQ(listener.events.back(), "revoked 2 committed");
  EXPECT_TRUE(source.assignment().empty());
  EXPECT_EQ(log.GroupOffsets("rtdw.test").at({"T", 0}), 1);

  // A member whose session timed out: lost until its next assignment; its commits are refused.
  source.ScheduleAssign({{"T", 1}});
  ASSERT_TRUE(source.Poll(100, kNoWait, &batch).ok());
  source.LoseAssignment();
  EXPECT_TRUE(source.AssignmentLost());
  EXPECT_FALSE(source.CommitSync({{{"T", 1}, 1}}, kNoWait).ok());
  ASSERT_TRUE(source.Poll(100, kNoWait, &batch).ok());
  EXPECT_EQ(listener.events.back(), "revoked 1 lost refused");
  source.ScheduleAssign({{"T", 0}});
  ASSERT_TRUE(source.Poll(100, kNoWait, &batch).ok());
  EXPECT_FALSE(source.AssignmentLost());
  EXPECT_EQ(source.assignment(), (std::vector<TopicPartition>{{"T", 0}}));

  // Close revokes what is left.
  ASSERT_TRUE(source.Close(std::chrono::steady_clock::now()).ok());
  EXPECT_EQ(listener.events.back(), "revoked 1 committed");
  EXPECT_FALSE(source.Poll(100, kNoWait, &batch).ok());
}

TEST(FakeSourceTest, AOneMemberGroupTakesEveryPartitionAndAddedOnes) {
  FakeLog log;
  log.CreateTopic("T", 2);
  FakeSource source(&log);
  RecordingListener listener(&source);
  ASSERT_TRUE(source.Subscribe({"T"}, &listener).ok());
  ConsumedBatch batch;
  ASSERT_TRUE(source.Poll(100, kNoWait, &batch).ok());
  EXPECT_EQ(listener.events, std::vector<std::string>{"assigned 2"});
  ASSERT_TRUE(source.Poll(100, kNoWait, &batch).ok());
  EXPECT_EQ(listener.events.size(), 1u);  // nothing changed: no rebalance
  log.GrowTopic("T", 3);
  ASSERT_TRUE(source.Poll(100, kNoWait, &batch).ok());
  EXPECT_EQ(listener.events,
            (std::vector<std::string>{"assigned 2", "revoked 2 committed", "assigned 3"}));
  EXPECT_EQ(source.assignment().size(), 3u);
}

TEST(FakeSourceTest, VerifiedAtEndSeesRecordsWrittenSinceThePoll) {
  FakeLog log;
  log.CreateTopic("T", 2);
  log.Append("T", 0, "a");
  FakeSource source(&log);
  ASSERT_TRUE(source.Assign({{"T", 0, 0}, {"T", 1, 0}}).ok());
  EXPECT_FALSE(source.PartitionAtEnd({"T", 0}));  // not polled yet
  EXPECT_FALSE(source.VerifiedAtEnd());
  ConsumedBatch batch;
  ASSERT_TRUE(source.Poll(100, kNoWait, &batch).ok());
  EXPECT_TRUE(source.PartitionAtEnd({"T", 0}));
  EXPECT_TRUE(source.VerifiedAtEnd());
  EXPECT_EQ(source.HighWatermarks(),
            (std::map<TopicPartition, int64_t>{{{"T", 0}, 1}, {{"T", 1}, 0}}));
  log.Append("T", 1, "b");
  EXPECT_TRUE(source.PartitionAtEnd({"T", 1}));  // as of the last poll
  EXPECT_FALSE(source.VerifiedAtEnd());          // the broker knows better
  source.FailNext(Op::kVerifiedAtEnd, absl::UnavailableError("no answer"));
  batch.Clear();
  ASSERT_TRUE(source.Poll(100, kNoWait, &batch).ok());
  EXPECT_FALSE(source.VerifiedAtEnd());  // no answer: not at end
  EXPECT_TRUE(source.VerifiedAtEnd());
}

TEST(FakeSourceTest, SeekRefusesAPartitionNotAssignedAndMovesNothingThen) {
  FakeLog log;
  log.CreateTopic("T", 2);
  for (int i = 0; i < 4; ++i) log.Append("T", 0, "v");
  FakeSource source(&log);
  ASSERT_TRUE(source.Assign({{"T", 0, 0}}).ok());
  ConsumedBatch batch;
  ASSERT_TRUE(source.Poll(100, kNoWait, &batch).ok());
  EXPECT_FALSE(source.Seek({{{"T", 0}, 1}, {{"T", 1}, 0}}, kNoWait).ok());
  EXPECT_EQ(source.Position({"T", 0}), 4);
  ASSERT_TRUE(source.Seek({{{"T", 0}, 1}}, kNoWait).ok());
  batch.Clear();
  ASSERT_TRUE(source.Poll(100, kNoWait, &batch).ok());
  ASSERT_EQ(batch.size(), 3u);
  EXPECT_EQ(batch[0].offset, 1);
}

TEST(FakeSourceTest, FailuresAreCountedAndChangeNothing) {
  FakeLog log;
  log.CreateTopic("T", 1);
  log.Append("T", 0, "v");
  FakeSource source(&log);
  source.FailNext(Op::kAssign, absl::InternalError("assign failed"));
  EXPECT_FALSE(source.Assign({{"T", 0, 0}}).ok());
  EXPECT_TRUE(source.assignment().empty());
  ASSERT_TRUE(source.Assign({{"T", 0, 0}}).ok());
  EXPECT_EQ(source.calls(Op::kAssign), 2);
  source.FailNext(Op::kCommitAsync, absl::UnavailableError("dropped"));
  source.CommitAsync({{{"T", 0}, 1}});
  EXPECT_TRUE(log.GroupOffsets("rtdw.test").empty());
  source.CommitAsync({{{"T", 0}, 1}});
  EXPECT_EQ(log.GroupOffsets("rtdw.test").at({"T", 0}), 1);
}

TEST(FakeSourceTest, PollWaitsForAnAppendUpToItsMaxWait) {
  FakeLog log;
  log.CreateTopic("T", 1);
  FakeSource source(&log);
  ASSERT_TRUE(source.Assign({{"T", 0, 0}}).ok());
  std::thread writer([&log] {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    log.Append("T", 0, "late");
  });
  ConsumedBatch batch;
  // Generous: the append comes long before; the poll returns with it, not at the wait's end.
  ASSERT_TRUE(source.Poll(100, std::chrono::seconds(60), &batch).ok());
  writer.join();
  ASSERT_EQ(batch.size(), 1u);
  EXPECT_EQ(batch[0].value, "late");
}

}  // namespace
}  // namespace rtdw
