#include "tools/rtdwd/es_job.h"

#include <algorithm>
#include <set>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "connectors/es/bulk.h"
#include "connectors/es/dau_reader.h"
#include "connectors/es/templates.h"
#include "core/backoff.h"
#include "core/dau_document.h"
#include "core/dead_letter.h"
#include "core/dedup_restore.h"
#include "core/engine/batch_transaction.h"
#include "core/engine/journal_delivery.h"
#include "core/event_time.h"
#include "core/journal_sink.h"
#include "core/process/signals.h"
#include "core/state_types.h"
#include "core/status_util.h"
#include "rapidjson/document.h"
#include "rapidjson/stringbuffer.h"
#include "rapidjson/writer.h"
#include "spdlog/spdlog.h"
#include "tools/rtdwd/job_common.h"

namespace rtdw {
namespace {

// The wall clock that judges event time (max_future); tests may set it off (TestClockOffsetMs).
int64_t NowMs() { return absl::ToUnixMillis(absl::Now()) + TestClockOffsetMs(); }

// Group mode's membership lease: half of session.timeout.ms (librdkafka's default 45000). The
// coordinator does not hand a member's partitions to another before the member's session timed
// out or the member itself rejoined (which revokes here first); half of it leaves room for the
// heartbeat before the confirming commit and for the time a request takes to reach ES.
std::chrono::milliseconds MembershipLease(const Config& config) {
  int64_t session_ms = 45000;
  auto it = config.kafka.properties.find("session.timeout.ms");
  if (it != config.kafka.properties.end()) {
    const std::string* text = std::get_if<std::string>(&it->second);
    int64_t v = 0;
    if (text != nullptr && absl::SimpleAtoi(*text, &v) && v > 0) session_ms = v;
  }
  return std::chrono::milliseconds(session_ms / 2);
}

JournalDeliveryOptions DeliveryOptions(const Config& config, const EsJobSettings& settings) {
  JournalDeliveryOptions o;
  o.job = settings.job;
  o.max_backlog = settings.max_backlog;
  o.group_mode = config.kafka.group.has_value();
  o.lease = MembershipLease(config);
  o.revoke_timeout = config.kafka.revoke_timeout;
  o.now_ms = NowMs;
  return o;
}

}  // namespace

EsJobRunner::EsJobRunner(const Config& config, EsJobSettings settings,
                         std::unique_ptr<EsTransform> transform, MetricsRegistry* metrics)
    : config_(config),
      settings_(std::move(settings)),
      transform_(std::move(transform)),
      metrics_(metrics),
      lag_(metrics, settings_.job),
      common_(metrics, settings_.job),
      problem_(settings_.job),
      group_mode_(config.kafka.group.has_value()),
      delivery_(
          [&] {
            JournalDeliveryOptions o = DeliveryOptions(config, settings_);
            o.fault = [this](std::string_view point) { faults_.Hit(point); };
            o.before_attempt = [this](const JournalEntry& entry) { MidDelivery(entry); };
            return o;
          }(),
          metrics, &stop_, &problem_, &common_) {
  const Labels job = {{"job", settings_.job}};
  documents_ = metrics_->GetCounter("rtdw_documents_total", "Documents journaled for ES", job);
  es_retries_ =
      metrics_->GetCounter("rtdw_es_retries_total", "ES bulk retry rounds (429/5xx/timeouts)", job);
  es_too_large_ = metrics_->GetCounter(
      "rtdw_es_responses_too_large_total",
      "ES answers refused for passing es.max_response_mb (never retried)", job);
  redis_errors_ = metrics_->GetCounter("rtdw_redis_errors_total", "Failed Redis calls", job);
  dims_missing_ =
      metrics_->GetCounter("rtdw_dims_missing_total", "Dimension rows looked up but absent", job);
  duplicates_ = metrics_->GetCounter("rtdw_dedup_duplicates_total",
                                     "Records that lost to an earlier one of the same key", job);
  group_assignments_ = metrics_->GetCounter("rtdw_group_assignments_total",
                                            "Group mode: partition assignments received", job);
  partitions_rebuilt_ = metrics_->GetCounter(
      "rtdw_group_partitions_rebuilt_total",
      "Group mode: assigned partitions whose state was dropped and rebuilt", job);
  dedup_restored_ = metrics_->GetCounter("rtdw_group_dedup_restored_total",
                                         "Group mode: de-dup entries restored from ES", job);
}

EsJobRunner::~EsJobRunner() {
  Cancel();
  // Leaving the group runs OnRevoked, which needs this object whole: close before members go.
  if (consumer_) consumer_->Close();
  // (delivery_'s destructor ends the delivery thread before the sink and the store go.)
}

void EsJobRunner::BeginStop(std::chrono::steady_clock::time_point deadline) {
  JobRunner::BeginStop(deadline);
  delivery_.Wake();
}

void EsJobRunner::Cancel() {
  JobRunner::Cancel();
  delivery_.Cancel();
}

void EsJobRunner::SetProblem(std::string problem) { problem_.Set(std::move(problem)); }

std::string EsJobRunner::HealthProblem() const {
  std::string p = problem_.Get();
  return p.empty() ? delivery_.RejectionProblem() : p;
}

bool EsJobRunner::CaughtUp() const { return consumer_at_end_.load() && delivery_.Backlog() == 0; }

absl::Status EsJobRunner::ConnectEs() {
  EsClientOptions o = JobEsClientOptions(config_, settings_.job);
  o.max_bulks_in_flight = 4;
  o.on_response_too_large = [c = es_too_large_] { c->Add(); };
  auto client = EsClient::Create(o);
  if (!client.ok()) return client.status();
  es_ = std::move(*client);
  EsJournalSinkOptions so;
  so.cancel = delivery_.abort_flag();
  so.on_retry = [this](const BulkRetryEvent&) { es_retries_->Add(); };
  so.before_request = [this](uint64_t seq) { return delivery_.MaySend(seq); };
  sink_ = std::make_unique<EsJournalSink>(es_.get(), so);

  // Wait for the cluster (and install the templates) with backoff: waiting can fix it. Waiting
  // for a service is given up as soon as a stop begins (nothing is delivered by it).
  RetryOptions retry;
  retry.backoff = kServiceWaitBackoff;
  retry.stop = [this] { return stop_.stopping(); };
  retry.what = "waiting for Elasticsearch";
  retry.attempt_once_despite_stop = true;
  // A wrong version: waiting will not fix it.
  retry.retryable = [](const absl::Status& st) { return !absl::IsFailedPrecondition(st); };
  retry.on_retry = [this](const absl::Status& st, std::chrono::milliseconds) {
    SetProblem(absl::StrCat("waiting for Elasticsearch at ", config_.es.urls.front(), ": ",
                            std::string(st.message())));
  };
  absl::Status installed = RetryUntil(retry, [this] {
    return InstallIndexTemplates(*es_, settings_.dau_index_prefix,
                                 settings_.order_wide_index_prefix);
  });
  if (absl::IsCancelled(installed) && stop_.stopping()) {
    return absl::CancelledError("stopped while waiting for Elasticsearch");
  }
  if (!installed.ok()) return installed;
  SetProblem("");
  return absl::OkStatus();
}

void EsJobRunner::MidDelivery(const JournalEntry& entry) {
  if (!faults_.armed("mid_delivery")) return;
  // Send the first half of the entry's documents, then (maybe) die: a crash mid-delivery.
  auto actions = ParseBulkBody(entry.body);
  if (actions.ok() && actions->size() > 1) {
    std::vector<BulkAction> half(actions->begin(), actions->begin() + actions->size() / 2);
    (void)es_->Bulk(half);
  }
  faults_.Hit("mid_delivery");
}

absl::Status EsJobRunner::Start() {
  auto store = OpenJobStore(config_, settings_.job);
  if (!store.ok()) return store.status();
  store_ = std::move(*store);

  if (auto st = ConnectEs(); !st.ok()) return st;
  // What the journal owes first (re-delivered, or dropped by a group-mode start), then the
  // delivery thread.
  if (auto st = delivery_.Start(store_.get(), sink_.get()); !st.ok()) return st;

  RedisClientOptions ro;
  ro.host = config_.redis.host;
  ro.port = config_.redis.port;
  ro.db = config_.redis.db;
  ro.username = config_.redis.username;
  if (config_.redis.password) ro.password = config_.redis.password->value;
  redis_ = std::make_unique<RedisClient>(ro);
  dims_ = std::make_unique<RedisDimensionCache>(redis_.get(), DimensionCacheOptions{});

  KafkaConsumerOptions co = JobConsumerOptions(config_, settings_.job);
  // Range assignment gives partition p of every source topic to one member: the join's
  // co-partitioning survives rebalances.
  if (group_mode_ && settings_.co_partitioned) co.assignment_strategy = "range";
  auto consumer = KafkaConsumer::Create(co);
  if (!consumer.ok()) return consumer.status();
  consumer_ = std::move(*consumer);

  spdlog::info("{}: store {} ({}), sources {}", settings_.job, store_->path(),
               store_->created() ? "created" : "opened",
               absl::StrJoin(settings_.source_topics, ","));
  return TryAssign();
}

absl::Status EsJobRunner::TryAssign() {
  RTDW_ASSIGN_OR_RETURN(
      Assignment assignment,
      AssignSources(*consumer_, *store_, config_, settings_.job, settings_.source_topics,
                    settings_.co_partitioned, group_mode_ ? this : nullptr, lag_,
                    [this](std::string problem) { SetProblem(std::move(problem)); }));
  if (assignment == Assignment::kTopicMissing) {
    consumer_at_end_ = true;  // a topic that does not exist counts as empty
    return absl::OkStatus();
  }
  if (assignment == Assignment::kKafkaUnreachable) return absl::OkStatus();
  // Group mode: ownership is checked from the subscription on (OnAssigned runs in a later poll).
  if (group_mode_) delivery_.CheckOwnership();
  assigned_ = true;
  consumer_at_end_ = false;
  return absl::OkStatus();
}

absl::StatusOr<size_t> EsJobRunner::RunOnce() {
  if (!assigned_) {
    if (auto st = TryAssign(); !st.ok()) return st;
    if (!assigned_) {
      SleepUnlessCancelled(std::chrono::milliseconds(500), stop_.stopping_flag());
      return size_t{0};
    }
  }
  // The state disk is (nearly) full: read nothing until a batch could commit.
  if (!space_.Open(*store_, [this](std::string problem) { SetProblem(std::move(problem)); })) {
    lag_.Update(consumer_->HighWatermarks());  // the input still grows while it waits
    SleepUnlessCancelled(std::chrono::milliseconds(500), stop_.stopping_flag());
    return size_t{0};
  }
  // Back-pressure: a full backlog pauses polling.
  if (!delivery_.WaitForRoom(std::chrono::milliseconds(100))) {
    if (group_mode_) RenewLease();
    lag_.Update(consumer_->HighWatermarks());  // the input still grows while paused
    return size_t{0};
  }
  batch_.Clear();
  auto started = std::chrono::steady_clock::now();
  absl::Status polled = consumer_->Poll(static_cast<size_t>(settings_.batch_max_records),
                                        settings_.batch_max_ms, &batch_);
  if (absl::IsOutOfRange(polled)) {
    metrics_
        ->GetCounter("rtdw_offset_lost_total", "Stored offsets the broker no longer has",
                     {{"job", settings_.job}})
        ->Add();
    return polled;
  }
  if (!polled.ok()) {
    SetProblem(std::string(polled.message()));
    return size_t{0};
  }
  if (group_mode_) {
    CommitHandover(/*force=*/false);
    RenewLease();
  }
  UpdateIdleInputs();
  if (batch_.empty()) {
    bool at_end = consumer_->VerifiedAtEnd();
    if (!group_mode_ && PickUpNewPartitions(at_end)) at_end = false;
    consumer_at_end_ = at_end;
    lag_.Update(consumer_->HighWatermarks(), consumer_at_end_);
    return size_t{0};
  }
  consumer_at_end_ = false;
  if (auto st = CommitBatch(NowMs()); !st.ok()) return st;
  const size_t n = batch_.size();
  batch_.Clear();
  common_.batch_seconds->Observe(
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
  consumer_at_end_ = false;  // confirmed by the next empty poll (VerifiedAtEnd)
  if (settings_.dedup_retention_days > 0 && ++batches_since_retention_ >= 50) {
    batches_since_retention_ = 0;
    DropOldDedupDays();
  }
  return n;
}

absl::Status EsJobRunner::CommitBatch(int64_t now_ms) {
  const EsTransformCounters before = transform_->counters();
  // A transform bug or a store read failure is not something waiting fixes; a Redis outage, a
  // full disk or a failed commit is.
  bool permanent = false;
  RetryOptions retry;
  retry.backoff = kBatchRetryBackoff;
  retry.stop = [this] { return stop_.stopping(); };
  retry.what = "batch commit";
  retry.attempt_once_despite_stop = true;  // a batch in hand still commits when it can
  retry.retryable = [&](const absl::Status&) { return !permanent; };
  retry.on_retry = [this](const absl::Status& st, std::chrono::milliseconds delay) {
    SetProblem(absl::StrCat("batch not committed, retrying in ", delay.count(),
                            " ms: ", std::string(st.message())));
    lag_.Update(consumer_->HighWatermarks());  // the input still grows while this batch waits
  };
  absl::Status last;
  absl::Status st = RetryUntil(retry, [&]() -> absl::Status {
    BatchStage failed_at = BatchStage::kCommit;
    auto committed = CommitJournaledBatch(
        *store_, *transform_, dims_.get(), batch_.records(), now_ms,
        [this](std::string_view point) { faults_.Hit(point); }, &failed_at);
    if (committed.ok()) {
      {
        const std::map<TopicPartition, int64_t>& next = committed->offsets.next;
        const std::map<TopicPartition, int64_t>& first = committed->offsets.first;
        // Group mode: what becomes hand-over-able once this batch's documents are acknowledged.
        const std::map<TopicPartition, int64_t> handover = group_mode_ ? BatchHandover(next) : next;
        // Group mode: a partition with nothing delivered yet hands over where this batch
        // started (what the membership lease commits before anything is acknowledged).
        delivery_.Committed(std::move(committed->entry), handover,
                            group_mode_ ? first : std::map<TopicPartition, int64_t>{});
        // Lone mode: Kafka's committed offsets are for lag monitoring only. Group mode commits
        // hand-over offsets instead (CommitHandover).
        if (!group_mode_) consumer_->CommitAsync(next);
        lag_.Committed(next);
        lag_.Update(consumer_->HighWatermarks());
        const EsTransformCounters& after = transform_->counters();
        common_.records_in->Add(batch_.size());
        common_.records_out->Add(after.documents - before.documents);
        documents_->Add(after.documents - before.documents);
        common_.dead_letters->Add(after.dead_letters - before.dead_letters);
        for (const auto& [reason, n] : after.dead_letters_by_reason) {
          auto was = before.dead_letters_by_reason.find(reason);
          const uint64_t added = n - (was == before.dead_letters_by_reason.end() ? 0 : was->second);
          if (added > 0) common_.DeadLetters(reason)->Add(added);
        }
        dims_missing_->Add(after.dims_missing - before.dims_missing);
        duplicates_->Add(after.duplicates - before.duplicates);
        common_.batches->Add();
        SetProblem("");
        return absl::OkStatus();
      }
    }
    absl::Status st = committed.status();
    if (failed_at == BatchStage::kTransform && absl::IsUnavailable(st)) {
      redis_errors_->Add();
    } else if (failed_at == BatchStage::kStage ||
               (failed_at == BatchStage::kTransform && !absl::IsResourceExhausted(st))) {
      permanent = true;
    }
    last = st;
    return st;
  });
  if (st.ok() || permanent) return st;
  // A stop: the batch is read again at the next start.
  given_up_ = absl::StrCat("a batch of ", batch_.size(), " records read but not committed (",
                           std::string((last.ok() ? st : last).message()),
                           "): read again at the next start");
  return absl::OkStatus();
}

bool EsJobRunner::PickUpNewPartitions(bool at_end) {
  auto grown = new_partitions_.Grown(*consumer_, *store_, settings_.job, settings_.source_topics,
                                     at_end, consumer_at_end_.load());
  if (!grown.ok()) {
    SetProblem(
        absl::StrCat("checking for new partitions: ", std::string(grown.status().message())));
    return false;
  }
  if (grown->empty()) return false;
  if (settings_.co_partitioned) {
    std::set<int> counts;
    for (const auto& topic : settings_.source_topics) {
      auto n = consumer_->PartitionCount(topic, std::chrono::seconds(5));
      if (n.ok()) counts.insert(*n);
    }
    if (counts.size() != 1) {
      SetProblem(absl::StrCat("partitions were added to ", grown->front().first,
                              " but not to every source topic: the join relies on "
                              "co-partitioning; reading the old partitions until they match"));
      return true;  // not at its end: records on the new partitions are unread
    }
  }
  assigned_ = false;  // the next RunOnce assigns again, with the new partitions
  return true;
}

void EsJobRunner::UpdateIdleInputs() {
  if (!settings_.idle_input) return;
  const auto now = std::chrono::steady_clock::now();
  for (const InputRecord& rec : batch_.records()) {
    at_end_since_.erase({std::string(rec.topic), rec.partition});
  }
  std::vector<TopicPartition> idle;
  std::map<TopicPartition, std::chrono::steady_clock::time_point> kept;
  for (const TopicPartition& tp : consumer_->assignment()) {
    if (!consumer_->PartitionAtEnd(tp)) continue;
    auto it = at_end_since_.find(tp);
    const auto since = it == at_end_since_.end() ? now : it->second;
    kept[tp] = since;
    if (now - since >= *settings_.idle_input) idle.push_back(tp);
  }
  at_end_since_ = std::move(kept);
  if (idle == idle_inputs_) return;
  for (const TopicPartition& tp : idle) {
    if (std::find(idle_inputs_.begin(), idle_inputs_.end(), tp) == idle_inputs_.end()) {
      spdlog::info(
          "{}: {}/{} is at its end and idle for {} s: it no longer holds the join watermark back",
          settings_.job, tp.first, tp.second, settings_.idle_input->count());
    }
  }
  idle_inputs_ = idle;
  transform_->SetIdleInputs(std::move(idle));
}

void EsJobRunner::DropOldDedupDays() {
  // Keep, for every partition, its watermark's day and the N-1 days before it: drop only what
  // is older than the floor of the partition that is furthest behind.
  auto pending = store_->NewBatch();
  std::optional<int64_t> min_watermark;
  for (const auto& [topic, partition] : consumer_->assignment()) {
    auto wm = pending.GetWatermark(partition);
    if (!wm.ok() || !wm->has_value()) return;  // a partition without a watermark: keep all
    if (!min_watermark || **wm < *min_watermark) min_watermark = **wm;
  }
  if (!min_watermark) return;
  absl::CivilDay floor =
      CivilDayOf(*min_watermark, settings_.time_zone) - (settings_.dedup_retention_days - 1);
  DayNumber day = static_cast<DayNumber>(floor.year() * 10000 + floor.month() * 100 + floor.day());
  if (auto st = store_->DropDedupDaysBefore(day); !st.ok()) {
    spdlog::warn("{}: dedup retention: {}", settings_.job, std::string(st.message()));
  }
}

absl::Status EsJobRunner::Stop() {
  stop_.Begin(std::chrono::steady_clock::now() + config_.shutdown.timeout);  // if not begun yet
  std::vector<std::string> given_up;
  if (!given_up_.empty()) given_up.push_back(given_up_);
  // Group mode: leave the group first. Its revoke (OnRevoked) delivers what is owed while the
  // group still counts this member as the owner (bounded by kafka.revoke_timeout and the stop's
  // deadline) and writes the hand-over; nothing is sent once the partitions are given up. An
  // unreachable coordinator is not waited for past the deadline.
  if (group_mode_ && consumer_) {
    if (auto st = consumer_->Close(stop_.deadline()); !st.ok()) {
      given_up.push_back(absl::StrCat("did not leave consumer group ", *config_.kafka.group, ".",
                                      settings_.job, " (", std::string(st.message()),
                                      "): its partitions move after session.timeout.ms"));
    }
    consumer_.reset();  // within the stop (connectors/kafka/destroy.h)
  }
  // Deliver what is owed until the stop's deadline (group mode: once the group is left, nothing
  // more is delivered); what is left stays owed, safely, and delivery_.GivenUp() names it.
  delivery_.Stop();
  if (consumer_) {
    if (auto st = consumer_->Close(stop_.deadline()); !st.ok()) {
      spdlog::debug("{}: {}", settings_.job, std::string(st.message()));
    }
  }
  consumer_.reset();  // within the stop (connectors/kafka/destroy.h)
  if (!store_) return absl::OkStatus();
  if (std::string owed = delivery_.GivenUp(); !owed.empty())
    given_up.insert(given_up.begin(), owed);
  given_up_ = absl::StrJoin(given_up, "; ");
  return store_->Close();
}

// ---------------------------------------------------------------------------------------------
// Group mode: hand-over offsets, assignment and revocation.

namespace {

std::string HandoverName(const TopicPartition& tp) {
  return absl::StrCat("handover.", tp.first, ".", tp.second);
}

}  // namespace

std::map<TopicPartition, int64_t> EsJobRunner::BatchHandover(
    const std::map<TopicPartition, int64_t>& next) {
  for (const auto& [tp, offset] : next) consumed_next_[tp] = offset;
  if (!settings_.join_state) return next;
  // As of this commit, a row still in the join column family holds its topic back to its own
  // offset (the next owner rebuilds it by reading from there). Computed now, not at delivery: a
  // later batch may delete the row (matched) with its document still owed.
  std::map<TopicPartition, int64_t> out;
  std::set<int32_t> numbers;
  for (const auto& [tp, offset] : next) numbers.insert(tp.second);
  for (int32_t p : numbers) {
    for (JoinSide side : {JoinSide::kOrder, JoinSide::kDetail}) {
      const TopicPartition tp{settings_.source_topics[side == JoinSide::kOrder ? 0 : 1], p};
      auto consumed = consumed_next_.find(tp);
      if (consumed == consumed_next_.end()) continue;
      auto min_row = store_->MinJoinSourceOffset(p, side);
      if (!min_row.ok()) {
        spdlog::warn("{}: hand-over of {}/{}: {}", settings_.job, tp.first, p,
                     std::string(min_row.status().message()));
        continue;  // not advanced this time
      }
      out[tp] = min_row->has_value() ? std::min(consumed->second, **min_row) : consumed->second;
    }
  }
  return out;
}

void EsJobRunner::CommitHandover(bool force) {
  auto now = std::chrono::steady_clock::now();
  if (!force && now - last_handover_time_ < std::chrono::seconds(1)) return;
  last_handover_time_ = now;
  const std::map<TopicPartition, int64_t> offsets = delivery_.Handover(consumer_->assignment());
  std::map<TopicPartition, int64_t> changed;
  for (const auto& [tp, offset] : offsets) {
    auto it = last_handover_.find(tp);
    if (it == last_handover_.end() || it->second != offset) changed[tp] = offset;
  }
  if (changed.empty()) return;
  consumer_->CommitAsync(changed);
  lag_.Committed(changed);
  for (const auto& [tp, offset] : changed) last_handover_[tp] = offset;
}

void EsJobRunner::RenewLease() {
  const auto now = std::chrono::steady_clock::now();
  if (!delivery_.LeaseWantsConfirmation(now)) return;  // not owning, or more than half left
  // At most one confirmation per second (a failing coordinator is not hammered).
  if (now - lease_sent_ < std::chrono::seconds(1)) return;
  lease_sent_ = now;
  const std::map<TopicPartition, int64_t> offsets = delivery_.Handover(consumer_->assignment());
  if (offsets.empty()) return;
  // The coordinator accepts a commit only from a member of the current generation: its answer
  // confirms the assignment as of `now`, when the request was sent.
  absl::Status st = consumer_->CommitSync(offsets, std::chrono::milliseconds(2000));
  if (!st.ok()) {
    spdlog::warn("{}: the group did not confirm this member's assignment ({}); deliveries wait",
                 settings_.job, std::string(st.message()));
    return;
  }
  lag_.Committed(offsets);
  for (const auto& [tp, offset] : offsets) last_handover_[tp] = offset;
  delivery_.Confirmed(now);
}

void EsJobRunner::OnRevoked(const std::vector<TopicPartition>& partitions) {
  const bool lost = consumer_->AssignmentLost();
  spdlog::info("{}: group takes away {} partitions{}", settings_.job, partitions.size(),
               lost ? " (assignment lost: what is owed is fenced at once)"
                    : "; delivering what is owed first");
  // No batch is in hand (the rebalance runs inside Poll, whose records are dropped). What is owed
  // is delivered within kafka.revoke_timeout, never longer, then fenced (JournalDelivery).
  bool clean = delivery_.Revoke(lost);
  const std::map<TopicPartition, int64_t> offsets = delivery_.Handover(partitions);
  absl::Status st = consumer_->CommitSync(offsets, stop_.Bound(std::chrono::seconds(10)));
  if (!st.ok()) {
    spdlog::warn("{}: hand-over commit failed ({}); the next owner starts earlier and rebuilds",
                 settings_.job, std::string(st.message()));
    clean = false;
  }
  // A clean hand-over lets this instance keep its local state if the partition comes back
  // untouched: the group's offset must then still be exactly this one (OnAssigned checks).
  if (clean) {
    for (const auto& [tp, offset] : offsets) {
      if (auto s = store_->SetMeta(HandoverName(tp), absl::StrCat(offset)); !s.ok()) {
        spdlog::warn("{}: {}", settings_.job, std::string(s.message()));
      }
      last_handover_[tp] = offset;
    }
  }
  for (const auto& tp : partitions) {
    last_handover_.erase(tp);
    consumed_next_.erase(tp);
  }
  lag_.Assigned({});
}

absl::StatusOr<std::vector<PartitionStart>> EsJobRunner::OnAssigned(
    const std::vector<TopicPartition>& partitions) {
  RTDW_ASSIGN_OR_RETURN(
      auto committed, GroupCommitted(
                          *consumer_, partitions, [this] { return stop_.stopping(); },
                          [this](std::string_view problem) { SetProblem(std::string(problem)); }));
  // State is per partition number (order-wide's two topics share it).
  std::map<int32_t, std::vector<std::string>> by_number;
  for (const auto& [topic, p] : partitions) by_number[p].push_back(topic);
  std::vector<PartitionStart> starts;
  size_t kept = 0, rebuilt = 0;
  for (const auto& [p, topics] : by_number) {
    // The local state is exactly what the group hands over when this instance wrote that
    // hand-over itself and nobody committed anything since.
    bool local_valid = topics.size() == settings_.source_topics.size();
    for (const auto& topic : topics) {
      auto mark = store_->GetMeta(HandoverName({topic, p}));
      if (!mark.ok()) return mark.status();
      auto it = committed.find({topic, p});
      if (!mark->has_value() || it == committed.end() || **mark != absl::StrCat(it->second)) {
        local_valid = false;
      }
    }
    for (const auto& topic : topics) {
      // Consumed: from here on the local state moves past the mark.
      if (auto s = store_->SetMeta(HandoverName({topic, p}), ""); !s.ok()) return s;
    }
    if (!local_valid) {
      RTDW_RETURN_IF_ERROR(RestorePartition(p));
      ++rebuilt;
    } else {
      ++kept;
    }
    for (const auto& topic : topics) {
      auto local = store_->GetOffset(topic, p);
      if (!local.ok()) return local.status();
      auto it = committed.find({topic, p});
      std::optional<int64_t> known;
      if (local_valid && local->has_value()) {
        known = **local;
      } else if (it != committed.end()) {
        known = it->second;
      }
      RTDW_ASSIGN_OR_RETURN(PartitionStart start,
                            StartOf(config_, topic, p, known, "committed offset in the group"));
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
  delivery_.Assigned(committed);
  lag_.Assigned(starts);
  group_assignments_->Add();
  partitions_rebuilt_->Add(rebuilt);
  consumer_at_end_ = false;
  SetProblem("");
  spdlog::info("{}: group gives {} partitions: {} kept their local state, {} rebuilt",
               settings_.job, partitions.size(), kept, rebuilt);
  return starts;
}

absl::Status EsJobRunner::RestorePartition(int32_t partition) {
  RTDW_RETURN_IF_ERROR(store_->DropPartitionState(partition, settings_.source_topics));
  for (const auto& topic : settings_.source_topics) delivery_.ForgetHandover({topic, partition});
  // The join rebuilds by replay from the hand-over offset; de-dup comes from ES.
  if (settings_.dau_index_prefix.empty()) return absl::OkStatus();
  // ES unreachable or answering badly: waiting can fix it. A failed attempt's partial restore is
  // dropped before the next one.
  bool dropped_failed = false;  // dropping a failed attempt's state failed: give up
  auto transient = [](const absl::Status& st) {
    return absl::IsUnavailable(st) || absl::IsDeadlineExceeded(st) || absl::IsInternal(st);
  };
  RetryOptions retry;
  retry.backoff = kServiceWaitBackoff;
  retry.stop = [this] { return stop_.stopping(); };
  retry.attempt_once_despite_stop = true;
  retry.what = "de-dup restore";
  retry.retryable = [&](const absl::Status& st) { return !dropped_failed && transient(st); };
  retry.on_retry = [&](const absl::Status& st, std::chrono::milliseconds) {
    SetProblem(absl::StrCat("restoring de-dup of partition ", partition,
                            " from ES: ", std::string(st.message())));
  };
  absl::Status st = RetryUntil(retry, [&]() -> absl::Status {
    absl::Status restored = RestoreDedupFromEs(partition);
    if (restored.ok() || !transient(restored)) return restored;
    if (absl::Status d = store_->DropPartitionState(partition, settings_.source_topics); !d.ok()) {
      dropped_failed = true;
      return d;
    }
    return restored;
  });
  if (absl::IsCancelled(st) && stop_.stopping()) {
    return absl::CancelledError("stopped during a de-dup restore");
  }
  return st;
}

absl::Status EsJobRunner::RestoreDedupFromEs(int32_t partition) {
  // The shared restore (core/dedup_restore.h): every DAU index, only this partition's documents
  // (their rtdw_src), slots on the day of their ts, the watermark raised to the newest.
  const std::string& topic = settings_.source_topics.front();
  EsDauReaderOptions ro;
  ro.index = absl::StrCat(settings_.dau_index_prefix, "*");
  ro.src_prefix = absl::StrCat(topic, "/", partition, "/");
  ro.sort = {"_index", "mid"};
  ro.keyword_fallback = false;
  ro.page_size = 5000;
  EsDauDocumentReader reader(es_.get(), std::move(ro));
  StoreRestoreTarget<StateStore> target(store_.get());
  DedupRestoreOptions o;
  o.time_zone = settings_.time_zone;
  o.topic = topic;
  o.partitions = {partition};
  o.raise_watermarks = true;
  o.now_ms = NowMs();
  o.missing_index_is_empty = true;  // no DAU index yet
  DedupRestoreStats stats;
  auto started = std::chrono::steady_clock::now();
  RTDW_RETURN_IF_ERROR(RestoreDedup(reader, target, o, &stats));
  spdlog::info(
      "{}: partition {}: de-dup restored from ES: {} documents, {} entries ({} skipped) "
      "in {} ms",
      settings_.job, partition, stats.documents, stats.restored,
      stats.skipped + stats.other_partitions,
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                            started)
          .count());
  return absl::OkStatus();
}

}  // namespace rtdw
