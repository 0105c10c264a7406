/* job: the one code path from a job spec to report text, used by the CLI
 * (`paracorr run`) and by the daemon's workers, so that the service's
 * report is byte for byte the CLI's for the same spec (with the timing
 * left aside, which measures the run); and the table of job kinds with the
 * check both the routes and the workers use. The checkpoint format is
 * job_ckpt.c, the model description model_info.c, the path scrubbing
 * scrub.c and problem objects problem.c. */
#include "job.h"

#include <errno.h>
#include <stddef.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "blobs.h"
#include "store.h"
#include "paracorr/train.h"
#include "paracorr/data.h"
#include "paracorr/eval.h"
#include "paracorr/graph.h"
#include "paracorr/groups.h"
#include "paracorr/onnx.h"
#include "paracorr/report.h"
#include "paracorr/shard.h"
#include "paracorr/sys.h"

void pcd_job_opts_default(struct pcd_job_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->threads = 1;
	o->cache_bytes = PC_STUDY_DEFAULT_CACHE;
	o->timing_seconds = 1;
}

/* The model's input without its batch axis must be the dataset's sample. */
static int check_sample(const struct pc_graph *g, const struct pc_dataset *d, struct pc_error *err)
{
	struct pc_shape sample = *pc_graph_input_shape(g);

	sample.ndim--;
	memmove(sample.dim, sample.dim + 1, sizeof(sample.dim[0]) * (size_t)sample.ndim);
	return pc_dataset_check_input(d, &sample, err);
}

/* A job's progress as one line across its stages (a harden job: the study,
 * its training epochs, the study again), each weighted by its estimated
 * work (spec.h's formula), so that the fraction and the time left are the
 * whole job's while phase, done and total stay the current stage's. The
 * formula's weights are only roughly each kind's real cost (a study's
 * shortcuts make it cheaper, ACT's steps dearer), so the time left prices
 * each kind of stage's remaining work at that kind's measured rate once it
 * has run, and at the job's rate so far before. Rates are this run's: a
 * job resumed from a checkpoint does not count the epochs it skipped. */
enum { JOB_STUDY, JOB_TRAINING, JOB_KINDS };

struct job_progress {
	const struct pcd_job_opts *o;
	double t0;		 /* this run's start */
	double share[JOB_KINDS]; /* each kind's part of the job */
	double skipped;		 /* training work a checkpoint skipped */
	double work[JOB_KINDS];	 /* work of the stages finished, this run */
	double secs[JOB_KINDS];	 /* and their seconds */
	int kind;		 /* the current stage's */
	double before;		 /* the stages done, as a fraction of the job */
	double weight;		 /* the current stage, as a fraction of the job */
	double stage_t0, stage_frac;
	double last; /* the fraction last reported */
	const char *prefix; /* the current stage's phase ("before: ..."), or NULL */
	int replace;	    /* the prefix is the whole phase ("training epoch 2 of 5") */
	char phase[96];
};

static void job_progress_stage(struct job_progress *jp, int kind, double before, double weight, const char *prefix,
			       int replace)
{
	double now = pc_sys_seconds();

	if (jp->stage_t0 > 0) {
		jp->work[jp->kind] += jp->weight * jp->stage_frac;
		jp->secs[jp->kind] += now - jp->stage_t0;
	}
	jp->kind = kind;
	jp->before = before;
	jp->weight = weight;
	jp->stage_t0 = now;
	jp->stage_frac = 0;
	jp->prefix = prefix;
	jp->replace = replace;
}

/* Seconds left: each kind's remaining work at its rate. */
static double job_progress_left(const struct job_progress *jp, double now)
{
	double work[JOB_KINDS], secs[JOB_KINDS], all_w = 0, all_s = 0, left = 0;

	for (int k = 0; k < JOB_KINDS; k++) {
		work[k] = jp->work[k] + (k == jp->kind ? jp->weight * jp->stage_frac : 0);
		secs[k] = jp->secs[k] + (k == jp->kind ? now - jp->stage_t0 : 0);
		all_w += work[k];
		all_s += secs[k];
	}
	if (all_w <= 0)
		return -1.0;
	for (int k = 0; k < JOB_KINDS; k++) {
		double rest = jp->share[k] - work[k] - (k == JOB_TRAINING ? jp->skipped : 0);

		if (rest > 0)
			left += rest * (work[k] > 0 ? secs[k] / work[k] : all_s / all_w);
	}
	return left;
}

static void job_progress_cb(const struct pc_progress *pr, void *arg)
{
	struct job_progress *jp = arg;
	struct pc_progress p = *pr;
	double now = pc_sys_seconds();

	jp->stage_frac = pr->fraction > 0 ? (pr->fraction < 1 ? pr->fraction : 1) : 0;
	if (jp->prefix) {
		int join = !jp->replace && pr->phase;

		snprintf(jp->phase, sizeof(jp->phase), "%s%s%s", jp->prefix, join ? ": " : "", join ? pr->phase : "");
		p.phase = jp->phase;
	}
	/* a stage's start and the last one's end are the same point summed two
	 * ways: never let rounding step the fraction back */
	p.fraction = fmax(jp->before + jp->weight * jp->stage_frac, jp->last);
	jp->last = p.fraction;
	p.elapsed = now - jp->t0;
	p.remaining = job_progress_left(jp, now);
	jp->o->progress(&p, jp->o->progress_arg);
}

