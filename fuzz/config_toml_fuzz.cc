// Fuzz target: the TOML config loader (core/config/config.h) on arbitrary text.
//
// Checks: the loader never throws or crashes; a config that loads is dumpable, and its dump
// loads back to the same dump (the dump is valid TOML that means the same config); every
// problem line names the file.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/config/config.h"
#include "fuzz/fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // A fixed environment: one secret variable, nothing else (never the process's own).
  static const rtdw::EnvLookup env = [](const std::string& name) -> std::optional<std::string> {
    if (name == "FUZZ_SECRET") return std::string("s3cret-value");
    return std::nullopt;
  };
  std::string_view text(reinterpret_cast<const char*>(data), size);
  rtdw::ConfigLoadResult r = rtdw::LoadConfigFromStringDetailed(text, "fuzz.toml", env);
  // The secret's value may only show up in a message when the text itself contains it (as a path
  // or a plain value, which are not secrets).
  const bool secret_in_text = text.find("s3cret-value") != std::string_view::npos;
  for (const std::string& p : r.problems) {
    FUZZ_CHECK(p.rfind("fuzz.toml", 0) == 0 || p.rfind("env ", 0) == 0,
               "every problem names the file or the variable");
    FUZZ_CHECK(secret_in_text || p.find("s3cret-value") == std::string::npos,
               "no secret in an error");
  }
  if (r.ok()) {
    std::string dump = rtdw::DumpConfig(r.config);
    FUZZ_CHECK(secret_in_text || dump.find("s3cret-value") == std::string::npos,
               "no secret in the dump");
    // Masked secrets load back as the text "***" from another origin: compare the rest only.
    if (dump.find("***") == std::string::npos) {
      rtdw::ConfigLoadResult again = rtdw::LoadConfigFromStringDetailed(dump, "dump.toml", env);
      FUZZ_CHECK(again.ok(), again.problems.empty() ? "" : again.problems[0].c_str());
      again.config.source = r.config.source;
      FUZZ_CHECK(rtdw::DumpConfig(again.config) == dump, "the dump loads back to itself");
    }
  }
  return 0;
}
