// The state store: one RocksDB database per job instance at `<state.dir>/<job>` with the column
// families `offsets`, `dedup`, `join`, `journal`, `deadletter` and `meta` (docs/DESIGN.md,
// "State"; key encodings in storage/state_keys.h and docs/STATE.md).
//
// Promises:
//  - Atomicity: everything a PendingBatch collects (offsets, de-dup and join mutations, at most
//    one journal entry, dead letters) is written by Commit() as ONE RocksDB WriteBatch, synced
//    unless StateStoreOptions::sync is false. After a crash at any instant the store holds the
//    whole batch or none of it.
//  - Sequence numbers: journal entries and dead letters share one counter. A seq is assigned at
//    commit time, under a lock, so journal seqs increase in commit order; the counter is stored
//    in `meta` in the same WriteBatch and never goes back, across restarts and crashes, even
//    when every entry has been deleted.
//  - Never empty by accident: a store that never existed (no directory, or an empty one) is
//    created when asked (created() says so, and the log callback is told); a store that exists
//    but cannot be opened — corrupt, locked by another process, foreign — is an error naming
//    the path and the RocksDB status, and no file of it is changed (only RocksDB's own info
//    LOG may be rotated by the attempt).
//  - `meta` guards: a store written by a newer schema is refused; a store of another job is
//    refused; a changed setting of the fingerprint (topics, partition counts, time zone, index
//    prefix, retention, join TTL) is refused, naming each, with the command that accepts it.
//  - Read-only opening (the CLI's reads) creates nothing and works while a daemon holds the store
//    (it reads the state as of the open).
//  - Memory is bounded: one LRU block cache (block_cache_mb) holds data, index and filter blocks,
//    and every memtable is charged to it through a WriteBufferManager.
//
// Thread safety: once Open() returned, every StateStore method but Close() may be called from
// several threads at once. RocksDB serializes the writes; seq_mu_ orders the seq-allocating ones
// (Commit and the other writes of journal entries or dead letters), so that seqs increase in
// write order. Reads see the latest committed state (no snapshot across calls). Close() and the
// destructor must not run concurrently with any other method. A PendingBatch is used by one thread
// at a time and must not outlive its store; its reads see committed state as of each read,
// overlaid with the batch's own writes. The clang build checks the locking
// (ABSL_GUARDED_BY below; scripts/test --thread-safety).
#ifndef RTDW_STORAGE_STATE_STORE_H_
#define RTDW_STORAGE_STATE_STORE_H_

#include <sys/types.h>

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "core/es_transform.h"  // BatchState
#include "core/journal_entry.h"
#include "core/records.h"
#include "storage/state_keys.h"

namespace rocksdb {
class DB;
class ColumnFamilyHandle;
class WriteBatch;
}  // namespace rocksdb

