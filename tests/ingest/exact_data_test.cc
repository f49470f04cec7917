// Exact data end to end (docs/FORMATS.md "Numbers pass through byte-exact", "Duplicate keys",
// §2 error-only records, §3 table case and DDL without a table): real-world record shapes go
// through the real rtdwd — log-split, db-split, dau, order-wide — against rtdw-kafka-mock,
// redis-server and rtdw-es-lite, and the bytes that land in Kafka, Redis and ES are compared as
// text with the source.
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "connectors/es/es_client.h"
#include "gtest/gtest.h"
#include "tests/harness/kafka_reader.h"
#include "tests/pipeline/pipeline_stack.h"

namespace rtdw::testing {
namespace {

std::string Maxwell(const std::string& table, const std::string& type, const std::string& data) {
  return absl::StrCat(R"({"database":"gmall","table":")", table, R"(","type":")", type,
                      R"(","ts":1764036001,"xid":8713,"commit":true,"data":)", data, "}");
}

// The `_source` of GET /<index>/_doc/<id>, as the text es-lite answered (not re-serialized).
std::string SourceText(PipelineStack& stack, const std::string& index, const std::string& id) {
  EsClientOptions o;
  o.urls = {stack.es().url()};
  o.warn = [](std::string_view) {};
  auto client = EsClient::Create(o);
  EXPECT_TRUE(client.ok());
  if (!client.ok()) return "";
  auto r = (*client)->Perform("GET", absl::StrCat("/", index, "/_doc/", id));
  EXPECT_TRUE(r.ok());
  if (!r.ok()) return "";
  EXPECT_EQ(r->status, 200) << r->body;
  // `_source` is the response's last member: `..."_source":{...}}`.
  const std::string key = R"("_source":)";
  size_t at = r->body.find(key);
  EXPECT_NE(at, std::string::npos) << r->body;
  if (at == std::string::npos || r->body.empty() || r->body.back() != '}') return r->body;
  return r->body.substr(at + key.size(), r->body.size() - 1 - (at + key.size()));
}

std::vector<std::string> Values(const std::string& bootstrap, const std::string& topic) {
  auto recs = ReadTopic(bootstrap, topic, std::chrono::seconds(30));
  EXPECT_TRUE(recs.ok()) << topic << ": " << recs.status();
  std::vector<std::string> out;
  if (recs.ok()) {
    for (const auto& r : *recs) out.push_back(r.value);
  }
  return out;
}

