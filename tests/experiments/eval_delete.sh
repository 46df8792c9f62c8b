#!/bin/sh
# resnet eval --delete-blocks: evaluates a freshly initialised resnet8 (nothing is trained) on the
# first test images of Fashion-MNIST with no deletion, with blocks deleted by index and by name
# (the same block either way gives the same numbers), and refuses empty lists, empty entries,
# indices out of range, unknown names and plain blocks that change the shape: nonzero exit and
# one line that names the entry.
# Usage: tests/experiments/eval_delete.sh BUILD_DIR
set -u
. "$(dirname "$0")/../lib.sh"
EVAL="--subset 100 --threads 1"

if ! "$R" init --arch resnet8 --input-shape 1x28x28 --seed 1 --output "$T/m.safetensors" >/dev/null ||
    ! "$R" init --arch plain8 --input-shape 1x28x28 --seed 1 --output "$T/p.safetensors" >/dev/null; then
    echo "eval_delete: resnet init failed"
    exit 1
fi

# evaluates: exit 0 and an accuracy line (with --json: an "accuracy" field); output in $T/NAME.out
evaluates() { # evaluates NAME MODEL [args...]
    name=$1 model=$2
    shift 2
    # shellcheck disable=SC2086
    if "$R" eval --model "$model" $EVAL "$@" >"$T/$name.out" 2>"$T/$name.err" &&
        grep -q -e '^accuracy [0-9.]*%  error [0-9.]*%' -e '"accuracy":' "$T/$name.out"; then
        ok
    else
        bad "eval $* exited nonzero or printed no accuracy: $(head -2 "$T/$name.err")"
    fi
}
# refused: a nonzero exit and exactly one line on stderr that contains WANT
refused() { # refused WANT MODEL [args...]
    want=$1 model=$2
    shift 2
    # shellcheck disable=SC2086
    if "$R" eval --model "$model" $EVAL "$@" >"$T/r.out" 2>"$T/r.err"; then
        bad "eval $* was accepted"
    elif [ "$(wc -l <"$T/r.err")" -ne 1 ] || ! grep -qF -- "$want" "$T/r.err"; then
        bad "eval $*: expected one line naming '$want', got: $(cat "$T/r.err")"
    else
        ok
    fi
}
same_numbers() { # same_numbers A B: the same accuracy line
    if [ "$(sed -n 2p "$T/$1.out")" = "$(sed -n 2p "$T/$2.out")" ]; then ok
    else bad "$1 and $2 differ: $(sed -n 2p "$T/$1.out") / $(sed -n 2p "$T/$2.out")"; fi
}

evaluates none "$T/m.safetensors"
if grep -q 'blocks deleted' "$T/none.out"; then bad "no deletion asked, but the table names one"; else ok; fi
evaluates by_index "$T/m.safetensors" --delete-blocks 1
evaluates by_name "$T/m.safetensors" --delete-blocks layer2.0
same_numbers by_index by_name
if grep -q 'blocks deleted: layer2.0$' "$T/by_name.out"; then ok; else bad "the table does not name the deleted block: $(head -1 "$T/by_name.out")"; fi
evaluates two "$T/m.safetensors" --delete-blocks 0,layer3.0
if grep -q 'blocks deleted: layer1.0,layer3.0$' "$T/two.out"; then ok; else bad "two deletions: $(head -1 "$T/two.out")"; fi
evaluates json "$T/m.safetensors" --delete-blocks 2 --json
if grep -q '"deleted_blocks":.*"layer3.0"' "$T/json.out"; then ok; else bad "--json does not name the deleted block"; fi
evaluates plain_keeps "$T/p.safetensors" --delete-blocks layer1.0

refused "empty list" "$T/m.safetensors" --delete-blocks ''
refused "empty entry" "$T/m.safetensors" --delete-blocks ','
refused "empty entry" "$T/m.safetensors" --delete-blocks '0,'
refused "empty entry" "$T/m.safetensors" --delete-blocks '0,,1'
refused "block 7 out of range" "$T/m.safetensors" --delete-blocks 7
refused "block -1 out of range" "$T/m.safetensors" --delete-blocks 0,-1
refused "'layer9.9'" "$T/m.safetensors" --delete-blocks layer9.9
refused "'2x'" "$T/m.safetensors" --delete-blocks 2x
refused "layer2.0" "$T/p.safetensors" --delete-blocks layer2.0
refused "needs a value" "$T/m.safetensors" --delete-blocks

finish eval_delete
