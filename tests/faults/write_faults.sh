#!/bin/sh
# Write failures during `resnet train`: the failwrite shim (tests/faults/failwrite.c, LD_PRELOAD)
# makes one call of a short run with checkpoints fail (open, write, flush, fsync, close or
# rename of a file in the run folder, with ENOSPC, EIO or EACCES), then checks that the run
# stops with a nonzero status and a message naming the file and the cause, that no temporary
# file is left, that the checkpoint and model in the folder are whole, and that resuming from
# what was left ends with the uninterrupted run's model, bit for bit. Then a read-only run
# folder, a full disk (a 1 MiB tmpfs where mount works, else the shim's ENOSPC) and a run
# folder deleted while training.
# Usage: tests/faults/write_faults.sh BUILD_DIR
#   default: one call of each kind on each file (about 25 cases);
#   FULL=1: every call the run makes (about 420 cases, several minutes).
set -u
B=${1:-build}
R="$B/resnet"
FAULTS_DIR=$(dirname "$0")
T=$(mktemp -d)
bg=
cleanup() {
    [ -n "$bg" ] && kill -KILL "$bg" 2>/dev/null
    mountpoint -q "$T/full" 2>/dev/null && umount "$T/full"
    chmod -R u+w "$T" 2>/dev/null
    rm -rf "$T"
}
trap cleanup EXIT
. "$FAULTS_DIR/faultlib.sh"
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive} OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
faults_shim || { echo "FAIL: cannot build the failwrite shim"; exit 1; }
faults_data "$T/data" 50 100 || { echo "FAIL: cannot generate the data"; exit 1; }
ARGS="--data mnist --data-dir $T/data --arch resnet8 --batch 25 --epochs 2 --threads 1 --quiet"
CLASSES=open,write,flush,fsync,close,rename

cause_of() {
    case $1 in
    ENOSPC) echo "No space left on device" ;;
    EIO) echo "Input/output error" ;;
    EACCES) echo "Permission denied" ;;
    ENOENT) echo "No such file or directory" ;;
    esac
}

# shim VAR=VALUE... COMMAND...: COMMAND under the shim, with these settings.
shim() {
    env LD_PRELOAD="$SHIM" FAILWRITE_LOG="$T/shim.log" "$@"
}

# resumed DIR WHAT: what DIR holds carries the run on (a resume, or with no checkpoint yet the
# same command again) to the uninterrupted run's model and metrics.
resumed() {
    if [ -f "$1/checkpoint.safetensors" ]; then "$R" train --resume "$1" >/dev/null 2>"$T/err2"
    else "$R" train $ARGS --out "$1" >/dev/null 2>"$T/err2"; fi
    st=$?
    if [ "$st" -ne 0 ]; then bad "$2: then the run cannot go on (status $st): $(cat "$T/err2")"
    elif ! cmp -s "$1/model.safetensors" "$T/ref/model.safetensors"; then
        bad "$2: resumed, the model differs from the uninterrupted run's"
    elif [ "$(faults_metrics_untimed "$1/metrics.jsonl")" != "$(faults_metrics_untimed "$T/ref/metrics.jsonl")" ]; then
        bad "$2: resumed, the metrics differ from the uninterrupted run's"
    else ok; fi
}

# whole DIR WHAT: no temporary file left; the checkpoint, model and metrics there are whole.
whole() {
    temps=$(faults_temps "$1")
    [ -z "$temps" ] && ok || bad "$2: temporary files left: $temps"
    for f in checkpoint.safetensors model.safetensors; do
        [ -f "$1/$f" ] || continue
        faults_whole "$1/$f" >"$T/whole" && ok || bad "$2: $(cat "$T/whole")"
    done
    if [ -f "$1/model.safetensors" ]; then
        "$R" info --model "$1/model.safetensors" >/dev/null 2>"$T/err2" && ok ||
            bad "$2: the model left cannot be loaded: $(cat "$T/err2")"
    fi
    if [ -f "$1/metrics.jsonl" ]; then
        faults_metrics "$1/metrics.jsonl" && ok || bad "$2: metrics.jsonl has a broken line"
    fi
}

# ---- the reference run, and the calls it makes ------------------------------------------
"$R" train $ARGS --out "$T/ref" >/dev/null 2>"$T/err" || { echo "FAIL: the reference run: $(cat "$T/err")"; exit 1; }
# in the folder the cases use: the curves' SVG carries its name, and so the number of writes
rm -f "$T/shim.log"
shim FAILWRITE_CALL=$CLASSES FAILWRITE_TRACE=1 FAILWRITE_PATH="$T/case" \
    "$R" train $ARGS --out "$T/case" >/dev/null 2>"$T/err" && ok || bad "run under the shim: $(cat "$T/err")"
