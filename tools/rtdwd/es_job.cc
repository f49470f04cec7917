#include "tools/rtdwd/es_job.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "connectors/es/bulk.h"
#include "connectors/es/dau_reader.h"
#include "connectors/es/es_client.h"
#include "connectors/es/es_journal_sink.h"
#include "connectors/es/templates.h"
#include "connectors/redis/dimension_cache.h"
#include "connectors/redis/redis_client.h"
#include "core/backoff.h"
#include "core/engine/batch_runner.h"
#include "core/engine/journal_strategy.h"
#include "core/engine/retry_policies.h"
#include "tools/rtdwd/fault_points.h"
#include "tools/rtdwd/job_common.h"

namespace rtdw {
namespace {

// The wall clock that judges event time (max_future); tests may set it off (TestClockOffsetMs).
int64_t NowMs() { return absl::ToUnixMillis(absl::Now()) + TestClockOffsetMs(); }

// An ES job's services: Elasticsearch (the sink, the templates, the de-dup reader), Redis (the
// dimension rows) and the "mid_delivery" fault point. The job thread's, but for the sink, which
// the delivery thread uses.
class EsServices : public JournalServices {
 public:
  EsServices(const Config& config, const EsJobSettings& settings, MetricsRegistry* metrics,
             FaultPoints* faults)
      : config_(config), settings_(settings), faults_(faults) {
    const Labels job = {{"job", settings_.job}};
    es_retries_ = metrics->GetCounter("rtdw_es_retries_total",
                                      "ES bulk retry rounds (429/5xx/timeouts)", job);
    es_too_large_ = metrics->GetCounter(
        "rtdw_es_responses_too_large_total",
        "ES answers refused for passing es.max_response_mb (never retried)", job);
  }

  absl::Status ConnectSink(JournalDelivery* delivery, const StopControl& stop,
                           JobProblem* problem) override {
    EsClientOptions o = JobEsClientOptions(config_, settings_.job);
    o.max_bulks_in_flight = 4;
    o.on_response_too_large = [c = es_too_large_] { c->Add(); };
    auto client = EsClient::Create(o);
    if (!client.ok()) return client.status();
    es_ = std::move(*client);
    EsJournalSinkOptions so;
    so.cancel = delivery->abort_flag();
    so.on_retry = [c = es_retries_](const BulkRetryEvent&) { c->Add(); };
    so.before_request = [delivery](uint64_t seq) { return delivery->MaySend(seq); };
    sink_ = std::make_unique<EsJournalSink>(es_.get(), so);

    // Wait for the cluster (and install the templates) with backoff: waiting can fix it. Waiting
    // for a service is given up as soon as a stop begins (nothing is delivered by it).
    RetryOptions retry;
    retry.backoff = kServiceWaitBackoff;
    retry.stop = [&stop] { return stop.stopping(); };
    retry.what = "waiting for Elasticsearch";
    retry.attempt_once_despite_stop = true;
    // A wrong version: waiting will not fix it.
    retry.retryable = [](const absl::Status& st) { return !absl::IsFailedPrecondition(st); };
    retry.on_retry = [this, problem](const absl::Status& st, std::chrono::milliseconds) {
      problem->Set(absl::StrCat("waiting for Elasticsearch at ", config_.es.urls.front(), ": ",
                                std::string(st.message())));
    };
    absl::Status installed = RetryUntil(retry, [this] {
      return InstallIndexTemplates(*es_, settings_.dau_index_prefix,
                                   settings_.order_wide_index_prefix);
    });
    if (absl::IsCancelled(installed) && stop.stopping()) {
      return absl::CancelledError("stopped while waiting for Elasticsearch");
    }
    if (!installed.ok()) return installed;
    problem->Set("");
    return absl::OkStatus();
  }

  JournalSink* sink() override { return sink_.get(); }

  absl::StatusOr<DimensionSource*> OpenDimensions() override {
    redis_ = std::make_unique<RedisClient>(JobRedisClientOptions(config_));
    dims_ = std::make_unique<RedisDimensionCache>(redis_.get(), DimensionCacheOptions{});
    return dims_.get();
  }

  std::unique_ptr<DauDocumentReader> DedupReader(const std::string& topic,
                                                 int32_t partition) override {
    EsDauReaderOptions ro;
    ro.index = absl::StrCat(settings_.dau_index_prefix, "*");
    ro.src_prefix = absl::StrCat(topic, "/", partition, "/");
    ro.sort = {"_index", "mid"};
    ro.keyword_fallback = false;
    ro.page_size = 5000;
    return std::make_unique<EsDauDocumentReader>(es_.get(), std::move(ro));
  }

  void BeforeAttempt(const JournalEntry& entry) override {
    if (!faults_->armed("mid_delivery")) return;
    // Send the first half of the entry's documents, then (maybe) die: a crash mid-delivery.
    auto actions = ParseBulkBody(entry.body);
    if (actions.ok() && actions->size() > 1) {
      std::vector<BulkAction> half(actions->begin(), actions->begin() + actions->size() / 2);
      (void)es_->Bulk(half);
    }
    faults_->Hit("mid_delivery");
  }

 private:
  const Config& config_;
  const EsJobSettings settings_;
  FaultPoints* const faults_;
  Counter* es_retries_;
  Counter* es_too_large_;
  std::unique_ptr<EsClient> es_;
  std::unique_ptr<EsJournalSink> sink_;
  std::unique_ptr<RedisClient> redis_;
  std::unique_ptr<RedisDimensionCache> dims_;
};

}  // namespace

std::unique_ptr<JobRunner> MakeEsRunner(const Config& config, EsJobSettings settings,
                                        std::unique_ptr<EsTransform> transform,
                                        MetricsRegistry* metrics) {
  // The test-only crash points, one set per job (RTDW_TEST_FAULT; fault_points.h).
  auto faults = std::make_shared<FaultPoints>();
  JournalStrategyOptions so;
  so.max_backlog = settings.max_backlog;
  so.join_state = settings.join_state;
  so.restore_dedup = !settings.dau_index_prefix.empty();
  so.dedup_retention_days = settings.dedup_retention_days;
  so.idle_input = settings.idle_input;
  so.time_zone = settings.time_zone;
  so.now_ms = NowMs;
  so.fault = [faults](std::string_view point) { faults->Hit(point); };
  auto services = std::make_unique<EsServices>(config, settings, metrics, faults.get());
  const std::string job = settings.job;
  // Range assignment gives partition p of every source topic to one member: the join's
  // co-partitioning survives rebalances.
  const bool range = config.kafka.group.has_value() && settings.co_partitioned;
  BatchRunnerOptions ro;
  ro.job = settings.job;
  ro.source_topics = settings.source_topics;
  ro.co_partitioned = settings.co_partitioned;
  ro.batch_max_records = settings.batch_max_records;
  ro.batch_max_ms = settings.batch_max_ms;
  return std::make_unique<BatchRunner>(
      config, std::move(ro),
      std::make_unique<JournalStrategy>(std::move(so), std::move(transform), std::move(services)),
      JobSourceFactory(config, job, range), metrics);
}

}  // namespace rtdw
