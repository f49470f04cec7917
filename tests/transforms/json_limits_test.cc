#include "core/json_limits.h"

#include <string>

#include "gtest/gtest.h"

namespace rtdw {
namespace {

TEST(JsonLimitsTest, ParsesAnObjectInPlace) {
  JsonParser p(JsonLimits{0, 64});
  ASSERT_EQ(p.Parse(R"({"a":"x","b":[1,2.5,{"c":null}],"d":8197.00})"), JsonStatus::kOk);
  const auto& r = p.root();
  ASSERT_TRUE(r.IsObject());
  EXPECT_STREQ(r["a"].GetString(), "x");
  EXPECT_EQ(r["b"].Size(), 3u);
  EXPECT_DOUBLE_EQ(r["d"].GetDouble(), 8197.0);
  // Reuse: the next parse replaces the document.
  ASSERT_EQ(p.Parse("[true]"), JsonStatus::kOk);
  EXPECT_TRUE(p.root().IsArray());
}

TEST(JsonLimitsTest, FullPrecision) {
  JsonParser p(JsonLimits{});
  ASSERT_EQ(p.Parse("[0.1, 1.7976931348623157e308, 5e-324, 9007199254740993]"), JsonStatus::kOk);
  EXPECT_EQ(p.root()[0].GetDouble(), 0.1);
  EXPECT_EQ(p.root()[1].GetDouble(), 1.7976931348623157e308);
  EXPECT_EQ(p.root()[2].GetDouble(), 5e-324);
  EXPECT_EQ(p.root()[3].GetUint64(), 9007199254740993ull);
}

TEST(JsonLimitsTest, TooBigBeforeParsing) {
  JsonParser p(JsonLimits{10, 64});
  EXPECT_EQ(p.Parse(R"({"a":"0123456789"})"), JsonStatus::kTooBig);
  EXPECT_NE(p.detail().find("limit of 10"), std::string::npos);
  EXPECT_EQ(p.Parse(R"({"a":1})"), JsonStatus::kOk);
}

TEST(JsonLimitsTest, DepthLimit) {
  JsonParser p(JsonLimits{0, 3});
  EXPECT_EQ(p.Parse(R"({"a":[{"b":1}]})"), JsonStatus::kOk);
  EXPECT_EQ(p.Parse(R"({"a":[{"b":[1]}]})"), JsonStatus::kTooDeep);
  EXPECT_EQ(p.Parse(R"([[[]]])"), JsonStatus::kOk);
  EXPECT_EQ(p.Parse(R"([[[[]]]])"), JsonStatus::kTooDeep);
}

TEST(JsonLimitsTest, TwoHundredThousandDeepDoesNotCrash) {
  std::string deep(200000, '[');
  deep.append(200000, ']');
  JsonParser p(JsonLimits{0, 64});
  EXPECT_EQ(p.Parse(deep), JsonStatus::kTooDeep);
  // Unterminated, too.
  EXPECT_EQ(p.Parse(std::string(200000, '[')), JsonStatus::kTooDeep);
  // Even with a huge configured depth: clamped.
  JsonParser q(JsonLimits{0, 1 << 30});
  EXPECT_EQ(q.Parse(deep), JsonStatus::kTooDeep);
  rapidjson::Document doc;
  EXPECT_EQ(ParseJsonSafely(deep, JsonLimits{0, 64}, &doc), JsonStatus::kTooDeep);
  // Objects as well.
  std::string deep_obj;
  for (int i = 0; i < 200000; ++i) deep_obj += "{\"a\":";
  EXPECT_EQ(p.Parse(deep_obj), JsonStatus::kTooDeep);
}

TEST(JsonLimitsTest, NotJson) {
  JsonParser p(JsonLimits{});
  for (const char* bad : {"", "{", "{\"a\":}", "nope", "{} {}", "{\"a\":1,}", "[1 2]"}) {
    EXPECT_EQ(p.Parse(bad), JsonStatus::kNotJson) << bad;
    EXPECT_FALSE(p.detail().empty());
  }
  // An embedded NUL after a valid value is not JSON either.
  EXPECT_EQ(p.Parse(std::string("{}\0{}", 5)), JsonStatus::kNotJson);
  EXPECT_EQ(p.Parse(std::string("{\"a\":\"x\0y\"}", 11)), JsonStatus::kNotJson);
  rapidjson::Document doc;
  EXPECT_EQ(ParseJsonSafely(std::string("{}\0{}", 5), JsonLimits{}, &doc), JsonStatus::kNotJson);
}

TEST(JsonLimitsTest, BadUtf8) {
  JsonParser p(JsonLimits{});
  EXPECT_EQ(p.Parse("{\"a\":\"\xff\"}"), JsonStatus::kBadUtf8);
  EXPECT_EQ(p.Parse("{\"\xc3\":1}"), JsonStatus::kBadUtf8);
  EXPECT_EQ(p.Parse("\xfe{}"), JsonStatus::kBadUtf8);
  // Overlong '/' and an encoded surrogate.
  EXPECT_EQ(p.Parse("{\"a\":\"\xc0\xaf\"}"), JsonStatus::kBadUtf8);
  EXPECT_EQ(p.Parse("{\"a\":\"\xed\xa0\x80\"}"), JsonStatus::kBadUtf8);
  EXPECT_EQ(p.Parse("{\"a\":\"\xe4\xb8\xad\xe6\x96\x87\"}"), JsonStatus::kOk);
  // A raw control character is not JSON, but it is valid UTF-8.
  EXPECT_EQ(p.Parse("{\"a\":\"\t\"}"), JsonStatus::kNotJson);
}

TEST(JsonLimitsTest, UnpairedSurrogateEscapesAreBadUtf8) {
  // RapidJSON 1.1 refuses an unpaired high surrogate escape, but decodes an unpaired low one into
  // the bytes ED xx xx, which are not UTF-8: both are kBadUtf8, in either parse.
  JsonParser p(JsonLimits{});
  for (const char* bad :
       {R"({"mid":"a\udfdf"})", R"({"mid":"\uDC00"})", R"(["ok","\ude00x"])",
        R"({"a":"\ud800\u0041"})", R"({"a":"\ud83d\ude00\ude00"})", R"({"\udfff":1})"}) {
    EXPECT_EQ(p.Parse(bad), JsonStatus::kBadUtf8) << bad << ": " << p.detail();
    rapidjson::Document doc;
    std::string detail;
    EXPECT_EQ(ParseJsonSafely(bad, JsonLimits{}, &doc, &detail), JsonStatus::kBadUtf8) << bad;
  }
  ASSERT_EQ(p.Parse(R"({"mid":"a\udfdf"})"), JsonStatus::kBadUtf8);
  EXPECT_EQ(p.detail(), "unpaired UTF-16 surrogate escape \\udfdf at offset 9 (not a character)");
  // A pair is one character; an escaped backslash before "udfdf" is no escape at all.
  for (const char* good : {R"({"a":"\ud83d\ude00"})", R"({"a":"\\udfdf"})",
                           R"({"a":"x\\\\udc00","b":"\u00e9\u4e2d"})"}) {
    EXPECT_EQ(p.Parse(good), JsonStatus::kOk) << good << ": " << p.detail();
    EXPECT_TRUE(IsValidUtf8(good));
  }
  ASSERT_EQ(p.Parse(R"({"a":"\ud83d\ude00"})"), JsonStatus::kOk);
  std::string_view a(p.root()["a"].GetString(), p.root()["a"].GetStringLength());
  EXPECT_EQ(a, "\xf0\x9f\x98\x80");
  EXPECT_TRUE(IsValidUtf8(a));
}

TEST(JsonLimitsTest, Utf8Helpers) {
  EXPECT_TRUE(IsValidUtf8(""));
  EXPECT_TRUE(IsValidUtf8("plain ascii text that is longer than eight bytes"));
  EXPECT_TRUE(IsValidUtf8("\xe4\xb8\xad\xf0\x9f\x98\x80 ok"));
  EXPECT_FALSE(IsValidUtf8("abcdefgh\x80"));
  EXPECT_FALSE(IsValidUtf8("\xf4\x90\x80\x80"));  // above U+10FFFF
  EXPECT_FALSE(IsValidUtf8("\xe4\xb8"));          // cut
  EXPECT_EQ(Utf8PrefixLength("ab\xe4\xb8\xad", 4), 2u);
  EXPECT_EQ(Utf8PrefixLength("ab\xe4\xb8\xad", 5), 5u);
  EXPECT_EQ(Utf8PrefixLength("abc", 10), 3u);
}

TEST(JsonLimitsTest, StatusCodes) {
  EXPECT_EQ(JsonStatusCode(JsonStatus::kTooBig), "too_big");
  EXPECT_EQ(JsonStatusCode(JsonStatus::kTooDeep), "too_deep");
  EXPECT_EQ(JsonStatusCode(JsonStatus::kBadUtf8), "bad_utf8");
  EXPECT_EQ(JsonStatusCode(JsonStatus::kNotJson), "not_json");
}

TEST(JsonLimitsTest, LargeRecordBeyondThePool) {
  std::string big = "{\"a\":[";
  for (int i = 0; i < 50000; ++i) big += (i ? ",\"item-" : "\"item-") + std::to_string(i) + "\"";
  big += "]}";
  JsonParser p(JsonLimits{0, 64}, 4096);
  ASSERT_EQ(p.Parse(big), JsonStatus::kOk);
  EXPECT_EQ(p.root()["a"].Size(), 50000u);
  ASSERT_EQ(p.Parse(R"({"b":2})"), JsonStatus::kOk);
  EXPECT_EQ(p.root()["b"].GetInt(), 2);
}

}  // namespace
}  // namespace rtdw
