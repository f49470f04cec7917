// JSON and error helpers of rtdw-es-lite: parsing (core/json_limits.h ParseJsonSafely, with a
// depth cap), the ES error shape, and a small result type carrying either a value or an EsError.
#ifndef RTDW_TOOLS_ES_LITE_JSON_H_
#define RTDW_TOOLS_ES_LITE_JSON_H_

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/strings/string_view.h"
#include "rapidjson/document.h"
#include "rapidjson/stringbuffer.h"
#include "rapidjson/writer.h"

namespace rtdw::eslite {

using Writer = rapidjson::Writer<rapidjson::StringBuffer>;

// ES (Jackson) refuses JSON nested deeper than 1000 levels; so do we, before parsing.
inline constexpr int kMaxDepth = 1000;

// Parses `text`; on failure returns the reason (with offset) and leaves *doc unusable.
std::optional<std::string> ParseJson(absl::string_view text, rapidjson::Document* doc);

absl::string_view Sv(const rapidjson::Value& v);  // a string value's text (v must be a string)
void WriteStr(Writer& w, absl::string_view s);
void WriteKey(Writer& w, absl::string_view s);
std::string ToJson(const rapidjson::Value& v);
// The text of a scalar as ES shows it in messages and keyword terms (strings unquoted).
std::string ScalarText(const rapidjson::Value& v);

// An Elasticsearch error: {"error":{"root_cause":[...],"type":...,"reason":...},"status":N}.
struct EsError {
  int status = 400;
  std::string type;
  std::string reason;
  std::vector<std::pair<std::string, std::string>> extra;  // e.g. {"index", "foo"}
  std::string caused_by_type;
  std::string caused_by_reason;
  // The root cause when it is not the error itself (e.g. a search_phase_execution_exception
  // whose root cause is an illegal_argument_exception); empty: the error itself.
  std::string root_cause_type;
  std::string root_cause_reason;

  // The inner object {"type":...,"reason":...,...}.
  void WriteCause(Writer& w) const;
  // The whole answer body.
  std::string Body() const;
};

EsError BadRequest(std::string type, std::string reason);
EsError IllegalArgument(std::string reason);
EsError ParsingException(std::string reason);
EsError IndexNotFound(absl::string_view index);
EsError Unsupported(std::string what);  // 400 illegal_argument_exception naming the feature

// Either a value or an EsError.
template <typename T>
class Result {
 public:
  Result(T value) : value_(std::move(value)) {}        // NOLINT: implicit by design
  Result(EsError error) : error_(std::move(error)) {}  // NOLINT
  bool ok() const { return value_.has_value(); }
  T& value() { return *value_; }
  const T& value() const { return *value_; }
  T& operator*() { return *value_; }
  T* operator->() { return &*value_; }
  const EsError& error() const { return error_; }

 private:
  std::optional<T> value_;
  EsError error_;
};

}  // namespace rtdw::eslite

#endif  // RTDW_TOOLS_ES_LITE_JSON_H_
