/* ops/table: every op paracorr runs, one row each. Adding an op is adding a
 * row here and its functions in the family file; nothing else dispatches on
 * op names, and what the plan, the study, the layer groups and training
 * need to know of an op (its FLOPs, whether it is linear in its weights,
 * which inputs are buffers or running statistics, how it behaves when
 * training) is a column of its row.
 *
 * Each row is a macro OP_<ID>, and the table is built from PC_OP_LIST (the
 * list the enum is made from) by naming OP_<ID> for every <ID>: an op of
 * the enum without a row does not compile ("OP_<ID> undeclared"), which a
 * designated initializer alone would leave as a silent all-NULL row. */
#include "../graph_int.h"

#define ARITY(a, b, c, d) .min_in = a, .max_in = b, .min_out = c, .max_out = d
#define ROW(fn) .init = fn##_init, .infer = fn##_infer, .forward = fn##_forward, .backward = fn##_backward
#define ROW_NOINIT(fn) .infer = fn##_infer, .forward = fn##_forward, .backward = fn##_backward

/* FLOPs of one forward pass of the node, multiply-adds counting twice. Ops
 * without a flops column count one per output element (pc_plan_node_flops). */
static double conv_flops(const struct pc_plan *p, const struct pc_node *n)
{
	const struct pc_tensor *out = &p->t[n->out[0]], *w = &p->t[n->in[1]];

	return 2.0 * (double)out->numel * (double)(w->numel / w->shape.dim[0]);
}

static double gemm_flops(const struct pc_plan *p, const struct pc_node *n)
{
	const struct pc_tensor *out = &p->t[n->out[0]];

	return 2.0 * (double)out->numel * (double)(p->t[n->in[0]].numel / out->shape.dim[0]);
}

static double matmul_flops(const struct pc_plan *p, const struct pc_node *n)
{
	const struct pc_tensor *out = &p->t[n->out[0]], *a = &p->t[n->in[0]];

	return 2.0 * (double)out->numel * (double)a->shape.dim[a->shape.ndim - 1];
}

#define OP_GEMM {.name = "Gemm", .attrs = "alpha,beta,transA,transB", ARITY(2, 3, 1, 1), .linear = 1, \
	.flops = gemm_flops, ROW(pc_gemm)}
#define OP_MATMUL {.name = "MatMul", .attrs = "", ARITY(2, 2, 1, 1), .linear = 1, .flops = matmul_flops, \
	ROW_NOINIT(pc_matmul)}
#define OP_ADD {.name = "Add", .attrs = "", ARITY(2, 2, 1, 1), .relu_epilogue = 1, ROW_NOINIT(pc_binary)}
#define OP_SUB {.name = "Sub", .attrs = "", ARITY(2, 2, 1, 1), ROW_NOINIT(pc_binary)}
#define OP_MUL {.name = "Mul", .attrs = "", ARITY(2, 2, 1, 1), ROW_NOINIT(pc_binary)}
#define OP_DIV {.name = "Div", .attrs = "", ARITY(2, 2, 1, 1), ROW_NOINIT(pc_binary)}
#define OP_RELU {.name = "Relu", .attrs = "", ARITY(1, 1, 1, 1), .gate_bytes = 1, ROW_NOINIT(pc_relu)}
#define OP_LEAKYRELU {.name = "LeakyRelu", .attrs = "alpha", ARITY(1, 1, 1, 1), .gate_bytes = 1, \
	ROW(pc_leakyrelu)}
#define OP_SIGMOID {.name = "Sigmoid", .attrs = "", ARITY(1, 1, 1, 1), ROW_NOINIT(pc_sigmoid)}
#define OP_TANH {.name = "Tanh", .attrs = "", ARITY(1, 1, 1, 1), ROW_NOINIT(pc_tanh)}
#define OP_SOFTMAX {.name = "Softmax", .attrs = "axis", ARITY(1, 1, 1, 1), ROW(pc_softmax)}
#define OP_LOGSOFTMAX {.name = "LogSoftmax", .attrs = "axis", ARITY(1, 1, 1, 1), ROW(pc_logsoftmax)}
#define OP_CLIP {.name = "Clip", .attrs = "", ARITY(1, 3, 1, 1), .buffer_inputs = (1u << 1) | (1u << 2), \
	.gate_bytes = 1, ROW_NOINIT(pc_clip)}
