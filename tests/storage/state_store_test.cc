// The state store against real RocksDB files: atomic batches (proved by SIGKILLed child
// processes, see state_child_main.cc), seq monotonicity, replay order, retention, meta guards,
// corruption and lock reporting, backups.
#include "storage/state_store.h"

#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"
#include "storage/state_store_internal.h"
#include "tests/harness/process.h"
#include "tests/storage/store_fixture.h"

namespace rtdw {
namespace {

namespace fs = std::filesystem;
using testing::ChildProcess;
using testing::MustOpen;
using testing::ProcessOptions;
using testing::ReadFileOrEmpty;
using testing::StoreOptions;
using testing::TempDir;
using testing::WaitFor;

constexpr DayNumber kDay = 20241125;

std::set<std::string> ListDir(const std::string& dir) {
  std::set<std::string> names;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) names.insert(e.path().filename());
  return names;
}

std::string Msg(const absl::Status& s) { return std::string(s.message()); }

// ---------------------------------------------------------------------------------------------
// Opening

TEST(StateStoreOpen, CreatesANewStoreAndSaysSo) {
  TempDir tmp;
  std::vector<std::string> logs;
  auto o = StoreOptions(tmp.Sub("state"));
  o.log = [&](std::string_view m) { logs.emplace_back(m); };
  {
    auto store = MustOpen(o);
    ASSERT_TRUE(store);
    EXPECT_TRUE(store->created());
    EXPECT_EQ(store->path(), tmp.Sub("state") + "/dau");
    EXPECT_FALSE(store->previous_shutdown_clean().has_value());
    EXPECT_EQ(store->schema_version(), kStateSchemaVersion);
    ASSERT_EQ(logs.size(), 1u);
    EXPECT_TRUE(absl::StrContains(logs[0], "created state store")) << logs[0];
    auto clean = store->GetMeta(kMetaCleanShutdown);
    ASSERT_TRUE(clean.ok());
    EXPECT_EQ(clean->value_or(""), "false");
    ASSERT_TRUE(store->Close().ok());
  }
  auto store = MustOpen(o);
  ASSERT_TRUE(store);
  EXPECT_FALSE(store->created());
  EXPECT_EQ(store->previous_shutdown_clean(), true);
  EXPECT_EQ(store->GetMeta(kMetaJob)->value_or(""), "dau");
  EXPECT_EQ(store->GetMeta(kMetaSchemaVersion)->value_or(""), "1");
}

TEST(StateStoreOpen, ReadOnlyCreatesNothing) {
  TempDir tmp;
  auto o = StoreOptions(tmp.Sub("missing"));
  o.read_only = true;
  auto s = StateStore::Open(o);
  EXPECT_EQ(s.status().code(), absl::StatusCode::kNotFound);
  EXPECT_FALSE(fs::exists(tmp.Sub("missing")));
  // create_if_missing=false likewise.
  auto o2 = StoreOptions(tmp.Sub("missing"));
  o2.create_if_missing = false;
  EXPECT_EQ(StateStore::Open(o2).status().code(), absl::StatusCode::kNotFound);
  EXPECT_FALSE(fs::exists(tmp.Sub("missing")));

  // A read-only open of an existing store adds no file.
  auto w = StoreOptions(tmp.path());
  {
    auto store = MustOpen(w);
    auto b = store->NewBatch();
    ASSERT_TRUE(b.SetOffset("T", 0, 5).ok());
    ASSERT_TRUE(store->Commit(std::move(b)).ok());
  }
  auto before = ListDir(tmp.Sub("dau"));
  {
    auto ro = StoreOptions(tmp.path());
    ro.read_only = true;
    auto store = MustOpen(ro);
    ASSERT_TRUE(store);
    EXPECT_EQ(store->GetOffset("T", 0)->value_or(-1), 5);
    auto b = store->NewBatch();
    ASSERT_TRUE(b.SetOffset("T", 0, 6).ok());
    EXPECT_FALSE(store->Commit(std::move(b)).ok());
    EXPECT_FALSE(store->SetOffset("T", 0, 6).ok());
  }
  EXPECT_EQ(ListDir(tmp.Sub("dau")), before);
}

TEST(StateStoreOpen, RefusesBadJobNames) {
  TempDir tmp;
  for (std::string job : {"", "..", "a/b", ".hidden", "x y"}) {
    EXPECT_EQ(StateStore::Open(StoreOptions(tmp.path(), job)).status().code(),
              absl::StatusCode::kInvalidArgument)
        << job;
  }
}

TEST(StateStoreOpen, RefusesNewerSchema) {
  TempDir tmp;
  {
    auto store = MustOpen(StoreOptions(tmp.path()));
    ASSERT_TRUE(store->SetMeta(kMetaSchemaVersion, "2").ok());
  }
  for (bool read_only : {false, true}) {
    auto o = StoreOptions(tmp.path());
    o.read_only = read_only;
    auto s = StateStore::Open(o);
    ASSERT_FALSE(s.ok());
    EXPECT_EQ(s.status().code(), absl::StatusCode::kFailedPrecondition);
    EXPECT_TRUE(absl::StrContains(Msg(s.status()), "schema version 2")) << s.status();
    EXPECT_TRUE(absl::StrContains(Msg(s.status()), "newer")) << s.status();
    EXPECT_TRUE(absl::StrContains(Msg(s.status()), tmp.Sub("dau"))) << s.status();
  }
  EXPECT_TRUE(fs::exists(tmp.Sub("dau") + "/CURRENT"));  // untouched
}

TEST(StateStoreOpen, RefusesAnotherJobsStore) {
  TempDir tmp;
  { MustOpen(StoreOptions(tmp.path(), "dau")); }
  fs::rename(tmp.Sub("dau"), tmp.Sub("order-wide"));
  auto s = StateStore::Open(StoreOptions(tmp.path(), "order-wide"));
  EXPECT_EQ(s.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(absl::StrContains(Msg(s.status()), "belongs to job \"dau\"")) << s.status();
}

TEST(StateStoreOpen, ChangedFingerprintNamesTheResetCommand) {
  TempDir tmp;
  auto o = StoreOptions(tmp.path());
  o.topic_fingerprint = "rtdw-topics/1 job=dau source_topic=A";
  { ASSERT_TRUE(MustOpen(o)); }
  o.topic_fingerprint = "rtdw-topics/1 job=dau source_topic=B";
  auto s = StateStore::Open(o);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(absl::StrContains(Msg(s.status()), "rtdw meta reset-fingerprint --job dau"))
      << s.status();
  // An open without a fingerprint (the CLI) is not refused, and can reset it.
  {
    auto store = MustOpen(StoreOptions(tmp.path()));
    ASSERT_TRUE(store);
    EXPECT_EQ(store->GetMeta(kMetaTopicFingerprint)->value_or(""),
              "rtdw-topics/1 job=dau source_topic=A");
    ASSERT_TRUE(store->ResetFingerprint().ok());
  }
  auto store = MustOpen(o);
  ASSERT_TRUE(store);
  EXPECT_EQ(store->GetMeta(kMetaTopicFingerprint)->value_or(""),
            "rtdw-topics/1 job=dau source_topic=B");
}

// The fingerprint is compared key by key: a store of an older rtdw (fewer keys) takes the new
// keys; every changed key is named with both values; later values (partition counts) merge in.
TEST(StateStoreOpen, FingerprintNamesEachChangedKeyAndAddsNewOnes) {
  TempDir tmp;
  auto o = StoreOptions(tmp.path());
  o.topic_fingerprint = "rtdw-topics/1 job=dau source_topic=A";
  { ASSERT_TRUE(MustOpen(o)); }
  o.topic_fingerprint = "rtdw-topics/1 job=dau source_topic=A time_zone=UTC retention_days=2";
  {
    auto store = MustOpen(o);
    ASSERT_TRUE(store);
    EXPECT_EQ(store->GetMeta(kMetaTopicFingerprint)->value_or(""), o.topic_fingerprint);
    ASSERT_TRUE(store->MergeFingerprint("partitions.A=4").ok());
    ASSERT_TRUE(store->MergeFingerprint("partitions.A=4").ok());
    absl::Status st = store->MergeFingerprint("partitions.A=6");
    EXPECT_EQ(st.code(), absl::StatusCode::kFailedPrecondition);
    EXPECT_TRUE(
        absl::StrContains(Msg(st), "the partition count of topic A: stored \"4\", now \"6\""))
        << st;
    // The daemon accepting partitions added while it runs: the count is replaced in place.
    ASSERT_TRUE(store->MergeFingerprint("partitions.A=6", /*replace=*/true).ok());
    EXPECT_EQ(store->GetMeta(kMetaTopicFingerprint)->value_or(""),
              o.topic_fingerprint + " partitions.A=6");
  }
  o.topic_fingerprint =
      "rtdw-topics/1 job=dau source_topic=A time_zone=Asia/Shanghai retention_days=3";
  auto s = StateStore::Open(o);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(absl::StrContains(Msg(s.status()),
                                "jobs.dau.time_zone: stored \"UTC\", now \"Asia/Shanghai\""))
      << s.status();
  EXPECT_TRUE(absl::StrContains(Msg(s.status()), "dedup.retention_days: stored \"2\", now \"3\""))
      << s.status();
  // Unchanged keys are not named.
  EXPECT_FALSE(absl::StrContains(Msg(s.status()), "source_topic")) << s.status();
}

// Makes a store with some data and flushed SST files, closed.
void MakeFlushedStore(const std::string& root) {
  auto store = MustOpen(StoreOptions(root));
  for (int i = 0; i < 50; ++i) {
    auto b = store->NewBatch();
    for (int k = 0; k < 100; ++k) {
      ASSERT_TRUE(b.PutDedup(kDay, 0, absl::StrCat("mid-", i, "-", k), {i, k}).ok());
    }
    ASSERT_TRUE(store->Commit(std::move(b)).ok());
  }
  // A backup flushes the memtables: the data is in SST files afterwards.
  ASSERT_TRUE(store->CreateBackup(root + "/../bk-flush").ok());
}

std::vector<std::string> FilesMatching(const std::string& dir, std::string_view needle) {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.path().filename().string().find(needle) != std::string::npos) out.push_back(e.path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

void Scribble(const std::string& file, size_t at, size_t n) {
  std::fstream f(file, std::ios::in | std::ios::out | std::ios::binary);
  ASSERT_TRUE(f.good()) << file;
  f.seekp(static_cast<std::streamoff>(at));
  std::string junk(n, '\x5a');
  f.write(junk.data(), static_cast<std::streamsize>(junk.size()));
}

// The store's files except RocksDB's info LOG (a writable open attempt rotates it).
std::set<std::string> DataFiles(const std::string& dir) {
  std::set<std::string> names;
  for (const auto& n : ListDir(dir)) {
    if (n.rfind("LOG", 0) != 0) names.insert(n);
  }
  return names;
}

void ExpectRefusedAndUntouched(const std::string& root, const std::string& what) {
  std::string path = root + "/dau";
  auto before = DataFiles(path);
  for (bool read_only : {true, false}) {
    auto o = StoreOptions(root);
    o.read_only = read_only;
    auto s = StateStore::Open(o);
    ASSERT_FALSE(s.ok()) << what;
    EXPECT_TRUE(absl::StrContains(Msg(s.status()), path)) << what << ": " << s.status();
    EXPECT_TRUE(absl::StrContains(Msg(s.status()), "left untouched")) << s.status();
  }
  EXPECT_EQ(DataFiles(path), before) << what;
}

TEST(StateStoreOpen, CorruptCurrentIsReportedNotReplaced) {
  TempDir tmp;
  MakeFlushedStore(tmp.Sub("s"));
  std::ofstream(tmp.Sub("s") + "/dau/CURRENT", std::ios::trunc) << "garbage\n";
  ExpectRefusedAndUntouched(tmp.Sub("s"), "CURRENT");
}

TEST(StateStoreOpen, MissingCurrentIsReportedNotReplaced) {
  TempDir tmp;
  MakeFlushedStore(tmp.Sub("s"));
  fs::remove(tmp.Sub("s") + "/dau/CURRENT");
  ExpectRefusedAndUntouched(tmp.Sub("s"), "no CURRENT");
  EXPECT_FALSE(FilesMatching(tmp.Sub("s") + "/dau", ".sst").empty());
}

TEST(StateStoreOpen, CorruptManifestIsReported) {
  TempDir tmp;
  MakeFlushedStore(tmp.Sub("s"));
  auto manifests = FilesMatching(tmp.Sub("s") + "/dau", "MANIFEST-");
  ASSERT_FALSE(manifests.empty());
  Scribble(manifests.back(), 10, 64);
  ExpectRefusedAndUntouched(tmp.Sub("s"), "MANIFEST");
  auto s = StateStore::Open(StoreOptions(tmp.Sub("s")));
  EXPECT_EQ(s.status().code(), absl::StatusCode::kDataLoss) << s.status();
}

TEST(StateStoreOpen, CorruptSstIsReported) {
  TempDir tmp;
  MakeFlushedStore(tmp.Sub("s"));
  auto ssts = FilesMatching(tmp.Sub("s") + "/dau", ".sst");
  ASSERT_FALSE(ssts.empty());
  for (const auto& sst : ssts) {
    auto size = fs::file_size(sst);
    Scribble(sst, size - 48, 48);  // the footer
  }
  ExpectRefusedAndUntouched(tmp.Sub("s"), "SST");
}

// ---------------------------------------------------------------------------------------------
// The batch and its reads

TEST(StateStoreBatch, CommitsEveryFamilyAndReadsBack) {
  TempDir tmp;
  auto store = MustOpen(StoreOptions(tmp.path()));
  auto b = store->NewBatch();
  EXPECT_TRUE(b.empty());
  ASSERT_TRUE(b.SetOffset("DWD_PAGE_LOG_TOPIC", 0, 100).ok());
  ASSERT_TRUE(b.SetOffset("DWD_PAGE_LOG_TOPIC", 1, 200).ok());
  ASSERT_TRUE(b.PutDedup(kDay, 1, "mid_1", {1000, 7}).ok());
  JoinRow row{3, "42", JoinSide::kOrder, "42", 5000, false, "{\"id\":42}"};
  ASSERT_TRUE(b.PutJoinRow(row).ok());
  JournalEntry e;
  e.target = "gmall_dau_info_2024-11-25";
  e.body = "{\"index\":{\"_index\":\"gmall_dau_info_2024-11-25\",\"_id\":\"mid_1\"}}\n{}\n";
  e.doc_count = 1;
  b.SetJournal(e);
  b.AddDeadLetter("{\"reason\":\"late\"}");
  b.AddDeadLetter("{\"reason\":\"future\"}");
  EXPECT_FALSE(b.empty());
  auto r = store->Commit(std::move(b));
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_TRUE(r->journal_seq.has_value());
  EXPECT_EQ(*r->journal_seq, 1u);
  EXPECT_EQ(r->dead_letter_seqs, (std::vector<uint64_t>{2, 3}));
  EXPECT_EQ(store->next_seq(), 4u);

  auto offsets = store->GetOffsets();
  ASSERT_TRUE(offsets.ok());
  ASSERT_EQ(offsets->size(), 2u);
  EXPECT_EQ((*offsets)[1].partition, 1);
  EXPECT_EQ((*offsets)[1].next_offset, 200);
  EXPECT_EQ(store->GetOffset("DWD_PAGE_LOG_TOPIC", 0)->value_or(-1), 100);
  EXPECT_FALSE(store->GetOffset("OTHER", 0)->has_value());
  EXPECT_EQ(store->GetDedup(kDay, 1, "mid_1")->value_or(DedupValue{}), (DedupValue{1000, 7}));
  auto rows = store->GetJoinRows(3);
  ASSERT_TRUE(rows.ok());
  ASSERT_EQ(rows->size(), 1u);
  EXPECT_EQ((*rows)[0].row_json, "{\"id\":42}");
  auto journal = store->ListJournal(true);
  ASSERT_TRUE(journal.ok());
  ASSERT_EQ(journal->size(), 1u);
  EXPECT_EQ((*journal)[0].body, e.body);
  EXPECT_EQ((*journal)[0].target, e.target);
  EXPECT_EQ((*journal)[0].doc_count, 1u);
  EXPECT_GT((*journal)[0].created_ms, 0);
  auto dl = store->ListDeadLetters();
  ASSERT_TRUE(dl.ok());
  ASSERT_EQ(dl->size(), 2u);
  EXPECT_EQ((*dl)[1].line, "{\"reason\":\"future\"}");
  EXPECT_EQ(*store->DeadLetterCount(), 2u);
  EXPECT_EQ(*store->JournalBacklog(), 1u);

  auto stats = store->Stats(true);
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->journal_backlog, 1u);
  EXPECT_EQ(stats->dead_letters, 2u);
  EXPECT_EQ(stats->join_rows, 1u);
  EXPECT_EQ(stats->column_families.size(), 6u);
  EXPECT_EQ(stats->column_families[0].name, "offsets");
  EXPECT_EQ(stats->column_families[0].keys, 2u);
  EXPECT_EQ(stats->column_families[2].keys, 2u);  // a join row and its time-index entry
}

// The commit sizes its WriteBatch for the batch (reused while large enough) and writes a journal
// entry as its header and its body: a reused batch's entries of very different sizes, with state
// writes beside them, read back exactly.
TEST(StateStoreBatch, ReusedBatchCommitsJournalEntriesOfAnySizeExactly) {
  TempDir tmp;
  auto store = MustOpen(StoreOptions(tmp.path()));
  auto b = store->NewBatch();
  const std::vector<size_t> sizes = {40, 3 << 20, 10, 1 << 20, 0};
  for (size_t i = 0; i < sizes.size(); ++i) {
    for (int m = 0; m < 100; ++m) {
      ASSERT_TRUE(b.PutDedup(kDay, 0, absl::StrCat("mid_", i, "_", m), {1000 + m, m}).ok());
    }
    JournalEntry e;
    e.target = absl::StrCat("target_", i);
    e.body.resize(sizes[i]);
    for (size_t k = 0; k < e.body.size(); ++k)
      e.body[k] = static_cast<char>('a' + (k * 7 + i) % 26);
    e.doc_count = static_cast<uint32_t>(i + 1);
    b.SetJournal(e);
    auto r = store->Commit(&b);
    ASSERT_TRUE(r.ok()) << r.status();
    ASSERT_TRUE(r->journal_seq.has_value());
    auto read = store->ReadJournal(*r->journal_seq);
    ASSERT_TRUE(read.ok()) << read.status();
    EXPECT_EQ(read->target, e.target);
    EXPECT_EQ(read->doc_count, e.doc_count);
    EXPECT_EQ(read->body.size(), e.body.size());
    EXPECT_TRUE(read->body == e.body) << "entry " << i;
    EXPECT_EQ(store->GetDedup(kDay, 0, absl::StrCat("mid_", i, "_99"))->value_or(DedupValue{}),
              (DedupValue{1099, 99}));
  }
  EXPECT_EQ(*store->JournalBacklog(), sizes.size());
}

TEST(StateStoreBatch, RefusesBadArguments) {
  TempDir tmp;
  auto store = MustOpen(StoreOptions(tmp.path()));
  auto b = store->NewBatch();
  EXPECT_FALSE(b.SetOffset("T", -1, 0).ok());
  EXPECT_FALSE(b.SetOffset(std::string("T\0x", 3), 0, 0).ok());
  EXPECT_FALSE(b.PutDedup(20241332, 0, "m", {}).ok());
  EXPECT_FALSE(b.PutDedup(kDay, 0, "", {}).ok());
  EXPECT_FALSE(b.PutJoinRow(JoinRow{0, "", JoinSide::kOrder, "1", 0, false, ""}).ok());
  EXPECT_TRUE(b.empty());
}

TEST(StateStoreBatch, ReadsSeeTheBatchsOwnWrites) {
  TempDir tmp;
  auto store = MustOpen(StoreOptions(tmp.path()));
  {
    auto b = store->NewBatch();
    ASSERT_TRUE(b.PutDedup(kDay, 0, "committed", {500, 1}).ok());
    ASSERT_TRUE(b.PutJoinRow({0, "7", JoinSide::kOrder, "7", 100, false, "order"}).ok());
    ASSERT_TRUE(b.PutJoinRow({0, "7", JoinSide::kDetail, "70", 100, false, "d70"}).ok());
    ASSERT_TRUE(store->Commit(std::move(b)).ok());
  }
  auto b = store->NewBatch();
  EXPECT_FALSE(b.DedupLookup(kDay, 0, "new")->has_value());
  ASSERT_TRUE(b.PutDedup(kDay, 0, "new", {100, 2}).ok());
  EXPECT_EQ(b.DedupLookup(kDay, 0, "new")->value_or(DedupValue{}), (DedupValue{100, 2}));
  EXPECT_EQ(b.DedupLookup(kDay, 0, "committed")->value_or(DedupValue{}), (DedupValue{500, 1}));
  ASSERT_TRUE(b.PutDedup(kDay, 0, "committed", {400, 3}).ok());  // a smaller ts replaces it
  EXPECT_EQ(b.DedupLookup(kDay, 0, "committed")->value_or(DedupValue{}), (DedupValue{400, 3}));
  EXPECT_FALSE(b.DedupLookup(kDay, 1, "committed")->has_value());  // partition-scoped

  ASSERT_TRUE(b.PutJoinRow({0, "7", JoinSide::kDetail, "71", 110, false, "d71"}).ok());
  ASSERT_TRUE(b.DeleteJoinRow(0, "7", JoinSide::kDetail, "70").ok());
  auto rows = b.JoinLookup(0, "7");
  ASSERT_TRUE(rows.ok());
  ASSERT_EQ(rows->size(), 2u);
  EXPECT_EQ((*rows)[0].side, JoinSide::kDetail);
  EXPECT_EQ((*rows)[0].row_id, "71");
  EXPECT_EQ((*rows)[1].side, JoinSide::kOrder);
  auto orders = b.JoinLookup(0, "7", JoinSide::kOrder);
  ASSERT_EQ(orders->size(), 1u);
  EXPECT_EQ((*orders)[0].row_json, "order");
  EXPECT_TRUE(b.JoinLookup(0, "70")->empty());
  EXPECT_TRUE(b.JoinLookup(1, "7")->empty());
  ASSERT_TRUE(b.SetOffset("T", 0, 9).ok());
  EXPECT_EQ(b.GetOffset("T", 0)->value_or(-1), 9);

  // Nothing is visible outside the batch before Commit.
  EXPECT_FALSE(store->GetDedup(kDay, 0, "new")->has_value());
  EXPECT_FALSE(store->GetOffset("T", 0)->has_value());
  ASSERT_TRUE(store->Commit(std::move(b)).ok());
  EXPECT_EQ(store->GetDedup(kDay, 0, "committed")->value_or(DedupValue{}), (DedupValue{400, 3}));
  EXPECT_EQ(store->GetJoinRows(0)->size(), 2u);
}

// A batch's writes are kept in maps of its own (PendingBatch::Impl::writes), not in RocksDB: a
// de-dup lookup must still see the batch's own puts and deletes of a key, the last of them, over
// the committed value; Commit must write exactly those; Clear must forget them.
TEST(StateStoreBatch, DedupOverlaySeesReplacesDeletesAndForgets) {
  TempDir tmp;
  auto store = MustOpen(StoreOptions(tmp.path()));
  {
    auto b = store->NewBatch();
    ASSERT_TRUE(b.PutDedup(kDay, 0, "committed", {500, 1}).ok());
    ASSERT_TRUE(b.PutDedup(kDay, 0, "gone", {300, 1}).ok());
    ASSERT_TRUE(b.PutDedup(kDay, 3, "other-partition", {700, 4}).ok());
    ASSERT_TRUE(store->Commit(std::move(b)).ok());
  }
  auto b = store->NewBatch();
  EXPECT_FALSE(b.DedupLookup(kDay, 0, "new")->has_value());
  ASSERT_TRUE(b.PutDedup(kDay, 0, "new", {100, 2}).ok());
  EXPECT_EQ(b.DedupLookup(kDay, 0, "new")->value_or(DedupValue{}), (DedupValue{100, 2}));
  ASSERT_TRUE(b.PutDedup(kDay, 0, "new", {90, 5}).ok());  // replaced within the batch
  EXPECT_EQ(b.DedupLookup(kDay, 0, "new")->value_or(DedupValue{}), (DedupValue{90, 5}));
  EXPECT_FALSE(b.DedupLookup(kDay + 1, 0, "new")->has_value());  // day-scoped
  ASSERT_TRUE(b.DeleteDedup(kDay, 0, "gone").ok());  // a delete hides the committed value
  EXPECT_FALSE(b.DedupLookup(kDay, 0, "gone")->has_value());
  ASSERT_TRUE(b.PutDedup(kDay, 0, "gone", {200, 7}).ok());  // and a put after it is seen
  EXPECT_EQ(b.DedupLookup(kDay, 0, "gone")->value_or(DedupValue{}), (DedupValue{200, 7}));
  ASSERT_TRUE(b.DeleteDedup(kDay, 0, "committed").ok());
  EXPECT_FALSE(b.DedupLookup(kDay, 0, "committed")->has_value());
  EXPECT_EQ(b.DedupLookup(kDay, 3, "other-partition")->value_or(DedupValue{}),
            (DedupValue{700, 4}));
  EXPECT_EQ(b.mutation_count(), 5u);
  EXPECT_FALSE(store->GetDedup(kDay, 0, "new")->has_value());  // not before Commit
  ASSERT_TRUE(store->Commit(&b).ok());
  EXPECT_EQ(store->GetDedup(kDay, 0, "new")->value_or(DedupValue{}), (DedupValue{90, 5}));
  EXPECT_EQ(store->GetDedup(kDay, 0, "gone")->value_or(DedupValue{}), (DedupValue{200, 7}));
  EXPECT_FALSE(store->GetDedup(kDay, 0, "committed")->has_value());
  EXPECT_EQ(store->GetDedup(kDay, 3, "other-partition")->value_or(DedupValue{}),
            (DedupValue{700, 4}));

  // The batch, cleared by Commit, reads what was committed; a write it forgets on Clear() is
  // neither seen nor committed with the next transaction.
  EXPECT_TRUE(b.empty());
  EXPECT_EQ(b.DedupLookup(kDay, 0, "new")->value_or(DedupValue{}), (DedupValue{90, 5}));
  ASSERT_TRUE(b.PutDedup(kDay, 0, "dropped", {1, 1}).ok());
  ASSERT_TRUE(b.PutDedup(kDay, 0, "new", {1, 1}).ok());
  b.Clear();
  EXPECT_FALSE(b.DedupLookup(kDay, 0, "dropped")->has_value());
  EXPECT_EQ(b.DedupLookup(kDay, 0, "new")->value_or(DedupValue{}), (DedupValue{90, 5}));
  ASSERT_TRUE(b.SetOffset("T", 0, 1).ok());
  ASSERT_TRUE(store->Commit(&b).ok());
  EXPECT_FALSE(store->GetDedup(kDay, 0, "dropped")->has_value());
  EXPECT_EQ(store->GetDedup(kDay, 0, "new")->value_or(DedupValue{}), (DedupValue{90, 5}));
  EXPECT_EQ(store->GetOffset("T", 0)->value_or(-1), 1);
}

// A batch's join writes are an ordered map read together with the committed rows
// (OverlayIterator): committed and batch rows interleaved in key order, a batch row replacing a
// committed one (its value), a deleted committed row hidden, a row put again after its delete
// seen, and nothing of the next order id (a longer id sharing the prefix) in a lookup.
TEST(StateStoreBatch, JoinLookupMergesCommittedRowsWithTheBatchsWrites) {
  TempDir tmp;
  auto store = MustOpen(StoreOptions(tmp.path()));
  auto row = [](std::string order, JoinSide side, std::string id, std::string json) {
    return JoinRow{0, std::move(order), side, std::move(id), 100, false, std::move(json)};
  };
  {
    auto b = store->NewBatch();
    for (const char* id : {"1", "3", "5", "7"}) {
      ASSERT_TRUE(b.PutJoinRow(row("9", JoinSide::kDetail, id, absl::StrCat("old", id))).ok());
    }
    ASSERT_TRUE(b.PutJoinRow(row("9", JoinSide::kOrder, "9", "order")).ok());
    ASSERT_TRUE(b.PutJoinRow(row("90", JoinSide::kDetail, "1", "next order")).ok());
    ASSERT_TRUE(store->Commit(std::move(b)).ok());
  }
  auto b = store->NewBatch();
  for (const char* id : {"0", "2", "4", "8"}) {
    ASSERT_TRUE(b.PutJoinRow(row("9", JoinSide::kDetail, id, absl::StrCat("new", id))).ok());
  }
  ASSERT_TRUE(b.PutJoinRow(row("9", JoinSide::kDetail, "3", "new3")).ok());  // replaces
  ASSERT_TRUE(b.DeleteJoinRow(0, "9", JoinSide::kDetail, "5").ok());         // hides
  ASSERT_TRUE(b.DeleteJoinRow(0, "9", JoinSide::kDetail, "7").ok());
  ASSERT_TRUE(b.PutJoinRow(row("9", JoinSide::kDetail, "7", "again7")).ok());  // seen again
  ASSERT_TRUE(b.DeleteJoinRow(0, "9", JoinSide::kDetail, "8").ok());           // batch-only, gone
  auto rows = b.JoinLookup(0, "9");
  ASSERT_TRUE(rows.ok()) << rows.status();
  std::vector<std::string> got;
  for (const JoinRow& r : *rows) got.push_back(absl::StrCat(r.row_id, "=", r.row_json));
  EXPECT_EQ(got, (std::vector<std::string>{"0=new0", "1=old1", "2=new2", "3=new3", "4=new4",
                                           "7=again7", "9=order"}));
  auto orders = b.JoinLookup(0, "9", JoinSide::kOrder);
  ASSERT_EQ(orders->size(), 1u);
  EXPECT_EQ((*orders)[0].row_json, "order");
  EXPECT_EQ(b.JoinLookup(0, "90")->size(), 1u);
  ASSERT_TRUE(store->Commit(std::move(b)).ok());
  auto committed = store->GetJoinRows(0);
  ASSERT_TRUE(committed.ok());
  EXPECT_EQ(committed->size(), 8u);  // the 7 above and order 90's detail
  auto stats = store->Stats(true);
  EXPECT_EQ(stats->column_families[2].keys, 16u);  // each row with its time-index entry
}

// Join lookups are prefix seeks (the join family's order prefix, with prefix bloom filters in
// its memtables and table files): orders in table files only, in the memtable only, in both,
// absent, and ids that share a byte prefix are each found exactly; the expiry scan (index keys,
// outside the prefix domain) still sees every row.
TEST(StateStoreBatch, JoinLookupPrefixSeeksAcrossFilesAndMemtable) {
  TempDir tmp;
  auto store = MustOpen(StoreOptions(tmp.path(), "order-wide"));
  auto row = [](std::string order, JoinSide side, std::string id, int64_t ms) {
    return JoinRow{0, order, side, id, ms, false, absl::StrCat(order, "/", id)};
  };
  {  // orders 0..199 with two details each, then flushed into table files (a backup flushes)
    auto b = store->NewBatch();
    for (int o = 0; o < 200; ++o) {
      ASSERT_TRUE(b.PutJoinRow(row(absl::StrCat(o), JoinSide::kOrder, absl::StrCat(o), o)).ok());
      for (int d = 0; d < 2; ++d) {
        ASSERT_TRUE(
            b.PutJoinRow(row(absl::StrCat(o), JoinSide::kDetail, absl::StrCat("d", d), o)).ok());
      }
    }
    ASSERT_TRUE(store->Commit(std::move(b)).ok());
    ASSERT_TRUE(store->CreateBackup(tmp.path() + "/backup").ok());
  }
  {  // in the memtable: a detail more for the even orders < 100, and orders 1000..1099
    auto b = store->NewBatch();
    for (int o = 0; o < 100; o += 2) {
      ASSERT_TRUE(b.PutJoinRow(row(absl::StrCat(o), JoinSide::kDetail, "d9", 500)).ok());
    }
    for (int o = 1000; o < 1100; ++o) {
      ASSERT_TRUE(b.PutJoinRow(row(absl::StrCat(o), JoinSide::kDetail, "d0", 600)).ok());
    }
    ASSERT_TRUE(store->Commit(std::move(b)).ok());
  }
  auto stats = store->Stats(false);
  ASSERT_TRUE(stats.ok());
  ASSERT_GT(stats->column_families[2].sst_bytes, 0u);
  ASSERT_GT(stats->column_families[2].memtable_bytes, 0u);
  auto b = store->NewBatch();
  auto ids = [&](std::string order, std::optional<JoinSide> side = std::nullopt) {
    auto rows = b.JoinLookup(0, order, side);
    EXPECT_TRUE(rows.ok()) << rows.status();
    std::vector<std::string> got;
    for (const JoinRow& r : *rows) got.push_back(r.row_json);
    return got;
  };
  for (int o = 0; o < 200; ++o) {
    const std::string id = absl::StrCat(o);
    std::vector<std::string> want = {id + "/d0", id + "/d1"};
    if (o < 100 && o % 2 == 0) want.push_back(id + "/d9");
    want.push_back(id + "/" + id);
    EXPECT_EQ(ids(id), want) << "order " << id;
    EXPECT_EQ(ids(id, JoinSide::kOrder), std::vector<std::string>{id + "/" + id});
  }
  for (int o = 1000; o < 1100; ++o) {
    EXPECT_EQ(ids(absl::StrCat(o)), std::vector<std::string>{absl::StrCat(o, "/d0")});
  }
  for (const char* absent : {"200", "999", "1100", "x", "00", "1\x01"}) {
    EXPECT_TRUE(ids(absent).empty()) << absent;
  }
  auto expired = b.ExpireJoinRows(0, 1000);
  ASSERT_TRUE(expired.ok()) << expired.status();
  EXPECT_EQ(expired->size(), 200u * 3 + 50 + 100);
}

// The join family's prefix extractor is total: RocksDB's prefix iterator applies it to every key
// it steps onto — after an order's last row, an index key ('T', 'O') or another partition's key.
// A key outside the domain is its own prefix (never an order's), so the iterator ends there.
TEST(StateStoreBatch, JoinPrefixExtractorIsTotal) {
  auto x = state_internal::JoinOrderPrefixExtractor();
  auto transform = [&](const std::string& key) {
    rocksdb::Slice p = x->Transform(rocksdb::Slice(key));
    EXPECT_NE(p.data(), nullptr) << key;
    return p.ToString();
  };
  const std::string row = state_keys::JoinRowKey(7, "42", JoinSide::kDetail, "d1");
  EXPECT_TRUE(x->InDomain(row));
  EXPECT_EQ(transform(row), state_keys::JoinOrderPrefix(7, "42"));
  EXPECT_EQ(transform(state_keys::JoinOrderPrefix(7, "42")), state_keys::JoinOrderPrefix(7, "42"));
  for (const std::string& other :
       {state_keys::JoinTimeKey(7, 5, "42", JoinSide::kOrder, "42"),
        state_keys::JoinOffsetKey(7, JoinSide::kOrder, 5, "42", "42"),
        state_keys::JoinPartitionPrefix(7), state_keys::JoinTimePrefix(8), std::string("R"),
        std::string()}) {
    EXPECT_FALSE(x->InDomain(other));
    EXPECT_EQ(transform(other), other);
  }
}

// One database iterator serves a batch's join lookups; a write to the store after it was
// created (another batch's commit, a partition's rows dropped) is seen by the next lookup.
TEST(StateStoreBatch, JoinLookupSeesCommitsAfterTheBatchsFirstLookup) {
  TempDir tmp;
  auto store = MustOpen(StoreOptions(tmp.path(), "order-wide"));
  auto row = [](std::string order, JoinSide side, std::string id) {
    return JoinRow{0, order, side, id, 100, false, id};
  };
  auto b = store->NewBatch();
  EXPECT_TRUE(b.JoinLookup(0, "5")->empty());
  {
    auto c = store->NewBatch();
    ASSERT_TRUE(c.PutJoinRow(row("5", JoinSide::kDetail, "d1")).ok());
    ASSERT_TRUE(c.PutJoinRow(row("6", JoinSide::kDetail, "d2")).ok());
    ASSERT_TRUE(store->Commit(std::move(c)).ok());
  }
  ASSERT_EQ(b.JoinLookup(0, "5")->size(), 1u);
  EXPECT_EQ((*b.JoinLookup(0, "6"))[0].row_json, "d2");
  {
    auto c = store->NewBatch();
    ASSERT_TRUE(c.DeleteJoinRow(0, "5", JoinSide::kDetail, "d1").ok());
    ASSERT_TRUE(store->Commit(std::move(c)).ok());
  }
  EXPECT_TRUE(b.JoinLookup(0, "5")->empty());
  EXPECT_EQ(b.JoinLookup(0, "6")->size(), 1u);
  ASSERT_TRUE(store->DropPartitionState(0, {"t"}).ok());
  EXPECT_TRUE(b.JoinLookup(0, "6")->empty());
}

TEST(StateStoreBatch, JoinExpiryByEventTime) {
  TempDir tmp;
  auto store = MustOpen(StoreOptions(tmp.path()));
  {
    auto b = store->NewBatch();
    for (int i = 0; i < 10; ++i) {
      ASSERT_TRUE(b.PutJoinRow({1, absl::StrCat(i), JoinSide::kOrder, absl::StrCat(i), i * 1000,
                                i % 2 == 0, "{}"})
                      .ok());
    }
    ASSERT_TRUE(b.PutJoinRow({2, "x", JoinSide::kOrder, "x", 0, false, "{}"}).ok());
    ASSERT_TRUE(store->Commit(std::move(b)).ok());
  }
  auto b = store->NewBatch();
  // Row 3 moves later in time (a re-put replaces its index entry); row 8 is added in the batch.
  ASSERT_TRUE(b.PutJoinRow({1, "3", JoinSide::kOrder, "3", 9500, false, "{}"}).ok());
  ASSERT_TRUE(b.PutJoinRow({1, "y", JoinSide::kDetail, "y1", 100, false, "{}"}).ok());
  auto expired = b.ExpireJoinRows(1, 5000);
  ASSERT_TRUE(expired.ok()) << expired.status();
  std::vector<std::string> ids;
  for (const auto& r : *expired) ids.push_back(r.row_id);
  EXPECT_EQ(ids, (std::vector<std::string>{"0", "y1", "1", "2", "4"}));  // oldest first
  EXPECT_TRUE((*expired)[0].matched);
  EXPECT_FALSE((*expired)[2].matched);
  EXPECT_TRUE(b.JoinLookup(1, "2")->empty());
  ASSERT_TRUE(store->Commit(std::move(b)).ok());
  auto left = store->GetJoinRows(1);
  ASSERT_TRUE(left.ok());
  EXPECT_EQ(left->size(), 6u);                   // 3, 5, 6, 7, 8, 9
  EXPECT_EQ(store->GetJoinRows(2)->size(), 1u);  // another partition is untouched
  auto stats = store->Stats(true);
  EXPECT_EQ(stats->column_families[2].keys, 14u);  // 7 rows, each with its index entry
  // A limit bounds one call.
  auto b2 = store->NewBatch();
  auto some = b2.ExpireJoinRows(1, 100000, 2);
  ASSERT_TRUE(some.ok());
  EXPECT_EQ(some->size(), 2u);
}

TEST(StateStoreBatch, EmptyBatchIsANoOp) {
  TempDir tmp;
  auto store = MustOpen(StoreOptions(tmp.path()));
  auto r = store->Commit(store->NewBatch());
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->journal_seq.has_value());
  EXPECT_EQ(store->next_seq(), 1u);
}

TEST(StateStoreBatch, CommitWaitsBelowTheFreeSpaceFloor) {
  TempDir tmp;
  auto o = StoreOptions(tmp.path());
  o.min_free_mb = int64_t{1} << 40;  // more than any disk here has: every commit is refused
  {
    auto store = MustOpen(o);
    ASSERT_TRUE(store);
    auto b = store->NewBatch();
    ASSERT_TRUE(b.SetOffset("T", 0, 42).ok());
    JournalEntry e;
    e.target = "t";
    e.body = "{}\n";
    b.SetJournal(e);
    auto r = store->Commit(&b);
    ASSERT_FALSE(r.ok());
    EXPECT_TRUE(absl::IsResourceExhausted(r.status())) << r.status();
    EXPECT_TRUE(absl::StrContains(Msg(r.status()), "state.min_free_mb")) << r.status();
    EXPECT_TRUE(absl::StrContains(Msg(r.status()), store->path())) << r.status();
    EXPECT_TRUE(absl::IsResourceExhausted(store->CheckFreeSpace()));
    // Nothing of the batch was written.
    auto off = store->GetOffset("T", 0);
    ASSERT_TRUE(off.ok());
    EXPECT_FALSE(off->has_value());
    auto journal = store->ListJournal();
    ASSERT_TRUE(journal.ok());
    EXPECT_TRUE(journal->empty());
  }
  o.min_free_mb = 1;  // space came back
  auto store = MustOpen(o);
  ASSERT_TRUE(store);
  EXPECT_TRUE(store->CheckFreeSpace().ok());
  auto b = store->NewBatch();
  ASSERT_TRUE(b.SetOffset("T", 0, 42).ok());
  ASSERT_TRUE(store->Commit(&b).ok());
  auto off = store->GetOffset("T", 0);
  ASSERT_TRUE(off.ok());
  EXPECT_EQ(off->value_or(-1), 42);
}

// ---------------------------------------------------------------------------------------------
// Journal, dead letters, retention

JournalEntry Entry(int i) {
  JournalEntry e;
  e.target = absl::StrCat("t", i);
  e.body = absl::StrCat("{\"index\":{\"_index\":\"x\",\"_id\":\"", i, "\"}}\n{}\n");
  e.doc_count = 1;
  return e;
}

TEST(StateStoreJournal, SeqIsMonotonicAcrossRestartsEvenWhenDrained) {
  TempDir tmp;
  uint64_t last = 0;
  for (int round = 0; round < 3; ++round) {
    auto store = MustOpen(StoreOptions(tmp.path()));
    for (int i = 0; i < 3; ++i) {
      auto b = store->NewBatch();
      b.SetJournal(Entry(i));
      auto r = store->Commit(std::move(b));
      ASSERT_TRUE(r.ok());
      EXPECT_GT(*r->journal_seq, last);
      last = *r->journal_seq;
    }
    // Deliver everything: the journal is empty at close, the counter still moves on.
    auto owed = store->ListJournal();
    ASSERT_TRUE(owed.ok());
    for (const auto& e : *owed) ASSERT_TRUE(store->DeleteJournal(e.seq).ok());
    EXPECT_EQ(*store->JournalBacklog(), 0u);
  }
  EXPECT_EQ(last, 9u);
}

TEST(StateStoreJournal, ListIsInSeqOrderAndCompleteAddsDeadLetters) {
  TempDir tmp;
  auto store = MustOpen(StoreOptions(tmp.path()));
  for (int i = 0; i < 300; ++i) {  // past 255: byte order must still be numeric order
    auto b = store->NewBatch();
    b.SetJournal(Entry(i));
    ASSERT_TRUE(store->Commit(std::move(b)).ok());
  }
  auto list = store->ListJournal();
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->size(), 300u);
  for (size_t i = 0; i < list->size(); ++i) {
    EXPECT_EQ((*list)[i].seq, i + 1);
    EXPECT_EQ((*list)[i].target, absl::StrCat("t", i));
    EXPECT_TRUE((*list)[i].body.empty());
    EXPECT_GT((*list)[i].body_size, 0u);
  }
  auto e = store->ReadJournal(5);
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->body, Entry(4).body);
  EXPECT_EQ(store->ReadJournal(1000).status().code(), absl::StatusCode::kNotFound);
  auto seqs = store->CompleteJournal(1, {"{\"reason\":\"es_rejected\"}"});
  ASSERT_TRUE(seqs.ok());
  EXPECT_EQ(*seqs, (std::vector<uint64_t>{301}));
  EXPECT_EQ(store->ReadJournal(1).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(store->GetDeadLetter(301)->line, "{\"reason\":\"es_rejected\"}");
}

