// The state store: the state dir, opening (creating a store atomically) and closing.
#include "storage/state_store.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "storage/state_store_internal.h"

namespace fs = std::filesystem;

namespace rtdw {

using state_internal::CfOptions;
using state_internal::DbOptions;
using state_internal::FromRocks;
using state_internal::FsyncDir;
using state_internal::NowMs;
using state_internal::OpenInfoLog;
using state_internal::RocksText;

namespace {

// Reads /proc/locks for a POSIX lock on `file` held by a process other than this one. Opens
// nothing: closing a descriptor of the LOCK file would drop this process's own POSIX locks on it.
std::optional<pid_t> LockHolderOf(const std::string& file) {
  struct stat st;
  if (::stat(file.c_str(), &st) != 0) return std::nullopt;
  std::ifstream in("/proc/locks");
  std::string line;
  while (std::getline(in, line)) {
    // "1: POSIX  ADVISORY  WRITE 12345 fd:01:1234567 0 EOF"  (blocked waiters have "->")
    if (line.find("->") != std::string::npos) continue;
    std::istringstream ls(line);
    std::string n, kind, mode, rw, pid_s, dev_ino;
    if (!(ls >> n >> kind >> mode >> rw >> pid_s >> dev_ino)) continue;
    size_t last = dev_ino.rfind(':');
    if (last == std::string::npos) continue;
    unsigned long long ino = std::strtoull(dev_ino.c_str() + last + 1, nullptr, 10);
    if (ino != static_cast<unsigned long long>(st.st_ino)) continue;
    pid_t pid = static_cast<pid_t>(std::atol(pid_s.c_str()));
    if (pid > 0 && pid != ::getpid()) return pid;
  }
  return std::nullopt;
}

absl::Status OpenError(const std::string& path, const std::string& job, const rocksdb::Status& s) {
  std::string text = RocksText(s);
  if (s.IsIOError() && (absl::StrContains(text, "/LOCK") || absl::StrContains(text, "lock "))) {
    std::string who;
    if (auto pid = LockHolderOf(path + "/LOCK")) who = absl::StrCat(" (pid ", *pid, ")");
    return absl::UnavailableError(
        absl::StrCat("state store ", path, " is locked by another process", who,
                     " — a running rtdwd holds it; stop it first (RocksDB: ", text, ")"));
  }
  std::string advice = absl::StrCat(
      "; it was left untouched: restore a backup (rtdw backup restore --from DIR --job ", job,
      ") or move it aside to start empty");
  if (s.IsCorruption()) {
    return absl::DataLossError(
        absl::StrCat("state store ", path, " is corrupt (RocksDB: ", text, ")", advice));
  }
  return absl::FailedPreconditionError(absl::StrCat(
      "state store ", path, " exists but cannot be opened (RocksDB: ", text, ")", advice));
}

// A store being created lives in `<root>/.<job>.creating-<pid>-<n>` until it is complete.
constexpr char kCreatingInfix[] = ".creating-";

// Removes what a creation killed midway left behind: `.<job>.creating-<pid>-*` directories whose
// process is gone (a live one may be creating the store right now). Best effort.
void RemoveCreationLeftovers(const std::string& root, const std::string& job) {
  std::error_code ec;
  const std::string prefix = absl::StrCat(".", job, kCreatingInfix);
  fs::directory_iterator it(root, ec);
  if (ec) return;
  for (const auto& entry : it) {
    std::string name = entry.path().filename().string();
    if (!absl::StartsWith(name, prefix)) continue;
    std::string rest = name.substr(prefix.size());
    int pid = 0;
    if (!absl::SimpleAtoi(rest.substr(0, rest.find('-')), &pid) || pid <= 0) continue;
    if (pid != ::getpid() && ::kill(pid, 0) != 0 && errno == ESRCH) {
      std::error_code e2;
      fs::remove_all(entry.path(), e2);
    }
  }
}

}  // namespace

namespace state_internal {

void FsyncDir(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
}

}  // namespace state_internal

// ---------------------------------------------------------------------------------------------
// Directory helpers

std::string StorePath(std::string_view root, std::string_view job) {
  std::string p(root);
  while (p.size() > 1 && p.back() == '/') p.pop_back();
  return absl::StrCat(p, "/", std::string(job));
}

bool ValidJobName(std::string_view job) {
  if (job.empty() || job.size() > 200 || job[0] == '.') return false;
  for (char c : job) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

absl::StatusOr<std::vector<std::string>> ListJobStores(const std::string& root) {
  std::error_code ec;
  auto st = fs::status(root, ec);
  if (ec || !fs::exists(st)) {
    return absl::NotFoundError(absl::StrCat("state dir ", root, " does not exist"));
  }
  if (!fs::is_directory(st)) {
    return absl::FailedPreconditionError(absl::StrCat("state dir ", root, " is not a directory"));
  }
  std::vector<std::string> jobs;
  fs::directory_iterator it(root, ec);
  if (ec) {
    return absl::PermissionDeniedError(
        absl::StrCat("cannot list state dir ", root, ": ", ec.message()));
  }
  for (const auto& entry : it) {
    std::string name = entry.path().filename().string();
    if (!ValidJobName(name)) continue;
    std::error_code e2;
    if (!entry.is_directory(e2) || fs::is_empty(entry.path(), e2)) continue;
    jobs.push_back(name);
  }
  std::sort(jobs.begin(), jobs.end());
  return jobs;
}

std::optional<pid_t> StoreLockHolder(const std::string& store_path) {
  return LockHolderOf(store_path + "/LOCK");
}

// ---------------------------------------------------------------------------------------------
// StateStore: open and close

absl::StatusOr<std::unique_ptr<StateStore>> StateStore::Open(const StateStoreOptions& options) {
  if (options.root.empty()) return absl::InvalidArgumentError("state dir is empty");
  if (!ValidJobName(options.job)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "job name \"", options.job, "\" is not usable as a store name ([A-Za-z0-9._-]+)"));
  }
  std::unique_ptr<StateStore> store(new StateStore());
  store->root_ = options.root;
  store->path_ = StorePath(options.root, options.job);
  store->job_ = options.job;
  RTDW_RETURN_IF_ERROR(store->OpenImpl(options));
  return store;
}

