// SIGHUP: what a re-read config changes, and which of it rtdwd can apply without a restart.
//
// Applied live: log.level, log.format, log.progress_interval, shutdown.timeout, and for each
// enabled job its effective batch_max_records / batch_max_ms (set in [jobs] or its own section)
// and db-split's fact_tables / dim_tables (the defaults used while the Redis sets are absent).
// Everything else (brokers, URLs, topics, state, http, enabled jobs, time zones, secrets, ...)
// needs a restart: it is reported, not applied. Differences inside the section of a job that is
// not enabled are ignored (that job does not run here).
#ifndef RTDW_CORE_CONFIG_RELOAD_H_
#define RTDW_CORE_CONFIG_RELOAD_H_

#include <string>
#include <vector>

#include "core/config/config.h"

namespace rtdw {

struct ConfigChange {
  std::string key;     // dotted, e.g. "jobs.dau.batch_max_records"
  std::string before;  // as TOML values; never a secret (live keys hold none)
  std::string after;
};

struct ReloadPlan {
  std::vector<ConfigChange> live;    // applied without a restart
  std::vector<std::string> restart;  // keys whose new value needs a restart (values not shown)
  bool empty() const { return live.empty() && restart.empty(); }
  // One line: "applied: log.level "info" -> "debug", ...; needs a restart (not applied): ...".
  std::string Summary() const;
};

// Compares the running config with a newly loaded one.
ReloadPlan PlanReload(const Config& running, const Config& next);

// Copies the live-changeable settings of `next` into `config`, leaving every other one as it is
// (so that a later reload reports the restart-only differences again).
void ApplyLiveSettings(const Config& next, Config* config);

}  // namespace rtdw

#endif  // RTDW_CORE_CONFIG_RELOAD_H_