#define OP_CONV {.name = "Conv", \
	.attrs = "auto_pad,dilations,group,kernel_shape,pads,strides", ARITY(2, 3, 1, 1), \
	.relu_epilogue = 1, .linear = 1, .flops = conv_flops, ROW(pc_conv)}
#define OP_MAXPOOL {.name = "MaxPool", \
	.attrs = "auto_pad,ceil_mode,dilations,kernel_shape,pads,storage_order,strides", ARITY(1, 1, 1, 1), \
	.gate_bytes = sizeof(int64_t), ROW(pc_maxpool)}
#define OP_AVERAGEPOOL {.name = "AveragePool", \
	.attrs = "auto_pad,ceil_mode,count_include_pad,kernel_shape,pads,strides", ARITY(1, 1, 1, 1), \
	ROW(pc_avgpool)}
#define OP_GLOBALAVERAGEPOOL {.name = "GlobalAveragePool", .attrs = "", ARITY(1, 1, 1, 1), \
	ROW_NOINIT(pc_globalavgpool)}
#define OP_BATCHNORM {.name = "BatchNormalization", \
	.attrs = "epsilon,momentum,training_mode", ARITY(5, 5, 1, 5), \
	.buffer_inputs = (1u << 3) | (1u << 4), .stats_inputs = (1u << 3) | (1u << 4), \
	ROW(pc_batchnorm)}
#define OP_FLATTEN {.name = "Flatten", .attrs = "axis", ARITY(1, 1, 1, 1), .alias = 1, .init = pc_flatten_init, \
	.infer = pc_flatten_infer}
#define OP_RESHAPE {.name = "Reshape", .attrs = "allowzero", ARITY(2, 2, 1, 1), .alias = 1, .init = pc_reshape_init, \
	.infer = pc_reshape_infer}
#define OP_TRANSPOSE {.name = "Transpose", .attrs = "perm", ARITY(1, 1, 1, 1), ROW(pc_transpose)}
#define OP_CONCAT {.name = "Concat", .attrs = "axis", ARITY(1, 1024, 1, 1), ROW(pc_concat)}
#define OP_PAD {.name = "Pad", .attrs = "mode", ARITY(1, 3, 1, 1), .buffer_inputs = 1u << 2, ROW(pc_pad)}
#define OP_IDENTITY {.name = "Identity", .attrs = "", ARITY(1, 1, 1, 1), .alias = 1, .infer = pc_identity_infer}
/* inference: Dropout is the identity (an alias; an unused mask output is
 * dropped at load); a PC_PLAN_TRAIN plan runs it and draws masks */
#define OP_DROPOUT {.name = "Dropout", .attrs = "seed,ratio", ARITY(1, 3, 1, 2), .alias = 1, .train_unalias = 1, \
	.infer = pc_dropout_infer, .forward = pc_dropout_forward, .backward = pc_dropout_backward}
#define OP_CONSTANT {.name = "Constant", \
	.attrs = "value,value_float,value_floats,value_int,value_ints", ARITY(0, 0, 1, 1), \
	.init = pc_constant_init, \
	.infer = pc_constant_infer}
#define OP_SHAPE {.name = "Shape", .attrs = "start,end", ARITY(1, 1, 1, 1), .init = pc_shapeop_init, \
	.infer = pc_shapeop_infer}
#define OP_GATHER {.name = "Gather", .attrs = "axis", ARITY(2, 2, 1, 1), ROW(pc_gather)}
#define OP_UNSQUEEZE {.name = "Unsqueeze", .attrs = "axes", ARITY(1, 2, 1, 1), .alias = 1, \
	.init = pc_unsqueeze_init, .infer = pc_unsqueeze_infer}
