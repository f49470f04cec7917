// ES access over the ES connector (connectors/es/es_client.h).
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "absl/strings/str_cat.h"
#include "connectors/es/bulk.h"
#include "connectors/es/dau_reader.h"
#include "connectors/es/es_client.h"
#include "connectors/es/es_journal_sink.h"
#include "connectors/es/templates.h"
#include "core/status_util.h"
#include "tools/rtdw/es_access.h"

namespace rtdw {
namespace {

class EsAccessImpl : public EsAccess {
 public:
  EsAccessImpl(std::unique_ptr<EsClient> client, std::chrono::milliseconds timeout)
      : client_(std::move(client)),
        sink_(client_.get(), EsJournalSinkOptions{timeout, nullptr, {}}) {}

  JournalSink& sink() override { return sink_; }

  absl::Status InstallTemplates(std::string_view dau_prefix,
                                std::string_view order_wide_prefix) override {
    return InstallIndexTemplates(*client_, dau_prefix, order_wide_prefix);
  }

  std::unique_ptr<DauDocumentReader> DauReader(std::string_view index) override {
    EsDauReaderOptions o;
    o.index = std::string(index);
    return std::make_unique<EsDauDocumentReader>(client_.get(), std::move(o));
  }

 private:
  std::unique_ptr<EsClient> client_;
  EsJournalSink sink_;
};

}  // namespace

bool EsConnectorBuiltIn() { return true; }

absl::StatusOr<std::unique_ptr<EsAccess>> ConnectEs(const EsSettings& settings) {
  EsClientOptions o;
  o.urls = settings.urls;
  o.user = settings.user;
  o.password = settings.password;
  o.api_key = settings.api_key;
  o.ca_file = settings.ca_file;
  o.verify_tls = settings.verify_tls;
  o.bulk_max_bytes = static_cast<size_t>(settings.bulk_max_bytes);
  o.max_response_bytes = static_cast<size_t>(settings.max_response_mb) << 20;
  o.max_bulks_in_flight = 2;
  o.warn = [](std::string_view m) {
    std::fprintf(stderr, "rtdw: es: %.*s\n", static_cast<int>(m.size()), m.data());
  };
  RTDW_ASSIGN_OR_RETURN(std::unique_ptr<EsClient> client, EsClient::Create(o));
  return std::unique_ptr<EsAccess>(new EsAccessImpl(std::move(client), settings.delivery_timeout));
}

}  // namespace rtdw
