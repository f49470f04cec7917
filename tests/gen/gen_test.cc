// rtdw-gen's generators: the same seed gives the same bytes, and the truth they write agrees with
// what the real transforms make of their output (log-split + a small DAU computation; db-split +
// a small order-wide join over the Redis writes).
#include <algorithm>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "core/db_split.h"
#include "core/event_time.h"
#include "core/gen/db_gen.h"
#include "core/gen/log_gen.h"
#include "core/log_split.h"
#include "gtest/gtest.h"
#include "rapidjson/document.h"
#include "rapidjson/stringbuffer.h"
#include "rapidjson/writer.h"

namespace rtdw::gen {
namespace {

absl::TimeZone Shanghai() {
  absl::TimeZone tz;
  EXPECT_TRUE(absl::LoadTimeZone("Asia/Shanghai", &tz));
  return tz;
}

LogGenOptions LogOpts(uint64_t seed, int64_t events = 20000) {
  LogGenOptions o;
  o.day = absl::CivilDay(2025, 11, 25);
  o.tz = Shanghai();
  o.mids = 800;
  o.users = 600;
  o.events = events;
  o.seed = seed;
  return o;
}

DbGenOptions DbOpts(uint64_t seed) {
  DbGenOptions o;
  o.day = absl::CivilDay(2025, 11, 25);
  o.tz = Shanghai();
  o.users = 300;
  o.orders = 1500;
  o.provinces = 34;
  o.seed = seed;
  return o;
}

std::vector<std::string> AllLogs(const LogGenOptions& o, std::string* truth = nullptr) {
  LogGenerator g(o);
  std::vector<std::string> out;
  std::string v;
  while (g.Next(&v)) out.push_back(v);
  if (truth) *truth = g.TruthJson();
  return out;
}

std::vector<std::pair<std::string, std::string>> AllDb(const DbGenOptions& o,
                                                       std::string* truth = nullptr) {
  DbGenerator g(o);
  std::vector<std::pair<std::string, std::string>> out;
  std::string k, v;
  while (g.Next(&k, &v)) out.emplace_back(k, v);
  if (truth) *truth = g.TruthJson();
  return out;
}

rapidjson::Document Parse(const std::string& s) {
  rapidjson::Document d;
  d.Parse<rapidjson::kParseFullPrecisionFlag>(s.data(), s.size());
  EXPECT_FALSE(d.HasParseError()) << s.substr(0, 300);
  return d;
}

std::string ToJson(const rapidjson::Value& v) {
  rapidjson::StringBuffer sb;
  rapidjson::Writer<rapidjson::StringBuffer> w(sb);
  v.Accept(w);
  return std::string(sb.GetString(), sb.GetSize());
}

// a == b as JSON values (member order aside, numbers by value), with a readable failure.
::testing::AssertionResult SameJson(const rapidjson::Value& want, const rapidjson::Value& got) {
  if (want == got) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "\n want: " << ToJson(want) << "\n  got: " << ToJson(got);
}

TEST(LogGenTest, SameSeedSameBytes) {
  std::string t1, t2, t3;
  auto a = AllLogs(LogOpts(42, 5000), &t1);
  auto b = AllLogs(LogOpts(42, 5000), &t2);
  auto c = AllLogs(LogOpts(43, 5000), &t3);
  EXPECT_EQ(a, b);
  EXPECT_EQ(t1, t2);
  EXPECT_NE(a, c);
  EXPECT_EQ(a.size(), 5000u);
}

TEST(LogGenTest, KeysAreTheMids) {
  LogGenerator g(LogOpts(8, 2000));
  std::string mid, value;
  size_t n = 0;
  while (g.Next(&mid, &value)) {
    auto d = Parse(value);
    ASSERT_EQ(mid, d["common"]["mid"].GetString());
    ++n;
  }
  EXPECT_EQ(n, 2000u);
}

TEST(LogGenTest, WellFormedAndInTheDay) {
  LogGenOptions o = LogOpts(5);
  auto recs = AllLogs(o);
  ASSERT_EQ(recs.size(), static_cast<size_t>(o.events));
  const int64_t start = absl::ToUnixMillis(o.tz.At(absl::CivilSecond(o.day)).pre);
  const int64_t end = start + 86400000;
  std::set<std::string> mids;
  size_t out_of_order = 0;
  int64_t prev = 0;
  for (const auto& r : recs) {
    auto d = Parse(r);
    ASSERT_TRUE(d.IsObject());
    ASSERT_TRUE(d["common"]["mid"].IsString());
    ASSERT_TRUE(d["ts"].IsInt64());
    int64_t ts = d["ts"].GetInt64();
    EXPECT_GE(ts, start);
    EXPECT_LT(ts, end);
    EXPECT_TRUE(d.HasMember("start") != d.HasMember("page"));
    mids.insert(d["common"]["mid"].GetString());
    if (ts < prev) ++out_of_order;
    prev = ts;
  }
  EXPECT_GT(mids.size(), 400u);  // most devices show up
  EXPECT_GT(out_of_order, 0u);   // uploads arrive slightly out of order
  EXPECT_LT(out_of_order, recs.size() / 4);
}

// Feeds the records through log-split; checks the per-topic counts, then computes DAU from the
// page records the way docs/FORMATS.md §4 says and compares with the truth.
void CheckLogTruth(const LogGenOptions& o) {
  std::string truth_text;
  auto recs = AllLogs(o, &truth_text);
  auto truth = Parse(truth_text);
  LogSplitOptions lo;
  LogSplitTransform split(lo);
  CollectingSink sink;
  struct Best {
    int64_t ts;
    size_t order;
    std::string page_json;
  };
  std::map<std::string, std::map<std::string, Best>> dau;  // day -> mid -> best
  size_t page_order = 0;
  uint64_t counts[kLogSlotCount] = {};
  uint64_t dead = 0;
  std::map<std::string, uint64_t> dead_by_reason;
  for (size_t i = 0; i < recs.size(); ++i) {
    sink.Clear();
    InputRecord in;
    in.topic = "ODS_BASE_LOG";
    in.offset = static_cast<int64_t>(i);
    in.value = recs[i];
    split.Process(in, &sink);
    for (const auto& d : sink.dead_letters) {
      ++dead;
      ++dead_by_reason[d.reason];
    }
    for (const auto& out : sink.outputs) {
      ++counts[out.slot];
      if (out.slot != static_cast<int>(LogSlot::kPage)) continue;
      auto p = Parse(out.value);
      ++page_order;
      if (p.HasMember("last_page_id") && p["last_page_id"].GetStringLength() > 0) continue;
      int64_t ts = p["ts"].GetInt64();
      std::string day = DayOf(ts, o.tz);
      auto& slot = dau[day][p["mid"].GetString()];
      if (slot.page_json.empty() || ts < slot.ts) slot = Best{ts, page_order, out.value};
    }
  }
  const auto& dwd = truth["dwd"];
  EXPECT_EQ(counts[static_cast<int>(LogSlot::kStart)], dwd["DWD_START_LOG_TOPIC"].GetUint64());
  EXPECT_EQ(counts[static_cast<int>(LogSlot::kPage)], dwd["DWD_PAGE_LOG_TOPIC"].GetUint64());
  EXPECT_EQ(counts[static_cast<int>(LogSlot::kDisplay)], dwd["DWD_PAGE_DISPLAY_TOPIC"].GetUint64());
  EXPECT_EQ(counts[static_cast<int>(LogSlot::kAction)], dwd["DWD_PAGE_ACTION_TOPIC"].GetUint64());
  EXPECT_EQ(counts[static_cast<int>(LogSlot::kError)], dwd["DWD_ERROR_LOG_TOPIC"].GetUint64());
  EXPECT_EQ(dead, dwd["DWD_DEAD_LETTER"].GetUint64());
  for (auto m = truth["dead_letters"].MemberBegin(); m != truth["dead_letters"].MemberEnd(); ++m) {
    EXPECT_EQ(dead_by_reason[m->name.GetString()], m->value.GetUint64()) << m->name.GetString();
  }
  EXPECT_EQ(truth["records"].GetUint64(), recs.size());

  // DAU: the truth's documents are the page records' fields plus dt and hr.
  const auto& tdau = truth["dau"];
  ASSERT_EQ(tdau.MemberCount(), dau.size());
  for (const auto& [day, mids] : dau) {
    ASSERT_TRUE(tdau.HasMember(day.c_str())) << day;
    const auto& tday = tdau[day.c_str()];
    EXPECT_EQ(tday.MemberCount(), mids.size());
    EXPECT_EQ(truth["dau_count"][day.c_str()].GetUint64(), mids.size());
    for (const auto& [mid, best] : mids) {
      ASSERT_TRUE(tday.HasMember(mid.c_str())) << mid;
      rapidjson::Document doc = Parse(best.page_json);
      // A DauInfo document has no last_page_id; it gets dt and hr.
      doc.RemoveMember("last_page_id");
      DayHour dh = DayHourOf(best.ts, o.tz);
      doc.AddMember("dt", rapidjson::Value(dh.day, doc.GetAllocator()), doc.GetAllocator());
      doc.AddMember("hr", rapidjson::Value(dh.hour, doc.GetAllocator()), doc.GetAllocator());
      EXPECT_TRUE(SameJson(tday[mid.c_str()], doc)) << mid;
    }
  }
}

TEST(LogGenTest, TruthAgreesWithLogSplitAndDau) { CheckLogTruth(LogOpts(11)); }

// What the order of a log stream shows a dau job: how many days (of the zone) a first page is at
// most behind the newest first page before it, and how many first pages arrive after a later one
// of their device on another day.
struct FirstPageOrder {
  int64_t max_days_behind = 0;
  size_t cross_day_inversions = 0;
};
FirstPageOrder MeasureFirstPages(const LogGenOptions& o, const std::vector<std::string>& recs) {
  FirstPageOrder out;
  std::optional<absl::CivilDay> newest;
  std::map<std::string, int64_t> last;  // mid -> ts of its last first page
  for (const auto& text : recs) {
    auto d = Parse(text);
    if (!d.HasMember("page") || d.HasMember("err")) continue;
    const auto& page = d["page"];
    if (page.HasMember("last_page_id") && page["last_page_id"].GetStringLength() > 0) continue;
    const int64_t ts = d["ts"].GetInt64();
    const absl::CivilDay day = CivilDayOf(ts, o.tz);
    if (newest) out.max_days_behind = std::max<int64_t>(out.max_days_behind, *newest - day);
    if (!newest || day > *newest) newest = day;
    auto [it, inserted] = last.try_emplace(d["common"]["mid"].GetString(), ts);
    if (!inserted) {
      if (it->second > ts && CivilDayOf(it->second, o.tz) != day) ++out.cross_day_inversions;
      it->second = ts;
    }
  }
  return out;
}

// --days 3 --disorder: the truth still agrees; some devices' first pages arrive largest-ts-first
// across days, never more than one day behind (none late with the default retention,
// docs/FORMATS.md §6), and the truth says so.
TEST(LogGenTest, SeveralDaysWithDisorder) {
  LogGenOptions o = LogOpts(13);
  o.days = 3;
  o.disorder = 0.3;
  CheckLogTruth(o);
  std::string truth_text;
  auto recs = AllLogs(o, &truth_text);
  auto truth = Parse(truth_text);
  EXPECT_EQ(truth["dau"].MemberCount(), 3u);
  FirstPageOrder order = MeasureFirstPages(o, recs);
  EXPECT_EQ(order.max_days_behind, 1);
  EXPECT_GT(order.cross_day_inversions, 20u);
  EXPECT_EQ(truth["late_below_retention_days"].GetInt64(), order.max_days_behind + 1);
  o.disorder = 1.5;
  EXPECT_FALSE(ValidateLogGenOptions(o).ok());
}

// --clock-skew: devices off by up to 20 h put documents on the days their clocks say; the truth's
// lateness bound is what the stream shows.
TEST(LogGenTest, ClockSkew) {
  LogGenOptions o = LogOpts(14);
  o.clock_skew = 0.2;
  CheckLogTruth(o);
  std::string truth_text;
  auto recs = AllLogs(o, &truth_text);
  auto truth = Parse(truth_text);
  EXPECT_GE(truth["dau"].MemberCount(), 2u);  // skewed clocks reach the neighbouring days
  FirstPageOrder order = MeasureFirstPages(o, recs);
  EXPECT_EQ(truth["late_below_retention_days"].GetInt64(), order.max_days_behind + 1);
  o.clock_skew = -0.1;
  EXPECT_FALSE(ValidateLogGenOptions(o).ok());
}

TEST(LogGenTest, TruthWithErrorsAndMalformedRecords) {
  LogGenOptions o = LogOpts(12);
  o.error_share = 0.1;
  o.malformed_share = 0.05;
  CheckLogTruth(o);
  std::string truth_text;
  AllLogs(o, &truth_text);
  auto truth = Parse(truth_text);
  EXPECT_GT(truth["dwd"]["DWD_ERROR_LOG_TOPIC"].GetUint64(), 1000u);
  EXPECT_GT(truth["dwd"]["DWD_DEAD_LETTER"].GetUint64(), 500u);
  EXPECT_EQ(truth["dead_letters"].MemberCount(), 5u);  // every kind of breakage shows up
}

TEST(LogGenTest, OtherZoneAndSmallCases) {
  LogGenOptions o = LogOpts(3, 3000);
  ASSERT_TRUE(absl::LoadTimeZone("America/New_York", &o.tz));
  o.time_zone = "America/New_York";
  o.day = absl::CivilDay(2025, 11, 2);  // a 25-hour day (DST ends)
  CheckLogTruth(o);
  o = LogOpts(4, 1);
  o.mids = 1;
  o.users = 0;
  CheckLogTruth(o);
  o = LogOpts(4, 0);
  EXPECT_TRUE(AllLogs(o).empty());
}

TEST(DbGenTest, SameSeedSameBytes) {
  std::string t1, t2;
  auto a = AllDb(DbOpts(42), &t1);
  auto b = AllDb(DbOpts(42), &t2);
  auto c = AllDb(DbOpts(43));
  EXPECT_EQ(a, b);
  EXPECT_EQ(t1, t2);
  EXPECT_NE(a, c);
}

void CheckDbTruth(const DbGenOptions& o) {
  std::string truth_text;
  auto recs = AllDb(o, &truth_text);
  auto truth = Parse(truth_text);
  EXPECT_EQ(truth["records"].GetUint64(), recs.size());

  DbSplitTransform split{DbSplitOptions()};
  TableLists tables =
      TableLists::From({"order_info", "order_detail"}, {"user_info", "base_province"});
  CollectingSink sink;
  std::vector<RedisWrite> redis;
  for (size_t i = 0; i < recs.size(); ++i) {
    InputRecord in;
    in.topic = "ODS_BASE_DB";
    in.offset = static_cast<int64_t>(i);
    in.key = recs[i].first;
    in.value = recs[i].second;
    split.Process(in, tables, &sink, &redis);
    auto d = Parse(recs[i].second);
    // Keys as Maxwell partitions them.
    std::string table = d["table"].GetString();
    std::string type = d["type"].GetString();
    if (type == "bootstrap-start" || type == "bootstrap-complete") {
      EXPECT_EQ(recs[i].first, table);
    } else if (table == "order_detail") {
      EXPECT_EQ(recs[i].first, std::to_string(d["data"]["order_id"].GetInt64()));
    } else {
      EXPECT_EQ(recs[i].first, std::to_string(d["data"]["id"].GetInt64()));
    }
  }
  EXPECT_TRUE(sink.dead_letters.empty());
  EXPECT_EQ(split.counters().skipped_no_row, truth["skipped_no_row"].GetUint64());

  std::map<std::string, uint64_t> per_topic;
  std::map<int64_t, rapidjson::Document> order_inserts;
  std::vector<rapidjson::Document> detail_inserts;
  std::map<std::string, std::vector<std::string>> updates_by_key;  // operate_time sequence
  for (const auto& out : sink.outputs) {
    ++per_topic[out.topic];
    rapidjson::Document d = Parse(out.value);
    if (out.topic == "DWD_ORDER_INFO_I") {
      EXPECT_EQ(out.key, std::to_string(d["id"].GetInt64()));
      order_inserts[d["id"].GetInt64()] = std::move(d);
    } else if (out.topic == "DWD_ORDER_DETAIL_I") {
      EXPECT_EQ(out.key, std::to_string(d["order_id"].GetInt64()));
      detail_inserts.push_back(std::move(d));
    } else if (out.topic == "DWD_ORDER_INFO_U") {
      updates_by_key[out.key].push_back(d["operate_time"].GetString());
    }
  }
  for (auto m = truth["dwd"].MemberBegin(); m != truth["dwd"].MemberEnd(); ++m) {
    EXPECT_EQ(per_topic[m->name.GetString()], m->value.GetUint64()) << m->name.GetString();
  }
  EXPECT_EQ(per_topic.size(), truth["dwd"].MemberCount());
  // Per-row order: each order's updates in time order.
  for (const auto& [key, times] : updates_by_key) {
    EXPECT_TRUE(std::is_sorted(times.begin(), times.end())) << key;
  }

  // Redis after applying the writes in order == the truth's dims.
  std::map<std::string, std::string> kv;
  for (const auto& w : redis) {
    if (w.op == RedisWrite::Op::kSet) {
      kv[w.key] = w.value;
    } else {
      kv.erase(w.key);
    }
  }
  EXPECT_EQ(redis.size(), truth["redis"]["sets"].GetUint64() + truth["redis"]["dels"].GetUint64());
  EXPECT_EQ(kv.size(), truth["redis"]["keys"].GetUint64());
  const auto& dims = truth["dims"];
  ASSERT_EQ(dims.MemberCount(), kv.size());
  for (const auto& [key, value] : kv) {
    ASSERT_TRUE(dims.HasMember(key.c_str())) << key;
    EXPECT_TRUE(SameJson(dims[key.c_str()], Parse(value))) << key;
  }

  // Order-wide: join each detail with its order insert and the dims (docs/FORMATS.md §5).
  // By the day of create_time.
  std::map<std::string, uint64_t> per_day;
  for (const auto& det : detail_inserts) {
    const auto& order = order_inserts.at(det["order_id"].GetInt64());
    ++per_day[std::string(order["create_time"].GetString()).substr(0, 10)];
  }
  EXPECT_EQ(per_day.size(), static_cast<size_t>(o.days));
  EXPECT_EQ(truth["order_wide"].MemberCount(), per_day.size());
  EXPECT_EQ(truth["order_wide_count"].MemberCount(), per_day.size());
  for (const auto& [day, n] : per_day) {
    ASSERT_TRUE(truth["order_wide"].HasMember(day.c_str())) << day;
    EXPECT_EQ(truth["order_wide"][day.c_str()].MemberCount(), n) << day;
    EXPECT_EQ(truth["order_wide_count"][day.c_str()].GetUint64(), n) << day;
  }
  for (const auto& det : detail_inserts) {
    const auto& order = order_inserts.at(det["order_id"].GetInt64());
    rapidjson::Document doc(rapidjson::kObjectType);
    auto& a = doc.GetAllocator();
    auto copy = [&](const char* to, const rapidjson::Value& from, const char* name) {
      if (from.HasMember(name) && !from[name].IsNull()) {
        doc.AddMember(rapidjson::StringRef(to), rapidjson::Value(from[name], a), a);
      }
    };
    copy("detail_id", det, "id");
    for (const char* f : {"order_id", "sku_id", "order_price", "sku_num", "sku_name",
                          "split_total_amount", "split_activity_amount", "split_coupon_amount"}) {
      copy(f, det, f);
    }
    for (const char* f :
         {"province_id", "order_status", "user_id", "total_amount", "activity_reduce_amount",
          "coupon_reduce_amount", "original_total_amount", "feight_fee", "feight_fee_reduce",
          "expire_time", "refundable_time", "create_time", "operate_time"}) {
      copy(f, order, f);
    }
    std::string ct = order["create_time"].GetString();
    doc.AddMember("create_date", rapidjson::Value(ct.substr(0, 10).c_str(), a), a);
    doc.AddMember("create_hour", rapidjson::Value(ct.substr(11, 2).c_str(), a), a);
    auto prov =
        Parse(kv.at("DIM:BASE_PROVINCE:" + std::to_string(order["province_id"].GetInt64())));
    copy("province_name", prov, "name");
    copy("province_area_code", prov, "area_code");
    copy("province_3166_2_code", prov, "iso_3166_2");
    copy("province_iso_code", prov, "iso_code");
    auto user = Parse(kv.at("DIM:USER_INFO:" + std::to_string(order["user_id"].GetInt64())));
    doc.AddMember("user_age", *AgeInYears(user["birthday"].GetString(), ct.substr(0, 10)), a);
    copy("user_gender", user, "gender");
    std::string id = std::to_string(det["id"].GetInt64());
    const auto& ow = truth["order_wide"][ct.substr(0, 10).c_str()];
    ASSERT_TRUE(ow.HasMember(id.c_str())) << id;
    EXPECT_TRUE(SameJson(ow[id.c_str()], doc)) << id;
  }
}

TEST(DbGenTest, TruthAgreesWithDbSplitAndAJoin) { CheckDbTruth(DbOpts(9)); }

// --days 3: orders (and updates) over three days, the truth's documents by create_date.
TEST(DbGenTest, SeveralDays) {
  DbGenOptions o = DbOpts(9);
  o.days = 3;
  CheckDbTruth(o);
  for (const auto& [key, value] : AllDb(o)) {
    auto d = Parse(value);
    if (std::string(d["table"].GetString()) != "order_info") continue;
    std::string day = std::string(d["data"]["create_time"].GetString()).substr(0, 10);
    EXPECT_TRUE(day >= "2025-11-25" && day <= "2025-11-27") << day;
  }
  o.days = 0;
  EXPECT_FALSE(ValidateDbGenOptions(o).ok());
}

// Arrival orders of real change streams: details days behind their orders, dimensions after the
// facts. The truth is the same documents and dimension rows.
TEST(DbGenTest, DetailsDaysBehindAndDimensionsLast) {
  DbGenOptions o = DbOpts(21);
  o.days = 3;
  o.detail_lag_days = 2;
  o.dims_last = true;
  CheckDbTruth(o);
  auto recs = AllDb(o);
  std::string newest_order;  // the newest order create_time delivered so far
  size_t details = 0, far_behind = 0, facts_after_dims = 0;
  bool dims_seen = false;
  for (const auto& [key, value] : recs) {
    auto d = Parse(value);
    std::string table = d["table"].GetString();
    if (table == "user_info" || table == "base_province") {
      if (std::string(d["type"].GetString()).rfind("bootstrap", 0) == 0) dims_seen = true;
      continue;
    }
    if (dims_seen) ++facts_after_dims;
    if (std::string(d["type"].GetString()) != "insert") continue;
    std::string ct = d["data"]["create_time"].GetString();
    if (table == "order_info") newest_order = std::max(newest_order, ct);
    if (table != "order_detail") continue;
    ++details;
    auto newest = LocalDateTimeToEpochMs(newest_order, o.tz);
    auto mine = LocalDateTimeToEpochMs(ct, o.tz);
    ASSERT_TRUE(newest.ok() && mine.ok());
    if (*newest - *mine > 86400000) ++far_behind;  // more than a day behind the order table
  }
  EXPECT_EQ(facts_after_dims, 0u);
  EXPECT_GT(far_behind, details / 4);
  o.detail_lag_days = 31;
  EXPECT_FALSE(ValidateDbGenOptions(o).ok());
}

TEST(DbGenTest, CreateTimesInTheDayAndIdsInCommitOrder) {
  DbGenOptions o = DbOpts(2);
  auto recs = AllDb(o);
  int64_t last_id = 0;
  int64_t last_ts = 0;
  for (const auto& [key, value] : recs) {
    auto d = Parse(value);
    EXPECT_GE(d["ts"].GetInt64(), last_ts);  // commit order
    last_ts = d["ts"].GetInt64();
    if (std::string(d["table"].GetString()) != "order_info") continue;
    std::string ct = d["data"]["create_time"].GetString();
    EXPECT_EQ(ct.substr(0, 10), "2025-11-25");
    if (std::string(d["type"].GetString()) == "insert") {
      EXPECT_EQ(d["data"]["id"].GetInt64(), last_id + 1);
      last_id = d["data"]["id"].GetInt64();
      EXPECT_TRUE(d["data"]["operate_time"].IsNull());
      EXPECT_EQ(*LocalDateTimeToEpochMs(ct, o.tz) / 1000, d["ts"].GetInt64());
    }
  }
  EXPECT_EQ(last_id, o.orders);
}

}  // namespace
}  // namespace rtdw::gen