static void study_opts(const struct pcd_job_opts *o, struct job_progress *jp, struct pc_study_opts *so)
{
	pc_study_opts_default(so);
	so->threads = o->threads > 0 ? o->threads : 1;
	so->cache_bytes = o->cache_bytes;
	so->timing_seconds = o->timing_seconds;
	so->profile = o->profile;
	so->progress = o->progress ? job_progress_cb : NULL;
	so->progress_arg = jp;
	so->cancel = o->cancel;
	so->cancel_arg = o->cancel_arg;
}

/* --- harden ---------------------------------------------------------------- */

/* The ACT group's mask: the named tensors and layers, in the names a report
 * gives them ("tensor:fc1.weight", "layer:fc1", or bare), and, as before
 * layers were modules, every tensor a named node reads. NULL (all) for the
 * whole model. */
static int act_mask(const struct pc_graph *g, const struct pc_training *tr, unsigned char **out, struct pc_error *err)
{
	struct pc_layer_groups lg = {0};
	unsigned char *mask;
	int rc = PC_OK;

	*out = NULL;
	if (!tr->n_act_group)
		return 0;
	if (!(mask = calloc((size_t)pc_graph_param_count(g) + 1, 1)))
		return pc_error_set(err, PC_ERR_NOMEM, "training.act.group", "out of memory");
	if ((rc = pc_layer_groups_build(g, &lg, err)))
		goto fail;
	for (int i = 0; i < tr->n_act_group; i++) {
		const char *name = tr->act_group[i];
		int hit = 0, tensor = !strncmp(name, "tensor:", 7), layer = !strncmp(name, "layer:", 6);

		name += tensor ? 7 : layer ? 6 : 0;
		for (int k = 0; k < pc_graph_param_tensors(g) && !layer; k++) {
			const struct pc_param *p = pc_graph_param(g, k);

			if (strcmp(p->name, name) && (tensor || !p->node || strcmp(p->node, name)))
				continue;
			memset(mask + p->offset, 1, (size_t)p->count);
			hit = 1;
		}
		for (int j = 0; j < lg.n && !tensor; j++) {
			if (strcmp(lg.g[j].name, name))
				continue;
			for (int k = 0; k < lg.g[j].n_params; k++) {
				const struct pc_param *p = pc_graph_param(g, lg.g[j].params[k]);
				memset(mask + p->offset, 1, (size_t)p->count);
			}
			hit = 1;
		}
		if (!hit) {
			char where[64];

			snprintf(where, sizeof(where), "training.act.group[%d]", i);
			rc = pc_error_set(err, PC_ERR_INVALID, where,
					  "'%s' is neither a weight tensor nor a layer of the model", tr->act_group[i]);
			goto fail;
		}
	}
	pc_layer_groups_free(&lg);
	*out = mask;
	return 0;
fail:
	pc_layer_groups_free(&lg);
	free(mask);
	return rc;
}

/* One epoch of the training curve; a sequence model's perplexities beside
 * its losses, a loss that is not finite as null. */
static json_t *epoch_json(int e, const struct pc_train_stats *st, int corrupting, double seconds)
{
	json_t *o = json_pack("{s:i}", "epoch", e + 1);

	json_object_set_new(o, "loss", pc_report_real(st->loss));
	if (st->sequence)
		json_object_set_new(o, "perplexity", pc_report_real(exp(st->loss)));
	json_object_set_new(o, "accuracy", json_real(st->accuracy));
	json_object_set_new(o, "loss_corrupted", pc_report_real(st->loss_corrupted));
	if (st->sequence && corrupting)
		json_object_set_new(o, "perplexity_corrupted", pc_report_real(exp(st->loss_corrupted)));
	json_object_set_new(o, "accuracy_corrupted", json_real(st->accuracy_corrupted));
	json_object_set_new(o, "lr", json_real(st->lr));
	json_object_set_new(o, "seconds", json_real(seconds));
	return o;
}

