/* eval: loss, accuracy and the exact gradient of the mean loss over a
 * dataset.
 *
 * The loss is softmax cross-entropy of the model's output against integer
 * labels, averaged over all samples. A graph ending in Softmax or LogSoftmax
 * is read as probabilities or log-probabilities, never softmaxed twice. The
 * gradient is that of the mean over ALL samples, accumulated across
 * batches; the last, short batch is padded and its padding carries no loss
 * and no gradient. */
#ifndef PARACORR_EVAL_H
#define PARACORR_EVAL_H

#include <stdint.h>

#include "paracorr/data.h"
#include "paracorr/plan.h"
#include "paracorr/runner.h"

struct pc_eval {
	int64_t samples;
	int64_t correct;
	double loss;	 /* mean cross-entropy */
	double accuracy; /* correct / samples */
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

/* Copies samples [first, first + rows) of d into the plan's input and
 * zero-pads the rest of the batch. */
void pc_eval_fill_input(struct pc_plan *p, const struct pc_dataset *d, int64_t first, int rows);

/* Loss of one batch: rows [0, rows) of the plan's output against labels y.
 * Adds the summed loss and correct count into *loss_sum and *correct; when
 * dout is not NULL also writes d(sum loss * scale)/d(output) into dout
 * (rows past `rows` get zero). */
void pc_eval_batch_loss(const struct pc_plan *p, const int32_t *y, int rows, double scale, double *loss_sum,
			int64_t *correct, float *dout);

void pc_norms_compute(const float *x, int64_t n, struct pc_norms *out);

#endif
