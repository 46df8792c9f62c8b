"""lesion --quick: the rows each net must have (intact, every single block, draws for every k,
every swappable neighbour pair, two controls), values in range, and the known answers: the
controls (a pair swapped twice, a block deleted and restored) measure exactly as the intact net;
the intact net's error and loss are those its training run wrote to metrics.jsonl after its last
epoch; a random draw of one block measures exactly as that block's single deletion; the
random-mean rows are the mean and s.d. of their draws."""
import math, statistics
from expcheck import check_summary, folder, results, settings_of, metrics, finish

d = folder()
rows = results(d)
settings = settings_of(d)
opts = settings["options"]
depth, draws = int(opts["depth"]), int(opts["draws"])
n_blocks = 3 * (depth - 2) // 6
per_stage = n_blocks // 3
names = [f"layer{s}.{i}" for s in (1, 2, 3) for i in range(per_stage)]
down = {"layer2.0", "layer3.0"}
cand = [b for b in names if b not in down]
fail = []

nets = {"plain%d" % depth: "plain", "resnet%d" % depth: "residual"}
if {r["net"] for r in rows} != set(nets):
    fail.append(f"nets {sorted({r['net'] for r in rows})}, expected {sorted(nets)}")
random_sets = {}
for net, kind in nets.items():
    mine = [r for r in rows if r["net"] == net]
    by = lambda t: [r for r in mine if r["test"] == t]
    if any(r["kind"] != kind for r in mine):
        fail.append(f"{net}: kind is not {kind}")
    for r in mine:
        if r["status"] == "skipped":
            if not (kind == "plain" and r["test"] == "single" and r["downsampling"] == "1"):
                fail.append(f"{net}: {r['test']} {r['blocks']} skipped")
            continue
        e = float(r["test_error"])
        if not 0.0 <= e <= 1.0:
            fail.append(f"{net}: {r['test']} {r['blocks']}: error {e} outside [0, 1]")
        if r["test"] != "random-mean" and not (math.isfinite(float(r["test_loss"])) and float(r["test_loss"]) > 0):
            fail.append(f"{net}: {r['test']} {r['blocks']}: loss {r['test_loss']}")
    none = by("none")
    if len(none) != 1:
        fail.append(f"{net}: {len(none)} rows for no deletion, expected 1")
        continue
    none = none[0]
    # every block once, downsampling marked, plain downsampling blocks skipped
    single = by("single")
    if [r["blocks"] for r in single] != names:
        fail.append(f"{net}: single deletions of {[r['blocks'] for r in single]}, expected {names}")
    for r in single:
        if (r["downsampling"] == "1") != (r["blocks"] in down):
            fail.append(f"{net}: {r['blocks']} downsampling={r['downsampling']}")
        if (r["status"] == "skipped") != (kind == "plain" and r["blocks"] in down):
            fail.append(f"{net}: {r['blocks']} status {r['status']}")
    # k random deletions: draws per k, k distinct candidates each
    rnd = by("random")
    if len(rnd) != draws * len(cand):
        fail.append(f"{net}: {len(rnd)} random rows, expected {draws * len(cand)}")
    sets = []
    for r in rnd:
        b = r["blocks"].split("+")
        if len(b) != int(r["k"]) or len(set(b)) != len(b) or not set(b) <= set(cand):
            fail.append(f"{net}: random k={r['k']} deletes {r['blocks']}")
        sets.append((r["k"], r["draw"], r["blocks"]))
        if r["k"] == "1":  # the same deletion as the single one: the same numbers
            s = [q for q in single if q["blocks"] == b[0]]
            if s and (s[0]["test_error"], s[0]["test_loss"]) != (r["test_error"], r["test_loss"]):
                fail.append(f"{net}: deleting {b[0]} at random differs from deleting it alone")
    random_sets[net] = sets
    for r in by("random-mean"):
        v = [float(q["test_error"]) for q in rnd if q["k"] == r["k"]]
        sd = statistics.stdev(v) if len(v) > 1 else 0.0
        if len(v) != draws or abs(statistics.mean(v) - float(r["test_error"])) > 2e-6 or abs(sd - float(r["error_sd"])) > 2e-6:
            fail.append(f"{net}: random-mean k={r['k']} is not the mean and s.d. of its {len(v)} draws")
    if len(by("random-mean")) != len(cand):
        fail.append(f"{net}: {len(by('random-mean'))} random-mean rows, expected {len(cand)}")
    # swaps: neighbours that keep their shape
    want_swaps = [f"{a}+{b}" for a, b in zip(names, names[1:])
                  if a not in down and b not in down and a.split(".")[0] == b.split(".")[0]]
    if [r["blocks"] for r in by("swap")] != want_swaps:
        fail.append(f"{net}: swaps {[r['blocks'] for r in by('swap')]}, expected {want_swaps}")
    # known answers
    for t in ("control-swap-twice", "control-undelete"):
        c = by(t)
        if len(c) != 1:
            fail.append(f"{net}: {len(c)} rows for {t}")
        elif (c[0]["test_error"], c[0]["test_loss"]) != (none["test_error"], none["test_loss"]):
            fail.append(f"{net}: {t} gives {c[0]['test_error']}/{c[0]['test_loss']}, the intact net "
                        f"{none['test_error']}/{none['test_loss']}")
    m = metrics(d, net)[-1]
    n = int(none["images"])
    if n == settings["subset"] or (settings["subset"] <= 0 and n == 10000):
        if round(float(none["test_error"]) * n) != round(m["test_error"] * n) or \
                abs(float(none["test_loss"]) - m["test_loss"]) > 1e-6 * max(1.0, m["test_loss"]):
            fail.append(f"{net}: intact error/loss {none['test_error']}/{none['test_loss']}, the run's "
                        f"last epoch {m['test_error']}/{m['test_loss']}")
if len(random_sets) == 2 and len(set(map(tuple, random_sets.values()))) != 1:
    fail.append("the two nets were not given the same random deletions")
summary = check_summary(d, [f"| {net} |" for net in nets], fail)
if "exactly the same error and loss" not in summary:
    fail.append("summary.md does not report the controls as exact")
finish("check_lesion", fail)
