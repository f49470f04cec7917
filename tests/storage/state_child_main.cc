// A child process for the state store's crash tests: it commits batches, replays the journal or
// holds the store, and is SIGKILLed (by itself at a named point, or by the parent at any instant).
//
//   rtdw-state-test-child commit ROOT JOB [KILL_AT POINT [DEDUP_PER_BATCH]]
//       Commits batches forever (batch i continues from the store's offsets), printing
//       "committed I JSEQ" after each. With KILL_AT > 0, SIGKILLs itself at batch KILL_AT, at
//       POINT: "before_commit" (batch built, not committed) or "after_commit" (committed, not
//       reported). DEDUP_PER_BATCH (default 10) makes batches bigger, so that a kill from outside
//       lands inside the write more often.
//   rtdw-state-test-child replay ROOT JOB LOG [KILL_AFTER]
//       Delivers every journal entry in seq order by appending "SEQ I" to LOG (fsynced), then
//       deletes it; with KILL_AFTER, SIGKILLs itself after that many deliveries, before the delete.
//   rtdw-state-test-child hold ROOT JOB
//       Opens the store for writing, prints "ready", and waits to be killed.
//   rtdw-state-test-child create ROOT JOB
//       Creates the stores JOB0, JOB1, ... one after another (open, close), printing "created K"
//       after each, until killed: a kill from outside almost always lands inside a creation.
//
// The batch i written by `commit` (see CheckBatchInvariants in state_store_test.cc):
//   offsets   T/p = 10*i + p for p in 0..3
//   dedup     day 20241125, partition i%4, mids "m<i>-<k>" k < DEDUP_PER_BATCH, value {i, k}
//   join      partition i%4, order "o<i>", detail rows "d<i>-<k>" k in 0..2, event_ms = 1000*i
//   journal   one entry, target "batch-<i>", body "{"i":<i>}\n" repeated, doc_count 1
//   deadletter one line {"job":"<job>","reason":"test","i":<i>}
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <string>

#include "absl/strings/str_cat.h"
#include "storage/state_store.h"

namespace {

using rtdw::StateStore;
using rtdw::StateStoreOptions;

[[noreturn]] void Die(const std::string& what) {
  std::fprintf(stderr, "child: %s\n", what.c_str());
  std::exit(3);
}

std::unique_ptr<StateStore> OpenStore(const std::string& root, const std::string& job) {
  StateStoreOptions o;
  o.root = root;
  o.job = job;
  o.block_cache_mb = 16;
  auto s = StateStore::Open(o);
  if (!s.ok()) Die(std::string(s.status().ToString()));
  return std::move(s).value();
}

int Commit(const std::string& root, const std::string& job, int64_t kill_at,
           const std::string& point, int dedup_per_batch) {
  auto store = OpenStore(root, job);
  auto off = store->GetOffset("T", 0);
  if (!off.ok()) Die(std::string(off.status().ToString()));
  int64_t i = off->has_value() ? **off / 10 + 1 : 1;
  for (;; ++i) {
    rtdw::PendingBatch b = store->NewBatch();
    for (int p = 0; p < 4; ++p) {
      if (!b.SetOffset("T", p, 10 * i + p).ok()) Die("SetOffset");
    }
    for (int k = 0; k < dedup_per_batch; ++k) {
      if (!b.PutDedup(20241125, static_cast<int32_t>(i % 4), absl::StrCat("m", i, "-", k),
                      rtdw::DedupValue{i, k})
               .ok()) {
        Die("PutDedup");
      }
    }
    for (int k = 0; k < 3; ++k) {
      rtdw::JoinRow row;
      row.partition = static_cast<int32_t>(i % 4);
      row.order_id = absl::StrCat("o", i);
      row.side = rtdw::JoinSide::kDetail;
      row.row_id = absl::StrCat("d", i, "-", k);
      row.event_ms = 1000 * i;
      row.row_json = absl::StrCat("{\"detail\":", k, "}");
      if (!b.PutJoinRow(row).ok()) Die("PutJoinRow");
    }
    rtdw::JournalEntry e;
    e.target = absl::StrCat("batch-", i);
    e.body = absl::StrCat("{\"index\":{\"_index\":\"x\",\"_id\":\"", i, "\"}}\n{\"i\":", i, "}\n");
    e.doc_count = 1;
    b.SetJournal(std::move(e));
    b.AddDeadLetter(absl::StrCat("{\"job\":\"", job, "\",\"reason\":\"test\",\"i\":", i, "}"));
    if (i == kill_at && point == "before_commit") raise(SIGKILL);
    auto r = store->Commit(std::move(b));
    if (!r.ok()) Die(std::string(r.status().ToString()));
    if (i == kill_at && point == "after_commit") raise(SIGKILL);
    std::printf("committed %lld %llu\n", static_cast<long long>(i),
                static_cast<unsigned long long>(*r->journal_seq));
    std::fflush(stdout);
  }
}

int Replay(const std::string& root, const std::string& job, const std::string& log,
           int64_t kill_after) {
  auto store = OpenStore(root, job);
  auto entries = store->ListJournal(true);
  if (!entries.ok()) Die(std::string(entries.status().ToString()));
  int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) Die("open log");
  int64_t delivered = 0;
  for (const auto& e : *entries) {
    std::string line = absl::StrCat(e.seq, " ", e.target, "\n");
    if (::write(fd, line.data(), line.size()) != static_cast<ssize_t>(line.size())) Die("write");
    ::fsync(fd);
    ++delivered;
    if (kill_after > 0 && delivered == kill_after) raise(SIGKILL);
    if (!store->DeleteJournal(e.seq).ok()) Die("DeleteJournal");
  }
  ::close(fd);
  return 0;
}

int Hold(const std::string& root, const std::string& job) {
  auto store = OpenStore(root, job);
  std::printf("ready\n");
  std::fflush(stdout);
  for (;;) ::pause();
}

int CreateMany(const std::string& root, const std::string& job) {
  for (int k = 0;; ++k) {
    auto store = OpenStore(root, absl::StrCat(job, k));
    if (!store->created()) Die(absl::StrCat(job, k, " was not created"));
    if (!store->Close().ok()) Die("Close");
    std::printf("created %d\n", k);
    std::fflush(stdout);
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 4) Die("usage: commit|replay|hold|create ROOT JOB ...");
  std::string mode = argv[1], root = argv[2], job = argv[3];
  if (mode == "commit") {
    return Commit(root, job, argc > 4 ? std::atoll(argv[4]) : -1, argc > 5 ? argv[5] : "",
                  argc > 6 ? std::atoi(argv[6]) : 10);
  }
  if (mode == "replay") {
    if (argc < 5) Die("replay needs LOG");
    return Replay(root, job, argv[4], argc > 5 ? std::atoll(argv[5]) : 0);
  }
  if (mode == "hold") return Hold(root, job);
  if (mode == "create") return CreateMany(root, job);
  Die("unknown mode " + mode);
}
