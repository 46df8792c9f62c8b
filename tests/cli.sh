#!/bin/sh
# Command-line checks: documented figures, the forward verb against the PyTorch reference,
# the example program, and clear errors (nonzero exit, the file named) on bad input.
# Usage: tests/cli.sh BUILD_DIR   (expects BUILD_DIR/ref from tools/torch_ref.py)
set -u
. "$(dirname "$0")/lib.sh"

json() { # json FIELD < text
    /usr/bin/python3 -c "import json,sys; print(json.load(sys.stdin)['$1'])"
}
expect_field() { # expect_field FIELD VALUE resnet-args...
    field=$1 want=$2
    shift 2
    got=$("$R" info "$@" --json | json "$field")
    [ "$got" = "$want" ] && ok || bad "info $* --json: $field = $got, expected $want"
}

# Parameter counts of the issue (torchvision's and He et al.'s figures).
for pair in resnet18:11689512 resnet34:21797672 resnet50:25557032 resnet101:44549160 \
    resnet152:60192808; do
    expect_field params "${pair#*:}" --arch "${pair%%:*}" --classes 1000 --input-shape 3x224x224
done
for pair in resnet20:269722 resnet56:853018 resnet110:1727962; do
    expect_field params "${pair#*:}" --arch "${pair%%:*}" --classes 10 --input-shape 3x32x32
done
# Multiply-adds per image of the convolutions and the classifier (40.55 M, 125.49 M, 30.82 M,
# 1.814 G, 4.089 G; the last two are the figures usually quoted for torchvision's models).
expect_field macs 40551040 --arch resnet20
expect_field macs 125485696 --arch resnet56
expect_field macs 30821248 --arch resnet20 --input-shape 1x28x28
expect_field macs 1814073344 --arch resnet18
expect_field macs 4089184256 --arch resnet50

# The readable summary names every stage and the total.
out=$("$R" info --arch resnet20)
for word in stem layer1 layer2 layer3 head total 269,722; do
    echo "$out" | grep -q "$word" && ok || bad "info table lacks '$word'"
done

# forward on a PyTorch state: logits equal PyTorch's evaluation-mode logits.
case_dir="$B/ref/resnet20-original-A"
if "$R" forward --arch resnet20 --weights "$case_dir/weights.safetensors" \
    --input "$case_dir/state.safetensors" --output "$T/logits.safetensors" >/dev/null; then
    /usr/bin/python3 - "$T/logits.safetensors" "$case_dir/state.safetensors" <<'PY' && ok || bad "forward logits differ from PyTorch"
