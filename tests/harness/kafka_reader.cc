#include "tests/harness/kafka_reader.h"

#include <librdkafka/rdkafka.h>

#include <set>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace rtdw::testing {
namespace {

rd_kafka_t* NewClient(rd_kafka_type_t type, const std::string& bootstrap,
                      const std::vector<std::pair<std::string, std::string>>& props,
                      std::string* error) {
  char errstr[512];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap.c_str(), errstr, sizeof errstr);
  for (const auto& [k, v] : props) {
    if (rd_kafka_conf_set(conf, k.c_str(), v.c_str(), errstr, sizeof errstr) != RD_KAFKA_CONF_OK) {
      *error = errstr;
      rd_kafka_conf_destroy(conf);
      return nullptr;
    }
  }
  rd_kafka_t* rk = rd_kafka_new(type, conf, errstr, sizeof errstr);
  if (rk == nullptr) *error = errstr;
  return rk;
}

}  // namespace

absl::StatusOr<std::vector<TopicRecord>> ReadTopic(const std::string& bootstrap,
                                                   const std::string& topic,
                                                   std::chrono::milliseconds timeout) {
  std::string error;
  rd_kafka_t* rk = NewClient(RD_KAFKA_CONSUMER, bootstrap,
                             {{"group.id", "rtdw-test-reader"},
                              {"enable.auto.commit", "false"},
                              {"enable.partition.eof", "true"}},
                             &error);
  if (rk == nullptr) return absl::InternalError(error);
  rd_kafka_poll_set_consumer(rk);
  const rd_kafka_metadata_t* md = nullptr;
  int partitions = -1;
  if (rd_kafka_metadata(rk, 1, nullptr, &md, 10000) == RD_KAFKA_RESP_ERR_NO_ERROR) {
    for (int i = 0; i < md->topic_cnt; ++i) {
      if (topic == md->topics[i].topic) partitions = md->topics[i].partition_cnt;
    }
    rd_kafka_metadata_destroy(md);
  }
  if (partitions < 0) {
    rd_kafka_destroy(rk);
    return absl::NotFoundError(absl::StrCat("topic ", topic, " not found"));
  }
  rd_kafka_topic_partition_list_t* list = rd_kafka_topic_partition_list_new(partitions);
  for (int p = 0; p < partitions; ++p) {
    rd_kafka_topic_partition_list_add(list, topic.c_str(), p)->offset = RD_KAFKA_OFFSET_BEGINNING;
  }
  rd_kafka_assign(rk, list);
  rd_kafka_topic_partition_list_destroy(list);

  std::vector<TopicRecord> out;
  std::set<int32_t> done;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (static_cast<int>(done.size()) < partitions) {
    if (std::chrono::steady_clock::now() > deadline) {
      rd_kafka_consumer_close(rk);
      rd_kafka_destroy(rk);
      return absl::DeadlineExceededError(absl::StrCat("reading ", topic, ": ", done.size(), "/",
                                                      partitions, " partitions at their end"));
    }
    rd_kafka_message_t* m = rd_kafka_consumer_poll(rk, 100);
    if (m == nullptr) continue;
    if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
      done.insert(m->partition);
    } else if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
      done.erase(m->partition);
      TopicRecord r;
      r.partition = m->partition;
      r.offset = m->offset;
      if (m->key) r.key.assign(static_cast<const char*>(m->key), m->key_len);
      if (m->payload) r.value.assign(static_cast<const char*>(m->payload), m->len);
      rd_kafka_headers_t* hdrs = nullptr;
      if (rd_kafka_message_headers(m, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR) {
        const char* name;
        const void* value;
        size_t size;
        for (size_t i = 0;
             rd_kafka_header_get_all(hdrs, i, &name, &value, &size) == RD_KAFKA_RESP_ERR_NO_ERROR;
             ++i) {
          r.headers[name] = std::string(static_cast<const char*>(value), size);
        }
      }
      out.push_back(std::move(r));
    }
    rd_kafka_message_destroy(m);
  }
  rd_kafka_consumer_close(rk);
  rd_kafka_destroy(rk);
  std::sort(out.begin(), out.end(), [](const TopicRecord& a, const TopicRecord& b) {
    return std::tie(a.partition, a.offset) < std::tie(b.partition, b.offset);
  });
  return out;
}

