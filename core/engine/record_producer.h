// What the engine needs of a producer of output records ("produce and await acks", the split
// jobs' delivery: core/engine/produce_pipeline.h): produce a record into a topic, counted in the
// delivery group of its batch; wait until a group's records all have their delivery reports; wait
// until everything queued is reported (Flush). KafkaProducer (connectors/kafka/producer.h) is the
// implementation; tests/engine fakes it.
//
// The promise a caller builds its commit on: a record is acknowledged (its delivery report says
// OK) only once the topic holds it durably (Kafka: acks=all, idempotent — ordered per partition,
// never duplicated by the producer's own retries). So "Await(group) returned OK" means every
// record produced with `group` since its ResetError() is in its topic, and the batch's source
// offsets may be committed.
#ifndef RTDW_CORE_ENGINE_RECORD_PRODUCER_H_
#define RTDW_CORE_ENGINE_RECORD_PRODUCER_H_

#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "core/status_util.h"

namespace rtdw {

// One header of a produced record (copied by Produce()).
struct RecordHeader {
  std::string_view name;
  std::string_view value;
};

// A topic of one producer, resolved once by RecordProducer::Topic(): producing to it skips the
// lookup by name. Opaque to callers (KafkaProducer: librdkafka's topic handle); valid as long as
// its producer.
struct ProducerTopic {
  void* handle = nullptr;
};

// Counts the delivery reports of the records produced with it (one batch of a job). Owned by the
// caller, and it must outlive the delivery reports of its records: destroy it only once
// pending() is 0 or after the producer. Counting is conservative: records of an earlier use that
// are still unreported when it is reused are waited for too (never fewer than this batch's).
//
// Thread-safe: delivery reports may come on another thread than the owner's (librdkafka serves
// them on whichever thread polls the client) while the owner reads pending() and calls
// ResetError(). pending() and failed() are atomics; the first error is kept under mu_.
class DeliveryGroup {
 public:
  DeliveryGroup() = default;
  DeliveryGroup(const DeliveryGroup&) = delete;
  DeliveryGroup& operator=(const DeliveryGroup&) = delete;

  // Records produced with this group whose delivery report has not been served yet.
  int64_t pending() const { return pending_.load(std::memory_order_acquire); }
  // Starts a new batch: forgets the previous batch's delivery error (pending records stay).
  void ResetError() ABSL_LOCKS_EXCLUDED(mu_);
  // A delivery report of this group failed since ResetError().
  bool failed() const { return failed_.load(std::memory_order_acquire); }

