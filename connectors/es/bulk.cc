#include "connectors/es/bulk.h"

#include <algorithm>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "connectors/es/json_util.h"
#include "core/status_util.h"

namespace rtdw {

using es_internal::AppendJsonString;
using es_internal::ParseJson;
using es_internal::StringMember;

std::string_view BulkOpName(BulkOp op) {
  switch (op) {
    case BulkOp::kIndex:
      return "index";
    case BulkOp::kCreate:
      return "create";
    case BulkOp::kDelete:
      return "delete";
    case BulkOp::kUpdate:
      return "update";
  }
  return "index";
}

namespace {

void AppendSourceLine(std::string_view source, std::string* out) {
  if (memchr(source.data(), '\n', source.size()) == nullptr &&
      memchr(source.data(), '\r', source.size()) == nullptr) {
    out->append(source);
  } else {
    // Outside strings a line break is whitespace; inside a valid JSON string it cannot occur raw.
    for (char c : source) out->push_back(c == '\n' || c == '\r' ? ' ' : c);
  }
  out->push_back('\n');
}

void AppendVersion(const BulkAction& a, std::string* out) {
  if (a.version < 0) return;
  absl::StrAppend(out, ",\"version\":", a.version);
  if (!a.version_type.empty()) {
    out->append(",\"version_type\":");
    AppendJsonString(a.version_type, out);
  }
}

}  // namespace

void AppendBulkAction(const BulkAction& a, std::string* out) {
  out->append("{\"");
  out->append(BulkOpName(a.op));
  out->append("\":{\"_index\":");
  AppendJsonString(a.index, out);
  if (!a.id.empty()) {
    out->append(",\"_id\":");
    AppendJsonString(a.id, out);
  }
  AppendVersion(a, out);
  out->append("}}\n");
  if (a.op != BulkOp::kDelete) AppendSourceLine(a.source, out);
}

size_t EncodedBulkActionSize(const BulkAction& a) {
  // Exact for plain ASCII names; escaping only makes names longer, so compute it precisely.
  std::string tmp;
  tmp.reserve(64 + a.index.size() + a.id.size());
  tmp.append("{\"");
  tmp.append(BulkOpName(a.op));
  tmp.append("\":{\"_index\":");
  AppendJsonString(a.index, &tmp);
  if (!a.id.empty()) {
    tmp.append(",\"_id\":");
    AppendJsonString(a.id, &tmp);
  }
  AppendVersion(a, &tmp);
  tmp.append("}}\n");
  size_t n = tmp.size();
  if (a.op != BulkOp::kDelete) n += a.source.size() + 1;
  return n;
}

std::string EncodeBulkBody(std::span<const BulkAction> actions) {
  size_t total = 0;
  for (const auto& a : actions) total += EstimatedBulkActionSize(a);
  std::string out;
  out.reserve(total);
  for (const auto& a : actions) AppendBulkAction(a, &out);
  return out;
}

absl::StatusOr<std::vector<BulkAction>> ParseBulkBody(std::string_view body,
                                                      std::string_view default_index) {
  std::vector<BulkAction> actions;
  size_t pos = 0;
  int line_no = 0;
  auto next_line = [&](std::string_view* line) {
    while (pos < body.size()) {
      size_t nl = body.find('\n', pos);
      if (nl == std::string_view::npos) nl = body.size();
      *line = body.substr(pos, nl - pos);
      pos = nl + 1;
      ++line_no;
      if (!line->empty() && line->back() == '\r') line->remove_suffix(1);
      if (line->find_first_not_of(" \t") != std::string_view::npos) return true;
    }
    return false;
  };
  std::string_view line;
  while (next_line(&line)) {
    rapidjson::Document doc;
    absl::Status st = ParseJson(line, &doc);
    if (!st.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("bulk body line ", line_no, ": action line: ", st.message()));
    }
    if (!doc.IsObject() || doc.MemberCount() != 1 || !doc.MemberBegin()->value.IsObject()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "bulk body line ", line_no, ": expected {\"<op>\":{...}} as the action line"));
    }
    BulkAction a;
    std::string_view op(doc.MemberBegin()->name.GetString(),
                        doc.MemberBegin()->name.GetStringLength());
    if (op == "index") {
      a.op = BulkOp::kIndex;
    } else if (op == "create") {
      a.op = BulkOp::kCreate;
    } else if (op == "delete") {
      a.op = BulkOp::kDelete;
    } else if (op == "update") {
      a.op = BulkOp::kUpdate;
    } else {
      return absl::InvalidArgumentError(
          absl::StrCat("bulk body line ", line_no, ": unknown action [", ToAbsl(op), "]"));
    }
    const auto& meta = doc.MemberBegin()->value;
    a.index = std::string(StringMember(meta, "_index"));
    if (a.index.empty()) a.index = std::string(default_index);
    if (a.index.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("bulk body line ", line_no, ": action without _index"));
    }
    a.id = std::string(StringMember(meta, "_id"));
    if (auto v = meta.FindMember("version"); v != meta.MemberEnd()) {
      if (!v->value.IsInt64() || v->value.GetInt64() < 0) {
        return absl::InvalidArgumentError(
            absl::StrCat("bulk body line ", line_no, ": version is not a non-negative integer"));
      }
      a.version = v->value.GetInt64();
      a.version_type = std::string(StringMember(meta, "version_type"));
    }
    if (a.op != BulkOp::kDelete) {
      int action_line = line_no;
      if (!next_line(&line)) {
        return absl::InvalidArgumentError(absl::StrCat(
            "bulk body line ", action_line, ": ", ToAbsl(op), " action without a source line"));
      }
      a.source = std::string(line);
    }
    actions.push_back(std::move(a));
  }
  return actions;
}

