#include "tools/es_lite/faults.h"

#include "absl/strings/str_cat.h"

namespace rtdw::eslite {

FaultConfig Faults::config() const {
  absl::MutexLock lock(&mu_);
  return config_;
}

void Faults::Set(const FaultConfig& c) {
  absl::MutexLock lock(&mu_);
  config_ = c;
}

void Faults::Reset() { Set(FaultConfig()); }

std::optional<EsError> Faults::Update(const rapidjson::Value& body) {
  if (!body.IsObject()) return ParsingException("faults body must be a JSON object");
  FaultConfig c = config();
  std::optional<uint64_t> seed;
  for (auto it = body.MemberBegin(); it != body.MemberEnd(); ++it) {
    absl::string_view key = Sv(it->name);
    const auto& v = it->value;
    double* fraction = nullptr;
    if (key == "bulk_item_429_fraction") {
      fraction = &c.bulk_item_429_fraction;
    } else if (key == "request_503_fraction") {
      fraction = &c.request_503_fraction;
    } else if (key == "close_after_read_fraction") {
      fraction = &c.close_after_read_fraction;
    } else if (key == "close_after_write_fraction") {
      fraction = &c.close_after_write_fraction;
    } else if (key == "answer_late_fraction") {
      fraction = &c.answer_late_fraction;
    } else if (key == "answer_late_ms") {
      if (!v.IsInt64() || v.GetInt64() < 0 || v.GetInt64() > 600000) {
        return IllegalArgument("answer_late_ms must be an integer in [0, 600000]");
      }
      c.answer_late_ms = v.GetInt64();
      continue;
    } else if (key == "latency_ms") {
      if (!v.IsInt64() || v.GetInt64() < 0 || v.GetInt64() > 600000) {
        return IllegalArgument("latency_ms must be an integer in [0, 600000]");
      }
      c.latency_ms = v.GetInt64();
      continue;
    } else if (key == "seed") {
      if (!v.IsUint64()) return IllegalArgument("seed must be a non-negative integer");
      seed = v.GetUint64();
      continue;
    } else {
      return IllegalArgument(absl::StrCat("unknown fault [", key, "]"));
    }
    if (!v.IsNumber() || v.GetDouble() < 0 || v.GetDouble() > 1) {
      return IllegalArgument(absl::StrCat(key, " must be a number in [0, 1]"));
    }
    *fraction = v.GetDouble();
  }
  absl::MutexLock lock(&mu_);
  config_ = c;
  if (seed) rng_.seed(*seed);
  return std::nullopt;
}

bool Faults::Roll(double p) {
  if (p <= 0) return false;
  if (p >= 1) return true;
  absl::MutexLock lock(&mu_);
  return std::uniform_real_distribution<double>(0, 1)(rng_) < p;
}

std::string Faults::ToJson() const {
  FaultConfig c = config();
  rapidjson::StringBuffer buf;
  Writer w(buf);
  w.StartObject();
  w.Key("bulk_item_429_fraction");
  w.Double(c.bulk_item_429_fraction);
  w.Key("request_503_fraction");
  w.Double(c.request_503_fraction);
  w.Key("close_after_read_fraction");
  w.Double(c.close_after_read_fraction);
  w.Key("close_after_write_fraction");
  w.Double(c.close_after_write_fraction);
  w.Key("latency_ms");
  w.Int64(c.latency_ms);
  w.Key("answer_late_fraction");
  w.Double(c.answer_late_fraction);
  w.Key("answer_late_ms");
  w.Int64(c.answer_late_ms);
  w.Key("counters");
  w.StartObject();
  w.Key("requests_503");
  w.Uint64(counters_.requests_503.load());
  w.Key("bulk_items_429");
  w.Uint64(counters_.bulk_items_429.load());
  w.Key("closed_after_read");
  w.Uint64(counters_.closed_after_read.load());
  w.Key("closed_after_write");
  w.Uint64(counters_.closed_after_write.load());
  w.Key("answered_late");
  w.Uint64(counters_.answered_late.load());
  w.EndObject();
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize());
}

}  // namespace rtdw::eslite
