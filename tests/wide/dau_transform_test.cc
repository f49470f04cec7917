#include "core/dau_transform.h"
#include "core/es_version.h"

#include <algorithm>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "tests/wide/memory_state.h"
#include "tests/wide/test_util.h"

namespace rtdw {
namespace {

using ::rtdw::testing::DocMap;
using ::rtdw::testing::Keys;
using ::rtdw::testing::MapDimensionSource;
using ::rtdw::testing::MemoryStore;
using ::rtdw::testing::Parse;
using ::rtdw::testing::RecordSet;
using ::rtdw::testing::RunBatch;
using ::rtdw::testing::Str;

constexpr char kTopic[] = "DWD_PAGE_LOG_TOPIC";
// 2025-11-25 00:00:00 in Asia/Shanghai (2025-11-24 16:00:00 UTC).
constexpr int64_t kDay25 = 1764000000000;
constexpr int64_t kHour = 3600 * 1000;
constexpr int64_t kDayMs = 24 * kHour;
constexpr int64_t kNow = kDay25 + 12 * kHour;

absl::TimeZone Zone(const char* name) {
  absl::TimeZone tz;
  EXPECT_TRUE(absl::LoadTimeZone(name, &tz)) << name;
  return tz;
}

// A DWD PageLog record (docs/FORMATS.md §2).
struct Page {
  std::string mid = "mid_1";
  std::optional<std::string> user_id = "37";
  std::optional<std::string> province_id = "11";
  std::optional<std::string> last_page_id;  // nullopt: absent
  bool last_page_null = false;              // "last_page_id":null
  int64_t ts = kDay25 + 10 * kHour;
  int64_t during_time = 13968;
  std::string page_id = "home";

  std::string Json() const {
    rapidjson::StringBuffer sb;
    rapidjson::Writer<rapidjson::StringBuffer> w(sb);
    w.StartObject();
    w.Key("mid");
    w.String(mid.c_str());
    if (user_id) {
      w.Key("user_id");
      w.String(user_id->c_str());
    }
    if (province_id) {
      w.Key("province_id");
      w.String(province_id->c_str());
    }
    w.Key("channel");
    w.String("xiaomi");
    w.Key("is_new");
    w.String("1");
    w.Key("model");
    w.String("Xiaomi 10 Pro");
    w.Key("operate_system");
    w.String("Android 11.0");
    w.Key("version_code");
    w.String("v2.1.134");
    w.Key("brand");
    w.String("Xiaomi");
    w.Key("page_id");
    w.String(page_id.c_str());
    if (last_page_id) {
      w.Key("last_page_id");
      w.String(last_page_id->c_str());
    } else if (last_page_null) {
      w.Key("last_page_id");
      w.Null();
    }
    w.Key("page_item");
    w.String("31");
    w.Key("page_item_type");
    w.String("sku_id");
    w.Key("during_time");
    w.Int64(during_time);
    w.Key("source_type");
    w.String("recommend");
    w.Key("ts");
    w.Int64(ts);
    w.EndObject();
    return sb.GetString();
  }
};

constexpr char kUser37[] =
    R"({"id":37,"login_name":"xfttjpbk","name":"罗超","birthday":"1974-06-09","gender":"F",)"
    R"("create_time":"2025-01-07 15:51:39","operate_time":null,"status":null})";
constexpr char kProvince11[] =
    R"({"id":11,"name":"北京","region_id":"1","area_code":"110000","iso_code":"CN-11",)"
    R"("iso_3166_2":"CN-BJ"})";

class DauTest : public ::testing::Test {
 protected:
  DauTest() { ResetTransform(Options()); }

  static DauOptions Options() {
    DauOptions o;
    o.tz = Zone("Asia/Shanghai");
    o.retention_days = 2;
    return o;
  }
  void ResetTransform(DauOptions o) {
    dau_ = std::make_unique<DauTransform>(std::move(o));
    store_ = MemoryStore();
    docs_.clear();
  }

  // One record on partition `p` with the next offset of that partition.
  const InputRecord& Add(const std::string& value, int32_t p = 0) {
    return recs_.Add(kTopic, p, next_offset_[p]++, value);
  }
  const InputRecord& Add(const Page& page, int32_t p = 0) { return Add(page.Json(), p); }

