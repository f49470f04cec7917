// The app-log half of rtdw-gen: a deterministic day of ODS_BASE_LOG records (docs/FORMATS.md §1)
// and the truth a test compares the pipeline with (docs/GEN.md).
//
// Model: `mids` devices, each with fixed attributes (brand, model, os, channel, version, province,
// is_new, the user who logs in on it). Traffic is a set of visits (an app start, then a chain of
// pages, each page's last_page_id the previous page; the first page of a visit has none), spread
// over the day by a daily curve, assigned to devices with a skew (some devices come back many
// times: repeat visits). Pages carry displays and actions; any record carries `err` with
// probability error_share. Records are emitted in upload order (event time plus a small, sometimes
// large, upload delay), so event times arrive slightly out of order, as from real phones.
//
// Promises:
//  - Exactly `events` records; the same options (seed included) give the same bytes.
//  - Every `ts` lies in `day` (or, with days > 1, one of the days after it) in `time_zone`;
//    first-page records of one device never share a `ts` (so the DAU winner never depends on a
//    tie-break). days = 1 and disorder = 0 give the bytes of a build without them.
//  - With days > 1, disorder or clock_skew, the truth's `late_below_retention_days` is one more
//    than the most days (of the zone) a first page is behind the newest first page delivered
//    before it, computed from the emitted stream: with dedup.retention_days at least that, no
//    first page is `late` (docs/FORMATS.md §6), whatever the partitioning. With disorder alone
//    it is 2. clock_skew moves `ts` off the days (by up to 20 h).
//  - The truth is computed from the generator's own model, not by parsing its output.
#ifndef RTDW_CORE_GEN_LOG_GEN_H_
#define RTDW_CORE_GEN_LOG_GEN_H_

#include <cstdint>
#include <memory>
#include <queue>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/civil_time.h"
#include "absl/time/time.h"

namespace rtdw::gen {

struct LogGenOptions {
  absl::CivilDay day;  // the first day
  int days = 1;        // visits spread over `day` and the days-1 after it
  std::string time_zone = "Asia/Shanghai";
  absl::TimeZone tz;  // time_zone, loaded by the caller
  int64_t mids = 1000;
  int64_t users = 1000;
  int64_t events = 10000;
  uint64_t seed = 1;
  double error_share = 0.02;     // records carrying `err`
  double malformed_share = 0.0;  // records broken on purpose (dead letters of log-split)
  // Share of devices whose visits are delivered out of order: every record of such a device's
  // visits of the 1st, 3rd, 5th, ... day is held back to the last two hours of the next day,
  // later visits first (and after its visits of that next day, which come on time), so its
  // first pages arrive largest-ts-first, across batches and days — never more than one day
  // behind the newest event delivered before them.
  double disorder = 0.0;
  // Share of devices with a fast or slow clock: each such device's `ts` (and action ts) is off by
  // a fixed amount drawn from -20 h .. +20 h (within the jobs' default max_future of a day); the
  // upload order follows the true time. Its documents fall on the days its clock says.
  double clock_skew = 0.0;
};

absl::Status ValidateLogGenOptions(const LogGenOptions& options);

class LogGenerator {
 public:
  explicit LogGenerator(const LogGenOptions& options);  // options must be valid
  ~LogGenerator();
  LogGenerator(const LogGenerator&) = delete;
  LogGenerator& operator=(const LogGenerator&) = delete;

  // The next record's value (ODS log records have no key). False once `events` were returned.
  bool Next(std::string* value);
  // The same, with the record's device id ("mid_17") in `mid`, for producers that key by mid.
  bool Next(std::string* mid, std::string* value);
  uint64_t emitted() const;

  // The truth JSON (docs/GEN.md) of everything emitted so far; complete after the last Next().
  std::string TruthJson() const;

 private:
  struct State;
  std::unique_ptr<State> s_;
};

}  // namespace rtdw::gen

#endif  // RTDW_CORE_GEN_LOG_GEN_H_
