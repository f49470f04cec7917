#include "tools/rtdwd/job_common.h"

#include <algorithm>
#include <chrono>
#include <thread>

#include "absl/strings/str_cat.h"
#include "core/backoff.h"
#include "core/dead_letter.h"
#include "core/status_util.h"
#include "spdlog/spdlog.h"
#include "tools/rtdwd/job_runner.h"

namespace rtdw {

JobMetrics::JobMetrics(MetricsRegistry* metrics, const std::string& job)
    : registry(metrics), job(job) {
  const Labels labels = {{"job", job}};
  records_in = metrics->GetCounter("rtdw_records_in_total", "Source records consumed", labels);
  records_out = metrics->GetCounter(
      "rtdw_records_out_total",
      "Records produced (split jobs: Kafka records; ES jobs: documents journaled for ES)", labels);
  dead_letters = metrics->GetCounter("rtdw_dead_letter_records_total",
                                     "Records sent to the dead letters", labels);
  batches = metrics->GetCounter("rtdw_batches_total", "Batches committed", labels);
  batch_seconds = metrics->GetHistogram("rtdw_batch_seconds", "Batch latency, poll to commit",
                                        labels, MetricsRegistry::LatencyBounds());
  for (std::string_view reason : JobDeadLetterReasons(job)) DeadLetters(reason);
}

Counter* JobMetrics::DeadLetters(std::string_view reason) const {
  return registry->GetCounter("rtdw_dead_letters_total",
                              "Records rejected to the dead letters, by reason",
                              {{"job", job}, {"reason", std::string(reason)}});
}

std::vector<std::string_view> JobDeadLetterReasons(std::string_view job) {
  const bool split = job == kJobLogSplit || job == kJobDbSplit;
  std::vector<std::string_view> out;
  for (int r = 0; r < kReasonCount; ++r) {
    const Reason reason = static_cast<Reason>(r);
    bool gives;
    switch (reason) {
      case Reason::kLate:
      case Reason::kFuture:
      case Reason::kEsRejected:
        gives = !split;
        break;
      case Reason::kJoinExpired:
        gives = job == kJobOrderWide;
        break;
      case Reason::kNoMid:
        gives = job != kJobOrderWide;
        break;
      case Reason::kNoId:
        gives = job != kJobDau;
        break;
      case Reason::kNoPayload:
      case Reason::kTooManyItems:
        gives = split;
        break;
      default:  // parse and shape: every job reads JSON records
        gives = true;
    }
    if (gives) out.push_back(ReasonCode(reason));
  }
  return out;
}

void JobProblem::Set(std::string problem) {
  std::lock_guard<std::mutex> lock(mu_);
  if (problem != problem_ && !problem.empty()) spdlog::warn("{}: {}", job_, problem);
  problem_ = std::move(problem);
}

std::string JobProblem::Get() const {
  std::lock_guard<std::mutex> lock(mu_);
  return problem_;
}

absl::StatusOr<std::unique_ptr<StateStore>> OpenJobStore(const Config& config,
                                                         const std::string& job) {
  StateStoreOptions so;
  so.root = config.state.dir;
  so.job = job;
  so.block_cache_mb = config.state.block_cache_mb;
  so.sync = config.state.sync;
  so.min_free_mb = config.state.min_free_mb;
  so.topic_fingerprint = StateFingerprint(config, job);
  so.log = [job](std::string_view msg) { spdlog::info("{}: {}", job, std::string(msg)); };
  return StateStore::Open(so);
}

KafkaConsumerOptions JobConsumerOptions(const Config& config, const std::string& job) {
  KafkaConsumerOptions co;
  co.brokers = config.kafka.brokers;
  co.group_id = absl::StrCat(config.kafka.group.value_or("rtdw"), ".", job);
  co.properties = config.kafka.ResolvedProperties();
  // Prefetch. librdkafka 2.0.2 stops fetching for a fixed 1 s whenever the consumer queue holds
  // queued.min.messages messages (the high-level consumer's one queue, whatever the partition
  // count) or queued.max.messages.kbytes (librdkafka #2879; fetch.queue.backoff.ms came in 2.4).
  // A job faster than the queue's depth per second waits out that backoff: dau drained 857,662
  // page records in 3.2 s with 200000 messages, 5.8-6.8 s with the default 100000, 26 s with
  // 20000 / 16 MB (rtdw-bench, 1 M records). The price is memory while a job lags (dau at 10 M
  // mids/day: 633 MB peak RSS vs 448 MB with 20000 / 16 MB); [kafka.properties] queued.*
  // overrides it.
  co.queued_min_messages = 200000;
  // Partitions added to a source topic are noticed within a minute (group mode: librdkafka's
  // metadata refresh then rebalances; lone mode: EsJobRunner / SplitJobRunner check themselves).
  co.properties.try_emplace("topic.metadata.refresh.interval.ms", "60000");
  co.log = KafkaLogToSpdlog(job);
  return co;
}

std::function<void(int, std::string_view, std::string_view)> KafkaLogToSpdlog(std::string who) {
  return [who = std::move(who)](int level, std::string_view facility, std::string_view message) {
    // syslog levels: 0-3 error, 4 warning, 5-6 info, 7 debug.
    spdlog::level::level_enum l = level <= 3   ? spdlog::level::err
                                  : level == 4 ? spdlog::level::warn
                                  : level <= 6 ? spdlog::level::info
                                               : spdlog::level::debug;
    spdlog::log(l, "{}: kafka: {}: {}", who, std::string(facility), std::string(message));
  };
}

EsClientOptions JobEsClientOptions(const Config& config, const std::string& who) {
  EsClientOptions o;
  o.urls = config.es.urls;
  if (config.es.user) o.user = *config.es.user;
  if (config.es.password) o.password = config.es.password->value;
  if (config.es.api_key) o.api_key = config.es.api_key->value;
  if (config.es.ca_file) o.ca_file = *config.es.ca_file;
  o.verify_tls = config.es.verify_tls;
  o.bulk_max_bytes = static_cast<size_t>(config.es.bulk_max_bytes);
  o.max_response_bytes = static_cast<size_t>(config.es.max_response_mb) << 20;
  o.warn = [who](std::string_view m) { spdlog::warn("{}: es: {}", who, std::string(m)); };
  return o;
}

KafkaProducerOptions JobProducerOptions(const Config& config, const std::string& who) {
  KafkaProducerOptions po;
  po.brokers = config.kafka.brokers;
  po.properties = config.kafka.ResolvedProperties();
  po.log = KafkaLogToSpdlog(who);
  return po;
}

absl::StatusOr<PartitionStart> StartOf(const Config& config, const std::string& topic,
                                       int32_t partition, std::optional<int64_t> known,
                                       std::string_view missing) {
  PartitionStart s{topic, partition, PartitionStart::kBeginning};
  if (known) {
    s.offset = *known;
    return s;
  }
  switch (config.kafka.auto_offset_reset) {
    case AutoOffsetReset::kEarliest:
      s.offset = PartitionStart::kBeginning;
      break;
    case AutoOffsetReset::kLatest:
      s.offset = PartitionStart::kEnd;
      break;
    case AutoOffsetReset::kError:
      return absl::FailedPreconditionError(
          absl::StrCat(topic, "/", partition, " has no ", ToAbsl(missing),
                       " and kafka.auto_offset_reset is \"error\""));
  }
  return s;
}

absl::Status CheckPartitionCount(StateStore& store, const std::string& topic, int partitions) {
  return store.MergeFingerprint(absl::StrCat("partitions.", topic, "=", partitions));
}

absl::StatusOr<std::vector<std::pair<std::string, int>>> GrownTopics(
    KafkaConsumer& consumer, StateStore& store, const std::string& job,
    const std::vector<std::string>& topics) {
  std::vector<std::pair<std::string, int>> grown;
  for (const std::string& topic : topics) {
    int assigned = 0;
    for (const auto& [t, p] : consumer.assignment()) {
      if (t == topic) ++assigned;
    }
    auto count = consumer.PartitionCount(topic, std::chrono::seconds(5));
    if (!count.ok() || *count <= assigned) continue;
    RTDW_RETURN_IF_ERROR(store.MergeFingerprint(absl::StrCat("partitions.", topic, "=", *count),
                                                /*replace=*/true));
    spdlog::warn(
        "{}: {} has {} partitions now, {} when assigned: partitions {}-{} are picked up (from "
        "their stored offsets, else kafka.auto_offset_reset)",
        job, topic, *count, assigned, assigned, *count - 1);
    grown.emplace_back(topic, *count);
  }
  return grown;
}

absl::StatusOr<std::vector<PartitionStart>> PartitionStarts(const StateStore& store,
                                                            const Config& config,
                                                            const std::string& topic,
                                                            int partitions) {
  auto stored = store.GetOffsets(topic);
  if (!stored.ok()) return stored.status();
  std::vector<PartitionStart> starts;
  for (int p = 0; p < partitions; ++p) {
    std::optional<int64_t> known;
    for (const auto& o : *stored) {
      if (o.partition == p) known = o.next_offset;
    }
    RTDW_ASSIGN_OR_RETURN(PartitionStart s, StartOf(config, topic, p, known, "stored offset"));
    starts.push_back(s);
  }
  return starts;
}

absl::StatusOr<std::map<TopicPartition, int64_t>> GroupCommitted(
    KafkaConsumer& consumer, const std::vector<TopicPartition>& partitions,
    const std::function<bool()>& stopped, const std::function<void(std::string_view)>& problem) {
  RetryOptions retry;
  retry.backoff = {std::chrono::milliseconds(500), std::chrono::milliseconds(100),
                   std::chrono::milliseconds(10000), 2.0};
  bool asked = false;  // the group is asked at least once, even when a stop has begun
  retry.stop = [&] { return asked && stopped(); };
  retry.what = "asking the group for its offsets";
  retry.on_retry = [&](const absl::Status& st, std::chrono::milliseconds) {
    problem(std::string(st.message()));
  };
  return RetryUntil<std::map<TopicPartition, int64_t>>(retry, [&] {
    asked = true;
    return consumer.Committed(partitions, std::chrono::seconds(10));
  });
}

void StopControl::Begin(Clock::time_point deadline) {
  Clock::rep unset = Clock::time_point::max().time_since_epoch().count();
  deadline_.compare_exchange_strong(unset, deadline.time_since_epoch().count());
  stopping_ = true;
}

void StopControl::Cancel() {
  Begin(Clock::now());
  cancelled_ = true;
}

std::chrono::milliseconds StopControl::Bound(std::chrono::milliseconds limit) const {
  if (cancelled()) return std::chrono::milliseconds(0);
  if (!stopping()) return limit;
  auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline() - Clock::now());
  return std::clamp(left, std::chrono::milliseconds(0), limit);
}

}  // namespace rtdw
