/* job: the one code path from a job spec to report text, used by the CLI
 * (`paracorr run`) and by the daemon's workers, so that the service's
 * report is byte for byte the CLI's for the same spec (with the timing
 * left aside, which measures the run). */
#include "job.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "blobs.h"
#include "paracorr/data.h"
#include "paracorr/graph.h"
#include "paracorr/onnx.h"

void pcd_job_opts_default(struct pcd_job_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->threads = 1;
	o->cache_bytes = PC_STUDY_DEFAULT_CACHE;
	o->timing_seconds = 1;
}

int pcd_job_run_spec(const struct pc_spec *spec, const char *model_path, const char *inputs_path,
		     const char *labels_path, const struct pcd_job_opts *o, char **report_text, json_t **report_out,
		     struct pc_error *err)
{
	struct pc_graph *g = NULL;
	struct pc_dataset *d = NULL;
	struct pc_study_opts so;
	struct pc_shape sample;
	json_t *report = NULL;
	int rc;

	*report_text = NULL;
	if (report_out)
		*report_out = NULL;
	if ((rc = pc_onnx_load_file(model_path, &g, err)) ||
	    (rc = pc_dataset_load(inputs_path, labels_path, &spec->pp, spec->limit, &d, err)))
		goto out;
	/* the model's input without its batch axis is one sample */
	sample = *pc_graph_input_shape(g);
	sample.ndim--;
	memmove(sample.dim, sample.dim + 1, sizeof(sample.dim[0]) * (size_t)sample.ndim);
	if ((rc = pc_dataset_check_input(d, &sample, err)))
		goto out;
	pc_study_opts_default(&so);
	so.threads = o->threads > 0 ? o->threads : 1;
	so.cache_bytes = o->cache_bytes;
	so.timing_seconds = o->timing_seconds;
	so.progress = o->progress;
	so.progress_arg = o->progress_arg;
	so.cancel = o->cancel;
	so.cancel_arg = o->cancel_arg;
	if ((rc = pc_study_run(g, d, spec, &so, &report, err)))
		goto out;
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

/* The data directory is the operator's business: errors name the parts. */
static void hide_path(struct pc_error *err, const char *path, const char *name)
{
	if (!err || !path)
		return;
	replace_all(err->where, sizeof(err->where), path, name);
	replace_all(err->text, sizeof(err->text), path, name);
}

int pcd_job_run(const char *spec_text, const struct pcd_blobs *blobs, const struct pcd_job_opts *o,
		char **report_text, struct pc_error *err)
{
	char model[4096], inputs[4096], labels[4096];
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
	rc = pcd_job_run_spec(&spec, model, inputs, has_labels ? labels : NULL, o, report_text, NULL, err);
	if (rc) {
		hide_path(err, model, "model");
		hide_path(err, inputs, "inputs");
		hide_path(err, labels, "labels");
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
