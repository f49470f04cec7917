#!/usr/bin/env python3
"""Seeds fuzz/corpus/<target>/ from rtdw-gen output plus hand-made edge cases.

    fuzz/make_corpus.py BUILD_DIR      (needs BUILD_DIR/bin/rtdw-gen)

Deterministic (fixed seeds); keeps each target to a few dozen small files. Existing files are
replaced; files under fuzz/regressions/ are never touched.
"""
import hashlib
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(HERE, "corpus")


def write(target, data, name=None):
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    name = name or hashlib.sha1(data).hexdigest()[:16]
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def gen(build, *args):
    return subprocess.run([os.path.join(build, "bin", "rtdw-gen"), *args, "--quiet", "--out", "-"],
                          check=True, capture_output=True).stdout.splitlines()


def pick_logs(lines, n):
    """A few of each shape: start, page, page+displays+actions, err, malformed."""
    seen = {}
    for raw in lines:
        try:
            d = json.loads(raw)
            shape = tuple(k for k in ("start", "page", "displays", "actions", "err")
                          if isinstance(d, dict) and k in d) or ("not_object",)
        except Exception:
            shape = ("malformed",)
        if len(seen.setdefault(shape, [])) < n:
            seen[shape].append(raw)
    return [r for rs in seen.values() for r in rs]


def pick_db(lines, n):
    seen = {}
    for raw in lines:
        try:
            d = json.loads(raw)
            shape = (d.get("table"), d.get("type"))
        except Exception:
            shape = ("malformed",)
        if len(seen.setdefault(shape, [])) < n:
            seen[shape].append(raw)
    return [r for rs in seen.values() for r in rs]


# Exact data (docs/DATA.md): numbers kept as text, duplicate keys, table case, DDL without a
# table, error-only app logs.
LOG_EXACT = [
    b'{"common":{"mid":"m","vc":"a","vc":"b"},"page":{"during_time":10130.00,"item":-0.50,'
    b'"item":1.5E+3},"displays":[{"order":18446744073709551616,"pos_id":2.50e-1}],'
    b'"ts":1764036000000}',
    b'{"common":{"mid":"m"},"err":{"error_code":3245},"ts":1764036000000}',
    b'{"common":{"mid":"m"},"page":{},"ts":1.764036E12}',
    b'{"common":{"mid":"m"},"page":{"a":{"k":1,"k":2,"k":[3,{"x":1,"x":0e300}]}},'
    b'"ts":-9223372036854775808}',
]
MAXWELL_EXACT = [
    b'{"table":"Order_Info","type":"insert","data":{"id":18446744073709551615,'
    b'"total_amount":4500000001.512456777,"total_amount":10130.00,"feight_fee":1.5E+3}}',
    b'{"type":"database-create","database":"gmall2","def":{"charset":"utf8mb4"},"ts":1}',
    b'{"table":"USER_INFO","type":"update","data":{"id":9007199254740993,"id":7E0}}',
    b'{"table":"order_detail","type":"insert","data":{"id":1,"order_id":-0,"order_id":99999999999999.99}}',
]


