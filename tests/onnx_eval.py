#!/usr/bin/python3
"""ONNX export checks: `resnet export` against `resnet forward`, for every architecture family,
block ordering and shortcut option (CASES).

Each case: `resnet init` a network, give its batch norms and classifier random non-trivial
statistics (running means and variances, scales and shifts: fresh ones are the identity and
would hide a mistake), `resnet export` it, check the file with onnx.checker (full_check: shape
inference too) and its metadata, then run the ONNX graph node by node with PyTorch's functional
operations (run_graph: an ONNX evaluator that knows only the operators the exporter may write,
and refuses any other operator or attribute) on random images, and compare its logits with
`resnet forward`'s on the same images.

Usage: /usr/bin/python3 tests/onnx_eval.py BUILD_DIR [--all] [CASE...]   (Debian's python3-onnx
and python3-torch; no PyPI). tools/onnx_ort_check.py reuses the helpers here with ONNX Runtime.
"""
import ctypes
import json
import os
import struct
import subprocess
import sys
import tempfile

import numpy as np

# name, `resnet init` options, input shape (CxHxW), images[, "extra"]. Extra cases run when named
# or with --all (tools/onnx_ort_check.py runs them unless --quick): resnet50's 100 MB of weights
# cost seconds, and preresnet11 and resnet18 already cover its bottleneck blocks and stem.
CASES = [
    ("resnet20-original-A", "--arch resnet20 --ordering original --shortcut A", "3x32x32", 3),
    ("resnet20-bn-after-add-A", "--arch resnet20 --ordering bn-after-add --shortcut A", "3x32x32", 3),
    ("resnet20-relu-before-add-A", "--arch resnet20 --ordering relu-before-add --shortcut A", "3x32x32", 3),
    ("resnet20-relu-preact-A", "--arch resnet20 --ordering relu-preact --shortcut A", "3x32x32", 3),
    ("resnet20-full-preact-A", "--arch resnet20 --ordering full-preact --shortcut A", "3x32x32", 3),
    ("resnet20-original-B", "--arch resnet20 --ordering original --shortcut B", "3x32x32", 3),
    ("resnet20-original-C", "--arch resnet20 --ordering original --shortcut C", "3x32x32", 3),
    ("resnet20-full-preact-B", "--arch resnet20 --ordering full-preact --shortcut B", "3x32x32", 3),
    ("resnet20-relu-preact-C", "--arch resnet20 --ordering relu-preact --shortcut C", "3x32x32", 3),
    ("plain20", "--arch plain20", "3x32x32", 3),
    ("plain20-full-preact", "--arch plain20 --ordering full-preact", "3x32x32", 3),
    ("highway20", "--arch highway20 --gate-bias 0.5", "3x32x32", 3),
    ("highway20-B", "--arch highway20 --shortcut B --gate-bias 0.5", "3x32x32", 3),
    ("resnet20-stochastic-depth", "--arch resnet20 --stochastic-depth 0.5", "3x32x32", 3),
    ("preresnet11-bottleneck", "--arch preresnet11", "3x32x32", 3),
    ("preresnet11-original-B", "--arch preresnet11 --ordering original --shortcut B", "3x32x32", 3),
    ("preresnet11-bn-after-add-A", "--arch preresnet11 --ordering bn-after-add --shortcut A", "3x32x32", 3),
    ("resnet18-imagenet", "--arch resnet18 --classes 100", "3x64x64", 2),
    ("resnet50-imagenet", "--arch resnet50 --classes 10", "3x32x32", 2, "extra"),
    ("resnet8-w24-s2", "--arch resnet8-w24-s2", "1x28x28", 3),
    ("wrn-16-2", "--arch wrn-16-2", "3x32x32", 3),
    ("resnet14-odd-input", "--arch resnet14", "2x17x23", 3),
]

# Largest error allowed: max |ours - theirs| over max |theirs|, per case.
TOLERANCE = 2e-5


