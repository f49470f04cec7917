// Pure parts of the ES connector: NDJSON encoding and parsing, bulk answers, item verdicts,
// templates, and the shared backoff policy (core/backoff.h).
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "connectors/es/bulk.h"
#include "connectors/es/es_client.h"
#include "connectors/es/templates.h"
#include "core/backoff.h"
#include "core/journal_entry.h"
#include "rapidjson/document.h"

namespace rtdw {
namespace {

using std::chrono::milliseconds;

TEST(BulkEncode, ExternalVersionsSurviveAStoredBody) {
  BulkAction a{BulkOp::kIndex, "idx", "m1", "{\"x\":1}", 4611686018427387903, "external_gte"};
  std::string body;
  AppendBulkAction(a, &body);
  EXPECT_EQ(body,
            "{\"index\":{\"_index\":\"idx\",\"_id\":\"m1\",\"version\":4611686018427387903,"
            "\"version_type\":\"external_gte\"}}\n{\"x\":1}\n");
  EXPECT_EQ(EncodedBulkActionSize(a), body.size());
  auto parsed = ParseBulkBody(body);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ((*parsed)[0].version, a.version);
  EXPECT_EQ((*parsed)[0].version_type, "external_gte");
  EXPECT_FALSE(ParseBulkBody("{\"index\":{\"_index\":\"a\",\"version\":-1}}\n{}\n").ok());
  EXPECT_FALSE(ParseBulkBody("{\"index\":{\"_index\":\"a\",\"version\":\"1\"}}\n{}\n").ok());
}

TEST(BulkEncode, ActionAndSourceLinesWithTrailingNewline) {
  std::vector<BulkAction> actions = {
      {BulkOp::kIndex, "idx", "1", R"({"a":1})"},
      {BulkOp::kCreate, "idx", "2", R"({"b":"x"})"},
      {BulkOp::kDelete, "idx", "3", ""},
      {BulkOp::kUpdate, "idx", "4", R"({"doc":{"c":true}})"},
  };
  std::string body = EncodeBulkBody(actions);
  EXPECT_EQ(body,
            "{\"index\":{\"_index\":\"idx\",\"_id\":\"1\"}}\n{\"a\":1}\n"
            "{\"create\":{\"_index\":\"idx\",\"_id\":\"2\"}}\n{\"b\":\"x\"}\n"
            "{\"delete\":{\"_index\":\"idx\",\"_id\":\"3\"}}\n"
            "{\"update\":{\"_index\":\"idx\",\"_id\":\"4\"}}\n{\"doc\":{\"c\":true}}\n");
  size_t total = 0;
  for (const auto& a : actions) total += EncodedBulkActionSize(a);
  EXPECT_EQ(total, body.size());
}

TEST(BulkEncode, EscapesNamesAndFlattensPrettySources) {
  BulkAction a{BulkOp::kIndex, "i", "q\"uo\\te\n", "{\n  \"a\": \"x\"\n}"};
  std::string body = EncodeBulkBody({&a, 1});
  EXPECT_EQ(body,
            "{\"index\":{\"_index\":\"i\",\"_id\":\"q\\\"uo\\\\te\\n\"}}\n{   \"a\": \"x\" }\n");
  auto parsed = ParseBulkBody(body);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  ASSERT_EQ(parsed->size(), 1u);
  EXPECT_EQ((*parsed)[0].id, "q\"uo\\te\n");
}

TEST(BulkParse, RoundTripKeepsSourcesVerbatim) {
  std::vector<BulkAction> actions;
  for (int i = 0; i < 50; ++i) {
    actions.push_back(
        {i % 3 == 0   ? BulkOp::kCreate
         : i % 3 == 1 ? BulkOp::kIndex
                      : BulkOp::kDelete,
         "gmall_dau_info_2025-11-25", "mid_" + std::to_string(i),
         i % 3 == 2 ? "" : "{\"mid\":\"mid_" + std::to_string(i) + "\",\"x\":8197.00}"});
  }
  auto parsed = ParseBulkBody(EncodeBulkBody(actions));
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  ASSERT_EQ(parsed->size(), actions.size());
  for (size_t i = 0; i < actions.size(); ++i) {
    EXPECT_EQ((*parsed)[i].op, actions[i].op);
    EXPECT_EQ((*parsed)[i].index, actions[i].index);
    EXPECT_EQ((*parsed)[i].id, actions[i].id);
    EXPECT_EQ((*parsed)[i].source, actions[i].source);  // 8197.00 stays 8197.00
  }
}

TEST(BulkParse, DefaultIndexAndErrors) {
  auto ok = ParseBulkBody("{\"index\":{\"_id\":\"1\"}}\n{}\n", "dflt");
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ((*ok)[0].index, "dflt");
  EXPECT_FALSE(ParseBulkBody("{\"index\":{\"_id\":\"1\"}}\n{}\n").ok());  // no index
  EXPECT_FALSE(ParseBulkBody("{\"index\":{\"_index\":\"a\"}}\n").ok());   // no source line
  EXPECT_FALSE(ParseBulkBody("{\"upsert\":{\"_index\":\"a\"}}\n{}\n").ok());
  EXPECT_FALSE(ParseBulkBody("not json\n").ok());
  auto deep = ParseBulkBody(std::string(200000, '[') + "\n");
  EXPECT_FALSE(deep.ok());
  EXPECT_TRUE(ParseBulkBody("").ok());
}

// The independent truth for PreparedBulkBody::FromBody is the path it replaces: parse the body
// (ParseBulkBody), encode the actions again (EncodeBulkBody). Whatever FromBody does, it must
// fail exactly when the parse fails, and otherwise hold exactly the re-encoded bytes, cut into
// the same actions, with the same op, version and fields.
void ExpectSameAsParseAndEncode(const std::string& body) {
  SCOPED_TRACE(body.size() < 400 ? body : body.substr(0, 400) + "...");
  auto parsed = ParseBulkBody(body);
  auto prepared = PreparedBulkBody::FromBody(body);
  ASSERT_EQ(prepared.ok(), parsed.ok()) << prepared.status() << " / " << parsed.status();
  if (!parsed.ok()) return;
  const std::string encoded = EncodeBulkBody(*parsed);
  ASSERT_EQ(prepared->bytes(), encoded);
  if (prepared->raw()) {
    EXPECT_EQ(prepared->bytes().data(), body.data());  // not copied
  }
  ASSERT_EQ(prepared->size(), parsed->size());
  size_t at = 0;
  for (size_t i = 0; i < parsed->size(); ++i) {
    const BulkAction& want = (*parsed)[i];
    std::string one;
    AppendBulkAction(want, &one);
    ASSERT_EQ(prepared->ActionBytes(i), one) << "action " << i;
    ASSERT_EQ(prepared->ActionBytes(i).data(), prepared->bytes().data() + at);  // contiguous
    at += one.size();
    EXPECT_EQ(prepared->op(i), want.op);
    EXPECT_EQ(prepared->versioned(i), want.version >= 0);
    auto back = prepared->Action(i);
    ASSERT_TRUE(back.ok()) << back.status();
    EXPECT_EQ(back->op, want.op);
    EXPECT_EQ(back->index, want.index);
    EXPECT_EQ(back->id, want.id);
    EXPECT_EQ(back->version, want.version);
    EXPECT_EQ(back->version_type, want.version_type);
    if (want.op != BulkOp::kDelete) {
      // The source sent: ParseBulkBody's, with line breaks flattened as AppendSourceLine does.
      std::string sent = want.source;
      for (char& c : sent) c = (c == '\r' || c == '\n') ? ' ' : c;
      EXPECT_EQ(back->source, sent);
    }
  }
  EXPECT_EQ(at, encoded.size());
}

TEST(PreparedBody, RtdwBodiesAreTakenAsTheyAre) {
  // What the transforms write (AppendJournalIndexAction) and what EncodeBulkBody writes.
  std::string journal;
  AppendJournalIndexAction(&journal, "gmall_order_wide_2025-11-25", "1001",
                           R"({"detail_id":"1001","n":"8197.00","s":"\u5317\"x"})", 1764036000123);
  AppendJournalIndexAction(&journal, "gmall_dau_info_2025-11-25", "mid_7", R"({"mid":"北京"})");
  auto p = PreparedBulkBody::FromBody(journal);
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_TRUE(p->raw());
  ASSERT_EQ(p->size(), 2u);
  EXPECT_TRUE(p->versioned(0));
  EXPECT_FALSE(p->versioned(1));
  ExpectSameAsParseAndEncode(journal);

