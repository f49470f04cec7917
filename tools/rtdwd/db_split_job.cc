// db-split on the split-job loop: Maxwell CDC -> fact DWD topics and Redis dimension rows
// (docs/FORMATS.md §3). The table lists are re-read from Redis every batch. A batch's dimension
// writes go to Redis in Lua script runs of kWritesPerRun writes, each sent as soon as it is full
// (RedisClient::SendApply) so that Redis applies them while the job thread transforms the rest
// of the batch; BeforeFlush sends the last run and reads every run's answer, and only when all
// of them applied are the batch's fact records produced (so order-wide never sees an order
// before the user row that came ahead of it) and its offsets committed. Any failed run fails the
// batch, which runs again whole: every write is position-checked (the newest source position
// wins per key), so runs applied before the failure apply nothing twice and a replay converges.
//
// Group mode: each partition this member is given is claimed in Redis (INCR of its fence key,
// before the first write of it) and every run carries the tokens of the batch's partitions seen
// so far (the last run: all of them); the script refuses a run when a later owner claimed one of
// them, and the runner drops the batch (FencedError).
#include <algorithm>
#include <initializer_list>
#include <string>
#include <string_view>

#include "absl/strings/str_cat.h"
#include "connectors/redis/redis_client.h"
#include "core/db_split.h"
#include "spdlog/spdlog.h"
#include "tools/rtdwd/job_common.h"
#include "tools/rtdwd/jobs.h"
#include "tools/rtdwd/split_job.h"

namespace rtdw {
namespace {

constexpr char kFactTablesKey[] = "FACT:TABLES";
constexpr char kDimTablesKey[] = "DIM:TABLES";

// The batch's fact records and dead letters, held until its dimension writes are applied, then
// handed on in the order they came. Their bytes go to one buffer kept between batches: no
// allocation per record once it has grown to a batch's size.
class HeldRecords : public RecordSink {
 public:
  void Emit(const OutputRecord& r) override {
    Hold(false, r.slot, r.idx, {r.topic, r.key, r.value, r.src});
  }
  void DeadLetter(const DeadLetterRecord& d) override {
    Hold(true, -1, -1, {d.key, d.value, d.reason, d.src});
  }
  void Clear() {
    bytes_.clear();
    held_.clear();
  }
  void HandTo(RecordSink* sink) const {
    for (const Held& h : held_) {
      std::string_view part[4];
      size_t at = h.at;
      for (int i = 0; i < 4; ++i) {
        part[i] = std::string_view(bytes_).substr(at, h.len[i]);
        at += h.len[i];
      }
      if (h.dead) {
        sink->DeadLetter(DeadLetterRecord{part[0], part[1], part[2], part[3]});
      } else {
        sink->Emit(OutputRecord{h.slot, part[0], part[1], part[2], part[3], h.idx});
      }
    }
  }

 private:
  struct Held {
    bool dead;
    int slot;
    int idx;
    size_t at;      // where its parts start in bytes_
    size_t len[4];  // output: topic, key, value, src; dead letter: key, value, reason, src
  };
  void Hold(bool dead, int slot, int idx, std::initializer_list<std::string_view> parts) {
    Held h{dead, slot, idx, bytes_.size(), {}};
    int i = 0;
    for (std::string_view p : parts) {
      h.len[i++] = p.size();
      bytes_.append(p);
    }
    held_.push_back(h);
  }

  std::string bytes_;
  std::vector<Held> held_;
};

class DbSplitStep : public SplitStep {
 public:
  DbSplitStep(const Config& config, MetricsRegistry* metrics)
      : job_(config.jobs.db_split),
        group_mode_(config.kafka.group.has_value()),
        redis_(JobRedisClientOptions(config)),
        transform_(DbSplitOptions{
            std::string(kJobDbSplit), 0, 64, {{"order_detail", "order_id"}}, nullptr}),
        redis_errors_(metrics->GetCounter("rtdw_redis_errors_total", "Failed Redis calls",
                                          {{"job", std::string(kJobDbSplit)}})),
        skipped_(metrics->GetCounter("rtdw_records_skipped_total",
                                     "Records without a row (bootstrap markers, DDL) or of "
                                     "unknown tables",
                                     {{"job", std::string(kJobDbSplit)}})),
        dim_writes_(metrics->GetCounter("rtdw_redis_dim_writes_total",
                                        "Dimension rows written to / deleted from Redis",
                                        {{"job", std::string(kJobDbSplit)}})),
        dim_stale_(metrics->GetCounter(
            "rtdw_redis_dim_stale_total",
            "Dimension writes skipped: Redis holds a row from a newer source position",
            {{"job", std::string(kJobDbSplit)}})) {}

  absl::Status BeginBatch() override {
    AbortBatch();
    // Partitions given since the last batch: claimed before anything of them is written.
    for (auto& [tp, token] : tokens_) {
      if (token != 0) continue;
      auto claimed = redis_.ClaimFence(RedisClient::FenceKey(tp.first, tp.second));
      if (!claimed.ok()) return Fail(claimed.status());
      token = *claimed;
      spdlog::info("{}: claimed {}/{} in Redis (fencing token {})", kJobDbSplit, tp.first,
                   tp.second, token);
    }
    auto lists = redis_.SMembersOf({kFactTablesKey, kDimTablesKey});  // one round trip
    if (!lists.ok()) return Fail(lists.status());
    tables_ = TableLists::From((*lists)[0].value_or(job_.fact_tables),
                               (*lists)[1].value_or(job_.dim_tables));
    return absl::OkStatus();
  }

