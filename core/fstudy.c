/* The random bit-error study (fstudy.h). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "paracorr/corrupt.h"
#include "paracorr/bitsearch.h"
#include "paracorr/fstudy.h"
#include "paracorr/groups.h"
#include "paracorr/prefix.h"
#include "paracorr/report.h"
#include "paracorr/rng.h"

/* Elements one bit-position trial may flip: its Floyd set takes 16 bytes
 * each. */
#define MAX_WEIGHTS ((int64_t)1 << 20)

/* pc_rng_derive tags of the two kinds of trial */
#define TAG_RANDOM 0x72616e646f6dULL /* "random" */
#define TAG_BITS 0x62697473ULL	     /* "bits" */

struct pc_fstudy {
	struct pc_runner *r;
	const struct pc_dataset *d;
	int64_t limit;
	pc_cancel_fn cancel;
	void *cancel_arg;
	struct pc_faults_store *store;
	float *clean;	/* the float32 weights the runner held */
	float *decoded; /* the format's clean decoded weights */
	int64_t n;
	struct pc_eval clean_eval;
	int64_t passes, resumed;
	struct pc_prefix *cache;
	int use_cache;
};

static int cancelled(struct pc_fstudy *s, struct pc_error *err)
{
	if (s->cancel && s->cancel(s->cancel_arg))
		return pc_error_set(err, PC_ERR_CANCELLED, "fstudy", "cancelled");
	return 0;
}

/* A pass of the runner's weights, which differ from the format's clean
 * ones in nodes `start` and later only. */
static int pass_from(struct pc_fstudy *s, int start, struct pc_eval *out, struct pc_error *err)
{
	int rc, resumed = 0;

	if ((rc = cancelled(s, err)))
		return rc;
	s->passes++;
	if (!s->use_cache)
		return pc_eval_run(s->r, s->d, s->limit, NULL, s->cancel, s->cancel_arg, out, err);
	if ((rc = pc_prefix_pass(s->cache, start, out, &resumed, err)))
		return rc;
	s->resumed += resumed;
	return 0;
}

int pc_fstudy_new(struct pc_runner *r, const struct pc_dataset *d, int64_t limit, enum pc_faults_format f,
		  enum pc_faults_scaling scaling, pc_cancel_fn cancel, void *cancel_arg, struct pc_fstudy **out,
		  struct pc_error *err)
{
	const struct pc_graph *g = pc_runner_graph(r);
	struct pc_fstudy *s = calloc(1, sizeof *s);
	int rc;

	*out = NULL;
	if (!s)
		return pc_error_set(err, PC_ERR_NOMEM, "fstudy", "out of memory");
	s->r = r;
	s->d = d;
	s->limit = limit;
	s->cancel = cancel;
	s->cancel_arg = cancel_arg;
	s->n = pc_graph_param_count(g);
	s->clean = malloc((size_t)(s->n > 0 ? s->n : 1) * sizeof *s->clean);
	s->decoded = malloc((size_t)(s->n > 0 ? s->n : 1) * sizeof *s->decoded);
	if (!s->clean || !s->decoded) {
		rc = pc_error_set(err, PC_ERR_NOMEM, "fstudy", "out of memory");
		goto fail;
	}
	memcpy(s->clean, pc_plan_weights(pc_runner_plan(r, 0)), (size_t)s->n * sizeof *s->clean);
	rc = pc_faults_encode(g, s->clean, f, scaling, &s->store, err);
	if (rc)
		goto fail;
	pc_faults_decode(s->store, s->decoded);
	pc_runner_write(r, 0, s->n, s->decoded);
	s->use_cache = 1;
	if ((rc = pc_prefix_new(r, d, limit, NULL, 0, cancel, cancel_arg, &s->cache, err)) ||
	    (rc = cancelled(s, err)))
		goto fail;
	s->passes++;
	/* the clean pass fills the cache on the way */
	rc = pc_eval_run_hooked(r, d, limit, NULL, cancel, cancel_arg, pc_prefix_hook(s->cache), s->cache,
				&s->clean_eval, err);
	if (rc)
		goto fail;
	*out = s;
	return 0;
fail:
	pc_fstudy_free(s);
	return rc;
}

void pc_fstudy_free(struct pc_fstudy *s)
{
	if (!s)
		return;
	/* the decoded weights went in only after clean was filled */
	if (s->store)
		pc_runner_write(s->r, 0, s->n, s->clean);
	pc_faults_store_free(s->store);
	pc_prefix_free(s->cache);
	free(s->clean);
	free(s->decoded);
	free(s);
}

