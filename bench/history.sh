#!/bin/sh
# Before/after of each optimisation: builds the given commits in temporary worktrees and times
# the same workloads with each, alternating commits round by round so that a change in the
# machine's load hits all of them alike. Prints one line per commit and workload: the median
# over rounds of each round's median ms per batch, and the lowest round's.
# Usage: sh bench/history.sh [-r ROUNDS] [-l "LDLIBS"] COMMIT...
#   -l: link with these libraries instead of the Makefile's (for a commit whose tree did not
#       link as committed, e.g. "-lcjson -lopenblas -lstb -lz -lm -lpthread -fopenmp").
set -eu
rounds=3
libs=""
while [ $# -gt 0 ]; do
    case "$1" in
    -r) rounds=$2; shift 2 ;;
    -l) libs=$2; shift 2 ;;
    *) break ;;
    esac
done
[ $# -gt 0 ] || { echo "usage: sh bench/history.sh [-r ROUNDS] [-l LDLIBS] COMMIT..." >&2; exit 2; }
top=$(git rev-parse --show-toplevel)
work=$(mktemp -d)
trap 'for d in "$work"/wt-*; do git -C "$top" worktree remove --force "$d" 2>/dev/null || true; done; rm -rf "$work"' EXIT
for c in "$@"; do
    d="$work/wt-$c"
    git -C "$top" worktree add --detach -q "$d" "$c"
    if [ -n "$libs" ]; then
        make -C "$d" -s -j2 build/resnet LDLIBS="$libs" >/dev/null 2>&1
    else
        make -C "$d" -s -j2 build/resnet >/dev/null 2>&1
    fi || { echo "$c: build failed" >&2; exit 1; }
done
# workload: label | arguments of resnet bench
workloads="resnet20 train 3x32x32 b128|--arch resnet20 --batch 128 --mode train --max-seconds 3
resnet8 train 1x28x28 b64|--arch resnet8 --batch 64 --input-shape 1x28x28 --mode train --max-seconds 3
resnet8-w32-s2 train 1x28x28 b64|--arch resnet8-w32-s2 --batch 64 --input-shape 1x28x28 --mode train --max-seconds 3
resnet50 infer b1|--arch resnet50 --batch 1 --mode infer --max-seconds 3"
echo "$workloads" | while IFS='|' read -r label args; do
    for t in 1 2; do
        r=0
        : >"$work/times"
        while [ $r -lt "$rounds" ]; do
            for c in "$@"; do
                # shellcheck disable=SC2086
                ms=$("$work/wt-$c/build/resnet" bench $args --threads $t --json |
                     sed 's/.*"ms_per_batch":\([0-9.]*\).*/\1/')
                echo "$c $ms" >>"$work/times"
            done
            r=$((r + 1))
        done
        for c in "$@"; do
            stats=$(grep "^$c " "$work/times" | cut -d' ' -f2 | sort -n |
                    awk '{v[NR]=$1} END {print ((NR % 2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2), v[1]}')
            printf '%-34s T=%d  %-10s %10.1f ms  (lowest round %.1f)\n' "$label" "$t" "$c" $stats
        done
    done
done
