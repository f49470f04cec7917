#include "bench/rtdw_bench/bench_util.h"

#include <librdkafka/rdkafka.h>
#include <signal.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/civil_time.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "httplib.h"

namespace rtdw::bench {
namespace {

const absl::TimeZone& Shanghai() {
  static const absl::TimeZone* tz = [] {
    auto* z = new absl::TimeZone;
    if (!absl::LoadTimeZone("Asia/Shanghai", z)) {
      fprintf(stderr, "rtdw-bench: time zone Asia/Shanghai not found (install tzdata)\n");
    }
    return z;
  }();
  return *tz;
}

bool IsEsJob(const std::string& job) { return job == "dau" || job == "order-wide"; }

}  // namespace

double SecondsSince(Clock::time_point since) {
  return std::chrono::duration<double>(Clock::now() - since).count();
}

int64_t NowMs() { return absl::ToUnixMillis(absl::Now()); }

std::string ShanghaiDay(int64_t epoch_ms) {
  return absl::FormatTime("%Y-%m-%d", absl::FromUnixMillis(epoch_ms), Shanghai());
}

std::pair<int64_t, int64_t> ShanghaiDayBounds(const std::string& day) {
  absl::CivilDay d;
  if (!absl::ParseCivilTime(day, &d)) return {0, 0};
  return {absl::ToUnixMillis(absl::FromCivil(d, Shanghai())),
          absl::ToUnixMillis(absl::FromCivil(d + 1, Shanghai()))};
}

void Log(const std::string& line) {
  static const Clock::time_point start = Clock::now();
  fprintf(stderr, "[%7.1fs] %s\n", SecondsSince(start), line.c_str());
}

// ---------------------------------------------------------------------------------------------

void ScenarioResult::Set(const std::string& figure, double value) {
  for (auto& [name, v] : figures) {
    if (name == figure) {
      v = value;
      return;
    }
  }
  figures.emplace_back(figure, value);
}

std::optional<double> ScenarioResult::Get(const std::string& figure) const {
  for (const auto& [name, v] : figures) {
    if (name == figure) return v;
  }
  return std::nullopt;
}

void ScenarioResult::Note(const std::string& note) {
  notes.push_back(note);
  Log(absl::StrCat(name, ": ", note));
}

// ---------------------------------------------------------------------------------------------

absl::Status Stack::Start(const StackOptions& options) {
  partitions_ = options.partitions;
  testing::KafkaMock::Options ko;
  ko.partitions = options.partitions;
  if (auto st = kafka_.Start(ko); !st.ok()) return st;
  if (auto st = redis_.Start(); !st.ok()) return st;
  if (auto st = es_.Start(options.extra_es_args); !st.ok()) return st;
  EsClientOptions eo;
  eo.urls = {es_.url()};
  eo.warn = [](std::string_view) {};
  auto client = EsClient::Create(eo);
  if (!client.ok()) return client.status();
  es_client_ = std::move(*client);
  return absl::OkStatus();
}

EsClient& Stack::es() { return *es_client_; }

namespace {
std::string& GlobalExtraConfig() {
  static std::string* extra = new std::string;
  return *extra;
}
}  // namespace

void SetGlobalExtraConfig(const std::string& toml) { GlobalExtraConfig() = toml; }

std::string WriteRtdwdConfig(const Stack& stack, const std::string& name, const RtdwdConfig& c,
                             int* http_port, std::string* state_dir) {
  *http_port = testing::FreePort();
  *state_dir = c.state_dir.empty() ? stack.dir().Sub("state-" + name) : c.state_dir;
  std::vector<std::string> quoted;
  for (const auto& j : c.jobs) quoted.push_back(absl::StrCat("\"", j, "\""));
  std::string path = stack.dir().Sub(name + ".toml");
  std::ofstream out(path);
  out << "[kafka]\nbrokers = \"" << stack.bootstrap() << "\"\n"
      << "[redis]\nurl = \"" << stack.redis_url() << "\"\n"
      << "[es]\nurl = \"" << (c.es_url.empty() ? stack.es_url() : c.es_url) << "\"\n"
      << "[state]\ndir = \"" << *state_dir << "\"\n"
      << "[http]\nlisten = \"127.0.0.1:" << *http_port << "\"\n"
      << "[log]\nprogress_interval = 0\n"
      << "[jobs]\nenabled = [" << absl::StrJoin(quoted, ", ") << "]\n"
      << "batch_max_records = " << c.batch_max_records << "\n"
      << "batch_max_ms = " << c.batch_max_ms << "\n"
      << c.extra << "\n"
      << GlobalExtraConfig() << "\n";
  return path;
}

// ---------------------------------------------------------------------------------------------

Metrics Metrics::Parse(const std::string& text) {
  Metrics m;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    auto space = line.rfind(' ');
    if (space == std::string::npos) continue;
    double v = 0;
    std::string value = line.substr(space + 1);
    if (value == "+Inf") {
      v = INFINITY;
    } else if (!absl::SimpleAtod(value, &v)) {
      continue;
    }
    m.samples_[line.substr(0, space)] = v;
  }
  return m;
}

