"""degradation --quick: one row per epoch per net, errors in range, and every number equal to
the one its training run wrote to runs/<net>/metrics.jsonl (the CSV is those runs, not a copy
of something else)."""
import csv, json, os, sys

d = sys.argv[1]
rows = list(csv.DictReader(open(os.path.join(d, "results.csv"))))
settings = json.load(open(os.path.join(d, "experiment.json")))["options"]
depths = [int(v) for v in settings["depths"].split(",")]
epochs = int(settings["epochs"])
fail = []
nets = {r["net"] for r in rows}
want = {f"{k}{n}" for n in depths for k in ("plain", "resnet")}
if nets != want:
    fail.append(f"nets {sorted(nets)}, expected {sorted(want)}")
if len(rows) != len(want) * epochs:
    fail.append(f"{len(rows)} rows, expected {len(want) * epochs}")
for r in rows:
    for k in ("train_error", "test_error"):
        if not 0.0 <= float(r[k]) <= 1.0:
            fail.append(f"{r['net']} epoch {r['epoch']}: {k} {r[k]} outside [0, 1]")
    m = [json.loads(l) for l in open(os.path.join(d, "runs", r["net"], "metrics.jsonl"))]
    e = m[int(r["epoch"]) - 1]
    if abs(e["train_error"] - float(r["train_error"])) > 5e-7 or abs(e["test_error"] - float(r["test_error"])) > 5e-7:
        fail.append(f"{r['net']} epoch {r['epoch']}: CSV differs from the run's metrics.jsonl")
    if (r["kind"] == "residual") != r["net"].startswith("resnet"):
        fail.append(f"{r['net']}: kind {r['kind']}")
summary = open(os.path.join(d, "summary.md")).read()
for net in want:
    if f"| {net} |" not in summary:
        fail.append(f"summary.md has no row for {net}")
for f in fail:
    print("check_degradation: " + f)
sys.exit(1 if fail else 0)