const struct pc_eval *pc_fstudy_clean(const struct pc_fstudy *s)
{
	return &s->clean_eval;
}

const struct pc_faults_store *pc_fstudy_store(const struct pc_fstudy *s)
{
	return s->store;
}

int64_t pc_fstudy_passes(const struct pc_fstudy *s)
{
	return s->passes;
}

int64_t pc_fstudy_resumed(const struct pc_fstudy *s)
{
	return s->resumed;
}

void pc_fstudy_set_cache(struct pc_fstudy *s, int on)
{
	s->use_cache = on;
}

/* The parameter tensor holding flat element i (a valid one): tensors lie
 * in table order, one after another (graph.h). */
static int param_of(const struct pc_graph *g, int64_t i)
{
	int lo = 0, hi = pc_graph_param_tensors(g) - 1;

	while (lo < hi) {
		int mid = lo + (hi - lo + 1) / 2;

		if (pc_graph_param(g, mid)->offset <= i)
			lo = mid;
		else
			hi = mid - 1;
	}
	return lo;
}

int pc_fstudy_eval_flips(struct pc_fstudy *s, const struct pc_faults_bitref *flips, int64_t n, struct pc_eval *out,
			 struct pc_error *err)
{
	const struct pc_graph *g = pc_runner_graph(s->r);
	int64_t done = 0;
	int rc = 0, start = pc_graph_node_count(g);

	if (n < 0)
		return pc_error_set(err, PC_ERR_INVALID, "flips", "%lld flips", (long long)n);
	if (n == 0) {
		*out = s->clean_eval;
		return 0;
	}
	for (; done < n; done++) {
		rc = pc_faults_flip(s->store, flips[done].elem, flips[done].bit, NULL, err);
		if (rc)
			goto restore;
	}
	/* after all the flips: an element flipped in two bits gets both */
	for (int64_t i = 0; i < n; i++) {
		float v = pc_faults_value(s->store, flips[i].elem);
		int k = pc_graph_param(g, param_of(g, flips[i].elem))->node_index;

		pc_runner_write(s->r, flips[i].elem, 1, &v);
		if (k < start)
			start = k;
	}
	rc = pass_from(s, start, out, err);
restore:
	/* each of these flips succeeded once, so it cannot fail again */
	for (int64_t i = 0; i < done; i++)
		pc_faults_flip(s->store, flips[i].elem, flips[i].bit, NULL, NULL);
	for (int64_t i = 0; i < done; i++)
		pc_runner_write(s->r, flips[i].elem, 1, &s->decoded[flips[i].elem]);
	return rc;
}

/* A group is one or more distinct parameter tensors of the model. */
static int check_group(const struct pc_fstudy *s, const int *params, int n, struct pc_error *err)
{
	int tensors = pc_graph_param_tensors(pc_runner_graph(s->r));

	if (n < 1 || !params)
		return pc_error_set(err, PC_ERR_INVALID, "group", "the group has no tensor");
	for (int i = 0; i < n; i++) {
		if (params[i] < 0 || params[i] >= tensors)
			return pc_error_set(err, PC_ERR_INVALID, "group",
					    "tensor %d is not a parameter tensor of the model (0..%d)", params[i],
					    tensors - 1);
		for (int j = 0; j < i; j++)
			if (params[j] == params[i])
				return pc_error_set(err, PC_ERR_INVALID, "group", "tensor %d appears twice",
						    params[i]);
	}
	return 0;
}

/* The group's part of a stream: its tensor list, in order. */
static uint64_t group_key(const int *params, int n)
{
	uint64_t h = (uint64_t)n;

	for (int i = 0; i < n; i++)
		h = pc_rng_mix64(h ^ pc_rng_mix64((uint64_t)(uint32_t)params[i] + PC_RNG_GOLDEN));
	return h;
}

int pc_fstudy_trial_flips(const struct pc_fstudy *s, const int *params, int n, double ber, uint64_t seed, int trial,
			  struct pc_faults_bitref **flips, int64_t *count, int64_t *cap, struct pc_error *err)
{
	uint64_t stream;
	int rc = check_group(s, params, n, err);

