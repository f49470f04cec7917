// rtdw dedup restore / dedup forget and rtdw verify: a DAU day's de-dup state against its ES
// index. JSON shapes: docs/STATE.md.
#include <algorithm>
#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "core/dau_day_check.h"
#include "core/dau_document.h"
#include "core/dedup_restore.h"
#include "core/status_util.h"
#include "storage/state_store.h"
#include "tools/rtdw/cli.h"
#include "tools/rtdw/command.h"
#include "tools/rtdw/es_access.h"

namespace rtdw::cli {
namespace {

using rapidjson::Value;

struct DayArgs {
  std::string day;                  // yyyy-mm-dd
  std::vector<int32_t> partitions;  // dedup restore: only these (empty = all)
  int samples = 10;                 // verify: ids listed per kind of difference
};

struct ForgetArgs {
  std::string day;
  std::vector<std::string> mids;
  bool missing_in_es = false;  // the mids `verify` reports lost
  bool no_rewind = false;
};

// The zone DAU days are in: the config's jobs.time_zone, else its documented default.
absl::TimeZone DauZone(const Globals& g) {
  if (g.config) return g.config->jobs.dau.tz;
  absl::TimeZone tz;
  if (!absl::LoadTimeZone("Asia/Shanghai", &tz)) tz = absl::UTCTimeZone();
  return tz;
}

// The check of one DAU day (core/dau_day_check.h) on `store` and the day's index in ES.
absl::Status CheckDay(const Globals& g, const StateStore& store, DayNumber day,
                      const std::string& index, DauDayCheck* c) {
  RTDW_ASSIGN_OR_RETURN(std::unique_ptr<EsAccess> es, ConnectEs(g.es));
  std::unique_ptr<DauDocumentReader> reader = es->DauReader(index);
  DauDayCheckOptions o;
  o.day = day;
  o.index = index;
  o.time_zone = DauZone(g);
  return CheckDauDay(StoreDauDayState<StateStore>(&store), *reader, o, c);
}

class DedupRestoreCommand : public Command {
 public:
  std::string_view group() const override { return "dedup"; }
  std::string_view name() const override { return "restore"; }
  std::string_view help() const override {
    return "rebuild a day's de-dup state from its ES index (job dau by default)";
  }
  StoreAccess access() const override { return StoreAccess::kReadWrite; }
  void AddFlags(CLI::App* app, SharedFlags* shared) override {
    app->add_flag("--from-es", from_es_, "read gmall_dau_info_<day> (the only source)")->required();
    app->add_option("--day", args_.day, "yyyy-mm-dd")->required();
    app->add_option("--partition", args_.partitions, "only these source partitions (repeatable)");
    app->add_option("--es-url", shared->es_url, "ES URL(s), comma-separated (default: config)");
  }
  int Run(const Globals& g, Out& out) override {
    const DayArgs& a = args_;
    std::string job = g.job.empty() ? "dau" : g.job;
    auto day = ParseDay(a.day);
    if (!day.ok()) return Usage(out, Msg(day.status()));
    std::string index = g.dau_index_prefix + a.day;
    out.Set("job", out.Str(job));
    out.Set("day", out.Str(a.day));
    out.Set("index", out.Str(index));
    auto store = OpenWrite(g, job);
    if (!store.ok()) return Failed(out, store.status());
    auto es = ConnectEs(g.es);
    if (!es.ok()) return Failed(out, es.status());
    std::unique_ptr<DauDocumentReader> reader = (*es)->DauReader(index);
    StoreRestoreTarget<StateStore> target(store->get());
    DedupRestoreOptions o;
    o.day = *day;
    o.partitions = std::set<int32_t>(a.partitions.begin(), a.partitions.end());
    DedupRestoreStats stats;
    absl::Status s = RestoreDedup(*reader, target, o, &stats);
    if (s.ok()) s = (*store)->Close();
    Value samples(rapidjson::kArrayType);
    for (const auto& id : stats.skipped_samples) samples.PushBack(out.Str(id), out.alloc());
    out.Set("documents", U64(stats.documents));
    out.Set("restored", U64(stats.restored));
    out.Set("kept", U64(stats.kept));
    out.Set("skipped", U64(stats.skipped));
    out.Set("other_partitions", U64(stats.other_partitions));
    out.Set("skipped_samples", std::move(samples));
    if (!s.ok()) {
      return Failed(out,
                    absl::Status(s.code(), absl::StrCat("dedup restore from ", index, ": ", Msg(s),
                                                        " (entries committed so far stay)")));
    }
    out.text() << job << ": " << index << ": " << stats.documents << " documents, "
               << stats.restored << " de-dup entries restored, " << stats.kept
               << " kept (state already older), " << stats.skipped
               << " skipped (no ts or rtdw_src)\n";
    return kExitOk;
  }

