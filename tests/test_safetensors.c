/* Tests of the safetensors reader and writer (src/io/safetensors.c).
 * Files are crafted byte by byte in a temporary directory; the writer's output is checked by
 * parsing it back independently with cJSON, and the reader against a file written by hand
 * exactly as the published format describes. */
#define _POSIX_C_SOURCE 200809L

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "resnet.h"
#include "support/tmpdir.h"
#include "io/safetensors.h"
#include "train/trainer.h"

/* ---- helpers ---------------------------------------------------------------------------- */

static void tpath(char *buf, size_t cap, const char *name)
{
    snprintf(buf, cap, "%s/%s", rn_test_dir(), name);
}

static void put_le64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) p[i] = (unsigned char)(v >> (8 * i));
}

static uint64_t get_le64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}

/* Writes: 8-byte LE `declared` header length, the header bytes, then `data_n` bytes of data
 * (zeros when data is NULL). */
static void write_raw(const char *path, uint64_t declared, const char *header, size_t header_n,
                      const void *data, size_t data_n)
{
    size_t n = 8 + header_n + data_n;
    unsigned char *buf = calloc(1, n);
    assert_non_null(buf);
    put_le64(buf, declared);
    memcpy(buf + 8, header, header_n);
    if (data) memcpy(buf + 8 + header_n, data, data_n);
    rn_test_write_file(path, buf, n);
    free(buf);
}

/* A well-formed container around `json`: padded with spaces to a multiple of `align` bytes. */
static void write_st(const char *path, const char *json, size_t align, const void *data,
                     size_t data_n)
{
    size_t j = strlen(json);
    size_t h = (j + align - 1) / align * align;
    char *hdr = malloc(h);
    assert_non_null(hdr);
    memcpy(hdr, json, j);
    memset(hdr + j, ' ', h - j);
    write_raw(path, h, hdr, h, data, data_n);
    free(hdr);
}

static void expect_contains(const char *msg, const char *needle)
{
    if (needle && !strstr(msg, needle)) fail_msg("message \"%s\" lacks \"%s\"", msg, needle);
}

/* rn_st_open(path) must fail with `status`, a NULL handle, and a message naming the path
 * and containing the needles. */
static void expect_open_fails(const char *path, int status, const char *n1, const char *n2)
{
    rn_st_file *f = (rn_st_file *)&f; /* poison: must be reset to NULL */
    int rc = rn_st_open(&f, path);
    if (rc != status)
        fail_msg("%s: status %d, expected %d (message \"%s\")", path, rc, status, rn_last_error());
    assert_null(f);
    const char *msg = rn_last_error();
    expect_contains(msg, path);
    expect_contains(msg, n1);
    expect_contains(msg, n2);
}

static int dir_has_tmp(void)
{
    DIR *d = opendir(rn_test_dir());
    assert_non_null(d);
    int found = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL)
        if (strstr(de->d_name, ".tmp.")) found = 1;
    closedir(d);
    return found;
}

/* ---- round trip ------------------------------------------------------------------------- */

typedef struct {
    const char *name;
    const char *dtype;
    int ndim;
    int64_t shape[RN_ST_MAX_DIMS];
} tensor_spec;

static const tensor_spec rt_specs[] = {
    {"scalar", "F32", 0, {0}},
    {"vec", "F32", 1, {5}},
    {"mat", "F32", 2, {2, 3}},
    {"empty3", "F32", 3, {2, 0, 4}},
    {"conv1.weight", "F32", 4, {2, 3, 4, 5}},
    {"steps", "I64", 0, {0}},
    {"idx", "I64", 1, {3}},
    {"none", "I64", 1, {0}},
    {"cube", "I64", 3, {2, 2, 2}},
    {"layer2.0.downsample.0.weight", "I64", 4, {1, 2, 1, 3}},
    {"odd \"quoted\" \\ name/\xc3\xa9\t", "F32", 1, {2}}, /* escaped in the JSON header */
};
#define RT_N (sizeof rt_specs / sizeof rt_specs[0])

static size_t spec_numel(const tensor_spec *s)
{
    size_t n = 1;
    for (int i = 0; i < s->ndim; i++) n *= (size_t)s->shape[i];
    return n;
}

/* Deterministic test values; i64 ones include negatives and values beyond 2^53. */
static void fill(const tensor_spec *s, int k, void *out)
{
    size_t n = spec_numel(s);
    for (size_t i = 0; i < n; i++) {
        if (strcmp(s->dtype, "F32") == 0)
            ((float *)out)[i] = (float)k * 100.0f + (float)i * 0.25f - 7.5f;
        else
            ((int64_t *)out)[i] = ((int64_t)(i % 2 ? -1 : 1) * (INT64_C(1) << 60)) + k * 1000 + (int64_t)i;
    }
}

static rn_st_writer *build_rt_writer(void)
{
    rn_st_writer *w = NULL;
    assert_int_equal(rn_st_writer_create(&w), RN_OK);
    for (size_t k = 0; k < RT_N; k++) {
        const tensor_spec *s = &rt_specs[k];
        int64_t buf[128];
        assert_true(spec_numel(s) <= 128);
        fill(s, (int)k, buf);
        assert_int_equal(rn_st_writer_add(w, s->name, s->dtype, s->ndim, s->shape, buf), RN_OK);
        /* data is copied at add: clobbering our buffer must not matter */
        memset(buf, 0xAB, sizeof buf);
    }
    assert_int_equal(rn_st_writer_meta(w, "arch", "resnet20"), RN_OK);
    assert_int_equal(rn_st_writer_meta(w, "note", "quotes \" backslash \\ and UTF-8: \xc3\xa9\xe2\x86\x92"), RN_OK);
    assert_int_equal(rn_st_writer_meta(w, "classes", "9"), RN_OK);
    assert_int_equal(rn_st_writer_meta(w, "classes", "10"), RN_OK); /* replaces */
    return w;
}

