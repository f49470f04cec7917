// Hostile HTTP and secure connections between rtdw and Elasticsearch, against a real rtdw-es-lite:
//  - rtdw-es-lite answers a POST without Content-Length at once (a raw socket: no client library
//    adds the header for us) and keeps the connection usable;
//  - a body over --max-content-length gets 413 with an ES error body, and the connection stays
//    usable;
//  - the connector sends basic auth and API keys (es-lite started with --basic-auth / --api-key
//    refuses requests without them);
//  - TLS verification is on by default: a self-signed https endpoint (a certificate made with
//    openssl at test time, served by es-lite --tls-cert) is refused unless the client is given
//    the CA (es.ca_file) or verification is turned off (es.verify_tls = false);
//  - an answer over max_response_bytes is refused with a clear error and counted.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "connectors/es/es_client.h"
#include "rapidjson/document.h"
#include "tests/harness/process.h"
#include "tests/harness/services.h"

namespace rtdw {
namespace {

using testing::EsLite;
using testing::RunCommand;
using testing::TempDir;

// One HTTP/1.1 exchange (or several, pipelined) on a raw TCP connection.
class RawConnection {
 public:
  explicit RawConnection(int port) {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(port);
    connected_ = connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
    timeval tv{1, 0};
    setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  }
  ~RawConnection() { close(fd_); }
  bool connected() const { return connected_; }

  bool Send(const std::string& bytes) {
    return write(fd_, bytes.data(), bytes.size()) == static_cast<ssize_t>(bytes.size());
  }

  struct Response {
    int status = 0;
    std::string head;
    std::string body;
  };
  // Reads one response (status line, headers, Content-Length body); status 0 when none came
  // within `timeout`.
  Response Read(std::chrono::milliseconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    Response r;
    while (std::chrono::steady_clock::now() < deadline) {
      size_t end = buffer_.find("\r\n\r\n");
      if (end != std::string::npos) {
        r.head = buffer_.substr(0, end);
        size_t length = 0;
        for (absl::string_view line : absl::StrSplit(r.head, "\r\n")) {
          if (absl::StartsWithIgnoreCase(line, "Content-Length:")) {
            (void)absl::SimpleAtoi(absl::StripAsciiWhitespace(line.substr(15)), &length);
          }
        }
        if (buffer_.size() >= end + 4 + length) {
          r.body = buffer_.substr(end + 4, length);
          buffer_.erase(0, end + 4 + length);
          (void)absl::SimpleAtoi(r.head.substr(9, 3), &r.status);
          return r;
        }
      }
      char buf[65536];
      ssize_t n = read(fd_, buf, sizeof(buf));
      if (n == 0) break;  // closed
      if (n > 0) buffer_.append(buf, static_cast<size_t>(n));
    }
    return r;
  }

