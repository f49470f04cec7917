// The ES connector (connectors/es) against a real rtdw-es-lite process: exactly-once delivery
// under injected faults, permanent errors, splitting, cancellation, node failover, reading back.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "connectors/es/bulk.h"
#include "connectors/es/es_client.h"
#include "connectors/es/es_journal_sink.h"
#include "connectors/es/templates.h"
#include "core/journal_entry.h"
#include "rapidjson/document.h"
#include "tests/harness/process.h"
#include "tests/harness/services.h"

namespace rtdw {
namespace {

using std::chrono::milliseconds;

// A DAU document (docs/FORMATS.md §4) with some non-ASCII text.
std::string DauDoc(int i, const std::string& day, bool bad = false) {
  const char* provinces[] = {"北京", "上海", "广东", "浙江"};
  std::string during = bad ? "\"not a number\"" : std::to_string(1000 + i * 13);
  return absl::StrCat(
      "{\"mid\":\"mid_", i, "\",\"user_id\":\"", i % 500, "\",\"province_id\":\"", i % 34,
      "\",\"channel\":\"xiaomi\",\"is_new\":\"", i % 2,
      "\",\"model\":\"Xiaomi 10 Pro\","
      "\"operate_system\":\"Android 11.0\",\"version_code\":\"v2.1.134\",\"brand\":\"Xiaomi\","
      "\"page_id\":\"home\",\"page_item\":\"",
      i % 40,
      "\",\"page_item_type\":\"sku_id\","
      "\"source_type\":\"recommend\",\"during_time\":",
      during, ",\"user_gender\":\"", i % 2 ? "M" : "F", "\",\"user_age\":", 18 + i % 50,
      ",\"province_name\":\"", provinces[i % 4], "\",\"province_iso_code\":\"CN-", i % 34,
      "\",\"province_3166_2\":\"CN-BJ\",\"province_area_code\":\"1100", i % 10, "\",\"dt\":\"", day,
      "\",\"hr\":\"", i % 24 < 10 ? "0" : "", i % 24, "\",\"ts\":", 1764000000000LL + i * 1000LL,
      ",\"rtdw_src\":\"DWD_PAGE_LOG_TOPIC/", i % 4, "/", i, "\"}");
}

class ConnectorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto st = es_.Start();
    ASSERT_TRUE(st.ok()) << st;
  }

  EsClientOptions Options() {
    EsClientOptions o;
    o.urls = {es_.url()};
    o.backoff.initial_delay = milliseconds(5);
    o.backoff.max_delay = milliseconds(100);
    o.request_timeout = milliseconds(20000);
    o.warn = [this](std::string_view w) {
      std::lock_guard<std::mutex> lock(mu_);
      warnings_.emplace_back(w);
    };
    return o;
  }

  std::unique_ptr<EsClient> Client(const EsClientOptions& o) {
    auto c = EsClient::Create(o);
    EXPECT_TRUE(c.ok()) << c.status();
    return c.ok() ? std::move(*c) : nullptr;
  }

  // Raw request to es-lite (fault API, checks), no retries.
  rapidjson::Document Admin(const std::string& method, const std::string& path,
                            const std::string& body = "") {
    EsClientOptions o;
    o.urls = {es_.url()};
    o.read_retries = 0;
    auto c = EsClient::Create(o);
    rapidjson::Document d;
    auto r = (*c)->Perform(method, path, body);
    EXPECT_TRUE(r.ok()) << r.status();
    if (r.ok()) d.Parse(r->body.c_str());
    return d;
  }

  rtdw::testing::EsLite es_;
  std::mutex mu_;
  std::vector<std::string> warnings_;
};

TEST_F(ConnectorTest, InfoAndIdempotentTemplates) {
  auto client = Client(Options());
  auto info = client->Info();
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->major, 8);
  EXPECT_EQ(info->version, "8.11.0");
  EXPECT_TRUE(client->Ping().ok());
  for (int i = 0; i < 2; ++i) {
    auto st = InstallIndexTemplates(*client, "gmall_dau_info_", "gmall_order_wide_");
    ASSERT_TRUE(st.ok()) << st;
  }
  auto r = client->Perform("GET", "/_index_template/gmall_order_wide");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 200);
  EXPECT_FALSE(client->PutIndexTemplate("bad", R"({"index_patterns":[]})").ok());
}

