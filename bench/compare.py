#!/usr/bin/python3
"""Side-by-side benchmark: this engine (build/resnet bench) against PyTorch and ONNX Runtime on
the same shapes and the same thread counts, in one run, with the machine's FMA peak measured in
the same run. Prints one table (markdown) plus the details behind each cell, and the kernel
tables: every distinct convolution of resnet20 and resnet50, forward, backward-data and
backward-weights, one table per network and thread count.

    /usr/bin/python3 bench/compare.py            # full run (about 30 minutes, half of it kernels)
    /usr/bin/python3 bench/compare.py --quick    # smoke run: few iterations
    /usr/bin/python3 bench/compare.py --threads 2 --rows r20-train,r50-b1 --out result.json
    /usr/bin/python3 bench/compare.py --kernels  # the kernel tables only (about 15 minutes)
    /usr/bin/python3 bench/compare.py --rounds 3 # every cell in 3 passes, steps pooled

Engines (a column is skipped, with a note, when its interpreter or package is missing):
  ours          build/resnet bench ... --json (run `make` first)
  PyTorch 1.13  Debian's python3-torch, run by /usr/bin/python3 (the interpreter of this script)
  PyTorch new   the newest PyTorch from PyPI in bench/.venv (made by bench/setup.sh)
  ONNX Runtime  onnxruntime from PyPI in bench/.venv; inference rows only; the models are exported
                by torch.onnx.export (opset 13, constant folding) from Debian's PyTorch
PyTorch variants (see VARIANTS): training eager NCHW and eager channels_last; inference with
1.x trace + freeze + optimize_for_inference, with 2.x eager channels_last; with 2.x also
torch.compile (by default only at the largest thread count: compiling costs 5-60 s per network
and thread count). The fastest variant counts. CIFAR networks are the modules
of tools/torch_ref.py (imported, not copied); resnet18/50 are torchvision's.

Timing: perf_counter around zero_grad / forward / loss / backward / step (training), or one
forward in evaluation mode under inference_mode / no_grad (inference), after warm-up steps;
median of 10 (of at least 6 when 10 would take over 20 s: resnet56 training and resnet50 at
batch 16 with 1 thread). Ours: median of up to 10 steps, at least 3 unless a step takes over
6 s (see SETTINGS). Every process gets OMP_NUM_THREADS, OPENBLAS_NUM_THREADS and
MKL_NUM_THREADS = T, PyTorch also torch.set_num_threads(T), ONNX Runtime intra_op_num_threads = T
(inter_op 1, sequential, all graph optimisations), ours --threads T.
FLOPs: 2 x multiply-adds per image (rn_net_macs) for a forward pass, 3 x that for a training
step. The FMA peak comes from bench/fma_peak.c, compiled here with cc -O2 -mavx2 -mfma -mavx512f
-fopenmp: 512-bit FMAs where the CPU has AVX-512F (the peak any engine could reach there), 256-bit
ones elsewhere; the table's header says which.
Ratios are speeds: ours img/s / theirs img/s (above 1 = ours faster).

Rounds (--rounds R): the whole measurement, every engine, row and thread count, R times over,
in passes that take ours first and the anchors after it on even passes, the anchors first on
odd ones; each cell's medians are then over the steps of all its passes together. On a shared
machine whose speed drifts over minutes (up to 1.5x per cell between two runs 12 minutes
apart), a slow spell then falls on every engine's cells rather than on one engine's: a ratio
compares times taken in the same stretches of the run.

Kernel tables (rows r20-kernels, r50-kernels): ours is `resnet bench --kernels --json` (every
distinct convolution shape of the network and its count, timed alone: the channel-blocked
kernels where training runs on channel-blocked activations, as `bench --mode train` reports,
rn_conv_forward / rn_conv_backward elsewhere); PyTorch runs the same shapes (taken from our output) with the same batch and
threads: torch.nn.functional.conv2d (no bias) for forward, torch.ops.aten.convolution_backward
with output_mask (input only) for backward-data and (weight only) for backward-weights, under
no_grad, eager NCHW and channels_last (input, weight and output gradient all converted), the
fastest per cell. Median over up to kern_iters runs per shape and direction (SETTINGS).
FLOPs: 2 x N x K x C x R x S x OH x OW for each direction. Totals weigh each shape by its
count; the input gradient of the network's first convolution, which training never computes,
is measured (marked *) but left out of them.

This file is also its own worker: `compare.py --worker torch|ort|export ...` runs one engine
under the interpreter that has it and prints RESULT / VERSION lines (JSON) on stdout.
"""
import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
WORK = os.path.join(HERE, ".work")
DEBIAN_PY = "/usr/bin/python3"

# key: (label, arch, mode, (c, h, w), batch, classes)
ROWS = {
    "r20-train": ("resnet20 train 3x32x32 b128", "resnet20", "train", (3, 32, 32), 128, 10),
    "r56-train": ("resnet56 train 3x32x32 b128", "resnet56", "train", (3, 32, 32), 128, 10),
    "r20m-train": ("resnet20 train 1x28x28 b128", "resnet20", "train", (1, 28, 28), 128, 10),
    "r8w-train": ("resnet8-w32-s2 train 1x28x28 b128", "resnet8-w32-s2", "train", (1, 28, 28),
                  128, 10),
    "r18-b1": ("resnet18 infer 3x224x224 b1", "resnet18", "infer", (3, 224, 224), 1, 1000),
    "r18-b16": ("resnet18 infer 3x224x224 b16", "resnet18", "infer", (3, 224, 224), 16, 1000),
    "r50-b1": ("resnet50 infer 3x224x224 b1", "resnet50", "infer", (3, 224, 224), 1, 1000),
    "r50-b16": ("resnet50 infer 3x224x224 b16", "resnet50", "infer", (3, 224, 224), 16, 1000),
    # kernel tables: every distinct convolution of the network at this batch size
    "r20-kernels": ("resnet20 kernels 3x32x32 b128", "resnet20", "kernels", (3, 32, 32), 128, 10),
    "r50-kernels": ("resnet50 kernels 3x224x224 b16", "resnet50", "kernels", (3, 224, 224), 16,
                    1000),
}
KERNEL_DIRS = ("forward", "backward_data", "backward_weights")
CIFAR_ARCHS = ("resnet20", "resnet56", "resnet8-w32-s2")  # tools/torch_ref.py builds them
# PyTorch variants tried by default, per mode and major version (--variants chooses others).
# torch.compile runs only at the thread counts of --compile-threads. Left out to keep a full run
# near 15 minutes, because in two trial runs (resnet18/50, batch 1 and 16, 1 and 2 threads) they
# never beat the best variant of the same version beyond the noise: eager NCHW inference (both
# versions; channels_last was as fast or faster), 1.x eager channels_last inference (trace +
# freeze + optimize_for_inference was faster, 1.3-2x, except once within its own noise).
VARIANTS = {("train", 1): ("eager", "channels_last"), ("infer", 1): ("jit-freeze",),
            ("train", 2): ("eager", "channels_last", "compile"),
            ("infer", 2): ("channels_last", "compile"),
            ("kernels", 1): ("eager", "channels_last"), ("kernels", 2): ("eager", "channels_last")}
