#include "bench/rtdw_bench/scenarios.h"

#include <signal.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <deque>
#include <fstream>
#include <functional>
#include <mutex>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/civil_time.h"
#include "bench/rtdw_bench/floors.h"
#include "bench/rtdw_bench/null_es.h"
#include "core/gen/log_gen.h"
#include "rapidjson/document.h"
#include "rapidjson/stringbuffer.h"
#include "rapidjson/writer.h"

namespace rtdw::bench {
namespace {

constexpr char kOdsLog[] = "ODS_BASE_LOG";
constexpr char kOdsDb[] = "ODS_BASE_DB";
constexpr char kPage[] = "DWD_PAGE_LOG_TOPIC";
constexpr char kOrderInfoI[] = "DWD_ORDER_INFO_I";
constexpr char kOrderDetailI[] = "DWD_ORDER_DETAIL_I";
constexpr double kTargetPageRate = 100000;  // all-jobs: page records/s to sustain
// The sustained phase stops early once the pipeline is this far behind: the lag is then clearly
// growing, and more would pass what the mock keeps (its retention would drop unread records).
constexpr double kMaxOdsLag = 500000;
constexpr double kMaxPageLag = 1000000;

// ---------------------------------------------------------------------------------------------
// Sizes and data.

struct Sizes {
  int64_t events = 0;
  int64_t mids = 0;
  int64_t users = 0;
  int64_t orders = 0;
};

Sizes SizesFor(int64_t records) {
  Sizes s;
  s.events = records;
  s.mids = std::max<int64_t>(1000, records / 5);
  s.users = std::max<int64_t>(1000, records / 10);
  // rtdw-gen db writes about 7.1 change records per order (with its bootstrap of the users).
  s.orders = std::max<int64_t>(100, static_cast<int64_t>(records * 0.141));
  return s;
}

// Enough partitions that the mock's retention (~5 MB compressed per partition) keeps `records`
// app-log records and what log-split makes of them.
// (rtdw-gen's records are about 150 bytes each with lz4: 25,000 records per partition keep it
// under 4 MB.)
int PartitionsFor(int64_t records) {
  return static_cast<int>(std::clamp<int64_t>((records + 24999) / 25000, 4, 64));
}

// An error when the mock's retention dropped records of `topic` (the results would be wrong).
absl::Status CheckNothingDropped(TopicCounter& counter, const std::string& topic) {
  auto c = counter.Count(topic);
  if (!c.ok()) return c.status();
  if (c->dropped > 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("the Kafka mock's retention dropped ", c->dropped, " records of ", topic,
                     " before they were read (more partitions needed)"));
  }
  return absl::OkStatus();
}

StackOptions Parts(int partitions) {
  StackOptions o;
  o.partitions = partitions;
  return o;
}

Rtdwd::Options Opts(const std::string& config, int port, std::vector<std::string> jobs,
                    const std::string& log) {
  Rtdwd::Options o;
  o.config = config;
  o.http_port = port;
  o.jobs = std::move(jobs);
  o.log_path = log;
  return o;
}

std::vector<std::string> AllFourJobs() { return {"log-split", "db-split", "dau", "order-wide"}; }

// One rtdwd with the four jobs, as deployed (all-jobs, latency), on `stack`; its config and log
// are named after `name`.
absl::StatusOr<std::unique_ptr<Rtdwd>> StartAllFourJobs(const Stack& stack,
                                                        const std::string& name) {
  RtdwdConfig c;
  c.jobs = AllFourJobs();
  int port = 0;
  std::string state;
  std::string config = WriteRtdwdConfig(stack, name, c, &port, &state);
  return Rtdwd::Start(Opts(config, port, {}, stack.dir().Sub(name + ".log")));
}

std::string Today() { return ShanghaiDay(NowMs()); }
std::string Yesterday() { return ShanghaiDay(NowMs() - 86400000); }

// The live traffic's generator (all-jobs' sustained phase, latency): yesterday's day (fresh de-dup
// keys; still inside the 2-day retention), another seed than the drain's; events left to set.
gen::LogGenOptions LiveTraffic(const Sizes& s) {
  gen::LogGenOptions go;
  absl::ParseCivilTime(Yesterday(), &go.day);
  absl::LoadTimeZone(go.time_zone, &go.tz);
  go.mids = s.mids;
  go.users = s.users;
  go.seed = 2;
  return go;
}

absl::Status GenLogs(const Stack& stack, const std::string& day, const Sizes& s, int seed,
                     const std::string& truth = "") {
  std::vector<std::string> argv = {testing::BinDir() + "/rtdw-gen",
                                   "logs",
                                   "--day",
                                   day,
                                   "--mids",
                                   absl::StrCat(s.mids),
                                   "--users",
                                   absl::StrCat(s.users),
                                   "--events",
                                   absl::StrCat(s.events),
                                   "--seed",
                                   absl::StrCat(seed),
                                   "--key",
                                   "mid",
                                   "--brokers",
                                   stack.bootstrap(),
                                   "--quiet"};
  if (!truth.empty()) {
    argv.push_back("--truth");
    argv.push_back(truth);
  }
  auto r = RunOk(argv, std::chrono::seconds(600));
  return r.ok() ? absl::OkStatus() : r.status();
}

absl::Status GenDb(const Stack& stack, const std::string& day, const Sizes& s, int seed) {
  auto r = RunOk({testing::BinDir() + "/rtdw-gen", "db", "--day", day, "--users",
                  absl::StrCat(s.users), "--orders", absl::StrCat(s.orders), "--seed",
                  absl::StrCat(seed), "--brokers", stack.bootstrap(), "--quiet"},
                 std::chrono::seconds(600));
  return r.ok() ? absl::OkStatus() : r.status();
}

// A flat DWD page record (docs/FORMATS.md §2), as log-split writes it.
std::string DwdPage(const std::string& mid, int64_t ts, bool first, int64_t user, int province) {
  std::string r = absl::StrCat("{\"mid\":\"", mid, "\"");
  if (user > 0) absl::StrAppend(&r, ",\"user_id\":\"", user, "\"");
  absl::StrAppend(&r, ",\"province_id\":\"", province,
                  "\",\"channel\":\"xiaomi\",\"is_new\":\"0\",\"model\":\"Xiaomi 10 Pro\","
                  "\"operate_system\":\"Android 11.0\",\"version_code\":\"v2.1.134\","
                  "\"brand\":\"Xiaomi\",\"page_id\":\"",
                  first ? "home" : "good_detail", "\"");
  if (!first) r += ",\"last_page_id\":\"good_list\"";
  absl::StrAppend(&r, ",\"page_item\":\"31\",\"page_item_type\":\"sku_id\",\"during_time\":",
                  1000 + ts % 20000, ",\"source_type\":\"recommend\",\"ts\":", ts, "}");
  return r;
}

// An ODS app-log first page (docs/FORMATS.md §1) of device `mid` at `ts`.
std::string OdsFirstPage(const std::string& mid, int64_t ts, int64_t user, int province) {
  return absl::StrCat(
      "{\"common\":{\"ar\":\"", province,
      "\",\"ba\":\"Xiaomi\",\"ch\":\"xiaomi\",\"is_new\":\"0\",\"md\":\"Xiaomi "
      "10 Pro\",\"mid\":\"",
      mid, "\",\"os\":\"Android 11.0\",\"uid\":\"", user,
      "\",\"vc\":\"v2.1.134\"},\"page\":{\"during_time\":1200,\"page_id\":\"home\"},"
      "\"ts\":",
      ts, "}");
}

// A time of `day` for record i of n (spread over the day, never after now + 1 h).
int64_t TsInDay(const std::string& day, int64_t i, int64_t n) {
  auto [start, end] = ShanghaiDayBounds(day);
  int64_t span = std::min(end, NowMs() + 3600000) - start;
  if (span <= 0) span = 1;
  return start + (n > 0 ? (i * (span / std::max<int64_t>(n, 1))) % span : 0) + i % 997;
}

// Figures common to one job's run.
void AddRunFigures(const JobRunOutcome& out, const std::string& job, double input,
                   ScenarioResult* r) {
  r->Set("input_records", input);
  r->Set("seconds", out.seconds);
  r->Set("input_records_per_s", out.seconds > 0 ? input / out.seconds : 0);
  r->Set("startup_s", out.startup_seconds);
  const double batches = out.final_metrics.Job("rtdw_batches_total", job);
  if (batches > 0) r->Set("mean_batch_records", input / batches);
  r->Set("peak_rss_mb", out.peak_rss_mb);
  r->Set("load_avg_1m", LoadAverage1m());
  for (const auto& s : out.series) {
    Series copy = s;
    copy.name = s.name == r->name ? absl::StrCat(s.name, " records/s")
                                  : absl::StrCat(r->name, ": ", s.name, " records/s");
    r->series.push_back(std::move(copy));
  }
}

// ---------------------------------------------------------------------------------------------
// A producer thread at a fixed rate.

class PacedProducer {
 public:
  // Returns false when it has nothing more to send.
  using Next = std::function<bool(std::string* key, std::string* value)>;
  PacedProducer(KafkaProducer* producer, std::string topic, double rate, double seconds, Next next)
      : producer_(producer),
        topic_(std::move(topic)),
        rate_(rate),
        seconds_(seconds),
        next_(std::move(next)) {}
  ~PacedProducer() { Join(); }

