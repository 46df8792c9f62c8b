#!/bin/sh
# Installs the Debian 12 packages resnet.c needs to build, test, draw its plots (PLplot with
# the cairo drivers), export ONNX (protobuf-c and the ONNX schema; python3-onnx checks the
# files), fuzz its parsers (clang's libFuzzer, and LLVM's OpenMP for clang's -fopenmp) and run
# its reference checks. With --mpi also Open MPI (openmpi-bin, libopenmpi-dev), for
# `make MPI=1`: training over several processes and machines (README).
# Safe to run again: it asks apt only for what is missing. Run as root (or with sudo).
set -eu
pkgs="build-essential make pkg-config libcjson-dev zlib1g-dev libcmocka-dev libstb-dev libpng-dev libjpeg-dev
      libplplot-dev plplot-driver-cairo help2man clang libclang-rt-14-dev libomp-dev
      libonnx-dev protobuf-c-compiler libprotobuf-c-dev python3-onnx
      python3 python3-torch python3-torchvision dataset-fashion-mnist"
for a in "$@"; do
    case "$a" in
    --mpi) pkgs="$pkgs openmpi-bin libopenmpi-dev" ;;
    *) echo "install-deps.sh: unknown option $a (only --mpi)" >&2; exit 2 ;;
    esac
done
missing=""
for p in $pkgs; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "installing:$missing"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing
