"""depth-usage --quick: one row per block for each of the trained net, the net at initialisation
and the control; norms and ratios finite and consistent (ratio = f_norm / x_norm, RMS = norm /
sqrt(elements)); downsampling blocks marked where the stage changes; and the known answers: in
the control (one block's last branch batch norm zeroed) that block's ratio is exactly 0 and every
block before it measures exactly as in the trained net; the trained net differs from the net at
initialisation."""
import math
from expcheck import summary_of, folder, results, finish

d = folder()
rows = results(d)
fail = []
nets = ("trained", "init", "control")
by = {n: [r for r in rows if r["net"] == n] for n in nets}
if {r["net"] for r in rows} != set(nets):
    fail.append(f"nets {sorted({r['net'] for r in rows})}, expected {list(nets)}")
nb = len(by["trained"])
if nb < 3 or any(len(by[n]) != nb for n in nets):
    fail.append(f"rows per net {[len(by[n]) for n in nets]}: expected the same number (>= 3) each")
for n in nets:
    for i, r in enumerate(by[n]):
        if int(r["block"]) != i or r["name"] != by["trained"][i]["name"]:
            fail.append(f"{n}: row {i} is block {r['block']} {r['name']}")
        stage_change = i > 0 and r["stage"] != by[n][i - 1]["stage"]
        if i > 0 and r["downsampling"] != ("1" if stage_change else "0"):
            fail.append(f"{n} {r['name']}: downsampling={r['downsampling']}, stage change {stage_change}")
        x, f, ratio, br = (float(r[k]) for k in ("x_norm", "f_norm", "ratio", "batch_ratio_mean"))
        if not (x > 0 and f >= 0 and math.isfinite(x) and math.isfinite(f)):
            fail.append(f"{n} {r['name']}: norms {x} {f}")
            continue
        if abs(ratio - f / x) > 1e-6 * max(1.0, ratio):
            fail.append(f"{n} {r['name']}: ratio {ratio} is not f_norm / x_norm = {f / x}")
        # the mean of per-batch ratios is a different average of the same thing: close to it
        if not (ratio == 0 and br == 0) and not (0.5 * ratio <= br <= 2 * ratio):
            fail.append(f"{n} {r['name']}: mean per-batch ratio {br} far from {ratio}")
        if int(r["batches"]) < 1 or int(r["images"]) < 1:
            fail.append(f"{n} {r['name']}: batches {r['batches']}, images {r['images']}")
zeroed = [r for r in by["control"] if r["zeroed"] == "1"]
if len(zeroed) != 1 or any(r["zeroed"] != "0" for n in ("trained", "init") for r in by[n]):
    fail.append(f"{len(zeroed)} zeroed blocks in the control, expected exactly 1 (and none elsewhere)")
else:
    z = zeroed[0]
    if float(z["ratio"]) != 0.0 or float(z["f_norm"]) != 0.0:
        fail.append(f"control {z['name']}: ratio {z['ratio']}, ||F|| {z['f_norm']}: expected exactly 0")
    if z["downsampling"] != "0":
        fail.append(f"control block {z['name']} is a downsampling block")
    for i in range(int(z["block"]) + 1):
        a, b = by["control"][i], by["trained"][i]
        if a["x_norm"] != b["x_norm"] or (i < int(z["block"]) and a["f_norm"] != b["f_norm"]):
            fail.append(f"control {a['name']}: differs from the trained net before the zeroed block")
if by["trained"] and by["init"] and all(a["ratio"] == b["ratio"] for a, b in zip(by["trained"], by["init"])):
    fail.append("the trained net measures exactly as the net at initialisation")
summary = summary_of(d)
if "exactly 0" not in summary or "median ratio" not in summary:
    fail.append("summary.md does not report the median ratio and the control's exact 0")
finish("check_depth_usage", fail)
