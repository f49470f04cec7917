#include "bench/baseline/baseline_dau.h"

#include <hiredis/hiredis.h>
#include <librdkafka/rdkafka.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "connectors/es/bulk.h"
#include "connectors/es/es_client.h"
#include "connectors/es/templates.h"
#include "connectors/kafka/consumer.h"
#include "connectors/redis/redis_client.h"
#include "core/dims.h"
#include "core/event_time.h"
#include "core/json_limits.h"

namespace rtdw::baseline {
namespace {

using Clock = std::chrono::steady_clock;
using Value = JsonValue;

std::atomic<bool> g_stop{false};

void OnSignal(int) { g_stop = true; }

int64_t NowMs() { return absl::ToUnixMillis(absl::Now()); }

// ---------------------------------------------------------------------------------------------
// The Redis set of the day's mids. rtdw's RedisClient has no set commands (rtdw keeps its de-dup
// state in RocksDB), so the baseline talks to hiredis directly for SADD/DEL; dimension rows go
// through RedisClient like rtdw's.
class RedisSetConnection {
 public:
  RedisSetConnection(std::string host, int port) : host_(std::move(host)), port_(port) {}
  ~RedisSetConnection() {
    if (ctx_ != nullptr) redisFree(ctx_);
  }
  RedisSetConnection(const RedisSetConnection&) = delete;
  RedisSetConnection& operator=(const RedisSetConnection&) = delete;

  // SADD key member: true when the member is new (the seed's "isNew == 1").
  absl::StatusOr<bool> SAdd(const std::string& key, std::string_view member) {
    if (auto st = Connect(); !st.ok()) return st;
    const char* argv[3] = {"SADD", key.data(), member.data()};
    size_t lens[3] = {4, key.size(), member.size()};
    auto* r = static_cast<redisReply*>(redisCommandArgv(ctx_, 3, argv, lens));
    if (r == nullptr) return Broken();
    absl::StatusOr<bool> result = r->type == REDIS_REPLY_INTEGER
                                      ? absl::StatusOr<bool>(r->integer == 1)
                                      : absl::InternalError("redis SADD: unexpected reply");
    freeReplyObject(r);
    return result;
  }

  // DEL key, then SADD every member (pipelined in chunks): the seed's "overwrite Redis with ES".
  absl::Status Replace(const std::string& key, const std::vector<std::string>& members) {
    if (auto st = Connect(); !st.ok()) return st;
    const char* del_argv[2] = {"DEL", key.data()};
    size_t del_lens[2] = {3, key.size()};
    redisAppendCommandArgv(ctx_, 2, del_argv, del_lens);
    size_t pending = 1;
    for (size_t i = 0; i < members.size();) {
      std::vector<const char*> argv = {"SADD", key.data()};
      std::vector<size_t> lens = {4, key.size()};
      for (size_t n = 0; n < 1000 && i < members.size(); ++n, ++i) {
        argv.push_back(members[i].data());
        lens.push_back(members[i].size());
      }
      redisAppendCommandArgv(ctx_, static_cast<int>(argv.size()), argv.data(), lens.data());
      ++pending;
    }
    for (; pending > 0; --pending) {
      void* reply = nullptr;
      if (redisGetReply(ctx_, &reply) != REDIS_OK) return Broken();
      auto* r = static_cast<redisReply*>(reply);
      bool error = r->type == REDIS_REPLY_ERROR;
      freeReplyObject(r);
      if (error) return absl::InternalError("redis: error reply while restoring the set");
    }
    return absl::OkStatus();
  }

 private:
  absl::Status Connect() {
    if (ctx_ != nullptr && ctx_->err == 0) return absl::OkStatus();
    if (ctx_ != nullptr) redisFree(ctx_);
    timeval tv{5, 0};
    ctx_ = redisConnectWithTimeout(host_.c_str(), port_, tv);
    if (ctx_ == nullptr || ctx_->err != 0) return Broken();
    redisSetTimeout(ctx_, tv);
    return absl::OkStatus();
  }
  absl::Status Broken() {
    std::string err = ctx_ != nullptr ? ctx_->errstr : "out of memory";
    if (ctx_ != nullptr) redisFree(ctx_);
    ctx_ = nullptr;
    return absl::UnavailableError(absl::StrCat("redis ", host_, ":", port_, ": ", err));
  }

