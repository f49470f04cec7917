// The REST API of rtdw-es-lite behind EsLiteServer (internal to tools/es_lite): Api routes one
// request (api_routing.cc) to its handler, one file per part of the ES API:
//   api_documents.cc  _bulk, single-document writes and reads, _mget
//   api_search.cc     _search, _count, _refresh (and _mget's routing) of an index expression
//   api_indices.cc    index create / delete / exists, _settings, _mapping, _index_template
//   api_cluster.cc    GET /, _cat/indices, _cluster/health
// and the reply and parameter helpers they share (api_reply.cc). EsLiteServer (server.cc) is the
// HTTP glue around it: TLS, authentication, media types, connection faults, pretty printing.
//
// An Api is made per request and is not shared between threads; the Store and Faults it calls
// are thread-safe.
#ifndef RTDW_TOOLS_ES_LITE_API_H_
#define RTDW_TOOLS_ES_LITE_API_H_

#include <cstdint>
#include <initializer_list>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "rapidjson/document.h"
#include "rapidjson/stringbuffer.h"
#include "tools/es_lite/json.h"
#include "tools/es_lite/search.h"
#include "tools/es_lite/server.h"
#include "tools/es_lite/store.h"

namespace httplib {
struct Request;
}  // namespace httplib

namespace rtdw::eslite {

using Reply = EsLiteServer::Reply;

// ------------------------------------------------------------ replies and parameters

Reply JsonReply(int status, std::string body);
Reply ErrorReply(const EsError& e);
// {"error": message, "status": status} (ES's answer for requests no handler takes).
Reply SimpleError(int status, const std::string& message);
Reply NoHandler(const httplib::Request& req);
Reply BadMethod(const httplib::Request& req, absl::string_view allowed);
// The text written into `buf` so far.
std::string Done(Writer&, rapidjson::StringBuffer& buf);
bool IsGetOrHead(const httplib::Request& req);
// An error naming the first query parameter that is neither common (pretty, human, ...) nor in
// `allowed`; filter_path is refused as unsupported.
std::optional<EsError> CheckParams(const httplib::Request& req,
                                   std::initializer_list<absl::string_view> allowed);
// A boolean query parameter ("" and "true" are true), `def` when absent.
bool ParamBool(const httplib::Request& req, const std::string& key, bool def);

// ?refresh= of a write (ES's WriteRequest.RefreshPolicy.parse): "" and "true" refresh the touched
// indices before answering, "wait_for" waits for a refresh to show the write.
enum class RefreshPolicy { kNone, kImmediate, kWaitFor };
Result<RefreshPolicy> ParseRefresh(const httplib::Request& req);
// ?version= and ?version_type= of a single-document write, validated as ES does.
std::optional<EsError> ParseVersionParams(const httplib::Request& req, OpType type, WriteOp* op);
// Parses the body as JSON; *present is false for an empty body.
std::optional<EsError> ParseBody(const httplib::Request& req, rapidjson::Document* doc,
                                 bool* present);
void WriteShards(Writer& w, int total, int successful);
// 1536 -> "1.5kb", as _cat's human sizes.
std::string HumanBytes(uint64_t b);
// Writes "index.a.b": "v" settings as nested objects.
void WriteNestedSettings(Writer& w, const std::map<std::string, std::string>& flat);
// Whether document answers carry "_type": "_doc" (ES 6 and 7).
bool HasDocType(Identity id);

// ------------------------------------------------------------ the API

class Api {
 public:
  Api(Store* store, Faults* faults, const ServerOptions& options)
      : store_(store), faults_(faults), options_(options) {}

  // The handler of `req` by method and path (api_routing.cc).
  Reply Route(const httplib::Request& req);

 private:
  // api_routing.cc: POST/PUT/GET/DELETE /_rtdw/faults.
  Reply FaultsApi(const httplib::Request& req);

  // api_cluster.cc
  Reply Info();

  // GET / as the other identities answer it (versions of late releases of each line).
  Reply InfoAs(Identity id);

  Reply CatIndices(const httplib::Request& req, const std::string& expr);

  Reply ClusterHealth(const httplib::Request& req, const std::string& expr);

  // api_documents.cc
  Reply Bulk(const httplib::Request& req, const std::string& default_index);

  // Refreshes (or waits for a refresh of) the indices `results` wrote to. True when it refreshed
  // (ES then marks the successful items "forced_refresh": true).
  bool ApplyRefresh(RefreshPolicy policy, const std::vector<WriteResult>& results);

  // The object of one write outcome (bulk item or single-document answer).
  void WriteItem(Writer& w, const WriteResult& r, bool with_status, bool forced_refresh);

  // One document write; errors (409, 403 blocks, 400 mapping) are the top-level answer, except
  // a delete's not_found, which is a 404 with the item body (as in ES).
  Reply WriteOne(const httplib::Request& req, WriteOp op);

  Reply WriteDoc(const httplib::Request& req, const std::string& index, const std::string& id,
                 OpType type);

  Reply UpdateDoc(const httplib::Request& req, const std::string& index, const std::string& id);

  Reply DeleteDoc(const httplib::Request& req, const std::string& index, const std::string& id);

  void WriteFoundDoc(Writer& w, const IndexInfo& idx, absl::string_view id,
                     const std::optional<DocRecord>& rec, const SourceFilter& filter);

  Reply GetDoc(const httplib::Request& req, const std::string& index, const std::string& id,
               bool source_only);

  Reply Mget(const httplib::Request& req, const std::string& url_index);

  // api_search.cc
  Reply IndexAction(const httplib::Request& req, const std::string& expr, const std::string& what);

  // api_indices.cc
  Reply IndexCrud(const httplib::Request& req, const std::string& name);

  // PUT /<indices>/_settings: {"index":{...}}, {"settings":{...}} or flat keys.
  Reply PutSettings(const httplib::Request& req, const std::string& expr);

  Reply GetIndex(const httplib::Request& req, const std::string& expr, const std::string& part);

  Reply IndexTemplate(const httplib::Request& req, const std::string& name);

  Store* store_;
  Faults* faults_;
  const ServerOptions& options_;
};

}  // namespace rtdw::eslite

#endif  // RTDW_TOOLS_ES_LITE_API_H_