TEST_F(ConnectorTest, EveryDocumentExactlyOnceUnderFaults) {
  auto client = Client([&] {
    EsClientOptions o = Options();
    o.bulk_max_bytes = 48 * 1024;
    o.max_bulks_in_flight = 4;
    return o;
  }());
  ASSERT_TRUE(InstallIndexTemplates(*client, "gmall_dau_info_", "").ok());
  // Faults on only after set-up: 30% of items 429, 20% of requests 503, dropped connections
  // both before and after the request is applied.
  Admin("POST", "/_rtdw/faults",
        R"({"bulk_item_429_fraction":0.3,"request_503_fraction":0.2,
            "close_after_read_fraction":0.05,"close_after_write_fraction":0.05,"seed":7})");

  const int kDocs = 6000;
  std::vector<BulkAction> actions;
  std::map<std::string, std::string> expected;  // index/id -> source
  std::set<size_t> bad_positions;
  for (int i = 0; i < kDocs; ++i) {
    std::string day = absl::StrCat("2025-11-2", 4 + i % 3);
    bool bad = i % 300 == 17;
    BulkAction a{i % 2 ? BulkOp::kCreate : BulkOp::kIndex, "gmall_dau_info_" + day,
                 absl::StrCat("mid_", i), DauDoc(i, day, bad)};
    if (bad) {
      bad_positions.insert(actions.size());
    } else {
      expected[a.index + "/" + a.id] = a.source;
    }
    actions.push_back(std::move(a));
  }
  std::atomic<int> retry_events{0};
  DeliveryHooks hooks;
  hooks.on_retry = [&](const BulkRetryEvent& e) {
    retry_events++;
    EXPECT_GT(e.items, 0u);
    EXPECT_FALSE(e.summary.empty());
  };
  auto result = client->Bulk(actions, hooks);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->delivered, expected.size());
  EXPECT_EQ(result->failed, bad_positions.size());
  EXPECT_EQ(result->FailedPositions(),
            std::vector<size_t>(bad_positions.begin(), bad_positions.end()));
  for (size_t pos : bad_positions) {
    const BulkItemResult& r = result->items[pos];
    EXPECT_FALSE(r.ok);
    EXPECT_EQ(r.status, 400);
    EXPECT_EQ(r.error_type, "mapper_parsing_exception");
    EXPECT_NE(r.reason.find("during_time"), std::string::npos) << r.reason;
  }
  EXPECT_GT(result->retried_items, 0u);
  EXPECT_GT(result->retry_rounds, 0);
  EXPECT_EQ(retry_events.load(), result->retry_rounds);
  EXPECT_GT(client->stats().bulk_items_retried, 0u);
  {
    std::lock_guard<std::mutex> lock(mu_);
    EXPECT_FALSE(warnings_.empty());
  }
  // Every kind of fault really happened.
  rapidjson::Document faults = Admin("DELETE", "/_rtdw/faults");
  const auto& c = faults["counters"];
  EXPECT_GT(c["bulk_items_429"].GetInt(), 0);
  EXPECT_GT(c["requests_503"].GetInt(), 0);
  EXPECT_GT(c["closed_after_read"].GetInt() + c["closed_after_write"].GetInt(), 0);

  // Exactly once, with the right content.
  ASSERT_TRUE(client->Refresh("gmall_dau_info_*").ok());
  auto count = client->Count("gmall_dau_info_*");
  ASSERT_TRUE(count.ok()) << count.status();
  EXPECT_EQ(*count, expected.size());
  std::map<std::string, std::string> got;
  auto st = client->ScrollAll(
      "gmall_dau_info_*", ScrollOptions{"", {}, true, 700, {"_index", "mid"}},
      [&](const SearchHit& h) {
        EXPECT_TRUE(got.emplace(h.index + "/" + h.id, h.source).second) << "twice: " << h.id;
        return absl::OkStatus();
      });
  ASSERT_TRUE(st.ok()) << st;
  ASSERT_EQ(got.size(), expected.size());
  for (const auto& [key, source] : expected) {
    auto it = got.find(key);
    ASSERT_NE(it, got.end()) << key;
    rapidjson::Document want, have;
    want.Parse(source.c_str());
    have.Parse(it->second.c_str());
    ASSERT_TRUE(want == have) << key << "\n" << source << "\n" << it->second;
  }
  // Spot-check through _mget too.
  auto mget = client->Perform("POST", "/_mget",
                              R"({"docs":[{"_index":"gmall_dau_info_2025-11-24","_id":"mid_0"},
                  {"_index":"gmall_dau_info_2025-11-25","_id":"mid_1"},
                  {"_index":"gmall_dau_info_2025-11-24","_id":"mid_17"}]})");
  ASSERT_TRUE(mget.ok());
  rapidjson::Document m;
  m.Parse(mget->body.c_str());
  EXPECT_TRUE(m["docs"][0]["found"].GetBool());
  EXPECT_TRUE(m["docs"][1]["found"].GetBool());
  EXPECT_FALSE(m["docs"][2]["found"].GetBool());  // the permanently failed one
  // create items that were re-delivered stayed at version 1; index items may have been rewritten.
  EXPECT_EQ(m["docs"][1]["_version"].GetInt(), 1);
}