  std::string host_;
  int port_;
  redisContext* ctx_ = nullptr;
};

// ---------------------------------------------------------------------------------------------
// A fixed pool of workers that runs one set of tasks at a time and waits for all of them.
class WorkerPool {
 public:
  explicit WorkerPool(int workers) {
    for (int i = 0; i < workers; ++i) threads_.emplace_back([this, i] { Loop(i); });
  }
  ~WorkerPool() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      shutdown_ = true;
    }
    cv_.notify_all();
    for (auto& t : threads_) t.join();
  }
  int size() const { return static_cast<int>(threads_.size()); }
  // Runs fn(task, worker) for task in [0, tasks) on the workers; returns when all are done.
  void Run(size_t tasks, const std::function<void(size_t, int)>& fn) {
    std::unique_lock<std::mutex> lock(mu_);
    fn_ = &fn;
    next_ = 0;
    tasks_ = tasks;
    done_ = 0;
    ++generation_;
    cv_.notify_all();
    done_cv_.wait(lock, [&] { return done_ == tasks_; });
    fn_ = nullptr;
  }

 private:
  void Loop(int worker) {
    uint64_t seen = 0;
    std::unique_lock<std::mutex> lock(mu_);
    while (true) {
      cv_.wait(lock, [&] { return shutdown_ || (generation_ != seen && next_ < tasks_); });
      if (shutdown_) return;
      while (next_ < tasks_) {
        size_t task = next_++;
        const auto* fn = fn_;
        lock.unlock();
        (*fn)(task, worker);
        lock.lock();
        if (++done_ == tasks_) done_cv_.notify_all();
      }
      seen = generation_;
    }
  }

  std::vector<std::thread> threads_;
  std::mutex mu_;
  std::condition_variable cv_, done_cv_;
  const std::function<void(size_t, int)>* fn_ = nullptr;
  size_t next_ = 0, tasks_ = 0, done_ = 0;
  uint64_t generation_ = 0;
  bool shutdown_ = false;
};

// What one worker owns: the seed's per-partition connections and the parse/format buffers.
struct Worker {
  std::unique_ptr<RedisSetConnection> sets;
  std::unique_ptr<RedisClient> dims_redis;
  std::unique_ptr<EsClient> es;
  std::unique_ptr<JsonParser> parser;
  DimensionBatch dims;
  rapidjson::StringBuffer doc;
  std::string key;
};

// One source partition's share of a batch.
struct PartitionWork {
  std::vector<const InputRecord*> records;
  std::vector<BulkAction> actions;
  uint64_t first_pages = 0;
  uint64_t new_mids = 0;
  uint64_t redis_round_trips = 0;
  uint64_t documents = 0;
  uint64_t rejected = 0;
  absl::Status status;
};

// The DauInfo fields copied from the DWD record (docs/FORMATS.md §4 order), then ts.
constexpr std::string_view kFields[] = {
    "mid",         "user_id",        "province_id",  "channel",     "is_new",
    "model",       "operate_system", "version_code", "brand",       "page_id",
    "page_item",   "page_item_type", "source_type",  "during_time", "ts",
    "last_page_id"};
constexpr size_t kFieldCount = std::size(kFields);
constexpr size_t kMid = 0, kUserId = 1, kProvinceId = 2, kCopied = 14, kTs = 14, kLastPage = 15;

class Baseline {
 public:
  explicit Baseline(const BaselineOptions& o) : o_(o), pool_(std::max(1, o.parallelism)) {}

  absl::StatusOr<BaselineStats> Run();

 private:
  absl::Status Setup();
  absl::StatusOr<std::vector<PartitionStart>> CommittedStarts(int partitions);
  absl::Status Restore();
  void Phase1(PartitionWork* work, Worker* w);
  void Phase2(PartitionWork* work, Worker* w);
  void MaybeFault(uint64_t batch);

