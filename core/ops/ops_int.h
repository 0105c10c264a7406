/* The op table and what every op may use.
 *
 * An op is a row of pc_op_table (ops/table.c): its ONNX name, the attributes
 * it accepts, its input/output arity and four functions:
 *
 *   init     at load: parse and check attributes into node->priv (a plain
 *            struct freed with free()); reject what the op cannot do, naming
 *            the node, op and attribute. May be NULL.
 *   infer    at prepare: from the input shapes (and the values of static
 *            int64 inputs) set every output's shape and dtype with
 *            pc_op_set_output, fold int64 results with pc_op_static_int64,
 *            and reserve workspace. Runs for every plan, including the
 *            batch-1 check at load, so any shape error surfaces at load.
 *   forward  computes the outputs from the inputs. NULL when every output
 *            is static (folded at prepare) or aliases its input.
 *   backward ADDS the gradient of each input that has one (t->grad != NULL)
 *            from the output gradients. Never assigns: a value feeding
 *            several nodes receives the sum, and weight gradients
 *            accumulate across batches. NULL when no input can need one.
 *
 * forward and backward must not allocate; scratch memory is p->ws, sized by
 * what infer reserved (shared: one node runs at a time). */
#ifndef PARACORR_OPS_INT_H
#define PARACORR_OPS_INT_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "paracorr/error.h"
#include "paracorr/graph.h"

/* PC_HOT (paracorr/tensor.h): memory-bound loops built for the CPU's width. */

/* e^x for x <= 0, branch-free so that the cell loops vectorize (glibc's
 * expf, tanhf and erff are a call per element: two thirds of an LSTM's
 * time, a third of a GPT's with GELU); softmax's x - max as well. x = n ln2 + r with
 * |r| <= ln2 / 2 (ln2 in two parts, Cody and Waite), e^r by its Taylor
 * polynomial to degree 7, 2^n written into the exponent bits; within about
 * 2 ulp. Arguments below -87.33 (where 2^n would leave the normal range)
 * give 0, by a multiply rather than a select so GCC still vectorizes; NaN
 * stays NaN. */
static inline float pc_exp_nonpos(float x)
{
	const float lo = -87.33f, shifter = 12582912.0f; /* 1.5 * 2^23 */
	float xc, t, n, r, p, scale;
	uint32_t bits;

	xc = x < lo ? lo : x;
	xc = xc > 0.0f ? 0.0f : xc;
	t = xc * 1.44269504f + shifter;
	n = t - shifter;
	r = xc - n * 0.693359375f;
	r = r - n * -2.12194440e-4f;
	p = 1.0f / 5040.0f;
	p = p * r + 1.0f / 720.0f;
	p = p * r + 1.0f / 120.0f;
	p = p * r + 1.0f / 24.0f;
	p = p * r + 1.0f / 6.0f;
	p = p * r + 0.5f;
	p = p * r + 1.0f;
	p = p * r + 1.0f;
	memcpy(&bits, &t, sizeof(bits));
	bits = (bits - 0x4B400000u + 127u) << 23; /* t's low bits hold n */
	memcpy(&scale, &bits, sizeof(scale));
	/* a sum, not an or: GCC turns (x >= lo) | (x != x) into branches in some loops */
	return p * scale * ((float)(x >= lo) + (float)(x != x));
}

#include "paracorr/tensor.h"

