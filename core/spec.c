/* spec: parse and check a job spec. Each field is read by one small
 * function that knows its path, its default and its allowed values, so an
 * error can always say which field is wrong and what it may be. */
#include "paracorr/spec.h"

#include "paracorr/bitsearch.h"
#include "paracorr/critical.h"
#include "paracorr/curvature.h"
#include "paracorr/report.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_BATCH 256

static char *dup_str(const char *s)
{
	size_t n = strlen(s) + 1;
	char *d = malloc(n);

	if (d)
		memcpy(d, s, n);
	return d;
}

static int bad(struct pc_error *err, const char *path, const char *fmt, const char *detail)
{
	return pc_error_set(err, PC_ERR_INVALID, path, fmt, detail);
}

/* Every key of obj must be in the comma-separated list. */
static int only_keys(const json_t *obj, const char *path, const char *allowed, struct pc_error *err)
{
	const char *key;
	json_t *val;

	json_object_foreach((json_t *)obj, key, val)
	{
		size_t len = strlen(key);
		const char *a = allowed;
		int found = 0;
		while (*a) {
			const char *end = strchr(a, ',');
			size_t l = end ? (size_t)(end - a) : strlen(a);
			if (l == len && strncmp(a, key, len) == 0)
				found = 1;
			a = end ? end + 1 : a + l;
		}
		if (!found) {
			char where[160];
			snprintf(where, sizeof(where), "%s%s%s", path, path[0] ? "." : "", key);
			return pc_error_set(err, PC_ERR_INVALID, where, "unknown field (allowed: %s)", allowed);
		}
	}
	return PC_OK;
}

static int get_int(const json_t *obj, const char *key, const char *path, long long lo, long long hi,
		   long long def, long long *out, struct pc_error *err)
{
	json_t *v = json_object_get(obj, key);

	*out = def;
	if (!v || json_is_null(v))
		return PC_OK;
	if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi)
		return pc_error_set(err, PC_ERR_INVALID, path, "must be an integer from %lld to %lld", lo, hi);
	*out = json_integer_value(v);
	return PC_OK;
}

static int get_string(const json_t *obj, const char *key, const char *path, char **out, struct pc_error *err)
{
	json_t *v = json_object_get(obj, key);

	if (!v || !json_is_string(v) || !json_string_length(v))
		return bad(err, path, "%s", "must be a non-empty string");
	*out = dup_str(json_string_value(v));
	return *out ? PC_OK : pc_error_set(err, PC_ERR_NOMEM, path, "out of memory");
}

static int parse_dataset(const json_t *v, struct pc_spec *s, struct pc_error *err)
{
	if (json_is_string(v) && json_string_length(v)) {
		s->inputs = dup_str(json_string_value(v));
		return s->inputs ? PC_OK : pc_error_set(err, PC_ERR_NOMEM, "dataset", "out of memory");
	}
	if (!json_is_object(v))
		return bad(err, "dataset", "%s", "must be a dataset id or {\"inputs\": path, \"labels\": path}");
	if (only_keys(v, "dataset", "inputs,labels", err) || get_string(v, "inputs", "dataset.inputs", &s->inputs, err) ||
	    get_string(v, "labels", "dataset.labels", &s->labels, err))
		return err ? err->code : PC_ERR_INVALID;
	return PC_OK;
}

static int parse_numbers(const json_t *arr, const char *path, int max, double lo_exclusive, double *out, int *n,
			 struct pc_error *err)
{
	char where[96];
	size_t i;
	json_t *v;

	if (!json_is_array(arr) || json_array_size(arr) < 1 || json_array_size(arr) > (size_t)max)
		return pc_error_set(err, PC_ERR_INVALID, path, "must be an array of 1 to %d numbers", max);
	json_array_foreach(arr, i, v)
	{
		snprintf(where, sizeof(where), "%s[%zu]", path, i);
		if (!json_is_number(v) || !isfinite(json_number_value(v)))
			return bad(err, where, "%s", "must be a finite number");
		if (!(json_number_value(v) > lo_exclusive))
			return pc_error_set(err, PC_ERR_INVALID, where, "must be > %g", lo_exclusive);
		out[i] = json_number_value(v);
	}
	*n = (int)json_array_size(arr);
	return PC_OK;
}

static int parse_preprocess(const json_t *v, struct pc_spec *s, struct pc_error *err)
{
	json_t *x;

	if (!json_is_object(v))
		return bad(err, "preprocess", "%s", "must be an object {scale, mean, std}");
	if (only_keys(v, "preprocess", "scale,mean,std", err))
		return PC_ERR_INVALID;
	if ((x = json_object_get(v, "scale")) && !json_is_null(x)) {
		if (!json_is_number(x) || !(json_number_value(x) > 0) || !isfinite(json_number_value(x)))
			return bad(err, "preprocess.scale", "%s", "must be a finite number > 0");
		s->pp.scale = json_number_value(x);
		s->pp.scale_set = 1;
		s->pp_scale_given = 1;
	}
	if ((x = json_object_get(v, "mean"))) {
		char where[] = "preprocess.mean";
		if (!json_is_array(x) || json_array_size(x) < 1 || json_array_size(x) > PC_DATA_MAX_CHANNELS)
			return pc_error_set(err, PC_ERR_INVALID, where, "must be an array of 1 to %d numbers",
					    PC_DATA_MAX_CHANNELS);
		for (size_t i = 0; i < json_array_size(x); i++) {
			json_t *e = json_array_get(x, i);
			if (!json_is_number(e) || !isfinite(json_number_value(e)))
				return pc_error_set(err, PC_ERR_INVALID, where, "[%zu] must be a finite number", i);
			s->pp.mean[i] = json_number_value(e);
		}
		s->pp.n_mean = (int)json_array_size(x);
	}
	if ((x = json_object_get(v, "std")) &&
	    parse_numbers(x, "preprocess.std", PC_DATA_MAX_CHANNELS, 0.0, s->pp.std, &s->pp.n_std, err))
		return PC_ERR_INVALID;
	return PC_OK;
}

static int parse_norm(const json_t *v, const char *where, double *p, struct pc_error *err)
{
	if (json_is_string(v)) {
		const char *name = json_string_value(v);
		if (strcmp(name, "l1") == 0)
			*p = 1.0;
		else if (strcmp(name, "l2") == 0)
			*p = 2.0;
		else if (strcmp(name, "linf") == 0)
			*p = INFINITY;
		else
			return bad(err, where, "%s", "must be \"l1\", \"l2\", \"linf\" or a number p > 1");
		return PC_OK;
	}
	if (json_is_number(v) && isfinite(json_number_value(v)) && json_number_value(v) > 1.0 &&
	    json_number_value(v) <= 1e6) {
		*p = json_number_value(v);
		return PC_OK;
	}
	return bad(err, where, "%s", "must be \"l1\", \"l2\", \"linf\" or a number p with 1 < p <= 1e6");
}

