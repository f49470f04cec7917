// rtdw-bench's histogram helpers (bench_util.h): the figures of one phase of a long-running rtdwd.

#include "bench/rtdw_bench/bench_util.h"

#include <cmath>
#include <utility>
#include <vector>

#include "gtest/gtest.h"

namespace rtdw::bench {
namespace {

using Buckets = std::vector<std::pair<double, double>>;

TEST(HistogramQuantile, TheBoundWhereTheCumulativeCountReachesTheQuantile) {
  const Buckets b = {{0.05, 50}, {0.1, 98}, {0.25, 99}, {2.5, 100}, {INFINITY, 100}};
  EXPECT_EQ(HistogramQuantile(b, 0.5), 0.05);
  EXPECT_EQ(HistogramQuantile(b, 0.98), 0.1);
  EXPECT_EQ(HistogramQuantile(b, 0.99), 0.25);
  EXPECT_EQ(HistogramQuantile(b, 1.0), 2.5);
  EXPECT_EQ(HistogramQuantile({}, 0.99), 0);
  EXPECT_EQ(HistogramQuantile({{0.05, 0}, {INFINITY, 0}}, 0.99), 0);
}

// The latency window after the all-jobs drain: the drain's slow batches (here 40 of them at
// 2.5 s) are in the daemon's histogram; the window's own 1,000 batches all took <= 0.1 s. Its
// p99 must say 0.1 s, not the drain's 2.5 s (what the latency scenario reported before).
TEST(BucketsSince, TheWindowsQuantileIgnoresWhatCameBeforeIt) {
  const Buckets before = {{0.05, 0}, {0.1, 0}, {0.25, 5}, {2.5, 45}, {INFINITY, 45}};
  const Buckets after = {{0.05, 600}, {0.1, 1000}, {0.25, 1005}, {2.5, 1045}, {INFINITY, 1045}};
  EXPECT_EQ(HistogramQuantile(after, 0.99), 2.5);  // the whole run
  const Buckets window = BucketsSince(after, before);
  const Buckets want = {{0.05, 600}, {0.1, 1000}, {0.25, 1000}, {2.5, 1000}, {INFINITY, 1000}};
  EXPECT_EQ(window, want);
  EXPECT_EQ(HistogramQuantile(window, 0.99), 0.1);
  EXPECT_EQ(HistogramQuantile(window, 0.5), 0.05);
}

TEST(BucketsSince, ABoundNotScrapedBeforeCountsFromZero) {
  // The job had observed nothing at the first scrape: its histogram was not exported yet.
  const Buckets after = {{0.05, 3}, {INFINITY, 4}};
  EXPECT_EQ(BucketsSince(after, {}), after);
  const Buckets before = {{INFINITY, 1}};
  const Buckets want = {{0.05, 3}, {INFINITY, 3}};
  EXPECT_EQ(BucketsSince(after, before), want);
}

}  // namespace
}  // namespace rtdw::bench
