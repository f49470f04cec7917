// rtdw-baseline-dau: the seed-style DAU baseline for rtdw-bench (see baseline_dau.h). Not part of
// the pipeline: it exists to be measured next to rtdw's dau job.
//
// Prints one JSON object of run statistics on stdout when it stops. Exit 0 after a clean stop,
// 1 on an error, 2 on a usage error.
#include <cstdio>
#include <iostream>
#include <string>

#include "CLI/CLI.hpp"
#include "bench/baseline/baseline_dau.h"

int main(int argc, char** argv) {
  CLI::App app{
      "rtdw-baseline-dau: the SEED-STYLE BASELINE of the dau job (Redis set de-dup, GET per "
      "record, ES bulk per batch, Kafka offsets committed after the write) — for benchmarks "
      "only; it loses users when killed between its Redis write and its ES write"};
  rtdw::baseline::BaselineOptions o;
  std::string redis = "127.0.0.1:6379";
  double exit_when_idle = -1;
  int64_t batch_max_ms = 200;
  app.add_option("--brokers", o.brokers, "Kafka bootstrap servers")->required();
  app.add_option("--topic", o.topic, "DWD page topic")->capture_default_str();
  app.add_option("--group", o.group, "consumer group (offsets committed to Kafka)")
      ->capture_default_str();
  app.add_option("--redis", redis, "Redis HOST:PORT (de-dup sets and dimension rows)")
      ->capture_default_str();
  app.add_option("--es-url", o.es_url, "Elasticsearch URL")->capture_default_str();
  app.add_option("--index-prefix", o.index_prefix, "ES index = prefix + yyyy-MM-dd")
      ->capture_default_str();
  app.add_option("--state-key-prefix", o.state_key_prefix,
                 "Redis set of a day's mids = prefix + yyyy-MM-dd")
      ->capture_default_str();
  app.add_option("--tz", o.time_zone, "time zone of the event day")->capture_default_str();
  app.add_option("--batch-max-records", o.batch_max_records, "records per batch")
      ->capture_default_str();
  app.add_option("--batch-max-ms", batch_max_ms, "batch interval (ms)")->capture_default_str();
  app.add_option("--parallelism", o.parallelism,
                 "partitions processed at once (Spark executor cores), each worker with its own "
                 "Redis and ES connections")
      ->capture_default_str()
      ->check(CLI::Range(1, 256));
  app.add_option("--exit-when-idle", exit_when_idle,
                 "exit 0 once every partition is at its end and nothing arrived for S seconds")
      ->check(CLI::NonNegativeNumber);
  std::string restore_day;
  app.add_option("--restore-day", restore_day,
                 "the seed's remedy: before consuming, replace the day's Redis set by the mids "
                 "found in that day's ES index (yyyy-MM-dd)");
  app.add_option("--progress-file", o.progress_file,
                 "append '<epoch ms> <records> <documents>' after every batch");
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    app.exit(e);
    return 2;
  }
  auto colon = redis.rfind(':');
  if (colon == std::string::npos) {
    std::cerr << "rtdw-baseline-dau: --redis wants HOST:PORT\n";
    return 2;
  }
  o.redis_host = redis.substr(0, colon);
  o.redis_port = std::atoi(redis.c_str() + colon + 1);
  o.batch_max_ms = std::chrono::milliseconds(batch_max_ms);
  if (exit_when_idle >= 0) {
    o.exit_when_idle = std::chrono::milliseconds(static_cast<int64_t>(exit_when_idle * 1000));
  }
  if (!restore_day.empty()) o.restore_day = restore_day;
  if (const char* fault = getenv("RTDW_BASELINE_FAULT")) o.fault = fault;

  auto stats = rtdw::baseline::RunBaselineDau(o);
  if (!stats.ok()) {
    std::cerr << "rtdw-baseline-dau: " << stats.status().ToString() << "\n";
    return 1;
  }
  printf(
      "{\"records\":%llu,\"first_pages\":%llu,\"new_mids\":%llu,\"documents\":%llu,"
      "\"rejected\":%llu,\"batches\":%llu,\"redis_round_trips\":%llu,\"restored_mids\":%llu,"
      "\"restore_seconds\":%.3f,\"seconds\":%.3f,\"parallelism\":%d}\n",
      static_cast<unsigned long long>(stats->records),
      static_cast<unsigned long long>(stats->first_pages),
      static_cast<unsigned long long>(stats->new_mids),
      static_cast<unsigned long long>(stats->documents),
      static_cast<unsigned long long>(stats->rejected),
      static_cast<unsigned long long>(stats->batches),
      static_cast<unsigned long long>(stats->redis_round_trips),
      static_cast<unsigned long long>(stats->restored_mids), stats->restore_seconds, stats->seconds,
      o.parallelism);
  return 0;
}
