// rtdwd in operation (issue 8, lifecycle and observability), on the real binaries against the real
// local services: SIGTERM drains and marks a clean shutdown, SIGHUP reloads, start-up checks name
// the problem and what to do, systemd is told READY/STOPPING, /metrics exports every per-job
// series from the start, /health names what is wrong, and JSON logs are one object per line.
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"
#include "httplib.h"
#include "rapidjson/document.h"
#include "tests/harness/kafka_reader.h"
#include "tests/harness/metrics.h"
#include "tests/harness/services.h"

namespace rtdw::testing {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr char kDay[] = "2025-11-24";

std::string Rtdwd() { return BinDir() + "/rtdwd"; }
std::string Rtdw() { return BinDir() + "/rtdw"; }

std::string WriteFile(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::trunc) << text;
  return path;
}

// GET http://127.0.0.1:port/path -> (status, body); status -1 when nothing answered.
std::pair<int, std::string> HttpGet(int port, const std::string& path) {
  httplib::Client client("127.0.0.1", port);
  client.set_connection_timeout(2);
  client.set_read_timeout(10);
  auto res = client.Get(path.c_str());
  if (!res) return {-1, ""};
  return {res->status, res->body};
}

// The value of one series ("name{labels}" with all its labels, or a bare name) in a Prometheus
// text page; NaN when the page does not have it.
double Metric(const std::string& page, const std::string& series) {
  const size_t brace = series.find('{');
  std::vector<std::string> labels;
  if (brace != std::string::npos) {
    labels = absl::StrSplit(absl::string_view(series).substr(brace + 1, series.size() - brace - 2),
                            ',', absl::SkipEmpty());
  }
  return SampleSum(page, series.substr(0, brace), labels).value_or(std::nan(""));
}

std::string Lag(const std::string& job, const std::string& topic, int partition) {
  return absl::StrCat("rtdw_kafka_lag{job=\"", job, "\",topic=\"", topic, "\",partition=\"",
                      partition, "\"}");
}

std::string Series(const std::string& name, const std::string& job) {
  return absl::StrCat(name, "{job=\"", job, "\"}");
}

// `rtdw --json state show`, parsed.
rapidjson::Document StateShow(const std::string& state_dir) {
  CommandResult r = RunCommand({Rtdw(), "--state-dir", state_dir, "--json", "state", "show"});
  rapidjson::Document doc;
  doc.Parse(r.out.c_str());
  EXPECT_FALSE(doc.HasParseError()) << r.out << r.err;
  return doc;
}

const rapidjson::Value* JobOf(const rapidjson::Document& doc, const std::string& job) {
  if (!doc.IsObject() || !doc.HasMember("jobs")) return nullptr;
  for (const auto& j : doc["jobs"].GetArray()) {
    if (j.HasMember("job") && j["job"].GetString() == job) return &j;
  }
  return nullptr;
}

// One broker for the tests that read nothing from it (an rtdw-kafka-mock takes seconds to stop):
// started on first use, stopped after the last test.
class IdleKafka : public ::testing::Environment {
 public:
  static const std::string& Bootstrap() {
    if (!instance_->kafka_) {
      instance_->kafka_ = std::make_unique<KafkaMock>();
      absl::Status st = instance_->kafka_->Start();
      EXPECT_TRUE(st.ok()) << st;
    }
    return instance_->kafka_->bootstrap();
  }
  void TearDown() override { kafka_.reset(); }

  static IdleKafka* instance_;

 private:
  std::unique_ptr<KafkaMock> kafka_;
};
IdleKafka* IdleKafka::instance_ =
    static_cast<IdleKafka*>(::testing::AddGlobalTestEnvironment(new IdleKafka));

// The services, a state dir, an HTTP port and a config for rtdwd.
class Stack {
 public:
  // Which services to start (a bit set), and extra rtdw-es-lite flags.
  // kIdleKafka: the shared broker, for tests that produce nothing.
  enum : int { kKafka = 1, kRedis = 2, kEs = 4, kIdleKafka = 8 };
  struct Needs {
    bool kafka;
    bool idle_kafka;
    bool redis;
    bool es;
    std::vector<std::string> es_args;
  };
  explicit Stack(int services, std::vector<std::string> es_args = {})
      : needs_{(services & kKafka) != 0, (services & kIdleKafka) != 0, (services & kRedis) != 0,
               (services & kEs) != 0, std::move(es_args)} {}

  void Start() {
    if (needs_.kafka) {
      ASSERT_TRUE(kafka_.Start().ok());
    }
    if (needs_.idle_kafka) bootstrap_ = IdleKafka::Bootstrap();
    if (needs_.kafka) bootstrap_ = kafka_.bootstrap();
    if (needs_.redis) {
      ASSERT_TRUE(redis_.Start().ok());
    }
    if (needs_.es) {
      ASSERT_TRUE(es_.Start(needs_.es_args).ok());
    }
    port_ = FreePort();
  }

