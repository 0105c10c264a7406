/* The activation cache of resumed passes (prefix.h). */
#include <stdlib.h>
#include <string.h>

#include "paracorr/graph.h"
#include "paracorr/prefix.h"

/* The activations a pass from `node` on reads, per batch. */
struct cut {
	int node;
	struct pc_plan_cut *cut;
	int64_t floats; /* per batch */
	float *data;	/* batches x floats */
};

struct pc_prefix {
	struct pc_runner *r;
	const struct pc_dataset *d;
	int64_t limit, samples;
	int batches;
	pc_cancel_fn cancel;
	void *cancel_arg;
	struct cut *cuts;
	int n_cuts;
};

static void capture(struct pc_plan *p, int b, void *arg)
{
	struct pc_prefix *c = arg;

	for (int i = 0; i < c->n_cuts; i++)
		pc_plan_cut_save(p, c->cuts[i].cut, c->cuts[i].data + (int64_t)b * c->cuts[i].floats);
}

pc_eval_hook pc_prefix_hook(const struct pc_prefix *c)
{
	return c->n_cuts ? capture : NULL;
}

int pc_prefix_cuts(const struct pc_prefix *c)
{
	return c->n_cuts;
}

void pc_prefix_free(struct pc_prefix *c)
{
	if (!c)
		return;
	for (int i = 0; i < c->n_cuts; i++) {
		pc_plan_cut_free(c->cuts[i].cut);
		free(c->cuts[i].data);
	}
	free(c->cuts);
	free(c);
}

/* Deepest first while the budget lasts (prefix.h). A failed allocation is
 * an error, as everywhere, so that a run's result never depends on one. */
static int place_cuts(struct pc_prefix *c, const char *starts, int nn, struct pc_error *err)
{
	const struct pc_plan *p0 = pc_runner_plan(c->r, 0);
	int64_t left = PC_PREFIX_BYTES / (int64_t)sizeof(float);

	for (int k = nn - 1; k > 0; k--) {
		struct cut *t = &c->cuts[c->n_cuts];
		struct pc_error cut_err = {0};

		if (!starts[k])
			continue;
		if (pc_plan_cut_new(p0, k, &t->cut, &cut_err)) {
			if (cut_err.code == PC_ERR_NOMEM)
				return pc_error_set(err, PC_ERR_NOMEM, "prefix", "out of memory");
			continue; /* a cut the plan cannot make */
		}
		t->node = k;
		t->floats = pc_plan_cut_floats(t->cut);
		if (t->floats * c->batches > left) {
			pc_plan_cut_free(t->cut);
			t->cut = NULL;
			continue;
		}
		if (!(t->data = malloc((size_t)(t->floats * c->batches) * sizeof(float) + 1))) {
			pc_plan_cut_free(t->cut);
			t->cut = NULL;
			return pc_error_set(err, PC_ERR_NOMEM, "prefix", "out of memory for the activation cache");
		}
		left -= t->floats * c->batches;
		c->n_cuts++;
	}
	return 0;
}

