// Records as the transforms see them: an input record viewed in the consumer's buffer, and the
// sink interface through which a transform hands out what it makes (DWD records, dead letters).
//
// Zero-copy contract: every std::string_view a transform passes to a sink is valid only for the
// duration of that call (it points into the transform's reusable buffers or into the input
// record). A sink that keeps anything copies it — a Kafka producer copies on Produce anyway.
#ifndef RTDW_CORE_RECORDS_H_
#define RTDW_CORE_RECORDS_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace rtdw {

// A source partition: (topic, partition number).
using TopicPartition = std::pair<std::string, int32_t>;

// One consumed record. The views point into the consumer's buffers and live as long as the
// consumed batch that owns them.
struct InputRecord {
  std::string_view topic;
  int32_t partition = 0;
  int64_t offset = 0;
  std::string_view key;      // empty when the record has no key
  std::string_view value;    // the payload, untouched
  int64_t timestamp_ms = 0;  // the Kafka record timestamp (CreateTime or LogAppendTime)
};

// "topic/partition/offset": the lineage text carried by the `rtdw-src` header and the `src`
// field of dead letters and documents (docs/FORMATS.md §2, §4, §7).
std::string SourcePosition(std::string_view topic, int32_t partition, int64_t offset);
inline std::string SourcePosition(const InputRecord& r) {
  return SourcePosition(r.topic, r.partition, r.offset);
}
// Same, appended to `out` (no allocation when `out` has the capacity).
void AppendSourcePosition(std::string_view topic, int32_t partition, int64_t offset,
                          std::string* out);

// The outputs of log-split, by slot. The sink resolves a slot to the configured topic name.
enum class LogSlot : int {
  kStart = 0,    // DWD_START_LOG_TOPIC
  kPage = 1,     // DWD_PAGE_LOG_TOPIC
  kDisplay = 2,  // DWD_PAGE_DISPLAY_TOPIC
  kAction = 3,   // DWD_PAGE_ACTION_TOPIC
  kError = 4,    // DWD_ERROR_LOG_TOPIC
};
inline constexpr int kLogSlotCount = 5;

// Header names (docs/FORMATS.md §2, §7).
inline constexpr std::string_view kHeaderSrc = "rtdw-src";
inline constexpr std::string_view kHeaderIdx = "rtdw-idx";
inline constexpr std::string_view kHeaderReason = "rtdw-reason";

// One record a transform emits. Either `topic` names the topic (db-split: `DWD_<TABLE>_<I|U|D>`,
// tables are dynamic), or it is empty and `slot` (a LogSlot for log-split) selects a configured
// topic.
struct OutputRecord {
  int slot = -1;           // >= 0 when `topic` is empty
  std::string_view topic;  // non-empty: the topic by name; `slot` is then ignored
  std::string_view key;
  std::string_view value;  // one line of JSON
  std::string_view src;    // header rtdw-src ("" = none)
  int idx = -1;            // header rtdw-idx: element index in displays/actions; -1 = none
};

// One rejected input record for the job's dead-letter topic (docs/FORMATS.md §7).
struct DeadLetterRecord {
  std::string_view key;     // the source record's key (often empty)
  std::string_view value;   // the one-line dead-letter JSON (core/dead_letter.h)
  std::string_view reason;  // the reason code, for the rtdw-reason header
  std::string_view src;     // source position, for an rtdw-src header if the sink adds one
};

// Where transforms put their output. Implemented by the Kafka driver (produces with headers
// rtdw-src, rtdw-idx, rtdw-reason) and by tests.
//
// The calls return nothing: a sink that fails (e.g. a produce error) keeps the first error and
// reports it to its owner, which fails the batch (its offsets are not committed, the batch is
// processed again). Transforms never depend on a sink's success.
class RecordSink {
 public:
  virtual ~RecordSink() = default;
  virtual void Emit(const OutputRecord& record) = 0;
  virtual void DeadLetter(const DeadLetterRecord& record) = 0;
};

// A sink that copies everything it is given, in order. For tests, benchmarks and tools.
class CollectingSink : public RecordSink {
 public:
  struct Output {
    int slot = -1;
    std::string topic;
    std::string key;
    std::string value;
    std::string src;
    int idx = -1;
  };
  struct Dead {
    std::string key;
    std::string value;
    std::string reason;
    std::string src;
  };

  void Emit(const OutputRecord& record) override;
  void DeadLetter(const DeadLetterRecord& record) override;
  void Clear();

  std::vector<Output> outputs;
  std::vector<Dead> dead_letters;
};

// A sink that only counts (benchmarks): outputs per slot, by-name outputs, dead letters, bytes.
class CountingSink : public RecordSink {
 public:
  void Emit(const OutputRecord& record) override;
  void DeadLetter(const DeadLetterRecord& record) override;

  uint64_t per_slot[kLogSlotCount] = {};
  uint64_t by_name = 0;
  uint64_t dead_letters = 0;
  uint64_t bytes = 0;
};

}  // namespace rtdw

#endif  // RTDW_CORE_RECORDS_H_
