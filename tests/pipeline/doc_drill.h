// The procedures of docs/OPERATIONS.md as the tests run them: a drill is the indented code block
// after a `<!-- drill: NAME -->` marker (text after NAME inside the marker is a remark). Tests read
// the commands from the document itself, so the document and the test cannot drift apart.
#ifndef RTDW_TESTS_PIPELINE_DOC_DRILL_H_
#define RTDW_TESTS_PIPELINE_DOC_DRILL_H_

#include <string>
#include <vector>

namespace rtdw::testing {

// One command line of a drill.
struct DrillStep {
  std::string line;               // the command, trimmed, without its comment
  std::string comment;            // what followed ` #` on the line ("" when none)
  std::vector<std::string> argv;  // `line` split on spaces
};

// The steps of drill `name` in the Markdown file at `path` (blank lines between the marker and
// the block are allowed; the block ends at the first blank or unindented line). Fails the
// calling test (gtest EXPECT) when the file has no such drill, an empty one, or the marker twice
// (two blocks of one name would leave one of them untested); returns what it found.
std::vector<DrillStep> ReadDrill(const std::string& path, const std::string& name);

}  // namespace rtdw::testing

#endif  // RTDW_TESTS_PIPELINE_DOC_DRILL_H_
