#include "tools/rtdwd/es_job.h"

#include <algorithm>
#include <set>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "connectors/es/bulk.h"
#include "connectors/es/templates.h"
#include "core/backoff.h"
#include "core/dau_document.h"
#include "core/dead_letter.h"
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

  // Wait for the cluster (and install the templates) with backoff: waiting can fix it.
  Backoff backoff(BackoffOptions{std::chrono::milliseconds(500), std::chrono::milliseconds(100),
                                 std::chrono::milliseconds(10000), 2.0});
  while (true) {
    absl::Status st =
        InstallIndexTemplates(*es_, settings_.dau_index_prefix, settings_.order_wide_index_prefix);
    if (st.ok()) break;
    if (absl::IsFailedPrecondition(st)) return st;  // wrong version: waiting will not fix it
    SetProblem(absl::StrCat("waiting for Elasticsearch at ", config_.es.urls.front(), ": ",
                            std::string(st.message())));
    // Waiting for a service is given up as soon as a stop begins (nothing is delivered by it).
    if (!SleepUnlessCancelled(backoff.NextDelay(), stop_.stopping_flag()) || stop_.stopping()) {
      return absl::CancelledError("stopped while waiting for Elasticsearch");
    }
  }
  SetProblem("");
  return absl::OkStatus();
}

