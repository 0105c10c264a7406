/* Job specs: defaults, the echo, and errors that name the field. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "paracorr/spec.h"
#include "test.h"

static int parse(const char *text, struct pc_spec *s, struct pc_error *err)
{
	json_error_t jerr;
	json_t *root = json_loads(text, 0, &jerr);
	int rc;

	if (!root)
		return -1;
	rc = pc_spec_parse(root, s, err);
	json_decref(root);
	return rc;
}

#define MIN_SPEC "\"model\": \"m.onnx\", \"dataset\": {\"inputs\": \"x\", \"labels\": \"y\"}"

TEST(spec_defaults_filled_in)
{
	struct pc_spec s;
	struct pc_error err = {0};
	json_t *echo;

	REQUIRE(parse("{" MIN_SPEC "}", &s, &err) == PC_OK);
	CHECK(strcmp(s.kind, "analyze") == 0);
	CHECK_INT(s.batch_size, 256);
	CHECK_INT(s.seed, 1);
	CHECK_INT(s.limit, 0);
	CHECK_INT(s.n_blocks, 1);
	CHECK_INT(s.blocks[0].n_norms, 2);
	CHECK(s.blocks[0].norms[0] == 2.0 && isinf(s.blocks[0].norms[1]));
	CHECK_INT(s.blocks[0].n_epsilons, 3);
	CHECK_INT(s.blocks[0].random_trials, 5);
	CHECK_INT(s.blocks[0].steps, 1);
	CHECK_INT(s.blocks[0].groups, PC_GROUP_MODEL | PC_GROUP_TENSOR);
	echo = pc_spec_to_json(&s);
	REQUIRE(echo);
	CHECK(json_is_null(json_object_get(echo, "limit")));
	CHECK_INT(json_integer_value(json_object_get(echo, "batch_size")), 256);
	CHECK(strcmp(json_string_value(json_array_get(
			     json_object_get(json_object_get(echo, "corruption"), "norms"), 1)),
		     "linf") == 0);
	CHECK(strcmp(json_string_value(json_object_get(json_object_get(echo, "corruption"), "epsilon_scale")),
		     "absolute") == 0);
	json_decref(echo);
	pc_spec_free(&s);
}

TEST(spec_full_spec_round_trips)
{
	const char *text = "{\"kind\": \"analyze\", " MIN_SPEC ", \"limit\": 2000, \"batch_size\": 100, \"seed\": 7,"
			   "\"preprocess\": {\"scale\": 0.5, \"mean\": [0.1], \"std\": [2]},"
			   "\"corruption\": {\"norms\": [\"l1\", 3, \"linf\"], \"epsilons\": [0.01, 1],"
			   " \"sparsity\": [0, 100], \"epsilon_scale\": \"rms\", \"random_trials\": 3, \"steps\": 4,"
			   " \"groups\": [\"layer\", \"model\"]}}";
	struct pc_spec s, s2;
	struct pc_error err = {0};
	json_t *echo;
	char *dump;

	REQUIRE(parse(text, &s, &err) == PC_OK);
	CHECK_INT(s.limit, 2000);
	CHECK(s.blocks[0].norms[0] == 1.0 && s.blocks[0].norms[1] == 3.0 && isinf(s.blocks[0].norms[2]));
	CHECK_INT(s.blocks[0].epsilon_scale, PC_EPS_RMS);
	CHECK_INT(s.blocks[0].steps, 4);
	CHECK_INT(s.blocks[0].group_order[0], PC_GROUP_LAYER);
	CHECK(s.pp.scale_set && s.pp.scale == 0.5);
	/* the echo parses back to the same spec */
	echo = pc_spec_to_json(&s);
	dump = json_dumps(echo, 0);
	REQUIRE(dump);
	REQUIRE(parse(dump, &s2, &err) == PC_OK);
	CHECK_INT(s2.blocks[0].n_norms, 3);
	CHECK(s2.blocks[0].norms[1] == 3.0);
	CHECK_INT(s2.blocks[0].sparsity[1], 100);
	CHECK_INT(s2.seed, 7);
	free(dump);
	json_decref(echo);
	pc_spec_free(&s);
	pc_spec_free(&s2);
}

TEST(spec_blocks_array)
{
	struct pc_spec s;
	struct pc_error err = {0};

	REQUIRE(parse("{" MIN_SPEC ", \"corruption\": [{\"groups\": [\"model\"], \"epsilons\": [0.1, 1]},"
		      " {\"groups\": [\"tensor\"], \"epsilons\": [0.1], \"random_trials\": 0}]}",
		      &s, &err) == PC_OK);
	CHECK_INT(s.n_blocks, 2);
	CHECK_INT(s.blocks[0].groups, PC_GROUP_MODEL);
	CHECK_INT(s.blocks[1].random_trials, 0);
	CHECK_INT(s.blocks[1].n_epsilons, 1);
	pc_spec_free(&s);
}

/* Each bad spec fails with PC_ERR_INVALID, `where` naming the field and the
 * text saying what is allowed. */
