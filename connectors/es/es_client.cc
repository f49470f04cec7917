#include "connectors/es/es_client.h"

#include <curl/curl.h>

#include <algorithm>
#include <cstdio>
#include <map>
#include <mutex>
#include <optional>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "connectors/es/json_util.h"
#include "core/status_util.h"

namespace rtdw {

using es_internal::AppendJsonString;
using es_internal::ParseJson;
using es_internal::StringMember;
using es_internal::ToJson;
using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

namespace {

std::once_flag g_curl_init;

// One HTTP exchange handed to the transport.
struct Exchange {
  // Request.
  std::string method;
  std::string path;  // starts with '/', may carry a query string
  std::string_view body;
  std::string content_type;
  // Outcome.
  CURLcode code = CURLE_OK;
  std::string error;  // transport error text when code != CURLE_OK
  int status = 0;
  std::string response;
  std::string product;  // X-Elastic-Product
  bool overflow = false;
  bool transport_ok() const { return code == CURLE_OK && !overflow; }
};

struct WriteSink {
  std::string* out;
  size_t cap;
  bool* overflow;
};

size_t WriteCallback(char* data, size_t size, size_t nmemb, void* user) {
  auto* sink = static_cast<WriteSink*>(user);
  size_t n = size * nmemb;
  if (sink->out->size() + n > sink->cap) {
    *sink->overflow = true;
    return 0;  // aborts the transfer
  }
  sink->out->append(data, n);
  return n;
}

// Keeps the X-Elastic-Product header of an answer (the only header rtdw reads).
size_t HeaderCallback(char* data, size_t size, size_t nmemb, void* user) {
  const size_t n = size * nmemb;
  std::string_view line(data, n);
  constexpr std::string_view kName = "x-elastic-product:";
  if (line.size() > kName.size() &&
      absl::EqualsIgnoreCase(ToAbsl(line.substr(0, kName.size())), ToAbsl(kName))) {
    auto* out = static_cast<std::string*>(user);
    *out = std::string(absl::StripAsciiWhitespace(ToAbsl(line.substr(kName.size()))));
  }
  return n;
}

bool IsNodeFailure(CURLcode code) {
  return code == CURLE_COULDNT_CONNECT || code == CURLE_COULDNT_RESOLVE_HOST ||
         code == CURLE_OPERATION_TIMEDOUT || code == CURLE_SSL_CONNECT_ERROR;
}

bool IsTransientStatus(int status) {
  return status == 429 || status == 408 || status == 502 || status == 503 || status == 504;
}

}  // namespace

// ---------------------------------------------------------------- Transport (curl multi)

class EsClient::Transport {
 public:
  Transport(const EsClientOptions& options, std::function<void(std::string_view)> warn)
      : options_(options), warn_(std::move(warn)) {}

  ~Transport() {
    for (CURL* e : idle_) curl_easy_cleanup(e);
    if (multi_ != nullptr) curl_multi_cleanup(multi_);
  }

  absl::Status Init() {
    multi_ = curl_multi_init();
    if (multi_ == nullptr) return absl::InternalError("curl_multi_init failed");
    curl_multi_setopt(multi_, CURLMOPT_MAXCONNECTS,
                      static_cast<long>(std::max(4, options_.max_bulks_in_flight * 2)));
    for (const auto& url : options_.urls) {
      std::string base = url;
      while (!base.empty() && base.back() == '/') base.pop_back();
      std::string lower = absl::AsciiStrToLower(base);
      if (!absl::StartsWith(lower, "http://") && !absl::StartsWith(lower, "https://")) {
        return absl::InvalidArgumentError(
            absl::StrCat("ES url must start with http:// or https://: ", url));
      }
      nodes_.push_back({base, Clock::time_point::min()});
    }
    if (nodes_.empty()) return absl::InvalidArgumentError("no ES url given");
    return absl::OkStatus();
  }

