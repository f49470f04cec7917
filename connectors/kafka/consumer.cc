#include "connectors/kafka/consumer.h"

#include <librdkafka/rdkafka.h>

#include <algorithm>
#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "connectors/kafka/conf.h"
#include "connectors/kafka/destroy.h"
#include "connectors/kafka/fetch_waker.h"
#include "connectors/kafka/partition_list.h"
#include "core/status_util.h"

namespace rtdw {

using kafka_internal::NewPartitionList;
using kafka_internal::PartitionList;

// Lives before the consumer (librdkafka's opaque is set at configuration time).
struct KafkaConsumer::Callbacks {
  KafkaConsumer* consumer = nullptr;
  std::function<void(int, std::string_view, std::string_view)> log;
  static void OnLog(const rd_kafka_t* rk, int level, const char* fac, const char* buf) {
    auto* self = static_cast<Callbacks*>(rd_kafka_opaque(rk));
    if (self != nullptr && self->log) self->log(level, fac ? fac : "", buf ? buf : "");
  }
  static void OnRebalance(rd_kafka_t* rk, rd_kafka_resp_err_t err,
                          rd_kafka_topic_partition_list_t* partitions, void* opaque) {
    auto* self = static_cast<Callbacks*>(opaque);
    if (self->consumer != nullptr) {
      self->consumer->Rebalance(static_cast<int>(err), partitions);
    } else {
      rd_kafka_assign(rk, nullptr);  // the consumer is gone: let go of whatever was given
    }
  }
};

namespace {

// What a ConsumedBatch's records point into: librdkafka's messages, destroyed when the batch is
// cleared.
struct KafkaMessages : ConsumedBatch::Buffers {
  ~KafkaMessages() override { KafkaMessages::Release(); }
  void Release() override {
    for (rd_kafka_message_t* m : messages) rd_kafka_message_destroy(m);
    messages.clear();
  }
  // Destroys the messages past the first `n`.
  void Truncate(size_t n) {
    for (size_t i = n; i < messages.size(); ++i) rd_kafka_message_destroy(messages[i]);
    messages.resize(std::min(n, messages.size()));
  }
  std::vector<rd_kafka_message_t*> messages;
};

// A fetch met an offset the broker no longer holds (retention deleted it, or the topic was
// recreated): librdkafka raises this once and stops fetching the partition (auto.offset.reset is
// "error": rtdw never jumps on its own).
bool IsLostOffsetEvent(const rd_kafka_message_t* m) {
  return m->err == RD_KAFKA_RESP_ERR__AUTO_OFFSET_RESET ||
         m->err == RD_KAFKA_RESP_ERR_OFFSET_OUT_OF_RANGE;
}

}  // namespace

KafkaConsumer::KafkaConsumer(rd_kafka_t* rk, rd_kafka_queue_t* queue,
                             std::shared_ptr<Callbacks> callbacks, int64_t prefetch_bound_bytes,
                             Counter* fetch_wakes)
    : rk_(rk),
      queue_(queue),
      callbacks_(std::move(callbacks)),
      prefetch_bound_bytes_(prefetch_bound_bytes) {
  callbacks_->consumer = this;
  if (prefetch_bound_bytes_ > 0) {
    FetchWaker::Options wo;
    wo.wakes = fetch_wakes;
    fetch_waker_ = std::make_unique<FetchWaker>(rk_, wo);
  }
}

absl::StatusOr<std::unique_ptr<KafkaConsumer>> KafkaConsumer::Create(
    const KafkaConsumerOptions& options) {
  kafka_internal::ConfEntries defaults;
  if (options.prefetch_kbytes > 0) {
    constexpr int64_t kMinFetchBytes = 4194304;  // fetch.message.max.bytes below: one partition
    const int64_t fetch_bytes =
        std::max<int64_t>(int64_t{options.prefetch_kbytes} * 1024 / 2, kMinFetchBytes);
    defaults.emplace_back("queued.max.messages.kbytes", std::to_string(options.prefetch_kbytes));
    defaults.emplace_back("fetch.max.bytes", std::to_string(fetch_bytes));
    defaults.emplace_back("queued.min.messages", "10000000");  // librdkafka's maximum
  }
  kafka_internal::ConfEntries own = {
      {"bootstrap.servers", options.brokers},
      {"group.id", options.group_id},
      {"enable.auto.commit", "false"},
      {"enable.auto.offset.store", "false"},
      {"enable.partition.eof", "true"},
      // A stored offset the broker no longer has must surface, never jump silently.
      {"auto.offset.reset", "error"},
      {"isolation.level", "read_committed"},
      {"fetch.wait.max.ms", "50"},
      {"fetch.message.max.bytes", "4194304"},
  };
  if (!options.assignment_strategy.empty()) {
    own.emplace_back("partition.assignment.strategy", options.assignment_strategy);
  }
  RTDW_ASSIGN_OR_RETURN(rd_kafka_conf_t * conf,
                        kafka_internal::NewKafkaConf(kafka_internal::ClientRole::kConsumer,
                                                     options.properties, defaults, own));
  auto callbacks = std::make_shared<Callbacks>();
  callbacks->log = options.log;
  rd_kafka_conf_set_opaque(conf, callbacks.get());
  if (options.log) rd_kafka_conf_set_log_cb(conf, &Callbacks::OnLog);
  rd_kafka_conf_set_rebalance_cb(conf, &Callbacks::OnRebalance);
  // The bound in effect (rtdw's default or the operator's), for the fetch waker.
  int64_t bound_kbytes = 0;
  {
    char value[64];
    size_t size = sizeof value;
    if (rd_kafka_conf_get(conf, "queued.max.messages.kbytes", value, &size) == RD_KAFKA_CONF_OK) {
      bound_kbytes = std::strtoll(value, nullptr, 10);
    }
  }
  char errstr[512];
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof errstr);
  if (rk == nullptr) {
    rd_kafka_conf_destroy(conf);
    return absl::InvalidArgumentError(absl::StrCat("kafka consumer: ", errstr));
  }
  rd_kafka_poll_set_consumer(rk);
  return std::unique_ptr<KafkaConsumer>(
      new KafkaConsumer(rk, rd_kafka_queue_get_consumer(rk), std::move(callbacks),
                        options.wake_fetcher ? bound_kbytes * 1024 : 0, options.fetch_wakes));
}

