// The DAU documents of an index (or index pattern) in Elasticsearch, as core/dedup_restore.h's
// DauDocumentReader: what rtdwd's group hand-over and `rtdw dedup restore` / `rtdw verify` read.
#ifndef RTDW_CONNECTORS_ES_DAU_READER_H_
#define RTDW_CONNECTORS_ES_DAU_READER_H_

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "connectors/es/es_client.h"
#include "core/dedup_restore.h"

namespace rtdw {

struct EsDauReaderOptions {
  std::string index;       // an index ("gmall_dau_info_2025-11-25") or a pattern ("..._*")
  std::string src_prefix;  // only documents whose rtdw_src starts with it ("TOPIC/3/"); "" = all
  // A total order of the documents (ScrollOptions::sort): "mid" is a keyword under the DAU index
  // template and unique per index.
  std::vector<std::string> sort = {"mid"};
  // When sorting on `mid` is refused before any document (an index made without the template,
  // where `mid` is text), sort on its dynamic `mid.keyword` instead; when neither is mapped, no
  // document of the index has a `mid`: it holds no DAU document (ForEach is OK, calls nothing).
  bool keyword_fallback = true;
  size_t page_size = 1000;
};

// Reads with `client` (not owned; must outlive the reader). Not thread-safe.
class EsDauDocumentReader : public DauDocumentReader {
 public:
  EsDauDocumentReader(EsClient* client, EsDauReaderOptions options);

  // POST /<index>/_refresh.
  absl::Status Refresh() override;
  // Every matching document with `mid`, `ts` and `rtdw_src` of its _source, in `sort` order.
  absl::Status ForEach(
      const std::function<absl::Status(std::string_view id, std::string_view source)>& fn) override;

 private:
  EsClient* client_;
  EsDauReaderOptions options_;
};

}  // namespace rtdw

#endif  // RTDW_CONNECTORS_ES_DAU_READER_H_
