// db-split's dimension writes against a real redis-server (started here on a free port, no
// persistence, as the test harness starts it): what one write costs Redis — the apply script's
// `usec` in INFO commandstats, load-independent enough to compare script versions — and the
// client's wall time, for runs of --run writes (db-split sends kWritesPerRun) and either
// ApplyAtomically per run or SendApply of every run then one FinishApplies (the pipelined form).
//
//   build/bin/rtdw-micro-redis-apply [--writes N] [--run K] [--value-bytes B] [--rounds R]
//
// RTDW_MICRO_REDIS_MODES=0 / 1: only the one-by-one / the pipelined form. RTDW_MICRO_REDIS_WRAP: a
// command prefix for redis-server (e.g. `valgrind --tool=callgrind`: instructions per write, as in
// docs/BENCHMARKS.md "h5-dbsplit"). Needs redis-server and redis-cli on the PATH.
//
// Every write is a SET of a new position (rows of ids 1..N/2, each written twice in ascending
// offsets, then the same writes again: stale), so the script takes both branches.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "connectors/redis/redis_client.h"

namespace {

// A port derived from the pid (a benchmark run by hand; the server's start is checked).
int PortOfThisRun() { return 20000 + static_cast<int>(getpid() % 20000); }

double EvalUsec(int port) {
  std::string cmd = absl::StrCat("redis-cli -p ", port, " info commandstats");
  FILE* f = popen(cmd.c_str(), "r");
  if (f == nullptr) return -1;
  char line[512];
  double usec = -1;
  while (fgets(line, sizeof line, f) != nullptr) {
    if (strncmp(line, "cmdstat_evalsha:", 16) == 0) {
      const char* u = strstr(line, "usec=");
      if (u != nullptr) usec = atof(u + 5);
    }
  }
  pclose(f);
  return usec;
}

}  // namespace

int main(int argc, char** argv) {
  size_t writes = 20000, run = 256, value_bytes = 300, rounds = 3;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    const size_t v = static_cast<size_t>(atol(argv[i + 1]));
    if (flag == "--writes") writes = v;
    if (flag == "--run") run = v;
    if (flag == "--value-bytes") value_bytes = v;
    if (flag == "--rounds") rounds = v;
  }
  const int port = PortOfThisRun();
  const pid_t server = fork();
  if (server == 0) {
    // RTDW_MICRO_REDIS_WRAP: a command prefix for the server, e.g. "valgrind --tool=callgrind
    // --callgrind-out-file=/tmp/redis.%p" (instructions per write, load-independent).
    const char* wrap = getenv("RTDW_MICRO_REDIS_WRAP");
    const std::string command =
        absl::StrCat("exec ", wrap != nullptr ? wrap : "", " redis-server --port ", port,
                     " --bind 127.0.0.1 --save '' --appendonly no --dir /tmp"
                     " --dbfilename rtdw-micro-redis.rdb --loglevel warning >/dev/null 2>&1");
    execl("/bin/sh", "sh", "-c", command.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  rtdw::RedisClientOptions o;
  o.port = port;
  rtdw::RedisClient client(o);
  bool up = false;
  for (int i = 0; i < 400 && !up; ++i) {
    up = client.Ping().ok();
    if (!up) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  if (!up) {
    fprintf(stderr, "redis-server on port %d did not answer\n", port);
    kill(server, SIGKILL);
    return 1;
  }
  std::vector<rtdw::RedisWrite> all;
  const std::string value(value_bytes, 'x');
  for (size_t i = 0; i < writes; ++i) {
    rtdw::RedisWrite w;
    w.key = absl::StrCat("DIM:USER_INFO:", 1 + i % (writes / 2 + 1));
    w.value = value;
    w.offset = static_cast<int64_t>(i);
    all.push_back(std::move(w));
  }
  printf(
      "%zu writes of %zu B in runs of %zu, %zu rounds per mode (second half of each round: "
      "the same writes again, stale)\n",
      writes, value_bytes, run, rounds);
  const char* modes = getenv("RTDW_MICRO_REDIS_MODES");  // "0", "1" or unset: both
  for (int pipelined = 0; pipelined < 2; ++pipelined) {
    if (modes != nullptr && atoi(modes) != pipelined) continue;
    for (size_t r = 0; r < rounds; ++r) {
      (void)system(absl::StrCat("redis-cli -p ", port, " flushall >/dev/null").c_str());
      (void)system(absl::StrCat("redis-cli -p ", port, " config resetstat >/dev/null").c_str());
      const auto start = std::chrono::steady_clock::now();
      uint64_t stale_total = 0;
      for (int pass = 0; pass < 2; ++pass) {
        for (size_t i = 0; i < all.size(); i += run) {
          std::vector<rtdw::RedisWrite> part(all.begin() + i,
                                             all.begin() + std::min(all.size(), i + run));
          if (pipelined) {
            (void)client.SendApply(part, {});
          } else {
            uint64_t stale = 0;
            if (auto st = client.ApplyAtomically(part, &stale); !st.ok()) {
              fprintf(stderr, "%s\n", std::string(st.message()).c_str());
              return 1;
            }
            stale_total += stale;
          }
        }
        if (pipelined) {
          uint64_t stale = 0;
          if (auto st = client.FinishApplies(&stale); !st.ok()) {
            fprintf(stderr, "%s\n", std::string(st.message()).c_str());
            return 1;
          }
          stale_total += stale;
        }
      }
      const double wall =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      const double usec = EvalUsec(port);
      printf(
          "%-11s round %zu: redis %.2f us/write (script), client wall %.2f us/write, stale %llu\n",
          pipelined ? "pipelined" : "one-by-one", r, usec / (2.0 * writes),
          wall * 1e6 / (2.0 * writes), static_cast<unsigned long long>(stale_total));
    }
  }
  kill(server, SIGTERM);
  waitpid(server, nullptr, 0);
  return 0;
}
