// Opening a state store in the storage tests: one job's store under a test's scratch directory,
// with a small block cache.
#ifndef RTDW_TESTS_STORAGE_STORE_FIXTURE_H_
#define RTDW_TESTS_STORAGE_STORE_FIXTURE_H_

#include <memory>
#include <string>
#include <utility>

#include "gtest/gtest.h"
#include "storage/state_store.h"

namespace rtdw::testing {

inline StateStoreOptions StoreOptions(const std::string& root, const std::string& job = "dau") {
  StateStoreOptions o;
  o.root = root;
  o.job = job;
  o.block_cache_mb = 16;
  return o;
}

// The open store, or nullptr after a gtest failure that says why.
inline std::unique_ptr<StateStore> MustOpen(const StateStoreOptions& o) {
  auto s = StateStore::Open(o);
  EXPECT_TRUE(s.ok()) << s.status();
  if (!s.ok()) return nullptr;
  return std::move(s).value();
}

inline std::unique_ptr<StateStore> MustOpen(const std::string& root) {
  return MustOpen(StoreOptions(root));
}

}  // namespace rtdw::testing

#endif  // RTDW_TESTS_STORAGE_STORE_FIXTURE_H_
