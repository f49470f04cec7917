// core/json_writer.h against RapidJSON's Writer (fuzz/rapidjson_writer_oracle.h: rtdw's output
// path before the writer): the same bytes on hand-made values (every escape, the control
// characters, U+2028/2029, non-ASCII UTF-8, empty strings and containers, duplicate keys, the
// deepest nesting a parser allows, number texts) and on thousands of random and damaged records.
#include "core/json_writer.h"

#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "core/journal_entry.h"
#include "core/json_limits.h"
#include "fuzz/fuzz_check.h"
#include "fuzz/rapidjson_writer_oracle.h"
#include "gtest/gtest.h"
#include "rapidjson/stringbuffer.h"
#include "rapidjson/writer.h"

namespace rtdw {
namespace {

using fuzz::RapidJsonWritten;

std::string Appended(const JsonValue& v) {
  rapidjson::StringBuffer sb;
  AppendJsonValue(&sb, v);
  return std::string(sb.GetString(), sb.GetSize());
}

// `v` written as a member value and an array element through JsonWriter's streaming calls.
std::string StreamedInContext(const JsonValue& v) {
  rapidjson::StringBuffer sb;
  JsonWriter w(sb);
  w.StartObject();
  w.Key("k");
  WriteJson(w, v);
  w.Key("a");
  w.StartArray();
  WriteJson(w, v);
  WriteJson(w, v);
  w.EndArray();
  w.EndObject();
  return std::string(sb.GetString(), sb.GetSize());
}

std::string RapidJsonStreamedInContext(const JsonValue& v) {
  fuzz::OracleStream sb;
  fuzz::OracleWriter w(sb);
  w.StartObject();
  w.Key("k");
  fuzz::RapidJsonWrite(w, v);
  w.Key("a");
  w.StartArray();
  fuzz::RapidJsonWrite(w, v);
  fuzz::RapidJsonWrite(w, v);
  w.EndArray();
  w.EndObject();
  return sb.s;
}

// Parses `text` (which must be accepted) and checks both writers write the same bytes; returns
// the new writer's text.
std::string CheckSame(std::string_view text) {
  JsonParser p(JsonLimits{0, kMaxSupportedJsonDepth});
  JsonStatus st = p.Parse(text);
  EXPECT_EQ(st, JsonStatus::kOk) << text;
  if (st != JsonStatus::kOk) return "";
  const std::string got = Appended(p.root());
  EXPECT_EQ(got, RapidJsonWritten(p.root())) << text;
  EXPECT_EQ(StreamedInContext(p.root()), RapidJsonStreamedInContext(p.root())) << text;
  return got;
}

TEST(JsonWriterTest, EveryEscapeAsRapidJsonWritesIt) {
  EXPECT_EQ(CheckSame(R"(["\"", "\\", "\/", "\b", "\f", "\n", "\r", "\t", "/"])"),
            R"(["\"","\\","/","\b","\f","\n","\r","\t","/"])");
  // Every control character, DEL (not escaped) and the escapes' neighbours.
  std::string all = "\"";
  for (int c = 0; c < 0x20; ++c) {
    char buf[8];
    std::snprintf(buf, sizeof(buf), "\\u%04x", c);
    all += buf;
  }
  all += "\\u007f !#[]^_`{}~\"";
  EXPECT_EQ(CheckSame(all),
            "\"\\u0000\\u0001\\u0002\\u0003\\u0004\\u0005\\u0006\\u0007\\b\\t\\n\\u000B\\f\\r"
            "\\u000E\\u000F\\u0010\\u0011\\u0012\\u0013\\u0014\\u0015\\u0016\\u0017\\u0018"
            "\\u0019\\u001A\\u001B\\u001C\\u001D\\u001E\\u001F\x7f !#[]^_`{}~\"");
  // U+2028/2029 and other non-ASCII UTF-8 pass through as bytes, escaped or not in the source.
  EXPECT_EQ(CheckSame(R"(["\u2028\u2029", "é中😀", "\u00e9\u4e2d\ud83d\ude00"])"),
            "[\"\xe2\x80\xa8\xe2\x80\xa9\",\"é中😀\",\"é中😀\"]");
  // Escapes in names too.
  EXPECT_EQ(CheckSame(R"({"a\"b\u0001":"\\","":""})"), R"({"a\"b\u0001":"\\","":""})");
}