  BaselineOptions o_;
  absl::TimeZone tz_;
  WorkerPool pool_;
  std::vector<std::unique_ptr<Worker>> workers_;
  std::unique_ptr<KafkaConsumer> consumer_;
  BaselineStats stats_;
  Clock::time_point started_;
};

absl::Status Baseline::Setup() {
  if (!absl::LoadTimeZone(o_.time_zone, &tz_)) {
    return absl::InvalidArgumentError(absl::StrCat("unknown time zone ", o_.time_zone));
  }
  for (int i = 0; i < pool_.size(); ++i) {
    auto& w = *workers_.emplace_back(std::make_unique<Worker>());
    w.sets = std::make_unique<RedisSetConnection>(o_.redis_host, o_.redis_port);
    RedisClientOptions ro;
    ro.host = o_.redis_host;
    ro.port = o_.redis_port;
    w.dims_redis = std::make_unique<RedisClient>(ro);
    EsClientOptions eo;
    eo.urls = {o_.es_url};
    auto es = EsClient::Create(eo);
    if (!es.ok()) return es.status();
    w.es = std::move(*es);
    w.parser = std::make_unique<JsonParser>(JsonLimits{1 << 20, 64});
  }
  // The same mappings as rtdw's DAU indices, so both sinks index the same way.
  if (auto st = InstallIndexTemplates(*workers_[0]->es, o_.index_prefix, ""); !st.ok()) return st;

  KafkaConsumerOptions co;
  co.brokers = o_.brokers;
  co.group_id = o_.group;
  auto consumer = KafkaConsumer::Create(co);
  if (!consumer.ok()) return consumer.status();
  consumer_ = std::move(*consumer);
  auto partitions = consumer_->PartitionCount(o_.topic, std::chrono::seconds(10));
  if (!partitions.ok()) return partitions.status();
  auto starts = CommittedStarts(*partitions);
  if (!starts.ok()) return starts.status();
  return consumer_->Assign(*starts);
}

// The group's committed offsets (the seed starts from Kafka's committed offsets).
absl::StatusOr<std::vector<PartitionStart>> Baseline::CommittedStarts(int partitions) {
  char errstr[512];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  rd_kafka_conf_set(conf, "bootstrap.servers", o_.brokers.c_str(), errstr, sizeof errstr);
  rd_kafka_conf_set(conf, "group.id", o_.group.c_str(), errstr, sizeof errstr);
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof errstr);
  if (rk == nullptr) return absl::InternalError(absl::StrCat("kafka: ", errstr));
  rd_kafka_topic_partition_list_t* list = rd_kafka_topic_partition_list_new(partitions);
  for (int p = 0; p < partitions; ++p) rd_kafka_topic_partition_list_add(list, o_.topic.c_str(), p);
  rd_kafka_resp_err_t err = rd_kafka_committed(rk, list, 10000);
  std::vector<PartitionStart> starts;
  for (int i = 0; i < list->cnt; ++i) {
    PartitionStart s{o_.topic, list->elems[i].partition, PartitionStart::kBeginning};
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR && list->elems[i].offset >= 0) {
      s.offset = list->elems[i].offset;
    }
    starts.push_back(s);
  }
  rd_kafka_topic_partition_list_destroy(list);
  rd_kafka_destroy(rk);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return absl::UnavailableError(
        absl::StrCat("kafka committed offsets of ", o_.group, ": ", rd_kafka_err2str(err)));
  }
  return starts;
}

