// rtdw-es-lite over real HTTP: the ES 8 REST subset rtdw and the official clients use, its
// durability across kill -9, and its refusals (400/404/406/413) for what it cannot answer right.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "connectors/es/es_client.h"
#include "rapidjson/document.h"
#include "tests/harness/process.h"
#include "tests/harness/services.h"

namespace rtdw {
namespace {

using rapidjson::Document;

class EsLiteTest : public ::testing::Test {
 protected:
  void SetUp() override { StartWith({}); }

  void StartWith(const std::vector<std::string>& args) {
    auto st = es_.Start(args);
    ASSERT_TRUE(st.ok()) << st;
    Connect();
  }

  void Connect() { client_ = NewClient(std::chrono::milliseconds(60000)); }

  // A client of this es-lite that gives up on an answer after `timeout`.
  std::unique_ptr<EsClient> NewClient(std::chrono::milliseconds timeout) {
    EsClientOptions o;
    o.urls = {es_.url()};
    o.read_retries = 0;
    o.request_timeout = timeout;
    o.warn = [](std::string_view) {};
    auto c = EsClient::Create(o);
    EXPECT_TRUE(c.ok()) << c.status();
    return c.ok() ? std::move(*c) : nullptr;
  }

  HttpResponse Call(const std::string& method, const std::string& path,
                    const std::string& body = "",
                    const std::string& content_type = "application/json") {
    auto r = client_->Perform(method, path, body, content_type);
    EXPECT_TRUE(r.ok()) << method << " " << path << ": " << r.status();
    return r.ok() ? *r : HttpResponse{};
  }

  // The answer parsed; fails the test when it is not JSON.
  static Document Json(const HttpResponse& r) {
    Document d;
    d.Parse(r.body.c_str());
    EXPECT_FALSE(d.HasParseError()) << r.body;
    return d;
  }

  static std::string ErrorType(const HttpResponse& r) {
    Document d = Json(r);
    if (!d.IsObject() || !d.HasMember("error") || !d["error"].IsObject()) return "";
    return d["error"]["type"].GetString();
  }
  static std::string ErrorReason(const HttpResponse& r) {
    Document d = Json(r);
    if (!d.IsObject() || !d.HasMember("error") || !d["error"].IsObject()) return "";
    return d["error"]["reason"].GetString();
  }

  // _count without a refresh: what a search sees now.
  int64_t CountNow(const std::string& index) {
    HttpResponse r = Call("POST", "/" + index + "/_count");
    EXPECT_EQ(r.status, 200) << r.body;
    Document d = Json(r);
    return d.IsObject() && d.HasMember("count") ? d["count"].GetInt64() : -1;
  }

  // A bulk that must succeed, refreshed (?refresh=true) so that searches see it, as ES's own REST
  // tests write their fixtures.
  void Bulk(const std::string& ndjson) {
    HttpResponse r = Call("POST", "/_bulk?refresh=true", ndjson, "application/x-ndjson");
    ASSERT_EQ(r.status, 200) << r.body;
    Document d = Json(r);
    ASSERT_FALSE(d["errors"].GetBool()) << r.body;
  }

  // _count after a _refresh of the pattern (a count sees only refreshed writes, as in ES).
  uint64_t Count(const std::string& pattern, const std::string& query = "") {
    (void)client_->Refresh(pattern);
    auto c = client_->Count(pattern, query);
    EXPECT_TRUE(c.ok()) << c.status();
    return c.ok() ? *c : 0;
  }

  rtdw::testing::EsLite es_;
  std::unique_ptr<EsClient> client_;
};

TEST_F(EsLiteTest, InfoAndProductHeaderOnEveryResponse) {
  Document info = Json(Call("GET", "/"));
  EXPECT_STREQ(info["version"]["number"].GetString(), "8.11.0");
  EXPECT_STREQ(info["version"]["build_flavor"].GetString(), "default");
  EXPECT_STREQ(info["tagline"].GetString(), "You Know, for Search");
  for (const std::string path : {"/", "/nope/_search", "/_cat/indices"}) {
    auto out = rtdw::testing::RunCommand({"curl", "-s", "-i", es_.url() + path});
    EXPECT_NE(out.out.find("X-Elastic-Product: Elasticsearch"), std::string::npos) << out.out;
  }
  auto head = rtdw::testing::RunCommand({"curl", "-s", "-I", es_.url() + "/"});
  EXPECT_NE(head.out.find("X-Elastic-Product: Elasticsearch"), std::string::npos) << head.out;
}

TEST_F(EsLiteTest, ContentTypes) {
  const std::string doc = R"({"a":1})";
  EXPECT_EQ(Call("PUT", "/ct/_doc/1", doc, "application/json").status, 201);
  EXPECT_EQ(Call("PUT", "/ct/_doc/2", doc, "application/vnd.elasticsearch+json; compatible-with=8")
                .status,
            201);
  EXPECT_EQ(Call("POST", "/_bulk", "{\"index\":{\"_index\":\"ct\",\"_id\":\"3\"}}\n" + doc + "\n",
                 "application/vnd.elasticsearch+x-ndjson; compatible-with=8")
                .status,
            200);
  EXPECT_EQ(Call("POST", "/_bulk", "{\"index\":{\"_index\":\"ct\",\"_id\":\"4\"}}\n" + doc + "\n",
                 "application/x-ndjson")
                .status,
            200);
  EXPECT_EQ(Call("PUT", "/ct/_doc/5", doc, "text/plain").status, 406);
  EXPECT_EQ(Call("PUT", "/ct/_doc/6", doc, "application/vnd.elasticsearch+json; compatible-with=5")
                .status,
            400);
  EXPECT_EQ(Count("ct"), 4u);
}

TEST_F(EsLiteTest, WildcardsAndCommaLists) {
  for (const std::string idx :
       {"gmall_dau_info_2025-11-24", "gmall_dau_info_2025-11-25", "gmall_order_wide_2025-11-25"}) {
    Bulk(absl::StrCat("{\"index\":{\"_index\":\"", idx, "\",\"_id\":\"1\"}}\n{\"x\":1}\n",
                      "{\"index\":{\"_index\":\"", idx, "\",\"_id\":\"2\"}}\n{\"x\":2}\n"));
  }
  EXPECT_EQ(Count("gmall_dau_info_*"), 4u);
  EXPECT_EQ(Count("gmall_*"), 6u);
  EXPECT_EQ(Count("gmall_dau_info_2025-11-24,gmall_order_wide_*"), 4u);
  EXPECT_EQ(Count("gmall_*,-gmall_order_*"), 4u);
  EXPECT_EQ(Count("nothing_*"), 0u);
  EXPECT_EQ(Call("POST", "/missing/_count").status, 404);
  EXPECT_EQ(Call("POST", "/missing,gmall_*/_count").status, 404);
  EXPECT_EQ(Json(Call("POST", "/missing,gmall_*/_count?ignore_unavailable=true"))["count"].GetInt(),
            6);

  Document cat = Json(Call("GET", "/_cat/indices/gmall_dau_info_*?format=json&s=index"));
  ASSERT_TRUE(cat.IsArray());
  ASSERT_EQ(cat.Size(), 2u);
  EXPECT_STREQ(cat[0]["index"].GetString(), "gmall_dau_info_2025-11-24");
  EXPECT_STREQ(cat[0]["docs.count"].GetString(), "2");
  EXPECT_STREQ(cat[0]["status"].GetString(), "open");
  EXPECT_TRUE(cat[0].HasMember("health") && cat[0].HasMember("store.size"));
  Document refresh = Json(Call("POST", "/gmall_*/_refresh"));
  EXPECT_EQ(refresh["_shards"]["failed"].GetInt(), 0);
  EXPECT_EQ(Call("HEAD", "/gmall_dau_info_2025-11-24").status, 200);
  EXPECT_EQ(Call("HEAD", "/gmall_dau_info_2099-01-01").status, 404);
  EXPECT_EQ(Call("DELETE", "/gmall_*").status, 400);  // wildcard deletes are refused, as in ES 8
  EXPECT_EQ(Call("DELETE", "/gmall_dau_info_2025-11-24").status, 200);
  EXPECT_EQ(Count("gmall_dau_info_*"), 2u);
  Document search = Json(Call("POST", "/gmall_*/_search", R"({"query":{"match_all":{}}})"));
  EXPECT_EQ(search["hits"]["total"]["value"].GetInt(), 4);
  EXPECT_EQ(search["_shards"]["total"].GetInt(), 2);
}

TEST_F(EsLiteTest, TemplateAppliedOnAutoCreateAndTypesChecked) {
  const std::string tpl = R"({"index_patterns":["gmall_order_wide_*"],"priority":100,
    "template":{"settings":{"number_of_shards":1,"number_of_replicas":0},
    "mappings":{"properties":{"detail_id":{"type":"keyword"},"sku_num":{"type":"long"},
      "user_age":{"type":"integer"},"total_amount":{"type":"double"},
      "create_time":{"type":"date","format":"yyyy-MM-dd HH:mm:ss"},
      "create_date":{"type":"date","format":"yyyy-MM-dd"}}}}})";
  ASSERT_EQ(Call("PUT", "/_index_template/order_wide", tpl).status, 200);
  Document got = Json(Call("GET", "/_index_template/order_wide"));
  EXPECT_STREQ(got["index_templates"][0]["name"].GetString(), "order_wide");
  EXPECT_EQ(Call("GET", "/_index_template/nope").status, 404);

