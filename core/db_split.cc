#include "core/db_split.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "core/json_writer.h"
#include "core/status_util.h"

namespace rtdw {
namespace {

using Value = JsonValue;

constexpr size_t kMaxCachedTables = 4096;

// What Process reads of the record (one pass over its members).
enum { kType, kTable, kData, kRootFields };
constexpr std::string_view kRootNames[kRootFields] = {"type", "table", "data"};

// `name` in ASCII lower case, in `buf` when it has upper-case letters (else `name` itself).
std::string_view Folded(std::string_view name, std::string* buf) {
  if (std::none_of(name.begin(), name.end(), absl::ascii_isupper)) return name;
  buf->assign(name.data(), name.size());
  absl::AsciiStrToLower(buf);
  return *buf;
}

}  // namespace

TableLists TableLists::From(const std::vector<std::string>& facts,
                            const std::vector<std::string>& dims) {
  TableLists t;
  for (const std::string& f : facts) t.facts_.insert(absl::AsciiStrToLower(f));
  for (const std::string& d : dims) t.dims_.insert(absl::AsciiStrToLower(d));
  return t;
}

bool TableLists::IsFact(std::string_view table) const {
  std::string buf;
  return facts_.contains(ToAbsl(Folded(table, &buf)));
}

bool TableLists::IsDim(std::string_view table) const {
  std::string buf;
  return dims_.contains(ToAbsl(Folded(table, &buf)));
}

void DbSplitCounters::Add(const DbSplitCounters& o) {
  records += o.records;
  for (int i = 0; i < 3; ++i) fact_rows[i] += o.fact_rows[i];
  dim_sets += o.dim_sets;
  dim_dels += o.dim_dels;
  skipped_no_row += o.skipped_no_row;
  skipped_unknown_table += o.skipped_unknown_table;
  dead_letters += o.dead_letters;
  for (int i = 0; i < kReasonCount; ++i) dead_by_reason[i] += o.dead_by_reason[i];
}

std::string DbSplitTransform::FactTopic(std::string_view table, char kind) {
  std::string t = absl::StrCat("DWD_", ToAbsl(table), "_");
  t.push_back(kind);
  absl::AsciiStrToUpper(&t);
  return t;
}

std::string DbSplitTransform::DimKey(std::string_view table, std::string_view id) {
  std::string t = absl::AsciiStrToUpper(ToAbsl(table));
  return absl::StrCat("DIM:", t, ":", ToAbsl(id));
}

DbSplitTransform::DbSplitTransform(DbSplitOptions options)
    : options_(std::move(options)),
      parser_(JsonLimits{static_cast<uint64_t>(std::max<int64_t>(options_.max_record_bytes, 0)),
                         options_.max_depth}) {
  if (!options_.now_ms) options_.now_ms = [] { return absl::ToUnixMillis(absl::Now()); };
  absl::flat_hash_map<std::string, std::string> folded;
  for (auto& [table, field] : options_.key_fields) folded[absl::AsciiStrToLower(table)] = field;
  options_.key_fields = std::move(folded);
}

const std::array<std::string, 3>& DbSplitTransform::TopicsOf(std::string_view table) {
  auto it = topics_.find(ToAbsl(table));
  if (it != topics_.end()) return it->second;
  if (topics_.size() >= kMaxCachedTables) topics_.clear();
  std::array<std::string, 3> t = {FactTopic(table, 'I'), FactTopic(table, 'U'),
                                  FactTopic(table, 'D')};
  return topics_.emplace(std::string(table), std::move(t)).first->second;
}

DbSplitResult DbSplitTransform::DeadLetter(const InputRecord& in, Reason reason,
                                           std::string_view detail, RecordSink* sink) {
  ++counters_.dead_letters;
  ++counters_.dead_by_reason[static_cast<int>(reason)];
  SendToDeadLetter(in, options_.job, reason, detail, src_, options_.now_ms(), &dead_line_, sink);
  DbSplitResult r;
  r.outcome = DbOutcome::kDeadLetter;
  r.reason = reason;
  return r;
}

DbSplitResult DbSplitTransform::Process(const InputRecord& in, const TableLists& tables,
                                        RecordSink* sink, std::vector<RedisWrite>* redis) {
  ++counters_.records;
  src_.clear();
  AppendSourcePosition(in.topic, in.partition, in.offset, &src_);

  switch (parser_.Parse(in.value)) {
    case JsonStatus::kOk:
      break;
    case JsonStatus::kTooBig:
      return DeadLetter(in, Reason::kTooBig, parser_.detail(), sink);
    case JsonStatus::kTooDeep:
      return DeadLetter(in, Reason::kTooDeep, parser_.detail(), sink);
    case JsonStatus::kBadUtf8:
      return DeadLetter(in, Reason::kBadUtf8, parser_.detail(), sink);
    case JsonStatus::kNotJson:
      return DeadLetter(in, Reason::kNotJson, parser_.detail(), sink);
  }
  const Value& root = parser_.root();
  if (!root.IsObject()) {
    return DeadLetter(in, Reason::kNotObject, "the record is not a JSON object", sink);
  }
  const Value* top[kRootFields];
  FindMembers(root, kRootNames, kRootFields, top);
  const Value* type_v = top[kType];
  if (type_v == nullptr || !type_v->IsString()) {
    return DeadLetter(in, Reason::kBadType, "type is missing or not a string", sink);
  }
  const std::string_view type = type_v->text();
  int kind;  // 0 I, 1 U, 2 D
  if (type == "insert" || type == "bootstrap-insert") {
    kind = 0;
  } else if (type == "update") {
    kind = 1;
  } else if (type == "delete") {
    kind = 2;
  } else {
    ++counters_.skipped_no_row;  // whether or not it names a table (database-create has none)
    return DbSplitResult{DbOutcome::kSkippedNoRow, {}, Reason::kNotJson};
  }
  const Value* table_v = top[kTable];
  if (table_v == nullptr || !table_v->IsString() || table_v->GetStringLength() == 0) {
    return DeadLetter(in, Reason::kBadType, "table is missing or not a non-empty string", sink);
  }
  const std::string_view table = table_v->text();
  const std::string_view folded = Folded(table, &folded_);  // the lists hold lower case
  const bool is_fact = tables.IsFact(folded);
  const bool is_dim = tables.IsDim(folded);
  if (!is_fact && !is_dim) {
    ++counters_.skipped_unknown_table;
    return DbSplitResult{DbOutcome::kSkippedUnknownTable, {}, Reason::kNotJson};
  }
  const Value* data = top[kData];
  if (data == nullptr || !data->IsObject()) {
    scratch_ = absl::StrCat("data of a ", ToAbsl(type), " row is missing or not an object");
    return DeadLetter(in, Reason::kNoPayload, scratch_, sink);
  }
  // `id` and the table's key field, in one pass over the row.
  auto kf = options_.key_fields.find(ToAbsl(folded));
  const std::string_view row_names[2] = {
      "id", kf != options_.key_fields.end() ? std::string_view(kf->second) : std::string_view()};
  const Value* row_fields[2];
  FindMembers(*data, row_names, row_names[1].empty() ? 1 : 2, row_fields);
  const Value* id = row_fields[0];
  if (is_dim && (id == nullptr || !IdText(*id, &key_))) {
    return DeadLetter(in, Reason::kNoId, "the dimension row has no usable data.id", sink);
  }

  out_.Clear();
  AppendJsonValue(&out_, *data);
  const std::string_view value(out_.GetString(), out_.GetSize());

  DbSplitResult result;
  if (is_dim) {
    RedisWrite w;
    w.op = kind == 2 ? RedisWrite::Op::kDel : RedisWrite::Op::kSet;
    w.key = DimKey(table, key_);
    if (kind != 2) w.value.assign(value);
    w.src = src_;
    w.offset = in.offset;
    redis->push_back(std::move(w));
    ++(kind == 2 ? counters_.dim_dels : counters_.dim_sets);
    result.outcome = DbOutcome::kDimension;
  }
  if (is_fact) {
    const Value* key_v = row_names[1].empty() ? nullptr : row_fields[1];
    if (key_v == nullptr || !IdText(*key_v, &key_)) {
      if (id == nullptr || !IdText(*id, &key_)) key_.assign(table);
    }
    const std::string& topic = TopicsOf(table)[kind];
    sink->Emit(OutputRecord{-1, topic, key_, value, src_, -1});
    ++counters_.fact_rows[kind];
    result.outcome = DbOutcome::kFact;
    result.topic = topic;
  }
  return result;
}

}  // namespace rtdw
