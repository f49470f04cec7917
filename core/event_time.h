// Event-time helpers (docs/FORMATS.md §4-§6): the day and hour of an event in the job's time zone,
// local date-time text, and whole-year ages. Pure functions of their arguments — never the wall
// clock — so a replay computes the same values.
#ifndef RTDW_CORE_EVENT_TIME_H_
#define RTDW_CORE_EVENT_TIME_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "absl/time/civil_time.h"
#include "absl/time/time.h"

namespace rtdw {

// The day and hour of an instant in a zone: "yyyy-MM-dd" and "HH" (zero-padded, 00-23).
struct DayHour {
  char day[11] = {};  // NUL-terminated
  char hour[3] = {};
  std::string_view day_view() const { return {day, 10}; }
  std::string_view hour_view() const { return {hour, 2}; }
};

DayHour DayHourOf(int64_t epoch_ms, const absl::TimeZone& tz);
// "yyyy-MM-dd" of the instant in `tz`.
std::string DayOf(int64_t epoch_ms, const absl::TimeZone& tz);
// "HH" of the instant in `tz`.
std::string HourOf(int64_t epoch_ms, const absl::TimeZone& tz);
absl::CivilDay CivilDayOf(int64_t epoch_ms, const absl::TimeZone& tz);

// The same as DayHourOf, caching the civil hour of the last call: consecutive events of one hour
// (the common case) cost two comparisons. Not thread-safe.
class DayHourCache {
 public:
  explicit DayHourCache(absl::TimeZone tz) : tz_(tz) {}
  const DayHour& Get(int64_t epoch_ms);

 private:
  absl::TimeZone tz_;
  int64_t start_ms_ = 1;  // [start_ms_, end_ms_) maps to `value_`; empty at first
  int64_t end_ms_ = 0;
  DayHour value_;
};

// "yyyy-MM-dd" text as a civil day; InvalidArgument for anything else (including impossible
// dates such as 2024-02-30).
absl::StatusOr<absl::CivilDay> ParseCivilDay(std::string_view text);
// "yyyy-MM-dd HH:mm:ss" local text as a civil second; InvalidArgument for anything else.
absl::StatusOr<absl::CivilSecond> ParseLocalDateTime(std::string_view text);
// "yyyy-MM-dd HH:mm:ss" read in `tz`, as epoch milliseconds. A time skipped by a DST change is
// read with the offset before the change (absl's `pre`); a repeated one as its first occurrence.
absl::StatusOr<int64_t> LocalDateTimeToEpochMs(std::string_view text, const absl::TimeZone& tz);
// "yyyy-MM-dd HH:mm:ss" of an instant in `tz`.
std::string FormatLocalDateTime(int64_t epoch_ms, const absl::TimeZone& tz);

// Whole years from `birthday` to `day`: the age on that day (a 29 February birthday counts on
// 1 March in common years). A birthday after `day` gives a negative number.
int AgeInYears(absl::CivilDay birthday, absl::CivilDay day);
// The same from "yyyy-MM-dd" texts; InvalidArgument if either does not parse.
absl::StatusOr<int> AgeInYears(std::string_view birthday, std::string_view day);

}  // namespace rtdw

#endif  // RTDW_CORE_EVENT_TIME_H_
