#include "core/order_wide_transform.h"

#include <algorithm>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "tests/wide/memory_state.h"
#include "tests/wide/test_util.h"

namespace rtdw {
namespace {

using ::rtdw::testing::DocMap;
using ::rtdw::testing::Keys;
using ::rtdw::testing::MapDimensionSource;
using ::rtdw::testing::MemoryStore;
using ::rtdw::testing::Parse;
using ::rtdw::testing::RecordSet;
using ::rtdw::testing::RunBatch;
using ::rtdw::testing::Str;

constexpr char kOrders[] = "DWD_ORDER_INFO_I";
constexpr char kDetails[] = "DWD_ORDER_DETAIL_I";
// 2025-11-25 12:00:00 in Asia/Shanghai.
constexpr int64_t kNow = 1764000000000 + 12 * 3600 * 1000;
constexpr char kIndex[] = "gmall_order_wide_2025-11-25";

absl::TimeZone Shanghai() {
  absl::TimeZone tz;
  EXPECT_TRUE(absl::LoadTimeZone("Asia/Shanghai", &tz));
  return tz;
}

std::string OrderJson(int64_t id, const std::string& create_time, int64_t user_id = 37,
                      int64_t province_id = 11) {
  return absl::StrFormat(
      R"({"id":%d,"consignee":"张三","total_amount":8197.00,"order_status":"1001","user_id":%d,)"
      R"("payment_way":"3501","out_trade_no":"469857061091052",)"
      R"("trade_body":"Apple iPhone 12 等1件商品",)"
      R"("create_time":"%s","operate_time":null,"expire_time":"2025-11-25 10:15:01",)"
      R"("province_id":%d,"activity_reduce_amount":0.00,"coupon_reduce_amount":12.50,)"
      R"("original_total_amount":8209.50,"feight_fee":5.00,"feight_fee_reduce":0.00,)"
      R"("refundable_time":"2025-12-02 10:00:01"})",
      id, user_id, create_time, province_id);
}

std::string DetailJson(int64_t id, int64_t order_id, const std::string& create_time,
                       int sku_num = 1) {
  return absl::StrFormat(
      R"({"id":%d,"order_id":%d,"sku_id":3,"sku_name":"Apple iPhone 12 (A2404) 64GB 黑色",)"
      R"("order_price":8197.00,"sku_num":%d,"create_time":"%s","split_total_amount":8184.50,)"
      R"("split_activity_amount":0.00,"split_coupon_amount":12.50})",
      id, order_id, sku_num, create_time);
}

constexpr char kUser37[] = R"({"id":37,"birthday":"1974-06-09","gender":"F"})";
constexpr char kProvince11[] =
    R"({"id":11,"name":"北京","region_id":"1","area_code":"110000","iso_code":"CN-11",)"
    R"("iso_3166_2":"CN-BJ"})";

class OrderWideTest : public ::testing::Test {
 protected:
  OrderWideTest() {
    dims_.rows["DIM:USER_INFO:37"] = kUser37;
    dims_.rows["DIM:BASE_PROVINCE:11"] = kProvince11;
    Reset(Options());
  }

  static OrderWideOptions Options() {
    OrderWideOptions o;
    o.tz = Shanghai();
    o.join_ttl = std::chrono::seconds(3600);
    return o;
  }
  void Reset(OrderWideOptions o) {
    ow_ = std::make_unique<OrderWideTransform>(std::move(o));
    store_ = MemoryStore();
    docs_.clear();
    next_offset_.clear();
  }

  const InputRecord& Order(int64_t id, const std::string& ct = "2025-11-25 10:00:01",
                           int32_t p = 0) {
    return recs_.Add(kOrders, p, next_offset_[{kOrders, p}]++, OrderJson(id, ct));
  }
  const InputRecord& Detail(int64_t id, int64_t order_id,
                            const std::string& ct = "2025-11-25 10:00:01", int32_t p = 0) {
    return recs_.Add(kDetails, p, next_offset_[{kDetails, p}]++, DetailJson(id, order_id, ct));
  }
  const InputRecord& Raw(const char* topic, const std::string& value, int32_t p = 0) {
    return recs_.Add(topic, p, next_offset_[{topic, p}]++, value);
  }

  BulkOutput Run(int64_t now = kNow) {
    std::vector<InputRecord> batch(recs_.records().begin() + consumed_, recs_.records().end());
    consumed_ = recs_.size();
    BulkOutput out;
    absl::Status st = RunBatch(*ow_, batch, now, &dims_, &store_, &docs_, &out);
    EXPECT_TRUE(st.ok()) << st;
    return out;
  }