static int run_harden(const struct pc_spec *spec, const struct pc_preprocess *pp, struct pc_graph *g,
		      const struct pc_dataset *d, const struct pcd_job_files *files, const struct pcd_job_opts *o,
		      json_t **out, struct pc_error *err)
{
	const struct pc_training *tr = &spec->training;
	struct pc_dataset *dt = NULL;
	struct pc_study_opts so;
	struct pc_train_opts to;
	struct pc_trainer *t = NULL;
	unsigned char *mask = NULL;
	json_t *before = NULL, *after = NULL, *curve = json_array(), *report = NULL;
	struct pc_graph *hardened = NULL;
	const float *w0 = pc_graph_params(g), *w;
	double change = 0, t0 = pc_sys_seconds(), study_w, epoch_w, total;
	struct job_progress jp = {.o = o, .t0 = t0};
	struct pc_work_model m;
	char epoch_phase[64];
	int64_t n = pc_graph_param_count(g);
	int rc, start;

	*out = NULL;
	if (!o->model_out) {
		rc = pc_error_set(err, PC_ERR_INVALID, "training", "a harden job needs a path for the hardened model");
		goto out;
	}
	if ((rc = pc_dataset_load(files->train_inputs, files->train_labels, pp, tr->limit, &dt, err)) ||
	    (rc = check_sample(g, dt, err)) || (rc = pc_eval_check_graph(g, dt, 0, err)) ||
	    (rc = act_mask(g, tr, &mask, err)))
		goto out;
	pc_work_model_of(g, &m);
	if ((rc = pc_spec_check_work(spec, &m, d->n, dt->n, o->max_work, err)))
		goto out;
	if (dt->classes > pc_graph_classes(g)) {
		rc = pc_error_set(err, PC_ERR_INVALID, "training.dataset", "labels span %lld classes; the model has %lld",
				  (long long)dt->classes, (long long)pc_graph_classes(g));
		goto out;
	}
	/* the stages' shares of the job: each study S x (n x P + C), the
	 * epochs the rest of the estimate */
	total = pc_spec_work(spec, &m, d->n, dt->n);
	study_w = pc_spec_study_passes(spec, &m) * ((double)d->n * (double)m.parameters + PC_WORK_PER_PASS);
	study_w = total > 0 ? fmin(study_w / total, 0.5) : 0.5;
	epoch_w = tr->epochs > 0 ? (1.0 - 2.0 * study_w) / tr->epochs : 0.0;
	jp.share[JOB_STUDY] = 2.0 * study_w;
	jp.share[JOB_TRAINING] = 1.0 - 2.0 * study_w;
	study_opts(o, &jp, &so);
	job_progress_stage(&jp, JOB_STUDY, 0.0, study_w, "before", 0);
	if ((rc = pc_study_run(g, d, spec, &so, &before, err)))
		goto out;
	pc_train_opts_default(&to);
	to.epochs = tr->epochs;
	to.batch_size = tr->batch_size;
	to.optimizer = tr->adam ? PC_OPT_ADAM : PC_OPT_SGD;
	to.lr = tr->lr;
	to.momentum = tr->momentum;
	to.weight_decay = tr->weight_decay;
	to.schedule = tr->cosine ? PC_LR_COSINE : PC_LR_CONSTANT;
	to.seed = tr->seed;
	to.act.p = tr->act_p;
	to.act.epsilon = tr->act_epsilon;
	to.act.sparsity = tr->act_sparsity;
	to.act.lambda = tr->act_lambda;
	to.act.steps = tr->act_steps;
	to.act.mask = mask;
	if ((rc = pc_trainer_new(g, &to, o->threads, &t, err)))
		goto out;
	/* a restart goes on from the last completed epoch */
	start = o->checkpoint ? pcd_ckpt_load(o->checkpoint, t, &curve) : 0;
	jp.skipped = start * epoch_w;
	for (int e = start; e < tr->epochs; e++) {
		double te = pc_sys_seconds();
		struct pc_train_stats st;

		snprintf(epoch_phase, sizeof(epoch_phase), "training epoch %d of %d", e + 1, tr->epochs);
		job_progress_stage(&jp, JOB_TRAINING, study_w + e * epoch_w, epoch_w, epoch_phase, 1);
		if ((rc = pc_trainer_epoch(t, dt, e, o->progress ? job_progress_cb : NULL, &jp, o->cancel, o->cancel_arg,
					   &st, err)))
			goto out;
		json_array_append_new(curve, epoch_json(e, &st, tr->act_epsilon > 0, o->timing_seconds ? pc_sys_seconds() - te : 0.0));
		if (o->checkpoint && (rc = pcd_ckpt_save(o->checkpoint, t, e + 1, curve, err)))
			goto out;
	}
	w = pc_trainer_weights(t);
	for (int64_t i = 0; i < n; i++)
		change += ((double)w[i] - w0[i]) * ((double)w[i] - w0[i]);
	/* the "after" study measures the file a user gets, loaded as any
	 * model is; the shared graph g stays the source model */
	job_progress_stage(&jp, JOB_STUDY, 1.0 - study_w, study_w, "after", 0);
	if ((rc = pc_onnx_save_weights(files->model, g, w, pc_trainer_stats(t), o->model_out, err)) ||
	    (rc = pc_onnx_load_file(o->model_out, &hardened, err)) ||
	    (rc = pc_study_run(hardened, d, spec, &so, &after, err)))
		goto out;
	/* the study's echo of the spec, whose preprocess.scale is resolved */
	report = json_pack("{s:i, s:s, s:O, s:O, s:O, s:{s:I, s:I, s:o}, s:O, s:O, s:{s:I, s:f}}", "version", 1, "kind",
			   "harden", "spec", json_object_get(before, "spec"), "model", json_object_get(before, "model"), "dataset",
			   json_object_get(before, "dataset"), "training", "samples", (json_int_t)dt->n, "steps",
			   (json_int_t)pc_trainer_steps(t), "epochs", curve, "before", before, "after", after,
			   "hardened", "parameters", (json_int_t)n, "weight_change_l2", sqrt(change));
	curve = NULL;
	/* the training set's labelled tokens, beside its samples */
	if (report && dt->label_ndim == 2)
		json_object_set_new(json_object_get(report, "training"), "tokens", json_integer((json_int_t)dt->labelled));
	if (!report) {
		rc = pc_error_set(err, PC_ERR_NOMEM, "report", "out of memory");
		goto out;
	}
	json_object_del(json_object_get(report, "before"), "spec");
	json_object_del(json_object_get(report, "after"), "spec");
	if (o->timing_seconds)
		json_object_set_new(report, "timing", json_pack("{s:f}", "seconds", pc_sys_seconds() - t0));
	*out = report;
out:
	json_decref(before);
	json_decref(after);
	json_decref(curve);
	pc_trainer_free(t);
	pc_dataset_free(dt);
	free(mask);
	pc_graph_free(hardened);
	return rc;
}

