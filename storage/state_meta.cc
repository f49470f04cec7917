// The state store's `meta` family: the guards checked at open (schema version, job, the settings
// fingerprint, the seq counter), raw meta access and the fingerprint commands.
#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_join.h"
#include "storage/state_store.h"
#include "storage/state_store_internal.h"

namespace rtdw {

using state_internal::DecodeSeqKey;
using state_internal::FromRocks;
using state_internal::NowMs;
using state_internal::ScanPrefix;
using state_internal::View;

absl::Status StateStore::InitMeta(const StateStoreOptions& options, bool create) {
  RTDW_ASSIGN_OR_RETURN(std::optional<std::string> version, GetMeta(kMetaSchemaVersion));
  if (version) {
    int v = 0;
    if (version->empty() || version->size() > 9 ||
        !std::all_of(version->begin(), version->end(),
                     [](char c) { return c >= '0' && c <= '9'; })) {
      return absl::DataLossError(absl::StrCat("state store ", path_, ": meta schema_version \"",
                                              *version, "\" is not a number"));
    }
    v = std::stoi(*version);
    if (v > kStateSchemaVersion) {
      return absl::FailedPreconditionError(absl::StrCat(
          "state store ", path_, " has schema version ", v, ", newer than this rtdw understands (",
          kStateSchemaVersion, "): run a newer rtdw, or restore a backup made by this version"));
    }
    schema_version_ = v;
  }
  RTDW_ASSIGN_OR_RETURN(std::optional<std::string> job, GetMeta(kMetaJob));
  if (job && *job != job_) {
    return absl::FailedPreconditionError(
        absl::StrCat("state store ", path_, " belongs to job \"", *job, "\", not \"", job_, "\""));
  }
  RTDW_ASSIGN_OR_RETURN(std::optional<std::string> fingerprint, GetMeta(kMetaTopicFingerprint));
  std::string merged_fingerprint;
  if (!options.topic_fingerprint.empty()) {
    RTDW_ASSIGN_OR_RETURN(merged_fingerprint,
                          MergedFingerprint(fingerprint.value_or(""), options.topic_fingerprint));
  }
  RTDW_ASSIGN_OR_RETURN(std::optional<std::string> clean, GetMeta(kMetaCleanShutdown));
  if (clean) previous_shutdown_clean_ = (*clean == "true");

  // The next seq: the stored counter, but never below what the keys show.
  uint64_t next = 1;
  RTDW_ASSIGN_OR_RETURN(std::optional<std::string> counter, GetMeta(kMetaNextSeq));
  if (counter && counter->size() == 8) next = std::max(next, state_keys::GetBE64(counter->data()));
  for (auto name : {kCfJournal, kCfDeadLetter}) {
    std::unique_ptr<rocksdb::Iterator> it(
        rocks_->db->NewIterator(state_internal::TotalOrder(), cf(name)));
    // The last seq key: the dead-letter index (keys from 0xFF on) sorts after every one.
    it->SeekForPrev(std::string(1, state_keys::kDeadLetterIndexTag));
    if (it->Valid()) {
      if (auto seq = DecodeSeqKey(View(it->key()))) next = std::max(next, *seq + 1);
    }
    if (!it->status().ok()) return FromRocks(it->status(), absl::StrCat("read ", path_));
  }
  {
    absl::MutexLock lock(&seq_mu_);
    next_seq_ = next;
  }

  if (read_only_) return absl::OkStatus();
  rocksdb::WriteBatch wb;
  auto put = [&](std::string_view k, std::string_view v) {
    wb.Put(cf(kCfMeta), rocksdb::Slice(k.data(), k.size()), rocksdb::Slice(v.data(), v.size()))
        .PermitUncheckedError();
  };
  if (!version) put(kMetaSchemaVersion, absl::StrCat(kStateSchemaVersion));
  if (!job) put(kMetaJob, job_);
  if (!merged_fingerprint.empty() && merged_fingerprint != fingerprint.value_or("")) {
    put(kMetaTopicFingerprint, merged_fingerprint);
  }
  if (create || !version) put(kMetaCreatedMs, absl::StrCat(NowMs()));
  if (track_shutdown_) {
    put(kMetaLastOpenMs, absl::StrCat(NowMs()));
    put(kMetaCleanShutdown, "false");
  }
  if (wb.Count() > 0) {
    rocksdb::WriteOptions wo;
    wo.sync = true;
    rocksdb::Status s = rocks_->db->Write(wo, &wb);
    if (!s.ok()) return FromRocks(s, absl::StrCat("write meta of ", path_));
  }
  return IndexDeadLetters();
}

// ---------------------------------------------------------------------------------------------
// Meta

absl::StatusOr<std::optional<std::string>> StateStore::GetMeta(std::string_view name) const {
  std::string v;
  rocksdb::Status s = rocks_->db->Get(rocksdb::ReadOptions(), cf(kCfMeta),
                                      rocksdb::Slice(name.data(), name.size()), &v);
  if (s.IsNotFound()) return std::optional<std::string>();
  if (!s.ok()) return FromRocks(s, absl::StrCat("read meta of ", path_));
  return std::optional<std::string>(std::move(v));
}

absl::Status StateStore::SetMeta(std::string_view name, std::string_view value) {
  RTDW_RETURN_IF_ERROR(CheckWritable());
  rocksdb::WriteOptions wo;
  wo.sync = true;
  rocksdb::Status s = rocks_->db->Put(wo, cf(kCfMeta), rocksdb::Slice(name.data(), name.size()),
                                      rocksdb::Slice(value.data(), value.size()));
  if (!s.ok()) return FromRocks(s, absl::StrCat("write meta of ", path_));
  return absl::OkStatus();
}

absl::StatusOr<std::vector<std::pair<std::string, std::string>>> StateStore::ListMeta() const {
  std::vector<std::pair<std::string, std::string>> out;
  RTDW_RETURN_IF_ERROR(ScanPrefix(rocks_->db.get(), cf(kCfMeta), std::string_view(),
                                  [&](std::string_view k, std::string_view v) {
                                    if (k == kMetaNextSeq && v.size() == 8) {
                                      out.emplace_back(std::string(k),
                                                       absl::StrCat(state_keys::GetBE64(v.data())));
                                    } else {
                                      out.emplace_back(std::string(k), std::string(v));
                                    }
                                    return true;
                                  }));
  return out;
}

namespace {

// "<tag> key=value key=value ...": the keyed tokens in order, and the rest (the tag).
struct ParsedFingerprint {
  std::string tag;
  std::vector<std::pair<std::string, std::string>> values;
  const std::string* Find(std::string_view key) const {
    for (const auto& [k, v] : values) {
      if (k == key) return &v;
    }
    return nullptr;
  }
};

ParsedFingerprint ParseFingerprint(std::string_view text) {
  ParsedFingerprint out;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find(' ', pos);
    if (end == std::string_view::npos) end = text.size();
    std::string_view token = text.substr(pos, end - pos);
    pos = end + 1;
    if (token.empty()) continue;
    size_t eq = token.find('=');
    if (eq == std::string_view::npos) {
      if (!out.tag.empty()) out.tag.push_back(' ');
      out.tag.append(token);
    } else {
      out.values.emplace_back(std::string(token.substr(0, eq)), std::string(token.substr(eq + 1)));
    }
  }
  return out;
}

// The config key (or what else) a fingerprint key stands for, and what accepting its change does.
std::pair<std::string, std::string> DescribeFingerprintKey(std::string_view job_view,
                                                           std::string_view key_view) {
  const std::string job(job_view), key(key_view);
  if (absl::StartsWith(key, "partitions.")) {
    return {absl::StrCat("the partition count of topic ", key.substr(11)),
            "de-dup and join state are kept per partition number, and a key may now hash to "
            "another partition: state of the old partitions stays where it was"};
  }
  if (key == "retention_days") {
    return {"dedup.retention_days",
            "the de-dup window follows the new value (a shorter one drops the older days at the "
            "next retention pass)"};
  }
  std::string name = absl::StrCat("jobs.", job, ".", key);
  if (key == "time_zone") {
    return {name,
            "days stored so far (de-dup days, documents already written) keep the old zone's "
            "days; new records get the new zone's"};
  }
  if (key == "index_prefix") {
    return {name,
            "documents go to the new indices while the de-dup state still holds the mids written "
            "under the old prefix (they are not written again): to start de-dup over, `rtdw "
            "backup create`, then move the store aside"};
  }
  if (key == "join_ttl") return {name, "rows waiting in the join expire by the new TTL"};
  if (absl::EndsWith(key, "_topic")) {
    return {name,
            "offsets and state belong to the old topic: set the new topic's offsets with `rtdw "
            "offsets set`, or it starts from kafka.auto_offset_reset"};
  }
  return {name, ""};
}

}  // namespace

