// What every job runner does the same way: open its state store from the config, and compute
// where each source partition starts (the stored next offset, else kafka.auto_offset_reset).
#ifndef RTDW_TOOLS_RTDWD_JOB_COMMON_H_
#define RTDW_TOOLS_RTDWD_JOB_COMMON_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "connectors/kafka/consumer.h"
#include "storage/state_store.h"
#include "tools/common/config.h"

namespace rtdw {

// `<state.dir>/<job>` with the config's cache size, sync and the job's topic fingerprint; the
// store's messages go to the log.
absl::StatusOr<std::unique_ptr<StateStore>> OpenJobStore(const Config& config,
                                                         const std::string& job);

// The consumer options every job uses: brokers, [kafka.properties], the group id ("<group>.<job>",
// group "rtdw" when kafka.group is absent) and librdkafka's log lines through spdlog.
KafkaConsumerOptions JobConsumerOptions(const Config& config, const std::string& job);

// The start of partitions 0..partitions-1 of `topic`: the offset stored in `store`, or, for a
// partition without one, the beginning / the end per kafka.auto_offset_reset (FailedPrecondition
// naming the partition when it is "error").
absl::StatusOr<std::vector<PartitionStart>> PartitionStarts(const StateStore& store,
                                                            const Config& config,
                                                            const std::string& topic,
                                                            int partitions);

}  // namespace rtdw

#endif  // RTDW_TOOLS_RTDWD_JOB_COMMON_H_
