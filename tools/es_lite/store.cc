#include "tools/es_lite/store.h"

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <random>
#include <set>
#include <unordered_map>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "rocksdb/filter_policy.h"
#include "rocksdb/table.h"
#include "rocksdb/write_batch.h"

namespace rtdw::eslite {

struct Store::IndexState {
  std::string name;
  std::string uuid;
  int64_t creation_date = 0;
  std::shared_ptr<const Mapping> mapping;
  std::shared_ptr<const IndexSettings> settings;
  uint64_t docs = 0;
  uint64_t bytes = 0;
  uint64_t next_seq = 0;
  // Refresh: write_gen counts the Write() calls that touched the index; the refreshed view holds
  // everything up to view_gen.
  uint64_t write_gen = 0;
  uint64_t view_gen = 0;
  std::shared_ptr<const rocksdb::Snapshot> view;  // null: nothing refreshed (empty to searches)
  uint64_t view_docs = 0;
  uint64_t view_bytes = 0;
  std::chrono::steady_clock::time_point next_refresh;  // of the schedule (refresh_interval > 0)
};

namespace {

using SteadyClock = std::chrono::steady_clock;

constexpr char kDocPrefix = 'D';
constexpr char kLiveTag = 1;
constexpr char kTombstoneTag = 2;
constexpr char kIndexPrefix = 'I';
constexpr char kTemplatePrefix = 'T';
constexpr char kSeqPrefix = 'S';
const char* const kClusterUuidKey = "Mcluster_uuid";

std::string DocKey(absl::string_view index, absl::string_view id) {
  std::string k;
  k.reserve(index.size() + id.size() + 2);
  k.push_back(kDocPrefix);
  k.append(index.data(), index.size());
  k.push_back('\0');
  k.append(id.data(), id.size());
  return k;
}

void EncodeFixed64(uint64_t v, char* dst) {
  for (int i = 0; i < 8; ++i) dst[i] = static_cast<char>((v >> (8 * i)) & 0xff);
}

void PutFixed64(std::string* out, uint64_t v) {
  char buf[8];
  EncodeFixed64(v, buf);
  out->append(buf, sizeof buf);
}

uint64_t GetFixed64(const char* p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i)
    v |= static_cast<uint64_t>(static_cast<unsigned char>(p[i])) << (8 * i);
  return v;
}

// The [u8 1][u64 version][u64 seq_no] head of a stored document; the source follows it.
constexpr size_t kDocHeadSize = 17;

void EncodeDocHead(uint64_t version, uint64_t seq, char* head) {
  head[0] = kLiveTag;
  EncodeFixed64(version, head + 1);
  EncodeFixed64(seq, head + 9);
}

// A stored document's head (false for anything else: a tombstone, a short value).
bool DecodeDocHead(absl::string_view v, uint64_t* version, uint64_t* seq) {
  if (v.size() < kDocHeadSize || v[0] != kLiveTag) return false;
  *version = GetFixed64(v.data() + 1);
  *seq = GetFixed64(v.data() + 9);
  return true;
}

bool DecodeDoc(absl::string_view v, DocRecord* out) {
  if (!DecodeDocHead(v, &out->version, &out->seq_no)) return false;
  out->source.assign(v.data() + kDocHeadSize, v.size() - kDocHeadSize);
  return true;
}

// A delete tombstone: the version a deleted document had, kept for index.gc_deletes so that
// versioning continues from it (ES's LiveVersionMap / version map tombstones).
std::string EncodeTombstone(uint64_t version, uint64_t seq, int64_t deleted_at_ms) {
  std::string v;
  v.push_back(kTombstoneTag);
  PutFixed64(&v, version);
  PutFixed64(&v, seq);
  PutFixed64(&v, static_cast<uint64_t>(deleted_at_ms));
  return v;
}

// What a write finds under its key: a live document, a tombstone, or nothing. `source` (live
// only) points into the value it was decoded from, which must outlive it.
struct Current {
  bool live = false;
  bool tombstone = false;  // a delete within gc_deletes
  uint64_t version = 0;    // live: the document's; tombstone: the deleted one's
  uint64_t seq_no = 0;
  absl::string_view source;
  bool found() const { return live || tombstone; }
};

// `head` is the stored value, or (a document written earlier in the same Write()) its head, whose
// source is then `source`.
Current DecodeCurrent(absl::string_view head, absl::string_view source, int64_t now_ms,
                      int64_t gc_deletes_ms) {
  Current c;
  if (DecodeDocHead(head, &c.version, &c.seq_no)) {
    c.live = true;
    c.source = head.size() > kDocHeadSize ? head.substr(kDocHeadSize) : source;
  } else if (head.size() == 25 && head[0] == kTombstoneTag) {
    int64_t at = static_cast<int64_t>(GetFixed64(head.data() + 17));
    if (now_ms - at <= gc_deletes_ms) {
      c.tombstone = true;
      c.version = GetFixed64(head.data() + 1);
      c.seq_no = GetFixed64(head.data() + 9);
    }
  }
  return c;
}

std::string SeqValue(uint64_t seq) {
  std::string v;
  PutFixed64(&v, seq);
  return v;
}

std::string RandomToken(size_t n) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  thread_local std::mt19937_64 rng(
      std::random_device{}() ^
      static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count()));
  std::string s;
  for (size_t i = 0; i < n; ++i) s.push_back(kAlphabet[rng() % 64]);
  return s;
}

int64_t NowMillis() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

void FlattenSettings(const rapidjson::Value& v, const std::string& prefix,
                     std::vector<std::pair<std::string, const rapidjson::Value*>>* out) {
  for (auto it = v.MemberBegin(); it != v.MemberEnd(); ++it) {
    std::string key =
        prefix.empty() ? std::string(Sv(it->name)) : absl::StrCat(prefix, ".", Sv(it->name));
    if (it->value.IsObject()) {
      FlattenSettings(it->value, key, out);
    } else {
      out->emplace_back(key, &it->value);
    }
  }
}

// ES's VersionConflictEngineException: "[<id>]: version conflict, <explanation>".
EsError VersionConflict(absl::string_view id, absl::string_view explanation,
                        absl::string_view index, absl::string_view uuid) {
  EsError e;
  e.status = 409;
  e.type = "version_conflict_engine_exception";
  e.reason = absl::StrCat("[", id, "]: version conflict, ", explanation);
  e.extra = {{"index_uuid", std::string(uuid)}, {"shard", "0"}, {"index", std::string(index)}};
  return e;
}

