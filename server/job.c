/* job: the one code path from a job spec to report text, used by the CLI
 * (`paracorr run`) and by the daemon's workers, so that the service's
 * report is byte for byte the CLI's for the same spec (with the timing
 * left aside, which measures the run). */
#include "job.h"

#include <errno.h>
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
#include "paracorr/sys.h"

void pcd_job_opts_default(struct pcd_job_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->threads = 1;
	o->cache_bytes = PC_STUDY_DEFAULT_CACHE;
	o->timing_seconds = 1;
}

json_t *pcd_shape_json(const struct pc_shape *s)
{
	json_t *a = json_array();
	int i;

	for (i = 0; a && i < s->ndim; i++)
		json_array_append_new(a, json_integer(s->dim[i]));
	return a;
}

json_t *pcd_model_info(const struct pc_graph *g, const char *id, uint64_t bytes)
{
	static const char *const kinds[] = {"logits", "probabilities", "log_probabilities"};
	json_t *o, *ops = json_array(), *tensors = json_array();
	int i, j, n = pc_graph_node_count(g);

	for (i = 0; ops && i < n; i++) {
		const char *op = pc_graph_node_op(g, i);
		for (j = 0; j < i && strcmp(pc_graph_node_op(g, j), op); j++)
			;
		if (j == i)
			json_array_append_new(ops, json_string(op));
	}
	for (i = 0; tensors && i < pc_graph_param_tensors(g); i++) {
		const struct pc_param *p = pc_graph_param(g, i);
		json_array_append_new(tensors, json_pack("{s:s, s:o, s:s}", "name", p->name, "shape",
							 pcd_shape_json(&p->shape), "node", p->node ? p->node : ""));
	}
	o = json_pack("{s:s, s:I, s:I, s:i, s:[{s:s, s:o}], s:[{s:s, s:s}], s:I, s:o, s:o}", "id", id, "bytes",
		      (json_int_t)bytes, "parameters", (json_int_t)pc_graph_param_count(g), "opset",
		      pc_graph_opset(g), "inputs", "name", pc_graph_input_name(g), "shape",
		      pcd_shape_json(pc_graph_input_shape(g)), "outputs", "name", pc_graph_output_name(g), "kind",
		      kinds[pc_graph_output_kind(g)], "classes", (json_int_t)pc_graph_classes(g), "ops", ops,
		      "tensors", tensors);
	return o;
}

/* The model's input without its batch axis must be the dataset's sample. */
static int check_sample(const struct pc_graph *g, const struct pc_dataset *d, struct pc_error *err)
{
	struct pc_shape sample = *pc_graph_input_shape(g);

	sample.ndim--;
	memmove(sample.dim, sample.dim + 1, sizeof(sample.dim[0]) * (size_t)sample.ndim);
	return pc_dataset_check_input(d, &sample, err);
}

static void study_opts(const struct pcd_job_opts *o, struct pc_study_opts *so)
{
	pc_study_opts_default(so);
	so->threads = o->threads > 0 ? o->threads : 1;
	so->cache_bytes = o->cache_bytes;
	so->timing_seconds = o->timing_seconds;
	so->progress = o->progress;
	so->progress_arg = o->progress_arg;
	so->cancel = o->cancel;
	so->cancel_arg = o->cancel_arg;
}

/* --- harden ---------------------------------------------------------------- */

#define CKPT_MAGIC "PCCKPT1"

struct ckpt_header {
	char magic[8];
	int32_t epochs_done;
	int32_t pad;
	int64_t steps;
	int64_t state_floats;
	int64_t curve_bytes;
};

/* Writes the trainer's state and the curve so far, through a rename. */
static int ckpt_save(const char *path, const struct pc_trainer *t, int epochs_done, const json_t *curve,
		     struct pc_error *err)
{
	struct ckpt_header h = {CKPT_MAGIC, epochs_done, 0, 0, pc_trainer_state_size(t), 0};
	char *text = json_dumps(curve, JSON_COMPACT | JSON_REAL_PRECISION(17)), tmp[4200];
	float *state = malloc((size_t)h.state_floats * sizeof(float));
	FILE *f = NULL;
	int rc = 0;

