// Dimension rows from Redis behind a small bounded local cache with a TTL: the DimensionSource
// the ES jobs use. One batch asks for all its keys at once; the misses go to Redis in one
// pipelined MGET. A missing row is cached too (as missing), for the same TTL, so a batch full of
// users without a row does not hammer Redis.
#ifndef RTDW_CONNECTORS_REDIS_DIMENSION_CACHE_H_
#define RTDW_CONNECTORS_REDIS_DIMENSION_CACHE_H_

#include <chrono>
#include <list>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "connectors/redis/redis_client.h"
#include "core/es_transform.h"

namespace rtdw {

struct DimensionCacheOptions {
  size_t max_entries = 100000;
  std::chrono::milliseconds ttl{30000};
};

class RedisDimensionCache : public DimensionSource {
 public:
  RedisDimensionCache(RedisClient* redis, DimensionCacheOptions options);
  absl::StatusOr<std::vector<std::optional<std::string>>> Get(
      const std::vector<std::string>& keys) override;
  uint64_t hits() const { return hits_; }
  uint64_t misses() const { return misses_; }

 private:
  struct Entry {
    std::optional<std::string> value;
    std::chrono::steady_clock::time_point expires;
    std::list<std::string>::iterator lru;
  };
  void Put(const std::string& key, std::optional<std::string> value,
           std::chrono::steady_clock::time_point now);

  RedisClient* redis_;
  DimensionCacheOptions options_;
  std::unordered_map<std::string, Entry> entries_;
  std::list<std::string> lru_;  // front = most recently used
  uint64_t hits_ = 0;
  uint64_t misses_ = 0;
};

}  // namespace rtdw

#endif  // RTDW_CONNECTORS_REDIS_DIMENSION_CACHE_H_