  std::vector<BulkAction> actions = {
      {BulkOp::kIndex, "idx", "1", R"({"a":1})", 0, "external_gte"},
      {BulkOp::kCreate, "idx", "2", R"({"b":"x"})"},
      {BulkOp::kDelete, "idx", "3", ""},
      {BulkOp::kDelete, "idx", "3b", "", 17, "external"},
      {BulkOp::kUpdate, "idx", "4", R"({"doc":{"c":true}})"},
      {BulkOp::kIndex, "idx", "", R"({"no":"id"})"},
      {BulkOp::kIndex, "idx", "5", R"([1])", 999999999999999999, ""},
  };
  const std::string body = EncodeBulkBody(actions);
  p = PreparedBulkBody::FromBody(body);
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_TRUE(p->raw());
  EXPECT_EQ(p->op(2), BulkOp::kDelete);
  EXPECT_EQ(p->ActionBytes(2), "{\"delete\":{\"_index\":\"idx\",\"_id\":\"3\"}}\n");
  ExpectSameAsParseAndEncode(body);
  // Bulk(actions) goes the same way: FromActions is the encoded body.
  EXPECT_EQ(PreparedBulkBody::FromActions(actions).bytes(), body);
  EXPECT_TRUE(PreparedBulkBody::FromBody("")->empty());
}

TEST(PreparedBody, AnyOtherFormIsParsedAndEncodedAgain) {
  const std::vector<std::string> others = {
      "{\"index\": {\"_index\":\"a\",\"_id\":\"1\"}}\n{}\n",                 // a blank
      "{\"index\":{\"_index\":\"a\",\"_id\":\"1\"}}\r\n{}\r\n",              // CR LF
      "{\"index\":{\"_index\":\"a\",\"_id\":\"1\"}}\n\n{}\n\n",              // blank lines
      "{\"index\":{\"_index\":\"a\",\"_id\":\"1\"}}\n{}",                    // no last \\n
      "{\"index\":{\"_index\":\"a\",\"_id\":\"1\"}}\n {}\n",                 // leading blank
      "{\"index\":{\"_index\":\"a\",\"_id\":\"1\"}}\n{\"x\":\r1}\n",         // CR inside
      "{\"index\":{\"_index\":\"a\",\"_id\":\"q\\\"\"}}\n{}\n",              // escaped id
      "{\"index\":{\"_index\":\"a\",\"_id\":\"\u00e9\"}}\n{}\n",             // non-ASCII id
      "{\"index\":{\"_index\":\"a\",\"_id\":\"\"}}\n{}\n",                   // empty id
      "{\"index\":{\"_id\":\"1\",\"_index\":\"a\"}}\n{}\n",                  // other order
      "{\"index\":{\"_index\":\"a\",\"_id\":1}}\n{}\n",                      // numeric id
      "{\"index\":{\"_index\":\"a\",\"version_type\":\"external\"}}\n{}\n",  // type alone
      "{\"index\":{\"_index\":\"a\",\"version\":1,\"version_type\":\"\"}}\n{}\n",
      "{\"index\":{\"_index\":\"a\",\"version\":01}}\n{}\n",  // not JSON
      "{\"index\":{\"_index\":\"a\",\"version\":-1}}\n{}\n",  // refused
      "{\"index\":{\"_index\":\"a\",\"version\":99999999999999999999}}\n{}\n",
      "{\"index\":{}}\n{}\n",                   // no _index
      "{\"index\":{\"_index\":\"a\"}}\n",       // no source
      "{\"upsert\":{\"_index\":\"a\"}}\n{}\n",  // unknown op
      "{\"index\":{\"_index\":\"a\"}}x\n{}\n",  // trailing junk
      "{\"index\":{\"_index\":\"a\"}} \n{}\n",  // trailing blank
  };
  for (const std::string& body : others) {
    auto p = PreparedBulkBody::FromBody(body);
    if (p.ok()) EXPECT_FALSE(p->raw()) << body;
    ExpectSameAsParseAndEncode(body);
  }
}

// Random bodies in rtdw's form, then random damage: every outcome agrees with parse + encode.
TEST(PreparedBody, RandomBodiesAgreeWithParseAndEncode) {
  std::mt19937_64 rng(20261206);
  const std::string alphabet = "ab_-.19\"\\ \n\r\t{}[]:,\xc3\xa9";
  auto pick = [&](size_t n) { return static_cast<size_t>(rng() % n); };
  int raw_taken = 0;
  for (int round = 0; round < 3000; ++round) {
    std::vector<BulkAction> actions;
    const size_t n = 1 + pick(6);
    for (size_t i = 0; i < n; ++i) {
      BulkAction a;
      a.op = static_cast<BulkOp>(pick(4));
      a.index = "idx" + std::to_string(pick(3));
      a.id = pick(8) == 0 ? "" : "id" + std::to_string(pick(1000));
      a.source = "{\"k\":" + std::to_string(pick(100)) + ",\"s\":\"v" + std::to_string(i) + "\"}";
      if (pick(2) == 0) {
        a.version = static_cast<int64_t>(rng() >> pick(64));
        if (a.version < 0) a.version = 0;
        a.version_type = pick(3) == 0 ? "" : "external_gte";
      }
      actions.push_back(std::move(a));
    }
    std::string body = EncodeBulkBody(actions);
    const size_t damage = pick(4);
    for (size_t d = 0; d < damage && !body.empty(); ++d) {
      const size_t at = pick(body.size());
      switch (pick(3)) {
        case 0:
          body[at] = alphabet[pick(alphabet.size())];
          break;
        case 1:
          body.erase(at, 1);
          break;
        default:
          body.insert(at, 1, alphabet[pick(alphabet.size())]);
      }
    }
    auto p = PreparedBulkBody::FromBody(body);
    if (p.ok() && p->raw()) ++raw_taken;
    ExpectSameAsParseAndEncode(body);
    if (::testing::Test::HasFailure()) break;
  }
  EXPECT_GT(raw_taken, 500);  // the undamaged bodies, at least
}

TEST(BulkResponse, ReadsItemsAndErrors) {
  std::string body = R"({"took":3,"errors":true,"items":[
    {"index":{"_index":"a","_id":"1","_version":1,"result":"created","status":201}},
    {"create":{"_index":"a","_id":"2","status":409,
               "error":{"type":"version_conflict_engine_exception","reason":"exists"}}},
    {"index":{"_index":"a","_id":"3","status":429,
              "error":{"type":"es_rejected_execution_exception","reason":"queue full"}}},
    {"index":{"_index":"a","_id":"4","status":400,
              "error":{"type":"mapper_parsing_exception","reason":"failed to parse",
                       "caused_by":{"type":"illegal_argument_exception",
                                    "reason":"For input string"}}}},
    {"delete":{"_index":"a","_id":"5","status":404,"result":"not_found"}},
    {"index":{"_index":"a","_id":"6","status":503,
              "error":{"type":"unavailable_shards_exception","reason":"x"}}}]})";
  auto answers = ParseBulkResponse(body, 6);
  ASSERT_TRUE(answers.ok()) << answers.status();
  const auto& a = *answers;
  EXPECT_EQ(ClassifyBulkItem(BulkOp::kIndex, a[0]), ItemVerdict::kDone);
  EXPECT_EQ(ClassifyBulkItem(BulkOp::kCreate, a[1]), ItemVerdict::kDone);
  EXPECT_EQ(ClassifyBulkItem(BulkOp::kIndex, a[1]), ItemVerdict::kPermanent);
  EXPECT_EQ(ClassifyBulkItem(BulkOp::kIndex, a[2]), ItemVerdict::kRetry);
  EXPECT_EQ(ClassifyBulkItem(BulkOp::kIndex, a[3]), ItemVerdict::kPermanent);
  EXPECT_EQ(a[3].error_type, "mapper_parsing_exception");
  EXPECT_NE(a[3].reason.find("For input string"), std::string::npos);
  EXPECT_EQ(ClassifyBulkItem(BulkOp::kDelete, a[4]), ItemVerdict::kDone);
  EXPECT_EQ(ClassifyBulkItem(BulkOp::kIndex, a[5]), ItemVerdict::kRetry);
  // A version conflict of a write with an external version: a better document is there.
  EXPECT_EQ(ClassifyBulkItem(BulkOp::kIndex, a[1], /*versioned=*/true), ItemVerdict::kSuperseded);
  EXPECT_EQ(ClassifyBulkItem(BulkOp::kIndex, a[3], /*versioned=*/true), ItemVerdict::kPermanent);
  EXPECT_FALSE(ParseBulkResponse(body, 5).ok());  // wrong count: retry everything
  EXPECT_FALSE(ParseBulkResponse("<html>", 1).ok());
}

