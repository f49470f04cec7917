#include "core/engine/job_store.h"

#include <filesystem>
#include <string_view>
#include <system_error>

#include "spdlog/spdlog.h"

namespace rtdw {

absl::StatusOr<std::unique_ptr<StateStore>> OpenJobStore(const Config& config,
                                                         const std::string& job) {
  StateStoreOptions so;
  so.root = config.state.dir;
  so.job = job;
  so.block_cache_mb = config.state.block_cache_mb;
  so.sync = config.state.sync;
  so.min_free_mb = config.state.min_free_mb;
  so.topic_fingerprint = StateFingerprint(config, job);
  so.log = [job](std::string_view msg) { spdlog::info("{}: {}", job, std::string(msg)); };
  return StateStore::Open(so);
}

bool StoreMissing(const std::string& state_dir, const std::string& job) {
  // As StateStore::Open decides whether to create: no directory, or an empty one.
  namespace fs = std::filesystem;
  std::error_code ec;
  const std::string path = StorePath(state_dir, job);
  if (!fs::exists(path, ec)) return true;
  return fs::is_directory(path, ec) && fs::is_empty(path, ec);
}

}  // namespace rtdw
