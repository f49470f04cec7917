// The config loader: TOML -> Config, collecting every problem (see config.h for the promises).

#include "core/config/config.h"

#include <toml++/toml.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <set>
#include <system_error>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_join.h"
#include "core/config/config_values.h"

namespace rtdw {
namespace {

using config_internal::CheckIndexPrefix;
using config_internal::CheckTableName;
using config_internal::CheckTopicName;
using config_internal::NearestName;
using config_internal::ParseBrokerList;
using config_internal::ParseHostPort;
using config_internal::ParseHttpUrl;
using config_internal::ParseRedisUrl;
using config_internal::QuoteToml;
using config_internal::RedactUrl;
using config_internal::SplitCommaList;

// Concatenates strings, string_views and C strings.
template <typename... T>
std::string Cat(const T&... parts) {
  std::string s;
  (s.append(std::string_view(parts)), ...);
  return s;
}

constexpr int64_t kMaxInt32 = std::numeric_limits<int32_t>::max();
constexpr int64_t kDay = 86400;
constexpr size_t kMaxConfigBytes = 16 << 20;
constexpr size_t kMaxSecretFileBytes = 1 << 20;

std::string_view TypeName(toml::node_type t) {
  switch (t) {
    case toml::node_type::table:
      return "table";
    case toml::node_type::array:
      return "array";
    case toml::node_type::string:
      return "string";
    case toml::node_type::integer:
      return "integer";
    case toml::node_type::floating_point:
      return "float";
    case toml::node_type::boolean:
      return "boolean";
    case toml::node_type::date:
      return "date";
    case toml::node_type::time:
      return "time";
    case toml::node_type::date_time:
      return "date-time";
    default:
      return "nothing";
  }
}

// A key as it appears in a dotted path: bare when it can be, quoted otherwise.
std::string KeyPart(std::string_view key) {
  bool bare = !key.empty() && std::all_of(key.begin(), key.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-';
  });
  return bare ? std::string(key) : QuoteToml(key);
}

std::string JoinPath(std::string_view parent, std::string_view key) {
  return parent.empty() ? KeyPart(key) : Cat(parent, ".", KeyPart(key));
}

std::string IntText(int64_t v) { return std::to_string(v); }

std::string DoubleText(double v) {
  char buf[64];
  auto [p, ec] = std::to_chars(buf, buf + sizeof(buf), v);
  return ec == std::errc() ? std::string(buf, p) : std::to_string(v);
}

// Reads at most `limit` bytes of a file. False with `error` set when it cannot.
bool ReadFile(const std::string& path, size_t limit, std::string* out, std::string* error,
              bool* not_found) {
  if (not_found) *not_found = false;
  std::error_code ec;
  auto status = std::filesystem::status(path, ec);
  if (ec || !std::filesystem::exists(status)) {
    if (not_found) *not_found = true;
    *error = ec ? ec.message() : "No such file or directory";
    return false;
  }
  if (std::filesystem::is_directory(status)) {
    *error = "is a directory";
    return false;
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    *error = std::strerror(errno);
    return false;
  }
  std::string data;
  char buf[8192];
  while (in.read(buf, sizeof(buf)) || in.gcount() > 0) {
    data.append(buf, static_cast<size_t>(in.gcount()));
    if (data.size() > limit) {
      *error = Cat("larger than ", IntText(static_cast<int64_t>(limit)), " bytes");
      return false;
    }
  }
  if (in.bad()) {
    *error = "read error";
    return false;
  }
  *out = std::move(data);
  return true;
}

struct Problem {
  int order;  // 0: file, 1: environment
  int line;
  std::string text;
};

// The ranges and units of integer keys.
struct IntRule {
  int64_t min;
  int64_t max;
  std::string_view unit;  // "bytes", "seconds", ... (may be empty)
};

class Loader;

// One TOML table being read: remembers which keys were asked for, so that Finish() can report
// the unknown ones with a suggestion.
class Section {
 public:
  Section(Loader* loader, const toml::table* table, std::string path, std::string hint = {});

  bool present() const { return table_ != nullptr; }
  const std::string& path() const { return path_; }
  std::string Path(std::string_view key) const { return JoinPath(path_, key); }

  // The node of `key`, or nullptr. Marks the key as known.
  const toml::node* Get(std::string_view key);
  // A sub-table (nullptr when absent; a wrong type is reported).
  const toml::table* Table(std::string_view key);

  // Each reader leaves `out` unchanged when the key is absent or wrong (which is reported), and
  // returns true when it stored a value.
  bool String(std::string_view key, std::string* out, std::string_view expected = "a string");
  bool NonEmptyString(std::string_view key, std::string* out, std::string_view expected);
  bool Int(std::string_view key, int64_t* out, const IntRule& rule);
  bool Bool(std::string_view key, bool* out);
  template <typename E>
  bool Enum(std::string_view key, E* out,
            const std::vector<std::pair<std::string_view, E>>& values);
  bool Topic(std::string_view key, std::string* out);
  bool Seconds(std::string_view key, std::chrono::seconds* out, const IntRule& rule);

  // Reports every key of the table that no reader asked for.
  void Finish();

 private:
  Loader* loader_;
  const toml::table* table_;
  std::string path_;
  std::string hint_;  // appended to unknown-key messages that have no suggestion
  std::vector<std::string> known_;
};

class Loader {
 public:
  Loader(std::string file, const EnvLookup& env) : file_(std::move(file)), env_(env) {}