absl::Status StateStore::OpenImpl(const StateStoreOptions& options) {
  read_only_ = options.read_only;
  sync_ = options.sync;
  min_free_mb_ = options.min_free_mb;
  track_shutdown_ = options.track_shutdown && !options.read_only;
  log_ = options.log;

  std::error_code ec;
  auto st = fs::status(path_, ec);
  bool exists = !ec && fs::exists(st);
  if (exists && !fs::is_directory(st)) {
    return absl::FailedPreconditionError(
        absl::StrCat("state store ", path_, " exists but is not a directory"));
  }
  if (!read_only_) RemoveCreationLeftovers(root_, job_);
  bool fresh = !exists || fs::is_empty(path_, ec);
  if (fresh) {
    if (read_only_ || !options.create_if_missing) {
      return absl::NotFoundError(absl::StrCat("no state store for job ", job_, " at ", path_));
    }
    RTDW_ASSIGN_OR_RETURN(created_, CreateAtomically(options));
  }
  RTDW_RETURN_IF_ERROR(OpenRocks(options, /*create=*/false));
  if (created_ && log_) log_(absl::StrCat("created state store for job ", job_, " at ", path_));
  if (log_ && track_shutdown_ && previous_shutdown_clean_ == false) {
    log_(absl::StrCat("state store ", path_,
                      ": the previous run did not shut down cleanly (it crashed or was killed)"));
  }
  return absl::OkStatus();
}

