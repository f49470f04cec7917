// rtdw: the operator CLI of rtdw's state stores. Commands, exit codes and --json shapes are
// documented in docs/STATE.md (a contract: scripts rely on them).
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "core/config/config.h"
#include "core/status_util.h"
#include "tools/rtdw/cli.h"

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

  // state
  auto* state = app.add_subcommand("state", "the stores")->require_subcommand(1);
  ShowArgs show_args;
  auto* state_show = state->add_subcommand(
      "show",
      "per job: column family sizes and key counts, journal backlog, dead letters, "
      "last clean shutdown, schema version, fingerprint");
  state_show->add_flag("--exact", show_args.exact, "count every key (slower) instead of estimates");
  auto* state_init = state->add_subcommand(
      "init",
      "create the empty store of --job as rtdwd would (with the config's topic fingerprint); "
      "refused when it exists");

  // offsets
  auto* offsets =
      app.add_subcommand("offsets", "the next offset per topic partition")->require_subcommand(1);
  OffsetsShowArgs offsets_show_args;
  auto* offsets_show = offsets->add_subcommand("show", "stored offsets");
  offsets_show->add_option("--topic", offsets_show_args.topic, "only this topic");
  OffsetsSetArgs offsets_set_args;
  auto* offsets_set = offsets->add_subcommand(
      "set", "set where a partition resumes (refused while rtdwd holds the store)");
  offsets_set->add_option("--topic", offsets_set_args.topic, "topic")->required();
  offsets_set
      ->add_option("--partition", offsets_set_args.partition,
                   "partition (required with --offset; default with --to-*: every partition)")
      ->check(CLI::NonNegativeNumber);
  offsets_set->add_option("--offset", offsets_set_args.offset,
                          "next offset to read (within the broker's retained range)");
  offsets_set->add_flag("--to-earliest", offsets_set_args.to_earliest,
                        "the first offset the broker still holds");
  offsets_set->add_flag("--to-latest", offsets_set_args.to_latest,
                        "the broker's end (only records written from now on)");
  offsets_set->add_option("--to-time", offsets_set_args.to_time,
                          "the first record at or after this time (RFC 3339 or epoch ms)");
  offsets_set->add_flag("--unchecked", offsets_set_args.unchecked,
                        "with --offset: do not check against Kafka (broker unreachable)");
  offsets_set->add_flag("--skip-dim-epoch", offsets_set_args.skip_dim_epoch,
                        "db-split: do not bump DIMPOS:EPOCH in Redis (replayed dimension rows "
                        "then lose against the positions already stored)");
  OffsetsDeleteArgs offsets_delete_args;
  auto* offsets_delete =
      offsets->add_subcommand("delete", "forget stored offsets of a topic (or one partition)");
  offsets_delete->add_option("--topic", offsets_delete_args.topic, "topic")->required();
  offsets_delete->add_option("--partition", offsets_delete_args.partition, "only this partition");
  ImportGroupArgs import_args;
  auto* offsets_import = offsets->add_subcommand(
      "import-group",
      "store the offsets the job's Kafka group (<kafka.group or rtdw>.<job>) committed");
  offsets_import->add_option("--topic", import_args.topics,
                             "topics (repeatable; default: the job's source topics)");
  offsets_import->add_option("--group", import_args.group, "another group id");

  // journal
  auto* journal =
      app.add_subcommand("journal", "ES writes owed by committed batches")->require_subcommand(1);
  JournalListArgs journal_list_args;
  auto* journal_list = journal->add_subcommand("list", "owed entries in seq order");
  journal_list->add_flag("--body", journal_list_args.bodies, "include each NDJSON bulk body");
  std::string es_url;
  auto* journal_replay = journal->add_subcommand(
      "replay", "deliver every owed entry to ES in seq order, deleting each delivered one");
  journal_replay->add_option("--es-url", es_url, "ES URL(s), comma-separated (default: config)");
  double replay_timeout_s = 60;
  journal_replay
      ->add_option("--timeout", replay_timeout_s,
                   "seconds one entry may take (ES down or refusing) before replay stops")
      ->check(CLI::PositiveNumber);

  // deadletter
  auto* deadletter = app.add_subcommand("deadletter", "records and ES items that failed for good")
                         ->require_subcommand(1);
  DeadLetterListArgs dl_list_args;
  auto* dl_list = deadletter->add_subcommand("list", "dead letters in seq order");
  dl_list->add_option("--after", dl_list_args.after, "only seqs after this one");
  dl_list->add_option("--limit", dl_list_args.limit, "at most this many");
  dl_list->add_flag("--summary", dl_list_args.summary, "only the counts by reason");
  dl_list->add_flag("--from-topic", dl_list_args.from_topic,
                    "split jobs: read their letters from the dead-letter topic (needs --config "
                    "or --brokers)");
  DeadLetterSeqArgs dl_retry_args;
  auto* dl_retry = deadletter->add_subcommand(
      "retry",
      "re-queue rejected ES items (es_rejected) as a new journal entry, and re-judge late, future "
      "and join_expired records with the job's current settings and clock (needs --config)");
  dl_retry->add_option("--seq", dl_retry_args.seqs, "only these (repeatable; default: all)");
  DeadLetterSeqArgs dl_drop_args;
  auto* dl_drop = deadletter->add_subcommand("drop", "delete dead letters");
  dl_drop->add_option("--seq", dl_drop_args.seqs, "the dead letter to drop (repeatable)");
  dl_drop->add_flag("--all", dl_drop_args.all, "drop every dead letter of the job");

  // dedup
  auto* dedup = app.add_subcommand("dedup", "the DAU de-dup state")->require_subcommand(1);
  DayArgs restore_args;
  bool from_es = false;
  auto* dedup_restore = dedup->add_subcommand(
      "restore", "rebuild a day's de-dup state from its ES index (job dau by default)");
  dedup_restore->add_flag("--from-es", from_es, "read gmall_dau_info_<day> (the only source)")
      ->required();
  dedup_restore->add_option("--day", restore_args.day, "yyyy-mm-dd")->required();
  dedup_restore->add_option("--partition", restore_args.partitions,
                            "only these source partitions (repeatable)");
  dedup_restore->add_option("--es-url", es_url, "ES URL(s), comma-separated (default: config)");

  ForgetArgs forget_args;
  auto* dedup_forget = dedup->add_subcommand(
      "forget",
      "forget de-dup slots of a day (mids lost from ES) and rewind their partitions, so that the "
      "next run writes those documents again (job dau by default)");
  dedup_forget->add_option("--day", forget_args.day, "yyyy-mm-dd")->required();
  dedup_forget->add_option("--mid", forget_args.mids, "a mid to forget (repeatable)");
  dedup_forget->add_flag("--missing-in-es", forget_args.missing_in_es,
                         "every mid verify reports lost (in the state, not in ES, not owed)");
  dedup_forget->add_flag("--no-rewind", forget_args.no_rewind,
                         "keep the stored offsets (the records must be read again otherwise)");
  dedup_forget->add_option("--es-url", es_url, "ES URL(s), comma-separated (default: config)");

  // verify
  DayArgs verify_args;
  auto* verify = app.add_subcommand(
      "verify",
      "compare a day's de-dup state with its ES index (job dau by default); exit 1 "
      "on a difference or when the check fails");
  verify->add_option("--day", verify_args.day, "yyyy-mm-dd")->required();
  verify->add_option("--samples", verify_args.samples, "ids listed per kind of difference");
  verify->add_option("--es-url", es_url, "ES URL(s), comma-separated (default: config)");

  // backup
  auto* backup = app.add_subcommand("backup", "RocksDB BackupEngine backups (DIR/<job>)")
                     ->require_subcommand(1);
  std::string backup_to, backup_from;
  auto* backup_create = backup->add_subcommand(
      "create", "back up the store(s) into DIR/<job> (refused while rtdwd holds a store)");
  backup_create->add_option("--to", backup_to, "backup root")->required();
  auto* backup_restore = backup->add_subcommand(
      "restore", "restore the latest backup of DIR/<job>; the replaced store is kept aside");
  backup_restore->add_option("--from", backup_from, "backup root")->required();
  auto* backup_list = backup->add_subcommand("list", "backups under DIR");
  backup_list->add_option("--from", backup_from, "backup root")->required();

  // meta
  auto* meta = app.add_subcommand("meta", "schema version, job, topic fingerprint, shutdown flag")
                   ->require_subcommand(1);
  auto* meta_show = meta->add_subcommand("show", "every meta entry");
  ResetFingerprintArgs reset_args;
  auto* meta_reset = meta->add_subcommand(
      "reset-fingerprint",
      "accept a changed topic configuration: store the config's fingerprint (with --config), "
      "the given one, or clear it (the next daemon start records its own)");
  meta_reset->add_option("--to", reset_args.to, "the fingerprint to store");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);  // --help
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
  if (!es_url.empty()) {
    g.es.urls = SplitUrls(es_url);
    if (g.es.urls.empty()) return UsageError(json, "--es-url is empty");
  }

  g.es.delivery_timeout = std::chrono::milliseconds(static_cast<int64_t>(replay_timeout_s * 1000));

  Out out;
  int code = kExitUsage;
  if (state_show->parsed()) {
    code = StateShow(g, show_args, out);
  } else if (state_init->parsed()) {
    code = StateInit(g, out);
  } else if (offsets_delete->parsed()) {
    code = OffsetsDelete(g, offsets_delete_args, out);
  } else if (offsets_import->parsed()) {
    code = OffsetsImportGroup(g, import_args, out);
  } else if (offsets_show->parsed()) {
    code = OffsetsShow(g, offsets_show_args, out);
  } else if (offsets_set->parsed()) {
    code = OffsetsSet(g, offsets_set_args, out);
  } else if (journal_list->parsed()) {
    code = JournalList(g, journal_list_args, out);
  } else if (journal_replay->parsed()) {
    code = JournalReplay(g, out);
  } else if (dl_list->parsed()) {
    code = DeadLetterList(g, dl_list_args, out);
  } else if (dl_retry->parsed()) {
    code = DeadLetterRetry(g, dl_retry_args, out);
  } else if (dl_drop->parsed()) {
    code = DeadLetterDrop(g, dl_drop_args, out);
  } else if (dedup_forget->parsed()) {
    code = DedupForget(g, forget_args, out);
  } else if (dedup_restore->parsed()) {
    code = DedupRestore(g, restore_args, out);
  } else if (verify->parsed()) {
    code = Verify(g, verify_args, out);
  } else if (backup_create->parsed()) {
    code = BackupCreate(g, backup_to, out);
  } else if (backup_restore->parsed()) {
    code = BackupRestore(g, backup_from, out);
  } else if (backup_list->parsed()) {
    code = BackupList(g, backup_from, out);
  } else if (meta_show->parsed()) {
    code = MetaShow(g, out);
  } else if (meta_reset->parsed()) {
    code = MetaResetFingerprint(g, reset_args, out);
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
