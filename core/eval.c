/* eval: run a plan over a dataset in batches and reduce to the mean loss,
 * the accuracy and, on request, the gradient of the mean loss. */
#include "paracorr/eval.h"
#include "paracorr/sys.h"

#include <float.h>
#include <pthread.h>
#include <stdlib.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "paracorr/graph.h"
#include "paracorr/plan.h"

/* The first maximum, or -1 when the row holds a NaN: a wrong prediction
 * whatever the label, while NaN > x alone would let row[0] win. */
static int64_t argmax(const float *row, int64_t c)
{
	int64_t best = 0;

	for (int64_t j = 0; j < c; j++) {
		if (isnan(row[j]))
			return -1;
		if (row[j] > row[best])
			best = j;
	}
	return best;
}

void pc_eval_rows(const float *out, int64_t rows, int64_t c, enum pc_output_kind kind, const int32_t *labels,
		  double scale, struct pc_eval_sums *s, float *dout)
{
	if (dout)
		memset(dout, 0, (size_t)rows * (size_t)c * sizeof(float));
	for (int64_t i = 0; i < rows; i++) {
		const float *row = out + i * c;
		float *drow = dout ? dout + i * c : NULL;
		int label = labels[i];
		double l;

		if (label == PC_LABEL_IGNORE)
			continue;
		s->counted++;
		if (argmax(row, c) == label)
			s->correct++;
		if (kind == PC_OUTPUT_LOGITS) {
			double m = row[0], sum = 0.0;
			for (int64_t j = 1; j < c; j++)
				m = row[j] > m ? row[j] : m;
			for (int64_t j = 0; j < c; j++)
				sum += exp((double)row[j] - m);
			l = m + log(sum) - row[label];
			if (drow) {
				for (int64_t j = 0; j < c; j++)
					drow[j] = (float)(scale * exp((double)row[j] - m) / sum);
				drow[label] -= (float)scale;
			}
		} else if (kind == PC_OUTPUT_LOGPROBS) {
			l = -(double)row[label];
			if (drow)
				drow[label] = (float)-scale;
		} else {
			/* a probability of exactly 0 would be an infinite loss: clamp;
			 * a NaN stays NaN, the clamp would make it look finite */
			double pr = row[label] > FLT_MIN ? row[label] : FLT_MIN;
			if (isnan(row[label]))
				pr = row[label];
			l = -log(pr);
			if (drow)
				drow[label] = (float)(-scale / pr);
		}
		if (!isfinite(l))
			s->non_finite++;
		s->loss += l;
	}
}

/* "[N,4,5]": the output's shape with the batch axis by name, as errors
 * about datasets of any size give it. */
static const char *output_text(const struct pc_plan *p, char *buf, size_t size)
{
	struct pc_shape s = *pc_plan_output_shape(p);
	char tail[160];

	s.dim[0] = 1;
	pc_shape_format(&s, tail, sizeof(tail));
	snprintf(buf, size, "[N%s", strchr(tail, ',') ? strchr(tail, ',') : "]");
	return buf;
}

/* [N, T, V] rather than [N, C]: T alone cannot tell [N, 1, V] apart */
int pc_eval_is_sequence(const struct pc_plan *p)
{
	return pc_plan_output_shape(p)->ndim == 3;
}

void pc_eval_batch_loss(const struct pc_plan *p, const int32_t *y, int rows, double scale, struct pc_eval_sums *s,
			float *dout)
{
	int64_t c = pc_plan_classes(p), t = pc_plan_positions(p), used = (int64_t)rows * t;

	pc_eval_rows(pc_plan_output(p), used, c, pc_graph_output_kind(pc_plan_graph(p)), y, scale, s, dout);
	if (dout && rows < pc_plan_batch(p))
		memset(dout + used * c, 0, (size_t)(((int64_t)pc_plan_batch(p) - rows) * t * c) * sizeof(float));
}

