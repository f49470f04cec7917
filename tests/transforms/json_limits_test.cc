#include "core/json_limits.h"

#include <pthread.h>

#include <string>
#include <vector>

#include "core/json_writer.h"
#include "fuzz/fuzz_check.h"
#include "gtest/gtest.h"

namespace rtdw {
namespace {

// The text of a JsonValue written with WriteJson.
std::string Written(const JsonValue& v) {
  rapidjson::StringBuffer sb;
  AppendJsonValue(&sb, v);
  return std::string(sb.GetString(), sb.GetSize());
}

std::vector<const JsonValue*> ElementsOf(const JsonValue& v) {
  std::vector<const JsonValue*> out;
  for (const JsonValue& e : v.Elements()) out.push_back(&e);
  return out;
}

TEST(JsonLimitsTest, ParsesAnObjectInPlace) {
  JsonParser p(JsonLimits{0, 64});
  ASSERT_EQ(p.Parse(R"({"a":"x","b":[1,2.5,{"c":null}],"d":8197.00,"e":{},"f":[],"g":true})"),
            JsonStatus::kOk);
  const JsonValue& r = p.root();
  ASSERT_TRUE(r.IsObject());
  EXPECT_EQ(r.Size(), 6u);
  EXPECT_EQ(r.Find("a")->text(), "x");
  ASSERT_EQ(r.Find("b")->Size(), 3u);
  auto b = ElementsOf(*r.Find("b"));
  ASSERT_EQ(b.size(), 3u);
  EXPECT_EQ(b[0]->text(), "1");
  EXPECT_EQ(b[1]->text(), "2.5");
  ASSERT_TRUE(b[2]->IsObject());
  EXPECT_TRUE(b[2]->Find("c")->IsNull());
  EXPECT_EQ(r.Find("d")->text(), "8197.00");
  EXPECT_TRUE(r.Find("e")->IsObject());
  EXPECT_EQ(r.Find("e")->Size(), 0u);
  EXPECT_TRUE(r.Find("f")->IsArray());
  EXPECT_TRUE(r.Find("g")->GetBool());
  EXPECT_EQ(r.Find("zz"), nullptr);
  std::vector<std::string> names;
  for (JsonValue::Member m : r.Members()) names.emplace_back(m.name.text());
  EXPECT_EQ(names, (std::vector<std::string>{"a", "b", "d", "e", "f", "g"}));
  // Reuse: the next parse replaces the document.
  ASSERT_EQ(p.Parse("[true]"), JsonStatus::kOk);
  EXPECT_TRUE(p.root().IsArray());
  EXPECT_TRUE(ElementsOf(p.root())[0]->GetBool());
}

// Numbers are kept as their source text: a document written back has every digit and the scale
// of each decimal, where a double would round or drop them.
TEST(JsonLimitsTest, NumbersKeepTheirSourceText) {
  const std::string numbers[] = {"10130.00",
                                 "4500000001.512456777",
                                 "99999999999999.99",
                                 "0.10",
                                 "-0.50",
                                 "-0",
                                 "1.5E+3",
                                 "1e-400",
                                 "2.0e10",
                                 "9007199254740993",
                                 "18446744073709551615",
                                 "18446744073709551616",
                                 "-9223372036854775808",
                                 "123456789012345678901234567890.000000000000000000001"};
  JsonParser p(JsonLimits{});
  std::string arr = "[";
  for (const std::string& n : numbers) arr += (arr.size() > 1 ? "," : "") + n;
  arr += "]";
  ASSERT_EQ(p.Parse(arr), JsonStatus::kOk) << p.detail();
  auto e = ElementsOf(p.root());
  ASSERT_EQ(e.size(), std::size(numbers));
  for (size_t i = 0; i < e.size(); ++i) {
    EXPECT_TRUE(e[i]->IsNumber());
    EXPECT_FALSE(e[i]->IsString());
    EXPECT_EQ(e[i]->text(), numbers[i]);
  }
  EXPECT_EQ(Written(p.root()), arr);
  ASSERT_EQ(p.Parse(R"({"total_amount":10130.00,"id":18446744073709551615})"), JsonStatus::kOk);
  EXPECT_EQ(Written(p.root()), R"({"total_amount":10130.00,"id":18446744073709551615})");
}

// Integers are read exactly, and only from integer literals.
TEST(JsonLimitsTest, ExactIntegers) {
  JsonParser p(JsonLimits{});
  ASSERT_EQ(p.Parse(R"([9007199254740993, 18446744073709551615, -9223372036854775808, -0, 0,
                         18446744073709551616, -9223372036854775809, 1E3, 1000.0, 1.5E+3, "7",
                         9223372036854775807, 9223372036854775808])"),
            JsonStatus::kOk);
  auto e = ElementsOf(p.root());
  ASSERT_EQ(e.size(), 13u);
  EXPECT_TRUE(e[0]->IsInt64());
  EXPECT_EQ(e[0]->GetInt64(), 9007199254740993);
  EXPECT_FALSE(e[1]->IsInt64());
  EXPECT_TRUE(e[1]->IsUint64());
  EXPECT_EQ(e[1]->GetUint64(), 18446744073709551615ull);
  EXPECT_TRUE(e[2]->IsInt64());
  EXPECT_EQ(e[2]->GetInt64(), INT64_MIN);
  EXPECT_FALSE(e[2]->IsUint64());
  EXPECT_TRUE(e[3]->IsInt64());
  EXPECT_EQ(e[3]->GetInt64(), 0);
  EXPECT_TRUE(e[4]->IsUint64());
  for (size_t i : {5, 6, 7, 8, 9, 10}) {
    EXPECT_FALSE(e[i]->IsInt64()) << i;
    EXPECT_FALSE(e[i]->IsUint64()) << i;
    EXPECT_EQ(e[i]->GetInt64(), 0) << i;
  }
  EXPECT_TRUE(e[11]->IsInt64());
  EXPECT_FALSE(e[12]->IsInt64());
  EXPECT_TRUE(e[12]->IsUint64());
}

// Duplicate keys: the last one wins in lookups and in what is written; nothing is rejected.
TEST(JsonLimitsTest, DuplicateKeysLastWins) {
  JsonParser p(JsonLimits{});
  ASSERT_EQ(
      p.Parse(
          R"({"vc":"v2.1.132","mid":"m","vc":"v2.1.134","n":{"a":1,"a":{"x":[1,{"b":2,"b":3}]}}})"),
      JsonStatus::kOk);
  const JsonValue& r = p.root();
  EXPECT_EQ(r.Size(), 4u);  // as written
  EXPECT_EQ(r.Find("vc")->text(), "v2.1.134");
  const std::string_view names[] = {"vc", "mid", "n"};
  const JsonValue* found[3];
  FindMembers(r, names, 3, found);
  EXPECT_EQ(found[0]->text(), "v2.1.134");
  EXPECT_EQ(found[1]->text(), "m");
  EXPECT_EQ(Written(r), R"({"mid":"m","vc":"v2.1.134","n":{"a":{"x":[1,{"b":3}]}}})");
  // Many members (the hashed path) and strings that need escapes.
  std::string big = "{";
  std::string want = "{";
  for (int i = 0; i < 100; ++i) {
    big += "\"k" + std::to_string(i) + "\":" + std::to_string(i) + ",";
    if (i % 10 != 3) want += "\"k" + std::to_string(i) + "\":" + std::to_string(i) + ",";
  }
  for (int i = 3; i < 100; i += 10) {
    big += "\"k" + std::to_string(i) + "\":\"last\\n\\u00e9\",";
    want += "\"k" + std::to_string(i) + "\":\"last\\n\u00e9\",";
  }
  big.back() = '}';
  want.back() = '}';
  ASSERT_EQ(p.Parse(big), JsonStatus::kOk);
  EXPECT_EQ(p.root().Size(), 110u);
  EXPECT_EQ(p.root().Find("k13")->text(), "last\n\u00e9");
  EXPECT_EQ(Written(p.root()), want);
}

TEST(JsonLimitsTest, NumbersBeyondTheDoubleRangeAreNotJson) {
  JsonParser p(JsonLimits{});
  for (const char* bad : {"[9e308]", "[1e400]", "{\"a\":-1E+309}"}) {
    EXPECT_EQ(p.Parse(bad), JsonStatus::kNotJson) << bad;
    // RapidJSON's reader refuses a huge exponent itself; the records parser the rest.
    EXPECT_TRUE(p.detail().find("beyond the double range") != std::string::npos ||
                p.detail().find("Number too big") != std::string::npos)
        << p.detail();
  }
  std::string long_digits = "[1" + std::string(400, '0') + "]";
  EXPECT_EQ(p.Parse(long_digits), JsonStatus::kNotJson);
  EXPECT_EQ(p.Parse("[9e308]"), JsonStatus::kNotJson);
  EXPECT_EQ(p.detail(), "number beyond the double range at offset 1");
  EXPECT_EQ(p.Parse("[1" + std::string(300, '0') + ".5e9]"), JsonStatus::kNotJson);
  EXPECT_EQ(p.Parse("[1.7976931348623157e308, 0e300, 1e-400]"), JsonStatus::kOk);
  EXPECT_EQ(p.Parse("[0." + std::string(400, '0') + "1]"), JsonStatus::kOk);
}

TEST(JsonLimitsTest, TooBigBeforeParsing) {
  JsonParser p(JsonLimits{10, 64});
  EXPECT_EQ(p.Parse(R"({"a":"0123456789"})"), JsonStatus::kTooBig);
  EXPECT_NE(p.detail().find("limit of 10"), std::string::npos);
  EXPECT_EQ(p.Parse(R"({"a":1})"), JsonStatus::kOk);
  EXPECT_TRUE(p.root().IsObject());
  EXPECT_EQ(p.Parse("{"), JsonStatus::kNotJson);
  EXPECT_TRUE(p.root().IsNull());  // after a failure
}

TEST(JsonLimitsTest, DepthLimit) {
  JsonParser p(JsonLimits{0, 3});
  EXPECT_EQ(p.Parse(R"({"a":[{"b":1}]})"), JsonStatus::kOk);
  EXPECT_EQ(p.Parse(R"({"a":[{"b":[1]}]})"), JsonStatus::kTooDeep);
  EXPECT_EQ(p.Parse(R"([[[]]])"), JsonStatus::kOk);
  EXPECT_EQ(p.Parse(R"([[[[]]]])"), JsonStatus::kTooDeep);
}

TEST(JsonLimitsTest, TwoHundredThousandDeepDoesNotCrash) {
  std::string deep(200000, '[');
  deep.append(200000, ']');
  JsonParser p(JsonLimits{0, 64});
  EXPECT_EQ(p.Parse(deep), JsonStatus::kTooDeep);
  // Unterminated, too.
  EXPECT_EQ(p.Parse(std::string(200000, '[')), JsonStatus::kTooDeep);
  // Even with a huge configured depth: clamped.
  JsonParser q(JsonLimits{0, 1 << 30});
  EXPECT_EQ(q.Parse(deep), JsonStatus::kTooDeep);
  rapidjson::Document doc;
  EXPECT_EQ(ParseJsonSafely(deep, JsonLimits{0, 64}, &doc), JsonStatus::kTooDeep);
  // Objects as well.
  std::string deep_obj;
  for (int i = 0; i < 200000; ++i) deep_obj += "{\"a\":";
  EXPECT_EQ(p.Parse(deep_obj), JsonStatus::kTooDeep);
}

// JsonParser's recursive reader (on valid UTF-8) is bounded by the depth limit, not by the input:
// the deepest parse it allows — kMaxSupportedJsonDepth levels of objects and arrays, then one more
// refused — runs on a thread with a 256 KB stack (a thread's default is 8 MB). Were the recursion
// set by the input, the 200,000-deep texts would overflow it and kill the test.
TEST(JsonLimitsTest, DeepestAllowedParseFitsASmallStack) {
  struct Run {
    std::vector<JsonStatus> got;
    static void* Main(void* arg) {
      auto* run = static_cast<Run*>(arg);
      JsonParser p(JsonLimits{0, kMaxSupportedJsonDepth});
      const int n = kMaxSupportedJsonDepth;
      std::string arrays = std::string(n, '[') + std::string(n, ']');
      std::string objects;  // n levels: n/2 objects each holding an array
      for (int i = 0; i < n / 2; ++i) objects += "{\"a\":[";
      objects += "1";
      for (int i = 0; i < n / 2; ++i) objects += "]}";
      run->got.push_back(p.Parse(arrays));
      run->got.push_back(p.Parse(objects));
      run->got.push_back(p.Parse("[" + arrays + "]"));
      run->got.push_back(p.Parse(std::string(200000, '[') + std::string(200000, ']')));
      std::string deep_obj;
      for (int i = 0; i < 200000; ++i) deep_obj += "{\"a\":";
      run->got.push_back(p.Parse(deep_obj));
      return nullptr;
    }
  } run;
  pthread_attr_t attr;
  ASSERT_EQ(pthread_attr_init(&attr), 0);
  ASSERT_EQ(pthread_attr_setstacksize(&attr, 256 * 1024), 0);
  pthread_t thread;
  ASSERT_EQ(pthread_create(&thread, &attr, &Run::Main, &run), 0);
  ASSERT_EQ(pthread_join(thread, nullptr), 0);
  pthread_attr_destroy(&attr);
  EXPECT_EQ(run.got,
            (std::vector<JsonStatus>{JsonStatus::kOk, JsonStatus::kOk, JsonStatus::kTooDeep,
                                     JsonStatus::kTooDeep, JsonStatus::kTooDeep}));
}

TEST(JsonLimitsTest, NotJson) {
  JsonParser p(JsonLimits{});
  for (const char* bad : {"", "{", "{\"a\":}", "nope", "{} {}", "{\"a\":1,}", "[1 2]"}) {
    EXPECT_EQ(p.Parse(bad), JsonStatus::kNotJson) << bad;
    EXPECT_FALSE(p.detail().empty());
  }
  // An embedded NUL after a valid value is not JSON either.
  EXPECT_EQ(p.Parse(std::string("{}\0{}", 5)), JsonStatus::kNotJson);
  EXPECT_EQ(p.Parse(std::string("{\"a\":\"x\0y\"}", 11)), JsonStatus::kNotJson);
  rapidjson::Document doc;
  EXPECT_EQ(ParseJsonSafely(std::string("{}\0{}", 5), JsonLimits{}, &doc), JsonStatus::kNotJson);
}

TEST(JsonLimitsTest, BadUtf8) {
  JsonParser p(JsonLimits{});
  EXPECT_EQ(p.Parse("{\"a\":\"\xff\"}"), JsonStatus::kBadUtf8);
  EXPECT_EQ(p.Parse("{\"\xc3\":1}"), JsonStatus::kBadUtf8);
  EXPECT_EQ(p.Parse("\xfe{}"), JsonStatus::kBadUtf8);
  // Overlong '/' and an encoded surrogate.
  EXPECT_EQ(p.Parse("{\"a\":\"\xc0\xaf\"}"), JsonStatus::kBadUtf8);
  EXPECT_EQ(p.Parse("{\"a\":\"\xed\xa0\x80\"}"), JsonStatus::kBadUtf8);
  EXPECT_EQ(p.Parse("{\"a\":\"\xe4\xb8\xad\xe6\x96\x87\"}"), JsonStatus::kOk);
  // A raw control character is not JSON, but it is valid UTF-8.
  EXPECT_EQ(p.Parse("{\"a\":\"\t\"}"), JsonStatus::kNotJson);
}

// JsonParser parses a text that is valid UTF-8 as a whole without RapidJSON's per-byte encoding
// validation (a speed-up), and any other text with it. Both must answer exactly what the always
// validating protocol parse (ParseJsonSafely) answers: status, and every string's bytes. The
// cases put the bad byte first, last, in a key, after a depth overflow and next to a control
// character, so that a parse that skipped validation on a bad text, or took the fast path for one,
// would answer differently here.
TEST(JsonLimitsTest, FastAndValidatingPathsAgreeWithTheSafeParse) {
  const std::string deep = std::string(70, '[') + "\"\xff\"" + std::string(70, ']');
  const std::vector<std::string> texts = {
      "{\"a\":\"plain ascii\",\"n\":12.50}",
      "{\"a\":\"\xe4\xb8\xad\xe6\x96\x87\",\"\xc3\xa9\":\"\xf0\x9f\x98\x80\"}",
      "{\"a\":\"\\u00e9\\u4e2d\\ud83d\\ude00 \\\" \\\\ \\n\"}",
      "{\"a\":\"" + std::string(100, 'x') + "\xe4\xb8\xad" + std::string(100, 'y') + "\"}",
      "{\"a\":\"\xff\"}",
      "{\"a\":\"ok\",\"b\":\"" + std::string(40, 'z') + "\xc3\"}",
      "{\"\xc3\":1}",
      "\xfe{}",
      deep,
      "{\"a\":\"\x01\"}",
      "{\"a\":\"\x01\xff\"}",
      "{\"a\":\"\xe4\xb8\xad\",}",
  };
  JsonParser p(JsonLimits{});
  for (const std::string& text : texts) {
    rapidjson::Document doc;
    std::string detail;
    const JsonStatus safe = ParseJsonSafely(text, JsonLimits{}, &doc, &detail);
    ASSERT_EQ(p.Parse(text), safe) << text << ": " << p.detail() << " / " << detail;
    if (safe != JsonStatus::kOk || !doc.IsObject()) continue;
    for (auto& m : doc.GetObject()) {
      const std::string name(m.name.GetString(), m.name.GetStringLength());
      const JsonValue* v = p.root().Find(name);
      ASSERT_NE(v, nullptr) << name;
      if (m.value.IsString()) {
        EXPECT_EQ(v->text(), std::string_view(m.value.GetString(), m.value.GetStringLength()));
      }
    }
  }
}

// JsonParser::Parse runs rtdw's scanner and gives up to RapidJSON's reader on what it does not
// accept: the status, the detail and the tree are the reader's on every kind of text.
TEST(JsonLimitsTest, ScannerAgreesWithTheReader) {
  const std::string cases[] = {
      R"({"a":"x","b":[1,2.5,{"c":null}],"d":8197.00,"e":{},"f":[],"g":true,"h":false})",
      " \t\r\n{ \"a\" : [ 1 , -0 , 0.10 , -12.5 ] , \"b\" : { } } \n",
      R"("just a string")",
      "17",
      "-0",
      "null",
      "true",
      "false",
      "[]",
      "{}",
      "[[]]",
      R"(["\"\\\/\b\f\n\r\t", "\u0041\u00e9\u4e2d\ud83d\ude00", "\u0000x", "a\u2028b"])",
      R"({"k\u0000ey":1,"k\u0000ey":2})",
      // Numbers the scanner leaves to the reader: exponents, the long and the out-of-range.
      "[1e3]",
      "[1E+3,2e-3]",
      "[1e400]",
      "[0e400]",
      "[-1e-400]",
      "[9e308]",
      "[1.5E307]",
      "[" + std::string(299, '1') + "]",
      "[" + std::string(310, '1') + "]",
      "[0." + std::string(400, '1') + "]",
      // Malformed: every place a token can be missing, extra or wrong.
      "",
      " ",
      "{",
      "}",
      "[",
      "]",
      "[1,]",
      "{\"a\":1,}",
      "{\"a\"}",
      "{\"a\":}",
      "{\"a\" 1}",
      "{a:1}",
      "[01]",
      "[1.]",
      "[.5]",
      "[-]",
      "[+1]",
      "[1 2]",
      "{\"a\":1 \"b\":2}",
      "nul",
      "tru",
      "fals",
      "nulll",
      "[true false]",
      "\"abc",
      "\"a\\x\"",
      "\"a\\u12\"",
      "\"a\\u12g4\"",
      "\"\\",
      "{} {}",
      "[] x",
      std::string("[1]\0", 4),
      std::string("[\"a\0b\"]", 7),
      "[\"a\tb\"]",
      "[\"a\x01\"]",
      // Surrogates: a pair, a lone high, a lone low, a high followed by a high.
      R"(["\ud83d\ude00"])",
      R"(["\ud83d"])",
      R"(["\ud83dx"])",
      R"(["\ude00"])",
      R"(["\ud83d\ud83d"])",
      R"(["\ud83d\u0041"])",
      // Not UTF-8 (the validating reader only).
      "[\"\xff\"]",
      "[\"\xc3\"]",
  };
  for (const std::string& c : cases) {
    EXPECT_TRUE(fuzz::ScannerAgreesWithReader(c, 64)) << c;
  }
  // Nesting at and beyond the limit.
  for (int d : {63, 64, 65, 200}) {
    EXPECT_TRUE(fuzz::ScannerAgreesWithReader(std::string(d, '[') + std::string(d, ']'), 64)) << d;
    std::string o;
    for (int i = 0; i < d; ++i) o += "{\"a\":";
    o += "1" + std::string(d, '}');
    EXPECT_TRUE(fuzz::ScannerAgreesWithReader(o, 64)) << d;
  }
  // The scanner's own results, to be sure it is what ran: strings unescaped in place.
  JsonParser p(JsonLimits{0, 64});
  ASSERT_EQ(p.Parse(R"({"s":"a\"b\u00e9\ud83d\ude00c","n":-0.10})"), JsonStatus::kOk);
  EXPECT_EQ(p.root().Find("s")->text(),
            "a\"b\xc3\xa9\xf0\x9f\x98\x80"
            "c");
  EXPECT_EQ(p.root().Find("n")->text(), "-0.10");
  // Followed by a NUL byte in the parser's buffer, as the reader leaves a string in place.
  const JsonValue* str = p.root().Find("s");
  EXPECT_EQ(str->GetString()[str->GetStringLength()], '\0');
}

