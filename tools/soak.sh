#!/bin/sh
# Soak test: one long `resnet train` process, training and evaluating on the test images after
# every epoch, for SOAK_SECONDS; then Ctrl-C (SIGINT), which must write its checkpoint and stop
# with status 130. At the end of every epoch (when metrics.jsonl gains a line) it prints the
# process's resident memory and open file descriptors and the run folder's files and bytes
# (metrics.jsonl apart: it keeps a line per epoch, by design), and fails if any of them grows:
# descriptors and the folder's files must stay as after the first epoch, its bytes grow by no
# more than the checkpoint's copy of the metrics history, resident memory within
# SOAK_RSS_SLACK_KB (default 4096) of its highest value over the first quarter of the epochs
# (allocator and page-cache noise; a leak of one batch per epoch would exceed it within an hour).
# Usage: tools/soak.sh BUILD_DIR [OUT_DIR]
# Environment: SOAK_SECONDS (3600), SOAK_SUBSET (2000 images of Fashion-MNIST per split),
# SOAK_ARCH (resnet8-w32-s2), SOAK_THREADS (2), SOAK_DATA_DIR (Fashion-MNIST's folder).
set -u
B=${1:?usage: tools/soak.sh BUILD_DIR [OUT_DIR]}
OUT=${2:-$(mktemp -d /tmp/rn_soak.XXXXXX)}
SECONDS_MAX=${SOAK_SECONDS:-3600}
SLACK=${SOAK_RSS_SLACK_KB:-4096}
DATA_DIR=${SOAK_DATA_DIR:-/usr/share/datasets/fashion-mnist}
RUN="$OUT/run"
LOG="$OUT/train.log"
TABLE="$OUT/soak.tsv"
mkdir -p "$OUT"
rm -rf "$RUN"

"$B/resnet" train --data-dir "$DATA_DIR" --subset "${SOAK_SUBSET:-2000}" \
    --arch "${SOAK_ARCH:-resnet8-w32-s2}" --epochs 100000 --threads "${SOAK_THREADS:-2}" \
    --quiet --out "$RUN" >"$LOG" 2>&1 &
pid=$!
start=$(date +%s)
seen=0
printf 'epoch\tseconds\trss_kb\tfds\tfolder_files\tfolder_bytes\tmetrics_bytes\n' >"$TABLE"
echo "soak: resnet train (pid $pid) for $SECONDS_MAX s; log $LOG"
echo "epoch  seconds  rss_MB  fds  folder_files  folder_bytes (without metrics.jsonl)  metrics_bytes"
while kill -0 "$pid" 2>/dev/null; do
    now=$(date +%s)
    if [ $((now - start)) -ge "$SECONDS_MAX" ]; then
        kill -INT "$pid"
        break
    fi
    sleep 1
    lines=$(wc -l <"$RUN/metrics.jsonl" 2>/dev/null || echo 0)
    [ "$lines" -gt "$seen" ] || continue
    seen=$lines
    rss=$(awk '$1 == "VmRSS:" {print $2}' "/proc/$pid/status" 2>/dev/null)
    fds=$(ls "/proc/$pid/fd" 2>/dev/null | wc -l)
    # the folder as the checkpoint writer leaves it: a temporary file while it writes is not
    # growth, so wait for it to be renamed away
    n=0
    while ls "$RUN" | grep -q '\.tmp' && [ "$n" -lt 50 ]; do sleep 0.1; n=$((n + 1)); done
    files=$(find "$RUN" -type f ! -name metrics.jsonl | wc -l)
    bytes=$(find "$RUN" -type f ! -name metrics.jsonl -exec cat {} + | wc -c)
    mbytes=$(wc -c <"$RUN/metrics.jsonl")
    [ -n "$rss" ] || break # the process has ended
    printf '%d\t%d\t%d\t%d\t%d\t%d\t%d\n' "$lines" $((now - start)) "$rss" "$fds" "$files" "$bytes" \
        "$mbytes" >>"$TABLE"
    printf '%5d  %7d  %6.1f  %3d  %12d  %12d  %12d\n' "$lines" $((now - start)) \
        "$(echo "$rss" | awk '{print $1 / 1024}')" "$fds" "$files" "$bytes" "$mbytes"
done
kill -0 "$pid" 2>/dev/null && kill -INT "$pid"
wait "$pid"
rc=$?
fail=0
if [ "$rc" -ne 130 ]; then
    echo "soak: FAILED: resnet train ended with status $rc, not 130 (stopped by SIGINT); $LOG:"
    tail -n 5 "$LOG"
    fail=1
fi
# The checkpoint written on SIGINT must be whole: a resume reads it and trains on (stopped the
# same way after a few seconds).
timeout --preserve-status -s INT 10 "$B/resnet" train --resume "$RUN" >"$OUT/resume.log" 2>&1
rc=$?
if [ "$rc" -ne 130 ] ||
    ! grep -q '^epoch ' "$OUT/resume.log"; then
    echo "soak: FAILED: the checkpoint written on SIGINT did not resume ($LOG, $OUT/resume.log)"
    fail=1
fi
awk -F'\t' -v slack="$SLACK" '
NR == 1 { next }
{ n++; e[n] = $1; rss[n] = $3; fds[n] = $4; files[n] = $5; bytes[n] = $6; mb[n] = $7 }
END {
    if (n < 4) { printf "soak: FAILED: only %d epochs measured (need 4)\n", n; exit 1 }
    q = int(n / 4); if (q < 1) q = 1
    for (i = 1; i <= q; i++) if (rss[i] > base) base = rss[i]
    bad = 0
    for (i = 1; i <= n; i++) {
        if (rss[i] > base + slack) { printf "soak: FAILED: epoch %d resident %d kB, above %d + %d kB\n", e[i], rss[i], base, slack; bad = 1 }
        if (fds[i] != fds[1]) { printf "soak: FAILED: epoch %d has %d open descriptors, epoch %d had %d\n", e[i], fds[i], e[1], fds[1]; bad = 1 }
        # the checkpoint keeps the metrics history (a resume restores metrics.jsonl from it),
        # escaped as JSON strings: it may grow by that, up to twice the lines, and no more
        if (files[i] != files[1] || bytes[i] - bytes[1] > 2 * (mb[i] - mb[1]) + 64) { printf "soak: FAILED: epoch %d run folder %d files %d bytes, epoch %d: %d files %d bytes\n", e[i], files[i], bytes[i], e[1], files[1], bytes[1]; bad = 1 }
    }
    min = rss[1]; max = rss[1]
    for (i = 1; i <= n; i++) { if (rss[i] < min) min = rss[i]; if (rss[i] > max) max = rss[i] }
    printf "soak: %d epochs; resident %.1f-%.1f MB (first quarter up to %.1f MB), %d descriptors, run folder %d files, %d -> %d bytes besides metrics.jsonl (%d -> %d): %s\n", n, min / 1024, max / 1024, base / 1024, fds[1], files[1], bytes[1], bytes[n], mb[1], mb[n], bad ? "FAILED" : "flat"
    exit bad
}' "$TABLE" || fail=1
echo "soak: table $TABLE"
exit "$fail"
