/* analysis: the corruption study.
 *
 * Layout of the work: one clean pass with gradient (which also fills the
 * activation caches), then, group by group, directions (the gradient
 * corruption for each norm and sparsity, and the random trials) evaluated
 * at every radius. Every evaluation is a map over batches whose per-batch
 * losses are summed in batch order, so a report does not depend on the
 * thread count.
 *
 * Two shortcuts, both exact up to float rounding:
 *  - prefix cache: a group whose parameters are all read at node k or
 *    later leaves every activation before k clean; those consumed from k on
 *    (the frontier) are copied from the clean pass instead of recomputed;
 *  - linear layer: when the group lies in one Gemm/MatMul/Conv whose only
 *    activation input is input 0, f(x; w + eps*u) = f(x; w) + eps*f(x; u)
 *    with the layer's other parameters set to zero in f(x; u), so the layer
 *    runs once per direction and every radius is an axpy away. */
#include "paracorr/analysis.h"
#include "paracorr/stats.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "paracorr/corrupt.h"
#include "paracorr/critical.h"
#include "paracorr/cstudy.h"
#include "paracorr/fstudy.h"
#include "paracorr/graph.h"
#include "paracorr/groups.h"
#include "paracorr/report.h"
#include "paracorr/runner.h"
#include "paracorr/sys.h"

/* the distinct phase names below */
#define PHASES_MAX 16

struct group {
	char name[320];
	enum pc_group_kind kind;
	int block; /* the spec's corruption block it belongs to */
	int *params; /* parameter table indices */
	int n_params;
	int64_t count;
	int start;  /* first node reading any of its parameters */
	int linear; /* node index when the linear shortcut applies, else -1 */
	float *g;   /* gathered gradient */
	float *w0;  /* gathered clean weights */
};

struct cache_entry {
	int node; /* start node k */
	struct pc_plan_cut *cut; /* the values a run from k reads; NULL at node 0 */
	int64_t floats;
	float *data; /* batches x floats */
	int64_t y_floats; /* node k's output, when a linear group starts at k */
	float *ydata;
};

struct study {
	const struct pc_graph *g;
	const struct pc_dataset *d;
	const struct pc_spec *spec;
	const struct pc_study_opts *o;
	struct pc_runner *r;
	int64_t n;
	int batch, batches;
	int64_t positions; /* labels per sample: T for a sequence model, else 1 */
	int seq;	   /* the output is [N, T, V], read per token */
	float *grad;	   /* clean gradient */
	float *grad_step; /* gradient at a multi-step iterate */
	struct group *groups;
	int n_groups;
	struct cache_entry *cache;
	int n_cache;
	int *cache_of_node; /* entry index or -1 */
	double *prefix_flops; /* per batch: flops of nodes [0, k) */
	double batch_flops;
	/* accounting */
	int64_t fwd_passes, bwd_passes, passes_done, passes_total;
	double flops_done, flops_saved;
	double t0;
	const char *phase;
	/* wall seconds per phase (set_phase), for the report's timing.phases */
	struct {
		const char *name;
		double seconds;
	} phases[PHASES_MAX];
	int n_phases;
	double phase_start;
	/* per-worker scratch for the linear shortcut */
	float **delta, **yclean, **keep;
	int64_t scratch_floats, keep_floats;
	struct pc_eval clean;
	json_t *critical; /* critical[] rows, for the blocks that ask */
};

static void report_progress(struct study *s);

/* Enters phase name (NULL: none), the time since the last change going to
 * the phase left. */
static void set_phase(struct study *s, const char *name)
{
	double now = pc_sys_seconds();
	int i;

	if (s->phase) {
		for (i = 0; i < s->n_phases && strcmp(s->phases[i].name, s->phase); i++)
			;
		if (i == s->n_phases && i < PHASES_MAX) {
			s->phases[i].name = s->phase;
			s->phases[i].seconds = 0;
			s->n_phases++;
		}
		if (i < s->n_phases)
			s->phases[i].seconds += now - s->phase_start;
	}
	s->phase = name;
	s->phase_start = now;
}

/* The bit-fault study's passes, as they are run. */
static void faults_progress(void *arg, int64_t passes)
{
	struct study *s = arg;

	s->passes_done += passes;
	report_progress(s);
}

static void report_progress(struct study *s)
{
	struct pc_progress pr;

	if (!s->o->progress)
		return;
	pr.phase = s->phase;
	pr.done = s->passes_done;
	pr.total = s->passes_total;
	pr.elapsed = pc_sys_seconds() - s->t0;
	pr.remaining = s->passes_done > 0 ? pr.elapsed / (double)s->passes_done *
						    (double)(s->passes_total - s->passes_done)
					  : -1.0;
	pr.fraction = s->passes_total > 0 ? (double)s->passes_done / (double)s->passes_total : 0.0;
	s->o->progress(&pr, s->o->progress_arg);
}

static int cancelled(const struct study *s)
{
	return s->o->cancel && s->o->cancel(s->o->cancel_arg);
}

/* --- cost model ------------------------------------------------------------ */

/* --- groups ---------------------------------------------------------------- */

/* The group's first node, when its output is linear in the group's
 * parameters it reads: a Gemm, MatMul or Conv whose activation comes in at
 * input 0 and whose group parameters no other node reads. The group's
 * parameters at later nodes are simply written per radius. -1 otherwise. */
static int linear_node(const struct pc_graph *g, const struct group *gr)
{
	int k = gr->start;

	if (k >= pc_graph_node_count(g) || !pc_graph_node_linear(g, k))
		return -1;
	for (int j = 0; j < gr->n_params; j++) {
		int at_k = 0;
		for (int i = 1; i < pc_graph_node_inputs(g, k); i++)
			at_k += pc_graph_node_input_param(g, k, i) == gr->params[j];
		if (at_k && pc_graph_param_reads(g, gr->params[j]) > at_k)
			return -1;
	}
	return k;
}

/* Whether parameter table entry i is an input of node k. */
static int reads_param(const struct pc_graph *g, int k, int i)
{
	for (int j = 0; j < pc_graph_node_inputs(g, k); j++)
		if (pc_graph_node_input_param(g, k, j) == i)
			return 1;
	return 0;
}

static int add_group(struct study *s, int block, enum pc_group_kind kind, const char *name, const int *params,
		     int n_params, struct pc_error *err)
{
	struct group *gr = &s->groups[s->n_groups];
	int64_t off = 0;

	memset(gr, 0, sizeof(*gr));
	gr->kind = kind;
	gr->block = block;
	snprintf(gr->name, sizeof(gr->name), "%s", name);
	gr->params = malloc((size_t)n_params * sizeof(int));
	if (!gr->params)
		return pc_error_set(err, PC_ERR_NOMEM, "analysis", "out of memory");
	s->n_groups++;
	memcpy(gr->params, params, (size_t)n_params * sizeof(int));
	gr->n_params = n_params;
	gr->start = pc_graph_node_count(s->g);
	for (int j = 0; j < n_params; j++) {
		const struct pc_param *pt = pc_graph_param(s->g, params[j]);
		gr->count += pt->count;
		if (pt->node_index < gr->start)
			gr->start = pt->node_index;
	}
	gr->g = malloc((size_t)gr->count * sizeof(float) + 1);
	gr->w0 = malloc((size_t)gr->count * sizeof(float) + 1);
	if (!gr->g || !gr->w0)
		return pc_error_set(err, PC_ERR_NOMEM, "analysis", "out of memory for group %s", name);
	for (int j = 0; j < n_params; j++) {
		const struct pc_param *pt = pc_graph_param(s->g, params[j]);
		memcpy(gr->g + off, s->grad + pt->offset, (size_t)pt->count * sizeof(float));
		memcpy(gr->w0 + off, pc_graph_params(s->g) + pt->offset, (size_t)pt->count * sizeof(float));
		off += pt->count;
	}
	gr->linear = linear_node(s->g, gr);
	return PC_OK;
}

/* The spec's groups, block by block in its group order: model, one per
 * tensor, one per module (paracorr/groups.h). Linear in parameters, nodes
 * and node inputs. */
static int build_groups(struct study *s, struct pc_error *err)
{
	const struct pc_graph *g = s->g;
	int np = pc_graph_param_tensors(g), *idx = malloc(((size_t)np + 1) * sizeof(int));
	struct pc_layer_groups lg = {0};
	int rc = PC_OK;
	char name[320];

	s->groups = calloc((size_t)s->spec->n_blocks * (size_t)(1 + 2 * np) + 1, sizeof(*s->groups));
	if (!idx || !s->groups) {
		rc = pc_error_set(err, PC_ERR_NOMEM, "analysis", "out of memory");
		goto out;
	}
	for (int b = 0; b < s->spec->n_blocks && !rc; b++) {
		const struct pc_corruption *c = &s->spec->blocks[b];
		for (int o = 0; o < c->n_group_order && !rc; o++) {
			enum pc_group_kind kind = c->group_order[o];
			if (kind == PC_GROUP_MODEL) {
				for (int i = 0; i < np; i++)
					idx[i] = i;
				rc = add_group(s, b, kind, "model", idx, np, err);
			} else if (kind == PC_GROUP_TENSOR) {
				for (int i = 0; i < np && !rc; i++) {
					snprintf(name, sizeof(name), "tensor:%s", pc_graph_param(g, i)->name);
					rc = add_group(s, b, kind, name, &i, 1, err);
				}
			} else {
				if (!lg.g && (rc = pc_layer_groups_build(g, &lg, err)))
					break;
				for (int j = 0; j < lg.n && !rc; j++) {
					snprintf(name, sizeof(name), "layer:%s", lg.g[j].name);
					rc = add_group(s, b, kind, name, lg.g[j].params, lg.g[j].n_params, err);
				}
			}
		}
	}
out:
	pc_layer_groups_free(&lg);
	free(idx);
	return rc;
}

/* Write src (gathered) into the group's parameters of every worker. */
static void write_group(struct study *s, const struct group *gr, const float *src)
{
	int64_t off = 0;

	for (int j = 0; j < gr->n_params; j++) {
		const struct pc_param *pt = pc_graph_param(s->g, gr->params[j]);
		pc_runner_write(s->r, pt->offset, pt->count, src + off);
		off += pt->count;
	}
}

/* --- caches ------------------------------------------------------------------ */

/* How many evaluations a group will cost, for choosing what to cache. */
static double group_evals(const struct study *s, const struct group *gr)
{
	const struct pc_corruption *c = &s->spec->blocks[gr->block];
	double per_dir = c->n_epsilons;

	return (double)c->n_norms * c->n_sparsity * (per_dir * (c->steps > 1 ? 2 : 1) + per_dir * c->random_trials);
}

static double group_directions(const struct study *s, const struct group *gr)
{
	const struct pc_corruption *c = &s->spec->blocks[gr->block];

	return (double)c->n_norms * c->n_sparsity * (1 + c->random_trials);
}

/* Which nodes to resume from, within the cache budget. What a run from k
 * needs restored is the plan's to say (pc_plan_cut): a cut that would hold
 * integers (token ids, masks) cannot be cached, and at node 0 the frontier
 * is the input, which the dataset holds. */
