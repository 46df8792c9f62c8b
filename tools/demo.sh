#!/bin/sh
# The quick start's main job in about a minute on 2 idle cores: train the default network briefly
# on Fashion-MNIST, evaluate it, classify a few test images by name, and show one claim of the
# papers with its plot. Everything goes to BUILD/demo. Usage: tools/demo.sh BUILD_DIR
set -eu
B=${1:-build}
D="$B/demo"
FM=/usr/share/datasets/fashion-mnist
mkdir -p "$D"
if [ ! -f "$FM/t10k-images-idx3-ubyte.gz" ]; then
    echo "demo: Fashion-MNIST is not installed ($FM): run sh tools/install-deps.sh" >&2
    exit 1
fi

echo "== resnet train: the default network (resnet8-w32-s2) for 2 epochs on 20,000 images"
"$B/resnet" train --epochs 2 --subset 20000 --out "$D/run" --force
echo
echo "== resnet eval: the trained model on the 10,000 test images"
"$B/resnet" eval --model "$D/run/model.safetensors" | head -2
echo
echo "== resnet predict: the first four test images, written as PNG files"
/usr/bin/python3 - "$FM/t10k-images-idx3-ubyte.gz" "$FM/t10k-labels-idx1-ubyte.gz" "$D" <<'PY'
import gzip, sys
from PIL import Image
images = gzip.open(sys.argv[1]).read()[16:]
labels = gzip.open(sys.argv[2]).read()[8:]
names = ["T-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "boot"]
for i in range(4):
    path = "%s/test%d-%s.png" % (sys.argv[3], i, names[labels[i]])
    Image.frombytes("L", (28, 28), images[784 * i:784 * (i + 1)]).save(path)
PY
"$B/resnet" predict --model "$D/run/model.safetensors" --top 2 "$D"/test*.png
echo
echo "== resnet experiment identity --quick: residual stacks learn y = x, plain stacks do not"
"$B/resnet" experiment identity --quick --out "$D/identity" --quiet | tail -3
echo
echo "files: $D/run (model, checkpoint, metrics, curves.png), $D/identity (summary.md and plots)"
echo "next: build/resnet train  (the full default recipe, about 93% in under 7 minutes)"
