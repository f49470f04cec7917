// Value parsers and checks behind the config loader (config.h). Internal to core/config, exposed
// for tests.
//
// Each check returns an empty string when the value is fine, otherwise one message of the form
// `what is wrong (what was expected)` — the tail of a config error line. A message never contains a
// password: URLs are echoed with their userinfo password replaced by "***".
#ifndef RTDW_CORE_CONFIG_CONFIG_VALUES_H_
#define RTDW_CORE_CONFIG_CONFIG_VALUES_H_

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/config/config.h"

namespace rtdw::config_internal {

// "host:port" (host a name, IPv4, or [IPv6]). Port 1-65535, or 0-65535 with `allow_port_zero`.
std::string ParseHostPort(std::string_view text, bool allow_port_zero, HostPort* out);

// Comma-separated host:port list (blanks around items ignored), at least one. `normalized` gets
// "host:port,host:port".
std::string ParseBrokerList(std::string_view text, std::vector<HostPort>* out,
                            std::string* normalized);

struct RedisUrl {
  std::string host;
  int port = 6379;
  int db = 0;
  std::optional<std::string> username;
  std::optional<std::string> password;
};
// redis://[[user]:password@]host[:port][/db] (percent-escapes decoded in user and password);
// rediss:// is refused (hiredis 0.14 has no TLS).
std::string ParseRedisUrl(std::string_view text, RedisUrl* out);
// The URL with the userinfo's password (or a bare userinfo) replaced by "***".
std::string RedactUrl(std::string_view url);

// http(s)://host[:port][/path], no userinfo, query or fragment. `normalized` drops trailing '/'.
std::string ParseHttpUrl(std::string_view text, std::string* normalized);

// A Kafka topic name: 1-249 of [A-Za-z0-9._-], not "." or "..".
std::string CheckTopicName(std::string_view name);
// An Elasticsearch index name prefix: lowercase, none of \ / * ? " < > | space , # :, not starting
// with - _ +, at most 200 bytes (a date suffix follows).
std::string CheckIndexPrefix(std::string_view prefix);
// A MySQL table name as rtdw uses it in topic names: 1-64 of [A-Za-z0-9_].
std::string CheckTableName(std::string_view name);

// Edit distance counting insertions, deletions, substitutions and adjacent transpositions
// (bytes, ASCII case-insensitive).
int EditDistance(std::string_view a, std::string_view b);
// The candidate closest to `name` when it is close enough to be a likely typo, else nullopt.
std::optional<std::string> NearestName(std::string_view name,
                                       const std::vector<std::string>& candidates);

// Splits on ',' and trims blanks; keeps empty items (so that "a,,b" can be reported).
std::vector<std::string> SplitCommaList(std::string_view text);

// A TOML basic string literal: "..." with \ " and control characters escaped.
std::string QuoteToml(std::string_view s);

}  // namespace rtdw::config_internal

#endif  // RTDW_CORE_CONFIG_CONFIG_VALUES_H_
