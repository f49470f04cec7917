// The REST API of rtdw-es-lite on cpp-httplib: routes, ES response shapes, content types, fault
// injection. It presents itself as one server (Identity): Elasticsearch 8 by default, whose
// responses all carry X-Elastic-Product: Elasticsearch.
#ifndef RTDW_TOOLS_ES_LITE_SERVER_H_
#define RTDW_TOOLS_ES_LITE_SERVER_H_

#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "tools/es_lite/faults.h"
#include "tools/es_lite/store.h"

namespace httplib {
class Server;
struct Request;
}  // namespace httplib

namespace rtdw::eslite {

// Which server rtdw-es-lite presents itself as, as each really answers: the GET / body, the
// X-Elastic-Product header (Elasticsearch 7.14+ only), the vendor media types
// (application/vnd.elasticsearch+json: ES 8 takes compatible-with=7|8, ES 7.17 compatible-with=7,
// ES 7.10 and OpenSearch none), "_type": "_doc" in ES 7's document answers, and ES 8's refusal
// of sorts on _id (indices.id_field_data.enabled false). kEs6 and kOther exist to test clients'
// refusal of servers they do not support.
enum class Identity { kEs8, kEs7, kEs710, kOpenSearch2, kOpenSearch1, kEs6, kOther };
// "es-8", "es-7", "es-7.10", "opensearch-2", "opensearch-1", "es-6", "other"; nullopt otherwise.
std::optional<Identity> ParseIdentity(const std::string& name);
const char* IdentityNames();  // the accepted names, for messages

struct ServerOptions {
  Identity identity = Identity::kEs8;
  std::string node_name = "rtdw-es-lite";
  std::string cluster_name = "rtdw-es-lite";
  size_t max_content_length = 100 * 1024 * 1024;  // http.max_content_length (413 beyond)
  int threads = 32;
  bool log_requests = false;
  // Authentication, as ES security does it: when either is set, every request must carry a
  // matching `Authorization: Basic <base64 user:password>` or `Authorization: ApiKey <api_key>`
  // header, else 401 security_exception. Both empty: no authentication (the default).
  std::string basic_auth;  // "user:password"
  std::string api_key;     // the credential as clients send it (ES: base64 of id:key)
  // HTTPS with this PEM certificate (chain) and private key; both empty: plain HTTP.
  std::string tls_cert_file;
  std::string tls_key_file;
};

// Thread-safe where it matters: Handle() runs on cpp-httplib's worker threads (options.threads of
// them) concurrently; the Store and Faults it calls are thread-safe, and an Api is made per
// request. Stop() may be called from another thread (a signal watcher) while Listen() runs.
class EsLiteServer {
 public:
  EsLiteServer(Store* store, Faults* faults, const ServerOptions& options);
  ~EsLiteServer();

  // False when the TLS certificate or key could not be loaded (see error()).
  bool valid() const;
  const std::string& error() const { return error_; }
  bool tls() const { return !options_.tls_cert_file.empty(); }

  // Binds host:port (port 0 = any free port); returns the port, or -1.
  int Bind(const std::string& host, int port);
  // Serves until Stop(). Returns false when the server could not run.
  bool Listen();
  // Stops accepting, lets requests in progress finish (up to 5 s), then closes idle keep-alive
  // connections so that Listen() returns promptly.
  void Stop();

  struct Reply {
    int status = 200;
    std::string body;
    std::string content_type = "application/json";
    bool abort_connection = false;  // close without answering (fault injection)
    std::vector<std::pair<std::string, std::string>> headers;  // extra response headers
  };
  // One request, routed (exposed for the HTTP glue).
  Reply Handle(const httplib::Request& req);

 private:
  Store* store_;
  Faults* faults_;
  ServerOptions options_;
  // A 401 reply when authentication is configured and `req` does not carry it.
  std::optional<Reply> CheckAuth(const httplib::Request& req) const;

  std::string error_;
  std::unique_ptr<httplib::Server> http_;
  std::atomic<int> in_flight_{0};  // requests in Handle()
  std::atomic<int> unwritten_{0};  // handled requests whose answer is not written yet
};

}  // namespace rtdw::eslite

#endif  // RTDW_TOOLS_ES_LITE_SERVER_H_
