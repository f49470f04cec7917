#include "core/json_writer.h"

#include <charconv>
#include <string_view>

#include "absl/container/flat_hash_set.h"

namespace rtdw {
namespace json_internal {

void AppendJsonStringSlow(rapidjson::StringBuffer* out, const char* s, size_t n, size_t at) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  out->Put('"');
  size_t from = 0;
  while (true) {
    // s[from..at) needs no escape; s[at] does (or at == n).
    AppendRaw(out, std::string_view(s + from, at - from));
    if (at == n) break;
    const unsigned char c = static_cast<unsigned char>(s[at]);
    char e = 0;
    switch (c) {
      case '"':
        e = '"';
        break;
      case '\\':
        e = '\\';
        break;
      case '\b':
        e = 'b';
        break;
      case '\t':
        e = 't';
        break;
      case '\n':
        e = 'n';
        break;
      case '\f':
        e = 'f';
        break;
      case '\r':
        e = 'r';
        break;
    }
    if (e != 0) {
      char* p = out->Push(2);
      p[0] = '\\';
      p[1] = e;
    } else {
      char* p = out->Push(6);
      std::memcpy(p, "\\u00", 4);
      p[4] = kHex[c >> 4];
      p[5] = kHex[c & 0xF];
    }
    from = at + 1;
    at = from + FirstToEscape(s + from, n - from);
  }
  out->Put('"');
}

namespace {

// Scratch of AppendJsonContainer, per thread (reused: no allocation in steady state).
struct WriteScratch {
  struct Frame {
    const JsonValue* next;  // the next member's name, or the next element
    uint32_t left;          // members or elements still to visit
    uint32_t index;         // of the next member
    size_t dropped_base;    // where this object's flags start in `dropped`
    bool object;
    bool written;  // a member or element is written: the next one follows a comma
  };
  std::vector<Frame> frames;
  std::vector<uint8_t> dropped;  // per member of the open objects: 1 = a later one has its name
  std::vector<std::string_view> names;
  absl::flat_hash_set<std::string_view> seen;
};

// Appends to `dropped` one flag per member of `obj`: 1 when a later member has the same name.
void MarkSuperseded(const JsonValue& obj, WriteScratch* s) {
  const size_t base = s->dropped.size();
  const uint32_t n = obj.Size();
  s->dropped.resize(base + n, 0);
  if (n < 2) return;
  if (n <= 32) {
    // A small open-addressing table of member indexes (+1), at most half full.
    const JsonValue* names[32];  // uninitialized: only the first j are read
    uint8_t slots[64] = {};
    uint32_t j = 0;
    for (JsonValue::Member m : obj.Members()) {
      const std::string_view k(m.name.GetString(), m.name.GetStringLength());
      names[j] = &m.name;
      uint32_t h = static_cast<uint32_t>(k.size());
      if (!k.empty()) {
        h = h * 31 + static_cast<uint8_t>(k.front());
        h = h * 31 + static_cast<uint8_t>(k[k.size() / 2]);
        h = h * 31 + static_cast<uint8_t>(k.back());
      }
      h = (h * 0x9E3779B1u) >> 26;
      for (;; h = (h + 1) & 63) {
        if (slots[h] == 0) {
          slots[h] = static_cast<uint8_t>(j + 1);
          break;
        }
        const uint32_t i = slots[h] - 1u;
        if (names[i]->GetStringLength() == k.size() &&
            std::memcmp(names[i]->GetString(), k.data(), k.size()) ==
                0) {  // an earlier member of this name: the later one replaces it
          s->dropped[base + i] = 1;
          slots[h] = static_cast<uint8_t>(j + 1);
          break;
        }
      }
      ++j;
    }
    return;
  }
  s->names.clear();
  for (JsonValue::Member m : obj.Members()) s->names.push_back(m.name.text());
  s->seen.clear();
  for (uint32_t i = n; i-- > 0;) {
    if (!s->seen.insert(s->names[i]).second) s->dropped[base + i] = 1;
  }
}

}  // namespace

void AppendJsonContainer(rapidjson::StringBuffer* out, const JsonValue& v) {
  thread_local WriteScratch scratch;
  WriteScratch* s = &scratch;
  const size_t frames_base = s->frames.size();
  auto open = [&](const JsonValue& c) {
    WriteScratch::Frame f{&c + 1, c.Size(), 0, s->dropped.size(), c.IsObject(), false};
    if (f.object) {
      out->Put('{');
      MarkSuperseded(c, s);
    } else {
      out->Put('[');
    }
    s->frames.push_back(f);
  };
  open(v);
  while (s->frames.size() > frames_base) {
    WriteScratch::Frame& f = s->frames.back();
    if (f.left == 0) {
      out->Put(f.object ? '}' : ']');
      s->dropped.resize(f.dropped_base);
      s->frames.pop_back();
      continue;
    }
    const JsonValue* item = f.next;
    --f.left;
    if (f.object) {
      const JsonValue* name = item;
      item = name + 1;
      f.next = item->Next();
      if (s->dropped[f.dropped_base + f.index++]) continue;
      if (f.written) out->Put(',');
      AppendJsonString(out, name->text());
      out->Put(':');
    } else {
      f.next = item->Next();
      if (f.written) out->Put(',');
    }
    f.written = true;
    if (item->IsObject() || item->IsArray()) {
      open(*item);  // invalidates `f`
    } else {
      AppendJsonValue(out, *item);
    }
  }
}

}  // namespace json_internal

bool JsonWriter::Int64(int64_t i) {
  char buf[24];
  return Raw(std::string_view(buf, std::to_chars(buf, buf + sizeof(buf), i).ptr - buf));
}

bool JsonWriter::Uint64(uint64_t u) {
  char buf[24];
  return Raw(std::string_view(buf, std::to_chars(buf, buf + sizeof(buf), u).ptr - buf));
}

}  // namespace rtdw