absl::Status KafkaConsumer::Close(std::chrono::steady_clock::time_point deadline) {
  if (closed_) return absl::OkStatus();
  closed_ = true;
  if (fetch_waker_) fetch_waker_->Stop();
  const bool bounded = deadline != std::chrono::steady_clock::time_point::max();
  if (bounded) destroy_by_ = deadline;
  // rd_kafka_consumer_close() waits for the coordinator without a bound; the queue form lets
  // this thread serve the close (the final revoke runs the listener here) and give up.
  rd_kafka_queue_t* q = rd_kafka_queue_new(rk_);
  absl::Status result;
  if (rd_kafka_error_t* error = rd_kafka_consumer_close_queue(rk_, q); error != nullptr) {
    result = absl::UnavailableError(
        absl::StrCat("kafka consumer close: ", rd_kafka_error_string(error)));
    rd_kafka_error_destroy(error);
  } else {
    while (!rd_kafka_consumer_closed(rk_)) {
      int wait_ms = 100;
      if (bounded) {
        auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline -
                                                                 std::chrono::steady_clock::now());
        if (left.count() <= 0) break;
        wait_ms = static_cast<int>(std::min<int64_t>(left.count(), 100));
      }
      // Serves the rebalance callback (OnRevoked) and the termination; records still fetched
      // are dropped (read again from the committed offsets).
      if (rd_kafka_message_t* m = rd_kafka_consume_queue(q, wait_ms)) rd_kafka_message_destroy(m);
    }
    if (!rd_kafka_consumer_closed(rk_)) {
      result = absl::DeadlineExceededError(
          "kafka consumer: the group coordinator did not answer the close in time");
    }
  }
  rd_kafka_queue_destroy(q);
  listener_ = nullptr;
  return result;
}