/* A "groups" array at path: the kinds as bits and in the spec's order. */
static int parse_groups(const json_t *x, const char *path, unsigned *groups, enum pc_group_kind order[3], int *n,
			struct pc_error *err)
{
	char where[96];
	json_t *e;
	size_t i;

	if (!json_is_array(x) || json_array_size(x) < 1 || json_array_size(x) > 3)
		return bad(err, path, "%s", "must be an array of 1 to 3 of \"model\", \"tensor\", \"layer\"");
	*groups = 0;
	*n = 0;
	json_array_foreach(x, i, e)
	{
		const char *name = json_is_string(e) ? json_string_value(e) : "";
		enum pc_group_kind k;
		snprintf(where, sizeof(where), "%s[%zu]", path, i);
		if (strcmp(name, "model") == 0)
			k = PC_GROUP_MODEL;
		else if (strcmp(name, "tensor") == 0)
			k = PC_GROUP_TENSOR;
		else if (strcmp(name, "layer") == 0)
			k = PC_GROUP_LAYER;
		else
			return bad(err, where, "%s", "must be \"model\", \"tensor\" or \"layer\"");
		if (*groups & k)
			return bad(err, where, "%s", "repeats an earlier group");
		*groups |= k;
		order[(*n)++] = k;
	}
	return PC_OK;
}

static int parse_trials(const json_t *c, const char *path, struct pc_corruption *s, struct pc_error *err);
/* "critical": {"accuracy_drop", "tolerance"} (critical.h) */
static int parse_critical(const json_t *c, const char *path, struct pc_corruption *s, struct pc_error *err)
{
	static const struct {
		const char *key;
		double hi, def; /* in (0, hi] */
	} fields[] = {{"accuracy_drop", 1.0, 0.05}, {"tolerance", 0.5, PC_CRITICAL_DEFAULT_TOLERANCE}};
	double val[2];
	char where[96];

	if (!json_is_object(c))
		return bad(err, path, "%s", "must be an object {accuracy_drop, tolerance}");
	if (only_keys(c, path, "accuracy_drop,tolerance", err))
		return PC_ERR_INVALID;
	for (int i = 0; i < 2; i++) {
		const json_t *v = json_object_get(c, fields[i].key);
		snprintf(where, sizeof(where), "%s.%s", path, fields[i].key);
		val[i] = v ? json_number_value(v) : fields[i].def;
		if ((v && !json_is_number(v)) || !(val[i] > 0 && val[i] <= fields[i].hi))
			return pc_error_set(err, PC_ERR_INVALID, where, "must be a number in (0, %g]", fields[i].hi);
	}
	s->has_critical = 1;
	s->critical_drop = val[0];
	s->critical_tolerance = val[1];
	return PC_OK;
}

static int parse_corruption(const json_t *c, const char *path, struct pc_corruption *s, struct pc_error *err)
{
	char where[96];
	long long v;
	json_t *x, *e;
	size_t i;

	char field[64];

	if (!json_is_object(c))
		return bad(err, path, "%s", "must be an object (or an array of objects)");
	if (only_keys(c, path, "norms,epsilons,sparsity,epsilon_scale,random_trials,steps,groups,critical", err))
		return PC_ERR_INVALID;
#define FIELD(name) (snprintf(field, sizeof(field), "%s.%s", path, name), field)
	if ((x = json_object_get(c, "norms"))) {
		if (!json_is_array(x) || json_array_size(x) < 1 || json_array_size(x) > PC_SPEC_MAX_NORMS)
			return pc_error_set(err, PC_ERR_INVALID, FIELD("norms"),
					    "must be an array of 1 to %d norms (\"l1\", \"l2\", \"linf\", p > 1)",
					    PC_SPEC_MAX_NORMS);
		json_array_foreach(x, i, e)
		{
			snprintf(where, sizeof(where), "%s.norms[%zu]", path, i);
			if (parse_norm(e, where, &s->norms[i], err))
				return PC_ERR_INVALID;
			for (size_t j = 0; j < i; j++)
				if (s->norms[j] == s->norms[i])
					return bad(err, where, "%s", "repeats an earlier norm");
		}
		s->n_norms = (int)json_array_size(x);
	}
	if ((x = json_object_get(c, "epsilons")) &&
	    parse_numbers(x, FIELD("epsilons"), PC_SPEC_MAX_EPSILONS, 0.0, s->epsilons, &s->n_epsilons, err))
		return PC_ERR_INVALID;
	if ((x = json_object_get(c, "sparsity"))) {
		if (!json_is_array(x) || json_array_size(x) < 1 || json_array_size(x) > PC_SPEC_MAX_SPARSITY)
			return pc_error_set(err, PC_ERR_INVALID, FIELD("sparsity"),
					    "must be an array of 1 to %d integers >= 0 (0 = dense)",
					    PC_SPEC_MAX_SPARSITY);
		json_array_foreach(x, i, e)
		{
			snprintf(where, sizeof(where), "%s.sparsity[%zu]", path, i);
			if (!json_is_integer(e) || json_integer_value(e) < 0)
				return bad(err, where, "%s", "must be an integer >= 0 (0 = dense)");
			s->sparsity[i] = json_integer_value(e);
		}
		s->n_sparsity = (int)json_array_size(x);
	}
	if ((x = json_object_get(c, "epsilon_scale"))) {
		const char *name = json_is_string(x) ? json_string_value(x) : "";
		if (strcmp(name, "absolute") == 0)
			s->epsilon_scale = PC_EPS_ABSOLUTE;
		else if (strcmp(name, "rms") == 0)
			s->epsilon_scale = PC_EPS_RMS;
		else if (strcmp(name, "relative") == 0)
			s->epsilon_scale = PC_EPS_RELATIVE;
		else
			return bad(err, FIELD("epsilon_scale"), "%s",
				   "must be \"absolute\", \"rms\" or \"relative\"");
	}
	if (json_is_object(json_object_get(c, "random_trials"))) {
		if (parse_trials(json_object_get(c, "random_trials"), FIELD("random_trials"), s, err))
			return PC_ERR_INVALID;
	} else {
		x = json_object_get(c, "random_trials");
		if (x && !json_is_integer(x) && !json_is_null(x))
			return pc_error_set(err, PC_ERR_INVALID, FIELD("random_trials"),
					    "must be an integer from 0 to %d, or {\"min\", \"max\", \"ci_halfwidth\"}",
					    PC_SPEC_MAX_TRIALS);
		if (get_int(c, "random_trials", FIELD("random_trials"), 0, PC_SPEC_MAX_TRIALS, 5, &v, err))
			return PC_ERR_INVALID;
		s->random_trials = (int)v;
	}
	if (get_int(c, "steps", FIELD("steps"), 1, PC_SPEC_MAX_STEPS, 1, &v, err))
		return PC_ERR_INVALID;
	s->steps = (int)v;
	if ((x = json_object_get(c, "groups")) &&
	    parse_groups(x, FIELD("groups"), &s->groups, s->group_order, &s->n_group_order, err))
		return PC_ERR_INVALID;
	if ((x = json_object_get(c, "critical")) && parse_critical(x, FIELD("critical"), s, err))
		return PC_ERR_INVALID;
#undef FIELD
	return PC_OK;
}

