/* cstudy: a spec's curvature block on a study's runner (paracorr/cstudy.h). */
#include "paracorr/cstudy.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "paracorr/corrupt.h"
#include "paracorr/graph.h"
#include "paracorr/groups.h"
#include "paracorr/report.h"
#include "paracorr/rng.h"

/* What a product reports to: the caller's progress, copied out of its
 * const options. */
struct product_ctx {
	void (*progress)(void *arg, int64_t products, int64_t dropped);
	void *arg;
};

static void on_product(void *arg)
{
	struct product_ctx *p = arg;

	if (p->progress)
		p->progress(p->arg, 1, 0);
}

static void curv_opts(const struct pc_cstudy_opts *o, struct product_ctx *ctx, struct pc_curv_opts *co)
{
	memset(co, 0, sizeof(*co));
	ctx->progress = o ? o->progress : NULL;
	ctx->arg = o ? o->progress_arg : NULL;
	co->cancel = o ? o->cancel : NULL;
	co->cancel_arg = o ? o->cancel_arg : NULL;
	co->product = on_product;
	co->product_arg = ctx;
}

/* One group's numbers (the block's eigenvalues and trace samples). */
static int group_json(struct pc_runner *r, const struct pc_dataset *d, int64_t limit, const struct pc_spec *spec,
		      int gi, const int *params, int n, const struct pc_cstudy_opts *o, json_t **out,
		      struct pc_error *err)
{
	const struct pc_curvature_spec *cs = &spec->curvature;
	struct pc_curv_opts co;
	struct product_ctx ctx;
	struct pc_curv *c = NULL;
	struct pc_stats st;
	double eig[PC_SPEC_MAX_EIGENVALUES];
	int found = 0, steps = 0, converged = 0, rc;
	json_t *ev = NULL, *o_json = NULL;

	*out = NULL;
	curv_opts(o, &ctx, &co);
	if ((rc = pc_curv_new(r, d, limit, params, n, &co, &c, err)))
		return rc;
	rc = pc_curv_top(c, cs->eigenvalues, cs->iterations,
			 pc_rng_derive(spec->seed, PC_CSTUDY_STREAM, (uint64_t)gi, 0, 0), eig, &found, &steps,
			 &converged, err);
	if (rc)
		goto out;
	/* the products Lanczos did not need leave the plan */
	if (o && o->progress && steps < cs->iterations)
		o->progress(o->progress_arg, 0, cs->iterations - steps);
	if (cs->trace_samples > 0 &&
	    (rc = pc_curv_trace(c, cs->trace_samples, pc_rng_derive(spec->seed, PC_CSTUDY_STREAM, (uint64_t)gi, 1, 0),
				&st, err)))
		goto out;
	ev = json_array();
	for (int i = 0; i < found; i++)
		json_array_append_new(ev, pc_report_real(eig[i]));
	o_json = json_pack("{s:I, s:o, s:b, s:i, s:o, s:o, s:i, s:I}", "parameters", (json_int_t)pc_curv_size(c),
			   "eigenvalues", ev, "converged", converged, "lanczos_steps", steps, "trace",
			   cs->trace_samples > 0 ? pc_report_real(st.mean) : json_null(), "trace_ci95",
			   cs->trace_samples > 1
			       ? json_pack("[o, o]", pc_report_real(st.ci95[0]), pc_report_real(st.ci95[1]))
			       : json_null(),
			   "trace_samples", cs->trace_samples, "hvp_count", (json_int_t)pc_curv_hvp_count(c));
	ev = NULL;
	if (!o_json)
		rc = pc_error_set(err, PC_ERR_NOMEM, "curvature", "out of memory building the report");
	*out = o_json;
out:
	json_decref(ev);
	pc_curv_free(c);
	return rc;
}

int pc_cstudy_run_spec(struct pc_runner *r, const struct pc_dataset *d, int64_t limit, const struct pc_spec *spec,
		       const struct pc_cstudy_opts *o, json_t **out, struct pc_error *err)
{
	const struct pc_graph *g = pc_runner_graph(r);
	const struct pc_curvature_spec *cs = &spec->curvature;
	int np = pc_graph_param_tensors(g), gi = 0, rc;
	int *idx = malloc(((size_t)np + 1) * sizeof(int));
	struct pc_layer_groups lg = {0};
	json_t *root = NULL, *groups = json_object(), *gj = NULL;
	char name[320];

	*out = NULL;
	if (!idx || !groups) {
		rc = pc_error_set(err, PC_ERR_NOMEM, "curvature", "out of memory");
		goto out;
	}
	for (int i = 0; i < np; i++)
		idx[i] = i;
	if ((rc = group_json(r, d, limit, spec, gi++, idx, np, o, &root, err)))
		goto out;
	/* the model is the top level; the listed kinds' groups in the block's order */
	for (int k = 0; k < cs->n_group_order; k++) {
		enum pc_group_kind kind = cs->group_order[k];
		if (kind == PC_GROUP_TENSOR) {
			for (int i = 0; i < np; i++) {
				snprintf(name, sizeof(name), "tensor:%s", pc_graph_param(g, i)->name);
				if ((rc = group_json(r, d, limit, spec, gi++, &i, 1, o, &gj, err)))
					goto out;
				json_object_set_new(groups, name, gj);
				gj = NULL;
			}
		} else if (kind == PC_GROUP_LAYER) {
			if (!lg.g && (rc = pc_layer_groups_build(g, &lg, err)))
				goto out;
			for (int j = 0; j < lg.n; j++) {
				snprintf(name, sizeof(name), "layer:%s", lg.g[j].name);
				if ((rc = group_json(r, d, limit, spec, gi++, lg.g[j].params, lg.g[j].n_params, o, &gj,
						     err)))
					goto out;
				json_object_set_new(groups, name, gj);
				gj = NULL;
			}
		}
	}
	json_object_set_new(root, "tau", json_real(PC_CURV_TAU));
	json_object_set_new(root, "groups", groups);
	groups = NULL;
	*out = root;
	root = NULL;
out:
	json_decref(root);
	json_decref(groups);
	pc_layer_groups_free(&lg);
	free(idx);
	return rc;
}

int pc_cstudy_quadratic(struct pc_runner *r, const struct pc_dataset *d, int64_t limit, const int *params, int n,
			const float *u, int64_t count, const struct pc_cstudy_opts *o, double *out,
			struct pc_error *err)
{
	struct pc_curv_opts co;
	struct product_ctx ctx;
	struct pc_curv *c = NULL;
	double *v = malloc((size_t)count * sizeof(double) + 1), *hv = malloc((size_t)count * sizeof(double) + 1);
	int rc;

	*out = 0;
	if (!v || !hv) {
		rc = pc_error_set(err, PC_ERR_NOMEM, "curvature", "out of memory");
		goto out;
	}
	curv_opts(o, &ctx, &co);
	if ((rc = pc_curv_new(r, d, limit, params, n, &co, &c, err)))
		goto out;
	if (pc_curv_size(c) != count) {
		rc = pc_error_set(err, PC_ERR_INTERNAL, "curvature", "a direction of %lld elements for a group of %lld",
				  (long long)count, (long long)pc_curv_size(c));
		goto out;
	}
	for (int64_t i = 0; i < count; i++)
		v[i] = u[i];
	if ((rc = pc_curv_hvp(c, v, hv, err)))
		goto out;
	for (int64_t i = 0; i < count; i++)
		*out += v[i] * hv[i];
out:
	pc_curv_free(c);
	free(v);
	free(hv);
	return rc;
}
