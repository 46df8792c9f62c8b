#!/bin/sh
# SIGKILL during `resnet train`, then `resnet train --resume`, again and again until the run
# ends: its model must equal the uninterrupted run's byte for byte (cmp), every checkpoint a
# kill leaves must be whole, every resume must load it and go on from where it stood (never
# from further back), and no temporary file may stay behind.
#   1. K kills at random instants (delays drawn from a fixed seed, spread so that they land in
#      the training steps, the evaluation and the checkpoint writes; a checkpoint is written
#      after every epoch, and the epochs are short);
#   2. kills at chosen calls of the checkpoint, metrics and model writes (open, each write,
#      flush, fsync, close, rename, fsync of the folder), made exact by the failwrite shim
#      (tests/faults/failwrite.c) with FAILWRITE_KILL=1.
# Usage: tools/kill-resume.sh [--quick] [-k K] [--seed S] [BUILD_DIR]
#   default: K=20 over a 100-epoch run, then a kill at most calls of a 2-epoch run (about a minute)
#   --quick: K=4 over 24 epochs, then 10 chosen calls (the test suite: about 10 s)
set -u
K=20
SEED=1
EPOCHS=100
QUICK=0
while [ $# -gt 0 ]; do
    case $1 in
    --quick) QUICK=1 K=4 EPOCHS=24 ;;
    -k) K=$2; shift ;;
    --seed) SEED=$2; shift ;;
    -h | --help) sed -n '2,14p' "$0"; exit 0 ;;
    *) break ;;
    esac
    shift
done
[ "$K" -ge 1 ] 2>/dev/null || { echo "usage: tools/kill-resume.sh [--quick] [-k K>=1] [--seed S] [BUILD_DIR]"; exit 2; }
B=${1:-build}
R="$B/resnet"
FAULTS_DIR="$(dirname "$0")/../tests/faults"
T=$(mktemp -d)
bg=
trap '[ -n "$bg" ] && kill -KILL "$bg" 2>/dev/null; rm -rf "$T"' EXIT
. "$FAULTS_DIR/faultlib.sh"
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive} OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
faults_data "$T/data" 20 40 || { echo "FAIL: cannot generate the data"; exit 1; }
# Short epochs, so that checkpoints come often: 2 steps of 10 images, an evaluation on 40
# images (about 40% of the epoch's compute), a checkpoint of 600 kB.
ARGS="--data mnist --data-dir $T/data --arch resnet8 --batch 10 --threads 1 --quiet"
now_ms() { echo $(($(date +%s%N) / 1000000)); }

# after_kill DIR OUT: where the kill landed, from what it left (the run's output so far, and
# the temporary file of a write cut short)
after_kill() {
    if grep -q "^done:" "$2"; then echo "curves"
    elif [ -n "$(faults_temps "$1" | grep checkpoint)" ]; then echo "checkpoint-write"
    elif [ -n "$(faults_temps "$1" | grep model)" ]; then echo "model-write"
    elif [ -n "$(faults_temps "$1" | grep metrics)" ]; then echo "metrics-write"
    elif ! grep -q "run folder" "$2"; then echo "start-up"
    else echo "step-or-eval"; fi
}

# check_resumed DIR REF WHAT: the run ended as the uninterrupted one, with nothing left over.
check_resumed() {
    cmp -s "$1/model.safetensors" "$2/model.safetensors" && ok ||
        bad "$3: the model differs from the uninterrupted run's"
    [ "$(faults_metrics_untimed "$1/metrics.jsonl")" = "$(faults_metrics_untimed "$2/metrics.jsonl")" ] && ok ||
        bad "$3: the metrics differ from the uninterrupted run's"
    temps=$(faults_temps "$1")
    [ -z "$temps" ] && ok || bad "$3: temporary files left: $temps"
}

# ---- 1. kills at random instants ---------------------------------------------------------
t0=$(now_ms)
"$R" train $ARGS --epochs $EPOCHS --out "$T/ref" >/dev/null 2>"$T/err" ||
    { echo "FAIL: the uninterrupted run: $(cat "$T/err")"; exit 1; }
dur=$(($(now_ms) - t0))
span=$((2 * dur / K + 1)) # delays uniform in [0, 2 T / K): about K kills fit in the run
x=$SEED
run="$T/run"
landed=0
last_step=-1
where=""
finished=0
i=0
while [ $i -lt "$K" ]; do
    i=$((i + 1))
    if [ -f "$run/checkpoint.safetensors" ]; then
        faults_whole "$run/checkpoint.safetensors" >"$T/whole" && ok || bad "kill $((i - 1)) left $(cat "$T/whole")"
        set -- train --resume "$run"
    else # killed before its first checkpoint: the same command again
        set -- train $ARGS --epochs $EPOCHS --out "$run"
    fi
    x=$(((x * 1103515245 + 12345) % 2147483648))
    delay=$((x / 256 % span))
    "$R" "$@" >"$T/out" 2>"$T/err" &
    bg=$!
    sleep "$((delay / 1000)).$(printf %03d $((delay % 1000)))"
    kill -KILL "$bg" 2>/dev/null
    { wait "$bg"; } 2>/dev/null # (without the shell's "Killed")
    st=$?
    bg=
    step=$(sed -n 's/.*from epoch [0-9]*, batch [0-9]* (step \([0-9]*\)).*/\1/p' "$T/out")
    if [ -n "$step" ]; then
        [ "$step" -ge "$last_step" ] && ok || bad "resume $i went back to step $step (the last was at $last_step)"
        last_step=$step
    fi
    if [ "$st" -eq 137 ]; then
        landed=$((landed + 1))
        where="$where $(after_kill "$run" "$T/out")"
    elif [ "$st" -eq 0 ]; then
        finished=1
        break
    else
        bad "attempt $i ($*) exited $st: $(cat "$T/err")"
        break
    fi