	*count = 0;
	if (rc)
		return rc;
	stream = pc_rng_derive(seed, TAG_RANDOM, (uint64_t)pc_faults_store_format(s->store), group_key(params, n),
			       (uint64_t)trial);
	return pc_faults_sample(s->store, params, n, ber, stream, flips, count, cap, err);
}

int pc_fstudy_random(struct pc_fstudy *s, const int *params, int n, double ber, int trials, uint64_t seed,
		     struct pc_fstudy_random *out, struct pc_error *err)
{
	struct pc_faults_bitref *flips = NULL;
	int64_t count = 0, cap = 0, flipped = 0;
	double *acc = NULL, *loss = NULL;
	int finite = 0, rc;

	memset(out, 0, sizeof *out);
	if (!(ber > 0.0 && ber < 1.0))
		return pc_error_set(err, PC_ERR_INVALID, "ber", "bit error rate %g is outside (0, 1)", ber);
	if (trials < 1)
		return pc_error_set(err, PC_ERR_INVALID, "trials", "%d trials: at least 1 is needed", trials);
	rc = check_group(s, params, n, err);
	if (rc)
		return rc;
	acc = malloc((size_t)trials * sizeof *acc);
	loss = malloc((size_t)trials * sizeof *loss);
	if (!acc || !loss) {
		rc = pc_error_set(err, PC_ERR_NOMEM, "fstudy", "out of memory");
		goto out;
	}
	for (int t = 0; t < trials; t++) {
		struct pc_eval ev;

		rc = pc_fstudy_trial_flips(s, params, n, ber, seed, t, &flips, &count, &cap, err);
		if (rc)
			goto out;
		rc = pc_fstudy_eval_flips(s, flips, count, &ev, err);
		if (rc)
			goto out;
		flipped += count;
		out->passes += count > 0;
		acc[t] = ev.accuracy;
		if (isfinite(ev.loss))
			loss[finite++] = ev.loss;
	}
	out->trials = trials;
	out->flips_mean = (double)flipped / trials;
	out->non_finite = trials - finite;
	/* cannot fail: the counts are not negative and the arrays exist */
	pc_stats_summarize(acc, trials, &out->accuracy, NULL);
	pc_stats_summarize(loss, finite, &out->loss, NULL);
out:
	free(flips);
	free(acc);
	free(loss);
	return rc;
}

const char *pc_fstudy_bit_field(enum pc_faults_format f, int bit)
{
	int width = pc_faults_format_bits(f), mantissa;

	if (bit < 0 || bit >= width)
		return NULL;
	if (f == PC_FAULTS_INT8)
		return "int8";
	mantissa = f == PC_FAULTS_FLOAT32 ? 23 : f == PC_FAULTS_FLOAT16 ? 10 : 7;
	return bit == width - 1 ? "sign" : bit >= mantissa ? "exponent" : "mantissa";
}

/* Floyd's set: open addressing over a power-of-two table, -1 empty. */
struct floyd {
	int64_t *slot;
	uint64_t mask;
};

/* Inserts x; 0 when it was there already. */
static int floyd_insert(struct floyd *f, int64_t x)
{
	for (uint64_t h = pc_rng_mix64((uint64_t)x) & f->mask;; h = (h + 1) & f->mask) {
		if (f->slot[h] == x)
			return 0;
		if (f->slot[h] < 0) {
			f->slot[h] = x;
			return 1;
		}
	}
}

int pc_fstudy_bit(struct pc_fstudy *s, const int *params, int n, int bit, int64_t weights, int trials, uint64_t seed,
		  struct pc_fstudy_bit *out, struct pc_error *err)
{
	enum pc_faults_format f = pc_faults_store_format(s->store);
	int width = pc_faults_format_bits(f), rc;
	struct pc_faults_bitref *flips = NULL;
	struct floyd set = {NULL, 0};
	double acc_sum = 0.0, loss_sum = 0.0;
	int64_t exposed, m;
	uint64_t size = 1;

