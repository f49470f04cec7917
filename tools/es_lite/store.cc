#include "tools/es_lite/store.h"

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <random>
#include <set>
#include <unordered_map>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "rocksdb/filter_policy.h"
#include "rocksdb/table.h"
#include "rocksdb/write_batch.h"

namespace rtdw::eslite {

struct Store::IndexState {
  std::string name;
  std::string uuid;
  int64_t creation_date = 0;
  std::shared_ptr<const Mapping> mapping;
  std::shared_ptr<const IndexSettings> settings;
  uint64_t docs = 0;
  uint64_t bytes = 0;
  uint64_t next_seq = 0;
};

namespace {

constexpr char kDocPrefix = 'D';
constexpr char kIndexPrefix = 'I';
constexpr char kTemplatePrefix = 'T';
constexpr char kSeqPrefix = 'S';
const char* const kClusterUuidKey = "Mcluster_uuid";

std::string DocKey(absl::string_view index, absl::string_view id) {
  std::string k;
  k.reserve(index.size() + id.size() + 2);
  k.push_back(kDocPrefix);
  k.append(index.data(), index.size());
  k.push_back('\0');
  k.append(id.data(), id.size());
  return k;
}

void PutFixed64(std::string* out, uint64_t v) {
  for (int i = 0; i < 8; ++i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

uint64_t GetFixed64(const char* p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i)
    v |= static_cast<uint64_t>(static_cast<unsigned char>(p[i])) << (8 * i);
  return v;
}

std::string EncodeDoc(uint64_t version, uint64_t seq, absl::string_view source) {
  std::string v;
  v.reserve(17 + source.size());
  v.push_back(1);
  PutFixed64(&v, version);
  PutFixed64(&v, seq);
  v.append(source.data(), source.size());
  return v;
}

bool DecodeDoc(absl::string_view v, DocRecord* out) {
  if (v.size() < 17 || v[0] != 1) return false;
  out->version = GetFixed64(v.data() + 1);
  out->seq_no = GetFixed64(v.data() + 9);
  out->source.assign(v.data() + 17, v.size() - 17);
  return true;
}

std::string SeqValue(uint64_t seq) {
  std::string v;
  PutFixed64(&v, seq);
  return v;
}

std::string RandomToken(size_t n) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  thread_local std::mt19937_64 rng(
      std::random_device{}() ^
      static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count()));
  std::string s;
  for (size_t i = 0; i < n; ++i) s.push_back(kAlphabet[rng() % 64]);
  return s;
}

int64_t NowMillis() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

void FlattenSettings(const rapidjson::Value& v, const std::string& prefix,
                     std::vector<std::pair<std::string, const rapidjson::Value*>>* out) {
  for (auto it = v.MemberBegin(); it != v.MemberEnd(); ++it) {
    std::string key =
        prefix.empty() ? std::string(Sv(it->name)) : absl::StrCat(prefix, ".", Sv(it->name));
    if (it->value.IsObject()) {
      FlattenSettings(it->value, key, out);
    } else {
      out->emplace_back(key, &it->value);
    }
  }
}

EsError VersionConflict(absl::string_view id, uint64_t version, absl::string_view index,
                        absl::string_view uuid) {
  EsError e;
  e.status = 409;
  e.type = "version_conflict_engine_exception";
  e.reason = absl::StrCat(
      "[", id, "]: version conflict, document already exists (current version [", version, "])");
  e.extra = {{"index_uuid", std::string(uuid)}, {"shard", "0"}, {"index", std::string(index)}};
  return e;
}

EsError DocumentMissing(absl::string_view id, absl::string_view index, absl::string_view uuid) {
  EsError e;
  e.status = 404;
  e.type = "document_missing_exception";
  e.reason = absl::StrCat("[", id, "]: document missing");
  e.extra = {{"index_uuid", std::string(uuid)}, {"shard", "0"}, {"index", std::string(index)}};
  return e;
}

bool JsonEqual(const rapidjson::Value& a, const rapidjson::Value& b) { return a == b; }

}  // namespace

absl::string_view OpName(OpType t) {
  switch (t) {
    case OpType::kIndex:
      return "index";
    case OpType::kCreate:
      return "create";
    case OpType::kDelete:
      return "delete";
    case OpType::kUpdate:
      return "update";
  }
  return "index";
}

