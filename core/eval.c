/* eval: run a plan over a dataset in batches and reduce to the mean loss,
 * the accuracy and, on request, the gradient of the mean loss. */
#include "paracorr/eval.h"

#include <float.h>
#include <stdlib.h>
#include <math.h>
#include <string.h>

#include "graph_int.h"

static int argmax(const float *row, int64_t c)
{
	int best = 0;

	for (int64_t j = 1; j < c; j++)
		if (row[j] > row[best])
			best = (int)j;
	return best;
}

void pc_eval_batch_loss(const struct pc_plan *p, const int32_t *y, int rows, double scale, double *loss_sum,
			int64_t *correct, float *dout)
{
	const float *out = pc_plan_output(p);
	int64_t c = pc_plan_classes(p);
	enum pc_output_kind kind = pc_graph_output_kind(p->g);

	if (dout)
		memset(dout, 0, (size_t)pc_plan_batch(p) * (size_t)c * sizeof(float));
	for (int i = 0; i < rows; i++) {
		const float *row = out + (int64_t)i * c;
		float *drow = dout ? dout + (int64_t)i * c : NULL;
		int label = y[i];
		double l;

		if (argmax(row, c) == label)
			(*correct)++;
		if (kind == PC_OUTPUT_LOGITS) {
			double m = row[0], s = 0.0;
			for (int64_t j = 1; j < c; j++)
				m = row[j] > m ? row[j] : m;
			for (int64_t j = 0; j < c; j++)
				s += exp((double)row[j] - m);
			l = m + log(s) - row[label];
			if (drow) {
				for (int64_t j = 0; j < c; j++)
					drow[j] = (float)(scale * exp((double)row[j] - m) / s);
				drow[label] -= (float)scale;
			}
		} else if (kind == PC_OUTPUT_LOGPROBS) {
			l = -(double)row[label];
			if (drow)
				drow[label] = (float)-scale;
		} else {
			/* a probability of exactly 0 would be an infinite loss: clamp */
			double pr = row[label] > FLT_MIN ? row[label] : FLT_MIN;
			l = -log(pr);
			if (drow)
				drow[label] = (float)(-scale / pr);
		}
		*loss_sum += l;
	}
}

void pc_eval_fill_input(struct pc_plan *p, const struct pc_dataset *d, int64_t first, int rows)
{
	int64_t sample = pc_plan_sample_numel(p);
	int batch = pc_plan_batch(p);
	float *in = pc_plan_input(p);

	pc_plan_set_rows(p, rows);
	pc_plan_set_origin(p, first);
	memcpy(in, d->x + first * sample, (size_t)rows * (size_t)sample * sizeof(float));
	if (rows < batch)
		memset(in + (int64_t)rows * sample, 0, (size_t)(batch - rows) * (size_t)sample * sizeof(float));
}

struct eval_job {
	const struct pc_dataset *d;
	int64_t n;
	int batches, shards;
	double *loss; /* per batch */
	int64_t *correct;
	float *shard_grad; /* shards x params, or NULL */
	int64_t params;
	pc_cancel_fn cancel;
	void *cancel_arg;
	pc_eval_hook hook;
	void *hook_arg;
	volatile int cancelled; /* written once, read between batches */
};

static void eval_shard(struct pc_plan *p, int worker, int shard, void *arg)
{
	struct eval_job *j = arg;
	int batch = pc_plan_batch(p);

	for (int b = shard; b < j->batches; b += j->shards) {
		int64_t first = (int64_t)b * batch;
		int rows = (int)(j->n - first < batch ? j->n - first : batch);
		if (j->cancelled || (j->cancel && j->cancel(j->cancel_arg))) {
			j->cancelled = 1;
			return;
		}
		pc_eval_fill_input(p, j->d, first, rows);
		pc_plan_keep_fused(p, j->hook != NULL);
		pc_plan_forward(p);
		if (j->hook)
			j->hook(p, b, j->hook_arg);
		j->loss[b] = 0.0;
		j->correct[b] = 0;
		pc_eval_batch_loss(p, j->d->y + first, rows, 1.0 / (double)j->n, &j->loss[b], &j->correct[b],
				   j->shard_grad ? pc_plan_output_grad(p) : NULL);
		if (j->shard_grad)
			pc_plan_backward(p);
	}
	if (j->shard_grad) {
		memcpy(j->shard_grad + shard * j->params, pc_plan_weight_grad(p), (size_t)j->params * sizeof(float));
		pc_plan_zero_weight_grad(p);
	}
}

int pc_eval_run(struct pc_runner *r, const struct pc_dataset *d, int64_t limit, float *grad, pc_cancel_fn cancel,
		void *cancel_arg, struct pc_eval *out, struct pc_error *err)
{
	return pc_eval_run_hooked(r, d, limit, grad, cancel, cancel_arg, NULL, NULL, out, err);
}

