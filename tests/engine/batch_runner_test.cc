// The one runner skeleton (core/engine/batch_runner.h) through both delivery strategies, on the
// in-memory source (tests/engine/fakes/fake_source.h) and a real state store: "produce and await
// acks" with the fake producer (tests/engine/fakes/fake_producer.h), "journal and deliver" with
// the DAU topic, the real DauTransform and the fake cluster of tests/engine/dau_fixture.h.
//
// The truths are independent of the runner: the log's own records and end offsets (what a job
// must have committed and produced), the DAU truth computed from the input alone, the group's
// committed offsets as the fake coordinator holds them, and the documents the fake cluster holds
// (what a de-dup restore must find). Each test builds the input or group move that would break
// one duty of the skeleton: the next offsets of a batch, the free-space gate, a lost offset, a
// partition added while running, a metadata hiccup, a revoke while entries are owed, and the
// keep-or-rebuild decision of a returning partition.
#include "core/engine/batch_runner.h"

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "core/engine/journal_strategy.h"
#include "core/engine/produce_strategy.h"
#include "core/metrics.h"
#include "gtest/gtest.h"
#include "tests/engine/dau_fixture.h"
#include "tests/engine/fakes/fake_producer.h"
#include "tests/engine/fakes/fake_source.h"
#include "tests/harness/process.h"

namespace rtdw {
namespace {

using Clock = std::chrono::steady_clock;
using Op = FakeSource::Op;
using engine_test::FakeEs;
using engine_test::kNow;
using engine_test::kPartitions;
using engine_test::kTopic;
using engine_test::MakeTopic;
using engine_test::Topic;

constexpr char kSplitJob[] = "log-split";
constexpr char kSplitTopic[] = "ODS_BASE_LOG";
constexpr char kOutTopic[] = "DWD_OUT";
constexpr char kGroupId[] = "rtdw.test";

// Retries wait at most 10 ms (the policies' delays are for real services), still cut by a stop.
class QuickSleeper : public Sleeper {
 public:
  bool Sleep(std::chrono::milliseconds delay, const StopCondition& stop) override {
    return SleepUnless(std::min(delay, std::chrono::milliseconds(10)), stop);
  }
};

// A split step that copies every record to kOutTopic (slot 0) with its value.
class CopyStep : public SplitStep {
 public:
  void Process(const InputRecord& record, RecordSink* sink) override {
    sink->Emit(OutputRecord{0, "", record.key, record.value, "", -1});
  }
  std::vector<std::string> SlotTopics() const override { return {kOutTopic}; }
};

// The DAU documents the fake cluster holds, visible to ForEach only as of the last Refresh()
// (as a search sees an index). Counts what it was asked.
class FakeDauReader : public DauDocumentReader {
 public:
  FakeDauReader(std::string es_log, std::string src_prefix, int* refreshes)
      : es_log_(std::move(es_log)), src_prefix_(std::move(src_prefix)), refreshes_(refreshes) {}
  absl::Status Refresh() override {
    ++*refreshes_;
    uint64_t superseded = 0;
    visible_ = FakeEs::Load(es_log_, &superseded);
    return absl::OkStatus();
  }
  absl::Status ForEach(const std::function<absl::Status(std::string_view id,
                                                        std::string_view source)>& fn) override {
    for (const auto& [key, doc] : visible_) {
      if (!absl::StartsWith(doc.src, src_prefix_)) continue;
      const std::string source = absl::StrCat(R"({"mid":")", key.second, R"(","ts":)", doc.ts,
                                              R"(,"rtdw_src":")", doc.src, R"("})");
      if (absl::Status st = fn(key.second, source); !st.ok()) return st;
    }
    return absl::OkStatus();
  }

