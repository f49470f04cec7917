// The split jobs' "produce and await acks" transaction (core/engine/produce_pipeline.h) against
// an independent truth, with a fake producer (tests/engine/fakes/fake_producer.h: delivery reports
// delayed and served out of order across batches, scripted failures and kills) and a real state
// store in a temporary directory.
//
// The source is an in-memory topic of two partitions; the step emits, per record, a fixed set of
// outputs computed from its offset (none, one or two records on two slot topics, and a dead
// letter for some), each with the record's key and its `rtdw-src` / `rtdw-idx` headers. The truth
// is that set, from the input alone:
//  - at every commit (and after every kill), every input record below the committed offsets has
//    every one of its outputs acknowledged (in the fake topic) — the offsets never pass a record
//    whose acknowledgement did not come;
//  - at the end, every output is in the topic at least once, exactly as the truth says, and
//    nothing else is;
//  - per output topic and source partition, the last copies of the outputs are in source order
//    (a batch run again never ends up behind the batch that followed it).
#include "core/engine/produce_pipeline.h"

#include <signal.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/status_util.h"
#include "gtest/gtest.h"
#include "tests/engine/dau_fixture.h"
#include "tests/engine/fakes/fake_producer.h"
#include "tests/harness/process.h"

namespace rtdw {
namespace {

using testing::FakeProducer;
using testing::FakeRecord;
using testing::RunInChild;
using testing::TempDir;

constexpr char kSource[] = "SRC";
constexpr int kPartitions = 2;
constexpr char kDeadLetters[] = "DEAD";
constexpr size_t kPerPoll = 4;  // records of each partition per poll: batches of up to 8

std::vector<std::string> SlotTopics() { return {"OUT_A", "OUT_B"}; }

// The input: `per_partition` records on each partition.
struct SourceTopic {
  explicit SourceTopic(int per_partition) {
    for (int p = 0; p < kPartitions; ++p) {
      keys.emplace_back();
      values.emplace_back();
      for (int o = 0; o < per_partition; ++o) {
        keys[p].push_back(absl::StrCat("k", o % 5));
        values[p].push_back(absl::StrCat("v", p, "-", o));
      }
    }
  }
  int64_t size(int p) const { return static_cast<int64_t>(values[p].size()); }
  InputRecord At(int p, int64_t o) const {
    InputRecord r;
    r.topic = kSource;
    r.partition = p;
    r.offset = o;
    r.key = keys[p][o];
    r.value = values[p][o];
    return r;
  }
  std::vector<std::vector<std::string>> keys, values;
};

// An output as the truth knows it: (topic, key, src, idx, reason, value).
using Output =
    std::tuple<std::string, std::string, std::string, std::string, std::string, std::string>;
Output OutputOf(const FakeRecord& r) { return {r.topic, r.key, r.src, r.idx, r.reason, r.value}; }

// What record (p, o) must produce, from the input alone.
std::vector<Output> Truth(const SourceTopic& topic, int p, int64_t o) {
  std::vector<Output> out;
  const std::string src = SourcePosition(kSource, p, o);
  for (int i = 0; i < o % 3; ++i) {
    out.emplace_back(SlotTopics()[(o + i) % 2], topic.keys[p][o], src, absl::StrCat(i), "",
                     absl::StrCat(topic.values[p][o], "#", i));
  }
  if (o % 7 == 3) out.emplace_back(kDeadLetters, topic.keys[p][o], src, "", "bad", "{}");
  return out;
}

// The step: Truth() through the sink, and scriptable failures of BeforeFlush (by batch number,
// 1-based over the step's life: every attempt counts).
class FakeStep : public SplitStep {
 public:
  absl::Status BeginBatch() override {
    ++batches;
    return absl::OkStatus();
  }
  void Process(const InputRecord& record, RecordSink* sink) override {
    const std::string src = SourcePosition(record);
    for (int i = 0; i < record.offset % 3; ++i) {
      const std::string value = absl::StrCat(ToAbsl(record.value), "#", i);
      sink->Emit(
          OutputRecord{static_cast<int>((record.offset + i) % 2), "", record.key, value, src, i});
    }
    if (record.offset % 7 == 3) sink->DeadLetter(DeadLetterRecord{record.key, "{}", "bad", src});
  }
  absl::Status BeforeFlush(RecordSink*) override {
    if (batches == fence_at_batch) return FencedError("a later owner's token (fake)");
    if (redis_down || fail_at_batches.count(batches) > 0) {
      return absl::UnavailableError("fake Redis down");
    }
    return absl::OkStatus();
  }
  void AbortBatch() override { ++aborts; }
  std::vector<std::string> SlotTopics() const override { return rtdw::SlotTopics(); }

