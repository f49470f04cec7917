// What a binary was built from: rtdw's version (CMake's project version) and the git commit of
// its source tree, looked up at build time (cmake/BuildInfo.cmake). Shown by `rtdwd --version`,
// `rtdw --version`, rtdwd's `rtdw_build_info` metric and its start-up log line, and recorded by
// rtdw-bench — so that an operator, or a benchmark result, can tell which build ran.
//
// Thread-safety: constants; every function may be called from any thread.
#ifndef RTDW_CORE_PROCESS_BUILD_INFO_H_
#define RTDW_CORE_PROCESS_BUILD_INFO_H_

#include <optional>
#include <string>
#include <string_view>

namespace rtdw {

// "0.1.0".
std::string_view BuildVersion();
// The 40-hex-digit commit, or "unknown" when the source tree was not a git checkout.
std::string_view BuildCommit();
// True when tracked files differed from that commit at build time.
bool BuildDirty();
// "<program> <version> (commit <sha>[, with uncommitted changes])": the --version line.
std::string VersionLine(std::string_view program);

// What a --version line (VersionLine's format, printed by another binary) names.
struct VersionLineBuild {
  std::string commit;  // as printed: 40 hex digits or "unknown"
  bool dirty = false;  // ", with uncommitted changes"
};
// Empty when `line` holds no "(commit ...)".
std::optional<VersionLineBuild> ParseVersionLine(std::string_view line);

}  // namespace rtdw

#endif  // RTDW_CORE_PROCESS_BUILD_INFO_H_