	memset(out, 0, sizeof *out);
	if (bit < 0 || bit >= width)
		return pc_error_set(err, PC_ERR_INVALID, "bit", "bit %d is outside %s's 0..%d", bit,
				    pc_faults_format_name(f), width - 1);
	if (weights < 1 || weights > MAX_WEIGHTS)
		return pc_error_set(err, PC_ERR_INVALID, "weights", "%lld weights per trial is outside 1..%lld",
				    (long long)weights, (long long)MAX_WEIGHTS);
	if (trials < 1)
		return pc_error_set(err, PC_ERR_INVALID, "trials", "%d trials: at least 1 is needed", trials);
	rc = check_group(s, params, n, err);
	if (rc)
		return rc;
	/* every exposed tensor exposes the format's width */
	exposed = pc_faults_exposed_bits(s->store, params, n, NULL) / width;
	if (!exposed)
		return pc_error_set(err, PC_ERR_INVALID, "group", "the group exposes no bit in %s",
				    pc_faults_format_name(f));
	m = weights < exposed ? weights : exposed;
	while (size < 2 * (uint64_t)m)
		size <<= 1;
	set.mask = size - 1;
	set.slot = malloc((size_t)size * sizeof *set.slot);
	flips = malloc((size_t)m * sizeof *flips);
	if (!set.slot || !flips) {
		rc = pc_error_set(err, PC_ERR_NOMEM, "fstudy", "out of memory");
		goto out;
	}
	out->bit = bit;
	out->field = pc_fstudy_bit_field(f, bit);
	out->weights = m;
	out->trials = trials;
	out->accuracy_min = INFINITY;
	for (int t = 0; t < trials; t++) {
		uint64_t stream = pc_rng_derive(seed, TAG_BITS, (uint64_t)f, group_key(params, n), (uint64_t)t);
		int64_t k = 0;
		struct pc_eval ev;

		memset(set.slot, 0xff, (size_t)size * sizeof *set.slot);
		/* Floyd: m distinct of [0, exposed), uniformly; the modulo's
		 * bias is below exposed / 2^64 */
		for (int64_t j = exposed - m; j < exposed; j++) {
			int64_t pick = (int64_t)(pc_rng_splitmix64(&stream) % (uint64_t)(j + 1));
			int64_t e = pick;
			int b;

			if (!floyd_insert(&set, pick)) {
				floyd_insert(&set, j);
				e = j;
			}

			/* cannot fail: e * width + bit is below the exposed bits */
			pc_faults_exposed_at(s->store, params, n, e * width + bit, &flips[k].elem, &b, NULL);
			flips[k++].bit = b;
		}
		rc = pc_fstudy_eval_flips(s, flips, m, &ev, err);
		if (rc)
			goto out;
		out->passes++;
		acc_sum += ev.accuracy;
		loss_sum += ev.loss;
		if (ev.accuracy < out->accuracy_min)
			out->accuracy_min = ev.accuracy;
	}
	out->accuracy_mean = acc_sum / trials;
	/* NaN (null) as soon as one trial's loss was not finite */
	out->loss_mean = isfinite(loss_sum) ? loss_sum / trials : NAN;
out:
	free(set.slot);
	free(flips);
	return rc;
}

json_t *pc_fstudy_random_json(enum pc_faults_format f, double ber, const char *group,
			      const struct pc_fstudy_random *r)
{
	return json_pack("{s:s, s:o, s:s, s:i, s:o, s:o, s:o, s:o, s:[o,o], s:o, s:o, s:[o,o], s:i}", "format",
			 pc_faults_format_name(f), "ber", pc_report_real(ber), "group", group, "trials", r->trials,
			 "flips_mean", pc_report_real(r->flips_mean), "accuracy_mean",
			 pc_report_real(r->accuracy.mean), "accuracy_std", pc_report_real(r->accuracy.std),
			 "accuracy_min", pc_report_real(r->accuracy.min), "accuracy_ci95",
			 pc_report_real(r->accuracy.ci95[0]), pc_report_real(r->accuracy.ci95[1]), "loss_mean",
			 pc_report_real(r->loss.mean), "loss_std", pc_report_real(r->loss.std), "loss_ci95",
			 pc_report_real(r->loss.ci95[0]), pc_report_real(r->loss.ci95[1]), "non_finite",
			 r->non_finite);
}

json_t *pc_fstudy_bit_json(enum pc_faults_format f, const char *group, const struct pc_fstudy_bit *b)
{
	return json_pack("{s:s, s:s, s:i, s:s, s:I, s:i, s:o, s:o, s:o}", "format", pc_faults_format_name(f), "group",
			 group, "bit", b->bit, "field", b->field, "weights", (json_int_t)b->weights, "trials",
			 b->trials, "accuracy_mean", pc_report_real(b->accuracy_mean), "accuracy_min",
			 pc_report_real(b->accuracy_min), "loss_mean", pc_report_real(b->loss_mean));
}

/* --- the faults block of a spec -------------------------------------------------- */