  int batches = 0;
  int aborts = 0;
  int fence_at_batch = 0;
  std::set<int> fail_at_batches;
  bool redis_down = false;  // every BeforeFlush fails
};

class NoSleep : public Sleeper {
 public:
  bool Sleep(std::chrono::milliseconds, const StopCondition& stop) override {
    return !(stop && stop());
  }
};

// The split job's store under `root`.
std::unique_ptr<StateStore> OpenStore(const std::string& root) {
  return engine_test::OpenStore(root, "log-split");
}

// The committed next offset of each partition (0 when none).
std::vector<int64_t> StoredOffsets(StateStore& store) {
  std::vector<int64_t> out;
  for (int p = 0; p < kPartitions; ++p) {
    auto o = store.GetOffset(kSource, p);
    EXPECT_TRUE(o.ok()) << o.status();
    out.push_back(o.ok() ? o->value_or(0) : -1);
  }
  return out;
}

// Records of `topic` below `next` whose outputs are not all in `acknowledged`: "" when none.
std::string Unacknowledged(const SourceTopic& topic, const std::vector<int64_t>& next,
                           const std::vector<FakeRecord>& acknowledged) {
  std::set<Output> held;
  for (const FakeRecord& r : acknowledged) held.insert(OutputOf(r));
  std::string missing;
  for (int p = 0; p < kPartitions; ++p) {
    for (int64_t o = 0; o < next[p]; ++o) {
      for (const Output& out : Truth(topic, p, o)) {
        if (held.count(out) == 0) {
          absl::StrAppend(&missing, " ", std::get<2>(out), "#", std::get<3>(out), "@",
                          std::get<0>(out));
        }
      }
    }
  }
  return missing;
}

// A split job in miniature: the pipeline, a real store, the fake producer and a consumer of the
// in-memory topic that polls kPerPoll records of each partition from its positions (the stored
// offsets at the start).
class Job : public ConsumerControl {
 public:
  Job(const SourceTopic& topic, const std::string& root, const std::string& log, bool group_mode,
      uint64_t seed = 1, std::chrono::milliseconds revoke_timeout = std::chrono::seconds(30))
      : producer(log, seed),
        topic_(topic),
        log_(log),
        store_(OpenStore(root)),
        metrics_(&registry_, "test") {
    positions_ = StoredOffsets(*store_);
    ProducePipelineOptions o;
    o.job = "test";
    o.dead_letter_topic = kDeadLetters;
    o.group_mode = group_mode;
    o.revoke_timeout = revoke_timeout;
    o.sleeper = &no_sleep_;
    o.fault = [this](std::string_view point) {
      if (point == kill_point && ++kill_hits == kill_at_hit) raise(SIGKILL);
    };
    pipeline = std::make_unique<ProducePipeline>(o, &producer, store_.get(), &step, this, &stop,
                                                 &metrics_, &problem_);
    EXPECT_TRUE(pipeline->Init().ok());
  }
  ~Job() override {
    pipeline.reset();
    if (store_) {
      EXPECT_TRUE(store_->Close().ok());
    }
  }

