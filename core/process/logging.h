// Process-wide logging through spdlog: human-readable lines (default) or one JSON object per line.
#ifndef RTDW_CORE_PROCESS_LOGGING_H_
#define RTDW_CORE_PROCESS_LOGGING_H_

#include <string>

#include "absl/status/status.h"
#include "core/config/config.h"

namespace rtdw {

// Sets the default logger (stderr) to `level` and `format` (the config's [log] section). Safe to
// call again, also while other threads log (SIGHUP reload). kJson: one object per line,
// {"ts":"2025-11-25T10:15:00.123+08:00","level":"info","logger":"rtdw","msg":"..."}.
void InitLogging(LogLevel level, LogFormat format);

// Escapes `s` for use inside a JSON string literal (no surrounding quotes). Control characters
// are escaped; bytes that are not well-formed UTF-8 become \ufffd, so the result is always valid.
std::string JsonEscape(const std::string& s);

}  // namespace rtdw

#endif  // RTDW_CORE_PROCESS_LOGGING_H_
