#include "connectors/redis/redis_client.h"

#include <hiredis/hiredis.h>

#include <charconv>
#include <cstring>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace rtdw {
namespace {

// Frees a reply when it leaves scope.
struct ReplyDeleter {
  void operator()(redisReply* r) const {
    if (r) freeReplyObject(r);
  }
};
using Reply = std::unique_ptr<redisReply, ReplyDeleter>;

absl::Status ReplyError(const redisReply* r, const char* what) {
  return absl::InternalError(absl::StrCat("redis ", what, ": ", std::string(r->str, r->len)));
}

}  // namespace

RedisClient::RedisClient(RedisClientOptions options) : options_(std::move(options)) {}

RedisClient::~RedisClient() { Disconnect(); }

void RedisClient::Disconnect() {
  if (unanswered_ > 0) {
    if (send_error_.ok()) {
      send_error_ =
          absl::UnavailableError(absl::StrCat("redis: connection dropped with ", unanswered_,
                                              " dimension-write runs unanswered (read again)"));
    }
    unanswered_ = 0;
  }
  if (ctx_ != nullptr) {
    redisFree(ctx_);
    ctx_ = nullptr;
  }
}

absl::Status RedisClient::EnsureConnected() {
  // Another call while apply runs are unanswered: their answers would come first. Drop them
  // (FinishApplies() reports the runs as failed; they are idempotent).
  if (unanswered_ > 0) Disconnect();
  if (ctx_ != nullptr && ctx_->err == 0) return absl::OkStatus();
  Disconnect();
  timeval tv{static_cast<time_t>(options_.timeout.count() / 1000),
             static_cast<suseconds_t>((options_.timeout.count() % 1000) * 1000)};
  ctx_ = redisConnectWithTimeout(options_.host.c_str(), options_.port, tv);
  if (ctx_ == nullptr || ctx_->err) {
    std::string err = ctx_ ? ctx_->errstr : "out of memory";
    Disconnect();
    return absl::UnavailableError(
        absl::StrCat("redis ", options_.host, ":", options_.port, ": ", err));
  }
  redisSetTimeout(ctx_, tv);
  redisEnableKeepAlive(ctx_);
  auto command = [&](const std::vector<std::string>& args) -> absl::Status {
    std::vector<const char*> argv;
    std::vector<size_t> lens;
    for (const auto& a : args) {
      argv.push_back(a.data());
      lens.push_back(a.size());
    }
    Reply r(static_cast<redisReply*>(
        redisCommandArgv(ctx_, static_cast<int>(argv.size()), argv.data(), lens.data())));
    if (!r) return absl::UnavailableError(absl::StrCat("redis: ", ctx_->errstr));
    if (r->type == REDIS_REPLY_ERROR) return ReplyError(r.get(), args[0].c_str());
    return absl::OkStatus();
  };
  absl::Status st;
  if (options_.password) {
    st = options_.username ? command({"AUTH", *options_.username, *options_.password})
                           : command({"AUTH", *options_.password});
  }
  if (st.ok() && options_.db != 0) st = command({"SELECT", std::to_string(options_.db)});
  if (!st.ok()) {
    Disconnect();
    return st;
  }
  return absl::OkStatus();
}

absl::Status RedisClient::Ping() {
  if (auto st = EnsureConnected(); !st.ok()) return st;
  Reply r(static_cast<redisReply*>(redisCommand(ctx_, "PING")));
  if (!r) {
    std::string err = ctx_->errstr;
    Disconnect();
    return absl::UnavailableError(absl::StrCat("redis: ", err));
  }
  // An error answer (NOAUTH: a password is needed; a server still loading) is not a live
  // connection the jobs can use.
  if (r->type == REDIS_REPLY_ERROR) return ReplyError(r.get(), "PING");
  return absl::OkStatus();
}

