#!/bin/sh
# The library as a user installs and links it: `make install` into a temporary DESTDIR, then
# examples/classify.c built against the installed copy with pkg-config, shared and static, gives
# the same output as the in-tree build; the shared object exports exactly the functions the
# header declares; its soname carries the major version of include/resnet.h; the man page and
# `make uninstall` do what they say. Usage: tests/install.sh BUILD_DIR
set -u
. "$(dirname "$0")/lib.sh"
export LSAN_OPTIONS="${LSAN_OPTIONS:-suppressions=$(cd "$(dirname "$0")" && pwd)/lsan.supp}:print_suppressions=0"

major=$(awk '/^.define RN_VERSION_MAJOR /{print $3}' include/resnet.h)
version=$major.$(awk '/^.define RN_VERSION_MINOR /{print $3}' include/resnet.h).$(awk '/^.define RN_VERSION_PATCH /{print $3}' include/resnet.h)
D="$T/root"
if make -s install BUILD="$B" DESTDIR="$D" PREFIX=/usr >"$T/log" 2>&1; then ok; else bad "make install: $(tail -5 "$T/log")"; fi
L="$D/usr/lib"
for f in usr/bin/resnet usr/include/resnet.h usr/lib/libresnet.a "usr/lib/libresnet.so.$version" \
         usr/lib/pkgconfig/resnet.pc usr/share/man/man1/resnet.1; do
    [ -f "$D/$f" ] && ok || bad "not installed: /$f"
done
[ "$(readlink "$L/libresnet.so")" = "libresnet.so.$major" ] && [ "$(readlink "$L/libresnet.so.$major")" = "libresnet.so.$version" ] &&
    ok || bad "links: $(ls -l "$L")"
readelf -d "$L/libresnet.so.$version" | grep -q "SONAME.*\[libresnet.so.$major\]" && ok || bad "soname: $(readelf -d "$L/libresnet.so.$version" | grep SONAME)"
grep -q "^Version: $version\$" "$L/pkgconfig/resnet.pc" && ok || bad "resnet.pc version: $(cat "$L/pkgconfig/resnet.pc")"
grep -q '^\.SH' "$D/usr/share/man/man1/resnet.1" && grep -q 'experiment' "$D/usr/share/man/man1/resnet.1" && ok ||
    bad "the man page lacks the --help text"

# exported: exactly the functions the header declares (each must be marked RN_API)
nm -D --defined-only "$L/libresnet.so.$version" | awk '{print $3}' | grep -v '^_' | sort >"$T/exported"
grep -oE '^[A-Za-z_][^;(]*\brn_[a-z0-9_]+\(' include/resnet.h | grep -oE 'rn_[a-z0-9_]+\($' | tr -d '(' | sort >"$T/declared"
if cmp -s "$T/exported" "$T/declared" && [ -s "$T/declared" ]; then ok
else bad "exported but not declared: $(comm -23 "$T/exported" "$T/declared" | tr '\n' ' '); declared but not exported: $(comm -13 "$T/exported" "$T/declared" | tr '\n' ' ')"; fi

# a user's program against the installed copy (classify.c calls exp() itself: -lm); a
# sanitizer build's library needs its runtime
san=""
nm "$B/libresnet.a" 2>/dev/null | grep -q __asan_init && san="-fsanitize=address,undefined"
export PKG_CONFIG_SYSROOT_DIR="$D" PKG_CONFIG_PATH="$L/pkgconfig"
cflags=$(pkg-config --cflags resnet) && libs=$(pkg-config --libs resnet) && slibs=$(pkg-config --static --libs resnet) && ok ||
    bad "pkg-config cannot read resnet.pc"
case "$cflags" in *"$D/usr/include"*) ok ;; *) bad "--cflags: $cflags" ;; esac
# shellcheck disable=SC2086
cc $san $cflags examples/classify.c -o "$T/classify-shared" $libs -lm 2>"$T/cc" && ok || bad "shared link: $(cat "$T/cc")"
readelf -d "$T/classify-shared" 2>/dev/null | grep -q "NEEDED.*libresnet.so.$major" && ok || bad "not linked to libresnet.so.$major"
# static: the same flags with libresnet.a itself, so nothing of it is left to the loader
# shellcheck disable=SC2086
cc $san $cflags examples/classify.c -o "$T/classify-static" $(echo "$slibs" | sed 's/-lresnet/-l:libresnet.a/') 2>"$T/cc" &&
    ok || bad "static link ($slibs): $(cat "$T/cc")"
readelf -d "$T/classify-static" 2>/dev/null | grep -q 'NEEDED.*libresnet' && bad "the static build needs libresnet.so" || ok

# the same answers as the in-tree example: a model and an input made here
"$B/resnet" init --arch resnet8 --seed 4 --classes 3 --input-shape 1x12x12 --output "$T/model.safetensors" >/dev/null &&
    ok || bad "init"
"$PY" - "$T/input.safetensors" <<'PY'
import json, struct, sys
vals = [((i * 37) % 101) / 50.0 - 1.0 for i in range(2 * 1 * 12 * 12)]
head = json.dumps({"input": {"dtype": "F32", "shape": [2, 1, 12, 12], "data_offsets": [0, 4 * len(vals)]}}).encode()
head += b" " * (-len(head) % 8)
open(sys.argv[1], "wb").write(struct.pack("<Q", len(head)) + head + struct.pack("<%df" % len(vals), *vals))
PY
"$B/examples/classify" "$T/model.safetensors" "$T/input.safetensors" >"$T/want" 2>&1 && grep -q '^image' "$T/want" &&
    ok || bad "in-tree classify: $(cat "$T/want")"
LD_LIBRARY_PATH="$L" "$T/classify-shared" "$T/model.safetensors" "$T/input.safetensors" >"$T/got-shared" 2>&1
cmp -s "$T/want" "$T/got-shared" && ok || bad "shared build printed: $(cat "$T/got-shared")"
"$T/classify-static" "$T/model.safetensors" "$T/input.safetensors" >"$T/got-static" 2>&1
cmp -s "$T/want" "$T/got-static" && ok || bad "static build printed: $(cat "$T/got-static")"

if make -s uninstall BUILD="$B" DESTDIR="$D" PREFIX=/usr >"$T/log" 2>&1 && [ -z "$(find "$D" -type f -o -type l)" ]; then ok
else bad "uninstall left: $(find "$D" -type f -o -type l | tr '\n' ' ')"; fi

finish install