ALL_VARIANTS = ("eager", "channels_last", "jit-freeze", "compile")

# Iterations. Ours is slow before optimisation: its measurements stop after max_s seconds once
# 3 steps are timed (after 3 x max_s whatever the count). The anchors' stop early (after
# min_iters) only in pathological cases. torch.compile warms up 3 steps (the first compiles).
# kern_*: each shape and direction of a kernel table, ours and PyTorch alike (stop after
# kern_max_s seconds once kern_min_iters runs are timed; ours after 3 x kern_max_s regardless).
SETTINGS = {
    "full": dict(ours_warmup=1, ours_iters=10, ours_max_s=6.0,
                 pt_warmup=2, pt_iters=10, pt_min_iters=6, pt_max_s=20.0,
                 kern_warmup=2, kern_iters=10, kern_min_iters=3, kern_max_s=2.0),
    "quick": dict(ours_warmup=1, ours_iters=3, ours_max_s=2.0,
                  pt_warmup=1, pt_iters=3, pt_min_iters=2, pt_max_s=5.0,
                  kern_warmup=1, kern_iters=3, kern_min_iters=2, kern_max_s=0.5),
}
LR, MOMENTUM, WEIGHT_DECAY = 0.01, 0.9, 1e-4


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def emit(kind, obj):
    print(kind + " " + json.dumps(obj), flush=True)


# ---------------------------------------------------------------------------------------------
# Workers (run under the interpreter that has the engine).

def measure(step, warmup, iters, max_s, min_iters, min_warmup=1):
    """Returns (sorted step times in s, time of the first warm-up step or None). After
    min_warmup steps, warm-up stops early when a step takes over half a second."""
    first = None
    for i in range(warmup):
        t0 = time.perf_counter()
        step()
        dt = time.perf_counter() - t0
        if i == 0:
            first = dt
        if i + 1 >= min_warmup and dt > 0.5:
            break
    times, spent = [], 0.0
    while len(times) < iters:
        t0 = time.perf_counter()
        step()
        dt = time.perf_counter() - t0
        times.append(dt)
        spent += dt
        if spent > max_s and len(times) >= min_iters:
            break
    return sorted(times), first


def torch_versions(torch):
    cfg = torch.__config__.show()
    dnn = None
    for line in cfg.splitlines():
        for tag in ("oneDNN v", "MKL-DNN v"):
            if tag in line:
                dnn = line.split(tag)[1].split()[0]
    blas = "MKL" if "BLAS_INFO=mkl" in cfg else ("OpenBLAS/generic" if "BLAS_INFO" in cfg else "?")
    try:
        import torchvision
        tv = torchvision.__version__
    except Exception as e:  # noqa: BLE001 - report, do not fail
        tv = "missing (%s)" % type(e).__name__
    return dict(torch=torch.__version__, torchvision=tv, onednn=dnn, blas=blas,
                python=platform.python_version(), executable=sys.executable)


def compiler_ok():
    """torch.compile's CPU backend compiles C++: it needs a C++ compiler and Python.h."""
    import sysconfig
    inc = sysconfig.get_paths().get("include", "")
    return bool(shutil.which("g++") or shutil.which("c++")) and os.path.exists(
        os.path.join(inc, "Python.h"))


def kernel_steps(torch, F, shape, batch, channels_last):
    """The three steps of one convolution shape [c, h, w, k, r, stride, pad]."""
    c, h, w, k, r, stride, pad = shape
    oh, ow = (h + 2 * pad - r) // stride + 1, (w + 2 * pad - r) // stride + 1
    g = torch.Generator().manual_seed(0)
    x = torch.randn(batch, c, h, w, generator=g)
    wt = torch.randn(k, c, r, r, generator=g)
    dy = torch.randn(batch, k, oh, ow, generator=g)
    if channels_last:
        x, wt, dy = (t.contiguous(memory_format=torch.channels_last) for t in (x, wt, dy))
    cb = torch.ops.aten.convolution_backward
    st, pd = [stride, stride], [pad, pad]

    def fwd():
        F.conv2d(x, wt, None, stride, pad)

    def bwd_data():
        cb(dy, x, wt, None, st, pd, [1, 1], False, [0, 0], 1, [True, False, False])

    def bwd_weights():
        cb(dy, x, wt, None, st, pd, [1, 1], False, [0, 0], 1, [False, True, False])
    return dict(forward=fwd, backward_data=bwd_data, backward_weights=bwd_weights)


def worker_torch_kernels(torch, F, key, variants, shapes, threads, s):
    """One RESULT per variant: every shape, every direction."""
    batch = ROWS[key][4]
    for var in variants:
        res = dict(engine="torch", row=key, variant=var, threads=threads, kernels=[])
        try:
            with torch.no_grad():
                for shape in shapes:
                    steps = kernel_steps(torch, F, shape, batch, var == "channels_last")
                    k = dict(shape=shape, times_ms={})
                    for d in KERNEL_DIRS:
                        times, _ = measure(steps[d], s["kern_warmup"], s["kern_iters"],
                                           s["kern_max_s"], s["kern_min_iters"])
                        k["times_ms"][d] = [1e3 * t for t in times]
                    res["kernels"].append(k)
                    del steps
        except Exception as e:  # noqa: BLE001 - one variant failing must not end the run
            res["error"] = "%s: %s" % (type(e).__name__, str(e).splitlines()[0][:200] if str(e) else "")
        emit("RESULT", res)


