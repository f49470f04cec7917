// A librdkafka configuration from rtdw's three layers (internal to connectors/kafka): the
// operator's properties ([kafka.properties]), rtdw's defaults for keys the operator did not set,
// and rtdw's own settings, which always win (the guarantees rest on them).
//
// One [kafka.properties] table serves every client, so the operator's properties are filtered by
// the client's role: a consumer-only property (librdkafka's scope "C": session.timeout.ms,
// heartbeat.interval.ms, max.poll.interval.ms, fetch.*, ...) never reaches a producer, and a
// producer-only one ("P": acks, linger.ms, message.timeout.ms, ...) never reaches a consumer —
// librdkafka would otherwise log a configuration warning for each. The scopes come from the
// linked librdkafka's own property table, so they match the library in use; properties it does
// not know, and those of both roles, reach every client (an unknown one is refused by name).
#ifndef RTDW_CONNECTORS_KAFKA_CONF_H_
#define RTDW_CONNECTORS_KAFKA_CONF_H_

#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"

typedef struct rd_kafka_conf_s rd_kafka_conf_t;

namespace rtdw::kafka_internal {

using ConfEntries = std::vector<std::pair<std::string, std::string>>;

enum class ClientRole { kProducer, kConsumer };

// True when librdkafka documents `property` as used by the other role only (for kProducer: a
// consumer-only property). Thread-safe.
bool IsOtherRoleProperty(ClientRole role, std::string_view property);

// A new configuration the caller owns (rd_kafka_conf_destroy, or hand it to rd_kafka_new);
// InvalidArgument naming the property and librdkafka's reason for one it refuses (nothing leaks).
// `properties` of the other role are left out (see above); `defaults` and `own` are set as given.
absl::StatusOr<rd_kafka_conf_t*> NewKafkaConf(ClientRole role,
                                              const std::map<std::string, std::string>& properties,
                                              const ConfEntries& defaults, const ConfEntries& own);

}  // namespace rtdw::kafka_internal

#endif  // RTDW_CONNECTORS_KAFKA_CONF_H_
