#include "core/engine/split_step.h"

#include "absl/strings/cord.h"
#include "absl/strings/str_cat.h"

namespace rtdw {

absl::Status FencedError(std::string_view why) {
  absl::Status st = absl::AbortedError(why.substr(0, 8) == "fenced: "
                                           ? std::string(why)
                                           : absl::StrCat("fenced: ", std::string(why)));
  st.SetPayload("rtdw/fenced", absl::Cord("1"));
  return st;
}

bool IsFenced(const absl::Status& st) { return st.GetPayload("rtdw/fenced").has_value(); }

}  // namespace rtdw
