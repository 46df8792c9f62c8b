#!/bin/sh
# The whole test suite: regenerate the PyTorch reference states (live PyTorch, every run), then
# run each test program, the CLI checks and the example. Usage: tools/run-tests.sh TEST_BIN...
# Ends with "tests: N passed, M failed" and a nonzero status if anything failed.
set -u
BUILD=${BUILD:-build}
pass=0
fail=0
failed=""
run() {
    name=$1
    shift
    echo "=== $name"
    start=$(date +%s)
    if "$@"; then
        pass=$((pass + 1))
        echo "--- $name: ok ($(($(date +%s) - start)) s)"
    else
        fail=$((fail + 1))
        failed="$failed $name"
        echo "--- $name: FAILED ($(($(date +%s) - start)) s)"
    fi
}

# Debian's PyTorch lives in /usr/bin/python3; another python3 may come first on PATH.
run torch-reference /usr/bin/python3 tools/torch_ref.py --out "$BUILD/ref"
for t in "$@"; do
    RN_REF_DIR="$BUILD/ref" run "$(basename "$t")" "$t"
done
# The portable kernels, as on a CPU without AVX2 (the same checks against direct loops and
# finite differences).
# On a CPU with AVX-512 the runs above used its microkernels; the AVX2 ones once more, as on
# a CPU without.
for t in "$@"; do
    # PyTorch parity once more with training on channel-blocked activations
    case "$t" in */test_parity) RN_REF_DIR="$BUILD/ref" RN_PARITY_LAYOUT=blocked \
        run "test_parity (blocked activations)" "$t" ;; esac
    case "$t" in */test_kernels) RN_SIMD=generic run "test_kernels (portable C)" "$t" ;; esac
    case "$t" in */test_kernels) grep -q avx512f /proc/cpuinfo 2>/dev/null &&
        RN_SIMD=avx2 run "test_kernels (AVX2, no AVX-512)" "$t" ;; esac
done
run cli sh tests/cli.sh "$BUILD"
run onnx sh tests/onnx.sh "$BUILD"
run train sh tests/train.sh "$BUILD"
run plot sh tests/plot.sh "$BUILD"
run install sh tests/install.sh "$BUILD"
run experiments sh tests/experiments.sh "$BUILD"
run eval-delete-blocks sh tests/experiments/eval_delete.sh "$BUILD"
run faults-kill sh tools/kill-resume.sh --quick "$BUILD"
run faults-write sh tests/faults/write_faults.sh "$BUILD"
# Every allocation of a few scenarios made to fail in turn (a sample; FULL=1 for all of them).
run faults-oom env OMP_WAIT_POLICY=passive "$BUILD/tests/faults/oom"
# Each parser's fuzz harness (make fuzz) a few seconds from its committed corpus, which replays
# every input that once crashed it.
[ -n "${FUZZ_BUILD:-}" ] &&
    run fuzz env FUZZ_BUILD="$FUZZ_BUILD" FUZZ_SECONDS="${TEST_FUZZ_SECONDS:-4}" tools/fuzz.sh
[ -n "$failed" ] && echo "failed:$failed"
echo "tests: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
