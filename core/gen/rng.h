// A small deterministic random number generator for rtdw-gen: the same seed gives the same
// sequence on every platform and standard library (no std:: distributions, whose output is
// implementation-defined).
#ifndef RTDW_CORE_GEN_RNG_H_
#define RTDW_CORE_GEN_RNG_H_

#include <cmath>
#include <cstddef>
#include <cstdint>

namespace rtdw::gen {

// SplitMix64 step: a good 64-bit mixer, used to seed and to derive sub-seeds.
inline uint64_t SplitMix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}
// A sub-seed for stream `a`, item `b` of seed `seed`.
inline uint64_t Mix(uint64_t seed, uint64_t a, uint64_t b = 0) {
  return SplitMix(SplitMix(seed ^ SplitMix(a)) ^ SplitMix(b + 0x632be59bd9b4e019ull));
}

// xoshiro256**.
class Rng {
 public:
  explicit Rng(uint64_t seed) {
    uint64_t x = seed;
    for (auto& w : s_) w = x = SplitMix(x);
  }
  uint64_t Next() {
    const uint64_t result = Rotl(s_[1] * 5, 7) * 9;
    const uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = Rotl(s_[3], 45);
    return result;
  }
  // Uniform in [0, n); 0 when n == 0.
  uint64_t Uniform(uint64_t n) {
    if (n == 0) return 0;
    return static_cast<uint64_t>((static_cast<unsigned __int128>(Next()) * n) >> 64);
  }
  // Uniform in [lo, hi] (inclusive).
  int64_t Range(int64_t lo, int64_t hi) {
    return hi <= lo ? lo : lo + static_cast<int64_t>(Uniform(static_cast<uint64_t>(hi - lo) + 1));
  }
  // Uniform in [0, 1).
  double Real() { return static_cast<double>(Next() >> 11) * 0x1.0p-53; }
  bool Chance(double p) { return Real() < p; }
  // Exponential with the given mean.
  double Exponential(double mean) { return -mean * std::log1p(-Real()); }
  // 1 + a geometric count with mean `mean` (>= 1).
  int64_t Geometric(double mean) {
    if (mean <= 1) return 1;
    double p = 1.0 / mean;
    return 1 + static_cast<int64_t>(std::floor(std::log1p(-Real()) / std::log1p(-p)));
  }
  template <typename T, size_t N>
  const T& Pick(const T (&items)[N]) {
    return items[Uniform(N)];
  }
  // An index into `weights` (non-negative, not all zero) drawn by weight.
  template <size_t N>
  size_t Weighted(const double (&weights)[N]) {
    double total = 0;
    for (double w : weights) total += w;
    double r = Real() * total;
    for (size_t i = 0; i < N; ++i) {
      if (r < weights[i]) return i;
      r -= weights[i];
    }
    return N - 1;
  }

 private:
  static uint64_t Rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  uint64_t s_[4];
};

// Relative traffic per local hour of day (an app's daily curve: quiet at night, peaks at noon and
// in the evening).
inline constexpr double kHourWeights[24] = {3,  2, 1, 1, 1, 1, 2,  4,  6,  8,  9, 10,
                                            10, 9, 8, 8, 8, 9, 10, 12, 13, 12, 9, 5};

}  // namespace rtdw::gen

#endif  // RTDW_CORE_GEN_RNG_H_
