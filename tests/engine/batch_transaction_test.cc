// The batch transaction (core/engine/batch_transaction.h) against an independent truth: the
// DAU topic, the real DauTransform and the FakeEs cluster of tests/engine/dau_fixture.h.
#include "core/engine/batch_transaction.h"

#include <signal.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/engine/owed_journal.h"
#include "gtest/gtest.h"
#include "tests/engine/dau_fixture.h"
#include "tests/harness/process.h"

namespace rtdw {
namespace {

using testing::TempDir;

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
using engine_test::SourceRecord;

// A worker: what a job does from its start — deliver every owed entry in seq order, then read
// batches (up to `batch` records of each partition, from the stored offsets) until the topic is
// read, each committed and then delivered. Returns false on an unexpected error (reported).
// `deliver_inline` = false leaves every entry owed (the caller delivers them).
bool RunWorker(const std::string& root, FakeEs& es,
               const std::vector<std::vector<SourceRecord>>& topic, size_t batch,
               const FaultHook& fault, bool deliver_inline = true) {
  auto store = OpenStore(root);
  if (!store) return false;
  auto deliver = [&](const JournalEntry& entry) {
    // Transient failures are retried (as the runner does, with RetryUntil).
    for (int attempt = 0;; ++attempt) {
      auto done = DeliverJournalEntry(*store, es, entry, "dau", kNow, fault);
      if (done.ok()) return true;
      if (attempt >= 5) {
        ADD_FAILURE() << done.status();
        return false;
      }
    }
  };
  auto owed = store->ListJournal(/*with_bodies=*/false);
  if (!owed.ok()) return false;
  for (const JournalEntry& listed : *owed) {
    auto entry = store->ReadJournal(listed.seq);
    if (!entry.ok() || !deliver(*entry)) return false;
  }
  auto transform = NewTransform();
  NoDimensions dims;
  while (true) {
    std::vector<InputRecord> records;
    if (!ReadBatchAtStoredOffsets(topic, *store, batch, &records)) return false;
    if (records.empty()) break;
    BatchStage stage;
    auto committed = CommitJournaledBatch(*store, *transform, &dims, records, kNow, fault, &stage);
    if (!committed.ok()) {
      ADD_FAILURE() << committed.status();
      return false;
    }
    if (deliver_inline && committed->entry && !deliver(*committed->entry)) return false;
  }
  return store->Close().ok();
}

using testing::RunInChild;

class BatchTransactionTest : public ::testing::Test {
 protected:
  std::string Root() const { return dir_.path() + "/state"; }
  std::string EsLog() const { return dir_.path() + "/es.log"; }

  // After a finished run: ES holds the truth exactly, nothing is owed, the offsets are at the end.
  void ExpectDone(const std::vector<std::vector<SourceRecord>>& topic) {
    engine_test::ExpectDone(topic, Root(), EsLog());
  }

