// The batch transaction (core/engine/batch_transaction.h) against an independent truth.
//
// The source is an in-memory topic of DWD page records (three partitions, mids keyed to one
// partition each, event times out of order so that later records often beat earlier ones); the
// transform is the real DauTransform; the "cluster" is FakeEs, which applies bulk actions with
// ES's external_gte rule and keeps what it applied in a file (so that it survives a killed
// worker). The truth is computed from the input alone: per (event day, mid) the first page with
// the smallest (ts, offset) — one document each, exactly.
#include "core/engine/batch_transaction.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "connectors/es/bulk.h"
#include "core/dau_transform.h"
#include "core/engine/owed_journal.h"
#include "gtest/gtest.h"
#include "tests/harness/process.h"

namespace rtdw {
namespace {

using testing::TempDir;

constexpr char kTopic[] = "DWD_PAGE_LOG_TOPIC";
constexpr char kPrefix[] = "dau_";
constexpr int kPartitions = 3;
// 2025-11-25 00:00:00 UTC.
constexpr int64_t kDay = 1764028800000;
constexpr int64_t kDayMs = 86400000;
constexpr int64_t kNow = kDay + 2 * kDayMs;  // after every record: none is "future"

struct SourceRecord {
  int32_t partition;
  int64_t offset;
  std::string mid;
  int64_t ts;
  bool first_page;
  std::string value;
};

// The topic: `per_partition` records on each partition, mids m0..m19 (mid i on partition i % 3),
// event times spread over two days in random order, a quarter of them not first pages.
std::vector<std::vector<SourceRecord>> MakeTopic(int per_partition, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<std::vector<SourceRecord>> topic(kPartitions);
  for (int p = 0; p < kPartitions; ++p) {
    for (int64_t off = 0; off < per_partition; ++off) {
      int m = 0;
      do {
        m = static_cast<int>(rng() % 20);
      } while (m % kPartitions != p);
      SourceRecord r{p,
                     off,
                     absl::StrCat("m", m),
                     kDay + static_cast<int64_t>(rng() % (2 * kDayMs / 1000)) * 1000,
                     rng() % 4 != 0,
                     ""};
      r.value = absl::StrCat(R"({"mid":")", r.mid, R"(","page_id":"home",)",
                             r.first_page ? "" : R"("last_page_id":"good_list",)",
                             R"("during_time":10,"ts":)", r.ts, "}");
      topic[p].push_back(std::move(r));
    }
  }
  return topic;
}

struct Doc {
  int64_t ts = 0;
  std::string src;
  bool operator==(const Doc&) const = default;
};
using DocKey = std::pair<std::string, std::string>;  // index, id

std::string IndexOf(int64_t ts) {
  return absl::StrCat(kPrefix,
                      absl::FormatTime("%Y-%m-%d", absl::FromUnixMillis(ts), absl::UTCTimeZone()));
}

// The documents ES must hold, from the input alone.
std::map<DocKey, Doc> Truth(const std::vector<std::vector<SourceRecord>>& topic) {
  std::map<DocKey, std::tuple<int64_t, int64_t, Doc>> best;
  for (const auto& partition : topic) {
    for (const SourceRecord& r : partition) {
      if (!r.first_page) continue;
      DocKey key{IndexOf(r.ts), r.mid};
      std::tuple<int64_t, int64_t, Doc> cand{
          r.ts, r.offset, Doc{r.ts, absl::StrCat(kTopic, "/", r.partition, "/", r.offset)}};
      auto it = best.find(key);
      if (it == best.end() || std::tie(std::get<0>(cand), std::get<1>(cand)) <
                                  std::tie(std::get<0>(it->second), std::get<1>(it->second))) {
        best[key] = cand;
      }
    }
  }
  std::map<DocKey, Doc> out;
  for (const auto& [key, v] : best) out[key] = std::get<2>(v);
  return out;
}

// `"field":` of a one-line JSON document: the integer or string after it.
std::string Field(const std::string& json, const std::string& field) {
  const std::string needle = absl::StrCat("\"", field, "\":");
  size_t at = json.find(needle);
  if (at == std::string::npos) return "";
  at += needle.size();
  if (json[at] == '"') return json.substr(at + 1, json.find('"', at + 1) - at - 1);
  return json.substr(at, json.find_first_of(",}", at) - at);
}

// The cluster: applies bulk actions by ES's rules for `version_type` external_gte (a write
// whose version is below the stored one is refused, 409, and counts as superseded), appending
// each applied action to `log_path` as it goes (a killed worker's writes stay applied). Can
// fail the next `fail_next` deliveries (Unavailable, nothing applied) and kill the worker
// half-way through its `kill_mid_delivery`-th delivery (the first half applied).
class FakeEs : public JournalSink {
 public:
  explicit FakeEs(std::string log_path) : log_path_(std::move(log_path)) {}

  absl::StatusOr<DeliveryReport> Deliver(const JournalEntry& entry) override {
    if (fail_next > 0) {
      --fail_next;
      return absl::UnavailableError("fake ES: 503");
    }
    auto actions = ParseBulkBody(entry.body);
    if (!actions.ok()) return actions.status();
    ++deliveries;
    DeliveryReport report;
    report.seq = entry.seq;
    report.docs = static_cast<uint32_t>(actions->size());
    std::ofstream log(log_path_, std::ios::app);
    for (size_t i = 0; i < actions->size(); ++i) {
      if (deliveries == kill_mid_delivery && i == actions->size() / 2) {
        log.close();
        raise(SIGKILL);
      }
      const BulkAction& a = (*actions)[i];
      EXPECT_EQ(a.version_type, "external_gte");
      log << a.index << '\t' << a.id << '\t' << a.version << '\t' << a.source << '\n';
      log.flush();
      ++report.acknowledged;
    }
    return report;
  }