// ES's VersionType.isVersionConflictForWrites + explainConflictForWrites for the external types:
// the explanation of a conflict, or "" when the write may proceed.
std::string ExternalConflict(VersionType type, const Current& cur, int64_t expected) {
  if (!cur.found()) return "";
  const uint64_t current = cur.version;
  const auto want = static_cast<uint64_t>(expected);
  if (type == VersionType::kExternal && current >= want) {
    return absl::StrCat("current version [", current, "] is higher or equal to the one provided [",
                        want, "]");
  }
  if (type == VersionType::kExternalGte && current > want) {
    return absl::StrCat("current version [", current, "] is higher than the one provided [", want,
                        "]");
  }
  return "";
}

// The write blocks of an index that refuse an operation: ES's ClusterBlockException text.
std::optional<EsError> WriteBlock(const IndexSettings& s, absl::string_view index, bool is_delete) {
  std::vector<std::string> blocks;
  int status = 403;
  if (s.block_read_only) blocks.push_back("FORBIDDEN/5/index read-only (api)");
  if (s.block_write) blocks.push_back("FORBIDDEN/8/index write (api)");
  if (s.block_read_only_allow_delete && !is_delete) {
    // ES 8 answers the flood-stage block with 429 (7.x: FORBIDDEN/12, 403).
    blocks.push_back(
        "TOO_MANY_REQUESTS/12/disk usage exceeded flood-stage watermark, index has "
        "read-only-allow-delete block");
    if (blocks.size() == 1) status = 429;
  }
  if (blocks.empty()) return std::nullopt;
  EsError e;
  e.status = status;
  e.type = "cluster_block_exception";
  e.reason = absl::StrCat("index [", index, "] blocked by: [", absl::StrJoin(blocks, ", "), "];");
  return e;
}

// ES's TimeValue.parseTimeValue for a setting: -1, 0, or a number with a unit.
std::optional<EsError> ParseTimeSetting(const std::string& key, const std::string& text,
                                        int64_t* ms) {
  if (text == "-1") {
    *ms = -1;
    return std::nullopt;
  }
  if (text == "0") {
    *ms = 0;
    return std::nullopt;
  }
  static const std::pair<absl::string_view, double> kUnits[] = {
      {"nanos", 1e-6}, {"micros", 1e-3}, {"ms", 1},      {"s", 1000},
      {"m", 60000},    {"h", 3600000},   {"d", 86400000}};
  std::string lower = absl::AsciiStrToLower(absl::StripAsciiWhitespace(text));
  for (const auto& [unit, factor] : kUnits) {
    if (!absl::EndsWith(lower, unit)) continue;
    std::string num = lower.substr(0, lower.size() - unit.size());
    // "ms" also ends with "s", "nanos" with "s": the first match in this order is the right one
    // except for "s" after "m"/"o"; check the number parses.
    int64_t n = 0;
    if (!absl::SimpleAtoi(num, &n)) continue;
    if (n < 0) {
      return IllegalArgument(absl::StrCat("failed to parse value [", text, "] for setting [", key,
                                          "], must be >= [-1]"));
    }
    *ms = static_cast<int64_t>(static_cast<double>(n) * factor);
    return std::nullopt;
  }
  return IllegalArgument(absl::StrCat("failed to parse setting [", key, "] with value [", text,
                                      "] as a time value: unit is missing or unrecognized"));
}

EsError DocumentMissing(absl::string_view id, absl::string_view index, absl::string_view uuid) {
  EsError e;
  e.status = 404;
  e.type = "document_missing_exception";
  e.reason = absl::StrCat("[", id, "]: document missing");
  e.extra = {{"index_uuid", std::string(uuid)}, {"shard", "0"}, {"index", std::string(index)}};
  return e;
}

bool JsonEqual(const rapidjson::Value& a, const rapidjson::Value& b) { return a == b; }

}  // namespace

absl::string_view VersionTypeName(VersionType t) {
  switch (t) {
    case VersionType::kInternal:
      return "INTERNAL";
    case VersionType::kExternal:
      return "EXTERNAL";
    case VersionType::kExternalGte:
      return "EXTERNAL_GTE";
  }
  return "INTERNAL";
}

Result<VersionType> ParseVersionType(absl::string_view text) {
  if (text == "internal") return VersionType::kInternal;
  if (text == "external" || text == "external_gt") return VersionType::kExternal;
  if (text == "external_gte") return VersionType::kExternalGte;
  return IllegalArgument(absl::StrCat("No version type match [", text, "]"));
}

std::vector<std::string> ValidateVersioning(OpType type, std::optional<int64_t> version,
                                            VersionType version_type) {
  std::vector<std::string> out;
  if (type == OpType::kCreate) {
    if (version_type != VersionType::kInternal) {
      out.push_back("create operations only support internal versioning. use index instead");
    }
    if (version)
      out.push_back("create operations do not support explicit versions. use index instead");
    return out;
  }
  if (type == OpType::kUpdate) {
    if (version_type != VersionType::kInternal) {
      out.push_back(absl::StrCat("version type [",
                                 absl::AsciiStrToLower(VersionTypeName(version_type)),
                                 "] is not supported by the update API"));
    } else if (version) {
      out.push_back(
          "internal versioning can not be used for optimistic concurrency control. Please use "
          "`if_seq_no` and `if_primary_term` instead");
    }
    return out;
  }
  if (version_type != VersionType::kInternal) {
    if (!version || *version < 0) {
      // Without a version the request carries ES's MATCH_ANY (-3).
      out.push_back(absl::StrCat("illegal version value [", version ? *version : -3,
                                 "] for version type [", VersionTypeName(version_type), "]"));
    }
  } else if (version && *version != -3) {  // -3: ES's MATCH_ANY, the default
    if (*version < 0) {
      out.push_back(absl::StrCat("illegal version value [", *version, "] for version type [",
                                 VersionTypeName(version_type), "]"));
    } else {
      out.push_back(
          "internal versioning can not be used for optimistic concurrency control. Please use "
          "`if_seq_no` and `if_primary_term` instead");
    }
  }
  return out;
}

EsError ValidationFailed(const std::vector<std::string>& messages) {
  std::string reason = "Validation Failed: ";
  for (size_t i = 0; i < messages.size(); ++i)
    absl::StrAppend(&reason, i + 1, ": ", messages[i], ";");
  return BadRequest("action_request_validation_exception", reason);
}

absl::string_view OpName(OpType t) {
  switch (t) {
    case OpType::kIndex:
      return "index";
    case OpType::kCreate:
      return "create";
    case OpType::kDelete:
      return "delete";
    case OpType::kUpdate:
      return "update";
  }
  return "index";
}

bool GlobMatch(absl::string_view p, absl::string_view t) {
  // Iterative glob with backtracking on the last '*'.
  size_t pi = 0, ti = 0, star = absl::string_view::npos, mark = 0;
  while (ti < t.size()) {
    if (pi < p.size() && p[pi] == '*') {
      star = pi++;
      mark = ti;
    } else if (pi < p.size() && p[pi] == t[ti]) {
      ++pi;
      ++ti;
    } else if (star != absl::string_view::npos) {
      pi = star + 1;
      ti = ++mark;
    } else {
      return false;
    }
  }
  while (pi < p.size() && p[pi] == '*') ++pi;
  return pi == p.size();
}