absl::Status EsJobRunner::MaySend(uint64_t seq) {
  may_not_ = MayNot::kNone;
  if (!check_ownership_.load()) return absl::OkStatus();
  std::lock_guard<std::mutex> lock(mu_);
  const Owed* owed = nullptr;
  for (const Owed& o : owed_) {
    if (o.entry.seq == seq) owed = &o;
  }
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
  Backoff backoff(BackoffOptions{std::chrono::milliseconds(500), std::chrono::milliseconds(100),
                                 std::chrono::milliseconds(30000), 2.0});
  auto started = std::chrono::steady_clock::now();
  while (!cancel_.load()) {
    if (faults_.armed("mid_delivery")) {
      // Send the first half of the entry's documents, then (maybe) die: a crash mid-delivery.
      auto actions = ParseBulkBody(entry.body);
      if (actions.ok() && actions->size() > 1) {
        std::vector<BulkAction> half(actions->begin(), actions->begin() + actions->size() / 2);
        (void)es_->Bulk(half);
      }
      faults_.Hit("mid_delivery");
    }
    auto report = sink_->Deliver(entry);
    if (report.ok()) {
      faults_.Hit("after_delivery");
      std::vector<std::string> lines;
      int64_t now = NowMs();
      for (const auto& item : report->rejected) {
        lines.push_back(EsRejectedDeadLetter(settings_.job, item, now));
      }
      auto done = store_->CompleteJournal(entry.seq, lines);
      if (!done.ok()) {
        SetProblem(absl::StrCat("cannot complete journal entry ", entry.seq, ": ",
                                std::string(done.status().message())));
        if (!SleepUnlessCancelled(backoff.NextDelay(), &abort_delivery_)) break;
        continue;  // re-delivering is harmless (deterministic ids)
      }
      delivered_docs_->Add(report->acknowledged);
      rejected_docs_->Add(report->rejected.size());
      superseded_docs_->Add(report->superseded);
      common_.dead_letters->Add(report->rejected.size());
      es_rejected_->Add(report->rejected.size());
      if (!report->rejected.empty()) {
        const RejectedItem& r = report->rejected.front();
        rejections_.Note(
            entry.seq, report->docs, report->rejected.size(),
            absl::StrCat(r.error_type, ": ", r.error_reason, " of ", r.index, "/", r.id), *done);
      }
      delivery_seconds_->Observe(
          std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
      return Delivered::kDone;
    }
    if (cancel_.load()) return Delivered::kCancelled;
    if (may_not_ == MayNot::kFenced || abort_delivery_.load()) return Delivered::kFenced;
    if (may_not_ == MayNot::kLease) {
      // Not a failure of ES: wait for the job thread's next confirmation (or the fence).
      SetProblem(std::string(report.status().message()));
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait_for(lock, std::chrono::milliseconds(500), [this] {
        return abort_delivery_.load() || std::chrono::steady_clock::now() < lease_until_;
      });
      continue;
    }
    SetProblem(absl::StrCat("delivering journal entry ", entry.seq, ": ",
                            std::string(report.status().message())));
    if (!SleepUnlessCancelled(backoff.NextDelay(), &abort_delivery_)) break;
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
  std::vector<PartitionStart> starts;
  int first_count = -1;
  for (const auto& topic : settings_.source_topics) {
    auto partitions = consumer_->PartitionCount(topic, std::chrono::seconds(5));
    if (absl::IsNotFound(partitions.status())) {
      SetProblem(absl::StrCat("waiting for source topic ", topic));
      consumer_at_end_ = true;  // a topic that does not exist counts as empty
      return absl::OkStatus();
    }
    if (!partitions.ok()) {
      SetProblem(absl::StrCat("kafka unreachable (", config_.kafka.brokers,
                              "): ", std::string(partitions.status().message())));
      return absl::OkStatus();
    }
    if (auto st = CheckPartitionCount(*store_, topic, *partitions); !st.ok()) return st;
    if (settings_.co_partitioned && first_count >= 0 && *partitions != first_count) {
      return absl::FailedPreconditionError(absl::StrCat(
          settings_.job, ": the source topics ", absl::StrJoin(settings_.source_topics, " and "),
          " have different partition counts (", first_count, " vs ", *partitions,
          "); the join relies on co-partitioning"));
    }
    first_count = *partitions;
    if (group_mode_) continue;
    auto topic_starts = PartitionStarts(*store_, config_, topic, *partitions);
    if (!topic_starts.ok()) return topic_starts.status();
    starts.insert(starts.end(), topic_starts->begin(), topic_starts->end());
  }
  if (group_mode_) {
    check_ownership_ = true;
    if (auto st = consumer_->Subscribe(settings_.source_topics, this); !st.ok()) return st;
    assigned_ = true;
    consumer_at_end_ = false;
    SetProblem("");
    spdlog::info("{}: joined consumer group {}.{} for {}", settings_.job, *config_.kafka.group,
                 settings_.job, absl::StrJoin(settings_.source_topics, ","));
    return absl::OkStatus();
  }
  if (auto st = consumer_->Assign(starts); !st.ok()) return st;
  lag_.Assigned(starts);
  assigned_ = true;
  consumer_at_end_ = false;
  SetProblem("");
  spdlog::info("{}: assigned {} partitions of {}", settings_.job, starts.size(),
               absl::StrJoin(settings_.source_topics, ","));
  return absl::OkStatus();
}

absl::StatusOr<size_t> EsJobRunner::RunOnce() {
  if (!assigned_) {
    if (auto st = TryAssign(); !st.ok()) return st;
    if (!assigned_) {
      std::this_thread::sleep_for(std::chrono::milliseconds(500));
      return size_t{0};
    }
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
  Backoff backoff(BackoffOptions{std::chrono::milliseconds(200), std::chrono::milliseconds(50),
                                 std::chrono::milliseconds(10000), 2.0});
  const EsTransformCounters before = transform_->counters();
  while (true) {
    PendingBatch pending = store_->NewBatch();
    BulkOutput out;
    absl::Status st =
        transform_->ProcessBatch(batch_.records(), now_ms, dims_.get(), &pending, &out);
    if (st.ok()) {
      pending.ResolveDeadLetters(batch_.records());  // records read again: their old letters
      std::map<TopicPartition, int64_t> next;
      std::map<TopicPartition, int64_t> first;
      for (const InputRecord& rec : batch_.records()) {
        const TopicPartition tp{std::string(rec.topic), rec.partition};
        auto& slot = next[tp];
        slot = std::max(slot, rec.offset + 1);
        auto [at, fresh] = first.try_emplace(tp, rec.offset);
        if (!fresh) at->second = std::min(at->second, rec.offset);
      }
      for (const auto& [tp, offset] : next) {
        if (auto s = pending.SetOffset(tp.first, tp.second, offset); !s.ok()) return s;
      }
      JournalEntry entry;
      const bool owes = out.docs > 0;
      if (owes) {
        entry.target = out.target;
        entry.body = std::move(out.body);
        entry.doc_count = out.docs;
        pending.SetJournal(entry);
      }
      faults_.Hit("before_commit");
      auto committed = store_->Commit(std::move(pending));
      if (committed.ok()) {
        faults_.Hit("after_commit");
        // Group mode: what becomes hand-over-able once this batch's documents are acknowledged.
        const std::map<TopicPartition, int64_t> handover = group_mode_ ? BatchHandover(next) : next;
        {
          std::lock_guard<std::mutex> lock(mu_);
          if (group_mode_) {
            // A partition with nothing delivered yet hands over where this batch started (what
            // the membership lease commits before anything is acknowledged).
            for (const auto& [tp, offset] : first) delivered_next_.try_emplace(tp, offset);
          }
          if (owes) {
            entry.seq = committed->journal_seq.value_or(0);
            owed_.push_back(Owed{std::move(entry), handover, assignment_epoch_});
            backlog_gauge_->Set(static_cast<double>(owed_.size()));
          } else {
            // Nothing of its own to deliver: hand-over-able once what precedes it is.
            auto& into = owed_.empty() ? delivered_next_ : owed_.back().next;
            for (const auto& [tp, offset] : handover) into[tp] = offset;
          }
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
      st = committed.status();
    } else if (absl::IsUnavailable(st)) {
      redis_errors_->Add();
    } else if (!absl::IsUnavailable(st) && !absl::IsResourceExhausted(st)) {
      // A transform bug or a store read failure: not something waiting fixes.
      return st;
    }
    auto delay = backoff.NextDelay();
    SetProblem(absl::StrCat("batch not committed, retrying in ", delay.count(),
                            " ms: ", std::string(st.message())));
    lag_.Update(consumer_->HighWatermarks());  // the input still grows while this batch waits
    if (stop_.stopping() || !SleepUnlessCancelled(delay, stop_.stopping_flag())) {
      given_up_ = absl::StrCat("a batch of ", batch_.size(), " records read but not committed (",
                               std::string(st.message()), "): read again at the next start");
      return absl::OkStatus();
    }
  }
}

void EsJobRunner::DeliveryLoop() {
  while (true) {
    JournalEntry entry;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [this] { return delivery_stop_ || (!owed_.empty() && !fencing_); });
      if (owed_.empty()) return;    // stop requested and nothing owed
      entry = owed_.front().entry;  // stays owed (and counted) until delivered
      delivering_ = true;
    }
    const Delivered done = DeliverOne(entry);
    {
      std::lock_guard<std::mutex> lock(mu_);
      delivering_ = false;
      // A fence may have taken the entry away meanwhile (OnRevoked).
      if (done == Delivered::kDone && !owed_.empty() && owed_.front().entry.seq == entry.seq) {
        for (const auto& [tp, offset] : owed_.front().next) delivered_next_[tp] = offset;
        owed_.pop_front();
        backlog_gauge_->Set(static_cast<double>(owed_.size()));
      }
    }
    cv_.notify_all();
    if (done == Delivered::kCancelled) return;  // the entry stays in the journal
    if (done == Delivered::kFenced) {
      // OnRevoked takes the entry away; at a stop it stays in the journal, unsent.
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] {
        return delivery_stop_ || owed_.empty() || owed_.front().entry.seq != entry.seq;
      });
      if (!owed_.empty() && owed_.front().entry.seq == entry.seq) return;
    }
  }
}

bool EsJobRunner::PickUpNewPartitions(bool at_end) {
  const auto now = std::chrono::steady_clock::now();
  const bool arriving_at_end = at_end && !consumer_at_end_.load();
  const auto interval = at_end ? std::chrono::seconds(1) : std::chrono::seconds(60);
  if (!arriving_at_end && now - last_partition_check_ < interval) return false;
  last_partition_check_ = now;
  auto grown = GrownTopics(*consumer_, *store_, settings_.job, settings_.source_topics);
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
  std::map<TopicPartition, int64_t> out;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& [tp, offset] : delivered_next_) {
      if (partitions.empty() ||
          std::find(partitions.begin(), partitions.end(), tp) != partitions.end()) {
        out[tp] = offset;
      }
    }
  }
  return out;
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
      fenced = owed_.size();
      for (const Owed& o : owed_) {
        fenced_docs += o.entry.doc_count;
        fenced_seqs.push_back(o.entry.seq);
      }
      owed_.clear();
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
    for (const auto& [tp, offset] : committed) delivered_next_[tp] = offset;
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
    for (const auto& topic : settings_.source_topics) delivered_next_.erase({topic, partition});
  }
  // The join rebuilds by replay from the hand-over offset; de-dup comes from ES.
  if (settings_.dau_index_prefix.empty()) return absl::OkStatus();
  Backoff backoff(BackoffOptions{std::chrono::milliseconds(500), std::chrono::milliseconds(100),
                                 std::chrono::milliseconds(10000), 2.0});
  while (true) {
    absl::Status st = RestoreDedupFromEs(partition);
    if (st.ok()) return st;
    if (!absl::IsUnavailable(st) && !absl::IsDeadlineExceeded(st) && !absl::IsInternal(st)) {
      return st;
    }
    SetProblem(absl::StrCat("restoring de-dup of partition ", partition,
                            " from ES: ", std::string(st.message())));
    RTDW_RETURN_IF_ERROR(store_->DropPartitionState(partition, settings_.source_topics));
    if (!SleepUnlessCancelled(backoff.NextDelay(), stop_.stopping_flag())) {
      return absl::CancelledError("stopped during a de-dup restore");
    }
  }
}

