#include "core/process/logging.h"

#include <memory>

#include "absl/strings/str_cat.h"
#include "spdlog/pattern_formatter.h"
#include "spdlog/sinks/stdout_sinks.h"
#include "spdlog/spdlog.h"

namespace rtdw {
namespace {

// Formats a record as {"ts":...,"level":...,"logger":...,"msg":...}\n with the message escaped.
class JsonFormatter final : public spdlog::formatter {
 public:
  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    time_formatter_.format(msg, ts_buf_);
    std::string line = absl::StrCat(
        "{\"ts\":\"", std::string(ts_buf_.data(), ts_buf_.size()), "\",\"level\":\"",
        std::string(spdlog::level::to_string_view(msg.level).data(),
                    spdlog::level::to_string_view(msg.level).size()),
        "\",\"logger\":\"", JsonEscape(std::string(msg.logger_name.data(), msg.logger_name.size())),
        "\",\"msg\":\"", JsonEscape(std::string(msg.payload.data(), msg.payload.size())), "\"}\n");
    ts_buf_.clear();
    dest.append(line.data(), line.data() + line.size());
  }
  std::unique_ptr<spdlog::formatter> clone() const override {
    return std::make_unique<JsonFormatter>();
  }

 private:
  spdlog::pattern_formatter time_formatter_{"%Y-%m-%dT%H:%M:%S.%e%z",
                                            spdlog::pattern_time_type::local, ""};
  spdlog::memory_buf_t ts_buf_;
};

}  // namespace

namespace {

// Length of the well-formed UTF-8 sequence starting at s[i] (1-4), or 0 when it is not one
// (overlong forms, surrogates and code points above U+10FFFF are not well-formed).
size_t Utf8SequenceLength(const std::string& s, size_t i) {
  const auto byte = [&s](size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char c = byte(i);
  size_t n = 0;
  unsigned char lo = 0x80, hi = 0xBF;  // allowed range of the second byte
  if (c >= 0xC2 && c <= 0xDF) {
    n = 2;
  } else if (c >= 0xE0 && c <= 0xEF) {
    n = 3;
    if (c == 0xE0) lo = 0xA0;
    if (c == 0xED) hi = 0x9F;
  } else if (c >= 0xF0 && c <= 0xF4) {
    n = 4;
    if (c == 0xF0) lo = 0x90;
    if (c == 0xF4) hi = 0x8F;
  } else {
    return 0;
  }
  if (i + n > s.size()) return 0;
  if (byte(i + 1) < lo || byte(i + 1) > hi) return 0;
  for (size_t k = 2; k < n; ++k) {
    if (byte(i + k) < 0x80 || byte(i + k) > 0xBF) return 0;
  }
  return n;
}

}  // namespace

std::string JsonEscape(const std::string& s) {
  std::string out;
  out.reserve(s.size() + 8);
  for (size_t i = 0; i < s.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (c < 0x20) {
          char buf[8];
          snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else if (c < 0x80) {
          out += static_cast<char>(c);
        } else if (size_t n = Utf8SequenceLength(s, i); n > 0) {
          out.append(s, i, n);
          i += n - 1;
        } else {
          out += "\\ufffd";  // not UTF-8 (e.g. raw record bytes): the line stays valid JSON
        }
    }
  }
  return out;
}

void InitLogging(LogLevel level, LogFormat format) {
  spdlog::level::level_enum lvl = spdlog::level::info;
  switch (level) {
    case LogLevel::kTrace:
      lvl = spdlog::level::trace;
      break;
    case LogLevel::kDebug:
      lvl = spdlog::level::debug;
      break;
    case LogLevel::kInfo:
      lvl = spdlog::level::info;
      break;
    case LogLevel::kWarn:
      lvl = spdlog::level::warn;
      break;
    case LogLevel::kError:
      lvl = spdlog::level::err;
      break;
  }
  auto logger = spdlog::default_logger();
  if (logger->name() != "rtdw") {
    logger =
        std::make_shared<spdlog::logger>("rtdw", std::make_shared<spdlog::sinks::stderr_sink_mt>());
    spdlog::set_default_logger(logger);
  }
  if (format == LogFormat::kJson) {
    logger->set_formatter(std::make_unique<JsonFormatter>());
  } else {
    logger->set_formatter(
        std::make_unique<spdlog::pattern_formatter>("%Y-%m-%d %H:%M:%S.%e %^%-5l%$ %v"));
  }
  logger->set_level(lvl);
  logger->flush_on(spdlog::level::info);
}

}  // namespace rtdw