# ---- safetensors (what the project's files are), with numpy -----------------------------------
def read_safetensors(path):
    raw = open(path, "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    meta = header.pop("__metadata__", {})
    tensors = {}
    for name, h in header.items():
        a, b = h["data_offsets"]
        dtype = {"F32": "<f4", "I64": "<i8"}[h["dtype"]]
        tensors[name] = np.frombuffer(raw[8 + n + a:8 + n + b], dtype=dtype).reshape(h["shape"])
    return tensors, meta


def write_safetensors(path, tensors, meta=None):
    header, blobs, offset = {}, [], 0
    for name, t in tensors.items():
        t = np.asarray(t, order="C")  # ascontiguousarray would make a scalar 1-d
        dtype = {np.dtype("float32"): "F32", np.dtype("int64"): "I64"}[t.dtype]
        blob = t.astype(t.dtype.newbyteorder("<")).tobytes()
        header[name] = {"dtype": dtype, "shape": list(t.shape),
                        "data_offsets": [offset, offset + len(blob)]}
        blobs.append(blob)
        offset += len(blob)
    if meta:
        header["__metadata__"] = meta
    head = json.dumps(header).encode()
    head += b" " * (-len(head) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(head)) + head + b"".join(blobs))


# The normalisation and label names perturb writes into every case's metadata.
def MEAN(c):
    return 0.1 * (c + 1)


def STD(c):
    return 0.2 + 0.05 * c


LABEL = 'class "%d", ok'


def perturb(src, dst, seed):
    """The model at src with random batch-norm statistics, scales and shifts, and a random
    classifier bias, plus a normalisation and label names in its metadata, written to dst."""
    rng = np.random.default_rng(seed)
    tensors, meta = read_safetensors(src)
    out = {}
    for name, t in tensors.items():
        t = t.copy()
        if name.endswith("running_mean"):
            t = rng.normal(0.0, 0.2, t.shape)
        elif name.endswith("running_var"):
            t = rng.uniform(0.5, 2.0, t.shape)
        elif name.endswith(".weight") and t.ndim == 1:  # a batch norm's scale
            t = rng.uniform(0.5, 1.5, t.shape)
        elif name.endswith(".bias") and not name.startswith("fc.") and ".gate." not in name:
            t = rng.normal(0.0, 0.2, t.shape)
        elif name == "fc.bias":
            t = rng.normal(0.0, 0.1, t.shape)
        out[name] = t.astype(tensors[name].dtype)
    c = int(meta["input"].split("x")[0])
    meta = dict(meta)
    meta["normalize_mean"] = ",".join("%.9g" % MEAN(i) for i in range(c))
    meta["normalize_std"] = ",".join("%.9g" % STD(i) for i in range(c))
    meta["labels"] = json.dumps([LABEL % k for k in range(tensors["fc.bias"].shape[0])])
    write_safetensors(dst, out, meta)


def run(argv):
    p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if p.returncode != 0:
        raise RuntimeError("%s: exit %d: %s" % (" ".join(argv), p.returncode, p.stdout.strip()))
    return p.stdout


def prepare(resnet, work, case, export_args=(), seed=1):
    """Init, perturb, export and run one case: (onnx path, input images, resnet's logits)."""
    name, options, shape, n = case[:4]
    base = os.path.join(work, name)
    run([resnet, "init"] + options.split() + ["--input-shape", shape, "--seed", str(seed),
                                              "--output", base + ".init.safetensors"])
    perturb(base + ".init.safetensors", base + ".safetensors", seed)
    run([resnet, "export", "--model", base + ".safetensors", "--output", base + ".onnx"]
        + list(export_args))
    c, h, w = (int(v) for v in shape.split("x"))
    x = np.random.default_rng(seed + 100).normal(0.0, 1.0, (n, c, h, w)).astype(np.float32)
    write_safetensors(base + ".input.safetensors", {"input": x})
    run([resnet, "forward", "--model", base + ".safetensors", "--input", base + ".input.safetensors",
         "--output", base + ".logits.safetensors"])
    logits = read_safetensors(base + ".logits.safetensors")[0]["logits"]
    return base + ".onnx", x, np.array(logits)


def rel_error(ours, theirs):
    return float(np.max(np.abs(ours - theirs)) / max(float(np.max(np.abs(theirs))), 1e-30))


