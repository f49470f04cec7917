# End-to-end latency of the probe records (produce -> document acknowledged in ES), left: each
# probe by its produce time; right: the distribution.
# Called by rtdw-bench: gnuplot -e "datafile='...'; cdffile='...'; outfile='...'; subtitle='...'"
# datafile: "<seconds since start>\t<latency ms>"; cdffile: "<latency ms>\t<percent of probes>".
set terminal svg size 1100,480 dynamic enhanced font "sans,11" background rgb "white"
set output outfile
set datafile separator "\t"
# Draw at most ~2,000 points per panel (the SVG stays small); the statistics are rtdw-bench's.
stats datafile using 2 nooutput
ev = int(STATS_records / 2000) + 1
set multiplot layout 1,2 title sprintf("latency: record produced -> its document acknowledged by ES\n%s", subtitle) noenhanced
set grid
set key off
set title "each probe"
set xlabel "produce time (s since the load began)"
set ylabel "latency (ms)"
plot datafile every ev using 1:2 with points pointtype 7 pointsize 0.3 linecolor rgb "#4477aa"
set title "distribution"
set xlabel "latency (ms)"
set ylabel "% of probes at or below"
set yrange [0:100]
set arrow 1 from graph 0, first 99 to graph 1, first 99 nohead dashtype 2 linecolor rgb "#aa3377"
set label 1 "p99" at graph 0.02, first 96 textcolor rgb "#aa3377"
set arrow 2 from first 500, graph 0 to first 500, graph 1 nohead dashtype 3 linecolor rgb "#228833"
set label 2 "500 ms target" at first 500, graph 0.1 offset 0.5,0 textcolor rgb "#228833"
plot cdffile every ev using 1:2 with lines linewidth 2 linecolor rgb "#4477aa"
unset multiplot
