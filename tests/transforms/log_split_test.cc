#include "core/log_split.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tests/transforms/test_json.h"

namespace rtdw {
namespace {

using ::rtdw::testing::JsonEq;
using ::rtdw::testing::Keys;
using ::rtdw::testing::ParseOrDie;

constexpr char kStartRecord[] =
    R"({"common":{"ar":"1","ba":"Xiaomi","ch":"xiaomi","is_new":"1","md":"Xiaomi 10 Pro",)"
    R"("mid":"mid_142","os":"Android 11.0","uid":"37","vc":"v2.1.134"},)"
    R"("start":{"entry":"icon","loading_time":2354,"open_ad_id":7,"open_ad_ms":5213,)"
    R"("open_ad_skip_ms":0},"ts":1764036000000})";

constexpr char kPageRecord[] =
    R"({"common":{"ar":"11","ba":"iPhone","ch":"Appstore","is_new":"0","md":"iPhone 13",)"
    R"("mid":"mid_77","os":"iOS 13.3.1","uid":"581","vc":"v2.1.132"},)"
    R"("page":{"during_time":13968,"item":"31","item_type":"sku_id","last_page_id":"good_list",)"
    R"("page_id":"good_detail","source_type":"recommend"},)"
    R"("displays":[{"display_type":"query","item":"12","item_type":"sku_id","order":1,"pos_id":2},)"
    R"({"display_type":"promotion","item":"4","item_type":"sku_id","order":2,"pos_id":1}],)"
    R"("actions":[{"action_id":"favor_add","item":"31","item_type":"sku_id","ts":1764036006984}],)"
    R"("ts":1764036000000})";

constexpr char kCommonOut77[] =
    R"("mid":"mid_77","user_id":"581","province_id":"11","channel":"Appstore","is_new":"0",)"
    R"("model":"iPhone 13","operate_system":"iOS 13.3.1","version_code":"v2.1.132",)"
    R"("brand":"iPhone")";

constexpr char kPageOut77[] =
    R"("page_id":"good_detail","last_page_id":"good_list","page_item":"31",)"
    R"("page_item_type":"sku_id","during_time":13968,"source_type":"recommend",)"
    R"("ts":1764036000000)";

class LogSplitTest : public ::testing::Test {
 protected:
  LogSplitTest() : split_(Options()) {}

  static LogSplitOptions Options() {
    LogSplitOptions o;
    o.max_record_bytes = 4096;
    o.max_depth = 8;
    o.max_array_items = 3;
    o.now_ms = [] { return int64_t{1764036000123}; };
    return o;
  }

  SplitOutcome Run(std::string_view value, int64_t offset = 1734, std::string_view key = "") {
    InputRecord in;
    in.topic = "ODS_BASE_LOG";
    in.partition = 2;
    in.offset = offset;
    in.key = key;
    in.value = value;
    return split_.Process(in, &sink_);
  }

  // Runs `value`, expects exactly one dead letter with `reason` and nothing else.
  void ExpectDead(std::string_view value, std::string_view reason) {
    sink_.Clear();
    SplitOutcome o = Run(value);
    EXPECT_TRUE(o.dead_lettered) << value;
    EXPECT_EQ(ReasonCode(o.reason), reason) << value;
    EXPECT_EQ(o.emitted, 0);
    EXPECT_TRUE(sink_.outputs.empty()) << value;
    ASSERT_EQ(sink_.dead_letters.size(), 1u) << value;
    EXPECT_EQ(sink_.dead_letters[0].reason, reason) << value;
    EXPECT_EQ(sink_.dead_letters[0].src, "ODS_BASE_LOG/2/1734");
    auto d = ParseOrDie(sink_.dead_letters[0].value);
    EXPECT_STREQ(d["job"].GetString(), "log-split");
    EXPECT_EQ(std::string_view(d["reason"].GetString()), reason);
    EXPECT_STREQ(d["src"].GetString(), "ODS_BASE_LOG/2/1734");
    EXPECT_EQ(d["ts_ingest"].GetInt64(), 1764036000123);
    EXPECT_GT(d["detail"].GetStringLength(), 0u);
    if (d.HasMember("raw")) {
      EXPECT_EQ(std::string_view(d["raw"].GetString(), d["raw"].GetStringLength()),
                value.substr(0, d["raw"].GetStringLength()));
    } else {
      EXPECT_TRUE(d.HasMember("raw_base64"));
    }
  }

