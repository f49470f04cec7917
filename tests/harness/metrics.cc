#include "tests/harness/metrics.h"

#include <chrono>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "tests/harness/process.h"

namespace rtdw::testing {

std::string ScrapeMetrics(int port) {
  CommandResult r = RunCommand(
      {"curl", "-s", "--max-time", "5", absl::StrCat("http://127.0.0.1:", port, "/metrics")},
      std::chrono::seconds(10));
  return r.exit_code == 0 ? r.out : std::string();
}

std::optional<double> SampleSum(const std::string& page, const std::string& name,
                                const std::vector<std::string>& labels) {
  double sum = 0;
  bool any = false;
  for (absl::string_view line : absl::StrSplit(page, '\n')) {
    if (!absl::StartsWith(line, name)) continue;
    absl::string_view rest = line.substr(name.size());
    if (rest.empty() || (rest[0] != '{' && rest[0] != ' ')) continue;
    const size_t sp = rest.rfind(' ');
    if (sp == absl::string_view::npos) continue;
    absl::string_view label_set = rest.substr(0, sp);
    bool all = true;
    for (const std::string& l : labels) all = all && absl::StrContains(label_set, l);
    double v = 0;
    if (all && absl::SimpleAtod(rest.substr(sp + 1), &v)) {
      sum += v;
      any = true;
    }
  }
  if (!any) return std::nullopt;
  return sum;
}

}  // namespace rtdw::testing
