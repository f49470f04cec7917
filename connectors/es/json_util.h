// JSON helpers of the ES connector (internal): parsing (core/json_limits.h ParseJsonSafely, with
// a depth cap), escaping, serialising.
#ifndef RTDW_CONNECTORS_ES_JSON_UTIL_H_
#define RTDW_CONNECTORS_ES_JSON_UTIL_H_

#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "rapidjson/document.h"

namespace rtdw::es_internal {

// Deeper JSON is refused before parsing (ES itself refuses documents nested deeper than 1000).
inline constexpr int kMaxJsonDepth = 1000;

// Parses `text` into *doc. InvalidArgument with RapidJSON's error and offset on failure.
absl::Status ParseJson(std::string_view text, rapidjson::Document* doc);

// Appends `s` as a JSON string literal (with quotes).
void AppendJsonString(std::string_view s, std::string* out);
std::string JsonString(std::string_view s);

// Serialises a value (compact).
std::string ToJson(const rapidjson::Value& v);

// The string member `key` of object `v`, or "" when absent / not a string.
std::string_view StringMember(const rapidjson::Value& v, const char* key);

}  // namespace rtdw::es_internal

#endif  // RTDW_CONNECTORS_ES_JSON_UTIL_H_