KafkaConsumer::~KafkaConsumer() {
  if (!destroy_by_) {
    Close();
    rd_kafka_queue_destroy(queue_);
    rd_kafka_destroy(rk_);
    return;
  }
  if (fetch_waker_) fetch_waker_->Stop();  // stopped by Close() already; idempotent
  // After a bounded Close(): no second close (the flag skips it, and its callbacks), at most a
  // second of grace past the stop's deadline, then the client is left behind.
  callbacks_->consumer = nullptr;
  kafka_internal::DestroyBy(
      [rk = rk_, queue = queue_, callbacks = callbacks_] {
        rd_kafka_queue_destroy(queue);
        rd_kafka_destroy_flags(rk, RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
      },
      std::max(*destroy_by_ + std::chrono::seconds(1),
               std::chrono::steady_clock::now() + std::chrono::milliseconds(100)));
}

absl::StatusOr<int> KafkaConsumer::PartitionCount(const std::string& topic,
                                                  std::chrono::milliseconds timeout) {
  const rd_kafka_metadata_t* md = nullptr;
  rd_kafka_resp_err_t err =
      rd_kafka_metadata(rk_, 1, nullptr, &md, static_cast<int>(timeout.count()));
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return absl::UnavailableError(
        absl::StrCat("kafka metadata for ", topic, ": ", rd_kafka_err2str(err)));
  }
  absl::StatusOr<int> result =
      absl::NotFoundError(absl::StrCat("topic ", topic, " does not exist (yet)"));
  for (int i = 0; i < md->topic_cnt; ++i) {
    if (topic == md->topics[i].topic && md->topics[i].err == RD_KAFKA_RESP_ERR_NO_ERROR) {
      result = md->topics[i].partition_cnt;
    }
  }
  rd_kafka_metadata_destroy(md);
  return result;
}

void KafkaConsumer::SetAssigned(const std::vector<PartitionStart>& starts) {
  assigned_.clear();
  at_end_.clear();
  next_.clear();
  for (const auto& s : starts) {
    assigned_.emplace_back(s.topic, s.partition);
    at_end_[{s.topic, s.partition}] = false;
    next_[{s.topic, s.partition}] = s.offset >= 0 ? s.offset : -1;
  }
  if (fetch_waker_) fetch_waker_->SetPartitions(assigned_);
}

namespace {

// Each start's partition at its offset (the log's start / end as librdkafka's logical offsets).
PartitionList StartList(const std::vector<PartitionStart>& starts) {
  PartitionList list = NewPartitionList(starts.size());
  for (const auto& s : starts) {
    rd_kafka_topic_partition_list_add(list.get(), s.topic.c_str(), s.partition)->offset =
        s.offset == PartitionStart::kBeginning ? RD_KAFKA_OFFSET_BEGINNING
        : s.offset == PartitionStart::kEnd     ? RD_KAFKA_OFFSET_END
                                               : s.offset;
  }
  return list;
}

std::vector<TopicPartition> ListPartitions(const rd_kafka_topic_partition_list_t* list) {
  std::vector<TopicPartition> out;
  for (int i = 0; i < list->cnt; ++i) {
    out.emplace_back(list->elems[i].topic, list->elems[i].partition);
  }
  return out;
}

}  // namespace

absl::Status KafkaConsumer::Subscribe(const std::vector<std::string>& topics,
                                      RebalanceListener* listener) {
  listener_ = listener;
  PartitionList list = NewPartitionList(topics.size());
  for (const auto& t : topics) {
    rd_kafka_topic_partition_list_add(list.get(), t.c_str(), RD_KAFKA_PARTITION_UA);
  }
  rd_kafka_resp_err_t err = rd_kafka_subscribe(rk_, list.get());
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    listener_ = nullptr;
    return absl::InternalError(absl::StrCat("kafka subscribe: ", rd_kafka_err2str(err)));
  }
  return absl::OkStatus();
}