cmp -s "$T/case/model.safetensors" "$T/ref/model.safetensors" && ok ||
    bad "the shim alone (no fault) changes the model"
mv "$T/shim.log" "$T/trace.log"
faults_calls "$T/trace.log" "$T/case" >"$T/calls"
total=$(wc -l <"$T/calls")
[ "$total" -gt 100 ] && ok || bad "the shim saw only $total calls"
# the rename that puts the first checkpoint in place: before it, there is none to keep
first_ckpt=$(awk '$1 == "rename" && $3 == "checkpoint.safetensors" { print $6; exit }' "$T/calls")
if [ "${FULL:-0}" = 1 ]; then
    cp "$T/calls" "$T/cases"
else
    # the middle call of each kind on each file (the training curves: their writes only)
    awk '{ key = $1 " " $3 " " $4; if (!(key in cnt)) order[++k] = key; cnt[key]++; at[key, cnt[key]] = $0 }
         END { for (i = 1; i <= k; i++) { key = order[i]; split(key, f, " ")
                   if (f[2] ~ /^curves/ && f[1] != "write") continue
                   print at[key, int((cnt[key] + 1) / 2)] } }' "$T/calls" >"$T/cases"
fi

# ---- one failing call at a time ----------------------------------------------------------
i=0
cases=0
while read -r class func file kind idx n; do
    i=$((i + 1))
    case $((i % 3)) in 0) e=ENOSPC ;; 1) e=EIO ;; *) e=EACCES ;; esac
    cause=$(cause_of $e)
    d="$T/case"
    rm -rf "$d" "$T/shim.log"
    what="call #$n ($func on $file, $e)"
    if [ "$file" = "(folder)" ]; then name=$d where=$d; else name=$file where=$d/$file; fi
    # the shim's line: "fail CLASS FUNCTION #I PATH CAUSE", PATH this file or its temporary
    shim FAILWRITE_CALL=$class FAILWRITE_NTH=$idx FAILWRITE_ERRNO=$e FAILWRITE_PATH="$where" \
        "$R" train $ARGS --out "$d" >"$T/out" 2>"$T/err"
    st=$?
    cases=$((cases + 1))
    if ! grep -q "^fail $class [a-z0-9]* #$idx $where[. ]" "$T/shim.log" 2>/dev/null; then
        bad "$what: the shim did not fail that call (the run's calls changed?): $(cat "$T/shim.log" 2>/dev/null)"
        continue
    fi
    if [ "$st" -ne 0 ]; then echo "$class error" >>"$T/tally"
    elif [ -s "$T/err" ]; then echo "$class warning" >>"$T/tally"
    else echo "$class silent" >>"$T/tally"; fi
    case $file in
    curves.*) # a picture that cannot be drawn costs the run nothing: a warning at most
        if [ "$st" -ne 0 ]; then bad "$what: exit status $st: $(cat "$T/err")"
        elif [ -s "$T/err" ] && ! grep -q "$file" "$T/err"; then
            bad "$what: the warning does not name the file: $(cat "$T/err")"
        else ok; fi ;;
    *)
        # the folder's fsync after a picture was renamed into it belongs to the curves: a warning
        if [ "$file" = "(folder)" ] && [ "$st" -eq 0 ] && grep -q "no training curves" "$T/err" &&
            grep -q "$cause" "$T/err"; then ok
        elif [ "$st" -lt 1 ] || [ "$st" -ge 128 ]; then bad "$what: exit status $st (an error was due): $(cat "$T/err")"
        elif ! grep -q -- "$name" "$T/err" || ! grep -q "$cause" "$T/err"; then
            bad "$what: the message does not name $name and '$cause': $(cat "$T/err")"
        else ok; fi ;;
    esac
    if [ ! -f "$d/checkpoint.safetensors" ] && [ "$n" -gt "$first_ckpt" ]; then
        bad "$what: the checkpoint is gone"
    fi
    whole "$d" "$what"
    resumed "$d" "$what"
done <"$T/cases"
echo "write-faults: $cases failing calls of $total (per kind of call: error exits; training curves only: warnings, nothing said)"
for c in open write flush fsync close rename; do
    awk -v c=$c '$1 == c { n[$2]++; all++ } END { if (all) printf "  %-6s %3d: %d error exits, %d warnings, %d nothing said\n", c, all, n["error"], n["warning"], n["silent"] }' "$T/tally"
done

