/* train: see train.h. The trainer keeps the master weights w and writes
 * them (or w + a) into its runner before each gradient; the runner's
 * copies are scratch. Optimiser arithmetic is done in double per element
 * and stored as float, as PyTorch does on float32 tensors up to rounding. */
#include "paracorr/train.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "paracorr/corrupt.h"
#include "paracorr/eval.h"
#include "paracorr/rng.h"

struct pc_trainer {
	const struct pc_graph *g;
	struct pc_train_opts o;
	struct pc_runner *r;
	int64_t n;	       /* parameters */
	int64_t m;	       /* parameters in the group P */
	float *w;	       /* master weights */
	float *g0, *g1;	       /* gradients at w and at w + a */
	float *wa;	       /* w + a */
	float *gp, *up, *ap;   /* the group's gradient, unit direction, corruption */
	float *buf, *v;	       /* SGD momentum or Adam's first moment; Adam's second */
	int64_t steps;
	int64_t numel;	       /* floats (token ids) per sample */
	int64_t positions;     /* labels per sample */
	float *bx;	       /* the mini-batch: floats, */
	int64_t *bt;	       /* or token ids */
	int32_t *by;
	int cap;
	/* BatchNormalization's running statistics: the runner's plans share
	 * plan 0's (pc_plan_stats), which the clean pass of each step moves */
	int n_bn;
	int64_t bn_floats;
};

void pc_train_opts_default(struct pc_train_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->epochs = 3;
	o->batch_size = 64;
	o->optimizer = PC_OPT_SGD;
	o->lr = 0.01;
	o->momentum = 0.9;
	o->beta1 = 0.9;
	o->beta2 = 0.999;
	o->adam_eps = 1e-8;
	o->schedule = PC_LR_CONSTANT;
	o->seed = 1;
	o->act.p = 2;
	o->act.lambda = 1;
	o->act.steps = 1;
}

static int check_opts(const struct pc_train_opts *o, struct pc_error *err)
{
	if (o->epochs < 0)
		return pc_error_set(err, PC_ERR_INVALID, "training.epochs", "must be >= 0");
	if (o->batch_size < 1)
		return pc_error_set(err, PC_ERR_INVALID, "training.batch_size", "must be >= 1");
	if (!(o->lr > 0) || !isfinite(o->lr))
		return pc_error_set(err, PC_ERR_INVALID, "training.lr", "must be a finite number > 0");
	if (!(o->momentum >= 0 && o->momentum < 1))
		return pc_error_set(err, PC_ERR_INVALID, "training.momentum", "must be in [0, 1)");
	if (!(o->weight_decay >= 0) || !isfinite(o->weight_decay))
		return pc_error_set(err, PC_ERR_INVALID, "training.weight_decay", "must be >= 0");
	if (!(o->beta1 >= 0 && o->beta1 < 1) || !(o->beta2 >= 0 && o->beta2 < 1) || !(o->adam_eps > 0))
		return pc_error_set(err, PC_ERR_INVALID, "training.betas", "betas must be in [0, 1), eps > 0");
	if (!(o->act.p >= 1))
		return pc_error_set(err, PC_ERR_INVALID, "training.act.norm", "must be >= 1");
	if (!(o->act.epsilon >= 0) || !isfinite(o->act.epsilon))
		return pc_error_set(err, PC_ERR_INVALID, "training.act.epsilon", "must be a finite number >= 0");
	if (!(o->act.lambda >= 0 && o->act.lambda <= 1))
		return pc_error_set(err, PC_ERR_INVALID, "training.act.lambda", "must be in [0, 1]");
	if (o->act.steps < 1 || o->act.sparsity < 0)
		return pc_error_set(err, PC_ERR_INVALID, "training.act.steps", "steps >= 1, sparsity >= 0");
	return 0;
}

static float *floats(int64_t n)
{
	return calloc((size_t)(n > 0 ? n : 1), sizeof(float));
}

/* Counts the buffers training moves (BatchNormalization's running mean
 * and variance), which must be float initializers: the plans' copies of
 * those are what a step moves. */
