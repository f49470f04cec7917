// rtdw-gen: a deterministic generator of a realistic day of app logs (`logs`) or Maxwell change
// records (`db`), written as NDJSON to a file / stdout and/or produced to Kafka, with a truth file
// for tests (docs/GEN.md).
//
// Exit codes: 0 done, 1 failed (I/O, Kafka), 2 usage.
#include <chrono>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>

#include "CLI/CLI.hpp"
#include "absl/time/civil_time.h"
#include "absl/time/time.h"
#include "connectors/kafka/producer.h"
#include "core/event_time.h"
#include "core/gen/db_gen.h"
#include "core/gen/log_gen.h"
#include "core/status_util.h"

namespace {

struct Common {
  std::string day;
  std::string tz = "Asia/Shanghai";
  uint64_t seed = 1;
  std::string out;
  bool keys = false;
  std::string brokers;
  std::string topic;
  std::string truth;
  std::string compression = "lz4";
  bool quiet = false;
};

void AddCommon(CLI::App* cmd, Common* c, const char* default_topic) {
  c->topic = default_topic;
  cmd->add_option("--day", c->day, "the day, yyyy-MM-dd (event times fall in it)")->required();
  cmd->add_option("--tz", c->tz, "time zone of the day")->capture_default_str();
  cmd->add_option("--seed", c->seed, "random seed: the same seed gives the same bytes")
      ->capture_default_str();
  cmd->add_option("--out", c->out,
                  "NDJSON output file, '-' for stdout (default: stdout unless --brokers)");
  cmd->add_flag("--keys", c->keys, "write 'key<TAB>value' lines (kcat -K'\\t') instead of values");
  cmd->add_option("--brokers", c->brokers, "produce to this Kafka cluster (host:port,...)");
  cmd->add_option("--topic", c->topic, "topic to produce to")->capture_default_str();
  cmd->add_option("--compression", c->compression, "producer compression")->capture_default_str();
  cmd->add_option("--truth", c->truth, "write the truth JSON here (docs/GEN.md)");
  cmd->add_flag("--quiet", c->quiet, "no summary line on stderr");
}

class Output {
 public:
  ~Output() {
    if (file_ && file_ != stdout) std::fclose(file_);
  }
  // Returns an error message, "" when fine.
  std::string Open(const Common& c) {
    if (!c.out.empty() || c.brokers.empty()) {
      if (c.out.empty() || c.out == "-") {
        file_ = stdout;
      } else {
        file_ = std::fopen(c.out.c_str(), "wb");
        if (!file_) return "cannot open " + c.out + " for writing";
      }
      buffer_.reset(new char[1 << 20]);
      std::setvbuf(file_, buffer_.get(), _IOFBF, 1 << 20);
    }
    if (!c.brokers.empty()) {
      rtdw::KafkaProducerOptions po;
      po.brokers = c.brokers;
      po.compression = c.compression;
      po.linger_ms = 20;
      auto p = rtdw::KafkaProducer::Create(po);
      if (!p.ok()) return "kafka: " + rtdw::StatusText(p.status());
      producer_ = std::move(*p);
      topic_ = c.topic;
    }
    keys_ = c.keys;
    return "";
  }
  std::string Write(const std::string& key, const std::string& value) {
    if (file_) {
      if (keys_) {
        std::fwrite(key.data(), 1, key.size(), file_);
        std::fputc('\t', file_);
      }
      std::fwrite(value.data(), 1, value.size(), file_);
      std::fputc('\n', file_);
    }
    if (producer_) {
      absl::Status s = producer_->Produce(topic_, key, value);
      if (!s.ok()) return "kafka produce: " + rtdw::StatusText(s);
    }
    return "";
  }
  std::string Close() {
    if (file_) {
      if (std::fflush(file_) != 0 || std::ferror(file_)) return "write failed";
      if (file_ != stdout) {
        if (std::fclose(file_) != 0) return "write failed (close)";
      }
      file_ = nullptr;
    }
    if (producer_) {
      absl::Status s = producer_->Flush(std::chrono::minutes(5));
      if (!s.ok()) return "kafka flush: " + rtdw::StatusText(s);
    }
    return "";
  }