// The item rows of docs/OPERATIONS.md's "ES item error policy" table, with answers shaped as ES
// 7.10+/8.x sends them: a change of verdict must change that table too.
TEST(BulkResponse, ItemErrorPolicyOfOperationsMd) {
  std::string body = R"({"took":1,"errors":true,"items":[
    {"index":{"_index":"d","_id":"1","status":429,"error":{"type":"cluster_block_exception",
      "reason":"index [d] blocked by: [TOO_MANY_REQUESTS/12/disk usage exceeded flood-stage watermark, index has read-only-allow-delete block];"}}},
    {"index":{"_index":"d","_id":"2","status":403,"error":{"type":"cluster_block_exception",
      "reason":"index [d] blocked by: [FORBIDDEN/8/index write (api)];"}}},
    {"index":{"_index":"d","_id":"3","status":400,"error":{"type":"index_closed_exception",
      "reason":"closed"}}},
    {"index":{"_index":"d","_id":"4","status":404,"error":{"type":"index_not_found_exception",
      "reason":"no such index [d]"}}},
    {"delete":{"_index":"d","_id":"5","status":404,"error":{"type":"index_not_found_exception",
      "reason":"no such index [d]"}}},
    {"index":{"_index":"d","_id":"6","status":408,"error":{"type":"timeout","reason":"x"}}},
    {"index":{"_index":"d","_id":"7","status":409,"error":{"type":"illegal_state_exception",
      "reason":"x"}}},
    {"index":{"_index":"d","_id":"8","status":400,"error":{"type":"document_parsing_exception",
      "reason":"x"}}},
    {"index":{"_index":"d","_id":"9","status":202,"result":"created"}},
    {"index":{"_index":"d","_id":"10"}}]})";
  auto answers = ParseBulkResponse(body, 10);
  ASSERT_TRUE(answers.ok()) << answers.status();
  const auto& a = *answers;
  const bool v = true;  // every DAU and order-wide write carries a version
  EXPECT_EQ(ClassifyBulkItem(BulkOp::kIndex, a[0], v), ItemVerdict::kRetry);  // flood stage
  EXPECT_EQ(a[0].error_type, "cluster_block_exception");
  EXPECT_EQ(ClassifyBulkItem(BulkOp::kIndex, a[1], v), ItemVerdict::kPermanent);  // write block
  EXPECT_EQ(a[1].error_type, "cluster_block_exception");
  EXPECT_EQ(ClassifyBulkItem(BulkOp::kIndex, a[2], v), ItemVerdict::kPermanent);  // closed
  EXPECT_EQ(a[2].error_type, "index_closed_exception");
  EXPECT_EQ(ClassifyBulkItem(BulkOp::kIndex, a[3], v), ItemVerdict::kPermanent);  // no index
  EXPECT_EQ(ClassifyBulkItem(BulkOp::kDelete, a[4]), ItemVerdict::kPermanent);    // not "gone"
  EXPECT_EQ(ClassifyBulkItem(BulkOp::kIndex, a[5], v), ItemVerdict::kRetry);
  EXPECT_EQ(ClassifyBulkItem(BulkOp::kIndex, a[6], v), ItemVerdict::kPermanent);  // other 409
  EXPECT_EQ(ClassifyBulkItem(BulkOp::kIndex, a[7], v), ItemVerdict::kPermanent);
  EXPECT_EQ(ClassifyBulkItem(BulkOp::kIndex, a[8], v), ItemVerdict::kDone);
  EXPECT_EQ(ClassifyBulkItem(BulkOp::kIndex, a[9], v), ItemVerdict::kRetry);  // no status
}