  HttpResponse r = Call("POST", "/_bulk",
                        "{\"index\":{\"_index\":\"gmall_order_wide_2025-11-25\",\"_id\":\"1\"}}\n"
                        "{\"detail_id\":1,\"sku_num\":2,\"user_age\":30,\"total_amount\":8197.00,"
                        "\"create_time\":\"2025-11-25 10:11:12\",\"create_date\":\"2025-11-25\"}\n"
                        "{\"index\":{\"_index\":\"gmall_order_wide_2025-11-25\",\"_id\":\"2\"}}\n"
                        "{\"sku_num\":\"two\"}\n"
                        "{\"index\":{\"_index\":\"gmall_order_wide_2025-11-25\",\"_id\":\"3\"}}\n"
                        "{\"create_time\":\"2025-11-25T10:11:12\"}\n"
                        "{\"index\":{\"_index\":\"gmall_order_wide_2025-11-25\",\"_id\":\"4\"}}\n"
                        "{\"user_age\":3000000000}\n"
                        "{\"index\":{\"_index\":\"gmall_order_wide_2025-11-25\",\"_id\":\"5\"}}\n"
                        "{\"total_amount\":\"12.5\",\"sku_num\":\"7\"}\n",
                        "application/x-ndjson");
  ASSERT_EQ(r.status, 200);
  Document d = Json(r);
  EXPECT_TRUE(d["errors"].GetBool());
  const auto& items = d["items"];
  EXPECT_EQ(items[0]["index"]["status"].GetInt(), 201);
  EXPECT_STREQ(items[0]["index"]["result"].GetString(), "created");
  EXPECT_EQ(items[0]["index"]["_version"].GetInt(), 1);
  for (int i : {1, 2, 3}) {
    EXPECT_EQ(items[i]["index"]["status"].GetInt(), 400) << i;
    EXPECT_STREQ(items[i]["index"]["error"]["type"].GetString(), "mapper_parsing_exception") << i;
  }
  EXPECT_EQ(items[4]["index"]["status"].GetInt(), 201);  // numeric strings are coerced, as in ES
  Document mapping = Json(Call("GET", "/gmall_order_wide_2025-11-25/_mapping"));
  const auto& props = mapping["gmall_order_wide_2025-11-25"]["mappings"]["properties"];
  EXPECT_STREQ(props["sku_num"]["type"].GetString(), "long");
  EXPECT_STREQ(props["create_time"]["format"].GetString(), "yyyy-MM-dd HH:mm:ss");
  Document settings = Json(Call("GET", "/gmall_order_wide_2025-11-25/_settings"));
  EXPECT_STREQ(settings["gmall_order_wide_2025-11-25"]["settings"]["index"]["number_of_replicas"]
                   .GetString(),
               "0");
  EXPECT_EQ(Count("gmall_order_wide_*"), 2u);
  // The _source is kept byte for byte (8197.00 stays 8197.00).
  HttpResponse doc = Call("GET", "/gmall_order_wide_2025-11-25/_doc/1");
  EXPECT_NE(doc.body.find("\"total_amount\":8197.00"), std::string::npos) << doc.body;
  // An explicit create also gets the template; a bad mapping in a template is refused.
  EXPECT_EQ(Call("PUT", "/gmall_order_wide_2025-11-26").status, 200);
  Document m2 = Json(Call("GET", "/gmall_order_wide_2025-11-26/_mapping"));
  EXPECT_TRUE(m2["gmall_order_wide_2025-11-26"]["mappings"]["properties"].HasMember("sku_num"));
  EXPECT_EQ(Call("PUT", "/gmall_order_wide_2025-11-26").status, 400);  // already exists
  EXPECT_EQ(ErrorType(Call("PUT", "/_index_template/bad",
                           R"({"index_patterns":["x*"],"template":{"mappings":{"properties":
                              {"a":{"type":"geo_point"}}}}})")),
            "mapper_parsing_exception");
}

TEST_F(EsLiteTest, BulkSemantics) {
  Bulk("{\"create\":{\"_index\":\"b\",\"_id\":\"1\"}}\n{\"v\":1}\n");
  HttpResponse r = Call("POST", "/b/_bulk",
                        "{\"create\":{\"_id\":\"1\"}}\n{\"v\":2}\n"
                        "{\"index\":{\"_id\":\"1\"}}\n{\"v\":3}\n"
                        "{\"update\":{\"_id\":\"1\"}}\n{\"doc\":{\"w\":4}}\n"
                        "{\"update\":{\"_id\":\"1\"}}\n{\"doc\":{\"w\":4}}\n"
                        "{\"update\":{\"_id\":\"9\"}}\n{\"doc\":{\"w\":4}}\n"
                        "{\"delete\":{\"_id\":\"1\"}}\n"
                        "{\"delete\":{\"_id\":\"1\"}}\n"
                        "{\"index\":{}}\n{\"auto\":true}\n",
                        "application/x-ndjson");
  ASSERT_EQ(r.status, 200);
  Document d = Json(r);
  const auto& it = d["items"];
  ASSERT_EQ(it.Size(), 8u);
  EXPECT_EQ(it[0]["create"]["status"].GetInt(), 409);
  EXPECT_STREQ(it[0]["create"]["error"]["type"].GetString(), "version_conflict_engine_exception");
  EXPECT_EQ(it[1]["index"]["status"].GetInt(), 200);
  EXPECT_STREQ(it[1]["index"]["result"].GetString(), "updated");
  EXPECT_EQ(it[1]["index"]["_version"].GetInt(), 2);
  EXPECT_STREQ(it[2]["update"]["result"].GetString(), "updated");
  EXPECT_STREQ(it[3]["update"]["result"].GetString(), "noop");
  EXPECT_EQ(it[4]["update"]["status"].GetInt(), 404);
  EXPECT_STREQ(it[4]["update"]["error"]["type"].GetString(), "document_missing_exception");
  EXPECT_STREQ(it[5]["delete"]["result"].GetString(), "deleted");
  EXPECT_EQ(it[6]["delete"]["status"].GetInt(), 404);
  EXPECT_STREQ(it[6]["delete"]["result"].GetString(), "not_found");
  EXPECT_EQ(it[7]["index"]["status"].GetInt(), 201);
  EXPECT_EQ(std::string(it[7]["index"]["_id"].GetString()).size(), 20u);
  for (const auto& item : it.GetArray()) {
    const auto& body = item.MemberBegin()->value;
    EXPECT_TRUE(body.HasMember("_index") && body.HasMember("_id") && body.HasMember("status"));
  }
  // Single-document API.
  EXPECT_EQ(Call("PUT", "/b/_doc/x", R"({"a":1})").status, 201);
  EXPECT_EQ(Call("PUT", "/b/_create/x", R"({"a":1})").status, 409);
  EXPECT_EQ(Call("POST", "/b/_update/x", R"({"doc":{"b":2}})").status, 200);
  Document got = Json(Call("GET", "/b/_doc/x"));
  EXPECT_TRUE(got["found"].GetBool());
  EXPECT_EQ(got["_source"]["b"].GetInt(), 2);
  EXPECT_EQ(got["_version"].GetInt(), 2);
  EXPECT_EQ(Call("GET", "/b/_doc/nope").status, 404);
  EXPECT_EQ(Call("GET", "/b/_source/x?_source_includes=a").body, R"({"a":1})");
  EXPECT_EQ(Call("DELETE", "/b/_doc/x").status, 200);
  EXPECT_EQ(Call("DELETE", "/b/_doc/x").status, 404);
  EXPECT_EQ(Call("GET", "/nope/_doc/x").status, 404);
}

TEST_F(EsLiteTest, MalformedInputIsRefusedAndNothingWritten) {
  Bulk("{\"index\":{\"_index\":\"m\",\"_id\":\"0\"}}\n{\"v\":0}\n");
  struct Case {
    std::string body;
    std::string type;
  };
  std::vector<Case> cases = {
      {"{\"index\":{\"_index\":\"m\",\"_id\":\"1\"}}\n{\"v\":1}\n{\"index\":{\"_index\":\"m\",",
       "illegal_argument_exception"},  // no trailing newline
      {"{\"index\":{\"_index\":\"m\",\"_id\":\"1\"}}\n{\"v\":1}\n{\"index\":{\"_index\n",
       "parse_exception"},
      {"{\"index\":{\"_index\":\"m\",\"_id\":\"1\"}}\n{\"v\":1}\n[1,2]\n",
       "illegal_argument_exception"},
      {"{\"upsert\":{\"_index\":\"m\",\"_id\":\"1\"}}\n{\"v\":1}\n", "illegal_argument_exception"},
      {"{\"index\":{\"_index\":\"m\",\"_id\":\"1\"}}\n",
       "illegal_argument_exception"},  // no source
      {"{\"index\":{\"_id\":\"1\"}}\n{\"v\":1}\n", "action_request_validation_exception"},
      {"{\"index\":{\"_index\":\"m\",\"_id\":\"1\",\"pipeline\":\"p\"}}\n{\"v\":1}\n",
       "illegal_argument_exception"},
      {"", "parse_exception"},
  };
  for (const auto& c : cases) {
    HttpResponse r = Call("POST", "/_bulk", c.body, "application/x-ndjson");
    EXPECT_EQ(r.status, 400) << c.body << " -> " << r.body;
    EXPECT_EQ(ErrorType(r), c.type) << c.body << " -> " << r.body;
  }
  EXPECT_EQ(Count("m"), 1u);  // none of the rejected requests wrote its first, valid action
  // A broken source line fails its own item, as in ES.
  HttpResponse r = Call("POST", "/_bulk",
                        "{\"index\":{\"_index\":\"m\",\"_id\":\"a\"}}\n{\"v\":\n"
                        "{\"index\":{\"_index\":\"m\",\"_id\":\"b\"}}\n{\"v\":1}\n",
                        "application/x-ndjson");
  Document d = Json(r);
  EXPECT_TRUE(d["errors"].GetBool());
  EXPECT_EQ(d["items"][0]["index"]["status"].GetInt(), 400);
  EXPECT_STREQ(d["items"][0]["index"]["error"]["type"].GetString(), "mapper_parsing_exception");
  EXPECT_EQ(d["items"][1]["index"]["status"].GetInt(), 201);
  // Malformed JSON elsewhere.
  EXPECT_EQ(ErrorType(Call("POST", "/m/_search", "{\"query\":")), "parse_exception");
  EXPECT_EQ(ErrorType(Call("PUT", "/m/_doc/z", "{\"a\":")), "parse_exception");
  EXPECT_EQ(ErrorType(Call("PUT", "/m/_doc/z", "{\"a\":\"\xff\xfe\"}")), "parse_exception");
  EXPECT_EQ(
      ErrorType(Call("PUT", "/m/_doc/z", std::string(100000, '[') + std::string(100000, ']'))),
      "parse_exception");
  EXPECT_EQ(ErrorType(Call("PUT", "/Bad_Name/_doc/z", "{}")), "invalid_index_name_exception");
  // Still alive and consistent.
  EXPECT_EQ(Count("m"), 2u);
}

