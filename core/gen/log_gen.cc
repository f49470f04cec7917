#include "core/gen/log_gen.h"

#include <algorithm>
#include <climits>
#include <cmath>
#include <map>
#include <optional>
#include <string_view>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "core/event_time.h"
#include "core/gen/rng.h"
#include "core/json_limits.h"
#include "rapidjson/stringbuffer.h"
#include "rapidjson/writer.h"

namespace rtdw::gen {
namespace {

using JsonWriter = rapidjson::Writer<rapidjson::StringBuffer>;

// Sub-seed streams.
enum : uint64_t {
  kDeviceStream = 1,
  kVisitStream = 2,
  kMalformedStream = 3,
  kRecordStream = 4,
  kDisorderStream = 5,
  kVisitDayStream = 6,
  kSkewStream = 7,
};

// --- The device catalogue. ---
struct BrandInfo {
  const char* brand;
  bool ios;
  const char* models[5];
  int model_count;
};
constexpr BrandInfo kBrands[] = {
    {"Xiaomi", false, {"Xiaomi 9", "Xiaomi 10 Pro", "Redmi k30"}, 3},
    {"Huawei", false, {"Huawei P30", "Huawei Mate 30"}, 2},
    {"Honor", false, {"Honor 20s"}, 1},
    {"iPhone", true, {"iPhone 8", "iPhone X", "iPhone Xs", "iPhone 11", "iPhone 13"}, 5},
    {"vivo", false, {"vivo iqoo3"}, 1},
    {"OPPO", false, {"OPPO Reno3"}, 1},
    {"oneplus", false, {"oneplus 7"}, 1},
};
constexpr double kBrandWeights[] = {20, 20, 8, 25, 10, 12, 5};
constexpr const char* kAndroidOs[] = {"Android 8.1", "Android 9.0", "Android 10.0", "Android 11.0"};
constexpr const char* kIos[] = {"iOS 12.4.1", "iOS 13.2.9", "iOS 13.3.1", "iOS 14.0"};
constexpr const char* kAndroidChannels[] = {"xiaomi", "huawei", "oppo",  "vivo",   "wandoujia",
                                            "360",    "web",    "baidu", "tencent"};
constexpr const char* kVersions[] = {"v2.1.134", "v2.1.132", "v2.1.111", "v2.0.1"};
constexpr int kProvinces = 34;

struct Device {
  uint8_t brand = 0;
  uint8_t model = 0;
  const char* os = "";
  const char* channel = "";
  const char* version = "";
  int province = 1;
  bool is_new = false;
  int64_t user = 0;     // 0: nobody logs in on it
  int64_t skew_ms = 0;  // its clock's error (LogGenOptions::clock_skew)
};

// --- Pages. ---
enum Page : uint8_t {
  kHome,
  kSearch,
  kGoodList,
  kGoodDetail,
  kGoodSpec,
  kComment,
  kCart,
  kTrade,
  kPayment,
  kMine,
  kOrdersUnpaid,
  kFavor,
  kLogin,
  kRegister,
  kActivity,
  kPageCount
};
constexpr const char* kPageNames[kPageCount] = {
    "home",          "search", "good_list", "good_detail", "good_spec",
    "comment",       "cart",   "trade",     "payment",     "mine",
    "orders_unpaid", "favor",  "login",     "register",    "activity1111"};

Page FirstPage(Rng& r) {
  constexpr Page kPages[] = {kHome, kGoodDetail, kGoodList, kSearch, kActivity, kMine};
  constexpr double kW[] = {60, 15, 8, 8, 5, 4};
  return kPages[r.Weighted(kW)];
}

Page NextPage(Page p, Rng& r) {
  switch (p) {
    case kHome: {
      constexpr Page n[] = {kGoodList, kSearch, kGoodDetail, kMine, kActivity};
      constexpr double w[] = {30, 20, 30, 10, 10};
      return n[r.Weighted(w)];
    }
    case kSearch:
      return kGoodList;
    case kGoodList: {
      constexpr Page n[] = {kGoodDetail, kSearch, kHome};
      constexpr double w[] = {80, 10, 10};
      return n[r.Weighted(w)];
    }
    case kGoodDetail: {
      constexpr Page n[] = {kCart, kGoodDetail, kGoodSpec, kComment, kTrade, kHome, kLogin};
      constexpr double w[] = {25, 20, 10, 10, 10, 20, 5};
      return n[r.Weighted(w)];
    }
    case kGoodSpec:
    case kComment:
      return kGoodDetail;
    case kCart: {
      constexpr Page n[] = {kTrade, kGoodDetail, kHome};
      constexpr double w[] = {50, 30, 20};
      return n[r.Weighted(w)];
    }
    case kTrade:
      return kPayment;
    case kPayment: {
      constexpr Page n[] = {kOrdersUnpaid, kHome};
      constexpr double w[] = {30, 70};
      return n[r.Weighted(w)];
    }
    case kMine: {
      constexpr Page n[] = {kOrdersUnpaid, kFavor, kHome, kLogin};
      constexpr double w[] = {30, 30, 20, 20};
      return n[r.Weighted(w)];
    }
    case kOrdersUnpaid:
    case kFavor:
      return r.Chance(0.5) ? kGoodDetail : kHome;
    case kLogin:
      return r.Chance(0.2) ? kRegister : kHome;
    case kRegister:
      return kHome;
    case kActivity:
      return r.Chance(0.7) ? kGoodDetail : kHome;
    case kPageCount:
      break;
  }
  return kHome;
}

bool PageHasDisplays(Page p) {
  return p == kHome || p == kGoodList || p == kGoodDetail || p == kSearch || p == kActivity;
}

constexpr const char* kDisplayTypes[] = {"query", "promotion", "recommend", "activity"};
constexpr const char* kSourceTypes[] = {"promotion", "recommend", "query", "activity"};
constexpr const char* kKeywords[] = {"小米", "iPhone", "口红", "电视", "手机", "笔记本"};
constexpr int kSkus = 35;

struct Display {
  const char* type;
  int item;
  int order;
  int pos;
};
struct Action {
  const char* id;
  int item;
  const char* item_type;
  int64_t ts;
};

// One generated record, before serialization.
struct Rec {
  bool is_start = false;
  int64_t ts = 0;
  int64_t uid = 0;  // 0: absent (not logged in)
  // start
  const char* entry = "";
  int open_ad_id = 0;
  int loading_time = 0;
  int open_ad_ms = 0;
  int open_ad_skip_ms = 0;
  // page
  Page page = kHome;
  std::optional<Page> last_page;  // absent on the first page of a visit
  bool empty_last_page = false;   // first page written with "last_page_id":""
  std::string item;               // "" = absent
  const char* item_type = nullptr;
  const char* source_type = nullptr;
  int during_time = 0;
  std::vector<Display> displays;
  std::vector<Action> actions;
  // err
  bool err = false;
  int error_code = 0;
  int error_line = 0;
};

struct Visit {
  int64_t t0 = 0;   // ts of the first page
  int32_t day = 0;  // days after the first day
  uint32_t mid = 0;
  uint32_t pages = 0;
  bool has_start = false;
  uint32_t index = 0;
};

struct Active {
  Visit v;
  Rng rng{0};
  uint32_t step = 0;  // records produced so far
  uint32_t total = 0;
  Page page = kHome;
  bool page_valid = false;  // `page` is the previous page of the visit
  int64_t cursor = 0;       // ts of the next page
  int64_t uid = 0;
  Rec rec;           // the pending record
  int64_t send = 0;  // its upload time
  // A disordered visit (LogGenOptions::disorder): added to every upload time, which stays at
  // most send_limit.
  int64_t shift = 0;
  int64_t send_limit = INT64_MAX;
};

// How a malformed record is broken (and the reason log-split must give).
enum class Break { kNone, kCut, kNotObject, kNoMid, kTsString, kBadUtf8 };
constexpr const char* kBreakReason[] = {"",       "not_json", "not_object",
                                        "no_mid", "bad_type", "bad_utf8"};

// The largest clock error of a device with --clock-skew (fast or slow), within the jobs' default
// max_future of a day.
constexpr int64_t kMaxSkewMs = 20 * 3600 * 1000;

void Str(JsonWriter& w, std::string_view s) {
  w.String(s.data(), static_cast<rapidjson::SizeType>(s.size()));
}

// The DAU truth of one device: its winning first page of the day.
struct DauWinner {
  int64_t ts = INT64_MAX;
  uint64_t order = 0;  // emission index (the input-order tie-break)
  Rec rec;
};

}  // namespace

struct LogGenerator::State {
  LogGenOptions o;
  int64_t day_start_ms = 0;
  int64_t day_end_ms = 0;
  std::vector<Device> devices;
  std::vector<Visit> visits;  // sorted by t0
  size_t next_visit = 0;
  std::vector<Active> active;
  std::vector<size_t> free_slots;
  // Min-heap of (send, visit index, slot).
  struct HeapItem {
    int64_t send;
    uint32_t visit;
    size_t slot;
    bool operator>(const HeapItem& x) const {
      return send != x.send ? send > x.send : visit > x.visit;
    }
  };
  std::priority_queue<HeapItem, std::vector<HeapItem>, std::greater<HeapItem>> heap;
  Rng malformed_rng{0};
  uint64_t emitted = 0;
  rapidjson::StringBuffer sb;

