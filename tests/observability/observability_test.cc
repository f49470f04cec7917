// Observability as operators consume it (issue 21, and issue 16's metric names), against the real
// tools: `promtool` checks and unit-tests deploy/prometheus/rtdw-rules.yml; a real Prometheus
// (Debian's `prometheus`, on loopback, scraping every second with the rules loaded) scrapes a real
// rtdwd running all four jobs over the local stack, through an Elasticsearch outage and back;
// then every recording rule, every alert expression and every query of
// deploy/grafana/rtdw-dashboard.json is evaluated through Prometheus' HTTP API on that scrape.
//
// What each check could reveal: a renamed or missing metric (the query returns nothing, or the
// name is absent from /metrics), a panel whose legend names a label the query drops, a rule that
// fails to evaluate (many-to-many matches, wrong types), a panel that never shows the activity
// the run certainly had, alerts that never go pending during a real outage or stay pending after
// it, dead-letter counts by reason that differ from the generator's truth, and metric names
// promtool's linter refuses. Skipped, with a message, where the `prometheus` package is absent.
#include <sys/statvfs.h>
#include <unistd.h>

#include <cctype>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "httplib.h"
#include "rapidjson/document.h"
#include "tests/harness/kafka_reader.h"
#include "tests/pipeline/pipeline_stack.h"

