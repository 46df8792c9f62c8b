#!/bin/sh
# Where our engine's time goes with 1 and 2 threads: runs `resnet bench` with the OpenMP and
# OpenBLAS thread counts set separately (environment variables, no --threads), and with
# OpenMP's passive wait policy, on a training row and an inference row.
#
#   sh bench/threads.sh [BUILD_DIR] [--quick]
set -u
B=build
quick=0
for a in "$@"; do
    case "$a" in
    --quick) quick=1 ;;
    -h | --help) sed -n '2,6p' "$0"; exit 0 ;;
    -*) echo "threads.sh: unknown option '$a'" >&2; exit 2 ;;
    *) B=$a ;;
    esac
done
R="$B/resnet"
[ -x "$R" ] || { echo "threads.sh: $R not found: run make first" >&2; exit 2; }
if [ "$quick" = 1 ]; then it="--warmup 1 --iters 3 --max-seconds 2"; else it="--warmup 1 --iters 10 --max-seconds 15"; fi
ms() { # ms ENV... -- resnet-bench-args: prints the median ms per batch
    /usr/bin/env "$@" $it --json | /usr/bin/python3 -c \
        'import json,sys; j=json.load(sys.stdin); print("%9.1f ms  (n=%d, OpenMP %d, OpenBLAS %d)" % (j["ms_per_batch"], j["iters"], j["omp_threads"], j["blas_threads"]))'
}
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
for row in "resnet20 train 3x32x32 128" "resnet50 infer 3x224x224 1"; do
    set -- $row
    args="bench --arch $1 --mode $2 --input-shape $3 --batch $4"
    echo "$1 $2 $3 batch $4:"
    printf '  OMP 1, BLAS 1                 '; ms OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 "$R" $args
    printf '  OMP 1, BLAS 2                 '; ms OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=2 "$R" $args
    printf '  OMP 2, BLAS 1                 '; ms OMP_NUM_THREADS=2 OPENBLAS_NUM_THREADS=1 "$R" $args
    printf '  OMP 2, BLAS 2                 '; ms OMP_NUM_THREADS=2 OPENBLAS_NUM_THREADS=2 "$R" $args
    printf '  OMP 2, BLAS 2, passive wait   '; ms OMP_NUM_THREADS=2 OPENBLAS_NUM_THREADS=2 OMP_WAIT_POLICY=passive "$R" $args
done
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