  // Truth.
  uint64_t n_start = 0, n_page = 0, n_display = 0, n_action = 0, n_error = 0;
  std::map<std::string, uint64_t> dead_by_reason;
  // (day, mid index) -> its winner.
  std::map<std::pair<std::string, uint32_t>, DauWinner> dau;
  std::vector<bool> disordered;  // by mid index
  std::optional<absl::CivilDay> newest_first_page;
  int64_t max_days_behind = 0;

  int64_t DayStartMs(int64_t d) const {
    return absl::ToUnixMillis(o.tz.At(absl::CivilSecond(o.day + d)).pre);
  }
  void Plan();
  void Activate(const Visit& v);
  void MakeRecord(Active& a);
  void Serialize(const Active& a, const Rec& r, Break brk, std::string* out);
  void Account(const Active& a, const Rec& r, Break brk);
};

void LogGenerator::State::Plan() {
  day_start_ms = absl::ToUnixMillis(o.tz.At(absl::CivilSecond(o.day)).pre);
  day_end_ms = absl::ToUnixMillis(o.tz.At(absl::CivilSecond(o.day + o.days)).pre);
  devices.resize(o.mids);
  for (int64_t m = 0; m < o.mids; ++m) {
    Rng r(Mix(o.seed, kDeviceStream, m));
    Device& d = devices[m];
    d.brand = static_cast<uint8_t>(r.Weighted(kBrandWeights));
    const BrandInfo& b = kBrands[d.brand];
    d.model = static_cast<uint8_t>(r.Uniform(b.model_count));
    d.os = b.ios ? r.Pick(kIos) : r.Pick(kAndroidOs);
    d.channel = b.ios ? "Appstore" : r.Pick(kAndroidChannels);
    d.version = r.Pick(kVersions);
    d.province = static_cast<int>(r.Range(1, kProvinces));
    d.is_new = r.Chance(0.1);
    d.user = o.users > 0 ? r.Range(1, o.users) : 0;
  }
  if (o.clock_skew > 0) {
    for (int64_t m = 0; m < o.mids; ++m) {
      Rng r(Mix(o.seed, kSkewStream, m));
      if (r.Chance(o.clock_skew)) devices[m].skew_ms = r.Range(-kMaxSkewMs, kMaxSkewMs);
    }
  }
  disordered.assign(o.mids, false);
  if (o.disorder > 0) {
    for (int64_t m = 0; m < o.mids; ++m) {
      disordered[m] = Rng(Mix(o.seed, kDisorderStream, m)).Chance(o.disorder);
    }
  }

  absl::flat_hash_set<std::pair<uint32_t, int64_t>> used;  // (mid, first-page ts)
  int64_t remaining = o.events;
  uint32_t index = 0;
  while (remaining > 0) {
    Rng r(Mix(o.seed, kVisitStream, index));
    Visit v;
    v.index = index++;
    v.has_start = r.Chance(0.85);
    int64_t pages = std::min<int64_t>(r.Geometric(6), 25);
    int64_t len = pages + (v.has_start ? 1 : 0);
    if (len > remaining) {
      len = remaining;
      pages = len - (v.has_start ? 1 : 0);
    }
    v.pages = static_cast<uint32_t>(pages);
    v.mid = static_cast<uint32_t>(std::min<int64_t>(
        o.mids - 1, static_cast<int64_t>(static_cast<double>(o.mids) * std::pow(r.Real(), 1.6))));
    // Its day (an own stream: days = 1 keeps the bytes).
    if (o.days > 1) {
      v.day = static_cast<int32_t>(Rng(Mix(o.seed, kVisitDayStream, v.index)).Range(0, o.days - 1));
    }
    const int64_t start = DayStartMs(v.day), end = DayStartMs(v.day + 1);
    const int64_t max_duration = pages * 23000 + 1000;
    const int64_t lo = start + 30000;
    const int64_t hi = std::max(lo, end - max_duration - 1);
    size_t hour = r.Weighted(kHourWeights);
    int64_t t0 = start + static_cast<int64_t>(hour) * 3600000 + r.Range(0, 3599999);
    t0 = std::clamp(t0, lo, hi);
    while (!used.insert({v.mid, t0}).second) t0 = t0 + 1 <= hi ? t0 + 1 : lo;
    v.t0 = t0;
    visits.push_back(v);
    remaining -= len;
  }
  std::sort(visits.begin(), visits.end(), [](const Visit& a, const Visit& b) {
    return a.t0 != b.t0 ? a.t0 < b.t0 : a.index < b.index;
  });
  malformed_rng = Rng(Mix(o.seed, kMalformedStream, 0));
}

void LogGenerator::State::Activate(const Visit& v) {
  size_t slot;
  if (!free_slots.empty()) {
    slot = free_slots.back();
    free_slots.pop_back();
  } else {
    slot = active.size();
    active.emplace_back();
  }
  Active& a = active[slot];
  a = Active();
  a.v = v;
  a.rng = Rng(Mix(o.seed, kRecordStream, v.index));
  a.total = v.pages + (v.has_start ? 1 : 0);
  a.cursor = v.t0;
  a.uid = a.rng.Chance(0.7) ? devices[v.mid].user : 0;
  if (disordered[v.mid] && v.day % 2 == 0) {
    // Held back to the last two hours of the next day, the day's later visits first (after the
    // device's visits of that next day, which come on time).
    const int64_t start = DayStartMs(v.day), next_end = DayStartMs(v.day + 2);
    a.shift = next_end - 3600000 - (v.t0 - start) / 24 - v.t0;
    a.send_limit = next_end - 1;
  }
  MakeRecord(a);
  heap.push(HeapItem{a.send, v.index, slot});
}

void LogGenerator::State::MakeRecord(Active& a) {
  Rng& r = a.rng;
  Rec& rec = a.rec;
  rec = Rec();
  rec.uid = a.uid;
  if (a.step == 0 && a.v.has_start) {
    rec.is_start = true;
    rec.entry = r.Chance(0.7) ? "icon" : (r.Chance(0.6) ? "notice" : "install");
    rec.open_ad_id = static_cast<int>(r.Range(1, 20));
    rec.loading_time = static_cast<int>(r.Range(1000, 20000));
    rec.open_ad_ms = static_cast<int>(r.Range(1000, 10000));
    rec.open_ad_skip_ms = r.Chance(0.5) ? 0 : static_cast<int>(r.Range(1, rec.open_ad_ms));
    rec.ts = a.v.t0 - rec.loading_time - r.Range(0, 500);
  } else {
    const bool first = !a.page_valid;
    rec.page = first ? FirstPage(r) : NextPage(a.page, r);
    if (first) {
      rec.empty_last_page = r.Chance(0.03);
    } else {
      rec.last_page = a.page;
    }
    rec.ts = a.cursor;
    rec.during_time = static_cast<int>(r.Range(1000, 20000));
    switch (rec.page) {
      case kGoodDetail:
      case kGoodSpec:
      case kComment:
        rec.item = std::to_string(r.Range(1, kSkus));
        rec.item_type = "sku_id";
        if (rec.page == kGoodDetail) rec.source_type = r.Pick(kSourceTypes);
        break;
      case kGoodList:
        if (r.Chance(0.5)) {
          rec.item = r.Pick(kKeywords);
          rec.item_type = "keyword";
        } else {
          rec.item = std::to_string(r.Range(1, 300));
          rec.item_type = "category_id";
        }
        break;
      case kTrade:
        rec.item = absl::StrCat(r.Range(1, kSkus), ",", r.Range(1, kSkus));
        rec.item_type = "sku_ids";
        break;
      case kPayment:
        rec.item = std::to_string(r.Range(1, 100000));
        rec.item_type = "order_id";
        break;
      default:
        break;
    }
    if (PageHasDisplays(rec.page)) {
      int n = static_cast<int>(r.Range(1, 10));
      for (int i = 0; i < n; ++i) {
        rec.displays.push_back(Display{r.Pick(kDisplayTypes), static_cast<int>(r.Range(1, kSkus)),
                                       i + 1, static_cast<int>(r.Range(1, 5))});
      }
    }
    auto action = [&](const char* id, double p, int item, const char* item_type) {
      if (r.Chance(p)) {
        rec.actions.push_back(
            Action{id, item, item_type, rec.ts + r.Range(0, rec.during_time - 1)});
      }
    };
    if (rec.page == kGoodDetail) {
      int sku = rec.item.empty() ? 1 : std::stoi(rec.item);
      action("favor_add", 0.15, sku, "sku_id");
      action("cart_add", 0.25, sku, "sku_id");
      action("get_coupon", 0.08, static_cast<int>(r.Range(1, 3)), "coupon_id");
    } else if (rec.page == kCart) {
      int sku = static_cast<int>(r.Range(1, kSkus));
      action("cart_add_num", 0.2, sku, "sku_id");
      action("cart_minus_num", 0.1, sku, "sku_id");
      action("cart_remove", 0.1, sku, "sku_id");
    }
    std::sort(rec.actions.begin(), rec.actions.end(),
              [](const Action& x, const Action& y) { return x.ts < y.ts; });
    a.page = rec.page;
    a.page_valid = true;
    a.cursor = rec.ts + rec.during_time + r.Range(50, 2000);
    if (rec.page == kLogin && a.uid == 0) a.uid = devices[a.v.mid].user;  // logged in from now on
  }
  if (r.Chance(o.error_share)) {
    rec.err = true;
    rec.error_code = static_cast<int>(r.Range(1001, 4999));
    rec.error_line = static_cast<int>(r.Range(1, 999999));
  }
  int64_t delay = r.Chance(0.97) ? r.Range(0, 2000) : static_cast<int64_t>(r.Exponential(60000));
  a.send = std::min(rec.ts + delay + a.shift, a.send_limit);
  // The device's clock error: its records say another time than when they happened (the upload
  // order above follows the true time).
  if (const int64_t skew = devices[a.v.mid].skew_ms; skew != 0) {
    rec.ts += skew;
    for (Action& act : rec.actions) act.ts += skew;
  }
}

void LogGenerator::State::Serialize(const Active& a, const Rec& rec, Break brk, std::string* out) {
  const Device& d = devices[a.v.mid];
  const BrandInfo& b = kBrands[d.brand];
  sb.Clear();
  JsonWriter w(sb);
  w.StartObject();
  w.Key("common");
  w.StartObject();
  w.Key("ar");
  Str(w, std::to_string(d.province));
  w.Key("ba");
  w.String(b.brand);
  w.Key("ch");
  w.String(d.channel);
  w.Key("is_new");
  w.String(d.is_new ? "1" : "0");
  w.Key("md");
  if (brk == Break::kBadUtf8) {
    Str(w, "\xff\xfe");  // Writer copies bytes as they are: invalid UTF-8 in the output
  } else {
    w.String(b.models[d.model]);
  }
  if (brk != Break::kNoMid) {
    w.Key("mid");
    Str(w, absl::StrCat("mid_", a.v.mid + 1));
  }
  w.Key("os");
  w.String(d.os);
  if (rec.uid != 0) {
    w.Key("uid");
    Str(w, std::to_string(rec.uid));
  }
  w.Key("vc");
  w.String(d.version);
  w.EndObject();
  if (rec.is_start) {
    w.Key("start");
    w.StartObject();
    w.Key("entry");
    w.String(rec.entry);
    w.Key("loading_time");
    w.Int(rec.loading_time);
    w.Key("open_ad_id");
    w.Int(rec.open_ad_id);
    w.Key("open_ad_ms");
    w.Int(rec.open_ad_ms);
    w.Key("open_ad_skip_ms");
    w.Int(rec.open_ad_skip_ms);
    w.EndObject();
  } else {
    w.Key("page");
    w.StartObject();
    w.Key("during_time");
    w.Int(rec.during_time);
    if (!rec.item.empty()) {
      w.Key("item");
      Str(w, rec.item);
      w.Key("item_type");
      w.String(rec.item_type);
    }
    if (rec.last_page) {
      w.Key("last_page_id");
      w.String(kPageNames[*rec.last_page]);
    } else if (rec.empty_last_page) {
      w.Key("last_page_id");
      w.String("");
    }
    w.Key("page_id");
    w.String(kPageNames[rec.page]);
    if (rec.source_type) {
      w.Key("source_type");
      w.String(rec.source_type);
    }
    w.EndObject();
    if (!rec.displays.empty()) {
      w.Key("displays");
      w.StartArray();
      for (const Display& x : rec.displays) {
        w.StartObject();
        w.Key("display_type");
        w.String(x.type);
        w.Key("item");
        Str(w, std::to_string(x.item));
        w.Key("item_type");
        w.String("sku_id");
        w.Key("order");
        w.Int(x.order);
        w.Key("pos_id");
        w.Int(x.pos);
        w.EndObject();
      }
      w.EndArray();
    }
    if (!rec.actions.empty()) {
      w.Key("actions");
      w.StartArray();
      for (const Action& x : rec.actions) {
        w.StartObject();
        w.Key("action_id");
        w.String(x.id);
        w.Key("item");
        Str(w, std::to_string(x.item));
        w.Key("item_type");
        w.String(x.item_type);
        w.Key("ts");
        w.Int64(x.ts);
        w.EndObject();
      }
      w.EndArray();
    }
  }
  if (rec.err) {
    w.Key("err");
    w.StartObject();
    w.Key("error_code");
    w.Int(rec.error_code);
    w.Key("msg");
    Str(w, absl::StrCat(" Exception in thread \\  java.net.SocketTimeoutException\n \tat "
                        "com.atgugu.gmall2020.mock.bean.log.AppError.main(AppError.java:",
                        rec.error_line, ")"));
    w.EndObject();
  }
  w.Key("ts");
  if (brk == Break::kTsString) {
    Str(w, std::to_string(rec.ts));
  } else {
    w.Int64(rec.ts);
  }
  w.EndObject();
  std::string_view text(sb.GetString(), sb.GetSize());
  out->clear();
  switch (brk) {
    case Break::kCut:
      out->assign(text.substr(0, Utf8PrefixLength(text, text.size() / 2)));
      break;
    case Break::kNotObject:
      out->append("[").append(text).append("]");
      break;
    default:
      out->assign(text);
  }
}

void LogGenerator::State::Account(const Active& a, const Rec& rec, Break brk) {
  if (brk != Break::kNone) {
    ++dead_by_reason[kBreakReason[static_cast<int>(brk)]];
    return;
  }
  if (rec.err) {
    ++n_error;
    return;
  }
  if (rec.is_start) {
    ++n_start;
    return;
  }
  ++n_page;
  n_display += rec.displays.size();
  n_action += rec.actions.size();
  if (!rec.last_page) {
    // How far (in days of the zone) this first page is behind the newest one before it: dau
    // judges lateness by such a watermark (docs/FORMATS.md §6), per partition, never above this
    // one.
    const absl::CivilDay day = CivilDayOf(rec.ts, o.tz);
    if (newest_first_page) {
      max_days_behind = std::max<int64_t>(max_days_behind, *newest_first_page - day);
    }
    if (!newest_first_page || day > *newest_first_page) newest_first_page = day;
    DauWinner& w = dau[{DayOf(rec.ts, o.tz), a.v.mid}];
    if (rec.ts < w.ts) {  // ties keep the earlier record (smaller input order)
      w.ts = rec.ts;
      w.order = emitted;
      w.rec = rec;
      w.rec.displays.clear();
      w.rec.actions.clear();
    }
  }
}

absl::Status ValidateLogGenOptions(const LogGenOptions& o) {
  if (o.mids < 1 || o.mids > 100000000) {
    return absl::InvalidArgumentError("--mids must be between 1 and 100000000");
  }
  if (o.users < 0 || o.users > 1000000000) {
    return absl::InvalidArgumentError("--users must be between 0 and 1000000000");
  }
  if (o.events < 0) return absl::InvalidArgumentError("--events must not be negative");
  if (!(o.error_share >= 0 && o.error_share <= 1)) {
    return absl::InvalidArgumentError("--error-share must be between 0 and 1");
  }
  if (!(o.malformed_share >= 0 && o.malformed_share <= 1)) {
    return absl::InvalidArgumentError("--malformed-share must be between 0 and 1");
  }
  if (o.days < 1 || o.days > 366) return absl::InvalidArgumentError("--days must be 1 to 366");
  if (!(o.disorder >= 0 && o.disorder <= 1)) {
    return absl::InvalidArgumentError("--disorder must be between 0 and 1");
  }
  if (!(o.clock_skew >= 0 && o.clock_skew <= 1)) {
    return absl::InvalidArgumentError("--clock-skew must be between 0 and 1");
  }
  return absl::OkStatus();
}

LogGenerator::LogGenerator(const LogGenOptions& options) : s_(new State) {
  s_->o = options;
  s_->Plan();
}

LogGenerator::~LogGenerator() = default;

uint64_t LogGenerator::emitted() const { return s_->emitted; }

bool LogGenerator::Next(std::string* value) {
  std::string mid;
  return Next(&mid, value);
}

bool LogGenerator::Next(std::string* mid, std::string* value) {
  State& s = *s_;
  // Start every visit that may have a record due before the earliest pending one. A visit's
  // records are never earlier than t0 - 21 s (its start record), and upload times are never
  // before event times.
  while (s.next_visit < s.visits.size() &&
         (s.heap.empty() || s.visits[s.next_visit].t0 - 25000 <= s.heap.top().send)) {
    s.Activate(s.visits[s.next_visit++]);
  }
  if (s.heap.empty()) return false;
  auto top = s.heap.top();
  s.heap.pop();
  Active& a = s.active[top.slot];
  Break brk = Break::kNone;
  if (s.o.malformed_share > 0 && s.malformed_rng.Chance(s.o.malformed_share)) {
    brk = static_cast<Break>(1 + s.malformed_rng.Uniform(5));
  }
  s.Serialize(a, a.rec, brk, value);
  *mid = absl::StrCat("mid_", a.v.mid + 1);
  s.Account(a, a.rec, brk);
  ++s.emitted;
  if (++a.step < a.total) {
    s.MakeRecord(a);
    s.heap.push(State::HeapItem{a.send, a.v.index, top.slot});
  } else {
    s.free_slots.push_back(top.slot);
  }
  return true;
}

std::string LogGenerator::TruthJson() const {
  const State& s = *s_;
  rapidjson::StringBuffer sb;
  JsonWriter w(sb);
  w.StartObject();
  w.Key("kind");
  w.String("logs");
  w.Key("version");
  w.Int(1);
  w.Key("seed");
  w.Uint64(s.o.seed);
  w.Key("day");
  Str(w, absl::FormatCivilTime(s.o.day));
  w.Key("time_zone");
  Str(w, s.o.time_zone);
  w.Key("options");
  w.StartObject();
  w.Key("mids");
  w.Int64(s.o.mids);
  w.Key("users");
  w.Int64(s.o.users);
  w.Key("events");
  w.Int64(s.o.events);
  w.Key("error_share");
  w.Double(s.o.error_share);
  w.Key("malformed_share");
  w.Double(s.o.malformed_share);
  if (s.o.days > 1) {
    w.Key("days");
    w.Int(s.o.days);
  }
  if (s.o.disorder > 0) {
    w.Key("disorder");
    w.Double(s.o.disorder);
  }
  if (s.o.clock_skew > 0) {
    w.Key("clock_skew");
    w.Double(s.o.clock_skew);
  }
  w.EndObject();
  if (s.o.days > 1 || s.o.disorder > 0 || s.o.clock_skew > 0) {
    // docs/FORMATS.md §6: no first page arrives more than max_days_behind days behind the newest
    // one before it, so with dedup.retention_days >= this + 1 none is late (every `dau` document
    // exists), whatever the partitioning.
    w.Key("late_below_retention_days");
    w.Int64(s.max_days_behind + 1);
  }
  w.Key("records");
  w.Uint64(s.emitted);
  w.Key("dwd");
  w.StartObject();
  w.Key("DWD_START_LOG_TOPIC");
  w.Uint64(s.n_start);
  w.Key("DWD_PAGE_LOG_TOPIC");
  w.Uint64(s.n_page);
  w.Key("DWD_PAGE_DISPLAY_TOPIC");
  w.Uint64(s.n_display);
  w.Key("DWD_PAGE_ACTION_TOPIC");
  w.Uint64(s.n_action);
  w.Key("DWD_ERROR_LOG_TOPIC");
  w.Uint64(s.n_error);
  uint64_t dead = 0;
  for (const auto& [reason, n] : s.dead_by_reason) dead += n;
  w.Key("DWD_DEAD_LETTER");
  w.Uint64(dead);
  w.EndObject();
  w.Key("dead_letters");
  w.StartObject();
  for (const auto& [reason, n] : s.dead_by_reason) {
    Str(w, reason);
    w.Uint64(n);
  }
  w.EndObject();

  // DAU documents by day, mids in index order.
  std::map<std::string,
           std::vector<const std::pair<const std::pair<std::string, uint32_t>, DauWinner>*>>
      by_day;
  for (const auto& entry : s.dau) by_day[entry.first.first].push_back(&entry);
  w.Key("dau_count");
  w.StartObject();
  for (const auto& [day, mids] : by_day) {
    Str(w, day);
    w.Uint64(mids.size());
  }
  w.EndObject();
  w.Key("dau");
  w.StartObject();
  for (const auto& [day, mids] : by_day) {
    Str(w, day);
    w.StartObject();
    for (const auto* entry : mids) {
      const uint32_t m = entry->first.second;
      const DauWinner& win = entry->second;
      const Rec& r = win.rec;
      const Device& d = s.devices[m];
      std::string mid = absl::StrCat("mid_", m + 1);
      Str(w, mid);
      w.StartObject();
      w.Key("mid");
      Str(w, mid);
      if (r.uid != 0) {
        w.Key("user_id");
        Str(w, std::to_string(r.uid));
      }
      w.Key("province_id");
      Str(w, std::to_string(d.province));
      w.Key("channel");
      w.String(d.channel);
      w.Key("is_new");
      w.String(d.is_new ? "1" : "0");
      w.Key("model");
      w.String(kBrands[d.brand].models[d.model]);
      w.Key("operate_system");
      w.String(d.os);
      w.Key("version_code");
      w.String(d.version);
      w.Key("brand");
      w.String(kBrands[d.brand].brand);
      w.Key("page_id");
      w.String(kPageNames[r.page]);
      if (!r.item.empty()) {
        w.Key("page_item");
        Str(w, r.item);
        w.Key("page_item_type");
        w.String(r.item_type);
      }
      if (r.source_type) {
        w.Key("source_type");
        w.String(r.source_type);
      }
      w.Key("during_time");
      w.Int(r.during_time);
      DayHour dh = DayHourOf(r.ts, s.o.tz);
      w.Key("dt");
      Str(w, dh.day_view());
      w.Key("hr");
      Str(w, dh.hour_view());
      w.Key("ts");
      w.Int64(r.ts);
      w.EndObject();
    }
    w.EndObject();
  }
  w.EndObject();
  w.EndObject();
  return std::string(sb.GetString(), sb.GetSize());
}

}  // namespace rtdw::gen
