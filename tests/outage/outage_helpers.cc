#include "tests/outage/outage_helpers.h"

#include <chrono>
#include <cstdlib>
#include <iostream>
#include <set>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"
#include "tests/harness/kafka_reader.h"

namespace rtdw::testing {

using std::chrono::milliseconds;
using std::chrono::seconds;

bool Full() {
  const char* v = getenv("RTDW_TEST_SIZE");
  return v != nullptr && std::string(v) == "full";
}

void SleepMs(int ms) { std::this_thread::sleep_for(milliseconds(ms)); }

StackOptions Sized(int events) {
  StackOptions o;
  o.events = events;
  o.mids = events / 10;
  o.orders = events / 40;
  o.users = events / 50;
  o.partitions = Full() ? 8 : 4;  // the mock keeps ~5 MB per partition (KAFKA-MOCK.md)
  o.batch_max_records = 300;
  return o;
}

StackOptions SizedWithHttp(int events, int* port) {
  StackOptions o = Sized(events);
  *port = FreePort();
  o.http_listen = absl::StrCat("127.0.0.1:", *port);
  return o;
}

absl::Status StartWithDims(PipelineStack& stack) {
  if (auto st = stack.Start(); !st.ok()) return st;
  if (auto st = stack.GenerateDb(); !st.ok()) return st;
  if (int rc = stack.RunToIdle("db-split"); rc != 0) {
    return absl::InternalError(absl::StrCat("db-split exited ", rc, "\n", stack.DaemonLog()));
  }
  return absl::OkStatus();
}

std::string Http(const std::string& url, int* code, const std::string& method,
                 const std::string& body) {
  std::vector<std::string> argv = {"curl", "-s", "-m", "5", "-X", method, "-w", "\n%{http_code}"};
  if (!body.empty() || method == "POST") {
    argv.insert(argv.end(), {"-H", "Content-Type: application/json", "-d", body});
  }
  argv.push_back(url);
  CommandResult r = RunCommand(argv, seconds(10));
  std::string out = r.out;
  size_t nl = out.rfind('\n');
  int status = 0;
  if (nl != std::string::npos) {
    (void)absl::SimpleAtoi(out.substr(nl + 1), &status);
    out.resize(nl);
  }
  if (code != nullptr) *code = status;
  return out;
}

double Metric(const std::string& text, const std::string& name, const std::string& label) {
  return SampleSum(text, name, label.empty() ? std::vector<std::string>{} : std::vector{label})
      .value_or(-1);
}

void ExpectDwdComplete(PipelineStack& stack, const rapidjson::Value& truth) {
  ASSERT_TRUE(truth.IsObject() && truth.HasMember("dwd"));
  for (auto it = truth["dwd"].MemberBegin(); it != truth["dwd"].MemberEnd(); ++it) {
    std::string topic = it->name.GetString();
    auto records = ReadTopic(stack.kafka().bootstrap(), topic);
    ASSERT_TRUE(records.ok()) << topic << ": " << records.status();
    std::set<std::string> distinct;
    for (const TopicRecord& r : *records) {
      auto src = r.headers.find("rtdw-src");
      auto idx = r.headers.find("rtdw-idx");
      distinct.insert(absl::StrCat(src == r.headers.end() ? "?" : src->second, "#",
                                   idx == r.headers.end() ? "" : idx->second));
    }
    EXPECT_EQ(distinct.size(), it->value.GetUint64())
        << topic << ": " << records->size() << " records, " << distinct.size() << " distinct";
    std::cout << topic << ": " << distinct.size() << " distinct of " << records->size() << "\n";
  }
}

}  // namespace rtdw::testing