 private:
  const std::string es_log_;
  const std::string src_prefix_;
  int* refreshes_;
  std::map<engine_test::DocKey, engine_test::Doc> visible_;
};

// The ES job's services: the fake cluster as the sink, no dimensions, the fake reader.
class FakeServices : public JournalServices {
 public:
  explicit FakeServices(FakeEs* es, std::string es_log, int* readers, int* refreshes)
      : es_(es), es_log_(std::move(es_log)), readers_(readers), refreshes_(refreshes) {}
  absl::Status ConnectSink(JournalDelivery* delivery, const StopControl&, JobProblem*) override {
    es_->SetControls(delivery->abort_flag(),
                     [delivery](uint64_t seq) { return delivery->MaySend(seq); });
    return absl::OkStatus();
  }
  JournalSink* sink() override { return es_; }
  absl::StatusOr<DimensionSource*> OpenDimensions() override { return &dims_; }
  std::unique_ptr<DauDocumentReader> DedupReader(const std::string& topic,
                                                 int32_t partition) override {
    ++*readers_;
    return std::make_unique<FakeDauReader>(es_log_, absl::StrCat(topic, "/", partition, "/"),
                                           refreshes_);
  }

 private:
  FakeEs* es_;
  const std::string es_log_;
  int* readers_;
  int* refreshes_;
  engine_test::NoDimensions dims_;
};

class BatchRunnerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    config_.state.dir = dir_.path() + "/state";
    config_.state.min_free_mb = 0;
    config_.kafka.brokers = "fake:9092";
    config_.kafka.revoke_timeout = std::chrono::seconds(1);
    config_.shutdown.timeout = std::chrono::seconds(20);
  }

  // A split job's runner on the fake log (its source kept in source_, its producer in
  // producer_).
  std::unique_ptr<BatchRunner> SplitRunner(int64_t batch_max_records = 3) {
    ProduceStrategyOptions so;
    so.dead_letter_topic = "DLQ";
    so.retry_backoff = BackoffOptions{std::chrono::milliseconds(1), std::chrono::milliseconds(0),
                                      std::chrono::milliseconds(5), 2.0};
    so.sleeper = &sleeper_;
    auto make_producer = [this]() -> absl::StatusOr<ProducerClient> {
      auto p = std::make_unique<testing::FakeProducer>("");
      producer_ = p.get();
      ProducerClient c;
      c.producer = std::move(p);
      return c;
    };
    BatchRunnerOptions ro;
    ro.job = kSplitJob;
    ro.source_topics = {kSplitTopic};
    ro.batch_max_records = batch_max_records;
    ro.batch_max_ms = std::chrono::milliseconds(20);
    ro.sleeper = &sleeper_;
    return std::make_unique<BatchRunner>(
        config_, std::move(ro),
        std::make_unique<ProduceStrategy>(std::move(so), std::make_unique<CopyStep>(),
                                          std::move(make_producer)),
        Source(), &metrics_);
  }

  // The DAU job's runner (its strategy kept in journal_).
  std::unique_ptr<BatchRunner> DauRunner(int64_t batch_max_records = 8, size_t max_backlog = 3) {
    JournalStrategyOptions so;
    so.max_backlog = max_backlog;
    so.restore_dedup = true;
    so.time_zone = absl::UTCTimeZone();
    so.now_ms = [] { return kNow; };
    so.sleeper = &sleeper_;
    auto strategy = std::make_unique<JournalStrategy>(
        std::move(so), engine_test::NewTransform(),
        std::make_unique<FakeServices>(&es_, EsLog(), &readers_, &refreshes_));
    journal_ = strategy.get();
    BatchRunnerOptions ro;
    ro.job = "dau";
    ro.source_topics = {kTopic};
    ro.batch_max_records = batch_max_records;
    ro.batch_max_ms = std::chrono::milliseconds(20);
    ro.sleeper = &sleeper_;
    return std::make_unique<BatchRunner>(
        config_, std::move(ro), std::move(strategy), Source(), &metrics_,
        [this]() -> absl::StatusOr<std::unique_ptr<StateStore>> {
          auto store = engine_test::OpenStore(config_.state.dir + "/dau");
          if (store == nullptr) return absl::InternalError("store did not open");
          return store;
        });
  }

  // A FakeSource on log_ with source_options_ (kept in source_; the series the runner gave it in
  // given_metrics_).
  SourceFactory Source() {
    return [this](const SourceMetrics& metrics) -> absl::StatusOr<std::unique_ptr<RecordSource>> {
      given_metrics_ = metrics;
      auto s = std::make_unique<FakeSource>(&log_, source_options_);
      source_ = s.get();
      return std::unique_ptr<RecordSource>(std::move(s));
    };
  }

