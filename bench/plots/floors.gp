# Each job next to its floor (input records/s, measured in the same run), with the ratio.
# Called by rtdw-bench:  gnuplot -e "datafile='...'; outfile='...'; subtitle='...'" floors.gp
# datafile: "<job> / <floor>\t<job records/s>\t<floor records/s>\t<ratio text>" lines.
set terminal svg size 960,520 dynamic enhanced font "sans,11" background rgb "white"
set output outfile
set datafile separator "\t"
set title sprintf("rtdw-bench: each job against its floor (librdkafka alone, same run)\n%s", subtitle) noenhanced
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.75 border -1
set boxwidth 0.9
set grid ytics
set ylabel "input records/s"
set format y "%.0s%c"
set yrange [0:*]
set xtics scale 0 noenhanced
set key top right noenhanced
plot datafile using 2:xtic(1) title "job" linecolor rgb "#4477aa", \
     '' using 3 title "floor" linecolor rgb "#bbbbbb", \
     '' using ($0-0.15):2:4 with labels offset 0,0.8 font "sans,10" notitle
