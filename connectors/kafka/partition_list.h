// librdkafka partition lists built from rtdw's partitions (internal to connectors/kafka): the one
// place that turns TopicPartitions (and their offsets) into an rd_kafka_topic_partition_list_t,
// owned by a unique_ptr that destroys it.
//
// Thread-compatible: a list is used by one thread at a time (librdkafka's calls that take one do
// not keep it).
#ifndef RTDW_CONNECTORS_KAFKA_PARTITION_LIST_H_
#define RTDW_CONNECTORS_KAFKA_PARTITION_LIST_H_

#include <librdkafka/rdkafka.h>

#include <cstdint>
#include <map>
#include <memory>
#include <vector>

#include "core/records.h"

namespace rtdw::kafka_internal {

struct PartitionListDestroyer {
  void operator()(rd_kafka_topic_partition_list_t* list) const {
    rd_kafka_topic_partition_list_destroy(list);
  }
};
using PartitionList = std::unique_ptr<rd_kafka_topic_partition_list_t, PartitionListDestroyer>;

// An empty list with room for `size` elements.
PartitionList NewPartitionList(size_t size);
// Each of `partitions`, in their order, at `offset` (an offset, RD_KAFKA_OFFSET_END /
// RD_KAFKA_OFFSET_BEGINNING, or RD_KAFKA_OFFSET_INVALID: none, librdkafka's own default).
PartitionList NewPartitionList(const std::vector<TopicPartition>& partitions, int64_t offset);
// Each partition at its own offset, in the map's order.
PartitionList NewPartitionList(const std::map<TopicPartition, int64_t>& offsets);

}  // namespace rtdw::kafka_internal

#endif  // RTDW_CONNECTORS_KAFKA_PARTITION_LIST_H_