bool GlobMatch(absl::string_view p, absl::string_view t) {
  // Iterative glob with backtracking on the last '*'.
  size_t pi = 0, ti = 0, star = absl::string_view::npos, mark = 0;
  while (ti < t.size()) {
    if (pi < p.size() && p[pi] == '*') {
      star = pi++;
      mark = ti;
    } else if (pi < p.size() && p[pi] == t[ti]) {
      ++pi;
      ++ti;
    } else if (star != absl::string_view::npos) {
      pi = star + 1;
      ti = ++mark;
    } else {
      return false;
    }
  }
  while (pi < p.size() && p[pi] == '*') ++pi;
  return pi == p.size();
}

std::optional<EsError> ParseIndexSettings(const rapidjson::Value& settings, IndexSettings* out) {
  if (settings.IsNull()) return std::nullopt;
  if (!settings.IsObject()) return IllegalArgument("settings must be an object");
  std::vector<std::pair<std::string, const rapidjson::Value*>> flat;
  FlattenSettings(settings, "", &flat);
  static const std::set<std::string> kAccepted = {"index.number_of_shards",
                                                  "index.number_of_replicas",
                                                  "index.refresh_interval",
                                                  "index.max_result_window",
                                                  "index.mapping.total_fields.limit",
                                                  "index.mapping.depth.limit",
                                                  "index.codec",
                                                  "index.translog.durability",
                                                  "index.lifecycle.name",
                                                  "index.lifecycle.rollover_alias",
                                                  "index.auto_expand_replicas",
                                                  "index.number_of_routing_shards",
                                                  "index.write.wait_for_active_shards"};
  for (const auto& [raw_key, v] : flat) {
    std::string key = absl::StartsWith(raw_key, "index.") ? raw_key : "index." + raw_key;
    if (!kAccepted.count(key)) {
      return IllegalArgument(absl::StrCat(
          "unknown setting [", key,
          "] please check that any required plugins are installed, or check the breaking changes "
          "documentation for removed settings (or it is not supported by rtdw-es-lite)"));
    }
    if (v->IsObject() || v->IsArray()) {
      return IllegalArgument(absl::StrCat("setting [", key, "] must be a value"));
    }
    std::string text = v->IsNull() ? "" : ScalarText(*v);
    auto int_setting = [&](int min, int* target) -> std::optional<EsError> {
      int n = 0;
      if (!absl::SimpleAtoi(text, &n) || n < min) {
        return IllegalArgument(absl::StrCat("Failed to parse value [", text, "] for setting [", key,
                                            "] must be >= ", min));
      }
      *target = n;
      return std::nullopt;
    };
    if (key == "index.number_of_shards") {
      if (auto e = int_setting(1, &out->shards)) return e;
    } else if (key == "index.number_of_replicas") {
      if (auto e = int_setting(0, &out->replicas)) return e;
    } else if (key == "index.max_result_window") {
      if (auto e = int_setting(1, &out->max_result_window)) return e;
    }
    out->values[key] = text;
  }
  out->values["index.number_of_shards"] = std::to_string(out->shards);
  out->values["index.number_of_replicas"] = std::to_string(out->replicas);
  return std::nullopt;
}

std::optional<EsError> Store::ValidateIndexName(absl::string_view name) {
  auto invalid = [&](std::string why) {
    EsError e = BadRequest("invalid_index_name_exception",
                           absl::StrCat("Invalid index name [", name, "], ", why));
    e.extra = {{"index_uuid", "_na_"}, {"index", std::string(name)}};
    return e;
  };
  if (name.empty()) return invalid("must not be empty");
  if (name == "." || name == "..") return invalid("must not be '.' or '..'");
  if (name.size() > 255)
    return invalid("index name is too long, (" + std::to_string(name.size()) + " > 255)");
  if (name[0] == '_' || name[0] == '-' || name[0] == '+') {
    return invalid("must not start with '_', '-', or '+'");
  }
  for (char c : name) {
    if (absl::ascii_isupper(static_cast<unsigned char>(c))) return invalid("must be lowercase");
    if (absl::string_view("\\/*?\"<>| ,#:").find(c) != absl::string_view::npos || c == '\0') {
      return invalid(
          "must not contain the following characters [ , \", *, \\, <, |, ,, >, /, ?, "
          "#, :]");
    }
  }
  return std::nullopt;
}