static int plan_caches(struct study *s, struct pc_error *err)
{
	struct pc_plan *p = pc_runner_plan(s->r, 0);
	const struct pc_graph *g = s->g;
	int nn = pc_graph_node_count(g);
	double *gain = calloc((size_t)nn + 1, sizeof(double));
	unsigned char *linear_at = calloc((size_t)nn + 1, 1);
	size_t *cost = calloc((size_t)nn + 1, sizeof(size_t));
	struct pc_plan_cut **cuts = calloc((size_t)nn + 1, sizeof(*cuts));
	size_t budget = s->o->shortcuts ? s->o->cache_bytes : 0, used = 0;
	int rc = PC_OK;

	s->cache_of_node = malloc(((size_t)nn + 1) * sizeof(int));
	s->cache = calloc((size_t)nn + 1, sizeof(*s->cache));
	if (!gain || !linear_at || !cost || !cuts || !s->cache_of_node || !s->cache) {
		rc = pc_error_set(err, PC_ERR_NOMEM, "analysis", "out of memory");
		goto out;
	}
	for (int k = 0; k < nn; k++)
		s->cache_of_node[k] = -1;
	for (int i = 0; i < s->n_groups; i++) {
		const struct group *gr = &s->groups[i];
		if (gr->start > 0 && gr->start < nn)
			gain[gr->start] += group_evals(s, gr) * s->prefix_flops[gr->start];
		if (gr->linear >= 0) {
			linear_at[gr->linear] = 1;
			/* one clean layer output per direction */
			gain[gr->linear] += group_directions(s, gr) * pc_plan_node_flops(p, gr->linear);
		}
	}
	/* bytes each candidate would hold */
	for (int k = 0; k < nn; k++) {
		int64_t floats = 0;
		if (gain[k] <= 0.0)
			continue;
		if (k) {
			struct pc_error cut_err = {0};
			rc = pc_plan_cut_new(p, k, &cuts[k], &cut_err);
			if (rc == PC_ERR_UNSUPPORTED) {
				gain[k] = 0.0;
				rc = PC_OK;
				continue;
			}
			if (rc) {
				rc = pc_error_set(err, rc, cut_err.where, "%s", cut_err.text);
				goto out;
			}
			floats += pc_plan_cut_floats(cuts[k]);
		}
		if (linear_at[k])
			floats += pc_plan_node_output_numel(p, k);
		cost[k] = (size_t)floats * (size_t)s->batches * sizeof(float);
	}
	/* greedy: the most flops saved per byte first */
	for (;;) {
		int best = -1;
		double best_ratio = 0.0;
		size_t best_bytes = 0;
		for (int k = 0; k < nn; k++) {
			size_t bytes = cost[k];
			if (gain[k] <= 0.0 || s->cache_of_node[k] >= 0)
				continue;
			if (used + bytes > budget || bytes == 0)
				continue;
			if (gain[k] / (double)bytes > best_ratio) {
				best_ratio = gain[k] / (double)bytes;
				best = k;
				best_bytes = bytes;
			}
		}
		if (best < 0)
			break;
		{
			struct cache_entry *ce = &s->cache[s->n_cache];
			ce->node = best;
			ce->floats = cuts[best] ? pc_plan_cut_floats(cuts[best]) : 0;
			if (linear_at[best])
				ce->y_floats = pc_plan_node_output_numel(p, best);
			ce->data = malloc((size_t)ce->floats * (size_t)s->batches * sizeof(float) + 1);
			ce->ydata = ce->y_floats ? malloc((size_t)ce->y_floats * (size_t)s->batches * sizeof(float))
						 : NULL;
			if (!ce->data || (ce->y_floats && !ce->ydata)) {
				/* not "cache less": a study with fewer caches rounds
				 * differently, and the same spec and seed must give the
				 * same report bytes whatever the heap had free */
				size_t want = ((size_t)ce->floats + (size_t)ce->y_floats) * (size_t)s->batches *
					      sizeof(float);
				free(ce->data);
				free(ce->ydata);
				memset(ce, 0, sizeof(*ce));
				rc = pc_error_set(err, PC_ERR_NOMEM, "analysis",
						  "out of memory for %zu bytes of cached activations (within the cache "
						  "budget of %zu bytes: lower cache_mb)",
						  want, budget);
				goto out;
			}
			ce->cut = cuts[best];
			cuts[best] = NULL;
			s->cache_of_node[best] = s->n_cache++;
			used += best_bytes;
		}
	}
out:
	for (int k = 0; cuts && k < nn; k++)
		pc_plan_cut_free(cuts[k]);
	free(cuts);
	free(gain);
	free(cost);
	free(linear_at);
	return rc;
}

static void capture(struct pc_plan *p, int b, void *arg)
{
	struct study *s = arg;

	for (int c = 0; c < s->n_cache; c++) {
		struct cache_entry *ce = &s->cache[c];
		if (ce->cut)
			pc_plan_cut_save(p, ce->cut, ce->data + (int64_t)b * ce->floats);
		if (ce->ydata)
			memcpy(ce->ydata + (int64_t)b * ce->y_floats, pc_plan_node_output(p, ce->node),
			       (size_t)ce->y_floats * sizeof(float));
	}
}

/* --- evaluation ---------------------------------------------------------------- */

struct eval_req {
	struct study *s;
	const struct group *gr;
	const float *u;	     /* direction (gathered), for the linear shortcut */
	int linear;	     /* node index, or -1: weights are already written */
	int n_eps;
	const double *eps;   /* effective radii (linear shortcut) */
	struct pc_eval_sums *sums; /* n_eps x batches */
	volatile int stop;   /* set once by any worker, read between batches */
};

/* Layer k on the direction: its parameters read u where the group has
 * them and zero elsewhere, from this worker's scratch (the weights are
 * every worker's), and its output is copied out. */
static void linear_delta(struct study *s, struct pc_plan *p, int worker, const struct group *gr, const float *u,
			 int k)
{
	float *keep = s->keep[worker];
	int64_t kept = 0;

	for (int i = 1; i < pc_graph_node_inputs(s->g, k); i++) {
		int pi = pc_graph_node_input_param(s->g, k, i), in_group = 0;
		int64_t off = 0;
		if (pi < 0)
			continue;
		const struct pc_param *pt = pc_graph_param(s->g, pi);
		for (int j = 0; j < gr->n_params && !in_group; j++) {
			in_group = gr->params[j] == pi;
			if (!in_group)
				off += pc_graph_param(s->g, gr->params[j])->count;
		}
		if (in_group)
			memcpy(keep + kept, u + off, (size_t)pt->count * sizeof(float));
		else
			memset(keep + kept, 0, (size_t)pt->count * sizeof(float));
		pc_plan_bind_param(p, pi, keep + kept);
		kept += pt->count;
	}
	pc_plan_forward_range(p, k, k + 1);
	memcpy(s->delta[worker], pc_plan_node_output(p, k), (size_t)pc_plan_node_output_numel(p, k) * sizeof(float));
	for (int i = 1; i < pc_graph_node_inputs(s->g, k); i++)
		if (pc_graph_node_input_param(s->g, k, i) >= 0)
			pc_plan_bind_param(p, pc_graph_node_input_param(s->g, k, i), NULL);
}

/* The batch the study runs: at most the spec's, and small enough that one
 * batch's activations stay in a core's cache, where the memory-bound ops
 * (activations, pools, the layout copies of Conv) run several times faster
 * than from DRAM. Batches only group the per-sample sums, so the numbers
 * differ by rounding at most. The activations per sample are measured from
 * two plans, so the fixed parts (parameters, workspace) cancel. */
#define EXEC_BATCH_STEP 16 /* the direct Conv kernel's lanes */
#define EXEC_BATCH_BYTES ((size_t)2 << 20)

static int exec_batch(const struct pc_graph *g, int want)
{
	struct pc_plan *a, *b;
	size_t per_sample = 0;
	int batch;

	if (want <= EXEC_BATCH_STEP)
		return want;
	/* the probes only measure their buffers: no copy of the weights */
	a = pc_plan_new(g, EXEC_BATCH_STEP, PC_PLAN_SHARED_WEIGHTS, NULL);
	b = pc_plan_new(g, 2 * EXEC_BATCH_STEP, PC_PLAN_SHARED_WEIGHTS, NULL);
	if (a && b && pc_plan_bytes(b) > pc_plan_bytes(a))
		per_sample = (pc_plan_bytes(b) - pc_plan_bytes(a)) / EXEC_BATCH_STEP;
	pc_plan_free(a);
	pc_plan_free(b);
	if (!per_sample)
		return want; /* the runner reports the planning error, if any */
	batch = (int)(EXEC_BATCH_BYTES / per_sample / EXEC_BATCH_STEP * EXEC_BATCH_STEP);
	if (batch < EXEC_BATCH_STEP)
		batch = EXEC_BATCH_STEP;
	return batch < want ? batch : want;
}

/* y = a + eps * d: the corrupted layer's output from the clean one and the
 * layer on the direction; memory-bound, so built for the CPU's width. */
PC_HOT static void shifted(float *y, const float *a, float eps, const float *d, int64_t n)
{
	for (int64_t i = 0; i < n; i++)
		y[i] = a[i] + eps * d[i];
}

/* The same through the Relu that the plan fuses into this layer (see
 * pc_plan's fuse_relu): written straight into the Relu's output, rounded
 * exactly as the separate ops would round it. */
PC_HOT static void shifted_relu(float *y, const float *a, float eps, const float *d, int64_t n)
{
	for (int64_t i = 0; i < n; i++) {
		float v = a[i] + eps * d[i];
		y[i] = v > 0.0f ? v : 0.0f;
	}
}