// ES (Jackson) refuses nesting deeper than 1000 levels wherever it lies in the text, and
// es-lite answers so even when the text is malformed before that point: its bracket count over
// the whole text decides the reason, while the parse that runs first is limited to 1000 levels
// (parse_json: the count runs only when the parse fails). Each case tells the two apart.
TEST_F(EsLiteTest, NestingDepthReasonWhereverTheDepthIs) {
  const std::string kDeep = "Document nesting depth exceeds the maximum allowed (1000)";
  auto nest = [](int n) { return std::string(n, '[') + std::string(n, ']'); };
  auto reason = [&](const std::string& body) {
    HttpResponse r = Call("PUT", "/d/_doc/1", body);
    EXPECT_EQ(r.status, 400) << body.substr(0, 80) << " -> " << r.body;
    return ErrorReason(r);
  };
  // Valid JSON 1001 and 1010 levels deep (under rtdw's own limit of 1024): too deep.
  EXPECT_NE(reason("{\"a\":" + nest(1000) + "}").find(kDeep), std::string::npos);
  EXPECT_NE(reason("{\"a\":" + nest(1009) + "}").find(kDeep), std::string::npos);
  // A syntax error first, then nesting past 1000 (never reached by the parse): too deep.
  EXPECT_NE(reason("{\"a\":1,,\"b\":" + nest(1001) + "}").find(kDeep), std::string::npos);
  // Malformed and 1000 deep at most: the parse's own reason.
  const std::string shallow = reason("{\"a\":1,,\"b\":" + nest(999) + "}");
  EXPECT_EQ(shallow.find(kDeep), std::string::npos) << shallow;
  EXPECT_NE(shallow.find("at offset 7"), std::string::npos) << shallow;
  // Exactly 1000 levels is accepted; brackets inside strings do not count.
  HttpResponse ok = Call("PUT", "/d/_doc/2", "{\"a\":" + nest(999) + "}");
  EXPECT_EQ(ok.status, 201) << ok.body;
  ok = Call("PUT", "/d/_doc/3", "{\"a\":\"" + std::string(1500, '[') + "\\\"\"}");
  EXPECT_EQ(ok.status, 201) << ok.body;
  // In a bulk: a source line too deep fails its item, an action line the request.
  HttpResponse r =
      Call("POST", "/_bulk",
           "{\"index\":{\"_index\":\"d\",\"_id\":\"x\"}}\n{\"a\":" + nest(1001) + "}\n",
           "application/x-ndjson");
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_NE(r.body.find(kDeep), std::string::npos) << r.body;
  r = Call("POST", "/_bulk", "{\"index\":" + nest(1001) + "}\n", "application/x-ndjson");
  EXPECT_EQ(r.status, 400) << r.body;
  EXPECT_NE(ErrorReason(r).find(kDeep), std::string::npos) << r.body;
}

TEST_F(EsLiteTest, UnsupportedPartsAre400sNamingThem) {
  Bulk("{\"index\":{\"_index\":\"u\",\"_id\":\"1\"}}\n{\"t\":\"Hello World\",\"n\":1}\n");
  struct Case {
    std::string path;
    std::string body;
    std::string must_name;
  };
  std::vector<Case> cases = {
      {"/u/_search", R"({"query":{"query_string":{"query":"x"}}})", "query_string"},
      {"/u/_search", R"({"query":{"bogus":{}}})", "bogus"},
      {"/u/_search", R"({"highlight":{"fields":{"t":{}}}})", "highlight"},
      {"/u/_search", R"({"aggs":{"p":{"percentiles":{"field":"n"}}}})", "percentiles"},
      {"/u/_search", R"({"aggs":{"p":{"terms":{"field":"n","include":"a.*"}}}})", "include"},
      {"/u/_search", R"({"query":{"range":{"n":{"gte":"now-1d"}}}})", "now-1d"},
      {"/u/_search?scroll=1m", R"({})", "scroll"},
      {"/u/_search?q=x", R"({})", "[q]"},
      {"/u/_search?foo=1", R"({})", "foo"},
      {"/u/_search?filter_path=hits", R"({})", "filter_path"},
      {"/u/_search", R"({"sort":[{"t":"asc"}]})", "fielddata"},
      {"/u/_search", R"({"sort":[{"nope":"asc"}]})", "No mapping found for [nope]"},
      {"/u/_search", R"({"sort":[{"n":"asc"}],"search_after":[1,2]})", "search_after has 2"},
      {"/u/_search", R"({"from":9000,"size":2000})", "Result window is too large"},
      {"/u/_search", R"({"query":{"term":{"n":"abc"}}})", "abc"},
  };
  for (const auto& c : cases) {
    HttpResponse r = Call("POST", c.path, c.body);
    EXPECT_EQ(r.status, 400) << c.path << " " << c.body << " -> " << r.body;
    EXPECT_NE(r.body.find(c.must_name), std::string::npos) << c.body << " -> " << r.body;
  }
  EXPECT_EQ(Call("GET", "/_nodes/stats").status, 400);
  EXPECT_EQ(Call("GET", "/_bulk").status, 405);
}

// Sorting on _id is Elasticsearch 7's (and OpenSearch's): Elasticsearch 8 refuses it (see
// IdSortRefusedAsElasticsearch8Does), so these run against es-lite presenting itself as ES 7.
class EsLiteEs7Test : public EsLiteTest {
 protected:
  void SetUp() override { StartWith({"--identity", "es-7"}); }
};

TEST_F(EsLiteEs7Test, SearchQueriesSortingAndPaging) {
  std::string ndjson;
  const char* channels[] = {"xiaomi", "huawei", "oppo", "vivo"};
  for (int i = 0; i < 1000; ++i) {
    absl::StrAppend(&ndjson, "{\"index\":{\"_index\":\"s_", i % 2, "\",\"_id\":\"id", 1000 + i,
                    "\"}}\n{\"ch\":\"", channels[i % 4], "\",\"n\":", i % 10,
                    i % 7 == 0 ? "" : absl::StrCat(",\"opt\":", i), ",\"nested\":{\"k\":\"v", i % 3,
                    "\"}}\n");
  }
  ASSERT_EQ(Call("PUT", "/_index_template/s",
                 R"({"index_patterns":["s_*"],"template":{"mappings":{"properties":{
                     "ch":{"type":"keyword"},"n":{"type":"integer"},"opt":{"type":"long"},
                     "nested":{"properties":{"k":{"type":"keyword"}}}}}}})")
                .status,
            200);
  Bulk(ndjson);
  auto count = [&](const std::string& q) { return Count("s_*", q); };
  EXPECT_EQ(count(R"({"term":{"ch":"oppo"}})"), 250u);
  EXPECT_EQ(count(R"({"term":{"ch":{"value":"oppo"}}})"), 250u);
  EXPECT_EQ(count(R"({"terms":{"ch":["oppo","vivo"]}})"), 500u);
  EXPECT_EQ(count(R"({"range":{"n":{"gte":3,"lt":5}}})"), 200u);
  EXPECT_EQ(count(R"({"term":{"n":"3"}})"), 100u);
  EXPECT_EQ(count(R"({"exists":{"field":"opt"}})"), 1000u - 143u);
  EXPECT_EQ(count(R"({"term":{"nested.k":"v1"}})"), 333u);
  EXPECT_EQ(count(R"({"ids":{"values":["id1000","id1001","nope"]}})"), 2u);
  EXPECT_EQ(count(R"({"term":{"_index":"s_1"}})"), 500u);
  EXPECT_EQ(count(R"({"bool":{"filter":[{"term":{"ch":"oppo"}}],"must_not":[{"term":{"n":2}}]}})"),
            250u - 50u);
  EXPECT_EQ(count(R"({"bool":{"should":[{"term":{"n":1}},{"term":{"n":2}}]}})"), 200u);
  // n == 9 and huawei (i % 4 == 1): i % 20 == 9, 50 of them.
  EXPECT_EQ(
      count(R"({"bool":{"must":[{"match":{"ch":"huawei"}}],"filter":{"range":{"n":{"gt":8}}}}})"),
      50u);
  EXPECT_EQ(count(R"({"term":{"unmapped_field":"x"}})"), 0u);

  // Paging with search_after through everything in (n desc, _id asc) order.
  std::vector<std::pair<int, std::string>> expected;
  for (int i = 0; i < 1000; ++i) expected.push_back({i % 10, "id" + std::to_string(1000 + i)});
  std::sort(expected.begin(), expected.end(), [](const auto& a, const auto& b) {
    return a.first != b.first ? a.first > b.first : a.second < b.second;
  });
  std::vector<std::pair<int, std::string>> got;
  std::string after;
  for (int page = 0; page < 100; ++page) {
    std::string body = R"({"size":77,"sort":[{"n":"desc"},{"_id":"asc"}],"_source":["n"])";
    if (!after.empty()) absl::StrAppend(&body, ",\"search_after\":", after);
    body += "}";
    auto res = client_->Search("s_*", body);
    ASSERT_TRUE(res.ok()) << res.status();
    if (res->hits.empty()) break;
    for (const auto& h : res->hits) {
      Document src;
      src.Parse(h.source.c_str());
      ASSERT_EQ(src.MemberCount(), 1u) << h.source;
      got.push_back({src["n"].GetInt(), h.id});
    }
    after = res->hits.back().sort;
  }
  EXPECT_EQ(got, expected);

  // Missing values sort last (asc and desc) unless asked otherwise.
  Document d =
      Json(Call("POST", "/s_*/_search",
                R"({"size":1,"sort":[{"opt":{"order":"desc","missing":"_first"}},"_id"]})"));
  EXPECT_EQ(d["hits"]["hits"][0]["sort"][0].GetInt64(), INT64_MAX);
  d = Json(Call("POST", "/s_*/_search", R"({"size":1,"sort":[{"opt":"asc"}]})"));
  EXPECT_EQ(d["hits"]["hits"][0]["sort"][0].GetInt64(), 1);
  // _id-ordered paging over several indices (the fast path) sees every document once.
  std::set<std::string> seen;
  int hits = 0;
  auto st = client_->ScrollAll("s_*", ScrollOptions{"", {}, false, 64, {"_index", "_id"}},
                               [&](const SearchHit& h) {
                                 seen.insert(h.index + "/" + h.id);
                                 ++hits;
                                 return absl::OkStatus();
                               });
  ASSERT_TRUE(st.ok()) << st;
  EXPECT_EQ(hits, 1000);
  EXPECT_EQ(seen.size(), 1000u);
  // total hits: 10000 cap by default, exact with true.
  d = Json(Call("POST", "/s_*/_search", R"({"size":0,"track_total_hits":100})"));
  EXPECT_EQ(d["hits"]["total"]["value"].GetInt(), 100);
  EXPECT_STREQ(d["hits"]["total"]["relation"].GetString(), "gte");
  d = Json(Call("POST", "/s_*/_search?rest_total_hits_as_int=true", R"({"size":0})"));
  EXPECT_EQ(d["hits"]["total"].GetInt(), 1000);
  // from/size and _source excludes.
  d = Json(
      Call("POST", "/s_0/_search?size=2&from=3&_source_excludes=nested", R"({"sort":["_id"]})"));
  ASSERT_EQ(d["hits"]["hits"].Size(), 2u);
  EXPECT_STREQ(d["hits"]["hits"][0]["_id"].GetString(), "id1006");
  EXPECT_FALSE(d["hits"]["hits"][0]["_source"].HasMember("nested"));
  EXPECT_TRUE(d["hits"]["hits"][0]["_source"].HasMember("ch"));
  // mget by ids with an index in the URL.
  d = Json(Call("POST", "/s_0/_mget", R"({"ids":["id1000","id1001"]})"));
  EXPECT_TRUE(d["docs"][0]["found"].GetBool());
  EXPECT_FALSE(d["docs"][1]["found"].GetBool());  // id1001 is in s_1
}