std::string Store::NewId() { return RandomToken(20); }

Result<std::unique_ptr<Store>> Store::Open(const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) {
    EsError e;
    e.status = 500;
    e.type = "io_exception";
    e.reason = absl::StrCat("cannot create data dir ", dir, ": ", ec.message());
    return e;
  }
  rocksdb::Options options;
  options.create_if_missing = true;
  options.max_open_files = 512;
  options.write_buffer_size = 32 << 20;
  options.IncreaseParallelism(2);
  rocksdb::BlockBasedTableOptions table;
  table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
  options.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
  rocksdb::DB* raw = nullptr;
  rocksdb::Status s = rocksdb::DB::Open(options, dir + "/rocksdb", &raw);
  if (!s.ok()) {
    EsError e;
    e.status = 500;
    e.type = "io_exception";
    e.reason = absl::StrCat("cannot open ", dir, "/rocksdb: ", s.ToString());
    return e;
  }
  std::unique_ptr<Store> store(new Store(std::unique_ptr<rocksdb::DB>(raw)));
  if (auto err = store->Load()) return *err;
  return store;
}

Store::~Store() {
  if (db_) {
    db_->FlushWAL(true);
    db_->Close();
  }
}

rocksdb::Status Store::SyncWrite(rocksdb::WriteBatch* batch) {
  rocksdb::WriteOptions wo;
  wo.sync = true;
  return db_->Write(wo, batch);
}

std::optional<EsError> Store::Load() {
  auto fail = [](std::string why) {
    EsError e;
    e.status = 500;
    e.type = "io_exception";
    e.reason = std::move(why);
    return e;
  };
  std::string uuid;
  if (db_->Get(rocksdb::ReadOptions(), kClusterUuidKey, &uuid).ok()) {
    cluster_uuid_ = uuid;
  } else {
    cluster_uuid_ = RandomToken(22);
    rocksdb::WriteBatch b;
    b.Put(kClusterUuidKey, cluster_uuid_);
    if (!SyncWrite(&b).ok()) return fail("cannot write cluster uuid");
  }
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions()));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    absl::string_view key(it->key().data(), it->key().size());
    absl::string_view val(it->value().data(), it->value().size());
    if (key.empty()) continue;
    if (key[0] == kIndexPrefix) {
      std::string name(key.substr(1));
      rapidjson::Document meta;
      if (ParseJson(val, &meta) || !meta.IsObject()) {
        return fail(absl::StrCat("corrupt metadata of index ", name));
      }
      auto state = std::make_shared<IndexState>();
      state->name = name;
      state->uuid = meta.HasMember("uuid") && meta["uuid"].IsString() ? meta["uuid"].GetString()
                                                                      : RandomToken(22);
      state->creation_date = meta.HasMember("creation_date") && meta["creation_date"].IsInt64()
                                 ? meta["creation_date"].GetInt64()
                                 : 0;
      auto settings = std::make_shared<IndexSettings>();
      if (meta.HasMember("settings")) {
        if (auto err = ParseIndexSettings(meta["settings"], settings.get())) return err;
      }
      state->settings = settings;
      if (meta.HasMember("mappings")) {
        auto m = Mapping::FromJson(meta["mappings"]);
        if (!m.ok())
          return fail(absl::StrCat("bad mapping of index ", name, ": ", m.error().reason));
        state->mapping = m.value();
      } else {
        state->mapping = Mapping::Empty();
      }
      indices_[name] = state;
    } else if (key[0] == kTemplatePrefix) {
      std::string name(key.substr(1));
      rapidjson::Document body;
      if (ParseJson(val, &body)) return fail(absl::StrCat("corrupt template ", name));
      auto t = std::make_shared<Template>();
      t->body = std::string(val);
      const auto& patterns = body["index_patterns"];
      if (patterns.IsString()) {
        t->patterns.emplace_back(Sv(patterns));
      } else if (patterns.IsArray()) {
        for (const auto& p : patterns.GetArray()) {
          if (p.IsString()) t->patterns.emplace_back(Sv(p));
        }
      }
      if (body.HasMember("priority") && body["priority"].IsInt64()) {
        t->priority = body["priority"].GetInt64();
      }
      t->settings.SetNull();
      t->mappings.SetNull();
      if (body.HasMember("template") && body["template"].IsObject()) {
        const auto& tpl = body["template"];
        if (tpl.HasMember("settings"))
          t->settings.CopyFrom(tpl["settings"], t->settings.GetAllocator());
        if (tpl.HasMember("mappings"))
          t->mappings.CopyFrom(tpl["mappings"], t->mappings.GetAllocator());
      }
      templates_[name] = t;
    }
  }
  // Sequence counters and document counts.
  for (it->Seek(std::string(1, kSeqPrefix)); it->Valid() && it->key()[0] == kSeqPrefix;
       it->Next()) {
    std::string name(it->key().data() + 1, it->key().size() - 1);
    auto found = indices_.find(name);
    if (found != indices_.end() && it->value().size() == 8) {
      found->second->next_seq = GetFixed64(it->value().data());
    }
  }
  for (it->Seek(std::string(1, kDocPrefix)); it->Valid() && it->key()[0] == kDocPrefix;
       it->Next()) {
    absl::string_view key(it->key().data() + 1, it->key().size() - 1);
    size_t nul = key.find('\0');
    if (nul == absl::string_view::npos) continue;
    auto found = indices_.find(std::string(key.substr(0, nul)));
    if (found == indices_.end()) continue;
    found->second->docs++;
    found->second->bytes += it->value().size() > 17 ? it->value().size() - 17 : 0;
  }
  if (!it->status().ok()) return fail(absl::StrCat("reading the store: ", it->status().ToString()));
  return std::nullopt;
}

