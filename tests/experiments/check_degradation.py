"""degradation --quick: one row per epoch per net, errors in range, and every number equal to
the one its training run wrote to runs/<net>/metrics.jsonl (the CSV is those runs, not a copy
of something else)."""
from expcheck import check_epochs, check_summary, folder, results, settings_of, finish

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
check_epochs(d, rows, "net", fail)
for r in rows:
    if (r["kind"] == "residual") != r["net"].startswith("resnet"):
        fail.append(f"{r['net']}: kind {r['kind']}")
check_summary(d, [f"| {net} |" for net in sorted(want)], fail)
finish("check_degradation", fail)
