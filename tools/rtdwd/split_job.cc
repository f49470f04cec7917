#include "tools/rtdwd/split_job.h"

#include <charconv>
#include <thread>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "core/backoff.h"
#include "core/engine/batch_transaction.h"
#include "core/status_util.h"
#include "spdlog/spdlog.h"
#include "tools/rtdwd/job_common.h"

namespace rtdw {

// Produces what the transform emits into the current batch's delivery group; remembers the first
// produce error for the batch. Topics are resolved to producer handles once.
class SplitJobRunner::ProducingSink : public RecordSink {
 public:
  ProducingSink(KafkaProducer* producer, std::vector<std::string> slot_topics,
                std::string dead_letter_topic, const JobMetrics* metrics)
      : producer_(producer),
        slot_topics_(std::move(slot_topics)),
        dead_letter_topic_(std::move(dead_letter_topic)),
        metrics_(metrics) {}

  // Resolves the slot and dead-letter topics.
  absl::Status Init() {
    for (const std::string& t : slot_topics_) {
      auto ref = producer_->Topic(t);
      if (!ref.ok()) return ref.status();
      slot_refs_.push_back(*ref);
    }
    auto ref = producer_->Topic(dead_letter_topic_);
    if (!ref.ok()) return ref.status();
    dead_letter_ref_ = *ref;
    return absl::OkStatus();
  }

  // Records produced from now on are counted in `group`.
  void SetGroup(KafkaDeliveryGroup* group) { group_ = group; }

  void Emit(const OutputRecord& record) override {
    KafkaTopicRef topic;
    if (record.topic.empty()) {
      if (record.slot < 0 || record.slot >= static_cast<int>(slot_refs_.size())) {
        Fail(absl::InternalError(absl::StrCat("no topic for output slot ", record.slot)));
        return;
      }
      topic = slot_refs_[record.slot];
    } else {
      auto it = by_name_.find(ToAbsl(record.topic));
      if (it == by_name_.end()) {
        auto ref = producer_->Topic(record.topic);
        if (!ref.ok()) {
          Fail(ref.status());
          return;
        }
        it = by_name_.emplace(std::string(record.topic), *ref).first;
      }
      topic = it->second;
    }
    headers_.clear();
    if (!record.src.empty()) headers_.push_back({kHeaderSrc, record.src});
    if (record.idx >= 0) {
      char* end = std::to_chars(idx_text_, idx_text_ + sizeof idx_text_, record.idx).ptr;
      headers_.push_back({kHeaderIdx, std::string_view(idx_text_, end - idx_text_)});
    }
    Fail(producer_->Produce(topic, record.key, record.value, headers_, -1, group_));
    ++emitted_;
  }

  void DeadLetter(const DeadLetterRecord& record) override {
    headers_.clear();
    headers_.push_back({kHeaderReason, record.reason});
    if (!record.src.empty()) headers_.push_back({kHeaderSrc, record.src});
    Fail(producer_->Produce(dead_letter_ref_, record.key, record.value, headers_, -1, group_));
    // Counted by reason when the batch commits: a batch run again produces its dead letters again.
    auto it = dead_by_reason_.find(record.reason);
    if (it == dead_by_reason_.end()) it = dead_by_reason_.emplace(record.reason, 0).first;
    ++it->second;
    ++dead_;
  }

  absl::Status TakeError() {
    absl::Status st = error_;
    error_ = absl::OkStatus();
    return st;
  }
  uint64_t TakeEmitted() { return std::exchange(emitted_, 0); }
  uint64_t TakeDead() { return std::exchange(dead_, 0); }
  std::map<std::string, uint64_t, std::less<>> TakeDeadByReason() {
    return std::exchange(dead_by_reason_, {});
  }

 private:
  void Fail(absl::Status st) {
    if (!st.ok() && error_.ok()) error_ = std::move(st);
  }