namespace rtdw {

// The layout version this binary writes. A store with a larger `meta` schema_version is refused.
inline constexpr int kStateSchemaVersion = 1;

inline constexpr std::string_view kCfOffsets = "offsets";
inline constexpr std::string_view kCfDedup = "dedup";
inline constexpr std::string_view kCfJoin = "join";
inline constexpr std::string_view kCfJournal = "journal";
inline constexpr std::string_view kCfDeadLetter = "deadletter";
inline constexpr std::string_view kCfMeta = "meta";
inline constexpr std::array<std::string_view, 6> kStateColumnFamilies = {
    kCfOffsets, kCfDedup, kCfJoin, kCfJournal, kCfDeadLetter, kCfMeta};

// `meta` names.
inline constexpr std::string_view kMetaSchemaVersion = "schema_version";  // decimal
inline constexpr std::string_view kMetaJob = "job";
inline constexpr std::string_view kMetaTopicFingerprint = "topic_fingerprint";
inline constexpr std::string_view kMetaCleanShutdown = "clean_shutdown";  // "true" | "false"
inline constexpr std::string_view kMetaLastCleanShutdownMs = "last_clean_shutdown_ms";
inline constexpr std::string_view kMetaLastOpenMs = "last_open_ms";
inline constexpr std::string_view kMetaCreatedMs = "created_ms";
inline constexpr std::string_view kMetaNextSeq = "next_seq";  // BE64

// A block cache (and the write-buffer manager charging memtables to it) that several stores of
// one process may share. Opaque: created by NewStateCache.
class StateCache;
std::shared_ptr<StateCache> NewStateCache(int64_t block_cache_mb);

struct StateStoreOptions {
  std::string root;  // state.dir
  std::string job;   // [A-Za-z0-9._-]+, not starting with '.'
  int64_t block_cache_mb = 256;
  std::shared_ptr<StateCache> cache;  // when set, used instead of a cache of block_cache_mb
  bool sync = true;                   // fsync every Commit() (and every seq-allocating write)
  // Commit() refuses (ResourceExhausted, nothing written) while the file system of the store has
  // less free space than this: the store stops growing before RocksDB meets a full disk, whose
  // recovery is its own and slow. 0: no floor.
  int64_t min_free_mb = 0;
  // What the job's state depends on (config.h StateFingerprint): "<tag> key=value key=value ...".
  // "" skips the check; a store without one records it. A key whose stored value differs is
  // refused (FailedPrecondition naming each such key, both values and the accepting command); a
  // key the store has not recorded yet (an older store) is added.
  std::string topic_fingerprint;
  bool create_if_missing = true;  // ignored when read_only
  bool read_only = false;
  // The daemon's open: clean_shutdown is set false on open and true by Close(). Off for the CLI,
  // so that an operator's command does not hide a crash of the daemon.
  bool track_shutdown = true;
  // Informational messages (store created, previous shutdown unclean, ...). May be empty.
  std::function<void(std::string_view)> log;
};

struct OffsetEntry {
  std::string topic;
  int32_t partition = 0;
  int64_t next_offset = 0;
};

struct DeadLetter {
  uint64_t seq = 0;
  std::string line;  // one JSON line (docs/FORMATS.md §7)
};

struct CommitResult {
  std::optional<uint64_t> journal_seq;     // set when the batch carried a journal entry
  // The batch's journal entry as committed (seq and created_ms set), moved out of the batch
  // rather than copied (its body is the bulk body of every document of the batch).
  std::optional<JournalEntry> journal;
  std::vector<uint64_t> dead_letter_seqs;  // in AddDeadLetter order
  uint64_t dead_letters_replaced = 0;      // kept letters of the same record / document
  uint64_t dead_letters_resolved = 0;      // kept letters of records read again and accepted
};

struct ColumnFamilyStats {
  std::string name;
  uint64_t keys = 0;  // exact when keys_exact, else RocksDB's estimate
  bool keys_exact = false;
  uint64_t sst_bytes = 0;       // total size of its SST files
  uint64_t memtable_bytes = 0;  // size of its memtables
};

struct StoreStats {
  std::vector<ColumnFamilyStats> column_families;  // in kStateColumnFamilies order
  uint64_t journal_backlog = 0;                    // exact
  uint64_t journal_bytes = 0;                      // bodies of the backlog
  uint64_t dead_letters = 0;                       // exact
  uint64_t join_rows = 0;                          // exact when exact counts were asked for
  uint64_t next_seq = 0;
};

struct BackupResult {
  std::string backup_dir;
  uint32_t backup_id = 0;
  int64_t timestamp = 0;  // epoch seconds
  uint64_t size_bytes = 0;
  uint32_t files = 0;
};

struct RestoreResult {
  std::string path;  // the restored store
  std::string backup_dir;
  uint32_t backup_id = 0;
  std::string previous_kept_at;  // where the replaced store was moved ("" when there was none)
};

class StateStore;

// The mutations of one batch transaction, plus reads that see them (the transforms' view:
// committed state overlaid with this batch's own writes). Create with StateStore::NewBatch().
class PendingBatch : public BatchState {
 public:
  PendingBatch(PendingBatch&&) noexcept;
  PendingBatch& operator=(PendingBatch&&) noexcept;
  ~PendingBatch() override;