  // RunOnce until `done` (every call must succeed), at most `limit`.
  bool RunUntil(BatchRunner& runner, const std::function<bool()>& done,
                std::chrono::seconds limit = std::chrono::seconds(60)) {
    const auto until = Clock::now() + limit;
    while (Clock::now() < until) {
      if (done()) return true;
      auto n = runner.RunOnce();
      if (!n.ok()) {
        ADD_FAILURE() << "RunOnce: " << n.status();
        return false;
      }
    }
    return done();
  }

  uint64_t Counted(const std::string& name, const std::string& job) {
    return metrics_.GetCounter(name, "", {{"job", job}})->value();
  }

  std::optional<int64_t> StoredOffset(BatchRunner& runner, const std::string& topic, int p) {
    auto o = runner.store()->GetOffset(topic, p);
    EXPECT_TRUE(o.ok()) << o.status();
    return o.ok() ? *o : std::nullopt;
  }

  // The split log: `partitions` partitions with `records` records each ("p<P>-<i>").
  void MakeSplitTopic(int partitions, int records) {
    log_.CreateTopic(kSplitTopic, partitions);
    for (int p = 0; p < partitions; ++p) {
      for (int i = 0; i < records; ++i) Append(p);
    }
  }
  void Append(int p) {
    const int64_t next = log_.Watermarks({kSplitTopic, p}).second;
    log_.Append(kSplitTopic, p, absl::StrCat("p", p, "-", next), absl::StrCat("k", p));
  }
  // The values acknowledged on kOutTopic.
  std::multiset<std::string> Produced() const {
    std::multiset<std::string> out;
    for (const auto& r : producer_->acknowledged()) {
      if (r.topic == kOutTopic) out.insert(r.value);
    }
    return out;
  }
  // Every value the split log holds.
  std::multiset<std::string> Logged() const {
    std::multiset<std::string> out;
    const int n = log_.PartitionCount(kSplitTopic).value_or(0);
    for (int p = 0; p < n; ++p) {
      log_.Read({kSplitTopic, p}, 0, 1u << 20,
                [&](int64_t, const FakeLog::Record& r) { out.insert(r.value); });
    }
    return out;
  }

  // The DAU topic into the log (offsets as the fixture numbers them).
  void LogDauTopic(const Topic& topic) {
    log_.CreateTopic(kTopic, kPartitions);
    for (int p = 0; p < kPartitions; ++p) {
      for (const auto& r : topic[p]) {
        ASSERT_EQ(log_.Append(kTopic, p, r.value, r.mid), r.offset);
      }
    }
  }
  std::string EsLog() const { return dir_.path() + "/es.log"; }
  std::map<engine_test::DocKey, engine_test::Doc> EsHolds() const {
    uint64_t superseded = 0;
    return FakeEs::Load(EsLog(), &superseded);
  }

  testing::TempDir dir_;
  Config config_;
  MetricsRegistry metrics_;
  QuickSleeper sleeper_;
  FakeLog log_;
  FakeSourceOptions source_options_;
  FakeSource* source_ = nullptr;
  SourceMetrics given_metrics_;
  testing::FakeProducer* producer_ = nullptr;
  FakeEs es_{dir_.path() + "/es.log"};
  JournalStrategy* journal_ = nullptr;
  int readers_ = 0;
  int refreshes_ = 0;
};

// ---- lone mode, "produce and await acks"

