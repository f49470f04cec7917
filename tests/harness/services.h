// The real local services, started as child processes on free loopback ports for integration
// tests: redis-server (Debian's), rtdw-kafka-mock and rtdw-es-lite (this project's binaries).
// Each stops (SIGKILL if need be) when its object is destroyed.
#ifndef RTDW_TESTS_HARNESS_SERVICES_H_
#define RTDW_TESTS_HARNESS_SERVICES_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "tests/harness/process.h"

namespace rtdw::testing {

// A private redis-server: no persistence unless restarted "with its data" (StopSaving).
class RedisServer {
 public:
  RedisServer() = default;
  ~RedisServer();
  // Before Start(): the server requires this password (--requirepass); Command() and url() use
  // it. Empty (the default): no password.
  void SetPassword(std::string password) { password_ = std::move(password); }
  absl::Status Start();
  // SIGKILL: the data is lost (the server keeps nothing on disk until StopSaving()).
  void Kill9();
  // SHUTDOWN SAVE: the next Start() on the same object comes back with the data.
  absl::Status StopSaving();
  int port() const { return port_; }
  std::string url() const {
    return "redis://" + (password_.empty() ? "" : ":" + password_ + "@") +
           "127.0.0.1:" + std::to_string(port_) + "/0";
  }

  // Runs one command on a fresh connection. The reply is flattened to text: a string, integer
  // (decimal), status, nil ("(nil)") or array (elements joined with '\n').
  absl::StatusOr<std::string> Command(const std::vector<std::string>& args) const;

 private:
  TempDir dir_;
  int port_ = 0;
  std::string password_;
  std::unique_ptr<ChildProcess> proc_;
};

// A private rtdw-kafka-mock broker (librdkafka's mock cluster).
class KafkaMock {
 public:
  struct Options {
    int brokers = 1;
    int partitions = 4;
    std::vector<std::string> topics;  // extra NAME[:P]
  };
  KafkaMock() = default;
  ~KafkaMock();
  absl::Status Start(const Options& options);
  absl::Status Start() { return Start(Options()); }
  void Stop();
  const std::string& bootstrap() const { return bootstrap_; }
  // The mock's control URL (http://127.0.0.1:PORT) for broker faults.
  const std::string& control_url() const { return control_url_; }

 private:
  TempDir dir_;
  std::string bootstrap_;
  std::string control_url_;
  std::unique_ptr<ChildProcess> proc_;
};

// A private rtdw-es-lite with its own data dir; Restart() keeps the port and the data.
class EsLite {
 public:
  EsLite() = default;
  ~EsLite();
  absl::Status Start(const std::vector<std::string>& extra_args = {});
  void Stop();
  void Kill9();
  absl::Status Restart();
  int port() const { return port_; }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  const std::string& data_dir() const { return data_dir_; }
  const std::string& log_path() const { return log_path_; }

 private:
  TempDir dir_;
  int port_ = 0;
  std::string data_dir_;
  std::string log_path_;
  std::vector<std::string> extra_args_;
  std::unique_ptr<ChildProcess> proc_;
};

// True when a TCP connection to 127.0.0.1:port succeeds.
bool PortOpen(int port);

}  // namespace rtdw::testing

#endif  // RTDW_TESTS_HARNESS_SERVICES_H_