  LogSplitTransform split_;
  CollectingSink sink_;
};

TEST_F(LogSplitTest, StartRecordExactly) {
  SplitOutcome o = Run(kStartRecord);
  EXPECT_FALSE(o.dead_lettered);
  EXPECT_EQ(o.emitted, 1);
  ASSERT_EQ(sink_.outputs.size(), 1u);
  const auto& out = sink_.outputs[0];
  EXPECT_EQ(out.slot, static_cast<int>(LogSlot::kStart));
  EXPECT_EQ(out.topic, "");
  EXPECT_EQ(out.key, "mid_142");
  EXPECT_EQ(out.src, "ODS_BASE_LOG/2/1734");
  EXPECT_EQ(out.idx, -1);
  EXPECT_EQ(out.value,
            R"({"mid":"mid_142","user_id":"37","province_id":"1","channel":"xiaomi","is_new":"1",)"
            R"("model":"Xiaomi 10 Pro","operate_system":"Android 11.0","version_code":"v2.1.134",)"
            R"("brand":"Xiaomi","entry":"icon","open_ad_id":"7","loading_time_ms":2354,)"
            R"("open_ad_ms":5213,"open_ad_skip_ms":0,"ts":1764036000000})");
  EXPECT_TRUE(sink_.dead_letters.empty());
}

TEST_F(LogSplitTest, PageDisplaysActions) {
  SplitOutcome o = Run(kPageRecord, 99);
  EXPECT_EQ(o.emitted, 4);
  ASSERT_EQ(sink_.outputs.size(), 4u);
  const auto& page = sink_.outputs[0];
  EXPECT_EQ(page.slot, static_cast<int>(LogSlot::kPage));
  EXPECT_EQ(page.value, std::string("{") + kCommonOut77 + "," + kPageOut77 + "}");
  const auto& d0 = sink_.outputs[1];
  EXPECT_EQ(d0.slot, static_cast<int>(LogSlot::kDisplay));
  EXPECT_EQ(d0.idx, 0);
  EXPECT_EQ(d0.value,
            std::string("{") + kCommonOut77 + "," + kPageOut77 +
                R"(,"display_type":"query","display_item":"12",)"
                R"("display_item_type":"sku_id","display_order":"1","display_pos_id":"2"})");
  const auto& d1 = sink_.outputs[2];
  EXPECT_EQ(d1.slot, static_cast<int>(LogSlot::kDisplay));
  EXPECT_EQ(d1.idx, 1);
  EXPECT_EQ(d1.value,
            std::string("{") + kCommonOut77 + "," + kPageOut77 +
                R"(,"display_type":"promotion","display_item":"4",)"
                R"("display_item_type":"sku_id","display_order":"2","display_pos_id":"1"})");
  const auto& a0 = sink_.outputs[3];
  EXPECT_EQ(a0.slot, static_cast<int>(LogSlot::kAction));
  EXPECT_EQ(a0.idx, 0);
  EXPECT_EQ(a0.value, std::string("{") + kCommonOut77 + "," + kPageOut77 +
                          R"(,"action_id":"favor_add","action_item":"31",)"
                          R"("action_item_type":"sku_id","action_ts":1764036006984})");
  for (const auto& out : sink_.outputs) {
    EXPECT_EQ(out.key, "mid_77");
    EXPECT_EQ(out.src, "ODS_BASE_LOG/2/99");
  }
  const auto& c = split_.counters();
  EXPECT_EQ(c.records, 1u);
  EXPECT_EQ(c.page, 1u);
  EXPECT_EQ(c.display, 2u);
  EXPECT_EQ(c.action, 1u);
}

TEST_F(LogSplitTest, ErrorRecordGoesWholeAndIsNotSplit) {
  std::string rec = std::string(kPageRecord);
  rec.insert(rec.size() - 1,
             R"(,"err":{"error_code":1245,"msg":" Exception in thread \n java.net.X \u0000"}  )");
  SplitOutcome o = Run(rec);
  EXPECT_EQ(o.emitted, 1);
  ASSERT_EQ(sink_.outputs.size(), 1u);
  EXPECT_EQ(sink_.outputs[0].slot, static_cast<int>(LogSlot::kError));
  EXPECT_EQ(sink_.outputs[0].value, rec);  // byte for byte
  EXPECT_EQ(sink_.outputs[0].key, "mid_77");
  EXPECT_EQ(sink_.outputs[0].src, "ODS_BASE_LOG/2/1734");
  EXPECT_EQ(split_.counters().error, 1u);
  EXPECT_EQ(split_.counters().page, 0u);

  // A start record with err, too.
  sink_.Clear();
  rec = std::string(kStartRecord);
  rec.insert(rec.size() - 1, R"(,"err":{"error_code":1,"msg":"x"})");
  Run(rec);
  ASSERT_EQ(sink_.outputs.size(), 1u);
  EXPECT_EQ(sink_.outputs[0].slot, static_cast<int>(LogSlot::kError));

  // err: null does not count as carrying an error.
  sink_.Clear();
  rec = std::string(kStartRecord);
  rec.insert(rec.size() - 1, R"(,"err":null)");
  Run(rec);
  ASSERT_EQ(sink_.outputs.size(), 1u);
  EXPECT_EQ(sink_.outputs[0].slot, static_cast<int>(LogSlot::kStart));
}

TEST_F(LogSplitTest, StartAndPageBothWays) {
  Run(R"({"common":{"mid":"m1"},"start":{"entry":"push"},"page":{"page_id":"home"},"ts":5})");
  ASSERT_EQ(sink_.outputs.size(), 2u);
  EXPECT_EQ(sink_.outputs[0].slot, static_cast<int>(LogSlot::kStart));
  EXPECT_EQ(sink_.outputs[0].value, R"({"mid":"m1","entry":"push","ts":5})");
  EXPECT_EQ(sink_.outputs[1].slot, static_cast<int>(LogSlot::kPage));
  EXPECT_EQ(sink_.outputs[1].value, R"({"mid":"m1","page_id":"home","ts":5})");
}

TEST_F(LogSplitTest, AbsentAndNullFieldsAreOmitted) {
  Run(R"({"common":{"mid":"m1","uid":null,"ar":"3"},)"
      R"("page":{"page_id":"home","last_page_id":null,"during_time":10},)"
      R"("displays":[{"item":"5"}],"actions":[{}],"ts":7})");
  ASSERT_EQ(sink_.outputs.size(), 3u);
  EXPECT_EQ(sink_.outputs[0].value,
            R"({"mid":"m1","province_id":"3","page_id":"home","during_time":10,"ts":7})");
  EXPECT_EQ(sink_.outputs[1].value,
            R"({"mid":"m1","province_id":"3","page_id":"home","during_time":10,"ts":7,)"
            R"("display_item":"5"})");
  EXPECT_EQ(sink_.outputs[2].value,
            R"({"mid":"m1","province_id":"3","page_id":"home","during_time":10,"ts":7})");
  // Empty last_page_id is present: kept as "".
  sink_.Clear();
  Run(R"({"common":{"mid":"m1"},"page":{"page_id":"home","last_page_id":""},"ts":7})");
  EXPECT_EQ(sink_.outputs[0].value, R"({"mid":"m1","page_id":"home","last_page_id":"","ts":7})");
}

TEST_F(LogSplitTest, NoExtraFields) {
  Run(R"({"common":{"mid":"m1","extra":"x","sid":"s"},"start":{"entry":"icon","first_open":1},)"
      R"("page":{"page_id":"home","extra":1},"displays":[{"item":"1","x":2}],)"
      R"("actions":[{"action_id":"a","y":3}],"ts":7,"zzz":{"a":1}})");
  ASSERT_EQ(sink_.outputs.size(), 4u);
  EXPECT_EQ(Keys(sink_.outputs[0].value), (std::vector<std::string>{"mid", "entry", "ts"}));
  EXPECT_EQ(Keys(sink_.outputs[1].value), (std::vector<std::string>{"mid", "page_id", "ts"}));
  EXPECT_EQ(Keys(sink_.outputs[2].value),
            (std::vector<std::string>{"mid", "page_id", "ts", "display_item"}));
  EXPECT_EQ(Keys(sink_.outputs[3].value),
            (std::vector<std::string>{"mid", "page_id", "ts", "action_id"}));
}

TEST_F(LogSplitTest, TypesArePreserved) {
  // Numbers stay numbers (a double keeps its value), strings stay strings, odd types pass through.
  Run(R"({"common":{"mid":"m1","uid":37,"ar":1.5,"is_new":true},)"
      R"("page":{"page_id":"home","during_time":8197.00,"item":["a"],"source_type":{"k":"v"}},)"
      R"("ts":1764036000000})");
  ASSERT_EQ(sink_.outputs.size(), 1u);
  EXPECT_EQ(sink_.outputs[0].value, R"({"mid":"m1","user_id":37,"province_id":1.5,"is_new":true,)"
                                    R"("page_id":"home","page_item":["a"],"during_time":8197.00,)"
                                    R"("source_type":{"k":"v"},"ts":1764036000000})");
}

// Numbers are copied as their source text into every DWD record: decimals keep their scale and
// every digit, integers beyond 2^53 and up to 2^64-1 stay exact, negative and exponent forms
// stay as written. Compared as text: a double on the way would give 10130.0, 4500000001.512457,
// 9007199254740992, 1500.0.
TEST_F(LogSplitTest, NumbersPassThroughByteExact) {
  Run(R"({"common":{"ar":"11","ba":"iPhone","ch":"Appstore","is_new":"0","md":"iPhone 13",)"
      R"("mid":"mid_77","os":"iOS 13.3.1","uid":18446744073709551615,"vc":"v2.1.132"},)"
      R"("start":{"entry":"icon","loading_time":10130.00,"open_ad_id":9007199254740993,)"
      R"("open_ad_ms":-0.50,"open_ad_skip_ms":1.5E+3},)"
      R"("page":{"during_time":4500000001.512456777,"item":99999999999999.99,)"
      R"("item_type":"sku_id","page_id":"good_detail","source_type":"recommend"},)"
      R"("displays":[{"display_type":"query","item":12,"item_type":"sku_id",)"
      R"("order":123456789012345678901234567890,"pos_id":2.50}],)"
      R"("actions":[{"action_id":"favor_add","item":-7,"item_type":"sku_id",)"
      R"("ts":1764036006984.000}],)"
      R"("ts":1764036000000})");
  ASSERT_EQ(sink_.outputs.size(), 4u)
      << (sink_.dead_letters.empty() ? "" : sink_.dead_letters[0].value);
  const std::string common =
      R"({"mid":"mid_77","user_id":18446744073709551615,"province_id":"11","channel":"Appstore",)"
      R"("is_new":"0","model":"iPhone 13","operate_system":"iOS 13.3.1",)"
      R"("version_code":"v2.1.132","brand":"iPhone",)";
  const std::string page =
      R"("page_id":"good_detail","page_item":99999999999999.99,"page_item_type":"sku_id",)"
      R"("during_time":4500000001.512456777,"source_type":"recommend","ts":1764036000000)";
  EXPECT_EQ(sink_.outputs[0].value,
            common + R"("entry":"icon","open_ad_id":"9007199254740993","loading_time_ms":10130.00,)"
                     R"("open_ad_ms":-0.50,"open_ad_skip_ms":1.5E+3,"ts":1764036000000})");
  EXPECT_EQ(sink_.outputs[1].value, common + page + "}");
  EXPECT_EQ(sink_.outputs[2].value,
            common + page +
                R"(,"display_type":"query","display_item":12,"display_item_type":"sku_id",)"
                R"("display_order":"123456789012345678901234567890","display_pos_id":"2.50"})");
  EXPECT_EQ(sink_.outputs[3].value,
            common + page +
                R"(,"action_id":"favor_add","action_item":-7,"action_item_type":"sku_id",)"
                R"("action_ts":1764036006984.000})");
}

// `ts` must be an integer literal within int64: exponent forms and fractions are bad_type even
// when their value is whole (1.764036E12), and so is a ts beyond int64.
TEST_F(LogSplitTest, TsMustBeAnIntegerLiteral) {
  for (const char* ts : {"1.764036E12", "1764036000000.0", "1E3", "9223372036854775808",
                         "18446744073709551615", "-1.0"}) {
    ExpectDead(R"({"common":{"mid":"m"},"page":{},"ts":)" + std::string(ts) + "}", "bad_type");
  }
  sink_.Clear();
  Run(R"({"common":{"mid":"m"},"page":{},"ts":-9223372036854775808})");
  ASSERT_EQ(sink_.outputs.size(), 1u);
  EXPECT_EQ(sink_.outputs[0].value, R"({"mid":"m","ts":-9223372036854775808})");
}

// Duplicate keys (a real app-log record carries `vc` twice): the last one wins, for validation
// and for every field copied; the record is not rejected.
TEST_F(LogSplitTest, DuplicateKeysLastWins) {
  Run(R"({"common":{"ar":"1","ba":"Xiaomi","ch":"xiaomi","is_new":"1","md":"Xiaomi 10 Pro",)"
      R"("mid":"mid_142","os":"Android 11.0","uid":"37","vc":"v2.1.132","vc":"v2.1.134"},)"
      R"("page":{"page_id":"home","during_time":1,"page_id":"good_detail","during_time":2.50},)"
      R"("displays":[{"item":"1","order":1,"order":{"bad":1},"order":2}],)"
      R"("ts":"not yet","ts":1764036000000})");
  ASSERT_EQ(sink_.outputs.size(), 2u)
      << (sink_.dead_letters.empty() ? "" : sink_.dead_letters[0].value);
  const std::string common =
      R"({"mid":"mid_142","user_id":"37","province_id":"1","channel":"xiaomi","is_new":"1",)"
      R"("model":"Xiaomi 10 Pro","operate_system":"Android 11.0","version_code":"v2.1.134",)"
      R"("brand":"Xiaomi",)";
  EXPECT_EQ(sink_.outputs[0].value,
            common + R"("page_id":"good_detail","during_time":2.50,"ts":1764036000000})");
  EXPECT_EQ(sink_.outputs[1].value,
            common + R"("page_id":"good_detail","during_time":2.50,"ts":1764036000000,)"
                     R"("display_item":"1","display_order":"2"})");
  // The last mid is the key; a last ts that is no integer is bad_type; a last `page` that is no
  // object too.
  sink_.Clear();
  Run(R"({"common":{"mid":"a","mid":"b"},"page":{},"ts":1})");
  ASSERT_EQ(sink_.outputs.size(), 1u);
  EXPECT_EQ(sink_.outputs[0].key, "b");
  ExpectDead(R"({"common":{"mid":"m"},"page":{},"ts":1,"ts":"1"})", "bad_type");
  ExpectDead(R"({"common":{"mid":"m"},"page":{},"page":7,"ts":1})", "bad_type");
  ExpectDead(R"({"common":{"mid":"m"},"common":{"uid":"1"},"page":{},"ts":1})", "no_mid");
  // A copied object value is written with each name once.
  sink_.Clear();
  Run(R"({"common":{"mid":"m"},"page":{"item":{"a":1,"b":2,"a":3.0}},"ts":1})");
  ASSERT_EQ(sink_.outputs.size(), 1u);
  EXPECT_EQ(sink_.outputs[0].value, R"({"mid":"m","page_item":{"b":2,"a":3.0},"ts":1})");
}

// A valid record with `err` but neither `start` nor `page` (newer app-log generators emit such
// records) goes whole to the error topic; only one with none of start, page, err is no_payload.
TEST_F(LogSplitTest, ErrorOnlyRecordsGoWholeToTheErrorTopic) {
  const std::string rec =
      R"({"common":{"ar":"23","ba":"Honor","ch":"wandoujia","is_new":"1","md":"Honor 20s",)"
      R"("mid":"mid_403","os":"Android 11.0","sid":"a1b2","uid":"4500000001","vc":"v2.1.134"},)"
      R"("err":{"error_code":3245,"msg":" Exception in thread \\ java.net.SocketTimeoutException\n )"
      R"j(\tat com.atgugu.gmall2020.mock.bean.log.AppError.main(AppError.java:xxxxxx)"},)j"
      R"("amount":10130.00,"ts":1764036000000})";
  SplitOutcome o = Run(rec);
  EXPECT_FALSE(o.dead_lettered);
  EXPECT_EQ(o.emitted, 1);
  ASSERT_EQ(sink_.outputs.size(), 1u);
  EXPECT_EQ(sink_.outputs[0].slot, static_cast<int>(LogSlot::kError));
  EXPECT_EQ(sink_.outputs[0].value, rec);  // byte for byte
  EXPECT_EQ(sink_.outputs[0].key, "mid_403");
  EXPECT_EQ(sink_.outputs[0].src, "ODS_BASE_LOG/2/1734");
  EXPECT_EQ(split_.counters().error, 1u);
  EXPECT_EQ(split_.counters().dead_letters, 0u);
  // Still validated first: no mid, no integer ts, a bad `displays` are dead letters.
  ExpectDead(R"({"common":{},"err":{"error_code":1},"ts":1})", "no_mid");
  ExpectDead(R"({"common":{"mid":"m"},"err":{"error_code":1},"ts":1.0})", "bad_type");
  ExpectDead(R"({"common":{"mid":"m"},"err":{"error_code":1},"displays":7,"ts":1})", "bad_type");
  // None of start, page, err (err null counts as absent): no_payload.
  ExpectDead(R"({"common":{"mid":"m"},"err":null,"ts":1})", "no_payload");
  ExpectDead(R"({"common":{"mid":"m"},"displays":[],"ts":1})", "no_payload");
}