TEST_F(ConnectorTest, StoredBodyIsDeliveredWithPerItemOutcomes) {
  auto client = Client(Options());
  ASSERT_TRUE(InstallIndexTemplates(*client, "gmall_dau_info_", "").ok());
  std::vector<BulkAction> actions;
  for (int i = 0; i < 20; ++i) {
    actions.push_back({BulkOp::kIndex, "gmall_dau_info_2025-11-25", absl::StrCat("mid_", i),
                       DauDoc(i, "2025-11-25", i == 5)});
  }
  actions.push_back({BulkOp::kDelete, "gmall_dau_info_2025-11-25", "mid_19", ""});
  actions.push_back({BulkOp::kDelete, "gmall_dau_info_2025-11-25", "never_there", ""});
  std::string body = EncodeBulkBody(actions);
  auto result = client->BulkBody(body);
  ASSERT_TRUE(result.ok()) << result.status();
  ASSERT_EQ(result->items.size(), actions.size());
  EXPECT_EQ(result->FailedPositions(), std::vector<size_t>{5});
  ASSERT_EQ(result->actions.size(), actions.size());
  EXPECT_EQ(result->actions[5].id, "mid_5");  // what the caller dead-letters
  EXPECT_EQ(result->actions[5].source, actions[5].source);
  EXPECT_EQ(result->items[5].error_type, "mapper_parsing_exception");
  EXPECT_EQ(result->items[0].result, "created");
  EXPECT_EQ(result->items[20].result, "deleted");
  EXPECT_TRUE(result->items[21].ok);  // already gone is fine
  EXPECT_EQ(result->items[21].result, "not_found");
  // Delivering the same entry again (a replay after a crash) is harmless.
  auto again = client->BulkBody(body);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->items[0].result, "updated");
  ASSERT_TRUE(
      client->Refresh("gmall_dau_info_2025-11-25").ok());  // a count sees refreshed writes only
  EXPECT_EQ(*client->Count("gmall_dau_info_2025-11-25"), 18u);
  EXPECT_FALSE(client->BulkBody("{\"index\":{}}\n{}\n").ok());  // no _index
}

TEST_F(ConnectorTest, BodiesAreSplitByBytes) {
  EsClientOptions o = Options();
  o.bulk_max_bytes = 4096;
  auto client = Client(o);
  std::vector<BulkAction> actions;
  size_t bytes = 0;
  for (int i = 0; i < 300; ++i) {
    actions.push_back({BulkOp::kIndex, "split", absl::StrCat(i), DauDoc(i, "2025-11-25")});
    bytes += EncodedBulkActionSize(actions.back());
  }
  auto result = client->Bulk(actions);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->delivered, 300u);
  EXPECT_GE(result->requests, bytes / 4096);
  ASSERT_TRUE(client->Refresh("split").ok());  // a count sees refreshed writes only
  EXPECT_EQ(*client->Count("split"), 300u);
}

