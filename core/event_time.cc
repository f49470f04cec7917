#include "core/event_time.h"

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "core/status_util.h"

namespace rtdw {
namespace {

void Put2(char* p, int v) {
  p[0] = static_cast<char>('0' + v / 10 % 10);
  p[1] = static_cast<char>('0' + v % 10);
}

void FillDayHour(const absl::CivilHour& h, DayHour* out) {
  // Years outside 0000-9999 (garbage event times) keep their last four digits.
  int y = static_cast<int>(((h.year() % 10000) + 10000) % 10000);
  Put2(out->day, y / 100);
  Put2(out->day + 2, y % 100);
  out->day[4] = '-';
  Put2(out->day + 5, h.month());
  out->day[7] = '-';
  Put2(out->day + 8, h.day());
  out->day[10] = '\0';
  Put2(out->hour, h.hour());
  out->hour[2] = '\0';
}

bool Digits(std::string_view s, size_t pos, size_t n, int* v) {
  int r = 0;
  for (size_t i = pos; i < pos + n; ++i) {
    char c = s[i];
    if (c < '0' || c > '9') return false;
    r = r * 10 + (c - '0');
  }
  *v = r;
  return true;
}

}  // namespace

DayHour DayHourOf(int64_t epoch_ms, const absl::TimeZone& tz) {
  DayHour out;
  FillDayHour(absl::ToCivilHour(absl::FromUnixMillis(epoch_ms), tz), &out);
  return out;
}

std::string DayOf(int64_t epoch_ms, const absl::TimeZone& tz) {
  return std::string(DayHourOf(epoch_ms, tz).day_view());
}

std::string HourOf(int64_t epoch_ms, const absl::TimeZone& tz) {
  return std::string(DayHourOf(epoch_ms, tz).hour_view());
}

absl::CivilDay CivilDayOf(int64_t epoch_ms, const absl::TimeZone& tz) {
  return absl::ToCivilDay(absl::FromUnixMillis(epoch_ms), tz);
}

const DayHour& DayHourCache::Get(int64_t epoch_ms) {
  if (epoch_ms >= start_ms_ && epoch_ms < end_ms_) return value_;
  absl::Time t = absl::FromUnixMillis(epoch_ms);
  absl::CivilHour h = absl::ToCivilHour(t, tz_);
  FillDayHour(h, &value_);
  // The instants of this civil hour around t. With a DST change inside, [start, end) may be
  // shorter or longer than an hour; cache only when t is inside it.
  int64_t start = absl::ToUnixMillis(tz_.At(absl::CivilSecond(h)).pre);
  int64_t end = absl::ToUnixMillis(tz_.At(absl::CivilSecond(h + 1)).pre);
  if (start <= epoch_ms && epoch_ms < end) {
    start_ms_ = start;
    end_ms_ = end;
  } else {
    start_ms_ = 1;
    end_ms_ = 0;
  }
  return value_;
}

absl::StatusOr<absl::CivilDay> ParseCivilDay(std::string_view text) {
  int y, m, d;
  if (text.size() != 10 || text[4] != '-' || text[7] != '-' || !Digits(text, 0, 4, &y) ||
      !Digits(text, 5, 2, &m) || !Digits(text, 8, 2, &d)) {
    return absl::InvalidArgumentError(absl::StrCat("not a yyyy-MM-dd date: '", ToAbsl(text), "'"));
  }
  absl::CivilDay day(y, m, d);
  if (day.year() != y || day.month() != m || day.day() != d) {
    return absl::InvalidArgumentError(absl::StrCat("no such date: '", ToAbsl(text), "'"));
  }
  return day;
}

absl::StatusOr<absl::CivilSecond> ParseLocalDateTime(std::string_view text) {
  int y, mo, d, h, mi, s;
  if (text.size() != 19 || text[4] != '-' || text[7] != '-' || text[10] != ' ' || text[13] != ':' ||
      text[16] != ':' || !Digits(text, 0, 4, &y) || !Digits(text, 5, 2, &mo) ||
      !Digits(text, 8, 2, &d) || !Digits(text, 11, 2, &h) || !Digits(text, 14, 2, &mi) ||
      !Digits(text, 17, 2, &s)) {
    return absl::InvalidArgumentError(
        absl::StrCat("not a yyyy-MM-dd HH:mm:ss time: '", ToAbsl(text), "'"));
  }
  absl::CivilSecond cs(y, mo, d, h, mi, s);
  if (cs.year() != y || cs.month() != mo || cs.day() != d || cs.hour() != h || cs.minute() != mi ||
      cs.second() != s) {
    return absl::InvalidArgumentError(absl::StrCat("no such time: '", ToAbsl(text), "'"));
  }
  return cs;
}

absl::StatusOr<int64_t> LocalDateTimeToEpochMs(std::string_view text, const absl::TimeZone& tz) {
  RTDW_ASSIGN_OR_RETURN(absl::CivilSecond cs, ParseLocalDateTime(text));
  return absl::ToUnixMillis(tz.At(cs).pre);
}

std::string FormatLocalDateTime(int64_t epoch_ms, const absl::TimeZone& tz) {
  return absl::FormatTime("%Y-%m-%d %H:%M:%S", absl::FromUnixMillis(epoch_ms), tz);
}

int AgeInYears(absl::CivilDay birthday, absl::CivilDay day) {
  int64_t years = day.year() - birthday.year();
  if (day.month() < birthday.month() ||
      (day.month() == birthday.month() && day.day() < birthday.day())) {
    --years;
  }
  return static_cast<int>(years);
}

absl::StatusOr<int> AgeInYears(std::string_view birthday, std::string_view day) {
  RTDW_ASSIGN_OR_RETURN(absl::CivilDay b, ParseCivilDay(birthday));
  RTDW_ASSIGN_OR_RETURN(absl::CivilDay d, ParseCivilDay(day));
  return AgeInYears(b, d);
}

}  // namespace rtdw