std::optional<EsError> ParseIndexSettings(const rapidjson::Value& settings, IndexSettings* out) {
  if (settings.IsNull()) return std::nullopt;
  if (!settings.IsObject()) return IllegalArgument("settings must be an object");
  std::vector<std::pair<std::string, const rapidjson::Value*>> flat;
  FlattenSettings(settings, "", &flat);
  static const std::set<std::string> kAccepted = {"index.number_of_shards",
                                                  "index.number_of_replicas",
                                                  "index.refresh_interval",
                                                  "index.max_result_window",
                                                  "index.mapping.total_fields.limit",
                                                  "index.mapping.depth.limit",
                                                  "index.codec",
                                                  "index.translog.durability",
                                                  "index.lifecycle.name",
                                                  "index.lifecycle.rollover_alias",
                                                  "index.auto_expand_replicas",
                                                  "index.number_of_routing_shards",
                                                  "index.write.wait_for_active_shards",
                                                  "index.gc_deletes",
                                                  "index.blocks.write",
                                                  "index.blocks.read_only",
                                                  "index.blocks.read_only_allow_delete"};
  for (const auto& [raw_key, v] : flat) {
    std::string key = absl::StartsWith(raw_key, "index.") ? raw_key : "index." + raw_key;
    if (!kAccepted.count(key)) {
      return IllegalArgument(absl::StrCat(
          "unknown setting [", key,
          "] please check that any required plugins are installed, or check the breaking changes "
          "documentation for removed settings (or it is not supported by rtdw-es-lite)"));
    }
    if (v->IsObject() || v->IsArray()) {
      return IllegalArgument(absl::StrCat("setting [", key, "] must be a value"));
    }
    std::string text = v->IsNull() ? "" : ScalarText(*v);
    auto int_setting = [&](int min, int* target) -> std::optional<EsError> {
      int n = 0;
      if (!absl::SimpleAtoi(text, &n) || n < min) {
        return IllegalArgument(absl::StrCat("Failed to parse value [", text, "] for setting [", key,
                                            "] must be >= ", min));
      }
      *target = n;
      return std::nullopt;
    };
    if (key == "index.number_of_shards") {
      if (auto e = int_setting(1, &out->shards)) return e;
    } else if (key == "index.number_of_replicas") {
      if (auto e = int_setting(0, &out->replicas)) return e;
    } else if (key == "index.max_result_window") {
      if (auto e = int_setting(1, &out->max_result_window)) return e;
    } else if (key == "index.refresh_interval") {
      if (auto e = ParseTimeSetting(key, text, &out->refresh_interval_ms)) return e;
    } else if (key == "index.gc_deletes") {
      if (auto e = ParseTimeSetting(key, text, &out->gc_deletes_ms)) return e;
    } else if (absl::StartsWith(key, "index.blocks.")) {
      if (text != "true" && text != "false") {
        return IllegalArgument(absl::StrCat("Failed to parse value [", text,
                                            "] as only [true] or [false] are allowed."));
      }
      bool on = text == "true";
      if (key == "index.blocks.write") out->block_write = on;
      if (key == "index.blocks.read_only") out->block_read_only = on;
      if (key == "index.blocks.read_only_allow_delete") out->block_read_only_allow_delete = on;
    }
    out->values[key] = text;
  }
  out->values["index.number_of_shards"] = std::to_string(out->shards);
  out->values["index.number_of_replicas"] = std::to_string(out->replicas);
  return std::nullopt;
}

std::optional<EsError> Store::ValidateIndexName(absl::string_view name) {
  auto invalid = [&](std::string why) {
    EsError e = BadRequest("invalid_index_name_exception",
                           absl::StrCat("Invalid index name [", name, "], ", why));
    e.extra = {{"index_uuid", "_na_"}, {"index", std::string(name)}};
    return e;
  };
  if (name.empty()) return invalid("must not be empty");
  if (name == "." || name == "..") return invalid("must not be '.' or '..'");
  if (name.size() > 255)
    return invalid("index name is too long, (" + std::to_string(name.size()) + " > 255)");
  if (name[0] == '_' || name[0] == '-' || name[0] == '+') {
    return invalid("must not start with '_', '-', or '+'");
  }
  for (char c : name) {
    if (absl::ascii_isupper(static_cast<unsigned char>(c))) return invalid("must be lowercase");
    if (absl::string_view("\\/*?\"<>| ,#:").find(c) != absl::string_view::npos || c == '\0') {
      return invalid(
          "must not contain the following characters [ , \", *, \\, <, |, ,, >, /, ?, "
          "#, :]");
    }
  }
  return std::nullopt;
}

std::string Store::NewId() { return RandomToken(20); }

Result<std::unique_ptr<Store>> Store::Open(const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) {
    EsError e;
    e.status = 500;
    e.type = "io_exception";
    e.reason = absl::StrCat("cannot create data dir ", dir, ": ", ec.message());
    return e;
  }
  rocksdb::Options options;
  options.create_if_missing = true;
  options.max_open_files = 512;
  options.write_buffer_size = 32 << 20;
  options.IncreaseParallelism(2);
  // A whole-key Bloom filter in each memtable: Write() looks up every document's stored version,
  // and a new id (most of a bulk) is then refused by the filter instead of a skiplist search.
  options.memtable_whole_key_filtering = true;
  options.memtable_prefix_bloom_size_ratio = 0.02;
  rocksdb::BlockBasedTableOptions table;
  table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
  options.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
  rocksdb::DB* raw = nullptr;
  rocksdb::Status s = rocksdb::DB::Open(options, dir + "/rocksdb", &raw);
  if (!s.ok()) {
    EsError e;
    e.status = 500;
    e.type = "io_exception";
    e.reason = absl::StrCat("cannot open ", dir, "/rocksdb: ", s.ToString());
    return e;
  }
  std::unique_ptr<Store> store(new Store(std::unique_ptr<rocksdb::DB>(raw)));
  if (auto err = store->Load()) return *err;
  store->refresher_ = std::thread([s = store.get()] { s->RefreshLoop(); });
  return store;
}

void Store::StopWaiting() {
  {
    absl::MutexLock lock(&mu_);
    closing_ = true;
  }
  schedule_cv_.SignalAll();
  refreshed_cv_.SignalAll();
}

Store::~Store() {
  StopWaiting();
  if (refresher_.joinable()) refresher_.join();
  indices_.clear();  // releases the refreshed views (snapshots) before the database closes
  if (db_) {
    db_->FlushWAL(true);
    db_->Close();
  }
}

