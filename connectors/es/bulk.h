// Elasticsearch _bulk bodies: encoding (NDJSON exactly as ES wants it), parsing a stored body back
// into its actions, reading per-item answers and deciding what each answer means. Pure functions:
// no I/O, usable by the journal and the delivery loop alike.
#ifndef RTDW_CONNECTORS_ES_BULK_H_
#define RTDW_CONNECTORS_ES_BULK_H_

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace rtdw {

enum class BulkOp { kIndex, kCreate, kDelete, kUpdate };

// "index", "create", "delete", "update".
std::string_view BulkOpName(BulkOp op);

// One bulk action. `source` is the JSON text of the second line: the document for index and
// create, the update body (`{"doc":{...}}`) for update; ignored for delete. It must be one JSON
// value; line breaks in it (pretty-printed JSON) are encoded as spaces, which keeps valid JSON
// valid. An empty `id` lets ES invent one, which makes a re-delivery not idempotent: rtdw always
// sets it.
struct BulkAction {
  BulkOp op = BulkOp::kIndex;
  std::string index;
  std::string id;
  std::string source;
  // External versioning (core/es_version.h): `version` >= 0 is sent with `version_type`
  // (e.g. "external_gte"); -1 = none (ES's internal versioning).
  int64_t version = -1;
  std::string version_type;
};

// Appends the action line and (except for delete) the source line, each ending in '\n'.
void AppendBulkAction(const BulkAction& action, std::string* out);
// The bytes AppendBulkAction appends.
size_t EncodedBulkActionSize(const BulkAction& action);
// About the bytes AppendBulkAction appends (a size hint: escapes and long versions may add more),
// without encoding anything: for reserving a body before it is written.
inline size_t EstimatedBulkActionSize(const BulkAction& action) {
  return action.source.size() + action.index.size() + action.id.size() + 96;
}
// The whole body for `actions` (ends in '\n' when not empty).
std::string EncodeBulkBody(std::span<const BulkAction> actions);

// Parses a bulk body (as EncodeBulkBody or any ES client writes it) back into actions, keeping
// each source line verbatim. Actions without `_index` take `default_index` (error when empty).
// Blank lines are skipped. InvalidArgument names the 1-based line of the first problem.
absl::StatusOr<std::vector<BulkAction>> ParseBulkBody(std::string_view body,
                                                      std::string_view default_index = {});

// A bulk body ready to be sent, with where each action's bytes are: what EsClient::Bulk sends.
//
// FromBody() takes a stored body (a journal entry's) as it is when it is in the form
// AppendBulkAction and AppendJournalIndexAction write — every action line exactly
// {"<op>":{"_index":"..."[,"_id":"..."][,"version":N[,"version_type":"..."]]}} with plain ASCII
// names (no escapes), each source line non-empty, starting with no blank and holding no '\r',
// every line ending in '\n'. Only the action lines are read; a source line is only searched for
// its end. For such a body, bytes() is the body itself: byte for byte what
// EncodeBulkBody(*ParseBulkBody(body)) would be, so sending it as it is changes nothing but the
// cost. Any other body is parsed (ParseBulkBody, with its errors) and encoded again.
//
// Thread-compatible; immutable once made. A body taken as it is is not copied: it must outlive
// the PreparedBulkBody (raw() says whether it was taken so).
class PreparedBulkBody {
 public:
  PreparedBulkBody() = default;
  // The errors are ParseBulkBody's (InvalidArgument naming the line): a body taken as it is
  // would parse, so it never fails.
  static absl::StatusOr<PreparedBulkBody> FromBody(std::string_view body);
  // Encodes `actions` (AppendBulkAction) into a body of its own.
  static PreparedBulkBody FromActions(std::span<const BulkAction> actions);

  std::string_view bytes() const { return raw_ ? std::string_view(raw_body_) : owned_; }
  bool raw() const { return raw_; }
  size_t size() const { return actions_.size(); }
  bool empty() const { return actions_.empty(); }
  // Action i's lines (its action line, and its source line unless it is a delete).
  std::string_view ActionBytes(size_t i) const {
    return bytes().substr(actions_[i].begin, actions_[i].end - actions_[i].begin);
  }
  BulkOp op(size_t i) const { return actions_[i].op; }
  // The action carries an external version (BulkAction::version >= 0).
  bool versioned(size_t i) const { return actions_[i].versioned; }
  // Parses action i back (index, id, source, version): for a dead letter of a refused item.
  absl::StatusOr<BulkAction> Action(size_t i) const;

 private:
  struct Place {
    size_t begin = 0;
    size_t end = 0;
    BulkOp op = BulkOp::kIndex;
    bool versioned = false;
  };
  bool raw_ = false;
  std::string_view raw_body_;
  std::string owned_;
  std::vector<Place> actions_;
};

// What the cluster said about one item of a bulk request.
struct BulkItemAnswer {
  int status = 0;          // the item's HTTP status; 0 when the answer lacks one
  std::string result;      // "created", "updated", "deleted", "not_found", "noop" (when no error)
  std::string error_type;  // error.type, e.g. "mapper_parsing_exception"
  std::string reason;      // error.reason (with caused_by's reason appended when present)
};

// Reads `items[]` of a 200 answer to a bulk request of `expected_items` actions. An answer that
// is not JSON, lacks items or has another number of them is an error (the caller retries all).
absl::StatusOr<std::vector<BulkItemAnswer>> ParseBulkResponse(std::string_view body,
                                                              size_t expected_items);

enum class ItemVerdict {
  kDone,        // 200/201; 409 on create (already there); 404 not_found on delete (already gone)
  kSuperseded,  // 409 version_conflict_engine_exception on a versioned write: ES holds a newer
                // version, so this write is delivered (it lost, as it should)
  kRetry,       // 429, 5xx, 408, or no status at all
  kPermanent,   // any other answer: the caller dead-letters it
};
// `versioned`: the action carried an external version (BulkAction::version >= 0).
ItemVerdict ClassifyBulkItem(BulkOp op, const BulkItemAnswer& answer, bool versioned = false);

// Checks a JSON text for nesting deeper than `max_depth` without parsing it (strings and escapes
// are honoured). RapidJSON's iterative parser survives any depth, but the code walking a DOM
// recurses: callers reject deep input first.
bool JsonDepthExceeds(std::string_view json, int max_depth);

}  // namespace rtdw

#endif  // RTDW_CONNECTORS_ES_BULK_H_
