#include "tools/es_lite/server.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <map>
#include <thread>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "httplib.h"
#include "rapidjson/prettywriter.h"
#include "tools/es_lite/api.h"

namespace rtdw::eslite {
namespace {

using Clock = std::chrono::steady_clock;

// Shuts the socket of this request's connection down, so the client gets no answer.
bool AbortConnection(const httplib::Request& req) {
  DIR* dir = opendir("/proc/self/fd");
  if (dir == nullptr) return false;
  bool done = false;
  while (dirent* e = readdir(dir)) {
    int fd = 0;
    if (!absl::SimpleAtoi(e->d_name, &fd) || fd < 3 || fd == dirfd(dir)) continue;
    sockaddr_storage peer{};
    socklen_t len = sizeof(peer);
    if (getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &len) != 0) continue;
    int port = -1;
    char host[INET6_ADDRSTRLEN] = {0};
    if (peer.ss_family == AF_INET) {
      auto* in = reinterpret_cast<sockaddr_in*>(&peer);
      port = ntohs(in->sin_port);
      inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
    } else if (peer.ss_family == AF_INET6) {
      auto* in6 = reinterpret_cast<sockaddr_in6*>(&peer);
      port = ntohs(in6->sin6_port);
      inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
    } else {
      continue;
    }
    if (port != req.remote_port || req.remote_addr != host) continue;
    if (req.local_port > 0) {
      sockaddr_storage self{};
      socklen_t slen = sizeof(self);
      if (getsockname(fd, reinterpret_cast<sockaddr*>(&self), &slen) == 0) {
        int local = self.ss_family == AF_INET
                        ? ntohs(reinterpret_cast<sockaddr_in*>(&self)->sin_port)
                        : ntohs(reinterpret_cast<sockaddr_in6*>(&self)->sin6_port);
        if (local != req.local_port) continue;
      }
    }
    shutdown(fd, SHUT_RDWR);
    done = true;
    break;
  }
  closedir(dir);
  return done;
}

std::string Pretty(const std::string& body) {
  rapidjson::Document doc;
  if (ParseJson(body, &doc)) return body;
  rapidjson::StringBuffer buf;
  rapidjson::PrettyWriter<rapidjson::StringBuffer> w(buf);
  w.SetIndent(' ', 2);
  doc.Accept(w);
  return std::string(buf.GetString(), buf.GetSize()) + "\n";
}
bool HasProductHeader(Identity id) { return id == Identity::kEs8 || id == Identity::kEs7; }

bool AcceptedMediaType(absl::string_view ct, Identity identity, std::string* error) {
  std::string lower = absl::AsciiStrToLower(ct);
  absl::string_view base = lower;
  base = base.substr(0, base.find(';'));
  base = absl::StripAsciiWhitespace(base);
  if (base == "application/json" || base == "application/x-ndjson") return true;
  const bool vendor_types = identity == Identity::kEs8 || identity == Identity::kEs7;
  if (vendor_types && (base == "application/vnd.elasticsearch+json" ||
                       base == "application/vnd.elasticsearch+x-ndjson")) {
    size_t p = lower.find("compatible-with=");
    if (p == std::string::npos) {
      *error = absl::StrCat("Invalid media-type value on headers [Content-Type]: ", ct);
      return false;
    }
    std::string v(absl::StripAsciiWhitespace(lower.substr(p + 16)));
    if (v != "7" && (v != "8" || identity != Identity::kEs8)) {
      *error = absl::StrCat(
          "A compatible version is required on both Content-Type and Accept "
          "headers if either one has requested a compatible version. Accept=null"
          ", Content-Type=",
          ct);
      return false;
    }
    return true;
  }
  *error = absl::StrCat("Content-Type header [", ct, "] is not supported");
  return false;
}

}  // namespace

// ---------------------------------------------------------------- EsLiteServer

std::optional<Identity> ParseIdentity(const std::string& name) {
  static const std::pair<const char*, Identity> kNames[] = {
      {"es-8", Identity::kEs8},
      {"es-7", Identity::kEs7},
      {"es-7.10", Identity::kEs710},
      {"opensearch-2", Identity::kOpenSearch2},
      {"opensearch-1", Identity::kOpenSearch1},
      {"es-6", Identity::kEs6},
      {"other", Identity::kOther}};
  for (const auto& [n, id] : kNames) {
    if (name == n) return id;
  }
  return std::nullopt;
}

const char* IdentityNames() {
  return "es-8, es-7, es-7.10, opensearch-2, opensearch-1, es-6, other";
}