static void block_defaults(struct pc_corruption *c)
{
	memset(c, 0, sizeof(*c));
	c->n_norms = 2;
	c->norms[0] = 2.0;
	c->norms[1] = INFINITY;
	c->n_epsilons = 3;
	c->epsilons[0] = 0.01;
	c->epsilons[1] = 0.1;
	c->epsilons[2] = 1.0;
	c->n_sparsity = 1;
	c->sparsity[0] = 0;
	c->epsilon_scale = PC_EPS_ABSOLUTE;
	c->random_trials = 5;
	c->steps = 1;
	c->groups = PC_GROUP_MODEL | PC_GROUP_TENSOR;
	c->n_group_order = 2;
	c->group_order[0] = PC_GROUP_MODEL;
	c->group_order[1] = PC_GROUP_TENSOR;
}

static void set_defaults(struct pc_spec *s)
{
	memset(s, 0, sizeof(*s));
	snprintf(s->kind, sizeof(s->kind), "analyze");
	s->batch_size = DEFAULT_BATCH;
	s->seed = 1;
	pc_preprocess_default(&s->pp);
	s->n_blocks = 1;
	block_defaults(&s->blocks[0]);
}

static int get_number(const json_t *obj, const char *key, const char *path, double lo, double hi, double def,
		      double *out, struct pc_error *err)
{
	json_t *v = json_object_get(obj, key);

	*out = def;
	if (!v || json_is_null(v))
		return PC_OK;
	if (!json_is_number(v) || !isfinite(json_number_value(v)) || json_number_value(v) < lo ||
	    json_number_value(v) > hi)
		return pc_error_set(err, PC_ERR_INVALID, path, "must be a number from %g to %g", lo, hi);
	*out = json_number_value(v);
	return PC_OK;
}

/* "random_trials": {"min": 5, "max": 200, "ci_halfwidth": 0.005}: at least
 * two trials, as an interval needs a spread. */
static int parse_trials(const json_t *c, const char *path, struct pc_corruption *s, struct pc_error *err)
{
	char field[96];
	long long lo, hi;

#define SUB(name) (snprintf(field, sizeof(field), "%s.%s", path, name), field)
	if (only_keys(c, path, "min,max,ci_halfwidth", err) ||
	    get_int(c, "min", SUB("min"), 2, PC_SPEC_MAX_TRIALS, 5, &lo, err) ||
	    get_int(c, "max", SUB("max"), 2, PC_SPEC_MAX_TRIALS, 200 > lo ? 200 : lo, &hi, err) ||
	    get_number(c, "ci_halfwidth", SUB("ci_halfwidth"), 1e-9, 1.0, 0.005, &s->trials_ci_halfwidth, err))
		return PC_ERR_INVALID;
	if (hi < lo)
		return pc_error_set(err, PC_ERR_INVALID, SUB("max"), "must be at least min (%lld)", lo);
#undef SUB
	s->trials_sequential = 1;
	s->trials_min = (int)lo;
	s->random_trials = (int)hi;
	return PC_OK;
}

/* One of the comma-separated names; its index into *out. */
static int get_choice(const json_t *obj, const char *key, const char *path, const char *choices, int *out,
		      struct pc_error *err)
{
	json_t *v = json_object_get(obj, key);
	const char *c = choices;
	int i = 0;

	*out = 0;
	if (!v)
		return PC_OK;
	while (json_is_string(v) && *c) {
		size_t l = strcspn(c, ",");
		if (strlen(json_string_value(v)) == l && !strncmp(c, json_string_value(v), l)) {
			*out = i;
			return PC_OK;
		}
		c += l + (c[l] == ',');
		i++;
	}
	return pc_error_set(err, PC_ERR_INVALID, path, "must be one of %s", choices);
}

static int parse_act(const json_t *a, struct pc_training *t, struct pc_error *err)
{
	json_t *x, *e;
	long long v;
	size_t i;

	if (!json_is_object(a))
		return bad(err, "training.act", "%s", "must be an object {norm, epsilon, sparsity, lambda, steps, group}");
	if (only_keys(a, "training.act", "norm,epsilon,sparsity,lambda,steps,group", err))
		return PC_ERR_INVALID;
	if ((x = json_object_get(a, "norm")) && parse_norm(x, "training.act.norm", &t->act_p, err))
		return PC_ERR_INVALID;
	if (!json_object_get(a, "epsilon"))
		return bad(err, "training.act.epsilon", "%s", "is required (0: train without corruption, the control)");
	if (get_number(a, "epsilon", "training.act.epsilon", 0, 1e6, 0, &t->act_epsilon, err) ||
	    get_number(a, "lambda", "training.act.lambda", 0, 1, 1, &t->act_lambda, err) ||
	    get_int(a, "sparsity", "training.act.sparsity", 0, (long long)1 << 40, 0, &v, err))
		return PC_ERR_INVALID;
	t->act_sparsity = v;
	if (get_int(a, "steps", "training.act.steps", 1, PC_SPEC_MAX_STEPS, 1, &v, err))
		return PC_ERR_INVALID;
	t->act_steps = (int)v;
	x = json_object_get(a, "group");
	if (!x || (json_is_string(x) && !strcmp(json_string_value(x), "model")))
		return PC_OK;
	if (!json_is_array(x) || json_array_size(x) < 1 || json_array_size(x) > PC_SPEC_MAX_ACT_GROUP)
		return pc_error_set(err, PC_ERR_INVALID, "training.act.group",
				    "must be \"model\" or an array of 1 to %d tensor or layer names", PC_SPEC_MAX_ACT_GROUP);
	json_array_foreach(x, i, e)
	{
		char where[64];

		snprintf(where, sizeof(where), "training.act.group[%zu]", i);
		if (!json_is_string(e) || !json_string_length(e))
			return bad(err, where, "%s", "must be a tensor or layer name");
		if (!(t->act_group[t->n_act_group++] = dup_str(json_string_value(e))))
			return pc_error_set(err, PC_ERR_NOMEM, where, "out of memory");
	}
	return PC_OK;
}