  // ConsumerControl.
  bool AssignmentLost() const override { return lost; }
  absl::Status Rewind(const std::map<TopicPartition, int64_t>& first) override {
    rewinds.push_back(first);
    for (const auto& [tp, offset] : first) positions_[tp.second] = offset;
    return absl::OkStatus();
  }
  void Committed(const std::map<TopicPartition, int64_t>& next) override {
    commits.push_back(next);
    // The store's offsets never pass a record whose acknowledgement did not come.
    if (check_commits) {
      // Every worker's acknowledged records are in the log (a restart's store has earlier
      // workers' commits).
      std::string missing =
          Unacknowledged(topic_, StoredOffsets(*store_), FakeProducer::ReadLog(log_));
      EXPECT_EQ(missing, "") << "committed past unacknowledged outputs after commit "
                             << commits.size();
    }
  }
  void Release(int slot) override { held_[slot].clear(); }

  // One RunOnce of a split runner: poll into the free slot, hand the batch over (or, when
  // nothing came, commit the batch in flight).
  absl::Status Step() {
    const int slot = pipeline->FreeSlot();
    EXPECT_TRUE(held_[slot].empty()) << "slot " << slot << " still held";
    held_[slot].clear();
    for (int p = 0; p < kPartitions; ++p) {
      for (size_t i = 0; i < kPerPoll && positions_[p] < topic_.size(p); ++i) {
        held_[slot].push_back(topic_.At(p, positions_[p]++));
      }
    }
    if (held_[slot].empty()) return pipeline->CommitInFlight();
    return pipeline->Run(slot, held_[slot], std::chrono::steady_clock::now());
  }
  bool AtEnd() const {
    for (int p = 0; p < kPartitions; ++p) {
      if (positions_[p] < topic_.size(p)) return false;
    }
    return !pipeline->in_flight();
  }
  // Steps until the topic is read and committed (or the pipeline gives up); false on an error.
  bool RunToEnd() {
    for (int i = 0; i < 10000 && !AtEnd() && !pipeline->abandoned(); ++i) {
      if (absl::Status st = Step(); !st.ok()) {
        ADD_FAILURE() << st;
        return false;
      }
    }
    return AtEnd();
  }
  StateStore& store() { return *store_; }
  const std::vector<int64_t>& positions() const { return positions_; }
  uint64_t retries() const { return metrics_.retries->value(); }
  uint64_t fenced() const { return metrics_.fenced->value(); }

  FakeProducer producer;
  FakeStep step;
  StopControl stop;
  std::unique_ptr<ProducePipeline> pipeline;
  bool lost = false;
  bool check_commits = true;
  std::vector<std::map<TopicPartition, int64_t>> rewinds;
  std::vector<std::map<TopicPartition, int64_t>> commits;
  std::string kill_point;
  int kill_at_hit = 0;
  int kill_hits = 0;

 private:
  const SourceTopic& topic_;
  const std::string log_;
  std::unique_ptr<StateStore> store_;
  MetricsRegistry registry_;
  ProducePipelineMetrics metrics_;
  JobProblem problem_{"test"};
  NoSleep no_sleep_;
  std::vector<int64_t> positions_;
  std::vector<InputRecord> held_[ProducePipeline::kSlots];
};

class ProducePipelineTest : public ::testing::Test {
 protected:
  std::string Root() const { return dir_.path() + "/state"; }
  std::string Log() const { return dir_.path() + "/topic.log"; }

  // Every output of the truth is in `held` at least once, nothing else is; the store's offsets
  // (`stored`; read from the closed store when null) are at the end.
  void ExpectComplete(const SourceTopic& topic, const std::vector<FakeRecord>& held,
                      const std::vector<int64_t>* stored = nullptr) {
    std::set<Output> truth;
    for (int p = 0; p < kPartitions; ++p) {
      for (int64_t o = 0; o < topic.size(p); ++o) {
        for (const Output& out : Truth(topic, p, o)) truth.insert(out);
      }
    }
    std::set<Output> got;
    for (const FakeRecord& r : held) {
      got.insert(OutputOf(r));
      EXPECT_TRUE(truth.count(OutputOf(r))) << "unexpected " << r.topic << " " << r.src << "#"
                                            << r.idx << " key " << r.key << " " << r.value;
    }
    for (const Output& out : truth) {
      EXPECT_TRUE(got.count(out)) << "lost " << std::get<0>(out) << " " << std::get<2>(out) << "#"
                                  << std::get<3>(out);
    }
    std::vector<int64_t> end;
    for (int p = 0; p < kPartitions; ++p) end.push_back(topic.size(p));
    if (stored != nullptr) {
      EXPECT_EQ(*stored, end);
      return;
    }
    auto store = OpenStore(Root());
    ASSERT_TRUE(store);
    EXPECT_EQ(StoredOffsets(*store), end);
    ASSERT_TRUE(store->Close().ok());
  }