// ---------------------------------------------------------------- refresh

void Store::RefreshLocked(const std::vector<IndexState*>& states) {
  if (states.empty()) return;
  rocksdb::DB* db = db_.get();
  std::shared_ptr<const rocksdb::Snapshot> snap(
      db->GetSnapshot(), [db](const rocksdb::Snapshot* s) { db->ReleaseSnapshot(s); });
  for (IndexState* s : states) {
    s->view = snap;
    s->view_gen = s->write_gen;
    s->view_docs = s->docs;
    s->view_bytes = s->bytes;
  }
  refreshed_cv_.SignalAll();
}

void Store::Refresh(const std::vector<std::string>& names) {
  absl::MutexLock lock(&mu_);
  std::vector<IndexState*> states;
  for (const auto& n : names) {
    auto it = indices_.find(n);
    if (it != indices_.end()) states.push_back(it->second.get());
  }
  RefreshLocked(states);
}

void Store::WaitForRefresh(const std::vector<std::string>& names) {
  absl::MutexLock lock(&mu_);
  std::vector<std::pair<std::string, uint64_t>> want;
  for (const auto& n : names) {
    auto it = indices_.find(n);
    if (it != indices_.end()) want.emplace_back(n, it->second->write_gen);
  }
  auto done = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (closing_) return true;
    for (const auto& [n, gen] : want) {
      auto it = indices_.find(n);
      // A deleted (or deleted and re-created) index has nothing left to wait for.
      if (it != indices_.end() && it->second->view_gen < gen && it->second->write_gen >= gen) {
        return false;
      }
    }
    return true;
  };
  while (!done()) refreshed_cv_.Wait(&mu_);
}

void Store::RefreshLoop() {
  absl::MutexLock lock(&mu_);
  while (!closing_) {
    const auto now = SteadyClock::now();
    auto wake = now + std::chrono::milliseconds(200);
    std::vector<IndexState*> due;
    for (auto& [name, s] : indices_) {
      const int64_t interval = s->settings->refresh_interval_ms;
      if (interval <= 0) continue;
      if (s->next_refresh == SteadyClock::time_point()) {
        s->next_refresh = now + std::chrono::milliseconds(interval);
      }
      if (s->next_refresh <= now) {
        // ES schedules the next refresh one interval after this one.
        if (s->view_gen != s->write_gen || s->view == nullptr) due.push_back(s.get());
        s->next_refresh = now + std::chrono::milliseconds(interval);
      }
      wake = std::min(wake, s->next_refresh);
    }
    RefreshLocked(due);
    schedule_cv_.WaitWithTimeout(&mu_, absl::FromChrono(wake - SteadyClock::now()));
  }
}

rocksdb::Status Store::SyncWrite(rocksdb::WriteBatch* batch) {
  rocksdb::WriteOptions wo;
  wo.sync = true;
  return db_->Write(wo, batch);
}

std::optional<EsError> Store::Load() {
  auto fail = [](std::string why) {
    EsError e;
    e.status = 500;
    e.type = "io_exception";
    e.reason = std::move(why);
    return e;
  };
  absl::MutexLock lock(&mu_);  // not shared yet, but RefreshLocked and the maps expect it
  std::string uuid;
  if (db_->Get(rocksdb::ReadOptions(), kClusterUuidKey, &uuid).ok()) {
    cluster_uuid_ = uuid;
  } else {
    cluster_uuid_ = RandomToken(22);
    rocksdb::WriteBatch b;
    b.Put(kClusterUuidKey, cluster_uuid_);
    if (!SyncWrite(&b).ok()) return fail("cannot write cluster uuid");
  }
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions()));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    absl::string_view key(it->key().data(), it->key().size());
    absl::string_view val(it->value().data(), it->value().size());
    if (key.empty()) continue;
    if (key[0] == kIndexPrefix) {
      std::string name(key.substr(1));
      rapidjson::Document meta;
      if (ParseJson(val, &meta) || !meta.IsObject()) {
        return fail(absl::StrCat("corrupt metadata of index ", name));
      }
      auto state = std::make_shared<IndexState>();
      state->name = name;
      state->uuid = meta.HasMember("uuid") && meta["uuid"].IsString() ? meta["uuid"].GetString()
                                                                      : RandomToken(22);
      state->creation_date = meta.HasMember("creation_date") && meta["creation_date"].IsInt64()
                                 ? meta["creation_date"].GetInt64()
                                 : 0;
      auto settings = std::make_shared<IndexSettings>();
      if (meta.HasMember("settings")) {
        if (auto err = ParseIndexSettings(meta["settings"], settings.get())) return err;
      }
      state->settings = settings;
      if (meta.HasMember("mappings")) {
        auto m = Mapping::FromJson(meta["mappings"]);
        if (!m.ok())
          return fail(absl::StrCat("bad mapping of index ", name, ": ", m.error().reason));
        state->mapping = m.value();
      } else {
        state->mapping = Mapping::Empty();
      }
      indices_[name] = state;
    } else if (key[0] == kTemplatePrefix) {
      std::string name(key.substr(1));
      rapidjson::Document body;
      if (ParseJson(val, &body)) return fail(absl::StrCat("corrupt template ", name));
      auto t = std::make_shared<Template>();
      t->body = std::string(val);
      const auto& patterns = body["index_patterns"];
      if (patterns.IsString()) {
        t->patterns.emplace_back(Sv(patterns));
      } else if (patterns.IsArray()) {
        for (const auto& p : patterns.GetArray()) {
          if (p.IsString()) t->patterns.emplace_back(Sv(p));
        }
      }
      if (body.HasMember("priority") && body["priority"].IsInt64()) {
        t->priority = body["priority"].GetInt64();
      }
      t->settings.SetNull();
      t->mappings.SetNull();
      if (body.HasMember("template") && body["template"].IsObject()) {
        const auto& tpl = body["template"];
        if (tpl.HasMember("settings"))
          t->settings.CopyFrom(tpl["settings"], t->settings.GetAllocator());
        if (tpl.HasMember("mappings"))
          t->mappings.CopyFrom(tpl["mappings"], t->mappings.GetAllocator());
      }
      templates_[name] = t;
    }
  }
  // Sequence counters and document counts.
  for (it->Seek(std::string(1, kSeqPrefix)); it->Valid() && it->key()[0] == kSeqPrefix;
       it->Next()) {
    std::string name(it->key().data() + 1, it->key().size() - 1);
    auto found = indices_.find(name);
    if (found != indices_.end() && it->value().size() == 8) {
      found->second->next_seq = GetFixed64(it->value().data());
    }
  }
  for (it->Seek(std::string(1, kDocPrefix)); it->Valid() && it->key()[0] == kDocPrefix;
       it->Next()) {
    absl::string_view key(it->key().data() + 1, it->key().size() - 1);
    size_t nul = key.find('\0');
    if (nul == absl::string_view::npos) continue;
    auto found = indices_.find(std::string(key.substr(0, nul)));
    if (found == indices_.end()) continue;
    if (it->value().size() == 0 || it->value()[0] != kLiveTag) continue;  // a tombstone
    found->second->docs++;
    found->second->bytes += it->value().size() > 17 ? it->value().size() - 17 : 0;
  }
  if (!it->status().ok()) return fail(absl::StrCat("reading the store: ", it->status().ToString()));
  // After a restart everything on disk is searchable, as after ES's recovery.
  std::vector<IndexState*> all;
  for (auto& [name, s] : indices_) all.push_back(s.get());
  RefreshLocked(all);
  return std::nullopt;
}

