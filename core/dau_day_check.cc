#include "core/dau_day_check.h"

#include <algorithm>
#include <climits>
#include <optional>
#include <unordered_set>

#include "core/dau_document.h"
#include "core/dead_letter.h"
#include "core/dims.h"
#include "core/event_time.h"
#include "core/json_limits.h"
#include "core/status_util.h"

namespace rtdw {

absl::StatusOr<DauDayWinners> ReadDauDayWinners(const DauDayState& state, DayNumber day) {
  DauDayWinners winners;
  RTDW_RETURN_IF_ERROR(
      state.ScanDedupDay(day, [&](int32_t partition, std::string_view mid, const DedupValue& v) {
        auto [it, inserted] = winners.try_emplace(std::string(mid), partition, v);
        if (!inserted && DedupBeats(v, it->second.second)) it->second = {partition, v};
        return true;
      }));
  return winners;
}

absl::Status CheckDauDay(const DauDayState& state, DauDocumentReader& index,
                         const DauDayCheckOptions& options, DauDayCheck* c) {
  RTDW_ASSIGN_OR_RETURN(c->state, ReadDauDayWinners(state, options.day));
  std::unordered_set<std::string> owed;  // ids the journal still owes the index
  RTDW_ASSIGN_OR_RETURN(std::vector<JournalEntry> entries, state.OwedEntries());
  for (const auto& e : entries) {
    RTDW_ASSIGN_OR_RETURN(auto actions, ParseJournalActions(e.body));
    for (const auto& act : actions) {
      if (act.index == options.index) owed.insert(act.id);
    }
  }
  absl::Status s = index.Refresh();
  if (s.ok()) {
    s = index.ForEach([&](std::string_view id, std::string_view source) {
      // A document without its lineage cannot have come from rtdw: it never matches the state.
      std::optional<DauDocumentSource> d = ParseDauDocumentSource(source);
      c->docs.emplace(std::string(id), d ? d->ts_ms : INT64_MIN);
      return absl::OkStatus();
    });
  }
  if (absl::IsNotFound(s)) {
    c->index_missing = true;
  } else if (!s.ok()) {
    return s;
  }
  // The day's dead letters: records refused as late / future whose ts falls on the day (their
  // best record per mid), and documents of the day's index ES refused.
  std::unordered_map<std::string, int64_t> lettered;  // mid -> smallest ts among its letters
  std::unordered_set<std::string> rejected;
  RTDW_ASSIGN_OR_RETURN(std::vector<std::string> letters, state.DeadLetterLines());
  for (const auto& line : letters) {
    ParsedDeadLetter p = ParseDeadLetter(line);
    if (!p.ok) continue;
    if (p.reason == ReasonCode(Reason::kEsRejected)) {
      if (p.index != options.index) continue;
      ++c->letters;
      ++c->letters_by_reason[p.reason];
      rejected.insert(p.id);
      continue;
    }
    if (p.reason != ReasonCode(Reason::kLate) && p.reason != ReasonCode(Reason::kFuture)) continue;
    JsonParser parser(JsonLimits{0, kMaxSupportedJsonDepth});
    if (!p.has_raw || parser.Parse(p.raw) != JsonStatus::kOk || !parser.root().IsObject()) continue;
    const JsonValue *mid = parser.root().Find("mid"), *ts = parser.root().Find("ts");
    if (mid == nullptr || !mid->IsString() || ts == nullptr || !ts->IsInt64()) continue;
    if (DayNumberOf(CivilDayOf(ts->GetInt64(), options.time_zone)) != options.day) continue;
    ++c->letters;
    ++c->letters_by_reason[p.reason];
    auto [it, inserted] = lettered.try_emplace(std::string(mid->text()), ts->GetInt64());
    if (!inserted) it->second = std::min(it->second, ts->GetInt64());
  }
  std::unordered_set<std::string> counted;
  for (const auto& [mid, v] : c->state) {
    auto it = c->docs.find(mid);
    const bool is_owed = owed.count(mid) > 0;
    if (is_owed) ++c->owed_count;
    if (it == c->docs.end()) {
      if (is_owed) continue;
      if (rejected.count(mid)) {
        c->dead_lettered.push_back(mid);
        counted.insert(mid);
      } else {
        c->missing_in_es.push_back(mid);
      }
    } else if (it->second != v.second.ts_ms && !is_owed) {
      c->ts_mismatch.push_back(mid);
    }
  }
  for (const auto& [id, ts] : c->docs) {
    if (!c->state.count(id)) c->missing_in_state.push_back(id);
  }
  // A letter holds back a document when its record would be the day's winner of its mid.
  for (const auto& [mid, ts] : lettered) {
    if (counted.count(mid) || owed.count(mid)) continue;
    auto it = c->docs.find(mid);
    if (it == c->docs.end() || it->second > ts) c->dead_lettered.push_back(mid);
  }
  for (auto* v : {&c->missing_in_es, &c->missing_in_state, &c->ts_mismatch, &c->dead_lettered}) {
    std::sort(v->begin(), v->end());
  }
  return absl::OkStatus();
}

}  // namespace rtdw