#define OP_SQUEEZE {.name = "Squeeze", .attrs = "axes", ARITY(1, 2, 1, 1), .alias = 1, .init = pc_squeeze_init, \
	.infer = pc_squeeze_infer}
#define OP_CAST {.name = "Cast", .attrs = "to", ARITY(1, 1, 1, 1), ROW(pc_cast)}
#define OP_ABS {.name = "Abs", .attrs = "", ARITY(1, 1, 1, 1), ROW(pc_unary)}
#define OP_NEG {.name = "Neg", .attrs = "", ARITY(1, 1, 1, 1), ROW(pc_unary)}
#define OP_RECIPROCAL {.name = "Reciprocal", .attrs = "", ARITY(1, 1, 1, 1), ROW(pc_unary)}
#define OP_SQRT {.name = "Sqrt", .attrs = "", ARITY(1, 1, 1, 1), ROW(pc_unary)}
#define OP_EXP {.name = "Exp", .attrs = "", ARITY(1, 1, 1, 1), ROW(pc_unary)}
#define OP_LOG {.name = "Log", .attrs = "", ARITY(1, 1, 1, 1), ROW(pc_unary)}
#define OP_ERF {.name = "Erf", .attrs = "", ARITY(1, 1, 1, 1), ROW(pc_unary)}
#define OP_HARDSWISH {.name = "HardSwish", .attrs = "", ARITY(1, 1, 1, 1), ROW(pc_unary)}
#define OP_HARDSIGMOID {.name = "HardSigmoid", .attrs = "alpha,beta", ARITY(1, 1, 1, 1), ROW(pc_hardsigmoid)}
/* a float initializer exponent is a weight (torch writes x ** c with a
 * Constant node, and an initializer only for an nn.Parameter) */
#define OP_POW {.name = "Pow", .attrs = "", ARITY(2, 2, 1, 1), ROW_NOINIT(pc_pow)}
#define OP_REDUCESUM {.name = "ReduceSum", .attrs = "axes,keepdims,noop_with_empty_axes", ARITY(1, 2, 1, 1), \
	ROW(pc_reduce)}
#define OP_REDUCEMEAN {.name = "ReduceMean", .attrs = "axes,keepdims,noop_with_empty_axes", ARITY(1, 2, 1, 1), \
	ROW(pc_reduce)}
#define OP_REDUCEMAX {.name = "ReduceMax", .attrs = "axes,keepdims,noop_with_empty_axes", ARITY(1, 2, 1, 1), \
	ROW(pc_reduce)}
#define OP_REDUCEMIN {.name = "ReduceMin", .attrs = "axes,keepdims,noop_with_empty_axes", ARITY(1, 2, 1, 1), \
	ROW(pc_reduce)}
/* Mean and InvStdDev (outputs 1, 2) are kept only when something reads them */
#define OP_LAYERNORM {.name = "LayerNormalization", .attrs = "axis,epsilon,stash_type", ARITY(2, 3, 1, 3), \
	ROW(pc_layernorm)}
/* the unsupported ones (clip, alpha/beta, input_forget=1, P) are
 * accepted here so that init can say why it refuses them */
#define OP_LSTM {.name = "LSTM", \
	.attrs = "activation_alpha,activation_beta,activations,clip,direction,hidden_size,input_forget," \
	"layout", \
	ARITY(3, 8, 1, 3), ROW(pc_lstm)}
#define OP_GRU {.name = "GRU", \
	.attrs = "activation_alpha,activation_beta,activations,clip,direction,hidden_size,layout," \
	"linear_before_reset", \
	ARITY(3, 6, 1, 2), ROW(pc_gru)}
/* comparisons and logic yield bool: no gradient flows through them */
#define COMPARE .attrs = "", ARITY(2, 2, 1, 1), .init = pc_compare_init, .infer = pc_compare_infer, \
	.forward = pc_compare_forward
