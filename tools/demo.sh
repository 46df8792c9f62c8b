#!/bin/sh
# The quick start's main job until training lands: a model summary and a forward pass.
set -eu
B=${1:-build}
mkdir -p "$B/demo"
echo "== resnet info: ResNet-20 for Fashion-MNIST-sized input (1x28x28, 10 classes)"
"$B/resnet" info --arch resnet20 --input 1x28x28 --classes 10
echo
echo "== resnet init: a freshly initialised model, saved as safetensors"
"$B/resnet" init --arch resnet20 --input-shape 1x28x28 --classes 10 --seed 1 \
    --output "$B/demo/resnet20.safetensors"
echo
echo "== resnet forward: four random images through it (evaluation mode)"
"$B/resnet" forward --model "$B/demo/resnet20.safetensors" --random-input 4 --seed 1 \
    --output "$B/demo/logits.safetensors"
