#!/bin/sh
# Every experiment's quick mode, end to end: it must finish, write a well-formed results.csv,
# plots that decode (PNG) and parse (SVG), a summary.md that states the claim, and pass its own
# known-answer checks (tests/experiments/check_NAME.py). Degradation also shows that a second run
# in the same folder reuses the finished runs, that --threads does not change a number, and that
# an interrupted experiment continues to the same results.
# Usage: tests/experiments.sh BUILD_DIR
set -u
. "$(dirname "$0")/lib.sh"
# Threads that wait for work sleep instead of spinning: on a busy machine spinning OpenMP
# threads made the 2-thread quick modes 10-20 times slower (the results do not change).
export OMP_WAIT_POLICY=passive

# The same numbers: two results.csv files equal but for wall-clock columns (named *_s).
same_results() {
    $PY - "$1" "$2" <<'PY'
import csv, sys
def load(p):
    rows = list(csv.reader(open(p)))
    keep = [i for i, h in enumerate(rows[0]) if not h.endswith("_s")]
    return [[r[i] for i in keep] for r in rows]
sys.exit(0 if load(sys.argv[1]) == load(sys.argv[2]) else 1)
PY
}

# Generic checks of one output folder: check_outputs DIR NAME
check_outputs() {
    $PY - "$1" "$2" <<'PY'
import csv, os, sys, xml.etree.ElementTree as ET
d, name = sys.argv[1], sys.argv[2]
errors = []
rows = list(csv.reader(open(os.path.join(d, "results.csv"))))
if len(rows) < 2:
    errors.append("results.csv has no data rows")
elif any(len(r) != len(rows[0]) for r in rows):
    errors.append("results.csv: rows of different lengths")
pngs = [f for f in os.listdir(d) if f.endswith(".png")]
if not pngs:
    errors.append("no PNG plot")
from PIL import Image
for f in pngs:
    im = Image.open(os.path.join(d, f)); im.load()
    if im.size[0] < 400 or im.size[1] < 300:
        errors.append(f + ": too small " + str(im.size))
    svg = os.path.join(d, f[:-4] + ".svg")
    if not os.path.exists(svg):
        errors.append(f + ": no SVG beside it")
    else:
        ET.parse(svg)
summary = open(os.path.join(d, "summary.md")).read()
if not summary.startswith("# " + name) or "**Claim**" not in summary:
    errors.append("summary.md does not name the experiment and its claim")
if "held" not in summary and "hold" not in summary and "show" not in summary:
    errors.append("summary.md does not say whether the claim held")
if not os.path.exists(os.path.join(d, "experiment.json")):
    errors.append("no experiment.json")
for e in errors:
    print(name + ": " + e)
sys.exit(1 if errors else 0)
PY
}

for name in $("$R" experiment --help | sed -n 's/^  \([a-z][a-z-]*\)  .*/\1/p'); do
    out="$T/$name"
    start=$(date +%s)
    if "$R" experiment "$name" --quick --out "$out" --quiet >"$T/log" 2>&1; then
        ok
        echo "$name: quick mode in $(($(date +%s) - start)) s"
    else
        bad "experiment $name --quick exited $?: $(tail -3 "$T/log")"
        continue
    fi
    check_outputs "$out" "$name" && ok || bad "$name: outputs"
    check="tests/experiments/check_$(echo "$name" | tr - _).py"
    if [ -f "$check" ]; then
        $PY "$check" "$out" && ok || bad "$name: $check"
    else
        bad "$name: no $check"
    fi
done

# Reuse: the same command again trains nothing and gives the same results.
cp "$T/degradation/results.csv" "$T/first.csv"
"$R" experiment degradation --quick --out "$T/degradation" >"$T/log" 2>&1 &&
    grep -q "reused" "$T/log" && same_results "$T/first.csv" "$T/degradation/results.csv" && ok ||
    bad "a second degradation run in the same folder did not reuse its runs: $(cat "$T/log")"
# Thread count: one thread gives the same bits as two.
"$R" experiment degradation --quick --threads 1 --quiet --out "$T/deg1" >/dev/null 2>&1 &&
    same_results "$T/first.csv" "$T/deg1/results.csv" && ok ||
    bad "degradation --threads 1 differs from --threads 2"
# Interrupted (SIGINT in the first run) and resumed: the same results as uninterrupted.
"$R" experiment degradation --quick --threads 2 --out "$T/deg-int" >"$T/log" 2>&1 &
pid=$!
i=0
while [ $i -lt 200 ] && ! grep -q "training plain8\|epoch" "$T/log" 2>/dev/null &&
    [ ! -f "$T/deg-int/runs/plain8/checkpoint.safetensors" ]; do
    sleep 0.05
    i=$((i + 1))
done
kill -INT $pid 2>/dev/null
wait $pid
status=$?
if [ "$status" -eq 130 ]; then
    "$R" experiment --resume "$T/deg-int" --quiet >"$T/log2" 2>&1 &&
        same_results "$T/first.csv" "$T/deg-int/results.csv" && ok ||
        bad "resumed degradation differs from the uninterrupted one: $(tail -2 "$T/log2")"
else
    # finished before the signal arrived: still the same results
    same_results "$T/first.csv" "$T/deg-int/results.csv" && ok || bad "degradation exited $status"
fi
# Bad input: a clear one-line error and a nonzero exit.
expect_error "unknown experiment 'nope'" "$R" experiment nope
expect_error "experiment degradation: unknown option '--bogus' (see resnet experiment degradation --help)" "$R" experiment degradation --bogus 3
expect_error "--depths" "$R" experiment degradation --depths 20,x
expect_error "6n+2" "$R" experiment degradation --quick --depths 8,9 --out "$T/bad"
expect_error "other settings: --epochs" "$R" experiment degradation --quick --epochs 3 --out "$T/degradation"
expect_error "no experiment there" "$R" experiment --resume "$T/nothing"
finish experiments