void pc_eval_finish(const struct pc_eval_sums *s, int64_t samples, int sequence, struct pc_eval *out)
{
	memset(out, 0, sizeof(*out));
	out->samples = samples;
	out->sequence = sequence;
	out->correct = s->correct;
	out->non_finite = s->non_finite;
	out->tokens = sequence ? s->counted : 0;
	out->loss = s->non_finite || !isfinite(s->loss) || s->counted == 0 ? NAN : s->loss / (double)s->counted;
	out->accuracy = s->counted ? (double)s->correct / (double)s->counted : NAN;
	if (sequence)
		out->perplexity = exp(out->loss);
}

int pc_eval_check(const struct pc_plan *p, const struct pc_dataset *d, int64_t n, int64_t *counted,
		  struct pc_error *err)
{
	const struct pc_graph *g = pc_plan_graph(p);
	int64_t classes = pc_plan_classes(p), t = pc_plan_positions(p), c = 0;
	int seq = pc_eval_is_sequence(p), tokens = pc_plan_input_dtype(p) == PC_DTYPE_INT64;
	/* a dataset filled in by hand before labels had a rank: one per sample */
	int per_token = d->label_ndim == 2;
	int64_t positions = per_token && d->positions > 0 ? d->positions : 1;
	char a[160];

	*counted = 0;
	if (n <= 0 || n > d->n)
		n = d->n;
	if (n <= 0)
		return pc_error_set(err, PC_ERR_INVALID, "dataset", "no samples to evaluate");
	if (tokens && !d->tokens)
		return pc_error_set(err, PC_ERR_INVALID, "dataset",
				    "the model's input '%s' takes int64 token ids; the dataset's inputs are %s values",
				    pc_graph_input_name(g), pc_dtype_name(d->input_dtype));
	if (!tokens && d->tokens)
		return pc_error_set(err, PC_ERR_INVALID, "dataset",
				    "the dataset holds token ids (%s); the model's input '%s' takes floats",
				    pc_dtype_name(d->input_dtype), pc_graph_input_name(g));
	if (pc_shape_count(&d->sample) != pc_plan_sample_numel(p))
		return pc_error_set(err, PC_ERR_SHAPE, "dataset",
				    "a sample has %lld values; the model's input takes %lld",
				    (long long)pc_shape_count(&d->sample), (long long)pc_plan_sample_numel(p));
	if (seq && !per_token)
		return pc_error_set(err, PC_ERR_SHAPE, "labels",
				    "labels have one class per sample; the model's output %s needs one per token: "
				    "labels of shape [N,%lld]",
				    output_text(p, a, sizeof(a)), (long long)t);
	if (!seq && per_token)
		return pc_error_set(err, PC_ERR_SHAPE, "labels",
				    "labels have shape [N,%lld], a class per token; the model's output %s takes one "
				    "class per sample",
				    (long long)positions, output_text(p, a, sizeof(a)));
	if (seq && positions != t)
		return pc_error_set(err, PC_ERR_SHAPE, "labels",
				    "labels have shape [N,%lld]; the model's output %s needs [N,%lld]",
				    (long long)positions, output_text(p, a, sizeof(a)),
				    (long long)t);
	for (int64_t i = 0; i < n * positions; i++) {
		int32_t y = d->y[i];
		if (seq && y == PC_LABEL_IGNORE)
			continue;
		if (y < 0 || y >= classes) {
			if (!seq)
				return pc_error_set(err, PC_ERR_INVALID, "labels",
						    "label %d of sample %lld is outside the model's %lld classes", y,
						    (long long)i, (long long)classes);
			return pc_error_set(err, PC_ERR_INVALID, "labels",
					    "label %d of sample %lld at position %lld is outside the model's %lld "
					    "classes",
					    y, (long long)(i / t), (long long)(i % t), (long long)classes);
		}
		c++;
	}
	if (tokens) {
		int k = -1;
		int64_t limit = pc_plan_input_id_limit(p, &k), sample = pc_shape_count(&d->sample);
		for (int64_t i = 0; limit >= 0 && i < n * sample; i++)
			if (d->tokens[i] >= limit)
				return pc_error_set(err, PC_ERR_INVALID, "inputs",
						    "token %lld of sample %lld at position %lld is outside the model's "
						    "vocabulary of %lld: node '%s' gathers it from the rows of '%s'",
						    (long long)d->tokens[i], (long long)(i / sample),
						    (long long)(i % sample), (long long)limit, pc_graph_node_name(g, k),
						    pc_graph_node_input_name(g, k, 0));
	}
	*counted = c;
	return PC_OK;
}