TEST(spec_errors_name_the_field)
{
	static const struct {
		const char *body, *where, *text;
	} cases[] = {
		{", \"corruption\": {\"epsilons\": [0.1, 1, -2]}", "corruption.epsilons[2]", "must be > 0"},
		{", \"corruption\": {\"epsilons\": []}", "corruption.epsilons", "array of 1 to 64"},
		{", \"corruption\": {\"norms\": [\"l3\"]}", "corruption.norms[0]", "\"l1\", \"l2\", \"linf\""},
		{", \"corruption\": {\"norms\": [1]}", "corruption.norms[0]", "p with 1 < p"},
		{", \"corruption\": {\"norms\": [\"l2\", 2]}", "corruption.norms[1]", "repeats"},
		{", \"corruption\": {\"sparsity\": [-1]}", "corruption.sparsity[0]", ">= 0"},
		{", \"corruption\": {\"epsilon_scale\": \"loud\"}", "corruption.epsilon_scale", "\"relative\""},
		{", \"corruption\": {\"random_trials\": 1001}", "corruption.random_trials", "0 to 1000"},
		{", \"corruption\": {\"steps\": 0}", "corruption.steps", "1 to 1000"},
		{", \"corruption\": {\"groups\": [\"model\", \"model\"]}", "corruption.groups[1]", "repeats"},
		{", \"corruption\": {\"groups\": [\"neuron\"]}", "corruption.groups[0]", "\"layer\""},
		{", \"corruption\": {\"epsilon\": [1]}", "corruption.epsilon", "unknown field"},
		{", \"corruption\": [{\"steps\": 2}, {\"epsilons\": [0]}]", "corruption[1].epsilons[0]", "> 0"},
		{", \"limit\": 0", "limit", "integer from 1"},
		{", \"batch_size\": 1.5", "batch_size", "integer from 1 to 65536"},
		{", \"seed\": -1", "seed", "integer from 0"},
		{", \"preprocess\": {\"std\": [0]}", "preprocess.std[0]", "> 0"},
		{", \"preprocess\": {\"scale\": -1}", "preprocess.scale", "> 0"},
		{", \"kind\": \"harden\"", "training", "required for a harden job"},
		{", \"kind\": \"train\"", "kind", "\"analyze\" or \"harden\""},
		{", \"training\": {\"dataset\": \"x\"}", "training", "for \"kind\": \"harden\""},
		{", \"kind\": \"harden\", \"training\": {}", "training.dataset", "is required"},
		{", \"kind\": \"harden\", \"training\": {\"dataset\": \"x\", \"optimizer\": \"rmsprop\"}",
		 "training.optimizer", "sgd,adam"},
		{", \"kind\": \"harden\", \"training\": {\"dataset\": \"x\", \"act\": {\"epsilon\": 0.1, \"lambda\": 2}}",
		 "training.act.lambda", "from 0 to 1"},
		{", \"kind\": \"harden\", \"training\": {\"dataset\": \"x\", \"act\": {\"norm\": \"l2\"}}",
		 "training.act.epsilon", "is required"},
		{", \"kind\": \"harden\", \"training\": {\"dataset\": \"x\", \"act\": {\"epsilon\": 0.1, \"group\": [3]}}",
		 "training.act.group[0]", "tensor or layer name"},
		{", \"kind\": \"harden\", \"training\": {\"dataset\": \"x\", \"epochs\": -1}", "training.epochs",
		 "integer from 0"},
		{", \"colour\": 1", "colour", "unknown field"},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char text[512];
		struct pc_spec s;
		struct pc_error err = {0};
		snprintf(text, sizeof(text), "{" MIN_SPEC "%s}", cases[i].body);
		CHECK_MSG(parse(text, &s, &err) == PC_ERR_INVALID, "case %zu: accepted %s", i, cases[i].body);
		CHECK_MSG(strcmp(err.where, cases[i].where) == 0, "case %zu: where '%s', expected '%s'", i, err.where,
			  cases[i].where);
		CHECK_MSG(strstr(err.text, cases[i].text) != NULL, "case %zu: '%s' lacks '%s'", i, err.text,
			  cases[i].text);
	}
}

TEST(spec_required_fields)
{
	struct pc_spec s;
	struct pc_error err = {0};

	CHECK(parse("{\"dataset\": \"abc\"}", &s, &err) == PC_ERR_INVALID);
	CHECK(strcmp(err.where, "model") == 0);
	memset(&err, 0, sizeof(err));
	CHECK(parse("{\"model\": \"m\"}", &s, &err) == PC_ERR_INVALID);
	CHECK(strcmp(err.where, "dataset") == 0);
	memset(&err, 0, sizeof(err));
	CHECK(parse("{\"model\": \"m\", \"dataset\": {\"inputs\": \"x\"}}", &s, &err) == PC_ERR_INVALID);
	CHECK(strcmp(err.where, "dataset.labels") == 0);
	memset(&err, 0, sizeof(err));
	CHECK(parse("[1]", &s, &err) == PC_ERR_INVALID);
	/* a dataset id (the API's form) is accepted */
	memset(&err, 0, sizeof(err));
	REQUIRE(parse("{\"model\": \"m\", \"dataset\": \"d-123\"}", &s, &err) == PC_OK);
	CHECK(s.labels == NULL && strcmp(s.inputs, "d-123") == 0);
	pc_spec_free(&s);
}

