#include "connectors/es/templates.h"

#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "connectors/es/es_client.h"
#include "core/status_util.h"
#include "rapidjson/stringbuffer.h"
#include "rapidjson/writer.h"

namespace rtdw {
namespace {

// A field of a mapping: its type and, for dates, the format.
struct Field {
  const char* name;
  const char* type;
  const char* format = nullptr;
};

std::string BuildTemplate(std::string_view prefix, const IndexTemplateSettings& s,
                          const std::vector<Field>& fields, const char* meta_table) {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  std::string pattern = absl::StrCat(ToAbsl(prefix), "*");
  w.StartObject();
  w.Key("index_patterns");
  w.StartArray();
  w.String(pattern.data(), static_cast<rapidjson::SizeType>(pattern.size()));
  w.EndArray();
  w.Key("priority");
  w.Int(s.priority);
  w.Key("_meta");
  w.StartObject();
  w.Key("managed_by");
  w.String("rtdw");
  w.Key("table");
  w.String(meta_table);
  w.EndObject();
  w.Key("template");
  w.StartObject();
  w.Key("settings");
  w.StartObject();
  w.Key("number_of_shards");
  w.Int(s.number_of_shards);
  w.Key("number_of_replicas");
  w.Int(s.number_of_replicas);
  w.Key("refresh_interval");
  w.String(s.refresh_interval.data(), static_cast<rapidjson::SizeType>(s.refresh_interval.size()));
  w.EndObject();
  w.Key("mappings");
  w.StartObject();
  w.Key("properties");
  w.StartObject();
  for (const Field& f : fields) {
    w.Key(f.name);
    w.StartObject();
    w.Key("type");
    w.String(f.type);
    if (f.format != nullptr) {
      w.Key("format");
      w.String(f.format);
    }
    w.EndObject();
  }
  w.EndObject();
  w.EndObject();
  w.EndObject();
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize());
}

}  // namespace

std::string DauIndexTemplate(std::string_view index_prefix, const IndexTemplateSettings& s) {
  static const std::vector<Field> kFields = {
      {"mid", "keyword"},
      {"user_id", "keyword"},
      {"province_id", "keyword"},
      {"channel", "keyword"},
      {"is_new", "keyword"},
      {"model", "keyword"},
      {"operate_system", "keyword"},
      {"version_code", "keyword"},
      {"brand", "keyword"},
      {"page_id", "keyword"},
      {"page_item", "keyword"},
      {"page_item_type", "keyword"},
      {"source_type", "keyword"},
      {"during_time", "long"},
      {"user_gender", "keyword"},
      {"user_age", "integer"},
      {"province_name", "keyword"},
      {"province_iso_code", "keyword"},
      {"province_3166_2", "keyword"},
      {"province_area_code", "keyword"},
      {"dt", "keyword"},
      {"hr", "keyword"},
      {"ts", "date", "epoch_millis"},
      {"rtdw_src", "keyword"},
  };
  return BuildTemplate(index_prefix, s, kFields, "dau");
}

std::string OrderWideIndexTemplate(std::string_view index_prefix, const IndexTemplateSettings& s) {
  static constexpr const char* kDateTime = "yyyy-MM-dd HH:mm:ss";
  static const std::vector<Field> kFields = {
      {"detail_id", "keyword"},
      {"order_id", "keyword"},
      {"sku_id", "keyword"},
      {"order_price", "double"},
      {"sku_num", "long"},
      {"sku_name", "keyword"},
      {"split_total_amount", "double"},
      {"split_activity_amount", "double"},
      {"split_coupon_amount", "double"},
      {"province_id", "keyword"},
      {"order_status", "keyword"},
      {"user_id", "keyword"},
      {"total_amount", "double"},
      {"activity_reduce_amount", "double"},
      {"coupon_reduce_amount", "double"},
      {"original_total_amount", "double"},
      {"feight_fee", "double"},
      {"feight_fee_reduce", "double"},
      {"expire_time", "date", kDateTime},
      {"refundable_time", "date", kDateTime},
      {"create_time", "date", kDateTime},
      {"operate_time", "date", kDateTime},
      {"create_date", "date", "yyyy-MM-dd"},
      {"create_hour", "keyword"},
      {"province_name", "keyword"},
      {"province_area_code", "keyword"},
      {"province_3166_2_code", "keyword"},
      {"province_iso_code", "keyword"},
      {"user_age", "integer"},
      {"user_gender", "keyword"},
      {"rtdw_src", "keyword"},
  };
  return BuildTemplate(index_prefix, s, kFields, "order_wide");
}

std::string TemplateNameForPrefix(std::string_view index_prefix) {
  std::string name(index_prefix);
  while (!name.empty() && (name.back() == '_' || name.back() == '-')) name.pop_back();
  return name.empty() ? "rtdw" : name;
}

absl::Status InstallIndexTemplates(EsClient& client, std::string_view dau_prefix,
                                   std::string_view order_wide_prefix,
                                   const IndexTemplateSettings& settings) {
  if (!dau_prefix.empty()) {
    RTDW_RETURN_IF_ERROR(client.PutIndexTemplate(TemplateNameForPrefix(dau_prefix),
                                                 DauIndexTemplate(dau_prefix, settings)));
  }
  if (!order_wide_prefix.empty()) {
    RTDW_RETURN_IF_ERROR(
        client.PutIndexTemplate(TemplateNameForPrefix(order_wide_prefix),
                                OrderWideIndexTemplate(order_wide_prefix, settings)));
  }
  return absl::OkStatus();
}

}  // namespace rtdw
