#include "core/gen/db_gen.h"

#include <algorithm>
#include <cstdio>
#include <map>
#include <optional>
#include <string_view>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/event_time.h"
#include "core/gen/rng.h"
#include "rapidjson/stringbuffer.h"
#include "rapidjson/writer.h"

namespace rtdw::gen {
namespace {

using JsonWriter = rapidjson::Writer<rapidjson::StringBuffer>;

enum : uint64_t {
  kUserStream = 11,
  kOrderPlanStream = 12,
  kOrderStream = 13,
  kOrderUpdateStream = 14,
  kUserUpdatePlanStream = 15,
  kUserUpdateStream = 16,
  kOrderDayStream = 17,
};

void Str(JsonWriter& w, std::string_view s) {
  w.String(s.data(), static_cast<rapidjson::SizeType>(s.size()));
}

// An amount in cents, written as a JSON number with two decimals (8197.00), as Maxwell writes a
// DECIMAL(16,2).
void Money(JsonWriter& w, int64_t cents) {
  char buf[32];
  int n = std::snprintf(buf, sizeof(buf), "%s%lld.%02lld", cents < 0 ? "-" : "",
                        static_cast<long long>(std::llabs(cents) / 100),
                        static_cast<long long>(std::llabs(cents) % 100));
  w.RawValue(buf, static_cast<size_t>(n), rapidjson::kNumberType);
}

// --- Reference data. ---
struct ProvinceInfo {
  const char* name;
  const char* region_id;
  const char* area_code;
  const char* iso_code;
  const char* iso_3166_2;
};
constexpr ProvinceInfo kProvinceInfo[] = {
    {"北京", "1", "110000", "CN-11", "CN-BJ"},   {"天津", "1", "120000", "CN-12", "CN-TJ"},
    {"河北", "1", "130000", "CN-13", "CN-HE"},   {"山西", "1", "140000", "CN-14", "CN-SX"},
    {"内蒙古", "1", "150000", "CN-15", "CN-NM"}, {"辽宁", "3", "210000", "CN-21", "CN-LN"},
    {"吉林", "3", "220000", "CN-22", "CN-JL"},   {"黑龙江", "3", "230000", "CN-23", "CN-HL"},
    {"上海", "2", "310000", "CN-31", "CN-SH"},   {"江苏", "2", "320000", "CN-32", "CN-JS"},
    {"浙江", "2", "330000", "CN-33", "CN-ZJ"},   {"安徽", "2", "340000", "CN-34", "CN-AH"},
    {"福建", "2", "350000", "CN-35", "CN-FJ"},   {"江西", "2", "360000", "CN-36", "CN-JX"},
    {"山东", "2", "370000", "CN-37", "CN-SD"},   {"河南", "4", "410000", "CN-41", "CN-HA"},
    {"湖北", "4", "420000", "CN-42", "CN-HB"},   {"湖南", "4", "430000", "CN-43", "CN-HN"},
    {"广东", "5", "440000", "CN-44", "CN-GD"},   {"广西", "5", "450000", "CN-45", "CN-GX"},
    {"海南", "5", "460000", "CN-46", "CN-HI"},   {"重庆", "6", "500000", "CN-50", "CN-CQ"},
    {"四川", "6", "510000", "CN-51", "CN-SC"},   {"贵州", "6", "520000", "CN-52", "CN-GZ"},
    {"云南", "6", "530000", "CN-53", "CN-YN"},   {"西藏", "6", "540000", "CN-54", "CN-XZ"},
    {"陕西", "7", "610000", "CN-61", "CN-SN"},   {"甘肃", "7", "620000", "CN-62", "CN-GS"},
    {"青海", "7", "630000", "CN-63", "CN-QH"},   {"宁夏", "7", "640000", "CN-64", "CN-NX"},
    {"新疆", "7", "650000", "CN-65", "CN-XJ"},   {"台湾", "8", "710000", "CN-71", "CN-TW"},
    {"香港", "8", "810000", "CN-91", "CN-HK"},   {"澳门", "8", "820000", "CN-92", "CN-MO"},
};

struct SkuBase {
  const char* name;
  int64_t price_cents;
};
constexpr SkuBase kSkuBases[] = {
    {"小米10 至尊纪念版 双模5G 骁龙865 120HZ高刷新率 8GB+128GB 透明版", 599900},
    {"Redmi 10X 4G Helio G85游戏芯 4800万超清四摄 4GB+128GB 冰雾白", 99900},
    {"Apple iPhone 12 (A2404) 64GB 黑色 支持移动联通电信5G 双卡双待手机", 819700},
    {"华为 HUAWEI P40 麒麟990 5G SoC芯片 5000万超感知徕卡三摄 8GB+128GB", 418800},
    {"TCL 65Q10 65英寸 QLED原色量子点电视 安桥音响 AI声控智慧屏", 699900},
    {"小米电视 内置小爱 智能网络液晶平板教育电视 E65X 65英寸", 299900},
    {"联想(Lenovo) 拯救者Y7000P 2020 15.6英寸游戏笔记本电脑", 699900},
    {"CAREMiLLE珂曼奶油小方口红 雾面滋润保湿持久丝缎唇膏 M01醉蔷薇", 6900},
    {"索芙特i-Softto 口红不掉色唇膏保湿滋润 璀璨金钻哑光唇膏 Z02少女红", 12900},
    {"金沙河面条 原味银丝挂面 龙须面 方便速食拉面 清汤面 900g", 1190},
    {"长粒香大米 东北大米 5kg", 4990},
    {"Dior迪奥口红唇膏 烈艳蓝金999+888两支装礼盒", 49600},
};
constexpr const char* kSkuVariants[] = {"", " 经典款", " 尊享版", " 礼盒装"};
constexpr int kSkus = 35;

std::string SkuName(int sku) {  // sku in [1, kSkus]
  const SkuBase& b = kSkuBases[(sku - 1) % std::size(kSkuBases)];
  return absl::StrCat(b.name, kSkuVariants[((sku - 1) / std::size(kSkuBases)) % 4]);
}
int64_t SkuPrice(int sku) {
  const SkuBase& b = kSkuBases[(sku - 1) % std::size(kSkuBases)];
  return b.price_cents + ((sku - 1) / static_cast<int64_t>(std::size(kSkuBases))) * 1000;
}

constexpr const char* kSurnames[] = {"王", "李", "张", "刘", "陈", "杨", "赵", "黄", "周", "吴",
                                     "徐", "孙", "胡", "朱", "高", "林", "何", "郭", "马", "罗"};
constexpr const char* kGiven[] = {"伟", "芳", "娜",   "秀英", "敏", "静", "丽",  "强",
                                  "磊", "军", "洋",   "勇",   "艳", "杰", "娟",  "涛",
                                  "明", "超", "秀兰", "霞",   "平", "刚", "桂英"};
constexpr const char* kNicks[] = {"阿三", "小美", "大壮", "豆豆", "乐乐", "阿福", "小七", "天天"};
constexpr const char* kMailDomains[] = {"163.com", "qq.com", "gmail.com", "126.com", "sina.com"};

std::string Digits(Rng& r, int n) {
  std::string s;
  for (int i = 0; i < n; ++i) s.push_back(static_cast<char>('0' + r.Uniform(10)));
  return s;
}

std::string Lower(Rng& r, int n) {
  std::string s;
  for (int i = 0; i < n; ++i) s.push_back(static_cast<char>('a' + r.Uniform(26)));
  return s;
}

// --- Rows. ---
struct UserRow {
  int64_t id = 0;
  std::string login_name, nick_name, name, phone_num, email, user_level, birthday, gender,
      create_time;
  std::optional<std::string> operate_time;  // null until updated
};

struct DetailRow {
  int64_t id = 0;
  int sku_id = 0;
  std::string sku_name;
  int64_t order_price = 0;  // cents
  int sku_num = 0;
  int64_t split_total = 0, split_activity = 0, split_coupon = 0;  // cents
};

struct OrderRow {
  int64_t id = 0;
  std::string consignee;
  int64_t total = 0;  // cents
  std::string order_status = "1001";
  int64_t user_id = 0;
  std::string payment_way = "3501";
  std::string out_trade_no;
  std::string trade_body;
  std::string create_time;
  std::optional<std::string> operate_time;
  std::string expire_time;
  int64_t province_id = 0;
  int64_t activity_reduce = 0, coupon_reduce = 0, original_total = 0, feight_fee = 0,
          feight_fee_reduce = 0;
  std::string refundable_time;
  std::vector<DetailRow> details;
};

struct OrderPlan {
  int64_t create_s = 0;  // epoch seconds
  uint32_t gen_index = 0;
  int64_t id = 0;
  int64_t first_detail_id = 0;
  int n_details = 0;
};

struct OrderUpdate {
  std::string status;
  int64_t time_s = 0;
};

enum class EvKind : uint8_t { kOrderInsert, kOrderUpdate, kUserUpdate, kDetailInsert };
struct Event {
  int64_t time_s;
  uint64_t seq;
  EvKind kind;
  uint32_t a;  // order plan index / user index (0-based)
  uint32_t b;  // update number (1-based)
};

}  // namespace

struct DbGenerator::State {
  DbGenOptions o;
  int64_t day_start_s = 0, day_end_s = 0, boot_s = 0;
  std::vector<OrderPlan> orders;                        // by id - 1
  std::vector<std::vector<OrderUpdate>> order_updates;  // by id - 1
  std::vector<std::vector<int64_t>> user_updates;       // by user index: times (s)
  std::vector<Event> events;
  uint64_t order_update_count = 0, user_update_count = 0, detail_count = 0;

