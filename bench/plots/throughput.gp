# Throughput of every rtdw-bench scenario that processes records (input records/s).
# Called by rtdw-bench:  gnuplot -e "datafile='...'; outfile='...'; subtitle='...'" throughput.gp
# datafile: "<scenario>\t<records/s>" lines.
set terminal svg size 960,520 dynamic enhanced font "sans,11" background rgb "white"
set output outfile
set datafile separator "\t"
set title sprintf("rtdw-bench: input records/s per scenario\n%s", subtitle) noenhanced
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.75 border -1
set boxwidth 0.8
set grid ytics
set ylabel "input records/s"
set format y "%.0s%c"
set yrange [0:*]
set xtics rotate by -30 scale 0 noenhanced
set key off
plot datafile using 2:xtic(1) linecolor rgb "#4477aa", \
     '' using 0:2:(sprintf("%.0f", $2)) with labels offset 0,0.8 font "sans,9" notitle
