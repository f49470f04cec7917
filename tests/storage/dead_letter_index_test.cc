// The state store keeps one dead letter per input record or ES document (storage/state_store.h,
// docs/STATE.md "One dead letter per record or document"): replacement, resolution in a batch's
// commit, explicit deletes keeping the index right, and the indexing of an older store.
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/dead_letter.h"
#include "gtest/gtest.h"
#include "storage/state_keys.h"
#include "storage/state_store.h"
#include "tests/harness/process.h"
#include "tests/storage/store_fixture.h"

namespace rtdw {
namespace {

using testing::MustOpen;
using testing::TempDir;

std::string Letter(std::string_view reason, int32_t partition, int64_t offset,
                   std::string_view detail = "d") {
  DeadLetterFields f;
  f.job = "dau";
  f.reason = reason;
  f.detail = detail;
  const std::string src = absl::StrCat("DWD_PAGE_LOG_TOPIC/", partition, "/", offset);
  f.src = src;
  f.raw = "{}";
  return DeadLetterJson(f);
}

std::string Rejected(std::string_view id, std::string_view detail) {
  DeadLetterFields f;
  f.job = "dau";
  f.reason = "es_rejected";
  f.detail = detail;
  f.index = "gmall_dau_info_2024-11-25";
  f.id = id;
  f.src = "DWD_PAGE_LOG_TOPIC/0/5";  // the document's rtdw_src: not its identity
  f.raw = "{}";
  return DeadLetterJson(f);
}

std::vector<std::string> Lines(StateStore& store) {
  std::vector<std::string> out;
  auto letters = store.ListDeadLetters();
  EXPECT_TRUE(letters.ok()) << letters.status();
  if (!letters.ok()) return out;
  for (const auto& l : *letters) out.push_back(l.line);
  return out;
}

TEST(DeadLetterIndexTest, ALetterOfTheSameRecordReplacesTheKeptOne) {
  TempDir dir;
  auto store = MustOpen(dir.path());
  ASSERT_NE(store, nullptr);
  for (int pass = 0; pass < 3; ++pass) {  // a range reprocessed twice
    PendingBatch b = store->NewBatch();
    b.AddDeadLetter(Letter("future", 0, 10, absl::StrCat("pass ", pass)));
    b.AddDeadLetter(Letter("future", 1, 10));
    b.AddDeadLetter(Letter("not_json", 0, 11));
    auto r = store->Commit(std::move(b));
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->dead_letters_replaced, pass == 0 ? 0u : 3u);
  }
  EXPECT_EQ(*store->DeadLetterCount(), 3u);
  std::vector<std::string> lines = Lines(*store);
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(lines[0], Letter("future", 0, 10, "pass 2"));  // the newest verdict
  EXPECT_EQ(store->Stats()->dead_letters, 3u);
  // The same record twice in one write: the later one stays.
  PendingBatch b = store->NewBatch();
  b.AddDeadLetter(Letter("late", 2, 1, "first"));
  b.AddDeadLetter(Letter("late", 2, 1, "second"));
  ASSERT_TRUE(store->Commit(std::move(b)).ok());
  lines = Lines(*store);
  ASSERT_EQ(lines.size(), 4u);
  EXPECT_EQ(lines.back(), Letter("late", 2, 1, "second"));
  // Letters without a source position are kept as they are.
  ASSERT_TRUE(store->AddDeadLetter("{\"reason\":\"late\"}").ok());
  ASSERT_TRUE(store->AddDeadLetter("{\"reason\":\"late\"}").ok());
  EXPECT_EQ(*store->DeadLetterCount(), 6u);
}

TEST(DeadLetterIndexTest, RecordsReadAgainAndAcceptedResolveTheirLetters) {
  TempDir dir;
  auto store = MustOpen(dir.path());
  ASSERT_NE(store, nullptr);
  PendingBatch b = store->NewBatch();
  for (int64_t o : {3, 5, 7, 9}) b.AddDeadLetter(Letter("future", 0, o));
  b.AddDeadLetter(Letter("future", 1, 5));
  ASSERT_TRUE(store->Commit(std::move(b)).ok());
  // A batch reads partition 0 offsets 4..8 again: 5 is refused again, 7 accepted.
  b = store->NewBatch();
  b.ResolveDeadLetters("DWD_PAGE_LOG_TOPIC", 0, 4, 8);
  b.AddDeadLetter(Letter("late", 0, 5));
  auto r = store->Commit(std::move(b));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->dead_letters_resolved, 1u);
  EXPECT_EQ(r->dead_letters_replaced, 1u);
  std::vector<std::string> lines = Lines(*store);
  ASSERT_EQ(lines.size(), 4u);
  EXPECT_EQ(lines[0], Letter("future", 0, 3));
  EXPECT_EQ(lines[1], Letter("future", 0, 9));
  EXPECT_EQ(lines[2], Letter("future", 1, 5));
  EXPECT_EQ(lines[3], Letter("late", 0, 5));
  // A batch of nothing but a resolution still commits it.
  b = store->NewBatch();
  b.ResolveDeadLetters("DWD_PAGE_LOG_TOPIC", 1, 0, 100);
  EXPECT_FALSE(b.empty());
  ASSERT_TRUE(store->Commit(std::move(b)).ok());
  EXPECT_EQ(*store->DeadLetterCount(), 3u);
}