# ---- a read-only run folder (root writes anyway: there the shim answers EACCES) -------------
d="$T/ro"
"$R" train $ARGS --out "$d" --stop-after 3 >/dev/null 2>&1
cp "$d/checkpoint.safetensors" "$T/ro.ckpt"
if [ "$(id -u)" = 0 ]; then
    shim FAILWRITE_CALL=open,rename,mkdir FAILWRITE_NTH=1 FAILWRITE_TIMES=0 FAILWRITE_ERRNO=EACCES \
        FAILWRITE_PATH="$d" "$R" train --resume "$d" >/dev/null 2>"$T/err"
    st=$?
else
    chmod a-w "$d"
    "$R" train --resume "$d" >/dev/null 2>"$T/err"
    st=$?
    chmod u+w "$d"
fi
[ "$st" -ge 1 ] && [ "$st" -lt 128 ] && grep -q "$d/" "$T/err" && grep -q "Permission denied" "$T/err" && ok ||
    bad "resume in a read-only run folder: status $st: $(cat "$T/err")"
cmp -s "$d/checkpoint.safetensors" "$T/ro.ckpt" && ok || bad "read-only run folder: the checkpoint changed"
whole "$d" "read-only run folder"
resumed "$d" "read-only run folder"

# a fresh run whose folder cannot be made
d="$T/roparent/run"
mkdir "$T/roparent"
if [ "$(id -u)" = 0 ]; then
    shim FAILWRITE_CALL=mkdir FAILWRITE_NTH=1 FAILWRITE_TIMES=0 FAILWRITE_ERRNO=EACCES \
        FAILWRITE_PATH="$d" "$R" train $ARGS --out "$d" >/dev/null 2>"$T/err"
    st=$?
else
    chmod a-w "$T/roparent"
    "$R" train $ARGS --out "$d" >/dev/null 2>"$T/err"
    st=$?
    chmod u+w "$T/roparent"
fi
[ "$st" -ge 1 ] && [ "$st" -lt 128 ] && grep -q "$d" "$T/err" && grep -q "Permission denied" "$T/err" &&
    [ ! -e "$d" ] && ok || bad "--out in a read-only folder: status $st: $(cat "$T/err")"

# ---- a full disk: a 1 MiB tmpfs holds one checkpoint (600 kB), not a second beside it -----
d="$T/full/run"
mkdir "$T/full"
if [ "$(id -u)" = 0 ] && mount -t tmpfs -o size=1m tmpfs "$T/full" 2>/dev/null; then
    how="1 MiB tmpfs"
    "$R" train $ARGS --out "$d" >/dev/null 2>"$T/err"
    st=$?
else
    how="the shim's ENOSPC from the second checkpoint on"
    # from the middle of the second checkpoint on, every write fails
    n=$(awk '$1 == "write" && $3 == "checkpoint.safetensors" { c++ } END { print int(c / 2) }' "$T/calls")
    shim FAILWRITE_CALL=write FAILWRITE_NTH=$n FAILWRITE_TIMES=0 FAILWRITE_ERRNO=ENOSPC \
        FAILWRITE_PATH="$d" "$R" train $ARGS --out "$d" >/dev/null 2>"$T/err"
    st=$?
fi
[ "$st" -ge 1 ] && [ "$st" -lt 128 ] && grep -q "checkpoint.safetensors" "$T/err" &&
    grep -q "No space left on device" "$T/err" && ok || bad "full disk ($how): status $st: $(cat "$T/err")"
whole "$d" "full disk ($how)"
[ -f "$d/checkpoint.safetensors" ] && ok || bad "full disk ($how): no checkpoint left"
cp -r "$d" "$T/fullcopy"
mountpoint -q "$T/full" && umount "$T/full"
resumed "$T/fullcopy" "full disk ($how), moved elsewhere"

# ---- the run folder deleted while training -----------------------------------------------
d="$T/del/run"
mkdir "$T/del"
"$R" train $ARGS --epochs 200 --out "$d" >/dev/null 2>"$T/err" &
bg=$!
w=0
while [ $w -lt 600 ] && ! grep -q epoch "$d/metrics.jsonl" 2>/dev/null; do sleep 0.05; w=$((w + 1)); done
w=0
while [ -e "$T/del" ] && [ $w -lt 50 ]; do rm -rf "$T/del" 2>/dev/null; w=$((w + 1)); done
w=0
while kill -0 "$bg" 2>/dev/null && [ $w -lt 600 ]; do sleep 0.05; w=$((w + 1)); done
if kill -0 "$bg" 2>/dev/null; then
    bad "run folder deleted: the run goes on after 30 s"
    kill -KILL "$bg"
fi
wait "$bg"
st=$?
bg=
[ "$st" -ge 1 ] && [ "$st" -lt 128 ] && grep -q "$d/" "$T/err" && grep -q "No such file or directory" "$T/err" &&
    ok || bad "run folder deleted while training: status $st: $(cat "$T/err")"

echo "write-faults: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
