// What a DauInfo document (docs/FORMATS.md §4) says about its de-dup slot, and the §4 rule for
// one slot: shared by the dau transform and every de-dup restore from ES (rtdwd's group
// hand-over, `rtdw dedup restore`), so that all three judge a winner the same way.
#ifndef RTDW_CORE_DAU_DOCUMENT_H_
#define RTDW_CORE_DAU_DOCUMENT_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "core/es_transform.h"
#include "core/state_types.h"

namespace rtdw {

// The winning page record a DAU document was made from.
struct DauDocumentSource {
  int64_t ts_ms = 0;      // `ts`
  std::string topic;      // `rtdw_src` = "TOPIC/PARTITION/OFFSET"
  int32_t partition = 0;  // >= 0
  int64_t offset = 0;
  std::string mid;  // `mid` and `dt` ("yyyy-mm-dd", the slot's day) when they are strings, else ""
  std::string dt;
};

// Splits an `rtdw_src` lineage value "TOPIC/PARTITION/OFFSET" (the topic may hold '/'); false
// unless the partition is an integer >= 0 and the offset an integer.
bool ParseRtdwSrc(std::string_view src, std::string* topic, int32_t* partition, int64_t* offset);

// `ts` (an integer literal), `rtdw_src`, `mid` and `dt` of a document's _source (of duplicate
// keys the last); nullopt when the source is not a JSON object or `ts` or `rtdw_src` is missing or
// malformed.
std::optional<DauDocumentSource> ParseDauDocumentSource(std::string_view source_json);

// docs/FORMATS.md §4 on one (day, partition, mid) slot: puts `candidate` when the slot is empty or
// `candidate` beats its incumbent (DedupBeats); true when it was put, false when the incumbent
// stays.
absl::StatusOr<bool> PutDedupIfBeats(BatchState& state, DayNumber day, int32_t partition,
                                     std::string_view mid, const DedupValue& candidate);

// Whether a DAU document is still its slot's winner (`rtdw deadletter retry` asks before it sends
// a document ES rejected again): false when the de-dup state holds a different winner for the
// document's slot (day `dt`, rtdw_src's partition, `mid`) — a later record superseded it, and
// re-sending it would overwrite the newer winner. True when the slot is empty or its winner has
// the document's `ts`, when the document does not name its slot (not a DAU document), and when the
// state cannot be read (the send is then judged by ES's external version).
bool StillDedupWinner(const BatchState& state, std::string_view source_json);

}  // namespace rtdw

#endif  // RTDW_CORE_DAU_DOCUMENT_H_
