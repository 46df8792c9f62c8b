#!/bin/sh
# The plot verb and the curves resnet train draws: PNGs that decode, SVGs that parse and carry
# their words, the same bytes for the same input, nothing on stderr on success, and a one-line
# error (nonzero exit, the file or option named) for a missing or malformed metrics.jsonl and a
# bad option. Usage: tests/plot.sh BUILD_DIR
set -u
. "$(dirname "$0")/lib.sh"
case "$R" in /*) ;; *) R="$(pwd)/$R" ;; esac
# Under AddressSanitizer: what fontconfig (through cairo's fonts) and libltdl (PLplot's driver
# loader) keep for the life of the process is no leak of ours (tests/lsan.supp), and the report
# of suppressions used would fill the stderr that must stay empty below.
export LSAN_OPTIONS="${LSAN_OPTIONS:-suppressions=$(cd "$(dirname "$0")" && pwd)/lsan.supp}:print_suppressions=0"

expect_exit() { # expect_exit STATUS TEXT command...: that exit status, TEXT in a one-line error
    want=$1 text=$2
    shift 2
    "$@" >"$T/out" 2>"$T/err"
    status=$?
    if [ "$status" -eq "$want" ] && grep -q -- "$text" "$T/err" && [ "$(wc -l <"$T/err")" -eq 1 ]; then ok
    else bad "'$*' exited $status (expected $want), stderr: $(cat "$T/err")"; fi
}

expect_quiet_success() { # command...: exit 0 and an empty stderr
    if "$@" >"$T/out" 2>"$T/err" && [ ! -s "$T/err" ]; then ok
    else bad "'$*' failed or printed to stderr: $(cat "$T/err")"; fi
}

# check_figure BASE WORD...: BASE.png decodes to a picture of a reasonable size, BASE.svg parses
# as XML and names every WORD, and no temporary file is left beside them.
check_figure() {
    base=$1
    shift
    $PY - "$base" "$@" <<'PY' && ok || bad "figure $base"
import sys, xml.etree.ElementTree as ET
from PIL import Image
base, words = sys.argv[1], sys.argv[2:]
im = Image.open(base + ".png"); im.load()
assert im.size[0] >= 800 and im.size[1] >= 400, im.size
svg = open(base + ".svg", encoding="utf-8").read()
ET.fromstring(svg)
missing = [w for w in words if w not in svg]
assert not missing, "the SVG lacks " + repr(missing)
PY
    ls "$(dirname "$base")" | grep -q '\.tmp$' && bad "a .tmp file left beside $base"
}

# ---- two runs written by hand: one evaluated on the test set, one on a validation split ----
mkdir -p "$T/alpha" "$T/beta"
$PY - "$T" <<'PY' || bad "cannot write the metrics files"
import json, math, sys
for name, kind, scale in (("alpha", "test", 1.0), ("beta", "val", 1.4)):
    with open("%s/%s/metrics.jsonl" % (sys.argv[1], name), "w") as f:
        for e in range(1, 13):
            loss, err = 2.0 * scale * math.exp(-e / 4) + 0.3, 0.6 * scale * math.exp(-e / 3) + 0.08
            f.write(json.dumps({"epoch": e, "train_loss": loss, "train_error": err,
                                kind + "_loss": loss * 1.1 + 0.05, kind + "_error": err + 0.02,
                                "lr": 0.05, "time_s": 1.5}) + "\n")
PY

expect_quiet_success "$R" plot "$T/alpha" "$T/beta" --output "$T/both" --title "two runs"
[ "$(cat "$T/out")" = "$(printf '%s\n%s' "$T/both.png" "$T/both.svg")" ] && ok ||
    bad "plot printed '$(cat "$T/out")', not the two paths"
check_figure "$T/both" "two runs" epoch loss "error (%)" "alpha train" "alpha test" "beta val"

# the same input, the same bytes
cp "$T/both.png" "$T/both1.png" && cp "$T/both.svg" "$T/both1.svg"
"$R" plot "$T/alpha" "$T/beta" --output "$T/both" --title "two runs" >/dev/null 2>&1
cmp -s "$T/both.png" "$T/both1.png" && cmp -s "$T/both.svg" "$T/both1.svg" && ok ||
    bad "the same runs drew different files"

# default names: RUN_DIR/curves for one run, ./curves for several; a .png suffix is dropped
expect_quiet_success "$R" plot "$T/alpha/"
check_figure "$T/alpha/curves" "alpha train"
(cd "$T" && "$R" plot alpha beta >/dev/null 2>&1) && [ -s "$T/curves.png" ] && [ -s "$T/curves.svg" ] &&
    ok || bad "plot of two runs did not write ./curves.png and ./curves.svg"
expect_quiet_success "$R" plot "$T/beta" --output "$T/named.png"
[ -s "$T/named.png" ] && [ -s "$T/named.svg" ] && [ ! -e "$T/named.png.png" ] && ok ||
    bad "--output named.png did not give named.png and named.svg"

"$R" plot --help >"$T/out" 2>&1 && grep -q "usage: resnet plot" "$T/out" && ok || bad "plot --help"
"$R" --help | grep -q "^  plot " && ok || bad "resnet --help does not list plot"

# ---- bad input: one line naming the file or option, nothing drawn ----
mkdir -p "$T/empty" "$T/broken" "$T/nofield" "$T/long"
expect_exit 1 "$T/empty/metrics.jsonl" "$R" plot "$T/empty"
head -3 "$T/alpha/metrics.jsonl" >"$T/broken/metrics.jsonl"
echo '{"epoch": 4, "train_loss": 0.5,' >>"$T/broken/metrics.jsonl"
expect_exit 1 "$T/broken/metrics.jsonl: line 4" "$R" plot "$T/broken"
echo '{"epoch": 1, "train_loss": 0.5, "test_loss": 0.6, "test_error": 0.2}' >"$T/nofield/metrics.jsonl"
expect_exit 1 'metrics.jsonl: line 1: no "train_error"' "$R" plot "$T/nofield"
$PY -c "print('{\"epoch\": 1, \"note\": \"' + 'x' * 300000 + '\"}')" >"$T/long/metrics.jsonl"
expect_exit 1 "$T/long/metrics.jsonl: line 1 is longer" "$R" plot "$T/long"
expect_exit 1 "$T/broken/metrics.jsonl" "$R" plot "$T/alpha" "$T/broken" --output "$T/mixed"
[ ! -e "$T/mixed.png" ] && [ ! -e "$T/broken/curves.png" ] && ok || bad "a failed plot left a picture"
expect_exit 2 "'--colour'" "$R" plot "$T/alpha" --colour red
expect_exit 2 "which runs" "$R" plot
expect_exit 2 "option --output needs a value" "$R" plot "$T/alpha" --output
expect_exit 1 "$T/nowhere/x.png" "$R" plot "$T/alpha" --output "$T/nowhere/x"

# ---- resnet train draws its own curves at the end of a run ----
if [ -d "$FM" ]; then
    "$R" train --arch resnet8 --subset 200 --epochs 2 --batch 50 --threads 1 --quiet \
        --out "$T/run" >"$T/out" 2>"$T/err"
    status=$?
    [ "$status" -eq 0 ] && [ ! -s "$T/err" ] && ok || bad "train exited $status: $(cat "$T/err")"
    grep -q "^curves: $T/run/curves.png, $T/run/curves.svg$" "$T/out" && ok ||
        bad "train did not print its curves: $(tail -2 "$T/out")"
    check_figure "$T/run/curves" resnet8 "run train" "run test" epoch
    # a picture that cannot be written costs the run nothing: a warning, exit status 0
    mkdir -p "$T/run2/curves.png"
    "$R" train --arch resnet8 --subset 100 --epochs 1 --batch 50 --threads 1 --quiet \
        --out "$T/run2" >"$T/out" 2>"$T/err"
    status=$?
    [ "$status" -eq 0 ] && [ -s "$T/run2/model.safetensors" ] && grep -q "warning: .*curves.png" "$T/err" &&
        [ "$(wc -l <"$T/err")" -eq 1 ] && ok || bad "train with unwritable curves exited $status: $(cat "$T/err")"
else
    bad "no Fashion-MNIST at $FM (Debian's dataset-fashion-mnist)"
fi

finish plot
