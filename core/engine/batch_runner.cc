#include "core/engine/batch_runner.h"

#include <algorithm>
#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/engine/job_store.h"
#include "core/status_util.h"
#include "spdlog/spdlog.h"

namespace rtdw {

void RunnerContext::Committed(const std::map<TopicPartition, int64_t>& next, bool to_source) const {
  if (to_source) source->CommitAsync(next);
  lag->Committed(next);
  lag->Update(source->HighWatermarks());
}

BatchRunner::BatchRunner(const Config& config, BatchRunnerOptions options,
                         std::unique_ptr<DeliveryStrategy> strategy, SourceFactory source,
                         MetricsRegistry* metrics, StoreOpener open_store)
    : config_(config),
      options_(std::move(options)),
      group_mode_(config.kafka.group.has_value()),
      lag_(metrics, options_.job),
      problem_(options_.job),
      offset_lost_(metrics->GetCounter("rtdw_offset_lost_total",
                                       "Stored offsets the broker no longer has",
                                       {{"job", options_.job}})),
      source_metrics_{.fetch_wakes = metrics->GetCounter(
                          "rtdw_kafka_fetch_wakes_total",
                          "Wakes of librdkafka's fetcher the job's consumer sent (one ListOffsets "
                          "request per partition leader each)",
                          {{"job", options_.job}})},
      open_store_(std::move(open_store)),
      make_source_(std::move(source)),
      strategy_(std::move(strategy)) {
  if (!open_store_) {
    open_store_ = [this] { return OpenJobStore(config_, options_.job); };
  }
  context_.config = &config_;
  context_.job = options_.job;
  context_.source_topics = options_.source_topics;
  context_.group_mode = group_mode_;
  context_.metrics = metrics;
  context_.stop = &stop_;
  context_.problem = &problem_;
  context_.lag = &lag_;
  strategy_->Attach(&context_);
}

BatchRunner::~BatchRunner() {
  Cancel();
  // Leaving the group runs OnRevoked, which needs the strategy whole: close before members go.
  if (source_) source_->Close();
}

void BatchRunner::BeginStop(std::chrono::steady_clock::time_point deadline) {
  JobRunner::BeginStop(deadline);
  strategy_->Wake();
}

void BatchRunner::Cancel() {
  JobRunner::Cancel();
  strategy_->Cancel();
}

std::string BatchRunner::HealthProblem() const {
  std::string p = problem_.Get();
  return p.empty() ? strategy_->HealthProblem() : p;
}

bool BatchRunner::CaughtUp() const { return at_end_.load() && strategy_->Drained(); }

absl::Status BatchRunner::Start() {
  RTDW_ASSIGN_OR_RETURN(store_, open_store_());
  context_.store = store_.get();
  RTDW_RETURN_IF_ERROR(strategy_->Start());
  RTDW_ASSIGN_OR_RETURN(source_, make_source_(source_metrics_));
  context_.source = source_.get();
  spdlog::info("{}: store {} ({}), source{} {}", options_.job, store_->path(),
               store_->created() ? "created" : "opened",
               options_.source_topics.size() == 1 ? "" : "s",
               absl::StrJoin(options_.source_topics, ","));
  return TryAssign();
}

absl::Status BatchRunner::TryAssign() {
  RTDW_ASSIGN_OR_RETURN(
      Assignment assignment,
      AssignSources(*source_, *store_, config_, options_.job, options_.source_topics,
                    options_.co_partitioned, group_mode_ ? this : nullptr, lag_,
                    [this](std::string problem) { problem_.Set(std::move(problem)); }));
  // A topic that does not exist counts as empty.
  at_end_ = assignment == Assignment::kTopicMissing;
  assigned_ = assignment == Assignment::kAssigned;
  // Group mode: ownership is checked from the subscription on (OnAssigned runs in a later poll).
  if (assigned_) strategy_->SourcesAssigned();
  return absl::OkStatus();
}

absl::StatusOr<size_t> BatchRunner::RunOnce() {
  if (strategy_->Abandoned()) {
    // Waiting for the daemon to stop this job (its stop has begun).
    SleepUnlessCancelled(std::chrono::milliseconds(50), stop_.cancelled_flag());
    return size_t{0};
  }
  if (!assigned_) {
    RTDW_RETURN_IF_ERROR(TryAssign());
    if (!assigned_) {
      SleepUnlessCancelled(std::chrono::milliseconds(500), stop_.stopping_flag());
      return size_t{0};
    }
  }
  // The state disk is (nearly) full: read (and produce) nothing until a batch could commit, so
  // that a long disk outage does not read one batch per retry. A batch in flight may still
  // commit.
  if (!strategy_->Holding() &&
      !space_.Open(*store_, [this](std::string problem) { problem_.Set(std::move(problem)); })) {
    lag_.Update(source_->HighWatermarks());  // the input still grows while it waits
    SleepUnlessCancelled(std::chrono::milliseconds(500), stop_.stopping_flag());
    return size_t{0};
  }
  // Back-pressure (a full journal backlog pauses polling).
  if (!strategy_->MayPoll()) {
    lag_.Update(source_->HighWatermarks());  // the input still grows while paused
    return size_t{0};
  }
  ConsumedBatch* batch = strategy_->NextBatch();
  batch->Clear();
  const auto polled_at = std::chrono::steady_clock::now();
  absl::Status polled = source_->Poll(static_cast<size_t>(options_.batch_max_records),
                                      strategy_->PollWait(options_.batch_max_ms), batch);
  if (absl::IsOutOfRange(polled)) {
    offset_lost_->Add();
    return polled;  // the stop still finishes what is in flight
  }
  if (polled.ok()) strategy_->Polled(*batch);
  if (!polled.ok() || batch->empty()) {
    batch->Clear();
    RTDW_ASSIGN_OR_RETURN(bool finished, strategy_->NothingPolled());
    if (!polled.ok()) {
      problem_.Set(std::string(polled.message()));
      return size_t{0};
    }
    if (finished) return size_t{0};  // "caught up" is decided by the next empty poll
    bool at_end = source_->VerifiedAtEnd();
    if (!group_mode_ && PickUpNewPartitions(at_end)) at_end = false;
    at_end_ = at_end;
    lag_.Update(source_->HighWatermarks(), at_end);
    return size_t{0};
  }
  at_end_ = false;  // confirmed by the next empty poll (VerifiedAtEnd)
  const size_t n = batch->size();
  RTDW_RETURN_IF_ERROR(DeliverBatch(*batch, polled_at));
  return n;
}

absl::Status BatchRunner::DeliverBatch(ConsumedBatch& batch,
                                       std::chrono::steady_clock::time_point polled_at) {
  bool permanent = false;
  int attempt = 0;
  RetryOptions retry;
  retry.backoff = options_.retry_backoff;
  retry.sleeper = options_.sleeper;
  retry.stop = [this] { return stop_.stopping(); };
  retry.what = "batch commit";
  retry.attempt_once_despite_stop = true;  // a batch in hand still commits when it can
  retry.retryable = [&](const absl::Status&) { return !permanent; };
  retry.on_retry = [this](const absl::Status& st, std::chrono::milliseconds delay) {
    problem_.Set(absl::StrCat("batch not committed, retrying in ", delay.count(),
                              " ms: ", std::string(st.message())));
    lag_.Update(source_->HighWatermarks());  // the input still grows while this batch waits
  };
  absl::Status last;
  absl::Status st = RetryUntil(retry, [&]() -> absl::Status {
    DeliveryStrategy::Result r = strategy_->Deliver(batch, polled_at, attempt++);
    if (r.outcome == DeliveryStrategy::Outcome::kDone) return absl::OkStatus();
    if (r.outcome == DeliveryStrategy::Outcome::kError) permanent = true;
    if (r.status.ok()) r.status = absl::InternalError("delivery failed without a reason");
    last = r.status;
    return r.status;
  });
  if (st.ok() || permanent) return st;
  // A stop: the batch is read again at the next start.
  batch_given_up_ = absl::StrCat("a batch of ", batch.size(), " records read but not committed (",
                                 std::string((last.ok() ? st : last).message()),
                                 "): read again at the next start");
  batch.Clear();
  return absl::OkStatus();
}

bool BatchRunner::PickUpNewPartitions(bool at_end) {
  auto grown = new_partitions_.Grown(*source_, *store_, options_.job, options_.source_topics,
                                     at_end, at_end_.load());
  if (!grown.ok()) {
    // A Kafka hiccup never stops the daemon: asked again at the next check.
    problem_.Set(
        absl::StrCat("checking for new partitions: ", std::string(grown.status().message())));
    return false;
  }
  if (grown->empty()) return false;
  if (options_.co_partitioned) {
    std::set<int> counts;
    for (const auto& topic : options_.source_topics) {
      auto n = source_->PartitionCount(topic, std::chrono::seconds(5));
      if (n.ok()) counts.insert(*n);
    }
    if (counts.size() != 1) {
      problem_.Set(absl::StrCat("partitions were added to ", grown->front().first,
                                " but not to every source topic: the join relies on "
                                "co-partitioning; reading the old partitions until they match"));
      return true;  // not at its end: records on the new partitions are unread
    }
  }
  assigned_ = false;  // the next RunOnce assigns again, with the new partitions
  return true;
}

absl::StatusOr<std::vector<PartitionStart>> BatchRunner::OnAssigned(
    const std::vector<TopicPartition>& partitions) {
  RTDW_ASSIGN_OR_RETURN(
      auto committed,
      GroupCommitted(
          *source_, partitions, [this] { return stop_.stopping(); },
          [this](std::string_view problem) { problem_.Set(std::string(problem)); }));
  RTDW_ASSIGN_OR_RETURN(std::vector<PartitionStart> starts,
                        strategy_->OnAssigned(partitions, committed));
  lag_.Assigned(starts);
  at_end_ = false;
  problem_.Set("");
  return starts;
}

void BatchRunner::OnRevoked(const std::vector<TopicPartition>& partitions) {
  strategy_->OnRevoked(partitions);
  lag_.Assigned({});
}

absl::Status BatchRunner::Stop() {
  stop_.Begin(std::chrono::steady_clock::now() + config_.shutdown.timeout);  // if not begun yet
  strategy_->StopBeforeClose();
  // Group mode: leaving the group revokes the partitions (OnRevoked: the strategy finishes and
  // commits the hand-over). An unreachable coordinator is not waited for past the deadline.
  std::string left_group;
  if (source_) {
    if (auto st = source_->Close(stop_.deadline()); !st.ok()) {
      if (group_mode_) {
        left_group = absl::StrCat("did not leave consumer group ", *config_.kafka.group, ".",
                                  options_.job, " (", std::string(st.message()),
                                  "): its partitions move after session.timeout.ms");
      } else {
        spdlog::debug("{}: {}", options_.job, std::string(st.message()));
      }
    }
  }
  strategy_->StopAfterClose();
  // The source goes within the stop (a client that cannot be destroyed in time is left behind:
  // connectors/kafka/destroy.h), after the batches that point into it (StopAfterClose).
  context_.source = nullptr;
  source_.reset();
  strategy_->Release();
  std::vector<std::string> given_up;
  for (std::string part : {strategy_->GivenUp(), batch_given_up_, left_group}) {
    if (!part.empty()) given_up.push_back(std::move(part));
  }
  given_up_ = absl::StrJoin(given_up, "; ");
  if (!store_) return absl::OkStatus();
  context_.store = nullptr;
  absl::Status closed = store_->Close();
  return closed;
}

}  // namespace rtdw