static int parse_training(const json_t *v, const struct pc_spec *s, struct pc_training *t, struct pc_error *err)
{
	long long n;
	json_t *x;

	t->epochs = 3;
	t->batch_size = 64;
	t->lr = 0.01;
	t->momentum = 0.9;
	t->seed = s->seed;
	t->act_p = 2;
	t->act_lambda = 1;
	t->act_steps = 1;
	if (!json_is_object(v))
		return bad(err, "training", "%s", "must be an object {dataset, epochs, optimizer, lr, batch_size, act, ...}");
	if (only_keys(v, "training",
		      "dataset,limit,epochs,batch_size,optimizer,lr,momentum,weight_decay,schedule,seed,act", err))
		return PC_ERR_INVALID;
	if (!(x = json_object_get(v, "dataset")))
		return bad(err, "training.dataset", "%s", "is required: a dataset id or {\"inputs\": path, \"labels\": path}");
	if (json_is_string(x) && json_string_length(x)) {
		if (!(t->inputs = dup_str(json_string_value(x))))
			return pc_error_set(err, PC_ERR_NOMEM, "training.dataset", "out of memory");
	} else if (!json_is_object(x) || only_keys(x, "training.dataset", "inputs,labels", err) ||
		   get_string(x, "inputs", "training.dataset.inputs", &t->inputs, err) ||
		   (json_object_get(x, "labels") && get_string(x, "labels", "training.dataset.labels", &t->labels, err))) {
		return err && err->code ? (int)err->code
					: bad(err, "training.dataset", "%s", "must be a dataset id or {\"inputs\", \"labels\"}");
	}
	if (get_int(v, "limit", "training.limit", 1, (long long)1 << 40, 0, &n, err))
		return PC_ERR_INVALID;
	t->limit = n;
	if (get_int(v, "epochs", "training.epochs", 0, PC_SPEC_MAX_EPOCHS, 3, &n, err))
		return PC_ERR_INVALID;
	t->epochs = (int)n;
	if (get_int(v, "batch_size", "training.batch_size", 1, 65536, 64, &n, err))
		return PC_ERR_INVALID;
	t->batch_size = (int)n;
	if (get_int(v, "seed", "training.seed", 0, INT64_MAX, (long long)s->seed, &n, err))
		return PC_ERR_INVALID;
	t->seed = (uint64_t)n;
	if (get_choice(v, "optimizer", "training.optimizer", "sgd,adam", &t->adam, err) ||
	    get_choice(v, "schedule", "training.schedule", "constant,cosine", &t->cosine, err))
		return PC_ERR_INVALID;
	if (get_number(v, "lr", "training.lr", 1e-12, 100, t->adam ? 1e-3 : 0.01, &t->lr, err) ||
	    get_number(v, "momentum", "training.momentum", 0, 0.999999, 0.9, &t->momentum, err) ||
	    get_number(v, "weight_decay", "training.weight_decay", 0, 10, 0, &t->weight_decay, err))
		return PC_ERR_INVALID;
	if ((x = json_object_get(v, "act")) && parse_act(x, t, err))
		return PC_ERR_INVALID;
	return PC_OK;
}

#define FORMAT_NAMES "\"float32\", \"float16\", \"bfloat16\" or \"int8\""

static int parse_format(const json_t *v, enum pc_faults_format *out)
{
	for (int f = PC_FAULTS_FLOAT32; json_is_string(v) && f <= PC_FAULTS_INT8; f++)
		if (strcmp(json_string_value(v), pc_faults_format_name((enum pc_faults_format)f)) == 0) {
			*out = (enum pc_faults_format)f;
			return PC_OK;
		}
	return PC_ERR_INVALID;
}

static int parse_formats(const json_t *x, struct pc_faults_spec *f, struct pc_error *err)
{
	char where[48];
	json_t *e;
	size_t i;

	if (!json_is_array(x) || json_array_size(x) < 1 || json_array_size(x) > PC_SPEC_MAX_FORMATS)
		return pc_error_set(err, PC_ERR_INVALID, "faults.formats", "must be an array of 1 to %d of %s",
				    PC_SPEC_MAX_FORMATS, FORMAT_NAMES);
	json_array_foreach(x, i, e)
	{
		snprintf(where, sizeof(where), "faults.formats[%zu]", i);
		if (parse_format(e, &f->formats[i]))
			return bad(err, where, "must be %s", FORMAT_NAMES);
		for (size_t j = 0; j < i; j++)
			if (f->formats[j] == f->formats[i])
				return bad(err, where, "%s", "repeats an earlier format");
	}
	f->n_formats = (int)json_array_size(x);
	return PC_OK;
}

static int parse_ber(const json_t *x, struct pc_faults_spec *f, struct pc_error *err)
{
	char where[48];
	json_t *e;
	size_t i;

	if (!json_is_array(x) || json_array_size(x) > PC_SPEC_MAX_BER)
		return pc_error_set(err, PC_ERR_INVALID, "faults.ber", "must be an array of at most %d numbers in (0, 1)",
				    PC_SPEC_MAX_BER);
	json_array_foreach(x, i, e)
	{
		snprintf(where, sizeof(where), "faults.ber[%zu]", i);
		if (!json_is_number(e))
			return bad(err, where, "%s", "must be a number in (0, 1)");
		f->ber[i] = json_number_value(e);
		if (!(f->ber[i] > 0 && f->ber[i] < 1))
			return bad(err, where, "%s", "must be in (0, 1)");
		for (size_t j = 0; j < i; j++)
			if (f->ber[j] == f->ber[i])
				return bad(err, where, "%s", "repeats an earlier rate");
	}
	f->n_ber = (int)json_array_size(x);
	return PC_OK;
}

/* false, true ({"weights": 1, "trials": faults.trials}) or the object;
 * f->trials is read already. */