static void eval_batch(struct pc_plan *p, int worker, int b, void *arg)
{
	struct eval_req *q = arg;
	struct study *s = q->s;
	const struct group *gr = q->gr;
	int64_t first = (int64_t)b * s->batch;
	int rows = (int)(s->n - first < s->batch ? s->n - first : s->batch);
	int start = gr ? gr->start : 0;
	int last = pc_graph_node_count(s->g);
	int ce_idx = start < last ? s->cache_of_node[start] : -1;
	const struct cache_entry *ce = ce_idx >= 0 ? &s->cache[ce_idx] : NULL;

	if (q->stop || cancelled(s)) {
		q->stop = 1;
		return;
	}
	pc_plan_keep_fused(p, 0);
	if (ce && start > 0) {
		pc_plan_cut_restore(p, ce->cut, ce->data + (int64_t)b * ce->floats);
	} else {
		pc_eval_fill_input(p, s->d, first, rows);
		start = 0;
	}
	if (q->linear < 0) {
		pc_plan_forward_range(p, start, last);
		memset(&q->sums[b], 0, sizeof(q->sums[b]));
		pc_eval_batch_loss(p, s->d->y + first * s->positions, rows, 1.0, &q->sums[b], NULL);
		return;
	}
	{
		int k = q->linear;
		float *out = pc_plan_node_output(p, k);
		int64_t out_n = pc_plan_node_output_numel(p, k);
		float *w = s->keep[worker]; /* linear_delta is done with it */
		const float *yc;
		int rest = 0;
		pc_plan_forward_range(p, start, k);
		linear_delta(s, p, worker, gr, q->u, k);
		if (ce && ce->ydata) {
			yc = ce->ydata + (int64_t)b * ce->y_floats;
		} else {
			pc_plan_forward_range(p, k, k + 1);
			memcpy(s->yclean[worker], out, (size_t)out_n * sizeof(float));
			yc = s->yclean[worker];
		}
		for (int e = 0; e < q->n_eps; e++) {
			float eps = (float)q->eps[e];
			const float *dl = s->delta[worker];
			int64_t off = 0, woff = 0;
			/* the group's parameters past node k, bound to this worker's plan */
			for (int j = 0; j < gr->n_params; j++) {
				const struct pc_param *pt = pc_graph_param(s->g, gr->params[j]);
				if (!reads_param(s->g, k, gr->params[j])) {
					shifted(w + woff, gr->w0 + off, eps, q->u + off, pt->count);
					if (!e)
						pc_plan_bind_param(p, gr->params[j], w + woff);
					woff += pt->count;
					rest = 1;
				}
				off += pt->count;
			}
			if (pc_plan_node_fuses_relu(p, k) && k + 2 <= last) {
				shifted_relu(pc_plan_node_output(p, k + 1), yc, eps, dl, out_n);
				pc_plan_forward_range(p, k + 2, last);
			} else {
				shifted(out, yc, eps, dl, out_n);
				pc_plan_forward_range(p, k + 1, last);
			}
			memset(&q->sums[(int64_t)e * s->batches + b], 0, sizeof(q->sums[0]));
			pc_eval_batch_loss(p, s->d->y + first * s->positions, rows, 1.0,
					   &q->sums[(int64_t)e * s->batches + b], NULL);
		}
		for (int j = 0; j < gr->n_params && rest; j++)
			if (!reads_param(s->g, k, gr->params[j]))
				pc_plan_bind_param(p, gr->params[j], NULL);
	}
}

/* Batch order: the same sums whatever the thread count. */
static void reduce(const struct study *s, const struct pc_eval_sums *sums, struct pc_eval *out)
{
	struct pc_eval_sums t = {0};

	for (int b = 0; b < s->batches; b++) {
		t.loss += sums[b].loss;
		t.counted += sums[b].counted;
		t.correct += sums[b].correct;
		t.non_finite += sums[b].non_finite;
	}
	pc_eval_finish(&t, s->n, s->seq, out);
}

static void account(struct study *s, const struct group *gr, int n_eps, int linear)
{
	int nn = pc_graph_node_count(s->g);
	int start = gr && gr->start > 0 && gr->start < nn && s->cache_of_node[gr->start] >= 0 ? gr->start : 0;
	int ce = gr && gr->start < nn ? s->cache_of_node[gr->start] : -1;
	double full = s->batch_flops * s->batches, done;

	if (linear >= 0) {
		struct pc_plan *p = pc_runner_plan(s->r, 0);
		double fk = pc_plan_node_flops(p, linear);
		double rest = s->batch_flops - s->prefix_flops[linear] - fk;
		double axpy = 2.0 * (double)pc_plan_node_output_numel(p, linear);
		done = (s->prefix_flops[linear] - s->prefix_flops[start]) + fk;
		if (!(ce >= 0 && s->cache[ce].ydata))
			done += fk;
		done += n_eps * (rest + axpy);
		done *= s->batches;
	} else {
		done = (s->batch_flops - s->prefix_flops[start]) * s->batches;
	}
	s->fwd_passes += linear >= 0 ? 1 : n_eps;
	s->flops_done += done;
	s->flops_saved += n_eps * full - done;
	s->passes_done += n_eps;
}

/* Evaluate the group's current weights (already written) or, with the
 * linear shortcut, the direction u at every radius. out has n_eps rows. */
static int evaluate(struct study *s, const struct group *gr, const float *u, int n_eps, const double *eps,
		    struct pc_eval *out, struct pc_error *err)
{
	struct eval_req q;
	int linear = gr && u && gr->linear >= 0 ? gr->linear : -1;
	int rc = PC_OK;

	memset(&q, 0, sizeof(q));
	q.s = s;
	q.gr = gr;
	q.u = u;
	q.n_eps = linear >= 0 ? n_eps : 1;
	q.eps = eps;
	q.linear = linear;
	q.sums = calloc((size_t)q.n_eps * (size_t)s->batches, sizeof(*q.sums));
	if (!q.sums) {
		rc = pc_error_set(err, PC_ERR_NOMEM, "analysis", "out of memory");
		goto out;
	}
	pc_runner_map(s->r, s->batches, eval_batch, &q);
	if (q.stop) {
		rc = pc_error_set(err, PC_ERR_CANCELLED, "analysis", "cancelled");
		goto out;
	}
	for (int e = 0; e < q.n_eps; e++)
		reduce(s, q.sums + (int64_t)e * s->batches, &out[e]);
	account(s, gr, q.n_eps, linear);
	report_progress(s);
out:
	free(q.sums);
	return rc;
}

/* Realised loss and accuracy of w0 + eps[e] * u for every e. */
static int evaluate_direction(struct study *s, const struct group *gr, const float *u, int n_eps, const double *eps,
			      struct pc_eval *out, float *tmp, struct pc_error *err)
{
	if (gr->linear >= 0 && n_eps >= 1 && s->o->shortcuts) {
		int ce = s->cache_of_node[gr->start];
		/* worth it when the layer would otherwise run more than once */
		if (n_eps >= 2 || (ce >= 0 && s->cache[ce].ydata))
			return evaluate(s, gr, u, n_eps, eps, out, err);
	}
	for (int e = 0; e < n_eps; e++) {
		int rc;
		for (int64_t i = 0; i < gr->count; i++)
			tmp[i] = gr->w0[i] + (float)eps[e] * u[i];
		write_group(s, gr, tmp);
		rc = evaluate(s, gr, NULL, 1, NULL, &out[e], err);
		/* restore from the saved copy: bit-exact, never by subtraction */
		write_group(s, gr, gr->w0);
		if (rc)
			return rc;
	}
	return PC_OK;
}

/* --- the study ---------------------------------------------------------------- */

/* A result's outcome: loss (null when not finite, with the count of
 * samples or tokens that made it so), perplexity for a sequence model,
 * accuracy and the loss change. */
static json_t *eval_json(const struct pc_eval *e, double clean_loss)
{
	json_t *o = json_object();

	json_object_set_new(o, "loss", pc_report_real(e->loss));
	if (e->sequence)
		json_object_set_new(o, "perplexity", pc_report_real(e->perplexity));
	json_object_set_new(o, "accuracy", json_real(e->accuracy));
	json_object_set_new(o, "loss_change", pc_report_real(e->loss - clean_loss));
	if (e->non_finite)
		json_object_set_new(o, "non_finite", json_integer((json_int_t)e->non_finite));
	return o;
}

/* The 95% interval of the mean of x[0..k-1] (Student t), or null where
 * there is none: fewer than two trials, or a value that is not finite. */
static json_t *ci95_json(const double *x, int k, int bad)
{
	struct pc_stats st;
	struct pc_error err = {0};

	if (bad || k < 2 || pc_stats_summarize(x, k, &st, &err) || !isfinite(st.ci95[0]) || !isfinite(st.ci95[1]))
		return json_null();
	return json_pack("[f, f]", st.ci95[0], st.ci95[1]);
}

/* Sequential trials: whether k trials at each of ne radii (trial i of
 * radius e at acc[e * stride + i]) pin every accuracy mean to within
 * halfwidth at 95%. */
static int trials_narrow(const double *acc, int ne, int stride, int k, double halfwidth)
{
	struct pc_stats st;
	struct pc_error err = {0};

	for (int e = 0; e < ne; e++) {
		if (pc_stats_summarize(acc + (int64_t)e * stride, k, &st, &err) || !isfinite(st.ci95[0]))
			return 0;
		if ((st.ci95[1] - st.ci95[0]) / 2 > halfwidth)
			return 0;
	}
	return 1;
}

/* The trials' statistics. A trial whose loss is not finite leaves the
 * loss statistics null (non_finite_trials counts them); accuracies always
 * average. For a sequence model each loss figure has its perplexity,
 * exp() of it. */
static json_t *random_json(const struct study *s, const double *loss, const double *acc, int k, uint64_t seed,
			   const char *stopped)
{
	double lm = 0, am = 0, lmax = -INFINITY, amin = INFINITY, lv = 0, av = 0;
	int bad = 0;
	json_t *o;

	if (k == 0)
		return json_null();
	for (int i = 0; i < k; i++) {
		bad += !isfinite(loss[i]);
		lm += loss[i];
		am += acc[i];
		lmax = loss[i] > lmax ? loss[i] : lmax;
		amin = acc[i] < amin ? acc[i] : amin;
	}
	lm /= k;
	am /= k;
	for (int i = 0; i < k; i++) {
		lv += (loss[i] - lm) * (loss[i] - lm);
		av += (acc[i] - am) * (acc[i] - am);
	}
	lv = k > 1 ? lv / (k - 1) : 0.0;
	av = k > 1 ? av / (k - 1) : 0.0;
	if (bad)
		lm = lv = lmax = NAN;
	o = json_pack("{s:i, s:I}", "trials", k, "seed", (json_int_t)seed);
	json_object_set_new(o, "loss_mean", pc_report_real(lm));
	json_object_set_new(o, "loss_std", pc_report_real(sqrt(lv)));
	json_object_set_new(o, "loss_max", pc_report_real(lmax));
	json_object_set_new(o, "loss_change_mean", pc_report_real(lm - s->clean.loss));
	if (s->seq) {
		json_object_set_new(o, "perplexity_mean", pc_report_real(exp(lm)));
		json_object_set_new(o, "perplexity_max", pc_report_real(exp(lmax)));
	}
	json_object_set_new(o, "accuracy_mean", json_real(am));
	json_object_set_new(o, "accuracy_std", json_real(sqrt(av)));
	json_object_set_new(o, "accuracy_min", json_real(amin));
	if (bad)
		json_object_set_new(o, "non_finite_trials", json_integer(bad));
	json_object_set_new(o, "accuracy_ci95", ci95_json(acc, k, 0));
	json_object_set_new(o, "loss_ci95", ci95_json(loss, k, bad));
	json_object_set_new(o, "stopped", json_string(stopped));
	return o;
}

/* The radius for a group: absolute, per-parameter rms, or relative to the
 * group's own norm (method.md, "Comparing groups"). */
static double effective_eps(const struct study *s, const struct group *gr, double p, double eps)
{
	switch (s->spec->blocks[gr->block].epsilon_scale) {
	case PC_EPS_RMS:
		return eps * sqrt((double)gr->count);
	case PC_EPS_RELATIVE:
		return eps * pc_corrupt_norm(gr->w0, gr->count, p);
	default:
		return eps;
	}
}

