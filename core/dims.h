// What the two wide-table transforms (dau, order-wide; docs/FORMATS.md §4, §5) share: dimension
// enrichment from the Redis rows `DIM:USER_INFO:<id>` and `DIM:BASE_PROVINCE:<id>`, the JSON
// helpers that copy values with their types, and the few event-time helpers they need.
//
// Promises:
//  - DimensionBatch gathers the distinct keys a batch needs so that the transform resolves them
//    with ONE DimensionSource::Get per batch, and parses each row once. It does no I/O itself.
//  - A row that is absent, not a JSON object, or not parsable is "missing": its fields are left
//    out of documents. A field of a found row that is absent, null or "" is left out too (never
//    written as null or ""). Values keep their JSON types and, for numbers, their exact source
//    text (stored as their JSON text); of duplicate keys in a row the last one counts.
//  - Ages are whole years from the row's `birthday` to a given day (the record's day, never the
//    wall clock), so a replay writes the same document.
//  - The time helpers are pure functions of their arguments (core/event_time.h underneath), never
//    the wall clock.
#ifndef RTDW_CORE_DIMS_H_
#define RTDW_CORE_DIMS_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/civil_time.h"
#include "absl/time/time.h"
#include "core/json_limits.h"
#include "core/json_writer.h"
#include "rapidjson/stringbuffer.h"
#include "rapidjson/writer.h"

namespace rtdw {

inline constexpr std::string_view kUserInfoKeyPrefix = "DIM:USER_INFO:";
inline constexpr std::string_view kBaseProvinceKeyPrefix = "DIM:BASE_PROVINCE:";

using DocWriter = JsonWriter;  // core/json_writer.h

// ---------------------------------------------------------------------------------------------
// JSON helpers

// JsonStringView, OmittedValue, FindMembers and IdText: core/json_limits.h.

// Writes `"name":<v>` unless OmittedValue(v) (WriteJson: numbers as their source text, strings
// escaped, duplicate keys inside `v` resolved to the last).
void WriteField(DocWriter& w, std::string_view name, const JsonValue* v);
// Writes `"name":<json>` of a value stored as JSON text; nothing when `json` is empty.
void WriteRawField(DocWriter& w, std::string_view name, std::string_view json);
void WriteStringField(DocWriter& w, std::string_view name, std::string_view value);

// ---------------------------------------------------------------------------------------------
// Dimensions

// The parts of a `user_info` row the documents use.
struct UserDim {
  std::string gender_json;                 // JSON text of `gender`; "" when omitted
  std::optional<absl::CivilDay> birthday;  // nullopt when absent or not yyyy-MM-dd
  // user_age on `day`: whole years from the birthday (nullopt without one).
  std::optional<int> AgeOn(absl::CivilDay day) const;
};

// The parts of a `base_province` row the documents use (JSON texts; "" when omitted).
struct ProvinceDim {
  std::string name_json;
  std::string area_code_json;
  std::string iso_code_json;
  std::string iso_3166_2_json;
};

// The dimension rows of one batch. Use: Clear(); AddUser/AddProvince for every document's ids
// (the same id gives the same handle); rows = source->Get(keys()) once; SetRows(rows); then
// user(h) / province(h) while writing documents. Not thread-safe.
class DimensionBatch {
 public:
  using Handle = int32_t;
  static constexpr Handle kNone = -1;

  DimensionBatch();

  void Clear();
  Handle AddUser(std::string_view user_id) { return Add(kUserInfoKeyPrefix, user_id, true); }
  Handle AddProvince(std::string_view province_id) {
    return Add(kBaseProvinceKeyPrefix, province_id, false);
  }
  // The distinct keys added since Clear(), in the order first added.
  const std::vector<std::string>& keys() const { return keys_; }
  // The answer of DimensionSource::Get(keys()): rows[i] is the row of keys()[i]. Internal error
  // when the sizes differ (the source broke its contract).
  absl::Status SetRows(const std::vector<std::optional<std::string>>& rows);

  // nullptr for kNone, for a missing row, and before SetRows.
  const UserDim* user(Handle h) const;
  const ProvinceDim* province(Handle h) const;

 private:
  struct Entry {
    bool is_user = false;
    bool found = false;
    UserDim user;
    ProvinceDim province;
  };
  Handle Add(std::string_view prefix, std::string_view id, bool is_user);

  std::vector<std::string> keys_;
  std::vector<Entry> entries_;
  absl::flat_hash_map<std::string, Handle> index_;
  std::string scratch_;
  JsonParser parser_;
};

// ---------------------------------------------------------------------------------------------
// Event time (docs/FORMATS.md §6)

// The event day and hour of an instant in a zone.
struct EventDay {
  absl::CivilDay civil;
  uint32_t number = 0;   // yyyymmdd (a DayNumber); 0 when the year is outside 1..9999
  char day[11] = {};     // "yyyy-MM-dd", NUL-terminated
  char hour[3] = {};     // "HH"
  int64_t start_ms = 0;  // the day's first instant in the zone, epoch ms
  std::string_view day_view() const { return {day, 10}; }
  std::string_view hour_view() const { return {hour, 2}; }
  bool valid() const { return number != 0; }
};

// EventDay of instants, caching the last civil hour (consecutive events of one hour cost a few
// comparisons). Not thread-safe.
class EventDayCache {
 public:
  explicit EventDayCache(absl::TimeZone tz);
  EventDayCache(const EventDayCache&) = delete;
  EventDayCache& operator=(const EventDayCache&) = delete;
  const EventDay& Get(int64_t epoch_ms);

 private:
  absl::TimeZone tz_;
  int64_t start_ms_ = 1;  // [start_ms_, end_ms_) maps to value_; empty at first
  int64_t end_ms_ = 0;
  EventDay value_;
};

// "yyyy-MM-dd HH:mm:ss" local text read in `tz`: its instant and its civil day.
struct LocalTime {
  int64_t epoch_ms = 0;
  absl::CivilDay day;
};
// InvalidArgument for anything but a real "yyyy-MM-dd HH:mm:ss" time (year 1..9999).
absl::StatusOr<LocalTime> ParseLocalTime(std::string_view text, const absl::TimeZone& tz);

// The `yyyymmdd` number of a civil day (0 when the year is outside 1..9999).
uint32_t DayNumberOf(absl::CivilDay day);

}  // namespace rtdw

#endif  // RTDW_CORE_DIMS_H_