#define PC_OP_LIST(X)                                                                                             \
	X(GEMM)                                                                                                      \
	X(MATMUL)                                                                                                    \
	X(ADD)                                                                                                       \
	X(SUB)                                                                                                       \
	X(MUL)                                                                                                       \
	X(DIV)                                                                                                       \
	X(RELU)                                                                                                      \
	X(LEAKYRELU)                                                                                                 \
	X(SIGMOID)                                                                                                   \
	X(TANH)                                                                                                      \
	X(SOFTMAX)                                                                                                   \
	X(LOGSOFTMAX)                                                                                                \
	X(CLIP)                                                                                                      \
	X(CONV)                                                                                                      \
	X(MAXPOOL)                                                                                                   \
	X(AVERAGEPOOL)                                                                                               \
	X(GLOBALAVERAGEPOOL)                                                                                         \
	X(BATCHNORM)                                                                                                 \
	X(FLATTEN)                                                                                                   \
	X(RESHAPE)                                                                                                   \
	X(TRANSPOSE)                                                                                                 \
	X(CONCAT)                                                                                                    \
	X(PAD)                                                                                                       \
	X(IDENTITY)                                                                                                  \
	X(DROPOUT)                                                                                                   \
	X(CONSTANT)                                                                                                  \
	X(SHAPE)                                                                                                     \
	X(GATHER)                                                                                                    \
	X(UNSQUEEZE)                                                                                                 \
	X(SQUEEZE)                                                                                                   \
	X(CAST)                                                                                                      \
	X(ABS)                                                                                                       \
	X(NEG)                                                                                                       \
	X(RECIPROCAL)                                                                                                \
	X(SQRT)                                                                                                      \
	X(EXP)                                                                                                       \
	X(LOG)                                                                                                       \
	X(ERF)                                                                                                       \
	X(HARDSWISH)                                                                                                 \
	X(HARDSIGMOID)                                                                                               \
	X(POW)                                                                                                       \
	X(REDUCESUM)                                                                                                 \
	X(REDUCEMEAN)                                                                                                \
	X(REDUCEMAX)                                                                                                 \
	X(REDUCEMIN)                                                                                                 \
	X(LAYERNORM)                                                                                                 \
	X(LSTM)                                                                                                      \
	X(GRU)                                                                                                       \
	X(EQUAL)                                                                                                     \
	X(LESS)                                                                                                      \
	X(GREATER)                                                                                                   \
	X(LESSOREQUAL)                                                                                               \
	X(GREATEROREQUAL)                                                                                            \
	X(NOT)                                                                                                       \
	X(AND)                                                                                                       \
	X(OR)                                                                                                        \
	X(XOR)                                                                                                       \
	X(WHERE)                                                                                                     \
	X(MOD)                                                                                                       \
	X(CONSTANTOFSHAPE)                                                                                           \
	X(RANGE)                                                                                                     \
	X(TRILU)                                                                                                     \
	X(SLICE)                                                                                                     \
	X(SPLIT)                                                                                                     \
	X(EXPAND)                                                                                                    \
	X(TILE)                                                                                                      \
	X(SCATTERND)                                                                                                 \
	X(QUANTIZELINEAR)                                                                                            \
	X(DEQUANTIZELINEAR)

enum pc_op {
#define PC_OP_ENUM(id) PC_OP_##id,
	PC_OP_LIST(PC_OP_ENUM)
#undef PC_OP_ENUM
	PC_OP_COUNT
};

struct pc_node;
struct pc_plan;
struct pc_tensor;

struct pc_op_def {
	const char *name;
	const char *attrs; /* accepted attribute names, comma-separated */
	int min_in, max_in, min_out, max_out;
	/* Bit i set: a float initializer at input i is a buffer, not a trained
	 * weight (BatchNormalization's running mean and variance). */
	unsigned buffer_inputs;
	/* Output 0 shares input 0's data and gradient (reshape-like ops): the
	 * plan aliases the buffers and the op needs no forward or backward. */
	int alias;
	/* The forward writes relu(output 0) to p->relu_out as well, when the
	 * plan sets it (a Relu follows and nothing else reads the output). */
	int relu_epilogue;
	/* Outputs are positional (Split): an unused one is left unwritten but
	 * still counts, instead of being trimmed off the end at load. */
	int keep_outputs;
	/* Bit i set: input i is a running statistic (BatchNormalization's mean
	 * and variance), which a training plan with update_stats moves. Buffers
	 * too (buffer_inputs); unlike Clip's bounds, never a weight in disguise. */
	unsigned stats_inputs;
	/* An alias that a PC_PLAN_TRAIN plan runs instead (Dropout draws its
	 * masks when training and is the identity otherwise). */
	int train_unalias;
	/* Output 0 is linear in the node's inputs 1.. for a fixed input 0 (a
	 * weight times the activation): the study's linear-layer shortcut and
	 * the layer groups' bias rule rely on it. */
	int linear;
	/* Bytes per element of output 0 that record the op's piecewise choice
	 * (pc_plan_set_gates): which piece of a Relu or Clip, which input of a
	 * MaxPool window. 0: the op has none to freeze. */
	size_t gate_bytes;
	/* FLOPs of one forward pass at the plan's shapes; NULL: one per output
	 * element. Only the study's cost model reads it. */
	double (*flops)(const struct pc_plan *p, const struct pc_node *n);
	int (*init)(struct pc_node *n, struct pc_error *err);
	int (*infer)(struct pc_plan *p, const struct pc_node *n, struct pc_error *err);
	void (*forward)(struct pc_plan *p, const struct pc_node *n);
	void (*backward)(struct pc_plan *p, const struct pc_node *n);
};

extern const struct pc_op_def pc_op_table[PC_OP_COUNT];