  TempDir dir_;
};

TEST(OffsetsOf, NextAndFirstPerPartitionInAnyOrder) {
  const std::string a = "A", b = "B";
  std::vector<InputRecord> records;
  for (auto [topic, partition, offset] :
       std::vector<std::tuple<std::string_view, int32_t, int64_t>>{
           {a, 0, 5}, {a, 0, 6}, {b, 0, 9}, {a, 1, 3}, {a, 0, 4}, {b, 0, 7}, {a, 1, 8}}) {
    InputRecord r;
    r.topic = topic;
    r.partition = partition;
    r.offset = offset;
    records.push_back(r);
  }
  BatchOffsets o = OffsetsOf(records);
  std::map<TopicPartition, int64_t> next = {{{"A", 0}, 7}, {{"A", 1}, 9}, {{"B", 0}, 10}};
  std::map<TopicPartition, int64_t> first = {{{"A", 0}, 4}, {{"A", 1}, 3}, {{"B", 0}, 7}};
  EXPECT_EQ(o.next, next);
  EXPECT_EQ(o.first, first);
  EXPECT_TRUE(OffsetsOf({}).next.empty());
}

// Without faults (and with transient delivery failures retried), the run gives the truth.
TEST_F(BatchTransactionTest, ARunWithoutFaultsWritesTheTruth) {
  const auto topic = MakeTopic(120, 1);
  FakeEs es(EsLog());
  es.set_fail_next(2);
  ASSERT_TRUE(RunWorker(Root(), es, topic, 17, nullptr));
  ExpectDone(topic);
}

// A kill at every commit point of the transaction — before and after the WriteBatch, mid-way
// through and after a delivery (before the entry is completed) — at the 1st, 2nd and 5th time
// the point is reached; the restart (from the same store, the same cluster) finishes the topic.
// ES must then hold every document of the truth, each exactly as the truth says, and nothing
// else; nothing is owed and the offsets are at the end.
TEST_F(BatchTransactionTest, AKillAtEveryCommitPointEndsInTheTruth) {
  const auto topic = MakeTopic(90, 2);
  for (const std::string point :
       {"before_commit", "after_commit", "mid_delivery", "after_delivery"}) {
    for (int hit : {1, 2, 5}) {
      SCOPED_TRACE(absl::StrCat(point, " #", hit));
      std::filesystem::remove_all(Root());
      std::filesystem::remove(EsLog());
      const std::string ended = RunInChild([&] {
        FakeEs es(EsLog());
        if (point == "mid_delivery") es.set_kill_mid_delivery(hit);
        int hits = 0;
        FaultHook fault = [&](std::string_view p) {
          if (p == point && ++hits == hit) raise(SIGKILL);
        };
        return RunWorker(Root(), es, topic, 11, fault);
      });
      ASSERT_EQ(ended, "killed") << "the worker never reached the point";
      // The restart, itself killed once more at the same point, then run to the end.
      ASSERT_EQ(RunInChild([&] {
                  FakeEs es(EsLog());
                  if (point == "mid_delivery") es.set_kill_mid_delivery(1);
                  FaultHook fault = [&](std::string_view p) {
                    if (p == point) raise(SIGKILL);
                  };
                  return RunWorker(Root(), es, topic, 11, fault);
                }),
                "killed");
      FakeEs es(EsLog());
      ASSERT_TRUE(RunWorker(Root(), es, topic, 11, nullptr));
      ExpectDone(topic);
    }
  }
}

// Entries delivered out of order (reversed, shuffled) and twice: ES's external versions keep
// the winner, so the cluster ends in the truth whatever order the entries arrive in.
TEST_F(BatchTransactionTest, ReorderedAndRepeatedDeliveryEndsInTheTruth) {
  const auto topic = MakeTopic(150, 3);
  {
    FakeEs unused(EsLog());
    ASSERT_TRUE(RunWorker(Root(), unused, topic, 13, nullptr, /*deliver_inline=*/false));
  }
  std::vector<JournalEntry> entries;
  {
    auto store = OpenStore(Root());
    ASSERT_TRUE(store);
    auto owed = store->ListJournal(/*with_bodies=*/true);
    ASSERT_TRUE(owed.ok());
    entries = *owed;
    ASSERT_TRUE(store->Close().ok());
  }
  ASSERT_GT(entries.size(), 5u);
  std::vector<JournalEntry> order(entries.rbegin(), entries.rend());
  std::mt19937_64 rng(7);
  std::vector<JournalEntry> shuffled = entries;
  std::shuffle(shuffled.begin(), shuffled.end(), rng);
  order.insert(order.end(), shuffled.begin(), shuffled.end());
  {
    auto store = OpenStore(Root());
    ASSERT_TRUE(store);
    FakeEs es(EsLog());
    for (const JournalEntry& e : order) {
      auto done = DeliverJournalEntry(*store, es, e, "dau", kNow, nullptr);
      // The second delivery of an entry finds it completed already: NotFound, nothing written.
      if (!done.ok()) {
        EXPECT_TRUE(absl::IsNotFound(done.status())) << done.status();
      }
    }
    ASSERT_TRUE(store->Close().ok());
  }
  uint64_t superseded = 0;
  (void)FakeEs::Load(EsLog(), &superseded);
  EXPECT_GT(superseded, 0u) << "the input never made a later batch beat an earlier one";
  ExpectDone(topic);
}

// A revoke while entries are owed (group mode): member A commits every batch but delivers only
// the first `delivered` entries, then loses its partitions — what it owes is fenced (never sent,
// deleted from its journal) and it hands over, per partition, the next offset of the last batch
// ES acknowledged (where the first batch started when none was). Member B, with an empty state,
// starts at those hand-over offsets and finishes the topic into the same cluster: ES must hold
// exactly the truth (records A's fenced entries covered are read again by B; B's worse documents
// for mids A already wrote are refused by their versions).
TEST_F(BatchTransactionTest, ARevokeWhileEntriesAreOwedHandsOverOnlyWhatWasDelivered) {
  const auto topic = MakeTopic(100, 4);
  constexpr size_t kBatch = 9;
  for (size_t delivered : {size_t{0}, size_t{2}}) {
    SCOPED_TRACE(absl::StrCat(delivered, " entries delivered before the revoke"));
    const std::string root_a = dir_.path() + "/member_a";
    std::filesystem::remove_all(root_a);
    std::filesystem::remove_all(Root());
    std::filesystem::remove(EsLog());
    FakeEs es(EsLog());
    std::map<TopicPartition, int64_t> handover;
    size_t first_owed_batch = 0;
    {
      auto store = OpenStore(root_a);
      ASSERT_TRUE(store);
      auto transform = NewTransform();
      NoDimensions dims;
      OwedJournal owed;
      const std::string topic_name = kTopic;
      size_t batches = 0;
      std::vector<size_t> entry_batches;  // the batches that made an entry
      for (size_t from = 0;; from += kBatch) {
        std::vector<InputRecord> records;
        for (int p = 0; p < kPartitions; ++p) {
          for (size_t i = from; i < topic[p].size() && i < from + kBatch; ++i) {
            InputRecord in;
            in.topic = topic_name;
            in.partition = p;
            in.offset = topic[p][i].offset;
            in.value = topic[p][i].value;
            records.push_back(in);
          }
        }
        if (records.empty()) break;
        auto committed =
            CommitJournaledBatch(*store, *transform, &dims, records, kNow, nullptr, nullptr);
        ASSERT_TRUE(committed.ok()) << committed.status();
        // A batch whose records all lose to documents made before makes no entry: its offsets
        // become hand-over-able with the entry before it.
        if (committed->entry) entry_batches.push_back(batches);
        owed.Committed(committed->entry, committed->offsets.next, committed->offsets.first,
                       /*epoch=*/1);
        ++batches;
      }
      ASSERT_GT(entry_batches.size(), delivered + 3);
      for (size_t i = 0; i < delivered; ++i) {
        const JournalEntry& entry = *owed.front()->entry;
        ASSERT_TRUE(DeliverJournalEntry(*store, es, entry, "dau", kNow, nullptr).ok());
        ASSERT_TRUE(owed.Delivered(entry.seq));
      }
      // The revoke: what is owed is fenced and its entries deleted.
      const size_t owed_before = owed.size();
      std::vector<OwedJournal::Owed> fenced = owed.Fence();
      EXPECT_EQ(fenced.size(), owed_before);
      EXPECT_EQ(fenced.size(), entry_batches.size() - delivered);
      // Independent truth: A read kBatch records of each partition per batch; everything before
      // the batch of the first undelivered entry is handed over.
      first_owed_batch = entry_batches[delivered];
      for (const auto& o : fenced) ASSERT_TRUE(store->DeleteJournal(o.entry->seq).ok());
      EXPECT_FALSE(owed.Delivered(fenced.front().entry->seq)) << "a fenced entry was delivered";
      handover = owed.Handover({});
      auto journal = store->ListJournal();
      ASSERT_TRUE(journal.ok());
      EXPECT_TRUE(journal->empty());
      ASSERT_TRUE(store->Close().ok());
    }
    EXPECT_EQ(es.deliveries(), static_cast<int>(delivered)) << "fenced entries were sent";
    ASSERT_EQ(handover.size(), static_cast<size_t>(kPartitions));
    for (int p = 0; p < kPartitions; ++p) {
      EXPECT_EQ(handover[TopicPartition(kTopic, p)],
                static_cast<int64_t>(first_owed_batch * kBatch))
          << p;
    }
    // Member B starts at the hand-over offsets with an empty state.
    {
      auto store = OpenStore(Root());
      ASSERT_TRUE(store);
      PendingBatch start = store->NewBatch();
      for (const auto& [tp, offset] : handover) {
        ASSERT_TRUE(start.SetOffset(tp.first, tp.second, offset).ok());
      }
      ASSERT_TRUE(store->Commit(std::move(start)).ok());
      ASSERT_TRUE(store->Close().ok());
    }
    FakeEs es_b(EsLog());
    ASSERT_TRUE(RunWorker(Root(), es_b, topic, 13, nullptr));
    ExpectDone(topic);
  }
}

}  // namespace
}  // namespace rtdw