	if (!text || !state) {
		rc = pc_error_set(err, PC_ERR_NOMEM, "checkpoint", "out of memory");
		goto out;
	}
	pc_trainer_state_save(t, state, &h.steps);
	h.curve_bytes = (int64_t)strlen(text);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	if (!(f = fopen(tmp, "wb")) || fwrite(&h, sizeof(h), 1, f) != 1 ||
	    fwrite(state, sizeof(float), (size_t)h.state_floats, f) != (size_t)h.state_floats ||
	    fwrite(text, 1, (size_t)h.curve_bytes, f) != (size_t)h.curve_bytes || fflush(f) || fsync(fileno(f))) {
		rc = pc_error_set(err, PC_ERR_IO, "checkpoint", "cannot write: %s", strerror(errno));
		goto out;
	}
	fclose(f);
	f = NULL;
	if (rename(tmp, path))
		rc = pc_error_set(err, PC_ERR_IO, "checkpoint", "cannot rename into place: %s", strerror(errno));
out:
	if (f)
		fclose(f);
	free(state);
	free(text);
	return rc;
}

int pcd_ckpt_read(const char *path, int64_t state_floats, float **state_out, int64_t *steps, json_t **curve)
{
	struct ckpt_header h;
	FILE *f = fopen(path, "rb");
	float *state = NULL;
	char *text = NULL;
	json_t *c = NULL;
	int done = 0;

	*state_out = NULL;
	*steps = 0;
	*curve = NULL;
	if (!f)
		return 0;
	/* every field is checked before it sizes anything: the file is
	 * ours, but a crash or a full disk can leave anything in it */
	if (fread(&h, sizeof(h), 1, f) != 1 || memcmp(h.magic, CKPT_MAGIC, 8) || h.epochs_done < 1 ||
	    state_floats < 0 || h.state_floats != state_floats || h.steps < 0 || h.curve_bytes < 0 ||
	    h.curve_bytes > (1 << 24))
		goto out;
	state = malloc((size_t)h.state_floats * sizeof(float) + 1);
	text = calloc(1, (size_t)h.curve_bytes + 1);
	if (!state || !text || fread(state, sizeof(float), (size_t)h.state_floats, f) != (size_t)h.state_floats ||
	    fread(text, 1, (size_t)h.curve_bytes, f) != (size_t)h.curve_bytes)
		goto out;
	c = json_loads(text, 0, NULL);
	if (!json_is_array(c) || json_array_size(c) != (size_t)h.epochs_done)
		goto out;
	*state_out = state;
	*steps = h.steps;
	*curve = c;
	state = NULL;
	c = NULL;
	done = h.epochs_done;
out:
	fclose(f);
	json_decref(c);
	free(state);
	free(text);
	return done;
}

/* Loads a checkpoint when there is one that fits this trainer; 0 epochs
 * done otherwise. A file that does not fit is ignored, not trusted. */
static int ckpt_load(const char *path, struct pc_trainer *t, json_t **curve)
{
	float *state;
	int64_t steps;
	json_t *c;
	int done = pcd_ckpt_read(path, pc_trainer_state_size(t), &state, &steps, &c);

	if (!done)
		return 0;
	json_decref(*curve);
	*curve = c;
	pc_trainer_state_load(t, state, steps);
	free(state);
	return done;
}

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

struct harden_progress {
	const struct pcd_job_opts *o;
	int epoch, epochs;
	double t0;
};

