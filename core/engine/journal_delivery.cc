#include "core/engine/journal_delivery.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "core/dead_letter.h"
#include "core/status_util.h"
#include "spdlog/spdlog.h"

namespace rtdw {
namespace {

using Clock = std::chrono::steady_clock;

// Which mode (group, lone) wrote what the journal holds.
constexpr char kJournalModeMeta[] = "journal_mode";

// The wait from now until `t` (steady clock) for absl::Mutex::AwaitWithTimeout.
absl::Duration Until(Clock::time_point t) {
  if (t == Clock::time_point::max()) return absl::InfiniteDuration();
  const Clock::time_point now = Clock::now();
  return t <= now ? absl::ZeroDuration() : absl::FromChrono(t - now);
}

double SecondsSince(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

}  // namespace

JournalDelivery::JournalDelivery(JournalDeliveryOptions options, MetricsRegistry* metrics,
                                 const StopControl* stop, JobProblem* problem,
                                 const JobMetrics* common)
    : options_(std::move(options)),
      stop_(stop),
      problem_(problem),
      common_(common),
      rejections_(options_.job) {
  const Labels job = {{"job", options_.job}};
  delivered_docs_ =
      metrics->GetCounter("rtdw_es_documents_delivered_total", "Documents ES acknowledged", job);
  rejected_docs_ = metrics->GetCounter("rtdw_es_documents_rejected_total",
                                       "Documents ES refused for good (dead-lettered)", job);
  superseded_docs_ = metrics->GetCounter(
      "rtdw_es_superseded_total",
      "Versioned writes ES refused as older than its document (409; counted delivered)", job);
  fenced_entries_ = metrics->GetCounter(
      "rtdw_es_fenced_entries_total",
      "Group mode: owed journal entries given up at a revoke, never sent (the next owner "
      "processes their records again)",
      job);
  revokes_timed_out_ = metrics->GetCounter(
      "rtdw_revokes_timed_out_total",
      "Group mode: revokes that gave partitions up with entries still owed (kafka.revoke_timeout "
      "passed, or the assignment was already lost)",
      job);
  revoke_wait_seconds_ = metrics->GetHistogram(
      "rtdw_revoke_wait_seconds", "Group mode: how long a revoke waited for what is owed", job,
      MetricsRegistry::LatencyBounds());
  backlog_gauge_ = metrics->GetGauge("rtdw_journal_backlog", "Journal entries owed to ES", job);
  metrics
      ->GetGauge("rtdw_journal_backlog_limit",
                 "Journal entries owed to ES at which polling pauses (back-pressure)", job)
      ->Set(static_cast<double>(options_.max_backlog));
  es_rejected_ = common_->DeadLetters(ReasonCode(Reason::kEsRejected));
  delivery_seconds_ = metrics->GetHistogram(
      "rtdw_delivery_seconds", "Journal entry delivery latency, commit to acknowledged", job,
      MetricsRegistry::LatencyBounds());
}

JournalDelivery::~JournalDelivery() {
  Cancel();
  JoinThread();
}

int64_t JournalDelivery::NowMs() const {
  return options_.now_ms ? options_.now_ms() : absl::ToUnixMillis(absl::Now());
}

void JournalDelivery::Wake() {
  absl::MutexLock lock(&mu_);  // a waiter's condition is evaluated again
}

void JournalDelivery::Cancel() {
  absl::MutexLock lock(&mu_);
  cancel_ = true;
  abort_delivery_ = true;
}

void JournalDelivery::JoinThread() {
  {
    absl::MutexLock lock(&mu_);
    thread_stop_ = true;
    cancel_ = true;  // the delivery thread lets go of the entry in hand
    abort_delivery_ = true;
  }
  if (thread_.joinable()) thread_.join();
}

size_t JournalDelivery::Backlog() const {
  absl::MutexLock lock(&mu_);
  return owed_.size();
}

std::map<TopicPartition, int64_t> JournalDelivery::Handover(
    const std::vector<TopicPartition>& partitions) const {
  absl::MutexLock lock(&mu_);
  return owed_.Handover(partitions);
}

absl::Status JournalDelivery::MaySend(uint64_t seq) {
  may_not_ = MayNot::kNone;
  if (!check_ownership_.load()) return absl::OkStatus();
  absl::MutexLock lock(&mu_);
  const OwedJournal::Owed* owed = owed_.Find(seq);
  if (owed == nullptr || fencing_ || !owning_ || owed->epoch != assignment_epoch_) {
    may_not_ = MayNot::kFenced;
    return absl::AbortedError(
        absl::StrCat("journal entry ", seq, " is fenced: its partitions were taken away"));
  }
  if (Clock::now() >= lease_until_) {
    may_not_ = MayNot::kLease;
    return absl::UnavailableError(
        absl::StrCat("journal entry ", seq,
                     " waits: the group has not confirmed this member's assignment within the "
                     "last ",
                     options_.lease.count(), " ms"));
  }
  return absl::OkStatus();
}

JournalDelivery::Delivered JournalDelivery::DeliverOne(const JournalEntry& entry) {
  const auto started = Clock::now();
  // Why the last attempt ended without a retry: a fence (group mode) or a stop.
  bool fenced = false;
  RetryOptions retry;
  retry.backoff = options_.retry_backoff;
  retry.sleeper = options_.sleeper;
  retry.stop = [this] { return cancel_.load() || abort_delivery_.load(); };
  retry.what = "delivery";
  retry.retryable = [&](const absl::Status&) {
    return !fenced && !cancel_.load() && !abort_delivery_.load();
  };
  retry.on_retry = [&](const absl::Status& st, std::chrono::milliseconds) {
    problem_->Set(std::string(st.message()));
  };
  absl::Status st = RetryUntil(retry, [&]() -> absl::Status {
    if (options_.before_attempt) options_.before_attempt(entry);
    auto deliver = [&] {
      may_not_ = MayNot::kNone;  // MaySend says why, when the sink asks it
      return DeliverJournalEntry(*store_, *sink_, entry, options_.job, NowMs(), options_.fault);
    };
    auto done = deliver();
    // Group mode: not a failure of ES while the membership lease is unconfirmed: wait for the
    // next confirmation (or the fence) and send again, without a backoff.
    while (!done.ok() && may_not_ == MayNot::kLease && !abort_delivery_.load()) {
      problem_->Set(std::string(done.status().message()));
      {
        absl::MutexLock lock(&mu_);
        auto confirmed = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
          return abort_delivery_.load() || Clock::now() < lease_until_;
        };
        mu_.AwaitWithTimeout(absl::Condition(&confirmed), absl::Milliseconds(500));
      }
      if (abort_delivery_.load()) break;
      done = deliver();
    }
    if (!done.ok()) {
      if (may_not_ == MayNot::kFenced) fenced = true;
      return done.status();
    }
    const DeliveryReport& report = done->report;
    delivered_docs_->Add(report.acknowledged);
    rejected_docs_->Add(report.rejected.size());
    superseded_docs_->Add(report.superseded);
    common_->dead_letters->Add(report.rejected.size());
    es_rejected_->Add(report.rejected.size());
    if (!report.rejected.empty()) {
      const RejectedItem& r = report.rejected.front();
      rejections_.Note(entry.seq, report.docs, report.rejected.size(),
                       absl::StrCat(r.error_type, ": ", r.error_reason, " of ", r.index, "/", r.id),
                       done->letter_seqs);
    }
    return absl::OkStatus();
  });
  if (st.ok()) {
    delivery_seconds_->Observe(SecondsSince(started));
    return Delivered::kDone;
  }
  return cancel_.load() ? Delivered::kCancelled : Delivered::kFenced;
}

absl::Status JournalDelivery::Start(StateStore* store, JournalSink* sink) {
  store_ = store;
  sink_ = sink;
  RTDW_RETURN_IF_ERROR(Replay());
  // From here on the journal is this mode's (Replay reads it at the next start).
  RTDW_RETURN_IF_ERROR(store_->SetMeta(kJournalModeMeta, options_.group_mode ? "group" : "lone"));
  thread_ = std::thread([this] { Loop(); });
  return absl::OkStatus();
}

absl::Status JournalDelivery::Replay() {
  auto owed = store_->ListJournal(/*with_bodies=*/false);
  if (!owed.ok()) return owed.status();
  // Which mode wrote what the journal holds (absent: a version before the marker, or nothing
  // written yet).
  RTDW_ASSIGN_OR_RETURN(std::optional<std::string> written_by, store_->GetMeta(kJournalModeMeta));
  if (owed->empty()) return absl::OkStatus();
  const std::string& job = options_.job;
  if (options_.group_mode && written_by.has_value() && *written_by == "group") {
    // Their records lie after the group's committed offset (it never passes an undelivered
    // record): the partition's owner processes them again. Delivering them now could overwrite
    // what that owner has written since. The local state they came with is not trusted either:
    // the runner rebuilds any partition without a clean hand-over record at its assignment.
    uint64_t docs = 0;
    for (const auto& listed : *owed) {
      docs += listed.doc_count;
      RTDW_RETURN_IF_ERROR(store_->DeleteJournal(listed.seq));
    }
    spdlog::warn(
        "{}: group mode: dropped {} owed journal entries ({} documents) left by a crash; their "
        "records are after the group's committed offsets and will be processed again",
        job, owed->size(), docs);
    return absl::OkStatus();
  }
  if (options_.group_mode) {
    // Lone mode wrote them (or a version that did not say): lone mode commits its lag-monitoring
    // offsets before delivery, so the group's offset may already be past their records — dropping
    // them could lose documents. Deliver them before joining (versions keep ES right should a
    // member of the group have written a better document meanwhile).
    spdlog::info(
        "{}: switching to group mode: delivering {} journal entries a lone-mode run left owed "
        "before joining the group",
        job, owed->size());
  } else if (written_by.has_value() && *written_by == "group") {
    spdlog::info(
        "{}: switching to lone mode: delivering {} journal entries a group-mode run left owed "
        "(their records lie before this store's offsets; versions keep a better document in ES)",
        job, owed->size());
  }
  spdlog::info("{}: re-delivering {} owed journal entries", job, owed->size());
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
  spdlog::info("{}: start-up replay done", job);
  return absl::OkStatus();
}

void JournalDelivery::Loop() {
  while (true) {
    // Shared, not copied: the bulk body stays where it was committed (a fence may take the entry
    // out of owed_ while this thread still holds it).
    std::shared_ptr<const JournalEntry> entry;
    {
      absl::MutexLock lock(&mu_);
      auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return thread_stop_ || (!owed_.empty() && !fencing_);
      };
      mu_.Await(absl::Condition(&ready));
      if (owed_.empty()) return;     // stop requested and nothing owed
      entry = owed_.front()->entry;  // stays owed (and counted) until delivered
      delivering_ = true;
    }
    const Delivered done = DeliverOne(*entry);
    {
      absl::MutexLock lock(&mu_);
      delivering_ = false;
      // A fence may have taken the entry away meanwhile (Revoke).
      if (done == Delivered::kDone && owed_.Delivered(entry->seq)) {
        backlog_gauge_->Set(static_cast<double>(owed_.size()));
      }
    }
    if (done == Delivered::kCancelled) return;  // the entry stays in the journal
    if (done == Delivered::kFenced) {
      // Revoke takes the entry away; at a stop it stays in the journal, unsent.
      absl::MutexLock lock(&mu_);
      auto taken = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return thread_stop_ || owed_.empty() || owed_.front()->entry->seq != entry->seq;
      };
      mu_.Await(absl::Condition(&taken));
      if (!owed_.empty() && owed_.front()->entry->seq == entry->seq) return;
    }
  }
}