// A raw control character in a string is not JSON, wherever it lies in the text. (RapidJSON
// 1.1.0's SSE2 scan of in-place strings, as rtdw built it until 2026-12-07, let U+001A-U+001F
// through inside an aligned 16-byte block; rtdw no longer enables it, and JsonParser refuses them
// like the others, as its scanner does.)
TEST(JsonLimitsTest, RawControlCharactersInStringsAreNotJsonWhereverTheyAre) {
  JsonParser p(JsonLimits{0, 64});
  for (char c : {'\x01', '\x19', '\x1a', '\x1f'}) {
    for (int at = 0; at < 48; ++at) {
      std::string s(48, 'x');
      s[at] = c;
      const std::string text = "{\"s\":\"" + s + "\"}";
      EXPECT_EQ(p.Parse(text), JsonStatus::kNotJson) << int(c) << " at " << at;
      EXPECT_EQ(p.ParseWithReaderOnly(text), JsonStatus::kNotJson) << int(c) << " at " << at;
      rapidjson::Document doc;
      EXPECT_EQ(ParseJsonSafely(text, JsonLimits{0, 64}, &doc), JsonStatus::kNotJson);
    }
  }
}

TEST(JsonLimitsTest, UnpairedSurrogateEscapesAreBadUtf8) {
  // RapidJSON 1.1 refuses an unpaired high surrogate escape, but decodes an unpaired low one into
  // the bytes ED xx xx, which are not UTF-8: both are kBadUtf8, in either parse.
  JsonParser p(JsonLimits{});
  for (const char* bad :
       {R"({"mid":"a\udfdf"})", R"({"mid":"\uDC00"})", R"(["ok","\ude00x"])",
        R"({"a":"\ud800\u0041"})", R"({"a":"\ud83d\ude00\ude00"})", R"({"\udfff":1})"}) {
    EXPECT_EQ(p.Parse(bad), JsonStatus::kBadUtf8) << bad << ": " << p.detail();
    rapidjson::Document doc;
    std::string detail;
    EXPECT_EQ(ParseJsonSafely(bad, JsonLimits{}, &doc, &detail), JsonStatus::kBadUtf8) << bad;
  }
  ASSERT_EQ(p.Parse(R"({"mid":"a\udfdf"})"), JsonStatus::kBadUtf8);
  EXPECT_EQ(p.detail(), "unpaired UTF-16 surrogate escape \\udfdf at offset 9 (not a character)");
  // A pair is one character; an escaped backslash before "udfdf" is no escape at all.
  for (const char* good : {R"({"a":"\ud83d\ude00"})", R"({"a":"\\udfdf"})",
                           R"({"a":"x\\\\udc00","b":"\u00e9\u4e2d"})"}) {
    EXPECT_EQ(p.Parse(good), JsonStatus::kOk) << good << ": " << p.detail();
    EXPECT_TRUE(IsValidUtf8(good));
  }
  ASSERT_EQ(p.Parse(R"({"a":"\ud83d\ude00"})"), JsonStatus::kOk);
  std::string_view a = p.root().Find("a")->text();
  EXPECT_EQ(a, "\xf0\x9f\x98\x80");
  EXPECT_TRUE(IsValidUtf8(a));
}

