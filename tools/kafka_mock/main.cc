// rtdw-kafka-mock: a standalone Kafka broker on loopback for development and tests.
//
// It is librdkafka's own mock cluster (real Kafka protocol, in memory). It pre-creates every
// default topic of docs/FORMATS.md with --partitions partitions, prints the bootstrap servers as
// the first line of stdout, and serves until SIGTERM/SIGINT. A small HTTP control channel
// (--control-listen) exposes the mock's fault calls to tests running in other processes:
//   GET  /                                  {"bootstrap":"...","brokers":N}
//   POST /brokers/<id>/down | /brokers/<id>/up
//   POST /brokers/<id>/rtt?ms=M
//   POST /request-errors?api=<ApiKey>&error=<code>&count=N     (push N errors for an API)
//   DELETE /request-errors?api=<ApiKey>
//   POST /topics/<name>?partitions=P
// Limits (librdkafka 2.0.2): see docs/KAFKA-MOCK.md.
#include <librdkafka/rdkafka.h>
// rdkafka_mock.h must come after rdkafka.h.
#include <librdkafka/rdkafka_mock.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "CLI/CLI.hpp"
#include "httplib.h"

namespace {

std::atomic<bool> g_stop{false};
void OnSignal(int) { g_stop = true; }

const char* const kDefaultTopics[] = {
    "ODS_BASE_LOG",           "ODS_BASE_DB",           "DWD_START_LOG_TOPIC", "DWD_PAGE_LOG_TOPIC",
    "DWD_PAGE_DISPLAY_TOPIC", "DWD_PAGE_ACTION_TOPIC", "DWD_ERROR_LOG_TOPIC", "DWD_DEAD_LETTER",
    "DWD_ORDER_INFO_I",       "DWD_ORDER_INFO_U",      "DWD_ORDER_INFO_D",    "DWD_ORDER_DETAIL_I",
    "DWD_ORDER_DETAIL_U",     "DWD_ORDER_DETAIL_D",
};

bool WriteFileAtomically(const std::string& path, const std::string& text) {
  std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    if (!out) return false;
    out << text << "\n";
    if (!out.flush()) return false;
  }
  return std::rename(tmp.c_str(), path.c_str()) == 0;
}