struct fgroup {
	char name[320];
	int *params; /* owned */
	int n;
};

static void fgroups_free(struct fgroup *gs, int n)
{
	for (int i = 0; gs && i < n; i++)
		free(gs[i].params);
	free(gs);
}

static int fgroup_add(struct fgroup *gr, const char *name, const int *params, int n, struct pc_error *err)
{
	snprintf(gr->name, sizeof(gr->name), "%s", name);
	if (!(gr->params = malloc(((size_t)n + 1) * sizeof(int))))
		return pc_error_set(err, PC_ERR_NOMEM, "faults", "out of memory");
	memcpy(gr->params, params, (size_t)n * sizeof(int));
	gr->n = n;
	return PC_OK;
}

/* The faults block's groups in its order: the model, one per tensor, one
 * per module (groups.h), named as the corruption study names them. */
static int fault_groups(const struct pc_graph *g, const struct pc_faults_spec *fs, struct fgroup **out, int *n_out,
			struct pc_error *err)
{
	int np = pc_graph_param_tensors(g), n = 0, rc = PC_OK;
	struct pc_layer_groups lg = {0};
	struct fgroup *gs = NULL;
	int *all = malloc(((size_t)np + 1) * sizeof(int));
	char name[320];

	*out = NULL;
	*n_out = 0;
	if (!all)
		return pc_error_set(err, PC_ERR_NOMEM, "faults", "out of memory");
	for (int i = 0; i < np; i++)
		all[i] = i;
	if ((fs->groups & PC_GROUP_LAYER) && (rc = pc_layer_groups_build(g, &lg, err)))
		goto out;
	if (!(gs = calloc((size_t)(1 + np + lg.n), sizeof(*gs)))) {
		rc = pc_error_set(err, PC_ERR_NOMEM, "faults", "out of memory");
		goto out;
	}
	for (int o = 0; o < fs->n_group_order && !rc; o++) {
		if (fs->group_order[o] == PC_GROUP_MODEL) {
			rc = fgroup_add(&gs[n++], "model", all, np, err);
		} else if (fs->group_order[o] == PC_GROUP_TENSOR) {
			for (int i = 0; i < np && !rc; i++) {
				snprintf(name, sizeof(name), "tensor:%s", pc_graph_param(g, i)->name);
				rc = fgroup_add(&gs[n++], name, &all[i], 1, err);
			}
		} else {
			for (int j = 0; j < lg.n && !rc; j++) {
				snprintf(name, sizeof(name), "layer:%s", lg.g[j].name);
				rc = fgroup_add(&gs[n++], name, lg.g[j].params, lg.g[j].n_params, err);
			}
		}
	}
out:
	pc_layer_groups_free(&lg);
	free(all);
	if (rc) {
		fgroups_free(gs, n);
		return rc;
	}
	*out = gs;
	*n_out = n;
	return PC_OK;
}

static json_t *num_or_null(double v)
{
	return isfinite(v) ? json_real(v) : json_null();
}

static int nomem_json(struct pc_error *err)
{
	return pc_error_set(err, PC_ERR_NOMEM, "faults", "out of memory building the report");
}

/* One format of the block: its clean numbers, then per group the exposed
 * bits, the random trials per ber, the bit positions and the search, each
 * row appended to its section. */
