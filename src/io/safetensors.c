/* The safetensors format (see safetensors.h): reader with full validation, and an atomic writer.
 * The JSON header is parsed and printed with cJSON; nothing here parses JSON by hand. */
#define _POSIX_C_SOURCE 200809L

#include "io/safetensors.h"

#include "core/atomic_file.h"
#include "core/error.h"
#include "core/json_check.h"

#include <cjson/cJSON.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

/* Tensor data is little-endian in the file and is handed out as raw bytes / memcpy'd floats. */
#if defined(__BYTE_ORDER__) && defined(__ORDER_LITTLE_ENDIAN__)
#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "safetensors.c assumes a little-endian host"
#endif
#else
#error "safetensors.c cannot tell the host byte order (__BYTE_ORDER__ undefined)"
#endif

/* The reference implementation refuses headers above 100 MB; so do we. */
#define ST_MAX_HEADER 100000000ULL
/* Integers in the header are JSON numbers, which cJSON holds as doubles: exact up to 2^53. */
#define ST_MAX_JSON_INT 9007199254740992.0

/* ---- dtypes ----------------------------------------------------------------------------- */

static const struct {
    const char *name;
    size_t size;
} st_dtypes[] = {
    {"BOOL", 1}, {"U8", 1},  {"I8", 1},  {"F8_E4M3", 1}, {"F8_E5M2", 1},
    {"I16", 2},  {"U16", 2}, {"F16", 2}, {"BF16", 2},    {"I32", 4},
    {"U32", 4},  {"F32", 4}, {"F64", 8}, {"I64", 8},     {"U64", 8},
};

/* Size in bytes of one element of `name`, or 0 when unknown. */
static size_t st_dtype_size(const char *name)
{
    for (size_t i = 0; i < sizeof st_dtypes / sizeof st_dtypes[0]; i++)
        if (strcmp(st_dtypes[i].name, name) == 0) return st_dtypes[i].size;
    return 0;
}

/* ---- helpers ---------------------------------------------------------------------------- */

static char *st_strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

/* Strict UTF-8 (no overlong forms, no surrogates, nothing above U+10FFFF). Returns the byte
 * offset of the first invalid sequence, or `len` when all is valid. */
static size_t st_utf8_check(const unsigned char *s, size_t len)
{
    size_t i = 0;
    while (i < len) {
        unsigned c = s[i];
        size_t n;
        unsigned lo = 0x80, hi = 0xBF;
        if (c < 0x80) { i++; continue; }
        if (c >= 0xC2 && c <= 0xDF) n = 1;
        else if (c == 0xE0) { n = 2; lo = 0xA0; }
        else if (c == 0xED) { n = 2; hi = 0x9F; }
        else if (c >= 0xE1 && c <= 0xEF) n = 2;
        else if (c == 0xF0) { n = 3; lo = 0x90; }
        else if (c >= 0xF1 && c <= 0xF3) n = 3;
        else if (c == 0xF4) { n = 3; hi = 0x8F; }
        else return i;
        if (len - i - 1 < n) return i;
        if (s[i + 1] < lo || s[i + 1] > hi) return i;
        for (size_t k = 2; k <= n; k++)
            if (s[i + k] < 0x80 || s[i + k] > 0xBF) return i;
        i += n + 1;
    }
    return len;
}

static int st_utf8_valid(const char *s) { return st_utf8_check((const unsigned char *)s, strlen(s)) == strlen(s); }

/* "[10, 64]" */
static const char *st_shape_str(char *buf, size_t cap, int ndim, const int64_t *shape)
{
    size_t at = 0;
    int n = snprintf(buf, cap, "[");
    at = n > 0 ? (size_t)n : 0;
    for (int i = 0; i < ndim && at < cap; i++) {
        n = snprintf(buf + at, cap - at, "%s%" PRId64, i ? ", " : "", shape[i]);
        if (n < 0) break;
        at += (size_t)n;
    }
    if (at < cap) snprintf(buf + at, cap - at, "]");
    return buf;
}

/* numel of a shape with overflow check; returns 0 on overflow (and sets *ok = 0). */
static size_t st_numel(int ndim, const int64_t *shape, int *ok)
{
    size_t n = 1;
    *ok = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0 || (uint64_t)shape[i] > SIZE_MAX) { *ok = 0; return 0; }
        size_t d = (size_t)shape[i];
        if (d != 0 && n > SIZE_MAX / d) { *ok = 0; return 0; }
        n *= d;
    }
    /* A zero dimension makes the product 0 even if an earlier partial product was huge. */
    return n;
}

