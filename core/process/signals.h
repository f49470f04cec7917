// Process signals as flags: SIGTERM/SIGINT ask for a drain and exit, SIGHUP for a config reload.
//
// Thread-safe and async-signal-safe: the flags are lock-free atomics, read from any thread.
#ifndef RTDW_CORE_PROCESS_SIGNALS_H_
#define RTDW_CORE_PROCESS_SIGNALS_H_

namespace rtdw {

// Installs the handlers (idempotent) and ignores SIGPIPE.
void InstallSignalHandlers();
// True once SIGTERM or SIGINT arrived.
bool StopRequested();
// Ask for a stop from inside the process (e.g. --exit-when-idle).
void RequestStop();
// True once per SIGHUP received (reading clears it).
bool TakeReloadRequest();

}  // namespace rtdw

#endif  // RTDW_CORE_PROCESS_SIGNALS_H_
