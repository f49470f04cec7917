#include "tests/pipeline/pipeline_stack.h"

#include <cmath>
#include <fstream>
#include <iostream>
#include <set>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "connectors/es/es_client.h"
#include "core/event_time.h"
#include "gtest/gtest.h"
#include "rapidjson/stringbuffer.h"
#include "rapidjson/writer.h"

namespace rtdw::testing {
namespace {

std::string ToJson(const rapidjson::Value& v) {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  v.Accept(w);
  return std::string(buf.GetString(), buf.GetSize());
}

absl::Status LoadJson(const std::string& path, rapidjson::Document* doc) {
  std::string text = ReadFileOrEmpty(path);
  if (text.empty()) return absl::NotFoundError(absl::StrCat("cannot read ", path));
  doc->Parse<rapidjson::kParseFullPrecisionFlag>(text.c_str(), text.size());
  if (doc->HasParseError()) return absl::InvalidArgumentError(absl::StrCat("bad JSON in ", path));
  return absl::OkStatus();
}

bool SameValue(const rapidjson::Value& a, const rapidjson::Value& b) {
  if (a.IsNumber() && b.IsNumber()) return std::fabs(a.GetDouble() - b.GetDouble()) < 1e-9;
  return a == b;
}

// A dimension field is written only when present and neither null nor "".
bool Usable(const rapidjson::Value& row, const char* field) {
  if (!row.IsObject()) return false;
  auto it = row.FindMember(field);
  if (it == row.MemberEnd() || it->value.IsNull()) return false;
  return !(it->value.IsString() && it->value.GetStringLength() == 0);
}

}  // namespace

std::string Comparison::Summary() const {
  return absl::StrCat("expected ", expected, ", found ", found, ", missing ", missing, ", extra ",
                      extra, ", wrong ", wrong, samples.empty() ? "" : "; e.g. ",
                      absl::StrJoin(samples, " | "));
}

std::string DiffDocument(const rapidjson::Value& expected, const rapidjson::Value& actual,
                         const std::vector<std::string>& allowed_extra) {
  if (!actual.IsObject()) return "not an object";
  for (auto it = expected.MemberBegin(); it != expected.MemberEnd(); ++it) {
    if (it->value.IsNull()) continue;  // null means absent
    auto a = actual.FindMember(it->name);
    if (a == actual.MemberEnd()) return absl::StrCat("missing field ", it->name.GetString());
    if (!SameValue(it->value, a->value)) {
      return absl::StrCat(it->name.GetString(), ": expected ", ToJson(it->value), ", got ",
                          ToJson(a->value));
    }
  }
  for (auto a = actual.MemberBegin(); a != actual.MemberEnd(); ++a) {
    std::string name = a->name.GetString();
    auto e = expected.FindMember(a->name);
    bool expected_here = e != expected.MemberEnd() && !e->value.IsNull();
    if (!expected_here &&
        std::find(allowed_extra.begin(), allowed_extra.end(), name) == allowed_extra.end()) {
      return absl::StrCat("unexpected field ", name, "=", ToJson(a->value));
    }
  }
  return "";
}

PipelineStack::PipelineStack(StackOptions options) : options_(std::move(options)) {}

absl::Status PipelineStack::Start() {
  KafkaMock::Options ko;
  ko.partitions = options_.partitions;
  if (auto st = kafka_.Start(ko); !st.ok()) return st;
  if (auto st = redis_.Start(); !st.ok()) return st;
  if (auto st = es_.Start(options_.es_args); !st.ok()) return st;
  return WriteConfig();
}

absl::Status PipelineStack::WriteConfig() {
  config_path_ = dir_.Sub("rtdw.toml");
  std::ofstream out(config_path_);
  out << "[kafka]\nbrokers = \"" << kafka_.bootstrap() << "\"\n"
      << "[redis]\nurl = \"" << redis_.url() << "\"\n"
      << "[es]\nurl = \"" << es_.url() << "\"\n"
      << "[state]\ndir = \"" << state_dir() << "\"\n"
      << (options_.state_block_cache_mb > 0
              ? absl::StrCat("block_cache_mb = ", options_.state_block_cache_mb, "\n")
              : "")
      << "[http]\nlisten = \"" << options_.http_listen << "\"\n"
      << "[shutdown]\ntimeout = " << options_.shutdown_timeout_s << "\n"
      << "[jobs]\nenabled = [\"log-split\", \"db-split\", \"dau\", \"order-wide\"]\n"
      << "batch_max_records = " << options_.batch_max_records << "\n"
      << "batch_max_ms = " << options_.batch_max_ms << "\n"
      << options_.extra_config << "\n";
  return out ? absl::OkStatus() : absl::InternalError("cannot write the config");
}

absl::Status PipelineStack::GenerateDb() {
  CommandResult r = RunCommand(
      {BinDir() + "/rtdw-gen", "db", "--day", options_.day, "--seed", std::to_string(options_.seed),
       "--users", std::to_string(options_.users), "--orders", std::to_string(options_.orders),
       "--days", std::to_string(options_.days), "--detail-lag-days",
       std::to_string(options_.detail_lag_days), "--brokers", kafka_.bootstrap(), "--truth",
       dir_.Sub("db-truth.json"), "--quiet"},
      std::chrono::seconds(120));
  if (r.exit_code != 0) return absl::InternalError(absl::StrCat("rtdw-gen db: ", r.err));
  return LoadJson(dir_.Sub("db-truth.json"), &db_truth_);
}

absl::Status PipelineStack::GenerateLogs() {
  std::vector<std::string> argv = {BinDir() + "/rtdw-gen",
                                   "logs",
                                   "--day",
                                   options_.day,
                                   "--seed",
                                   std::to_string(options_.seed),
                                   "--mids",
                                   std::to_string(options_.mids),
                                   "--users",
                                   std::to_string(options_.users),
                                   "--events",
                                   std::to_string(options_.events),
                                   "--key",
                                   "mid",
                                   "--days",
                                   std::to_string(options_.log_days),
                                   "--disorder",
                                   absl::StrCat(options_.log_disorder),
                                   "--brokers",
                                   kafka_.bootstrap(),
                                   "--truth",
                                   dir_.Sub("log-truth.json"),
                                   "--quiet"};
  argv.insert(argv.end(), options_.log_args.begin(), options_.log_args.end());
  CommandResult r = RunCommand(argv, std::chrono::seconds(120));
  if (r.exit_code != 0) return absl::InternalError(absl::StrCat("rtdw-gen logs: ", r.err));
  return LoadJson(dir_.Sub("log-truth.json"), &log_truth_);
}

int PipelineStack::RunToIdle(const std::string& job, double idle_s,
                             const std::vector<std::string>& env, std::string* log) {
  std::vector<std::string> argv = {BinDir() + "/rtdwd", "--config", config_path_,
                                   "--exit-when-idle", absl::StrCat(idle_s)};
  if (!job.empty()) {
    argv.push_back("--job");
    argv.push_back(job);
  }
  CommandResult r = RunCommand(argv, std::chrono::seconds(240), env);
  if (log) *log = r.err;
  std::ofstream(dir_.Sub("rtdwd.log"), std::ios::app) << r.err;
  return r.exit_code;
}

absl::StatusOr<std::unique_ptr<ChildProcess>> PipelineStack::StartDaemon(
    const std::string& job, const std::vector<std::string>& env) {
  std::vector<std::string> argv = {BinDir() + "/rtdwd", "--config", config_path_};
  if (!job.empty()) {
    argv.push_back("--job");
    argv.push_back(job);
  }
  ProcessOptions popts;
  popts.stderr_path = dir_.Sub("rtdwd.log");
  popts.env = env;
  return ChildProcess::Start(argv, popts);
}

absl::StatusOr<std::string> PipelineStack::WriteInstanceConfig(
    const std::string& name, const std::vector<std::string>& jobs, const std::string& kafka_lines,
    const std::map<std::string, std::string>& kafka_properties, const std::string& extra) {
  std::string path = dir_.Sub(absl::StrCat("rtdw-", name, ".toml"));
  std::ofstream out(path);
  out << "[kafka]\nbrokers = \"" << kafka_.bootstrap() << "\"\n" << kafka_lines << "\n";
  if (!kafka_properties.empty()) {
    out << "[kafka.properties]\n";
    for (const auto& [k, v] : kafka_properties) out << "\"" << k << "\" = \"" << v << "\"\n";
  }
  out << "[redis]\nurl = \"" << redis_.url() << "\"\n"
      << "[es]\nurl = \"" << es_.url() << "\"\n"
      << "[state]\ndir = \"" << dir_.Sub(absl::StrCat("state-", name)) << "\"\n"
      << "[http]\nlisten = \"\"\n"
      << "[shutdown]\ntimeout = " << options_.shutdown_timeout_s << "\n"
      << "[jobs]\nenabled = [";
  for (size_t i = 0; i < jobs.size(); ++i) out << (i ? ", " : "") << "\"" << jobs[i] << "\"";
  out << "]\nbatch_max_records = " << options_.batch_max_records << "\n"
      << "batch_max_ms = " << options_.batch_max_ms << "\n"
      << extra << "\n";
  if (!out) return absl::InternalError(absl::StrCat("cannot write ", path));
  return path;
}

absl::StatusOr<std::unique_ptr<ChildProcess>> PipelineStack::StartInstance(
    const std::string& config, const std::string& log_name) {
  ProcessOptions popts;
  popts.stderr_path = dir_.Sub(log_name);
  return ChildProcess::Start({BinDir() + "/rtdwd", "--config", config}, popts);
}

std::string PipelineStack::LogTail(const std::string& log_name, size_t bytes) const {
  std::string log = ReadFileOrEmpty(dir_.Sub(log_name));
  return log.size() > bytes ? log.substr(log.size() - bytes) : log;
}

std::string PipelineStack::DaemonLog() const {
  std::string log = ReadFileOrEmpty(dir_.Sub("rtdwd.log"));
  return log.size() > 6000 ? log.substr(log.size() - 6000) : log;
}

std::string PipelineStack::state_dir() const {
  return options_.state_dir.empty() ? dir_.Sub("state") : options_.state_dir;
}

size_t PipelineStack::ExpectedDimKeys() const {
  return db_truth_.IsObject() && db_truth_.HasMember("dims") ? db_truth_["dims"].MemberCount() : 0;
}

absl::StatusOr<std::map<std::string, std::string>> PipelineStack::EsDocuments(
    const std::string& pattern, bool by_index) {
  EsClientOptions o;
  o.urls = {es_.url()};
  o.warn = [](std::string_view) {};
  auto client = EsClient::Create(o);
  if (!client.ok()) return client.status();
  // Like any client reading what was just written: refresh first (a search sees only what the
  // last refresh made visible).
  (void)(*client)->Refresh(pattern);
  std::map<std::string, std::string> docs;
  ScrollOptions so;
  // The templates' unique keyword of each wide table (never _id: ES 8 refuses sorting on it).
  so.sort = {"_index", absl::StrContains(pattern, "order_wide") ? "detail_id" : "mid"};
  absl::Status st = (*client)->ScrollAll(pattern, so, [&](const SearchHit& hit) {
    if (!docs.emplace(by_index ? absl::StrCat(hit.index, "/", hit.id) : hit.id, hit.source)
             .second) {
      return absl::InternalError(absl::StrCat("duplicate _id ", hit.id, " across indices"));
    }
    return absl::OkStatus();
  });
  if (!st.ok()) return st;
  return docs;
}

absl::StatusOr<Comparison> PipelineStack::CompareDau(DimExpectation dim_expectation) {
  // By index and _id: a mid active on several days has one document in each day's index.
  auto docs = EsDocuments("gmall_dau_info_*", /*by_index=*/true);
  if (!docs.ok()) return docs.status();
  const rapidjson::Value& dims = db_truth_["dims"];
  Comparison c;
  c.found = docs->size();
  std::set<std::string> seen;
  for (auto day = log_truth_["dau"].MemberBegin(); day != log_truth_["dau"].MemberEnd(); ++day) {
    for (auto m = day->value.MemberBegin(); m != day->value.MemberEnd(); ++m) {
      ++c.expected;
      std::string mid = m->name.GetString();
      const std::string key = absl::StrCat("gmall_dau_info_", day->name.GetString(), "/", mid);
      seen.insert(key);
      auto it = docs->find(key);
      if (it == docs->end()) {
        ++c.missing;
        if (c.samples.size() < 5) c.samples.push_back("missing " + key);
        continue;
      }
      // The expected document: the truth's fields plus the dimension fields.
      rapidjson::Document expected;
      expected.CopyFrom(m->value, expected.GetAllocator());
      auto& a = expected.GetAllocator();
      const bool with_dims = dim_expectation == DimExpectation::kFromTruth;
      if (with_dims && m->value.HasMember("user_id")) {
        std::string key = absl::StrCat("DIM:USER_INFO:", m->value["user_id"].GetString());
        if (dims.HasMember(key.c_str())) {
          const rapidjson::Value& u = dims[key.c_str()];
          if (Usable(u, "gender"))
            expected.AddMember("user_gender", rapidjson::Value(u["gender"], a), a);
          if (Usable(u, "birthday")) {
            auto age = AgeInYears(u["birthday"].GetString(), m->value["dt"].GetString());
            if (age.ok()) expected.AddMember("user_age", *age, a);
          }
        }
      }
      if (with_dims && m->value.HasMember("province_id")) {
        std::string key = absl::StrCat("DIM:BASE_PROVINCE:", m->value["province_id"].GetString());
        if (dims.HasMember(key.c_str())) {
          const rapidjson::Value& p = dims[key.c_str()];
          const std::pair<const char*, const char*> fields[] = {
              {"name", "province_name"},
              {"iso_code", "province_iso_code"},
              {"iso_3166_2", "province_3166_2"},
              {"area_code", "province_area_code"}};
          for (const auto& [from, to] : fields) {
            if (Usable(p, from)) {
              expected.AddMember(rapidjson::StringRef(to), rapidjson::Value(p[from], a), a);
            }
          }
        }
      }
      rapidjson::Document actual;
      actual.Parse<rapidjson::kParseFullPrecisionFlag>(it->second.c_str(), it->second.size());
      std::string diff = DiffDocument(expected, actual, {"rtdw_src"});
      if (diff.empty() && !(actual.HasMember("rtdw_src") && actual["rtdw_src"].IsString())) {
        diff = "no rtdw_src";
      }
      if (!diff.empty()) {
        ++c.wrong;
        if (c.samples.size() < 5) c.samples.push_back(absl::StrCat(mid, ": ", diff));
      }
    }
  }
  for (const auto& [key, source] : *docs) {
    if (!seen.count(key)) {
      ++c.extra;
      if (c.samples.size() < 5) c.samples.push_back("extra " + key);
    }
  }
  return c;
}

absl::StatusOr<Comparison> PipelineStack::CompareOrderWide(DimExpectation dim_expectation) {
  auto docs = EsDocuments("gmall_order_wide_*");
  if (!docs.ok()) return docs.status();
  Comparison c;
  c.found = docs->size();
  std::set<std::string> seen;
  const rapidjson::Value& ow = db_truth_["order_wide"];
  for (auto day = ow.MemberBegin(); day != ow.MemberEnd(); ++day) {
    for (auto d = day->value.MemberBegin(); d != day->value.MemberEnd(); ++d) {
      ++c.expected;
      std::string id = d->name.GetString();
      seen.insert(id);
      auto it = docs->find(id);
      if (it == docs->end()) {
        ++c.missing;
        if (c.samples.size() < 5) c.samples.push_back("missing detail " + id);
        continue;
      }
      rapidjson::Document actual;
      actual.Parse<rapidjson::kParseFullPrecisionFlag>(it->second.c_str(), it->second.size());
      rapidjson::Document expected;
      expected.CopyFrom(d->value, expected.GetAllocator());
      if (dim_expectation == DimExpectation::kAbsent) {
        for (const char* f : {"province_name", "province_area_code", "province_3166_2_code",
                              "province_iso_code", "user_age", "user_gender"}) {
          expected.RemoveMember(f);
        }
      }
      std::string diff = DiffDocument(expected, actual, {"rtdw_src"});
      if (!diff.empty()) {
        ++c.wrong;
        if (c.samples.size() < 5) c.samples.push_back(absl::StrCat(id, ": ", diff));
      }
    }
  }
  for (const auto& [id, source] : *docs) {
    if (!seen.count(id)) {
      ++c.extra;
      if (c.samples.size() < 5) c.samples.push_back("extra detail " + id);
    }
  }
  return c;
}

void ExpectEsExact(PipelineStack& stack, DimExpectation dims) {
  auto dau = stack.CompareDau(dims);
  ASSERT_TRUE(dau.ok()) << dau.status();
  EXPECT_TRUE(dau->exact()) << "dau: " << dau->Summary();
  auto ow = stack.CompareOrderWide(dims);
  ASSERT_TRUE(ow.ok()) << ow.status();
  EXPECT_TRUE(ow->exact()) << "order-wide: " << ow->Summary();
  std::cout << "dau " << dau->Summary() << "; order-wide " << ow->Summary() << "\n";
}

void ExpectVerifyOk(PipelineStack& stack) {
  CommandResult verify =
      RunCommand({BinDir() + "/rtdw", "--state-dir", stack.state_dir(), "--json", "verify", "--day",
                  stack.options().day, "--es-url", stack.es().url()});
  EXPECT_EQ(verify.exit_code, 0) << verify.out << verify.err;
  EXPECT_NE(verify.out.find("\"status\":\"ok\""), std::string::npos) << verify.out;
}

}  // namespace rtdw::testing