  void Report(const toml::source_region& where, std::string_view key, std::string_view what) {
    int line = static_cast<int>(where.begin.line);
    Add(0, line > 0 ? line : 1,
        Cat(file_, ":", IntText(line > 0 ? line : 1), ": ", key, ": ", what));
  }
  void Report(const toml::node& at, std::string_view key, std::string_view what) {
    Report(at.source(), key, what);
  }
  void ReportEnv(std::string_view var, std::string_view key, std::string_view what) {
    Add(1, 0, Cat("env ", var, ": ", key, ": ", what));
  }
  void ReportWrongType(const toml::node& n, std::string_view key, std::string_view expected) {
    Report(n, key, Cat("wrong type ", TypeName(n.type()), " (expected ", expected, ")"));
  }

  void Load(const toml::table& root, Config* cfg);
  void ApplyEnv(Config* cfg);

  // Every path a Section asked for (keys and sub-tables), and the paths of the Sections: what
  // AcceptedConfigKeys reports.
  void Asked(std::string path) { asked_.insert(std::move(path)); }
  void SectionRead(std::string path) { sections_.insert(std::move(path)); }
  std::vector<std::string> AskedKeys() const {
    std::vector<std::string> out;
    for (const std::string& p : asked_) {
      if (!sections_.contains(p)) out.push_back(p);
    }
    return out;
  }

  std::vector<std::string> TakeProblems() {
    std::stable_sort(problems_.begin(), problems_.end(), [](const Problem& a, const Problem& b) {
      return std::tie(a.order, a.line) < std::tie(b.order, b.line);
    });
    std::vector<std::string> out;
    out.reserve(problems_.size());
    for (Problem& p : problems_) out.push_back(std::move(p.text));
    return out;
  }

  // A secret at `n`: a string, { env = "NAME" } or { file = "/path" }. False (reported) if bad.
  bool ReadSecret(const toml::node& n, const std::string& key, Secret* out);
  std::optional<Secret> SecretKey(Section& s, std::string_view key) {
    const toml::node* n = s.Get(key);
    if (n == nullptr) return std::nullopt;
    Secret secret;
    if (!ReadSecret(*n, s.Path(key), &secret)) return std::nullopt;
    return secret;
  }

 private:
  void Add(int order, int line, std::string text) {
    problems_.push_back({order, line, std::move(text)});
  }

  void LoadKafka(Section& s, KafkaConfig* kafka);
  void LoadProperties(const toml::table& t, const std::string& prefix, KafkaConfig* kafka);
  void LoadRedis(Section& s, RedisConfig* redis);
  void LoadEs(Section& s, EsConfig* es);
  void LoadJobs(Section& s, JobsConfig* jobs);
  bool TimeZone(Section& s, std::string_view key, std::string* name, absl::TimeZone* tz);
  void LoadCommon(Section& s, JobCommon* job);
  bool TableList(Section& s, std::string_view key, std::vector<std::string>* out);
  void DistinctTopic(Section& s, std::string_view key, const std::string& value,
                     std::string_view other_key, const std::string& other);

