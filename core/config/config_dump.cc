// What a loaded Config answers: the dump (secrets masked), topic fingerprints, service needs.

#include <algorithm>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/config/config.h"
#include "core/config/config_values.h"

namespace rtdw {
namespace {

using config_internal::QuoteToml;

constexpr std::string_view kMasked = "\"***\"";

// Property names whose plain-text values are masked too (a password written inline).
bool LooksSecret(std::string_view name) {
  for (std::string_view word : {"password", "secret", "jaas", "key.pem", "token"}) {
    if (name.find(word) != std::string_view::npos) return true;
  }
  return false;
}

class Writer {
 public:
  void Section(std::string_view name) {
    if (!out_.empty()) out_ += '\n';
    out_.append("[").append(name).append("]\n");
  }
  void Raw(std::string_view key, std::string_view value, std::string_view comment = {}) {
    out_.append(key).append(" = ").append(value);
    if (!comment.empty()) out_.append("  # ").append(comment);
    out_ += '\n';
  }
  void Str(std::string_view key, std::string_view value) { Raw(key, QuoteToml(value)); }
  void Int(std::string_view key, int64_t value) { Raw(key, std::to_string(value)); }
  void Bool(std::string_view key, bool value) { Raw(key, value ? "true" : "false"); }
  void List(std::string_view key, const std::vector<std::string>& values) {
    std::string v = "[";
    for (size_t i = 0; i < values.size(); ++i) {
      if (i > 0) v += ", ";
      v += QuoteToml(values[i]);
    }
    v += "]";
    Raw(key, v);
  }
  void Secret(std::string_view key, const std::optional<rtdw::Secret>& s) {
    if (s) Raw(key, kMasked, s->origin);
  }
  void Comment(std::string_view text) { out_.append("# ").append(text).append("\n"); }
  void Common(const JobCommon& c) {
    Str("time_zone", c.time_zone);
    Int("batch_max_records", c.batch_max_records);
    Int("batch_max_ms", c.batch_max_ms.count());
  }
  std::string Take() { return std::move(out_); }