TEST_F(EsLiteTest, Aggregations) {
  ASSERT_EQ(Call("PUT", "/_index_template/a",
                 R"({"index_patterns":["agg_*"],"template":{"mappings":{"properties":{
                     "ch":{"type":"keyword"},"amount":{"type":"double"},
                     "ts":{"type":"date","format":"epoch_millis"},
                     "create_time":{"type":"date","format":"yyyy-MM-dd HH:mm:ss"}}}}})")
                .status,
            200);
  // 2025-11-25 00:00:00 UTC, one doc every 20 minutes for 30 hours.
  const int64_t base = 1764028800000;
  std::string ndjson;
  for (int i = 0; i < 90; ++i) {
    int64_t ts = base + static_cast<int64_t>(i) * 20 * 60 * 1000;
    int h = (i / 3) % 24, day = 25 + (i / 3) / 24;
    absl::StrAppend(&ndjson, "{\"index\":{\"_index\":\"agg_1\",\"_id\":\"", i, "\"}}\n",
                    "{\"ch\":\"",
                    i % 3 == 0   ? "a"
                    : i % 3 == 1 ? "b"
                                 : "c",
                    "\",\"amount\":", i, ".5,\"ts\":", ts, ",\"create_time\":\"2025-11-", day, " ",
                    h < 10 ? "0" : "", h, ":00:00\"}\n");
  }
  Bulk(ndjson);
  Document d = Json(Call("POST", "/agg_*/_search", R"({"size":0,"aggs":{
      "by_ch":{"terms":{"field":"ch","size":2},"aggs":{"sum":{"sum":{"field":"amount"}}}},
      "by_key":{"terms":{"field":"ch","order":{"_key":"desc"}}},
      "hours":{"date_histogram":{"field":"ts","calendar_interval":"hour"}},
      "days":{"date_histogram":{"field":"create_time","calendar_interval":"day"},
              "aggs":{"n":{"value_count":{"field":"ch"}}}},
      "days_sh":{"date_histogram":{"field":"ts","calendar_interval":"1d","time_zone":"+08:00",
                                   "format":"yyyy-MM-dd"}},
      "fixed":{"date_histogram":{"field":"ts","fixed_interval":"6h","min_doc_count":1}},
      "count":{"value_count":{"field":"ch"}},
      "card":{"cardinality":{"field":"ch"}},
      "max_ts":{"max":{"field":"ts"}},
      "avg_amount":{"avg":{"field":"amount"}},
      "cheap":{"filter":{"range":{"amount":{"lt":10}}},
               "aggs":{"m":{"min":{"field":"amount"}}}}}})"));
  ASSERT_TRUE(d.HasMember("aggregations"));
  const auto& a = d["aggregations"];
  ASSERT_EQ(a["by_ch"]["buckets"].Size(), 2u);
  EXPECT_EQ(a["by_ch"]["buckets"][0]["doc_count"].GetInt(), 30);
  EXPECT_STREQ(a["by_ch"]["buckets"][0]["key"].GetString(), "a");  // ties: by key
  EXPECT_EQ(a["by_ch"]["sum_other_doc_count"].GetInt(), 30);
  double sum_a = 0;
  for (int i = 0; i < 90; i += 3) sum_a += i + 0.5;
  EXPECT_DOUBLE_EQ(a["by_ch"]["buckets"][0]["sum"]["value"].GetDouble(), sum_a);
  EXPECT_STREQ(a["by_key"]["buckets"][0]["key"].GetString(), "c");
  const auto& hours = a["hours"]["buckets"];
  ASSERT_EQ(hours.Size(), 30u);
  EXPECT_EQ(hours[0]["key"].GetInt64(), base);
  EXPECT_STREQ(hours[0]["key_as_string"].GetString(), "1764028800000");  // epoch_millis format
  EXPECT_EQ(hours[0]["doc_count"].GetInt(), 3);
  const auto& days = a["days"]["buckets"];
  ASSERT_EQ(days.Size(), 2u);
  EXPECT_STREQ(days[0]["key_as_string"].GetString(), "2025-11-25 00:00:00");
  EXPECT_EQ(days[0]["doc_count"].GetInt(), 72);
  EXPECT_EQ(days[1]["n"]["value"].GetInt(), 18);
  const auto& sh = a["days_sh"]["buckets"];
  ASSERT_EQ(sh.Size(), 2u);  // local days 2025-11-25 (from 08:00) and 2025-11-26
  EXPECT_STREQ(sh[0]["key_as_string"].GetString(), "2025-11-25");
  EXPECT_EQ(sh[0]["key"].GetInt64(), base - 8 * 3600 * 1000);
  EXPECT_EQ(sh[0]["doc_count"].GetInt(), 48);
  EXPECT_EQ(a["fixed"]["buckets"].Size(), 5u);
  EXPECT_EQ(a["count"]["value"].GetInt(), 90);
  EXPECT_EQ(a["card"]["value"].GetInt(), 3);
  EXPECT_EQ(a["max_ts"]["value"].GetDouble(), static_cast<double>(base + 89LL * 20 * 60 * 1000));
  EXPECT_TRUE(a["max_ts"].HasMember("value_as_string"));
  EXPECT_DOUBLE_EQ(a["avg_amount"]["value"].GetDouble(), 45.0);
  EXPECT_EQ(a["cheap"]["doc_count"].GetInt(), 10);
  EXPECT_DOUBLE_EQ(a["cheap"]["m"]["value"].GetDouble(), 0.5);
  // typed_keys names aggregations as the 8.x clients expect.
  d = Json(
      Call("POST", "/agg_*/_search?typed_keys=true",
           R"({"size":0,"aggs":{"x":{"terms":{"field":"ch"}},"y":{"avg":{"field":"amount"}}}})"));
  EXPECT_TRUE(d["aggregations"].HasMember("sterms#x"));
  EXPECT_TRUE(d["aggregations"].HasMember("avg#y"));
  // Aggregations on a text field or with a bad interval are refused.
  EXPECT_EQ(Call("POST", "/agg_*/_search",
                 R"({"aggs":{"x":{"date_histogram":{"field":"ts","calendar_interval":"2d"}}}})")
                .status,
            400);
  EXPECT_EQ(Call("POST", "/agg_*/_search", R"({"aggs":{"x":{"sum":{"field":"ch"}}}})").status, 400);
}

TEST_F(EsLiteTest, DurableAcrossKill9) {
  ASSERT_EQ(Call("PUT", "/_index_template/d",
                 R"({"index_patterns":["dur_*"],"template":{"mappings":{"properties":{
                     "n":{"type":"long"}}}}})")
                .status,
            200);
  std::string ndjson;
  for (int i = 0; i < 500; ++i) {
    absl::StrAppend(&ndjson, "{\"index\":{\"_index\":\"dur_", i % 5, "\",\"_id\":\"", i,
                    "\"}}\n{\"n\":", i, "}\n");
  }
  Bulk(ndjson);
  ASSERT_EQ(Call("PUT", "/dur_0/_doc/extra", R"({"n":-1})").status, 201);
  ASSERT_EQ(Call("DELETE", "/dur_1/_doc/1").status, 200);
  es_.Kill9();
  auto st = es_.Restart();
  ASSERT_TRUE(st.ok()) << st;
  Connect();
  EXPECT_EQ(Count("dur_*"), 500u);
  Document doc = Json(Call("GET", "/dur_0/_doc/extra"));
  EXPECT_TRUE(doc["found"].GetBool());
  EXPECT_EQ(Call("GET", "/dur_1/_doc/1").status, 404);
  // The template and the mapping survived too.
  EXPECT_EQ(Call("GET", "/_index_template/d").status, 200);
  EXPECT_EQ(ErrorType(Call("PUT", "/dur_0/_doc/bad", R"({"n":"x"})")), "mapper_parsing_exception");
  EXPECT_EQ(ErrorType(Call("PUT", "/dur_9/_doc/bad", R"({"n":"x"})")), "mapper_parsing_exception");
  // Versions and sequence numbers continue where they were.
  Document again = Json(Call("PUT", "/dur_0/_doc/extra", R"({"n":-2})"));
  EXPECT_EQ(again["_version"].GetInt(), 2);
  EXPECT_GE(again["_seq_no"].GetInt(), 101);
  es_.Stop();
}

