# Several named series as lines (records/s over time, lag, recovery progress, memory).
# Called by rtdw-bench:
#   gnuplot -e "datafile='...'; outfile='...'; n=3; plottitle='...'; xlab='...'; ylab='...';
#               subtitle='...'; logy=0" lines.gp
# datafile: n blocks separated by two blank lines; each block starts with "<series name>\ty",
# then "x\ty" rows.
set terminal svg size 960,520 dynamic enhanced font "sans,11" background rgb "white"
set output outfile
set datafile separator "\t"
set title sprintf("%s\n%s", plottitle, subtitle) noenhanced
set xlabel xlab noenhanced
set ylabel ylab noenhanced
set grid
set key outside right top noenhanced
set format y "%.0s%c"
if (logy) set logscale y
# At most ~600 points per series on average (the SVG stays small).
stats datafile using 1 nooutput
ev = int(STATS_records / (600 * n)) + 1
plot for [i=0:n-1] datafile index i every ev using 1:2 with linespoints pointtype 7 pointsize 0.35 \
     title columnheader(1)