def worker_torch(a):
    import torch
    import torch.nn.functional as F
    torch.set_num_threads(a.threads)
    v = torch_versions(torch)
    major = int(torch.__version__.split(".")[0])
    can_compile = major >= 2 and hasattr(torch, "compile") and compiler_ok()
    v["compile_ok"] = can_compile
    can_compile = can_compile and not a.no_compile
    v["compile"] = can_compile
    v["threads"] = torch.get_num_threads()
    emit("VERSION", v)
    import torchvision
    sys.path.insert(0, os.path.join(ROOT, "tools"))
    import torch_ref
    # torch_ref routes every ReLU through relu(), which counts calls for its kink test; the
    # counter (a Python side effect) breaks torch.compile's graphs. Same math, plain F.relu.
    torch_ref.relu = F.relu
    s = json.loads(a.settings)
    kernel_shapes = json.loads(a.kernel_shapes) if a.kernel_shapes else {}
    for key in a.rows.split(","):
        label, arch, mode, (c, h, w), batch, classes = ROWS[key]
        variants = a.variants.split(",") if a.variants else VARIANTS[mode, min(major, 2)]
        # jit-freeze: inference only; compile: 2.x with a C++ compiler, at --compile-threads
        variants = [v for v in ALL_VARIANTS if v in variants and not (
            v == "jit-freeze" and mode != "infer") and not (v == "compile" and not can_compile)]
        if mode == "kernels":  # single convolutions: eager only (NCHW, channels_last)
            variants = [v for v in variants if v in ("eager", "channels_last")]
            worker_torch_kernels(torch, F, key, variants, kernel_shapes[key], a.threads, s)
            continue
        for var in variants:
            torch.manual_seed(0)
            if arch in CIFAR_ARCHS:
                model = torch_ref.build(arch, classes=classes, in_c=c)
            else:
                model = getattr(torchvision.models, arch)(weights=None, num_classes=classes)
            x = torch.randn(batch, c, h, w)
            y = torch.randint(0, classes, (batch,))
            if var == "channels_last":
                model = model.to(memory_format=torch.channels_last)
                x = x.contiguous(memory_format=torch.channels_last)
            res = dict(engine="torch", row=key, variant=var, threads=a.threads)
            try:
                warmup, min_warmup = s["pt_warmup"], 1
                if mode == "train":
                    model.train()
                    opt = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM,
                                          weight_decay=WEIGHT_DECAY)
                    run = torch.compile(model) if var == "compile" else model
                    if var == "compile":
                        warmup, min_warmup = max(warmup, 3), 3

                    def step():
                        opt.zero_grad()
                        loss = F.cross_entropy(run(x), y)
                        loss.backward()
                        opt.step()
                else:
                    model.eval()
                    ctx = torch.inference_mode
                    if var == "compile":
                        run = torch.compile(model)
                        ctx = torch.no_grad
                        warmup, min_warmup = max(warmup, 2), 2
                    elif var == "jit-freeze":
                        with torch.no_grad():
                            run = torch.jit.optimize_for_inference(
                                torch.jit.freeze(torch.jit.trace(model, x)))
                        ctx = torch.no_grad
                        warmup, min_warmup = max(warmup, 2), 2
                    else:
                        run = model

                    def step():
                        with ctx():
                            run(x)
                times, first = measure(step, warmup, s["pt_iters"], s["pt_max_s"],
                                       s["pt_min_iters"], min_warmup)
                res.update(times_ms=[1e3 * t for t in times], first_ms=1e3 * first if first else None)
            except Exception as e:  # noqa: BLE001 - one variant failing must not end the run
                res["error"] = "%s: %s" % (type(e).__name__, str(e).splitlines()[0][:200] if str(e) else "")
            emit("RESULT", res)
            del model
            if var == "compile":
                torch._dynamo.reset()


def worker_ort(a):
    import onnxruntime as ort
    import numpy as np
    try:
        import onnx
        onnx_v = onnx.__version__
    except Exception as e:  # noqa: BLE001
        onnx_v = "missing (%s)" % type(e).__name__
    emit("VERSION", dict(onnxruntime=ort.__version__, onnx=onnx_v, numpy=np.__version__,
                         python=platform.python_version(), executable=sys.executable))
    s = json.loads(a.settings)
    for key in a.rows.split(","):
        label, arch, mode, (c, h, w), batch, classes = ROWS[key]
        res = dict(engine="ort", row=key, variant="ort", threads=a.threads)
        path = onnx_path(arch, batch)
        try:
            so = ort.SessionOptions()
            so.intra_op_num_threads = a.threads
            so.inter_op_num_threads = 1
            so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
            so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
            name = sess.get_inputs()[0].name
            x = np.random.default_rng(0).standard_normal((batch, c, h, w)).astype(np.float32)
            times, first = measure(lambda: sess.run(None, {name: x}), s["pt_warmup"],
                                   s["pt_iters"], s["pt_max_s"], s["pt_min_iters"])
            res.update(times_ms=[1e3 * t for t in times], first_ms=1e3 * first if first else None)
        except Exception as e:  # noqa: BLE001
            res["error"] = "%s: %s" % (type(e).__name__, str(e).splitlines()[0][:200] if str(e) else "")
        emit("RESULT", res)


def onnx_path(arch, batch):
    return os.path.join(WORK, "onnx", "%s-b%d.onnx" % (arch, batch))


def worker_export(a):
    """Exports torchvision models with Debian's PyTorch; keeps files already there."""
    import torch
    import torchvision
    os.makedirs(os.path.join(WORK, "onnx"), exist_ok=True)
    for item in a.rows.split(","):
        arch, batch = item.split(":")
        batch = int(batch)
        path = onnx_path(arch, batch)
        if os.path.exists(path):
            emit("RESULT", dict(path=path, cached=True))
            continue
        torch.manual_seed(0)
        model = getattr(torchvision.models, arch)(weights=None).eval()
        x = torch.randn(batch, 3, 224, 224)
        tmp = path + ".tmp"
        kwargs = dict(opset_version=13, do_constant_folding=True)
        if int(torch.__version__.split(".")[0]) >= 2:
            kwargs["dynamo"] = False  # the TorchScript exporter, as with 1.13
        with torch.no_grad():
            torch.onnx.export(model, x, tmp, **kwargs)
        os.replace(tmp, path)
        emit("RESULT", dict(path=path, cached=False, torch=torch.__version__))


# ---------------------------------------------------------------------------------------------
# Driver.

def run_worker(python, args, threads, timeout, on_result):
    """Runs this script as a worker, calling on_result(result) for each RESULT line as it comes;
    returns (versions, error)."""
    env = dict(os.environ)
    for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[k] = str(threads)
    env.setdefault("PYTHONWARNINGS", "ignore")
    cmd = [python, os.path.abspath(__file__)] + args
    versions = None
    errlog = os.path.join(WORK, "worker-stderr.txt")
    with open(errlog, "w") as ef:
        p = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=ef, text=True)
        deadline = time.time() + timeout
        for line in p.stdout:
            if line.startswith("VERSION "):
                versions = json.loads(line[8:])
            elif line.startswith("RESULT "):
                on_result(json.loads(line[7:]))
            if time.time() > deadline:
                p.kill()
                break
        rc = p.wait()
    error = None
    if rc != 0:
        with open(errlog) as ef:
            tail = [l for l in ef.read().strip().splitlines() if l.strip()][-3:]
        error = "exit %s: %s" % (rc, " | ".join(tail)[:400])
    return versions, error


def probe(python, code):
    if not python or not os.path.exists(python):
        return False, "no interpreter %s" % python
    p = subprocess.run([python, "-c", code], capture_output=True, text=True)
    if p.returncode == 0:
        return True, p.stdout.strip()
    last = (p.stderr.strip().splitlines() or ["?"])[-1]
    return False, last


def build_peak():
    src = os.path.join(HERE, "fma_peak.c")
    exe = os.path.join(WORK, "fma_peak")
    os.makedirs(WORK, exist_ok=True)
    cc = os.environ.get("CC", "cc")
    # with AVX-512 where the compiler has it (fma_peak uses it only where the CPU has it too)
    for isa in (["-mavx512f"], []):
        p = subprocess.run([cc, "-O2", "-mavx2", "-mfma"] + isa + ["-fopenmp", src, "-o", exe],
                           capture_output=True, text=True)
        if p.returncode == 0:
            return exe, None
    return None, "fma_peak.c did not compile: " + p.stderr.strip()[:300]