// Batches of 3 over partitions of 7 and 5 records: every record is produced exactly once, and the
// store, the source's committed offsets and the lag say each partition's end — a batch that
// committed its last offset instead of the next one (or another batch's) shows here; records
// appended later are read from exactly there.
TEST_F(BatchRunnerTest, LoneSplitJobCommitsEachBatchsNextOffsetsAndLag) {
  log_.CreateTopic(kSplitTopic, 2);
  for (int i = 0; i < 7; ++i) Append(0);
  for (int i = 0; i < 5; ++i) Append(1);
  auto runner = SplitRunner();
  ASSERT_TRUE(runner->Start().ok());
  // rtdw_offset_lost_total is registered at construction (at 0 on /metrics before any loss).
  EXPECT_TRUE(absl::StrContains(metrics_.RenderPrometheus(),
                                R"(rtdw_offset_lost_total{job="log-split"} 0)"))
      << metrics_.RenderPrometheus();
  ASSERT_TRUE(RunUntil(*runner, [&] { return runner->CaughtUp(); }));
  EXPECT_EQ(Produced(), Logged());
  EXPECT_EQ(StoredOffset(*runner, kSplitTopic, 0), 7);
  EXPECT_EQ(StoredOffset(*runner, kSplitTopic, 1), 5);
  EXPECT_EQ(log_.GroupOffsets(kGroupId),
            (std::map<TopicPartition, int64_t>{{{kSplitTopic, 0}, 7}, {{kSplitTopic, 1}, 5}}));
  EXPECT_EQ(runner->lag()->total(), 0);
  EXPECT_EQ(Counted("rtdw_records_in_total", kSplitJob), 12u);

  for (int i = 0; i < 4; ++i) Append(1);
  ASSERT_TRUE(RunUntil(*runner, [&] { return StoredOffset(*runner, kSplitTopic, 1) == 9; }));
  ASSERT_TRUE(RunUntil(*runner, [&] { return runner->CaughtUp(); }));
  EXPECT_EQ(Produced(), Logged());  // nothing twice, nothing skipped
  EXPECT_EQ(StoredOffset(*runner, kSplitTopic, 0), 7);
  EXPECT_EQ(log_.GroupOffsets(kGroupId)[TopicPartition(kSplitTopic, 1)], 9);
  EXPECT_TRUE(runner->Stop().ok());
  EXPECT_EQ(runner->GivenUp(), "");
}

// A (nearly) full state disk: nothing is polled, /health says why; once space is back the job
// reads again.
// rtdw_kafka_fetch_wakes_total{job} is on /metrics from the runner's construction, at 0, and every
// source built for the job is given that one series: a job whose source is built again (the job
// restarted, a new runner) goes on counting from where the last source left it, and the series
// outlives the source (it is read after Stop destroyed it).
TEST_F(BatchRunnerTest, FetchWakesSeriesIsRegisteredAtConstructionAndGivenToEverySource) {
  MakeSplitTopic(1, 2);
  const std::string series = R"(rtdw_kafka_fetch_wakes_total{job="log-split"} )";
  for (uint64_t build = 1; build <= 2; ++build) {
    given_metrics_ = SourceMetrics{};
    auto runner = SplitRunner();
    const std::string page = metrics_.RenderPrometheus();
    EXPECT_TRUE(absl::StrContains(page, absl::StrCat(series, (build - 1) * 5, "\n")))
        << "build " << build << ":\n"
        << page;
    ASSERT_TRUE(runner->Start().ok());
    ASSERT_NE(given_metrics_.fetch_wakes, nullptr) << "build " << build;
    EXPECT_EQ(given_metrics_.fetch_wakes,
              metrics_.GetCounter("rtdw_kafka_fetch_wakes_total", "", {{"job", kSplitJob}}));
    given_metrics_.fetch_wakes->Add(5);  // as a KafkaConsumer's waker does for each wake
    ASSERT_TRUE(RunUntil(*runner, [&] { return runner->CaughtUp(); }));
    ASSERT_TRUE(runner->Stop().ok());
  }
  EXPECT_EQ(Counted("rtdw_kafka_fetch_wakes_total", kSplitJob), 10u);
  EXPECT_TRUE(absl::StrContains(metrics_.RenderPrometheus(), absl::StrCat(series, "10\n")));
}