/* A plan to read shapes and dtypes from, without buffers: batch 2 as
 * pc_graph_finish's own check, so that a Squeeze cannot take the batch axis. */
static struct pc_plan *probe(const struct pc_graph *g, struct pc_error *err)
{
	const struct pc_shape *in = pc_graph_input_shape(g);

	return pc_plan_new(g, in->ndim > 0 && in->dim[0] > 0 ? (int)in->dim[0] : 2, PC_PLAN_SHAPES, err);
}

int pc_eval_data_for(const struct pc_graph *g, struct pc_preprocess *pp, struct pc_error *err)
{
	struct pc_plan *p = probe(g, err);

	if (!p)
		return err && err->code ? (int)err->code : PC_ERR_NOMEM;
	pp->inputs = pc_plan_input_dtype(p) == PC_DTYPE_INT64 ? PC_DATA_INPUTS_TOKENS : PC_DATA_INPUTS_FLOAT;
	pp->labels = pc_eval_is_sequence(p) ? PC_DATA_LABELS_TOKEN : PC_DATA_LABELS_SAMPLE;
	pc_plan_free(p);
	return PC_OK;
}

int pc_eval_check_graph(const struct pc_graph *g, const struct pc_dataset *d, int64_t n, struct pc_error *err)
{
	struct pc_plan *p = probe(g, err);
	int64_t counted;
	int rc;

	if (!p)
		return err && err->code ? (int)err->code : PC_ERR_NOMEM;
	rc = pc_eval_check(p, d, n, &counted, err);
	pc_plan_free(p);
	return rc;
}

void pc_eval_fill_input(struct pc_plan *p, const struct pc_dataset *d, int64_t first, int rows)
{
	int64_t sample = pc_plan_sample_numel(p);
	int batch = pc_plan_batch(p);
	int64_t *tok = pc_plan_input_int64(p);
	float *in = pc_plan_input(p);

	pc_plan_set_rows(p, rows);
	pc_plan_set_origin(p, first);
	if (tok) {
		memcpy(tok, d->tokens + first * sample, (size_t)rows * (size_t)sample * sizeof(int64_t));
		/* id 0 is in every vocabulary: padding rows stay in bounds */
		if (rows < batch)
			memset(tok + (int64_t)rows * sample, 0, (size_t)(batch - rows) * (size_t)sample * sizeof(int64_t));
		return;
	}
	memcpy(in, d->x + first * sample, (size_t)rows * (size_t)sample * sizeof(float));
	if (rows < batch)
		memset(in + (int64_t)rows * sample, 0, (size_t)(batch - rows) * (size_t)sample * sizeof(float));
}

struct eval_job {
	const struct pc_dataset *d;
	int64_t n;
	int batches, shards;
	double scale; /* 1 / the labels that count */
	struct pc_eval_sums *sums; /* per batch (of the pass at w[0] when gated) */
	/* The gradients (one, or two when gated): each shard's own row, added
	 * in shard order (fixed, so the same bits for any thread count). With
	 * many shards the rows are folded into acc as soon as those before
	 * them are, each freed then; otherwise all are summed at the end, acc
	 * costing more than they do, and shard 0's row is the caller's
	 * gradient, summed in place. */
	int ngrad;
	float *grad[2];
	float **rows[2];	/* per shard, once it is done; NULL when folded */
	double *acc[2];		/* rows [0, folded) summed, or NULL */
	int folded;
	pthread_mutex_t fold_lock;
	volatile int nomem;	/* a shard found no memory for its row */
	int64_t params;
	const struct pc_eval_gated *gated; /* or NULL: the runner's weights */
	pc_cancel_fn cancel;
	void *cancel_arg;
	pc_eval_hook hook;
	void *hook_arg;
	pc_eval_progress_fn progress;
	void *progress_arg;
	int64_t done; /* batches, under fold_lock */
	volatile int cancelled; /* written once, read between batches */
};

