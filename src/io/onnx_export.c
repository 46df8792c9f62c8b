/* ONNX models through protobuf-c (onnx_export.h). Every message and string the builder makes
 * is one allocation recorded in g->owned, so rn_onnx_free is one loop; the few arrays that
 * grow (nodes, initializers, inputs, outputs, metadata) are freed beside it. */
#include "io/onnx_export.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <onnx.pb-c.h>

#include "core/atomic_file.h"
#include "core/error.h"

/* Attributes per node: Conv's kernel_shape, strides, pads, dilations, group is the most. */
#define MAX_ATTRS 8

struct rn_onnx {
    Onnx__ModelProto model;
    Onnx__GraphProto graph;
    Onnx__OperatorSetIdProto opset;
    Onnx__OperatorSetIdProto *opsets[1];
    size_t cap_node, cap_init, cap_in, cap_out, cap_meta;
    void **owned;
    size_t n_owned, cap_owned;
};

static int oom(void) { return rn_fail(RN_ERR_NOMEM, "out of memory building the ONNX graph"); }

/* Records p (NULL: out of memory) as g's, to free with the graph. */
static void *own(rn_onnx *g, void *p)
{
    if (!p) return NULL;
    if (g->n_owned == g->cap_owned) {
        size_t cap = g->cap_owned ? 2 * g->cap_owned : 256;
        void **grown = realloc(g->owned, cap * sizeof *grown);
        if (!grown) {
            free(p);
            return NULL;
        }
        g->owned = grown;
        g->cap_owned = cap;
    }
    g->owned[g->n_owned++] = p;
    return p;
}

static void *alloc(rn_onnx *g, size_t size) { return own(g, calloc(1, size ? size : 1)); }

static char *copy_str(rn_onnx *g, const char *s)
{
    size_t len = strlen(s) + 1;
    char *c = alloc(g, len);
    if (c) memcpy(c, s, len);
    return c;
}

/* Appends item to a growing array of message pointers. */
static int push(void ***array, size_t *n, size_t *cap, void *item)
{
    if (!item) return oom();
    if (*n == *cap) {
        size_t grown_cap = *cap ? 2 * *cap : 64;
        void **grown = realloc(*array, grown_cap * sizeof *grown);
        if (!grown) return oom();
        *array = grown;
        *cap = grown_cap;
    }
    (*array)[(*n)++] = item;
    return RN_OK;
}

/* The IR version of the ONNX release that introduced the opset (onnx/docs/Versioning.md), so
 * that runtimes as old as the opset can read the file. */
static int64_t ir_version_for(int opset)
{
    return opset <= 11 ? 6 : opset <= 14 ? 7 : 8;
}

int rn_onnx_create(rn_onnx **out, const char *graph_name, int opset)
{
    *out = NULL;
    rn_onnx *g = calloc(1, sizeof *g);
    if (!g) return oom();
    onnx__model_proto__init(&g->model);
    onnx__graph_proto__init(&g->graph);
    onnx__operator_set_id_proto__init(&g->opset);
    g->opset.domain = copy_str(g, ""); /* the default domain, ai.onnx */
    g->opset.has_version = 1;
    g->opset.version = opset;
    g->opsets[0] = &g->opset;
    g->model.has_ir_version = 1;
    g->model.ir_version = ir_version_for(opset);
    g->model.n_opset_import = 1;
    g->model.opset_import = g->opsets;
    g->model.graph = &g->graph;
    g->graph.name = copy_str(g, graph_name);
    if (!g->opset.domain || !g->graph.name) {
        rn_onnx_free(g);
        return oom();
    }
    *out = g;
    return RN_OK;
}

void rn_onnx_free(rn_onnx *g)
{
    if (!g) return;
    for (size_t i = 0; i < g->n_owned; i++) free(g->owned[i]);
    free(g->owned);
    free(g->graph.node);
    free(g->graph.initializer);
    free(g->graph.input);
    free(g->graph.output);
    free(g->model.metadata_props);
    free(g);
}

int rn_onnx_set_producer(rn_onnx *g, const char *name, const char *version)
{
    g->model.producer_name = copy_str(g, name);
    g->model.producer_version = copy_str(g, version);
    return g->model.producer_name && g->model.producer_version ? RN_OK : oom();
}

int rn_onnx_set_doc(rn_onnx *g, const char *doc)
{
    g->model.doc_string = copy_str(g, doc);
    return g->model.doc_string ? RN_OK : oom();
}

int rn_onnx_add_meta(rn_onnx *g, const char *key, const char *value)
{
    Onnx__StringStringEntryProto *e = alloc(g, sizeof *e);
    if (!e) return oom();
    onnx__string_string_entry_proto__init(e);
    e->key = copy_str(g, key);
    e->value = copy_str(g, value);
    if (!e->key || !e->value) return oom();
    return push((void ***)&g->model.metadata_props, &g->model.n_metadata_props, &g->cap_meta, e);
}

