// rtdw journal list / replay: the ES writes owed by committed batches. JSON shapes:
// docs/STATE.md.
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/journal_entry.h"
#include "core/journal_sink.h"
#include "core/status_util.h"
#include "storage/state_store.h"
#include "tools/rtdw/cli.h"
#include "tools/rtdw/command.h"
#include "tools/rtdw/es_access.h"

namespace rtdw::cli {
namespace {

using rapidjson::Value;

struct JournalListArgs {
  bool bodies = false;
};

class JournalListCommand : public Command {
 public:
  std::string_view group() const override { return "journal"; }
  std::string_view name() const override { return "list"; }
  std::string_view help() const override { return "owed entries in seq order"; }
  StoreAccess access() const override { return StoreAccess::kReadOnly; }
  void AddFlags(CLI::App* app, SharedFlags* shared) override {
    (void)shared;
    app->add_flag("--body", args_.bodies, "include each NDJSON bulk body");
  }
  int Run(const Globals& g, Out& out) override {
    const JournalListArgs& a = args_;
    return ForEachJob(g, out, [&](StateStore& store, Value& e) -> absl::Status {
      RTDW_ASSIGN_OR_RETURN(std::vector<JournalEntry> entries, store.ListJournal(a.bodies));
      Value arr(rapidjson::kArrayType);
      out.text() << store.job() << ": " << entries.size() << " owed\n";
      for (const auto& j : entries) {
        Value v(rapidjson::kObjectType);
        out.Set(&v, "seq", U64(j.seq));
        out.Set(&v, "target", out.Str(j.target));
        out.Set(&v, "docs", Value(j.doc_count));
        out.Set(&v, "bytes", U64(j.body_size));
        out.Set(&v, "created_ms", I64(j.created_ms));
        if (a.bodies) out.Set(&v, "body", out.Str(j.body));
        arr.PushBack(v, out.alloc());
        out.text() << "  " << j.seq << "  " << j.target << "  " << j.doc_count << " docs, "
                   << Bytes(j.body_size) << ", " << FormatMs(j.created_ms) << "\n";
        if (a.bodies) out.text() << j.body;
      }
      out.Set(&e, "backlog", U64(entries.size()));
      out.Set(&e, "entries", std::move(arr));
      return absl::OkStatus();
    });
  }

 private:
  JournalListArgs args_;
};

class JournalReplayCommand : public Command {
 public:
  std::string_view group() const override { return "journal"; }
  std::string_view name() const override { return "replay"; }
  std::string_view help() const override {
    return "deliver every owed entry to ES in seq order, deleting each delivered one";
  }
  StoreAccess access() const override { return StoreAccess::kReadWrite; }
  void AddFlags(CLI::App* app, SharedFlags* shared) override {
    app->add_option("--es-url", shared->es_url, "ES URL(s), comma-separated (default: config)");
    app->add_option("--timeout", shared->replay_timeout_s,
                    "seconds one entry may take (ES down or refusing) before replay stops")
        ->check(CLI::PositiveNumber);
  }
  int Run(const Globals& g, Out& out) override {
    auto jobs = JobsToRead(g);
    if (!jobs.ok()) return Failed(out, jobs.status());
    out.Set("es_urls", out.Str(absl::StrJoin(g.es.urls, ",")));
    std::unique_ptr<EsAccess> es;
    Value arr(rapidjson::kArrayType);
    int code = kExitOk;
    for (const auto& job : *jobs) {
      Value e(rapidjson::kObjectType);
      out.Set(&e, "job", out.Str(job));
      Value delivered(rapidjson::kArrayType);
      uint64_t remaining = 0;
      absl::Status status = [&]() -> absl::Status {
        RTDW_ASSIGN_OR_RETURN(std::unique_ptr<StateStore> store, OpenWrite(g, job));
        RTDW_ASSIGN_OR_RETURN(std::vector<JournalEntry> entries, store->ListJournal(false));
        remaining = entries.size();
        out.text() << job << ": " << entries.size() << " owed\n";
        for (const auto& head : entries) {
          if (!es) {
            RTDW_ASSIGN_OR_RETURN(es, ConnectEs(g.es));
            // As the daemon does before it delivers: a new index must get its mappings.
            RTDW_RETURN_IF_ERROR(
                es->InstallTemplates(g.dau_index_prefix, g.order_wide_index_prefix));
          }
          // Bodies are read one at a time: the backlog may be large.
          RTDW_ASSIGN_OR_RETURN(JournalEntry entry, store->ReadJournal(head.seq));
          RTDW_ASSIGN_OR_RETURN(DeliveryReport report, es->sink().Deliver(entry));
          std::vector<std::string> letters;
          int64_t now = NowMs();
          for (const auto& item : report.rejected)
            letters.push_back(EsRejectedDeadLetter(job, item, now));
          RTDW_ASSIGN_OR_RETURN(std::vector<uint64_t> dl_seqs,
                                store->CompleteJournal(entry.seq, letters));
          --remaining;
          Value v(rapidjson::kObjectType);
          out.Set(&v, "seq", U64(entry.seq));
          out.Set(&v, "target", out.Str(entry.target));
          out.Set(&v, "docs", Value(report.docs));
          out.Set(&v, "acknowledged", Value(report.acknowledged));
          out.Set(&v, "superseded", Value(report.superseded));
          out.Set(&v, "rejected", Value(static_cast<uint64_t>(report.rejected.size())));
          Value seqs(rapidjson::kArrayType);
          for (uint64_t s : dl_seqs) seqs.PushBack(U64(s), out.alloc());
          out.Set(&v, "dead_letter_seqs", std::move(seqs));
          out.Set(&v, "requests", Value(report.requests));
          delivered.PushBack(v, out.alloc());
          out.text() << "  sent " << entry.seq << "  " << entry.target << ": " << report.docs
                     << " docs, " << report.acknowledged << " acknowledged";
          if (report.superseded > 0) {
            out.text() << " (" << report.superseded << " superseded: ES holds a newer version)";
          }
          if (!report.rejected.empty()) {
            out.text() << ", " << report.rejected.size() << " rejected -> dead letters "
                       << absl::StrJoin(dl_seqs, ",");
          }
          out.text() << "\n";
        }
        return store->Close();
      }();
      out.Set(&e, "status", out.Str(status.ok() ? "ok" : "error"));
      out.Set(&e, "delivered", std::move(delivered));
      out.Set(&e, "remaining", U64(remaining));
      if (!status.ok()) {
        out.Set(&e, "error", out.Str(Msg(status)));
        out.Fail(absl::StrCat(job, ": ", Msg(status)));
        out.text() << "  stopped: " << remaining << " entries still owed\n";
        code = kExitFailed;
      }
      arr.PushBack(e, out.alloc());
    }
    out.Set("jobs", std::move(arr));
    return code;
  }
};

}  // namespace

void RegisterJournalCommands(CommandRegistry* r) {
  r->AddGroup("journal", "ES writes owed by committed batches");
  r->Add(std::make_unique<JournalListCommand>());
  r->Add(std::make_unique<JournalReplayCommand>());
}

}  // namespace rtdw::cli