EsLiteServer::EsLiteServer(Store* store, Faults* faults, const ServerOptions& options)
    : store_(store), faults_(faults), options_(options) {
  if (!options_.tls_cert_file.empty() || !options_.tls_key_file.empty()) {
    auto ssl = std::make_unique<httplib::SSLServer>(options_.tls_cert_file.c_str(),
                                                    options_.tls_key_file.c_str());
    if (!ssl->is_valid()) {
      error_ = absl::StrCat("cannot load the TLS certificate ", options_.tls_cert_file, " and key ",
                            options_.tls_key_file);
    }
    http_ = std::move(ssl);
  } else {
    http_ = std::make_unique<httplib::Server>();
  }
  const int threads = std::max(4, options_.threads);
  http_->new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  http_->set_payload_max_length(options_.max_content_length);
  http_->set_tcp_nodelay(true);  // headers and body go in separate writes
  http_->set_keep_alive_max_count(1000000);
  http_->set_keep_alive_timeout(30);
  http_->set_read_timeout(120);
  http_->set_write_timeout(120);
  if (HasProductHeader(options_.identity)) {
    http_->set_default_headers({{"X-Elastic-Product", "Elasticsearch"}});
  } else {
    http_->set_default_headers({});
  }
  // cpp-httplib calls the logger once the answer is written: until then a stop must not shut the
  // connection down (the answer would be lost).
  http_->set_logger([this](const httplib::Request&, const httplib::Response&) { unwritten_--; });
  auto handler = [this](const httplib::Request& req, httplib::Response& res) {
    in_flight_++;
    unwritten_++;
    Reply r = Handle(req);
    in_flight_--;
    if (r.abort_connection) {
      AbortConnection(req);
      res.status = 500;
      return;
    }
    res.status = r.status;
    for (const auto& [name, value] : r.headers) res.set_header(name.c_str(), value);
    std::string ct = r.content_type;
    if (ct == "application/json") {
      std::string accept = absl::AsciiStrToLower(req.get_header_value("Accept"));
      std::string sent = absl::AsciiStrToLower(req.get_header_value("Content-Type"));
      if (absl::StrContains(accept, "vnd.elasticsearch") ||
          absl::StrContains(sent, "vnd.elasticsearch")) {
        ct = options_.identity == Identity::kEs8
                 ? "application/vnd.elasticsearch+json;compatible-with=8"
                 : "application/vnd.elasticsearch+json;compatible-with=7";
      }
      if (req.has_param("pretty") && !r.body.empty()) r.body = Pretty(r.body);
      // With the charset parameter cpp-httplib does not compress the answer: its brotli at the
      // highest quality costs far more than loopback bandwidth.
      if (ct == "application/json") ct = "application/json; charset=UTF-8";
    }
    if (req.method == "HEAD") {
      res.set_header("Content-Type", ct);
      res.set_header("Content-Length", std::to_string(r.body.size()));
      return;
    }
    res.set_content(r.body, ct);
    if (options_.log_requests) {
      fprintf(stderr, "rtdw-es-lite: %s %s -> %d\n", req.method.c_str(), req.path.c_str(),
              r.status);
    }
  };
  // A request without Content-Length and without chunked Transfer-Encoding has no body (RFC 9112
  // 6.3; what Elasticsearch does too). cpp-httplib would read such a body until the client closes
  // the connection, which hangs a client that waits for the answer: answer it here, before the
  // library reads anything, as a request with an empty body.
  http_->set_pre_routing_handler([handler](const httplib::Request& req, httplib::Response& res) {
    const bool may_have_body = req.method == "POST" || req.method == "PUT" ||
                               req.method == "PATCH" || req.method == "DELETE";
    if (!may_have_body || req.has_header("Content-Length") || req.has_header("Transfer-Encoding")) {
      return httplib::Server::HandlerResponse::Unhandled;
    }
    handler(req, res);
    return httplib::Server::HandlerResponse::Handled;
  });
  // cpp-httplib answers a body over the payload limit with a bare 413 (it reads and drops the
  // body, so the connection stays usable): give it the ES error body.
  const size_t max_content_length = options_.max_content_length;
  http_->set_error_handler(httplib::Server::HandlerWithResponse(
      [max_content_length](const httplib::Request& req, httplib::Response& res) {
        if (res.status != 413 || !res.body.empty())
          return httplib::Server::HandlerResponse::Unhandled;
        EsError e;
        e.status = 413;
        e.type = "request_entity_too_large_exception";
        e.reason =
            absl::StrCat("request body of ", req.get_header_value("Content-Length"),
                         " bytes exceeds http.max_content_length [", max_content_length, "]");
        res.set_content(e.Body(), "application/json; charset=UTF-8");
        return httplib::Server::HandlerResponse::Handled;
      }));
  http_->Get("/.*", handler);
  http_->Post("/.*", handler);
  http_->Put("/.*", handler);
  http_->Delete("/.*", handler);
  http_->Patch("/.*", handler);
  http_->set_exception_handler(
      [](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
        std::string what = "unknown";
        try {
          if (ep) std::rethrow_exception(ep);
        } catch (const std::exception& e) {
          what = e.what();
        } catch (...) {
        }
        EsError e;
        e.status = 500;
        e.type = "exception";
        e.reason = what;
        res.status = 500;
        res.set_content(e.Body(), "application/json; charset=UTF-8");
      });
}