TEST_F(BatchRunnerTest, FreeSpaceGateStopsPolling) {
  MakeSplitTopic(1, 4);
  config_.state.min_free_mb = int64_t{1} << 40;  // a petabyte: no disk has it
  auto runner = SplitRunner();
  ASSERT_TRUE(runner->Start().ok());
  for (int i = 0; i < 3; ++i) {
    auto n = runner->RunOnce();
    ASSERT_TRUE(n.ok()) << n.status();
    EXPECT_EQ(*n, 0u);
  }
  EXPECT_EQ(source_->calls(Op::kPoll), 0);
  EXPECT_TRUE(absl::StartsWith(runner->HealthProblem(), "not reading")) << runner->HealthProblem();
  EXPECT_TRUE(producer_->produced().empty());
  EXPECT_TRUE(runner->Stop().ok());
}

// A stored offset the log no longer holds: rtdw_offset_lost_total{job} counts it once and RunOnce
// returns the OutOfRange status (the daemon stops and names it) — never a silent jump.
TEST_F(BatchRunnerTest, LostOffsetIsCountedAndReturned) {
  MakeSplitTopic(1, 5);
  {
    auto runner = SplitRunner();
    ASSERT_TRUE(runner->Start().ok());
    ASSERT_TRUE(RunUntil(*runner, [&] { return runner->CaughtUp(); }));
    ASSERT_EQ(StoredOffset(*runner, kSplitTopic, 0), 5);
    ASSERT_TRUE(runner->Stop().ok());
  }
  for (int i = 0; i < 5; ++i) Append(0);
  log_.Truncate(kSplitTopic, 0, 8);  // offsets 5..7 are gone
  auto runner = SplitRunner();
  ASSERT_TRUE(runner->Start().ok());
  EXPECT_EQ(Counted("rtdw_offset_lost_total", kSplitJob), 0u);
  auto n = runner->RunOnce();
  ASSERT_TRUE(absl::IsOutOfRange(n.status())) << n.status();
  EXPECT_EQ(Counted("rtdw_offset_lost_total", kSplitJob), 1u);
  EXPECT_TRUE(runner->Stop().ok());
}

// Lone mode: a partition added to the source topic while the job runs is assigned and read (from
// its beginning) without a restart; while the broker cannot describe the topic, the job keeps
// running (a Kafka hiccup never stops the daemon) and picks the partition up once it can.
TEST_F(BatchRunnerTest, PartitionAddedWhileRunningIsPickedUpDespiteMetadataFailures) {
  MakeSplitTopic(2, 3);
  auto runner = SplitRunner();
  ASSERT_TRUE(runner->Start().ok());
  ASSERT_TRUE(RunUntil(*runner, [&] { return runner->CaughtUp(); }));
  source_->FailNext(Op::kPartitionCount, absl::UnavailableError("broker gone"), -1);
  log_.GrowTopic(kSplitTopic, 3);
  Append(2);
  Append(2);
  Append(0);  // the job leaves its end, so that it checks again when it comes back to it
  // The check fails for a while: the job runs on, reading the partitions it has.
  ASSERT_TRUE(RunUntil(*runner, [&] { return StoredOffset(*runner, kSplitTopic, 0) == 4; }));
  const auto until = Clock::now() + std::chrono::milliseconds(1500);
  while (Clock::now() < until) ASSERT_TRUE(runner->RunOnce().ok());
  EXPECT_GE(source_->calls(Op::kPartitionCount), 2);
  EXPECT_EQ(StoredOffset(*runner, kSplitTopic, 2), std::nullopt);
  source_->ClearFailures(Op::kPartitionCount);
  Append(0);
  ASSERT_TRUE(RunUntil(*runner, [&] { return StoredOffset(*runner, kSplitTopic, 2) == 2; }));
  ASSERT_TRUE(RunUntil(*runner, [&] { return runner->CaughtUp(); }));
  EXPECT_EQ(Produced(), Logged());
  EXPECT_TRUE(runner->Stop().ok());
}

// ---- "journal and deliver"