absl::StatusOr<std::vector<std::optional<std::string>>> RedisClient::MGet(
    const std::vector<std::string>& keys) {
  std::vector<std::optional<std::string>> out;
  out.reserve(keys.size());
  if (keys.empty()) return out;
  if (auto st = EnsureConnected(); !st.ok()) return st;
  constexpr size_t kChunk = 500;
  // Append every chunk's MGET, then read the replies: one round trip for the whole batch.
  size_t chunks = 0;
  for (size_t start = 0; start < keys.size(); start += kChunk) {
    size_t end = std::min(keys.size(), start + kChunk);
    std::vector<const char*> argv = {"MGET"};
    std::vector<size_t> lens = {4};
    for (size_t i = start; i < end; ++i) {
      argv.push_back(keys[i].data());
      lens.push_back(keys[i].size());
    }
    redisAppendCommandArgv(ctx_, static_cast<int>(argv.size()), argv.data(), lens.data());
    ++chunks;
  }
  for (size_t c = 0; c < chunks; ++c) {
    void* raw = nullptr;
    if (redisGetReply(ctx_, &raw) != REDIS_OK) {
      std::string err = ctx_->errstr;
      Disconnect();
      return absl::UnavailableError(absl::StrCat("redis MGET: ", err));
    }
    Reply r(static_cast<redisReply*>(raw));
    if (r->type == REDIS_REPLY_ERROR) return ReplyError(r.get(), "MGET");
    for (size_t i = 0; i < r->elements; ++i) {
      const redisReply* e = r->element[i];
      if (e->type == REDIS_REPLY_STRING) {
        out.emplace_back(std::string(e->str, e->len));
      } else {
        out.emplace_back(std::nullopt);
      }
    }
  }
  return out;
}

absl::StatusOr<std::optional<std::vector<std::string>>> RedisClient::SMembers(
    const std::string& key) {
  auto sets = SMembersOf({key});
  if (!sets.ok()) return sets.status();
  return std::move(sets->front());
}

absl::StatusOr<std::vector<std::optional<std::vector<std::string>>>> RedisClient::SMembersOf(
    const std::vector<std::string>& keys) {
  std::vector<std::optional<std::vector<std::string>>> out;
  if (keys.empty()) return out;
  if (auto st = EnsureConnected(); !st.ok()) return st;
  // SMEMBERS of a missing key is an empty set: EXISTS tells "absent" from "empty". Every command
  // is appended first and the answers read after: one round trip.
  for (const std::string& key : keys) {
    for (const char* command : {"SMEMBERS", "EXISTS"}) {
      const char* argv[] = {command, key.data()};
      size_t lens[] = {strlen(command), key.size()};
      redisAppendCommandArgv(ctx_, 2, argv, lens);
    }
  }
  absl::Status failure;
  for (size_t i = 0; i < 2 * keys.size(); ++i) {
    void* raw = nullptr;
    if (redisGetReply(ctx_, &raw) != REDIS_OK) {
      std::string err = ctx_->errstr;
      Disconnect();
      return absl::UnavailableError(absl::StrCat("redis SMEMBERS: ", err));
    }
    Reply r(static_cast<redisReply*>(raw));
    const bool members = i % 2 == 0;
    if (r->type == REDIS_REPLY_ERROR) {
      // Read on: the connection stays in step for the next call.
      if (failure.ok()) failure = ReplyError(r.get(), members ? "SMEMBERS" : "EXISTS");
      continue;
    }
    if (!failure.ok()) continue;
    if (members) {
      std::vector<std::string> set;
      set.reserve(r->elements);
      for (size_t e = 0; e < r->elements; ++e) {
        set.emplace_back(r->element[e]->str, r->element[e]->len);
      }
      out.emplace_back(std::move(set));
    } else if (r->type == REDIS_REPLY_INTEGER && r->integer == 0) {
      out.back().reset();  // no such key (not an empty set)
    }
  }
  if (!failure.ok()) return failure;
  return out;
}

