// What rtdw-bench's scenarios share: the local stack (rtdw-kafka-mock, redis-server, rtdw-es-lite
// in temporary directories, through tests/harness), rtdwd configs and processes, /metrics
// scraping, Kafka topic sizes, a paced producer, and the figures a scenario reports.
#ifndef RTDW_BENCH_RTDW_BENCH_BENCH_UTIL_H_
#define RTDW_BENCH_RTDW_BENCH_BENCH_UTIL_H_

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "connectors/es/es_client.h"
#include "connectors/kafka/producer.h"
#include "tests/harness/process.h"
#include "tests/harness/services.h"

typedef struct rd_kafka_s rd_kafka_t;

namespace rtdw::bench {

using Clock = std::chrono::steady_clock;

// Seconds since `since`.
double SecondsSince(Clock::time_point since);
int64_t NowMs();
// The day (yyyy-MM-dd) of `epoch_ms` in Asia/Shanghai, the jobs' default zone.
std::string ShanghaiDay(int64_t epoch_ms);
// [start, end) epoch ms of a Shanghai day.
std::pair<int64_t, int64_t> ShanghaiDayBounds(const std::string& day);

// Progress lines on stderr ("[  12.3s] ...").
void Log(const std::string& line);

// ---------------------------------------------------------------------------------------------
// What a scenario reports.

struct Series {
  std::string name;                               // e.g. "log-split records/s"
  std::vector<std::pair<double, double>> points;  // (x, y)
};

struct ScenarioResult {
  std::string name;
  // Figures, each named with its unit ("input_records_per_s", "p99_latency_ms", ...), in order.
  std::vector<std::pair<std::string, double>> figures;
  std::vector<std::string> notes;  // for the table and results.json "notes"
  std::vector<Series> series;      // for plots
  bool failed = false;
  std::string error;

  void Set(const std::string& figure, double value);
  std::optional<double> Get(const std::string& figure) const;
  void Note(const std::string& note);
};

// ---------------------------------------------------------------------------------------------
// The local stack.

struct StackOptions {
  int partitions = 4;
  std::vector<std::string> extra_es_args;
};

class Stack {
 public:
  absl::Status Start(const StackOptions& options);
  const std::string& bootstrap() const { return kafka_.bootstrap(); }
  std::string redis_url() const { return redis_.url(); }
  int redis_port() const { return redis_.port(); }
  std::string es_url() const { return es_.url(); }
  testing::EsLite& es_lite() { return es_; }
  testing::RedisServer& redis() { return redis_; }
  const testing::TempDir& dir() const { return dir_; }
  int partitions() const { return partitions_; }
  // An ES client on the stack's rtdw-es-lite.
  EsClient& es();

 private:
  testing::TempDir dir_;
  testing::KafkaMock kafka_;
  testing::RedisServer redis_;
  testing::EsLite es_;
  std::unique_ptr<EsClient> es_client_;
  int partitions_ = 0;
};

// An rtdwd config for the stack.
struct RtdwdConfig {
  std::vector<std::string> jobs;
  int64_t batch_max_records = 10000;
  int64_t batch_max_ms = 200;
  std::string state_dir;  // default: <stack dir>/state-<name>
  std::string es_url;     // default: the stack's
  std::string extra;      // appended TOML (e.g. "[jobs.dau]\nbatch_max_records = 25000\n")
};

// TOML appended to every config WriteRtdwdConfig writes (rtdw-bench --extra-config).
void SetGlobalExtraConfig(const std::string& toml);

// Writes <stack dir>/<name>.toml; returns its path. The HTTP port is chosen here (*http_port).
std::string WriteRtdwdConfig(const Stack& stack, const std::string& name, const RtdwdConfig& c,
                             int* http_port, std::string* state_dir);

// ---------------------------------------------------------------------------------------------
// /metrics of a running rtdwd.

class Metrics {
 public:
  // Parses Prometheus text.
  static Metrics Parse(const std::string& text);
  // The sample `name{job="<job>"}` (0 when absent).
  double Job(const std::string& name, const std::string& job) const;
  // Sum of every sample of `name` whose labels contain job="<job>" (any other labels).
  double JobSum(const std::string& name, const std::string& job) const;
  // Cumulative histogram buckets (le -> count) of `name` for `job`.
  std::vector<std::pair<double, double>> Buckets(const std::string& name,
                                                 const std::string& job) const;
  bool empty() const { return samples_.empty(); }

 private:
  std::map<std::string, double> samples_;  // full "name{labels}" -> value
};

// A running rtdwd.
class Rtdwd {
 public:
  struct Options {
    std::string config;
    int http_port = 0;
    std::vector<std::string> jobs;  // --job (one) or the config's list (empty / several)
    std::optional<double> exit_when_idle;
    std::vector<std::string> env;  // e.g. RTDW_TEST_FAULT=after_commit:3
    std::string log_path;
  };
  static absl::StatusOr<std::unique_ptr<Rtdwd>> Start(const Options& options);
  ~Rtdwd();

