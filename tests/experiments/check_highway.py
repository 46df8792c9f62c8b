"""highway --quick: epoch rows for both nets equal to their metrics.jsonl; one gates row per block
for the trained and for the freshly initialised highway net; and the known answers: at
initialisation every gate bias is exactly --gate-bias (float32), every gate value lies strictly
between 0 and 1 (a sigmoid), the histogram holds one value per unit per image, its percentiles
are ordered and inside [min, max] (to a bin), and the mean and the share T >= 0.5 are consistent
with them."""
import struct
from expcheck import check_epochs, check_summary, folder, results, settings_of, finish

d = folder()
rows = results(d)
opts = settings_of(d)["options"]
depth, epochs = int(opts["depth"]), int(opts["epochs"])
gate_bias = struct.unpack("f", struct.pack("f", float(opts["gate-bias"])))[0]
blocks = 3 * (depth - 2) // 6
fail = []
if {r["section"] for r in rows} != {"epoch", "gates"}:
    fail.append(f"sections {sorted({r['section'] for r in rows})}")

for net in (f"highway{depth}", f"resnet{depth}"):
    ep = [r for r in rows if r["section"] == "epoch" and r["net"] == net]
    if [int(r["epoch"]) for r in ep] != list(range(1, epochs + 1)):
        fail.append(f"{net}: epochs {[r['epoch'] for r in ep]}, expected 1..{epochs}")
    check_epochs(d, ep, "net", fail)

for when in ("trained", "init"):
    g = [r for r in rows if r["section"] == "gates" and r["when"] == when]
    if [int(r["block"]) for r in g] != list(range(1, blocks + 1)):
        fail.append(f"{when}: gate rows for blocks {[r['block'] for r in g]}, expected 1..{blocks}")
    for r in g:
        b = f"{when} block {r['block']} ({r['name']})"
        if r["net"] != f"highway{depth}":
            fail.append(f"{b}: net {r['net']}")
        f = {k: float(r[k]) for k in ("gate_mean", "gate_p10", "gate_p50", "gate_p90", "gate_min",
                                       "gate_max", "open_share", "selectivity", "bias_mean",
                                       "bias_min", "bias_max")}
        if int(r["count"]) != int(r["units"]) * int(r["images"]) or int(r["count"]) <= 0:
            fail.append(f"{b}: {r['count']} gate values, expected units x images = "
                        f"{r['units']} x {r['images']}")
        if not (0.0 < f["gate_min"] <= f["gate_mean"] <= f["gate_max"] < 1.0):
            fail.append(f"{b}: gate values min {f['gate_min']}, mean {f['gate_mean']}, max "
                        f"{f['gate_max']}: not inside (0, 1) or not ordered")
        if not (f["gate_p10"] <= f["gate_p50"] <= f["gate_p90"]):
            fail.append(f"{b}: percentiles not ordered")
        if not (f["gate_min"] - 0.01 <= f["gate_p10"] and f["gate_p90"] <= f["gate_max"] + 0.01):
            fail.append(f"{b}: percentiles outside [min, max] by more than a bin")
        if not 0.0 <= f["open_share"] <= 1.0 or (f["gate_max"] < 0.5 and f["open_share"] != 0.0) \
                or (f["gate_min"] >= 0.5 and f["open_share"] != 1.0):
            fail.append(f"{b}: share T >= 0.5 is {f['open_share']} with min {f['gate_min']} max {f['gate_max']}")
        if not 0.0 <= f["selectivity"] <= 0.5:
            fail.append(f"{b}: selectivity {f['selectivity']} outside [0, 0.5]")
        if not f["bias_min"] <= f["bias_mean"] <= f["bias_max"]:
            fail.append(f"{b}: bias mean outside its min and max")
        if when == "init" and not (f["bias_min"] == f["bias_max"] == f["bias_mean"] == gate_bias):
            fail.append(f"{b}: initial gate biases min {f['bias_min']} mean {f['bias_mean']} max "
                        f"{f['bias_max']}, expected exactly {gate_bias}")

check_summary(d, ("LSTM", f"| highway{depth} |", f"| resnet{depth} |"), fail)
finish("check_highway", fail)