/* Projected ascent (method.md, multi-step): K gradients at w0 + a. */
static int multi_step(struct study *s, const struct group *gr, double p, int64_t n, double eps, float *a, float *tmp,
		      struct pc_error *err)
{
	int K = s->spec->blocks[gr->block].steps;
	double alpha = 1.5 * eps / K, dual;
	float *gk = malloc((size_t)gr->count * sizeof(float) + 1), *d = malloc((size_t)gr->count * sizeof(float) + 1);
	struct pc_eval ev;
	int rc = PC_OK, zero;

	if (!gk || !d) {
		rc = pc_error_set(err, PC_ERR_NOMEM, "analysis", "out of memory");
		goto out;
	}
	memset(a, 0, (size_t)gr->count * sizeof(float));
	for (int t = 0; t < K; t++) {
		int64_t off = 0;
		for (int64_t i = 0; i < gr->count; i++)
			tmp[i] = gr->w0[i] + a[i];
		write_group(s, gr, tmp);
		rc = pc_eval_run(s->r, s->d, s->n, s->grad_step, s->o->cancel, s->o->cancel_arg, &ev, err);
		write_group(s, gr, gr->w0);
		if (rc)
			goto out;
		s->fwd_passes++;
		s->bwd_passes++;
		s->flops_done += 3.0 * s->batch_flops * s->batches;
		for (int j = 0; j < gr->n_params; j++) {
			const struct pc_param *pt = pc_graph_param(s->g, gr->params[j]);
			memcpy(gk + off, s->grad_step + pt->offset, (size_t)pt->count * sizeof(float));
			off += pt->count;
		}
		/* one use per gradient: the linear-time selection beats a sort */
		rc = pc_corrupt_gradient(gk, gr->count, NULL, p, n, d, &dual, &zero, err);
		if (rc)
			goto out;
		for (int64_t i = 0; i < gr->count; i++)
			a[i] += (float)alpha * d[i];
		rc = pc_corrupt_project(a, gr->count, p, n, eps, err);
		if (rc)
			goto out;
	}
	pc_corrupt_rescale(a, gr->count, p, eps);
out:
	free(gk);
	free(d);
	return rc;
}

static json_t *shape_json(const struct pc_shape *sh, int from)
{
	json_t *a = json_array();

	for (int i = from; i < sh->ndim; i++)
		json_array_append_new(a, json_integer(sh->dim[i]));
	return a;
}

/* --- the critical radius (critical.h) ---------------------------------------- */

/* What the progress plan counts for one search: about what a search from
 * the sweep's bracket takes to 1% (critical.h: at most 12 there), not the
 * bound the work estimate keeps (a plan of the bound made the time left
 * twenty times too long); each search then corrects the plan by what it ran. */
#define CRIT_PLANNED 12

/* One search's corruption: the gradient one (direction u, or the multi-step
 * one at each radius) or the mean over the trials, each regenerating its
 * draw from its own stream so that every radius sees the same directions. */
struct crit_ctx {
	struct study *s;
	int gi, si, random;
	int trials; /* the random side's: those the sweep ran */
	double p;
	int64_t n;
	const float *u;
	float *v, *tmp, *a;
};

static int crit_eval(void *arg, double eps_spec, double *accuracy, struct pc_error *err)
{
	struct crit_ctx *c = arg;
	struct study *s = c->s;
	const struct group *gr = &s->groups[c->gi];
	const struct pc_corruption *sp = &s->spec->blocks[gr->block];
	double eps = effective_eps(s, gr, c->p, eps_spec);
	struct pc_eval ev = {0};
	int rc;

	if (!c->random && sp->steps > 1) {
		rc = multi_step(s, gr, c->p, c->n, eps, c->a, c->tmp, err);
		s->passes_done += sp->steps;
		for (int64_t i = 0; !rc && i < gr->count; i++)
			c->tmp[i] = gr->w0[i] + c->a[i];
		if (!rc) {
			write_group(s, gr, c->tmp);
			rc = evaluate(s, gr, NULL, 1, NULL, &ev, err);
			write_group(s, gr, gr->w0);
		}
		*accuracy = ev.accuracy;
		return rc;
	}
	if (!c->random) {
		rc = evaluate_direction(s, gr, c->u, 1, &eps, &ev, c->tmp, err);
		*accuracy = ev.accuracy;
		return rc;
	}
	double sum = 0;
	int K = c->trials;
	for (int k = 0; k < K; k++) {
		uint64_t stream = pc_rng_derive(s->spec->seed, (uint64_t)c->gi, (uint64_t)c->si, (uint64_t)k, 0);
		rc = pc_corrupt_random(gr->count, c->p, c->n, stream, c->v, err);
		if (!rc)
			rc = evaluate_direction(s, gr, c->v, 1, &eps, &ev, c->tmp, err);
		if (rc)
			return rc;
		sum += ev.accuracy;
	}
	*accuracy = sum / K;
	return PC_OK;
}

static json_t *crit_side_json(const struct study *s, const struct group *gr, double p,
			      const struct pc_critical_result *r)
{
	json_t *o = json_pack("{s:o, s:o, s:i}", "epsilon", r->reached ? json_real(r->epsilon) : json_null(),
			      "accuracy", r->reached ? json_real(r->accuracy) : json_null(), "evaluations",
			      r->evaluations);

	if (o && s->spec->blocks[gr->block].epsilon_scale != PC_EPS_ABSOLUTE)
		json_object_set_new(o, "epsilon_effective",
				    r->reached ? pc_report_real(effective_eps(s, gr, p, r->epsilon)) : json_null());
	if (o && r->reached && !r->converged)
		json_object_set_new(o, "converged", json_false());
	return o;
}

/* The critical radii of one setting, after its sweep: gacc[] the gradient
 * corruption's accuracy at each radius, racc[] the trials' (e * stride + k)
 * of which the first trials ran (sequential trials may stop early); zero:
 * the gradient has no direction in the group. What the searches' bound
 * planned and they did not run leaves the progress plan. */
static int critical_setting(struct study *s, int gi, int ni, int si, const struct pc_eval *gev,
			    const double *racc, int trials, const float *u, int zero, struct pc_error *err)
{
	const struct group *gr = &s->groups[gi];
	const struct pc_corruption *sp = &s->spec->blocks[gr->block];
	int ne = sp->n_epsilons, stride = sp->random_trials, K = trials, rc = PC_OK;
	int64_t steps = sp->steps > 1 ? sp->steps + 1 : 1;
	double *gacc = calloc((size_t)ne, sizeof(double)), *macc = calloc((size_t)ne, sizeof(double));
	struct crit_ctx c = {s, gi, si, 0, trials, sp->norms[ni], sp->sparsity[si], u, NULL, NULL, NULL};
	struct pc_critical_opts o = {s->clean.accuracy, sp->critical_drop, sp->critical_tolerance, sp->epsilons[0]};
	struct pc_critical_result gr_r = {0}, rr = {0};
	json_t *row;

	c.v = malloc((size_t)gr->count * sizeof(float) + 1);
	c.tmp = malloc((size_t)gr->count * sizeof(float) + 1);
	c.a = malloc((size_t)gr->count * sizeof(float) + 1);
	if (!gacc || !macc || !c.v || !c.tmp || !c.a) {
		rc = pc_error_set(err, PC_ERR_NOMEM, "analysis", "out of memory");
		goto out;
	}
	for (int e = 0; e < ne; e++) {
		gacc[e] = gev[e].accuracy;
		for (int k = 0; k < K; k++)
			macc[e] += racc[(int64_t)e * stride + k] / K;
	}
	set_phase(s, "critical radius");
	gr_r.epsilon = gr_r.accuracy = NAN;
	rr.epsilon = rr.accuracy = NAN;
	/* without a direction the gradient corruption is the clean model */
	if (!zero && (rc = pc_critical_search(&o, sp->epsilons, gacc, ne, crit_eval, &c, &gr_r, err)))
		goto out;
	c.random = 1;
	if (K > 0 && (rc = pc_critical_search(&o, sp->epsilons, macc, ne, crit_eval, &c, &rr, err)))
		goto out;
	s->passes_total -= CRIT_PLANNED * (steps + stride) -
			   ((int64_t)gr_r.evaluations * steps + (int64_t)rr.evaluations * K);
	report_progress(s);
	row = json_pack("{s:s, s:o, s:I, s:f, s:f, s:o, s:o}", "group", gr->name, "norm", pc_spec_norm_json(c.p),
			"sparsity", (json_int_t)c.n, "accuracy_drop", o.drop, "tolerance", o.tolerance, "gradient",
			crit_side_json(s, gr, c.p, &gr_r), "random", crit_side_json(s, gr, c.p, &rr));
	if (!row) {
		rc = pc_error_set(err, PC_ERR_NOMEM, "analysis", "out of memory");
		goto out;
	}
	json_object_set_new(row, "ratio",
			    gr_r.reached && rr.reached ? pc_report_real(rr.epsilon / gr_r.epsilon) : json_null());
	if (zero)
		json_object_set_new(json_object_get(row, "gradient"), "direction", json_string("none"));
	if (K == 0)
		json_object_set_new(json_object_get(row, "random"), "trials", json_integer(0));
	if (s->spec->blocks_as_array)
		json_object_set_new(row, "block", json_integer(gr->block));
	json_array_append_new(s->critical, row);
out:
	free(gacc);
	free(macc);
	free(c.v);
	free(c.tmp);
	free(c.a);
	return rc;
}

/* --- second order ------------------------------------------------------------ */

/* A product is PC_CSTUDY_PASSES_PER_PRODUCT passes of the plan: a forward
 * pass recording the gates and two forward and backward passes. */
static void curv_progress(void *arg, int64_t products, int64_t dropped)
{
	struct study *s = arg;

	s->passes_done += PC_CSTUDY_PASSES_PER_PRODUCT * products;
	s->passes_total -= PC_CSTUDY_PASSES_PER_PRODUCT * dropped;
	s->fwd_passes += 3 * products;
	s->bwd_passes += 2 * products;
	s->flops_done += 7.0 * s->batch_flops * s->batches * (double)products;
	report_progress(s);
}

static int second_order_wanted(const struct study *s)
{
	return s->spec->has_curvature && s->spec->curvature.second_order;
}

/* The terms of the second-order estimate of the loss change of
 * corruption a (the group's elements), g.a + a.H_G a / 2, g the clean
 * gradient: *lin = g.a, *quad = a.H_G a. */
static int second_order(struct study *s, const struct group *gr, const float *a, double *lin, double *quad,
			struct pc_error *err)
{
	struct pc_cstudy_opts co = {s->o->cancel, s->o->cancel_arg, curv_progress, s};
	const char *phase = s->phase;
	int rc;

	set_phase(s, "second-order estimate");
	rc = pc_cstudy_quadratic(s->r, s->d, s->n, gr->params, gr->n_params, a, gr->count, &co, quad, err);
	set_phase(s, phase);
	*lin = 0;
	for (int64_t i = 0; i < gr->count; i++)
		*lin += (double)gr->g[i] * a[i];
	return rc;
}

