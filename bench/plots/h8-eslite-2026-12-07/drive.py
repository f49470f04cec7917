# Sends N bulk requests of M order-wide-like documents (external_gte versions) to es-lite at argv[1].
import json, sys, urllib.error, urllib.request
url = sys.argv[1]; n = int(sys.argv[2]); m = int(sys.argv[3]); out = sys.argv[4] if len(sys.argv) > 4 else None
idx = "gmall_order_wide_2025-11-25"
fmt = "yyyy-MM-dd HH:mm:ss"
props = {}
for f in "detail_id order_id sku_id sku_name province_id order_status user_id create_hour province_name province_area_code province_3166_2_code province_iso_code user_gender rtdw_src".split(): props[f] = {"type": "keyword"}
for f in "order_price split_total_amount split_activity_amount split_coupon_amount total_amount activity_reduce_amount coupon_reduce_amount original_total_amount feight_fee feight_fee_reduce".split(): props[f] = {"type": "double"}
props["sku_num"] = {"type": "long"}; props["user_age"] = {"type": "integer"}
for f in "expire_time refundable_time create_time operate_time".split(): props[f] = {"type": "date", "format": fmt}
props["create_date"] = {"type": "date", "format": "yyyy-MM-dd"}
def req(method, path, body, ctype="application/json"):
    r = urllib.request.Request(url + path, data=body.encode(), method=method, headers={"Content-Type": ctype})
    try:
        with urllib.request.urlopen(r) as resp: return resp.read()
    except urllib.error.HTTPError as e:  # 404 of a deleted document, 400 of a bad request
        return b"%d " % e.code + e.read()
req("PUT", "/" + idx, json.dumps({"mappings": {"dynamic": "strict", "properties": props}}))
def doc(i):
    return ('{"detail_id":"%d","order_id":"%d","sku_id":"%d","order_price":8197.00,"sku_num":%d,'
            '"sku_name":"Apple iPhone 12 (A2404) 64GB 黑色 支持移动联通电信5G 双卡双待手机","split_total_amount":8184.50,'
            '"split_activity_amount":0.00,"split_coupon_amount":12.50,"province_id":"%d","order_status":"1001",'
            '"user_id":"%d","total_amount":8197.00,"activity_reduce_amount":0.00,"coupon_reduce_amount":12.50,'
            '"original_total_amount":8209.50,"feight_fee":5.00,"feight_fee_reduce":0.00,'
            '"expire_time":"2025-11-25 10:15:01","refundable_time":"2025-12-02 10:00:01",'
            '"create_time":"2025-11-25 10:00:01","operate_time":null,"create_date":"2025-11-25","create_hour":"10",'
            '"province_name":"北京","province_area_code":"110000","province_3166_2_code":"CN-BJ",'
            '"province_iso_code":"CN-11","user_age":%d,"user_gender":"M","rtdw_src":"DWD_ORDER_DETAIL/0/%d"}'
            % (i, i // 3, i % 40, 1 + i % 3, i % 34, i % 5000, 18 + i % 50, i))
answers = []
for b in range(n):
    lines = []
    for i in range(b * m, (b + 1) * m):
        lines.append(json.dumps({"index": {"_index": idx, "_id": str(i), "version": 1000 + i, "version_type": "external_gte"}}, separators=(",", ":")))
        lines.append(doc(i))
    body = "\n".join(lines) + "\n"
    answers.append(req("POST", "/_bulk", body, "application/x-ndjson"))
# the same requests again: version conflicts are not refused by external_gte; a lower version is
lines = []
for i in range(0, m):
    lines.append(json.dumps({"index": {"_index": idx, "_id": str(i), "version": 1, "version_type": "external"}}, separators=(",", ":")))
    lines.append(doc(i))
answers.append(req("POST", "/_bulk", "\n".join(lines) + "\n", "application/x-ndjson"))
answers.append(req("POST", "/_bulk", '{"index":{"_index":"%s","_id":"x"}}\n{"a":1,"a":2}\n{"index":{"_index":"%s","_id":"y"}}\n{"bad json\n' % (idx, idx), "application/x-ndjson"))
answers.append(req("GET", "/%s/_doc/5" % idx, ""))
# h8: ids written again, inside one bulk and across bulks (the versions of earlier items of the
# same bulk, of stored documents, of tombstones), updates and deletes among them.
def act(op, i, **kw):
    a = {"_index": idx, "_id": str(i)}; a.update(kw)
    return json.dumps({op: a}, separators=(",", ":"))
lines = []
for i in range(0, 50):
    v = 1000 + i
    lines += [act("index", i, version=v, version_type="external_gte"), doc(i)]      # equal: ok
    lines += [act("index", i, version=v, version_type="external"), doc(i)]          # conflict
    lines += [act("index", i, version=v + 7, version_type="external"), doc(i + 1)]  # ok
    lines += [act("index", i, version=v + 7, version_type="external_gte"), doc(i + 2)]  # ok
    lines += [act("index", i, version=v + 6, version_type="external_gte"), doc(i)]  # conflict
    lines += [act("update", i), json.dumps({"doc": {"sku_num": 9}})]
    lines += [act("update", i), json.dumps({"doc": {"sku_num": 9}})]                # noop
    lines += [act("create", i), doc(i)]                                              # exists
    lines += [act("delete", i, version=v + 9, version_type="external"), ""][:1]
    lines += [act("index", i, version=v + 9, version_type="external"), doc(i)]      # tombstone
    lines += [act("index", i, version=v + 10, version_type="external"), doc(i)]     # ok
    lines += [act("delete", i)]
    lines += [act("update", i), json.dumps({"doc": {"sku_num": 3}, "doc_as_upsert": True})]
    lines += [act("create", 900000 + i), doc(i)]
    lines += [act("create", 900000 + i), doc(i)]                                    # exists
    lines += [act("index", 900000 + i), '{"sku_num":1,"nope":2}']                   # strict
    lines += [act("index", 900000 + i), '{"create_time":"2025-13-25 10:00:01"}']    # date
answers.append(req("POST", "/_bulk", "\n".join(lines) + "\n", "application/x-ndjson"))
for i in (0, 1, 49, 900000, 900049):
    answers.append(req("GET", "/%s/_doc/%d" % (idx, i), ""))
answers.append(req("POST", "/%s/_refresh" % idx, ""))
answers.append(req("GET", "/%s/_search?size=3&sort=detail_id" % idx, ""))
answers.append(req("GET", "/_cat/indices?v&h=index,docs.count,store.size&bytes=b", ""))
if out:
    import re
    with open(out, "wb") as f:
        for a in answers: f.write(re.sub(rb'"took":\d+', b'"took":0', a) + b"\n")
