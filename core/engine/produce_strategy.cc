#include "core/engine/produce_strategy.h"

#include <algorithm>
#include <utility>

#include "core/status_util.h"
#include "spdlog/spdlog.h"

namespace rtdw {

ProduceStrategy::ProduceStrategy(ProduceStrategyOptions options, std::unique_ptr<SplitStep> step,
                                 ProducerFactory make_producer)
    : options_(std::move(options)),
      step_(std::move(step)),
      make_producer_(std::move(make_producer)) {}

ProduceStrategy::~ProduceStrategy() {
  // The producer (its last reports) goes before the pipeline (their delivery groups).
  producer_.producer.reset();
  pipeline_.reset();
}

void ProduceStrategy::Attach(RunnerContext* context) {
  ctx_ = context;
  metrics_ = std::make_unique<ProducePipelineMetrics>(ctx_->metrics, ctx_->job);
}

absl::Status ProduceStrategy::Start() {
  RTDW_ASSIGN_OR_RETURN(producer_, make_producer_());
  ProducePipelineOptions po;
  po.job = ctx_->job;
  po.dead_letter_topic = options_.dead_letter_topic;
  po.group_mode = ctx_->group_mode;
  po.revoke_timeout =
      std::chrono::duration_cast<std::chrono::milliseconds>(ctx_->config->kafka.revoke_timeout);
  po.delivery_timeout = options_.delivery_timeout;
  if (options_.retry_backoff) po.retry_backoff = *options_.retry_backoff;
  po.sleeper = options_.sleeper;
  po.fault = options_.fault;
  pipeline_ = std::make_unique<ProducePipeline>(
      std::move(po), producer_.producer.get(), ctx_->store, step_.get(),
      static_cast<ConsumerControl*>(this), ctx_->stop, metrics_.get(), ctx_->problem);
  return pipeline_->Init();
}

bool ProduceStrategy::AssignmentLost() const {
  return ctx_->source != nullptr && ctx_->source->AssignmentLost();
}

absl::Status ProduceStrategy::Rewind(const std::map<TopicPartition, int64_t>& first) {
  return ctx_->source->Seek(first, std::chrono::milliseconds(5000));
}

void ProduceStrategy::Committed(const std::map<TopicPartition, int64_t>& next) {
  if (ctx_->group_mode) {
    for (const auto& [tp, offset] : next) owned_next_[tp] = offset;
  }
  ctx_->Committed(next, /*to_source=*/true);
}

ConsumedBatch* ProduceStrategy::NextBatch() {
  slot_ = pipeline_->FreeSlot();
  return &batches_[slot_];
}

std::chrono::milliseconds ProduceStrategy::PollWait(std::chrono::milliseconds configured) const {
  // With a batch in flight, wait only briefly for the next one: when the source is quiet, the
  // batch in flight is committed now rather than after the whole batch window.
  return pipeline_->in_flight() ? std::min(configured, kPipelinedPollWait) : configured;
}

absl::StatusOr<bool> ProduceStrategy::NothingPolled() {
  if (!pipeline_->in_flight()) return false;
  RTDW_RETURN_IF_ERROR(pipeline_->CommitInFlight());
  return true;
}

DeliveryStrategy::Result ProduceStrategy::Deliver(ConsumedBatch& batch,
                                                  std::chrono::steady_clock::time_point polled_at,
                                                  int attempt) {
  (void)attempt;  // the pipeline retries itself
  absl::Status st = pipeline_->Run(slot_, batch.records(), polled_at);
  return st.ok() ? Result::Done() : Result::Error(std::move(st));
}

absl::StatusOr<std::vector<PartitionStart>> ProduceStrategy::OnAssigned(
    const std::vector<TopicPartition>& partitions,
    const std::map<TopicPartition, int64_t>& committed) {
  // The group's offset is the truth: this daemon's own stored offset of the partition may be
  // behind (another member moved on) or ahead of it (never: commits follow the store's).
  std::vector<PartitionStart> starts;
  for (const auto& [topic, p] : partitions) {
    std::optional<int64_t> known;
    if (auto it = committed.find({topic, p}); it != committed.end()) known = it->second;
    RTDW_ASSIGN_OR_RETURN(PartitionStart start,
                          StartOf(*ctx_->config, topic, p, known, "committed offset in the group"));
    starts.push_back(start);
  }
  step_->Assigned(partitions);
  spdlog::info("{}: group gives {} partitions of {}", ctx_->job, partitions.size(),
               ctx_->source_topics.front());
  return starts;
}

void ProduceStrategy::OnRevoked(const std::vector<TopicPartition>& partitions) {
  // The batch being polled is dropped by Poll (read again by the next owner). The one in flight
  // is committed when its acknowledgements come within kafka.revoke_timeout, otherwise dropped
  // (fenced): the rebalance never waits longer, and never on the step's side effects
  // (ProducePipeline::Revoke). Then the hand-over offsets go to the group, unless the assignment
  // was already lost (the group has moved on: a commit would be refused, or put an older offset
  // over the new owner's).
  const auto revoke_timeout =
      std::chrono::duration_cast<std::chrono::milliseconds>(ctx_->config->kafka.revoke_timeout);
  const bool lost = ctx_->source->AssignmentLost();
  if (pipeline_) pipeline_->Revoke(lost);
  std::map<TopicPartition, int64_t> offsets;
  for (const auto& tp : partitions) {
    if (auto it = owned_next_.find(tp); it != owned_next_.end()) offsets.insert(*it);
    owned_next_.erase(tp);
  }
  step_->Revoked(partitions);
  if (lost) {
    spdlog::warn("{}: group took {} partitions away (assignment lost): no hand-over commit",
                 ctx_->job, partitions.size());
  } else if (auto st = ctx_->source->CommitSync(offsets, ctx_->stop->Bound(revoke_timeout));
             !st.ok()) {
    spdlog::warn("{}: hand-over commit failed ({}); the next owner starts at the last one",
                 ctx_->job, std::string(st.message()));
  }
  spdlog::info("{}: group takes away {} partitions", ctx_->job, partitions.size());
}

void ProduceStrategy::StopBeforeClose() {
  // The batch in flight: committed once all of it is acknowledged (until the deadline);
  // otherwise left to be re-read after the restart.
  if (pipeline_) {
    pipeline_->FinishAtStop();
    given_up_ = pipeline_->given_up();
    if (pipeline_->abandoned()) {
      spdlog::warn("{}: the last batch was not committed (it is read again at the next start): {}",
                   ctx_->job, given_up_);
    }
  }
  // What is still queued belongs to batches that were not committed: dropped.
  if (producer_.close) {
    if (auto st = producer_.close(ctx_->stop->deadline(), ctx_->stop->cancelled_flag()); !st.ok()) {
      spdlog::info("{}: producer closed with records not acknowledged: {}", ctx_->job,
                   std::string(st.message()));
    }
  }
}

void ProduceStrategy::StopAfterClose() {
  // The polled batches go before their source.
  for (ConsumedBatch& batch : batches_) batch.Clear();
}

void ProduceStrategy::Release() {
  // The producer before the pipeline (its delivery groups), the pipeline (its pending batch)
  // before the store closes.
  producer_.producer.reset();
  pipeline_.reset();
}

}  // namespace rtdw