def check_header(model, case, export_args, described=True):
    """The opset and batch dimension asked for; metadata_props carry rn_net_save's description
    of the network (described: with perturb's normalisation and label names)."""
    props = {p.key: p.value for p in model.metadata_props}
    _, options, shape, _ = case[:4]
    arch = options.split()[1]
    problems = []
    args = dict(zip(export_args[::2], export_args[1::2]))
    opset = int(args.get("--opset", 13))
    if [(o.domain, o.version) for o in model.opset_import] != [("", opset)]:
        problems.append("opset_import %s, expected opset %d" % (model.opset_import, opset))
    for v in (model.graph.input[0], model.graph.output[0]):
        dim = v.type.tensor_type.shape.dim[0]
        batch = str(dim.dim_value) if dim.HasField("dim_value") else dim.dim_param
        if batch != args.get("--batch", "N"):
            problems.append("%s's batch dimension is %r" % (v.name, batch))
    for key, want in (("arch", arch), ("input", shape)):
        if props.get(key) != want:
            problems.append("metadata %s = %r, expected %r" % (key, props.get(key), want))
    if not described:
        return problems
    c = int(shape.split("x")[0])
    for key, want in (("normalize_mean", MEAN), ("normalize_std", STD)):
        got = [np.float32(v) for v in props.get(key, "").split(",") if v]
        if got != [np.float32(want(i)) for i in range(c)]:
            problems.append("metadata %s = %r" % (key, props.get(key)))
    classes = model.graph.output[0].type.tensor_type.shape.dim[1].dim_value
    if json.loads(props.get("labels", "[]")) != [LABEL % k for k in range(classes)]:
        problems.append("metadata labels = %r" % props.get("labels"))
    return problems


# ---- an ONNX evaluator on PyTorch's functional operations -------------------------------------
def run_graph(model, x):
    """Runs model's graph on x (numpy) with torch.nn.functional, node by node; returns the
    graph's first output. Only the operators and attributes the exporter writes are known:
    anything else raises, so that the evaluator never guesses."""
    import torch
    import torch.nn.functional as F
    from onnx import numpy_helper

    g = model.graph
    env = {t.name: torch.from_numpy(numpy_helper.to_array(t).copy()) for t in g.initializer}
    env[g.input[0].name] = torch.from_numpy(x)

    def attrs(node, allowed):
        out = {}
        for a in node.attribute:
            if a.name not in allowed:
                raise ValueError("%s: attribute %s is not known to the evaluator" % (node.name, a.name))
            kinds = {a.INTS: lambda: list(a.ints), a.INT: lambda: a.i, a.FLOAT: lambda: a.f,
                     a.STRING: lambda: a.s.decode()}
            if a.type not in kinds:
                raise ValueError("%s: attribute %s of type %d" % (node.name, a.name, a.type))
            out[a.name] = kinds[a.type]()
        return out

    def sym_pads(node, pads):
        if pads[:2] != pads[2:] or pads[0] != pads[1]:
            raise ValueError("%s: asymmetric pads %s" % (node.name, pads))
        return pads[0]

    for node in g.node:
        i = [env[n] for n in node.input]
        op = node.op_type
        if op == "Conv":
            a = attrs(node, {"kernel_shape", "strides", "pads", "dilations", "group"})
            if list(i[1].shape[2:]) != a.get("kernel_shape", list(i[1].shape[2:])):
                raise ValueError("%s: kernel_shape does not match the weight" % node.name)
            y = F.conv2d(i[0], i[1], i[2] if len(i) > 2 else None, stride=a.get("strides", [1, 1]),
                         padding=sym_pads(node, a.get("pads", [0, 0, 0, 0])),
                         dilation=a.get("dilations", [1, 1]), groups=a.get("group", 1))
        elif op == "BatchNormalization":
            a = attrs(node, {"epsilon", "momentum"})
            y = F.batch_norm(i[0], i[3], i[4], i[1], i[2], training=False, eps=a.get("epsilon", 1e-5))
        elif op == "Relu":
            attrs(node, set())
            y = F.relu(i[0])
        elif op == "Sigmoid":
            attrs(node, set())
            y = torch.sigmoid(i[0])
        elif op in ("Add", "Sub", "Mul"):
            attrs(node, set())
            y = {"Add": torch.add, "Sub": torch.sub, "Mul": torch.mul}[op](i[0], i[1])
        elif op == "MaxPool":
            a = attrs(node, {"kernel_shape", "strides", "pads"})
            y = F.max_pool2d(i[0], a["kernel_shape"], a.get("strides", [1, 1]),
                             sym_pads(node, a.get("pads", [0, 0, 0, 0])))
        elif op == "GlobalAveragePool":
            attrs(node, set())
            y = F.adaptive_avg_pool2d(i[0], 1)
        elif op == "Flatten":
            a = attrs(node, {"axis"})
            y = torch.flatten(i[0], a.get("axis", 1))
        elif op == "Gemm":
            a = attrs(node, {"transB", "alpha", "beta"})
            w = i[1].t() if a.get("transB", 0) else i[1]
            y = a.get("alpha", 1.0) * (i[0] @ w) + a.get("beta", 1.0) * i[2]
        elif op == "Slice":
            attrs(node, set())
            starts, ends, axes, steps = (t.tolist() for t in i[1:5])
            index = [slice(None)] * i[0].dim()
            for s, e, ax, st in zip(starts, ends, axes, steps):
                index[ax] = slice(s, min(e, i[0].shape[ax]), st)
            y = i[0][tuple(index)]
        elif op == "Pad":
            a = attrs(node, {"mode"})
            if a.get("mode", "constant") != "constant":
                raise ValueError("%s: pad mode %s" % (node.name, a["mode"]))
            pads = i[1].tolist()
            r = len(pads) // 2
            torch_pads = []
            for d in reversed(range(r)):  # torch: the last dimension first, (begin, end) each
                torch_pads += [pads[d], pads[d + r]]
            y = F.pad(i[0], torch_pads, value=float(i[2]) if len(i) > 2 else 0.0)
        else:
            raise ValueError("%s: operator %s is not known to the evaluator" % (node.name, op))
        env[node.output[0]] = y
    return env[g.output[0].name].numpy()


