// rtdw-es-lite: GET / (as each Identity answers it), _cat/indices and _cluster/health.

#include <algorithm>
#include <map>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "httplib.h"
#include "tools/es_lite/api.h"
#include "tools/es_lite/search.h"

namespace rtdw::eslite {

Reply Api::Info() {
  rapidjson::StringBuffer buf;
  Writer w(buf);
  if (options_.identity != Identity::kEs8) return InfoAs(options_.identity);
  w.StartObject();
  w.Key("name");
  WriteStr(w, options_.node_name);
  w.Key("cluster_name");
  WriteStr(w, options_.cluster_name);
  w.Key("cluster_uuid");
  WriteStr(w, store_->cluster_uuid());
  w.Key("version");
  w.StartObject();
  w.Key("number");
  w.String("8.11.0");
  w.Key("build_flavor");
  w.String("default");
  w.Key("build_type");
  w.String("rtdw-es-lite");
  w.Key("build_hash");
  w.String("0000000000000000000000000000000000000000");
  w.Key("build_date");
  w.String("2023-11-04T10:04:57.184859352Z");
  w.Key("build_snapshot");
  w.Bool(false);
  w.Key("lucene_version");
  w.String("9.8.0");
  w.Key("minimum_wire_compatibility_version");
  w.String("7.17.0");
  w.Key("minimum_index_compatibility_version");
  w.String("7.0.0");
  w.EndObject();
  w.Key("tagline");
  w.String("You Know, for Search");
  w.EndObject();
  return JsonReply(200, Done(w, buf));
}

// GET / as the other identities answer it (versions of late releases of each line).
Reply Api::InfoAs(Identity id) {
  struct Shape {
    const char* number;
    const char* lucene;
    const char* wire;
    const char* index;
    bool opensearch;
  };
  Shape shape{};
  switch (id) {
    case Identity::kEs7:
      shape = {"7.17.15", "8.11.1", "6.8.0", "6.0.0-beta1", false};
      break;
    case Identity::kEs710:
      shape = {"7.10.2", "8.7.0", "6.8.0", "6.0.0-beta1", false};
      break;
    case Identity::kOpenSearch2:
      shape = {"2.11.1", "9.7.0", "7.10.0", "7.0.0", true};
      break;
    case Identity::kOpenSearch1:
      shape = {"1.3.14", "8.10.1", "6.8.0", "6.0.0-beta1", true};
      break;
    case Identity::kEs6:
      shape = {"6.8.23", "7.7.3", "5.6.0", "5.0.0", false};
      break;
    case Identity::kOther:
      // Some other HTTP service answering JSON on GET /.
      return JsonReply(200, R"({"status":"ok","service":"not-a-search-engine","version":"3.1.4"})");
    case Identity::kEs8:
      break;
  }
  rapidjson::StringBuffer buf;
  Writer w(buf);
  w.StartObject();
  w.Key("name");
  WriteStr(w, options_.node_name);
  w.Key("cluster_name");
  WriteStr(w, options_.cluster_name);
  w.Key("cluster_uuid");
  WriteStr(w, store_->cluster_uuid());
  w.Key("version");
  w.StartObject();
  if (shape.opensearch) {
    w.Key("distribution");
    w.String("opensearch");
  }
  w.Key("number");
  w.String(shape.number);
  if (!shape.opensearch) {
    w.Key("build_flavor");
    w.String("default");
  }
  w.Key("build_type");
  w.String("tar");
  w.Key("build_hash");
  w.String("0000000000000000000000000000000000000000");
  w.Key("build_date");
  w.String("2023-11-04T10:04:57.184859352Z");
  w.Key("build_snapshot");
  w.Bool(false);
  w.Key("lucene_version");
  w.String(shape.lucene);
  w.Key("minimum_wire_compatibility_version");
  w.String(shape.wire);
  w.Key("minimum_index_compatibility_version");
  w.String(shape.index);
  w.EndObject();
  w.Key("tagline");
  w.String(shape.opensearch ? "The OpenSearch Project: https://opensearch.org/"
                            : "You Know, for Search");
  w.EndObject();
  return JsonReply(200, Done(w, buf));
}

Reply Api::CatIndices(const httplib::Request& req, const std::string& expr) {
  if (auto e =
          CheckParams(req, {"format", "h", "s", "v", "bytes", "pri", "health", "expand_wildcards",
                            "help", "local", "include_unloaded_segments", "time"})) {
    return ErrorReply(*e);
  }
  auto indices = store_->Resolve(expr, {});
  if (!indices.ok()) return ErrorReply(indices.error());
  static const std::vector<std::string> kDefault = {
      "health",     "status",       "index",      "uuid",           "pri",         "rep",
      "docs.count", "docs.deleted", "store.size", "pri.store.size", "dataset.size"};
  std::vector<std::string> cols = kDefault;
  if (req.has_param("h")) cols = absl::StrSplit(req.get_param_value("h"), ',', absl::SkipEmpty());
  std::string bytes_unit = req.get_param_value("bytes");
  auto size_text = [&](uint64_t b) {
    if (bytes_unit.empty()) return HumanBytes(b);
    static const std::map<std::string, uint64_t> kUnits = {
        {"b", 1}, {"kb", 1024}, {"mb", 1024 * 1024}, {"gb", 1024ull * 1024 * 1024}};
    auto it = kUnits.find(bytes_unit);
    return std::to_string(b / (it == kUnits.end() ? 1 : it->second));
  };
  std::vector<std::map<std::string, std::string>> rows;
  for (const auto& idx : indices.value()) {
    std::map<std::string, std::string> row;
    row["health"] = idx.settings->replicas > 0 ? "yellow" : "green";
    row["status"] = "open";
    row["index"] = row["i"] = idx.name;
    row["uuid"] = row["id"] = idx.uuid;
    row["pri"] = row["p"] = std::to_string(idx.settings->shards);
    row["rep"] = row["r"] = std::to_string(idx.settings->replicas);
    row["docs.count"] = row["dc"] = std::to_string(idx.docs);
    row["docs.deleted"] = row["dd"] = std::string(1, '0');
    row["store.size"] = row["ss"] = size_text(idx.bytes);
    row["pri.store.size"] = size_text(idx.bytes);
    row["dataset.size"] = size_text(idx.bytes);
    row["creation.date"] = row["cd"] = std::to_string(idx.creation_date);
    row["health"] = row["h"] = row["health"];
    rows.push_back(std::move(row));
  }
  if (req.has_param("health")) {
    std::string h = req.get_param_value("health");
    rows.erase(std::remove_if(rows.begin(), rows.end(), [&](auto& r) { return r["health"] != h; }),
               rows.end());
  }
  if (req.has_param("s")) {
    std::vector<std::string> keys =
        absl::StrSplit(req.get_param_value("s"), ',', absl::SkipEmpty());
    std::stable_sort(rows.begin(), rows.end(), [&](auto& a, auto& b) {
      for (std::string key : keys) {
        bool desc = false;
        if (absl::EndsWith(key, ":desc")) {
          desc = true;
          key = key.substr(0, key.size() - 5);
        } else if (absl::EndsWith(key, ":asc")) {
          key = key.substr(0, key.size() - 4);
        }
        auto get = [&](const std::map<std::string, std::string>& row) {
          auto it = row.find(key);
          return it == row.end() ? std::string() : it->second;
        };
        const std::string x = get(a);
        const std::string y = get(b);
        int64_t nx, ny;
        int c;
        if (absl::SimpleAtoi(x, &nx) && absl::SimpleAtoi(y, &ny)) {
          c = nx < ny ? -1 : nx > ny ? 1 : 0;
        } else {
          c = x.compare(y);
        }
        if (c != 0) return desc ? c > 0 : c < 0;
      }
      return false;
    });
  }
  if (req.get_param_value("format") == "json") {
    rapidjson::StringBuffer buf;
    Writer w(buf);
    w.StartArray();
    for (auto& row : rows) {
      w.StartObject();
      for (const auto& c : cols) {
        WriteKey(w, c);
        auto it = row.find(c);
        if (it == row.end()) {
          w.Null();
        } else {
          WriteStr(w, it->second);
        }
      }
      w.EndObject();
    }
    w.EndArray();
    return JsonReply(200, Done(w, buf));
  }
  // Text table, columns padded like ES's.
  std::vector<std::vector<std::string>> table;
  if (req.has_param("v")) table.push_back(cols);
  for (auto& row : rows) {
    std::vector<std::string> line;
    for (const auto& c : cols) line.push_back(row.count(c) ? row[c] : "");
    table.push_back(std::move(line));
  }
  std::vector<size_t> width(cols.size(), 0);
  for (const auto& line : table) {
    for (size_t i = 0; i < line.size(); ++i) width[i] = std::max(width[i], line[i].size());
  }
  std::string out;
  for (const auto& line : table) {
    for (size_t i = 0; i < line.size(); ++i) {
      out += line[i];
      if (i + 1 < line.size()) out += std::string(width[i] - line[i].size() + 1, ' ');
    }
    out += "\n";
  }
  Reply r;
  r.status = 200;
  r.body = out;
  r.content_type = "text/plain; charset=UTF-8";  // small: compression is fine
  return r;
}

Reply Api::ClusterHealth(const httplib::Request& req, const std::string& expr) {
  if (auto e = CheckParams(req, {"wait_for_status", "wait_for_nodes", "wait_for_events",
                                 "wait_for_no_relocating_shards", "wait_for_no_initializing_shards",
                                 "wait_for_active_shards", "level", "local", "expand_wildcards"})) {
    return ErrorReply(*e);
  }
  auto indices = store_->Resolve(expr, {});
  if (!indices.ok()) return ErrorReply(indices.error());
  int primaries = 0, unassigned = 0;
  for (const auto& idx : indices.value()) {
    primaries += idx.settings->shards;
    unassigned += idx.settings->shards * idx.settings->replicas;
  }
  rapidjson::StringBuffer buf;
  Writer w(buf);
  w.StartObject();
  w.Key("cluster_name");
  WriteStr(w, options_.cluster_name);
  w.Key("status");
  w.String(unassigned > 0 ? "yellow" : "green");
  w.Key("timed_out");
  w.Bool(false);
  w.Key("number_of_nodes");
  w.Int(1);
  w.Key("number_of_data_nodes");
  w.Int(1);
  w.Key("active_primary_shards");
  w.Int(primaries);
  w.Key("active_shards");
  w.Int(primaries);
  w.Key("relocating_shards");
  w.Int(0);
  w.Key("initializing_shards");
  w.Int(0);
  w.Key("unassigned_shards");
  w.Int(unassigned);
  w.Key("delayed_unassigned_shards");
  w.Int(0);
  w.Key("number_of_pending_tasks");
  w.Int(0);
  w.Key("number_of_in_flight_fetch");
  w.Int(0);
  w.Key("task_max_waiting_in_queue_millis");
  w.Int(0);
  w.Key("active_shards_percent_as_number");
  w.Double(primaries + unassigned == 0 ? 100.0 : 100.0 * primaries / (primaries + unassigned));
  w.EndObject();
  return JsonReply(200, Done(w, buf));
}

}  // namespace rtdw::eslite
