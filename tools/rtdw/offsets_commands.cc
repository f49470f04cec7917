// rtdw offsets show / set / delete / import-group: where a job resumes, and rebuilding it after
// a loss (set is checked against the broker). JSON shapes: docs/STATE.md.
#include <algorithm>
#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "connectors/kafka/consumer.h"
#include "connectors/redis/redis_client.h"
#include "core/status_util.h"
#include "storage/state_store.h"
#include "tools/rtdw/cli.h"
#include "tools/rtdw/command.h"

namespace rtdw::cli {
namespace {

using rapidjson::Value;

// "2025-11-25T10:00:00Z" (RFC 3339, any offset) or epoch milliseconds.
std::optional<int64_t> ParseTime(const std::string& text) {
  int64_t ms = 0;
  if (absl::SimpleAtoi(text, &ms) && ms >= 0) return ms;
  absl::Time t;
  std::string err;
  if (absl::ParseTime(absl::RFC3339_full, text, &t, &err)) return absl::ToUnixMillis(t);
  return std::nullopt;
}

// Group mode's `offsets set`: joins the job's group `group` as its only member, checks that it
// was given every partition of the job's source topics (no other member runs the job), commits
// `next` as that member and leaves. (Kafka's coordinator also takes offsets committed from
// outside an empty group, but not every broker does — librdkafka's mock cluster refuses them
// once the group exists — and joining is what proves that no member runs.)
class SoleMember : public RebalanceListener {
 public:
  absl::StatusOr<std::vector<PartitionStart>> OnAssigned(
      const std::vector<TopicPartition>& partitions) override {
    std::vector<PartitionStart> starts;
    for (const auto& [topic, p] : partitions) {
      starts.push_back({topic, p, PartitionStart::kEnd});  // nothing to read
      assigned.insert({topic, p});
    }
    given = true;
    return starts;
  }
  void OnRevoked(const std::vector<TopicPartition>& partitions) override {
    for (const auto& tp : partitions) assigned.erase(tp);
  }
  bool given = false;
  std::set<TopicPartition> assigned;
};

absl::Status CommitAsSoleMember(const Globals& g, const std::string& group,
                                const std::map<TopicPartition, int64_t>& next) {
  RTDW_ASSIGN_OR_RETURN(std::unique_ptr<KafkaConsumer> consumer, ConnectKafka(g, group));
  size_t partitions = 0;
  for (const std::string& topic : g.source_topics) {
    RTDW_ASSIGN_OR_RETURN(int n, consumer->PartitionCount(topic, g.kafka_timeout));
    partitions += static_cast<size_t>(n);
  }
  SoleMember member;
  RTDW_RETURN_IF_ERROR(consumer->Subscribe(g.source_topics, &member));
  // A member that ended without leaving still counts until its session times out: the join
  // waits for the group's rebalance, which waits for it.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(90);
  ConsumedBatch batch;
  while (std::chrono::steady_clock::now() < deadline &&
         !(member.given && member.assigned.size() >= partitions)) {
    batch.Clear();
    // Runs the rebalance; records and errors (a lost offset) do not matter here.
    consumer->Poll(1, std::chrono::milliseconds(200), &batch).IgnoreError();
  }
  if (!member.given || member.assigned.size() < partitions) {
    const size_t got = member.assigned.size();
    consumer->Close(std::chrono::steady_clock::now() + g.kafka_timeout).IgnoreError();
    return absl::FailedPreconditionError(absl::StrCat(
        "the group ", group, " gave this command ", got, " of the ", partitions, " partitions of ",
        absl::StrJoin(g.source_topics, ", "),
        " within 90 s: another member still runs the job — stop it on every member (one that "
        "ended without leaving the group counts until session.timeout.ms has passed), then run "
        "this again"));
  }
  absl::Status committed = consumer->CommitSync(next, g.kafka_timeout);
  absl::Status closed = consumer->Close(std::chrono::steady_clock::now() + g.kafka_timeout);
  if (!committed.ok()) {
    return absl::Status(committed.code(), absl::StrCat("committing them to the group ", group,
                                                       " failed: ", committed.message()));
  }
  closed.IgnoreError();  // the commit is answered; a slow leave only delays the next join
  return absl::OkStatus();
}

// Checks `topic` and `partition` against the broker: exit-1 refusals name the flag.
absl::Status CheckTopicPartition(const Globals& g, KafkaConsumer& consumer,
                                 const std::string& topic, int32_t partition) {
  auto count = consumer.PartitionCount(topic, g.kafka_timeout);
  if (absl::IsNotFound(count.status())) {
    return absl::NotFoundError(
        absl::StrCat("--topic ", topic, ": no such topic on the broker ", g.kafka_brokers));
  }
  if (!count.ok()) return count.status();
  if (partition >= *count) {
    return absl::OutOfRangeError(absl::StrCat("--partition ", partition, ": topic ", topic, " has ",
                                              *count, " partitions (0-", *count - 1, ")"));
  }
  return absl::OkStatus();
}

struct OffsetsShowArgs {
  std::string topic;
};

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

struct OffsetsDeleteArgs {
  std::string topic;
  std::optional<int32_t> partition;  // absent: every partition of the topic
};

struct ImportGroupArgs {
  std::vector<std::string> topics;  // absent: the job's source topics from the config
  std::string group;                // absent: "<kafka.group or rtdw>.<job>"
};

class OffsetsShowCommand : public Command {
 public:
  std::string_view group() const override { return "offsets"; }
  std::string_view name() const override { return "show"; }
  std::string_view help() const override { return "stored offsets"; }
  StoreAccess access() const override { return StoreAccess::kReadOnly; }
  void AddFlags(CLI::App* app, SharedFlags* shared) override {
    (void)shared;
    app->add_option("--topic", args_.topic, "only this topic");
  }
  int Run(const Globals& g, Out& out) override {
    const OffsetsShowArgs& a = args_;
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

 private:
  OffsetsShowArgs args_;
};

class OffsetsSetCommand : public Command {
 public:
  std::string_view group() const override { return "offsets"; }
  std::string_view name() const override { return "set"; }
  std::string_view help() const override {
    return "set where a partition resumes (refused while rtdwd holds the store)";
  }
  StoreAccess access() const override { return StoreAccess::kReadWrite; }
  void AddFlags(CLI::App* app, SharedFlags* shared) override {
    (void)shared;
    app->add_option("--topic", args_.topic, "topic")->required();
    app->add_option("--partition", args_.partition,
                    "partition (required with --offset; default with --to-*: every partition)")
        ->check(CLI::NonNegativeNumber);
    app->add_option("--offset", args_.offset,
                    "next offset to read (within the broker's retained range)");
    app->add_flag("--to-earliest", args_.to_earliest, "the first offset the broker still holds");
    app->add_flag("--to-latest", args_.to_latest,
                  "the broker's end (only records written from now on)");
    app->add_option("--to-time", args_.to_time,
                    "the first record at or after this time (RFC 3339 or epoch ms)");
    app->add_flag("--unchecked", args_.unchecked,
                  "with --offset: do not check against Kafka (broker unreachable)");
    app->add_flag("--skip-dim-epoch", args_.skip_dim_epoch,
                  "db-split: do not bump DIMPOS:EPOCH in Redis (replayed dimension rows "
                  "then lose against the positions already stored)");
  }
  int Run(const Globals& g, Out& out) override {
    const OffsetsSetArgs& a = args_;
    int code;
    if (!NeedJob(g, "offsets set", out, &code)) return code;
    if (a.topic.empty()) return Usage(out, "offsets set needs --topic");
    int targets = (a.offset ? 1 : 0) + (a.to_earliest ? 1 : 0) + (a.to_latest ? 1 : 0) +
                  (a.to_time.empty() ? 0 : 1);
    if (targets != 1) {
      return Usage(out,
                   "offsets set needs exactly one of --offset O, --to-earliest, --to-latest, "
                   "--to-time T");
    }
    if (a.offset && *a.offset < 0) return Usage(out, "--offset must be >= 0");
    if (a.offset && a.partition < 0) return Usage(out, "--offset needs --partition P (>= 0)");
    std::optional<int64_t> time_ms;
    if (!a.to_time.empty()) {
      time_ms = ParseTime(a.to_time);
      if (!time_ms) {
        return Usage(out, absl::StrCat("--to-time \"", a.to_time,
                                       "\": expected yyyy-mm-ddThh:mm:ssZ (RFC 3339) or epoch ms"));
      }
    }
    if (a.unchecked && !a.offset) return Usage(out, "--unchecked needs --offset");
    // Group mode: a member starts a partition at the group's committed offset, so that is what
    // is set (as well as the store's).
    const std::string group =
        g.kafka_group.empty() ? std::string() : absl::StrCat(g.kafka_group, ".", g.job);
    if (a.unchecked && !group.empty()) {
      return Usage(out, absl::StrCat("--unchecked: in group mode (kafka.group) offsets set commits "
                                     "the offsets to the job's group ",
                                     group, ", which needs the broker"));
    }
    if (!a.unchecked && g.kafka_brokers.empty()) {
      return Usage(out,
                   "offsets set checks the topic, partition and offset against Kafka: give "
                   "--config or --brokers (or --unchecked with --offset)");
    }
    if (!g.source_topics.empty() && std::find(g.source_topics.begin(), g.source_topics.end(),
                                              a.topic) == g.source_topics.end()) {
      return Failed(out, absl::InvalidArgumentError(absl::StrCat(
                             "--topic ", a.topic, ": job ", g.job, " does not read it (it reads ",
                             absl::StrJoin(g.source_topics, ", "), ")")));
    }

    // Per partition: the target offset and the broker's range (none when unchecked).
    struct Target {
      int32_t partition;
      int64_t offset;
      std::optional<std::pair<int64_t, int64_t>> range;
    };
    std::vector<Target> targets_list;
    if (a.unchecked) {
      targets_list.push_back({a.partition, *a.offset, std::nullopt});
    } else {
      auto consumer = ConnectKafka(g, absl::StrCat("rtdw-cli.", g.job));
      if (!consumer.ok()) return Failed(out, consumer.status());
      std::vector<int32_t> partitions;
      if (a.partition >= 0) {
        absl::Status s = CheckTopicPartition(g, **consumer, a.topic, a.partition);
        if (!s.ok()) return Failed(out, s);
        partitions.push_back(a.partition);
      } else {  // --to-*: every partition of the topic
        auto count = (*consumer)->PartitionCount(a.topic, g.kafka_timeout);
        if (absl::IsNotFound(count.status())) {
          return Failed(
              out, absl::NotFoundError(absl::StrCat(
                       "--topic ", a.topic, ": no such topic on the broker ", g.kafka_brokers)));
        }
        if (!count.ok()) return Failed(out, count.status());
        for (int32_t p = 0; p < *count; ++p) partitions.push_back(p);
      }
      std::map<int32_t, int64_t> at_time;
      if (time_ms) {
        auto at = (*consumer)->OffsetsForTime(a.topic, partitions, *time_ms, g.kafka_timeout);
        if (!at.ok()) return Failed(out, at.status());
        at_time = *at;
      }
      for (int32_t p : partitions) {
        auto wm = (*consumer)->QueryWatermarks(a.topic, p, g.kafka_timeout);
        if (!wm.ok()) return Failed(out, wm.status());
        int64_t target = a.offset.value_or(-1);
        if (a.to_earliest) target = wm->first;
        if (a.to_latest) target = wm->second;
        if (time_ms) {
          int64_t o = at_time.count(p) ? at_time[p] : -1;
          target = o < 0 ? wm->second : std::clamp(o, wm->first, wm->second);
        }
        if (target < wm->first || target > wm->second) {
          return Failed(out, absl::OutOfRangeError(absl::StrCat(
                                 "--offset ", target, ": ", a.topic, " [", p, "] holds offsets ",
                                 wm->first, " to ", wm->second,
                                 " (the next one to be written); give an offset in that range")));
        }
        targets_list.push_back({p, target, *wm});
      }
    }

    // db-split: positions stored in Redis must not outrank the rows read again from the new
    // offsets (docs/OPERATIONS.md "Resetting db-split"). The epoch goes up first: when the
    // offsets then cannot be written, a bumped epoch costs nothing (every write after it wins).
    std::optional<int64_t> dim_epoch;
    if (g.job == "db-split" && !a.skip_dim_epoch) {
      if (g.config == nullptr) {
        return Usage(out,
                     "offsets set of db-split bumps the dimension position epoch (DIMPOS:EPOCH) in "
                     "Redis: give --config (its redis.url), or --skip-dim-epoch");
      }
      const RedisConfig& rc = g.config->redis;
      RedisClient redis(RedisClientOptions{
          rc.host, rc.port, rc.db, rc.username,
          rc.password ? std::optional<std::string>(rc.password->value) : std::nullopt,
          std::chrono::milliseconds(5000)});
      auto epoch = redis.BumpDimEpoch();
      if (!epoch.ok()) {
        return Failed(out, absl::UnavailableError(absl::StrCat(
                               "offsets not changed: cannot bump ", RedisClient::kDimEpochKey,
                               " in Redis ", g.config->redis.url, " (", epoch.status().message(),
                               "); bring Redis back, or give --skip-dim-epoch and run `INCR ",
                               RedisClient::kDimEpochKey, "` there before db-split starts")));
      }
      dim_epoch = *epoch;
      out.text() << "db-split: " << RedisClient::kDimEpochKey << " in Redis " << g.config->redis.url
                 << " is now " << *epoch
                 << ": dimension rows read from the new offsets win over the positions stored "
                    "before\n";
    }

    auto store = OpenWrite(g, g.job);
    if (!store.ok()) return Failed(out, store.status());
    PendingBatch batch = (*store)->NewBatch();
    Value results(rapidjson::kArrayType);
    for (const auto& t : targets_list) {
      auto prev = (*store)->GetOffset(a.topic, t.partition);
      if (!prev.ok()) return Failed(out, prev.status());
      absl::Status s = batch.SetOffset(a.topic, t.partition, t.offset);
      if (!s.ok()) return Failed(out, s);
      Value e(rapidjson::kObjectType);
      out.Set(&e, "partition", Value(t.partition));
      out.Set(&e, "previous", prev->has_value() ? Value(static_cast<int64_t>(**prev)) : Null());
      out.Set(&e, "offset", Value(t.offset));
      if (t.range) {
        Value r(rapidjson::kObjectType);
        out.Set(&r, "low", Value(t.range->first));
        out.Set(&r, "high", Value(t.range->second));
        out.Set(&e, "broker_range", std::move(r));
      } else {
        out.Set(&e, "broker_range", Null());
      }
      results.PushBack(e, out.alloc());
      out.text() << g.job << ": " << a.topic << " [" << t.partition << "] "
                 << (prev->has_value() ? absl::StrCat(**prev) : std::string("(none)")) << " -> "
                 << t.offset
                 << (t.range ? absl::StrCat(" (broker holds ", t.range->first, "..",
                                            t.range->second, ")")
                             : std::string(" (unchecked)"))
                 << "\n";
    }
    if (!group.empty()) {
      // Before the store's write: a refused commit changes nothing.
      absl::Status c = CommitAsSoleMember(g, group, [&] {
        std::map<TopicPartition, int64_t> next;
        for (const auto& t : targets_list) next[{a.topic, t.partition}] = t.offset;
        return next;
      }());
      if (!c.ok()) {
        return Failed(out,
                      absl::Status(c.code(), absl::StrCat("offsets not changed: ", c.message())));
      }
      out.text() << g.job << ": committed to the group " << group
                 << " (group mode: members start there)\n";
    }
    auto committed = (*store)->Commit(std::move(batch));
    absl::Status s = committed.ok() ? (*store)->Close() : committed.status();
    if (!s.ok()) return Failed(out, s);
    out.Set("job", out.Str(g.job));
    out.Set("topic", out.Str(a.topic));
    out.Set("group", group.empty() ? Null() : out.Str(group));
    out.Set("dim_epoch", dim_epoch ? Value(*dim_epoch) : Null());
    if (a.partition >= 0) {  // one partition: its fields at the top level
      for (auto& m : results[0].GetObject()) {
        out.Set(std::string_view(m.name.GetString(), m.name.GetStringLength()),
                Value(m.value, out.alloc()));
      }
    } else {
      out.Set("offsets", std::move(results));
    }
    return kExitOk;
  }