  // Runs every exchange, at most `parallel` at once. Cancelled (transfers abandoned) when
  // stop() becomes true; it is checked at least every 20 ms.
  absl::Status Run(std::span<Exchange* const> exchanges, int parallel, const StopCondition& stop) {
    struct Active {
      Exchange* ex = nullptr;
      CURL* easy = nullptr;
      curl_slist* headers = nullptr;
      size_t node = 0;
      WriteSink sink;
      char errbuf[CURL_ERROR_SIZE];
    };
    parallel = std::max(1, parallel);
    std::vector<std::unique_ptr<Active>> active;
    size_t next = 0;
    size_t done = 0;
    auto finish = [&](Active* a, CURLcode code) {
      Exchange* ex = a->ex;
      ex->code = code;
      long status = 0;
      curl_easy_getinfo(a->easy, CURLINFO_RESPONSE_CODE, &status);
      ex->status = static_cast<int>(status);
      if (code != CURLE_OK) {
        ex->error = a->errbuf[0] != '\0' ? std::string(a->errbuf) : curl_easy_strerror(code);
        if (ex->overflow) {
          ex->error = absl::StrCat("response larger than max_response_bytes (",
                                   options_.max_response_bytes, " bytes): refused");
        }
        if (IsNodeFailure(code)) MarkDead(a->node, ex->error);
      }
      curl_multi_remove_handle(multi_, a->easy);
      curl_slist_free_all(a->headers);
      idle_.push_back(a->easy);
      ++done;
    };
    auto abandon_all = [&] {
      for (auto& a : active) {
        if (a == nullptr) continue;
        curl_multi_remove_handle(multi_, a->easy);
        curl_slist_free_all(a->headers);
        // A half-done transfer leaves its connection in an unknown state: drop the handle.
        curl_easy_cleanup(a->easy);
      }
      active.clear();
    };
    while (done < exchanges.size()) {
      if (stop && stop()) {
        abandon_all();
        return absl::CancelledError("cancelled while requests were in flight");
      }
      // Start transfers up to the parallelism.
      size_t running = 0;
      for (auto& a : active) running += a != nullptr;
      while (running < static_cast<size_t>(parallel) && next < exchanges.size()) {
        auto a = std::make_unique<Active>();
        a->ex = exchanges[next++];
        a->ex->response.clear();
        a->ex->overflow = false;
        a->ex->error.clear();
        a->errbuf[0] = '\0';
        a->node = PickNode();
        a->easy = Acquire();
        if (a->easy == nullptr) return absl::InternalError("curl_easy_init failed");
        Setup(a.get()->easy, a->ex, nodes_[a->node].base, &a->headers, &a->sink, a->errbuf);
        curl_easy_setopt(a->easy, CURLOPT_PRIVATE, a.get());
        CURLMcode mc = curl_multi_add_handle(multi_, a->easy);
        if (mc != CURLM_OK) {
          return absl::InternalError(
              absl::StrCat("curl_multi_add_handle: ", curl_multi_strerror(mc)));
        }
        active.push_back(std::move(a));
        ++running;
      }
      int still_running = 0;
      curl_multi_perform(multi_, &still_running);
      int msgs = 0;
      while (CURLMsg* msg = curl_multi_info_read(multi_, &msgs)) {
        if (msg->msg != CURLMSG_DONE) continue;
        Active* a = nullptr;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, reinterpret_cast<char**>(&a));
        CURLcode code = msg->data.result;
        finish(a, code);
        for (auto& slot : active) {
          if (slot.get() == a) slot.reset();
        }
      }
      active.erase(std::remove(active.begin(), active.end(), nullptr), active.end());
      if (done >= exchanges.size()) break;
      if (!active.empty()) curl_multi_poll(multi_, nullptr, 0, 20, nullptr);
    }
    return absl::OkStatus();
  }

  size_t node_count() const { return nodes_.size(); }

 private:
  struct Node {
    std::string base;
    Clock::time_point dead_until;
  };

  size_t PickNode() {
    const auto now = Clock::now();
    for (size_t i = 0; i < nodes_.size(); ++i) {
      size_t n = (next_ + i) % nodes_.size();
      if (nodes_[n].dead_until <= now) {
        next_ = n + 1;
        return n;
      }
    }
    // All are being skipped: the one that comes back first.
    size_t best = 0;
    for (size_t n = 1; n < nodes_.size(); ++n) {
      if (nodes_[n].dead_until < nodes_[best].dead_until) best = n;
    }
    next_ = best + 1;
    return best;
  }

  void MarkDead(size_t node, std::string_view why) {
    if (nodes_.size() > 1) {
      warn_(absl::StrCat("ES node ", nodes_[node].base, " failed (", ToAbsl(why),
                         "); skipping it for ", options_.node_retry_after.count(), " ms"));
    }
    nodes_[node].dead_until = Clock::now() + options_.node_retry_after;
  }

  CURL* Acquire() {
    if (!idle_.empty()) {
      CURL* e = idle_.back();
      idle_.pop_back();
      curl_easy_reset(e);
      return e;
    }
    return curl_easy_init();
  }

