#!/bin/sh
# Runs each libFuzzer harness (build-fuzz/fuzz_NAME, from `make fuzz`) for FUZZ_SECONDS on its
# committed seeds in fuzz/corpus/NAME, one harness at a time, and fails if any of them reports a
# crash, a sanitizer error, a leak, a timeout (10 s for one input) or memory above 2 GB.
# Dictionaries: fuzz/safetensors.dict (safetensors, model, checkpoint), fuzz/NAME.dict.
# Inputs the fuzzer finds go to build-fuzz/fuzz-work/NAME (emptied first, so that every run
# starts from the committed seeds; FUZZ_KEEP_WORK=1 keeps them), artefacts of a failure to
# build-fuzz/artifacts/NAME-*, the full log to build-fuzz/fuzz-NAME.log.
# Usage: tools/fuzz.sh [NAME...]   (default: every harness)
# Environment: FUZZ_BUILD (build-fuzz), FUZZ_SECONDS (20), FUZZ_FLAGS (more libFuzzer flags).
# Prints one line per harness: executions, libFuzzer's coverage (cov: edges, ft: features),
# corpus size, and ok / FAILED; ends with "fuzz: N passed, M failed".
set -u
FB=${FUZZ_BUILD:-build-fuzz}
S=${FUZZ_SECONDS:-20}
FLAGS=${FUZZ_FLAGS:-}
names=$*
if [ -z "$names" ]; then
    for b in "$FB"/fuzz_*; do
        [ -x "$b" ] && names="$names ${b#"$FB"/fuzz_}"
    done
fi
[ -n "$names" ] || { echo "fuzz: no harnesses in $FB (run make fuzz)" >&2; exit 1; }
mkdir -p "$FB/artifacts" "$FB/fuzz-work"
pass=0
fail=0
for n in $names; do
    bin="$FB/fuzz_$n"
    work="$FB/fuzz-work/$n"
    log="$FB/fuzz-$n.log"
    [ "${FUZZ_KEEP_WORK:-0}" = 1 ] || rm -rf "$work"
    mkdir -p "$work" "fuzz/corpus/$n"
    dict=""
    case $n in
    safetensors | model | checkpoint) dict=fuzz/safetensors.dict ;;
    *) [ -f "fuzz/$n.dict" ] && dict="fuzz/$n.dict" ;;
    esac
    start=$(date +%s)
    # One thread: the harnesses are single-threaded, and OpenMP's spinning workers would only
    # take the CPU from the fuzzer.
    # shellcheck disable=SC2086
    OMP_NUM_THREADS=1 OMP_WAIT_POLICY=passive "$bin" -max_total_time="$S" -timeout=10 \
        -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$FB/artifacts/$n-" \
        ${dict:+-dict="$dict"} $FLAGS \
        "$work" "fuzz/corpus/$n" >"$log" 2>&1 &
    pid=$!
    wait "$pid"
    rc=$?
    # what a crash or timeout leaves behind: clang's OpenMP runtime registers each process in
    # /dev/shm until a clean exit, and fuzz_cifar writes its files in a folder of its own
    rm -rf "/dev/shm/__KMP_REGISTERED_LIB_${pid}_"* "/dev/shm/rn_fuzz.$pid."* "/tmp/rn_fuzz.$pid."*
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    cov=$(grep -o 'cov: [0-9]* ft: [0-9]* corp: [0-9]*' "$log" | tail -n 1)
    line="$n: ${runs:-?} executions, ${cov:-no coverage line}, $(($(date +%s) - start)) s"
    if [ "$rc" -eq 0 ] && ! grep -q -E '^==[0-9]+==ERROR|runtime error|^SUMMARY: ' "$log"; then
        pass=$((pass + 1))
        echo "$line: ok"
    else
        fail=$((fail + 1))
        echo "$line: FAILED (status $rc; $log):"
        grep -E 'ERROR|runtime error|SUMMARY|Test unit written|^fuzz: ' "$log" | head -n 8
    fi
done
echo "fuzz: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
