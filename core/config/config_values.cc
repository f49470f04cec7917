#include "core/config/config_values.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdint>

namespace rtdw::config_internal {
namespace {

constexpr std::string_view kRedisExpected = "expected redis://[[user]:password@]host:port/db";
constexpr std::string_view kHttpExpected = "expected http(s)://host[:port][/path]";

// Concatenates strings, string_views and C strings.
template <typename... T>
std::string Cat(const T&... parts) {
  std::string s;
  (s.append(std::string_view(parts)), ...);
  return s;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool ParseUint(std::string_view s, int64_t max, int64_t* out) {
  if (s.empty() || s.size() > 18) return false;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
  }
  int64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size() || v > max) return false;
  *out = v;
  return true;
}

bool IsHostNameChar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' || c == '_';
}

// A host name or IPv4 address; or an IPv6 literal (given without brackets).
bool ValidHost(std::string_view host, bool ipv6) {
  if (host.empty() || host.size() > 253) return false;
  if (ipv6) {
    return std::all_of(host.begin(), host.end(),
                       [](char c) {
                         return std::isxdigit(static_cast<unsigned char>(c)) || c == ':' ||
                                c == '.' || c == '%';
                       }) &&
           host.find(':') != std::string_view::npos;
  }
  if (host.front() == '.' || host.front() == '-' || host.back() == '-') return false;
  return std::all_of(host.begin(), host.end(), IsHostNameChar);
}

// Splits "host[:port]" / "[v6][:port]". `port_text` is empty when there is no port.
// Returns false on a malformed bracket.
bool SplitHostPort(std::string_view text, std::string_view* host, std::string_view* port_text,
                   bool* ipv6, bool* has_colon) {
  *ipv6 = false;
  *has_colon = false;
  *port_text = {};
  if (!text.empty() && text.front() == '[') {
    size_t close = text.find(']');
    if (close == std::string_view::npos) return false;
    *host = text.substr(1, close - 1);
    *ipv6 = true;
    std::string_view rest = text.substr(close + 1);
    if (rest.empty()) return true;
    if (rest.front() != ':') return false;
    *has_colon = true;
    *port_text = rest.substr(1);
    return true;
  }
  size_t colon = text.rfind(':');
  if (colon == std::string_view::npos) {
    *host = text;
    return true;
  }
  if (text.find(':') != colon) return false;  // a bare IPv6 literal: needs brackets
  *has_colon = true;
  *host = text.substr(0, colon);
  *port_text = text.substr(colon + 1);
  return true;
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool PercentDecode(std::string_view in, std::string* out) {
  out->clear();
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] != '%') {
      out->push_back(in[i]);
      continue;
    }
    if (i + 2 >= in.size()) return false;
    int hi = HexValue(in[i + 1]);
    int lo = HexValue(in[i + 2]);
    if (hi < 0 || lo < 0) return false;
    out->push_back(static_cast<char>(hi * 16 + lo));
    i += 2;
  }
  return true;
}

char Lower(char c) { return static_cast<char>(std::tolower(static_cast<unsigned char>(c))); }

}  // namespace

std::string ParseHostPort(std::string_view text, bool allow_port_zero, HostPort* out) {
  const std::string expected = allow_port_zero ? "expected host:port with port 0-65535"
                                               : "expected host:port with port 1-65535";
  std::string_view host, port_text;
  bool ipv6 = false, has_colon = false;
  if (text.empty()) return Cat("empty address (", expected, ")");
  if (!SplitHostPort(text, &host, &port_text, &ipv6, &has_colon)) {
    return Cat("bad address \"", text, "\" (", expected, "; IPv6 as [addr]:port)");
  }
  if (!has_colon) return Cat("no port in \"", text, "\" (", expected, ")");
  if (!ValidHost(host, ipv6)) return Cat("bad host in \"", text, "\" (", expected, ")");
  int64_t port = 0;
  if (!ParseUint(port_text, 65535, &port) || (port == 0 && !allow_port_zero)) {
    return Cat("bad port in \"", text, "\" (", expected, ")");
  }
  out->host = std::string(host);
  out->port = static_cast<int>(port);
  return {};
}

std::string ParseBrokerList(std::string_view text, std::vector<HostPort>* out,
                            std::string* normalized) {
  std::vector<std::string> items = SplitCommaList(text);
  std::vector<HostPort> list;
  std::string norm;
  if (Trim(text).empty()) {
    return "empty broker list (expected comma-separated host:port, e.g. \"127.0.0.1:9092\")";
  }
  for (const std::string& item : items) {
    if (item.empty()) {
      return Cat("empty item in \"", text, "\" (expected comma-separated host:port)");
    }
    HostPort hp;
    std::string err = ParseHostPort(item, /*allow_port_zero=*/false, &hp);
    if (!err.empty()) return err;
    if (!norm.empty()) norm += ',';
    norm += item;
    list.push_back(std::move(hp));
  }
  *out = std::move(list);
  *normalized = std::move(norm);
  return {};
}

