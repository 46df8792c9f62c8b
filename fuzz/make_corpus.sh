#!/bin/sh
# Writes the seed corpora of the fuzz harnesses (fuzz/corpus/NAME/) with the project's own
# tools: `resnet init` and a tiny `resnet train` run for model files and checkpoints, and short
# Python (standard library only) for IDX, CIFAR, hand-made safetensors and truncated copies.
# The network is resnet8-w2 on 1x8x8 inputs with 10 classes, as in fuzz_safetensors.c and
# fuzz_checkpoint.c, so that the seeds stay a few KB. Usage: fuzz/make_corpus.sh [BUILD_DIR]
# (default build; `make all` first). Replaces the seeds it writes; keeps regression inputs
# (crash-*) that are already there.
set -eu
B=${1:-build}
R="$B/resnet"
PY=/usr/bin/python3
C=fuzz/corpus
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
[ -x "$R" ] || { echo "make_corpus: $R missing (make all first)" >&2; exit 1; }
for d in safetensors model checkpoint idx cifar options; do
    mkdir -p "$C/$d"
    find "$C/$d" -type f ! -name 'crash-*' -delete
done

NET="--arch resnet8-w2 --classes 10 --input-shape 1x8x8"
"$R" init $NET --seed 1 --output "$T/init.safetensors" >/dev/null
"$R" init --arch resnet8-w2-s2 --classes 3 --input-shape 2x5x7 --ordering full-preact \
    --shortcut C --stochastic-depth 0.5 --output "$T/init-variant.safetensors" >/dev/null
"$R" init --arch highway8-w2 --classes 2 --input-shape 1x4x4 --output "$T/init-highway.safetensors" >/dev/null

# A tiny MNIST-layout data set (IDX) and one epoch on it: a model with labels and
# normalisation, and a checkpoint (the second one stopped in the middle of an epoch).
$PY - "$T" <<'PY'
import os, struct, sys
t = sys.argv[1]
os.makedirs(t + "/mnist")
def idx(path, dims, body):
    with open(path, "wb") as f:
        f.write(bytes([0, 0, 8, len(dims)]) + b"".join(struct.pack(">I", d) for d in dims) + body)
for split, n in (("train", 8), ("t10k", 4)):
    px = bytes((i * 37 + 11) % 256 for i in range(n * 64))
    idx(f"{t}/mnist/{split}-images-idx3-ubyte", (n, 8, 8), px)
    idx(f"{t}/mnist/{split}-labels-idx1-ubyte", (n,), bytes(i % 10 for i in range(n)))
PY
TRAIN="$NET --data mnist --data-dir $T/mnist --epochs 1 --batch 4 --threads 1 --quiet"
"$R" train $TRAIN --out "$T/run" >/dev/null
"$R" train $TRAIN --epochs 2 --stop-after 3 --out "$T/run-stopped" >/dev/null 2>&1 || true

cp "$T/init.safetensors" "$T/run/model.safetensors" "$T/init-variant.safetensors" \
    "$T/init-highway.safetensors" "$C/model/"
cp "$T/init.safetensors" "$T/run/model.safetensors" "$C/safetensors/"
cp "$T/run/checkpoint.safetensors" "$C/checkpoint/end-of-run.safetensors"
cp "$T/run-stopped/checkpoint.safetensors" "$C/checkpoint/mid-epoch.safetensors"
cp "$T/run/model.safetensors" "$C/checkpoint/not-a-checkpoint.safetensors"

$PY - "$T" "$C" <<'PY'
import gzip, json, os, struct, sys
t, c = sys.argv[1], sys.argv[2]

def st_read(path):
    b = open(path, "rb").read()
    n = struct.unpack("<Q", b[:8])[0]
    return json.loads(b[8:8 + n]), b[8 + n:]

def st_write(path, header, data):
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    open(path, "wb").write(struct.pack("<Q", len(h)) + h + data)

def st_tensors(path, tensors, meta=None):
    """tensors: (name, dtype, shape, raw bytes)"""
    header, data, at = {}, b"", 0
    if meta is not None: header["__metadata__"] = meta
    for name, dtype, shape, raw in tensors:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [at, at + len(raw)]}
        data += raw
        at += len(raw)
    st_write(path, header, data)

def truncated(src, dst_dir, stem, cuts):
    b = open(src, "rb").read()
    for n in cuts:
        open(f"{dst_dir}/{stem}-cut{n}", "wb").write(b[:n])

# safetensors: every dtype, empty and scalar tensors, gaps, odd metadata
f32 = struct.pack("<4f", 1, -2, 0.5, 3)
st_tensors(f"{c}/safetensors/dtypes.safetensors", [
    ("x", "F32", [2, 2], f32), ("i", "I64", [2], struct.pack("<2q", -1, 7)),
    ("h", "F16", [2], b"\x00\x3c\x00\xc0"), ("b", "BF16", [1], b"\x80\x3f"),
    ("u", "U8", [3], b"\x01\x02\x03"), ("d", "F64", [1], struct.pack("<d", 2.5)),
    ("e", "F32", [0, 3], b""), ("s", "F32", [], struct.pack("<f", 9)),
    ("q", "BOOL", [1], b"\x01"), ("w", "I32", [1, 1, 1, 1, 1, 1, 1, 1], b"\x05\x00\x00\x00"),
], {"format": "pt", "labels": "[\"a\",\"b\"]"})
st_tensors(f"{c}/safetensors/one-tensor.safetensors", [("input", "F32", [1, 1, 2, 2], f32)])
st_write(f"{c}/safetensors/gap.safetensors",
         {"a": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}}, bytes(12))
