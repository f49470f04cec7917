// What the outage and shutdown tests share: sized days of generated input, the daemon's HTTP
// endpoint, a background runner, and the check of the split jobs' DWD topics against the truth.
#ifndef RTDW_TESTS_OUTAGE_OUTAGE_HELPERS_H_
#define RTDW_TESTS_OUTAGE_OUTAGE_HELPERS_H_

#include <atomic>
#include <functional>
#include <string>
#include <thread>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "rapidjson/document.h"
#include "tests/harness/metrics.h"
#include "tests/pipeline/pipeline_stack.h"

namespace rtdw::testing {

// RTDW_TEST_SIZE=full: the larger sizes.
bool Full();
void SleepMs(int ms);

// A generated day of the given size (the chaos test's proportions).
StackOptions Sized(int events);
// Sized(events), with the daemon's /metrics and /health on a free loopback port (*port).
StackOptions SizedWithHttp(int events, int* port);

// Starts the stack's services and runs db-split to idle over a generated day of CDC: the
// dimension rows the ES jobs look up are in Redis before the test's daemon starts.
absl::Status StartWithDims(PipelineStack& stack);

// GET (or `method` with `body`) through curl: the body, and the status code in *code.
std::string Http(const std::string& url, int* code = nullptr, const std::string& method = "GET",
                 const std::string& body = "");

// Sum of the samples of metric `name` (exact name) whose labels contain `label` ("" = all);
// -1 when no sample is there (SampleSum of tests/harness/metrics.h).
double Metric(const std::string& text, const std::string& name, const std::string& label = "");

// The daemon's HTTP endpoint (/metrics, /health).
class Endpoint {
 public:
  explicit Endpoint(int port) : port_(port), base_(absl::StrCat("http://127.0.0.1:", port)) {}
  std::string Metrics() { return ScrapeMetrics(port_); }
  double Value(const std::string& name, const std::string& label = "") {
    return Metric(Metrics(), name, label);
  }
  // The /health body; *code its status (0 when not listening).
  std::string Health(int* code) { return Http(base_ + "/health", code); }
  bool Up() {
    int code = 0;
    Health(&code);
    return code == 200 || code == 503;
  }

 private:
  int port_;
  std::string base_;
};

// Runs `fn` on a thread of its own (e.g. rtdw-gen producing the day while the daemon runs, so
// that an outage hits mid-run); joined at the latest on destruction.
class Background {
 public:
  explicit Background(std::function<void()> fn)
      : thread_([fn = std::move(fn), this] {
          fn();
          done_ = true;
        }) {}
  ~Background() {
    if (thread_.joinable()) thread_.join();
  }
  void Join() { thread_.join(); }
  bool done() const { return done_; }

 private:
  std::atomic<bool> done_{false};
  std::thread thread_;
};

// Every record the truth says a split job must write is in its DWD topic: the distinct
// (rtdw-src, rtdw-idx) pairs per topic equal the truth's count (a batch retried after a failure
// may have written some twice: downstream de-duplicates by position). An offset committed for a
// record never produced would show here as a missing record.
void ExpectDwdComplete(PipelineStack& stack, const rapidjson::Value& truth);

}  // namespace rtdw::testing

#endif  // RTDW_TESTS_OUTAGE_OUTAGE_HELPERS_H_
