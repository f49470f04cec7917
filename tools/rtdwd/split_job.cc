#include "tools/rtdwd/split_job.h"

#include <thread>

#include "absl/strings/str_cat.h"
#include "core/backoff.h"
#include "spdlog/spdlog.h"
#include "tools/common/signals.h"
#include "tools/rtdwd/job_common.h"

namespace rtdw {

// Produces what the transform emits; remembers the first produce error for the batch.
class SplitJobRunner::ProducingSink : public RecordSink {
 public:
  ProducingSink(KafkaProducer* producer, std::vector<std::string> slot_topics,
                std::string dead_letter_topic, MetricsRegistry* metrics, std::string job)
      : producer_(producer),
        slot_topics_(std::move(slot_topics)),
        dead_letter_topic_(std::move(dead_letter_topic)),
        metrics_(metrics),
        job_(std::move(job)) {}

  void Emit(const OutputRecord& record) override {
    std::string_view topic = record.topic;
    if (topic.empty()) {
      if (record.slot < 0 || record.slot >= static_cast<int>(slot_topics_.size())) {
        Fail(absl::InternalError(absl::StrCat("no topic for output slot ", record.slot)));
        return;
      }
      topic = slot_topics_[record.slot];
    }
    headers_.clear();
    if (!record.src.empty()) headers_.push_back({kHeaderSrc, record.src});
    if (record.idx >= 0) {
      idx_text_ = std::to_string(record.idx);
      headers_.push_back({kHeaderIdx, idx_text_});
    }
    Fail(producer_->Produce(topic, record.key, record.value, headers_));
    ++emitted_;
  }

  void DeadLetter(const DeadLetterRecord& record) override {
    headers_.clear();
    headers_.push_back({kHeaderReason, record.reason});
    if (!record.src.empty()) headers_.push_back({kHeaderSrc, record.src});
    Fail(producer_->Produce(dead_letter_topic_, record.key, record.value, headers_));
    metrics_
        ->GetCounter("rtdw_dead_letters_total", "Records rejected to the dead letters, by reason",
                     {{"job", job_}, {"reason", std::string(record.reason)}})
        ->Add();
    ++dead_;
  }

  absl::Status TakeError() {
    absl::Status st = error_;
    error_ = absl::OkStatus();
    return st;
  }
  uint64_t TakeEmitted() { return std::exchange(emitted_, 0); }
  uint64_t TakeDead() { return std::exchange(dead_, 0); }

 private:
  void Fail(absl::Status st) {
    if (!st.ok() && error_.ok()) error_ = std::move(st);
  }