void KafkaConsumer::Rebalance(int err, void* opaque_list) {
  ++rebalance_epoch_;
  auto* partitions = static_cast<rd_kafka_topic_partition_list_t*>(opaque_list);
  if (listener_ == nullptr) {
    rd_kafka_assign(rk_, err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS ? partitions : nullptr);
    return;
  }
  if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
    auto starts = listener_->OnAssigned(ListPartitions(partitions));
    if (!starts.ok()) {
      rebalance_error_ = starts.status();
      rd_kafka_assign(rk_, nullptr);
      SetAssigned({});
      assigned_starts_.clear();
      return;
    }
    rd_kafka_resp_err_t aerr = rd_kafka_assign(rk_, StartList(*starts).get());
    if (aerr != RD_KAFKA_RESP_ERR_NO_ERROR) {
      rebalance_error_ =
          absl::InternalError(absl::StrCat("kafka assign: ", rd_kafka_err2str(aerr)));
      SetAssigned({});
      return;
    }
    SetAssigned(*starts);
    assigned_starts_ = *starts;
    ever_assigned_ = true;
  } else {
    listener_->OnRevoked(ListPartitions(partitions));
    rd_kafka_assign(rk_, nullptr);
    SetAssigned({});
    assigned_starts_.clear();
  }
}

bool KafkaConsumer::AssignmentLost() const { return rd_kafka_assignment_lost(rk_) == 1; }

absl::StatusOr<std::map<TopicPartition, int64_t>> KafkaConsumer::Committed(
    const std::vector<TopicPartition>& partitions, std::chrono::milliseconds timeout) {
  std::map<TopicPartition, int64_t> out;
  if (partitions.empty()) return out;
  PartitionList list = NewPartitionList(partitions, RD_KAFKA_OFFSET_INVALID);
  rd_kafka_resp_err_t err = rd_kafka_committed(rk_, list.get(), static_cast<int>(timeout.count()));
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return absl::UnavailableError(
        absl::StrCat("kafka committed offsets of the group: ", rd_kafka_err2str(err)));
  }
  for (int i = 0; i < list->cnt; ++i) {
    const auto& e = list->elems[i];
    if (e.err == RD_KAFKA_RESP_ERR_NO_ERROR && e.offset >= 0)
      out[{e.topic, e.partition}] = e.offset;
  }
  return out;
}

absl::Status KafkaConsumer::LostOffsetStatus(const rd_kafka_message_t* m,
                                             const std::string& where) {
  LostOffset lost;
  lost.topic = m->rkt ? rd_kafka_topic_name(m->rkt) : "";
  lost.partition = m->partition;
  // librdkafka reports the offset whose fetch failed; else the position this consumer was at.
  lost.offset = m->offset;
  if (lost.offset < 0) {
    auto it = next_.find({lost.topic, lost.partition});
    if (it != next_.end()) lost.offset = it->second;
  }
  if (!lost.topic.empty()) {
    // The broker's range now, for the message (a broker that does not answer leaves it unknown).
    int64_t low = -1, high = -1;
    if (rd_kafka_query_watermark_offsets(rk_, lost.topic.c_str(), lost.partition, &low, &high,
                                         2000) == RD_KAFKA_RESP_ERR_NO_ERROR) {
      lost.low = low;
      lost.high = high;
    }
  }
  std::string offset = lost.offset >= 0 ? absl::StrCat(" ", lost.offset) : std::string();
  std::string range = lost.low >= 0 ? absl::StrCat("; the broker holds offsets ", lost.low, " to ",
                                                   lost.high, " (the next one to be written)")
                                    : std::string("; the broker's range is unknown (no answer)");
  return LostOffsetError(
      lost, absl::StrCat(where, ": the stored offset", offset, " is no longer on the broker (",
                         rd_kafka_message_errstr(m), ")", range, "; refusing to jump"));
}

absl::StatusOr<std::pair<int64_t, int64_t>> KafkaConsumer::QueryWatermarks(
    const std::string& topic, int32_t partition, std::chrono::milliseconds timeout) {
  int64_t low = -1, high = -1;
  rd_kafka_resp_err_t err = rd_kafka_query_watermark_offsets(
      rk_, topic.c_str(), partition, &low, &high, static_cast<int>(timeout.count()));
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return absl::UnavailableError(
        absl::StrCat("kafka watermarks of ", topic, " [", partition, "]: ", rd_kafka_err2str(err)));
  }
  return std::make_pair(low, high);
}

