#!/usr/bin/env python3
"""`resnet export` against ONNX Runtime: every case of tests/onnx_eval.py (each architecture
family, block ordering and shortcut option, random batch-norm statistics) run by ONNX Runtime
with its default graph optimisations, logits compared with `resnet forward`'s; then a trained
model: its ONNX export and `resnet forward` classify the first Fashion-MNIST test images, which
the script normalises with the mean and std it reads from the ONNX file's metadata, and must
agree on every top-1.

Runs with bench/.venv (sh bench/setup.sh --no-torch: onnxruntime, onnx, numpy from PyPI):
  bench/.venv/bin/python tools/onnx_ort_check.py BUILD_DIR [--model M.safetensors | --train]
      [--images N] [--quick] [CASE...]
--model: a model trained by resnet train; --train: train one here (resnet8-w32-s2, 2000
Fashion-MNIST images, one epoch: a few seconds); neither: the cases only. --quick leaves out
the extra cases (resnet50), as tests/onnx.sh does.
"""
import argparse
import gzip
import os
import subprocess
import sys
import tempfile

import numpy as np
import onnxruntime as ort

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))
import onnx_eval  # noqa: E402  (the cases and helpers, shared with the PyTorch evaluator)

FASHION = "/usr/share/datasets/fashion-mnist"


def session(path):
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1  # the machines these checks run on are shared
    return ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])


def ort_evaluate(model, path, x):
    return session(path).run(["logits"], {"input": x})[0]


def idx_images(path, count):
    with gzip.open(path, "rb") as f:
        raw = f.read()
    n, h, w = (int.from_bytes(raw[4 * i:4 * i + 4], "big") for i in (1, 2, 3))
    count = min(n, count)
    return np.frombuffer(raw, np.uint8, count * h * w, 16).reshape(count, 1, h, w)


def idx_labels(path, count):
    with gzip.open(path, "rb") as f:
        raw = f.read()
    return np.frombuffer(raw, np.uint8, count, 8)


def check_trained(build, work, model, images):
    """Top-1 of ONNX Runtime on the export against resnet forward on the same images."""
    import onnx
    resnet = os.path.join(build, "resnet")
    path = os.path.join(work, "trained.onnx")
    onnx_eval.run([resnet, "export", "--model", model, "--output", path])
    props = {p.key: p.value for p in onnx.load(path).metadata_props}
    if "normalize_mean" not in props:
        print("trained model: no normalize_mean in the ONNX metadata")
        return 1
    mean = np.array([float(v) for v in props["normalize_mean"].split(",")], np.float32)
    std = np.array([float(v) for v in props["normalize_std"].split(",")], np.float32)
    pix = idx_images(os.path.join(FASHION, "t10k-images-idx3-ubyte.gz"), images)
    labels = idx_labels(os.path.join(FASHION, "t10k-labels-idx1-ubyte.gz"), len(pix))
    x = ((pix.astype(np.float32) / 255.0 - mean[None, :, None, None]) / std[None, :, None, None])
    x = x.astype(np.float32)
    onnx_eval.write_safetensors(os.path.join(work, "test.safetensors"), {"input": x})
    onnx_eval.run([resnet, "forward", "--model", model, "--input", os.path.join(work, "test.safetensors"),
                   "--output", os.path.join(work, "logits.safetensors")])
    want = onnx_eval.read_safetensors(os.path.join(work, "logits.safetensors"))[0]["logits"]
    got = session(path).run(["logits"], {"input": x})[0]
    err = onnx_eval.rel_error(got, want)
    agree = int((got.argmax(1) == want.argmax(1)).sum())
    acc_ours = float((want.argmax(1) == labels).mean())
    acc_ort = float((got.argmax(1) == labels).mean())
    ok = agree == len(x) and err <= onnx_eval.TOLERANCE
    print("trained %s on %d Fashion-MNIST test images: top-1 agrees on %d/%d, accuracy %.2f%% "
          "(resnet forward) vs %.2f%% (ONNX Runtime), max rel. error %.2e  %s"
          % (props.get("arch", "?"), len(x), agree, len(x), 100 * acc_ours, 100 * acc_ort, err,
             "ok" if ok else "FAILED"))
    return 0 if ok else 1


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("build")
    ap.add_argument("cases", nargs="*")
    g = ap.add_mutually_exclusive_group()
    g.add_argument("--model", help="a model trained by resnet train")
    g.add_argument("--train", action="store_true", help="train a small model first")
    ap.add_argument("--images", type=int, default=1000, help="test images (default 1000)")
    ap.add_argument("--quick", action="store_true", help="leave out the extra cases")
    a = ap.parse_args()
    print("onnxruntime %s" % ort.__version__)
    failed = onnx_eval.run_cases(a.build, set(a.cases), ort_evaluate, "onnx_ort_check",
                                 extras=not a.quick)
    with tempfile.TemporaryDirectory() as work:
        model = a.model
        if a.train:
            run_dir = os.path.join(work, "run")
            subprocess.run([os.path.join(a.build, "resnet"), "train", "--subset", "2000", "--epochs", "1",
                            "--threads", "1", "--out", run_dir], check=True, stdout=subprocess.DEVNULL)
            model = os.path.join(run_dir, "model.safetensors")
        if model:
            failed += check_trained(a.build, work, model, a.images)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
