/* plan: a graph prepared for one batch size.
 *
 * Preparing infers every shape, folds the int64 shape computations into
 * constants and allocates activations, gradients and one shared workspace.
 * After that, forward and backward passes allocate nothing: thousands of
 * corrupted passes cost only arithmetic. A plan owns a working copy of the
 * weights, so corrupting it never touches the shared graph, unless its
 * owner keeps one copy for several plans (PC_PLAN_SHARED_WEIGHTS, a
 * runner). One plan is used by one thread at a time. */
#ifndef PARACORR_PLAN_H
#define PARACORR_PLAN_H

#include <stdint.h>

#include "paracorr/graph.h"

struct pc_plan;

enum pc_plan_flags {
	PC_PLAN_GRAD = 1,	/* gradients of the weights */
	PC_PLAN_INPUT_GRAD = 2, /* also the gradient of the input (tests, saliency) */
	PC_PLAN_TRAIN = 4,	/* Dropout drops (pc_plan_set_dropout); otherwise the identity */
	/* Shapes, dtypes and the max_plan_mb check only: no activations,
	 * gradients, workspace or op state are allocated, so that proving a
	 * model at upload costs what its structure costs, not the gigabytes
	 * a fixed batch may plan. Such a plan answers the queries about
	 * shapes (classes, positions, dtypes, sample size) and must not run. */
	PC_PLAN_SHAPES = 8,
	/* No copy of the weights: the plan reads the graph's clean ones until
	 * pc_plan_use_weights points it at its owner's copy. The plan never
	 * writes weights; whoever owns them writes them, between passes. */
	PC_PLAN_SHARED_WEIGHTS = 16,
};

struct pc_plan *pc_plan_new(const struct pc_graph *g, int batch, unsigned flags, struct pc_error *err);
void pc_plan_free(struct pc_plan *p);

const struct pc_graph *pc_plan_graph(const struct pc_plan *p);

int pc_plan_batch(const struct pc_plan *p);
/* Elements per sample of the input, and classes per position of the
 * output (the vocabulary of a sequence model). */
int64_t pc_plan_sample_numel(const struct pc_plan *p);
int64_t pc_plan_classes(const struct pc_plan *p);
/* T of an [N, T, V] output; 1 of an [N, C] one. */
int64_t pc_plan_positions(const struct pc_plan *p);
/* Bytes of the buffers a pass uses (activations, gradients, workspace,
 * weights, whether its own or shared). */
size_t pc_plan_bytes(const struct pc_plan *p);

/* batch * sample_numel floats, written by the caller before forward;
 * NULL when the input is int64 (token ids). */
float *pc_plan_input(struct pc_plan *p);
/* batch * sample_numel token ids for an INT64 input, else NULL. */
int64_t *pc_plan_input_int64(struct pc_plan *p);
enum pc_dtype pc_plan_input_dtype(const struct pc_plan *p);
/* What a prepared plan holds for one named value of its graph: for tests
 * and tools that look inside (a folded constant, an intermediate shape).
 * data and ival are read-only views into the plan, valid until it is freed
 * or run again; dtype is PC_DTYPE_UNDEFINED when the plan never made the
 * value (an output nothing reads). */
struct pc_plan_value {
	enum pc_dtype dtype;
	struct pc_shape shape;
	int64_t numel;
	int is_static; /* computed when the plan was made; no node runs for it */
	int producer;  /* the node making it, -1 for the input and initializers */
	const float *data;
	const int64_t *ival; /* INT64 and BOOL */
};
/* Fills *out with the value called name; PC_ERR_NOT_FOUND, naming it, when
 * the graph has no such value. */
int pc_plan_value(const struct pc_plan *p, const char *name, struct pc_plan_value *out, struct pc_error *err);
/* batch * positions * classes floats. */
const float *pc_plan_output(const struct pc_plan *p);
/* The gradient of the loss with respect to the output, set by the caller
 * before backward. NULL without PC_PLAN_GRAD. */
float *pc_plan_output_grad(struct pc_plan *p);
/* NULL without PC_PLAN_INPUT_GRAD; overwritten by each backward. */
const float *pc_plan_input_grad(const struct pc_plan *p);
/* For an input of token ids: the bound they must stay below, the size of
 * the axis indexed by the Gathers (embedding lookups) that read the input
 * or a reshaped view of it as indices; the smallest when several do. -1
 * when no Gather reads it. Check ids against it before a run: an id out of
 * range yields a row of zeros, not an error, since a run cannot fail.
 * *node (when not NULL) gets the index of the Gather that sets the bound,
 * for errors that name it and its table. */
int64_t pc_plan_input_id_limit(const struct pc_plan *p, int *node);