/* ---- reader ----------------------------------------------------------------------------- */

struct rn_st_file {
    char *path;
    unsigned char *buf;     /* the whole file */
    size_t size;
    const unsigned char *data; /* start of the data section */
    size_t data_size;
    cJSON *header;          /* kept: entry names and metadata point into it */
    const cJSON *meta;      /* __metadata__ or NULL */
    int count;
    rn_st_entry *entries;   /* in header order */
    rn_st_entry **by_name;  /* sorted by name, for lookup */
};

static int st_cmp_name(const void *a, const void *b)
{
    const rn_st_entry *x = *(rn_st_entry *const *)a, *y = *(rn_st_entry *const *)b;
    return strcmp(x->name, y->name);
}

static int st_cmp_offset(const void *a, const void *b)
{
    const rn_st_entry *x = *(rn_st_entry *const *)a, *y = *(rn_st_entry *const *)b;
    if (x->offset != y->offset) return x->offset < y->offset ? -1 : 1;
    if (x->nbytes != y->nbytes) return x->nbytes < y->nbytes ? -1 : 1;
    return 0;
}

/* Reads a JSON number that must be a non-negative integer representable exactly. */
static int st_json_uint(const cJSON *item, uint64_t *out)
{
    if (!cJSON_IsNumber(item)) return 0;
    double v = item->valuedouble;
    if (!isfinite(v) || v < 0 || v > ST_MAX_JSON_INT || floor(v) != v) return 0;
    *out = (uint64_t)v;
    return 1;
}

static const char *st_json_type(const cJSON *item)
{
    if (cJSON_IsObject(item)) return "an object";
    if (cJSON_IsArray(item)) return "an array";
    if (cJSON_IsString(item)) return "a string";
    if (cJSON_IsNumber(item)) return "a number";
    if (cJSON_IsBool(item)) return "a boolean";
    if (cJSON_IsNull(item)) return "null";
    return "an invalid value";
}

static int st_read_file(rn_st_file *f)
{
    const char *path = f->path;
    FILE *fp = fopen(path, "rb");
    if (!fp) return rn_fail(RN_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fileno(fp), &st) != 0) {
        int e = errno;
        fclose(fp);
        return rn_fail(RN_ERR_IO, "%s: cannot stat: %s", path, strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        fclose(fp);
        return rn_fail(RN_ERR_IO, "%s: not a regular file", path);
    }
    if (st.st_size < 0 || (uint64_t)st.st_size > SIZE_MAX - 1) {
        fclose(fp);
        return rn_fail(RN_ERR_NOMEM, "%s: file too large to load (%lld bytes)", path,
                       (long long)st.st_size);
    }
    size_t size = (size_t)st.st_size;
    /* +1 so that a zero-size malloc never happens; the extra byte is never read. */
    f->buf = malloc(size + 1);
    if (!f->buf) {
        fclose(fp);
        return rn_fail(RN_ERR_NOMEM, "%s: cannot allocate %zu bytes to load the file", path, size);
    }
    size_t got = size ? fread(f->buf, 1, size, fp) : 0;
    if (got != size) {
        int err = ferror(fp);
        fclose(fp);
        return rn_fail(RN_ERR_IO, "%s: short read (%zu of %zu bytes)%s", path, got, size,
                       err ? ": read error" : ": file shrank while reading");
    }
    if (fclose(fp) != 0) return rn_fail(RN_ERR_IO, "%s: cannot close: %s", path, strerror(errno));
    f->size = size;
    return RN_OK;
}