  void Setup(CURL* e, Exchange* ex, const std::string& base, curl_slist** headers, WriteSink* sink,
             char* errbuf) {
    std::string url = base + ex->path;
    curl_easy_setopt(e, CURLOPT_URL, url.c_str());  // copied by curl
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, static_cast<long>(options_.request_timeout.count()));
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS,
                     static_cast<long>(options_.connect_timeout.count()));
    if (!options_.user.empty()) {
      curl_easy_setopt(e, CURLOPT_HTTPAUTH, CURLAUTH_BASIC);
      curl_easy_setopt(e, CURLOPT_USERNAME, options_.user.c_str());
      curl_easy_setopt(e, CURLOPT_PASSWORD, options_.password.c_str());
    }
    if (!options_.ca_file.empty()) curl_easy_setopt(e, CURLOPT_CAINFO, options_.ca_file.c_str());
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, options_.verify_tls ? 1L : 0L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, options_.verify_tls ? 2L : 0L);

    curl_slist* h = nullptr;
    h = curl_slist_append(h, "Accept: application/json");
    h = curl_slist_append(h, "Expect:");  // no 100-continue round trip
    if (!options_.api_key.empty()) {
      h = curl_slist_append(h, absl::StrCat("Authorization: ApiKey ", options_.api_key).c_str());
    }
    if (ex->method == "HEAD") {
      curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
    } else if (ex->method == "GET" && ex->body.empty()) {
      curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
    } else {
      if (ex->method != "POST") curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, ex->method.c_str());
      if (!ex->body.empty() || ex->method == "POST" || ex->method == "PUT") {
        h = curl_slist_append(h, absl::StrCat("Content-Type: ", ex->content_type).c_str());
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, ex->body.data());
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(ex->body.size()));
      }
    }
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
    *headers = h;
    sink->out = &ex->response;
    sink->cap = options_.max_response_bytes;
    sink->overflow = &ex->overflow;
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, WriteCallback);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, sink);
    ex->product.clear();
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, HeaderCallback);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, &ex->product);
  }

  const EsClientOptions& options_;
  std::function<void(std::string_view)> warn_;
  CURLM* multi_ = nullptr;
  std::vector<CURL*> idle_;
  std::vector<Node> nodes_;
  size_t next_ = 0;
};

// ---------------------------------------------------------------- helpers

std::vector<size_t> BulkResult::FailedPositions() const {
  std::vector<size_t> out;
  for (size_t i = 0; i < items.size(); ++i) {
    if (!items[i].ok) out.push_back(i);
  }
  return out;
}

