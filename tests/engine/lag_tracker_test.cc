// The lag of a job's source partitions (core/engine/lag_tracker.h), fed as the runners feed it,
// against the log's own figures: high watermark minus the job's next offset.
#include "core/engine/lag_tracker.h"

#include "absl/strings/match.h"
#include "gtest/gtest.h"

namespace rtdw {
namespace {

TEST(LagTrackerTest, LagIsTheHighWatermarkMinusThePosition) {
  MetricsRegistry metrics;
  KafkaLagTracker lag(&metrics, "dau");
  // p0 resumed at 40, p1 at the log's end with nothing stored, p2 from its beginning.
  lag.Assigned(
      {{"T", 0, 40}, {"T", 1, PartitionStart::kEnd}, {"T", 2, PartitionStart::kBeginning}});
  EXPECT_EQ(lag.partitions(), 3);
  EXPECT_EQ(lag.total(), 0);  // every series exists, at 0, before the first figures
  EXPECT_TRUE(absl::StrContains(metrics.RenderPrometheus(),
                                "rtdw_kafka_lag{job=\"dau\",topic=\"T\",partition=\"2\"} 0"));

  lag.Update({{{"T", 0}, 100}, {{"T", 1}, 70}, {{"T", 2}, 30}});
  // p0: 100 - 40; p1: started at the end, so 0 until records arrive; p2: an upper bound (30).
  EXPECT_EQ(lag.total(), 60 + 0 + 30);

  lag.Committed({{{"T", 0}, 90}, {{"T", 2}, 30}});
  lag.Update({{{"T", 0}, 100}, {{"T", 1}, 75}});  // p2 not fetched since: its last figure stays
  EXPECT_EQ(lag.total(), 10 + 5 + 30);
  EXPECT_TRUE(absl::StrContains(metrics.RenderPrometheus(),
                                "rtdw_kafka_lag{job=\"dau\",topic=\"T\",partition=\"1\"} 5"));

  // A committed offset never moves the position back (an older batch's report after a newer).
  lag.Committed({{{"T", 0}, 50}});
  lag.Update({{{"T", 0}, 100}});
  EXPECT_EQ(lag.total(), 10 + 5 + 30);

  // Verified at its end: every lag is 0, and positions catch up with the watermarks.
  lag.Update({{{"T", 0}, 120}, {{"T", 1}, 75}, {{"T", 2}, 30}}, /*at_end=*/true);
  EXPECT_EQ(lag.total(), 0);
  lag.Update({{{"T", 0}, 121}, {{"T", 1}, 75}, {{"T", 2}, 30}});
  EXPECT_EQ(lag.total(), 1);

  // A new assignment replaces the partitions.
  lag.Assigned({{"T", 1, 75}});
  EXPECT_EQ(lag.partitions(), 1);
  EXPECT_EQ(lag.total(), 0);
}

}  // namespace
}  // namespace rtdw
