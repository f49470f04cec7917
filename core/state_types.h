// The value types of rtdw's state (docs/DESIGN.md, "State"), shared by the transforms (core/)
// and the state store that encodes them (storage/state_keys.h).
#ifndef RTDW_CORE_STATE_TYPES_H_
#define RTDW_CORE_STATE_TYPES_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace rtdw {

// A day as the number yyyymmdd (20241125): ordered like the days themselves.
using DayNumber = uint32_t;
// "yyyy-mm-dd" -> 20241125; an error for anything that is not a real calendar day.
absl::StatusOr<DayNumber> ParseDay(std::string_view yyyy_mm_dd);
// 20241125 -> "2024-11-25".
std::string FormatDay(DayNumber day);
// True when `day` is a real calendar day.
bool ValidDay(DayNumber day);

// The winning record of a (day, partition, mid) de-dup slot (docs/FORMATS.md §4).
struct DedupValue {
  int64_t ts_ms = 0;   // event time of the winning page record
  int64_t offset = 0;  // its input offset
  friend bool operator==(const DedupValue&, const DedupValue&) = default;
};
// docs/FORMATS.md §4: a candidate replaces the incumbent when its ts is smaller, or equal with a
// smaller input offset.
inline bool DedupBeats(const DedupValue& candidate, const DedupValue& incumbent) {
  return candidate.ts_ms < incumbent.ts_ms ||
         (candidate.ts_ms == incumbent.ts_ms && candidate.offset < incumbent.offset);
}

enum class JoinSide : char { kOrder = 'O', kDetail = 'D' };

// A buffered join row.
struct JoinRow {
  int32_t partition = 0;
  std::string order_id;
  JoinSide side = JoinSide::kOrder;
  std::string row_id;    // order id for the order side, detail id for the detail side
  int64_t event_ms = 0;  // the row's create_time as epoch ms (what TTL expiry compares)
  bool matched = false;  // caller's flag: the row has met a partner at least once
  std::string row_json;  // the buffered row
  // The row's input position (offset in its source topic partition), -1 when unknown (rows
  // written before it was recorded). Group mode's hand-over offset never passes a live row.
  int64_t source_offset = -1;
};

}  // namespace rtdw

#endif  // RTDW_CORE_STATE_TYPES_H_