// ---------------------------------------------------------------- indices

IndexInfo Store::InfoOf(const IndexState& s) const {
  return IndexInfo{s.name,     s.uuid,      s.creation_date, s.mapping,
                   s.settings, s.view_docs, s.view_bytes,    s.view};
}

std::vector<IndexInfo> Store::Indices() const {
  absl::MutexLock lock(&mu_);
  std::vector<IndexInfo> out;
  for (const auto& [name, s] : indices_) out.push_back(InfoOf(*s));
  return out;
}

std::optional<IndexInfo> Store::GetIndex(absl::string_view name) const {
  absl::MutexLock lock(&mu_);
  auto it = indices_.find(std::string(name));
  if (it == indices_.end()) return std::nullopt;
  return InfoOf(*it->second);
}

std::optional<EsError> Store::UpdateSettings(const std::vector<std::string>& names,
                                             const rapidjson::Value& body) {
  if (!body.IsObject()) return IllegalArgument("settings must be an object");
  std::vector<std::pair<std::string, const rapidjson::Value*>> flat;
  FlattenSettings(body, "", &flat);
  if (flat.empty()) {
    return BadRequest("action_request_validation_exception",
                      "Validation Failed: 1: no settings to update;");
  }
  bool only_blocks = true;
  for (auto& [key, v] : flat) {
    if (!absl::StartsWith(key, "index.")) key = "index." + key;
    if (!absl::StartsWith(key, "index.blocks.")) only_blocks = false;
  }
  absl::MutexLock lock(&mu_);
  std::vector<std::shared_ptr<IndexState>> updated;
  rocksdb::WriteBatch batch;
  for (const auto& name : names) {
    auto it = indices_.find(name);
    if (it == indices_.end()) return IndexNotFound(name);
    const IndexState& cur = *it->second;
    if (cur.settings->block_read_only && !only_blocks) {
      EsError e;
      e.status = 403;
      e.type = "cluster_block_exception";
      e.reason =
          absl::StrCat("index [", name, "] blocked by: [FORBIDDEN/5/index read-only (api)];");
      return e;
    }
    // The merged settings, re-parsed from scratch (null resets to the default).
    rapidjson::Document merged(rapidjson::kObjectType);
    auto& alloc = merged.GetAllocator();
    std::map<std::string, std::string> values = cur.settings->values;
    for (const auto& [key, v] : flat) {
      if (key == "index.number_of_shards" || key == "index.number_of_routing_shards") {
        return IllegalArgument(
            absl::StrCat("final ", name, " setting [", key, "], not updateable"));
      }
      if (key == "index.codec") {
        return IllegalArgument(absl::StrCat("Can't update non dynamic settings [[", key,
                                            "]] for open indices [[", name, "/", cur.uuid, "]]"));
      }
      if (v->IsNull()) {
        values.erase(key);
      } else if (v->IsObject() || v->IsArray()) {
        return IllegalArgument(absl::StrCat("setting [", key, "] must be a value"));
      } else {
        values[key] = ScalarText(*v);
      }
    }
    for (const auto& [k, v] : values) {
      merged.AddMember(rapidjson::Value(k.c_str(), alloc), rapidjson::Value(v.c_str(), alloc),
                       alloc);
    }
    auto settings = std::make_shared<IndexSettings>();
    if (auto e = ParseIndexSettings(merged, settings.get())) return e;
    auto next = std::make_shared<IndexState>(cur);
    if (settings->refresh_interval_ms != cur.settings->refresh_interval_ms) {
      next->next_refresh = SteadyClock::time_point();  // rescheduled from now
    }
    next->settings = settings;
    batch.Put(std::string(1, kIndexPrefix) + name, MetaJson(*next));
    updated.push_back(next);
  }
  rocksdb::Status st = SyncWrite(&batch);
  if (!st.ok()) return BadRequest("io_exception", st.ToString());
  for (auto& s : updated) indices_[s->name] = s;
  schedule_cv_.SignalAll();
  return std::nullopt;
}

Result<std::vector<IndexInfo>> Store::Resolve(absl::string_view expression,
                                              const ResolveOptions& options) const {
  std::vector<IndexInfo> all = Indices();
  std::set<std::string> chosen;
  std::vector<std::string> parts = absl::StrSplit(expression, ',', absl::SkipEmpty());
  if (parts.empty()) parts.push_back("_all");
  bool any_wildcard = false;
  for (size_t i = 0; i < parts.size(); ++i) {
    std::string part = parts[i];
    bool exclude = false;
    if (part[0] == '-' && i > 0) {
      exclude = true;
      part = part.substr(1);
    }
    if (part == "_all" || part.find('*') != std::string::npos) {
      any_wildcard = true;
      std::string pattern = part == "_all" ? "*" : part;
      for (const auto& idx : all) {
        // Like ES, wildcards do not expand to hidden (dot-prefixed) indices unless asked.
        if (GlobMatch(pattern, idx.name) && (idx.name[0] != '.' || pattern[0] == '.')) {
          if (exclude) {
            chosen.erase(idx.name);
          } else {
            chosen.insert(idx.name);
          }
        }
      }
      continue;
    }
    if (exclude) {
      chosen.erase(part);
      continue;
    }
    bool exists =
        std::any_of(all.begin(), all.end(), [&](const IndexInfo& x) { return x.name == part; });
    if (!exists) {
      if (options.ignore_unavailable) continue;
      return IndexNotFound(part);
    }
    chosen.insert(part);
  }
  if (chosen.empty() && !options.allow_no_indices && any_wildcard) {
    return IndexNotFound(expression);
  }
  std::vector<IndexInfo> out;
  for (const auto& idx : all) {
    if (chosen.count(idx.name)) out.push_back(idx);
  }
  return out;
}

