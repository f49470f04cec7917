// ES access for a build without the ES connector (connectors/es): every ES command says so.
#include "tools/rtdw/es_access.h"

namespace rtdw {

bool EsConnectorBuiltIn() { return false; }

absl::StatusOr<std::unique_ptr<EsAccess>> ConnectEs(const EsSettings&) {
  return absl::UnimplementedError(
      "this command needs the ES connector (connectors/es, library rtdw_es), and this rtdw was "
      "built without it");
}

}  // namespace rtdw