  // A config with `jobs` enabled; `extra` is appended (more sections).
  std::string Config(const std::string& jobs, const std::string& jobs_extra = "",
                     const std::string& extra = "") const {
    return absl::StrCat("[kafka]\nbrokers = \"", bootstrap_, "\"\n", "[redis]\nurl = \"",
                        needs_.redis ? redis_.url() : "redis://127.0.0.1:9/0", "\"\n",
                        "[es]\nurl = \"", needs_.es ? es_.url() : "http://127.0.0.1:9", "\"\n",
                        "[state]\ndir = \"", state_dir(), "\"\nsync = false\n",
                        "[http]\nlisten = \"127.0.0.1:", port_, "\"\n", "[jobs]\nenabled = [", jobs,
                        "]\n", jobs_extra, extra);
  }
  std::string WriteConfig(const std::string& text, const std::string& name = "rtdw.toml") const {
    return WriteFile(dir_.Sub(name), text);
  }

  absl::StatusOr<std::unique_ptr<ChildProcess>> StartDaemon(
      const std::string& config, const std::vector<std::string>& env = {}) {
    ProcessOptions o;
    o.stderr_path = log_path();
    o.stdout_path = dir_.Sub("rtdwd.out");
    o.env = env;
    return ChildProcess::Start({Rtdwd(), "--config", config}, o);
  }
  std::string Log() const { return ReadFileOrEmpty(log_path()); }
  // SIGTERM to the daemon: it must drain and exit 0 within `timeout`.
  void ExpectCleanStop(ChildProcess& daemon, std::chrono::seconds timeout) const {
    daemon.Signal(SIGTERM);
    auto code = daemon.Wait(timeout);
    ASSERT_TRUE(code.has_value()) << "no exit after SIGTERM; log:\n" << Log();
    EXPECT_EQ(*code, 0) << Log();
  }
  std::string MetricsPage() const { return HttpGet(port_, "/metrics").second; }

  // Waits until /health answers `status`; returns its last body.
  bool WaitForHealth(int status, std::string* body, milliseconds timeout = seconds(20)) const {
    return WaitFor(
        [&] {
          auto [code, text] = HttpGet(port_, "/health");
          *body = text;
          return code == status;
        },
        timeout);
  }
  // Waits until `pred(value of series)` holds.
  template <typename Pred>
  bool WaitForMetric(const std::string& series, Pred pred, milliseconds timeout = seconds(20),
                     double* last = nullptr) const {
    double v = std::nan("");
    bool ok = WaitFor(
        [&] {
          v = Metric(MetricsPage(), series);
          return !std::isnan(v) && pred(v);
        },
        timeout);
    if (last != nullptr) *last = v;
    return ok;
  }