absl::Status Baseline::Restore() {
  auto t0 = Clock::now();
  std::string index = o_.index_prefix + *o_.restore_day;
  std::vector<std::string> mids;
  ScrollOptions so;
  so.fetch_source = false;
  so.sort = {"mid"};  // the DAU template's unique keyword (ES 8 refuses sorting on _id)
  // A search sees only refreshed writes.
  if (absl::Status rs = workers_[0]->es->Refresh(index); !rs.ok() && !absl::IsNotFound(rs)) {
    return rs;
  }
  absl::Status st = workers_[0]->es->ScrollAll(index, so, [&](const SearchHit& hit) {
    mids.push_back(hit.id);
    return absl::OkStatus();
  });
  if (!st.ok() && !absl::IsNotFound(st)) return st;
  if (auto s = workers_[0]->sets->Replace(o_.state_key_prefix + *o_.restore_day, mids); !s.ok()) {
    return s;
  }
  stats_.restored_mids = mids.size();
  stats_.restore_seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  return absl::OkStatus();
}

void Baseline::Phase1(PartitionWork* work, Worker* w) {
  DayHourCache days(tz_);
  DocWriter writer(w->doc);
  const Value* f[kFieldCount];
  std::string user_id, province_id;
  for (const InputRecord* rec : work->records) {
    if (w->parser->Parse(rec->value) != JsonStatus::kOk || !w->parser->root().IsObject()) continue;
    const Value& root = w->parser->root();
    FindMembers(root, kFields, kFieldCount, f);
    if (!OmittedValue(f[kLastPage])) continue;  // not the first page of a visit
    if (f[kMid] == nullptr || !f[kMid]->IsString() || f[kMid]->GetStringLength() == 0) continue;
    if (f[kTs] == nullptr || !f[kTs]->IsInt64()) continue;
    ++work->first_pages;
    const int64_t ts = f[kTs]->GetInt64();
    const DayHour& day = days.Get(ts);
    const std::string_view mid = JsonStringView(*f[kMid]);
    w->key.assign(o_.state_key_prefix);
    w->key.append(day.day_view());
    ++work->redis_round_trips;
    auto is_new = w->sets->SAdd(w->key, mid);
    if (!is_new.ok()) {
      work->status = is_new.status();
      return;
    }
    if (!*is_new) continue;
    ++work->new_mids;

    // Dimensions: the record's two rows, looked up now (one round trip).
    w->dims.Clear();
    DimensionBatch::Handle hu = DimensionBatch::kNone, hp = DimensionBatch::kNone;
    if (f[kUserId] != nullptr && IdText(*f[kUserId], &user_id)) hu = w->dims.AddUser(user_id);
    if (f[kProvinceId] != nullptr && IdText(*f[kProvinceId], &province_id)) {
      hp = w->dims.AddProvince(province_id);
    }
    if (!w->dims.keys().empty()) {
      ++work->redis_round_trips;
      auto rows = w->dims_redis->MGet(w->dims.keys());
      if (!rows.ok()) {
        work->status = rows.status();
        return;
      }
      if (auto st = w->dims.SetRows(*rows); !st.ok()) {
        work->status = st;
        return;
      }
    }

    w->doc.Clear();
    writer.Reset(w->doc);
    writer.StartObject();
    for (size_t i = 0; i < kCopied; ++i) WriteField(writer, kFields[i], f[i]);
    if (const UserDim* u = w->dims.user(hu)) {
      WriteRawField(writer, "user_gender", u->gender_json);
      if (auto age = u->AgeOn(CivilDayOf(ts, tz_))) {
        writer.Key("user_age");
        writer.Int(*age);
      }
    }
    if (const ProvinceDim* p = w->dims.province(hp)) {
      WriteRawField(writer, "province_name", p->name_json);
      WriteRawField(writer, "province_iso_code", p->iso_code_json);
      WriteRawField(writer, "province_3166_2", p->iso_3166_2_json);
      WriteRawField(writer, "province_area_code", p->area_code_json);
    }
    WriteStringField(writer, "dt", day.day_view());
    WriteStringField(writer, "hr", day.hour_view());
    writer.Key("ts");
    writer.Int64(ts);
    writer.EndObject();
    BulkAction action;
    action.op = BulkOp::kIndex;
    action.index = absl::StrCat(o_.index_prefix, std::string(day.day_view()));
    action.id = std::string(mid);
    action.source.assign(w->doc.GetString(), w->doc.GetSize());
    work->actions.push_back(std::move(action));
  }
}

