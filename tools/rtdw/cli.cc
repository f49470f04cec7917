// What the rtdw commands share (cli.h) and the registry of commands (command.h).
#include "tools/rtdw/cli.h"

#include <algorithm>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "core/json_limits.h"
#include "core/status_util.h"
#include "rapidjson/stringbuffer.h"
#include "rapidjson/writer.h"
#include "storage/state_store.h"
#include "tools/rtdw/command.h"

namespace rtdw::cli {

using rapidjson::Value;

std::string Msg(const absl::Status& s) { return std::string(s.message()); }

int64_t NowMs() { return absl::ToUnixMillis(absl::Now()); }

std::string FormatMs(int64_t ms) {
  return absl::FormatTime("%Y-%m-%d %H:%M:%S %Z", absl::FromUnixMillis(ms), absl::LocalTimeZone());
}

std::string Bytes(uint64_t n) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(n);
  int u = 0;
  while (v >= 1024 && u < 4) {
    v /= 1024;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof(buf), u == 0 ? "%.0f %s" : "%.1f %s", v, units[u]);
  return buf;
}

Value U64(uint64_t v) { return Value(v); }
Value I64(int64_t v) { return Value(v); }
Value Null() { return Value(rapidjson::kNullType); }

// The jobs a read command covers: --job, or every store under the state dir.
absl::StatusOr<std::vector<std::string>> JobsToRead(const Globals& g) {
  RTDW_ASSIGN_OR_RETURN(std::vector<std::string> all, ListJobStores(g.state_dir));
  if (g.job.empty()) return all;
  if (!ValidJobName(g.job)) {
    return absl::InvalidArgumentError(absl::StrCat("\"", g.job, "\" is not a job name"));
  }
  if (std::find(all.begin(), all.end(), g.job) == all.end()) {
    return absl::NotFoundError(
        absl::StrCat("no state store for job ", g.job, " at ", StorePath(g.state_dir, g.job)));
  }
  return std::vector<std::string>{g.job};
}

absl::StatusOr<std::unique_ptr<StateStore>> OpenRead(const Globals& g, const std::string& job) {
  StateStoreOptions o;
  o.root = g.state_dir;
  o.job = job;
  o.read_only = true;
  o.block_cache_mb = 32;
  return StateStore::Open(o);
}

absl::StatusOr<std::unique_ptr<StateStore>> OpenWrite(const Globals& g, const std::string& job) {
  if (g.access != StoreAccess::kReadWrite) {
    return absl::InternalError(absl::StrCat(
        "this command is not declared to write (Command::access); it cannot open the store of ",
        job, " for writing"));
  }
  StateStoreOptions o;
  o.root = g.state_dir;
  o.job = job;
  o.create_if_missing = false;  // an operator's command never creates a store
  o.track_shutdown = false;     // nor hides how the daemon last stopped
  o.block_cache_mb = 64;
  return StateStore::Open(o);
}

int Usage(Out& out, std::string_view message) {
  out.Fail(message);
  return kExitUsage;
}

int Failed(Out& out, const absl::Status& s) {
  out.Fail(Msg(s));
  return kExitFailed;
}

bool NeedJob(const Globals& g, std::string_view command, Out& out, int* code) {
  if (!g.job.empty()) return true;
  *code = Usage(out, absl::StrCat(ToAbsl(command), " needs --job NAME"));
  return false;
}

std::optional<std::string> MetaOr(const StateStore& store, std::string_view name) {
  auto v = store.GetMeta(name);
  if (!v.ok()) return std::nullopt;
  return *v;
}

Value MetaMs(Out& out, const StateStore& store, std::string_view name) {
  (void)out;
  auto v = MetaOr(store, name);
  int64_t ms;
  if (v && absl::SimpleAtoi(*v, &ms)) return I64(ms);
  return Null();
}

// ---------------------------------------------------------------------------------------------
// Out

void Out::Set(Value* obj, std::string_view key, Value v) {
  Value* target = obj ? obj : &doc_;
  auto it = target->FindMember(Value(rapidjson::StringRef(key.data(), key.size())));
  if (it != target->MemberEnd()) {
    it->value = std::move(v);
    return;
  }
  target->AddMember(Str(key), v, alloc());
}

void Out::Fail(std::string_view message) {
  errors_.emplace_back(message);
  if (!doc_.HasMember("error")) Set("error", Str(message));
}

std::string ToJson(const Value& v) {
  rapidjson::StringBuffer sb;
  rapidjson::Writer<rapidjson::StringBuffer> w(sb);
  v.Accept(w);
  return std::string(sb.GetString(), sb.GetSize());
}

// {"late":3,...} and the text "late 3, future 1".
Value ByReason(Out& out, const std::map<std::string, uint64_t>& by_reason, std::string* text) {
  Value v(rapidjson::kObjectType);
  text->clear();
  for (const auto& [reason, n] : by_reason) {
    out.Set(&v, reason, U64(n));
    absl::StrAppend(text, text->empty() ? "" : ", ", reason, " ", n);
  }
  return v;
}

absl::StatusOr<std::unique_ptr<KafkaConsumer>> ConnectKafka(const Globals& g,
                                                            const std::string& group) {
  KafkaConsumerOptions o;
  o.brokers = g.kafka_brokers;
  o.group_id = group;
  o.properties = g.kafka_properties;
  o.properties["enable.auto.commit"] = "false";
  o.log = [](int, std::string_view, std::string_view) {};  // failures come back as statuses
  return KafkaConsumer::Create(o);
}

// ---------------------------------------------------------------------------------------------
// The registry

void CommandRegistry::AddGroup(std::string name, std::string help) {
  groups_.push_back(Group{std::move(name), std::move(help)});
}

void CommandRegistry::Add(std::unique_ptr<Command> command) {
  commands_.push_back(std::move(command));
}

CommandRegistry AllCommands() {
  CommandRegistry r;
  RegisterStateCommands(&r);
  RegisterOffsetsCommands(&r);
  RegisterJournalCommands(&r);
  RegisterDeadLetterCommands(&r);
  RegisterDedupCommands(&r);
  RegisterBackupCommands(&r);
  RegisterMetaCommands(&r);
  return r;
}

}  // namespace rtdw::cli
