#include "core/journal_entry.h"

#include <charconv>
#include <cstring>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "core/dead_letter.h"
#include "core/journal_sink.h"
#include "core/json_limits.h"
#include "core/json_writer.h"
#include "core/status_util.h"
#include "rapidjson/document.h"
#include "rapidjson/stringbuffer.h"

namespace rtdw {
namespace {

constexpr uint8_t kJournalValueVersion = 1;
constexpr size_t kHeaderSize = 1 + 8 + 4 + 4;

void PutBE(std::string* out, uint64_t v, int bytes) {
  for (int i = bytes - 1; i >= 0; --i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

uint64_t GetBE(const char* p, int bytes) {
  uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) v = (v << 8) | static_cast<uint8_t>(p[i]);
  return v;
}

}  // namespace

namespace {

void AppendJournalHeader(const JournalEntry& entry, std::string* out) {
  out->push_back(static_cast<char>(kJournalValueVersion));
  PutBE(out, static_cast<uint64_t>(entry.created_ms), 8);
  PutBE(out, entry.doc_count, 4);
  PutBE(out, entry.target.size(), 4);
  out->append(entry.target);
}

}  // namespace

std::string EncodeJournalHeader(const JournalEntry& entry) {
  std::string out;
  out.reserve(kHeaderSize + entry.target.size());
  AppendJournalHeader(entry, &out);
  return out;
}

std::string EncodeJournalValue(const JournalEntry& entry) {
  std::string out;
  out.reserve(kHeaderSize + entry.target.size() + entry.body.size());
  AppendJournalHeader(entry, &out);
  out.append(entry.body);
  return out;
}

absl::StatusOr<JournalEntry> DecodeJournalValue(uint64_t seq, std::string_view value,
                                                bool with_body) {
  if (value.size() < kHeaderSize) {
    return absl::DataLossError(absl::StrCat("journal entry ", seq, ": value of ", value.size(),
                                            " bytes is shorter than its header"));
  }
  if (static_cast<uint8_t>(value[0]) != kJournalValueVersion) {
    return absl::FailedPreconditionError(
        absl::StrCat("journal entry ", seq, ": unknown value version ",
                     static_cast<int>(static_cast<uint8_t>(value[0]))));
  }
  JournalEntry e;
  e.seq = seq;
  e.created_ms = static_cast<int64_t>(GetBE(value.data() + 1, 8));
  e.doc_count = static_cast<uint32_t>(GetBE(value.data() + 9, 4));
  uint64_t target_len = GetBE(value.data() + 13, 4);
  if (target_len > value.size() - kHeaderSize) {
    return absl::DataLossError(
        absl::StrCat("journal entry ", seq, ": target length ", target_len, " exceeds the value"));
  }
  e.target.assign(value.data() + kHeaderSize, target_len);
  std::string_view body = value.substr(kHeaderSize + target_len);
  e.body_size = body.size();
  if (with_body) e.body.assign(body.data(), body.size());
  return e;
}

absl::StatusOr<std::vector<JournalAction>> ParseJournalActions(std::string_view body) {
  std::vector<JournalAction> actions;
  size_t pos = 0;
  int line_no = 0;
  bool expect_source = false;
  while (pos < body.size()) {
    size_t nl = body.find('\n', pos);
    if (nl == std::string_view::npos) nl = body.size();
    std::string_view line = body.substr(pos, nl - pos);
    pos = nl + 1;
    ++line_no;
    if (line.empty()) continue;
    if (expect_source) {
      expect_source = false;
      continue;
    }
    rapidjson::Document doc;
    if (ParseJsonSafely(line, JsonLimits{}, &doc) != JsonStatus::kOk || !doc.IsObject() ||
        doc.MemberCount() != 1) {
      return absl::InvalidArgumentError(
          absl::StrCat("bulk body line ", line_no, ": not an action line"));
    }
    auto it = doc.MemberBegin();
    JournalAction a;
    a.op.assign(it->name.GetString(), it->name.GetStringLength());
    if (!it->value.IsObject()) {
      return absl::InvalidArgumentError(
          absl::StrCat("bulk body line ", line_no, ": action is not an object"));
    }
    if (auto f = it->value.FindMember("_index");
        f != it->value.MemberEnd() && f->value.IsString()) {
      a.index.assign(f->value.GetString(), f->value.GetStringLength());
    }
    if (auto f = it->value.FindMember("_id"); f != it->value.MemberEnd()) {
      if (f->value.IsString()) {
        a.id.assign(f->value.GetString(), f->value.GetStringLength());
      } else if (f->value.IsInt64()) {
        a.id = absl::StrCat(f->value.GetInt64());
      }
    }
    if (a.op == "index" || a.op == "create" || a.op == "update") {
      expect_source = true;
    } else if (a.op != "delete") {
      return absl::InvalidArgumentError(
          absl::StrCat("bulk body line ", line_no, ": unknown action \"", a.op, "\""));
    }
    actions.push_back(std::move(a));
  }
  if (expect_source) {
    return absl::InvalidArgumentError("bulk body ends after an action line without its source");
  }
  return actions;
}

void AppendJournalIndexAction(std::string* body, std::string_view index, std::string_view id,
                              std::string_view source_json, int64_t version) {
  // {"index":{"_index":..,"_id":..[,"version":..,"version_type":"external_gte"]}} as
  // rapidjson::Writer wrote it, through the jobs' one writer (core/json_writer.h).
  thread_local rapidjson::StringBuffer sb;
  sb.Clear();
  AppendRaw(&sb, "{\"index\":{\"_index\":");
  AppendJsonString(&sb, index);
  AppendRaw(&sb, ",\"_id\":");
  AppendJsonString(&sb, id);
  if (version >= 0) {
    char digits[24];
    AppendRaw(&sb, ",\"version\":");
    AppendRaw(&sb,
              std::string_view(
                  digits, std::to_chars(digits, digits + sizeof(digits), version).ptr - digits));
    AppendRaw(&sb, ",\"version_type\":\"external_gte\"");
  }
  AppendRaw(&sb, "}}\n");
  body->append(sb.GetString(), sb.GetSize());
  body->append(source_json.data(), source_json.size());
  body->push_back('\n');
}

std::string EsRejectedDeadLetter(std::string_view job, const RejectedItem& item, int64_t now_ms) {
  std::string src;
  rapidjson::Document doc;
  if (ParseJsonSafely(item.document, JsonLimits{0, kMaxSupportedJsonDepth}, &doc) ==
          JsonStatus::kOk &&
      doc.IsObject()) {
    if (auto f = doc.FindMember("rtdw_src"); f != doc.MemberEnd() && f->value.IsString()) {
      src.assign(f->value.GetString(), f->value.GetStringLength());
    }
  }
  std::string detail = absl::StrCat(item.error_type, ": ", item.error_reason);
  DeadLetterFields f;
  f.job = job;
  f.reason = ReasonCode(Reason::kEsRejected);
  f.detail = detail;
  f.src = src;
  f.ts_ingest_ms = now_ms;
  f.raw = item.document;
  f.index = item.index;
  f.id = item.id;
  f.status = item.status;
  f.version = item.version;
  return DeadLetterJson(f);
}

}  // namespace rtdw