int ParseIntOr(const std::string& s, int fallback) {
  try {
    size_t pos = 0;
    int v = std::stoi(s, &pos);
    return pos == s.size() ? v : fallback;
  } catch (...) {
    return fallback;
  }
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"rtdw-kafka-mock: a Kafka-protocol broker on loopback (librdkafka mock cluster)"};
  int brokers = 1;
  int partitions = 4;
  std::vector<std::string> topics;
  std::string bootstrap_file;
  std::string control_listen;
  std::string control_file;
  app.add_option("--brokers", brokers, "number of mock brokers")->check(CLI::Range(1, 16));
  app.add_option("--partitions", partitions, "partitions of each pre-created default topic")
      ->check(CLI::Range(1, 1024));
  app.add_option("--topic", topics, "another topic to create, NAME[:PARTITIONS] (repeatable)");
  app.add_option("--bootstrap-file", bootstrap_file, "also write the bootstrap servers here");
  app.add_option("--control-listen", control_listen,
                 "HOST:PORT of the HTTP control channel for faults (port 0 picks one)");
  app.add_option("--control-file", control_file, "write the control URL here");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int code = app.exit(e);
    return e.get_exit_code() == 0 ? code : 2;
  }

  // Validate the extra topics before starting anything.
  std::map<std::string, int> wanted;
  for (const char* t : kDefaultTopics) wanted[t] = partitions;
  for (const auto& spec : topics) {
    std::string name = spec;
    int p = partitions;
    auto colon = spec.rfind(':');
    if (colon != std::string::npos) {
      name = spec.substr(0, colon);
      p = ParseIntOr(spec.substr(colon + 1), -1);
    }
    if (name.empty() || p < 1 || p > 1024) {
      std::cerr << "rtdw-kafka-mock: --topic " << spec
                << ": expected NAME or NAME:PARTITIONS with 1..1024 partitions\n";
      return 2;
    }
    wanted[name] = p;
  }

  signal(SIGTERM, OnSignal);
  signal(SIGINT, OnSignal);
  signal(SIGPIPE, SIG_IGN);

  char errstr[512];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  rd_kafka_conf_set(conf, "log_level", "3", errstr, sizeof(errstr));
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
  if (rk == nullptr) {
    std::cerr << "rtdw-kafka-mock: cannot create the librdkafka handle: " << errstr << "\n";
    return 1;
  }
  rd_kafka_mock_cluster_t* mcluster = rd_kafka_mock_cluster_new(rk, brokers);
  if (mcluster == nullptr) {
    std::cerr << "rtdw-kafka-mock: cannot create the mock cluster\n";
    rd_kafka_destroy(rk);
    return 1;
  }
  for (const auto& [name, p] : wanted) {
    rd_kafka_resp_err_t err = rd_kafka_mock_topic_create(mcluster, name.c_str(), p, 1);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      std::cerr << "rtdw-kafka-mock: cannot create topic " << name << ": " << rd_kafka_err2str(err)
                << "\n";
      return 1;
    }
  }
  const std::string bootstrap = rd_kafka_mock_cluster_bootstraps(mcluster);

  httplib::Server control;
  std::thread control_thread;
  std::string control_url;
  if (!control_listen.empty()) {
    auto colon = control_listen.rfind(':');
    std::string host =
        colon == std::string::npos ? control_listen : control_listen.substr(0, colon);
    int port = colon == std::string::npos ? 0 : ParseIntOr(control_listen.substr(colon + 1), -1);
    if (port < 0 || port > 65535) {
      std::cerr << "rtdw-kafka-mock: --control-listen " << control_listen
                << ": expected HOST:PORT\n";
      return 2;
    }
    auto reply = [](httplib::Response& res, rd_kafka_resp_err_t err) {
      if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        res.set_content("{\"ok\":true}", "application/json");
      } else {
        res.status = 400;
        res.set_content(std::string("{\"error\":\"") + rd_kafka_err2str(err) + "\"}",
                        "application/json");
      }
    };
    control.Get("/", [&](const httplib::Request&, httplib::Response& res) {
      res.set_content(
          "{\"bootstrap\":\"" + bootstrap + "\",\"brokers\":" + std::to_string(brokers) + "}",
          "application/json");
    });
    control.Post(R"(/brokers/(\d+)/(down|up|rtt))", [&](const httplib::Request& req,
                                                        httplib::Response& res) {
      int id = ParseIntOr(req.matches[1], -1);
      std::string what = req.matches[2];
      rd_kafka_resp_err_t err;
      if (what == "down") {
        err = rd_kafka_mock_broker_set_down(mcluster, id);
      } else if (what == "up") {
        err = rd_kafka_mock_broker_set_up(mcluster, id);
      } else {
        err = rd_kafka_mock_broker_set_rtt(mcluster, id, ParseIntOr(req.get_param_value("ms"), 0));
      }
      reply(res, err);
    });
    control.Post("/request-errors", [&](const httplib::Request& req, httplib::Response& res) {
      int api = ParseIntOr(req.get_param_value("api"), -1);
      int code = ParseIntOr(req.get_param_value("error"), -1);
      int count = ParseIntOr(req.get_param_value("count"), 1);
      if (api < 0 || code < 0 || count < 1 || count > 100000) {
        res.status = 400;
        res.set_content("{\"error\":\"expected api=<ApiKey>&error=<code>&count=N\"}",
                        "application/json");
        return;
      }
      std::vector<rd_kafka_resp_err_t> errs(count, static_cast<rd_kafka_resp_err_t>(code));
      rd_kafka_mock_push_request_errors_array(mcluster, static_cast<int16_t>(api), errs.size(),
                                              errs.data());
      reply(res, RD_KAFKA_RESP_ERR_NO_ERROR);
    });
    control.Delete("/request-errors", [&](const httplib::Request& req, httplib::Response& res) {
      int api = ParseIntOr(req.get_param_value("api"), -1);
      if (api >= 0) rd_kafka_mock_clear_request_errors(mcluster, static_cast<int16_t>(api));
      reply(res, RD_KAFKA_RESP_ERR_NO_ERROR);
    });
    control.Post(R"(/topics/([^/]+))", [&](const httplib::Request& req, httplib::Response& res) {
      int p = ParseIntOr(req.get_param_value("partitions"), partitions);
      reply(res, rd_kafka_mock_topic_create(mcluster, std::string(req.matches[1]).c_str(), p, 1));
    });
    int bound =
        port == 0 ? control.bind_to_any_port(host) : (control.bind_to_port(host, port) ? port : -1);
    if (bound < 0) {
      std::cerr << "rtdw-kafka-mock: cannot listen on " << control_listen << "\n";
      return 1;
    }
    control_url = "http://" + host + ":" + std::to_string(bound);
    control_thread = std::thread([&] { control.listen_after_bind(); });
  }

  std::cout << bootstrap << std::endl;
  if (!control_url.empty()) std::cout << "control " << control_url << std::endl;
  if (!bootstrap_file.empty() && !WriteFileAtomically(bootstrap_file, bootstrap)) {
    std::cerr << "rtdw-kafka-mock: cannot write --bootstrap-file " << bootstrap_file << "\n";
    return 1;
  }
  if (!control_file.empty() && !control_url.empty() &&
      !WriteFileAtomically(control_file, control_url)) {
    std::cerr << "rtdw-kafka-mock: cannot write --control-file " << control_file << "\n";
    return 1;
  }
  std::cerr << "rtdw-kafka-mock: " << brokers << " broker(s) at " << bootstrap << ", "
            << wanted.size() << " topics" << std::endl;

  while (!g_stop) usleep(50 * 1000);

  if (control_thread.joinable()) {
    control.stop();
    control_thread.join();
  }
  rd_kafka_mock_cluster_destroy(mcluster);
  rd_kafka_destroy(rk);
  return 0;
}