// ---------------------------------------------------------------- indices

std::vector<IndexInfo> Store::Indices() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<IndexInfo> out;
  for (const auto& [name, s] : indices_) {
    out.push_back({s->name, s->uuid, s->creation_date, s->mapping, s->settings, s->docs, s->bytes});
  }
  return out;
}

std::optional<IndexInfo> Store::GetIndex(absl::string_view name) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = indices_.find(std::string(name));
  if (it == indices_.end()) return std::nullopt;
  const auto& s = it->second;
  return IndexInfo{s->name, s->uuid, s->creation_date, s->mapping, s->settings, s->docs, s->bytes};
}

Result<std::vector<IndexInfo>> Store::Resolve(absl::string_view expression,
                                              const ResolveOptions& options) const {
  std::vector<IndexInfo> all = Indices();
  std::set<std::string> chosen;
  std::vector<std::string> parts = absl::StrSplit(expression, ',', absl::SkipEmpty());
  if (parts.empty()) parts.push_back("_all");
  bool any_wildcard = false;
  for (size_t i = 0; i < parts.size(); ++i) {
    std::string part = parts[i];
    bool exclude = false;
    if (part[0] == '-' && i > 0) {
      exclude = true;
      part = part.substr(1);
    }
    if (part == "_all" || part.find('*') != std::string::npos) {
      any_wildcard = true;
      std::string pattern = part == "_all" ? "*" : part;
      for (const auto& idx : all) {
        // Like ES, wildcards do not expand to hidden (dot-prefixed) indices unless asked.
        if (GlobMatch(pattern, idx.name) && (idx.name[0] != '.' || pattern[0] == '.')) {
          if (exclude) {
            chosen.erase(idx.name);
          } else {
            chosen.insert(idx.name);
          }
        }
      }
      continue;
    }
    if (exclude) {
      chosen.erase(part);
      continue;
    }
    bool exists =
        std::any_of(all.begin(), all.end(), [&](const IndexInfo& x) { return x.name == part; });
    if (!exists) {
      if (options.ignore_unavailable) continue;
      return IndexNotFound(part);
    }
    chosen.insert(part);
  }
  if (chosen.empty() && !options.allow_no_indices && any_wildcard) {
    return IndexNotFound(expression);
  }
  std::vector<IndexInfo> out;
  for (const auto& idx : all) {
    if (chosen.count(idx.name)) out.push_back(idx);
  }
  return out;
}

