// RedisWrite: one dimension write of db-split (core/db_split.h makes them, RedisClient applies
// them). Its own header so that the Redis connector does not depend on the db-split transform.
#ifndef RTDW_CORE_DIM_WRITE_H_
#define RTDW_CORE_DIM_WRITE_H_

#include <cstdint>
#include <string>

namespace rtdw {

// One Redis write, in input order. `offset` is its source position (the Maxwell record's offset
// in its partition; a row's changes all come from one partition, Maxwell partitions by id):
// RedisClient::ApplyAtomically applies the write only when (epoch, offset) is newer than the
// position that made the key's current value (docs/STATE.md). -1: applied unconditionally.
struct RedisWrite {
  enum class Op { kSet, kDel };
  Op op = Op::kSet;
  std::string key;    // DIM:<TABLE>:<id>
  std::string value;  // JSON of `data` (kSet only)
  std::string src;    // input position, for logs and dead letters
  int64_t offset = -1;
  friend bool operator==(const RedisWrite&, const RedisWrite&) = default;
};

}  // namespace rtdw

#endif  // RTDW_CORE_DIM_WRITE_H_
