// A RecordProducer for the engine's unit tests: an in-memory "cluster" whose acknowledged records
// are also appended to a file (so that they outlive a killed worker), with delivery reports
// delayed and served in a seeded random order across every record queued (batch N+1's often come
// before batch N's), and scriptable faults: a failed delivery, a refused produce, held
// acknowledgements, a SIGKILL at the n-th produce or the n-th report.
//
// Like librdkafka, reports are served on the thread that calls Produce (every `serve_every`
// records), Await or Flush. Thread-compatible: one thread drives it.
#ifndef RTDW_TESTS_ENGINE_FAKES_FAKE_PRODUCER_H_
#define RTDW_TESTS_ENGINE_FAKES_FAKE_PRODUCER_H_

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <random>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "core/engine/record_producer.h"

namespace rtdw::testing {

// One record as produced (headers by name; "" when absent).
struct FakeRecord {
  std::string topic;
  std::string key;
  std::string value;
  std::string src;     // rtdw-src
  std::string idx;     // rtdw-idx
  std::string reason;  // rtdw-reason
  int64_t seq = 0;     // produce order (1-based, per FakeProducer)
};

class FakeProducer : public RecordProducer {
 public:
  // `log_path` ("" = none): every acknowledged record is appended there (ReadLog()).
  explicit FakeProducer(std::string log_path, uint64_t seed = 1);
  ~FakeProducer() override;

  absl::StatusOr<ProducerTopic> Topic(std::string_view topic) override;
  absl::Status Produce(ProducerTopic topic, std::string_view key, std::string_view value,
                       const std::vector<RecordHeader>& headers, int32_t partition,
                       DeliveryGroup* group) override;

  // Acknowledged records in produce order (what a partitioned topic holds, per partition).
  const std::vector<FakeRecord>& acknowledged() const { return acknowledged_; }
  // Every Produce() call that queued a record, in order.
  const std::vector<FakeRecord>& produced() const { return produced_; }
  // Records queued and not reported yet.
  size_t queued() const { return queue_.size(); }
  // The records of a log file, in the order they were acknowledged.
  static std::vector<FakeRecord> ReadLog(const std::string& path);

  // ---- the script (1-based counts over this producer's life)
  std::set<int64_t> fail_produce_calls;          // these Produce() calls return Unavailable
  std::set<int64_t> fail_deliveries;             // these records (by seq) get a failed report
  int64_t kill_at_produce = 0;                   // SIGKILL at this Produce() call (0: never)
  int64_t kill_at_report = 0;                    // SIGKILL before serving this report (0: never)
  bool hold_reports = false;                     // serve no report (waits end at their timeout)
  int reports_per_serve = 3;                     // a serve reports at most this many records
  int serve_every = 5;                           // Produce() serves reports every this many calls
  std::function<void(int64_t call)> on_produce;  // before each Produce() call is handled

 private:
  struct Queued {
    FakeRecord record;
    DeliveryGroup* group;
  };
  absl::Status AwaitImpl(DeliveryGroup* group, std::chrono::milliseconds timeout,
                         const std::atomic<bool>* interrupt) override;
  absl::Status FlushImpl(std::chrono::milliseconds timeout,
                         const std::atomic<bool>* interrupt) override;
  // Reports up to reports_per_serve queued records, picked at random.
  void Serve();
  // Serves reports until `group` has none pending; true when `interrupt` ended the wait first
  // (false: everything reported, or the timeout).
  bool ServeUntilReported(const DeliveryGroup& group, std::chrono::milliseconds timeout,
                          const std::atomic<bool>* interrupt);

  std::string log_path_;
  int log_fd_ = -1;
  std::mt19937_64 rng_;
  std::vector<std::string> topics_;  // handle = index + 1
  std::vector<Queued> queue_;
  std::vector<FakeRecord> produced_;
  std::vector<FakeRecord> acknowledged_;
  int64_t calls_ = 0;
  int64_t seq_ = 0;
  int64_t reports_ = 0;
  // Every record queued: what Flush waits for, and its first failed report since the last Flush
  // (the engine's own DeliveryGroup, so that Flush and Await judge an outcome alike).
  DeliveryGroup all_;
};

}  // namespace rtdw::testing

#endif  // RTDW_TESTS_ENGINE_FAKES_FAKE_PRODUCER_H_
