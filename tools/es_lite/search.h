// _search, _count and _source filtering in rtdw-es-lite.
//
// Queries: match_all, match_none, term, terms, range, match, prefix, exists, ids, bool
// (must/filter/should/must_not/minimum_should_match), constant_score. Sort on fields, _id, _index,
// _doc, _score with order/missing/mode/unmapped_type; search_after; from/size within
// index.max_result_window; _source includes/excludes; track_total_hits; post_filter.
// Aggregations: terms, value_count, cardinality, min, max, sum, avg, date_histogram
// (calendar_interval / fixed_interval, time_zone, format, min_doc_count), histogram, filter, with
// sub-aggregations under bucket aggregations.
// Anything else in a request is a 400 naming it. Relevance is not computed: every hit scores 1.0
// and the unsorted order is index name, then _id.
#ifndef RTDW_TOOLS_ES_LITE_SEARCH_H_
#define RTDW_TOOLS_ES_LITE_SEARCH_H_

#include <map>
#include <string>
#include <vector>

#include "rapidjson/document.h"
#include "tools/es_lite/json.h"
#include "tools/es_lite/store.h"

namespace rtdw::eslite {

using Params = std::multimap<std::string, std::string>;

// Which parts of _source a response shows.
class SourceFilter {
 public:
  // From a search body's "_source" (may be null) and the URL parameters _source,
  // _source_includes, _source_excludes (the parameters win).
  static Result<SourceFilter> Create(const rapidjson::Value* body_source, const Params& params);
  bool fetch() const { return fetch_; }
  bool identity() const { return fetch_ && includes_.empty() && excludes_.empty(); }
  // Writes the filtered source object (source must be a JSON object text).
  void Write(Writer& w, absl::string_view source) const;

 private:
  bool fetch_ = true;
  std::vector<std::string> includes_;
  std::vector<std::string> excludes_;
};

// What differs between the servers es-lite can present itself as (see server.h Identity).
struct SearchOptions {
  // False as on Elasticsearch 8 (indices.id_field_data.enabled: false): sorting on _id is a 400
  // search_phase_execution_exception caused by illegal_argument_exception.
  bool id_field_data = true;
  bool doc_type = false;  // hits carry "_type": "_doc" (Elasticsearch 7)
};

// Runs a search over `indices` (resolved, sorted); returns the response body.
Result<std::string> RunSearch(const Store& store, const std::vector<IndexInfo>& indices,
                              const rapidjson::Value* body, const Params& params,
                              const SearchOptions& options = {});

// Counts the documents matching body.query (all when absent).
Result<uint64_t> RunCount(const Store& store, const std::vector<IndexInfo>& indices,
                          const rapidjson::Value* body);

}  // namespace rtdw::eslite

#endif  // RTDW_TOOLS_ES_LITE_SEARCH_H_
