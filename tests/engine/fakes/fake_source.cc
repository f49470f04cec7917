#include "tests/engine/fakes/fake_source.h"

#include <algorithm>
#include <set>

#include "absl/strings/str_cat.h"
#include "core/status_util.h"

namespace rtdw {

// ---------------------------------------------------------------------------------------------
// FakeLog

void FakeLog::CreateTopic(const std::string& topic, int partitions) {
  GrowTopic(topic, partitions);
}

void FakeLog::GrowTopic(const std::string& topic, int partitions) {
  absl::MutexLock lock(&mu_);
  std::vector<Partition>& parts = topics_[topic];
  if (static_cast<int>(parts.size()) < partitions) parts.resize(partitions);
  ++version_;
}

int64_t FakeLog::Append(const std::string& topic, int32_t partition, std::string value,
                        std::string key, int64_t timestamp_ms) {
  absl::MutexLock lock(&mu_);
  Partition& p = topics_.at(topic).at(partition);
  p.records.push_back(Record{std::move(key), std::move(value), timestamp_ms});
  ++version_;
  return p.low + static_cast<int64_t>(p.records.size()) - 1;
}

void FakeLog::Truncate(const std::string& topic, int32_t partition, int64_t offset) {
  absl::MutexLock lock(&mu_);
  Partition& p = topics_.at(topic).at(partition);
  while (p.low < offset && !p.records.empty()) {
    p.records.pop_front();
    ++p.low;
  }
  p.low = std::max(p.low, offset);
}

std::optional<int> FakeLog::PartitionCount(const std::string& topic) const {
  absl::MutexLock lock(&mu_);
  auto it = topics_.find(topic);
  if (it == topics_.end()) return std::nullopt;
  return static_cast<int>(it->second.size());
}

std::pair<int64_t, int64_t> FakeLog::Watermarks(const TopicPartition& tp) const {
  absl::MutexLock lock(&mu_);
  auto it = topics_.find(tp.first);
  if (it == topics_.end() || tp.second < 0 ||
      tp.second >= static_cast<int32_t>(it->second.size())) {
    return {0, 0};
  }
  const Partition& p = it->second[tp.second];
  return {p.low, p.low + static_cast<int64_t>(p.records.size())};
}

void FakeLog::Read(const TopicPartition& tp, int64_t from, size_t max,
                   const std::function<void(int64_t, const Record&)>& each) const {
  absl::MutexLock lock(&mu_);
  auto it = topics_.find(tp.first);
  if (it == topics_.end() || tp.second < 0 ||
      tp.second >= static_cast<int32_t>(it->second.size())) {
    return;
  }
  const Partition& p = it->second[tp.second];
  const int64_t end = p.low + static_cast<int64_t>(p.records.size());
  for (int64_t o = std::max(from, p.low); o < end && max > 0; ++o, --max) {
    each(o, p.records[static_cast<size_t>(o - p.low)]);
  }
}

std::map<TopicPartition, int64_t> FakeLog::GroupOffsets(const std::string& group) const {
  absl::MutexLock lock(&mu_);
  auto it = groups_.find(group);
  return it == groups_.end() ? std::map<TopicPartition, int64_t>{} : it->second;
}

void FakeLog::SetGroupOffsets(const std::string& group,
                              const std::map<TopicPartition, int64_t>& next) {
  absl::MutexLock lock(&mu_);
  for (const auto& [tp, offset] : next) groups_[group][tp] = offset;
}

uint64_t FakeLog::version() const {
  absl::MutexLock lock(&mu_);
  return version_;
}

bool FakeLog::AwaitChange(uint64_t seen, absl::Time deadline) const {
  absl::MutexLock lock(&mu_);
  auto moved = [this, seen]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return version_ != seen; };
  return mu_.AwaitWithDeadline(absl::Condition(&moved), deadline);
}

// ---------------------------------------------------------------------------------------------
// FakeSource

