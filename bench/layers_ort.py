"""Per convolution shape, this engine's frozen inference (`resnet bench --mode infer --layers`)
beside ONNX Runtime's (its profiler's time for each Conv node, which ORT fuses with its bias,
ReLU and residual addition as ours are), same network, batch and threads, in alternating runs:
where the inference time goes against the anchor. A profile, not a benchmark of totals (each
engine's timing of its layers adds a little); the totals compare the convolutions only.

Rows group the convolutions of one shape (ORT runs a block's projection before its last
convolution, so they are not matched one by one). Each cell: the median over the rounds of the
milliseconds a forward spends in that shape's convolutions. The ONNX files are those
bench/compare.py exports (bench/.work/onnx, Debian's PyTorch); missing ones are exported here
the same way.

  bench/.venv/bin/python bench/layers_ort.py --arch resnet50 --batch 1 --threads 1 --rounds 3
"""
import argparse
import collections
import json
import os
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def onnx_file(arch, batch):
    path = os.path.join(HERE, ".work", "onnx", "%s-b%d.onnx" % (arch, batch))
    if not os.path.exists(path):
        subprocess.run(["/usr/bin/python3", os.path.join(HERE, "compare.py"), "--worker", "export",
                        "--rows", "%s:%d" % (arch, batch)], check=True, cwd=ROOT,
                       stdout=subprocess.DEVNULL)
    return path


def ort_round(path, batch, threads, iters):
    """Milliseconds a run spends in each Conv shape (C, K, k, stride, H), and the shapes' counts."""
    import numpy as np
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.enable_profiling = True
    so.profile_file_prefix = os.path.join(tempfile.gettempdir(), "layers_ort")
    sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    x = np.random.default_rng(0).standard_normal((batch, 3, 224, 224)).astype(np.float32)
    for _ in range(2):
        sess.run(None, {name: x})
    runs_before = iters + 2
    for _ in range(iters):
        sess.run(None, {name: x})
    prof = sess.end_profiling()
    with open(prof) as f:
        events = json.load(f)
    os.remove(prof)
    per_node = collections.defaultdict(list)
    shape_of = {}
    for e in events:
        a = e.get("args", {})
        if e.get("cat") != "Node" or not e["name"].endswith("_kernel_time") or a.get("op_name") != "Conv":
            continue
        per_node[e["name"]].append(e["dur"] / 1e3)
        ins, out = a["input_type_shape"], a["output_type_shape"]
        xs, ws, ys = ins[0]["float"], ins[1]["float"], out[0]["float"]
        shape_of[e["name"]] = (xs[1], ws[0], ws[2], xs[2] // ys[2], xs[2])
    ms, count = collections.defaultdict(float), collections.Counter()
    for node, times in per_node.items():
        assert len(times) == runs_before, (node, len(times))
        timed = sorted(times[2:])
        ms[shape_of[node]] += statistics.median(timed)
        count[shape_of[node]] += 1
    return ms, count


def ours_round(resnet, arch, batch, threads, iters):
    out = subprocess.run([resnet, "bench", "--arch", arch, "--input-shape", "3x224x224",
                          "--batch", str(batch), "--threads", str(threads), "--mode", "infer",
                          "--layers", "--iters", str(iters), "--json"],
                         check=True, capture_output=True, text=True, cwd=ROOT).stdout
    j = json.loads(out)
    ms, count = collections.defaultdict(float), collections.Counter()
    for r in j["layers"]:
        key = (r["in_c"], r["out_c"], r["k"], r["stride"], r["in_h"])
        ms[key] += r["ms_per_call"]
        count[key] += 1
    return ms, count, j["fma_peak_gflop_per_s"]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--arch", default="resnet50", help="a torchvision ImageNet network")
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=3, help="alternating runs of each engine")
    ap.add_argument("--iters", type=int, default=20, help="timed forwards a run")
    ap.add_argument("--resnet", default="build/resnet", help="our binary (relative to the repo)")
    a = ap.parse_args()
    path = onnx_file(a.arch, a.batch)
    resnet = os.path.join(ROOT, a.resnet)
    ort_ms, our_ms, peaks = collections.defaultdict(list), collections.defaultdict(list), []
    for _ in range(a.rounds):
        o, ocount = ort_round(path, a.batch, a.threads, a.iters)
        u, ucount, peak = ours_round(resnet, a.arch, a.batch, a.threads, a.iters)
        if ocount != ucount:
            sys.exit("the two networks' convolutions differ: %s vs %s" % (dict(ocount), dict(ucount)))
        for k in o:
            ort_ms[k].append(o[k])
            our_ms[k].append(u[k])
        peaks.append(peak)
    peak = statistics.median(peaks)
    print("%s batch %d, %d threads: per convolution shape, ms a forward (median of %d alternating "
          "runs of %d forwards each); FMA peak %.1f GFLOP/s" % (a.arch, a.batch, a.threads,
                                                               a.rounds, a.iters, peak))
    print("%-22s %5s %9s %9s %7s %8s %8s" % ("C->K k/s HxW", "count", "ORT ms", "ours ms",
                                              "ours/ORT", "ORT pk", "ours pk"))
    tot_o = tot_u = 0.0
    for k in sorted(ort_ms, key=lambda k: (-k[4], k[0], k[1])):
        c, kk, r, s, h = k
        o, u = statistics.median(ort_ms[k]), statistics.median(our_ms[k])
        tot_o += o
        tot_u += u
        gflop = 2.0 * a.batch * c * kk * r * r * (h // s) ** 2 * ocount[k] / 1e9
        print("%-22s %5d %9.3f %9.3f %7.2f %7.0f%% %7.0f%%" % (
            "%d->%d %d/%d %dx%d" % (c, kk, r, s, h, h), ocount[k], o, u, u / o,
            100 * gflop / (o / 1e3) / peak, 100 * gflop / (u / 1e3) / peak))
    print("%-22s %5s %9.3f %9.3f %7.2f" % ("convolutions", "", tot_o, tot_u, tot_u / tot_o))
    per_round = [sum(our_ms[k][i] for k in our_ms) / sum(ort_ms[k][i] for k in ort_ms)
                 for i in range(a.rounds)]
    print("ours/ORT of each round's convolutions: " + " ".join("%.3f" % r for r in per_round))


if __name__ == "__main__":
    main()
