#include "tests/pipeline/doc_drill.h"

#include <fstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "gtest/gtest.h"

namespace rtdw::testing {
namespace {

// True when `line` is the marker of drill `name`: `<!-- drill: NAME -->` or
// `<!-- drill: NAME (a remark) -->`, anywhere on the line.
bool IsMarker(const std::string& line, const std::string& name) {
  const std::string head = absl::StrCat("<!-- drill: ", name);
  size_t at = line.find(head);
  if (at == std::string::npos) return false;
  absl::string_view rest = absl::string_view(line).substr(at + head.size());
  return absl::StartsWith(rest, " ") || absl::StartsWith(rest, "-->");
}

}  // namespace

std::vector<DrillStep> ReadDrill(const std::string& path, const std::string& name) {
  std::ifstream in(path);
  EXPECT_TRUE(in.good()) << "cannot read " << path;
  std::vector<DrillStep> steps;
  int markers = 0;
  bool reading = false, in_block = false;
  std::string line;
  while (std::getline(in, line)) {
    if (IsMarker(line, name)) {
      ++markers;
      reading = markers == 1;
      in_block = false;
      continue;
    }
    if (!reading) continue;
    absl::string_view text = absl::StripAsciiWhitespace(line);
    if (text.empty()) {
      if (in_block) reading = false;
      continue;
    }
    if (!absl::StartsWith(line, "    ")) {  // not a code block line: the drill has ended
      reading = false;
      continue;
    }
    in_block = true;
    DrillStep step;
    if (size_t hash = text.find(" #"); hash != absl::string_view::npos) {
      step.comment = std::string(absl::StripAsciiWhitespace(text.substr(hash + 2)));
      text = absl::StripAsciiWhitespace(text.substr(0, hash));
    }
    step.line = std::string(text);
    step.argv = absl::StrSplit(step.line, ' ', absl::SkipEmpty());
    steps.push_back(std::move(step));
  }
  EXPECT_EQ(markers, 1) << "drill \"" << name << "\" should be marked exactly once in " << path;
  EXPECT_FALSE(steps.empty()) << "drill \"" << name << "\" has no command in " << path;
  return steps;
}

}  // namespace rtdw::testing