static void test_round_trip(void **state)
{
    (void)state;
    char path[256];
    tpath(path, sizeof path, "rt.safetensors");
    rn_st_writer *w = build_rt_writer();
    assert_int_equal(rn_st_writer_save(w, path), RN_OK);
    rn_st_writer_free(w);
    assert_false(dir_has_tmp());

    rn_st_file *f = NULL;
    assert_int_equal(rn_st_open(&f, path), RN_OK);
    assert_string_equal(rn_st_path(f), path);
    assert_int_equal(rn_st_count(f), (int)RT_N);
    assert_null(rn_st_entry_at(f, -1));
    assert_null(rn_st_entry_at(f, (int)RT_N));
    for (size_t k = 0; k < RT_N; k++) {
        const tensor_spec *s = &rt_specs[k];
        const rn_st_entry *e = rn_st_entry_at(f, (int)k);
        assert_non_null(e);
        assert_string_equal(e->name, s->name); /* order added */
        assert_ptr_equal(rn_st_find(f, s->name), e);
        assert_string_equal(e->dtype, s->dtype);
        assert_int_equal(e->ndim, s->ndim);
        for (int d = 0; d < s->ndim; d++) assert_int_equal(e->shape[d], s->shape[d]);
        size_t n = spec_numel(s);
        assert_int_equal(e->numel, n);
        assert_int_equal(e->nbytes, n * (strcmp(s->dtype, "F32") == 0 ? 4 : 8));

        int64_t want[128], got[128];
        fill(s, (int)k, want);
        memset(got, 0, sizeof got);
        if (strcmp(s->dtype, "F32") == 0) {
            assert_int_equal(rn_st_read_f32(f, s->name, (float *)got, n), RN_OK);
            for (size_t i = 0; i < n; i++)
                assert_true(((float *)got)[i] == ((float *)want)[i]);
        } else {
            assert_int_equal(rn_st_read_i64(f, s->name, got, n), RN_OK);
            for (size_t i = 0; i < n; i++) assert_true(got[i] == want[i]);
        }
        if (n) assert_memory_equal(rn_st_data(f, e), want, e->nbytes);
    }
    assert_null(rn_st_find(f, "absent"));
    assert_string_equal(rn_st_meta(f, "arch"), "resnet20");
    assert_string_equal(rn_st_meta(f, "classes"), "10");
    assert_string_equal(rn_st_meta(f, "note"), "quotes \" backslash \\ and UTF-8: \xc3\xa9\xe2\x86\x92");
    assert_null(rn_st_meta(f, "absent"));
    rn_st_close(f);
    rn_st_close(NULL);
}

/* The writer's bytes, parsed independently: LE length, space padding to 8, cJSON-parsable
 * header, __metadata__, contiguous offsets in the order added, data bytes. */