double Metrics::Job(const std::string& name, const std::string& job) const {
  auto it = samples_.find(absl::StrCat(name, "{job=\"", job, "\"}"));
  return it == samples_.end() ? 0 : it->second;
}

double Metrics::JobSum(const std::string& name, const std::string& job) const {
  const std::string prefix = name + "{";
  const std::string label = absl::StrCat("job=\"", job, "\"");
  double sum = 0;
  for (auto it = samples_.lower_bound(prefix); it != samples_.end(); ++it) {
    if (it->first.compare(0, prefix.size(), prefix) != 0) break;
    if (it->first.find(label) != std::string::npos) sum += it->second;
  }
  return sum;
}

std::vector<std::pair<double, double>> Metrics::Buckets(const std::string& name,
                                                        const std::string& job) const {
  std::vector<std::pair<double, double>> out;
  const std::string prefix = name + "_bucket{";
  const std::string label = absl::StrCat("job=\"", job, "\"");
  for (auto it = samples_.lower_bound(prefix); it != samples_.end(); ++it) {
    if (it->first.compare(0, prefix.size(), prefix) != 0) break;
    if (it->first.find(label) == std::string::npos) continue;
    auto le = it->first.find("le=\"");
    if (le == std::string::npos) continue;
    std::string bound = it->first.substr(le + 4, it->first.find('"', le + 4) - le - 4);
    double b = 0;
    if (bound == "+Inf") {
      b = INFINITY;
    } else if (!absl::SimpleAtod(bound, &b)) {
      continue;
    }
    out.emplace_back(b, it->second);
  }
  std::sort(out.begin(), out.end());
  return out;
}

// ---------------------------------------------------------------------------------------------

absl::StatusOr<std::unique_ptr<Rtdwd>> Rtdwd::Start(const Options& options) {
  auto d = std::unique_ptr<Rtdwd>(new Rtdwd);
  d->options_ = options;
  std::vector<std::string> argv = {testing::BinDir() + "/rtdwd", "--config", options.config};
  if (options.jobs.size() == 1) {
    argv.push_back("--job");
    argv.push_back(options.jobs[0]);
  }
  if (options.exit_when_idle) {
    argv.push_back("--exit-when-idle");
    argv.push_back(absl::StrCat(*options.exit_when_idle));
  }
  testing::ProcessOptions po;
  po.stdout_path = options.log_path;
  po.stderr_path = options.log_path;
  po.env = options.env;
  d->started_ = Clock::now();
  auto proc = testing::ChildProcess::Start(argv, po);
  if (!proc.ok()) return proc.status();
  d->proc_ = std::move(*proc);
  return d;
}

Rtdwd::~Rtdwd() {
  if (proc_) proc_->Kill9();
}

Metrics Rtdwd::Scrape() const {
  httplib::Client cli("127.0.0.1", options_.http_port);
  cli.set_connection_timeout(1, 0);
  cli.set_read_timeout(5, 0);
  auto res = cli.Get("/metrics");
  if (!res || res->status != 200) return Metrics();
  return Metrics::Parse(res->body);
}

int Rtdwd::Stop() { return proc_->Stop(std::chrono::seconds(60)); }

std::string Rtdwd::LogTail(size_t bytes) const {
  std::string text = testing::ReadFileOrEmpty(options_.log_path);
  return text.size() > bytes ? text.substr(text.size() - bytes) : text;
}

std::optional<ProcMemory> ReadProcMemory(pid_t pid) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/status"));
  if (!in) return std::nullopt;
  ProcMemory m;
  std::string line;
  bool any = false;
  while (std::getline(in, line)) {
    double kb = 0;
    if (line.rfind("VmRSS:", 0) == 0 && sscanf(line.c_str() + 6, "%lf", &kb) == 1) {
      m.rss_mb = kb / 1024;
      any = true;
    } else if (line.rfind("VmHWM:", 0) == 0 && sscanf(line.c_str() + 6, "%lf", &kb) == 1) {
      m.hwm_mb = kb / 1024;
      any = true;
    }
  }
  if (!any) return std::nullopt;
  return m;
}