/* Validates one tensor entry `item` (key = name) into *e. */
static int st_parse_entry(const char *path, const cJSON *item, size_t data_size, rn_st_entry *e)
{
    const char *name = item->string;
    if (!cJSON_IsObject(item))
        return rn_fail(RN_ERR_FORMAT, "%s: tensor '%s': entry is %s, expected an object", path,
                       name, st_json_type(item));

    const cJSON *dtype = NULL, *shape = NULL, *offsets = NULL, *field;
    cJSON_ArrayForEach(field, item) {
        const cJSON **slot = NULL;
        if (strcmp(field->string, "dtype") == 0) slot = &dtype;
        else if (strcmp(field->string, "shape") == 0) slot = &shape;
        else if (strcmp(field->string, "data_offsets") == 0) slot = &offsets;
        else continue; /* unknown fields are ignored, as the reference implementation does */
        if (*slot)
            return rn_fail(RN_ERR_FORMAT, "%s: tensor '%s': duplicate field '%s'", path, name,
                           field->string);
        *slot = field;
    }
    if (!dtype) return rn_fail(RN_ERR_FORMAT, "%s: tensor '%s': missing 'dtype'", path, name);
    if (!shape) return rn_fail(RN_ERR_FORMAT, "%s: tensor '%s': missing 'shape'", path, name);
    if (!offsets)
        return rn_fail(RN_ERR_FORMAT, "%s: tensor '%s': missing 'data_offsets'", path, name);

    /* dtype */
    if (!cJSON_IsString(dtype))
        return rn_fail(RN_ERR_FORMAT, "%s: tensor '%s': 'dtype' is %s, expected a string", path,
                       name, st_json_type(dtype));
    size_t esize = st_dtype_size(dtype->valuestring);
    if (esize == 0 || strlen(dtype->valuestring) >= sizeof e->dtype)
        return rn_fail(RN_ERR_FORMAT, "%s: tensor '%s': unknown dtype '%s'", path, name,
                       dtype->valuestring);
    memcpy(e->dtype, dtype->valuestring, strlen(dtype->valuestring) + 1);

    /* shape */
    if (!cJSON_IsArray(shape))
        return rn_fail(RN_ERR_FORMAT, "%s: tensor '%s': 'shape' is %s, expected an array", path,
                       name, st_json_type(shape));
    int ndim = cJSON_GetArraySize(shape);
    if (ndim > RN_ST_MAX_DIMS)
        return rn_fail(RN_ERR_FORMAT, "%s: tensor '%s': shape has %d dimensions, at most %d supported",
                       path, name, ndim, RN_ST_MAX_DIMS);
    e->ndim = 0;
    const cJSON *dim;
    cJSON_ArrayForEach(dim, shape) {
        uint64_t d;
        if (!st_json_uint(dim, &d)) {
            if (cJSON_IsNumber(dim) && dim->valuedouble > ST_MAX_JSON_INT)
                return rn_fail(RN_ERR_FORMAT, "%s: tensor '%s': shape dimension %d (%g) is too large",
                               path, name, e->ndim, dim->valuedouble);
            if (cJSON_IsNumber(dim))
                return rn_fail(RN_ERR_FORMAT,
                               "%s: tensor '%s': shape dimension %d is %g, expected a non-negative integer",
                               path, name, e->ndim, dim->valuedouble);
            return rn_fail(RN_ERR_FORMAT,
                           "%s: tensor '%s': shape dimension %d is %s, expected a non-negative integer",
                           path, name, e->ndim, st_json_type(dim));
        }
        e->shape[e->ndim++] = (int64_t)d;
    }
    char sbuf[256];
    int ok;
    e->numel = st_numel(e->ndim, e->shape, &ok);
    if (!ok || (e->numel != 0 && e->numel > SIZE_MAX / esize))
        return rn_fail(RN_ERR_FORMAT, "%s: tensor '%s': shape %s %s is too large (size overflow)",
                       path, name, e->dtype, st_shape_str(sbuf, sizeof sbuf, e->ndim, e->shape));

    /* data_offsets */
    if (!cJSON_IsArray(offsets) || cJSON_GetArraySize(offsets) != 2)
        return rn_fail(RN_ERR_FORMAT, "%s: tensor '%s': 'data_offsets' must be an array [begin, end]",
                       path, name);
    uint64_t begin, end;
    if (!st_json_uint(cJSON_GetArrayItem(offsets, 0), &begin) ||
        !st_json_uint(cJSON_GetArrayItem(offsets, 1), &end))
        return rn_fail(RN_ERR_FORMAT,
                       "%s: tensor '%s': 'data_offsets' must hold two non-negative integers", path,
                       name);
    if (begin > end)
        return rn_fail(RN_ERR_FORMAT, "%s: tensor '%s': data_offsets [%" PRIu64 ", %" PRIu64
                       "] begin after end", path, name, begin, end);
    if (end > data_size)
        return rn_fail(RN_ERR_FORMAT, "%s: tensor '%s': data_offsets [%" PRIu64 ", %" PRIu64
                       "] past the end of the data section (%zu bytes)", path, name, begin, end,
                       data_size);
    size_t want = e->numel * esize;
    if (end - begin != want)
        return rn_fail(RN_ERR_FORMAT, "%s: tensor '%s': data_offsets [%" PRIu64 ", %" PRIu64
                       "] do not match %s %s (%zu bytes)", path, name, begin, end, e->dtype,
                       st_shape_str(sbuf, sizeof sbuf, e->ndim, e->shape), want);
    e->offset = (size_t)begin;
    e->nbytes = want;
    e->name = item->string;
    return RN_OK;
}

