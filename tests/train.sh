#!/bin/sh
# The train, eval and predict verbs: a tiny real training run on Fashion-MNIST, exact resume
# (after a stop at an epoch boundary, in the middle of an epoch, and after a real SIGINT), eval
# and predict on the result, PyTorch parity of the trained model, and a clear one-line error
# (nonzero exit, the file or option named, nothing overwritten) for each kind of bad input.
# Usage: tests/train.sh BUILD_DIR
set -u
. "$(dirname "$0")/lib.sh"
skip=0
skipped() { skip=$((skip + 1)); echo "SKIP: $*"; }


# Tiny settings: resnet8, one thread (tiny nets gain nothing from more; same bits every time),
# every augmentation on, so that the exact-resume checks below cover their random draws.
TINY="--arch resnet8 --batch 50 --subset 200 --threads 1 --quiet --crop-pad 2 --flip --erase 0.5"

# ---- generated data sets: IDX (MNIST layout) and CIFAR-10, small, in the published formats ----
$PY - "$T" <<'PY' || bad "cannot generate the test data"
import gzip, os, struct, sys
t = sys.argv[1]
os.makedirs(t + "/idx"); os.makedirs(t + "/cifar")
def idx_images(path, n, rows=28, cols=28, magic=0x803, count=None, gz=True):
    data = struct.pack(">IIII", magic, n if count is None else count, rows, cols)
    data += bytes((i * 7 + j) % 256 for i in range(n) for j in range(rows * cols))
    (gzip.open if gz else open)(path, "wb").write(data)
def idx_labels(path, labels, gz=True):
    data = struct.pack(">II", 0x801, len(labels)) + bytes(labels)
    (gzip.open if gz else open)(path, "wb").write(data)
d = t + "/idx/"
idx_images(d + "train-images-idx3-ubyte.gz", 60)
idx_labels(d + "train-labels-idx1-ubyte.gz", [i % 10 for i in range(60)])
idx_images(d + "t10k-images-idx3-ubyte.gz", 20)
idx_labels(d + "t10k-labels-idx1-ubyte.gz", [i % 10 for i in range(20)])
# broken variants, one per directory
def variant(name, **kw):
    v = t + "/" + name + "/"
    os.makedirs(v)
    for f in os.listdir(d):
        os.link(d + f, v + f)
    return v
v = variant("truncated"); os.remove(v + "train-images-idx3-ubyte.gz")
raw = gzip.open(d + "train-images-idx3-ubyte.gz").read()
gzip.open(v + "train-images-idx3-ubyte.gz", "wb").write(raw[:5000])
v = variant("magic"); os.remove(v + "train-images-idx3-ubyte.gz")
idx_images(v + "train-images-idx3-ubyte.gz", 60, magic=0x1234)
v = variant("counts"); os.remove(v + "train-labels-idx1-ubyte.gz")
idx_labels(v + "train-labels-idx1-ubyte.gz", [i % 10 for i in range(59)])
v = variant("range"); os.remove(v + "train-labels-idx1-ubyte.gz")
idx_labels(v + "train-labels-idx1-ubyte.gz", [i % 10 for i in range(59)] + [10])
v = variant("missing"); os.remove(v + "t10k-labels-idx1-ubyte.gz"); os.remove(v + "train-labels-idx1-ubyte.gz")
for i in range(1, 6):
    open(t + "/cifar/data_batch_%d.bin" % i, "wb").write(
        b"".join(bytes([k % 10]) + bytes((k + j) % 256 for j in range(3072)) for k in range(10)))
open(t + "/cifar/test_batch.bin", "wb").write(
    b"".join(bytes([k % 10]) + bytes((k * 3 + j) % 256 for j in range(3072)) for k in range(10)))
PY

# ---- the help and the defaults -----------------------------------------------------------
"$R" train --help >"$T/out" && grep -q -- "--resume DIR" "$T/out" && grep -q -- "--label-smoothing" "$T/out" &&
    ok || bad "train --help"
"$R" --help | grep -q "train" && ok || bad "resnet --help does not list train"
"$R" eval --help | grep -q -- "--model" && ok || bad "eval --help"
"$R" predict --help | grep -q -- "--top" && ok || bad "predict --help"
# The defaults as the run reports them (a few images, stopped after one step): the recipe
# docs/results.md measured, Fashion-MNIST's crop and flip included.
"$R" train --subset 64 --threads 1 --stop-after 1 --out "$T/defaults" >"$T/out" 2>&1
grep -q "^training resnet8-w32-s2 " "$T/out" &&
    grep -q "20 epochs of 1 batches of 64, lr 0.05 cosine, momentum 0.9, wd 0.0005, label smoothing 0.1, crop pad 2, flip, seed 1" "$T/out" &&
    ok || bad "the defaults of resnet train: $(head -n 3 "$T/out")"