 private:
  OffsetsSetArgs args_;
};

class OffsetsDeleteCommand : public Command {
 public:
  std::string_view group() const override { return "offsets"; }
  std::string_view name() const override { return "delete"; }
  std::string_view help() const override {
    return "forget stored offsets of a topic (or one partition)";
  }
  StoreAccess access() const override { return StoreAccess::kReadWrite; }
  void AddFlags(CLI::App* app, SharedFlags* shared) override {
    (void)shared;
    app->add_option("--topic", args_.topic, "topic")->required();
    app->add_option("--partition", args_.partition, "only this partition");
  }
  int Run(const Globals& g, Out& out) override {
    const OffsetsDeleteArgs& a = args_;
    int code;
    if (!NeedJob(g, "offsets delete", out, &code)) return code;
    if (a.topic.empty()) return Usage(out, "offsets delete needs --topic");
    if (a.partition && *a.partition < 0) return Usage(out, "--partition must be >= 0");
    auto store = OpenWrite(g, g.job);
    if (!store.ok()) return Failed(out, store.status());
    auto entries = (*store)->GetOffsets(a.topic);
    if (!entries.ok()) return Failed(out, entries.status());
    PendingBatch batch = (*store)->NewBatch();
    Value deleted(rapidjson::kArrayType);
    for (const auto& e : *entries) {
      if (a.partition && e.partition != *a.partition) continue;
      absl::Status s = batch.DeleteOffset(e.topic, e.partition);
      if (!s.ok()) return Failed(out, s);
      Value d(rapidjson::kObjectType);
      out.Set(&d, "partition", Value(e.partition));
      out.Set(&d, "offset", Value(static_cast<int64_t>(e.next_offset)));
      deleted.PushBack(d, out.alloc());
      out.text() << g.job << ": deleted " << a.topic << " [" << e.partition << "] " << e.next_offset
                 << "\n";
    }
    out.Set("job", out.Str(g.job));
    out.Set("topic", out.Str(a.topic));
    if (deleted.Empty()) {
      out.Set("deleted", std::move(deleted));
      return Failed(out, absl::NotFoundError(absl::StrCat(
                             "no stored offset for ", a.topic,
                             a.partition ? absl::StrCat(" [", *a.partition, "]") : std::string(),
                             " (see rtdw offsets show --job ", g.job, ")")));
    }
    out.Set("deleted", std::move(deleted));
    auto committed = (*store)->Commit(std::move(batch));
    absl::Status s = committed.ok() ? (*store)->Close() : committed.status();
    if (!s.ok()) return Failed(out, s);
    return kExitOk;
  }

