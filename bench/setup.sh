#!/bin/sh
# Creates bench/.venv: a plain virtual environment (no system site-packages) with the newest
# PyTorch + torchvision and ONNX Runtime + onnx from PyPI, the anchors bench/compare.py compares
# against beside Debian's python3-torch 1.13. compare.py never installs anything itself; it uses
# this environment when it exists and skips its columns (with a note) when it does not.
#
#   sh bench/setup.sh            # onnxruntime + onnx + newest torch/torchvision (several GB:
#                                # PyPI's Linux torch wheel pulls the CUDA libraries with it)
#   sh bench/setup.sh --no-torch # onnxruntime + onnx only (about 60 MB)
#
# Needs /usr/bin/python3 with the venv module (Debian: python3-venv) and network access to PyPI.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
venv="${BENCH_VENV:-$here/.venv}"
with_torch=1
for a in "$@"; do
    case "$a" in
    --no-torch) with_torch=0 ;;
    -h | --help) sed -n '2,12p' "$0"; exit 0 ;;
    *) echo "setup.sh: unknown option '$a'" >&2; exit 2 ;;
    esac
done
if [ ! -x "$venv/bin/python" ]; then
    echo "creating $venv"
    /usr/bin/python3 -m venv "$venv"
fi
py="$venv/bin/python"
"$py" -m pip install --upgrade pip
"$py" -m pip install --upgrade onnxruntime onnx numpy
if [ "$with_torch" = 1 ]; then
    # The default PyPI wheel; torch.compile's CPU backend also needs g++ and Python's headers
    # (Debian: g++, python3-dev), which the benchmark checks for at run time.
    "$py" -m pip install --upgrade torch torchvision
fi
"$py" - <<'PY'
import importlib
for name in ("onnxruntime", "onnx", "numpy", "torch", "torchvision"):
    try:
        print("%-12s %s" % (name, importlib.import_module(name).__version__))
    except Exception as e:  # not installed (--no-torch) or broken
        print("%-12s missing (%s)" % (name, type(e).__name__))
PY
du -sh "$venv"