def main():
    build = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "..", "build")
    logs = gen(build, "logs", "--day", "2024-11-25", "--events", "400", "--seed", "7",
               "--malformed-share", "0.1", "--error-share", "0.05")
    db = gen(build, "db", "--day", "2024-11-25", "--users", "20", "--orders", "30",
             "--provinces", "5", "--seed", "7")

    # --- app log records (log-split)
    for r in pick_logs(logs, 4):
        write("log_record", r)
    for edge in [b"", b"{}", b"[]", b"null", b'{"common":{"mid":"m"},"ts":1}',
                 b'{"common":{"mid":"m"},"page":{},"displays":[{"order":{"x":1}}],"ts":1}',
                 b'{"common":{"mid":"m"},"start":{"open_ad_id":1.5e300},"ts":9223372036854775807}',
                 b'{"common":{"mid":"\\u0000"},"page":{"page_id":"\\ud800"},"ts":-1}',
                 b"[" * 200, b'{"common":{"mid":"m\xff"},"page":{},"ts":1}',
                 b'{"common":{"mid":"m","mid":"n"},"page":{},"err":null,"ts":1}',
                 # escapes and control characters in copied strings, past a 16-byte block
                 b'{"common":{"mid":"m\\u001f\\\\\\"x","ba":"brand name, long enough \\u0001'
                 b'\\u001a\\u001f\\u2028\\u00e9\\ud83d\\ude00 \\b\\f\\n\\r\\t\\/"},'
                 b'"page":{"page_id":"p\\u0000"},"ts":1}'] + LOG_EXACT:
        write("log_record", edge)

    # --- Maxwell records (db-split)
    for r in pick_db(db, 3):
        write("maxwell_record", r)
    for edge in [b"", b"{}", b'{"table":"user_info","type":"insert","data":{}}',
                 b'{"table":"user_info","type":"delete","data":{"id":[1]}}',
                 b'{"table":"order_detail","type":"insert","data":{"order_id":null,"id":1.0}}',
                 b'{"table":"order_info","type":"update","data":{"id":1},"old":{}}',
                 b'{"table":"","type":"insert","data":{"id":1}}',
                 b'{"table":"order_info","type":"table-create","def":{}}',
                 # escapes and control characters in a copied row, past a 16-byte block
                 b'{"table":"order_info","type":"insert","data":{"id":1,"consignee":"a name that '
                 b'is long enough \\u001f\\u001a\\u0000\\\\\\"\\/\\u2029\\u00e9","n":"\\t"}}'] + MAXWELL_EXACT:
        write("maxwell_record", edge)

    # --- TOML configs
    for name in ("rtdw.example.toml",):
        p = os.path.join(HERE, "..", "deploy", name)
        if os.path.exists(p):
            write("config_toml", open(p, "rb").read())
    cfg_dir = os.path.join(HERE, "..", "config")
    if os.path.isdir(cfg_dir):
        for name in sorted(os.listdir(cfg_dir)):
            if name.endswith(".toml"):
                write("config_toml", open(os.path.join(cfg_dir, name), "rb").read())
    for edge in ["", "[kafka]\n[redis]\n[es]\n[state]\n[jobs]\n",
                 '[kafka]\n[kafka.properties]\n"sasl.password" = { env = "X" }\n'
                 '"security.protocol" = "SASL_SSL"\nlinger.ms = 5\n[redis]\n'
                 'url = "redis://:pw@h:1/2"\n[es]\nurl = ["http://a:1", "https://b/x"]\n'
                 'api_key = { file = "/nonexistent" }\n[state]\n[jobs]\nenabled = ["dau"]\n',
                 "[kafka]\nbrokers = 1\n[redis]\nurl = \"rediss://h\"\n[es]\n[state]\n[jobs]\n"
                 "time_zone = \"Mars/Olympus\"\n[jobs.log-split]\nmax_depth = -1\n",
                 "a = [[[[[[[[[[1]]]]]]]]]]\n", "x = \"\\uD800\"\n", "[a.b.c.d]\n[a]\n"]:
        write("config_toml", edge)

    # --- ES bulk responses (connectors/es): first byte = items expected, then the body
    ok = {"took": 3, "errors": False, "items": [
        {"index": {"_index": "i", "_id": "1", "status": 201, "result": "created"}},
        {"create": {"_index": "i", "_id": "2", "status": 409, "error": {
            "type": "version_conflict_engine_exception", "reason": "exists"}}},
        {"delete": {"_index": "i", "_id": "3", "status": 404, "result": "not_found"}},
        {"update": {"_index": "i", "_id": "4", "status": 429, "error": {
            "type": "es_rejected_execution_exception", "reason": "queue full",
            "caused_by": {"type": "x", "reason": "y"}}}}]}
    write("es_bulk_response", bytes([4]) + json.dumps(ok).encode())
    write("es_bulk_response", bytes([1]) + b'{"errors":true,"items":[{"index":{"status":400,'
          b'"error":{"type":"mapper_parsing_exception","reason":"failed to parse"}}}]}')
    write("es_bulk_response", bytes([0]) + b'{"error":{"type":"security_exception","reason":'
          b'"missing authentication credentials"},"status":401}')
    write("es_bulk_response", bytes([2]) + b'{"items":[{"index":{}}]}')
    write("es_bulk_response", bytes([3]) + b"[" * 100)
    # stored journal bodies (ParseBulkBody) go through the same target: byte 255 selects them
    write("es_bulk_response", bytes([255]) + b'{"index":{"_index":"gmall_dau_info_2024-11-25",'
          b'"_id":"mid_1"}}\n{"mid":"mid_1","ts":1}\n{"delete":{"_index":"i","_id":"2"}}\n'
          b'{"update":{"_index":"i","_id":"3"}}\n{"doc":{"a":1}}\n')

    # --- rtdw-es-lite requests: first byte 0 = bulk body, 1 = search body, 2 = count body
    bulk = b""
    for i, r in enumerate(pick_logs(logs, 1)[:6]):
        bulk += b'{"index":{"_index":"gmall_dau_info_2024-11-25","_id":"%d"}}\n' % i + r + b"\n"
    write("es_lite_request", b"\x00" + bulk)
    write("es_lite_request", b'\x00{"delete":{"_index":"a","_id":"1"}}\n{"update":{"_index":"a",'
          b'"_id":"1"}}\n{"doc":{"x":1},"doc_as_upsert":true}\n{"create":{"_index":"a"}}\n[1]\n')
    write("es_lite_request", b'\x00{"index":{"_index":"A*","_id":""}}\n{}\n')
    write("es_lite_request", b"\x00\n\n")
    searches = [
        {"query": {"bool": {"must": [{"term": {"mid": "mid_1"}}], "filter": [
            {"range": {"ts": {"gte": 1, "lt": "now"}}}], "should": [{"match": {"page_id": "home"}}],
            "must_not": [{"exists": {"field": "uid"}}], "minimum_should_match": 1}},
         "sort": [{"ts": {"order": "desc"}}, "_id"], "size": 3, "search_after": [5, "x"]},
        {"size": 0, "aggs": {"by_day": {"date_histogram": {"field": "ts", "calendar_interval": "day",
            "time_zone": "Asia/Shanghai", "min_doc_count": 0}, "aggs": {"n": {"cardinality": {
                "field": "mid"}}}}, "t": {"terms": {"field": "channel", "size": 3,
                    "order": {"_key": "asc"}}}, "h": {"histogram": {"field": "during_time",
                        "interval": 100}}, "s": {"sum": {"field": "during_time"}},
            "f": {"filter": {"prefix": {"mid": "mid_"}}}}},
        {"query": {"terms": {"mid": ["mid_1", "mid_2"]}}, "_source": {"includes": ["m*"],
            "excludes": ["x"]}, "from": 1, "track_total_hits": True},
        {"query": {"ids": {"values": ["1", "2"]}}, "post_filter": {"match_all": {}}},
        {"query": {"constant_score": {"filter": {"range": {"dt": {"gte": "2024-11-25",
            "format": "yyyy-MM-dd", "time_zone": "+08:00"}}}}}},
    ]
    for q in searches:
        write("es_lite_request", b"\x01" + json.dumps(q).encode())
    write("es_lite_request", b'\x02{"query":{"match_none":{}}}')
    write("es_lite_request", b"\x01" + b'{"query":' * 50)


if __name__ == "__main__":
    main()