absl::StatusOr<std::vector<BulkItemAnswer>> ParseBulkResponse(std::string_view body,
                                                              size_t expected_items) {
  rapidjson::Document doc;
  absl::Status st = ParseJson(body, &doc);
  if (!st.ok()) return absl::DataLossError(absl::StrCat("bulk response: ", st.message()));
  if (!doc.IsObject()) return absl::DataLossError("bulk response is not a JSON object");
  auto items = doc.FindMember("items");
  if (items == doc.MemberEnd() || !items->value.IsArray()) {
    return absl::DataLossError("bulk response without items[]");
  }
  if (items->value.Size() != expected_items) {
    return absl::DataLossError(absl::StrCat("bulk response has ", items->value.Size(),
                                            " items for ", expected_items, " actions"));
  }
  std::vector<BulkItemAnswer> answers;
  answers.reserve(expected_items);
  for (const auto& wrapper : items->value.GetArray()) {
    BulkItemAnswer ans;
    if (wrapper.IsObject() && wrapper.MemberCount() >= 1 &&
        wrapper.MemberBegin()->value.IsObject()) {
      const auto& item = wrapper.MemberBegin()->value;
      auto status = item.FindMember("status");
      if (status != item.MemberEnd() && status->value.IsInt()) ans.status = status->value.GetInt();
      ans.result = std::string(StringMember(item, "result"));
      auto err = item.FindMember("error");
      if (err != item.MemberEnd()) {
        if (err->value.IsObject()) {
          ans.error_type = std::string(StringMember(err->value, "type"));
          ans.reason = std::string(StringMember(err->value, "reason"));
          auto caused = err->value.FindMember("caused_by");
          if (caused != err->value.MemberEnd() && caused->value.IsObject()) {
            std::string_view cr = StringMember(caused->value, "reason");
            if (!cr.empty()) absl::StrAppend(&ans.reason, " (caused by: ", ToAbsl(cr), ")");
          }
        } else if (err->value.IsString()) {
          ans.error_type = "error";
          ans.reason = err->value.GetString();
        }
        if (ans.error_type.empty()) ans.error_type = "error";
      }
    }
    answers.push_back(std::move(ans));
  }
  return answers;
}

ItemVerdict ClassifyBulkItem(BulkOp op, const BulkItemAnswer& a, bool versioned) {
  const int s = a.status;
  if (s == 0) return ItemVerdict::kRetry;
  if (s == 200 || s == 201) return ItemVerdict::kDone;
  if (s == 409 && versioned && a.error_type == "version_conflict_engine_exception") {
    return ItemVerdict::kSuperseded;
  }
  if (s == 409 && op == BulkOp::kCreate) return ItemVerdict::kDone;
  if (s == 404 && op == BulkOp::kDelete && a.error_type.empty()) return ItemVerdict::kDone;
  if (s == 429 || s == 408 || s >= 500) return ItemVerdict::kRetry;
  if (s >= 200 && s < 300) return ItemVerdict::kDone;
  return ItemVerdict::kPermanent;
}

bool JsonDepthExceeds(std::string_view json, int max_depth) {
  int depth = 0;
  bool in_string = false;
  for (size_t i = 0; i < json.size(); ++i) {
    char c = json[i];
    if (in_string) {
      if (c == '\\') {
        ++i;
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > max_depth) return true;
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return false;
}

}  // namespace rtdw
