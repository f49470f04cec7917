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
};

// Splits an `rtdw_src` lineage value "TOPIC/PARTITION/OFFSET" (the topic may hold '/'); false
// unless the partition is an integer >= 0 and the offset an integer.
bool ParseRtdwSrc(std::string_view src, std::string* topic, int32_t* partition, int64_t* offset);

// `ts` (an integer literal) and `rtdw_src` of a document's _source (of duplicate keys the last);
// nullopt when the source is not a JSON object or either field is missing or malformed.
std::optional<DauDocumentSource> ParseDauDocumentSource(std::string_view source_json);

// docs/FORMATS.md §4 on one (day, partition, mid) slot: puts `candidate` when the slot is empty or
// `candidate` beats its incumbent (DedupBeats); true when it was put, false when the incumbent
// stays.
absl::StatusOr<bool> PutDedupIfBeats(BatchState& state, DayNumber day, int32_t partition,
                                     std::string_view mid, const DedupValue& candidate);

}  // namespace rtdw

#endif  // RTDW_CORE_DAU_DOCUMENT_H_
