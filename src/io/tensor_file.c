/* One float32 tensor in, one out: the public face of the safetensors reader and writer. */
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "io/safetensors.h"
#include "resnet.h"

int rn_tensor_load(const char *path, const char *name, float **data, int64_t shape[4], int *ndim)
{
    *data = NULL;
    rn_st_file *f;
    int st = rn_st_open(&f, path);
    if (st) return st;
    const rn_st_entry *e = rn_st_find(f, name);
    if (!e) st = rn_fail(RN_ERR_MISMATCH, "%s: no tensor named '%s'", path, name);
    else if (strcmp(e->dtype, "F32"))
        st = rn_fail(RN_ERR_MISMATCH, "%s: tensor '%s' is %s, expected F32", path, name, e->dtype);
    else if (e->ndim > 4)
        st = rn_fail(RN_ERR_MISMATCH, "%s: tensor '%s' has %d dimensions, at most 4 are supported",
                     path, name, e->ndim);
    if (!st) {
        *data = malloc(e->numel ? e->numel * sizeof(float) : 1);
        if (!*data) st = rn_fail(RN_ERR_NOMEM, "%s: out of memory for tensor '%s'", path, name);
    }
    if (!st) st = rn_st_read_f32(f, name, *data, e->numel);
    if (!st) {
        *ndim = e->ndim;
        for (int i = 0; i < 4; i++) shape[i] = i < e->ndim ? e->shape[i] : 1;
    } else {
        free(*data);
        *data = NULL;
    }
    rn_st_close(f);
    return st;
}

int rn_tensor_save(const char *path, const char *name, const float *data, const int64_t *shape,
                   int ndim)
{
    rn_st_writer *w;
    int st = rn_st_writer_create(&w);
    if (st) return st;
    st = rn_st_writer_add(w, name, "F32", ndim, shape, data);
    if (!st) st = rn_st_writer_save(w, path);
    rn_st_writer_free(w);
    return st;
}
