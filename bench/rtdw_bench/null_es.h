// A null Elasticsearch for the memory scenario: answers GET / like ES 8, accepts index templates,
// and acknowledges every `_bulk` item (201 created) without storing anything. It lets the memory
// scenario push 10 M documents through rtdwd in minutes, measuring the daemon's memory rather
// than rtdw-es-lite's indexing speed. Never used for the throughput or correctness scenarios.
#ifndef RTDW_BENCH_RTDW_BENCH_NULL_ES_H_
#define RTDW_BENCH_RTDW_BENCH_NULL_ES_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"

namespace httplib {
class Server;
}

namespace rtdw::bench {

class NullEs {
 public:
  static absl::StatusOr<std::unique_ptr<NullEs>> Start();
  ~NullEs();
  std::string url() const;
  uint64_t documents() const { return documents_.load(); }

 private:
  NullEs() = default;
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
  int port_ = 0;
  std::atomic<uint64_t> documents_{0};
};

}  // namespace rtdw::bench

#endif  // RTDW_BENCH_RTDW_BENCH_NULL_ES_H_
