# Shared by tests/faults/write_faults.sh and tools/kill-resume.sh (sourced, POSIX sh): the
# failwrite shim, a small generated data set, and the checks of what a run folder holds.
# Needs FAULTS_DIR (this folder), B (the build folder) and T (a scratch folder).

PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3

pass=0
fail=0
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*"; }

# The shim, built beside the program when missing or older than its source.
faults_shim() {
    SHIM="$B/failwrite.so"
    if [ ! -f "$SHIM" ] || [ "$FAULTS_DIR/failwrite.c" -nt "$SHIM" ]; then
        ${CC:-cc} -O2 -Wall -shared -fPIC -o "$SHIM" "$FAULTS_DIR/failwrite.c" -ldl || return 1
    fi
    case "$SHIM" in /*) ;; *) SHIM="$PWD/$SHIM" ;; esac
    # A sanitizer build (make test-asan) insists on its runtime coming first among the loaded
    # libraries; the shim must come first to see the calls, and passes them on to ASan's
    # interceptors through dlsym(RTLD_NEXT).
    export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0"
}

# faults_data DIR NTRAIN NTEST: an MNIST-layout IDX data set whose classes can be learned (each
# image a class-dependent pattern plus noise), the same bytes every time.
faults_data() {
    $PY - "$@" <<'PY'
import gzip, os, struct, sys
d, n_train, n_test = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
os.makedirs(d, exist_ok=True)
x = 12345
def rnd():
    global x
    x = (x * 1103515245 + 12345) & 0x7fffffff
    return x >> 16
def write(prefix, n):
    labels = [rnd() % 10 for _ in range(n)]
    pix = bytearray()
    for k in range(n):
        for i in range(28):
            for j in range(28):
                on = (i // 7 + j // 7 * 4) % 10 == labels[k] or (i * 28 + j) % 10 == labels[k]
                pix.append((rnd() & 63) + (120 if on else 0))
    gzip.open("%s/%s-images-idx3-ubyte.gz" % (d, prefix), "wb").write(
        struct.pack(">IIII", 0x803, n, 28, 28) + bytes(pix))
    gzip.open("%s/%s-labels-idx1-ubyte.gz" % (d, prefix), "wb").write(
        struct.pack(">II", 0x801, n) + bytes(labels))
write("train", n_train)
write("t10k", n_test)
PY
}

# faults_whole FILE...: each is a whole safetensors file (header, every tensor's bytes, nothing
# after them; a checkpoint's metadata parses). Prints what is wrong otherwise.
faults_whole() {
    $PY - "$@" <<'PY'
import json, struct, sys
size = {"F32": 4, "I64": 8, "F16": 2, "BF16": 2, "F64": 8, "I32": 4, "U8": 1}
bad = 0
for p in sys.argv[1:]:
    try:
        b = open(p, "rb").read()
        assert len(b) >= 8, "shorter than 8 bytes"
        (n,) = struct.unpack("<Q", b[:8])
        assert 8 + n <= len(b), "the header runs past the end"
        h = json.loads(b[8:8 + n])
        meta = h.pop("__metadata__", {})
        if "checkpoint" in meta:
            json.loads(meta["checkpoint"])
        pos = 0
        for name, t in sorted(h.items(), key=lambda kv: kv[1]["data_offsets"]):
            s, e = t["data_offsets"]
            count = 1
            for d in t["shape"]:
                count *= d
            assert s == pos and e - s == count * size[t["dtype"]], "tensor %s is not where it belongs" % name
            pos = e
        assert 8 + n + pos == len(b), "%d bytes of tensors, the file holds %d" % (pos, len(b) - 8 - n)
    except Exception as e:
        print("%s is not whole: %s" % (p, e))
        bad = 1
sys.exit(bad)
PY
}

# faults_metrics FILE: every line of a metrics.jsonl is a whole JSON object.
faults_metrics() {
    $PY -c 'import json, sys; [json.loads(l) for l in open(sys.argv[1])]' "$1" 2>/dev/null
}

# The metrics without the timings (which differ from run to run).
faults_metrics_untimed() { sed 's/,"time_s".*//' "$1"; }

# faults_temps DIR: the temporary files left in a run folder (none is right).
faults_temps() { find "$1" -maxdepth 1 -name '*.tmp*' 2>/dev/null; }

# faults_calls LOG DIR: the calls a FAILWRITE_TRACE=1 run into DIR made, from its log, one line
# per call: CLASS FUNCTION FILE KIND I N. FILE is the name in the run folder (without .tmp.PID)
# or "(folder)"; KIND "tmp" or "direct" (for the folder: after which file's rename); I the
# call's rank among the calls of its class on FILE (on any file for the folder), N its rank in
# the whole run. Fail or kill the I-th call of CLASS on FILE (FAILWRITE_PATH=DIR/FILE): the
# run's N-th call moves by one where a safetensors header happens to need no padding.
faults_calls() {
    awk -v dir="$2" '$1 == "call" {
        p = $5; t = p == dir ? "(folder)" : p; sub(/.*\//, "", t)
        kind = t ~ /\.tmp(\.[0-9]+)?$/ ? "tmp" : "direct"; sub(/\.tmp(\.[0-9]+)?$/, "", t)
        if ($2 == "rename") renamed = t
        if (t == "(folder)") kind = "after-" renamed
        all[$2]++; i = t == "(folder)" ? all[$2] : ++per[$2, t]
        print $2, $3, t, kind, i, substr($4, 2) }' "$1"
}
