#include "connectors/kafka/producer.h"

#include <librdkafka/rdkafka.h>

#include "absl/strings/str_cat.h"
#include "connectors/kafka/conf.h"
#include "connectors/kafka/destroy.h"
#include "core/status_util.h"

namespace rtdw {

// librdkafka's opaque: lives as long as the client (a destroy may outlive the producer object).
struct KafkaProducer::Callbacks {
  std::atomic<KafkaProducer*> producer{nullptr};  // null once the producer is gone
  std::function<void(int, std::string_view, std::string_view)> log;
  static void OnLog(const rd_kafka_t* rk, int level, const char* facility, const char* message) {
    auto* self = static_cast<Callbacks*>(rd_kafka_opaque(rk));
    if (self != nullptr && self->log) {
      self->log(level, facility ? facility : "", message ? message : "");
    }
  }
  static void OnDeliveryReport(rd_kafka_t*, const rd_kafka_message_t* msg, void* opaque) {
    KafkaProducer* producer = static_cast<Callbacks*>(opaque)->producer.load();
    if (producer != nullptr) {
      producer->OnDelivery(msg->err, msg->err ? rd_kafka_err2str(msg->err) : "", msg->_private);
    }
  }
};

namespace {

// Delivery reports are served (rd_kafka_poll) once per this many records produced, so that a
// batch's reports are counted while the next batch is produced, and the report queue stays short.
constexpr uint32_t kPollEvery = 512;

}  // namespace

absl::StatusOr<std::unique_ptr<KafkaProducer>> KafkaProducer::Create(
    const KafkaProducerOptions& options) {
  // Tuning, not guarantees: `options.properties` ([kafka.properties]) may override these.
  const kafka_internal::ConfEntries defaults = {
      {"linger.ms", std::to_string(options.linger_ms)},
      {"batch.size", std::to_string(options.batch_size)},
  };
  const kafka_internal::ConfEntries own = {
      {"bootstrap.servers", options.brokers},
      {"enable.idempotence", "true"},
      {"acks", "all"},
      {"compression.codec", options.compression},
      {"partitioner", options.partitioner},
      {"queue.buffering.max.messages", "1000000"},
      {"queue.buffering.max.kbytes", "1048576"},
      {"message.max.bytes", "1000000"},
  };
  RTDW_ASSIGN_OR_RETURN(rd_kafka_conf_t * conf,
                        kafka_internal::NewKafkaConf(kafka_internal::ClientRole::kProducer,
                                                     options.properties, defaults, own));
  rd_kafka_conf_set_dr_msg_cb(conf, &Callbacks::OnDeliveryReport);
  if (options.log) rd_kafka_conf_set_log_cb(conf, &Callbacks::OnLog);
  auto producer = std::unique_ptr<KafkaProducer>(new KafkaProducer(nullptr));
  producer->callbacks_ = std::make_shared<Callbacks>();
  producer->callbacks_->producer = producer.get();
  producer->callbacks_->log = options.log;
  rd_kafka_conf_set_opaque(conf, producer->callbacks_.get());
  char errstr[512];
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
  if (rk == nullptr) {
    rd_kafka_conf_destroy(conf);
    return absl::InvalidArgumentError(absl::StrCat("kafka producer: ", errstr));
  }
  producer->rk_ = rk;
  return producer;
}

KafkaProducer::~KafkaProducer() {
  if (rk_ == nullptr) return;
  if (!destroy_by_) {
    rd_kafka_flush(rk_, 5000);
    for (auto& [name, rkt] : topics_) rd_kafka_topic_destroy(rkt);
    rd_kafka_destroy(rk_);
    return;
  }
  // After Close(deadline): reports that still come find no producer; at most a second of grace
  // past the stop's deadline, then the client is left behind.
  callbacks_->producer = nullptr;
  std::vector<rd_kafka_topic_t*> topics;
  for (auto& [name, rkt] : topics_) topics.push_back(rkt);
  kafka_internal::DestroyBy(
      [rk = rk_, topics = std::move(topics), callbacks = callbacks_] {
        for (rd_kafka_topic_t* rkt : topics) rd_kafka_topic_destroy(rkt);
        rd_kafka_destroy(rk);
      },
      std::max(*destroy_by_ + std::chrono::seconds(1),
               std::chrono::steady_clock::now() + std::chrono::milliseconds(100)));
}

void KafkaProducer::OnDelivery(int err, const char* errstr, void* msg_opaque) {
  if (msg_opaque != nullptr) {
    static_cast<DeliveryGroup*>(msg_opaque)->Report(err == RD_KAFKA_RESP_ERR_NO_ERROR, errstr);
  }
  if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
    delivered_.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  absl::MutexLock lock(&mu_);
  if (first_error_.empty()) first_error_ = errstr;
}

absl::StatusOr<KafkaTopicRef> KafkaProducer::Topic(std::string_view topic) {
  absl::MutexLock lock(&topics_mu_);
  auto it = topics_.find(absl::string_view(topic.data(), topic.size()));
  if (it != topics_.end()) return KafkaTopicRef{it->second};
  std::string name(topic);
  rd_kafka_topic_t* rkt = rd_kafka_topic_new(rk_, name.c_str(), nullptr);
  if (rkt == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("kafka topic ", name, ": ", rd_kafka_err2str(rd_kafka_last_error())));
  }
  topics_.emplace(std::move(name), rkt);
  return KafkaTopicRef{rkt};
}