/* The working weights (pc_graph_param_count floats), writable: corruption
 * writes here. Starts as a copy of the graph's clean weights. With
 * PC_PLAN_SHARED_WEIGHTS, the weights the plan reads, which its owner
 * writes (at first the graph's own, which nobody may write). */
float *pc_plan_weights(struct pc_plan *p);
/* PC_PLAN_SHARED_WEIGHTS: the plan reads w (pc_graph_param_count floats,
 * outliving the plan) from now on; ignored by a plan with its own copy. */
void pc_plan_use_weights(struct pc_plan *p, float *w);
/* Parameter table entry param reads data (its count floats) instead of the
 * weights, in this plan only, until called again with NULL: running one
 * layer on other weights without writing weights other plans read. */
void pc_plan_bind_param(struct pc_plan *p, int param, const float *data);
/* The buffers a training pass moves (the op table's stats_inputs:
 * BatchNormalization's running mean and variance, when they are float
 * initializers), in node order. Each plan starts with its own copy of the
 * graph's values. Buffer i's floats (writable: a trainer restoring a
 * checkpoint writes them), its element count and its value's name. */
int pc_plan_stats_count(const struct pc_plan *p);
float *pc_plan_stats(const struct pc_plan *p, int i, int64_t *numel, const char **name);
/* p reads and moves from's buffers from now on, from must outlive p (a
 * runner's plans share plan 0's, so that a step moves them once whichever
 * worker runs it). Both plans of one graph. */
void pc_plan_share_stats(struct pc_plan *p, const struct pc_plan *from);

/* Accumulated weight gradient; backward adds to it. NULL without GRAD. */
float *pc_plan_weight_grad(struct pc_plan *p);
void pc_plan_zero_weight_grad(struct pc_plan *p);
/* Backward adds the weight gradient into gw (pc_graph_param_count floats)
 * from now on; returns the buffer it added into until now, which the caller
 * swaps back before freeing the plan. NULL, changing nothing, without GRAD. */
float *pc_plan_swap_weight_grad(struct pc_plan *p, float *gw);

void pc_plan_forward(struct pc_plan *p);
/* Runs nodes [first, last) of the execution order only: the caller keeps
 * the activations before `first` valid (prefix caching). */
void pc_plan_forward_range(struct pc_plan *p, int first, int last);

/* Where a Relu is computed together with the Conv or Add before it, the
 * pre-Relu values are read by nothing but that Relu: forward passes may
 * skip storing them (keep = 0). The default (1) stores them, for callers
 * that look at every activation after a pass (the study's cache capture).
 * Backward never reads them. */
void pc_plan_keep_fused(struct pc_plan *p, int keep);
/* Gates: the piecewise choices of a pass, frozen. Relu, LeakyRelu and
 * Clip pick a piece of their function per element and MaxPool an input per
 * window (the op table's gate_bytes column). A pass in PC_GATES_RECORD
 * computes as usual and records those choices; a pass in PC_GATES_FROZEN
 * makes the recorded ones, whatever its own inputs are, in forward and in
 * backward. Around the weights it recorded at, a frozen pass's loss is
 * smooth in the weights and agrees to second order with the function
 * PyTorch's double backward differentiates (its Relu has no second
 * derivative, its max-pool keeps the argmax), so a difference of two
 * frozen gradients is a Hessian-vector product free of the jumps that
 * crossing a kink puts into a difference of ordinary gradients
 * (curvature.h). The choices are the last recorded batch's: record a
 * batch, then run its frozen passes. Relu fusion is off while gates are
 * on. Other piecewise ops (Abs, HardSigmoid, HardSwish, ReduceMax, Where
 * on a computed mask) are not frozen. */
enum pc_plan_gates { PC_GATES_OFF, PC_GATES_RECORD, PC_GATES_FROZEN };
/* Between passes only. Switching on allocates the gate storage the first
 * time (PC_ERR_NOMEM; PC_ERR_UNSUPPORTED for a PC_PLAN_SHAPES plan), OFF
 * frees it. */
int pc_plan_set_gates(struct pc_plan *p, enum pc_plan_gates mode, struct pc_error *err);
/* Bytes of gate storage switching on takes. */
size_t pc_plan_gate_bytes(const struct pc_plan *p);

/* Profiling: with it on, every forward and backward pass adds each node's
 * wall time to its op kind's row (a Conv with a fused Relu counts as the
 * Conv). Between passes only; on allocates the rows (PC_ERR_NOMEM), off
 * frees them. The clock costs two reads per node run. */
