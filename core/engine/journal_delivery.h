// "Journal and deliver", the delivery half of the ES jobs' batch transaction (docs/DESIGN.md
// "The batch transaction", "Scaling out"): the journal entries a job committed and still owes
// Elasticsearch, and the thread that delivers them.
//
//   Committed(entry)  -> the delivery thread sends entries strictly in seq order through a
//                        JournalSink (DeliverJournalEntry; an entry that fails is retried with
//                        kDeliveryRetryBackoff before the next is ever sent) -> CompleteJournal.
//
// What it promises:
//  - Order: entry N+1 is never handed to the sink before entry N was delivered and completed.
//  - Start-up (Start): what the store's journal owes is delivered in seq order before the
//    thread takes anything new — except owed entries a group-mode run left, which a group-mode
//    start drops (their records lie after the group's committed offset and are processed again
//    by the partition's owner). Entries a lone-mode run left (the store's `journal_mode` meta)
//    are delivered by either mode: lone mode commits its lag-monitoring offsets before delivery.
//  - Back-pressure: at most `max_backlog` entries are owed at once; WaitForRoom() tells the job
//    thread not to poll while the backlog is full.
//  - Hand-over offsets (group mode, Handover()): per source partition, how far every record's
//    documents are acknowledged (OwedJournal) — what the job commits to the group.
//  - Fencing (group mode; docs/OPERATIONS.md "Fencing"): an entry is sent only while this member
//    owns the entry's partitions. Every entry is tagged with the assignment it was made under (an
//    epoch counted by Assigned()); before every bulk request (MaySend, the sink's
//    `before_request`) the delivery thread checks that this assignment is still the member's and
//    that the member's place in the group was confirmed by the coordinator within the lease
//    (Confirmed(): a synchronous commit accepted less than `lease` ago, half of
//    session.timeout.ms). A revoke (Revoke()) waits at most `revoke_timeout` for what is owed,
//    then fences the rest: never sent (a request in flight is aborted through the sink's abort
//    flag), deleted from the journal, its offsets never hand-over-able (the partitions' next
//    owner processes their records again), counted in rtdw_es_fenced_entries_total. Eager
//    assignors revoke a member's whole assignment at once, so a fence takes every owed entry,
//    whatever partitions it spans. ES's external versions are the safety net for a request
//    already in flight when the fence falls.
//  - Stop (Stop()): delivers what is owed until the StopControl's deadline (group mode: only
//    while the member still owns its partitions), then lets go; what is left stays in the
//    journal and GivenUp() names it.
//
// What it needs of the group comes from the caller (JournalStrategy, journal_strategy.h, over the
// runner's source): Assigned() / Revoke() from its rebalance callbacks, Confirmed() after each
// accepted synchronous commit. It knows nothing of Kafka or Elasticsearch: the JournalSink is the only
// way out, and its abort flag (abort_flag()) and MaySend() are what a sink must honour.
//
// Thread-safety: thread-safe. One delivery thread (started by Start, joined by Stop or the
// destructor) and the job's threads (the runner's thread, the rebalance callbacks that run in its
// poll, the daemon's thread calling Wake/Cancel) share the state under mu_.
#ifndef RTDW_CORE_ENGINE_JOURNAL_DELIVERY_H_
#define RTDW_CORE_ENGINE_JOURNAL_DELIVERY_H_

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "core/backoff.h"
#include "core/engine/batch_transaction.h"
#include "core/engine/job_health.h"
#include "core/engine/job_metrics.h"
#include "core/engine/job_runner.h"
#include "core/engine/owed_journal.h"
#include "core/engine/retry_policies.h"
#include "core/journal_sink.h"
#include "core/metrics.h"
#include "storage/state_store.h"