absl::Status KafkaProducer::Produce(std::string_view topic, std::string_view key,
                                    std::string_view value, const std::vector<KafkaHeader>& headers,
                                    int32_t partition, KafkaDeliveryGroup* group) {
  auto ref = Topic(topic);
  if (!ref.ok()) return ref.status();
  return Produce(*ref, key, value, headers, partition, group);
}

absl::Status KafkaProducer::Produce(KafkaTopicRef topic, std::string_view key,
                                    std::string_view value, const std::vector<KafkaHeader>& headers,
                                    int32_t partition, KafkaDeliveryGroup* group) {
  rd_kafka_topic_t* rkt = static_cast<rd_kafka_topic_t*>(topic.handle);
  if (since_poll_.fetch_add(1, std::memory_order_relaxed) + 1 >= kPollEvery) {
    since_poll_.store(0, std::memory_order_relaxed);
    rd_kafka_poll(rk_, 0);
  }
  if (group != nullptr) group->Added();
  while (true) {
    rd_kafka_headers_t* hdrs = nullptr;
    if (!headers.empty()) {
      hdrs = rd_kafka_headers_new(headers.size());
      for (const auto& h : headers) {
        rd_kafka_header_add(hdrs, h.name.data(), static_cast<ssize_t>(h.name.size()),
                            h.value.data(), static_cast<ssize_t>(h.value.size()));
      }
    }
    rd_kafka_vu_t vus[7];
    size_t n = 0;
    vus[n].vtype = RD_KAFKA_VTYPE_RKT;
    vus[n++].u.rkt = rkt;
    vus[n].vtype = RD_KAFKA_VTYPE_PARTITION;
    vus[n++].u.i32 = partition < 0 ? RD_KAFKA_PARTITION_UA : partition;
    if (!key.empty()) {
      vus[n].vtype = RD_KAFKA_VTYPE_KEY;
      vus[n].u.mem.ptr = const_cast<char*>(key.data());
      vus[n++].u.mem.size = key.size();
    }
    vus[n].vtype = RD_KAFKA_VTYPE_VALUE;
    vus[n].u.mem.ptr = const_cast<char*>(value.data());
    vus[n++].u.mem.size = value.size();
    vus[n].vtype = RD_KAFKA_VTYPE_MSGFLAGS;
    vus[n++].u.i = RD_KAFKA_MSG_F_COPY;
    if (hdrs != nullptr) {
      vus[n].vtype = RD_KAFKA_VTYPE_HEADERS;
      vus[n++].u.headers = hdrs;
    }
    if (group != nullptr) {
      vus[n].vtype = RD_KAFKA_VTYPE_OPAQUE;
      vus[n++].u.ptr = group;
    }
    rd_kafka_error_t* error = rd_kafka_produceva(rk_, vus, n);
    rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR_NO_ERROR;
    if (error != nullptr) {
      err = rd_kafka_error_code(error);
      rd_kafka_error_destroy(error);
    }
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR) return absl::OkStatus();
    if (hdrs) rd_kafka_headers_destroy(hdrs);
    if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
      rd_kafka_poll(rk_, 10);
      continue;
    }
    if (group != nullptr) group->Withdrawn();
    return absl::UnavailableError(
        absl::StrCat("kafka produce to ", rd_kafka_topic_name(rkt), ": ", rd_kafka_err2str(err)));
  }
}