  KafkaProducer* producer_;
  std::vector<std::string> slot_topics_;
  std::string dead_letter_topic_;
  MetricsRegistry* metrics_;
  std::string job_;
  std::vector<KafkaHeader> headers_;
  std::string idx_text_;
  absl::Status error_;
  uint64_t emitted_ = 0;
  uint64_t dead_ = 0;
};

SplitJobRunner::SplitJobRunner(const Config& config, SplitJobSettings settings,
                               std::unique_ptr<SplitStep> step, MetricsRegistry* metrics)
    : config_(config),
      settings_(std::move(settings)),
      step_(std::move(step)),
      metrics_(metrics),
      lag_(metrics, settings_.job) {
  const Labels job = {{"job", settings_.job}};
  records_in_ = metrics_->GetCounter("rtdw_records_in_total", "Source records consumed", job);
  records_out_ = metrics_->GetCounter(
      "rtdw_records_out_total",
      "Records produced (split jobs: Kafka records; ES jobs: documents journaled for ES)", job);
  dead_letters_ = metrics_->GetCounter("rtdw_dead_letter_records_total",
                                       "Records sent to the dead letters", job);
  batches_ = metrics_->GetCounter("rtdw_batches_total", "Batches committed", job);
  retries_ = metrics_->GetCounter("rtdw_batch_retries_total",
                                  "Batches run again after a produce/Redis failure", job);
  batch_seconds_ = metrics_->GetHistogram("rtdw_batch_seconds", "Batch latency, poll to commit",
                                          job, MetricsRegistry::LatencyBounds());
}

SplitJobRunner::~SplitJobRunner() = default;

void SplitJobRunner::SetProblem(std::string problem) {
  std::lock_guard<std::mutex> lock(problem_mu_);
  if (problem != problem_ && !problem.empty()) {
    spdlog::warn("{}: {}", settings_.job, problem);
  }
  problem_ = std::move(problem);
}

std::string SplitJobRunner::HealthProblem() const {
  std::lock_guard<std::mutex> lock(problem_mu_);
  return problem_;
}

absl::Status SplitJobRunner::Start() {
  auto store = OpenJobStore(config_, settings_.job);
  if (!store.ok()) return store.status();
  store_ = std::move(*store);

  KafkaProducerOptions po;
  po.brokers = config_.kafka.brokers;
  po.properties = config_.kafka.ResolvedProperties();
  auto producer = KafkaProducer::Create(po);
  if (!producer.ok()) return producer.status();
  producer_ = std::move(*producer);

  KafkaConsumerOptions co;
  co.brokers = config_.kafka.brokers;
  co.group_id = absl::StrCat(config_.kafka.group.value_or("rtdw"), ".", settings_.job);
  co.properties = config_.kafka.ResolvedProperties();
  auto consumer = KafkaConsumer::Create(co);
  if (!consumer.ok()) return consumer.status();
  consumer_ = std::move(*consumer);

  sink_ = std::make_unique<ProducingSink>(producer_.get(), step_->SlotTopics(),
                                          settings_.dead_letter_topic, metrics_, settings_.job);
  spdlog::info("{}: store {} ({}), source {}", settings_.job, store_->path(),
               store_->created() ? "created" : "opened", settings_.source_topic);
  return TryAssign();
}

absl::Status SplitJobRunner::TryAssign() {
  auto partitions = consumer_->PartitionCount(settings_.source_topic, std::chrono::seconds(5));
  if (absl::IsNotFound(partitions.status())) {
    SetProblem(absl::StrCat("waiting for source topic ", settings_.source_topic));
    caught_up_ = true;  // a topic that does not exist counts as empty
    return absl::OkStatus();
  }
  if (!partitions.ok()) {
    SetProblem(absl::StrCat("kafka unreachable (", config_.kafka.brokers,
                            "): ", std::string(partitions.status().message())));
    caught_up_ = false;
    return absl::OkStatus();
  }
  auto starts = PartitionStarts(*store_, config_, settings_.source_topic, *partitions);
  if (!starts.ok()) return starts.status();
  if (auto st = consumer_->Assign(*starts); !st.ok()) return st;
  lag_.Assigned(*starts);
  assigned_ = true;
  caught_up_ = false;
  SetProblem("");
  spdlog::info("{}: assigned {} partitions of {}", settings_.job, *partitions,
               settings_.source_topic);
  return absl::OkStatus();
}

absl::StatusOr<size_t> SplitJobRunner::RunOnce() {
  if (!assigned_) {
    if (auto st = TryAssign(); !st.ok()) return st;
    if (!assigned_) {
      std::this_thread::sleep_for(std::chrono::milliseconds(500));
      return 0;
    }
  }
  batch_.Clear();
  auto started = std::chrono::steady_clock::now();
  absl::Status polled = consumer_->Poll(static_cast<size_t>(settings_.batch_max_records),
                                        settings_.batch_max_ms, &batch_);
  if (absl::IsOutOfRange(polled)) {
    metrics_
        ->GetCounter("rtdw_offset_lost_total", "Stored offsets the broker no longer has",
                     {{"job", settings_.job}})
        ->Add();
    return polled;
  }
  if (!polled.ok()) {
    SetProblem(std::string(polled.message()));
    return size_t{0};
  }
  if (batch_.empty()) {
    caught_up_ = consumer_->VerifiedAtEnd();
    lag_.Update(consumer_->HighWatermarks(), caught_up_);
    return size_t{0};
  }
  caught_up_ = false;
  if (auto st = ProcessBatch(); !st.ok()) return st;
  const size_t n = batch_.size();
  batch_.Clear();
  batch_seconds_->Observe(
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
  caught_up_ = false;
  return n;
}

absl::Status SplitJobRunner::ProcessBatch() {
  Backoff backoff(BackoffOptions{std::chrono::milliseconds(200), std::chrono::milliseconds(50),
                                 std::chrono::milliseconds(10000), 2.0});
  while (true) {
    absl::Status st = step_->BeginBatch();
    if (st.ok()) {
      for (const InputRecord& rec : batch_.records()) step_->Process(rec, sink_.get());
      st = step_->BeforeFlush(sink_.get());
      absl::Status produced = sink_->TakeError();
      if (st.ok()) st = produced;
      absl::Status flushed = producer_->Flush(std::chrono::seconds(60));
      if (st.ok()) st = flushed;
    }
    if (st.ok()) {
      // Next offset per partition: the batch is in offset order per partition.
      std::map<std::pair<std::string, int32_t>, int64_t> next;
      for (const InputRecord& rec : batch_.records()) {
        auto& slot = next[{std::string(rec.topic), rec.partition}];
        slot = std::max(slot, rec.offset + 1);
      }
      PendingBatch pending = store_->NewBatch();
      for (const auto& [tp, offset] : next) {
        if (auto s = pending.SetOffset(tp.first, tp.second, offset); !s.ok()) return s;
      }
      auto committed = store_->Commit(std::move(pending));
      if (!committed.ok()) {
        // The disk said no (full, I/O error): nothing was committed; keep the batch and retry.
        st = committed.status();
      } else {
        consumer_->CommitAsync(next);
        records_in_->Add(batch_.size());
        records_out_->Add(sink_->TakeEmitted());
        dead_letters_->Add(sink_->TakeDead());
        batches_->Add();
        lag_.Committed(next);
        lag_.Update(consumer_->HighWatermarks());
        SetProblem("");
        return absl::OkStatus();
      }
    }
    // Run the whole batch again: nothing of it was committed.
    step_->AbortBatch();
    sink_->TakeEmitted();
    sink_->TakeDead();
    retries_->Add();
    auto delay = backoff.NextDelay();
    SetProblem(absl::StrCat("batch failed, retrying in ", delay.count(),
                            " ms: ", std::string(st.message())));
    if (StopRequested()) {
      return absl::OkStatus();  // not committed: re-read after the restart
    }
    std::this_thread::sleep_for(delay);
  }
}

absl::Status SplitJobRunner::Stop() {
  if (producer_) (void)producer_->Flush(std::chrono::seconds(10));
  consumer_.reset();
  if (store_) return store_->Close();
  return absl::OkStatus();
}

}  // namespace rtdw
