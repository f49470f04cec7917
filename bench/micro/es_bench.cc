// Micro benchmarks of the ES connector:
//   BM_EncodeBulk     NDJSON encoding of DAU documents (docs/s, bytes/s)
//   BM_ParseBulkBody  parsing a stored journal body back into actions (docs/s, bytes/s)
//   BM_DeliverToEsLite/<in flight>/<bulk KiB>  end-to-end delivery into a real rtdw-es-lite
//                     (started from the build's bin dir; skipped when it is not built). Each
//                     iteration delivers 20,000 new documents; es-lite syncs every bulk to disk.
//   BM_DeliverJournalEntry  one journal entry as the daemon delivers it (EsJournalSink::Deliver
//                     of a body written by AppendJournalIndexAction, external versions) into a
//                     real rtdw-es-lite: 5 entries of 8,000 documents. Meant for callgrind, which
//                     counts rtdw's side only (es-lite is another process):
//                       valgrind --tool=callgrind --toggle-collect='*EsJournalSink::Deliver*' \
//                         build/bin/rtdw-micro-es --benchmark_filter=DeliverJournalEntry
#include <benchmark/benchmark.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <climits>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "connectors/es/bulk.h"
#include "connectors/es/es_client.h"
#include "connectors/es/es_journal_sink.h"
#include "connectors/es/templates.h"
#include "core/journal_entry.h"

namespace rtdw {
namespace {

std::string DauDoc(int64_t i) {
  return absl::StrCat(
      "{\"mid\":\"mid_", i, "\",\"user_id\":\"", i % 5000, "\",\"province_id\":\"", i % 34,
      "\",\"channel\":\"xiaomi\",\"is_new\":\"", i % 2,
      "\",\"model\":\"Xiaomi 10 Pro\",\"operate_system\":\"Android 11.0\","
      "\"version_code\":\"v2.1.134\",\"brand\":\"Xiaomi\",\"page_id\":\"home\",\"page_item\":\"",
      i % 40, "\",\"page_item_type\":\"sku_id\",\"source_type\":\"recommend\",\"during_time\":",
      1000 + i % 9000, ",\"user_gender\":\"M\",\"user_age\":", 18 + i % 50,
      ",\"province_name\":\"北京\",\"province_iso_code\":\"CN-11\",\"province_3166_2\":\"CN-BJ\","
      "\"province_area_code\":\"110000\",\"dt\":\"2025-11-25\",\"hr\":\"10\",\"ts\":",
      1764036000000 + i, ",\"rtdw_src\":\"DWD_PAGE_LOG_TOPIC/", i % 4, "/", i, "\"}");
}

std::vector<BulkAction> Actions(int64_t first, int n) {
  std::vector<BulkAction> out;
  out.reserve(n);
  for (int64_t i = first; i < first + n; ++i) {
    out.push_back(
        {BulkOp::kIndex, "gmall_dau_info_2025-11-25", absl::StrCat("mid_", i), DauDoc(i)});
  }
  return out;
}

void BM_EncodeBulk(benchmark::State& state) {
  const int n = static_cast<int>(state.range(0));
  std::vector<BulkAction> actions = Actions(0, n);
  size_t bytes = 0;
  for (auto _ : state) {
    std::string body = EncodeBulkBody(actions);
    bytes += body.size();
    benchmark::DoNotOptimize(body.data());
  }
  state.SetItemsProcessed(state.iterations() * n);
  state.SetBytesProcessed(static_cast<int64_t>(bytes));
  state.counters["docs/s"] =
      benchmark::Counter(static_cast<double>(state.iterations() * n), benchmark::Counter::kIsRate);
  state.counters["MB/s"] =
      benchmark::Counter(static_cast<double>(bytes) / 1e6, benchmark::Counter::kIsRate);
}
BENCHMARK(BM_EncodeBulk)->Arg(1000)->Arg(10000);

void BM_ParseBulkBody(benchmark::State& state) {
  const int n = static_cast<int>(state.range(0));
  std::string body = EncodeBulkBody(Actions(0, n));
  for (auto _ : state) {
    auto parsed = ParseBulkBody(body);
    if (!parsed.ok()) state.SkipWithError("parse failed");
    benchmark::DoNotOptimize(parsed->data());
  }
  state.SetItemsProcessed(state.iterations() * n);
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * body.size()));
  state.counters["docs/s"] =
      benchmark::Counter(static_cast<double>(state.iterations() * n), benchmark::Counter::kIsRate);
  state.counters["MB/s"] = benchmark::Counter(
      static_cast<double>(state.iterations() * body.size()) / 1e6, benchmark::Counter::kIsRate);
}
BENCHMARK(BM_ParseBulkBody)->Arg(10000);

// A private rtdw-es-lite child process on a free port with a fresh data dir.
class EsLiteProcess {
 public:
  ~EsLiteProcess() { Stop(); }

