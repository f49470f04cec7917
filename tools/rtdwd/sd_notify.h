// systemd's readiness protocol (sd_notify(3)) without libsystemd: one datagram to the socket named
// by $NOTIFY_SOCKET ("/path" or "@abstract"). Without $NOTIFY_SOCKET (not run by systemd with
// Type=notify) every call is a no-op.
#ifndef RTDW_TOOLS_RTDWD_SD_NOTIFY_H_
#define RTDW_TOOLS_RTDWD_SD_NOTIFY_H_

#include <string_view>

namespace rtdw {

// Sends `state` (e.g. "READY=1\nSTATUS=consuming", "RELOADING=1", "STOPPING=1"). Returns false
// when $NOTIFY_SOCKET is set but the datagram could not be sent (the caller may log it).
bool SdNotify(std::string_view state);

}  // namespace rtdw

#endif  // RTDW_TOOLS_RTDWD_SD_NOTIFY_H_