/* A float tensor type of rank ndim; dims of -1 become the symbol. */
static Onnx__ValueInfoProto *value_info(rn_onnx *g, const char *name, const int64_t *dims,
                                        int ndim, const char *symbol)
{
    Onnx__ValueInfoProto *v = alloc(g, sizeof *v);
    Onnx__TypeProto *type = alloc(g, sizeof *type);
    Onnx__TypeProto__Tensor *tensor = alloc(g, sizeof *tensor);
    Onnx__TensorShapeProto *shape = alloc(g, sizeof *shape);
    Onnx__TensorShapeProto__Dimension **dim = alloc(g, (size_t)ndim * sizeof *dim);
    if (!v || !type || !tensor || !shape || !dim) return NULL;
    onnx__value_info_proto__init(v);
    onnx__type_proto__init(type);
    onnx__type_proto__tensor__init(tensor);
    onnx__tensor_shape_proto__init(shape);
    for (int i = 0; i < ndim; i++) {
        dim[i] = alloc(g, sizeof *dim[i]);
        if (!dim[i]) return NULL;
        onnx__tensor_shape_proto__dimension__init(dim[i]);
        if (dims[i] < 0) {
            dim[i]->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM;
            dim[i]->dim_param = copy_str(g, symbol ? symbol : "N");
            if (!dim[i]->dim_param) return NULL;
        } else {
            dim[i]->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
            dim[i]->dim_value = dims[i];
        }
    }
    shape->n_dim = (size_t)ndim;
    shape->dim = dim;
    tensor->has_elem_type = 1;
    tensor->elem_type = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
    tensor->shape = shape;
    type->value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
    type->tensor_type = tensor;
    v->type = type;
    v->name = copy_str(g, name);
    return v->name ? v : NULL;
}

int rn_onnx_add_input(rn_onnx *g, const char *name, const int64_t *dims, int ndim,
                      const char *symbol)
{
    return push((void ***)&g->graph.input, &g->graph.n_input, &g->cap_in,
                value_info(g, name, dims, ndim, symbol));
}

int rn_onnx_add_output(rn_onnx *g, const char *name, const int64_t *dims, int ndim,
                       const char *symbol)
{
    return push((void ***)&g->graph.output, &g->graph.n_output, &g->cap_out,
                value_info(g, name, dims, ndim, symbol));
}

static Onnx__TensorProto *tensor(rn_onnx *g, const char *name, int32_t type, const int64_t *dims,
                                 int ndim)
{
    Onnx__TensorProto *t = alloc(g, sizeof *t);
    int64_t *d = alloc(g, (size_t)ndim * sizeof *d);
    if (!t || !d) return NULL;
    onnx__tensor_proto__init(t);
    if (ndim) memcpy(d, dims, (size_t)ndim * sizeof *d);
    t->n_dims = (size_t)ndim;
    t->dims = d;
    t->has_data_type = 1;
    t->data_type = type;
    t->name = copy_str(g, name);
    return t->name ? t : NULL;
}

static size_t numel(const int64_t *dims, int ndim)
{
    size_t n = 1;
    for (int i = 0; i < ndim; i++) n *= (size_t)dims[i];
    return n;
}

/* raw_data is little-endian by the ONNX spec (and what every exporter writes, and what
 * runtimes read fastest); on a big-endian host the floats are copied byte-swapped. */
static const uint8_t *little_endian(rn_onnx *g, const float *data, size_t bytes)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    uint8_t *swapped = alloc(g, bytes);
    if (!swapped) return NULL;
    const uint8_t *src = (const uint8_t *)data;
    for (size_t i = 0; i < bytes; i += 4)
        for (int b = 0; b < 4; b++) swapped[i + b] = src[i + 3 - b];
    return swapped;
#else
    (void)g;
    (void)bytes;
    return (const uint8_t *)data;
#endif
}

int rn_onnx_add_float(rn_onnx *g, const char *name, const float *data, const int64_t *dims,
                      int ndim)
{
    Onnx__TensorProto *t = tensor(g, name, ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, dims, ndim);
    if (!t) return oom();
    size_t bytes = numel(dims, ndim) * sizeof(float);
    const uint8_t *raw = little_endian(g, data, bytes);
    if (!raw) return oom();
    t->has_raw_data = 1;
    t->raw_data.len = bytes;
    t->raw_data.data = (uint8_t *)raw; /* read only: protobuf-c's field is not const */
    return push((void ***)&g->graph.initializer, &g->graph.n_initializer, &g->cap_init, t);
}