  // Writes. Arguments are checked (partition >= 0, no 0x00 in topic / ids / mids).
  absl::Status SetOffset(std::string_view topic, int32_t partition, int64_t next_offset);
  // Forgets the partition's stored offset (the job then starts it at kafka.auto_offset_reset).
  absl::Status DeleteOffset(std::string_view topic, int32_t partition);
  absl::Status PutDedup(DayNumber day, int32_t partition, std::string_view mid,
                        const DedupValue& value) override;
  absl::Status DeleteDedup(DayNumber day, int32_t partition, std::string_view mid);
  // Puts (or replaces) a join row, keeping its event-time index entry in step.
  absl::Status PutJoinRow(const JoinRow& row) override;
  absl::Status DeleteJoinRow(int32_t partition, std::string_view order_id, JoinSide side,
                             std::string_view row_id) override;
  // The journal entry this batch owes (at most one: setting it again replaces it). Its seq is
  // assigned by Commit(); created_ms is set to the commit time when 0.
  void SetJournal(JournalEntry entry);
  // A dead-letter line, given a seq by Commit(). A kept letter of the same input record or ES
  // document (core/dead_letter.h DeadLetterIdentity) is replaced: deleted in the same write.
  void AddDeadLetter(std::string json_line) override;
  // The records at first_offset..last_offset of topic/partition are read (again) by this batch.
  // At commit, each kept dead letter of such a record that this batch does not dead-letter again
  // is resolved — deleted, in the same write that commits what the record became (its document
  // in the journal entry, its de-dup slot or join row).
  void ResolveDeadLetters(std::string_view topic, int32_t partition, int64_t first_offset,
                          int64_t last_offset);
  // The same for the offset range of each topic partition among `records`.
  void ResolveDeadLetters(std::span<const InputRecord> records);

  // Reads: committed state overlaid with this batch's writes.
  absl::StatusOr<std::optional<DedupValue>> DedupLookup(DayNumber day, int32_t partition,
                                                        std::string_view mid) const override;
  // Rows buffered for an order (one side, or both), in key order (side, then row id).
  absl::StatusOr<std::vector<JoinRow>> JoinLookup(
      int32_t partition, std::string_view order_id,
      std::optional<JoinSide> side = std::nullopt) const override;
  absl::StatusOr<std::optional<int64_t>> GetOffset(std::string_view topic, int32_t partition) const;

  // TTL expiry: the rows of `partition` whose event time is < cutoff_ms (the partition's
  // watermark minus the join TTL), oldest first, at most `limit`. They are deleted in this batch;
  // the caller dead-letters the unmatched ones (AddDeadLetter) so both land in one commit.
  absl::StatusOr<std::vector<JoinRow>> ExpireJoinRows(int32_t partition, int64_t cutoff_ms,
                                                      size_t limit = SIZE_MAX) override;

  // Event-time watermark of a source partition number (kept in `meta` as "watermark.<p>"),
  // committed with the batch.
  absl::StatusOr<std::optional<int64_t>> GetWatermark(int32_t partition) const override;
  absl::Status SetWatermark(int32_t partition, int64_t event_ms) override;
  // The watermark of one input topic partition (order-wide's two inputs; `meta`
  // "watermark.<topic>.<p>"), committed with the batch.
  absl::StatusOr<std::optional<int64_t>> GetInputWatermark(std::string_view topic,
                                                           int32_t partition) const override;
  absl::Status SetInputWatermark(std::string_view topic, int32_t partition,
                                 int64_t event_ms) override;

  bool empty() const;
  size_t mutation_count() const;  // puts and deletes so far (journal and dead letters excluded)
  // Forgets every mutation, the journal entry and the dead letters: the batch is empty again
  // and can be filled for the next transaction (keeping its write buffer's allocation).
  void Clear();

 private:
  friend class StateStore;
  struct Impl;
  explicit PendingBatch(std::unique_ptr<Impl> impl);
  absl::StatusOr<std::optional<int64_t>> ReadWatermark(const std::string& name) const;
  std::unique_ptr<Impl> impl_;
};

class StateStore {
 public:
  // Opens (or creates) `<root>/<job>`. Errors (each naming the path):
  //   NotFound            no store and create_if_missing false / read_only
  //   Unavailable         the store is locked by another process (a running rtdwd)
  //   DataLoss            RocksDB reports corruption
  //   FailedPrecondition  newer schema, another job's store, changed fingerprint, or a
  //                       store that exists but is not a complete RocksDB database
  //   Internal/other      any other RocksDB failure, with its status text
  static absl::StatusOr<std::unique_ptr<StateStore>> Open(const StateStoreOptions& options);

  // Closes without error reporting (Close() first to see errors). A store destroyed without a
  // prior Close() is still marked cleanly shut down: only a crash leaves the flag false.
  ~StateStore();
  StateStore(const StateStore&) = delete;
  StateStore& operator=(const StateStore&) = delete;

  // Marks a clean shutdown (when tracking), syncs the WAL and closes. Idempotent.
  absl::Status Close();

