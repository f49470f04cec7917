#!/bin/bash
# usage: run.sh BIN_DIR OUT
S="--scenario log-split --scenario kafka-pipe-floor --scenario db-split --scenario kafka-pipe-floor-db --scenario consume-floor --scenario dau --scenario order-wide"
flock /work/wt/build.lock $1/rtdw-bench $S --records 1000000 --out $2 > $2.log 2>&1
python3 - $2 <<'PY'
import json,sys
d=json.load(open(sys.argv[1]+'/results.json'))['scenarios']
out=[]
for k in ['log-split','kafka-pipe-floor','db-split','kafka-pipe-floor-db','consume-floor','dau','order-wide']:
    v=d.get(k,{}); out.append(f"{k}={round(v.get('input_records_per_s',0))}/{round(v.get('peak_rss_mb',0))}MB")
print(sys.argv[1].split('/')[-3], ' '.join(out), 'load', d['dau'].get('load_avg_1m'))
PY