// Lone mode end to end: the whole DAU topic through the runner; the cluster holds the truth
// (computed from the input alone), the store's offsets are the log's ends, nothing is owed.
TEST_F(BatchRunnerTest, LoneEsJobDeliversTheTruth) {
  const Topic topic = MakeTopic(40, 5);
  LogDauTopic(topic);
  auto runner = DauRunner();
  ASSERT_TRUE(runner->Start().ok());
  ASSERT_TRUE(RunUntil(*runner, [&] { return runner->CaughtUp(); }));
  for (int p = 0; p < kPartitions; ++p) EXPECT_EQ(StoredOffset(*runner, kTopic, p), 40);
  EXPECT_EQ(runner->lag()->total(), 0);
  ASSERT_TRUE(runner->Stop().ok());
  EXPECT_EQ(runner->GivenUp(), "");
  engine_test::ExpectTruth(EsHolds(), topic);
}

class GroupRunnerTest : public BatchRunnerTest {
 protected:
  void SetUp() override {
    BatchRunnerTest::SetUp();
    config_.kafka.group = "rtdw";
    source_options_.single_member_group = false;  // the test moves the group
    source_options_.wait_for_records = false;
  }
  static std::vector<TopicPartition> All() {
    std::vector<TopicPartition> out;
    for (int p = 0; p < kPartitions; ++p) out.push_back({kTopic, p});
    return out;
  }
  std::optional<std::string> Mark(BatchRunner& runner, int p) {
    auto m = runner.store()->GetMeta(absl::StrCat("handover.", kTopic, ".", p));
    EXPECT_TRUE(m.ok()) << m.status();
    return m.ok() ? *m : std::nullopt;
  }
};

// A revoke while an entry is owed and cannot be delivered (the cluster holds it in flight): the
// revoke gives up within kafka.revoke_timeout, fences the entry (never applied, no longer owed),
// and the hand-over it commits to the group is where that batch started — not its next offsets,
// whose documents never reached the cluster. No mark is left (the hand-over was not clean).
TEST_F(GroupRunnerTest, RevokeWhileOwingFencesWithinTheTimeoutAndHandsOverTheBatchStart) {
  const Topic topic = MakeTopic(30, 7);
  LogDauTopic(topic);
  es_.Hold(1);
  // (A backlog that never fills: a full one pauses polling, and the revoke is served by a poll.)
  auto runner = DauRunner(/*batch_max_records=*/5, /*max_backlog=*/100);
  ASSERT_TRUE(runner->Start().ok());
  source_->ScheduleAssign(All());
  // The first batch commits (entry 1 owed); later polls confirm the lease so that it is sent
  // (and held) — or not: either way it cannot be delivered before the revoke.
  ASSERT_TRUE(RunUntil(*runner, [&] { return journal_->delivery()->Backlog() >= 1; }));
  std::map<TopicPartition, int64_t> first_batch_start;
  for (int p = 0; p < kPartitions; ++p) first_batch_start[{kTopic, p}] = 0;
  ASSERT_TRUE(RunUntil(
      *runner, [&] { return es_.Holding(1); }, std::chrono::seconds(30)));
  source_->ScheduleRevoke();
  const auto started = Clock::now();
  ASSERT_TRUE(runner->RunOnce().ok());
  const auto took = Clock::now() - started;
  EXPECT_EQ(source_->revoked_callbacks(), 1);
  EXPECT_LT(took, std::chrono::seconds(15));  // revoke_timeout 1 s (+ a loaded machine)
  EXPECT_EQ(journal_->delivery()->Backlog(), 0u);
  auto owed = runner->store()->ListJournal(/*with_bodies=*/false);
  ASSERT_TRUE(owed.ok());
  EXPECT_TRUE(owed->empty());
  for (uint64_t seq : es_.applied()) EXPECT_NE(seq, 1u);
  EXPECT_GE(Counted("rtdw_es_fenced_entries_total", "dau"), 1u);
  // The group's offsets: the first batch's start for every partition it read.
  const auto group = log_.GroupOffsets(kGroupId);
  for (const auto& [tp, offset] : group) EXPECT_EQ(offset, first_batch_start[tp]) << tp.second;
  EXPECT_FALSE(group.empty());
  for (int p = 0; p < kPartitions; ++p)
    EXPECT_NE(Mark(*runner, p), std::optional<std::string>("0"));
  es_.Release();
  EXPECT_TRUE(runner->Stop().ok());
}

