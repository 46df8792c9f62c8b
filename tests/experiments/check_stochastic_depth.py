"""stochastic-depth --quick: epoch rows for both runs equal to their metrics.jsonl; one block row
per block per run, one eval row per run and way of opening, one run row per run; and the known
answers: each block's survival probability read back from the trained model is the linear-decay
rule p_l = 1 - (l / L)(1 - p_L), l = 1..L (Huang et al. 2016); the expected depth summed from
the model equals the closed form L - (1 - p_L)(L + 1) / 2, which is (3L - 1) / 4 for p_L = 0.5;
the constant-depth run's expected depth is L; and the final model, re-evaluated with the run's
p_L, reproduces the run's own last test error exactly."""
from expcheck import check_epochs, check_summary, folder, results, settings_of, finish

d = folder()
rows = results(d)
opts = settings_of(d)["options"]
epochs, p_last = int(opts["epochs"]), float(opts["survival"])
runs = {"constant-depth": 1.0, "stochastic-depth": p_last}
fail = []
sec = lambda s, run=None: [r for r in rows if r["section"] == s and (run is None or r["run"] == run)]
if {r["section"] for r in rows} != {"epoch", "block", "eval", "run"}:
    fail.append(f"sections {sorted({r['section'] for r in rows})}")

for run, p in runs.items():
    ep = sec("epoch", run)
    if [int(r["epoch"]) for r in ep] != list(range(1, epochs + 1)):
        fail.append(f"{run}: epochs {[r['epoch'] for r in ep]}, expected 1..{epochs}")
    check_epochs(d, ep, "run", fail)
    summary_row = sec("run", run)
    if len(summary_row) != 1:
        fail.append(f"{run}: {len(summary_row)} run rows")
        continue
    s = summary_row[0]
    if abs(float(s["survival_last"]) - p) > 1e-6:
        fail.append(f"{run}: survival_last {s['survival_last']}, expected {p}")
    L = int(s["blocks"])
    blk = sec("block", run)
    if [int(r["block"]) for r in blk] != list(range(1, L + 1)):
        fail.append(f"{run}: block rows {[r['block'] for r in blk]}, expected 1..{L}")
    for r in blk:
        l = int(r["block"])
        rule = 1.0 - l / L * (1.0 - p)
        if abs(float(r["survival"]) - rule) > 1e-6 or abs(float(r["survival_rule"]) - rule) > 1e-6:
            fail.append(f"{run} block {l}: survival {r['survival']} (rule column {r['survival_rule']}), "
                        f"expected 1 - {l}/{L} (1 - {p}) = {rule:.9f}")
    depth_model, depth_formula = float(s["expected_depth_model"]), float(s["expected_depth_formula"])
    closed = L - (1.0 - p) * (L + 1) / 2.0
    if abs(depth_formula - closed) > 1e-6:
        fail.append(f"{run}: expected_depth_formula {depth_formula}, expected {closed}")
    if abs(depth_model - depth_formula) > 1e-5 * L:
        fail.append(f"{run}: expected depth from the model {depth_model} != closed form {depth_formula}")
    if abs(depth_model - sum(float(r["survival"]) for r in blk)) > 1e-5 * L:
        fail.append(f"{run}: expected depth {depth_model} is not the sum of the block rows")
    if p == 0.5 and abs(depth_model - (3 * L - 1) / 4) > 1e-5 * L:
        fail.append(f"{run}: expected depth {depth_model}, Huang et al.'s (3L - 1)/4 = {(3 * L - 1) / 4}")
    if p == 1.0 and depth_model != L:
        fail.append(f"{run}: constant depth's expected depth {depth_model}, expected exactly {L}")
    frac = float(s["expected_macs_fraction"])
    if not (0.0 < frac <= 1.0 + 1e-9) or (p == 1.0 and abs(frac - 1.0) > 1e-9) or (p < 1.0 and frac >= 1.0):
        fail.append(f"{run}: expected mult-add fraction {frac}")
    ev = {r["opened"]: r for r in sec("eval", run)}
    if sorted(ev) != ["config", "file"]:
        fail.append(f"{run}: eval rows {sorted(ev)}")
        continue
    last = ep[-1] if ep else None
    if last and (ev["config"]["test_error"] != last["test_error"] or ev["config"]["test_loss"] != last["test_loss"]):
        fail.append(f"{run}: re-evaluated with its p_L the final model gives {ev['config']['test_error']} "
                    f"(loss {ev['config']['test_loss']}), the run's last epoch {last['test_error']} "
                    f"(loss {last['test_loss']})")
    if p == 1.0 and (ev["file"]["test_error"] != ev["config"]["test_error"] or ev["file"]["test_loss"] != ev["config"]["test_loss"]):
        fail.append(f"{run}: without stochastic depth opening the file alone must not change the result")

check_summary(d, ("(3L - 1) / 4", "| constant-depth |", "| stochastic-depth |"), fail)
finish("check_stochastic_depth", fail)