TEST_F(ConnectorTest, TooLargeForTheServerIsSplitOrFailsAlone) {
  es_.Kill9();
  rtdw::testing::EsLite small;
  ASSERT_TRUE(small.Start({"--max-content-length", "50000"}).ok());
  EsClientOptions o = Options();
  o.urls = {small.url()};
  o.bulk_max_bytes = 1 << 20;
  auto client = Client(o);
  std::vector<BulkAction> actions;
  for (int i = 0; i < 400; ++i) {
    actions.push_back({BulkOp::kIndex, "big", absl::StrCat(i), DauDoc(i, "2025-11-25")});
  }
  actions.push_back({BulkOp::kIndex, "big", "huge",
                     absl::StrCat("{\"blob\":\"", std::string(60000, 'x'), "\"}")});
  auto result = client->Bulk(actions);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->delivered, 400u);
  EXPECT_EQ(result->FailedPositions(), std::vector<size_t>{400});
  EXPECT_EQ(result->items[400].status, 413);
  EXPECT_EQ(result->items[400].error_type, "request_entity_too_large");
  ASSERT_TRUE(client->Refresh("big").ok());  // a count sees refreshed writes only
  EXPECT_EQ(*client->Count("big"), 400u);
}

TEST_F(ConnectorTest, CancelAbandonsAnEndlessRetry) {
  auto client = Client(Options());
  Admin("POST", "/_rtdw/faults", R"({"bulk_item_429_fraction":1.0})");
  std::vector<BulkAction> actions = {{BulkOp::kIndex, "c", "1", "{}"}};
  std::atomic<bool> cancel{false};
  DeliveryHooks hooks;
  hooks.cancel = &cancel;
  std::thread stopper([&] {
    std::this_thread::sleep_for(milliseconds(400));
    cancel = true;
  });
  auto start = std::chrono::steady_clock::now();
  auto result = client->Bulk(actions, hooks);
  auto took = std::chrono::steady_clock::now() - start;
  stopper.join();
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), absl::StatusCode::kCancelled);
  EXPECT_LT(took, std::chrono::seconds(3));
  EXPECT_GT(client->stats().bulk_retry_rounds, 2u);
  // Cancel during a slow request also returns promptly.
  Admin("POST", "/_rtdw/faults", R"({"bulk_item_429_fraction":0,"latency_ms":5000})");
  cancel = false;
  std::thread stopper2([&] {
    std::this_thread::sleep_for(milliseconds(300));
    cancel = true;
  });
  start = std::chrono::steady_clock::now();
  result = client->Bulk(actions, hooks);
  stopper2.join();
  EXPECT_EQ(result.status().code(), absl::StatusCode::kCancelled);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(3));
  Admin("DELETE", "/_rtdw/faults");
}

// One document of a journal body and what ES must hold for it afterwards (the truth the test
// computes from the body, independently of the client).
struct Owed {
  BulkAction action;
  std::string result;  // the item's expected BulkItemResult::result ("" for a refused one)
  bool rejected = false;
  bool present = false;  // found in ES afterwards
  std::string source;    // ... with this _source
  int64_t version = 0;   // ... and this _version
};

