// Fault injection of rtdw-es-lite, for tests of clients' retry paths. Set with --fault-* flags
// at start or POST /_rtdw/faults at run time; reset with DELETE /_rtdw/faults.
#ifndef RTDW_TOOLS_ES_LITE_FAULTS_H_
#define RTDW_TOOLS_ES_LITE_FAULTS_H_

#include <atomic>
#include <cstdint>
#include <optional>
#include <random>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "rapidjson/document.h"
#include "tools/es_lite/json.h"

namespace rtdw::eslite {

struct FaultConfig {
  double bulk_item_429_fraction = 0;      // bulk items answered 429 (not applied)
  double request_503_fraction = 0;        // requests answered 503 (not applied)
  double close_after_read_fraction = 0;   // connection closed after reading, nothing applied
  double close_after_write_fraction = 0;  // request applied, then the connection closed unanswered
  int64_t latency_ms = 0;                 // added to every request
  // Requests applied (and synced) at once but answered only after answer_late_ms: with
  // answer_late_ms above the client's timeout, the client gives up on a write that was applied.
  double answer_late_fraction = 0;
  int64_t answer_late_ms = 0;
};

struct FaultCounters {
  std::atomic<uint64_t> requests_503{0};
  std::atomic<uint64_t> bulk_items_429{0};
  std::atomic<uint64_t> closed_after_read{0};
  std::atomic<uint64_t> closed_after_write{0};
  std::atomic<uint64_t> answered_late{0};
};

// Thread-safe: the server's worker threads roll the dice and read the config concurrently with
// the fault API changing it (one absl::Mutex; the counters are atomics).
class Faults {
 public:
  FaultConfig config() const;
  void Set(const FaultConfig& c);
  // Applies the members present in `body` (others keep their value); "seed" re-seeds the dice.
  std::optional<EsError> Update(const rapidjson::Value& body);
  void Reset();
  // True with probability p (thread-safe).
  bool Roll(double p);
  FaultCounters& counters() { return counters_; }
  // {"bulk_item_429_fraction":...,"counters":{...}}
  std::string ToJson() const;

 private:
  mutable absl::Mutex mu_;
  FaultConfig config_ ABSL_GUARDED_BY(mu_);
  std::mt19937_64 rng_ ABSL_GUARDED_BY(mu_){std::random_device{}()};
  FaultCounters counters_;
};

}  // namespace rtdw::eslite

#endif  // RTDW_TOOLS_ES_LITE_FAULTS_H_
