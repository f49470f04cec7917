// The rtdw operator CLI: its resolved global settings, the output of a command, and what the
// commands share (tools/rtdw/command.h declares the commands; docs/STATE.md documents each
// command and its --json shape).
//
// Rules every command keeps:
//  - Exit 0 ok, 1 failed (including a refused or partial operation), 2 usage.
//  - Exactly one JSON document on stdout with --json, also on failure ({"error": ...} at least);
//    human text on stdout otherwise; error messages always on stderr.
//  - Reading opens stores read-only and creates nothing (no directory, no file). Writing opens
//    a store that must exist and is refused while a daemon holds it (RocksDB's LOCK); only
//    `state init` creates one (and refuses one that exists).
#ifndef RTDW_TOOLS_RTDW_CLI_H_
#define RTDW_TOOLS_RTDW_CLI_H_

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "connectors/kafka/consumer.h"
#include "core/config/config.h"
#include "rapidjson/document.h"
#include "storage/state_store.h"
#include "tools/rtdw/es_access.h"

namespace rtdw::cli {

inline constexpr int kExitOk = 0;
inline constexpr int kExitFailed = 1;
inline constexpr int kExitUsage = 2;

// How a command uses the state stores (Command::access, as ldb's read-only / read-write commands).
enum class StoreAccess {
  kNone,       // no store (backup list reads backups only)
  kReadOnly,   // opens stores read-only (OpenRead); works while rtdwd runs
  kReadWrite,  // also opens one existing store for writing (OpenWrite); refused while rtdwd
               // holds it
  kCreate,     // creates a missing store (state init)
};

// The global options, resolved (flags over config over environment over defaults).
struct Globals {
  std::string state_dir;  // --state-dir, else the config's state.dir (which includes
                          // RTDW_STATE_DIR), else RTDW_STATE_DIR, else ./var/state
  std::string job;        // --job; "" = every job (reads) or an error (writes)
  bool json = false;
  bool have_config = false;
  EsSettings es;  // from the config (+ RTDW_ES_URL), else defaults
  std::string dau_index_prefix = "gmall_dau_info_";
  std::string order_wide_index_prefix = "gmall_order_wide_";
  std::string topic_fingerprint;  // of `job`, when a config and a job are given
  // Kafka (offsets set, offsets import-group): --brokers, else the config's kafka.brokers;
  // "" when neither is given.
  std::string kafka_brokers;
  std::map<std::string, std::string> kafka_properties;  // the config's kafka.properties
  std::string kafka_group;                 // the config's kafka.group; "" = rtdwd's default
  std::vector<std::string> source_topics;  // the topics `job` consumes, from the config
  std::chrono::milliseconds kafka_timeout{10000};
  // How the running command may use the stores (its Command::access).
  StoreAccess access = StoreAccess::kNone;
  // The loaded --config (null without one): the jobs' settings for `deadletter retry`'s
  // re-judging, Redis, the split jobs' dead-letter topics, the DAU time zone for `verify`.
  std::shared_ptr<const Config> config;
};

// A command's output: a JSON document (root object) and the same facts as text.
class Out {
 public:
  Out() { doc_.SetObject(); }
  rapidjson::Document& doc() { return doc_; }
  rapidjson::Document::AllocatorType& alloc() { return doc_.GetAllocator(); }
  rapidjson::Value Str(std::string_view s) {
    return rapidjson::Value(s.data(), static_cast<rapidjson::SizeType>(s.size()), alloc());
  }
  // Adds (or replaces) a member of `obj` (of the root when obj is null).
  void Set(rapidjson::Value* obj, std::string_view key, rapidjson::Value v);
  void Set(std::string_view key, rapidjson::Value v) { Set(nullptr, key, std::move(v)); }
  std::ostringstream& text() { return text_; }
  std::string text_str() const { return text_.str(); }
  // The error shown on stderr (and as "error" in the JSON root unless the command set one).
  void Fail(std::string_view message);
  const std::vector<std::string>& errors() const { return errors_; }

 private:
  rapidjson::Document doc_;
  std::ostringstream text_;
  std::vector<std::string> errors_;
};

// Writes the document as one line of JSON.
std::string ToJson(const rapidjson::Value& v);

// ---- shared by the command files (cli.cc)

std::string Msg(const absl::Status& s);
int64_t NowMs();
// "2025-11-25 10:00:00 CST" in the local zone.
std::string FormatMs(int64_t ms);
// "1.5 MiB".
std::string Bytes(uint64_t n);
rapidjson::Value U64(uint64_t v);
rapidjson::Value I64(int64_t v);
rapidjson::Value Null();

// The jobs a read command covers: --job, or every store under the state dir.
absl::StatusOr<std::vector<std::string>> JobsToRead(const Globals& g);
// Opens `job`'s store read-only; creates nothing.
absl::StatusOr<std::unique_ptr<StateStore>> OpenRead(const Globals& g, const std::string& job);
// Opens `job`'s store for writing: it must exist; refused while a daemon holds it, and to a
// command not declared StoreAccess::kReadWrite (Internal).
absl::StatusOr<std::unique_ptr<StateStore>> OpenWrite(const Globals& g, const std::string& job);
// Reports a usage problem: exit 2.
int Usage(Out& out, std::string_view message);
// Reports a failure: exit 1.
int Failed(Out& out, const absl::Status& s);
// Writes need one job: false (with *code set to 2) without --job.
bool NeedJob(const Globals& g, std::string_view command, Out& out, int* code);
// A consumer of --brokers / kafka.brokers with [kafka.properties] that never commits (metadata,
// watermarks, committed offsets, reading a topic by assignment).
absl::StatusOr<std::unique_ptr<KafkaConsumer>> ConnectKafka(const Globals& g,
                                                            const std::string& group);
// A meta entry of the store; nullopt when absent or unreadable.
std::optional<std::string> MetaOr(const StateStore& store, std::string_view name);
// A meta entry holding epoch ms, as a JSON number (null when absent or not a number).
rapidjson::Value MetaMs(Out& out, const StateStore& store, std::string_view name);

// {"late":3,...} and the text "late 3, future 1".
rapidjson::Value ByReason(Out& out, const std::map<std::string, uint64_t>& by_reason,
                          std::string* text);

// Runs `fn` for each job a read command covers, collecting {"jobs":[...]}; a job whose store
// cannot be read gets {"job":J,"error":...} and makes the exit code 1.
template <typename Fn>
int ForEachJob(const Globals& g, Out& out, Fn fn) {
  auto jobs = JobsToRead(g);
  if (!jobs.ok()) return Failed(out, jobs.status());
  rapidjson::Value arr(rapidjson::kArrayType);
  int code = kExitOk;
  if (jobs->empty()) out.text() << "no job stores in " << g.state_dir << "\n";
  for (const auto& job : *jobs) {
    rapidjson::Value entry(rapidjson::kObjectType);
    out.Set(&entry, "job", out.Str(job));
    auto store = OpenRead(g, job);
    absl::Status s = store.ok() ? fn(**store, entry) : store.status();
    if (!s.ok()) {
      out.Set(&entry, "error", out.Str(Msg(s)));
      out.Fail(absl::StrCat(job, ": ", Msg(s)));
      code = kExitFailed;
    }
    arr.PushBack(entry, out.alloc());
  }
  out.Set("jobs", std::move(arr));
  return code;
}

}  // namespace rtdw::cli

#endif  // RTDW_TOOLS_RTDW_CLI_H_
