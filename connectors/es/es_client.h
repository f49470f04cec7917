// The Elasticsearch client of rtdw (libcurl + RapidJSON): bulk delivery with per-item retries,
// index templates, and the reads the recovery CLI needs (count, search, search_after paging).
//
// Promises:
// - Connections are kept alive and reused; several nodes (`urls`) are used round-robin, and a node
//   whose connection failed or timed out is skipped for `node_retry_after` (when all are being
//   skipped, the one that failed longest ago is tried).
// - Bulk() returns only when every item is done (200/201, 409 on create, not_found on delete,
//   409 version_conflict_engine_exception of a write with an external version: superseded) or
//   permanently failed (any other 4xx, returned with the item and ES's error type and reason).
//   429, 408, 5xx, timeouts, connection errors and unreadable answers are retried without a time
//   limit, re-sending only the affected items, with exponential backoff and full jitter
//   (core/backoff.h); each retry round is reported to DeliveryHooks::on_retry and counted in
//   stats(), and a warning is logged (at most one per 10 s per client, saying how many were
//   held back). When *hooks.cancel becomes
//   true the call abandons its work and returns Cancelled, and when hooks.deadline passes it
//   returns DeadlineExceeded (both are noticed within ~20 ms, also during a request or a wait):
//   no item is then claimed delivered.
// - A bulk request body never exceeds `bulk_max_bytes`, except for one action that is larger by
//   itself (it goes alone). Up to `max_bulks_in_flight` requests of one call run concurrently.
// - A body's bytes are sent as PreparedBulkBody holds them: the first round of a stored body
//   taken as it is (PreparedBulkBody::FromBody) sends slices of the caller's bytes, split at
//   action boundaries, without copying; a retry round copies only the actions it re-sends.
// - Errors are absl::Status; nothing throws.
//
// Thread-safe: an EsClient serialises its calls (one at a time, under one absl::Mutex held for the
// whole call, retries included); use one client per thread for parallel callers. stats() reads
// atomics and never waits.
#ifndef RTDW_CONNECTORS_ES_ES_CLIENT_H_
#define RTDW_CONNECTORS_ES_ES_CLIENT_H_

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "connectors/es/bulk.h"
#include "core/backoff.h"

