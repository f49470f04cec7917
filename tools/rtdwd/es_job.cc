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
#include "core/engine/owed_journal.h"
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

constexpr char kJournalModeMeta[] = "journal_mode";

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
      rejections_(settings_.job),
      group_mode_(config.kafka.group.has_value()),
      lease_(MembershipLease(config)) {
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
  delivered_docs_ =
      metrics_->GetCounter("rtdw_es_documents_delivered_total", "Documents ES acknowledged", job);
  rejected_docs_ = metrics_->GetCounter("rtdw_es_documents_rejected_total",
                                        "Documents ES refused for good (dead-lettered)", job);
  superseded_docs_ = metrics_->GetCounter(
      "rtdw_es_superseded_total",
      "Versioned writes ES refused as older than its document (409; counted delivered)", job);
  fenced_entries_ = metrics_->GetCounter(
      "rtdw_es_fenced_entries_total",
      "Group mode: owed journal entries given up at a revoke, never sent (the next owner "
      "processes their records again)",
      job);
  revokes_timed_out_ = metrics_->GetCounter(
      "rtdw_revokes_timed_out_total",
      "Group mode: revokes that gave partitions up with entries still owed (kafka.revoke_timeout "
      "passed, or the assignment was already lost)",
      job);
  revoke_wait_seconds_ = metrics_->GetHistogram(
      "rtdw_revoke_wait_seconds", "Group mode: how long a revoke waited for what is owed", job,
      MetricsRegistry::LatencyBounds());
  backlog_gauge_ = metrics_->GetGauge("rtdw_journal_backlog", "Journal entries owed to ES", job);
  metrics_
      ->GetGauge("rtdw_journal_backlog_limit",
                 "Journal entries owed to ES at which polling pauses (back-pressure)", job)
      ->Set(static_cast<double>(settings_.max_backlog));
  es_rejected_ = common_.DeadLetters(ReasonCode(Reason::kEsRejected));
  group_assignments_ = metrics_->GetCounter("rtdw_group_assignments_total",
                                            "Group mode: partition assignments received", job);
  partitions_rebuilt_ = metrics_->GetCounter(
      "rtdw_group_partitions_rebuilt_total",
      "Group mode: assigned partitions whose state was dropped and rebuilt", job);
  dedup_restored_ = metrics_->GetCounter("rtdw_group_dedup_restored_total",
                                         "Group mode: de-dup entries restored from ES", job);
  delivery_seconds_ = metrics_->GetHistogram(
      "rtdw_delivery_seconds", "Journal entry delivery latency, commit to acknowledged", job,
      MetricsRegistry::LatencyBounds());
}

EsJobRunner::~EsJobRunner() {
  Cancel();
  // Leaving the group runs OnRevoked, which needs this object whole: close before members go.
  if (consumer_) consumer_->Close();
  {
    std::lock_guard<std::mutex> lock(mu_);
    delivery_stop_ = true;
  }
  cv_.notify_all();
  if (delivery_thread_.joinable()) delivery_thread_.join();
}

void EsJobRunner::BeginStop(std::chrono::steady_clock::time_point deadline) {
  JobRunner::BeginStop(deadline);
  { std::lock_guard<std::mutex> lock(mu_); }  // a waiter is either asleep or sees the flag
  cv_.notify_all();
}

void EsJobRunner::Cancel() {
  JobRunner::Cancel();
  cancel_ = true;
  {
    std::lock_guard<std::mutex> lock(mu_);
    abort_delivery_ = true;
  }
  cv_.notify_all();
}

void EsJobRunner::SetProblem(std::string problem) { problem_.Set(std::move(problem)); }

std::string EsJobRunner::HealthProblem() const {
  std::string p = problem_.Get();
  return p.empty() ? rejections_.Problem() : p;
}

size_t EsJobRunner::Backlog() const {
  std::lock_guard<std::mutex> lock(mu_);
  return owed_.size();
}