def run_peak(exe, threads, quick):
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    args = [exe, "5", "20000000"] if quick else [exe, "7", "50000000"]
    p = subprocess.run(args, env=env, capture_output=True, text=True, timeout=120)
    if p.returncode != 0:
        return None
    return json.loads(p.stdout)


def training_layout(resnet, arch, classes, shape, threads):
    """'blocked' or 'planar': the activations `resnet bench --mode train` trains on here."""
    cmd = [resnet, "bench", "--arch", arch, "--classes", str(classes), "--input-shape",
           "%dx%dx%d" % shape, "--batch", "2", "--threads", str(threads), "--mode", "train",
           "--warmup", "0", "--iters", "1", "--json"]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    try:
        return json.loads(p.stdout).get("layout", "planar") if p.returncode == 0 else "planar"
    except ValueError:
        return "planar"


def run_ours(resnet, key, threads, s):
    label, arch, mode, (c, h, w), batch, classes = ROWS[key]
    cmd = [resnet, "bench", "--arch", arch, "--classes", str(classes), "--input-shape",
           "%dx%dx%d" % (c, h, w), "--batch", str(batch), "--threads", str(threads)]
    if mode == "kernels":
        cmd += ["--kernels", "--warmup", str(s["kern_warmup"]), "--iters", str(s["kern_iters"]),
                "--max-seconds", str(s["kern_max_s"]), "--json"]
    else:
        cmd += ["--mode", mode, "--warmup", str(s["ours_warmup"]), "--iters",
                str(s["ours_iters"]), "--max-seconds", str(s["ours_max_s"]), "--json"]
    res = dict(engine="ours", row=key, variant="ours", threads=threads, cmd=" ".join(cmd))
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
        if p.returncode != 0:
            res["error"] = "exit %d: %s" % (p.returncode, p.stderr.strip()[:300])
        elif mode == "kernels":
            j = json.loads(p.stdout)
            # the passes training runs: the blocked columns where `bench --mode train` trains
            # on channel-blocked activations (AVX-512), the planar ones elsewhere
            layout = training_layout(resnet, arch, classes, (c, h, w), threads)
            suffix = "_blocked" if layout == "blocked" and "forward_blocked" in j["rows"][0] else ""
            res.update(omp=j["omp_threads"], layout="blocked" if suffix else "planar", kernels=[dict(
                shape=[k["input"][0], k["input"][1], k["input"][2], k["output"][0], k["kernel"],
                       k["stride"], k["pad"]],
                count=k["count"], names=k["names"], dx_count=k["dx_count"],
                times_ms={d: k[d + suffix]["ms_sorted"] for d in KERNEL_DIRS}) for k in j["rows"]])
        else:
            j = json.loads(p.stdout)
            # blas_threads: builds before the engine dropped OpenBLAS reported it
            res.update(times_ms=j["ms_sorted"], macs=j["macs_per_image"], rss_mb=j["max_rss_mb"],
                       omp=j["omp_threads"], blas=j.get("blas_threads"))
    except subprocess.TimeoutExpired:
        res["error"] = "timed out"
    except (ValueError, KeyError) as e:
        res["error"] = "unreadable output: %s: %s" % (type(e).__name__, e)
    return res


def machine_info():
    model, cores = platform.processor() or "?", os.cpu_count()
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        fields = dict(l.split(":", 1) for l in out.splitlines() if ":" in l)
        f = {k.strip(): v.strip() for k, v in fields.items()}
        model = "%s (family %s model %s)" % (f.get("Model name", "?"), f.get("CPU family", "?"),
                                            f.get("Model", "?"))
        cores = "%s CPUs, %s cores/socket, %s thread(s)/core; L2 %s, L3 %s" % (
            f.get("CPU(s)"), f.get("Core(s) per socket"), f.get("Thread(s) per core"),
            f.get("L2 cache"), f.get("L3 cache"))
    except OSError:
        pass
    return model, cores


def loadavg():
    try:
        with open("/proc/loadavg") as f:
            return " ".join(f.read().split()[:3])
    except OSError:
        return "?"


def git_rev():
    p = subprocess.run(["git", "-C", ROOT, "describe", "--always", "--dirty"], capture_output=True,
                       text=True)
    return p.stdout.strip() or "?"


def openblas_version():
    p = subprocess.run(["dpkg-query", "-W", "-f=${Version}", "libopenblas0-pthread"],
                       capture_output=True, text=True)
    return p.stdout.strip() or "?"


def med(times):
    return statistics.median(times)


def fmt(v, nd=1):
    if v is None:
        return "-"
    if v >= 100:
        return "%.0f" % v
    if v >= 10:
        return "%.1f" % v
    return "%.*f" % (nd + 1, v)


def save(state, path):
    if path:
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(state, f, indent=1)
        os.replace(tmp, path)