/* Results of one group, norm and sparsity across all radii. */
static int run_setting(struct study *s, int gi, int ni, int si, json_t *results, struct pc_error *err)
{
	const struct group *gr = &s->groups[gi];
	const struct pc_corruption *sp = &s->spec->blocks[gr->block];
	double p = sp->norms[ni], dual = 0.0;
	int64_t n = sp->sparsity[si];
	int ne = sp->n_epsilons, K = sp->random_trials, K_ran = K, zero = 0, rc;
	const char *stopped = sp->trials_sequential ? "max" : "fixed";
	double *eps = calloc((size_t)ne, sizeof(double));
	struct pc_eval *gev = calloc((size_t)ne, sizeof(*gev)), *rev = calloc((size_t)ne, sizeof(*rev));
	double *rloss = calloc((size_t)ne * (size_t)(K + 1), sizeof(double));
	double *racc = calloc((size_t)ne * (size_t)(K + 1), sizeof(double));
	float *u = malloc((size_t)gr->count * sizeof(float) + 1), *tmp = malloc((size_t)gr->count * sizeof(float) + 1);
	float *a = malloc((size_t)gr->count * sizeof(float) + 1);
	struct pc_corrupt_order *ord = NULL;
	uint64_t seed = s->spec->seed;
	double *so = second_order_wanted(s) ? calloc((size_t)ne, sizeof(double)) : NULL;

	if (!eps || !gev || !rev || !rloss || !racc || !u || !tmp || !a || (second_order_wanted(s) && !so)) {
		rc = pc_error_set(err, PC_ERR_NOMEM, "analysis", "out of memory");
		goto out;
	}
	for (int e = 0; e < ne; e++)
		eps[e] = effective_eps(s, gr, p, sp->epsilons[e]);

	/* gradient-based corruption */
	/* a tensor's or a layer's probes are a phase of their own */
	if (gr->kind == PC_GROUP_MODEL)
		set_phase(s, sp->steps > 1 ? "multi-step corruption" : "gradient corruption");
	else
		set_phase(s, sp->steps > 1 ? "multi-step corruption, groups" : "gradient corruption, groups");
	rc = pc_corrupt_order_new(gr->g, gr->count, &ord, err);
	if (!rc)
		rc = pc_corrupt_gradient(gr->g, gr->count, ord, p, n, u, &dual, &zero, err);
	if (rc)
		goto out;
	if (zero) {
		for (int e = 0; e < ne; e++)
			gev[e] = s->clean;
		s->passes_done += (int64_t)ne * (sp->steps > 1 ? sp->steps + 1 : 1);
		/* no direction, no change: the products planned leave the plan */
		if (so)
			s->passes_total -= PC_CSTUDY_PASSES_PER_PRODUCT * (sp->steps > 1 ? ne : 1);
	} else if (sp->steps > 1) {
		for (int e = 0; e < ne && !rc; e++) {
			rc = multi_step(s, gr, p, n, eps[e], a, tmp, err);
			s->passes_done += sp->steps;
			for (int64_t i = 0; !rc && i < gr->count; i++)
				tmp[i] = gr->w0[i] + a[i];
			if (!rc) {
				write_group(s, gr, tmp);
				rc = evaluate(s, gr, NULL, 1, NULL, &gev[e], err);
				write_group(s, gr, gr->w0);
			}
			/* each radius has its own iterate, so its own product */
			if (!rc && so) {
				double lin, quad;
				rc = second_order(s, gr, a, &lin, &quad, err);
				so[e] = lin + 0.5 * quad;
			}
		}
	} else {
		rc = evaluate_direction(s, gr, u, ne, eps, gev, tmp, err);
		/* one direction for every radius: g.(eps u) = eps ||g||_q, and
		 * the quadratic term scales with eps^2 */
		if (!rc && so) {
			double lin, quad;
			rc = second_order(s, gr, u, &lin, &quad, err);
			for (int e = 0; e < ne; e++)
				so[e] = eps[e] * dual + 0.5 * eps[e] * eps[e] * quad;
		}
	}
	if (rc)
		goto out;

	/* random corruption: trial k keeps its draw at every radius; sequential
	 * trials stop once every radius's interval is narrow enough, and what
	 * they did not run leaves the plan, so progress still ends at its total */
	set_phase(s, gr->kind == PC_GROUP_MODEL ? "random corruption" : "random corruption, groups");
	for (int k = 0; k < K; k++) {
		if (sp->trials_sequential && k >= sp->trials_min &&
		    trials_narrow(racc, ne, K, k, sp->trials_ci_halfwidth)) {
			stopped = "ci_halfwidth";
			s->passes_total -= (int64_t)(K - k) * ne;
			K_ran = k;
			report_progress(s);
			break;
		}
		uint64_t stream = pc_rng_derive(seed, (uint64_t)gi, (uint64_t)si, (uint64_t)k, 0);
		rc = pc_corrupt_random(gr->count, p, n, stream, u, err);
		if (!rc)
			rc = evaluate_direction(s, gr, u, ne, eps, rev, tmp, err);
		if (rc)
			goto out;
		for (int e = 0; e < ne; e++) {
			rloss[(int64_t)e * K + k] = rev[e].loss;
			racc[(int64_t)e * K + k] = rev[e].accuracy;
		}
	}

	for (int e = 0; e < ne; e++) {
		/* a radius or estimate that overflowed is null: a real of inf would
		 * fail the whole pack and lose the row */
		json_t *row = json_pack("{s:s, s:o, s:f, s:o, s:I, s:i, s:o, s:o, s:o}", "group", gr->name, "norm",
					pc_spec_norm_json(p), "epsilon", sp->epsilons[e], "epsilon_effective",
					pc_report_real(eps[e]), "sparsity", (json_int_t)n, "steps", sp->steps,
					"first_order", pc_report_real(eps[e] * dual), "gradient",
					eval_json(&gev[e], s->clean.loss), "random",
					random_json(s, rloss + (int64_t)e * K, racc + (int64_t)e * K, K_ran, seed, stopped));
		if (zero)
			json_object_set_new(json_object_get(row, "gradient"), "direction", json_string("none"));
		if (so)
			json_object_set_new(row, "second_order", pc_report_real(so[e]));
		if (s->spec->blocks_as_array)
			json_object_set_new(row, "block", json_integer(gr->block));
		json_array_append_new(results, row);
	}
	if (sp->has_critical) {
		/* u was the last trial's draw: the gradient direction again */
		if (!zero && (rc = pc_corrupt_gradient(gr->g, gr->count, ord, p, n, u, &dual, &zero, err)))
			goto out;
		rc = critical_setting(s, gi, ni, si, gev, racc, K_ran, u, zero, err);
	}
out:
	pc_corrupt_order_free(ord);
	free(so);
	free(eps);
	free(gev);
	free(rev);
	free(rloss);
	free(racc);
	free(u);
	free(tmp);
	free(a);
	return rc;
}

/* A loss change that is null (the corrupted loss is not finite) is the
 * largest: that group broke the model outright. */
static double change_of(const json_t *row)
{
	const json_t *v = json_object_get(row, "loss_change");

	return json_is_number(v) ? json_number_value(v) : INFINITY;
}

static int by_change(const void *x, const void *y)
{
	double a = change_of(*(json_t *const *)x), b = change_of(*(json_t *const *)y);

	return a < b ? 1 : a > b ? -1 : 0;
}

static int block_has_critical(const struct study *s, int b)
{
	return s->spec->blocks[b].has_critical;
}

/* critical[] (only when a block asked for it): 0, or -1 out of memory */
static int critical_attach(struct study *s, json_t *root)
{
	for (int b = 0; b < s->spec->n_blocks; b++)
		if (block_has_critical(s, b))
			return json_object_set(root, "critical", s->critical);
	return 0;
}

static double crit_eps_of(const json_t *row)
{
	const json_t *v = json_object_get(row, "critical_radius");

	return json_is_number(v) ? json_number_value(v) : INFINITY;
}

/* smallest gradient critical radius first; not reached (null) last */
static int by_critical(const void *x, const void *y)
{
	double a = crit_eps_of(*(json_t *const *)x), b = crit_eps_of(*(json_t *const *)y);

	return a < b ? -1 : a > b ? 1 : 0;
}

/* One setting's rows, ordered by cmp (an insertion sort: stable, so equal
 * keys keep the group order), ranked from 1 and appended to out (which
 * takes them). */
static void rank_rows(const struct study *s, int b, json_t **rows, size_t m, int (*cmp)(const void *, const void *),
		      json_t *out)
{
	for (size_t i = 1; i < m; i++)
		for (size_t j = i; j > 0 && cmp(&rows[j - 1], &rows[j]) > 0; j--) {
			json_t *t = rows[j];
			rows[j] = rows[j - 1];
			rows[j - 1] = t;
		}
	for (size_t i = 0; i < m; i++) {
		json_object_set_new(rows[i], "rank", json_integer((json_int_t)i + 1));
		if (s->spec->blocks_as_array)
			json_object_set_new(rows[i], "block", json_integer(b));
		json_array_append_new(out, rows[i]);
	}
}

/* A block with "critical": per norm and sparsity, the non-model groups
 * by their gradient critical radius, smallest (the most fragile) first. */
static int critical_ranking(const struct study *s, int b, json_t *out)
{
	const struct pc_corruption *sp = &s->spec->blocks[b];
	size_t nc = json_array_size(s->critical);
	json_t **rows = calloc(nc + 1, sizeof(*rows));

	if (!rows)
		return -1;
	for (int ni = 0; ni < sp->n_norms; ni++)
		for (int si = 0; si < sp->n_sparsity; si++) {
			size_t m = 0;
			json_t *nm = pc_spec_norm_json(sp->norms[ni]);
			for (size_t i = 0; i < nc; i++) {
				json_t *r = json_array_get(s->critical, i), *g = json_object_get(r, "gradient");
				if (json_integer_value(json_object_get(r, "block")) == b &&
				    json_equal(json_object_get(r, "norm"), nm) &&
				    json_integer_value(json_object_get(r, "sparsity")) == sp->sparsity[si] &&
				    strcmp(json_string_value(json_object_get(r, "group")), "model") != 0)
					rows[m++] = json_pack("{s:O, s:O, s:O, s:s, s:O, s:O, s:O}", "group",
							      json_object_get(r, "group"), "norm",
							      json_object_get(r, "norm"), "sparsity",
							      json_object_get(r, "sparsity"), "by", "critical_radius",
							      "critical_radius", json_object_get(g, "epsilon"),
							      "accuracy", json_object_get(g, "accuracy"), "random_critical_radius",
							      json_object_get(json_object_get(r, "random"), "epsilon"));
			}
			json_decref(nm);
			rank_rows(s, b, rows, m, by_critical, out);
		}
	free(rows);
	return 0;
}

