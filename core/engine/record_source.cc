#include "core/engine/record_source.h"

#include "absl/strings/cord.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "core/status_util.h"

namespace rtdw {
namespace {

// The payload's type URL; its value is "topic\npartition\noffset\nlow\nhigh".
constexpr char kLostOffsetPayload[] = "rtdw/source/lost-offset";

}  // namespace

absl::Status LostOffsetError(const LostOffset& lost, std::string_view message) {
  absl::Status st = absl::OutOfRangeError(ToAbsl(message));
  st.SetPayload(kLostOffsetPayload,
                absl::Cord(absl::StrCat(lost.topic, "\n", lost.partition, "\n", lost.offset, "\n",
                                        lost.low, "\n", lost.high)));
  return st;
}

std::optional<LostOffset> LostOffsetOf(const absl::Status& status) {
  if (!absl::IsOutOfRange(status)) return std::nullopt;
  auto payload = status.GetPayload(kLostOffsetPayload);
  if (!payload) return std::nullopt;
  std::vector<std::string> f = absl::StrSplit(std::string(*payload), '\n');
  LostOffset lost;
  if (f.size() != 5 || !absl::SimpleAtoi(f[1], &lost.partition) ||
      !absl::SimpleAtoi(f[2], &lost.offset) || !absl::SimpleAtoi(f[3], &lost.low) ||
      !absl::SimpleAtoi(f[4], &lost.high)) {
    return std::nullopt;
  }
  lost.topic = f[0];
  return lost;
}

}  // namespace rtdw
