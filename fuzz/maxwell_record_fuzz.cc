// Fuzz target: one Maxwell change record through db-split (core/db_split.h).
//
// Checks the transform's promises beyond memory safety: exactly one outcome per record; a fact
// is one JSON object on a DWD_<TABLE>_<I|U|D> topic; a dimension row is one Redis write of a
// DIM:<TABLE>:<id> key (a SET's value a JSON object); skips emit nothing; a dead letter is one
// JSON object and nothing else. Every number written is the text of a number of the input, and
// every object written names each key once (docs/DATA.md). And the JSON writer
// (core/json_writer.h) writes any input that parses with the bytes RapidJSON's Writer wrote
// (fuzz/rapidjson_writer_oracle.h), and JsonParser's scanner parses it as RapidJSON's reader
// alone does (the same status, detail and tree).
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/db_split.h"
#include "core/records.h"
#include "fuzz/fuzz_check.h"

namespace {

using rtdw::fuzz::IsJsonObject;
using rtdw::fuzz::NumbersAndNamesFrom;

struct CheckingSink : rtdw::RecordSink {
  std::string_view input;
  int emitted = 0;
  int dead = 0;
  std::string topic;
  void Emit(const rtdw::OutputRecord& r) override {
    ++emitted;
    topic = std::string(r.topic);
    FUZZ_CHECK(IsJsonObject(r.value), "a fact record is a JSON object");
    FUZZ_CHECK(NumbersAndNamesFrom(r.value, input), "numbers as written, each key once");
  }
  void DeadLetter(const rtdw::DeadLetterRecord& r) override {
    ++dead;
    FUZZ_CHECK(IsJsonObject(r.value), "a dead letter is a JSON object");
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static rtdw::DbSplitTransform* split = [] {
    rtdw::DbSplitOptions o;
    o.max_record_bytes = 64 * 1024;
    o.max_depth = 16;
    o.now_ms = [] { return int64_t{1764036000000}; };
    return new rtdw::DbSplitTransform(std::move(o));
  }();
  static const rtdw::TableLists* tables = new rtdw::TableLists(
      rtdw::TableLists::From({"order_info", "order_detail", "both"}, {"user_info", "both"}));
  std::string_view value(reinterpret_cast<const char*>(data), size);
  FUZZ_CHECK(rtdw::fuzz::WriterAgreesWithRapidJson(value, 16),
             "the JSON writer writes what RapidJSON's Writer wrote");
  FUZZ_CHECK(rtdw::fuzz::ScannerAgreesWithReader(value, 16),
             "rtdw's scanner and RapidJSON's reader parse the same");
  CheckingSink sink;
  sink.input = value;
  std::vector<rtdw::RedisWrite> redis;
  rtdw::InputRecord in;
  in.topic = "ODS_BASE_DB";
  in.partition = 0;
  in.offset = 7;
  in.value = value;
  rtdw::DbSplitResult r = split->Process(in, *tables, &sink, &redis);
  switch (r.outcome) {
    case rtdw::DbOutcome::kFact:
      FUZZ_CHECK(sink.emitted >= 1 && sink.dead == 0, "a fact is emitted");
      FUZZ_CHECK(sink.topic.rfind("DWD_", 0) == 0, "a fact topic is DWD_...");
      break;
    case rtdw::DbOutcome::kDimension:
      FUZZ_CHECK(!redis.empty() && sink.dead == 0, "a dimension row is a Redis write");
      break;
    case rtdw::DbOutcome::kSkippedNoRow:
    case rtdw::DbOutcome::kSkippedUnknownTable:
      FUZZ_CHECK(sink.emitted == 0 && sink.dead == 0 && redis.empty(), "a skip emits nothing");
      break;
    case rtdw::DbOutcome::kDeadLetter:
      FUZZ_CHECK(sink.emitted == 0 && sink.dead == 1 && redis.empty(),
                 "a dead letter and nothing else");
      break;
  }
  for (const auto& w : redis) {
    FUZZ_CHECK(w.key.rfind("DIM:", 0) == 0, "a dimension key is DIM:...");
    if (w.op == rtdw::RedisWrite::Op::kSet) {
      FUZZ_CHECK(IsJsonObject(w.value), "a row is JSON");
      FUZZ_CHECK(NumbersAndNamesFrom(w.value, value), "numbers as written, each key once");
    }
  }
  return 0;
}