absl::StatusOr<std::string> StateStore::MergedFingerprint(std::string_view stored,
                                                          std::string_view current,
                                                          bool replace) const {
  if (stored.empty()) return std::string(current);
  if (stored == current) return std::string(stored);
  ParsedFingerprint old_fp = ParseFingerprint(stored);
  ParsedFingerprint new_fp = ParseFingerprint(current);
  std::vector<std::string> changes;
  auto change = [&](std::string_view key, std::string_view was, std::string_view now) {
    auto [name, effect] = DescribeFingerprintKey(job_, key);
    changes.push_back(absl::StrCat(name, ": stored \"", ToAbsl(was), "\", now \"", ToAbsl(now),
                                   "\"", effect.empty() ? "" : " (accepting: ", effect,
                                   effect.empty() ? "" : ")"));
  };
  for (const auto& [key, value] : new_fp.values) {
    const std::string* was = old_fp.Find(key);
    if (was != nullptr && *was != value && !replace) change(key, *was, value);
  }
  if (old_fp.values.empty() && new_fp.values.empty()) change("fingerprint", stored, current);
  if (!changes.empty()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "the settings the state of job ", job_, " was built under changed (state store ", path_,
        "): ", absl::StrJoin(changes, "; "),
        ". To accept the change, run `rtdw meta reset-fingerprint --job ", job_,
        "` (the store then records the new settings at the next start) and start again"));
  }
  // Keep the stored tag and values (but those replaced), add the keys it did not record yet.
  std::string merged = old_fp.tag;
  for (const auto& [key, value] : old_fp.values) {
    const std::string* now = replace ? new_fp.Find(key) : nullptr;
    absl::StrAppend(&merged, merged.empty() ? "" : " ", key, "=", now ? *now : value);
  }
  for (const auto& [key, value] : new_fp.values) {
    if (old_fp.Find(key) == nullptr) absl::StrAppend(&merged, " ", key, "=", value);
  }
  return merged;
}

absl::Status StateStore::MergeFingerprint(std::string_view values, bool replace) {
  RTDW_RETURN_IF_ERROR(CheckWritable());
  absl::MutexLock lock(&fingerprint_mu_);
  RTDW_ASSIGN_OR_RETURN(std::optional<std::string> stored, GetMeta(kMetaTopicFingerprint));
  RTDW_ASSIGN_OR_RETURN(std::string merged,
                        MergedFingerprint(stored.value_or(""), values, replace));
  if (merged == stored.value_or("")) return absl::OkStatus();
  return SetMeta(kMetaTopicFingerprint, merged);
}

absl::Status StateStore::ResetFingerprint(std::string_view fingerprint) {
  RTDW_RETURN_IF_ERROR(CheckWritable());
  if (fingerprint.empty()) {
    rocksdb::WriteOptions wo;
    wo.sync = true;
    rocksdb::Status s = rocks_->db->Delete(wo, cf(kCfMeta), std::string(kMetaTopicFingerprint));
    if (!s.ok()) return FromRocks(s, absl::StrCat("write meta of ", path_));
    return absl::OkStatus();
  }
  return SetMeta(kMetaTopicFingerprint, fingerprint);
}

}  // namespace rtdw