TEST_F(EsLiteTest, BodyLimitAndFaultsApi) {
  es_.Kill9();
  rtdw::testing::EsLite small;
  ASSERT_TRUE(small.Start({"--max-content-length", "10000"}).ok());
  EsClientOptions o;
  o.urls = {small.url()};
  o.read_retries = 0;
  auto client = EsClient::Create(o);
  ASSERT_TRUE(client.ok());
  auto big = (*client)->Perform("PUT", "/x/_doc/1",
                                absl::StrCat("{\"a\":\"", std::string(20000, 'x'), "\"}"));
  ASSERT_TRUE(big.ok());
  EXPECT_EQ(big->status, 413);
  auto faults = (*client)->Perform("POST", "/_rtdw/faults", R"({"request_503_fraction":1.0})");
  ASSERT_TRUE(faults.ok());
  EXPECT_EQ(faults->status, 200);
  auto r = (*client)->Perform("GET", "/");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 503);
  auto counters = (*client)->Perform("GET", "/_rtdw/faults");
  ASSERT_TRUE(counters.ok());
  Document d;
  d.Parse(counters->body.c_str());
  EXPECT_GE(d["counters"]["requests_503"].GetInt(), 1);
  EXPECT_EQ((*client)->Perform("POST", "/_rtdw/faults", R"({"nope":1})")->status, 400);
  EXPECT_EQ((*client)->Perform("POST", "/_rtdw/faults", R"({"request_503_fraction":2})")->status,
            400);
  EXPECT_EQ((*client)->Perform("DELETE", "/_rtdw/faults")->status, 200);
  EXPECT_EQ((*client)->Perform("GET", "/")->status, 200);
  // SIGTERM stops it cleanly.
  small.Stop();
}

}  // namespace
}  // namespace rtdw

namespace rtdw {
namespace {

// ---------------------------------------------------------------------------------------------
// Strictness where rtdw's correctness depends on it (refresh, versions, settings and blocks,
// empty ids, late answers, server identities). Each test names the Elasticsearch sources it was
// checked against: the reference docs (elastic.co/guide/en/elasticsearch/reference/8.11/...)
// and Elasticsearch's REST API spec YAML tests (in the elastic/elasticsearch repository, named
// below by their API folder and file, e.g. index/10_with_id.yml).

// The same helpers as EsLiteTest; Start() restarts with other es-lite arguments.
class EsLiteStrictTest : public EsLiteTest {
 protected:
  void Start(const std::vector<std::string>& args) { StartWith(args); }
};

// Sources: reference "Refresh API" (indices-refresh.html), "?refresh" (docs-refresh.html: true,
// wait_for, false; "wait_for ... if index.refresh_interval is -1 ... waits until a refresh"),
// index-modules.html#index-refresh-interval (default 1s, -1 disables), "Get API" (realtime by
// default); YAML index/60_refresh.yml (forced_refresh true with refresh=true, absent with
// wait_for), bulk/10_basic.yml (bulk refresh=true then count).
TEST_F(EsLiteStrictTest, SearchesSeeOnlyRefreshedWritesGetIsRealTime) {
  ASSERT_EQ(Call("PUT", "/r1", R"({"settings":{"index":{"refresh_interval":"-1"}}})").status, 200);
  ASSERT_EQ(Call("PUT", "/r1/_doc/a", R"({"k":"a"})").status, 201);
  // Not refreshed: search, _count and aggregations see nothing; GET and _mget see the write.
  EXPECT_EQ(CountNow("r1"), 0);
  Document s =
      Json(Call("POST", "/r1/_search",
                R"({"query":{"term":{"_id":"a"}},"aggs":{"n":{"value_count":{"field":"_id"}}}})"));
  EXPECT_EQ(s["hits"]["total"]["value"].GetInt(), 0);
  EXPECT_EQ(s["aggregations"]["n"]["value"].GetInt(), 0);
  EXPECT_TRUE(Json(Call("GET", "/r1/_doc/a"))["found"].GetBool());
  EXPECT_EQ(Call("GET", "/r1/_doc/a?realtime=false").status, 404);
  Document mg = Json(Call("POST", "/_mget", R"({"docs":[{"_index":"r1","_id":"a"}]})"));
  EXPECT_TRUE(mg["docs"][0]["found"].GetBool());
  Document cat = Json(Call("GET", "/_cat/indices/r1?format=json"));
  EXPECT_STREQ(cat[0]["docs.count"].GetString(), "0");
  // _refresh on a pattern makes it visible.
  Document rr = Json(Call("POST", "/r*/_refresh"));
  EXPECT_EQ(rr["_shards"]["failed"].GetInt(), 0);
  EXPECT_EQ(CountNow("r1"), 1);
  // ?refresh=true: visible at once, the answer says forced_refresh.
  Document w = Json(Call("PUT", "/r1/_doc/b?refresh=true", R"({"k":"b"})"));
  EXPECT_TRUE(w["forced_refresh"].GetBool()) << w["result"].GetString();
  EXPECT_EQ(CountNow("r1"), 2);
  // ?refresh= (empty) means true too.
  w = Json(Call("PUT", "/r1/_doc/c?refresh=", R"({"k":"c"})"));
  EXPECT_TRUE(w.HasMember("forced_refresh"));
  EXPECT_EQ(CountNow("r1"), 3);
  EXPECT_EQ(ErrorType(Call("PUT", "/r1/_doc/d?refresh=later", R"({"k":"d"})")),
            "illegal_argument_exception");
  // Bulk ?refresh=true: successful items carry forced_refresh; failed ones do not.
  Document b = Json(Call("POST", "/_bulk?refresh=true",
                         "{\"index\":{\"_index\":\"r1\",\"_id\":\"e\"}}\n{\"k\":\"e\"}\n"
                         "{\"create\":{\"_index\":\"r1\",\"_id\":\"a\"}}\n{\"k\":\"a\"}\n",
                         "application/x-ndjson"));
  EXPECT_TRUE(b["items"][0]["index"]["forced_refresh"].GetBool());
  EXPECT_FALSE(b["items"][1]["create"].HasMember("forced_refresh"));
  EXPECT_EQ(CountNow("r1"), 4);
  // A delete is not visible to searches before a refresh either.
  ASSERT_EQ(Call("DELETE", "/r1/_doc/e").status, 200);
  EXPECT_EQ(CountNow("r1"), 4);
  EXPECT_EQ(Call("GET", "/r1/_doc/e").status, 404);
  // wait_for with refresh_interval -1 waits for a refresh (here: an explicit _refresh).
  std::atomic<bool> answered{false};
  std::string answer;
  std::thread writer([&] {
    auto c = NewClient(std::chrono::milliseconds(60000));
    auto r = c->Perform("PUT", "/r1/_doc/f?refresh=wait_for", R"({"k":"f"})");
    if (r.ok()) answer = r->body;
    answered = true;
  });
  ASSERT_TRUE(rtdw::testing::WaitFor(
      [&] {
        return Json(Call("GET", "/r1/_doc/f")).HasMember("found") &&
               Json(Call("GET", "/r1/_doc/f"))["found"].GetBool();
      },
      std::chrono::seconds(30)));
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_FALSE(answered.load()) << "wait_for answered before any refresh: " << answer;
  ASSERT_EQ(Call("POST", "/r1/_refresh").status, 200);
  writer.join();
  Document wf = Json(HttpResponse{200, answer, {}});
  EXPECT_STREQ(wf["result"].GetString(), "created");
  EXPECT_FALSE(wf.HasMember("forced_refresh"));
  // Durability does not depend on refreshes: an unrefreshed write survives kill -9 (and is
  // searchable after the restart, as after ES's recovery).
  ASSERT_EQ(Call("PUT", "/r1/_doc/g", R"({"k":"g"})").status, 201);
  es_.Kill9();
  ASSERT_TRUE(es_.Restart().ok());
  client_ = NewClient(std::chrono::milliseconds(60000));
  EXPECT_TRUE(Json(Call("GET", "/r1/_doc/g"))["found"].GetBool());
  EXPECT_EQ(CountNow("r1"), 5);  // a b c f g
}

// SIGTERM while a ?refresh=wait_for write waits on an index that never refreshes by itself: the
// write (already durable) is answered and es-lite stops cleanly instead of hanging on it.
TEST_F(EsLiteStrictTest, SigtermDoesNotHangOnAPendingWaitFor) {
  ASSERT_EQ(Call("PUT", "/w", R"({"settings":{"index":{"refresh_interval":"-1"}}})").status, 200);
  std::atomic<bool> answered{false};
  std::thread writer([&] {
    auto c = NewClient(std::chrono::milliseconds(60000));
    auto r = c->Perform("PUT", "/w/_doc/1?refresh=wait_for", R"({"k":1})");
    answered = r.ok() && r->status == 201;
  });
  ASSERT_TRUE(rtdw::testing::WaitFor([&] { return Call("GET", "/w/_doc/1").status == 200; },
                                     std::chrono::seconds(30)));
  const auto start = std::chrono::steady_clock::now();
  es_.Stop();  // SIGTERM; SIGKILL after 10 s
  writer.join();
  EXPECT_TRUE(answered.load());
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(8));
}

// The default refresh_interval (1s) shows a write to searches within about a second, by itself;
// a long interval does not show it before its time. Source: index-modules.html (refresh_interval).
TEST_F(EsLiteStrictTest, ScheduledRefreshFollowsTheIndexInterval) {
  ASSERT_EQ(Call("PUT", "/slow", R"({"settings":{"index.refresh_interval":"1h"}})").status, 200);
  ASSERT_EQ(Call("PUT", "/slow/_doc/1", R"({"k":1})").status, 201);
  ASSERT_EQ(Call("PUT", "/fast/_doc/1", R"({"k":1})").status, 201);  // auto-created: 1s
  const auto start = std::chrono::steady_clock::now();
  ASSERT_TRUE(
      rtdw::testing::WaitFor([&] { return CountNow("fast") == 1; }, std::chrono::seconds(30)));
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(20));
  EXPECT_EQ(CountNow("slow"), 0);
  // PUT _settings changes the interval of a live index: from -1/1h to 1s it refreshes by itself.
  ASSERT_EQ(Call("PUT", "/slow/_settings", R"({"index":{"refresh_interval":"1s"}})").status, 200);
  EXPECT_TRUE(
      rtdw::testing::WaitFor([&] { return CountNow("slow") == 1; }, std::chrono::seconds(30)));
}