  // ---- for RecordProducer implementations
  // A record is about to be queued with this group: its report is owed.
  void Added() { pending_.fetch_add(1, std::memory_order_acq_rel); }
  // A record Added() was refused before it was queued: no report will come for it.
  void Withdrawn() { pending_.fetch_sub(1, std::memory_order_acq_rel); }
  // The delivery report of one record of the group (any thread): acknowledged, or not and why
  // (the first `error` since ResetError() is kept).
  void Report(bool acknowledged, std::string_view error) ABSL_LOCKS_EXCLUDED(mu_);
  // What an Await() that waited for this group answers when its wait ended (`interrupted`: by the
  // interrupt flag; otherwise by the timeout or with nothing pending), in the words of `client`
  // ("kafka"): Unavailable "<client> delivery failed: <first error>" when a report failed since
  // ResetError(); otherwise Cancelled (interrupted) or DeadlineExceeded while records are pending;
  // otherwise OK.
  absl::Status Outcome(std::string_view client, bool interrupted,
                       std::chrono::milliseconds timeout) const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  std::atomic<int64_t> pending_{0};
  std::atomic<bool> failed_{false};
  mutable absl::Mutex mu_;
  std::string first_error_ ABSL_GUARDED_BY(mu_);
};

// Inline (header-only), so that a connector implementing RecordProducer needs no link to
// rtdw_engine.
inline void DeliveryGroup::ResetError() {
  absl::MutexLock lock(&mu_);
  first_error_.clear();
  failed_.store(false, std::memory_order_release);
}

inline void DeliveryGroup::Report(bool acknowledged, std::string_view error) {
  if (!acknowledged) {
    absl::MutexLock lock(&mu_);
    if (first_error_.empty()) first_error_ = std::string(error);
    failed_.store(true, std::memory_order_release);
  }
  pending_.fetch_sub(1, std::memory_order_acq_rel);
}

inline absl::Status DeliveryGroup::Outcome(std::string_view client, bool interrupted,
                                           std::chrono::milliseconds timeout) const {
  if (failed()) {
    absl::MutexLock lock(&mu_);
    return absl::UnavailableError(absl::StrCat(ToAbsl(client), " delivery failed: ", first_error_));
  }
  const int64_t left = pending();
  if (left > 0) {
    if (interrupted) {
      return absl::CancelledError(
          absl::StrCat(ToAbsl(client), ": interrupted with ", left, " records not acknowledged"));
    }
    return absl::DeadlineExceededError(absl::StrCat(
        ToAbsl(client), ": ", left, " records not acknowledged within ", timeout.count(), " ms"));
  }
  return absl::OkStatus();
}

// A producer of output records. Implementations say their own thread-safety; KafkaProducer may be
// called from several threads. Every wait takes a timeout and an optional interrupt flag (checked
// at least every 100 ms), so that a stop never waits on a broker that does not answer.
//
// Error contract (absl::Status, never exceptions): Produce fails only when the record could not be
// queued (Unavailable, InvalidArgument; a full local queue is waited out, never a failure);
// Await and Flush return Unavailable for a record whose delivery failed, DeadlineExceeded at the
// timeout and Cancelled once the interrupt flag is set, with records still unreported. A caller
// that sees anything but OK must not commit the source offsets of the records concerned: it
// produces them again (the same keys and headers: the output is at-least-once).
class RecordProducer {
 public:
  virtual ~RecordProducer() = default;

  // The handle of `topic` (created on first use, kept as long as the producer).
  virtual absl::StatusOr<ProducerTopic> Topic(std::string_view topic) = 0;
  // Queues one record (copied: the views need only live for the call). partition < 0 = by key
  // (round-robin without a key). With a `group`, the record's delivery report is counted there
  // (and its error, if any, goes to the group and to the next Flush()). May serve pending
  // delivery reports.
  virtual absl::Status Produce(ProducerTopic topic, std::string_view key, std::string_view value,
                               const std::vector<RecordHeader>& headers, int32_t partition,
                               DeliveryGroup* group) = 0;
  // Waits (serving delivery reports) until every record produced with `group` has its delivery
  // report. OK when none of them failed since group->ResetError(); otherwise as
  // DeliveryGroup::Outcome.
  absl::Status Await(DeliveryGroup* group, std::chrono::milliseconds timeout,
                     const std::atomic<bool>* interrupt = nullptr) {
    return AwaitImpl(group, timeout, interrupt);
  }
  // Waits until every queued record is acknowledged or failed. OK only when all records produced
  // since the previous Flush were acknowledged; otherwise the first delivery error since then
  // (Unavailable), DeadlineExceeded at the timeout, or Cancelled once *interrupt is true.
  absl::Status Flush(std::chrono::milliseconds timeout,
                     const std::atomic<bool>* interrupt = nullptr) {
    return FlushImpl(timeout, interrupt);
  }

 private:
  virtual absl::Status AwaitImpl(DeliveryGroup* group, std::chrono::milliseconds timeout,
                                 const std::atomic<bool>* interrupt) = 0;
  virtual absl::Status FlushImpl(std::chrono::milliseconds timeout,
                                 const std::atomic<bool>* interrupt) = 0;
};

}  // namespace rtdw

#endif  // RTDW_CORE_ENGINE_RECORD_PRODUCER_H_
