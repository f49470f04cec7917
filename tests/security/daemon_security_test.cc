// The daemon's exposure, on the real binaries:
//  - with no [http] section, /metrics and /health listen on 127.0.0.1:9464 only (never on every
//    interface), checked in /proc/net/tcp;
//  - while rtdwd runs a job, the `rtdw` CLI refuses every write to that job's store, naming the
//    daemon's pid, and still reads it;
//  - a bad [kafka.properties] value stops the daemon with librdkafka's error naming the property,
//    and no secret of the config appears in its output or in --print-config.
#include <signal.h>

#include <fstream>
#include <sstream>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"
#include "tests/harness/services.h"

namespace rtdw::testing {
namespace {

constexpr int kDefaultHttpPort = 9464;

std::string WriteFile(const TempDir& dir, const std::string& name, const std::string& text) {
  std::string path = dir.Sub(name);
  std::ofstream(path) << text;
  return path;
}

// Local addresses ("0100007F:24F8") of the listening TCP sockets (IPv4 and IPv6) on `port`.
std::vector<std::string> Listeners(int port) {
  std::vector<std::string> out;
  char hex_port[8];
  snprintf(hex_port, sizeof(hex_port), "%04X", port);
  for (const char* table : {"/proc/net/tcp", "/proc/net/tcp6"}) {
    std::ifstream in(table);
    std::string line;
    std::getline(in, line);  // header
    while (std::getline(in, line)) {
      std::vector<std::string> f = absl::StrSplit(line, ' ', absl::SkipEmpty());
      if (f.size() < 4 || f[3] != "0A") continue;  // 0A: LISTEN
      if (absl::EndsWith(f[1], absl::StrCat(":", hex_port))) out.push_back(f[1]);
    }
  }
  return out;
}

TEST(DaemonSecurityTest, DefaultHttpIsLoopbackOnlyAndCliWritesAreRefusedWhileItRuns) {
  if (PortOpen(kDefaultHttpPort) || !Listeners(kDefaultHttpPort).empty()) {
    GTEST_SKIP() << "port " << kDefaultHttpPort << " is in use here: cannot run the default";
  }
  KafkaMock kafka;
  ASSERT_TRUE(kafka.Start().ok());
  TempDir dir;
  std::string state = dir.Sub("state");
  // No [http] section: the default listen address.
  std::string path =
      WriteFile(dir, "rtdw.toml",
                absl::StrCat("[kafka]\nbrokers = \"", kafka.bootstrap(),
                             "\"\n[redis]\n[es]\n[state]\ndir = \"", state,
                             "\"\nsync = false\n[jobs]\nenabled = [\"log-split\"]\n"));
  ProcessOptions popts;
  popts.stderr_path = dir.Sub("rtdwd.log");
  auto daemon = ChildProcess::Start({BinDir() + "/rtdwd", "--config", path}, popts);
  ASSERT_TRUE(daemon.ok());
  ASSERT_TRUE(WaitFor([&] { return PortOpen(kDefaultHttpPort); }, std::chrono::seconds(15)))
      << ReadFileOrEmpty(dir.Sub("rtdwd.log"));
  std::vector<std::string> listeners = Listeners(kDefaultHttpPort);
  ASSERT_EQ(listeners.size(), 1u) << absl::StrJoin(listeners, " ");
  EXPECT_EQ(listeners[0], "0100007F:24F8") << "not 127.0.0.1:9464";
  EXPECT_TRUE(absl::StrContains(ReadFileOrEmpty(dir.Sub("rtdwd.log")),
                                "/metrics and /health on 127.0.0.1:9464"));

  // The store exists and is held once the job runs (its /health turns 200).
  ASSERT_TRUE(WaitFor(
      [&] {
        return RunCommand({"curl", "-s", "-o", "/dev/null", "-w", "%{http_code}",
                           absl::StrCat("http://127.0.0.1:", kDefaultHttpPort, "/health")})
                   .out == "200";
      },
      std::chrono::seconds(30)))
      << ReadFileOrEmpty(dir.Sub("rtdwd.log"));
  const std::string rtdw = BinDir() + "/rtdw";
  std::string pid = absl::StrCat((*daemon)->pid());
  for (std::vector<std::string> cmd :
       std::vector<std::vector<std::string>>{{"offsets", "set", "--topic", "ODS_BASE_LOG",
                                              "--partition", "0", "--offset", "1", "--unchecked"},
                                             {"journal", "replay"},
                                             {"deadletter", "retry"},
                                             {"meta", "reset-fingerprint"}}) {
    std::vector<std::string> argv = {rtdw, "--state-dir", state, "--job", "log-split"};
    argv.insert(argv.end(), cmd.begin(), cmd.end());
    CommandResult r = RunCommand(argv, std::chrono::seconds(60));
    std::string text = r.out + r.err;
    EXPECT_EQ(r.exit_code, 1) << absl::StrJoin(cmd, " ") << ": " << text;
    EXPECT_TRUE(absl::StrContains(text, "locked") || absl::StrContains(text, "held by"))
        << absl::StrJoin(cmd, " ") << ": " << text;
    EXPECT_TRUE(absl::StrContains(text, pid)) << absl::StrJoin(cmd, " ") << ": " << text;
  }
  // Reading is fine, and says who holds the store.
  CommandResult show =
      RunCommand({rtdw, "--state-dir", state, "--json", "state", "show"}, std::chrono::seconds(60));
  EXPECT_EQ(show.exit_code, 0) << show.err;
  EXPECT_TRUE(absl::StrContains(show.out, absl::StrCat("\"held_by_pid\":", pid))) << show.out;

  (*daemon)->Signal(SIGTERM);
  auto code = (*daemon)->Wait(std::chrono::seconds(30));
  ASSERT_TRUE(code.has_value());
  EXPECT_EQ(*code, 0) << ReadFileOrEmpty(dir.Sub("rtdwd.log"));
  // Once it stopped, the same write goes through.
  CommandResult w =
      RunCommand({rtdw, "--state-dir", state, "--job", "log-split", "offsets", "set", "--topic",
                  "ODS_BASE_LOG", "--partition", "0", "--offset", "1", "--unchecked"},
                 std::chrono::seconds(60));
  EXPECT_EQ(w.exit_code, 0) << w.out << w.err;
}

TEST(DaemonSecurityTest, ABadKafkaPropertyStopsTheDaemonAndNoSecretIsPrinted) {
  KafkaMock kafka;
  ASSERT_TRUE(kafka.Start().ok());
  TempDir dir;
  const std::string secret = "sasl-secret-5b1f0e";
  const std::string file_secret = "ssl-key-secret-99a3c2";
  std::string key_file = WriteFile(dir, "key.pw", file_secret + "\n");
  std::string path =
      WriteFile(dir, "rtdw.toml",
                absl::StrCat("[kafka]\nbrokers = \"", kafka.bootstrap(),
                             "\"\n[kafka.properties]\n\"security.protocol\" = \"SASL_BOGUS\"\n"
                             "\"sasl.password\" = { env = \"RTDW_TEST_KAFKA_PW\" }\n"
                             "\"ssl.key.password\" = { file = \"",
                             key_file, "\" }\n[redis]\n[es]\n[state]\ndir = \"", dir.Sub("state"),
                             "\"\n[http]\nlisten = \"\"\n[jobs]\nenabled = [\"log-split\"]\n"));
  const std::vector<std::string> env = {"RTDW_TEST_KAFKA_PW=" + secret};
  CommandResult printed = RunCommand({BinDir() + "/rtdwd", "--config", path, "--print-config"},
                                     std::chrono::seconds(30), env);
  EXPECT_EQ(printed.exit_code, 0) << printed.err;
  EXPECT_TRUE(absl::StrContains(printed.out, "\"sasl.password\" = \"***\"")) << printed.out;
  EXPECT_FALSE(absl::StrContains(printed.out + printed.err, secret));
  EXPECT_FALSE(absl::StrContains(printed.out + printed.err, file_secret));

  CommandResult run = RunCommand({BinDir() + "/rtdwd", "--config", path, "--exit-when-idle", "2"},
                                 std::chrono::seconds(60), env);
  std::string text = run.out + run.err;
  EXPECT_EQ(run.exit_code, 1) << text;
  EXPECT_TRUE(absl::StrContains(text, "security.protocol")) << text;
  EXPECT_TRUE(absl::StrContains(text, "SASL_BOGUS")) << text;
  EXPECT_FALSE(absl::StrContains(text, secret)) << text;
  EXPECT_FALSE(absl::StrContains(text, file_secret)) << text;
}

}  // namespace
}  // namespace rtdw::testing