  // Runs every record added since the last Run as one batch.
  BulkOutput Run(int64_t now = kNow) {
    std::vector<InputRecord> batch(recs_.records().begin() + consumed_, recs_.records().end());
    consumed_ = recs_.size();
    BulkOutput out;
    absl::Status st = RunBatch(*dau_, batch, now, &dims_, &store_, &docs_, &out);
    EXPECT_TRUE(st.ok()) << st;
    return out;
  }

  rapidjson::Document Doc(const std::string& index, const std::string& id) {
    auto it = docs_.find({index, id});
    if (it == docs_.end()) {
      ADD_FAILURE() << "no document " << index << "/" << id;
      return Parse("{}");
    }
    return Parse(it->second);
  }

  std::vector<std::string> DeadReasons() const {
    std::vector<std::string> out;
    for (const auto& line : store_.dead_letters) out.push_back(Str(Parse(line), "reason"));
    return out;
  }

  std::unique_ptr<DauTransform> dau_;
  MapDimensionSource dims_;
  MemoryStore store_;
  DocMap docs_;
  RecordSet recs_;
  size_t consumed_ = 0;
  std::map<int32_t, int64_t> next_offset_;
};

TEST_F(DauTest, EveryFieldWithItsType) {
  dims_.rows["DIM:USER_INFO:37"] = kUser37;
  dims_.rows["DIM:BASE_PROVINCE:11"] = kProvince11;
  next_offset_[3] = 1234;
  Page p;
  p.ts = kDay25 + 9 * kHour + 1;  // 2025-11-25 09:00:00.001 in Shanghai
  Add(p, 3);
  BulkOutput out = Run();
  EXPECT_EQ(out.docs, 1u);
  EXPECT_EQ(out.target, "gmall_dau_info_2025-11-25");
  EXPECT_EQ(out.body.substr(0, out.body.find('\n')),
            // version = ((2^27 - 1 - 32400001 ms into the day) << 35) | (2^35 - 1 - offset 1234)
            R"({"index":{"_index":"gmall_dau_info_2025-11-25","_id":"mid_1",)"
            R"("version":3498430460944448301,"version_type":"external_gte"}})");

  rapidjson::Document d = Doc("gmall_dau_info_2025-11-25", "mid_1");
  // The 23 fields of docs/FORMATS.md §4 in its order, then the lineage field.
  EXPECT_EQ(Keys(d), (std::vector<std::string>{"mid",
                                               "user_id",
                                               "province_id",
                                               "channel",
                                               "is_new",
                                               "model",
                                               "operate_system",
                                               "version_code",
                                               "brand",
                                               "page_id",
                                               "page_item",
                                               "page_item_type",
                                               "source_type",
                                               "during_time",
                                               "user_gender",
                                               "user_age",
                                               "province_name",
                                               "province_iso_code",
                                               "province_3166_2",
                                               "province_area_code",
                                               "dt",
                                               "hr",
                                               "ts",
                                               "rtdw_src"}));
  EXPECT_EQ(Str(d, "mid"), "mid_1");
  EXPECT_EQ(Str(d, "user_id"), "37");  // strings stay strings
  EXPECT_EQ(Str(d, "province_id"), "11");
  EXPECT_EQ(Str(d, "channel"), "xiaomi");
  EXPECT_EQ(Str(d, "is_new"), "1");
  EXPECT_EQ(Str(d, "model"), "Xiaomi 10 Pro");
  EXPECT_EQ(Str(d, "operate_system"), "Android 11.0");
  EXPECT_EQ(Str(d, "version_code"), "v2.1.134");
  EXPECT_EQ(Str(d, "brand"), "Xiaomi");
  EXPECT_EQ(Str(d, "page_id"), "home");
  EXPECT_EQ(Str(d, "page_item"), "31");
  EXPECT_EQ(Str(d, "page_item_type"), "sku_id");
  EXPECT_EQ(Str(d, "source_type"), "recommend");
  ASSERT_TRUE(d["during_time"].IsInt64());
  EXPECT_EQ(d["during_time"].GetInt64(), 13968);
  EXPECT_EQ(Str(d, "user_gender"), "F");
  ASSERT_TRUE(d["user_age"].IsInt());
  EXPECT_EQ(d["user_age"].GetInt(), 51);  // born 1974-06-09, on 2025-11-25
  EXPECT_EQ(Str(d, "province_name"), "北京");
  EXPECT_EQ(Str(d, "province_iso_code"), "CN-11");
  EXPECT_EQ(Str(d, "province_3166_2"), "CN-BJ");
  EXPECT_EQ(Str(d, "province_area_code"), "110000");
  EXPECT_EQ(Str(d, "dt"), "2025-11-25");
  EXPECT_EQ(Str(d, "hr"), "09");
  ASSERT_TRUE(d["ts"].IsInt64());
  EXPECT_EQ(d["ts"].GetInt64(), p.ts);
  EXPECT_EQ(Str(d, "rtdw_src"), "DWD_PAGE_LOG_TOPIC/3/1234");
  EXPECT_FALSE(d.HasMember("last_page_id"));

  EXPECT_EQ(dau_->counters().records, 1u);
  EXPECT_EQ(dau_->counters().documents, 1u);
  EXPECT_EQ(dau_->counters().dims_missing, 0u);
  // The de-dup state holds the winner, the watermark the largest ts.
  EXPECT_EQ(store_.dedup.size(), 1u);
  EXPECT_EQ(store_.watermarks.at(3), p.ts);
}

TEST_F(DauTest, KeepsOnlyFirstPages) {
  Page a;  // last_page_id absent
  a.mid = "a";
  Page b;
  b.mid = "b";
  b.last_page_id = "";  // empty counts as absent
  Page c;
  c.mid = "c";
  c.last_page_null = true;
  Page d;
  d.mid = "d";
  d.last_page_id = "home";  // not a first page
  for (const Page* p : {&a, &b, &c, &d}) Add(*p);
  BulkOutput out = Run();
  EXPECT_EQ(out.docs, 3u);
  EXPECT_EQ(docs_.size(), 3u);
  EXPECT_TRUE(docs_.count({"gmall_dau_info_2025-11-25", "a"}));
  EXPECT_TRUE(docs_.count({"gmall_dau_info_2025-11-25", "b"}));
  EXPECT_TRUE(docs_.count({"gmall_dau_info_2025-11-25", "c"}));
  EXPECT_FALSE(docs_.count({"gmall_dau_info_2025-11-25", "d"}));
  EXPECT_EQ(dau_->counters().filtered, 1u);
  EXPECT_TRUE(store_.dead_letters.empty());
}

TEST_F(DauTest, SmallestTsWinsAndReplacesTheDocument) {
  Page p;
  p.ts = kDay25 + 10 * kHour;
  p.page_id = "first-seen";
  Add(p);
  Run();
  EXPECT_EQ(Str(Doc("gmall_dau_info_2025-11-25", "mid_1"), "page_id"), "first-seen");

  // A later-arriving record with a smaller ts replaces the document (same _id).
  p.ts = kDay25 + 8 * kHour;
  p.page_id = "earlier";
  Add(p);
  BulkOutput out = Run();
  EXPECT_EQ(out.docs, 1u);
  rapidjson::Document d = Doc("gmall_dau_info_2025-11-25", "mid_1");
  EXPECT_EQ(Str(d, "page_id"), "earlier");
  EXPECT_EQ(d["ts"].GetInt64(), p.ts);
  EXPECT_EQ(Str(d, "hr"), "08");
  EXPECT_EQ(Str(d, "rtdw_src"), "DWD_PAGE_LOG_TOPIC/0/1");

  // A larger ts is a duplicate: no document.
  p.ts = kDay25 + 9 * kHour;
  p.page_id = "later";
  Add(p);
  out = Run();
  EXPECT_EQ(out.docs, 0u);
  EXPECT_TRUE(out.body.empty());
  EXPECT_EQ(Str(Doc("gmall_dau_info_2025-11-25", "mid_1"), "page_id"), "earlier");
  EXPECT_EQ(dau_->counters().duplicates, 1u);
  EXPECT_EQ(docs_.size(), 1u);
}

TEST_F(DauTest, TiesGoToTheSmallestOffset) {
  const int64_t ts = kDay25 + 10 * kHour;
  // Offsets given out of order: 7 first, then 5 (wins), then 6 (loses to 5).
  std::vector<std::pair<int64_t, const char*>> arrivals = {{7, "o7"}, {5, "o5"}, {6, "o6"}};
  for (auto [offset, page] : arrivals) {
    Page p;
    p.ts = ts;
    p.page_id = page;
    recs_.Add(kTopic, 0, offset, p.Json());
    Run();
  }
  rapidjson::Document d = Doc("gmall_dau_info_2025-11-25", "mid_1");
  EXPECT_EQ(Str(d, "page_id"), "o5");
  EXPECT_EQ(Str(d, "rtdw_src"), "DWD_PAGE_LOG_TOPIC/0/5");
  EXPECT_EQ(dau_->counters().documents, 2u);  // o7, then o5
  EXPECT_EQ(dau_->counters().duplicates, 1u);
}

TEST_F(DauTest, OneActionPerIdWithinABatch) {
  // Three records of one mid in one batch, the winner in the middle: one action, the winner's.
  for (int64_t h : {10, 7, 9}) {
    Page p;
    p.ts = kDay25 + h * kHour;
    p.page_id = absl::StrCat("h", h);
    Add(p);
  }
  Page other;
  other.mid = "mid_2";
  Add(other);
  BulkOutput out = Run();
  EXPECT_EQ(out.docs, 2u);
  EXPECT_EQ(std::count(out.body.begin(), out.body.end(), '\n'), 4);
  EXPECT_EQ(Str(Doc("gmall_dau_info_2025-11-25", "mid_1"), "page_id"), "h7");
  EXPECT_EQ(dau_->counters().duplicates, 1u);  // h9 lost to h7 (h10 was replaced)
}

// The same records, whatever the batch boundaries and the arrival order, end as the same
// documents (property-style over random batchings and shuffles).
TEST_F(DauTest, ResultDoesNotDependOnBatchesOrArrivalOrder) {
  dims_.rows["DIM:USER_INFO:37"] = kUser37;
  dims_.rows["DIM:BASE_PROVINCE:11"] = kProvince11;
  std::mt19937_64 rng(42);
  RecordSet all;
  std::map<int32_t, int64_t> offsets;
  for (int i = 0; i < 600; ++i) {
    Page p;
    // DWD page records are keyed by mid: all records of a mid are on one partition.
    const uint64_t mid = rng() % 40;
    const int32_t partition = static_cast<int32_t>(mid % 3);
    p.mid = absl::StrCat("mid_", mid);
    if (rng() % 5 == 0) {
      p.user_id.reset();
    } else {
      p.user_id = absl::StrCat(rng() % 3 + 36);
    }
    p.province_id = absl::StrCat(rng() % 3 + 10);
    // Two days, ties on purpose (ts on a coarse grid), a third of them not first pages.
    p.ts = kDay25 - kDayMs + static_cast<int64_t>(rng() % 96) * 30 * 60 * 1000;
    if (rng() % 3 == 0) p.last_page_id = "home";
    p.page_id = absl::StrCat("p", i);
    all.Add(kTopic, partition, offsets[partition]++, p.Json());
  }
  auto run = [&](std::vector<InputRecord> order, std::mt19937_64& r) {
    DauTransform t(Options());
    MemoryStore store;
    DocMap docs;
    size_t pos = 0;
    while (pos < order.size()) {
      size_t n = std::min<size_t>(order.size() - pos, 1 + r() % 80);
      std::span<const InputRecord> batch(order.data() + pos, n);
      absl::Status st = RunBatch(t, batch, kNow, &dims_, &store, &docs);
      EXPECT_TRUE(st.ok()) << st;
      pos += n;
    }
    EXPECT_TRUE(store.dead_letters.empty());
    return docs;
  };
  std::mt19937_64 r(7);
  DauTransform one(Options());
  MemoryStore store;
  DocMap reference;
  ASSERT_TRUE(RunBatch(one, all.records(), kNow, &dims_, &store, &reference).ok());
  ASSERT_GT(reference.size(), 40u);  // both days
  for (int trial = 0; trial < 30; ++trial) {
    std::vector<InputRecord> order = all.records();
    if (trial % 2 == 1) std::shuffle(order.begin(), order.end(), r);
    DocMap docs = run(order, r);
    ASSERT_EQ(docs, reference) << "trial " << trial;
  }
}

TEST_F(DauTest, DayAndHourInTheJobsZone) {
  // 2025-11-24 15:59:59 and 16:00:00 UTC = 23:59:59 on the 24th and 00:00:00 on the 25th in
  // Shanghai.
  Page before;
  before.ts = kDay25 - 1000;
  Page after;
  after.ts = kDay25;
  Add(before);
  Add(after);
  BulkOutput out = Run();
  EXPECT_EQ(out.target, "gmall_dau_info_2025-11-24,gmall_dau_info_2025-11-25");
  rapidjson::Document d24 = Doc("gmall_dau_info_2025-11-24", "mid_1");
  EXPECT_EQ(Str(d24, "dt"), "2025-11-24");
  EXPECT_EQ(Str(d24, "hr"), "23");
  rapidjson::Document d25 = Doc("gmall_dau_info_2025-11-25", "mid_1");
  EXPECT_EQ(Str(d25, "dt"), "2025-11-25");
  EXPECT_EQ(Str(d25, "hr"), "00");

  // In UTC both are on the 24th: one document, the earlier record.
  DauOptions o = Options();
  o.tz = absl::UTCTimeZone();
  ResetTransform(o);
  Add(before);
  Add(after);
  out = Run();
  EXPECT_EQ(out.target, "gmall_dau_info_2025-11-24");
  EXPECT_EQ(docs_.size(), 1u);
  rapidjson::Document u = Doc("gmall_dau_info_2025-11-24", "mid_1");
  EXPECT_EQ(Str(u, "hr"), "15");
  EXPECT_EQ(u["ts"].GetInt64(), before.ts);
}

TEST_F(DauTest, AgeIsOnTheRecordsDay) {
  // The record's day is 2025-11-25 (the wall clock, kNow + a year, does not matter).
  dims_.rows["DIM:USER_INFO:1"] = R"({"id":1,"birthday":"2000-11-26","gender":"M"})";  // tomorrow
  dims_.rows["DIM:USER_INFO:2"] = R"({"id":2,"birthday":"2000-11-25","gender":"F"})";  // today
  dims_.rows["DIM:USER_INFO:3"] = R"({"id":3,"gender":"F"})";                          // none
  for (int u = 1; u <= 3; ++u) {
    Page p;
    p.mid = absl::StrCat("m", u);
    p.user_id = absl::StrCat(u);
    p.province_id.reset();
    p.ts = kDay25 + 23 * kHour;
    Add(p);
  }
  Run(kNow + 365 * kDayMs);
  EXPECT_EQ(Doc("gmall_dau_info_2025-11-25", "m1")["user_age"].GetInt(), 24);
  EXPECT_EQ(Doc("gmall_dau_info_2025-11-25", "m2")["user_age"].GetInt(), 25);
  rapidjson::Document d3 = Doc("gmall_dau_info_2025-11-25", "m3");
  EXPECT_FALSE(d3.HasMember("user_age"));
  EXPECT_EQ(Str(d3, "user_gender"), "F");
  EXPECT_EQ(dau_->counters().dims_missing, 0u);
}

TEST_F(DauTest, MissingDimensionsLeaveFieldsOutAndCount) {
  dims_.rows["DIM:BASE_PROVINCE:11"] = kProvince11;
  Page no_user_row;  // user 37 has no row
  no_user_row.mid = "a";
  Page no_province_row;
  no_province_row.mid = "b";
  no_province_row.province_id = "99";
  no_province_row.user_id.reset();  // not logged in: nothing to look up, nothing missing
  Page same_keys;
  same_keys.mid = "c";
  Add(no_user_row);
  Add(no_province_row);
  Add(same_keys);
  Run();
  // One lookup for the batch, each distinct key once.
  ASSERT_EQ(dims_.calls, 1);
  std::vector<std::string> keys = dims_.requests[0];
  std::sort(keys.begin(), keys.end());
  EXPECT_EQ(keys, (std::vector<std::string>{"DIM:BASE_PROVINCE:11", "DIM:BASE_PROVINCE:99",
                                            "DIM:USER_INFO:37"}));
  rapidjson::Document a = Doc("gmall_dau_info_2025-11-25", "a");
  EXPECT_FALSE(a.HasMember("user_gender"));
  EXPECT_FALSE(a.HasMember("user_age"));
  EXPECT_EQ(Str(a, "province_name"), "北京");
  rapidjson::Document b = Doc("gmall_dau_info_2025-11-25", "b");
  EXPECT_FALSE(b.HasMember("user_id"));
  for (const char* f : {"province_name", "province_iso_code", "province_3166_2",
                        "province_area_code", "user_gender", "user_age"}) {
    EXPECT_FALSE(b.HasMember(f)) << f;
  }
  for (auto m = b.MemberBegin(); m != b.MemberEnd(); ++m) {
    EXPECT_FALSE(m->value.IsNull()) << m->name.GetString();
    EXPECT_FALSE(m->value.IsString() && m->value.GetStringLength() == 0) << m->name.GetString();
  }
  // a: user row missing; b: province row missing; c: user row missing.
  EXPECT_EQ(dau_->counters().dims_missing, 3u);

  // A batch without anything to look up asks nothing.
  Page anon;
  anon.mid = "d";
  anon.user_id.reset();
  anon.province_id.reset();
  Add(anon);
  Run();
  EXPECT_EQ(dims_.calls, 1);
}

TEST_F(DauTest, DimensionFailureFailsTheWholeBatch) {
  dims_.fail = true;
  Add(Page());
  std::vector<InputRecord> batch = recs_.records();
  BulkOutput out;
  absl::Status st = testing::RunBatch(*dau_, batch, kNow, &dims_, &store_, &docs_, &out);
  EXPECT_EQ(st.code(), absl::StatusCode::kUnavailable);
  EXPECT_TRUE(store_.dedup.empty());  // the driver discarded the pending batch
  EXPECT_TRUE(docs_.empty());
  EXPECT_EQ(dau_->counters().records, 0u);  // counters only move on success
  // The retry of the same batch makes the document.
  dims_.fail = false;
  ASSERT_TRUE(testing::RunBatch(*dau_, batch, kNow, &dims_, &store_, &docs_, &out).ok());
  EXPECT_EQ(docs_.size(), 1u);
  EXPECT_EQ(dau_->counters().records, 1u);
  EXPECT_EQ(dau_->counters().documents, 1u);
}

TEST_F(DauTest, LateAndFutureRecords) {
  // Watermark on the 25th; retention_days = 2 keeps the 25th and the 24th.
  Page p;
  p.mid = "wm";
  p.ts = kDay25 + 11 * kHour;
  Add(p);
  Page keep;
  keep.mid = "keep";
  keep.ts = kDay25 - kDayMs;  // 2025-11-24 00:00:00: inside the window
  Add(keep);
  Page late;
  late.mid = "late";
  late.ts = kDay25 - kDayMs - 1;  // 2025-11-23 23:59:59.999: out of it
  Add(late);
  Page late_other_partition = late;
  late_other_partition.mid = "late-elsewhere";
  Add(late_other_partition, 1);  // partition 1 has no watermark yet: not late
  Page future;
  future.mid = "future";
  future.ts = kNow + 86400 * 1000 + 1;
  Add(future);
  Page edge;
  edge.mid = "edge";
  edge.ts = kNow + 86400 * 1000;  // exactly max_future ahead: accepted
  Add(edge);
  Run();
  EXPECT_EQ(DeadReasons(), (std::vector<std::string>{"late", "future"}));
  rapidjson::Document dl = Parse(store_.dead_letters[0]);
  EXPECT_EQ(Str(dl, "job"), "dau");
  EXPECT_EQ(Str(dl, "src"), "DWD_PAGE_LOG_TOPIC/0/2");
  EXPECT_EQ(Str(dl, "raw"), late.Json());
  EXPECT_EQ(dl["ts_ingest"].GetInt64(), kNow);
  EXPECT_TRUE(docs_.count({"gmall_dau_info_2025-11-24", "keep"}));
  EXPECT_TRUE(docs_.count({"gmall_dau_info_2025-11-23", "late-elsewhere"}));
  EXPECT_TRUE(docs_.count({"gmall_dau_info_2025-11-26", "edge"}));
  EXPECT_EQ(docs_.size(), 4u);
  EXPECT_EQ(dau_->counters().dead_letters, 2u);
  // `edge` got its document but moved the watermark only to the wall clock (docs/FORMATS.md §6).
  EXPECT_EQ(store_.watermarks.at(0), kNow);

  // Retention is judged against the committed watermark in later batches too: a day later (by
  // the wall clock and the partition's records) the 24th is out of the window.
  Page next_day;
  next_day.mid = "next-day";
  next_day.ts = kNow + kDayMs;
  Add(next_day);
  Page late2;
  late2.mid = "late2";
  late2.ts = kDay25;  // the 25th is now the day before the watermark's day (26th): kept
  Add(late2);
  Page late3;
  late3.mid = "late3";
  late3.ts = kDay25 - 1;  // the 24th: late now
  Add(late3);
  Run(kNow + kDayMs);
  EXPECT_EQ(DeadReasons(), (std::vector<std::string>{"late", "future", "late"}));
  EXPECT_TRUE(docs_.count({"gmall_dau_info_2025-11-25", "late2"}));
}

// A device whose clock is hours fast cannot make the other devices' pages of yesterday `late`
// (docs/FORMATS.md §6): the watermark stops at the wall clock.
TEST_F(DauTest, FastClockDoesNotMakeYesterdayLate) {
  Page fast;
  fast.mid = "fast";
  fast.ts = kNow + 20 * kHour;  // 2025-11-26 08:00 by a clock 20 h fast
  Add(fast);
  Run();
  EXPECT_EQ(store_.watermarks.at(0), kNow);
  Page yesterday;
  yesterday.mid = "yesterday";
  yesterday.ts = kDay25 - kDayMs + kHour;  // 2025-11-24 01:00, delayed
  Add(yesterday);
  Page today;
  today.mid = "today";
  today.ts = kDay25 + kHour;
  Add(today);
  Run();
  EXPECT_TRUE(store_.dead_letters.empty()) << store_.dead_letters.front();
  EXPECT_TRUE(docs_.count({"gmall_dau_info_2025-11-26", "fast"}));  // its own event day
  EXPECT_TRUE(docs_.count({"gmall_dau_info_2025-11-24", "yesterday"}));
  EXPECT_TRUE(docs_.count({"gmall_dau_info_2025-11-25", "today"}));
  // Later records move it on as usual.
  Page later;
  later.mid = "later";
  later.ts = kNow + kHour;
  Add(later);
  Run(kNow + 30 * kHour);
  EXPECT_EQ(store_.watermarks.at(0), kNow + kHour);
}

TEST_F(DauTest, BadRecordsAreDeadLetters) {
  struct Case {
    std::string value;
    const char* reason;
  };
  std::vector<Case> cases = {
      {R"({"mid":"a","ts":1)", "not_json"},
      {R"([{"mid":"a","ts":1}])", "not_object"},
      {R"({"ts":1764036000000})", "no_mid"},
      {R"({"mid":7,"ts":1764036000000})", "no_mid"},
      {R"({"mid":"","ts":1764036000000})", "no_mid"},
      {R"({"mid":"a\u0000b","ts":1764036000000})", "no_mid"},
      {R"({"mid":"a","ts":"1764036000000"})", "bad_type"},
      {R"({"mid":"a","ts":1764036000000.5})", "bad_type"},
      {R"({"mid":"a"})", "bad_type"},
      {R"({"mid":"a","ts":-999999999999999999})", "bad_type"},
      {"{\"mid\":\"a\xff\",\"ts\":1}", "bad_utf8"},
      // An unpaired surrogate escape would make an _id that is not UTF-8 (ES refuses the bulk).
      {R"({"mid":"a\udfdf","ts":1764036000000})", "bad_utf8"},
  };
  std::vector<std::string> expected;
  for (const Case& c : cases) {
    Add(c.value);
    expected.push_back(c.reason);
  }
  Page good;
  Add(good);
  BulkOutput out = Run();
  EXPECT_EQ(DeadReasons(), expected);
  EXPECT_EQ(out.docs, 1u);
  EXPECT_EQ(dau_->counters().dead_letters, cases.size());
  EXPECT_EQ(dau_->counters().records, cases.size() + 1);
  for (size_t i = 0; i < cases.size(); ++i) {
    rapidjson::Document d = Parse(store_.dead_letters[i]);
    EXPECT_EQ(Str(d, "src"), absl::StrCat("DWD_PAGE_LOG_TOPIC/0/", i));
    EXPECT_TRUE(d.HasMember("raw") || d.HasMember("raw_base64")) << store_.dead_letters[i];
    EXPECT_FALSE(Str(d, "detail").empty());
  }
}

TEST_F(DauTest, NumbersAndOddValuesKeepTheirTypes) {
  // A DWD record with a numeric user_id (not what log-split writes, but types are kept) and
  // an empty page_item (left out).
  dims_.rows["DIM:USER_INFO:37"] = kUser37;
  Add(R"({"mid":"m","user_id":37,"during_time":1.5,"page_item":"","channel":null,)"
      R"("ts":1764036000000})");
  Run();
  rapidjson::Document d = Doc("gmall_dau_info_2025-11-25", "m");
  ASSERT_TRUE(d["user_id"].IsInt());
  EXPECT_EQ(d["user_id"].GetInt(), 37);
  ASSERT_TRUE(d["during_time"].IsDouble());
  EXPECT_EQ(d["during_time"].GetDouble(), 1.5);
  EXPECT_FALSE(d.HasMember("page_item"));
  EXPECT_FALSE(d.HasMember("channel"));
  EXPECT_EQ(Str(d, "user_gender"), "F");
  EXPECT_EQ(Str(d, "hr"), "10");
}

// Numbers pass into the document as their source text (compared as text): ids above 2^53 and at
// 2^64-1, decimals with trailing zeros and many digits, negative and exponent forms — from the
// DWD record and from the dimension rows. Ids that key a dimension lookup are exact integers.
// Duplicate keys: the last one wins, in the record and in the dimension row.
TEST_F(DauTest, NumbersPassThroughByteExact) {
  dims_.rows["DIM:USER_INFO:18446744073709551615"] =
      R"({"id":18446744073709551615,"birthday":"1974-06-09","gender":"M","gender":"F"})";
  dims_.rows["DIM:BASE_PROVINCE:9007199254740993"] =
      R"({"id":9007199254740993,"name":"北京","area_code":110000.00,"iso_code":"CN-11",)"
      R"("iso_3166_2":"CN-BJ","area_code":110000.10})";
  // A double would look up DIM:BASE_PROVINCE:9007199254740992 and find nothing.
  dims_.rows["DIM:BASE_PROVINCE:9007199254740992"] = R"({"id":1,"name":"wrong row"})";
  const std::string rec =
      R"({"mid":"m","user_id":18446744073709551615,"province_id":9007199254740993,)"
      R"("brand":1.5E+3,"page_id":"home","page_item":10130.00,"source_type":-0.50,)"
      R"("during_time":4500000001.512456777,"during_time":13968.000,"ts":1764036000000})";
  Add(rec);
  Add(R"({"mid":"n","during_time":99999999999999.99,"ts":1.764036E12})");
  Run();
  auto it = docs_.find({"gmall_dau_info_2025-11-25", "m"});
  ASSERT_NE(it, docs_.end());
  EXPECT_EQ(it->second,
            R"({"mid":"m","user_id":18446744073709551615,"province_id":9007199254740993,)"
            R"("brand":1.5E+3,"page_id":"home","page_item":10130.00,"source_type":-0.50,)"
            R"("during_time":13968.000,"user_gender":"F","user_age":51,"province_name":"北京",)"
            R"("province_iso_code":"CN-11","province_3166_2":"CN-BJ",)"
            R"("province_area_code":110000.10,"dt":"2025-11-25","hr":"10",)"
            R"("ts":1764036000000,"rtdw_src":"DWD_PAGE_LOG_TOPIC/0/0"})");
  EXPECT_EQ(dau_->counters().dims_missing, 0u);
  // ts in an exponent form is not an integer: a dead letter whose raw is the record as written.
  ASSERT_EQ(store_.dead_letters.size(), 1u);
  rapidjson::Document dl = Parse(store_.dead_letters[0]);
  EXPECT_EQ(Str(dl, "reason"), "bad_type");
  EXPECT_EQ(Str(dl, "raw"), R"({"mid":"n","during_time":99999999999999.99,"ts":1.764036E12})");
}

}  // namespace
}  // namespace rtdw

