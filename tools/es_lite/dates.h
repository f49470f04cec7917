// Date formats of ES mappings, as far as rtdw-es-lite supports them: the named formats
// epoch_millis, epoch_second, (strict_)date_optional_time, (strict_)date, (strict_)date_time,
// (strict_)date_hour_minute_second, basic_date, year_month, year, and patterns built from
// yyyy/uuuu MM dd HH mm ss SSS X/Z and literals ('T', '-', ':', ' ', ...). Alternatives are
// joined with "||"; parsing tries them in order, formatting uses the first.
// Text without a zone is UTC, as in ES.
#ifndef RTDW_TOOLS_ES_LITE_DATES_H_
#define RTDW_TOOLS_ES_LITE_DATES_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/time/time.h"
#include "rapidjson/document.h"

namespace rtdw::eslite {

class DateFormat {
 public:
  // nullopt (and *error set) for a format this implementation does not know.
  static std::optional<DateFormat> Create(absl::string_view spec, std::string* error);
  // ES's default for date fields: strict_date_optional_time||epoch_millis.
  static const DateFormat& Default();

  // Epoch milliseconds of a JSON value (number or string); nullopt when no format accepts it.
  std::optional<int64_t> Parse(const rapidjson::Value& v) const;
  std::optional<int64_t> ParseText(absl::string_view text) const;
  // Formats with the first format, in `tz` (UTC by default).
  std::string Format(int64_t millis, absl::TimeZone tz = absl::UTCTimeZone()) const;
  const std::string& spec() const { return spec_; }

 private:
  struct Token {
    char field = 0;  // 'y','M','d','H','m','s','S','X', or 0 for a literal
    int width = 0;
    std::string literal;
  };
  struct Single {
    enum Kind { kEpochMillis, kEpochSecond, kIso, kPattern } kind = kPattern;
    std::vector<Token> tokens;
  };
  static std::optional<Single> CreateSingle(absl::string_view spec, std::string* error);
  static std::optional<int64_t> ParseSingle(const Single& f, absl::string_view text);

  std::vector<Single> formats_;
  std::string spec_;
};

// True when `text` looks like a date to ES's dynamic date detection (at least yyyy-MM-dd,
// strict_date_optional_time).
bool LooksLikeDate(absl::string_view text);

// "UTC", "Z", "+08:00", "-0500", "+8" or an IANA name ("Asia/Shanghai").
std::optional<absl::TimeZone> ParseTimeZone(absl::string_view name);

}  // namespace rtdw::eslite

#endif  // RTDW_TOOLS_ES_LITE_DATES_H_