// Builds a journal body of every kind of action the delivery must get right, in rtdw's form
// (EncodeBulkBody / AppendJournalIndexAction), with documents of very different sizes (one alone
// larger than the split limit); the documents some actions meet are written first with `setup`.
std::vector<Owed> MixedBody(const std::string& prefix, const std::string& index, int n,
                            std::vector<BulkAction>* setup) {
  std::vector<Owed> owed;
  std::mt19937 rng(static_cast<uint32_t>(n) + static_cast<uint32_t>(prefix.size()));
  auto doc = [&](int i, bool bad) {
    std::string d = DauDoc(i, "2025-11-25", bad);
    d.pop_back();
    const size_t pad = i == n / 2 ? 40000 : rng() % 2500;
    return absl::StrCat(d, ",\"pad\":\"", std::string(pad, 'p'), "\"}");
  };
  for (int i = 0; i < n; ++i) {
    Owed o;
    const std::string id = absl::StrCat(prefix, "_", i);
    o.action.index = index;
    o.action.id = id;
    switch (i % 10) {
      case 0:
      case 1:  // a new document, internal versioning: written once means _version 1
        o.action = {BulkOp::kIndex, index, id, doc(i, false)};
        o.result = "created";
        o.present = true;
        o.source = o.action.source;
        o.version = 1;
        break;
      case 2:  // a new document with an external version
        o.action = {BulkOp::kIndex, index, id, doc(i, false), 1000 + i, "external_gte"};
        o.result = "created";
        o.present = true;
        o.source = o.action.source;
        o.version = 1000 + i;
        break;
      case 3: {  // ES holds a newer version: superseded, the older one stays
        BulkAction newer{BulkOp::kIndex, index, id, "{\"mid\":\"newer\"}", 5000, "external_gte"};
        setup->push_back(newer);
        o.action = {BulkOp::kIndex, index, id, doc(i, false), 10, "external_gte"};
        o.result = "superseded";
        o.present = true;
        o.source = newer.source;
        o.version = 5000;
        break;
      }
      case 4: {  // ES holds an older version: replaced
        setup->push_back({BulkOp::kIndex, index, id, "{\"mid\":\"older\"}", 5, "external_gte"});
        o.action = {BulkOp::kIndex, index, id, doc(i, false), 100, "external_gte"};
        o.result = "updated";
        o.present = true;
        o.source = o.action.source;
        o.version = 100;
        break;
      }
      case 5:  // create of a new document
        o.action = {BulkOp::kCreate, index, id, doc(i, false)};
        o.result = "created";
        o.present = true;
        o.source = o.action.source;
        o.version = 1;
        break;
      case 6: {  // create of a document that is there: done, unchanged
        BulkAction there{BulkOp::kIndex, index, id, "{\"mid\":\"there\"}"};
        setup->push_back(there);
        o.action = {BulkOp::kCreate, index, id, doc(i, false)};
        o.result = "exists";
        o.present = true;
        o.source = there.source;
        o.version = 1;
        break;
      }
      case 7:  // delete of a document that is there
        setup->push_back({BulkOp::kIndex, index, id, "{\"mid\":\"doomed\"}"});
        o.action = {BulkOp::kDelete, index, id, ""};
        o.result = "deleted";
        break;
      case 8:  // delete of one never there
        o.action = {BulkOp::kDelete, index, id, ""};
        o.result = "not_found";
        break;
      case 9:  // refused for good (during_time is not a number), half of them versioned
        o.action = {BulkOp::kIndex, index, id, doc(i, true)};
        if (i % 20 == 9) {
          o.action.version = 77;
          o.action.version_type = "external_gte";
        }
        o.rejected = true;
        break;
    }
    owed.push_back(std::move(o));
  }
  return owed;
}

// Compares the report and what ES holds with the truth of MixedBody.
void ExpectDelivered(EsClient* client, const std::vector<Owed>& owed,
                     const DeliveryReport& report) {
  size_t rejected = 0, superseded = 0;
  std::vector<const Owed*> want_rejected;
  for (const Owed& o : owed) {
    if (o.rejected) want_rejected.push_back(&o);
    superseded += o.result == "superseded";
  }
  rejected = want_rejected.size();
  EXPECT_EQ(report.docs, owed.size());
  EXPECT_EQ(report.acknowledged, owed.size() - rejected);
  EXPECT_EQ(report.superseded, superseded);
  ASSERT_EQ(report.rejected.size(), rejected);
  for (size_t k = 0; k < rejected; ++k) {
    const RejectedItem& r = report.rejected[k];
    const BulkAction& a = want_rejected[k]->action;
    EXPECT_EQ(r.index, a.index);
    EXPECT_EQ(r.id, a.id);
    EXPECT_EQ(r.document, a.source);
    EXPECT_EQ(r.version, a.version);
    EXPECT_EQ(r.status, 400);
    EXPECT_EQ(r.error_type, "mapper_parsing_exception");
  }
  std::string mget = "{\"docs\":[";
  for (size_t i = 0; i < owed.size(); ++i) {
    absl::StrAppend(&mget, i ? "," : "", "{\"_index\":\"", owed[i].action.index, "\",\"_id\":\"",
                    owed[i].action.id, "\"}");
  }
  mget += "]}";
  auto r = client->Perform("POST", "/_mget", mget);
  ASSERT_TRUE(r.ok() && r->status == 200) << r.status();
  rapidjson::Document d;
  d.Parse(r->body.c_str());
  ASSERT_TRUE(d.IsObject() && d["docs"].IsArray());
  ASSERT_EQ(d["docs"].Size(), owed.size());
  for (size_t i = 0; i < owed.size(); ++i) {
    const auto& got = d["docs"][static_cast<rapidjson::SizeType>(i)];
    const Owed& o = owed[i];
    SCOPED_TRACE(o.action.id);
    ASSERT_EQ(got["found"].GetBool(), o.present);
    if (!o.present) continue;
    EXPECT_EQ(got["_version"].GetInt64(), o.version);
    rapidjson::Document want;
    want.Parse(o.source.c_str());
    EXPECT_TRUE(want == got["_source"]);
  }
}