// Sources: reference docs-index_.html#index-versioning ("external"/"external_gte", the version
// must be a non-negative long, the stored version becomes the given one), docs-delete.html
// (versioned deletes; index.gc_deletes keeps the deleted version 60s), docs-bulk.html (version,
// version_type per action); YAML index/35_external_version.yml, index/36_external_gte_version.yml,
// bulk/10_basic.yml. Messages: ES's VersionType explainConflictForWrites and IndexRequest /
// DeleteRequest validate().
TEST_F(EsLiteStrictTest, ExternalVersionsFollowEsRules) {
  auto put = [&](const std::string& id, const std::string& q) {
    return Call("PUT", "/v/_doc/" + id + "?" + q, R"({"f":1})");
  };
  HttpResponse r = put("1", "version_type=external&version=0");
  EXPECT_EQ(r.status, 201) << r.body;
  EXPECT_EQ(Json(r)["_version"].GetInt(), 0);
  r = put("1", "version_type=external&version=5");
  EXPECT_EQ(Json(r)["_version"].GetInt(), 5);
  EXPECT_STREQ(Json(r)["result"].GetString(), "updated");
  r = put("1", "version_type=external&version=5");
  EXPECT_EQ(r.status, 409);
  EXPECT_EQ(ErrorType(r), "version_conflict_engine_exception");
  EXPECT_EQ(
      ErrorReason(r),
      "[1]: version conflict, current version [5] is higher or equal to the one provided [5]");
  Document err = Json(r);
  EXPECT_STREQ(err["error"]["index"].GetString(), "v");
  EXPECT_STREQ(err["error"]["shard"].GetString(), "0");
  EXPECT_EQ(put("1", "version_type=external&version=0").status, 409);
  EXPECT_EQ(Json(put("1", "version_type=external&version=6"))["_version"].GetInt(), 6);
  // external_gte: equal is accepted, lower is not.
  r = put("1", "version_type=external_gte&version=6");
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(Json(r)["_version"].GetInt(), 6);
  r = put("1", "version_type=external_gte&version=4");
  EXPECT_EQ(ErrorReason(r),
            "[1]: version conflict, current version [6] is higher than the one provided [4]");
  // The version shows in GET and, with version=true, in search hits.
  EXPECT_EQ(Json(Call("GET", "/v/_doc/1"))["_version"].GetInt(), 6);
  ASSERT_EQ(Call("POST", "/v/_refresh").status, 200);
  Document s = Json(Call("POST", "/v/_search", R"({"version":true})"));
  EXPECT_EQ(s["hits"]["hits"][0]["_version"].GetInt(), 6);
  // A versioned delete: lower conflicts, higher deletes; the tombstone keeps the version, so an
  // older external write that arrives after the delete still conflicts (within gc_deletes).
  r = Call("DELETE", "/v/_doc/1?version_type=external&version=3");
  EXPECT_EQ(r.status, 409);
  r = Call("DELETE", "/v/_doc/1?version_type=external&version=10");
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(Json(r)["_version"].GetInt(), 10);
  EXPECT_STREQ(Json(r)["result"].GetString(), "deleted");
  r = put("1", "version_type=external&version=8");
  EXPECT_EQ(r.status, 409) << r.body;
  EXPECT_EQ(
      ErrorReason(r),
      "[1]: version conflict, current version [10] is higher or equal to the one provided [8]");
  r = put("1", "version_type=external&version=11");
  EXPECT_EQ(r.status, 201) << r.body;
  // Internal versions continue from a tombstone, and count per document.
  ASSERT_EQ(Call("PUT", "/v/_doc/i", R"({"f":1})").status, 201);
  ASSERT_EQ(Call("DELETE", "/v/_doc/i").status, 200);
  EXPECT_EQ(Json(Call("PUT", "/v/_doc/i", R"({"f":1})"))["_version"].GetInt(), 3);
  // Invalid versioning is a 400 action_request_validation_exception with ES's messages.
  r = put("2", "version=3");
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(ErrorReason(r),
            "Validation Failed: 1: internal versioning can not be used for optimistic concurrency "
            "control. Please use `if_seq_no` and `if_primary_term` instead;");
  r = put("2", "version_type=external&version=-2");
  EXPECT_EQ(ErrorReason(r),
            "Validation Failed: 1: illegal version value [-2] for version type [EXTERNAL];");
  r = Call("PUT", "/v/_create/2?version_type=external&version=3", R"({"f":1})");
  EXPECT_EQ(ErrorReason(r),
            "Validation Failed: 1: create operations only support internal versioning. use index "
            "instead;2: create operations do not support explicit versions. use index instead;");
  r = put("2", "version_type=force&version=3");
  EXPECT_EQ(ErrorType(r), "illegal_argument_exception");
  EXPECT_EQ(ErrorReason(r), "No version type match [force]");
  EXPECT_EQ(Call("GET", "/v/_doc/2").status, 404);

  // Bulk items: per-item 409s, the rest applied; ES's order-independence.
  HttpResponse br = Call("POST", "/_bulk",
                         "{\"index\":{\"_index\":\"v\",\"_id\":\"b\",\"version\":20,"
                         "\"version_type\":\"external\"}}\n{\"f\":20}\n"
                         "{\"index\":{\"_index\":\"v\",\"_id\":\"b\",\"version\":7,"
                         "\"version_type\":\"external\"}}\n{\"f\":7}\n"
                         "{\"index\":{\"_index\":\"v\",\"_id\":\"b\",\"version\":20,"
                         "\"version_type\":\"external_gte\"}}\n{\"f\":21}\n"
                         "{\"delete\":{\"_index\":\"v\",\"_id\":\"nope\",\"version\":4,"
                         "\"version_type\":\"external\"}}\n",
                         "application/x-ndjson");
  ASSERT_EQ(br.status, 200) << br.body;
  Document bd = Json(br);
  EXPECT_TRUE(bd["errors"].GetBool());
  EXPECT_EQ(bd["items"][0]["index"]["_version"].GetInt(), 20);
  EXPECT_EQ(bd["items"][1]["index"]["status"].GetInt(), 409);
  EXPECT_STREQ(bd["items"][1]["index"]["error"]["type"].GetString(),
               "version_conflict_engine_exception");
  EXPECT_STREQ(bd["items"][1]["index"]["error"]["reason"].GetString(),
               "[b]: version conflict, current version [20] is higher or equal to the one "
               "provided [7]");
  EXPECT_EQ(bd["items"][2]["index"]["status"].GetInt(), 200);
  EXPECT_EQ(bd["items"][3]["delete"]["status"].GetInt(), 404);
  EXPECT_STREQ(bd["items"][3]["delete"]["result"].GetString(), "not_found");
  EXPECT_EQ(bd["items"][3]["delete"]["_version"].GetInt(), 4);
  Document got = Json(Call("GET", "/v/_doc/b"));
  EXPECT_EQ(got["_source"]["f"].GetInt(), 21);
  // An invalid item refuses the whole bulk (BulkRequest.validate), nothing written.
  br = Call("POST", "/_bulk",
            "{\"index\":{\"_index\":\"v\",\"_id\":\"c\"}}\n{\"f\":1}\n"
            "{\"create\":{\"_index\":\"v\",\"_id\":\"d\",\"version\":2,"
            "\"version_type\":\"external\"}}\n{\"f\":1}\n",
            "application/x-ndjson");
  EXPECT_EQ(br.status, 400);
  EXPECT_EQ(ErrorType(br), "action_request_validation_exception");
  EXPECT_EQ(Call("GET", "/v/_doc/c").status, 404);
}