void JournalDelivery::Committed(std::optional<JournalEntry> entry,
                                std::map<TopicPartition, int64_t> handover,
                                const std::map<TopicPartition, int64_t>& first) {
  absl::MutexLock lock(&mu_);
  owed_.Committed(std::move(entry), std::move(handover), first, assignment_epoch_);
  backlog_gauge_->Set(static_cast<double>(owed_.size()));
}

bool JournalDelivery::WaitForRoom(std::chrono::milliseconds wait) {
  absl::MutexLock lock(&mu_);
  if (owed_.size() < options_.max_backlog) return true;
  auto room = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return owed_.size() < options_.max_backlog;
  };
  mu_.AwaitWithTimeout(absl::Condition(&room), absl::FromChrono(wait));
  if (owed_.size() < options_.max_backlog) return true;
  // Group mode: a member unconfirmed for a whole session polls anyway — the poll runs the revoke
  // (the group client has noticed the loss by then) that fences what it owes.
  const auto now = Clock::now();
  return options_.group_mode && owning_ && now >= lease_until_ &&
         now - confirmed_at_ >= 2 * options_.lease;
}

void JournalDelivery::Assigned(const std::map<TopicPartition, int64_t>& committed) {
  absl::MutexLock lock(&mu_);
  // What the group committed is hand-over-able by definition; deliveries raise it.
  for (const auto& [tp, offset] : committed) owed_.SetHandover(tp, offset);
  // A new assignment: entries are made under it from now on. Nothing is sent for it before the
  // coordinator confirms it (Confirmed): the callback may run long after the group's answer (a
  // member paused in between).
  ++assignment_epoch_;
  owning_ = true;
  lease_until_ = {};
  confirmed_at_ = Clock::now();  // the unconfirmed period starts here
}