static void train_progress(const struct pc_progress *pr, void *arg)
{
	struct harden_progress *hp = arg;
	char phase[64];
	struct pc_progress p = *pr;

	snprintf(phase, sizeof(phase), "training epoch %d of %d", hp->epoch + 1, hp->epochs);
	p.phase = phase;
	hp->o->progress(&p, hp->o->progress_arg);
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
	float *w0 = NULL;
	double change = 0, t0 = pc_sys_seconds();
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
	{
		struct pc_work_model m;
		pc_work_model_of(g, &m);
		if ((rc = pc_spec_check_work(spec, &m, d->n, dt->n, o->max_work, err)))
			goto out;
	}
	if (dt->classes > pc_graph_classes(g)) {
		rc = pc_error_set(err, PC_ERR_INVALID, "training.dataset", "labels span %lld classes; the model has %lld",
				  (long long)dt->classes, (long long)pc_graph_classes(g));
		goto out;
	}
	study_opts(o, &so);
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
	if (!(w0 = malloc((size_t)(n ? n : 1) * sizeof(float)))) {
		rc = pc_error_set(err, PC_ERR_NOMEM, "training", "out of memory");
		goto out;
	}
	memcpy(w0, pc_graph_params(g), (size_t)n * sizeof(float));
	if ((rc = pc_trainer_new(g, &to, o->threads, &t, err)))
		goto out;
	/* a restart goes on from the last completed epoch */
	start = o->checkpoint ? ckpt_load(o->checkpoint, t, &curve) : 0;
	for (int e = start; e < tr->epochs; e++) {
		struct harden_progress hp = {o, e, tr->epochs, pc_sys_seconds()};
		struct pc_train_stats st;

		if ((rc = pc_trainer_epoch(t, dt, e, o->progress ? train_progress : NULL, &hp, o->cancel, o->cancel_arg,
					   &st, err)))
			goto out;
		json_array_append_new(curve, epoch_json(e, &st, tr->act_epsilon > 0, o->timing_seconds ? pc_sys_seconds() - hp.t0 : 0.0));
		if (o->checkpoint && (rc = ckpt_save(o->checkpoint, t, e + 1, curve, err)))
			goto out;
	}
	pc_graph_set_params(g, pc_trainer_weights(t));
	for (int64_t i = 0; i < n; i++)
		change += ((double)pc_graph_params(g)[i] - w0[i]) * ((double)pc_graph_params(g)[i] - w0[i]);
	if ((rc = pc_onnx_save_weights(files->model, g, pc_graph_params(g), o->model_out, err)) ||
	    (rc = pc_study_run(g, d, spec, &so, &after, err)))
		goto out;
	report = json_pack("{s:i, s:s, s:o, s:O, s:O, s:{s:I, s:I, s:o}, s:O, s:O, s:{s:I, s:f}}", "version", 1, "kind",
			   "harden", "spec", pc_spec_to_json(spec), "model", json_object_get(before, "model"), "dataset",
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
	free(w0);
	return rc;
}

int pcd_job_run_spec(const struct pc_spec *spec, const struct pcd_job_files *files, const struct pcd_job_opts *o,
		     char **report_text, json_t **report_out, struct pc_error *err)
{
	struct pc_graph *g = NULL;
	struct pc_dataset *d = NULL;
	struct pc_study_opts so;
	struct pc_preprocess pp = spec->pp;
	json_t *report = NULL;
	int rc;

	*report_text = NULL;
	if (report_out)
		*report_out = NULL;
	/* the model says whether inputs are token ids and labels per token */
	if ((rc = pc_onnx_load_file(files->model, &g, err)) || (rc = pc_eval_data_for(g, &pp, err)) ||
	    (rc = pc_dataset_load(files->inputs, files->labels, &pp, spec->limit, &d, err)) ||
	    (rc = check_sample(g, d, err)))
		goto out;
	if (spec->has_training) {
		if ((rc = run_harden(spec, &pp, g, d, files, o, &report, err)))
			goto out;
	} else {
		struct pc_work_model m;
		pc_work_model_of(g, &m);
		if ((rc = pc_spec_check_work(spec, &m, d->n, 0, o->max_work, err)))
			goto out;
		study_opts(o, &so);
		if ((rc = pc_study_run(g, d, spec, &so, &report, err)))
			goto out;
	}
	*report_text = json_dumps(report, JSON_INDENT(2) | JSON_REAL_PRECISION(17));
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

/* Replaces every occurrence of needle in buf by repl, in place. */
static void replace_all(char *buf, size_t size, const char *needle, const char *repl)
{
	size_t nl = strlen(needle), rl = strlen(repl);
	char *p = buf, tmp[1024];

	if (!nl)
		return;
	while ((p = strstr(p, needle))) {
		snprintf(tmp, sizeof(tmp), "%s", p + nl);
		snprintf(p, size - (size_t)(p - buf), "%s%s", repl, tmp);
		if ((size_t)(p - buf) + rl >= size)
			break;
		p += rl;
	}
}

void pcd_error_hide_path(struct pc_error *err, const char *path, const char *name)
{
	if (!err || !path)
		return;
	replace_all(err->where, sizeof(err->where), path, name);
	replace_all(err->text, sizeof(err->text), path, name);
}

int pcd_job_run(const char *spec_text, const struct pcd_blobs *blobs, const struct pcd_job_opts *o,
		char **report_text, struct pc_error *err)
{
	char model[4096], inputs[4096], labels[4096], tinputs[4096] = "", tlabels[4096] = "";
	struct pcd_job_files files = {0};
	int has_tlabels = 0;
	struct pc_spec spec;
	json_error_t jerr;
	json_t *root;
	struct stat st;
	int rc, has_labels = 0, spec_ok = 0;

	*report_text = NULL;
	root = json_loads(spec_text, 0, &jerr);
	if (!root)
		return pc_error_set(err, PC_ERR_INVALID, "spec", "not JSON: line %d column %d: %s", jerr.line,
				    jerr.column, jerr.text);
	if ((rc = pc_spec_parse(root, &spec, err)))
		goto out;
	spec_ok = 1;
	if (spec.labels) {
		rc = pc_error_set(err, PC_ERR_INVALID, "dataset", "must be a dataset id; file paths are for the CLI");
		goto out;
	}
	if ((rc = pcd_blobs_model_path(blobs, spec.model, model, sizeof(model), err)) ||
	    (rc = pcd_blobs_dataset_paths(blobs, spec.inputs, inputs, labels, sizeof(inputs), &has_labels, err)))
		goto out;
	if (stat(model, &st) != 0) {
		rc = pc_error_set(err, PC_ERR_NOT_FOUND, "model", "no model with id %s", spec.model);
		goto out;
	}
	if (stat(inputs, &st) != 0) {
		rc = pc_error_set(err, PC_ERR_NOT_FOUND, "dataset", "no dataset with id %s", spec.inputs);
		goto out;
	}
	files.model = model;
	files.inputs = inputs;
	files.labels = has_labels ? labels : NULL;
	if (spec.has_training) {
		if (spec.training.labels) {
			rc = pc_error_set(err, PC_ERR_INVALID, "training.dataset", "must be a dataset id; file paths are for the CLI");
			goto out;
		}
		if ((rc = pcd_blobs_dataset_paths(blobs, spec.training.inputs, tinputs, tlabels, sizeof(tinputs),
						  &has_tlabels, err)))
			goto out;
		if (stat(tinputs, &st) != 0) {
			rc = pc_error_set(err, PC_ERR_NOT_FOUND, "training.dataset", "no dataset with id %s",
					  spec.training.inputs);
			goto out;
		}
		files.train_inputs = tinputs;
		files.train_labels = has_tlabels ? tlabels : NULL;
	}
	rc = pcd_job_run_spec(&spec, &files, o, report_text, NULL, err);
	if (rc) {
		pcd_error_hide_path(err, model, "model");
		pcd_error_hide_path(err, inputs, "inputs");
		pcd_error_hide_path(err, labels, "labels");
		pcd_error_hide_path(err, tinputs, "training inputs");
		pcd_error_hide_path(err, tlabels, "training labels");
		if (o->model_out)
			pcd_error_hide_path(err, o->model_out, "hardened model");
	}
out:
	if (spec_ok)
		pc_spec_free(&spec);
	json_decref(root);
	return rc;
}

int pcd_json_pointer_from_path(const char *path, char *out, size_t size)
{
	size_t n = 0;
	const char *p;

#define PUT(c)                                                                                                    \
	do {                                                                                                      \
		if (n + 1 >= size)                                                                                \
			return -1;                                                                                \
		out[n++] = (c);                                                                                   \
	} while (0)

	if (!size)
		return -1;
	if (*path)
		PUT('/');
	for (p = path; *p; p++) {
		switch (*p) {
		case '.':
			PUT('/');
			break;
		case '[':
			/* "a[2]" is member a, element 2 */
			if (p != path)
				PUT('/');
			break;
		case ']':
			break;
		case '~':
			PUT('~');
			PUT('0');
			break;
		case '/':
			PUT('~');
			PUT('1');
			break;
		default:
			PUT(*p);
		}
	}
#undef PUT
	out[n] = '\0';
	return 0;
}

/* A field path as spec.c writes them: letters, digits, '_', '.', '[', ']'. */
static int is_field_path(const char *s)
{
	if (!*s)
		return 0;
	for (; *s; s++)
		if (!(strchr("._[]-", *s) || (*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		      (*s >= '0' && *s <= '9')))
			return 0;
	return 1;
}

json_t *pcd_job_problem(const struct pc_error *err)
{
	char type[64], detail[700], pointer[256];
	enum pc_status code = err->code == PC_OK ? PC_ERR_INTERNAL : err->code;
	json_t *p;

	snprintf(type, sizeof(type), "/problems/%s", pc_status_name(code));
	pc_error_format(err, detail, sizeof(detail));
	p = json_pack("{s:s, s:s, s:i, s:s}", "type", type, "title", pc_status_message(code), "status",
		      pc_status_http(code), "detail", detail);
	if (!p)
		return NULL;
	if ((code == PC_ERR_INVALID || code == PC_ERR_NOT_FOUND) && is_field_path(err->where) &&
	    pcd_json_pointer_from_path(err->where, pointer, sizeof(pointer)) == 0) {
		json_t *e = json_pack("[{s:s, s:s}]", "pointer", pointer, "detail", err->text);
		if (!e || json_object_set_new(p, "errors", e) != 0) {
			json_decref(p);
			return NULL;
		}
	}
	return p;
}

/* --- the work budget at submission ------------------------------------- */

static json_int_t info_get_int(const json_t *info, const char *key)
{
	json_t *v = json_object_get(info, key);

	return json_is_integer(v) && json_integer_value(v) > 0 ? json_integer_value(v) : 0;
}

/* Parameters, tensors and layers from a model's stored description: the
 * estimate needs no load of the model. */
static void work_model_of_info(const json_t *info, struct pc_work_model *m)
{
	json_t *tensors = json_object_get(info, "tensors"), *t, *nodes = json_object();
	size_t i;

	m->parameters = info_get_int(info, "parameters");
	m->tensors = (int64_t)json_array_size(tensors);
	/* a layer is a distinct node reading parameters; a set of their names */
	json_array_foreach(tensors, i, t)
	{
		const char *node = json_string_value(json_object_get(t, "node"));
		if (nodes && node)
			json_object_set_new(nodes, node, json_true());
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

	if (max_work <= 0)
		return PC_OK;
	if (pcd_store_model_get(store, tenant, spec->model, &rec, err))
		return err ? err->code : PC_ERR_NOT_FOUND;
	info = json_loads(rec.info ? rec.info : "{}", 0, NULL);
	pcd_blob_rec_free(&rec);
	if (!info)
		return pc_error_set(err, PC_ERR_INTERNAL, "model", "the stored description is not JSON");
	work_model_of_info(info, &m);
	json_decref(info);
	return pc_spec_check_work(spec, &m, dataset_samples(store, tenant, spec->inputs),
				  spec->has_training ? dataset_samples(store, tenant, spec->training.inputs) : 0, max_work,
				  err);
}
