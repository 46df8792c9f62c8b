"""gradflow --quick: one weight row per convolution and one block row per block input (plus the
head's) for every net, at init and trained; norms positive and finite; and the known answers:
measuring twice at the same weights gives the same numbers (difference exactly 0), the recorded
gradient at the head's input equals the one computed from the logits and the classifier (float
rounding), and in a full pre-activation net with every branch's backward off each identity
shortcut passes the gradient on bit for bit (a zero-padding one keeps at most all of it)."""
import math
from expcheck import check_summary, folder, results, settings_of, finish

d = folder()
rows = results(d)
opts = settings_of(d)["options"]
depths = [int(v) for v in opts["depths"].split(",")]
suffix = "-s2" if opts["stem-stride"] == "2" else ""
fail = []
nets = {f"{k}{n}{suffix}": (k, n) for n in depths for k in ("plain", "resnet", "highway")}
got = {r["net"] for r in rows if r["section"] in ("weight", "block")}
if got != set(nets):
    fail.append(f"nets {sorted(got)}, expected {sorted(nets)}")

for net, (kind, depth) in nets.items():
    blocks = 3 * (depth - 2) // 6  # basic blocks of a 6n+2 CIFAR net
    convs = 1 + 2 * blocks
    for when in ("init", "trained"):
        w = [r for r in rows if r["section"] == "weight" and r["net"] == net and r["when"] == when]
        b = [r for r in rows if r["section"] == "block" and r["net"] == net and r["when"] == when]
        if len(w) != convs:
            fail.append(f"{net} {when}: {len(w)} weight rows, expected {convs}")
        if len(b) != blocks + 1:
            fail.append(f"{net} {when}: {len(b)} block rows, expected {blocks + 1}")
        if w and w[0]["name"] != "conv1.weight":
            fail.append(f"{net} {when}: the first layer is {w[0]['name']}, not the stem's conv1.weight")
        if [int(r["index"]) for r in w] != list(range(1, len(w) + 1)):
            fail.append(f"{net} {when}: weight rows not numbered 1..{len(w)}")
        for r in w + b:
            v = float(r["value"])
            if not (math.isfinite(v) and v > 0):
                fail.append(f"{net} {when} {r['section']} {r['index']}: gradient norm {r['value']}")
        ratio = [r for r in rows if r["section"] == "net" and r["net"] == net and r["when"] == when
                 and r["name"] == "first_over_last"]
        if len(ratio) != 1 or (w and abs(float(ratio[0]["value"]) / (float(w[0]["value"]) / float(w[-1]["value"])) - 1) > 1e-6):
            fail.append(f"{net} {when}: first_over_last is not the first weight norm over the last")

checks = [r for r in rows if r["section"] == "check"]
rep = [r for r in checks if r["name"] == "repeat_max_diff"]
if {r["net"] for r in rep} != set(nets):
    fail.append("no repeat check for every net")
for r in rep:
    if float(r["value"]) != 0.0:
        fail.append(f"{r['net']}: measuring twice at the same weights differs by {r['value']}")
head = [r for r in checks if r["name"] == "head_input_sq"]
if len(head) != 2 * len(nets):
    fail.append(f"{len(head)} head-input checks, expected {2 * len(nets)}")
for r in head:
    rec, direct = float(r["value"]), float(r["expected"])
    if not (direct > 0 and abs(rec / direct - 1) < 1e-5):
        fail.append(f"{r['net']} {r['when']}: recorded head-input gradient^2 {rec} vs direct {direct}")
    blk = [b for b in rows if b["section"] == "block" and b["net"] == r["net"] and b["when"] == r["when"]]
    if blk and abs(float(blk[-1]["value"]) ** 2 / rec - 1) > 1e-6:
        fail.append(f"{r['net']} {r['when']}: the check's head value is not the last block row")
pas = [r for r in checks if r["name"].startswith("passthrough")]
want = 3 * (depths[0] - 2) // 6
if len(pas) != want:
    fail.append(f"{len(pas)} pass-through rows, expected {want} (one per block of the pre-activation net)")
n_id = 0
for r in pas:
    a, b = float(r["value"]), float(r["expected"])
    if r["name"] == "passthrough_identity":
        n_id += 1
        if r["value"] != r["expected"]:
            fail.append(f"pre-activation block {r['index']}: identity shortcut changed the gradient: {a} -> {b}")
    elif not a <= b:
        fail.append(f"pre-activation block {r['index']}: a padding shortcut grew the gradient: {a} > {b}")
if pas and n_id != len(pas) - 2:
    fail.append(f"{n_id} identity blocks in the pre-activation net, expected {len(pas) - 2} (two downsampling)")

check_summary(d, [f"| {net} |" for net in nets], fail)
finish("check_gradflow", fail)