absl::StatusOr<JobRunOutcome> RunJobsToCompletion(const Rtdwd::Options& options,
                                                  const JobRunSpec& spec) {
  auto daemon = Rtdwd::Start(options);
  if (!daemon.ok()) return daemon.status();
  auto out = WaitForJobs(**daemon, spec);
  if (!out.ok()) return out;
  int code = (*daemon)->Stop();
  if (code != 0) {
    Log(absl::StrCat(spec.label, ": rtdwd exited with ", code, " after the run; log tail:\n",
                     (*daemon)->LogTail(800)));
  }
  return out;
}

absl::StatusOr<JobRunOutcome> WaitForJobs(Rtdwd& d, const JobRunSpec& spec) {
  JobRunOutcome out;
  std::map<std::string, double> last_in;
  std::map<std::string, Series> series;
  double last_sample_t = 0;
  std::map<std::string, double> sample_in;
  auto last_progress = Clock::now();
  bool saw_metrics = false;
  while (true) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    const bool running = d.Running();
    Metrics m = d.Scrape();
    const double t = SecondsSince(d.started());
    if (auto mem = ReadProcMemory(d.pid()))
      out.peak_rss_mb = std::max(out.peak_rss_mb, mem->hwm_mb);
    if (m.empty()) {
      if (!running) {
        return absl::InternalError(
            absl::StrCat("rtdwd exited (code ", d.process().exit_code().value_or(-1),
                         ") before its jobs were done; log:\n", d.LogTail()));
      }
      if (!saw_metrics && t > 30)
        return absl::DeadlineExceededError("rtdwd /metrics never answered");
      continue;
    }
    saw_metrics = true;
    bool all_done = true;
    const bool sample = t - last_sample_t >= 0.5;
    for (const auto& job : spec.jobs) {
      const double in = m.Job("rtdw_records_in_total", job);
      if (in != last_in[job]) last_progress = Clock::now();
      last_in[job] = in;
      if (in > 0 && out.startup_seconds == 0) out.startup_seconds = t;
      if (sample) {
        Series& s = series[job];
        s.name = job;
        if (last_sample_t > 0 || t > 0) {
          s.points.emplace_back(t, (in - sample_in[job]) / (t - last_sample_t));
        }
        sample_in[job] = in;
      }
      auto it = spec.expected.find(job);
      const double expected = it == spec.expected.end() ? 0 : static_cast<double>(it->second());
      bool done = in >= expected;
      if (IsEsJob(job)) {
        done = done && m.Job("rtdw_journal_backlog", job) == 0 &&
               m.Job("rtdw_es_documents_delivered_total", job) +
                       m.Job("rtdw_es_documents_rejected_total", job) >=
                   m.Job("rtdw_documents_total", job);
      }
      if (done && !out.done_at.count(job)) out.done_at[job] = t;
      all_done = all_done && done;
      out.records[job] = in;
    }
    if (sample) last_sample_t = t;
    if (all_done && t - last_sample_t > 0.05) {
      for (const auto& job : spec.jobs) {
        Series& s = series[job];
        s.name = job;
        s.points.emplace_back(t, (last_in[job] - sample_in[job]) / (t - last_sample_t));
      }
    }
    if (all_done) {
      out.seconds = t;
      out.final_metrics = std::move(m);
      break;
    }
    if (!running) {
      return absl::InternalError(absl::StrCat("rtdwd exited (code ",
                                              d.process().exit_code().value_or(-1),
                                              ") before its jobs were done; log:\n", d.LogTail()));
    }
    if (Clock::now() - last_progress > spec.stall_timeout) {
      std::string where;
      for (const auto& job : spec.jobs) {
        auto it = spec.expected.find(job);
        absl::StrAppend(&where, " ", job, "=", last_in[job], "/",
                        it == spec.expected.end() ? 0 : it->second());
      }
      return absl::DeadlineExceededError(absl::StrCat(
          "no progress for ", spec.stall_timeout.count(), " s:", where, "; log:\n", d.LogTail()));
    }
  }
  for (auto& [job, s] : series) out.series.push_back(std::move(s));
  return out;
}

// ---------------------------------------------------------------------------------------------

absl::StatusOr<std::unique_ptr<TopicCounter>> TopicCounter::Create(const std::string& bootstrap) {
  char errstr[512];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap.c_str(), errstr, sizeof errstr);
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
  if (rk == nullptr) {
    rd_kafka_conf_destroy(conf);
    return absl::InternalError(absl::StrCat("kafka: ", errstr));
  }
  return std::unique_ptr<TopicCounter>(new TopicCounter(rk));
}

TopicCounter::~TopicCounter() { rd_kafka_destroy(rk_); }