 private:
  OffsetsDeleteArgs args_;
};

class OffsetsImportGroupCommand : public Command {
 public:
  std::string_view group() const override { return "offsets"; }
  std::string_view name() const override { return "import-group"; }
  std::string_view help() const override {
    return "store the offsets the job's Kafka group (<kafka.group or rtdw>.<job>) committed";
  }
  StoreAccess access() const override { return StoreAccess::kReadWrite; }
  void AddFlags(CLI::App* app, SharedFlags* shared) override {
    (void)shared;
    app->add_option("--topic", args_.topics,
                    "topics (repeatable; default: the job's source topics)");
    app->add_option("--group", args_.group, "another group id");
  }
  int Run(const Globals& g, Out& out) override {
    const ImportGroupArgs& a = args_;
    int code;
    if (!NeedJob(g, "offsets import-group", out, &code)) return code;
    if (g.kafka_brokers.empty()) {
      return Usage(out,
                   "offsets import-group reads the group from Kafka: give --config or --brokers");
    }
    std::vector<std::string> topics = a.topics.empty() ? g.source_topics : a.topics;
    if (topics.empty()) {
      return Usage(out,
                   absl::StrCat("offsets import-group needs the job's topics: --config (with job ",
                                g.job, ") or --topic T"));
    }
    std::string group =
        !a.group.empty() ? a.group
                         : absl::StrCat(g.kafka_group.empty() ? "rtdw" : g.kafka_group, ".", g.job);
    auto consumer = ConnectKafka(g, group);
    if (!consumer.ok()) return Failed(out, consumer.status());
    std::vector<TopicPartition> partitions;
    for (const auto& t : topics) {
      auto count = (*consumer)->PartitionCount(t, g.kafka_timeout);
      if (absl::IsNotFound(count.status())) {
        return Failed(out, absl::NotFoundError(absl::StrCat(
                               "--topic ", t, ": no such topic on the broker ", g.kafka_brokers)));
      }
      if (!count.ok()) return Failed(out, count.status());
      for (int32_t p = 0; p < *count; ++p) partitions.emplace_back(t, p);
    }
    auto committed = (*consumer)->Committed(partitions, g.kafka_timeout);
    if (!committed.ok()) return Failed(out, committed.status());
    if (committed->empty()) {
      return Failed(
          out, absl::NotFoundError(absl::StrCat("group ", group, " has no committed offsets for ",
                                                absl::StrJoin(topics, ", "),
                                                " (is it the job's group? see --group)")));
    }
    // Each committed offset must still be on the broker, as offsets set demands.
    for (const auto& [tp, offset] : *committed) {
      auto wm = (*consumer)->QueryWatermarks(tp.first, tp.second, g.kafka_timeout);
      if (!wm.ok()) return Failed(out, wm.status());
      if (offset < wm->first || offset > wm->second) {
        return Failed(out, absl::OutOfRangeError(absl::StrCat(
                               "group ", group, " committed ", offset, " for ", tp.first, " [",
                               tp.second, "], but the broker holds ", wm->first, " to ", wm->second,
                               ": set that partition with offsets set --to-earliest")));
      }
    }
    auto store = OpenWrite(g, g.job);
    if (!store.ok()) return Failed(out, store.status());
    PendingBatch batch = (*store)->NewBatch();
    Value imported(rapidjson::kArrayType);
    Value missing(rapidjson::kArrayType);
    for (const auto& tp : partitions) {
      auto it = committed->find(tp);
      Value e(rapidjson::kObjectType);
      out.Set(&e, "topic", out.Str(tp.first));
      out.Set(&e, "partition", Value(tp.second));
      if (it == committed->end()) {
        missing.PushBack(e, out.alloc());
        out.text() << g.job << ": " << tp.first << " [" << tp.second
                   << "] no committed offset (starts at kafka.auto_offset_reset)\n";
        continue;
      }
      auto prev = (*store)->GetOffset(tp.first, tp.second);
      if (!prev.ok()) return Failed(out, prev.status());
      absl::Status s = batch.SetOffset(tp.first, tp.second, it->second);
      if (!s.ok()) return Failed(out, s);
      out.Set(&e, "previous", prev->has_value() ? Value(static_cast<int64_t>(**prev)) : Null());
      out.Set(&e, "offset", Value(static_cast<int64_t>(it->second)));
      imported.PushBack(e, out.alloc());
      out.text() << g.job << ": " << tp.first << " [" << tp.second << "] "
                 << (prev->has_value() ? absl::StrCat(**prev) : std::string("(none)")) << " -> "
                 << it->second << "\n";
    }
    auto c = (*store)->Commit(std::move(batch));
    absl::Status s = c.ok() ? (*store)->Close() : c.status();
    if (!s.ok()) return Failed(out, s);
    out.Set("job", out.Str(g.job));
    out.Set("group", out.Str(group));
    out.Set("imported", std::move(imported));
    out.Set("missing", std::move(missing));
    return kExitOk;
  }

 private:
  ImportGroupArgs args_;
};

}  // namespace

void RegisterOffsetsCommands(CommandRegistry* r) {
  r->AddGroup("offsets", "the next offset per topic partition");
  r->Add(std::make_unique<OffsetsShowCommand>());
  r->Add(std::make_unique<OffsetsSetCommand>());
  r->Add(std::make_unique<OffsetsDeleteCommand>());
  r->Add(std::make_unique<OffsetsImportGroupCommand>());
}

}  // namespace rtdw::cli