"$R" train --subset 64 --threads 1 --stop-after 1 --label-smoothing 0 --no-flip --crop-pad 1 \
    --erase 0.25 --out "$T/defaults2" >"$T/out" 2>&1
grep -q "wd 0.0005, crop pad 1, erase 0.25, seed 1" "$T/out" && ok ||
    bad "the options in the run's header: $(head -n 3 "$T/out")"

# ---- bad options and bad data: one line naming the option or file, nonzero, no run folder ----
expect_error "unknown option '--frobnicate'" "$R" train --frobnicate --out "$T/x"
expect_error "unknown architecture" "$R" train --arch resnet21 --out "$T/x"
expect_error "ordering" "$R" train --ordering sideways --out "$T/x"
# the parser's reason, whole (it once was overwritten by the message quoting it)
expect_error "not a valid O: 'sideways': unknown block ordering 'sideways' (original," "$R" train --ordering sideways --out "$T/x"
expect_error "^resnet: --bn: not a valid MODE: 'mixed': sync or local$" "$R" train --bn mixed --out "$T/x"
expect_error "schedule" "$R" train --schedule linear --out "$T/x"
expect_error "schedule" "$R" train --schedule step:0.9,0.5 --out "$T/x"
expect_error "\-\-epochs" "$R" train --epochs 0 --out "$T/x"
expect_error "\-\-lr" "$R" train --lr -1 --out "$T/x"
expect_error "\-\-lr" "$R" train --lr fast --out "$T/x"
expect_error "\-\-accum" "$R" train --batch 8 --accum 9 --out "$T/x"
expect_error "\-\-warmup" "$R" train --epochs 2 --warmup 2 --out "$T/x"
expect_error "\-\-momentum" "$R" train --momentum 1 --out "$T/x"
expect_error "\-\-label-smoothing" "$R" train --label-smoothing 1.5 --out "$T/x"
expect_error "\-\-data" "$R" train --data imagenet --out "$T/x"
expect_error "needs a value" "$R" train --epochs
expect_error "not a train option" "$R" train --model "$T/m.safetensors"
expect_error "$T/nowhere" "$R" train --data mnist --data-dir "$T/nowhere" --out "$T/x"
expect_error "train-labels-idx1-ubyte" "$R" train --data mnist --data-dir "$T/missing" --out "$T/x"
expect_error "train-images-idx3-ubyte.gz" "$R" train --data mnist --data-dir "$T/truncated" --out "$T/x"
expect_error "train-images-idx3-ubyte.gz" "$R" train --data mnist --data-dir "$T/magic" --out "$T/x"
expect_error "train-labels-idx1-ubyte.gz" "$R" train --data mnist --data-dir "$T/counts" --out "$T/x"
expect_error "train-labels-idx1-ubyte.gz" "$R" train --data mnist --data-dir "$T/range" --out "$T/x"
expect_error "\-\-input-shape 3x32x32" "$R" train --data mnist --data-dir "$T/idx" --input-shape 3x32x32 --out "$T/x"
expect_error "\-\-classes 5" "$R" train --data mnist --data-dir "$T/idx" --classes 5 --out "$T/x"
expect_error "\-\-val" "$R" train --data mnist --data-dir "$T/idx" --subset 30 --val 30 --out "$T/x"
[ ! -e "$T/x" ] && ok || bad "a failed start left the run folder $T/x behind"
expect_error "no checkpoint.safetensors" "$R" train --resume "$T/nowhere"

# ---- a tiny real training run on Fashion-MNIST ---------------------------------------------
# tools/install-deps.sh installs the data set, so its absence is a failure, not a skip: a suite
# that skipped its real training runs would pass without testing them.
if [ ! -f "$FM/train-images-idx3-ubyte.gz" ]; then
    bad "no Fashion-MNIST in $FM (Debian's dataset-fashion-mnist; tools/install-deps.sh installs it): the training runs"
    finish train ", $skip skipped"
    exit 1