def torch_evaluate(model, path, x):
    return run_graph(model, x)


def check_case(resnet, work, case, evaluate, export_args=()):
    """Exports one case and compares evaluate(model, path, x)'s logits with resnet forward's;
    returns (max relative error, problems)."""
    import onnx
    path, x, want = prepare(resnet, work, case, export_args)
    model = onnx.load(path)
    onnx.checker.check_model(model, full_check=True)
    problems = check_header(model, case, export_args)
    got = evaluate(model, path, x)
    if got.shape != want.shape:
        problems.append("logits of shape %s, resnet forward's %s" % (got.shape, want.shape))
        return float("inf"), problems
    err = rel_error(got, want)
    if not err <= TOLERANCE:
        problems.append("relative error %.3g above %.1g" % (err, TOLERANCE))
    if (got.argmax(1) != want.argmax(1)).any():
        problems.append("top-1 differs: %s vs %s" % (got.argmax(1), want.argmax(1)))
    return err, problems


def load_library(build):
    """The shared library through ctypes, or None for a sanitizer build (its runtime must be
    loaded first, which a Python process cannot do)."""
    path = os.path.join(build, "libresnet.so")
    with open(path, "rb") as f:
        data = f.read()
    if b"__asan_init" in data or b"__tsan_init" in data:
        return None
    lib = ctypes.CDLL(path)
    lib.rn_last_error.restype = ctypes.c_char_p
    return lib


def check_lesion(build, work, evaluate):
    """A lesioned network (rn_net_set_block_deleted, as `resnet eval --delete-blocks`) exports what
    its evaluation forward computes: the library called through ctypes, as a program would."""
    import onnx
    lib = load_library(build)
    problems, worst = [], 0.0
    for arch, block in (("resnet20", 4), ("highway20", 2), ("plain20", 1)):
        net = ctypes.c_void_p()
        if lib.rn_net_create(ctypes.byref(net), arch.encode(), None) != 0:
            return float("inf"), ["%s: %s" % (arch, lib.rn_last_error().decode())]
        try:
            path = os.path.join(work, "%s-lesion.onnx" % arch)
            if (lib.rn_net_set_block_deleted(net, block, 1) != 0 or
                    lib.rn_net_export_onnx(net, path.encode(), 0, 0) != 0):
                problems.append("%s: %s" % (arch, lib.rn_last_error().decode()))
                continue
            x = np.random.default_rng(7).normal(0.0, 1.0, (2, 3, 32, 32)).astype(np.float32)
            want = np.zeros((2, 10), np.float32)
            fp = ctypes.POINTER(ctypes.c_float)
            if lib.rn_net_forward(net, x.ctypes.data_as(fp), 2, 0, want.ctypes.data_as(fp)) != 0:
                problems.append("%s: %s" % (arch, lib.rn_last_error().decode()))
                continue
            model = onnx.load(path)
            onnx.checker.check_model(model, full_check=True)
            err = rel_error(evaluate(model, path, x), want)
            worst = max(worst, err)
            if not err <= TOLERANCE:
                problems.append("%s with block %d deleted: relative error %.3g" % (arch, block, err))
        finally:
            lib.rn_net_free(net)
    return worst, problems