  rapidjson::Document Doc(const std::string& id, const std::string& index = kIndex) {
    auto it = docs_.find({index, id});
    if (it == docs_.end()) {
      ADD_FAILURE() << "no document " << index << "/" << id;
      return Parse("{}");
    }
    return Parse(it->second);
  }
  std::vector<std::string> DeadReasons() const {
    std::vector<std::string> out;
    for (const auto& line : store_.dead_letters) out.push_back(Str(Parse(line), "reason"));
    return out;
  }
  // (side, row id, matched) of the buffered rows.
  std::vector<std::string> JoinRows() const {
    std::vector<std::string> out;
    for (const auto& [k, row] : store_.join) {
      out.push_back(absl::StrCat(std::string(1, static_cast<char>(row.side)), row.row_id,
                                 row.matched ? "+" : ""));
    }
    return out;
  }

  std::unique_ptr<OrderWideTransform> ow_;
  MapDimensionSource dims_;
  MemoryStore store_;
  DocMap docs_;
  RecordSet recs_;
  size_t consumed_ = 0;
  std::map<std::pair<std::string, int32_t>, int64_t> next_offset_;
};

TEST_F(OrderWideTest, DocumentFieldsAndTypes) {
  next_offset_[{kDetails, 0}] = 41;
  Order(3501);
  Detail(7, 3501);
  BulkOutput out = Run();
  EXPECT_EQ(out.docs, 1u);
  EXPECT_EQ(out.target, kIndex);
  EXPECT_EQ(out.body.substr(0, out.body.find('\n')),
            // version = the batch's wall clock (the now_ms the test runs it with)
            R"({"index":{"_index":"gmall_order_wide_2025-11-25","_id":"7",)"
            R"("version":1764043200000,"version_type":"external_gte"}})");
  rapidjson::Document d = Doc("7");
  EXPECT_EQ(Keys(d), (std::vector<std::string>{
                         "detail_id",
                         "order_id",
                         "sku_id",
                         "order_price",
                         "sku_num",
                         "sku_name",
                         "split_total_amount",
                         "split_activity_amount",
                         "split_coupon_amount",
                         "province_id",
                         "order_status",
                         "user_id",
                         "total_amount",
                         "activity_reduce_amount",
                         "coupon_reduce_amount",
                         "original_total_amount",
                         "feight_fee",
                         "feight_fee_reduce",
                         "expire_time",
                         "refundable_time",
                         "create_time",  // operate_time is null in the insert: left out
                         "create_date",
                         "create_hour",
                         "province_name",
                         "province_area_code",
                         "province_3166_2_code",
                         "province_iso_code",
                         "user_age",
                         "user_gender",
                         "rtdw_src"}));
  // Ids and counts stay integers, amounts stay numbers with a fraction.
  ASSERT_TRUE(d["detail_id"].IsInt64());
  EXPECT_EQ(d["detail_id"].GetInt64(), 7);
  ASSERT_TRUE(d["order_id"].IsInt64());
  EXPECT_EQ(d["order_id"].GetInt64(), 3501);
  EXPECT_EQ(d["sku_id"].GetInt64(), 3);
  ASSERT_TRUE(d["order_price"].IsDouble());
  EXPECT_EQ(d["order_price"].GetDouble(), 8197.0);
  ASSERT_TRUE(d["sku_num"].IsInt64());
  EXPECT_EQ(d["sku_num"].GetInt64(), 1);
  EXPECT_EQ(Str(d, "sku_name"), "Apple iPhone 12 (A2404) 64GB 黑色");
  EXPECT_EQ(d["split_total_amount"].GetDouble(), 8184.5);
  EXPECT_TRUE(d["split_activity_amount"].IsDouble());
  EXPECT_EQ(d["split_coupon_amount"].GetDouble(), 12.5);
  ASSERT_TRUE(d["province_id"].IsInt64());
  EXPECT_EQ(d["province_id"].GetInt64(), 11);
  EXPECT_EQ(Str(d, "order_status"), "1001");
  ASSERT_TRUE(d["user_id"].IsInt64());
  EXPECT_EQ(d["user_id"].GetInt64(), 37);
  EXPECT_EQ(d["total_amount"].GetDouble(), 8197.0);
  EXPECT_EQ(d["activity_reduce_amount"].GetDouble(), 0.0);
  EXPECT_EQ(d["coupon_reduce_amount"].GetDouble(), 12.5);
  EXPECT_EQ(d["original_total_amount"].GetDouble(), 8209.5);
  EXPECT_EQ(d["feight_fee"].GetDouble(), 5.0);
  EXPECT_EQ(d["feight_fee_reduce"].GetDouble(), 0.0);
  EXPECT_EQ(Str(d, "expire_time"), "2025-11-25 10:15:01");
  EXPECT_EQ(Str(d, "refundable_time"), "2025-12-02 10:00:01");
  EXPECT_EQ(Str(d, "create_time"), "2025-11-25 10:00:01");
  EXPECT_EQ(Str(d, "create_date"), "2025-11-25");
  EXPECT_EQ(Str(d, "create_hour"), "10");
  EXPECT_EQ(Str(d, "province_name"), "北京");
  EXPECT_EQ(Str(d, "province_area_code"), "110000");
  EXPECT_EQ(Str(d, "province_3166_2_code"), "CN-BJ");
  EXPECT_EQ(Str(d, "province_iso_code"), "CN-11");
  ASSERT_TRUE(d["user_age"].IsInt());
  EXPECT_EQ(d["user_age"].GetInt(), 51);
  EXPECT_EQ(Str(d, "user_gender"), "F");
  EXPECT_EQ(Str(d, "rtdw_src"), "DWD_ORDER_DETAIL_I/0/41");
  // The body keeps the amounts' source text (8197.00, not 8197.0).
  EXPECT_NE(out.body.find(R"("order_price":8197.00,)"), std::string::npos);
  EXPECT_NE(out.body.find(R"("coupon_reduce_amount":12.50,)"), std::string::npos);
}

TEST_F(OrderWideTest, DetailBeforeOrder) {
  Detail(7, 3501);
  BulkOutput out = Run();
  EXPECT_EQ(out.docs, 0u);
  EXPECT_TRUE(out.body.empty());
  EXPECT_EQ(JoinRows(), (std::vector<std::string>{"D7"}));
  EXPECT_EQ(ow_->counters().join_waiting, 1u);

  Order(3501);
  out = Run();
  EXPECT_EQ(out.docs, 1u);
  rapidjson::Document d = Doc("7");
  EXPECT_EQ(d["order_id"].GetInt64(), 3501);
  EXPECT_EQ(Str(d, "order_status"), "1001");
  // The detail waited, and still carries its own position.
  EXPECT_EQ(Str(d, "rtdw_src"), "DWD_ORDER_DETAIL_I/0/0");
  // The detail left the buffer; the order stays, matched, until its TTL.
  EXPECT_EQ(JoinRows(), (std::vector<std::string>{"O3501+"}));
  EXPECT_TRUE(store_.dead_letters.empty());
}

TEST_F(OrderWideTest, OrderBeforeDetail) {
  Order(3501);
  EXPECT_EQ(Run().docs, 0u);
  EXPECT_EQ(JoinRows(), (std::vector<std::string>{"O3501"}));
  Detail(7, 3501);
  EXPECT_EQ(Run().docs, 1u);
  EXPECT_EQ(Str(Doc("7"), "rtdw_src"), "DWD_ORDER_DETAIL_I/0/0");
  EXPECT_EQ(JoinRows(), (std::vector<std::string>{"O3501+"}));
}

TEST_F(OrderWideTest, SeveralDetailsPerOrder) {
  Detail(1, 3501);
  Detail(2, 3501);
  Detail(9, 3502);  // another order's
  Run();
  Order(3501);
  Detail(3, 3501);  // same batch as its order, after it
  BulkOutput out = Run();
  EXPECT_EQ(out.docs, 3u);
  Detail(4, 3501);
  out = Run();
  EXPECT_EQ(out.docs, 1u);
  for (const char* id : {"1", "2", "3", "4"}) {
    EXPECT_EQ(Doc(id)["order_id"].GetInt64(), 3501) << id;
  }
  EXPECT_EQ(docs_.size(), 4u);
  EXPECT_EQ(JoinRows(), (std::vector<std::string>{"O3501+", "D9"}));
}

TEST_F(OrderWideTest, OneActionPerIdWithinABatch) {
  // A detail delivered twice (at-least-once upstream) after its order, in one batch.
  Order(3501);
  Detail(7, 3501);
  Detail(7, 3501);
  BulkOutput out = Run();
  EXPECT_EQ(out.docs, 1u);
  // The last one made wins (what applying both in order would leave).
  EXPECT_EQ(Str(Doc("7"), "rtdw_src"), "DWD_ORDER_DETAIL_I/0/1");
}

TEST_F(OrderWideTest, CreateDateAndHourAreTheLocalText) {
  // create_time is local already: the date and hour are its characters, whatever the zone.
  for (bool utc : {false, true}) {
    OrderWideOptions o = Options();
    if (utc) o.tz = absl::UTCTimeZone();
    Reset(o);
    Order(1, "2025-11-24 23:59:59");
    Detail(11, 1, "2025-11-24 23:59:59");
    Order(2, "2025-11-25 00:00:00");
    Detail(12, 2, "2025-11-25 00:00:00");
    BulkOutput out = Run();
    EXPECT_EQ(out.target, "gmall_order_wide_2025-11-24,gmall_order_wide_2025-11-25");
    rapidjson::Document a = Doc("11", "gmall_order_wide_2025-11-24");
    EXPECT_EQ(Str(a, "create_date"), "2025-11-24");
    EXPECT_EQ(Str(a, "create_hour"), "23");
    rapidjson::Document b = Doc("12", "gmall_order_wide_2025-11-25");
    EXPECT_EQ(Str(b, "create_date"), "2025-11-25");
    EXPECT_EQ(Str(b, "create_hour"), "00");
  }
}

TEST_F(OrderWideTest, AgeOnCreateDate) {
  dims_.rows["DIM:USER_INFO:1"] = R"({"id":1,"birthday":"2000-11-26","gender":"M"})";
  dims_.rows["DIM:USER_INFO:2"] = R"({"id":2,"birthday":"2000-11-25","gender":"F"})";
  recs_.Add(kOrders, 0, 0, OrderJson(1, "2025-11-25 23:00:00", 1));
  recs_.Add(kOrders, 0, 1, OrderJson(2, "2025-11-25 23:00:00", 2));
  Detail(11, 1, "2025-11-25 23:00:00");
  Detail(12, 2, "2025-11-25 23:00:00");
  Run(kNow + 86400LL * 1000 * 400);               // the wall clock a year later does not matter
  EXPECT_EQ(Doc("11")["user_age"].GetInt(), 24);  // birthday tomorrow
  EXPECT_EQ(Doc("12")["user_age"].GetInt(), 25);  // birthday today
}

TEST_F(OrderWideTest, OneDimensionLookupPerBatchIncludingBufferedOrders) {
  dims_.rows["DIM:USER_INFO:38"] = R"({"id":38,"gender":"M"})";
  recs_.Add(kOrders, 0, 0, OrderJson(1, "2025-11-25 10:00:00", 38, 12));  // province 12: no row
  Run();
  EXPECT_EQ(dims_.calls, 0);  // nothing to write, nothing looked up
  Detail(11, 1, "2025-11-25 10:00:00");
  Detail(12, 1, "2025-11-25 10:00:00");
  Order(2);
  Detail(21, 2);
  Run();
  ASSERT_EQ(dims_.calls, 1);
  std::vector<std::string> keys = dims_.requests[0];
  std::sort(keys.begin(), keys.end());
  EXPECT_EQ(keys, (std::vector<std::string>{"DIM:BASE_PROVINCE:11", "DIM:BASE_PROVINCE:12",
                                            "DIM:USER_INFO:37", "DIM:USER_INFO:38"}));
  rapidjson::Document d = Doc("11");
  EXPECT_EQ(Str(d, "user_gender"), "M");
  EXPECT_FALSE(d.HasMember("user_age"));  // no birthday
  EXPECT_FALSE(d.HasMember("province_name"));
  EXPECT_FALSE(d.HasMember("province_iso_code"));
  EXPECT_EQ(ow_->counters().dims_missing, 2u);  // documents 11 and 12, province 12
  EXPECT_EQ(Str(Doc("21"), "province_name"), "北京");
}

TEST_F(OrderWideTest, DimensionFailureFailsTheWholeBatch) {
  Order(3501);
  Detail(7, 3501);
  dims_.fail = true;
  std::vector<InputRecord> batch = recs_.records();
  EXPECT_EQ(RunBatch(*ow_, batch, kNow, &dims_, &store_, &docs_).code(),
            absl::StatusCode::kUnavailable);
  EXPECT_TRUE(store_.join.empty());
  EXPECT_TRUE(store_.watermarks.empty());
  EXPECT_EQ(ow_->counters().records, 0u);
  dims_.fail = false;
  ASSERT_TRUE(RunBatch(*ow_, batch, kNow, &dims_, &store_, &docs_).ok());
  EXPECT_EQ(docs_.size(), 1u);
  EXPECT_EQ(ow_->counters().documents, 1u);
}

TEST_F(OrderWideTest, TtlExpiryDeadLettersUnmatchedRowsAndDropsMatchedOrders) {
  Order(1, "2025-11-25 10:00:00");
  Detail(11, 1, "2025-11-25 10:00:00");  // order 1 matched
  Order(2, "2025-11-25 10:00:00");       // never gets a detail
  Detail(31, 3, "2025-11-25 10:00:00");  // never gets its order
  Order(4, "2025-11-25 10:30:00", 1);    // another partition: its own watermark
  Run();
  EXPECT_EQ(JoinRows(), (std::vector<std::string>{"O1+", "O2", "D31", "O4"}));
  // The detail topic goes idle: the orders alone move the join's watermark (docs/FORMATS.md §5).
  ow_->SetIdleInputs({{kDetails, 0}});
  // Watermark 11:00:00 on partition 0: cutoff 10:00:00, nothing is older yet.
  Order(5, "2025-11-25 11:00:00");
  Run();
  EXPECT_TRUE(store_.dead_letters.empty());
  // Watermark 11:00:01: the 10:00:00 rows expire.
  Order(6, "2025-11-25 11:00:01");
  Run();
  EXPECT_EQ(DeadReasons(), (std::vector<std::string>{"join_expired", "join_expired"}));
  std::vector<std::string> srcs;
  for (const auto& line : store_.dead_letters) {
    rapidjson::Document d = Parse(line);
    EXPECT_EQ(Str(d, "job"), "order-wide");
    srcs.push_back(Str(d, "src"));
    std::string raw = Str(d, "raw");
    if (Str(d, "src") == "DWD_ORDER_INFO_I/0/1") {
      EXPECT_EQ(raw, OrderJson(2, "2025-11-25 10:00:00"));
    }
    if (Str(d, "src") == "DWD_ORDER_DETAIL_I/0/1") {
      EXPECT_EQ(raw, DetailJson(31, 3, "2025-11-25 10:00:00"));
    }
  }
  std::sort(srcs.begin(), srcs.end());
  EXPECT_EQ(srcs, (std::vector<std::string>{"DWD_ORDER_DETAIL_I/0/1", "DWD_ORDER_INFO_I/0/1"}));
  EXPECT_EQ(ow_->counters().join_expired, 2u);
  EXPECT_EQ(ow_->counters().dead_letters, 2u);
  // Order 1 (matched) went silently; partition 1 is untouched.
  EXPECT_EQ(JoinRows(), (std::vector<std::string>{"O5", "O6", "O4"}));

  // A detail of the dropped order now is late (older than watermark - TTL).
  Detail(12, 1, "2025-11-25 10:00:00");
  Run();
  EXPECT_EQ(DeadReasons().back(), "late");
  EXPECT_EQ(docs_.size(), 1u);
}

// With expiry bounded per batch, a row past the cutoff may still sit in the buffer: it must not
// match then, so the result is the same as with unbounded expiry.
TEST_F(OrderWideTest, RowsPastTheCutoffNeverMatch) {
  auto scenario = [&](size_t limit) {
    OrderWideOptions o = Options();
    o.expire_limit = limit;
    Reset(o);
    ow_->SetIdleInputs({{kDetails, 0}});  // the orders alone move the join's watermark
    Order(1, "2025-11-25 10:00:00");
    Order(2, "2025-11-25 10:00:00");
    Order(3, "2025-11-25 10:00:00");
    Order(4, "2025-11-25 11:00:01");  // cutoff 10:00:01: orders 1-3 are expired
    Run();
    Detail(21, 2, "2025-11-25 11:00:01");
    Order(5, "2025-11-25 11:00:02");
    Detail(31, 3, "2025-11-25 11:00:02");
    Run();
    std::vector<std::string> dead;
    for (const auto& line : store_.dead_letters) {
      rapidjson::Document d = Parse(line);
      dead.push_back(Str(d, "reason") + " " + Str(d, "src"));
    }
    std::sort(dead.begin(), dead.end());
    return std::make_tuple(docs_, dead, JoinRows());
  };
  auto bounded = scenario(1);
  auto unbounded = scenario(1000);
  EXPECT_EQ(std::get<0>(bounded), std::get<0>(unbounded));
  EXPECT_TRUE(std::get<0>(bounded).empty());
  EXPECT_EQ(std::get<1>(bounded), std::get<1>(unbounded));
  EXPECT_EQ(std::get<1>(bounded).size(), 3u);  // orders 1, 2, 3
  EXPECT_EQ(std::get<2>(bounded), std::get<2>(unbounded));
}

TEST_F(OrderWideTest, RepeatedOrderKeepsItsMatch) {
  Order(1, "2025-11-25 10:00:00");
  Detail(11, 1, "2025-11-25 10:00:00");
  Run();
  Order(1, "2025-11-25 10:00:00");  // delivered again
  Run();
  EXPECT_EQ(JoinRows(), (std::vector<std::string>{"O1+"}));
  ow_->SetIdleInputs({{kDetails, 0}});  // the orders alone move the join's watermark
  Order(2, "2025-11-25 11:30:00");
  Run();
  EXPECT_TRUE(store_.dead_letters.empty());  // a matched order expires silently
  EXPECT_EQ(JoinRows(), (std::vector<std::string>{"O2"}));
}

TEST_F(OrderWideTest, LateAndFutureRows) {
  // The detail topic is idle: the orders alone move the join's watermark (docs/FORMATS.md §5).
  ow_->SetIdleInputs({{kDetails, 0}, {kDetails, 1}});
  Order(1, "2025-11-25 11:00:00");
  Detail(11, 9, "2025-11-25 10:00:00");     // exactly at watermark - TTL: accepted
  Detail(12, 9, "2025-11-25 09:59:59");     // older: late
  Detail(13, 9, "2025-11-25 09:59:59", 1);  // partition 1's orders hold its watermark back
  Order(2, "2025-11-26 12:00:01");          // more than a day ahead of the wall clock: future
  Order(3, "2025-11-26 12:00:00");          // exactly max_future ahead: accepted
  Run();
  // Order 3 moved the watermark to the wall clock (12:00, never beyond it: docs/FORMATS.md §6), the
  // future order not at all: detail 11 (10:00) expires at the end of the batch, order 1
  // (11:00) does not.
  EXPECT_EQ(DeadReasons(), (std::vector<std::string>{"late", "future", "join_expired"}));
  EXPECT_EQ(Str(Parse(store_.dead_letters[0]), "src"), "DWD_ORDER_DETAIL_I/0/1");
  EXPECT_EQ(Str(Parse(store_.dead_letters[1]), "src"), "DWD_ORDER_INFO_I/0/1");
  EXPECT_EQ(Str(Parse(store_.dead_letters[2]), "src"), "DWD_ORDER_DETAIL_I/0/0");
  EXPECT_EQ(store_.watermarks.at(0), kNow);
  EXPECT_FALSE(store_.watermarks.count(1));
  EXPECT_EQ(ow_->counters().join_expired, 1u);
}

TEST_F(OrderWideTest, BadRowsAreDeadLetters) {
  struct Case {
    const char* topic;
    std::string value;
    const char* reason;
  };
  std::vector<Case> cases = {
      {kOrders, R"({"id":1,)", "not_json"},
      {kOrders, R"([1])", "not_object"},
      {kOrders, R"({"create_time":"2025-11-25 10:00:00"})", "no_id"},
      {kOrders, R"({"id":1.5,"create_time":"2025-11-25 10:00:00"})", "no_id"},
      {kOrders, R"({"id":"","create_time":"2025-11-25 10:00:00"})", "no_id"},
      {kDetails, R"({"id":7,"create_time":"2025-11-25 10:00:00"})", "no_id"},
      {kDetails, R"({"id":7,"order_id":"a\u0000b","create_time":"2025-11-25 10:00:00"})", "no_id"},
      {kOrders, R"({"id":1})", "bad_type"},
      {kOrders, R"({"id":1,"create_time":1764036000})", "bad_type"},
      {kOrders, R"({"id":1,"create_time":"2025-11-25T10:00:00"})", "bad_type"},
      {kOrders, R"({"id":1,"create_time":"2025-02-30 10:00:00"})", "bad_type"},
      {"DWD_ORDER_INFO_U", OrderJson(1, "2025-11-25 10:00:00"), "unknown_topic"},
  };
  std::vector<std::string> expected;
  std::map<std::string, uint64_t, std::less<>> by_reason;
  for (const Case& c : cases) {
    Raw(c.topic, c.value);
    expected.push_back(c.reason);
    ++by_reason[c.reason];
  }
  Run();
  EXPECT_EQ(DeadReasons(), expected);
  EXPECT_TRUE(store_.join.empty());
  EXPECT_TRUE(store_.watermarks.empty());
  EXPECT_EQ(ow_->counters().dead_letters, cases.size());
  // By reason, as rtdwd exports them (rtdw_dead_letters_total{job,reason}).
  EXPECT_EQ(ow_->counters().dead_letters_by_reason, by_reason);
  for (const auto& line : store_.dead_letters) {
    rapidjson::Document d = Parse(line);
    EXPECT_FALSE(Str(d, "detail").empty());
    EXPECT_NE(Str(d, "src"), "<absent or not a string>");
  }
}

TEST_F(OrderWideTest, StringIdsJoinWithNumericIds) {
  Raw(kOrders, R"({"id":"3501","user_id":37,"create_time":"2025-11-25 10:00:01"})");
  Detail(7, 3501);
  Run();
  rapidjson::Document d = Doc("7");
  EXPECT_EQ(Str(d, "user_gender"), "F");
  EXPECT_FALSE(d.HasMember("province_id"));
  EXPECT_FALSE(d.HasMember("operate_time"));
}

// The same inputs in the same order give the same documents, dead letters and join state,
// whatever the batch boundaries.
TEST_F(OrderWideTest, ResultDoesNotDependOnBatchBoundaries) {
  dims_.rows["DIM:USER_INFO:38"] = R"({"id":38,"birthday":"1990-01-01","gender":"M"})";
  std::mt19937_64 rng(3);
  absl::TimeZone tz = Shanghai();
  RecordSet all;
  std::map<std::pair<std::string, int32_t>, int64_t> offsets;
  // 120 orders over 6 hours with 0-4 details each; each detail arrives anywhere from before its
  // order to 90 minutes after (TTL one hour: some never meet); two partitions.
  struct Pending {
    int64_t at_ms;
    std::string topic;
    int32_t partition;
    std::string value;
  };
  std::vector<Pending> events;
  const int64_t start = 1764000000000 + 6 * 3600 * 1000;  // 06:00
  int64_t detail_id = 1;
  for (int64_t order = 1; order <= 120; ++order) {
    int64_t at = start + static_cast<int64_t>(rng() % (6 * 3600)) * 1000;
    std::string ct = absl::FormatTime("%Y-%m-%d %H:%M:%S", absl::FromUnixMillis(at), tz);
    int32_t p = static_cast<int32_t>(order % 2);
    bool has_order = rng() % 10 != 0;
    if (has_order) {
      events.push_back({at, kOrders, p, OrderJson(order, ct, 37 + order % 3, 11 + order % 2)});
    }
    int details = static_cast<int>(rng() % 5);
    for (int i = 0; i < details; ++i) {
      int64_t arrive = at + (static_cast<int64_t>(rng() % 6000) - 600) * 1000;
      events.push_back({arrive, kDetails, p, DetailJson(detail_id++, order, ct, i + 1)});
    }
  }
  std::stable_sort(events.begin(), events.end(),
                   [](const Pending& a, const Pending& b) { return a.at_ms < b.at_ms; });
  for (auto& e : events) all.Add(e.topic, e.partition, offsets[{e.topic, e.partition}]++, e.value);

  auto run = [&](std::mt19937_64* r) {
    OrderWideTransform t(Options());
    MemoryStore store;
    DocMap docs;
    int batches = 0;
    int calls_before = dims_.calls;
    size_t pos = 0;
    const auto& recs = all.records();
    while (pos < recs.size()) {
      size_t n = r == nullptr ? recs.size() : std::min<size_t>(recs.size() - pos, 1 + (*r)() % 60);
      std::span<const InputRecord> batch(recs.data() + pos, n);
      absl::Status st = RunBatch(t, batch, kNow, &dims_, &store, &docs);
      EXPECT_TRUE(st.ok()) << st;
      pos += n;
      ++batches;
    }
    EXPECT_LE(dims_.calls - calls_before, batches);  // at most one lookup per batch
    std::vector<std::string> dead;
    for (const auto& line : store.dead_letters) {
      rapidjson::Document d = Parse(line);
      dead.push_back(Str(d, "reason") + " " + Str(d, "src"));
    }
    std::sort(dead.begin(), dead.end());
    std::vector<std::string> join;
    for (const auto& [k, row] : store.join) {
      join.push_back(absl::StrCat(row.partition, "/", row.row_id, row.matched ? "+" : ""));
    }
    return std::make_tuple(docs, dead, join);
  };
  auto reference = run(nullptr);
  ASSERT_GT(std::get<0>(reference).size(), 100u);
  ASSERT_FALSE(std::get<1>(reference).empty());  // some rows expired unmatched
  std::mt19937_64 r(11);
  for (int trial = 0; trial < 25; ++trial) {
    auto got = run(&r);
    ASSERT_EQ(std::get<0>(got), std::get<0>(reference)) << "trial " << trial;
    ASSERT_EQ(std::get<1>(got), std::get<1>(reference)) << "trial " << trial;
    ASSERT_EQ(std::get<2>(got), std::get<2>(reference)) << "trial " << trial;
  }
}

TEST(BufferedRowTest, RoundTrip) {
  std::string row = R"( {"id":7, "a":"x\"y"} )";
  std::string enc = EncodeBufferedRow("DWD_ORDER_DETAIL_I/3/12", row);
  rapidjson::Document d = Parse(enc);  // valid JSON
  EXPECT_EQ(Str(d, "src"), "DWD_ORDER_DETAIL_I/3/12");
  EXPECT_EQ(d["row"]["id"].GetInt(), 7);
  std::string_view src, back;
  ASSERT_TRUE(DecodeBufferedRow(enc, &src, &back));
  EXPECT_EQ(src, "DWD_ORDER_DETAIL_I/3/12");
  EXPECT_EQ(back, row);
  EXPECT_FALSE(DecodeBufferedRow(R"({"id":7})", &src, &back));
  EXPECT_EQ(back, R"({"id":7})");
  EXPECT_EQ(src, "");
}