// Items of one bulk are versioned against the items before them in the same bulk (ES applies a
// shard's items in order), not only against what was stored before the bulk: es-lite keeps what
// a Write() put under each key (head and source) and reads the database only for keys it has not
// written yet. A lookup of the stored versions made once before the bulk would answer item 1 with
// 201 "created", accept items 2-3 and 8, and lose the updates' merged sources; the index's byte
// count follows each item's own source.
TEST_F(EsLiteTest, BulkItemsSeeEarlierItemsOfTheSameBulk) {
  auto item = [](const std::string& op, const std::string& id, const std::string& versioning) {
    return "{\"" + op + "\":{\"_index\":\"o\",\"_id\":\"" + id + "\"" + versioning + "}}\n";
  };
  auto ext = [](int v) {
    return ",\"version\":" + std::to_string(v) + ",\"version_type\":\"external\"";
  };
  auto gte = [](int v) {
    return ",\"version\":" + std::to_string(v) + ",\"version_type\":\"external_gte\"";
  };
  const std::string body = item("index", "a", gte(5)) + "{\"f\":1}\n" +         // 0
                           item("index", "a", gte(5)) + "{\"f\":2}\n" +         // 1
                           item("index", "a", ext(5)) + "{\"f\":3}\n" +         // 2
                           item("index", "a", gte(4)) + "{\"f\":4}\n" +         // 3
                           item("update", "a", "") + "{\"doc\":{\"g\":2}}\n" +  // 4
                           item("update", "a", "") + "{\"doc\":{\"h\":3}}\n" +  // 5
                           item("update", "a", "") + "{\"doc\":{\"h\":3}}\n" +  // 6
                           item("delete", "a", ext(9)) +                        // 7
                           item("index", "a", ext(8)) + "{\"f\":8}\n" +         // 8
                           item("create", "a", "") + "{\"f\":10}\n" +           // 9
                           item("index", "b", gte(3)) + "{\"f\":1}\n" +         // 10
                           item("index", "b", ext(2)) + "{\"f\":2}\n" +         // 11
                           item("index", "c", gte(1)) + "{\"f\":1}\n" +         // 12
                           item("update", "c", "") + "{\"doc\":{\"g\":2}}\n" +  // 13
                           item("update", "c", "") + "{\"doc\":{\"h\":3}}\n";   // 14
  HttpResponse r = Call("POST", "/_bulk", body, "application/x-ndjson");
  ASSERT_EQ(r.status, 200) << r.body;
  Document d = Json(r);
  const auto& it = d["items"];
  ASSERT_EQ(it.Size(), 15u) << r.body;
  auto res = [&](int i) { return it[i].MemberBegin()->value.GetObject(); };
  const int status[] = {201, 200, 409, 409, 200, 200, 200, 200, 409, 201, 201, 409, 201, 200, 200};
  const int version[] = {5, 5, 0, 0, 6, 7, 7, 9, 0, 10, 3, 0, 1, 2, 3};
  for (int i = 0; i < 15; ++i) {
    EXPECT_EQ(res(i)["status"].GetInt(), status[i]) << "item " << i << ": " << r.body;
    if (status[i] != 409) {
      EXPECT_EQ(res(i)["_version"].GetInt(), version[i]) << "item " << i;
    }
  }
  EXPECT_STREQ(res(6)["result"].GetString(), "noop");
  EXPECT_STREQ(res(7)["result"].GetString(), "deleted");
  EXPECT_STREQ(res(2)["error"]["reason"].GetString(),
               "[a]: version conflict, current version [5] is higher or equal to the one "
               "provided [5]");
  EXPECT_STREQ(res(3)["error"]["reason"].GetString(),
               "[a]: version conflict, current version [5] is higher than the one provided [4]");
  EXPECT_STREQ(res(8)["error"]["reason"].GetString(),
               "[a]: version conflict, current version [9] is higher or equal to the one "
               "provided [8]");
  EXPECT_STREQ(res(11)["error"]["reason"].GetString(),
               "[b]: version conflict, current version [3] is higher or equal to the one "
               "provided [2]");
  EXPECT_EQ(Call("GET", "/o/_source/a").body, R"({"f":10})");
  EXPECT_EQ(Call("GET", "/o/_source/b").body, R"({"f":1})");
  EXPECT_EQ(Call("GET", "/o/_source/c").body, R"({"f":1,"g":2,"h":3})");
  // The same items against what the first bulk stored (the database, not the bulk's own writes).
  r = Call("POST", "/_bulk",
           item("index", "a", gte(9)) + "{\"f\":9}\n" + item("update", "c", "") +
               "{\"doc\":{\"i\":4}}\n" + item("index", "b", gte(3)) + "{\"f\":3}\n",
           "application/x-ndjson");
  ASSERT_EQ(r.status, 200) << r.body;
  Document d2 = Json(r);
  EXPECT_EQ(d2["items"][0]["index"]["status"].GetInt(), 409) << r.body;
  EXPECT_EQ(d2["items"][1]["update"]["_version"].GetInt(), 4) << r.body;
  EXPECT_EQ(d2["items"][2]["index"]["_version"].GetInt(), 3) << r.body;
  EXPECT_EQ(Call("GET", "/o/_source/c").body, R"({"f":1,"g":2,"h":3,"i":4})");
  // docs: a, b, c; bytes: {"f":10} + {"f":3} + {"f":1,"g":2,"h":3,"i":4}.
  ASSERT_EQ(Call("POST", "/o/_refresh").status, 200);
  EXPECT_EQ(Call("GET", "/_cat/indices/o?h=docs.count,store.size&bytes=b").body, "3 40\n");
}

// Sources: reference index-modules-blocks.html (index.blocks.write / read_only /
// read_only_allow_delete; "index [x] blocked by: [FORBIDDEN/8/index write (api)];"),
// indices-update-settings.html (PUT /<index>/_settings, dynamic settings only, null resets),
// indices-get-settings.html; YAML indices.put_settings/10_basic.yml,
// indices.put_settings/20_update_non_dynamic_settings.yml.
TEST_F(EsLiteStrictTest, SettingsAndWriteBlocks) {
  ASSERT_EQ(Call("PUT", "/old", R"({"settings":{"number_of_replicas":1}})").status, 200);
  ASSERT_EQ(Call("PUT", "/old/_doc/1?refresh=true", R"({"f":1})").status, 201);
  HttpResponse r = Call("PUT", "/old/_settings", R"({"index":{"blocks.write":true,
                                                    "number_of_replicas":0}})");
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_TRUE(Json(r)["acknowledged"].GetBool());
  Document st = Json(Call("GET", "/old/_settings"));
  EXPECT_STREQ(st["old"]["settings"]["index"]["blocks"]["write"].GetString(), "true");
  EXPECT_STREQ(st["old"]["settings"]["index"]["number_of_replicas"].GetString(), "0");
  EXPECT_STREQ(Json(Call("GET", "/_cluster/health/old"))["status"].GetString(), "green");
  // A bulk over a blocked and a writable index: per-item 403, the other items applied.
  r = Call("POST", "/_bulk",
           "{\"index\":{\"_index\":\"old\",\"_id\":\"2\"}}\n{\"f\":2}\n"
           "{\"index\":{\"_index\":\"new\",\"_id\":\"2\"}}\n{\"f\":2}\n"
           "{\"delete\":{\"_index\":\"old\",\"_id\":\"1\"}}\n",
           "application/x-ndjson");
  ASSERT_EQ(r.status, 200) << r.body;
  Document b = Json(r);
  EXPECT_TRUE(b["errors"].GetBool());
  EXPECT_EQ(b["items"][0]["index"]["status"].GetInt(), 403);
  EXPECT_STREQ(b["items"][0]["index"]["error"]["type"].GetString(), "cluster_block_exception");
  EXPECT_STREQ(b["items"][0]["index"]["error"]["reason"].GetString(),
               "index [old] blocked by: [FORBIDDEN/8/index write (api)];");
  EXPECT_EQ(b["items"][1]["index"]["status"].GetInt(), 201);
  EXPECT_EQ(b["items"][2]["delete"]["status"].GetInt(), 403);
  // Single-document writes: a top-level 403.
  r = Call("PUT", "/old/_doc/3", R"({"f":3})");
  EXPECT_EQ(r.status, 403);
  EXPECT_EQ(ErrorType(r), "cluster_block_exception");
  EXPECT_EQ(Call("DELETE", "/old/_doc/1").status, 403);
  EXPECT_EQ(Call("POST", "/old/_update/1", R"({"doc":{"g":1}})").status, 403);
  // Reads still work.
  EXPECT_TRUE(Json(Call("GET", "/old/_doc/1"))["found"].GetBool());
  EXPECT_EQ(CountNow("old"), 1);
  // read_only also refuses settings changes other than blocks.
  ASSERT_EQ(Call("PUT", "/old/_settings", R"({"index.blocks.read_only":true})").status, 200);
  r = Call("PUT", "/old/_settings", R"({"index.refresh_interval":"5s"})");
  EXPECT_EQ(r.status, 403);
  EXPECT_EQ(ErrorReason(r), "index [old] blocked by: [FORBIDDEN/5/index read-only (api)];");
  r = Call("PUT", "/old/_doc/4", R"({"f":4})");
  EXPECT_EQ(ErrorReason(r),
            "index [old] blocked by: [FORBIDDEN/5/index read-only (api), FORBIDDEN/8/index write "
            "(api)];");
  // Lifting the blocks (null resets to the default) makes it writable again.
  ASSERT_EQ(
      Call("PUT", "/old/_settings", R"({"index":{"blocks":{"read_only":null,"write":false}}})")
          .status,
      200);
  EXPECT_EQ(Call("PUT", "/old/_doc/5", R"({"f":5})").status, 201);
  // The flood-stage block (ES 8: 429) still lets deletes through.
  ASSERT_EQ(Call("PUT", "/old/_settings", R"({"index.blocks.read_only_allow_delete":true})").status,
            200);
  r = Call("PUT", "/old/_doc/6", R"({"f":6})");
  EXPECT_EQ(r.status, 429);
  EXPECT_EQ(ErrorType(r), "cluster_block_exception");
  EXPECT_EQ(Call("DELETE", "/old/_doc/5").status, 200);
  // Bad settings: unknown, non-dynamic, unparsable values are 400s; a missing index is a 404.
  EXPECT_EQ(Call("PUT", "/new/_settings", R"({"index.number_of_shards":3})").status, 400);
  EXPECT_EQ(Call("PUT", "/new/_settings", R"({"index.refresh_interval":"soon"})").status, 400);
  EXPECT_EQ(Call("PUT", "/new/_settings", R"({"index.blocks.write":"yes"})").status, 400);
  EXPECT_EQ(Call("PUT", "/new/_settings", R"({"index.no_such_thing":1})").status, 400);
  EXPECT_EQ(Call("PUT", "/missing/_settings", R"({"index.blocks.write":true})").status, 404);
  // Settings survive a restart.
  es_.Kill9();
  ASSERT_TRUE(es_.Restart().ok());
  client_ = NewClient(std::chrono::milliseconds(60000));
  EXPECT_EQ(Call("PUT", "/old/_doc/7", R"({"f":7})").status, 429);
}

// Source: YAML bulk/10_basic.yml "Empty _id" (per-item 400 illegal_argument_exception "if _id is
// specified it must not be empty", the other items created, count 2).
TEST_F(EsLiteStrictTest, EmptyIdIsRefusedPerItem) {
  HttpResponse r = Call("POST", "/_bulk?refresh=true",
                        "{\"index\":{\"_index\":\"e\",\"_id\":\"\"}}\n{\"f\":1}\n"
                        "{\"index\":{\"_index\":\"e\",\"_id\":\"id\"}}\n{\"f\":2}\n"
                        "{\"index\":{\"_index\":\"e\"}}\n{\"f\":3}\n"
                        "{\"create\":{\"_index\":\"e\",\"_id\":\"\"}}\n{\"f\":4}\n",
                        "application/x-ndjson");
  ASSERT_EQ(r.status, 200) << r.body;
  Document d = Json(r);
  EXPECT_TRUE(d["errors"].GetBool());
  EXPECT_EQ(d["items"][0]["index"]["status"].GetInt(), 400);
  EXPECT_STREQ(d["items"][0]["index"]["error"]["type"].GetString(), "illegal_argument_exception");
  EXPECT_STREQ(d["items"][0]["index"]["error"]["reason"].GetString(),
               "if _id is specified it must not be empty");
  EXPECT_STREQ(d["items"][1]["index"]["result"].GetString(), "created");
  EXPECT_STREQ(d["items"][2]["index"]["result"].GetString(), "created");
  EXPECT_EQ(d["items"][3]["create"]["status"].GetInt(), 400);
  EXPECT_EQ(CountNow("e"), 2);
}

