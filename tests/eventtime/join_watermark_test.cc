// The order-wide join's event time (docs/FORMATS.md §5, §6) against the in-memory state of
// tests/wide/memory_state.h: the join's watermark is the slower input's, an input that has
// delivered nothing holds it back until it is named idle, and no watermark runs ahead of the wall
// clock. Each scenario is one that the old watermark (the largest create_time of either topic,
// uncapped) got wrong: rows of the slower topic dead-lettered `late`, waiting rows `join_expired`.
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/time.h"
#include "core/event_time.h"
#include "core/order_wide_transform.h"
#include "gtest/gtest.h"
#include "tests/wide/memory_state.h"
#include "tests/wide/test_util.h"

namespace rtdw {
namespace {

using ::rtdw::testing::DocMap;
using ::rtdw::testing::MapDimensionSource;
using ::rtdw::testing::MemoryStore;
using ::rtdw::testing::Parse;
using ::rtdw::testing::RecordSet;
using ::rtdw::testing::RunBatch;
using ::rtdw::testing::Str;

constexpr char kOrders[] = "DWD_ORDER_INFO_I";
constexpr char kDetails[] = "DWD_ORDER_DETAIL_I";
constexpr int64_t kHour = 3600 * 1000;
constexpr int64_t kDay = 24 * kHour;
// 2025-11-25 00:00:00 in Asia/Shanghai.
constexpr int64_t kDay25 = 1764000000000;

absl::TimeZone Shanghai() {
  absl::TimeZone tz;
  EXPECT_TRUE(absl::LoadTimeZone("Asia/Shanghai", &tz));
  return tz;
}

class JoinWatermarkTest : public ::testing::Test {
 protected:
  JoinWatermarkTest() { Reset(); }

  void Reset() {
    OrderWideOptions o;
    o.tz = Shanghai();
    o.join_ttl = std::chrono::seconds(6 * 3600);
    ow_ = std::make_unique<OrderWideTransform>(o);
  }
  // An order (id) and a detail (id * 10 + k) of it at `event_ms`, on partition `p`.
  void Order(int64_t id, int64_t event_ms, int32_t p = 0) {
    recs_.Add(kOrders, p, next_[{kOrders, p}]++,
              absl::StrFormat(R"({"id":%d,"user_id":1,"province_id":1,"create_time":"%s"})", id,
                              FormatLocalDateTime(event_ms, Shanghai())));
  }
  void Detail(int64_t order_id, int k, int64_t event_ms, int32_t p = 0) {
    recs_.Add(
        kDetails, p, next_[{kDetails, p}]++,
        absl::StrFormat(R"({"id":%d,"order_id":%d,"sku_num":1,"create_time":"%s"})",
                        order_id * 10 + k, order_id, FormatLocalDateTime(event_ms, Shanghai())));
  }
  // Runs the records added since the last Run as batches of at most `batch` records.
  void Run(int64_t now_ms, size_t batch = 1000) {
    while (consumed_ < recs_.size()) {
      size_t end = std::min(recs_.size(), consumed_ + batch);
      std::vector<InputRecord> b(recs_.records().begin() + consumed_,
                                 recs_.records().begin() + end);
      consumed_ = end;
      absl::Status st = RunBatch(*ow_, b, now_ms, &dims_, &store_, &docs_);
      ASSERT_TRUE(st.ok()) << st;
    }
  }
  std::vector<std::string> DeadLetters() const {
    std::vector<std::string> out;
    for (const auto& line : store_.dead_letters) {
      rapidjson::Document d = Parse(line);
      out.push_back(Str(d, "reason") + " " + Str(d, "src"));
    }
    return out;
  }
  std::optional<int64_t> InputWatermark(const char* topic, int32_t p = 0) const {
    auto it = store_.input_watermarks.find({topic, p});
    if (it == store_.input_watermarks.end()) return std::nullopt;
    return it->second;
  }

