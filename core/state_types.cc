#include "core/state_types.h"

#include <cstdio>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace rtdw {
namespace {

bool IsLeap(int y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

int DaysInMonth(int y, int m) {
  static constexpr int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return m == 2 && IsLeap(y) ? 29 : kDays[m - 1];
}

}  // namespace

bool ValidDay(DayNumber day) {
  int y = static_cast<int>(day / 10000), m = static_cast<int>(day / 100 % 100),
      d = static_cast<int>(day % 100);
  return y >= 1 && y <= 9999 && m >= 1 && m <= 12 && d >= 1 && d <= DaysInMonth(y, m);
}

absl::StatusOr<DayNumber> ParseDay(std::string_view s) {
  auto bad = [&] {
    return absl::InvalidArgumentError(
        absl::StrCat("\"", std::string(s), "\" is not a day (expected yyyy-mm-dd)"));
  };
  if (s.size() != 10 || s[4] != '-' || s[7] != '-') return bad();
  uint32_t v = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    if (i == 4 || i == 7) continue;
    if (s[i] < '0' || s[i] > '9') return bad();
    v = v * 10 + static_cast<uint32_t>(s[i] - '0');
  }
  if (!ValidDay(v)) return bad();
  return v;
}

std::string FormatDay(DayNumber day) {
  char buf[16];
  std::snprintf(buf, sizeof(buf), "%04u-%02u-%02u", day / 10000, day / 100 % 100, day % 100);
  return buf;
}

}  // namespace rtdw
