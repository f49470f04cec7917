// Journal and deliver (core/engine/journal_delivery.h) against independent truths: the DAU topic,
// the real DauTransform and the scriptable FakeEs of tests/engine/dau_fixture.h, on a real state
// store. Each test builds the input, order, timing or fault that would break one promise of the
// header — order under transient failures, fencing at a revoke (an entry in flight included),
// the membership lease, the stop's drain, the start-up replay, a kill at every point — and
// checks what the fake cluster was asked and holds, and what the store still owes.
#include "core/engine/journal_delivery.h"

#include <signal.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/engine/job_health.h"
#include "core/engine/job_metrics.h"
#include "core/engine/job_runner.h"
#include "core/metrics.h"
#include "gtest/gtest.h"
#include "tests/engine/dau_fixture.h"
#include "tests/harness/process.h"

namespace rtdw {
namespace {

using engine_test::ExpectDone;
using engine_test::ExpectTruth;
using engine_test::FakeEs;
using engine_test::kNow;
using engine_test::kPartitions;
using engine_test::kTopic;
using engine_test::MakeTopic;
using engine_test::NewTransform;
using engine_test::NoDimensions;
using engine_test::OpenStore;
using engine_test::ReadBatchAtStoredOffsets;
using engine_test::Topic;
using testing::RunInChild;
using testing::TempDir;
using Clock = std::chrono::steady_clock;

// Retries wait at most 10 ms (the policy's delays are for real clusters), still cut by a stop.
class QuickSleeper : public Sleeper {
 public:
  bool Sleep(std::chrono::milliseconds delay, const StopCondition& stop) override {
    return SleepUnless(std::min(delay, std::chrono::milliseconds(10)), stop);
  }
};

// Polls `condition` every 5 ms for up to `limit` (generous: the machine may be loaded).
bool WaitFor(const std::function<bool()>& condition,
             std::chrono::milliseconds limit = std::chrono::seconds(60)) {
  const auto until = Clock::now() + limit;
  while (Clock::now() < until) {
    if (condition()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return condition();
}

std::map<TopicPartition, int64_t> AllAt(int64_t offset) {
  std::map<TopicPartition, int64_t> out;
  for (int p = 0; p < kPartitions; ++p) out[{kTopic, p}] = offset;
  return out;
}

// One job's delivery side with everything it needs: the store under `root`, the fake cluster
// writing `es_log`, the stop, the /health line, the metrics; `Commit` runs the next batch of the
// topic through CommitJournaledBatch and hands it to the delivery, as the runner does.
class Member {
 public:
  Member(const std::string& root, const std::string& es_log, JournalDeliveryOptions options,
         FaultHook fault = nullptr)
      : store(OpenStore(root)),
        es(es_log),
        common(&metrics, "dau"),
        problem("dau"),
        fault_(std::move(fault)),
        transform_(NewTransform()) {
    options.job = "dau";
    options.sleeper = &sleeper_;
    options.now_ms = [] { return kNow; };
    if (fault_) options.fault = fault_;
    delivery =
        std::make_unique<JournalDelivery>(std::move(options), &metrics, &stop, &problem, &common);
    es.SetControls(delivery->abort_flag(),
                   [d = delivery.get()](uint64_t seq) { return d->MaySend(seq); });
  }
  ~Member() {
    delivery.reset();  // the thread ends before the store closes
    if (store) (void)store->Close();
  }

  absl::Status Start() { return delivery->Start(store.get(), &es); }

  // Commits the next batch (up to `batch` records of each partition from the stored offsets);
  // `before_owed` runs once its entry has a seq, before the delivery learns of it. Returns the
  // entry's seq (0: the batch made no entry; -1 (max): the topic is read, or an error).
  uint64_t Commit(size_t batch, const std::function<void(uint64_t seq)>& before_owed = nullptr) {
    std::vector<InputRecord> records;
    if (!ReadBatchAtStoredOffsets(topic_, *store, batch, &records) || records.empty()) {
      return UINT64_MAX;
    }
    auto committed =
        CommitJournaledBatch(*store, *transform_, &dims_, records, kNow, fault_, nullptr);
    if (!committed.ok()) {
      ADD_FAILURE() << committed.status();
      return UINT64_MAX;
    }
    const uint64_t seq = committed->entry ? committed->entry->seq : 0;
    if (committed->entry) docs_[seq] = committed->entry->doc_count;
    if (before_owed && seq != 0) before_owed(seq);
    delivery->Committed(std::move(committed->entry), committed->offsets.next,
                        committed->offsets.first);
    return seq;
  }
  void set_topic(Topic topic) { topic_ = std::move(topic); }
  uint32_t docs(uint64_t seq) const { return docs_.at(seq); }
  std::vector<uint64_t> Owed() {
    std::vector<uint64_t> out;
    auto owed = store->ListJournal(/*with_bodies=*/false);
    EXPECT_TRUE(owed.ok()) << owed.status();
    if (owed.ok()) {
      for (const auto& e : *owed) out.push_back(e.seq);
    }
    return out;
  }
  uint64_t Counted(const std::string& name) {
    return metrics.GetCounter(name, "", {{"job", "dau"}})->value();
  }

  std::unique_ptr<StateStore> store;
  FakeEs es;
  MetricsRegistry metrics;
  JobMetrics common;
  JobProblem problem;
  StopControl stop;
  std::unique_ptr<JournalDelivery> delivery;

 private:
  FaultHook fault_;
  QuickSleeper sleeper_;
  std::unique_ptr<DauTransform> transform_;
  NoDimensions dims_;
  Topic topic_;
  std::map<uint64_t, uint32_t> docs_;
};

class JournalDeliveryTest : public ::testing::Test {
 protected:
  std::string Root() const { return dir_.path() + "/state"; }
  std::string EsLog() const { return dir_.path() + "/es.log"; }
  TempDir dir_;
};

// The `ok` calls of `calls`, in order.
std::vector<uint64_t> Delivered(const std::vector<FakeEs::Call>& calls) {
  std::vector<uint64_t> out;
  for (const auto& c : calls) {
    if (c.outcome == "ok") out.push_back(c.seq);
  }
  return out;
}

// Order: earlier entries fail transiently (several attempts each) while later ones are owed;
// entry N+1 is never handed to the sink before entry N succeeded, each is delivered once, the
// backlog never passes max_backlog, and the cluster ends in the truth.
TEST_F(JournalDeliveryTest, EntriesGoStrictlyInSeqOrderWhenEarlierOnesFailTransiently) {
  const Topic topic = MakeTopic(70, 11);
  JournalDeliveryOptions o;
  o.max_backlog = 3;
  Member m(Root(), EsLog(), o);
  m.set_topic(topic);
  ASSERT_TRUE(m.Start().ok());
  std::vector<uint64_t> seqs;
  size_t scheduled_failures = 0;
  for (int batch = 0;; ++batch) {
    if (!WaitFor([&] { return m.delivery->WaitForRoom(std::chrono::milliseconds(50)); })) {
      ADD_FAILURE() << "the backlog never made room";  // and what was sent is checked below
      break;
    }
    const uint64_t seq = m.Commit(8, [&](uint64_t seq) {
      // Every other entry fails 1-3 times before it goes.
      if (batch % 2 == 0) {
        m.es.FailSeq(seq, 1 + batch % 3);
        scheduled_failures += 1 + batch % 3;
      }
    });
    if (seq == UINT64_MAX) break;
    if (seq != 0) seqs.push_back(seq);
    EXPECT_LE(m.delivery->Backlog(), 3u);
  }
  EXPECT_TRUE(WaitFor([&] { return m.delivery->Backlog() == 0; }));
  const std::vector<FakeEs::Call> calls = m.es.calls();
  std::set<uint64_t> done;
  size_t failures = 0;
  for (const FakeEs::Call& c : calls) {
    for (uint64_t s : seqs) {
      if (s >= c.seq) break;
      EXPECT_TRUE(done.count(s)) << "entry " << c.seq << " sent before entry " << s
                                 << " was delivered";
    }
    if (c.outcome == "ok") {
      EXPECT_TRUE(done.insert(c.seq).second) << "entry " << c.seq << " delivered twice";
    } else {
      ++failures;
    }
  }
  EXPECT_GT(seqs.size(), 6u);
  EXPECT_EQ(Delivered(calls), seqs);
  EXPECT_EQ(failures, scheduled_failures);
  EXPECT_GT(failures, 3u);
  EXPECT_TRUE(m.Owed().empty());
  ExpectTruth(FakeEs::Load(EsLog(), nullptr), topic);
}

// Documents the cluster refuses for good are dead-lettered with the entry's completion (one
// write), counted, and named on /health; the entry is not retried.
TEST_F(JournalDeliveryTest, RefusedDocumentsAreDeadLetteredAndTheEntryCompleted) {
  Member m(Root(), EsLog(), JournalDeliveryOptions{});
  m.set_topic(MakeTopic(20, 12));
  m.es.set_refuse([](const BulkAction& a) { return a.id == "m3" || a.id == "m4"; });
  ASSERT_TRUE(m.Start().ok());
  while (m.Commit(50) != UINT64_MAX) {
  }
  ASSERT_TRUE(WaitFor([&] { return m.delivery->Backlog() == 0; }));
  const uint64_t rejected = m.Counted("rtdw_es_documents_rejected_total");
  EXPECT_GT(rejected, 0u);
  auto letters = m.store->ListDeadLetters();
  ASSERT_TRUE(letters.ok()) << letters.status();
  uint64_t es_rejected = 0;
  for (const auto& l : *letters) es_rejected += l.line.find("es_rejected") != std::string::npos;
  EXPECT_EQ(es_rejected, rejected);
  EXPECT_NE(m.delivery->RejectionProblem(), "");
  EXPECT_TRUE(m.Owed().empty());
  for (const auto& c : m.es.calls()) EXPECT_EQ(c.outcome, "ok");
}

// A revoke while entries are owed (group mode), the oldest one in flight (held by the cluster):
// what is owed is fenced — the request in flight is aborted, nothing of a fenced entry is ever
// applied after it, the entries are gone from the journal, and the hand-over offsets stay at what
// was delivered. Both a revoke that waits (revoke_timeout) and a lost assignment (at once).
TEST_F(JournalDeliveryTest, ARevokeFencesOwedEntriesAndAbortsTheOneInFlight) {
  for (const bool lost : {false, true}) {
    SCOPED_TRACE(lost ? "assignment lost" : "revoke after revoke_timeout");
    std::filesystem::remove_all(Root());
    std::filesystem::remove(EsLog());
    JournalDeliveryOptions o;
    o.group_mode = true;
    o.max_backlog = 10;
    o.lease = std::chrono::seconds(600);
    o.revoke_timeout = std::chrono::seconds(1);
    Member m(Root(), EsLog(), o);
    m.set_topic(MakeTopic(60, 13));
    ASSERT_TRUE(m.Start().ok());
    m.delivery->CheckOwnership();
    m.delivery->Assigned(AllAt(0));
    m.delivery->Confirmed(Clock::now());
    // Batch 1 (records 0..6 of each partition) is delivered.
    const uint64_t first = m.Commit(7);
    ASSERT_NE(first, 0u);
    ASSERT_TRUE(WaitFor([&] { return m.delivery->Backlog() == 0; }));
    EXPECT_EQ(m.delivery->Handover({}), AllAt(7));
    // Batches 2..4 owed, the first of them held in flight.
    std::vector<uint64_t> fenced;
    for (int i = 0; i < 3; ++i) {
      const uint64_t seq = m.Commit(7, [&](uint64_t seq) {
        if (i == 0) m.es.Hold(seq);
      });
      ASSERT_NE(seq, 0u) << "batch " << i + 2 << " made no entry";
      fenced.push_back(seq);
    }
    ASSERT_TRUE(WaitFor([&] { return m.es.Holding(fenced[0]); }));
    const auto started = Clock::now();
    EXPECT_FALSE(m.delivery->Revoke(lost)) << "a revoke with entries fenced is not clean";
    if (!lost) {
      EXPECT_GE(Clock::now() - started, std::chrono::seconds(1));
    }
    const size_t calls_at_fence = m.es.calls().size();
    m.es.Release();  // were anything still to send them, it would now be applied
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    EXPECT_EQ(m.es.applied(), std::vector<uint64_t>{first}) << "a fenced entry was applied";
    const std::vector<FakeEs::Call> calls = m.es.calls();
    bool aborted = false;
    for (size_t i = 0; i < calls.size(); ++i) {
      aborted |= calls[i].seq == fenced[0] && calls[i].outcome == "aborted";
      if (i >= calls_at_fence) {
        ADD_FAILURE() << "entry " << calls[i].seq << " sent after the fence: " << calls[i].outcome;
      }
    }
    EXPECT_TRUE(aborted) << "the request in flight was not aborted";
    EXPECT_EQ(m.delivery->Handover({}), AllAt(7)) << "a fenced entry's offsets were handed over";
    EXPECT_EQ(m.delivery->Backlog(), 0u);
    EXPECT_TRUE(m.Owed().empty()) << "fenced entries left in the journal";
    EXPECT_EQ(m.Counted("rtdw_es_fenced_entries_total"), 3u);
    // The member gets an assignment again: what it commits now is delivered.
    m.delivery->Assigned(AllAt(7));
    m.delivery->Confirmed(Clock::now());
    uint64_t next = 0;
    while (next == 0) next = m.Commit(7);  // the next batch that makes an entry
    ASSERT_NE(next, UINT64_MAX);
    ASSERT_TRUE(WaitFor([&] { return m.delivery->Backlog() == 0; }));
    EXPECT_EQ(m.es.applied(), (std::vector<uint64_t>{first, next}));
  }
}

// A revoke that finds everything delivered within revoke_timeout is clean, fences nothing.
TEST_F(JournalDeliveryTest, ARevokeDeliversWhatIsOwedWithinItsTimeout) {
  JournalDeliveryOptions o;
  o.group_mode = true;
  o.lease = std::chrono::seconds(600);
  o.revoke_timeout = std::chrono::seconds(60);
  Member m(Root(), EsLog(), o);
  m.set_topic(MakeTopic(40, 14));
  ASSERT_TRUE(m.Start().ok());
  m.delivery->CheckOwnership();
  m.delivery->Assigned(AllAt(0));
  m.delivery->Confirmed(Clock::now());
  std::vector<uint64_t> seqs;
  for (int i = 0; i < 3; ++i) {
    seqs.push_back(m.Commit(9, [&](uint64_t seq) { m.es.FailSeq(seq, 2); }));
    ASSERT_NE(seqs.back(), 0u);
  }
  EXPECT_TRUE(m.delivery->Revoke(/*lost=*/false));
  EXPECT_EQ(Delivered(m.es.calls()), seqs);
  EXPECT_EQ(m.delivery->Handover({}), AllAt(27));
  EXPECT_EQ(m.Counted("rtdw_es_fenced_entries_total"), 0u);
}

// The membership lease: nothing is sent for an assignment before the coordinator confirms it,
// nor once the last confirmation is older than the lease; a confirmation lets it go again.
TEST_F(JournalDeliveryTest, AnUnconfirmedLeaseStopsSendingUntilConfirmedAgain) {
  JournalDeliveryOptions o;
  o.group_mode = true;
  o.lease = std::chrono::milliseconds(300);
  Member m(Root(), EsLog(), o);
  m.set_topic(MakeTopic(40, 15));
  ASSERT_TRUE(m.Start().ok());
  m.delivery->CheckOwnership();
  m.delivery->Assigned(AllAt(0));
  // Confirms (as the job thread does) until `seq` is applied.
  auto confirm_until_applied = [&](uint64_t seq) {
    return WaitFor([&] {
      m.delivery->Confirmed(Clock::now());
      const auto applied = m.es.applied();
      return std::find(applied.begin(), applied.end(), seq) != applied.end();
    });
  };
  // Not confirmed since the assignment.
  const uint64_t first = m.Commit(8);
  std::this_thread::sleep_for(std::chrono::seconds(1));
  EXPECT_TRUE(m.es.applied().empty()) << "sent before the assignment was confirmed";
  EXPECT_FALSE(m.es.calls().empty()) << "the delivery thread never asked";
  EXPECT_NE(m.problem.Get().find("has not confirmed"), std::string::npos) << m.problem.Get();
  ASSERT_TRUE(confirm_until_applied(first));
  // The lease runs out (nobody confirms for more than 300 ms).
  std::this_thread::sleep_for(std::chrono::milliseconds(700));
  const uint64_t second = m.Commit(8);
  std::this_thread::sleep_for(std::chrono::seconds(1));
  EXPECT_EQ(m.es.applied(), std::vector<uint64_t>{first}) << "sent after the lease ran out";
  EXPECT_TRUE(m.delivery->LeaseWantsConfirmation(Clock::now()));
  ASSERT_TRUE(confirm_until_applied(second));
  EXPECT_EQ(m.es.applied(), (std::vector<uint64_t>{first, second}));
}

// A stop drains until its deadline: with the cluster failing, it returns at the deadline (not
// before), GivenUp() names what is owed and the store still holds it; the next start delivers it
// first, in order. A stop whose deliveries succeed drains everything and gives nothing up.
TEST_F(JournalDeliveryTest, AStopDrainsUntilItsDeadlineThenGivesUpWhatIsOwed) {
  const Topic topic = MakeTopic(40, 16);
  std::vector<uint64_t> seqs;
  uint64_t docs = 0;
  {
    Member m(Root(), EsLog(), JournalDeliveryOptions{});
    m.set_topic(topic);
    m.es.set_fail_next(1 << 30);
    ASSERT_TRUE(m.Start().ok());
    for (int i = 0; i < 3; ++i) {
      seqs.push_back(m.Commit(10));
      ASSERT_NE(seqs.back(), 0u);
      docs += m.docs(seqs.back());
    }
    const auto started = Clock::now();
    m.stop.Begin(started + std::chrono::milliseconds(1500));
    m.delivery->Wake();
    m.delivery->Stop();
    EXPECT_GE(Clock::now() - started, std::chrono::milliseconds(1500));
    EXPECT_EQ(m.delivery->GivenUp(),
              absl::StrCat("3 journal entries (", docs,
                           " documents) owed to Elasticsearch: delivered first at the next start"));
    EXPECT_EQ(m.Owed(), seqs);
    EXPECT_TRUE(m.es.applied().empty());
  }
  // The next start delivers them first, in order, then drains a stop fully.
  Member m(Root(), EsLog(), JournalDeliveryOptions{});
  m.set_topic(topic);
  m.es.FailSeq(seqs[1], 2);
  ASSERT_TRUE(m.Start().ok());
  EXPECT_EQ(Delivered(m.es.calls()), seqs);
  EXPECT_TRUE(m.Owed().empty());
  ASSERT_NE(m.Commit(100, [&](uint64_t seq) { m.es.FailSeq(seq, 3); }), UINT64_MAX);
  m.stop.Begin(Clock::now() + std::chrono::seconds(60));
  m.delivery->Stop();
  EXPECT_EQ(m.delivery->GivenUp(), "");
  EXPECT_TRUE(m.Owed().empty());
  ExpectTruth(FakeEs::Load(EsLog(), nullptr), topic);
}

// The start-up replay: entries a run left owed are delivered in seq order before anything new
// is sent (lone mode, and a group-mode start after a lone-mode run); a group-mode start drops
// what a group-mode run left (its records are the partitions' owners' to process again).
TEST_F(JournalDeliveryTest, TheStartUpReplayDeliversOwedEntriesInOrderBeforeAnythingNew) {
  const Topic topic = MakeTopic(60, 17);
  for (const auto& [first_mode, second_mode] :
       std::vector<std::pair<bool, bool>>{{false, false}, {false, true}, {true, true}}) {
    SCOPED_TRACE(absl::StrCat(first_mode ? "group" : "lone", " run, then a ",
                              second_mode ? "group" : "lone", " start"));
    std::filesystem::remove_all(Root());
    std::filesystem::remove(EsLog());
    std::vector<uint64_t> owed;
    {
      // A run that commits and never delivers (its cluster holds every entry in flight) — as if
      // killed after its commits.
      JournalDeliveryOptions o;
      o.group_mode = first_mode;
      o.max_backlog = 100;
      Member m(Root(), EsLog(), o);
      m.set_topic(topic);
      ASSERT_TRUE(m.Start().ok());
      if (first_mode) {
        m.delivery->CheckOwnership();
        m.delivery->Assigned(AllAt(0));  // never confirmed: nothing is sent
      }
      for (int i = 0; i < 4; ++i) {
        owed.push_back(m.Commit(9, [&](uint64_t seq) { m.es.Hold(seq); }));
        ASSERT_NE(owed.back(), 0u);
      }
      m.delivery->Cancel();
    }
    JournalDeliveryOptions o;
    o.group_mode = second_mode;
    Member m(Root(), EsLog(), o);
    m.set_topic(topic);
    ASSERT_EQ(m.Owed(), owed);
    m.es.FailSeq(owed[0], 2);
    ASSERT_TRUE(m.Start().ok());
    if (first_mode && second_mode) {
      EXPECT_TRUE(m.es.calls().empty()) << "a group-mode run's entries were delivered";
      EXPECT_TRUE(m.Owed().empty()) << "a group-mode run's entries were kept";
      continue;
    }
    // Start() returns once the replay is done: nothing new was committed yet.
    EXPECT_EQ(Delivered(m.es.calls()), owed);
    EXPECT_TRUE(m.Owed().empty());
    if (second_mode) {
      m.delivery->CheckOwnership();
      m.delivery->Assigned(AllAt(0));
      m.delivery->Confirmed(Clock::now());
    }
    const uint64_t fresh = m.Commit(9);
    ASSERT_GT(fresh, owed.back());
    ASSERT_TRUE(WaitFor([&] { return m.delivery->Backlog() == 0; }));
    std::vector<uint64_t> expected = owed;
    expected.push_back(fresh);
    EXPECT_EQ(Delivered(m.es.calls()), expected);
  }
}

// A worker: what an ES job does from its start — Start (the replay), then batches of `batch`
// records from the stored offsets, each committed and handed to the delivery (waiting for room),
// then a stop that drains everything. False on an unexpected error.
bool RunWorker(const std::string& root, const std::string& es_log, const Topic& topic, size_t batch,
               const FaultHook& fault, int kill_mid_delivery) {
  JournalDeliveryOptions o;
  o.max_backlog = 2;
  Member m(root, es_log, o, fault);
  if (!m.store) return false;
  m.set_topic(topic);
  m.es.set_kill_mid_delivery(kill_mid_delivery);
  if (!m.Start().ok()) return false;
  while (true) {
    while (!m.delivery->WaitForRoom(std::chrono::milliseconds(100))) {
    }
    const uint64_t seq = m.Commit(batch);
    if (seq == UINT64_MAX) break;
  }
  m.stop.Begin(Clock::now() + std::chrono::seconds(120));
  m.delivery->Stop();
  return m.delivery->GivenUp().empty();
}

// A kill at every point — before and after a batch's commit, mid-way through a delivery (half of
// the entry applied), after a delivery before its completion — the 1st, 2nd and 5th time it is
// reached (on the job thread or the delivery thread, whichever gets there), then a restart
// killed once more at the same point (often inside its start-up replay), then a clean run: the
// cluster holds exactly the truth, nothing is owed.
TEST_F(JournalDeliveryTest, AKillAtEveryPointEndsInTheTruth) {
  const Topic topic = MakeTopic(90, 18);
  for (const std::string point :
       {"before_commit", "after_commit", "mid_delivery", "after_delivery"}) {
    for (int hit : {1, 2, 5}) {
      SCOPED_TRACE(absl::StrCat(point, " #", hit));
      std::filesystem::remove_all(Root());
      std::filesystem::remove(EsLog());
      auto killer = [&](int at) {
        return [point, at, hits = std::make_shared<std::atomic<int>>(0)](std::string_view p) {
          if (p == point && ++*hits == at) raise(SIGKILL);
        };
      };
      const bool mid = point == "mid_delivery";
      ASSERT_EQ(RunInChild([&] {
                  return RunWorker(Root(), EsLog(), topic, 11,
                                   mid ? FaultHook() : FaultHook(killer(hit)), mid ? hit : 0);
                }),
                "killed")
          << "the worker never reached the point";
      ASSERT_EQ(RunInChild([&] {
                  return RunWorker(Root(), EsLog(), topic, 11,
                                   mid ? FaultHook() : FaultHook(killer(1)), mid ? 1 : 0);
                }),
                "killed");
      ASSERT_EQ(RunInChild([&] { return RunWorker(Root(), EsLog(), topic, 11, nullptr, 0); }),
                "exit 0");
      ExpectDone(topic, Root(), EsLog());
    }
  }
}

}  // namespace
}  // namespace rtdw
