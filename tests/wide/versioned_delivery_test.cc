// ES enforces the DAU winner (spec "ES itself enforces the winner", core/es_version.h): journal
// entries made by the real DauTransform, delivered by the real connector (EsJournalSink) to a
// real rtdw-es-lite in orders and timings that broke the old unversioned writes:
//  - reversed and duplicated delivery gives the content of in-order delivery, which is the
//    independent truth (per mid the smallest (ts, offset) of its first pages);
//  - a bulk the client gave up on that the server applies later does not replace the newer
//    document written meanwhile.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <random>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "absl/strings/str_cat.h"
#include "connectors/es/es_client.h"
#include "connectors/es/es_journal_sink.h"
#include "connectors/es/templates.h"
#include "core/dau_transform.h"
#include "rapidjson/document.h"
#include "tests/harness/process.h"
#include "tests/harness/services.h"
#include "tests/wide/memory_state.h"

namespace rtdw {
namespace {

using std::chrono::milliseconds;

constexpr int64_t kDayStart = 1732492800000;  // 2024-11-25T00:00:00Z
constexpr char kTopic[] = "DWD_PAGE_LOG_TOPIC";

struct Page {
  std::string mid;
  int64_t ts;
  int64_t offset;
  std::string value;
};

std::string PageJson(const std::string& mid, int64_t ts, int64_t offset) {
  return absl::StrCat("{\"mid\":\"", mid, "\",\"user_id\":\"", offset % 7, "\",\"province_id\":\"",
                      offset % 5, "\",\"page_id\":\"home\",\"during_time\":", 100 + offset,
                      ",\"ts\":", ts, "}");
}

class VersionedDeliveryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto st = es_.Start();
    ASSERT_TRUE(st.ok()) << st;
    EsClientOptions o;
    o.urls = {es_.url()};
    o.backoff.initial_delay = milliseconds(5);
    o.backoff.max_delay = milliseconds(100);
    o.request_timeout = milliseconds(60000);
    auto c = EsClient::Create(o);
    ASSERT_TRUE(c.ok()) << c.status();
    client_ = std::move(*c);
    ASSERT_TRUE(InstallIndexTemplates(*client_, "gmall_dau_info_", "gmall_order_wide_").ok());
  }

  // The journal entries the transform makes from `pages`, taken in order, `per_batch` a batch;
  // `docs` receives the in-order application (RunBatch).
  std::vector<JournalEntry> Entries(const std::vector<Page>& pages, size_t per_batch,
                                    testing::DocMap* docs) {
    DauOptions opt;
    opt.tz = absl::UTCTimeZone();
    DauTransform t(opt);
    testing::MemoryStore store;
    testing::MapDimensionSource dims;
    std::vector<JournalEntry> entries;
    for (size_t i = 0; i < pages.size(); i += per_batch) {
      std::vector<InputRecord> batch;
      for (size_t k = i; k < std::min(pages.size(), i + per_batch); ++k) {
        InputRecord r;
        r.topic = kTopic;
        r.partition = 0;
        r.offset = pages[k].offset;
        r.value = pages[k].value;
        batch.push_back(r);
      }
      BulkOutput out;
      auto st = testing::RunBatch(t, batch, kDayStart + 86400000LL * 2, &dims, &store, docs, &out);
      EXPECT_TRUE(st.ok()) << st;
      if (out.docs == 0) continue;
      JournalEntry e;
      e.seq = entries.size() + 1;
      e.body = out.body;
      e.target = out.target;
      e.doc_count = out.docs;
      entries.push_back(std::move(e));
    }
    return entries;
  }

  // The _source of index/id in es-lite ("" when absent).
  std::string Source(const std::string& index, const std::string& id) {
    auto r = client_->Perform("GET", absl::StrCat("/", index, "/_doc/", id));
    EXPECT_TRUE(r.ok()) << r.status();
    if (!r.ok() || r->status != 200) return "";
    rapidjson::Document d;
    d.Parse(r->body.c_str());
    if (d.HasParseError() || !d.HasMember("_source")) return "";
    rapidjson::StringBuffer sb;
    rapidjson::Writer<rapidjson::StringBuffer> w(sb);
    d["_source"].Accept(w);
    return sb.GetString();
  }

  static bool SameJson(const std::string& a, const std::string& b) {
    rapidjson::Document x, y;
    x.Parse(a.c_str());
    y.Parse(b.c_str());
    return !x.HasParseError() && !y.HasParseError() && x == y;
  }

  testing::EsLite es_;
  std::unique_ptr<EsClient> client_;
};