TEST(Templates, MappingsFollowTheFormats) {
  for (const std::string& body :
       {DauIndexTemplate("gmall_dau_info_"), OrderWideIndexTemplate("gmall_order_wide_")}) {
    rapidjson::Document doc;
    doc.Parse(body.c_str());
    ASSERT_FALSE(doc.HasParseError()) << body;
    ASSERT_TRUE(doc["index_patterns"].IsArray());
  }
  rapidjson::Document dau;
  dau.Parse(DauIndexTemplate("gmall_dau_info_").c_str());
  EXPECT_STREQ(dau["index_patterns"][0].GetString(), "gmall_dau_info_*");
  const auto& p = dau["template"]["mappings"]["properties"];
  EXPECT_STREQ(p["ts"]["type"].GetString(), "date");
  EXPECT_STREQ(p["ts"]["format"].GetString(), "epoch_millis");
  EXPECT_STREQ(p["during_time"]["type"].GetString(), "long");
  EXPECT_STREQ(p["user_age"]["type"].GetString(), "integer");
  EXPECT_STREQ(p["mid"]["type"].GetString(), "keyword");
  EXPECT_EQ(p.MemberCount(), 24u);  // 23 DauInfo fields + rtdw_src
  rapidjson::Document ow;
  ow.Parse(OrderWideIndexTemplate("x_").c_str());
  const auto& q = ow["template"]["mappings"]["properties"];
  EXPECT_STREQ(q["create_time"]["format"].GetString(), "yyyy-MM-dd HH:mm:ss");
  EXPECT_STREQ(q["create_date"]["format"].GetString(), "yyyy-MM-dd");
  EXPECT_STREQ(q["total_amount"]["type"].GetString(), "double");
  EXPECT_STREQ(q["create_hour"]["type"].GetString(), "keyword");
  EXPECT_EQ(q.MemberCount(), 31u);  // 30 OrderWide fields + rtdw_src
  EXPECT_EQ(TemplateNameForPrefix("gmall_dau_info_"), "gmall_dau_info");
}

