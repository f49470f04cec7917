#include "core/records.h"

#include <charconv>

namespace rtdw {

void AppendSourcePosition(std::string_view topic, int32_t partition, int64_t offset,
                          std::string* out) {
  char num[24];
  out->append(topic);
  out->push_back('/');
  auto r = std::to_chars(num, num + sizeof(num), partition);
  out->append(num, r.ptr);
  out->push_back('/');
  r = std::to_chars(num, num + sizeof(num), offset);
  out->append(num, r.ptr);
}

std::string SourcePosition(std::string_view topic, int32_t partition, int64_t offset) {
  std::string s;
  s.reserve(topic.size() + 24);
  AppendSourcePosition(topic, partition, offset, &s);
  return s;
}

void CollectingSink::Emit(const OutputRecord& r) {
  outputs.push_back(Output{r.slot, std::string(r.topic), std::string(r.key), std::string(r.value),
                           std::string(r.src), r.idx});
}

void CollectingSink::DeadLetter(const DeadLetterRecord& r) {
  dead_letters.push_back(
      Dead{std::string(r.key), std::string(r.value), std::string(r.reason), std::string(r.src)});
}

void CollectingSink::Clear() {
  outputs.clear();
  dead_letters.clear();
}

void CountingSink::Emit(const OutputRecord& r) {
  if (!r.topic.empty()) {
    ++by_name;
  } else if (r.slot >= 0 && r.slot < kLogSlotCount) {
    ++per_slot[r.slot];
  }
  bytes += r.key.size() + r.value.size();
}

void CountingSink::DeadLetter(const DeadLetterRecord& r) {
  ++dead_letters;
  bytes += r.value.size();
}

}  // namespace rtdw