absl::Status ProduceAll(const std::string& bootstrap, const std::string& topic,
                        const std::vector<std::string>& values,
                        const std::vector<std::string>& keys) {
  std::string error;
  rd_kafka_t* rk = NewClient(RD_KAFKA_PRODUCER, bootstrap,
                             {{"compression.codec", "lz4"},
                              {"linger.ms", "20"},
                              {"enable.idempotence", "true"},
                              {"partitioner", "murmur2_random"}},
                             &error);
  if (rk == nullptr) return absl::InternalError(error);
  for (size_t i = 0; i < values.size(); ++i) {
    const std::string* key = keys.empty() ? nullptr : &keys[i];
    while (true) {
      rd_kafka_resp_err_t err =
          rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic.c_str()),
                            RD_KAFKA_V_KEY(key ? key->data() : nullptr, key ? key->size() : 0),
                            RD_KAFKA_V_VALUE(const_cast<char*>(values[i].data()), values[i].size()),
                            RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
      if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
        rd_kafka_poll(rk, 10);
        continue;
      }
      if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        rd_kafka_destroy(rk);
        return absl::InternalError(rd_kafka_err2str(err));
      }
      break;
    }
  }
  rd_kafka_resp_err_t err = rd_kafka_flush(rk, 60000);
  rd_kafka_destroy(rk);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) return absl::InternalError(rd_kafka_err2str(err));
  return absl::OkStatus();
}

absl::Status CommitGroupOffsets(const std::string& bootstrap, const std::string& group,
                                const std::string& topic,
                                const std::map<int32_t, int64_t>& next_offsets) {
  std::string error;
  rd_kafka_t* rk = NewClient(RD_KAFKA_CONSUMER, bootstrap,
                             {{"group.id", group}, {"enable.auto.commit", "false"}}, &error);
  if (rk == nullptr) return absl::InternalError(absl::StrCat("kafka client: ", error));
  rd_kafka_topic_partition_list_t* list =
      rd_kafka_topic_partition_list_new(static_cast<int>(next_offsets.size()));
  for (const auto& [p, offset] : next_offsets) {
    rd_kafka_topic_partition_list_add(list, topic.c_str(), p)->offset = offset;
  }
  rd_kafka_resp_err_t err = rd_kafka_commit(rk, list, /*async=*/0);
  for (int i = 0; err == RD_KAFKA_RESP_ERR_NO_ERROR && i < list->cnt; ++i) {
    err = list->elems[i].err;
  }
  rd_kafka_topic_partition_list_destroy(list);
  rd_kafka_consumer_close(rk);
  rd_kafka_destroy(rk);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return absl::InternalError(
        absl::StrCat("commit to group ", group, ": ", rd_kafka_err2str(err)));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::map<int32_t, int64_t>> GroupOffsets(const std::string& bootstrap,
                                                        const std::string& group,
                                                        const std::string& topic, int partitions) {
  std::string error;
  rd_kafka_t* rk = NewClient(RD_KAFKA_CONSUMER, bootstrap,
                             {{"group.id", group}, {"enable.auto.commit", "false"}}, &error);
  if (rk == nullptr) return absl::InternalError(absl::StrCat("kafka client: ", error));
  rd_kafka_topic_partition_list_t* list = rd_kafka_topic_partition_list_new(partitions);
  for (int p = 0; p < partitions; ++p) rd_kafka_topic_partition_list_add(list, topic.c_str(), p);
  rd_kafka_resp_err_t err = rd_kafka_committed(rk, list, /*timeout_ms=*/10000);
  std::map<int32_t, int64_t> out;
  for (int i = 0; err == RD_KAFKA_RESP_ERR_NO_ERROR && i < list->cnt; ++i) {
    if (list->elems[i].err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      err = list->elems[i].err;
    } else if (list->elems[i].offset >= 0) {
      out[list->elems[i].partition] = list->elems[i].offset;
    }
  }
  rd_kafka_topic_partition_list_destroy(list);
  rd_kafka_consumer_close(rk);
  rd_kafka_destroy(rk);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return absl::InternalError(
        absl::StrCat("committed offsets of group ", group, ": ", rd_kafka_err2str(err)));
  }
  return out;
}

}  // namespace rtdw::testing