TEST(DeadLetterIndexTest, ARefusedDocumentKeepsOneLetterAndDeletesKeepTheIndexRight) {
  TempDir dir;
  auto store = MustOpen(dir.path());
  ASSERT_NE(store, nullptr);
  auto seqs = store->CompleteJournal(99, {Rejected("mid_1", "a"), Rejected("mid_2", "a")});
  ASSERT_TRUE(seqs.ok()) << seqs.status();
  ASSERT_TRUE(store->CompleteJournal(100, {Rejected("mid_1", "b")}).ok());
  std::vector<std::string> lines = Lines(*store);
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[1], Rejected("mid_1", "b"));
  // Dropped, then refused again: a new letter (the index pointed to the dropped one).
  auto listed = store->ListDeadLetters();
  ASSERT_TRUE(store->DeleteDeadLetter((*listed)[0].seq).ok());
  ASSERT_TRUE(store->CompleteJournal(101, {Rejected("mid_2", "c")}).ok());
  ASSERT_TRUE(store->CompleteJournal(102, {Rejected("mid_2", "d")}).ok());
  lines = Lines(*store);
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[1], Rejected("mid_2", "d"));
  // Re-queued letters leave no index behind either.
  listed = store->ListDeadLetters();
  JournalEntry e;
  e.target = "t";
  e.body = "{}\n";
  e.doc_count = 1;
  ASSERT_TRUE(store->RequeueDeadLetters({(*listed)[0].seq, (*listed)[1].seq}, e).ok());
  EXPECT_EQ(*store->DeadLetterCount(), 0u);
  ASSERT_TRUE(store->CompleteJournal(103, {Rejected("mid_2", "e")}).ok());
  EXPECT_EQ(*store->DeadLetterCount(), 1u);
}

// A document whose es_rejected letter is kept is delivered later (a reprocess after the mapping
// was fixed, a better winner): its letter is resolved by the completion of that entry.
TEST(DeadLetterIndexTest, ADeliveredDocumentResolvesItsRejectedLetter) {
  TempDir dir;
  auto store = MustOpen(dir.path());
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->CompleteJournal(99, {Rejected("mid_1", "a"), Rejected("mid_2", "a")}).ok());
  ASSERT_EQ(*store->DeadLetterCount(), 2u);
  // An entry with both documents: mid_1 acknowledged, mid_2 refused again.
  PendingBatch b = store->NewBatch();
  JournalEntry e;
  e.target = "gmall_dau_info_2024-11-25";
  e.body =
      "{\"index\":{\"_index\":\"gmall_dau_info_2024-11-25\",\"_id\":\"mid_1\"}}\n{}\n"
      "{\"index\":{\"_index\":\"gmall_dau_info_2024-11-25\",\"_id\":\"mid_2\"}}\n{}\n";
  e.doc_count = 2;
  b.SetJournal(e);
  auto committed = store->Commit(std::move(b));
  ASSERT_TRUE(committed.ok()) << committed.status();
  ASSERT_TRUE(store->CompleteJournal(*committed->journal_seq, {Rejected("mid_2", "again")}).ok());
  std::vector<std::string> lines = Lines(*store);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0], Rejected("mid_2", "again"));
}

TEST(DeadLetterIndexTest, TheIndexSurvivesAReopenAndAReindexing) {
  TempDir dir;
  {
    auto store = MustOpen(dir.path());
    ASSERT_NE(store, nullptr);
    ASSERT_TRUE(store->AddDeadLetter(Letter("future", 0, 10, "old")).ok());
    // As a store the index was not built for yet: the next writable open indexes it again.
    ASSERT_TRUE(store->SetMeta("deadletter_index", "0").ok());
    ASSERT_TRUE(store->Close().ok());
  }
  auto store = MustOpen(dir.path());
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(store->GetMeta("deadletter_index")->value_or(""), "1");
  ASSERT_TRUE(store->AddDeadLetter(Letter("future", 0, 10, "new")).ok());
  EXPECT_EQ(*store->DeadLetterCount(), 1u);
  EXPECT_EQ(Lines(*store).front(), Letter("future", 0, 10, "new"));
  EXPECT_EQ(store->next_seq(), 3u);  // the index rows (0xFF...) are not taken for seqs
}

}  // namespace
}  // namespace rtdw
