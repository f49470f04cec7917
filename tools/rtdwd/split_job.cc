#include "tools/rtdwd/split_job.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/backoff.h"
#include "core/engine/batch_transaction.h"
#include "core/status_util.h"
#include "spdlog/spdlog.h"
#include "tools/rtdwd/job_common.h"

namespace rtdw {

SplitJobRunner::SplitJobRunner(const Config& config, SplitJobSettings settings,
                               std::unique_ptr<SplitStep> step, MetricsRegistry* metrics)
    : config_(config),
      settings_(std::move(settings)),
      step_(std::move(step)),
      metrics_(metrics),
      lag_(metrics, settings_.job),
      pipeline_metrics_(metrics, settings_.job),
      problem_(settings_.job),
      group_mode_(config.kafka.group.has_value()) {}

bool SplitJobRunner::AssignmentLost() const {
  return consumer_ != nullptr && consumer_->AssignmentLost();
}

absl::Status SplitJobRunner::Rewind(const std::map<TopicPartition, int64_t>& first) {
  return consumer_->Seek(first, std::chrono::milliseconds(5000));
}

void SplitJobRunner::Committed(const std::map<TopicPartition, int64_t>& next) {
  consumer_->CommitAsync(next);
  if (group_mode_) {
    for (const auto& [tp, offset] : next) owned_next_[tp] = offset;
  }
  lag_.Committed(next);
  lag_.Update(consumer_->HighWatermarks());
}

SplitJobRunner::~SplitJobRunner() {
  // Leaving the group runs OnRevoked, which needs this object whole: close before members go.
  if (consumer_) consumer_->Close();
}

void SplitJobRunner::SetProblem(std::string problem) { problem_.Set(std::move(problem)); }

std::string SplitJobRunner::HealthProblem() const { return problem_.Get(); }

absl::Status SplitJobRunner::Start() {
  auto store = OpenJobStore(config_, settings_.job);
  if (!store.ok()) return store.status();
  store_ = std::move(*store);

  auto producer = KafkaProducer::Create(JobProducerOptions(config_, settings_.job));
  if (!producer.ok()) return producer.status();
  producer_ = std::move(*producer);

  // The prefetch bound is JobConsumerOptions' (a tight one caps the rate: 1 M log-split records
  // ran at 31-34k/s with 20000 messages / 16 MB, 121k/s with librdkafka's defaults).
  KafkaConsumerOptions co = JobConsumerOptions(config_, settings_.job);
  auto consumer = KafkaConsumer::Create(co);
  if (!consumer.ok()) return consumer.status();
  consumer_ = std::move(*consumer);

  ProducePipelineOptions po;
  po.job = settings_.job;
  po.dead_letter_topic = settings_.dead_letter_topic;
  po.group_mode = group_mode_;
  po.revoke_timeout =
      std::chrono::duration_cast<std::chrono::milliseconds>(config_.kafka.revoke_timeout);
  po.delivery_timeout = kDeliveryTimeout;
  pipeline_ = std::make_unique<ProducePipeline>(std::move(po), producer_.get(), store_.get(),
                                                step_.get(), static_cast<ConsumerControl*>(this),
                                                &stop_, &pipeline_metrics_, &problem_);
  if (auto st = pipeline_->Init(); !st.ok()) return st;
  spdlog::info("{}: store {} ({}), source {}", settings_.job, store_->path(),
               store_->created() ? "created" : "opened", settings_.source_topic);
  return TryAssign();
}

absl::Status SplitJobRunner::TryAssign() {
  RTDW_ASSIGN_OR_RETURN(
      Assignment assignment,
      AssignSources(*consumer_, *store_, config_, settings_.job, {settings_.source_topic},
                    /*co_partitioned=*/false, group_mode_ ? this : nullptr, lag_,
                    [this](std::string problem) { SetProblem(std::move(problem)); }));
  // A topic that does not exist counts as empty.
  caught_up_ = assignment == Assignment::kTopicMissing;
  assigned_ = assignment == Assignment::kAssigned;
  return absl::OkStatus();
}

absl::StatusOr<std::vector<PartitionStart>> SplitJobRunner::OnAssigned(
    const std::vector<TopicPartition>& partitions) {
  RTDW_ASSIGN_OR_RETURN(
      auto committed, GroupCommitted(
                          *consumer_, partitions, [this] { return stop_.stopping(); },
                          [this](std::string_view problem) { SetProblem(std::string(problem)); }));
  // The group's offset is the truth: this daemon's own stored offset of the partition may be
  // behind (another member moved on) or ahead of it (never: commits follow the store's).
  std::vector<PartitionStart> starts;
  for (const auto& [topic, p] : partitions) {
    std::optional<int64_t> known;
    if (auto it = committed.find({topic, p}); it != committed.end()) known = it->second;
    RTDW_ASSIGN_OR_RETURN(PartitionStart start,
                          StartOf(config_, topic, p, known, "committed offset in the group"));
    starts.push_back(start);
  }
  lag_.Assigned(starts);
  step_->Assigned(partitions);
  caught_up_ = false;
  SetProblem("");
  spdlog::info("{}: group gives {} partitions of {}", settings_.job, partitions.size(),
               settings_.source_topic);
  return starts;
}

void SplitJobRunner::OnRevoked(const std::vector<TopicPartition>& partitions) {
  // The batch being polled is dropped by Poll (read again by the next owner). The one in flight
  // is committed when its acknowledgements come within kafka.revoke_timeout, otherwise dropped
  // (fenced): the rebalance never waits longer, and never on Redis (ProducePipeline::Revoke).
  // Then the hand-over offsets go to the group, unless the assignment was already lost (the
  // group has moved on: a commit would be refused, or put an older offset over the new owner's).
  const auto revoke_timeout =
      std::chrono::duration_cast<std::chrono::milliseconds>(config_.kafka.revoke_timeout);
  const bool lost = consumer_->AssignmentLost();
  if (pipeline_) pipeline_->Revoke(lost);
  std::map<TopicPartition, int64_t> offsets;
  for (const auto& tp : partitions) {
    if (auto it = owned_next_.find(tp); it != owned_next_.end()) offsets.insert(*it);
    owned_next_.erase(tp);
  }
  step_->Revoked(partitions);
  if (lost) {
    spdlog::warn("{}: group took {} partitions away (assignment lost): no hand-over commit",
                 settings_.job, partitions.size());
  } else if (auto st = consumer_->CommitSync(offsets, stop_.Bound(revoke_timeout)); !st.ok()) {
    spdlog::warn("{}: hand-over commit failed ({}); the next owner starts at the last one",
                 settings_.job, std::string(st.message()));
  }
  spdlog::info("{}: group takes away {} partitions", settings_.job, partitions.size());
  lag_.Assigned({});
}

absl::StatusOr<size_t> SplitJobRunner::RunOnce() {
  if (pipeline_->abandoned()) {
    // Waiting for the daemon to stop this job (its stop has begun): see
    // ProducePipeline::abandoned().
    SleepUnlessCancelled(std::chrono::milliseconds(50), stop_.cancelled_flag());
    return size_t{0};
  }
  if (!assigned_) {
    if (auto st = TryAssign(); !st.ok()) return st;
    if (!assigned_) {
      SleepUnlessCancelled(std::chrono::milliseconds(500), stop_.stopping_flag());
      return 0;
    }
  }
  // The state disk is (nearly) full: read and produce nothing until a batch could commit, so
  // that a long disk outage does not put one batch into the DWD topics per retry.
  if (!pipeline_->in_flight() &&
      !space_.Open(*store_, [this](std::string problem) { SetProblem(std::move(problem)); })) {
    lag_.Update(consumer_->HighWatermarks());  // the input still grows while it waits
    SleepUnlessCancelled(std::chrono::milliseconds(500), stop_.stopping_flag());
    return size_t{0};
  }
  const int slot = pipeline_->FreeSlot();
  ConsumedBatch& batch = batches_[slot];
  batch.Clear();
  const auto polled_at = std::chrono::steady_clock::now();
  // With a batch in flight, wait only briefly for the next one: when the source is quiet, the
  // batch in flight is committed now rather than after the whole batch window.
  const auto wait = pipeline_->in_flight() ? std::min(settings_.batch_max_ms, kPipelinedPollWait)
                                           : settings_.batch_max_ms;
  absl::Status polled =
      consumer_->Poll(static_cast<size_t>(settings_.batch_max_records), wait, &batch);
  if (absl::IsOutOfRange(polled)) {
    metrics_
        ->GetCounter("rtdw_offset_lost_total", "Stored offsets the broker no longer has",
                     {{"job", settings_.job}})
        ->Add();
    return polled;  // Stop() still commits the batch in flight
  }
  if (!polled.ok() || batch.empty()) {
    batch.Clear();
    if (pipeline_->in_flight()) {
      if (auto st = pipeline_->CommitInFlight(); !st.ok()) return st;
      if (!polled.ok()) SetProblem(std::string(polled.message()));
      return size_t{0};  // caught_up_ is decided by the next empty poll
    }
    if (!polled.ok()) {
      SetProblem(std::string(polled.message()));
      return size_t{0};
    }
    bool at_end = consumer_->VerifiedAtEnd();
    if (!group_mode_) {
      // Partitions added while running (NewPartitionWatch).
      auto grown = new_partitions_.Grown(*consumer_, *store_, settings_.job,
                                         {settings_.source_topic}, at_end, caught_up_.load());
      if (!grown.ok()) return grown.status();
      if (!grown->empty()) {
        assigned_ = false;  // the next RunOnce assigns again, with the new partitions
        at_end = false;
      }
    }
    caught_up_ = at_end;
    lag_.Update(consumer_->HighWatermarks(), caught_up_);
    return size_t{0};
  }
  caught_up_ = false;
  const size_t n = batch.size();
  if (auto st = pipeline_->Run(slot, batch.records(), polled_at); !st.ok()) return st;
  return n;
}

absl::Status SplitJobRunner::Stop() {
  stop_.Begin(std::chrono::steady_clock::now() + config_.shutdown.timeout);  // if not begun yet
  const auto deadline = stop_.deadline();
  // The batch in flight: committed once all of it is acknowledged (until the deadline);
  // otherwise left to be re-read after the restart.
  if (pipeline_) {
    pipeline_->FinishAtStop();
    given_up_ = pipeline_->given_up();
    if (pipeline_->abandoned()) {
      spdlog::warn("{}: the last batch was not committed (it is read again at the next start): {}",
                   settings_.job, given_up_);
    }
  }
  // What is still queued belongs to batches that were not committed: dropped.
  if (producer_) {
    if (auto st = producer_->Close(deadline, stop_.cancelled_flag()); !st.ok()) {
      spdlog::info("{}: producer closed with records not acknowledged: {}", settings_.job,
                   std::string(st.message()));
    }
  }
  // Group mode: leaving the group revokes the partitions (OnRevoked commits the hand-over). An
  // unreachable coordinator is not waited for past the deadline.
  if (consumer_) {
    if (auto st = consumer_->Close(deadline); !st.ok()) {
      if (group_mode_) {
        given_up_ =
            absl::StrCat(given_up_, given_up_.empty() ? "" : "; ", "did not leave consumer group ",
                         *config_.kafka.group, ".", settings_.job, " (", std::string(st.message()),
                         "): its partitions move after session.timeout.ms");
      } else {
        spdlog::debug("{}: {}", settings_.job, std::string(st.message()));
      }
    }
  }
  // The clients go now, within the stop (a client librdkafka cannot destroy in time is left
  // behind: connectors/kafka/destroy.h). The polled batches go before their consumer, the
  // producer before the pipeline (its delivery groups), the pipeline (its pending batch) before
  // the store closes.
  for (ConsumedBatch& batch : batches_) batch.Clear();
  consumer_.reset();
  producer_.reset();
  pipeline_.reset();
  if (store_) return store_->Close();
  return absl::OkStatus();
}

}  // namespace rtdw