/* --- sharded studies --------------------------------------------------------- */

static int load_prefix(struct pcd_store *store, const char *job_id, const struct pc_graph *g,
		       struct pc_study_prefix **pre, struct pc_error *err)
{
	unsigned char *buf = NULL;
	size_t len = 0;
	int rc = pcd_store_job_state_get(store, job_id, PCD_JOB_PREFIX_STATE, &buf, &len, err);

	if (!rc)
		rc = pc_shard_prefix_decode(buf, len, pc_graph_param_count(g), pre, err);
	free(buf);
	return rc;
}

/* Every shard's part, in index order: each shard's report. */
static int merge_shards(const struct pc_spec *spec, struct pc_graph *g, const struct pc_dataset *d,
			const struct pcd_job_opts *o, const struct pc_study_opts *so, struct pcd_shard *shards,
			size_t n, json_t **out, struct pc_error *err)
{
	struct pc_study_prefix *pre = NULL;
	json_t **parts = calloc(n + 1, sizeof(*parts));
	int rc = PC_OK;

	if (!parts)
		return pc_error_set(err, PC_ERR_NOMEM, "shards", "out of memory");
	for (size_t i = 0; i < n && !rc; i++) {
		char *text = NULL;

		if (shards[i].status != PCD_JOB_SUCCEEDED || (int)i != shards[i].index) {
			rc = pc_error_set(err, PC_ERR_CONFLICT, "shards", "shard %zu (job %s) is %s", i, shards[i].id,
					  pcd_job_status_name(shards[i].status));
			break;
		}
		if ((rc = pcd_store_job_report(o->store, PCD_ALL_TENANTS, shards[i].id, &text, err)))
			break;
		rc = pc_shard_part_decode(text, strlen(text), &parts[i], err);
		free(text);
		if (rc) {
			char where[64];

			memcpy(where, err->where, sizeof(where) - 1);
			where[sizeof(where) - 1] = '\0';
			snprintf(err->where, sizeof(err->where), "shards[%zu]: %s", i, where);
		}
	}
	if (!rc && !(rc = load_prefix(o->store, o->job_id, g, &pre, err)))
		rc = pc_study_merge(g, d, spec, so, pre, parts, (int)n, out, err);
	for (size_t i = 0; i < n; i++)
		json_decref(parts[i]);
	free(parts);
	pc_study_prefix_free(pre);
	return rc;
}

/* The parent of a sharded study: the first run computes the prefix and
 * hands the items to shard jobs (*o->waiting = 1, no report); the run
 * after the last shard (shard_finished's merge, or a rerun after a crash)
 * merges their parts. */
static int run_parent(const struct pc_spec *spec, struct pc_graph *g, const struct pc_dataset *d,
		      const struct pcd_job_opts *o, const struct pc_study_opts *so, json_t **out, struct pc_error *err)
{
	struct pcd_shard *shards = NULL;
	struct pc_study_prefix *pre = NULL;
	struct pc_spec_text {
		char *v[PC_SHARD_MAX];
	} texts = {{0}};
	unsigned char *buf = NULL;
	size_t n = 0, len = 0;
	int64_t items = 0;
	int rc, k;

	if ((rc = pcd_store_job_shards(o->store, o->job_id, &shards, &n, err)))
		return rc;
	if (n) {
		rc = merge_shards(spec, g, d, o, so, shards, n, out, err);
		goto out;
	}
	if ((rc = pc_study_items(g, spec, &items, err)) || (rc = pc_study_prefix_run(g, d, spec, so, &pre, err)) ||
	    (rc = pc_shard_prefix_encode(pre, &buf, &len, err)))
		goto out;
	k = pc_shard_count(spec->shards == PC_SPEC_SHARDS_AUTO ? o->auto_shards : spec->shards, items);
	/* the shards read the parent's spec text as the parent does */
	for (int i = 0; i < k; i++) {
		int64_t a, b;

		pc_shard_range(i, k, items, &a, &b);
		if ((rc = pcd_job_shard_spec(o->job_id, i, a, b, o->spec_text, &texts.v[i], err)))
			goto out;
	}
	rc = pcd_store_job_shards_start(o->store, o->job_id, o->claim_token, k, (const char *const *)texts.v,
					PCD_JOB_PREFIX_STATE, buf, len, err);
	/* a cancel that came during the prefix: the job ends cancelled */
	if (rc == PC_ERR_CONFLICT) {
		pc_error_clear(err);
		rc = pc_error_set(err, PC_ERR_CANCELLED, "job", "cancelled");
	}
	if (rc)
		goto out;
	if (o->waiting)
		*o->waiting = 1;
out:
	for (int i = 0; i < PC_SHARD_MAX; i++)
		free(texts.v[i]);
	free(buf);
	pc_study_prefix_free(pre);
	pcd_shards_free(shards, n);
	return rc;
}