namespace rtdw {
namespace {

// The DAU version (core/es_version.h) orders exactly as the winner rule: smaller (ts, offset) ->
// larger version, over a whole 25-hour day and offsets up to 2^35 - 1; beyond, offsets tie.
TEST(DauEsVersionTest, OrdersAsTheWinnerRule) {
  const int64_t day = 1732492800000;
  const int64_t last_ms = 25LL * 3600 * 1000 - 1;
  const int64_t max_off = (int64_t{1} << 35) - 1;
  std::vector<std::pair<int64_t, int64_t>> keys = {
      {0, 0}, {0, 1}, {0, max_off}, {1, 0}, {1000, 5}, {last_ms, 0}, {last_ms, max_off}};
  for (size_t i = 0; i + 1 < keys.size(); ++i) {
    EXPECT_GT(DauEsVersion(day + keys[i].first, day, keys[i].second),
              DauEsVersion(day + keys[i + 1].first, day, keys[i + 1].second))
        << i;
  }
  EXPECT_LT(DauEsVersion(day, day, 0), int64_t{1} << 62);
  EXPECT_GE(DauEsVersion(day + last_ms, day, max_off), 0);
  EXPECT_EQ(DauEsVersion(day, day, max_off), DauEsVersion(day, day, max_off + 7));  // beyond: ties
  EXPECT_EQ(DauEsVersion(day - 5, day, 3), DauEsVersion(day, day, 3));  // clamped, never negative
}

}  // namespace
}  // namespace rtdw
