// External versions of the documents rtdw writes to Elasticsearch (spec: "ES itself enforces the
// winner"). Every DAU and order-wide write carries `version` with `version_type` external_gte, so
// ES keeps the right document whatever order writes reach it in (a re-delivered journal entry, a
// request the client gave up on that ES applied later, `rtdw deadletter retry` after the de-dup
// state expired, a member that lost its partition). A write whose version is below the stored
// one is refused with `409 version_conflict_engine_exception`: a better document is already
// there, so it counts as delivered (connectors/es ClassifyBulkItem, kSuperseded).
//
// Why external_gte, not external: an equal version means the same winner (DAU: the same record;
// order-wide: the same batch), so an identical re-delivery (a crash after ES applied a bulk but
// before the journal entry was completed) is applied again instead of being refused — only a
// genuinely older write is counted as superseded — and a re-processed winner with fresher
// dimension rows replaces the earlier copy.
//
// Pure functions; thread-safe.
#ifndef RTDW_CORE_ES_VERSION_H_
#define RTDW_CORE_ES_VERSION_H_

#include <cstdint>

namespace rtdw {

// The value AppendJournalIndexAction takes for "no version" (internal versioning).
inline constexpr int64_t kNoEsVersion = -1;

// DAU (`_id` = mid, one index per event day): the winner is the smallest (ts, input offset) of
// the mid's first pages of the day, so the version grows as (ts, offset) shrinks:
//   ms  = ts - (first instant of the event day in the job's zone), clamped to [0, 2^27 - 1]
//   off = input offset, clamped to [0, 2^35 - 1]
//   version = ((2^27 - 1 - ms) << 35) | (2^35 - 1 - off)          (always in [0, 2^62))
// Range: a day has at most 25 h = 90,000,000 ms < 2^27 (134,217,728), so every ts of the day
// (DST days included) is ordered exactly; offsets are ordered exactly up to 2^35 - 1
// (34,359,738,367). Beyond that they tie at the same version: then the write delivered last wins
// (external_gte), as without versions. The tie-break of equal ts is the smaller offset, as the
// de-dup rule's. Offsets of one partition only: de-dup is per partition and log-split keys by
// mid, so all pages of a mid compete on one partition. After an operator's offset reset or a
// re-created topic, offsets of a re-read record change; that moves only ties of equal ts.
int64_t DauEsVersion(int64_t ts_ms, int64_t day_start_ms, int64_t offset);

// Order-wide (`_id` = order detail id): a document is rewritten only by re-processing (a replay,
// a hand-over to another member), and the later processing must win. The version is the wall
// clock of the batch that made the document (epoch ms, which reaches 2^62 only in ~146 million
// years): a partition's new owner processes its records after the old owner lost them (at least
// a session timeout later in group mode), so its writes carry larger versions than anything the
// old owner made; journal replay and dead-letter retry re-send the version they were made with.
// Limits: clocks of members must agree to well within the hand-over time; a clock stepped back
// on one host makes that host's new writes of an already written detail count as superseded
// (the older copy, of the same rows, stays). Negative clocks give 0.
int64_t OrderWideEsVersion(int64_t batch_now_ms);

}  // namespace rtdw

#endif  // RTDW_CORE_ES_VERSION_H_
