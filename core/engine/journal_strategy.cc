#include "core/engine/journal_strategy.h"

#include <algorithm>
#include <set>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "core/dims.h"
#include "core/engine/retry_policies.h"
#include "core/event_time.h"
#include "core/state_types.h"
#include "core/status_util.h"
#include "spdlog/spdlog.h"

namespace rtdw {
namespace {

std::string HandoverName(const TopicPartition& tp) {
  return absl::StrCat("handover.", tp.first, ".", tp.second);
}

}  // namespace

std::chrono::milliseconds MembershipLease(const Config& config) {
  // The coordinator does not hand a member's partitions to another before the member's session
  // timed out or the member itself rejoined (which revokes here first); half of it leaves room
  // for the heartbeat before the confirming commit and for the time a request takes to arrive.
  int64_t session_ms = 45000;
  auto it = config.kafka.properties.find("session.timeout.ms");
  if (it != config.kafka.properties.end()) {
    const std::string* text = std::get_if<std::string>(&it->second);
    int64_t v = 0;
    if (text != nullptr && absl::SimpleAtoi(*text, &v) && v > 0) session_ms = v;
  }
  return std::chrono::milliseconds(session_ms / 2);
}

JournalStrategy::JournalStrategy(JournalStrategyOptions options,
                                 std::unique_ptr<EsTransform> transform,
                                 std::unique_ptr<JournalServices> services)
    : options_(std::move(options)),
      transform_(std::move(transform)),
      services_(std::move(services)) {}

JournalStrategy::~JournalStrategy() {
  // The delivery thread ends before the services' sink goes.
  if (delivery_) delivery_->Cancel();
  delivery_.reset();
}

int64_t JournalStrategy::NowMs() const {
  return options_.now_ms ? options_.now_ms() : absl::ToUnixMillis(absl::Now());
}

void JournalStrategy::Attach(RunnerContext* context) {
  ctx_ = context;
  const Labels job = {{"job", ctx_->job}};
  MetricsRegistry* m = ctx_->metrics;
  common_ = std::make_unique<JobMetrics>(m, ctx_->job);
  documents_ = m->GetCounter("rtdw_documents_total", "Documents journaled for ES", job);
  redis_errors_ = m->GetCounter("rtdw_redis_errors_total", "Failed Redis calls", job);
  dims_missing_ =
      m->GetCounter("rtdw_dims_missing_total", "Dimension rows looked up but absent", job);
  duplicates_ = m->GetCounter("rtdw_dedup_duplicates_total",
                              "Records that lost to an earlier one of the same key", job);
  group_assignments_ = m->GetCounter("rtdw_group_assignments_total",
                                     "Group mode: partition assignments received", job);
  partitions_rebuilt_ =
      m->GetCounter("rtdw_group_partitions_rebuilt_total",
                    "Group mode: assigned partitions whose state was dropped and rebuilt", job);
  dedup_restored_ = m->GetCounter("rtdw_group_dedup_restored_total",
                                  "Group mode: de-dup entries restored from ES", job);
  JournalDeliveryOptions o;
  o.job = ctx_->job;
  o.max_backlog = options_.max_backlog;
  o.group_mode = ctx_->group_mode;
  o.lease = MembershipLease(*ctx_->config);
  o.revoke_timeout = ctx_->config->kafka.revoke_timeout;
  o.now_ms = [this] { return NowMs(); };
  o.fault = options_.fault;
  o.before_attempt = [this](const JournalEntry& entry) { services_->BeforeAttempt(entry); };
  o.sleeper = options_.sleeper;
  if (options_.delivery_backoff) o.retry_backoff = *options_.delivery_backoff;
  delivery_ =
      std::make_unique<JournalDelivery>(std::move(o), m, ctx_->stop, ctx_->problem, common_.get());
}

absl::Status JournalStrategy::Start() {
  RTDW_RETURN_IF_ERROR(services_->ConnectSink(delivery_.get(), *ctx_->stop, ctx_->problem));
  // What the journal owes first (re-delivered, or dropped by a group-mode start), then the
  // delivery thread.
  RTDW_RETURN_IF_ERROR(delivery_->Start(ctx_->store, services_->sink()));
  RTDW_ASSIGN_OR_RETURN(dims_, services_->OpenDimensions());
  return absl::OkStatus();
}

void JournalStrategy::SourcesAssigned() {
  // Group mode: ownership is checked from the subscription on (OnAssigned runs in a later poll).
  if (ctx_->group_mode) delivery_->CheckOwnership();
}

bool JournalStrategy::MayPoll() {
  // Back-pressure: a full backlog pauses polling.
  if (delivery_->WaitForRoom(std::chrono::milliseconds(100))) return true;
  if (ctx_->group_mode) RenewLease();
  return false;
}

void JournalStrategy::Polled(const ConsumedBatch& batch) {
  if (ctx_->group_mode) {
    CommitHandover(/*force=*/false);
    RenewLease();
  }
  UpdateIdleInputs(batch);
}

bool JournalStrategy::Drained() const { return delivery_->Backlog() == 0; }

std::string JournalStrategy::HealthProblem() const { return delivery_->RejectionProblem(); }

void JournalStrategy::Wake() { delivery_->Wake(); }

void JournalStrategy::Cancel() { delivery_->Cancel(); }

void JournalStrategy::StopBeforeClose() {
  // Lone mode: deliver what is owed until the stop's deadline; what is left stays owed, safely.
  // Group mode leaves the group first: its revoke (OnRevoked) delivers what is owed while the
  // group still counts this member as the owner and writes the hand-over; nothing is sent once
  // the partitions are given up.
  if (!ctx_->group_mode) delivery_->Stop();
}

void JournalStrategy::StopAfterClose() {
  if (ctx_->group_mode) delivery_->Stop();
  batch_.Clear();
}

std::string JournalStrategy::GivenUp() const { return delivery_->GivenUp(); }

DeliveryStrategy::Result JournalStrategy::Deliver(ConsumedBatch& batch,
                                                  std::chrono::steady_clock::time_point polled_at,
                                                  int attempt) {
  if (attempt == 0) batch_now_ms_ = NowMs();
  const EsTransformCounters before = transform_->counters();
  BatchStage failed_at = BatchStage::kCommit;
  auto committed = CommitJournaledBatch(*ctx_->store, *transform_, dims_, batch.records(),
                                        batch_now_ms_, options_.fault, &failed_at);
  if (!committed.ok()) {
    // A transform bug or a store read failure is not something waiting fixes; a dimension
    // outage, a full disk or a failed commit is.
    absl::Status st = committed.status();
    if (failed_at == BatchStage::kTransform && absl::IsUnavailable(st)) {
      redis_errors_->Add();
    } else if (failed_at == BatchStage::kStage ||
               (failed_at == BatchStage::kTransform && !absl::IsResourceExhausted(st))) {
      return Result::Error(st);
    }
    return Result::Retry(st);
  }
  const std::map<TopicPartition, int64_t>& next = committed->offsets.next;
  const std::map<TopicPartition, int64_t>& first = committed->offsets.first;
  const bool group = ctx_->group_mode;
  // Group mode: what becomes hand-over-able once this batch's documents are acknowledged; a
  // partition with nothing delivered yet hands over where this batch started (what the
  // membership lease commits before anything is acknowledged).
  const std::map<TopicPartition, int64_t> handover = group ? BatchHandover(next) : next;
  delivery_->Committed(std::move(committed->entry), handover,
                       group ? first : std::map<TopicPartition, int64_t>{});
  // Lone mode: the source's committed offsets are for lag monitoring only. Group mode commits
  // hand-over offsets instead (CommitHandover).
  ctx_->Committed(next, /*to_source=*/!group);
  const EsTransformCounters& after = transform_->counters();
  common_->records_in->Add(batch.size());
  common_->records_out->Add(after.documents - before.documents);
  documents_->Add(after.documents - before.documents);
  common_->dead_letters->Add(after.dead_letters - before.dead_letters);
  for (const auto& [reason, n] : after.dead_letters_by_reason) {
    auto was = before.dead_letters_by_reason.find(reason);
    const uint64_t added = n - (was == before.dead_letters_by_reason.end() ? 0 : was->second);
    if (added > 0) common_->DeadLetters(reason)->Add(added);
  }
  dims_missing_->Add(after.dims_missing - before.dims_missing);
  duplicates_->Add(after.duplicates - before.duplicates);
  common_->batches->Add();
  ctx_->SetProblem("");
  batch.Clear();
  common_->batch_seconds->Observe(
      std::chrono::duration<double>(std::chrono::steady_clock::now() - polled_at).count());
  if (options_.dedup_retention_days > 0 && ++batches_since_retention_ >= 50) {
    batches_since_retention_ = 0;
    DropOldDedupDays();
  }
  return Result::Done();
}

void JournalStrategy::UpdateIdleInputs(const ConsumedBatch& batch) {
  if (!options_.idle_input) return;
  const auto now = std::chrono::steady_clock::now();
  for (const InputRecord& rec : batch.records()) {
    at_end_since_.erase({std::string(rec.topic), rec.partition});
  }
  std::vector<TopicPartition> idle;
  std::map<TopicPartition, std::chrono::steady_clock::time_point> kept;
  for (const TopicPartition& tp : ctx_->source->assignment()) {
    if (!ctx_->source->PartitionAtEnd(tp)) continue;
    auto it = at_end_since_.find(tp);
    const auto since = it == at_end_since_.end() ? now : it->second;
    kept[tp] = since;
    if (now - since >= *options_.idle_input) idle.push_back(tp);
  }
  at_end_since_ = std::move(kept);
  if (idle == idle_inputs_) return;
  for (const TopicPartition& tp : idle) {
    if (std::find(idle_inputs_.begin(), idle_inputs_.end(), tp) == idle_inputs_.end()) {
      spdlog::info(
          "{}: {}/{} is at its end and idle for {} s: it no longer holds the join watermark back",
          ctx_->job, tp.first, tp.second, options_.idle_input->count());
    }
  }
  idle_inputs_ = idle;
  transform_->SetIdleInputs(std::move(idle));
}

void JournalStrategy::DropOldDedupDays() {
  // Keep, for every partition, its watermark's day and the N-1 days before it: drop only what
  // is older than the floor of the partition that is furthest behind.
  auto pending = ctx_->store->NewBatch();
  std::optional<int64_t> min_watermark;
  for (const auto& [topic, partition] : ctx_->source->assignment()) {
    auto wm = pending.GetWatermark(partition);
    if (!wm.ok() || !wm->has_value()) return;  // a partition without a watermark: keep all
    if (!min_watermark || **wm < *min_watermark) min_watermark = **wm;
  }
  if (!min_watermark) return;
  absl::CivilDay floor =
      CivilDayOf(*min_watermark, options_.time_zone) - (options_.dedup_retention_days - 1);
  const DayNumber day = DayNumberOf(floor);  // 0 (drops nothing) outside years 1..9999
  if (auto st = ctx_->store->DropDedupDaysBefore(day); !st.ok()) {
    spdlog::warn("{}: dedup retention: {}", ctx_->job, std::string(st.message()));
  }
}

// ---------------------------------------------------------------------------------------------
// Group mode: hand-over offsets, assignment and revocation.

std::map<TopicPartition, int64_t> JournalStrategy::BatchHandover(
    const std::map<TopicPartition, int64_t>& next) {
  for (const auto& [tp, offset] : next) consumed_next_[tp] = offset;
  if (!options_.join_state) return next;
  // As of this commit, a row still in the join column family holds its topic back to its own
  // offset (the next owner rebuilds it by reading from there). Computed now, not at delivery: a
  // later batch may delete the row (matched) with its document still owed.
  std::map<TopicPartition, int64_t> out;
  std::set<int32_t> numbers;
  for (const auto& [tp, offset] : next) numbers.insert(tp.second);
  for (int32_t p : numbers) {
    for (JoinSide side : {JoinSide::kOrder, JoinSide::kDetail}) {
      const TopicPartition tp{ctx_->source_topics[side == JoinSide::kOrder ? 0 : 1], p};
      auto consumed = consumed_next_.find(tp);
      if (consumed == consumed_next_.end()) continue;
      auto min_row = ctx_->store->MinJoinSourceOffset(p, side);
      if (!min_row.ok()) {
        spdlog::warn("{}: hand-over of {}/{}: {}", ctx_->job, tp.first, p,
                     std::string(min_row.status().message()));
        continue;  // not advanced this time
      }
      out[tp] = min_row->has_value() ? std::min(consumed->second, **min_row) : consumed->second;
    }
  }
  return out;
}

void JournalStrategy::CommitHandover(bool force) {
  auto now = std::chrono::steady_clock::now();
  if (!force && now - last_handover_time_ < std::chrono::seconds(1)) return;
  last_handover_time_ = now;
  const std::map<TopicPartition, int64_t> offsets = delivery_->Handover(ctx_->source->assignment());
  std::map<TopicPartition, int64_t> changed;
  for (const auto& [tp, offset] : offsets) {
    auto it = last_handover_.find(tp);
    if (it == last_handover_.end() || it->second != offset) changed[tp] = offset;
  }
  if (changed.empty()) return;
  ctx_->source->CommitAsync(changed);
  ctx_->lag->Committed(changed);
  for (const auto& [tp, offset] : changed) last_handover_[tp] = offset;
}

void JournalStrategy::RenewLease() {
  const auto now = std::chrono::steady_clock::now();
  if (!delivery_->LeaseWantsConfirmation(now)) return;  // not owning, or more than half left
  // At most one confirmation per second (a failing coordinator is not hammered).
  if (now - lease_sent_ < std::chrono::seconds(1)) return;
  lease_sent_ = now;
  const std::map<TopicPartition, int64_t> offsets = delivery_->Handover(ctx_->source->assignment());
  if (offsets.empty()) return;
  // The coordinator accepts a commit only from a member of the current generation: its answer
  // confirms the assignment as of `now`, when the request was sent.
  absl::Status st = ctx_->source->CommitSync(offsets, std::chrono::milliseconds(2000));
  if (!st.ok()) {
    spdlog::warn("{}: the group did not confirm this member's assignment ({}); deliveries wait",
                 ctx_->job, std::string(st.message()));
    return;
  }
  ctx_->lag->Committed(offsets);
  for (const auto& [tp, offset] : offsets) last_handover_[tp] = offset;
  delivery_->Confirmed(now);
}

void JournalStrategy::OnRevoked(const std::vector<TopicPartition>& partitions) {
  const bool lost = ctx_->source->AssignmentLost();
  spdlog::info("{}: group takes away {} partitions{}", ctx_->job, partitions.size(),
               lost ? " (assignment lost: what is owed is fenced at once)"
                    : "; delivering what is owed first");
  // No batch is in hand (the rebalance runs inside Poll, whose records are dropped). What is owed
  // is delivered within kafka.revoke_timeout, never longer, then fenced (JournalDelivery).
  bool clean = delivery_->Revoke(lost);
  const std::map<TopicPartition, int64_t> offsets = delivery_->Handover(partitions);
  absl::Status st = ctx_->source->CommitSync(offsets, ctx_->stop->Bound(std::chrono::seconds(10)));
  if (!st.ok()) {
    spdlog::warn("{}: hand-over commit failed ({}); the next owner starts earlier and rebuilds",
                 ctx_->job, std::string(st.message()));
    clean = false;
  }
  // A clean hand-over lets this instance keep its local state if the partition comes back
  // untouched: the group's offset must then still be exactly this one (OnAssigned checks).
  if (clean) {
    for (const auto& [tp, offset] : offsets) {
      if (auto s = ctx_->store->SetMeta(HandoverName(tp), absl::StrCat(offset)); !s.ok()) {
        spdlog::warn("{}: {}", ctx_->job, std::string(s.message()));
      }
    }
  }
  for (const auto& tp : partitions) {
    last_handover_.erase(tp);
    consumed_next_.erase(tp);
  }
}

absl::StatusOr<std::vector<PartitionStart>> JournalStrategy::OnAssigned(
    const std::vector<TopicPartition>& partitions,
    const std::map<TopicPartition, int64_t>& committed) {
  StateStore* store = ctx_->store;
  // State is per partition number (order-wide's two topics share it).
  std::map<int32_t, std::vector<std::string>> by_number;
  for (const auto& [topic, p] : partitions) by_number[p].push_back(topic);
  std::vector<PartitionStart> starts;
  size_t kept = 0, rebuilt = 0;
  for (const auto& [p, topics] : by_number) {
    // The local state is exactly what the group hands over when this instance wrote that
    // hand-over itself and nobody committed anything since.
    bool local_valid = topics.size() == ctx_->source_topics.size();
    for (const auto& topic : topics) {
      auto mark = store->GetMeta(HandoverName({topic, p}));
      if (!mark.ok()) return mark.status();
      auto it = committed.find({topic, p});
      if (!mark->has_value() || it == committed.end() || **mark != absl::StrCat(it->second)) {
        local_valid = false;
      }
    }
    for (const auto& topic : topics) {
      // Consumed: from here on the local state moves past the mark.
      if (auto s = store->SetMeta(HandoverName({topic, p}), ""); !s.ok()) return s;
    }
    if (!local_valid) {
      RTDW_RETURN_IF_ERROR(RestorePartition(p));
      ++rebuilt;
    } else {
      ++kept;
    }
    for (const auto& topic : topics) {
      auto local = store->GetOffset(topic, p);
      if (!local.ok()) return local.status();
      auto it = committed.find({topic, p});
      std::optional<int64_t> known;
      if (local_valid && local->has_value()) {
        known = **local;
      } else if (it != committed.end()) {
        known = it->second;
      }
      RTDW_ASSIGN_OR_RETURN(PartitionStart start, StartOf(*ctx_->config, topic, p, known,
                                                          "committed offset in the group"));
      if (it != committed.end()) last_handover_[{topic, p}] = it->second;
      if (start.offset >= 0) {
        consumed_next_[{topic, p}] = start.offset;
      } else {
        consumed_next_.erase({topic, p});
      }
      starts.push_back(start);
    }
  }
  // What the group committed is hand-over-able; a new assignment epoch, unconfirmed until the
  // coordinator confirms it (RenewLease, after the next poll): this callback may run long after
  // the group's answer (a member paused in between).
  delivery_->Assigned(committed);
  group_assignments_->Add();
  partitions_rebuilt_->Add(rebuilt);
  spdlog::info("{}: group gives {} partitions: {} kept their local state, {} rebuilt", ctx_->job,
               partitions.size(), kept, rebuilt);
  return starts;
}

absl::Status JournalStrategy::RestorePartition(int32_t partition) {
  StateStore* store = ctx_->store;
  RTDW_RETURN_IF_ERROR(store->DropPartitionState(partition, ctx_->source_topics));
  for (const auto& topic : ctx_->source_topics) delivery_->ForgetHandover({topic, partition});
  // The join rebuilds by replay from the hand-over offset; de-dup comes from the cluster.
  if (!options_.restore_dedup) return absl::OkStatus();
  // The cluster unreachable or answering badly: waiting can fix it. A failed attempt's partial
  // restore is dropped before the next one.
  bool dropped_failed = false;  // dropping a failed attempt's state failed: give up
  auto transient = [](const absl::Status& st) {
    return absl::IsUnavailable(st) || absl::IsDeadlineExceeded(st) || absl::IsInternal(st);
  };
  RetryOptions retry;
  retry.backoff = kServiceWaitBackoff;
  retry.sleeper = options_.sleeper;
  retry.stop = [this] { return ctx_->stop->stopping(); };
  retry.attempt_once_despite_stop = true;
  retry.what = "de-dup restore";
  retry.retryable = [&](const absl::Status& st) { return !dropped_failed && transient(st); };
  retry.on_retry = [&](const absl::Status& st, std::chrono::milliseconds) {
    ctx_->SetProblem(absl::StrCat("restoring de-dup of partition ", partition,
                                  " from ES: ", std::string(st.message())));
  };
  absl::Status st = RetryUntil(retry, [&]() -> absl::Status {
    absl::Status restored = RestoreDedup(partition);
    if (restored.ok() || !transient(restored)) return restored;
    if (absl::Status d = store->DropPartitionState(partition, ctx_->source_topics); !d.ok()) {
      dropped_failed = true;
      return d;
    }
    return restored;
  });
  if (absl::IsCancelled(st) && ctx_->stop->stopping()) {
    return absl::CancelledError("stopped during a de-dup restore");
  }
  return st;
}

absl::Status JournalStrategy::RestoreDedup(int32_t partition) {
  // The shared restore (core/dedup_restore.h): only this partition's documents (their
  // rtdw_src), slots on the day of their ts, the watermark raised to the newest.
  const std::string& topic = ctx_->source_topics.front();
  std::unique_ptr<DauDocumentReader> reader = services_->DedupReader(topic, partition);
  StoreRestoreTarget<StateStore> target(ctx_->store);
  DedupRestoreOptions o;
  o.time_zone = options_.time_zone;
  o.topic = topic;
  o.partitions = {partition};
  o.raise_watermarks = true;
  o.now_ms = NowMs();
  o.missing_index_is_empty = true;  // no DAU index yet
  DedupRestoreStats stats;
  auto started = std::chrono::steady_clock::now();
  RTDW_RETURN_IF_ERROR(rtdw::RestoreDedup(*reader, target, o, &stats));
  dedup_restored_->Add(stats.restored);
  spdlog::info(
      "{}: partition {}: de-dup restored from ES: {} documents, {} entries ({} skipped) "
      "in {} ms",
      ctx_->job, partition, stats.documents, stats.restored, stats.skipped + stats.other_partitions,
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                            started)
          .count());
  return absl::OkStatus();
}

}  // namespace rtdw