static int find_bn_buffers(struct pc_trainer *t, struct pc_error *err)
{
	const struct pc_graph *g = t->g;

	for (int k = 0; k < pc_graph_node_count(g); k++)
		for (int i = 0; i < pc_graph_node_inputs(g, k); i++) {
			const char *name = pc_graph_node_input_name(g, k, i);

			if (!pc_graph_node_stats_input(g, k, i))
				continue;
			if (!name || !pc_graph_buffer(g, name, NULL))
				return pc_error_set(err, PC_ERR_UNSUPPORTED, pc_graph_node_name(g, k),
						    "training needs the running statistics as initializers");
			t->n_bn++;
		}
	return 0;
}

int pc_trainer_new(const struct pc_graph *g, const struct pc_train_opts *o, int threads, struct pc_trainer **out,
		   struct pc_error *err)
{
	const struct pc_shape *in = pc_graph_input_shape(g);
	struct pc_trainer *t;
	int batch, rc;

	*out = NULL;
	if ((rc = check_opts(o, err)))
		return rc;
	if (threads < 1)
		threads = 1;
	if (!(t = calloc(1, sizeof(*t))))
		return pc_error_set(err, PC_ERR_NOMEM, "training", "out of memory");
	t->g = g;
	t->o = *o;
	t->n = pc_graph_param_count(g);
	/* plan batches of 16 whatever the thread count, so that the sums are
	 * grouped the same way and a run does not depend on it; a fixed-batch
	 * model keeps its own */
	batch = o->batch_size < 16 ? o->batch_size : 16;
	if ((rc = find_bn_buffers(t, err))) {
		pc_trainer_free(t);
		return rc;
	}
	/* batch statistics must be the mini-batch's: one plan batch holds it */
	if (t->n_bn)
		batch = o->batch_size;
	if (in->ndim > 0 && in->dim[0] > 0)
		batch = (int)in->dim[0];
	t->r = pc_runner_new(g, batch, threads, PC_PLAN_GRAD | PC_PLAN_TRAIN, err);
	t->w = floats(t->n);
	t->g0 = floats(t->n);
	t->g1 = floats(t->n);
	t->wa = floats(t->n);
	t->gp = floats(t->n);
	t->up = floats(t->n);
	t->ap = floats(t->n);
	t->buf = floats(t->n);
	t->v = floats(t->n);
	if (!t->r || !t->w || !t->g0 || !t->g1 || !t->wa || !t->gp || !t->up || !t->ap || !t->buf || !t->v) {
		pc_trainer_free(t);
		return err && err->code ? (int)err->code : pc_error_set(err, PC_ERR_NOMEM, "training", "out of memory");
	}
	memcpy(t->w, pc_graph_params(g), (size_t)t->n * sizeof(float));
	for (int i = 0; i < pc_plan_stats_count(pc_runner_plan(t->r, 0)); i++) {
		int64_t len;

		pc_plan_stats(pc_runner_plan(t->r, 0), i, &len, NULL);
		t->bn_floats += len;
	}
	for (int64_t i = 0; i < t->n; i++)
		t->m += !o->act.mask || o->act.mask[i];
	*out = t;
	return 0;
}

void pc_trainer_free(struct pc_trainer *t)
{
	if (!t)
		return;
	pc_runner_free(t->r);
	free(t->w);
	free(t->g0);
	free(t->g1);
	free(t->wa);
	free(t->gp);
	free(t->up);
	free(t->ap);
	free(t->buf);
	free(t->v);
	free(t->bx);
	free(t->bt);
	free(t->by);
	free(t);
}

const float *pc_trainer_weights(const struct pc_trainer *t)
{
	return t->w;
}

const struct pc_plan *pc_trainer_stats(const struct pc_trainer *t)
{
	return pc_runner_plan(t->r, 0);
}

int64_t pc_trainer_steps(const struct pc_trainer *t)
{
	return t->steps;
}

double pc_train_lr(const struct pc_train_opts *o, int epoch)
{
	if (o->schedule == PC_LR_COSINE && o->epochs > 0)
		return o->lr * 0.5 * (1 + cos(M_PI * epoch / o->epochs));
	return o->lr;
}

/* The gradient of the mean loss over the mini-batch at the runner's
 * current weights. */
static int batch_grad(struct pc_trainer *t, const struct pc_dataset *d, int n, float *grad, struct pc_eval *ev,
		      struct pc_error *err)
{
	struct pc_dataset b = *d;

