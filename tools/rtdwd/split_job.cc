#include "tools/rtdwd/split_job.h"

#include <utility>

#include "connectors/kafka/producer.h"
#include "core/engine/batch_runner.h"
#include "core/engine/produce_strategy.h"
#include "tools/rtdwd/job_common.h"

namespace rtdw {

std::unique_ptr<JobRunner> MakeSplitRunner(const Config& config, SplitJobSettings settings,
                                           std::unique_ptr<SplitStep> step,
                                           MetricsRegistry* metrics) {
  const std::string job = settings.job;
  ProduceStrategyOptions so;
  so.dead_letter_topic = settings.dead_letter_topic;
  auto make_producer = [&config, job]() -> absl::StatusOr<ProducerClient> {
    auto producer = KafkaProducer::Create(JobProducerOptions(config, job));
    if (!producer.ok()) return producer.status();
    ProducerClient client;
    KafkaProducer* p = producer->get();
    client.producer = std::move(*producer);
    client.close = [p](std::chrono::steady_clock::time_point deadline,
                       const std::atomic<bool>* cancel) { return p->Close(deadline, cancel); };
    return client;
  };
  BatchRunnerOptions ro;
  ro.job = settings.job;
  ro.source_topics = {settings.source_topic};
  ro.batch_max_records = settings.batch_max_records;
  ro.batch_max_ms = settings.batch_max_ms;
  return std::make_unique<BatchRunner>(
      config, std::move(ro),
      std::make_unique<ProduceStrategy>(std::move(so), std::move(step), std::move(make_producer)),
      JobSourceFactory(config, job), metrics);
}

}  // namespace rtdw