void JournalDelivery::ForgetHandover(const TopicPartition& tp) {
  absl::MutexLock lock(&mu_);
  owed_.ForgetHandover(tp);
}

bool JournalDelivery::LeaseWantsConfirmation(Clock::time_point now) const {
  absl::MutexLock lock(&mu_);
  return owning_ && lease_until_ - now <= options_.lease / 2;
}

void JournalDelivery::Confirmed(Clock::time_point sent) {
  absl::MutexLock lock(&mu_);
  confirmed_at_ = sent;
  if (owning_) lease_until_ = std::max(lease_until_, sent + options_.lease);
}

bool JournalDelivery::Revoke(bool lost) {
  // Deliver what is owed within revoke_timeout, never longer: the group's rebalance waits for
  // this, and ES may be down. What is left is fenced as a whole: an entry spans partitions.
  bool clean;
  size_t fenced = 0;
  uint64_t fenced_docs = 0;
  std::vector<uint64_t> fenced_seqs;
  const auto started = Clock::now();
  {
    absl::MutexLock lock(&mu_);
    auto until = started;
    if (!lost) {
      // The group asks this member to rejoin: it is a member of the generation being revoked,
      // and the partitions cannot move before it rejoins (after this) or is removed
      // (max.poll.interval.ms, at least twice kafka.revoke_timeout). That confirms it for one
      // lease; deliveries go on for the revoke's wait, which the lease also bounds.
      lease_until_ = std::max(lease_until_, started + options_.lease);
      until =
          std::min({started + std::chrono::duration_cast<Clock::duration>(options_.revoke_timeout),
                    lease_until_, stop_->deadline()});
      if (stop_->stopping()) {
        // A stop: this member leaves on its own and still heartbeats, so nobody else is given
        // its partitions before it leaves; it delivers until the stop's deadline, as a lone stop
        // does, and a clean hand-over keeps its local state for its next start.
        lease_until_ = std::max(lease_until_, stop_->deadline());
        until = stop_->deadline();
      }
    }
    auto drained = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return owed_.empty() || cancel_.load();
    };
    mu_.AwaitWithTimeout(absl::Condition(&drained), Until(until));
    revoke_wait_seconds_->Observe(SecondsSince(started));
    owning_ = false;
    lease_until_ = {};
    // A stop leaves what is owed in the journal, as ever (a group-mode start drops it, a
    // lone-mode start delivers it): when the whole group stops, nobody processes it again.
    if (!owed_.empty() && !stop_->stopping()) {
      fencing_ = true;
      abort_delivery_ = true;  // ends a request in flight, and every wait of the delivery
      // The delivery thread lets go of its entry: an abort, not a wait for ES. Bounded all the
      // same (a store write it is in); an entry it still holds is refused by MaySend.
      auto let_go = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return !delivering_; };
      mu_.AwaitWithTimeout(absl::Condition(&let_go), absl::Seconds(5));
      for (const OwedJournal::Owed& o : owed_.Fence()) {
        ++fenced;
        fenced_docs += o.entry->doc_count;
        fenced_seqs.push_back(o.entry->seq);
      }
      backlog_gauge_->Set(0);
      fencing_ = false;
      abort_delivery_ = cancel_.load();
    }
    clean = owed_.empty() && fenced == 0;
  }
  if (fenced > 0) {
    fenced_entries_->Add(fenced);
    revokes_timed_out_->Add();
    // The partitions' next owner processes their records again from the hand-over offset: the
    // entries are nobody's to deliver any more (a later start, in either mode, must not).
    for (uint64_t seq : fenced_seqs) {
      if (auto st = store_->DeleteJournal(seq); !st.ok()) {
        spdlog::warn("{}: fenced journal entry {}: {}", options_.job, seq,
                     std::string(st.message()));
      }
    }
    spdlog::warn(
        "{}: fenced {} owed journal entries ({} documents) at the revoke ({}): never sent; the "
        "partitions' next owner processes their records again from the hand-over offset",
        options_.job, fenced, fenced_docs,
        lost ? std::string("the assignment was lost")
             : absl::StrCat("kafka.revoke_timeout ", options_.revoke_timeout.count(), " s passed"));
  }
  return clean;
}