bool EsJobRunner::CaughtUp() const { return consumer_at_end_.load() && Backlog() == 0; }

absl::Status EsJobRunner::ConnectEs() {
  EsClientOptions o = JobEsClientOptions(config_, settings_.job);
  o.max_bulks_in_flight = 4;
  o.on_response_too_large = [c = es_too_large_] { c->Add(); };
  auto client = EsClient::Create(o);
  if (!client.ok()) return client.status();
  es_ = std::move(*client);
  EsJournalSinkOptions so;
  so.cancel = &abort_delivery_;
  so.on_retry = [this](const BulkRetryEvent&) { es_retries_->Add(); };
  so.before_request = [this](uint64_t seq) { return MaySend(seq); };
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

absl::Status EsJobRunner::MaySend(uint64_t seq) {
  may_not_ = MayNot::kNone;
  if (!check_ownership_.load()) return absl::OkStatus();
  std::lock_guard<std::mutex> lock(mu_);
  const OwedJournal::Owed* owed = owed_.Find(seq);
  if (owed == nullptr || fencing_ || !owning_ || owed->epoch != assignment_epoch_) {
    may_not_ = MayNot::kFenced;
    return absl::AbortedError(
        absl::StrCat("journal entry ", seq, " is fenced: its partitions were taken away"));
  }
  if (std::chrono::steady_clock::now() >= lease_until_) {
    may_not_ = MayNot::kLease;
    return absl::UnavailableError(
        absl::StrCat("journal entry ", seq,
                     " waits: the group has not confirmed this member's assignment within the "
                     "last ",
                     lease_.count(), " ms"));
  }
  return absl::OkStatus();
}

EsJobRunner::Delivered EsJobRunner::DeliverOne(const JournalEntry& entry) {
  const auto started = std::chrono::steady_clock::now();
  // Why the last attempt ended without a retry: a fence (group mode) or a stop.
  bool fenced = false;
  RetryOptions retry;
  retry.backoff = kDeliveryRetryBackoff;
  retry.stop = [this] { return cancel_.load() || abort_delivery_.load(); };
  retry.what = "delivery";
  retry.retryable = [&](const absl::Status&) {
    return !fenced && !cancel_.load() && !abort_delivery_.load();
  };
  retry.on_retry = [&](const absl::Status& st, std::chrono::milliseconds) {
    SetProblem(std::string(st.message()));
  };
  absl::Status st = RetryUntil(retry, [&]() -> absl::Status {
    if (faults_.armed("mid_delivery")) {
      // Send the first half of the entry's documents, then (maybe) die: a crash mid-delivery.
      auto actions = ParseBulkBody(entry.body);
      if (actions.ok() && actions->size() > 1) {
        std::vector<BulkAction> half(actions->begin(), actions->begin() + actions->size() / 2);
        (void)es_->Bulk(half);
      }
      faults_.Hit("mid_delivery");
    }
    auto deliver = [&] {
      return DeliverJournalEntry(*store_, *sink_, entry, settings_.job, NowMs(),
                                 [this](std::string_view point) { faults_.Hit(point); });
    };
    auto done = deliver();
    // Group mode: not a failure of ES while the membership lease is unconfirmed: wait for the job
    // thread's next confirmation (or the fence) and send again, without a backoff.
    while (!done.ok() && may_not_ == MayNot::kLease && !abort_delivery_.load()) {
      SetProblem(std::string(done.status().message()));
      {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait_for(lock, std::chrono::milliseconds(500), [this] {
          return abort_delivery_.load() || std::chrono::steady_clock::now() < lease_until_;
        });
      }
      if (abort_delivery_.load()) break;
      done = deliver();
    }
    if (!done.ok()) {
      if (may_not_ == MayNot::kFenced) fenced = true;
      return done.status();
    }
    const DeliveryReport* report = &done->report;
    delivered_docs_->Add(report->acknowledged);
    rejected_docs_->Add(report->rejected.size());
    superseded_docs_->Add(report->superseded);
    common_.dead_letters->Add(report->rejected.size());
    es_rejected_->Add(report->rejected.size());
    if (!report->rejected.empty()) {
      const RejectedItem& r = report->rejected.front();
      rejections_.Note(entry.seq, report->docs, report->rejected.size(),
                       absl::StrCat(r.error_type, ": ", r.error_reason, " of ", r.index, "/", r.id),
                       done->letter_seqs);
    }
    return absl::OkStatus();
  });
  if (st.ok()) {
    delivery_seconds_->Observe(
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
    return Delivered::kDone;
  }
  return cancel_.load() ? Delivered::kCancelled : Delivered::kFenced;
}

absl::Status EsJobRunner::ReplayJournal() {
  auto owed = store_->ListJournal(/*with_bodies=*/false);
  if (!owed.ok()) return owed.status();
  // Which mode wrote what the journal holds (absent: a version before the marker, or nothing
  // written yet).
  RTDW_ASSIGN_OR_RETURN(std::optional<std::string> written_by, store_->GetMeta(kJournalModeMeta));
  if (owed->empty()) return absl::OkStatus();
  if (group_mode_ && written_by.has_value() && *written_by == "group") {
    // Their records lie after the group's committed offset (it never passes an undelivered
    // record): the partition's owner processes them again. Delivering them now could overwrite
    // what that owner has written since. The local state they came with is not trusted either:
    // OnAssigned rebuilds any partition without a clean hand-over record (deleted at assignment).
    uint64_t docs = 0;
    for (const auto& listed : *owed) {
      docs += listed.doc_count;
      if (auto st = store_->DeleteJournal(listed.seq); !st.ok()) return st;
    }
    spdlog::warn(
        "{}: group mode: dropped {} owed journal entries ({} documents) left by a crash; their "
        "records are after the group's committed offsets and will be processed again",
        settings_.job, owed->size(), docs);
    return absl::OkStatus();
  }
  if (group_mode_) {
    // Lone mode wrote them (or a version that did not say): lone mode commits its lag-monitoring
    // offsets before delivery, so the group's offset may already be past their records — dropping
    // them could lose documents. Deliver them before joining (versions keep ES right should a
    // member of the group have written a better document meanwhile).
    spdlog::info(
        "{}: switching to group mode: delivering {} journal entries a lone-mode run left owed "
        "before joining the group",
        settings_.job, owed->size());
  } else if (written_by.has_value() && *written_by == "group") {
    spdlog::info(
        "{}: switching to lone mode: delivering {} journal entries a group-mode run left owed "
        "(their records lie before this store's offsets; versions keep a better document in ES)",
        settings_.job, owed->size());
  }
  spdlog::info("{}: re-delivering {} owed journal entries", settings_.job, owed->size());
  size_t remaining = owed->size();
  backlog_gauge_->Set(static_cast<double>(remaining));
  for (const auto& listed : *owed) {
    auto entry = store_->ReadJournal(listed.seq);
    if (!entry.ok()) return entry.status();
    if (DeliverOne(*entry) != Delivered::kDone) {
      return absl::CancelledError("stopped during the start-up replay");
    }
    backlog_gauge_->Set(static_cast<double>(--remaining));
  }
  spdlog::info("{}: start-up replay done", settings_.job);
  return absl::OkStatus();
}

absl::Status EsJobRunner::Start() {
  auto store = OpenJobStore(config_, settings_.job);
  if (!store.ok()) return store.status();
  store_ = std::move(*store);

  if (auto st = ConnectEs(); !st.ok()) return st;
  if (auto st = ReplayJournal(); !st.ok()) return st;
  // From here on the journal is this mode's (ReplayJournal reads it at the next start).
  if (auto st = store_->SetMeta(kJournalModeMeta, group_mode_ ? "group" : "lone"); !st.ok()) {
    return st;
  }

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

  delivery_thread_ = std::thread([this] { DeliveryLoop(); });
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
  if (group_mode_) check_ownership_ = true;
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
  {
    std::unique_lock<std::mutex> lock(mu_);
    if (owed_.size() >= settings_.max_backlog) {
      cv_.wait_for(lock, std::chrono::milliseconds(100),
                   [this] { return owed_.size() < settings_.max_backlog; });
      // Group mode: a member unconfirmed for a whole session polls anyway — the poll runs the
      // revoke (librdkafka has noticed the loss by then) that fences what it owes; its
      // deliveries wait for the lease, so the backlog would never drain.
      const auto now = std::chrono::steady_clock::now();
      const bool lease_lapsed =
          group_mode_ && owning_ && now >= lease_until_ && now - confirmed_at_ >= 2 * lease_;
      if (owed_.size() >= settings_.max_backlog && !lease_lapsed) {
        lock.unlock();
        if (group_mode_) RenewLease();
        lag_.Update(consumer_->HighWatermarks());  // the input still grows while paused
        return size_t{0};
      }
    }
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
        {
          std::lock_guard<std::mutex> lock(mu_);
          // Group mode: a partition with nothing delivered yet hands over where this batch
          // started (what the membership lease commits before anything is acknowledged).
          owed_.Committed(std::move(committed->entry), handover,
                          group_mode_ ? first : std::map<TopicPartition, int64_t>{},
                          assignment_epoch_);
          backlog_gauge_->Set(static_cast<double>(owed_.size()));
        }
        cv_.notify_all();
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

void EsJobRunner::DeliveryLoop() {
  while (true) {
    JournalEntry entry;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [this] { return delivery_stop_ || (!owed_.empty() && !fencing_); });
      if (owed_.empty()) return;     // stop requested and nothing owed
      entry = owed_.front()->entry;  // stays owed (and counted) until delivered
      delivering_ = true;
    }
    const Delivered done = DeliverOne(entry);
    {
      std::lock_guard<std::mutex> lock(mu_);
      delivering_ = false;
      // A fence may have taken the entry away meanwhile (OnRevoked).
      if (done == Delivered::kDone && owed_.Delivered(entry.seq)) {
        backlog_gauge_->Set(static_cast<double>(owed_.size()));
      }
    }
    cv_.notify_all();
    if (done == Delivered::kCancelled) return;  // the entry stays in the journal
    if (done == Delivered::kFenced) {
      // OnRevoked takes the entry away; at a stop it stays in the journal, unsent.
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] {
        return delivery_stop_ || owed_.empty() || owed_.front()->entry.seq != entry.seq;
      });
      if (!owed_.empty() && owed_.front()->entry.seq == entry.seq) return;
    }
  }
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
  // Deliver what is owed until the stop's deadline; what is left stays owed, safely.
  {
    std::unique_lock<std::mutex> lock(mu_);
    delivery_stop_ = true;
    cv_.notify_all();
    // (Group mode: once the group is left, nothing more is delivered.)
    cv_.wait_until(lock, stop_.deadline(),
                   [this] { return owed_.empty() || cancel_.load() || (group_mode_ && !owning_); });
    if (!owed_.empty()) {
      spdlog::warn("{}: {} journal entries still owed at shutdown; delivered after restart",
                   settings_.job, owed_.size());
    }
  }
  cancel_ = true;  // the delivery thread lets go of the entry in hand
  {
    std::lock_guard<std::mutex> lock(mu_);
    abort_delivery_ = true;
  }
  cv_.notify_all();
  if (delivery_thread_.joinable()) delivery_thread_.join();
  if (consumer_) {
    if (auto st = consumer_->Close(stop_.deadline()); !st.ok()) {
      spdlog::debug("{}: {}", settings_.job, std::string(st.message()));
    }
  }
  consumer_.reset();  // within the stop (connectors/kafka/destroy.h)
  if (!store_) return absl::OkStatus();
  // What the journal still holds is owed (a start-up replay cut short, a delivery given up):
  // delivered first at the next start.
  if (auto owed = store_->ListJournal(/*with_bodies=*/false); owed.ok() && !owed->empty()) {
    uint64_t docs = 0;
    for (const auto& e : *owed) docs += e.doc_count;
    // (Group mode drops them at the next start instead: the group's offset is behind them.)
    given_up.insert(given_up.begin(),
                    absl::StrCat(owed->size(), " journal entries (", docs,
                                 " documents) owed to Elasticsearch: ",
                                 group_mode_ ? "their records are processed again from the "
                                               "group's offsets"
                                             : "delivered first at the next start"));
  }
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

absl::StatusOr<std::map<TopicPartition, int64_t>> EsJobRunner::HandoverOffsets(
    const std::vector<TopicPartition>& partitions) {
  std::lock_guard<std::mutex> lock(mu_);
  return owed_.Handover(partitions);
}

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
  auto offsets = HandoverOffsets(consumer_->assignment());
  if (!offsets.ok()) {
    spdlog::warn("{}: hand-over offsets: {}", settings_.job,
                 std::string(offsets.status().message()));
    return;
  }
  std::map<TopicPartition, int64_t> changed;
  for (const auto& [tp, offset] : *offsets) {
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
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!owning_) return;
    if (lease_until_ - now > lease_ / 2) return;  // more than half of it left
  }
  // At most one confirmation per second (a failing coordinator is not hammered).
  if (now - lease_sent_ < std::chrono::seconds(1)) return;
  lease_sent_ = now;
  auto offsets = HandoverOffsets(consumer_->assignment());
  if (!offsets.ok() || offsets->empty()) return;
  // The coordinator accepts a commit only from a member of the current generation: its answer
  // confirms the assignment as of `now`, when the request was sent.
  absl::Status st = consumer_->CommitSync(*offsets, std::chrono::milliseconds(2000));
  if (!st.ok()) {
    spdlog::warn("{}: the group did not confirm this member's assignment ({}); deliveries wait",
                 settings_.job, std::string(st.message()));
    return;
  }
  lag_.Committed(*offsets);
  for (const auto& [tp, offset] : *offsets) last_handover_[tp] = offset;
  confirmed_at_ = now;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (owning_) lease_until_ = std::max(lease_until_, now + lease_);
  }
  cv_.notify_all();
}

