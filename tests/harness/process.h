// Child processes and temporary directories for tests that run real binaries.
#ifndef RTDW_TESTS_HARNESS_PROCESS_H_
#define RTDW_TESTS_HARNESS_PROCESS_H_

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace rtdw::testing {

// The directory holding the project's binaries (build/bin).
std::string BinDir();

// A TCP port on 127.0.0.1 that was free a moment ago (bindable, then released), picked at random
// below the kernel's ephemeral range so that no outgoing connection takes it meanwhile.
int FreePort();

// Reads a whole file; "" when it cannot be read.
std::string ReadFileOrEmpty(const std::string& path);

// A fresh directory under $TMPDIR (or /tmp), removed with its contents on destruction
// unless RTDW_KEEP_TMP is set.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string Sub(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// Options for ChildProcess::Start.
struct ProcessOptions {
  std::string stdout_path;       // "" = inherit
  std::string stderr_path;       // "" = inherit
  std::vector<std::string> env;  // extra NAME=VALUE entries
};

// A child process started with fork/exec. The destructor kills (SIGKILL) and reaps it if it is
// still running, so a failing test never leaves servers behind.
class ChildProcess {
 public:
  static absl::StatusOr<std::unique_ptr<ChildProcess>> Start(const std::vector<std::string>& argv,
                                                             const ProcessOptions& options = {});
  ~ChildProcess();
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  pid_t pid() const { return pid_; }
  // True while the process has not been reaped.
  bool Running();
  // Sends a signal (no wait).
  void Signal(int sig);
  // Waits up to `timeout` for exit; returns the exit code (128+signal when killed), or nullopt
  // when it is still running.
  std::optional<int> Wait(std::chrono::milliseconds timeout);
  // SIGTERM, wait up to `grace`, then SIGKILL. Returns the exit code.
  int Stop(std::chrono::milliseconds grace = std::chrono::seconds(10));
  // SIGKILL and reap.
  void Kill9();
  // The exit code once reaped.
  std::optional<int> exit_code() const { return exit_code_; }

 private:
  explicit ChildProcess(pid_t pid) : pid_(pid) {}
  pid_t pid_;
  std::optional<int> exit_code_;
};

// Runs a command to completion; returns its exit code and captured stdout/stderr.
struct CommandResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};
CommandResult RunCommand(const std::vector<std::string>& argv,
                         std::chrono::milliseconds timeout = std::chrono::seconds(120),
                         const std::vector<std::string>& env = {});

// Runs `work` in a forked child of this process (the same code and memory, no exec) and waits for
// it: "exit 0" when it returned true, "exit 1" when false, "killed" when it ended by SIGKILL (a
// crash test's simulated kill), "signal" for another signal. For the engine's kill-at-every-point
// tests: create what the worker uses inside `work` (threads do not survive a fork).
std::string RunInChild(const std::function<bool()>& work);

// Polls `cond` every 20 ms until it is true or `timeout` passes.
template <typename Cond>
bool WaitFor(Cond cond, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (cond()) return true;
    struct timespec ts {
      0, 20'000'000
    };
    nanosleep(&ts, nullptr);
  }
  return cond();
}

}  // namespace rtdw::testing

#endif  // RTDW_TESTS_HARNESS_PROCESS_H_