// The journal sink sends a stored body as it is: split into requests at action boundaries by the
// byte limit (the request count is exactly what the limit gives), items refused with 429 re-sent
// alone (exactly as many re-sends as es-lite refused, and no document written twice: internal
// versions stay at 1), versions enforced by ES, refused items dead-lettered with their index,
// id, source and version, every document in ES as the body says.
TEST_F(ConnectorTest, JournalBodySentAsItIsRetriesOnlyRefusedItems) {
  EsClientOptions o = Options();
  o.bulk_max_bytes = 16 * 1024;
  o.max_bulks_in_flight = 2;
  auto client = Client(o);
  ASSERT_TRUE(InstallIndexTemplates(*client, "gmall_dau_info_", "").ok());
  const std::string index = "gmall_dau_info_2025-11-25";
  EsJournalSink sink(client.get(), EsJournalSinkOptions{});

  for (bool faults : {false, true}) {
    SCOPED_TRACE(faults ? "with 429s" : "no faults");
    std::vector<BulkAction> setup;
    std::vector<Owed> owed = MixedBody(faults ? "f" : "c", index, 600, &setup);
    ASSERT_TRUE(client->Bulk(setup).ok());
    JournalEntry entry;
    entry.seq = faults ? 2 : 1;
    std::vector<BulkAction> actions;
    for (const Owed& w : owed) actions.push_back(w.action);
    entry.body = EncodeBulkBody(actions);
    ASSERT_TRUE(PreparedBulkBody::FromBody(entry.body)->raw());  // the path under test
    // The requests the byte limit gives (as EsClient::Bulk has always split).
    uint64_t chunks = 1;
    size_t in_chunk = 0;
    for (const BulkAction& a : actions) {
      const size_t n = EncodedBulkActionSize(a);
      if (in_chunk > 0 && in_chunk + n > o.bulk_max_bytes) {
        ++chunks;
        in_chunk = 0;
      }
      in_chunk += n;
    }
    ASSERT_GT(chunks, 20u);
    if (faults) {
      Admin("POST", "/_rtdw/faults", R"({"bulk_item_429_fraction":0.3,"seed":11})");
    }
    const EsClientStats before = client->stats();
    auto report = sink.Deliver(entry);
    ASSERT_TRUE(report.ok()) << report.status();
    ExpectDelivered(client.get(), owed, *report);
    const uint64_t resent = client->stats().bulk_items_retried - before.bulk_items_retried;
    if (!faults) {
      EXPECT_EQ(report->requests, chunks);
      EXPECT_EQ(report->retries, 0u);
      EXPECT_EQ(resent, 0u);
    } else {
      rapidjson::Document f = Admin("DELETE", "/_rtdw/faults");
      const uint64_t refused = f["counters"]["bulk_items_429"].GetUint64();
      EXPECT_GT(refused, 100u);
      EXPECT_GT(report->retries, 0u);
      EXPECT_EQ(resent, refused);  // exactly the refused items went again
    }
    if (::testing::Test::HasFatalFailure()) return;
  }
}