  void Process(const InputRecord& record, RecordSink*) override {
    if (group_mode_ &&
        (batch_partitions_.empty() || batch_partitions_.back().second != record.partition ||
         batch_partitions_.back().first != record.topic)) {
      TopicPartition tp{std::string(record.topic), record.partition};
      if (std::find(batch_partitions_.begin(), batch_partitions_.end(), tp) ==
          batch_partitions_.end()) {
        AddFence(tp);
        batch_partitions_.push_back(std::move(tp));
      }
    }
    DbSplitResult r = transform_.Process(record, tables_, &buffered_, &writes_);
    if (r.outcome == DbOutcome::kSkippedNoRow || r.outcome == DbOutcome::kSkippedUnknownTable) {
      skipped_->Add();
    }
    if (writes_.size() >= kWritesPerRun) SendWrites();
  }

  absl::Status BeforeFlush(RecordSink* sink) override {
    // The last run carries the batch's fences even without writes: ownership is checked once
    // more after the whole batch.
    SendWrites();
    uint64_t stale = 0;
    absl::Status st = redis_.FinishApplies(&stale);  // every run's answer, read in any case
    if (!fence_error_.ok()) return fence_error_;
    if (RedisClient::IsFencedRejection(st)) return FencedError(std::string(st.message()));
    if (!st.ok()) return Fail(st);
    dim_writes_->Add(sent_writes_ - stale);
    dim_stale_->Add(stale);
    sent_writes_ = 0;
    // Only now, every dimension write of the batch applied, its facts go out.
    buffered_.HandTo(sink);
    buffered_.Clear();
    return absl::OkStatus();
  }

  void AbortBatch() override {
    (void)redis_.FinishApplies();  // answers of a batch given up (none after BeforeFlush)
    writes_.clear();
    sent_writes_ = 0;
    buffered_.Clear();
    batch_partitions_.clear();
    fences_.clear();
    fence_error_ = absl::OkStatus();
  }

  void Assigned(const std::vector<TopicPartition>& partitions) override {
    for (const auto& tp : partitions) tokens_[tp] = 0;  // claimed by the next BeginBatch
  }
  void Revoked(const std::vector<TopicPartition>& partitions) override {
    for (const auto& tp : partitions) tokens_.erase(tp);
  }

 private:
  absl::Status Fail(absl::Status st) {
    redis_errors_->Add();
    return st;
  }

  // A partition of the batch: its fencing token goes with every later run of its writes; a
  // partition this member does not own fails the batch (nothing more of it is written).
  void AddFence(const TopicPartition& tp) {
    auto it = tokens_.find(tp);
    if (it == tokens_.end() || it->second == 0) {
      if (fence_error_.ok()) {
        fence_error_ = FencedError(absl::StrCat(tp.first, "/", tp.second, " is not this member's"));
      }
      return;
    }
    fences_.push_back({RedisClient::FenceKey(tp.first, tp.second), it->second});
  }

  // Sends the writes made so far as one script run, without waiting for its answer (Redis runs
  // it while the next records are transformed); BeforeFlush reads the answers.
  void SendWrites() {
    if (fence_error_.ok()) {
      sent_writes_ += writes_.size();
      (void)redis_.SendApply(writes_, fences_);  // a failure is FinishApplies()'s answer
    }
    writes_.clear();
  }

  // Dimension writes per script run: a batch's writes are sent while it is transformed, so that
  // only the last run's remains on the job thread's path at BeforeFlush.
  static constexpr size_t kWritesPerRun = 256;

  const DbSplitJob& job_;
  const bool group_mode_;
  // Group mode: the partitions this member owns and the fencing token it claimed for each (0:
  // not claimed yet).
  std::map<TopicPartition, int64_t> tokens_;
  std::vector<TopicPartition> batch_partitions_;  // group mode: the batch's, in first-seen order
  RedisClient redis_;
  DbSplitTransform transform_;
  TableLists tables_;
  std::vector<RedisWrite> writes_;          // not sent yet
  uint64_t sent_writes_ = 0;                // sent in this batch's runs
  std::vector<RedisClient::Fence> fences_;  // group mode: the batch's partitions' tokens
  absl::Status fence_error_;                // a partition of the batch is not this member's
  HeldRecords buffered_;  // the batch's fact records and dead letters, until BeforeFlush
  Counter* redis_errors_;
  Counter* skipped_;
  Counter* dim_writes_;
  Counter* dim_stale_;
};

}  // namespace

std::unique_ptr<JobRunner> MakeDbSplitRunner(const Config& config, MetricsRegistry* metrics) {
  const DbSplitJob& job = config.jobs.db_split;
  SplitJobSettings settings{std::string(kJobDbSplit), job.source_topic, job.dead_letter_topic,
                            job.batch_max_records, job.batch_max_ms};
  return MakeSplitRunner(config, settings, std::make_unique<DbSplitStep>(config, metrics), metrics);
}

}  // namespace rtdw