static int parse_bits(const json_t *x, struct pc_faults_spec *f, struct pc_error *err)
{
	long long v;

	f->bits_weights = 1;
	f->bits_trials = f->trials;
	if (json_is_false(x))
		return PC_OK;
	f->has_bits = 1;
	if (json_is_true(x))
		return PC_OK;
	if (!json_is_object(x))
		return bad(err, "faults.bits", "%s", "must be false, true or {\"weights\": M, \"trials\": T}");
	if (only_keys(x, "faults.bits", "weights,trials", err) ||
	    get_int(x, "weights", "faults.bits.weights", 1, PC_SPEC_MAX_BIT_WEIGHTS, 1, &v, err))
		return PC_ERR_INVALID;
	f->bits_weights = (int)v;
	if (get_int(x, "trials", "faults.bits.trials", 1, PC_SPEC_MAX_TRIALS, f->trials, &v, err))
		return PC_ERR_INVALID;
	f->bits_trials = (int)v;
	return PC_OK;
}

static int parse_search(const json_t *x, struct pc_faults_spec *f, struct pc_error *err)
{
	json_t *e;
	long long v;
	int method;

	if (!json_is_object(x))
		return bad(err, "faults.search", "%s", "must be an object {target_accuracy, max_flips, method}");
	if (only_keys(x, "faults.search", "target_accuracy,max_flips,method", err))
		return PC_ERR_INVALID;
	f->has_search = 1;
	f->target_accuracy = 0.1;
	if ((e = json_object_get(x, "target_accuracy")) && !json_is_null(e)) {
		if (!json_is_number(e) || !(json_number_value(e) >= 0 && json_number_value(e) < 1))
			return bad(err, "faults.search.target_accuracy", "%s", "must be a number in [0, 1)");
		f->target_accuracy = json_number_value(e);
	}
	if (get_int(x, "max_flips", "faults.search.max_flips", 1, PC_SPEC_MAX_FLIPS, 100, &v, err) ||
	    get_choice(x, "method", "faults.search.method", "best,bfa", &method, err))
		return PC_ERR_INVALID;
	f->max_flips = (int)v;
	f->method = method ? PC_FAULTS_SEARCH_BFA : PC_FAULTS_SEARCH_BEST;
	return PC_OK;
}

static int parse_faults(const json_t *v, struct pc_faults_spec *f, struct pc_error *err)
{
	long long n;
	int per_channel;
	json_t *x;

	memset(f, 0, sizeof(*f));
	f->n_formats = 1;
	f->formats[0] = PC_FAULTS_FLOAT32;
	f->groups = PC_GROUP_MODEL;
	f->n_group_order = 1;
	f->group_order[0] = PC_GROUP_MODEL;
	if (!json_is_object(v))
		return bad(err, "faults", "%s", "must be an object {formats, quantization, ber, trials, bits, groups, search}");
	if (only_keys(v, "faults", "formats,quantization,ber,trials,bits,groups,search", err))
		return PC_ERR_INVALID;
	if ((x = json_object_get(v, "formats")) && parse_formats(x, f, err))
		return PC_ERR_INVALID;
	if (get_choice(v, "quantization", "faults.quantization", "per_tensor,per_channel", &per_channel, err))
		return PC_ERR_INVALID;
	f->quantization = per_channel ? PC_FAULTS_PER_CHANNEL : PC_FAULTS_PER_TENSOR;
	if ((x = json_object_get(v, "ber")) && parse_ber(x, f, err))
		return PC_ERR_INVALID;
	if (get_int(v, "trials", "faults.trials", 1, PC_SPEC_MAX_TRIALS, 20, &n, err))
		return PC_ERR_INVALID;
	f->trials = (int)n;
	if (parse_bits((x = json_object_get(v, "bits")) ? x : json_false(), f, err))
		return PC_ERR_INVALID;
	if ((x = json_object_get(v, "groups")) &&
	    parse_groups(x, "faults.groups", &f->groups, f->group_order, &f->n_group_order, err))
		return PC_ERR_INVALID;
	if ((x = json_object_get(v, "search")) && parse_search(x, f, err))
		return PC_ERR_INVALID;
	return PC_OK;
}

/* "curvature": {"eigenvalues", "iterations", "trace_samples", "groups",
 * "second_order"} */
static int parse_curvature(const json_t *v, struct pc_curvature_spec *c, struct pc_error *err)
{
	long long n;
	json_t *x;

	memset(c, 0, sizeof(*c));
	c->groups = PC_GROUP_MODEL;
	c->n_group_order = 1;
	c->group_order[0] = PC_GROUP_MODEL;
	if (!json_is_object(v))
		return bad(err, "curvature", "%s",
			   "must be an object {eigenvalues, iterations, trace_samples, groups, second_order}");
	if (only_keys(v, "curvature", "eigenvalues,iterations,trace_samples,groups,second_order", err))
		return PC_ERR_INVALID;
	if (get_int(v, "eigenvalues", "curvature.eigenvalues", 1, PC_SPEC_MAX_EIGENVALUES, 1, &n, err))
		return PC_ERR_INVALID;
	c->eigenvalues = (int)n;
	if (get_int(v, "iterations", "curvature.iterations", c->eigenvalues, PC_CURV_MAX_ITERATIONS,
		    100, &n, err))
		return PC_ERR_INVALID;
	c->iterations = (int)n;
	if (get_int(v, "trace_samples", "curvature.trace_samples", 0, PC_SPEC_MAX_TRIALS, 20, &n, err))
		return PC_ERR_INVALID;
	c->trace_samples = (int)n;
	if ((x = json_object_get(v, "groups")) &&
	    parse_groups(x, "curvature.groups", &c->groups, c->group_order, &c->n_group_order, err))
		return PC_ERR_INVALID;
	c->second_order = 1;
	if ((x = json_object_get(v, "second_order"))) {
		if (!json_is_boolean(x))
			return bad(err, "curvature.second_order", "%s", "must be true or false");
		c->second_order = json_is_true(x);
	}
	return PC_OK;
}