  void GenerateLogs(int events) {
    CommandResult r = RunCommand({BinDir() + "/rtdw-gen", "logs", "--day", kDay, "--mids", "800",
                                  "--events", std::to_string(events), "--seed", "7", "--brokers",
                                  kafka_.bootstrap(), "--quiet"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }
  // GenerateLogs(events), then waits (up to `timeout`) until the daemon's log-split consumed them.
  void GenerateLogsAndAwaitLogSplit(int events, std::chrono::seconds timeout) {
    GenerateLogs(events);
    double in = 0;
    EXPECT_TRUE(WaitForMetric(
        Series("rtdw_records_in_total", "log-split"), [events](double v) { return v == events; },
        timeout, &in))
        << in << " of " << events << " records consumed by log-split";
  }

  const TempDir& dir() const { return dir_; }
  std::string state_dir() const { return dir_.Sub("state"); }
  std::string log_path() const { return dir_.Sub("rtdwd.log"); }
  int port() const { return port_; }
  EsLite& es() { return es_; }
  KafkaMock& kafka() { return kafka_; }

 private:
  Needs needs_;
  TempDir dir_;
  std::string bootstrap_ = "127.0.0.1:9";  // nothing listens there
  KafkaMock kafka_;
  RedisServer redis_;
  EsLite es_;
  int port_ = 0;
};

// ES documents of the day's DAU index (after a refresh).
int64_t DauCount(EsLite& es) {
  httplib::Client client("127.0.0.1", es.port());
  const std::string index = absl::StrCat("gmall_dau_info_", kDay);
  client.Post(absl::StrCat("/", index, "/_refresh").c_str(), "", "application/json");
  auto res = client.Get(absl::StrCat("/", index, "/_count").c_str());
  if (!res || res->status != 200) return -1;
  rapidjson::Document doc;
  doc.Parse(res->body.c_str());
  return doc.HasParseError() || !doc.HasMember("count") ? -1 : doc["count"].GetInt64();
}

// ---------------------------------------------------------------------------------------------

// SIGTERM while batches flow and journal entries are owed (ES answers slowly): the daemon stops
// polling, commits the batch in hand, delivers its journal within shutdown.timeout, marks a clean
// shutdown and exits 0 — and ES then agrees with the de-dup state (nothing owed, nothing lost).
TEST(OpsTest, SigtermMidRunDrainsTheJournalAndMarksACleanShutdown) {
  Stack stack(Stack::kKafka | Stack::kRedis | Stack::kEs, {"--fault-latency-ms", "40"});
  stack.Start();
  stack.GenerateLogs(20000);
  std::string config = stack.WriteConfig(
      stack.Config("\"log-split\", \"dau\"", "batch_max_records = 300\nbatch_max_ms = 50\n",
                   "[shutdown]\ntimeout = 20\n[log]\nprogress_interval = 1\n"));
  auto proc = stack.StartDaemon(config);
  ASSERT_TRUE(proc.ok());
  // Mid-run: after the first progress report (1 s), with journal entries owed.
  ASSERT_TRUE(
      WaitFor([&] { return absl::StrContains(stack.Log(), "dau: progress:"); }, seconds(15)))
      << stack.Log();
  double backlog = 0;
  ASSERT_TRUE(stack.WaitForMetric(
      Series("rtdw_journal_backlog", "dau"), [](double v) { return v >= 1; }, seconds(30),
      &backlog))
      << "dau never owed a journal entry; log:\n"
      << stack.Log();
  stack.ExpectCleanStop(**proc, seconds(40));
  const std::string log = stack.Log();
  EXPECT_TRUE(absl::StrContains(log, "stop requested, draining")) << log;
  EXPECT_TRUE(absl::StrContains(log, "rtdwd stopped cleanly")) << log;
  EXPECT_FALSE(absl::StrContains(log, "still owed at shutdown")) << log;
  EXPECT_TRUE(absl::StrContains(log, "dau: progress:")) << log;

  rapidjson::Document state = StateShow(stack.state_dir());
  for (const char* job : {"log-split", "dau"}) {
    const rapidjson::Value* j = JobOf(state, job);
    ASSERT_NE(j, nullptr) << job;
    ASSERT_TRUE((*j)["clean_shutdown"].IsBool()) << job;
    EXPECT_TRUE((*j)["clean_shutdown"].GetBool()) << job;
  }
  const rapidjson::Value* dau = JobOf(state, "dau");
  EXPECT_EQ((*dau)["journal_backlog"].GetUint64(), 0u);
  EXPECT_GT((*dau)["offsets"].GetUint64(), 0u);

  // Every first visit the state holds is in ES: nothing owed was dropped by the stop.
  CommandResult verify = RunCommand({Rtdw(), "--state-dir", stack.state_dir(), "--json", "verify",
                                     "--day", kDay, "--es-url", stack.es().url()});
  EXPECT_EQ(verify.exit_code, 0) << verify.out << verify.err;
  EXPECT_TRUE(absl::StrContains(verify.out, "\"missing_in_es\":0")) << verify.out;
}

// SIGTERM while ES is down: the journal cannot be delivered within shutdown.timeout, so it stays
// owed (safely, in the store); the daemon still closes cleanly and exits 3 (a stop that gave
// something up), its last line counting what is owed. The next start delivers it.
TEST(OpsTest, SigtermWithEsDownLeavesTheJournalOwedAndTheNextStartDeliversIt) {
  Stack stack(Stack::kKafka | Stack::kRedis | Stack::kEs);
  stack.Start();
  stack.GenerateLogs(6000);
  std::string config = stack.WriteConfig(
      stack.Config("\"log-split\", \"dau\"", "batch_max_records = 200\nbatch_max_ms = 50\n",
                   "[shutdown]\ntimeout = 2\n"));
  auto proc = stack.StartDaemon(config);
  ASSERT_TRUE(proc.ok());
  ASSERT_TRUE(stack.WaitForMetric(
      Series("rtdw_records_in_total", "dau"), [](double v) { return v > 0; }, seconds(30)))
      << stack.Log();
  stack.es().Kill9();
  ASSERT_TRUE(stack.WaitForMetric(
      Series("rtdw_journal_backlog", "dau"), [](double v) { return v >= 1; }, seconds(30)))
      << stack.Log();
  const auto signalled = std::chrono::steady_clock::now();
  (*proc)->Signal(SIGTERM);
  auto code = (*proc)->Wait(seconds(30));
  ASSERT_TRUE(code.has_value()) << stack.Log();
  EXPECT_EQ(*code, 3) << stack.Log();
  EXPECT_LT(std::chrono::steady_clock::now() - signalled, seconds(15)) << "shutdown.timeout is 2 s";
  EXPECT_TRUE(absl::StrContains(stack.Log(), "still owed at shutdown")) << stack.Log();
  EXPECT_TRUE(absl::StrContains(stack.Log(),
                                "rtdwd stopped, giving up at shutdown.timeout (2 s): "
                                "dau: "))
      << stack.Log();
  rapidjson::Document state = StateShow(stack.state_dir());
  const rapidjson::Value* dau = JobOf(state, "dau");
  ASSERT_NE(dau, nullptr);
  EXPECT_TRUE((*dau)["clean_shutdown"].GetBool());
  EXPECT_GE((*dau)["journal_backlog"].GetUint64(), 1u);

  // ES back: the next start re-delivers what was owed before consuming.
  ASSERT_TRUE(stack.es().Restart().ok());
  CommandResult r = RunCommand({Rtdwd(), "--config", config, "--exit-when-idle", "1"}, seconds(60));
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(absl::StrContains(r.err, "re-delivering")) << r.err;
  state = StateShow(stack.state_dir());
  dau = JobOf(state, "dau");
  ASSERT_NE(dau, nullptr);
  EXPECT_EQ((*dau)["journal_backlog"].GetUint64(), 0u);
  CommandResult verify = RunCommand({Rtdw(), "--state-dir", stack.state_dir(), "--json", "verify",
                                     "--day", kDay, "--es-url", stack.es().url()});
  EXPECT_EQ(verify.exit_code, 0) << verify.out << verify.err;
}

// Every per-job series exists from the job's start, at 0; the figures then follow the data: the
// de-dup keys of the day equal the DAU documents in ES, and the lag falls back to 0.
TEST(OpsTest, MetricsExportEveryJobSeriesFromTheStartAndFollowTheData) {
  Stack stack(Stack::kKafka | Stack::kRedis | Stack::kEs);
  stack.Start();
  std::string config =
      stack.WriteConfig(stack.Config("\"log-split\", \"db-split\", \"dau\", \"order-wide\"",
                                     "batch_max_ms = 50\n", "[log]\nprogress_interval = 1\n"));
  auto proc = stack.StartDaemon(config);
  ASSERT_TRUE(proc.ok());
  std::string health;
  ASSERT_TRUE(stack.WaitForHealth(200, &health)) << health << "\n" << stack.Log();
  const std::string page = stack.MetricsPage();
  for (const char* job : {"log-split", "db-split", "dau", "order-wide"}) {
    for (const char* name :
         {"rtdw_records_in_total", "rtdw_records_out_total", "rtdw_batches_total",
          "rtdw_batch_seconds_count", "rtdw_dead_letter_records_total", "rtdw_offset_lost_total",
          "rtdw_kafka_fetch_wakes_total", "rtdw_state_journal_bytes", "rtdw_state_dead_letters"}) {
      EXPECT_EQ(Metric(page, Series(name, job)), 0) << name << " of " << job;
    }
    EXPECT_EQ(Metric(page, Series("rtdw_job_up", job)), 1) << job;
    EXPECT_EQ(Metric(page, Series("rtdw_batch_max_seconds", job)), 0.05) << job;
    EXPECT_FALSE(std::isnan(
        Metric(page, absl::StrCat("rtdw_state_sst_bytes{job=\"", job, "\",cf=\"offsets\"}"))))
        << job;
  }
  for (const char* job : {"dau", "order-wide"}) {
    for (const char* name :
         {"rtdw_journal_backlog", "rtdw_es_retries_total", "rtdw_redis_errors_total",
          "rtdw_es_documents_delivered_total", "rtdw_es_superseded_total"}) {
      EXPECT_EQ(Metric(page, Series(name, job)), 0) << name << " of " << job;
    }
  }
  EXPECT_EQ(Metric(page, Series("rtdw_redis_errors_total", "db-split")), 0);
  EXPECT_EQ(Metric(page, Series("rtdw_redis_dim_stale_total", "db-split")), 0);
  EXPECT_EQ(Metric(page, "rtdw_dead_letters_total{job=\"log-split\",reason=\"not_json\"}"), 0);
  for (int p = 0; p < 4; ++p) {
    EXPECT_EQ(Metric(page, Lag("log-split", "ODS_BASE_LOG", p)), 0) << p;
    EXPECT_EQ(Metric(page, Lag("db-split", "ODS_BASE_DB", p)), 0) << p;
    EXPECT_EQ(Metric(page, Lag("dau", "DWD_PAGE_LOG_TOPIC", p)), 0) << p;
    EXPECT_EQ(Metric(page, Lag("order-wide", "DWD_ORDER_INFO_I", p)), 0) << p;
    EXPECT_EQ(Metric(page, Lag("order-wide", "DWD_ORDER_DETAIL_I", p)), 0) << p;
  }
  for (const char* service : {"kafka", "redis", "elasticsearch"}) {
    EXPECT_EQ(Metric(page, absl::StrCat("rtdw_service_up{service=\"", service, "\"}")), 1)
        << service;
  }
  EXPECT_GT(Metric(page, "rtdw_process_resident_memory_bytes"), 1e6);
  EXPECT_TRUE(absl::StrContains(page, "# TYPE rtdw_batch_seconds histogram")) << page;

  // Data: the day's de-dup keys (counted in the store) equal the DAU documents in ES once
  // everything is delivered.
  stack.GenerateLogsAndAwaitLogSplit(4000, seconds(30));
  const std::string day_series = absl::StrCat("rtdw_dedup_keys{job=\"dau\",day=\"", kDay, "\"}");
  int64_t docs = -1;
  double keys = 0;
  EXPECT_TRUE(WaitFor(
      [&] {
        const std::string p = stack.MetricsPage();
        keys = Metric(p, day_series);
        docs = DauCount(stack.es());
        return Metric(p, Series("rtdw_journal_backlog", "dau")) == 0 && keys > 0 &&
               static_cast<int64_t>(keys) == docs;
      },
      seconds(30)))
      << day_series << " = " << keys << ", ES documents " << docs;
  const std::string after = stack.MetricsPage();
  EXPECT_GT(Metric(after, Series("rtdw_records_in_total", "dau")), 0);
  EXPECT_EQ(Metric(after, Series("rtdw_records_out_total", "dau")),
            Metric(after, Series("rtdw_es_documents_delivered_total", "dau")));
  EXPECT_GT(Metric(after, Series("rtdw_batch_seconds_count", "dau")), 0);
  EXPECT_TRUE(WaitFor(
      [&] {
        const std::string p = stack.MetricsPage();
        double total = 0;
        for (int part = 0; part < 4; ++part)
          total += Metric(p, Lag("dau", "DWD_PAGE_LOG_TOPIC", part));
        return total == 0;
      },
      seconds(20)));
  // Consumers that keep up with their input (a few MB against the 16 MB prefetch bound) never
  // find the fetcher stopped: no wake.
  const std::string caught_up = stack.MetricsPage();
  for (const char* job : {"log-split", "db-split", "dau", "order-wide"}) {
    EXPECT_EQ(Metric(caught_up, Series("rtdw_kafka_fetch_wakes_total", job)), 0) << job;
  }
  stack.ExpectCleanStop(**proc, seconds(30));
}

// rtdw_kafka_fetch_wakes_total{job} counts the wakes the job's consumer sends to librdkafka's
// fetcher (connectors/kafka/fetch_waker.h). A prefetch bound of 1 KB and batches of 10 records
// make the queue hold the bound before most polls and the poll that drains a fetched chunk leave
// it under half: the job must wake the fetcher to read its input (with the default bound it never
// does, above).
TEST(OpsTest, FetchWakesOfTheJobsConsumerAreCounted) {
  Stack stack(Stack::kKafka);
  stack.Start();
  auto proc = stack.StartDaemon(
      stack.WriteConfig(stack.Config("\"log-split\"", "batch_max_ms = 50\nbatch_max_records = 10\n",
                                     "[kafka.properties]\n\"queued.max.messages.kbytes\" = 1\n")));
  ASSERT_TRUE(proc.ok());
  std::string health;
  ASSERT_TRUE(stack.WaitForHealth(200, &health)) << health << "\n" << stack.Log();
  const std::string wakes = Series("rtdw_kafka_fetch_wakes_total", "log-split");
  EXPECT_EQ(Metric(stack.MetricsPage(), wakes), 0);
  stack.GenerateLogsAndAwaitLogSplit(2000, seconds(60));
  double woken = 0;
  EXPECT_TRUE(stack.WaitForMetric(
      wakes, [](double v) { return v > 0; }, seconds(10), &woken))
      << woken << "\n"
      << stack.Log();
  stack.ExpectCleanStop(**proc, seconds(30));
}

// SIGHUP: the live settings are applied (and visible), the rest is named as needing a restart,
// all on one line; an invalid file is reported with FILE:LINE and ignored.
TEST(OpsTest, SighupReloadsLiveSettingsAndIgnoresAnInvalidFile) {
  Stack stack(Stack::kIdleKafka);
  stack.Start();
  const std::string path = stack.WriteConfig(stack.Config("\"log-split\""));
  auto proc = stack.StartDaemon(path);
  ASSERT_TRUE(proc.ok());
  std::string health;
  ASSERT_TRUE(stack.WaitForHealth(200, &health)) << health << stack.Log();
  EXPECT_EQ(Metric(stack.MetricsPage(), Series("rtdw_batch_max_records", "log-split")), 10000);

  // Live: log level, batch size; restart: brokers; ignored: a job that is not enabled.
  std::string text = stack.Config("\"log-split\"", "batch_max_records = 77\n",
                                  "[log]\nlevel = \"debug\"\n[jobs.dau]\nmax_future = 5\n");
  size_t brokers = text.find("brokers = \"");
  text.replace(brokers, text.find('\n', brokers) - brokers, "brokers = \"127.0.0.1:1\"");
  stack.WriteConfig(text);
  (*proc)->Signal(SIGHUP);
  ASSERT_TRUE(
      WaitFor([&] { return absl::StrContains(stack.Log(), "SIGHUP: reloaded"); }, seconds(10)))
      << stack.Log();
  std::string line;
  for (absl::string_view l : absl::StrSplit(stack.Log(), '\n')) {
    if (absl::StrContains(l, "SIGHUP: reloaded")) line = std::string(l);
  }
  EXPECT_TRUE(absl::StrContains(line, "jobs.log-split.batch_max_records 10000 -> 77")) << line;
  EXPECT_TRUE(absl::StrContains(line, "log.level \"info\" -> \"debug\"")) << line;
  EXPECT_TRUE(absl::StrContains(line, "needs a restart (not applied): kafka.brokers")) << line;
  EXPECT_FALSE(absl::StrContains(line, "jobs.dau")) << line;
  EXPECT_TRUE(stack.WaitForMetric(
      Series("rtdw_batch_max_records", "log-split"), [](double v) { return v == 77; },
      seconds(10)));
  EXPECT_EQ(Metric(stack.MetricsPage(), "rtdw_config_reloads_total{result=\"ok\"}"), 1);
  // The brokers were not switched: still consuming from the mock.
  ASSERT_TRUE(stack.WaitForHealth(200, &health, seconds(5))) << health;

  // Invalid: reported (FILE:LINE: KEY: ...) and ignored; the daemon keeps running as it was.
  stack.WriteConfig(stack.Config("\"log-split\"", "batch_max_record = 5\n"));
  (*proc)->Signal(SIGHUP);
  ASSERT_TRUE(WaitFor([&] { return absl::StrContains(stack.Log(), "is invalid"); }, seconds(10)))
      << stack.Log();
  const std::string log = stack.Log();
  EXPECT_TRUE(absl::StrContains(log, absl::StrCat("SIGHUP: ", path,
                                                  " is invalid (1 problem); "
                                                  "keeping the running config")))
      << log;
  const std::string bad = stack.Config("\"log-split\"", "batch_max_record = 5\n");
  const int bad_line = 1 + static_cast<int>(std::count(
                               bad.begin(), bad.begin() + bad.find("batch_max_record"), '\n'));
  EXPECT_TRUE(absl::StrContains(
      log, absl::StrCat(path, ":", bad_line, ": jobs.batch_max_record: unknown key")))
      << log;
  EXPECT_TRUE(stack.WaitForMetric(
      "rtdw_config_reloads_total{result=\"error\"}", [](double v) { return v == 1; }, seconds(5)));
  EXPECT_EQ(Metric(stack.MetricsPage(), Series("rtdw_batch_max_records", "log-split")), 77);
  EXPECT_TRUE((*proc)->Running());
  ASSERT_TRUE(stack.WaitForHealth(200, &health, seconds(5))) << health;
  stack.ExpectCleanStop(**proc, seconds(20));
}

// SIGHUP changes db-split's table lists (the defaults used while Redis has no FACT:TABLES): a
// table becomes a fact table from the next batch on.
TEST(OpsTest, SighupChangesDbSplitTableListsLive) {
  Stack stack(Stack::kKafka | Stack::kRedis);
  stack.Start();
  auto detail = [](int id) {
    return absl::StrCat(
        "{\"database\":\"gmall\",\"table\":\"order_detail\",\"type\":\"insert\",\"ts\":1764036001,"
        "\"xid\":1,\"commit\":true,\"data\":{\"id\":",
        id, ",\"order_id\":3501,\"sku_id\":7,\"sku_num\":1,\"order_price\":10.00}}");
  };
  const std::string tables = "[jobs.db-split]\nfact_tables = [\"order_info\"]\n";
  const std::string path =
      stack.WriteConfig(stack.Config("\"db-split\"", "batch_max_ms = 50\n", tables));
  auto proc = stack.StartDaemon(path);
  ASSERT_TRUE(proc.ok());
  std::string health;
  ASSERT_TRUE(stack.WaitForHealth(200, &health)) << health << stack.Log();

  ASSERT_TRUE(ProduceAll(stack.kafka().bootstrap(), "ODS_BASE_DB", {detail(9001)}).ok());
  ASSERT_TRUE(stack.WaitForMetric(Series("rtdw_records_in_total", "db-split"), [](double v) {
    return v == 1;
  })) << stack.Log();
  EXPECT_EQ(Metric(stack.MetricsPage(), Series("rtdw_records_skipped_total", "db-split")), 1)
      << "order_detail is not a fact table yet";

  stack.WriteConfig(stack.Config("\"db-split\"", "batch_max_ms = 50\n",
                                 "[jobs.db-split]\nfact_tables = [\"order_info\", "
                                 "\"order_detail\"]\n"));
  (*proc)->Signal(SIGHUP);
  ASSERT_TRUE(
      WaitFor([&] { return absl::StrContains(stack.Log(), "SIGHUP: reloaded"); }, seconds(10)))
      << stack.Log();
  EXPECT_TRUE(absl::StrContains(
      stack.Log(),
      "applied: jobs.db-split.fact_tables [\"order_info\"] -> [\"order_info\", \"order_detail\"]"))
      << stack.Log();
  // Applied by the job between two batches: a record polled before that still saw the old list.
  ASSERT_TRUE(stack.WaitForMetric(Series("rtdw_job_config_reloads_total", "db-split"),
                                  [](double v) { return v == 1; }));
  ASSERT_TRUE(ProduceAll(stack.kafka().bootstrap(), "ODS_BASE_DB", {detail(9002)}).ok());
  ASSERT_TRUE(stack.WaitForMetric(Series("rtdw_records_in_total", "db-split"), [](double v) {
    return v == 2;
  })) << stack.Log();
  auto facts = ReadTopic(stack.kafka().bootstrap(), "DWD_ORDER_DETAIL_I", seconds(20));
  ASSERT_TRUE(facts.ok()) << facts.status();
  ASSERT_EQ(facts->size(), 1u) << stack.MetricsPage();
  EXPECT_TRUE(absl::StrContains((*facts)[0].value, "9002")) << (*facts)[0].value;
  EXPECT_EQ(Metric(stack.MetricsPage(), Series("rtdw_records_skipped_total", "db-split")), 1);
  stack.ExpectCleanStop(**proc, seconds(20));
}

// A state dir the daemon's user cannot write: exit 1 at once, naming the path and what to do.
TEST(OpsTest, StateDirNotWritableIsExit1NamingIt) {
  TempDir dir;
  chmod(dir.path().c_str(), 0755);  // mkdtemp made it 0700; the unprivileged user must read in
  const std::string state = dir.Sub("state");
  mkdir(state.c_str(), 0755);
  std::string config = WriteFile(
      dir.Sub("rtdw.toml"),
      absl::StrCat("[kafka]\nbrokers = \"127.0.0.1:9\"\n[redis]\n[es]\n[state]\ndir = \"", state,
                   "\"\n[http]\nlisten = \"\"\n[jobs]\nenabled = [\"log-split\"]\n"));
  chmod(config.c_str(), 0644);
  std::vector<std::string> argv = {Rtdwd(), "--config", config};
  if (geteuid() == 0) {
    // root writes anywhere: run as nobody, as the unit's dedicated user would be.
    argv.insert(argv.begin(),
                {"setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--"});
  } else {
    chmod(state.c_str(), 0555);
  }
  CommandResult r = RunCommand(argv, seconds(20));
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_TRUE(absl::StrContains(r.err, absl::StrCat("state dir ", state, " is not writable by")))
      << r.err;
  EXPECT_TRUE(absl::StrContains(r.err, "Permission denied")) << r.err;
  EXPECT_TRUE(absl::StrContains(r.err, "chown")) << r.err;

  // A state dir that cannot even be created (a file is in the way).
  WriteFile(dir.Sub("file"), "x");
  std::string config2 =
      WriteFile(dir.Sub("rtdw2.toml"),
                absl::StrCat("[kafka]\nbrokers = \"127.0.0.1:9\"\n[redis]\n[es]\n[state]\ndir = \"",
                             dir.Sub("file/state"),
                             "\"\n[http]\nlisten = \"\"\n[jobs]\nenabled = [\"log-split\"]\n"));
  r = RunCommand({Rtdwd(), "--config", config2}, seconds(20));
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_TRUE(absl::StrContains(
      r.err, absl::StrCat("state dir ", dir.Sub("file/state"), " cannot be created")))
      << r.err;
}

// A second rtdwd on the same state dir: exit 1, naming the store, the holder's pid and what to
// do; the first one is not disturbed.
TEST(OpsTest, SecondDaemonOnTheSameStateDirIsExit1NamingTheHolder) {
  Stack stack(Stack::kIdleKafka);
  stack.Start();
  const std::string config = stack.WriteConfig(stack.Config("\"log-split\""));
  auto first = stack.StartDaemon(config);
  ASSERT_TRUE(first.ok());
  std::string health;
  ASSERT_TRUE(stack.WaitForHealth(200, &health)) << health << stack.Log();

  std::string text = stack.Config("\"log-split\"");
  text.replace(
      text.find("listen = \""),
      std::string("listen = \"127.0.0.1:").size() + std::to_string(stack.port()).size() + 1,
      "listen = \"\"");
  const std::string second_config = stack.WriteConfig(text, "second.toml");
  CommandResult r = RunCommand({Rtdwd(), "--config", second_config}, seconds(20));
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_TRUE(absl::StrContains(r.err, absl::StrCat("state store ", stack.state_dir(),
                                                    "/log-split is held by another "
                                                    "process (pid ",
                                                    (*first)->pid(), ")")))
      << r.err;
  EXPECT_TRUE(absl::StrContains(r.err, "stop it first")) << r.err;
  EXPECT_TRUE((*first)->Running());
  ASSERT_TRUE(stack.WaitForHealth(200, &health, seconds(5))) << health;
  (*first)->Signal(SIGTERM);
  auto code = (*first)->Wait(seconds(20));
  ASSERT_TRUE(code.has_value());
  EXPECT_EQ(*code, 0);
}

// Services that cannot be reached are waited for, not an exit: /health says which, where, and
// what to do; rtdw_service_up is 0; the log names them. A stop while waiting is a clean exit.
TEST(OpsTest, HealthNamesUnreachableServicesWhileTheDaemonWaits) {
  Stack stack(0);
  stack.Start();
  auto proc = stack.StartDaemon(stack.WriteConfig(stack.Config("\"db-split\", \"dau\"")));
  ASSERT_TRUE(proc.ok());
  std::string health;
  ASSERT_TRUE(WaitFor(
      [&] {
        auto [code, body] = HttpGet(stack.port(), "/health");
        health = body;
        return code == 503 && absl::StrContains(body, "kafka unreachable") &&
               absl::StrContains(body, "redis unreachable") &&
               absl::StrContains(body, "elasticsearch unreachable") &&
               absl::StrContains(body, "dau: starting: waiting for Elasticsearch");
      },
      seconds(20)))
      << health << "\n"
      << stack.Log();
  EXPECT_TRUE(absl::StrContains(health, "elasticsearch unreachable at http://127.0.0.1:9"))
      << health;
  EXPECT_TRUE(absl::StrContains(health, "es.url")) << health;
  EXPECT_TRUE(absl::StrContains(health, "kafka unreachable at 127.0.0.1:9")) << health;
  EXPECT_TRUE(absl::StrContains(health, "kafka.brokers")) << health;
  EXPECT_TRUE(absl::StrContains(health, "redis unreachable at 127.0.0.1:9")) << health;
  EXPECT_TRUE(absl::StrContains(health, "redis.url")) << health;
  const std::string page = stack.MetricsPage();
  EXPECT_EQ(Metric(page, "rtdw_service_up{service=\"kafka\"}"), 0);
  EXPECT_EQ(Metric(page, "rtdw_service_up{service=\"redis\"}"), 0);
  EXPECT_EQ(Metric(page, "rtdw_service_up{service=\"elasticsearch\"}"), 0);
  EXPECT_EQ(Metric(page, Series("rtdw_job_up", "db-split")), 0);
  EXPECT_EQ(Metric(page, Series("rtdw_job_up", "dau")), 0);
  EXPECT_TRUE(absl::StrContains(stack.Log(), "redis unreachable at 127.0.0.1:9")) << stack.Log();
  EXPECT_TRUE((*proc)->Running());
  stack.ExpectCleanStop(**proc, seconds(20));
}

// Elasticsearch of a major version rtdw cannot use: waiting will not fix it, exit 1.
TEST(OpsTest, ElasticsearchOfAnUnsupportedVersionIsExit1) {
  httplib::Server fake;  // only GET /, as an ES 6 node answers it
  fake.Get("/", [](const httplib::Request&, httplib::Response& res) {
    res.set_content(R"({"name":"old","cluster_name":"legacy","cluster_uuid":"x",)"
                    R"("version":{"number":"6.8.23"},"tagline":"You Know, for Search"})",
                    "application/json");
  });
  int port = fake.bind_to_any_port("127.0.0.1");
  std::thread server([&] { fake.listen_after_bind(); });
  TempDir dir;
  std::string config = WriteFile(
      dir.Sub("rtdw.toml"),
      absl::StrCat("[kafka]\nbrokers = \"127.0.0.1:9\"\n[redis]\nurl = \"redis://127.0.0.1:9/0\"\n",
                   "[es]\nurl = \"http://127.0.0.1:", port, "\"\n[state]\ndir = \"",
                   dir.Sub("state"), "\"\n[http]\nlisten = \"\"\n[jobs]\nenabled = [\"dau\"]\n"));
  CommandResult r = RunCommand({Rtdwd(), "--config", config}, seconds(30));
  fake.stop();
  server.join();
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_TRUE(absl::StrContains(r.err, "Elasticsearch 6.8.23 is too old")) << r.err;
  EXPECT_TRUE(absl::StrContains(r.err, "point es.url at a supported cluster")) << r.err;
}

// Type=notify: READY=1 once serving, STOPPING=1 on SIGTERM, over $NOTIFY_SOCKET.
TEST(OpsTest, TellsSystemdReadyAndStopping) {
  Stack stack(Stack::kIdleKafka);
  stack.Start();
  const std::string sock_path = stack.dir().Sub("notify.sock");
  int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(fd, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  ASSERT_LT(sock_path.size(), sizeof addr.sun_path);
  memcpy(addr.sun_path, sock_path.c_str(), sock_path.size());
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  timeval tv{1, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  std::string received;
  auto receive_until = [&](const std::string& what) {
    return WaitFor(
        [&] {
          char buf[1024];
          ssize_t n = recv(fd, buf, sizeof buf, 0);
          if (n > 0) received += std::string(buf, n) + "\n";
          return absl::StrContains(received, what);
        },
        seconds(20));
  };
  auto proc = stack.StartDaemon(stack.WriteConfig(stack.Config("\"log-split\"")),
                                {absl::StrCat("NOTIFY_SOCKET=", sock_path)});
  ASSERT_TRUE(proc.ok());
  EXPECT_TRUE(receive_until("READY=1")) << received << stack.Log();
  // Ready means serving: /metrics answers.
  EXPECT_EQ(HttpGet(stack.port(), "/metrics").first, 200);
  (*proc)->Signal(SIGTERM);
  EXPECT_TRUE(receive_until("STOPPING=1")) << received;
  auto code = (*proc)->Wait(seconds(20));
  ASSERT_TRUE(code.has_value());
  EXPECT_EQ(*code, 0) << stack.Log();
  close(fd);
}

// log.format = "json": every line on stderr is one JSON object with ts, level, logger and msg,
// the message escaped (here a state dir with a quote and a backslash); progress lines included.
TEST(OpsTest, JsonLogsAreOneObjectPerLine) {
  Stack stack(Stack::kIdleKafka);
  stack.Start();
  const std::string odd_state = stack.dir().Sub("st\"ate\\x");
  std::string text =
      stack.Config("\"log-split\"", "", "[log]\nformat = \"json\"\nprogress_interval = 1\n");
  const std::string plain = absl::StrCat("dir = \"", stack.state_dir(), "\"");
  text.replace(text.find(plain), plain.size(),
               absl::StrCat("dir = \"", stack.dir().Sub("st\\\"ate\\\\x"), "\""));
  const std::string config = stack.WriteConfig(text);
  CommandResult r =
      RunCommand({Rtdwd(), "--config", config, "--exit-when-idle", "1.5"}, seconds(30));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  int lines = 0;
  bool saw_state_dir = false, saw_progress = false;
  for (absl::string_view line : absl::StrSplit(r.err, '\n', absl::SkipEmpty())) {
    ++lines;
    rapidjson::Document doc;
    doc.Parse(line.data(), line.size());
    ASSERT_FALSE(doc.HasParseError()) << "not JSON: " << line;
    ASSERT_TRUE(doc.IsObject()) << line;
    for (const char* key : {"ts", "level", "logger", "msg"}) {
      ASSERT_TRUE(doc.HasMember(key) && doc[key].IsString()) << key << " in " << line;
    }
    const std::string msg = doc["msg"].GetString();
    if (absl::StrContains(msg, odd_state)) saw_state_dir = true;
    if (absl::StrContains(msg, "log-split: progress:")) saw_progress = true;
  }
  EXPECT_GT(lines, 3);
  EXPECT_TRUE(saw_state_dir) << r.err;
  EXPECT_TRUE(saw_progress) << r.err;
}

}  // namespace
}  // namespace rtdw::testing