namespace rtdw::testing {
namespace {

using std::chrono::seconds;

constexpr char kDay[] = "2026-11-24";
constexpr int64_t kOldDayMs = 1792900800000;  // 2026-10-25 04:00 UTC, 30 days before kDay
constexpr int kDauLate = 25, kDauFuture = 5, kDauNotJson = 3;  // records dau dead-letters
constexpr int64_t kDayMs = 1795500000000;                      // 2026-11-24 06:00 UTC, in kDay
constexpr int kDauExtra = 300;          // first pages written while dau is paused
constexpr char kScrapeJob[] = "rtdwd";  // the scrape job name the rules expect

std::string SourcePath(const std::string& rel) { return std::string(RTDW_SOURCE_DIR) + "/" + rel; }

// The full path of `name` on $PATH; "" when absent.
std::string Which(const std::string& name) {
  const char* path = getenv("PATH");
  for (absl::string_view dir : absl::StrSplit(path ? path : "/usr/bin:/bin", ':')) {
    std::string candidate = absl::StrCat(dir, "/", name);
    if (access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return "";
}

std::string WriteFile(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::trunc) << text;
  return path;
}

// GET http://127.0.0.1:port/path?params -> (status, body); -1 when nothing answered.
std::pair<int, std::string> HttpGet(int port, const std::string& path,
                                    const httplib::Params& params = {}) {
  httplib::Client client("127.0.0.1", port);
  client.set_connection_timeout(2);
  client.set_read_timeout(30);
  auto res = client.Get(path.c_str(), params, httplib::Headers{});
  if (!res) return {-1, ""};
  return {res->status, res->body};
}

// One sample of an instant query.
struct Sample {
  std::map<std::string, std::string> labels;
  double value = 0;
};

std::string Describe(const std::vector<Sample>& samples) {
  std::vector<std::string> out;
  for (const Sample& s : samples) {
    std::vector<std::string> ls;
    for (const auto& [k, v] : s.labels) ls.push_back(absl::StrCat(k, "=\"", v, "\""));
    out.push_back(absl::StrCat("{", absl::StrJoin(ls, ","), "} ", s.value));
  }
  return out.empty() ? "(no data)" : absl::StrJoin(out, "; ");
}

// A Prometheus server of its own: loopback port, its own TSDB dir, scraping one rtdwd every
// second with deploy/prometheus/rtdw-rules.yml evaluated every second.
class PrometheusServer {
 public:
  absl::Status Start(const std::string& binary, const TempDir& dir, int rtdwd_port) {
    port_ = FreePort();
    const std::string config = WriteFile(
        dir.Sub("prometheus.yml"),
        absl::StrCat("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n",
                     "  evaluation_interval: 1s\n", "rule_files:\n  - ",
                     SourcePath("deploy/prometheus/rtdw-rules.yml"), "\n",
                     "scrape_configs:\n  - job_name: ", kScrapeJob, "\n    honor_labels: true\n",
                     "    static_configs:\n      - targets: ['127.0.0.1:", rtdwd_port, "']\n"));
    ProcessOptions o;
    o.stdout_path = dir.Sub("prometheus.log");
    o.stderr_path = dir.Sub("prometheus.log");
    log_path_ = o.stderr_path;
    auto proc = ChildProcess::Start(
        {binary, "--config.file=" + config, "--storage.tsdb.path=" + dir.Sub("tsdb"),
         absl::StrCat("--web.listen-address=127.0.0.1:", port_), "--log.level=warn"},
        o);
    if (!proc.ok()) return proc.status();
    proc_ = std::move(*proc);
    if (!WaitFor([&] { return HttpGet(port_, "/-/ready").first == 200 || !proc_->Running(); },
                 seconds(60)) ||
        !proc_->Running()) {
      return absl::UnavailableError(absl::StrCat("prometheus did not get ready: ", Log()));
    }
    return absl::OkStatus();
  }

  // GET /api/v1/<what>: the `data` member of a successful answer.
  absl::StatusOr<rapidjson::Document> Api(const std::string& what,
                                          const httplib::Params& params = {}) const {
    auto [code, body] = HttpGet(port_, "/api/v1/" + what, params);
    rapidjson::Document doc;
    doc.Parse(body.c_str());
    if (code != 200 || doc.HasParseError() || !doc.IsObject() || !doc.HasMember("status") ||
        std::string(doc["status"].GetString()) != "success") {
      return absl::InternalError(absl::StrCat("/api/v1/", what, ": HTTP ", code, ": ", body));
    }
    rapidjson::Document data;
    data.CopyFrom(doc["data"], data.GetAllocator());
    return data;
  }

  // An instant query now; the vector's samples (an error for any other result type).
  absl::StatusOr<std::vector<Sample>> Query(const std::string& expr) const {
    auto data = Api("query", {{"query", expr}});
    if (!data.ok()) return data.status();
    if (std::string((*data)["resultType"].GetString()) != "vector") {
      return absl::InternalError(absl::StrCat(expr, ": not a vector"));
    }
    std::vector<Sample> out;
    for (const auto& r : (*data)["result"].GetArray()) {
      Sample s;
      for (auto it = r["metric"].MemberBegin(); it != r["metric"].MemberEnd(); ++it) {
        s.labels[it->name.GetString()] = it->value.GetString();
      }
      const std::string v = r["value"][1].GetString();
      if (!absl::SimpleAtod(v, &s.value)) s.value = std::nan("");  // "NaN"
      out.push_back(std::move(s));
    }
    return out;
  }

  // Polls `expr` until it returns at least one sample.
  bool WaitForData(const std::string& expr, seconds timeout, std::string* last) const {
    return WaitFor(
        [&] {
          auto r = Query(expr);
          *last = r.ok() ? Describe(*r) : std::string(r.status().message());
          return r.ok() && !r->empty();
        },
        timeout);
  }

  std::string Log() const {
    std::string log = ReadFileOrEmpty(log_path_);
    return log.size() > 4000 ? log.substr(log.size() - 4000) : log;
  }

 private:
  int port_ = 0;
  std::string log_path_;
  std::unique_ptr<ChildProcess> proc_;
};

// rtdw-gen logs into the stack's ODS_BASE_LOG, with its truth file parsed.
absl::Status GenerateLogs(PipelineStack& stack, const std::string& day, int seed, int events,
                          const std::string& malformed_share, rapidjson::Document* truth) {
  const std::string truth_path = stack.dir().Sub(absl::StrCat("log-truth-", day, ".json"));
  CommandResult r = RunCommand({BinDir() + "/rtdw-gen",
                                "logs",
                                "--day",
                                day,
                                "--seed",
                                std::to_string(seed),
                                "--mids",
                                "600",
                                "--users",
                                "300",
                                "--events",
                                std::to_string(events),
                                "--malformed-share",
                                malformed_share,
                                "--key",
                                "mid",
                                "--brokers",
                                stack.kafka().bootstrap(),
                                "--truth",
                                truth_path,
                                "--quiet"},
                               seconds(120));
  if (r.exit_code != 0) return absl::InternalError(absl::StrCat("rtdw-gen logs: ", r.err));
  truth->Parse(ReadFileOrEmpty(truth_path).c_str());
  if (truth->HasParseError()) return absl::InternalError("bad truth file " + truth_path);
  return absl::OkStatus();
}

// The metric names a PromQL expression reads: `rtdw_...` tokens that are not part of a recorded
// series name (`level:rtdw_x:op`).
std::set<std::string> MetricNamesIn(const std::string& expr) {
  std::set<std::string> out;
  auto word = [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; };
  for (size_t at = expr.find("rtdw_"); at != std::string::npos; at = expr.find("rtdw_", at + 1)) {
    if (at > 0 && (word(expr[at - 1]) || expr[at - 1] == ':')) continue;
    size_t end = at;
    while (end < expr.size() && word(expr[end])) ++end;
    if (end < expr.size() && expr[end] == ':') continue;
    out.insert(expr.substr(at, end - at));
  }
  return out;
}

// The families of a Prometheus text page: name -> type (from the # TYPE lines).
std::map<std::string, std::string> Families(const std::string& page) {
  std::map<std::string, std::string> out;
  for (absl::string_view line : absl::StrSplit(page, '\n')) {
    if (!absl::ConsumePrefix(&line, "# TYPE ")) continue;
    std::vector<std::string> parts = absl::StrSplit(line, ' ');
    if (parts.size() == 2) out[parts[0]] = parts[1];
  }
  return out;
}

// True when `name` is a family of `families` or a series of a histogram family there.
bool Exported(const std::map<std::string, std::string>& families, const std::string& name) {
  if (families.count(name)) return true;
  for (const char* suffix : {"_bucket", "_sum", "_count"}) {
    if (absl::EndsWith(name, suffix)) {
      auto it = families.find(name.substr(0, name.size() - strlen(suffix)));
      if (it != families.end() && it->second == "histogram") return true;
    }
  }
  return false;
}

// A query of the dashboard: its panel, the PromQL as Grafana would send it (variables replaced
// by what "All" sends), and the labels its legend shows.
struct PanelQuery {
  std::string panel;
  std::string expr;
  std::vector<std::string> legend_labels;
};

// $__rate_interval: Grafana sends at least four scrape intervals; the test's window spans the
// whole run so that every rate covers the activity.
constexpr char kRateWindow[] = "5m";

std::string Substitute(std::string expr) {
  return absl::StrReplaceAll(
      expr, {{"$__rate_interval", kRateWindow}, {"$instance", ".*"}, {"$job", ".*"}});
}

void CollectQueries(const rapidjson::Value& panels, std::vector<PanelQuery>* out) {
  for (const auto& p : panels.GetArray()) {
    if (p.HasMember("panels")) CollectQueries(p["panels"], out);
    if (!p.HasMember("targets")) continue;
    for (const auto& t : p["targets"].GetArray()) {
      PanelQuery q;
      q.panel = p["title"].GetString();
      q.expr = Substitute(t["expr"].GetString());
      std::string legend = t.HasMember("legendFormat") ? t["legendFormat"].GetString() : "";
      for (size_t at = legend.find("{{"); at != std::string::npos; at = legend.find("{{", at)) {
        size_t end = legend.find("}}", at);
        if (end == std::string::npos) break;
        q.legend_labels.push_back(legend.substr(at + 2, end - at - 2));
        at = end;
      }
      out->push_back(std::move(q));
    }
  }
}

// ---------------------------------------------------------------------------------------------
// The rules with promtool alone.

TEST(ObservabilityRulesTest, PromtoolChecksTheRulesAndTheirUnitTestsPass) {
  const std::string promtool = Which("promtool");
  if (promtool.empty()) {
    GTEST_SKIP() << "promtool is not installed (Debian package `prometheus`, which scripts/setup "
                    "installs): the rules are not checked";
  }
  CommandResult check = RunCommand(
      {promtool, "check", "rules", SourcePath("deploy/prometheus/rtdw-rules.yml")}, seconds(60));
  EXPECT_EQ(check.exit_code, 0) << check.out << check.err;
  // The unit tests: synthetic series for every alert, firing where it should and quiet where it
  // should not (promtool resolves rule_files next to the tests file).
  const std::string tests = SourcePath("deploy/prometheus/rtdw-rules.test.yml");
  CommandResult unit = RunCommand({promtool, "test", "rules", tests}, seconds(120));
  EXPECT_EQ(unit.exit_code, 0) << unit.out << unit.err;
  EXPECT_TRUE(absl::StrContains(unit.out + unit.err, "SUCCESS")) << unit.out << unit.err;

  // Every alert has a unit test that expects it to fire, and a runbook section in
  // docs/OPERATIONS.md that its annotation points at.
  const std::string rules = ReadFileOrEmpty(SourcePath("deploy/prometheus/rtdw-rules.yml"));
  const std::string test_text = ReadFileOrEmpty(tests);
  const std::string ops = ReadFileOrEmpty(SourcePath("docs/OPERATIONS.md"));
  int alerts = 0;
  for (absl::string_view line : absl::StrSplit(rules, '\n')) {
    line = absl::StripLeadingAsciiWhitespace(line);
    if (!absl::ConsumePrefix(&line, "- alert: ")) continue;
    const std::string name(line);
    ++alerts;
    EXPECT_TRUE(absl::StrContains(test_text, "alertname: " + name + "\n      exp_alerts:\n      -"))
        << name << " has no unit test in which it fires";
    std::string anchor = absl::AsciiStrToLower(name);
    EXPECT_TRUE(absl::StrContains(rules, "runbook: \"docs/OPERATIONS.md#" + anchor + "\""))
        << name << ": its runbook annotation should point at docs/OPERATIONS.md#" << anchor;
    EXPECT_TRUE(absl::StrContains(ops, "\n#### " + name + "\n"))
        << name << ": docs/OPERATIONS.md has no section \"#### " << name << "\"";
  }
  EXPECT_GE(alerts, 10);
}

// ---------------------------------------------------------------------------------------------
// A real Prometheus scraping a real rtdwd through the pipeline, an ES outage and a recovery.

struct LiveRun {
  absl::Status status = absl::OkStatus();  // of the set-up
  std::unique_ptr<PipelineStack> stack;
  std::unique_ptr<ChildProcess> daemon;
  std::unique_ptr<TempDir> prometheus_dir;
  std::unique_ptr<PrometheusServer> prometheus;
  rapidjson::Document truth_day;  // rtdw-gen's
  // Observed through Prometheus while ES was down.
  std::string outage_alerts;
  bool saw_backpressure = false;
  bool saw_es_down = false;
  bool saw_lag = false;  // dau's lag grew by kDauExtra while it was paused
  double lag_while_paused = 0;
  std::string lag_seen;
  std::string page;  // /metrics at the end
  std::string Context() const {
    return absl::StrCat("\nrtdwd log:\n", stack ? stack->DaemonLog() : "", "\nprometheus log:\n",
                        prometheus ? prometheus->Log() : "");
  }
};

class ObservabilityLiveTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    prometheus_ = Which("prometheus");
    promtool_ = Which("promtool");
    if (prometheus_.empty() || promtool_.empty()) return;  // each test skips
    run_ = new LiveRun;
    run_->status = SetUpRun(*run_);
  }
  static void TearDownTestSuite() {
    delete run_;
    run_ = nullptr;
  }
  void SetUp() override {
    if (run_ == nullptr) {
      GTEST_SKIP() << "prometheus / promtool are not installed (Debian package `prometheus`, "
                      "which scripts/setup installs): the live checks of /metrics, the rules and "
                      "the dashboard are skipped";
    }
    ASSERT_TRUE(run_->status.ok()) << run_->status << run_->Context();
  }

