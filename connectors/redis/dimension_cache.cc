#include "connectors/redis/dimension_cache.h"

namespace rtdw {

RedisDimensionCache::RedisDimensionCache(RedisClient* redis, DimensionCacheOptions options)
    : redis_(redis), options_(options) {}

void RedisDimensionCache::Put(const std::string& key, std::optional<std::string> value,
                              std::chrono::steady_clock::time_point now) {
  if (options_.max_entries == 0) return;
  auto it = entries_.find(key);
  if (it != entries_.end()) {
    lru_.erase(it->second.lru);
    entries_.erase(it);
  }
  while (entries_.size() >= options_.max_entries && !lru_.empty()) {
    entries_.erase(lru_.back());
    lru_.pop_back();
  }
  lru_.push_front(key);
  entries_.emplace(key, Entry{std::move(value), now + options_.ttl, lru_.begin()});
}

absl::StatusOr<std::vector<std::optional<std::string>>> RedisDimensionCache::Get(
    const std::vector<std::string>& keys) {
  auto now = std::chrono::steady_clock::now();
  std::vector<std::optional<std::string>> out(keys.size());
  std::vector<std::string> missing;
  std::vector<size_t> missing_pos;
  for (size_t i = 0; i < keys.size(); ++i) {
    auto it = entries_.find(keys[i]);
    if (it != entries_.end() && it->second.expires > now) {
      out[i] = it->second.value;
      lru_.splice(lru_.begin(), lru_, it->second.lru);
      ++hits_;
    } else {
      missing.push_back(keys[i]);
      missing_pos.push_back(i);
    }
  }
  if (missing.empty()) return out;
  misses_ += missing.size();
  auto fetched = redis_->MGet(missing);
  if (!fetched.ok()) return fetched.status();
  for (size_t j = 0; j < missing.size(); ++j) {
    out[missing_pos[j]] = (*fetched)[j];
    Put(missing[j], (*fetched)[j], now);
  }
  return out;
}

}  // namespace rtdw
