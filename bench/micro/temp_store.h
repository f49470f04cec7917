// A state store in a fresh temporary directory (under $TMPDIR, else /tmp) for the micro
// benchmarks, removed with it. Aborts when the store cannot be made: a benchmark without its
// store measures nothing.
#ifndef RTDW_BENCH_MICRO_TEMP_STORE_H_
#define RTDW_BENCH_MICRO_TEMP_STORE_H_

#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "storage/state_store.h"

namespace rtdw {

class TempStore {
 public:
  explicit TempStore(bool sync = true, std::string job = "dau") {
    const char* base = std::getenv("TMPDIR");
    std::string tmpl = absl::StrCat(base && *base ? base : "/tmp", "/rtdw-bench-XXXXXX");
    if (mkdtemp(tmpl.data()) == nullptr) std::abort();
    dir_ = tmpl;
    StateStoreOptions o;
    o.root = dir_;
    o.job = std::move(job);
    o.block_cache_mb = 256;
    o.sync = sync;
    auto s = StateStore::Open(o);
    if (!s.ok()) std::abort();
    store_ = std::move(s).value();
  }
  ~TempStore() {
    store_.reset();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  TempStore(const TempStore&) = delete;
  TempStore& operator=(const TempStore&) = delete;
  StateStore& store() { return *store_; }

 private:
  std::string dir_;
  std::unique_ptr<StateStore> store_;
};

}  // namespace rtdw

#endif  // RTDW_BENCH_MICRO_TEMP_STORE_H_
