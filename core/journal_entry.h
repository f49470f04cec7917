// A journal entry: one ES _bulk body a job owes, as committed in the state store's `journal`
// column family (docs/STATE.md) and re-delivered by the job's start-up replay or `rtdw journal
// replay`.
//
// Invariants:
//  - `seq` is assigned by the state store when the batch that carries the entry commits; entries
//    are delivered strictly in seq order (docs/DESIGN.md, "The batch transaction").
//  - `body` is the exact NDJSON bulk body: per document one action line naming `_index` and
//    `_id` (deterministic ids, so a re-delivery is harmless) and, for index/create/update, one
//    source line; it ends with '\n'.
//  - The value encoding (EncodeJournalValue) is versioned by its first byte; a decoder refuses a
//    version it does not know rather than guessing.
#ifndef RTDW_CORE_JOURNAL_ENTRY_H_
#define RTDW_CORE_JOURNAL_ENTRY_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace rtdw {

struct JournalEntry {
  uint64_t seq = 0;        // 0 until committed
  std::string target;      // what the body is for, for people: e.g. "gmall_dau_info_2024-11-25"
  std::string body;        // NDJSON _bulk body (may be empty when listed without bodies)
  uint32_t doc_count = 0;  // documents (action lines) in body
  int64_t created_ms = 0;  // wall clock of the commit, epoch ms
  uint64_t body_size = 0;  // bytes of the body; set by DecodeJournalValue even without the body
};

// Value encoding, version 1 (all integers big-endian):
//   u8 version=1 | i64 created_ms | u32 doc_count | u32 target_len | target | body (the rest)
std::string EncodeJournalValue(const JournalEntry& entry);
// The value's part before the body (version .. target): EncodeJournalHeader(e) + e.body ==
// EncodeJournalValue(e), for a writer that puts the body without copying it first.
std::string EncodeJournalHeader(const JournalEntry& entry);
// Decodes a value written by EncodeJournalValue; `seq` comes from the key. With
// `with_body` false the body is left empty (body_size is still set).
absl::StatusOr<JournalEntry> DecodeJournalValue(uint64_t seq, std::string_view value,
                                                bool with_body = true);

// One action line of a journal entry's bulk body. (connectors/es has the full BulkAction with
// the source line; core cannot depend on it, and needs only this much.)
struct JournalAction {
  std::string op;     // "index" | "create" | "update" | "delete"
  std::string index;  // _index
  std::string id;     // _id
};
// The action lines of a bulk body, in order (source lines skipped). An error names the line
// number of the first line that is not a valid action.
absl::StatusOr<std::vector<JournalAction>> ParseJournalActions(std::string_view body);

// Appends one `index` action and its source line to `body`. `source_json` must be one line of
// JSON (no raw newline: JSON strings escape them). A `version` >= 0 adds `"version":<version>,
// "version_type":"external_gte"` to the action line (core/es_version.h): the version lives in
// the body, so every sender (the daemon, `rtdw journal replay`) sends it.
void AppendJournalIndexAction(std::string* body, std::string_view index, std::string_view id,
                              std::string_view source_json, int64_t version = -1);

}  // namespace rtdw

#endif  // RTDW_CORE_JOURNAL_ENTRY_H_