// The one difference to rtdw's output before the writer: RapidJSON 1.1.0's Writer<StringBuffer>
// with RAPIDJSON_SSE2 (as rtdw built it until 2026-12-07) left U+001A-U+001F unescaped inside a
// 16-byte-aligned block of a string (its mask is 0x19, writer.h) — text that is not JSON. The
// writer escapes them wherever they are, as RapidJSON's byte-by-byte path does; and rtdw no
// longer builds RapidJSON with SSE2 (cmake/Dependencies.cmake), so its Writer, which dead letters,
// the ES client and rtdw-es-lite still use, writes the same.
TEST(JsonWriterTest, ControlCharactersRapidJsonsSse2WriterLeftRaw) {
  alignas(64) char source[64];
  std::memset(source, 'x', sizeof(source));
  source[40] = '\x1f';  // in the third aligned 16-byte block
  source[44] = '\x1a';
  const std::string_view s(source, 48);
  rapidjson::StringBuffer old_sb;
  rapidjson::Writer<rapidjson::StringBuffer> old_writer(old_sb);
  old_writer.String(s.data(), static_cast<rapidjson::SizeType>(s.size()));
  const std::string old_text(old_sb.GetString(), old_sb.GetSize());
  rapidjson::StringBuffer sb;
  AppendJsonString(&sb, s);
  const std::string text(sb.GetString(), sb.GetSize());
  EXPECT_EQ(text, "\"" + std::string(40, 'x') + "\\u001Fxxx\\u001Axxx\"");
  EXPECT_EQ(old_text, text);  // RapidJSON's Writer as rtdw builds it: escaped too (no SSE2)
  fuzz::OracleStream oracle;
  fuzz::OracleWriter w(oracle);
  w.String(s.data(), static_cast<rapidjson::SizeType>(s.size()));
  EXPECT_EQ(text, oracle.s);
}

TEST(JsonWriterTest, EscapesAtEveryPlaceOfAnEightByteBlock) {
  for (int len = 0; len <= 40; ++len) {
    for (int at = 0; at < len; ++at) {
      for (const char* esc : {"\\\"", "\\\\", "\\n", "\\u0000", "\\u001f", "\xc3\xa9"}) {
        std::string s(len, 'x');
        std::string text = "\"" + s.substr(0, at) + esc + s.substr(at + 1) + "\"";
        CheckSame(text);
        // Two escapes: at `at` and at the end.
        CheckSame("\"" + s.substr(0, at) + esc + s.substr(at + 1) + "\\t\"");
      }
    }
    CheckSame("\"" + std::string(len, 'y') + "\"");
  }
}

TEST(JsonWriterTest, EmptyValuesAndScalars) {
  EXPECT_EQ(CheckSame(R"({})"), "{}");
  EXPECT_EQ(CheckSame(R"([])"), "[]");
  EXPECT_EQ(CheckSame(R"("")"), R"("")");
  EXPECT_EQ(CheckSame(R"( { "a" : [ { } , [ ] , "" , null , true , false ] , "b" : {"c":[]} } )"),
            R"({"a":[{},[],"",null,true,false],"b":{"c":[]}})");
  EXPECT_EQ(CheckSame("null"), "null");
  EXPECT_EQ(CheckSame("true"), "true");
  EXPECT_EQ(CheckSame("false"), "false");
}

