/* Finite-difference gradient checks (see gradcheck.h). */
#include "gradcheck.h"

#include <stdlib.h>
#include <string.h>

#include "paracorr/plan.h"

static uint64_t next_u64(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 2685821657736338717ull;
}

void gc_fill(float *x, int64_t n, uint64_t seed, float lo, float hi)
{
	uint64_t s = seed * 0x9E3779B97F4A7C15ull + 1;

	for (int64_t i = 0; i < n; i++) {
		double u = (double)(next_u64(&s) >> 11) / 9007199254740992.0;
		x[i] = (float)(lo + (hi - lo) * u);
	}
}

void gc_fill_ids(int64_t *x, int64_t n, uint64_t seed, int64_t limit)
{
	uint64_t s = seed * 0x9E3779B97F4A7C15ull + 1;

	for (int64_t i = 0; i < n; i++)
		x[i] = (int64_t)(next_u64(&s) % (uint64_t)limit);
}

/* Every output element: batch * positions * classes ([N, C] has 1 position). */
static int64_t output_numel(const struct pc_plan *p)
{
	return (int64_t)pc_plan_batch(p) * pc_plan_positions(p) * pc_plan_classes(p);
}

static double objective(struct pc_plan *p, const float *r)
{
	const float *out;
	int64_t n = output_numel(p);
	double l = 0.0;

	pc_plan_forward(p);
	out = pc_plan_output(p);
	for (int64_t i = 0; i < n; i++)
		l += (double)out[i] * r[i];
	return l;
}

/* Compare grad[] with central differences of the objective wrt x[idx]. */
static int check_elements(struct pc_test *t, struct pc_plan *p, const float *r, float *x, const float *grad,
			  int64_t count, const char *what, const struct gc_opts *o, uint64_t *rng, struct gc_stats *st)
{
	int samples = o->samples > 0 ? o->samples : 64, checked = 0, reported = 0;

	for (int s = 0; s < samples && s < count; s++) {
		int64_t i = count <= samples ? s : (int64_t)(next_u64(rng) % (uint64_t)count);
		float keep = x[i];
		double lp, lm, num;
		x[i] = keep + (float)o->eps;
		lp = objective(p, r);
		x[i] = keep - (float)o->eps;
		lm = objective(p, r);
		x[i] = keep;
		/* divide by the step actually taken in float */
		num = (lp - lm) / ((double)(keep + (float)o->eps) - (double)(keep - (float)o->eps));
		checked++;
		st->significant += fabs(num) > 10.0 * o->atol;
		st->worst = fabs(grad[i] - num) > st->worst ? fabs(grad[i] - num) : st->worst;
		if (!(fabs(grad[i] - num) <= o->atol + o->rtol * fabs(num)) && reported++ < 5)
			pc_test_fail(t, __FILE__, __LINE__, "%s[%lld]: analytic %.7g, numeric %.7g", what, (long long)i,
				     (double)grad[i], num);
	}
	return checked;
}

int gc_check(struct pc_test *t, const struct pc_graph *g, const struct gc_opts *o)
{
	return gc_check_stats(t, g, o, NULL);
}

int gc_check_stats(struct pc_test *t, const struct pc_graph *g, const struct gc_opts *o, struct gc_stats *st)
{
	struct gc_stats local;
	struct pc_error err = {0};
	struct pc_plan *p;
	float *r = NULL, *gin = NULL;
	int64_t n_in, n_out;
	uint64_t rng = o->seed + 7;
	int checked = 0;
	char buf[700];

	if (!st)
		st = &local;
	memset(st, 0, sizeof(*st));
	p = pc_plan_new(g, o->batch,
			PC_PLAN_GRAD | (o->check_input ? PC_PLAN_INPUT_GRAD : 0) | (o->training ? PC_PLAN_TRAIN : 0), &err);
	if (!p) {
		pc_test_fail(t, __FILE__, __LINE__, "plan: %s", pc_error_format(&err, buf, sizeof(buf)));
		return 0;
	}
	if (o->training) {
		pc_plan_set_training(p, 1, 0);
		pc_plan_set_dropout(p, o->seed * 31 + 3);
	}
	n_in = (int64_t)o->batch * pc_plan_sample_numel(p);
	n_out = output_numel(p);
	r = malloc((size_t)n_out * sizeof(float));
	gin = malloc((size_t)n_in * sizeof(float));
	if (!r || !gin) {
		pc_test_fail(t, __FILE__, __LINE__, "gradcheck: out of memory for %lld outputs", (long long)n_out);
		goto out;
	}
	if (pc_plan_input_int64(p)) {
		int64_t limit = o->tokens > 0 ? o->tokens : pc_plan_input_id_limit(p, NULL);
		if (o->check_input) {
			pc_test_fail(t, __FILE__, __LINE__,
				     "gradcheck: int64 token ids have no gradient: check_input must be 0");
			goto out;
		}
		if (limit <= 0) {
			pc_test_fail(t, __FILE__, __LINE__,
				     "gradcheck: no Gather reads the int64 input: set gc_opts.tokens");
			goto out;
		}
		gc_fill_ids(pc_plan_input_int64(p), n_in, o->seed, limit);
	} else if (o->input_lo == 0.0f && o->input_hi == 0.0f)
		gc_fill(pc_plan_input(p), n_in, o->seed, -1.0f, 1.0f);
	else
		gc_fill(pc_plan_input(p), n_in, o->seed, o->input_lo, o->input_hi);
	gc_fill(r, n_out, o->seed + 1, -1.0f, 1.0f);
	pc_plan_forward(p);
	memcpy(pc_plan_output_grad(p), r, (size_t)n_out * sizeof(float));
	pc_plan_zero_weight_grad(p);
	pc_plan_backward(p);
	if (o->check_input)
		memcpy(gin, pc_plan_input_grad(p), (size_t)n_in * sizeof(float));
	for (int k = 0; k < pc_graph_param_tensors(g); k++) {
		const struct pc_param *pt = pc_graph_param(g, k);
		checked += check_elements(t, p, r, pc_plan_weights(p) + pt->offset,
					  pc_plan_weight_grad(p) + pt->offset, pt->count, pt->name, o, &rng, st);
	}
	if (o->check_input)
		checked += check_elements(t, p, r, pc_plan_input(p), gin, n_in, "input", o, &rng, st);
out:
	free(r);
	free(gin);
	pc_plan_free(p);
	st->checked = checked;
	return checked;
}
