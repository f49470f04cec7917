#include "connectors/redis/redis_client.h"

#include <hiredis/hiredis.h>

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
  if (ctx_ != nullptr) {
    redisFree(ctx_);
    ctx_ = nullptr;
  }
}

absl::Status RedisClient::EnsureConnected() {
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
  if (auto st = EnsureConnected(); !st.ok()) return st;
  const char* argv[] = {"SMEMBERS", key.data()};
  size_t lens[] = {8, key.size()};
  Reply r(static_cast<redisReply*>(redisCommandArgv(ctx_, 2, argv, lens)));
  if (!r) {
    std::string err = ctx_->errstr;
    Disconnect();
    return absl::UnavailableError(absl::StrCat("redis SMEMBERS: ", err));
  }
  if (r->type == REDIS_REPLY_ERROR) return ReplyError(r.get(), "SMEMBERS");
  if (r->elements == 0) {
    // SMEMBERS of a missing key is an empty set: tell "absent" from "empty" with EXISTS.
    Reply ex(static_cast<redisReply*>(
        redisCommandArgv(ctx_, 2, std::vector<const char*>{"EXISTS", key.data()}.data(),
                         std::vector<size_t>{6, key.size()}.data())));
    if (!ex) {
      std::string err = ctx_->errstr;
      Disconnect();
      return absl::UnavailableError(absl::StrCat("redis EXISTS: ", err));
    }
    if (ex->type == REDIS_REPLY_INTEGER && ex->integer == 0) {
      return std::optional<std::vector<std::string>>();
    }
  }
  std::vector<std::string> members;
  for (size_t i = 0; i < r->elements; ++i) {
    members.emplace_back(r->element[i]->str, r->element[i]->len);
  }
  return std::optional<std::vector<std::string>>(std::move(members));
}

namespace {

// KEYS[1] = the epoch key; KEYS[2 .. F+1] = fence keys; then per write i: KEYS[F+2i] = the row
// key, KEYS[F+2i+1] = its position key. ARGV[1] = F; ARGV[2 .. F+1] = the fence tokens; then per
// write: op ("S" set / "D" delete), offset (-1: no position), value.
// Positions are "<epoch>:<offset>"; Lua numbers are doubles, exact to 2^53. Returns the number of
// stale writes, or -1 (nothing applied) when a fence key holds another token.
constexpr char kApplyScript[] = R"lua(
local nf = tonumber(ARGV[1])
for i = 1, nf do
  if redis.call('GET', KEYS[1 + i]) ~= ARGV[1 + i] then return -1 end
end
local epoch = tonumber(redis.call('GET', KEYS[1]) or '0') or 0
local stale = 0
for i = 1, (#KEYS - 1 - nf) / 2 do
  local key, pkey = KEYS[nf + 2 * i], KEYS[nf + 2 * i + 1]
  local a = nf + 1 + 3 * i
  local op, off, val = ARGV[a - 2], tonumber(ARGV[a - 1]), ARGV[a]
  local apply = true
  if off >= 0 then
    local cur = redis.call('GET', pkey)
    if cur then
      local ce, co = string.match(cur, '^(%d+):(%d+)$')
      ce, co = tonumber(ce), tonumber(co)
      if ce and co and (ce > epoch or (ce == epoch and co >= off)) then apply = false end
    end
  end
  if apply then
    if op == 'S' then redis.call('SET', key, val) else redis.call('DEL', key) end
    if off >= 0 then redis.call('SET', pkey, epoch .. ':' .. string.format('%d', off)) end
  else
    stale = stale + 1
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

absl::Status RedisClient::ApplyAtomically(const std::vector<RedisWrite>& writes, uint64_t* stale,
                                          const std::vector<Fence>& fences) {
  if (stale != nullptr) *stale = 0;
  if (writes.empty() && fences.empty()) return absl::OkStatus();
  if (auto st = EnsureConnected(); !st.ok()) return st;
  std::vector<std::string> args;
  args.reserve(4 + 2 * fences.size() + writes.size() * 5);
  args.emplace_back("EVALSHA");
  args.emplace_back();  // the sha, filled below
  args.push_back(absl::StrCat(1 + fences.size() + 2 * writes.size()));
  args.emplace_back(kDimEpochKey);
  for (const auto& f : fences) args.push_back(f.key);
  for (const auto& w : writes) {
    args.push_back(w.key);
    args.push_back(PositionKey(w.key));
  }
  args.push_back(absl::StrCat(fences.size()));
  for (const auto& f : fences) args.push_back(absl::StrCat(f.token));
  for (const auto& w : writes) {
    args.emplace_back(w.op == RedisWrite::Op::kSet ? "S" : "D");
    args.push_back(absl::StrCat(w.offset < 0 ? -1 : w.offset));
    args.push_back(w.op == RedisWrite::Op::kSet ? w.value : std::string());
  }
  auto call = [&](const std::vector<std::string>& a) -> absl::StatusOr<Reply> {
    std::vector<const char*> argv;
    std::vector<size_t> lens;
    argv.reserve(a.size());
    lens.reserve(a.size());
    for (const auto& x : a) {
      argv.push_back(x.data());
      lens.push_back(x.size());
    }
    Reply r(static_cast<redisReply*>(
        redisCommandArgv(ctx_, static_cast<int>(argv.size()), argv.data(), lens.data())));
    if (!r) {
      std::string err = ctx_->errstr;
      Disconnect();
      return absl::UnavailableError(absl::StrCat("redis ", a[0], ": ", err));
    }
    return r;
  };
  for (int attempt = 0; attempt < 2; ++attempt) {
    if (script_sha_.empty()) {
      auto loaded = call({"SCRIPT", "LOAD", kApplyScript});
      if (!loaded.ok()) return loaded.status();
      if ((*loaded)->type != REDIS_REPLY_STRING) {
        return (*loaded)->type == REDIS_REPLY_ERROR
                   ? ReplyError(loaded->get(), "SCRIPT LOAD")
                   : absl::InternalError("redis SCRIPT LOAD: unexpected answer");
      }
      script_sha_.assign((*loaded)->str, (*loaded)->len);
    }
    args[1] = script_sha_;
    auto r = call(args);
    if (!r.ok()) return r.status();
    if ((*r)->type == REDIS_REPLY_ERROR) {
      std::string_view err((*r)->str, (*r)->len);
      if (err.substr(0, 8) == "NOSCRIPT" && attempt == 0) {  // the server lost its scripts
        script_sha_.clear();
        continue;
      }
      return ReplyError(r->get(), "EVALSHA (dimension writes)");
    }
    if ((*r)->type != REDIS_REPLY_INTEGER) {
      return absl::InternalError("redis EVALSHA (dimension writes): unexpected answer");
    }
    if ((*r)->integer < 0) {
      std::string keys;
      for (const auto& f : fences) absl::StrAppend(&keys, keys.empty() ? "" : ", ", f.key);
      return absl::FailedPreconditionError(
          absl::StrCat(kFencedPrefix, "a later owner claimed the partition (", keys,
                       " no longer holds this writer's token); nothing written"));
    }
    if (stale != nullptr) *stale = static_cast<uint64_t>((*r)->integer);
    return absl::OkStatus();
  }
  return absl::InternalError("redis EVALSHA (dimension writes): script not found after loading");
}

}  // namespace rtdw