namespace {

// What a ConsumedBatch's records point into: copies of the log's records.
struct FakeRecords : ConsumedBatch::Buffers {
  void Release() override { strings.clear(); }
  const std::string& Keep(std::string s) { return strings.emplace_back(std::move(s)); }
  std::deque<std::string> strings;  // a deque: appending never moves the earlier ones
};

std::string Name(const TopicPartition& tp) { return absl::StrCat(tp.first, "/", tp.second); }

}  // namespace

FakeSource::FakeSource(FakeLog* log, FakeSourceOptions options)
    : log_(log), options_(std::move(options)) {}

FakeSource::~FakeSource() = default;

absl::Status FakeSource::Enter(Op op) {
  absl::MutexLock lock(&mu_);
  const int i = static_cast<int>(op);
  ++calls_[i];
  Failure& f = failures_[i];
  if (f.times == 0) return absl::OkStatus();
  if (f.times > 0) --f.times;
  return f.status;
}

void FakeSource::FailNext(Op op, absl::Status status, int times) {
  absl::MutexLock lock(&mu_);
  failures_[static_cast<int>(op)] = Failure{std::move(status), times};
}

void FakeSource::ClearFailures(Op op) {
  absl::MutexLock lock(&mu_);
  failures_[static_cast<int>(op)] = Failure{};
}

int FakeSource::calls(Op op) const {
  absl::MutexLock lock(&mu_);
  return calls_[static_cast<int>(op)];
}

void FakeSource::ScheduleRevoke() {
  absl::MutexLock lock(&mu_);
  moves_.push_back(Move{true, {}});
}

void FakeSource::ScheduleAssign(std::vector<TopicPartition> partitions) {
  absl::MutexLock lock(&mu_);
  moves_.push_back(Move{false, std::move(partitions)});
}

void FakeSource::LoseAssignment() {
  absl::MutexLock lock(&mu_);
  lost_ = true;
  moves_.push_back(Move{true, {}});
}

bool FakeSource::AssignmentLost() const {
  absl::MutexLock lock(&mu_);
  return lost_;
}

absl::StatusOr<int> FakeSource::PartitionCount(const std::string& topic,
                                               std::chrono::milliseconds) {
  if (absl::Status st = Enter(Op::kPartitionCount); !st.ok()) return st;
  std::optional<int> n = log_->PartitionCount(topic);
  if (!n) return absl::NotFoundError(absl::StrCat("topic ", topic, " does not exist (yet)"));
  return *n;
}

void FakeSource::SetAssignment(const std::vector<PartitionStart>& starts) {
  assigned_.clear();
  position_.clear();
  at_end_.clear();
  high_seen_.clear();
  for (const PartitionStart& s : starts) {
    const TopicPartition tp{s.topic, s.partition};
    const auto [low, high] = log_->Watermarks(tp);
    assigned_.push_back(tp);
    position_[tp] = s.offset == PartitionStart::kBeginning ? low
                    : s.offset == PartitionStart::kEnd     ? high
                                                           : s.offset;
    at_end_[tp] = false;
  }
}

absl::Status FakeSource::Assign(const std::vector<PartitionStart>& starts) {
  if (absl::Status st = Enter(Op::kAssign); !st.ok()) return st;
  SetAssignment(starts);
  return absl::OkStatus();
}

absl::Status FakeSource::Subscribe(const std::vector<std::string>& topics,
                                   RebalanceListener* listener) {
  if (absl::Status st = Enter(Op::kSubscribe); !st.ok()) return st;
  listener_ = listener;
  topics_ = topics;
  return absl::OkStatus();
}

std::vector<TopicPartition> FakeSource::SubscribedPartitions() const {
  std::vector<TopicPartition> all;
  for (const std::string& topic : topics_) {
    const int n = log_->PartitionCount(topic).value_or(0);
    for (int32_t p = 0; p < n; ++p) all.emplace_back(topic, p);
  }
  return all;
}

