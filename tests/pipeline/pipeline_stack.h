// The whole local stack for pipeline tests: rtdw-kafka-mock, redis-server, rtdw-es-lite, a
// config for rtdwd, generated input (rtdw-gen) with its truth file, and the comparison of what
// landed in ES with that truth (docs/FORMATS.md §4, §5).
#ifndef RTDW_TESTS_PIPELINE_PIPELINE_STACK_H_
#define RTDW_TESTS_PIPELINE_PIPELINE_STACK_H_

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "rapidjson/document.h"
#include "tests/harness/services.h"

namespace rtdw::testing {

struct StackOptions {
  int partitions = 4;
  int batch_max_records = 1000;
  int batch_max_ms = 50;
  std::vector<std::string> es_args;  // extra rtdw-es-lite flags (faults)
  std::string day = "2026-11-24";
  int seed = 3;
  int mids = 1500;
  int users = 400;
  int events = 20000;
  int log_days = 1;         // rtdw-gen logs --days
  double log_disorder = 0;  // rtdw-gen logs --disorder
  // More rtdw-gen logs flags (e.g. --malformed-share F).
  std::vector<std::string> log_args;
  int orders = 600;
  int days = 1;             // rtdw-gen db --days
  int detail_lag_days = 0;  // rtdw-gen db --detail-lag-days
  // Additive knobs (outage tests): "" keeps the defaults (no HTTP endpoint, state under the
  // stack's dir); `extra_config` is appended to the config as is (e.g. "[jobs.dau]\n...").
  std::string http_listen;
  std::string state_dir;
  std::string extra_config;
  int state_block_cache_mb = 0;  // > 0: state.block_cache_mb (small: small memtables and WAL)
  // shutdown.timeout of every config the stack writes. Tests of the stop's own bound keep 5 s;
  // group tests, whose stops wait for the coordinator to answer a leave, give it more.
  int shutdown_timeout_s = 5;
};

// What the comparison expects of the dimension fields (user_*, province_*).
enum class DimExpectation {
  kFromTruth,  // present as the db truth's dims say (the default)
  kAbsent,     // Redis held no dimension rows: the fields must be absent (docs/FORMATS.md §4)
};

// The outcome of comparing ES with the truth.
struct Comparison {
  size_t expected = 0;
  size_t found = 0;
  size_t missing = 0;
  size_t extra = 0;
  size_t wrong = 0;
  std::vector<std::string> samples;  // a few human-readable differences
  bool exact() const { return missing == 0 && extra == 0 && wrong == 0 && found == expected; }
  std::string Summary() const;
};

class PipelineStack {
 public:
  explicit PipelineStack(StackOptions options = {});
  absl::Status Start();

  // rtdw-gen into the ODS topics, with truth files.
  absl::Status GenerateDb();
  absl::Status GenerateLogs();

  // The config path for rtdwd (all four jobs enabled; --job picks one).
  const std::string& config() const { return config_path_; }
  // rtdwd --config C [--job J] --exit-when-idle S; returns the exit code.
  int RunToIdle(const std::string& job = "", double idle_s = 1.5,
                const std::vector<std::string>& env = {}, std::string* log = nullptr);
  // Starts rtdwd in the background (stderr to a log file in the stack's dir).
  absl::StatusOr<std::unique_ptr<ChildProcess>> StartDaemon(
      const std::string& job = "", const std::vector<std::string>& env = {});
  std::string DaemonLog() const;

  // Another rtdwd instance's config: its own state dir (state-<name>), the given jobs, and
  // `kafka_lines` added to [kafka] (e.g. `group = "g"`); `kafka_properties` go to
  // [kafka.properties]; `extra` is appended as is (e.g. "[log]\n...").
  absl::StatusOr<std::string> WriteInstanceConfig(
      const std::string& name, const std::vector<std::string>& jobs, const std::string& kafka_lines,
      const std::map<std::string, std::string>& kafka_properties, const std::string& extra = "");
  // rtdwd --config `config` in the background, stderr to <dir>/<log_name>.
  absl::StatusOr<std::unique_ptr<ChildProcess>> StartInstance(const std::string& config,
                                                              const std::string& log_name);
  std::string LogTail(const std::string& log_name, size_t bytes = 6000) const;

  // All documents of `index_pattern` (DAU or order-wide indices) by _id; refreshes first, pages
  // sorted on the template's unique keyword (mid, detail_id). With `by_index`, keyed by
  // "<index>/<_id>" (the same _id may then be in several indices, as a mid on several days).
  absl::StatusOr<std::map<std::string, std::string>> EsDocuments(const std::string& pattern,
                                                                 bool by_index = false);
  // DAU / order-wide documents in ES vs the truth (dimension fields computed from the db truth).
  absl::StatusOr<Comparison> CompareDau(DimExpectation dims = DimExpectation::kFromTruth);
  absl::StatusOr<Comparison> CompareOrderWide(DimExpectation dims = DimExpectation::kFromTruth);
  // Number of DIM:* keys the db truth says Redis must hold.
  size_t ExpectedDimKeys() const;
  // The truth files (null before GenerateLogs / GenerateDb).
  const rapidjson::Document& log_truth() const { return log_truth_; }
  const rapidjson::Document& db_truth() const { return db_truth_; }
  // The state dir of the main config.
  std::string state_dir() const;

  KafkaMock& kafka() { return kafka_; }
  RedisServer& redis() { return redis_; }
  EsLite& es() { return es_; }
  const TempDir& dir() const { return dir_; }
  const StackOptions& options() const { return options_; }

 private:
  absl::Status WriteConfig();
  StackOptions options_;
  TempDir dir_;
  KafkaMock kafka_;
  RedisServer redis_;
  EsLite es_;
  std::string config_path_;
  rapidjson::Document log_truth_;
  rapidjson::Document db_truth_;
};

// Compares one document with its expected fields: numbers by value, everything else exactly;
// `allowed_extra` fields may appear in `actual` without being expected. "" when equal.
std::string DiffDocument(const rapidjson::Value& expected, const rapidjson::Value& actual,
                         const std::vector<std::string>& allowed_extra);

// gtest checks of a finished day, shared by the pipeline, chaos, group and outage tests.
// ES holds exactly the generator's truth for both wide tables, document by document (each
// table's summary is printed).
void ExpectEsExact(PipelineStack& stack, DimExpectation dims = DimExpectation::kFromTruth);
// `rtdw verify` of the stack's day (the dau store against ES) exits 0 and says "ok".
void ExpectVerifyOk(PipelineStack& stack);

}  // namespace rtdw::testing

#endif  // RTDW_TESTS_PIPELINE_PIPELINE_STACK_H_
