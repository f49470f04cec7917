#include "core/dims.h"

#include <cstring>

#include "absl/strings/str_cat.h"
#include "core/event_time.h"

namespace rtdw {
namespace {

// Dimension rows are small; anything beyond these is not a row rtdw wrote.
constexpr JsonLimits kDimRowLimits{1 << 20, 16};

void Put2(char* p, int v) {
  p[0] = static_cast<char>('0' + v / 10 % 10);
  p[1] = static_cast<char>('0' + v % 10);
}

// The JSON text of `v` ("" when OmittedValue).
std::string JsonText(const JsonValue* v) {
  if (OmittedValue(v)) return std::string();
  rapidjson::StringBuffer sb;
  DocWriter w(sb);
  WriteJson(w, *v);
  return std::string(sb.GetString(), sb.GetSize());
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// JSON helpers

void WriteField(DocWriter& w, std::string_view name, const JsonValue* v) {
  if (OmittedValue(v)) return;
  w.Key(name.data(), static_cast<rapidjson::SizeType>(name.size()));
  WriteJson(w, *v);
}

void WriteRawField(DocWriter& w, std::string_view name, std::string_view json) {
  if (json.empty()) return;
  w.Key(name.data(), static_cast<rapidjson::SizeType>(name.size()));
  w.RawValue(json.data(), json.size(), rapidjson::kStringType);
}

void WriteStringField(DocWriter& w, std::string_view name, std::string_view value) {
  w.Key(name.data(), static_cast<rapidjson::SizeType>(name.size()));
  w.String(value.data(), static_cast<rapidjson::SizeType>(value.size()));
}

// ---------------------------------------------------------------------------------------------
// Dimensions

std::optional<int> UserDim::AgeOn(absl::CivilDay day) const {
  if (!birthday) return std::nullopt;
  return AgeInYears(*birthday, day);
}

DimensionBatch::DimensionBatch() : parser_(kDimRowLimits) {}

void DimensionBatch::Clear() {
  keys_.clear();
  entries_.clear();
  index_.clear();
}

DimensionBatch::Handle DimensionBatch::Add(std::string_view prefix, std::string_view id,
                                           bool is_user) {
  scratch_.assign(prefix.data(), prefix.size());
  scratch_.append(id.data(), id.size());
  auto [it, inserted] = index_.try_emplace(scratch_, static_cast<Handle>(keys_.size()));
  if (inserted) {
    keys_.push_back(scratch_);
    entries_.emplace_back();
    entries_.back().is_user = is_user;
  }
  return it->second;
}

absl::Status DimensionBatch::SetRows(const std::vector<std::optional<std::string>>& rows) {
  if (rows.size() != keys_.size()) {
    return absl::InternalError(absl::StrCat("dimension source answered ", rows.size(), " rows for ",
                                            keys_.size(), " keys"));
  }
  static constexpr std::string_view kUserNames[] = {"gender", "birthday"};
  static constexpr std::string_view kProvinceNames[] = {"name", "area_code", "iso_code",
                                                        "iso_3166_2"};
  for (size_t i = 0; i < rows.size(); ++i) {
    Entry& e = entries_[i];
    e.found = false;
    if (!rows[i] || parser_.Parse(*rows[i]) != JsonStatus::kOk || !parser_.root().IsObject()) {
      continue;
    }
    e.found = true;
    const JsonValue& row = parser_.root();
    if (e.is_user) {
      const JsonValue* f[2];
      FindMembers(row, kUserNames, 2, f);
      e.user.gender_json = JsonText(f[0]);
      e.user.birthday.reset();
      if (f[1] != nullptr && f[1]->IsString()) {
        auto day = ParseCivilDay(JsonStringView(*f[1]));
        if (day.ok()) e.user.birthday = *day;
      }
    } else {
      const JsonValue* f[4];
      FindMembers(row, kProvinceNames, 4, f);
      e.province.name_json = JsonText(f[0]);
      e.province.area_code_json = JsonText(f[1]);
      e.province.iso_code_json = JsonText(f[2]);
      e.province.iso_3166_2_json = JsonText(f[3]);
    }
  }
  return absl::OkStatus();
}

const UserDim* DimensionBatch::user(Handle h) const {
  if (h < 0 || static_cast<size_t>(h) >= entries_.size()) return nullptr;
  const Entry& e = entries_[h];
  return e.is_user && e.found ? &e.user : nullptr;
}

const ProvinceDim* DimensionBatch::province(Handle h) const {
  if (h < 0 || static_cast<size_t>(h) >= entries_.size()) return nullptr;
  const Entry& e = entries_[h];
  return !e.is_user && e.found ? &e.province : nullptr;
}

// ---------------------------------------------------------------------------------------------
// Event time

uint32_t DayNumberOf(absl::CivilDay day) {
  if (day.year() < 1 || day.year() > 9999) return 0;
  return static_cast<uint32_t>(day.year() * 10000 + day.month() * 100 + day.day());
}

EventDayCache::EventDayCache(absl::TimeZone tz) : tz_(tz) {}

const EventDay& EventDayCache::Get(int64_t epoch_ms) {
  if (epoch_ms >= start_ms_ && epoch_ms < end_ms_) return value_;
  absl::CivilHour h = absl::ToCivilHour(absl::FromUnixMillis(epoch_ms), tz_);
  value_.civil = absl::CivilDay(h);
  value_.number = DayNumberOf(value_.civil);
  // The text of an out-of-range year keeps its last four digits (such a day is never valid()).
  int y = static_cast<int>(((h.year() % 10000) + 10000) % 10000);
  Put2(value_.day, y / 100);
  Put2(value_.day + 2, y % 100);
  value_.day[4] = '-';
  Put2(value_.day + 5, h.month());
  value_.day[7] = '-';
  Put2(value_.day + 8, h.day());
  value_.day[10] = '\0';
  Put2(value_.hour, h.hour());
  value_.hour[2] = '\0';
  // The instants of this civil hour. Around a DST change [start, end) may not contain epoch_ms:
  // then nothing is cached.
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

absl::StatusOr<LocalTime> ParseLocalTime(std::string_view text, const absl::TimeZone& tz) {
  auto cs = ParseLocalDateTime(text);
  if (!cs.ok()) return cs.status();
  if (cs->year() < 1 || cs->year() > 9999) {
    return absl::InvalidArgumentError("year outside 1..9999");
  }
  LocalTime t;
  t.epoch_ms = absl::ToUnixMillis(tz.At(*cs).pre);
  t.day = absl::CivilDay(*cs);
  return t;
}

}  // namespace rtdw