absl::StatusOr<bool> StateStore::CreateAtomically(const StateStoreOptions& options) {
  std::error_code ec;
  fs::create_directories(root_, ec);
  if (ec) return absl::InternalError(absl::StrCat("cannot create ", root_, ": ", ec.message()));
  // A hidden sibling (skipped by ListJobStores), named by this process so that a later open can
  // tell a leftover of a killed creation from a creation in progress.
  static std::atomic<uint64_t> counter{0};
  std::string tmp = absl::StrCat(StorePath(root_, ""), ".", job_, kCreatingInfix, ::getpid(), "-",
                                 counter.fetch_add(1));
  fs::remove_all(tmp, ec);
  fs::create_directory(tmp, ec);
  if (ec) return absl::InternalError(absl::StrCat("cannot create ", tmp, ": ", ec.message()));
  {
    std::unique_ptr<StateStore> staging(new StateStore());
    staging->root_ = root_;
    staging->path_ = tmp;
    staging->job_ = job_;
    staging->read_only_ = false;
    staging->sync_ = true;
    staging->track_shutdown_ = false;  // the real open below records the open
    absl::Status s = staging->OpenRocks(options, /*create=*/true);
    if (s.ok()) s = staging->Close();
    staging.reset();
    if (!s.ok()) {
      fs::remove_all(tmp, ec);
      return absl::Status(s.code(), absl::StrCat("create state store ", path_, ": ", s.message()));
    }
  }
  // rename(2) replaces an empty directory at path_ and fails on a non-empty one.
  if (::rename(tmp.c_str(), path_.c_str()) != 0) {
    int err = errno;
    fs::remove_all(tmp, ec);
    if (err == ENOTEMPTY || err == EEXIST) return false;  // another process created it meanwhile
    return absl::InternalError(absl::StrCat("cannot move the new state store ", tmp, " to ", path_,
                                            ": ", std::strerror(err)));
  }
  FsyncDir(root_);
  return true;
}

absl::Status StateStore::OpenRocks(const StateStoreOptions& options, bool create) {
  rocks_ = std::make_unique<Rocks>();
  rocks_->cache = options.cache ? options.cache : NewStateCache(options.block_cache_mb);
  rocksdb::DBOptions db_options = DbOptions(*rocks_->cache);
  db_options.create_if_missing = create;
  db_options.error_if_exists = create;
  if (!read_only_) db_options.info_log = OpenInfoLog(path_);

  std::vector<std::string> names;
  if (!create) {
    rocksdb::Status s = rocksdb::DB::ListColumnFamilies(db_options, path_, &names);
    if (!s.ok()) {
      rocks_.reset();
      return OpenError(path_, job_, s);
    }
  }
  // Every family present must be opened (RocksDB's rule for a writable open), ours always.
  std::vector<std::string> wanted = {rocksdb::kDefaultColumnFamilyName};
  for (auto n : kStateColumnFamilies) wanted.emplace_back(n);
  for (const auto& n : names) {
    if (std::find(wanted.begin(), wanted.end(), n) == wanted.end()) wanted.push_back(n);
  }
  if (read_only_) {
    for (auto n : kStateColumnFamilies) {
      if (std::find(names.begin(), names.end(), n) == names.end()) {
        rocks_.reset();
        return absl::FailedPreconditionError(
            absl::StrCat("state store ", path_, " has no column family \"", ToAbsl(n),
                         "\" (not an rtdw state store, or one whose creation was interrupted)"));
      }
    }
  }
  std::vector<rocksdb::ColumnFamilyDescriptor> descriptors;
  for (const auto& n : wanted) descriptors.emplace_back(n, CfOptions(*rocks_->cache, n));

  rocksdb::DB* raw = nullptr;
  rocksdb::Status s;
  if (read_only_) {
    s = rocksdb::DB::OpenForReadOnly(db_options, path_, descriptors, &rocks_->handles, &raw);
  } else {
    s = rocksdb::DB::Open(db_options, path_, descriptors, &rocks_->handles, &raw);
  }
  if (!s.ok()) {
    rocks_.reset();
    if (create) return FromRocks(s, absl::StrCat("create state store ", path_));
    return OpenError(path_, job_, s);
  }
  rocks_->db.reset(raw);
  for (auto* h : rocks_->handles) rocks_->by_name[h->GetName()] = h;
  absl::Status meta = InitMeta(options, create);
  if (!meta.ok()) {
    closed_ = true;  // refused: close without touching meta
    for (auto* h : rocks_->handles) rocks_->db->DestroyColumnFamilyHandle(h);
    rocks_->handles.clear();
    rocks_->db->Close().PermitUncheckedError();
    rocks_.reset();
    return meta;
  }
  return absl::OkStatus();
}