static void test_writer_bytes(void **state)
{
    (void)state;
    char path[256];
    tpath(path, sizeof path, "bytes.safetensors");
    rn_st_writer *w = build_rt_writer();
    assert_int_equal(rn_st_writer_save(w, path), RN_OK);
    rn_st_writer_free(w);

    size_t n;
    unsigned char *buf = rn_test_read_file(path, &n);
    assert_true(n >= 8);
    uint64_t hlen = get_le64(buf);
    assert_int_equal(hlen % 8, 0);
    assert_true(hlen <= n - 8);
    const char *hdr = (const char *)buf + 8;
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(hdr, (size_t)hlen, &end, 0);
    assert_non_null(root);
    size_t jlen = (size_t)(end - hdr);
    assert_true(hlen - jlen < 8); /* minimal padding */
    for (size_t i = jlen; i < hlen; i++) assert_int_equal(hdr[i], ' ');
    assert_int_equal(hdr[0], '{');
    assert_int_equal(hdr[jlen - 1], '}');

    cJSON *meta = cJSON_GetObjectItemCaseSensitive(root, "__metadata__");
    assert_true(cJSON_IsObject(meta));
    assert_int_equal(cJSON_GetArraySize(meta), 3);
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(meta, "arch")->valuestring, "resnet20");
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(meta, "classes")->valuestring, "10");

    const unsigned char *data = buf + 8 + hlen;
    size_t data_n = n - 8 - (size_t)hlen;
    size_t k = 0;
    double expect_begin = 0;
    cJSON *item;
    cJSON_ArrayForEach(item, root) {
        if (strcmp(item->string, "__metadata__") == 0) continue;
        assert_true(k < RT_N);
        const tensor_spec *s = &rt_specs[k];
        assert_string_equal(item->string, s->name);
        assert_string_equal(cJSON_GetObjectItemCaseSensitive(item, "dtype")->valuestring, s->dtype);
        cJSON *shape = cJSON_GetObjectItemCaseSensitive(item, "shape");
        assert_true(cJSON_IsArray(shape));
        assert_int_equal(cJSON_GetArraySize(shape), s->ndim);
        for (int d = 0; d < s->ndim; d++)
            assert_true(cJSON_GetArrayItem(shape, d)->valuedouble == (double)s->shape[d]);
        cJSON *offs = cJSON_GetObjectItemCaseSensitive(item, "data_offsets");
        assert_int_equal(cJSON_GetArraySize(offs), 2);
        double b = cJSON_GetArrayItem(offs, 0)->valuedouble;
        double e = cJSON_GetArrayItem(offs, 1)->valuedouble;
        assert_true(b == expect_begin); /* contiguous, in order added */
        size_t nbytes = spec_numel(s) * (strcmp(s->dtype, "F32") == 0 ? 4 : 8);
        assert_true(e - b == (double)nbytes);
        int64_t want[128];
        fill(s, (int)k, want);
        if (nbytes) assert_memory_equal(data + (size_t)b, want, nbytes);
        expect_begin = e;
        k++;
    }
    assert_int_equal(k, RT_N);
    assert_true(expect_begin == (double)data_n); /* no gap, no trailing bytes */
    cJSON_Delete(root);
    free(buf);

    /* no metadata set: no __metadata__ key; an empty writer writes "{}" padded to 8 */
    assert_int_equal(rn_st_writer_create(&w), RN_OK);
    float one = 1.0f;
    assert_int_equal(rn_st_writer_add(w, "x", "F32", 0, NULL, &one), RN_OK);
    assert_int_equal(rn_st_writer_save(w, path), RN_OK);
    rn_st_writer_free(w);
    buf = rn_test_read_file(path, &n);
    hlen = get_le64(buf);
    assert_int_equal(hlen % 8, 0);
    root = cJSON_ParseWithLength((const char *)buf + 8, (size_t)hlen);
    assert_non_null(root);
    assert_null(cJSON_GetObjectItemCaseSensitive(root, "__metadata__"));
    assert_int_equal(cJSON_GetArraySize(root), 1);
    assert_int_equal(n, 8 + hlen + 4);
    cJSON_Delete(root);
    free(buf);

    assert_int_equal(rn_st_writer_create(&w), RN_OK);
    assert_int_equal(rn_st_writer_save(w, path), RN_OK);
    rn_st_writer_free(w);
    buf = rn_test_read_file(path, &n);
    assert_int_equal(n, 16);
    assert_int_equal(get_le64(buf), 8);
    assert_memory_equal(buf + 8, "{}      ", 8);
    free(buf);
    rn_st_file *f = NULL;
    assert_int_equal(rn_st_open(&f, path), RN_OK);
    assert_int_equal(rn_st_count(f), 0);
    assert_null(rn_st_find(f, "x"));
    assert_null(rn_st_meta(f, "arch"));
    rn_st_close(f);
}

/* ---- a file written by hand from the published format description ----------------------- */

static const unsigned char spec_data[40] = {
    /* weight F32 [2, 2] = 1.0, -2.0, 0.5, 3.25, little-endian IEEE 754 */
    0x00, 0x00, 0x80, 0x3F, 0x00, 0x00, 0x00, 0xC0, 0x00, 0x00, 0x00, 0x3F, 0x00, 0x00, 0x50, 0x40,
    /* index I64 [3] = 1, -1, 2^40 */
    0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00,
};

static void check_spec_file(const char *path)
{
    rn_st_file *f = NULL;
    assert_int_equal(rn_st_open(&f, path), RN_OK);
    assert_int_equal(rn_st_count(f), 2);
    assert_string_equal(rn_st_meta(f, "format"), "pt");
    const rn_st_entry *e = rn_st_find(f, "weight");
    assert_non_null(e);
    assert_string_equal(e->dtype, "F32");
    assert_int_equal(e->ndim, 2);
    assert_int_equal(e->offset, 0);
    float wv[4];
    assert_int_equal(rn_st_read_f32(f, "weight", wv, 4), RN_OK);
    assert_true(wv[0] == 1.0f && wv[1] == -2.0f && wv[2] == 0.5f && wv[3] == 3.25f);
    int64_t iv[3];
    assert_int_equal(rn_st_read_i64(f, "index", iv, 3), RN_OK);
    assert_true(iv[0] == 1 && iv[1] == -1 && iv[2] == (INT64_C(1) << 40));
    assert_memory_equal(rn_st_data(f, rn_st_find(f, "index")), spec_data + 16, 24);
    rn_st_close(f);
}

static void test_spec_file(void **state)
{
    (void)state;
    const char *json =
        "{\"__metadata__\":{\"format\":\"pt\"},"
        "\"weight\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16]},"
        "\"index\":{\"dtype\":\"I64\",\"shape\":[3],\"data_offsets\":[16,40]}}";
    char path[256];
    /* as the reference implementation writes it: spaces up to a multiple of 8 */
    tpath(path, sizeof path, "spec.safetensors");
    write_st(path, json, 8, spec_data, sizeof spec_data);
    check_spec_file(path);
    /* unpadded, odd header length: the data section is unaligned in memory */
    char odd[512];
    snprintf(odd, sizeof odd, "%s%s", json, strlen(json) % 8 ? "" : " ");
    assert_true(strlen(odd) % 8 != 0);
    tpath(path, sizeof path, "spec_unaligned.safetensors");
    write_st(path, odd, 1, spec_data, sizeof spec_data);
    check_spec_file(path);
    /* pretty-printed JSON (newlines, indentation) and an unknown extra field are fine */
    const char *pretty =
        "{\n  \"weight\": {\"dtype\": \"F32\", \"shape\": [2, 2], \"data_offsets\": [0, 16], \"extra\": 1},\n"
        "  \"index\": {\"data_offsets\": [16, 40], \"shape\": [3], \"dtype\": \"I64\"},\n"
        "  \"__metadata__\": {\"format\": \"pt\"}\n}\n";
    tpath(path, sizeof path, "spec_pretty.safetensors");
    write_st(path, pretty, 8, spec_data, sizeof spec_data);
    check_spec_file(path);
}

