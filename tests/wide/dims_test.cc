#include "core/dims.h"

#include <optional>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "tests/wide/test_util.h"

namespace rtdw {
namespace {

TEST(DimsTest, IdText) {
  std::string s;
  JsonParser p(JsonLimits{});
  ASSERT_EQ(
      p.Parse(
          R"({"a":"37","b":37,"c":18446744073709551615,"d":-5,"e":1.5,"f":"","g":null,"h":true,)"
          R"("i":"x\u0000y","j":[1],"k":-9223372036854775808,"l":9007199254740993,"m":-0,)"
          R"("n":18446744073709551616,"o":-9223372036854775809,"p":1E3,"q":37.0,"r":3.7e1})"),
      JsonStatus::kOk);
  const JsonValue& d = p.root();
  auto id = [&](const char* name) {
    const JsonValue* v = d.Find(name);
    EXPECT_NE(v, nullptr) << name;
    return v != nullptr && IdText(*v, &s);
  };
  EXPECT_TRUE(id("a"));
  EXPECT_EQ(s, "37");
  EXPECT_TRUE(id("b"));
  EXPECT_EQ(s, "37");
  EXPECT_TRUE(id("c"));  // 2^64-1
  EXPECT_EQ(s, "18446744073709551615");
  EXPECT_TRUE(id("d"));
  EXPECT_EQ(s, "-5");
  EXPECT_TRUE(id("k"));  // -2^63
  EXPECT_EQ(s, "-9223372036854775808");
  EXPECT_TRUE(id("l"));  // 2^53+1: a double would say ...992
  EXPECT_EQ(s, "9007199254740993");
  EXPECT_TRUE(id("m"));
  EXPECT_EQ(s, "0");
  // Fractions, exponent forms (even of whole numbers) and integers beyond 64 bits are no ids.
  for (const char* bad : {"e", "f", "g", "h", "i", "j", "n", "o", "p", "q", "r"}) {
    EXPECT_FALSE(id(bad)) << bad;
  }
}

TEST(DimsTest, BatchGivesOneHandlePerKeyAndParsesRows) {
  DimensionBatch b;
  auto u37 = b.AddUser("37");
  auto p11 = b.AddProvince("11");
  EXPECT_EQ(b.AddUser("37"), u37);
  EXPECT_NE(b.AddProvince("37"), u37);  // another table, another key
  auto u38 = b.AddUser("38");
  auto u39 = b.AddUser("39");
  auto u40 = b.AddUser("40");
  EXPECT_EQ(b.keys(), (std::vector<std::string>{"DIM:USER_INFO:37", "DIM:BASE_PROVINCE:11",
                                                "DIM:BASE_PROVINCE:37", "DIM:USER_INFO:38",
                                                "DIM:USER_INFO:39", "DIM:USER_INFO:40"}));
  EXPECT_EQ(b.user(u37), nullptr);  // before SetRows
  EXPECT_FALSE(b.SetRows({std::nullopt}).ok());
  std::vector<std::optional<std::string>> rows = {
      R"({"id":37,"birthday":"1974-06-09","gender":"F"})",
      R"({"id":11,"name":"北京","area_code":"110000","iso_code":"","iso_3166_2":null})",
      std::nullopt,
      R"({"id":38,"birthday":"1974-02-30","gender":""})",  // no such day; empty gender
      "not json",
      R"([1,2])"};
  ASSERT_TRUE(b.SetRows(rows).ok());
  const UserDim* u = b.user(u37);
  ASSERT_NE(u, nullptr);
  EXPECT_EQ(u->gender_json, "\"F\"");
  EXPECT_EQ(u->AgeOn(absl::CivilDay(2025, 6, 8)), 50);
  EXPECT_EQ(u->AgeOn(absl::CivilDay(2025, 6, 9)), 51);
  EXPECT_EQ(b.province(u37), nullptr);  // a user handle is no province
  const ProvinceDim* p = b.province(p11);
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(p->name_json, "\"北京\"");
  EXPECT_EQ(p->area_code_json, "\"110000\"");
  EXPECT_EQ(p->iso_code_json, "");  // "" and null are left out
  EXPECT_EQ(p->iso_3166_2_json, "");
  const UserDim* u2 = b.user(u38);
  ASSERT_NE(u2, nullptr);
  EXPECT_EQ(u2->gender_json, "");
  EXPECT_EQ(u2->AgeOn(absl::CivilDay(2025, 1, 1)), std::nullopt);
  EXPECT_EQ(b.user(u39), nullptr);  // unparsable row: missing
  EXPECT_EQ(b.user(u40), nullptr);  // not an object: missing
  EXPECT_EQ(b.user(DimensionBatch::kNone), nullptr);

  b.Clear();
  EXPECT_TRUE(b.keys().empty());
  EXPECT_EQ(b.AddUser("1"), 0);
}

TEST(DimsTest, LeapDayBirthday) {
  UserDim u;
  u.birthday = absl::CivilDay(2004, 2, 29);
  EXPECT_EQ(u.AgeOn(absl::CivilDay(2025, 2, 28)), 20);
  EXPECT_EQ(u.AgeOn(absl::CivilDay(2025, 3, 1)), 21);
}

TEST(DimsTest, EventDayCacheMatchesAbsl) {
  for (const char* zone : {"Asia/Shanghai", "UTC", "America/New_York"}) {
    absl::TimeZone tz;
    ASSERT_TRUE(absl::LoadTimeZone(zone, &tz));
    EventDayCache cache(tz);
    // Across a DST change in New York (2025-03-09, 2025-11-02), in 7-minute steps.
    for (int64_t ms = 1741400000000; ms < 1741700000000; ms += 7 * 60 * 1000 + 13) {
      const EventDay& d = cache.Get(ms);
      absl::CivilSecond cs = absl::ToCivilSecond(absl::FromUnixMillis(ms), tz);
      EXPECT_EQ(std::string(d.day_view()), absl::FormatCivilTime(absl::CivilDay(cs))) << ms;
      EXPECT_EQ(std::string(d.hour_view()),
                absl::FormatCivilTime(absl::CivilHour(cs)).substr(11, 2))
          << zone << " " << ms;
      EXPECT_EQ(d.civil, absl::CivilDay(cs));
      EXPECT_EQ(d.number, static_cast<uint32_t>(cs.year() * 10000 + cs.month() * 100 + cs.day()));
    }
  }
  EventDayCache utc(absl::UTCTimeZone());
  EXPECT_FALSE(utc.Get(-999999999999999999).valid());
  EXPECT_TRUE(utc.Get(0).valid());
  EXPECT_EQ(utc.Get(0).day_view(), "1970-01-01");
}

TEST(DimsTest, ParseLocalTime) {
  absl::TimeZone tz;
  ASSERT_TRUE(absl::LoadTimeZone("Asia/Shanghai", &tz));
  auto t = ParseLocalTime("2025-11-25 00:00:00", tz);
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->epoch_ms, 1764000000000);
  EXPECT_EQ(t->day, absl::CivilDay(2025, 11, 25));
  EXPECT_FALSE(ParseLocalTime("2025-11-25", tz).ok());
  EXPECT_FALSE(ParseLocalTime("2025-11-25 24:00:00", tz).ok());
  EXPECT_FALSE(ParseLocalTime("0000-01-01 00:00:00", tz).ok());
  EXPECT_EQ(DayNumberOf(absl::CivilDay(2025, 11, 25)), 20251125u);
  EXPECT_EQ(DayNumberOf(absl::CivilDay(10000, 1, 1)), 0u);
}

}  // namespace
}  // namespace rtdw
