#include "tools/es_lite/dates.h"

#include <cmath>
#include <cstdlib>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/civil_time.h"

namespace rtdw::eslite {
namespace {

int DaysInMonth(int64_t y, int m) {
  static constexpr int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0)) return 29;
  return kDays[m - 1];
}

struct Parts {
  int64_t year = 1970;
  int month = 1, day = 1, hour = 0, minute = 0, second = 0, millis = 0;
  int offset_seconds = 0;  // east of UTC
};

std::optional<int64_t> ToMillis(const Parts& p) {
  if (p.month < 1 || p.month > 12 || p.day < 1 || p.day > DaysInMonth(p.year, p.month) ||
      p.hour < 0 || p.hour > 23 || p.minute < 0 || p.minute > 59 || p.second < 0 || p.second > 59 ||
      p.year < -292000 || p.year > 292000) {
    return std::nullopt;
  }
  absl::Time t = absl::FromCivil(
      absl::CivilSecond(p.year, p.month, p.day, p.hour, p.minute, p.second), absl::UTCTimeZone());
  return absl::ToUnixMillis(t) + p.millis - static_cast<int64_t>(p.offset_seconds) * 1000;
}

// Reads exactly `n` digits (n > 0) or, with n == 0, 1 or 2 digits.
bool ReadDigits(absl::string_view s, size_t* pos, int n, int64_t* out) {
  size_t start = *pos;
  size_t max = n == 0 ? 2 : static_cast<size_t>(n);
  int64_t v = 0;
  size_t i = start;
  while (i < s.size() && i - start < max && absl::ascii_isdigit(static_cast<unsigned char>(s[i]))) {
    v = v * 10 + (s[i] - '0');
    ++i;
  }
  size_t got = i - start;
  if (got == 0 || (n > 0 && got != static_cast<size_t>(n))) return false;
  *pos = i;
  *out = v;
  return true;
}

// Z | +HH | +HHMM | +HH:MM (also '-').
bool ReadZone(absl::string_view s, size_t* pos, int* offset) {
  if (*pos >= s.size()) return false;
  char c = s[*pos];
  if (c == 'Z' || c == 'z') {
    ++*pos;
    *offset = 0;
    return true;
  }
  if (c != '+' && c != '-') return false;
  size_t p = *pos + 1;
  int64_t hh = 0, mm = 0;
  if (!ReadDigits(s, &p, 2, &hh)) return false;
  if (p < s.size() && s[p] == ':') {
    ++p;
    if (!ReadDigits(s, &p, 2, &mm)) return false;
  } else if (p + 1 < s.size() && absl::ascii_isdigit(static_cast<unsigned char>(s[p]))) {
    if (!ReadDigits(s, &p, 2, &mm)) return false;
  }
  if (hh > 18 || mm > 59) return false;
  *offset = static_cast<int>((hh * 3600 + mm * 60) * (c == '-' ? -1 : 1));
  *pos = p;
  return true;
}

// strict_date_optional_time: yyyy[-MM[-dd]][THH[:mm[:ss[.S+]]]][zone]
std::optional<int64_t> ParseIso(absl::string_view s, bool require_day) {
  Parts p;
  size_t pos = 0;
  if (!ReadDigits(s, &pos, 4, &p.year)) return std::nullopt;
  int64_t v = 0;
  bool have_day = false;
  if (pos < s.size() && s[pos] == '-') {
    ++pos;
    if (!ReadDigits(s, &pos, 2, &v)) return std::nullopt;
    p.month = static_cast<int>(v);
    if (pos < s.size() && s[pos] == '-') {
      ++pos;
      if (!ReadDigits(s, &pos, 2, &v)) return std::nullopt;
      p.day = static_cast<int>(v);
      have_day = true;
    }
  }
  if (require_day && !have_day) return std::nullopt;
  if (pos < s.size() && s[pos] == 'T' && have_day) {
    ++pos;
    if (!ReadDigits(s, &pos, 2, &v)) return std::nullopt;
    p.hour = static_cast<int>(v);
    if (pos < s.size() && s[pos] == ':') {
      ++pos;
      if (!ReadDigits(s, &pos, 2, &v)) return std::nullopt;
      p.minute = static_cast<int>(v);
      if (pos < s.size() && s[pos] == ':') {
        ++pos;
        if (!ReadDigits(s, &pos, 2, &v)) return std::nullopt;
        p.second = static_cast<int>(v);
        if (pos < s.size() && (s[pos] == '.' || s[pos] == ',')) {
          ++pos;
          size_t start = pos;
          int64_t frac = 0;
          int digits = 0;
          while (pos < s.size() && absl::ascii_isdigit(static_cast<unsigned char>(s[pos]))) {
            if (digits < 3) {
              frac = frac * 10 + (s[pos] - '0');
              ++digits;
            }
            ++pos;
          }
          if (pos == start || pos - start > 9) return std::nullopt;
          while (digits < 3) {
            frac *= 10;
            ++digits;
          }
          p.millis = static_cast<int>(frac);
        }
      }
    }
    if (pos < s.size() && !ReadZone(s, &pos, &p.offset_seconds)) return std::nullopt;
  }
  if (pos != s.size()) return std::nullopt;
  return ToMillis(p);
}