  const std::string& path() const { return path_; }
  const std::string& job() const { return job_; }
  bool read_only() const { return read_only_; }
  // This Open() created the store.
  bool created() const { return created_; }
  // The clean-shutdown flag as found at open (before this open changed it); nullopt for a new
  // store or one that never recorded it.
  std::optional<bool> previous_shutdown_clean() const { return previous_shutdown_clean_; }
  int schema_version() const { return schema_version_; }

  // ---- the batch transaction
  PendingBatch NewBatch();
  // Writes the batch as one WriteBatch (sync per options). An empty batch is a no-op.
  absl::StatusOr<CommitResult> Commit(PendingBatch batch);
  // The same for a batch that is reused: `batch` is cleared afterwards, whether the commit
  // succeeded or not (a job keeps one PendingBatch instead of allocating one per transaction).
  absl::StatusOr<CommitResult> Commit(PendingBatch* batch);

  // ---- offsets
  absl::StatusOr<std::vector<OffsetEntry>> GetOffsets() const;  // by topic, partition
  absl::StatusOr<std::vector<OffsetEntry>> GetOffsets(std::string_view topic) const;
  absl::StatusOr<std::optional<int64_t>> GetOffset(std::string_view topic, int32_t partition) const;
  absl::Status SetOffset(std::string_view topic, int32_t partition, int64_t next_offset);

  // ---- dedup
  absl::StatusOr<std::optional<DedupValue>> GetDedup(DayNumber day, int32_t partition,
                                                     std::string_view mid) const;
  // Calls fn for every slot of `day` in key order (partition, mid); fn returns false to stop.
  absl::Status ScanDedupDay(DayNumber day,
                            const std::function<bool(int32_t partition, std::string_view mid,
                                                     const DedupValue&)>& fn) const;
  absl::StatusOr<std::vector<DayNumber>> DedupDays() const;  // days present, ascending
  // Retention: drops every day < `day` with one DeleteRange (sync per options).
  absl::Status DropDedupDaysBefore(DayNumber day);

  // Group mode's hand-over (docs/DESIGN.md "Scaling out"): forgets everything of source partition
  // number `partition` — its de-dup slots of every day, its join rows, its watermarks (the
  // partition's and those of `topics`), and its stored offsets in `topics` — in one synced write,
  // before the state is rebuilt for a new owner.
  absl::Status DropPartitionState(int32_t partition, const std::vector<std::string>& topics);

  // ---- join
  // The smallest source offset of the committed live rows of one side of a partition (rows that
  // recorded one); nullopt when there are none.
  absl::StatusOr<std::optional<int64_t>> MinJoinSourceOffset(int32_t partition,
                                                             JoinSide side) const;
  // Committed rows of a partition (all orders) in key order, at most `limit`.
  absl::StatusOr<std::vector<JoinRow>> GetJoinRows(int32_t partition,
                                                   size_t limit = SIZE_MAX) const;

  // ---- journal
  // Owed entries in seq order; bodies only when asked (body_size is always set).
  absl::StatusOr<std::vector<JournalEntry>> ListJournal(bool with_bodies = false) const;
  absl::StatusOr<JournalEntry> ReadJournal(uint64_t seq) const;  // NotFound when absent
  // Deletes a delivered entry (not synced: a lost delete is one idempotent re-delivery).
  absl::Status DeleteJournal(uint64_t seq);
  // Deletes a delivered entry and adds the dead letters of its rejected items, in one write
  // (synced when there are dead letters). Returns the dead letters' seqs. A kept es_rejected
  // letter of a document the entry delivered (acknowledged, or superseded by a better one) is
  // resolved: deleted in the same write.
  absl::StatusOr<std::vector<uint64_t>> CompleteJournal(
      uint64_t seq, const std::vector<std::string>& dead_letter_lines);
  absl::StatusOr<uint64_t> JournalBacklog() const;