def driver(a):
    t_start = time.time()
    s = SETTINGS["quick" if a.quick else "full"]
    resnet = os.path.join(ROOT, a.resnet)
    if not os.access(resnet, os.X_OK):
        log("compare.py: %s not found: run `make` first" % resnet)
        return 2
    if a.rows:
        rows = a.rows.split(",")
    else:
        rows = [r for r in ROWS if ROWS[r][2] == "kernels" or not a.kernels]
    for r in rows:
        if r not in ROWS:
            log("compare.py: unknown row '%s' (rows: %s)" % (r, ",".join(ROWS)))
            return 2
    try:
        threads = [int(t) for t in a.threads.split(",")]
        assert all(t >= 1 for t in threads)
    except (ValueError, AssertionError):
        log("compare.py: --threads: expected a list such as 1,2, got '%s'" % a.threads)
        return 2
    bad = [v for v in (a.variants or "").split(",") if v and v not in ALL_VARIANTS]
    if bad:
        log("compare.py: --variants: unknown '%s' (%s)" % (",".join(bad), ",".join(ALL_VARIANTS)))
        return 2
    infer_rows = [r for r in rows if ROWS[r][2] == "infer"]
    compile_threads = [] if a.no_compile else [
        int(t) for t in (a.compile_threads or str(max(threads))).split(",")]
    venv_py = os.path.join(ROOT, a.venv, "bin", "python")
    model, cores = machine_info()
    os.makedirs(WORK, exist_ok=True)
    out = a.out or os.path.join(WORK, "last.json")
    if a.rounds < 1:
        log("compare.py: --rounds: expected 1 or more, got %d" % a.rounds)
        return 2
    state = dict(machine=model, cores=cores, quick=a.quick, settings=s, rows=rows,
                 threads=threads, compile_threads=compile_threads, resnet=a.resnet,
                 rounds=a.rounds,
                 git=git_rev(), openblas=openblas_version(), load_start=loadavg(),
                 results=[], peaks={}, versions={}, notes=[], elapsed_s=0.0)
    if a.resume:
        try:
            with open(out) as f:
                old = json.load(f)
            if old.get("settings") != s or old.get("rounds", 1) != a.rounds:
                log("compare.py: --resume: %s was made with other settings or --rounds" % out)
                return 2
            state["results"] = old["results"]
            state["peaks"] = old["peaks"]
            state["versions"] = old["versions"]
            state["load_start"] = old["load_start"] + " (first part); " + state["load_start"]
            state["elapsed_s"] = old.get("elapsed_s", 0.0)
            state["notes"].append("resumed: the results come from more than one run of compare.py")
            log("resuming %s: %d results kept" % (out, len(state["results"])))
        except (OSError, ValueError, KeyError) as e:
            log("compare.py: --resume: cannot use %s: %s" % (out, e))
            return 2
    elapsed0 = state["elapsed_s"]
    notes, versions, results = state["notes"], state["versions"], state["results"]
    log("machine: %s; %s; load average %s" % (model, cores, loadavg()))

    def have(engine, row, t, rnd):
        return any(x["engine"] == engine and x["row"] == row and x["threads"] == t
                   and x.get("round", 0) == rnd for x in results)

    def kernel_shapes(row):
        """The shapes of a kernel table, from our engine's measurement at any thread count."""
        for x in results:
            if x["engine"] == "ours" and x["row"] == row and x.get("kernels"):
                return [k["shape"] for k in x["kernels"]]
        return None

    def add(x):
        results.append(x)
        state["elapsed_s"] = elapsed0 + time.time() - t_start
        save(state, out)

    # Which engines can run here.
    has_pt1, why = probe(DEBIAN_PY, "import torch, torchvision; print(torch.__version__)")
    if not has_pt1:
        notes.append("PyTorch (Debian) column skipped: %s: %s (apt-get install python3-torch "
                     "python3-torchvision)" % (DEBIAN_PY, why))
    has_ptn, why = probe(venv_py, "import torch, torchvision; print(torch.__version__)")
    if not has_ptn:
        notes.append("PyTorch (PyPI) column skipped: %s: %s (run sh bench/setup.sh)" % (venv_py, why))
    has_ort, why = probe(venv_py, "import onnxruntime; print(onnxruntime.__version__)")
    if not has_ort:
        notes.append("ONNX Runtime column skipped: %s: %s (run sh bench/setup.sh --no-torch)"
                     % (venv_py, why))
    for eng in filter(None, a.skip.split(",")):
        if eng in ("pt1", "torch-debian"):
            has_pt1 = False
        elif eng in ("ptnew", "torch-pypi"):
            has_ptn = False
        elif eng == "ort":
            has_ort = False
        else:
            log("compare.py: --skip: unknown engine '%s' (pt1, ptnew, ort)" % eng)
            return 2
        notes.append("%s skipped on request (--skip)" % eng)

    # ONNX models for ONNX Runtime, exported by Debian's PyTorch (else the venv's).
    if has_ort and infer_rows:
        exporter = DEBIAN_PY if has_pt1 else (venv_py if has_ptn else None)
        if exporter is None:
            has_ort = False
            notes.append("ONNX Runtime column skipped: no PyTorch to export the models with")
        else:
            items = sorted({"%s:%d" % (ROWS[r][1], ROWS[r][4]) for r in infer_rows})
            log("exporting ONNX models (%s) with %s ..." % (", ".join(items), exporter))
            exported = []
            _, err = run_worker(exporter, ["--worker", "export", "--rows", ",".join(items)], 1,
                                600, exported.append)
            if err:
                has_ort = False
                notes.append("ONNX Runtime column skipped: export failed: " + err)
            else:
                versions["onnx export"] = "torch.onnx.export by %s (opset 13, constant folding)%s" % (
                    exporter, "; reused cached files in bench/.work/onnx" if all(
                        r.get("cached") for r in exported) else "")

    peak_exe, err = build_peak()
    if err:
        notes.append(err)

    def peak(t):
        if peak_exe:
            pk = run_peak(peak_exe, t, a.quick)
            if pk:
                state["peaks"].setdefault(str(t), []).append(pk)
                log("[T=%d] FMA peak (%s) %.1f GFLOP/s (median %.1f)" % (
                    t, pk.get("isa", "avx2"), pk["best"], pk["median"]))
                save(state, out)

    def show(x):
        name = x["engine"] + ("" if x["variant"] in ("ours", "ort") else " " + x["variant"])
        if "error" in x:
            log("    %s %s: error: %s" % (x["row"], name, x["error"]))
        elif "kernels" in x:
            log("    %s %s: %d shapes, %.1f ms per training step's convolutions" % (
                x["row"], name, len(x["kernels"]), sum(kernel_total_ms(x["kernels"]).values())))
        else:
            first = (" (first step %.1f s)" % (x["first_ms"] / 1e3)
                     if x["variant"] == "compile" and x.get("first_ms") else "")
            log("    %s %s: %.1f ms, %d steps%s" % (x["row"], name, med(x["times_ms"]),
                                                   len(x["times_ms"]), first))

    def run_ours_rows(t, rnd):
        for r in rows:
            if have("ours", r, t, rnd):
                continue
            log("[T=%d%s] ours: %s ..." % (t, round_tag(rnd), ROWS[r][0]))
            x = run_ours(resnet, r, t, s)
            x["round"] = rnd
            show(x)
            add(x)

    def run_engine(t, rnd, py, name, kind, todo):
        worker_common = ["--threads", str(t), "--settings", json.dumps(s)]
        if t not in compile_threads:
            worker_common.append("--no-compile")
        if a.variants:
            worker_common += ["--variants", a.variants]
        todo = [r for r in todo if not have(name, r, t, rnd)]
        shapes = {}
        for r in [r for r in todo if ROWS[r][2] == "kernels"]:
            shapes[r] = kernel_shapes(r)
            if not shapes[r]:
                todo.remove(r)
                notes.append("%s %s (T=%d) skipped: our engine gave no shapes" % (name, r, t))
        if not todo:
            return
        log("[T=%d%s] %s (%s) ..." % (t, round_tag(rnd), name, py))

        def got(x, name=name):
            x["engine"] = name
            x["round"] = rnd
            if "kernels" in x:
                kernel_annotate(x, results)
            show(x)
            add(x)
        extra = ["--kernel-shapes", json.dumps(shapes, separators=(",", ":"))] if shapes else []
        v, err = run_worker(py, ["--worker", kind, "--rows", ",".join(todo)] + worker_common
                            + extra, t, 3600, got)
        if v:
            versions[name] = v
        if err:
            notes.append("%s worker (T=%d) failed: %s" % (name, t, err))

    def round_tag(rnd):
        return ", round %d/%d" % (rnd + 1, a.rounds) if a.rounds > 1 else ""

    engines = [(DEBIAN_PY, "torch-debian", "torch", rows)] if has_pt1 else []
    engines += [(venv_py, "torch-pypi", "torch", rows)] if has_ptn else []
    engines += [(venv_py, "ort", "ort", infer_rows)] if has_ort else []
    for rnd in range(a.rounds):
        for t in threads:
            peak(t)
            # ours needs to go first once: the anchors' kernel tables take its shapes
            jobs = [None] + engines
            if rnd % 2 and all(have("ours", r, t, 0) for r in rows):
                jobs = jobs[::-1]
            for job in jobs:
                if job is None:
                    run_ours_rows(t, rnd)
                else:
                    run_engine(t, rnd, *job)
    for t in threads:  # the peak again at the end: the machine's load moves
        peak(t)
    state["elapsed_s"] = elapsed0 + time.time() - t_start
    state["load_end"] = loadavg()
    save(state, out)
    report(state)
    log("wrote " + out)
    return 0