TEST(JsonLimitsTest, Utf8Helpers) {
  EXPECT_TRUE(IsValidUtf8(""));
  EXPECT_TRUE(IsValidUtf8("plain ascii text that is longer than eight bytes"));
  EXPECT_TRUE(IsValidUtf8("\xe4\xb8\xad\xf0\x9f\x98\x80 ok"));
  EXPECT_FALSE(IsValidUtf8("abcdefgh\x80"));
  EXPECT_FALSE(IsValidUtf8("\xf4\x90\x80\x80"));  // above U+10FFFF
  EXPECT_FALSE(IsValidUtf8("\xe4\xb8"));          // cut
  EXPECT_EQ(Utf8PrefixLength("ab\xe4\xb8\xad", 4), 2u);
  EXPECT_EQ(Utf8PrefixLength("ab\xe4\xb8\xad", 5), 5u);
  EXPECT_EQ(Utf8PrefixLength("abc", 10), 3u);
}

TEST(JsonLimitsTest, StatusCodes) {
  EXPECT_EQ(JsonStatusCode(JsonStatus::kTooBig), "too_big");
  EXPECT_EQ(JsonStatusCode(JsonStatus::kTooDeep), "too_deep");
  EXPECT_EQ(JsonStatusCode(JsonStatus::kBadUtf8), "bad_utf8");
  EXPECT_EQ(JsonStatusCode(JsonStatus::kNotJson), "not_json");
}

TEST(JsonLimitsTest, LargeRecordBeyondThePool) {
  std::string big = "{\"a\":[";
  for (int i = 0; i < 50000; ++i) big += (i ? ",\"item-" : "\"item-") + std::to_string(i) + "\"";
  big += "]}";
  JsonParser p(JsonLimits{0, 64});
  ASSERT_EQ(p.Parse(big), JsonStatus::kOk);
  EXPECT_EQ(p.root().Find("a")->Size(), 50000u);
  EXPECT_EQ(ElementsOf(*p.root().Find("a"))[49999]->text(), "item-49999");
  ASSERT_EQ(p.Parse(R"({"b":2})"), JsonStatus::kOk);
  EXPECT_EQ(p.root().Find("b")->GetInt64(), 2);
}

}  // namespace
}  // namespace rtdw