import json, struct, sys
def tensor(path, name):
    raw = open(path, "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    h = json.loads(raw[8:8 + n])[name]
    a, b = h["data_offsets"]
    return struct.unpack("<%df" % ((b - a) // 4), raw[8 + n + a:8 + n + b])
ours, ref = tensor(sys.argv[1], "logits"), tensor(sys.argv[2], "logits_eval")
err = sum((x - y) ** 2 for x, y in zip(ours, ref)) ** 0.5 / sum(y * y for y in ref) ** 0.5
print("forward vs PyTorch logits: relative error %.2e" % err)
sys.exit(0 if len(ours) == len(ref) and err < 1e-4 else 1)
PY
else
    bad "forward on $case_dir failed"
fi

# init writes a model that carries its architecture; the example classifies with it.
"$R" init --arch resnet20 --seed 3 --output "$T/model.safetensors" >/dev/null && ok || bad "init"
out=$("$B/examples/classify" "$T/model.safetensors" "$case_dir/state.safetensors")
[ "$(echo "$out" | grep -c '^image')" = 4 ] && ok || bad "classify printed: $out"
# same seed, same bits
"$R" init --arch resnet20 --seed 3 --output "$T/again.safetensors" >/dev/null
cmp -s "$T/model.safetensors" "$T/again.safetensors" && ok || bad "init is not deterministic"

# Bad input: a clear message naming the file, a nonzero status, never a crash.
expect_error "missing.safetensors" "$R" forward --model "$T/missing.safetensors" --random-input 1
printf 'not a safetensors file at all' >"$T/junk.safetensors"
expect_error "junk.safetensors" "$R" info --model "$T/junk.safetensors"
head -c 2000 "$T/model.safetensors" >"$T/short.safetensors"
expect_error "short.safetensors" "$R" info --model "$T/short.safetensors"
expect_error "missing tensor" "$R" info --arch resnet34 --weights "$B/ref/resnet18/weights.safetensors"
expect_error "fc.weight" "$R" info --arch resnet20 --classes 100 --weights "$case_dir/weights.safetensors"
expect_error "no architecture" "$R" info --weights "$case_dir/weights.safetensors"
expect_error "unknown architecture" "$R" info --arch resnet21
expect_error "resnet8-w0" "$R" info --arch resnet8-w0
expect_error "ordering" "$R" info --arch resnet20 --ordering sideways
expect_error "input-shape" "$R" info --arch resnet20 --input-shape 3x32
expect_error "the input's shape is --input-shape" "$R" info --arch resnet20 --input 3x32x32
expect_error "no tensor named 'input'" "$R" forward --model "$T/model.safetensors" --input "$T/model.safetensors"
expect_error "unknown verb" "$R" frobnicate

# bench --kernels: resnet8's 7 convolutions in 6 distinct shapes, whose FLOPs add up to the
# network's multiply-adds less the classifier's (64 x 10).
"$R" bench --kernels --arch resnet8 --batch 2 --threads 1 --warmup 0 --iters 1 --json >"$T/k.json" \
    2>"$T/err" && ok || bad "bench --kernels: $(cat "$T/err")"
macs=$("$R" info --arch resnet8 --json | json macs)
/usr/bin/python3 - "$T/k.json" "$macs" <<'PY' && ok || bad "bench --kernels --json: $(cat "$T/k.json")"
import json, sys
j = json.load(open(sys.argv[1]))
rows = j["rows"]
flop = sum(r["count"] * r["gflop"] for r in rows) * 1e9
assert j["convs"] == 7 and len(rows) == 6 and sum(r["count"] for r in rows) == 7, rows
assert abs(flop / (2 * j["batch"]) - (int(sys.argv[2]) - 640)) < 1, flop
assert rows[0]["names"] == ["conv1"] and rows[0]["dx_count"] == 0, rows[0]
assert all(r[d]["ms"] > 0 and r[d]["gflop_per_s"] > 0 and r[d]["peak_share"] > 0 for r in rows
           for d in ("forward", "backward_data", "backward_weights", "forward_blocked")), rows
assert j["fma_peak_gflop_per_s"] > 0 and j["blocked_lanes"] in (8, 16), j
PY
expect_error "takes no --mode" "$R" bench --kernels --mode train --arch resnet8 --batch 2

# bench --layers: a row per convolution of the frozen resnet8, each called once a timed step,
# whose FLOPs add up as the kernel table's; the convolutions' time within the forward's.
"$R" bench --mode infer --layers --arch resnet8 --batch 2 --threads 1 --warmup 1 --iters 3 --json \
    >"$T/l.json" 2>"$T/err" && ok || bad "bench --layers: $(cat "$T/err")"
/usr/bin/python3 - "$T/l.json" "$macs" <<'PY' && ok || bad "bench --layers --json: $(cat "$T/l.json")"
import json, sys
j = json.load(open(sys.argv[1]))
rows = j["layers"]
assert len(rows) == 7 and rows[0]["name"] == "conv1" and rows[6]["name"] == "layer3.0.conv2", rows
assert all(r["calls"] == 3 and r["ms_per_call"] > 0 and r["peak_share"] > 0 for r in rows), rows
flop = sum(2 * j["batch"] * r["in_c"] * r["out_c"] * r["k"] ** 2 * (r["in_h"] // r["stride"]) ** 2
           for r in rows)
assert abs(flop / (2 * j["batch"]) - (int(sys.argv[2]) - 640)) < 1, flop
assert abs(sum(r["gflop_per_s"] * r["ms_per_call"] for r in rows) / 1e3 - flop / 1e9) < 1e-9, rows
assert 0 < j["conv_share"] <= 1 and abs(sum(r["time_share"] for r in rows) - j["conv_share"]) < 1e-9, j
PY
"$R" bench --mode infer --layers --arch resnet8 --batch 2 --warmup 0 --iters 1 >"$T/l.txt" 2>&1 &&
    grep -q "^6   layer3.0.conv2 " "$T/l.txt" && grep -q "^convolutions: " "$T/l.txt" && ok ||
    bad "bench --layers table: $(cat "$T/l.txt")"
expect_error "--layers times a frozen network" "$R" bench --mode train --layers --arch resnet8 --batch 2
expect_error "--layers times a frozen network" "$R" bench --mode infer --no-freeze --layers \
    --arch resnet8 --batch 2

# A model file of ours is held to the network asked for: the orderings without a final BN and a
# plain network share resnet20's tensor names, so only the metadata tells them apart.
expect_error "saved as ordering 'original', this network is 'relu-before-add'" \
    "$R" info --model "$T/model.safetensors" --ordering relu-before-add
expect_error "saved as architecture 'resnet20', this network is 'plain20'" \
    "$R" info --model "$T/model.safetensors" --arch plain20
expect_error "saved with shortcut 'A', this network has 'B'" \
    "$R" info --model "$T/model.safetensors" --shortcut B
"$R" info --model "$T/model.safetensors" --arch resnet20 --ordering original --shortcut A \
    >/dev/null 2>"$T/err" && ok || bad "info with the model's own options: $(cat "$T/err")"

# Numeric options: NaN and infinities (and overflows to infinity) are refused, never used.
expect_error "--gate-bias: expected a finite number, got 'inf'" "$R" info --arch highway8 --gate-bias inf
expect_error "--gate-bias: expected a finite number" "$R" info --arch highway8 --gate-bias 1e39
expect_error "--stochastic-depth: expected a finite number, got 'nan'" \
    "$R" info --arch resnet20 --stochastic-depth nan
for opt in --lr --warmup --momentum --wd --label-smoothing --erase; do
    for v in nan inf -inf 1e999; do
        expect_error "$opt: expected a finite number.*got '$v'" "$R" train "$opt" "$v" --out "$T/never"
    done
done
[ ! -e "$T/never" ] && ok || bad "train with a non-finite option created its folder"
expect_error "--max-seconds: expected a finite number, got 'inf'" \
    "$R" bench --mode infer --arch resnet8 --batch 2 --max-seconds inf
expect_error "--max-seconds: expected a finite number, got 'nan'" \
    "$R" bench --mode infer --arch resnet8 --batch 2 --max-seconds nan

# One parser for every verb: the same errors everywhere, and the help lists what is parsed.
for verb in info init forward bench train eval predict experiment plot export; do
    "$R" $verb --help >"$T/help" 2>"$T/err" && [ -s "$T/help" ] && ok || bad "$verb --help"
    expect_error "$verb: unknown option '--frobnicate' (see resnet $verb --help)" "$R" $verb --frobnicate
done
for verb in info init forward bench eval predict export; do
    expect_error "option --arch needs a value" "$R" $verb --arch
    [ $verb = forward ] || expect_error "$verb: --input is forward's tensor file; the input's shape is --input-shape" \
        "$R" $verb --arch resnet8 --input 1x28x28
    expect_error "--classes: expected an integer in \[1, 1000000\], got '0'" "$R" $verb --classes 0
    expect_error "--seed: expected an unsigned integer, got '-1'" "$R" $verb --seed -1
done
expect_error "train: --input is forward's tensor file" "$R" train --input 1x28x28
expect_error "--batch: expected an integer in \[1, 65536\], got '12.5'" "$R" eval --batch 12.5
expect_error "--top: expected an integer" "$R" predict --top 1e3
expect_error "--max-seconds: expected a number in \[1e-09, 1e+09\], got '0'" \
    "$R" bench --mode infer --arch resnet8 --batch 2 --max-seconds 0
expect_error "--batch: expected an integer in \[1, 65536\], got 'dynamic'" "$R" bench --batch dynamic
expect_error "--tta: " "$R" eval --tta sideways
expect_error "plot: at most 10 run folders" "$R" plot a b c d e f g h i j k
expect_error "info: unexpected argument 'resnet8'" "$R" info resnet8
# The shape is --input-shape in bench too (it once took --input).
"$R" bench --arch resnet8 --input-shape 1x28x28 --batch 2 --mode infer --iters 1 --warmup 0 \
    --json >"$T/b.json" 2>"$T/err" && /usr/bin/python3 -c '
import json, sys; j = json.load(open(sys.argv[1])); assert j["input"] == [1, 28, 28], j' "$T/b.json" \
    && ok || bad "bench --input-shape: $(cat "$T/err" "$T/b.json")"
# Every option a verb parses is in its --help (the help is made from the same table).
for opt in --data --data-dir --split --val --subset --tta --delete-blocks --batch --threads --json; do
    "$R" eval --help | grep -q -- "^  $opt " && ok || bad "eval --help does not list $opt"
done

finish cli