Result<std::shared_ptr<Store::IndexState>> Store::MakeIndex(absl::string_view name,
                                                            const rapidjson::Value* body,
                                                            rocksdb::WriteBatch* batch) const {
  if (auto err = ValidateIndexName(name)) return *err;
  // The matching template with the highest priority (ties: the first by name).
  const Template* tpl = nullptr;
  for (const auto& [tname, t] : templates_) {
    bool match = std::any_of(t->patterns.begin(), t->patterns.end(),
                             [&](const std::string& p) { return GlobMatch(p, name); });
    if (match && (tpl == nullptr || t->priority > tpl->priority)) tpl = t.get();
  }
  rapidjson::Document settings(rapidjson::kObjectType);
  rapidjson::Document mappings(rapidjson::kObjectType);
  if (tpl != nullptr) {
    if (tpl->settings.IsObject()) settings.CopyFrom(tpl->settings, settings.GetAllocator());
    if (tpl->mappings.IsObject()) mappings.CopyFrom(tpl->mappings, mappings.GetAllocator());
  }
  if (body != nullptr && body->IsObject()) {
    for (auto it = body->MemberBegin(); it != body->MemberEnd(); ++it) {
      absl::string_view key = Sv(it->name);
      if (key == "settings") {
        if (!it->value.IsObject()) return IllegalArgument("settings must be an object");
        DeepMerge(settings, it->value, settings.GetAllocator());
      } else if (key == "mappings") {
        if (!it->value.IsObject()) {
          return BadRequest("mapper_parsing_exception", "mappings must be an object");
        }
        DeepMerge(mappings, it->value, mappings.GetAllocator());
      } else if (key == "aliases") {
        if (!it->value.IsObject() || !it->value.ObjectEmpty()) return Unsupported("aliases");
      } else {
        return ParsingException(absl::StrCat("unknown key [", key, "] for create index"));
      }
    }
  }
  auto state = std::make_shared<IndexState>();
  state->name = std::string(name);
  state->uuid = RandomToken(22);
  state->creation_date = NowMillis();
  auto s = std::make_shared<IndexSettings>();
  if (auto err = ParseIndexSettings(settings, s.get())) return *err;
  state->settings = s;
  if (s->refresh_interval_ms > 0) {
    state->next_refresh = SteadyClock::now() + std::chrono::milliseconds(s->refresh_interval_ms);
  }
  auto m = Mapping::FromJson(mappings);
  if (!m.ok()) return m.error();
  state->mapping = m.value();
  batch->Put(std::string(1, kIndexPrefix) + state->name, MetaJson(*state));
  batch->Put(std::string(1, kSeqPrefix) + state->name, SeqValue(0));
  return state;
}

std::string Store::MetaJson(const IndexState& s) const {
  rapidjson::StringBuffer buf;
  Writer w(buf);
  w.StartObject();
  WriteKey(w, "uuid");
  WriteStr(w, s.uuid);
  WriteKey(w, "creation_date");
  w.Int64(s.creation_date);
  WriteKey(w, "settings");
  w.StartObject();
  for (const auto& [k, v] : s.settings->values) {
    WriteKey(w, k);
    WriteStr(w, v);
  }
  w.EndObject();
  WriteKey(w, "mappings");
  s.mapping->json().Accept(w);
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize());
}

std::optional<EsError> Store::CreateIndex(absl::string_view name, const rapidjson::Value* body) {
  absl::MutexLock lock(&mu_);
  if (auto it = indices_.find(std::string(name)); it != indices_.end()) {
    EsError e =
        BadRequest("resource_already_exists_exception",
                   absl::StrCat("index [", name, "/", it->second->uuid, "] already exists"));
    e.extra = {{"index_uuid", it->second->uuid}, {"index", std::string(name)}};
    return e;
  }
  rocksdb::WriteBatch batch;
  auto state = MakeIndex(name, body, &batch);
  if (!state.ok()) return state.error();
  rocksdb::Status s = SyncWrite(&batch);
  if (!s.ok()) return BadRequest("io_exception", s.ToString());
  indices_[state.value()->name] = state.value();
  schedule_cv_.SignalAll();
  return std::nullopt;
}

std::optional<EsError> Store::DeleteIndices(const std::vector<std::string>& names) {
  absl::MutexLock lock(&mu_);
  rocksdb::WriteBatch batch;
  for (const auto& name : names) {
    if (!indices_.count(name)) return IndexNotFound(name);
    batch.DeleteRange(DocKey(name, ""), std::string(1, kDocPrefix) + name + '\1');
    batch.Delete(std::string(1, kIndexPrefix) + name);
    batch.Delete(std::string(1, kSeqPrefix) + name);
  }
  rocksdb::Status s = SyncWrite(&batch);
  if (!s.ok()) return BadRequest("io_exception", s.ToString());
  for (const auto& name : names) indices_.erase(name);
  refreshed_cv_.SignalAll();  // nothing left to wait for in them
  return std::nullopt;
}

// ---------------------------------------------------------------- templates

std::optional<EsError> Store::PutTemplate(absl::string_view name, const rapidjson::Value& body,
                                          bool create_only) {
  if (name.empty() || name != absl::AsciiStrToLower(name) ||
      name.find_first_of(" ,\"*\\<|>/?#") != absl::string_view::npos) {
    return BadRequest("invalid_index_template_exception",
                      absl::StrCat("index_template [", name,
                                   "] invalid, cause [name must be lower cased and must not "
                                   "contain spaces or special characters]"));
  }
  if (!body.IsObject()) return ParsingException("index template body must be an object");
  auto t = std::make_shared<Template>();
  t->settings.SetNull();
  t->mappings.SetNull();
  bool have_patterns = false;
  for (auto it = body.MemberBegin(); it != body.MemberEnd(); ++it) {
    absl::string_view key = Sv(it->name);
    const auto& v = it->value;
    if (key == "index_patterns") {
      if (v.IsString()) {
        t->patterns.emplace_back(Sv(v));
      } else if (v.IsArray()) {
        for (const auto& p : v.GetArray()) {
          if (!p.IsString()) return ParsingException("index_patterns must be strings");
          t->patterns.emplace_back(Sv(p));
        }
      } else {
        return ParsingException("index_patterns must be a string or an array");
      }
      have_patterns = !t->patterns.empty();
    } else if (key == "priority") {
      if (!v.IsInt64() || v.GetInt64() < 0) {
        return ParsingException("priority must be a non-negative integer");
      }
      t->priority = v.GetInt64();
    } else if (key == "version" || key == "_meta" || key == "allow_auto_create") {
      // kept in the stored body
    } else if (key == "composed_of") {
      if (!v.IsArray() || !v.Empty()) return Unsupported("composed_of (component templates)");
    } else if (key == "data_stream") {
      return Unsupported("data_stream");
    } else if (key == "template") {
      if (!v.IsObject()) return ParsingException("template must be an object");
      for (auto jt = v.MemberBegin(); jt != v.MemberEnd(); ++jt) {
        absl::string_view tk = Sv(jt->name);
        if (tk == "settings") {
          t->settings.CopyFrom(jt->value, t->settings.GetAllocator());
        } else if (tk == "mappings") {
          t->mappings.CopyFrom(jt->value, t->mappings.GetAllocator());
        } else if (tk == "aliases") {
          if (!jt->value.IsObject() || !jt->value.ObjectEmpty()) return Unsupported("aliases");
        } else {
          return ParsingException(absl::StrCat("[template] unknown field [", tk, "]"));
        }
      }
    } else {
      return ParsingException(absl::StrCat("[index_template] unknown field [", key, "]"));
    }
  }
  if (!have_patterns) {
    return BadRequest("action_request_validation_exception",
                      "Validation Failed: 1: index patterns are missing;");
  }
  // Validate what the template would give an index.
  IndexSettings settings;
  if (t->settings.IsObject()) {
    if (auto err = ParseIndexSettings(t->settings, &settings)) return err;
  } else if (!t->settings.IsNull()) {
    return IllegalArgument("template settings must be an object");
  }
  if (t->mappings.IsObject()) {
    auto m = Mapping::FromJson(t->mappings);
    if (!m.ok()) return m.error();
  } else if (!t->mappings.IsNull()) {
    return BadRequest("mapper_parsing_exception", "template mappings must be an object");
  }
  t->body = ToJson(body);
  absl::MutexLock lock(&mu_);
  if (create_only && templates_.count(std::string(name))) {
    return IllegalArgument(absl::StrCat("index template [", name, "] already exists"));
  }
  rocksdb::WriteBatch batch;
  batch.Put(std::string(1, kTemplatePrefix) + std::string(name), t->body);
  rocksdb::Status s = SyncWrite(&batch);
  if (!s.ok()) return BadRequest("io_exception", s.ToString());
  templates_[std::string(name)] = t;
  return std::nullopt;
}

