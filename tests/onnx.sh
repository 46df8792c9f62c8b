#!/bin/sh
# resnet export (ONNX): every architecture family, block ordering and shortcut option exported,
# checked by Debian's python3-onnx checker and run node by node by a PyTorch evaluator against
# `resnet forward` (tests/onnx_eval.py); clear errors for bad options and unwritable files; and,
# where bench/.venv exists (sh bench/setup.sh --no-torch), the same cases and a trained model's
# top-1 under ONNX Runtime (tools/onnx_ort_check.py).
# Usage: tests/onnx.sh BUILD_DIR
set -u
. "$(dirname "$0")/lib.sh"

if "$PY" tests/onnx_eval.py "$B"; then ok; else bad "tests/onnx_eval.py"; fi

# refused: exit 2 and one line naming the option
refused() { # refused WORD resnet-export-args...
    word=$1
    shift
    "$R" export "$@" >"$T/out" 2>&1
    rc=$?
    [ "$rc" -eq 2 ] && grep -q -- "$word" "$T/out" && ok ||
        bad "export $*: exit $rc, expected 2 and '$word': $(cat "$T/out")"
}
refused --opset --arch resnet8 --output "$T/m.onnx" --opset 10
refused --opset --arch resnet8 --output "$T/m.onnx" --opset 18
refused --batch --arch resnet8 --output "$T/m.onnx" --batch 0
refused --batch --arch resnet8 --output "$T/m.onnx" --batch some
refused --output --arch resnet8
refused --frobnicate --arch resnet8 --output "$T/m.onnx" --frobnicate
[ ! -e "$T/m.onnx" ] && ok || bad "a refused export wrote $T/m.onnx"

# failures name the file: a missing model, a folder that does not exist
"$R" export --model "$T/none.safetensors" --output "$T/m.onnx" >"$T/out" 2>&1 &&
    bad "export of a missing model succeeded" || { grep -q "none.safetensors" "$T/out" && ok ||
    bad "missing model: $(cat "$T/out")"; }
"$R" export --arch resnet8 --output "$T/no/such/m.onnx" >"$T/out" 2>&1 &&
    bad "export into a missing folder succeeded" || { grep -q "no/such/m.onnx" "$T/out" && ok ||
    bad "missing folder: $(cat "$T/out")"; }

# written atomically: an existing file replaced whole, no temporary left beside it
echo old >"$T/m.onnx"
"$R" export --arch resnet8 --classes 3 --output "$T/m.onnx" >/dev/null 2>&1 && [ "$(wc -c <"$T/m.onnx")" -gt 1000 ] &&
    ok || bad "export over an existing file"
[ -z "$(find "$T" -name '*.tmp.*')" ] && ok || bad "temporary files left: $(find "$T" -name '*.tmp.*')"
"$R" export --help | grep -q "normalize_mean" && ok || bad "export --help does not say what the input is"

# ONNX Runtime, when its environment is there (PyPI; the rest of the suite does not need it)
if [ -x bench/.venv/bin/python ] && bench/.venv/bin/python -c "import onnxruntime" 2>/dev/null; then
    if bench/.venv/bin/python tools/onnx_ort_check.py "$B" --quick --train; then ok; else bad "tools/onnx_ort_check.py"; fi
else
    echo "ONNX Runtime check skipped: no bench/.venv with onnxruntime (sh bench/setup.sh --no-torch)"
fi

finish onnx