TEST(JsonWriterTest, NumbersAsTheirSourceText) {
  EXPECT_EQ(CheckSame(R"([-0, 0.10, -0.0, 1E+3, 1e-7, -1.5E-300, 10130.00, 18446744073709551616,
                         -9223372036854775809, 4500000001.512456777, 1.5e308])"),
            "[-0,0.10,-0.0,1E+3,1e-7,-1.5E-300,10130.00,18446744073709551616,"
            "-9223372036854775809,4500000001.512456777,1.5e308]");
  // A text the parser refuses (beyond the double range) written as a raw value.
  rapidjson::StringBuffer a;
  fuzz::OracleStream b;
  JsonWriter w(a);
  fuzz::OracleWriter r(b);
  for (std::string_view t : {"1e400", "-0", "0.10"}) {
    w.StartArray();
    r.StartArray();
    w.RawValue(t.data(), t.size(), rapidjson::kNumberType);
    r.RawValue(t.data(), t.size(), rapidjson::kNumberType);
    w.EndArray();
    r.EndArray();
    a.Put(' ');
    b.Put(' ');
    w.Reset(a);
    r.Reset(b);
  }
  EXPECT_EQ(std::string(a.GetString(), a.GetSize()), "[1e400] [-0] [0.10] ");
  EXPECT_EQ(std::string(a.GetString(), a.GetSize()), b.s);
}

TEST(JsonWriterTest, DuplicateKeysTheLastWinsAtItsPlace) {
  EXPECT_EQ(CheckSame(R"({"a":1,"b":2,"a":3})"), R"({"b":2,"a":3})");
  EXPECT_EQ(CheckSame(R"({"a":1,"a":{"x":1,"x":[2]},"b":[{"c":1,"c":2}]})"),
            R"({"a":{"x":[2]},"b":[{"c":2}]})");
  EXPECT_EQ(CheckSame(R"({"a":1,"a":2,"a":3})"), R"({"a":3})");
  // Over 32 members (the hash-set path), duplicates among them.
  std::string big = "{";
  for (int i = 0; i < 80; ++i)
    big += "\"k" + std::to_string(i % 50) + "\":" + std::to_string(i) + ",";
  big += "\"k0\":\"last\"}";
  const std::string got = CheckSame(big);
  EXPECT_NE(got.find(R"("k0":"last")"), std::string::npos);
  EXPECT_EQ(got.find(R"("k0":0)"), std::string::npos);
  EXPECT_EQ(got.find(R"("k1":1,)"), std::string::npos);
  EXPECT_NE(got.find(R"("k1":51)"), std::string::npos);
}

TEST(JsonWriterTest, DeepestNestingTheParserAllows) {
  const int d = kMaxSupportedJsonDepth;
  std::string arrays = std::string(d, '[') + std::string(d, ']');
  EXPECT_EQ(CheckSame(arrays), arrays);
  std::string objects;  // d - 2 objects around one around an empty array
  for (int i = 0; i < d - 2; ++i) objects += R"({"a":1,"a":)";
  objects += "{\"\\n\":[]}" + std::string(d - 2, '}');
  std::string want;
  for (int i = 0; i < d - 2; ++i) want += R"({"a":)";
  want += "{\"\\n\":[]}" + std::string(d - 2, '}');
  EXPECT_EQ(CheckSame(objects), want);
}

