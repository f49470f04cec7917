#!/usr/bin/python3
"""rtdw-es-lite used the way the official Python client (Debian's python3-elasticsearch) uses
Elasticsearch: product check, index templates, helpers.bulk, count, search with sort +
search_after paging, aggregations, get/mget and error mapping; and the strict parts (refresh,
external versions, settings and write blocks, empty _id, ES 8's refusal of _id sorts).

Usage: python_client_test.py PATH/TO/rtdw-es-lite
Runs the checks twice: with plain JSON headers and with ELASTIC_CLIENT_APIVERSIONING=1
(application/vnd.elasticsearch+json; compatible-with=7). Exit 0 on success.
"""
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time


def start_es_lite(binary, data_dir):
    proc = subprocess.Popen([binary, "--listen", "127.0.0.1:0", "--data-dir", data_dir],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    url = proc.stdout.readline().strip()
    if not url.startswith("http://"):
        proc.kill()
        raise SystemExit("rtdw-es-lite did not print its URL (got %r)" % url)
    return proc, url


def check(cond, what):
    if not cond:
        raise AssertionError(what)
    print("ok   " + what)


def run_checks(url, prefix):
    import elasticsearch
    from elasticsearch import Elasticsearch, helpers

    es = Elasticsearch([url])
    info = es.info()
    check(info["version"]["number"].startswith("8."), "info(): version 8.x (product check passed)")

    es.indices.put_index_template(name=prefix + "tpl", body={
        "index_patterns": [prefix + "*"],
        "priority": 200,
        "template": {
            "settings": {"number_of_shards": 1, "number_of_replicas": 0},
            "mappings": {"properties": {
                "mid": {"type": "keyword"},
                "ch": {"type": "keyword"},
                "during_time": {"type": "long"},
                "ts": {"type": "date", "format": "epoch_millis"},
            }},
        },
    })
    tpl = es.indices.get_index_template(name=prefix + "tpl")
    check(tpl["index_templates"][0]["name"] == prefix + "tpl", "get_index_template")

    n = 1234
    base_ts = 1764036000000

    def actions():
        for i in range(n):
            day = "2025-11-%02d" % (25 + i % 3)
            yield {"_index": prefix + day, "_id": "mid_%05d" % i,
                   "_source": {"mid": "mid_%05d" % i, "ch": ["xiaomi", "huawei", "oppo"][i % 3],
                               "during_time": i * 7, "ts": base_ts + i * 60000}}

    ok, errors = helpers.bulk(es, actions(), chunk_size=200)
    check(ok == n and not errors, "helpers.bulk: %d documents acknowledged" % n)

    es.indices.refresh(index=prefix + "*")
    check(es.count(index=prefix + "*")["count"] == n, "count over a wildcard pattern")
    check(es.count(index=prefix + "*", body={"query": {"term": {"ch": "huawei"}}})["count"]
          == len([i for i in range(n) if i % 3 == 1]), "count with a term query")
    mapping = es.indices.get_mapping(index=prefix + "2025-11-25")
    props = mapping[prefix + "2025-11-25"]["mappings"]["properties"]
    check(props["during_time"]["type"] == "long", "template applied on auto-create")

    # search_after paging through everything, sorted by a field then _id.
    seen = []
    after = None
    pages = 0
    while True:
        body = {"size": 100, "sort": [{"during_time": "desc"}, {"mid": "asc"}],
                "query": {"range": {"during_time": {"gte": 0}}}, "_source": ["mid", "during_time"]}
        if after is not None:
            body["search_after"] = after
        res = es.search(index=prefix + "*", body=body)
        hits = res["hits"]["hits"]
        if not hits:
            break
        pages += 1
        for h in hits:
            seen.append(h["_source"]["mid"])
            check_src = set(h["_source"].keys()) == {"mid", "during_time"}
            if not check_src:
                raise AssertionError("_source filtering: %r" % h["_source"])
        after = hits[-1]["sort"]
    check(len(seen) == n and len(set(seen)) == n, "search_after paging: every document once (%d pages)" % pages)
    check(seen == ["mid_%05d" % i for i in reversed(range(n))], "search_after paging: sort order")

    res = es.search(index=prefix + "*", body={
        "size": 0,
        "aggs": {"by_ch": {"terms": {"field": "ch", "size": 2}},
                 "per_hour": {"date_histogram": {"field": "ts", "calendar_interval": "hour"}},
                 "total": {"value_count": {"field": "mid"}}}})
    buckets = res["aggregations"]["by_ch"]["buckets"]
    check(len(buckets) == 2 and buckets[0]["doc_count"] >= buckets[1]["doc_count"],
          "terms aggregation with size")
    check(sum(b["doc_count"] for b in res["aggregations"]["per_hour"]["buckets"]) == n,
          "date_histogram by hour covers every document")
    check(res["aggregations"]["total"]["value"] == n, "value_count")

    doc = es.get(index=prefix + "2025-11-25", id="mid_00000")
    check(doc["found"] and doc["_source"]["mid"] == "mid_00000", "get")
    docs = es.mget(body={"docs": [{"_index": prefix + "2025-11-26", "_id": "mid_00001"},
                                  {"_index": prefix + "2025-11-26", "_id": "nope"}]})["docs"]
    check(docs[0]["found"] and not docs[1]["found"], "mget")

    try:
        es.index(index=prefix + "2025-11-25", id="bad", body={"mid": "bad", "during_time": "abc"})
        check(False, "a string into a long field is refused")
    except elasticsearch.exceptions.RequestError as e:
        check(e.status_code == 400 and e.error == "mapper_parsing_exception",
              "a string into a long field is refused (400 mapper_parsing_exception)")
    ok, errors = helpers.bulk(es, [{"_index": prefix + "2025-11-25", "_id": "bad2",
                                    "_source": {"during_time": "xyz"}}],
                              raise_on_error=False)
    check(ok == 0 and len(errors) == 1 and errors[0]["index"]["status"] == 400,
          "helpers.bulk reports the permanent item error")
    try:
        es.search(index=prefix + "*", body={"query": {"query_string": {"query": "x"}}})
        check(False, "unsupported query is refused")
    except elasticsearch.exceptions.RequestError as e:
        check(e.status_code == 400 and "query_string" in str(e.info), "unsupported query -> 400 naming it")
    try:
        es.search(index="no_such_index", body={})
        check(False, "missing index")
    except elasticsearch.exceptions.NotFoundError as e:
        check(e.error == "index_not_found_exception", "missing index -> 404 index_not_found_exception")
    check(es.indices.exists(index=prefix + "2025-11-25"), "indices.exists (HEAD)")
    es.indices.delete(index=prefix + "2025-11-27")
    check(not es.indices.exists(index=prefix + "2025-11-27"), "indices.delete")


def strict_checks(url, prefix):
    """What rtdw's correctness depends on, through the client's own methods. Sources: the ES 8.11
    reference (docs-refresh, index-modules refresh_interval, docs-index_ versioning,
    index-modules-blocks, indices-update-settings) and the REST API YAML tests index/60_refresh.yml,
    index/35_external_version.yml, index/36_external_gte_version.yml, bulk/10_basic.yml
    ("Empty _id"); see docs/ES-LITE.md."""
    import elasticsearch
    from elasticsearch import Elasticsearch, helpers

    es = Elasticsearch([url])
    idx = prefix + "strict"
    # Refresh: searches see only refreshed writes; GET is real-time.
    es.indices.create(index=idx, body={"settings": {"index": {"refresh_interval": "-1",
                                                              "number_of_replicas": 0}}})
    es.index(index=idx, id="a", body={"k": "a"})
    check(es.count(index=idx)["count"] == 0, "refresh_interval -1: count sees no unrefreshed write")
    check(es.search(index=idx, body={"query": {"match_all": {}}})["hits"]["total"]["value"] == 0,
          "refresh_interval -1: search sees no unrefreshed write")
    check(es.get(index=idx, id="a")["found"], "get is real-time")
    es.indices.refresh(index=idx)
    check(es.count(index=idx)["count"] == 1, "indices.refresh makes it searchable")
    r = es.index(index=idx, id="b", body={"k": "b"}, refresh=True)
    check(r.get("forced_refresh") is True and es.count(index=idx)["count"] == 2,
          "index(refresh=True): forced_refresh, searchable at once")
    ok, _ = helpers.bulk(es, [{"_index": idx, "_id": "c", "_source": {"k": "c"}}], refresh=True)
    check(ok == 1 and es.count(index=idx)["count"] == 3, "helpers.bulk(refresh=True)")
    other = prefix + "strict_default"
    r = es.index(index=other, id="1", body={"k": 1}, refresh="wait_for")
    check("forced_refresh" not in r and es.count(index=other)["count"] == 1,
          "index(refresh='wait_for') returns once a (scheduled, 1s) refresh shows the write")

    # External versions.
    r = es.index(index=idx, id="v", body={"n": 5}, version=5, version_type="external")
    check(r["_version"] == 5, "index with an external version: _version is the given one")
    try:
        es.index(index=idx, id="v", body={"n": 4}, version=4, version_type="external")
        check(False, "an older external version conflicts")
    except elasticsearch.exceptions.ConflictError as e:
        check(e.status_code == 409 and e.error == "version_conflict_engine_exception" and
              "current version [5] is higher or equal to the one provided [4]" in str(e.info),
              "an older external version: 409 version_conflict_engine_exception, ES's reason")
    r = es.index(index=idx, id="v", body={"n": 55}, version=5, version_type="external_gte")
    check(r["result"] == "updated" and r["_version"] == 5, "external_gte accepts an equal version")
    check(es.get(index=idx, id="v")["_version"] == 5, "get shows _version")
    ok, errors = helpers.bulk(es, [
        {"_index": idx, "_id": "w", "_version": 9, "_version_type": "external", "_source": {"n": 9}},
        {"_index": idx, "_id": "w", "_version": 3, "_version_type": "external", "_source": {"n": 3}},
    ], raise_on_error=False, refresh=True)
    check(ok == 1 and len(errors) == 1 and errors[0]["index"]["status"] == 409,
          "helpers.bulk with versions: the older item gets its own 409, the newer is applied")
    hits = es.search(index=idx, body={"query": {"ids": {"values": ["w"]}}, "version": True})
    check(hits["hits"]["hits"][0]["_version"] == 9 and
          es.get(index=idx, id="w")["_source"]["n"] == 9, "search version=true shows _version")
    try:
        es.delete(index=idx, id="w", version=8, version_type="external")
        check(False, "an older versioned delete conflicts")
    except elasticsearch.exceptions.ConflictError:
        check(True, "delete with an older external version: 409")
    try:
        es.index(index=idx, id="x", body={"n": 1}, version=2)
        check(False, "internal version refused")
    except elasticsearch.exceptions.RequestError as e:
        check(e.error == "action_request_validation_exception",
              "a version without version_type (internal): 400 action_request_validation_exception")

    # Settings and write blocks.
    es.indices.put_settings(index=idx, body={"index": {"blocks": {"write": True}}})
    s = es.indices.get_settings(index=idx)
    check(s[idx]["settings"]["index"]["blocks"]["write"] == "true", "put_settings / get_settings")
    try:
        es.index(index=idx, id="blocked", body={"k": 1})
        check(False, "write into a blocked index")
    except elasticsearch.exceptions.AuthorizationException as e:
        check(e.status_code == 403 and e.error == "cluster_block_exception",
              "index into a write-blocked index: 403 cluster_block_exception")
    ok, errors = helpers.bulk(es, [{"_index": idx, "_id": "p", "_source": {"k": 1}},
                                   {"_index": other, "_id": "p", "_source": {"k": 1}}],
                              raise_on_error=False)
    check(ok == 1 and len(errors) == 1 and errors[0]["index"]["status"] == 403 and
          errors[0]["index"]["error"]["type"] == "cluster_block_exception",
          "helpers.bulk: the blocked index's item fails with 403, the other is applied")
    check(es.count(index=idx)["count"] >= 3 and es.get(index=idx, id="a")["found"],
          "reads of a write-blocked index still work")
    es.indices.put_settings(index=idx, body={"index.blocks.write": None})

    # Empty _id.
    ok, errors = helpers.bulk(es, [{"_index": idx, "_id": "", "_source": {"k": 1}}],
                              raise_on_error=False)
    check(ok == 0 and errors[0]["index"]["status"] == 400 and
          errors[0]["index"]["error"]["reason"] == "if _id is specified it must not be empty",
          "empty _id: per-item 400 illegal_argument_exception")

    # Sorting on _id, as Elasticsearch 8 refuses it.
    try:
        es.search(index=idx, body={"sort": ["_id"]})
        check(False, "sort on _id refused")
    except elasticsearch.exceptions.RequestError as e:
        check(e.status_code == 400 and e.error == "search_phase_execution_exception",
              "sort on _id: 400 search_phase_execution_exception (indices.id_field_data.enabled)")


def main():
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    binary = sys.argv[1]
    import elasticsearch
    print("python elasticsearch client %s" % (".".join(map(str, elasticsearch.__version__))))
    data_dir = tempfile.mkdtemp(prefix="rtdw-es-py-")
    proc, url = start_es_lite(binary, data_dir)
    try:
        run_checks(url, "rtdw_py_plain_")
        strict_checks(url, "rtdw_py_plain_")
        os.environ["ELASTIC_CLIENT_APIVERSIONING"] = "1"
        run_checks(url, "rtdw_py_compat_")
        strict_checks(url, "rtdw_py_compat_")
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            code = -1
        shutil.rmtree(data_dir, ignore_errors=True)
    if code != 0:
        raise SystemExit("rtdw-es-lite exited with %s after SIGTERM" % code)
    print("all checks passed")


if __name__ == "__main__":
    main()