Result<std::shared_ptr<Store::IndexState>> Store::MakeIndex(absl::string_view name,
                                                            const rapidjson::Value* body,
                                                            rocksdb::WriteBatch* batch) const {
  if (auto err = ValidateIndexName(name)) return *err;
  // The matching template with the highest priority (ties: the first by name).
  const Template* tpl = nullptr;
  for (const auto& [tname, t] : templates_) {
    bool match = std::any_of(t->patterns.begin(), t->patterns.end(),
                             [&](const std::string& p) { return GlobMatch(p, name); });
    if (match && (tpl == nullptr || t->priority > tpl->priority)) tpl = t.get();
  }
  rapidjson::Document settings(rapidjson::kObjectType);
  rapidjson::Document mappings(rapidjson::kObjectType);
  if (tpl != nullptr) {
    if (tpl->settings.IsObject()) settings.CopyFrom(tpl->settings, settings.GetAllocator());
    if (tpl->mappings.IsObject()) mappings.CopyFrom(tpl->mappings, mappings.GetAllocator());
  }
  if (body != nullptr && body->IsObject()) {
    for (auto it = body->MemberBegin(); it != body->MemberEnd(); ++it) {
      absl::string_view key = Sv(it->name);
      if (key == "settings") {
        if (!it->value.IsObject()) return IllegalArgument("settings must be an object");
        DeepMerge(settings, it->value, settings.GetAllocator());
      } else if (key == "mappings") {
        if (!it->value.IsObject()) {
          return BadRequest("mapper_parsing_exception", "mappings must be an object");
        }
        DeepMerge(mappings, it->value, mappings.GetAllocator());
      } else if (key == "aliases") {
        if (!it->value.IsObject() || !it->value.ObjectEmpty()) return Unsupported("aliases");
      } else {
        return ParsingException(absl::StrCat("unknown key [", key, "] for create index"));
      }
    }
  }
  auto state = std::make_shared<IndexState>();
  state->name = std::string(name);
  state->uuid = RandomToken(22);
  state->creation_date = NowMillis();
  auto s = std::make_shared<IndexSettings>();
  if (auto err = ParseIndexSettings(settings, s.get())) return *err;
  state->settings = s;
  auto m = Mapping::FromJson(mappings);
  if (!m.ok()) return m.error();
  state->mapping = m.value();
  batch->Put(std::string(1, kIndexPrefix) + state->name, MetaJson(*state));
  batch->Put(std::string(1, kSeqPrefix) + state->name, SeqValue(0));
  return state;
}

std::string Store::MetaJson(const IndexState& s) const {
  rapidjson::StringBuffer buf;
  Writer w(buf);
  w.StartObject();
  WriteKey(w, "uuid");
  WriteStr(w, s.uuid);
  WriteKey(w, "creation_date");
  w.Int64(s.creation_date);
  WriteKey(w, "settings");
  w.StartObject();
  for (const auto& [k, v] : s.settings->values) {
    WriteKey(w, k);
    WriteStr(w, v);
  }
  w.EndObject();
  WriteKey(w, "mappings");
  s.mapping->json().Accept(w);
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize());
}

std::optional<EsError> Store::CreateIndex(absl::string_view name, const rapidjson::Value* body) {
  std::lock_guard<std::mutex> lock(mu_);
  if (auto it = indices_.find(std::string(name)); it != indices_.end()) {
    EsError e =
        BadRequest("resource_already_exists_exception",
                   absl::StrCat("index [", name, "/", it->second->uuid, "] already exists"));
    e.extra = {{"index_uuid", it->second->uuid}, {"index", std::string(name)}};
    return e;
  }
  rocksdb::WriteBatch batch;
  auto state = MakeIndex(name, body, &batch);
  if (!state.ok()) return state.error();
  rocksdb::Status s = SyncWrite(&batch);
  if (!s.ok()) return BadRequest("io_exception", s.ToString());
  indices_[state.value()->name] = state.value();
  return std::nullopt;
}