  // ---- dead letters
  // Every write of dead letters keeps one letter per identity (core/dead_letter.h): a letter of a
  // record or document that already has one replaces it. An index in the `deadletter` family
  // (storage/state_keys.h) maps identities to seqs; a store written before it had one is indexed
  // by its first writable open.
  absl::StatusOr<uint64_t> AddDeadLetter(std::string_view json_line);
  // Seq order, starting after `after_seq`, at most `limit`.
  absl::StatusOr<std::vector<DeadLetter>> ListDeadLetters(uint64_t after_seq = 0,
                                                          size_t limit = SIZE_MAX) const;
  absl::StatusOr<DeadLetter> GetDeadLetter(uint64_t seq) const;  // NotFound when absent
  absl::Status DeleteDeadLetter(uint64_t seq);                   // NotFound when absent
  // Deletes the dead letters `seqs` (NotFound, and no write, when one is absent) and commits
  // `batch` — a batch that re-judged their records — in one write.
  absl::StatusOr<CommitResult> CommitReplacingDeadLetters(const std::vector<uint64_t>& seqs,
                                                          PendingBatch* batch);
  absl::StatusOr<uint64_t> DeadLetterCount() const;
  // Deletes the dead letters `seqs` and commits `entry` as a new journal entry, in one write.
  // Returns the entry's seq. NotFound (and no write) when one of the seqs is absent.
  absl::StatusOr<uint64_t> RequeueDeadLetters(const std::vector<uint64_t>& seqs,
                                              JournalEntry entry);

  // ---- meta
  absl::StatusOr<std::optional<std::string>> GetMeta(std::string_view name) const;
  // Sets a raw meta value (synced). For tools and tests; the guarded names above have their
  // meaning (setting schema_version to a newer number makes the store unopenable by this binary).
  absl::Status SetMeta(std::string_view name, std::string_view value);
  // Every meta entry; next_seq is shown as a decimal number.
  absl::StatusOr<std::vector<std::pair<std::string, std::string>>> ListMeta() const;
  // Replaces the stored topic fingerprint ("" clears it: the next daemon open records its own).
  absl::Status ResetFingerprint(std::string_view fingerprint = {});
  // Checks `values` ("key=value ...", e.g. "partitions.T=4", known only once Kafka answers)
  // against the stored fingerprint as the open does: FailedPrecondition naming each changed key;
  // otherwise the new keys are recorded (synced). With `replace`, changed keys take the new
  // values instead (a change the daemon itself accepted: partitions added while it runs).
  // Needs a writable store.
  absl::Status MergeFingerprint(std::string_view values, bool replace = false)
      ABSL_LOCKS_EXCLUDED(fingerprint_mu_);

  // ---- introspection
  // Per column family sizes and key counts (estimates unless exact_counts, which iterates).
  absl::StatusOr<StoreStats> Stats(bool exact_counts = false) const;
  uint64_t next_seq() const ABSL_LOCKS_EXCLUDED(seq_mu_);
  // ResourceExhausted (naming the store, the free MiB and the floor) while the store's file
  // system has less than StateStoreOptions::min_free_mb free; Commit() refuses then. A job that
  // writes elsewhere before its commit (a split job producing) asks first.
  absl::Status CheckFreeSpace() const;
  // Bytes available to this process on the store's file system (statvfs); nullopt when unknown.
  std::optional<uint64_t> FreeBytes() const;
  // StateStoreOptions::min_free_mb (0: no floor).
  int64_t min_free_mb() const { return min_free_mb_; }

  // ---- backups (rocksdb/utilities/backup_engine.h)
  // A new backup of this (writable) store into the BackupEngine directory `backup_dir`
  // (created if missing; incremental over earlier backups there). Flushes memtables first.
  absl::StatusOr<BackupResult> CreateBackup(const std::string& backup_dir);
  // The backups in `backup_dir`, oldest first. NotFound when it holds none.
  static absl::StatusOr<std::vector<BackupResult>> ListBackups(const std::string& backup_dir);
  // Restores the latest backup of `backup_dir` as the store of `job` under `root`. Refuses
  // (Unavailable) while another process holds that store. The backup is restored into a fresh
  // directory, checked (it must open and belong to `job`), and only then swapped in; a store
  // already there is moved aside to `<root>/.<job>.replaced-<time>`, never deleted.
  static absl::StatusOr<RestoreResult> RestoreBackup(const std::string& backup_dir,
                                                     const std::string& root,
                                                     const std::string& job);