int pcd_job_shard_spec(const char *parent_id, int index, int64_t first, int64_t last, const char *parent_spec,
		       char **text, struct pc_error *err)
{
	json_t *spec = json_loads(parent_spec, 0, NULL), *o;

	*text = NULL;
	o = spec ? json_pack("{s:s, s:i, s:I, s:I, s:o}", "parent", parent_id, "index", index, "first",
			     (json_int_t)first, "last", (json_int_t)last, "spec", spec)
		 : NULL;
	if (o)
		*text = pc_report_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(17));
	json_decref(o);
	return *text ? PC_OK : pc_error_set(err, PC_ERR_NOMEM, "shards", "out of memory");
}

int pcd_job_shard_spec_parse(const char *text, char parent_id[PCD_JOB_ID_LEN + 1], int *index, int64_t *first,
			     int64_t *last, char **parent_spec, struct pc_error *err)
{
	json_t *o = json_loads(text, 0, NULL), *v;
	int rc = PC_OK;

	*parent_spec = NULL;
	if (!json_is_object(o)) {
		rc = pc_error_set(err, PC_ERR_FORMAT, "spec", "a shard's spec must be a JSON object");
		goto out;
	}
	if (!json_is_string(v = json_object_get(o, "parent")) || strlen(json_string_value(v)) != PCD_JOB_ID_LEN) {
		rc = pc_error_set(err, PC_ERR_FORMAT, "parent", "must be a job id");
		goto out;
	}
	snprintf(parent_id, PCD_JOB_ID_LEN + 1, "%s", json_string_value(v));
	if (!json_is_integer(json_object_get(o, "index")) || !json_is_integer(json_object_get(o, "first")) ||
	    !json_is_integer(json_object_get(o, "last"))) {
		rc = pc_error_set(err, PC_ERR_FORMAT, "index", "index, first and last must be integers");
		goto out;
	}
	*index = (int)json_integer_value(json_object_get(o, "index"));
	*first = (int64_t)json_integer_value(json_object_get(o, "first"));
	*last = (int64_t)json_integer_value(json_object_get(o, "last"));
	if (!json_is_object(v = json_object_get(o, "spec")) ||
	    !(*parent_spec = pc_report_dumps(v, JSON_COMPACT | JSON_REAL_PRECISION(17))))
		rc = pc_error_set(err, PC_ERR_FORMAT, "spec", "must be the parent's spec");
out:
	json_decref(o);
	return rc;
}

static int run_shard(const struct pc_spec *spec, const struct pc_preprocess *pp, struct pc_graph *g,
		     const struct pc_dataset *d, const struct pcd_job_files *files, const struct pcd_job_opts *o,
		     json_t **out, struct pc_error *err);

static int run_analyze(const struct pc_spec *spec, const struct pc_preprocess *pp, struct pc_graph *g,
		       const struct pc_dataset *d, const struct pcd_job_files *files, const struct pcd_job_opts *o,
		       json_t **out, struct pc_error *err)
{
	struct pc_work_model m;
	struct pc_study_opts so;
	struct job_progress jp = {.o = o, .t0 = pc_sys_seconds()};
	int rc;

	pc_work_model_of(g, &m);
	if ((rc = pc_spec_check_model(spec, &m, err)) || (rc = pc_spec_check_work(spec, &m, d->n, 0, o->max_work, err)))
		return rc;
	jp.share[JOB_STUDY] = 1.0;
	study_opts(o, &jp, &so);
	job_progress_stage(&jp, JOB_STUDY, 0.0, 1.0, NULL, 0);
	if (spec->shards != 1 && o->store && o->job_id && o->spec_text)
		return run_parent(spec, g, d, o, &so, out, err);
	return pc_study_run(g, d, spec, &so, out, err);
}

/* A shard job: its items given the parent's prefix; the report is the
 * part's envelope (shard.h), what the parent's merge reads. */
