#!/bin/bash
# prof.sh <es-lite binary> <out prefix> [perf record options]: starts es-lite, records the whole
# process with perf while drive.py sends 40 x 2500 + 2502 documents, prints its /proc CPU ticks.
bin=$1; out=$2; shift 2
d=$(mktemp -d /tmp/h8-eslite-data-XXXX); port=$((20000 + RANDOM % 20000))
$bin --listen 127.0.0.1:$port --data-dir $d 2>/dev/null & pid=$!
for i in $(seq 100); do curl -s 127.0.0.1:$port/ >/dev/null && break; sleep 0.2; done
perf record ${@:--F 1999} -o $out.perf -p $pid 2>/dev/null & ppid=$!
sleep 0.5
python3 $(dirname $0)/drive.py http://127.0.0.1:$port ${NB:-40} 2500 $out.answers
awk "{print \"cpu_ticks\", \$14+\$15, \"utime\", \$14, \"stime\", \$15}" /proc/$pid/stat
kill -INT $ppid; wait $ppid
kill -INT $pid; wait $pid; rm -rf $d