	b.n = n;
	b.x = d->x ? t->bx : NULL;
	b.tokens = d->tokens ? t->bt : NULL;
	b.y = t->by;
	return pc_eval_run(t->r, &b, 0, grad, NULL, NULL, ev, err);
}

static void gather(const struct pc_trainer *t, const float *full, float *group)
{
	const unsigned char *mask = t->o.act.mask;
	int64_t k = 0;

	for (int64_t i = 0; i < t->n; i++)
		if (!mask || mask[i])
			group[k++] = full[i];
}

/* wa = w + a, a scattered from the group's ap. */
static void write_corrupted(struct pc_trainer *t)
{
	const unsigned char *mask = t->o.act.mask;
	int64_t k = 0;

	for (int64_t i = 0; i < t->n; i++)
		t->wa[i] = !mask || mask[i] ? t->w[i] + t->ap[k++] : t->w[i];
	pc_runner_write(t->r, 0, t->n, t->wa);
}

/* a for the gradient g0 (and, with steps > 1, the gradients at w + a). */
static int corruption(struct pc_trainer *t, const struct pc_dataset *d, int n, struct pc_error *err)
{
	const struct pc_act *act = &t->o.act;
	double dual, step = act->epsilon / act->steps;
	struct pc_eval ev;
	int zero, rc;

	memset(t->ap, 0, (size_t)t->m * sizeof(float));
	for (int s = 0; s < act->steps; s++) {
		if (s > 0) {
			write_corrupted(t);
			if ((rc = batch_grad(t, d, n, t->g1, &ev, err)))
				return rc;
		}
		gather(t, s ? t->g1 : t->g0, t->gp);
		if ((rc = pc_corrupt_gradient(t->gp, t->m, NULL, act->p, act->sparsity, t->up, &dual, &zero, err)))
			return rc;
		if (zero)
			break; /* no direction: a stays where it is */
		for (int64_t k = 0; k < t->m; k++)
			t->ap[k] += (float)(step * t->up[k]);
		/* one step of eps lands on the sphere already; more are projected */
		if (act->steps > 1 && (rc = pc_corrupt_project(t->ap, t->m, act->p, act->sparsity, act->epsilon, err)))
			return rc;
	}
	return 0;
}

static void optimise(struct pc_trainer *t, const float *dir, double lr)
{
	const struct pc_train_opts *o = &t->o;
	int64_t step = t->steps + 1;

	if (o->optimizer == PC_OPT_ADAM) {
		double bc1 = 1 - pow(o->beta1, (double)step), bc2 = 1 - pow(o->beta2, (double)step);

		for (int64_t i = 0; i < t->n; i++) {
			double gi = (double)dir[i] + o->weight_decay * t->w[i];
			double m = o->beta1 * t->buf[i] + (1 - o->beta1) * gi;
			double v = o->beta2 * t->v[i] + (1 - o->beta2) * gi * gi;

			t->buf[i] = (float)m;
			t->v[i] = (float)v;
			t->w[i] = (float)(t->w[i] - lr / bc1 * m / (sqrt(v) / sqrt(bc2) + o->adam_eps));
		}
		return;
	}
	for (int64_t i = 0; i < t->n; i++) {
		double gi = (double)dir[i] + o->weight_decay * t->w[i];

		if (o->momentum > 0) {
			/* PyTorch starts the buffer at the first gradient */
			gi = step == 1 ? gi : o->momentum * t->buf[i] + gi;
			t->buf[i] = (float)gi;
		}
		t->w[i] = (float)(t->w[i] - lr * gi);
	}
}

static int reserve_batch(struct pc_trainer *t, const struct pc_dataset *d, int n, struct pc_error *err)
{
	int64_t numel = 1, positions = d->positions > 0 ? d->positions : 1;

	for (int i = 0; i < d->sample.ndim; i++)
		numel *= d->sample.dim[i];
	if (n <= t->cap && numel == t->numel && positions == t->positions && !t->bx == !d->x)
		return 0;
	free(t->bx);
	free(t->bt);
	free(t->by);
	t->bx = d->x ? malloc((size_t)n * (size_t)numel * sizeof(float)) : NULL;
	t->bt = d->x ? NULL : malloc((size_t)n * (size_t)numel * sizeof(int64_t));
	t->by = malloc((size_t)n * (size_t)positions * sizeof(int32_t));
	t->cap = (t->bx || t->bt) && t->by ? n : 0;
	t->numel = numel;
	t->positions = positions;
	return t->cap ? 0 : pc_error_set(err, PC_ERR_NOMEM, "training", "out of memory for a batch of %d", n);
}

