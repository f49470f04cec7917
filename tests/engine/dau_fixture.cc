#include "tests/engine/dau_fixture.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <random>
#include <thread>
#include <tuple>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"

namespace rtdw::engine_test {
namespace {

std::string IndexOf(int64_t ts) {
  return absl::StrCat(kPrefix,
                      absl::FormatTime("%Y-%m-%d", absl::FromUnixMillis(ts), absl::UTCTimeZone()));
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

}  // namespace

Topic MakeTopic(int per_partition, uint64_t seed) {
  std::mt19937_64 rng(seed);
  Topic topic(kPartitions);
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

std::vector<InputRecord> ReadBatch(const Topic& topic, const std::map<int32_t, int64_t>& from,
                                   size_t batch) {
  std::vector<InputRecord> records;
  for (int p = 0; p < kPartitions; ++p) {
    auto it = from.find(p);
    const size_t start = it == from.end() ? 0 : static_cast<size_t>(it->second);
    for (size_t i = start; i < topic[p].size() && i < start + batch; ++i) {
      const SourceRecord& r = topic[p][i];
      InputRecord in;
      in.topic = kTopic;
      in.partition = r.partition;
      in.offset = r.offset;
      in.key = r.mid;
      in.value = r.value;
      in.timestamp_ms = r.ts;
      records.push_back(in);
    }
  }
  return records;
}

bool ReadBatchAtStoredOffsets(const Topic& topic, StateStore& store, size_t batch,
                              std::vector<InputRecord>* out) {
  std::map<int32_t, int64_t> from;
  for (int p = 0; p < kPartitions; ++p) {
    auto stored = store.GetOffset(kTopic, p);
    if (!stored.ok()) return false;
    from[p] = stored->value_or(0);
  }
  *out = ReadBatch(topic, from, batch);
  return true;
}

std::map<DocKey, Doc> Truth(const Topic& topic) {
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

void ExpectTruth(const std::map<DocKey, Doc>& held, const Topic& topic) {
  const std::map<DocKey, Doc> truth = Truth(topic);
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
}

absl::StatusOr<DeliveryReport> FakeEs::Deliver(const JournalEntry& entry) {
  const std::atomic<bool>* abort;
  std::function<absl::Status(uint64_t)> before_request;
  {
    absl::MutexLock lock(&mu_);
    abort = abort_;
    before_request = before_request_;
  }
  auto outcome = [&](std::string what) {
    absl::MutexLock lock(&mu_);
    calls_.push_back(Call{entry.seq, std::move(what)});
  };
  if (before_request) {
    if (absl::Status st = before_request(entry.seq); !st.ok()) {
      outcome(absl::StrCat("refused by before_request: ", st.message()));
      return st;
    }
  }
  {
    absl::MutexLock lock(&mu_);
    auto failing = fail_seq_.find(entry.seq);
    if (fail_next_ > 0 || (failing != fail_seq_.end() && failing->second > 0)) {
      if (fail_next_ > 0) {
        --fail_next_;
      } else {
        --failing->second;
      }
      calls_.push_back(Call{entry.seq, "unavailable"});
      return absl::UnavailableError("fake ES: 503");
    }
  }
  // In flight: held until released, or aborted (nothing applied).
  while (true) {
    {
      absl::MutexLock lock(&mu_);
      if (held_.count(entry.seq) == 0) {
        holding_.reset();
        break;
      }
      holding_ = entry.seq;
    }
    if (abort != nullptr && abort->load()) {
      absl::MutexLock lock(&mu_);
      holding_.reset();
      calls_.push_back(Call{entry.seq, "aborted"});
      return absl::CancelledError("fake ES: request aborted");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  if (abort != nullptr && abort->load()) {
    outcome("aborted");
    return absl::CancelledError("fake ES: request aborted");
  }
  auto actions = ParseBulkBody(entry.body);
  if (!actions.ok()) return actions.status();
  absl::MutexLock lock(&mu_);
  ++deliveries_;
  applied_.push_back(entry.seq);
  DeliveryReport report;
  report.seq = entry.seq;
  report.docs = static_cast<uint32_t>(actions->size());
  std::ofstream log(log_path_, std::ios::app);
  for (size_t i = 0; i < actions->size(); ++i) {
    if (deliveries_ == kill_mid_delivery_ && i == actions->size() / 2) {
      log.close();
      raise(SIGKILL);
    }
    const BulkAction& a = (*actions)[i];
    EXPECT_EQ(a.version_type, "external_gte");
    if (refuse_ && refuse_(a)) {
      RejectedItem item;
      item.index = a.index;
      item.id = a.id;
      item.status = 400;
      item.error_type = "mapper_parsing_exception";
      item.error_reason = "fake ES refuses it";
      item.document = a.source;
      item.version = a.version;
      report.rejected.push_back(std::move(item));
      continue;
    }
    log << a.index << '\t' << a.id << '\t' << a.version << '\t' << a.source << '\n';
    log.flush();
    ++report.acknowledged;
  }
  calls_.push_back(Call{entry.seq, "ok"});
  return report;
}

std::map<DocKey, Doc> FakeEs::Load(const std::string& log_path, uint64_t* superseded) {
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

std::unique_ptr<StateStore> OpenStore(const std::string& root, const std::string& job) {
  StateStoreOptions o;
  o.root = root;
  o.job = job;
  o.block_cache_mb = 8;
  auto store = StateStore::Open(o);
  EXPECT_TRUE(store.ok()) << store.status();
  return store.ok() ? std::move(*store) : nullptr;
}

void ExpectDone(const Topic& topic, const std::string& root, const std::string& es_log) {
  ExpectTruth(FakeEs::Load(es_log, nullptr), topic);
  auto store = OpenStore(root);
  ASSERT_TRUE(store);
  auto owed = store->ListJournal();
  ASSERT_TRUE(owed.ok());
  EXPECT_TRUE(owed->empty()) << owed->size() << " entries still owed";
  for (int p = 0; p < kPartitions; ++p) {
    auto offset = store->GetOffset(kTopic, p);
    ASSERT_TRUE(offset.ok());
    EXPECT_EQ(offset->value_or(-1), static_cast<int64_t>(topic[p].size())) << "partition " << p;
  }
  ASSERT_TRUE(store->Close().ok());
}

std::unique_ptr<DauTransform> NewTransform() {
  DauOptions o;
  o.index_prefix = kPrefix;
  o.tz = absl::UTCTimeZone();
  o.retention_days = 3;
  return std::make_unique<DauTransform>(o);
}

}  // namespace rtdw::engine_test