  // What the cluster holds after applying the log in order.
  static std::map<DocKey, Doc> Load(const std::string& log_path, uint64_t* superseded) {
    std::map<DocKey, std::pair<int64_t, Doc>> docs;
    std::ifstream in(log_path);
    std::string line;
    while (std::getline(in, line)) {
      std::vector<std::string> f = absl::StrSplit(line, absl::MaxSplits('\t', 3));
      int64_t version = 0, ts = 0;
      EXPECT_TRUE(absl::SimpleAtoi(f[2], &version)) << line;
      EXPECT_TRUE(absl::SimpleAtoi(Field(f[3], "ts"), &ts)) << line;
      auto it = docs.find({f[0], f[1]});
      if (it != docs.end() && version < it->second.first) {
        if (superseded != nullptr) ++*superseded;
        continue;
      }
      docs[{f[0], f[1]}] = {version, Doc{ts, Field(f[3], "rtdw_src")}};
    }
    std::map<DocKey, Doc> out;
    for (const auto& [key, v] : docs) out[key] = v.second;
    return out;
  }

  int fail_next = 0;
  int kill_mid_delivery = 0;  // 1-based; 0 = never
  int deliveries = 0;

 private:
  std::string log_path_;
};

class NoDimensions : public DimensionSource {
 public:
  absl::StatusOr<std::vector<std::optional<std::string>>> Get(
      const std::vector<std::string>& keys) override {
    return std::vector<std::optional<std::string>>(keys.size());
  }
};

std::unique_ptr<StateStore> OpenStore(const std::string& root) {
  StateStoreOptions o;
  o.root = root;
  o.job = "dau";
  o.block_cache_mb = 8;
  auto store = StateStore::Open(o);
  EXPECT_TRUE(store.ok()) << store.status();
  return store.ok() ? std::move(*store) : nullptr;
}

std::unique_ptr<DauTransform> NewTransform() {
  DauOptions o;
  o.index_prefix = kPrefix;
  o.tz = absl::UTCTimeZone();
  o.retention_days = 3;
  return std::make_unique<DauTransform>(o);
}

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
  const std::string topic_name = kTopic;
  while (true) {
    std::vector<InputRecord> records;
    for (int p = 0; p < kPartitions; ++p) {
      auto stored = store->GetOffset(kTopic, p);
      if (!stored.ok()) return false;
      const size_t from = static_cast<size_t>(stored->value_or(0));
      for (size_t i = from; i < topic[p].size() && i < from + batch; ++i) {
        const SourceRecord& r = topic[p][i];
        InputRecord in;
        in.topic = topic_name;
        in.partition = r.partition;
        in.offset = r.offset;
        in.key = r.mid;
        in.value = r.value;
        in.timestamp_ms = r.ts;
        records.push_back(in);
      }
    }
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
    const std::map<DocKey, Doc> truth = Truth(topic);
    const std::map<DocKey, Doc> held = FakeEs::Load(EsLog(), nullptr);
    EXPECT_EQ(held.size(), truth.size());
    for (const auto& [key, doc] : truth) {
      auto it = held.find(key);
      if (it == held.end()) {
        ADD_FAILURE() << "missing " << key.first << "/" << key.second;
        continue;
      }
      EXPECT_EQ(it->second, doc) << key.first << "/" << key.second << ": held ts " << it->second.ts
                                 << " " << it->second.src << ", truth ts " << doc.ts << " "
                                 << doc.src;
    }
    for (const auto& [key, doc] : held) {
      EXPECT_TRUE(truth.count(key)) << "unexpected " << key.first << "/" << key.second;
    }
    auto store = OpenStore(Root());
    ASSERT_TRUE(store);
    auto owed = store->ListJournal();
    ASSERT_TRUE(owed.ok());
    EXPECT_TRUE(owed->empty()) << owed->size() << " entries still owed";
    for (int p = 0; p < kPartitions; ++p) {
      auto offset = store->GetOffset(kTopic, p);
      ASSERT_TRUE(offset.ok());
      EXPECT_EQ(offset->value_or(-1), static_cast<int64_t>(topic[p].size())) << "partition " << p;
    }
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
  es.fail_next = 2;
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
        if (point == "mid_delivery") es.kill_mid_delivery = hit;
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
                  if (point == "mid_delivery") es.kill_mid_delivery = 1;
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
        const JournalEntry entry = owed.front()->entry;
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
      for (const auto& o : fenced) ASSERT_TRUE(store->DeleteJournal(o.entry.seq).ok());
      EXPECT_FALSE(owed.Delivered(fenced.front().entry.seq)) << "a fenced entry was delivered";
      handover = owed.Handover({});
      auto journal = store->ListJournal();
      ASSERT_TRUE(journal.ok());
      EXPECT_TRUE(journal->empty());
      ASSERT_TRUE(store->Close().ok());
    }
    EXPECT_EQ(es.deliveries, static_cast<int>(delivered)) << "fenced entries were sent";
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