int pc_spec_parse(const json_t *root, struct pc_spec *s, struct pc_error *err)
{
	long long v;
	json_t *x;

	set_defaults(s);
	if (!json_is_object(root))
		return bad(err, "spec", "%s", "must be a JSON object");
	if (only_keys(root, "", "kind,model,dataset,limit,batch_size,seed,preprocess,corruption,training,faults,curvature,shards",
		      err))
		goto fail;
	if ((x = json_object_get(root, "kind"))) {
		if (!json_is_string(x) ||
		    (strcmp(json_string_value(x), "analyze") != 0 && strcmp(json_string_value(x), "harden") != 0)) {
			bad(err, "kind", "%s", "must be \"analyze\" or \"harden\"");
			goto fail;
		}
		snprintf(s->kind, sizeof(s->kind), "%s", json_string_value(x));
	}
	if (get_string(root, "model", "model", &s->model, err))
		goto fail;
	if (!(x = json_object_get(root, "dataset"))) {
		bad(err, "dataset", "%s", "is required: a dataset id or {\"inputs\": path, \"labels\": path}");
		goto fail;
	}
	if (parse_dataset(x, s, err))
		goto fail;
	if (get_int(root, "limit", "limit", 1, (long long)1 << 40, 0, &v, err))
		goto fail;
	s->limit = v;
	if (get_int(root, "batch_size", "batch_size", 1, 65536, DEFAULT_BATCH, &v, err))
		goto fail;
	s->batch_size = (int)v;
	if (get_int(root, "seed", "seed", 0, INT64_MAX, 1, &v, err))
		goto fail;
	s->seed = (uint64_t)v;
	s->shards = 1;
	if ((x = json_object_get(root, "shards")) && !json_is_null(x)) {
		if (json_is_string(x) && !strcmp(json_string_value(x), "auto")) {
			s->shards = PC_SPEC_SHARDS_AUTO;
		} else if (json_is_integer(x) && json_integer_value(x) >= 1 &&
			   json_integer_value(x) <= PC_SPEC_SHARDS_MAX) {
			s->shards = (int)json_integer_value(x);
		} else {
			pc_error_set(err, PC_ERR_INVALID, "shards", "must be an integer from 1 to %d or \"auto\"",
				     PC_SPEC_SHARDS_MAX);
			goto fail;
		}
		if (s->shards != 1 && strcmp(s->kind, "analyze") != 0) {
			bad(err, "shards", "%s", "is for \"kind\": \"analyze\" jobs");
			goto fail;
		}
	}
	if ((x = json_object_get(root, "preprocess")) && parse_preprocess(x, s, err))
		goto fail;
	if ((x = json_object_get(root, "corruption")) && json_is_array(x)) {
		/* [] is a faults-only or curvature-only study: without either it
		 * would study nothing */
		if (json_array_size(x) > PC_SPEC_MAX_BLOCKS ||
		    (json_array_size(x) < 1 && !json_object_get(root, "faults") &&
		     !json_object_get(root, "curvature"))) {
			pc_error_set(err, PC_ERR_INVALID, "corruption",
				     "must be an object or an array of 1 to %d objects ([] only with a faults or a "
				     "curvature block)",
				     PC_SPEC_MAX_BLOCKS);
			goto fail;
		}
		s->n_blocks = (int)json_array_size(x);
		s->blocks_as_array = 1;
		for (int b = 0; b < s->n_blocks; b++) {
			char path[32];
			snprintf(path, sizeof(path), "corruption[%d]", b);
			block_defaults(&s->blocks[b]);
			if (parse_corruption(json_array_get(x, (size_t)b), path, &s->blocks[b], err))
				goto fail;
		}
	} else if (x && parse_corruption(x, "corruption", &s->blocks[0], err)) {
		goto fail;
	}
	if ((x = json_object_get(root, "faults"))) {
		if (strcmp(s->kind, "analyze") != 0) {
			bad(err, "faults", "%s", "is for \"kind\": \"analyze\" jobs");
			goto fail;
		}
		s->has_faults = 1;
		if (parse_faults(x, &s->faults, err))
			goto fail;
	}
	if ((x = json_object_get(root, "curvature"))) {
		if (strcmp(s->kind, "analyze") != 0) {
			bad(err, "curvature", "%s", "is for \"kind\": \"analyze\" jobs");
			goto fail;
		}
		s->has_curvature = 1;
		if (parse_curvature(x, &s->curvature, err))
			goto fail;
	}
	x = json_object_get(root, "training");
	if (!strcmp(s->kind, "harden") != !!x) {
		bad(err, "training", "%s",
		    x ? "is for \"kind\": \"harden\" jobs" : "is required for a harden job: {dataset, epochs, act, ...}");
		goto fail;
	}
	if (x) {
		s->has_training = 1;
		if (parse_training(x, s, &s->training, err))
			goto fail;
	}
	return PC_OK;
fail:
	pc_spec_free(s);
	return err ? err->code : PC_ERR_INVALID;
}

int pc_spec_parse_file(const char *path, struct pc_spec *spec, struct pc_error *err)
{
	json_error_t jerr;
	unsigned long failures = pc_report_alloc_failures();
	json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
	int rc;

	if (!root) {
		set_defaults(spec);
		/* jansson's lexer reports a failed allocation as a syntax error */
		if (pc_report_alloc_failures() != failures)
			return pc_error_set(err, PC_ERR_NOMEM, path, "out of memory reading the spec");
		return pc_error_set(err, PC_ERR_INVALID, path, "not valid JSON at line %d, column %d: %s", jerr.line,
				    jerr.column, jerr.text);
	}
	/* and may give a tree with a cut string instead of failing */
	if (pc_report_alloc_failures() != failures) {
		json_decref(root);
		set_defaults(spec);
		return pc_error_set(err, PC_ERR_NOMEM, path, "out of memory reading the spec");
	}
	rc = pc_spec_parse(root, spec, err);
	json_decref(root);
	return rc;
}

void pc_spec_free(struct pc_spec *s)
{
	free(s->model);
	free(s->inputs);
	free(s->labels);
	s->model = s->inputs = s->labels = NULL;
	free(s->training.inputs);
	free(s->training.labels);
	s->training.inputs = s->training.labels = NULL;
	for (int i = 0; i < s->training.n_act_group; i++)
		free(s->training.act_group[i]);
	s->training.n_act_group = 0;
}

static json_t *training_json(const struct pc_training *t)
{
	json_t *group, *dataset;

	if (t->n_act_group) {
		group = json_array();
		for (int i = 0; i < t->n_act_group; i++)
			json_array_append_new(group, json_string(t->act_group[i]));
	} else {
		group = json_string("model");
	}
	dataset = t->labels ? json_pack("{s:s, s:s}", "inputs", t->inputs, "labels", t->labels)
		  : t->inputs ? json_string(t->inputs)
			      : json_null();
	return json_pack("{s:o, s:o, s:i, s:i, s:s, s:f, s:f, s:f, s:s, s:I, s:{s:o, s:f, s:I, s:f, s:i, s:o}}", "dataset",
			 dataset, "limit", t->limit > 0 ? json_integer(t->limit) : json_null(), "epochs", t->epochs,
			 "batch_size", t->batch_size, "optimizer", t->adam ? "adam" : "sgd", "lr", t->lr, "momentum",
			 t->momentum, "weight_decay", t->weight_decay, "schedule", t->cosine ? "cosine" : "constant",
			 "seed", (json_int_t)t->seed, "act", "norm", pc_spec_norm_json(t->act_p), "epsilon",
			 t->act_epsilon, "sparsity", (json_int_t)t->act_sparsity, "lambda", t->act_lambda, "steps",
			 t->act_steps, "group", group);
}

