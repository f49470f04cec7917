// The change-data half of rtdw-gen: a deterministic day of Maxwell records (docs/FORMATS.md §3) for
// ODS_BASE_DB and the truth a test compares the pipeline with (docs/GEN.md).
//
// Sequence: a Maxwell bootstrap of user_info (`bootstrap-start`, one `bootstrap-insert` per user,
// `bootstrap-complete`) and of base_province, an hour before the day; then the day's changes in
// commit order: each order_info insert followed by its order_detail inserts (one transaction:
// same xid, `commit` on its last row), order status updates (1001 -> 1002 paid -> 1004 delivered,
// or 1001 -> 1003 cancelled) and user_info updates, each row's changes in order.
//
// Promises:
//  - The same options (seed included) give the same bytes.
//  - Every order's create_time ("yyyy-MM-dd HH:mm:ss", local time in time_zone) lies in `day` or,
//    with days > 1, in one of the days after it (each day drawn uniformly); updates after the
//    last day's end are not generated. days = 1 gives the bytes of a build without `days`. Ids are
//    assigned in commit order (1, 2, ...).
//  - Kafka keys as Maxwell partitions: the row id; order_detail by its order_id (so it
//    co-partitions with its order); the table name for bootstrap markers.
//  - detail_lag_days / dims_last change only where rows are in the stream, never the truth.
//  - user updates never change `birthday` or `gender`, so the dimension fields of the wide tables
//    do not depend on when a row was looked up.
//  - Maxwell-like values: ids and amounts are JSON numbers (amounts written with two decimals,
//    e.g. 8197.00), NULL columns are null (`operate_time` of an insert, `status`).
#ifndef RTDW_CORE_GEN_DB_GEN_H_
#define RTDW_CORE_GEN_DB_GEN_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/time/civil_time.h"
#include "absl/time/time.h"

namespace rtdw::gen {

struct DbGenOptions {
  absl::CivilDay day;  // the first day
  int days = 1;        // orders and updates spread over `day` and the days-1 after it
  std::string time_zone = "Asia/Shanghai";
  absl::TimeZone tz;  // time_zone, loaded by the caller
  int64_t users = 1000;
  int64_t orders = 1000;
  int64_t provinces = 34;
  uint64_t seed = 1;
  double user_update_share = 0.2;  // users updated during the day (1-3 times each)
  // Arrival orders that real change streams show (the rows' `ts` stay their commit times):
  // order_detail rows come this many days after their orders (their own transaction), so the
  // detail table's rows arrive days behind the order table's;
  int detail_lag_days = 0;
  // the dimension bootstraps (user_info, base_province, with the rows' final values) come after
  // every fact that needs them.
  bool dims_last = false;
};

absl::Status ValidateDbGenOptions(const DbGenOptions& options);

class DbGenerator {
 public:
  explicit DbGenerator(const DbGenOptions& options);  // options must be valid
  ~DbGenerator();
  DbGenerator(const DbGenerator&) = delete;
  DbGenerator& operator=(const DbGenerator&) = delete;

  // The next record: its Kafka key and value. False at the end.
  bool Next(std::string* key, std::string* value);
  uint64_t emitted() const;

  // The truth JSON (docs/GEN.md); complete after the last Next().
  std::string TruthJson() const;

 private:
  struct State;
  std::unique_ptr<State> s_;
};

}  // namespace rtdw::gen

#endif  // RTDW_CORE_GEN_DB_GEN_H_