  void Start() {
    thread_ = std::thread([this] { Loop(); });
  }
  void Join() {
    if (thread_.joinable()) thread_.join();
  }
  void Stop() { stop_ = true; }
  int64_t produced() const { return produced_.load(); }
  double elapsed() const { return elapsed_; }
  bool ran_dry() const { return ran_dry_; }
  const absl::Status& status() const { return status_; }

 private:
  void Loop() {
    const auto start = Clock::now();
    std::string key, value;
    while (!stop_.load()) {
      const double e = SecondsSince(start);
      if (e >= seconds_) break;
      const int64_t due = static_cast<int64_t>(rate_ * e);
      if (produced_.load() >= due) {
        std::this_thread::sleep_for(std::chrono::microseconds(500));
        continue;
      }
      for (int64_t n = due - produced_.load(); n > 0; --n) {
        if (!next_(&key, &value)) {
          ran_dry_ = true;
          stop_ = true;
          break;
        }
        if (auto st = producer_->Produce(topic_, key, value); !st.ok()) {
          status_ = st;
          stop_ = true;
          break;
        }
        ++produced_;
      }
    }
    elapsed_ = SecondsSince(start);
    if (auto st = producer_->Flush(std::chrono::seconds(120)); !st.ok() && status_.ok()) {
      status_ = st;
    }
  }

  KafkaProducer* producer_;
  std::string topic_;
  double rate_;
  double seconds_;
  Next next_;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::atomic<int64_t> produced_{0};
  double elapsed_ = 0;
  bool ran_dry_ = false;
  absl::Status status_;
};

// ---------------------------------------------------------------------------------------------
// ES helpers.

// Every document id (and its `ts`, when the document has one) of `index`.
absl::StatusOr<std::map<std::string, int64_t>> IndexDocs(EsClient& es, const std::string& index) {
  std::map<std::string, int64_t> docs;
  ScrollOptions so;
  so.source_includes = {"ts"};
  so.page_size = 5000;
  so.sort = {"mid"};  // the DAU template's unique keyword (ES 8 refuses sorting on _id)
  absl::Status st = es.ScrollAll(index, so, [&](const SearchHit& hit) {
    int64_t ts = 0;
    rapidjson::Document d;
    d.Parse(hit.source.c_str(), hit.source.size());
    if (!d.HasParseError() && d.IsObject() && d.HasMember("ts") && d["ts"].IsInt64()) {
      ts = d["ts"].GetInt64();
    }
    docs[hit.id] = ts;
    return absl::OkStatus();
  });
  if (absl::IsNotFound(st)) return docs;
  if (!st.ok()) return st;
  return docs;
}

// The truth's DAU documents of `day`: mid -> ts.
absl::StatusOr<std::map<std::string, int64_t>> TruthDau(const std::string& path,
                                                        const std::string& day) {
  std::string text = testing::ReadFileOrEmpty(path);
  rapidjson::Document d;
  d.Parse(text.c_str(), text.size());
  if (d.HasParseError() || !d.IsObject() || !d.HasMember("dau") || !d["dau"].IsObject()) {
    return absl::InvalidArgumentError(absl::StrCat("truth file ", path, " has no \"dau\""));
  }
  std::map<std::string, int64_t> out;
  auto it = d["dau"].FindMember(day.c_str());
  if (it == d["dau"].MemberEnd()) return out;
  for (auto& m : it->value.GetObject()) {
    int64_t ts = m.value.HasMember("ts") && m.value["ts"].IsInt64() ? m.value["ts"].GetInt64() : 0;
    out[m.name.GetString()] = ts;
  }
  return out;
}

struct Comparison {
  int64_t expected = 0;
  int64_t missing = 0;
  int64_t extra = 0;
  int64_t ts_mismatch = 0;
};
Comparison Compare(const std::map<std::string, int64_t>& truth,
                   const std::map<std::string, int64_t>& got) {
  Comparison c;
  c.expected = static_cast<int64_t>(truth.size());
  for (const auto& [mid, ts] : truth) {
    auto it = got.find(mid);
    if (it == got.end()) {
      ++c.missing;
    } else if (it->second != ts) {
      ++c.ts_mismatch;
    }
  }
  for (const auto& [mid, ts] : got) {
    if (!truth.count(mid)) ++c.extra;
  }
  return c;
}

// ---------------------------------------------------------------------------------------------

class Runner {
 public:
  explicit Runner(const BenchOptions& o) : o_(o), sizes_(SizesFor(o.records)) {}
  std::map<std::string, ScenarioResult> Run();

 private:
  bool Want(const std::string& s) const { return o_.scenarios.count(s) > 0; }
  ScenarioResult& Result(const std::string& name) {
    ScenarioResult& r = results_[name];
    r.name = name;
    return r;
  }
  void Fail(const std::string& name, const absl::Status& st) {
    ScenarioResult& r = Result(name);
    r.failed = true;
    r.error = std::string(st.message());
    Log(absl::StrCat(name, ": FAILED: ", r.error));
  }

  absl::Status PipelinePhase();
  absl::Status RunSplitJob(Stack& stack, const std::string& scenario, const std::string& job,
                           const std::string& topic, bool report,
                           std::vector<std::string>* output_topics = nullptr);
  absl::Status RunPipeFloor(Stack& stack, const std::string& scenario, const std::string& job,
                            const std::string& topic, const std::vector<std::string>& job_outputs);
  absl::Status RunConsumeFloor(Stack& stack);
  absl::Status RunBaseline(Stack& stack);
  // all-jobs' drain (and, when wanted, its sustained phase); *latency_rate = half of the drain's
  // app-log rate, the latency scenario's load (0 when not measured).
  absl::Status AllJobsPhase(double* latency_rate);
  // The latency scenario on a stack of its own (started after all-jobs' is gone).
  absl::Status LatencyPhase(double rate);
  absl::Status Sustained(Stack& stack, Rtdwd& daemon, gen::LogGenerator& gen, double page_share);
  absl::Status Latency(Stack& stack, Rtdwd& daemon, gen::LogGenerator& gen, double rate);
  absl::Status Recovery();
  absl::Status Memory();
  absl::Status KillTest();

