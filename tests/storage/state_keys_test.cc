// Key encodings (order, prefixes, round trips) and the journal entry encoding.
#include "storage/state_keys.h"

#include <algorithm>
#include <string>
#include <vector>

#include "core/journal_entry.h"
#include "core/journal_sink.h"
#include "gtest/gtest.h"
#include "rapidjson/document.h"

namespace rtdw {
namespace {

using namespace state_keys;  // NOLINT

bool HasPrefix(const std::string& s, const std::string& p) { return s.rfind(p, 0) == 0; }

TEST(DayTest, ParseAndFormat) {
  auto d = ParseDay("2024-11-25");
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(*d, 20241125u);
  EXPECT_EQ(FormatDay(*d), "2024-11-25");
  EXPECT_TRUE(ParseDay("2024-02-29").ok());
  EXPECT_FALSE(ParseDay("2023-02-29").ok());
  EXPECT_FALSE(ParseDay("2024-13-01").ok());
  EXPECT_FALSE(ParseDay("2024-1-01").ok());
  EXPECT_FALSE(ParseDay("20241125").ok());
  EXPECT_FALSE(ParseDay("2024-11-2x").ok());
}

TEST(KeysTest, OffsetsOrderAndRoundTrip) {
  std::vector<std::string> keys = {OffsetKey("B", 1), OffsetKey("A", 300), OffsetKey("A", 2),
                                   OffsetKey("AB", 0)};
  std::sort(keys.begin(), keys.end());
  std::string topic;
  int32_t p;
  ASSERT_TRUE(DecodeOffsetKey(keys[0], &topic, &p));
  EXPECT_EQ(topic, "A");
  EXPECT_EQ(p, 2);
  ASSERT_TRUE(DecodeOffsetKey(keys[1], &topic, &p));
  EXPECT_EQ(p, 300);  // numeric order within a topic
  ASSERT_TRUE(DecodeOffsetKey(keys[2], &topic, &p));
  EXPECT_EQ(topic, "AB");  // "A" 0x00 sorts before "AB": a topic prefix never catches another
  EXPECT_FALSE(HasPrefix(OffsetKey("AB", 0), OffsetTopicPrefix("A")));
  EXPECT_TRUE(HasPrefix(OffsetKey("A", 7), OffsetTopicPrefix("A")));
  EXPECT_EQ(DecodeOffsetValue(EncodeOffsetValue(1234567890123)), 1234567890123);
  EXPECT_FALSE(DecodeOffsetValue("abc").has_value());
}

TEST(KeysTest, DedupOrderedByDayThenPartition) {
  std::string a = DedupKey(20241125, 3, "zzz");
  std::string b = DedupKey(20241126, 0, "aaa");
  std::string c = DedupKey(20241125, 10, "aaa");
  EXPECT_LT(a, b);
  EXPECT_LT(a, c);  // partition 3 < 10 numerically
  EXPECT_LT(c, b);
  EXPECT_TRUE(HasPrefix(a, DedupDayPrefix(20241125)));
  EXPECT_TRUE(HasPrefix(a, DedupDayPartitionPrefix(20241125, 3)));
  EXPECT_FALSE(HasPrefix(c, DedupDayPartitionPrefix(20241125, 1)));
  DayNumber day;
  int32_t p;
  std::string mid;
  ASSERT_TRUE(DecodeDedupKey(a, &day, &p, &mid));
  EXPECT_EQ(day, 20241125u);
  EXPECT_EQ(p, 3);
  EXPECT_EQ(mid, "zzz");
  DedupValue v{1732500000123, 42};
  EXPECT_EQ(DecodeDedupValue(EncodeDedupValue(v)), v);
  // Everything before a day sorts below that day's prefix (DeleteRange of past days).
  EXPECT_LT(DedupKey(20241124, 0x7fffffff, "\xff\xff"), DedupDayPrefix(20241125));
}

TEST(KeysTest, DedupBeatsFollowsFormatsRule) {
  EXPECT_TRUE(DedupBeats({10, 5}, {11, 1}));
  EXPECT_TRUE(DedupBeats({10, 1}, {10, 5}));
  EXPECT_FALSE(DedupBeats({10, 5}, {10, 5}));
  EXPECT_FALSE(DedupBeats({12, 0}, {11, 9}));
}

// The join family's prefix extractor: a row key's order prefix is the lookup prefix of its order
// (and of nothing else); index entries and a partition's prefix are outside its domain.
TEST(KeysTest, JoinOrderPrefixOfIsTheLookupPrefix) {
  for (JoinSide side : {JoinSide::kOrder, JoinSide::kDetail}) {
    EXPECT_EQ(JoinOrderPrefixOf(JoinRowKey(2, "100", side, "7")), JoinOrderPrefix(2, "100"));
    EXPECT_EQ(JoinOrderPrefixOf(JoinOrderSidePrefix(2, "100", side)), JoinOrderPrefix(2, "100"));
  }
  EXPECT_EQ(JoinOrderPrefixOf(JoinOrderPrefix(2, "100")), JoinOrderPrefix(2, "100"));  // idempotent
  EXPECT_EQ(JoinOrderPrefixOf(JoinRowKey(2, "1000", JoinSide::kOrder, "1000")),
            JoinOrderPrefix(2, "1000"));
  EXPECT_NE(JoinOrderPrefixOf(JoinRowKey(3, "100", JoinSide::kOrder, "100")),
            JoinOrderPrefix(2, "100"));
  EXPECT_EQ(JoinOrderPrefixOf(JoinPartitionPrefix(2)), std::nullopt);
  EXPECT_EQ(JoinOrderPrefixOf(JoinTimeKey(2, 5, "100", JoinSide::kOrder, "100")), std::nullopt);
  EXPECT_EQ(JoinOrderPrefixOf(JoinOffsetKey(2, JoinSide::kOrder, 5, "100", "100")), std::nullopt);
  EXPECT_EQ(JoinOrderPrefixOf(JoinTimePrefix(2)), std::nullopt);
}

TEST(KeysTest, JoinKeysAndTimeIndex) {
  std::string r1 = JoinRowKey(2, "100", JoinSide::kDetail, "7");
  std::string r2 = JoinRowKey(2, "1000", JoinSide::kOrder, "1000");
  EXPECT_TRUE(HasPrefix(r1, JoinOrderPrefix(2, "100")));
  EXPECT_FALSE(HasPrefix(r2, JoinOrderPrefix(2, "100")));  // the 0x00 terminator
  EXPECT_TRUE(HasPrefix(r1, JoinOrderSidePrefix(2, "100", JoinSide::kDetail)));
  EXPECT_TRUE(HasPrefix(r1, JoinPartitionPrefix(2)));
  EXPECT_FALSE(HasPrefix(r1, JoinPartitionPrefix(3)));
  JoinRow row;
  ASSERT_TRUE(DecodeJoinRowKey(r1, &row));
  EXPECT_EQ(row.partition, 2);
  EXPECT_EQ(row.order_id, "100");
  EXPECT_EQ(row.side, JoinSide::kDetail);
  EXPECT_EQ(row.row_id, "7");
  // Time index: ordered by event time, negative times included.
  std::string t1 = JoinTimeKey(2, -5, "9", JoinSide::kOrder, "9");
  std::string t2 = JoinTimeKey(2, 3, "1", JoinSide::kOrder, "1");
  std::string t3 = JoinTimeKey(2, 1000, "0", JoinSide::kOrder, "0");
  EXPECT_LT(t1, t2);
  EXPECT_LT(t2, t3);
  EXPECT_TRUE(HasPrefix(t1, JoinTimePrefix(2)));
  std::string back;
  int64_t ms;
  ASSERT_TRUE(JoinTimeKeyToRowKey(JoinTimeKey(2, 77, "100", JoinSide::kDetail, "7"), &back, &ms));
  EXPECT_EQ(back, r1);
  EXPECT_EQ(ms, 77);
  EXPECT_FALSE(IsJoinRowKey(t1));
  EXPECT_TRUE(IsJoinRowKey(r1));
  JoinRow v;
  v.event_ms = 123;
  v.matched = true;
  v.row_json = "{\"a\":1}";
  JoinRow w;
  ASSERT_TRUE(DecodeJoinValue(EncodeJoinValue(v), &w));
  EXPECT_EQ(w.event_ms, 123);
  EXPECT_TRUE(w.matched);
  EXPECT_EQ(w.row_json, v.row_json);
}

TEST(KeysTest, SeqKeysSortNumerically) {
  EXPECT_LT(SeqKey(2), SeqKey(10));
  EXPECT_LT(SeqKey(255), SeqKey(256));
  EXPECT_EQ(DecodeSeqKey(SeqKey(1ull << 40)), 1ull << 40);
}

TEST(JournalEntryTest, RoundTrip) {
  JournalEntry e;
  e.target = "gmall_dau_info_2024-11-25";
  e.body = "{\"index\":{\"_index\":\"i\",\"_id\":\"a\"}}\n{\"x\":1}\n";
  e.doc_count = 1;
  e.created_ms = 1732500000000;
  std::string v = EncodeJournalValue(e);
  auto d = DecodeJournalValue(9, v);
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->seq, 9u);
  EXPECT_EQ(d->target, e.target);
  EXPECT_EQ(d->body, e.body);
  EXPECT_EQ(d->doc_count, 1u);
  EXPECT_EQ(d->created_ms, e.created_ms);
  EXPECT_EQ(d->body_size, e.body.size());
  auto nb = DecodeJournalValue(9, v, false);
  ASSERT_TRUE(nb.ok());
  EXPECT_TRUE(nb->body.empty());
  EXPECT_EQ(nb->body_size, e.body.size());
  EXPECT_FALSE(DecodeJournalValue(1, "short").ok());
  std::string bad = v;
  bad[0] = 9;
  EXPECT_FALSE(DecodeJournalValue(1, bad).ok());
}

TEST(JournalEntryTest, BulkActions) {
  std::string body;
  AppendJournalIndexAction(&body, "idx", "m\"1", "{\"a\":1}");
  body += "{\"delete\":{\"_index\":\"idx\",\"_id\":\"z\"}}\n";
  auto a = ParseJournalActions(body);
  ASSERT_TRUE(a.ok()) << a.status();
  ASSERT_EQ(a->size(), 2u);
  EXPECT_EQ((*a)[0].op, "index");
  EXPECT_EQ((*a)[0].index, "idx");
  EXPECT_EQ((*a)[0].id, "m\"1");
  EXPECT_EQ((*a)[1].op, "delete");
  EXPECT_FALSE(ParseJournalActions("{\"index\":{}}\n").ok());  // no source line
  EXPECT_FALSE(ParseJournalActions("nope\n").ok());
}

// Action lines are read with core/json_limits.h's checks: an id that is not UTF-8 (an escaped
// lone low surrogate, which RapidJSON's own parse turns into three non-UTF-8 bytes) or a line
// nested past the depth limit is refused instead of being carried into the dead letters.
TEST(JournalEntryTest, BulkActionsAreParsedSafely) {
  auto a = ParseJournalActions("{\"delete\":{\"_index\":\"idx\",\"_id\":\"a\\udc00\"}}\n");
  EXPECT_FALSE(a.ok()) << (*a)[0].id.size();
  std::string deep = "{\"delete\":{\"_index\":\"idx\",\"_id\":\"z\",\"x\":";
  deep += std::string(5000, '[') + std::string(5000, ']') + "}}\n";
  EXPECT_FALSE(ParseJournalActions(deep).ok());
  // A surrogate pair is fine.
  a = ParseJournalActions("{\"delete\":{\"_index\":\"idx\",\"_id\":\"\\ud83d\\ude00\"}}\n");
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ((*a)[0].id, "\xF0\x9F\x98\x80");
}

TEST(JournalEntryTest, EsRejectedDeadLetterShape) {
  RejectedItem item;
  item.index = "gmall_dau_info_2024-11-25";
  item.id = "mid_1";
  item.status = 400;
  item.error_type = "mapper_parsing_exception";
  item.error_reason = "failed to parse field [ts]";
  item.document = "{\"mid\":\"mid_1\",\"rtdw_src\":\"DWD_PAGE_LOG_TOPIC/3/1234\"}";
  std::string line = EsRejectedDeadLetter("dau", item, 1764036000123);
  rapidjson::Document d;
  d.Parse(line.c_str());
  ASSERT_FALSE(d.HasParseError()) << line;
  EXPECT_STREQ(d["job"].GetString(), "dau");
  EXPECT_STREQ(d["reason"].GetString(), "es_rejected");
  EXPECT_STREQ(d["src"].GetString(), "DWD_PAGE_LOG_TOPIC/3/1234");
  EXPECT_STREQ(d["raw"].GetString(), item.document.c_str());
  EXPECT_EQ(d["ts_ingest"].GetInt64(), 1764036000123);
  EXPECT_FALSE(d.HasMember("truncated"));
  item.document = std::string(70000, 'x');
  line = EsRejectedDeadLetter("dau", item, 1);
  d.Parse(line.c_str());
  ASSERT_FALSE(d.HasParseError());
  EXPECT_TRUE(d["truncated"].GetBool());
  EXPECT_EQ(d["raw"].GetStringLength(), 65536u);
  item.document = "\xff\xfe";
  line = EsRejectedDeadLetter("dau", item, 1);
  d.Parse(line.c_str());
  ASSERT_FALSE(d.HasParseError());
  EXPECT_TRUE(d.HasMember("raw_base64"));
  // An rtdw_src that is not UTF-8 once unescaped is not copied into `src`.
  item.document = "{\"rtdw_src\":\"T/1/2\\udc00\"}";
  line = EsRejectedDeadLetter("dau", item, 1);
  d.Parse(line.c_str());
  ASSERT_FALSE(d.HasParseError());
  EXPECT_FALSE(d.HasMember("src") && d["src"].GetStringLength() > 0) << line;
}

}  // namespace
}  // namespace rtdw