fi
run="$T/run"
if "$R" train $TINY --epochs 2 --out "$run" >"$T/out" 2>"$T/err"; then ok; else bad "tiny training run: $(cat "$T/err")"; fi
for f in checkpoint.safetensors model.safetensors metrics.jsonl; do
    [ -s "$run/$f" ] && ok || bad "the run folder lacks $f"
done
grep -q "^epoch 2/2 .*test loss" "$T/out" && ok || bad "no per-epoch line: $(cat "$T/out")"
$PY - "$run/metrics.jsonl" <<'PY' && ok || bad "metrics.jsonl: $(cat "$run/metrics.jsonl")"
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
keys = {"epoch", "train_loss", "train_error", "test_loss", "test_error", "lr", "time_s",
        "data_time_s", "images_per_s"}
assert [l["epoch"] for l in lines] == [1, 2], lines
assert all(keys <= set(l) for l in lines), lines
assert all(0 <= l["test_error"] <= 1 and l["train_loss"] > 0 for l in lines)
PY
"$R" info --model "$run/model.safetensors" >/dev/null && ok || bad "info cannot read the trained model"

# an existing run folder is refused, and nothing in it changes
cp "$run/model.safetensors" "$T/model.before"
expect_error "already holds a run" "$R" train $TINY --epochs 2 --out "$run"
cmp -s "$run/model.safetensors" "$T/model.before" && ok || bad "a refused run changed the model"
expect_error "only --threads" "$R" train --resume "$run" --epochs 3
# resuming a finished run: nothing to do, the same model
"$R" train --resume "$run" >"$T/out" 2>&1 && grep -q "already finished" "$T/out" && ok ||
    bad "resume of a finished run: $(cat "$T/out")"
cmp -s "$run/model.safetensors" "$T/model.before" && ok || bad "resuming a finished run changed the model"

# ---- exact resume: stop after epoch 1 (4 steps), or in epoch 2 (step 6), then --resume ----
for stop in 4 6; do
    d="$T/stop$stop"
    "$R" train $TINY --epochs 2 --out "$d" --stop-after $stop >/dev/null 2>"$T/err"
    status=$?
    [ "$status" -eq 130 ] && grep -q "resume $d" "$T/err" && ok || bad "--stop-after $stop exited $status: $(cat "$T/err")"
    "$R" train --resume "$d" >/dev/null 2>"$T/err" && ok || bad "resume after step $stop: $(cat "$T/err")"
    cmp -s "$d/model.safetensors" "$run/model.safetensors" && ok ||
        bad "stopped at step $stop and resumed: the model differs from the uninterrupted run's"
    # the metrics agree too (all but the timings)
    a=$(sed 's/,"time_s".*//' "$run/metrics.jsonl")
    b=$(sed 's/,"time_s".*//' "$d/metrics.jsonl")
    [ "$a" = "$b" ] && ok || bad "metrics after resume differ: $b vs $a"
done

# ---- resume with another thread count: the same bits (results do not depend on it) ----------
d="$T/stop6t"
"$R" train $TINY --epochs 2 --out "$d" --stop-after 6 >/dev/null 2>"$T/err"
"$R" train --resume "$d" --threads 2 >/dev/null 2>"$T/err" && ok || bad "resume with --threads 2: $(cat "$T/err")"
cmp -s "$d/model.safetensors" "$run/model.safetensors" && ok ||
    bad "1 thread, stopped at step 6, resumed with 2 threads: the model differs from the 1-thread run's"

# ---- a real SIGINT (and SIGTERM) in the middle of a run ------------------------------------
for sig in INT TERM; do
    d="$T/sig$sig"
    out="$T/sig$sig.out"
    "$R" train $TINY --epochs 2 --out "$d" >"$out" 2>"$T/sig.err" &
    pid=$!
    i=0
    while [ $i -lt 1200 ] && ! grep -q "^epoch 1/" "$out" 2>/dev/null; do sleep 0.05; i=$((i + 1)); done
    kill -$sig $pid 2>/dev/null
    wait $pid
    status=$?
    if [ $sig = INT ]; then want=130 word=interrupted; else want=143 word=terminated; fi
    if [ "$status" -eq $want ]; then
        grep -q "$word at epoch" "$T/sig.err" && ok || bad "SIG$sig message: $(cat "$T/sig.err")"
        "$R" train --resume "$d" >/dev/null 2>"$T/err" && ok || bad "resume after SIG$sig: $(cat "$T/err")"
    elif [ "$status" -eq 0 ]; then
        skipped "the run finished before SIG$sig arrived"
    else
        bad "SIG$sig: exit status $status: $(cat "$T/sig.err")"
    fi
    cmp -s "$d/model.safetensors" "$run/model.safetensors" && ok || bad "SIG$sig + resume: the model differs"