/* One batch at the plan's weights; its loss into *sums, its gradient
 * (when grad) added into the plan's gradient buffer. */
static void eval_batch(struct eval_job *j, struct pc_plan *p, int b, int64_t first, int rows, int grad,
		       struct pc_eval_sums *sums)
{
	pc_plan_forward(p);
	if (j->hook)
		j->hook(p, b, j->hook_arg);
	memset(sums, 0, sizeof(*sums));
	pc_eval_batch_loss(p, j->d->y + first * pc_plan_positions(p), rows, j->scale, sums,
			   grad ? pc_plan_output_grad(p) : NULL);
	if (grad)
		pc_plan_backward(p);
}

/* A gated batch (pc_eval_run_gated): record the gates at `at`, then a
 * frozen pass at each w[s], its gradient into row s. */
static void eval_batch_gated(struct eval_job *j, struct pc_plan *p, int b, int64_t first, int rows, float **row)
{
	struct pc_eval_sums unused;

	pc_plan_use_weights(p, j->gated->at);
	pc_plan_set_gates(p, PC_GATES_RECORD, NULL); /* allocated before the map */
	pc_plan_forward(p);
	pc_plan_set_gates(p, PC_GATES_FROZEN, NULL);
	for (int s = 0; s < 2; s++) {
		pc_plan_use_weights(p, j->gated->w[s]);
		pc_plan_swap_weight_grad(p, row[s]);
		eval_batch(j, p, b, first, rows, 1, s == 0 ? &j->sums[b] : &unused);
	}
}

static void eval_shard(struct pc_plan *p, int worker, int shard, void *arg)
{
	struct eval_job *j = arg;
	int batch = pc_plan_batch(p);
	float *own = NULL, *row[2] = {NULL, NULL}, *w = pc_plan_weights(p);

	(void)worker;
	/* the shard's rows (zero) gather its gradients, straight from backward */
	for (int s = 0; s < j->ngrad; s++) {
		if (shard == 0 && !j->acc[s])
			row[s] = memset(j->grad[s], 0, (size_t)j->params * sizeof(float));
		else if (!(row[s] = pc_sys_calloc_huge((size_t)j->params + 1, sizeof(float)))) {
			j->nomem = 1;
			if (s == 1 && !(shard == 0 && !j->acc[0]))
				free(row[0]);
			return;
		}
	}
	if (j->ngrad)
		own = pc_plan_swap_weight_grad(p, row[0]);
	for (int b = shard; b < j->batches; b += j->shards) {
		int64_t first = (int64_t)b * batch;
		int rows = (int)(j->n - first < batch ? j->n - first : batch);
		if (j->nomem)
			break;
		if (j->cancelled || (j->cancel && j->cancel(j->cancel_arg))) {
			j->cancelled = 1;
			break;
		}
		pc_eval_fill_input(p, j->d, first, rows);
		pc_plan_keep_fused(p, j->hook != NULL);
		if (j->gated)
			eval_batch_gated(j, p, b, first, rows, row);
		else
			eval_batch(j, p, b, first, rows, j->ngrad, &j->sums[b]);
		if (j->progress) {
			pthread_mutex_lock(&j->fold_lock);
			j->progress(j->progress_arg, ++j->done, j->batches);
			pthread_mutex_unlock(&j->fold_lock);
		}
	}
	/* the gates stay allocated for the plan's next shard; eval_run turns
	 * them off after the map */
	if (j->gated)
		pc_plan_use_weights(p, w);
	if (!j->ngrad)
		return;
	pc_plan_swap_weight_grad(p, own);
	pthread_mutex_lock(&j->fold_lock);
	for (int s = 0; s < j->ngrad; s++)
		j->rows[s][shard] = row[s];
	while (j->acc[0] && j->folded < j->shards && j->rows[0][j->folded]) {
		for (int s = 0; s < j->ngrad; s++) {
			const float *r = j->rows[s][j->folded];
			for (int64_t i = 0; i < j->params; i++)
				j->acc[s][i] += r[i];
			free(j->rows[s][j->folded]);
			j->rows[s][j->folded] = NULL;
		}
		j->folded++;
	}
	pthread_mutex_unlock(&j->fold_lock);
}

