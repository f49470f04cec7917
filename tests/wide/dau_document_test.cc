#include "core/dau_document.h"

#include "gtest/gtest.h"
#include "tests/wide/memory_state.h"

namespace rtdw {
namespace {

TEST(DauDocumentTest, ParsesTheLineage) {
  std::string topic;
  int32_t p = -1;
  int64_t off = -1;
  ASSERT_TRUE(ParseRtdwSrc("DWD_PAGE_LOG_TOPIC/3/1234", &topic, &p, &off));
  EXPECT_EQ(topic, "DWD_PAGE_LOG_TOPIC");
  EXPECT_EQ(p, 3);
  EXPECT_EQ(off, 1234);
  ASSERT_TRUE(ParseRtdwSrc("a/b/0/7", &topic, &p, &off));  // a topic may hold '/'
  EXPECT_EQ(topic, "a/b");
  EXPECT_EQ(p, 0);
  EXPECT_EQ(off, 7);
  for (const char* bad : {"", "T", "T/1", "/1/2", "T/-1/2", "T/x/2", "T/1/", "T/1/2x", "T//2"}) {
    EXPECT_FALSE(ParseRtdwSrc(bad, &topic, &p, &off)) << bad;
  }
}

TEST(DauDocumentTest, TakesTsAndLineageOfASource) {
  auto d = ParseDauDocumentSource(
      R"({"mid":"m1","ts":1732500000123,"dt":"2024-11-25","rtdw_src":"T/2/99"})");
  ASSERT_TRUE(d.has_value());
  EXPECT_EQ(d->ts_ms, 1732500000123);
  EXPECT_EQ(d->topic, "T");
  EXPECT_EQ(d->partition, 2);
  EXPECT_EQ(d->offset, 99);
  for (const char* bad : {R"({"ts":1,"rtdw_src":"T/x/1"})", R"({"ts":"1","rtdw_src":"T/1/1"})",
                          R"({"ts":1.5,"rtdw_src":"T/1/1"})", R"({"rtdw_src":"T/1/1"})",
                          R"({"ts":1})", R"([1])", "{", ""}) {
    EXPECT_FALSE(ParseDauDocumentSource(bad).has_value()) << bad;
  }
}

TEST(DauDocumentTest, PutDedupIfBeatsKeepsTheSmallestTsThenOffset) {
  testing::MemoryStore store;
  testing::MemoryBatch batch(&store);
  const DayNumber day = 20241125;
  auto put = [&](int64_t ts, int64_t off) {
    auto r = PutDedupIfBeats(batch, day, 0, "m", DedupValue{ts, off});
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() && *r;
  };
  EXPECT_TRUE(put(100, 5));   // empty slot
  EXPECT_FALSE(put(100, 5));  // the same record again
  EXPECT_FALSE(put(100, 6));  // same ts, later offset
  EXPECT_FALSE(put(101, 1));  // later ts
  EXPECT_TRUE(put(100, 4));   // same ts, earlier offset
  EXPECT_TRUE(put(99, 9));    // earlier ts
  auto v = batch.DedupLookup(day, 0, "m");
  ASSERT_TRUE(v.ok() && v->has_value());
  EXPECT_EQ(**v, (DedupValue{99, 9}));
  EXPECT_FALSE(
      PutDedupIfBeats(batch, day, -1, "m", DedupValue{1, 1}).ok());  // refused by the state
}

}  // namespace
}  // namespace rtdw