static int run_shard(const struct pc_spec *spec, const struct pc_preprocess *pp, struct pc_graph *g,
		     const struct pc_dataset *d, const struct pcd_job_files *files, const struct pcd_job_opts *o,
		     json_t **out, struct pc_error *err)
{
	struct pc_study_opts so;
	struct job_progress jp = {.o = o, .t0 = pc_sys_seconds()};
	struct pc_study_prefix *pre = NULL;
	json_t *part = NULL;
	int rc;

	(void)pp;
	(void)files;
	if (!o->store || !o->shard_parent)
		return pc_error_set(err, PC_ERR_INVALID, "kind", "a shard job runs in the daemon only");
	jp.share[JOB_STUDY] = 1.0;
	study_opts(o, &jp, &so);
	job_progress_stage(&jp, JOB_STUDY, 0.0, 1.0, NULL, 0);
	if ((rc = load_prefix(o->store, o->shard_parent, g, &pre, err)) ||
	    (rc = pc_study_shard_run(g, d, spec, &so, pre, o->shard_first, o->shard_last, &part, err)))
		goto out;
	*out = json_pack("{s:s, s:i, s:O}", "format", "paracorr-shard", "version", PC_SHARD_PART_VERSION, "part", part);
	if (!*out)
		rc = pc_error_set(err, PC_ERR_NOMEM, "shard", "out of memory");
out:
	json_decref(part);
	pc_study_prefix_free(pre);
	return rc;
}

/* --- the kinds of job ------------------------------------------------------ */

/* The spec fields that name uploads: where the id (or the CLI's path) and
 * the labels path are in struct pc_spec, and where the resolved paths go
 * in struct pcd_job_files. */
#define SPEC_STR(member) offsetof(struct pc_spec, member)
#define FILES_STR(member) offsetof(struct pcd_job_files, member)

static const struct pcd_job_ref_field ref_model = {
	.field = "model", .what = "model", .upload = PCD_UPLOAD_MODEL, .spec_id = SPEC_STR(model),
	.files_path = FILES_STR(model), .hide = {"model", NULL}};
static const struct pcd_job_ref_field ref_dataset = {
	.field = "dataset", .what = "dataset", .upload = PCD_UPLOAD_DATASET, .spec_id = SPEC_STR(inputs),
	.spec_labels = SPEC_STR(labels), .files_path = FILES_STR(inputs), .files_labels = FILES_STR(labels),
	.hide = {"inputs", "labels"}};
static const struct pcd_job_ref_field ref_training = {
	.field = "training.dataset", .what = "training dataset", .upload = PCD_UPLOAD_DATASET,
	.spec_id = SPEC_STR(training.inputs), .spec_labels = SPEC_STR(training.labels),
	.files_path = FILES_STR(train_inputs), .files_labels = FILES_STR(train_labels),
	.hide = {"training inputs", "training labels"}};

static const struct pcd_job_ref_field *const analyze_refs[] = {&ref_model, &ref_dataset, NULL};
static const struct pcd_job_ref_field *const harden_refs[] = {&ref_model, &ref_dataset, &ref_training, NULL};

static const struct pcd_job_kind job_kinds[] = {
	{"analyze", pcd_job_check, run_analyze, NULL, analyze_refs},
	{"harden", pcd_job_check, run_harden, "model.onnx", harden_refs},
	/* a part of a sharded analyze job (analysis.h): never submitted, made
	 * by the parent's run */
	{"shard", pcd_job_check, run_shard, NULL, analyze_refs},
};

const struct pcd_job_kind *pcd_job_kind_find(const char *name)
{
	for (size_t i = 0; name && i < sizeof(job_kinds) / sizeof(job_kinds[0]); i++)
		if (!strcmp(job_kinds[i].name, name))
			return &job_kinds[i];
	return NULL;
}

static const char *spec_str(const struct pc_spec *spec, size_t off)
{
	return *(const char *const *)((const char *)spec + off);
}

static json_int_t info_classes(const struct pcd_blob_rec *rec)
{
	json_t *o = json_loads(rec->info ? rec->info : "{}", 0, NULL);
	json_t *v = json_object_get(o, "classes");
	json_int_t n = json_is_integer(v) ? json_integer_value(v) : -1;

	json_decref(o);
	return n;
}

int pcd_job_check(const struct pcd_job_kind *k, const struct pc_spec *spec, struct pcd_store *store,
		  const char *scope, double max_work, struct pcd_job_refs *refs, struct pc_error *err)
{
	json_int_t model_classes = -1;

	refs->n = 0;
	for (int i = 0; k->refs[i]; i++) {
		const struct pcd_job_ref_field *f = k->refs[i];
		const char *id = spec_str(spec, f->spec_id);
		struct pcd_blob_rec rec = {0};
		struct pc_error gerr = {0};
		json_int_t classes;
		int rc;

		if (f->spec_labels && spec_str(spec, f->spec_labels))
			return pc_error_set(err, PC_ERR_INVALID, f->field, "must be a dataset id; file paths are for the CLI");
		/* another tenant's upload is answered as an unknown id; a store
		 * that cannot answer (busy, unreachable) is its own error */
		rc = !pcd_blobs_id_valid(id)
			     ? PC_ERR_NOT_FOUND
			     : (f->upload == PCD_UPLOAD_MODEL ? pcd_store_model_get : pcd_store_dataset_get)(store, scope, id,
													&rec, &gerr);
		if (rc == PC_ERR_NOT_FOUND)
			return pc_error_set(err, PC_ERR_INVALID, f->field, "no %s with this id", f->upload == PCD_UPLOAD_MODEL ? "model" : "dataset");
		if (rc)
			return pc_error_set(err, gerr.code, gerr.where, "%s", gerr.text);
		classes = info_classes(&rec);
		pcd_blob_rec_free(&rec);
		if (f->upload == PCD_UPLOAD_MODEL)
			model_classes = classes;
		/* labels the model cannot score: refused now, not after a queue wait */
		else if (model_classes > 0 && classes > model_classes)
			return pc_error_set(err, PC_ERR_INVALID, f->field, "the %s's labels span %lld classes; the model has %lld outputs",
					    f->what, (long long)classes, (long long)model_classes);
		if (refs->n == PCD_JOB_REFS_MAX)
			return pc_error_set(err, PC_ERR_INTERNAL, f->field, "more references than a job holds");
		refs->v[refs->n].field = f->field;
		refs->v[refs->n].upload = f->upload;
		snprintf(refs->v[refs->n].id, sizeof(refs->v[0].id), "%s", id);
		refs->n++;
	}
	/* a spec whose fields are each in range may still not fit the model,
	 * or plan years of work */
	return pcd_job_check_work(store, scope, spec, max_work, err);
}