/* Every standard dtype is accepted with its element size; only F32/I64 convert. */
static void test_all_dtypes(void **state)
{
    (void)state;
    static const struct {
        const char *name;
        size_t size;
    } dt[] = {{"BOOL", 1}, {"U8", 1},  {"I8", 1},  {"I16", 2}, {"U16", 2}, {"F16", 2}, {"BF16", 2},
              {"I32", 4},  {"U32", 4}, {"F32", 4}, {"F64", 8}, {"I64", 8}, {"U64", 8}};
    const size_t nd = sizeof dt / sizeof dt[0];
    char json[4096];
    size_t at = 0, off = 0;
    at += (size_t)snprintf(json + at, sizeof json - at, "{");
    for (size_t i = 0; i < nd; i++) {
        size_t nb = 3 * dt[i].size;
        at += (size_t)snprintf(json + at, sizeof json - at,
                               "%s\"t_%s\":{\"dtype\":\"%s\",\"shape\":[3],\"data_offsets\":[%zu,%zu]}",
                               i ? "," : "", dt[i].name, dt[i].name, off, off + nb);
        off += nb;
    }
    snprintf(json + at, sizeof json - at, "}");
    char path[256];
    tpath(path, sizeof path, "dtypes.safetensors");
    write_st(path, json, 8, NULL, off);
    rn_st_file *f = NULL;
    assert_int_equal(rn_st_open(&f, path), RN_OK);
    assert_int_equal(rn_st_count(f), (int)nd);
    for (size_t i = 0; i < nd; i++) {
        const rn_st_entry *e = rn_st_entry_at(f, (int)i);
        assert_string_equal(e->dtype, dt[i].name);
        assert_int_equal(e->nbytes, 3 * dt[i].size);
        assert_int_equal(e->numel, 3);
    }
    float fv[3];
    assert_int_equal(rn_st_read_f32(f, "t_F16", fv, 3), RN_ERR_MISMATCH);
    expect_contains(rn_last_error(), "'t_F16'");
    expect_contains(rn_last_error(), "F16");
    assert_int_equal(rn_st_read_f32(f, "t_F32", fv, 3), RN_OK);
    rn_st_close(f);
}

/* ---- malformed files -------------------------------------------------------------------- */

typedef struct {
    const char *file;
    const char *json;
    size_t data_n;
    const char *n1, *n2; /* must appear in the message (besides the path) */
} bad_case;

#define E4(off) "{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":" off "}"

