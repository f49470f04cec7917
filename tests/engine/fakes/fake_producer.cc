#include "tests/engine/fakes/fake_producer.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "core/records.h"

namespace rtdw::testing {

FakeProducer::FakeProducer(std::string log_path, uint64_t seed)
    : log_path_(std::move(log_path)), rng_(seed) {
  if (!log_path_.empty()) {
    log_fd_ = open(log_path_.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  }
}

FakeProducer::~FakeProducer() {
  if (log_fd_ >= 0) close(log_fd_);
}

absl::StatusOr<ProducerTopic> FakeProducer::Topic(std::string_view topic) {
  for (size_t i = 0; i < topics_.size(); ++i) {
    if (topics_[i] == topic) return ProducerTopic{reinterpret_cast<void*>(i + 1)};
  }
  topics_.emplace_back(topic);
  return ProducerTopic{reinterpret_cast<void*>(topics_.size())};
}

absl::Status FakeProducer::Produce(ProducerTopic topic, std::string_view key,
                                   std::string_view value, const std::vector<RecordHeader>& headers,
                                   int32_t partition, DeliveryGroup* group) {
  (void)partition;
  const int64_t call = ++calls_;
  if (on_produce) on_produce(call);
  if (call == kill_at_produce) raise(SIGKILL);
  if (call % serve_every == 0) Serve();
  if (fail_produce_calls.count(call) > 0) {
    return absl::UnavailableError(absl::StrCat("fake produce refused (call ", call, ")"));
  }
  const size_t t = reinterpret_cast<size_t>(topic.handle);
  if (t == 0 || t > topics_.size()) return absl::InvalidArgumentError("fake: unknown topic");
  FakeRecord r;
  r.topic = topics_[t - 1];
  r.key = std::string(key);
  r.value = std::string(value);
  for (const RecordHeader& h : headers) {
    if (h.name == kHeaderSrc) r.src = std::string(h.value);
    if (h.name == kHeaderIdx) r.idx = std::string(h.value);
    if (h.name == kHeaderReason) r.reason = std::string(h.value);
  }
  r.seq = ++seq_;
  if (group != nullptr) group->Added();
  all_.Added();
  produced_.push_back(r);
  queue_.push_back({std::move(r), group});
  return absl::OkStatus();
}

void FakeProducer::Serve() {
  if (hold_reports) return;
  for (int i = 0; i < reports_per_serve && !queue_.empty(); ++i) {
    const size_t at = rng_() % queue_.size();
    Queued q = std::move(queue_[at]);
    queue_.erase(queue_.begin() + static_cast<std::ptrdiff_t>(at));
    if (++reports_ == kill_at_report) raise(SIGKILL);
    const bool ok = fail_deliveries.count(q.record.seq) == 0;
    if (ok) {
      if (log_fd_ >= 0) {
        const FakeRecord& r = q.record;
        // One write per record: a killed worker loses no acknowledged record.
        const std::string line = absl::StrCat(r.topic, "\t", r.key, "\t", r.src, "\t", r.idx, "\t",
                                              r.reason, "\t", r.seq, "\t", r.value, "\n");
        if (write(log_fd_, line.data(), line.size()) != static_cast<ssize_t>(line.size())) {
          abort();
        }
      }
      auto pos = std::upper_bound(acknowledged_.begin(), acknowledged_.end(), q.record.seq,
                                  [](int64_t seq, const FakeRecord& r) { return seq < r.seq; });
      acknowledged_.insert(pos, q.record);
    }
    const std::string error = ok ? "" : absl::StrCat("record ", q.record.seq, " not acknowledged");
    if (q.group != nullptr) q.group->Report(ok, error);
    all_.Report(ok, error);
  }
}

bool FakeProducer::ServeUntilReported(const DeliveryGroup& group, std::chrono::milliseconds timeout,
                                      const std::atomic<bool>* interrupt) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (group.pending() > 0) {
    if (interrupt != nullptr && interrupt->load()) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    if (hold_reports) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    } else {
      Serve();
    }
  }
  return false;
}

absl::Status FakeProducer::AwaitImpl(DeliveryGroup* group, std::chrono::milliseconds timeout,
                                     const std::atomic<bool>* interrupt) {
  const bool interrupted = ServeUntilReported(*group, timeout, interrupt);
  return group->Outcome("fake", interrupted, timeout);
}

absl::Status FakeProducer::FlushImpl(std::chrono::milliseconds timeout,
                                     const std::atomic<bool>* interrupt) {
  const bool interrupted = ServeUntilReported(all_, timeout, interrupt);
  absl::Status outcome = all_.Outcome("fake", interrupted, timeout);
  all_.ResetError();  // the next Flush reports failures from here on
  return outcome;
}

std::vector<FakeRecord> FakeProducer::ReadLog(const std::string& path) {
  std::vector<FakeRecord> out;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    std::vector<std::string> f = absl::StrSplit(line, absl::MaxSplits('\t', 6));
    if (f.size() != 7) continue;
    FakeRecord r;
    r.topic = f[0];
    r.key = f[1];
    r.src = f[2];
    r.idx = f[3];
    r.reason = f[4];
    r.seq = std::stoll(f[5]);
    r.value = f[6];
    out.push_back(std::move(r));
  }
  return out;
}

}  // namespace rtdw::testing
