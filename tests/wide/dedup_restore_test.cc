// core/dedup_restore.h (the one de-dup restore of rtdwd's hand-over and `rtdw dedup restore`) and
// core/dau_document.h's StillDedupWinner, against an in-memory state and a fake index whose
// documents become visible only on a refresh, as in Elasticsearch.
#include "core/dedup_restore.h"

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/dau_document.h"
#include "gtest/gtest.h"
#include "tests/wide/fake_dau_index.h"
#include "tests/wide/memory_state.h"

namespace rtdw {
namespace {

using testing::FakeIndex;
using testing::MemoryBatch;
using testing::MemoryStore;

// A store whose batch is kept apart until Commit() (as the state store's pending batch).
class FakeTarget : public DedupRestoreTarget {
 public:
  FakeTarget() : batch_(std::make_unique<MemoryBatch>(&staged)) {}
  BatchState& batch() override { return *batch_; }
  absl::Status Commit() override {
    ++commits;
    committed = staged;
    return absl::OkStatus();
  }
  MemoryStore committed, staged;
  int commits = 0;

 private:
  std::unique_ptr<MemoryBatch> batch_;
};

std::string Doc(const std::string& mid, int64_t ts, const std::string& src,
                const std::string& dt = "") {
  return absl::StrCat(R"({"mid":")", mid, R"(","ts":)", ts, R"(,"rtdw_src":")", src, "\"",
                      dt.empty() ? "" : absl::StrCat(R"(,"dt":")", dt, "\""), "}");
}

std::optional<DedupValue> Slot(const MemoryStore& s, DayNumber day, int32_t p,
                               std::string_view mid) {
  MemoryStore copy = s;
  MemoryBatch b(&copy);
  auto v = b.DedupLookup(day, p, mid);
  EXPECT_TRUE(v.ok()) << v.status();
  return v.ok() ? *v : std::nullopt;
}

absl::TimeZone Shanghai() {
  absl::TimeZone tz;
  EXPECT_TRUE(absl::LoadTimeZone("Asia/Shanghai", &tz));
  return tz;
}

constexpr int64_t kNov25Shanghai = 1732464000000;  // 2024-11-25T00:00:00+08:00

TEST(DedupRestoreTest, RefreshesBeforeItScans) {
  FakeIndex index;
  index.Index("m1", Doc("m1", kNov25Shanghai + 1000, "T/0/5"));
  FakeTarget target;
  DedupRestoreOptions o;
  o.day = 20241125;
  DedupRestoreStats stats;
  ASSERT_TRUE(RestoreDedup(index, target, o, &stats).ok());
  EXPECT_EQ(index.refreshes, 1);
  EXPECT_EQ(stats.documents, 1u);  // without the refresh the document is not visible
  EXPECT_EQ(Slot(target.committed, 20241125, 0, "m1"), (DedupValue{kNov25Shanghai + 1000, 5}));
}

TEST(DedupRestoreTest, DaemonRulesDayOfTsTopicPartitionAndWatermark) {
  FakeIndex index;
  // Partition 2 of topic T: one user per day, days from ts in Asia/Shanghai (16:30 UTC on the
  // 24th is already the 25th there).
  index.Index("a", Doc("a", kNov25Shanghai - 1, "T/2/10"));          // 2024-11-24 23:59:59.999
  index.Index("a", Doc("a", kNov25Shanghai + 5, "T/2/11"));          // the next day's index
  index.Index("b", Doc("b", kNov25Shanghai + 7, "T/2/12"));          // beaten by the incumbent
  index.Index("c", Doc("c", kNov25Shanghai + 9, "T/3/13"));          // another partition
  index.Index("d", Doc("d", kNov25Shanghai + 9, "OTHER/2/14"));      // another topic
  index.Index("e", R"({"mid":"e","ts":"1","rtdw_src":"T/2/15"})");   // not rtdw's document
  index.Index("f", Doc("f", kNov25Shanghai + 3'600'000, "T/2/16"));  // ahead of "now"
  FakeTarget target;
  {
    MemoryBatch seed(&target.staged);
    ASSERT_TRUE(seed.PutDedup(20241125, 2, "b", DedupValue{kNov25Shanghai + 1, 99}).ok());
  }
  DedupRestoreOptions o;
  o.time_zone = Shanghai();
  o.topic = "T";
  o.partitions = {2};
  o.raise_watermarks = true;
  o.now_ms = kNov25Shanghai + 60'000;
  o.missing_index_is_empty = true;
  DedupRestoreStats stats;
  ASSERT_TRUE(RestoreDedup(index, target, o, &stats).ok());
  EXPECT_EQ(stats.documents, 7u);
  EXPECT_EQ(stats.restored, 3u);
  EXPECT_EQ(stats.kept, 1u);
  EXPECT_EQ(stats.other_partitions, 2u);
  EXPECT_EQ(stats.skipped, 1u);
  EXPECT_EQ(stats.skipped_samples, std::vector<std::string>{"e"});
  const MemoryStore& s = target.committed;
  EXPECT_EQ(Slot(s, 20241124, 2, "a"), (DedupValue{kNov25Shanghai - 1, 10}));
  EXPECT_EQ(Slot(s, 20241125, 2, "a"), (DedupValue{kNov25Shanghai + 5, 11}));
  EXPECT_EQ(Slot(s, 20241125, 2, "b"), (DedupValue{kNov25Shanghai + 1, 99}));
  EXPECT_FALSE(Slot(s, 20241125, 3, "c").has_value());
  EXPECT_FALSE(Slot(s, 20241125, 2, "d").has_value());
  // The watermark: the newest restored ts, but never ahead of the wall clock.
  ASSERT_EQ(s.watermarks.count(2), 1u);
  EXPECT_EQ(s.watermarks.at(2), o.now_ms);
  EXPECT_EQ(s.watermarks.count(3), 0u);
}

