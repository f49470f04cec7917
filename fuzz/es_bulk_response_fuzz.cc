// Fuzz target: what the ES connector parses from the network and from its journal
// (connectors/es/bulk.h, es_client.h): bulk answers, error answers, stored bulk bodies.
//
// Input: the first byte selects; 255 = a stored bulk body (ParseBulkBody, then re-encoded and
// parsed again: the round trip must give the same actions; PreparedBulkBody::FromBody must hold
// the re-encoded bytes); any other value N = a bulk answer
// for N items (ParseBulkResponse: when it succeeds it has exactly N answers, and each is
// classified), also read as an error answer (StatusFromEsResponse) with a few statuses.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "connectors/es/bulk.h"
#include "connectors/es/es_client.h"
#include "fuzz/fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const uint8_t selector = data[0];
  std::string_view body(reinterpret_cast<const char*>(data + 1), size - 1);
  if (selector == 255) {
    // A body sent as it is (PreparedBulkBody) is exactly the parsed and re-encoded one.
    auto prepared = rtdw::PreparedBulkBody::FromBody(body);
    auto strict = rtdw::ParseBulkBody(body);
    FUZZ_CHECK(prepared.ok() == strict.ok(), "FromBody fails exactly when ParseBulkBody does");
    if (prepared.ok()) {
      FUZZ_CHECK(prepared->bytes() == rtdw::EncodeBulkBody(*strict),
                 "the bytes parse + encode give");
      FUZZ_CHECK(prepared->size() == strict->size(), "one place per action");
    }
    auto actions = rtdw::ParseBulkBody(body, "default-index");
    if (!actions.ok()) return 0;
    std::string encoded = rtdw::EncodeBulkBody(*actions);
    size_t expected = 0;
    for (const auto& a : *actions) expected += rtdw::EncodedBulkActionSize(a);
    FUZZ_CHECK(encoded.size() == expected, "EncodedBulkActionSize matches AppendBulkAction");
    auto again = rtdw::ParseBulkBody(encoded);
    FUZZ_CHECK(again.ok(), "an encoded body parses");
    FUZZ_CHECK(again->size() == actions->size(), "the round trip keeps every action");
    for (size_t i = 0; i < actions->size(); ++i) {
      const auto& a = (*actions)[i];
      const auto& b = (*again)[i];
      FUZZ_CHECK(a.op == b.op && a.index == b.index && a.id == b.id, "same action line");
    }
    return 0;
  }
  auto answers = rtdw::ParseBulkResponse(body, selector);
  if (answers.ok()) {
    FUZZ_CHECK(answers->size() == selector, "one answer per item");
    for (const auto& a : *answers) {
      for (rtdw::BulkOp op : {rtdw::BulkOp::kIndex, rtdw::BulkOp::kCreate, rtdw::BulkOp::kDelete,
                              rtdw::BulkOp::kUpdate}) {
        (void)rtdw::ClassifyBulkItem(op, a);
      }
    }
  }
  for (int status : {400, 401, 404, 429, 503}) {
    absl::Status st =
        rtdw::StatusFromEsResponse(rtdw::HttpResponse{status, std::string(body)}, "fuzz");
    FUZZ_CHECK(!st.ok(), "a non-2xx answer is an error");
  }
  (void)rtdw::JsonDepthExceeds(body, 64);
  return 0;
}
