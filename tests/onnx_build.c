/* Test-only ONNX writer (see onnx_build.h). */
#include "onnx_build.h"

#include <stdlib.h>
#include <string.h>

static int node_index(struct ob_model *b, Onnx__NodeProto *n)
{
	return (int)(n - b->nodes);
}

static Onnx__ValueInfoProto *value_info(struct ob_model *b, const char *name, int ndim, const int64_t *dims)
{
	int k = b->n_vi++;
	Onnx__ValueInfoProto *vi = &b->vi[k];

	onnx__value_info_proto__init(vi);
	onnx__type_proto__init(&b->types[k]);
	onnx__type_proto__tensor__init(&b->ttypes[k]);
	onnx__tensor_shape_proto__init(&b->shapes[k]);
	vi->name = (char *)name;
	vi->type = &b->types[k];
	b->types[k].value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
	b->types[k].tensor_type = &b->ttypes[k];
	b->ttypes[k].has_elem_type = 1;
	b->ttypes[k].elem_type = 1;
	b->ttypes[k].shape = &b->shapes[k];
	for (int i = 0; i < ndim; i++) {
		Onnx__TensorShapeProto__Dimension *d = &b->dims[k][i];
		onnx__tensor_shape_proto__dimension__init(d);
		if (dims[i] < 0) {
			d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM;
			d->dim_param = "N";
		} else {
			d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
			d->dim_value = dims[i];
		}
		b->dim_ptrs[k][i] = d;
	}
	b->shapes[k].n_dim = (size_t)ndim;
	b->shapes[k].dim = b->dim_ptrs[k];
	return vi;
}

void ob_init(struct ob_model *b, int opset, const char *input, int ndim, const int64_t *dims, const char *output)
{
	int64_t odims[2] = {-1, 3};

	memset(b, 0, sizeof(*b));
	onnx__model_proto__init(&b->model);
	onnx__graph_proto__init(&b->graph);
	onnx__operator_set_id_proto__init(&b->opset);
	b->opset.domain = "";
	b->opset.has_version = 1;
	b->opset.version = opset;
	b->opsets[0] = &b->opset;
	b->model.has_ir_version = 1;
	b->model.ir_version = 8;
	b->model.n_opset_import = 1;
	b->model.opset_import = b->opsets;
	b->model.graph = &b->graph;
	b->graph.name = "test";
	b->graph.node = b->node_ptrs;
	b->graph.initializer = b->init_ptrs;
	b->in_ptrs[0] = value_info(b, input, ndim, dims);
	b->out_ptrs[0] = value_info(b, output, 2, odims);
	b->graph.input = b->in_ptrs;
	b->graph.n_input = 1;
	b->graph.output = b->out_ptrs;
	b->graph.n_output = 1;
}

static Onnx__TensorProto *new_init(struct ob_model *b, const char *name, int ndim, const int64_t *dims)
{
	int k = (int)b->graph.n_initializer++;
	Onnx__TensorProto *t = &b->inits[k];

	onnx__tensor_proto__init(t);
	memcpy(b->init_dims[k], dims, (size_t)ndim * sizeof(int64_t));
	t->name = (char *)name;
	t->n_dims = (size_t)ndim;
	t->dims = b->init_dims[k];
	t->has_data_type = 1;
	b->init_ptrs[k] = t;
	return t;
}

Onnx__TensorProto *ob_float(struct ob_model *b, const char *name, int ndim, const int64_t *dims, const float *data)
{
	Onnx__TensorProto *t = new_init(b, name, ndim, dims);
	size_t n = 1;

	for (int i = 0; i < ndim; i++)
		n *= (size_t)dims[i];
	t->data_type = 1;
	t->has_raw_data = 1;
	t->raw_data.len = n * sizeof(float);
	t->raw_data.data = (uint8_t *)data;
	return t;
}

Onnx__TensorProto *ob_int64(struct ob_model *b, const char *name, int ndim, const int64_t *dims, const int64_t *data)
{
	Onnx__TensorProto *t = new_init(b, name, ndim, dims);
	size_t n = 1;

	for (int i = 0; i < ndim; i++)
		n *= (size_t)dims[i];
	t->data_type = 7;
	t->n_int64_data = n;
	t->int64_data = (int64_t *)data;
	return t;
}

Onnx__NodeProto *ob_node(struct ob_model *b, const char *op, const char *name, const char *const *inputs,
			 const char *const *outputs)
{
	int k = (int)b->graph.n_node++;
	Onnx__NodeProto *n = &b->nodes[k];

	onnx__node_proto__init(n);
	n->op_type = (char *)op;
	n->name = (char *)name;
	while (inputs && inputs[n->n_input]) {
		b->node_in[k][n->n_input] = (char *)inputs[n->n_input];
		n->n_input++;
	}
	while (outputs && outputs[n->n_output]) {
		b->node_out[k][n->n_output] = (char *)outputs[n->n_output];
		n->n_output++;
	}
	n->input = b->node_in[k];
	n->output = b->node_out[k];
	n->attribute = b->attr_ptrs[k];
	b->node_ptrs[k] = n;
	return n;
}

static Onnx__AttributeProto *new_attr(Onnx__NodeProto *n, struct ob_model *b, const char *name)
{
	int k = node_index(b, n);
	Onnx__AttributeProto *a = &b->attrs[k][n->n_attribute];

	onnx__attribute_proto__init(a);
	a->name = (char *)name;
	a->has_type = 1;
	b->attr_ptrs[k][n->n_attribute++] = a;
	return a;
}

Onnx__AttributeProto *ob_attr_int(Onnx__NodeProto *n, struct ob_model *b, const char *name, int64_t v)
{
	Onnx__AttributeProto *a = new_attr(n, b, name);

	a->type = 2;
	a->has_i = 1;
	a->i = v;
	return a;
}

Onnx__AttributeProto *ob_attr_ints(Onnx__NodeProto *n, struct ob_model *b, const char *name, int count,
				   int64_t *v)
{
	Onnx__AttributeProto *a = new_attr(n, b, name);

	a->type = 7;
	a->n_ints = (size_t)count;
	a->ints = v;
	return a;
}

unsigned char *ob_pack(struct ob_model *b, size_t *len)
{
	unsigned char *buf;

	*len = onnx__model_proto__get_packed_size(&b->model);
	buf = malloc(*len + 1);
	if (buf)
		onnx__model_proto__pack(&b->model, buf);
	return buf;
}

static const float mlp_w[12] = {0.1f, -0.2f, 0.3f, 0.4f, -0.5f, 0.6f, 0.7f, -0.8f, 0.9f, 1.0f, -1.1f, 1.2f};
static const float mlp_b[3] = {0.01f, -0.02f, 0.03f};

void ob_mlp(struct ob_model *b)
{
	static const int64_t in_dims[2] = {-1, 4}, w_dims[2] = {3, 4}, b_dims[1] = {3};
	static const char *const gemm_in[] = {"x", "W", "B", NULL}, *const gemm_out[] = {"h", NULL};
	static const char *const relu_in[] = {"h", NULL}, *const relu_out[] = {"y", NULL};
	Onnx__NodeProto *g;

	ob_init(b, 13, "x", 2, in_dims, "y");
	ob_float(b, "W", 2, w_dims, mlp_w);
	ob_float(b, "B", 1, b_dims, mlp_b);
	g = ob_node(b, "Gemm", "gemm0", gemm_in, gemm_out);
	ob_attr_int(g, b, "transB", 1);
	ob_node(b, "Relu", "relu0", relu_in, relu_out);
}
