// What the rtdw CLI needs of Elasticsearch: a JournalSink for `journal replay`, and the reads of
// `dedup restore` and `verify`. Implemented over the ES connector (connectors/es, library
// rtdw_es) when the build has it; otherwise ConnectEs() says the connector is missing.
#ifndef RTDW_TOOLS_RTDW_ES_ACCESS_H_
#define RTDW_TOOLS_RTDW_ES_ACCESS_H_

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/dedup_restore.h"
#include "core/journal_sink.h"

namespace rtdw {

struct EsSettings {
  std::vector<std::string> urls = {"http://127.0.0.1:9200"};
  std::string user;
  std::string password;
  std::string api_key;
  std::string ca_file;
  bool verify_tls = true;
  int64_t bulk_max_bytes = 5242880;
  int64_t max_response_mb = 256;
  // A delivery that has not finished after this long (ES down, or refusing with 429/5xx) is
  // abandoned and reported as an error; the entry stays owed.
  std::chrono::milliseconds delivery_timeout{60000};
};

class EsAccess {
 public:
  virtual ~EsAccess() = default;
  // Delivers journal entries (core/journal_sink.h contract).
  virtual JournalSink& sink() = 0;
  // Installs (idempotently) the DAU and order-wide index templates, as the daemon does at start,
  // so that documents replayed into a new index get their mappings. "" skips a template.
  virtual absl::Status InstallTemplates(std::string_view dau_prefix,
                                        std::string_view order_wide_prefix) = 0;
  // The DAU documents of `index` (refresh, then every document sorted by `mid`; see
  // connectors/es/dau_reader.h). Valid while this EsAccess lives.
  virtual std::unique_ptr<DauDocumentReader> DauReader(std::string_view index) = 0;
};

// True when this rtdw was built with the ES connector.
bool EsConnectorBuiltIn();
// Unimplemented (with a message saying what is missing) in a build without the connector.
absl::StatusOr<std::unique_ptr<EsAccess>> ConnectEs(const EsSettings& settings);

}  // namespace rtdw

#endif  // RTDW_TOOLS_RTDW_ES_ACCESS_H_
