// Dead letters (docs/FORMATS.md §7): the reason codes and the one-line JSON value.
//
// Promises of the encoder:
//  - One line of valid JSON (no raw newline), fields in this order: job, reason, detail, then for
//    es_rejected index, id, status, version, then src, ts_ingest, raw | raw_base64, truncated.
//    Empty optional fields (src, index, id; status, version < 0) are left out, never written as
//    null or "".
//  - `raw` holds the original record as a JSON string when it is valid UTF-8; otherwise
//    `raw_base64` holds its bytes in base64. Beyond kDeadLetterMaxRawBytes the record is cut (at a
//    character boundary for `raw`) and "truncated":true is added, so a dead letter always fits
//    the producer's 1,000,000-byte message limit (detail is cut at 4 KiB likewise).
#ifndef RTDW_CORE_DEAD_LETTER_H_
#define RTDW_CORE_DEAD_LETTER_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "core/records.h"

namespace rtdw {

// Reason codes. Never reuse a code for another meaning; add new ones at the end.
enum class Reason : uint8_t {
  kNotJson,       // not_json
  kNotObject,     // not_object
  kBadUtf8,       // bad_utf8
  kTooBig,        // too_big
  kTooDeep,       // too_deep
  kTooManyItems,  // too_many_items
  kNoMid,         // no_mid
  kBadType,       // bad_type
  kNoPayload,     // no_payload
  kNoId,          // no_id
  kLate,          // late
  kFuture,        // future
  kJoinExpired,   // join_expired
  kEsRejected,    // es_rejected
  kUnknownTopic,  // unknown_topic (order-wide: a record from neither of its input topics)
};
inline constexpr int kReasonCount = 15;

// "not_json", "not_object", ... as listed above.
std::string_view ReasonCode(Reason r);

inline constexpr size_t kDeadLetterMaxRawBytes = 64 * 1024;
inline constexpr size_t kDeadLetterMaxDetailBytes = 4 * 1024;

struct DeadLetterFields {
  std::string_view job;      // "log-split", "db-split", "dau", "order-wide"
  std::string_view reason;   // ReasonCode(...) or a code of the caller's
  std::string_view detail;   // a sentence for a person
  std::string_view src;      // "topic/partition/offset" of the input record ("" = omitted)
  int64_t ts_ingest_ms = 0;  // wall clock when the record was rejected
  std::string_view raw;      // the original record (es_rejected: the document)
  // es_rejected only ("" / -1 = omitted).
  std::string_view index;
  std::string_view id;
  int status = -1;
  int64_t version = -1;  // the external version the document was sent with (core/es_version.h)
};

// Appends the dead-letter line (no trailing newline) to `out`.
void AppendDeadLetterJson(const DeadLetterFields& f, std::string* out);
std::string DeadLetterJson(const DeadLetterFields& f);

// What a dead letter stands for, so that the same thing is never kept twice (docs/FORMATS.md §7):
//  - kDocument: an es_rejected letter, the document (index, id) ES refused. A later refusal of
//    the same document replaces it.
//  - kPosition: any other letter with a `src`, the input record at (topic, partition, offset).
//    One record gives at most one dead letter; reading the record again (a reprocess, a retry)
//    replaces the letter with the new verdict, or resolves it when the record is accepted.
//  - kNone: neither (no parseable src, or not a JSON object): kept as it is.
struct DeadLetterIdentity {
  enum Kind { kNone, kPosition, kDocument } kind = kNone;
  std::string reason;
  std::string topic;  // kPosition
  int32_t partition = 0;
  int64_t offset = 0;
  std::string index;  // kDocument
  std::string id;
};
DeadLetterIdentity IdentifyDeadLetter(std::string_view line);

// A dead letter's fields as the readers of the kept letters (`rtdw deadletter`, `rtdw verify`)
// use them (of duplicate keys the last). ok is false when the line is not a JSON object; a field
// that is absent or not a string is left empty.
struct ParsedDeadLetter {
  bool ok = false;
  std::string reason, index, id, raw, src;
  bool truncated = false;
  bool has_raw = false;  // `raw` is present (raw_base64 letters have none)
  int64_t version = -1;  // the external version the document was sent with (-1: none)
};
ParsedDeadLetter ParseDeadLetter(std::string_view line);

// A split transform's rejection of `in`: the dead-letter line of (job, reason, detail, src,
// ts_ingest_ms, raw = in.value) is built in `*line` (reused; the sink sees it only during the
// call) and handed to `sink` under the record's key.
void SendToDeadLetter(const InputRecord& in, std::string_view job, Reason reason,
                      std::string_view detail, std::string_view src, int64_t ts_ingest_ms,
                      std::string* line, RecordSink* sink);

}  // namespace rtdw

#endif  // RTDW_CORE_DEAD_LETTER_H_