/* Per block and setting, the non-model groups from most to least damaged. */
static json_t *ranking(const struct study *s, json_t *results)
{
	json_t *out = json_array();
	size_t nres = json_array_size(results);
	json_t **rows = calloc(nres + 1, sizeof(*rows));

	if (!out || !rows) {
		/* not an empty ranking: none at all, which the caller reports */
		free(rows);
		json_decref(out);
		return NULL;
	}
	for (int b = 0; b < s->spec->n_blocks; b++) {
		const struct pc_corruption *sp = &s->spec->blocks[b];
		if (block_has_critical(s, b)) {
			if (critical_ranking(s, b, out)) {
				free(rows);
				json_decref(out);
				return NULL;
			}
			continue;
		}
		for (int ni = 0; ni < sp->n_norms; ni++)
			for (int si = 0; si < sp->n_sparsity; si++)
				for (int e = 0; e < sp->n_epsilons; e++) {
					size_t m = 0;
					json_t *nm = pc_spec_norm_json(sp->norms[ni]);
					for (size_t i = 0; i < nres; i++) {
						json_t *r = json_array_get(results, i);
						int same = json_integer_value(json_object_get(r, "block")) == b &&
							   json_equal(json_object_get(r, "norm"), nm) &&
							   json_integer_value(json_object_get(r, "sparsity")) == sp->sparsity[si] &&
							   json_real_value(json_object_get(r, "epsilon")) == sp->epsilons[e] &&
							   strcmp(json_string_value(json_object_get(r, "group")), "model") != 0;
						if (same)
							rows[m++] = json_pack(
								"{s:O, s:O, s:O, s:O, s:O, s:O}", "group",
								json_object_get(r, "group"), "norm", json_object_get(r, "norm"),
								"epsilon", json_object_get(r, "epsilon"), "sparsity",
								json_object_get(r, "sparsity"), "loss_change",
								json_object_get(json_object_get(r, "gradient"), "loss_change"),
								"accuracy",
								json_object_get(json_object_get(r, "gradient"), "accuracy"));
					}
					json_decref(nm);
					rank_rows(s, b, rows, m, by_change, out);
				}
	}
	free(rows);
	return out;
}

static json_t *model_json(const struct study *s)
{
	json_t *tensors = json_array();

	for (int i = 0; i < pc_graph_param_tensors(s->g); i++) {
		const struct pc_param *pt = pc_graph_param(s->g, i);
		json_array_append_new(tensors, json_pack("{s:s, s:o, s:I, s:s}", "name", pt->name, "shape",
							 shape_json(&pt->shape, 0), "numel", (json_int_t)pt->count,
							 "node", pt->node));
	}
	return json_pack("{s:I, s:i, s:o}", "parameters", (json_int_t)pc_graph_param_count(s->g),
			 "opset", pc_graph_opset(s->g),
			 "tensors", tensors);
}

/* What was evaluated: for a sequence model also that the labels are per
 * token, how many per sample and how many count. */
static json_t *dataset_json(const struct study *s)
{
	json_t *o = json_pack("{s:I, s:o, s:I}", "samples", (json_int_t)s->n, "input_shape",
			      shape_json(&s->d->sample, 0), "classes", (json_int_t)pc_graph_classes(s->g));

	if (o && s->seq) {
		json_object_set_new(o, "labels", json_string("per_token"));
		json_object_set_new(o, "positions", json_integer((json_int_t)s->positions));
		json_object_set_new(o, "tokens", json_integer((json_int_t)s->clean.tokens));
	}
	return o;
}

static json_t *clean_json(const struct study *s)
{
	json_t *o = json_object();

	json_object_set_new(o, "loss", pc_report_real(s->clean.loss));
	if (s->seq)
		json_object_set_new(o, "perplexity", pc_report_real(s->clean.perplexity));
	json_object_set_new(o, "accuracy", json_real(s->clean.accuracy));
	json_object_set_new(o, "output", json_string(pc_report_output_kind(pc_graph_output_kind(s->g))));
	if (s->clean.non_finite)
		json_object_set_new(o, "non_finite", json_integer((json_int_t)s->clean.non_finite));
	return o;
}

void pc_study_opts_default(struct pc_study_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->threads = 1;
	o->cache_bytes = PC_STUDY_DEFAULT_CACHE;
	o->timing_seconds = 1;
	o->shortcuts = 1;
}

static void free_study(struct study *s)
{
	for (int i = 0; i < s->n_groups; i++) {
		free(s->groups[i].params);
		free(s->groups[i].g);
		free(s->groups[i].w0);
	}
	free(s->groups);
	for (int c = 0; c < s->n_cache; c++) {
		pc_plan_cut_free(s->cache[c].cut);
		free(s->cache[c].data);
		free(s->cache[c].ydata);
	}
	free(s->cache);
	free(s->cache_of_node);
	free(s->prefix_flops);
	/* alloc_scratch may have stopped after any one of the three lists */
	for (int w = 0; w < s->o->threads; w++) {
		if (s->delta)
			free(s->delta[w]);
		if (s->yclean)
			free(s->yclean[w]);
		if (s->keep)
			free(s->keep[w]);
	}
	free(s->delta);
	free(s->yclean);
	free(s->keep);
	free(s->grad);
	free(s->grad_step);
	pc_runner_free(s->r);
}

static int alloc_scratch(struct study *s, struct pc_error *err)
{
	struct pc_plan *p = pc_runner_plan(s->r, 0);
	int T = s->o->threads;

	for (int i = 0; i < s->n_groups; i++) {
		const struct group *gr = &s->groups[i];
		int k = gr->linear;
		int64_t kept = 0, rest = 0;
		if (k < 0)
			continue;
		if (pc_plan_node_output_numel(p, k) > s->scratch_floats)
			s->scratch_floats = pc_plan_node_output_numel(p, k);
		for (int j = 1; j < pc_graph_node_inputs(s->g, k); j++)
			if (pc_graph_node_input_param(s->g, k, j) >= 0)
				kept += pc_graph_param(s->g, pc_graph_node_input_param(s->g, k, j))->count;
		/* keep also holds the group's parameters past node k, afterwards */
		for (int j = 0; j < gr->n_params; j++)
			if (!reads_param(s->g, k, gr->params[j]))
				rest += pc_graph_param(s->g, gr->params[j])->count;
		if (kept > s->keep_floats)
			s->keep_floats = kept;
		if (rest > s->keep_floats)
			s->keep_floats = rest;
	}
	s->delta = calloc((size_t)T, sizeof(float *));
	s->yclean = calloc((size_t)T, sizeof(float *));
	s->keep = calloc((size_t)T, sizeof(float *));
	if (!s->delta || !s->yclean || !s->keep)
		return pc_error_set(err, PC_ERR_NOMEM, "analysis", "out of memory");
	for (int w = 0; w < T; w++) {
		s->delta[w] = malloc((size_t)s->scratch_floats * sizeof(float) + 1);
		s->yclean[w] = malloc((size_t)s->scratch_floats * sizeof(float) + 1);
		s->keep[w] = malloc((size_t)s->keep_floats * sizeof(float) + 1);
		if (!s->delta[w] || !s->yclean[w] || !s->keep[w])
			return pc_error_set(err, PC_ERR_NOMEM, "analysis", "out of memory");
	}
	return PC_OK;
}

/* --- the run, whole or in shards ------------------------------------------ */

/* What one call of study_main does (analysis.h, "the study in shards"). */
enum study_mode { MODE_FULL, MODE_PREFIX, MODE_SHARD, MODE_MERGE };

struct study_call {
	enum study_mode mode;
	const struct pc_study_prefix *pre; /* SHARD, MERGE */
	int64_t first, last;		   /* SHARD: the items run */
	json_t *const *parts;		   /* MERGE */
	int n_parts;
	json_t **out;			      /* FULL, MERGE: the report; SHARD: the part */
	struct pc_study_prefix **prefix_out; /* PREFIX */
};

/* The settings items: every group's norms x sparsities, in run order. */
static int64_t settings_of(const struct study *s)
{
	int64_t n = 0;

	for (int i = 0; i < s->n_groups; i++) {
		const struct pc_corruption *c = &s->spec->blocks[s->groups[i].block];
		n += (int64_t)c->n_norms * c->n_sparsity;
	}
	return n;
}

static int64_t items_of(const struct study *s)
{
	return settings_of(s) + (s->spec->has_faults != 0) + (s->spec->has_curvature != 0);
}

/* Passes planned for one setting of group gi (planned_passes per setting). */
static int64_t setting_passes(const struct study *s, int gi)
{
	const struct pc_corruption *c = &s->spec->blocks[s->groups[gi].block];
	int64_t per = (c->steps > 1 ? c->steps + 1 : 1) + c->random_trials;

	return (int64_t)c->n_epsilons * per + (c->has_critical ? (int64_t)CRIT_PLANNED * per : 0);
}

/* A part's integer field v, checked: PC_ERR_FORMAT naming part i's field. */
static int part_int(json_t *part, int i, const char *key, int64_t *v, struct pc_error *err)
{
	json_t *x = json_object_get(part, key);

	if (!json_is_integer(x))
		return pc_error_set(err, PC_ERR_FORMAT, "shards", "part %d: \"%s\" must be an integer", i, key);
	*v = (int64_t)json_integer_value(x);
	return PC_OK;
}

/* Appends a copy of every element of part i's array key to to. */
static int part_rows(json_t *part, int i, const char *key, json_t *to, struct pc_error *err)
{
	json_t *a = json_object_get(part, key), *row;
	size_t k;

	if (!json_is_array(a))
		return pc_error_set(err, PC_ERR_FORMAT, "shards", "part %d: \"%s\" must be an array", i, key);
	json_array_foreach(a, k, row)
	{
		if (!json_is_object(row))
			return pc_error_set(err, PC_ERR_FORMAT, "shards", "part %d: %s[%zu] must be an object", i, key,
					    k);
		if (json_array_append(to, row))
			return pc_error_set(err, PC_ERR_NOMEM, "shards", "out of memory");
	}
	return PC_OK;
}

/* The parts' rows, checked to be exactly their items': they tile [0,
 * items), each setting brings one row per radius (and one critical row
 * when its block asks), the fault and curvature items their object. The
 * counts of the parts' passes go to the study's accounting. */
