#include "connectors/es/es_journal_sink.h"

#include "absl/strings/str_cat.h"
#include "connectors/es/bulk.h"
#include "core/status_util.h"

namespace rtdw {

EsJournalSink::EsJournalSink(EsClient* client, EsJournalSinkOptions options)
    : client_(client), options_(std::move(options)) {}

absl::StatusOr<DeliveryReport> EsJournalSink::Deliver(const JournalEntry& entry) {
  // The stored body is sent as it is (only its action lines are read); a body in another form
  // than rtdw writes is parsed and encoded again (bulk.h).
  RTDW_ASSIGN_OR_RETURN(PreparedBulkBody body, PreparedBulkBody::FromBody(entry.body));
  DeliveryReport report;
  report.seq = entry.seq;
  report.docs = static_cast<uint32_t>(body.size());
  if (body.empty()) return report;

  // The call ends at the caller's flag or at the timeout, whichever comes first: the client
  // checks both between and during its requests and waits.
  DeliveryHooks hooks;
  hooks.cancel = options_.cancel;
  if (options_.timeout.count() > 0) {
    hooks.deadline = std::chrono::steady_clock::now() + options_.timeout;
  }
  hooks.on_retry = options_.on_retry;
  if (options_.before_request) {
    hooks.before_request = [this, seq = entry.seq] { return options_.before_request(seq); };
  }
  absl::StatusOr<BulkResult> result = client_->Bulk(body, hooks);
  if (!result.ok()) {
    if (absl::IsDeadlineExceeded(result.status())) {
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
  // Only the refused items are read back from the body, for their dead letters.
  for (size_t pos : result->FailedPositions()) {
    RTDW_ASSIGN_OR_RETURN(BulkAction a, body.Action(pos));
    const BulkItemResult& r = result->items[pos];
    RejectedItem item;
    item.index = std::move(a.index);
    item.id = std::move(a.id);
    item.status = r.status;
    item.error_type = r.error_type;
    item.error_reason = r.reason;
    if (a.op != BulkOp::kDelete) item.document = std::move(a.source);
    item.version = a.version;
    report.rejected.push_back(std::move(item));
  }
  return report;
}

}  // namespace rtdw
