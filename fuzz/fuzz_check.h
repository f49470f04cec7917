// Helpers shared by the fuzz targets: a check that aborts (libFuzzer and the replay runner both
// report an abort as a crash, with the input that caused it), and a JSON validity check.
#ifndef RTDW_FUZZ_FUZZ_CHECK_H_
#define RTDW_FUZZ_FUZZ_CHECK_H_

#include <cstdio>
#include <cstdlib>
#include <string_view>

#include "core/json_limits.h"

#define FUZZ_CHECK(cond, what)                                                         \
  do {                                                                                 \
    if (!(cond)) {                                                                     \
      std::fprintf(stderr, "%s:%d: fuzz invariant broken: %s (%s)\n", __FILE__, __LINE__, \
                   #cond, what);                                                      \
      std::abort();                                                                    \
    }                                                                                  \
  } while (0)

namespace rtdw::fuzz {

// True when `text` is one valid JSON object (UTF-8, any depth up to the supported maximum).
inline bool IsJsonObject(std::string_view text) {
  rapidjson::Document doc;
  return ParseJsonSafely(text, JsonLimits{0, kMaxSupportedJsonDepth}, &doc) == JsonStatus::kOk &&
         doc.IsObject();
}

}  // namespace rtdw::fuzz

#endif  // RTDW_FUZZ_FUZZ_CHECK_H_