TEST_F(LogSplitTest, StringifiedFields) {
  Run(R"({"common":{"mid":"m"},"start":{"open_ad_id":"ad9"},"ts":1})");
  Run(R"({"common":{"mid":"m"},"start":{"open_ad_id":12345678901234},"ts":1})");
  Run(R"({"common":{"mid":"m"},"start":{"open_ad_id":2.5},"ts":1})");
  Run(R"({"common":{"mid":"m"},"page":{},"displays":[{"order":true,"pos_id":"p"}],"ts":1})");
  Run(R"({"common":{"mid":"m"},"start":{"open_ad_id":-0.50},"ts":1})");
  Run(R"({"common":{"mid":"m"},"start":{"open_ad_id":1.5E+3},"ts":1})");
  ASSERT_EQ(sink_.outputs.size(), 7u);
  EXPECT_EQ(sink_.outputs[5].value, R"({"mid":"m","open_ad_id":"-0.50","ts":1})");
  EXPECT_EQ(sink_.outputs[6].value, R"({"mid":"m","open_ad_id":"1.5E+3","ts":1})");
  EXPECT_EQ(sink_.outputs[0].value, R"({"mid":"m","open_ad_id":"ad9","ts":1})");
  EXPECT_EQ(sink_.outputs[1].value, R"({"mid":"m","open_ad_id":"12345678901234","ts":1})");
  EXPECT_EQ(sink_.outputs[2].value, R"({"mid":"m","open_ad_id":"2.5","ts":1})");
  EXPECT_EQ(sink_.outputs[4].value,
            R"({"mid":"m","ts":1,"display_order":"true","display_pos_id":"p"})");
  ExpectDead(R"({"common":{"mid":"m"},"start":{"open_ad_id":{"a":1}},"ts":1})", "bad_type");
  ExpectDead(R"({"common":{"mid":"m"},"page":{},"displays":[{"order":[1]}],"ts":1})", "bad_type");
}

