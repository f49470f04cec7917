// rtdwd's command line and lifecycle contract (docs/DESIGN.md "Processes",
// docs/OPERATIONS.md "Signals and lifecycle" for the exit codes),
// exercised on the real binary.
#include <signal.h>

#include <fstream>
#include <optional>
#include <string>

#include "absl/strings/str_cat.h"
#include "core/process/build_info.h"
#include "gtest/gtest.h"
#include "tests/harness/services.h"

namespace rtdw::testing {
namespace {

std::string Rtdwd() { return BinDir() + "/rtdwd"; }

std::string WriteFile(const TempDir& dir, const std::string& name, const std::string& text) {
  std::string path = dir.Sub(name);
  std::ofstream(path) << text;
  return path;
}

// log-split only: it needs Kafka and nothing else.
std::string MinimalConfig(const std::string& state_dir, const std::string& extra = "",
                          const std::string& brokers = "127.0.0.1:9") {
  return absl::StrCat("[kafka]\nbrokers = \"", brokers, "\"\n[redis]\n[es]\n[state]\ndir = \"",
                      state_dir, "\"\n[jobs]\nenabled = [\"log-split\"]\n", extra);
}

// The commit a `--version` line names ("" if none).
std::string CommitOfVersionLine(const std::string& line) {
  std::optional<VersionLineBuild> b = ParseVersionLine(line);
  return b ? b->commit : "";
}

// rtdwd and rtdw say which build they are: the project's version and a commit of this source
// tree (40 hex digits that git knows here; "unknown" only outside a git checkout), exit 0, no
// config needed.
TEST(RtdwdCliTest, VersionNamesTheProjectVersionAndACommitOfThisSourceTree) {
  const bool in_git =
      RunCommand({"git", "-C", RTDW_SOURCE_DIR, "rev-parse", "--is-inside-work-tree"}).exit_code ==
      0;
  for (const std::string program : {"rtdwd", "rtdw"}) {
    SCOPED_TRACE(program);
    CommandResult r = RunCommand({BinDir() + "/" + program, "--version"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out.rfind(absl::StrCat(program, " ", RTDW_VERSION, " (commit "), 0), 0u) << r.out;
    const std::string commit = CommitOfVersionLine(r.out);
    if (!in_git) {
      EXPECT_EQ(commit, "unknown") << r.out;
      continue;
    }
    ASSERT_EQ(commit.size(), 40u) << r.out;
    EXPECT_EQ(commit.find_first_not_of("0123456789abcdef"), std::string::npos) << r.out;
    EXPECT_EQ(RunCommand({"git", "-C", RTDW_SOURCE_DIR, "cat-file", "-e", commit + "^{commit}"})
                  .exit_code,
              0)
        << commit << " is not a commit of " << RTDW_SOURCE_DIR;
  }
}

TEST(RtdwdCliTest, CheckAcceptsAValidConfig) {
  TempDir dir;
  std::string path = WriteFile(dir, "ok.toml", MinimalConfig(dir.Sub("state")));
  CommandResult r = RunCommand({Rtdwd(), "--config", path, "--check"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("is valid"), std::string::npos) << r.out;
}

TEST(RtdwdCliTest, MissingConfigFileIsExit2NamingThePath) {
  CommandResult r = RunCommand({Rtdwd(), "--config", "/nonexistent/rtdw.toml", "--check"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("/nonexistent/rtdw.toml"), std::string::npos) << r.err;
}

TEST(RtdwdCliTest, BadConfigIsExit2WithEveryProblemNamed) {
  TempDir dir;
  std::string path = WriteFile(dir, "bad.toml",
                               "[kafka]\nbrokers = 12\n[redis]\nurl = \"http://x\"\n[es]\n"
                               "[state]\nblock_cach_mb = 5\n[jobs]\n");
  CommandResult r = RunCommand({Rtdwd(), "--config", path});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find(absl::StrCat(path, ":2: kafka.brokers")), std::string::npos) << r.err;
  EXPECT_NE(r.err.find(absl::StrCat(path, ":4: redis.url")), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("block_cache_mb"), std::string::npos) << "suggestion expected: " << r.err;
}

TEST(RtdwdCliTest, UsageErrorsAreExit2AndHelpIsExit0) {
  CommandResult r = RunCommand({Rtdwd(), "--no-such-flag"});
  EXPECT_EQ(r.exit_code, 2);
  r = RunCommand({Rtdwd()});
  EXPECT_EQ(r.exit_code, 2) << "--config is required";
  EXPECT_NE(r.err.find("--config"), std::string::npos) << r.err;
  r = RunCommand({Rtdwd(), "--help"});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_NE(r.out.find("--exit-when-idle"), std::string::npos);
  TempDir dir;
  std::string path = WriteFile(dir, "ok.toml", MinimalConfig(dir.Sub("state")));
  r = RunCommand({Rtdwd(), "--config", path, "--job", "no-such-job"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("no-such-job"), std::string::npos) << r.err;
}

TEST(RtdwdCliTest, ServesMetricsAndHealthAndStopsCleanlyOnSigterm) {
  KafkaMock kafka;
  ASSERT_TRUE(kafka.Start().ok());
  TempDir dir;
  int port = FreePort();
  std::string path = WriteFile(
      dir, "ok.toml",
      MinimalConfig(dir.Sub("state"), absl::StrCat("[http]\nlisten = \"127.0.0.1:", port, "\"\n"),
                    kafka.bootstrap()));
  ProcessOptions popts;
  popts.stderr_path = dir.Sub("rtdwd.log");
  auto proc = ChildProcess::Start({Rtdwd(), "--config", path}, popts);
  ASSERT_TRUE(proc.ok());
  ASSERT_TRUE(WaitFor([&] { return PortOpen(port); }, std::chrono::seconds(10)))
      << ReadFileOrEmpty(dir.Sub("rtdwd.log"));
  // Healthy once every job is consuming.
  std::string http_code;
  EXPECT_TRUE(WaitFor(
      [&] {
        http_code = RunCommand({"curl", "-s", "-o", "/dev/null", "-w", "%{http_code}",
                                absl::StrCat("http://127.0.0.1:", port, "/health")})
                        .out;
        return http_code == "200";
      },
      std::chrono::seconds(20)))
      << "last /health status " << http_code << "; log: " << ReadFileOrEmpty(dir.Sub("rtdwd.log"));
  CommandResult metrics =
      RunCommand({"curl", "-sf", absl::StrCat("http://127.0.0.1:", port, "/metrics")});
  EXPECT_EQ(metrics.exit_code, 0);
  // Which build runs: the same commit as --version prints.
  const std::string commit = CommitOfVersionLine(RunCommand({Rtdwd(), "--version"}).out);
  EXPECT_NE(metrics.out.find(absl::StrCat("rtdw_build_info{version=\"", RTDW_VERSION,
                                          "\",commit=\"", commit, "\",dirty=\"")),
            std::string::npos)
      << metrics.out;
  (*proc)->Signal(SIGTERM);
  auto code = (*proc)->Wait(std::chrono::seconds(15));
  ASSERT_TRUE(code.has_value());
  EXPECT_EQ(*code, 0) << ReadFileOrEmpty(dir.Sub("rtdwd.log"));
}

TEST(RtdwdCliTest, ExitWhenIdleWithNothingToDoExitsZero) {
  KafkaMock kafka;
  ASSERT_TRUE(kafka.Start().ok());
  TempDir dir;
  std::string path =
      WriteFile(dir, "ok.toml",
                MinimalConfig(dir.Sub("state"), "[http]\nlisten = \"\"\n", kafka.bootstrap()));
  CommandResult r =
      RunCommand({Rtdwd(), "--config", path, "--exit-when-idle", "0.2"}, std::chrono::seconds(20));
  EXPECT_EQ(r.exit_code, 0) << r.err;
}

}  // namespace
}  // namespace rtdw::testing