def kernel_annotate(x, results):
    """Copies count and dx_count of each shape from our engine's result of the same row."""
    meta = {}
    for o in results:
        if o["engine"] == "ours" and o["row"] == x["row"] and o.get("kernels"):
            for k in o["kernels"]:
                meta[tuple(k["shape"])] = dict(count=k["count"], dx_count=k["dx_count"])
    for k in x["kernels"]:
        k.update(meta.get(tuple(k["shape"]), dict(count=1, dx_count=1)))


def kernel_count(k, d):
    """How many convolutions of the network run this shape in direction d."""
    return k.get("dx_count", k.get("count", 1)) if d == "backward_data" else k.get("count", 1)


def kernel_gflop(shape, batch):
    c, h, w, k, r, stride, pad = shape
    oh, ow = (h + 2 * pad - r) // stride + 1, (w + 2 * pad - r) // stride + 1
    return 2.0 * batch * k * c * r * r * oh * ow / 1e9


def kernel_total_ms(kernels):
    """Per direction: sum over shapes of count x median ms (the input gradient of the network's
    first convolution, which training never computes, left out)."""
    tot = dict.fromkeys(KERNEL_DIRS, 0.0)
    for k in kernels:
        for d in KERNEL_DIRS:
            tot[d] += kernel_count(k, d) * med(k["times_ms"][d])
    return tot


def kernel_report(st, row, t, pk, pt_names):
    """One kernel table: a row per distinct convolution shape, a total row."""
    label, arch, mode, (c, h, w), batch, classes = ROWS[row]
    results = st["results"]
    tag = {"eager": "", "channels_last": " cl"}
    ours = next((x for x in results if x["engine"] == "ours" and x["row"] == row
                 and x["threads"] == t and x.get("kernels")), None)
    print("### kernels: %s, %d thread%s%s" % (arch, t, "s" if t > 1 else "",
                                             ", FMA peak %.1f GFLOP/s" % pk[t] if t in pk else ""))
    print()
    if ours and ours.get("layout") == "blocked":
        print("ours: the channel-blocked passes training runs here (bench --kernels' blocked "
              "columns; Winograd on blocks counted in direct multiply-adds)")
        print()
    if not ours:
        err = next((x.get("error") for x in results if x["engine"] == "ours"
                    and x["row"] == row and x["threads"] == t), None)
        print("no measurement of ours%s" % (": " + err if err else ""))
        print()
        return
    # engine name -> variant -> shape -> kernel entry (complete results and partial ones alike)
    anchors = {}
    for name, _ in pt_names:
        for x in results:
            if x["engine"] == name and x["row"] == row and x["threads"] == t and x.get("kernels"):
                anchors.setdefault(name, {})[x["variant"]] = {
                    tuple(k["shape"]): k for k in x["kernels"]}
    short = {"forward": "fwd", "backward_data": "bwd-data", "backward_weights": "bwd-weights"}
    hdr = ["#", "convolution C->K RxS/stride HxW", "count"]
    hdr += ["ours %s GFLOP/s (%% peak)" % short[d] for d in KERNEL_DIRS]
    for _, v in pt_names:
        hdr += ["PT %s %s" % (v, short[d]) for d in KERNEL_DIRS]
    hdr += ["ours/best %s" % short[d] for d in KERNEL_DIRS]
    print("| " + " | ".join(hdr) + " |")
    print("|" + "---|" * len(hdr))

    def pct(g):
        return " (%.0f%%)" % (100 * g / pk[t]) if t in pk else ""

    def best_cell(name, shape, d, gf):
        """(GFLOP/s, cell text) of the fastest variant of one engine, or (None, '-')."""
        cands = [(med(ks[shape]["times_ms"][d]), var) for var, ks in anchors.get(name, {}).items()
                 if shape in ks]
        if not cands:
            return None, "-"
        ms, var = min(cands)
        return gf / (ms / 1e3), fmt(gf / (ms / 1e3)) + tag.get(var, " " + var)

    for i, k in enumerate(ours["kernels"]):
        shape = tuple(k["shape"])
        gf = kernel_gflop(shape, batch)
        cells = [str(i + 1), "%d->%d %dx%d/%d %dx%d" % (shape[0], shape[3], shape[4], shape[4],
                                                       shape[5], shape[1], shape[2]),
                 str(k["count"])]
        mine = {}
        for d in KERNEL_DIRS:
            mine[d] = gf / (med(k["times_ms"][d]) / 1e3)
            star = "*" if d == "backward_data" and k["dx_count"] < k["count"] else ""
            cells.append(fmt(mine[d]) + pct(mine[d]) + star)
        top = dict.fromkeys(KERNEL_DIRS)
        for name, _ in pt_names:
            for d in KERNEL_DIRS:
                g, text = best_cell(name, shape, d, gf)
                cells.append(text)
                if g and (top[d] is None or g > top[d]):
                    top[d] = g
        cells += ["%.2f" % (mine[d] / top[d]) if top[d] else "-" for d in KERNEL_DIRS]
        print("| " + " | ".join(cells) + " |")

    # totals: count x each; PyTorch's best variant overall (one layout for the whole network)
    flop = dict.fromkeys(KERNEL_DIRS, 0.0)
    for k in ours["kernels"]:
        for d in KERNEL_DIRS:
            flop[d] += kernel_count(k, d) * kernel_gflop(k["shape"], batch)
    tot_ours = kernel_total_ms(ours["kernels"])
    shapes = [tuple(k["shape"]) for k in ours["kernels"]]
    meta = {tuple(k["shape"]): k for k in ours["kernels"]}
    step = {}  # engine -> (ms of the training step's convolutions, variant)
    cells = ["", "all (count x each)", str(sum(k["count"] for k in ours["kernels"]))]
    cells += ["%s%s" % (fmt(flop[d] / (tot_ours[d] / 1e3)), pct(flop[d] / (tot_ours[d] / 1e3)))
              for d in KERNEL_DIRS]
    top = dict.fromkeys(KERNEL_DIRS)
    for name, _ in pt_names:
        totals = {}
        for var, ks in anchors.get(name, {}).items():
            if all(sh in ks for sh in shapes):
                totals[var] = kernel_total_ms([dict(ks[sh], count=meta[sh]["count"],
                                                    dx_count=meta[sh]["dx_count"])
                                               for sh in shapes])
        for d in KERNEL_DIRS:
            if not totals:
                cells.append("-")
                continue
            var = min(totals, key=lambda v: totals[v][d])
            g = flop[d] / (totals[var][d] / 1e3)
            cells.append(fmt(g) + tag.get(var, " " + var))
            if top[d] is None or g > top[d]:
                top[d] = g
        if totals:
            var = min(totals, key=lambda v: sum(totals[v].values()))
            step[name] = (sum(totals[var].values()), var)
    cells += ["%.2f" % (flop[d] / (tot_ours[d] / 1e3) / top[d]) if top[d] else "-"
              for d in KERNEL_DIRS]
    print("| " + " | ".join(cells) + " |")
    print()
    mine = sum(tot_ours.values())
    line = "the training step's convolutions (count x all three), batch %d: ours %.1f ms, %s GFLOP/s%s" % (
        batch, mine, fmt(sum(flop.values()) / (mine / 1e3)), pct(sum(flop.values()) / (mine / 1e3)))
    for name, v in pt_names:
        if name in step:
            line += "; PT %s %.1f ms%s (ours/PT %.2f)" % (v, step[name][0],
                                                          tag.get(step[name][1]) or " eager",
                                                          step[name][0] / mine)
    print(line)
    errs = ["%s/%s: %s" % (x["engine"], x["variant"], x["error"][:120]) for x in results
            if x["row"] == row and x["threads"] == t and "error" in x]
    if errs:
        print("errors: " + "; ".join(errs))
    print()


