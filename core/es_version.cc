#include "core/es_version.h"

#include <algorithm>

namespace rtdw {
namespace {
constexpr int kOffsetBits = 35;
constexpr int kMsBits = 27;
constexpr int64_t kMaxOffset = (int64_t{1} << kOffsetBits) - 1;
constexpr int64_t kMaxMs = (int64_t{1} << kMsBits) - 1;
}  // namespace

int64_t DauEsVersion(int64_t ts_ms, int64_t day_start_ms, int64_t offset) {
  const int64_t ms = std::clamp<int64_t>(ts_ms - day_start_ms, 0, kMaxMs);
  const int64_t off = std::clamp<int64_t>(offset, 0, kMaxOffset);
  return ((kMaxMs - ms) << kOffsetBits) | (kMaxOffset - off);
}

int64_t OrderWideEsVersion(int64_t batch_now_ms) { return std::max<int64_t>(batch_now_ms, 0); }

}  // namespace rtdw