TEST(JsonWriterTest, StreamingCallsAsRapidJsonWritesThem) {
  rapidjson::StringBuffer a;
  fuzz::OracleStream b;
  JsonWriter w(a);
  fuzz::OracleWriter r(b);
  auto both = [&](auto&& f) {
    f(w);
    f(r);
  };
  both([](auto& x) {
    x.StartObject();
    x.Key("s");
    x.String("a\"b\x01\xe2\x80\xa8", 7);
    x.Key("i");
    x.Int(-2147483647 - 1);
    x.Key("u");
    x.Uint(4294967295u);
    x.Key("l");
    x.Int64(INT64_MIN);
    x.Key("ul");
    x.Uint64(UINT64_MAX);
    x.Key("z");
    x.Int64(0);
    x.Key("n");
    x.Null();
    x.Key("t");
    x.Bool(true);
    x.Key("f");
    x.Bool(false);
    x.Key("raw");
    x.RawValue("{\"x\":1}", 7, rapidjson::kObjectType);
    x.Key("arr");
    x.StartArray();
    x.StartArray();
    x.EndArray();
    x.StartObject();
    x.EndObject();
    x.String("", 0);
    x.Int(7);
    x.EndArray();
    x.Key("", 0);
    x.StartObject();
    x.Key("e");
    x.String("\\", 1);
    x.EndObject();
    x.EndObject();
  });
  EXPECT_EQ(std::string(a.GetString(), a.GetSize()), b.s);
  // Reset starts a new document after what the buffer holds.
  a.Put(' ');
  b.Put(' ');
  w.Reset(a);
  r.Reset(b);
  both([](auto& x) {
    x.StartArray();
    x.Int(1);
    x.EndArray();
  });
  EXPECT_EQ(std::string(a.GetString(), a.GetSize()), b.s);
}

