// Fuzz target: rtdw-es-lite's request parsing (tools/es_lite) on arbitrary bodies. Built by
// fuzz/CMakeLists.txt with the other targets (corpus: fuzz/corpus/es_lite_request/).
//
// Input: the first byte selects what the rest is —
//   0: a _bulk body (ParseBulkRequest); every parsed document is then checked against a dynamic
//      mapping (Mapping::CheckDocument), as a write would;
//   1: a _search body, run (RunSearch) against a small store made once per process;
//   2: a _count body (RunCount), same store;
//   3: a composable index template body / create-index mappings (Mapping::FromJson).
// Any answer is fine (an ES error included) as long as nothing crashes; a search answer that
// succeeds must be a JSON object.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "fuzz/fuzz_check.h"
#include "tools/es_lite/bulk_request.h"
#include "tools/es_lite/mapping.h"
#include "tools/es_lite/search.h"
#include "tools/es_lite/store.h"

namespace {

using rtdw::eslite::Store;

std::string* g_store_dir = nullptr;

// A store with two indices (one with the DAU-like explicit mapping, one dynamic) and a few
// documents, in a temporary directory removed at exit.
Store* TestStore() {
  static Store* store = [] {
    char tmpl[] = "/tmp/rtdw-fuzz-es-lite-XXXXXX";
    if (mkdtemp(tmpl) == nullptr) std::abort();
    g_store_dir = new std::string(tmpl);
    std::atexit([] {
      std::error_code ec;
      std::filesystem::remove_all(*g_store_dir, ec);
    });
    auto opened = Store::Open(*g_store_dir + "/data");
    if (!opened.ok()) std::abort();
    Store* s = opened.value().release();
    rapidjson::Document body;
    body.Parse(R"({"mappings":{"properties":{"mid":{"type":"keyword"},
      "ts":{"type":"date","format":"epoch_millis"},"during_time":{"type":"long"},
      "dt":{"type":"date","format":"yyyy-MM-dd"},"page_id":{"type":"text",
      "fields":{"raw":{"type":"keyword"}}},"channel":{"type":"keyword"},
      "user_age":{"type":"integer"},"amount":{"type":"double"},"ok":{"type":"boolean"}}}})");
    if (s->CreateIndex("gmall_dau_info_2024-11-25", &body)) std::abort();
    std::string bulk;
    const char* docs[] = {
        R"({"mid":"mid_1","ts":1764036000000,"during_time":100,"dt":"2024-11-25","page_id":"home","channel":"xiaomi","user_age":30,"amount":1.5,"ok":true})",
        R"({"mid":"mid_2","ts":1764039600000,"during_time":2500,"dt":"2024-11-25","page_id":"good_detail","channel":"Appstore","user_age":41})",
        R"({"mid":"mid_3","ts":1764043200000,"dt":"2024-11-25","page_id":"cart page","channel":"xiaomi","extra":{"a":[1,2]}})"};
    int id = 0;
    for (const char* d : docs) {
      bulk += R"({"index":{"_id":")" + std::to_string(++id) + "\"}}\n" + d + "\n";
    }
    bulk += R"({"index":{"_index":"other","_id":"x"}})"
            "\n"
            R"({"mid":"m","n":5,"s":"2024-11-25"})"
            "\n";
    std::vector<rtdw::eslite::WriteOp> ops;
    if (rtdw::eslite::ParseBulkRequest(bulk, "gmall_dau_info_2024-11-25", &ops)) std::abort();
    auto written = s->Write(ops);
    if (!written.ok()) std::abort();
    return s;
  }();
  return store;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const uint8_t mode = data[0];
  absl::string_view text(reinterpret_cast<const char*>(data + 1), size - 1);
  switch (mode) {
    case 0: {
      std::vector<rtdw::eslite::WriteOp> ops;
      if (rtdw::eslite::ParseBulkRequest(text, "", &ops)) return 0;
      auto mapping = rtdw::eslite::Mapping::Empty();
      for (const auto& op : ops) {
        FUZZ_CHECK(!op.index.empty(), "every op has an index");
        if (op.error || !op.body || op.type == rtdw::eslite::OpType::kUpdate) continue;
        auto checked = rtdw::eslite::Mapping::CheckDocument(mapping, *op.body, op.id);
        if (checked.ok()) mapping = checked.value();
      }
      return 0;
    }
    case 1:
    case 2: {
      Store* store = TestStore();
      rapidjson::Document body;
      if (rtdw::eslite::ParseJson(text, &body)) return 0;
      auto indices = store->Resolve("*");
      if (!indices.ok()) std::abort();
      if (mode == 1) {
        auto answer = rtdw::eslite::RunSearch(*store, indices.value(), &body, {});
        if (answer.ok()) FUZZ_CHECK(rtdw::fuzz::IsJsonObject(answer.value()), "a JSON answer");
      } else {
        (void)rtdw::eslite::RunCount(*store, indices.value(), &body);
      }
      return 0;
    }
    case 3: {
      rapidjson::Document body;
      if (rtdw::eslite::ParseJson(text, &body)) return 0;
      if (body.IsObject() && body.HasMember("mappings")) {
        (void)rtdw::eslite::Mapping::FromJson(body["mappings"]);
      } else {
        (void)rtdw::eslite::Mapping::FromJson(body);
      }
      return 0;
    }
    default:
      return 0;
  }
}