EsLiteServer::~EsLiteServer() = default;

bool EsLiteServer::valid() const { return error_.empty() && http_->is_valid(); }

std::optional<EsLiteServer::Reply> EsLiteServer::CheckAuth(const httplib::Request& req) const {
  if (options_.basic_auth.empty() && options_.api_key.empty()) return std::nullopt;
  std::string given = req.get_header_value("Authorization");
  absl::string_view scheme(given);
  scheme = scheme.substr(0, scheme.find(' '));
  absl::string_view credential = absl::StripAsciiWhitespace(
      absl::string_view(given).substr(std::min(given.size(), scheme.size() + 1)));
  if (!options_.basic_auth.empty() && absl::EqualsIgnoreCase(scheme, "Basic") &&
      credential == absl::Base64Escape(options_.basic_auth)) {
    return std::nullopt;
  }
  if (!options_.api_key.empty() && absl::EqualsIgnoreCase(scheme, "ApiKey") &&
      credential == options_.api_key) {
    return std::nullopt;
  }
  EsError e;
  e.status = 401;
  e.type = "security_exception";
  e.reason = given.empty() ? absl::StrCat("missing authentication credentials for REST request [",
                                          req.path, "]")
                           : absl::StrCat(
                                 "unable to authenticate with provided credentials for REST "
                                 "request [",
                                 req.path, "]");
  Reply r = ErrorReply(e);
  r.headers.emplace_back("WWW-Authenticate", "Basic realm=\"security\" charset=\"UTF-8\"");
  r.headers.emplace_back("WWW-Authenticate", "ApiKey");
  return r;
}

int EsLiteServer::Bind(const std::string& host, int port) {
  if (port == 0) return http_->bind_to_any_port(host);
  return http_->bind_to_port(host, port) ? port : -1;
}

bool EsLiteServer::Listen() { return http_->listen_after_bind(); }

void EsLiteServer::Stop() {
  http_->stop();
  auto deadline = Clock::now() + std::chrono::seconds(5);
  while (in_flight_.load() > 0 && Clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  // Handled requests whose answers are still being written (bounded: an aborted connection's
  // answer may never be).
  deadline = std::min(deadline, Clock::now() + std::chrono::seconds(1));
  while (unwritten_.load() > 0 && Clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  // Idle keep-alive connections would hold their worker threads until the keep-alive timeout.
  DIR* dir = opendir("/proc/self/fd");
  if (dir == nullptr) return;
  while (dirent* e = readdir(dir)) {
    int fd = 0;
    if (!absl::SimpleAtoi(e->d_name, &fd) || fd < 3 || fd == dirfd(dir)) continue;
    sockaddr_storage peer{};
    socklen_t len = sizeof(peer);
    if (getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &len) == 0) shutdown(fd, SHUT_RDWR);
  }
  closedir(dir);
}

EsLiteServer::Reply EsLiteServer::Handle(const httplib::Request& req) {
  if (auto denied = CheckAuth(req)) return *denied;
  const bool fault_free = absl::StartsWith(req.path, "/_rtdw/");
  if (!fault_free) {
    FaultConfig f = faults_->config();
    if (f.latency_ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(f.latency_ms));
    if (faults_->Roll(f.close_after_read_fraction)) {
      faults_->counters().closed_after_read++;
      Reply r;
      r.abort_connection = true;
      return r;
    }
    if (faults_->Roll(f.request_503_fraction)) {
      faults_->counters().requests_503++;
      EsError e;
      e.status = 503;
      e.type = "unavailable_shards_exception";
      e.reason = "[rtdw-es-lite fault injection] primary shard is not active";
      return ErrorReply(e);
    }
  }
  if (!req.body.empty()) {
    std::string error;
    std::string ct = req.get_header_value("Content-Type");
    if (ct.empty()) return SimpleError(406, "Content-Type header is missing");
    if (!AcceptedMediaType(ct, options_.identity, &error)) {
      if (absl::StartsWith(error, "Content-Type header")) return SimpleError(406, error);
      return ErrorReply(BadRequest("media_type_header_exception", error));
    }
  }
  Api api(store_, faults_, options_);
  Reply reply = api.Route(req);
  if (!fault_free) {
    const FaultConfig f = faults_->config();
    if (faults_->Roll(f.close_after_write_fraction)) {
      faults_->counters().closed_after_write++;
      reply.abort_connection = true;
    } else if (f.answer_late_ms > 0 && faults_->Roll(f.answer_late_fraction)) {
      // Applied and synced above; the answer comes late (after the client's timeout, if set so).
      faults_->counters().answered_late++;
      std::this_thread::sleep_for(std::chrono::milliseconds(f.answer_late_ms));
    }
  }
  return reply;
}

}  // namespace rtdw::eslite
