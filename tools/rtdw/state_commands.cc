// rtdw state show / state init. JSON shapes: docs/STATE.md.
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "core/status_util.h"
#include "storage/state_store.h"
#include "tools/rtdw/cli.h"
#include "tools/rtdw/command.h"

namespace rtdw::cli {
namespace {

using rapidjson::Value;

struct ShowArgs {
  bool exact = false;
};

class StateShowCommand : public Command {
 public:
  std::string_view group() const override { return "state"; }
  std::string_view name() const override { return "show"; }
  std::string_view help() const override {
    return "per job: column family sizes and key counts, journal backlog, dead letters, "
           "last clean shutdown, schema version, fingerprint";
  }
  StoreAccess access() const override { return StoreAccess::kReadOnly; }
  void AddFlags(CLI::App* app, SharedFlags* shared) override {
    (void)shared;
    app->add_flag("--exact", args_.exact, "count every key (slower) instead of estimates");
  }
  int Run(const Globals& g, Out& out) override {
    const ShowArgs& a = args_;
    out.Set("state_dir", out.Str(g.state_dir));
    return ForEachJob(g, out, [&](StateStore& store, Value& e) -> absl::Status {
      RTDW_ASSIGN_OR_RETURN(StoreStats stats, store.Stats(a.exact));
      RTDW_ASSIGN_OR_RETURN(std::vector<DayNumber> days, store.DedupDays());
      RTDW_ASSIGN_OR_RETURN(std::vector<OffsetEntry> offsets, store.GetOffsets());
      auto holder = StoreLockHolder(store.path());
      auto fingerprint = MetaOr(store, kMetaTopicFingerprint);
      auto clean = MetaOr(store, kMetaCleanShutdown);
      out.Set(&e, "path", out.Str(store.path()));
      out.Set(&e, "schema_version", Value(store.schema_version()));
      out.Set(&e, "topic_fingerprint", fingerprint ? out.Str(*fingerprint) : Null());
      out.Set(&e, "running", Value(holder.has_value()));
      out.Set(&e, "held_by_pid", holder ? Value(static_cast<int64_t>(*holder)) : Null());
      out.Set(&e, "clean_shutdown", clean ? Value(*clean == "true") : Null());
      out.Set(&e, "last_clean_shutdown_ms", MetaMs(out, store, kMetaLastCleanShutdownMs));
      out.Set(&e, "last_open_ms", MetaMs(out, store, kMetaLastOpenMs));
      out.Set(&e, "created_ms", MetaMs(out, store, kMetaCreatedMs));
      out.Set(&e, "next_seq", U64(stats.next_seq));
      out.Set(&e, "journal_backlog", U64(stats.journal_backlog));
      out.Set(&e, "journal_bytes", U64(stats.journal_bytes));
      out.Set(&e, "dead_letters", U64(stats.dead_letters));
      out.Set(&e, "join_rows", U64(stats.join_rows));
      out.Set(&e, "offsets", U64(offsets.size()));
      Value jd(rapidjson::kArrayType);
      for (DayNumber d : days) jd.PushBack(out.Str(FormatDay(d)), out.alloc());
      out.Set(&e, "dedup_days", std::move(jd));
      Value cfs(rapidjson::kArrayType);
      for (const auto& c : stats.column_families) {
        Value o(rapidjson::kObjectType);
        out.Set(&o, "name", out.Str(c.name));
        out.Set(&o, "keys", U64(c.keys));
        out.Set(&o, "keys_exact", Value(c.keys_exact));
        out.Set(&o, "sst_bytes", U64(c.sst_bytes));
        out.Set(&o, "memtable_bytes", U64(c.memtable_bytes));
        cfs.PushBack(o, out.alloc());
      }
      out.Set(&e, "column_families", std::move(cfs));

      auto& t = out.text();
      t << store.job() << "  " << store.path() << "\n";
      t << "  schema " << store.schema_version() << ", topic fingerprint "
        << (fingerprint ? "\"" + *fingerprint + "\"" : std::string("(none)")) << "\n";
      if (holder) t << "  running: held by pid " << *holder << "\n";
      std::string last = "never recorded";
      if (clean) {
        auto ms = MetaOr(store, kMetaLastCleanShutdownMs);
        int64_t v = 0;
        last =
            *clean == "true" ? "clean" : (holder ? "running now" : "NOT clean (crashed or killed)");
        if (ms && absl::SimpleAtoi(*ms, &v)) last += ", last clean shutdown " + FormatMs(v);
      }
      t << "  shutdown: " << last << "\n";
      t << "  journal backlog " << stats.journal_backlog << " (" << Bytes(stats.journal_bytes)
        << "), dead letters " << stats.dead_letters << ", join rows " << stats.join_rows
        << ", next seq " << stats.next_seq << ", offsets of " << offsets.size() << " partitions\n";
      t << "  dedup days:";
      if (days.empty()) t << " (none)";
      for (DayNumber d : days) t << " " << FormatDay(d);
      t << "\n";
      char line[160];
      std::snprintf(line, sizeof(line), "  %-12s %14s %12s %12s\n", "family", "keys", "sst",
                    "memtable");
      t << line;
      for (const auto& c : stats.column_families) {
        std::string keys = absl::StrCat(c.keys_exact ? "" : "~", c.keys);
        std::snprintf(line, sizeof(line), "  %-12s %14s %12s %12s\n", c.name.c_str(), keys.c_str(),
                      Bytes(c.sst_bytes).c_str(), Bytes(c.memtable_bytes).c_str());
        t << line;
      }
      return absl::OkStatus();
    });
  }

