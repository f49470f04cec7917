// Key and value encodings of the state store's column families (docs/STATE.md is the reference).
//
// Every key is order-preserving and prefix-scan friendly: fixed-width integers are big-endian,
// variable-length strings come last or are terminated by 0x00 (so they must not contain 0x00 —
// Kafka topic names, mids and ids never do; encoders refuse it).
//
//   offsets    topic 0x00 BE32(partition)                       -> BE64(next offset)
//   dedup      BE32(day yyyymmdd) BE32(partition) mid             -> BE64(ts ms) BE64(input offset)
//   join rows  BE32(partition) 'R' order_id 0x00 side row_id      -> u8 flags, BE64(event ms),
//                                                                    [BE64(source offset) when
//                                                                    flags&2], row
//   join index BE32(partition) 'T' BE64(event ms ^ 2^63) order_id 0x00 side row_id -> ""
//   join offsets BE32(partition) 'O' side BE64(source offset) order_id 0x00 row_id -> ""
//   journal    BE64(seq)                                          -> core/journal_entry.h encoding
//   deadletter BE64(seq)                                          -> JSON line (docs/FORMATS.md §7)
//   deadletter 0xFF 'P' topic 0x00 BE32(partition) BE64(offset)   -> BE64(seq): the letter of
//                                                                    that input record
//   deadletter 0xFF 'D' index 0x00 id                             -> BE64(seq): the es_rejected
//                                                                    letter of that document
//   meta       name (ASCII)                                       -> value (text, or BE64 for
//                                                                    next_seq)
//
// A prefix scan therefore answers: offsets of one topic (topic 0x00); de-dup of one day (BE32 day)
// or of one day and partition (8 bytes); join rows of one partition (BE32 'R') or of one order
// (BE32 'R' order_id 0x00); join rows of a partition by event time (BE32 'T').
#ifndef RTDW_STORAGE_STATE_KEYS_H_
#define RTDW_STORAGE_STATE_KEYS_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "core/state_types.h"  // DayNumber, DedupValue, JoinRow

namespace rtdw {

namespace state_keys {

// offsets
std::string OffsetKey(std::string_view topic, int32_t partition);
std::string OffsetTopicPrefix(std::string_view topic);
bool DecodeOffsetKey(std::string_view key, std::string* topic, int32_t* partition);
std::string EncodeOffsetValue(int64_t offset);
std::optional<int64_t> DecodeOffsetValue(std::string_view value);

// dedup
std::string DedupKey(DayNumber day, int32_t partition, std::string_view mid);
std::string DedupDayPrefix(DayNumber day);
std::string DedupDayPartitionPrefix(DayNumber day, int32_t partition);
bool DecodeDedupKey(std::string_view key, DayNumber* day, int32_t* partition, std::string* mid);
std::string EncodeDedupValue(const DedupValue& v);
std::optional<DedupValue> DecodeDedupValue(std::string_view value);

// join
std::string JoinRowKey(int32_t partition, std::string_view order_id, JoinSide side,
                       std::string_view row_id);
std::string JoinPartitionPrefix(int32_t partition);  // all rows of a partition
std::string JoinOrderPrefix(int32_t partition, std::string_view order_id);
// The order prefix of a join row key or of an order's lookup prefix (BE32 'R' order_id 0x00,
// what JoinOrderPrefix gives), or nullopt for every other key (index entries 'T' and 'O', a
// partition's prefix without an order). The join family's prefix extractor: every key between
// two keys with one order prefix has that prefix too (it is a byte prefix ended by 0x00).
std::optional<std::string_view> JoinOrderPrefixOf(std::string_view key);
std::string JoinOrderSidePrefix(int32_t partition, std::string_view order_id, JoinSide side);
std::string JoinTimeKey(int32_t partition, int64_t event_ms, std::string_view order_id,
                        JoinSide side, std::string_view row_id);
std::string JoinTimePrefix(int32_t partition);
// Live rows by source offset (JoinRow::source_offset >= 0 only), so that the smallest offset of a
// partition's side is one Seek away: BE32(partition) 'O' side BE64(offset) order_id 0x00 row_id.
std::string JoinOffsetPrefix(int32_t partition, JoinSide side);
std::string JoinOffsetKey(int32_t partition, JoinSide side, int64_t source_offset,
                          std::string_view order_id, std::string_view row_id);
std::optional<int64_t> DecodeJoinOffsetKey(std::string_view key);
// The row key that a time-index key points to; false when `key` is not a time-index key.
bool JoinTimeKeyToRowKey(std::string_view key, std::string* row_key, int64_t* event_ms);
bool IsJoinRowKey(std::string_view key);
bool DecodeJoinRowKey(std::string_view key, JoinRow* row);  // fills partition..row_id
std::string EncodeJoinValue(const JoinRow& row);
bool DecodeJoinValue(std::string_view value, JoinRow* row);  // fills event_ms, matched, row_json

// journal, deadletter
std::string SeqKey(uint64_t seq);
std::optional<uint64_t> DecodeSeqKey(std::string_view key);

// The dead-letter index (core/dead_letter.h DeadLetterIdentity): keys that sort after every seq
// key (seqs stay below 2^56), so a scan of the letters stops at the first key starting 0xFF.
inline constexpr char kDeadLetterIndexTag = '\xff';
std::string DeadLetterPositionPrefix(std::string_view topic, int32_t partition);
std::string DeadLetterPositionKey(std::string_view topic, int32_t partition, int64_t offset);
std::string DeadLetterDocumentKey(std::string_view index, std::string_view id);

// Big-endian helpers.
void PutBE32(std::string* out, uint32_t v);
void PutBE64(std::string* out, uint64_t v);
uint32_t GetBE32(const char* p);
uint64_t GetBE64(const char* p);

}  // namespace state_keys
}  // namespace rtdw

#endif  // RTDW_STORAGE_STATE_KEYS_H_
