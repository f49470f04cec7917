// The JournalSink (core/journal_sink.h) over the ES connector: delivers a journal entry's bulk
// body with EsClient::Bulk (per-item retries of transient failures, permanent failures returned
// as RejectedItems). Used by the daemon's delivery loop and by `rtdw journal replay`.
//
// The body is sent as it is stored (PreparedBulkBody::FromBody: only its action lines are read,
// and a refused item's lines are parsed only for its dead letter). The timeout and the cancel
// flag are handed to EsClient::Bulk, which checks them within ~20 ms, during requests and waits
// too; no thread is started.
//
// Thread-compatible: one sink per delivering thread (its EsClient serialises calls anyway); one
// Deliver() at a time.
#ifndef RTDW_CONNECTORS_ES_ES_JOURNAL_SINK_H_
#define RTDW_CONNECTORS_ES_ES_JOURNAL_SINK_H_

#include <atomic>
#include <chrono>
#include <functional>

#include "connectors/es/es_client.h"
#include "core/journal_sink.h"

namespace rtdw {

struct EsJournalSinkOptions {
  // A delivery not finished after this long is abandoned (DeadlineExceeded; the entry stays
  // owed). Zero: no limit — retry until done or cancelled.
  std::chrono::milliseconds timeout{0};
  // Abandons a delivery (Cancelled) when it becomes true. May be null.
  const std::atomic<bool>* cancel = nullptr;
  // Told about every retry round (metrics, logs). May be empty.
  std::function<void(const BulkRetryEvent&)> on_retry;
  // Asked with the entry's seq right before every bulk request of its delivery; a non-OK answer
  // abandons the delivery with that status (the entry stays owed; the caller decides). The
  // daemon's group mode checks here that it still owns the entry's partitions (fencing).
  // May be empty.
  std::function<absl::Status(uint64_t seq)> before_request;
};

class EsJournalSink : public JournalSink {
 public:
  EsJournalSink(EsClient* client, EsJournalSinkOptions options);
  absl::StatusOr<DeliveryReport> Deliver(const JournalEntry& entry) override;

 private:
  EsClient* client_;
  EsJournalSinkOptions options_;
};

}  // namespace rtdw

#endif  // RTDW_CONNECTORS_ES_ES_JOURNAL_SINK_H_
