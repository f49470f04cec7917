#!/bin/bash
# every 1 s: epoch ms, then utime+stime ticks of rtdw-kafka-mock, rtdwd, rtdw-es-lite, rtdw-bench
while true; do
  line="$(date +%s%3N)"
  for n in rtdw-kafka-mock rtdwd rtdw-es-lite rtdw-bench; do
    p=$(pgrep -n -f "h6-latency/build/bin/$n( |$)" 2>/dev/null)
    if [ -n "$p" ]; then t=$(awk '{print $14+$15}' /proc/$p/stat 2>/dev/null); else t=NA; fi
    line="$line $n=$t"
  done
  echo "$line"; sleep 1
done