// The sink's timeout and cancel flag end a delivery promptly, during a slow request and during
// the waits between retries, without a thread of their own.
TEST_F(ConnectorTest, JournalSinkTimeoutAndCancel) {
  auto client = Client(Options());
  JournalEntry entry;
  entry.seq = 9;
  AppendJournalIndexAction(&entry.body, "t", "1", "{\"x\":1}", 3);
  auto threads = [] {
    std::ifstream in("/proc/self/status");
    std::string line;
    while (std::getline(in, line)) {
      if (line.rfind("Threads:", 0) == 0) return std::stoi(line.substr(8));
    }
    return -1;
  };
  using Clock = std::chrono::steady_clock;
  for (const char* fault : {R"({"latency_ms":10000})", R"({"bulk_item_429_fraction":1.0})"}) {
    SCOPED_TRACE(fault);
    Admin("POST", "/_rtdw/faults", fault);
    EsJournalSinkOptions so;
    so.timeout = milliseconds(400);
    const int threads_before = threads();
    int threads_during = -1;
    so.before_request = [&](uint64_t) {
      threads_during = threads();
      return absl::OkStatus();
    };
    EsJournalSink sink(client.get(), so);
    auto start = Clock::now();
    auto report = sink.Deliver(entry);
    EXPECT_LT(Clock::now() - start, std::chrono::seconds(5));
    ASSERT_FALSE(report.ok());
    EXPECT_TRUE(absl::IsDeadlineExceeded(report.status())) << report.status();
    EXPECT_NE(report.status().message().find("stays owed"), std::string::npos);
    EXPECT_EQ(threads_during, threads_before);  // no watcher thread

    std::atomic<bool> cancel{false};
    so.timeout = milliseconds(0);
    so.cancel = &cancel;
    EsJournalSink cancellable(client.get(), so);
    std::thread stopper([&] {
      std::this_thread::sleep_for(milliseconds(300));
      cancel = true;
    });
    start = Clock::now();
    report = cancellable.Deliver(entry);
    stopper.join();
    EXPECT_LT(Clock::now() - start, std::chrono::seconds(5));
    EXPECT_EQ(report.status().code(), absl::StatusCode::kCancelled) << report.status();
    Admin("DELETE", "/_rtdw/faults");
  }
  // Without faults the same entry goes through.
  EsJournalSink sink(client.get(), EsJournalSinkOptions{milliseconds(30000), nullptr, {}, {}});
  auto report = sink.Deliver(entry);
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(report->acknowledged, 1u);
}

// Non-bulk calls retry transient answers a bounded number of times (read_retries), then return
// the last answer; EsClientOptions::cancel ends the retries (and their waits) early.
TEST_F(ConnectorTest, ReadRetriesAreBoundedAndCancellable) {
  Admin("POST", "/_rtdw/faults", R"({"request_503_fraction":1.0})");
  EsClientOptions o = Options();
  o.read_retries = 2;
  auto client = Client(o);
  const uint64_t before = client->stats().requests;
  auto r = client->Perform("GET", "/_cluster/health");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->status, 503);
  EXPECT_EQ(client->stats().requests - before, 3u);  // 1 + read_retries
  EXPECT_EQ(client->stats().request_errors, 2u);     // the returned answer is not an error

  std::atomic<bool> cancel{false};
  o.read_retries = 1000;
  o.backoff = {milliseconds(1000), milliseconds(1000), milliseconds(1000), 2.0};
  o.cancel = &cancel;
  client = Client(o);
  std::thread stopper([&] {
    std::this_thread::sleep_for(milliseconds(300));
    cancel = true;
  });
  auto start = std::chrono::steady_clock::now();
  r = client->Perform("GET", "/_cluster/health");
  stopper.join();
  EXPECT_EQ(r.status().code(), absl::StatusCode::kCancelled) << r.status();
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
  Admin("DELETE", "/_rtdw/faults");
}

TEST_F(ConnectorTest, ADeadNodeIsSkipped) {
  EsClientOptions o = Options();
  o.urls = {absl::StrCat("http://127.0.0.1:", rtdw::testing::FreePort()), es_.url()};
  auto client = Client(o);
  for (int round = 0; round < 3; ++round) {
    std::vector<BulkAction> actions;
    for (int i = 0; i < 50; ++i) {
      actions.push_back({BulkOp::kIndex, "nodes", absl::StrCat(round, "-", i), "{\"x\":1}"});
    }
    auto result = client->Bulk(actions);
    ASSERT_TRUE(result.ok()) << result.status();
    EXPECT_EQ(result->delivered, 50u);
  }
  EXPECT_TRUE(client->Info().ok());
  ASSERT_TRUE(client->Refresh("nodes").ok());  // a count sees refreshed writes only
  EXPECT_EQ(*client->Count("nodes"), 150u);
  std::lock_guard<std::mutex> lock(mu_);
  bool skipped = false;
  for (const auto& w : warnings_) skipped = skipped || w.find("skipping it") != std::string::npos;
  EXPECT_TRUE(skipped);
}

TEST_F(ConnectorTest, RetriesUntilTheServerComesBack) {
  auto client = Client(Options());
  ASSERT_TRUE(client->Ping().ok());
  es_.Stop();
  std::thread restarter([&] {
    std::this_thread::sleep_for(milliseconds(700));
    EXPECT_TRUE(es_.Restart().ok());
  });
  std::vector<BulkAction> actions = {{BulkOp::kCreate, "back", "1", "{\"x\":1}"}};
  auto result = client->Bulk(actions);
  restarter.join();
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->delivered, 1u);
  EXPECT_GT(result->retry_rounds, 0);
  ASSERT_TRUE(client->Refresh("back").ok());  // a count sees refreshed writes only
  EXPECT_EQ(*client->Count("back"), 1u);
}