std::optional<EsError> Store::DeleteIndices(const std::vector<std::string>& names) {
  std::lock_guard<std::mutex> lock(mu_);
  rocksdb::WriteBatch batch;
  for (const auto& name : names) {
    if (!indices_.count(name)) return IndexNotFound(name);
    batch.DeleteRange(DocKey(name, ""), std::string(1, kDocPrefix) + name + '\1');
    batch.Delete(std::string(1, kIndexPrefix) + name);
    batch.Delete(std::string(1, kSeqPrefix) + name);
  }
  rocksdb::Status s = SyncWrite(&batch);
  if (!s.ok()) return BadRequest("io_exception", s.ToString());
  for (const auto& name : names) indices_.erase(name);
  return std::nullopt;
}

// ---------------------------------------------------------------- templates

std::optional<EsError> Store::PutTemplate(absl::string_view name, const rapidjson::Value& body,
                                          bool create_only) {
  if (name.empty() || name != absl::AsciiStrToLower(name) ||
      name.find_first_of(" ,\"*\\<|>/?#") != absl::string_view::npos) {
    return BadRequest("invalid_index_template_exception",
                      absl::StrCat("index_template [", name,
                                   "] invalid, cause [name must be lower cased and must not "
                                   "contain spaces or special characters]"));
  }
  if (!body.IsObject()) return ParsingException("index template body must be an object");
  auto t = std::make_shared<Template>();
  t->settings.SetNull();
  t->mappings.SetNull();
  bool have_patterns = false;
  for (auto it = body.MemberBegin(); it != body.MemberEnd(); ++it) {
    absl::string_view key = Sv(it->name);
    const auto& v = it->value;
    if (key == "index_patterns") {
      if (v.IsString()) {
        t->patterns.emplace_back(Sv(v));
      } else if (v.IsArray()) {
        for (const auto& p : v.GetArray()) {
          if (!p.IsString()) return ParsingException("index_patterns must be strings");
          t->patterns.emplace_back(Sv(p));
        }
      } else {
        return ParsingException("index_patterns must be a string or an array");
      }
      have_patterns = !t->patterns.empty();
    } else if (key == "priority") {
      if (!v.IsInt64() || v.GetInt64() < 0) {
        return ParsingException("priority must be a non-negative integer");
      }
      t->priority = v.GetInt64();
    } else if (key == "version" || key == "_meta" || key == "allow_auto_create") {
      // kept in the stored body
    } else if (key == "composed_of") {
      if (!v.IsArray() || !v.Empty()) return Unsupported("composed_of (component templates)");
    } else if (key == "data_stream") {
      return Unsupported("data_stream");
    } else if (key == "template") {
      if (!v.IsObject()) return ParsingException("template must be an object");
      for (auto jt = v.MemberBegin(); jt != v.MemberEnd(); ++jt) {
        absl::string_view tk = Sv(jt->name);
        if (tk == "settings") {
          t->settings.CopyFrom(jt->value, t->settings.GetAllocator());
        } else if (tk == "mappings") {
          t->mappings.CopyFrom(jt->value, t->mappings.GetAllocator());
        } else if (tk == "aliases") {
          if (!jt->value.IsObject() || !jt->value.ObjectEmpty()) return Unsupported("aliases");
        } else {
          return ParsingException(absl::StrCat("[template] unknown field [", tk, "]"));
        }
      }
    } else {
      return ParsingException(absl::StrCat("[index_template] unknown field [", key, "]"));
    }
  }
  if (!have_patterns) {
    return BadRequest("action_request_validation_exception",
                      "Validation Failed: 1: index patterns are missing;");
  }
  // Validate what the template would give an index.
  IndexSettings settings;
  if (t->settings.IsObject()) {
    if (auto err = ParseIndexSettings(t->settings, &settings)) return err;
  } else if (!t->settings.IsNull()) {
    return IllegalArgument("template settings must be an object");
  }
  if (t->mappings.IsObject()) {
    auto m = Mapping::FromJson(t->mappings);
    if (!m.ok()) return m.error();
  } else if (!t->mappings.IsNull()) {
    return BadRequest("mapper_parsing_exception", "template mappings must be an object");
  }
  t->body = ToJson(body);
  std::lock_guard<std::mutex> lock(mu_);
  if (create_only && templates_.count(std::string(name))) {
    return IllegalArgument(absl::StrCat("index template [", name, "] already exists"));
  }
  rocksdb::WriteBatch batch;
  batch.Put(std::string(1, kTemplatePrefix) + std::string(name), t->body);
  rocksdb::Status s = SyncWrite(&batch);
  if (!s.ok()) return BadRequest("io_exception", s.ToString());
  templates_[std::string(name)] = t;
  return std::nullopt;
}

