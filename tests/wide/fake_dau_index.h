// A fake Elasticsearch index of DAU documents (core/dedup_restore.h's DauDocumentReader) for the
// tests of the de-dup restore and the day check: documents become visible only on a refresh, as
// in Elasticsearch; the index can be missing, and a scan can fail part-way. Not thread-safe.
#ifndef RTDW_TESTS_WIDE_FAKE_DAU_INDEX_H_
#define RTDW_TESTS_WIDE_FAKE_DAU_INDEX_H_

#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "core/dedup_restore.h"

namespace rtdw::testing {

// An index: Index() adds a document that a search sees only after the next Refresh().
class FakeIndex : public DauDocumentReader {
 public:
  void Index(std::string id, std::string source) {
    indexed_.emplace_back(std::move(id), std::move(source));
  }
  absl::Status Refresh() override {
    ++refreshes;
    if (missing) return absl::NotFoundError("no such index");
    visible_ = indexed_;
    return absl::OkStatus();
  }
  absl::Status ForEach(
      const std::function<absl::Status(std::string_view, std::string_view)>& fn) override {
    if (missing) return absl::NotFoundError("no such index");
    size_t n = 0;
    for (const auto& [id, source] : visible_) {
      if (fail_after && n++ == *fail_after) return absl::UnavailableError("ES went away");
      if (absl::Status s = fn(id, source); !s.ok()) return s;
    }
    return absl::OkStatus();
  }

  bool missing = false;
  std::optional<size_t> fail_after;  // documents delivered before the scan fails
  int refreshes = 0;

 private:
  std::vector<std::pair<std::string, std::string>> indexed_, visible_;
};

}  // namespace rtdw::testing

#endif  // RTDW_TESTS_WIDE_FAKE_DAU_INDEX_H_
