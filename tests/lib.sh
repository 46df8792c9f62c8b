# The start every shell check shares, sourced after `set -u` as . "$(dirname "$0")/lib.sh"
# (tests/experiments/: .../../lib.sh): B, the build folder ($1, default build); R, its resnet;
# T, a temporary folder removed on exit; PY, Debian's Python with PyTorch (not the first python3
# on PATH); FM, Debian's Fashion-MNIST; ok and bad, which count the checks (bad prints FAIL
# and its arguments); finish NAME [TAIL], the last line of a check: prints
# "NAME: P passed, F failed[TAIL]" and fails when any check did.
B=${1:-build}
R="$B/resnet"
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
PY=/usr/bin/python3
FM=/usr/share/datasets/fashion-mnist
pass=0
fail=0
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*"; }
finish() {
    echo "$1: $pass passed, $fail failed${2:-}"
    [ "$fail" -eq 0 ]
}
# expect_error TEXT command...: the command fails with a status below 128 (an error, not a
# signal) and one line on stderr that holds TEXT (a grep pattern).
expect_error() {
    text=$1
    shift
    "$@" >"$T/out" 2>"$T/err"
    status=$?
    if [ "$status" -ne 0 ] && [ "$status" -lt 128 ] && grep -q -- "$text" "$T/err" &&
        [ "$(wc -l <"$T/err")" -eq 1 ]; then ok
    else bad "'$*' exited $status, stderr: $(cat "$T/err")"; fi
}
