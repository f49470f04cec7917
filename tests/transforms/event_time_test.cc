#include "core/event_time.h"

#include "gtest/gtest.h"

namespace rtdw {
namespace {

absl::TimeZone Zone(const char* name) {
  absl::TimeZone tz;
  EXPECT_TRUE(absl::LoadTimeZone(name, &tz)) << name;
  return tz;
}

TEST(EventTimeTest, DayAndHourInShanghai) {
  absl::TimeZone sh = Zone("Asia/Shanghai");
  // 2025-11-25 00:00:00 +08:00 == 2025-11-24T16:00:00Z.
  const int64_t midnight = 1764000000000;
  EXPECT_EQ(DayOf(midnight, sh), "2025-11-25");
  EXPECT_EQ(HourOf(midnight, sh), "00");
  EXPECT_EQ(DayOf(midnight - 1, sh), "2025-11-24");
  EXPECT_EQ(HourOf(midnight - 1, sh), "23");
  DayHour dh = DayHourOf(midnight + 9 * 3600 * 1000 + 59 * 60 * 1000, sh);
  EXPECT_EQ(dh.day_view(), "2025-11-25");
  EXPECT_EQ(dh.hour_view(), "09");
  EXPECT_STREQ(dh.day, "2025-11-25");
  EXPECT_EQ(DayOf(midnight, absl::UTCTimeZone()), "2025-11-24");
  EXPECT_EQ(HourOf(midnight, absl::UTCTimeZone()), "16");
}

TEST(EventTimeTest, CacheAgreesWithDirectComputation) {
  for (const char* name : {"Asia/Shanghai", "America/New_York", "Australia/Lord_Howe", "UTC"}) {
    absl::TimeZone tz = Zone(name);
    DayHourCache cache(tz);
    // Two days around the 2025 DST changes, in 7-minute steps, forwards then backwards.
    for (int64_t start : {int64_t{1741500000000}, int64_t{1762050000000}, int64_t{1743870000000}}) {
      for (int64_t t = start; t < start + 2 * 86400000; t += 7 * 60000 + 13) {
        DayHour want = DayHourOf(t, tz);
        const DayHour& got = cache.Get(t);
        ASSERT_EQ(got.day_view(), want.day_view()) << name << " " << t;
        ASSERT_EQ(got.hour_view(), want.hour_view()) << name << " " << t;
      }
      for (int64_t t = start + 2 * 86400000; t > start; t -= 11 * 60000 + 7) {
        DayHour want = DayHourOf(t, tz);
        const DayHour& got = cache.Get(t);
        ASSERT_EQ(got.day_view(), want.day_view()) << name << " " << t;
        ASSERT_EQ(got.hour_view(), want.hour_view()) << name << " " << t;
      }
    }
  }
}

TEST(EventTimeTest, ParseLocalDateTime) {
  absl::TimeZone sh = Zone("Asia/Shanghai");
  auto ms = LocalDateTimeToEpochMs("2025-11-25 00:00:00", sh);
  ASSERT_TRUE(ms.ok()) << ms.status();
  EXPECT_EQ(*ms, 1764000000000);
  EXPECT_EQ(FormatLocalDateTime(*ms, sh), "2025-11-25 00:00:00");
  EXPECT_EQ(*LocalDateTimeToEpochMs("2025-11-25 13:45:07", sh), 1764000000000 + 49507000);
  for (const char* bad :
       {"2025-11-25", "2025-11-25T00:00:00", "2025-13-01 00:00:00", "2025-02-29 00:00:00",
        "2025-11-25 24:00:00", "2025-11-25 00:00:0x", "2025-11-25 00:00:00 "}) {
    EXPECT_FALSE(LocalDateTimeToEpochMs(bad, sh).ok()) << bad;
  }
  auto cs = ParseLocalDateTime("2024-02-29 23:59:59");
  ASSERT_TRUE(cs.ok());
  EXPECT_EQ(*cs, absl::CivilSecond(2024, 2, 29, 23, 59, 59));
}

TEST(EventTimeTest, ParseDay) {
  EXPECT_EQ(*ParseCivilDay("2024-02-29"), absl::CivilDay(2024, 2, 29));
  EXPECT_FALSE(ParseCivilDay("2023-02-29").ok());
  EXPECT_FALSE(ParseCivilDay("2023-2-28").ok());
  EXPECT_FALSE(ParseCivilDay("").ok());
}

TEST(EventTimeTest, AgeInWholeYears) {
  EXPECT_EQ(*AgeInYears("1990-06-15", "2025-06-14"), 34);
  EXPECT_EQ(*AgeInYears("1990-06-15", "2025-06-15"), 35);
  EXPECT_EQ(*AgeInYears("1990-06-15", "2025-12-31"), 35);
  EXPECT_EQ(*AgeInYears("2000-02-29", "2001-02-28"), 0);
  EXPECT_EQ(*AgeInYears("2000-02-29", "2001-03-01"), 1);
  EXPECT_EQ(*AgeInYears("2000-02-29", "2004-02-29"), 4);
  EXPECT_EQ(*AgeInYears("2025-11-25", "2025-11-25"), 0);
  EXPECT_EQ(*AgeInYears("2026-01-01", "2025-11-25"), -1);
  EXPECT_FALSE(AgeInYears("1990-06-15 00:00:00", "2025-06-14").ok());
  EXPECT_FALSE(AgeInYears("1990-06-15", "x").ok());
}

}  // namespace
}  // namespace rtdw
