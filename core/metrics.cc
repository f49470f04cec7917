#include "core/metrics.h"

#include <cmath>
#include <cstdio>

#include "absl/strings/str_cat.h"

namespace rtdw {
namespace {

std::string EscapeLabel(const std::string& v) {
  std::string out;
  for (char c : v) {
    if (c == '\\' || c == '"') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::string RenderLabels(const Labels& labels, const std::string& extra = "") {
  if (labels.empty() && extra.empty()) return "";
  std::string out = "{";
  bool first = true;
  for (const auto& [k, v] : labels) {
    if (!first) out += ",";
    first = false;
    absl::StrAppend(&out, k, "=\"", EscapeLabel(v), "\"");
  }
  if (!extra.empty()) {
    if (!first) out += ",";
    out += extra;
  }
  out += "}";
  return out;
}

std::string FormatValue(double v) {
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  if (std::isnan(v)) return "NaN";
  if (v == std::floor(v) && std::fabs(v) < 1e15) return absl::StrCat(static_cast<int64_t>(v));
  char buf[64];
  snprintf(buf, sizeof buf, "%.9g", v);
  return buf;
}

}  // namespace

void Gauge::Add(double d) {
  double cur = value_.load(std::memory_order_relaxed);
  while (!value_.compare_exchange_weak(cur, cur + d, std::memory_order_relaxed)) {
  }
}

Histogram::Histogram(std::vector<double> bounds)
    : bounds_(std::move(bounds)), buckets_(new std::atomic<uint64_t>[bounds_.size() + 1]) {
  for (size_t i = 0; i <= bounds_.size(); ++i) buckets_[i] = 0;
}

void Histogram::Observe(double v) {
  size_t i = 0;
  while (i < bounds_.size() && v > bounds_[i]) ++i;
  buckets_[i].fetch_add(1, std::memory_order_relaxed);
  count_.fetch_add(1, std::memory_order_relaxed);
  double cur = sum_.load(std::memory_order_relaxed);
  while (!sum_.compare_exchange_weak(cur, cur + v, std::memory_order_relaxed)) {
  }
}

std::vector<uint64_t> Histogram::CumulativeCounts() const {
  std::vector<uint64_t> out(bounds_.size() + 1);
  uint64_t acc = 0;
  for (size_t i = 0; i <= bounds_.size(); ++i) {
    acc += buckets_[i].load(std::memory_order_relaxed);
    out[i] = acc;
  }
  return out;
}

std::vector<double> MetricsRegistry::LatencyBounds() {
  return {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30};
}

MetricsRegistry::Family* MetricsRegistry::FamilyFor(const std::string& name,
                                                    const std::string& help, Kind kind) {
  auto it = families_.find(name);
  if (it == families_.end()) {
    it = families_.emplace(name, Family{kind, help, {}, {}, {}, {}}).first;
  }
  return &it->second;
}

Counter* MetricsRegistry::GetCounter(const std::string& name, const std::string& help,
                                     const Labels& labels) {
  absl::MutexLock lock(&mu_);
  Family* f = FamilyFor(name, help, Kind::kCounter);
  std::string key = RenderLabels(labels);
  auto& slot = f->counters[key];
  if (!slot) {
    slot = std::make_unique<Counter>();
    f->labels[key] = labels;
  }
  return slot.get();
}

Gauge* MetricsRegistry::GetGauge(const std::string& name, const std::string& help,
                                 const Labels& labels) {
  absl::MutexLock lock(&mu_);
  Family* f = FamilyFor(name, help, Kind::kGauge);
  std::string key = RenderLabels(labels);
  auto& slot = f->gauges[key];
  if (!slot) {
    slot = std::make_unique<Gauge>();
    f->labels[key] = labels;
  }
  return slot.get();
}

Histogram* MetricsRegistry::GetHistogram(const std::string& name, const std::string& help,
                                         const Labels& labels, const std::vector<double>& bounds) {
  absl::MutexLock lock(&mu_);
  Family* f = FamilyFor(name, help, Kind::kHistogram);
  std::string key = RenderLabels(labels);
  auto& slot = f->histograms[key];
  if (!slot) {
    slot = std::make_unique<Histogram>(bounds);
    f->labels[key] = labels;
  }
  return slot.get();
}

std::string MetricsRegistry::RenderPrometheus() const {
  absl::MutexLock lock(&mu_);
  std::string out;
  for (const auto& [name, f] : families_) {
    const char* type = f.kind == Kind::kCounter ? "counter"
                       : f.kind == Kind::kGauge ? "gauge"
                                                : "histogram";
    absl::StrAppend(&out, "# HELP ", name, " ", f.help, "\n# TYPE ", name, " ", type, "\n");
    for (const auto& [key, c] : f.counters) {
      absl::StrAppend(&out, name, key, " ", c->value(), "\n");
    }
    for (const auto& [key, g] : f.gauges) {
      absl::StrAppend(&out, name, key, " ", FormatValue(g->value()), "\n");
    }
    for (const auto& [key, h] : f.histograms) {
      const Labels& labels = f.labels.at(key);
      std::vector<uint64_t> counts = h->CumulativeCounts();
      for (size_t i = 0; i < counts.size(); ++i) {
        std::string le = i < h->bounds().size() ? FormatValue(h->bounds()[i]) : "+Inf";
        absl::StrAppend(&out, name, "_bucket", RenderLabels(labels, "le=\"" + le + "\""), " ",
                        counts[i], "\n");
      }
      absl::StrAppend(&out, name, "_sum", key, " ", FormatValue(h->sum()), "\n");
      absl::StrAppend(&out, name, "_count", key, " ", h->count(), "\n");
    }
  }
  return out;
}

}  // namespace rtdw