int pc_trainer_step(struct pc_trainer *t, const struct pc_dataset *d, const int64_t *idx, int n, double lr,
		    struct pc_train_stats *out, struct pc_error *err)
{
	const struct pc_act *act = &t->o.act;
	struct pc_eval e0, e1 = {0};
	const float *dir = t->g0;
	int64_t labelled = 0;
	int rc;

	memset(out, 0, sizeof(*out));
	if (n < 1)
		return pc_error_set(err, PC_ERR_INVALID, "training", "an empty batch");
	if ((rc = reserve_batch(t, d, n, err)))
		return rc;
	for (int i = 0; i < n; i++) {
		if (idx[i] < 0 || idx[i] >= d->n)
			return pc_error_set(err, PC_ERR_INVALID, "training", "sample %lld is not in the dataset",
					    (long long)idx[i]);
		if (d->x)
			memcpy(t->bx + (size_t)i * (size_t)t->numel, d->x + (size_t)idx[i] * (size_t)t->numel,
			       (size_t)t->numel * sizeof(float));
		else
			memcpy(t->bt + (size_t)i * (size_t)t->numel, d->tokens + (size_t)idx[i] * (size_t)t->numel,
			       (size_t)t->numel * sizeof(int64_t));
		memcpy(t->by + (size_t)i * (size_t)t->positions, d->y + (size_t)idx[i] * (size_t)t->positions,
		       (size_t)t->positions * sizeof(int32_t));
		for (int64_t k = 0; k < t->positions; k++)
			labelled += t->by[(size_t)i * (size_t)t->positions + (size_t)k] != PC_LABEL_IGNORE;
	}
	/* a batch of padding only has no mean loss and no gradient (PyTorch's
	 * would be NaN and ruin the weights): no step */
	if (labelled == 0) {
		out->samples = n;
		out->lr = lr;
		return 0;
	}
	pc_runner_write(t->r, 0, t->n, t->w);
	/* one set of Dropout masks per step, the same at w and at w + a */
	pc_runner_set_dropout(t->r, pc_rng_derive(t->o.seed, 0x64726f70ULL /* "drop" */, (uint64_t)t->steps, 0, 0));
	/* batch statistics everywhere; only the pass at w moves the running ones */
	pc_runner_set_training(t->r, 1, 1);
	rc = batch_grad(t, d, n, t->g0, &e0, err);
	pc_runner_set_training(t->r, 1, 0);
	if (rc)
		return rc;
	if (act->epsilon > 0 && t->m > 0) {
		if ((rc = corruption(t, d, n, err)))
			return rc;
		write_corrupted(t);
		if ((rc = batch_grad(t, d, n, t->g1, &e1, err)))
			return rc;
		/* the mixed loss's gradient; lambda 1 is the paper's ACT */
		for (int64_t i = 0; i < t->n; i++)
			t->g1[i] = (float)((1 - act->lambda) * t->g0[i] + act->lambda * t->g1[i]);
		dir = t->g1;
		out->loss_corrupted = e1.loss;
		out->accuracy_corrupted = e1.accuracy;
	}
	optimise(t, dir, lr);
	t->steps++;
	out->samples = n;
	out->sequence = e0.sequence;
	out->tokens = e0.tokens;
	out->loss = e0.loss;
	out->accuracy = e0.accuracy;
	out->lr = lr;
	return 0;
}

/* Uniform in [0, bound) without modulo bias (Lemire's method). */
static uint64_t below(uint64_t *s, uint64_t bound)
{
	unsigned __int128 m = (unsigned __int128)pc_rng_splitmix64(s) * bound;
	uint64_t low = (uint64_t)m;

	if (low < bound) {
		uint64_t floor = -bound % bound;

		while (low < floor) {
			m = (unsigned __int128)pc_rng_splitmix64(s) * bound;
			low = (uint64_t)m;
		}
	}
	return (uint64_t)(m >> 64);
}