std::string RedactUrl(std::string_view url) {
  size_t scheme_end = url.find("://");
  if (scheme_end == std::string_view::npos) return std::string(url);
  size_t auth_start = scheme_end + 3;
  size_t auth_end = url.find_first_of("/?#", auth_start);
  if (auth_end == std::string_view::npos) auth_end = url.size();
  std::string_view authority = url.substr(auth_start, auth_end - auth_start);
  size_t at = authority.rfind('@');
  if (at == std::string_view::npos) return std::string(url);
  std::string_view userinfo = authority.substr(0, at);
  size_t colon = userinfo.find(':');
  std::string masked =
      colon == std::string_view::npos ? std::string("***") : Cat(userinfo.substr(0, colon), ":***");
  return Cat(url.substr(0, auth_start), masked, url.substr(auth_start + at));
}

std::string ParseRedisUrl(std::string_view text, RedisUrl* out) {
  const std::string shown = RedactUrl(text);
  if (text.empty()) return Cat("empty URL (", kRedisExpected, ")");
  size_t scheme_end = text.find("://");
  if (scheme_end == std::string_view::npos) {
    return Cat("bad URL \"", shown, "\": no scheme (", kRedisExpected, ")");
  }
  std::string scheme(text.substr(0, scheme_end));
  std::transform(scheme.begin(), scheme.end(), scheme.begin(), Lower);
  if (scheme == "rediss") {
    return Cat("TLS URL \"", shown,
               "\" is not supported: hiredis 0.14 has no TLS support (hiredis_ssl, hiredis >= "
               "1.0); use redis:// on a trusted network or through a TLS tunnel (",
               kRedisExpected, ")");
  }
  if (scheme != "redis") {
    return Cat("bad URL \"", shown, "\": scheme \"", scheme, "://\" (", kRedisExpected, ")");
  }
  std::string_view rest = text.substr(scheme_end + 3);
  if (rest.find_first_of("?#") != std::string_view::npos) {
    return Cat("bad URL \"", shown, "\": query or fragment (", kRedisExpected, ")");
  }
  size_t slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  std::string_view path =
      slash == std::string_view::npos ? std::string_view() : rest.substr(slash + 1);
  RedisUrl url;
  size_t at = authority.rfind('@');
  if (at != std::string_view::npos) {
    std::string_view userinfo = authority.substr(0, at);
    authority = authority.substr(at + 1);
    size_t colon = userinfo.find(':');
    if (colon == std::string_view::npos) {
      return Cat("bad URL \"", shown, "\": credentials without ':' (", kRedisExpected, ")");
    }
    std::string user, password;
    if (!PercentDecode(userinfo.substr(0, colon), &user) ||
        !PercentDecode(userinfo.substr(colon + 1), &password)) {
      return Cat("bad URL \"", shown, "\": bad %-escape in the credentials (", kRedisExpected, ")");
    }
    if (!user.empty()) url.username = user;
    if (!password.empty()) url.password = password;
  }
  std::string_view host, port_text;
  bool ipv6 = false, has_colon = false;
  if (!SplitHostPort(authority, &host, &port_text, &ipv6, &has_colon) || !ValidHost(host, ipv6)) {
    return Cat("bad host in URL \"", shown, "\" (", kRedisExpected, ")");
  }
  url.host = std::string(host);
  if (has_colon) {
    int64_t port = 0;
    if (!ParseUint(port_text, 65535, &port) || port == 0) {
      return Cat("bad port in URL \"", shown, "\" (", kRedisExpected, ", port 1-65535)");
    }
    url.port = static_cast<int>(port);
  }
  if (!path.empty()) {
    int64_t db = 0;
    if (!ParseUint(path, 1 << 20, &db)) {
      return Cat("bad database number in URL \"", shown, "\" (", kRedisExpected,
                 ", db a number >= 0)");
    }
    url.db = static_cast<int>(db);
  }
  *out = std::move(url);
  return {};
}

std::string ParseHttpUrl(std::string_view text, std::string* normalized) {
  const std::string shown = RedactUrl(text);
  if (text.empty()) return Cat("empty URL (", kHttpExpected, ")");
  size_t scheme_end = text.find("://");
  if (scheme_end == std::string_view::npos) {
    return Cat("bad URL \"", shown, "\": no scheme (", kHttpExpected, ")");
  }
  std::string scheme(text.substr(0, scheme_end));
  std::transform(scheme.begin(), scheme.end(), scheme.begin(), Lower);
  if (scheme != "http" && scheme != "https") {
    return Cat("bad URL \"", shown, "\": scheme \"", scheme, "://\" (", kHttpExpected, ")");
  }
  std::string_view rest = text.substr(scheme_end + 3);
  if (rest.find_first_of("?#") != std::string_view::npos) {
    return Cat("bad URL \"", shown, "\": query or fragment (", kHttpExpected, ")");
  }
  size_t slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  if (authority.find('@') != std::string_view::npos) {
    return Cat("bad URL \"", shown, "\": credentials in the URL (", kHttpExpected,
               "; put them in es.user / es.password or es.api_key)");
  }
  std::string_view host, port_text;
  bool ipv6 = false, has_colon = false;
  if (!SplitHostPort(authority, &host, &port_text, &ipv6, &has_colon) || !ValidHost(host, ipv6)) {
    return Cat("bad host in URL \"", shown, "\" (", kHttpExpected, ")");
  }
  if (has_colon) {
    int64_t port = 0;
    if (!ParseUint(port_text, 65535, &port) || port == 0) {
      return Cat("bad port in URL \"", shown, "\" (", kHttpExpected, ", port 1-65535)");
    }
  }
  std::string_view path = slash == std::string_view::npos ? std::string_view() : rest.substr(slash);
  for (char c : path) {
    if (static_cast<unsigned char>(c) <= ' ') {
      return Cat("bad path in URL \"", shown, "\": blank or control character (", kHttpExpected,
                 ")");
    }
  }
  std::string norm = Cat(scheme, "://", authority, path);
  while (norm.size() > scheme.size() + 3 + authority.size() && norm.back() == '/') norm.pop_back();
  *normalized = std::move(norm);
  return {};
}