namespace rtdw {

struct JournalDeliveryOptions {
  std::string job;
  size_t max_backlog = 4;  // owed entries at which WaitForRoom() says "do not poll"
  // Group mode (the job is a member of a consumer group): ownership fencing, the membership
  // lease and the start-up rules for a group-mode journal.
  bool group_mode = false;
  std::chrono::milliseconds lease{22500};   // how long a confirmation is trusted
  std::chrono::seconds revoke_timeout{10};  // kafka.revoke_timeout
  BackoffOptions retry_backoff = kDeliveryRetryBackoff;
  Sleeper* sleeper = nullptr;  // null: the real clock (tests substitute)
  // The time stamp of the dead letters of refused documents; empty: the wall clock.
  std::function<int64_t()> now_ms;
  // Test-only crash points: "after_delivery" (DeliverJournalEntry). May be empty.
  FaultHook fault;
  // Test-only: called before every delivery attempt of `entry` (the daemon's "mid_delivery"
  // point sends half of it and dies). May be empty.
  std::function<void(const JournalEntry& entry)> before_attempt;
};

class JournalDelivery {
 public:
  // `stop` (the runner's; outlives this) bounds Stop() and Revoke(); `problem` is the job's
  // /health line (delivery errors, lease waits); `common` its shared metrics (dead letters).
  // Registers the delivery metrics (rtdw_journal_backlog, rtdw_es_documents_delivered_total, ...)
  // in `metrics`. Nothing runs before Start().
  JournalDelivery(JournalDeliveryOptions options, MetricsRegistry* metrics, const StopControl* stop,
                  JobProblem* problem, const JobMetrics* common);
  // Cancels and joins the delivery thread; what is owed stays in the journal.
  ~JournalDelivery();
  JournalDelivery(const JournalDelivery&) = delete;
  JournalDelivery& operator=(const JournalDelivery&) = delete;

  // ---- what a sink honours (set up before Start)

  // True while the delivery in hand must end now (a fence, a cancel): a sink abandons its
  // request in flight and returns an error.
  const std::atomic<bool>* abort_flag() const { return &abort_delivery_; }
  // Asked by the sink right before every request of entry `seq`: OK when it may be sent.
  // Group mode: Aborted when the entry's assignment is gone (fenced), Unavailable while the
  // membership lease is not confirmed. Called on the delivery thread only.
  absl::Status MaySend(uint64_t seq) ABSL_LOCKS_EXCLUDED(mu_);

  // ---- the job's thread

  // Start-up: delivers (or, group mode, drops) what `store`'s journal owes, records the mode in
  // the store, then starts the delivery thread. `store` and `sink` must outlive this object.
  // Cancelled when a Cancel()/stop ended the replay (the rest stays owed).
  absl::Status Start(StateStore* store, JournalSink* sink) ABSL_LOCKS_EXCLUDED(mu_);
  // A batch committed (CommitJournaledBatch): `entry` is owed (when it has one); `handover` its
  // hand-over offsets once delivered, `first` where it started (group mode; see OwedJournal).
  void Committed(std::optional<JournalEntry> entry, std::map<TopicPartition, int64_t> handover,
                 const std::map<TopicPartition, int64_t>& first) ABSL_LOCKS_EXCLUDED(mu_);
  // Back-pressure: true when a poll may run. When the backlog is full, waits up to `wait` for
  // room and says false if there is none — except (group mode) for a member unconfirmed for two
  // leases, which polls anyway: the poll runs the revoke that fences what it owes (its
  // deliveries wait for the lease, so the backlog would never drain).
  bool WaitForRoom(std::chrono::milliseconds wait) ABSL_LOCKS_EXCLUDED(mu_);
  // Entries owed now.
  size_t Backlog() const ABSL_LOCKS_EXCLUDED(mu_);
  // The hand-over offsets of `partitions` (every known partition when empty).
  std::map<TopicPartition, int64_t> Handover(const std::vector<TopicPartition>& partitions) const
      ABSL_LOCKS_EXCLUDED(mu_);
  // The /health line of recent refusals by ES ("" when none).
  std::string RejectionProblem() const { return rejections_.Problem(); }

  // ---- group mode (the rebalance callbacks and the lease, on the job's thread)

  // Ownership is checked from now on (from the group subscription; the start-up replay is not).
  void CheckOwnership() { check_ownership_ = true; }
  // A new assignment: `committed` (the group's offsets) is hand-over-able by definition; entries
  // are made under a new epoch from now on, and nothing is sent before the first Confirmed().
  void Assigned(const std::map<TopicPartition, int64_t>& committed) ABSL_LOCKS_EXCLUDED(mu_);
  // A partition whose state is rebuilt: nothing of it is known to be delivered.
  void ForgetHandover(const TopicPartition& tp) ABSL_LOCKS_EXCLUDED(mu_);
  // True when the lease should be confirmed again: the member owns an assignment and less than
  // half of the lease is left at `now`.
  bool LeaseWantsConfirmation(std::chrono::steady_clock::time_point now) const
      ABSL_LOCKS_EXCLUDED(mu_);
  // The coordinator accepted a synchronous commit sent at `sent`: the assignment is confirmed
  // until `sent + lease`.
  void Confirmed(std::chrono::steady_clock::time_point sent) ABSL_LOCKS_EXCLUDED(mu_);
  // The group takes the assignment away (`lost`: it is already gone, fence at once). Delivers what
  // is owed for at most revoke_timeout (bounded by the lease; at a stop, until the stop's deadline,
  // and then nothing is fenced: a stop leaves what is owed in the journal), then fences the rest
  // and deletes it from the journal. True when nothing was owed or fenced (a clean hand-over).
  bool Revoke(bool lost) ABSL_LOCKS_EXCLUDED(mu_);

