#include "connectors/kafka/partition_list.h"

namespace rtdw::kafka_internal {

PartitionList NewPartitionList(size_t size) {
  return PartitionList(rd_kafka_topic_partition_list_new(static_cast<int>(size)));
}

PartitionList NewPartitionList(const std::vector<TopicPartition>& partitions, int64_t offset) {
  PartitionList list = NewPartitionList(partitions.size());
  for (const auto& [topic, partition] : partitions) {
    rd_kafka_topic_partition_list_add(list.get(), topic.c_str(), partition)->offset = offset;
  }
  return list;
}

PartitionList NewPartitionList(const std::map<TopicPartition, int64_t>& offsets) {
  PartitionList list = NewPartitionList(offsets.size());
  for (const auto& [tp, offset] : offsets) {
    rd_kafka_topic_partition_list_add(list.get(), tp.first.c_str(), tp.second)->offset = offset;
  }
  return list;
}

}  // namespace rtdw::kafka_internal