absl::StatusOr<std::map<int32_t, int64_t>> KafkaConsumer::OffsetsForTime(
    const std::string& topic, const std::vector<int32_t>& partitions, int64_t ms,
    std::chrono::milliseconds timeout) {
  std::map<int32_t, int64_t> out;
  if (partitions.empty()) return out;
  PartitionList list = NewPartitionList(partitions.size());
  for (int32_t p : partitions)
    rd_kafka_topic_partition_list_add(list.get(), topic.c_str(), p)->offset = ms;
  rd_kafka_resp_err_t err =
      rd_kafka_offsets_for_times(rk_, list.get(), static_cast<int>(timeout.count()));
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return absl::UnavailableError(
        absl::StrCat("kafka offsets for time ", ms, " of ", topic, ": ", rd_kafka_err2str(err)));
  }
  absl::Status status;
  for (int i = 0; i < list->cnt; ++i) {
    const auto& e = list->elems[i];
    if (e.err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      status =
          absl::UnavailableError(absl::StrCat("kafka offsets for time ", ms, " of ", topic, " [",
                                              e.partition, "]: ", rd_kafka_err2str(e.err)));
      break;
    }
    out[e.partition] = e.offset >= 0 ? e.offset : -1;
  }
  if (!status.ok()) return status;
  return out;
}

absl::Status KafkaConsumer::CommitSync(const std::map<TopicPartition, int64_t>& next_offsets,
                                       std::chrono::milliseconds timeout) {
  if (next_offsets.empty()) return absl::OkStatus();
  // rd_kafka_commit(..., async=0) waits for the coordinator without a bound: commit through a
  // queue of our own and wait for its answer at most `timeout`.
  rd_kafka_queue_t* q = rd_kafka_queue_new(rk_);
  rd_kafka_resp_err_t err =
      rd_kafka_commit_queue(rk_, NewPartitionList(next_offsets).get(), q, nullptr, nullptr);
  if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
    rd_kafka_event_t* ev = rd_kafka_queue_poll(q, static_cast<int>(timeout.count()));
    if (ev == nullptr) {
      err = RD_KAFKA_RESP_ERR__TIMED_OUT;
    } else {
      err = rd_kafka_event_error(ev);
      rd_kafka_event_destroy(ev);
    }
  }
  rd_kafka_queue_destroy(q);  // a late answer is dropped
  if (err == RD_KAFKA_RESP_ERR__TIMED_OUT) {
    return absl::DeadlineExceededError(absl::StrCat(
        "kafka commit: no answer from the group coordinator within ", timeout.count(), " ms"));
  }
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR && err != RD_KAFKA_RESP_ERR__NO_OFFSET) {
    return absl::UnavailableError(absl::StrCat("kafka commit: ", rd_kafka_err2str(err)));
  }
  return absl::OkStatus();
}

absl::Status KafkaConsumer::Assign(const std::vector<PartitionStart>& starts) {
  PartitionList list = StartList(starts);
  SetAssigned(starts);
  rd_kafka_resp_err_t err = rd_kafka_assign(rk_, list.get());
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return absl::InternalError(absl::StrCat("kafka assign: ", rd_kafka_err2str(err)));
  }
  return absl::OkStatus();
}

