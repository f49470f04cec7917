#include "tests/harness/services.h"

#include <arpa/inet.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

namespace rtdw::testing {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

std::string FirstLine(const std::string& path) {
  std::string text = ReadFileOrEmpty(path);
  auto nl = text.find('\n');
  if (nl == std::string::npos) return "";
  return text.substr(0, nl);
}

void Flatten(const redisReply* r, std::vector<std::string>* out) {
  switch (r->type) {
    case REDIS_REPLY_STRING:
    case REDIS_REPLY_STATUS:
      out->emplace_back(r->str, r->len);
      break;
    case REDIS_REPLY_INTEGER:
      out->push_back(std::to_string(r->integer));
      break;
    case REDIS_REPLY_NIL:
      out->push_back("(nil)");
      break;
    case REDIS_REPLY_ARRAY:
      for (size_t i = 0; i < r->elements; ++i) Flatten(r->element[i], out);
      break;
    default:
      break;
  }
}

}  // namespace

bool PortOpen(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return false;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(port);
  bool ok = connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  close(fd);
  return ok;
}

// ---------------------------------------------------------------- RedisServer

RedisServer::~RedisServer() { Kill9(); }

absl::Status RedisServer::Start() {
  if (proc_ && proc_->Running()) return absl::OkStatus();
  for (int attempt = 0; attempt < 5; ++attempt) {
    if (port_ == 0 || attempt > 0) port_ = FreePort();
    ProcessOptions options;
    options.stdout_path = dir_.Sub("redis.log");
    options.stderr_path = dir_.Sub("redis.log");
    std::vector<std::string> argv = {"redis-server",
                                     "--port",
                                     std::to_string(port_),
                                     "--bind",
                                     "127.0.0.1",
                                     "--save",
                                     "",
                                     "--appendonly",
                                     "no",
                                     "--dir",
                                     dir_.path(),
                                     "--dbfilename",
                                     "dump.rdb",
                                     "--daemonize",
                                     "no"};
    if (!password_.empty()) {
      argv.push_back("--requirepass");
      argv.push_back(password_);
    }
    auto proc = ChildProcess::Start(argv, options);
    if (!proc.ok()) return proc.status();
    proc_ = std::move(*proc);
    bool up = WaitFor(
        [&] {
          if (!proc_->Running()) return true;
          auto pong = Command({"PING"});
          return pong.ok() && *pong == "PONG";
        },
        seconds(10));
    if (up && proc_->Running()) return absl::OkStatus();
    proc_->Kill9();
    if (attempt == 0 && std::filesystem::exists(dir_.Sub("dump.rdb"))) {
      // Restart after StopSaving() must come back on the same port: retry it once.
      continue;
    }
  }
  return absl::UnavailableError(
      absl::StrCat("redis-server did not start; log: ", ReadFileOrEmpty(dir_.Sub("redis.log"))));
}

void RedisServer::Kill9() {
  if (proc_) proc_->Kill9();
}