done

# ---- the other options in one short run: validation split, accumulation, smoothing, ... ----
d="$T/options"
if "$R" train $TINY --epochs 1 --val 50 --accum 2 --label-smoothing 0.1 --no-wd-bn --nesterov \
    --warmup 0.5 --schedule step:0.5 --crop-pad 1 --flip --seed 5 --out "$d" >"$T/out" 2>"$T/err"; then
    grep -q "val loss" "$T/out" && grep -q '"val_error"' "$d/metrics.jsonl" && ok ||
        bad "--val run: no validation metrics: $(cat "$T/out")"
    # eval --split val finds the same 50 images: the last epoch's validation metrics again
    "$R" eval --model "$d/model.safetensors" --split val --val 50 --seed 5 --subset 200 --json \
        >"$T/evalval.json" 2>"$T/err" && $PY - "$T/evalval.json" "$d/metrics.jsonl" <<'PY' && ok ||
import json, sys
e = json.load(open(sys.argv[1]))
m = json.loads(open(sys.argv[2]).read().splitlines()[-1])
assert e["split"] == "val" and e["images"] == 50, e
assert abs(e["error"] - m["val_error"]) < 1e-9 and abs(e["loss"] - m["val_loss"]) < 1e-4, (e, m)
PY
        bad "eval --split val: $(cat "$T/err" "$T/evalval.json")"
else
    bad "a run with every option: $(cat "$T/err")"
fi
expect_error "needs --val" "$R" eval --model "$run/model.safetensors" --split val
expect_error "\-\-tta" "$R" eval --model "$run/model.safetensors" --tta mirror

# ---- NaN: a learning rate of 1e30 blows up; the step is named, the last checkpoint is kept ----
d="$T/nan"
expect_error "step [0-9]* (epoch 1, batch [0-9]*): the .* is \(NaN\|infinite\).*last good checkpoint" \
    "$R" train $TINY --epochs 1 --lr 1e30 --schedule constant --out "$d"
[ -s "$d/checkpoint.safetensors" ] && [ ! -e "$d/model.safetensors" ] && ok ||
    bad "after NaN: checkpoint kept, no model expected"

# ---- eval --------------------------------------------------------------------------------
M="$run/model.safetensors"
"$R" eval --model "$M" --subset 100 --threads 1 >"$T/out" 2>"$T/err" && grep -q "^accuracy" "$T/out" &&
    grep -q "Ankle boot" "$T/out" && grep -q "confusion matrix" "$T/out" && ok || bad "eval: $(cat "$T/out" "$T/err")"
"$R" eval --model "$M" --subset 100 --threads 1 --json >"$T/eval.json" 2>"$T/err" && ok || bad "eval --json: $(cat "$T/err")"
$PY - "$T/eval.json" <<'PY' && ok || bad "eval --json output: $(head -c 600 "$T/eval.json")"
import json, sys
e = json.load(open(sys.argv[1]))
assert e["images"] == 100 and len(e["per_class"]) == 10 and len(e["confusion"]) == 10
assert sum(map(sum, e["confusion"])) == 100
assert abs(e["accuracy"] - sum(e["confusion"][k][k] for k in range(10)) / 100) < 1e-12
assert e["per_class"][9]["label"] == "Ankle boot"
PY
expect_error "missing.safetensors" "$R" eval --model "$T/missing.safetensors"
expect_error "does not fit the data" "$R" eval --model "$M" --data cifar10 --data-dir "$T/cifar"
expect_error "which model" "$R" eval --data mnist --data-dir "$T/idx"
expect_error "\-\-split" "$R" eval --model "$M" --split validation

# ---- predict -------------------------------------------------------------------------------
# Two test images as PGM files (stb_image reads them), exactly the data set's pixels.
$PY - "$FM" "$T" <<'PY' || bad "cannot write the test images"
import gzip, sys
raw = gzip.open(sys.argv[1] + "/t10k-images-idx3-ubyte.gz").read()
for i in range(2):
    px = raw[16 + 784 * i:16 + 784 * (i + 1)]
    open("%s/img%d.pgm" % (sys.argv[2], i), "wb").write(b"P5\n28 28\n255\n" + px)
