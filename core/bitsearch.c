/* bitsearch: progressive bit search (BFA) and paracorr's better one. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "paracorr/bitsearch.h"
#include "paracorr/graph.h"
#include "paracorr/prefix.h"
#include "paracorr/report.h"

/* One candidate flip: flat element elem of parameter tensor `tensor`. */
struct cand {
	int tensor;
	int64_t elem;
	int bit;
	double score; /* first-order loss change */
	float after;
	double loss; /* realised; +inf when not finite */
	double accuracy;
};

struct search {
	struct pc_runner *r;
	const struct pc_dataset *d;
	struct pc_faults_store *s;
	const struct pc_bitsearch_opts *o;
	const struct pc_graph *g;
	float *w;    /* the current (flipped) decoded weights */
	float *grad; /* at w */
	struct cand *cands;
	int n_cands, per_layer;
	struct pc_prefix *cache; /* at w, from the last gradient pass; NULL: off */
	int cap; /* of res->flips */
	struct pc_bitsearch_result *res;
};

const char *pc_bitsearch_method_name(enum pc_bitsearch_method m)
{
	return m == PC_BITSEARCH_BEST ? "best" : "bfa";
}

static int check_opts(const struct pc_faults_store *s, const struct pc_bitsearch_opts *o, struct pc_error *err)
{
	if (!(o->target_accuracy >= 0.0 && o->target_accuracy < 1.0))
		return pc_error_set(err, PC_ERR_INVALID, "faults.search.target_accuracy",
				    "target_accuracy must be in [0, 1), not %g", o->target_accuracy);
	if (o->max_flips < 1)
		return pc_error_set(err, PC_ERR_INVALID, "faults.search.max_flips",
				    "max_flips must be at least 1, not %d", o->max_flips);
	if (o->method != PC_BITSEARCH_BFA && o->method != PC_BITSEARCH_BEST)
		return pc_error_set(err, PC_ERR_INVALID, "faults.search.method", "unknown method %d", (int)o->method);
	if (o->candidates < 0 || o->candidates > PC_BITSEARCH_MAX_CANDIDATES)
		return pc_error_set(err, PC_ERR_INVALID, "faults.search.candidates",
				    "candidates must be in [0, %d], not %d", PC_BITSEARCH_MAX_CANDIDATES,
				    o->candidates);
	if (o->n_params < 0 || (o->n_params > 0 && !o->params) ||
	    pc_faults_exposed_bits(s, o->params, o->n_params, NULL) == 0)
		return pc_error_set(err, PC_ERR_INVALID, "faults.groups", "group %s exposes no bit in %s",
				    o->group ? o->group : "(unnamed)",
				    pc_faults_format_name(pc_faults_store_format(s)));
	return 0;
}

static int cancelled(const struct search *k, struct pc_error *err)
{
	if (k->o->cancel && k->o->cancel(k->o->cancel_arg))
		return pc_error_set(err, PC_ERR_CANCELLED, "faults.search", "bit search cancelled");
	return 0;
}

/* g * (after - before); a change that is not finite counts as +inf or -inf
 * by its sign times the gradient's, not as a product that may be NaN. */
static double first_order(float g, float before, float after)
{
	double delta = (double)after - (double)before;

	if (isinf(delta)) {
		int sign = ((g > 0) - (g < 0)) * ((delta > 0) - (delta < 0));

		return sign > 0 ? INFINITY : sign < 0 ? -INFINITY : 0.0;
	}
	return (double)g * delta;
}

/* Whether score a ranks above b: NaN below everything, equal scores not
 * above (the earlier one keeps its place). */
static int ranks_above(double a, double b)
{
	if (isnan(a))
		return 0;
	return isnan(b) || a > b;
}

/* Keeps the best `k` of the candidates seen so far in top[0..*have),
 * best first. */
static void keep_top(struct cand *top, int k, int *have, const struct cand *c)
{
	int at = *have;

	while (at > 0 && ranks_above(c->score, top[at - 1].score))
		at--;
	if (at >= k)
		return;
	if (*have < k)
		(*have)++;
	memmove(top + at + 1, top + at, (size_t)(*have - 1 - at) * sizeof(*top));
	top[at] = *c;
}

/* The best per_layer flips of every tensor of the group that exposes bits,
 * by first-order loss change at k->grad, into k->cands. */
