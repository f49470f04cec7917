#include "connectors/kafka/conf.h"

#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>

#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace rtdw::kafka_internal {

namespace {

struct Scopes {
  std::set<std::string, std::less<>> consumer_only;
  std::set<std::string, std::less<>> producer_only;
};

// librdkafka's property table (the one CONFIGURATION.md is made from), rows
// "name | C/P | range | default | importance | description", scope "C", "P" or "*".
Scopes ReadScopes() {
  Scopes scopes;
  char* text = nullptr;
  size_t size = 0;
  FILE* f = open_memstream(&text, &size);
  if (f == nullptr) return scopes;  // nothing filtered: librdkafka warns, as before
  rd_kafka_conf_properties_show(f);
  fclose(f);
  for (absl::string_view line : absl::StrSplit(absl::string_view(text, size), '\n')) {
    std::vector<absl::string_view> cols = absl::StrSplit(line, absl::MaxSplits('|', 2));
    if (cols.size() < 3) continue;
    absl::string_view name = absl::StripAsciiWhitespace(cols[0]);
    absl::string_view scope = absl::StripAsciiWhitespace(cols[1]);
    if (scope == "C") scopes.consumer_only.emplace(name.data(), name.size());
    if (scope == "P") scopes.producer_only.emplace(name.data(), name.size());
  }
  free(text);
  return scopes;
}

const Scopes& LibrdkafkaScopes() {
  static const Scopes* scopes = new Scopes(ReadScopes());
  return *scopes;
}

}  // namespace

bool IsOtherRoleProperty(ClientRole role, std::string_view property) {
  const Scopes& s = LibrdkafkaScopes();
  return role == ClientRole::kProducer ? s.consumer_only.count(property) > 0
                                       : s.producer_only.count(property) > 0;
}

absl::StatusOr<rd_kafka_conf_t*> NewKafkaConf(ClientRole role,
                                              const std::map<std::string, std::string>& properties,
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
    if (st.ok() && !IsOtherRoleProperty(role, k)) st = set(k, v);
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