std::optional<int64_t> ParseEpoch(absl::string_view s, int64_t scale) {
  if (s.empty()) return std::nullopt;
  double d = 0;
  int64_t i = 0;
  if (absl::SimpleAtoi(s, &i)) {
    if (scale == 1) return i;
    if (std::llabs(i) > INT64_MAX / scale) return std::nullopt;
    return i * scale;
  }
  // A fraction ("1764036000000.5") is allowed; anything else (exponents, words) is not.
  for (char c : s) {
    if (!absl::ascii_isdigit(static_cast<unsigned char>(c)) && c != '.' && c != '-') {
      return std::nullopt;
    }
  }
  if (!absl::SimpleAtod(s, &d) || !std::isfinite(d)) return std::nullopt;
  d *= static_cast<double>(scale);
  if (std::fabs(d) > 9.2e18) return std::nullopt;
  return static_cast<int64_t>(d);
}

std::string Pad(int64_t v, int width) {
  std::string s = std::to_string(v < 0 ? -v : v);
  while (static_cast<int>(s.size()) < width) s.insert(s.begin(), '0');
  if (v < 0) s.insert(s.begin(), '-');
  return s;
}

}  // namespace

std::optional<DateFormat::Single> DateFormat::CreateSingle(absl::string_view spec,
                                                           std::string* error) {
  Single f;
  std::string s(absl::StripAsciiWhitespace(spec));
  if (s == "epoch_millis") {
    f.kind = Single::kEpochMillis;
    return f;
  }
  if (s == "epoch_second") {
    f.kind = Single::kEpochSecond;
    return f;
  }
  static const std::pair<const char*, const char*> kNamed[] = {
      {"strict_date", "yyyy-MM-dd"},
      {"date", "yyyy-MM-dd"},
      {"basic_date", "yyyyMMdd"},
      {"strict_date_hour_minute_second", "yyyy-MM-dd'T'HH:mm:ss"},
      {"date_hour_minute_second", "yyyy-MM-dd'T'HH:mm:ss"},
      {"strict_year_month", "yyyy-MM"},
      {"year_month", "yyyy-MM"},
      {"strict_year", "yyyy"},
      {"year", "yyyy"},
      {"strict_date_hour_minute", "yyyy-MM-dd'T'HH:mm"},
      {"date_hour_minute", "yyyy-MM-dd'T'HH:mm"},
  };
  if (s == "strict_date_optional_time" || s == "date_optional_time" ||
      s == "strict_date_optional_time_nanos" || s == "strict_date_time" || s == "date_time" ||
      s == "strict_date_time_no_millis" || s == "date_time_no_millis") {
    f.kind = Single::kIso;
    return f;
  }
  for (const auto& [name, pattern] : kNamed) {
    if (s == name) {
      s = pattern;
      break;
    }
  }
  f.kind = Single::kPattern;
  for (size_t i = 0; i < s.size();) {
    char c = s[i];
    if (c == '\'') {
      size_t end = s.find('\'', i + 1);
      if (end == std::string::npos) {
        *error = absl::StrCat("Invalid format: [", spec, "]: unterminated quote");
        return std::nullopt;
      }
      Token t;
      t.literal = end == i + 1 ? "'" : s.substr(i + 1, end - i - 1);
      f.tokens.push_back(std::move(t));
      i = end + 1;
      continue;
    }
    if (absl::ascii_isalpha(static_cast<unsigned char>(c))) {
      size_t j = i;
      while (j < s.size() && s[j] == c) ++j;
      Token t;
      t.width = static_cast<int>(j - i);
      switch (c) {
        case 'y':
        case 'u':
          t.field = 'y';
          break;
        case 'M':
        case 'd':
        case 'H':
        case 'm':
        case 's':
        case 'S':
          t.field = c;
          break;
        case 'X':
        case 'Z':
        case 'x':
          t.field = 'X';
          break;
        default:
          *error = absl::StrCat("Invalid format: [", spec,
                                "]: unknown pattern letter: ", std::string(1, c));
          return std::nullopt;
      }
      if (t.field == 'M' && t.width > 2) {
        *error = absl::StrCat("Invalid format: [", spec, "]: month names are not supported");
        return std::nullopt;
      }
      f.tokens.push_back(t);
      i = j;
      continue;
    }
    Token t;
    t.literal = std::string(1, c);
    f.tokens.push_back(std::move(t));
    ++i;
  }
  if (f.tokens.empty()) {
    *error = absl::StrCat("Invalid format: [", spec, "]");
    return std::nullopt;
  }
  return f;
}

