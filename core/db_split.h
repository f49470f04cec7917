// db-split: one Maxwell change record (docs/FORMATS.md §3) into a fact DWD record, a dimension
// write for Redis, a skip, or a dead letter.
//
// Promises of Process():
//  - Exactly one outcome per record, checked in this order:
//    1. too_big / too_deep / bad_utf8 / not_json (the parse), not_object -> dead letter;
//    2. `type` not a string -> dead letter bad_type;
//    3. `type` none of insert, update, delete, bootstrap-insert (bootstrap-start/-complete, DDL
//       such as table-create, database-level DDL such as database-create that has no `table`,
//       ...) -> skipped, counted in `skipped_no_row`;
//    4. `table` not a non-empty string -> dead letter bad_type;
//    5. `table` in neither list -> skipped, counted in `skipped_unknown_table`;
//    6. `data` not an object -> dead letter no_payload;
//    7. a dimension row whose `data.id` is not an id (IdText: missing, null, "", a fraction, an
//       integer beyond 64 bits, an object...) -> dead letter no_id.
//  - Fact table: one record to topic `DWD_<TABLE>_<I|U|D>` (table upper-cased; insert and
//    bootstrap-insert -> I, update -> U, delete -> D), value = the `data` object written again
//    with WriteJson: values keep their JSON types and numbers their exact source text (`8197.00`
//    stays `8197.00`, `4500000001.512456777` and 18446744073709551615 keep every digit); of
//    duplicate keys only the last is written. Key = IdText of the row's key field (`order_id` for
//    order_detail, so it co-partitions with its order_info; `id` otherwise; see
//    DbSplitOptions::key_fields), falling back to `id`, then to the table name when neither is an
//    id. src = "<topic>/<partition>/<offset>" of the input record.
//  - Dimension table: insert / update / bootstrap-insert -> RedisWrite SET `DIM:<TABLE>:<id>` =
//    the `data` object written as for a fact; delete -> RedisWrite DEL of that key; each write
//    carries the record's offset. The caller applies a batch's writes atomically and
//    order-independently (RedisClient::ApplyAtomically: a write older than the key's stored
//    position is skipped), so a re-sent or stale batch never puts an older row back.
//  - A table in both lists is routed both ways (nothing dropped while an operator moves it).
//  - Table names are matched against the lists ignoring ASCII case (Maxwell writes MySQL's own
//    case: `Order_Info` is `order_info`); topic names and Redis keys upper-case them, so both
//    spellings give the same topic and key.
//
// Not thread-safe: one transform per worker thread.
#ifndef RTDW_CORE_DB_SPLIT_H_
#define RTDW_CORE_DB_SPLIT_H_

#include <array>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "core/dead_letter.h"
#include "core/dim_write.h"
#include "core/json_limits.h"
#include "core/records.h"
#include "rapidjson/stringbuffer.h"

namespace rtdw {

// The fact and dimension table lists of the current batch (Redis sets FACT:TABLES and
// DIM:TABLES, or the configured defaults while a set is absent). Names match ignoring ASCII case.
class TableLists {
 public:
  static TableLists From(const std::vector<std::string>& facts,
                         const std::vector<std::string>& dims);
  bool IsFact(std::string_view table) const;
  bool IsDim(std::string_view table) const;

 private:
  absl::flat_hash_set<std::string> facts_;  // lower case
  absl::flat_hash_set<std::string> dims_;
};

struct DbSplitOptions {
  std::string job = "db-split";  // the `job` field of dead letters
  // Limits on the input record (Maxwell rows are flat; 0 bytes = no size limit).
  int64_t max_record_bytes = 0;
  int max_depth = 64;
  // Per fact table (any case), the `data` field whose value is the Kafka key (default: `id`).
  absl::flat_hash_map<std::string, std::string> key_fields = {{"order_detail", "order_id"}};
  // Wall clock for the dead letters' ts_ingest, epoch ms. Default: absl::Now().
  std::function<int64_t()> now_ms;
};

struct DbSplitCounters {
  uint64_t records = 0;
  uint64_t fact_rows[3] = {};  // by I, U, D
  uint64_t dim_sets = 0;
  uint64_t dim_dels = 0;
  uint64_t skipped_no_row = 0;         // bootstrap markers, DDL (with or without a table), ...
  uint64_t skipped_unknown_table = 0;  // rows of tables in neither list
  uint64_t dead_letters = 0;
  uint64_t dead_by_reason[kReasonCount] = {};

  void Add(const DbSplitCounters& o);
};

enum class DbOutcome { kFact, kDimension, kSkippedNoRow, kSkippedUnknownTable, kDeadLetter };

struct DbSplitResult {
  DbOutcome outcome = DbOutcome::kDeadLetter;
  std::string_view topic;            // kFact: the topic name (valid until the next Process)
  Reason reason = Reason::kNotJson;  // kDeadLetter: why
};

class DbSplitTransform {
 public:
  explicit DbSplitTransform(DbSplitOptions options);
  DbSplitTransform(const DbSplitTransform&) = delete;
  DbSplitTransform& operator=(const DbSplitTransform&) = delete;

  // Fact records and dead letters go to `sink`; dimension writes are appended to `redis`.
  DbSplitResult Process(const InputRecord& record, const TableLists& tables, RecordSink* sink,
                        std::vector<RedisWrite>* redis);

  const DbSplitCounters& counters() const { return counters_; }
  void ResetCounters() { counters_ = DbSplitCounters(); }

  // `DWD_<TABLE>_<I|U|D>` for a table and a change kind 'I', 'U' or 'D'.
  static std::string FactTopic(std::string_view table, char kind);
  // `DIM:<TABLE>:<id>`.
  static std::string DimKey(std::string_view table, std::string_view id);

 private:
  DbSplitResult DeadLetter(const InputRecord& record, Reason reason, std::string_view detail,
                           RecordSink* sink);
  const std::array<std::string, 3>& TopicsOf(std::string_view table);

  DbSplitOptions options_;
  JsonParser parser_;
  rapidjson::StringBuffer out_;  // the output row (core/json_writer.h)
  absl::flat_hash_map<std::string, std::array<std::string, 3>> topics_;  // cache by table
  std::string src_;
  std::string key_;
  std::string folded_;  // the table name in lower case, when it has upper-case letters
  std::string scratch_;
  std::string dead_line_;
  DbSplitCounters counters_;
};

}  // namespace rtdw

#endif  // RTDW_CORE_DB_SPLIT_H_