def check_api(build, work):
    """rn_net_export_onnx refuses a bad opset or batch and an unwritable path with RN_ERR_ARG or
    RN_ERR_IO and a message that names the file; a network without a classifier head too."""
    lib = load_library(build)
    net = ctypes.c_void_p()
    if lib.rn_net_create(ctypes.byref(net), b"resnet8", None) != 0:
        return float("inf"), [lib.rn_last_error().decode()]
    good = os.path.join(work, "api.onnx")
    problems = []
    try:
        for path, opset, batch, status, words in (
                (good, 10, 0, 1, ("opset 10", "11 to 17")), (good, 18, 0, 1, ("opset 18",)),
                (good, 13, -1, 1, ("batch size -1",)),
                (os.path.join(work, "none", "m.onnx"), 13, 0, 3, ("none/m.onnx",))):
            st = lib.rn_net_export_onnx(net, path.encode(), opset, batch)
            msg = lib.rn_last_error().decode()
            if st != status or not all(w in msg for w in words) or path not in msg:
                problems.append("opset %d batch %d to %s: status %d '%s'" % (opset, batch, path, st, msg))
        if os.path.exists(good):
            problems.append("a refused export wrote %s" % good)
        if lib.rn_net_export_onnx(net, good.encode(), 0, 0) != 0 or not os.path.exists(good):
            problems.append("the default opset and batch: %s" % lib.rn_last_error().decode())
        else:
            import onnx
            case = ("api", "--arch resnet8", "3x32x32", 1)
            problems += check_header(onnx.load(good), case, (), described=False)
    finally:
        lib.rn_net_free(net)
    return None, problems


def run_cases(build, wanted, evaluate, title, extras=False):
    """Every case (with extras: the extra ones too), or those named in wanted, each line its
    largest error; returns the failures' count."""
    resnet = os.path.join(build, "resnet")
    failed = 0
    with tempfile.TemporaryDirectory() as work:
        jobs = [(c[0], lambda c=c: check_case(resnet, work, c, evaluate)) for c in CASES
                if wanted or extras or "extra" not in c[4:]]
        # the other opsets and a fixed batch, on one network with every kind of node
        hw = ("highway20-B", "--arch highway20 --shortcut B --gate-bias 0.5", "3x32x32", 2)
        for args in (("--opset", "11"), ("--opset", "17", "--batch", "2")):
            label = "highway20-B " + " ".join(args)
            jobs.append((label, lambda a=args: check_case(resnet, work, hw, evaluate, a)))
        if load_library(build) is not None:
            jobs.append(("lesion", lambda: check_lesion(build, work, evaluate)))
            jobs.append(("api", lambda: check_api(build, work)))
        else:
            print("lesion, api: skipped (a sanitizer build's library cannot be loaded by Python)")
        for label, job in jobs:
            if wanted and label.split()[0] not in wanted:
                continue
            try:
                err, problems = job()
            except Exception as e:  # a refused model, a failed command: this case fails
                err, problems = float("inf"), ["%s: %s" % (type(e).__name__, e)]
            figure = "max rel. error %.2e" % err if err is not None else "(no logits)"
            print("%-36s %-24s %s" % (label, figure, "ok" if not problems else
                                      "FAILED: " + "; ".join(problems)))
            failed += bool(problems)
    print("%s: %d failed" % (title, failed))
    return failed


def main():
    args = [a for a in sys.argv[1:] if a != "--all"]
    if not args:
        sys.exit(__doc__)
    failed = run_cases(args[0], set(args[1:]), torch_evaluate, "onnx_eval", "--all" in sys.argv)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