bool Store::DeleteTemplate(absl::string_view name) {
  absl::MutexLock lock(&mu_);
  auto it = templates_.find(std::string(name));
  if (it == templates_.end()) return false;
  rocksdb::WriteBatch batch;
  batch.Delete(std::string(1, kTemplatePrefix) + std::string(name));
  if (!SyncWrite(&batch).ok()) return false;
  templates_.erase(it);
  return true;
}

std::vector<std::pair<std::string, std::string>> Store::Templates(absl::string_view pattern) const {
  absl::MutexLock lock(&mu_);
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& [name, t] : templates_) {
    bool match = pattern.empty();
    for (absl::string_view p : absl::StrSplit(pattern, ',', absl::SkipEmpty())) {
      if (GlobMatch(p, name)) match = true;
    }
    if (match) out.emplace_back(name, t->body);
  }
  return out;
}

// ---------------------------------------------------------------- documents

std::optional<DocRecord> Store::GetDoc(absl::string_view index, absl::string_view id) const {
  std::string value;
  rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), DocKey(index, id), &value);
  if (!s.ok()) return std::nullopt;
  DocRecord rec;
  if (!DecodeDoc(value, &rec)) return std::nullopt;
  return rec;
}

std::optional<DocRecord> Store::GetRefreshedDoc(const IndexInfo& index,
                                                absl::string_view id) const {
  if (index.view == nullptr) return std::nullopt;
  rocksdb::ReadOptions ro;
  ro.snapshot = index.view.get();
  std::string value;
  if (!db_->Get(ro, DocKey(index.name, id), &value).ok()) return std::nullopt;
  DocRecord rec;
  if (!DecodeDoc(value, &rec)) return std::nullopt;
  return rec;
}

void Store::Scan(const IndexInfo& info, absl::string_view from_id,
                 const std::function<bool(absl::string_view, const DocRecord&)>& fn) const {
  if (info.view == nullptr) return;  // never refreshed: empty to searches
  absl::string_view index = info.name;
  std::string upper = std::string(1, kDocPrefix) + std::string(index) + '\1';
  rocksdb::Slice upper_slice(upper);
  rocksdb::ReadOptions ro;
  ro.iterate_upper_bound = &upper_slice;
  ro.snapshot = info.view.get();
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro));
  std::string start = DocKey(index, from_id);
  const size_t prefix_len = index.size() + 2;
  DocRecord rec;
  for (it->Seek(start); it->Valid(); it->Next()) {
    absl::string_view key(it->key().data(), it->key().size());
    if (key.size() < prefix_len) continue;
    if (!DecodeDoc({it->value().data(), it->value().size()}, &rec)) continue;
    if (!fn(key.substr(prefix_len), rec)) break;
  }
}

