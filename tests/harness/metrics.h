// Reading rtdwd's /metrics page (the Prometheus text format) in tests: one scraper and one
// sample lookup, shared by the ops, outage, unit-contract and fencing tests.
#ifndef RTDW_TESTS_HARNESS_METRICS_H_
#define RTDW_TESTS_HARNESS_METRICS_H_

#include <optional>
#include <string>
#include <vector>

namespace rtdw::testing {

// GET http://127.0.0.1:<port>/metrics (curl, 5 s at most): the page, "" when nothing answers.
std::string ScrapeMetrics(int port);

// The sum of the samples of metric `name` (exactly that name: `rtdw_x` does not match
// `rtdw_x_total` or `rtdw_x_bucket`) whose label set contains every text of `labels` (each
// `key="value"`); nullopt when the page has no such sample. With every label of a series given
// that is the series' value.
std::optional<double> SampleSum(const std::string& page, const std::string& name,
                                const std::vector<std::string>& labels = {});

}  // namespace rtdw::testing

#endif  // RTDW_TESTS_HARNESS_METRICS_H_
