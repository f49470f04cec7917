// The rtdw operator CLI: its resolved global settings, the output of a command, and the
// commands themselves (docs/STATE.md documents each command and its --json shape).
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
#include "connectors/kafka/consumer.h"
#include "core/config/config.h"
#include "rapidjson/document.h"
#include "storage/state_store.h"
#include "tools/rtdw/es_access.h"

namespace rtdw::cli {

inline constexpr int kExitOk = 0;
inline constexpr int kExitFailed = 1;
inline constexpr int kExitUsage = 2;

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

// ---- shared by the command files (commands.cc)

// Opens `job`'s store for writing: it must exist; refused while a daemon holds it.
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

// ---- commands (each returns the exit code)
struct ShowArgs {
  bool exact = false;
};
int StateShow(const Globals& g, const ShowArgs& a, Out& out);

struct OffsetsShowArgs {
  std::string topic;
};
int OffsetsShow(const Globals& g, const OffsetsShowArgs& a, Out& out);

// offsets set / delete / import-group and state init: recovery_commands.cc.
struct OffsetsSetArgs {
  std::string topic;
  int32_t partition = -1;
  std::optional<int64_t> offset;
  bool to_earliest = false;
  bool to_latest = false;
  std::string to_time;     // yyyy-mm-ddThh:mm:ss[.mmm]Z, or epoch ms
  bool unchecked = false;  // skip the broker checks (no broker reachable)
  // db-split: do not bump DIMPOS:EPOCH in Redis (default: bump it before the offsets change).
  bool skip_dim_epoch = false;
};
int OffsetsSet(const Globals& g, const OffsetsSetArgs& a, Out& out);

struct OffsetsDeleteArgs {
  std::string topic;
  std::optional<int32_t> partition;  // absent: every partition of the topic
};
int OffsetsDelete(const Globals& g, const OffsetsDeleteArgs& a, Out& out);

struct ImportGroupArgs {
  std::vector<std::string> topics;  // absent: the job's source topics from the config
  std::string group;                // absent: "<kafka.group or rtdw>.<job>"
};
int OffsetsImportGroup(const Globals& g, const ImportGroupArgs& a, Out& out);

int StateInit(const Globals& g, Out& out);

struct JournalListArgs {
  bool bodies = false;
};
int JournalList(const Globals& g, const JournalListArgs& a, Out& out);
int JournalReplay(const Globals& g, Out& out);

struct DeadLetterListArgs {
  uint64_t after = 0;
  size_t limit = SIZE_MAX;
  bool summary = false;     // counts by reason only
  bool from_topic = false;  // split jobs: read their dead-letter topic from Kafka
};
int DeadLetterList(const Globals& g, const DeadLetterListArgs& a, Out& out);

struct DeadLetterSeqArgs {
  std::vector<uint64_t> seqs;
  bool all = false;
};
int DeadLetterRetry(const Globals& g, const DeadLetterSeqArgs& a, Out& out);
int DeadLetterDrop(const Globals& g, const DeadLetterSeqArgs& a, Out& out);

struct DayArgs {
  std::string day;                  // yyyy-mm-dd
  std::vector<int32_t> partitions;  // dedup restore: only these (empty = all)
  int samples = 10;                 // verify: ids listed per kind of difference
};
int DedupRestore(const Globals& g, const DayArgs& a, Out& out);
struct ForgetArgs {
  std::string day;
  std::vector<std::string> mids;
  bool missing_in_es = false;  // the mids `verify` reports lost
  bool no_rewind = false;
};
int DedupForget(const Globals& g, const ForgetArgs& a, Out& out);
int Verify(const Globals& g, const DayArgs& a, Out& out);

int BackupCreate(const Globals& g, const std::string& to, Out& out);
int BackupRestore(const Globals& g, const std::string& from, Out& out);
int BackupList(const Globals& g, const std::string& from, Out& out);

int MetaShow(const Globals& g, Out& out);
struct ResetFingerprintArgs {
  std::optional<std::string> to;  // explicit value; else the config's, else cleared
};
int MetaResetFingerprint(const Globals& g, const ResetFingerprintArgs& a, Out& out);

}  // namespace rtdw::cli

#endif  // RTDW_TOOLS_RTDW_CLI_H_
