// In-memory implementations of the transform seams (core/es_transform.h) for the wide-table tests
// and micro benchmarks: a state store held in maps, a dimension source held in a map, and a
// driver that runs batches as the daemon does (state writes kept only when the batch succeeds,
// bulk bodies applied to an "index" in order).
//
// MemoryBatch applies the checks the RocksDB store applies (valid day, partition >= 0, non-empty
// ids without NUL), so a transform that passes here does not trip the real store.
#ifndef RTDW_TESTS_WIDE_MEMORY_STATE_H_
#define RTDW_TESTS_WIDE_MEMORY_STATE_H_

#include <algorithm>
#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "core/es_transform.h"
#include "core/journal_entry.h"

namespace rtdw::testing {

// Committed state of one job.
struct MemoryStore {
  absl::flat_hash_map<std::string, DedupValue> dedup;  // key: day|partition|mid
  // (partition, order id, side, row id) -> row: ordered, so one order's rows are adjacent.
  using JoinKey = std::tuple<int32_t, std::string, char, std::string>;
  std::map<JoinKey, JoinRow> join;
  // (partition, event ms, row key): the rows of a partition oldest first, kept in step with
  // `join` (as the RocksDB store's time index).
  std::set<std::tuple<int32_t, int64_t, JoinKey>> join_time;
  std::map<int32_t, int64_t> watermarks;
  std::map<std::pair<std::string, int32_t>, int64_t> input_watermarks;  // (topic, partition)
  std::vector<std::string> dead_letters;
};

// A batch's view and writes, applied in place to `*store` (copy the store first to be able to
// discard the batch, as RunBatch does).
class MemoryBatch : public BatchState {
 public:
  explicit MemoryBatch(MemoryStore* store) : s_(store) {}

  absl::StatusOr<std::optional<DedupValue>> DedupLookup(DayNumber day, int32_t partition,
                                                        std::string_view mid) const override {
    if (auto st = Check(day, partition, mid); !st.ok()) return st;
    auto it = s_->dedup.find(DedupKey(day, partition, mid));
    if (it == s_->dedup.end()) return std::optional<DedupValue>();
    return std::optional<DedupValue>(it->second);
  }
  absl::Status PutDedup(DayNumber day, int32_t partition, std::string_view mid,
                        const DedupValue& value) override {
    if (auto st = Check(day, partition, mid); !st.ok()) return st;
    s_->dedup[DedupKey(day, partition, mid)] = value;
    return absl::OkStatus();
  }
  absl::Status PutJoinRow(const JoinRow& row) override {
    if (auto st = CheckJoin(row.partition, row.order_id, row.row_id); !st.ok()) return st;
    MemoryStore::JoinKey key{row.partition, row.order_id, static_cast<char>(row.side), row.row_id};
    auto [it, inserted] = s_->join.try_emplace(key, row);
    if (!inserted) {
      s_->join_time.erase({row.partition, it->second.event_ms, key});
      it->second = row;
    }
    s_->join_time.insert({row.partition, row.event_ms, std::move(key)});
    return absl::OkStatus();
  }
  absl::Status DeleteJoinRow(int32_t partition, std::string_view order_id, JoinSide side,
                             std::string_view row_id) override {
    if (auto st = CheckJoin(partition, order_id, row_id); !st.ok()) return st;
    MemoryStore::JoinKey key{partition, std::string(order_id), static_cast<char>(side),
                             std::string(row_id)};
    auto it = s_->join.find(key);
    if (it != s_->join.end()) {
      s_->join_time.erase({partition, it->second.event_ms, key});
      s_->join.erase(it);
    }
    return absl::OkStatus();
  }
  absl::StatusOr<std::vector<JoinRow>> JoinLookup(
      int32_t partition, std::string_view order_id,
      std::optional<JoinSide> side = std::nullopt) const override {
    if (auto st = CheckJoin(partition, order_id, "x"); !st.ok()) return st;
    std::vector<JoinRow> rows;
    auto it = s_->join.lower_bound({partition, std::string(order_id), '\0', std::string()});
    for (; it != s_->join.end() && std::get<0>(it->first) == partition &&
           std::get<1>(it->first) == order_id;
         ++it) {
      if (!side || it->second.side == *side) rows.push_back(it->second);
    }
    return rows;
  }
  absl::StatusOr<std::vector<JoinRow>> ExpireJoinRows(int32_t partition, int64_t cutoff_ms,
                                                      size_t limit) override {
    std::vector<JoinRow> rows;
    auto it = s_->join_time.lower_bound(
        {partition, std::numeric_limits<int64_t>::min(), MemoryStore::JoinKey()});
    while (it != s_->join_time.end() && std::get<0>(*it) == partition &&
           std::get<1>(*it) < cutoff_ms && rows.size() < limit) {
      auto row = s_->join.find(std::get<2>(*it));
      rows.push_back(std::move(row->second));
      s_->join.erase(row);
      it = s_->join_time.erase(it);
    }
    ++expire_calls;
    return rows;
  }
  void AddDeadLetter(std::string json_line) override {
    s_->dead_letters.push_back(std::move(json_line));
  }
  absl::StatusOr<std::optional<int64_t>> GetWatermark(int32_t partition) const override {
    auto it = s_->watermarks.find(partition);
    if (it == s_->watermarks.end()) return std::optional<int64_t>();
    return std::optional<int64_t>(it->second);
  }
  absl::Status SetWatermark(int32_t partition, int64_t event_ms) override {
    s_->watermarks[partition] = event_ms;
    return absl::OkStatus();
  }
  absl::StatusOr<std::optional<int64_t>> GetInputWatermark(std::string_view topic,
                                                           int32_t partition) const override {
    auto it = s_->input_watermarks.find({std::string(topic), partition});
    if (it == s_->input_watermarks.end()) return std::optional<int64_t>();
    return std::optional<int64_t>(it->second);
  }
  absl::Status SetInputWatermark(std::string_view topic, int32_t partition,
                                 int64_t event_ms) override {
    s_->input_watermarks[{std::string(topic), partition}] = event_ms;
    return absl::OkStatus();
  }