/* The job's name and labels on the report's top level (pcd_job_opts). */
static int report_meta(json_t *report, const struct pcd_job_opts *o, struct pc_error *err)
{
	json_t *labels;

	if (o->name && o->name[0] && json_object_set_new(report, "name", json_string(o->name)))
		return pc_error_set(err, PC_ERR_INVALID, "name", "must be UTF-8");
	if (!o->labels || !o->labels[0])
		return PC_OK;
	if (!(labels = json_loads(o->labels, 0, NULL)) || !json_is_object(labels)) {
		json_decref(labels);
		return pc_error_set(err, PC_ERR_INVALID, "labels", "must be a JSON object");
	}
	if (!json_object_size(labels)) {
		json_decref(labels);
		return PC_OK;
	}
	if (json_object_set_new(report, "labels", labels))
		return pc_error_set(err, PC_ERR_NOMEM, "labels", "out of memory");
	return PC_OK;
}

int pcd_job_run_spec(const struct pc_spec *spec, const struct pcd_job_files *files, const struct pcd_job_opts *o,
		     char **report_text, json_t **report_out, struct pc_error *err)
{
	const struct pcd_job_kind *k = pcd_job_kind_find(o->kind ? o->kind : spec->kind);
	struct pc_graph *g = NULL;
	struct pc_dataset *d = NULL;
	struct pc_preprocess pp = spec->pp;
	json_t *report = NULL;
	int rc;

	*report_text = NULL;
	if (report_out)
		*report_out = NULL;
	if (!k)
		return pc_error_set(err, PC_ERR_INVALID, "kind", "no job kind '%s'", spec->kind);
	/* the model says whether inputs are token ids and labels per token */
	if ((rc = pc_onnx_load_file(files->model, &g, err)) || (rc = pc_eval_data_for(g, &pp, err)) ||
	    (rc = pc_dataset_load(files->inputs, files->labels, &pp, spec->limit, &d, err)) ||
	    (rc = check_sample(g, d, err)))
		goto out;
	if ((rc = k->run(spec, &pp, g, d, files, o, &report, err)))
		goto out;
	/* handed to shards: the report comes with the merge */
	if (o->waiting && *o->waiting)
		goto out;
	if (!o->shard_parent && (rc = report_meta(report, o, err)))
		goto out;
	*report_text = pc_report_dumps(report, JSON_INDENT(2) | JSON_REAL_PRECISION(17));
	if (!*report_text) {
		rc = pc_error_set(err, PC_ERR_NOMEM, "report", "cannot serialise the report");
		goto out;
	}
	if (report_out) {
		*report_out = report;
		report = NULL;
	}
out:
	json_decref(report);
	pc_dataset_free(d);
	pc_graph_free(g);
	return rc;
}