st_write(f"{c}/safetensors/empty.safetensors", {}, b"")
truncated(f"{c}/safetensors/init.safetensors", f"{c}/safetensors", "init", (7, 9, 200))

# model: metadata variants of the trained model (every key the reader knows)
header, data = st_read(f"{t}/run/model.safetensors")
meta = header["__metadata__"]
def variant(name, **kw):
    h = json.loads(json.dumps(header))
    m = h["__metadata__"]
    for k, v in kw.items():
        if v is None: m.pop(k, None)
        else: m[k] = v
    st_write(f"{c}/model/{name}", h, data)
variant("no-metadata-but-arch.safetensors", classes=None, input=None, ordering=None,
        shortcut=None, labels=None, normalize_mean=None, normalize_std=None, format=None)
variant("labels-escaped.safetensors", labels="[\"\\u00e9t\\u00e9\",\"\",\"a,b\",\"3\",\"4\",\"5\",\"6\",\"7\",\"8\",\"9\"]")
variant("stochastic-depth.safetensors", stochastic_depth="0.8", ordering="e", shortcut="B")
h = json.loads(json.dumps(header)); del h["__metadata__"]
st_write(f"{c}/model/torchvision-export.safetensors", h, data)
truncated(f"{t}/run/model.safetensors", f"{c}/model", "model", (100, 1500))

# checkpoint: truncated, and the config JSON alone for the option harness
truncated(f"{t}/run/checkpoint.safetensors", f"{c}/checkpoint", "checkpoint", (2000,))
ck = json.loads(st_read(f"{t}/run/checkpoint.safetensors")[0]["__metadata__"]["checkpoint"])
ck["config"]["data_dir"] = "data/mnist"  # not the temporary folder's name
open(f"{c}/options/train-config.json", "w").write(json.dumps(ck["config"]))

# idx: flags (bit 0 gzip images, bit 1 gzip labels), classes - 1, images length, images, labels
def idx(dims, body):
    return bytes([0, 0, 8, len(dims)]) + b"".join(struct.pack(">I", d) for d in dims) + body
def idx_seed(name, flags, classes, images, labels):
    open(f"{c}/idx/{name}", "wb").write(bytes([flags, classes - 1]) + struct.pack("<H", len(images)) + images + labels)
imgs = idx((3, 4, 5), bytes(range(60)))
labs = idx((3,), bytes([0, 1, 2]))
idx_seed("raw", 0, 10, imgs, labs)
idx_seed("gzip-both", 3, 10, imgs, labs)
idx_seed("gzip-images", 1, 3, imgs, labs)
idx_seed("gzip-file-given-raw", 0, 10, gzip.compress(imgs, mtime=0), gzip.compress(labs, mtime=0))
idx_seed("label-out-of-range", 0, 2, imgs, labs)
idx_seed("extra-bytes", 2, 10, imgs + b"\x00", labs)

# cifar: flags (bit 0 CIFAR-100, bit 1 train, bit 2 names file), names length, names, records
def rec(labels, seed):
    return bytes(labels) + bytes((i * seed + 7) % 256 for i in range(3072))
def cifar_seed(name, flags, records, names=None):
    b = bytes([flags])
    if names is not None: b += struct.pack("<H", len(names)) + names
    open(f"{c}/cifar/{name}", "wb").write(b + records)
cifar_seed("c10-test", 0, rec([3], 5) + rec([9], 11))
cifar_seed("c10-train", 2, rec([0], 3))
cifar_seed("c10-names", 4, rec([1], 13), b"".join(b"n%d\n" % i for i in range(10)))
cifar_seed("c100-test", 1, rec([19, 99], 17) + rec([0, 0], 2))
cifar_seed("c100-names", 5, rec([4, 42], 19), b"".join(b"fine %d \r\n" % i for i in range(100)))
cifar_seed("c10-short-record", 0, rec([3], 5)[:-1])
PY

# options: argv strings separated by NUL bytes
opt() { name=$1; shift; printf '%s\0' "$@" > "$C/options/$name"; }
opt net --arch resnet8-w2 --ordering full-preact --shortcut C --classes 10 --input-shape 1x8x8 \
    --seed 18446744073709551615 --gate-bias -2.5 --stochastic-depth 0.5 --zero-init-last-bn
opt train --data cifar100 --schedule step:0.3,0.6,0.9 --epochs 3 --lr 1e-1 --tta flip,shift
opt values original bn-after-add relu-before-add relu-preact full-preact a b c d e A B C \
    fashion-mnist mnist cifar10 folder cosine constant step none shift,flip
opt bad --classes 0 --input-shape 3x32 --seed -1 --schedule step:0.9,0.1
opt missing-value --arch
opt kinds --flag --text t --int -1000 --long 1099511627776 --number 1e-9 --float -1 --u64 0 \
    --tta flip positional1 positional2 --help
opt kinds-ok --flag --int 5 --number 2 --float 0.5 --u64 3 --tta none a b
echo "fuzz corpus: $(find "$C" -type f | wc -l) files, $(du -sk "$C" | cut -f1) KB"