TEST(StateStoreJournal, DeadLettersAddListDropRequeue) {
  TempDir tmp;
  auto store = MustOpen(StoreOptions(tmp.path()));
  for (int i = 0; i < 5; ++i)
    ASSERT_TRUE(store->AddDeadLetter(absl::StrCat("{\"n\":", i, "}")).ok());
  auto page = store->ListDeadLetters(2, 2);
  ASSERT_TRUE(page.ok());
  ASSERT_EQ(page->size(), 2u);
  EXPECT_EQ((*page)[0].seq, 3u);
  ASSERT_TRUE(store->DeleteDeadLetter(3).ok());
  EXPECT_EQ(store->DeleteDeadLetter(3).code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(store->RequeueDeadLetters({1, 3}, Entry(0)).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(*store->DeadLetterCount(), 4u);  // nothing written by the refused requeue
  auto seq = store->RequeueDeadLetters({1, 2}, Entry(0));
  ASSERT_TRUE(seq.ok());
  EXPECT_EQ(*seq, 6u);
  EXPECT_EQ(*store->DeadLetterCount(), 2u);
  EXPECT_EQ(*store->JournalBacklog(), 1u);
}

TEST(StateStoreDedup, RetentionDropsWholePastDays) {
  TempDir tmp;
  auto store = MustOpen(StoreOptions(tmp.path()));
  for (DayNumber day : {20241123u, 20241124u, 20241125u, 20241201u}) {
    auto b = store->NewBatch();
    for (int p = 0; p < 3; ++p) {
      for (int k = 0; k < 20; ++k)
        ASSERT_TRUE(b.PutDedup(day, p, absl::StrCat("m", k), {k, k}).ok());
    }
    ASSERT_TRUE(store->Commit(std::move(b)).ok());
  }
  EXPECT_EQ(*store->DedupDays(), (std::vector<DayNumber>{20241123, 20241124, 20241125, 20241201}));
  ASSERT_TRUE(store->DropDedupDaysBefore(20241125).ok());
  EXPECT_EQ(*store->DedupDays(), (std::vector<DayNumber>{20241125, 20241201}));
  EXPECT_FALSE(store->GetDedup(20241124, 2, "m19")->has_value());
  EXPECT_TRUE(store->GetDedup(20241125, 0, "m0")->has_value());
  int n = 0;
  ASSERT_TRUE(store
                  ->ScanDedupDay(20241125,
                                 [&](int32_t, std::string_view, const DedupValue&) {
                                   ++n;
                                   return true;
                                 })
                  .ok());
  EXPECT_EQ(n, 60);
  // It survives a restart (DeleteRange is durable).
  store.reset();
  store = MustOpen(StoreOptions(tmp.path()));
  EXPECT_EQ(*store->DedupDays(), (std::vector<DayNumber>{20241125, 20241201}));
}

TEST(StateStorePartition, DropPartitionStateForgetsOnlyThatPartition) {
  TempDir tmp;
  auto store = MustOpen(StoreOptions(tmp.path(), "order-wide"));
  auto b = store->NewBatch();
  for (int32_t p : {2, 3, 4}) {
    for (DayNumber day : {20241124u, 20241125u}) {
      ASSERT_TRUE(b.PutDedup(day, p, "m1", {10, 1}).ok());
    }
    JoinRow row{p, "42", JoinSide::kOrder, "42", 5000, true, "{\"id\":42}"};
    row.source_offset = 100 + p;
    ASSERT_TRUE(b.PutJoinRow(row).ok());
    ASSERT_TRUE(b.PutJoinRow(JoinRow{p, "43", JoinSide::kDetail, "7", 6000, false, "{}"}).ok());
    ASSERT_TRUE(b.SetWatermark(p, 7000 + p).ok());
    ASSERT_TRUE(b.SetInputWatermark("ORDERS", p, 8000 + p).ok());
    ASSERT_TRUE(b.SetInputWatermark("DETAILS", p, 9000 + p).ok());
    // A batch reads its own watermark writes.
    EXPECT_EQ(**b.GetInputWatermark("DETAILS", p), 9000 + p);
    ASSERT_TRUE(b.SetOffset("ORDERS", p, 500).ok());
    ASSERT_TRUE(b.SetOffset("DETAILS", p, 600).ok());
  }
  ASSERT_TRUE(store->Commit(std::move(b)).ok());
  // The source offset survives the encoding; a row without one reads back as -1.
  auto rows = store->GetJoinRows(3);
  ASSERT_TRUE(rows.ok());
  ASSERT_EQ(rows->size(), 2u);
  for (const JoinRow& r : *rows) {
    EXPECT_EQ(r.source_offset, r.side == JoinSide::kOrder ? 103 : -1);
    EXPECT_EQ(r.row_json, r.side == JoinSide::kOrder ? "{\"id\":42}" : "{}");
  }

  // The offset index: the smallest live source offset per side, following puts and deletes.
  EXPECT_EQ(**store->MinJoinSourceOffset(3, JoinSide::kOrder), 103);
  EXPECT_FALSE(store->MinJoinSourceOffset(3, JoinSide::kDetail)->has_value());  // no offset
  {
    auto b2 = store->NewBatch();
    JoinRow d{3, "44", JoinSide::kDetail, "8", 6100, false, "{}"};
    d.source_offset = 77;
    ASSERT_TRUE(b2.PutJoinRow(d).ok());
    d.row_id = "9";
    d.source_offset = 75;
    ASSERT_TRUE(b2.PutJoinRow(d).ok());
    ASSERT_TRUE(store->Commit(std::move(b2)).ok());
  }
  EXPECT_EQ(**store->MinJoinSourceOffset(3, JoinSide::kDetail), 75);
  {
    auto b3 = store->NewBatch();
    ASSERT_TRUE(b3.DeleteJoinRow(3, "44", JoinSide::kDetail, "9").ok());
    ASSERT_TRUE(store->Commit(std::move(b3)).ok());
  }
  EXPECT_EQ(**store->MinJoinSourceOffset(3, JoinSide::kDetail), 77);
  {
    auto b4 = store->NewBatch();  // expiry removes index entries too (event time 6100 < 6200)
    auto expired = b4.ExpireJoinRows(3, 6200);
    ASSERT_TRUE(expired.ok());
    ASSERT_TRUE(store->Commit(std::move(b4)).ok());
  }
  EXPECT_FALSE(store->MinJoinSourceOffset(3, JoinSide::kDetail)->has_value());
  EXPECT_EQ(store->GetJoinRows(4)->size(), 2u);

  ASSERT_TRUE(store->DropPartitionState(3, {"ORDERS", "DETAILS"}).ok());
  EXPECT_FALSE(store->MinJoinSourceOffset(3, JoinSide::kOrder)->has_value());
  EXPECT_TRUE(store->GetJoinRows(3)->empty());
  EXPECT_FALSE(store->GetDedup(20241124, 3, "m1")->has_value());
  EXPECT_FALSE(store->GetDedup(20241125, 3, "m1")->has_value());
  EXPECT_FALSE(store->GetOffset("ORDERS", 3)->has_value());
  EXPECT_FALSE(store->GetOffset("DETAILS", 3)->has_value());
  EXPECT_FALSE(store->NewBatch().GetWatermark(3)->has_value());
  EXPECT_FALSE(store->NewBatch().GetInputWatermark("ORDERS", 3)->has_value());
  EXPECT_FALSE(store->NewBatch().GetInputWatermark("DETAILS", 3)->has_value());
  for (int32_t p : {2, 4}) {  // the neighbours keep everything
    EXPECT_EQ(**store->NewBatch().GetInputWatermark("ORDERS", p), 8000 + p);
    EXPECT_EQ(**store->NewBatch().GetInputWatermark("DETAILS", p), 9000 + p);
    EXPECT_EQ(store->GetJoinRows(p)->size(), 2u);
    EXPECT_TRUE(store->GetDedup(20241125, p, "m1")->has_value());
    EXPECT_EQ(**store->GetOffset("DETAILS", p), 600);
    EXPECT_EQ(**store->NewBatch().GetWatermark(p), 7000 + p);
  }
  // Durable.
  store.reset();
  store = MustOpen(StoreOptions(tmp.path(), "order-wide"));
  EXPECT_TRUE(store->GetJoinRows(3)->empty());
  EXPECT_EQ(store->GetJoinRows(4)->size(), 2u);
}

// ---------------------------------------------------------------------------------------------
// Crash safety: real processes, SIGKILL

std::string ChildBin() { return RTDW_STATE_CHILD; }

// Every committed batch 1..L is there whole, nothing of batch L+1 (see state_child_main.cc).
// Returns L.
int64_t CheckBatchInvariants(const std::string& root, int dedup_per_batch = 10) {
  const std::string job = "dau";
  auto o = StoreOptions(root, job);
  o.read_only = true;
  auto store = MustOpen(o);
  if (!store) return -1;
  auto off = store->GetOffset("T", 0);
  EXPECT_TRUE(off.ok());
  int64_t last = off->has_value() ? **off / 10 : 0;
  for (int p = 0; p < 4; ++p) {
    EXPECT_EQ(store->GetOffset("T", p)->value_or(-1), last == 0 ? -1 : 10 * last + p);
  }
  // dedup: 10 per batch, none of batch last+1.
  uint64_t dedup = 0;
  for (int p = 0; p < 4; ++p) {
    EXPECT_TRUE(store
                    ->ScanDedupDay(kDay,
                                   [&](int32_t, std::string_view mid, const DedupValue& v) {
                                     ++dedup;
                                     EXPECT_LE(v.ts_ms, last) << mid;
                                     return true;
                                   })
                    .ok());
    break;  // ScanDedupDay covers every partition
  }
  EXPECT_EQ(dedup, static_cast<uint64_t>(dedup_per_batch * last));
  EXPECT_FALSE(
      store->GetDedup(kDay, static_cast<int32_t>((last + 1) % 4), absl::StrCat("m", last + 1, "-0"))
          ->has_value());
  uint64_t join = 0;
  for (int p = 0; p < 4; ++p) join += store->GetJoinRows(p)->size();
  EXPECT_EQ(join, static_cast<uint64_t>(3 * last));
  // journal and dead letters: one each per batch, seqs increasing with the batch number.
  auto journal = store->ListJournal(true);
  EXPECT_TRUE(journal.ok());
  EXPECT_EQ(journal->size(), static_cast<size_t>(last));
  for (size_t k = 0; k < journal->size(); ++k) {
    EXPECT_EQ((*journal)[k].target, absl::StrCat("batch-", k + 1));
    if (k > 0) {
      EXPECT_GT((*journal)[k].seq, (*journal)[k - 1].seq);
    }
  }
  auto dl = store->ListDeadLetters();
  EXPECT_EQ(dl->size(), static_cast<size_t>(last));
  for (size_t k = 0; k < dl->size(); ++k) {
    EXPECT_TRUE(absl::StrContains((*dl)[k].line, absl::StrCat("\"i\":", k + 1, "}")));
    if (k < journal->size()) {
      EXPECT_EQ((*dl)[k].seq, (*journal)[k].seq + 1);
    }
  }
  uint64_t max_seq = 0;
  if (!dl->empty()) max_seq = dl->back().seq;
  EXPECT_GT(store->next_seq(), max_seq);
  return last;
}

int CountLines(const std::string& text) {
  return static_cast<int>(std::count(text.begin(), text.end(), '\n'));
}

TEST(StateStoreCrash, SelfKillBeforeAndAfterCommit) {
  TempDir tmp;
  std::string root = tmp.Sub("state");
  // Batches 1..2 commit, the child dies while holding batch 3 (built, not committed).
  ProcessOptions quiet;
  quiet.stdout_path = tmp.Sub("child.out");
  auto c1 = ChildProcess::Start({ChildBin(), "commit", root, "dau", "3", "before_commit"}, quiet);
  ASSERT_TRUE(c1.ok());
  EXPECT_EQ((*c1)->Wait(std::chrono::seconds(60)), 128 + SIGKILL);
  EXPECT_EQ(CheckBatchInvariants(root), 2);
  // Batch 3 commits, the child dies before it can report it: it is there, whole.
  auto c2 = ChildProcess::Start({ChildBin(), "commit", root, "dau", "3", "after_commit"}, quiet);
  ASSERT_TRUE(c2.ok());
  EXPECT_EQ((*c2)->Wait(std::chrono::seconds(60)), 128 + SIGKILL);
  EXPECT_EQ(CheckBatchInvariants(root), 3);
  // The kill left the clean-shutdown flag false: the next open says so.
  auto o = StoreOptions(root);
  std::vector<std::string> logs;
  o.log = [&](std::string_view m) { logs.emplace_back(m); };
  auto store = MustOpen(o);
  EXPECT_EQ(store->previous_shutdown_clean(), false);
  ASSERT_EQ(logs.size(), 1u);
  EXPECT_TRUE(absl::StrContains(logs[0], "did not shut down cleanly"));
}

class StateStoreCrashRandom : public ::testing::TestWithParam<int> {};

TEST_P(StateStoreCrashRandom, KillsAtAnyInstantLeaveWholeBatchesOnly) {
  const int per_batch = GetParam();
  TempDir tmp;
  std::string root = tmp.Sub("state");
  std::mt19937 rng(20241125 + per_batch);
  int64_t last = 0;
  uint64_t last_seq = 0;
  for (int round = 0; round < 12; ++round) {
    std::string out = tmp.Sub(absl::StrCat("out", round));
    ProcessOptions po;
    po.stdout_path = out;
    auto child = ChildProcess::Start(
        {ChildBin(), "commit", root, "dau", "-1", "none", absl::StrCat(per_batch)}, po);
    ASSERT_TRUE(child.ok());
    // Let it commit a few batches, then kill it at an arbitrary instant.
    int want = 1 + static_cast<int>(rng() % 5);
    ASSERT_TRUE(WaitFor([&] { return CountLines(ReadFileOrEmpty(out)) >= want; },
                        std::chrono::seconds(60)));
    std::this_thread::sleep_for(std::chrono::microseconds(rng() % 3000));
    (*child)->Kill9();
    int reported = CountLines(ReadFileOrEmpty(out));
    int64_t now = CheckBatchInvariants(root, per_batch);
    // Everything reported is there; at most the one batch in flight more.
    EXPECT_GE(now, last + reported);
    EXPECT_LE(now, last + reported + 1);
    // Seqs went on from where the previous run stopped.
    std::istringstream lines(ReadFileOrEmpty(out));
    std::string word;
    long long i;
    unsigned long long seq;
    while (lines >> word >> i >> seq) {
      EXPECT_GT(seq, last_seq);
      last_seq = seq;
    }
    last = now;
  }
  EXPECT_GT(last, 12);
}

// 10 de-dup keys per batch, and 5,000 (a batch whose write takes long enough to be hit).
INSTANTIATE_TEST_SUITE_P(BatchSizes, StateStoreCrashRandom, ::testing::Values(10, 5000));

TEST(StateStoreCrash, ReplayAfterKillRedeliversInOrder) {
  TempDir tmp;
  std::string root = tmp.Sub("state");
  ProcessOptions quiet;
  quiet.stdout_path = tmp.Sub("child.out");
  auto c = ChildProcess::Start({ChildBin(), "commit", root, "dau", "9", "before_commit"}, quiet);
  ASSERT_TRUE(c.ok());
  (*c)->Wait(std::chrono::seconds(60));
  ASSERT_EQ(CheckBatchInvariants(root), 8);
  std::string log = tmp.Sub("delivered");
  // The replay dies after delivering its 3rd entry, before deleting it.
  auto r1 = ChildProcess::Start({ChildBin(), "replay", root, "dau", log, "3"});
  ASSERT_TRUE(r1.ok());
  EXPECT_EQ((*r1)->Wait(std::chrono::seconds(60)), 128 + SIGKILL);
  auto r2 = ChildProcess::Start({ChildBin(), "replay", root, "dau", log});
  ASSERT_TRUE(r2.ok());
  EXPECT_EQ((*r2)->Wait(std::chrono::seconds(60)), 0);
  std::vector<std::string> targets;
  std::istringstream in(ReadFileOrEmpty(log));
  uint64_t seq;
  std::string target;
  while (in >> seq >> target) targets.push_back(target);
  // batch-3 twice (delivered, not deleted, re-delivered), everything else once, in order.
  std::vector<std::string> want = {"batch-1", "batch-2", "batch-3", "batch-3", "batch-4",
                                   "batch-5", "batch-6", "batch-7", "batch-8"};
  EXPECT_EQ(targets, want);
  auto o = StoreOptions(root);
  o.read_only = true;
  EXPECT_EQ(*MustOpen(o)->JournalBacklog(), 0u);
}

// A kill at any instant of a creation leaves no store or a complete one at <root>/<job>: the next
// open creates it or opens it (never "exists but cannot be opened"), and removes what the killed
// creation left in its hidden staging directory. The child creates store after store, so the kill
// lands inside a creation almost every time.
TEST(StateStoreCrash, KillDuringCreationNeverLeavesAHalfStore) {
  TempDir tmp;
  std::mt19937 rng(20241206);
  for (int round = 0; round < 24; ++round) {
    std::string root = tmp.Sub(absl::StrCat("state", round));
    std::string out = tmp.Sub(absl::StrCat("create", round, ".out"));
    ProcessOptions po;
    po.stdout_path = out;
    auto child = ChildProcess::Start({ChildBin(), "create", root, "s"}, po);
    ASSERT_TRUE(child.ok());
    int want = 1 + static_cast<int>(rng() % 3);
    ASSERT_TRUE(WaitFor([&] { return CountLines(ReadFileOrEmpty(out)) >= want; },
                        std::chrono::seconds(60)));
    std::this_thread::sleep_for(std::chrono::microseconds(rng() % 20000));
    (*child)->Kill9();
    int reported = CountLines(ReadFileOrEmpty(out));
    for (int k = 0; k < reported; ++k) {  // reported complete: opens as it is
      auto o = StoreOptions(root, absl::StrCat("s", k));
      o.create_if_missing = false;
      auto store = MustOpen(o);
      ASSERT_TRUE(store) << "round " << round << " store s" << k;
    }
    // The creation in flight: complete (renamed in before the kill) or created now.
    std::string job = absl::StrCat("s", reported);
    auto st = StateStore::Open(StoreOptions(root, job));
    ASSERT_TRUE(st.ok()) << "round " << round << ": " << st.status();
    EXPECT_EQ((*st)->GetMeta(kMetaJob)->value_or(""), job);
    EXPECT_EQ((*st)->GetMeta(kMetaSchemaVersion)->value_or(""), "1");
    st->reset();
    for (const auto& name : ListDir(root)) {
      EXPECT_FALSE(absl::StrContains(name, ".creating-")) << "round " << round << ": " << name;
    }
    auto listed = ListJobStores(root);
    ASSERT_TRUE(listed.ok());
    EXPECT_EQ(listed->size(), static_cast<size_t>(reported + 1)) << "round " << round;
  }
}

// A staging directory of a creation whose process is gone is removed by the next writable open
// of that job; one of a live process (a creation in progress) and other jobs' are left alone.
TEST(StateStoreOpen, RemovesLeftoversOfAKilledCreationOnly) {
  TempDir tmp;
  std::string root = tmp.Sub("state");
  auto gone = ChildProcess::Start({"/bin/true"});
  ASSERT_TRUE(gone.ok());
  ASSERT_EQ((*gone)->Wait(std::chrono::seconds(30)), 0);
  std::string dead = absl::StrCat(root, "/.dau.creating-", (*gone)->pid(), "-0");
  std::string live = absl::StrCat(root, "/.dau.creating-", ::getppid(), "-0");
  std::string other = absl::StrCat(root, "/.order-wide.creating-", (*gone)->pid(), "-0");
  for (const auto& d : {dead, live, other}) {
    fs::create_directories(d);
    std::ofstream(d + "/MANIFEST-000001") << "partial";
  }
  auto ro = StoreOptions(root);
  ro.read_only = true;
  EXPECT_EQ(StateStore::Open(ro).status().code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(fs::exists(dead));  // reading removes nothing
  auto store = MustOpen(StoreOptions(root));
  ASSERT_TRUE(store);
  EXPECT_TRUE(store->created());
  EXPECT_FALSE(fs::exists(dead));
  EXPECT_TRUE(fs::exists(live));
  EXPECT_TRUE(fs::exists(other));
  EXPECT_EQ(ListJobStores(root)->size(), 1u);
}

TEST(StateStoreLock, LockedStoreIsReportedWithThePid) {
  TempDir tmp;
  std::string root = tmp.Sub("state");
  {
    auto store = MustOpen(StoreOptions(root));
    ASSERT_TRUE(store->CreateBackup(tmp.Sub("bk")).ok());
  }
  std::string out = tmp.Sub("hold.out");
  ProcessOptions po;
  po.stdout_path = out;
  auto holder = ChildProcess::Start({ChildBin(), "hold", root, "dau"}, po);
  ASSERT_TRUE(holder.ok());
  ASSERT_TRUE(WaitFor([&] { return ReadFileOrEmpty(out) == "ready\n"; }, std::chrono::seconds(30)));
  auto s = StateStore::Open(StoreOptions(root));
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), absl::StatusCode::kUnavailable) << s.status();
  EXPECT_TRUE(absl::StrContains(Msg(s.status()), root + "/dau")) << s.status();
  EXPECT_TRUE(absl::StrContains(Msg(s.status()), absl::StrCat("pid ", (*holder)->pid())))
      << s.status();
  EXPECT_EQ(StoreLockHolder(root + "/dau"), (*holder)->pid());
  // Reading still works.
  auto o = StoreOptions(root);
  o.read_only = true;
  EXPECT_TRUE(StateStore::Open(o).ok());
  // A restore over it is refused.
  auto restore = StateStore::RestoreBackup(tmp.Sub("bk"), root, "dau");
  EXPECT_EQ(restore.status().code(), absl::StatusCode::kUnavailable) << restore.status();
  EXPECT_TRUE(absl::StrContains(Msg(restore.status()), absl::StrCat((*holder)->pid())));
  EXPECT_EQ(ListDir(tmp.path()).count(".dau.replaced"), 0u);
  (*holder)->Kill9();
  EXPECT_FALSE(StoreLockHolder(root + "/dau").has_value());
  EXPECT_TRUE(StateStore::Open(StoreOptions(root)).ok());
}

// ---------------------------------------------------------------------------------------------
// Backups

TEST(StateStoreBackup, CreateAndRestoreMovesTheOldStoreAside) {
  TempDir tmp;
  std::string root = tmp.Sub("state");
  std::string bk = tmp.Sub("backups/dau");
  {
    auto store = MustOpen(StoreOptions(root));
    ASSERT_TRUE(store->SetOffset("T", 0, 100).ok());
    auto b1 = store->CreateBackup(bk);
    ASSERT_TRUE(b1.ok()) << b1.status();
    EXPECT_EQ(b1->backup_id, 1u);
    EXPECT_GT(b1->size_bytes, 0u);
    ASSERT_TRUE(store->SetOffset("T", 0, 200).ok());
    auto b2 = store->CreateBackup(bk);
    ASSERT_TRUE(b2.ok());
    EXPECT_EQ(b2->backup_id, 2u);
    ASSERT_TRUE(store->SetOffset("T", 0, 300).ok());
  }
  auto list = StateStore::ListBackups(bk);
  ASSERT_TRUE(list.ok());
  EXPECT_EQ(list->size(), 2u);
  auto r = StateStore::RestoreBackup(bk, root, "dau");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->backup_id, 2u);
  EXPECT_EQ(r->path, root + "/dau");
  EXPECT_FALSE(r->previous_kept_at.empty());
  EXPECT_TRUE(fs::exists(r->previous_kept_at + "/CURRENT"));
  EXPECT_EQ(*ListJobStores(root), (std::vector<std::string>{"dau"}));  // hidden entries skipped
  {
    auto store = MustOpen(StoreOptions(root));
    EXPECT_EQ(store->GetOffset("T", 0)->value_or(-1), 200);
  }
  // Onto a lost disk: no store at all.
  fs::remove_all(root);
  auto r2 = StateStore::RestoreBackup(bk, root, "dau");
  ASSERT_TRUE(r2.ok()) << r2.status();
  EXPECT_TRUE(r2->previous_kept_at.empty());
  // Another job's backup is refused.
  auto r3 = StateStore::RestoreBackup(bk, root, "order-wide");
  EXPECT_EQ(r3.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_FALSE(fs::exists(root + "/order-wide"));
  EXPECT_EQ(StateStore::RestoreBackup(tmp.Sub("none"), root, "dau").status().code(),
            absl::StatusCode::kNotFound);
}

TEST(StateStoreDir, ListJobStores) {
  TempDir tmp;
  EXPECT_EQ(ListJobStores(tmp.Sub("missing")).status().code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(ListJobStores(tmp.path())->empty());
  { MustOpen(StoreOptions(tmp.path(), "order-wide")); }
  { MustOpen(StoreOptions(tmp.path(), "dau")); }
  fs::create_directories(tmp.Sub("empty-dir"));
  fs::create_directories(tmp.Sub(".dau.replaced-x/x"));
  EXPECT_EQ(*ListJobStores(tmp.path()), (std::vector<std::string>{"dau", "order-wide"}));
  std::ofstream(tmp.Sub("file")) << "x";
  EXPECT_EQ(ListJobStores(tmp.Sub("file")).status().code(), absl::StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace rtdw