// The late-answer fault: the write is applied (and durable) at once, the answer comes after the
// client gave up. Not an ES behaviour: what a slow or partitioned cluster looks like to a client.
TEST_F(EsLiteStrictTest, AnswerLateFaultAppliesThenAnswersAfterTheClientTimeout) {
  ASSERT_EQ(
      Call("POST", "/_rtdw/faults", R"({"answer_late_fraction":1.0,"answer_late_ms":3000})").status,
      200);
  auto impatient = NewClient(std::chrono::milliseconds(500));
  auto r = impatient->Perform("POST", "/_bulk",
                              "{\"index\":{\"_index\":\"late\",\"_id\":\"1\"}}\n{\"f\":1}\n",
                              "application/x-ndjson");
  EXPECT_FALSE(r.ok()) << "answered in time: " << (r.ok() ? r->body : "");
  Document faults = Json(Call("DELETE", "/_rtdw/faults"));
  EXPECT_GE(faults["counters"]["answered_late"].GetInt(), 1);
  EXPECT_TRUE(Json(Call("GET", "/late/_doc/1"))["found"].GetBool());
  EXPECT_EQ(Call("POST", "/_rtdw/faults", R"({"answer_late_ms":-1})").status, 400);
}

// Sources: reference sort-search-results.html and mapping-id-field.html ("_id ... is restricted
// from use in aggregations, sorting and scripting ... indices.id_field_data.enabled"), ES 8
// breaking changes (id_field_data disabled by default); the error as ES 8 answers it.
TEST_F(EsLiteStrictTest, IdSortRefusedAsElasticsearch8Does) {
  ASSERT_EQ(Call("PUT", "/ids/_doc/1?refresh=true", R"({"k":"1"})").status, 201);
  for (const std::string body : {R"({"sort":["_id"]})", R"({"sort":[{"_id":"asc"}]})",
                                 R"({"sort":[{"_index":"asc"},{"_id":{"order":"desc"}}]})"}) {
    HttpResponse r = Call("POST", "/ids/_search", body);
    EXPECT_EQ(r.status, 400) << body;
    Document d = Json(r);
    EXPECT_STREQ(d["error"]["type"].GetString(), "search_phase_execution_exception");
    EXPECT_STREQ(d["error"]["root_cause"][0]["type"].GetString(), "illegal_argument_exception");
    EXPECT_NE(std::string(d["error"]["caused_by"]["reason"].GetString())
                  .find("Fielddata access on the _id field is disallowed"),
              std::string::npos);
  }
  EXPECT_EQ(Call("POST", "/ids/_search?sort=_id").status, 400);
  EXPECT_EQ(Call("POST", "/ids/_search", R"({"sort":[{"k.keyword":"asc"}]})").status, 200);
}

// Each identity answers GET / as that server does, with the product header only where that
// server sends it (ES 7.14+), and its media types. Sources: reference rest-api-compatibility.html
// (compatible-with=7|8 on ES 8), the Elasticsearch clients' product check (X-Elastic-Product
// since 7.14), OpenSearch's GET / ("distribution":"opensearch", no product header).
TEST(EsLiteIdentityTest, EachIdentityAnswersAsThatServer) {
  struct Case {
    std::string identity;
    std::string number;
    bool opensearch;
    bool product_header;
    bool vendor_type_8;  // application/vnd.elasticsearch+json; compatible-with=8 accepted
    bool id_sort;
  };
  const Case cases[] = {{"es-8", "8.11.0", false, true, true, false},
                        {"es-7", "7.17.15", false, true, false, true},
                        {"es-7.10", "7.10.2", false, false, false, true},
                        {"opensearch-2", "2.11.1", true, false, false, true},
                        {"opensearch-1", "1.3.14", true, false, false, true},
                        {"es-6", "6.8.23", false, false, false, true}};
  for (const Case& c : cases) {
    SCOPED_TRACE(c.identity);
    rtdw::testing::EsLite es;
    ASSERT_TRUE(es.Start({"--identity", c.identity}).ok());
    auto out = rtdw::testing::RunCommand({"curl", "-s", "-i", es.url() + "/"});
    EXPECT_EQ(out.out.find("X-Elastic-Product: Elasticsearch") != std::string::npos,
              c.product_header)
        << out.out;
    Document info;
    info.Parse(out.out.substr(out.out.find("\r\n\r\n") + 4).c_str());
    ASSERT_TRUE(info.IsObject()) << out.out;
    EXPECT_EQ(info["version"]["number"].GetString(), c.number);
    EXPECT_EQ(info["version"].HasMember("distribution"), c.opensearch);
    EXPECT_EQ(info["version"].HasMember("build_flavor"), !c.opensearch);
    auto vendor = rtdw::testing::RunCommand(
        {"curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-XPUT", es.url() + "/x/_doc/1",
         "-H", "Content-Type: application/vnd.elasticsearch+json; compatible-with=8", "-d",
         R"({"a":1})"});
    EXPECT_EQ(vendor.out == "201", c.vendor_type_8) << vendor.out;
    auto plain =
        rtdw::testing::RunCommand({"curl", "-s", "-XPUT", es.url() + "/x/_doc/2?refresh=true", "-H",
                                   "Content-Type: application/json", "-d", R"({"a":1})"});
    EXPECT_NE(plain.out.find("\"created\""), std::string::npos) << plain.out;
    auto sorted = rtdw::testing::RunCommand(
        {"curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-XPOST", es.url() + "/x/_search",
         "-H", "Content-Type: application/json", "-d", R"({"sort":["_id"]})"});
    EXPECT_EQ(sorted.out, c.id_sort ? "200" : "400");
  }
  rtdw::testing::EsLite other;
  ASSERT_TRUE(other.Start({"--identity", "other"}).ok());
  auto body = rtdw::testing::RunCommand({"curl", "-s", other.url() + "/"});
  EXPECT_EQ(body.out.find("tagline"), std::string::npos) << body.out;
  auto bad = rtdw::testing::RunCommand({rtdw::testing::BinDir() + "/rtdw-es-lite", "--data-dir",
                                        "/tmp/unused", "--identity", "es-5"});
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_NE(bad.err.find("--identity must be one of"), std::string::npos) << bad.err;
}

// rtdw's recognition of the server (connectors/es RecognizeServer via EsClient::Info) against
// es-lite in every identity: the supported ones are recognised, the others refused with a
// message naming what was found and what is supported.
TEST(EsLiteIdentityTest, ClientRecognisesSupportedServersAndRefusesOthers) {
  struct Case {
    std::string identity;
    bool supported;
    std::string described_or_message;
  };
  const Case cases[] = {{"es-8", true, "Elasticsearch 8.11.0"},
                        {"es-7", true, "Elasticsearch 7.17.15"},
                        {"es-7.10", true, "Elasticsearch 7.10.2"},
                        {"opensearch-2", true, "OpenSearch 2.11.1"},
                        {"opensearch-1", true, "OpenSearch 1.3.14"},
                        {"es-6", false, "Elasticsearch 6.8.23 is too old"},
                        {"other", false, "neither Elasticsearch's nor OpenSearch's"}};
  for (const Case& c : cases) {
    SCOPED_TRACE(c.identity);
    rtdw::testing::EsLite es;
    ASSERT_TRUE(es.Start({"--identity", c.identity}).ok());
    EsClientOptions o;
    o.urls = {es.url()};
    o.read_retries = 0;
    auto client = EsClient::Create(o);
    ASSERT_TRUE(client.ok());
    auto info = (*client)->Info();
    if (c.supported) {
      ASSERT_TRUE(info.ok()) << info.status();
      EXPECT_EQ(info->Describe(), c.described_or_message);
    } else {
      ASSERT_FALSE(info.ok());
      EXPECT_EQ(info.status().code(), absl::StatusCode::kFailedPrecondition);
      EXPECT_NE(std::string(info.status().message()).find(c.described_or_message),
                std::string::npos)
          << info.status();
      EXPECT_NE(std::string(info.status().message()).find(kSupportedServers), std::string::npos)
          << info.status();
    }
  }
  // Answers rtdw must refuse although no es-lite identity gives them.
  EXPECT_FALSE(RecognizeServer(R"({"version":{"number":"9.0.0","build_flavor":"default"},
                                   "tagline":"You Know, for Search"})",
                               true)
                   .ok());
  EXPECT_FALSE(
      RecognizeServer(R"({"version":{"number":"3.0.0","distribution":"opensearch"}})", false).ok());
  EXPECT_FALSE(
      RecognizeServer(R"({"version":{"number":"1.2.4","distribution":"opensearch"}})", false).ok());
  EXPECT_FALSE(RecognizeServer(R"({"version":{"number":"7.9.3","build_flavor":"default"},
                                   "tagline":"You Know, for Search"})",
                               false)
                   .ok());
  // ES 7.14+ without the product header is not Elasticsearch (as the official clients say).
  auto no_header = RecognizeServer(R"({"version":{"number":"8.11.0","build_flavor":"default"},
                                       "tagline":"You Know, for Search"})",
                                   false);
  EXPECT_FALSE(no_header.ok());
  EXPECT_NE(std::string(no_header.status().message()).find("X-Elastic-Product"), std::string::npos);
  EXPECT_FALSE(RecognizeServer("<html>hello</html>", false).ok());
}

}  // namespace
}  // namespace rtdw