 private:
  ShowArgs args_;
};

class StateInitCommand : public Command {
 public:
  std::string_view group() const override { return "state"; }
  std::string_view name() const override { return "init"; }
  std::string_view help() const override {
    return "create the empty store of --job as rtdwd would (with the config's topic fingerprint); "
           "refused when it exists";
  }
  StoreAccess access() const override { return StoreAccess::kCreate; }
  int Run(const Globals& g, Out& out) override {
    int code;
    if (!NeedJob(g, "state init", out, &code)) return code;
    if (!ValidJobName(g.job))
      return Usage(out, absl::StrCat("--job \"", g.job, "\" is not a job name"));
    StateStoreOptions o;
    o.root = g.state_dir;
    o.job = g.job;
    o.create_if_missing = true;
    o.track_shutdown = false;  // no daemon ran: the first start records its own open
    o.block_cache_mb = 16;
    o.topic_fingerprint = g.topic_fingerprint;
    auto store = StateStore::Open(o);
    if (!store.ok()) return Failed(out, store.status());
    if (!(*store)->created()) {
      return Failed(out, absl::AlreadyExistsError(absl::StrCat(
                             "state store for job ", g.job, " already exists at ", (*store)->path(),
                             "; state init only creates a missing one")));
    }
    absl::Status s = (*store)->Close();
    if (!s.ok()) return Failed(out, s);
    out.Set("job", out.Str(g.job));
    out.Set("path", out.Str((*store)->path()));
    out.Set("created", Value(true));
    out.Set("topic_fingerprint",
            g.topic_fingerprint.empty() ? Null() : out.Str(g.topic_fingerprint));
    out.text() << g.job << ": created an empty state store at " << (*store)->path()
               << (g.topic_fingerprint.empty() ? " (no topic fingerprint: no --config)" : "")
               << "\n";
    return kExitOk;
  }
};

}  // namespace

void RegisterStateCommands(CommandRegistry* r) {
  r->AddGroup("state", "the stores");
  r->Add(std::make_unique<StateShowCommand>());
  r->Add(std::make_unique<StateInitCommand>());
}

}  // namespace rtdw::cli
