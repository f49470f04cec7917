// Helpers of the wide-table tests: owned input records and JSON checks.
#ifndef RTDW_TESTS_WIDE_TEST_UTIL_H_
#define RTDW_TESTS_WIDE_TEST_UTIL_H_

#include <cstdint>
#include <deque>
#include <string>
#include <string_view>
#include <vector>

#include "core/records.h"
#include "gtest/gtest.h"
#include "rapidjson/document.h"
#include "rapidjson/stringbuffer.h"
#include "rapidjson/writer.h"

namespace rtdw::testing {

// Input records that own their bytes (InputRecord only views them).
class RecordSet {
 public:
  const InputRecord& Add(std::string_view topic, int32_t partition, int64_t offset,
                         std::string value) {
    topics_.emplace_back(topic);
    values_.push_back(std::move(value));
    InputRecord r;
    r.topic = topics_.back();
    r.partition = partition;
    r.offset = offset;
    r.value = values_.back();
    records_.push_back(r);
    return records_.back();
  }
  const std::vector<InputRecord>& records() const { return records_; }
  std::vector<InputRecord>& mutable_records() { return records_; }
  size_t size() const { return records_.size(); }

 private:
  std::deque<std::string> topics_;
  std::deque<std::string> values_;
  std::vector<InputRecord> records_;
};

inline rapidjson::Document Parse(std::string_view text) {
  rapidjson::Document d;
  d.Parse(text.data(), text.size());
  EXPECT_FALSE(d.HasParseError()) << text;
  return d;
}

// The member names of an object, in order.
inline std::vector<std::string> Keys(const rapidjson::Value& v) {
  std::vector<std::string> out;
  if (!v.IsObject()) return out;
  for (auto m = v.MemberBegin(); m != v.MemberEnd(); ++m) out.emplace_back(m->name.GetString());
  return out;
}

inline std::string Str(const rapidjson::Value& v, const char* name) {
  auto it = v.FindMember(name);
  if (it == v.MemberEnd() || !it->value.IsString()) return "<absent or not a string>";
  return it->value.GetString();
}

}  // namespace rtdw::testing

#endif  // RTDW_TESTS_WIDE_TEST_UTIL_H_
