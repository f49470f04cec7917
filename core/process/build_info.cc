#include "core/process/build_info.h"

namespace rtdw {
namespace {
#include "rtdw_build_info.inc"  // kBuildCommit, kBuildDirty (generated, see build_info.h)
}  // namespace

std::string_view BuildVersion() { return RTDW_VERSION; }
std::string_view BuildCommit() { return kBuildCommit; }
bool BuildDirty() { return kBuildDirty; }

std::string VersionLine(std::string_view program) {
  std::string line(program);
  line.append(" ").append(BuildVersion()).append(" (commit ").append(BuildCommit());
  if (BuildDirty()) line.append(", with uncommitted changes");
  return line.append(")");
}

}  // namespace rtdw