TEST_F(ConnectorTest, ReadingBack) {
  auto client = Client(Options());
  ASSERT_TRUE(InstallIndexTemplates(*client, "gmall_dau_info_", "").ok());
  std::vector<BulkAction> actions;
  for (int i = 0; i < 2500; ++i) {
    std::string day = absl::StrCat("2025-11-2", 4 + i % 3);
    actions.push_back(
        {BulkOp::kIndex, "gmall_dau_info_" + day, absl::StrCat("mid_", i), DauDoc(i, day)});
  }
  ASSERT_TRUE(client->Bulk(actions).ok());
  ASSERT_TRUE(client->Refresh("gmall_dau_info_*").ok());
  EXPECT_EQ(*client->Count("gmall_dau_info_*"), 2500u);
  EXPECT_EQ(*client->Count("gmall_dau_info_*", R"({"term":{"is_new":"1"}})"), 1250u);
  EXPECT_EQ(*client->Count("gmall_dau_info_2025-11-24",
                           R"({"range":{"ts":{"gte":1764000000000,"lt":1764000100000}}})"),
            34u);  // i < 100 with i % 3 == 0
  auto missing = client->Count("gmall_dau_info_2099-01-01");
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(*client->Count("nothing_*"), 0u);

  auto page = client->Search("gmall_dau_info_*",
                             R"({"size":5,"query":{"bool":{"filter":[{"term":{"user_gender":"M"}},
                                 {"range":{"user_age":{"gte":60}}}]}},"sort":[{"ts":"asc"}],
                                 "_source":["mid","user_age"]})");
  ASSERT_TRUE(page.ok()) << page.status();
  EXPECT_EQ(page->hits.size(), 5u);
  EXPECT_FALSE(page->total_is_lower_bound);
  for (const auto& h : page->hits) {
    rapidjson::Document src;
    src.Parse(h.source.c_str());
    EXPECT_GE(src["user_age"].GetInt(), 60);
    EXPECT_FALSE(src.HasMember("ts"));
  }
  // Paging through one day with a filter and _source includes (the dedup-restore read).
  std::set<std::string> mids;
  std::string last;
  auto st = client->ScrollAll("gmall_dau_info_2025-11-25",
                              ScrollOptions{R"({"term":{"rtdw_src":"DWD_PAGE_LOG_TOPIC/1/1"}})",
                                            {"mid", "ts", "rtdw_src"},
                                            true,
                                            10,
                                            {"mid"}},
                              [&](const SearchHit& h) {
                                mids.insert(h.id);
                                return absl::OkStatus();
                              });
  ASSERT_TRUE(st.ok()) << st;
  EXPECT_EQ(mids, std::set<std::string>{"mid_1"});
  int seen = 0;
  st = client->ScrollAll("gmall_dau_info_2025-11-25",
                         ScrollOptions{"", {"mid", "ts", "rtdw_src"}, true, 97, {"mid"}},
                         [&](const SearchHit& h) {
                           EXPECT_GT(h.id, last);
                           last = h.id;
                           rapidjson::Document src;
                           src.Parse(h.source.c_str());
                           EXPECT_EQ(src.MemberCount(), 3u);
                           ++seen;
                           return absl::OkStatus();
                         });
  ASSERT_TRUE(st.ok()) << st;
  EXPECT_EQ(seen, 833);  // i % 3 == 1 for i < 2500
  // A callback error stops the walk and is returned.
  int calls = 0;
  st = client->ScrollAll("gmall_dau_info_*", ScrollOptions{"", {}, true, 1000, {"_index", "mid"}},
                         [&](const SearchHit&) {
                           return ++calls == 3 ? absl::AbortedError("enough") : absl::OkStatus();
                         });
  EXPECT_EQ(st.code(), absl::StatusCode::kAborted);
  EXPECT_EQ(calls, 3);
  // Errors carry ES's type.
  auto bad = client->Search("gmall_dau_info_*", R"({"query":{"wildcard":{"mid":"x*"}}})");
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(std::string(bad.status().message()).find("wildcard"), std::string::npos);
}

}  // namespace
}  // namespace rtdw
