#include "core/engine/produce_pipeline.h"

#include <algorithm>
#include <charconv>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/cord.h"
#include "absl/strings/str_cat.h"
#include "core/status_util.h"
#include "spdlog/spdlog.h"

namespace rtdw {

// Produces what the step emits into the current batch's delivery group; remembers the first
// produce error for the batch. Topics are resolved to producer handles once.
class ProducePipeline::ProducingSink : public RecordSink {
 public:
  ProducingSink(RecordProducer* producer, std::vector<std::string> slot_topics,
                std::string dead_letter_topic)
      : producer_(producer),
        slot_topics_(std::move(slot_topics)),
        dead_letter_topic_(std::move(dead_letter_topic)) {}

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
  void SetGroup(DeliveryGroup* group) { group_ = group; }

  void Emit(const OutputRecord& record) override {
    ProducerTopic topic;
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

  RecordProducer* producer_;
  std::vector<std::string> slot_topics_;
  std::string dead_letter_topic_;
  std::vector<ProducerTopic> slot_refs_;
  ProducerTopic dead_letter_ref_;
  absl::flat_hash_map<std::string, ProducerTopic> by_name_;  // db-split's topics by name
  DeliveryGroup* group_ = nullptr;
  std::vector<RecordHeader> headers_;
  char idx_text_[16];
  absl::Status error_;
  uint64_t emitted_ = 0;
  uint64_t dead_ = 0;
  std::map<std::string, uint64_t, std::less<>> dead_by_reason_;
};

namespace {

// RunAlone's answer when, in group mode, it has retried for revoke_timeout.
absl::Status YieldError(const absl::Status& last) {
  absl::Status st = absl::UnavailableError(
      absl::StrCat("batch failing for kafka.revoke_timeout, polling before the next attempt: ",
                   std::string(last.message())));
  st.SetPayload("rtdw/yield", absl::Cord("1"));
  return st;
}

bool IsYield(const absl::Status& st) { return st.GetPayload("rtdw/yield").has_value(); }

}  // namespace

ProducePipelineMetrics::ProducePipelineMetrics(MetricsRegistry* registry, const std::string& job)
    : common(registry, job) {
  const Labels labels = {{"job", job}};
  retries = registry->GetCounter("rtdw_batch_retries_total",
                                 "Batches run again after a produce/Redis failure", labels);
  fenced = registry->GetCounter(
      "rtdw_fenced_batches_total",
      "Batches dropped uncommitted because this member no longer owns their partitions (group "
      "mode: assignment lost, a later owner's Redis fencing token, or a revoke timeout); the "
      "partition's owner reads them again",
      labels);
}

ProducePipeline::ProducePipeline(ProducePipelineOptions options, RecordProducer* producer,
                                 StateStore* store, SplitStep* step, ConsumerControl* consumer,
                                 const StopControl* stop, ProducePipelineMetrics* metrics,
                                 JobProblem* problem)
    : options_(std::move(options)),
      producer_(producer),
      store_(store),
      step_(step),
      consumer_(consumer),
      stop_(stop),
      metrics_(metrics),
      problem_(problem),
      sink_(std::make_unique<ProducingSink>(producer, step->SlotTopics(),
                                            options_.dead_letter_topic)) {
  for (int i = 0; i < kSlots; ++i) slots_[i].index = i;
}

ProducePipeline::~ProducePipeline() = default;

absl::Status ProducePipeline::Init() { return sink_->Init(); }

int ProducePipeline::FreeSlot() const { return in_flight_ == &slots_[0] ? 1 : 0; }

void ProducePipeline::Clear(Slot* slot) {
  if (slot->records.empty()) return;
  slot->records = {};
  consumer_->Release(slot->index);
}

absl::Status ProducePipeline::CheckOwnership() const {
  if (options_.group_mode && consumer_->AssignmentLost()) {
    return FencedError(
        "the group took this member's partitions away (session timeout or "
        "max.poll.interval.ms passed)");
  }
  return absl::OkStatus();
}

std::chrono::milliseconds ProducePipeline::DeliveryTimeout() const {
  if (!options_.group_mode) return options_.delivery_timeout;
  return std::min(options_.delivery_timeout,
                  std::max(std::chrono::milliseconds(1000), options_.revoke_timeout));
}

void ProducePipeline::DropUncommitted(Slot* slot, Slot* behind, const absl::Status& why,
                                      Drop kind) {
  // Where each partition reads again: the first offset of the dropped batches (everything before
  // it is committed).
  std::map<TopicPartition, int64_t>& back = rewind_;
  uint64_t batches = 0, records = 0;
  for (Slot* s : {slot, behind}) {
    if (s == nullptr || s->empty()) continue;
    ++batches;
    records += s->records.size();
    for (const auto& [tp, first] : OffsetsOf(s->records).first) {
      auto [it, added] = back.try_emplace(tp, first);
      if (!added) it->second = std::min(it->second, first);
    }
    Clear(s);
    s->dead_by_reason.clear();
    if (in_flight_ == s) in_flight_ = nullptr;
  }
  step_->AbortBatch();
  if (kind == Drop::kYield) {
    spdlog::info("{}: {} batches ({} records) put back uncommitted, read again after a poll: {}",
                 options_.job, batches, records, std::string(why.message()));
  } else {
    metrics_->fenced->Add(batches);
    spdlog::warn("{}: dropped {} batches ({} records) uncommitted, {}", options_.job, batches,
                 records, std::string(why.message()));
  }
  // Still assigned (the revoke is delivered by a later poll, or the member owns them again):
  // read them again rather than skip them.
  if (kind == Drop::kFencedAtRevoke) {
    back.clear();
  } else if (auto st = consumer_->Rewind(back); !st.ok()) {
    spdlog::info("{}: after dropping a batch: {}", options_.job, std::string(st.message()));
  }
  problem_->Set(std::string(why.message()));
}

absl::Status ProducePipeline::Run(int index, std::span<const InputRecord> records,
                                  std::chrono::steady_clock::time_point polled_at) {
  rewind_.clear();
  Slot* slot = &slots_[index];
  slot->records = records;
  slot->polled_at = polled_at;
  absl::Status produced = ProduceBatch(slot);
  if (IsFenced(produced)) {
    DropUncommitted(in_flight_, slot, produced, Drop::kFenced);  // N too: N+1 cannot follow it
    SleepUnlessCancelled(std::chrono::milliseconds(200), stop_->stopping_flag());
    return absl::OkStatus();
  }
  if (!produced.ok()) {
    // Batch N+1 failed before all of it was produced: commit N first (it does not depend on
    // N+1), then run N+1 alone until it commits.
    if (in_flight_ != nullptr) {
      RTDW_RETURN_IF_ERROR(FinishInFlight(nullptr));
      if (abandoned_) return absl::OkStatus();
    }
    if (auto st = RunAlone(slot, produced); !st.ok()) {
      if (!IsFenced(st) && !IsYield(st)) return st;
      DropUncommitted(slot, nullptr, st, IsFenced(st) ? Drop::kFenced : Drop::kYield);
    }
    return absl::OkStatus();
  }
  // N+1 is produced: N's acknowledgements came back meanwhile; commit N.
  if (in_flight_ != nullptr) {
    RTDW_RETURN_IF_ERROR(FinishInFlight(slot));
    // On a failure of N, FinishInFlight ran N and then N+1 alone (committed: its batch is
    // cleared) or gave up on a stop: N+1 is not in flight then.
    if (slot->empty() || abandoned_) return absl::OkStatus();
  }
  in_flight_ = slot;
  return absl::OkStatus();
}

absl::Status ProducePipeline::CommitInFlight() {
  rewind_.clear();
  return FinishInFlight(nullptr);
}

absl::Status ProducePipeline::ProduceBatch(Slot* slot) {
  // Nothing of a batch whose partitions were taken away is written or produced.
  if (absl::Status owned = CheckOwnership(); !owned.ok()) return owned;
  slot->deliveries.ResetError();
  sink_->SetGroup(&slot->deliveries);
  sink_->TakeEmitted();
  sink_->TakeDead();
  sink_->TakeDeadByReason();
  absl::Status st = step_->BeginBatch();
  if (st.ok()) {
    for (const InputRecord& rec : slot->records) step_->Process(rec, sink_.get());
    st = step_->BeforeFlush(sink_.get());
  }
  absl::Status produced = sink_->TakeError();
  if (st.ok()) st = produced;
  slot->emitted = sink_->TakeEmitted();
  slot->dead = sink_->TakeDead();
  slot->dead_by_reason = sink_->TakeDeadByReason();
  return st;
}

absl::Status ProducePipeline::CommitBatch(Slot* slot) {
  const std::map<TopicPartition, int64_t> next = OffsetsOf(slot->records).next;
  // Offsets of partitions taken away are not committed (the new owner's would be overwritten).
  if (absl::Status owned = CheckOwnership(); !owned.ok()) return owned;
  if (!pending_) pending_.emplace(store_->NewBatch());
  for (const auto& [tp, offset] : next) {
    if (auto s = pending_->SetOffset(tp.first, tp.second, offset); !s.ok()) {
      pending_->Clear();
      return s;
    }
  }
  if (options_.fault) options_.fault("before_commit");
  auto committed = store_->Commit(&*pending_);  // clears it for the next batch
  // The disk said no (full, I/O error): nothing was committed; the caller runs the batch again.
  if (!committed.ok()) return committed.status();
  if (options_.fault) options_.fault("after_commit");
  consumer_->Committed(next);
  JobMetrics& common = metrics_->common;
  common.records_in->Add(slot->records.size());
  common.records_out->Add(slot->emitted);
  common.dead_letters->Add(slot->dead);
  for (const auto& [reason, count] : slot->dead_by_reason) common.DeadLetters(reason)->Add(count);
  slot->dead_by_reason.clear();
  common.batches->Add();
  common.batch_seconds->Observe(
      std::chrono::duration<double>(std::chrono::steady_clock::now() - slot->polled_at).count());
  Clear(slot);
  problem_->Set("");
  return absl::OkStatus();
}

absl::Status ProducePipeline::AwaitDeliveries(DeliveryGroup* group,
                                              std::chrono::milliseconds timeout) {
  absl::Status st = producer_->Await(group, timeout, stop_->stopping_flag());
  // A stop came: the batch may still be acknowledged (and committed) until its deadline.
  if (absl::IsCancelled(st)) {
    st = producer_->Await(group, stop_->Bound(timeout), stop_->cancelled_flag());
  }
  return st;
}

absl::Status ProducePipeline::FlushProducer(std::chrono::milliseconds timeout) {
  absl::Status st = producer_->Flush(timeout, stop_->stopping_flag());
  if (absl::IsCancelled(st)) st = producer_->Flush(stop_->Bound(timeout), stop_->cancelled_flag());
  return st;
}

void ProducePipeline::GiveUp(Slot* slot, Slot* behind, const absl::Status& why) {
  abandoned_ = true;  // not committed: re-read after the restart
  size_t records = slot->records.size() + (behind != nullptr ? behind->records.size() : 0);
  given_up_ = absl::StrCat(records, " records read but not committed (", std::string(why.message()),
                           "): read again at the next start");
  Clear(slot);
  if (behind != nullptr) Clear(behind);
}

absl::Status ProducePipeline::FinishInFlight(Slot* behind) {
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
  if (stop_->stopping()) {
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

absl::Status ProducePipeline::RunAlone(Slot* slot, absl::Status failure) {
  const auto since = std::chrono::steady_clock::now();
  // Group mode: a rebalance is served only by a poll; never hold it up longer than a revoke may
  // last (the batch is put back and read again after the poll).
  auto yield_due = [&] {
    return options_.group_mode &&
           std::chrono::steady_clock::now() - since >= options_.revoke_timeout;
  };
  bool check_space = !failure.ok();
  absl::Status last = failure;
  RetryOptions retry;
  retry.backoff = options_.retry_backoff;
  retry.stop = [this] { return stop_->stopping(); };
  retry.attempt_once_despite_stop = true;  // the batch in hand still commits when it can
  retry.what = "batch";
  retry.sleeper = options_.sleeper;
  bool yielded = false;
  retry.retryable = [&](const absl::Status& st) {
    if (IsFenced(st)) return false;
    yielded = yield_due();
    return !yielded;
  };
  retry.on_retry = [&](const absl::Status& st, std::chrono::milliseconds delay) {
    // Run the whole batch again: nothing of it was committed.
    step_->AbortBatch();
    metrics_->retries->Add();
    problem_->Set(absl::StrCat("batch failed, retrying in ", delay.count(),
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
  // Failed for revoke_timeout: put the batch back and poll.
  step_->AbortBatch();
  metrics_->retries->Add();
  if (absl::Status owned = CheckOwnership(); !owned.ok()) return owned;
  (void)FlushProducer(DeliveryTimeout());
  return YieldError(last);
}

void ProducePipeline::Revoke(bool lost) {
  // The batch being polled is dropped by the consumer (read again by the next owner). The one in
  // flight is committed when its acknowledgements come within revoke_timeout, otherwise dropped
  // (fenced): the rebalance never waits longer, and never on Redis.
  if (in_flight_ == nullptr || abandoned_) return;
  Slot* slot = in_flight_;
  absl::Status st =
      lost ? CheckOwnership() : AwaitDeliveries(&slot->deliveries, options_.revoke_timeout);
  if (st.ok()) st = CommitBatch(slot);
  if (st.ok()) {
    in_flight_ = nullptr;
    return;
  }
  DropUncommitted(
      slot, nullptr,
      IsFenced(st)
          ? st
          : FencedError(absl::StrCat(
                "batch in flight at the revoke not committed within "
                "kafka.revoke_timeout (",
                std::chrono::duration_cast<std::chrono::seconds>(options_.revoke_timeout).count(),
                " s): ", std::string(st.message()))),
      Drop::kFencedAtRevoke);
}

void ProducePipeline::FinishAtStop() {
  if (in_flight_ == nullptr || abandoned_) return;
  Slot* slot = std::exchange(in_flight_, nullptr);
  absl::Status st = producer_->Await(&slot->deliveries, stop_->Bound(options_.delivery_timeout),
                                     stop_->cancelled_flag());
  if (st.ok()) st = CommitBatch(slot);
  if (!st.ok()) GiveUp(slot, nullptr, st);
}

}  // namespace rtdw