  int expire_calls = 0;

 private:
  static std::string DedupKey(DayNumber day, int32_t partition, std::string_view mid) {
    std::string k;
    k.reserve(mid.size() + 24);
    absl::StrAppend(&k, day, "|", partition, "|");
    k.append(mid.data(), mid.size());
    return k;
  }
  static absl::Status Check(DayNumber day, int32_t partition, std::string_view mid) {
    if (!ValidDay(day)) return absl::InvalidArgumentError(absl::StrCat("bad day ", day));
    if (partition < 0) return absl::InvalidArgumentError("negative partition");
    if (mid.empty() || mid.find('\0') != std::string_view::npos) {
      return absl::InvalidArgumentError("bad mid");
    }
    return absl::OkStatus();
  }
  static absl::Status CheckJoin(int32_t partition, std::string_view order_id,
                                std::string_view row_id) {
    if (partition < 0) return absl::InvalidArgumentError("negative partition");
    for (std::string_view id : {order_id, row_id}) {
      if (id.empty() || id.find('\0') != std::string_view::npos) {
        return absl::InvalidArgumentError("bad id");
      }
    }
    return absl::OkStatus();
  }

  MemoryStore* s_;
};

// Dimension rows by key. Counts its calls; can be told to fail.
class MapDimensionSource : public DimensionSource {
 public:
  absl::StatusOr<std::vector<std::optional<std::string>>> Get(
      const std::vector<std::string>& keys) override {
    ++calls;
    requests.push_back(keys);
    if (fail) return absl::UnavailableError("redis is down");
    std::vector<std::optional<std::string>> out;
    out.reserve(keys.size());
    for (const auto& k : keys) {
      auto it = rows.find(k);
      out.push_back(it == rows.end() ? std::nullopt : std::optional<std::string>(it->second));
    }
    return out;
  }

  std::map<std::string, std::string> rows;
  int calls = 0;
  bool fail = false;
  std::vector<std::vector<std::string>> requests;
};

// What ES holds after the bulk bodies so far: (index, id) -> source line.
using DocMap = std::map<std::pair<std::string, std::string>, std::string>;

// Applies a bulk body of index actions to `docs`. Fails on anything but index actions and on an
// (index, id) that appears twice in one body.
inline absl::Status ApplyBulk(std::string_view body, DocMap* docs) {
  auto actions = ParseJournalActions(body);
  if (!actions.ok()) return actions.status();
  std::vector<std::string_view> sources;
  size_t pos = 0;
  bool source = false;
  while (pos < body.size()) {
    size_t nl = body.find('\n', pos);
    if (nl == std::string_view::npos) nl = body.size();
    if (source) sources.push_back(body.substr(pos, nl - pos));
    source = !source;
    pos = nl + 1;
  }
  if (sources.size() != actions->size()) return absl::InternalError("action/source mismatch");
  std::map<std::pair<std::string, std::string>, int> seen;
  for (size_t i = 0; i < actions->size(); ++i) {
    const JournalAction& a = (*actions)[i];
    if (a.op != "index") return absl::InternalError("not an index action: " + a.op);
    if (++seen[{a.index, a.id}] > 1) {
      return absl::InternalError("two actions for " + a.index + "/" + a.id + " in one bulk");
    }
    (*docs)[{a.index, a.id}] = std::string(sources[i]);
  }
  return absl::OkStatus();
}

// Runs one batch as the driver does: on OK the state and the docs take its writes, on an error
// neither changes.
inline absl::Status RunBatch(EsTransform& t, std::span<const InputRecord> records, int64_t now_ms,
                             DimensionSource* dims, MemoryStore* store, DocMap* docs,
                             BulkOutput* out_copy = nullptr) {
  MemoryStore work = *store;
  MemoryBatch batch(&work);
  BulkOutput out;
  absl::Status st = t.ProcessBatch(records, now_ms, dims, &batch, &out);
  if (!st.ok()) return st;
  if (auto a = ApplyBulk(out.body, docs); !a.ok()) return a;
  *store = std::move(work);
  if (out_copy != nullptr) *out_copy = out;
  return absl::OkStatus();
}

}  // namespace rtdw::testing

#endif  // RTDW_TESTS_WIDE_MEMORY_STATE_H_
