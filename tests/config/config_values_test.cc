// The value parsers behind the config loader (core/config/config_values.h).

#include "core/config/config_values.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace rtdw::config_internal {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;

TEST(ConfigValuesTest, HostPort) {
  HostPort hp;
  EXPECT_THAT(ParseHostPort("kafka-1.example.com:9092", false, &hp), IsEmpty());
  EXPECT_EQ(hp, (HostPort{"kafka-1.example.com", 9092}));
  EXPECT_THAT(ParseHostPort("[::1]:9464", false, &hp), IsEmpty());
  EXPECT_EQ(hp, (HostPort{"::1", 9464}));
  EXPECT_THAT(ParseHostPort("0.0.0.0:0", true, &hp), IsEmpty());
  EXPECT_EQ(hp.port, 0);
  EXPECT_EQ(ParseHostPort("h:0", false, &hp),
            "bad port in \"h:0\" (expected host:port with port 1-65535)");
  EXPECT_EQ(ParseHostPort("h:65536", false, &hp),
            "bad port in \"h:65536\" (expected host:port with port 1-65535)");
  EXPECT_EQ(ParseHostPort(":9092", false, &hp),
            "bad host in \":9092\" (expected host:port with port 1-65535)");
  EXPECT_THAT(ParseHostPort("::1:9092", false, &hp), HasSubstr("IPv6 as [addr]:port"));
  EXPECT_THAT(ParseHostPort("bad host:1", false, &hp), HasSubstr("bad host"));
}

TEST(ConfigValuesTest, BrokerList) {
  std::vector<HostPort> list;
  std::string norm;
  EXPECT_THAT(ParseBrokerList("a:1, b:2", &list, &norm), IsEmpty());
  EXPECT_EQ(norm, "a:1,b:2");
  EXPECT_THAT(list, ElementsAre(HostPort{"a", 1}, HostPort{"b", 2}));
  EXPECT_THAT(ParseBrokerList("a:1,,b:2", &list, &norm), HasSubstr("empty item"));
  EXPECT_THAT(ParseBrokerList("  ", &list, &norm), HasSubstr("empty broker list"));
}

TEST(ConfigValuesTest, RedisUrl) {
  RedisUrl u;
  EXPECT_THAT(ParseRedisUrl("redis://localhost", &u), IsEmpty());
  EXPECT_EQ(u.host, "localhost");
  EXPECT_EQ(u.port, 6379);
  EXPECT_EQ(u.db, 0);
  EXPECT_FALSE(u.password.has_value());
  EXPECT_THAT(ParseRedisUrl("redis://app:p%40ss%3Aw@[::1]:7000/15", &u), IsEmpty());
  EXPECT_EQ(u.username, "app");
  EXPECT_EQ(u.password, "p@ss:w");
  EXPECT_EQ(u.host, "::1");
  EXPECT_EQ(u.port, 7000);
  EXPECT_EQ(u.db, 15);
  EXPECT_THAT(ParseRedisUrl("redis://:pw@h:1/0", &u), IsEmpty());
  EXPECT_FALSE(u.username.has_value());
  EXPECT_EQ(u.password, "pw");
  EXPECT_THAT(ParseRedisUrl("REDISS://h", &u), HasSubstr("hiredis 0.14 has no TLS"));
  EXPECT_THAT(ParseRedisUrl("unix:///tmp/r.sock", &u), HasSubstr("scheme \"unix://\""));
  EXPECT_THAT(ParseRedisUrl("redis://secret@h", &u),
              AllOf(HasSubstr("credentials without ':'"), Not(HasSubstr("secret"))));
  EXPECT_THAT(ParseRedisUrl("redis://:pw%zz@h", &u),
              AllOf(HasSubstr("bad %-escape"), Not(HasSubstr("pw"))));
  EXPECT_THAT(ParseRedisUrl("redis://h?db=1", &u), HasSubstr("query or fragment"));
}

TEST(ConfigValuesTest, RedactUrl) {
  EXPECT_EQ(RedactUrl("redis://:pw@h:1/0"), "redis://:***@h:1/0");
  EXPECT_EQ(RedactUrl("redis://user:pw@h"), "redis://user:***@h");
  EXPECT_EQ(RedactUrl("http://token@h/x@y"), "http://***@h/x@y");
  EXPECT_EQ(RedactUrl("redis://h:1/0"), "redis://h:1/0");
  EXPECT_EQ(RedactUrl("not a url"), "not a url");
}

TEST(ConfigValuesTest, HttpUrl) {
  std::string n;
  EXPECT_THAT(ParseHttpUrl("HTTPS://es.example.com/", &n), IsEmpty());
  EXPECT_EQ(n, "https://es.example.com");
  EXPECT_THAT(ParseHttpUrl("http://es:9200/proxy/es//", &n), IsEmpty());
  EXPECT_EQ(n, "http://es:9200/proxy/es");
  EXPECT_THAT(ParseHttpUrl("http://u:pw@es:9200", &n),
              AllOf(HasSubstr("credentials in the URL"), Not(HasSubstr("pw@"))));
  EXPECT_THAT(ParseHttpUrl("http://", &n), HasSubstr("bad host"));
  EXPECT_THAT(ParseHttpUrl("http://es:9200?x=1", &n), HasSubstr("query or fragment"));
}

TEST(ConfigValuesTest, NamesAndSuggestions) {
  EXPECT_THAT(CheckTopicName("DWD_PAGE_LOG_TOPIC"), IsEmpty());
  EXPECT_THAT(CheckTopicName(".."), Not(IsEmpty()));
  EXPECT_THAT(CheckTopicName(std::string(250, 'a')), HasSubstr("longer than 249"));
  EXPECT_THAT(CheckIndexPrefix("gmall_dau_info_"), IsEmpty());
  EXPECT_THAT(CheckIndexPrefix("_x"), Not(IsEmpty()));
  EXPECT_THAT(CheckIndexPrefix("a*b"), Not(IsEmpty()));
  EXPECT_THAT(CheckTableName("order_info"), IsEmpty());
  EXPECT_THAT(CheckTableName("a;b"), Not(IsEmpty()));

  EXPECT_EQ(EditDistance("timout", "timeout"), 1);
  EXPECT_EQ(EditDistance("Brokers", "brokers"), 0);
  EXPECT_EQ(EditDistance("kafak", "kafka"), 1);
  EXPECT_EQ(NearestName("timezone", {"time_zone", "timeout"}), "time_zone");
  EXPECT_EQ(NearestName("log_split", {"log-split", "db-split"}), "log-split");
  EXPECT_EQ(NearestName("xyz", {"url", "user"}), std::nullopt);
  EXPECT_EQ(NearestName("ab", {"xy"}), std::nullopt);
}

TEST(ConfigValuesTest, SplitAndQuote) {
  EXPECT_THAT(SplitCommaList(" a, b ,,c"), ElementsAre("a", "b", "", "c"));
  EXPECT_EQ(QuoteToml("a\"b\\c\n\x01"), "\"a\\\"b\\\\c\\n\\u0001\"");
}

}  // namespace
}  // namespace rtdw::config_internal