absl::Status KafkaConsumer::Poll(size_t max_records, std::chrono::milliseconds max_wait,
                                 ConsumedBatch* out) {
  if (max_records == 0) return absl::OkStatus();
  KafkaMessages* held = out->BuffersOf<KafkaMessages>();
  if (held == nullptr) {
    return absl::FailedPreconditionError(
        "kafka poll: the batch holds another source's records (Clear() it first)");
  }
  std::vector<InputRecord>& records = out->mutable_records();
  std::vector<rd_kafka_message_t*> buf(std::min<size_t>(max_records, 10000));
  // Per partition seen in this poll: its last record's offset + 1 or its end offset, and whether
  // the end-of-partition event came last. Folded into next_/at_end_ once per partition at the end,
  // not per record (those maps are keyed by topic name).
  struct Seen {
    rd_kafka_topic_t* rkt;
    int32_t partition;
    int64_t next;
    bool at_end;
  };
  std::vector<Seen> seen;
  auto note = [&seen](rd_kafka_topic_t* rkt, int32_t partition, int64_t next, bool at_end) {
    for (Seen& s : seen) {
      if (s.rkt == rkt && s.partition == partition) {
        if (next >= 0) s.next = next;
        s.at_end = at_end;
        return;
      }
    }
    seen.push_back(Seen{rkt, partition, next, at_end});
  };
  auto deadline = std::chrono::steady_clock::now() + max_wait;
  size_t got = 0;
  absl::Status error;
  const size_t base = records.size();
  const size_t base_messages = held->messages.size();
  uint64_t epoch = rebalance_epoch_;
  // A rebalance ran inside the last consume call: what this poll collected may belong to the old
  // assignment (and may precede or pass where the new one starts), and what that call returned
  // after the callback belongs to the new one — the two cannot be told apart. Drop all of it and
  // seek the new assignment back to the starts its listener chose, so that nothing of it is
  // skipped: every dropped record is read again by whoever owns its partition now.
  // A message dropped because of a rebalance may be a lost-offset error of a partition the new
  // assignment keeps at the same offset: librdkafka raises it once and stops fetching the
  // partition, so dropping it would stall the partition silently. It is this poll's error instead.
  auto keep_lost_offset = [&](const rd_kafka_message_t* m) {
    if (!error.ok() || m->rkt == nullptr || !IsLostOffsetEvent(m)) return;
    const char* topic = rd_kafka_topic_name(m->rkt);
    for (const PartitionStart& s : assigned_starts_) {
      if (s.topic != topic || s.partition != m->partition) continue;
      // The new assignment starts elsewhere: the seek back fetches from there (and librdkafka
      // raises the error again if that offset is gone too).
      if (m->offset >= 0 && s.offset >= 0 && s.offset != m->offset) return;
      error = LostOffsetStatus(m, absl::StrCat(topic, "/", m->partition));
      return;
    }
  };
  auto drop_if_rebalanced = [&] {
    if (epoch == rebalance_epoch_) return;
    epoch = rebalance_epoch_;
    held->Truncate(base_messages);
    records.resize(base);
    seen.clear();
    got = 0;
    if (!assigned_starts_.empty()) {
      rd_kafka_error_t* err =
          rd_kafka_seek_partitions(rk_, StartList(assigned_starts_).get(), 10000);
      if (err != nullptr) {
        error = absl::UnavailableError(
            absl::StrCat("kafka seek after a rebalance: ", rd_kafka_error_string(err)));
        rd_kafka_error_destroy(err);
      }
      SetAssigned(assigned_starts_);
    }
  };
  NoteQueueBeforePoll();
  while (got < max_records && error.ok()) {
    ssize_t n;
    if (got == 0) {
      // Wait for the first record only: rd_kafka_consume_batch_queue would wait out the whole
      // timeout for a full batch, adding a batch window of latency under light traffic. Once
      // records flow, take what is buffered without waiting; an empty read closes the batch.
      auto now = std::chrono::steady_clock::now();
      if (now >= deadline) break;
      int wait_ms =
          static_cast<int>(std::chrono::ceil<std::chrono::milliseconds>(deadline - now).count());
      rd_kafka_message_t* first = rd_kafka_consume_queue(queue_, wait_ms);
      if (first != nullptr && epoch != rebalance_epoch_) {
        drop_if_rebalanced();
        keep_lost_offset(first);
        rd_kafka_message_destroy(first);
        first = nullptr;
        if (!error.ok()) break;
      }
      if (first == nullptr) {
        if (std::chrono::steady_clock::now() >= deadline) break;
        continue;
      }
      buf[0] = first;
      n = 1;
    } else {
      size_t want = std::min(buf.size(), max_records - got);
      n = rd_kafka_consume_batch_queue(queue_, 0, buf.data(), want);
      if (n < 0) {
        error = absl::InternalError(
            absl::StrCat("kafka consume: ", rd_kafka_err2str(rd_kafka_last_error())));
        break;
      }
      if (epoch != rebalance_epoch_) {
        drop_if_rebalanced();
        for (ssize_t i = 0; i < n; ++i) {
          keep_lost_offset(buf[i]);
          rd_kafka_message_destroy(buf[i]);
        }
        continue;
      }
      if (n == 0) break;
    }
    for (ssize_t i = 0; i < n; ++i) {
      rd_kafka_message_t* m = buf[i];
      if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
        if (m->rkt) note(m->rkt, m->partition, m->offset >= 0 ? m->offset : -1, true);
        rd_kafka_message_destroy(m);
        continue;
      }
      if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        std::string where =
            m->rkt ? absl::StrCat(rd_kafka_topic_name(m->rkt), "/", m->partition) : "consumer";
        if (IsLostOffsetEvent(m)) error = LostOffsetStatus(m, where);
        // Other errors (broker down, transport) are transient: librdkafka retries.
        rd_kafka_message_destroy(m);
        continue;
      }
      InputRecord rec;
      rec.topic = rd_kafka_topic_name(m->rkt);
      rec.partition = m->partition;
      rec.offset = m->offset;
      rec.key = std::string_view(static_cast<const char*>(m->key), m->key ? m->key_len : 0);
      rec.value = std::string_view(static_cast<const char*>(m->payload), m->payload ? m->len : 0);
      rd_kafka_timestamp_type_t tstype;
      rec.timestamp_ms = rd_kafka_message_timestamp(m, &tstype);
      note(m->rkt, m->partition, rec.offset + 1, false);
      held->messages.push_back(m);
      records.push_back(rec);
      ++got;
    }
  }
  MaybeWakeFetcher(records, base);
  for (const Seen& s : seen) {
    TopicPartition tp{rd_kafka_topic_name(s.rkt), s.partition};
    // Only partitions still assigned: a rebalance inside this poll may have taken some away.
    if (auto it = at_end_.find(tp); it != at_end_.end()) {
      it->second = s.at_end;
      if (s.next >= 0) next_[tp] = s.next;
    }
  }
  if (!rebalance_error_.ok()) {
    absl::Status st = std::move(rebalance_error_);
    rebalance_error_ = absl::OkStatus();
    return st;
  }
  return error;
}