open(sys.argv[2] + "/junk.png", "wb").write(b"this is not a picture")
PY
"$R" predict --model "$M" "$T/img0.pgm" "$T/img1.pgm" --top 3 >"$T/out" 2>"$T/err" &&
    [ "$(grep -c '^  [ 0-9]*\. ' "$T/out")" = 6 ] && ok || bad "predict: $(cat "$T/out" "$T/err")"
"$R" predict --model "$M" "$T/img0.pgm" "$T/img1.pgm" --top 10 --json >"$T/pred.json" 2>"$T/err" && ok ||
    bad "predict --json: $(cat "$T/err")"
$PY - "$T/pred.json" <<'PY' && ok || bad "predict --json output: $(head -c 600 "$T/pred.json")"
import json, sys
p = json.load(open(sys.argv[1]))
assert len(p) == 2 and all(len(x["top"]) == 10 for x in p)
for x in p:
    probs = [c["probability"] for c in x["top"]]
    assert probs == sorted(probs, reverse=True) and abs(sum(probs) - 1) < 1e-5
    assert {c["label"] for c in x["top"]} >= {"Sneaker", "Trouser"}
PY
expect_error "nothere.png" "$R" predict --model "$M" "$T/nothere.png"
expect_error "junk.png" "$R" predict --model "$M" "$T/junk.png"
expect_error "no image files" "$R" predict --model "$M"
expect_error "\-\-top" "$R" predict --model "$M" --top 0 "$T/img0.pgm"

# ---- a folder of PNG images: train, eval (class numbers from the model's labels), predict ----
$PY - "$T/folder" <<'PY' || bad "cannot write the PNG folder"
import os, struct, sys, zlib
def png(path, w, h, rows):
    raw = b"".join(b"\0" + bytes(r) for r in rows)
    chunk = lambda t, d: struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d))
    open(path, "wb").write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0))
                           + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
for split, n in (("train", 12), ("test", 4)):
    for k, name in enumerate(("dark", "light", "stripes")):
        os.makedirs("%s/%s/%s" % (sys.argv[1], split, name))
        for i in range(n):
            rows = [[(40 + 10 * i, 200 - 5 * i, 255 * (x % 2))[k] for x in range(12)] for y in range(12)]
            png("%s/%s/%s/%d.png" % (sys.argv[1], split, name, i), 12, 12, rows)
PY
d="$T/folderrun"
"$R" train --data folder --data-dir "$T/folder" --input-shape 1x8x8 --arch resnet8 --batch 12 \
    --epochs 2 --threads 1 --quiet --out "$d" >"$T/out" 2>"$T/err" && ok || bad "folder training: $(cat "$T/err")"
"$R" eval --model "$d/model.safetensors" --data folder --data-dir "$T/folder" --json >"$T/eval.json" 2>"$T/err" &&
    $PY -c "import json,sys; e=json.load(open(sys.argv[1])); assert e['images'] == 12 and e['per_class'][2]['label'] == 'stripes'" \
    "$T/eval.json" && ok || bad "folder eval: $(cat "$T/err" "$T/eval.json")"
"$R" predict --model "$d/model.safetensors" "$T/folder/test/stripes/0.png" --top 3 --json >"$T/out" 2>"$T/err" &&
    grep -q '"stripes"' "$T/out" && ok || bad "folder predict: $(cat "$T/err" "$T/out")"

# ---- PyTorch parity: the trained model in the equivalent PyTorch module -------------------
if ! $PY -c "import torch" 2>/dev/null; then
    bad "PyTorch parity: $PY has no torch (Debian's python3-torch; tools/install-deps.sh installs it)"
else
    # 64 test images, normalised with the model's own metadata; the C logits from `forward`.
    $PY - "$M" "$FM" "$T/x.safetensors" <<'PY' || bad "cannot write the parity input"