std::string CheckTopicName(std::string_view name) {
  constexpr std::string_view kExpected = "expected 1-249 characters of A-Z a-z 0-9 . _ -";
  if (name.empty()) return Cat("empty topic name (", kExpected, ")");
  if (name.size() > 249) return Cat("topic name longer than 249 characters (", kExpected, ")");
  if (name == "." || name == "..") return Cat("topic name \"", name, "\" (", kExpected, ")");
  for (char c : name) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-')) {
      return Cat("bad topic name \"", name, "\" (", kExpected, ")");
    }
  }
  return {};
}

std::string CheckIndexPrefix(std::string_view prefix) {
  constexpr std::string_view kExpected =
      "expected a lowercase Elasticsearch index name prefix without \\ / * ? \" < > | , # : or "
      "blanks, not starting with - _ +";
  if (prefix.empty()) return Cat("empty index prefix (", kExpected, ")");
  if (prefix.size() > 200) return Cat("index prefix longer than 200 bytes (", kExpected, ")");
  if (prefix.front() == '-' || prefix.front() == '_' || prefix.front() == '+') {
    return Cat("bad index prefix \"", prefix, "\" (", kExpected, ")");
  }
  for (char c : prefix) {
    if (std::isupper(static_cast<unsigned char>(c)) ||
        std::string_view("\\/*?\"<>|,#: \t").find(c) != std::string_view::npos ||
        static_cast<unsigned char>(c) < ' ') {
      return Cat("bad index prefix \"", prefix, "\" (", kExpected, ")");
    }
  }
  return {};
}

std::string CheckTableName(std::string_view name) {
  constexpr std::string_view kExpected = "expected 1-64 characters of A-Z a-z 0-9 _";
  if (name.empty() || name.size() > 64)
    return Cat("bad table name \"", name, "\" (", kExpected, ")");
  for (char c : name) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_')) {
      return Cat("bad table name \"", name, "\" (", kExpected, ")");
    }
  }
  return {};
}

int EditDistance(std::string_view a, std::string_view b) {
  // Optimal string alignment: insertions, deletions, substitutions and adjacent transpositions.
  const size_t n = a.size(), m = b.size();
  std::vector<std::vector<int>> d(n + 1, std::vector<int>(m + 1));
  for (size_t i = 0; i <= n; ++i) d[i][0] = static_cast<int>(i);
  for (size_t j = 0; j <= m; ++j) d[0][j] = static_cast<int>(j);
  for (size_t i = 1; i <= n; ++i) {
    for (size_t j = 1; j <= m; ++j) {
      int cost = Lower(a[i - 1]) == Lower(b[j - 1]) ? 0 : 1;
      d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost});
      if (i > 1 && j > 1 && Lower(a[i - 1]) == Lower(b[j - 2]) &&
          Lower(a[i - 2]) == Lower(b[j - 1])) {
        d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
      }
    }
  }
  return d[n][m];
}

std::optional<std::string> NearestName(std::string_view name,
                                       const std::vector<std::string>& candidates) {
  std::optional<std::string> best;
  int best_distance = 0;
  for (const std::string& c : candidates) {
    int d = EditDistance(name, c);
    // A typo: at most 2 edits, and at most a third of the longer name (so "ab" never suggests
    // "xy").
    int limit = std::min<int>(2, static_cast<int>(std::max(name.size(), c.size())) / 3);
    if (limit < 1) limit = 1;
    if (d <= limit && (!best || d < best_distance)) {
      best = c;
      best_distance = d;
    }
  }
  return best;
}

std::vector<std::string> SplitCommaList(std::string_view text) {
  std::vector<std::string> out;
  size_t start = 0;
  while (true) {
    size_t comma = text.find(',', start);
    std::string_view item = text.substr(
        start, comma == std::string_view::npos ? std::string_view::npos : comma - start);
    out.emplace_back(Trim(item));
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  return out;
}

std::string QuoteToml(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\r':
        out += "\\r";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
          static constexpr char kHex[] = "0123456789ABCDEF";
          out += "\\u00";
          out += kHex[(c >> 4) & 0xf];
          out += kHex[c & 0xf];
        } else {
          out += c;
        }
    }
  }
  out += '"';
  return out;
}

}  // namespace rtdw::config_internal
