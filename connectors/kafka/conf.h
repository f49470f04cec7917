// A librdkafka configuration from rtdw's three layers (internal to connectors/kafka): the
// operator's properties ([kafka.properties]), rtdw's defaults for keys the operator did not set,
// and rtdw's own settings, which always win (the guarantees rest on them).
#ifndef RTDW_CONNECTORS_KAFKA_CONF_H_
#define RTDW_CONNECTORS_KAFKA_CONF_H_

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"

typedef struct rd_kafka_conf_s rd_kafka_conf_t;

namespace rtdw::kafka_internal {

using ConfEntries = std::vector<std::pair<std::string, std::string>>;

// A new configuration the caller owns (rd_kafka_conf_destroy, or hand it to rd_kafka_new);
// InvalidArgument naming the property and librdkafka's reason for one it refuses (nothing leaks).
absl::StatusOr<rd_kafka_conf_t*> NewKafkaConf(const std::map<std::string, std::string>& properties,
                                              const ConfEntries& defaults, const ConfEntries& own);

}  // namespace rtdw::kafka_internal

#endif  // RTDW_CONNECTORS_KAFKA_CONF_H_
