#include "connectors/kafka/producer.h"

#include <librdkafka/rdkafka.h>

#include "absl/strings/str_cat.h"

namespace rtdw {
namespace {

void DeliveryReport(rd_kafka_t*, const rd_kafka_message_t* msg, void* opaque) {
  static_cast<KafkaProducer*>(opaque)->OnDelivery(msg->err, rd_kafka_err2str(msg->err));
}

absl::Status SetConf(rd_kafka_conf_t* conf, const std::string& key, const std::string& value) {
  char errstr[512];
  if (rd_kafka_conf_set(conf, key.c_str(), value.c_str(), errstr, sizeof errstr) !=
      RD_KAFKA_CONF_OK) {
    return absl::InvalidArgumentError(absl::StrCat("kafka property ", key, ": ", errstr));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<KafkaProducer>> KafkaProducer::Create(
    const KafkaProducerOptions& options) {
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  auto fail = [&](absl::Status st) {
    rd_kafka_conf_destroy(conf);
    return st;
  };
  for (const auto& [k, v] : options.properties) {
    if (auto st = SetConf(conf, k, v); !st.ok()) return fail(st);
  }
  const std::vector<std::pair<std::string, std::string>> own = {
      {"bootstrap.servers", options.brokers},
      {"enable.idempotence", "true"},
      {"acks", "all"},
      {"compression.codec", options.compression},
      {"partitioner", options.partitioner},
      {"linger.ms", std::to_string(options.linger_ms)},
      {"batch.size", std::to_string(options.batch_size)},
      {"queue.buffering.max.messages", "1000000"},
      {"queue.buffering.max.kbytes", "1048576"},
      {"message.max.bytes", "1000000"},
  };
  for (const auto& [k, v] : own) {
    if (auto st = SetConf(conf, k, v); !st.ok()) return fail(st);
  }
  rd_kafka_conf_set_dr_msg_cb(conf, DeliveryReport);
  // The opaque is set after construction below via rd_kafka_conf_set_opaque on conf.
  auto producer = std::unique_ptr<KafkaProducer>(new KafkaProducer(nullptr));
  rd_kafka_conf_set_opaque(conf, producer.get());
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
  if (rk_ != nullptr) {
    rd_kafka_flush(rk_, 5000);
    rd_kafka_destroy(rk_);
  }
}

void KafkaProducer::OnDelivery(int err, const char* errstr) {
  if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
    delivered_.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  std::lock_guard<std::mutex> lock(mu_);
  if (first_error_.empty()) first_error_ = errstr;
}

absl::Status KafkaProducer::Produce(std::string_view topic, std::string_view key,
                                    std::string_view value, const std::vector<KafkaHeader>& headers,
                                    int32_t partition) {
  std::string topic_name(topic);
  while (true) {
    rd_kafka_headers_t* hdrs = nullptr;
    if (!headers.empty()) {
      hdrs = rd_kafka_headers_new(headers.size());
      for (const auto& h : headers) {
        rd_kafka_header_add(hdrs, h.name.data(), static_cast<ssize_t>(h.name.size()),
                            h.value.data(), static_cast<ssize_t>(h.value.size()));
      }
    }
    rd_kafka_vu_t vus[6];
    size_t n = 0;
    vus[n].vtype = RD_KAFKA_VTYPE_TOPIC;
    vus[n++].u.cstr = topic_name.c_str();
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
    return absl::UnavailableError(
        absl::StrCat("kafka produce to ", topic_name, ": ", rd_kafka_err2str(err)));
  }
}

absl::Status KafkaProducer::Flush(std::chrono::milliseconds timeout) {
  rd_kafka_resp_err_t err = rd_kafka_flush(rk_, static_cast<int>(timeout.count()));
  rd_kafka_poll(rk_, 0);
  std::string first_error;
  {
    std::lock_guard<std::mutex> lock(mu_);
    first_error.swap(first_error_);
  }
  if (!first_error.empty()) {
    return absl::UnavailableError(absl::StrCat("kafka delivery failed: ", first_error));
  }
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return absl::DeadlineExceededError(absl::StrCat("kafka flush: ", rd_kafka_outq_len(rk_),
                                                    " records not acknowledged within ",
                                                    timeout.count(), " ms"));
  }
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
