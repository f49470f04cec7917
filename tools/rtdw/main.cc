// rtdw: the operator CLI of rtdw's state stores. Commands, exit codes and --json shapes are
// documented in docs/STATE.md (a contract: scripts rely on them).
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <map>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "core/config/config.h"
#include "core/process/build_info.h"
#include "core/status_util.h"
#include "tools/rtdw/cli.h"
#include "tools/rtdw/command.h"

namespace {

using namespace rtdw::cli;  // NOLINT

bool WantsJson(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--json") == 0) return true;
  }
  return false;
}

// Prints a usage or config problem; exit code 2.
int UsageError(bool json, const std::string& message) {
  if (json) {
    Out out;
    out.Fail(message);
    std::cout << ToJson(out.doc()) << "\n";
  }
  std::cerr << "rtdw: " << message << "\nRun with --help for more information.\n";
  return kExitUsage;
}

std::vector<std::string> SplitUrls(const std::string& s) {
  std::vector<std::string> urls;
  for (absl::string_view part : absl::StrSplit(s, ',', absl::SkipWhitespace())) {
    urls.emplace_back(part);
  }
  return urls;
}

// The topics `job` consumes (what its stored offsets are for); empty for an unknown job.
std::vector<std::string> SourceTopics(const rtdw::Config& c, const std::string& job) {
  if (job == rtdw::kJobLogSplit) return {c.jobs.log_split.source_topic};
  if (job == rtdw::kJobDbSplit) return {c.jobs.db_split.source_topic};
  if (job == rtdw::kJobDau) return {c.jobs.dau.source_topic};
  if (job == rtdw::kJobOrderWide) {
    return {c.jobs.order_wide.order_topic, c.jobs.order_wide.detail_topic};
  }
  return {};
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "rtdw: inspect and repair the state stores of rtdw jobs (offsets, de-dup and join state,\n"
      "the journal of owed ES writes, dead letters). Exit 0 ok, 1 failed, 2 usage.\n"
      "Details and --json shapes: docs/STATE.md."};
  app.fallthrough();  // global options may follow the command
  app.set_version_flag("--version", rtdw::VersionLine("rtdw"),
                       "print the version and the git commit of this build, and exit");
  app.require_subcommand(1);
  std::string state_dir, config_path, job;
  bool json = false;
  app.add_option("--state-dir", state_dir,
                 "the state.dir root (one store per job under DIR/<job>); overrides --config "
                 "and RTDW_STATE_DIR (default ./var/state)");
  app.add_option("--config", config_path, "rtdw TOML config (state.dir, es.*, job topics)");
  app.add_option("--job", job, "the job whose store to use (default for reads: every job)");
  app.add_flag("--json", json, "print exactly one JSON document on stdout");
  std::string brokers;
  app.add_option("--brokers", brokers,
                 "Kafka bootstrap servers for offsets set / import-group (default: the config's "
                 "kafka.brokers)");

  // The commands, by group in registry order (command.h).
  CommandRegistry registry = AllCommands();
  SharedFlags shared;
  std::vector<std::pair<CLI::App*, Command*>> subcommands;
  std::map<std::string, CLI::App*> groups;
  for (const auto& group : registry.groups()) {
    groups[group.name] = group.name.empty()
                             ? &app
                             : app.add_subcommand(group.name, group.help)->require_subcommand(1);
    for (const auto& command : registry.commands()) {
      if (command->group() != group.name) continue;
      CLI::App* sub = groups[group.name]->add_subcommand(std::string(command->name()),
                                                         std::string(command->help()));
      command->AddFlags(sub, &shared);
      subcommands.emplace_back(sub, command.get());
    }
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);  // --help, --version
    return UsageError(WantsJson(argc, argv), e.what());
  }

  // Resolve the globals: flags over the config (which applies RTDW_* overrides) over the
  // environment over the defaults.
  Globals g;
  g.job = job;
  g.json = json;
  if (!config_path.empty()) {
    auto config = rtdw::LoadConfig(config_path);
    if (!config.ok()) {
      return UsageError(json, absl::StrCat("bad config: ", config.status().message()));
    }
    g.have_config = true;
    g.state_dir = config->state.dir;
    g.es.urls = config->es.urls;
    if (config->es.user) g.es.user = *config->es.user;
    if (config->es.password) g.es.password = config->es.password->value;
    if (config->es.api_key) g.es.api_key = config->es.api_key->value;
    if (config->es.ca_file) g.es.ca_file = *config->es.ca_file;
    g.es.verify_tls = config->es.verify_tls;
    g.es.bulk_max_bytes = config->es.bulk_max_bytes;
    g.es.max_response_mb = config->es.max_response_mb;
    g.dau_index_prefix = config->jobs.dau.index_prefix;
    g.order_wide_index_prefix = config->jobs.order_wide.index_prefix;
    if (!job.empty()) g.topic_fingerprint = rtdw::StateFingerprint(*config, job);
    g.kafka_brokers = config->kafka.brokers;
    g.kafka_properties = config->kafka.ResolvedProperties();
    g.kafka_group = config->kafka.group.value_or("");
    g.source_topics = SourceTopics(*config, job);
    g.config = std::make_shared<const rtdw::Config>(*config);
  } else {
    if (const char* env = std::getenv("RTDW_STATE_DIR"); env && *env) g.state_dir = env;
    if (const char* env = std::getenv("RTDW_ES_URL"); env && *env) g.es.urls = SplitUrls(env);
  }
  if (!state_dir.empty()) g.state_dir = state_dir;
  if (!brokers.empty()) g.kafka_brokers = brokers;
  if (g.state_dir.empty()) g.state_dir = "./var/state";
  if (!shared.es_url.empty()) {
    g.es.urls = SplitUrls(shared.es_url);
    if (g.es.urls.empty()) return UsageError(json, "--es-url is empty");
  }

  g.es.delivery_timeout =
      std::chrono::milliseconds(static_cast<int64_t>(shared.replay_timeout_s * 1000));

  Out out;
  int code = kExitUsage;
  Command* command = nullptr;
  for (const auto& [sub, c] : subcommands) {
    if (sub->parsed()) command = c;
  }
  if (command != nullptr) {
    g.access = command->access();
    code = command->Run(g, out);
  } else {
    out.Fail("no command");
  }

  if (json) {
    std::cout << ToJson(out.doc()) << "\n";
  } else {
    std::cout << out.text_str();
  }
  for (const auto& e : out.errors()) std::cerr << "rtdw: " << e << "\n";
  if (code == kExitUsage && !json) std::cerr << "Run with --help for more information.\n";
  std::cout.flush();
  return code;
}
