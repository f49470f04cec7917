// The source assignment every job runner shares (core/engine/source_assignment.h), driven with
// the in-memory source (tests/engine/fakes/fake_source.h) on a real state store in a temp dir.
//
// The truth is the log itself: which offsets a job reads first is checked by polling the
// source after the assignment and comparing the records with the offsets the log holds — a
// start that ignored the stored offset, the reset policy or the retention point reads
// different records. Every refusal is checked to assign nothing.
#include "core/engine/source_assignment.h"

#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "core/engine/job_store.h"
#include "gtest/gtest.h"
#include "tests/engine/fakes/fake_source.h"

namespace rtdw {
namespace {

using Op = FakeSource::Op;

constexpr char kJob[] = "log-split";
constexpr char kTopic[] = "ODS_BASE_LOG";

// Per partition, the offsets of every record `source` hands out until it has nothing more.
std::map<TopicPartition, std::vector<int64_t>> ReadAll(FakeSource& source) {
  std::map<TopicPartition, std::vector<int64_t>> read;
  ConsumedBatch batch;
  for (int polls = 0; polls < 100; ++polls) {
    batch.Clear();
    absl::Status st = source.Poll(1000, std::chrono::milliseconds(0), &batch);
    EXPECT_TRUE(st.ok()) << st;
    if (!st.ok() || batch.empty()) break;
    for (const InputRecord& r : batch.records()) {
      read[{std::string(r.topic), r.partition}].push_back(r.offset);
    }
  }
  return read;
}

std::vector<int64_t> Range(int64_t from, int64_t to) {  // [from, to)
  std::vector<int64_t> out;
  for (int64_t o = from; o < to; ++o) out.push_back(o);
  return out;
}

class SourceAssignmentTest : public testing::Test {
 protected:
  void SetUp() override {
    dir_ = absl::StrCat(testing::TempDir(), "/source_assignment_",
                        testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    config_.state.dir = dir_;
    config_.kafka.brokers = "broker-a:9092";
    OpenStore();
  }
  void TearDown() override {
    source_.reset();
    if (store_) ASSERT_TRUE(store_->Close().ok());
    std::filesystem::remove_all(dir_);
  }

  void OpenStore() {
    auto store = OpenJobStore(config_, kJob);
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = std::move(*store);
  }

  // A topic of `partitions` partitions holding `records` records each.
  void MakeTopic(const std::string& topic, int partitions, int records) {
    log_.CreateTopic(topic, partitions);
    for (int p = 0; p < partitions; ++p) {
      for (int i = 0; i < records; ++i) log_.Append(topic, p, absl::StrCat("r", i));
    }
  }

  absl::StatusOr<Assignment> Assign(const std::vector<std::string>& topics,
                                    bool co_partitioned = false,
                                    RebalanceListener* listener = nullptr) {
    return AssignSources(*source_, *store_, config_, kJob, topics, co_partitioned, listener, lag_,
                         [this](std::string p) { problems_.push_back(std::move(p)); });
  }

  std::string dir_;
  Config config_;
  std::unique_ptr<StateStore> store_;
  FakeLog log_;
  std::unique_ptr<FakeSource> source_ = std::make_unique<FakeSource>(&log_);
  MetricsRegistry metrics_;
  KafkaLagTracker lag_{&metrics_, kJob};
  std::vector<std::string> problems_;
};

TEST_F(SourceAssignmentTest, EarliestStartsAtTheRetainedBeginningAndStoredOffsetsWin) {
  MakeTopic(kTopic, 3, 10);
  log_.Truncate(kTopic, 0, 4);  // retention: 0..3 are gone, the beginning is 4
  ASSERT_TRUE(store_->SetOffset(kTopic, 1, 7).ok());
  config_.kafka.auto_offset_reset = AutoOffsetReset::kEarliest;

  auto assigned = Assign({kTopic});
  ASSERT_TRUE(assigned.ok()) << assigned.status();
  EXPECT_EQ(*assigned, Assignment::kAssigned);
  EXPECT_EQ(lag_.partitions(), 3);
  ASSERT_FALSE(problems_.empty());
  EXPECT_EQ(problems_.back(), "");  // an assignment clears the /health line
  auto read = ReadAll(*source_);
  EXPECT_EQ((read[{kTopic, 0}]), Range(4, 10));
  EXPECT_EQ((read[{kTopic, 1}]), Range(7, 10));
  EXPECT_EQ((read[{kTopic, 2}]), Range(0, 10));
}

TEST_F(SourceAssignmentTest, LatestStartsAtTheEndButStoredOffsetsWin) {
  MakeTopic(kTopic, 3, 10);
  ASSERT_TRUE(store_->SetOffset(kTopic, 1, 7).ok());
  config_.kafka.auto_offset_reset = AutoOffsetReset::kLatest;

  auto assigned = Assign({kTopic});
  ASSERT_TRUE(assigned.ok()) << assigned.status();
  EXPECT_EQ(*assigned, Assignment::kAssigned);
  for (int p = 0; p < 3; ++p) log_.Append(kTopic, p, "late");  // offset 10 of each
  auto read = ReadAll(*source_);
  EXPECT_EQ((read[{kTopic, 0}]), Range(10, 11));
  EXPECT_EQ((read[{kTopic, 1}]), Range(7, 11));
  EXPECT_EQ((read[{kTopic, 2}]), Range(10, 11));
}

TEST_F(SourceAssignmentTest, ResetErrorRefusesAPartitionWithoutAStoredOffset) {
  MakeTopic(kTopic, 3, 10);
  ASSERT_TRUE(store_->SetOffset(kTopic, 0, 3).ok());
  ASSERT_TRUE(store_->SetOffset(kTopic, 2, 3).ok());
  config_.kafka.auto_offset_reset = AutoOffsetReset::kError;

  auto assigned = Assign({kTopic});
  ASSERT_FALSE(assigned.ok());
  EXPECT_TRUE(absl::IsFailedPrecondition(assigned.status())) << assigned.status();
  EXPECT_TRUE(absl::StrContains(assigned.status().message(),
                                "ODS_BASE_LOG/1 has no stored offset and kafka.auto_offset_reset "
                                "is \"error\""))
      << assigned.status();
  EXPECT_EQ(source_->calls(Op::kAssign), 0);
  EXPECT_TRUE(source_->assignment().empty());

  // With every offset stored, "error" has nothing to refuse.
  ASSERT_TRUE(store_->SetOffset(kTopic, 1, 9).ok());
  assigned = Assign({kTopic});
  ASSERT_TRUE(assigned.ok()) << assigned.status();
  auto read = ReadAll(*source_);
  EXPECT_EQ((read[{kTopic, 0}]), Range(3, 10));
  EXPECT_EQ((read[{kTopic, 1}]), Range(9, 10));
  EXPECT_EQ((read[{kTopic, 2}]), Range(3, 10));
}

TEST_F(SourceAssignmentTest, APartitionCountOtherThanTheStatesIsRefused) {
  MakeTopic(kTopic, 4, 1);
  auto assigned = Assign({kTopic});
  ASSERT_TRUE(assigned.ok()) << assigned.status();
  // The count is part of the store's fingerprint from now on, across a restart.
  ASSERT_TRUE(store_->Close().ok());
  store_.reset();
  OpenStore();
  FakeLog other;  // the topic recreated with 3 partitions
  other.CreateTopic(kTopic, 3);
  source_ = std::make_unique<FakeSource>(&other);

  assigned = Assign({kTopic});
  ASSERT_FALSE(assigned.ok());
  EXPECT_TRUE(absl::IsFailedPrecondition(assigned.status())) << assigned.status();
  EXPECT_TRUE(
      absl::StrContains(assigned.status().message(),
                        "the partition count of topic ODS_BASE_LOG: stored \"4\", now \"3\""))
      << assigned.status();
  EXPECT_TRUE(absl::StrContains(assigned.status().message(), "reset-fingerprint"))
      << assigned.status();
  EXPECT_EQ(source_->calls(Op::kAssign), 0);
}

TEST_F(SourceAssignmentTest, AMissingTopicWaitsAndAnUnreachableBrokerIsReported) {
  auto assigned = Assign({kTopic});
  ASSERT_TRUE(assigned.ok()) << assigned.status();
  EXPECT_EQ(*assigned, Assignment::kTopicMissing);
  EXPECT_EQ(problems_.back(), "waiting for source topic ODS_BASE_LOG");
  EXPECT_EQ(source_->calls(Op::kAssign), 0);

  MakeTopic(kTopic, 2, 3);
  source_->FailNext(Op::kPartitionCount, absl::UnavailableError("all brokers down"));
  assigned = Assign({kTopic});
  ASSERT_TRUE(assigned.ok()) << assigned.status();
  EXPECT_EQ(*assigned, Assignment::kKafkaUnreachable);
  EXPECT_EQ(problems_.back(), "kafka unreachable (broker-a:9092): all brokers down");
  EXPECT_EQ(source_->calls(Op::kAssign), 0);

  assigned = Assign({kTopic});
  ASSERT_TRUE(assigned.ok()) << assigned.status();
  EXPECT_EQ(*assigned, Assignment::kAssigned);
  EXPECT_EQ(problems_.back(), "");
  EXPECT_EQ(source_->assignment().size(), 2u);
}

TEST_F(SourceAssignmentTest, CoPartitionedTopicsMustHaveEqualCounts) {
  MakeTopic("A", 4, 1);
  MakeTopic("B", 3, 1);
  auto assigned = Assign({"A", "B"}, /*co_partitioned=*/true);
  ASSERT_FALSE(assigned.ok());
  EXPECT_TRUE(absl::IsFailedPrecondition(assigned.status())) << assigned.status();
  EXPECT_TRUE(absl::StrContains(assigned.status().message(),
                                "the source topics A and B have different partition counts (4 vs "
                                "3); the join relies on co-partitioning"))
      << assigned.status();
  EXPECT_EQ(source_->calls(Op::kAssign), 0);

  // Not co-partitioned: both are read whole.
  assigned = Assign({"A", "B"}, /*co_partitioned=*/false);
  ASSERT_TRUE(assigned.ok()) << assigned.status();
  EXPECT_EQ(source_->assignment().size(), 7u);

  // Equal counts pass the check.
  MakeTopic("C", 2, 1);
  MakeTopic("D", 2, 1);
  assigned = Assign({"C", "D"}, /*co_partitioned=*/true);
  ASSERT_TRUE(assigned.ok()) << assigned.status();
  EXPECT_EQ(source_->assignment().size(), 4u);
}

// Group mode's OnAssigned as the runners write it: the group's committed offsets (GroupCommitted),
// else kafka.auto_offset_reset (StartOf).
class GroupListener : public RebalanceListener {
 public:
  GroupListener(RecordSource* source, const Config* config) : source_(source), config_(config) {}
  absl::StatusOr<std::vector<PartitionStart>> OnAssigned(
      const std::vector<TopicPartition>& partitions) override {
    auto committed = GroupCommitted(
        *source_, partitions, [] { return false; }, [](std::string_view) {});
    if (!committed.ok()) return committed.status();
    std::vector<PartitionStart> starts;
    for (const auto& [topic, p] : partitions) {
      std::optional<int64_t> known;
      if (auto it = committed->find({topic, p}); it != committed->end()) known = it->second;
      auto start = StartOf(*config_, topic, p, known, "committed offset in the group");
      if (!start.ok()) return start.status();
      starts.push_back(*start);
    }
    return starts;
  }
  void OnRevoked(const std::vector<TopicPartition>&) override {}

