// core/process/logging: the JSON line format (log.format = "json") and the text format, checked on
// what the process's stderr really receives.
#include "core/process/logging.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"
#include "rapidjson/document.h"
#include "spdlog/spdlog.h"

namespace rtdw {
namespace {

// Runs `fn` with fd 2 redirected to a file; returns what was written.
template <typename Fn>
std::string CaptureStderr(Fn fn) {
  char path[] = "/tmp/rtdw-logging-test-XXXXXX";
  int fd = mkstemp(path);
  EXPECT_GE(fd, 0);
  fflush(stderr);
  int saved = dup(2);
  dup2(fd, 2);
  fn();
  spdlog::default_logger()->flush();
  fflush(stderr);
  dup2(saved, 2);
  close(saved);
  std::string out;
  lseek(fd, 0, SEEK_SET);
  char buf[4096];
  for (ssize_t n; (n = read(fd, buf, sizeof buf)) > 0;) out.append(buf, n);
  close(fd);
  unlink(path);
  return out;
}

TEST(LoggingTest, JsonFormatIsOneValidObjectPerLine) {
  const std::string tricky =
      "quote \" backslash \\ newline \n tab \t bell \x07 utf8 \xc3\xa9 "
      "broken \xff\xfe end";
  std::string out = CaptureStderr([&] {
    InitLogging(LogLevel::kDebug, LogFormat::kJson);
    spdlog::info("plain message");
    spdlog::warn("{}", tricky);
    spdlog::debug("debug shown at level debug");
    spdlog::trace("trace not shown");
  });
  std::vector<std::string> lines = absl::StrSplit(out, '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 3u) << out;
  const char* levels[] = {"info", "warning", "debug"};
  for (size_t i = 0; i < lines.size(); ++i) {
    rapidjson::Document doc;
    doc.Parse<rapidjson::kParseValidateEncodingFlag>(lines[i].c_str());
    ASSERT_FALSE(doc.HasParseError()) << "not valid JSON: " << lines[i];
    ASSERT_TRUE(doc.IsObject());
    EXPECT_STREQ(doc["level"].GetString(), levels[i]) << lines[i];
    EXPECT_STREQ(doc["logger"].GetString(), "rtdw");
    // 2025-11-25T10:15:00.123+0800 style: date, time with milliseconds, zone.
    std::string ts = doc["ts"].GetString();
    EXPECT_EQ(ts.size(), std::string("2025-11-25T10:15:00.123+00:00").size()) << ts;
    EXPECT_EQ(ts[10], 'T') << ts;
  }
  rapidjson::Document doc;
  doc.Parse(lines[1].c_str());
  EXPECT_EQ(std::string(doc["msg"].GetString()),
            "quote \" backslash \\ newline \n tab \t bell \x07 utf8 \xc3\xa9 broken "
            "\xef\xbf\xbd\xef\xbf\xbd end");
}

TEST(LoggingTest, TextFormatAndLevelFollowAReInit) {
  std::string out = CaptureStderr([] {
    InitLogging(LogLevel::kWarn, LogFormat::kText);
    spdlog::info("hidden at warn");
    spdlog::warn("shown at warn");
    InitLogging(LogLevel::kInfo, LogFormat::kText);  // a SIGHUP reload
    spdlog::info("shown after the reload");
  });
  EXPECT_FALSE(absl::StrContains(out, "hidden at warn")) << out;
  EXPECT_TRUE(absl::StrContains(out, "warning shown at warn")) << out;
  EXPECT_TRUE(absl::StrContains(out, "info  shown after the reload")) << out;
  EXPECT_FALSE(absl::StrContains(out, "{\"ts\"")) << out;
}

TEST(LoggingTest, JsonEscapeKeepsUtf8AndReplacesTheRest) {
  EXPECT_EQ(JsonEscape("a\"b\\c\n"), "a\\\"b\\\\c\\n");
  EXPECT_EQ(JsonEscape("\x01"), "\\u0001");
  EXPECT_EQ(JsonEscape("\xe4\xb8\xad\xf0\x9f\x98\x80"), "\xe4\xb8\xad\xf0\x9f\x98\x80");
  EXPECT_EQ(JsonEscape("\xc0\xaf"), "\\ufffd\\ufffd");             // overlong
  EXPECT_EQ(JsonEscape("\xed\xa0\x80"), "\\ufffd\\ufffd\\ufffd");  // surrogate
  EXPECT_EQ(JsonEscape("\xe4\xb8"), "\\ufffd\\ufffd");             // cut short
}

}  // namespace
}  // namespace rtdw
