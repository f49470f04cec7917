#!/bin/bash
# run.sh <es-lite binary> <out prefix> [callgrind]: starts es-lite, drives 8 x 2500 docs, stops it.
bin=$1; out=$2; mode=$3
d=$(mktemp -d /tmp/h8-eslite-data-XXXX)
port=$((20000 + RANDOM % 20000))
if [ "$mode" = callgrind ]; then
  valgrind --tool=callgrind --callgrind-out-file=$out.cg --toggle-collect='rtdw::eslite::Api::Bulk*' $bin --listen 127.0.0.1:$port --data-dir $d 2>$out.vg &
else
  $bin --listen 127.0.0.1:$port --data-dir $d 2>$out.err &
fi
pid=$!
for i in $(seq 100); do curl -s 127.0.0.1:$port/ >/dev/null && break; sleep 0.2; done
python3 $(dirname $0)/drive.py http://127.0.0.1:$port ${NB:-8} 2500 $out.answers
[ "$mode" = cpu ] && awk "{print \"cpu_ticks\", \$14+\$15, \"utime\", \$14, \"stime\", \$15}" /proc/$pid/stat
kill -INT $pid; wait $pid
rm -rf $d