TEST_F(VersionedDeliveryTest, ReversedAndDuplicatedDeliveryKeepsEveryWinner) {
  // 40 mids x 5 first pages, in a shuffled arrival order; every mid has a ts tie (two pages of
  // the same ts, the smaller offset must win) and its pages straddle batches.
  std::mt19937_64 rng(17);
  std::vector<std::pair<std::string, int64_t>> slots;  // (mid, ts)
  for (int m = 0; m < 40; ++m) {
    std::string mid = absl::StrCat("mid_", m);
    int64_t tie = kDayStart + 3600000LL * (1 + m % 20) + static_cast<int64_t>(rng() % 1000);
    slots.emplace_back(mid, tie);
    slots.emplace_back(mid, tie);
    for (int k = 0; k < 3; ++k) {
      slots.emplace_back(mid, kDayStart + static_cast<int64_t>(rng() % 86400000ULL));
    }
  }
  std::shuffle(slots.begin(), slots.end(), rng);
  std::vector<Page> pages;
  std::map<std::string, std::pair<int64_t, int64_t>> truth;  // mid -> min (ts, offset)
  for (size_t i = 0; i < slots.size(); ++i) {
    const auto& [mid, ts] = slots[i];
    int64_t offset = 1000 + static_cast<int64_t>(i);
    pages.push_back({mid, ts, offset, PageJson(mid, ts, offset)});
    auto it = truth.find(mid);
    if (it == truth.end() || std::make_pair(ts, offset) < it->second) truth[mid] = {ts, offset};
  }
  testing::DocMap in_order;
  std::vector<JournalEntry> entries = Entries(pages, 7, &in_order);
  ASSERT_GT(entries.size(), 10u);
  // The in-order content is the truth: every mid's document is its smallest (ts, offset).
  ASSERT_EQ(in_order.size(), truth.size());
  for (const auto& [key, source] : in_order) {
    rapidjson::Document d;
    d.Parse(source.c_str());
    const auto& [ts, offset] = truth.at(key.second);
    EXPECT_EQ(d["ts"].GetInt64(), ts) << key.second;
    EXPECT_EQ(std::string(d["rtdw_src"].GetString()), absl::StrCat(kTopic, "/0/", offset));
  }

  // Reverse order, and every entry twice (the second copy after the next older one).
  EsJournalSink sink(client_.get(), EsJournalSinkOptions{});
  uint64_t superseded = 0;
  std::vector<size_t> order;
  for (size_t i = entries.size(); i-- > 0;) {
    order.push_back(i);
    if (i + 1 < entries.size()) order.push_back(i + 1);
  }
  order.push_back(0);
  for (size_t i : order) {
    auto report = sink.Deliver(entries[i]);
    ASSERT_TRUE(report.ok()) << report.status();
    EXPECT_TRUE(report->rejected.empty());
    EXPECT_EQ(report->acknowledged, report->docs);
    superseded += report->superseded;
  }
  EXPECT_GT(superseded, 0u);
  for (const auto& [key, source] : in_order) {
    EXPECT_TRUE(SameJson(Source(key.first, key.second), source))
        << key.second << ": ES has " << Source(key.first, key.second) << ", in order gives "
        << source;
  }
}

TEST_F(VersionedDeliveryTest, ALateAppliedBulkDoesNotReplaceANewerDocument) {
  // Two first pages of mid_late arriving in two batches: the second (smaller ts) is the winner.
  // The first entry also carries mid_probe, whose appearance shows that the late bulk was applied.
  std::vector<Page> pages = {
      {"mid_late", kDayStart + 50000, 10, PageJson("mid_late", kDayStart + 50000, 10)},
      {"mid_probe", kDayStart + 60000, 11, PageJson("mid_probe", kDayStart + 60000, 11)},
      {"mid_late", kDayStart + 20000, 12, PageJson("mid_late", kDayStart + 20000, 12)},
  };
  testing::DocMap in_order;
  std::vector<JournalEntry> entries = Entries(pages, 2, &in_order);
  ASSERT_EQ(entries.size(), 2u);
  const std::string index = "gmall_dau_info_2024-11-25";

  // The first entry's bulk is held 4 s by es-lite before it is applied; the client gives up
  // after 0.5 s (the entry stays owed).
  auto faults = client_->Perform("POST", "/_rtdw/faults", R"({"latency_ms":4000})");
  ASSERT_TRUE(faults.ok() && faults->status == 200);
  EsJournalSinkOptions quick;
  quick.timeout = milliseconds(500);
  EsJournalSink impatient(client_.get(), quick);
  auto first = impatient.Deliver(entries[0]);
  ASSERT_FALSE(first.ok());
  EXPECT_TRUE(absl::IsDeadlineExceeded(first.status())) << first.status();
  faults = client_->Perform("DELETE", "/_rtdw/faults");
  ASSERT_TRUE(faults.ok() && faults->status == 200);
  EXPECT_EQ(Source(index, "mid_probe"), "");  // not applied yet

  // The daemon then delivers the owed entry again and the next one, the newer winner.
  EsJournalSink sink(client_.get(), EsJournalSinkOptions{});
  for (const auto& e : entries) {
    auto report = sink.Deliver(e);
    ASSERT_TRUE(report.ok()) << report.status();
  }
  const std::string winner = in_order.at({index, "mid_late"});
  ASSERT_TRUE(SameJson(Source(index, "mid_late"), winner));
  // The held bulk is applied now (es-lite applies it after its latency, the client long gone):
  // wait until its probe document's version moves or 30 s pass.
  auto version_of_probe = [&] {
    auto r = client_->Perform("GET", absl::StrCat("/", index, "/_doc/mid_probe"));
    rapidjson::Document d;
    if (r.ok()) d.Parse(r->body.c_str());
    return (!d.HasParseError() && d.IsObject() && d.HasMember("_seq_no")) ? d["_seq_no"].GetInt64()
                                                                          : int64_t{-1};
  };
  const int64_t probe_seq = version_of_probe();
  // The late bulk rewrites mid_probe (same version: external_gte accepts it), so its _seq_no
  // moves once the late bulk has been applied.
  ASSERT_TRUE(
      testing::WaitFor([&] { return version_of_probe() > probe_seq; }, std::chrono::seconds(30)))
      << "the held bulk was never applied";
  EXPECT_TRUE(SameJson(Source(index, "mid_late"), winner))
      << "a late-applied older write replaced the winner: " << Source(index, "mid_late");
}

}  // namespace
}  // namespace rtdw
