#include "core/dedup_restore.h"

#include <algorithm>
#include <map>

#include "core/dau_document.h"
#include "core/dims.h"
#include "core/event_time.h"
#include "core/status_util.h"

namespace rtdw {

absl::Status RestoreDedup(DauDocumentReader& reader, DedupRestoreTarget& target,
                          const DedupRestoreOptions& options, DedupRestoreStats* stats) {
  RTDW_RETURN_IF_ERROR(reader.Refresh());
  size_t uncommitted = 0;                // slots put since the last commit
  std::map<int32_t, int64_t> newest_ts;  // partition -> newest restored ts
  absl::Status s =
      reader.ForEach([&](std::string_view id, std::string_view source) -> absl::Status {
        ++stats->documents;
        std::optional<DauDocumentSource> doc = ParseDauDocumentSource(source);
        if (!doc || id.empty()) {
          ++stats->skipped;
          if (stats->skipped_samples.size() < options.max_samples) {
            stats->skipped_samples.emplace_back(id);
          }
          return absl::OkStatus();
        }
        if ((!options.topic.empty() && doc->topic != options.topic) ||
            (!options.partitions.empty() && !options.partitions.count(doc->partition))) {
          ++stats->other_partitions;
          return absl::OkStatus();
        }
        DayNumber day;
        if (options.day) {
          day = *options.day;
        } else {
          day = DayNumberOf(CivilDayOf(doc->ts_ms, options.time_zone));
        }
        RTDW_ASSIGN_OR_RETURN(bool put, PutDedupIfBeats(target.batch(), day, doc->partition, id,
                                                        DedupValue{doc->ts_ms, doc->offset}));
        if (!put) {
          ++stats->kept;
          return absl::OkStatus();
        }
        ++stats->restored;
        auto [it, inserted] = newest_ts.try_emplace(doc->partition, doc->ts_ms);
        if (!inserted) it->second = std::max(it->second, doc->ts_ms);
        if (++uncommitted >= options.commit_every) {
          uncommitted = 0;
          return target.Commit();
        }
        return absl::OkStatus();
      });
  if (absl::IsNotFound(s) && options.missing_index_is_empty) s = absl::OkStatus();
  RTDW_RETURN_IF_ERROR(s);
  bool dirty = uncommitted > 0;
  if (options.raise_watermarks) {
    for (const auto& [partition, ts] : newest_ts) {
      // Never ahead of the wall clock (docs/FORMATS.md §6): a fast device's document may lie
      // ahead.
      const int64_t wm = std::min(ts, options.now_ms);
      auto stored = target.batch().GetWatermark(partition);
      if (stored.ok() && (!stored->has_value() || **stored < wm)) {
        RTDW_RETURN_IF_ERROR(target.batch().SetWatermark(partition, wm));
        dirty = true;
      }
    }
  }
  if (dirty) RTDW_RETURN_IF_ERROR(target.Commit());
  return absl::OkStatus();
}

}  // namespace rtdw
