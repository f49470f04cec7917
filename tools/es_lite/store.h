// The durable state of rtdw-es-lite, in one RocksDB database: indices (settings, mappings),
// index templates and documents.
//
// Promises:
// - Write() applies a batch of document operations with ES bulk semantics (versions, 409 on
//   create of an existing id, auto-creation of missing indices with the matching template,
//   mapping checks and dynamic mapping) and persists the whole batch in one synced RocksDB
//   WriteBatch before returning: an acknowledged write survives kill -9.
// - Index and template changes are synced too.
// - Refresh, as in ES: GetDoc() is real-time (the latest acknowledged write), while Scan() (search,
//   _count, aggregations) sees an index as of its last refresh. An index is refreshed every
//   index.refresh_interval (default 1s; -1 = never by itself) by a background thread, and by
//   Refresh(). A refreshed view is a RocksDB snapshot shared by the indices refreshed together:
//   a refresh copies nothing. Durability does not depend on refreshes.
// - Versions follow ES's rules (internal, external, external_gte), with delete tombstones kept for
//   index.gc_deletes (default 60s), so a stale external write after a delete still conflicts.
// - Write blocks (index.blocks.write / read_only / read_only_allow_delete) fail the item with
//   ES's cluster_block_exception; other items of the same Write() proceed.
// - Readers never block on a write in progress longer than the in-memory bookkeeping takes.
//
// Thread-safe: every public method may be called from any thread (the server's workers). One
// absl::Mutex guards the indices and templates and is held across synced writes; a background
// thread runs the scheduled refreshes.
//
// Key layout: "I"<index> -> index metadata JSON; "T"<name> -> template body JSON;
// "S"<index> -> next seq_no (8 bytes); "D"<index>\0<id> -> [u8 1][u64 version][u64 seq_no]<source>,
// or a delete tombstone [u8 2][u64 version][u64 seq_no][i64 deleted at, epoch ms].
#ifndef RTDW_TOOLS_ES_LITE_STORE_H_
#define RTDW_TOOLS_ES_LITE_STORE_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "rapidjson/document.h"
#include "rocksdb/db.h"
#include "tools/es_lite/json.h"
#include "tools/es_lite/mapping.h"

namespace rtdw::eslite {

struct IndexSettings {
  int shards = 1;
  int replicas = 1;
  int max_result_window = 10000;
  int64_t refresh_interval_ms = 1000;         // index.refresh_interval; -1 = no scheduled refresh
  int64_t gc_deletes_ms = 60000;              // index.gc_deletes: how long delete tombstones count
  bool block_write = false;                   // index.blocks.write
  bool block_read_only = false;               // index.blocks.read_only
  bool block_read_only_allow_delete = false;  // index.blocks.read_only_allow_delete
  std::map<std::string, std::string> values;  // "index.<name>" -> value as ES shows it
};

// An immutable view of one index, cheap to copy. `docs` and `bytes` are those of the refreshed
// view (what ES's index statistics show); `view` is that view (null: nothing refreshed yet, the
// index is empty to searches).
struct IndexInfo {
  std::string name;
  std::string uuid;
  int64_t creation_date = 0;
  std::shared_ptr<const Mapping> mapping;
  std::shared_ptr<const IndexSettings> settings;
  uint64_t docs = 0;
  uint64_t bytes = 0;
  std::shared_ptr<const rocksdb::Snapshot> view;
};

struct DocRecord {
  uint64_t version = 0;
  uint64_t seq_no = 0;
  std::string source;
};

enum class OpType { kIndex, kCreate, kDelete, kUpdate };
absl::string_view OpName(OpType t);

enum class VersionType { kInternal, kExternal, kExternalGte };
absl::string_view VersionTypeName(VersionType t);  // "INTERNAL", "EXTERNAL", "EXTERNAL_GTE"
// ES's VersionType.fromString: "internal", "external", "external_gt", "external_gte"; anything
// else (e.g. "force", gone since ES 7) is 400 illegal_argument_exception.
Result<VersionType> ParseVersionType(absl::string_view text);
// ES's request validation of version / version_type for a write (IndexRequest / DeleteRequest
// validate()): the messages of an action_request_validation_exception, empty when valid.
std::vector<std::string> ValidateVersioning(OpType type, std::optional<int64_t> version,
                                            VersionType version_type);
// "Validation Failed: 1: a;2: b;" as a 400 action_request_validation_exception.
EsError ValidationFailed(const std::vector<std::string>& messages);

// One document operation (a bulk item, or a single-document API call).
struct WriteOp {
  OpType type = OpType::kIndex;
  std::string index;
  std::string id;
  std::string source;                         // index/create: the document text as sent
  std::shared_ptr<rapidjson::Document> body;  // index/create: parsed source; update: the body
  std::optional<EsError> error;               // set before Write(): the item fails with it
  std::optional<int64_t> version;             // with version_type (validated beforehand)
  VersionType version_type = VersionType::kInternal;
};

struct WriteResult {
  int status = 200;
  std::optional<EsError> error;
  std::string result;  // created, updated, deleted, not_found, noop
  uint64_t version = 0;
  uint64_t seq_no = 0;
  std::string index;
  std::string id;
};

struct ResolveOptions {
  bool ignore_unavailable = false;  // a missing concrete name is skipped instead of a 404
  bool allow_no_indices = true;     // a wildcard matching nothing is fine
};

class Store {
 public:
  static Result<std::unique_ptr<Store>> Open(const std::string& dir);
  ~Store();

