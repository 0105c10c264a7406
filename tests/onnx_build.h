/* A small builder of ONNX files for tests: enough to write valid models and
 * then break them one field at a time. Fixed capacities keep it simple. */
#ifndef PARACORR_ONNX_BUILD_H
#define PARACORR_ONNX_BUILD_H

#include <stddef.h>
#include <stdint.h>

#include "onnx.pb-c.h"

#define OB_MAX 32

struct ob_model {
	Onnx__ModelProto model;
	Onnx__GraphProto graph;
	Onnx__OperatorSetIdProto opset;
	Onnx__OperatorSetIdProto *opsets[1];
	Onnx__NodeProto nodes[OB_MAX], *node_ptrs[OB_MAX];
	char *node_in[OB_MAX][8], *node_out[OB_MAX][4];
	Onnx__AttributeProto attrs[OB_MAX][4], *attr_ptrs[OB_MAX][4];
	Onnx__TensorProto inits[OB_MAX], *init_ptrs[OB_MAX];
	int64_t init_dims[OB_MAX][8];
	Onnx__ValueInfoProto vi[4], *in_ptrs[2], *out_ptrs[2];
	Onnx__TypeProto types[4];
	Onnx__TypeProto__Tensor ttypes[4];
	Onnx__TensorShapeProto shapes[4];
	Onnx__TensorShapeProto__Dimension dims[4][8], *dim_ptrs[4][8];
	int n_vi;
};

/* A model with opset `opset`, one float input `name` of shape dims (a dim of
 * -1 becomes the symbolic "N"), and one output. */
void ob_init(struct ob_model *b, int opset, const char *input, int ndim, const int64_t *dims, const char *output);
/* A float initializer stored as raw_data (data is borrowed; keep it alive). */
Onnx__TensorProto *ob_float(struct ob_model *b, const char *name, int ndim, const int64_t *dims, const float *data);
/* An int64 initializer stored in int64_data. */
Onnx__TensorProto *ob_int64(struct ob_model *b, const char *name, int ndim, const int64_t *dims, const int64_t *data);
/* A node; inputs/outputs are NULL-terminated lists of names. */
Onnx__NodeProto *ob_node(struct ob_model *b, const char *op, const char *name, const char *const *inputs,
			 const char *const *outputs);
Onnx__AttributeProto *ob_attr_int(Onnx__NodeProto *n, struct ob_model *b, const char *name, int64_t v);
Onnx__AttributeProto *ob_attr_ints(Onnx__NodeProto *n, struct ob_model *b, const char *name, int count,
				   int64_t *v);
/* Serialise: returns a malloc'd buffer and its length. */
unsigned char *ob_pack(struct ob_model *b, size_t *len);

/* The standard small valid model: x[N,4] -> Gemm(W[3,4], B[3], transB=1) -> Relu -> y[N,3]. */
void ob_mlp(struct ob_model *b);

#endif
