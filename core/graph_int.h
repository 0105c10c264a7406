/* Internals of graph and plan, shared with the ops and the ONNX loader. */
#ifndef PARACORR_GRAPH_INT_H
#define PARACORR_GRAPH_INT_H

#include <stddef.h>
#include <stdint.h>

#include "paracorr/graph.h"
#include "paracorr/plan.h"
#include "ops/ops_int.h"

enum pc_value_kind {
	PC_VALUE_ACT,	/* produced by a node */
	PC_VALUE_INPUT, /* the data input */
	PC_VALUE_PARAM, /* corruptible float initializer, lives in g->params */
	PC_VALUE_CONST, /* buffer (BN statistics) or int64 initializer */
};

struct pc_value {
	char *name;
	enum pc_value_kind kind;
	enum pc_dtype dtype;
	struct pc_shape shape; /* INPUT: declared (-1 = symbolic); initializers: exact */
	int producer;	       /* node index, -1 for inputs and initializers */
	int param;	       /* index into g->ptab, or -1 */
	float *fdata;	       /* PARAM: into g->params; CONST float: owned */
	int64_t *idata;	       /* CONST int64 or bool: owned */
	int first_consumer;    /* node index, -1 when unused */
	enum pc_stored_type stored; /* an int8 / uint8 initializer: its integers are fdata */
};

struct pc_node {
	char *name;
	char *op_type;
	enum pc_op op; /* PC_OP_COUNT while unknown */
	int opset;
	int n_in, n_out;
	int *in;  /* value indices; -1 = omitted optional input */
	int *out; /* value indices */
	char **in_names; /* until finish resolves them */
	int n_attr;
	struct pc_attr *attr; /* deep copies, owned */
	void *priv;	      /* the op's parsed attributes (init), freed with free() */
};

struct pc_name_map {
	int *slot; /* value index + 1; 0 = empty */
	size_t cap;
};

struct pc_graph {
	int opset;
	int finished;
	struct pc_value *values;
	int n_values, cap_values;
	struct pc_node *nodes; /* execution order after finish */
	int n_nodes, cap_nodes;
	struct pc_name_map names;
	int input;  /* value index */
	int output; /* value index */
	char *output_name;
	enum pc_output_kind out_kind;
	int64_t classes;
	int64_t positions; /* T of an [N, T, V] output; 1 for [N, C] */
	float *params; /* the clean weights, flat */
	int64_t n_params;
	struct pc_param *ptab;
	int n_ptab;
};

/* A value inside a prepared plan. Float values that are not static hold
 * activations; int64 values are always static: known at prepare time. */
struct pc_tensor {
	struct pc_shape shape;
	enum pc_dtype dtype;
	int64_t numel;
	int is_static; /* computed at prepare time; no node runs to make it */
	float *data;   /* float data (read-only when static or a CONST) */
	float *grad;   /* NULL when no gradient flows here */
	int64_t *ival; /* int64 data */
	void *owned;   /* plan-owned storage for static values */
};

struct pc_plan {
	const struct pc_graph *g;
	int batch;
	unsigned flags;
	struct pc_tensor *t; /* one per graph value */
	float *w;	     /* working weights */
	float *gw;	     /* weight gradient accumulator */
	float *act;	     /* activations arena */
	size_t act_floats;
	float *gact; /* activation gradients arena, by liveness; zero outside each gradient's live span */
	size_t gact_floats;
	float *og; /* output gradient, set by the caller before backward */
	float *ws; /* workspace shared by all nodes, one runs at a time */
	size_t ws_floats;
	unsigned char *run_fwd; /* per node */
	unsigned char *run_bwd;
	/* per node: its forward also computes the Relu that is node k+1 and
	 * the only reader of its output (the op's relu_epilogue), saving a
	 * pass over memory; relu_out is that Relu's output while it runs */
	unsigned char *fuse_relu;
	float *relu_out;
	int keep_fused; /* pc_plan_keep_fused; when 0 the op may leave its own
			   output unwritten while relu_out is set */
	int training;	   /* pc_plan_set_training */
	int update_stats;
	int rows;	   /* real samples of the batch; 0 = all (pc_plan_set_rows) */
	uint64_t dropout_seed; /* PC_PLAN_TRAIN: this step's masks */
	int64_t first_row;     /* the batch's first sample in its dataset */
	size_t fold_ws_floats; /* workspace allocated while folding constants */
	int ws_node;	       /* the node whose infer asked for the largest workspace, or -1 */
	size_t static_bytes;   /* constants computed at prepare, in all */
	int *last_use;	     /* per value: the last node reading it, -1 if none */
	float **state;	     /* per node: pc_op_state, owned */
	size_t *state_floats; /* per node, as infer reserved */
	int n_stats;	      /* values training moves (pc_plan_stats) */
	int *stats;	      /* their value indices, in node order */
	enum pc_plan_gates gate_mode; /* pc_plan_set_gates */
	void **gates;		      /* per node: its recorded choices, owned; NULL when off */
	struct pc_plan_op_time *prof; /* per op kind (pc_plan_set_profile), owned; NULL when off */
};

/* Constants computed while preparing a plan (folded nodes, shape
 * arithmetic): at most this many elements per tensor and bytes in all, so
 * that a small hostile file cannot make a large plan. */
#define PC_PLAN_MAX_STATIC_ELEMENTS ((int64_t)1 << 24)
#define PC_PLAN_MAX_STATIC_BYTES ((size_t)256 << 20)
/* Counts bytes of new static storage against the budget; PC_ERR_LIMIT when
 * it would pass it (err untouched: the caller names the node). */
int pc_plan_count_static(struct pc_plan *p, size_t bytes, struct pc_error *err);

int pc_graph_lookup(const struct pc_graph *g, const char *name);
/* pc_graph_add_initializer without the copy: the graph takes data (malloc'd,
 * numel(shape) elements of dtype's size) in every case, freeing it on error.
 * The ONNX loader converts each tensor once, into the buffer the graph keeps. */
int pc_graph_adopt_initializer(struct pc_graph *g, const char *name, const struct pc_shape *shape,
			       enum pc_dtype dtype, void *data, struct pc_error *err);
/* Length of the longest prefix of s[0..n) that is well-formed UTF-8 (RFC
 * 3629: no overlong forms, surrogates or code points past U+10FFFF); n when
 * all of it is. */
size_t pc_utf8_prefix(const unsigned char *s, size_t n);
int pc_plan_aliases(const struct pc_plan *p, const struct pc_node *n);

#endif