absl::Status EsJobRunner::RestoreDedupFromEs(int32_t partition) {
  const std::string& topic = settings_.source_topics.front();
  const std::string prefix = absl::StrCat(topic, "/", partition, "/");
  ScrollOptions so;
  rapidjson::StringBuffer q;
  {
    rapidjson::Writer<rapidjson::StringBuffer> w(q);
    w.StartObject();
    w.Key("prefix");
    w.StartObject();
    w.Key("rtdw_src");
    w.String(prefix.data(), static_cast<rapidjson::SizeType>(prefix.size()));
    w.EndObject();
    w.EndObject();
  }
  so.query_json = q.GetString();
  so.source_includes = {"mid", "ts", "rtdw_src"};
  so.sort = {"_index", "mid"};
  so.page_size = 5000;
  auto started = std::chrono::steady_clock::now();
  // A search sees only what the last refresh made visible: without this, documents written just
  // before (by this job's previous owner) would be missed and their users counted again.
  RTDW_RETURN_IF_ERROR(es_->Refresh(absl::StrCat(settings_.dau_index_prefix, "*")));
  PendingBatch batch = store_->NewBatch();
  uint64_t docs = 0, restored = 0, skipped = 0;
  std::optional<int64_t> max_ts;
  absl::Status st =
      es_->ScrollAll(absl::StrCat(settings_.dau_index_prefix, "*"), so, [&](const SearchHit& hit) {
        ++docs;
        std::optional<DauDocumentSource> doc = ParseDauDocumentSource(hit.source);
        if (!doc || doc->topic != topic || doc->partition != partition) {
          ++skipped;
          return absl::OkStatus();
        }
        const int64_t ts = doc->ts_ms;
        absl::CivilDay cd = CivilDayOf(ts, settings_.time_zone);
        DayNumber day = static_cast<DayNumber>(cd.year() * 10000 + cd.month() * 100 + cd.day());
        RTDW_ASSIGN_OR_RETURN(
            bool put, PutDedupIfBeats(batch, day, partition, hit.id, DedupValue{ts, doc->offset}));
        if (!put) return absl::OkStatus();
        ++restored;
        if (!max_ts || ts > *max_ts) max_ts = ts;
        if (batch.mutation_count() >= 5000) {
          RTDW_RETURN_IF_ERROR(store_->Commit(std::move(batch)).status());
          batch = store_->NewBatch();
        }
        return absl::OkStatus();
      });
  if (absl::IsNotFound(st)) st = absl::OkStatus();  // no DAU index yet
  RTDW_RETURN_IF_ERROR(st);
  // Never ahead of the wall clock (docs/FORMATS.md §6): a fast device's document may lie ahead.
  if (max_ts) max_ts = std::min(*max_ts, NowMs());
  if (max_ts) {
    auto wm = batch.GetWatermark(partition);
    if (wm.ok() && (!wm->has_value() || **wm < *max_ts)) {
      RTDW_RETURN_IF_ERROR(batch.SetWatermark(partition, *max_ts));
    }
  }
  RTDW_RETURN_IF_ERROR(store_->Commit(std::move(batch)).status());
  spdlog::info(
      "{}: partition {}: de-dup restored from ES: {} documents, {} entries ({} skipped) "
      "in {} ms",
      settings_.job, partition, docs, restored, skipped,
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                            started)
          .count());
  return absl::OkStatus();
}

}  // namespace rtdw