#define OP_EQUAL {.name = "Equal", COMPARE}
#define OP_LESS {.name = "Less", COMPARE}
#define OP_GREATER {.name = "Greater", COMPARE}
#define OP_LESSOREQUAL {.name = "LessOrEqual", COMPARE}
#define OP_GREATEROREQUAL {.name = "GreaterOrEqual", COMPARE}
#define OP_NOT {.name = "Not", .attrs = "", ARITY(1, 1, 1, 1), .infer = pc_not_infer, .forward = pc_not_forward}
#define OP_AND {.name = "And", .attrs = "", ARITY(2, 2, 1, 1), .infer = pc_logical_infer, \
	.forward = pc_logical_forward}
#define OP_OR {.name = "Or", .attrs = "", ARITY(2, 2, 1, 1), .infer = pc_logical_infer, \
	.forward = pc_logical_forward}
#define OP_XOR {.name = "Xor", .attrs = "", ARITY(2, 2, 1, 1), .infer = pc_logical_infer, \
	.forward = pc_logical_forward}
#define OP_WHERE {.name = "Where", .attrs = "", ARITY(3, 3, 1, 1), ROW_NOINIT(pc_where)}
#define OP_MOD {.name = "Mod", .attrs = "fmod", ARITY(2, 2, 1, 1), ROW(pc_mod)}
#define OP_CONSTANTOFSHAPE {.name = "ConstantOfShape", .attrs = "value", ARITY(1, 1, 1, 1), \
	.init = pc_constofshape_init, .infer = pc_constofshape_infer, \
	.forward = pc_constofshape_forward}
#define OP_RANGE {.name = "Range", .attrs = "", ARITY(3, 3, 1, 1), .infer = pc_range_infer, \
	.forward = pc_range_forward}
#define OP_TRILU {.name = "Trilu", .attrs = "upper", ARITY(1, 2, 1, 1), ROW(pc_trilu)}
#define OP_SLICE {.name = "Slice", .attrs = "", ARITY(3, 5, 1, 1), ROW_NOINIT(pc_slice)}
#define OP_SPLIT {.name = "Split", .attrs = "axis,split", ARITY(1, 2, 1, 1024), .keep_outputs = 1, \
	ROW(pc_split)}
#define OP_EXPAND {.name = "Expand", .attrs = "", ARITY(2, 2, 1, 1), ROW_NOINIT(pc_expand)}
#define OP_TILE {.name = "Tile", .attrs = "", ARITY(2, 2, 1, 1), ROW_NOINIT(pc_tile)}
#define OP_SCATTERND {.name = "ScatterND", .attrs = "reduction", ARITY(3, 3, 1, 1), ROW(pc_scatternd)}

/* scale and zero point (inputs 1, 2) are constants, never weights; the
 * integers DequantizeLinear reads are (the loader's stored integers) */
static double quantize_flops(const struct pc_plan *p, const struct pc_node *n)
{
	return 4.0 * (double)p->t[n->out[0]].numel; /* divide, round, add, clamp */
}

static double dequantize_flops(const struct pc_plan *p, const struct pc_node *n)
{
	return 2.0 * (double)p->t[n->out[0]].numel; /* subtract, multiply */
}

#define OP_QUANTIZELINEAR {.name = "QuantizeLinear", .attrs = "axis", ARITY(2, 3, 1, 1), \
	.buffer_inputs = (1u << 1) | (1u << 2), .flops = quantize_flops, ROW(pc_quantize)}
#define OP_DEQUANTIZELINEAR {.name = "DequantizeLinear", .attrs = "axis", ARITY(2, 3, 1, 1), \
	.buffer_inputs = (1u << 1) | (1u << 2), .flops = dequantize_flops, ROW(pc_dequantize)}

#define OP_ENTRY(id) [PC_OP_##id] = OP_##id,
const struct pc_op_def pc_op_table[] = {PC_OP_LIST(OP_ENTRY)};
#undef OP_ENTRY

_Static_assert(sizeof(pc_op_table) / sizeof(pc_op_table[0]) == PC_OP_COUNT, "op table out of step with enum");