done
if [ "$finished" = 0 ]; then
    "$R" train --resume "$run" >"$T/out" 2>"$T/err" && ok || bad "the last resume: $(cat "$T/err")"
fi
check_resumed "$run" "$T/ref" "$landed kills at random instants"
[ "$landed" -ge 1 ] && ok || bad "no kill landed (the run took $dur ms)"
summary=$(echo "$where" | tr ' ' '\n' | grep . | sort | uniq -c | awk '{ printf "%s%s %s", (NR > 1 ? ", " : ""), $1, $2 }')
eval_share=$($PY -c 'import json, sys
m = [json.loads(l) for l in open(sys.argv[1])]
t, e = sum(x["time_s"] for x in m), sum(x["eval_time_s"] for x in m)
print("%.0f%%" % (100 * e / (t + e)))' "$T/ref/metrics.jsonl" 2>/dev/null)
echo "kill-resume: $landed of $K kills landed (seed $SEED, delays < $span ms, a run of $dur ms," \
    "$EPOCHS epochs, evaluation ${eval_share:-?} of the epoch time): $summary"

# ---- 2. kills at chosen calls of the writes ------------------------------------------------
faults_shim || { echo "FAIL: cannot build the failwrite shim"; exit 1; }
"$R" train $ARGS --epochs 2 --out "$T/ref2" >/dev/null 2>"$T/err" || bad "the 2-epoch run: $(cat "$T/err")"
# traced in the folder the cases use, whose name the curves carry
env LD_PRELOAD="$SHIM" FAILWRITE_CALL=open,write,flush,fsync,close,rename FAILWRITE_TRACE=1 \
    FAILWRITE_PATH="$T/k" FAILWRITE_LOG="$T/trace.log" \
    "$R" train $ARGS --epochs 2 --out "$T/k" >/dev/null 2>"$T/err" || bad "the traced run: $(cat "$T/err")"
faults_calls "$T/trace.log" "$T/k" | grep -v " curves" >"$T/calls"
if [ "$QUICK" = 1 ]; then
    # the second checkpoint (after epoch 1: there is one before it to fall back on), call by
    # call, then the metrics line of epoch 1 and the model's rename
    awk '$3 == "checkpoint.safetensors" && $5 == 2 && $1 != "write" ||
         $3 == "checkpoint.safetensors" && $1 == "write" && ($5 == 49 || $5 == 70) ||
         $3 == "(folder)" && $4 == "after-checkpoint.safetensors" && ++folder == 2 ||
         $3 == "metrics.jsonl" && $1 == "write" && $5 == 1 ||
         $3 == "model.safetensors" && $1 == "rename"' "$T/calls" >"$T/cases"
else
    # every call but most tensor writes (each 6th of them)
    awk '$1 != "write" || $5 % 6 == 1 || $3 == "metrics.jsonl"' "$T/calls" >"$T/cases"
fi
cases=0
while read -r class func file kind idx n; do
    d="$T/k"
    rm -rf "$d" "$T/shim.log"
    if [ "$file" = "(folder)" ]; then path=$d; else path=$d/$file; fi
    what="kill at call #$n ($func on $file)"
    {
        env LD_PRELOAD="$SHIM" FAILWRITE_CALL=$class FAILWRITE_NTH=$idx FAILWRITE_KILL=1 \
            FAILWRITE_PATH="$path" FAILWRITE_LOG="$T/shim.log" \
            "$R" train $ARGS --epochs 2 --out "$d" >/dev/null 2>"$T/err"
    } 2>/dev/null
    st=$?
    cases=$((cases + 1))
    if [ "$st" -ne 137 ] || ! grep -q "^kill $class " "$T/shim.log"; then
        bad "$what: exit status $st, no kill: $(cat "$T/shim.log" "$T/err" 2>/dev/null)"
        continue
    fi
    if [ -f "$d/checkpoint.safetensors" ]; then
        faults_whole "$d/checkpoint.safetensors" >"$T/whole" && ok || bad "$what: $(cat "$T/whole")"
        "$R" train --resume "$d" >/dev/null 2>"$T/err"
    else
        "$R" train $ARGS --epochs 2 --out "$d" >/dev/null 2>"$T/err"
    fi
    st=$?
    [ "$st" -eq 0 ] && ok || bad "$what: then the run cannot go on (status $st): $(cat "$T/err")"
    check_resumed "$d" "$T/ref2" "$what"
done <"$T/cases"
echo "kill-resume: kills at $cases chosen calls of the checkpoint, metrics and model writes"
echo "kill-resume: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