// Ids and amounts pass into the document as their source text (compared as text with the rows):
// decimal(16,2) money with trailing zeros and 19+ digits, ids above 2^53 and at 2^64-1, negative
// and exponent forms. The join keys (order_id, id) are exact integers, so an order 2^64-1 meets
// its details, also when the order waited in the join state. Duplicate keys: the last one wins.
TEST_F(OrderWideTest, NumbersPassThroughByteExact) {
  dims_.rows["DIM:USER_INFO:9007199254740993"] =
      R"({"id":9007199254740993,"birthday":"1974-06-09","gender":"F"})";
  dims_.rows["DIM:BASE_PROVINCE:34"] =
      R"({"id":34,"name":"台湾","area_code":710000.00,"iso_code":"CN-71","iso_3166_2":"CN-TW"})";
  const std::string order =
      R"({"id":18446744073709551615,"consignee":"张三","total_amount":4500000001.512456777,)"
      R"("order_status":"1001","user_id":9007199254740993,"payment_way":"1101",)"
      R"("create_time":"2025-11-25 10:00:01","operate_time":null,)"
      R"("expire_time":"2025-11-25 10:15:01","province_id":34,"activity_reduce_amount":-0.50,)"
      R"("coupon_reduce_amount":0.00,"original_total_amount":99999999999999.99,)"
      R"("feight_fee":1.5E+3,"feight_fee_reduce":10130.00,"refundable_time":"2025-12-02 10:00:01",)"
      R"("order_status":"1002"})";
  const std::string detail =
      R"({"id":9223372036854775808,"order_id":18446744073709551615,"sku_id":12345678901234567890,)"
      R"("sku_name":"Apple iPhone 12","order_price":10130.00,"sku_num":1,"sku_num":2,)"
      R"("create_time":"2025-11-25 10:00:01","split_total_amount":12345678901234567.89,)"
      R"("split_activity_amount":-0.00,"split_coupon_amount":2.50e-1})";
  Raw(kOrders, order);
  Run();  // the order waits in the join state
  Raw(kDetails, detail);
  BulkOutput out = Run();
  ASSERT_EQ(out.docs, 1u) << absl::StrJoin(DeadReasons(), ",");
  auto it = docs_.find({kIndex, "9223372036854775808"});
  ASSERT_NE(it, docs_.end());
  EXPECT_EQ(it->second,
            R"({"detail_id":9223372036854775808,"order_id":18446744073709551615,)"
            R"("sku_id":12345678901234567890,"order_price":10130.00,"sku_num":2,)"
            R"("sku_name":"Apple iPhone 12","split_total_amount":12345678901234567.89,)"
            R"("split_activity_amount":-0.00,"split_coupon_amount":2.50e-1,"province_id":34,)"
            R"("order_status":"1002","user_id":9007199254740993,)"
            R"("total_amount":4500000001.512456777,"activity_reduce_amount":-0.50,)"
            R"("coupon_reduce_amount":0.00,"original_total_amount":99999999999999.99,)"
            R"("feight_fee":1.5E+3,"feight_fee_reduce":10130.00,)"
            R"("expire_time":"2025-11-25 10:15:01","refundable_time":"2025-12-02 10:00:01",)"
            R"("create_time":"2025-11-25 10:00:01","create_date":"2025-11-25",)"
            R"("create_hour":"10","province_name":"台湾","province_area_code":710000.00,)"
            R"("province_3166_2_code":"CN-TW","province_iso_code":"CN-71","user_age":51,)"
            R"("user_gender":"F","rtdw_src":"DWD_ORDER_DETAIL_I/0/0"})");
  EXPECT_EQ(ow_->counters().dims_missing, 0u);
  // An id in an exponent form is no id: a dead letter that keeps the row as written.
  const std::string bad = R"({"id":7E0,"order_id":1,"create_time":"2025-11-25 10:00:01"})";
  Raw(kDetails, bad);
  Run();
  ASSERT_EQ(store_.dead_letters.size(), 1u);
  rapidjson::Document dl = Parse(store_.dead_letters[0]);
  EXPECT_EQ(Str(dl, "reason"), "no_id");
  EXPECT_EQ(Str(dl, "raw"), bad);
}

}  // namespace
}  // namespace rtdw
