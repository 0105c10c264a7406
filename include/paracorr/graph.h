/* graph: a model as a list of nodes in execution order, its values and its
 * parameters.
 *
 * A graph is built once (by the ONNX loader, or by tests through the builder
 * calls below), checked by pc_graph_finish, and is read-only afterwards, so
 * one graph can be shared by every job and thread. Running it needs a plan
 * (plan.h), which owns the buffers and a working copy of the weights. */
#ifndef PARACORR_GRAPH_H
#define PARACORR_GRAPH_H

#include <stdint.h>

#include "paracorr/error.h"
#include "paracorr/tensor.h"

#define PC_OPSET_MIN 11
#define PC_OPSET_MAX 17

struct pc_graph;

enum pc_attr_type {
	PC_ATTR_FLOAT = 1,
	PC_ATTR_INT = 2,
	PC_ATTR_STRING = 3,
	PC_ATTR_TENSOR = 4,
	PC_ATTR_FLOATS = 6,
	PC_ATTR_INTS = 7,
	PC_ATTR_STRINGS = 8,
};

/* A node attribute as the builder takes it; the graph keeps deep copies. */
struct pc_attr {
	const char *name;
	enum pc_attr_type type;
	float f;
	int64_t i;
	const char *s;
	int n; /* count of floats / ints / strings */
	const float *floats;
	const int64_t *ints;
	const char *const *strings; /* PC_ATTR_STRINGS (an RNN's activations) */
	/* PC_ATTR_TENSOR (Constant's value): dtype, shape and dense data */
	enum pc_dtype tdtype;
	struct pc_shape tshape;
	const void *tdata;
};

/* How the graph's output is read by the loss. */
enum pc_output_kind {
	PC_OUTPUT_LOGITS,
	PC_OUTPUT_PROBS,    /* graph ends in Softmax */
	PC_OUTPUT_LOGPROBS, /* graph ends in LogSoftmax */
};

/* The integer type an initializer had in the file, numbered as ONNX's
 * TensorProto.DataType; its integers are held as floats (exactly). */
enum pc_stored_type {
	PC_STORED_FLOAT = 0, /* a float initializer (or any other value) */
	PC_STORED_UINT8 = 2,
	PC_STORED_INT8 = 3,
};

/* The byte that stores v as an integer of type (two's complement for
 * int8). v off the integers (a trained or corrupted weight) is rounded half
 * to even and saturated to the type, NaN to 0, so it is always defined. */
uint8_t pc_stored_byte(enum pc_stored_type type, float v);
/* The integer a stored byte holds, as a float. */
float pc_stored_value(enum pc_stored_type type, uint8_t byte);

/* One corruptible tensor inside the flat parameter buffer. */
struct pc_param {
	const char *name; /* ONNX initializer name */
	struct pc_shape shape;
	int64_t offset; /* into the flat buffer, in floats; tensors follow each other in table order */
	int64_t count;
	const char *node; /* the first node consuming it */
	int node_index;	  /* its index in execution order */
	/* UINT8 / INT8: the stored integers of a QDQ weight (the input 0 of a
	 * DequantizeLinear), not real numbers */
	enum pc_stored_type stored;
};

/* --- building ----------------------------------------------------------- */

struct pc_graph *pc_graph_new(int opset, struct pc_error *err);

/* The data input. A dim of -1 is symbolic (the dynamic batch axis). */
int pc_graph_add_input(struct pc_graph *g, const char *name, const struct pc_shape *shape, struct pc_error *err);
/* The same with its element type: FLOAT, or INT64 for token ids (which are
 * never parameters and carry no gradient). */
int pc_graph_add_input_typed(struct pc_graph *g, const char *name, const struct pc_shape *shape,
			     enum pc_dtype dtype, struct pc_error *err);

/* Initializers; the data are copied. */
int pc_graph_add_float(struct pc_graph *g, const char *name, const struct pc_shape *shape, const float *data,
		       struct pc_error *err);
int pc_graph_add_int64(struct pc_graph *g, const char *name, const struct pc_shape *shape, const int64_t *data,
		       struct pc_error *err);
/* Any initializer: data is float[] for FLOAT, int64_t[] for INT64 and BOOL
 * (0/1). */
int pc_graph_add_initializer(struct pc_graph *g, const char *name, const struct pc_shape *shape,
			     enum pc_dtype dtype, const void *data, struct pc_error *err);