bool Store::DeleteTemplate(absl::string_view name) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = templates_.find(std::string(name));
  if (it == templates_.end()) return false;
  rocksdb::WriteBatch batch;
  batch.Delete(std::string(1, kTemplatePrefix) + std::string(name));
  if (!SyncWrite(&batch).ok()) return false;
  templates_.erase(it);
  return true;
}

std::vector<std::pair<std::string, std::string>> Store::Templates(absl::string_view pattern) const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& [name, t] : templates_) {
    bool match = pattern.empty();
    for (absl::string_view p : absl::StrSplit(pattern, ',', absl::SkipEmpty())) {
      if (GlobMatch(p, name)) match = true;
    }
    if (match) out.emplace_back(name, t->body);
  }
  return out;
}

// ---------------------------------------------------------------- documents

std::optional<DocRecord> Store::GetDoc(absl::string_view index, absl::string_view id) const {
  std::string value;
  rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), DocKey(index, id), &value);
  if (!s.ok()) return std::nullopt;
  DocRecord rec;
  if (!DecodeDoc(value, &rec)) return std::nullopt;
  return rec;
}

void Store::Scan(absl::string_view index, absl::string_view from_id,
                 const std::function<bool(absl::string_view, const DocRecord&)>& fn) const {
  std::string upper = std::string(1, kDocPrefix) + std::string(index) + '\1';
  rocksdb::Slice upper_slice(upper);
  rocksdb::ReadOptions ro;
  ro.iterate_upper_bound = &upper_slice;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro));
  std::string start = DocKey(index, from_id);
  const size_t prefix_len = index.size() + 2;
  DocRecord rec;
  for (it->Seek(start); it->Valid(); it->Next()) {
    absl::string_view key(it->key().data(), it->key().size());
    if (key.size() < prefix_len) continue;
    if (!DecodeDoc({it->value().data(), it->value().size()}, &rec)) continue;
    if (!fn(key.substr(prefix_len), rec)) break;
  }
}

