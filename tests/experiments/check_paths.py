"""paths --quick: one sample row per (k, sample) with exactly k blocks on its path, one length row
per k = 0..n, and the known answers: the path count is C(n, k) (math.comb), the length
distribution and the gradient distribution each sum to 1, the length rows summarise their sample
rows, k = 0 and k = n have a single path (every sample gives the same number), and the full
backward's gradient is the same bit for bit before the paths, after them, and through the path
code with every block passing its gradient both ways."""
import math
from expcheck import summary_of, folder, results, settings_of, finish

d = folder()
rows = results(d)
opts = settings_of(d)["options"]
samples = int(opts["samples"])
fail = []
length = [r for r in rows if r["section"] == "length"]
n = len(length) - 1
if n < 1:
    fail.append("no length rows")
if [int(r["k"]) for r in length] != list(range(n + 1)):
    fail.append("length rows are not k = 0..n")
sample = [r for r in rows if r["section"] == "sample"]
if len(sample) != (n + 1) * samples:
    fail.append(f"{len(sample)} sample rows, expected {(n + 1) * samples}")
by_k = {}
for r in sample:
    k, blocks = int(r["k"]), r["blocks"]
    if len(blocks) != n or set(blocks) - {"0", "1"} or blocks.count("1") != k:
        fail.append(f"sample k={k}: blocks '{blocks}' is not a path through {k} of {n} branches")
    v = float(r["grad_norm"])
    if not (math.isfinite(v) and v > 0):
        fail.append(f"sample k={k}: gradient {v}")
    by_k.setdefault(k, []).append(v)
for r in length:
    k = int(r["k"])
    if int(r["n_paths"]) != math.comb(n, k):
        fail.append(f"k={k}: {r['n_paths']} paths, C({n},{k}) = {math.comb(n, k)}")
    if abs(float(r["length_fraction"]) - math.comb(n, k) / 2 ** n) > 1e-15:
        fail.append(f"k={k}: length fraction {r['length_fraction']}")
    v = by_k.get(k, [])
    if len(v) != samples:
        continue
    if abs(float(r["grad_norm"]) / (sum(v) / len(v)) - 1) > 1e-12:
        fail.append(f"k={k}: the mean is not the mean of its samples")
    if float(r["grad_min"]) != min(v) or float(r["grad_max"]) != max(v):
        fail.append(f"k={k}: min/max are not its samples'")
    if k in (0, n) and min(v) != max(v):
        fail.append(f"k={k}: one path only, yet the samples differ: {v}")
for col in ("length_fraction", "grad_fraction"):
    s = sum(float(r[col]) for r in length)
    if abs(s - 1) > 1e-12:
        fail.append(f"{col} sums to {s}, not 1")
if length:
    total = sum(float(r["grad_norm"]) * math.comb(n, int(r["k"])) for r in length)
    for r in length:
        want = float(r["grad_norm"]) * math.comb(n, int(r["k"])) / total
        if abs(float(r["grad_fraction"]) - want) > 1e-12:
            fail.append(f"k={r['k']}: grad_fraction {r['grad_fraction']}, expected {want}")
check = {r["name"]: r["grad_norm"] for r in rows if r["section"] == "check"}
names = ("full_backward_before", "full_backward_after", "every_block_both_ways")
if set(check) != set(names):
    fail.append(f"check rows {sorted(check)}, expected {sorted(names)}")
elif len({check[k] for k in names}) != 1 or not float(check[names[0]]) > 0:
    fail.append(f"the full backward differs: {[check[k] for k in names]}")
summary = summary_of(d)
if "carrying 90% of the gradient" not in summary:
    fail.append("summary.md does not give the range of path lengths that carries the gradient")
finish("check_paths", fail)