static int st_cmp_key(const void *a, const void *b)
{
    return strcmp((*(const cJSON *const *)a)->string, (*(const cJSON *const *)b)->string);
}

static int st_parse_meta(const char *path, const cJSON *meta)
{
    if (!cJSON_IsObject(meta))
        return rn_fail(RN_ERR_FORMAT, "%s: '__metadata__' is %s, expected an object of strings",
                       path, st_json_type(meta));
    const cJSON *kv;
    size_t n = 0;
    cJSON_ArrayForEach(kv, meta) {
        if (!cJSON_IsString(kv))
            return rn_fail(RN_ERR_FORMAT,
                           "%s: '__metadata__' key '%s' is %s, expected a string", path,
                           kv->string, st_json_type(kv));
        n++;
    }
    if (n < 2) return RN_OK;
    const cJSON **keys = malloc(n * sizeof *keys);
    if (!keys) return rn_fail(RN_ERR_NOMEM, "%s: cannot allocate the metadata check", path);
    n = 0;
    cJSON_ArrayForEach(kv, meta) keys[n++] = kv;
    qsort(keys, n, sizeof *keys, st_cmp_key);
    int rc = RN_OK;
    for (size_t i = 1; i < n && !rc; i++)
        if (strcmp(keys[i - 1]->string, keys[i]->string) == 0)
            rc = rn_fail(RN_ERR_FORMAT, "%s: '__metadata__' key '%s' appears twice", path,
                         keys[i]->string);
    free(keys);
    return rc;
}

static int st_parse(rn_st_file *f)
{
    const char *path = f->path;
    if (f->size < 8)
        return rn_fail(RN_ERR_FORMAT, "%s: file too short (%zu bytes) to be safetensors", path,
                       f->size);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = (hlen << 8) | f->buf[i];
    if (hlen > ST_MAX_HEADER)
        return rn_fail(RN_ERR_FORMAT, "%s: header length %" PRIu64
                       " is absurd (limit %llu bytes); not a safetensors file?", path, hlen,
                       ST_MAX_HEADER);
    if (hlen > f->size - 8)
        return rn_fail(RN_ERR_FORMAT, "%s: header length %" PRIu64
                       " is past the end of the file (%zu bytes)", path, hlen, f->size);
    if (hlen < 2 || f->buf[8] != '{')
        return rn_fail(RN_ERR_FORMAT, "%s: header is not a JSON object (must start with '{')",
                       path);
    const char *text = (const char *)f->buf + 8;
    size_t n = (size_t)hlen;
    size_t bad = st_utf8_check((const unsigned char *)text, n);
    if (bad != n)
        return rn_fail(RN_ERR_FORMAT, "%s: header is not valid UTF-8 (byte %zu of the header)",
                       path, bad);
    if (memchr(text, '\0', n))
        return rn_fail(RN_ERR_FORMAT, "%s: header contains a NUL byte", path);

    /* cJSON wants a NUL-terminated buffer; copy the header. */
    char *copy = malloc(n + 1);
    if (!copy) return rn_fail(RN_ERR_NOMEM, "%s: cannot allocate the header (%zu bytes)", path, n);
    memcpy(copy, text, n);
    copy[n] = '\0';
    const char *end = NULL;
    f->header = cJSON_ParseWithLengthOpts(copy, n + 1, &end, 0);
    size_t stop = end ? (size_t)(end - copy) : 0;
    int trailing = 0;
    if (f->header) {
        for (size_t i = stop; i < n; i++)
            if (copy[i] != ' ' && copy[i] != '\t' && copy[i] != '\n' && copy[i] != '\r') {
                trailing = 1;
                stop = i;
                break;
            }
    }
    const int out_of_memory = !f->header && rn_json_valid(copy);
    free(copy);
    if (out_of_memory)
        return rn_fail(RN_ERR_NOMEM, "%s: out of memory parsing the header (%zu bytes)", path, n);
    if (!f->header)
        return rn_fail(RN_ERR_FORMAT, "%s: header is not valid JSON (error near byte %zu of %zu)",
                       path, stop, n);
    if (trailing)
        return rn_fail(RN_ERR_FORMAT, "%s: header has trailing bytes after the JSON object (byte %zu)",
                       path, stop);
    if (!cJSON_IsObject(f->header))
        return rn_fail(RN_ERR_FORMAT, "%s: header is %s, expected a JSON object", path,
                       st_json_type(f->header));

    f->data = f->buf + 8 + n;
    f->data_size = f->size - 8 - n;

    int count = 0;
    const cJSON *item;
    cJSON_ArrayForEach(item, f->header) {
        if (strcmp(item->string, "__metadata__") == 0) {
            if (f->meta)
                return rn_fail(RN_ERR_FORMAT, "%s: '__metadata__' appears twice", path);
            int rc = st_parse_meta(path, item);
            if (rc) return rc;
            f->meta = item;
        } else {
            if (count == INT32_MAX)
                return rn_fail(RN_ERR_FORMAT, "%s: too many tensors", path);
            count++;
        }
    }
    if (count) {
        f->entries = calloc((size_t)count, sizeof *f->entries);
        f->by_name = calloc((size_t)count, sizeof *f->by_name);
        if (!f->entries || !f->by_name)
            return rn_fail(RN_ERR_NOMEM, "%s: cannot allocate %d tensor entries", path, count);
    }
    cJSON_ArrayForEach(item, f->header) {
        if (strcmp(item->string, "__metadata__") == 0) continue;
        rn_st_entry *e = &f->entries[f->count];
        int rc = st_parse_entry(path, item, f->data_size, e);
        if (rc) return rc;
        f->by_name[f->count] = e;
        f->count++;
    }

    /* duplicate names */
    if (f->count > 1) qsort(f->by_name, (size_t)f->count, sizeof *f->by_name, st_cmp_name);
    for (int i = 1; i < f->count; i++)
        if (strcmp(f->by_name[i - 1]->name, f->by_name[i]->name) == 0)
            return rn_fail(RN_ERR_FORMAT, "%s: tensor '%s' appears twice in the header", path,
                           f->by_name[i]->name);

    /* overlapping data: sort by offset, compare each non-empty range with the furthest end so
     * far. Empty tensors occupy no bytes and cannot overlap anything. */
    if (f->count > 1) {
        rn_st_entry **order = malloc((size_t)f->count * sizeof *order);
        if (!order) return rn_fail(RN_ERR_NOMEM, "%s: cannot allocate the overlap check", path);
        for (int i = 0; i < f->count; i++) order[i] = &f->entries[i];
        qsort(order, (size_t)f->count, sizeof *order, st_cmp_offset);
        const rn_st_entry *furthest = NULL;
        for (int i = 0; i < f->count; i++) {
            const rn_st_entry *e = order[i];
            if (e->nbytes == 0) continue;
            if (furthest && e->offset < furthest->offset + furthest->nbytes) {
                int rc = rn_fail(RN_ERR_FORMAT,
                                 "%s: tensor '%s': data [%zu, %zu] overlaps tensor '%s' [%zu, %zu]",
                                 path, e->name, e->offset, e->offset + e->nbytes, furthest->name,
                                 furthest->offset, furthest->offset + furthest->nbytes);
                free(order);
                return rc;
            }
            if (!furthest || e->offset + e->nbytes > furthest->offset + furthest->nbytes)
                furthest = e;
        }
        free(order);
    }
    return RN_OK;
}

