// A job's state store as the daemon opens it: where it lives and with what settings.
#ifndef RTDW_CORE_ENGINE_JOB_STORE_H_
#define RTDW_CORE_ENGINE_JOB_STORE_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "core/config/config.h"
#include "storage/state_store.h"

namespace rtdw {

// Opens (or creates) `<state.dir>/<job>` with the config's cache size, sync, free-space floor and
// the job's state fingerprint (StateFingerprint); the store's messages go to the log as
// "<job>: ...". Errors are StateStore::Open's (a fingerprint mismatch names the changed settings
// and the command that accepts them).
absl::StatusOr<std::unique_ptr<StateStore>> OpenJobStore(const Config& config,
                                                         const std::string& job);

// True when `job` has no state store under `state_dir` yet (no directory, or an empty one): the
// daemon's open would create it.
bool StoreMissing(const std::string& state_dir, const std::string& job);

}  // namespace rtdw

#endif  // RTDW_CORE_ENGINE_JOB_STORE_H_
