// rtdw deadletter list / retry / drop: records and ES items that failed for good, and bringing
// them back. JSON shapes: docs/STATE.md.
#include <algorithm>
#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "connectors/kafka/consumer.h"
#include "connectors/redis/dimension_cache.h"
#include "connectors/redis/redis_client.h"
#include "core/config/transform_options.h"
#include "core/dau_document.h"
#include "core/dead_letter.h"
#include "core/journal_entry.h"
#include "core/json_limits.h"
#include "core/status_util.h"
#include "storage/state_store.h"
#include "tools/rtdw/cli.h"
#include "tools/rtdw/command.h"

namespace rtdw::cli {
namespace {

using rapidjson::Value;

// A letter as a JSON value of the output; null when the line is not a JSON object. Parsed by
// ParseJsonSafely (bounded depth, exact numbers): a letter's numbers are integers (seqs, offsets,
// statuses, versions, times), which stay exact; the record itself is in `raw`, a string, kept
// byte for byte.
Value LetterValue(Out& out, std::string_view line) {
  rapidjson::Document d(&out.alloc());
  if (ParseJsonSafely(line, JsonLimits{0, kMaxSupportedJsonDepth}, &d) != JsonStatus::kOk ||
      !d.IsObject()) {
    return Null();
  }
  Value v;
  v.CopyFrom(d, out.alloc());
  return v;
}

bool IsSplitJob(std::string_view job) { return job == kJobLogSplit || job == kJobDbSplit; }

// The dead-letter topic of split job `job` (the config's, else the default).
std::string DeadLetterTopic(const Globals& g, std::string_view job) {
  if (g.config) {
    return job == kJobLogSplit ? g.config->jobs.log_split.dead_letter_topic
                               : g.config->jobs.db_split.dead_letter_topic;
  }
  return "DWD_DEAD_LETTER";
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
    result.dead_again.emplace_back(seq, ParseDeadLetter(l.line).reason);
  }
  return result;
}

struct DeadLetterListArgs {
  uint64_t after = 0;
  size_t limit = SIZE_MAX;
  bool summary = false;     // counts by reason only
  bool from_topic = false;  // split jobs: read their dead-letter topic from Kafka
};

struct DeadLetterSeqArgs {
  std::vector<uint64_t> seqs;
  bool all = false;
};

class DeadLetterListCommand : public Command {
 public:
  std::string_view group() const override { return "deadletter"; }
  std::string_view name() const override { return "list"; }
  std::string_view help() const override { return "dead letters in seq order"; }
  StoreAccess access() const override { return StoreAccess::kReadOnly; }
  void AddFlags(CLI::App* app, SharedFlags* shared) override {
    (void)shared;
    app->add_option("--after", args_.after, "only seqs after this one");
    app->add_option("--limit", args_.limit, "at most this many");
    app->add_flag("--summary", args_.summary, "only the counts by reason");
    app->add_flag("--from-topic", args_.from_topic,
                  "split jobs: read their letters from the dead-letter topic (needs --config "
                  "or --brokers)");
  }
  int Run(const Globals& g, Out& out) override {
    const DeadLetterListArgs& a = args_;
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
        ParsedDeadLetter p = ParseDeadLetter(l.line);
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

 private:
  DeadLetterListArgs args_;
};

class DeadLetterRetryCommand : public Command {
 public:
  std::string_view group() const override { return "deadletter"; }
  std::string_view name() const override { return "retry"; }
  std::string_view help() const override {
    return "re-queue rejected ES items (es_rejected) as a new journal entry, and re-judge late, "
           "future and join_expired records with the job's current settings and clock (needs "
           "--config)";
  }
  StoreAccess access() const override { return StoreAccess::kReadWrite; }
  void AddFlags(CLI::App* app, SharedFlags* shared) override {
    (void)shared;
    app->add_option("--seq", args_.seqs, "only these (repeatable; default: all)");
  }
  int Run(const Globals& g, Out& out) override {
    const DeadLetterSeqArgs& a = args_;
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
      ParsedDeadLetter p = ParseDeadLetter(l.line);
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
      } else if (!StillDedupWinner((*store)->NewBatch(), p.raw)) {
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

 private:
  DeadLetterSeqArgs args_;
};

class DeadLetterDropCommand : public Command {
 public:
  std::string_view group() const override { return "deadletter"; }
  std::string_view name() const override { return "drop"; }
  std::string_view help() const override { return "delete dead letters"; }
  StoreAccess access() const override { return StoreAccess::kReadWrite; }
  void AddFlags(CLI::App* app, SharedFlags* shared) override {
    (void)shared;
    app->add_option("--seq", args_.seqs, "the dead letter to drop (repeatable)");
    app->add_flag("--all", args_.all, "drop every dead letter of the job");
  }
  int Run(const Globals& g, Out& out) override {
    const DeadLetterSeqArgs& a = args_;
    int code;
    if (!NeedJob(g, "deadletter drop", out, &code)) return code;
    if (a.seqs.empty() && !a.all) return Usage(out, "deadletter drop needs --seq N or --all");
    if (!a.seqs.empty() && a.all)
      return Usage(out, "deadletter drop takes --seq or --all, not both");
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

 private:
  DeadLetterSeqArgs args_;
};

}  // namespace

void RegisterDeadLetterCommands(CommandRegistry* r) {
  r->AddGroup("deadletter", "records and ES items that failed for good");
  r->Add(std::make_unique<DeadLetterListCommand>());
  r->Add(std::make_unique<DeadLetterRetryCommand>());
  r->Add(std::make_unique<DeadLetterDropCommand>());
}

}  // namespace rtdw::cli