absl::Status RedisServer::StopSaving() {
  if (!proc_ || !proc_->Running()) return absl::FailedPreconditionError("redis not running");
  (void)Command({"SHUTDOWN", "SAVE"});
  if (!proc_->Wait(seconds(10))) {
    proc_->Kill9();
    return absl::DeadlineExceededError("redis did not shut down");
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> RedisServer::Command(const std::vector<std::string>& args) const {
  timeval tv{2, 0};
  redisContext* c = redisConnectWithTimeout("127.0.0.1", port_, tv);
  if (c == nullptr || c->err) {
    std::string err = c ? c->errstr : "alloc";
    if (c) redisFree(c);
    return absl::UnavailableError(absl::StrCat("redis connect: ", err));
  }
  if (!password_.empty()) {
    auto* auth =
        static_cast<redisReply*>(redisCommand(c, "AUTH %b", password_.data(), password_.size()));
    bool ok = auth != nullptr && auth->type != REDIS_REPLY_ERROR;
    if (auth != nullptr) freeReplyObject(auth);
    if (!ok) {
      redisFree(c);
      return absl::UnauthenticatedError("redis AUTH with the test password failed");
    }
  }
  std::vector<const char*> argv;
  std::vector<size_t> lens;
  for (const auto& a : args) {
    argv.push_back(a.data());
    lens.push_back(a.size());
  }
  auto* reply = static_cast<redisReply*>(
      redisCommandArgv(c, static_cast<int>(argv.size()), argv.data(), lens.data()));
  if (reply == nullptr) {
    std::string err = c->errstr;
    redisFree(c);
    return absl::UnavailableError(absl::StrCat("redis command: ", err));
  }
  absl::StatusOr<std::string> result;
  if (reply->type == REDIS_REPLY_ERROR) {
    result = absl::InternalError(std::string(reply->str, reply->len));
  } else {
    std::vector<std::string> parts;
    Flatten(reply, &parts);
    result = absl::StrJoin(parts, "\n");
  }
  freeReplyObject(reply);
  redisFree(c);
  return result;
}

// ---------------------------------------------------------------- KafkaMock

KafkaMock::~KafkaMock() { Stop(); }

absl::Status KafkaMock::Start(const Options& options) {
  std::string bootstrap_file = dir_.Sub("bootstrap");
  std::string control_file = dir_.Sub("control");
  std::vector<std::string> argv = {BinDir() + "/rtdw-kafka-mock",
                                   "--brokers",
                                   std::to_string(options.brokers),
                                   "--partitions",
                                   std::to_string(options.partitions),
                                   "--bootstrap-file",
                                   bootstrap_file,
                                   "--control-listen",
                                   "127.0.0.1:0",
                                   "--control-file",
                                   control_file};
  for (const auto& t : options.topics) {
    argv.push_back("--topic");
    argv.push_back(t);
  }
  ProcessOptions popts;
  popts.stdout_path = dir_.Sub("kafka-mock.out");
  popts.stderr_path = dir_.Sub("kafka-mock.log");
  auto proc = ChildProcess::Start(argv, popts);
  if (!proc.ok()) return proc.status();
  proc_ = std::move(*proc);
  bool up = WaitFor(
      [&] {
        if (!proc_->Running()) return true;
        return !FirstLine(bootstrap_file).empty() && !FirstLine(control_file).empty();
      },
      seconds(20));
  if (!up || !proc_->Running()) {
    return absl::UnavailableError(absl::StrCat("rtdw-kafka-mock did not start; log: ",
                                               ReadFileOrEmpty(dir_.Sub("kafka-mock.log"))));
  }
  bootstrap_ = FirstLine(bootstrap_file);
  control_url_ = FirstLine(control_file);
  return absl::OkStatus();
}

void KafkaMock::Stop() {
  if (proc_) proc_->Stop(seconds(5));
}

// ---------------------------------------------------------------- EsLite

EsLite::~EsLite() { Kill9(); }

absl::Status EsLite::Start(const std::vector<std::string>& extra_args) {
  if (port_ == 0) {
    port_ = FreePort();
    data_dir_ = dir_.Sub("data");
    log_path_ = dir_.Sub("es-lite.log");
    extra_args_ = extra_args;
  }
  std::vector<std::string> argv = {BinDir() + "/rtdw-es-lite", "--listen",
                                   absl::StrCat("127.0.0.1:", port_), "--data-dir", data_dir_};
  argv.insert(argv.end(), extra_args_.begin(), extra_args_.end());
  ProcessOptions popts;
  popts.stdout_path = log_path_;
  popts.stderr_path = log_path_;
  auto proc = ChildProcess::Start(argv, popts);
  if (!proc.ok()) return proc.status();
  proc_ = std::move(*proc);
  bool up = WaitFor([&] { return !proc_->Running() || PortOpen(port_); }, seconds(20));
  if (!up || !proc_->Running()) {
    return absl::UnavailableError(
        absl::StrCat("rtdw-es-lite did not start; log: ", ReadFileOrEmpty(log_path_)));
  }
  return absl::OkStatus();
}

void EsLite::Stop() {
  if (proc_) proc_->Stop(seconds(10));
}

void EsLite::Kill9() {
  if (proc_) proc_->Kill9();
}

absl::Status EsLite::Restart() {
  Kill9();
  return Start();
}

}  // namespace rtdw::testing