 private:
  int fd_ = -1;
  bool connected_ = false;
  std::string buffer_;
};

std::string ErrorType(const std::string& body) {
  rapidjson::Document d;
  d.Parse(body.c_str());
  if (d.HasParseError() || !d.IsObject() || !d.HasMember("error") || !d["error"].IsObject() ||
      !d["error"].HasMember("type")) {
    return "";
  }
  return d["error"]["type"].GetString();
}

std::unique_ptr<EsClient> Client(EsClientOptions o) {
  o.read_retries = 0;
  o.warn = [](std::string_view) {};
  auto c = EsClient::Create(o);
  EXPECT_TRUE(c.ok()) << c.status();
  return c.ok() ? std::move(*c) : nullptr;
}

std::unique_ptr<EsClient> Client(const std::string& url) {
  EsClientOptions o;
  o.urls = {url};
  return Client(o);
}

TEST(EsLiteHostileHttpTest, APostWithoutContentLengthIsAnsweredAtOnce) {
  EsLite es;
  ASSERT_TRUE(es.Start().ok());
  RawConnection c(es.port());
  ASSERT_TRUE(c.connected());
  // No Content-Length, no Transfer-Encoding, and the connection left open: a server that reads
  // the body to EOF never answers.
  auto started = std::chrono::steady_clock::now();
  ASSERT_TRUE(c.Send("POST /_refresh HTTP/1.1\r\nHost: localhost\r\n\r\n"));
  auto r = c.Read(std::chrono::seconds(5));
  EXPECT_EQ(r.status, 200) << r.head;
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(3));
  EXPECT_TRUE(absl::StrContains(r.head, "X-Elastic-Product: Elasticsearch")) << r.head;
  // A bulk without a body is ES's 400, not a hang; the connection then still serves requests.
  ASSERT_TRUE(c.Send("POST /_bulk HTTP/1.1\r\nHost: localhost\r\n\r\n"));
  r = c.Read(std::chrono::seconds(5));
  EXPECT_EQ(r.status, 400) << r.head;
  EXPECT_EQ(ErrorType(r.body), "parse_exception") << r.body;
  EXPECT_TRUE(absl::StrContains(r.body, "request body is required")) << r.body;
  ASSERT_TRUE(c.Send("GET / HTTP/1.1\r\nHost: localhost\r\n\r\n"));
  r = c.Read(std::chrono::seconds(5));
  EXPECT_EQ(r.status, 200);
  EXPECT_TRUE(absl::StrContains(r.body, "You Know, for Search")) << r.body;
}

TEST(EsLiteHostileHttpTest, ABodyOverTheLimitIs413WithAnEsErrorBody) {
  EsLite es;
  ASSERT_TRUE(es.Start({"--max-content-length", "1000"}).ok());
  RawConnection c(es.port());
  ASSERT_TRUE(c.connected());
  std::string doc = absl::StrCat("{\"a\":\"", std::string(5000, 'x'), "\"}");
  ASSERT_TRUE(c.Send(absl::StrCat("PUT /big/_doc/1 HTTP/1.1\r\nHost: localhost\r\n",
                                  "Content-Type: application/json\r\nContent-Length: ", doc.size(),
                                  "\r\n\r\n", doc)));
  auto r = c.Read(std::chrono::seconds(5));
  EXPECT_EQ(r.status, 413) << r.head;
  EXPECT_EQ(ErrorType(r.body), "request_entity_too_large_exception") << r.body;
  EXPECT_TRUE(absl::StrContains(r.body, "http.max_content_length [1000]")) << r.body;
  EXPECT_TRUE(absl::StrContains(r.body, "\"status\":413")) << r.body;
  // The body was read and dropped: the next request on the connection is understood.
  ASSERT_TRUE(c.Send("GET /big/_doc/1 HTTP/1.1\r\nHost: localhost\r\n\r\n"));
  r = c.Read(std::chrono::seconds(5));
  EXPECT_EQ(r.status, 404) << r.head << r.body;  // nothing was written
  // Through the connector: the status and the ES error reach the caller.
  auto client = Client(es.url());
  auto put = client->Perform("PUT", "/big/_doc/1", doc);
  ASSERT_TRUE(put.ok()) << put.status();
  EXPECT_EQ(put->status, 413);
  EXPECT_TRUE(absl::StrContains(StatusFromEsResponse(*put, "PUT").message(),
                                "request_entity_too_large_exception"));
}

TEST(EsSecurityTest, BasicAuthIsSentAndRequired) {
  EsLite es;
  ASSERT_TRUE(es.Start({"--basic-auth", "elastic:s3cret-pw"}).ok());
  auto anonymous = Client(es.url());
  auto info = anonymous->Info();
  ASSERT_FALSE(info.ok());
  EXPECT_EQ(info.status().code(), absl::StatusCode::kUnauthenticated) << info.status();
  EXPECT_TRUE(absl::StrContains(info.status().message(), "security_exception")) << info.status();
  EXPECT_TRUE(absl::StrContains(info.status().message(), "missing authentication credentials"));

  EsClientOptions o;
  o.urls = {es.url()};
  o.user = "elastic";
  o.password = "wrong";
  auto wrong = Client(o)->Info();
  ASSERT_FALSE(wrong.ok());
  EXPECT_EQ(wrong.status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_FALSE(absl::StrContains(wrong.status().message(), "wrong"));  // no credential echoed

  o.password = "s3cret-pw";
  auto client = Client(o);
  ASSERT_TRUE(client->Info().ok());
  auto bulk = client->Bulk(std::vector<BulkAction>{{BulkOp::kIndex, "auth-test", "1", "{}"}});
  ASSERT_TRUE(bulk.ok()) << bulk.status();
  EXPECT_EQ(bulk->delivered, 1u);
}

TEST(EsSecurityTest, ApiKeyIsSentAndRequired) {
  EsLite es;
  ASSERT_TRUE(
      es.Start({"--api-key", "VnVhQ2ZHY0JDZGJrUW0tZTVhT3g6dWkybHAyYXhUTm1zeWFrdzl0dk5udw=="}).ok());
  auto anonymous = Client(es.url())->Info();
  ASSERT_FALSE(anonymous.ok());
  EXPECT_EQ(anonymous.status().code(), absl::StatusCode::kUnauthenticated);

  EsClientOptions o;
  o.urls = {es.url()};
  o.api_key = "bm90LXRoZS1rZXk=";
  EXPECT_EQ(Client(o)->Info().status().code(), absl::StatusCode::kUnauthenticated);
  o.api_key = "VnVhQ2ZHY0JDZGJrUW0tZTVhT3g6dWkybHAyYXhUTm1zeWFrdzl0dk5udw==";
  auto client = Client(o);
  EXPECT_TRUE(client->Info().ok());
  EXPECT_TRUE(client->Refresh("*").ok());
}

class EsTlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    cert_ = dir_.Sub("cert.pem");
    key_ = dir_.Sub("key.pem");
    auto r = RunCommand({"openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout",
                         key_, "-out", cert_, "-days", "2", "-subj", "/CN=rtdw-test", "-addext",
                         "subjectAltName=IP:127.0.0.1,DNS:localhost"});
    if (r.exit_code != 0) GTEST_SKIP() << "openssl cannot make a certificate: " << r.err;
    ASSERT_TRUE(es_.Start({"--tls-cert", cert_, "--tls-key", key_}).ok());
    url_ = absl::StrCat("https://127.0.0.1:", es_.port());
  }

