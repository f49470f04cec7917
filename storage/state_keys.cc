#include "storage/state_keys.h"

#include <cstdio>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace rtdw {
namespace {

constexpr uint64_t kSignBit = uint64_t{1} << 63;

}  // namespace

namespace state_keys {

void PutBE32(std::string* out, uint32_t v) {
  for (int i = 3; i >= 0; --i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
void PutBE64(std::string* out, uint64_t v) {
  for (int i = 7; i >= 0; --i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
uint32_t GetBE32(const char* p) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v = (v << 8) | static_cast<uint8_t>(p[i]);
  return v;
}
uint64_t GetBE64(const char* p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | static_cast<uint8_t>(p[i]);
  return v;
}

// ---- offsets

std::string OffsetKey(std::string_view topic, int32_t partition) {
  std::string k = OffsetTopicPrefix(topic);
  PutBE32(&k, static_cast<uint32_t>(partition));
  return k;
}

std::string OffsetTopicPrefix(std::string_view topic) {
  std::string k(topic);
  k.push_back('\0');
  return k;
}

bool DecodeOffsetKey(std::string_view key, std::string* topic, int32_t* partition) {
  if (key.size() < 5 || key[key.size() - 5] != '\0') return false;
  topic->assign(key.data(), key.size() - 5);
  *partition = static_cast<int32_t>(GetBE32(key.data() + key.size() - 4));
  return true;
}

std::string EncodeOffsetValue(int64_t offset) {
  std::string v;
  PutBE64(&v, static_cast<uint64_t>(offset));
  return v;
}

std::optional<int64_t> DecodeOffsetValue(std::string_view value) {
  if (value.size() != 8) return std::nullopt;
  return static_cast<int64_t>(GetBE64(value.data()));
}

// ---- dedup

std::string DedupDayPrefix(DayNumber day) {
  std::string k;
  PutBE32(&k, day);
  return k;
}

std::string DedupDayPartitionPrefix(DayNumber day, int32_t partition) {
  std::string k = DedupDayPrefix(day);
  PutBE32(&k, static_cast<uint32_t>(partition));
  return k;
}

std::string DedupKey(DayNumber day, int32_t partition, std::string_view mid) {
  std::string k = DedupDayPartitionPrefix(day, partition);
  k.append(mid);
  return k;
}

bool DecodeDedupKey(std::string_view key, DayNumber* day, int32_t* partition, std::string* mid) {
  if (key.size() < 8) return false;
  *day = GetBE32(key.data());
  *partition = static_cast<int32_t>(GetBE32(key.data() + 4));
  mid->assign(key.data() + 8, key.size() - 8);
  return true;
}

std::string EncodeDedupValue(const DedupValue& v) {
  std::string out;
  PutBE64(&out, static_cast<uint64_t>(v.ts_ms));
  PutBE64(&out, static_cast<uint64_t>(v.offset));
  return out;
}

std::optional<DedupValue> DecodeDedupValue(std::string_view value) {
  if (value.size() != 16) return std::nullopt;
  return DedupValue{static_cast<int64_t>(GetBE64(value.data())),
                    static_cast<int64_t>(GetBE64(value.data() + 8))};
}

// ---- join

std::string JoinPartitionPrefix(int32_t partition) {
  std::string k;
  PutBE32(&k, static_cast<uint32_t>(partition));
  k.push_back('R');
  return k;
}

std::string JoinOrderPrefix(int32_t partition, std::string_view order_id) {
  std::string k = JoinPartitionPrefix(partition);
  k.append(order_id);
  k.push_back('\0');
  return k;
}

std::optional<std::string_view> JoinOrderPrefixOf(std::string_view key) {
  // BE32 'R', a non-empty order id, its 0x00.
  if (key.size() < 7 || key[4] != 'R') return std::nullopt;
  const size_t zero = key.find('\0', 5);
  if (zero == std::string_view::npos || zero == 5) return std::nullopt;
  return key.substr(0, zero + 1);
}

std::string JoinOrderSidePrefix(int32_t partition, std::string_view order_id, JoinSide side) {
  std::string k = JoinOrderPrefix(partition, order_id);
  k.push_back(static_cast<char>(side));
  return k;
}

std::string JoinRowKey(int32_t partition, std::string_view order_id, JoinSide side,
                       std::string_view row_id) {
  std::string k = JoinOrderSidePrefix(partition, order_id, side);
  k.append(row_id);
  return k;
}

std::string JoinTimePrefix(int32_t partition) {
  std::string k;
  PutBE32(&k, static_cast<uint32_t>(partition));
  k.push_back('T');
  return k;
}

std::string JoinTimeKey(int32_t partition, int64_t event_ms, std::string_view order_id,
                        JoinSide side, std::string_view row_id) {
  std::string k = JoinTimePrefix(partition);
  PutBE64(&k, static_cast<uint64_t>(event_ms) ^ kSignBit);
  k.append(order_id);
  k.push_back('\0');
  k.push_back(static_cast<char>(side));
  k.append(row_id);
  return k;
}

std::string JoinOffsetPrefix(int32_t partition, JoinSide side) {
  std::string k;
  PutBE32(&k, static_cast<uint32_t>(partition));
  k.push_back('O');
  k.push_back(static_cast<char>(side));
  return k;
}

std::string JoinOffsetKey(int32_t partition, JoinSide side, int64_t source_offset,
                          std::string_view order_id, std::string_view row_id) {
  std::string k = JoinOffsetPrefix(partition, side);
  PutBE64(&k, static_cast<uint64_t>(source_offset));
  k.append(order_id);
  k.push_back('\0');
  k.append(row_id);
  return k;
}

std::optional<int64_t> DecodeJoinOffsetKey(std::string_view key) {
  if (key.size() < 4 + 2 + 8 || key[4] != 'O') return std::nullopt;
  return static_cast<int64_t>(GetBE64(key.data() + 6));
}

bool JoinTimeKeyToRowKey(std::string_view key, std::string* row_key, int64_t* event_ms) {
  if (key.size() < 4 + 1 + 8 + 2 || key[4] != 'T') return false;
  *event_ms = static_cast<int64_t>(GetBE64(key.data() + 5) ^ kSignBit);
  row_key->assign(key.data(), 4);
  row_key->push_back('R');
  row_key->append(key.data() + 13, key.size() - 13);
  return true;
}

bool IsJoinRowKey(std::string_view key) { return key.size() >= 7 && key[4] == 'R'; }

bool DecodeJoinRowKey(std::string_view key, JoinRow* row) {
  if (!IsJoinRowKey(key)) return false;
  row->partition = static_cast<int32_t>(GetBE32(key.data()));
  std::string_view rest = key.substr(5);
  size_t zero = rest.find('\0');
  if (zero == std::string_view::npos || zero + 1 >= rest.size()) return false;
  row->order_id.assign(rest.data(), zero);
  char side = rest[zero + 1];
  if (side != static_cast<char>(JoinSide::kOrder) && side != static_cast<char>(JoinSide::kDetail)) {
    return false;
  }
  row->side = static_cast<JoinSide>(side);
  row->row_id.assign(rest.data() + zero + 2, rest.size() - zero - 2);
  return true;
}

std::string EncodeJoinValue(const JoinRow& row) {
  std::string v;
  const bool has_offset = row.source_offset >= 0;
  v.reserve(17 + row.row_json.size());
  v.push_back(static_cast<char>((row.matched ? 1 : 0) | (has_offset ? 2 : 0)));
  PutBE64(&v, static_cast<uint64_t>(row.event_ms));
  if (has_offset) PutBE64(&v, static_cast<uint64_t>(row.source_offset));
  v.append(row.row_json);
  return v;
}

bool DecodeJoinValue(std::string_view value, JoinRow* row) {
  if (value.size() < 9) return false;
  const uint8_t flags = static_cast<uint8_t>(value[0]);
  row->matched = (flags & 1) != 0;
  row->event_ms = static_cast<int64_t>(GetBE64(value.data() + 1));
  size_t at = 9;
  row->source_offset = -1;
  if ((flags & 2) != 0) {
    if (value.size() < 17) return false;
    row->source_offset = static_cast<int64_t>(GetBE64(value.data() + 9));
    at = 17;
  }
  row->row_json.assign(value.data() + at, value.size() - at);
  return true;
}

// ---- journal, deadletter

std::string SeqKey(uint64_t seq) {
  std::string k;
  PutBE64(&k, seq);
  return k;
}

std::string DeadLetterPositionPrefix(std::string_view topic, int32_t partition) {
  std::string k;
  k.push_back(kDeadLetterIndexTag);
  k.push_back('P');
  k.append(topic);
  k.push_back('\0');
  PutBE32(&k, static_cast<uint32_t>(partition));
  return k;
}

std::string DeadLetterPositionKey(std::string_view topic, int32_t partition, int64_t offset) {
  std::string k = DeadLetterPositionPrefix(topic, partition);
  PutBE64(&k, static_cast<uint64_t>(offset));
  return k;
}

std::string DeadLetterDocumentKey(std::string_view index, std::string_view id) {
  std::string k;
  k.push_back(kDeadLetterIndexTag);
  k.push_back('D');
  k.append(index);
  k.push_back('\0');
  k.append(id);
  return k;
}

std::optional<uint64_t> DecodeSeqKey(std::string_view key) {
  if (key.size() != 8) return std::nullopt;
  return GetBE64(key.data());
}

}  // namespace state_keys
}  // namespace rtdw