void FakeSource::Revoke() {
  if (!assigned_.empty()) {
    const std::vector<TopicPartition> taken = assigned_;
    ++revoked_callbacks_;
    listener_->OnRevoked(taken);
  }
  SetAssignment({});
}

absl::Status FakeSource::Rebalance() {
  absl::Status first_error;
  while (true) {
    std::optional<Move> move;
    {
      absl::MutexLock lock(&mu_);
      if (!moves_.empty()) {
        move = std::move(moves_.front());
        moves_.pop_front();
      }
    }
    if (!move && options_.single_member_group) {
      // A group of this member alone: it owns every partition of its topics.
      std::vector<TopicPartition> all = SubscribedPartitions();
      std::vector<TopicPartition> mine = assigned_;
      std::sort(mine.begin(), mine.end());
      std::vector<TopicPartition> sorted = all;
      std::sort(sorted.begin(), sorted.end());
      if (mine != sorted) {
        if (!assigned_.empty())
          move = Move{true, {}};  // the assign follows on the next turn
        else
          move = Move{false, std::move(all)};
      }
    }
    if (!move) return first_error;
    if (move->revoke) {
      Revoke();
      continue;
    }
    // A new assignment replaces whatever is left of the old one (eager: revoked first).
    if (!assigned_.empty()) Revoke();
    {
      absl::MutexLock lock(&mu_);
      lost_ = false;  // a member of the new generation
    }
    ++assigned_callbacks_;
    absl::StatusOr<std::vector<PartitionStart>> starts = listener_->OnAssigned(move->partitions);
    if (!starts.ok()) {
      SetAssignment({});
      if (first_error.ok()) first_error = starts.status();
      // A one-member group would assign again at once: the error ends this poll instead.
      return first_error;
    }
    SetAssignment(*starts);
    ever_assigned_ = true;
  }
}

absl::Status FakeSource::Poll(size_t max_records, std::chrono::milliseconds max_wait,
                              ConsumedBatch* out) {
  if (absl::Status st = Enter(Op::kPoll); !st.ok()) return st;
  if (closed_) return absl::FailedPreconditionError("poll after Close()");
  if (listener_ != nullptr) RTDW_RETURN_IF_ERROR(Rebalance());
  if (max_records == 0) return absl::OkStatus();
  FakeRecords* held = out->BuffersOf<FakeRecords>();
  if (held == nullptr) {
    return absl::FailedPreconditionError("the batch holds another source's records");
  }
  // A start outside the retained range is never jumped over.
  for (const TopicPartition& tp : assigned_) {
    const int64_t pos = position_[tp];
    const auto [low, high] = log_->Watermarks(tp);
    if (pos < low || pos > high) {
      LostOffset lost{tp.first, tp.second, pos, low, high};
      return LostOffsetError(lost, absl::StrCat(Name(tp), ": the stored offset ", pos,
                                                " is no longer in the log (it holds ", low, " to ",
                                                high, "); refusing to jump"));
    }
  }
  std::vector<InputRecord>& records = out->mutable_records();
  const absl::Time deadline = absl::Now() + absl::FromChrono(max_wait);
  size_t got = 0;
  while (true) {
    const uint64_t seen = log_->version();
    const size_t n = assigned_.size();
    bool more = n > 0;
    // Turns over the partitions, starting one further on each poll, until the batch is full or
    // every partition is read to its end.
    for (size_t round = 0; more && got < max_records; ++round) {
      more = false;
      for (size_t k = 0; k < n && got < max_records; ++k) {
        const TopicPartition& tp = assigned_[(turn_ + k) % n];
        const size_t want = options_.records_per_turn == 0
                                ? max_records - got
                                : std::min(options_.records_per_turn, max_records - got);
        size_t taken = 0;
        log_->Read(tp, position_[tp], want, [&](int64_t offset, const FakeLog::Record& r) {
          InputRecord rec;
          rec.topic = held->Keep(tp.first);
          rec.partition = tp.second;
          rec.offset = offset;
          rec.key = held->Keep(r.key);
          rec.value = held->Keep(r.value);
          rec.timestamp_ms = r.timestamp_ms;
          records.push_back(rec);
          position_[tp] = offset + 1;
          ++taken;
        });
        got += taken;
        if (taken == want && want > 0) more = true;  // the partition may hold more
      }
    }
    if (got > 0 || !options_.wait_for_records || absl::Now() >= deadline) break;
    if (!log_->AwaitChange(seen, deadline)) break;
  }
  ++turn_;
  for (const TopicPartition& tp : assigned_) {
    const int64_t high = log_->Watermarks(tp).second;
    high_seen_[tp] = high;
    at_end_[tp] = position_[tp] >= high;
  }
  return absl::OkStatus();
}