def pooled(results):
    """One result per engine, variant, row and thread count: the steps (and each kernel's
    runs) of all its rounds together, in order, with `rounds` saying how many there were; an
    error stands only where no round of the cell succeeded."""
    merged, order = {}, []
    for x in results:
        key = (x["engine"], x.get("variant"), x["row"], x["threads"])
        m = merged.get(key)
        if m is None or ("error" in m and "error" not in x):
            if m is None:
                order.append(key)
            merged[key] = dict(x, rounds=1)
            if "times_ms" in x:
                merged[key]["times_ms"] = sorted(x["times_ms"])
            if "kernels" in x:
                merged[key]["kernels"] = [dict(k, times_ms={d: list(v) for d, v in
                                                            k["times_ms"].items()})
                                          for k in x["kernels"]]
            continue
        if "error" in x:
            continue
        m["rounds"] += 1
        if "times_ms" in x:
            m["times_ms"] = sorted(m["times_ms"] + x["times_ms"])
        if "kernels" in x and "kernels" in m:
            runs = {tuple(k["shape"]): k for k in x["kernels"]}
            for k in m["kernels"]:
                other = runs.get(tuple(k["shape"]))
                for d in k["times_ms"] if other else ():
                    k["times_ms"][d] = sorted(k["times_ms"][d] + other["times_ms"].get(d, []))
    return [merged[k] for k in order]


def report(st):
    st = dict(st, results=pooled(st["results"]))
    quick, s, rows, threads = st["quick"], st["settings"], st["rows"], st["threads"]
    results, versions, notes = st["results"], st["versions"], st["notes"]
    peaks = {int(k): v for k, v in st["peaks"].items()}
    compile_threads = st["compile_threads"]

    def best(engine, row, t):
        cands = [r for r in results if r["engine"] == engine and r["row"] == row
                 and r["threads"] == t and "times_ms" in r]
        return min(cands, key=lambda r: med(r["times_ms"])) if cands else None

    short = {"eager": "", "channels_last": " cl", "compile": " compile", "jit-freeze": " jit"}
    pt1_v = versions.get("torch-debian", {}).get("torch", "1.x")
    ptn_v = versions.get("torch-pypi", {}).get("torch", "new").split("+")[0]
    ort_v = versions.get("ort", {}).get("onnxruntime", "")
    print("# resnet.c side-by-side benchmark%s" % (" (--quick: few iterations, smoke run only)"
                                                   if quick else ""))
    print()
    print("machine: %s; %s" % (st["machine"], st["cores"]))
    uses_blas = any(x["engine"] == "ours" and x.get("blas") for x in results)
    print("ours: %s (git %s)%s" % (st["resnet"], st["git"], ", OpenBLAS %s" % st["openblas"]
                                   if uses_blas else ""))
    for name in ("torch-debian", "torch-pypi"):
        v = versions.get(name)
        if v:
            print("%s: torch %s, torchvision %s, oneDNN %s, BLAS %s, torch.compile %s, Python %s (%s)"
                  % (name, v["torch"], v["torchvision"], v["onednn"], v["blas"],
                     ("at T=%s" % ",".join(map(str, compile_threads))) if v.get("compile_ok")
                     and compile_threads else "no", v["python"], v["executable"]))
    if "ort" in versions:
        v = versions["ort"]
        print("onnxruntime %s (onnx %s), Python %s; models: %s" % (
            v["onnxruntime"], v["onnx"], v["python"], versions.get("onnx export", "?")))
    pk = {}
    for t in threads:
        if t in peaks:
            pk[t] = max(p["best"] for p in peaks[t])
            print("FMA peak (%s), %d thread%s: %.1f GFLOP/s (best of %s; per-measurement medians %s)" % (
                peaks[t][0].get("isa", "avx2"), t, "s" if t > 1 else "", pk[t], len(peaks[t]),
                ", ".join("%.1f" % p["median"] for p in peaks[t])))
    kernel_rows = [r for r in rows if ROWS[r][2] == "kernels"]
    rows = [r for r in rows if ROWS[r][2] != "kernels"]
    if rows:
        print("settings: ours %d warm-up + up to %d steps (stop after %.0f s once 3 are timed, "
              "after %.0f s regardless); anchors up to %d warm-up + %d steps (stop after %.0f s "
              "once %d are timed)" % (s["ours_warmup"], s["ours_iters"], s["ours_max_s"],
                                      3 * s["ours_max_s"], s["pt_warmup"], s["pt_iters"],
                                      s["pt_max_s"], s["pt_min_iters"]))
    if kernel_rows:
        print("kernel tables: each shape and direction %d warm-up + up to %d runs (stop after "
              "%.1f s once %d are timed; ours after %.1f s regardless)" % (
                  s["kern_warmup"], s["kern_iters"], s["kern_max_s"], s["kern_min_iters"],
                  3 * s["kern_max_s"]))
    print("load average (1, 5, 15 min): at the start %s, at the end %s; total time %.0f s" % (
        st["load_start"], st.get("load_end", "?"), st["elapsed_s"]))
    if st.get("rounds", 1) > 1:
        print("rounds: %d passes over every engine, row and thread count (ours first on the "
              "first, third, ... pass, the anchors first on the others); each cell's median and "
              "range are over the steps of all its passes" % st["rounds"])
    print()
    if rows:
        main_table(st, rows, pk, best, short, pt1_v, ptn_v, ort_v)
    pt_names = [("torch-debian", pt1_v), ("torch-pypi", ptn_v)]
    pt_names = [(n, v) for n, v in pt_names if any(x["engine"] == n for x in results)] or pt_names
    for r in kernel_rows:
        for t in threads:
            kernel_report(st, r, t, pk, pt_names)
    if kernel_rows:
        print("kernel tables: GFLOP/s = 2 x N x K x C x R x S x OH x OW / median time, for each "
              "direction; % peak = of the FMA peak at that thread count; PyTorch cells show its "
              "fastest variant for that cell (cl = channels_last), the total row its fastest "
              "variant for the whole network; ours/best = ours / the fastest PyTorch cell (above "
              "1: ours faster); *: holds the network's first convolution, whose input gradient "
              "training never computes (left out of the totals).")
        print()
    if notes:
        print("notes:")
        for n in notes:
            print("  - " + n)