void EsJobRunner::OnRevoked(const std::vector<TopicPartition>& partitions) {
  const bool lost = consumer_->AssignmentLost();
  spdlog::info("{}: group takes away {} partitions{}", settings_.job, partitions.size(),
               lost ? " (assignment lost: what is owed is fenced at once)"
                    : "; delivering what is owed first");
  // No batch is in hand (the rebalance runs inside Poll, whose records are dropped). Deliver
  // what is owed within kafka.revoke_timeout, never longer: the group's rebalance waits for this
  // callback, and ES may be down. The assignment is eager (every partition revoked at once), so
  // what is left is fenced as a whole: an entry spans partitions.
  bool clean;
  size_t fenced = 0;
  uint64_t fenced_docs = 0;
  std::vector<uint64_t> fenced_seqs;
  const auto started = std::chrono::steady_clock::now();
  {
    std::unique_lock<std::mutex> lock(mu_);
    auto until = started;
    if (!lost) {
      // The group asks this member to rejoin: it is a member of the generation being revoked,
      // and the partitions cannot move before it rejoins (after this callback) or is removed
      // (max.poll.interval.ms, at least twice kafka.revoke_timeout). That confirms it for one
      // lease; deliveries go on for the revoke's wait, which the lease also bounds.
      lease_until_ = std::max(lease_until_, started + lease_);
      until = std::min({started + config_.kafka.revoke_timeout, lease_until_, stop_.deadline()});
      if (stop_.stopping()) {
        // A stop: this member leaves on its own and still heartbeats, so nobody else is given
        // its partitions before it leaves; it delivers until the stop's deadline, as a lone stop
        // does, and a clean hand-over keeps its local state for its next start.
        lease_until_ = std::max(lease_until_, stop_.deadline());
        until = stop_.deadline();
      }
    }
    cv_.notify_all();
    cv_.wait_until(lock, until, [this] { return owed_.empty() || cancel_.load(); });
    revoke_wait_seconds_->Observe(
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
    owning_ = false;
    lease_until_ = {};
    // A stop leaves what is owed in the journal, as ever (a group-mode start drops it, a
    // lone-mode start delivers it): when the whole group stops, nobody processes it again.
    if (!owed_.empty() && !stop_.stopping()) {
      fencing_ = true;
      abort_delivery_ = true;  // ends a request in flight, and every wait of the delivery
      cv_.notify_all();
      // The delivery thread lets go of its entry: an abort, not a wait for ES. Bounded all the
      // same (a store write it is in); an entry it still held is refused by MaySend.
      cv_.wait_for(lock, std::chrono::seconds(5), [this] { return !delivering_; });
      for (const OwedJournal::Owed& o : owed_.Fence()) {
        ++fenced;
        fenced_docs += o.entry.doc_count;
        fenced_seqs.push_back(o.entry.seq);
      }
      backlog_gauge_->Set(0);
      fencing_ = false;
      abort_delivery_ = cancel_.load();
    }
    clean = owed_.empty() && fenced == 0;
  }
  cv_.notify_all();
  if (fenced > 0) {
    fenced_entries_->Add(fenced);
    revokes_timed_out_->Add();
    // The partitions' next owner processes their records again from the hand-over offset: the
    // entries are nobody's to deliver any more (a later start, in either mode, must not).
    for (uint64_t seq : fenced_seqs) {
      if (auto st = store_->DeleteJournal(seq); !st.ok()) {
        spdlog::warn("{}: fenced journal entry {}: {}", settings_.job, seq,
                     std::string(st.message()));
      }
    }
    spdlog::warn(
        "{}: fenced {} owed journal entries ({} documents) at the revoke ({}): never sent; the "
        "partitions' next owner processes their records again from the hand-over offset",
        settings_.job, fenced, fenced_docs,
        lost ? std::string("the assignment was lost")
             : absl::StrCat("kafka.revoke_timeout ", config_.kafka.revoke_timeout.count(),
                            " s passed"));
  }
  auto offsets = HandoverOffsets(partitions);
  absl::Status st = offsets.status();
  if (st.ok()) st = consumer_->CommitSync(*offsets, stop_.Bound(std::chrono::seconds(10)));
  if (!st.ok()) {
    spdlog::warn("{}: hand-over commit failed ({}); the next owner starts earlier and rebuilds",
                 settings_.job, std::string(st.message()));
    clean = false;
  }
  // A clean hand-over lets this instance keep its local state if the partition comes back
  // untouched: the group's offset must then still be exactly this one (OnAssigned checks).
  if (clean) {
    for (const auto& [tp, offset] : *offsets) {
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
  {
    // What the group committed is hand-over-able by definition; deliveries raise it.
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& [tp, offset] : committed) owed_.SetHandover(tp, offset);
    // A new assignment: entries are made under it from now on. Nothing is sent for it before the
    // coordinator confirms it (RenewLease, after the next poll): this callback may run long after
    // the group's answer (a member paused in between).
    ++assignment_epoch_;
    owning_ = true;
    lease_until_ = {};
    confirmed_at_ = std::chrono::steady_clock::now();  // the unconfirmed period starts here
  }
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
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& topic : settings_.source_topics) owed_.ForgetHandover({topic, partition});
  }
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