import gzip, json, struct, sys
sys.path.insert(0, "tools")
from torch_ref import load_safetensors, save_safetensors
import torch
meta, _ = load_safetensors(sys.argv[1])
mean, std = float(meta["normalize_mean"]), float(meta["normalize_std"])
raw = gzip.open(sys.argv[2] + "/t10k-images-idx3-ubyte.gz").read()[16:16 + 64 * 784]
x = (torch.tensor(list(raw), dtype=torch.float32).reshape(64, 1, 28, 28) / 255 - mean) / std
save_safetensors(sys.argv[3], [("input", x)])
PY
    "$R" forward --model "$M" --input "$T/x.safetensors" --output "$T/y.safetensors" \
        >/dev/null 2>"$T/err" || bad "forward: $(cat "$T/err")"
    "$R" predict --model "$M" "$T/img0.pgm" --top 10 --json >"$T/pred0.json" 2>/dev/null
    "$R" predict --model "$M" "$T/img0.pgm" --top 10 --tta flip,shift --json >"$T/pred0tta.json" 2>/dev/null
    "$R" eval --model "$M" --subset 64 --tta flip,shift --json >"$T/evaltta.json" 2>/dev/null
    $PY - "$M" "$T/x.safetensors" "$T/y.safetensors" "$T/pred0.json" <<'PY' && ok || bad "PyTorch parity"
import json, sys
sys.path.insert(0, "tools")
from torch_ref import build, load_safetensors
import torch
meta, state = load_safetensors(sys.argv[1])
c = int(meta["input"].split("x")[0])
model = build(meta["arch"], meta["ordering"], meta["shortcut"], int(meta["classes"]), c)
model.load_state_dict(state, strict=True)
model.eval()
x = load_safetensors(sys.argv[2])[1]["input"]
ours = torch.softmax(load_safetensors(sys.argv[3])[1]["logits"].double(), 1)
with torch.no_grad():
    ref = torch.softmax(model(x).double(), 1)
same = bool((ours.argmax(1) == ref.argmax(1)).all())
err = float((ours - ref).abs().max())
pred = {c["class"]: c["probability"] for c in json.load(open(sys.argv[4]))[0]["top"]}
perr = max(abs(pred[k] - float(ref[0, k])) for k in range(10))
print("PyTorch parity of the trained model: argmax %s on 64 images, max |p - p_torch| %.1e "
      "(forward), %.1e (predict)" % ("identical" if same else "DIFFERENT", err, perr))
sys.exit(0 if same and err < 1e-4 and perr < 1e-4 else 1)
PY
    # Test-time augmentation against the same ten views made in PyTorch: the image and its
    # mirror, each also moved by one pixel up, down, left and right (zero pixels fill the gap).
    $PY - "$M" "$T/x.safetensors" "$T/pred0tta.json" "$T/evaltta.json" "$FM" <<'PY' && ok ||
import gzip, json, sys
sys.path.insert(0, "tools")
from torch_ref import build, load_safetensors
import torch
import torch.nn.functional as F
meta, state = load_safetensors(sys.argv[1])
model = build(meta["arch"], meta["ordering"], meta["shortcut"], int(meta["classes"]), 1)
model.load_state_dict(state, strict=True)
model.eval()
x = load_safetensors(sys.argv[2])[1]["input"]
zero = -float(meta["normalize_mean"]) / float(meta["normalize_std"])  # a normalised 0 pixel
def moved(v, dy, dx):  # out[r, q] = v[r + dy, q + dx]
    p = F.pad(v, (1, 1, 1, 1), value=zero)
    return p[:, :, 1 + dy:1 + dy + 28, 1 + dx:1 + dx + 28]
views = [x, x.flip(3)]
views += [moved(v, dy, dx) for v in (x, x.flip(3)) for dy, dx in ((-1, 0), (1, 0), (0, -1), (0, 1))]
with torch.no_grad():
    p = sum(torch.softmax(model(v).double(), 1) for v in views) / len(views)
labels = torch.tensor(list(gzip.open(sys.argv[5] + "/t10k-labels-idx1-ubyte.gz").read()[8:8 + 64]))
pred = {c["class"]: c["probability"] for c in json.load(open(sys.argv[3]))[0]["top"]}
perr = max(abs(pred[k] - float(p[0, k])) for k in range(10))
e = json.load(open(sys.argv[4]))
loss = float(-p[torch.arange(64), labels].log().mean())
acc = float((p.argmax(1) == labels).double().mean())
print("PyTorch parity of test-time augmentation (10 views): max |p - p_torch| %.1e (predict), "
      "accuracy %.4f / %.4f, loss %.6f / %.6f (eval, 64 images)" % (perr, e["accuracy"], acc, e["loss"], loss))
sys.exit(0 if perr < 1e-4 and e["views"] == 10 and e["accuracy"] == acc and abs(e["loss"] - loss) < 1e-4 else 1)
PY
        bad "PyTorch parity of test-time augmentation"
fi

finish train ", $skip skipped"
