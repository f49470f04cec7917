// rtdw-es-lite: an Elasticsearch-compatible single-node store on loopback, for development and
// tests (see docs/ES-LITE.md). Prints its URL as the first line of stdout; SIGTERM/SIGINT stop it
// cleanly (exit 0).
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <string>
#include <thread>

#include "CLI/CLI.hpp"
#include "absl/strings/numbers.h"
#include "tools/es_lite/faults.h"
#include "tools/es_lite/server.h"
#include "tools/es_lite/store.h"

namespace {

bool SplitHostPort(const std::string& listen, std::string* host, int* port) {
  size_t colon = listen.rfind(':');
  if (colon == std::string::npos) return false;
  *host = listen.substr(0, colon);
  if (host->size() >= 2 && host->front() == '[' && host->back() == ']') {
    *host = host->substr(1, host->size() - 2);
  }
  return absl::SimpleAtoi(listen.substr(colon + 1), port) && *port >= 0 && *port <= 65535 &&
         !host->empty();
}

}  // namespace

int main(int argc, char** argv) {
  using rtdw::eslite::FaultConfig;
  CLI::App app{
      "rtdw-es-lite: an Elasticsearch-compatible single-node store for development and "
      "tests (speaks the ES 8 REST subset rtdw and the official clients use)"};
  std::string listen = "127.0.0.1:9200";
  std::string data_dir;
  rtdw::eslite::ServerOptions options;
  FaultConfig faults;
  uint64_t seed = 0;
  app.add_option("--listen", listen, "host:port to listen on (port 0 picks a free one)");
  app.add_option("--data-dir", data_dir, "directory of the store (created if missing)")->required();
  app.add_option("--max-content-length", options.max_content_length,
                 "largest request body in bytes (413 beyond), like http.max_content_length");
  app.add_option("--threads", options.threads, "HTTP worker threads (one per open connection)");
  app.add_option("--node-name", options.node_name, "name in GET /");
  app.add_option("--cluster-name", options.cluster_name, "cluster_name in GET /");
  app.add_flag("--log-requests", options.log_requests, "log every request to stderr");
  std::string identity = "es-8";
  app.add_option("--identity", identity,
                 "the server to present itself as: es-8 (default), es-7, es-7.10, opensearch-2, "
                 "opensearch-1; es-6 and other for tests of clients' refusal");
  app.add_option("--basic-auth", options.basic_auth,
                 "USER:PASSWORD: require HTTP basic authentication (401 otherwise)");
  app.add_option("--api-key", options.api_key,
                 "KEY: require 'Authorization: ApiKey KEY' (with --basic-auth: either one)");
  app.add_option("--tls-cert", options.tls_cert_file, "serve HTTPS with this PEM certificate")
      ->check(CLI::ExistingFile);
  app.add_option("--tls-key", options.tls_key_file, "the private key (PEM) of --tls-cert")
      ->check(CLI::ExistingFile);
  app.add_option("--fault-bulk-item-429", faults.bulk_item_429_fraction,
                 "fraction of bulk items answered 429 es_rejected_execution_exception")
      ->check(CLI::Range(0.0, 1.0));
  app.add_option("--fault-request-503", faults.request_503_fraction,
                 "fraction of requests answered 503")
      ->check(CLI::Range(0.0, 1.0));
  app.add_option("--fault-close-after-read", faults.close_after_read_fraction,
                 "fraction of requests whose connection is closed after reading, unapplied")
      ->check(CLI::Range(0.0, 1.0));
  app.add_option("--fault-close-after-write", faults.close_after_write_fraction,
                 "fraction of requests applied, then their connection closed unanswered")
      ->check(CLI::Range(0.0, 1.0));
  app.add_option("--fault-latency-ms", faults.latency_ms, "latency added to every request")
      ->check(CLI::Range(0, 600000));
  app.add_option("--fault-answer-late", faults.answer_late_fraction,
                 "fraction of requests applied at once but answered after --fault-answer-late-ms")
      ->check(CLI::Range(0.0, 1.0));
  app.add_option("--fault-answer-late-ms", faults.answer_late_ms,
                 "how late those answers come (set it above the client's timeout)")
      ->check(CLI::Range(0, 600000));
  app.add_option("--fault-seed", seed, "seed of the fault dice (default: random)");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int code = app.exit(e);
    return e.get_exit_code() == 0 ? code : 2;
  }
  if (auto id = rtdw::eslite::ParseIdentity(identity)) {
    options.identity = *id;
  } else {
    fprintf(stderr, "rtdw-es-lite: --identity must be one of %s, got '%s'\n",
            rtdw::eslite::IdentityNames(), identity.c_str());
    return 2;
  }
  if (options.tls_cert_file.empty() != options.tls_key_file.empty()) {
    fprintf(stderr, "rtdw-es-lite: --tls-cert and --tls-key go together\n");
    return 2;
  }
  if (!options.basic_auth.empty() && options.basic_auth.find(':') == std::string::npos) {
    fprintf(stderr, "rtdw-es-lite: --basic-auth must be USER:PASSWORD\n");
    return 2;
  }
  std::string host;
  int port = 0;
  if (!SplitHostPort(listen, &host, &port)) {
    fprintf(stderr, "rtdw-es-lite: --listen must be host:port, got '%s'\n", listen.c_str());
    return 2;
  }

  // Signals are taken by one thread with sigwait; every other thread blocks them.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  auto store = rtdw::eslite::Store::Open(data_dir);
  if (!store.ok()) {
    fprintf(stderr, "rtdw-es-lite: %s\n", store.error().reason.c_str());
    return 1;
  }
  rtdw::eslite::Faults fault_state;
  fault_state.Set(faults);
  if (seed != 0) {
    rapidjson::Document d;
    d.SetObject();
    d.AddMember("seed", seed, d.GetAllocator());
    fault_state.Update(d);
  }
  rtdw::eslite::EsLiteServer server(store.value().get(), &fault_state, options);
  if (!server.valid()) {
    fprintf(stderr, "rtdw-es-lite: %s\n", server.error().c_str());
    return 1;
  }
  const char* scheme = server.tls() ? "https" : "http";
  int bound = server.Bind(host, port);
  if (bound <= 0) {
    fprintf(stderr, "rtdw-es-lite: cannot listen on %s\n", listen.c_str());
    return 1;
  }
  std::string shown_host = host.find(':') != std::string::npos ? "[" + host + "]" : host;
  printf("%s://%s:%d\n", scheme, shown_host.c_str(), bound);
  fflush(stdout);
  fprintf(stderr, "rtdw-es-lite: listening on %s://%s:%d, data in %s%s\n", scheme,
          shown_host.c_str(), bound, data_dir.c_str(),
          options.basic_auth.empty() && options.api_key.empty() ? "" : " (authentication on)");

  std::thread signal_thread([&] {
    int sig = 0;
    sigwait(&stop_signals, &sig);
    fprintf(stderr, "rtdw-es-lite: signal %d, stopping\n", sig);
    server.Stop();
  });
  bool ok = server.Listen();
  if (signal_thread.joinable()) {
    // Listen() returns after Stop(); if it failed on its own, wake the signal thread.
    if (!ok) kill(getpid(), SIGTERM);
    signal_thread.join();
  }
  store.value().reset();  // flushes and closes RocksDB
  fprintf(stderr, "rtdw-es-lite: stopped\n");
  return ok ? 0 : 1;
}