namespace rtdw {

struct EsClientOptions {
  std::vector<std::string> urls = {"http://127.0.0.1:9200"};  // http(s)://host[:port][/path]
  std::string user;                                           // basic auth when not empty
  std::string password;
  std::string api_key;  // "Authorization: ApiKey <api_key>" when not empty
  std::string ca_file;  // PEM bundle for https; "" = system default
  bool verify_tls = true;
  size_t bulk_max_bytes = 5 * 1024 * 1024;
  int max_bulks_in_flight = 1;
  std::chrono::milliseconds request_timeout{60000};
  std::chrono::milliseconds connect_timeout{5000};
  std::chrono::milliseconds node_retry_after{10000};
  // An answer larger than this is refused (the transfer is aborted) with ResourceExhausted
  // naming the bound, and counted in stats().responses_too_large: never retried, since the same
  // request would get the same answer.
  size_t max_response_bytes = 256 * 1024 * 1024;
  // Called (on the calling thread) each time an answer is refused for its size, e.g. to count it
  // in a metric. May be null.
  std::function<void()> on_response_too_large;
  // Retries of non-bulk calls (search, count, templates...) on transient errors, waiting by
  // `backoff` in between (core/backoff.h RetryUntil).
  int read_retries = 3;
  // When not null and true: Perform (and every non-bulk call) stops retrying and returns
  // Cancelled; a wait between retries ends within 20 ms. Bulk() uses DeliveryHooks::cancel.
  const std::atomic<bool>* cancel = nullptr;
  BackoffOptions backoff = {std::chrono::milliseconds(100), std::chrono::milliseconds(0),
                            std::chrono::milliseconds(30000), 2.0};
  // Receives warnings (retries, failing nodes). Null: written to stderr.
  std::function<void(std::string_view)> warn;
};

// The search servers rtdw runs on (docs/ES-LITE.md has the compatibility table).
enum class EsDistribution { kElasticsearch, kOpenSearch };

// What GET / says.
struct EsInfo {
  std::string name;
  std::string cluster_name;
  std::string cluster_uuid;
  EsDistribution distribution = EsDistribution::kElasticsearch;
  std::string version;  // "8.11.0"
  int major = 0;
  int minor = 0;
  bool product_header = false;  // the answer carried X-Elastic-Product: Elasticsearch
  // "Elasticsearch 8.11.0", "OpenSearch 2.11.1".
  std::string Describe() const;
};

// Which servers rtdw supports, for messages.
inline constexpr char kSupportedServers[] =
    "rtdw supports Elasticsearch 7.10+ and 8.x, and OpenSearch 1.3+ and 2.x";

// Recognises the server from its GET / answer (`body`, and whether the X-Elastic-Product:
// Elasticsearch header came with it): OpenSearch by version.distribution "opensearch",
// Elasticsearch by its tagline, build_flavor or product header. FailedPrecondition, naming what was
// found and kSupportedServers, for anything else: an older or newer major, a server that is
// neither, or an Elasticsearch 7.14+ without its product header (which the official clients
// refuse too: something in between is not Elasticsearch), or an answer that is not a JSON object.
absl::StatusOr<EsInfo> RecognizeServer(std::string_view body, bool product_header);

// One retry round of a Bulk() call.
struct BulkRetryEvent {
  int round = 0;     // 1 for the first retry of the call
  size_t items = 0;  // items to re-send
  std::chrono::milliseconds delay{0};
  std::string summary;  // e.g. "429 es_rejected_execution_exception x12, connection error x3"
};

struct DeliveryHooks {
  const std::atomic<bool>* cancel = nullptr;  // checked between and during requests
  // The call gives up with DeadlineExceeded once this passes (checked as `cancel` is).
  std::chrono::steady_clock::time_point deadline = std::chrono::steady_clock::time_point::max();
  std::function<void(const BulkRetryEvent&)> on_retry;
  // Asked right before every round of requests (the first and each retry): a non-OK answer
  // ends the call with that status, nothing more sent and no item claimed delivered (the
  // caller's veto, e.g. a group member that may no longer own what it writes). May be empty.
  std::function<absl::Status()> before_request;
};

// Final outcome of one action of a Bulk() call.
struct BulkItemResult {
  bool ok = false;     // done (see ClassifyBulkItem); false = permanent failure
  int status = 0;      // the item's last HTTP status (or the request's, for whole-request errors)
  std::string result;  // when ok: "created", "updated", "deleted", "not_found", "noop",
                       // "exists" (create of a document that is already there: 409), or
                       // "superseded" (409 version conflict of a versioned write: ES holds a
                       // newer version; the write is done, it lost as it should)
  std::string error_type;  // when !ok (also set for 409-on-create, which is ok)
  std::string reason;
};

struct BulkResult {
  std::vector<BulkItemResult> items;  // one per action, in input order
  size_t delivered = 0;               // superseded items included
  size_t superseded = 0;  // of those, versioned writes refused for an older version (409)
  size_t failed = 0;
  uint64_t requests = 0;       // HTTP requests sent
  uint64_t retried_items = 0;  // item re-sends
  int retry_rounds = 0;
  // BulkBody() only: the body's actions, so that a failed item's index, id and source can be
  // dead-lettered (Bulk() leaves it empty: the caller has the actions).
  std::vector<BulkAction> actions;
  // Positions (into the input) of the permanently failed items.
  std::vector<size_t> FailedPositions() const;
};

// Counters since the client was created (readable from any thread).
struct EsClientStats {
  uint64_t requests = 0;
  uint64_t request_errors = 0;  // transport errors and 5xx/429 answers
  uint64_t bulk_items_delivered = 0;
  uint64_t bulk_items_failed = 0;
  uint64_t bulk_items_retried = 0;
  uint64_t bulk_retry_rounds = 0;
  uint64_t responses_too_large = 0;  // answers refused for passing max_response_bytes
};

struct HttpResponse {
  int status = 0;
  std::string body;
  std::string product;  // the X-Elastic-Product header ("" when absent)
};

struct SearchHit {
  std::string index;
  std::string id;
  std::string source;  // JSON text of _source ("" when not returned)
  std::string sort;    // JSON array text of the hit's sort values ("" without sort)
};

struct SearchResult {
  uint64_t total = 0;
  bool total_is_lower_bound = false;  // hits.total.relation == "gte"
  std::vector<SearchHit> hits;
  std::string aggregations;  // JSON text of "aggregations" ("" when absent)
};

// Options of ScrollAll: a sort + search_after walk over every matching document.
struct ScrollOptions {
  std::string query_json;                    // "" = match_all
  std::vector<std::string> source_includes;  // empty = the whole _source
  bool fetch_source = true;
  size_t page_size = 1000;
  // "field" or "field:desc"; required. Must order documents totally (unique per hit) or a page
  // boundary inside a tie loses documents: use a unique keyword field of the index template
  // (e.g. {"_index", "mid"} for DAU, {"_index", "detail_id"} for order-wide). Never "_id":
  // Elasticsearch 8 refuses sorting on it (indices.id_field_data.enabled is false).
  std::vector<std::string> sort;
};

class EsClient {
 public:
  static absl::StatusOr<std::unique_ptr<EsClient>> Create(const EsClientOptions& options);
  ~EsClient();
  EsClient(const EsClient&) = delete;
  EsClient& operator=(const EsClient&) = delete;