TEST(EscapePath, KeepsPatternCharacters) {
  EXPECT_EQ(EscapePathSegment("a b/c"), "a%20b%2Fc");
  EXPECT_EQ(EscapePathSegment("gmall_*,x", true), "gmall_*,x");
  EXPECT_EQ(EscapePathSegment("gmall_*,x", false), "gmall_%2A%2Cx");
}

TEST(Backoff, FullJitterWithinGrowingCeilings) {
  BackoffOptions o;
  o.initial_delay = milliseconds(100);
  o.min_delay = milliseconds(0);
  o.max_delay = milliseconds(1000);
  o.multiplier = 2.0;
  Backoff b(o, 42);
  EXPECT_EQ(b.Ceiling(0), milliseconds(100));
  EXPECT_EQ(b.Ceiling(3), milliseconds(800));
  EXPECT_EQ(b.Ceiling(4), milliseconds(1000));
  EXPECT_EQ(b.Ceiling(1000), milliseconds(1000));  // no overflow
  std::set<int64_t> distinct;
  for (int i = 0; i < 200; ++i) {
    int attempt = b.attempts();
    auto d = b.NextDelay();
    EXPECT_GE(d.count(), 0);
    EXPECT_LE(d, b.Ceiling(attempt));
    distinct.insert(d.count());
  }
  EXPECT_GT(distinct.size(), 50u);  // jittered, not a fixed ladder
  b.Reset();
  EXPECT_EQ(b.attempts(), 0);
  EXPECT_LE(b.NextDelay(), milliseconds(100));
}