  BenchOptions o_;
  Sizes sizes_;
  std::map<std::string, ScenarioResult> results_;
};

// ---------------------------------------------------------------------------------------------
// kcat-ceiling, log-split, db-split, dau, order-wide, baseline-dau: one stack, one data set.

absl::Status Runner::RunSplitJob(Stack& stack, const std::string& scenario, const std::string& job,
                                 const std::string& topic, bool report,
                                 std::vector<std::string>* output_topics) {
  auto counter = TopicCounter::Create(stack.bootstrap());
  if (!counter.ok()) return counter.status();
  const int64_t input = (*counter)->Records(topic);
  std::map<std::string, int64_t> before;
  if (output_topics != nullptr) {
    auto all = (*counter)->AllTopics();
    if (!all.ok()) return all.status();
    before = std::move(*all);
  }
  RtdwdConfig c;
  c.jobs = {job};
  int port = 0;
  std::string state;
  std::string config = WriteRtdwdConfig(stack, job, c, &port, &state);
  Log(absl::StrCat(job, ": ", input, " records of ", topic, report ? "" : " (preparation)"));
  JobRunSpec spec;
  spec.label = job;
  spec.jobs = {job};
  spec.expected[job] = [input] { return input; };
  auto out = RunJobsToCompletion(Opts(config, port, {job}, stack.dir().Sub(job + ".log")), spec);
  if (!out.ok()) return out.status();
  Log(absl::StrCat(job, ": ", input, " records in ", out->seconds, " s"));
  if (output_topics != nullptr) {  // the topics this job wrote to: grown during its run
    auto after = (*counter)->AllTopics();
    if (!after.ok()) return after.status();
    for (const auto& [t, n] : *after) {
      auto it = before.find(t);
      if (n > (it == before.end() ? 0 : it->second)) output_topics->push_back(t);
    }
  }
  if (!report) return absl::OkStatus();
  ScenarioResult& r = Result(scenario);
  AddRunFigures(*out, job, static_cast<double>(input), &r);
  r.Set("output_records", out->final_metrics.JobSum("rtdw_records_out_total", job));
  r.Set("dead_letter_records", out->final_metrics.Job("rtdw_dead_letter_records_total", job));
  const double b = HistogramQuantile(out->final_metrics.Buckets("rtdw_batch_seconds", job), 0.99);
  r.Set("p99_batch_latency_ms_bucket", b * 1000);
  return absl::OkStatus();
}

absl::Status Runner::RunPipeFloor(Stack& stack, const std::string& scenario, const std::string& job,
                                  const std::string& topic,
                                  const std::vector<std::string>& job_outputs) {
  auto counter = TopicCounter::Create(stack.bootstrap());
  if (!counter.ok()) return counter.status();
  const int64_t input = (*counter)->Records(topic);
  // The job's shape: its output messages per input record and their mean size (a second pass
  // over what it wrote; the mock must still hold all of it).
  int64_t dropped = 0;
  for (const auto& t : job_outputs) {
    auto c = (*counter)->Count(t);
    if (c.ok()) dropped += c->dropped;
  }
  if (dropped > 0) {
    return absl::FailedPreconditionError(absl::StrCat("the Kafka mock dropped ", dropped, " of ",
                                                      job, "'s output records: no shape to copy"));
  }
  auto bytes = ReadTopicBytes(stack.bootstrap(), job_outputs);
  if (!bytes.ok()) return bytes.status();
  if (input <= 0 || bytes->records <= 0) {
    return absl::FailedPreconditionError(absl::StrCat(job, " wrote nothing to copy"));
  }
  PipeShape shape;
  shape.fanout = static_cast<double>(bytes->records) / static_cast<double>(input);
  shape.mean_value_bytes = bytes->value_bytes / static_cast<double>(bytes->records);
  for (size_t i = 0; i < job_outputs.size(); ++i) {
    shape.topics.push_back(absl::StrCat("BENCH_FLOOR_", job, "_", i));
  }
  Log(absl::StrCat(scenario, ": ", input, " records of ", topic, " -> ", shape.fanout,
                   " messages each of ", shape.mean_value_bytes, " bytes (mean) to ",
                   shape.topics.size(), " topics"));
  const double load = LoadAverage1m();
  auto run = PipeFloor(stack.bootstrap(), topic, input, shape);
  if (!run.ok()) return run.status();
  ScenarioResult& r = Result(scenario);
  r.Set("input_records", static_cast<double>(run->input_records));
  r.Set("seconds", run->seconds);
  r.Set("input_records_per_s", run->input_records / run->seconds);
  r.Set("output_records", static_cast<double>(run->output_records));
  r.Set("output_per_input", shape.fanout);
  r.Set("mean_output_value_bytes", shape.mean_value_bytes);
  r.Set("output_topics", static_cast<double>(shape.topics.size()));
  r.Set("load_avg_1m", load);
  Log(absl::StrCat(scenario, ": ", run->input_records, " records in ", run->seconds, " s"));
  return absl::OkStatus();
}

absl::Status Runner::RunConsumeFloor(Stack& stack) {
  auto counter = TopicCounter::Create(stack.bootstrap());
  if (!counter.ok()) return counter.status();
  ScenarioResult& r = Result("consume-floor");
  // dau's input, then order-wide's (two topics), each consumed to its end.
  const int64_t page = (*counter)->Records(kPage);
  r.Set("load_avg_1m", LoadAverage1m());
  auto run = ConsumeFloor(stack.bootstrap(), {kPage}, page);
  if (!run.ok()) return run.status();
  r.Set("input_records", static_cast<double>(run->input_records));
  r.Set("seconds", run->seconds);
  r.Set("input_records_per_s", run->input_records / run->seconds);
  Log(absl::StrCat("consume-floor: ", run->input_records, " records of ", kPage, " in ",
                   run->seconds, " s"));
  const int64_t orders = (*counter)->Records(kOrderInfoI) + (*counter)->Records(kOrderDetailI);
  auto order_run = ConsumeFloor(stack.bootstrap(), {kOrderInfoI, kOrderDetailI}, orders);
  if (!order_run.ok()) return order_run.status();
  r.Set("order_input_records", static_cast<double>(order_run->input_records));
  r.Set("order_input_records_per_s", order_run->input_records / order_run->seconds);
  return absl::OkStatus();
}

absl::Status Runner::PipelinePhase() {
  const bool want_kcat = Want("kcat-ceiling");
  const bool need_log_split = Want("log-split") || Want("dau") || Want("baseline-dau") ||
                              Want("kafka-pipe-floor") || Want("consume-floor");
  const bool need_db_split = Want("db-split") || Want("dau") || Want("order-wide") ||
                             Want("baseline-dau") || Want("kafka-pipe-floor-db") ||
                             Want("consume-floor");
  if (!want_kcat && !need_log_split && !need_db_split) return absl::OkStatus();

  Stack stack;
  const int partitions = PartitionsFor(o_.records);
  if (auto st = stack.Start(Parts(partitions)); !st.ok()) return st;
  const std::string day = Today();
  Log(absl::StrCat("pipeline stack: kafka ", stack.bootstrap(), " (", partitions,
                   " partitions), redis ", stack.redis_url(), ", es ", stack.es_url(), "; day ",
                   day));
  auto t0 = Clock::now();
  if (auto st = GenLogs(stack, day, sizes_, 1); !st.ok()) return st;
  const double gen_s = SecondsSince(t0);
  Log(absl::StrCat("rtdw-gen logs: ", sizes_.events, " records (", sizes_.mids, " mids) in ", gen_s,
                   " s"));
  if (need_db_split) {
    if (auto st = GenDb(stack, day, sizes_, 1); !st.ok()) return st;
  }
  auto counter = TopicCounter::Create(stack.bootstrap());
  if (!counter.ok()) return counter.status();

  if (want_kcat) {
    auto run = [&]() -> absl::Status {
      auto ods = (*counter)->Count(kOdsLog);
      if (!ods.ok()) return ods.status();
      auto start = Clock::now();
      auto r = RunOk({"kcat", "-C", "-b", stack.bootstrap(), "-t", kOdsLog, "-o", "beginning", "-e",
                      "-q", "-f", "%o\\n"},
                     std::chrono::seconds(600));
      const double s = SecondsSince(start);
      if (!r.ok()) return r.status();
      const int64_t lines = std::count(r->out.begin(), r->out.end(), '\n');
      ScenarioResult& res = Result("kcat-ceiling");
      res.Set("input_records", static_cast<double>(lines));
      res.Set("seconds", s);
      res.Set("input_records_per_s", lines / s);
      res.Set("load_avg_1m", LoadAverage1m());
      if (lines != ods->records) {
        res.Note(absl::StrCat("kcat read ", lines, " records, the topic holds ", ods->records));
      }
      Log(absl::StrCat("kcat-ceiling: ", lines, " records in ", s, " s"));
      return absl::OkStatus();
    };
    if (auto st = run(); !st.ok()) Fail("kcat-ceiling", st);
  }
  // Each floor runs right after its job, on the same broker and data (docs/BENCHMARKS.md).
  if (need_log_split) {
    std::vector<std::string> outputs;
    if (auto st =
            RunSplitJob(stack, "log-split", "log-split", kOdsLog, Want("log-split"), &outputs);
        !st.ok()) {
      Fail("log-split", st);
      for (const char* s : {"dau", "baseline-dau", "kafka-pipe-floor", "consume-floor"}) {
        if (Want(s)) Fail(s, absl::FailedPreconditionError("log-split (its input) failed"));
      }
      return absl::OkStatus();
    }
    if (Want("kafka-pipe-floor")) {
      if (auto st = RunPipeFloor(stack, "kafka-pipe-floor", "log-split", kOdsLog, outputs);
          !st.ok()) {
        Fail("kafka-pipe-floor", st);
      }
    }
  }
  if (need_db_split) {
    std::vector<std::string> outputs;
    if (auto st = RunSplitJob(stack, "db-split", "db-split", kOdsDb, Want("db-split"), &outputs);
        !st.ok()) {
      Fail("db-split", st);
      for (const char* s :
           {"dau", "order-wide", "baseline-dau", "kafka-pipe-floor-db", "consume-floor"}) {
        if (Want(s)) Fail(s, absl::FailedPreconditionError("db-split (its input) failed"));
      }
      return absl::OkStatus();
    }
    if (Want("kafka-pipe-floor-db")) {
      if (auto st = RunPipeFloor(stack, "kafka-pipe-floor-db", "db-split", kOdsDb, outputs);
          !st.ok()) {
        Fail("kafka-pipe-floor-db", st);
      }
    }
  }
  if (Want("consume-floor")) {
    if (auto st = RunConsumeFloor(stack); !st.ok()) Fail("consume-floor", st);
  }
  // Retention check: the mock drops the oldest records beyond ~5 MB per partition.
  for (const char* topic : {kOdsLog, kPage, kOrderInfoI, kOrderDetailI}) {
    if (auto st = CheckNothingDropped(**counter, topic); !st.ok()) {
      Log(absl::StrCat("WARNING: ", st.message()));
    }
  }

  auto es_job = [&](const std::string& job, std::vector<std::string> topics) -> absl::Status {
    int64_t input = 0;
    for (const auto& t : topics) input += (*counter)->Records(t);
    RtdwdConfig c;
    c.jobs = {job};
    int port = 0;
    std::string state;
    std::string config = WriteRtdwdConfig(stack, job, c, &port, &state);
    Log(absl::StrCat(job, ": ", input, " records of ", absl::StrJoin(topics, " + ")));
    JobRunSpec spec;
    spec.label = job;
    spec.jobs = {job};
    spec.expected[job] = [input] { return input; };
    auto out = RunJobsToCompletion(Opts(config, port, {job}, stack.dir().Sub(job + ".log")), spec);
    if (!out.ok()) return out.status();
    Log(absl::StrCat(job, ": ", input, " records in ", out->seconds, " s"));
    ScenarioResult& r = Result(job);
    AddRunFigures(*out, job, static_cast<double>(input), &r);
    const Metrics& m = out->final_metrics;
    r.Set("documents", m.Job("rtdw_documents_total", job));
    r.Set("documents_per_s",
          out->seconds > 0 ? m.Job("rtdw_documents_total", job) / out->seconds : 0);
    r.Set("dims_missing", m.Job("rtdw_dims_missing_total", job));
    r.Set("dead_letter_records", m.Job("rtdw_dead_letter_records_total", job));
    r.Set("p99_batch_latency_ms_bucket",
          HistogramQuantile(m.Buckets("rtdw_batch_seconds", job), 0.99) * 1000);
    r.Set("p99_delivery_latency_ms_bucket",
          HistogramQuantile(m.Buckets("rtdw_delivery_seconds", job), 0.99) * 1000);
    return absl::OkStatus();
  };
  if (Want("dau")) {
    if (auto st = es_job("dau", {kPage}); !st.ok()) Fail("dau", st);
  }
  if (Want("order-wide")) {
    if (auto st = es_job("order-wide", {kOrderInfoI, kOrderDetailI}); !st.ok()) {
      Fail("order-wide", st);
    }
  }
  if (Want("baseline-dau")) {
    if (auto st = RunBaseline(stack); !st.ok()) Fail("baseline-dau", st);
  }
  return absl::OkStatus();
}

absl::Status Runner::RunBaseline(Stack& stack) {
  auto counter = TopicCounter::Create(stack.bootstrap());
  if (!counter.ok()) return counter.status();
  const int64_t input = (*counter)->Records(kPage);
  const std::string progress = stack.dir().Sub("baseline.progress");
  const int64_t start_ms = NowMs();
  Log(absl::StrCat("baseline-dau: ", input, " records of ", kPage, ", parallelism ",
                   o_.baseline_parallelism));
  auto r =
      RunOk({testing::BinDir() + "/rtdw-baseline-dau", "--brokers", stack.bootstrap(), "--topic",
             kPage, "--redis", absl::StrCat("127.0.0.1:", stack.redis_port()), "--es-url",
             stack.es_url(), "--parallelism", absl::StrCat(o_.baseline_parallelism),
             "--exit-when-idle", "1", "--progress-file", progress},
            std::chrono::seconds(1800));
  if (!r.ok()) return r.status();
  rapidjson::Document d;
  d.Parse(r->out.c_str(), r->out.size());
  if (d.HasParseError() || !d.IsObject()) {
    return absl::InternalError(absl::StrCat("baseline printed no stats: ", r->out));
  }
  const double seconds = d["seconds"].GetDouble();
  const double records = static_cast<double>(d["records"].GetUint64());
  ScenarioResult& res = Result("baseline-dau");
  res.Set("input_records", records);
  res.Set("seconds", seconds);
  res.Set("input_records_per_s", seconds > 0 ? records / seconds : 0);
  res.Set("documents", static_cast<double>(d["documents"].GetUint64()));
  res.Set("documents_per_s", seconds > 0 ? d["documents"].GetUint64() / seconds : 0);
  res.Set("redis_round_trips", static_cast<double>(d["redis_round_trips"].GetUint64()));
  res.Set("parallelism_workers", o_.baseline_parallelism);
  res.Set("load_avg_1m", LoadAverage1m());
  if (records != input) {
    res.Note(absl::StrCat("the baseline read ", records, " records, the topic holds ", input));
  }
  // records/s over time from its progress file (epoch ms, records, documents).
  std::ifstream in(progress);
  Series s;
  s.name = "baseline-dau records/s";
  int64_t ms = 0, prev_ms = start_ms;
  double recs = 0, docs = 0, prev = 0;
  while (in >> ms >> recs >> docs) {
    if (ms > prev_ms) {
      s.points.emplace_back((ms - start_ms) / 1000.0, (recs - prev) * 1000.0 / (ms - prev_ms));
    }
    prev_ms = ms;
    prev = recs;
  }
  res.series.push_back(std::move(s));
  Log(absl::StrCat("baseline-dau: ", records, " records in ", seconds, " s"));
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------------------------
// all-jobs (drain, then sustained at the target rate) on one running rtdwd; then latency, at half
// the drain's rate, on a fresh stack (LatencyPhase).

absl::Status Runner::AllJobsPhase(double* latency_rate) {
  *latency_rate = 0;
  if (!Want("all-jobs") && !Want("latency")) return absl::OkStatus();
  Stack stack;
  // At least 32 partitions whatever the size: the sustained phase may build a lag of up to
  // kMaxOdsLag records, which the mock must keep (~5 MB compressed per partition).
  const int partitions = std::max(32, PartitionsFor(o_.records));
  if (auto st = stack.Start(Parts(partitions)); !st.ok()) return st;
  const std::string day = Today();
  Log(absl::StrCat("all-jobs stack: kafka ", stack.bootstrap(), " (", partitions,
                   " partitions); generating ", sizes_.events, " app-log records and ",
                   sizes_.orders, " orders"));
  if (auto st = GenLogs(stack, day, sizes_, 1); !st.ok()) return st;
  if (auto st = GenDb(stack, day, sizes_, 1); !st.ok()) return st;
  auto counter_or = TopicCounter::Create(stack.bootstrap());
  if (!counter_or.ok()) return counter_or.status();
  TopicCounter& counter = **counter_or;
  const int64_t n_log = counter.Records(kOdsLog);
  const int64_t n_db = counter.Records(kOdsDb);

  auto daemon = StartAllFourJobs(stack, "all-jobs");
  if (!daemon.ok()) return daemon.status();

  // Drain: the four jobs as deployed, on a backlog of a day's app logs and change data.
  JobRunSpec spec;
  spec.label = "all-jobs";
  spec.jobs = AllFourJobs();
  spec.expected["log-split"] = [n_log] { return n_log; };
  spec.expected["db-split"] = [n_db] { return n_db; };
  spec.expected["dau"] = [&] { return counter.Records(kPage); };
  spec.expected["order-wide"] = [&] {
    return counter.Records(kOrderInfoI) + counter.Records(kOrderDetailI);
  };
  Log(absl::StrCat("all-jobs: draining ", n_log, " app-log + ", n_db, " change records"));
  auto out = WaitForJobs(**daemon, spec);
  if (!out.ok()) return out.status();
  const double page = counter.Records(kPage);
  const double log_split_s = out->done_at["log-split"];
  ScenarioResult& r = Result("all-jobs");
  AddRunFigures(*out, "log-split", static_cast<double>(n_log + n_db), &r);
  r.figures.erase(std::remove_if(r.figures.begin(), r.figures.end(),
                                 [](const auto& f) { return f.first == "mean_batch_records"; }),
                  r.figures.end());
  r.Set("ods_log_records_per_s", log_split_s > 0 ? n_log / log_split_s : 0);
  r.Set("page_records", page);
  r.Set("page_records_per_s", out->seconds > 0 ? page / out->seconds : 0);
  r.Set("dau_documents", out->final_metrics.Job("rtdw_documents_total", "dau"));
  r.Set("order_wide_documents", out->final_metrics.Job("rtdw_documents_total", "order-wide"));
  Log(absl::StrCat("all-jobs: drained in ", out->seconds, " s"));

  const double page_share = n_log > 0 ? page / n_log : 0.85;
  *latency_rate = log_split_s > 0 ? 0.5 * n_log / log_split_s : 0;

  if (Want("all-jobs")) {
    // The live traffic: yesterday's day (fresh de-dup keys; still inside the 2-day retention),
    // another seed.
    const double sustain_s = std::clamp<double>(o_.records / 50000.0, 3, 20);
    gen::LogGenOptions go = LiveTraffic(sizes_);
    go.events = static_cast<int64_t>((kTargetPageRate / page_share) * sustain_s * 1.2) + 1000;
    if (auto st = gen::ValidateLogGenOptions(go); !st.ok()) return st;
    gen::LogGenerator gen(go);
    if (auto st = Sustained(stack, **daemon, gen, page_share); !st.ok()) {
      r.Note(absl::StrCat("sustained phase: ", st.message()));
    }
  }
  // The daemon and the stack (rtdw-kafka-mock, Redis, rtdw-es-lite) stop here, before the latency
  // stack starts: the two never share the cores.
  int code = (*daemon)->Stop();
  if (code != 0) Log(absl::StrCat("all-jobs: rtdwd exited with ", code));
  return absl::OkStatus();
}

// latency: a fresh stack, so that the figures measure rtdw and not the history the mock holds.
// librdkafka's mock walks every message set a partition holds on each Fetch
// (rd_kafka_mock_msgset_find), so after the all-jobs drain and sustained phase its fetch cycle —
// 85-90 % of the probes' latency — grew with what came before (docs/BENCHMARKS.md, h6-latency).
// The stack has as many partitions as all-jobs', the four jobs run in one rtdwd as deployed, and
// the dimension rows (rtdw-gen db's users and provinces, through db-split) are in Redis first, as
// they were after the drain.
absl::Status Runner::LatencyPhase(double rate) {
  if (rate <= 0) return absl::FailedPreconditionError("no maximum rate measured (all-jobs drain)");
  Stack stack;
  const int partitions = std::max(32, PartitionsFor(o_.records));
  if (auto st = stack.Start(Parts(partitions)); !st.ok()) return st;
  const std::string day = Today();
  // The dimension rows only: every user (and their updates of the day) and province, no orders.
  Sizes dims = sizes_;
  dims.orders = 0;
  if (auto st = GenDb(stack, day, dims, 1); !st.ok()) return st;
  auto counter_or = TopicCounter::Create(stack.bootstrap());
  if (!counter_or.ok()) return counter_or.status();
  TopicCounter& counter = **counter_or;
  const int64_t n_db = counter.Records(kOdsDb);
  Log(absl::StrCat("latency stack: kafka ", stack.bootstrap(), " (", partitions,
                   " partitions, fresh); ", n_db, " change records for the dimensions"));

  auto daemon = StartAllFourJobs(stack, "latency");
  if (!daemon.ok()) return daemon.status();
  JobRunSpec spec;
  spec.label = "latency-dims";
  spec.jobs = {"db-split", "order-wide"};
  spec.expected["db-split"] = [n_db] { return n_db; };
  spec.expected["order-wide"] = [&] {
    return counter.Records(kOrderInfoI) + counter.Records(kOrderDetailI);
  };
  if (auto out = WaitForJobs(**daemon, spec); !out.ok()) return out.status();
  // The invariant of this phase: the window's two topics hold nothing before it.
  for (const char* topic : {kOdsLog, kPage}) {
    if (const int64_t n = counter.Records(topic); n != 0) {
      return absl::InternalError(absl::StrCat("latency stack not fresh: ", topic, " holds ", n,
                                              " records before the window"));
    }
  }

  const double latency_s = std::clamp<double>(o_.records / 33000.0, 5, 30);
  gen::LogGenOptions go = LiveTraffic(sizes_);
  go.events = static_cast<int64_t>(rate * latency_s * 1.2) + 1000;
  if (auto st = gen::ValidateLogGenOptions(go); !st.ok()) return st;
  gen::LogGenerator gen(go);
  absl::Status st = Latency(stack, **daemon, gen, rate);
  if (st.ok()) {
    Result("latency").Note(absl::StrCat(
        "ran on a fresh stack (new rtdw-kafka-mock, ", partitions,
        " partitions; Redis with the dimension rows; rtdw-es-lite; the four jobs in one rtdwd), "
        "not on the all-jobs daemon's: the mock's fetch time grows with the message sets it "
        "holds"));
  }
  int code = (*daemon)->Stop();
  if (code != 0) Log(absl::StrCat("latency: rtdwd exited with ", code));
  return st;
}

// Least-squares slope of y over x.
double Slope(const std::vector<std::pair<double, double>>& pts) {
  if (pts.size() < 2) return 0;
  double sx = 0, sy = 0, sxx = 0, sxy = 0;
  for (const auto& [x, y] : pts) {
    sx += x;
    sy += y;
    sxx += x * x;
    sxy += x * y;
  }
  const double n = static_cast<double>(pts.size());
  const double den = n * sxx - sx * sx;
  return den == 0 ? 0 : (n * sxy - sx * sy) / den;
}

absl::Status Runner::Sustained(Stack& stack, Rtdwd& daemon, gen::LogGenerator& gen,
                               double page_share) {
  ScenarioResult& r = Result("all-jobs");
  const double ods_rate = kTargetPageRate / page_share;
  const double seconds = std::clamp<double>(o_.records / 50000.0, 3, 20);
  auto producer = MakeProducer(stack.bootstrap());
  if (!producer.ok()) return producer.status();
  auto counter_or = TopicCounter::Create(stack.bootstrap());
  if (!counter_or.ok()) return counter_or.status();
  TopicCounter& counter = **counter_or;
  Log(absl::StrCat("all-jobs: sustained traffic, ", static_cast<int64_t>(ods_rate),
                   " app-log records/s (= ", kTargetPageRate, " page records/s) for ", seconds,
                   " s"));
  Metrics m0 = daemon.Scrape();
  const double ls0 = m0.Job("rtdw_records_in_total", "log-split");
  const double dau0 = m0.Job("rtdw_records_in_total", "dau");
  const double page0 = static_cast<double>(counter.Records(kPage));
  PacedProducer pp(producer->get(), kOdsLog, ods_rate, seconds,
                   [&](std::string* key, std::string* value) { return gen.Next(key, value); });
  const auto start = Clock::now();
  pp.Start();
  Series lag_log{"all-jobs: log-split lag (records)", {}};
  Series lag_dau{"all-jobs: dau lag (records)", {}};
  Series rate_in{"all-jobs: dau intake under the sustained load (page records per s)", {}};
  double prev_t = 0, prev_dau = dau0;
  double window_dau_in = 0, window_t = 0, window_end = seconds;
  std::vector<std::pair<double, double>> total_lag;
  double drained_at = -1;
  while (true) {
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    const double t = SecondsSince(start);
    Metrics m = daemon.Scrape();
    if (m.empty()) continue;
    const double ls = m.Job("rtdw_records_in_total", "log-split") - ls0;
    const double dau = m.Job("rtdw_records_in_total", "dau");
    const double page = static_cast<double>(counter.Records(kPage)) - page0;
    const double produced = static_cast<double>(pp.produced());
    const double l1 = std::max(0.0, produced - ls);
    const double l2 = std::max(0.0, page - (dau - dau0));
    lag_log.points.emplace_back(t, l1);
    lag_dau.points.emplace_back(t, l2);
    rate_in.points.emplace_back(t, (dau - prev_dau) / (t - prev_t));
    prev_t = t;
    prev_dau = dau;
    const bool producing = t <= window_end;
    if (producing) {
      window_dau_in = dau - dau0;
      window_t = t;
      total_lag.emplace_back(t, l1 + l2);
      if (l1 > kMaxOdsLag || l2 > kMaxPageLag) {
        pp.Stop();
        window_end = t;
        r.Note(absl::StrCat("sustained load stopped after ", static_cast<int64_t>(t),
                            " s: the lag passed ", static_cast<int64_t>(l1), " app-log / ",
                            static_cast<int64_t>(l2), " page records (the mock's retention)"));
      }
    }
    if (!producing && l1 == 0 && l2 == 0 && produced == pp.produced()) {
      drained_at = t;
      break;
    }
    if (t > window_end + 240) break;
  }
  pp.Join();
  if (!pp.status().ok()) return pp.status();
  const double offered = pp.produced() / std::max(pp.elapsed(), 1e-9);
  // The lag's growth over the second half of the load window.
  std::vector<std::pair<double, double>> second_half;
  for (const auto& p : total_lag) {
    if (p.first >= window_end / 2) second_half.push_back(p);
  }
  const double slope = Slope(second_half);
  const double max_lag =
      std::max_element(lag_log.points.begin(), lag_log.points.end(),
                       [](auto& a, auto& b) { return a.second < b.second; })
          ->second +
      std::max_element(lag_dau.points.begin(), lag_dau.points.end(), [](auto& a, auto& b) {
        return a.second < b.second;
      })->second;
  r.Set("sustain_target_page_records_per_s", kTargetPageRate);
  r.Set("sustain_offered_ods_records_per_s", offered);
  r.Set("sustain_offered_page_records_per_s", offered * page_share);
  r.Set("sustain_seconds", window_end);
  r.Set("sustain_dau_page_records_per_s", window_t > 0 ? window_dau_in / window_t : 0);
  r.Set("sustain_lag_growth_records_per_s", slope);
  r.Set("sustain_max_lag_records", max_lag);
  r.Set("sustain_drain_after_s", drained_at < 0 ? -1 : drained_at - window_end);
  // Sustained: the offered rate reached the target, and the lag stayed bounded (it grew by less
  // than 2% of the offered rate over the second half of the window, and drained within 2 s).
  const bool offered_ok = offered * page_share >= 0.95 * kTargetPageRate;
  const bool bounded = slope < 0.02 * offered && drained_at >= 0 && drained_at - window_end <= 2 &&
                       window_end >= seconds;
  r.Set("sustain_ok", offered_ok && bounded ? 1 : 0);
  if (!offered_ok) {
    r.Note(absl::StrCat("the load generator offered only ",
                        static_cast<int64_t>(offered * page_share),
                        " page records/s (it shares the machine's cores with the pipeline)"));
  }
  if (pp.ran_dry()) r.Note("the generator ran out of records");
  r.series.push_back(std::move(lag_log));
  r.series.push_back(std::move(lag_dau));
  r.series.push_back(std::move(rate_in));
  Log(absl::StrCat("all-jobs: sustained: offered ", static_cast<int64_t>(offered * page_share),
                   " page rec/s, dau took ",
                   static_cast<int64_t>(window_t > 0 ? window_dau_in / window_t : 0),
                   " rec/s, lag growth ", static_cast<int64_t>(slope), " rec/s"));
  if (drained_at < 0) {
    return absl::DeadlineExceededError("the pipeline did not catch up within 240 s of the load");
  }
  return absl::OkStatus();
}

absl::Status Runner::Latency(Stack& stack, Rtdwd& daemon, gen::LogGenerator& gen, double rate) {
  ScenarioResult& r = Result("latency");
  if (rate <= 0) return absl::FailedPreconditionError("no maximum rate measured");
  const double seconds = std::clamp<double>(o_.records / 33000.0, 5, 30);
  auto producer = MakeProducer(stack.bootstrap());
  if (!producer.ok()) return producer.status();
  EsClientOptions eo;
  eo.urls = {stack.es_url()};
  eo.warn = [](std::string_view) {};
  auto es = EsClient::Create(eo);
  if (!es.ok()) return es.status();

  // Warm the producer up (metadata, idempotent producer id, connections) so that no probe
  // waits for it: one ordinary record, flushed, and a second for the pipeline to pass it on.
  {
    std::string key, value;
    if (gen.Next(&key, &value)) {
      if (auto st = (*producer)->Produce(kOdsLog, key, value); !st.ok()) return st;
    }
    if (auto st = (*producer)->Flush(std::chrono::seconds(30)); !st.ok()) return st;
    std::this_thread::sleep_for(std::chrono::seconds(1));
  }
  struct Probe {
    std::string id;
    std::string index;
    int64_t produced_ms;
  };
  std::mutex mu;
  std::deque<Probe> outstanding;
  std::vector<std::pair<double, double>> latencies;  // (seconds since start, ms)
  const int64_t every = std::max<int64_t>(1, static_cast<int64_t>(rate / 200));
  int64_t seq = 0, probes = 0;
  const std::string run_id = absl::StrCat(NowMs() % 1000000);
  // rtdwd's histograms hold what came before the window (the dimension rows' drain): the
  // window's figures are the difference from here to its end (BucketsSince).
  const Metrics before = daemon.Scrape();
  const auto start = Clock::now();
  const int64_t start_ms = NowMs();
  Log(absl::StrCat("latency: ", static_cast<int64_t>(rate), " app-log records/s (half of the ",
                   "all-jobs drain's) for ", seconds, " s; one probe every ", every, " records"));
  PacedProducer pp(producer->get(), kOdsLog, rate, seconds,
                   [&](std::string* key, std::string* value) {
                     if (++seq % every == 0) {
                       const int64_t now = NowMs();
                       Probe p{absl::StrCat("probe-", run_id, "-", probes++),
                               absl::StrCat("gmall_dau_info_", ShanghaiDay(now)), now};
                       *key = p.id;
                       *value = OdsFirstPage(p.id, now, 1 + probes % 1000, 1 + probes % 34);
                       std::lock_guard<std::mutex> lock(mu);
                       outstanding.push_back(std::move(p));
                       return true;
                     }
                     return gen.Next(key, value);
                   });
  std::atomic<bool> producing{true};
  std::thread poller([&] {
    auto deadline = Clock::time_point::max();
    while (true) {
      if (!producing.load() && deadline == Clock::time_point::max()) {
        deadline = Clock::now() + std::chrono::seconds(30);
      }
      std::vector<Probe> batch;
      {
        std::lock_guard<std::mutex> lock(mu);
        if (outstanding.empty() && !producing.load()) return;
        for (size_t i = 0; i < outstanding.size() && i < 500; ++i) batch.push_back(outstanding[i]);
      }
      if (Clock::now() > deadline) return;
      if (batch.empty()) {
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
        continue;
      }
      std::string body = "{\"docs\":[";
      for (size_t i = 0; i < batch.size(); ++i) {
        absl::StrAppend(&body, i ? "," : "", "{\"_index\":\"", batch[i].index, "\",\"_id\":\"",
                        batch[i].id, "\"}");
      }
      body += "]}";
      auto resp = (*es)->Perform("POST", "/_mget?_source=false", body);
      const int64_t now = NowMs();
      if (resp.ok() && resp->status == 200) {
        rapidjson::Document d;
        d.Parse(resp->body.c_str(), resp->body.size());
        std::set<std::string> found;
        if (!d.HasParseError() && d.IsObject() && d.HasMember("docs") && d["docs"].IsArray()) {
          for (const auto& doc : d["docs"].GetArray()) {
            if (doc.HasMember("found") && doc["found"].IsBool() && doc["found"].GetBool()) {
              found.insert(doc["_id"].GetString());
            }
          }
        }
        std::lock_guard<std::mutex> lock(mu);
        std::deque<Probe> rest;
        for (auto& p : outstanding) {
          if (found.count(p.id)) {
            latencies.emplace_back((p.produced_ms - start_ms) / 1000.0,
                                   static_cast<double>(now - p.produced_ms));
          } else {
            rest.push_back(std::move(p));
          }
        }
        outstanding.swap(rest);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  });
  pp.Start();
  pp.Join();
  producing = false;
  poller.join();
  if (!pp.status().ok()) return pp.status();
  const double achieved = pp.produced() / std::max(pp.elapsed(), 1e-9);
  std::vector<double> ms;
  for (const auto& [t, l] : latencies) ms.push_back(l);
  r.Set("target_ods_records_per_s", rate);
  r.Set("input_records_per_s", achieved);
  r.Set("seconds", SecondsSince(start));
  r.Set("probes", static_cast<double>(probes));
  r.Set("probes_lost", static_cast<double>(outstanding.size()));
  r.Set("p50_latency_ms", Percentile(ms, 50));
  r.Set("p95_latency_ms", Percentile(ms, 95));
  r.Set("p99_latency_ms", Percentile(ms, 99));
  r.Set("max_latency_ms", ms.empty() ? 0 : *std::max_element(ms.begin(), ms.end()));
  double mean = 0;
  for (double v : ms) mean += v;
  r.Set("mean_latency_ms", ms.empty() ? 0 : mean / ms.size());
  const Metrics after = daemon.Scrape();
  auto window_p99_ms = [&](const std::string& histogram, const std::string& job) {
    return HistogramQuantile(
               BucketsSince(after.Buckets(histogram, job), before.Buckets(histogram, job)), 0.99) *
           1000;
  };
  r.Set("dau_p99_delivery_ms_bucket", window_p99_ms("rtdw_delivery_seconds", "dau"));
  r.Set("dau_p99_batch_ms_bucket", window_p99_ms("rtdw_batch_seconds", "dau"));
  r.Set("log_split_p99_batch_ms_bucket", window_p99_ms("rtdw_batch_seconds", "log-split"));
  // Records per batch in the window: with Poll returning on the first record, a batch is what
  // the consumer's last fetch brought, so batch / rate is the time between two fetch responses.
  for (const std::string job : {"log-split", "dau"}) {
    const double batches =
        after.Job("rtdw_batches_total", job) - before.Job("rtdw_batches_total", job);
    const double records =
        after.Job("rtdw_records_in_total", job) - before.Job("rtdw_records_in_total", job);
    r.Set(absl::StrCat(job == "dau" ? "dau" : "log_split", "_mean_batch_records"),
          batches > 0 ? records / batches : 0);
  }
  // DAU documents written in the window (de-dup: a device's first page of the day, and the probes).
  const double docs =
      after.Job("rtdw_documents_total", "dau") - before.Job("rtdw_documents_total", "dau");
  r.Set("dau_documents_per_s", docs / std::max(pp.elapsed(), 1e-9));
  if (achieved < 0.95 * rate) {
    r.Note(absl::StrCat("the load generator reached only ", static_cast<int64_t>(achieved), " of ",
                        static_cast<int64_t>(rate), " records/s"));
  }
  Series s{"latency: probe latency (ms) by produce time (s)", latencies};
  r.series.push_back(std::move(s));
  Log(absl::StrCat("latency: ", ms.size(), " probes, p50 ", Percentile(ms, 50), " ms, p99 ",
                   Percentile(ms, 99), " ms"));
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------------------------
// recovery: dau killed with journal entries owed (ES refusing every item with 429 meanwhile) and
// a lag on its topic; time from restart to caught up.

absl::Status Runner::Recovery() {
  const int64_t journaled = std::max<int64_t>(2000, o_.records / 10);
  const int64_t lag = std::max<int64_t>(20000, o_.records);
  Stack stack;
  const int partitions = PartitionsFor(lag);
  if (auto st = stack.Start(Parts(partitions)); !st.ok()) return st;
  const std::string day = Today();
  auto producer = MakeProducer(stack.bootstrap());
  if (!producer.ok()) return producer.status();
  auto counter = TopicCounter::Create(stack.bootstrap());
  if (!counter.ok()) return counter.status();
  ScenarioResult& r = Result("recovery");

  // 1. `journaled` first pages of distinct devices: one document each.
  for (int64_t i = 0; i < journaled; ++i) {
    std::string mid = absl::StrCat("rec_", i);
    if (auto st = (*producer)->Produce(
            kPage, mid, DwdPage(mid, TsInDay(day, i, journaled), true, 0, 1 + i % 34));
        !st.ok()) {
      return st;
    }
  }
  if (auto st = (*producer)->Flush(std::chrono::seconds(120)); !st.ok()) return st;

  // 2. ES refuses every bulk item (429, retried forever); dau journals its batches until its
  //    backlog is full (4 entries) and polling pauses; then it is killed.
  auto faults =
      stack.es().Perform("POST", "/_rtdw/faults", "{\"bulk_item_429_fraction\":1.0,\"seed\":1}");
  if (!faults.ok() || faults->status != 200) return absl::InternalError("cannot set ES faults");
  RtdwdConfig c;
  c.jobs = {"dau"};
  // Batches of up to half the journaled records: the whole set is committed (and owed) in at
  // most 4 entries, the backlog limit, however the consumer's prefetch splits it.
  c.batch_max_records = std::max<int64_t>(500, (journaled + 1) / 2);
  c.batch_max_ms = 2000;
  int port = 0;
  std::string state;
  std::string config = WriteRtdwdConfig(stack, "recovery", c, &port, &state);
  {
    auto d = Rtdwd::Start(Opts(config, port, {"dau"}, stack.dir().Sub("recovery-1.log")));
    if (!d.ok()) return d.status();
    bool full = testing::WaitFor(
        [&] {
          Metrics m = (*d)->Scrape();
          return m.Job("rtdw_journal_backlog", "dau") >= 4 ||
                 (m.Job("rtdw_records_in_total", "dau") >= journaled &&
                  m.Job("rtdw_journal_backlog", "dau") >= 1);
        },
        std::chrono::seconds(120));
    if (!full) return absl::DeadlineExceededError("dau never journaled its batches");
    (*d)->Kill9();
  }
  // 3. The lag: realistic page records (about one in five a first page).
  const int64_t pool = std::max<int64_t>(1000, lag / 5);
  std::set<int64_t> lag_first;
  for (int64_t i = 0; i < lag; ++i) {
    const int64_t dev = (i * 7919) % pool;
    const bool first = i % 5 == 0;
    if (first) lag_first.insert(dev);
    std::string mid = absl::StrCat("lag_", dev);
    if (auto st = (*producer)->Produce(
            kPage, mid,
            DwdPage(mid, TsInDay(day, i, lag), first, 1 + dev % sizes_.users, 1 + dev % 34));
        !st.ok()) {
      return st;
    }
  }
  if (auto st = (*producer)->Flush(std::chrono::seconds(300)); !st.ok()) return st;
  (void)stack.es().Perform("DELETE", "/_rtdw/faults");

  // What is owed, from the store (the operator's view).
  auto journal = RunOk({testing::BinDir() + "/rtdw", "--state-dir", state, "--job", "dau", "--json",
                        "journal", "list"},
                       std::chrono::seconds(60));
  auto offsets = RunOk({testing::BinDir() + "/rtdw", "--state-dir", state, "--job", "dau", "--json",
                        "offsets", "show"},
                       std::chrono::seconds(60));
  if (!journal.ok()) return journal.status();
  if (!offsets.ok()) return offsets.status();
  int64_t owed_docs = 0, owed_entries = 0, committed = 0;
  rapidjson::Document j;
  j.Parse(journal->out.c_str());
  if (!j.HasParseError() && j.HasMember("jobs")) {
    for (const auto& job : j["jobs"].GetArray()) {
      for (const auto& e : job["entries"].GetArray()) {
        owed_docs += e["docs"].GetInt64();
        ++owed_entries;
      }
    }
  }
  rapidjson::Document o;
  o.Parse(offsets->out.c_str());
  if (!o.HasParseError() && o.HasMember("jobs")) {
    for (const auto& job : o["jobs"].GetArray()) {
      for (const auto& e : job["offsets"].GetArray()) committed += e["offset"].GetInt64();
    }
  }
  const int64_t total = (*counter)->Records(kPage);
  const int64_t lag_records = total - committed;
  Log(absl::StrCat("recovery: dau killed with ", owed_entries, " journal entries (", owed_docs,
                   " documents) owed and ", lag_records, " records of lag"));

  // 4. Restart and time it.
  auto d = Rtdwd::Start(Opts(config, port, {"dau"}, stack.dir().Sub("recovery-2.log")));
  if (!d.ok()) return d.status();
  double replay_done = -1, done = -1;
  Series progress{"recovery: records consumed after the restart", {}};
  Series delivered{"recovery: documents delivered after the restart", {}};
  auto last_progress = Clock::now();
  double last_in = -1, last_del = -1;
  while (true) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    Metrics m = (*d)->Scrape();
    const double t = SecondsSince((*d)->started());
    if (m.empty()) {
      if (!(*d)->Running()) return absl::InternalError("rtdwd exited during recovery");
      continue;
    }
    const double in = m.Job("rtdw_records_in_total", "dau");
    const double del = m.Job("rtdw_es_documents_delivered_total", "dau");
    if (in != last_in || del != last_del) {
      last_in = in;
      last_del = del;
      last_progress = Clock::now();
      progress.points.emplace_back(t, in);
      delivered.points.emplace_back(t, del);
    }
    if (replay_done < 0 && (del >= owed_docs || in > 0)) replay_done = t;
    if (in >= lag_records && m.Job("rtdw_journal_backlog", "dau") == 0 &&
        del + m.Job("rtdw_es_documents_rejected_total", "dau") >=
            m.Job("rtdw_documents_total", "dau") + owed_docs) {
      done = t;
      break;
    }
    if (Clock::now() - last_progress > std::chrono::seconds(60)) {
      return absl::DeadlineExceededError(
          absl::StrCat("recovery made no progress for 60 s; log:\n", (*d)->LogTail()));
    }
  }
  (*d)->Stop();
  // Every journaled document and every lag device must be in ES.
  (void)stack.es().Refresh("gmall_dau_info_*");
  auto count = stack.es().Count(absl::StrCat("gmall_dau_info_", day));
  const int64_t expected_docs = journaled + static_cast<int64_t>(lag_first.size());
  r.Set("journal_entries_owed", static_cast<double>(owed_entries));
  r.Set("journaled_docs", static_cast<double>(owed_docs));
  r.Set("lag_records", static_cast<double>(lag_records));
  r.Set("replay_s", replay_done);
  r.Set("recovery_s", done);
  r.Set("input_records_per_s", done > replay_done ? lag_records / (done - replay_done) : 0);
  r.Set("docs_missing", count.ok() ? static_cast<double>(expected_docs) - *count : -1);
  r.series.push_back(std::move(progress));
  r.series.push_back(std::move(delivered));
  Log(absl::StrCat("recovery: caught up ", done, " s after the restart (replay ", replay_done,
                   " s)"));
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------------------------
// memory: peak RSS of rtdwd --job dau with 1x, 5x, 10x `records` distinct mids in one day.

absl::Status Runner::Memory() {
  const std::vector<int64_t> levels = {o_.records, 5 * o_.records, 10 * o_.records};
  const int64_t total = levels.back();
  Stack stack;
  if (auto st = stack.Start(Parts(32)); !st.ok()) return st;
  const std::string day = Today();
  std::unique_ptr<NullEs> null_es;
  RtdwdConfig c;
  c.jobs = {"dau"};
  if (o_.memory_sink == "null") {
    auto n = NullEs::Start();
    if (!n.ok()) return n.status();
    null_es = std::move(*n);
    c.es_url = null_es->url();
  }
  int port = 0;
  std::string state;
  std::string config = WriteRtdwdConfig(stack, "memory", c, &port, &state);
  auto producer = MakeProducer(stack.bootstrap());
  if (!producer.ok()) return producer.status();
  auto d = Rtdwd::Start(Opts(config, port, {"dau"}, stack.dir().Sub("memory.log")));
  if (!d.ok()) return d.status();
  ScenarioResult& r = Result("memory");
  Log(absl::StrCat("memory: ", total, " distinct mids into dau (block cache ", "256 MB default)",
                   o_.memory_sink == "null" ? ", ES = rtdw-bench's null bulk sink" : ""));

  std::atomic<double> consumed{0};
  std::atomic<bool> stop{false};
  absl::Status produce_status;
  const int64_t window = 400000;  // records ahead of the consumer (the mock's retention)
  std::thread producer_thread([&] {
    for (int64_t i = 0; i < total && !stop.load(); ++i) {
      while (i - static_cast<int64_t>(consumed.load()) > window && !stop.load()) {
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
      }
      std::string mid = absl::StrCat("mid_", i);
      if (auto st = (*producer)->Produce(kPage, mid,
                                         DwdPage(mid, TsInDay(day, i, total), true, 0, 1 + i % 34));
          !st.ok()) {
        produce_status = st;
        return;
      }
    }
    produce_status = (*producer)->Flush(std::chrono::seconds(120));
  });
  Series rss{"memory: rtdwd RSS (MB) by distinct mids", {}};
  size_t next_level = 0;
  const auto start = Clock::now();
  auto last_progress = Clock::now();
  double last_in = -1, peak = 0;
  absl::Status status;
  while (true) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    Metrics m = (*d)->Scrape();
    auto mem = ReadProcMemory((*d)->pid());
    if (!mem) {
      status = absl::InternalError(absl::StrCat("rtdwd died; log:\n", (*d)->LogTail()));
      break;
    }
    peak = std::max(peak, mem->hwm_mb);
    if (m.empty()) continue;
    const double in = m.Job("rtdw_records_in_total", "dau");
    consumed = in;
    if (in != last_in) {
      last_in = in;
      last_progress = Clock::now();
      rss.points.emplace_back(in, mem->rss_mb);
    }
    while (next_level < levels.size() && in >= levels[next_level]) {
      r.Set(absl::StrCat("peak_rss_mb_at_", levels[next_level], "_mids"), mem->hwm_mb);
      Log(absl::StrCat("memory: ", levels[next_level], " mids: peak RSS ", mem->hwm_mb, " MB"));
      ++next_level;
    }
    if (in >= total && m.Job("rtdw_journal_backlog", "dau") == 0) break;
    if (Clock::now() - last_progress > std::chrono::seconds(60)) {
      status = absl::DeadlineExceededError(
          absl::StrCat("memory: no progress for 60 s; log:\n", (*d)->LogTail()));
      break;
    }
  }
  const double seconds = SecondsSince(start);
  stop = true;
  producer_thread.join();
  (*d)->Stop();
  if (!status.ok()) return status;
  if (!produce_status.ok()) return produce_status;
  r.Set("input_records", static_cast<double>(total));
  r.Set("seconds", seconds);
  r.Set("input_records_per_s", total / seconds);
  r.Set("peak_rss_mb", peak);
  r.Set("block_cache_mb", 256);
  r.series.push_back(std::move(rss));
  if (null_es) {
    r.Set("null_sink_documents", static_cast<double>(null_es->documents()));
    r.Note("ES writes went to rtdw-bench's null bulk sink (--memory-sink null)");
  }
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------------------------
// kill-test: the seed's state-restoration problem. The baseline is killed after its Redis SADD
// and before its ES write, then restarted; rtdw's dau is killed right after a batch commit (the
// same moment: state written, documents not yet in ES), then restarted. Both compared with the
// generator's truth.

absl::Status Runner::KillTest() {
  Sizes s;
  s.events = std::clamp<int64_t>(o_.records / 5, 20000, 200000);
  s.mids = s.events / 5;
  s.users = std::max<int64_t>(1000, s.mids / 2);
  s.orders = 1000;
  Stack stack;
  if (auto st = stack.Start(Parts(PartitionsFor(s.events))); !st.ok()) return st;
  const std::string day = Today();
  const std::string truth_path = stack.dir().Sub("truth.json");
  if (auto st = GenLogs(stack, day, s, 5, truth_path); !st.ok()) return st;
  if (auto st = GenDb(stack, day, s, 5); !st.ok()) return st;
  auto truth = TruthDau(truth_path, day);
  if (!truth.ok()) return truth.status();

  // Split first (dims into Redis, pages into their DWD topic).
  RtdwdConfig split;
  split.jobs = {"log-split", "db-split"};
  int port = 0;
  std::string state;
  std::string config = WriteRtdwdConfig(stack, "kill-split", split, &port, &state);
  if (auto rr = RunOk({testing::BinDir() + "/rtdwd", "--config", config, "--exit-when-idle", "1"},
                      std::chrono::seconds(600));
      !rr.ok()) {
    return rr.status();
  }
  {
    auto counter = TopicCounter::Create(stack.bootstrap());
    if (!counter.ok()) return counter.status();
    for (const char* topic : {kOdsLog, kPage}) {
      if (auto st = CheckNothingDropped(**counter, topic); !st.ok()) return st;
    }
  }
  const int kill_batch = 3;
  ScenarioResult& r = Result("kill-test");
  r.Set("expected_docs", static_cast<double>(truth->size()));

  // The baseline, killed between SADD and the ES write; with and without the seed's remedy.
  auto baseline = [&](const std::string& tag, bool remedy) -> absl::StatusOr<Comparison> {
    std::vector<std::string> argv = {testing::BinDir() + "/rtdw-baseline-dau",
                                     "--brokers",
                                     stack.bootstrap(),
                                     "--redis",
                                     absl::StrCat("127.0.0.1:", stack.redis_port()),
                                     "--es-url",
                                     stack.es_url(),
                                     "--group",
                                     "baseline-" + tag,
                                     "--index-prefix",
                                     tag + "_dau_info_",
                                     "--state-key-prefix",
                                     tag + ":DAU:",
                                     "--batch-max-records",
                                     "2000",
                                     "--parallelism",
                                     absl::StrCat(o_.baseline_parallelism),
                                     "--exit-when-idle",
                                     "1"};
    testing::CommandResult killed =
        testing::RunCommand(argv, std::chrono::seconds(600),
                            {absl::StrCat("RTDW_BASELINE_FAULT=after_sadd:", kill_batch)});
    if (killed.exit_code != 128 + SIGKILL) {
      return absl::InternalError(
          absl::StrCat("the baseline was not killed (exit ", killed.exit_code, "): ", killed.err));
    }
    if (remedy) {
      argv.push_back("--restore-day");
      argv.push_back(day);
    }
    auto rr = RunOk(argv, std::chrono::seconds(600));
    if (!rr.ok()) return rr.status();
    if (remedy) {
      rapidjson::Document d;
      d.Parse(rr->out.c_str());
      if (!d.HasParseError() && d.IsObject()) {
        r.Set("baseline_remedy_restore_s", d["restore_seconds"].GetDouble());
      }
    }
    (void)stack.es().Refresh("*");
    auto docs = IndexDocs(stack.es(), absl::StrCat(tag, "_dau_info_", day));
    if (!docs.ok()) return docs.status();
    return Compare(*truth, *docs);
  };
  auto plain = baseline("baseline", false);
  if (!plain.ok()) return plain.status();
  r.Set("baseline_missing_docs", static_cast<double>(plain->missing));
  r.Set("baseline_extra_docs", static_cast<double>(plain->extra));
  r.Set("baseline_wrong_ts_docs", static_cast<double>(plain->ts_mismatch));
  Log(absl::StrCat("kill-test: baseline killed after SADD of batch ", kill_batch, ": ",
                   plain->missing, " of ", plain->expected, " users missing in ES"));
  auto remedied = baseline("remedy", true);
  if (!remedied.ok()) return remedied.status();
  r.Set("baseline_with_remedy_missing_docs", static_cast<double>(remedied->missing));

  // rtdw: SIGKILL right after the kill_batch-th commit, restart, compare.
  RtdwdConfig dau;
  dau.jobs = {"dau"};
  dau.batch_max_records = 2000;
  std::string dau_config = WriteRtdwdConfig(stack, "kill-dau", dau, &port, &state);
  testing::CommandResult killed = testing::RunCommand(
      {testing::BinDir() + "/rtdwd", "--config", dau_config, "--job", "dau", "--exit-when-idle",
       "5"},
      std::chrono::seconds(600), {absl::StrCat("RTDW_TEST_FAULT=after_commit:", kill_batch)});
  if (killed.exit_code != 128 + SIGKILL) {
    return absl::InternalError(
        absl::StrCat("rtdwd was not killed (exit ", killed.exit_code, "): ", killed.err));
  }
  auto journal = RunOk({testing::BinDir() + "/rtdw", "--state-dir", state, "--job", "dau", "--json",
                        "journal", "list"},
                       std::chrono::seconds(60));
  if (journal.ok()) {
    rapidjson::Document j;
    j.Parse(journal->out.c_str());
    int64_t owed = 0;
    if (!j.HasParseError() && j.HasMember("jobs")) {
      for (const auto& job : j["jobs"].GetArray()) {
        for (const auto& e : job["entries"].GetArray()) owed += e["docs"].GetInt64();
      }
    }
    r.Set("rtdw_docs_owed_at_kill", static_cast<double>(owed));
  }
  if (auto rr = RunOk({testing::BinDir() + "/rtdwd", "--config", dau_config, "--job", "dau",
                       "--exit-when-idle", "1"},
                      std::chrono::seconds(600));
      !rr.ok()) {
    return rr.status();
  }
  (void)stack.es().Refresh("*");
  auto docs = IndexDocs(stack.es(), absl::StrCat("gmall_dau_info_", day));
  if (!docs.ok()) return docs.status();
  Comparison rc = Compare(*truth, *docs);
  r.Set("rtdw_missing_docs", static_cast<double>(rc.missing));
  r.Set("rtdw_extra_docs", static_cast<double>(rc.extra));
  r.Set("rtdw_wrong_ts_docs", static_cast<double>(rc.ts_mismatch));
  Log(absl::StrCat("kill-test: rtdw killed after commit ", kill_batch, ": ", rc.missing, " of ",
                   rc.expected, " users missing, ", rc.ts_mismatch, " with another ts"));
  return absl::OkStatus();
}

std::map<std::string, ScenarioResult> Runner::Run() {
  auto guard = [&](const char* what, absl::Status st, std::vector<std::string> scenarios) {
    if (st.ok()) return;
    for (const auto& s : scenarios) {
      if (Want(s) && !(results_.count(s) && !results_[s].figures.empty())) Fail(s, st);
    }
    Log(absl::StrCat(what, ": ", st.message()));
  };
  guard("pipeline phase", PipelinePhase(),
        {"kcat-ceiling", "log-split", "kafka-pipe-floor", "db-split", "kafka-pipe-floor-db",
         "consume-floor", "dau", "order-wide", "baseline-dau"});
  if (Want("kill-test")) guard("kill-test", KillTest(), {"kill-test"});
  double latency_rate = 0;
  guard("all-jobs phase", AllJobsPhase(&latency_rate), {"all-jobs", "latency"});
  if (Want("latency") && !(results_.count("latency") && results_["latency"].failed)) {
    guard("latency", LatencyPhase(latency_rate), {"latency"});
  }
  if (Want("recovery")) guard("recovery", Recovery(), {"recovery"});
  if (Want("memory")) guard("memory", Memory(), {"memory"});
  return results_;
}

}  // namespace

const std::vector<std::string>& AllScenarios() {
  static const std::vector<std::string> kAll = {
      "kcat-ceiling",  "log-split", "kafka-pipe-floor", "db-split",     "kafka-pipe-floor-db",
      "consume-floor", "dau",       "order-wide",       "baseline-dau", "kill-test",
      "all-jobs",      "latency",   "recovery",         "memory"};
  return kAll;
}

std::map<std::string, ScenarioResult> RunScenarios(const BenchOptions& options) {
  Runner runner(options);
  return runner.Run();
}

}  // namespace rtdw::bench