int pcd_job_run(const char *spec_text, struct pcd_store *store, struct pcd_blobs *blobs,
		const struct pcd_job_opts *o, char **report_text, struct pc_error *err)
{
	char paths[PCD_JOB_REFS_MAX][2][4096] = {{""}};
	struct pcd_job_files files = {0};
	const struct pcd_job_kind *k = NULL;
	struct pcd_job_refs refs;
	struct pc_spec spec;
	json_error_t jerr;
	json_t *root;
	int rc, spec_ok = 0, n_held = 0;

	*report_text = NULL;
	root = json_loads(spec_text, 0, &jerr);
	if (!root)
		return pc_error_set(err, PC_ERR_INVALID, "", "the spec is not JSON: line %d column %d: %s", jerr.line,
				    jerr.column, jerr.text);
	if ((rc = pc_spec_parse(root, &spec, err)))
		goto out;
	spec_ok = 1;
	if (!(k = pcd_job_kind_find(o->kind ? o->kind : spec.kind))) {
		rc = pc_error_set(err, PC_ERR_INVALID, "kind", "no job kind '%s'", spec.kind);
		goto out;
	}
	/* the validation of the submission, again: the uploads of any tenant
	 * (the submission checked whose they are), no work bound (the run
	 * checks o->max_work on the loaded model) */
	if ((rc = k->check(k, &spec, store, PCD_ALL_TENANTS, 0, &refs, err)))
		goto out;
	for (int i = 0; k->refs[i]; i++) {
		const struct pcd_job_ref_field *f = k->refs[i];
		int has_labels = 0;

		struct pc_error aerr = {0};

		/* with a shared store, from the node's cache or the database;
		 * held until the job is done, so the cache keeps it */
		if (f->upload == PCD_UPLOAD_MODEL)
			rc = pcd_blobs_model_acquire(blobs, refs.v[i].id, paths[i][0], sizeof(paths[i][0]), &aerr);
		else
			rc = pcd_blobs_dataset_acquire(blobs, refs.v[i].id, paths[i][0], paths[i][1],
						       sizeof(paths[i][0]), &has_labels, &aerr);
		if (rc == PC_ERR_NOT_FOUND) {
			rc = pc_error_set(err, PC_ERR_INVALID, f->field, "no %s with this id",
					  f->upload == PCD_UPLOAD_MODEL ? "model" : "dataset");
			goto out;
		}
		if (rc) {
			rc = pc_error_set(err, aerr.code, f->field, "%s", aerr.text);
			goto out;
		}
		n_held = i + 1;
		*(const char **)((char *)&files + f->files_path) = paths[i][0];
		if (f->files_labels)
			*(const char **)((char *)&files + f->files_labels) = has_labels ? paths[i][1] : NULL;
	}
	{
		struct pcd_job_opts oo = *o;

		oo.spec_text = spec_text;
		rc = pcd_job_run_spec(&spec, &files, &oo, report_text, NULL, err);
	}
	if (rc) {
		/* the data directory is the operator's: errors name the part */
		for (int i = 0; k->refs[i]; i++) {
			pcd_error_hide_path(err, paths[i][0], k->refs[i]->hide[0]);
			if (k->refs[i]->hide[1])
				pcd_error_hide_path(err, paths[i][1], k->refs[i]->hide[1]);
		}
		if (o->model_out)
			pcd_error_hide_path(err, o->model_out, "hardened model");
	}
out:
	for (int i = 0; i < n_held; i++)
		pcd_blobs_release(blobs, k->refs[i]->upload == PCD_UPLOAD_DATASET, refs.v[i].id);
	if (spec_ok)
		pc_spec_free(&spec);
	json_decref(root);
	return rc;
}

/* --- the work budget at submission ------------------------------------- */

static json_int_t info_get_int(const json_t *info, const char *key)
{
	json_t *v = json_object_get(info, key);

	return json_is_integer(v) && json_integer_value(v) > 0 ? json_integer_value(v) : 0;
}

/* Parameters, tensors, layers and int8-quantizable tensors from a model's
 * stored description: the checks need no load of the model. A description
 * stored before tensors said whether they are quantizable leaves that
 * unknown (the run checks it on the graph). */
static void work_model_of_info(const json_t *info, struct pc_work_model *m)
{
	json_t *tensors = json_object_get(info, "tensors"), *t, *nodes = json_object();
	size_t i;

	m->parameters = info_get_int(info, "parameters");
	m->tensors = (int64_t)json_array_size(tensors);
	m->quantizable = 0;
	/* a layer is a distinct node reading parameters; a set of their names */
	json_array_foreach(tensors, i, t)
	{
		const char *node = json_string_value(json_object_get(t, "node"));
		const json_t *q = json_object_get(t, "quantizable");

		if (nodes && node)
			json_object_set_new(nodes, node, json_true());
		if (!json_is_boolean(q) || m->quantizable < 0)
			m->quantizable = -1;
		else
			m->quantizable += json_is_true(q);
	}
	m->layers = nodes ? (int64_t)json_object_size(nodes) : m->tensors;
	json_decref(nodes);
}

static int64_t dataset_samples(struct pcd_store *store, const char *tenant, const char *id)
{
	struct pcd_blob_rec rec = {0};
	json_t *info;
	int64_t n = 0;

	if (!id || pcd_store_dataset_get(store, tenant, id, &rec, NULL))
		return 0;
	if ((info = json_loads(rec.info ? rec.info : "{}", 0, NULL)))
		n = info_get_int(info, "samples");
	json_decref(info);
	pcd_blob_rec_free(&rec);
	return n;
}

int pcd_job_check_work(struct pcd_store *store, const char *tenant, const struct pc_spec *spec, double max_work,
		       struct pc_error *err)
{
	struct pcd_blob_rec rec = {0};
	struct pc_work_model m = {0};
	json_t *info;
	int rc;

	if (pcd_store_model_get(store, tenant, spec->model, &rec, err))
		return err ? err->code : PC_ERR_NOT_FOUND;
	info = json_loads(rec.info ? rec.info : "{}", 0, NULL);
	pcd_blob_rec_free(&rec);
	if (!info)
		return pc_error_set(err, PC_ERR_INTERNAL, "model", "the stored description is not JSON");
	work_model_of_info(info, &m);
	json_decref(info);
	if ((rc = pc_spec_check_model(spec, &m, err)) || max_work <= 0)
		return rc;
	return pc_spec_check_work(spec, &m, dataset_samples(store, tenant, spec->inputs),
				  spec->has_training ? dataset_samples(store, tenant, spec->training.inputs) : 0, max_work,
				  err);
}