TEST(Backoff, FloorAndValidation) {
  BackoffOptions o;
  o.initial_delay = milliseconds(10);
  o.min_delay = milliseconds(50);
  o.max_delay = milliseconds(60);
  Backoff b(o, 7);
  for (int i = 0; i < 20; ++i) {
    auto d = b.NextDelay();
    EXPECT_GE(d, milliseconds(50));
    EXPECT_LE(d, milliseconds(60));
  }
  EXPECT_TRUE(ValidateBackoffOptions(o).ok());
  o.min_delay = milliseconds(100);
  EXPECT_FALSE(ValidateBackoffOptions(o).ok());
  o = BackoffOptions();
  o.multiplier = 0.5;
  EXPECT_FALSE(ValidateBackoffOptions(o).ok());
  o = BackoffOptions();
  o.initial_delay = milliseconds(0);
  EXPECT_FALSE(ValidateBackoffOptions(o).ok());
}

TEST(Backoff, SleepStopsOnCancel) {
  std::atomic<bool> cancel{false};
  std::thread t([&] {
    std::this_thread::sleep_for(milliseconds(50));
    cancel = true;
  });
  auto start = std::chrono::steady_clock::now();
  EXPECT_FALSE(SleepUnlessCancelled(milliseconds(10000), &cancel));
  EXPECT_LT(std::chrono::steady_clock::now() - start, milliseconds(2000));
  t.join();
  EXPECT_TRUE(SleepUnlessCancelled(milliseconds(1), nullptr));
}

}  // namespace
}  // namespace rtdw