  // GET /, recognised by RecognizeServer (FailedPrecondition for an unsupported server).
  absl::StatusOr<EsInfo> Info();
  absl::Status Ping();

  // PUT /_index_template/<name>: creates or replaces (idempotent).
  absl::Status PutIndexTemplate(std::string_view name, std::string_view body_json);
  // POST /<pattern>/_refresh.
  absl::Status Refresh(std::string_view index_pattern);
  // POST /<pattern>/_count {"query": query_json}; "" = all documents. A wildcard pattern
  // matching nothing counts 0; a missing concrete index is NotFound.
  absl::StatusOr<uint64_t> Count(std::string_view index_pattern, std::string_view query_json = {});
  // POST /<pattern>/_search with `body_json` as is.
  absl::StatusOr<SearchResult> Search(std::string_view index_pattern, std::string_view body_json);
  // Pages through every matching document (sort + search_after, never from/size) and calls
  // `fn` once per hit in sort order; a non-OK return from `fn` stops and is returned.
  absl::Status ScrollAll(std::string_view index_pattern, const ScrollOptions& options,
                         const std::function<absl::Status(const SearchHit&)>& fn);

  // Delivers `actions` (see the promises above).
  absl::StatusOr<BulkResult> Bulk(std::span<const BulkAction> actions,
                                  const DeliveryHooks& hooks = {});
  // The same for a prepared body (results follow its action order); its bytes must stay valid
  // for the call.
  absl::StatusOr<BulkResult> Bulk(const PreparedBulkBody& body, const DeliveryHooks& hooks = {});
  // Same for a stored bulk body (ParseBulkBody); results follow the body's action order.
  absl::StatusOr<BulkResult> BulkBody(std::string_view ndjson, const DeliveryHooks& hooks = {});

  // One request with the client's nodes, auth and retries of transient errors; any HTTP status
  // is returned as a response (only transport failures are errors). `path` starts with '/'.
  absl::StatusOr<HttpResponse> Perform(std::string_view method, std::string_view path,
                                       std::string_view body = {},
                                       std::string_view content_type = "application/json");

  EsClientStats stats() const;
  const EsClientOptions& options() const { return options_; }

 private:
  class Transport;
  explicit EsClient(const EsClientOptions& options);
  void Warn(std::string_view message) const;
  absl::StatusOr<BulkResult> BulkLocked(const PreparedBulkBody& body, const DeliveryHooks& hooks)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  EsClientOptions options_;
  absl::Mutex mu_;  // one call at a time
  std::unique_ptr<Transport> transport_ ABSL_PT_GUARDED_BY(mu_);
  std::chrono::steady_clock::time_point last_retry_warning_ ABSL_GUARDED_BY(mu_);
  uint64_t held_back_warnings_ ABSL_GUARDED_BY(mu_) = 0;
  mutable std::atomic<uint64_t> requests_{0}, request_errors_{0}, delivered_{0}, failed_{0},
      retried_{0}, retry_rounds_{0}, too_large_{0};
};

// The ES error of a non-2xx answer as a Status (404 NotFound, 400 InvalidArgument, 401
// Unauthenticated, 403 PermissionDenied, 409 AlreadyExists, 429 ResourceExhausted, 5xx
// Unavailable), the message naming the error type and reason.
absl::Status StatusFromEsResponse(const HttpResponse& response, std::string_view what);

// Percent-encodes a path segment (an index pattern keeps its ',' and '*').
std::string EscapePathSegment(std::string_view segment, bool keep_pattern_chars = false);

}  // namespace rtdw

#endif  // RTDW_CONNECTORS_ES_ES_CLIENT_H_