int pc_prefix_new(struct pc_runner *r, const struct pc_dataset *d, int64_t limit, const int *params, int n_params,
		  pc_cancel_fn cancel, void *cancel_arg, struct pc_prefix **out, struct pc_error *err)
{
	const struct pc_graph *g = pc_runner_graph(r);
	int nn = pc_graph_node_count(g), tensors = pc_graph_param_tensors(g);
	int n = params ? n_params : tensors, rc;
	struct pc_prefix *c = calloc(1, sizeof *c);
	char *starts = calloc((size_t)nn + 1, 1);

	*out = NULL;
	if (c)
		c->cuts = calloc((size_t)(n > 0 ? n : 0) + 1, sizeof *c->cuts);
	if (!c || !starts || !c->cuts) {
		rc = pc_error_set(err, PC_ERR_NOMEM, "prefix", "out of memory");
		goto fail;
	}
	c->r = r;
	c->d = d;
	c->limit = limit;
	c->samples = limit > 0 && limit < d->n ? limit : d->n;
	c->batches = (int)((c->samples + pc_runner_batch(r) - 1) / pc_runner_batch(r));
	c->cancel = cancel;
	c->cancel_arg = cancel_arg;
	for (int i = 0; i < n; i++) {
		int p = params ? params[i] : i;

		if (p < 0 || p >= tensors) {
			rc = pc_error_set(err, PC_ERR_INVALID, "prefix", "parameter tensor %d of %d", p, tensors);
			goto fail;
		}
		if (pc_graph_param(g, p)->node_index > 0)
			starts[pc_graph_param(g, p)->node_index] = 1;
	}
	if ((rc = place_cuts(c, starts, nn, err)))
		goto fail;
	free(starts);
	*out = c;
	return 0;
fail:
	free(starts);
	pc_prefix_free(c);
	return rc;
}

struct resume_job {
	struct pc_prefix *c;
	const struct cut *t;
	struct pc_eval_sums *sums; /* per batch */
	volatile int cancelled;	   /* written once, read between batches */
};

/* One batch from the cut on: pc_eval_run's batch without the prefix. */
static void resume_batch(struct pc_plan *p, int worker, int b, void *arg)
{
	struct resume_job *j = arg;
	struct pc_prefix *c = j->c;
	int batch = pc_plan_batch(p);
	int64_t first = (int64_t)b * batch;
	int rows = (int)(c->samples - first < batch ? c->samples - first : batch);

	(void)worker;
	if (j->cancelled || (c->cancel && c->cancel(c->cancel_arg))) {
		j->cancelled = 1;
		return;
	}
	pc_plan_set_rows(p, rows);
	pc_plan_set_origin(p, first);
	pc_plan_cut_restore(p, j->t->cut, j->t->data + (int64_t)b * j->t->floats);
	pc_plan_keep_fused(p, 0);
	pc_plan_forward_range(p, j->t->node, pc_graph_node_count(pc_plan_graph(p)));
	memset(&j->sums[b], 0, sizeof j->sums[b]);
	/* the scale only weighs an output gradient, and there is none */
	pc_eval_batch_loss(p, c->d->y + first * pc_plan_positions(p), rows, 1.0, &j->sums[b], NULL);
}

int pc_prefix_pass(struct pc_prefix *c, int start, struct pc_eval *out, int *resumed, struct pc_error *err)
{
	const struct cut *t = NULL;
	struct resume_job j;
	struct pc_eval_sums tot = {0};

	*resumed = 0;
	for (int i = 0; i < c->n_cuts; i++)
		if (c->cuts[i].node <= start && (!t || c->cuts[i].node > t->node))
			t = &c->cuts[i];
	if (!t)
		return pc_eval_run(c->r, c->d, c->limit, NULL, c->cancel, c->cancel_arg, out, err);
	memset(&j, 0, sizeof j);
	j.c = c;
	j.t = t;
	j.sums = calloc((size_t)c->batches, sizeof *j.sums);
	if (!j.sums)
		return pc_error_set(err, PC_ERR_NOMEM, "prefix", "out of memory");
	pc_runner_map(c->r, c->batches, resume_batch, &j);
	if (j.cancelled) {
		free(j.sums);
		return pc_error_set(err, PC_ERR_CANCELLED, "prefix", "cancelled");
	}
	for (int b = 0; b < c->batches; b++) {
		tot.loss += j.sums[b].loss;
		tot.counted += j.sums[b].counted;
		tot.correct += j.sums[b].correct;
		tot.non_finite += j.sums[b].non_finite;
	}
	free(j.sums);
	pc_eval_finish(&tot, c->samples, pc_eval_is_sequence(pc_runner_plan(c->r, 0)), out);
	*resumed = 1;
	return 0;
}
