// The job-specific part of a split job (log-split, db-split), which the produce pipeline
// (core/engine/produce_pipeline.h) runs over every batch, and the status of a batch this member
// may no longer work on (fencing, group mode).
#ifndef RTDW_CORE_ENGINE_SPLIT_STEP_H_
#define RTDW_CORE_ENGINE_SPLIT_STEP_H_

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "core/records.h"

namespace rtdw {

// A source partition (the same type as connectors/kafka/consumer.h's).
using TopicPartition = std::pair<std::string, int32_t>;

// What a split job does with a batch. Called on the job's thread only (thread-compatible).
class SplitStep {
 public:
  virtual ~SplitStep() = default;
  // Before a batch's records (db-split: re-read the table lists from Redis). An error makes the
  // whole batch run again (FencedError: drops it).
  virtual absl::Status BeginBatch() { return absl::OkStatus(); }
  virtual void Process(const InputRecord& record, RecordSink* sink) = 0;
  // After every record of the batch went through Process(), before the batch's acknowledgements
  // are awaited and its offsets commit (db-split: apply the batch's Redis writes in one
  // MULTI/EXEC, then hand its buffered fact records to `sink`, so a fact never reaches its topic
  // before the dimension rows written ahead of it). An error makes the whole batch run again
  // (FencedError: drops it).
  virtual absl::Status BeforeFlush(RecordSink* sink) {
    (void)sink;
    return absl::OkStatus();
  }
  // Forget the batch in hand (it will be read again).
  virtual void AbortBatch() {}
  // Group mode, on the job thread inside the consumer's poll: partitions given to this member /
  // taken away from it (db-split: claim / forget their Redis fencing tokens). Never block.
  virtual void Assigned(const std::vector<TopicPartition>& partitions) { (void)partitions; }
  virtual void Revoked(const std::vector<TopicPartition>& partitions) { (void)partitions; }
  // Topic names of the output slots (log-split: in LogSlot order); empty for jobs that emit by
  // name.
  virtual std::vector<std::string> SlotTopics() const { return {}; }
};

// The status of a batch this member may no longer work on (group mode: its partitions were taken
// away). Never retried: the batch is dropped uncommitted. Aborted, "fenced: <why>", with a
// payload that IsFenced() recognises.
absl::Status FencedError(std::string_view why);
bool IsFenced(const absl::Status& st);

}  // namespace rtdw

#endif  // RTDW_CORE_ENGINE_SPLIT_STEP_H_
