#!/bin/bash
# ab.sh <scenario> <records> <rounds>: alternated runs of the base and new binaries (new first).
sc=$1; n=$2; rounds=$3; out=/tmp/s12/ab
for r in $(seq 1 $rounds); do
  for v in new base; do
    RTDW_BIN_DIR=/tmp/s12/$v-bin flock /work/wt/build.lock /work/main/build/bin/rtdw-bench --scenario $sc --records $n --out $out/$sc-$v-$r > $out/$sc-$v-$r.log 2>&1
    python3 -c "
import json;d=json.load(open('$out/$sc-$v-$r/results.json'));s=d['scenarios']['$sc'];print('$sc','$v',$r,round(s['input_records_per_s']),round(s['seconds'],2),'load',d['load_avg_1m_start'], s.get('peak_rss_mb'))"
  done
done
