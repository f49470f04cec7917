// db-split on the split-job loop: Maxwell CDC -> fact DWD topics and Redis dimension rows
// (docs/FORMATS.md §3). The table lists are re-read from Redis every batch; a batch's dimension
// writes are applied in one Lua script run before its fact records are produced (so order-wide
// never sees an order before the user row that came ahead of it) and before its offsets commit,
// so a replay converges (position-checked: the newest source position wins per key).
//
// Group mode: each partition this member is given is claimed in Redis (INCR of its fence key,
// before the first write of it) and every write batch carries the tokens of its partitions; the
// script refuses the whole batch when a later owner claimed one of them (the runner drops it:
// FencedError).
#include <algorithm>

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
    writes_.clear();
    buffered_.Clear();
    batch_partitions_.clear();
    // Partitions given since the last batch: claimed before anything of them is written.
    for (auto& [tp, token] : tokens_) {
      if (token != 0) continue;
      auto claimed = redis_.ClaimFence(RedisClient::FenceKey(tp.first, tp.second));
      if (!claimed.ok()) return Fail(claimed.status());
      token = *claimed;
      spdlog::info("{}: claimed {}/{} in Redis (fencing token {})", kJobDbSplit, tp.first,
                   tp.second, token);
    }
    auto facts = redis_.SMembers(kFactTablesKey);
    if (!facts.ok()) return Fail(facts.status());
    auto dims = redis_.SMembers(kDimTablesKey);
    if (!dims.ok()) return Fail(dims.status());
    tables_ = TableLists::From(facts->value_or(job_.fact_tables), dims->value_or(job_.dim_tables));
    return absl::OkStatus();
  }

  void Process(const InputRecord& record, RecordSink*) override {
    if (group_mode_ &&
        (batch_partitions_.empty() || batch_partitions_.back().second != record.partition ||
         batch_partitions_.back().first != record.topic)) {
      TopicPartition tp{std::string(record.topic), record.partition};
      if (std::find(batch_partitions_.begin(), batch_partitions_.end(), tp) ==
          batch_partitions_.end()) {
        batch_partitions_.push_back(std::move(tp));
      }
    }
    DbSplitResult r = transform_.Process(record, tables_, &buffered_, &writes_);
    if (r.outcome == DbOutcome::kSkippedNoRow || r.outcome == DbOutcome::kSkippedUnknownTable) {
      skipped_->Add();
    }
  }

  absl::Status BeforeFlush(RecordSink* sink) override {
    std::vector<RedisClient::Fence> fences;
    for (const TopicPartition& tp : batch_partitions_) {
      auto it = tokens_.find(tp);
      if (it == tokens_.end() || it->second == 0) {
        return FencedError(absl::StrCat(tp.first, "/", tp.second, " is not this member's"));
      }
      fences.push_back({RedisClient::FenceKey(tp.first, tp.second), it->second});
    }
    uint64_t stale = 0;
    absl::Status st = redis_.ApplyAtomically(writes_, &stale, fences);
    if (RedisClient::IsFencedRejection(st)) return FencedError(std::string(st.message()));
    if (!st.ok()) return Fail(st);
    dim_writes_->Add(writes_.size() - stale);
    dim_stale_->Add(stale);
    writes_.clear();
    for (const auto& o : buffered_.outputs) {
      sink->Emit(OutputRecord{o.slot, o.topic, o.key, o.value, o.src, o.idx});
    }
    for (const auto& d : buffered_.dead_letters) {
      sink->DeadLetter(DeadLetterRecord{d.key, d.value, d.reason, d.src});
    }
    buffered_.Clear();
    return absl::OkStatus();
  }

  void AbortBatch() override {
    writes_.clear();
    buffered_.Clear();
    batch_partitions_.clear();
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

  const DbSplitJob& job_;
  const bool group_mode_;
  // Group mode: the partitions this member owns and the fencing token it claimed for each (0:
  // not claimed yet).
  std::map<TopicPartition, int64_t> tokens_;
  std::vector<TopicPartition> batch_partitions_;  // group mode: the batch's, in first-seen order
  RedisClient redis_;
  DbSplitTransform transform_;
  TableLists tables_;
  std::vector<RedisWrite> writes_;
  CollectingSink buffered_;  // the batch's fact records and dead letters, until BeforeFlush
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