// The action line of a journaled document (core/journal_entry.h) as RapidJSON's Writer wrote it.
TEST(JsonWriterTest, JournalIndexActionAsRapidJsonWroteIt) {
  const std::string ids[] = {"", "m1", "mid_\"\\/\x01\x1f\xe2\x80\xa8\xc3\xa9",
                             std::string(40, 'x') + "\x1a"};
  for (const std::string& id : ids) {
    for (int64_t version : {int64_t{-1}, int64_t{0}, int64_t{1765000000123}, INT64_MAX}) {
      std::string body = "prefix\n";
      AppendJournalIndexAction(&body, "dau_2026-12-07", id, "{\"x\":1}", version);
      fuzz::OracleStream out;
      fuzz::OracleWriter w(out);
      w.StartObject();
      w.Key("index");
      w.StartObject();
      w.Key("_index");
      w.String("dau_2026-12-07");
      w.Key("_id");
      w.String(id.data(), static_cast<rapidjson::SizeType>(id.size()));
      if (version >= 0) {
        w.Key("version");
        w.Int64(version);
        w.Key("version_type");
        w.String("external_gte");
      }
      w.EndObject();
      w.EndObject();
      EXPECT_EQ(body, "prefix\n" + out.s + "\n{\"x\":1}\n") << id << " " << version;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Random records, and the same damaged

class RandomJson {
 public:
  explicit RandomJson(uint32_t seed) : rng_(seed) {}

  std::string Value(int depth) {
    fuzz::OracleStream sb;
    fuzz::OracleWriter w(sb);
    Write(w, depth);
    return sb.s;
  }

  // `text` with a few random bytes replaced, inserted or removed.
  std::string Damaged(std::string text) {
    const int n = 1 + Below(3);
    for (int i = 0; i < n && !text.empty(); ++i) {
      const size_t at = Below(static_cast<int>(text.size()));
      switch (Below(3)) {
        case 0:
          text[at] = kDamage[Below(sizeof(kDamage) - 1)];
          break;
        case 1:
          text.insert(text.begin() + at, kDamage[Below(sizeof(kDamage) - 1)]);
          break;
        default:
          text.erase(at, 1);
      }
    }
    return text;
  }

 private:
  static constexpr char kDamage[] = "\"\\{}[],:0123456789.eE-+ntfaul \x01\x1f\x7f\xc3\xa9\xe2";

  int Below(int n) { return std::uniform_int_distribution<int>(0, n - 1)(rng_); }

  std::string String() {
    static constexpr std::string_view kUnits[] = {"a",
                                                  "Z",
                                                  "0",
                                                  " ",
                                                  "/",
                                                  "\"",
                                                  "\\",
                                                  "\x7f",
                                                  "\xc3\xa9",
                                                  "\xe4\xb8\xad",
                                                  "\xf0\x9f\x98\x80",
                                                  "\xe2\x80\xa8",
                                                  "\xe2\x80\xa9",
                                                  "mid_",
                                                  "page_id",
                                                  "\xef\xbf\xbf"};
    std::string s;
    const int n = Below(4) == 0 ? Below(60) : Below(12);
    for (int i = 0; i < n; ++i) {
      if (Below(8) == 0) {
        s.push_back(static_cast<char>(Below(0x20)));  // a control character, NUL included
      } else {
        s.append(kUnits[Below(std::size(kUnits))]);
      }
    }
    return s;
  }

  std::string Number() {
    static constexpr std::string_view kNumbers[] = {
        "0",  "-0",  "0.10",    "-1.5e-7", "10130.00",      "18446744073709551615",          "-42",
        "12", "0.5", "3.14159", "-0.0",    "1764036000000", "123456789012345678901234567890"};
    return std::string(kNumbers[Below(std::size(kNumbers))]);
  }

  void Write(fuzz::OracleWriter& w, int depth) {
    const int pick = depth <= 0 ? Below(5) : Below(8);
    switch (pick) {
      case 0:
        w.Null();
        break;
      case 1:
        w.Bool(Below(2) == 1);
        break;
      case 2: {
        std::string n = Number();
        w.RawValue(n.data(), n.size(), rapidjson::kNumberType);
        break;
      }
      case 3:
      case 4: {
        std::string s = String();
        w.String(s.data(), static_cast<rapidjson::SizeType>(s.size()));
        break;
      }
      case 5: {
        w.StartArray();
        for (int i = Below(6); i > 0; --i) Write(w, depth - 1 - Below(2));
        w.EndArray();
        break;
      }
      default: {
        // Objects, often with duplicate keys from a small pool of names; sometimes over 32.
        w.StartObject();
        const int n = Below(10) == 0 ? 30 + Below(20) : Below(8);
        std::vector<std::string> names;
        for (int i = 0; i < n; ++i) {
          std::string k = !names.empty() && Below(4) == 0 ? names[Below(names.size())] : String();
          names.push_back(k);
          w.Key(k.data(), static_cast<rapidjson::SizeType>(k.size()));
          Write(w, depth - 1 - Below(2));
        }
        w.EndObject();
      }
    }
  }

  std::mt19937 rng_;
};

// And JsonParser's scanner parses each as RapidJSON's reader alone does.
TEST(JsonWriterTest, RandomAndDamagedRecordsAsRapidJsonWritesThem) {
  RandomJson gen(20261207);
  JsonParser p(JsonLimits{0, kMaxSupportedJsonDepth});
  int compared = 0, damaged_compared = 0;
  for (int i = 0; i < 4000; ++i) {
    const std::string text = gen.Value(5);
    ASSERT_EQ(p.Parse(text), JsonStatus::kOk) << text;
    // A parsed and rewritten random value: RapidJSON's own text, duplicates resolved.
    ASSERT_EQ(Appended(p.root()), RapidJsonWritten(p.root())) << text;
    ASSERT_EQ(StreamedInContext(p.root()), RapidJsonStreamedInContext(p.root())) << text;
    ++compared;
    ASSERT_TRUE(fuzz::ScannerAgreesWithReader(text, kMaxSupportedJsonDepth)) << text;
    for (int k = 0; k < 2; ++k) {
      const std::string bad = gen.Damaged(text);
      ASSERT_TRUE(fuzz::ScannerAgreesWithReader(bad, kMaxSupportedJsonDepth)) << bad;
      if (p.Parse(bad) != JsonStatus::kOk) continue;
      ASSERT_EQ(Appended(p.root()), RapidJsonWritten(p.root())) << bad;
      ++damaged_compared;
    }
  }
  EXPECT_EQ(compared, 4000);
  // The damage leaves many records parseable (a changed digit or letter of a string).
  EXPECT_GT(damaged_compared, 1000);
}

}  // namespace
}  // namespace rtdw