static int rank_candidates(struct search *k, struct pc_error *err)
{
	k->n_cands = 0;
	for (int j = 0; j < k->o->n_params; j++) {
		int p = k->o->params[j], bits = pc_faults_tensor_bits(k->s, p), have = 0;
		const struct pc_param *pt = pc_graph_param(k->g, p);
		struct cand *top = k->cands + k->n_cands;

		if (!bits || !pt->count)
			continue;
		for (int64_t e = pt->offset; e < pt->offset + pt->count; e++) {
			for (int b = 0; b < bits; b++) {
				struct cand c = {.tensor = p, .elem = e, .bit = b};
				int rc = pc_faults_flipped_value(k->s, e, b, &c.after, err);

				if (rc)
					return rc;
				c.score = first_order(k->grad[e], k->w[e], c.after);
				keep_top(top, k->per_layer, &have, &c);
			}
		}
		k->n_cands += have;
	}
	return 0;
}

/* The loss and accuracy with candidate c applied alone to the current
 * weights, which are back as they were afterwards. */
static int try_candidate(struct search *k, struct cand *c, struct pc_error *err)
{
	struct pc_eval ev;
	int rc = cancelled(k, err), resumed = 0;

	if (rc)
		return rc;
	pc_runner_write(k->r, c->elem, 1, &c->after);
	/* only nodes from the tensor's first reader on see the flip */
	if (k->cache)
		rc = pc_prefix_pass(k->cache, pc_graph_param(k->g, c->tensor)->node_index, &ev, &resumed, err);
	else
		rc = pc_eval_run(k->r, k->d, 0, NULL, k->o->cancel, k->o->cancel_arg, &ev, err);
	pc_runner_write(k->r, c->elem, 1, k->w + c->elem);
	if (rc)
		return rc;
	k->res->evaluations++;
	k->res->resumed += resumed;
	c->loss = isfinite(ev.loss) ? ev.loss : INFINITY;
	c->accuracy = ev.accuracy;
	return 0;
}

/* Whether evaluated candidate a is the better flip to commit than b. BFA:
 * the higher loss; BEST: the lower accuracy, then the higher loss. Equal
 * candidates are not better: the lower tensor keeps its place. */
static int better(const struct search *k, const struct cand *a, const struct cand *b)
{
	if (k->o->method == PC_BITSEARCH_BEST && a->accuracy != b->accuracy)
		return a->accuracy < b->accuracy;
	return a->loss > b->loss;
}

static int commit(struct search *k, const struct cand *c, struct pc_error *err)
{
	struct pc_bitsearch_result *res = k->res;
	const struct pc_param *pt = pc_graph_param(k->g, c->tensor);
	struct pc_bitsearch_flip *f;
	float after;
	int rc;

	if (res->n_flips == k->cap) {
		int cap = k->cap ? 2 * k->cap : 16;
		struct pc_bitsearch_flip *grown;

		if (cap > k->o->max_flips)
			cap = k->o->max_flips;
		grown = realloc(res->flips, (size_t)cap * sizeof(*grown));
		if (!grown)
			return pc_error_set(err, PC_ERR_NOMEM, "faults.search", "out of memory");
		res->flips = grown;
		k->cap = cap;
	}
	if ((rc = pc_faults_flip(k->s, c->elem, c->bit, &after, err)))
		return rc;
	f = &res->flips[res->n_flips++];
	f->tensor = c->tensor;
	f->name = pt->name;
	f->index = c->elem - pt->offset;
	f->bit = c->bit;
	f->before = k->w[c->elem];
	f->after = after;
	f->loss = c->loss;
	f->accuracy = c->accuracy;
	k->w[c->elem] = after;
	pc_runner_write(k->r, c->elem, 1, &after);
	return 0;
}

/* One pass: rank at the current gradient, evaluate, commit the best. */
static int step(struct search *k, struct pc_error *err)
{
	int best = 0, rc;

	if ((rc = rank_candidates(k, err)))
		return rc;
	for (int i = 0; i < k->n_cands; i++) {
		if ((rc = try_candidate(k, &k->cands[i], err)))
			return rc;
		if (i > 0 && better(k, &k->cands[i], &k->cands[best]))
			best = i;
	}
	return commit(k, &k->cands[best], err);
}

/* The gradient at the current weights, capturing the cache's cuts at
 * them on the way: every candidate of the step that follows differs from
 * these weights in one element only. */
static int gradient_pass(struct search *k, struct pc_eval *out, struct pc_error *err)
{
	return pc_eval_run_hooked(k->r, k->d, 0, k->grad, k->o->cancel, k->o->cancel_arg,
				  k->cache ? pc_prefix_hook(k->cache) : NULL, k->cache, out, err);
}

static int search(struct search *k, struct pc_error *err)
{
	struct pc_bitsearch_result *res = k->res;
	struct pc_eval ev;
	double accuracy;
	int rc;

	if ((rc = cancelled(k, err)) || (rc = gradient_pass(k, &res->clean, err)))
		return rc;
	res->gradients++;
	accuracy = res->clean.accuracy;
	while (!(accuracy <= k->o->target_accuracy) && res->n_flips < k->o->max_flips) {
		if (res->n_flips > 0) {
			if ((rc = cancelled(k, err)) || (rc = gradient_pass(k, &ev, err)))
				return rc;
			res->gradients++;
		}
		if ((rc = step(k, err)))
			return rc;
		accuracy = res->flips[res->n_flips - 1].accuracy;
	}
	res->reached = accuracy <= k->o->target_accuracy;
	return 0;
}

