/* eval: loss, accuracy and the exact gradient of the mean loss over a
 * dataset.
 *
 * The loss is softmax cross-entropy of the model's output against integer
 * labels, averaged over all samples. A graph ending in Softmax or LogSoftmax
 * is read as probabilities or log-probabilities, never softmaxed twice. The
 * gradient is that of the mean over ALL samples, accumulated across
 * batches; the last, short batch is padded and its padding carries no loss
 * and no gradient.
 *
 * A sequence model (output [N, T, V], labels [N, T]) is read per token:
 * the loss is the mean over all labelled tokens of the dataset (labels
 * PC_LABEL_IGNORE are left out, as PyTorch's ignore_index), the accuracy
 * the fraction of labelled tokens whose arg-max is the label, the
 * perplexity exp(loss), and the gradient that of that mean.
 *
 * A prediction is the arg-max of the outputs (the first maximum); outputs
 * holding a NaN are a wrong prediction. A loss that is not finite is not
 * averaged into a number: loss is NaN then (reports write null) and
 * non_finite says how many samples (tokens) had one. */
#ifndef PARACORR_EVAL_H
#define PARACORR_EVAL_H

#include <stdint.h>

#include "paracorr/data.h"
#include "paracorr/plan.h"
#include "paracorr/runner.h"

struct pc_eval {
	int64_t samples;
	int64_t correct; /* samples (labelled tokens) predicted right */
	double loss;	 /* mean cross-entropy; NaN when non_finite > 0 */
	double accuracy; /* correct / samples (labelled tokens) */
	int sequence;	   /* per-token labels against an [N, T, V] output */
	int64_t tokens;	   /* sequence: labelled tokens; 0 otherwise */
	double perplexity; /* sequence: exp(loss); 0 otherwise */
	int64_t non_finite; /* samples (tokens) whose loss is not finite */
};

/* What a pass adds up before the means: per batch, then across batches in
 * a fixed order. */
struct pc_eval_sums {
	double loss;
	int64_t counted; /* rows with a label (not PC_LABEL_IGNORE) */
	int64_t correct;
	int64_t non_finite;
};

/* Norms of a vector, accumulated in double. */
struct pc_norms {
	double l1, l2, linf;
};

/* Polled between batches; return non-zero to stop with PC_ERR_CANCELLED. */
typedef int (*pc_cancel_fn)(void *arg);

/* Shards of batches whose gradients are summed separately and then in a
 * fixed order, so that the result does not depend on the thread count. */
#define PC_EVAL_SHARDS 16

/* Evaluates the runner's current weights on the first `limit` samples of d
 * (all when limit <= 0). When grad is not NULL (param_count floats, owned
 * by the caller) it receives the gradient of the mean loss; the runner's
 * plans then need PC_PLAN_GRAD. */
int pc_eval_run(struct pc_runner *r, const struct pc_dataset *d, int64_t limit, float *grad, pc_cancel_fn cancel,
		void *cancel_arg, struct pc_eval *out, struct pc_error *err);

/* pc_eval_run with a hook called after each batch's forward pass (on the
 * worker that ran it), e.g. to keep activations. */
typedef void (*pc_eval_hook)(struct pc_plan *p, int batch_index, void *arg);
int pc_eval_run_hooked(struct pc_runner *r, const struct pc_dataset *d, int64_t limit, float *grad,
		       pc_cancel_fn cancel, void *cancel_arg, pc_eval_hook hook, void *hook_arg, struct pc_eval *out,
		       struct pc_error *err);

/* pc_eval_run telling progress(arg, done, batches) after each batch, on
 * the worker that ran it, one call at a time. */
typedef void (*pc_eval_progress_fn)(void *arg, int64_t done, int64_t batches);
int pc_eval_run_progress(struct pc_runner *r, const struct pc_dataset *d, int64_t limit, float *grad,
			 pc_cancel_fn cancel, void *cancel_arg, pc_eval_progress_fn progress, void *progress_arg,
			 struct pc_eval *out, struct pc_error *err);

/* Gradients at two weight vectors w[0] and w[1] of the piecewise choices
 * (the gates, plan.h) of a third, `at`: each batch runs a pass at `at`
 * that records its gates, then a frozen forward and backward pass at each
 * w[s], whose gradient of the mean loss goes into grad[s]. All five are
 * pc_graph_param_count floats, owned by the caller, the three weights
 * read only; the runner's plans need PC_PLAN_GRAD and share weights (a
 * runner's do), and read the runner's own again afterwards. A product of
 * the Hessian with v is (grad[0] - grad[1]) / 2h at w = at +- h v
 * (curvature.h). *out is the loss and accuracy of the passes at w[0]. */
struct pc_eval_gated {
	float *at;
	float *w[2];
	float *grad[2];
};
int pc_eval_run_gated(struct pc_runner *r, const struct pc_dataset *d, int64_t limit,
		      const struct pc_eval_gated *gated, pc_cancel_fn cancel, void *cancel_arg, struct pc_eval *out,
		      struct pc_error *err);

/* Whether the first n samples of d (all when n <= 0) fit the plan's model:
 * token ids for an int64 input and floats otherwise, the sample size, one
 * label per sample for an [N, C] output or [N, T] labels for an [N, T, V]
 * one, every label below the classes, and every token id within the
 * embedding the input indexes (the rows of the table a Gather reads with
 * it). Errors name the sample and position. *counted receives the labels
 * that count: n, or the labelled tokens (may be 0). */
int pc_eval_check(const struct pc_plan *p, const struct pc_dataset *d, int64_t n, int64_t *counted,
		  struct pc_error *err);

/* How g reads a dataset, into pp->inputs and pp->labels: token ids for an
 * int64 input, and a class per token for an [N, T, V] output. */
int pc_eval_data_for(const struct pc_graph *g, struct pc_preprocess *pp, struct pc_error *err);

/* pc_eval_check for a graph, through a small plan of its own. */
int pc_eval_check_graph(const struct pc_graph *g, const struct pc_dataset *d, int64_t n, struct pc_error *err);

/* Whether the plan's output is [N, T, V], read per token (T from
 * pc_plan_positions), rather than [N, C]. */
int pc_eval_is_sequence(const struct pc_plan *p);

/* Copies samples [first, first + rows) of d into the plan's input (floats
 * or token ids) and zero-pads the rest of the batch. */
void pc_eval_fill_input(struct pc_plan *p, const struct pc_dataset *d, int64_t first, int rows);

/* Loss of `rows` output rows of `classes` values read as `kind`, against
 * labels[r], each in [0, classes) (pc_eval_check) or PC_LABEL_IGNORE (the
 * row counts for nothing): adds into *s;
 * when dout is not NULL also writes d(sum loss * scale)/d(output) into its
 * `rows` rows (zero for ignored ones). */
void pc_eval_rows(const float *out, int64_t rows, int64_t classes, enum pc_output_kind kind, const int32_t *labels,
		  double scale, struct pc_eval_sums *s, float *dout);

/* Loss of one batch: samples [0, rows) of the plan's output against labels
 * y (rows * pc_plan_positions of them), added into *s; when dout is not
 * NULL also writes d(sum loss * scale)/d(output) into dout (rows past
 * `rows` get zero). */
void pc_eval_batch_loss(const struct pc_plan *p, const int32_t *y, int rows, double scale, struct pc_eval_sums *s,
			float *dout);

/* The means of sums over `samples` samples. */
void pc_eval_finish(const struct pc_eval_sums *s, int64_t samples, int sequence, struct pc_eval *out);

void pc_norms_compute(const float *x, int64_t n, struct pc_norms *out);

#endif