  // After a killed worker: the stored offsets pass no record whose outputs were not all
  // acknowledged.
  void ExpectCommittedAcknowledged(const SourceTopic& topic) {
    auto store = OpenStore(Root());
    ASSERT_TRUE(store);
    EXPECT_EQ(Unacknowledged(topic, StoredOffsets(*store), FakeProducer::ReadLog(Log())), "")
        << "the stored offsets pass outputs that were never acknowledged";
    ASSERT_TRUE(store->Close().ok());
  }

  // The job's stored offsets (kept for ExpectComplete).
  const std::vector<int64_t>& Stored(Job& job) {
    stored_ = StoredOffsets(job.store());
    return stored_;
  }

  TempDir dir_;
  std::vector<int64_t> stored_;
};

// Per output topic and source partition, the last copy of each output comes in source order.
void ExpectLastCopiesInSourceOrder(const std::vector<FakeRecord>& acknowledged) {
  // (topic, src, idx) -> the seq of its last copy.
  std::map<std::tuple<std::string, std::string, std::string>, int64_t> last;
  for (const FakeRecord& r : acknowledged) {
    int64_t& seq = last[{r.topic, r.src, r.idx}];
    seq = std::max(seq, r.seq);
  }
  // (topic, source partition) -> (last seq, offset, idx) of each output.
  std::map<std::pair<std::string, int>, std::vector<std::tuple<int64_t, int64_t, int>>> streams;
  for (const auto& [key, seq] : last) {
    const auto& [topic, src, idx] = key;
    // src is "SRC/<p>/<o>".
    const size_t a = src.find('/'), b = src.rfind('/');
    const int p = std::stoi(src.substr(a + 1, b - a - 1));
    const int64_t o = std::stoll(src.substr(b + 1));
    streams[{topic, p}].emplace_back(seq, o, idx.empty() ? -1 : std::stoi(idx));
  }
  for (auto& [stream, outputs] : streams) {
    std::sort(outputs.begin(), outputs.end());
    for (size_t i = 1; i < outputs.size(); ++i) {
      const auto& [seq0, o0, i0] = outputs[i - 1];
      const auto& [seq1, o1, i1] = outputs[i];
      EXPECT_LT(std::tie(o0, i0), std::tie(o1, i1))
          << stream.first << " from partition " << stream.second << ": the last copy of " << o0
          << "#" << i0 << " (seq " << seq0 << ") is behind that of " << o1 << "#" << i1 << " (seq "
          << seq1 << ")";
    }
  }
}

// Every commit moves every partition forward (batches commit in order, each once).
void ExpectCommitsInOrder(const std::vector<std::map<TopicPartition, int64_t>>& commits) {
  std::map<TopicPartition, int64_t> at;
  for (size_t i = 0; i < commits.size(); ++i) {
    for (const auto& [tp, next] : commits[i]) {
      EXPECT_GT(next, at[tp]) << "commit " << i << " moves " << tp.first << "/" << tp.second
                              << " back or nowhere";
      at[tp] = next;
    }
  }
}

// The batch (0-based, in commit order) a record belongs to, from the commits' offsets.
int BatchOf(const std::vector<std::map<TopicPartition, int64_t>>& commits, const std::string& src) {
  const size_t a = src.find('/'), b = src.rfind('/');
  const TopicPartition tp{src.substr(0, a), std::stoi(src.substr(a + 1, b - a - 1))};
  const int64_t o = std::stoll(src.substr(b + 1));
  for (size_t i = 0; i < commits.size(); ++i) {
    auto it = commits[i].find(tp);
    if (it != commits[i].end() && o < it->second) return static_cast<int>(i);
  }
  return -1;
}

TEST_F(ProducePipelineTest, ARunWithDelayedOutOfOrderAcksCommitsOnlyWhatWasAcknowledged) {
  const SourceTopic topic(60);
  Job job(topic, Root(), Log(), /*group_mode=*/false);
  ASSERT_TRUE(job.RunToEnd());
  EXPECT_EQ(job.retries(), 0u);
  EXPECT_EQ(job.pipeline->given_up(), "");
  ExpectCommitsInOrder(job.commits);
  EXPECT_EQ(job.commits.size(), 15u);  // 120 records, 8 per batch
  ExpectLastCopiesInSourceOrder(job.producer.acknowledged());
  // Reports did come out of order across batches (or the test shows nothing about it).
  bool crossed = false;
  auto ack = FakeProducer::ReadLog(Log());
  for (size_t i = 1; i < ack.size(); ++i) crossed |= ack[i].seq < ack[i - 1].seq;
  EXPECT_TRUE(crossed);
  ExpectComplete(topic, ack, &Stored(job));
}

// A kill at every point of the transaction — mid-produce, mid-way through the delivery reports,
// before and after the store's commit — at the 1st, 3rd and 8th time the point is reached, with a
// failed delivery and a refused produce on the way (so that batches run again alone); the
// restart, killed once more, then a run to the end from the same store and the same topic. After
// each kill the stored offsets pass no unacknowledged output; at the end every output is there.
TEST_F(ProducePipelineTest, AKillAtEveryPointLosesNoRecord) {
  const SourceTopic topic(40);
  for (const std::string point : {"produce", "report", "before_commit", "after_commit"}) {
    for (int hit : {1, 3, 8}) {
      SCOPED_TRACE(absl::StrCat(point, " #", hit));
      std::filesystem::remove_all(Root());
      std::filesystem::remove(Log());
      auto worker = [&](int at_hit, uint64_t seed) {
        return [&, at_hit, seed] {
          Job job(topic, Root(), Log(), /*group_mode=*/false, seed);
          job.check_commits = false;  // checked by the parent, from the store and the log
          job.producer.fail_deliveries = {6};
          job.producer.fail_produce_calls = {21};
          if (point == "produce") job.producer.kill_at_produce = at_hit * 5;
          if (point == "report") job.producer.kill_at_report = at_hit * 5;
          job.kill_point = point;
          job.kill_at_hit = at_hit;
          return job.RunToEnd();
        };
      };
      ASSERT_EQ(RunInChild(worker(hit, 11)), "killed") << "the worker never reached the point";
      ExpectCommittedAcknowledged(topic);
      ASSERT_EQ(RunInChild(worker(1, 12)), "killed");
      ExpectCommittedAcknowledged(topic);
      {
        Job job(topic, Root(), Log(), /*group_mode=*/false, 13);
        ASSERT_TRUE(job.RunToEnd());
      }
      ExpectComplete(topic, FakeProducer::ReadLog(Log()));
    }
  }
}

// Batch N's delivery fails while N+1 is already produced: N is run again alone (flushed,
// committed), then N+1 again after it; N+1 is never committed before N, and in every output
// topic the last copies stay in source order.
TEST_F(ProducePipelineTest, AFailedBatchRunsAgainAloneThenTheOneBehindIt) {
  const SourceTopic topic(40);
  Job job(topic, Root(), Log(), /*group_mode=*/false);
  job.producer.fail_deliveries = {8};
  ASSERT_TRUE(job.RunToEnd());
  EXPECT_EQ(job.retries(), 1u);
  ExpectCommitsInOrder(job.commits);
  ExpectLastCopiesInSourceOrder(job.producer.acknowledged());
  ExpectComplete(topic, FakeProducer::ReadLog(Log()), &Stored(job));

  const std::vector<FakeRecord>& produced = job.producer.produced();
  const int failed = BatchOf(job.commits, produced[7].src);
  ASSERT_GE(failed, 0);
  // Copies per output, and where batch N's and N+1's second copies are.
  std::map<std::tuple<std::string, std::string, std::string>, int> copies;
  int64_t last_first_n1 = 0, first_second_n = INT64_MAX, last_second_n = 0,
          first_second_n1 = INT64_MAX;
  for (const FakeRecord& r : produced) {
    const int n = ++copies[{r.topic, r.src, r.idx}];
    const int batch = BatchOf(job.commits, r.src);
    EXPECT_EQ(n, batch == failed || batch == failed + 1 ? n : 1)
        << r.src << " produced again though its batch " << batch << " did not fail";
    if (batch == failed + 1 && n == 1) last_first_n1 = std::max(last_first_n1, r.seq);
    if (batch == failed && n == 2) {
      first_second_n = std::min(first_second_n, r.seq);
      last_second_n = std::max(last_second_n, r.seq);
    }
    if (batch == failed + 1 && n == 2) first_second_n1 = std::min(first_second_n1, r.seq);
  }
  for (const auto& [output, n] : copies) {
    const int batch = BatchOf(job.commits, std::get<1>(output));
    if (batch == failed || batch == failed + 1) {
      EXPECT_EQ(n, 2) << std::get<1>(output) << " of batch " << batch;
    }
  }
  // N+1 was produced before N's failure was seen; N ran again alone, then N+1.
  EXPECT_LT(last_first_n1, first_second_n);
  EXPECT_LT(last_second_n, first_second_n1);
}

// A produce of batch N+1 is refused: the batch in flight (N) commits first — it does not depend
// on N+1 — and N+1 runs alone until it commits.
TEST_F(ProducePipelineTest, ARefusedProduceCommitsTheBatchInFlightThenRunsItsBatchAlone) {
  const SourceTopic topic(40);
  Job job(topic, Root(), Log(), /*group_mode=*/false);
  job.producer.fail_produce_calls = {12};
  ASSERT_TRUE(job.RunToEnd());
  EXPECT_EQ(job.retries(), 1u);
  ExpectCommitsInOrder(job.commits);
  ExpectLastCopiesInSourceOrder(job.producer.acknowledged());
  ExpectComplete(topic, FakeProducer::ReadLog(Log()), &Stored(job));
  // The refused call's batch is the only one produced twice.
  std::set<int> twice;
  std::map<std::tuple<std::string, std::string, std::string>, int> copies;
  for (const FakeRecord& r : job.producer.produced()) {
    if (++copies[{r.topic, r.src, r.idx}] == 2) twice.insert(BatchOf(job.commits, r.src));
  }
  EXPECT_EQ(twice.size(), 1u);
}

// Group mode: the assignment is found lost while N+1 is produced (N in flight). At N's commit
// both are dropped uncommitted, counted as fenced, and the consumer is moved back to their first
// offsets — the stored offsets, as nothing after them was committed.
TEST_F(ProducePipelineTest, AFencedBatchAndTheOneBehindAreDroppedAndTheConsumerRewound) {
  const SourceTopic topic(40);
  Job job(topic, Root(), Log(), /*group_mode=*/true);
  // Two batches commit, the third is in flight; the fence comes during the fourth's produce.
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(job.Step().ok());
  ASSERT_TRUE(job.pipeline->in_flight());
  const std::vector<int64_t> stored = StoredOffsets(job.store());
  const int64_t calls = static_cast<int64_t>(job.producer.produced().size());
  job.producer.on_produce = [&](int64_t call) {
    if (call == calls + 2) job.lost = true;
  };
  const size_t commits = job.commits.size();
  ASSERT_TRUE(job.Step().ok());
  EXPECT_EQ(job.commits.size(), commits) << "a fenced batch committed";
  EXPECT_EQ(job.fenced(), 2u);
  EXPECT_FALSE(job.pipeline->in_flight());
  EXPECT_EQ(StoredOffsets(job.store()), stored);
  ASSERT_EQ(job.rewinds.size(), 1u);
  std::map<TopicPartition, int64_t> expected;
  for (int p = 0; p < kPartitions; ++p) expected[{kSource, p}] = stored[p];
  EXPECT_EQ(job.rewinds[0], expected);
  EXPECT_GE(job.step.aborts, 1);
  // Nothing more is produced while it is fenced; once it owns them again it finishes the topic.
  const size_t produced = job.producer.produced().size();
  ASSERT_TRUE(job.Step().ok());
  EXPECT_EQ(job.producer.produced().size(), produced);
  EXPECT_EQ(job.fenced(), 3u);
  job.lost = false;
  job.producer.on_produce = nullptr;
  ASSERT_TRUE(job.RunToEnd());
  ExpectComplete(topic, FakeProducer::ReadLog(Log()), &Stored(job));
}

// The step fences batch N+1 (db-split: a later owner's Redis token) while N is in flight: both
// are dropped, N's first offsets are where the consumer reads again.
TEST_F(ProducePipelineTest, AStepFencingTheBatchBehindDropsBoth) {
  const SourceTopic topic(40);
  Job job(topic, Root(), Log(), /*group_mode=*/true);
  job.step.fence_at_batch = 3;
  for (int i = 0; i < 2; ++i) ASSERT_TRUE(job.Step().ok());  // 1 committed, 2 in flight
  const std::vector<int64_t> stored = StoredOffsets(job.store());
  ASSERT_EQ(stored, (std::vector<int64_t>{4, 4}));
  ASSERT_TRUE(job.Step().ok());
  EXPECT_EQ(job.fenced(), 2u);
  EXPECT_EQ(StoredOffsets(job.store()), stored);
  ASSERT_EQ(job.rewinds.size(), 1u);
  std::map<TopicPartition, int64_t> expected = {{{kSource, 0}, 4}, {{kSource, 1}, 4}};
  EXPECT_EQ(job.rewinds[0], expected);
  ASSERT_TRUE(job.RunToEnd());
  ExpectComplete(topic, FakeProducer::ReadLog(Log()), &Stored(job));
}

// A stop under way when batch N's delivery fails (N+1 produced behind it): both are given up
// uncommitted, GivenUp() says how many records and why, nothing more is polled; a restart reads
// them again and loses nothing.
TEST_F(ProducePipelineTest, AStopGivesBothBatchesUpUncommitted) {
  const SourceTopic topic(40);
  {
    Job job(topic, Root(), Log(), /*group_mode=*/false);
    job.producer.fail_deliveries = {1};
    ASSERT_TRUE(job.Step().ok());  // batch 1 in flight
    job.stop.Begin(std::chrono::steady_clock::now() + std::chrono::seconds(30));
    ASSERT_TRUE(job.Step().ok());  // batch 2 produced; batch 1 failed
    EXPECT_TRUE(job.pipeline->abandoned());
    EXPECT_EQ(job.pipeline->given_up(),
              "16 records read but not committed (fake delivery failed: record 1 not "
              "acknowledged): read again at the next start");
    EXPECT_TRUE(job.commits.empty());
    EXPECT_EQ(StoredOffsets(job.store()), (std::vector<int64_t>{0, 0}));
    job.pipeline->FinishAtStop();
    EXPECT_EQ(StoredOffsets(job.store()), (std::vector<int64_t>{0, 0}));
  }
  Job job(topic, Root(), Log(), /*group_mode=*/false, 2);
  ASSERT_TRUE(job.RunToEnd());
  ExpectComplete(topic, FakeProducer::ReadLog(Log()), &Stored(job));
}

// The stop's own wait: the batch in flight commits when its acknowledgements come by the
// deadline, and is given up when they do not.
TEST_F(ProducePipelineTest, FinishAtStopCommitsOnlyWhatIsAcknowledgedByTheDeadline) {
  const SourceTopic topic(40);
  {
    Job job(topic, Root(), Log(), /*group_mode=*/false);
    ASSERT_TRUE(job.Step().ok());
    job.stop.Begin(std::chrono::steady_clock::now() + std::chrono::seconds(30));
    job.pipeline->FinishAtStop();
    EXPECT_EQ(job.pipeline->given_up(), "");
    EXPECT_EQ(StoredOffsets(job.store()), (std::vector<int64_t>{4, 4}));
  }
  Job job(topic, Root(), Log(), /*group_mode=*/false);
  ASSERT_TRUE(job.Step().ok());
  job.producer.hold_reports = true;
  job.stop.Begin(std::chrono::steady_clock::now() + std::chrono::milliseconds(300));
  job.pipeline->FinishAtStop();
  EXPECT_TRUE(job.pipeline->abandoned());
  EXPECT_NE(job.pipeline->given_up().find("8 records read but not committed (fake: "),
            std::string::npos)
      << job.pipeline->given_up();
  EXPECT_EQ(StoredOffsets(job.store()), (std::vector<int64_t>{4, 4}));
}

// Group mode's revoke: the batch in flight commits when its acknowledgements come; when the
// assignment is already lost it is dropped as fenced, and the consumer is not moved (its
// partitions go).
TEST_F(ProducePipelineTest, ARevokeCommitsTheBatchInFlightOrDropsItWhenTheAssignmentIsLost) {
  const SourceTopic topic(40);
  Job job(topic, Root(), Log(), /*group_mode=*/true);
  ASSERT_TRUE(job.Step().ok());
  job.pipeline->Revoke(/*lost=*/false);
  EXPECT_FALSE(job.pipeline->in_flight());
  EXPECT_EQ(StoredOffsets(job.store()), (std::vector<int64_t>{4, 4}));
  ASSERT_TRUE(job.Step().ok());
  job.lost = true;
  job.pipeline->Revoke(/*lost=*/true);
  EXPECT_FALSE(job.pipeline->in_flight());
  EXPECT_EQ(job.fenced(), 1u);
  EXPECT_TRUE(job.rewinds.empty());
  EXPECT_EQ(StoredOffsets(job.store()), (std::vector<int64_t>{4, 4}));
}

// Group mode: a batch that keeps failing (Redis down) is retried in place for revoke_timeout,
// then put back uncommitted — the consumer moved back to its first offsets, not counted as
// fenced — so that the job polls; once Redis is back, nothing is lost.
TEST_F(ProducePipelineTest, ABatchThatKeepsFailingIsPutBackAfterTheRevokeTimeout) {
  const SourceTopic topic(40);
  Job job(topic, Root(), Log(), /*group_mode=*/true, 1, std::chrono::milliseconds(300));
  ASSERT_TRUE(job.Step().ok());  // batch 1 in flight
  job.step.redis_down = true;
  ASSERT_TRUE(job.Step().ok());  // batch 2 fails: batch 1 commits, batch 2 retried, put back
  EXPECT_EQ(StoredOffsets(job.store()), (std::vector<int64_t>{4, 4}));
  EXPECT_GE(job.retries(), 2u);
  EXPECT_EQ(job.fenced(), 0u);
  ASSERT_EQ(job.rewinds.size(), 1u);
  std::map<TopicPartition, int64_t> expected = {{{kSource, 0}, 4}, {{kSource, 1}, 4}};
  EXPECT_EQ(job.rewinds[0], expected);
  EXPECT_EQ(job.positions(), (std::vector<int64_t>{4, 4}));
  EXPECT_EQ(job.pipeline->given_up(), "");
  job.step.redis_down = false;
  ASSERT_TRUE(job.RunToEnd());
  ExpectComplete(topic, FakeProducer::ReadLog(Log()), &Stored(job));
}

}  // namespace
}  // namespace rtdw
