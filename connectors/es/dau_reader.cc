#include "connectors/es/dau_reader.h"

#include <utility>

#include "absl/strings/match.h"
#include "rapidjson/stringbuffer.h"
#include "rapidjson/writer.h"

namespace rtdw {

EsDauDocumentReader::EsDauDocumentReader(EsClient* client, EsDauReaderOptions options)
    : client_(client), options_(std::move(options)) {}

absl::Status EsDauDocumentReader::Refresh() { return client_->Refresh(options_.index); }

absl::Status EsDauDocumentReader::ForEach(
    const std::function<absl::Status(std::string_view, std::string_view)>& fn) {
  ScrollOptions so;
  if (!options_.src_prefix.empty()) {
    rapidjson::StringBuffer q;
    rapidjson::Writer<rapidjson::StringBuffer> w(q);
    w.StartObject();
    w.Key("prefix");
    w.StartObject();
    w.Key("rtdw_src");
    w.String(options_.src_prefix.data(),
             static_cast<rapidjson::SizeType>(options_.src_prefix.size()));
    w.EndObject();
    w.EndObject();
    so.query_json = q.GetString();
  }
  so.source_includes = {"mid", "ts", "rtdw_src"};
  so.sort = options_.sort;
  so.page_size = options_.page_size;
  bool any = false;
  auto counted = [&](const SearchHit& hit) {
    any = true;
    return fn(hit.id, hit.source);
  };
  absl::Status s = client_->ScrollAll(options_.index, so, counted);
  if (!options_.keyword_fallback || !absl::IsInvalidArgument(s) || any) return s;
  for (std::string& field : so.sort) {
    if (field == "mid") field = "mid.keyword";
  }
  s = client_->ScrollAll(options_.index, so, counted);
  if (absl::IsInvalidArgument(s) && absl::StrContains(s.message(), "No mapping found")) {
    return absl::OkStatus();
  }
  return s;
}

}  // namespace rtdw
