#include "core/process/build_info.h"

namespace rtdw {
namespace {
#include "rtdw_build_info.inc"  // kBuildCommit, kBuildDirty (generated, see build_info.h)

constexpr std::string_view kCommitOpen = " (commit ";
constexpr std::string_view kDirtyNote = ", with uncommitted changes";
}  // namespace

std::string_view BuildVersion() { return RTDW_VERSION; }
std::string_view BuildCommit() { return kBuildCommit; }
bool BuildDirty() { return kBuildDirty; }

std::string VersionLine(std::string_view program) {
  std::string line(program);
  line.append(" ").append(BuildVersion()).append(kCommitOpen).append(BuildCommit());
  if (BuildDirty()) line.append(kDirtyNote);
  return line.append(")");
}

std::optional<VersionLineBuild> ParseVersionLine(std::string_view line) {
  const size_t at = line.find(kCommitOpen);
  if (at == std::string_view::npos) return std::nullopt;
  const size_t from = at + kCommitOpen.size();
  const size_t end = line.find_first_of(",)", from);
  if (end == std::string_view::npos) return std::nullopt;
  VersionLineBuild b;
  b.commit.assign(line.substr(from, end - from));
  b.dirty = line.substr(end).starts_with(kDirtyNote);
  return b;
}

}  // namespace rtdw