 private:
  DayArgs args_;
  bool from_es_ = false;
};

class DedupForgetCommand : public Command {
 public:
  std::string_view group() const override { return "dedup"; }
  std::string_view name() const override { return "forget"; }
  std::string_view help() const override {
    return "forget de-dup slots of a day (mids lost from ES) and rewind their partitions, so that "
           "the next run writes those documents again (job dau by default)";
  }
  StoreAccess access() const override { return StoreAccess::kReadWrite; }
  void AddFlags(CLI::App* app, SharedFlags* shared) override {
    app->add_option("--day", args_.day, "yyyy-mm-dd")->required();
    app->add_option("--mid", args_.mids, "a mid to forget (repeatable)");
    app->add_flag("--missing-in-es", args_.missing_in_es,
                  "every mid verify reports lost (in the state, not in ES, not owed)");
    app->add_flag("--no-rewind", args_.no_rewind,
                  "keep the stored offsets (the records must be read again otherwise)");
    app->add_option("--es-url", shared->es_url, "ES URL(s), comma-separated (default: config)");
  }
  int Run(const Globals& g, Out& out) override {
    const ForgetArgs& a = args_;
    std::string job = g.job.empty() ? "dau" : g.job;
    auto day = ParseDay(a.day);
    if (!day.ok()) return Usage(out, Msg(day.status()));
    if (a.mids.empty() == !a.missing_in_es) {
      return Usage(out, "dedup forget needs --mid M (repeatable) or --missing-in-es, not both");
    }
    out.Set("job", out.Str(job));
    out.Set("day", out.Str(a.day));
    auto store = OpenWrite(g, job);
    if (!store.ok()) return Failed(out, store.status());
    DauDayCheck c;
    std::vector<std::string> mids = a.mids;
    if (a.missing_in_es) {
      absl::Status s = CheckDay(g, **store, *day, g.dau_index_prefix + a.day, &c);
      if (!s.ok()) return Failed(out, s);
      mids = c.missing_in_es;
    } else {
      auto winners = ReadDauDayWinners(StoreDauDayState<StateStore>(store->get()), *day);
      if (!winners.ok()) return Failed(out, winners.status());
      c.state = std::move(*winners);
    }
    const std::string topic = g.config ? g.config->jobs.dau.source_topic : "DWD_PAGE_LOG_TOPIC";
    PendingBatch batch = (*store)->NewBatch();
    std::map<int32_t, int64_t> rewind;  // partition -> the earliest forgotten winner's offset
    Value forgotten(rapidjson::kArrayType), not_found(rapidjson::kArrayType);
    for (const auto& mid : mids) {
      auto it = c.state.find(mid);
      if (it == c.state.end()) {
        not_found.PushBack(out.Str(mid), out.alloc());
        continue;
      }
      const auto& [partition, v] = it->second;
      if (absl::Status s = batch.DeleteDedup(*day, partition, mid); !s.ok()) return Failed(out, s);
      auto [r, inserted] = rewind.try_emplace(partition, v.offset);
      if (!inserted) r->second = std::min(r->second, v.offset);
      Value f(rapidjson::kObjectType);
      out.Set(&f, "mid", out.Str(mid));
      out.Set(&f, "partition", Value(partition));
      out.Set(&f, "offset", I64(v.offset));
      out.Set(&f, "ts", I64(v.ts_ms));
      forgotten.PushBack(f, out.alloc());
    }
    Value rewound(rapidjson::kArrayType);
    if (!a.no_rewind) {
      for (const auto& [partition, offset] : rewind) {
        auto stored = (*store)->GetOffset(topic, partition);
        if (!stored.ok()) return Failed(out, stored.status());
        if (stored->has_value() && **stored <= offset) continue;  // not read that far yet
        if (absl::Status s = batch.SetOffset(topic, partition, offset); !s.ok()) {
          return Failed(out, s);
        }
        Value r(rapidjson::kObjectType);
        out.Set(&r, "topic", out.Str(topic));
        out.Set(&r, "partition", Value(partition));
        out.Set(&r, "previous", stored->has_value() ? I64(**stored) : Null());
        out.Set(&r, "offset", I64(offset));
        rewound.PushBack(r, out.alloc());
      }
    }
    if (!batch.empty()) {
      auto committed = (*store)->Commit(std::move(batch));
      if (!committed.ok()) return Failed(out, committed.status());
    }
    absl::Status cs = (*store)->Close();
    if (!cs.ok()) return Failed(out, cs);
    const size_t n_forgotten = forgotten.Size(), n_not_found = not_found.Size(),
                 n_rewound = rewound.Size();
    out.Set("forgotten", std::move(forgotten));
    out.Set("not_found", std::move(not_found));
    out.Set("rewound", std::move(rewound));
    out.text()
        << job << " " << a.day << ": forgot the de-dup slots of " << n_forgotten
        << " mids; rewound " << n_rewound << " partitions of " << topic
        << " to their earliest winning record: the next start writes their documents again\n";
    if (n_not_found > 0) {
      out.Fail(absl::StrCat(n_not_found, " of the given mids have no de-dup slot on ", a.day));
      return kExitFailed;
    }
    return kExitOk;
  }