static int merge_parts(struct study *s, const struct study_call *c, json_t *results, json_t **faults,
		       json_t **curvature, struct pc_error *err)
{
	int64_t items = items_of(s), settings = settings_of(s), next = 0;
	json_t *spec_json = pc_spec_to_json(s->spec);
	int rc = PC_OK;

	if (!spec_json)
		return pc_error_set(err, PC_ERR_NOMEM, "shards", "out of memory");
	for (int i = 0; i < c->n_parts && !rc; i++) {
		json_t *p = c->parts[i], *counts = json_object_get(p, "counts");
		int64_t first = 0, last = 0, n_items = 0, want_rows = 0, want_crit = 0, it = 0;
		size_t had_rows = json_array_size(results), had_crit = json_array_size(s->critical);

		if ((rc = part_int(p, i, "first", &first, err)) || (rc = part_int(p, i, "last", &last, err)) ||
		    (rc = part_int(p, i, "items", &n_items, err)))
			break;
		if (n_items != items) {
			rc = pc_error_set(err, PC_ERR_FORMAT, "shards", "part %d: \"items\" is %lld, the spec has %lld", i,
					  (long long)n_items, (long long)items);
			break;
		}
		if (first != next || last < first || last > items) {
			rc = pc_error_set(err, PC_ERR_FORMAT, "shards",
					  "part %d: items [%lld, %lld) do not follow item %lld of %lld", i,
					  (long long)first, (long long)last, (long long)next, (long long)items);
			break;
		}
		if (!json_equal(json_object_get(p, "spec"), spec_json)) {
			rc = pc_error_set(err, PC_ERR_FORMAT, "shards", "part %d: \"spec\" is not the job's spec", i);
			break;
		}
		next = last;
		for (int gi = 0; gi < s->n_groups; gi++) {
			const struct pc_corruption *b = &s->spec->blocks[s->groups[gi].block];
			for (int k = 0; k < b->n_norms * b->n_sparsity; k++, it++)
				if (it >= first && it < last) {
					want_rows += b->n_epsilons;
					want_crit += b->has_critical != 0;
				}
		}
		if ((rc = part_rows(p, i, "results", results, err)) || (rc = part_rows(p, i, "critical", s->critical, err)))
			break;
		if ((int64_t)(json_array_size(results) - had_rows) != want_rows ||
		    (int64_t)(json_array_size(s->critical) - had_crit) != want_crit) {
			rc = pc_error_set(err, PC_ERR_FORMAT, "shards",
					  "part %d: %zu result and %zu critical rows where items [%lld, %lld) make %lld "
					  "and %lld",
					  i, json_array_size(results) - had_rows, json_array_size(s->critical) - had_crit,
					  (long long)first, (long long)last, (long long)want_rows, (long long)want_crit);
			break;
		}
		for (int which = 0; which < 2 && !rc; which++) {
			const char *key = which ? "curvature" : "faults";
			int has = which ? s->spec->has_curvature : s->spec->has_faults;
			int64_t item = settings + (which && s->spec->has_faults);
			int want = has && item >= first && item < last;
			json_t *x = json_object_get(p, key);

			if (want != (x != NULL) || (x && !json_is_object(x)))
				rc = pc_error_set(err, PC_ERR_FORMAT, "shards", "part %d: \"%s\" must %s", i, key,
						  want ? "be an object" : "be absent");
			else if (x)
				*(which ? curvature : faults) = json_incref(x);
		}
		if (json_is_object(counts)) {
			s->fwd_passes += json_integer_value(json_object_get(counts, "forward_passes"));
			s->bwd_passes += json_integer_value(json_object_get(counts, "backward_passes"));
			s->passes_done += json_integer_value(json_object_get(counts, "evaluations"));
			s->flops_done += json_number_value(json_object_get(counts, "flops"));
			s->flops_saved += json_number_value(json_object_get(counts, "flops_saved"));
		}
	}
	if (!rc && next != items)
		rc = pc_error_set(err, PC_ERR_FORMAT, "shards", "the parts end at item %lld of %lld", (long long)next,
				  (long long)items);
	json_decref(spec_json);
	return rc;
}

/* The clean numbers of two passes, compared bit for bit. */
static int same_clean(const struct pc_eval *a, const struct pc_eval *b)
{
	return a->samples == b->samples && a->correct == b->correct && !memcmp(&a->loss, &b->loss, sizeof(double)) &&
	       !memcmp(&a->accuracy, &b->accuracy, sizeof(double)) && a->sequence == b->sequence &&
	       a->tokens == b->tokens && !memcmp(&a->perplexity, &b->perplexity, sizeof(double)) &&
	       a->non_finite == b->non_finite;
}

/* The clean pass: with the gradient (FULL, PREFIX), forward only to fill
 * the caches from the prefix's gradient (SHARD), none (MERGE). */
static int clean_pass(struct study *s, const struct study_call *c, struct pc_error *err)
{
	int64_t np = pc_graph_param_count(s->g);
	int rc;

	if (c->mode == MODE_SHARD || c->mode == MODE_MERGE) {
		if (c->pre->count != np || !c->pre->grad)
			return pc_error_set(err, PC_ERR_CONFLICT, "prefix",
					    "the prefix holds %lld gradient values; the model has %lld parameters",
					    (long long)c->pre->count, (long long)np);
		memcpy(s->grad, c->pre->grad, (size_t)np * sizeof(float));
		s->clean = c->pre->clean;
		s->fwd_passes = s->bwd_passes = 1; /* the prefix's */
		s->passes_done = 1;
		s->flops_done = 3.0 * s->batch_flops * s->batches;
	}
	if (c->mode == MODE_SHARD) {
		struct pc_eval fwd = {0};

		rc = pc_eval_run_hooked(s->r, s->d, s->n, NULL, s->o->cancel, s->o->cancel_arg, capture, s, &fwd, err);
		if (rc)
			return rc;
		/* this part's own pass: its counts leave the prefix's out */
		s->fwd_passes = 1;
		s->bwd_passes = 0;
		s->passes_done = 0;
		s->flops_done = s->batch_flops * s->batches;
		if (!same_clean(&fwd, &c->pre->clean))
			return pc_error_set(err, PC_ERR_CONFLICT, "prefix",
					    "the clean pass gives loss %.17g, the prefix says %.17g: the prefix is of "
					    "another model, dataset or build",
					    fwd.loss, c->pre->clean.loss);
	} else if (c->mode != MODE_MERGE) {
		rc = pc_eval_run_hooked(s->r, s->d, s->n, s->grad, s->o->cancel, s->o->cancel_arg, capture, s,
					&s->clean, err);
		if (rc)
			return rc;
		s->fwd_passes++;
		s->bwd_passes++;
		s->passes_done++;
		s->flops_done += 3.0 * s->batch_flops * s->batches;
	}
	for (int i = 0; i < s->n_groups; i++) {
		struct group *gr = &s->groups[i];
		int64_t off = 0;
		for (int j = 0; j < gr->n_params; j++) {
			const struct pc_param *pt = pc_graph_param(s->g, gr->params[j]);
			memcpy(gr->g + off, s->grad + pt->offset, (size_t)pt->count * sizeof(float));
			off += pt->count;
		}
	}
	return PC_OK;
}

/* Items [first, last): the settings' rows to results (their critical rows
 * to s->critical), the fault and curvature studies to *faults and
 * *curvature. */
static int run_items(struct study *s, int64_t first, int64_t last, json_t *results, json_t **faults,
		     json_t **curvature, struct pc_error *err)
{
	const struct pc_spec *spec = s->spec;
	int64_t it = 0, settings = settings_of(s);
	int rc;

	for (int gi = 0; gi < s->n_groups; gi++)
		for (int ni = 0; ni < spec->blocks[s->groups[gi].block].n_norms; ni++)
			for (int si = 0; si < spec->blocks[s->groups[gi].block].n_sparsity; si++, it++) {
				if (it < first || it >= last)
					continue;
				if (cancelled(s))
					return pc_error_set(err, PC_ERR_CANCELLED, "analysis", "cancelled");
				if ((rc = run_setting(s, gi, ni, si, results, err)))
					return rc;
			}

	if (spec->has_faults && settings >= first && settings < last) {
		struct pc_fstudy_spec_opts fo = {s->o->cancel, s->o->cancel_arg, faults_progress, s};

		set_phase(s, "bit faults");
		report_progress(s);
		if ((rc = pc_fstudy_run_spec(s->r, s->d, s->n, spec, &fo, faults, err)))
			return rc;
	}
	it = settings + (spec->has_faults != 0);
	if (spec->has_curvature && it >= first && it < last) {
		struct pc_cstudy_opts co = {s->o->cancel, s->o->cancel_arg, curv_progress, s};

		set_phase(s, "curvature");
		report_progress(s);
		if ((rc = pc_cstudy_run_spec(s->r, s->d, s->n, spec, &co, curvature, err)))
			return rc;
	}
	return PC_OK;
}

/* The planned passes of items [first, last), and the clean pass when it
 * counts (a shard's own clean pass does not: clean_pass). */
static int64_t planned_range(const struct study *s, int64_t first, int64_t last, const struct pc_work_model *m,
			     int with_clean)
{
	int64_t total = with_clean ? 1 : 0, it = 0, settings = settings_of(s);

	for (int gi = 0; gi < s->n_groups; gi++) {
		const struct pc_corruption *c = &s->spec->blocks[s->groups[gi].block];
		for (int k = 0; k < c->n_norms * c->n_sparsity; k++, it++)
			if (it >= first && it < last)
				total += setting_passes(s, gi);
	}
	if (s->spec->has_faults && settings >= first && settings < last)
		total += (int64_t)pc_spec_fault_passes(s->spec, m);
	it = settings + (s->spec->has_faults != 0);
	if (s->spec->has_curvature && it >= first && it < last)
		total += (int64_t)pc_spec_curvature_passes(s->spec, m);
	return total;
}

static json_t *counts_json(const struct study *s)
{
	return json_pack("{s:I, s:I, s:I, s:f, s:f}", "forward_passes", (json_int_t)s->fwd_passes, "backward_passes",
			 (json_int_t)s->bwd_passes, "evaluations", (json_int_t)s->passes_done, "flops", s->flops_done,
			 "flops_saved", s->flops_saved);
}

/* A shard's part (analysis.h). */
static json_t *part_json(struct study *s, const struct study_call *c, json_t *results, json_t *faults,
			 json_t *curvature)
{
	json_t *part = json_pack("{s:I, s:I, s:I, s:o, s:O, s:O, s:o}", "first", (json_int_t)c->first, "last",
				 (json_int_t)c->last, "items", (json_int_t)items_of(s), "spec", pc_spec_to_json(s->spec),
				 "results", results, "critical", s->critical, "counts", counts_json(s));

	if (part && faults)
		json_object_set(part, "faults", faults);
	if (part && curvature)
		json_object_set(part, "curvature", curvature);
	if (part && s->o->timing_seconds)
		json_object_set_new(json_object_get(part, "counts"), "seconds", json_real(pc_sys_seconds() - s->t0));
	return part;
}

