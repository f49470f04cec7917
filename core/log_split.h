// log-split: one ODS app-log record (docs/FORMATS.md §1) into the DWD log records of §2.
//
// Promises of Process():
//  - Validation comes before routing; a record that fails it goes to sink->DeadLetter() with one
//    reason and nothing else is emitted for it. Checks, in order: too_big (over
//    max_record_bytes), too_deep / bad_utf8 / not_json (the parse), not_object, too_many_items
//    (`displays` or `actions` longer than max_array_items), bad_type (`common` not an object),
//    no_mid (no non-empty string `common.mid`), bad_type (`ts` missing or not an integer;
//    `start`/`page` not objects; `displays`/`actions` not arrays of objects), no_payload (none of
//    `start`, `page` and `err`). These apply whether or not the record carries `err`.
//  - A valid record that carries `err` (present and not null) goes whole and byte-for-byte
//    unchanged to LogSlot::kError and is not split further — also when it has neither `start`
//    nor `page` (an error-only record, as newer app-log generators emit).
//  - Otherwise: `start` -> one StartLog (LogSlot::kStart); `page` -> one PageLog (kPage), one
//    PageDisplayLog per element of `displays` (kDisplay, idx = its index) and one PageActionLog
//    per element of `actions` (kAction, idx = its index), in that order. A record with both `start`
//    and `page` is split both ways. `displays`/`actions` without `page` are ignored.
//  - Output records are flat JSON objects with exactly the fields of §2, in the order listed
//    there, absent source fields omitted. Values keep their JSON types, and numbers their exact
//    source text (`13968`, `10130.00`, `-0.50`, `1.5E+3` are copied as written), except
//    `open_ad_id`, `display_order` and `display_pos_id`, which become strings (a number is written
//    as its source text, a boolean as true/false); one of those that is an object or array is
//    bad_type. Of duplicate keys in an object the last one counts (for validation too). `ts` must
//    be an integer literal (no fraction or exponent) within int64.
//  - Every output is keyed by `common.mid` and carries src = "<topic>/<partition>/<offset>" of the
//    input record.
//  - Never throws, never recurses on the input, no heap allocation per record in steady state
//    (buffers are reused; RapidJSON's small parse stack aside).
//
// Not thread-safe: one transform per worker thread.
#ifndef RTDW_CORE_LOG_SPLIT_H_
#define RTDW_CORE_LOG_SPLIT_H_

#include <cstdint>
#include <functional>
#include <string>

#include "core/dead_letter.h"
#include "core/json_limits.h"
#include "core/records.h"
#include "rapidjson/stringbuffer.h"

namespace rtdw {

// The settings of [jobs.log-split] that the transform uses (from LogSplitJob: max_record_bytes,
// max_depth, max_array_items).
struct LogSplitOptions {
  std::string job = "log-split";  // the `job` field of dead letters
  int64_t max_record_bytes = 524288;
  int max_depth = 64;
  int max_array_items = 1000;
  // Wall clock for the dead letters' ts_ingest, epoch ms. Default: absl::Now().
  std::function<int64_t()> now_ms;
};

struct LogSplitCounters {
  uint64_t records = 0;  // input records processed
  uint64_t start = 0;    // records emitted per output
  uint64_t page = 0;
  uint64_t display = 0;
  uint64_t action = 0;
  uint64_t error = 0;
  uint64_t dead_letters = 0;
  uint64_t dead_by_reason[kReasonCount] = {};

  void Add(const LogSplitCounters& o);
};

// What happened to one input record.
struct SplitOutcome {
  int emitted = 0;             // records emitted (dead letters not counted)
  bool dead_lettered = false;  // true: `reason` says why
  Reason reason = Reason::kNotJson;
};

class LogSplitTransform {
 public:
  explicit LogSplitTransform(LogSplitOptions options);
  LogSplitTransform(const LogSplitTransform&) = delete;
  LogSplitTransform& operator=(const LogSplitTransform&) = delete;

  SplitOutcome Process(const InputRecord& record, RecordSink* sink);

  // Accumulated since construction or the last ResetCounters().
  const LogSplitCounters& counters() const { return counters_; }
  void ResetCounters() { counters_ = LogSplitCounters(); }

 private:
  SplitOutcome DeadLetter(const InputRecord& record, Reason reason, std::string_view detail,
                          RecordSink* sink);

  LogSplitOptions options_;
  JsonParser parser_;
  rapidjson::StringBuffer out_;  // the output record being built (core/json_writer.h)
  std::string src_;              // "topic/partition/offset" of the record
  std::string scratch_;          // numbers turned into strings, details
  std::string dead_line_;
  LogSplitCounters counters_;
};

}  // namespace rtdw

#endif  // RTDW_CORE_LOG_SPLIT_H_