absl::Status StateStore::Close() {
  if (closed_ || !rocks_ || !rocks_->db) {  // closed, or a failed open
    closed_ = true;
    rocks_.reset();
    return absl::OkStatus();
  }
  closed_ = true;
  absl::Status result;
  if (!read_only_) {
    if (rocks_->write_failed.load() && rocks_->db->Resume().ok()) rocks_->write_failed = false;
    if (track_shutdown_) {
      rocksdb::WriteBatch wb;
      wb.Put(cf(kCfMeta), std::string(kMetaCleanShutdown), "true").PermitUncheckedError();
      wb.Put(cf(kCfMeta), std::string(kMetaLastCleanShutdownMs), absl::StrCat(NowMs()))
          .PermitUncheckedError();
      rocksdb::WriteOptions wo;
      wo.sync = true;
      rocksdb::Status s = rocks_->db->Write(wo, &wb);
      if (!s.ok()) result = FromRocks(s, absl::StrCat("mark clean shutdown of ", path_));
    }
    // Not after a failed write: the WAL writer may hold the error, and RocksDB 7.8 (Debian's,
    // built with assertions) aborts the process when such a writer is synced.
    if (result.ok() && !rocks_->write_failed.load()) {
      rocksdb::Status s = rocks_->db->SyncWAL();
      if (!s.ok() && !s.IsNotSupported()) {
        result = FromRocks(s, absl::StrCat("sync WAL of ", path_));
      }
    }
  }
  for (auto* h : rocks_->handles) rocks_->db->DestroyColumnFamilyHandle(h);
  rocks_->handles.clear();
  rocks_->by_name.clear();
  rocksdb::Status s = rocks_->db->Close();
  if (!s.ok() && result.ok()) result = FromRocks(s, absl::StrCat("close ", path_));
  rocks_->db.reset();
  rocks_.reset();
  return result;
}

StateStore::~StateStore() { Close().IgnoreError(); }

rocksdb::ColumnFamilyHandle* StateStore::cf(std::string_view name) const {
  auto it = rocks_->by_name.find(name);
  return it == rocks_->by_name.end() ? nullptr : it->second;
}

absl::Status StateStore::CheckWritable() const {
  if (closed_ || !rocks_) return absl::FailedPreconditionError(absl::StrCat(path_, " is closed"));
  if (read_only_) {
    return absl::FailedPreconditionError(absl::StrCat("state store ", path_, " is open read-only"));
  }
  return absl::OkStatus();
}

std::optional<uint64_t> StateStore::FreeBytes() const {
  struct statvfs st;
  if (::statvfs(path_.c_str(), &st) != 0) return std::nullopt;
  return static_cast<uint64_t>(st.f_bavail) * st.f_frsize;
}

absl::Status StateStore::CheckFreeSpace() const {
  if (min_free_mb_ <= 0) return absl::OkStatus();
  const std::optional<uint64_t> free = FreeBytes();
  if (!free) return absl::OkStatus();  // unknown: RocksDB will tell
  const uint64_t free_bytes = *free;
  if (free_bytes >= static_cast<uint64_t>(min_free_mb_) << 20) return absl::OkStatus();
  return absl::ResourceExhaustedError(
      absl::StrCat("No space left for a commit to ", path_, ": ", free_bytes >> 20,
                   " MiB free, below state.min_free_mb = ", min_free_mb_,
                   " (nothing written; waiting for space)"));
}

uint64_t StateStore::next_seq() const {
  absl::MutexLock lock(&seq_mu_);
  return next_seq_;
}

}  // namespace rtdw