 private:
  ForgetArgs args_;
};

class VerifyCommand : public Command {
 public:
  std::string_view group() const override { return ""; }
  std::string_view name() const override { return "verify"; }
  std::string_view help() const override {
    return "compare a day's de-dup state with its ES index (job dau by default); exit 1 "
           "on a difference or when the check fails";
  }
  StoreAccess access() const override { return StoreAccess::kReadOnly; }
  void AddFlags(CLI::App* app, SharedFlags* shared) override {
    app->add_option("--day", args_.day, "yyyy-mm-dd")->required();
    app->add_option("--samples", args_.samples, "ids listed per kind of difference");
    app->add_option("--es-url", shared->es_url, "ES URL(s), comma-separated (default: config)");
  }
  int Run(const Globals& g, Out& out) override {
    const DayArgs& a = args_;
    std::string job = g.job.empty() ? "dau" : g.job;
    auto day = ParseDay(a.day);
    if (!day.ok()) return Usage(out, Msg(day.status()));
    DauDayCheck c;
    const std::string index = g.dau_index_prefix + a.day;
    out.Set("job", out.Str(job));
    out.Set("day", out.Str(a.day));
    out.Set("index", out.Str(index));
    auto error = [&](const absl::Status& s) {
      out.Set("status", out.Str("error"));
      return Failed(out, s);
    };
    Globals gj = g;
    gj.job = job;
    auto jobs = JobsToRead(gj);
    if (!jobs.ok()) return error(jobs.status());
    auto store = OpenRead(g, job);
    if (!store.ok()) return error(store.status());
    if (absl::Status s = CheckDay(g, **store, *day, index, &c); !s.ok()) return error(s);
    const bool differs = c.differs();
    out.Set("status", out.Str(differs ? "differs" : "ok"));
    out.Set("index_exists", Value(!c.index_missing));
    out.Set("state_mids", U64(c.state.size()));
    out.Set("es_docs", U64(c.docs.size()));
    out.Set("owed_by_journal", U64(c.owed_count));
    out.Set("missing_in_es", U64(c.missing_in_es.size()));
    out.Set("missing_in_state", U64(c.missing_in_state.size()));
    out.Set("ts_mismatch", U64(c.ts_mismatch.size()));
    out.Set("dead_lettered", U64(c.dead_lettered.size()));
    std::string reasons;
    out.Set("dead_letters", U64(c.letters));
    out.Set("dead_letters_by_reason", ByReason(out, c.letters_by_reason, &reasons));
    Value samples(rapidjson::kObjectType);
    auto sample = [&](const char* key, const std::vector<std::string>& ids) {
      Value arr(rapidjson::kArrayType);
      for (size_t i = 0; i < ids.size() && i < static_cast<size_t>(a.samples); ++i) {
        arr.PushBack(out.Str(ids[i]), out.alloc());
      }
      out.Set(&samples, key, std::move(arr));
    };
    sample("missing_in_es", c.missing_in_es);
    sample("missing_in_state", c.missing_in_state);
    sample("ts_mismatch", c.ts_mismatch);
    sample("dead_lettered", c.dead_lettered);
    out.Set("samples", std::move(samples));
    out.text() << job << " " << a.day << ": " << (differs ? "DIFFERS" : "ok") << " — state "
               << c.state.size() << " mids, " << index << " " << c.docs.size() << " documents"
               << (c.index_missing ? " (no such index)" : "") << ", " << c.owed_count
               << " still owed by the journal, " << c.letters << " dead letters of the day"
               << (reasons.empty() ? "" : " (" + reasons + ")") << "\n";
    auto list = [&](const char* what, const std::vector<std::string>& ids) {
      if (ids.empty()) return;
      out.text() << "  " << what << ": " << ids.size() << " (e.g. ";
      for (size_t i = 0; i < ids.size() && i < static_cast<size_t>(a.samples); ++i) {
        out.text() << (i ? ", " : "") << ids[i];
      }
      out.text() << ")\n";
    };
    list("in state, not in ES (lost: `rtdw dedup forget --missing-in-es` repairs)",
         c.missing_in_es);
    list("in ES, not in state", c.missing_in_state);
    list("different ts", c.ts_mismatch);
    list(
        "documents held back by dead letters (`rtdw deadletter list --summary`; fix the cause, "
        "then `rtdw deadletter retry`)",
        c.dead_lettered);
    if (differs) {
      out.Fail(absl::StrCat("state and ", index, " differ"));
      return kExitFailed;
    }
    return kExitOk;
  }

 private:
  DayArgs args_;
};

}  // namespace

void RegisterDedupCommands(CommandRegistry* r) {
  r->AddGroup("dedup", "the DAU de-dup state");
  r->AddGroup("", "");
  r->Add(std::make_unique<DedupRestoreCommand>());
  r->Add(std::make_unique<DedupForgetCommand>());
  r->Add(std::make_unique<VerifyCommand>());
}

}  // namespace rtdw::cli