int rn_st_open(rn_st_file **out, const char *path)
{
    if (out) *out = NULL;
    if (!out || !path) return rn_fail(RN_ERR_ARG, "rn_st_open: NULL argument");
    rn_st_file *f = calloc(1, sizeof *f);
    if (!f) return rn_fail(RN_ERR_NOMEM, "%s: cannot allocate the file handle", path);
    f->path = st_strdup(path);
    if (!f->path) {
        free(f);
        return rn_fail(RN_ERR_NOMEM, "%s: cannot allocate the path", path);
    }
    int rc = st_read_file(f);
    if (!rc) rc = st_parse(f);
    if (rc) {
        rn_st_close(f);
        return rc;
    }
    *out = f;
    return RN_OK;
}

void rn_st_close(rn_st_file *f)
{
    if (!f) return;
    cJSON_Delete(f->header);
    free(f->entries);
    free(f->by_name);
    free(f->buf);
    free(f->path);
    free(f);
}

const char *rn_st_path(const rn_st_file *f) { return f ? f->path : NULL; }

int rn_st_count(const rn_st_file *f) { return f ? f->count : 0; }

const rn_st_entry *rn_st_entry_at(const rn_st_file *f, int index)
{
    if (!f || index < 0 || index >= f->count) return NULL;
    return &f->entries[index];
}

const rn_st_entry *rn_st_find(const rn_st_file *f, const char *name)
{
    if (!f || !name || f->count == 0) return NULL;
    rn_st_entry key = {0};
    key.name = (char *)name;
    const rn_st_entry *kp = &key;
    rn_st_entry *const *hit = bsearch(&kp, f->by_name, (size_t)f->count, sizeof *f->by_name,
                                      st_cmp_name);
    return hit ? *hit : NULL;
}