  // Emission cursor.
  enum class Phase { kUserBoot, kProvinceBoot, kEvents, kDone } phase = Phase::kUserBoot;
  int64_t boot_i = 0;  // 0 = start marker, 1..n rows, n+1 = complete marker
  size_t event_i = 0;
  std::optional<OrderRow> pending_order;  // an order whose details are being emitted
  size_t pending_detail = 0;
  int64_t xid = 100000;
  bool booted = false;  // dims_last: the bootstraps were emitted
  uint64_t emitted = 0;
  rapidjson::StringBuffer sb;

  std::string Local(int64_t epoch_s) const { return FormatLocalDateTime(epoch_s * 1000, o.tz); }
  UserRow MakeUser(int64_t index, uint32_t updates) const;  // after `updates` updates
  OrderRow MakeOrder(const OrderPlan& p) const;
  void Plan();
  void WriteUser(JsonWriter& w, const UserRow& u) const;
  void WriteProvince(JsonWriter& w, int64_t id) const;
  void WriteOrder(JsonWriter& w, const OrderRow& r) const;
  void WriteDetail(JsonWriter& w, const OrderRow& r, const DetailRow& d) const;
  // Starts a Maxwell record; the caller writes "data" (and "old") and ends the object.
  void Begin(JsonWriter& w, std::string_view table, std::string_view type, int64_t ts_s,
             std::optional<int64_t> xid, bool commit, int64_t xoffset) const;
};

UserRow DbGenerator::State::MakeUser(int64_t index, uint32_t updates) const {
  Rng r(Mix(o.seed, kUserStream, index));
  UserRow u;
  u.id = index + 1;
  u.login_name = Lower(r, static_cast<int>(r.Range(6, 10)));
  u.nick_name = r.Pick(kNicks);
  u.name = absl::StrCat(r.Pick(kSurnames), r.Pick(kGiven));
  u.phone_num = absl::StrCat("13", Digits(r, 9));
  u.email = absl::StrCat(u.login_name, "@", r.Pick(kMailDomains));
  u.user_level = std::to_string(r.Range(1, 3));
  absl::CivilDay birthday = o.day - r.Range(15 * 365, 65 * 365);
  u.birthday = absl::FormatCivilTime(birthday);
  u.gender = r.Chance(0.5) ? "F" : "M";
  int64_t created = day_start_s - r.Range(1, 1000) * 86400 + r.Range(0, 86399);
  u.create_time = Local(created);
  for (uint32_t k = 1; k <= updates; ++k) {
    Rng ur(Mix(o.seed, kUserUpdateStream, static_cast<uint64_t>(index) * 16 + k));
    switch (ur.Uniform(3)) {
      case 0:
        u.nick_name = ur.Pick(kNicks);
        break;
      case 1:
        u.user_level = std::to_string(ur.Range(1, 3));
        break;
      default:
        u.phone_num = absl::StrCat("13", Digits(ur, 9));
        break;
    }
    u.operate_time = Local(user_updates[index][k - 1]);
  }
  return u;
}

OrderRow DbGenerator::State::MakeOrder(const OrderPlan& p) const {
  Rng r(Mix(o.seed, kOrderStream, p.gen_index));
  OrderRow row;
  row.id = p.id;
  row.consignee = absl::StrCat(r.Pick(kSurnames), r.Pick(kGiven));
  row.user_id = r.Range(1, o.users);
  row.province_id = r.Range(1, o.provinces);
  row.out_trade_no = Digits(r, 15);
  row.create_time = Local(p.create_s);
  row.expire_time = Local(p.create_s + 15 * 60);
  row.refundable_time = Local(p.create_s + 7 * 86400);
  for (int i = 0; i < p.n_details; ++i) {
    DetailRow d;
    d.id = p.first_detail_id + i;
    d.sku_id = static_cast<int>(r.Range(1, kSkus));
    d.sku_name = SkuName(d.sku_id);
    d.order_price = SkuPrice(d.sku_id);
    d.sku_num = static_cast<int>(r.Range(1, 3));
    row.original_total += d.order_price * d.sku_num;
    row.details.push_back(std::move(d));
  }
  if (r.Chance(0.3)) row.activity_reduce = row.original_total * r.Range(5, 20) / 100;
  if (r.Chance(0.2)) {
    row.coupon_reduce =
        std::min(r.Range(10, 50) * 100, (row.original_total - row.activity_reduce) / 2);
  }
  row.feight_fee = r.Range(5, 20) * 100;
  if (row.original_total >= 9900 && r.Chance(0.5)) row.feight_fee_reduce = row.feight_fee;
  row.total = row.original_total - row.activity_reduce - row.coupon_reduce + row.feight_fee -
              row.feight_fee_reduce;
  // Split the reductions over the details in proportion to their amounts; the last takes the
  // rounding rest.
  int64_t act_left = row.activity_reduce, coupon_left = row.coupon_reduce;
  for (size_t i = 0; i < row.details.size(); ++i) {
    DetailRow& d = row.details[i];
    int64_t line = d.order_price * d.sku_num;
    if (i + 1 == row.details.size()) {
      d.split_activity = act_left;
      d.split_coupon = coupon_left;
    } else {
      d.split_activity = row.activity_reduce * line / row.original_total;
      d.split_coupon = row.coupon_reduce * line / row.original_total;
    }
    act_left -= d.split_activity;
    coupon_left -= d.split_coupon;
    d.split_total = line - d.split_activity - d.split_coupon;
  }
  row.trade_body = absl::StrCat(row.details[0].sku_name, "等", row.details.size(), "件商品");
  return row;
}

void DbGenerator::State::Plan() {
  day_start_s = absl::ToUnixSeconds(o.tz.At(absl::CivilSecond(o.day)).pre);
  day_end_s = absl::ToUnixSeconds(o.tz.At(absl::CivilSecond(o.day + o.days)).pre);
  boot_s = day_start_s - 3600;

  // Orders: create times over the days, ids in commit order.
  orders.resize(o.orders);
  for (int64_t i = 0; i < o.orders; ++i) {
    Rng r(Mix(o.seed, kOrderPlanStream, i));
    int64_t d = 0;  // which day (its own stream: days = 1 keeps the bytes)
    if (o.days > 1) d = Rng(Mix(o.seed, kOrderDayStream, i)).Range(0, o.days - 1);
    const int64_t start = absl::ToUnixSeconds(o.tz.At(absl::CivilSecond(o.day + d)).pre);
    const int64_t end = absl::ToUnixSeconds(o.tz.At(absl::CivilSecond(o.day + d + 1)).pre);
    size_t hour = r.Weighted(kHourWeights);
    int64_t t = start + static_cast<int64_t>(hour) * 3600 + r.Range(0, 3599);
    orders[i].create_s = std::min(t, end - 1);
    orders[i].gen_index = static_cast<uint32_t>(i);
    orders[i].n_details = static_cast<int>(r.Range(1, 5));
  }
  std::sort(orders.begin(), orders.end(), [](const OrderPlan& a, const OrderPlan& b) {
    return a.create_s != b.create_s ? a.create_s < b.create_s : a.gen_index < b.gen_index;
  });
  int64_t next_detail = 1;
  for (size_t i = 0; i < orders.size(); ++i) {
    orders[i].id = static_cast<int64_t>(i) + 1;
    orders[i].first_detail_id = next_detail;
    next_detail += orders[i].n_details;
  }
  detail_count = static_cast<uint64_t>(next_detail - 1);

  uint64_t seq = 0;
  order_updates.resize(orders.size());
  for (size_t i = 0; i < orders.size(); ++i) {
    const OrderPlan& p = orders[i];
    events.push_back(Event{p.create_s, seq++, EvKind::kOrderInsert, static_cast<uint32_t>(i), 0});
    if (o.detail_lag_days > 0) {
      events.push_back(Event{p.create_s + int64_t{86400} * o.detail_lag_days, seq++,
                             EvKind::kDetailInsert, static_cast<uint32_t>(i), 0});
    }
    Rng r(Mix(o.seed, kOrderUpdateStream, p.gen_index));
    std::vector<OrderUpdate>& ups = order_updates[i];
    if (r.Chance(0.8)) {
      int64_t paid = p.create_s + r.Range(60, 900);
      ups.push_back({"1002", paid});
      if (r.Chance(0.5)) ups.push_back({"1004", paid + r.Range(3600, 6 * 3600)});
    } else if (r.Chance(0.5)) {
      ups.push_back({"1003", p.create_s + 900});
    }
    while (!ups.empty() && ups.back().time_s >= day_end_s) ups.pop_back();
    for (size_t k = 0; k < ups.size(); ++k) {
      events.push_back(Event{ups[k].time_s, seq++, EvKind::kOrderUpdate, static_cast<uint32_t>(i),
                             static_cast<uint32_t>(k + 1)});
    }
    order_update_count += ups.size();
  }

  user_updates.resize(o.users);
  for (int64_t u = 0; u < o.users; ++u) {
    Rng r(Mix(o.seed, kUserUpdatePlanStream, u));
    if (!r.Chance(o.user_update_share)) continue;
    int n = static_cast<int>(r.Range(1, 3));
    std::vector<int64_t>& times = user_updates[u];
    for (int k = 0; k < n; ++k) times.push_back(day_start_s + r.Range(0, 86400 * o.days - 1));
    std::sort(times.begin(), times.end());
    for (size_t k = 1; k < times.size(); ++k) times[k] = std::max(times[k], times[k - 1] + 1);
    while (!times.empty() && times.back() >= day_end_s) times.pop_back();
    for (size_t k = 0; k < times.size(); ++k) {
      events.push_back(Event{times[k], seq++, EvKind::kUserUpdate, static_cast<uint32_t>(u),
                             static_cast<uint32_t>(k + 1)});
    }
    user_update_count += times.size();
  }
  std::sort(events.begin(), events.end(), [](const Event& a, const Event& b) {
    return a.time_s != b.time_s ? a.time_s < b.time_s : a.seq < b.seq;
  });
  if (o.dims_last) {
    phase = Phase::kEvents;
    boot_s = (events.empty() ? day_end_s : std::max(day_end_s, events.back().time_s)) + 60;
  }
}

void DbGenerator::State::Begin(JsonWriter& w, std::string_view table, std::string_view type,
                               int64_t ts_s, std::optional<int64_t> x, bool commit,
                               int64_t xoffset) const {
  w.StartObject();
  w.Key("database");
  w.String("gmall");
  w.Key("table");
  Str(w, table);
  w.Key("type");
  Str(w, type);
  w.Key("ts");
  w.Int64(ts_s);
  if (x) {
    w.Key("xid");
    w.Int64(*x);
    if (commit) {
      w.Key("commit");
      w.Bool(true);
    } else {
      w.Key("xoffset");
      w.Int64(xoffset);
    }
  }
}

void DbGenerator::State::WriteUser(JsonWriter& w, const UserRow& u) const {
  w.StartObject();
  w.Key("id");
  w.Int64(u.id);
  w.Key("login_name");
  Str(w, u.login_name);
  w.Key("nick_name");
  Str(w, u.nick_name);
  w.Key("name");
  Str(w, u.name);
  w.Key("phone_num");
  Str(w, u.phone_num);
  w.Key("email");
  Str(w, u.email);
  w.Key("user_level");
  Str(w, u.user_level);
  w.Key("birthday");
  Str(w, u.birthday);
  w.Key("gender");
  Str(w, u.gender);
  w.Key("create_time");
  Str(w, u.create_time);
  w.Key("operate_time");
  if (u.operate_time) {
    Str(w, *u.operate_time);
  } else {
    w.Null();
  }
  w.Key("status");
  w.Null();
  w.EndObject();
}

void DbGenerator::State::WriteProvince(JsonWriter& w, int64_t id) const {
  w.StartObject();
  w.Key("id");
  w.Int64(id);
  if (id <= static_cast<int64_t>(std::size(kProvinceInfo))) {
    const ProvinceInfo& p = kProvinceInfo[id - 1];
    w.Key("name");
    w.String(p.name);
    w.Key("region_id");
    w.String(p.region_id);
    w.Key("area_code");
    w.String(p.area_code);
    w.Key("iso_code");
    w.String(p.iso_code);
    w.Key("iso_3166_2");
    w.String(p.iso_3166_2);
  } else {
    w.Key("name");
    Str(w, absl::StrCat("Province ", id));
    w.Key("region_id");
    w.String("9");
    w.Key("area_code");
    Str(w, absl::StrCat(900000 + id));
    w.Key("iso_code");
    Str(w, absl::StrCat("XX-", id));
    w.Key("iso_3166_2");
    Str(w, absl::StrCat("XX-P", id));
  }
  w.EndObject();
}

void DbGenerator::State::WriteOrder(JsonWriter& w, const OrderRow& r) const {
  w.StartObject();
  w.Key("id");
  w.Int64(r.id);
  w.Key("consignee");
  Str(w, r.consignee);
  w.Key("total_amount");
  Money(w, r.total);
  w.Key("order_status");
  Str(w, r.order_status);
  w.Key("user_id");
  w.Int64(r.user_id);
  w.Key("payment_way");
  Str(w, r.payment_way);
  w.Key("out_trade_no");
  Str(w, r.out_trade_no);
  w.Key("trade_body");
  Str(w, r.trade_body);
  w.Key("create_time");
  Str(w, r.create_time);
  w.Key("operate_time");
  if (r.operate_time) {
    Str(w, *r.operate_time);
  } else {
    w.Null();
  }
  w.Key("expire_time");
  Str(w, r.expire_time);
  w.Key("province_id");
  w.Int64(r.province_id);
  w.Key("activity_reduce_amount");
  Money(w, r.activity_reduce);
  w.Key("coupon_reduce_amount");
  Money(w, r.coupon_reduce);
  w.Key("original_total_amount");
  Money(w, r.original_total);
  w.Key("feight_fee");
  Money(w, r.feight_fee);
  w.Key("feight_fee_reduce");
  Money(w, r.feight_fee_reduce);
  w.Key("refundable_time");
  Str(w, r.refundable_time);
  w.EndObject();
}

void DbGenerator::State::WriteDetail(JsonWriter& w, const OrderRow& r, const DetailRow& d) const {
  w.StartObject();
  w.Key("id");
  w.Int64(d.id);
  w.Key("order_id");
  w.Int64(r.id);
  w.Key("sku_id");
  w.Int64(d.sku_id);
  w.Key("sku_name");
  Str(w, d.sku_name);
  w.Key("order_price");
  Money(w, d.order_price);
  w.Key("sku_num");
  w.Int64(d.sku_num);
  w.Key("create_time");
  Str(w, r.create_time);
  w.Key("split_total_amount");
  Money(w, d.split_total);
  w.Key("split_activity_amount");
  Money(w, d.split_activity);
  w.Key("split_coupon_amount");
  Money(w, d.split_coupon);
  w.EndObject();
}

absl::Status ValidateDbGenOptions(const DbGenOptions& o) {
  if (o.users < 1 || o.users > 100000000) {
    return absl::InvalidArgumentError("--users must be between 1 and 100000000");
  }
  if (o.orders < 0 || o.orders > 100000000) {
    return absl::InvalidArgumentError("--orders must be between 0 and 100000000");
  }
  if (o.provinces < 1 || o.provinces > 10000) {
    return absl::InvalidArgumentError("--provinces must be between 1 and 10000");
  }
  if (!(o.user_update_share >= 0 && o.user_update_share <= 1)) {
    return absl::InvalidArgumentError("--user-update-share must be between 0 and 1");
  }
  if (o.days < 1 || o.days > 366) return absl::InvalidArgumentError("--days must be 1 to 366");
  if (o.detail_lag_days < 0 || o.detail_lag_days > 30) {
    return absl::InvalidArgumentError("--detail-lag-days must be 0 to 30");
  }
  return absl::OkStatus();
}

DbGenerator::DbGenerator(const DbGenOptions& options) : s_(new State) {
  s_->o = options;
  s_->Plan();
}

DbGenerator::~DbGenerator() = default;

uint64_t DbGenerator::emitted() const { return s_->emitted; }

bool DbGenerator::Next(std::string* key, std::string* value) {
  State& s = *s_;
  s.sb.Clear();
  JsonWriter w(s.sb);
  key->clear();
  for (;;) {
    if (s.phase == State::Phase::kUserBoot || s.phase == State::Phase::kProvinceBoot) {
      const bool users = s.phase == State::Phase::kUserBoot;
      const char* table = users ? "user_info" : "base_province";
      const int64_t n = users ? s.o.users : s.o.provinces;
      const int64_t i = s.boot_i++;
      if (i == 0 || i == n + 1) {
        s.Begin(w, table, i == 0 ? "bootstrap-start" : "bootstrap-complete", s.boot_s, {}, false,
                0);
        w.Key("data");
        w.StartObject();
        w.EndObject();
        *key = table;
        if (i == n + 1) {
          s.phase = users           ? State::Phase::kProvinceBoot
                    : s.o.dims_last ? State::Phase::kDone
                                    : State::Phase::kEvents;
          s.boot_i = 0;
        }
      } else {
        s.Begin(w, table, "bootstrap-insert", s.boot_s, {}, false, 0);
        w.Key("data");
        if (users) {
          // A bootstrap after the changes reads the rows as they are then.
          s.WriteUser(w, s.MakeUser(i - 1, s.o.dims_last
                                               ? static_cast<uint32_t>(s.user_updates[i - 1].size())
                                               : 0));
        } else {
          s.WriteProvince(w, i);
        }
        *key = std::to_string(i);
      }
      break;
    }
    if (s.phase == State::Phase::kDone) return false;
    // Events.
    if (s.pending_order) {
      const OrderRow& r = *s.pending_order;
      const DetailRow& d = r.details[s.pending_detail];
      const bool last = s.pending_detail + 1 == r.details.size();
      s.Begin(w, "order_detail", "insert", s.orders[r.id - 1].create_s, s.xid, last,
              static_cast<int64_t>(s.pending_detail + 1));
      w.Key("data");
      s.WriteDetail(w, r, d);
      *key = std::to_string(r.id);
      if (last) {
        s.pending_order.reset();
        ++s.xid;
      } else {
        ++s.pending_detail;
      }
      break;
    }
    if (s.event_i >= s.events.size()) {
      if (s.o.dims_last && !s.booted) {
        s.booted = true;
        s.phase = State::Phase::kUserBoot;
        continue;
      }
      s.phase = State::Phase::kDone;
      return false;
    }
    const Event& e = s.events[s.event_i++];
    if (e.kind == EvKind::kDetailInsert) {  // detail_lag_days: the details' own transaction
      s.pending_order = s.MakeOrder(s.orders[e.a]);
      s.pending_detail = 0;
      continue;
    }
    if (e.kind == EvKind::kOrderInsert) {
      OrderRow r = s.MakeOrder(s.orders[e.a]);
      const bool alone = s.o.detail_lag_days > 0;  // its details come later
      s.Begin(w, "order_info", "insert", e.time_s, alone ? s.xid++ : s.xid, alone, 0);
      w.Key("data");
      s.WriteOrder(w, r);
      *key = std::to_string(r.id);
      if (!alone) {
        s.pending_order = std::move(r);
        s.pending_detail = 0;
      }
    } else if (e.kind == EvKind::kOrderUpdate) {
      OrderRow r = s.MakeOrder(s.orders[e.a]);
      const auto& ups = s.order_updates[e.a];
      std::string old_status = r.order_status;
      std::optional<std::string> old_time;
      for (uint32_t k = 0; k < e.b; ++k) {
        old_status = r.order_status;
        old_time = r.operate_time;
        r.order_status = ups[k].status;
        r.operate_time = s.Local(ups[k].time_s);
      }
      s.Begin(w, "order_info", "update", e.time_s, s.xid++, true, 0);
      w.Key("data");
      s.WriteOrder(w, r);
      w.Key("old");
      w.StartObject();
      w.Key("order_status");
      Str(w, old_status);
      w.Key("operate_time");
      if (old_time) {
        Str(w, *old_time);
      } else {
        w.Null();
      }
      w.EndObject();
      *key = std::to_string(r.id);
    } else {
      UserRow before = s.MakeUser(e.a, e.b - 1);
      UserRow after = s.MakeUser(e.a, e.b);
      s.Begin(w, "user_info", "update", e.time_s, s.xid++, true, 0);
      w.Key("data");
      s.WriteUser(w, after);
      w.Key("old");
      w.StartObject();
      if (before.nick_name != after.nick_name) {
        w.Key("nick_name");
        Str(w, before.nick_name);
      }
      if (before.user_level != after.user_level) {
        w.Key("user_level");
        Str(w, before.user_level);
      }
      if (before.phone_num != after.phone_num) {
        w.Key("phone_num");
        Str(w, before.phone_num);
      }
      w.Key("operate_time");
      if (before.operate_time) {
        Str(w, *before.operate_time);
      } else {
        w.Null();
      }
      w.EndObject();
      *key = std::to_string(after.id);
    }
    break;
  }
  w.EndObject();
  value->assign(s.sb.GetString(), s.sb.GetSize());
  ++s.emitted;
  return true;
}

std::string DbGenerator::TruthJson() const {
  const State& s = *s_;
  rapidjson::StringBuffer sb;
  JsonWriter w(sb);
  w.StartObject();
  w.Key("kind");
  w.String("db");
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
  w.Key("users");
  w.Int64(s.o.users);
  w.Key("orders");
  w.Int64(s.o.orders);
  w.Key("provinces");
  w.Int64(s.o.provinces);
  w.Key("user_update_share");
  w.Double(s.o.user_update_share);
  if (s.o.days > 1) {
    w.Key("days");
    w.Int(s.o.days);
  }
  w.EndObject();
  w.Key("records");
  w.Uint64(s.emitted);
  w.Key("dwd");
  w.StartObject();
  w.Key("DWD_ORDER_INFO_I");
  w.Uint64(s.orders.size());
  w.Key("DWD_ORDER_INFO_U");
  w.Uint64(s.order_update_count);
  w.Key("DWD_ORDER_DETAIL_I");
  w.Uint64(s.detail_count);
  w.EndObject();
  w.Key("skipped_no_row");
  w.Uint64(4);
  w.Key("redis");
  w.StartObject();
  w.Key("sets");
  w.Uint64(static_cast<uint64_t>(s.o.users + s.o.provinces) + s.user_update_count);
  w.Key("dels");
  w.Uint64(0);
  w.Key("keys");
  w.Uint64(static_cast<uint64_t>(s.o.users + s.o.provinces));
  w.EndObject();

  // The dimension rows as Redis holds them at the end: DIM:<TABLE>:<id> -> data.
  w.Key("dims");
  w.StartObject();
  for (int64_t p = 1; p <= s.o.provinces; ++p) {
    Str(w, absl::StrCat("DIM:BASE_PROVINCE:", p));
    s.WriteProvince(w, p);
  }
  std::vector<UserRow> users;
  users.reserve(s.o.users);
  for (int64_t u = 0; u < s.o.users; ++u) {
    users.push_back(s.MakeUser(u, static_cast<uint32_t>(s.user_updates[u].size())));
    Str(w, absl::StrCat("DIM:USER_INFO:", u + 1));
    s.WriteUser(w, users.back());
  }
  w.EndObject();

  // Order-wide documents by day of create_time: detail id -> OrderWide (docs/FORMATS.md §5), from
  // the order_info insert, the detail row and the dimension rows above. Orders are in create_time
  // order, so each day's are consecutive.
  std::vector<std::pair<std::string, uint64_t>> day_counts;  // create_date -> details
  for (const OrderPlan& p : s.orders) {
    std::string day = s.Local(p.create_s).substr(0, 10);
    if (day_counts.empty() || day_counts.back().first != day) day_counts.push_back({day, 0});
    day_counts.back().second += static_cast<uint64_t>(p.n_details);
  }
  if (day_counts.empty()) day_counts.push_back({absl::FormatCivilTime(s.o.day), 0});
  w.Key("order_wide_count");
  w.StartObject();
  for (const auto& [day, n] : day_counts) {
    Str(w, day);
    w.Uint64(n);
  }
  w.EndObject();
  w.Key("order_wide");
  w.StartObject();
  std::string open_day;
  bool open = false;
  for (const OrderPlan& p : s.orders) {
    std::string day = s.Local(p.create_s).substr(0, 10);
    if (!open || day != open_day) {
      if (open) w.EndObject();
      Str(w, day);
      w.StartObject();
      open_day = day;
      open = true;
    }
    OrderRow r = s.MakeOrder(p);
    const UserRow& u = users[r.user_id - 1];
    for (const DetailRow& d : r.details) {
      Str(w, std::to_string(d.id));
      w.StartObject();
      w.Key("detail_id");
      w.Int64(d.id);
      w.Key("order_id");
      w.Int64(r.id);
      w.Key("sku_id");
      w.Int64(d.sku_id);
      w.Key("order_price");
      Money(w, d.order_price);
      w.Key("sku_num");
      w.Int64(d.sku_num);
      w.Key("sku_name");
      Str(w, d.sku_name);
      w.Key("split_total_amount");
      Money(w, d.split_total);
      w.Key("split_activity_amount");
      Money(w, d.split_activity);
      w.Key("split_coupon_amount");
      Money(w, d.split_coupon);
      w.Key("province_id");
      w.Int64(r.province_id);
      w.Key("order_status");
      Str(w, r.order_status);
      w.Key("user_id");
      w.Int64(r.user_id);
      w.Key("total_amount");
      Money(w, r.total);
      w.Key("activity_reduce_amount");
      Money(w, r.activity_reduce);
      w.Key("coupon_reduce_amount");
      Money(w, r.coupon_reduce);
      w.Key("original_total_amount");
      Money(w, r.original_total);
      w.Key("feight_fee");
      Money(w, r.feight_fee);
      w.Key("feight_fee_reduce");
      Money(w, r.feight_fee_reduce);
      w.Key("expire_time");
      Str(w, r.expire_time);
      w.Key("refundable_time");
      Str(w, r.refundable_time);
      w.Key("create_time");
      Str(w, r.create_time);
      // operate_time is NULL in the insert: absent from the document.
      w.Key("create_date");
      Str(w, std::string_view(r.create_time).substr(0, 10));
      w.Key("create_hour");
      Str(w, std::string_view(r.create_time).substr(11, 2));
      // Dimensions.
      if (r.province_id <= static_cast<int64_t>(std::size(kProvinceInfo))) {
        const ProvinceInfo& pi = kProvinceInfo[r.province_id - 1];
        w.Key("province_name");
        w.String(pi.name);
        w.Key("province_area_code");
        w.String(pi.area_code);
        w.Key("province_3166_2_code");
        w.String(pi.iso_3166_2);
        w.Key("province_iso_code");
        w.String(pi.iso_code);
      } else {
        w.Key("province_name");
        Str(w, absl::StrCat("Province ", r.province_id));
        w.Key("province_area_code");
        Str(w, absl::StrCat(900000 + r.province_id));
        w.Key("province_3166_2_code");
        Str(w, absl::StrCat("XX-P", r.province_id));
        w.Key("province_iso_code");
        Str(w, absl::StrCat("XX-", r.province_id));
      }
      auto age = AgeInYears(u.birthday, std::string_view(r.create_time).substr(0, 10));
      w.Key("user_age");
      w.Int(age.ok() ? *age : 0);
      w.Key("user_gender");
      Str(w, u.gender);
      w.EndObject();
    }
  }
  if (!open) {  // no orders: the (empty) first day, as before
    Str(w, absl::FormatCivilTime(s.o.day));
    w.StartObject();
  }
  w.EndObject();
  w.EndObject();
  w.EndObject();
  return std::string(sb.GetString(), sb.GetSize());
}

}  // namespace rtdw::gen
