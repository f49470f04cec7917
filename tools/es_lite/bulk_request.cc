#include "tools/es_lite/bulk_request.h"

#include <memory>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace rtdw::eslite {

std::optional<EsError> ParseBulkRequest(absl::string_view body, const std::string& default_index,
                                        std::vector<WriteOp>* ops) {
  if (body.empty()) return BadRequest("parse_exception", "request body is required");
  if (body.back() != '\n') {
    return IllegalArgument("The bulk request must be terminated by a newline [\\n]");
  }
  if (!default_index.empty()) {
    if (auto e = Store::ValidateIndexName(default_index)) return e;
  }
  size_t pos = 0;
  int line_no = 0;
  std::vector<std::string> validation;
  auto next_line = [&](absl::string_view* line) {
    while (pos < body.size()) {
      size_t nl = body.find('\n', pos);
      *line = absl::string_view(body).substr(pos, nl - pos);
      pos = nl + 1;
      ++line_no;
      if (!line->empty() && line->back() == '\r') line->remove_suffix(1);
      if (!absl::StripAsciiWhitespace(*line).empty()) return true;
    }
    return false;
  };
  // The sources' parsed documents share one memory pool, freed with the last of them: a
  // Document of its own allocates a 64 KB chunk per document (thousands per bulk, most of its
  // pages fresh), which was the largest cost of a bulk after the parse itself.
  auto pool = std::make_shared<rapidjson::MemoryPoolAllocator<>>();
  absl::string_view line;
  while (next_line(&line)) {
    rapidjson::Document action;
    if (auto err = ParseJson(line, &action)) {
      EsError e = BadRequest("parse_exception", absl::StrCat("Malformed action/metadata line [",
                                                             line_no, "]: ", *err));
      return e;
    }
    if (!action.IsObject() || action.MemberCount() != 1) {
      return IllegalArgument(absl::StrCat("Malformed action/metadata line [", line_no,
                                          "], expected START_OBJECT or END_OBJECT but found [",
                                          action.IsObject() ? "FIELD_NAME" : "VALUE", "]"));
    }
    absl::string_view op_name = Sv(action.MemberBegin()->name);
    const auto& meta = action.MemberBegin()->value;
    WriteOp op;
    if (op_name == "index") {
      op.type = OpType::kIndex;
    } else if (op_name == "create") {
      op.type = OpType::kCreate;
    } else if (op_name == "delete") {
      op.type = OpType::kDelete;
    } else if (op_name == "update") {
      op.type = OpType::kUpdate;
    } else {
      return IllegalArgument(absl::StrCat(
          "Malformed action/metadata line [", line_no,
          "], expected one of [create, delete, index, update] but found [", op_name, "]"));
    }
    if (!meta.IsObject()) {
      return IllegalArgument(absl::StrCat("Malformed action/metadata line [", line_no,
                                          "], expected START_OBJECT but found [", ScalarText(meta),
                                          "]"));
    }
    for (auto it = meta.MemberBegin(); it != meta.MemberEnd(); ++it) {
      absl::string_view key = Sv(it->name);
      const auto& v = it->value;
      if (key == "_index" || key == "_id") {
        if (!v.IsString()) {
          return IllegalArgument(absl::StrCat("Malformed action/metadata line [", line_no, "], [",
                                              key, "] must be a string"));
        }
        (key == "_index" ? op.index : op.id) = std::string(Sv(v));
      } else if (key == "routing" || key == "retry_on_conflict" ||
                 (key == "require_alias" && v.IsBool() && !v.GetBool())) {
      } else if (key == "version") {
        if (!v.IsInt64()) {
          return IllegalArgument(absl::StrCat("Malformed action/metadata line [", line_no,
                                              "], [version] must be an integer"));
        }
        op.version = v.GetInt64();
      } else if (key == "version_type") {
        if (!v.IsString()) {
          return IllegalArgument(absl::StrCat("Malformed action/metadata line [", line_no,
                                              "], [version_type] must be a string"));
        }
        auto type = ParseVersionType(Sv(v));
        if (!type.ok()) return type.error();
        op.version_type = type.value();
      } else if (key == "if_seq_no" || key == "if_primary_term" || key == "pipeline" ||
                 key == "require_alias" || key == "dynamic_templates" || key == "_source") {
        return Unsupported(absl::StrCat("bulk action parameter [", key, "]"));
      } else {
        return IllegalArgument(absl::StrCat("Action/metadata line [", line_no,
                                            "] contains an unknown parameter [", key, "]"));
      }
    }
    if (op.index.empty()) op.index = default_index;
    if (op.index.empty()) {
      return BadRequest("action_request_validation_exception",
                        "Validation Failed: 1: index is missing;");
    }
    if (op.type != OpType::kDelete) {
      int action_line = line_no;
      absl::string_view source;
      if (!next_line(&source)) {
        return IllegalArgument(
            absl::StrCat("Malformed action/metadata line [", action_line,
                         "]: the action requires a source line, but none was found"));
      }
      std::shared_ptr<rapidjson::Document> doc(new rapidjson::Document(pool.get()),
                                               [pool](rapidjson::Document* d) { delete d; });
      if (auto err = ParseJson(source, doc.get())) {
        EsError e = BadRequest("mapper_parsing_exception", "failed to parse");
        e.caused_by_type = "x_content_parse_exception";
        e.caused_by_reason = absl::StrCat("[", line_no, "] ", *err);
        op.error = e;
      } else if (!doc->IsObject()) {
        EsError e = BadRequest("mapper_parsing_exception", "failed to parse");
        e.caused_by_type = "not_x_content_exception";
        e.caused_by_reason = "the source is not a JSON object";
        op.error = e;
      } else if (op.type == OpType::kUpdate) {
        if (doc->HasMember("script")) {
          op.error = Unsupported("[script] in update");
        } else if (!doc->HasMember("doc") && !doc->HasMember("upsert")) {
          op.error = BadRequest("action_request_validation_exception",
                                "Validation Failed: 1: script or doc is missing;");
        } else if (doc->HasMember("doc") && !(*doc)["doc"].IsObject()) {
          op.error = BadRequest("parse_exception", "[doc] must be an object");
        } else {
          for (auto it = doc->MemberBegin(); it != doc->MemberEnd(); ++it) {
            absl::string_view k = Sv(it->name);
            if (k != "doc" && k != "doc_as_upsert" && k != "upsert" && k != "detect_noop") {
              op.error = IllegalArgument(absl::StrCat("[UpdateRequest] unknown field [", k, "]"));
            }
          }
        }
      }
      op.source = std::string(source);
      op.body = std::move(doc);
    }
    // ES validates every item first and refuses the whole bulk when one is invalid
    // (BulkRequest.validate: an action_request_validation_exception listing them all).
    for (auto& m : ValidateVersioning(op.type, op.version, op.version_type)) {
      validation.push_back(std::move(m));
    }
    if (op.id.empty() && meta.HasMember("_id") &&
        (op.type == OpType::kIndex || op.type == OpType::kCreate)) {
      // An explicit "" is refused per item, never given a generated id (ES's IndexRouting).
      if (!op.error) op.error = IllegalArgument("if _id is specified it must not be empty");
    } else if (op.id.empty()) {
      if (op.type == OpType::kIndex || op.type == OpType::kCreate) {
        op.id = Store::NewId();
      } else if (!op.error) {
        op.error = BadRequest("action_request_validation_exception",
                              "Validation Failed: 1: id is missing;");
      }
    }
    if (op.id.size() > 512 && !op.error) {
      op.error = BadRequest("action_request_validation_exception",
                            absl::StrCat("Validation Failed: 1: id [", op.id.substr(0, 40),
                                         "...] is too long, must be no longer than 512 bytes "
                                         "but was: ",
                                         op.id.size(), ";"));
    }
    ops->push_back(std::move(op));
  }
  if (ops->empty()) {
    return BadRequest("action_request_validation_exception",
                      "Validation Failed: 1: no requests added;");
  }
  if (!validation.empty()) return ValidationFailed(validation);
  return std::nullopt;
}

}  // namespace rtdw::eslite