static int run_format(struct pc_runner *r, const struct pc_dataset *d, int64_t limit, const struct pc_spec *spec,
		      enum pc_faults_format f, const struct fgroup *gs, int n_groups, const struct pc_fstudy_spec_opts *o,
		      json_t *sec, int64_t *passes, int64_t *resumed, struct pc_error *err)
{
	const struct pc_faults_spec *fs = &spec->faults;
	const struct pc_graph *g = pc_runner_graph(r);
	const char *fname = pc_faults_format_name(f);
	struct pc_fstudy *st = NULL;
	const struct pc_eval *clean;
	int64_t searched = 0, search_resumed = 0, told = 0;
	int rc;

	if ((rc = pc_fstudy_new(r, d, limit, f, fs->quantization, o->cancel, o->cancel_arg, &st, err)))
		return rc;
	clean = pc_fstudy_clean(st);
	if (json_object_set_new(json_object_get(sec, "quantized"), fname,
				json_pack("{s:o, s:f}", "loss", num_or_null(clean->loss), "accuracy", clean->accuracy))) {
		rc = nomem_json(err);
		goto out;
	}
	for (int gi = 0; gi < n_groups && !rc; gi++) {
		const struct fgroup *gr = &gs[gi];
		int n_tensors = 0;
		int64_t exposed = pc_faults_exposed_bits(pc_fstudy_store(st), gr->params, gr->n, &n_tensors);

		if (json_array_append_new(json_object_get(sec, "exposed"),
					  json_pack("{s:s, s:s, s:i, s:I}", "format", fname, "group", gr->name, "tensors",
						    n_tensors, "bits", (json_int_t)exposed))) {
			rc = nomem_json(err);
			break;
		}
		/* int8 leaves biases and norms in float: a group of only those has nothing to flip */
		if (!exposed)
			continue;
		for (int b = 0; b < fs->n_ber && !rc; b++) {
			struct pc_fstudy_random res;

			if (!(rc = pc_fstudy_random(st, gr->params, gr->n, fs->ber[b], fs->trials, spec->seed, &res, err)) &&
			    json_array_append_new(json_object_get(sec, "random"),
						  pc_fstudy_random_json(f, fs->ber[b], gr->name, &res)))
				rc = nomem_json(err);
		}
		for (int bit = 0; fs->has_bits && bit < pc_faults_format_bits(f) && !rc; bit++) {
			struct pc_fstudy_bit res;

			if (!(rc = pc_fstudy_bit(st, gr->params, gr->n, bit, fs->bits_weights, fs->bits_trials, spec->seed,
						 &res, err)) &&
			    json_array_append_new(json_object_get(sec, "bits"), pc_fstudy_bit_json(f, gr->name, &res)))
				rc = nomem_json(err);
		}
		if (fs->has_search && !rc) {
			struct pc_bitsearch_opts so = {fs->method == PC_FAULTS_SEARCH_BFA ? PC_BITSEARCH_BFA : PC_BITSEARCH_BEST,
						       fs->target_accuracy, fs->max_flips, 0, gr->name, gr->params, gr->n,
						       o->cancel, o->cancel_arg, 0};
			struct pc_bitsearch_result res = {0};
			struct pc_faults_store *fresh = NULL;
			json_t *row = NULL;

			/* the search flips its own copy of the codes; the study's stay clean */
			if (!(rc = pc_faults_encode(g, pc_graph_params(g), f, fs->quantization, &fresh, err)) &&
			    !(rc = pc_bitsearch_run(r, d, fresh, &so, &res, err)) && !(rc = pc_bitsearch_json(&res, &row, err)) &&
			    json_array_append_new(json_object_get(sec, "search"), row))
				rc = nomem_json(err);
			searched += res.gradients + res.evaluations;
			search_resumed += res.resumed;
			pc_bitsearch_result_free(&res);
			pc_faults_store_free(fresh);
		}
		if (o->progress) {
			int64_t now = pc_fstudy_passes(st) + searched;

			o->progress(o->progress_arg, now - told);
			told = now;
		}
	}
out:
	*passes += pc_fstudy_passes(st) + searched;
	*resumed += pc_fstudy_resumed(st) + search_resumed;
	pc_fstudy_free(st);
	return rc;
}

int pc_fstudy_run_spec(struct pc_runner *r, const struct pc_dataset *d, int64_t limit, const struct pc_spec *spec,
		       const struct pc_fstudy_spec_opts *o, json_t **out, struct pc_error *err)
{
	struct fgroup *gs = NULL;
	int64_t passes = 0, resumed = 0;
	int n_groups = 0, rc;
	json_t *sec;

	*out = NULL;
	if (!spec->has_faults)
		return PC_OK;
	sec = json_pack("{s:{}, s:[], s:[], s:[], s:[]}", "quantized", "exposed", "random", "bits", "search");
	if (!sec)
		return nomem_json(err);
	if ((rc = fault_groups(pc_runner_graph(r), &spec->faults, &gs, &n_groups, err)))
		goto out;
	for (int i = 0; i < spec->faults.n_formats && !rc; i++)
		rc = run_format(r, d, limit, spec, spec->faults.formats[i], gs, n_groups, o, sec, &passes, &resumed, err);
	if (!rc && (json_object_set_new(sec, "passes", json_integer((json_int_t)passes)) ||
		    json_object_set_new(sec, "resumed", json_integer((json_int_t)resumed))))
		rc = nomem_json(err);
out:
	fgroups_free(gs, n_groups);
	if (rc) {
		json_decref(sec);
		return rc;
	}
	*out = sec;
	return PC_OK;
}
