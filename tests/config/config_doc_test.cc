// docs/CONFIG.md cannot drift from the loader: its key tables (section "Keys") list exactly the
// keys LoadConfig accepts (AcceptedConfigKeys: every key a Section of the loader asks for).
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <iterator>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "core/config/config.h"

namespace rtdw {
namespace {

// The first cells of the table rows between "## Keys" and the next "## " heading that name a
// key: | `kafka.brokers` | ...
std::vector<std::string> DocumentedKeys(const std::string& doc) {
  std::istringstream in(doc);
  std::string line;
  bool in_keys = false;
  std::vector<std::string> keys;
  const std::regex row(R"(^\|\s*`([a-z_.-]+)`\s*\|)");
  while (std::getline(in, line)) {
    if (line.rfind("## ", 0) == 0) in_keys = line == "## Keys";
    std::smatch m;
    if (in_keys && std::regex_search(line, m, row)) keys.push_back(m[1]);
  }
  return keys;
}

TEST(ConfigDocTest, DocumentedKeysAreExactlyTheAcceptedKeys) {
  std::ifstream f(std::string(RTDW_SOURCE_DIR) + "/docs/CONFIG.md");
  ASSERT_TRUE(f) << "cannot read docs/CONFIG.md";
  std::string doc((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  std::vector<std::string> documented = DocumentedKeys(doc);
  std::vector<std::string> accepted = AcceptedConfigKeys();
  ASSERT_GT(accepted.size(), 50u);  // the loader really was asked (an empty list proves nothing)

  std::set<std::string> doc_set(documented.begin(), documented.end());
  EXPECT_EQ(doc_set.size(), documented.size()) << "a key is documented twice in docs/CONFIG.md";
  std::set<std::string> accepted_set(accepted.begin(), accepted.end());
  std::vector<std::string> undocumented, unknown;
  std::set_difference(accepted_set.begin(), accepted_set.end(), doc_set.begin(), doc_set.end(),
                      std::back_inserter(undocumented));
  std::set_difference(doc_set.begin(), doc_set.end(), accepted_set.begin(), accepted_set.end(),
                      std::back_inserter(unknown));
  auto join = [](const std::vector<std::string>& v) {
    std::string out;
    for (const auto& s : v) out += " " + s;
    return out;
  };
  EXPECT_TRUE(undocumented.empty())
      << "keys the loader accepts that docs/CONFIG.md's Keys tables do not list:"
      << join(undocumented);
  EXPECT_TRUE(unknown.empty()) << "keys docs/CONFIG.md lists that the loader does not accept:"
                               << join(unknown);
}

// AcceptedConfigKeys really is what the loader accepts: each listed key is not refused as
// unknown, and a key it does not list is.
TEST(ConfigDocTest, AcceptedKeysAreWhatTheLoaderAccepts) {
  // A file with the required sections, `table` holding `name` = {} (the wrong type for most keys:
  // the loader then reports a type problem, never "unknown key").
  auto file_with = [](const std::string& table, const std::string& line) {
    std::string text;
    for (const char* section : {"kafka", "redis", "es", "state", "jobs"}) {
      if (table != section) text += "[" + std::string(section) + "]\n";
    }
    return text + "[" + table + "]\n" + line + "\n";
  };
  for (const std::string& key : AcceptedConfigKeys()) {
    size_t dot = key.rfind('.');
    ConfigLoadResult r = LoadConfigFromStringDetailed(
        file_with(key.substr(0, dot), "\"" + key.substr(dot + 1) + "\" = {}"), "t.toml", {});
    for (const std::string& p : r.problems) {
      EXPECT_EQ(p.find("unknown"), std::string::npos) << key << ": " << p;
    }
  }
  ConfigLoadResult r =
      LoadConfigFromStringDetailed(file_with("state", "not_a_key = 1"), "t.toml", {});
  ASSERT_EQ(r.problems.size(), 1u);
  EXPECT_NE(r.problems[0].find("state.not_a_key: unknown key"), std::string::npos) << r.problems[0];
}

}  // namespace
}  // namespace rtdw