  static absl::Status SetUpRun(LiveRun& run);

  // An instant query that must succeed.
  static std::vector<Sample> Query(const std::string& expr) {
    auto r = run_->prometheus->Query(expr);
    EXPECT_TRUE(r.ok()) << expr << ": " << r.status();
    return r.ok() ? *r : std::vector<Sample>{};
  }

  static std::string prometheus_, promtool_;
  static LiveRun* run_;
};
std::string ObservabilityLiveTest::prometheus_;
std::string ObservabilityLiveTest::promtool_;
LiveRun* ObservabilityLiveTest::run_ = nullptr;

absl::Status ObservabilityLiveTest::SetUpRun(LiveRun& run) {
  const int http_port = FreePort();
  StackOptions o;
  o.partitions = 4;
  o.day = kDay;
  o.users = 300;
  o.orders = 300;
  // Small batches: while ES is down, dau's journal reaches its limit before the input ends, so
  // back-pressure holds lag up (the panels and alerts have something to show).
  o.batch_max_records = 200;
  o.http_listen = absl::StrCat("127.0.0.1:", http_port);
  o.extra_config = "[log]\nprogress_interval = 1\n";  // state figures refreshed every second
  run.stack = std::make_unique<PipelineStack>(o);
  PipelineStack& stack = *run.stack;
  if (auto st = stack.Start(); !st.ok()) return st;
  auto daemon = stack.StartDaemon();
  if (!daemon.ok()) return daemon.status();
  run.daemon = std::move(*daemon);
  run.prometheus_dir = std::make_unique<TempDir>();
  run.prometheus = std::make_unique<PrometheusServer>();
  if (auto st = run.prometheus->Start(prometheus_, *run.prometheus_dir, http_port); !st.ok()) {
    return st;
  }
  PrometheusServer& prom = *run.prometheus;
  std::string last;
  if (!prom.WaitForData("count(rtdw_job_up == 1) == 4 and on () rtdw_healthy == 1", seconds(90),
                        &last)) {
    return absl::DeadlineExceededError("rtdwd's four jobs never showed up healthy: " + last);
  }

  // Elasticsearch down while a day of input arrives.
  stack.es().Stop();
  if (auto st = stack.GenerateDb(); !st.ok()) return st;
  if (auto st = GenerateLogs(stack, kDay, 7, 6000, "0.02", &run.truth_day); !st.ok()) return st;
  run.saw_es_down =
      prom.WaitForData("rtdw_service_up{service=\"elasticsearch\"} == 0", seconds(60), &last);
  run.saw_backpressure = prom.WaitForData(
      "rtdw_journal_backlog{job=\"dau\"} >= rtdw_journal_backlog_limit", seconds(60), &last);
  // While dau is paused its input keeps growing, and so must its lag: read it, add records,
  // and wait for the lag to have grown by as many.
  const std::string dau_lag = "sum(rtdw_kafka_lag{job=\"dau\"})";
  auto paused_lag = prom.Query(dau_lag);
  if (!paused_lag.ok() || paused_lag->size() != 1) {
    return absl::InternalError(absl::StrCat(dau_lag, ": ", paused_lag.status().ToString()));
  }
  run.lag_while_paused = (*paused_lag)[0].value;
  {
    std::vector<std::string> values, keys;
    for (int i = 0; i < kDauExtra; ++i) {
      const std::string mid = absl::StrCat("mid_extra_", i);
      values.push_back(absl::StrCat("{\"mid\":\"", mid, "\",\"ts\":", kDayMs,
                                    ",\"page_id\":\"home\",\"during_time\":1000}"));
      keys.push_back(mid);
    }
    if (auto st = ProduceAll(stack.kafka().bootstrap(), "DWD_PAGE_LOG_TOPIC", values, keys);
        !st.ok()) {
      return st;
    }
  }
  run.saw_lag = prom.WaitForData(absl::StrCat(dau_lag, " >= ", run.lag_while_paused + kDauExtra),
                                 seconds(60), &last);
  run.lag_seen = last;
  // The alerts of the outage (pending: their `for` is minutes, longer than this outage).
  WaitFor(
      [&] {
        auto r = prom.Query("count by (alertname) (ALERTS)");
        run.outage_alerts = r.ok() ? Describe(*r) : "";
        return absl::StrContains(run.outage_alerts, "RtdwServiceUnavailable") &&
               absl::StrContains(run.outage_alerts, "RtdwJournalBackPressure");
      },
      seconds(20));

  // ES back: everything is delivered.
  if (auto st = stack.es().Restart(); !st.ok()) return st;
  const int64_t records = run.truth_day["records"].GetInt64();
  const int64_t pages = run.truth_day["dwd"]["DWD_PAGE_LOG_TOPIC"].GetInt64();
  auto caught_up = [&](int64_t log_records, int64_t page_records) {
    return absl::StrCat("rtdw_records_in_total{job=\"log-split\"} == ", log_records,
                        " and on () rtdw_records_in_total{job=\"dau\"} == ", page_records,
                        " and on () sum(rtdw_journal_backlog) == 0",
                        " and on () sum(rtdw_kafka_lag) == 0");
  };
  if (!prom.WaitForData(caught_up(records, pages + kDauExtra), seconds(180), &last)) {
    return absl::DeadlineExceededError("the pipeline never caught up after ES came back: " + last);
  }

  // Page records dau refuses, written straight to its topic: first pages of a day 30 days back
  // (`late`: older than the de-dup retention behind every partition's watermark), first pages
  // 10 days ahead of the wall clock (`future`), and records that are not JSON (`not_json`).
  std::vector<std::string> values, keys;
  auto add = [&](int n, const std::string& prefix, int64_t ts_ms, bool json) {
    for (int i = 0; i < n; ++i) {
      const std::string mid = absl::StrCat(prefix, i);
      values.push_back(json ? absl::StrCat("{\"mid\":\"", mid, "\",\"ts\":", ts_ms,
                                           ",\"page_id\":\"home\",\"during_time\":1000}")
                            : absl::StrCat("{\"mid\":\"", mid, "\",\"ts\":"));
      keys.push_back(mid);
    }
  };
  add(kDauLate, "mid_late_", kOldDayMs, true);
  add(kDauFuture, "mid_future_", (absl::ToUnixSeconds(absl::Now()) + 10 * 86400) * 1000, true);
  add(kDauNotJson, "mid_cut_", 0, false);
  if (auto st = ProduceAll(stack.kafka().bootstrap(), "DWD_PAGE_LOG_TOPIC", values, keys);
      !st.ok()) {
    return st;
  }
  if (!prom.WaitForData(caught_up(records, pages + kDauExtra + static_cast<int64_t>(values.size())),
                        seconds(120), &last)) {
    return absl::DeadlineExceededError("dau never consumed the refused records: " + last);
  }
  sleep(3);  // a few more scrapes and rule evaluations of the final state
  run.page = HttpGet(http_port, "/metrics").second;
  if (run.page.empty()) return absl::InternalError("rtdwd's /metrics is empty");
  return absl::OkStatus();
}

// Issue 16: metric names promtool's linter accepts, on a live page of all four jobs after real
// traffic (dead letters, de-dup days, lag series, reloads at 0, every histogram).
TEST_F(ObservabilityLiveTest, MetricsPassPromtoolCheckMetrics) {
  const std::string page_path = WriteFile(run_->prometheus_dir->Sub("metrics.txt"), run_->page);
  CommandResult r =
      RunCommand({"/bin/sh", "-c", absl::StrCat(promtool_, " check metrics < ", page_path)});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_EQ(r.out + r.err, "") << "promtool check metrics complains";
  for (const char* job : {"log-split", "db-split", "dau", "order-wide"}) {
    EXPECT_TRUE(absl::StrContains(run_->page, absl::StrCat("rtdw_records_in_total{job=\"", job)))
        << job;
  }
}

// The series the rules added read what they say: the disk's free space (as statvfs sees it, give
// or take what other processes wrote meanwhile) and state.min_free_mb (64 by default), the
// backlog limit, /health.
TEST_F(ObservabilityLiveTest, NewSeriesReadWhatTheySay) {
  struct statvfs st;
  ASSERT_EQ(statvfs(run_->stack->state_dir().c_str(), &st), 0);
  const double free_bytes = static_cast<double>(st.f_bavail) * st.f_frsize;
  for (const Sample& s : Query("rtdw_state_free_bytes")) {
    EXPECT_NEAR(s.value, free_bytes, 1e9) << Describe({s});
  }
  EXPECT_EQ(Query("rtdw_state_free_bytes").size(), 4u);
  EXPECT_EQ(Query("rtdw_state_min_free_bytes == 64 * 1024 * 1024").size(), 4u);
  EXPECT_EQ(Query("rtdw_journal_backlog_limit == 4").size(), 2u);  // dau, order-wide
  EXPECT_EQ(Query("rtdw_healthy == 1").size(), 1u);
  EXPECT_EQ(Query("rtdw_batch_max_seconds == 0.05").size(), 4u);  // the stack's batch_max_ms 50
}

// The rules as Prometheus loaded them: every rule evaluates without error on the live scrape,
// every recording rule returns data (both its expression and the series it records), and every
// metric name a rule reads is exported by rtdwd.
TEST_F(ObservabilityLiveTest, EveryRuleEvaluatesOnTheLiveScrapeAndReadsExportedMetrics) {
  auto rules = run_->prometheus->Api("rules");
  ASSERT_TRUE(rules.ok()) << rules.status();
  const auto families = Families(run_->page);
  int recording = 0, alerting = 0;
  for (const auto& group : (*rules)["groups"].GetArray()) {
    for (const auto& rule : group["rules"].GetArray()) {
      const std::string name = rule["name"].GetString();
      const std::string expr = rule["query"].GetString();
      SCOPED_TRACE(name + ": " + expr);
      EXPECT_EQ(std::string(rule["health"].GetString()), "ok")
          << (rule.HasMember("lastError") ? rule["lastError"].GetString() : "");
      for (const std::string& metric : MetricNamesIn(expr)) {
        if (metric == "up") continue;
        EXPECT_TRUE(Exported(families, metric)) << metric << " is not in rtdwd's /metrics";
      }
      auto result = run_->prometheus->Query(expr);
      ASSERT_TRUE(result.ok()) << result.status();
      if (std::string(rule["type"].GetString()) == "recording") {
        ++recording;
        EXPECT_FALSE(result->empty()) << "a recording rule returns no data on the live scrape";
        auto recorded = run_->prometheus->Query(name);
        ASSERT_TRUE(recorded.ok()) << recorded.status();
        EXPECT_FALSE(recorded->empty()) << "Prometheus recorded nothing under " << name;
        for (const Sample& s : *recorded) {
          EXPECT_TRUE(s.labels.count("instance") && s.labels.count("job")) << Describe({s});
        }
      } else {
        ++alerting;
      }
    }
  }
  EXPECT_GE(recording, 4);
  EXPECT_GE(alerting, 10);
  // The up selector of RtdwdDown matches the scrape job the docs prescribe.
  EXPECT_EQ(Query(absl::StrCat("up{job=\"", kScrapeJob, "\"} == 1")).size(), 1u);
}

// Every query of the dashboard returns data now, each series carries the labels its legend
// shows, and each panel (but the group-mode ones: this daemon is not in a group) showed a
// non-zero value at some point of the run. The template variables list what they should.
TEST_F(ObservabilityLiveTest, EveryDashboardQueryReturnsTheLabelsItsPanelShows) {
  rapidjson::Document dash;
  dash.Parse(ReadFileOrEmpty(SourcePath("deploy/grafana/rtdw-dashboard.json")).c_str());
  ASSERT_FALSE(dash.HasParseError());
  std::vector<PanelQuery> queries;
  CollectQueries(dash["panels"], &queries);
  ASSERT_GE(queries.size(), 20u);
  const auto families = Families(run_->page);
  std::map<std::string, double> panel_max;  // over the run, over the panel's queries
  for (const PanelQuery& q : queries) {
    SCOPED_TRACE(q.panel + ": " + q.expr);
    for (const std::string& metric : MetricNamesIn(q.expr)) {
      EXPECT_TRUE(Exported(families, metric)) << metric << " is not in rtdwd's /metrics";
    }
    std::vector<Sample> now = Query(q.expr);
    EXPECT_FALSE(now.empty()) << "no data";
    for (const Sample& s : now) {
      for (const std::string& label : q.legend_labels) {
        EXPECT_FALSE(s.labels.count(label) == 0 || s.labels.at(label).empty())
            << "the legend shows {{" << label
            << "}} but the series has no such label: " << Describe({s});
      }
    }
    for (const Sample& s : Query(absl::StrCat("max_over_time((", q.expr, ")[10m:1s])"))) {
      if (!std::isnan(s.value)) panel_max[q.panel] = std::max(panel_max[q.panel], s.value);
    }
  }
  // Group mode's panels, superseded writes (a lone daemon's deliveries never lose to a newer
  // version here) and fetcher wakes (its consumers keep up with a few MB against the 16 MB
  // prefetch bound; ops_test makes them wake): their queries must still return data, at 0.
  const std::set<std::string> idle = {"Group assignments",        "Partitions rebuilt",
                                      "Fenced journal entries",   "Revokes: wait and give-ups",
                                      "Superseded ES writes / s", "Kafka fetcher wakes / s"};
  for (const PanelQuery& q : queries) {
    if (idle.count(q.panel)) continue;
    EXPECT_GT(panel_max[q.panel], 0) << q.panel << " never showed anything during the run";
  }

  // Template variables: `job` lists the four jobs, `instance` the scraped daemon.
  std::map<std::string, std::string> variable_queries;
  for (const auto& v : dash["templating"]["list"].GetArray()) {
    if (std::string(v["type"].GetString()) == "query") {
      variable_queries[v["name"].GetString()] = v["definition"].GetString();
    }
  }
  ASSERT_EQ(variable_queries.size(), 2u);
  auto label_values = [&](const std::string& definition) {
    // label_values(SELECTOR, LABEL)
    const size_t open = definition.find('('), comma = definition.rfind(',');
    const std::string selector = Substitute(definition.substr(open + 1, comma - open - 1));
    std::string label = definition.substr(comma + 1);
    label = std::string(absl::StripAsciiWhitespace(label.substr(0, label.size() - 1)));
    std::set<std::string> values;
    for (const Sample& s : Query(absl::StrCat("group by (", label, ") (", selector, ")"))) {
      values.insert(s.labels.count(label) ? s.labels.at(label) : "");
    }
    return values;
  };
  EXPECT_EQ(label_values(variable_queries["job"]),
            (std::set<std::string>{"log-split", "db-split", "dau", "order-wide"}));
  EXPECT_EQ(label_values(variable_queries["instance"]).size(), 1u);
}

// The dead-letter panel's numbers through Prometheus equal what the input held: log-split's by
// reason as rtdw-gen's truth counts its malformed records, dau's as the test wrote them (late,
// future, not_json), nothing else.
TEST_F(ObservabilityLiveTest, DeadLettersByReasonMatchTheInput) {
  std::map<std::string, int64_t> expected_split;
  const rapidjson::Value& truth = run_->truth_day["dead_letters"];
  for (auto it = truth.MemberBegin(); it != truth.MemberEnd(); ++it) {
    expected_split[it->name.GetString()] += it->value.GetInt64();
  }
  ASSERT_FALSE(expected_split.empty()) << "the generator made no malformed records";
  std::map<std::string, int64_t> got_split, got_dau;
  for (const Sample& s : Query("rtdw_dead_letters_total{job=~\"log-split|dau\"} > 0")) {
    (s.labels.at("job") == "dau" ? got_dau : got_split)[s.labels.at("reason")] =
        static_cast<int64_t>(s.value);
  }
  EXPECT_EQ(got_split, expected_split);
  EXPECT_EQ(got_dau, (std::map<std::string, int64_t>{
                         {"late", kDauLate}, {"future", kDauFuture}, {"not_json", kDauNotJson}}));
  // The per-job total agrees with the sum by reason, for every job.
  EXPECT_TRUE(Query("sum by (job) (rtdw_dead_letters_total) != sum by (job) "
                    "(rtdw_dead_letter_records_total)")
                  .empty());
  // Those of dau are kept in its store.
  auto kept = Query("rtdw_state_dead_letters{job=\"dau\"}");
  ASSERT_EQ(kept.size(), 1u);
  EXPECT_EQ(kept[0].value, kDauLate + kDauFuture + kDauNotJson);
}

// While ES was down Prometheus saw it (service down, back-pressure, lag) and the matching alerts
// went pending; once everything was delivered only the retry alert, whose 5-minute window still
// holds the outage's retries, may remain.
TEST_F(ObservabilityLiveTest, AlertsGoPendingDuringAnEsOutageAndClearAfterIt) {
  EXPECT_TRUE(run_->saw_es_down);
  EXPECT_TRUE(run_->saw_backpressure);
  EXPECT_TRUE(run_->saw_lag) << "dau's lag was " << run_->lag_while_paused
                             << " when it paused; after " << kDauExtra
                             << " more records it still shows " << run_->lag_seen;
  EXPECT_TRUE(absl::StrContains(run_->outage_alerts, "RtdwServiceUnavailable"))
      << run_->outage_alerts;
  EXPECT_TRUE(absl::StrContains(run_->outage_alerts, "RtdwJournalBackPressure"))
      << run_->outage_alerts;
  std::set<std::string> now;
  for (const Sample& s : Query("ALERTS")) now.insert(s.labels.at("alertname"));
  now.erase("RtdwEsRetrying");
  EXPECT_TRUE(now.empty()) << "alerts pending or firing on a caught-up pipeline: "
                           << absl::StrJoin(now, ", ");
}

}  // namespace
}  // namespace rtdw::testing
