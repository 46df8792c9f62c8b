"""identity --quick: a training curve (from step 1 to the last step) for a plain and a residual
stack at every depth, one block row per block (layers / 2) and one final row per stack; steps to
the threshold consistent with the curve; the final row's medians those of its block rows; and the
known answer: the control stack, whose residual branches end in batch norms with gamma = beta = 0,
maps x to x exactly (relative error 0, every ||F(x)||/||x|| and ||y-x||/||x|| 0)."""
import math, statistics
from expcheck import check_summary, folder, results, settings_of, finish

d = folder()
rows = results(d)
opts = settings_of(d)["options"]
layers = [int(v) for v in opts["layers"].split(",")]
steps, threshold = int(opts["steps"]), float(opts["threshold"])
fail = []
stacks = {f"{k}{n}": (k, n) for n in layers for k in ("plain", "residual")}
control = f"residual{layers[-1]}-zeroed"
final = {r["stack"]: r for r in rows if r["section"] == "final"}
if set(final) != set(stacks) | {control}:
    fail.append(f"final rows for {sorted(final)}, expected {sorted(set(stacks) | {control})}")

for name, (kind, n) in list(stacks.items()) + [(control, ("control", layers[-1]))]:
    blocks = n // 2
    br = [r for r in rows if r["section"] == "block" and r["stack"] == name]
    if [int(r["block"]) for r in br] != list(range(1, blocks + 1)):
        fail.append(f"{name}: block rows {[r['block'] for r in br]}, expected 1..{blocks}")
    for r in br:
        for col in ("branch_ratio", "change_ratio"):
            v = float(r[col])
            if not (math.isfinite(v) and v >= 0):
                fail.append(f"{name} block {r['block']}: {col} {r[col]}")
    f = final.get(name)
    if not f or not br:
        continue
    for col in ("branch_ratio", "change_ratio"):
        med = statistics.median(float(r[col]) for r in br)
        if abs(float(f[col]) - med) > 1e-6 * max(med, 1e-30):
            fail.append(f"{name}: final {col} {f[col]} is not the median of its blocks ({med})")
    if name == control:
        continue
    curve = [r for r in rows if r["section"] == "curve" and r["stack"] == name]
    st = [int(r["step"]) for r in curve]
    if not st or st[0] != 1 or st[-1] != steps or st != sorted(set(st)):
        fail.append(f"{name}: curve steps {st[:3]}...{st[-3:]}, expected 1 ... {steps} increasing")
    err = [float(r["rel_error"]) for r in curve]
    if any(not (math.isfinite(e) and e >= 0) for e in err):
        fail.append(f"{name}: a relative error on the curve is not finite and >= 0")
    to = f["steps_to_threshold"]
    if to == "never":
        if any(e < threshold for e in err):
            fail.append(f"{name}: 'never' reached the threshold, yet the curve goes below it")
    else:
        t = int(to)
        if not 1 <= t <= steps:
            fail.append(f"{name}: steps to threshold {t} outside 1..{steps}")
        if any(e < threshold for s, e in zip(st, err) if s < t):
            fail.append(f"{name}: the curve is below the threshold before step {t}")
        if t in st and not err[st.index(t)] < threshold:
            fail.append(f"{name}: at step {t} the curve is not below the threshold")
    if f["kind"] != kind or int(f["blocks"]) != blocks:
        fail.append(f"{name}: kind/blocks {f['kind']}/{f['blocks']}")

# the known answer
c = final.get(control)
if c:
    if c["kind"] != "control":
        fail.append(f"{control}: kind {c['kind']}")
    if float(c["rel_error"]) != 0.0 or float(c["branch_ratio"]) != 0.0 or float(c["change_ratio"]) != 0.0:
        fail.append(f"{control}: relative error {c['rel_error']}, median ratios {c['branch_ratio']}/"
                    f"{c['change_ratio']}; a zeroed residual stack must be the identity exactly")
    for r in rows:
        if r["section"] == "block" and r["stack"] == control and (
                float(r["branch_ratio"]) != 0.0 or float(r["change_ratio"]) != 0.0):
            fail.append(f"{control} block {r['block']}: {r['branch_ratio']}/{r['change_ratio']}, expected 0")
check_summary(d, [f"| {name} |" for name in list(stacks) + [control]], fail)
finish("check_identity", fail)
