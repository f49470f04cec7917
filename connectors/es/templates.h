// The index templates of rtdw's two wide tables, with the mappings of docs/FORMATS.md §4 (DAU)
// and §5 (order-wide). Index prefixes are configurable: a template covers `<prefix>*`.
#ifndef RTDW_CONNECTORS_ES_TEMPLATES_H_
#define RTDW_CONNECTORS_ES_TEMPLATES_H_

#include <string>
#include <string_view>

#include "absl/status/status.h"

namespace rtdw {

class EsClient;

struct IndexTemplateSettings {
  int number_of_shards = 1;
  int number_of_replicas = 1;
  std::string refresh_interval = "1s";
  int priority = 100;  // above ES's built-in templates (which use low priorities)
};

// PUT /_index_template bodies. `index_prefix` is e.g. "gmall_dau_info_" (indices are
// <prefix><yyyy-MM-dd>).
std::string DauIndexTemplate(std::string_view index_prefix,
                             const IndexTemplateSettings& settings = {});
std::string OrderWideIndexTemplate(std::string_view index_prefix,
                                   const IndexTemplateSettings& settings = {});

// The template name used for a prefix: the prefix without trailing '_' or '-' ("gmall_dau_info").
std::string TemplateNameForPrefix(std::string_view index_prefix);

// Installs (creates or replaces, i.e. idempotently) both templates. An empty prefix skips its
// template.
absl::Status InstallIndexTemplates(EsClient& client, std::string_view dau_prefix,
                                   std::string_view order_wide_prefix,
                                   const IndexTemplateSettings& settings = {});

}  // namespace rtdw

#endif  // RTDW_CONNECTORS_ES_TEMPLATES_H_
