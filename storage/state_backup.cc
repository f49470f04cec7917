// The state store's backups: BackupEngine backups of an open store, and restoring the latest
// one as a job's store (checked before it replaces anything).
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>

#include "rocksdb/utilities/backup_engine.h"
#include "storage/state_store.h"
#include "storage/state_store_internal.h"

namespace fs = std::filesystem;

namespace rtdw {

using state_internal::FromRocks;
using state_internal::FsyncDir;

// ---------------------------------------------------------------------------------------------
// Backups

namespace {

BackupResult FromInfo(const std::string& dir, const rocksdb::BackupInfo& info) {
  BackupResult r;
  r.backup_dir = dir;
  r.backup_id = info.backup_id;
  r.timestamp = info.timestamp;
  r.size_bytes = info.size;
  r.files = info.number_files;
  return r;
}

}  // namespace

absl::StatusOr<BackupResult> StateStore::CreateBackup(const std::string& backup_dir) {
  RTDW_RETURN_IF_ERROR(CheckWritable());
  std::error_code ec;
  fs::create_directories(backup_dir, ec);
  if (ec) {
    return absl::InternalError(absl::StrCat("cannot create ", backup_dir, ": ", ec.message()));
  }
  rocksdb::BackupEngineOptions bo(backup_dir);
  bo.sync = true;
  rocksdb::BackupEngine* raw = nullptr;
  rocksdb::IOStatus s = rocksdb::BackupEngine::Open(bo, rocksdb::Env::Default(), &raw);
  if (!s.ok()) return FromRocks(s, absl::StrCat("open backup dir ", backup_dir));
  std::unique_ptr<rocksdb::BackupEngine> engine(raw);
  rocksdb::CreateBackupOptions co;
  co.flush_before_backup = true;
  rocksdb::BackupID id = 0;
  // The job name is the backup's application metadata: a restore checks it.
  s = engine->CreateNewBackupWithMetadata(co, rocks_->db.get(), job_, &id);
  if (!s.ok()) return FromRocks(s, absl::StrCat("back up ", path_, " to ", backup_dir));
  rocksdb::BackupInfo info;
  rocksdb::Status is = engine->GetBackupInfo(id, &info);
  if (!is.ok()) return FromRocks(is, absl::StrCat("read backup info in ", backup_dir));
  return FromInfo(backup_dir, info);
}

absl::StatusOr<std::vector<BackupResult>> StateStore::ListBackups(const std::string& backup_dir) {
  std::error_code ec;
  if (!fs::is_directory(backup_dir, ec)) {
    return absl::NotFoundError(absl::StrCat("backup dir ", backup_dir, " does not exist"));
  }
  rocksdb::BackupEngineOptions bo(backup_dir);
  rocksdb::BackupEngineReadOnly* raw = nullptr;
  rocksdb::IOStatus s = rocksdb::BackupEngineReadOnly::Open(bo, rocksdb::Env::Default(), &raw);
  if (!s.ok()) return FromRocks(s, absl::StrCat("open backup dir ", backup_dir));
  std::unique_ptr<rocksdb::BackupEngineReadOnly> engine(raw);
  std::vector<rocksdb::BackupInfo> infos;
  engine->GetBackupInfo(&infos);
  if (infos.empty()) return absl::NotFoundError(absl::StrCat("no backup in ", backup_dir));
  std::vector<BackupResult> out;
  for (const auto& i : infos) out.push_back(FromInfo(backup_dir, i));
  return out;
}

absl::StatusOr<RestoreResult> StateStore::RestoreBackup(const std::string& backup_dir,
                                                        const std::string& root,
                                                        const std::string& job) {
  if (!ValidJobName(job)) {
    return absl::InvalidArgumentError(absl::StrCat("job name \"", job, "\" is not usable"));
  }
  std::error_code ec;
  if (!fs::is_directory(backup_dir, ec)) {
    return absl::NotFoundError(absl::StrCat("backup dir ", backup_dir, " does not exist"));
  }
  rocksdb::BackupEngineOptions bo(backup_dir);
  rocksdb::BackupEngineReadOnly* raw = nullptr;
  rocksdb::IOStatus s = rocksdb::BackupEngineReadOnly::Open(bo, rocksdb::Env::Default(), &raw);
  if (!s.ok()) return FromRocks(s, absl::StrCat("open backup dir ", backup_dir));
  std::unique_ptr<rocksdb::BackupEngineReadOnly> engine(raw);
  std::vector<rocksdb::BackupInfo> infos;
  engine->GetBackupInfo(&infos);
  std::vector<rocksdb::BackupID> corrupt;
  engine->GetCorruptedBackups(&corrupt);
  const rocksdb::BackupInfo* latest = nullptr;
  for (const auto& i : infos) {
    if (std::find(corrupt.begin(), corrupt.end(), i.backup_id) != corrupt.end()) continue;
    if (!latest || i.backup_id > latest->backup_id) latest = &i;
  }
  if (!latest) return absl::NotFoundError(absl::StrCat("no usable backup in ", backup_dir));
  if (!latest->app_metadata.empty() && latest->app_metadata != job) {
    return absl::FailedPreconditionError(absl::StrCat("the backup in ", backup_dir, " is of job \"",
                                                      latest->app_metadata, "\", not \"", job,
                                                      "\""));
  }

  std::string path = StorePath(root, job);
  fs::create_directories(root, ec);
  if (ec) return absl::InternalError(absl::StrCat("cannot create ", root, ": ", ec.message()));
  bool had_store = fs::exists(path, ec);
  // Exclude a daemon for the whole restore: hold the old store's RocksDB LOCK ourselves.
  int lock_fd = -1;
  if (had_store) {
    if (auto pid = StoreLockHolder(path)) {
      return absl::UnavailableError(absl::StrCat("refusing to restore over ", path,
                                                 ": it is held by process ", *pid,
                                                 " (a running rtdwd); stop it first"));
    }
    std::string lock_file = path + "/LOCK";
    lock_fd = ::open(lock_file.c_str(), O_RDWR | O_CLOEXEC);
    if (lock_fd >= 0) {
      struct flock fl;
      std::memset(&fl, 0, sizeof(fl));
      fl.l_type = F_WRLCK;
      fl.l_whence = SEEK_SET;
      if (::fcntl(lock_fd, F_SETLK, &fl) != 0) {
        ::close(lock_fd);
        return absl::UnavailableError(
            absl::StrCat("refusing to restore over ", path, ": it is locked by another process"));
      }
    }
  }
  auto unlock = [&] {
    if (lock_fd >= 0) ::close(lock_fd);
    lock_fd = -1;
  };

  std::string tmp = absl::StrCat(StorePath(root, ""), ".", job, ".restore-", ::getpid());
  fs::remove_all(tmp, ec);
  fs::create_directories(tmp, ec);
  s = engine->RestoreDBFromBackup(rocksdb::RestoreOptions(), latest->backup_id, tmp, tmp);
  if (!s.ok()) {
    unlock();
    fs::remove_all(tmp, ec);
    return FromRocks(s, absl::StrCat("restore ", backup_dir, " into ", tmp));
  }
  // Check the restored copy before it replaces anything.
  {
    std::unique_ptr<StateStore> check(new StateStore());
    check->root_ = root;
    check->path_ = tmp;
    check->job_ = job;
    StateStoreOptions o;
    o.root = root;
    o.job = job;
    o.read_only = true;
    o.block_cache_mb = 8;
    absl::Status cs = check->OpenImpl(o);
    if (!cs.ok()) {
      unlock();
      fs::remove_all(tmp, ec);
      return absl::Status(cs.code(),
                          absl::StrCat("the restored backup does not open: ", cs.message()));
    }
  }
  RestoreResult result;
  result.path = path;
  result.backup_dir = backup_dir;
  result.backup_id = latest->backup_id;
  if (had_store) {
    std::string aside =
        absl::StrCat(StorePath(root, ""), ".", job, ".replaced-",
                     absl::FormatTime("%Y%m%d-%H%M%S", absl::Now(), absl::UTCTimeZone()));
    if (fs::exists(aside, ec)) aside += absl::StrCat("-", ::getpid());
    fs::rename(path, aside, ec);
    if (ec) {
      unlock();
      fs::remove_all(tmp, ec);
      return absl::InternalError(
          absl::StrCat("cannot move ", path, " aside to ", aside, ": ", ec.message()));
    }
    result.previous_kept_at = aside;
  }
  fs::rename(tmp, path, ec);
  unlock();
  if (ec) {
    return absl::InternalError(
        absl::StrCat("cannot move the restored store ", tmp, " to ", path, ": ", ec.message()));
  }
  FsyncDir(root);
  return result;
}

}  // namespace rtdw
