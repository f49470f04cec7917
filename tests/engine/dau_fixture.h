// What the engine's unit tests (tests/engine) drive the batch transaction with, and the
// independent truth they compare against.
//
// The source is an in-memory topic of DWD page records (three partitions, mids keyed to one
// partition each, event times out of order so that later records often beat earlier ones); the
// transform is the real DauTransform; the "cluster" is FakeEs, which applies bulk actions with
// ES's external_gte rule and keeps what it applied in a file (so that it survives a killed
// worker). The truth is computed from the input alone: per (event day, mid) the first page with
// the smallest (ts, offset) — one document each, exactly.
#ifndef RTDW_TESTS_ENGINE_DAU_FIXTURE_H_
#define RTDW_TESTS_ENGINE_DAU_FIXTURE_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "connectors/es/bulk.h"
#include "core/dau_transform.h"
#include "core/engine/batch_transaction.h"
#include "core/journal_sink.h"
#include "storage/state_store.h"

namespace rtdw::engine_test {

inline constexpr char kTopic[] = "DWD_PAGE_LOG_TOPIC";
inline constexpr char kPrefix[] = "dau_";
inline constexpr int kPartitions = 3;
// 2025-11-25 00:00:00 UTC.
inline constexpr int64_t kDay = 1764028800000;
inline constexpr int64_t kDayMs = 86400000;
inline constexpr int64_t kNow = kDay + 2 * kDayMs;  // after every record: none is "future"

struct SourceRecord {
  int32_t partition;
  int64_t offset;
  std::string mid;
  int64_t ts;
  bool first_page;
  std::string value;
};
using Topic = std::vector<std::vector<SourceRecord>>;

// The topic: `per_partition` records on each partition, mids m0..m19 (mid i on partition i % 3),
// event times spread over two days in random order, a quarter of them not first pages.
Topic MakeTopic(int per_partition, uint64_t seed);

// Up to `batch` records of each partition from `from[p]` on (0 when absent) — what a poll reads.
std::vector<InputRecord> ReadBatch(const Topic& topic, const std::map<int32_t, int64_t>& from,
                                   size_t batch);
// The same from `store`'s offsets. False on a store error.
bool ReadBatchAtStoredOffsets(const Topic& topic, StateStore& store, size_t batch,
                              std::vector<InputRecord>* out);

struct Doc {
  int64_t ts = 0;
  std::string src;
  bool operator==(const Doc&) const = default;
};
using DocKey = std::pair<std::string, std::string>;  // index, id

// The documents ES must hold, from the input alone.
std::map<DocKey, Doc> Truth(const Topic& topic);

// Adds a test failure for every difference between `held` and the truth of `topic`.
void ExpectTruth(const std::map<DocKey, Doc>& held, const Topic& topic);

// The cluster: applies bulk actions by ES's rules for `version_type` external_gte (a write
// whose version is below the stored one is refused, 409, and counts as superseded), appending
// each applied action to `log_path` as it goes (a killed worker's writes stay applied).
// Scriptable: fail the next `fail_next` deliveries, or the first attempts of an entry
// (`fail_seq`) (Unavailable, nothing applied); kill the worker half-way through its
// `kill_mid_delivery`-th delivery (the first half applied); refuse documents for good
// (`refuse`: they come back as RejectedItems); hold deliveries of chosen entries in flight (Hold)
// until Release() or the abort flag. Honours a runner's controls (SetControls): the abort flag
// ends a delivery in flight, nothing applied, and `before_request` is asked before anything is
// applied (as EsJournalSink does before every bulk request). Every call is recorded (calls()).
// Thread-safe: the delivery thread delivers while the test thread scripts and inspects.
class FakeEs : public JournalSink {
 public:
  // A Deliver() call: the entry's seq and how it ended ("ok", "unavailable", "refused by
  // before_request: <message>", "aborted").
  struct Call {
    uint64_t seq;
    std::string outcome;
  };

  explicit FakeEs(std::string log_path) : log_path_(std::move(log_path)) {}

  absl::StatusOr<DeliveryReport> Deliver(const JournalEntry& entry) override;