  TempDir dir_;
  EsLite es_;
  std::string cert_, key_, url_;
};

TEST_F(EsTlsTest, VerificationIsOnByDefault) {
  EsClientOptions o;
  o.urls = {url_};
  ASSERT_TRUE(o.verify_tls);  // the default
  auto info = Client(o)->Info();
  ASSERT_FALSE(info.ok()) << "a self-signed certificate was accepted";
  EXPECT_EQ(info.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_TRUE(absl::StrContains(absl::AsciiStrToLower(info.status().message()), "certificate"))
      << info.status();
}

TEST_F(EsTlsTest, TheConfiguredCaIsTrusted) {
  EsClientOptions o;
  o.urls = {url_};
  o.ca_file = cert_;
  auto client = Client(o);
  auto info = client->Info();
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->version, "8.11.0");
  auto bulk = client->Bulk(std::vector<BulkAction>{{BulkOp::kIndex, "tls-test", "1", "{}"}});
  ASSERT_TRUE(bulk.ok()) << bulk.status();
  EXPECT_EQ(bulk->delivered, 1u);
  // The CA vouches for 127.0.0.1 and localhost, not for another name of the same server.
  o.urls = {absl::StrCat("https://127.0.0.2:", es_.port())};
  EXPECT_FALSE(Client(o)->Info().ok());
}

TEST_F(EsTlsTest, VerificationCanBeTurnedOff) {
  EsClientOptions o;
  o.urls = {url_};
  o.verify_tls = false;
  EXPECT_TRUE(Client(o)->Info().ok());
}

TEST(EsLimitsTest, AnAnswerOverMaxResponseBytesIsRefusedAndCounted) {
  EsLite es;
  ASSERT_TRUE(es.Start().ok());
  {
    auto writer = Client(es.url());
    std::vector<BulkAction> docs;
    for (int i = 0; i < 50; ++i) {
      docs.push_back({BulkOp::kIndex, "limits", absl::StrCat(i),
                      absl::StrCat("{\"text\":\"", std::string(100, 'a' + i % 26), "\"}")});
    }
    ASSERT_TRUE(writer->Bulk(docs).ok());
    ASSERT_TRUE(writer->Refresh("limits").ok());
  }
  EsClientOptions o;
  o.urls = {es.url()};
  o.max_response_bytes = 2000;
  int hook_calls = 0;  // what rtdwd counts in rtdw_es_responses_too_large_total
  o.on_response_too_large = [&] { ++hook_calls; };
  auto client = Client(o);
  // A small answer passes.
  auto count = client->Count("limits");
  ASSERT_TRUE(count.ok()) << count.status();
  EXPECT_EQ(*count, 50u);
  // 50 documents of 100+ bytes do not fit in 2000 bytes.
  auto search = client->Search("limits", R"({"size":50})");
  ASSERT_FALSE(search.ok());
  EXPECT_EQ(search.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_TRUE(absl::StrContains(search.status().message(), "max_response_bytes (2000 bytes)"))
      << search.status();
  EXPECT_EQ(client->stats().responses_too_large, 1u);
  EXPECT_EQ(hook_calls, 1);
  // A bulk answer too: 200 items' answers are far over 2000 bytes.
  std::vector<BulkAction> more;
  for (int i = 0; i < 200; ++i) more.push_back({BulkOp::kIndex, "limits2", absl::StrCat(i), "{}"});
  auto bulk = client->Bulk(more);
  ASSERT_FALSE(bulk.ok());
  EXPECT_EQ(bulk.status().code(), absl::StatusCode::kResourceExhausted) << bulk.status();
  EXPECT_EQ(client->stats().responses_too_large, 2u);
  EXPECT_EQ(hook_calls, 2);
}

}  // namespace
}  // namespace rtdw