/* PC_OP_COUNT when name is not an op of the table. */
enum pc_op pc_op_lookup(const char *name);

/* --- for init: attributes and errors ------------------------------------ */

const struct pc_attr *pc_attr_get(const struct pc_node *n, const char *name);
/* Each fills *out with the attribute or def when absent; a wrong type is an
 * error naming the node and attribute. */
int pc_attr_int(const struct pc_node *n, const char *name, int64_t def, int64_t *out, struct pc_error *err);
int pc_attr_float(const struct pc_node *n, const char *name, float def, float *out, struct pc_error *err);
int pc_attr_string(const struct pc_node *n, const char *name, const char *def, const char **out,
		   struct pc_error *err);
/* INTS into out[0..max); *count = number read, -1 when absent. More than
 * max values is an error. */
int pc_attr_ints(const struct pc_node *n, const char *name, int max, int64_t *out, int *count,
		 struct pc_error *err);

/* Attributes of the 2-D window ops (Conv, MaxPool, AveragePool). */
enum pc_auto_pad { PC_AUTO_PAD_NOTSET, PC_AUTO_PAD_VALID, PC_AUTO_PAD_SAME_UPPER, PC_AUTO_PAD_SAME_LOWER };
/* Values above this in kernel, stride, dilation, pads or group are refused,
 * so that a hostile file cannot overflow the size arithmetic. */
#define PC_WINDOW_ATTR_MAX ((int64_t)1 << 20)
/* auto_pad (default NOTSET); *name receives the string for messages. */
int pc_attr_auto_pad(const struct pc_node *n, enum pc_auto_pad *out, const char **name, struct pc_error *err);
/* An INTS attribute: absent (*present = 0), or exactly `want` values, each
 * in min..PC_WINDOW_ATTR_MAX. */
int pc_attr_window_ints(const struct pc_node *n, const char *name, int want, int64_t min, int64_t *out,
			int *present, struct pc_error *err);