  std::unique_ptr<OrderWideTransform> ow_;
  MapDimensionSource dims_;
  MemoryStore store_;
  DocMap docs_;
  RecordSet recs_;
  size_t consumed_ = 0;
  std::map<std::pair<std::string, int32_t>, int64_t> next_;
};

// A catch-up: three days of orders read before any detail (one topic far ahead of the other),
// the transform restarted in between. Every detail still finds its order.
TEST_F(JoinWatermarkTest, OneTopicReadDaysAheadLosesNothing) {
  const int64_t now = kDay25 + 3 * kDay + kHour;
  for (int d = 0; d < 3; ++d) {
    for (int i = 0; i < 8; ++i) Order(d * 100 + i, kDay25 + d * kDay + i * 3 * kHour);
  }
  Run(now, 5);
  // The detail topic has delivered nothing: no join watermark, nothing expired.
  EXPECT_TRUE(store_.dead_letters.empty());
  EXPECT_FALSE(store_.watermarks.count(0));
  EXPECT_EQ(InputWatermark(kOrders), kDay25 + 2 * kDay + 21 * kHour);
  EXPECT_FALSE(InputWatermark(kDetails).has_value());
  Reset();  // a restart: the watermarks are read back from the state
  for (int d = 0; d < 3; ++d) {
    for (int i = 0; i < 8; ++i) {
      Detail(d * 100 + i, 1, kDay25 + d * kDay + i * 3 * kHour);
      Detail(d * 100 + i, 2, kDay25 + d * kDay + i * 3 * kHour);
    }
  }
  Run(now, 7);
  EXPECT_EQ(DeadLetters(), std::vector<std::string>{});
  EXPECT_EQ(docs_.size(), 48u);
  // Both inputs at the 27th 21:00 now; the matched orders older than the TTL went silently.
  EXPECT_EQ(store_.watermarks.at(0), kDay25 + 2 * kDay + 21 * kHour);
  EXPECT_EQ(store_.join.size(), 3u);  // orders 205-207 (15:00-21:00) are within the TTL
}

// The other way round: details far ahead wait for orders that come days later.
TEST_F(JoinWatermarkTest, DetailsReadAheadWaitForTheirOrders) {
  const int64_t now = kDay25 + 3 * kDay;
  for (int d = 0; d < 3; ++d) Detail(d, 1, kDay25 + d * kDay);
  Run(now);
  for (int d = 0; d < 3; ++d) Order(d, kDay25 + d * kDay);
  Run(now);
  EXPECT_EQ(DeadLetters(), std::vector<std::string>{});
  EXPECT_EQ(docs_.size(), 3u);
}

// The join's watermark is the minimum of the two inputs' per partition number, each partition on
// its own.
TEST_F(JoinWatermarkTest, TheSlowerInputJudgesLateness) {
  const int64_t now = kDay25 + 3 * kDay;
  Order(1, kDay25 + 2 * kDay);        // orders on the 27th
  Detail(9, 1, kDay25 + 10 * kHour);  // details still on the 25th 10:00
  Run(now);
  EXPECT_EQ(store_.watermarks.at(0), kDay25 + 10 * kHour);
  // A detail 5 h behind the slower input: within the 6 h TTL, accepted, waiting.
  Detail(2, 1, kDay25 + 5 * kHour);
  // 6 h + 1 s behind it: late.
  Detail(3, 1, kDay25 + 4 * kHour - 1000);
  // Partition 1 has only orders: no join watermark there.
  Order(4, kDay25 + 2 * kDay, 1);
  Detail(5, 1, kDay25, 1);
  Run(now);
  EXPECT_EQ(DeadLetters(), std::vector<std::string>{"late DWD_ORDER_DETAIL_I/0/2"});
  EXPECT_FALSE(store_.watermarks.count(1) && store_.watermarks.at(1) > kDay25);
}

// An input at its end and idle (the driver's jobs.order-wide.idle_input) stops holding the
// watermark back: the other input alone moves it, and rows it waited for expire.
TEST_F(JoinWatermarkTest, AnIdleInputStopsHoldingTheWatermarkBack) {
  const int64_t now = kDay25 + 3 * kDay;
  Order(1, kDay25);
  Order(2, kDay25 + kDay);
  Run(now);
  EXPECT_TRUE(store_.dead_letters.empty());
  ow_->SetIdleInputs({{kDetails, 0}, {kOrders, 7}});
  Order(3, kDay25 + 2 * kDay);
  Run(now);
  // The join's watermark is the orders' now (the 27th): orders 1 and 2 expired unmatched.
  EXPECT_EQ(store_.watermarks.at(0), kDay25 + 2 * kDay);
  EXPECT_EQ(DeadLetters(), (std::vector<std::string>{"join_expired DWD_ORDER_INFO_I/0/0",
                                                     "join_expired DWD_ORDER_INFO_I/0/1"}));
  // The detail input comes back (no longer idle) far behind: the watermark does not go back,
  // and its old rows are late.
  ow_->SetIdleInputs({});
  Detail(1, 1, kDay25);
  Detail(3, 1, kDay25 + 2 * kDay);
  Run(now);
  EXPECT_EQ(store_.watermarks.at(0), kDay25 + 2 * kDay);
  EXPECT_EQ(DeadLetters().back(), "late DWD_ORDER_DETAIL_I/0/0");
  EXPECT_EQ(docs_.size(), 1u);
}

// A future create_time (within max_future) gets its document but moves its input's watermark
// only to the wall clock, so it cannot make the rows of the last hours late (docs/FORMATS.md §6).
TEST_F(JoinWatermarkTest, FutureRowsMoveTheWatermarkOnlyToTheWallClock) {
  const int64_t now = kDay25 + 12 * kHour;
  Order(1, now + 20 * kHour);
  Detail(1, 1, now + 20 * kHour);
  Run(now);
  EXPECT_EQ(docs_.size(), 1u);
  EXPECT_TRUE(docs_.count({"gmall_order_wide_2025-11-26", "11"}));
  EXPECT_EQ(InputWatermark(kOrders), now);
  EXPECT_EQ(InputWatermark(kDetails), now);
  EXPECT_EQ(store_.watermarks.at(0), now);
  // Rows of 2 h ago (TTL 6 h): accepted and joined.
  Order(2, now - 2 * kHour);
  Detail(2, 1, now - 2 * kHour);
  Run(now);
  EXPECT_EQ(DeadLetters(), std::vector<std::string>{});
  EXPECT_EQ(docs_.size(), 2u);
  // Beyond max_future: `future`, no watermark moves.
  Order(3, now + 24 * kHour + 1000);
  Run(now);
  EXPECT_EQ(DeadLetters(), std::vector<std::string>{"future DWD_ORDER_INFO_I/0/2"});
  EXPECT_EQ(InputWatermark(kOrders), now);
}

}  // namespace
}  // namespace rtdw
