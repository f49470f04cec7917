#include "connectors/es/es_journal_sink.h"

#include <thread>

#include "absl/strings/str_cat.h"
#include "connectors/es/bulk.h"
#include "core/status_util.h"

namespace rtdw {

EsJournalSink::EsJournalSink(EsClient* client, EsJournalSinkOptions options)
    : client_(client), options_(std::move(options)) {}

absl::StatusOr<DeliveryReport> EsJournalSink::Deliver(const JournalEntry& entry) {
  RTDW_ASSIGN_OR_RETURN(std::vector<BulkAction> actions, ParseBulkBody(entry.body));
  DeliveryReport report;
  report.seq = entry.seq;
  report.docs = static_cast<uint32_t>(actions.size());
  if (actions.empty()) return report;

  // The call is cancelled by the caller's flag or by the timeout, whichever comes first.
  std::atomic<bool> cancel{false};
  {
    absl::MutexLock lock(&mu_);
    finished_ = false;
    timed_out_ = false;
  }
  std::thread watcher([&] {
    absl::MutexLock lock(&mu_);
    auto deadline = std::chrono::steady_clock::now() + options_.timeout;
    while (!finished_) {
      if (options_.cancel != nullptr && options_.cancel->load()) {
        cancel = true;
        return;
      }
      if (options_.timeout.count() > 0 && std::chrono::steady_clock::now() >= deadline) {
        timed_out_ = true;
        cancel = true;
        return;
      }
      // The caller's flag is polled: it is set without mu_.
      mu_.AwaitWithTimeout(absl::Condition(&finished_), absl::Milliseconds(20));
    }
  });
  DeliveryHooks hooks;
  hooks.cancel = &cancel;
  hooks.on_retry = options_.on_retry;
  if (options_.before_request) {
    hooks.before_request = [this, seq = entry.seq] { return options_.before_request(seq); };
  }
  absl::StatusOr<BulkResult> result = client_->Bulk(actions, hooks);
  bool timed_out;
  {
    absl::MutexLock lock(&mu_);
    finished_ = true;
    timed_out = timed_out_;
  }
  watcher.join();

  if (!result.ok()) {
    if (timed_out) {
      return absl::DeadlineExceededError(
          absl::StrCat("journal entry ", entry.seq, " was not delivered within ",
                       options_.timeout.count() / 1000.0, " s (", result.status().ToString(),
                       "); it stays owed"));
    }
    return result.status();
  }
  report.acknowledged = static_cast<uint32_t>(result->delivered);
  report.superseded = static_cast<uint32_t>(result->superseded);
  report.requests = static_cast<uint32_t>(result->requests);
  report.retries = static_cast<uint32_t>(result->retry_rounds);
  for (size_t pos : result->FailedPositions()) {
    const BulkAction& a = actions[pos];
    const BulkItemResult& r = result->items[pos];
    RejectedItem item;
    item.index = a.index;
    item.id = a.id;
    item.status = r.status;
    item.error_type = r.error_type;
    item.error_reason = r.reason;
    item.document = a.op == BulkOp::kDelete ? std::string() : a.source;
    item.version = a.version;
    report.rejected.push_back(std::move(item));
  }
  return report;
}

}  // namespace rtdw