  pid_t pid() const { return proc_->pid(); }
  Clock::time_point started() const { return started_; }
  bool Running() { return proc_->Running(); }
  testing::ChildProcess& process() { return *proc_; }
  // One scrape (empty Metrics when the server does not answer).
  Metrics Scrape() const;
  // SIGTERM and wait; returns the exit code.
  int Stop();
  void Kill9() { proc_->Kill9(); }
  std::string LogTail(size_t bytes = 2000) const;

 private:
  Options options_;
  std::unique_ptr<testing::ChildProcess> proc_;
  Clock::time_point started_;
};

// Reads VmRSS / VmHWM of a process (MiB); nullopt when it is gone.
struct ProcMemory {
  double rss_mb = 0;
  double hwm_mb = 0;
};
std::optional<ProcMemory> ReadProcMemory(pid_t pid);

// Runs rtdwd until every job has consumed `expected[job]` records (and an ES job has nothing owed)
// — checked on /metrics every 50 ms — then stops it. Fills `result` with the run's figures:
// input_records_per_s (the expected records over the time from the process start to done),
// seconds, startup_s (until the first record), and a records/s series per job.
struct JobRunSpec {
  std::string label;  // for the series ("log-split")
  std::vector<std::string> jobs;
  std::map<std::string, std::function<int64_t()>> expected;  // job -> input records (re-evaluated)
  std::chrono::seconds stall_timeout{60};
};
struct JobRunOutcome {
  double seconds = 0;                     // start to done
  double startup_seconds = 0;             // start to the first committed record
  std::map<std::string, double> done_at;  // job -> seconds from start when it was done
  std::map<std::string, double> records;  // job -> records_in at the end
  Metrics final_metrics;
  std::vector<Series> series;  // records/s per job over time
  double peak_rss_mb = 0;
};
absl::StatusOr<JobRunOutcome> RunJobsToCompletion(const Rtdwd::Options& options,
                                                  const JobRunSpec& spec);
// The same on a daemon that is already running (times count from its start); leaves it running.
absl::StatusOr<JobRunOutcome> WaitForJobs(Rtdwd& daemon, const JobRunSpec& spec);

// ---------------------------------------------------------------------------------------------
// Kafka.

struct TopicCount {
  int64_t records = 0;  // sum over partitions of high - low watermark
  int64_t dropped = 0;  // sum of low watermarks: records the mock's retention dropped
  int partitions = 0;
};
// Topic sizes from the broker's watermarks, on one kept connection.
class TopicCounter {
 public:
  static absl::StatusOr<std::unique_ptr<TopicCounter>> Create(const std::string& bootstrap);
  ~TopicCounter();
  absl::StatusOr<TopicCount> Count(const std::string& topic);
  // Count(topic).records, or 0 on an error.
  int64_t Records(const std::string& topic);
  // Every topic the broker knows, with its record count (one metadata request + watermarks).
  absl::StatusOr<std::map<std::string, int64_t>> AllTopics();

 private:
  explicit TopicCounter(rd_kafka_t* rk) : rk_(rk) {}
  rd_kafka_t* rk_;
};
absl::StatusOr<TopicCount> CountTopic(const std::string& bootstrap, const std::string& topic);

// A keyed producer with rtdw's settings (idempotent, acks=all, lz4).
absl::StatusOr<std::unique_ptr<KafkaProducer>> MakeProducer(const std::string& bootstrap);

// ---------------------------------------------------------------------------------------------
// Processes.

// Runs a command to completion (output captured); an error unless it exits 0.
absl::StatusOr<testing::CommandResult> RunOk(const std::vector<std::string>& argv,
                                             std::chrono::seconds timeout,
                                             const std::vector<std::string>& env = {});

// The machine's 1-minute load average (/proc/loadavg; NaN when unreadable): recorded next to
// every figure, since the machine may be shared.
double LoadAverage1m();

// Latency percentiles of samples (ms).
double Percentile(std::vector<double> values, double p);

// The bucket bound (seconds) where a cumulative histogram (as Metrics::Buckets returns it)
// reaches quantile q; 0 when it holds no observation.
double HistogramQuantile(const std::vector<std::pair<double, double>>& buckets, double q);

// The cumulative histogram of what was observed between two scrapes of one process: `after`'s
// count minus `before`'s, bound by bound (a bound absent from `before` counts from 0). A figure
// of one phase of a long-running rtdwd must come from this, not from `after` alone, which holds
// every earlier phase too.
std::vector<std::pair<double, double>> BucketsSince(
    const std::vector<std::pair<double, double>>& after,
    const std::vector<std::pair<double, double>>& before);

}  // namespace rtdw::bench

#endif  // RTDW_BENCH_RTDW_BENCH_BENCH_UTIL_H_