TEST(DedupRestoreTest, NeverLowersAWatermark) {
  FakeIndex index;
  index.Index("a", Doc("a", kNov25Shanghai + 5, "T/0/1"));
  FakeTarget target;
  target.staged.watermarks[0] = kNov25Shanghai + 1000;
  DedupRestoreOptions o;
  o.raise_watermarks = true;
  o.now_ms = kNov25Shanghai + 60'000;
  DedupRestoreStats stats;
  ASSERT_TRUE(RestoreDedup(index, target, o, &stats).ok());
  EXPECT_EQ(target.committed.watermarks.at(0), kNov25Shanghai + 1000);
}

TEST(DedupRestoreTest, OperatorRulesGivenDayPartitionsAndMissingIndex) {
  FakeIndex index;
  for (int i = 0; i < 25; ++i) {
    // The index's day wins over the day of ts (a document of the 25th's index stays on the 25th).
    index.Index(absl::StrCat("m", i),
                Doc(absl::StrCat("m", i), kNov25Shanghai - 1, absl::StrCat("T/", i % 3, "/", i)));
  }
  FakeTarget target;
  DedupRestoreOptions o;
  o.day = 20241125;
  o.partitions = {0, 1};
  o.commit_every = 4;
  DedupRestoreStats stats;
  ASSERT_TRUE(RestoreDedup(index, target, o, &stats).ok());
  EXPECT_EQ(stats.restored, 17u);  // partitions 0 and 1 of 25 documents
  EXPECT_EQ(stats.other_partitions, 8u);
  EXPECT_EQ(target.commits, 5);  // every 4 slots, and the last 1
  EXPECT_EQ(Slot(target.committed, 20241125, 0, "m0"), (DedupValue{kNov25Shanghai - 1, 0}));
  EXPECT_FALSE(Slot(target.committed, 20241124, 0, "m0").has_value());
  EXPECT_TRUE(target.committed.watermarks.empty());

  FakeIndex none;
  none.missing = true;
  FakeTarget t2;
  DedupRestoreStats s2;
  EXPECT_TRUE(absl::IsNotFound(RestoreDedup(none, t2, o, &s2)));
  o.missing_index_is_empty = true;
  EXPECT_TRUE(absl::IsNotFound(RestoreDedup(none, t2, o, &s2)))  // the refresh still says so
      << "a missing index given by name is the operator's mistake";
}

TEST(DedupRestoreTest, AFailedScanKeepsOnlyWhatWasCommitted) {
  FakeIndex index;
  for (int i = 0; i < 10; ++i) {
    index.Index(absl::StrCat("m", i), Doc(absl::StrCat("m", i), kNov25Shanghai, "T/0/1"));
  }
  index.fail_after = 7;
  FakeTarget target;
  DedupRestoreOptions o;
  o.day = 20241125;
  o.commit_every = 3;
  DedupRestoreStats stats;
  EXPECT_TRUE(absl::IsUnavailable(RestoreDedup(index, target, o, &stats)));
  EXPECT_EQ(stats.restored, 7u);
  EXPECT_EQ(target.commits, 2);
  EXPECT_TRUE(Slot(target.committed, 20241125, 0, "m5").has_value());
  EXPECT_FALSE(Slot(target.committed, 20241125, 0, "m6").has_value());
}

TEST(DedupRestoreTest, StillDedupWinnerComparesTheSlotOfTheDocument) {
  MemoryStore store;
  MemoryBatch batch(&store);
  ASSERT_TRUE(batch.PutDedup(20241125, 2, "m", DedupValue{100, 7}).ok());
  EXPECT_TRUE(StillDedupWinner(batch, Doc("m", 100, "T/2/7", "2024-11-25")));
  // Superseded: the slot's winner has another ts.
  EXPECT_FALSE(StillDedupWinner(batch, Doc("m", 150, "T/2/9", "2024-11-25")));
  // Another slot (day, partition, mid) is empty: still the winner.
  EXPECT_TRUE(StillDedupWinner(batch, Doc("m", 150, "T/2/9", "2024-11-26")));
  EXPECT_TRUE(StillDedupWinner(batch, Doc("m", 150, "T/3/9", "2024-11-25")));
  EXPECT_TRUE(StillDedupWinner(batch, Doc("x", 150, "T/2/9", "2024-11-25")));
  // Not a DAU document: no slot to compare with.
  EXPECT_TRUE(StillDedupWinner(batch, Doc("m", 150, "T/2/9")));
  EXPECT_TRUE(StillDedupWinner(batch, Doc("m", 150, "T/2/9", "25.11.2024")));
  EXPECT_TRUE(StillDedupWinner(batch, "not json"));
}

}  // namespace
}  // namespace rtdw