Result<std::vector<WriteResult>> Store::Write(std::vector<WriteOp>& ops) {
  std::vector<WriteResult> results(ops.size());
  std::lock_guard<std::mutex> lock(mu_);
  rocksdb::WriteBatch batch;
  // Working copies of the touched indices; committed only after the synced write.
  std::map<std::string, std::shared_ptr<IndexState>> work;
  std::set<std::string> created;
  std::set<std::string> mapping_changed;
  std::unordered_map<std::string, std::optional<DocRecord>> overlay;  // key -> state in batch

  auto index_for = [&](const std::string& name) -> Result<IndexState*> {
    if (auto it = work.find(name); it != work.end()) return it->second.get();
    if (auto it = indices_.find(name); it != indices_.end()) {
      auto copy = std::make_shared<IndexState>(*it->second);
      work[name] = copy;
      return copy.get();
    }
    auto made = MakeIndex(name, nullptr, &batch);
    if (!made.ok()) return made.error();
    work[name] = made.value();
    created.insert(name);
    return made.value().get();
  };
  auto current = [&](const std::string& key) -> std::optional<DocRecord> {
    if (auto it = overlay.find(key); it != overlay.end()) return it->second;
    std::string value;
    if (!db_->Get(rocksdb::ReadOptions(), key, &value).ok()) return std::nullopt;
    DocRecord rec;
    if (!DecodeDoc(value, &rec)) return std::nullopt;
    return rec;
  };

  for (size_t i = 0; i < ops.size(); ++i) {
    WriteOp& op = ops[i];
    WriteResult& r = results[i];
    r.index = op.index;
    r.id = op.id;
    auto fail = [&](EsError e) {
      r.status = e.status;
      r.error = std::move(e);
    };
    if (op.error) {
      fail(*op.error);
      continue;
    }
    auto idx_or = index_for(op.index);
    if (!idx_or.ok()) {
      fail(idx_or.error());
      continue;
    }
    IndexState* idx = idx_or.value();
    std::string key = DocKey(op.index, op.id);
    std::optional<DocRecord> cur = current(key);

    auto put_doc = [&](const rapidjson::Value& doc, absl::string_view source) -> bool {
      auto checked = Mapping::CheckDocument(idx->mapping, doc, op.id);
      if (!checked.ok()) {
        fail(checked.error());
        return false;
      }
      if (checked.value() != idx->mapping) {
        idx->mapping = checked.value();
        mapping_changed.insert(idx->name);
      }
      DocRecord rec;
      rec.version = cur ? cur->version + 1 : 1;
      rec.seq_no = idx->next_seq++;
      rec.source = std::string(source);
      batch.Put(key, EncodeDoc(rec.version, rec.seq_no, rec.source));
      if (cur) {
        idx->bytes -= std::min<uint64_t>(idx->bytes, cur->source.size());
      } else {
        idx->docs++;
      }
      idx->bytes += rec.source.size();
      r.status = cur ? 200 : 201;
      r.result = cur ? "updated" : "created";
      r.version = rec.version;
      r.seq_no = rec.seq_no;
      overlay[key] = std::move(rec);
      return true;
    };

    switch (op.type) {
      case OpType::kCreate:
        if (cur) {
          fail(VersionConflict(op.id, cur->version, op.index, idx->uuid));
          break;
        }
        [[fallthrough]];
      case OpType::kIndex:
        put_doc(*op.body, op.source);
        break;
      case OpType::kDelete:
        if (!cur) {
          r.status = 404;
          r.result = "not_found";
          r.version = 1;
          r.seq_no = idx->next_seq++;
          break;
        }
        batch.Delete(key);
        idx->docs--;
        idx->bytes -= std::min<uint64_t>(idx->bytes, cur->source.size());
        r.status = 200;
        r.result = "deleted";
        r.version = cur->version + 1;
        r.seq_no = idx->next_seq++;
        overlay[key] = std::nullopt;
        break;
      case OpType::kUpdate: {
        const rapidjson::Value& body = *op.body;
        const rapidjson::Value* doc = body.HasMember("doc") ? &body["doc"] : nullptr;
        bool doc_as_upsert = body.HasMember("doc_as_upsert") && body["doc_as_upsert"].IsBool() &&
                             body["doc_as_upsert"].GetBool();
        const rapidjson::Value* upsert = body.HasMember("upsert") ? &body["upsert"] : nullptr;
        if (!cur) {
          const rapidjson::Value* fresh = doc_as_upsert ? doc : upsert;
          if (fresh == nullptr) {
            fail(DocumentMissing(op.id, op.index, idx->uuid));
            break;
          }
          put_doc(*fresh, ToJson(*fresh));
          break;
        }
        rapidjson::Document merged;
        if (ParseJson(cur->source, &merged) || !merged.IsObject()) {
          fail(BadRequest("mapper_parsing_exception", "stored document is not an object"));
          break;
        }
        rapidjson::Document before;
        before.CopyFrom(merged, before.GetAllocator());
        DeepMerge(merged, *doc, merged.GetAllocator());
        if (JsonEqual(before, merged)) {
          r.status = 200;
          r.result = "noop";
          r.version = cur->version;
          r.seq_no = cur->seq_no;
          break;
        }
        put_doc(merged, ToJson(merged));
        break;
      }
    }
  }

  if (batch.Count() > 0) {
    for (const auto& [name, state] : work) {
      if (mapping_changed.count(name) && !created.count(name)) {
        batch.Put(std::string(1, kIndexPrefix) + name, MetaJson(*state));
      }
      if (created.count(name)) {
        // Metadata written by MakeIndex holds the template mapping; store the final one.
        batch.Put(std::string(1, kIndexPrefix) + name, MetaJson(*state));
      }
      batch.Put(std::string(1, kSeqPrefix) + name, SeqValue(state->next_seq));
    }
    rocksdb::Status s = SyncWrite(&batch);
    if (!s.ok()) {
      EsError e;
      e.status = 500;
      e.type = "io_exception";
      e.reason = absl::StrCat("write failed: ", s.ToString());
      return e;
    }
  }
  for (auto& [name, state] : work) indices_[name] = state;
  return results;
}

}  // namespace rtdw::eslite