TEST(ExactDataTest, NumbersDuplicateKeysTableCaseDdlAndErrorOnlyRecordsEndToEnd) {
  PipelineStack stack(StackOptions{.partitions = 2});
  ASSERT_TRUE(stack.Start().ok());
  const std::string bootstrap = stack.kafka().bootstrap();

  // --- Maxwell: dimension rows, an order and its detail, DDL, in MySQL's own table case. ---
  const std::string user =
      R"({"id":9007199254740993,"login_name":"xfttjpbk","birthday":"1974-06-09","gender":"M",)"
      R"("gender":"F","credit":10130.00})";
  const std::string user_out =  // the last gender, once
      R"({"id":9007199254740993,"login_name":"xfttjpbk","birthday":"1974-06-09","gender":"F",)"
      R"("credit":10130.00})";
  const std::string province =
      R"({"id":34,"name":"台湾","region_id":"2","area_code":710000.00,"iso_code":"CN-71",)"
      R"("iso_3166_2":"CN-TW"})";
  const std::string order =
      R"({"id":18446744073709551615,"consignee":"张三","total_amount":4500000001.512456777,)"
      R"("order_status":"1001","user_id":9007199254740993,"payment_way":"1101",)"
      R"("create_time":"2025-11-25 10:00:01","operate_time":null,)"
      R"("expire_time":"2025-11-25 10:15:01","province_id":34,"activity_reduce_amount":-0.50,)"
      R"("coupon_reduce_amount":0.00,"original_total_amount":99999999999999.99,)"
      R"("feight_fee":1.5E+3,"feight_fee_reduce":10130.00,)"
      R"("refundable_time":"2025-12-02 10:00:01"})";
  const std::string detail =
      R"({"id":9223372036854775808,"order_id":18446744073709551615,"sku_id":3,)"
      R"("sku_name":"Apple iPhone 12 (A2404) 64GB 黑色","order_price":10130.00,"sku_num":1,)"
      R"("create_time":"2025-11-25 10:00:01","split_total_amount":12345678901234567.89,)"
      R"("split_activity_amount":-0.00,"split_coupon_amount":2.50e-1})";
  std::vector<std::string> db = {
      Maxwell("User_Info", "bootstrap-insert", user),
      Maxwell("BASE_PROVINCE", "insert", province),
      R"({"type":"database-create","database":"gmall2","def":{"database":"gmall2",)"
      R"("charset":"utf8mb4"},"ts":1764036000,"sql":"create database gmall2"})",
      R"({"type":"database-drop","database":"gmall2","def":{"database":"gmall2",)"
      R"("charset":"utf8mb4"},"ts":1764036000,"sql":"drop database gmall2"})",
      Maxwell("Order_Info", "insert", order),
      Maxwell("order_detail", "insert", detail),
      Maxwell("user_info", "insert", R"({"id":1E3,"name":"an id in exponent form"})"),
  };
  // Maxwell partitions by id; one key keeps the input order on one partition.
  ASSERT_TRUE(
      ProduceAll(bootstrap, "ODS_BASE_DB", db, std::vector<std::string>(db.size(), "1")).ok());
  std::string log;
  ASSERT_EQ(stack.RunToIdle("db-split", 1.5, {}, &log), 0) << log;

  EXPECT_EQ(Values(bootstrap, "DWD_ORDER_INFO_I"), std::vector<std::string>{order});
  EXPECT_EQ(Values(bootstrap, "DWD_ORDER_DETAIL_I"), std::vector<std::string>{detail});
  auto user_row = stack.redis().Command({"GET", "DIM:USER_INFO:9007199254740993"});
  ASSERT_TRUE(user_row.ok());
  EXPECT_EQ(*user_row, user_out);
  auto province_row = stack.redis().Command({"GET", "DIM:BASE_PROVINCE:34"});
  ASSERT_TRUE(province_row.ok());
  EXPECT_EQ(*province_row, province);
  // The DDL was skipped, not dead-lettered; the exponent-form id was, with its raw as written.
  auto dead = ReadTopic(bootstrap, "DWD_DEAD_LETTER", std::chrono::seconds(30));
  ASSERT_TRUE(dead.ok());
  ASSERT_EQ(dead->size(), 1u);
  EXPECT_EQ((*dead)[0].headers.at("rtdw-reason"), "no_id");
  EXPECT_NE((*dead)[0].value.find(R"(\"id\":1E3,)"), std::string::npos) << (*dead)[0].value;

  // --- App logs: a page with numbers and a duplicate `vc`, an error-only record. ---
  const std::string page =
      R"({"common":{"ar":"34","ba":"Xiaomi","ch":"xiaomi","is_new":"1","md":"Xiaomi 10 Pro",)"
      R"("mid":"mid_142","os":"Android 11.0","uid":9007199254740993,"vc":"v2.1.132",)"
      R"("vc":"v2.1.134"},"page":{"during_time":9007199254740993,"item":10130.00,)"
      R"("item_type":"sku_id","page_id":"good_detail","source_type":"recommend"},)"
      R"("ts":1764036000000})";
  const std::string error_only =
      R"({"common":{"ar":"1","mid":"mid_403","os":"Android 11.0","uid":"4500000001"},)"
      R"("err":{"error_code":3245,"msg":" Exception in thread java.net.SocketTimeoutException"},)"
      R"("ts":1764036000001.000})";
  const std::string error_only_ok =
      R"({"common":{"ar":"1","mid":"mid_403","uid":"4500000001"},"err":{"error_code":1245,)"
      R"("msg":"x"},"amount":10130.00,"ts":1764036000002})";
  ASSERT_TRUE(ProduceAll(bootstrap, "ODS_BASE_LOG", {page, error_only, error_only_ok}).ok());
  ASSERT_EQ(stack.RunToIdle("log-split", 1.5, {}, &log), 0) << log;
  const std::string page_out =
      R"({"mid":"mid_142","user_id":9007199254740993,"province_id":"34","channel":"xiaomi",)"
      R"("is_new":"1","model":"Xiaomi 10 Pro","operate_system":"Android 11.0",)"
      R"("version_code":"v2.1.134","brand":"Xiaomi","page_id":"good_detail",)"
      R"("page_item":10130.00,"page_item_type":"sku_id","during_time":9007199254740993,)"
      R"("source_type":"recommend","ts":1764036000000})";
  EXPECT_EQ(Values(bootstrap, "DWD_PAGE_LOG_TOPIC"), std::vector<std::string>{page_out});
  // The error-only record with an integer ts goes whole; the one with `ts` 1764036000001.000
  // (no integer) is a dead letter.
  EXPECT_EQ(Values(bootstrap, "DWD_ERROR_LOG_TOPIC"), std::vector<std::string>{error_only_ok});

  // --- dau and order-wide into es-lite: _source compared as text. ---
  ASSERT_EQ(stack.RunToIdle("order-wide", 1.5, {}, &log), 0) << log;
  ASSERT_EQ(stack.RunToIdle("dau", 1.5, {}, &log), 0) << log;
  EXPECT_EQ(SourceText(stack, "gmall_order_wide_2025-11-25", "9223372036854775808"),
            R"({"detail_id":9223372036854775808,"order_id":18446744073709551615,"sku_id":3,)"
            R"("order_price":10130.00,"sku_num":1,"sku_name":"Apple iPhone 12 (A2404) 64GB 黑色",)"
            R"("split_total_amount":12345678901234567.89,"split_activity_amount":-0.00,)"
            R"("split_coupon_amount":2.50e-1,"province_id":34,"order_status":"1001",)"
            R"("user_id":9007199254740993,"total_amount":4500000001.512456777,)"
            R"("activity_reduce_amount":-0.50,"coupon_reduce_amount":0.00,)"
            R"("original_total_amount":99999999999999.99,"feight_fee":1.5E+3,)"
            R"("feight_fee_reduce":10130.00,"expire_time":"2025-11-25 10:15:01",)"
            R"("refundable_time":"2025-12-02 10:00:01","create_time":"2025-11-25 10:00:01",)"
            R"("create_date":"2025-11-25","create_hour":"10","province_name":"台湾",)"
            R"("province_area_code":710000.00,"province_3166_2_code":"CN-TW",)"
            R"("province_iso_code":"CN-71","user_age":51,"user_gender":"F",)"
            R"("rtdw_src":"DWD_ORDER_DETAIL_I/)" +
                absl::StrCat((*ReadTopic(bootstrap, "DWD_ORDER_DETAIL_I"))[0].partition) +
                R"(/0"})");
  EXPECT_EQ(SourceText(stack, "gmall_dau_info_2025-11-25", "mid_142"),
            R"({"mid":"mid_142","user_id":9007199254740993,"province_id":"34",)"
            R"("channel":"xiaomi","is_new":"1","model":"Xiaomi 10 Pro",)"
            R"("operate_system":"Android 11.0","version_code":"v2.1.134","brand":"Xiaomi",)"
            R"("page_id":"good_detail","page_item":10130.00,"page_item_type":"sku_id",)"
            R"("source_type":"recommend","during_time":9007199254740993,"user_gender":"F",)"
            R"("user_age":51,"province_name":"台湾","province_iso_code":"CN-71",)"
            R"("province_3166_2":"CN-TW","province_area_code":710000.00,"dt":"2025-11-25",)"
            R"("hr":"10","ts":1764036000000,"rtdw_src":"DWD_PAGE_LOG_TOPIC/)" +
                absl::StrCat((*ReadTopic(bootstrap, "DWD_PAGE_LOG_TOPIC"))[0].partition) +
                R"(/0"})");
}

}  // namespace
}  // namespace rtdw::testing