int rn_onnx_add_int64(rn_onnx *g, const char *name, const int64_t *data, const int64_t *dims,
                      int ndim)
{
    Onnx__TensorProto *t = tensor(g, name, ONNX__TENSOR_PROTO__DATA_TYPE__INT64, dims, ndim);
    size_t n = numel(dims, ndim);
    int64_t *copy = alloc(g, n * sizeof *copy);
    if (!t || !copy) return oom();
    memcpy(copy, data, n * sizeof *copy);
    t->n_int64_data = n;
    t->int64_data = copy;
    return push((void ***)&g->graph.initializer, &g->graph.n_initializer, &g->cap_init, t);
}

int rn_onnx_add_node(rn_onnx *g, const char *op_type, const char *name,
                     const char *const *inputs, int n_inputs, const char *output)
{
    Onnx__NodeProto *node = alloc(g, sizeof *node);
    char **in = alloc(g, (size_t)n_inputs * sizeof *in);
    char **out = alloc(g, sizeof *out);
    Onnx__AttributeProto **attrs = alloc(g, MAX_ATTRS * sizeof *attrs);
    if (!node || !in || !out || !attrs) return oom();
    onnx__node_proto__init(node);
    for (int i = 0; i < n_inputs; i++)
        if (!(in[i] = copy_str(g, inputs[i]))) return oom();
    if (!(out[0] = copy_str(g, output))) return oom();
    node->n_input = (size_t)n_inputs;
    node->input = in;
    node->n_output = 1;
    node->output = out;
    node->attribute = attrs;
    node->op_type = copy_str(g, op_type);
    node->name = copy_str(g, name);
    if (!node->op_type || !node->name) return oom();
    return push((void ***)&g->graph.node, &g->graph.n_node, &g->cap_node, node);
}

/* A new attribute of the last node, in *out. */
static int attribute(rn_onnx *g, const char *key, Onnx__AttributeProto__AttributeType type,
                     Onnx__AttributeProto **out)
{
    if (!g->graph.n_node) return rn_fail(RN_ERR_ARG, "ONNX attribute '%s' before any node", key);
    Onnx__NodeProto *node = g->graph.node[g->graph.n_node - 1];
    if (node->n_attribute == MAX_ATTRS)
        return rn_fail(RN_ERR_ARG, "ONNX node %s: more than %d attributes", node->name, MAX_ATTRS);
    Onnx__AttributeProto *a = alloc(g, sizeof *a);
    if (!a) return oom();
    onnx__attribute_proto__init(a);
    if (!(a->name = copy_str(g, key))) return oom();
    a->has_type = 1;
    a->type = type;
    node->attribute[node->n_attribute++] = a;
    *out = a;
    return RN_OK;
}

int rn_onnx_attr_int(rn_onnx *g, const char *key, int64_t value)
{
    Onnx__AttributeProto *a;
    int st = attribute(g, key, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT, &a);
    if (st) return st;
    a->has_i = 1;
    a->i = value;
    return RN_OK;
}

int rn_onnx_attr_ints(rn_onnx *g, const char *key, const int64_t *values, int count)
{
    Onnx__AttributeProto *a;
    int st = attribute(g, key, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS, &a);
    if (st) return st;
    if (!(a->ints = alloc(g, (size_t)count * sizeof *a->ints))) return oom();
    memcpy(a->ints, values, (size_t)count * sizeof *a->ints);
    a->n_ints = (size_t)count;
    return RN_OK;
}

int rn_onnx_attr_float(rn_onnx *g, const char *key, float value)
{
    Onnx__AttributeProto *a;
    int st = attribute(g, key, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT, &a);
    if (st) return st;
    a->has_f = 1;
    a->f = value;
    return RN_OK;
}

/* protobuf-c's output, streamed to the temporary file (no second copy of the weights in
 * memory); a failed write is caught by rn_atomic_commit's ferror check. */
typedef struct {
    ProtobufCBuffer base;
    FILE *f;
} file_buffer;

static void file_append(ProtobufCBuffer *buffer, size_t len, const uint8_t *data)
{
    file_buffer *fb = (file_buffer *)buffer;
    if (len && !ferror(fb->f)) (void)fwrite(data, 1, len, fb->f);
}

int rn_onnx_write(rn_onnx *g, const char *path)
{
    size_t size = protobuf_c_message_get_packed_size(&g->model.base);
    /* protobuf's own limit: larger models need ONNX's external-data files */
    if (size > (size_t)INT32_MAX)
        return rn_fail(RN_ERR_ARG,
                       "%s: the model would be %zu bytes; an ONNX file holds at most 2 GiB", path,
                       size);
    rn_atomic_file a;
    int st = rn_atomic_open(&a, path);
    if (st) return st;
    file_buffer fb = {.base = {.append = file_append}, .f = a.f};
    size_t written = protobuf_c_message_pack_to_buffer(&g->model.base, &fb.base);
    if (written != size) {
        rn_atomic_discard(&a);
        return rn_fail(RN_ERR_IO, "%s: protobuf-c packed %zu bytes of %zu", path, written, size);
    }
    return rn_atomic_commit(&a);
}