static int study_main(const struct pc_graph *g, const struct pc_dataset *d, const struct pc_spec *spec,
		      const struct pc_study_opts *o, const struct study_call *c, struct pc_error *err)
{
	struct study s;
	struct pc_plan *p0;
	json_t *results = NULL, *root = NULL, *spec_json = NULL, *tensors_grad, *faults = NULL, *curvature = NULL;
	/* jansson's setters drop what could not be made without a word: the
	 * report is whole only if none of its allocations failed */
	unsigned long json_failures = pc_report_alloc_failures();
	int64_t np = pc_graph_param_count(g), first = 0, last = INT64_MAX;
	int nn = pc_graph_node_count(g), rc;
	double part_seconds = 0;

	if (c->out)
		*c->out = NULL;
	memset(&s, 0, sizeof(s));
	s.g = g;
	s.d = d;
	s.spec = spec;
	s.o = o;
	s.t0 = pc_sys_seconds();
	s.n = spec->limit > 0 && spec->limit < d->n ? spec->limit : d->n;
	{
		const struct pc_shape *in = pc_graph_input_shape(g);
		int64_t want = spec->batch_size < s.n ? spec->batch_size : s.n;
		s.batch = in->dim[0] > 0 ? (int)in->dim[0] : exec_batch(g, (int)want);
	}
	s.batches = (int)((s.n + s.batch - 1) / s.batch);
	s.r = pc_runner_new(g, s.batch, o->threads, PC_PLAN_GRAD, err);
	s.grad = pc_sys_malloc_huge((size_t)np * sizeof(float) + 1);
	s.grad_step = pc_sys_malloc_huge((size_t)np * sizeof(float) + 1);
	s.prefix_flops = calloc((size_t)nn + 2, sizeof(double));
	if (!s.r || !s.grad || !s.prefix_flops || !s.grad_step) {
		rc = s.r ? pc_error_set(err, PC_ERR_NOMEM, "analysis", "out of memory")
			 : (err ? (int)err->code : PC_ERR_NOMEM);
		goto out;
	}
	for (int w = 0; o->profile && o->timing_seconds && w < pc_runner_threads(s.r); w++)
		if ((rc = pc_plan_set_profile(pc_runner_plan(s.r, w), 1, err)))
			goto out;
	p0 = pc_runner_plan(s.r, 0);
	s.positions = pc_plan_positions(p0);
	s.seq = pc_eval_is_sequence(p0);
	for (int k = 0; k < nn; k++)
		s.prefix_flops[k + 1] = s.prefix_flops[k] + pc_plan_node_flops(p0, k);
	s.batch_flops = s.prefix_flops[nn];

	/* groups need the gradient; caches need the groups: plan the caches
	 * from the groups' parameter positions before the clean pass fills them.
	 * A shard plans them for every group, not only its own: a study with
	 * other caches rounds differently */
	set_phase(&s, "clean evaluation");
	{
		/* positions only: gradient-free groups to plan caches, rebuilt below */
		memset(s.grad, 0, (size_t)np * sizeof(float));
		if ((rc = build_groups(&s, err)))
			goto out;
		if ((c->mode == MODE_FULL || c->mode == MODE_SHARD) && (rc = plan_caches(&s, err)))
			goto out;
		if (c->mode == MODE_SHARD) {
			first = c->first;
			last = c->last;
			if (first < 0 || last < first || last > items_of(&s)) {
				rc = pc_error_set(err, PC_ERR_INVALID, "shards", "items [%lld, %lld) are not within the %lld items",
						  (long long)first, (long long)last, (long long)items_of(&s));
				goto out;
			}
		}
		{
			struct pc_work_model m;

			pc_work_model_of(g, &m);
			s.passes_total = c->mode == MODE_PREFIX ? 1
								 : planned_range(&s, first, last, &m, c->mode != MODE_SHARD);
		}
		report_progress(&s);
		if ((rc = clean_pass(&s, c, err)))
			goto out;
		report_progress(&s);
	}
	if (c->mode == MODE_PREFIX) {
		struct pc_study_prefix *pre = calloc(1, sizeof(*pre));

		if (!pre || !(pre->grad = malloc((size_t)np * sizeof(float) + 1))) {
			free(pre);
			rc = pc_error_set(err, PC_ERR_NOMEM, "analysis", "out of memory");
			goto out;
		}
		memcpy(pre->grad, s.grad, (size_t)np * sizeof(float));
		pre->count = np;
		pre->clean = s.clean;
		*c->prefix_out = pre;
		rc = PC_OK;
		goto out;
	}
	if (c->mode != MODE_MERGE && (rc = alloc_scratch(&s, err)))
		goto out;

	results = json_array();
	s.critical = json_array();
	if (!results || !s.critical) {
		rc = pc_error_set(err, PC_ERR_NOMEM, "analysis", "out of memory");
		goto out;
	}
	if (c->mode == MODE_MERGE) {
		set_phase(&s, "merge");
		if ((rc = merge_parts(&s, c, results, &faults, &curvature, err)))
			goto out;
		/* the parts' passes are done: the study's every pass */
		report_progress(&s);
		for (int i = 0; i < c->n_parts; i++)
			part_seconds +=
				json_number_value(json_object_get(json_object_get(c->parts[i], "counts"), "seconds"));
	} else if ((rc = run_items(&s, first, last, results, &faults, &curvature, err))) {
		goto out;
	}

	/* Every worker's weights went back bit for bit. Forward passes are
	 * deterministic, so this is the clean loss reproducing, checked
	 * without another pass over the data. */
	for (int i = 0; i < pc_runner_threads(s.r); i++)
		if (memcmp(pc_plan_weights(pc_runner_plan(s.r, i)), pc_graph_params(g),
			   (size_t)np * sizeof(float)) != 0) {
			rc = pc_error_set(err, PC_ERR_INTERNAL, "analysis",
					  "worker %d's weights differ from the model's after the study", i);
			goto out;
		}

	if (c->mode == MODE_SHARD) {
		*c->out = part_json(&s, c, results, faults, curvature);
		if (!*c->out || pc_report_alloc_failures() != json_failures) {
			json_decref(*c->out);
			*c->out = NULL;
			rc = pc_error_set(err, PC_ERR_NOMEM, "analysis", "out of memory building the shard's part");
			goto out;
		}
		rc = PC_OK;
		goto out;
	}

	spec_json = pc_spec_to_json(spec);
	/* token ids are never scaled */
	if (!spec->pp.scale_set)
		json_object_set_new(json_object_get(spec_json, "preprocess"), "scale",
				    json_real(d->input_dtype == PC_DTYPE_FLOAT || d->tokens ? 1.0 : 1.0 / 255.0));
	tensors_grad = pc_report_gradient(g, s.grad);
	root = json_pack("{s:i, s:o, s:o, s:o, s:o, s:o, s:o}", "version", 1, "spec", spec_json, "model",
			 model_json(&s), "dataset", dataset_json(&s), "clean", clean_json(&s), "gradient", tensors_grad,
			 "results", results);
	results = NULL;
	if (!root) {
		rc = pc_error_set(err, PC_ERR_NOMEM, "analysis", "out of memory building the report");
		goto out;
	}
	if (critical_attach(&s, root)) {
		rc = pc_error_set(err, PC_ERR_NOMEM, "analysis", "out of memory building the report");
		goto out;
	}
	if (json_object_set_new(root, "ranking", ranking(&s, json_object_get(root, "results")))) {
		rc = pc_error_set(err, PC_ERR_NOMEM, "analysis", "out of memory ranking the groups");
		goto out;
	}
	if (faults && json_object_set_new(root, "faults", faults)) {
		faults = NULL;
		rc = pc_error_set(err, PC_ERR_NOMEM, "analysis", "out of memory building the report");
		goto out;
	}
	faults = NULL;
	if (curvature && json_object_set_new(root, "curvature", curvature)) {
		curvature = NULL;
		rc = pc_error_set(err, PC_ERR_NOMEM, "analysis", "out of memory building the report");
		goto out;
	}
	curvature = NULL;
	{
		json_t *timing = json_pack("{s:I, s:I, s:f, s:f, s:f, s:I, s:i, s:I}", "forward_passes",
					   (json_int_t)s.fwd_passes, "backward_passes", (json_int_t)s.bwd_passes,
					   "forward_pass_equivalents",
					   s.flops_done / (s.batch_flops * s.batches) -
						   2.0 * (double)s.bwd_passes /* backward counted as 2x */,
					   "flops", s.flops_done, "flops_saved", s.flops_saved, "evaluations",
					   (json_int_t)s.passes_done, "cached_layers", s.n_cache, "batch_size",
					   (json_int_t)s.batch);
		if (c->mode == MODE_MERGE)
			json_object_set_new(timing, "shards", json_integer(c->n_parts));
		/* the only numbers that differ between runs, machines and thread counts */
		if (o->timing_seconds) {
			json_t *phases = json_object();

			set_phase(&s, NULL);
			for (int i = 0; i < s.n_phases; i++)
				json_object_set_new(phases, s.phases[i].name, json_real(s.phases[i].seconds));
			/* merged: the shards' seconds (the prefix's are the parent job's) */
			json_object_set_new(timing, "seconds", json_real(pc_sys_seconds() - s.t0 + part_seconds));
			json_object_set_new(timing, "threads", json_integer(o->threads));
			json_object_set_new(timing, "phases", phases);
			if (o->profile)
				json_object_set_new(timing, "ops", pc_report_op_times(s.r));
		}
		json_object_set_new(root, "timing", timing);
	}
	if (pc_report_alloc_failures() != json_failures) {
		rc = pc_error_set(err, PC_ERR_NOMEM, "analysis", "out of memory building the report");
		goto out;
	}
	*c->out = root;
	root = NULL;
	rc = PC_OK;
out:
	json_decref(root);
	json_decref(results);
	json_decref(s.critical);
	json_decref(faults);
	json_decref(curvature);
	free_study(&s);
	return rc;
}

int pc_study_run(const struct pc_graph *g, const struct pc_dataset *d, const struct pc_spec *spec,
		 const struct pc_study_opts *o, json_t **report, struct pc_error *err)
{
	struct study_call c = {.mode = MODE_FULL, .out = report};

	return study_main(g, d, spec, o, &c, err);
}

int pc_study_prefix_run(const struct pc_graph *g, const struct pc_dataset *d, const struct pc_spec *spec,
			const struct pc_study_opts *o, struct pc_study_prefix **out, struct pc_error *err)
{
	struct study_call c = {.mode = MODE_PREFIX, .prefix_out = out};

	*out = NULL;
	return study_main(g, d, spec, o, &c, err);
}

void pc_study_prefix_free(struct pc_study_prefix *p)
{
	if (!p)
		return;
	free(p->grad);
	free(p);
}

int pc_study_shard_run(const struct pc_graph *g, const struct pc_dataset *d, const struct pc_spec *spec,
		       const struct pc_study_opts *o, const struct pc_study_prefix *pre, int64_t first, int64_t last,
		       json_t **part, struct pc_error *err)
{
	struct study_call c = {.mode = MODE_SHARD, .pre = pre, .first = first, .last = last, .out = part};

	return study_main(g, d, spec, o, &c, err);
}

int pc_study_merge(const struct pc_graph *g, const struct pc_dataset *d, const struct pc_spec *spec,
		   const struct pc_study_opts *o, const struct pc_study_prefix *pre, json_t *const *parts, int n,
		   json_t **report, struct pc_error *err)
{
	struct study_call c = {.mode = MODE_MERGE, .pre = pre, .parts = parts, .n_parts = n, .out = report};

	return study_main(g, d, spec, o, &c, err);
}

int pc_study_items(const struct pc_graph *g, const struct pc_spec *spec, int64_t *n, struct pc_error *err)
{
	int np = pc_graph_param_tensors(g);
	struct pc_layer_groups lg = {0};
	int64_t items = (spec->has_faults != 0) + (spec->has_curvature != 0);

	for (int b = 0; b < spec->n_blocks; b++) {
		const struct pc_corruption *c = &spec->blocks[b];
		for (int o = 0; o < c->n_group_order; o++) {
			int64_t groups = 1;
			if (c->group_order[o] == PC_GROUP_TENSOR)
				groups = np;
			else if (c->group_order[o] != PC_GROUP_MODEL) {
				if (!lg.g) {
					int rc = pc_layer_groups_build(g, &lg, err);
					if (rc)
						return rc;
				}
				groups = lg.n;
			}
			items += groups * c->n_norms * c->n_sparsity;
		}
	}
	pc_layer_groups_free(&lg);
	*n = items;
	return PC_OK;
}