void JournalDelivery::Stop() {
  {
    absl::MutexLock lock(&mu_);
    thread_stop_ = true;
    // Deliver what is owed until the stop's deadline; what is left stays owed, safely. (Group
    // mode: once the group is left, nothing more is delivered.)
    auto done = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return owed_.empty() || cancel_.load() || (options_.group_mode && !owning_);
    };
    mu_.AwaitWithTimeout(absl::Condition(&done), Until(stop_->deadline()));
    if (!owed_.empty()) {
      spdlog::warn("{}: {} journal entries still owed at shutdown; delivered after restart",
                   options_.job, owed_.size());
    }
  }
  JoinThread();
  if (store_ == nullptr) return;
  // What the journal still holds is owed (a start-up replay cut short, a delivery given up).
  std::string given_up;
  if (auto owed = store_->ListJournal(/*with_bodies=*/false); owed.ok() && !owed->empty()) {
    uint64_t docs = 0;
    for (const auto& e : *owed) docs += e.doc_count;
    // (Group mode drops them at the next start instead: the group's offset is behind them.)
    given_up = absl::StrCat(owed->size(), " journal entries (", docs,
                            " documents) owed to Elasticsearch: ",
                            options_.group_mode ? "their records are processed again from the "
                                                  "group's offsets"
                                                : "delivered first at the next start");
  }
  absl::MutexLock lock(&mu_);
  given_up_ = std::move(given_up);
}

std::string JournalDelivery::GivenUp() const {
  absl::MutexLock lock(&mu_);
  return given_up_;
}

}  // namespace rtdw
