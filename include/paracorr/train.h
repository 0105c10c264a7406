/* train: fine-tuning, plain or with adversarial corruption-resistant
 * training (ACT, method.md): every step minimises the loss at the worst
 * nearby corruption of the weights.
 *
 * One step on a mini-batch B at weights w:
 *   1. forward and backward at w: loss L(w), gradient g;
 *   2. (epsilon > 0) a = the gradient-based corruption of g for (p, eps,
 *      sparsity) on the chosen tensors, held constant; with steps > 1, a
 *      is refined by projected ascent (eps/steps per step, projected onto
 *      the ball after each);
 *   3. forward and backward at w + a: g';
 *   4. the optimiser steps w (never w + a) with (1 - lambda) g + lambda g'.
 * epsilon 0 is plain training: the control of every ACT experiment.
 *
 * Optimisers follow PyTorch's definitions, so a step can be checked against
 * it: SGD with momentum (buf = mu buf + d; w -= lr buf, the first buf = d)
 * and Adam (bias-corrected moments, w -= lr m^ / (sqrt(v^) + eps)); weight
 * decay adds wd * w to the gradient (L2, as torch.optim does). The learning
 * rate is constant or follows a cosine from lr to 0 over the epochs, set at
 * the start of each epoch.
 *
 * Mini-batches are the dataset shuffled by a seeded Fisher-Yates permutation
 * per epoch (the seed and the epoch alone fix it), the last batch short.
 * Gradients are the exact mean over the batch, summed in a fixed order: a
 * run is the same for any thread count. BatchNormalization runs in training
 * mode: each batch is normalised with its own statistics and the pass at w
 * moves the running statistics by the node's momentum. Those live in the
 * trainer's plans (pc_trainer_stats), never in the graph, which training
 * leaves as it was (the checkpoint state includes them). Dropout drops:
 * one set of masks per step (from the seed and the step), the same for the
 * passes at w and at w + a. */
#ifndef PARACORR_TRAIN_H
#define PARACORR_TRAIN_H

#include <stdint.h>

#include "paracorr/analysis.h"
#include "paracorr/data.h"
#include "paracorr/error.h"
#include "paracorr/graph.h"
#include "paracorr/runner.h"

enum pc_optimizer { PC_OPT_SGD, PC_OPT_ADAM };
enum pc_lr_schedule { PC_LR_CONSTANT, PC_LR_COSINE };

struct pc_act {
	double p;	  /* norm: >= 1, INFINITY for linf */
	double epsilon;	  /* 0: plain training */
	int64_t sparsity; /* weights a may change, 0 = all */
	double lambda;	  /* mix (1 - lambda) L(w) + lambda L(w + a), in [0, 1] */
	int steps;	  /* ascent steps for a, >= 1 */
	const unsigned char *mask; /* param_count flags of the group P; NULL = all */
};

struct pc_train_opts {
	int epochs;
	int batch_size;
	enum pc_optimizer optimizer;
	double lr, momentum, weight_decay;
	double beta1, beta2, adam_eps;
	enum pc_lr_schedule schedule;
	uint64_t seed;
	struct pc_act act;
};

/* Defaults: 3 epochs of batches of 64, SGD lr 0.01 momentum 0.9, no weight
 * decay, Adam betas 0.9 and 0.999 and eps 1e-8, constant rate, seed 1,
 * no corruption (l2, lambda 1, 1 step). */
void pc_train_opts_default(struct pc_train_opts *o);

/* What one step or one epoch saw: the mean loss and accuracy at w (before
 * the update) over its samples (a sequence model's labelled tokens), and
 * at w + a when corrupting. A loss that is not finite is NaN. A batch whose
 * every label is PC_LABEL_IGNORE takes no step and adds nothing. */
struct pc_train_stats {
	int64_t samples;
	int sequence;	/* per-token labels */
	int64_t tokens; /* sequence: labelled tokens */
	double loss, accuracy;
	double loss_corrupted, accuracy_corrupted; /* epsilon > 0 only */
	double lr;
};

/* The weights being trained and the optimiser's state. */
struct pc_trainer;

/* A trainer starting from the graph's weights; it owns a runner of
 * `threads` threads for g with gradients (with BatchNormalization, one
 * plan batch is a whole mini-batch, so steps do not run in parallel). */
int pc_trainer_new(const struct pc_graph *g, const struct pc_train_opts *o, int threads, struct pc_trainer **out,
		   struct pc_error *err);
void pc_trainer_free(struct pc_trainer *t);

/* The current weights (param_count floats, graph order). */
const float *pc_trainer_weights(const struct pc_trainer *t);
/* The plan holding the running statistics training moves
 * (pc_plan_stats; BatchNormalization's), owned by the trainer: save them
 * with the weights (pc_onnx_save_weights). */
const struct pc_plan *pc_trainer_stats(const struct pc_trainer *t);
/* Steps taken so far. */
int64_t pc_trainer_steps(const struct pc_trainer *t);

/* One step on samples idx[0..n) of d at learning rate lr. */
int pc_trainer_step(struct pc_trainer *t, const struct pc_dataset *d, const int64_t *idx, int n, double lr,
		    struct pc_train_stats *out, struct pc_error *err);

/* One epoch (0-based `epoch`: its permutation and learning rate). The
 * progress callback sees steps; cancel is polled between steps
 * (PC_ERR_CANCELLED). */
int pc_trainer_epoch(struct pc_trainer *t, const struct pc_dataset *d, int epoch, pc_progress_fn progress,
		     void *progress_arg, pc_cancel_fn cancel, void *cancel_arg, struct pc_train_stats *out,
		     struct pc_error *err);

/* The learning rate of an epoch under o's schedule. */
double pc_train_lr(const struct pc_train_opts *o, int epoch);

/* Checkpoints: the weights and the optimiser's state as one float vector
 * (pc_trainer_state_size floats) and the step count, so that training
 * resumed from a checkpoint continues exactly as it would have. */
int64_t pc_trainer_state_size(const struct pc_trainer *t);
void pc_trainer_state_save(const struct pc_trainer *t, float *state, int64_t *steps);
void pc_trainer_state_load(struct pc_trainer *t, const float *state, int64_t steps);

#endif
