#include "core/dau_document.h"

#include "absl/strings/numbers.h"
#include "core/json_limits.h"
#include "core/status_util.h"

namespace rtdw {

bool ParseRtdwSrc(std::string_view src, std::string* topic, int32_t* partition, int64_t* offset) {
  const size_t b = src.rfind('/');
  if (b == std::string_view::npos || b == 0) return false;
  const size_t a = src.rfind('/', b - 1);
  if (a == std::string_view::npos || a == 0) return false;
  if (!absl::SimpleAtoi(ToAbsl(src.substr(a + 1, b - a - 1)), partition) || *partition < 0 ||
      !absl::SimpleAtoi(ToAbsl(src.substr(b + 1)), offset)) {
    return false;
  }
  topic->assign(src.substr(0, a));
  return true;
}

std::optional<DauDocumentSource> ParseDauDocumentSource(std::string_view source_json) {
  JsonParser parser(JsonLimits{0, kMaxSupportedJsonDepth});
  if (parser.Parse(source_json) != JsonStatus::kOk || !parser.root().IsObject()) {
    return std::nullopt;
  }
  const JsonValue* ts = parser.root().Find("ts");
  const JsonValue* src = parser.root().Find("rtdw_src");
  if (ts == nullptr || !ts->IsInt64() || src == nullptr || !src->IsString()) return std::nullopt;
  DauDocumentSource out;
  out.ts_ms = ts->GetInt64();
  if (!ParseRtdwSrc(src->text(), &out.topic, &out.partition, &out.offset)) return std::nullopt;
  if (const JsonValue* mid = parser.root().Find("mid"); mid != nullptr && mid->IsString()) {
    out.mid.assign(mid->text());
  }
  if (const JsonValue* dt = parser.root().Find("dt"); dt != nullptr && dt->IsString()) {
    out.dt.assign(dt->text());
  }
  return out;
}

absl::StatusOr<bool> PutDedupIfBeats(BatchState& state, DayNumber day, int32_t partition,
                                     std::string_view mid, const DedupValue& candidate) {
  RTDW_ASSIGN_OR_RETURN(std::optional<DedupValue> incumbent,
                        state.DedupLookup(day, partition, mid));
  if (incumbent && !DedupBeats(candidate, *incumbent)) return false;
  RTDW_RETURN_IF_ERROR(state.PutDedup(day, partition, mid, candidate));
  return true;
}

bool StillDedupWinner(const BatchState& state, std::string_view source_json) {
  std::optional<DauDocumentSource> doc = ParseDauDocumentSource(source_json);
  if (!doc || doc->mid.empty() || doc->dt.empty()) return true;
  absl::StatusOr<DayNumber> day = ParseDay(doc->dt);
  if (!day.ok()) return true;
  auto v = state.DedupLookup(*day, doc->partition, doc->mid);
  if (!v.ok() || !v->has_value()) return true;
  return (*v)->ts_ms == doc->ts_ms;
}

}  // namespace rtdw