void Baseline::Phase2(PartitionWork* work, Worker* w) {
  if (work->actions.empty()) return;
  auto result = w->es->Bulk(work->actions);
  if (!result.ok()) {
    work->status = result.status();
    return;
  }
  work->documents = result->delivered;
  work->rejected = result->failed;
  if (result->failed > 0) {
    fprintf(stderr, "rtdw-baseline-dau: ES refused %zu documents for good (dropped)\n",
            result->failed);
  }
}

void Baseline::MaybeFault(uint64_t batch) {
  if (o_.fault.rfind("after_sadd:", 0) != 0) return;
  if (batch != std::stoull(o_.fault.substr(11))) return;
  static const char kMsg[] = "rtdw-baseline-dau: fault after_sadd reached, SIGKILL\n";
  (void)!write(2, kMsg, sizeof kMsg - 1);
  kill(getpid(), SIGKILL);
}

absl::StatusOr<BaselineStats> Baseline::Run() {
  started_ = Clock::now();
  if (auto st = Setup(); !st.ok()) return st;
  if (o_.restore_day) {
    if (auto st = Restore(); !st.ok()) return st;
  }
  std::ofstream progress;
  if (!o_.progress_file.empty()) progress.open(o_.progress_file, std::ios::app);

  ConsumedBatch batch;
  auto last_record = Clock::now();
  while (!g_stop.load()) {
    batch.Clear();
    absl::Status polled =
        consumer_->Poll(static_cast<size_t>(o_.batch_max_records), o_.batch_max_ms, &batch);
    if (!polled.ok()) return polled;
    if (batch.empty()) {
      if (o_.exit_when_idle && Clock::now() - last_record >= *o_.exit_when_idle &&
          consumer_->VerifiedAtEnd()) {
        break;
      }
      continue;
    }
    last_record = Clock::now();

    // Group by source partition (Spark: one task per Kafka partition).
    std::map<int32_t, PartitionWork> by_partition;
    std::map<std::pair<std::string, int32_t>, int64_t> next;
    for (const InputRecord& rec : batch.records()) {
      by_partition[rec.partition].records.push_back(&rec);
      auto& slot = next[{std::string(rec.topic), rec.partition}];
      slot = std::max(slot, rec.offset + 1);
    }
    std::vector<PartitionWork*> works;
    for (auto& [p, work] : by_partition) works.push_back(&work);

    pool_.Run(works.size(),
              [&](size_t i, int worker) { Phase1(works[i], workers_[worker].get()); });
    for (auto* work : works) {
      if (!work->status.ok()) return work->status;
    }
    MaybeFault(stats_.batches + 1);
    pool_.Run(works.size(),
              [&](size_t i, int worker) { Phase2(works[i], workers_[worker].get()); });
    for (auto* work : works) {
      if (!work->status.ok()) return work->status;
      stats_.first_pages += work->first_pages;
      stats_.new_mids += work->new_mids;
      stats_.documents += work->documents;
      stats_.rejected += work->rejected;
      stats_.redis_round_trips += work->redis_round_trips;
    }
    // The driver commits the batch's offsets to Kafka after the output was written.
    consumer_->CommitAsync(next);
    stats_.records += batch.size();
    ++stats_.batches;
    stats_.seconds = std::chrono::duration<double>(Clock::now() - started_).count();
    if (progress.is_open()) {
      progress << NowMs() << " " << stats_.records << " " << stats_.documents << "\n";
      progress.flush();
    }
  }
  batch.Clear();
  consumer_.reset();  // closes the consumer (outstanding commits are sent)
  return stats_;
}

}  // namespace

absl::StatusOr<BaselineStats> RunBaselineDau(const BaselineOptions& options) {
  struct sigaction sa {};
  sa.sa_handler = OnSignal;
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGINT, &sa, nullptr);
  Baseline baseline(options);
  return baseline.Run();
}

}  // namespace rtdw::baseline
