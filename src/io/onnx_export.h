/* ONNX models, written with protobuf-c and the ONNX schema of Debian's libonnx-dev (its C code
 * is generated from /usr/include/onnx/onnx.proto at build time). A small builder: one graph of
 * float tensors, nodes in execution order, initializers, metadata; then one atomic write. It
 * knows nothing of networks: src/nn/net_onnx.c walks a network into it.
 *
 * Strings are copied. Initializer data is NOT copied (a network's weights can be hundreds of
 * megabytes): it must stay valid and unchanged until rn_onnx_write has returned. */
#ifndef RN_IO_ONNX_EXPORT_H
#define RN_IO_ONNX_EXPORT_H

#include <stddef.h>
#include <stdint.h>

typedef struct rn_onnx rn_onnx;

/* A graph of the default ONNX domain at opset `opset`. */
int rn_onnx_create(rn_onnx **g, const char *graph_name, int opset);
void rn_onnx_free(rn_onnx *g);

/* Model-level strings: producer, documentation, and a metadata_props entry. */
int rn_onnx_set_producer(rn_onnx *g, const char *name, const char *version);
int rn_onnx_set_doc(rn_onnx *g, const char *doc);
int rn_onnx_add_meta(rn_onnx *g, const char *key, const char *value);

/* A float graph input or output of rank ndim; a dimension of -1 is symbolic (dim_param). */
int rn_onnx_add_input(rn_onnx *g, const char *name, const int64_t *dims, int ndim,
                      const char *symbol);
int rn_onnx_add_output(rn_onnx *g, const char *name, const int64_t *dims, int ndim,
                       const char *symbol);

/* Initializers: float32 (data kept by reference, see above) and int64 (copied). */
int rn_onnx_add_float(rn_onnx *g, const char *name, const float *data, const int64_t *dims,
                      int ndim);
int rn_onnx_add_int64(rn_onnx *g, const char *name, const int64_t *data, const int64_t *dims,
                      int ndim);

/* A node with one output; the attribute calls below apply to the node added last. */
int rn_onnx_add_node(rn_onnx *g, const char *op_type, const char *name,
                     const char *const *inputs, int n_inputs, const char *output);
int rn_onnx_attr_int(rn_onnx *g, const char *key, int64_t value);
int rn_onnx_attr_ints(rn_onnx *g, const char *key, const int64_t *values, int count);
int rn_onnx_attr_float(rn_onnx *g, const char *key, float value);

/* Serialises the model to path atomically (temporary file, fsync, rename); errors name path. */
int rn_onnx_write(rn_onnx *g, const char *path);

#endif
