// rtdw backup create / restore / list: RocksDB BackupEngine backups of the stores. JSON
// shapes: docs/STATE.md.
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/status_util.h"
#include "storage/state_store.h"
#include "tools/rtdw/cli.h"
#include "tools/rtdw/command.h"

namespace rtdw::cli {
namespace {

using rapidjson::Value;

class BackupCreateCommand : public Command {
 public:
  std::string_view group() const override { return "backup"; }
  std::string_view name() const override { return "create"; }
  std::string_view help() const override {
    return "back up the store(s) into DIR/<job> (refused while rtdwd holds a store)";
  }
  StoreAccess access() const override { return StoreAccess::kReadWrite; }
  void AddFlags(CLI::App* app, SharedFlags* shared) override {
    (void)shared;
    app->add_option("--to", to_, "backup root")->required();
  }
  int Run(const Globals& g, Out& out) override {
    const std::string& to = to_;
    if (to.empty()) return Usage(out, "backup create needs --to DIR");
    auto jobs = JobsToRead(g);
    if (!jobs.ok()) return Failed(out, jobs.status());
    Value arr(rapidjson::kArrayType);
    int code = kExitOk;
    for (const auto& job : *jobs) {
      Value e(rapidjson::kObjectType);
      out.Set(&e, "job", out.Str(job));
      std::string dir = StorePath(to, job);
      auto r = [&]() -> absl::StatusOr<BackupResult> {
        RTDW_ASSIGN_OR_RETURN(std::unique_ptr<StateStore> store, OpenWrite(g, job));
        RTDW_ASSIGN_OR_RETURN(BackupResult b, store->CreateBackup(dir));
        RTDW_RETURN_IF_ERROR(store->Close());
        return b;
      }();
      if (r.ok()) {
        out.Set(&e, "backup_dir", out.Str(r->backup_dir));
        out.Set(&e, "backup_id", Value(r->backup_id));
        out.Set(&e, "timestamp", I64(r->timestamp));
        out.Set(&e, "size_bytes", U64(r->size_bytes));
        out.Set(&e, "files", Value(r->files));
        out.text() << job << ": backup " << r->backup_id << " in " << r->backup_dir << " ("
                   << Bytes(r->size_bytes) << ", " << r->files << " files)\n";
      } else {
        out.Set(&e, "error", out.Str(Msg(r.status())));
        out.Fail(absl::StrCat(job, ": ", Msg(r.status())));
        code = kExitFailed;
      }
      arr.PushBack(e, out.alloc());
    }
    out.Set("jobs", std::move(arr));
    return code;
  }

 private:
  std::string to_;
};

class BackupRestoreCommand : public Command {
 public:
  std::string_view group() const override { return "backup"; }
  std::string_view name() const override { return "restore"; }
  std::string_view help() const override {
    return "restore the latest backup of DIR/<job>; the replaced store is kept aside";
  }
  StoreAccess access() const override { return StoreAccess::kReadWrite; }
  void AddFlags(CLI::App* app, SharedFlags* shared) override {
    (void)shared;
    app->add_option("--from", from_, "backup root")->required();
  }
  int Run(const Globals& g, Out& out) override {
    const std::string& from = from_;
    int code;
    if (!NeedJob(g, "backup restore", out, &code)) return code;
    if (from.empty()) return Usage(out, "backup restore needs --from DIR");
    auto r = StateStore::RestoreBackup(StorePath(from, g.job), g.state_dir, g.job);
    if (!r.ok()) return Failed(out, r.status());
    out.Set("job", out.Str(g.job));
    out.Set("path", out.Str(r->path));
    out.Set("backup_dir", out.Str(r->backup_dir));
    out.Set("backup_id", Value(r->backup_id));
    out.Set("previous_kept_at",
            r->previous_kept_at.empty() ? Null() : out.Str(r->previous_kept_at));
    out.text() << g.job << ": restored backup " << r->backup_id << " of " << r->backup_dir << " to "
               << r->path << "\n";
    if (!r->previous_kept_at.empty()) {
      out.text() << "  the store it replaced is kept at " << r->previous_kept_at << "\n";
    }
    return kExitOk;
  }

 private:
  std::string from_;
};

class BackupListCommand : public Command {
 public:
  std::string_view group() const override { return "backup"; }
  std::string_view name() const override { return "list"; }
  std::string_view help() const override { return "backups under DIR"; }
  StoreAccess access() const override { return StoreAccess::kNone; }
  void AddFlags(CLI::App* app, SharedFlags* shared) override {
    (void)shared;
    app->add_option("--from", from_, "backup root")->required();
  }
  int Run(const Globals& g, Out& out) override {
    const std::string& from = from_;
    if (from.empty()) return Usage(out, "backup list needs --from DIR");
    std::vector<std::string> jobs;
    if (!g.job.empty()) {
      jobs.push_back(g.job);
    } else {
      auto all = ListJobStores(from);
      if (!all.ok()) return Failed(out, all.status());
      jobs = *all;
    }
    Value arr(rapidjson::kArrayType);
    int code = kExitOk;
    for (const auto& job : jobs) {
      Value e(rapidjson::kObjectType);
      out.Set(&e, "job", out.Str(job));
      auto list = StateStore::ListBackups(StorePath(from, job));
      if (!list.ok()) {
        out.Set(&e, "error", out.Str(Msg(list.status())));
        out.Fail(absl::StrCat(job, ": ", Msg(list.status())));
        code = kExitFailed;
      } else {
        Value b(rapidjson::kArrayType);
        out.text() << job << ":\n";
        for (const auto& r : *list) {
          Value v(rapidjson::kObjectType);
          out.Set(&v, "backup_id", Value(r.backup_id));
          out.Set(&v, "timestamp", I64(r.timestamp));
          out.Set(&v, "size_bytes", U64(r.size_bytes));
          out.Set(&v, "files", Value(r.files));
          b.PushBack(v, out.alloc());
          out.text() << "  " << r.backup_id << "  " << FormatMs(r.timestamp * 1000) << "  "
                     << Bytes(r.size_bytes) << "\n";
        }
        out.Set(&e, "backups", std::move(b));
      }
      arr.PushBack(e, out.alloc());
    }
    out.Set("jobs", std::move(arr));
    return code;
  }

 private:
  std::string from_;
};

}  // namespace

void RegisterBackupCommands(CommandRegistry* r) {
  r->AddGroup("backup", "RocksDB BackupEngine backups (DIR/<job>)");
  r->Add(std::make_unique<BackupCreateCommand>());
  r->Add(std::make_unique<BackupRestoreCommand>());
  r->Add(std::make_unique<BackupListCommand>());
}

}  // namespace rtdw::cli