  KafkaProducer* producer_;
  std::vector<std::string> slot_topics_;
  std::string dead_letter_topic_;
  const JobMetrics* metrics_;
  std::vector<KafkaTopicRef> slot_refs_;
  KafkaTopicRef dead_letter_ref_;
  absl::flat_hash_map<std::string, KafkaTopicRef> by_name_;  // db-split's topics by name
  KafkaDeliveryGroup* group_ = nullptr;
  std::vector<KafkaHeader> headers_;
  char idx_text_[16];
  absl::Status error_;
  uint64_t emitted_ = 0;
  uint64_t dead_ = 0;
  std::map<std::string, uint64_t, std::less<>> dead_by_reason_;
};

SplitJobRunner::SplitJobRunner(const Config& config, SplitJobSettings settings,
                               std::unique_ptr<SplitStep> step, MetricsRegistry* metrics)
    : config_(config),
      settings_(std::move(settings)),
      step_(std::move(step)),
      metrics_(metrics),
      lag_(metrics, settings_.job),
      common_(metrics, settings_.job),
      problem_(settings_.job),
      group_mode_(config.kafka.group.has_value()) {
  const Labels job = {{"job", settings_.job}};
  retries_ = metrics_->GetCounter("rtdw_batch_retries_total",
                                  "Batches run again after a produce/Redis failure", job);
  fenced_ = metrics_->GetCounter(
      "rtdw_fenced_batches_total",
      "Batches dropped uncommitted because this member no longer owns their partitions (group "
      "mode: assignment lost, a later owner's Redis fencing token, or a revoke timeout); the "
      "partition's owner reads them again",
      job);
}

absl::Status FencedError(std::string_view why) {
  absl::Status st = absl::AbortedError(why.substr(0, 8) == "fenced: "
                                           ? std::string(why)
                                           : absl::StrCat("fenced: ", std::string(why)));
  st.SetPayload("rtdw/fenced", absl::Cord("1"));
  return st;
}

bool IsFenced(const absl::Status& st) { return st.GetPayload("rtdw/fenced").has_value(); }

namespace {

// RunAlone's answer when, in group mode, it has retried for kafka.revoke_timeout.
absl::Status YieldError(const absl::Status& last) {
  absl::Status st = absl::UnavailableError(
      absl::StrCat("batch failing for kafka.revoke_timeout, polling before the next attempt: ",
                   std::string(last.message())));
  st.SetPayload("rtdw/yield", absl::Cord("1"));
  return st;
}

bool IsYield(const absl::Status& st) { return st.GetPayload("rtdw/yield").has_value(); }

}  // namespace

absl::Status SplitJobRunner::CheckOwnership() const {
  if (group_mode_ && consumer_ != nullptr && consumer_->AssignmentLost()) {
    return FencedError(
        "the group took this member's partitions away (session timeout or "
        "max.poll.interval.ms passed)");
  }
  return absl::OkStatus();
}

std::chrono::milliseconds SplitJobRunner::DeliveryTimeout() const {
  if (!group_mode_) return kDeliveryTimeout;
  return std::min(kDeliveryTimeout, std::max(std::chrono::milliseconds(1000),
                                             std::chrono::duration_cast<std::chrono::milliseconds>(
                                                 config_.kafka.revoke_timeout)));
}

void SplitJobRunner::DropUncommitted(Slot* slot, Slot* behind, const absl::Status& why, Drop kind) {
  // Where each partition reads again: the first offset of the dropped batches (everything before
  // it is committed).
  std::map<TopicPartition, int64_t>& back = rewind_;
  uint64_t batches = 0, records = 0;
  for (Slot* s : {slot, behind}) {
    if (s == nullptr || s->batch.empty()) continue;
    ++batches;
    records += s->batch.size();
    for (const InputRecord& rec : s->batch.records()) {
      auto [it, added] = back.try_emplace({std::string(rec.topic), rec.partition}, rec.offset);
      if (!added) it->second = std::min(it->second, rec.offset);
    }
    s->batch.Clear();
    s->dead_by_reason.clear();
    if (in_flight_ == s) in_flight_ = nullptr;
  }
  step_->AbortBatch();
  if (kind == Drop::kYield) {
    spdlog::info("{}: {} batches ({} records) put back uncommitted, read again after a poll: {}",
                 settings_.job, batches, records, std::string(why.message()));
  } else {
    fenced_->Add(batches);
    spdlog::warn("{}: dropped {} batches ({} records) uncommitted, {}", settings_.job, batches,
                 records, std::string(why.message()));
  }
  // Still assigned (the revoke is delivered by a later poll, or the member owns them again):
  // read them again rather than skip them.
  if (kind == Drop::kFencedAtRevoke) {
    back.clear();
  } else if (auto st = consumer_->Seek(back, std::chrono::milliseconds(5000)); !st.ok()) {
    spdlog::info("{}: after dropping a batch: {}", settings_.job, std::string(st.message()));
  }
  SetProblem(std::string(why.message()));
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

  sink_ = std::make_unique<ProducingSink>(producer_.get(), step_->SlotTopics(),
                                          settings_.dead_letter_topic, &common_);
  if (auto st = sink_->Init(); !st.ok()) return st;
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
  // (fenced): the rebalance never waits longer, and never on Redis. Then the hand-over offsets
  // go to the group, unless the assignment was already lost (the group has moved on: a commit
  // would be refused, or put an older offset over the new owner's).
  const auto revoke_timeout =
      std::chrono::duration_cast<std::chrono::milliseconds>(config_.kafka.revoke_timeout);
  const bool lost = consumer_->AssignmentLost();
  if (in_flight_ != nullptr && !abandoned_) {
    Slot* slot = in_flight_;
    absl::Status st = lost ? CheckOwnership() : AwaitDeliveries(&slot->deliveries, revoke_timeout);
    if (st.ok()) st = CommitBatch(slot);
    if (st.ok()) {
      in_flight_ = nullptr;
    } else {
      DropUncommitted(slot, nullptr,
                      IsFenced(st) ? st
                                   : FencedError(absl::StrCat(
                                         "batch in flight at the revoke not committed within "
                                         "kafka.revoke_timeout (",
                                         config_.kafka.revoke_timeout.count(),
                                         " s): ", std::string(st.message()))),
                      Drop::kFencedAtRevoke);
    }
  }
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
  rewind_.clear();
  if (abandoned_) {
    // Waiting for the daemon to stop this job (its stop has begun): see abandoned_.
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
  if (in_flight_ == nullptr &&
      !space_.Open(*store_, [this](std::string problem) { SetProblem(std::move(problem)); })) {
    lag_.Update(consumer_->HighWatermarks());  // the input still grows while it waits
    SleepUnlessCancelled(std::chrono::milliseconds(500), stop_.stopping_flag());
    return size_t{0};
  }
  Slot* slot = in_flight_ == &slots_[0] ? &slots_[1] : &slots_[0];
  slot->batch.Clear();
  slot->polled_at = std::chrono::steady_clock::now();
  // With a batch in flight, wait only briefly for the next one: when the source is quiet, the
  // batch in flight is committed now rather than after the whole batch window.
  const auto wait = in_flight_ != nullptr ? std::min(settings_.batch_max_ms, kPipelinedPollWait)
                                          : settings_.batch_max_ms;
  absl::Status polled =
      consumer_->Poll(static_cast<size_t>(settings_.batch_max_records), wait, &slot->batch);
  if (absl::IsOutOfRange(polled)) {
    metrics_
        ->GetCounter("rtdw_offset_lost_total", "Stored offsets the broker no longer has",
                     {{"job", settings_.job}})
        ->Add();
    return polled;  // Stop() still commits the batch in flight
  }
  if (!polled.ok() || slot->batch.empty()) {
    slot->batch.Clear();
    if (in_flight_ != nullptr) {
      if (auto st = FinishInFlight(nullptr); !st.ok()) return st;
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
  const size_t n = slot->batch.size();
  absl::Status produced = ProduceBatch(slot);
  if (IsFenced(produced)) {
    DropUncommitted(in_flight_, slot, produced, Drop::kFenced);  // N too: N+1 cannot follow it
    SleepUnlessCancelled(std::chrono::milliseconds(200), stop_.stopping_flag());
    return n;
  }
  if (!produced.ok()) {
    // Batch N+1 failed before all of it was produced: commit N first (it does not depend on
    // N+1), then run N+1 alone until it commits.
    if (in_flight_ != nullptr) {
      if (auto st = FinishInFlight(nullptr); !st.ok()) return st;
      if (abandoned_) return n;
    }
    if (auto st = RunAlone(slot, produced); !st.ok()) {
      if (!IsFenced(st) && !IsYield(st)) return st;
      DropUncommitted(slot, nullptr, st, IsFenced(st) ? Drop::kFenced : Drop::kYield);
    }
    return n;
  }
  // N+1 is produced: N's acknowledgements came back meanwhile; commit N.
  if (in_flight_ != nullptr) {
    if (auto st = FinishInFlight(slot); !st.ok()) return st;
    // On a failure of N, FinishInFlight ran N and then N+1 alone (committed: its batch is
    // cleared) or gave up on a stop: N+1 is not in flight then.
    if (slot->batch.empty() || abandoned_) return n;
  }
  in_flight_ = slot;
  return n;
}

absl::Status SplitJobRunner::ProduceBatch(Slot* slot) {
  // Nothing of a batch whose partitions were taken away is written or produced.
  if (absl::Status owned = CheckOwnership(); !owned.ok()) return owned;
  slot->deliveries.ResetError();
  sink_->SetGroup(&slot->deliveries);
  sink_->TakeEmitted();
  sink_->TakeDead();
  sink_->TakeDeadByReason();
  absl::Status st = step_->BeginBatch();
  if (st.ok()) {
    for (const InputRecord& rec : slot->batch.records()) step_->Process(rec, sink_.get());
    st = step_->BeforeFlush(sink_.get());
  }
  absl::Status produced = sink_->TakeError();
  if (st.ok()) st = produced;
  slot->emitted = sink_->TakeEmitted();
  slot->dead = sink_->TakeDead();
  slot->dead_by_reason = sink_->TakeDeadByReason();
  return st;
}

absl::Status SplitJobRunner::CommitBatch(Slot* slot) {
  const std::map<TopicPartition, int64_t> next = OffsetsOf(slot->batch.records()).next;
  // Offsets of partitions taken away are not committed (the new owner's would be overwritten).
  if (absl::Status owned = CheckOwnership(); !owned.ok()) return owned;
  if (!pending_) pending_.emplace(store_->NewBatch());
  for (const auto& [tp, offset] : next) {
    if (auto s = pending_->SetOffset(tp.first, tp.second, offset); !s.ok()) {
      pending_->Clear();
      return s;
    }
  }
  auto committed = store_->Commit(&*pending_);  // clears it for the next batch
  // The disk said no (full, I/O error): nothing was committed; the caller runs the batch again.
  if (!committed.ok()) return committed.status();
  consumer_->CommitAsync(next);
  if (group_mode_) {
    for (const auto& [tp, offset] : next) owned_next_[tp] = offset;
  }
  common_.records_in->Add(slot->batch.size());
  common_.records_out->Add(slot->emitted);
  common_.dead_letters->Add(slot->dead);
  for (const auto& [reason, count] : slot->dead_by_reason) common_.DeadLetters(reason)->Add(count);
  slot->dead_by_reason.clear();
  common_.batches->Add();
  lag_.Committed(next);
  lag_.Update(consumer_->HighWatermarks());
  common_.batch_seconds->Observe(
      std::chrono::duration<double>(std::chrono::steady_clock::now() - slot->polled_at).count());
  slot->batch.Clear();
  SetProblem("");
  return absl::OkStatus();
}

absl::Status SplitJobRunner::AwaitDeliveries(KafkaDeliveryGroup* group,
                                             std::chrono::milliseconds timeout) {
  absl::Status st = producer_->Await(group, timeout, stop_.stopping_flag());
  // A stop came: the batch may still be acknowledged (and committed) until its deadline.
  if (absl::IsCancelled(st))
    st = producer_->Await(group, stop_.Bound(timeout), stop_.cancelled_flag());
  return st;
}

absl::Status SplitJobRunner::FlushProducer(std::chrono::milliseconds timeout) {
  absl::Status st = producer_->Flush(timeout, stop_.stopping_flag());
  if (absl::IsCancelled(st)) st = producer_->Flush(stop_.Bound(timeout), stop_.cancelled_flag());
  return st;
}

void SplitJobRunner::GiveUp(Slot* slot, Slot* behind, const absl::Status& why) {
  abandoned_ = true;  // not committed: re-read after the restart
  size_t records = slot->batch.size() + (behind != nullptr ? behind->batch.size() : 0);
  given_up_ = absl::StrCat(records, " records read but not committed (", std::string(why.message()),
                           "): read again at the next start");
  slot->batch.Clear();
  if (behind != nullptr) behind->batch.Clear();
}

absl::Status SplitJobRunner::FinishInFlight(Slot* behind) {
  Slot* slot = std::exchange(in_flight_, nullptr);
  if (slot == nullptr) return absl::OkStatus();
  absl::Status st = AwaitDeliveries(&slot->deliveries, DeliveryTimeout());
  if (st.ok()) {
    st = CommitBatch(slot);
    if (st.ok()) return absl::OkStatus();
  }
  if (IsFenced(st)) {
    DropUncommitted(slot, behind, st, Drop::kFenced);
    return absl::OkStatus();
  }
  if (stop_.stopping()) {
    GiveUp(slot, behind, st);
    return absl::OkStatus();
  }
  // N failed: RunAlone waits for everything produced (N+1 too), runs N again alone, then N+1
  // again after it, so that N+1's records stay behind N's in the output topics.
  if (auto s = RunAlone(slot, st); !s.ok()) {
    if (!IsFenced(s) && !IsYield(s)) return s;
    DropUncommitted(slot, behind, s, IsFenced(s) ? Drop::kFenced : Drop::kYield);
    return absl::OkStatus();
  }
  if (behind != nullptr && !abandoned_) {
    if (auto s = RunAlone(behind, absl::OkStatus()); !s.ok()) {
      if (!IsFenced(s) && !IsYield(s)) return s;
      DropUncommitted(behind, nullptr, s, IsFenced(s) ? Drop::kFenced : Drop::kYield);
    }
  }
  return absl::OkStatus();
}

absl::Status SplitJobRunner::RunAlone(Slot* slot, absl::Status failure) {
  const auto since = std::chrono::steady_clock::now();
  // Group mode: a rebalance is served only by a poll; never hold it up longer than a revoke may
  // last (the batch is put back and read again after the poll).
  auto yield_due = [&] {
    return group_mode_ && std::chrono::steady_clock::now() - since >= config_.kafka.revoke_timeout;
  };
  bool check_space = !failure.ok();
  absl::Status last = failure;
  RetryOptions retry;
  retry.backoff = kBatchRetryBackoff;
  retry.stop = [this] { return stop_.stopping(); };
  retry.attempt_once_despite_stop = true;  // the batch in hand still commits when it can
  retry.what = "batch";
  bool yielded = false;
  retry.retryable = [&](const absl::Status& st) {
    if (IsFenced(st)) return false;
    yielded = yield_due();
    return !yielded;
  };
  retry.on_retry = [&](const absl::Status& st, std::chrono::milliseconds delay) {
    // Run the whole batch again: nothing of it was committed.
    step_->AbortBatch();
    retries_->Add();
    SetProblem(absl::StrCat("batch failed, retrying in ", delay.count(),
                            " ms: ", std::string(st.message())));
    // Records of the failed attempt still queued are waited for (and their errors dropped).
    (void)FlushProducer(DeliveryTimeout());
  };
  absl::Status st = RetryUntil(retry, [&]() -> absl::Status {
    if (!failure.ok()) return std::exchange(failure, absl::OkStatus());  // the caller's attempt
    if (std::exchange(check_space, true)) {
      // The commit would be refused: produce again only when it can succeed.
      last = store_->CheckFreeSpace();
      if (!last.ok()) return last;
    }
    last = ProduceBatch(slot);
    if (IsFenced(last)) return last;
    absl::Status flushed = FlushProducer(DeliveryTimeout());
    if (last.ok()) last = flushed;
    if (last.ok()) last = CommitBatch(slot);
    return last;
  });
  if (st.ok() || IsFenced(st)) return st;
  if (!yielded) {
    // A stop (during the wait after `last`): the batch is read again at the next start.
    GiveUp(slot, nullptr, last);
    return absl::OkStatus();
  }
  // Failed for kafka.revoke_timeout: put the batch back and poll.
  step_->AbortBatch();
  retries_->Add();
  if (absl::Status owned = CheckOwnership(); !owned.ok()) return owned;
  (void)FlushProducer(DeliveryTimeout());
  return YieldError(last);
}

absl::Status SplitJobRunner::Stop() {
  stop_.Begin(std::chrono::steady_clock::now() + config_.shutdown.timeout);  // if not begun yet
  const auto deadline = stop_.deadline();
  // The batch in flight: committed once all of it is acknowledged (until the deadline);
  // otherwise left to be re-read after the restart.
  if (in_flight_ != nullptr && !abandoned_ && store_ != nullptr) {
    Slot* slot = std::exchange(in_flight_, nullptr);
    absl::Status st =
        producer_->Await(&slot->deliveries, stop_.Bound(kDeliveryTimeout), stop_.cancelled_flag());
    if (st.ok()) st = CommitBatch(slot);
    if (!st.ok()) GiveUp(slot, nullptr, st);
  }
  if (abandoned_) {
    spdlog::warn("{}: the last batch was not committed (it is read again at the next start): {}",
                 settings_.job, given_up_);
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
  // behind: connectors/kafka/destroy.h).
  consumer_.reset();
  sink_.reset();
  producer_.reset();
  pending_.reset();
  if (store_) return store_->Close();
  return absl::OkStatus();
}

}  // namespace rtdw
