// rtdw meta show / reset-fingerprint. JSON shapes: docs/STATE.md.
#include <memory>
#include <optional>
#include <string>

#include "absl/strings/str_cat.h"
#include "core/status_util.h"
#include "storage/state_store.h"
#include "tools/rtdw/cli.h"
#include "tools/rtdw/command.h"

namespace rtdw::cli {
namespace {

using rapidjson::Value;

struct ResetFingerprintArgs {
  std::optional<std::string> to;  // explicit value; else the config's, else cleared
};

class MetaShowCommand : public Command {
 public:
  std::string_view group() const override { return "meta"; }
  std::string_view name() const override { return "show"; }
  std::string_view help() const override { return "every meta entry"; }
  StoreAccess access() const override { return StoreAccess::kReadOnly; }
  int Run(const Globals& g, Out& out) override {
    return ForEachJob(g, out, [&](StateStore& store, Value& e) -> absl::Status {
      RTDW_ASSIGN_OR_RETURN(auto meta, store.ListMeta());
      Value m(rapidjson::kObjectType);
      out.text() << store.job() << ":\n";
      for (const auto& [k, v] : meta) {
        out.Set(&m, k, out.Str(v));
        out.text() << "  " << k << " = " << v << "\n";
      }
      out.Set(&e, "meta", std::move(m));
      return absl::OkStatus();
    });
  }
};

class MetaResetFingerprintCommand : public Command {
 public:
  std::string_view group() const override { return "meta"; }
  std::string_view name() const override { return "reset-fingerprint"; }
  std::string_view help() const override {
    return "accept a changed topic configuration: store the config's fingerprint (with --config), "
           "the given one, or clear it (the next daemon start records its own)";
  }
  StoreAccess access() const override { return StoreAccess::kReadWrite; }
  void AddFlags(CLI::App* app, SharedFlags* shared) override {
    (void)shared;
    app->add_option("--to", args_.to, "the fingerprint to store");
  }
  int Run(const Globals& g, Out& out) override {
    const ResetFingerprintArgs& a = args_;
    int code;
    if (!NeedJob(g, "meta reset-fingerprint", out, &code)) return code;
    std::string value = a.to ? *a.to : g.topic_fingerprint;
    auto store = OpenWrite(g, g.job);
    if (!store.ok()) return Failed(out, store.status());
    auto prev = (*store)->GetMeta(kMetaTopicFingerprint);
    if (!prev.ok()) return Failed(out, prev.status());
    absl::Status s = (*store)->ResetFingerprint(value);
    if (s.ok()) s = (*store)->Close();
    if (!s.ok()) return Failed(out, s);
    out.Set("job", out.Str(g.job));
    out.Set("previous", prev->has_value() ? out.Str(**prev) : Null());
    out.Set("fingerprint", value.empty() ? Null() : out.Str(value));
    out.text() << g.job << ": topic fingerprint "
               << (prev->has_value() ? "\"" + **prev + "\"" : std::string("(none)")) << " -> "
               << (value.empty() ? std::string("(none: the next daemon start records its own)")
                                 : "\"" + value + "\"")
               << "\n";
    return kExitOk;
  }

 private:
  ResetFingerprintArgs args_;
};

}  // namespace

void RegisterMetaCommands(CommandRegistry* r) {
  r->AddGroup("meta", "schema version, job, topic fingerprint, shutdown flag");
  r->Add(std::make_unique<MetaShowCommand>());
  r->Add(std::make_unique<MetaResetFingerprintCommand>());
}

}  // namespace rtdw::cli
