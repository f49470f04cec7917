// The store's commit buffer: one rocksdb::WriteBatch kept between commits (cleared, not freed),
// the journal body put into it in parts (header, body) instead of an encoded copy, and the entry
// handed back by Commit() instead of copied. What would break if the reuse were wrong: a commit
// carrying writes of the one before (a journal entry, a de-dup slot, an offset), a journal value
// that does not decode to what was journaled, a spike's buffer never given back.
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "core/journal_entry.h"
#include "gtest/gtest.h"
#include "storage/state_store.h"
#include "tests/harness/process.h"
#include "tests/storage/store_fixture.h"

namespace rtdw {
namespace {

using testing::MustOpen;
using testing::TempDir;

constexpr DayNumber kDay = 20241125;

JournalEntry Entry(std::string target, std::string body, uint32_t docs) {
  JournalEntry e;
  e.target = std::move(target);
  e.body = std::move(body);
  e.doc_count = docs;
  return e;
}

TEST(JournalValue, HeaderThenBodyIsTheEncodedValue) {
  JournalEntry e = Entry("gmall_dau_info_2024-11-25", "{\"index\":{}}\n{\"a\":1}\n", 1);
  e.created_ms = 1732500000123;
  EXPECT_EQ(EncodeJournalHeader(e) + e.body, EncodeJournalValue(e));
  auto decoded = DecodeJournalValue(7, EncodeJournalValue(e));
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_EQ(decoded->target, e.target);
  EXPECT_EQ(decoded->body, e.body);
  EXPECT_EQ(decoded->created_ms, e.created_ms);
  EXPECT_EQ(decoded->doc_count, 1u);
}

// Three commits through the one kept buffer: a large one (journal, de-dup, offset), a small one
// with only an offset, then one with a different journal entry. Each must write exactly its own.
TEST(CommitBuffer, EachCommitWritesOnlyItsOwnMutations) {
  TempDir tmp;
  auto store = MustOpen(tmp.path());
  ASSERT_TRUE(store);

  const std::string big_body(3 << 20, 'x');  // megabytes, like an order-wide batch
  {
    PendingBatch b = store->NewBatch();
    ASSERT_TRUE(b.SetOffset("t", 0, 100).ok());
    ASSERT_TRUE(b.PutDedup(kDay, 0, "mid-1", DedupValue{1000, 99}).ok());
    b.SetJournal(Entry("idx-a", big_body, 2));
    auto r = store->Commit(std::move(b));
    ASSERT_TRUE(r.ok()) << r.status();
    ASSERT_TRUE(r->journal_seq.has_value());
    // The entry comes back as committed: its seq and commit time set, the body whole.
    ASSERT_TRUE(r->journal.has_value());
    EXPECT_EQ(r->journal->seq, *r->journal_seq);
    EXPECT_GT(r->journal->created_ms, 0);
    EXPECT_EQ(r->journal->body, big_body);
    EXPECT_EQ(r->journal->target, "idx-a");
  }
  {
    PendingBatch b = store->NewBatch();
    ASSERT_TRUE(b.SetOffset("t", 1, 5).ok());
    auto r = store->Commit(std::move(b));
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_FALSE(r->journal_seq.has_value());
    EXPECT_FALSE(r->journal.has_value());
  }
  // The second commit wrote no second journal entry (the first's would still be in a buffer
  // that was not cleared).
  auto listed = store->ListJournal(/*with_bodies=*/true);
  ASSERT_TRUE(listed.ok()) << listed.status();
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_EQ((*listed)[0].body, big_body);
  EXPECT_EQ((*listed)[0].target, "idx-a");
  EXPECT_EQ((*listed)[0].doc_count, 2u);

  // Complete it, then delete the de-dup slot: a later commit must not put it back.
  ASSERT_TRUE(store->CompleteJournal((*listed)[0].seq, {}).ok());
  {
    PendingBatch b = store->NewBatch();
    ASSERT_TRUE(b.DeleteDedup(kDay, 0, "mid-1").ok());
    b.SetJournal(Entry("idx-b", "{\"index\":{}}\n{}\n", 1));
    auto r = store->Commit(std::move(b));
    ASSERT_TRUE(r.ok()) << r.status();
  }
  listed = store->ListJournal(/*with_bodies=*/true);
  ASSERT_TRUE(listed.ok()) << listed.status();
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_EQ((*listed)[0].target, "idx-b");
  EXPECT_EQ((*listed)[0].body, "{\"index\":{}}\n{}\n");
  auto slot = store->GetDedup(kDay, 0, "mid-1");
  ASSERT_TRUE(slot.ok()) << slot.status();
  EXPECT_FALSE(slot->has_value());
  auto offsets = store->GetOffsets("t");
  ASSERT_TRUE(offsets.ok()) << offsets.status();
  ASSERT_EQ(offsets->size(), 2u);
  EXPECT_EQ((*offsets)[0].next_offset, 100);
  EXPECT_EQ((*offsets)[1].next_offset, 5);
}

// A commit larger than the kept-buffer bound (64 MB) is written whole, and the next commit,
// through a fresh buffer, is too.
TEST(CommitBuffer, ASpikeAboveTheKeptBoundIsWrittenAndTheNextCommitToo) {
  TempDir tmp;
  auto store = MustOpen(tmp.path());
  ASSERT_TRUE(store);
  const std::string huge(65 << 20, 'y');
  {
    PendingBatch b = store->NewBatch();
    b.SetJournal(Entry("idx-huge", huge, 1));
    auto r = store->Commit(std::move(b));
    ASSERT_TRUE(r.ok()) << r.status();
  }
  {
    PendingBatch b = store->NewBatch();
    b.SetJournal(Entry("idx-small", "{\"index\":{}}\n{}\n", 1));
    auto r = store->Commit(std::move(b));
    ASSERT_TRUE(r.ok()) << r.status();
  }
  auto listed = store->ListJournal(/*with_bodies=*/true);
  ASSERT_TRUE(listed.ok()) << listed.status();
  ASSERT_EQ(listed->size(), 2u);
  EXPECT_EQ((*listed)[0].body.size(), huge.size());
  EXPECT_EQ((*listed)[0].body, huge);
  EXPECT_EQ((*listed)[1].target, "idx-small");
}

}  // namespace
}  // namespace rtdw