  // Empty string when started; otherwise why not.
  std::string Start() {
    std::string bin = FindBinary();
    if (bin.empty()) return "rtdw-es-lite not found next to this benchmark (build it first)";
    char tmpl[] = "/tmp/rtdw-es-bench-XXXXXX";
    if (mkdtemp(tmpl) == nullptr) return "mkdtemp failed";
    dir_ = tmpl;
    int out[2];
    if (pipe(out) != 0) return "pipe failed";
    pid_ = fork();
    if (pid_ == 0) {
      dup2(out[1], STDOUT_FILENO);
      close(out[0]);
      close(out[1]);
      FILE* devnull = freopen("/dev/null", "w", stderr);
      (void)devnull;
      execl(bin.c_str(), bin.c_str(), "--listen", "127.0.0.1:0", "--data-dir",
            (dir_ + "/data").c_str(), static_cast<char*>(nullptr));
      _exit(127);
    }
    close(out[1]);
    std::string line;
    char c;
    while (read(out[0], &c, 1) == 1 && c != '\n') line.push_back(c);
    close(out[0]);
    if (line.rfind("http://", 0) != 0) return "rtdw-es-lite did not start";
    url_ = line;
    return "";
  }

  void Stop() {
    if (pid_ > 0) {
      kill(pid_, SIGTERM);
      int status;
      waitpid(pid_, &status, 0);
      pid_ = -1;
    }
    if (!dir_.empty()) {
      std::error_code ec;
      std::filesystem::remove_all(dir_, ec);
      dir_.clear();
    }
  }

  const std::string& url() const { return url_; }

 private:
  static std::string FindBinary() {
    if (const char* dir = getenv("RTDW_BIN_DIR")) {
      std::string p = std::string(dir) + "/rtdw-es-lite";
      if (access(p.c_str(), X_OK) == 0) return p;
    }
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (n <= 0) return "";
    self[n] = '\0';
    std::string p = std::filesystem::path(self).parent_path() / "rtdw-es-lite";
    return access(p.c_str(), X_OK) == 0 ? p : "";
  }

  pid_t pid_ = -1;
  std::string dir_;
  std::string url_;
};

// Starts `es` and a client of it with options `o` (its urls set here) and the DAU templates
// installed; nullptr after state.SkipWithError (the benchmark loop then runs empty).
std::unique_ptr<EsClient> StartAndConnect(benchmark::State& state, EsLiteProcess& es,
                                          EsClientOptions o) {
  std::string why = es.Start();
  if (why.empty()) {
    o.urls = {es.url()};
    auto client = EsClient::Create(o);
    if (client.ok() && InstallIndexTemplates(**client, "gmall_dau_info_", "").ok()) {
      return std::move(*client);
    }
    why = "cannot talk to rtdw-es-lite";
  }
  state.SkipWithError(why.c_str());
  for (auto _ : state) {
  }
  return nullptr;
}

void BM_DeliverToEsLite(benchmark::State& state) {
  EsLiteProcess es;
  EsClientOptions o;
  o.max_bulks_in_flight = static_cast<int>(state.range(0));
  o.bulk_max_bytes = static_cast<size_t>(state.range(1)) * 1024;
  std::unique_ptr<EsClient> client = StartAndConnect(state, es, o);
  if (client == nullptr) return;
  constexpr int kDocs = 20000;
  int64_t next = 0;
  size_t bytes = 0;
  uint64_t requests = 0;
  for (auto _ : state) {
    state.PauseTiming();
    std::vector<BulkAction> actions = Actions(next, kDocs);
    next += kDocs;
    for (const auto& a : actions) bytes += EncodedBulkActionSize(a);
    state.ResumeTiming();
    auto result = client->Bulk(actions);
    if (!result.ok() || result->delivered != actions.size()) {
      state.SkipWithError("delivery failed");
      break;
    }
    requests += result->requests;
  }
  state.SetItemsProcessed(state.iterations() * kDocs);
  state.SetBytesProcessed(static_cast<int64_t>(bytes));
  state.counters["docs/s"] = benchmark::Counter(static_cast<double>(state.iterations() * kDocs),
                                                benchmark::Counter::kIsRate);
  state.counters["requests"] = static_cast<double>(requests);
}
BENCHMARK(BM_DeliverToEsLite)
    ->ArgNames({"in_flight", "bulk_kib"})
    ->Args({1, 1024})
    ->Args({4, 1024})
    ->Args({1, 5120})
    ->Args({4, 5120})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->MinTime(2.0);

void BM_DeliverJournalEntry(benchmark::State& state) {
  EsLiteProcess es;
  std::unique_ptr<EsClient> client = StartAndConnect(state, es, EsClientOptions{});
  if (client == nullptr) return;
  EsJournalSink sink(client.get(), EsJournalSinkOptions{});
  constexpr int kDocs = 8000;
  int64_t next = 0;
  uint64_t seq = 0;
  for (auto _ : state) {
    state.PauseTiming();
    JournalEntry entry;
    entry.seq = ++seq;
    for (int i = 0; i < kDocs; ++i, ++next) {
      AppendJournalIndexAction(&entry.body, "gmall_dau_info_2025-11-25", absl::StrCat("mid_", next),
                               DauDoc(next), 1764036000000 + next);
    }
    entry.doc_count = kDocs;
    state.ResumeTiming();
    auto report = sink.Deliver(entry);
    if (!report.ok() || report->acknowledged != kDocs) {
      state.SkipWithError("delivery failed");
      break;
    }
  }
  state.SetItemsProcessed(state.iterations() * kDocs);
}
BENCHMARK(BM_DeliverJournalEntry)->Iterations(5)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace
}  // namespace rtdw

BENCHMARK_MAIN();
