// Fuzz target: one ODS app-log record through log-split (core/log_split.h).
//
// Beyond "no crash, no sanitizer report", it checks the transform's promises: exactly one
// outcome per record (a dead letter and nothing else, or outputs and no dead letter), outputs
// that are JSON objects keyed by a non-empty mid, an error record passed through byte for byte,
// a dead letter that is one JSON object naming its reason, and DWD records whose numbers are the
// input's number texts and whose objects name each key once (docs/DATA.md). And the JSON writer
// (core/json_writer.h) writes any input that parses with the bytes RapidJSON's Writer wrote
// (fuzz/rapidjson_writer_oracle.h), and JsonParser's scanner parses it as RapidJSON's reader
// alone does (the same status, detail and tree).
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "core/dead_letter.h"
#include "core/log_split.h"
#include "core/records.h"
#include "fuzz/fuzz_check.h"

namespace {

using rtdw::fuzz::IsJsonObject;
using rtdw::fuzz::NumbersAndNamesFrom;

struct CheckingSink : rtdw::RecordSink {
  std::string_view input;
  int emitted = 0;
  int dead = 0;
  std::string dead_reason;
  void Emit(const rtdw::OutputRecord& r) override {
    ++emitted;
    FUZZ_CHECK(!r.key.empty(), "outputs are keyed by mid");
    FUZZ_CHECK(r.slot >= 0 && r.slot < rtdw::kLogSlotCount, "a known slot");
    if (r.slot == static_cast<int>(rtdw::LogSlot::kError)) {
      FUZZ_CHECK(r.value == input, "an error record goes out unchanged");
    } else {
      FUZZ_CHECK(IsJsonObject(r.value), "a DWD record is a JSON object");
      FUZZ_CHECK(NumbersAndNamesFrom(r.value, input), "numbers as written, each key once");
    }
  }
  void DeadLetter(const rtdw::DeadLetterRecord& r) override {
    ++dead;
    dead_reason = std::string(r.reason);
    FUZZ_CHECK(IsJsonObject(r.value), "a dead letter is a JSON object");
    FUZZ_CHECK(r.value.size() < 1000000, "a dead letter fits a Kafka message");
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // Small limits, so that the fuzzer reaches each of them.
  static rtdw::LogSplitTransform* split = [] {
    rtdw::LogSplitOptions o;
    o.max_record_bytes = 64 * 1024;
    o.max_depth = 16;
    o.max_array_items = 64;
    o.now_ms = [] { return int64_t{1764036000000}; };
    return new rtdw::LogSplitTransform(std::move(o));
  }();
  std::string_view value(reinterpret_cast<const char*>(data), size);
  FUZZ_CHECK(rtdw::fuzz::WriterAgreesWithRapidJson(value, 16),
             "the JSON writer writes what RapidJSON's Writer wrote");
  FUZZ_CHECK(rtdw::fuzz::ScannerAgreesWithReader(value, 16),
             "rtdw's scanner and RapidJSON's reader parse the same");
  CheckingSink sink;
  sink.input = value;
  rtdw::InputRecord in;
  in.topic = "ODS_BASE_LOG";
  in.partition = 1;
  in.offset = 42;
  in.value = value;
  rtdw::SplitOutcome out = split->Process(in, &sink);
  if (out.dead_lettered) {
    FUZZ_CHECK(sink.dead == 1 && sink.emitted == 0, "a dead letter and nothing else");
    FUZZ_CHECK(sink.dead_reason == rtdw::ReasonCode(out.reason), "the reason is the outcome's");
  } else {
    FUZZ_CHECK(sink.dead == 0 && sink.emitted == out.emitted && out.emitted >= 1,
               "outputs and no dead letter");
  }
  return 0;
}