 private:
  friend class PendingBatch;
  StateStore() = default;
  absl::Status OpenImpl(const StateStoreOptions& options);
  // Builds a complete store (families, meta) in a hidden sibling directory and renames it to
  // path_, so that no crash leaves a partial store at path_. True when this call created it,
  // false when another process's creation got there first.
  absl::StatusOr<bool> CreateAtomically(const StateStoreOptions& options);
  // Opens (or, with `create`, creates) the RocksDB database at path_ and initializes meta.
  absl::Status OpenRocks(const StateStoreOptions& options, bool create);
  absl::Status InitMeta(const StateStoreOptions& options, bool create) ABSL_LOCKS_EXCLUDED(seq_mu_);
  // `current` merged into `stored` (the fingerprint format of StateStoreOptions), or
  // FailedPrecondition naming each changed key.
  absl::StatusOr<std::string> MergedFingerprint(std::string_view stored, std::string_view current,
                                                bool replace = false) const;
  absl::Status CheckWritable() const;
  // Exact number of keys in a column family (iterates).
  absl::StatusOr<uint64_t> CountKeys(std::string_view cf_name) const;
  rocksdb::ColumnFamilyHandle* cf(std::string_view name) const;
  // Writes `wb`, which holds the seq-keyed entries of seqs [next_seq_, next_seq_ + seqs_needed),
  // with the advanced counter; `seqs` gets those seqs.
  absl::Status WriteWithSeqs(rocksdb::WriteBatch* wb, uint64_t seqs_needed, bool sync,
                             std::vector<uint64_t>* seqs) ABSL_EXCLUSIVE_LOCKS_REQUIRED(seq_mu_);
  absl::StatusOr<CommitResult> CommitBatch(PendingBatch& batch,
                                           const std::vector<uint64_t>& drop_letters = {})
      ABSL_LOCKS_EXCLUDED(seq_mu_);
  struct ResolveRange {
    std::string topic;
    int32_t partition;
    int64_t first, last;
  };
  // Puts `lines` as letters of seqs first_seq.. into `wb`, replacing kept letters of the same
  // identity, then deletes the kept letters in `resolve` that `lines` did not replace; `drop` seqs
  // are deleted (with their index entries) first. Under seq_mu_: the index it reads must not
  // change before `wb` is written.
  absl::Status PutDeadLetters(rocksdb::WriteBatch* wb, const std::vector<std::string>& lines,
                              uint64_t first_seq, const std::vector<ResolveRange>& resolve,
                              const std::vector<uint64_t>& drop, CommitResult* result)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(seq_mu_);
  // Deletes letter `seq` (its line `line`) and its index entry when that points to it.
  absl::Status DeleteLetterIn(rocksdb::WriteBatch* wb, uint64_t seq, std::string_view line);
  // The es_rejected letters of documents journal entry `seq` delivered (every document of it but
  // the `rejected` lines' ones) are resolved: deleted into `wb`.
  absl::Status ResolveDeliveredDocuments(rocksdb::WriteBatch* wb, uint64_t seq,
                                         const std::vector<std::string>& rejected)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(seq_mu_);
  // Indexes letters written before the index existed (writable opens; meta deadletter_index).
  absl::Status IndexDeadLetters();

  struct Rocks;
  std::unique_ptr<Rocks> rocks_;
  std::string root_;
  std::string path_;
  std::string job_;
  bool read_only_ = false;
  bool sync_ = true;
  int64_t min_free_mb_ = 0;
  bool track_shutdown_ = true;
  bool created_ = false;
  bool closed_ = false;
  std::optional<bool> previous_shutdown_clean_;
  int schema_version_ = kStateSchemaVersion;
  // Guards next_seq_ and orders the seq-allocating writes (held across each one's RocksDB write).
  mutable absl::Mutex seq_mu_;
  uint64_t next_seq_ ABSL_GUARDED_BY(seq_mu_) = 1;
  // Serializes MergeFingerprint's read-modify-write of meta topic_fingerprint.
  absl::Mutex fingerprint_mu_;
  std::function<void(std::string_view)> log_;
};

// ---- the state dir, without opening anything (never creates a file or directory)

// `<root>/<job>`.
std::string StorePath(std::string_view root, std::string_view job);
// True when `job` is a usable store name ([A-Za-z0-9._-]+, not starting with '.').
bool ValidJobName(std::string_view job);
// The job names with a non-empty directory under `root`, sorted. Hidden entries ('.'-prefixed:
// restores in progress, replaced stores) are skipped. NotFound when root does not exist,
// FailedPrecondition when it is not a directory.
absl::StatusOr<std::vector<std::string>> ListJobStores(const std::string& root);
// The pid of another process holding the store's RocksDB LOCK, if any.
std::optional<pid_t> StoreLockHolder(const std::string& store_path);

}  // namespace rtdw

#endif  // RTDW_STORAGE_STATE_STORE_H_