std::optional<DateFormat> DateFormat::Create(absl::string_view spec, std::string* error) {
  DateFormat df;
  df.spec_ = std::string(spec);
  for (absl::string_view part : absl::StrSplit(spec, "||")) {
    auto single = CreateSingle(part, error);
    if (!single) return std::nullopt;
    df.formats_.push_back(std::move(*single));
  }
  if (df.formats_.empty()) {
    *error = "empty date format";
    return std::nullopt;
  }
  return df;
}

const DateFormat& DateFormat::Default() {
  static const DateFormat* kDefault = [] {
    std::string err;
    return new DateFormat(*Create("strict_date_optional_time||epoch_millis", &err));
  }();
  return *kDefault;
}

std::optional<int64_t> DateFormat::ParseSingle(const Single& f, absl::string_view s) {
  switch (f.kind) {
    case Single::kEpochMillis:
      return ParseEpoch(s, 1);
    case Single::kEpochSecond:
      return ParseEpoch(s, 1000);
    case Single::kIso:
      return ParseIso(s, false);
    case Single::kPattern:
      break;
  }
  Parts p;
  size_t pos = 0;
  for (const Token& t : f.tokens) {
    if (t.field == 0) {
      if (s.substr(pos, t.literal.size()) != t.literal) return std::nullopt;
      pos += t.literal.size();
      continue;
    }
    if (t.field == 'X') {
      if (!ReadZone(s, &pos, &p.offset_seconds)) return std::nullopt;
      continue;
    }
    int64_t v = 0;
    int width = t.width == 1 ? 0 : t.width;
    if (t.field == 'y' && t.width <= 2) return std::nullopt;  // two-digit years: unsupported
    if (!ReadDigits(s, &pos, width, &v)) return std::nullopt;
    switch (t.field) {
      case 'y':
        p.year = v;
        break;
      case 'M':
        p.month = static_cast<int>(v);
        break;
      case 'd':
        p.day = static_cast<int>(v);
        break;
      case 'H':
        p.hour = static_cast<int>(v);
        break;
      case 'm':
        p.minute = static_cast<int>(v);
        break;
      case 's':
        p.second = static_cast<int>(v);
        break;
      case 'S': {
        int w = t.width;
        while (w > 3) {
          v /= 10;
          --w;
        }
        while (w < 3) {
          v *= 10;
          ++w;
        }
        p.millis = static_cast<int>(v);
        break;
      }
    }
  }
  if (pos != s.size()) return std::nullopt;
  return ToMillis(p);
}

std::optional<int64_t> DateFormat::ParseText(absl::string_view text) const {
  for (const Single& f : formats_) {
    if (auto v = ParseSingle(f, text)) return v;
  }
  return std::nullopt;
}