absl::Status KafkaProducer::AwaitImpl(DeliveryGroup* group, std::chrono::milliseconds timeout,
                                      const std::atomic<bool>* interrupt) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  bool interrupted = false;
  while (group->pending() > 0) {
    if (interrupt != nullptr && interrupt->load()) {
      interrupted = true;
      break;
    }
    auto left =
        std::chrono::ceil<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) break;
    rd_kafka_poll(rk_, static_cast<int>(std::min<int64_t>(left.count(), 100)));
  }
  return group->Outcome("kafka", interrupted, timeout);
}

absl::Status KafkaProducer::FlushImpl(std::chrono::milliseconds timeout,
                                      const std::atomic<bool>* interrupt) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR_NO_ERROR;
  bool interrupted = false;
  while (true) {
    auto left =
        std::chrono::ceil<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    // In steps of 100 ms when it can be interrupted (rd_kafka_flush honours its timeout).
    int step = static_cast<int>(std::max<int64_t>(0, left.count()));
    if (interrupt != nullptr) step = std::min(step, 100);
    err = rd_kafka_flush(rk_, step);
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR || left.count() <= step) break;
    if (interrupt != nullptr && interrupt->load()) {
      interrupted = true;
      break;
    }
  }
  rd_kafka_poll(rk_, 0);
  std::string first_error;
  {
    absl::MutexLock lock(&mu_);
    first_error.swap(first_error_);
  }
  if (!first_error.empty()) {
    return absl::UnavailableError(absl::StrCat("kafka delivery failed: ", first_error));
  }
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    if (interrupted) {
      return absl::CancelledError(absl::StrCat(
          "kafka flush: interrupted with ", rd_kafka_outq_len(rk_), " records not acknowledged"));
    }
    return absl::DeadlineExceededError(absl::StrCat("kafka flush: ", rd_kafka_outq_len(rk_),
                                                    " records not acknowledged within ",
                                                    timeout.count(), " ms"));
  }
  return absl::OkStatus();
}

absl::Status KafkaProducer::Close(std::chrono::steady_clock::time_point deadline,
                                  const std::atomic<bool>* interrupt) {
  destroy_by_ = deadline;
  auto left =
      std::chrono::ceil<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
  return Flush(std::max(left, std::chrono::milliseconds(0)), interrupt);
}

absl::Status KafkaProducer::Ping(std::chrono::milliseconds timeout) {
  // No topic named and not all of them: librdkafka asks for the topics it knows (none here),
  // i.e. the brokers only.
  const rd_kafka_metadata_t* md = nullptr;
  rd_kafka_resp_err_t err =
      rd_kafka_metadata(rk_, 0, nullptr, &md, static_cast<int>(timeout.count()));
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return absl::UnavailableError(absl::StrCat("metadata request: ", rd_kafka_err2str(err)));
  }
  const int brokers = md->broker_cnt;
  rd_kafka_metadata_destroy(md);
  if (brokers == 0) return absl::UnavailableError("metadata request: no broker in the answer");
  return absl::OkStatus();
}

absl::StatusOr<int> KafkaProducer::PartitionCount(const std::string& topic,
                                                  std::chrono::milliseconds timeout) {
  // All topics: asking for one by name could auto-create it.
  const rd_kafka_metadata_t* md = nullptr;
  rd_kafka_resp_err_t err =
      rd_kafka_metadata(rk_, 1, nullptr, &md, static_cast<int>(timeout.count()));
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return absl::UnavailableError(
        absl::StrCat("kafka metadata for ", topic, ": ", rd_kafka_err2str(err)));
  }
  absl::StatusOr<int> result = absl::NotFoundError(absl::StrCat("topic ", topic, " not found"));
  for (int i = 0; i < md->topic_cnt; ++i) {
    if (topic == md->topics[i].topic && md->topics[i].err == RD_KAFKA_RESP_ERR_NO_ERROR) {
      result = md->topics[i].partition_cnt;
    }
  }
  rd_kafka_metadata_destroy(md);
  return result;
}

}  // namespace rtdw