struct pc_plan_op_time {
	const char *op; /* the op's ONNX name */
	double forward, backward; /* seconds */
	int64_t forward_calls, backward_calls;
};
int pc_plan_set_profile(struct pc_plan *p, int on, struct pc_error *err);
/* Op kinds, the length of the rows pc_plan_profile_add adds into. */
int pc_plan_op_kinds(void);
/* Adds p's rows into rows[0 .. pc_plan_op_kinds() - 1] (their names set;
 * nothing added while profiling is off). */
void pc_plan_profile_add(const struct pc_plan *p, struct pc_plan_op_time *rows);

/* Backpropagates the output gradient, adding weight gradients into
 * pc_plan_weight_grad. Needs a forward pass of the same weights first. */
void pc_plan_backward(struct pc_plan *p);

/* Training mode: BatchNormalization normalises each batch with its own
 * statistics (over the real samples, pc_plan_set_rows) and, with
 * update_stats, moves its running statistics towards them by the node's
 * momentum, in place, in the plan's own copy (pc_plan_stats): the graph
 * and other plans keep theirs. Off by default: inference is what paracorr
 * measures. */
void pc_plan_set_training(struct pc_plan *p, int on, int update_stats);
/* PC_PLAN_TRAIN: the seed of the Dropout masks of the next passes. A
 * sample's mask depends on the seed, the node and the sample's place in its
 * dataset (pc_plan_set_origin), never on which plan runs it. */
void pc_plan_set_dropout(struct pc_plan *p, uint64_t seed);
/* The index in its dataset of the batch's first sample (pc_eval_fill_input
 * sets it). */
void pc_plan_set_origin(struct pc_plan *p, int64_t first);
/* How many samples of the batch are real; the rest is padding that batch
 * statistics leave out. 0 or more than the batch: all of them. */
void pc_plan_set_rows(struct pc_plan *p, int rows);

/* [N, C] or [N, T, V]: the output's shape at this plan's batch. */
const struct pc_shape *pc_plan_output_shape(const struct pc_plan *p);

/* --- nodes, for callers that run part of a pass themselves ---------------
 *
 * Nodes are numbered in execution order, 0 .. pc_graph_node_count - 1, as
 * pc_plan_forward_range counts them. The study runs passes from a node on
 * and computes a linear layer's output by an axpy; these say what it needs
 * of the plan, so that liveness, aliasing and fusion stay the plan's own. */

/* FLOPs of node k's forward at this plan's shapes, multiply-adds counting
 * twice (the op table's flops column; one per output element for ops
 * without one); 0 for a node the plan never runs (an alias, a constant
 * folded at prepare). */
double pc_plan_node_flops(const struct pc_plan *p, int k);
/* Node k's output 0 (float) and its element count. Writable: a caller that
 * computes it another way writes it here and resumes the pass after k. */
float *pc_plan_node_output(struct pc_plan *p, int k);
int64_t pc_plan_node_output_numel(const struct pc_plan *p, int k);
/* Whether node k's forward also computes the Relu that is node k + 1 (see
 * pc_plan_keep_fused). A caller that writes node k's output itself must
 * then write the Relu's output (pc_plan_node_output(p, k + 1)) as well and
 * resume at k + 2, or resume at k + 1, where the Relu runs on its own. */
int pc_plan_node_fuses_relu(const struct pc_plan *p, int k);

/* --- cuts: saving a pass to resume it from a node --------------------------
 *
 * A cut at node k is the set of activations that nodes k and later read
 * and nodes before k (or the data input) produce: after restoring them,
 * pc_plan_forward_range(p, k, end) computes exactly what the full pass
 * would, without running nodes 0 .. k-1. Which values those are depends on
 * the plan (aliases share storage, folded constants need no saving), so
 * the plan works them out and the caller only moves floats: save after a
 * clean pass, restore before each corrupted one (the study's prefix cache).
 * A cut made from one plan serves every plan of the same graph, batch and
 * flags, such as the workers of one runner. */
struct pc_plan_cut;

/* PC_ERR_UNSUPPORTED (naming the value) when the cut would hold a run-time
 * integer value (token ids, masks): cuts hold floats only. */
int pc_plan_cut_new(const struct pc_plan *p, int k, struct pc_plan_cut **out, struct pc_error *err);
void pc_plan_cut_free(struct pc_plan_cut *c);
/* Floats the cut's values hold, per batch: the size of a save. */
int64_t pc_plan_cut_floats(const struct pc_plan_cut *c);
/* Copies the cut's values out of p into dst (pc_plan_cut_floats floats),
 * or back from src into p. */
void pc_plan_cut_save(const struct pc_plan *p, const struct pc_plan_cut *c, float *dst);
void pc_plan_cut_restore(struct pc_plan *p, const struct pc_plan_cut *c, const float *src);

#endif
