// A Redis client (hiredis, synchronous, pipelined) for what rtdw asks of Redis: dimension rows
// (MGET), table lists (SMEMBERS) and dimension writes applied atomically and order-independently
// (one Lua script run, EVALSHA, per call) — waited for at once (ApplyAtomically) or sent while
// the caller works on and read back later (SendApply / FinishApplies).
//
// Every call reconnects on a broken connection and fails with Unavailable when Redis cannot be
// reached; the caller decides how long to wait (core/backoff.h). hiredis 0.14 has no TLS.
#ifndef RTDW_CONNECTORS_REDIS_REDIS_CLIENT_H_
#define RTDW_CONNECTORS_REDIS_REDIS_CLIENT_H_

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/dim_write.h"

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
  // SMembers of each of `keys`, in order, in one round trip (pipelined).
  absl::StatusOr<std::vector<std::optional<std::vector<std::string>>>> SMembersOf(
      const std::vector<std::string>& keys);
  // Applies a batch of dimension writes in one Lua script run (EVALSHA; the script is loaded with
  // SCRIPT LOAD and re-loaded after NOSCRIPT): all or nothing, and order-independent. A write
  // with a position (RedisWrite::offset >= 0) is applied only when (epoch, offset) is newer than
  // the position stored at `DIMPOS:<TABLE>:<id>` (the key's name with DIM: replaced), comparing
  // the epoch first; it then stores its own position there. A delete removes the row and leaves
  // its position as a tombstone (kept, so an older write can never bring the row back). The
  // epoch is the integer at kDimEpochKey (absent = 0), read inside the script. A write with
  // offset -1 is applied unconditionally and leaves the position alone. `*stale`, when given,
  // receives the number of writes skipped as older.
  //
  // `fences` (group mode; docs/OPERATIONS.md "Fencing"): each names a source partition's fence key
  // and the token this writer claimed for it (ClaimFence). When any fence key holds a different
  // token (a later owner claimed the partition), nothing is applied and the call fails with
  // FailedPrecondition, IsFencedRejection() true. The tokens are checked even when `writes` is
  // empty.
  struct Fence {
    std::string key;  // FenceKey(topic, partition)
    int64_t token = 0;
  };
  absl::Status ApplyAtomically(const std::vector<RedisWrite>& writes, uint64_t* stale = nullptr,
                               const std::vector<Fence>& fences = {});

  // ApplyAtomically in parts, pipelined: SendApply() sends one script run for `writes` (checked
  // against `fences`; both are copied into the command) and returns once it is written to the
  // socket, without waiting for Redis to run it; FinishApplies() then reads the answers of every
  // run sent since the last FinishApplies(), in order. Each run is atomic and position-checked
  // exactly as one ApplyAtomically call; the runs are independent of each other (one may be applied
  // while a later one is refused — harmless, since every write is position-checked: running them
  // again applies nothing twice). So the caller may treat its writes as applied only when
  // FinishApplies() returned OK. FinishApplies() returns the first failure among the runs — a
  // fenced refusal (IsFencedRejection) before any other error — after reading every answer
  // (runs the server answered with NOSCRIPT are sent again after re-loading the script); `*stale`
  // receives the sum over the runs. A SendApply() error (the connection broke) is also returned
  // by the FinishApplies() after it. Any other call made while runs are unanswered drops the
  // connection first (their answers are lost; FinishApplies() then fails with Unavailable).
  absl::Status SendApply(std::span<const RedisWrite> writes, const std::vector<Fence>& fences);
  absl::Status FinishApplies(uint64_t* stale = nullptr);
  // A partition's new owner claims it: INCR of its fence key; returns the new token. Every write
  // of an earlier owner carrying an older token is refused from then on.
  absl::StatusOr<int64_t> ClaimFence(const std::string& key);
  // `DIMFENCE:<topic>:<partition>`.
  static std::string FenceKey(std::string_view topic, int32_t partition);
  // The error of ApplyAtomically / FinishApplies for a refused fence.
  static bool IsFencedRejection(const absl::Status& st);

  // The Redis key of the dimension position epoch. Resetting db-split's offsets or re-creating
  // its source topic (offsets start again at 0) bumps it first, with db-split stopped
  // (`rtdw offsets set` does; BumpDimEpoch); without it every new write would look older and
  // dimensions would freeze.
  static constexpr char kDimEpochKey[] = "DIMPOS:EPOCH";
  // INCR of kDimEpochKey; returns the new epoch.
  absl::StatusOr<int64_t> BumpDimEpoch();
  // `DIMPOS:<TABLE>:<id>` for `DIM:<TABLE>:<id>` (any other key: "DIMPOS:" + key).
  static std::string PositionKey(std::string_view dim_key);

 private:
  // Connects when needed; drops the connection first when applies are unanswered (SendApply).
  absl::Status EnsureConnected();
  void Disconnect();
  // Loads the apply script when its sha is not known yet (nothing may be unanswered).
  absl::Status EnsureScript();
  // The EVALSHA command of one apply run, in RESP, into `*out`.
  void FormatApply(std::span<const RedisWrite> writes, const std::vector<Fence>& fences,
                   std::string* out) const;

  RedisClientOptions options_;
  redisContext* ctx_ = nullptr;
  std::string script_sha_;  // of the apply script, once loaded
  // Apply runs sent and not answered yet: their commands (sent again after a NOSCRIPT answer)
  // and how many are in use; the strings are kept for reuse.
  std::vector<std::string> sent_;
  size_t unanswered_ = 0;
  absl::Status send_error_;  // the first SendApply() failure since the last FinishApplies()
  std::string fence_keys_;   // of the last SendApply(), for a fenced refusal's message
};

}  // namespace rtdw

#endif  // RTDW_CONNECTORS_REDIS_REDIS_CLIENT_H_
