/* The safetensors format: 8-byte little-endian header length N, N bytes of JSON header
 * {"name": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, ...,
 *  "__metadata__": {"key": "value", ...}}, then the raw little-endian tensor data.
 * Offsets are relative to the start of the data section. */
#ifndef RN_IO_SAFETENSORS_H
#define RN_IO_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#define RN_ST_MAX_DIMS 8

typedef struct {
    char *name;
    char dtype[8];      /* "F32", "I64", "F16", ... as written; only F32 and I64 convert */
    int ndim;
    int64_t shape[RN_ST_MAX_DIMS];
    size_t numel;
    size_t offset;      /* byte offset into the data section */
    size_t nbytes;
} rn_st_entry;

typedef struct rn_st_file rn_st_file;

/* Reads and validates a whole file. Refuses (RN_ERR_IO / RN_ERR_FORMAT, message naming the path
 * and what is wrong): short files, a header length past the end of the file, JSON that does not
 * parse, entries without dtype/shape/data_offsets, unknown dtypes, offsets out of range or
 * overlapping, byte counts that do not match dtype size * numel, non-string metadata. */
int rn_st_open(rn_st_file **out, const char *path);
void rn_st_close(rn_st_file *f);

const char *rn_st_path(const rn_st_file *f);
int rn_st_count(const rn_st_file *f);
const rn_st_entry *rn_st_entry_at(const rn_st_file *f, int index);
const rn_st_entry *rn_st_find(const rn_st_file *f, const char *name);
/* NULL when absent. */
const char *rn_st_meta(const rn_st_file *f, const char *key);
/* Raw bytes of an entry's data. */
const void *rn_st_data(const rn_st_file *f, const rn_st_entry *e);

/* Copies an F32 tensor into dst (count floats). Fails with RN_ERR_MISMATCH naming the tensor if
 * it is missing, not F32, or not of `count` elements. */
int rn_st_read_f32(const rn_st_file *f, const char *name, float *dst, size_t count);
/* Same for I64. */
int rn_st_read_i64(const rn_st_file *f, const char *name, int64_t *dst, size_t count);

/* Writer: tensors are written in the order added; data is copied at add time. */
typedef struct rn_st_writer rn_st_writer;
int rn_st_writer_create(rn_st_writer **out);
void rn_st_writer_free(rn_st_writer *w);
/* dtype "F32" or "I64"; data holds numel elements of that type. */
int rn_st_writer_add(rn_st_writer *w, const char *name, const char *dtype, int ndim,
                     const int64_t *shape, const void *data);
int rn_st_writer_meta(rn_st_writer *w, const char *key, const char *value);
/* Writes path atomically: a temporary file beside it, flushed and fsync'ed, then renamed over
 * path, and the folder fsync'ed, so a crash never leaves a half-written file under that name. */
int rn_st_writer_save(rn_st_writer *w, const char *path);

#endif