TEST_F(LogSplitTest, UnicodeAndEscapesSurvive) {
  Run(R"({"common":{"mid":"m\"1","md":"小米 \u00e9\t"},"page":{"page_id":"a\\b"},"ts":1})");
  ASSERT_EQ(sink_.outputs.size(), 1u);
  auto d = ParseOrDie(sink_.outputs[0].value);
  EXPECT_STREQ(d["mid"].GetString(), "m\"1");
  EXPECT_STREQ(d["model"].GetString(), "小米 \xc3\xa9\t");
  EXPECT_STREQ(d["page_id"].GetString(), "a\\b");
  EXPECT_EQ(sink_.outputs[0].key, "m\"1");
}

TEST_F(LogSplitTest, DeadLetterReasons) {
  ExpectDead("not json at all", "not_json");
  ExpectDead("", "not_json");
  ExpectDead(R"({"common":{"mid":"m"},"page":{},"ts":1)", "not_json");
  ExpectDead(R"([{"common":{"mid":"m"},"page":{},"ts":1}])", "not_object");
  ExpectDead(R"("a string")", "not_object");
  ExpectDead("{\"common\":{\"mid\":\"m\xff\"},\"page\":{},\"ts\":1}", "bad_utf8");
  ExpectDead("{\"common\":{\"mid\":\"m\"},\"page\":{},\"ts\":1}\xc3", "bad_utf8");
  ExpectDead(R"({"common":{"mid":"m\udc01"},"page":{},"ts":1})", "bad_utf8");
  ExpectDead(std::string(5000, ' ') + R"({"common":{"mid":"m"},"page":{},"ts":1})", "too_big");
  ExpectDead(R"({"common":{"mid":"m"},"page":{"a":[[[[[[[[1]]]]]]]]},"ts":1})", "too_deep");
  ExpectDead(R"({"common":{"mid":"m"},"page":{},"displays":[{},{},{},{}],"ts":1})",
             "too_many_items");
  ExpectDead(R"({"common":{"mid":"m"},"page":{},"actions":[{},{},{},{}],"ts":1})",
             "too_many_items");
  ExpectDead(R"({"page":{},"ts":1})", "no_mid");
  ExpectDead(R"({"common":{},"page":{},"ts":1})", "no_mid");
  ExpectDead(R"({"common":{"mid":""},"page":{},"ts":1})", "no_mid");
  ExpectDead(R"({"common":{"mid":142},"page":{},"ts":1})", "no_mid");
  ExpectDead(R"({"common":{"mid":null},"page":{},"ts":1})", "no_mid");
  ExpectDead(R"({"common":"mid_1","page":{},"ts":1})", "bad_type");
  ExpectDead(R"({"common":{"mid":"m"},"page":{}})", "bad_type");
  ExpectDead(R"({"common":{"mid":"m"},"page":{},"ts":"1764036000000"})", "bad_type");
  ExpectDead(R"({"common":{"mid":"m"},"page":{},"ts":1764036000000.5})", "bad_type");
  ExpectDead(R"({"common":{"mid":"m"},"page":{},"ts":null})", "bad_type");
  ExpectDead(R"({"common":{"mid":"m"},"page":"home","ts":1})", "bad_type");
  ExpectDead(R"({"common":{"mid":"m"},"start":[],"ts":1})", "bad_type");
  ExpectDead(R"({"common":{"mid":"m"},"start":null,"ts":1})", "bad_type");
  ExpectDead(R"({"common":{"mid":"m"},"page":{},"displays":{},"ts":1})", "bad_type");
  ExpectDead(R"({"common":{"mid":"m"},"page":{},"actions":"x","ts":1})", "bad_type");
  ExpectDead(R"({"common":{"mid":"m"},"page":{},"actions":[1],"ts":1})", "bad_type");
  ExpectDead(R"({"common":{"mid":"m"},"ts":1})", "no_payload");
  // Validation applies whether or not the record carries err.
  ExpectDead(R"({"common":{"mid":"m"},"page":{},"err":{"error_code":1}})", "bad_type");
  ExpectDead(R"({"page":{},"err":{"error_code":1},"ts":1})", "no_mid");

  const auto& c = split_.counters();
  EXPECT_EQ(c.dead_letters, c.records);
  EXPECT_EQ(c.dead_by_reason[static_cast<int>(Reason::kNoMid)], 6u);
  EXPECT_EQ(c.dead_by_reason[static_cast<int>(Reason::kTooManyItems)], 2u);
}