int pc_eval_run(struct pc_runner *r, const struct pc_dataset *d, int64_t limit, float *grad, pc_cancel_fn cancel,
		void *cancel_arg, struct pc_eval *out, struct pc_error *err)
{
	return pc_eval_run_hooked(r, d, limit, grad, cancel, cancel_arg, NULL, NULL, out, err);
}

static int eval_run(struct pc_runner *r, const struct pc_dataset *d, int64_t limit, float *grad,
		    const struct pc_eval_gated *gated, pc_cancel_fn cancel, void *cancel_arg, pc_eval_hook hook,
		    void *hook_arg, pc_eval_progress_fn progress, void *progress_arg, struct pc_eval *out,
		    struct pc_error *err)
{
	struct pc_plan *p0 = pc_runner_plan(r, 0);
	const struct pc_graph *g = pc_runner_graph(r);
	int64_t n = d->n, counted;
	int batch = pc_runner_batch(r);
	struct eval_job j;
	struct pc_eval_sums tot = {0};
	int rc = PC_OK, fold;

	memset(out, 0, sizeof(*out));
	memset(&j, 0, sizeof(j));
	if (limit > 0 && limit < n)
		n = limit;
	if (n <= 0)
		return pc_error_set(err, PC_ERR_INVALID, "dataset", "no samples to evaluate");
	if ((grad || gated) && !pc_plan_weight_grad(p0))
		return pc_error_set(err, PC_ERR_INTERNAL, "eval", "gradient asked of plans without PC_PLAN_GRAD");
	if ((rc = pc_eval_check(p0, d, n, &counted, err)))
		return rc;
	if (counted == 0)
		return pc_error_set(err, PC_ERR_INVALID, "labels",
				    "the %lld samples have no labelled token: every label is %d (ignored)",
				    (long long)n, PC_LABEL_IGNORE);
	j.d = d;
	j.n = n;
	j.scale = 1.0 / (double)counted;
	j.batches = (int)((n + batch - 1) / batch);
	j.shards = j.batches < PC_EVAL_SHARDS ? j.batches : PC_EVAL_SHARDS;
	j.params = pc_graph_param_count(g);
	j.cancel = cancel;
	j.cancel_arg = cancel_arg;
	j.hook = hook;
	j.hook_arg = hook_arg;
	j.progress = progress;
	j.progress_arg = progress_arg;
	j.gated = gated;
	if (gated) {
		j.ngrad = 2;
		j.grad[0] = gated->grad[0];
		j.grad[1] = gated->grad[1];
	} else if (grad) {
		j.ngrad = 1;
		j.grad[0] = grad;
	}
	pthread_mutex_init(&j.fold_lock, NULL);
	j.sums = calloc((size_t)j.batches, sizeof(*j.sums));
	/* folding holds acc (two rows) and the rows in flight: about one per
	 * thread, and those done early */
	fold = j.ngrad && j.shards > 2 * pc_runner_threads(r) + 2;
	if (!j.sums)
		goto nomem;
	for (int s = 0; s < j.ngrad; s++) {
		if (!(j.rows[s] = calloc((size_t)j.shards, sizeof(*j.rows[s]))))
			goto nomem;
		if (fold && !(j.acc[s] = calloc((size_t)j.params + 1, sizeof(double))))
			goto nomem;
	}
	/* gate storage is allocated here, not by the workers mid-pass */
	for (int w = 0; gated && w < pc_runner_threads(r); w++) {
		struct pc_plan *p = pc_runner_plan(r, w);
		float *own = pc_plan_weights(p);
		pc_plan_use_weights(p, gated->at);
		if (pc_plan_weights(p) != gated->at) {
			rc = pc_error_set(err, PC_ERR_INTERNAL, "eval", "gated passes need plans that share weights");
			goto out;
		}
		pc_plan_use_weights(p, own);
		if ((rc = pc_plan_set_gates(p, PC_GATES_RECORD, err)))
			goto out;
	}
	pc_runner_map(r, j.shards, eval_shard, &j);
	if (j.nomem) {
		rc = pc_error_set(err, PC_ERR_NOMEM, "eval", "out of memory for a shard's gradient");
		goto out;
	}
	if (j.cancelled) {
		rc = pc_error_set(err, PC_ERR_CANCELLED, "eval", "cancelled");
		goto out;
	}
	/* fixed summation orders: the same bits for any thread count */
	for (int b = 0; b < j.batches; b++) {
		tot.loss += j.sums[b].loss;
		tot.counted += j.sums[b].counted;
		tot.correct += j.sums[b].correct;
		tot.non_finite += j.sums[b].non_finite;
	}
	for (int s = 0; s < j.ngrad; s++)
		for (int64_t i = 0; i < j.params; i++) {
			double v = j.acc[s] ? j.acc[s][i] : 0.0;
			for (int k = j.folded; k < j.shards; k++)
				v += j.rows[s][k][i];
			j.grad[s][i] = (float)v;
		}
	pc_eval_finish(&tot, n, pc_eval_is_sequence(p0), out);
	goto out;
nomem:
	rc = pc_error_set(err, PC_ERR_NOMEM, "eval", "out of memory");
out:
	for (int w = 0; gated && w < pc_runner_threads(r); w++)
		pc_plan_set_gates(pc_runner_plan(r, w), PC_GATES_OFF, NULL);
	for (int s = 0; s < j.ngrad; s++) {
		for (int k = 0; j.rows[s] && k < j.shards; k++)
			if (j.rows[s][k] != j.grad[s])
				free(j.rows[s][k]);
		free(j.rows[s]);
		free(j.acc[s]);
	}
	free(j.sums);
	pthread_mutex_destroy(&j.fold_lock);
	return rc;
}

int pc_eval_run_hooked(struct pc_runner *r, const struct pc_dataset *d, int64_t limit, float *grad,
		       pc_cancel_fn cancel, void *cancel_arg, pc_eval_hook hook, void *hook_arg, struct pc_eval *out,
		       struct pc_error *err)
{
	return eval_run(r, d, limit, grad, NULL, cancel, cancel_arg, hook, hook_arg, NULL, NULL, out, err);
}

int pc_eval_run_progress(struct pc_runner *r, const struct pc_dataset *d, int64_t limit, float *grad,
			 pc_cancel_fn cancel, void *cancel_arg, pc_eval_progress_fn progress, void *progress_arg,
			 struct pc_eval *out, struct pc_error *err)
{
	return eval_run(r, d, limit, grad, NULL, cancel, cancel_arg, NULL, NULL, progress, progress_arg, out, err);
}

int pc_eval_run_gated(struct pc_runner *r, const struct pc_dataset *d, int64_t limit,
		      const struct pc_eval_gated *gated, pc_cancel_fn cancel, void *cancel_arg, struct pc_eval *out,
		      struct pc_error *err)
{
	return eval_run(r, d, limit, NULL, gated, cancel, cancel_arg, NULL, NULL, NULL, NULL, out, err);
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
