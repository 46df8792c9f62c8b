"""orderings --quick: one epoch row per epoch and one final row per ordering, errors in range and
equal to the runs' metrics.jsonl, and the known answers: every model file states the ordering
its run asked for; the parameter counts read back from the models equal the ones worked out
here from the CIFAR layout (16/32/64 channels, n = (depth - 2) / 6 basic blocks per stage,
option A shortcuts), which are the same for all five orderings (full pre-activation drops the
stem's BN and moves each unit's first BN to its input, and its final BN makes up exactly the
difference); the paper's ranks are Table 2's; each rank is the test error's."""
import os
from expcheck import check_epochs, check_summary, folder, results, settings_of, finish

d = folder()
rows = results(d)
opts = settings_of(d)["options"]
depth, epochs = int(opts["depth"]), int(opts["epochs"])
names = ["original", "bn-after-add", "relu-before-add", "relu-preact", "full-preact"]
letters = "abcde"
fail = []

epoch_rows = [r for r in rows if r["section"] == "epoch"]
final = {r["ordering"]: r for r in rows if r["section"] == "final"}
if sorted({r["ordering"] for r in epoch_rows}) != sorted(names) or len(epoch_rows) != 5 * epochs:
    fail.append(f"{len(epoch_rows)} epoch rows for {sorted({r['ordering'] for r in epoch_rows})}, "
                f"expected {epochs} for each of {names}")
if sorted(final) != sorted(names) or len([r for r in rows if r["section"] == "final"]) != 5:
    fail.append(f"final rows for {sorted(final)}, expected one for each of {names}")
if {r["section"] for r in rows} - {"epoch", "final"}:
    fail.append("unknown sections")

check_epochs(d, epoch_rows + list(final.values()), "ordering", fail)

# Parameter counts of the CIFAR layout on 1-channel 28x28 images with 10 classes.
n = (depth - 2) // 6
widths = [16, 32, 64]
conv = 9 * 1 * 16
bn_post = 2 * 16  # (a)-(d): the stem's BN, then two BNs of out_c per unit
bn_pre = 2 * 64   # (e): no stem BN, one BN of in_c and one of out_c per unit, a final BN
cin = 16
for w in widths:
    for i in range(n):
        conv += 9 * cin * w + 9 * w * w
        bn_post += 2 * (w + w)
        bn_pre += 2 * (cin + w)
        cin = w
fc = 64 * 10 + 10
for i, name in enumerate(names):
    r = final.get(name)
    if not r:
        continue
    if r["stored_ordering"] != name:
        fail.append(f"{name}: the model file states ordering {r['stored_ordering']}")
    if r["unit"] != letters[i]:
        fail.append(f"{name}: unit {r['unit']}, expected ({letters[i]})")
    want_bn = bn_pre if name == "full-preact" else bn_post
    got = {k: int(r[k]) for k in ("params", "conv_params", "bn_params", "fc_params", "other_params")}
    want = {"params": conv + want_bn + fc, "conv_params": conv, "bn_params": want_bn, "fc_params": fc,
            "other_params": 0}
    if got != want:
        fail.append(f"{name}: parameters {got}, expected {want}")
if len({final[k]["params"] for k in final}) > 1:
    fail.append("the five orderings differ in their parameter counts")

# Ranks: the paper's are Table 2's; ours follow the test errors.
paper = {"110": [6.61, 8.17, 7.84, 6.71, 6.37], "164": [5.93, 6.50, 6.14, 5.91, 5.46]}
want_rank = {"110": [2, 5, 4, 3, 1], "164": [3, 5, 4, 2, 1]}
for depth_p in ("110", "164"):
    for i, name in enumerate(names):
        if name in final:
            if abs(float(final[name][f"paper_{depth_p}"]) - paper[depth_p][i]) > 1e-9:
                fail.append(f"{name}: paper ResNet-{depth_p} error {final[name][f'paper_{depth_p}']}")
            if int(final[name][f"rank_{depth_p}"]) != want_rank[depth_p][i]:
                fail.append(f"{name}: paper ResNet-{depth_p} rank {final[name][f'rank_{depth_p}']}, "
                            f"expected {want_rank[depth_p][i]}")
if len(final) == 5:
    errs = [float(final[nm]["test_error"]) for nm in names]
    ranks = [int(final[nm]["rank"]) for nm in names]
    if sorted(ranks) != [1, 2, 3, 4, 5]:
        fail.append(f"our ranks {ranks} are not 1..5")
    for i in range(5):
        for j in range(5):
            if errs[i] < errs[j] and ranks[i] > ranks[j]:
                fail.append(f"rank of {names[i]} ({ranks[i]}) above that of {names[j]} ({ranks[j]}) "
                            f"with a lower test error")

check_summary(d, [f"| ({c}) " for c in letters], fail)
for f in ("orderings.png", "orderings_final.png"):
    if not os.path.exists(os.path.join(d, f)):
        fail.append(f"no {f}")
finish("check_orderings", fail)