static const bad_case bad_cases[] = {
    {"not_object", "[1, 2]", 0, "JSON object", NULL},
    {"scalar_header", "  {}", 0, "JSON object", NULL},
    {"bad_json", "{\"w\": {\"dtype\": \"F32\",", 0, "not valid JSON", NULL},
    {"bad_json2", "{\"w\" 1}", 0, "not valid JSON", NULL},
    {"trailing", "{} x", 0, "trailing", NULL},
    {"two_objects", "{}{}", 0, "trailing", NULL},
    {"bad_utf8", "{\"w\xff\":" E4("[0,4]") "}", 4, "UTF-8", NULL},
    {"overlong_utf8", "{\"w\xc0\xaf\":" E4("[0,4]") "}", 4, "UTF-8", NULL},
    {"surrogate_utf8", "{\"w\xed\xa0\x80\":" E4("[0,4]") "}", 4, "UTF-8", NULL},
    {"entry_number", "{\"w\": 5}", 0, "'w'", "object"},
    {"entry_array", "{\"w\": [1]}", 0, "'w'", "object"},
    {"missing_dtype", "{\"w\":{\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "'w'", "'dtype'"},
    {"missing_shape", "{\"w\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", 4, "'w'", "'shape'"},
    {"missing_offsets", "{\"w\":{\"dtype\":\"F32\",\"shape\":[1]}}", 4, "'w'", "'data_offsets'"},
    {"dtype_number", "{\"w\":{\"dtype\":4,\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "'w'", "'dtype'"},
    {"dtype_dup", "{\"w\":{\"dtype\":\"F32\",\"dtype\":\"I64\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "'w'", "duplicate field 'dtype'"},
    {"shape_string", "{\"w\":{\"dtype\":\"F32\",\"shape\":\"1\",\"data_offsets\":[0,4]}}", 4, "'w'", "'shape'"},
    {"shape_object", "{\"w\":{\"dtype\":\"F32\",\"shape\":{},\"data_offsets\":[0,4]}}", 4, "'w'", "'shape'"},
    {"shape_negative", "{\"w\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", 4, "'w'", "non-negative integer"},
    {"shape_fraction", "{\"w\":{\"dtype\":\"F32\",\"shape\":[1.5],\"data_offsets\":[0,4]}}", 4, "'w'", "1.5"},
    {"shape_dim_string", "{\"w\":{\"dtype\":\"F32\",\"shape\":[\"1\"],\"data_offsets\":[0,4]}}", 4, "'w'", "non-negative integer"},
    {"shape_dim_null", "{\"w\":{\"dtype\":\"F32\",\"shape\":[null],\"data_offsets\":[0,4]}}", 4, "'w'", "non-negative integer"},
    {"shape_huge_dim", "{\"w\":{\"dtype\":\"F32\",\"shape\":[1e300],\"data_offsets\":[0,4]}}", 4, "'w'", "too large"},
    {"too_many_dims", "{\"w\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,4]}}", 4, "'w'", "9 dimensions"},
    {"numel_overflow", "{\"w\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,4294967296],\"data_offsets\":[0,4]}}", 4, "'w'", "overflow"},
    {"bytes_overflow", "{\"w\":{\"dtype\":\"F64\",\"shape\":[4611686018427387904],\"data_offsets\":[0,4]}}", 4, "'w'", "too large"},
    {"bytes_overflow2", "{\"w\":{\"dtype\":\"F64\",\"shape\":[4294967296,1073741824],\"data_offsets\":[0,4]}}", 4, "'w'", "overflow"},
    {"unknown_dtype", "{\"w\":{\"dtype\":\"F33\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "'w'", "unknown dtype 'F33'"},
    {"long_dtype", "{\"w\":{\"dtype\":\"FLOAT32_LONG_NAME\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "'w'", "unknown dtype"},
    {"lowercase_dtype", "{\"w\":{\"dtype\":\"f32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "'w'", "unknown dtype"},
    {"offsets_one", "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4]}}", 4, "'w'", "data_offsets"},
    {"offsets_three", "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4,8]}}", 8, "'w'", "data_offsets"},
    {"offsets_strings", "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[\"0\",\"4\"]}}", 4, "'w'", "data_offsets"},
    {"offsets_negative", "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[-4,0]}}", 4, "'w'", "data_offsets"},
    {"offsets_object", "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":{\"a\":0}}}", 4, "'w'", "data_offsets"},
    {"begin_after_end", "{\"w\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[8,4]}}", 8, "'w'", "begin after end"},
    {"end_past_data", "{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 4, "'w'", "past the end of the data section (4 bytes)"},
    {"nbytes_mismatch", "{\"fc.weight\":{\"dtype\":\"F32\",\"shape\":[10,64],\"data_offsets\":[0,100]}}", 100,
     "tensor 'fc.weight': data_offsets [0, 100] do not match F32 [10, 64] (2560 bytes)", NULL},
    {"nbytes_mismatch_i64", "{\"a\":" E4("[0,4]") ",\"idx\":{\"dtype\":\"I64\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12,
     "'idx'", "do not match I64 [2] (16 bytes)"},
    {"overlap", "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},"
                "\"b\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[8,24]}}", 24, "'b'", "overlaps tensor 'a'"},
    {"overlap_same", "{\"a\":" E4("[0,4]") ",\"b\":" E4("[0,4]") "}", 4, "overlaps", NULL},
    {"overlap_nested", "{\"big\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},"
                       "\"c\":" E4("[12,16]") ",\"d\":" E4("[4,8]") "}", 16, "overlaps tensor 'big'", NULL},
    {"dup_names", "{\"w\":" E4("[0,4]") ",\"w\":" E4("[4,8]") "}", 8, "'w'", "twice"},
    {"meta_string", "{\"__metadata__\":\"x\"}", 0, "__metadata__", "object"},
    {"meta_null", "{\"__metadata__\":null}", 0, "__metadata__", "object"},
    {"meta_number_value", "{\"__metadata__\":{\"ok\":\"1\",\"epochs\":3}}", 0, "__metadata__", "'epochs'"},
    {"meta_object_value", "{\"__metadata__\":{\"nested\":{}}}", 0, "__metadata__", "'nested'"},
    {"meta_dup_key", "{\"__metadata__\":{\"k\":\"1\",\"k\":\"2\"}}", 0, "'k'", "twice"},
    {"meta_twice", "{\"__metadata__\":{},\"__metadata__\":{}}", 0, "__metadata__", "twice"},
};

static void test_malformed_headers(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof bad_cases / sizeof bad_cases[0]; i++) {
        const bad_case *c = &bad_cases[i];
        char path[256];
        snprintf(path, sizeof path, "%s/bad_%s.safetensors", rn_test_dir(), c->file);
        write_st(path, c->json, 8, NULL, c->data_n);
        expect_open_fails(path, RN_ERR_FORMAT, c->n1, c->n2);
    }
}

/* Gaps between tensors and zero-size tensors anywhere are not overlaps. */
static void test_gaps_and_empty_ok(void **state)
{
    (void)state;
    char path[256];
    tpath(path, sizeof path, "gaps.safetensors");
    write_st(path,
             "{\"a\":" E4("[8,12]") ",\"e\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[9,9]},"
             "\"b\":" E4("[0,4]") "}",
             8, NULL, 16);
    rn_st_file *f = NULL;
    assert_int_equal(rn_st_open(&f, path), RN_OK);
    assert_int_equal(rn_st_count(f), 3);
    assert_int_equal(rn_st_find(f, "a")->offset, 8);
    assert_int_equal(rn_st_read_f32(f, "e", NULL, 0), RN_OK);
    rn_st_close(f);
}

static void test_container_errors(void **state)
{
    (void)state;
    char path[256];

    tpath(path, sizeof path, "does_not_exist.safetensors");
    expect_open_fails(path, RN_ERR_IO, "cannot open", NULL);

    expect_open_fails(rn_test_dir(), RN_ERR_IO, "not a regular file", NULL);

    tpath(path, sizeof path, "empty.safetensors");
    rn_test_write_file(path, "", 0);
    expect_open_fails(path, RN_ERR_FORMAT, "too short", NULL);

    tpath(path, sizeof path, "short.safetensors");
    rn_test_write_file(path, "\x02\x00\x00\x00\x00", 5);
    expect_open_fails(path, RN_ERR_FORMAT, "too short", NULL);

    /* the 8-byte header length against what follows it: a header of 8 bytes, or none */
    static const struct {
        const char *file;
        uint64_t declared;
        const char *header;
        size_t data_n;
        const char *n1, *n2;
    } raw[] = {
        {"hlen_past_end", 100, "{}      ", 4, "header length 100", "past the end"},
        {"hlen_one_past", 9, "{}      ", 0, "past the end", NULL},
        {"hlen_absurd", UINT64_MAX, "{}      ", 0, "absurd", NULL},
        {"hlen_zero", 0, "", 8, "JSON object", NULL},
        {"nul_in_header", 8, "{}\0     ", 0, "NUL", NULL},
        {"bom", 8, "\xef\xbb\xbf{}   ", 0, "JSON object", NULL},
        /* exactly 8 bytes with length 0 is still not a header */
        {"only_length", 0, "", 0, "JSON object", NULL},
    };
    for (size_t i = 0; i < sizeof raw / sizeof raw[0]; i++) {
        snprintf(path, sizeof path, "%s/%s.safetensors", rn_test_dir(), raw[i].file);
        write_raw(path, raw[i].declared, raw[i].header, raw[i].header[0] ? 8 : 0, NULL,
                  raw[i].data_n);
        expect_open_fails(path, RN_ERR_FORMAT, raw[i].n1, raw[i].n2);
    }

    rn_st_file *f = NULL;
    assert_int_equal(rn_st_open(NULL, path), RN_ERR_ARG);
    assert_int_equal(rn_st_open(&f, NULL), RN_ERR_ARG);
}

/* ---- typed reads ------------------------------------------------------------------------ */

static void test_read_mismatch(void **state)
{
    (void)state;
    char path[256];
    tpath(path, sizeof path, "mismatch.safetensors");
    rn_st_writer *w = NULL;
    assert_int_equal(rn_st_writer_create(&w), RN_OK);
    float fv[6] = {1, 2, 3, 4, 5, 6};
    int64_t iv[2] = {7, 8};
    assert_int_equal(rn_st_writer_add(w, "fc.weight", "F32", 2, (int64_t[]){2, 3}, fv), RN_OK);
    assert_int_equal(rn_st_writer_add(w, "num_batches_tracked", "I64", 1, (int64_t[]){2}, iv), RN_OK);
    assert_int_equal(rn_st_writer_save(w, path), RN_OK);
    rn_st_writer_free(w);

    rn_st_file *f = NULL;
    assert_int_equal(rn_st_open(&f, path), RN_OK);
    float out[8];
    int64_t iout[8];

    /* wrong dtype */
    assert_int_equal(rn_st_read_f32(f, "num_batches_tracked", out, 2), RN_ERR_MISMATCH);
    expect_contains(rn_last_error(), path);
    expect_contains(rn_last_error(), "'num_batches_tracked'");
    expect_contains(rn_last_error(), "expected F32 with 2 elements, found I64 [2] (2 elements)");
    assert_int_equal(rn_st_read_i64(f, "fc.weight", iout, 6), RN_ERR_MISMATCH);
    expect_contains(rn_last_error(), "'fc.weight'");
    expect_contains(rn_last_error(), "expected I64 with 6 elements, found F32 [2, 3]");

    /* wrong count */
    assert_int_equal(rn_st_read_f32(f, "fc.weight", out, 8), RN_ERR_MISMATCH);
    expect_contains(rn_last_error(), path);
    expect_contains(rn_last_error(), "'fc.weight'");
    expect_contains(rn_last_error(), "expected F32 with 8 elements, found F32 [2, 3] (6 elements)");
    assert_int_equal(rn_st_read_i64(f, "num_batches_tracked", iout, 1), RN_ERR_MISMATCH);
    expect_contains(rn_last_error(), "expected I64 with 1 elements");

    /* missing */
    assert_int_equal(rn_st_read_f32(f, "fc.bias", out, 2), RN_ERR_MISMATCH);
    expect_contains(rn_last_error(), path);
    expect_contains(rn_last_error(), "'fc.bias' not found");
    assert_int_equal(rn_st_read_i64(f, "steps", iout, 1), RN_ERR_MISMATCH);
    expect_contains(rn_last_error(), "'steps' not found");

    /* the right call still works after failures */
    assert_int_equal(rn_st_read_f32(f, "fc.weight", out, 6), RN_OK);
    assert_memory_equal(out, fv, sizeof fv);
    assert_int_equal(rn_st_read_f32(NULL, "fc.weight", out, 6), RN_ERR_ARG);
    assert_int_equal(rn_st_read_f32(f, NULL, out, 6), RN_ERR_ARG);
    rn_st_close(f);
}

/* ---- writer arguments ------------------------------------------------------------------- */

static void test_writer_rejects(void **state)
{
    (void)state;
    rn_st_writer *w = NULL;
    assert_int_equal(rn_st_writer_create(&w), RN_OK);
    float v[4] = {0};
    int64_t s1[1] = {4};
    assert_int_equal(rn_st_writer_add(w, "a", "F32", 1, s1, v), RN_OK);

    assert_int_equal(rn_st_writer_add(w, "a", "F32", 1, s1, v), RN_ERR_ARG);
    expect_contains(rn_last_error(), "'a'");
    expect_contains(rn_last_error(), "twice");
    assert_int_equal(rn_st_writer_add(w, "a", "I64", 0, NULL, v), RN_ERR_ARG);

    assert_int_equal(rn_st_writer_add(w, "__metadata__", "F32", 1, s1, v), RN_ERR_ARG);
    expect_contains(rn_last_error(), "'__metadata__'");
    assert_int_equal(rn_st_writer_add(w, "__x", "F32", 1, s1, v), RN_ERR_ARG);
    expect_contains(rn_last_error(), "reserved");
    assert_int_equal(rn_st_writer_add(w, "_ok", "F32", 1, s1, v), RN_OK); /* one underscore is fine */

    assert_int_equal(rn_st_writer_add(w, "", "F32", 1, s1, v), RN_ERR_ARG);
    assert_int_equal(rn_st_writer_add(w, "bad\xff", "F32", 1, s1, v), RN_ERR_ARG);
    assert_int_equal(rn_st_writer_add(w, "h", "F16", 1, s1, v), RN_ERR_ARG);
    expect_contains(rn_last_error(), "'F16'");
    assert_int_equal(rn_st_writer_add(w, "n", "F32", -1, s1, v), RN_ERR_ARG);
    int64_t s9[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1};
    assert_int_equal(rn_st_writer_add(w, "n", "F32", 9, s9, v), RN_ERR_ARG);
    int64_t sneg[2] = {2, -2};
    assert_int_equal(rn_st_writer_add(w, "n", "F32", 2, sneg, v), RN_ERR_ARG);
    expect_contains(rn_last_error(), "'n'");
    int64_t sbig[3] = {INT64_C(1) << 40, INT64_C(1) << 40, INT64_C(1) << 40};
    assert_int_equal(rn_st_writer_add(w, "n", "F32", 3, sbig, v), RN_ERR_ARG);
    assert_int_equal(rn_st_writer_add(w, "n", "F32", 1, NULL, v), RN_ERR_ARG);
    assert_int_equal(rn_st_writer_add(w, "n", "F32", 1, s1, NULL), RN_ERR_ARG);
    int64_t s0[1] = {0};
    assert_int_equal(rn_st_writer_add(w, "zero", "F32", 1, s0, NULL), RN_OK); /* no data needed */
    assert_int_equal(rn_st_writer_add(NULL, "n", "F32", 1, s1, v), RN_ERR_ARG);
    assert_int_equal(rn_st_writer_meta(w, "k", NULL), RN_ERR_ARG);
    assert_int_equal(rn_st_writer_meta(w, "k", "\xc3"), RN_ERR_ARG);
    assert_int_equal(rn_st_writer_save(w, NULL), RN_ERR_ARG);
    assert_int_equal(rn_st_writer_create(NULL), RN_ERR_ARG);

    /* the failed adds left the writer intact */
    char path[256];
    tpath(path, sizeof path, "rejects.safetensors");
    assert_int_equal(rn_st_writer_save(w, path), RN_OK);
    rn_st_writer_free(w);
    rn_st_writer_free(NULL);
    rn_st_file *f = NULL;
    assert_int_equal(rn_st_open(&f, path), RN_OK);
    assert_int_equal(rn_st_count(f), 3);
    assert_string_equal(rn_st_entry_at(f, 1)->name, "_ok");
    rn_st_close(f);
}

/* ---- atomic save ------------------------------------------------------------------------ */

static void save_one(const char *path, float value, int expect)
{
    rn_st_writer *w = NULL;
    assert_int_equal(rn_st_writer_create(&w), RN_OK);
    float v[3] = {value, value + 1, value + 2};
    assert_int_equal(rn_st_writer_add(w, "v", "F32", 1, (int64_t[]){3}, v), RN_OK);
    int rc = rn_st_writer_save(w, path);
    rn_st_writer_free(w);
    if (rc != expect)
        fail_msg("save %s: status %d, expected %d (%s)", path, rc, expect, rn_last_error());
}

static float load_first(const char *path)
{
    rn_st_file *f = NULL;
    assert_int_equal(rn_st_open(&f, path), RN_OK);
    float v[3];
    assert_int_equal(rn_st_read_f32(f, "v", v, 3), RN_OK);
    rn_st_close(f);
    return v[0];
}

static void test_save_failures(void **state)
{
    (void)state;
    char path[256], tmp[300];

    /* a directory that does not exist */
    tpath(path, sizeof path, "no/such/dir/model.safetensors");
    save_one(path, 1, RN_ERR_IO);
    expect_contains(rn_last_error(), path);
    assert_false(dir_has_tmp());

    /* a successful save replaces the old file atomically, leaving no temporary behind */
    tpath(path, sizeof path, "atomic.safetensors");
    save_one(path, 1, RN_OK);
    assert_true(load_first(path) == 1.0f);
    save_one(path, 10, RN_OK);
    assert_true(load_first(path) == 10.0f);
    assert_false(dir_has_tmp());

    /* the temporary cannot be created (a directory sits at its name): the save fails and the
     * existing file is untouched */
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    assert_int_equal(mkdir(tmp, 0700), 0);
    save_one(path, 20, RN_ERR_IO);
    expect_contains(rn_last_error(), path);
    assert_true(load_first(path) == 10.0f);
    assert_int_equal(rmdir(tmp), 0);

    /* the rename fails (the target is a non-empty directory): the temporary is removed and the
     * directory left alone */
    tpath(path, sizeof path, "a_directory.safetensors");
    assert_int_equal(mkdir(path, 0700), 0);
    char inner[300];
    snprintf(inner, sizeof inner, "%s/keep", path);
    rn_test_write_file(inner, "x", 1);
    save_one(path, 30, RN_ERR_IO);
    expect_contains(rn_last_error(), path);
    expect_contains(rn_last_error(), "rename");
    assert_false(dir_has_tmp());
    struct stat st;
    assert_int_equal(stat(inner, &st), 0);
    assert_int_equal(st.st_size, 1);
}

/* ---- fuzz regressions --------------------------------------------------------------------
 * Inputs under fuzz/corpus that once crashed a harness (fuzz/fuzz_*.c, docs/reliability.md),
 * read here through the normal API. The tests run from the repository root. */

static void corpus_path(char *buf, size_t cap, const char *rel)
{
    snprintf(buf, cap, "fuzz/corpus/%s", rel);
    if (access(buf, R_OK) != 0) fail_msg("%s: missing (run the tests from the repository root)", buf);
}

static void expect_open_net_fails(const char *rel, int status, const char *what)
{
    char path[256];
    corpus_path(path, sizeof path, rel);
    rn_net *net = (rn_net *)&net; /* poison: must be reset to NULL */
    int rc = rn_net_open(&net, path, NULL, NULL);
    if (rc != status)
        fail_msg("%s: status %d, expected %d (message \"%s\")", path, rc, status, rn_last_error());
    assert_null(net);
    expect_contains(rn_last_error(), path);
    expect_contains(rn_last_error(), what);
}

static void test_fuzz_model_regressions(void **state)
{
    (void)state;
    /* 48 bytes of metadata naming wrn-16-1000 and no tensor: the network (670 GB of
     * parameters) was allocated before the file was checked; now the file is checked against
     * the network's tensor list first */
    expect_open_net_fails("model/crash-arch-wrn-16-1000-oom", RN_ERR_MISMATCH,
                          "missing tensor 'conv1.weight'");
    /* no 'classes' metadata and an fc.weight of shape [2000000000, 0] (no data): 2e9 classes */
    expect_open_net_fails("model/crash-classes-from-fc-shape-oom", RN_ERR_MISMATCH,
                          "missing tensor 'conv1.weight'");
    /* wrn-84400-90: its tensor list alone took over 2 GB; depths and widths now stop at 10000 */
    expect_open_net_fails("model/crash-arch-wrn-84400-90-oom", RN_ERR_ARG,
                          "unknown architecture 'wrn-84400-90'");
    /* input 1x2147483647x2147483647: the convolutions' shape arithmetic overflowed int */
    expect_open_net_fails("model/crash-input-side-int-max", RN_ERR_FORMAT,
                          "metadata 'input' is not CxHxW (sides up to 16384)");
}

static void test_fuzz_checkpoint_regressions(void **state)
{
    (void)state;
    /* a checkpoint whose state says "epoch": 1e300: converted to int before any check */
    char path[256];
    corpus_path(path, sizeof path, "checkpoint/crash-state-epoch-beyond-int");
    rn_train_config cfg;
    int epoch = -7;
    int rc = rn_checkpoint_read_config(path, &cfg, &epoch, NULL, NULL);
    if (rc != RN_ERR_FORMAT) fail_msg("status %d (message \"%s\")", rc, rn_last_error());
    expect_contains(rn_last_error(), path);
    expect_contains(rn_last_error(), "'epoch' is out of range");
    assert_int_equal(epoch, -7);
    /* the training configuration a checkpoint stores, with "val": 4.5e16 (beyond int) */
    corpus_path(path, sizeof path, "options/crash-config-number-beyond-int");
    size_t n;
    unsigned char *text = rn_test_read_file(path, &n);
    text[n] = '\0';
    rc = rn_train_config_from_json(&cfg, (const char *)text);
    free(text);
    if (rc != RN_ERR_FORMAT) fail_msg("status %d (message \"%s\")", rc, rn_last_error());
    expect_contains(rn_last_error(), "'val' is out of range");
    /* a float field may go beyond int (fuzz/corpus/options/crash-config-float-field-beyond-int:
     * {"lr": 002147483647}, refused once it had been written back as 2147483648), not beyond
     * float */
    corpus_path(path, sizeof path, "options/crash-config-float-field-beyond-int");
    text = rn_test_read_file(path, &n);
    text[n] = '\0';
    rc = rn_train_config_from_json(&cfg, (const char *)text);
    free(text);
    if (rc != RN_OK) fail_msg("status %d (message \"%s\")", rc, rn_last_error());
    assert_true(cfg.lr == 2147483648.0f);
    rc = rn_train_config_from_json(&cfg, "{\"lr\": 1e39}");
    if (rc != RN_ERR_FORMAT) fail_msg("lr 1e39: status %d", rc);
    expect_contains(rn_last_error(), "'lr' is out of range");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_writer_bytes),
        cmocka_unit_test(test_spec_file),
        cmocka_unit_test(test_all_dtypes),
        cmocka_unit_test(test_malformed_headers),
        cmocka_unit_test(test_gaps_and_empty_ok),
        cmocka_unit_test(test_container_errors),
        cmocka_unit_test(test_read_mismatch),
        cmocka_unit_test(test_writer_rejects),
        cmocka_unit_test(test_save_failures),
        cmocka_unit_test(test_fuzz_model_regressions),
        cmocka_unit_test(test_fuzz_checkpoint_regressions),
    };
    return cmocka_run_group_tests(tests, rn_test_group_setup, rn_test_group_teardown);
}