/* Epochs are bounded like trials and steps: a harden job of 10,000 epochs
 * is refused naming the field, 1,000 is the most. */
TEST(spec_epochs_trials_steps_bounded)
{
	static const struct {
		const char *fields, *where, *needle;
	} bad[] = {
		{"\"kind\": \"harden\", \"training\": {\"dataset\": \"t\", \"epochs\": 10000}", "training.epochs",
		 "from 0 to 1000"},
		{"\"kind\": \"harden\", \"training\": {\"dataset\": \"t\", \"epochs\": 1001}", "training.epochs",
		 "from 0 to 1000"},
		{"\"corruption\": {\"random_trials\": 1001}", "corruption.random_trials", "from 0 to 1000"},
		{"\"corruption\": {\"steps\": 1001}", "corruption.steps", "from 1 to 1000"},
		{"\"kind\": \"harden\", \"training\": {\"dataset\": \"t\", \"act\": {\"epsilon\": 0.1, \"steps\": 1001}}",
		 "training.act.steps", "from 1 to 1000"},
	};
	char text[512];
	struct pc_spec s;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct pc_error err = {0};
		snprintf(text, sizeof(text), "{" MIN_SPEC ", %s}", bad[i].fields);
		CHECK_MSG(parse(text, &s, &err) == PC_ERR_INVALID, "%s was accepted", bad[i].fields);
		CHECK_MSG(strcmp(err.where, bad[i].where) == 0, "%s: where '%s'", bad[i].fields, err.where);
		CHECK_MSG(strstr(err.text, bad[i].needle), "%s: '%s'", bad[i].fields, err.text);
	}
	{
		struct pc_error err = {0};
		REQUIRE(parse("{" MIN_SPEC ", \"kind\": \"harden\", \"training\": {\"dataset\": \"t\", \"epochs\": 1000}}", &s,
			      &err) == PC_OK);
		CHECK_INT(s.training.epochs, 1000);
		pc_spec_free(&s);
	}
}

/* The estimate of README's formula, by hand: the default spec (norms l2
 * and linf, 3 epsilons, 5 trials, groups model and tensor) on a model of
 * 100 parameters in 2 tensors makes 1 + 3 x 2 x 3 x (1 + 5) = 109 passes. */
TEST(spec_work_estimate_follows_the_formula)
{
	struct pc_work_model m = {100, 2, 1};
	struct pc_error err = {0};
	struct pc_spec s;

	REQUIRE(parse("{" MIN_SPEC "}", &s, &err) == PC_OK);
	CHECK_CLOSE(pc_spec_study_passes(&s, &m), 109.0, 0, 0);
	CHECK_CLOSE(pc_spec_work(&s, &m, 50, 0), 109.0 * (50 * 100 + 1e6), 0, 0);
	CHECK_INT(pc_spec_check_work(&s, &m, 50, 0, 109.0 * (50 * 100 + 1e6), &err), PC_OK);
	CHECK_INT(pc_spec_check_work(&s, &m, 50, 0, 0, &err), PC_OK); /* no bound */
	CHECK_INT(pc_spec_check_work(&s, &m, 50, 0, 1e8, &err), PC_ERR_TOO_MUCH_WORK);
	CHECK(strcmp(err.where, "max_job_work") == 0);
	CHECK_MSG(strstr(err.text, "1.1e+08 multiply-adds") && strstr(err.text, "109 passes") &&
			  strstr(err.text, "over the limit of 1e+08"),
		  "%s", err.text);
	pc_spec_free(&s);
	/* limit counts, layers group, multi-step: 1 + 1 x 1 x 1 x 2 x (4 + 2) = 13 passes over 10 samples */
	REQUIRE(parse("{" MIN_SPEC ", \"limit\": 10, \"corruption\": {\"norms\": [\"l2\"], \"epsilons\": [0.1, 1],"
		      " \"random_trials\": 2, \"steps\": 3, \"groups\": [\"layer\"]}}",
		      &s, &err) == PC_OK);
	CHECK_CLOSE(pc_spec_study_passes(&s, &m), 13.0, 0, 0);
	CHECK_CLOSE(pc_spec_work(&s, &m, 50, 0), 13.0 * (10 * 100 + 1e6), 0, 0);
	pc_spec_free(&s);
	/* harden: two studies, then 4 epochs of 1 + 2 ACT steps over 20 training samples */
	REQUIRE(parse("{" MIN_SPEC ", \"kind\": \"harden\", \"training\": {\"dataset\": \"t\", \"epochs\": 4,"
		      " \"act\": {\"epsilon\": 0.1, \"steps\": 2}}}",
		      &s, &err) == PC_OK);
	CHECK_CLOSE(pc_spec_work(&s, &m, 50, 20), 2 * 109.0 * (50 * 100 + 1e6) + 4 * 3 * (20 * 100 + 1e6), 0, 0);
	pc_spec_free(&s);
}
