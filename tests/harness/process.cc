#include "tests/harness/process.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace rtdw::testing {

std::string BinDir() {
  if (const char* dir = getenv("RTDW_BIN_DIR")) return dir;
  return RTDW_BIN_DIR;
}

namespace {

// True when `port` can be bound on 127.0.0.1 now.
bool Bindable(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return false;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  const bool ok = bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  close(fd);
  return ok;
}

}  // namespace

int FreePort() {
  // Below Linux's ephemeral range (32768-60999 by default): a port the kernel hands out for
  // bind(0) is also what it gives the next outgoing connection (librdkafka, hiredis and curl make
  // many), which then takes the port between this check and the server's bind (a test saw rtdwd
  // exit 4, "cannot listen"). A random pick in 20000-32767 is only contended by another test's
  // pick.
  static std::mt19937 rng(std::random_device{}() ^ static_cast<unsigned>(getpid()));
  std::uniform_int_distribution<int> pick(20000, 32767);
  for (int attempt = 0; attempt < 200; ++attempt) {
    const int port = pick(rng);
    if (Bindable(port)) return port;
  }
  // Crowded: let the kernel choose.
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    close(fd);
    return -1;
  }
  socklen_t len = sizeof(addr);
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  int port = ntohs(addr.sin_port);
  close(fd);
  return port;
}

std::string ReadFileOrEmpty(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return "";
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

TempDir::TempDir() {
  const char* base = getenv("TMPDIR");
  std::string tmpl = absl::StrCat(base && *base ? base : "/tmp", "/rtdw-test-XXXXXX");
  std::vector<char> buf(tmpl.begin(), tmpl.end());
  buf.push_back('\0');
  if (mkdtemp(buf.data()) == nullptr) {
    perror("mkdtemp");
    abort();
  }
  path_ = buf.data();
}

TempDir::~TempDir() {
  if (getenv("RTDW_KEEP_TMP") != nullptr) return;
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

absl::StatusOr<std::unique_ptr<ChildProcess>> ChildProcess::Start(
    const std::vector<std::string>& argv, const ProcessOptions& options) {
  if (argv.empty()) return absl::InvalidArgumentError("empty argv");
  if (access(argv[0].c_str(), X_OK) != 0 && argv[0].find('/') != std::string::npos) {
    return absl::NotFoundError(absl::StrCat("not executable: ", argv[0]));
  }
  pid_t pid = fork();
  if (pid < 0) return absl::InternalError(absl::StrCat("fork: ", strerror(errno)));
  if (pid == 0) {
    // Child: its own process group, so a test can signal the child's whole tree.
    setpgid(0, 0);
    auto redirect = [](const std::string& path, int target) {
      if (path.empty()) return;
      int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
      if (fd >= 0) {
        dup2(fd, target);
        close(fd);
      }
    };
    redirect(options.stdout_path, STDOUT_FILENO);
    redirect(options.stderr_path, STDERR_FILENO);
    int devnull = open("/dev/null", O_RDONLY);
    if (devnull >= 0) dup2(devnull, STDIN_FILENO);
    for (const auto& kv : options.env) putenv(strdup(kv.c_str()));
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    execvp(args[0], args.data());
    fprintf(stderr, "exec %s: %s\n", args[0], strerror(errno));
    _exit(127);
  }
  return std::unique_ptr<ChildProcess>(new ChildProcess(pid));
}

ChildProcess::~ChildProcess() {
  if (!exit_code_) Kill9();
}

bool ChildProcess::Running() {
  if (exit_code_) return false;
  Wait(std::chrono::milliseconds(0));
  return !exit_code_;
}

void ChildProcess::Signal(int sig) {
  if (!exit_code_) kill(pid_, sig);
}

std::optional<int> ChildProcess::Wait(std::chrono::milliseconds timeout) {
  if (exit_code_) return exit_code_;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    int status = 0;
    pid_t r = waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
      exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      return exit_code_;
    }
    if (r < 0) {  // not our child any more
      exit_code_ = -1;
      return exit_code_;
    }
    if (std::chrono::steady_clock::now() >= deadline) return std::nullopt;
    struct timespec ts {
      0, 5'000'000
    };
    nanosleep(&ts, nullptr);
  }
}

int ChildProcess::Stop(std::chrono::milliseconds grace) {
  if (exit_code_) return *exit_code_;
  Signal(SIGTERM);
  if (auto code = Wait(grace)) return *code;
  Kill9();
  return exit_code_.value_or(-1);
}

void ChildProcess::Kill9() {
  if (exit_code_) return;
  kill(pid_, SIGKILL);
  Wait(std::chrono::seconds(30));
}

std::string RunInChild(const std::function<bool()>& work) {
  pid_t pid = fork();
  if (pid == 0) _exit(work() ? 0 : 1);
  int status = 0;
  waitpid(pid, &status, 0);
  if (WIFSIGNALED(status)) return WTERMSIG(status) == SIGKILL ? "killed" : "signal";
  return "exit " + std::to_string(WEXITSTATUS(status));
}

CommandResult RunCommand(const std::vector<std::string>& argv, std::chrono::milliseconds timeout,
                         const std::vector<std::string>& env) {
  CommandResult result;
  TempDir dir;
  ProcessOptions options;
  options.stdout_path = dir.Sub("out");
  options.stderr_path = dir.Sub("err");
  options.env = env;
  auto child = ChildProcess::Start(argv, options);
  if (!child.ok()) {
    result.err = std::string(child.status().message());
    return result;
  }
  auto code = (*child)->Wait(timeout);
  if (!code) {
    (*child)->Kill9();
    result.exit_code = -2;
  } else {
    result.exit_code = *code;
  }
  result.out = ReadFileOrEmpty(options.stdout_path);
  result.err = ReadFileOrEmpty(options.stderr_path);
  return result;
}

}  // namespace rtdw::testing
