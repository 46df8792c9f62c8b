#!/bin/sh
# A/B of two commands on this noisy machine: runs them alternately ROUNDS times and prints the
# minimum and median of each and their ratios (B / A: above 1, A is faster). Each command must
# print one time in milliseconds: `resnet bench --json` ("ms_per_batch") or a line with
# "N ms" (bench/conv_time.c, bench/conv_algo.c); the first such number counts.
#
#   sh bench/alternate.sh 5 'build/resnet bench --arch resnet50 --batch 1 --mode infer --json' \
#                           'build/resnet bench --arch resnet50 --batch 1 --mode infer --json --no-freeze'
set -eu
if [ $# -ne 3 ]; then
    echo "usage: sh bench/alternate.sh ROUNDS 'COMMAND A' 'COMMAND B'" >&2
    exit 2
fi
rounds=$1
i=0
while [ "$i" -lt "$rounds" ]; do
    for side in A B; do
        if [ $side = A ]; then cmd=$2; else cmd=$3; fi
        out=$(sh -c "$cmd")
        ms=$(printf '%s\n' "$out" | grep -o '"ms_per_batch":[0-9.e+-]*\|[0-9.]* ms' | head -n 1 |
            sed 's/"ms_per_batch"://; s/ ms//')
        if [ -z "$ms" ]; then
            echo "alternate.sh: no time in the output of: $cmd" >&2
            exit 1
        fi
        echo "$side $ms"
    done
    i=$((i + 1))
done | /usr/bin/python3 -c '
import statistics, sys
t = {"A": [], "B": []}
for line in sys.stdin:
    side, ms = line.split()
    t[side].append(float(ms))
for side in "AB":
    print("%s: min %.3f  median %.3f ms  (%s)" % (side, min(t[side]), statistics.median(t[side]),
          " ".join("%.3f" % v for v in t[side])))
print("B / A: min %.2f  median %.2f" % (min(t["B"]) / min(t["A"]),
      statistics.median(t["B"]) / statistics.median(t["A"])))
'
