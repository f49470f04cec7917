#!/bin/bash
# ab.sh <base es-lite> <new es-lite> <out dir> <pairs>: alternated prof.sh runs (base, new, base,
# new, ...) at 1999 Hz, whole process, no call graphs; prints CPU ticks and samples per run.
# Run it under the build lock: flock /work/wt/build.lock ./ab.sh ...
base=$1; new=$2; out=$3; pairs=${4:-2}
mkdir -p $out
for p in $(seq $pairs); do
  for v in base new; do
    bin=$base; [ $v = new ] && bin=$new
    ticks=$($(dirname $0)/prof.sh $bin $out/$v-$p -F 1999 2>/dev/null | grep cpu_ticks)
    samples=$(perf report -i $out/$v-$p.perf --sort comm -n 2>/dev/null | awk '/^ +[0-9.]+%/ {s += $2} END {print s}')
    parse=$(perf report -i $out/$v-$p.perf --sort sym -n 2>/dev/null | awk '/rapidjson|ParseJsonSafely/ {s += $2} END {print s}')
    echo "$v pair $p: $ticks samples $samples parse_samples $parse"
    python3 $(dirname $0)/cmp.py $out/base-1.answers $out/$v-$p.answers > /dev/null || echo "$v-$p answers DIFFER"
    rm -f $out/$v-$p.perf.old
  done
done
