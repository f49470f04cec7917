// The _bulk request body of rtdw-es-lite: NDJSON action and source lines parsed into write
// operations the way Elasticsearch reads them. Pure (no store access), so that it can be fuzzed.
#ifndef RTDW_TOOLS_ES_LITE_BULK_REQUEST_H_
#define RTDW_TOOLS_ES_LITE_BULK_REQUEST_H_

#include <optional>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "tools/es_lite/json.h"
#include "tools/es_lite/store.h"

namespace rtdw::eslite {

// Parses `body` (a POST /_bulk or /<default_index>/_bulk body) into `ops`, in order.
// A request-level problem (empty body, no final newline, a malformed action line, an invalid
// default index, no action at all) is returned as the error ES answers for the whole request; a
// problem of one item's source (not JSON, not an object, a bad update body, a missing, empty
// ("if _id is specified it must not be empty") or too long id) is kept in that op's `error` and
// the op is still returned. `version` / `version_type` are parsed into the op; invalid
// versioning of any item refuses the whole request (ES's BulkRequest.validate). Every action line
// and source is parsed with ParseJson (depth-capped, iterative, UTF-8 validated).
std::optional<EsError> ParseBulkRequest(absl::string_view body, const std::string& default_index,
                                        std::vector<WriteOp>* ops);

}  // namespace rtdw::eslite

#endif  // RTDW_TOOLS_ES_LITE_BULK_REQUEST_H_