void KafkaConsumer::NoteQueueBeforePoll() {
  if (!fetch_waker_) return;
  // Only polls drain the queue: one that holds (about) the bound now may have made the fetcher
  // stop since the last poll.
  if (FetcherMayHaveStopped(static_cast<int64_t>(rd_kafka_queue_length(queue_)), mean_record_bytes_,
                            prefetch_bound_bytes_)) {
    fetcher_may_have_stopped_ = true;
  }
}

void KafkaConsumer::MaybeWakeFetcher(const std::vector<InputRecord>& records, size_t from) {
  if (!fetch_waker_) return;
  const bool took = records.size() > from;
  if (took) {
    double bytes = 0;
    for (size_t i = from; i < records.size(); ++i) {
      bytes += static_cast<double>(records[i].key.size() + records[i].value.size());
    }
    mean_record_bytes_ = bytes / static_cast<double>(records.size() - from);
  }
  // Once per fill: the queue reached the bound before a poll and is under half of it now. A
  // consumer that keeps up (its queue never near the bound) or is idle sends nothing.
  if (fetcher_may_have_stopped_ &&
      ShouldWakeFetcher(static_cast<int64_t>(rd_kafka_queue_length(queue_)), mean_record_bytes_,
                        prefetch_bound_bytes_)) {
    fetch_waker_->Wake();
    fetcher_may_have_stopped_ = false;
  }
}

uint64_t KafkaConsumer::fetch_wakes() const {
  return fetch_waker_ ? fetch_waker_->wakes_sent() : 0;
}

