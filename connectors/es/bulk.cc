#include "connectors/es/bulk.h"

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "connectors/es/json_util.h"
#include "core/json_limits.h"
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

namespace {

// Reads a name AppendJsonString writes without escapes: '"', then printable ASCII other than '"'
// and '\\', then '"'. Advances *p past it.
bool ReadPlainName(const char** p, const char* end, std::string_view* out) {
  const char* q = *p;
  if (q == end || *q != '"') return false;
  const char* start = ++q;
  while (q != end) {
    const auto c = static_cast<unsigned char>(*q);
    if (c == '"') break;
    if (c < 0x20 || c >= 0x80 || c == '\\') return false;
    ++q;
  }
  if (q == end || q == start) return false;  // unterminated, or empty (AppendBulkAction omits it)
  *out = std::string_view(start, static_cast<size_t>(q - start));
  *p = q + 1;
  return true;
}

bool Eat(const char** p, const char* end, std::string_view literal) {
  if (static_cast<size_t>(end - *p) < literal.size() ||
      memcmp(*p, literal.data(), literal.size()) != 0) {
    return false;
  }
  *p += literal.size();
  return true;
}

// Matches one action line (without its '\n') in exactly the form AppendBulkAction writes for
// plain ASCII names; sets the op and whether it carries a version.
bool MatchActionLine(std::string_view line, BulkOp* op, bool* versioned) {
  const char* p = line.data();
  const char* end = p + line.size();
  std::string_view name;
  if (!Eat(&p, end, "{") || !ReadPlainName(&p, end, &name)) return false;
  if (name == "index") {
    *op = BulkOp::kIndex;
  } else if (name == "create") {
    *op = BulkOp::kCreate;
  } else if (name == "delete") {
    *op = BulkOp::kDelete;
  } else if (name == "update") {
    *op = BulkOp::kUpdate;
  } else {
    return false;
  }
  if (!Eat(&p, end, ":{\"_index\":") || !ReadPlainName(&p, end, &name)) return false;
  if (Eat(&p, end, ",\"_id\":") && !ReadPlainName(&p, end, &name)) return false;
  *versioned = false;
  if (Eat(&p, end, ",\"version\":")) {
    // A non-negative int64 as absl::StrAppend writes it: no sign, no leading zero; at most 18
    // digits, so it surely fits.
    const char* digits = p;
    while (p != end && *p >= '0' && *p <= '9') ++p;
    const size_t n = static_cast<size_t>(p - digits);
    if (n == 0 || n > 18 || (n > 1 && *digits == '0')) return false;
    *versioned = true;
    if (Eat(&p, end, ",\"version_type\":") && !ReadPlainName(&p, end, &name)) return false;
  }
  return Eat(&p, end, "}}") && p == end;
}

}  // namespace

absl::StatusOr<PreparedBulkBody> PreparedBulkBody::FromBody(std::string_view body) {
  PreparedBulkBody out;
  out.raw_ = true;
  out.raw_body_ = body;
  const char* const base = body.data();
  size_t pos = 0;
  bool canonical = true;
  while (pos < body.size()) {
    Place place;
    place.begin = pos;
    const char* nl = static_cast<const char*>(memchr(base + pos, '\n', body.size() - pos));
    if (nl == nullptr ||
        !MatchActionLine(std::string_view(base + pos, static_cast<size_t>(nl - (base + pos))),
                         &place.op, &place.versioned)) {
      canonical = false;
      break;
    }
    pos = static_cast<size_t>(nl - base) + 1;
    if (place.op != BulkOp::kDelete) {
      // The source line: only its end is looked for (and a '\r', which re-encoding would turn
      // into a blank, and a leading blank, which ParseBulkBody would skip as a blank line).
      const size_t left = body.size() - pos;
      nl = static_cast<const char*>(memchr(base + pos, '\n', left));
      if (nl == nullptr || nl == base + pos || base[pos] == ' ' || base[pos] == '\t' ||
          memchr(base + pos, '\r', static_cast<size_t>(nl - (base + pos))) != nullptr) {
        canonical = false;
        break;
      }
      pos = static_cast<size_t>(nl - base) + 1;
    }
    place.end = pos;
    out.actions_.push_back(place);
  }
  if (canonical) return out;
  RTDW_ASSIGN_OR_RETURN(std::vector<BulkAction> actions, ParseBulkBody(body));
  return FromActions(actions);
}

