#!/bin/bash
bin=$1; out=$2
d=$(mktemp -d /tmp/h7-eslite-data-XXXX); port=$((20000 + RANDOM % 20000))
$bin --listen 127.0.0.1:$port --data-dir $d 2>/dev/null & pid=$!
for i in $(seq 100); do curl -s 127.0.0.1:$port/ >/dev/null && break; sleep 0.2; done
perf record -F 1999 -o $out.perf -p $pid 2>/dev/null & ppid=$!
python3 $(dirname $0)/drive.py http://127.0.0.1:$port 40 2500 > /dev/null
kill -INT $ppid; wait $ppid
kill -INT $pid; wait $pid; rm -rf $d
