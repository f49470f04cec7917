// Hostile input found or guarded by fuzzing (fuzz/): numbers that RapidJSON 1.1's full-precision
// conversion gets wrong, and the limits of log-split with their dead-letter reasons and counters.
#include <gtest/gtest.h>

#include <cmath>
#include <string>

#include "core/dead_letter.h"
#include "core/json_limits.h"
#include "core/log_split.h"
#include "core/records.h"
#include "rapidjson/document.h"

namespace rtdw {
namespace {

double ParseOne(const std::string& number) {
  rapidjson::Document doc;
  std::string text = "[" + number + "]";
  EXPECT_EQ(ParseJsonSafely(text, JsonLimits{}, &doc), JsonStatus::kOk) << number;
  if (!doc.IsArray() || doc.Size() != 1) return NAN;
  return doc[0].GetDouble();
}

TEST(HostileNumbersTest, AZeroWithAnyExponentIsZero) {
  // RapidJSON 1.1 (kParseFullPrecisionFlag) gives -1.9e109 for 0e300 (clz(0) in DiyFp).
  for (const char* zero : {"0e300", "0.0e300", "0.000e-100", "0e-50", "0E+200", "0.0e308"}) {
    double d = ParseOne(zero);
    EXPECT_EQ(d, 0.0) << zero;
    EXPECT_FALSE(std::signbit(d)) << zero;
  }
  EXPECT_TRUE(std::signbit(ParseOne("-0.0e300")));
  EXPECT_EQ(ParseOne("-0.0e300"), 0.0);
}

TEST(HostileNumbersTest, NumbersKeepTheirValueAndKind) {
  rapidjson::Document doc;
  ASSERT_EQ(ParseJsonSafely(R"([8197.00, 0.1, 1e-320, 1e-400, 123, -5, 18446744073709551615,
                               -9223372036854775808, 18446744073709551616, 1.7976931348623157e308])",
                            JsonLimits{}, &doc),
            JsonStatus::kOk);
  EXPECT_EQ(doc[0].GetDouble(), 8197.0);
  EXPECT_TRUE(doc[0].IsDouble());
  EXPECT_EQ(doc[1].GetDouble(), 0.1);
  EXPECT_EQ(doc[2].GetDouble(), 1e-320);  // a subnormal, exactly
  EXPECT_EQ(doc[3].GetDouble(), 0.0);     // below the range: zero
  EXPECT_TRUE(doc[4].IsInt());
  EXPECT_EQ(doc[4].GetInt(), 123);
  EXPECT_TRUE(doc[5].IsInt());
  EXPECT_EQ(doc[5].GetInt(), -5);
  EXPECT_TRUE(doc[6].IsUint64());
  EXPECT_EQ(doc[6].GetUint64(), 18446744073709551615ull);
  EXPECT_TRUE(doc[7].IsInt64());
  EXPECT_EQ(doc[7].GetInt64(), INT64_MIN);
  EXPECT_TRUE(doc[8].IsDouble());  // beyond uint64: a double, as RapidJSON does
  EXPECT_EQ(doc[8].GetDouble(), 18446744073709551616.0);
  EXPECT_EQ(doc[9].GetDouble(), 1.7976931348623157e308);
  // Beyond the double range is not accepted (it could not be written back as JSON).
  std::string detail;
  EXPECT_EQ(ParseJsonSafely("[9e308]", JsonLimits{}, &doc, &detail), JsonStatus::kNotJson);
  EXPECT_EQ(ParseJsonSafely("[1e400]", JsonLimits{}, &doc, &detail), JsonStatus::kNotJson);
  // The records parser keeps the text and reads integers only from integer literals.
  JsonParser parser(JsonLimits{});
  ASSERT_EQ(parser.Parse(R"({"a":0e300,"b":-7,"c":2.5})"), JsonStatus::kOk);
  EXPECT_EQ(parser.root().Find("a")->text(), "0e300");
  EXPECT_FALSE(parser.root().Find("a")->IsInt64());
  EXPECT_EQ(parser.root().Find("b")->GetInt64(), -7);
  EXPECT_EQ(parser.root().Find("c")->text(), "2.5");
  EXPECT_EQ(parser.Parse("[1e400]"), JsonStatus::kNotJson);
}

// A zero with an exponent passes log-split as it was written (numbers are copied as their text;
// nothing converts it).
TEST(HostileNumbersTest, LogSplitCopiesAZeroWithAnExponentAsWritten) {
  LogSplitTransform split(LogSplitOptions{});
  CollectingSink sink;
  InputRecord in;
  in.topic = "ODS_BASE_LOG";
  std::string value =
      R"({"common":{"mid":"m1"},"page":{"page_id":"home","during_time":0e300},"ts":1764036000000})";
  in.value = value;
  SplitOutcome out = split.Process(in, &sink);
  ASSERT_FALSE(out.dead_lettered);
  ASSERT_EQ(sink.outputs.size(), 1u);
  EXPECT_NE(sink.outputs[0].value.find("\"during_time\":0e300,"), std::string::npos)
      << sink.outputs[0].value;
}

// Each limit of log-split: the dead-letter reason a person reads, and the counter by reason.
TEST(LogSplitLimitsTest, EachLimitHasItsReasonDetailAndCounter) {
  LogSplitOptions o;
  o.max_record_bytes = 300;
  o.max_depth = 5;
  o.max_array_items = 3;
  LogSplitTransform split(o);
  CollectingSink sink;
  auto run = [&](const std::string& value) {
    sink.Clear();
    InputRecord in;
    in.topic = "ODS_BASE_LOG";
    in.value = value;
    return split.Process(in, &sink);
  };
  std::string big =
      R"({"common":{"mid":"m"},"page":{"x":")" + std::string(400, 'x') + R"("},"ts":1})";
  EXPECT_EQ(run(big).reason, Reason::kTooBig);
  ASSERT_EQ(sink.dead_letters.size(), 1u);
  EXPECT_NE(sink.dead_letters[0].value.find("over the limit of 300"), std::string::npos);
  EXPECT_EQ(run(R"({"common":{"mid":"m"},"page":{"a":[[[[1]]]]},"ts":1})").reason,
            Reason::kTooDeep);
  EXPECT_NE(sink.dead_letters[0].value.find("deeper than 5"), std::string::npos);
  EXPECT_EQ(run(R"({"common":{"mid":"m"},"page":{},"displays":[{},{},{},{}],"ts":1})").reason,
            Reason::kTooManyItems);
  EXPECT_NE(sink.dead_letters[0].value.find("displays has 4 elements, over the limit of 3"),
            std::string::npos)
      << sink.dead_letters[0].value;
  EXPECT_EQ(run(R"({"common":{"mid":"m"},"page":{},"actions":[{},{},{},{},{}],"ts":1})").reason,
            Reason::kTooManyItems);
  // At the limits: accepted.
  EXPECT_FALSE(
      run(R"({"common":{"mid":"m"},"page":{},"displays":[{},{},{}],"ts":1})").dead_lettered);
  const LogSplitCounters& c = split.counters();
  EXPECT_EQ(c.dead_by_reason[static_cast<int>(Reason::kTooBig)], 1u);
  EXPECT_EQ(c.dead_by_reason[static_cast<int>(Reason::kTooDeep)], 1u);
  EXPECT_EQ(c.dead_by_reason[static_cast<int>(Reason::kTooManyItems)], 2u);
  EXPECT_EQ(c.dead_letters, 4u);
}

}  // namespace
}  // namespace rtdw
