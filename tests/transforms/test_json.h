// Test helpers: compare JSON texts by value (member order and number spelling aside).
#ifndef RTDW_TESTS_TRANSFORMS_TEST_JSON_H_
#define RTDW_TESTS_TRANSFORMS_TEST_JSON_H_

#include <string>
#include <string_view>
#include <vector>

#include "gtest/gtest.h"
#include "rapidjson/document.h"
#include "rapidjson/stringbuffer.h"
#include "rapidjson/writer.h"

namespace rtdw::testing {

inline rapidjson::Document ParseOrDie(std::string_view text) {
  rapidjson::Document d;
  d.Parse<rapidjson::kParseFullPrecisionFlag>(text.data(), text.size());
  EXPECT_FALSE(d.HasParseError()) << text;
  return d;
}

// Same value: same members (any order), numbers equal as numbers (8197.00 == 8197.0 == 8197),
// strings equal. Also checks that each member keeps its JSON kind (string vs number...).
inline ::testing::AssertionResult JsonEq(std::string_view expected, std::string_view actual) {
  rapidjson::Document e = ParseOrDie(expected);
  rapidjson::Document a = ParseOrDie(actual);
  if (!(e == a)) {
    return ::testing::AssertionFailure() << "\nexpected: " << expected << "\n  actual: " << actual;
  }
  if (e.IsObject()) {
    for (auto m = e.MemberBegin(); m != e.MemberEnd(); ++m) {
      const auto& av = a[m->name];
      bool same_kind = (m->value.IsNumber() && av.IsNumber()) || m->value.GetType() == av.GetType();
      if (!same_kind) {
        return ::testing::AssertionFailure()
               << "member " << m->name.GetString()
               << " changed its JSON type\nexpected: " << expected << "\n  actual: " << actual;
      }
    }
  }
  return ::testing::AssertionSuccess();
}

// The member names of a JSON object, in order.
inline std::vector<std::string> Keys(std::string_view json) {
  rapidjson::Document d = ParseOrDie(json);
  std::vector<std::string> keys;
  if (!d.IsObject()) return keys;
  for (auto m = d.MemberBegin(); m != d.MemberEnd(); ++m) keys.emplace_back(m->name.GetString());
  return keys;
}

}  // namespace rtdw::testing

#endif  // RTDW_TESTS_TRANSFORMS_TEST_JSON_H_
