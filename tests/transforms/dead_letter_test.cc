#include "core/dead_letter.h"

#include <string>

#include "absl/strings/escaping.h"
#include "gtest/gtest.h"
#include "tests/transforms/test_json.h"

namespace rtdw {
namespace {

using ::rtdw::testing::JsonEq;
using ::rtdw::testing::Keys;
using ::rtdw::testing::ParseOrDie;

TEST(DeadLetterTest, ReasonCodes) {
  EXPECT_EQ(ReasonCode(Reason::kNotJson), "not_json");
  EXPECT_EQ(ReasonCode(Reason::kNotObject), "not_object");
  EXPECT_EQ(ReasonCode(Reason::kBadUtf8), "bad_utf8");
  EXPECT_EQ(ReasonCode(Reason::kTooBig), "too_big");
  EXPECT_EQ(ReasonCode(Reason::kTooDeep), "too_deep");
  EXPECT_EQ(ReasonCode(Reason::kTooManyItems), "too_many_items");
  EXPECT_EQ(ReasonCode(Reason::kNoMid), "no_mid");
  EXPECT_EQ(ReasonCode(Reason::kBadType), "bad_type");
  EXPECT_EQ(ReasonCode(Reason::kNoPayload), "no_payload");
  EXPECT_EQ(ReasonCode(Reason::kNoId), "no_id");
  EXPECT_EQ(ReasonCode(Reason::kLate), "late");
  EXPECT_EQ(ReasonCode(Reason::kFuture), "future");
  EXPECT_EQ(ReasonCode(Reason::kJoinExpired), "join_expired");
  EXPECT_EQ(ReasonCode(Reason::kEsRejected), "es_rejected");
}

TEST(DeadLetterTest, TheSpecExample) {
  DeadLetterFields f;
  f.job = "log-split";
  f.reason = "bad_type";
  f.detail = "ts is not an integer";
  f.src = "ODS_BASE_LOG/2/1734";
  f.ts_ingest_ms = 1764036000123;
  f.raw = R"({"common":{"mid":"m"},"ts":"x"})";
  std::string line = DeadLetterJson(f);
  EXPECT_EQ(line, R"({"job":"log-split","reason":"bad_type","detail":"ts is not an integer",)"
                  R"("src":"ODS_BASE_LOG/2/1734","ts_ingest":1764036000123,)"
                  R"("raw":"{\"common\":{\"mid\":\"m\"},\"ts\":\"x\"}"})");
  EXPECT_EQ(line.find('\n'), std::string::npos);
}

// A record refused because a string holds a raw control character is dead-lettered with that
// text as `raw`: the line must still be JSON, wherever the byte lies (RapidJSON 1.1.0's SSE2
// string scan, once enabled in rtdw's build, left U+001A-U+001F raw inside aligned 16-byte blocks).
TEST(DeadLetterTest, RawControlCharactersAreEscapedWhereverTheyLie) {
  for (int at = 0; at < 48; ++at) {
    for (char c = '\x1a'; c <= '\x1f'; ++c) {
      DeadLetterFields f;
      f.job = "log-split";
      f.reason = "not_json";
      f.ts_ingest_ms = 1;
      std::string raw = "{\"s\":\"" + std::string(64, 'x') + "\"}";
      raw[6 + at] = c;
      f.raw = raw;
      const std::string line = DeadLetterJson(f);
      for (unsigned char b : line) ASSERT_GE(b, 0x20) << "raw control byte at " << at;
      char esc[8];
      snprintf(esc, sizeof(esc), "\\u%04X", static_cast<unsigned>(c));
      EXPECT_NE(line.find(esc), std::string::npos) << line;
    }
  }
}

TEST(DeadLetterTest, EsRejectedFields) {
  DeadLetterFields f;
  f.job = "dau";
  f.reason = ReasonCode(Reason::kEsRejected);
  f.detail = "mapper_parsing_exception: failed to parse field [ts]";
  f.index = "gmall_dau_info_2025-11-25";
  f.id = "mid_1";
  f.status = 400;
  f.src = "DWD_PAGE_LOG_TOPIC/3/1234";
  f.ts_ingest_ms = 5;
  f.raw = R"({"mid":"mid_1"})";
  std::string line = DeadLetterJson(f);
  EXPECT_EQ(Keys(line), (std::vector<std::string>{"job", "reason", "detail", "index", "id",
                                                  "status", "src", "ts_ingest", "raw"}));
  EXPECT_TRUE(JsonEq(R"({"job":"dau","reason":"es_rejected",
      "detail":"mapper_parsing_exception: failed to parse field [ts]",
      "index":"gmall_dau_info_2025-11-25","id":"mid_1","status":400,
      "src":"DWD_PAGE_LOG_TOPIC/3/1234","ts_ingest":5,"raw":"{\"mid\":\"mid_1\"}"})",
                     line));
}

TEST(DeadLetterTest, InvalidUtf8GoesToBase64) {
  DeadLetterFields f;
  f.job = "log-split";
  f.reason = "bad_utf8";
  f.detail = "the record is not valid UTF-8";
  std::string raw = "{\"a\":\"\xff\xfe\"}";
  f.raw = raw;
  auto d = ParseOrDie(DeadLetterJson(f));
  EXPECT_FALSE(d.HasMember("raw"));
  ASSERT_TRUE(d.HasMember("raw_base64"));
  std::string decoded;
  ASSERT_TRUE(absl::Base64Unescape(d["raw_base64"].GetString(), &decoded));
  EXPECT_EQ(decoded, raw);
  EXPECT_FALSE(d.HasMember("truncated"));
  EXPECT_FALSE(d.HasMember("src"));  // empty: omitted
}

TEST(DeadLetterTest, TruncatesBeyond64KiB) {
  // Multi-byte characters straddle the cut: it must land on a character boundary.
  std::string raw;
  while (raw.size() < 200 * 1024) raw += "\xe4\xb8\xad";
  DeadLetterFields f;
  f.job = "log-split";
  f.reason = "too_big";
  f.detail = "big";
  f.raw = raw;
  std::string line = DeadLetterJson(f);
  auto d = ParseOrDie(line);
  ASSERT_TRUE(d.HasMember("raw"));
  std::string kept = d["raw"].GetString();
  EXPECT_LE(kept.size(), kDeadLetterMaxRawBytes);
  EXPECT_GE(kept.size(), kDeadLetterMaxRawBytes - 3);
  EXPECT_EQ(kept, raw.substr(0, kept.size()));
  EXPECT_TRUE(d["truncated"].GetBool());
  EXPECT_LT(line.size(), 1000000u);

  std::string bin(3 * 1024 * 1024, '\xff');
  f.raw = bin;
  line = DeadLetterJson(f);
  d = ParseOrDie(line);
  std::string decoded;
  ASSERT_TRUE(absl::Base64Unescape(d["raw_base64"].GetString(), &decoded));
  EXPECT_EQ(decoded.size(), kDeadLetterMaxRawBytes);
  EXPECT_TRUE(d["truncated"].GetBool());
  EXPECT_LT(line.size(), 1000000u);
}

TEST(DeadLetterTest, DetailIsSanitized) {
  DeadLetterFields f;
  f.job = "x";
  f.reason = "not_json";
  std::string detail = "bad \xff byte\nnext line";
  f.detail = detail;
  f.raw = "x";
  std::string line = DeadLetterJson(f);
  EXPECT_EQ(line.find('\n'), std::string::npos);
  auto d = ParseOrDie(line);
  EXPECT_STREQ(d["detail"].GetString(), "bad \xEF\xBF\xBD byte\nnext line");
}

}  // namespace
}  // namespace rtdw