  std::string file_;
  const EnvLookup& env_;
  std::vector<Problem> problems_;
  bool redis_password_key_ = false;  // redis.password was set in the file
  std::set<std::string> asked_;
  std::set<std::string> sections_;
};

Section::Section(Loader* loader, const toml::table* table, std::string path, std::string hint)
    : loader_(loader), table_(table), path_(std::move(path)), hint_(std::move(hint)) {
  if (!path_.empty()) loader_->SectionRead(path_);
}

// --- Section -------------------------------------------------------------------------------------

const toml::node* Section::Get(std::string_view key) {
  known_.emplace_back(key);
  loader_->Asked(JoinPath(path_, key));
  if (table_ == nullptr) return nullptr;
  return table_->get(key);
}

const toml::table* Section::Table(std::string_view key) {
  const toml::node* n = Get(key);
  if (n == nullptr) return nullptr;
  if (!n->is_table()) {
    loader_->ReportWrongType(*n, Path(key), "a table");
    return nullptr;
  }
  return n->as_table();
}

bool Section::String(std::string_view key, std::string* out, std::string_view expected) {
  const toml::node* n = Get(key);
  if (n == nullptr) return false;
  if (!n->is_string()) {
    loader_->ReportWrongType(*n, Path(key), expected);
    return false;
  }
  *out = n->as_string()->get();
  return true;
}

bool Section::NonEmptyString(std::string_view key, std::string* out, std::string_view expected) {
  std::string v;
  if (!String(key, &v, expected)) return false;
  if (v.empty()) {
    loader_->Report(*Get(key), Path(key), Cat("empty string (expected ", expected, ")"));
    return false;
  }
  *out = std::move(v);
  return true;
}

bool Section::Int(std::string_view key, int64_t* out, const IntRule& rule) {
  const toml::node* n = Get(key);
  if (n == nullptr) return false;
  std::string unit = rule.unit.empty() ? std::string() : Cat(" ", rule.unit);
  std::string expected = rule.max >= kMaxInt32 ? Cat("an integer >= ", IntText(rule.min), unit)
                                               : Cat("an integer from ", IntText(rule.min), " to ",
                                                     IntText(rule.max), unit);
  if (!n->is_integer()) {
    loader_->ReportWrongType(*n, Path(key), expected);
    return false;
  }
  int64_t v = n->as_integer()->get();
  if (v < rule.min || v > rule.max) {
    std::string what = v < 0 && rule.min >= 0 ? Cat("negative value ", IntText(v))
                       : v < rule.min         ? Cat("value ", IntText(v), " too small")
                                              : Cat("value ", IntText(v), " too large");
    loader_->Report(*n, Path(key), Cat(what, " (expected ", expected, ")"));
    return false;
  }
  *out = v;
  return true;
}

bool Section::Seconds(std::string_view key, std::chrono::seconds* out, const IntRule& rule) {
  int64_t v = 0;
  if (!Int(key, &v, rule)) return false;
  *out = std::chrono::seconds(v);
  return true;
}

bool Section::Bool(std::string_view key, bool* out) {
  const toml::node* n = Get(key);
  if (n == nullptr) return false;
  if (!n->is_boolean()) {
    loader_->ReportWrongType(*n, Path(key), "true or false");
    return false;
  }
  *out = n->as_boolean()->get();
  return true;
}

template <typename E>
bool Section::Enum(std::string_view key, E* out,
                   const std::vector<std::pair<std::string_view, E>>& values) {
  std::string names;
  std::vector<std::string> candidates;
  for (const auto& [name, value] : values) {
    if (!names.empty()) names += " | ";
    names += name;
    candidates.emplace_back(name);
  }
  std::string v;
  if (!String(key, &v, Cat("one of ", names))) return false;
  for (const auto& [name, value] : values) {
    if (v == name) {
      *out = value;
      return true;
    }
  }
  std::optional<std::string> near = NearestName(v, candidates);
  loader_->Report(*Get(key), Path(key),
                  Cat("unknown value ", QuoteToml(v), " (expected one of ", names,
                      near ? Cat("; did you mean \"", *near, "\"?") : std::string(), ")"));
  return false;
}

bool Section::Topic(std::string_view key, std::string* out) {
  std::string v;
  if (!String(key, &v, "a Kafka topic name")) return false;
  std::string err = CheckTopicName(v);
  if (!err.empty()) {
    loader_->Report(*Get(key), Path(key), err);
    return false;
  }
  *out = std::move(v);
  return true;
}

void Section::Finish() {
  if (table_ == nullptr) return;
  for (auto&& [k, v] : *table_) {
    std::string_view key = k.str();
    if (std::find(known_.begin(), known_.end(), key) != known_.end()) continue;
    std::vector<std::string> candidates;
    for (const std::string& name : known_) {
      if (std::find(candidates.begin(), candidates.end(), name) == candidates.end()) {
        candidates.push_back(name);
      }
    }
    std::string kind = v.is_table() && !v.as_table()->is_inline() ? "section" : "key";
    std::optional<std::string> near = NearestName(key, candidates);
    std::string expected;
    if (near) {
      expected = Cat("did you mean `", JoinPath(path_, *near), "`?");
    } else {
      expected =
          Cat("known ", path_.empty() ? "sections" : "keys", ": ", absl::StrJoin(candidates, ", "));
      if (!hint_.empty()) expected = Cat(expected, "; ", hint_);
    }
    const toml::source_region& where = k.source().begin.line > 0 ? k.source() : v.source();
    loader_->Report(where, JoinPath(path_, key), Cat("unknown ", kind, " (", expected, ")"));
  }
}

// --- Loader
// ----------------------------------------------------------------------------------------

bool Loader::ReadSecret(const toml::node& n, const std::string& key, Secret* out) {
  constexpr std::string_view kExpected = "a string, { env = \"NAME\" } or { file = \"/path\" }";
  if (n.is_string()) {
    out->value = n.as_string()->get();
    out->origin = "inline";
    if (out->value.empty()) {
      Report(n, key, Cat("empty secret (expected ", kExpected, ")"));
      return false;
    }
    return true;
  }
  if (!n.is_table()) {
    ReportWrongType(n, key, kExpected);
    return false;
  }
  const toml::table& t = *n.as_table();
  const toml::node* env = t.get("env");
  const toml::node* file = t.get("file");
  if (t.size() != 1 || (env == nullptr && file == nullptr)) {
    Report(n, key,
           Cat("bad secret table with ", IntText(static_cast<int64_t>(t.size())),
               " key(s) (expected ", kExpected, ")"));
    return false;
  }
  const toml::node& ref = env != nullptr ? *env : *file;
  if (!ref.is_string() || ref.as_string()->get().empty()) {
    Report(ref, key,
           Cat("bad secret reference (expected ",
               env ? "{ env = \"NAME\" }" : "{ file = \"/path\" }", " with a non-empty string)"));
    return false;
  }
  const std::string& name = ref.as_string()->get();
  if (env != nullptr) {
    std::optional<std::string> value = env_ ? env_(name) : std::nullopt;
    if (!value) {
      Report(ref, key,
             Cat("environment variable ", name,
                 " is not set (expected it to hold the "
                 "secret)"));
      return false;
    }
    if (value->empty()) {
      Report(ref, key,
             Cat("environment variable ", name,
                 " is empty (expected it to hold the "
                 "secret)"));
      return false;
    }
    out->value = std::move(*value);
    out->origin = Cat("env ", name);
    return true;
  }
  std::string data, error;
  if (!ReadFile(name, kMaxSecretFileBytes, &data, &error, nullptr)) {
    Report(ref, key,
           Cat("cannot read secret file \"", name, "\": ", error,
               " (expected a readable file holding the secret)"));
    return false;
  }
  while (!data.empty() && (data.back() == '\n' || data.back() == '\r')) data.pop_back();
  if (data.empty()) {
    Report(ref, key, Cat("secret file \"", name, "\" is empty (expected it to hold the secret)"));
    return false;
  }
  out->value = std::move(data);
  out->origin = Cat("file ", name);
  return true;
}

void Loader::Load(const toml::table& root, Config* cfg) {
  Section top(this, &root, "");
  constexpr std::string_view kRequired[] = {"kafka", "redis", "es", "state", "jobs"};
  std::map<std::string, const toml::table*> sections;
  for (std::string_view name :
       {"kafka", "redis", "es", "state", "dedup", "shutdown", "http", "log", "jobs"}) {
    sections[std::string(name)] = top.Table(name);
  }
  for (std::string_view name : kRequired) {
    if (root.get(name) == nullptr) {
      Add(0, 1,
          Cat(file_, ":1: ", name, ": missing section [", name,
              "] (every rtdw config has [kafka], [redis], [es], [state] and [jobs]; "
              "an empty section is fine)"));
    }
  }
  top.Finish();

  Section kafka(this, sections["kafka"], "kafka", "librdkafka properties go in [kafka.properties]");
  LoadKafka(kafka, &cfg->kafka);
  kafka.Finish();

  Section redis(this, sections["redis"], "redis");
  LoadRedis(redis, &cfg->redis);
  redis.Finish();

  Section es(this, sections["es"], "es");
  LoadEs(es, &cfg->es);
  es.Finish();

  Section state(this, sections["state"], "state");
  state.NonEmptyString("dir", &cfg->state.dir, "a directory path");
  state.Int("block_cache_mb", &cfg->state.block_cache_mb, {1, 1 << 20, "MiB"});
  state.Bool("sync", &cfg->state.sync);
  state.Int("min_free_mb", &cfg->state.min_free_mb, {0, 1 << 30, "MiB"});
  state.Finish();

  Section dedup(this, sections["dedup"], "dedup");
  int64_t retention = cfg->dedup.retention_days;
  if (dedup.Int("retention_days", &retention, {1, 3650, "days"})) {
    cfg->dedup.retention_days = static_cast<int>(retention);
  }
  dedup.Finish();

  Section shutdown(this, sections["shutdown"], "shutdown");
  shutdown.Seconds("timeout", &cfg->shutdown.timeout, {0, kDay, "seconds"});
  shutdown.Finish();

  Section http(this, sections["http"], "http");
  std::string listen;
  if (http.String("listen", &listen, "\"host:port\" or \"\" (off)")) {
    if (listen.empty()) {
      cfg->http = HttpConfig{"", "", 0};
    } else {
      HostPort hp;
      std::string err = ParseHostPort(listen, /*allow_port_zero=*/true, &hp);
      if (!err.empty()) {
        Report(*http.Get("listen"), "http.listen", Cat(err, "; \"\" turns HTTP off"));
      } else {
        cfg->http = HttpConfig{listen, hp.host, hp.port};
      }
    }
  }
  http.Finish();

  Section log(this, sections["log"], "log");
  log.Enum<LogLevel>("level", &cfg->log.level,
                     {{"trace", LogLevel::kTrace},
                      {"debug", LogLevel::kDebug},
                      {"info", LogLevel::kInfo},
                      {"warn", LogLevel::kWarn},
                      {"error", LogLevel::kError}});
  log.Enum<LogFormat>("format", &cfg->log.format,
                      {{"text", LogFormat::kText}, {"json", LogFormat::kJson}});
  log.Seconds("progress_interval", &cfg->log.progress_interval, {0, kDay, "seconds (0: off)"});
  log.Finish();

  Section jobs(this, sections["jobs"], "jobs");
  LoadJobs(jobs, &cfg->jobs);
  jobs.Finish();
}

void Loader::LoadKafka(Section& s, KafkaConfig* kafka) {
  std::string brokers;
  if (s.String("brokers", &brokers, "comma-separated host:port")) {
    std::vector<HostPort> list;
    std::string normalized;
    std::string err = ParseBrokerList(brokers, &list, &normalized);
    if (!err.empty()) {
      Report(*s.Get("brokers"), "kafka.brokers", err);
    } else {
      kafka->brokers = std::move(normalized);
      kafka->broker_list = std::move(list);
    }
  }
  std::string group;
  if (s.NonEmptyString("group", &group, "a consumer group name, or no key (assign mode)")) {
    kafka->group = std::move(group);
  }
  s.Enum<AutoOffsetReset>("auto_offset_reset", &kafka->auto_offset_reset,
                          {{"earliest", AutoOffsetReset::kEarliest},
                           {"latest", AutoOffsetReset::kLatest},
                           {"error", AutoOffsetReset::kError}});
  const bool revoke_given =
      s.Seconds("revoke_timeout", &kafka->revoke_timeout, {0, kDay, "seconds"});
  if (const toml::table* props = s.Table("properties")) LoadProperties(*props, "", kafka);
  // A revoke runs inside the member's poll: it must end well before the group gives up on a
  // member that does not poll (max.poll.interval.ms, librdkafka's default 300000).
  int64_t max_poll_ms = 300000;
  auto max_poll = kafka->properties.find("max.poll.interval.ms");
  if (max_poll != kafka->properties.end()) {
    const std::string* text = std::get_if<std::string>(&max_poll->second);
    int64_t v = 0;
    if (text != nullptr && absl::SimpleAtoi(*text, &v) && v > 0) max_poll_ms = v;
  }
  if (kafka->revoke_timeout.count() * 1000 * 2 > max_poll_ms) {
    const toml::node* at = revoke_given ? s.Get("revoke_timeout") : nullptr;
    std::string what =
        Cat(IntText(kafka->revoke_timeout.count()), " s", revoke_given ? "" : " (the default)",
            " is not well under max.poll.interval.ms (", IntText(max_poll_ms),
            " ms): a revoke must end long before the group gives up on the member (expected at "
            "most ",
            IntText(max_poll_ms / 2000), " s, half of it)");
    if (at != nullptr) {
      Report(*at, "kafka.revoke_timeout", what);
    } else {
      Add(0, 1, Cat(file_, ":1: kafka.revoke_timeout: ", what));
    }
  }
}

void Loader::LoadProperties(const toml::table& t, const std::string& prefix, KafkaConfig* kafka) {
  // The properties rtdw's guarantees rest on, and why.
  static const std::map<std::string, std::string_view, std::less<>> kRefused = {
      {"group.id", "rtdw derives it from kafka.group and the job"},
      {"enable.auto.commit", "offsets are committed with the job's state, never automatically"},
      {"enable.auto.offset.store", "offsets are stored with the job's state, never automatically"},
      {"enable.idempotence", "rtdw's producers are always idempotent"},
      {"acks", "rtdw's producers always use acks=all"},
      {"isolation.level", "rtdw sets it"},
      {"auto.offset.reset", "use kafka.auto_offset_reset"},
  };
  for (auto&& [k, v] : t) {
    std::string name = prefix.empty() ? std::string(k.str()) : Cat(prefix, ".", k.str());
    std::string key = Cat("kafka.properties.", QuoteToml(name));
    if (v.is_table() && !v.as_table()->is_inline()) {  // unquoted dotted keys: linger.ms = 5
      LoadProperties(*v.as_table(), name, kafka);
      continue;
    }
    auto refused = kRefused.find(name);
    if (refused != kRefused.end()) {
      Report(k.source().begin.line > 0 ? k.source() : v.source(), key,
             Cat("refused property \"", name, "\": ", refused->second, " (remove it)"));
      continue;
    }
    switch (v.type()) {
      case toml::node_type::string:
        kafka->properties[name] = v.as_string()->get();
        break;
      case toml::node_type::integer:
        kafka->properties[name] = IntText(v.as_integer()->get());
        break;
      case toml::node_type::floating_point:
        kafka->properties[name] = DoubleText(v.as_floating_point()->get());
        break;
      case toml::node_type::boolean:
        kafka->properties[name] = std::string(v.as_boolean()->get() ? "true" : "false");
        break;
      case toml::node_type::table: {
        Secret secret;
        if (ReadSecret(v, key, &secret)) kafka->properties[name] = std::move(secret);
        break;
      }
      default:
        ReportWrongType(v, key,
                        "a string, number, boolean, { env = \"NAME\" } or { file = \"/path\" }");
    }
  }
}

void Loader::LoadRedis(Section& s, RedisConfig* redis) {
  std::string url;
  bool url_has_password = false;
  if (s.String("url", &url, "redis://[[user]:password@]host:port/db")) {
    config_internal::RedisUrl parsed;
    std::string err = ParseRedisUrl(url, &parsed);
    if (!err.empty()) {
      Report(*s.Get("url"), "redis.url", err);
    } else {
      redis->url = RedactUrl(url);
      redis->host = parsed.host;
      redis->port = parsed.port;
      redis->db = parsed.db;
      redis->username = parsed.username;
      redis->password.reset();
      if (parsed.password) {
        redis->password = Secret{*parsed.password, "redis.url"};
        url_has_password = true;
      }
    }
  }
  if (std::optional<Secret> password = SecretKey(s, "password")) {
    redis_password_key_ = true;
    if (url_has_password) {
      Report(*s.Get("password"), "redis.password",
             "a password is also in redis.url (expected one of them)");
    } else {
      redis->password = std::move(password);
    }
  }
}

void Loader::LoadEs(Section& s, EsConfig* es) {
  constexpr std::string_view kExpected = "a URL or an array of URLs http(s)://host[:port]";
  if (const toml::node* n = s.Get("url")) {
    std::vector<std::string> urls;
    bool ok = true;
    auto add = [&](const toml::node& item, const std::string& key) {
      if (!item.is_string()) {
        ReportWrongType(item, key, kExpected);
        ok = false;
        return;
      }
      std::string normalized;
      std::string err = ParseHttpUrl(item.as_string()->get(), &normalized);
      if (!err.empty()) {
        Report(item, key, err);
        ok = false;
        return;
      }
      urls.push_back(std::move(normalized));
    };
    if (const toml::array* arr = n->as_array()) {
      if (arr->empty()) {
        Report(*n, "es.url", Cat("empty array (expected ", kExpected, ")"));
        ok = false;
      }
      for (size_t i = 0; i < arr->size(); ++i) {
        add(*arr->get(i), Cat("es.url[", IntText(static_cast<int64_t>(i)), "]"));
      }
    } else {
      add(*n, "es.url");
    }
    if (ok) es->urls = std::move(urls);
  }
  std::string user;
  if (s.NonEmptyString("user", &user, "a user name")) es->user = user;
  es->password = SecretKey(s, "password");
  es->api_key = SecretKey(s, "api_key");
  const toml::node* user_node = s.Get("user");
  const toml::node* password_node = s.Get("password");
  const toml::node* api_key_node = s.Get("api_key");
  if (user_node && !password_node) {
    Report(*user_node, "es.user", "user without password (expected es.password as well)");
  }
  if (password_node && !user_node) {
    Report(*password_node, "es.password", "password without user (expected es.user as well)");
  }
  if (api_key_node && (user_node || password_node)) {
    Report(*api_key_node, "es.api_key",
           "both an API key and user/password (expected either es.api_key or es.user + "
           "es.password)");
  }
  std::string ca_file;
  if (s.NonEmptyString("ca_file", &ca_file, "a path to a PEM file")) {
    std::string data, error;
    if (!ReadFile(ca_file, kMaxConfigBytes, &data, &error, nullptr)) {
      Report(*s.Get("ca_file"), "es.ca_file",
             Cat("cannot read \"", ca_file, "\": ", error, " (expected a readable PEM file)"));
    } else {
      es->ca_file = ca_file;
    }
  }
  s.Bool("verify_tls", &es->verify_tls);
  s.Int("bulk_max_bytes", &es->bulk_max_bytes, {1, kMaxInt32, "bytes"});
  s.Int("max_response_mb", &es->max_response_mb, {1, 4096, "MiB"});
}

bool Loader::TimeZone(Section& s, std::string_view key, std::string* name, absl::TimeZone* tz) {
  std::string v;
  if (!s.String(key, &v, "an IANA time zone name such as \"Asia/Shanghai\"")) return false;
  absl::TimeZone loaded;
  if (v.empty() || !absl::LoadTimeZone(v, &loaded)) {
    Report(*s.Get(key), s.Path(key),
           Cat("unknown time zone ", QuoteToml(v),
               " (expected an IANA time zone name such as \"Asia/Shanghai\" or \"UTC\")"));
    return false;
  }
  *name = std::move(v);
  if (tz) *tz = loaded;
  return true;
}

void Loader::LoadCommon(Section& s, JobCommon* job) {
  TimeZone(s, "time_zone", &job->time_zone, &job->tz);
  s.Int("batch_max_records", &job->batch_max_records, {1, 10'000'000, "records"});
  int64_t ms = job->batch_max_ms.count();
  if (s.Int("batch_max_ms", &ms, {1, 3'600'000, "milliseconds"})) {
    job->batch_max_ms = std::chrono::milliseconds(ms);
  }
}

bool Loader::TableList(Section& s, std::string_view key, std::vector<std::string>* out) {
  const toml::node* n = s.Get(key);
  if (n == nullptr) return false;
  const toml::array* arr = n->as_array();
  if (arr == nullptr) {
    ReportWrongType(*n, s.Path(key), "an array of table names");
    return false;
  }
  std::vector<std::string> names;
  bool ok = true;
  for (size_t i = 0; i < arr->size(); ++i) {
    const toml::node& item = *arr->get(i);
    std::string item_key = Cat(s.Path(key), "[", IntText(static_cast<int64_t>(i)), "]");
    if (!item.is_string()) {
      ReportWrongType(item, item_key, "a table name string");
      ok = false;
      continue;
    }
    std::string err = CheckTableName(item.as_string()->get());
    if (!err.empty()) {
      Report(item, item_key, err);
      ok = false;
      continue;
    }
    names.push_back(item.as_string()->get());
  }
  if (ok) *out = std::move(names);
  return ok;
}

void Loader::DistinctTopic(Section& s, std::string_view key, const std::string& value,
                           std::string_view other_key, const std::string& other) {
  const toml::node* n = s.Get(key);
  if (n != nullptr && value == other) {
    Report(*n, s.Path(key),
           Cat("same topic ", QuoteToml(value), " as ", s.Path(other_key),
               " (expected a different topic)"));
  }
}

void Loader::LoadJobs(Section& s, JobsConfig* jobs) {
  std::vector<std::string> job_names(kJobNames.begin(), kJobNames.end());
  if (const toml::node* n = s.Get("enabled")) {
    if (const toml::array* arr = n->as_array()) {
      std::vector<std::string> enabled;
      bool ok = true;
      std::string known = absl::StrJoin(job_names, ", ");
      for (size_t i = 0; i < arr->size(); ++i) {
        const toml::node& item = *arr->get(i);
        std::string key = Cat("jobs.enabled[", IntText(static_cast<int64_t>(i)), "]");
        if (!item.is_string()) {
          ReportWrongType(item, key, Cat("a job name: ", known));
          ok = false;
          continue;
        }
        const std::string& name = item.as_string()->get();
        if (!IsKnownJob(name)) {
          std::optional<std::string> near = NearestName(name, job_names);
          Report(item, key,
                 Cat("unknown job ", QuoteToml(name), " (expected one of ", known,
                     near ? Cat("; did you mean \"", *near, "\"?") : std::string(), ")"));
          ok = false;
          continue;
        }
        if (std::find(enabled.begin(), enabled.end(), name) != enabled.end()) {
          Report(item, key, Cat("job ", QuoteToml(name), " listed twice (expected each once)"));
          ok = false;
          continue;
        }
        enabled.push_back(name);
      }
      if (arr->empty()) {
        Report(*n, "jobs.enabled", Cat("no job enabled (expected at least one of ", known, ")"));
        ok = false;
      }
      if (ok) jobs->enabled = std::move(enabled);
    } else {
      ReportWrongType(*n, "jobs.enabled", "an array of job names");
    }
  }

  absl::TimeZone default_tz;
  absl::LoadTimeZone(jobs->time_zone, &default_tz);
  TimeZone(s, "time_zone", &jobs->time_zone, &default_tz);
  s.Int("batch_max_records", &jobs->batch_max_records, {1, 10'000'000, "records"});
  int64_t ms = jobs->batch_max_ms.count();
  if (s.Int("batch_max_ms", &ms, {1, 3'600'000, "milliseconds"})) {
    jobs->batch_max_ms = std::chrono::milliseconds(ms);
  }
  const JobCommon defaults{jobs->time_zone, default_tz, jobs->batch_max_records,
                           jobs->batch_max_ms};
  auto inherit = [&](JobCommon* job) { static_cast<JobCommon&>(*job) = defaults; };

  // Sections are read whether the job is enabled or not: a present section is validated.
  {
    LogSplitJob& j = jobs->log_split;
    inherit(&j);
    Section js(this, s.Table(kJobLogSplit), "jobs.log-split");
    LoadCommon(js, &j);
    js.Topic("source_topic", &j.source_topic);
    std::pair<std::string_view, std::string*> outputs[] = {
        {"start_topic", &j.start_topic},     {"page_topic", &j.page_topic},
        {"display_topic", &j.display_topic}, {"action_topic", &j.action_topic},
        {"error_topic", &j.error_topic},     {"dead_letter_topic", &j.dead_letter_topic}};
    for (auto& [key, field] : outputs) js.Topic(key, field);
    for (auto& [key, field] : outputs) {
      DistinctTopic(js, key, *field, "source_topic", j.source_topic);
    }
    js.Int("max_record_bytes", &j.max_record_bytes, {1, 1 << 30, "bytes"});
    int64_t v = j.max_depth;
    if (js.Int("max_depth", &v, {1, 100'000, "levels"})) j.max_depth = static_cast<int>(v);
    v = j.max_array_items;
    if (js.Int("max_array_items", &v, {1, 10'000'000, "elements"})) {
      j.max_array_items = static_cast<int>(v);
    }
    js.Finish();
  }
  {
    DbSplitJob& j = jobs->db_split;
    inherit(&j);
    Section js(this, s.Table(kJobDbSplit), "jobs.db-split");
    LoadCommon(js, &j);
    js.Topic("source_topic", &j.source_topic);
    js.Topic("dead_letter_topic", &j.dead_letter_topic);
    DistinctTopic(js, "dead_letter_topic", j.dead_letter_topic, "source_topic", j.source_topic);
    TableList(js, "fact_tables", &j.fact_tables);
    TableList(js, "dim_tables", &j.dim_tables);
    js.Finish();
  }
  {
    DauJob& j = jobs->dau;
    inherit(&j);
    Section js(this, s.Table(kJobDau), "jobs.dau");
    LoadCommon(js, &j);
    js.Topic("source_topic", &j.source_topic);
    std::string prefix;
    if (js.String("index_prefix", &prefix, "an index name prefix")) {
      std::string err = CheckIndexPrefix(prefix);
      if (!err.empty()) {
        Report(*js.Get("index_prefix"), "jobs.dau.index_prefix", err);
      } else {
        j.index_prefix = prefix;
      }
    }
    js.Seconds("max_future", &j.max_future, {0, 365 * kDay, "seconds"});
    js.Finish();
  }
  {
    OrderWideJob& j = jobs->order_wide;
    inherit(&j);
    Section js(this, s.Table(kJobOrderWide), "jobs.order-wide");
    LoadCommon(js, &j);
    js.Topic("order_topic", &j.order_topic);
    js.Topic("detail_topic", &j.detail_topic);
    DistinctTopic(js, "detail_topic", j.detail_topic, "order_topic", j.order_topic);
    std::string prefix;
    if (js.String("index_prefix", &prefix, "an index name prefix")) {
      std::string err = CheckIndexPrefix(prefix);
      if (!err.empty()) {
        Report(*js.Get("index_prefix"), "jobs.order-wide.index_prefix", err);
      } else {
        j.index_prefix = prefix;
      }
    }
    js.Seconds("join_ttl", &j.join_ttl, {1, 365 * kDay, "seconds"});
    js.Seconds("max_future", &j.max_future, {0, 365 * kDay, "seconds"});
    js.Seconds("idle_input", &j.idle_input, {0, 365 * kDay, "seconds"});
    js.Finish();
  }
}

void Loader::ApplyEnv(Config* cfg) {
  auto get = [&](std::string_view name) -> std::optional<std::string> {
    if (!env_) return std::nullopt;
    std::optional<std::string> v = env_(std::string(name));
    if (!v || v->empty()) return std::nullopt;
    return v;
  };
  if (std::optional<std::string> v = get(kEnvKafkaBrokers)) {
    std::vector<HostPort> list;
    std::string normalized;
    std::string err = ParseBrokerList(*v, &list, &normalized);
    if (!err.empty()) {
      ReportEnv(kEnvKafkaBrokers, "kafka.brokers", err);
    } else {
      cfg->kafka.brokers = std::move(normalized);
      cfg->kafka.broker_list = std::move(list);
    }
  }
  if (std::optional<std::string> v = get(kEnvRedisUrl)) {
    config_internal::RedisUrl parsed;
    std::string err = ParseRedisUrl(*v, &parsed);
    if (!err.empty()) {
      ReportEnv(kEnvRedisUrl, "redis.url", err);
    } else if (parsed.password && redis_password_key_) {
      ReportEnv(kEnvRedisUrl, "redis.url",
                "a password is also in redis.password (expected one of them)");
    } else {
      RedisConfig& r = cfg->redis;
      r.url = RedactUrl(*v);
      r.host = parsed.host;
      r.port = parsed.port;
      r.db = parsed.db;
      r.username = parsed.username;
      if (parsed.password) {
        r.password = Secret{*parsed.password, Cat("env ", kEnvRedisUrl)};
      } else if (!redis_password_key_) {
        r.password.reset();
      }
    }
  }
  if (std::optional<std::string> v = get(kEnvEsUrl)) {
    std::vector<std::string> urls;
    bool ok = true;
    for (const std::string& item : SplitCommaList(*v)) {
      std::string normalized;
      std::string err = ParseHttpUrl(item, &normalized);
      if (!err.empty()) {
        ReportEnv(kEnvEsUrl, "es.url", err);
        ok = false;
        continue;
      }
      urls.push_back(std::move(normalized));
    }
    if (ok) cfg->es.urls = std::move(urls);
  }
  if (std::optional<std::string> v = get(kEnvStateDir)) cfg->state.dir = *v;
}

ConfigLoadResult LoadText(std::string_view text, const std::string& display_name,
                          const EnvLookup& env) {
  ConfigLoadResult result;
  result.config.source = display_name;
  toml::table root;
  try {
    root = toml::parse(text, std::string(display_name));
  } catch (const toml::parse_error& e) {
    const toml::source_position& pos = e.source().begin;
    int line = pos.line > 0 ? static_cast<int>(pos.line) : 1;
    std::string desc(e.description());
    result.problems.push_back(
        Cat(display_name, ":", IntText(line), ": TOML syntax error at column ",
            IntText(static_cast<int64_t>(pos.column)), ": ", desc, " (expected valid TOML)"));
    return result;
  } catch (const std::exception& e) {
    result.problems.push_back(Cat(display_name, ": cannot parse: ", e.what()));
    return result;
  }
  Loader loader(display_name, env);
  try {
    loader.Load(root, &result.config);
    loader.ApplyEnv(&result.config);
  } catch (const std::exception& e) {  // not expected: a bug or out of memory
    result.problems.push_back(Cat(display_name, ": cannot load: ", e.what()));
  }
  std::vector<std::string> problems = loader.TakeProblems();
  result.problems.insert(result.problems.end(), problems.begin(), problems.end());
  return result;
}

absl::StatusOr<Config> ToStatus(ConfigLoadResult result) {
  if (result.ok()) return std::move(result.config);
  std::string message = absl::StrJoin(result.problems, "\n");
  if (result.not_found) return absl::NotFoundError(message);
  return absl::InvalidArgumentError(message);
}

}  // namespace

std::vector<std::string> AcceptedConfigKeys() {
  // Every reader runs whether its key is present or not, so loading an empty file asks for all.
  EnvLookup no_env;
  Loader loader("", no_env);
  Config cfg;
  loader.Load(toml::table(), &cfg);
  return loader.AskedKeys();
}

bool IsKnownJob(std::string_view job) {
  return std::find(kJobNames.begin(), kJobNames.end(), job) != kJobNames.end();
}

std::string_view ToString(AutoOffsetReset v) {
  switch (v) {
    case AutoOffsetReset::kEarliest:
      return "earliest";
    case AutoOffsetReset::kLatest:
      return "latest";
    case AutoOffsetReset::kError:
      return "error";
  }
  return "?";
}

std::string_view ToString(LogLevel v) {
  switch (v) {
    case LogLevel::kTrace:
      return "trace";
    case LogLevel::kDebug:
      return "debug";
    case LogLevel::kInfo:
      return "info";
    case LogLevel::kWarn:
      return "warn";
    case LogLevel::kError:
      return "error";
  }
  return "?";
}

std::string_view ToString(LogFormat v) {
  switch (v) {
    case LogFormat::kText:
      return "text";
    case LogFormat::kJson:
      return "json";
  }
  return "?";
}

EnvLookup ProcessEnv() {
  return [](const std::string& name) -> std::optional<std::string> {
    const char* v = std::getenv(name.c_str());
    if (v == nullptr) return std::nullopt;
    return std::string(v);
  };
}

ConfigLoadResult LoadConfigDetailed(const std::string& path, const EnvLookup& env) {
  std::string text, error;
  bool not_found = false;
  if (!ReadFile(path, kMaxConfigBytes, &text, &error, &not_found)) {
    ConfigLoadResult result;
    result.config.source = path;
    result.not_found = not_found;
    result.problems.push_back(Cat(path, ": cannot read config file: ", error,
                                  " (expected a TOML file, see deploy/rtdw.example.toml)"));
    return result;
  }
  return LoadText(text, path, env);
}

ConfigLoadResult LoadConfigFromStringDetailed(std::string_view text,
                                              const std::string& display_name,
                                              const EnvLookup& env) {
  return LoadText(text, display_name, env);
}

absl::StatusOr<Config> LoadConfig(const std::string& path, const EnvLookup& env) {
  return ToStatus(LoadConfigDetailed(path, env));
}

absl::StatusOr<Config> LoadConfigFromString(std::string_view text, const std::string& display_name,
                                            const EnvLookup& env) {
  return ToStatus(LoadConfigFromStringDetailed(text, display_name, env));
}

}  // namespace rtdw