 private:
  std::string out_;
};

// The job's topics, role by role, in a fixed order.
std::vector<std::pair<std::string_view, std::string>> JobTopics(const Config& c,
                                                                std::string_view job) {
  const JobsConfig& j = c.jobs;
  if (job == kJobLogSplit) {
    const LogSplitJob& l = j.log_split;
    return {{"source_topic", l.source_topic},
            {"start_topic", l.start_topic},
            {"page_topic", l.page_topic},
            {"display_topic", l.display_topic},
            {"action_topic", l.action_topic},
            {"error_topic", l.error_topic},
            {"dead_letter_topic", l.dead_letter_topic}};
  }
  if (job == kJobDbSplit) {
    return {{"source_topic", j.db_split.source_topic},
            {"dead_letter_topic", j.db_split.dead_letter_topic}};
  }
  if (job == kJobDau) return {{"source_topic", j.dau.source_topic}};
  if (job == kJobOrderWide) {
    return {{"order_topic", j.order_wide.order_topic}, {"detail_topic", j.order_wide.detail_topic}};
  }
  return {};
}

}  // namespace

std::map<std::string, std::string> KafkaConfig::ResolvedProperties() const {
  std::map<std::string, std::string> out;
  for (const auto& [name, value] : properties) {
    out[name] = std::holds_alternative<Secret>(value) ? std::get<Secret>(value).value
                                                      : std::get<std::string>(value);
  }
  return out;
}

bool JobsConfig::IsEnabled(std::string_view job) const {
  return std::find(enabled.begin(), enabled.end(), job) != enabled.end();
}

const JobCommon* JobsConfig::Common(std::string_view job) const {
  if (job == kJobLogSplit) return &log_split;
  if (job == kJobDbSplit) return &db_split;
  if (job == kJobDau) return &dau;
  if (job == kJobOrderWide) return &order_wide;
  return nullptr;
}

ServiceNeeds Config::NeededServices(std::string_view job) const {
  ServiceNeeds needs;
  auto add = [&needs](std::string_view name) {
    if (!IsKnownJob(name)) return;
    needs.kafka = true;
    if (name != kJobLogSplit) needs.redis = true;
    if (name == kJobDau || name == kJobOrderWide) needs.es = true;
  };
  if (!job.empty()) {
    add(job);
  } else {
    for (const std::string& name : jobs.enabled) add(name);
  }
  return needs;
}

std::string DumpConfig(const Config& c) {
  Writer w;
  w.Comment("rtdw effective configuration" +
            (c.source.empty() ? std::string() : " (from " + c.source + ")") +
            "; secrets shown as \"***\"");
  w.Section("kafka");
  w.Str("brokers", c.kafka.brokers);
  if (c.kafka.group) {
    w.Str("group", *c.kafka.group);
  } else {
    w.Comment("group absent: assign mode");
  }
  w.Str("auto_offset_reset", ToString(c.kafka.auto_offset_reset));
  w.Int("revoke_timeout", c.kafka.revoke_timeout.count());
  w.Section("kafka.properties");
  for (const auto& [name, value] : c.kafka.properties) {
    if (const Secret* s = std::get_if<Secret>(&value)) {
      w.Raw(QuoteToml(name), kMasked, s->origin);
    } else if (LooksSecret(name)) {
      w.Raw(QuoteToml(name), kMasked, "inline");
    } else {
      w.Str(QuoteToml(name), std::get<std::string>(value));
    }
  }

  w.Section("redis");
  w.Str("url", c.redis.url);  // already redacted
  if (c.redis.username) w.Comment("user " + QuoteToml(*c.redis.username));
  w.Secret("password", c.redis.password);

  w.Section("es");
  if (c.es.urls.size() == 1) {
    w.Str("url", c.es.urls[0]);
  } else {
    w.List("url", c.es.urls);
  }
  if (c.es.user) w.Str("user", *c.es.user);
  w.Secret("password", c.es.password);
  w.Secret("api_key", c.es.api_key);
  if (c.es.ca_file) w.Str("ca_file", *c.es.ca_file);
  w.Bool("verify_tls", c.es.verify_tls);
  w.Int("bulk_max_bytes", c.es.bulk_max_bytes);
  w.Int("max_response_mb", c.es.max_response_mb);

  w.Section("state");
  w.Str("dir", c.state.dir);
  w.Int("block_cache_mb", c.state.block_cache_mb);
  w.Bool("sync", c.state.sync);
  w.Int("min_free_mb", c.state.min_free_mb);

  w.Section("dedup");
  w.Int("retention_days", c.dedup.retention_days);

  w.Section("shutdown");
  w.Int("timeout", c.shutdown.timeout.count());

  w.Section("http");
  w.Str("listen", c.http.listen);

  w.Section("log");
  w.Str("level", ToString(c.log.level));
  w.Str("format", ToString(c.log.format));
  w.Int("progress_interval", c.log.progress_interval.count());

  w.Section("jobs");
  w.List("enabled", c.jobs.enabled);
  w.Str("time_zone", c.jobs.time_zone);
  w.Int("batch_max_records", c.jobs.batch_max_records);
  w.Int("batch_max_ms", c.jobs.batch_max_ms.count());

  const LogSplitJob& ls = c.jobs.log_split;
  w.Section("jobs.log-split");
  w.Common(ls);
  for (const auto& [key, topic] : JobTopics(c, kJobLogSplit)) w.Str(key, topic);
  w.Int("max_record_bytes", ls.max_record_bytes);
  w.Int("max_depth", ls.max_depth);
  w.Int("max_array_items", ls.max_array_items);

  const DbSplitJob& ds = c.jobs.db_split;
  w.Section("jobs.db-split");
  w.Common(ds);
  for (const auto& [key, topic] : JobTopics(c, kJobDbSplit)) w.Str(key, topic);
  w.List("fact_tables", ds.fact_tables);
  w.List("dim_tables", ds.dim_tables);

  const DauJob& dau = c.jobs.dau;
  w.Section("jobs.dau");
  w.Common(dau);
  for (const auto& [key, topic] : JobTopics(c, kJobDau)) w.Str(key, topic);
  w.Str("index_prefix", dau.index_prefix);
  w.Int("max_future", dau.max_future.count());

  const OrderWideJob& ow = c.jobs.order_wide;
  w.Section("jobs.order-wide");
  w.Common(ow);
  for (const auto& [key, topic] : JobTopics(c, kJobOrderWide)) w.Str(key, topic);
  w.Str("index_prefix", ow.index_prefix);
  w.Int("join_ttl", ow.join_ttl.count());
  w.Int("max_future", ow.max_future.count());
  w.Int("idle_input", ow.idle_input.count());
  return w.Take();
}

std::string StateFingerprint(const Config& config, std::string_view job) {
  std::vector<std::pair<std::string_view, std::string>> topics = JobTopics(config, job);
  if (topics.empty()) return {};
  std::string out = "rtdw-topics/1 job=";
  out.append(job);
  for (const auto& [role, topic] : topics) {
    out.append(" ").append(role).append("=").append(topic);
  }
  // Names and values hold no spaces (zone names, index prefixes and numbers never do).
  if (job == kJobDau) {
    const DauJob& j = config.jobs.dau;
    absl::StrAppend(&out, " time_zone=", j.time_zone, " index_prefix=", j.index_prefix,
                    " retention_days=", config.dedup.retention_days);
  } else if (job == kJobOrderWide) {
    const OrderWideJob& j = config.jobs.order_wide;
    absl::StrAppend(&out, " time_zone=", j.time_zone, " index_prefix=", j.index_prefix,
                    " join_ttl=", j.join_ttl.count());
  }
  return out;
}

}  // namespace rtdw
