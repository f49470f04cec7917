#include "core/db_split.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tests/transforms/test_json.h"

namespace rtdw {
namespace {

using ::rtdw::testing::JsonEq;
using ::rtdw::testing::ParseOrDie;

class DbSplitTest : public ::testing::Test {
 protected:
  DbSplitTest()
      : split_(Options()),
        tables_(TableLists::From({"order_info", "order_detail"}, {"user_info", "base_province"})) {}

  static DbSplitOptions Options() {
    DbSplitOptions o;
    o.now_ms = [] { return int64_t{42}; };
    return o;
  }

  DbSplitResult Run(std::string_view value, int64_t offset = 10) {
    InputRecord in;
    in.topic = "ODS_BASE_DB";
    in.partition = 1;
    in.offset = offset;
    in.value = value;
    return split_.Process(in, tables_, &sink_, &redis_);
  }

  void ExpectDead(std::string_view value, std::string_view reason) {
    sink_.Clear();
    redis_.clear();
    DbSplitResult r = Run(value);
    EXPECT_EQ(r.outcome, DbOutcome::kDeadLetter) << value;
    EXPECT_EQ(ReasonCode(r.reason), reason) << value;
    EXPECT_TRUE(sink_.outputs.empty());
    EXPECT_TRUE(redis_.empty());
    ASSERT_EQ(sink_.dead_letters.size(), 1u) << value;
    EXPECT_EQ(sink_.dead_letters[0].reason, reason);
    auto d = ParseOrDie(sink_.dead_letters[0].value);
    EXPECT_STREQ(d["job"].GetString(), "db-split");
    EXPECT_EQ(std::string_view(d["reason"].GetString()), reason);
    EXPECT_STREQ(d["src"].GetString(), "ODS_BASE_DB/1/10");
    EXPECT_EQ(d["ts_ingest"].GetInt64(), 42);
  }

