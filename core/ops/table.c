/* ops/table: every op paracorr runs, one row each. Adding an op is adding a
 * row here and its functions in the family file; nothing else dispatches on
 * op names. */
#include "../graph_int.h"

#define ARITY(a, b, c, d) .min_in = a, .max_in = b, .min_out = c, .max_out = d
#define ROW(fn) .init = fn##_init, .infer = fn##_infer, .forward = fn##_forward, .backward = fn##_backward
#define ROW_NOINIT(fn) .infer = fn##_infer, .forward = fn##_forward, .backward = fn##_backward

const struct pc_op_def pc_op_table[PC_OP_COUNT] = {
	[PC_OP_GEMM] = {.name = "Gemm", .attrs = "alpha,beta,transA,transB", ARITY(2, 3, 1, 1), ROW(pc_gemm)},
	[PC_OP_MATMUL] = {.name = "MatMul", .attrs = "", ARITY(2, 2, 1, 1), ROW_NOINIT(pc_matmul)},
	[PC_OP_ADD] = {.name = "Add", .attrs = "", ARITY(2, 2, 1, 1), .relu_epilogue = 1, ROW_NOINIT(pc_binary)},
	[PC_OP_SUB] = {.name = "Sub", .attrs = "", ARITY(2, 2, 1, 1), ROW_NOINIT(pc_binary)},
	[PC_OP_MUL] = {.name = "Mul", .attrs = "", ARITY(2, 2, 1, 1), ROW_NOINIT(pc_binary)},
	[PC_OP_DIV] = {.name = "Div", .attrs = "", ARITY(2, 2, 1, 1), ROW_NOINIT(pc_binary)},
	[PC_OP_RELU] = {.name = "Relu", .attrs = "", ARITY(1, 1, 1, 1), ROW_NOINIT(pc_relu)},
	[PC_OP_LEAKYRELU] = {.name = "LeakyRelu", .attrs = "alpha", ARITY(1, 1, 1, 1), ROW(pc_leakyrelu)},
	[PC_OP_SIGMOID] = {.name = "Sigmoid", .attrs = "", ARITY(1, 1, 1, 1), ROW_NOINIT(pc_sigmoid)},
	[PC_OP_TANH] = {.name = "Tanh", .attrs = "", ARITY(1, 1, 1, 1), ROW_NOINIT(pc_tanh)},
	[PC_OP_SOFTMAX] = {.name = "Softmax", .attrs = "axis", ARITY(1, 1, 1, 1), ROW(pc_softmax)},
	[PC_OP_LOGSOFTMAX] = {.name = "LogSoftmax", .attrs = "axis", ARITY(1, 1, 1, 1), ROW(pc_logsoftmax)},
	[PC_OP_CLIP] = {.name = "Clip", .attrs = "", ARITY(1, 3, 1, 1), .buffer_inputs = (1u << 1) | (1u << 2),
			ROW_NOINIT(pc_clip)},
	[PC_OP_CONV] = {.name = "Conv",
			.attrs = "auto_pad,dilations,group,kernel_shape,pads,strides", ARITY(2, 3, 1, 1),
			.relu_epilogue = 1, ROW(pc_conv)},
	[PC_OP_MAXPOOL] = {.name = "MaxPool",
			   .attrs = "auto_pad,ceil_mode,dilations,kernel_shape,pads,storage_order,strides", ARITY(1, 1, 1, 1),
			   ROW(pc_maxpool)},
	[PC_OP_AVERAGEPOOL] = {.name = "AveragePool",
			       .attrs = "auto_pad,ceil_mode,count_include_pad,kernel_shape,pads,strides", ARITY(1, 1, 1, 1),
			       ROW(pc_avgpool)},
	[PC_OP_GLOBALAVERAGEPOOL] = {.name = "GlobalAveragePool", .attrs = "", ARITY(1, 1, 1, 1),
				     ROW_NOINIT(pc_globalavgpool)},
	[PC_OP_BATCHNORM] = {.name = "BatchNormalization",
			     .attrs = "epsilon,momentum,training_mode", ARITY(5, 5, 1, 5),
			     .buffer_inputs = (1u << 3) | (1u << 4),
			     ROW(pc_batchnorm)},
	[PC_OP_FLATTEN] = {.name = "Flatten", .attrs = "axis", ARITY(1, 1, 1, 1), .alias = 1, .init = pc_flatten_init,
			   .infer = pc_flatten_infer},
	[PC_OP_RESHAPE] = {.name = "Reshape", .attrs = "allowzero", ARITY(2, 2, 1, 1), .alias = 1, .init = pc_reshape_init,
			   .infer = pc_reshape_infer},
	[PC_OP_TRANSPOSE] = {.name = "Transpose", .attrs = "perm", ARITY(1, 1, 1, 1), ROW(pc_transpose)},
	[PC_OP_CONCAT] = {.name = "Concat", .attrs = "axis", ARITY(1, 1024, 1, 1), ROW(pc_concat)},
	[PC_OP_PAD] = {.name = "Pad", .attrs = "mode", ARITY(1, 3, 1, 1), .buffer_inputs = 1u << 2, ROW(pc_pad)},
	[PC_OP_IDENTITY] = {.name = "Identity", .attrs = "", ARITY(1, 1, 1, 1), .alias = 1, .infer = pc_identity_infer},
	/* inference: Dropout is the identity (an alias; an unused mask output is
	 * dropped at load); a PC_PLAN_TRAIN plan runs it and draws masks */
	[PC_OP_DROPOUT] = {.name = "Dropout", .attrs = "seed,ratio", ARITY(1, 3, 1, 2), .alias = 1,
			   .infer = pc_dropout_infer, .forward = pc_dropout_forward, .backward = pc_dropout_backward},
	[PC_OP_CONSTANT] = {.name = "Constant",
			    .attrs = "value,value_float,value_floats,value_int,value_ints", ARITY(0, 0, 1, 1),
			    .init = pc_constant_init,
			    .infer = pc_constant_infer},
	[PC_OP_SHAPE] = {.name = "Shape", .attrs = "start,end", ARITY(1, 1, 1, 1), .init = pc_shapeop_init,
			 .infer = pc_shapeop_infer},
	[PC_OP_GATHER] = {.name = "Gather", .attrs = "axis", ARITY(2, 2, 1, 1), ROW(pc_gather)},
	[PC_OP_UNSQUEEZE] = {.name = "Unsqueeze", .attrs = "axes", ARITY(1, 2, 1, 1), .alias = 1,
			     .init = pc_unsqueeze_init, .infer = pc_unsqueeze_infer},
	[PC_OP_SQUEEZE] = {.name = "Squeeze", .attrs = "axes", ARITY(1, 2, 1, 1), .alias = 1, .init = pc_squeeze_init,
			   .infer = pc_squeeze_infer},
	[PC_OP_CAST] = {.name = "Cast", .attrs = "to", ARITY(1, 1, 1, 1), ROW(pc_cast)},
	[PC_OP_ABS] = {.name = "Abs", .attrs = "", ARITY(1, 1, 1, 1), ROW(pc_unary)},
	[PC_OP_NEG] = {.name = "Neg", .attrs = "", ARITY(1, 1, 1, 1), ROW(pc_unary)},
	[PC_OP_RECIPROCAL] = {.name = "Reciprocal", .attrs = "", ARITY(1, 1, 1, 1), ROW(pc_unary)},
	[PC_OP_SQRT] = {.name = "Sqrt", .attrs = "", ARITY(1, 1, 1, 1), ROW(pc_unary)},
	[PC_OP_EXP] = {.name = "Exp", .attrs = "", ARITY(1, 1, 1, 1), ROW(pc_unary)},
	[PC_OP_LOG] = {.name = "Log", .attrs = "", ARITY(1, 1, 1, 1), ROW(pc_unary)},
	[PC_OP_ERF] = {.name = "Erf", .attrs = "", ARITY(1, 1, 1, 1), ROW(pc_unary)},
	[PC_OP_HARDSWISH] = {.name = "HardSwish", .attrs = "", ARITY(1, 1, 1, 1), ROW(pc_unary)},
	[PC_OP_HARDSIGMOID] = {.name = "HardSigmoid", .attrs = "alpha,beta", ARITY(1, 1, 1, 1), ROW(pc_hardsigmoid)},
	/* a float initializer exponent is a weight (torch writes x ** c with a
	 * Constant node, and an initializer only for an nn.Parameter) */
	[PC_OP_POW] = {.name = "Pow", .attrs = "", ARITY(2, 2, 1, 1), ROW_NOINIT(pc_pow)},
	[PC_OP_REDUCESUM] = {.name = "ReduceSum", .attrs = "axes,keepdims,noop_with_empty_axes", ARITY(1, 2, 1, 1),
			     ROW(pc_reduce)},
	[PC_OP_REDUCEMEAN] = {.name = "ReduceMean", .attrs = "axes,keepdims,noop_with_empty_axes", ARITY(1, 2, 1, 1),
			      ROW(pc_reduce)},
	[PC_OP_REDUCEMAX] = {.name = "ReduceMax", .attrs = "axes,keepdims,noop_with_empty_axes", ARITY(1, 2, 1, 1),
			     ROW(pc_reduce)},
	[PC_OP_REDUCEMIN] = {.name = "ReduceMin", .attrs = "axes,keepdims,noop_with_empty_axes", ARITY(1, 2, 1, 1),
			     ROW(pc_reduce)},
	/* Mean and InvStdDev (outputs 1, 2) are kept only when something reads them */
	[PC_OP_LAYERNORM] = {.name = "LayerNormalization", .attrs = "axis,epsilon,stash_type", ARITY(2, 3, 1, 3),
			     ROW(pc_layernorm)},
	/* the unsupported ones (clip, alpha/beta, input_forget=1, P) are
	 * accepted here so that init can say why it refuses them */
	[PC_OP_LSTM] = {.name = "LSTM",
			.attrs = "activation_alpha,activation_beta,activations,clip,direction,hidden_size,input_forget,"
				 "layout",
			ARITY(3, 8, 1, 3), ROW(pc_lstm)},
	[PC_OP_GRU] = {.name = "GRU",
		       .attrs = "activation_alpha,activation_beta,activations,clip,direction,hidden_size,layout,"
				"linear_before_reset",
		       ARITY(3, 6, 1, 2), ROW(pc_gru)},
	/* comparisons and logic yield bool: no gradient flows through them */
#define COMPARE .attrs = "", ARITY(2, 2, 1, 1), .init = pc_compare_init, .infer = pc_compare_infer, \
		.forward = pc_compare_forward
	[PC_OP_EQUAL] = {.name = "Equal", COMPARE},
	[PC_OP_LESS] = {.name = "Less", COMPARE},
	[PC_OP_GREATER] = {.name = "Greater", COMPARE},
	[PC_OP_LESSOREQUAL] = {.name = "LessOrEqual", COMPARE},
	[PC_OP_GREATEROREQUAL] = {.name = "GreaterOrEqual", COMPARE},
#undef COMPARE
	[PC_OP_NOT] = {.name = "Not", .attrs = "", ARITY(1, 1, 1, 1), .infer = pc_not_infer, .forward = pc_not_forward},
	[PC_OP_AND] = {.name = "And", .attrs = "", ARITY(2, 2, 1, 1), .infer = pc_logical_infer,
		       .forward = pc_logical_forward},
	[PC_OP_OR] = {.name = "Or", .attrs = "", ARITY(2, 2, 1, 1), .infer = pc_logical_infer,
		      .forward = pc_logical_forward},
	[PC_OP_XOR] = {.name = "Xor", .attrs = "", ARITY(2, 2, 1, 1), .infer = pc_logical_infer,
		       .forward = pc_logical_forward},
	[PC_OP_WHERE] = {.name = "Where", .attrs = "", ARITY(3, 3, 1, 1), ROW_NOINIT(pc_where)},
	[PC_OP_MOD] = {.name = "Mod", .attrs = "fmod", ARITY(2, 2, 1, 1), ROW(pc_mod)},
	[PC_OP_CONSTANTOFSHAPE] = {.name = "ConstantOfShape", .attrs = "value", ARITY(1, 1, 1, 1),
				   .init = pc_constofshape_init, .infer = pc_constofshape_infer,
				   .forward = pc_constofshape_forward},
	[PC_OP_RANGE] = {.name = "Range", .attrs = "", ARITY(3, 3, 1, 1), .infer = pc_range_infer,
			 .forward = pc_range_forward},
	[PC_OP_TRILU] = {.name = "Trilu", .attrs = "upper", ARITY(1, 2, 1, 1), ROW(pc_trilu)},
	[PC_OP_SLICE] = {.name = "Slice", .attrs = "", ARITY(3, 5, 1, 1), ROW_NOINIT(pc_slice)},
	[PC_OP_SPLIT] = {.name = "Split", .attrs = "axis,split", ARITY(1, 2, 1, 1024), .keep_outputs = 1,
			 ROW(pc_split)},
	[PC_OP_EXPAND] = {.name = "Expand", .attrs = "", ARITY(2, 2, 1, 1), ROW_NOINIT(pc_expand)},
	[PC_OP_TILE] = {.name = "Tile", .attrs = "", ARITY(2, 2, 1, 1), ROW_NOINIT(pc_tile)},
	[PC_OP_SCATTERND] = {.name = "ScatterND", .attrs = "reduction", ARITY(3, 3, 1, 1), ROW(pc_scatternd)},
};

_Static_assert(sizeof(pc_op_table) / sizeof(pc_op_table[0]) == PC_OP_COUNT, "op table out of step with enum");
