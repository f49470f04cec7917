// The rtdw commands. JSON shapes: docs/STATE.md.
#include <algorithm>
#include <cstdio>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <unordered_map>
#include <unordered_set>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "connectors/redis/dimension_cache.h"
#include "connectors/redis/redis_client.h"
#include "core/config/transform_options.h"
#include "core/dau_document.h"
#include "core/dead_letter.h"
#include "core/event_time.h"
#include "core/journal_entry.h"
#include "core/journal_sink.h"
#include "core/json_limits.h"
#include "core/status_util.h"
#include "rapidjson/stringbuffer.h"
#include "rapidjson/writer.h"
#include "storage/state_store.h"
#include "tools/rtdw/cli.h"

namespace rtdw::cli {
namespace {

using rapidjson::Value;

constexpr unsigned kParseFlags = rapidjson::kParseIterativeFlag |
                                 rapidjson::kParseValidateEncodingFlag |
                                 rapidjson::kParseFullPrecisionFlag;

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

}  // namespace

absl::StatusOr<std::unique_ptr<StateStore>> OpenWrite(const Globals& g, const std::string& job) {
  std::error_code ec;
  StateStoreOptions o;
  o.root = g.state_dir;
  o.job = job;
  o.create_if_missing = false;  // an operator's command never creates a store
  o.track_shutdown = false;     // nor hides how the daemon last stopped
  o.block_cache_mb = 64;
  return StateStore::Open(o);
}

// Reports a usage problem: exit 2.
int Usage(Out& out, std::string_view message) {
  out.Fail(message);
  return kExitUsage;
}

int Failed(Out& out, const absl::Status& s) {
  out.Fail(Msg(s));
  return kExitFailed;
}

// Writes need one job.
bool NeedJob(const Globals& g, std::string_view command, Out& out, int* code) {
  if (!g.job.empty()) return true;
  *code = Usage(out, absl::StrCat(ToAbsl(command), " needs --job NAME"));
  return false;
}

namespace {

// Runs `fn` for each job a read command covers, collecting {"jobs":[...]}; a job whose store
// cannot be read gets {"job":J,"error":...} and makes the exit code 1.
template <typename Fn>
int ForEachJob(const Globals& g, Out& out, Fn fn) {
  auto jobs = JobsToRead(g);
  if (!jobs.ok()) return Failed(out, jobs.status());
  Value arr(rapidjson::kArrayType);
  int code = kExitOk;
  if (jobs->empty()) out.text() << "no job stores in " << g.state_dir << "\n";
  for (const auto& job : *jobs) {
    Value entry(rapidjson::kObjectType);
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

}  // namespace

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

// ---------------------------------------------------------------------------------------------
// state show

int StateShow(const Globals& g, const ShowArgs& a, Out& out) {
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

// ---------------------------------------------------------------------------------------------
// offsets

int OffsetsShow(const Globals& g, const OffsetsShowArgs& a, Out& out) {
  return ForEachJob(g, out, [&](StateStore& store, Value& e) -> absl::Status {
    RTDW_ASSIGN_OR_RETURN(std::vector<OffsetEntry> offsets,
                          a.topic.empty() ? store.GetOffsets() : store.GetOffsets(a.topic));
    Value arr(rapidjson::kArrayType);
    out.text() << store.job() << ":" << (offsets.empty() ? " (no offsets)" : "") << "\n";
    for (const auto& o : offsets) {
      Value v(rapidjson::kObjectType);
      out.Set(&v, "topic", out.Str(o.topic));
      out.Set(&v, "partition", Value(o.partition));
      out.Set(&v, "offset", I64(o.next_offset));
      arr.PushBack(v, out.alloc());
      out.text() << "  " << o.topic << " [" << o.partition << "] " << o.next_offset << "\n";
    }
    out.Set(&e, "offsets", std::move(arr));
    return absl::OkStatus();
  });
}

// ---------------------------------------------------------------------------------------------
// journal

int JournalList(const Globals& g, const JournalListArgs& a, Out& out) {
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

int JournalReplay(const Globals& g, Out& out) {
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
          RTDW_RETURN_IF_ERROR(es->InstallTemplates(g.dau_index_prefix, g.order_wide_index_prefix));
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

// ---------------------------------------------------------------------------------------------
// dead letters

namespace {

Value LetterValue(Out& out, std::string_view line) {
  rapidjson::Document d(&out.alloc());
  d.Parse<kParseFlags>(line.data(), line.size());
  if (d.HasParseError() || !d.IsObject()) return Null();
  Value v;
  v.CopyFrom(d, out.alloc());
  return v;
}

struct ParsedLetter {
  bool ok = false;
  std::string reason, index, id, raw, src;
  bool truncated = false;
  bool has_raw = false;
  int64_t version = -1;  // the external version the document was sent with (-1: none)
};

ParsedLetter ParseLetter(std::string_view line) {
  ParsedLetter p;
  JsonParser parser(JsonLimits{0, kMaxSupportedJsonDepth});
  if (parser.Parse(line) != JsonStatus::kOk || !parser.root().IsObject()) return p;
  const JsonValue& d = parser.root();
  auto str = [&](const char* k, std::string* out) {  // of duplicate keys the last one
    const JsonValue* v = d.Find(k);
    if (v == nullptr || !v->IsString()) return false;
    out->assign(v->text());
    return true;
  };
  p.ok = true;
  str("reason", &p.reason);
  str("index", &p.index);
  str("id", &p.id);
  p.has_raw = str("raw", &p.raw);
  str("src", &p.src);
  if (const JsonValue* v = d.Find("version"); v != nullptr && v->IsInt64() && v->GetInt64() >= 0) {
    p.version = v->GetInt64();
  }
  const JsonValue* t = d.Find("truncated");
  p.truncated = t != nullptr && t->GetBool();
  return p;
}

// For a DAU document: false when the de-dup state knows a different winner for its slot (the
// document was superseded by a later one; re-sending it would overwrite the newer winner).
bool StillTheWinner(const StateStore& store, const std::string& raw) {
  JsonParser parser(JsonLimits{0, kMaxSupportedJsonDepth});
  if (parser.Parse(raw) != JsonStatus::kOk || !parser.root().IsObject()) return true;
  const JsonValue& d = parser.root();
  const JsonValue *dt = d.Find("dt"), *src = d.Find("rtdw_src"), *ts = d.Find("ts"),
                  *mid = d.Find("mid");
  if (dt == nullptr || src == nullptr || ts == nullptr || mid == nullptr || !dt->IsString() ||
      !src->IsString() || !ts->IsInt64() || !mid->IsString()) {
    return true;
  }
  auto day = ParseDay(dt->text());
  std::string topic;
  int32_t partition;
  int64_t offset;
  if (!day.ok() || !ParseRtdwSrc(src->text(), &topic, &partition, &offset)) return true;
  auto v = store.GetDedup(*day, partition, mid->text());
  if (!v.ok() || !v->has_value()) return true;
  return (*v)->ts_ms == ts->GetInt64();
}

}  // namespace

namespace {

bool IsSplitJob(std::string_view job) { return job == kJobLogSplit || job == kJobDbSplit; }

// The dead-letter topic of split job `job` (the config's, else the default).
std::string DeadLetterTopic(const Globals& g, std::string_view job) {
  if (g.config) {
    return job == kJobLogSplit ? g.config->jobs.log_split.dead_letter_topic
                               : g.config->jobs.db_split.dead_letter_topic;
  }
  return "DWD_DEAD_LETTER";
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

// Every letter of `job` in split job's dead-letter topic (records whose `job` field is `job`,
// the topic may be shared), read by assignment from the beginning to the end as of now.
// A record the split job produced again (a batch retried, a reprocess) is listed once: the
// latest letter of each source position (`*repeats` counts the others).
absl::Status ReadTopicLetters(const Globals& g, const std::string& job, const std::string& topic,
                              std::vector<DeadLetter>* letters, uint64_t* repeats) {
  std::map<std::pair<std::string, int64_t>, size_t> by_src;  // (src topic/partition, offset)
  if (g.kafka_brokers.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("reading ", topic, " needs --brokers or --config (kafka.brokers)"));
  }
  RTDW_ASSIGN_OR_RETURN(std::unique_ptr<KafkaConsumer> consumer,
                        ConnectKafka(g, absl::StrCat("rtdw-cli.", job)));
  RTDW_ASSIGN_OR_RETURN(int partitions, consumer->PartitionCount(topic, g.kafka_timeout));
  std::vector<PartitionStart> starts;
  std::map<int32_t, int64_t> end;
  for (int32_t p = 0; p < partitions; ++p) {
    RTDW_ASSIGN_OR_RETURN(auto wm, consumer->QueryWatermarks(topic, p, g.kafka_timeout));
    if (wm.second > wm.first) {
      end[p] = wm.second;
      PartitionStart st;
      st.topic = topic;
      st.partition = p;
      st.offset = wm.first;
      starts.push_back(st);
    }
  }
  if (starts.empty()) return absl::OkStatus();
  RTDW_RETURN_IF_ERROR(consumer->Assign(starts));
  std::map<int32_t, int64_t> next;
  const auto deadline = std::chrono::steady_clock::now() + g.kafka_timeout * 6;
  ConsumedBatch batch;
  auto done = [&] {
    for (const auto& [p, e] : end) {
      if (next[p] < e) return false;
    }
    return true;
  };
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) {
      return absl::DeadlineExceededError(absl::StrCat("reading ", topic, " took too long"));
    }
    batch.Clear();
    RTDW_RETURN_IF_ERROR(consumer->Poll(10000, std::chrono::milliseconds(500), &batch));
    for (const InputRecord& r : batch.records()) {
      next[r.partition] = std::max(next[r.partition], r.offset + 1);
      if (r.offset >= end[r.partition]) continue;
      JsonParser parser(JsonLimits{0, kMaxSupportedJsonDepth});
      std::string letter_job;
      if (parser.Parse(r.value) == JsonStatus::kOk && parser.root().IsObject()) {
        if (const JsonValue* j = parser.root().Find("job"); j != nullptr && j->IsString()) {
          letter_job.assign(j->text());
        }
      }
      if (letter_job != job) continue;
      const DeadLetterIdentity id = IdentifyDeadLetter(r.value);
      if (id.kind == DeadLetterIdentity::kPosition) {
        auto key = std::make_pair(absl::StrCat(id.topic, "/", id.partition), id.offset);
        auto [it, inserted] = by_src.try_emplace(key, letters->size());
        if (!inserted) {
          ++*repeats;
          (*letters)[it->second].line = std::string(r.value);
          continue;
        }
      }
      // seq: the letter's place in the topic, partition * 2^40 + offset (stable, unique).
      letters->push_back(
          DeadLetter{(static_cast<uint64_t>(r.partition) << 40) | static_cast<uint64_t>(r.offset),
                     std::string(r.value)});
    }
  }
  consumer->Close();
  return absl::OkStatus();
}

}  // namespace

int DeadLetterList(const Globals& g, const DeadLetterListArgs& a, Out& out) {
  return ForEachJob(g, out, [&](StateStore& store, Value& e) -> absl::Status {
    std::vector<DeadLetter> all;
    if (IsSplitJob(store.job())) {
      // Split jobs keep no letters in their store: they produce them to a Kafka topic.
      const std::string topic = DeadLetterTopic(g, store.job());
      out.Set(&e, "dead_letter_topic", out.Str(topic));
      if (!a.from_topic) {
        out.Set(&e, "count", Null());
        out.Set(&e, "by_reason", Null());
        out.Set(&e, "dead_letters", Value(rapidjson::kArrayType));
        out.text() << store.job() << ": dead letters go to the Kafka topic " << topic
                   << " (header rtdw-reason, field \"job\":\"" << store.job()
                   << "\"), not to the store: `rtdw deadletter list --job " << store.job()
                   << " --from-topic` reads them (needs --config or --brokers)\n";
        return absl::OkStatus();
      }
      uint64_t repeats = 0;
      RTDW_RETURN_IF_ERROR(ReadTopicLetters(g, store.job(), topic, &all, &repeats));
      out.Set(&e, "repeated_in_topic", U64(repeats));
    } else {
      RTDW_ASSIGN_OR_RETURN(all, store.ListDeadLetters());
    }
    std::map<std::string, uint64_t> by_reason;
    for (const auto& l : all) {
      ParsedLetter p = ParseLetter(l.line);
      ++by_reason[p.ok && !p.reason.empty() ? p.reason : "(not a JSON letter)"];
    }
    std::string reasons;
    out.Set(&e, "count", U64(all.size()));
    out.Set(&e, "by_reason", ByReason(out, by_reason, &reasons));
    std::vector<DeadLetter> letters;
    if (!a.summary) {
      for (const auto& l : all) {
        if (l.seq <= a.after) continue;
        if (letters.size() >= a.limit) break;
        letters.push_back(l);
      }
    }
    Value arr(rapidjson::kArrayType);
    out.text() << store.job() << ": " << all.size() << " dead letters"
               << (reasons.empty() ? "" : " (" + reasons + ")") << "\n";
    for (const auto& l : letters) {
      Value v(rapidjson::kObjectType);
      out.Set(&v, "seq", U64(l.seq));
      Value letter = LetterValue(out, l.line);
      if (letter.IsNull()) out.Set(&v, "line", out.Str(l.line));
      out.Set(&v, "letter", std::move(letter));
      arr.PushBack(v, out.alloc());
      out.text() << "  " << l.seq << "  " << l.line << "\n";
    }
    out.Set(&e, "dead_letters", std::move(arr));
    return absl::OkStatus();
  });
}

namespace {

// A letter of an input record to be judged again: what the job's transform needs of it.
struct Rejudge {
  uint64_t seq = 0;
  std::string topic;
  int32_t partition = 0;
  int64_t offset = 0;
  std::string raw;
  std::string reason;
};

// The reasons a record is refused for a cause outside the record (a clock, the retention, the
// join TTL): fixing the cause lets the same record through.
bool RejudgedReason(std::string_view reason) {
  return reason == ReasonCode(Reason::kLate) || reason == ReasonCode(Reason::kFuture) ||
         reason == ReasonCode(Reason::kJoinExpired);
}

struct RejudgeResult {
  uint32_t documents = 0;
  std::optional<uint64_t> journal_seq;
  std::vector<std::pair<uint64_t, std::string>> dead_again;  // new seq, reason
};

// Runs the records of `letters` (in source order) through the job's transform against the
// store's current state, the wall clock and Redis's dimension rows, and commits — in one write —
// what they become (documents as one journal entry, de-dup slots, join rows, watermarks, new
// letters for the ones refused again) with the deletion of `letters`.
absl::StatusOr<RejudgeResult> RejudgeLetters(const Globals& g, StateStore& store,
                                             std::vector<Rejudge>& letters) {
  std::unique_ptr<EsTransform> transform = MakeEsTransform(*g.config, g.job);
  if (!transform) {
    return absl::InvalidArgumentError(absl::StrCat("job ", g.job, " is not an ES job"));
  }
  std::sort(letters.begin(), letters.end(), [](const Rejudge& x, const Rejudge& y) {
    return std::tie(x.partition, x.offset, x.topic) < std::tie(y.partition, y.offset, y.topic);
  });
  RedisClientOptions ro;
  ro.host = g.config->redis.host;
  ro.port = g.config->redis.port;
  ro.db = g.config->redis.db;
  ro.username = g.config->redis.username;
  if (g.config->redis.password) ro.password = g.config->redis.password->value;
  RedisClient redis(ro);
  RedisDimensionCache dims(&redis, DimensionCacheOptions{});
  std::vector<InputRecord> records;
  std::vector<uint64_t> seqs;
  PendingBatch pending = store.NewBatch();
  for (const Rejudge& l : letters) {
    InputRecord r;
    r.topic = l.topic;
    r.partition = l.partition;
    r.offset = l.offset;
    r.value = l.raw;
    records.push_back(r);
    seqs.push_back(l.seq);
    pending.ResolveDeadLetters(l.topic, l.partition, l.offset, l.offset);
  }
  BulkOutput bulk;
  absl::Status st = transform->ProcessBatch(records, NowMs(), &dims, &pending, &bulk);
  if (!st.ok()) {
    return absl::Status(
        st.code(),
        absl::StrCat("re-judging the records (nothing written): ", st.message(),
                     absl::IsUnavailable(st) ? absl::StrCat(" — Redis at ", ro.host, ":", ro.port,
                                                            " must answer (dimension rows)")
                                             : ""));
  }
  RejudgeResult result;
  if (bulk.docs > 0) {
    JournalEntry entry;
    entry.target = bulk.target;
    entry.body = std::move(bulk.body);
    entry.doc_count = bulk.docs;
    pending.SetJournal(std::move(entry));
    result.documents = bulk.docs;
  }
  RTDW_ASSIGN_OR_RETURN(CommitResult committed, store.CommitReplacingDeadLetters(seqs, &pending));
  result.journal_seq = committed.journal_seq;
  for (uint64_t seq : committed.dead_letter_seqs) {
    RTDW_ASSIGN_OR_RETURN(DeadLetter l, store.GetDeadLetter(seq));
    result.dead_again.emplace_back(seq, ParseLetter(l.line).reason);
  }
  return result;
}

}  // namespace

int DeadLetterRetry(const Globals& g, const DeadLetterSeqArgs& a, Out& out) {
  int code;
  if (!NeedJob(g, "deadletter retry", out, &code)) return code;
  auto store = OpenWrite(g, g.job);
  if (!store.ok()) return Failed(out, store.status());
  std::vector<DeadLetter> letters;
  std::vector<uint64_t> not_found;
  if (a.seqs.empty()) {
    auto all = (*store)->ListDeadLetters();
    if (!all.ok()) return Failed(out, all.status());
    letters = std::move(all).value();
  } else {
    for (uint64_t seq : a.seqs) {
      auto l = (*store)->GetDeadLetter(seq);
      if (l.ok()) {
        letters.push_back(std::move(l).value());
      } else if (absl::IsNotFound(l.status())) {
        not_found.push_back(seq);
      } else {
        return Failed(out, l.status());
      }
    }
  }
  JournalEntry entry;
  std::vector<uint64_t> requeue;
  std::set<std::string> indices;
  std::vector<Rejudge> rejudge;
  Value skipped(rapidjson::kArrayType);
  for (const auto& l : letters) {
    ParsedLetter p = ParseLetter(l.line);
    std::string why;
    Rejudge rj;
    if (!p.ok) {
      why = "not a JSON dead letter";
    } else if (RejudgedReason(p.reason)) {
      if (!p.has_raw || p.truncated) {
        why = "the record was not kept whole (raw missing or truncated)";
      } else if (!ParseRtdwSrc(p.src, &rj.topic, &rj.partition, &rj.offset)) {
        why = "no source position (src)";
      } else if (!g.config) {
        why = absl::StrCat("re-judging a ", p.reason,
                           " record needs --config (the job's settings and Redis)");
      } else {
        rj.seq = l.seq;
        rj.raw = std::move(p.raw);
        rj.reason = p.reason;
        rejudge.push_back(std::move(rj));
        continue;
      }
    } else if (p.reason != ReasonCode(Reason::kEsRejected)) {
      why = absl::StrCat("reason ", p.reason,
                         ": the record itself is refused; judging it again gives the same answer "
                         "(fix the producer and send it again, or drop the letter)");
    } else if (p.index.empty() || p.id.empty() || !p.has_raw) {
      why = "no index, id or raw document";
    } else if (p.truncated) {
      why = "the document was truncated";
    } else if (!StillTheWinner(**store, p.raw)) {
      why = "superseded: the de-dup state holds another winner for this mid";
    }
    if (!why.empty()) {
      Value v(rapidjson::kObjectType);
      out.Set(&v, "seq", U64(l.seq));
      out.Set(&v, "why", out.Str(why));
      skipped.PushBack(v, out.alloc());
      out.text() << "  skipped " << l.seq << ": " << why << "\n";
      continue;
    }
    // Re-sent with the version it was made with: ES then refuses it (409, counted superseded)
    // when a better document has been written since, even after the de-dup day was dropped.
    AppendJournalIndexAction(&entry.body, p.index, p.id, p.raw, p.version);
    ++entry.doc_count;
    indices.insert(p.index);
    requeue.push_back(l.seq);
  }
  std::optional<uint64_t> journal_seq;
  if (!requeue.empty()) {
    entry.target = absl::StrCat("deadletter retry: ", absl::StrJoin(indices, ","));
    auto seq = (*store)->RequeueDeadLetters(requeue, std::move(entry));
    if (!seq.ok()) return Failed(out, seq.status());
    journal_seq = *seq;
  }
  std::optional<RejudgeResult> rj;
  if (!rejudge.empty()) {
    auto r = RejudgeLetters(g, **store, rejudge);
    if (!r.ok()) return Failed(out, r.status());
    rj = std::move(r).value();
  }
  absl::Status cs = (*store)->Close();
  if (!cs.ok()) return Failed(out, cs);
  out.Set("job", out.Str(g.job));
  Value rq(rapidjson::kArrayType);
  for (uint64_t s : requeue) rq.PushBack(U64(s), out.alloc());
  out.Set("requeued", std::move(rq));
  out.Set("journal_seq", journal_seq ? U64(*journal_seq) : Null());
  Value rjv(rapidjson::kObjectType);
  {
    Value seqs(rapidjson::kArrayType), again(rapidjson::kArrayType);
    std::map<std::string, uint64_t> by_reason;
    for (const auto& l : rejudge) seqs.PushBack(U64(l.seq), out.alloc());
    if (rj) {
      for (const auto& [seq, reason] : rj->dead_again) {
        Value v(rapidjson::kObjectType);
        out.Set(&v, "seq", U64(seq));
        out.Set(&v, "reason", out.Str(reason));
        again.PushBack(v, out.alloc());
        ++by_reason[reason];
      }
    }
    const uint64_t accepted = rejudge.size() - (rj ? rj->dead_again.size() : 0);
    out.Set(&rjv, "letters", std::move(seqs));
    out.Set(&rjv, "accepted", U64(accepted));
    out.Set(&rjv, "documents", U64(rj ? rj->documents : 0));
    out.Set(&rjv, "journal_seq", rj && rj->journal_seq ? U64(*rj->journal_seq) : Null());
    out.Set(&rjv, "dead_again", std::move(again));
    if (!rejudge.empty()) {
      std::string reasons;
      ByReason(out, by_reason, &reasons);
      out.text() << g.job << ": judged " << rejudge.size()
                 << " dead-lettered records again (with the current settings and clock): "
                 << accepted << " accepted";
      if (rj && rj->journal_seq) {
        out.text() << ", " << rj->documents << " documents owed as journal entry "
                   << *rj->journal_seq;
      }
      if (rj && !rj->dead_again.empty()) {
        out.text() << "; " << rj->dead_again.size() << " refused again (" << reasons
                   << "): fix the cause first";
      }
      out.text() << "\n";
    }
  }
  out.Set("rejudged", std::move(rjv));
  out.Set("skipped", std::move(skipped));
  Value nf(rapidjson::kArrayType);
  for (uint64_t s : not_found) nf.PushBack(U64(s), out.alloc());
  out.Set("not_found", std::move(nf));
  out.text() << g.job << ": re-queued " << requeue.size() << " rejected ES documents";
  if (journal_seq) out.text() << " as journal entry " << *journal_seq;
  out.text() << "\n";
  if (journal_seq || (rj && rj->journal_seq)) {
    out.text() << "  delivered by the daemon's next start or `rtdw journal replay`\n";
  }
  if (!not_found.empty()) {
    out.Fail(absl::StrCat("no dead letter ", absl::StrJoin(not_found, ", ")));
    return kExitFailed;
  }
  return kExitOk;
}

int DeadLetterDrop(const Globals& g, const DeadLetterSeqArgs& a, Out& out) {
  int code;
  if (!NeedJob(g, "deadletter drop", out, &code)) return code;
  if (a.seqs.empty() && !a.all) return Usage(out, "deadletter drop needs --seq N or --all");
  if (!a.seqs.empty() && a.all) return Usage(out, "deadletter drop takes --seq or --all, not both");
  auto store = OpenWrite(g, g.job);
  if (!store.ok()) return Failed(out, store.status());
  std::vector<uint64_t> seqs = a.seqs;
  if (a.all) {
    auto all = (*store)->ListDeadLetters();
    if (!all.ok()) return Failed(out, all.status());
    for (const auto& l : *all) seqs.push_back(l.seq);
  }
  std::vector<uint64_t> dropped, not_found;
  for (uint64_t seq : seqs) {
    absl::Status s = (*store)->DeleteDeadLetter(seq);
    if (s.ok()) {
      dropped.push_back(seq);
    } else if (absl::IsNotFound(s)) {
      not_found.push_back(seq);
    } else {
      return Failed(out, s);
    }
  }
  absl::Status cs = (*store)->Close();
  if (!cs.ok()) return Failed(out, cs);
  out.Set("job", out.Str(g.job));
  Value d(rapidjson::kArrayType), nf(rapidjson::kArrayType);
  for (uint64_t s : dropped) d.PushBack(U64(s), out.alloc());
  for (uint64_t s : not_found) nf.PushBack(U64(s), out.alloc());
  out.Set("dropped", std::move(d));
  out.Set("not_found", std::move(nf));
  out.text() << g.job << ": dropped " << dropped.size() << " dead letters\n";
  if (!not_found.empty()) {
    out.Fail(absl::StrCat("no dead letter ", absl::StrJoin(not_found, ", ")));
    return kExitFailed;
  }
  return kExitOk;
}

// ---------------------------------------------------------------------------------------------
// dedup restore, verify

namespace {

const std::vector<std::string> kDauFields = {"mid", "ts", "rtdw_src"};

// Every document of a DAU index, refreshed first (a search sees only what the index's last refresh
// made visible), sorted by `mid` (a keyword under the DAU template). An index made without the
// template has `mid` as text, which cannot be sorted on: then by its dynamic `mid.keyword`. Never
// by `_id`: Elasticsearch 8 refuses that (indices.id_field_data.enabled is false).
// NotFound when the index does not exist.
absl::Status ScanDauIndex(
    EsAccess& es, const std::string& index,
    const std::function<absl::Status(std::string_view, std::string_view)>& fn) {
  RTDW_RETURN_IF_ERROR(es.Refresh(index));
  bool any = false;
  auto counted = [&](std::string_view id, std::string_view source) {
    any = true;
    return fn(id, source);
  };
  absl::Status s = es.ForEachDocument(index, "mid", kDauFields, counted);
  if (absl::IsInvalidArgument(s) && !any) {
    s = es.ForEachDocument(index, "mid.keyword", kDauFields, fn);
    // Neither is mapped: no document of the index has a `mid` (e.g. an index made by hand whose
    // every write was refused), so it holds no DAU document.
    if (absl::IsInvalidArgument(s) && absl::StrContains(s.message(), "No mapping found")) {
      return absl::OkStatus();
    }
  }
  return s;
}

}  // namespace

int DedupRestore(const Globals& g, const DayArgs& a, Out& out) {
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
  std::set<int32_t> only(a.partitions.begin(), a.partitions.end());
  uint64_t documents = 0, restored = 0, kept = 0, skipped = 0, other_partitions = 0;
  Value samples(rapidjson::kArrayType);
  PendingBatch batch = (*store)->NewBatch();
  auto flush = [&]() -> absl::Status {
    if (batch.empty()) return absl::OkStatus();
    RTDW_RETURN_IF_ERROR((*store)->Commit(std::move(batch)).status());
    batch = (*store)->NewBatch();
    return absl::OkStatus();
  };
  absl::Status s =
      ScanDauIndex(**es, index, [&](std::string_view id, std::string_view source) -> absl::Status {
        ++documents;
        std::optional<DauDocumentSource> doc = ParseDauDocumentSource(source);
        if (!doc || id.empty()) {
          ++skipped;
          if (samples.Size() < 10) samples.PushBack(out.Str(id), out.alloc());
          return absl::OkStatus();
        }
        if (!only.empty() && !only.count(doc->partition)) {
          ++other_partitions;
          return absl::OkStatus();
        }
        RTDW_ASSIGN_OR_RETURN(bool put, PutDedupIfBeats(batch, *day, doc->partition, id,
                                                        DedupValue{doc->ts_ms, doc->offset}));
        if (!put) {
          ++kept;
          return absl::OkStatus();
        }
        ++restored;
        if (batch.mutation_count() >= 5000) return flush();
        return absl::OkStatus();
      });
  if (s.ok()) s = flush();
  if (s.ok()) s = (*store)->Close();
  out.Set("documents", U64(documents));
  out.Set("restored", U64(restored));
  out.Set("kept", U64(kept));
  out.Set("skipped", U64(skipped));
  out.Set("other_partitions", U64(other_partitions));
  out.Set("skipped_samples", std::move(samples));
  if (!s.ok()) {
    return Failed(out,
                  absl::Status(s.code(), absl::StrCat("dedup restore from ", index, ": ", Msg(s),
                                                      " (entries committed so far stay)")));
  }
  out.text() << job << ": " << index << ": " << documents << " documents, " << restored
             << " de-dup entries restored, " << kept << " kept (state already older), " << skipped
             << " skipped (no ts or rtdw_src)\n";
  return kExitOk;
}

namespace {

// A DAU day's de-dup state, ES index, journal and dead letters, compared (verify, dedup forget).
struct DayCheck {
  std::string index;
  // mid -> the winner's source partition and (ts, offset), across partitions (§4's winner).
  std::unordered_map<std::string, std::pair<int32_t, DedupValue>> state;
  std::unordered_set<std::string> owed;           // ids the journal still owes the index
  std::unordered_map<std::string, int64_t> docs;  // ES: id -> ts
  bool index_missing = false;
  uint64_t owed_count = 0;
  std::vector<std::string> missing_in_es, missing_in_state, ts_mismatch, dead_lettered;
  uint64_t letters = 0;                               // dead letters of the day
  std::map<std::string, uint64_t> letters_by_reason;  // of those
  bool differs() const {
    return !missing_in_es.empty() || !missing_in_state.empty() || !ts_mismatch.empty() ||
           !dead_lettered.empty();
  }
};

// The zone DAU days are in: the config's jobs.time_zone, else its documented default.
absl::TimeZone DauZone(const Globals& g) {
  if (g.config) return g.config->jobs.dau.tz;
  absl::TimeZone tz;
  if (!absl::LoadTimeZone("Asia/Shanghai", &tz)) tz = absl::UTCTimeZone();
  return tz;
}

absl::Status CheckDauDay(const Globals& g, const StateStore& store, DayNumber day, DayCheck* c) {
  RTDW_RETURN_IF_ERROR(
      store.ScanDedupDay(day, [&](int32_t partition, std::string_view mid, const DedupValue& v) {
        auto [it, inserted] = c->state.try_emplace(std::string(mid), partition, v);
        if (!inserted && DedupBeats(v, it->second.second)) it->second = {partition, v};
        return true;
      }));
  RTDW_ASSIGN_OR_RETURN(std::vector<JournalEntry> entries, store.ListJournal(true));
  for (const auto& e : entries) {
    RTDW_ASSIGN_OR_RETURN(auto actions, ParseJournalActions(e.body));
    for (const auto& act : actions) {
      if (act.index == c->index) c->owed.insert(act.id);
    }
  }
  RTDW_ASSIGN_OR_RETURN(std::unique_ptr<EsAccess> es, ConnectEs(g.es));
  absl::Status s = ScanDauIndex(*es, c->index, [&](std::string_view id, std::string_view source) {
    // A document without its lineage cannot have come from rtdw: it never matches the state.
    std::optional<DauDocumentSource> d = ParseDauDocumentSource(source);
    c->docs.emplace(std::string(id), d ? d->ts_ms : INT64_MIN);
    return absl::OkStatus();
  });
  if (absl::IsNotFound(s)) {
    c->index_missing = true;
  } else if (!s.ok()) {
    return s;
  }
  // The day's dead letters: records refused as late / future whose ts falls on the day (their
  // best record per mid), and documents of the day's index ES refused.
  const absl::TimeZone tz = DauZone(g);
  std::unordered_map<std::string, int64_t> lettered;  // mid -> smallest ts among its letters
  std::unordered_set<std::string> rejected;
  RTDW_ASSIGN_OR_RETURN(std::vector<DeadLetter> letters, store.ListDeadLetters());
  for (const auto& l : letters) {
    ParsedLetter p = ParseLetter(l.line);
    if (!p.ok) continue;
    if (p.reason == ReasonCode(Reason::kEsRejected)) {
      if (p.index != c->index) continue;
      ++c->letters;
      ++c->letters_by_reason[p.reason];
      rejected.insert(p.id);
      continue;
    }
    if (p.reason != ReasonCode(Reason::kLate) && p.reason != ReasonCode(Reason::kFuture)) continue;
    JsonParser parser(JsonLimits{0, kMaxSupportedJsonDepth});
    if (!p.has_raw || parser.Parse(p.raw) != JsonStatus::kOk || !parser.root().IsObject()) continue;
    const JsonValue *mid = parser.root().Find("mid"), *ts = parser.root().Find("ts");
    if (mid == nullptr || !mid->IsString() || ts == nullptr || !ts->IsInt64()) continue;
    const absl::CivilDay cd = CivilDayOf(ts->GetInt64(), tz);
    if (static_cast<DayNumber>(cd.year() * 10000 + cd.month() * 100 + cd.day()) != day) continue;
    ++c->letters;
    ++c->letters_by_reason[p.reason];
    auto [it, inserted] = lettered.try_emplace(std::string(mid->text()), ts->GetInt64());
    if (!inserted) it->second = std::min(it->second, ts->GetInt64());
  }
  std::unordered_set<std::string> counted;
  for (const auto& [mid, v] : c->state) {
    auto it = c->docs.find(mid);
    const bool is_owed = c->owed.count(mid) > 0;
    if (is_owed) ++c->owed_count;
    if (it == c->docs.end()) {
      if (is_owed) continue;
      if (rejected.count(mid)) {
        c->dead_lettered.push_back(mid);
        counted.insert(mid);
      } else {
        c->missing_in_es.push_back(mid);
      }
    } else if (it->second != v.second.ts_ms && !is_owed) {
      c->ts_mismatch.push_back(mid);
    }
  }
  for (const auto& [id, ts] : c->docs) {
    if (!c->state.count(id)) c->missing_in_state.push_back(id);
  }
  // A letter holds back a document when its record would be the day's winner of its mid.
  for (const auto& [mid, ts] : lettered) {
    if (counted.count(mid) || c->owed.count(mid)) continue;
    auto it = c->docs.find(mid);
    if (it == c->docs.end() || it->second > ts) c->dead_lettered.push_back(mid);
  }
  for (auto* v : {&c->missing_in_es, &c->missing_in_state, &c->ts_mismatch, &c->dead_lettered}) {
    std::sort(v->begin(), v->end());
  }
  return absl::OkStatus();
}

}  // namespace

int Verify(const Globals& g, const DayArgs& a, Out& out) {
  std::string job = g.job.empty() ? "dau" : g.job;
  auto day = ParseDay(a.day);
  if (!day.ok()) return Usage(out, Msg(day.status()));
  DayCheck c;
  c.index = g.dau_index_prefix + a.day;
  out.Set("job", out.Str(job));
  out.Set("day", out.Str(a.day));
  out.Set("index", out.Str(c.index));
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
  if (absl::Status s = CheckDauDay(g, **store, *day, &c); !s.ok()) return error(s);
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
             << c.state.size() << " mids, " << c.index << " " << c.docs.size() << " documents"
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
  list("in state, not in ES (lost: `rtdw dedup forget --missing-in-es` repairs)", c.missing_in_es);
  list("in ES, not in state", c.missing_in_state);
  list("different ts", c.ts_mismatch);
  list(
      "documents held back by dead letters (`rtdw deadletter list --summary`; fix the cause, "
      "then `rtdw deadletter retry`)",
      c.dead_lettered);
  if (differs) {
    out.Fail(absl::StrCat("state and ", c.index, " differ"));
    return kExitFailed;
  }
  return kExitOk;
}

int DedupForget(const Globals& g, const ForgetArgs& a, Out& out) {
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
  DayCheck c;
  c.index = g.dau_index_prefix + a.day;
  std::vector<std::string> mids = a.mids;
  if (a.missing_in_es) {
    if (absl::Status s = CheckDauDay(g, **store, *day, &c); !s.ok()) return Failed(out, s);
    mids = c.missing_in_es;
  } else {
    absl::Status s = (*store)->ScanDedupDay(
        *day, [&](int32_t partition, std::string_view mid, const DedupValue& v) {
          auto [it, inserted] = c.state.try_emplace(std::string(mid), partition, v);
          if (!inserted && DedupBeats(v, it->second.second)) it->second = {partition, v};
          return true;
        });
    if (!s.ok()) return Failed(out, s);
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
  out.text() << job << " " << a.day << ": forgot the de-dup slots of " << n_forgotten
             << " mids; rewound " << n_rewound << " partitions of " << topic
             << " to their earliest winning record: the next start writes their documents again\n";
  if (n_not_found > 0) {
    out.Fail(absl::StrCat(n_not_found, " of the given mids have no de-dup slot on ", a.day));
    return kExitFailed;
  }
  return kExitOk;
}

// ---------------------------------------------------------------------------------------------
// backup

int BackupCreate(const Globals& g, const std::string& to, Out& out) {
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

int BackupRestore(const Globals& g, const std::string& from, Out& out) {
  int code;
  if (!NeedJob(g, "backup restore", out, &code)) return code;
  if (from.empty()) return Usage(out, "backup restore needs --from DIR");
  auto r = StateStore::RestoreBackup(StorePath(from, g.job), g.state_dir, g.job);
  if (!r.ok()) return Failed(out, r.status());
  out.Set("job", out.Str(g.job));
  out.Set("path", out.Str(r->path));
  out.Set("backup_dir", out.Str(r->backup_dir));
  out.Set("backup_id", Value(r->backup_id));
  out.Set("previous_kept_at", r->previous_kept_at.empty() ? Null() : out.Str(r->previous_kept_at));
  out.text() << g.job << ": restored backup " << r->backup_id << " of " << r->backup_dir << " to "
             << r->path << "\n";
  if (!r->previous_kept_at.empty()) {
    out.text() << "  the store it replaced is kept at " << r->previous_kept_at << "\n";
  }
  return kExitOk;
}

int BackupList(const Globals& g, const std::string& from, Out& out) {
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

// ---------------------------------------------------------------------------------------------
// meta

int MetaShow(const Globals& g, Out& out) {
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

int MetaResetFingerprint(const Globals& g, const ResetFingerprintArgs& a, Out& out) {
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

}  // namespace rtdw::cli