absl::StatusOr<TopicCount> TopicCounter::Count(const std::string& topic) {
  TopicCount count;
  rd_kafka_topic_t* rkt = rd_kafka_topic_new(rk_, topic.c_str(), nullptr);
  const rd_kafka_metadata_t* md = nullptr;
  absl::Status status;
  if (rd_kafka_metadata(rk_, 0, rkt, &md, 10000) != RD_KAFKA_RESP_ERR_NO_ERROR || md == nullptr ||
      md->topic_cnt != 1 || md->topics[0].err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    status = absl::NotFoundError(absl::StrCat("topic ", topic, ": no metadata"));
  } else {
    count.partitions = md->topics[0].partition_cnt;
    for (int p = 0; p < count.partitions && status.ok(); ++p) {
      int64_t low = 0, high = 0;
      rd_kafka_resp_err_t err =
          rd_kafka_query_watermark_offsets(rk_, topic.c_str(), p, &low, &high, 10000);
      if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        status = absl::UnavailableError(
            absl::StrCat("watermarks of ", topic, "/", p, ": ", rd_kafka_err2str(err)));
      }
      count.records += high - low;
      count.dropped += low;
    }
  }
  if (md != nullptr) rd_kafka_metadata_destroy(md);
  rd_kafka_topic_destroy(rkt);
  if (!status.ok()) return status;
  return count;
}

int64_t TopicCounter::Records(const std::string& topic) {
  auto c = Count(topic);
  return c.ok() ? c->records : 0;
}

absl::StatusOr<std::map<std::string, int64_t>> TopicCounter::AllTopics() {
  const rd_kafka_metadata_t* md = nullptr;
  if (rd_kafka_metadata(rk_, 1, nullptr, &md, 10000) != RD_KAFKA_RESP_ERR_NO_ERROR ||
      md == nullptr) {
    return absl::UnavailableError("kafka: no metadata of all topics");
  }
  std::vector<std::string> names;
  for (int i = 0; i < md->topic_cnt; ++i) names.emplace_back(md->topics[i].topic);
  rd_kafka_metadata_destroy(md);
  std::map<std::string, int64_t> out;
  for (const auto& name : names) {
    auto c = Count(name);
    if (!c.ok()) return c.status();
    out[name] = c->records;
  }
  return out;
}

absl::StatusOr<TopicCount> CountTopic(const std::string& bootstrap, const std::string& topic) {
  auto counter = TopicCounter::Create(bootstrap);
  if (!counter.ok()) return counter.status();
  return (*counter)->Count(topic);
}

double LoadAverage1m() {
  std::ifstream in("/proc/loadavg");
  double load = NAN;
  if (!(in >> load)) return NAN;
  return load;
}

absl::StatusOr<std::unique_ptr<KafkaProducer>> MakeProducer(const std::string& bootstrap) {
  KafkaProducerOptions o;
  o.brokers = bootstrap;
  o.linger_ms = 20;
  return KafkaProducer::Create(o);
}

// ---------------------------------------------------------------------------------------------

absl::StatusOr<testing::CommandResult> RunOk(const std::vector<std::string>& argv,
                                             std::chrono::seconds timeout,
                                             const std::vector<std::string>& env) {
  testing::CommandResult r = testing::RunCommand(argv, timeout, env);
  if (r.exit_code != 0) {
    return absl::InternalError(
        absl::StrCat(argv[0], " exited with ", r.exit_code, ": ", r.err.substr(0, 2000)));
  }
  return r;
}

double Percentile(std::vector<double> values, double p) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  // Nearest rank.
  size_t rank = static_cast<size_t>(std::ceil(p / 100.0 * values.size()));
  if (rank == 0) rank = 1;
  return values[std::min(rank, values.size()) - 1];
}

double HistogramQuantile(const std::vector<std::pair<double, double>>& buckets, double q) {
  if (buckets.empty() || buckets.back().second <= 0) return 0;
  const double want = q * buckets.back().second;
  for (const auto& [le, count] : buckets) {
    if (count >= want) return le;
  }
  return buckets.back().first;
}

std::vector<std::pair<double, double>> BucketsSince(
    const std::vector<std::pair<double, double>>& after,
    const std::vector<std::pair<double, double>>& before) {
  std::map<double, double> earlier(before.begin(), before.end());
  std::vector<std::pair<double, double>> out;
  out.reserve(after.size());
  for (const auto& [le, count] : after) {
    auto it = earlier.find(le);
    out.emplace_back(le, count - (it == earlier.end() ? 0 : it->second));
  }
  return out;
}

}  // namespace rtdw::bench
