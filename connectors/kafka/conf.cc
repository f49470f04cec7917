#include "connectors/kafka/conf.h"

#include <librdkafka/rdkafka.h>

#include "absl/strings/str_cat.h"

namespace rtdw::kafka_internal {

absl::StatusOr<rd_kafka_conf_t*> NewKafkaConf(const std::map<std::string, std::string>& properties,
                                              const ConfEntries& defaults, const ConfEntries& own) {
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  auto set = [conf](const std::string& key, const std::string& value) {
    char errstr[512];
    if (rd_kafka_conf_set(conf, key.c_str(), value.c_str(), errstr, sizeof errstr) !=
        RD_KAFKA_CONF_OK) {
      return absl::InvalidArgumentError(absl::StrCat("kafka property ", key, ": ", errstr));
    }
    return absl::OkStatus();
  };
  absl::Status st;
  for (const auto& [k, v] : properties) {
    if (st.ok()) st = set(k, v);
  }
  for (const auto& [k, v] : defaults) {
    if (st.ok() && !properties.count(k)) st = set(k, v);
  }
  for (const auto& [k, v] : own) {
    if (st.ok()) st = set(k, v);
  }
  if (!st.ok()) {
    rd_kafka_conf_destroy(conf);
    return st;
  }
  return conf;
}

}  // namespace rtdw::kafka_internal