/* Record an error whose `where` is "node NAME (OP)". */
int pc_node_error(struct pc_error *err, const struct pc_node *n, enum pc_status code, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* --- for infer, forward, backward: tensors of the plan ------------------- */

/* Input i of the node, or NULL when it is omitted (or i >= n_in). */
struct pc_tensor *pc_op_in(struct pc_plan *p, const struct pc_node *n, int i);
struct pc_tensor *pc_op_out(struct pc_plan *p, const struct pc_node *n, int i);
int pc_op_n_in(const struct pc_node *n);
int pc_op_n_out(const struct pc_node *n);
void *pc_op_priv(const struct pc_node *n);
int pc_op_opset(const struct pc_node *n);
float *pc_op_ws(struct pc_plan *p);

/* Set output i's dtype and shape; checks the element count. */
int pc_op_set_output(struct pc_plan *p, const struct pc_node *n, int i, enum pc_dtype dtype,
		     const struct pc_shape *shape, struct pc_error *err);
/* Set output i as a static int64 / float tensor of that shape and return its
 * storage (plan-owned) for infer to fill; NULL on error. */
int64_t *pc_op_static_int64(struct pc_plan *p, const struct pc_node *n, int i, const struct pc_shape *shape,
			    struct pc_error *err);
float *pc_op_static_float(struct pc_plan *p, const struct pc_node *n, int i, const struct pc_shape *shape,
			  struct pc_error *err);
/* The same for any dtype (float data, or int64_t per element for INT64 and
 * BOOL). Ops rarely need these: the plan folds a node whose inputs are all
 * static by running its forward at prepare. */
void *pc_op_static(struct pc_plan *p, const struct pc_node *n, int i, enum pc_dtype dtype,
		   const struct pc_shape *shape, struct pc_error *err);
/* Workspace of at least `floats` floats for forward and backward. */
void pc_op_reserve_ws(struct pc_plan *p, size_t floats);
/* Memory of the node's own that lasts from one forward call to the next in
 * this plan (a cache of something derived from the weights), zeroed when
 * the plan is made. Reserved by infer; NULL when none was. */
void pc_op_reserve_state(struct pc_plan *p, const struct pc_node *n, size_t floats);
float *pc_op_state(struct pc_plan *p, const struct pc_node *n);
/* The node's gate record (gate_bytes per element of output 0) while gates
 * are on, else NULL; pc_op_gates_frozen says whether the pass must follow
 * it (PC_GATES_FROZEN) or write it (PC_GATES_RECORD). */
void *pc_op_gate(struct pc_plan *p, const struct pc_node *n);
int pc_op_gates_frozen(const struct pc_plan *p);

/* Input i must exist and be float / be a static int64 tensor. */
int pc_op_need_float(struct pc_plan *p, const struct pc_node *n, int i, struct pc_error *err);
int pc_op_need_static_int64(struct pc_plan *p, const struct pc_node *n, int i, struct pc_error *err);

/* Input i as a static int64 list of at most max values (a shape, axes,
 * starts); a scalar counts as one value. *vals points into the tensor. */
int pc_op_static_list(struct pc_plan *p, const struct pc_node *n, int i, int max, const int64_t **vals, int *count,
		      struct pc_error *err);
/* Row-major strides of a validated shape, in elements. */
void pc_shape_strides(const struct pc_shape *s, int64_t *stride);

/* Numpy broadcasting of a and b into out; PC_ERR_SHAPE when incompatible. */
int pc_broadcast_shape(const struct pc_shape *a, const struct pc_shape *b, struct pc_shape *out);

/* Normalise an axis in [-rank, rank) to [0, rank); -1 when out of range. */
int pc_axis(int64_t axis, int rank);

/* --- op families: one file each under core/ops/ ------------------------- */

#define PC_OP_DECLARE(fn)                                                                                         \
	int fn##_init(struct pc_node *n, struct pc_error *err);                                                   \
	int fn##_infer(struct pc_plan *p, const struct pc_node *n, struct pc_error *err);                         \
	void fn##_forward(struct pc_plan *p, const struct pc_node *n);                                            \
	void fn##_backward(struct pc_plan *p, const struct pc_node *n)

/* gemm.c */
PC_OP_DECLARE(pc_gemm);
PC_OP_DECLARE(pc_matmul);
/* elementwise.c: Add, Sub, Mul, Div share one implementation */
PC_OP_DECLARE(pc_binary);
/* activation.c */
PC_OP_DECLARE(pc_relu);
PC_OP_DECLARE(pc_leakyrelu);
PC_OP_DECLARE(pc_sigmoid);
PC_OP_DECLARE(pc_tanh);
PC_OP_DECLARE(pc_softmax);
PC_OP_DECLARE(pc_logsoftmax);
PC_OP_DECLARE(pc_clip);
/* conv.c */
PC_OP_DECLARE(pc_conv);
/* pool.c */
PC_OP_DECLARE(pc_maxpool);
PC_OP_DECLARE(pc_avgpool);
PC_OP_DECLARE(pc_globalavgpool);
/* norm.c */
PC_OP_DECLARE(pc_batchnorm);
PC_OP_DECLARE(pc_layernorm);
/* shape.c */
PC_OP_DECLARE(pc_flatten);
PC_OP_DECLARE(pc_reshape);
PC_OP_DECLARE(pc_transpose);
PC_OP_DECLARE(pc_concat);
PC_OP_DECLARE(pc_pad);
PC_OP_DECLARE(pc_identity);
PC_OP_DECLARE(pc_dropout);
PC_OP_DECLARE(pc_constant);
PC_OP_DECLARE(pc_shapeop);
PC_OP_DECLARE(pc_unsqueeze);
PC_OP_DECLARE(pc_squeeze);
PC_OP_DECLARE(pc_cast);
/* unary.c: Abs, Neg, Reciprocal, Sqrt, Exp, Log, Erf and HardSwish share one
 * implementation */
PC_OP_DECLARE(pc_unary);
PC_OP_DECLARE(pc_hardsigmoid);
PC_OP_DECLARE(pc_pow);
/* reduce.c: ReduceSum, ReduceMean, ReduceMax, ReduceMin share one implementation */
PC_OP_DECLARE(pc_reduce);
/* rnn.c */
PC_OP_DECLARE(pc_lstm);
PC_OP_DECLARE(pc_gru);
/* logic.c: the comparisons share one implementation, And/Or/Xor another */
PC_OP_DECLARE(pc_compare);
PC_OP_DECLARE(pc_not);
PC_OP_DECLARE(pc_logical);
PC_OP_DECLARE(pc_where);
PC_OP_DECLARE(pc_mod);
PC_OP_DECLARE(pc_constofshape);
PC_OP_DECLARE(pc_range);
PC_OP_DECLARE(pc_trilu);
/* index.c */
PC_OP_DECLARE(pc_gather);
PC_OP_DECLARE(pc_slice);
PC_OP_DECLARE(pc_split);
PC_OP_DECLARE(pc_expand);
PC_OP_DECLARE(pc_tile);
PC_OP_DECLARE(pc_scatternd);
/* quant.c */
PC_OP_DECLARE(pc_quantize);
PC_OP_DECLARE(pc_dequantize);

#endif