namespace {

// KEYS[1] = the epoch key; KEYS[2 .. F+1] = fence keys; then per write i: KEYS[F+2i] = the row
// key, KEYS[F+2i+1] = its position key. ARGV[1] = F; ARGV[2 .. F+1] = the fence tokens; then per
// write: op ("S" set / "D" delete), offset (-1: no position; a decimal integer), value.
// Positions are "<epoch>:<offset>"; Lua numbers are doubles, exact to 2^53. Returns the number of
// stale writes, or -1 (nothing applied) when a fence key holds another token.
// The stored positions are read with one MGET per 1000 writes (not one GET each); `seen` holds
// the positions this run wrote, so a later write of the same key compares with those.
constexpr char kApplyScript[] = R"lua(
local nf = tonumber(ARGV[1])
for i = 1, nf do
  if redis.call('GET', KEYS[1 + i]) ~= ARGV[1 + i] then return -1 end
end
local epoch = tonumber(redis.call('GET', KEYS[1]) or '0') or 0
local nw = (#KEYS - 1 - nf) / 2
local stored = {}
for from = 1, nw, 1000 do
  local pkeys = {}
  for i = from, math.min(nw, from + 999) do pkeys[#pkeys + 1] = KEYS[nf + 2 * i + 1] end
  local got = redis.call('MGET', unpack(pkeys))
  for j = 1, #got do stored[from + j - 1] = got[j] end
end
local seen = {}
local stale = 0
for i = 1, nw do
  local key, pkey = KEYS[nf + 2 * i], KEYS[nf + 2 * i + 1]
  local a = nf + 1 + 3 * i
  local op, offtext = ARGV[a - 2], ARGV[a - 1]
  local off = tonumber(offtext)
  local apply = true
  if off >= 0 then
    local cur = seen[pkey] or stored[i]
    if cur then
      local ce, co = string.match(cur, '^(%d+):(%d+)$')
      ce, co = tonumber(ce), tonumber(co)
      if ce and co and (ce > epoch or (ce == epoch and co >= off)) then apply = false end
    end
  end
  if not apply then
    stale = stale + 1
  elseif off < 0 then
    if op == 'S' then redis.call('SET', key, ARGV[a]) else redis.call('DEL', key) end
  else
    local pos = epoch .. ':' .. offtext
    seen[pkey] = pos
    if op == 'S' then
      redis.call('MSET', key, ARGV[a], pkey, pos)
    else
      redis.call('DEL', key)
      redis.call('SET', pkey, pos)
    end
  end
end
return stale
)lua";

constexpr char kFencedPrefix[] = "fenced: ";

}  // namespace

std::string RedisClient::PositionKey(std::string_view dim_key) {
  if (dim_key.substr(0, 4) == "DIM:") dim_key.remove_prefix(4);
  return std::string("DIMPOS:").append(dim_key);
}

std::string RedisClient::FenceKey(std::string_view topic, int32_t partition) {
  return absl::StrCat("DIMFENCE:", std::string(topic), ":", partition);
}

bool RedisClient::IsFencedRejection(const absl::Status& st) {
  return absl::IsFailedPrecondition(st) && absl::StartsWith(st.message(), kFencedPrefix);
}

absl::StatusOr<int64_t> RedisClient::ClaimFence(const std::string& key) {
  if (auto st = EnsureConnected(); !st.ok()) return st;
  const char* argv[] = {"INCR", key.data()};
  size_t lens[] = {4, key.size()};
  Reply r(static_cast<redisReply*>(redisCommandArgv(ctx_, 2, argv, lens)));
  if (!r) {
    std::string err = ctx_->errstr;
    Disconnect();
    return absl::UnavailableError(absl::StrCat("redis INCR: ", err));
  }
  if (r->type == REDIS_REPLY_ERROR) return ReplyError(r.get(), "INCR");
  if (r->type != REDIS_REPLY_INTEGER) return absl::InternalError("redis INCR: unexpected answer");
  return static_cast<int64_t>(r->integer);
}

absl::StatusOr<int64_t> RedisClient::BumpDimEpoch() { return ClaimFence(kDimEpochKey); }

namespace {

// RESP: one bulk string (`$<len>\r\n<a><b>\r\n`), the concatenation of `a` and `b`.
void AppendBulk(std::string* out, std::string_view a, std::string_view b = {}) {
  char len[24];
  auto end = std::to_chars(len, len + sizeof len, a.size() + b.size()).ptr;
  out->push_back('$');
  out->append(len, end);
  out->append("\r\n");
  out->append(a);
  out->append(b);
  out->append("\r\n");
}

void AppendBulkInt(std::string* out, int64_t v) {
  char text[24];
  auto end = std::to_chars(text, text + sizeof text, v).ptr;
  AppendBulk(out, std::string_view(text, static_cast<size_t>(end - text)));
}

}  // namespace

void RedisClient::FormatApply(std::span<const RedisWrite> writes, const std::vector<Fence>& fences,
                              std::string* out) const {
  // See kApplyScript for the layout of KEYS and ARGV.
  const size_t nf = fences.size(), nw = writes.size();
  const size_t nkeys = 1 + nf + 2 * nw;
  size_t bytes = 64 + script_sha_.size();
  for (const Fence& f : fences) bytes += f.key.size() + 48;
  for (const RedisWrite& w : writes) bytes += 2 * w.key.size() + w.value.size() + 96;
  out->clear();
  out->reserve(bytes);
  out->push_back('*');
  char len[24];
  out->append(len, std::to_chars(len, len + sizeof len, 3 + nkeys + 1 + nf + 3 * nw).ptr);
  out->append("\r\n");
  AppendBulk(out, "EVALSHA");
  AppendBulk(out, script_sha_);
  AppendBulkInt(out, static_cast<int64_t>(nkeys));
  AppendBulk(out, kDimEpochKey);
  for (const Fence& f : fences) AppendBulk(out, f.key);
  for (const RedisWrite& w : writes) {
    AppendBulk(out, w.key);
    std::string_view rest = w.key;  // PositionKey(w.key), without a string of its own
    if (rest.substr(0, 4) == "DIM:") rest.remove_prefix(4);
    AppendBulk(out, "DIMPOS:", rest);
  }
  AppendBulkInt(out, static_cast<int64_t>(nf));
  for (const Fence& f : fences) AppendBulkInt(out, f.token);
  for (const RedisWrite& w : writes) {
    const bool set = w.op == RedisWrite::Op::kSet;
    AppendBulk(out, set ? "S" : "D");
    AppendBulkInt(out, w.offset < 0 ? -1 : w.offset);
    AppendBulk(out, set ? std::string_view(w.value) : std::string_view());
  }
}

absl::Status RedisClient::EnsureScript() {
  if (!script_sha_.empty()) return absl::OkStatus();
  const char* argv[] = {"SCRIPT", "LOAD", kApplyScript};
  size_t lens[] = {6, 4, sizeof(kApplyScript) - 1};
  Reply r(static_cast<redisReply*>(redisCommandArgv(ctx_, 3, argv, lens)));
  if (!r) {
    std::string err = ctx_->errstr;
    Disconnect();
    return absl::UnavailableError(absl::StrCat("redis SCRIPT LOAD: ", err));
  }
  if (r->type == REDIS_REPLY_ERROR) return ReplyError(r.get(), "SCRIPT LOAD");
  if (r->type != REDIS_REPLY_STRING) {
    return absl::InternalError("redis SCRIPT LOAD: unexpected answer");
  }
  script_sha_.assign(r->str, r->len);
  return absl::OkStatus();
}

absl::Status RedisClient::SendApply(std::span<const RedisWrite> writes,
                                    const std::vector<Fence>& fences) {
  if (!send_error_.ok()) return send_error_;  // the batch fails anyway: send nothing more
  if (writes.empty() && fences.empty()) return absl::OkStatus();
  if (unanswered_ == 0) {
    absl::Status st = EnsureConnected();
    if (st.ok()) st = EnsureScript();
    if (!st.ok()) return send_error_ = st;
  }
  if (sent_.size() <= unanswered_) sent_.resize(unanswered_ + 1);
  std::string& command = sent_[unanswered_];
  FormatApply(writes, fences, &command);
  fence_keys_.clear();
  for (const auto& f : fences)
    absl::StrAppend(&fence_keys_, fence_keys_.empty() ? "" : ", ", f.key);
  int done = 0;
  bool ok = redisAppendFormattedCommand(ctx_, command.data(), command.size()) == REDIS_OK;
  while (ok && !done) ok = redisBufferWrite(ctx_, &done) == REDIS_OK;  // on its way now
  if (!ok) {
    std::string err = ctx_->errstr;
    Disconnect();  // sets send_error_ when earlier runs are unanswered
    if (send_error_.ok()) {
      send_error_ = absl::UnavailableError(absl::StrCat("redis EVALSHA (dimension writes): ", err));
    }
    return send_error_;
  }
  ++unanswered_;
  return absl::OkStatus();
}

absl::Status RedisClient::FinishApplies(uint64_t* stale) {
  if (stale != nullptr) *stale = 0;
  absl::Status failure = std::exchange(send_error_, absl::OkStatus());
  absl::Status fenced;
  const size_t runs = std::exchange(unanswered_, 0);
  std::vector<size_t> noscript;  // runs to send again once the script is loaded
  // One answer: its stale count, a fenced refusal or an error.
  auto take = [&](redisReply* r, size_t run, bool retried) {
    if (r->type == REDIS_REPLY_ERROR) {
      if (!retried && std::string_view(r->str, r->len).substr(0, 8) == "NOSCRIPT") {
        noscript.push_back(run);  // the server lost its scripts (restart, SCRIPT FLUSH)
      } else if (failure.ok()) {
        failure = ReplyError(r, "EVALSHA (dimension writes)");
      }
    } else if (r->type != REDIS_REPLY_INTEGER) {
      if (failure.ok()) {
        failure = absl::InternalError("redis EVALSHA (dimension writes): unexpected answer");
      }
    } else if (r->integer < 0) {
      if (fenced.ok()) {
        fenced = absl::FailedPreconditionError(
            absl::StrCat(kFencedPrefix, "a later owner claimed the partition (", fence_keys_,
                         " no longer holds this writer's token); nothing of that run written"));
      }
    } else if (stale != nullptr) {
      *stale += static_cast<uint64_t>(r->integer);
    }
  };
  // Every answer is read, whatever the first one said: the connection stays in step.
  auto read = [&](size_t run, bool retried) {
    void* raw = nullptr;
    if (redisGetReply(ctx_, &raw) != REDIS_OK) {
      std::string err = ctx_->errstr;
      Disconnect();
      if (failure.ok()) {
        failure = absl::UnavailableError(absl::StrCat("redis EVALSHA (dimension writes): ", err));
      }
      return false;
    }
    Reply r(static_cast<redisReply*>(raw));
    take(r.get(), run, retried);
    return true;
  };
  for (size_t run = 0; run < runs; ++run) {
    if (!read(run, false)) break;
  }
  if (!noscript.empty() && failure.ok() && fenced.ok()) {
    const std::string sha = std::exchange(script_sha_, std::string());
    if (absl::Status st = EnsureScript(); !st.ok()) {
      failure = st;
    } else if (script_sha_ != sha) {  // the same text has the same sha: never expected
      failure = absl::InternalError("redis SCRIPT LOAD: the apply script's sha changed");
    } else {
      for (size_t run : noscript) {
        const std::string& command = sent_[run];
        if (redisAppendFormattedCommand(ctx_, command.data(), command.size()) != REDIS_OK ||
            !read(run, true)) {
          if (failure.ok()) failure = absl::UnavailableError("redis EVALSHA (dimension writes)");
          break;
        }
      }
    }
  }
  if (!fenced.ok()) return fenced;
  return failure;
}

absl::Status RedisClient::ApplyAtomically(const std::vector<RedisWrite>& writes, uint64_t* stale,
                                          const std::vector<Fence>& fences) {
  if (stale != nullptr) *stale = 0;
  if (writes.empty() && fences.empty()) return absl::OkStatus();
  (void)SendApply(writes, fences);  // a failure is FinishApplies()'s answer
  return FinishApplies(stale);
}

}  // namespace rtdw