TEST_F(LogSplitTest, DeadLetterKeepsTheSourceKeyAndRaw) {
  sink_.Clear();
  InputRecord in;
  in.topic = "ODS_BASE_LOG";
  in.partition = 0;
  in.offset = 7;
  in.key = "k1";
  in.value = "{oops";
  split_.Process(in, &sink_);
  ASSERT_EQ(sink_.dead_letters.size(), 1u);
  EXPECT_EQ(sink_.dead_letters[0].key, "k1");
  EXPECT_EQ(sink_.dead_letters[0].src, "ODS_BASE_LOG/0/7");
  EXPECT_TRUE(JsonEq(
      R"({"job":"log-split","reason":"not_json","src":"ODS_BASE_LOG/0/7",)"
      R"("ts_ingest":1764036000123,"raw":"{oops",)"
      R"("detail":")" +
          std::string(ParseOrDie(sink_.dead_letters[0].value)["detail"].GetString()) + R"("})",
      sink_.dead_letters[0].value));
}

TEST_F(LogSplitTest, HugeAndDeepRecordsDoNotCrash) {
  LogSplitOptions o;  // the defaults: 512 KiB, depth 64, 1000 items
  LogSplitTransform split(o);
  CollectingSink sink;
  std::string deep(200000, '[');
  deep.append(200000, ']');
  InputRecord in;
  in.topic = "T";
  in.value = deep;
  EXPECT_EQ(split.Process(in, &sink).reason, Reason::kTooDeep);
  std::string deep_obj = R"({"common":{"mid":"m"},"page":)";
  for (int i = 0; i < 80000; ++i) deep_obj += "{\"a\":";  // under 512 KiB
  in.value = deep_obj;
  EXPECT_EQ(split.Process(in, &sink).reason, Reason::kTooDeep);
  std::string huge = R"({"common":{"mid":"m"},"page":{"x":")" + std::string(600000, 'x') + "\"}}";
  in.value = huge;
  EXPECT_EQ(split.Process(in, &sink).reason, Reason::kTooBig);
  ASSERT_EQ(sink.dead_letters.size(), 3u);
  for (const auto& d : sink.dead_letters) EXPECT_LT(d.value.size(), 1000000u);
  // 1000 displays is fine, 1001 is not.
  std::string many = R"({"common":{"mid":"m"},"page":{"page_id":"p"},"displays":[)";
  for (int i = 0; i < 1000; ++i)
    many += (i ? ",{\"order\":" : "{\"order\":") + std::to_string(i) + "}";
  std::string ok_many = many + R"(],"ts":1})";
  in.value = ok_many;
  SplitOutcome out = split.Process(in, &sink);
  EXPECT_FALSE(out.dead_lettered) << sink.dead_letters.back().value.substr(0, 200);
  EXPECT_EQ(out.emitted, 1001);
  std::string too_many = many + R"(,{}],"ts":1})";
  in.value = too_many;
  EXPECT_EQ(split.Process(in, &sink).reason, Reason::kTooManyItems);
}

TEST_F(LogSplitTest, ReuseAcrossRecordsLeaksNothing) {
  for (int i = 0; i < 1000; ++i) {
    sink_.Clear();
    Run(kPageRecord);
    ASSERT_EQ(sink_.outputs.size(), 4u);
    sink_.Clear();
    Run(R"({"common":{"mid":"x"},"page":{"page_id":"p"},"ts":2})");
    ASSERT_EQ(sink_.outputs.size(), 1u);
    ASSERT_EQ(sink_.outputs[0].value, R"({"mid":"x","page_id":"p","ts":2})");
    sink_.Clear();
    ExpectDead("{]", "not_json");
  }
}

}  // namespace
}  // namespace rtdw