json_t *pc_spec_norm_json(double p)
{
	if (p == 1.0)
		return json_string("l1");
	if (p == 2.0)
		return json_string("l2");
	if (isinf(p))
		return json_string("linf");
	return json_real(p);
}

const char *pc_eps_scale_name(enum pc_eps_scale s)
{
	return s == PC_EPS_RMS ? "rms" : s == PC_EPS_RELATIVE ? "relative" : "absolute";
}

static json_t *groups_json(const enum pc_group_kind *order, int n)
{
	static const char *const group_names[] = {[PC_GROUP_MODEL] = "model",
						  [PC_GROUP_TENSOR] = "tensor",
						  [PC_GROUP_LAYER] = "layer"};
	json_t *groups = json_array();

	for (int i = 0; i < n; i++)
		json_array_append_new(groups, json_string(group_names[order[i]]));
	return groups;
}

static json_t *critical_json(const struct pc_corruption *c)
{
	return json_pack("{s:f, s:f}", "accuracy_drop", c->critical_drop, "tolerance", c->critical_tolerance);
}

static json_t *block_json(const struct pc_corruption *c)
{
	json_t *norms = json_array(), *eps = json_array(), *sp = json_array();

	for (int i = 0; i < c->n_norms; i++)
		json_array_append_new(norms, pc_spec_norm_json(c->norms[i]));
	for (int i = 0; i < c->n_epsilons; i++)
		json_array_append_new(eps, json_real(c->epsilons[i]));
	for (int i = 0; i < c->n_sparsity; i++)
		json_array_append_new(sp, json_integer(c->sparsity[i]));
	json_t *o = json_pack("{s:o, s:o, s:o, s:s, s:o, s:i, s:o}", "norms", norms, "epsilons", eps, "sparsity", sp,
			      "epsilon_scale", pc_eps_scale_name(c->epsilon_scale), "random_trials",
			      c->trials_sequential ? json_pack("{s:i, s:i, s:f}", "min", c->trials_min, "max",
							       c->random_trials, "ci_halfwidth", c->trials_ci_halfwidth)
						   : json_integer(c->random_trials),
			      "steps", c->steps, "groups", groups_json(c->group_order, c->n_group_order));
	if (o && c->has_critical)
		json_object_set_new(o, "critical", critical_json(c));
	return o;
}

/* The block with its defaults; "search" only when there is one. */
static json_t *faults_json(const struct pc_faults_spec *f)
{
	json_t *formats = json_array(), *ber = json_array(), *out;

	for (int i = 0; i < f->n_formats; i++)
		json_array_append_new(formats, json_string(pc_faults_format_name(f->formats[i])));
	for (int i = 0; i < f->n_ber; i++)
		json_array_append_new(ber, json_real(f->ber[i]));
	out = json_pack("{s:o, s:s, s:o, s:i, s:o, s:o}", "formats", formats, "quantization",
			f->quantization == PC_FAULTS_PER_CHANNEL ? "per_channel" : "per_tensor", "ber", ber, "trials",
			f->trials, "bits",
			f->has_bits ? json_pack("{s:i, s:i}", "weights", f->bits_weights, "trials", f->bits_trials)
				    : json_false(),
			"groups", groups_json(f->group_order, f->n_group_order));
	if (out && f->has_search)
		json_object_set_new(out, "search",
				    json_pack("{s:f, s:i, s:s}", "target_accuracy", f->target_accuracy, "max_flips",
					      f->max_flips, "method", f->method == PC_FAULTS_SEARCH_BFA ? "bfa" : "best"));
	return out;
}

json_t *pc_spec_to_json(const struct pc_spec *s)
{
	json_t *mean = json_array(), *std = json_array(), *dataset, *corruption;

	if (s->pp.n_mean == 0)
		json_array_append_new(mean, json_real(0.0));
	for (int i = 0; i < s->pp.n_mean; i++)
		json_array_append_new(mean, json_real(s->pp.mean[i]));
	if (s->pp.n_std == 0)
		json_array_append_new(std, json_real(1.0));
	for (int i = 0; i < s->pp.n_std; i++)
		json_array_append_new(std, json_real(s->pp.std[i]));
	if (s->labels)
		dataset = json_pack("{s:s, s:s}", "inputs", s->inputs, "labels", s->labels);
	else
		dataset = json_string(s->inputs ? s->inputs : "");
	if (s->blocks_as_array) {
		corruption = json_array();
		for (int b = 0; b < s->n_blocks; b++)
			json_array_append_new(corruption, block_json(&s->blocks[b]));
	} else {
		corruption = block_json(&s->blocks[0]);
	}
	json_t *out = json_pack("{s:s, s:s, s:o, s:o, s:i, s:I, s:{s:o, s:o, s:o}, s:o}", "kind", s->kind, "model",
				s->model ? s->model : "", "dataset", dataset, "limit",
				s->limit > 0 ? json_integer(s->limit) : json_null(), "batch_size", s->batch_size, "seed",
				(json_int_t)s->seed, "preprocess", "scale",
				s->pp.scale_set ? json_real(s->pp.scale) : json_string("auto"), "mean", mean, "std", std,
				"corruption", corruption);

	if (out && s->has_training)
		json_object_set_new(out, "training", training_json(&s->training));
	if (out && s->has_faults)
		json_object_set_new(out, "faults", faults_json(&s->faults));
	if (out && s->has_curvature)
		json_object_set_new(out, "curvature",
				    json_pack("{s:i, s:i, s:i, s:o, s:b}", "eigenvalues", s->curvature.eigenvalues,
					      "iterations", s->curvature.iterations, "trace_samples",
					      s->curvature.trace_samples, "groups",
					      groups_json(s->curvature.group_order, s->curvature.n_group_order),
					      "second_order", s->curvature.second_order));
	return out;
}

int pc_spec_check_model(const struct pc_spec *s, const struct pc_work_model *m, struct pc_error *err)
{
	char where[48];

	if (!s->has_faults || m->quantizable != 0)
		return PC_OK;
	for (int i = 0; i < s->faults.n_formats; i++)
		if (s->faults.formats[i] == PC_FAULTS_INT8) {
			snprintf(where, sizeof(where), "faults.formats[%d]", i);
			return bad(err, where, "%s",
				   "is \"int8\", but the model has no int8-quantizable weight (a parameter read only "
				   "as the weight of a Conv, Gemm or MatMul)");
		}
	return PC_OK;
}