Result<std::vector<WriteResult>> Store::Write(std::vector<WriteOp>& ops) {
  std::vector<WriteResult> results(ops.size());
  const int64_t now_ms = NowMillis();
  absl::MutexLock lock(&mu_);
  // Sized for every document at once (a batch grown by doubling copies itself at each step).
  size_t reserve = 0;
  for (const WriteOp& op : ops) reserve += op.source.size() + op.index.size() + op.id.size() + 64;
  rocksdb::WriteBatch batch(reserve);
  // Working copies of the touched indices; committed only after the synced write.
  std::map<std::string, std::shared_ptr<IndexState>> work;
  std::set<std::string> created;
  std::set<std::string> mapping_changed;
  // What this Write() has put under a key so far (later items are versioned against it): the
  // stored value's head (a document's, or a whole tombstone) and the document's source, which is
  // its op's `source` or, for an update, `owned`.
  struct Written {
    std::string head;
    absl::string_view source;
    std::string owned;
  };
  std::unordered_map<std::string, Written> overlay;
  rocksdb::PinnableSlice stored;  // the value current() last read from the database

  auto index_for = [&](const std::string& name)
                       ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) -> Result<IndexState*> {
    if (auto it = work.find(name); it != work.end()) return it->second.get();
    if (auto it = indices_.find(name); it != indices_.end()) {
      auto copy = std::make_shared<IndexState>(*it->second);
      work[name] = copy;
      return copy.get();
    }
    auto made = MakeIndex(name, nullptr, &batch);
    if (!made.ok()) return made.error();
    work[name] = made.value();
    created.insert(name);
    return made.value().get();
  };
  // Valid until the next call (it may point into `stored`) or the key's next overlay entry.
  auto current = [&](const std::string& key, const IndexState& idx) -> Current {
    const int64_t gc_deletes_ms = idx.settings->gc_deletes_ms;
    if (auto it = overlay.find(key); it != overlay.end()) {
      return DecodeCurrent(it->second.head, it->second.source, now_ms, gc_deletes_ms);
    }
    stored.Reset();
    if (!db_->Get(rocksdb::ReadOptions(), db_->DefaultColumnFamily(), key, &stored).ok()) {
      return Current();
    }
    return DecodeCurrent({stored.data(), stored.size()}, {}, now_ms, gc_deletes_ms);
  };

  for (size_t i = 0; i < ops.size(); ++i) {
    WriteOp& op = ops[i];
    WriteResult& r = results[i];
    r.index = op.index;
    r.id = op.id;
    auto fail = [&](EsError e) {
      r.status = e.status;
      r.error = std::move(e);
    };
    if (op.error) {
      fail(*op.error);
      continue;
    }
    auto idx_or = index_for(op.index);
    if (!idx_or.ok()) {
      fail(idx_or.error());
      continue;
    }
    IndexState* idx = idx_or.value();
    if (auto blocked = WriteBlock(*idx->settings, idx->name, op.type == OpType::kDelete)) {
      fail(*blocked);
      continue;
    }
    std::string key = DocKey(op.index, op.id);
    const Current cur = current(key, *idx);
    const bool external = op.version_type != VersionType::kInternal && op.version.has_value();
    if (external) {
      std::string why = ExternalConflict(op.version_type, cur, *op.version);
      if (!why.empty()) {
        fail(VersionConflict(op.id, why, op.index, idx->uuid));
        continue;
      }
    }
    // The version this write gives the document: the external one, or one past the current
    // (live or tombstone), as ES's InternalEngine does.
    const uint64_t next_version =
        external ? static_cast<uint64_t>(*op.version) : (cur.found() ? cur.version + 1 : 1);
    idx->write_gen++;

    // `owned`: the source is a text of Write()'s own (an update's), kept in the overlay.
    auto put_doc = [&](const rapidjson::Value& doc, absl::string_view source, std::string* owned,
                       uint64_t version) -> bool {
      auto checked = Mapping::CheckDocument(idx->mapping, doc, op.id);
      if (!checked.ok()) {
        fail(checked.error());
        return false;
      }
      if (checked.value() != idx->mapping) {
        idx->mapping = checked.value();
        mapping_changed.insert(idx->name);
      }
      const uint64_t seq = idx->next_seq++;
      char head[kDocHeadSize];
      EncodeDocHead(version, seq, head);
      const rocksdb::Slice key_part(key);
      const rocksdb::Slice value_parts[2] = {rocksdb::Slice(head, kDocHeadSize),
                                             rocksdb::Slice(source.data(), source.size())};
      batch.Put(rocksdb::SliceParts(&key_part, 1), rocksdb::SliceParts(value_parts, 2));
      if (cur.live) {
        idx->bytes -= std::min<uint64_t>(idx->bytes, cur.source.size());
      } else {
        idx->docs++;
      }
      idx->bytes += source.size();
      r.status = cur.live ? 200 : 201;
      r.result = cur.live ? "updated" : "created";
      r.version = version;
      r.seq_no = seq;
      Written& w = overlay[key];  // `cur` may point into it: not used below
      w.head.assign(head, kDocHeadSize);
      if (owned != nullptr) {
        w.owned = std::move(*owned);
        w.source = w.owned;
      } else {
        w.owned.clear();
        w.source = source;  // op.source: `ops` outlives the overlay
      }
      return true;
    };

    switch (op.type) {
      case OpType::kCreate:
        if (cur.live) {
          fail(VersionConflict(
              op.id, absl::StrCat("document already exists (current version [", cur.version, "])"),
              op.index, idx->uuid));
          break;
        }
        put_doc(*op.body, op.source, nullptr, next_version);
        break;
      case OpType::kIndex:
        put_doc(*op.body, op.source, nullptr, next_version);
        break;
      case OpType::kDelete: {
        // A delete leaves a tombstone with its version (also of a missing document), which
        // later writes are versioned against until index.gc_deletes passes.
        const uint64_t seq = idx->next_seq++;
        std::string value = EncodeTombstone(next_version, seq, now_ms);
        batch.Put(key, value);
        Written& w = overlay[key];
        w.head = std::move(value);
        w.source = {};
        w.owned.clear();
        r.version = next_version;
        r.seq_no = seq;
        if (!cur.live) {
          r.status = 404;
          r.result = "not_found";
          break;
        }
        idx->docs--;
        idx->bytes -= std::min<uint64_t>(idx->bytes, cur.source.size());
        r.status = 200;
        r.result = "deleted";
        break;
      }
      case OpType::kUpdate: {
        const rapidjson::Value& body = *op.body;
        const rapidjson::Value* doc = body.HasMember("doc") ? &body["doc"] : nullptr;
        bool doc_as_upsert = body.HasMember("doc_as_upsert") && body["doc_as_upsert"].IsBool() &&
                             body["doc_as_upsert"].GetBool();
        const rapidjson::Value* upsert = body.HasMember("upsert") ? &body["upsert"] : nullptr;
        if (!cur.live) {
          const rapidjson::Value* fresh = doc_as_upsert ? doc : upsert;
          if (fresh == nullptr) {
            fail(DocumentMissing(op.id, op.index, idx->uuid));
            break;
          }
          std::string text = ToJson(*fresh);
          put_doc(*fresh, text, &text, next_version);
          break;
        }
        rapidjson::Document merged;
        if (ParseJson(cur.source, &merged) || !merged.IsObject()) {
          fail(BadRequest("mapper_parsing_exception", "stored document is not an object"));
          break;
        }
        rapidjson::Document before;
        before.CopyFrom(merged, before.GetAllocator());
        DeepMerge(merged, *doc, merged.GetAllocator());
        if (JsonEqual(before, merged)) {
          r.status = 200;
          r.result = "noop";
          r.version = cur.version;
          r.seq_no = cur.seq_no;
          break;
        }
        std::string text = ToJson(merged);
        put_doc(merged, text, &text, next_version);
        break;
      }
    }
  }

  if (batch.Count() > 0) {
    for (const auto& [name, state] : work) {
      if (mapping_changed.count(name) && !created.count(name)) {
        batch.Put(std::string(1, kIndexPrefix) + name, MetaJson(*state));
      }
      if (created.count(name)) {
        // Metadata written by MakeIndex holds the template mapping; store the final one.
        batch.Put(std::string(1, kIndexPrefix) + name, MetaJson(*state));
      }
      batch.Put(std::string(1, kSeqPrefix) + name, SeqValue(state->next_seq));
    }
    rocksdb::Status s = SyncWrite(&batch);
    if (!s.ok()) {
      EsError e;
      e.status = 500;
      e.type = "io_exception";
      e.reason = absl::StrCat("write failed: ", s.ToString());
      return e;
    }
  }
  for (auto& [name, state] : work) indices_[name] = state;
  if (!created.empty()) schedule_cv_.SignalAll();
  return results;
}

}  // namespace rtdw::eslite
