// The chaos test (issue 6): a generated day through rtdwd with all four jobs against
// rtdw-kafka-mock, redis-server and rtdw-es-lite, while
//   - the daemon is SIGKILLed at random moments and restarted, RTDW_CHAOS_KILLS times
//     (default 30; `scripts/chaos --kills N` runs this test alone with N),
//   - rtdw-es-lite refuses bulk items with 429 and answers requests with 503 throughout,
//   - rtdw-es-lite itself is killed (-9) and restarted twice during the run.
// At the end ES must hold every expected DAU and order-wide document once, with the right
// fields, and nothing else; `rtdw verify` must agree.
#include <signal.h>

#include <random>
#include <thread>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/pipeline/pipeline_stack.h"

namespace rtdw::testing {
namespace {

int EnvInt(const char* name, int fallback) {
  const char* v = getenv(name);
  return v && *v ? atoi(v) : fallback;
}

TEST(ChaosTest, KillsAndEsFaultsEndExactlyOnce) {
  const bool full = getenv("RTDW_TEST_SIZE") && std::string(getenv("RTDW_TEST_SIZE")) == "full";
  const int kills = EnvInt("RTDW_CHAOS_KILLS", full ? 200 : 30);
  StackOptions o;
  o.batch_max_records = 500;
  o.events = EnvInt("RTDW_CHAOS_EVENTS", full ? 200000 : 40000);
  o.mids = o.events / 10;
  o.orders = o.events / 40;
  o.users = o.events / 50;
  o.partitions = 8;
  o.es_args = {"--fault-bulk-item-429", "0.2", "--fault-request-503", "0.1"};
  PipelineStack stack(o);
  ASSERT_TRUE(stack.Start().ok());
  ASSERT_TRUE(stack.GenerateDb().ok());
  // Dimension rows first (docs/FORMATS.md §4), then the chaos on all four jobs.
  ASSERT_EQ(stack.RunToIdle("db-split"), 0) << stack.DaemonLog();
  ASSERT_TRUE(stack.GenerateLogs().ok());

  std::mt19937 rng(20261125);
  std::uniform_int_distribution<int> run_ms(150, 1500);
  int es_restarts = 0;
  for (int k = 1; k <= kills; ++k) {
    auto daemon = stack.StartDaemon();
    ASSERT_TRUE(daemon.ok());
    std::this_thread::sleep_for(std::chrono::milliseconds(run_ms(rng)));
    if (k == kills / 3 || k == 2 * kills / 3) {
      // Kill ES mid-delivery and bring it back while the daemon keeps running.
      stack.es().Kill9();
      std::this_thread::sleep_for(std::chrono::milliseconds(300));
      ASSERT_TRUE(stack.es().Restart().ok());
      ++es_restarts;
      std::this_thread::sleep_for(std::chrono::milliseconds(run_ms(rng)));
    }
    ASSERT_TRUE((*daemon)->Running()) << "rtdwd died by itself:\n" << stack.DaemonLog();
    (*daemon)->Kill9();
  }
  EXPECT_EQ(es_restarts, kills >= 3 ? 2 : 0);

  // Finish the day (faults still on), then compare.
  ASSERT_EQ(stack.RunToIdle("", 2.0), 0) << stack.DaemonLog();
  auto dau = stack.CompareDau();
  ASSERT_TRUE(dau.ok()) << dau.status();
  EXPECT_TRUE(dau->exact()) << dau->Summary();
  auto ow = stack.CompareOrderWide();
  ASSERT_TRUE(ow.ok()) << ow.status();
  EXPECT_TRUE(ow->exact()) << ow->Summary();

  ExpectVerifyOk(stack);
  CommandResult faults = RunCommand({"curl", "-s", stack.es().url() + "/_rtdw/faults"});
  std::cout << "chaos: " << kills << " kills, " << es_restarts << " es-lite restarts; DAU "
            << dau->Summary() << "; order-wide " << ow->Summary()
            << "\nes-lite faults: " << faults.out << "\n";
}

}  // namespace
}  // namespace rtdw::testing