absl::Status KafkaConsumer::Seek(const std::map<TopicPartition, int64_t>& next_offsets,
                                 std::chrono::milliseconds timeout) {
  if (next_offsets.empty()) return absl::OkStatus();
  PartitionList list = NewPartitionList(next_offsets);
  rd_kafka_error_t* err =
      rd_kafka_seek_partitions(rk_, list.get(), static_cast<int>(timeout.count()));
  absl::Status st;
  if (err != nullptr) {
    st = absl::UnavailableError(absl::StrCat("kafka seek: ", rd_kafka_error_string(err)));
    rd_kafka_error_destroy(err);
  } else {
    for (int i = 0; i < list->cnt; ++i) {
      if (list->elems[i].err != RD_KAFKA_RESP_ERR_NO_ERROR && st.ok()) {
        st = absl::UnavailableError(absl::StrCat("kafka seek ", list->elems[i].topic, "/",
                                                 list->elems[i].partition, ": ",
                                                 rd_kafka_err2str(list->elems[i].err)));
      }
    }
  }
  if (st.ok()) {
    for (const auto& [tp, offset] : next_offsets) {
      if (auto it = next_.find(tp); it != next_.end()) it->second = offset;
      if (auto it = at_end_.find(tp); it != at_end_.end()) it->second = false;
    }
  }
  return st;
}

bool KafkaConsumer::AtEnd() const {
  if (listener_ != nullptr && !ever_assigned_) return false;
  for (const auto& [tp, end] : at_end_) {
    if (!end) return false;
  }
  return true;
}

bool KafkaConsumer::PartitionAtEnd(const TopicPartition& tp) const {
  auto it = at_end_.find(tp);
  return it != at_end_.end() && it->second;
}

bool KafkaConsumer::VerifiedAtEnd(std::chrono::milliseconds timeout) {
  if (!AtEnd()) return false;
  if (next_.empty()) return true;
  // The end offsets of every assigned partition in one bounded request per leader:
  // rd_kafka_offsets_for_times() with the "latest" timestamp honours its timeout, where
  // rd_kafka_query_watermark_offsets() (librdkafka 2.0.2) waits without a bound for a broker that
  // is down. A partition whose next offset is unknown is compared with its start too.
  auto ask = [&](int64_t which, const std::vector<TopicPartition>& partitions,
                 std::map<TopicPartition, int64_t>* out) {
    PartitionList list = NewPartitionList(partitions, which);
    rd_kafka_resp_err_t err =
        rd_kafka_offsets_for_times(rk_, list.get(), static_cast<int>(timeout.count()));
    bool ok = err == RD_KAFKA_RESP_ERR_NO_ERROR;
    for (int i = 0; ok && i < list->cnt; ++i) {
      const auto& e = list->elems[i];
      if (e.err != RD_KAFKA_RESP_ERR_NO_ERROR || e.offset < 0) ok = false;
      (*out)[{e.topic, e.partition}] = e.offset;
    }
    return ok;
  };
  std::vector<TopicPartition> all, unknown;
  for (const auto& [tp, next] : next_) {
    all.push_back(tp);
    if (next < 0) unknown.push_back(tp);
  }
  std::map<TopicPartition, int64_t> high, low;
  if (!ask(RD_KAFKA_OFFSET_END, all, &high)) return false;
  if (!unknown.empty() && !ask(RD_KAFKA_OFFSET_BEGINNING, unknown, &low)) return false;
  for (const auto& [tp, next] : next_) {
    const int64_t from = next >= 0 ? next : low[tp];
    // Records produced after the end-of-partition event, not fetched yet: not at end. They will
    // be fetched, which clears at_end_ until the next end-of-partition event.
    if (high[tp] > from) return false;
  }
  return true;
}

std::map<TopicPartition, int64_t> KafkaConsumer::HighWatermarks() const {
  std::map<TopicPartition, int64_t> out;
  for (const auto& [topic, partition] : assigned_) {
    int64_t low = 0, high = 0;
    if (rd_kafka_get_watermark_offsets(rk_, topic.c_str(), partition, &low, &high) ==
            RD_KAFKA_RESP_ERR_NO_ERROR &&
        high >= 0) {
      out[{topic, partition}] = high;
    }
  }
  return out;
}

void KafkaConsumer::CommitAsync(const std::map<TopicPartition, int64_t>& next_offsets) {
  if (next_offsets.empty()) return;
  rd_kafka_commit(rk_, NewPartitionList(next_offsets).get(), 1);
}

}  // namespace rtdw
