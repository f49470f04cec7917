// A Redis client (hiredis, synchronous, pipelined) for what rtdw asks of Redis: dimension rows
// (MGET), table lists (SMEMBERS) and a batch of dimension writes applied atomically (MULTI/EXEC).
//
// Every call reconnects on a broken connection and fails with Unavailable when Redis cannot be
// reached; the caller decides how long to wait (core/backoff.h). hiredis 0.14 has no TLS.
#ifndef RTDW_CONNECTORS_REDIS_REDIS_CLIENT_H_
#define RTDW_CONNECTORS_REDIS_REDIS_CLIENT_H_

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/db_split.h"  // RedisWrite

typedef struct redisContext redisContext;

namespace rtdw {

struct RedisClientOptions {
  std::string host = "127.0.0.1";
  int port = 6379;
  int db = 0;
  std::optional<std::string> username;
  std::optional<std::string> password;
  std::chrono::milliseconds timeout{5000};
};

class RedisClient {
 public:
  explicit RedisClient(RedisClientOptions options);
  ~RedisClient();
  RedisClient(const RedisClient&) = delete;
  RedisClient& operator=(const RedisClient&) = delete;

  // Connects (or checks the connection with PING). An error answer to PING (NOAUTH when the
  // server needs a password that was not given) is an error, not a live connection.
  absl::Status Ping();
  // Values of `keys` in order; nullopt for a missing key. Pipelined in chunks.
  absl::StatusOr<std::vector<std::optional<std::string>>> MGet(
      const std::vector<std::string>& keys);
  // Members of a set; nullopt when the key does not exist.
  absl::StatusOr<std::optional<std::vector<std::string>>> SMembers(const std::string& key);
  // Applies every write in one MULTI/EXEC: all or nothing.
  absl::Status ApplyAtomically(const std::vector<RedisWrite>& writes);

 private:
  absl::Status EnsureConnected();
  void Disconnect();

  RedisClientOptions options_;
  redisContext* ctx_ = nullptr;
};

}  // namespace rtdw

#endif  // RTDW_CONNECTORS_REDIS_REDIS_CLIENT_H_
