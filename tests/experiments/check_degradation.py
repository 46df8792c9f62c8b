"""degradation --quick: one row per epoch per net, errors in range, and every number equal to
the one its training run wrote to runs/<net>/metrics.jsonl (the CSV is those runs, not a copy
of something else)."""
from expcheck import summary_of, folder, results, settings_of, metrics, finish

d = folder()
rows = results(d)
settings = settings_of(d)["options"]
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
    m = metrics(d, r["net"])
    e = m[int(r["epoch"]) - 1]
    if abs(e["train_error"] - float(r["train_error"])) > 5e-7 or abs(e["test_error"] - float(r["test_error"])) > 5e-7:
        fail.append(f"{r['net']} epoch {r['epoch']}: CSV differs from the run's metrics.jsonl")
    if (r["kind"] == "residual") != r["net"].startswith("resnet"):
        fail.append(f"{r['net']}: kind {r['kind']}")
summary = summary_of(d)
for net in want:
    if f"| {net} |" not in summary:
        fail.append(f"summary.md has no row for {net}")
finish("check_degradation", fail)