std::string EscapePathSegment(std::string_view segment, bool keep_pattern_chars) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(segment.size());
  for (char ch : segment) {
    auto c = static_cast<unsigned char>(ch);
    if (absl::ascii_isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' ||
        (keep_pattern_chars && (c == ',' || c == '*'))) {
      out.push_back(ch);
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

absl::Status StatusFromEsResponse(const HttpResponse& r, std::string_view what) {
  if (r.status >= 200 && r.status < 300) return absl::OkStatus();
  std::string type;
  std::string reason;
  rapidjson::Document doc;
  if (ParseJson(r.body, &doc).ok() && doc.IsObject()) {
    auto err = doc.FindMember("error");
    if (err != doc.MemberEnd()) {
      if (err->value.IsObject()) {
        type = std::string(StringMember(err->value, "type"));
        reason = std::string(StringMember(err->value, "reason"));
      } else if (err->value.IsString()) {
        reason = err->value.GetString();
      }
    }
  }
  if (type.empty() && reason.empty()) reason = r.body.substr(0, 300);
  std::string msg = absl::StrCat(ToAbsl(what), ": HTTP ", r.status, type.empty() ? "" : " ", type,
                                 reason.empty() ? "" : ": ", reason);
  switch (r.status) {
    case 400:
      return absl::InvalidArgumentError(msg);
    case 401:
      return absl::UnauthenticatedError(msg);
    case 403:
      return absl::PermissionDeniedError(msg);
    case 404:
      return absl::NotFoundError(msg);
    case 409:
      return absl::AlreadyExistsError(msg);
    case 429:
      return absl::ResourceExhaustedError(msg);
    default:
      if (r.status >= 500) return absl::UnavailableError(msg);
      return absl::UnknownError(msg);
  }
}

// ---------------------------------------------------------------- EsClient

EsClient::EsClient(const EsClientOptions& options) : options_(options) {}

EsClient::~EsClient() = default;

absl::StatusOr<std::unique_ptr<EsClient>> EsClient::Create(const EsClientOptions& options) {
  std::call_once(g_curl_init, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
  RTDW_RETURN_IF_ERROR(ValidateBackoffOptions(options.backoff));
  if (!options.api_key.empty() && !options.user.empty()) {
    return absl::InvalidArgumentError("ES api_key and user/password are exclusive");
  }
  if (options.bulk_max_bytes < 1024) {
    return absl::InvalidArgumentError("ES bulk_max_bytes must be at least 1024");
  }
  std::unique_ptr<EsClient> client(new EsClient(options));
  if (client->options_.max_bulks_in_flight < 1) client->options_.max_bulks_in_flight = 1;
  EsClient* raw = client.get();
  client->transport_ = std::make_unique<Transport>(client->options_,
                                                   [raw](std::string_view msg) { raw->Warn(msg); });
  absl::MutexLock lock(&client->mu_);  // not shared yet; the annotations expect it
  RTDW_RETURN_IF_ERROR(client->transport_->Init());
  return client;
}

void EsClient::Warn(std::string_view message) const {
  if (options_.warn) {
    options_.warn(message);
  } else {
    fprintf(stderr, "rtdw es: warning: %.*s\n", static_cast<int>(message.size()), message.data());
  }
}

EsClientStats EsClient::stats() const {
  EsClientStats s;
  s.requests = requests_.load();
  s.request_errors = request_errors_.load();
  s.bulk_items_delivered = delivered_.load();
  s.bulk_items_failed = failed_.load();
  s.bulk_items_retried = retried_.load();
  s.bulk_retry_rounds = retry_rounds_.load();
  s.responses_too_large = too_large_.load();
  return s;
}

absl::StatusOr<HttpResponse> EsClient::Perform(std::string_view method, std::string_view path,
                                               std::string_view body,
                                               std::string_view content_type) {
  absl::MutexLock lock(&mu_);
  RetryOptions retry;
  retry.backoff = options_.backoff;
  retry.max_attempts =
      1 + std::max(0, options_.read_retries) + static_cast<int>(transport_->node_count()) - 1;
  retry.stop = StopWhenSet(options_.cancel);
  retry.what = absl::StrCat(ToAbsl(method), " ", ToAbsl(path));
  // Transport failures and transient answers are retried (Unavailable); the last transient answer
  // is returned as a response once the attempts are used up.
  retry.retryable = [](const absl::Status& st) { return absl::IsUnavailable(st); };
  std::optional<HttpResponse> transient;  // of the latest attempt
  retry.on_retry = [&](const absl::Status&, std::chrono::milliseconds) {
    if (transient) ++request_errors_;  // transport failures are counted where they happen
  };
  absl::StatusOr<HttpResponse> result = RetryUntil<HttpResponse>(
      retry, [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) -> absl::StatusOr<HttpResponse> {
        Exchange ex;
        ex.method = std::string(method);
        ex.path = std::string(path);
        ex.body = body;
        ex.content_type = std::string(content_type);
        Exchange* exs[] = {&ex};
        RTDW_RETURN_IF_ERROR(transport_->Run(exs, 1, StopWhenSet(options_.cancel)));
        ++requests_;
        if (ex.overflow) {
          ++too_large_;
          if (options_.on_response_too_large) options_.on_response_too_large();
          return absl::ResourceExhaustedError(
              absl::StrCat(ToAbsl(method), " ", ToAbsl(path), ": ", ex.error));
        }
        if (!ex.transport_ok()) {
          ++request_errors_;
          transient.reset();
          return absl::UnavailableError(
              absl::StrCat(ToAbsl(method), " ", ToAbsl(path), ": ", ex.error));
        }
        if (IsTransientStatus(ex.status)) {
          transient = HttpResponse{ex.status, std::move(ex.response), std::move(ex.product)};
          return absl::UnavailableError(absl::StrCat("HTTP ", ex.status));
        }
        transient.reset();
        return HttpResponse{ex.status, std::move(ex.response), std::move(ex.product)};
      });
  if (result.ok()) return result;
  if (absl::IsUnavailable(result.status())) {
    if (transient) return std::move(*transient);
    Warn(std::string(result.status().message()));
  }
  return result;
}

std::string EsInfo::Describe() const {
  return absl::StrCat(distribution == EsDistribution::kOpenSearch ? "OpenSearch" : "Elasticsearch",
                      " ", version);
}

absl::StatusOr<EsInfo> RecognizeServer(std::string_view body, bool product_header) {
  rapidjson::Document doc;
  absl::Status st = ParseJson(body, &doc);
  if (!st.ok() || !doc.IsObject()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "GET /: not a JSON object (", ToAbsl(body.substr(0, 200)), "); ", kSupportedServers));
  }
  EsInfo info;
  info.product_header = product_header;
  info.name = std::string(StringMember(doc, "name"));
  info.cluster_name = std::string(StringMember(doc, "cluster_name"));
  info.cluster_uuid = std::string(StringMember(doc, "cluster_uuid"));
  std::string distribution, build_flavor;
  auto version = doc.FindMember("version");
  if (version != doc.MemberEnd() && version->value.IsObject()) {
    info.version = std::string(StringMember(version->value, "number"));
    distribution = std::string(StringMember(version->value, "distribution"));
    build_flavor = std::string(StringMember(version->value, "build_flavor"));
  }
  const std::string tagline(StringMember(doc, "tagline"));
  std::vector<std::string> parts = absl::StrSplit(info.version, absl::MaxSplits('.', 2));
  const bool numeric = parts.size() >= 2 && absl::SimpleAtoi(parts[0], &info.major) &&
                       absl::SimpleAtoi(parts[1], &info.minor);
  auto unsupported = [&](std::string_view what) {
    return absl::FailedPreconditionError(absl::StrCat(ToAbsl(what), "; ", kSupportedServers));
  };
  if (distribution == "opensearch") {
    info.distribution = EsDistribution::kOpenSearch;
    if (!numeric) {
      return unsupported(
          absl::StrCat("OpenSearch with no usable version.number (\"", info.version, "\")"));
    }
    if (info.major < 1 || (info.major == 1 && info.minor < 3)) {
      return unsupported(absl::StrCat("OpenSearch ", info.version, " is too old"));
    }
    if (info.major > 2)
      return unsupported(absl::StrCat("OpenSearch ", info.version, " is not supported"));
    return info;
  }
  const bool looks_es =
      product_header || tagline == "You Know, for Search" || !build_flavor.empty();
  if (!distribution.empty() || !looks_es || !numeric) {
    return unsupported(absl::StrCat(
        "the server's GET / answer is neither Elasticsearch's nor OpenSearch's (version.number \"",
        info.version, "\"", distribution.empty() ? "" : ", version.distribution \"", distribution,
        distribution.empty() ? "" : "\"", ", tagline \"", tagline, "\", ",
        product_header ? "with" : "without", " the X-Elastic-Product header)"));
  }
  info.distribution = EsDistribution::kElasticsearch;
  if (info.major < 7 || (info.major == 7 && info.minor < 10)) {
    return unsupported(absl::StrCat("Elasticsearch ", info.version, " is too old"));
  }
  if (info.major > 8) {
    return unsupported(absl::StrCat("Elasticsearch ", info.version, " is not supported (yet)"));
  }
  // Since 7.14 every Elasticsearch answer carries the product header; the official clients refuse
  // a server claiming such a version without it.
  if ((info.major > 7 || info.minor >= 14) && !product_header) {
    return unsupported(absl::StrCat("the server claims Elasticsearch ", info.version,
                                    " but its answer lacks the X-Elastic-Product: Elasticsearch "
                                    "header every Elasticsearch since 7.14 sends"));
  }
  return info;
}

absl::StatusOr<EsInfo> EsClient::Info() {
  RTDW_ASSIGN_OR_RETURN(HttpResponse r, Perform("GET", "/"));
  RTDW_RETURN_IF_ERROR(StatusFromEsResponse(r, "GET /"));
  return RecognizeServer(r.body, r.product == "Elasticsearch");
}

absl::Status EsClient::Ping() { return Info().status(); }

absl::Status EsClient::PutIndexTemplate(std::string_view name, std::string_view body_json) {
  std::string path = absl::StrCat("/_index_template/", EscapePathSegment(name));
  RTDW_ASSIGN_OR_RETURN(HttpResponse r, Perform("PUT", path, body_json));
  return StatusFromEsResponse(r, absl::StrCat("PUT ", path));
}

absl::Status EsClient::Refresh(std::string_view index_pattern) {
  std::string path = absl::StrCat("/", EscapePathSegment(index_pattern, true), "/_refresh");
  RTDW_ASSIGN_OR_RETURN(HttpResponse r, Perform("POST", path));
  return StatusFromEsResponse(r, absl::StrCat("POST ", path));
}

absl::StatusOr<uint64_t> EsClient::Count(std::string_view index_pattern,
                                         std::string_view query_json) {
  std::string path = absl::StrCat("/", EscapePathSegment(index_pattern, true), "/_count");
  std::string body;
  if (!query_json.empty()) body = absl::StrCat("{\"query\":", ToAbsl(query_json), "}");
  RTDW_ASSIGN_OR_RETURN(HttpResponse r, Perform("POST", path, body));
  RTDW_RETURN_IF_ERROR(StatusFromEsResponse(r, absl::StrCat("POST ", path)));
  rapidjson::Document doc;
  RTDW_RETURN_IF_ERROR(ParseJson(r.body, &doc));
  if (!doc.IsObject() || !doc.HasMember("count") || !doc["count"].IsUint64()) {
    return absl::DataLossError(absl::StrCat("POST ", path, ": answer without count"));
  }
  return doc["count"].GetUint64();
}

absl::StatusOr<SearchResult> EsClient::Search(std::string_view index_pattern,
                                              std::string_view body_json) {
  std::string path = absl::StrCat("/", EscapePathSegment(index_pattern, true), "/_search");
  RTDW_ASSIGN_OR_RETURN(HttpResponse r, Perform("POST", path, body_json));
  RTDW_RETURN_IF_ERROR(StatusFromEsResponse(r, absl::StrCat("POST ", path)));
  rapidjson::Document doc;
  RTDW_RETURN_IF_ERROR(ParseJson(r.body, &doc));
  if (!doc.IsObject() || !doc.HasMember("hits") || !doc["hits"].IsObject()) {
    return absl::DataLossError(absl::StrCat("POST ", path, ": answer without hits"));
  }
  SearchResult out;
  const auto& hits = doc["hits"];
  auto total = hits.FindMember("total");
  if (total != hits.MemberEnd()) {
    if (total->value.IsUint64()) {
      out.total = total->value.GetUint64();
    } else if (total->value.IsObject()) {
      auto v = total->value.FindMember("value");
      if (v != total->value.MemberEnd() && v->value.IsUint64()) out.total = v->value.GetUint64();
      out.total_is_lower_bound = StringMember(total->value, "relation") == "gte";
    }
  }
  auto list = hits.FindMember("hits");
  if (list != hits.MemberEnd() && list->value.IsArray()) {
    out.hits.reserve(list->value.Size());
    for (const auto& h : list->value.GetArray()) {
      SearchHit hit;
      hit.index = std::string(StringMember(h, "_index"));
      hit.id = std::string(StringMember(h, "_id"));
      auto src = h.FindMember("_source");
      if (src != h.MemberEnd()) hit.source = ToJson(src->value);
      auto sort = h.FindMember("sort");
      if (sort != h.MemberEnd()) hit.sort = ToJson(sort->value);
      out.hits.push_back(std::move(hit));
    }
  }
  auto aggs = doc.FindMember("aggregations");
  if (aggs != doc.MemberEnd()) out.aggregations = ToJson(aggs->value);
  return out;
}

absl::Status EsClient::ScrollAll(std::string_view index_pattern, const ScrollOptions& options,
                                 const std::function<absl::Status(const SearchHit&)>& fn) {
  if (options.sort.empty()) {
    return absl::InvalidArgumentError("ScrollAll needs a sort (search_after paging)");
  }
  std::string prefix = absl::StrCat("{\"size\":", std::max<size_t>(1, options.page_size),
                                    ",\"track_total_hits\":false,\"sort\":[");
  for (size_t i = 0; i < options.sort.size(); ++i) {
    std::string_view field = options.sort[i];
    std::string_view order = "asc";
    if (size_t colon = field.rfind(':'); colon != std::string_view::npos) {
      order = field.substr(colon + 1);
      field = field.substr(0, colon);
      if (order != "asc" && order != "desc") {
        return absl::InvalidArgumentError(absl::StrCat("bad sort order in ", options.sort[i]));
      }
    }
    if (i > 0) prefix.push_back(',');
    prefix.push_back('{');
    AppendJsonString(field, &prefix);
    absl::StrAppend(&prefix, ":{\"order\":\"", ToAbsl(order), "\"}}");
  }
  prefix.append("]");
  if (!options.query_json.empty()) absl::StrAppend(&prefix, ",\"query\":", options.query_json);
  if (!options.fetch_source) {
    prefix.append(",\"_source\":false");
  } else if (!options.source_includes.empty()) {
    prefix.append(",\"_source\":{\"includes\":[");
    for (size_t i = 0; i < options.source_includes.size(); ++i) {
      if (i > 0) prefix.push_back(',');
      AppendJsonString(options.source_includes[i], &prefix);
    }
    prefix.append("]}");
  }
  std::string after;
  while (true) {
    std::string body = prefix;
    if (!after.empty()) absl::StrAppend(&body, ",\"search_after\":", after);
    body.push_back('}');
    RTDW_ASSIGN_OR_RETURN(SearchResult page, Search(index_pattern, body));
    for (const auto& hit : page.hits) RTDW_RETURN_IF_ERROR(fn(hit));
    if (page.hits.size() < std::max<size_t>(1, options.page_size)) return absl::OkStatus();
    after = page.hits.back().sort;
    if (after.empty()) return absl::DataLossError("search answer without sort values");
  }
}

absl::StatusOr<BulkResult> EsClient::BulkBody(std::string_view ndjson, const DeliveryHooks& hooks) {
  RTDW_ASSIGN_OR_RETURN(std::vector<BulkAction> actions, ParseBulkBody(ndjson));
  RTDW_ASSIGN_OR_RETURN(BulkResult result, Bulk(actions, hooks));
  result.actions = std::move(actions);
  return result;
}

absl::StatusOr<BulkResult> EsClient::Bulk(std::span<const BulkAction> actions,
                                          const DeliveryHooks& hooks) {
  return Bulk(PreparedBulkBody::FromActions(actions), hooks);
}

absl::StatusOr<BulkResult> EsClient::Bulk(const PreparedBulkBody& body,
                                          const DeliveryHooks& hooks) {
  absl::MutexLock lock(&mu_);
  return BulkLocked(body, hooks);
}

absl::StatusOr<BulkResult> EsClient::BulkLocked(const PreparedBulkBody& body,
                                                const DeliveryHooks& hooks) {
  BulkResult result;
  result.items.resize(body.size());
  std::vector<size_t> pending(body.size());
  for (size_t i = 0; i < pending.size(); ++i) pending[i] = i;
  size_t max_bytes = options_.bulk_max_bytes;
  std::map<std::string, size_t> reasons;  // why items are retried -> how many (this round)

  // One round sends every pending item; a round that leaves items to re-send is retried.
  RetryOptions retry;
  retry.backoff = options_.backoff;
  // The caller's flag or the deadline, whichever comes first.
  const bool has_deadline = hooks.deadline != Clock::time_point::max();
  const StopCondition stop = [&hooks, has_deadline] {
    return (hooks.cancel != nullptr && hooks.cancel->load(std::memory_order_acquire)) ||
           (has_deadline && Clock::now() >= hooks.deadline);
  };
  retry.stop = stop;
  retry.what = "bulk delivery";
  bool resend = false;  // the last round left items to re-send (its error is then retryable)
  retry.retryable = [&](const absl::Status&) { return resend; };
  retry.on_retry = [&](const absl::Status&,
                       std::chrono::milliseconds delay) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    ++result.retry_rounds;
    ++retry_rounds_;
    result.retried_items += pending.size();
    retried_ += pending.size();
    BulkRetryEvent ev;
    ev.round = result.retry_rounds;
    ev.items = pending.size();
    ev.delay = delay;
    std::vector<std::string> parts;
    for (const auto& [why, n] : reasons) parts.push_back(absl::StrCat(why, " x", n));
    ev.summary = absl::StrJoin(parts, ", ");
    if (hooks.on_retry) hooks.on_retry(ev);
    auto now = Clock::now();
    if (last_retry_warning_ == Clock::time_point() ||
        now - last_retry_warning_ >= std::chrono::seconds(10)) {
      std::string held_back;
      if (held_back_warnings_ > 0) {
        held_back = absl::StrCat(" (", held_back_warnings_, " similar warnings held back)");
      }
      last_retry_warning_ = now;
      held_back_warnings_ = 0;
      Warn(absl::StrCat("bulk: re-sending ", ev.items, " of ", body.size(), " items (retry round ",
                        ev.round, ", in ", ev.delay.count(), " ms): ", ev.summary, held_back));
    } else {
      ++held_back_warnings_;
    }
  };
  auto round = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) -> absl::Status {
    resend = false;
    reasons.clear();
    if (hooks.before_request) RTDW_RETURN_IF_ERROR(hooks.before_request());
    // Split the pending items into bodies of at most max_bytes, at action boundaries. A chunk
    // of consecutive actions is a slice of the body's bytes (the first round of a stored body:
    // nothing is copied); a chunk of actions with gaps between them (a retry) is copied.
    struct Chunk {
      std::vector<size_t> items;
      std::string_view slice;  // while the chunk's actions are consecutive in the body
      std::string copy;        // once they are not
      bool copied = false;
      Exchange ex;
      size_t size() const { return copied ? copy.size() : slice.size(); }
    };
    size_t left = 0;  // bytes of the pending actions not yet in a chunk
    for (size_t i : pending) left += body.ActionBytes(i).size();
    std::vector<std::unique_ptr<Chunk>> chunks;
    for (size_t i : pending) {
      const std::string_view bytes = body.ActionBytes(i);
      if (chunks.empty() ||
          (!chunks.back()->items.empty() && chunks.back()->size() + bytes.size() > max_bytes)) {
        chunks.push_back(std::make_unique<Chunk>());
      }
      Chunk* c = chunks.back().get();
      if (c->items.empty()) {
        c->slice = bytes;
      } else if (!c->copied && c->slice.data() + c->slice.size() == bytes.data()) {
        c->slice = std::string_view(c->slice.data(), c->slice.size() + bytes.size());
      } else {
        if (!c->copied) {
          // Reserved for what is left (at most max_bytes and an action): growing it by
          // doubling copied it and touched about twice its pages (docs/BENCHMARKS.md "Issue 20").
          c->copy.reserve(std::min(left + c->slice.size(), max_bytes + 4096));
          c->copy.assign(c->slice);
          c->copied = true;
        }
        c->copy.append(bytes);
      }
      c->items.push_back(i);
      left -= bytes.size();
    }
    std::vector<Exchange*> exs;
    for (auto& c : chunks) {
      c->ex.method = "POST";
      c->ex.path = "/_bulk";
      c->ex.body = c->copied ? std::string_view(c->copy) : c->slice;
      c->ex.content_type = "application/x-ndjson";
      exs.push_back(&c->ex);
    }
    RTDW_RETURN_IF_ERROR(transport_->Run(exs, options_.max_bulks_in_flight, stop));
    result.requests += exs.size();
    requests_ += exs.size();

    std::vector<size_t> again;
    for (auto& c : chunks) {
      const Exchange& ex = c->ex;
      auto retry_all = [&](const std::string& why) {
        again.insert(again.end(), c->items.begin(), c->items.end());
        reasons[why] += c->items.size();
        ++request_errors_;
      };
      if (ex.overflow) {
        ++too_large_;
        if (options_.on_response_too_large) options_.on_response_too_large();
        return absl::ResourceExhaustedError(absl::StrCat("bulk: ", ex.error));
      }
      if (!ex.transport_ok()) {
        retry_all(absl::StrCat("connection error (", ex.error, ")"));
        continue;
      }
      if (ex.status == 200) {
        auto answers = ParseBulkResponse(ex.response, c->items.size());
        if (!answers.ok()) {
          retry_all(std::string(answers.status().message()));
          continue;
        }
        for (size_t k = 0; k < c->items.size(); ++k) {
          size_t i = c->items[k];
          BulkItemAnswer& a = (*answers)[k];
          BulkItemResult& r = result.items[i];
          switch (ClassifyBulkItem(body.op(i), a, body.versioned(i))) {
            case ItemVerdict::kSuperseded:
              r.ok = true;
              r.status = a.status;
              r.result = "superseded";
              r.error_type = std::move(a.error_type);
              r.reason = std::move(a.reason);
              break;
            case ItemVerdict::kDone:
              r.ok = true;
              r.status = a.status;
              r.result = a.result.empty() && a.status == 409 ? "exists" : a.result;
              r.error_type = std::move(a.error_type);
              r.reason = std::move(a.reason);
              break;
            case ItemVerdict::kRetry:
              again.push_back(i);
              reasons[absl::StrCat(a.status, " ", a.error_type.empty() ? "-" : a.error_type)]++;
              break;
            case ItemVerdict::kPermanent:
              r.ok = false;
              r.status = a.status;
              r.error_type = a.error_type.empty() ? "error" : std::move(a.error_type);
              r.reason = std::move(a.reason);
              break;
          }
        }
        continue;
      }
      if (IsTransientStatus(ex.status) || ex.status >= 500) {
        HttpResponse resp{ex.status, ex.response, {}};
        retry_all(std::string(StatusFromEsResponse(resp, "bulk request").message()));
        continue;
      }
      if (ex.status == 413) {
        if (c->items.size() > 1) {
          // Too big for this cluster: halve the bodies and send again.
          max_bytes = std::max<size_t>(1024, c->size() / 2);
          retry_all("413 request too large (splitting)");
          continue;
        }
        BulkItemResult& r = result.items[c->items[0]];
        r.ok = false;
        r.status = 413;
        r.error_type = "request_entity_too_large";
        r.reason = absl::StrCat("a single bulk action of ", c->size(),
                                " bytes exceeds the cluster's HTTP size limit");
        continue;
      }
      // Another whole-request rejection (auth, bad request): not an item's fault.
      HttpResponse resp{ex.status, ex.response, {}};
      return StatusFromEsResponse(resp, "bulk request");
    }

    std::sort(again.begin(), again.end());  // keep the input order on re-send
    pending = std::move(again);
    if (pending.empty()) return absl::OkStatus();
    resend = true;
    return absl::UnavailableError(absl::StrCat(pending.size(), " items to re-send"));
  };
  if (!pending.empty()) {
    absl::Status st = RetryUntil(retry, round);
    if (!st.ok()) {
      // Stopped by the deadline rather than by the caller's flag: say so.
      if (absl::IsCancelled(st) && has_deadline && Clock::now() >= hooks.deadline &&
          !(hooks.cancel != nullptr && hooks.cancel->load(std::memory_order_acquire))) {
        return absl::DeadlineExceededError(absl::StrCat("bulk delivery: deadline passed with ",
                                                        pending.size(), " of ", body.size(),
                                                        " items not done (", st.message(), ")"));
      }
      return st;
    }
  }
  for (const auto& r : result.items) {
    if (r.ok) {
      ++result.delivered;
      if (r.result == "superseded") ++result.superseded;
    } else {
      ++result.failed;
    }
  }
  delivered_ += result.delivered;
  failed_ += result.failed;
  return result;
}

}  // namespace rtdw