 private:
  RecordSource* source_;
  const Config* config_;
};

TEST_F(SourceAssignmentTest, GroupModeSubscribesAndStartsFromTheGroupsOffsets) {
  MakeTopic(kTopic, 2, 10);
  ASSERT_TRUE(store_->SetOffset(kTopic, 0, 9).ok());  // a lone-mode offset: not the group's
  log_.SetGroupOffsets("rtdw.test", {{{kTopic, 0}, 5}});
  GroupListener listener(source_.get(), &config_);

  auto assigned = Assign({kTopic}, false, &listener);
  ASSERT_TRUE(assigned.ok()) << assigned.status();
  EXPECT_EQ(*assigned, Assignment::kAssigned);
  EXPECT_EQ(source_->calls(Op::kSubscribe), 1);
  EXPECT_EQ(source_->calls(Op::kAssign), 0);
  EXPECT_TRUE(source_->assignment().empty());  // partitions come with a poll
  EXPECT_EQ(source_->subscribed_topics(), std::vector<std::string>{kTopic});

  auto read = ReadAll(*source_);
  EXPECT_EQ(source_->assigned_callbacks(), 1);
  EXPECT_EQ((read[{kTopic, 0}]), Range(5, 10));  // the group's offset, not the store's
  EXPECT_EQ((read[{kTopic, 1}]), Range(0, 10));  // none committed: earliest
}

TEST_F(SourceAssignmentTest, GroupModeWithResetErrorFailsThePollThatAssigns) {
  MakeTopic(kTopic, 2, 10);
  log_.SetGroupOffsets("rtdw.test", {{{kTopic, 0}, 5}});
  config_.kafka.auto_offset_reset = AutoOffsetReset::kError;
  GroupListener listener(source_.get(), &config_);
  ASSERT_TRUE(Assign({kTopic}, false, &listener).ok());
  ConsumedBatch batch;
  absl::Status st = source_->Poll(100, std::chrono::milliseconds(0), &batch);
  EXPECT_TRUE(absl::IsFailedPrecondition(st)) << st;
  EXPECT_TRUE(
      absl::StrContains(st.message(), "ODS_BASE_LOG/1 has no committed offset in the group"))
      << st;
  EXPECT_TRUE(batch.empty());
  EXPECT_TRUE(source_->assignment().empty());
}

TEST_F(SourceAssignmentTest, NewPartitionWatchFindsAddedPartitions) {
  MakeTopic(kTopic, 2, 3);
  ASSERT_TRUE(Assign({kTopic}).ok());
  EXPECT_EQ(ReadAll(*source_).size(), 2u);
  NewPartitionWatch watch;

  // The first look asks the source; nothing has grown.
  auto grown = watch.Grown(*source_, *store_, kJob, {kTopic}, false, false);
  ASSERT_TRUE(grown.ok()) << grown.status();
  EXPECT_TRUE(grown->empty());
  const int asked = source_->calls(Op::kPartitionCount);

  log_.GrowTopic(kTopic, 4);
  log_.Append(kTopic, 2, "on a new partition");
  log_.Append(kTopic, 3, "on a new partition");
  // Busy (not at its end): asked again only after a minute.
  grown = watch.Grown(*source_, *store_, kJob, {kTopic}, false, false);
  ASSERT_TRUE(grown.ok()) << grown.status();
  EXPECT_TRUE(grown->empty());
  EXPECT_EQ(source_->calls(Op::kPartitionCount), asked);

  // About to say it is at its end: asked now, so that an idle exit never leaves them unread.
  grown = watch.Grown(*source_, *store_, kJob, {kTopic}, true, false);
  ASSERT_TRUE(grown.ok()) << grown.status();
  ASSERT_EQ(grown->size(), 1u);
  EXPECT_EQ((*grown)[0], std::make_pair(std::string(kTopic), 4));
  EXPECT_EQ(source_->calls(Op::kPartitionCount), asked + 1);
  // At its end since the last look, within a second: not asked again.
  grown = watch.Grown(*source_, *store_, kJob, {kTopic}, true, true);
  ASSERT_TRUE(grown.ok()) << grown.status();
  EXPECT_TRUE(grown->empty());

  // The new count is the store's now: assigning again takes all four, the new ones from their
  // beginning (earliest), the old ones from their stored offsets.
  ASSERT_TRUE(store_->SetOffset(kTopic, 0, 3).ok());
  ASSERT_TRUE(store_->SetOffset(kTopic, 1, 3).ok());
  auto assigned = Assign({kTopic});
  ASSERT_TRUE(assigned.ok()) << assigned.status();
  EXPECT_EQ(source_->assignment().size(), 4u);
  auto read = ReadAll(*source_);
  EXPECT_EQ(read.size(), 2u);
  EXPECT_EQ((read[{kTopic, 2}]), Range(0, 1));
  EXPECT_EQ((read[{kTopic, 3}]), Range(0, 1));
  // ... and a restart with the old count is refused (the fingerprint moved on).
  EXPECT_FALSE(CheckPartitionCount(*store_, kTopic, 2).ok());
  EXPECT_TRUE(CheckPartitionCount(*store_, kTopic, 4).ok());
}

TEST_F(SourceAssignmentTest, GrownTopicsLeavesOutATopicTheSourceCannotDescribe) {
  MakeTopic(kTopic, 1, 1);
  ASSERT_TRUE(Assign({kTopic}).ok());
  log_.GrowTopic(kTopic, 3);
  source_->FailNext(Op::kPartitionCount, absl::UnavailableError("metadata timed out"));
  auto grown = GrownTopics(*source_, *store_, kJob, {kTopic});
  ASSERT_TRUE(grown.ok()) << grown.status();
  EXPECT_TRUE(grown->empty());
  EXPECT_TRUE(CheckPartitionCount(*store_, kTopic, 1).ok());  // nothing recorded
  grown = GrownTopics(*source_, *store_, kJob, {kTopic});
  ASSERT_TRUE(grown.ok()) << grown.status();
  ASSERT_EQ(grown->size(), 1u);
  EXPECT_EQ((*grown)[0].second, 3);
}

TEST_F(SourceAssignmentTest, GroupCommittedAsksUntilTheCoordinatorAnswers) {
  log_.SetGroupOffsets("rtdw.test", {{{kTopic, 0}, 7}, {{"other", 0}, 1}});
  source_->FailNext(Op::kCommitted, absl::UnavailableError("coordinator loading"), 2);
  std::vector<std::string> seen;
  auto committed = GroupCommitted(
      *source_, {{kTopic, 0}, {kTopic, 1}}, [] { return false; },
      [&](std::string_view p) { seen.emplace_back(p); });
  ASSERT_TRUE(committed.ok()) << committed.status();
  // Only what was asked, and only what the group has (partition 1: none committed).
  EXPECT_EQ(*committed, (std::map<TopicPartition, int64_t>{{{kTopic, 0}, 7}}));
  EXPECT_EQ(source_->calls(Op::kCommitted), 3);
  EXPECT_EQ(seen, (std::vector<std::string>{"coordinator loading", "coordinator loading"}));
}

TEST_F(SourceAssignmentTest, GroupCommittedEndsCancelledOnAStop) {
  source_->FailNext(Op::kCommitted, absl::UnavailableError("coordinator gone"), -1);
  bool stop = false;
  int problems = 0;
  auto committed = GroupCommitted(
      *source_, {{kTopic, 0}}, [&] { return stop; },
      [&](std::string_view) { stop = ++problems == 2; });
  EXPECT_TRUE(absl::IsCancelled(committed.status())) << committed.status();
  EXPECT_EQ(source_->calls(Op::kCommitted), 2);

  // A stop already begun still asks once: a revoke's hand-over needs the answer.
  source_->ClearFailures(Op::kCommitted);
  log_.SetGroupOffsets("rtdw.test", {{{kTopic, 0}, 4}});
  committed = GroupCommitted(
      *source_, {{kTopic, 0}}, [] { return true; }, [](std::string_view) {});
  ASSERT_TRUE(committed.ok()) << committed.status();
  EXPECT_EQ(committed->at({kTopic, 0}), 4);
}

TEST(JobStoreTest, StoreMissingUntilTheFirstOpen) {
  const std::string dir = absl::StrCat(testing::TempDir(), "/job_store_missing");
  std::filesystem::remove_all(dir);
  Config config;
  config.state.dir = dir;
  EXPECT_TRUE(StoreMissing(dir, kJob));
  std::filesystem::create_directories(StorePath(dir, kJob));  // an empty directory: still missing
  EXPECT_TRUE(StoreMissing(dir, kJob));
  {
    auto store = OpenJobStore(config, kJob);
    ASSERT_TRUE(store.ok()) << store.status();
    EXPECT_TRUE((*store)->created());
    ASSERT_TRUE((*store)->Close().ok());
  }
  EXPECT_FALSE(StoreMissing(dir, kJob));
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace rtdw
