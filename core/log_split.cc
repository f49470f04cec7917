#include "core/log_split.h"

#include <cstring>
#include <string_view>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "core/json_writer.h"
#include "core/status_util.h"

namespace rtdw {
namespace {

using Value = JsonValue;

// A source field copied to an output field.
struct FieldMap {
  std::string_view src;
  std::string_view dst;
  bool as_string = false;  // the DWD field is a string whatever the source's type
};

// Fills out[i] with the member of `obj` named maps[i].src (nullptr when absent; of duplicate
// keys the last one).
template <size_t N>
void Lookup(const Value& obj, const FieldMap (&maps)[N], const Value* (&out)[N]) {
  for (auto& p : out) p = nullptr;
  for (Value::Member m : obj.Members()) {
    for (size_t i = 0; i < N; ++i) {
      if (JsonNameIs(m.name, maps[i].src)) {
        out[i] = &m.value;
        break;
      }
    }
  }
}

// Top level.
enum { kCommon, kStart, kPage, kDisplays, kActions, kErr, kTs, kRootFields };
constexpr FieldMap kRoot[kRootFields] = {{"common", ""},   {"start", ""},   {"page", ""},
                                         {"displays", ""}, {"actions", ""}, {"err", ""},
                                         {"ts", ""}};
// The common part of all four DWD records (docs/FORMATS.md §2), in output order.
constexpr FieldMap kCommonFields[] = {
    {"mid", "mid"},           {"uid", "user_id"},     {"ar", "province_id"},
    {"ch", "channel"},        {"is_new", "is_new"},   {"md", "model"},
    {"os", "operate_system"}, {"vc", "version_code"}, {"ba", "brand"}};
constexpr int kMidIndex = 0;
constexpr FieldMap kStartFields[] = {{"entry", "entry"},
                                     {"open_ad_id", "open_ad_id", true},
                                     {"loading_time", "loading_time_ms"},
                                     {"open_ad_ms", "open_ad_ms"},
                                     {"open_ad_skip_ms", "open_ad_skip_ms"}};
constexpr FieldMap kPageFields[] = {
    {"page_id", "page_id"},         {"last_page_id", "last_page_id"},
    {"item", "page_item"},          {"item_type", "page_item_type"},
    {"during_time", "during_time"}, {"source_type", "source_type"}};
constexpr FieldMap kDisplayFields[] = {{"display_type", "display_type"},
                                       {"item", "display_item"},
                                       {"item_type", "display_item_type"},
                                       {"order", "display_order", true},
                                       {"pos_id", "display_pos_id", true}};
constexpr FieldMap kActionFields[] = {{"action_id", "action_id"},
                                      {"item", "action_item"},
                                      {"item_type", "action_item_type"},
                                      {"ts", "action_ts"}};

// The text of a scalar for an `as_string` field (a number's exact source text); false for
// objects, arrays and null.
bool ScalarText(const Value& v, std::string* out) {
  out->clear();
  if (v.IsString() || v.IsNumber()) {
    out->assign(v.text());
  } else if (v.IsBool()) {
    out->assign(v.GetBool() ? "true" : "false");
  } else {
    return false;
  }
  return true;
}

bool IsScalar(const Value& v) { return v.IsString() || v.IsNumber() || v.IsBool(); }

// Appends `"key":` to `sb`, preceded by a comma unless `*first` (then clears it). Keys are the
// constant ASCII names above: no escaping needed.
void PutKey(rapidjson::StringBuffer& sb, std::string_view key, bool* first) {
  const size_t comma = *first ? 0 : 1;
  *first = false;
  char* p = sb.Push(key.size() + 3 + comma);
  if (comma) *p++ = ',';
  p[0] = '"';
  std::memcpy(p + 1, key.data(), key.size());
  p[key.size() + 1] = '"';
  p[key.size() + 2] = ':';
}

}  // namespace

void LogSplitCounters::Add(const LogSplitCounters& o) {
  records += o.records;
  start += o.start;
  page += o.page;
  display += o.display;
  action += o.action;
  error += o.error;
  dead_letters += o.dead_letters;
  for (int i = 0; i < kReasonCount; ++i) dead_by_reason[i] += o.dead_by_reason[i];
}

LogSplitTransform::LogSplitTransform(LogSplitOptions options)
    : options_(std::move(options)),
      parser_(JsonLimits{static_cast<uint64_t>(std::max<int64_t>(options_.max_record_bytes, 0)),
                         options_.max_depth}) {
  if (!options_.now_ms) options_.now_ms = [] { return absl::ToUnixMillis(absl::Now()); };
  src_.reserve(128);
  scratch_.reserve(128);
}

SplitOutcome LogSplitTransform::DeadLetter(const InputRecord& in, Reason reason,
                                           std::string_view detail, RecordSink* sink) {
  ++counters_.dead_letters;
  ++counters_.dead_by_reason[static_cast<int>(reason)];
  SendToDeadLetter(in, options_.job, reason, detail, src_, options_.now_ms(), &dead_line_, sink);
  SplitOutcome out;
  out.dead_lettered = true;
  out.reason = reason;
  return out;
}

SplitOutcome LogSplitTransform::Process(const InputRecord& in, RecordSink* sink) {
  ++counters_.records;
  src_.clear();
  AppendSourcePosition(in.topic, in.partition, in.offset, &src_);

  // --- Validation: nothing is emitted before it is complete. ---
  JsonStatus st = parser_.Parse(in.value);
  switch (st) {
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
  Lookup(root, kRoot, top);
  for (int which : {kDisplays, kActions}) {
    const Value* arr = top[which];
    if (arr != nullptr && arr->IsArray() &&
        arr->Size() > static_cast<rapidjson::SizeType>(options_.max_array_items)) {
      scratch_ = absl::StrCat(ToAbsl(kRoot[which].src), " has ", arr->Size(),
                              " elements, over the limit of ", options_.max_array_items);
      return DeadLetter(in, Reason::kTooManyItems, scratch_, sink);
    }
  }
  const Value* common = top[kCommon];
  if (common != nullptr && !common->IsObject()) {
    return DeadLetter(in, Reason::kBadType, "common is not an object", sink);
  }
  const Value* commons[std::size(kCommonFields)];
  if (common != nullptr) {
    Lookup(*common, kCommonFields, commons);
  } else {
    for (auto& p : commons) p = nullptr;
  }
  const Value* mid = commons[kMidIndex];
  if (mid == nullptr || !mid->IsString() || mid->GetStringLength() == 0) {
    return DeadLetter(in, Reason::kNoMid, "common.mid is missing or not a non-empty string", sink);
  }
  const Value* ts = top[kTs];
  if (ts == nullptr) return DeadLetter(in, Reason::kBadType, "ts is missing", sink);
  if (!ts->IsInt64()) return DeadLetter(in, Reason::kBadType, "ts is not an integer", sink);
  const Value* start = top[kStart];
  const Value* page = top[kPage];
  if (start != nullptr && !start->IsObject()) {
    return DeadLetter(in, Reason::kBadType, "start is not an object", sink);
  }
  if (page != nullptr && !page->IsObject()) {
    return DeadLetter(in, Reason::kBadType, "page is not an object", sink);
  }
  for (int which : {kDisplays, kActions}) {
    const Value* arr = top[which];
    if (arr == nullptr) continue;
    if (!arr->IsArray()) {
      scratch_ = absl::StrCat(ToAbsl(kRoot[which].src), " is not an array");
      return DeadLetter(in, Reason::kBadType, scratch_, sink);
    }
    uint32_t i = 0;
    for (const Value& e : arr->Elements()) {
      if (!e.IsObject()) {
        scratch_ = absl::StrCat(ToAbsl(kRoot[which].src), "[", i, "] is not an object");
        return DeadLetter(in, Reason::kBadType, scratch_, sink);
      }
      ++i;
    }
  }
  const Value* err = top[kErr];
  const bool has_err = err != nullptr && !err->IsNull();
  if (start == nullptr && page == nullptr && !has_err) {
    return DeadLetter(in, Reason::kNoPayload, "the record has none of start, page and err", sink);
  }

  const Value* starts[std::size(kStartFields)];
  const Value* pages[std::size(kPageFields)];
  if (!has_err) {
    // The fields turned into strings must be scalars.
    if (start != nullptr) {
      Lookup(*start, kStartFields, starts);
      for (size_t i = 0; i < std::size(kStartFields); ++i) {
        const Value* v = starts[i];
        if (kStartFields[i].as_string && v != nullptr && !v->IsNull() && !IsScalar(*v)) {
          scratch_ = absl::StrCat("start.", ToAbsl(kStartFields[i].src), " is not a scalar");
          return DeadLetter(in, Reason::kBadType, scratch_, sink);
        }
      }
    }
    if (page != nullptr && top[kDisplays] != nullptr) {
      uint32_t d = 0;
      for (const Value& display : top[kDisplays]->Elements()) {
        for (const FieldMap& fm : kDisplayFields) {
          if (!fm.as_string) continue;
          const Value* v = display.Find(fm.src);
          if (v != nullptr && !v->IsNull() && !IsScalar(*v)) {
            scratch_ = absl::StrCat("displays[", d, "].", ToAbsl(fm.src), " is not a scalar");
            return DeadLetter(in, Reason::kBadType, scratch_, sink);
          }
        }
        ++d;
      }
    }
  }

  // --- Routing. ---
  std::string_view key(mid->GetString(), mid->GetStringLength());
  SplitOutcome outcome;
  if (has_err) {
    sink->Emit(OutputRecord{static_cast<int>(LogSlot::kError), {}, key, in.value, src_, -1});
    ++counters_.error;
    outcome.emitted = 1;
    return outcome;
  }

  bool first = true;  // no member written yet (mid always is: nothing is empty after it)
  auto put_value = [&](std::string_view dst, const Value& v) {
    PutKey(out_, dst, &first);
    AppendJsonValue(&out_, v);
  };
  // Writes the mapped fields of `obj` present in `vals` (null counts as absent).
  auto put_fields = [&](const FieldMap* maps, size_t n, const Value* const* vals) {
    for (size_t i = 0; i < n; ++i) {
      const Value* v = vals[i];
      if (v == nullptr || v->IsNull()) continue;
      if (maps[i].as_string) {
        ScalarText(*v, &scratch_);
        PutKey(out_, maps[i].dst, &first);
        AppendJsonString(&out_, scratch_);
      } else {
        put_value(maps[i].dst, *v);
      }
    }
  };
  auto emit = [&](LogSlot slot, int idx) {
    sink->Emit(OutputRecord{static_cast<int>(slot),
                            {},
                            key,
                            std::string_view(out_.GetString(), out_.GetSize()),
                            src_,
                            idx});
    ++outcome.emitted;
  };

  out_.Clear();
  out_.Put('{');
  put_fields(kCommonFields, std::size(kCommonFields), commons);
  const size_t common_mark = out_.GetSize();

  if (start != nullptr) {
    put_fields(kStartFields, std::size(kStartFields), starts);
    put_value("ts", *ts);
    out_.Put('}');
    emit(LogSlot::kStart, -1);
    ++counters_.start;
    out_.Pop(out_.GetSize() - common_mark);
  }
  if (page != nullptr) {
    Lookup(*page, kPageFields, pages);
    put_fields(kPageFields, std::size(kPageFields), pages);
    put_value("ts", *ts);
    const size_t page_mark = out_.GetSize();
    out_.Put('}');
    emit(LogSlot::kPage, -1);
    ++counters_.page;
    if (const Value* arr = top[kDisplays]; arr != nullptr) {
      const Value* vals[std::size(kDisplayFields)];
      int i = 0;
      for (const Value& display : arr->Elements()) {
        out_.Pop(out_.GetSize() - page_mark);
        Lookup(display, kDisplayFields, vals);
        put_fields(kDisplayFields, std::size(kDisplayFields), vals);
        out_.Put('}');
        emit(LogSlot::kDisplay, i++);
        ++counters_.display;
      }
    }
    if (const Value* arr = top[kActions]; arr != nullptr) {
      const Value* vals[std::size(kActionFields)];
      int i = 0;
      for (const Value& action : arr->Elements()) {
        out_.Pop(out_.GetSize() - page_mark);
        Lookup(action, kActionFields, vals);
        put_fields(kActionFields, std::size(kActionFields), vals);
        out_.Put('}');
        emit(LogSlot::kAction, i++);
        ++counters_.action;
      }
    }
  }
  return outcome;
}

}  // namespace rtdw