/* --- the work budget ---------------------------------------------------- */

void pc_work_model_of(const struct pc_graph *g, struct pc_work_model *m)
{
	int nt = pc_graph_param_tensors(g), nn = pc_graph_node_count(g);

	m->parameters = pc_graph_param_count(g);
	m->tensors = nt;
	m->quantizable = 0;
	for (int p = 0, axis; p < nt; p++)
		m->quantizable += pc_faults_quantizable(g, p, &axis) != 0;
	/* a layer is the node a tensor is attributed to (its first reader),
	 * each counted once: the node k that has an input whose tensor is
	 * attributed to k; no allocation, so the estimate cannot fail */
	m->layers = 0;
	for (int k = 0; k < nn; k++)
		for (int j = 0; j < pc_graph_node_inputs(g, k); j++) {
			int p = pc_graph_node_input_param(g, k, j);

			if (p >= 0 && pc_graph_param(g, p)->node_index == k) {
				m->layers++;
				break;
			}
		}
}

/* The faults terms of spec.h's formula, summed over groups and formats. */
double pc_spec_fault_passes(const struct pc_spec *spec, const struct pc_work_model *m)
{
	const struct pc_faults_spec *f = &spec->faults;
	double groups = 0, search_tensors = 0, total = 0;
	double candidates = f->method == PC_FAULTS_SEARCH_BFA ? 1 : PC_BITSEARCH_BEST_CANDIDATES;

	if (!spec->has_faults)
		return 0;
	if (f->groups & PC_GROUP_MODEL) {
		groups += 1;
		search_tensors += (double)m->tensors;
	}
	if (f->groups & PC_GROUP_TENSOR) {
		groups += (double)m->tensors;
		search_tensors += (double)m->tensors;
	}
	if (f->groups & PC_GROUP_LAYER) {
		groups += (double)m->layers;
		search_tensors += (double)m->tensors;
	}
	for (int i = 0; i < f->n_formats; i++) {
		total += groups * (1 + (double)f->n_ber * f->trials);
		if (f->has_bits)
			total += groups * pc_faults_format_bits(f->formats[i]) * (double)f->bits_trials;
		/* each flip: a gradient, and the candidates of every tensor */
		if (f->has_search)
			total += (double)f->max_flips * (groups + candidates * search_tensors) + groups;
	}
	return total;
}

/* The critical-radius searches' bound per group (spec.h) */
static double critical_passes(const struct pc_corruption *c)
{
	if (!c->has_critical)
		return 0;
	return (double)c->n_norms * c->n_sparsity * PC_CRITICAL_MAX_EVALUATIONS *
	       ((c->steps > 1 ? c->steps + 1 : 1) + c->random_trials);
}

static double groups_of(unsigned kinds, const struct pc_work_model *m)
{
	return ((kinds & PC_GROUP_MODEL) ? 1.0 : 0.0) + ((kinds & PC_GROUP_TENSOR) ? (double)m->tensors : 0.0) +
	       ((kinds & PC_GROUP_LAYER) ? (double)m->layers : 0.0);
}

double pc_spec_curvature_passes(const struct pc_spec *spec, const struct pc_work_model *m)
{
	const struct pc_curvature_spec *c = &spec->curvature;
	double total;

	if (!spec->has_curvature)
		return 0;
	/* the model's numbers always, and the listed kinds' groups */
	total = 3.0 * (1.0 + groups_of(c->groups & ~(unsigned)PC_GROUP_MODEL, m)) *
		(double)(c->iterations + c->trace_samples);
	for (int b = 0; c->second_order && b < spec->n_blocks; b++) {
		const struct pc_corruption *k = &spec->blocks[b];
		total += 3.0 * groups_of(k->groups, m) * k->n_norms * k->n_sparsity *
			 (k->steps > 1 ? k->n_epsilons : 1);
	}
	return total;
}

double pc_spec_study_passes(const struct pc_spec *spec, const struct pc_work_model *m)
{
	double total = 1; /* the clean pass */

	for (int b = 0; b < spec->n_blocks; b++) {
		const struct pc_corruption *c = &spec->blocks[b];
		double groups = 0;
		if (c->groups & PC_GROUP_MODEL)
			groups += 1;
		if (c->groups & PC_GROUP_TENSOR)
			groups += (double)m->tensors;
		if (c->groups & PC_GROUP_LAYER)
			groups += (double)m->layers;
		total += groups * c->n_norms * c->n_sparsity * c->n_epsilons *
			 ((c->steps > 1 ? c->steps + 1 : 1) + c->random_trials);
		total += groups * critical_passes(c);
	}
	return total + pc_spec_fault_passes(spec, m) + pc_spec_curvature_passes(spec, m);
}

static double kept(int64_t samples, int64_t limit)
{
	return (double)(limit > 0 && limit < samples ? limit : samples);
}

double pc_spec_work(const struct pc_spec *spec, const struct pc_work_model *m, int64_t samples,
		    int64_t train_samples)
{
	double p = (double)m->parameters, study = pc_spec_study_passes(spec, m);
	double work = study * (kept(samples, spec->limit) * p + PC_WORK_PER_PASS);

	if (spec->has_training) {
		const struct pc_training *t = &spec->training;
		double passes = (double)t->epochs * (1 + (t->act_epsilon > 0 ? t->act_steps : 0));
		work = 2 * work + passes * (kept(train_samples, t->limit) * p + PC_WORK_PER_PASS);
	}
	return work;
}

int pc_spec_check_work(const struct pc_spec *spec, const struct pc_work_model *m, int64_t samples,
		       int64_t train_samples, double max_work, struct pc_error *err)
{
	double work = pc_spec_work(spec, m, samples, train_samples);

	if (max_work <= 0 || work <= max_work)
		return PC_OK;
	return pc_error_set(err, PC_ERR_TOO_MUCH_WORK, "max_job_work",
			    "the job's estimated work is %.3g multiply-adds (%.3g passes per study over %.0f samples "
			    "of a model with %lld parameters), over the limit of %.3g (max_job_work = %.0f x 10^9); "
			    "ask for fewer norms, epsilons, sparsities, trials, steps, groups, epochs or samples%s",
			    work, pc_spec_study_passes(spec, m), kept(samples, spec->limit), (long long)m->parameters,
			    max_work, max_work / 1e9,
			    spec->has_faults ? " (in faults: formats, ber, trials, bits, groups, search.max_flips)" : "");
}