int pc_eval_run_hooked(struct pc_runner *r, const struct pc_dataset *d, int64_t limit, float *grad,
		       pc_cancel_fn cancel, void *cancel_arg, pc_eval_hook hook, void *hook_arg, struct pc_eval *out,
		       struct pc_error *err)
{
	struct pc_plan *p0 = pc_runner_plan(r, 0);
	const struct pc_graph *g = pc_runner_graph(r);
	int64_t n = d->n, classes = pc_plan_classes(p0);
	int batch = pc_runner_batch(r);
	struct eval_job j;
	double loss_sum = 0.0;
	int64_t correct = 0;
	int rc = PC_OK;

	memset(out, 0, sizeof(*out));
	memset(&j, 0, sizeof(j));
	if (limit > 0 && limit < n)
		n = limit;
	if (n <= 0)
		return pc_error_set(err, PC_ERR_INVALID, "dataset", "no samples to evaluate");
	if (pc_plan_input_dtype(p0) != PC_DTYPE_FLOAT || pc_plan_positions(p0) != 1)
		return pc_error_set(err, PC_ERR_UNSUPPORTED, pc_graph_input_name(g),
				    "the model takes token ids or predicts a sequence; evaluating it needs "
				    "token datasets, which this build does not read yet");
	if (pc_shape_count(&d->sample) != pc_plan_sample_numel(p0))
		return pc_error_set(err, PC_ERR_SHAPE, "dataset",
				    "a sample has %lld values; the model's input takes %lld",
				    (long long)pc_shape_count(&d->sample), (long long)pc_plan_sample_numel(p0));
	if (grad && !pc_plan_weight_grad(p0))
		return pc_error_set(err, PC_ERR_INTERNAL, "eval", "gradient asked of plans without PC_PLAN_GRAD");
	for (int64_t i = 0; i < n; i++)
		if (d->y[i] < 0 || d->y[i] >= classes)
			return pc_error_set(err, PC_ERR_INVALID, "labels",
					    "label %d of sample %lld is outside the model's %lld classes", d->y[i],
					    (long long)i, (long long)classes);
	j.d = d;
	j.n = n;
	j.batches = (int)((n + batch - 1) / batch);
	j.shards = j.batches < PC_EVAL_SHARDS ? j.batches : PC_EVAL_SHARDS;
	j.params = pc_graph_param_count(g);
	j.cancel = cancel;
	j.cancel_arg = cancel_arg;
	j.hook = hook;
	j.hook_arg = hook_arg;
	j.loss = calloc((size_t)j.batches, sizeof(*j.loss));
	j.correct = calloc((size_t)j.batches, sizeof(*j.correct));
	if (grad)
		j.shard_grad = malloc((size_t)j.shards * (size_t)j.params * sizeof(float) + 1);
	if (!j.loss || !j.correct || (grad && !j.shard_grad)) {
		rc = pc_error_set(err, PC_ERR_NOMEM, "eval", "out of memory");
		goto out;
	}
	if (grad)
		for (int w = 0; w < pc_runner_threads(r); w++)
			pc_plan_zero_weight_grad(pc_runner_plan(r, w));
	pc_runner_map(r, j.shards, eval_shard, &j);
	if (j.cancelled) {
		rc = pc_error_set(err, PC_ERR_CANCELLED, "eval", "cancelled");
		goto out;
	}
	/* fixed summation orders: the same bits for any thread count */
	for (int b = 0; b < j.batches; b++) {
		loss_sum += j.loss[b];
		correct += j.correct[b];
	}
	if (grad)
		for (int64_t i = 0; i < j.params; i++) {
			double s = 0.0;
			for (int k = 0; k < j.shards; k++)
				s += j.shard_grad[k * j.params + i];
			grad[i] = (float)s;
		}
	out->samples = n;
	out->correct = correct;
	out->loss = loss_sum / (double)n;
	out->accuracy = (double)correct / (double)n;
out:
	free(j.loss);
	free(j.correct);
	free(j.shard_grad);
	return rc;
}

void pc_norms_compute(const float *x, int64_t n, struct pc_norms *out)
{
	double l1 = 0.0, linf = 0.0, scale = 0.0, ssq = 1.0;

	/* l2 with running max-scaling, so huge gradients cannot overflow */
	for (int64_t i = 0; i < n; i++) {
		double a = fabs((double)x[i]);
		l1 += a;
		if (a > linf)
			linf = a;
		if (a > 0.0) {
			if (scale < a) {
				ssq = 1.0 + ssq * (scale / a) * (scale / a);
				scale = a;
			} else {
				ssq += (a / scale) * (a / scale);
			}
		}
	}
	out->l1 = l1;
	out->l2 = scale * sqrt(ssq);
	out->linf = linf;
}