absl::Status FakeSource::Seek(const std::map<TopicPartition, int64_t>& next_offsets,
                              std::chrono::milliseconds) {
  if (absl::Status st = Enter(Op::kSeek); !st.ok()) return st;
  for (const auto& [tp, offset] : next_offsets) {
    if (!position_.contains(tp)) {
      return absl::FailedPreconditionError(absl::StrCat("seek: ", Name(tp), " is not assigned"));
    }
  }
  for (const auto& [tp, offset] : next_offsets) {
    position_[tp] = offset;
    at_end_[tp] = false;
  }
  return absl::OkStatus();
}

bool FakeSource::PartitionAtEnd(const TopicPartition& tp) const {
  auto it = at_end_.find(tp);
  return it != at_end_.end() && it->second;
}

bool FakeSource::VerifiedAtEnd(std::chrono::milliseconds) {
  if (!Enter(Op::kVerifiedAtEnd).ok()) return false;
  if (listener_ != nullptr && !ever_assigned_) return false;
  for (const TopicPartition& tp : assigned_) {
    if (position_.at(tp) < log_->Watermarks(tp).second) return false;
  }
  return true;
}

std::map<TopicPartition, int64_t> FakeSource::HighWatermarks() const { return high_seen_; }

absl::StatusOr<std::map<TopicPartition, int64_t>> FakeSource::Committed(
    const std::vector<TopicPartition>& partitions, std::chrono::milliseconds) {
  if (absl::Status st = Enter(Op::kCommitted); !st.ok()) return st;
  const std::map<TopicPartition, int64_t> group = log_->GroupOffsets(options_.group_id);
  std::map<TopicPartition, int64_t> out;
  for (const TopicPartition& tp : partitions) {
    if (auto it = group.find(tp); it != group.end()) out.insert(*it);
  }
  return out;
}

absl::Status FakeSource::CommitSync(const std::map<TopicPartition, int64_t>& next_offsets,
                                    std::chrono::milliseconds) {
  if (absl::Status st = Enter(Op::kCommitSync); !st.ok()) return st;
  if (AssignmentLost()) {
    return absl::UnavailableError(
        "commit refused: this member is not in the group's current generation");
  }
  log_->SetGroupOffsets(options_.group_id, next_offsets);
  return absl::OkStatus();
}

void FakeSource::CommitAsync(const std::map<TopicPartition, int64_t>& next_offsets) {
  if (!Enter(Op::kCommitAsync).ok() || AssignmentLost()) return;
  log_->SetGroupOffsets(options_.group_id, next_offsets);
}

absl::Status FakeSource::Close(std::chrono::steady_clock::time_point) {
  if (closed_) return absl::OkStatus();
  closed_ = true;
  absl::Status st = Enter(Op::kClose);
  if (listener_ != nullptr) Revoke();
  listener_ = nullptr;
  return st;
}

std::optional<int64_t> FakeSource::Position(const TopicPartition& tp) const {
  auto it = position_.find(tp);
  if (it == position_.end()) return std::nullopt;
  return it->second;
}

}  // namespace rtdw