// A clean revoke hands over every delivered offset and marks it; the same partitions given back
// at exactly that offset keep their local state (nothing rebuilt, no restore). Given back after
// the group's offset moved elsewhere, they are rebuilt: the local state dropped, the de-dup
// slots restored from the cluster (through a refresh: the fake reader sees nothing before one),
// and reading resumes at the group's offset; the cluster still ends in the truth.
TEST_F(GroupRunnerTest, ReassignKeepsLocalStateOnlyAtTheHandoverMark) {
  const Topic topic = MakeTopic(30, 9);
  LogDauTopic(topic);
  auto runner = DauRunner();
  ASSERT_TRUE(runner->Start().ok());
  // Every asynchronous commit is dropped (as Kafka may): only the synchronous ones (the lease's
  // confirmation, the revoke's hand-over) reach the group.
  source_->FailNext(Op::kCommitAsync, absl::UnavailableError("dropped"), -1);
  source_->ScheduleAssign(All());
  auto all_read = [&] {
    for (int p = 0; p < kPartitions; ++p) {
      if (StoredOffset(*runner, kTopic, p) != 30) return false;
    }
    return journal_->delivery()->Backlog() == 0;
  };
  ASSERT_TRUE(RunUntil(*runner, all_read));
  EXPECT_EQ(readers_, 3);  // the first assignment rebuilt (no mark): three restores
  EXPECT_EQ(Counted("rtdw_group_partitions_rebuilt_total", "dau"), 3u);
  engine_test::ExpectTruth(EsHolds(), topic);

  // Clean revoke: everything delivered, the hand-over is the end, marked.
  bool group_behind = false;  // what only the revoke's own commit can move
  for (const auto& [tp, offset] : log_.GroupOffsets(kGroupId)) group_behind |= offset != 30;
  EXPECT_TRUE(group_behind || log_.GroupOffsets(kGroupId).size() < kPartitions);
  source_->ScheduleRevoke();
  ASSERT_TRUE(runner->RunOnce().ok());
  ASSERT_EQ(source_->revoked_callbacks(), 1);
  for (int p = 0; p < kPartitions; ++p) {
    EXPECT_EQ(log_.GroupOffsets(kGroupId)[TopicPartition(kTopic, p)], 30);
    EXPECT_EQ(Mark(*runner, p), std::optional<std::string>("30"));
  }

  // Back at exactly the mark: kept.
  source_->ScheduleAssign(All());
  ASSERT_TRUE(runner->RunOnce().ok());
  ASSERT_EQ(source_->assigned_callbacks(), 2);
  EXPECT_EQ(Counted("rtdw_group_partitions_rebuilt_total", "dau"), 3u);
  EXPECT_EQ(readers_, 3);
  for (int p = 0; p < kPartitions; ++p) {
    EXPECT_EQ(StoredOffset(*runner, kTopic, p), 30);
    EXPECT_EQ(source_->Position({kTopic, p}), 30);
  }

  // Revoked again; meanwhile another member moved the group back (its offsets are not the mark).
  source_->ScheduleRevoke();
  ASSERT_TRUE(runner->RunOnce().ok());
  std::map<TopicPartition, int64_t> elsewhere;
  for (int p = 0; p < kPartitions; ++p) elsewhere[{kTopic, p}] = 10;
  log_.SetGroupOffsets(kGroupId, elsewhere);
  const int refreshes_before = refreshes_;
  const uint64_t restored_before = Counted("rtdw_group_dedup_restored_total", "dau");
  source_->ScheduleAssign(All());
  ASSERT_TRUE(runner->RunOnce().ok());
  EXPECT_EQ(Counted("rtdw_group_partitions_rebuilt_total", "dau"), 6u);
  EXPECT_EQ(readers_, 6);
  EXPECT_EQ(refreshes_, refreshes_before + 3);
  // Every document of the topic the cluster holds is one restored slot.
  EXPECT_EQ(Counted("rtdw_group_dedup_restored_total", "dau") - restored_before, EsHolds().size());
  ASSERT_TRUE(RunUntil(*runner, all_read));
  ASSERT_TRUE(runner->Stop().ok());
  engine_test::ExpectTruth(EsHolds(), topic);
}

}  // namespace
}  // namespace rtdw
