# ci/bench's plot: throughput and p99 latency against connections, for 1-record and 100-record
# uploads. Input (datafile): tab-separated rows "series records connections uploads/s p99_ms".
# Usage: gnuplot -e "datafile='plot.tsv'; outfile='bench.png'; subtitle='...'" bench/plot.gp
set terminal pngcairo size 1400,1000 font "sans,10" noenhanced
set output outfile
set datafile separator "\t"
set logscale x 2
set logscale y 10
set grid
set key outside right top vertical
set xlabel "connections (threads for the ceiling)"
set xtics (1, 2, 4, 8, 16, 32, 64)
set xrange [0.8:80]

names = "nginx202 deps gw gwnginx gwnodelay baseline"
titles = "nginx-return-202 dependency-ceiling gateway gateway-via-nginx gateway+TCP_NODELAY Python-baseline"
colors = "#7f7f7f #2ca02c #1f77b4 #ff7f0e #9467bd #d62728"
# One series' rows, in connection order (so that its points are joined by a line).
rows(s, r) = sprintf("< awk -F'\t' '$1 == \"%s\" && $2 == %s' '%s' | sort -t'\t' -k3,3n", s, r, datafile)

set multiplot layout 2,2 title "txpipe ci/bench: ".subtitle
do for [r in "1 100"] {
    set title sprintf("%s-record uploads: throughput", r)
    set ylabel "uploads/s (log)"
    plot for [i=1:words(names)] rows(word(names, i), r) using 3:4 \
        with linespoints lw 2 pt 7 lc rgb word(colors, i) title word(titles, i)
    set title sprintf("%s-record uploads: p99 latency", r)
    set ylabel "p99 latency, ms (log)"
    plot for [i=1:words(names)] rows(word(names, i), r) using 3:5 \
        with linespoints lw 2 pt 7 lc rgb word(colors, i) title word(titles, i)
}
unset multiplot