  DbSplitTransform split_;
  TableLists tables_;
  CollectingSink sink_;
  std::vector<RedisWrite> redis_;
};

TEST_F(DbSplitTest, FactInsertUpdateDelete) {
  auto r =
      Run(R"({"database":"gmall","table":"order_info","type":"insert","ts":1764036001,)"
          R"("xid":8713,"commit":true,"data":{"id":3501,"user_id":37,"province_id":11,)"
          R"("order_status":"1001","total_amount":8197.00,"create_time":"2025-11-25 10:00:01"}})");
  EXPECT_EQ(r.outcome, DbOutcome::kFact);
  EXPECT_EQ(r.topic, "DWD_ORDER_INFO_I");
  ASSERT_EQ(sink_.outputs.size(), 1u);
  const auto& o = sink_.outputs[0];
  EXPECT_EQ(o.topic, "DWD_ORDER_INFO_I");
  EXPECT_EQ(o.key, "3501");
  EXPECT_EQ(o.src, "ODS_BASE_DB/1/10");
  EXPECT_EQ(o.idx, -1);
  EXPECT_TRUE(JsonEq(R"({"id":3501,"user_id":37,"province_id":11,"order_status":"1001",)"
                     R"("total_amount":8197.00,"create_time":"2025-11-25 10:00:01"})",
                     o.value));
  EXPECT_EQ(o.value, R"({"id":3501,"user_id":37,"province_id":11,"order_status":"1001",)"
                     R"("total_amount":8197.00,"create_time":"2025-11-25 10:00:01"})");
  EXPECT_TRUE(ParseOrDie(o.value)["id"].IsInt());

  Run(R"({"table":"order_info","type":"update","data":{"id":3501,"order_status":"1002"},)"
      R"("old":{"order_status":"1001"}})");
  Run(R"({"table":"order_info","type":"delete","data":{"id":3501}})");
  Run(R"({"table":"order_info","type":"bootstrap-insert","data":{"id":3502}})");
  ASSERT_EQ(sink_.outputs.size(), 4u);
  EXPECT_EQ(sink_.outputs[1].topic, "DWD_ORDER_INFO_U");
  EXPECT_EQ(sink_.outputs[1].value, R"({"id":3501,"order_status":"1002"})");
  EXPECT_EQ(sink_.outputs[2].topic, "DWD_ORDER_INFO_D");
  EXPECT_EQ(sink_.outputs[3].topic, "DWD_ORDER_INFO_I");
  EXPECT_EQ(sink_.outputs[3].key, "3502");
  EXPECT_TRUE(redis_.empty());
  const auto& c = split_.counters();
  EXPECT_EQ(c.fact_rows[0], 2u);
  EXPECT_EQ(c.fact_rows[1], 1u);
  EXPECT_EQ(c.fact_rows[2], 1u);
}

TEST_F(DbSplitTest, OrderDetailIsKeyedByItsOrder) {
  Run(R"({"table":"order_detail","type":"insert","data":{"id":9001,"order_id":3501,"sku_id":7}})");
  ASSERT_EQ(sink_.outputs.size(), 1u);
  EXPECT_EQ(sink_.outputs[0].topic, "DWD_ORDER_DETAIL_I");
  EXPECT_EQ(sink_.outputs[0].key, "3501");
  // Without order_id: the row id, then the table.
  Run(R"({"table":"order_detail","type":"insert","data":{"id":9002}})");
  Run(R"({"table":"order_detail","type":"insert","data":{"sku_id":1}})");
  Run(R"({"table":"order_info","type":"insert","data":{"id":"abc"}})");
  ASSERT_EQ(sink_.outputs.size(), 4u);
  EXPECT_EQ(sink_.outputs[1].key, "9002");
  EXPECT_EQ(sink_.outputs[2].key, "order_detail");
  EXPECT_EQ(sink_.outputs[3].key, "abc");
}

TEST_F(DbSplitTest, DimensionsGoToRedis) {
  auto r = Run(R"({"table":"user_info","type":"bootstrap-insert","ts":1764030000,)"
               R"("data":{"id":37,"name":"张三","birthday":"1990-06-15","gender":"M"}})");
  EXPECT_EQ(r.outcome, DbOutcome::kDimension);
  Run(R"({"table":"user_info","type":"update","data":{"id":37,"name":"李四","gender":"F"}})");
  Run(R"({"table":"base_province","type":"insert","data":{"id":"11","name":"Beijing",)"
      R"("area_code":"110000","iso_code":"CN-11","iso_3166_2":"CN-BJ","region_id":"1"}})");
  Run(R"({"table":"user_info","type":"delete","data":{"id":37}})");
  EXPECT_TRUE(sink_.outputs.empty());
  ASSERT_EQ(redis_.size(), 4u);
  EXPECT_EQ(redis_[0].op, RedisWrite::Op::kSet);
  EXPECT_EQ(redis_[0].key, "DIM:USER_INFO:37");
  EXPECT_TRUE(
      JsonEq(R"({"id":37,"name":"张三","birthday":"1990-06-15","gender":"M"})", redis_[0].value));
  EXPECT_EQ(redis_[0].src, "ODS_BASE_DB/1/10");
  EXPECT_EQ(redis_[1].key, "DIM:USER_INFO:37");
  EXPECT_TRUE(JsonEq(R"({"id":37,"name":"李四","gender":"F"})", redis_[1].value));
  EXPECT_EQ(redis_[2].key, "DIM:BASE_PROVINCE:11");
  EXPECT_EQ(redis_[3].op, RedisWrite::Op::kDel);
  EXPECT_EQ(redis_[3].key, "DIM:USER_INFO:37");
  EXPECT_EQ(redis_[3].value, "");
  EXPECT_EQ(split_.counters().dim_sets, 3u);
  EXPECT_EQ(split_.counters().dim_dels, 1u);
}

TEST_F(DbSplitTest, MarkersAndUnknownTablesAreSkipped) {
  EXPECT_EQ(Run(R"({"table":"user_info","type":"bootstrap-start","data":{}})").outcome,
            DbOutcome::kSkippedNoRow);
  EXPECT_EQ(Run(R"({"table":"user_info","type":"bootstrap-complete","data":{}})").outcome,
            DbOutcome::kSkippedNoRow);
  EXPECT_EQ(Run(R"({"type":"table-create","table":"x","def":{}})").outcome,
            DbOutcome::kSkippedNoRow);
  EXPECT_EQ(Run(R"({"table":"sku_info","type":"insert","data":{"id":1}})").outcome,
            DbOutcome::kSkippedUnknownTable);
  // Unknown table with a bad row: still just skipped (not ours).
  EXPECT_EQ(Run(R"({"table":"sku_info","type":"insert","data":7})").outcome,
            DbOutcome::kSkippedUnknownTable);
  // Database-level DDL has no table: skipped and counted like the other types without a row.
  EXPECT_EQ(Run(R"({"type":"database-create","database":"gmall2","def":{"database":"gmall2",)"
                R"("charset":"utf8mb4"},"ts":1764036000,"sql":"create database gmall2"})")
                .outcome,
            DbOutcome::kSkippedNoRow);
  EXPECT_EQ(Run(R"({"type":"database-drop","database":"gmall2","def":{"database":"gmall2",)"
                R"("charset":"utf8mb4"},"ts":1764036001,"sql":"drop database gmall2"})")
                .outcome,
            DbOutcome::kSkippedNoRow);
  EXPECT_EQ(Run(R"({"type":"database-alter","database":"gmall","ts":1764036002})").outcome,
            DbOutcome::kSkippedNoRow);
  EXPECT_TRUE(sink_.outputs.empty());
  EXPECT_TRUE(sink_.dead_letters.empty());
  EXPECT_TRUE(redis_.empty());
  EXPECT_EQ(split_.counters().skipped_no_row, 6u);
  EXPECT_EQ(split_.counters().skipped_unknown_table, 2u);
  EXPECT_EQ(split_.counters().dead_letters, 0u);
}

// Maxwell writes MySQL's own case; the sets are matched ignoring it, and topic names and Redis
// keys are upper-cased as always.
TEST_F(DbSplitTest, TableNamesMatchInAnyCase) {
  auto r = Run(R"({"database":"gmall","table":"Order_Info","type":"insert","data":{"id":7}})");
  EXPECT_EQ(r.outcome, DbOutcome::kFact);
  EXPECT_EQ(r.topic, "DWD_ORDER_INFO_I");
  // The key field of order_detail applies to Order_Detail too.
  r = Run(R"({"table":"ORDER_DETAIL","type":"update","data":{"id":9,"order_id":7}})");
  EXPECT_EQ(r.topic, "DWD_ORDER_DETAIL_U");
  EXPECT_EQ(Run(R"({"table":"User_Info","type":"insert","data":{"id":37,"name":"x"}})").outcome,
            DbOutcome::kDimension);
  EXPECT_EQ(Run(R"({"table":"BASE_PROVINCE","type":"delete","data":{"id":11}})").outcome,
            DbOutcome::kDimension);
  ASSERT_EQ(sink_.outputs.size(), 2u);
  EXPECT_EQ(sink_.outputs[0].topic, "DWD_ORDER_INFO_I");
  EXPECT_EQ(sink_.outputs[0].key, "7");
  EXPECT_EQ(sink_.outputs[1].topic, "DWD_ORDER_DETAIL_U");
  EXPECT_EQ(sink_.outputs[1].key, "7");
  ASSERT_EQ(redis_.size(), 2u);
  EXPECT_EQ(redis_[0].key, "DIM:USER_INFO:37");
  EXPECT_EQ(redis_[1].key, "DIM:BASE_PROVINCE:11");
  EXPECT_EQ(redis_[1].op, RedisWrite::Op::kDel);
  // Set members written in another case by an operator match too.
  tables_ = TableLists::From({"SKU_Info"}, {"Spu_Info"});
  EXPECT_EQ(Run(R"({"table":"sku_info","type":"insert","data":{"id":1}})").outcome,
            DbOutcome::kFact);
  EXPECT_EQ(Run(R"({"table":"SPU_INFO","type":"insert","data":{"id":1}})").outcome,
            DbOutcome::kDimension);
  EXPECT_EQ(Run(R"({"table":"order_info","type":"insert","data":{"id":1}})").outcome,
            DbOutcome::kSkippedUnknownTable);
  EXPECT_EQ(sink_.outputs.back().topic, "DWD_SKU_INFO_I");
  EXPECT_EQ(redis_.back().key, "DIM:SPU_INFO:1");
}

// Money and ids as MySQL decimal(16,2) / bigint unsigned columns reach Maxwell: the DWD record
// and the Redis row carry each number exactly as the source wrote it (compared as text).
TEST_F(DbSplitTest, NumbersPassThroughByteExact) {
  const std::string fact_data =
      R"({"id":18446744073709551615,"consignee":"张三","total_amount":10130.00,)"
      R"("order_status":"1001","user_id":9007199254740993,"payment_way":"1101",)"
      R"("create_time":"2025-11-25 10:00:01","operate_time":null,"province_id":34,)"
      R"("activity_reduce_amount":-0.50,"coupon_reduce_amount":0.00,)"
      R"("original_total_amount":4500000001.512456777,"feight_fee":1.5E+3,)"
      R"("feight_fee_reduce":99999999999999.99,"refundable_time":"2025-12-02 10:00:01"})";
  auto r = Run(R"({"database":"gmall","table":"order_info","type":"insert","ts":1764036001,)"
               R"("xid":8713,"commit":true,"data":)" +
               fact_data + "}");
  EXPECT_EQ(r.outcome, DbOutcome::kFact);
  const std::string detail_data =
      R"({"id":9223372036854775808,"order_id":18446744073709551615,"sku_id":3,)"
      R"("sku_name":"Apple iPhone 12","order_price":8197.00,"sku_num":1,)"
      R"("split_total_amount":12345678901234567.89,"split_activity_amount":-0.00,)"
      R"("split_coupon_amount":2.50e-1})";
  Run(R"({"table":"order_detail","type":"bootstrap-insert","ts":1764036001,"data":)" + detail_data +
      "}");
  const std::string dim_data =
      R"({"id":18446744073709551614,"name":"北京","region_id":"1","area_code":110000,)"
      R"("iso_code":"CN-11","credit":10130.00,"score":-1.25E-7})";
  Run(R"({"table":"base_province","type":"update","data":)" + dim_data +
      R"(,"old":{"credit":10130.10}})");
  ASSERT_EQ(sink_.outputs.size(), 2u);
  EXPECT_EQ(sink_.outputs[0].value, fact_data);
  EXPECT_EQ(sink_.outputs[0].key, "18446744073709551615");
  EXPECT_EQ(sink_.outputs[1].value, detail_data);
  EXPECT_EQ(sink_.outputs[1].key, "18446744073709551615");  // by its order
  ASSERT_EQ(redis_.size(), 1u);
  EXPECT_EQ(redis_[0].key, "DIM:BASE_PROVINCE:18446744073709551614");
  EXPECT_EQ(redis_[0].value, dim_data);
}

// Where a number is a key it must be an exact integer: exponent forms and fractions are not ids
// (a dimension row is no_id; a fact row falls back to its id, then to the table name), nor are
// integers beyond 64 bits.
TEST_F(DbSplitTest, KeysAreExactIntegers) {
  Run(R"({"table":"order_detail","type":"insert","data":{"id":5,"order_id":1E3}})");
  Run(R"({"table":"order_detail","type":"insert","data":{"id":5.0,"order_id":18446744073709551616}})");
  Run(R"({"table":"order_info","type":"insert","data":{"id":-9223372036854775808}})");
  ASSERT_EQ(sink_.outputs.size(), 3u);
  EXPECT_EQ(sink_.outputs[0].key, "5");
  EXPECT_EQ(sink_.outputs[1].key, "order_detail");
  EXPECT_EQ(sink_.outputs[1].value, R"({"id":5.0,"order_id":18446744073709551616})");
  EXPECT_EQ(sink_.outputs[2].key, "-9223372036854775808");
  ExpectDead(R"({"table":"user_info","type":"insert","data":{"id":3.7e1}})", "no_id");
  ExpectDead(R"({"table":"user_info","type":"insert","data":{"id":37.0}})", "no_id");
  ExpectDead(R"({"table":"user_info","type":"insert","data":{"id":18446744073709551616}})",
             "no_id");
}

// Duplicate keys: the last one wins, at the top level of the Maxwell record and in `data`; the
// DWD record and the Redis row carry each name once, with its last value.
TEST_F(DbSplitTest, DuplicateKeysLastWins) {
  auto r = Run(R"({"table":"user_info","type":"insert","table":"order_info",)"
               R"("data":{"id":1,"order_status":"1001","total_amount":1.00,"order_status":"1002",)"
               R"("id":2}})");
  EXPECT_EQ(r.outcome, DbOutcome::kFact);
  ASSERT_EQ(sink_.outputs.size(), 1u);
  EXPECT_EQ(sink_.outputs[0].key, "2");
  EXPECT_EQ(sink_.outputs[0].value, R"({"total_amount":1.00,"order_status":"1002","id":2})");
  EXPECT_TRUE(redis_.empty());
  Run(R"({"table":"user_info","type":"update","data":{"id":37,"gender":"M","gender":"F"},)"
      R"("data":{"id":38,"gender":"M","gender":"F","name":"x"}})");
  ASSERT_EQ(redis_.size(), 1u);
  EXPECT_EQ(redis_[0].key, "DIM:USER_INFO:38");
  EXPECT_EQ(redis_[0].value, R"({"id":38,"gender":"F","name":"x"})");
  // A later `type` that carries no row makes the record one without a row.
  EXPECT_EQ(
      Run(R"({"table":"order_info","type":"insert","data":{"id":1},"type":"table-alter"})").outcome,
      DbOutcome::kSkippedNoRow);
}

TEST_F(DbSplitTest, TableListsChangeBetweenCalls) {
  const char* rec = R"({"table":"sku_info","type":"insert","data":{"id":5,"sku_name":"x"}})";
  EXPECT_EQ(Run(rec).outcome, DbOutcome::kSkippedUnknownTable);
  tables_ = TableLists::From({"order_info"}, {"user_info", "sku_info"});
  EXPECT_EQ(Run(rec).outcome, DbOutcome::kDimension);
  ASSERT_EQ(redis_.size(), 1u);
  EXPECT_EQ(redis_[0].key, "DIM:SKU_INFO:5");
  tables_ = TableLists::From({"order_info", "sku_info"}, {"user_info"});
  auto r = Run(rec);
  EXPECT_EQ(r.outcome, DbOutcome::kFact);
  EXPECT_EQ(r.topic, "DWD_SKU_INFO_I");
  // In both lists: both ways.
  tables_ = TableLists::From({"order_info", "sku_info"}, {"user_info", "sku_info"});
  Run(rec);
  EXPECT_EQ(redis_.size(), 2u);
  EXPECT_EQ(sink_.outputs.size(), 2u);
}

TEST_F(DbSplitTest, DeadLetters) {
  ExpectDead("garbage", "not_json");
  ExpectDead("{\"table\":\"user_info\",\"type\":\"insert\",\"data\":{\"id\":1,\"n\":\"\xff\"}}",
             "bad_utf8");
  ExpectDead(R"([1,2])", "not_object");
  ExpectDead(R"({"type":"insert","data":{"id":1}})", "bad_type");
  ExpectDead(R"({"type":"delete","database":"gmall","data":{"id":1}})", "bad_type");
  ExpectDead(R"({"table":"","type":"insert","data":{"id":1}})", "bad_type");
  ExpectDead(R"({"table":7,"type":"insert","data":{"id":1}})", "bad_type");
  ExpectDead(R"({"table":"order_info","data":{"id":1}})", "bad_type");
  ExpectDead(R"({"table":"order_info","type":1,"data":{"id":1}})", "bad_type");
  ExpectDead(R"({"table":"order_info","type":"insert"})", "no_payload");
  ExpectDead(R"({"table":"order_info","type":"update","data":[1]})", "no_payload");
  ExpectDead(R"({"table":"user_info","type":"delete","data":null})", "no_payload");
  ExpectDead(R"({"table":"user_info","type":"insert","data":{"name":"x"}})", "no_id");
  ExpectDead(R"({"table":"user_info","type":"insert","data":{"id":null}})", "no_id");
  ExpectDead(R"({"table":"user_info","type":"insert","data":{"id":""}})", "no_id");
  ExpectDead(R"({"table":"base_province","type":"delete","data":{"id":{"a":1}}})", "no_id");
  std::string deep(200000, '[');
  ExpectDead(deep, "too_deep");
  EXPECT_EQ(split_.counters().dead_letters, split_.counters().records);
}

TEST_F(DbSplitTest, SizeLimit) {
  DbSplitOptions o;
  o.max_record_bytes = 100;
  DbSplitTransform split(o);
  InputRecord in;
  in.topic = "ODS_BASE_DB";
  std::string big = R"({"table":"user_info","type":"insert","data":{"id":1,"x":")" +
                    std::string(200, 'x') + "\"}}";
  in.value = big;
  EXPECT_EQ(split.Process(in, tables_, &sink_, &redis_).reason, Reason::kTooBig);
}

TEST_F(DbSplitTest, NamesAndKeys) {
  EXPECT_EQ(DbSplitTransform::FactTopic("order_info", 'I'), "DWD_ORDER_INFO_I");
  EXPECT_EQ(DbSplitTransform::FactTopic("order_detail", 'D'), "DWD_ORDER_DETAIL_D");
  EXPECT_EQ(DbSplitTransform::DimKey("user_info", "7"), "DIM:USER_INFO:7");
  TableLists t = TableLists::From({"a"}, {"b"});
  EXPECT_TRUE(t.IsFact("a"));
  EXPECT_FALSE(t.IsFact("b"));
  EXPECT_TRUE(t.IsDim("b"));
}

TEST_F(DbSplitTest, PerIdOrderIsKept) {
  for (int i = 0; i < 5; ++i) {
    Run(R"({"table":"user_info","type":"update","data":{"id":1,"v":)" + std::to_string(i) + "}}");
    Run(R"({"table":"order_info","type":"update","data":{"id":1,"v":)" + std::to_string(i) + "}}");
  }
  ASSERT_EQ(redis_.size(), 5u);
  ASSERT_EQ(sink_.outputs.size(), 5u);
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(ParseOrDie(redis_[i].value)["v"].GetInt(), i);
    EXPECT_EQ(ParseOrDie(sink_.outputs[i].value)["v"].GetInt(), i);
  }
}

}  // namespace
}  // namespace rtdw