def main_table(st, rows, pk, best, short, pt1_v, ptn_v, ort_v):
    """The workload table (training steps and inference) and the details behind it."""
    results, threads = st["results"], st["threads"]
    hdr = ["workload", "T", "ours ms", "ours img/s", "ours GFLOP/s", "ours % peak",
           "PT %s ms" % pt1_v, "PT %s img/s" % pt1_v, "PT %s ms" % ptn_v, "PT %s img/s" % ptn_v,
           "ORT %s ms" % ort_v, "ORT img/s", "best anchor GFLOP/s (% peak)",
           "ours/PT %s" % pt1_v, "ours/PT %s" % ptn_v, "ours/best"]
    print("| " + " | ".join(hdr) + " |")
    print("|" + "---|" * len(hdr))
    for r in rows:
        label, arch, mode, shape, batch, classes = ROWS[r]
        for t in threads:
            o = best("ours", r, t)
            macs = o["macs"] if o else None
            flop_img = 2.0 * macs * (3 if mode == "train" else 1) if macs else None

            def speed(res):
                return batch / (med(res["times_ms"]) / 1e3) if res else None

            def gf(res):
                return speed(res) * flop_img / 1e9 if res and flop_img else None

            p1, pn = best("torch-debian", r, t), best("torch-pypi", r, t)
            ort = best("ort", r, t) if mode == "infer" else None
            anchors = [x for x in (p1, pn, ort) if x]
            top = min(anchors, key=lambda x: med(x["times_ms"])) if anchors else None
            cells = [label, str(t)]
            cells += [fmt(med(o["times_ms"])) if o else "-", fmt(speed(o)), fmt(gf(o)),
                      ("%.0f%%" % (100 * gf(o) / pk[t]) if o and t in pk and gf(o) else "-")]
            for x in (p1, pn):
                cells += [(fmt(med(x["times_ms"])) + short[x["variant"]]) if x else "-",
                          fmt(speed(x))]
            cells += [fmt(med(ort["times_ms"])) if ort else "-", fmt(speed(ort))]
            if top and gf(top):
                cells.append("%s (%s%%)" % (fmt(gf(top)), "%.0f" % (100 * gf(top) / pk[t])
                                            if t in pk else "?"))
            else:
                cells.append("-")
            for x in (p1, pn, top):
                cells.append("%.3f" % (speed(o) / speed(x)) if o and x else "-")
            print("| " + " | ".join(cells) + " |")
    print()
    print("ms = median per batch; img/s = batch / median; ratios = ours img/s / theirs img/s "
          "(above 1: ours faster); PyTorch cells show its fastest variant (cl = channels_last, "
          "jit = trace + freeze + optimize_for_inference, compile = torch.compile); GFLOP/s "
          "counts 2 x multiply-adds per image, 3 x that for a training step.")
    print()
    print("details (median ms [min-max] over steps):")
    for r in rows:
        for t in threads:
            line = []
            for x in results:
                if x["row"] != r or x["threads"] != t:
                    continue
                name = x["engine"] + ("" if x["variant"] in ("ours", "ort") else "/" + x["variant"])
                if "error" in x:
                    line.append("%s: ERROR %s" % (name, x["error"][:120]))
                    continue
                tm = x["times_ms"]
                extra = ""
                if x["variant"] == "compile" and x.get("first_ms"):
                    extra = ", first step %.1f s" % (x["first_ms"] / 1e3)
                if x["engine"] == "ours":
                    extra = ", OpenMP %s%s threads, peak RSS %.0f MB" % (
                        x["omp"], " / OpenBLAS %s" % x["blas"] if x.get("blas") else "",
                        x["rss_mb"])
                line.append("%s %s [%s-%s] n=%d%s" % (name, fmt(med(tm)), fmt(tm[0]), fmt(tm[-1]),
                                                     len(tm), extra))
            print("  %s, T=%d: %s" % (r, t, "; ".join(line)))
    print()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="few iterations: a smoke run")
    ap.add_argument("--threads", default="1,2", help="thread counts, e.g. 1,2 (default)")
    ap.add_argument("--rows", help="subset of: " + ",".join(ROWS) + " (default: all)")
    ap.add_argument("--kernels", action="store_true",
                    help="the kernel tables only (the *-kernels rows), unless --rows says otherwise")
    ap.add_argument("--resnet", default="build/resnet", help="our binary (relative to the repo)")
    ap.add_argument("--venv", default="bench/.venv", help="venv with newest torch / onnxruntime")
    ap.add_argument("--skip", default="", help="engines to leave out: pt1,ptnew,ort")
    ap.add_argument("--no-compile", action="store_true", help="leave out torch.compile")
    ap.add_argument("--compile-threads", help="thread counts that try torch.compile "
                    "(default: the largest of --threads)")
    ap.add_argument("--variants", help="PyTorch variants to try instead of the defaults "
                    "(VARIANTS): any of " + ",".join(ALL_VARIANTS))
    ap.add_argument("--out", help="every measurement goes to this JSON file as it is made "
                    "(default bench/.work/last.json)")
    ap.add_argument("--rounds", type=int, default=1,
                    help="measure every cell R times, in R passes over all engines, and pool "
                    "each cell's steps (see Rounds above; default 1)")
    ap.add_argument("--resume", action="store_true",
                    help="keep the measurements already in --out and make only the missing ones")
    ap.add_argument("--report", metavar="FILE", help="print the table of a saved JSON file only")
    ap.add_argument("--worker", choices=["torch", "ort", "export"], help=argparse.SUPPRESS)
    ap.add_argument("--settings", help=argparse.SUPPRESS)
    ap.add_argument("--kernel-shapes", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.report:
        with open(a.report) as f:
            report(json.load(f))
        return 0
    if a.worker:
        a.threads = int(a.threads) if a.worker != "export" else 1
        return {"torch": worker_torch, "ort": worker_ort, "export": worker_export}[a.worker](a) or 0
    return driver(a)


if __name__ == "__main__":
    sys.exit(main())