int pc_trainer_epoch(struct pc_trainer *t, const struct pc_dataset *d, int epoch, pc_progress_fn progress,
		     void *progress_arg, pc_cancel_fn cancel, void *cancel_arg, struct pc_train_stats *out,
		     struct pc_error *err)
{
	const int bs = t->o.batch_size;
	const int64_t steps = (d->n + bs - 1) / bs;
	double lr = pc_train_lr(&t->o, epoch), loss = 0, acc = 0, lossc = 0, accc = 0, w, counted = 0;
	uint64_t rng = pc_rng_derive(t->o.seed, 0x747261696eULL /* "train" */, (uint64_t)epoch, 0, 0);
	int64_t *perm = malloc((size_t)(d->n > 0 ? d->n : 1) * sizeof(int64_t));
	int rc = 0;

	memset(out, 0, sizeof(*out));
	if (!perm)
		return pc_error_set(err, PC_ERR_NOMEM, "training", "out of memory for the permutation");
	for (int64_t i = 0; i < d->n; i++)
		perm[i] = i;
	for (int64_t i = d->n - 1; i > 0; i--) {
		int64_t j = (int64_t)below(&rng, (uint64_t)i + 1), tmp = perm[i];

		perm[i] = perm[j];
		perm[j] = tmp;
	}
	for (int64_t s = 0; s < steps; s++) {
		struct pc_train_stats st;
		int n = (int)(d->n - s * bs < bs ? d->n - s * bs : bs);

		if (cancel && cancel(cancel_arg)) {
			rc = pc_error_set(err, PC_ERR_CANCELLED, "training", "cancelled");
			break;
		}
		if ((rc = pc_trainer_step(t, d, perm + s * bs, n, lr, &st, err)))
			break;
		/* means over what counts: samples, or a sequence model's labelled
		 * tokens (a batch of padding only adds nothing) */
		w = st.sequence ? (double)st.tokens : (double)n;
		if (w > 0) {
			loss += st.loss * w;
			acc += st.accuracy * w;
			lossc += st.loss_corrupted * w;
			accc += st.accuracy_corrupted * w;
			counted += w;
		}
		out->samples += n;
		out->tokens += st.tokens;
		out->sequence |= st.sequence;
		if (progress) {
			struct pc_progress pr = {"training", s + 1, steps, 0, -1, (double)(s + 1) / (double)steps};
			progress(&pr, progress_arg);
		}
	}
	free(perm);
	if (counted > 0) {
		out->loss = loss / counted;
		out->accuracy = acc / counted;
		out->loss_corrupted = lossc / counted;
		out->accuracy_corrupted = accc / counted;
	}
	out->lr = lr;
	return rc;
}

int64_t pc_trainer_state_size(const struct pc_trainer *t)
{
	return 3 * t->n + t->bn_floats;
}

void pc_trainer_state_save(const struct pc_trainer *t, float *state, int64_t *steps)
{
	const struct pc_plan *stats = pc_trainer_stats(t);
	int64_t off = 3 * t->n;

	memcpy(state, t->w, (size_t)t->n * sizeof(float));
	memcpy(state + t->n, t->buf, (size_t)t->n * sizeof(float));
	memcpy(state + 2 * t->n, t->v, (size_t)t->n * sizeof(float));
	for (int i = 0; i < pc_plan_stats_count(stats); i++) {
		int64_t len;
		const float *src = pc_plan_stats(stats, i, &len, NULL);

		memcpy(state + off, src, (size_t)len * sizeof(float));
		off += len;
	}
	*steps = t->steps;
}

void pc_trainer_state_load(struct pc_trainer *t, const float *state, int64_t steps)
{
	const struct pc_plan *stats = pc_trainer_stats(t);
	int64_t off = 3 * t->n;

	memcpy(t->w, state, (size_t)t->n * sizeof(float));
	memcpy(t->buf, state + t->n, (size_t)t->n * sizeof(float));
	memcpy(t->v, state + 2 * t->n, (size_t)t->n * sizeof(float));
	for (int i = 0; i < pc_plan_stats_count(stats); i++) {
		int64_t len;
		float *dst = pc_plan_stats(stats, i, &len, NULL);

		memcpy(dst, state + off, (size_t)len * sizeof(float));
		off += len;
	}
	t->steps = steps;
}