  // ---- stop (any thread)

  // Wakes the waits of the job thread and the delivery thread (a stop began: StopControl).
  void Wake() ABSL_LOCKS_EXCLUDED(mu_);
  // Gives up now: the delivery in hand is aborted, the start-up replay ends; what is owed stays.
  void Cancel() ABSL_LOCKS_EXCLUDED(mu_);
  // The stop's drain (job thread): delivers what is owed until the StopControl's deadline (group
  // mode: while the member owns its partitions), then ends the delivery thread. Afterwards
  // GivenUp() says what the store's journal still owes ("" when nothing). Call before the store
  // closes.
  void Stop() ABSL_LOCKS_EXCLUDED(mu_);
  // After Stop(): "N journal entries (D documents) owed to Elasticsearch: ...", or "".
  std::string GivenUp() const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  enum class Delivered { kDone, kFenced, kCancelled };
  enum class MayNot { kNone, kLease, kFenced };

  absl::Status Replay() ABSL_LOCKS_EXCLUDED(mu_);
  void Loop() ABSL_LOCKS_EXCLUDED(mu_);
  // Delivers one entry until it is done, fenced (group mode: its assignment was revoked) or
  // cancelled.
  Delivered DeliverOne(const JournalEntry& entry) ABSL_LOCKS_EXCLUDED(mu_);
  // Ends the delivery thread (the entry in hand is aborted) and joins it.
  void JoinThread() ABSL_LOCKS_EXCLUDED(mu_);
  int64_t NowMs() const;

  const JournalDeliveryOptions options_;
  const StopControl* const stop_;
  JobProblem* const problem_;
  const JobMetrics* const common_;
  RejectionNotice rejections_;  // documents ES refused: a warning each, a /health line

  // Set by Start (before the thread exists), then only read.
  StateStore* store_ = nullptr;
  JournalSink* sink_ = nullptr;
  std::thread thread_;

  mutable absl::Mutex mu_;
  // Entries committed and not yet completed, in seq order, each tagged with the assignment it
  // was made under, and the hand-over offsets.
  OwedJournal owed_ ABSL_GUARDED_BY(mu_);
  bool thread_stop_ ABSL_GUARDED_BY(mu_) = false;  // the thread ends once nothing is owed
  // Fencing (group mode): the assignment entries are made under, whether it is still this
  // member's, the delivery thread holding an entry, a fence in progress, until when the
  // coordinator's last confirmation of membership is trusted, and when it came (or the
  // assignment, before the first one).
  uint64_t assignment_epoch_ ABSL_GUARDED_BY(mu_) = 0;
  bool owning_ ABSL_GUARDED_BY(mu_) = false;
  bool delivering_ ABSL_GUARDED_BY(mu_) = false;
  bool fencing_ ABSL_GUARDED_BY(mu_) = false;
  std::chrono::steady_clock::time_point lease_until_ ABSL_GUARDED_BY(mu_){};
  std::chrono::steady_clock::time_point confirmed_at_ ABSL_GUARDED_BY(mu_){};
  std::string given_up_ ABSL_GUARDED_BY(mu_);
  // Delivery thread only: why MaySend last refused.
  MayNot may_not_ = MayNot::kNone;
  // The sink's abort flag: cancel_ or a fence (which also aborts a request in flight). Written
  // under mu_ (so that a waiter's condition sees it), read anywhere.
  std::atomic<bool> abort_delivery_{false};
  // Deliveries (and the start-up replay) give up: Cancel(), and Stop() at its deadline. Written
  // under mu_.
  std::atomic<bool> cancel_{false};
  std::atomic<bool> check_ownership_{false};

  Counter* delivered_docs_;
  Counter* rejected_docs_;
  Counter* superseded_docs_;
  Counter* es_rejected_;        // rtdw_dead_letters_total{reason="es_rejected"}
  Counter* fenced_entries_;     // group mode: owed entries given up at a revoke, never sent
  Counter* revokes_timed_out_;  // group mode: revokes that gave up with entries owed
  Histogram* revoke_wait_seconds_;
  Histogram* delivery_seconds_;
  Gauge* backlog_gauge_;
};

}  // namespace rtdw

#endif  // RTDW_CORE_ENGINE_JOURNAL_DELIVERY_H_