const char *rn_st_meta(const rn_st_file *f, const char *key)
{
    if (!f || !key || !f->meta) return NULL;
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(f->meta, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

const void *rn_st_data(const rn_st_file *f, const rn_st_entry *e)
{
    if (!f || !e) return NULL;
    return f->data + e->offset;
}

static int st_read_typed(const rn_st_file *f, const char *name, void *dst, size_t count,
                         const char *dtype, size_t esize)
{
    if (!f || !name) return rn_fail(RN_ERR_ARG, "rn_st_read_%s: NULL argument", dtype);
    const rn_st_entry *e = rn_st_find(f, name);
    if (!e)
        return rn_fail(RN_ERR_MISMATCH, "%s: tensor '%s' not found (expected %s with %zu elements)",
                       f->path, name, dtype, count);
    char sbuf[256];
    if (strcmp(e->dtype, dtype) != 0 || e->numel != count)
        return rn_fail(RN_ERR_MISMATCH,
                       "%s: tensor '%s': expected %s with %zu elements, found %s %s (%zu elements)",
                       f->path, name, dtype, count, e->dtype,
                       st_shape_str(sbuf, sizeof sbuf, e->ndim, e->shape), e->numel);
    if (count == 0) return RN_OK;
    if (!dst) return rn_fail(RN_ERR_ARG, "%s: tensor '%s': NULL destination", f->path, name);
    memcpy(dst, f->data + e->offset, count * esize);
    return RN_OK;
}

int rn_st_read_f32(const rn_st_file *f, const char *name, float *dst, size_t count)
{
    return st_read_typed(f, name, dst, count, "F32", sizeof(float));
}

int rn_st_read_i64(const rn_st_file *f, const char *name, int64_t *dst, size_t count)
{
    return st_read_typed(f, name, dst, count, "I64", sizeof(int64_t));
}

/* ---- writer ----------------------------------------------------------------------------- */

typedef struct {
    char *name;
    char dtype[8];
    int ndim;
    int64_t shape[RN_ST_MAX_DIMS];
    size_t nbytes;
    void *data;
} st_wtensor;

typedef struct {
    char *key;
    char *value;
} st_wmeta;

struct rn_st_writer {
    st_wtensor *t;
    size_t nt, capt;
    st_wmeta *m;
    size_t nm, capm;
};

int rn_st_writer_create(rn_st_writer **out)
{
    if (!out) return rn_fail(RN_ERR_ARG, "rn_st_writer_create: NULL argument");
    *out = calloc(1, sizeof **out);
    if (!*out) return rn_fail(RN_ERR_NOMEM, "safetensors writer: cannot allocate");
    return RN_OK;
}

void rn_st_writer_free(rn_st_writer *w)
{
    if (!w) return;
    for (size_t i = 0; i < w->nt; i++) {
        free(w->t[i].name);
        free(w->t[i].data);
    }
    for (size_t i = 0; i < w->nm; i++) {
        free(w->m[i].key);
        free(w->m[i].value);
    }
    free(w->t);
    free(w->m);
    free(w);
}

static int st_grow(void **arr, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap) return 1;
    size_t nc = *cap ? *cap * 2 : 16;
    while (nc < need) nc *= 2;
    if (nc > SIZE_MAX / elem) return 0;
    void *p = realloc(*arr, nc * elem);
    if (!p) return 0;
    *arr = p;
    *cap = nc;
    return 1;
}

int rn_st_writer_add(rn_st_writer *w, const char *name, const char *dtype, int ndim,
                     const int64_t *shape, const void *data)
{
    if (!w || !name || !dtype) return rn_fail(RN_ERR_ARG, "rn_st_writer_add: NULL argument");
    if (name[0] == '\0') return rn_fail(RN_ERR_ARG, "safetensors writer: empty tensor name");
    if (strncmp(name, "__", 2) == 0)
        return rn_fail(RN_ERR_ARG, "safetensors writer: tensor '%s': names starting with '__' are reserved",
                       name);
    if (!st_utf8_valid(name))
        return rn_fail(RN_ERR_ARG, "safetensors writer: tensor name is not valid UTF-8");
    size_t esize;
    if (strcmp(dtype, "F32") == 0) esize = 4;
    else if (strcmp(dtype, "I64") == 0) esize = 8;
    else
        return rn_fail(RN_ERR_ARG, "safetensors writer: tensor '%s': dtype '%s' not supported (F32 or I64)",
                       name, dtype);
    if (ndim < 0 || ndim > RN_ST_MAX_DIMS)
        return rn_fail(RN_ERR_ARG, "safetensors writer: tensor '%s': %d dimensions (0..%d allowed)",
                       name, ndim, RN_ST_MAX_DIMS);
    if (ndim > 0 && !shape)
        return rn_fail(RN_ERR_ARG, "safetensors writer: tensor '%s': NULL shape", name);
    for (int i = 0; i < ndim; i++)
        if (shape[i] < 0 || (double)shape[i] > ST_MAX_JSON_INT)
            return rn_fail(RN_ERR_ARG, "safetensors writer: tensor '%s': dimension %d is %" PRId64,
                           name, i, shape[i]);
    int ok;
    size_t numel = st_numel(ndim, shape, &ok);
    if (!ok || (numel && numel > SIZE_MAX / esize))
        return rn_fail(RN_ERR_ARG, "safetensors writer: tensor '%s': shape too large", name);
    size_t nbytes = numel * esize;
    if (nbytes && !data)
        return rn_fail(RN_ERR_ARG, "safetensors writer: tensor '%s': NULL data", name);
    for (size_t i = 0; i < w->nt; i++)
        if (strcmp(w->t[i].name, name) == 0)
            return rn_fail(RN_ERR_ARG, "safetensors writer: tensor '%s' added twice", name);

    if (!st_grow((void **)&w->t, &w->capt, w->nt + 1, sizeof *w->t))
        return rn_fail(RN_ERR_NOMEM, "safetensors writer: tensor '%s': cannot grow the list", name);
    st_wtensor t = {0};
    t.name = st_strdup(name);
    t.data = malloc(nbytes ? nbytes : 1);
    if (!t.name || !t.data) {
        free(t.name);
        free(t.data);
        return rn_fail(RN_ERR_NOMEM, "safetensors writer: tensor '%s': cannot copy %zu bytes",
                       name, nbytes);
    }
    if (nbytes) memcpy(t.data, data, nbytes);
    memcpy(t.dtype, dtype, strlen(dtype) + 1);
    t.ndim = ndim;
    for (int i = 0; i < ndim; i++) t.shape[i] = shape[i];
    t.nbytes = nbytes;
    w->t[w->nt++] = t;
    return RN_OK;
}

int rn_st_writer_meta(rn_st_writer *w, const char *key, const char *value)
{
    if (!w || !key || !value) return rn_fail(RN_ERR_ARG, "rn_st_writer_meta: NULL argument");
    if (!st_utf8_valid(key) || !st_utf8_valid(value))
        return rn_fail(RN_ERR_ARG, "safetensors writer: metadata key or value is not valid UTF-8");
    char *v = st_strdup(value);
    if (!v) return rn_fail(RN_ERR_NOMEM, "safetensors writer: metadata '%s': cannot copy", key);
    for (size_t i = 0; i < w->nm; i++)
        if (strcmp(w->m[i].key, key) == 0) { /* setting a key again replaces its value */
            free(w->m[i].value);
            w->m[i].value = v;
            return RN_OK;
        }
    char *k = st_strdup(key);
    if (!k || !st_grow((void **)&w->m, &w->capm, w->nm + 1, sizeof *w->m)) {
        free(k);
        free(v);
        return rn_fail(RN_ERR_NOMEM, "safetensors writer: metadata '%s': cannot copy", key);
    }
    w->m[w->nm].key = k;
    w->m[w->nm].value = v;
    w->nm++;
    return RN_OK;
}

/* Adds an exact integer (cJSON numbers are doubles; raw text keeps every digit). */
static int st_add_int(cJSON *array, uint64_t v)
{
    char buf[32];
    snprintf(buf, sizeof buf, "%" PRIu64, v);
    cJSON *n = cJSON_CreateRaw(buf);
    if (!n) return 0;
    if (!cJSON_AddItemToArray(array, n)) {
        cJSON_Delete(n);
        return 0;
    }
    return 1;
}

/* The JSON header, unpadded; NULL on allocation failure. */
static char *st_build_header(const rn_st_writer *w)
{
    cJSON *root = cJSON_CreateObject();
    if (!root) return NULL;
    if (w->nm) {
        cJSON *meta = cJSON_AddObjectToObject(root, "__metadata__");
        if (!meta) goto fail;
        for (size_t i = 0; i < w->nm; i++)
            if (!cJSON_AddStringToObject(meta, w->m[i].key, w->m[i].value)) goto fail;
    }
    size_t offset = 0;
    for (size_t i = 0; i < w->nt; i++) {
        const st_wtensor *t = &w->t[i];
        cJSON *o = cJSON_AddObjectToObject(root, t->name);
        if (!o || !cJSON_AddStringToObject(o, "dtype", t->dtype)) goto fail;
        cJSON *shape = cJSON_AddArrayToObject(o, "shape");
        if (!shape) goto fail;
        for (int d = 0; d < t->ndim; d++)
            if (!st_add_int(shape, (uint64_t)t->shape[d])) goto fail;
        cJSON *offs = cJSON_AddArrayToObject(o, "data_offsets");
        if (!offs || !st_add_int(offs, offset) || !st_add_int(offs, offset + t->nbytes)) goto fail;
        offset += t->nbytes;
    }
    char *text = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    return text;
fail:
    cJSON_Delete(root);
    return NULL;
}

static int st_write_all(FILE *fp, const void *p, size_t n)
{
    return n == 0 || fwrite(p, 1, n, fp) == n;
}

int rn_st_writer_save(rn_st_writer *w, const char *path)
{
    if (!w || !path) return rn_fail(RN_ERR_ARG, "rn_st_writer_save: NULL argument");
    size_t total = 0;
    for (size_t i = 0; i < w->nt; i++) {
        if (w->t[i].nbytes > SIZE_MAX - total)
            return rn_fail(RN_ERR_ARG, "%s: total tensor data too large", path);
        total += w->t[i].nbytes;
    }
    if ((double)total > ST_MAX_JSON_INT)
        return rn_fail(RN_ERR_ARG, "%s: total tensor data too large", path);

    char *json = st_build_header(w);
    if (!json) return rn_fail(RN_ERR_NOMEM, "%s: cannot build the JSON header", path);
    size_t jlen = strlen(json);
    /* Pad with spaces so that the data section starts on an 8-byte boundary. */
    size_t hlen = (jlen + 7) / 8 * 8;
    if (hlen > ST_MAX_HEADER) {
        free(json);
        return rn_fail(RN_ERR_ARG, "%s: header of %zu bytes is above the %llu byte limit", path,
                       hlen, ST_MAX_HEADER);
    }
    unsigned char len8[8];
    for (int i = 0; i < 8; i++) len8[i] = (unsigned char)((uint64_t)hlen >> (8 * i));
    static const char spaces[8] = {' ', ' ', ' ', ' ', ' ', ' ', ' ', ' '};

    size_t tlen = strlen(path) + 32;
    char *tmp = malloc(tlen);
    if (!tmp) {
        free(json);
        return rn_fail(RN_ERR_NOMEM, "%s: cannot allocate the temporary name", path);
    }
    snprintf(tmp, tlen, "%s.tmp.%ld", path, (long)getpid());

    int rc = RN_OK;
    FILE *fp = fopen(tmp, "wb");
    if (!fp) {
        rc = rn_fail(RN_ERR_IO, "%s: cannot create temporary file %s: %s", path, tmp,
                     strerror(errno));
        free(tmp);
        free(json);
        return rc;
    }
    if (!st_write_all(fp, len8, 8) || !st_write_all(fp, json, jlen) ||
        !st_write_all(fp, spaces, hlen - jlen)) {
        rc = rn_fail(RN_ERR_IO, "%s: cannot write the header to %s: %s", path, tmp,
                     strerror(errno));
        goto fail;
    }
    for (size_t i = 0; i < w->nt; i++)
        if (!st_write_all(fp, w->t[i].data, w->t[i].nbytes)) {
            rc = rn_fail(RN_ERR_IO, "%s: cannot write tensor '%s' to %s: %s", path,
                         w->t[i].name, tmp, strerror(errno));
            goto fail;
        }
    if (fflush(fp) != 0) {
        rc = rn_fail(RN_ERR_IO, "%s: cannot flush %s: %s", path, tmp, strerror(errno));
        goto fail;
    }
    if (fsync(fileno(fp)) != 0) {
        rc = rn_fail(RN_ERR_IO, "%s: cannot fsync %s: %s", path, tmp, strerror(errno));
        goto fail;
    }
    FILE *closing = fp;
    fp = NULL;
    if (fclose(closing) != 0) {
        rc = rn_fail(RN_ERR_IO, "%s: cannot close %s: %s", path, tmp, strerror(errno));
        goto fail;
    }
    if (rename(tmp, path) != 0) {
        rc = rn_fail(RN_ERR_IO, "%s: cannot rename %s over it: %s", path, tmp, strerror(errno));
        goto fail;
    }
    free(tmp);
    free(json);
    return rn_sync_dir(path);

fail:
    if (fp) fclose(fp); /* already failing; the first error is the one reported */
    remove(tmp);
    free(tmp);
    free(json);
    return rc;
}
