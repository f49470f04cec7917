// db-split on the split-job loop: Maxwell CDC -> fact DWD topics and Redis dimension rows
// (docs/FORMATS.md §3). The table lists are re-read from Redis every batch; a batch's dimension
// writes are applied in one MULTI/EXEC before its fact records are produced (so order-wide never
// sees an order before the user row that came ahead of it) and before its offsets commit, so a
// replay converges (last write wins per key, order kept per id).
#include "connectors/redis/redis_client.h"
#include "core/db_split.h"
#include "spdlog/spdlog.h"
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
        redis_(RedisClientOptions{
            config.redis.host, config.redis.port, config.redis.db, config.redis.username,
            config.redis.password ? std::optional<std::string>(config.redis.password->value)
                                  : std::nullopt,
            std::chrono::milliseconds(5000)}),
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
    auto facts = redis_.SMembers(kFactTablesKey);
    if (!facts.ok()) return Fail(facts.status());
    auto dims = redis_.SMembers(kDimTablesKey);
    if (!dims.ok()) return Fail(dims.status());
    tables_ = TableLists::From(facts->value_or(job_.fact_tables), dims->value_or(job_.dim_tables));
    return absl::OkStatus();
  }

  void Process(const InputRecord& record, RecordSink*) override {
    DbSplitResult r = transform_.Process(record, tables_, &buffered_, &writes_);
    if (r.outcome == DbOutcome::kSkippedNoRow || r.outcome == DbOutcome::kSkippedUnknownTable) {
      skipped_->Add();
    }
  }

  absl::Status BeforeFlush(RecordSink* sink) override {
    uint64_t stale = 0;
    absl::Status st = redis_.ApplyAtomically(writes_, &stale);
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
  }

 private:
  absl::Status Fail(absl::Status st) {
    redis_errors_->Add();
    return st;
  }

  const DbSplitJob& job_;
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
  return std::make_unique<SplitJobRunner>(config, settings,
                                          std::make_unique<DbSplitStep>(config, metrics), metrics);
}

}  // namespace rtdw