std::optional<int64_t> DateFormat::Parse(const rapidjson::Value& v) const {
  if (v.IsString()) return ParseText({v.GetString(), v.GetStringLength()});
  if (v.IsNumber()) {
    for (const Single& f : formats_) {
      if (f.kind == Single::kEpochMillis || f.kind == Single::kEpochSecond) {
        int64_t scale = f.kind == Single::kEpochSecond ? 1000 : 1;
        if (v.IsInt64()) {
          int64_t i = v.GetInt64();
          if (std::llabs(i) > INT64_MAX / scale) return std::nullopt;
          return i * scale;
        }
        double d = v.GetDouble() * static_cast<double>(scale);
        if (!std::isfinite(d) || std::fabs(d) > 9.2e18) return std::nullopt;
        return static_cast<int64_t>(d);
      }
    }
    // Like ES: a number given to a pattern-only format is tried as its text.
    std::string text = v.IsInt64() ? std::to_string(v.GetInt64()) : std::to_string(v.GetDouble());
    return ParseText(text);
  }
  return std::nullopt;
}

std::string DateFormat::Format(int64_t millis, absl::TimeZone tz) const {
  const Single& f = formats_.front();
  if (f.kind == Single::kEpochMillis) return std::to_string(millis);
  if (f.kind == Single::kEpochSecond) return std::to_string(millis / 1000);
  absl::Time t = absl::FromUnixMillis(millis);
  absl::TimeZone::CivilInfo ci = tz.At(t);
  int64_t ms = millis % 1000;
  if (ms < 0) ms += 1000;
  if (f.kind == Single::kIso) {
    std::string out =
        absl::StrCat(Pad(ci.cs.year(), 4), "-", Pad(ci.cs.month(), 2), "-", Pad(ci.cs.day(), 2),
                     "T", Pad(ci.cs.hour(), 2), ":", Pad(ci.cs.minute(), 2), ":",
                     Pad(ci.cs.second(), 2), ".", Pad(ms, 3));
    if (ci.offset == 0) {
      out += "Z";
    } else {
      int off = ci.offset;
      out += off < 0 ? '-' : '+';
      off = std::abs(off);
      absl::StrAppend(&out, Pad(off / 3600, 2), ":", Pad((off % 3600) / 60, 2));
    }
    return out;
  }
  std::string out;
  for (const Token& t : f.tokens) {
    switch (t.field) {
      case 0:
        out += t.literal;
        break;
      case 'y':
        out += Pad(ci.cs.year(), t.width);
        break;
      case 'M':
        out += Pad(ci.cs.month(), t.width);
        break;
      case 'd':
        out += Pad(ci.cs.day(), t.width);
        break;
      case 'H':
        out += Pad(ci.cs.hour(), t.width);
        break;
      case 'm':
        out += Pad(ci.cs.minute(), t.width);
        break;
      case 's':
        out += Pad(ci.cs.second(), t.width);
        break;
      case 'S': {
        std::string frac = Pad(ms, 3);
        while (static_cast<int>(frac.size()) < t.width) frac += '0';
        out += frac.substr(0, t.width);
        break;
      }
      case 'X': {
        if (ci.offset == 0) {
          out += "Z";
        } else {
          int off = ci.offset;
          out += off < 0 ? '-' : '+';
          off = std::abs(off);
          absl::StrAppend(&out, Pad(off / 3600, 2), ":", Pad((off % 3600) / 60, 2));
        }
        break;
      }
    }
  }
  return out;
}

bool LooksLikeDate(absl::string_view text) { return ParseIso(text, true).has_value(); }

std::optional<absl::TimeZone> ParseTimeZone(absl::string_view name) {
  if (name.empty() || name == "UTC" || name == "Z" || name == "GMT" || name == "Etc/UTC") {
    return absl::UTCTimeZone();
  }
  if (name[0] == '+' || name[0] == '-') {
    size_t pos = 0;
    int offset = 0;
    std::string padded(name);
    if (padded.size() == 2) padded = absl::StrCat(padded.substr(0, 1), "0", padded.substr(1));
    if (ReadZone(padded, &pos, &offset) && pos == padded.size()) {
      return absl::FixedTimeZone(offset);
    }
    return std::nullopt;
  }
  absl::TimeZone tz;
  if (absl::LoadTimeZone(std::string(name), &tz)) return tz;
  return std::nullopt;
}

}  // namespace rtdw::eslite