  void SetControls(const std::atomic<bool>* abort,
                   std::function<absl::Status(uint64_t seq)> before_request) {
    absl::MutexLock lock(&mu_);
    abort_ = abort;
    before_request_ = std::move(before_request);
  }
  // The first `times` attempts of entry `seq` fail (Unavailable).
  void FailSeq(uint64_t seq, int times) {
    absl::MutexLock lock(&mu_);
    fail_seq_[seq] = times;
  }
  // Deliveries of `seq` wait in flight (before anything is applied) until Release() or the abort.
  void Hold(uint64_t seq) {
    absl::MutexLock lock(&mu_);
    held_.insert(seq);
  }
  // Every held entry goes.
  void Release() {
    absl::MutexLock lock(&mu_);
    held_.clear();
  }
  // True once a delivery of `seq` is held in flight.
  bool Holding(uint64_t seq) const {
    absl::MutexLock lock(&mu_);
    return holding_ == seq;
  }
  void set_fail_next(int n) {
    absl::MutexLock lock(&mu_);
    fail_next_ = n;
  }
  void set_kill_mid_delivery(int n) {
    absl::MutexLock lock(&mu_);
    kill_mid_delivery_ = n;
  }
  void set_refuse(std::function<bool(const BulkAction&)> refuse) {
    absl::MutexLock lock(&mu_);
    refuse_ = std::move(refuse);
  }
  std::vector<Call> calls() const {
    absl::MutexLock lock(&mu_);
    return calls_;
  }
  // Entries applied (some of their documents written), in the order they were.
  std::vector<uint64_t> applied() const {
    absl::MutexLock lock(&mu_);
    return applied_;
  }
  int deliveries() const {
    absl::MutexLock lock(&mu_);
    return deliveries_;
  }

  // What the cluster holds after applying the log in order.
  static std::map<DocKey, Doc> Load(const std::string& log_path, uint64_t* superseded);

 private:
  const std::string log_path_;
  mutable absl::Mutex mu_;
  const std::atomic<bool>* abort_ ABSL_GUARDED_BY(mu_) = nullptr;
  std::function<absl::Status(uint64_t)> before_request_ ABSL_GUARDED_BY(mu_);
  std::map<uint64_t, int> fail_seq_ ABSL_GUARDED_BY(mu_);
  std::set<uint64_t> held_ ABSL_GUARDED_BY(mu_);
  std::optional<uint64_t> holding_ ABSL_GUARDED_BY(mu_);
  int fail_next_ ABSL_GUARDED_BY(mu_) = 0;
  int kill_mid_delivery_ ABSL_GUARDED_BY(mu_) = 0;  // 1-based; 0 = never
  int deliveries_ ABSL_GUARDED_BY(mu_) = 0;
  std::function<bool(const BulkAction&)> refuse_ ABSL_GUARDED_BY(mu_);
  std::vector<Call> calls_ ABSL_GUARDED_BY(mu_);
  std::vector<uint64_t> applied_ ABSL_GUARDED_BY(mu_);
};

class NoDimensions : public DimensionSource {
 public:
  absl::StatusOr<std::vector<std::optional<std::string>>> Get(
      const std::vector<std::string>& keys) override {
    return std::vector<std::optional<std::string>>(keys.size());
  }
};

// Job `job`'s store under `root` (a test failure and null when it does not open). Every engine
// test opens its stores with it.
std::unique_ptr<StateStore> OpenStore(const std::string& root, const std::string& job = "dau");
// After a finished run of the "dau" job on the store under `root` and the cluster whose log is
// `es_log`: the cluster holds exactly the truth of `topic` (ExpectTruth), the store owes nothing
// and every partition's stored offset is at its end. A test failure for each difference.
void ExpectDone(const Topic& topic, const std::string& root, const std::string& es_log);
// The DAU transform of the topic (index prefix kPrefix, UTC).
std::unique_ptr<DauTransform> NewTransform();

}  // namespace rtdw::engine_test

#endif  // RTDW_TESTS_ENGINE_DAU_FIXTURE_H_
