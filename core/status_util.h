// Small helpers at the boundary between abseil and the standard library.
//
// Debian's abseil is built with ABSL_OPTION_USE_STD_STRING_VIEW 0: absl::string_view and
// std::string_view are different types. Every conversion goes through these helpers.
#ifndef RTDW_CORE_STATUS_UTIL_H_
#define RTDW_CORE_STATUS_UTIL_H_

#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace rtdw {

inline std::string_view ToStd(absl::string_view s) { return {s.data(), s.size()}; }
inline absl::string_view ToAbsl(std::string_view s) { return {s.data(), s.size()}; }

// The status message as a std::string (fmt cannot print absl::string_view directly).
inline std::string StatusText(const absl::Status& s) { return std::string(s.ToString()); }

}  // namespace rtdw

// Returns from the calling function when `expr` (an absl::Status) is not OK.
#define RTDW_RETURN_IF_ERROR(expr)               \
  do {                                           \
    ::absl::Status rtdw_status_ = (expr);        \
    if (!rtdw_status_.ok()) return rtdw_status_; \
  } while (0)

#define RTDW_CONCAT_INNER_(a, b) a##b
#define RTDW_CONCAT_(a, b) RTDW_CONCAT_INNER_(a, b)
// Assigns the value of an absl::StatusOr expression to `lhs`, or returns its status.
#define RTDW_ASSIGN_OR_RETURN(lhs, expr) \
  RTDW_ASSIGN_OR_RETURN_IMPL_(RTDW_CONCAT_(rtdw_statusor_, __LINE__), lhs, expr)
#define RTDW_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                                \
  if (!tmp.ok()) return tmp.status();               \
  lhs = std::move(tmp).value()

#endif  // RTDW_CORE_STATUS_UTIL_H_