PreparedBulkBody PreparedBulkBody::FromActions(std::span<const BulkAction> actions) {
  PreparedBulkBody out;
  size_t total = 0;
  for (const auto& a : actions) total += EstimatedBulkActionSize(a);
  out.owned_.reserve(total);
  out.actions_.reserve(actions.size());
  for (const auto& a : actions) {
    Place place;
    place.begin = out.owned_.size();
    AppendBulkAction(a, &out.owned_);
    place.end = out.owned_.size();
    place.op = a.op;
    place.versioned = a.version >= 0;
    out.actions_.push_back(place);
  }
  return out;
}

absl::StatusOr<BulkAction> PreparedBulkBody::Action(size_t i) const {
  RTDW_ASSIGN_OR_RETURN(std::vector<BulkAction> one, ParseBulkBody(ActionBytes(i)));
  if (one.size() != 1) {
    return absl::InternalError(
        absl::StrCat("bulk action ", i, " reads back as ", one.size(), " actions"));
  }
  return std::move(one[0]);
}

absl::StatusOr<std::vector<BulkItemAnswer>> ParseBulkResponse(std::string_view body,
                                                              size_t expected_items) {
  // rtdw's records parser (core/json_limits.h): the same reader and checks as ParseJson, but a
  // compact tree in two buffers instead of a DOM of many allocations, and its depth limit stops
  // the parse instead of a pass of its own (an answer has an item per document: this parse was
  // most of the delivery's CPU, docs/BENCHMARKS.md "h5-deliver"). A parser per answer: nothing of
  // a large answer is kept after it.
  JsonParser parser(JsonLimits{0, es_internal::kMaxJsonDepth});
  if (parser.Parse(body) != JsonStatus::kOk) {
    return absl::DataLossError(absl::StrCat("bulk response: invalid JSON: ", parser.detail()));
  }
  const JsonValue& doc = parser.root();
  if (!doc.IsObject()) return absl::DataLossError("bulk response is not a JSON object");
  const JsonValue* items = doc.Find("items");
  if (items == nullptr || !items->IsArray()) {
    return absl::DataLossError("bulk response without items[]");
  }
  if (items->Size() != expected_items) {
    return absl::DataLossError(absl::StrCat("bulk response has ", items->Size(), " items for ",
                                            expected_items, " actions"));
  }
  auto string_member = [](const JsonValue& v, std::string_view name) {
    const JsonValue* m = v.IsObject() ? v.Find(name) : nullptr;
    return m != nullptr && m->IsString() ? m->text() : std::string_view();
  };
  std::vector<BulkItemAnswer> answers;
  answers.reserve(expected_items);
  for (const JsonValue& wrapper : items->Elements()) {
    BulkItemAnswer ans;
    if (wrapper.IsObject() && wrapper.Size() >= 1 &&
        (*wrapper.Members().begin()).value.IsObject()) {
      const JsonValue& item = (*wrapper.Members().begin()).value;
      const JsonValue* status = item.Find("status");
      if (status != nullptr && status->IsInt64() && status->GetInt64() >= INT32_MIN &&
          status->GetInt64() <= INT32_MAX) {
        ans.status = static_cast<int>(status->GetInt64());
      }
      ans.result = std::string(string_member(item, "result"));
      if (const JsonValue* err = item.Find("error"); err != nullptr) {
        if (err->IsObject()) {
          ans.error_type = std::string(string_member(*err, "type"));
          ans.reason = std::string(string_member(*err, "reason"));
          const JsonValue* caused = err->Find("caused_by");
          if (caused != nullptr && caused->IsObject()) {
            std::string_view cr = string_member(*caused, "reason");
            if (!cr.empty()) absl::StrAppend(&ans.reason, " (caused by: ", ToAbsl(cr), ")");
          }
        } else if (err->IsString()) {
          ans.error_type = "error";
          ans.reason = std::string(err->text());
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
