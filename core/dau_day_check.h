// One DAU day's de-dup state against its Elasticsearch index: what `rtdw verify` reports and what
// `rtdw dedup forget --missing-in-es` repairs (docs/OPERATIONS.md). The rules live here, in core,
// so that they are tested with in-memory inputs; the CLI only opens the store and ES and prints.
//
// The day's winners (ReadDauDayWinners): per mid, the best of its slots on the day across source
// partitions by docs/FORMATS.md §4 (DedupBeats) — the document ES must hold for that mid.
//
// CheckDauDay() compares them with the index's documents (each document's `ts`; one without its
// lineage, `ts` and `rtdw_src`, cannot have come from rtdw and matches no winner), taking into
// account what is still on its way or was refused:
//  - owed: a mid an owed journal entry writes into this index is not a difference (the delivery
//    will write it); owed_count counts the day's winners that are owed.
//  - missing_in_es: a winner with no document, not owed, not refused by ES.
//  - ts_mismatch: a winner whose document has another `ts`, not owed.
//  - missing_in_state: a document whose id is no winner of the day.
//  - dead_lettered: a winner with no document that ES refused (an es_rejected dead letter of this
//    index and id), and a mid whose late / future dead letter (its record's `ts` on the day, in
//    options.time_zone) would be the day's winner: no document, or the document's `ts` is later
//    than the letter's. Owed mids are never listed.
//  - letters / letters_by_reason: the dead letters of the day (es_rejected of this index; late and
//    future whose record's `ts` falls on the day).
// Every list is sorted. A missing index is not an error: index_missing, and no documents.
#ifndef RTDW_CORE_DAU_DAY_CHECK_H_
#define RTDW_CORE_DAU_DAY_CHECK_H_

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "core/dedup_restore.h"
#include "core/journal_entry.h"
#include "core/state_types.h"

namespace rtdw {

// What the check reads of a DAU job's state. Implementations need not be thread-safe (one check,
// one thread). StoreDauDayState adapts storage/state_store.h's StateStore.
class DauDayState {
 public:
  virtual ~DauDayState() = default;
  // Calls fn(partition, mid, winner) for every de-dup slot of `day`; fn returns false to stop.
  virtual absl::Status ScanDedupDay(
      DayNumber day,
      const std::function<bool(int32_t, std::string_view, const DedupValue&)>& fn) const = 0;
  // The owed journal entries, with their bodies.
  virtual absl::StatusOr<std::vector<JournalEntry>> OwedEntries() const = 0;
  // The line (docs/FORMATS.md §7) of every kept dead letter.
  virtual absl::StatusOr<std::vector<std::string>> DeadLetterLines() const = 0;
};

// A DauDayState over a state store (StateStore, or anything with its ScanDedupDay, ListJournal and
// ListDeadLetters). Not thread-safe.
template <typename Store>
class StoreDauDayState : public DauDayState {
 public:
  explicit StoreDauDayState(const Store* store) : store_(store) {}
  absl::Status ScanDedupDay(
      DayNumber day,
      const std::function<bool(int32_t, std::string_view, const DedupValue&)>& fn) const override {
    return store_->ScanDedupDay(day, fn);
  }
  absl::StatusOr<std::vector<JournalEntry>> OwedEntries() const override {
    return store_->ListJournal(/*with_bodies=*/true);
  }
  absl::StatusOr<std::vector<std::string>> DeadLetterLines() const override {
    auto letters = store_->ListDeadLetters();
    if (!letters.ok()) return letters.status();
    std::vector<std::string> lines;
    lines.reserve(letters->size());
    for (auto& l : *letters) lines.push_back(std::move(l.line));
    return lines;
  }

 private:
  const Store* store_;
};

// mid -> the source partition and value of its winning slot on the day.
using DauDayWinners = std::unordered_map<std::string, std::pair<int32_t, DedupValue>>;

// The day's winners, as described at the top. Errors: the state's.
absl::StatusOr<DauDayWinners> ReadDauDayWinners(const DauDayState& state, DayNumber day);

struct DauDayCheckOptions {
  DayNumber day = 0;
  std::string index;                               // the day's index
  absl::TimeZone time_zone = absl::UTCTimeZone();  // the zone DAU days are in
};

struct DauDayCheck {
  DauDayWinners state;                            // the day's winners
  std::unordered_map<std::string, int64_t> docs;  // the index: id -> ts (INT64_MIN: no lineage)
  bool index_missing = false;
  uint64_t owed_count = 0;
  std::vector<std::string> missing_in_es, missing_in_state, ts_mismatch, dead_lettered;
  uint64_t letters = 0;
  std::map<std::string, uint64_t> letters_by_reason;
  // Any difference (owed mids and a missing index alone are none).
  bool differs() const {
    return !missing_in_es.empty() || !missing_in_state.empty() || !ts_mismatch.empty() ||
           !dead_lettered.empty();
  }
};

// Compares the day as described at the top, reading `state` and `index` (refreshed first, so
// that every document indexed so far counts). Errors: the state's, a journal entry whose body is
// not a bulk body, and the index's other than NotFound; `out` is then incomplete.
absl::Status CheckDauDay(const DauDayState& state, DauDocumentReader& index,
                         const DauDayCheckOptions& options, DauDayCheck* out);

}  // namespace rtdw

#endif  // RTDW_CORE_DAU_DAY_CHECK_H_
