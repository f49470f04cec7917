// Where journal entries go: the interface the ES connector implements for the batch transaction's
// delivery step, the daemon's start-up replay and `rtdw journal replay`.
//
// Contract of Deliver():
//  - OK: every document of the entry was either acknowledged by the cluster (created, updated,
//    an idempotent no-op such as a 409 on `create`, or superseded: a 409 version conflict of a
//    write with an external version, core/es_version.h — ES holds a better document) or refused
//    for good (a 4xx other than 409/429), and the refused ones are listed in `rejected`. The
//    caller then dead-letters the rejected items and deletes the entry — in one write
//    (StateStore::CompleteJournal).
//  - Error: the entry is still owed. Nothing may be assumed about which items arrived; the entry
//    is delivered again later, whole (deterministic `_id`s make that harmless). Transient
//    failures (429, 5xx, timeouts, connection errors) are retried inside Deliver() with backoff
//    before it gives up with an error.
//  - Entries are delivered one at a time, in seq order: the caller does not call Deliver() for
//    entry N+1 before entry N returned OK.
#ifndef RTDW_CORE_JOURNAL_SINK_H_
#define RTDW_CORE_JOURNAL_SINK_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "core/journal_entry.h"

namespace rtdw {

// A document the cluster refused for good.
struct RejectedItem {
  std::string index;
  std::string id;
  int status = 0;            // HTTP status of the item
  std::string error_type;    // ES error.type, e.g. "mapper_parsing_exception"
  std::string error_reason;  // ES error.reason
  std::string document;      // the source line sent (one line of JSON); "" for delete
  int64_t version = -1;      // the external version it was sent with; -1 = none
};

struct DeliveryReport {
  uint64_t seq = 0;
  uint32_t docs = 0;          // documents in the entry
  uint32_t acknowledged = 0;  // documents the cluster accepted (superseded ones included)
  uint32_t superseded = 0;    // of those, versioned writes ES refused as older (409)
  std::vector<RejectedItem> rejected;
  uint32_t requests = 0;  // bulk requests sent, retries included
  uint32_t retries = 0;   // of those, retries of transient failures
};

class JournalSink {
 public:
  virtual ~JournalSink() = default;
  virtual absl::StatusOr<DeliveryReport> Deliver(const JournalEntry& entry) = 0;
};

// The dead-letter line (docs/FORMATS.md §7, core/dead_letter.h) for a rejected ES item:
// {"job":J,"reason":"es_rejected","detail":"<type>: <reason>","index":I,"id":D,"status":S,
//  "src":<the document's rtdw_src, if any>,"ts_ingest":now_ms,"raw":<document>,
//  "version":<the external version, when it had one>}
std::string EsRejectedDeadLetter(std::string_view job, const RejectedItem& item, int64_t now_ms);

}  // namespace rtdw

#endif  // RTDW_CORE_JOURNAL_SINK_H_