/* A node; an empty input name is an omitted optional input. Unknown op
 * types are accepted here and reported together by pc_graph_finish. */
int pc_graph_add_node(struct pc_graph *g, const char *op_type, const char *name, int n_in, const char *const *inputs,
		      int n_out, const char *const *outputs, int n_attr, const struct pc_attr *attrs,
		      struct pc_error *err);

int pc_graph_add_output(struct pc_graph *g, const char *name, struct pc_error *err);

/* Resolve names, order nodes, reject cycles, unsupported ops and
 * attributes, split parameters from buffers, and infer shapes once at batch
 * 1 so that every shape error is found at load time, never at run time. */
int pc_graph_finish(struct pc_graph *g, struct pc_error *err);

void pc_graph_free(struct pc_graph *g);

/* --- queries (after finish) ------------------------------------------------ */

int pc_graph_opset(const struct pc_graph *g);
const char *pc_graph_input_name(const struct pc_graph *g);
/* Declared input shape; dim[0] is -1 when the batch axis is dynamic. */
const struct pc_shape *pc_graph_input_shape(const struct pc_graph *g);
const char *pc_graph_output_name(const struct pc_graph *g);
enum pc_output_kind pc_graph_output_kind(const struct pc_graph *g);
/* Classes: the output's last dimension (the vocabulary of a sequence
 * model). */
int64_t pc_graph_classes(const struct pc_graph *g);
/* Positions per sample: T of an [N, T, V] output, 1 of an [N, C] one. */
int64_t pc_graph_positions(const struct pc_graph *g);
/* FLOAT, or INT64 for a model fed token ids. */
enum pc_dtype pc_graph_input_dtype(const struct pc_graph *g);

int pc_graph_node_count(const struct pc_graph *g);
const char *pc_graph_node_name(const struct pc_graph *g, int i);
const char *pc_graph_node_op(const struct pc_graph *g, int i);
/* Node k's inputs, 0 .. pc_graph_node_inputs - 1 (an omitted optional one
 * included). For input i: its value's name (NULL when omitted), the index
 * in the parameter table when it is a weight (else -1), the node producing
 * it when it is an activation (else -1: the data input, an initializer). */
int pc_graph_node_inputs(const struct pc_graph *g, int k);
const char *pc_graph_node_input_name(const struct pc_graph *g, int k, int i);
int pc_graph_node_input_param(const struct pc_graph *g, int k, int i);
int pc_graph_node_input_producer(const struct pc_graph *g, int k, int i);
/* Node k's integer attribute called name, or dflt when it has none (an op's
 * documented default). */
int64_t pc_graph_node_attr_int(const struct pc_graph *g, int k, const char *name, int64_t dflt);
/* The name of node k's output i, or NULL when k or i is out of range. */
const char *pc_graph_node_output_name(const struct pc_graph *g, int k, int i);
/* Whether node k's op is linear in its weights for a fixed input 0 (Gemm,
 * MatMul, Conv: the op table's linear column). */
int pc_graph_node_linear_op(const struct pc_graph *g, int k);
/* Whether node k's input i is a buffer training moves in place
 * (BatchNormalization's running mean and variance: the op table's
 * stats_inputs column; plans hold their own copies, pc_plan_stats). */
int pc_graph_node_stats_input(const struct pc_graph *g, int k, int i);
/* Whether node k's output is a linear function of its weights: a linear op
 * whose input 0 is an activation or the data input and whose other inputs
 * are no activations (the study's linear-layer shortcut). */
int pc_graph_node_linear(const struct pc_graph *g, int k);
/* How many node inputs read parameter i (a tied weight: several). */
int pc_graph_param_reads(const struct pc_graph *g, int i);

/* Corruptible parameters: one flat float buffer and its table. */
int64_t pc_graph_param_count(const struct pc_graph *g);
int pc_graph_param_tensors(const struct pc_graph *g);
const struct pc_param *pc_graph_param(const struct pc_graph *g, int i);
const float *pc_graph_params(const struct pc_graph *g);
/* The values of a float initializer that is not a weight (BatchNormalization's
 * running statistics, as loaded: training moves a plan's copies,
 * pc_plan_stats), or NULL; *numel receives their count. */
const float *pc_graph_buffer(const struct pc_graph *g, const char *name, int64_t *numel);
/* Index of the parameter tensor called name, or -1. */
int pc_graph_find_param(const struct pc_graph *g, const char *name);

#endif