  const std::string& cluster_uuid() const { return cluster_uuid_; }

  // Indices.
  std::vector<IndexInfo> Indices() const;  // sorted by name
  std::optional<IndexInfo> GetIndex(absl::string_view name) const;
  // A comma list of names / wildcards / -exclusions / _all, sorted and de-duplicated.
  Result<std::vector<IndexInfo>> Resolve(absl::string_view expression,
                                         const ResolveOptions& options = {}) const;
  // PUT /<index> (body may be null). Templates apply as in ES.
  std::optional<EsError> CreateIndex(absl::string_view name, const rapidjson::Value* body);
  std::optional<EsError> DeleteIndices(const std::vector<std::string>& names);

  // Templates (composable, PUT /_index_template/<name>).
  std::optional<EsError> PutTemplate(absl::string_view name, const rapidjson::Value& body,
                                     bool create_only);
  bool DeleteTemplate(absl::string_view name);
  // Templates whose name matches `pattern` (wildcards; "" = all), sorted by name, as
  // (name, body JSON).
  std::vector<std::pair<std::string, std::string>> Templates(absl::string_view pattern) const;

  // PUT /<index>/_settings for the resolved `names`: `settings` as ParseIndexSettings takes it
  // (null values reset to the default). Only dynamic settings; a read-only index takes nothing
  // but index.blocks.* changes (403 cluster_block_exception, as in ES).
  std::optional<EsError> UpdateSettings(const std::vector<std::string>& names,
                                        const rapidjson::Value& settings);

  // Documents.
  Result<std::vector<WriteResult>> Write(std::vector<WriteOp>& ops);
  // Real-time: the latest acknowledged version.
  std::optional<DocRecord> GetDoc(absl::string_view index, absl::string_view id) const;
  // The document as of the index's last refresh (GET with realtime=false).
  std::optional<DocRecord> GetRefreshedDoc(const IndexInfo& index, absl::string_view id) const;
  // Calls fn(id, record) for the documents of `index` as of its last refresh (index.view), in id
  // (byte) order, starting at `from_id` (inclusive; "" = the first), until fn returns false.
  void Scan(const IndexInfo& index, absl::string_view from_id,
            const std::function<bool(absl::string_view id, const DocRecord& doc)>& fn) const;

  // Refresh: makes every acknowledged write to `names` visible to Scan().
  void Refresh(const std::vector<std::string>& names);
  // Blocks until every write to `names` acknowledged before the call is visible to Scan() (a
  // scheduled or explicit refresh), or the store is closing. `?refresh=wait_for`.
  void WaitForRefresh(const std::vector<std::string>& names);
  // Wakes every WaitForRefresh() and stops the scheduled refreshes, for shutdown: call it before
  // stopping the server, whose worker threads may be waiting (an index with refresh_interval -1
  // would otherwise hold them forever). Writes and explicit refreshes keep working.
  void StopWaiting();

  static std::optional<EsError> ValidateIndexName(absl::string_view name);
  static std::string NewId();

 private:
  struct IndexState;
  struct Template {
    std::string body;  // as stored
    std::vector<std::string> patterns;
    int64_t priority = 0;
    rapidjson::Document settings;  // template.settings (object or null)
    rapidjson::Document mappings;  // template.mappings (object or null)
  };
  explicit Store(std::unique_ptr<rocksdb::DB> db) : db_(std::move(db)) {}
  std::optional<EsError> Load();
  // Builds a new index (not yet registered) from templates + body; puts its metadata in *batch.
  Result<std::shared_ptr<IndexState>> MakeIndex(absl::string_view name,
                                                const rapidjson::Value* body,
                                                rocksdb::WriteBatch* batch) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  std::string MetaJson(const IndexState& s) const;
  rocksdb::Status SyncWrite(rocksdb::WriteBatch* batch);
  IndexInfo InfoOf(const IndexState& s) const;
  // Makes one snapshot the refreshed view of `states`.
  void RefreshLocked(const std::vector<IndexState*>& states) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void RefreshLoop();  // the scheduled refreshes

  std::unique_ptr<rocksdb::DB> db_;
  std::string cluster_uuid_;
  mutable absl::Mutex mu_;      // guards everything below; held across synced writes
  absl::CondVar refreshed_cv_;  // a refresh happened, or closing_
  absl::CondVar schedule_cv_;   // wakes the refresh thread (settings, closing_)
  bool closing_ ABSL_GUARDED_BY(mu_) = false;
  std::map<std::string, std::shared_ptr<IndexState>> indices_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, std::shared_ptr<Template>> templates_ ABSL_GUARDED_BY(mu_);
  std::thread refresher_;
};

// Glob with '*' (any run of characters, dots included).
bool GlobMatch(absl::string_view pattern, absl::string_view text);

// Normalises an ES settings object ({"index":{"number_of_shards":1}}, "index.x", "x") into
// *out; unknown settings are an error, as in ES.
std::optional<EsError> ParseIndexSettings(const rapidjson::Value& settings, IndexSettings* out);

}  // namespace rtdw::eslite

#endif  // RTDW_TOOLS_ES_LITE_STORE_H_