 private:
  std::FILE* file_ = nullptr;
  std::unique_ptr<char[]> buffer_;
  std::unique_ptr<rtdw::KafkaProducer> producer_;
  std::string topic_;
  bool keys_ = false;
};

bool WriteFile(const std::string& path, const std::string& text) {
  std::string tmp = path + ".tmp";
  std::FILE* f = std::fopen(tmp.c_str(), "wb");
  if (!f) return false;
  bool ok =
      std::fwrite(text.data(), 1, text.size(), f) == text.size() && std::fputc('\n', f) != EOF;
  ok = (std::fclose(f) == 0) && ok;
  return ok && std::rename(tmp.c_str(), path.c_str()) == 0;
}

// Day and zone; prints the problem and returns false when invalid.
bool ParseDayZone(const Common& c, absl::CivilDay* day, absl::TimeZone* tz) {
  auto d = rtdw::ParseCivilDay(c.day);
  if (!d.ok()) {
    std::fprintf(stderr, "rtdw-gen: --day: %s\n", rtdw::StatusText(d.status()).c_str());
    return false;
  }
  *day = *d;
  if (!absl::LoadTimeZone(c.tz, tz)) {
    std::fprintf(stderr, "rtdw-gen: --tz: unknown time zone '%s'\n", c.tz.c_str());
    return false;
  }
  return true;
}

template <typename Gen>
int Run(const Common& c, Gen& gen, bool with_key) {
  Output out;
  if (std::string e = out.Open(c); !e.empty()) {
    std::fprintf(stderr, "rtdw-gen: %s\n", e.c_str());
    return 1;
  }
  auto start = std::chrono::steady_clock::now();
  std::string key, value;
  uint64_t n = 0;
  for (;;) {
    if (!gen.Next(&key, &value)) break;
    if (!with_key) key.clear();
    if (std::string e = out.Write(key, value); !e.empty()) {
      std::fprintf(stderr, "rtdw-gen: %s\n", e.c_str());
      return 1;
    }
    ++n;
  }
  if (std::string e = out.Close(); !e.empty()) {
    std::fprintf(stderr, "rtdw-gen: %s\n", e.c_str());
    return 1;
  }
  if (!c.truth.empty() && !WriteFile(c.truth, gen.TruthJson())) {
    std::fprintf(stderr, "rtdw-gen: cannot write the truth file %s\n", c.truth.c_str());
    return 1;
  }
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (!c.quiet) {
    std::fprintf(
        stderr, "rtdw-gen: %llu records in %.2f s%s%s\n", static_cast<unsigned long long>(n), secs,
        c.brokers.empty() ? "" : ", produced to ", c.brokers.empty() ? "" : c.topic.c_str());
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"rtdw-gen: a deterministic day of app logs or Maxwell change records"};
  app.require_subcommand(1);

  Common lc;
  rtdw::gen::LogGenOptions lo;
  CLI::App* logs = app.add_subcommand("logs", "app logs for ODS_BASE_LOG (FORMATS.md §1)");
  AddCommon(logs, &lc, "ODS_BASE_LOG");
  logs->add_option("--mids", lo.mids, "devices")->capture_default_str();
  logs->add_option("--users", lo.users, "users (uid 1..U) who log in on the devices")
      ->capture_default_str();
  logs->add_option("--events", lo.events, "records to generate")->capture_default_str();
  logs->add_option("--days", lo.days, "days of visits from --day on")->capture_default_str();
  logs->add_option("--disorder", lo.disorder,
                   "share of devices whose visits arrive a day late, later visits first")
      ->capture_default_str();
  logs->add_option("--clock-skew", lo.clock_skew,
                   "share of devices whose clock is off by up to 20 h (fast or slow)")
      ->capture_default_str();
  logs->add_option("--error-share", lo.error_share, "share of records carrying err")
      ->capture_default_str();
  logs->add_option("--malformed-share", lo.malformed_share,
                   "share of records broken on purpose (log-split dead letters)")
      ->capture_default_str();
  std::string log_key = "none";
  logs->add_option("--key", log_key, "Kafka key of the records: none (as apps send) or mid")
      ->check(CLI::IsMember({"none", "mid"}))
      ->capture_default_str();

  Common dc;
  rtdw::gen::DbGenOptions dbo;
  CLI::App* db = app.add_subcommand("db", "Maxwell change records for ODS_BASE_DB (FORMATS.md §3)");
  AddCommon(db, &dc, "ODS_BASE_DB");
  db->add_option("--users", dbo.users, "user_info rows (bootstrapped)")->capture_default_str();
  db->add_option("--orders", dbo.orders, "orders during the day")->capture_default_str();
  db->add_option("--provinces", dbo.provinces, "base_province rows (bootstrapped)")
      ->capture_default_str();
  db->add_option("--days", dbo.days, "days of orders from --day on (catch-up tests)")
      ->capture_default_str();
  db->add_option("--detail-lag-days", dbo.detail_lag_days,
                 "order_detail rows arrive this many days after their orders")
      ->capture_default_str();
  db->add_flag("--dims-last", dbo.dims_last,
               "the dimension bootstraps come after every fact (with the rows' final values)");
  db->add_option("--user-update-share", dbo.user_update_share,
                 "share of users updated during the day")
      ->capture_default_str();

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int code = app.exit(e);
    return e.get_exit_code() == 0 ? code : 2;
  }

  if (logs->parsed()) {
    if (!ParseDayZone(lc, &lo.day, &lo.tz)) return 2;
    lo.time_zone = lc.tz;
    lo.seed = lc.seed;
    if (absl::Status s = rtdw::gen::ValidateLogGenOptions(lo); !s.ok()) {
      std::fprintf(stderr, "rtdw-gen: %s\n", std::string(s.message()).c_str());
      return 2;
    }
    rtdw::gen::LogGenerator gen(lo);
    return Run(lc, gen, /*with_key=*/log_key == "mid");
  }
  if (!ParseDayZone(dc, &dbo.day, &dbo.tz)) return 2;
  dbo.time_zone = dc.tz;
  dbo.seed = dc.seed;
  if (absl::Status s = rtdw::gen::ValidateDbGenOptions(dbo); !s.ok()) {
    std::fprintf(stderr, "rtdw-gen: %s\n", std::string(s.message()).c_str());
    return 2;
  }
  rtdw::gen::DbGenerator gen(dbo);
  return Run(dc, gen, /*with_key=*/true);
}