void pc_bitsearch_result_free(struct pc_bitsearch_result *res)
{
	if (!res)
		return;
	free(res->group);
	free(res->flips);
	memset(res, 0, sizeof(*res));
}

int pc_bitsearch_run(struct pc_runner *r, const struct pc_dataset *d, struct pc_faults_store *s,
		     const struct pc_bitsearch_opts *o, struct pc_bitsearch_result *out, struct pc_error *err)
{
	struct search k;
	int64_t n;
	int layers = 0, rc;

	memset(out, 0, sizeof(*out));
	if ((rc = check_opts(s, o, err)))
		return rc;
	memset(&k, 0, sizeof(k));
	k.r = r;
	k.d = d;
	k.s = s;
	k.o = o;
	k.g = pc_runner_graph(r);
	k.res = out;
	k.per_layer = o->method == PC_BITSEARCH_BFA ? 1 : o->candidates ? o->candidates : PC_BITSEARCH_BEST_CANDIDATES;
	pc_faults_exposed_bits(s, o->params, o->n_params, &layers);
	n = pc_graph_param_count(k.g);
	out->format = pc_faults_store_format(s);
	out->method = o->method;
	out->target_accuracy = o->target_accuracy;
	k.w = malloc((size_t)(n ? n : 1) * sizeof(*k.w));
	k.grad = malloc((size_t)(n ? n : 1) * sizeof(*k.grad));
	k.cands = malloc((size_t)layers * (size_t)k.per_layer * sizeof(*k.cands));
	out->group = strdup(o->group ? o->group : "model");
	if (!k.w || !k.grad || !k.cands || !out->group) {
		rc = pc_error_set(err, PC_ERR_NOMEM, "faults.search", "out of memory");
		goto done;
	}
	if (!o->no_cache &&
	    (rc = pc_prefix_new(r, d, 0, o->params, o->n_params, o->cancel, o->cancel_arg, &k.cache, err)))
		goto done;
	pc_faults_decode(s, k.w);
	pc_runner_write(r, 0, n, k.w);
	rc = search(&k, err);
	/* the flips are XORs of the codes: flipping each again restores them */
	for (int i = out->n_flips - 1; i >= 0; i--) {
		const struct pc_param *pt = pc_graph_param(k.g, out->flips[i].tensor);

		pc_faults_flip(s, pt->offset + out->flips[i].index, out->flips[i].bit, NULL, NULL);
	}
	pc_faults_decode(s, k.w);
	pc_runner_write(r, 0, n, k.w);
done:
	free(k.w);
	free(k.grad);
	free(k.cands);
	pc_prefix_free(k.cache);
	if (rc)
		pc_bitsearch_result_free(out);
	return rc;
}

static json_t *flip_json(const struct pc_bitsearch_flip *f)
{
	return json_pack("{s:s, s:I, s:i, s:o, s:o, s:o, s:o}", "tensor", f->name, "index", (json_int_t)f->index, "bit",
			 f->bit, "before", pc_report_real(f->before), "after", pc_report_real(f->after), "loss",
			 pc_report_real(f->loss), "accuracy", pc_report_real(f->accuracy));
}

int pc_bitsearch_json(const struct pc_bitsearch_result *res, json_t **out, struct pc_error *err)
{
	json_t *flips = json_array(), *root = NULL;

	*out = NULL;
	for (int i = 0; flips && i < res->n_flips; i++) {
		if (json_array_append_new(flips, flip_json(&res->flips[i]))) {
			json_decref(flips);
			flips = NULL;
		}
	}
	if (flips)
		root = json_pack("{s:s, s:s, s:s, s:o, s:b, s:{s:o, s:o}, s:o, s:I, s:I, s:I}", "format",
				 pc_faults_format_name(res->format), "group", res->group, "method",
				 pc_bitsearch_method_name(res->method), "target_accuracy",
				 pc_report_real(res->target_accuracy), "reached", res->reached, "clean", "loss",
				 pc_report_real(res->clean.loss), "accuracy", pc_report_real(res->clean.accuracy),
				 "flips", flips, "gradients", (json_int_t)res->gradients, "evaluations",
				 (json_int_t)res->evaluations, "resumed", (json_int_t)res->resumed);
	if (!root)
		return pc_error_set(err, PC_ERR_NOMEM, "faults.search", "out of memory");
	*out = root;
	return 0;
}
