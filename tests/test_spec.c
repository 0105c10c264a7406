/* Job specs: defaults, the echo, and errors that name the field. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "paracorr/faults.h"
#include "paracorr/onnx.h"
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
		{", \"corruption\": {\"random_trials\": \"many\"}", "corruption.random_trials", "or {\"min\""},
		{", \"corruption\": {\"random_trials\": {\"min\": 1}}", "corruption.random_trials.min", "2 to 1000"},
		{", \"corruption\": {\"random_trials\": {\"min\": 10, \"max\": 9}}", "corruption.random_trials.max",
		 "at least min (10)"},
		{", \"corruption\": {\"random_trials\": {\"ci_halfwidth\": 0}}", "corruption.random_trials.ci_halfwidth",
		 "number from"},
		{", \"corruption\": {\"random_trials\": {\"mean\": 3}}", "corruption.random_trials.mean", "unknown field"},
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
		{", \"corruption\": []", "corruption", "[] only with a faults or a curvature block"},
		{", \"faults\": []", "faults", "must be an object"},
		{", \"faults\": {\"ber\": [0.001, 0]}", "faults.ber[1]", "must be in (0, 1)"},
		{", \"faults\": {\"ber\": [1]}", "faults.ber[0]", "must be in (0, 1)"},
		{", \"faults\": {\"ber\": [1.5]}", "faults.ber[0]", "must be in (0, 1)"},
		{", \"faults\": {\"ber\": [-1e-3]}", "faults.ber[0]", "must be in (0, 1)"},
		{", \"faults\": {\"ber\": [\"1e-3\"]}", "faults.ber[0]", "must be a number in (0, 1)"},
		{", \"faults\": {\"ber\": [0.01, 0.01]}", "faults.ber[1]", "repeats an earlier rate"},
		{", \"faults\": {\"ber\": 0.01}", "faults.ber", "array of at most 16 numbers in (0, 1)"},
		{", \"faults\": {\"formats\": [\"float64\"]}", "faults.formats[0]",
		 "must be \"float32\", \"float16\", \"bfloat16\" or \"int8\""},
		{", \"faults\": {\"formats\": [\"int8\", \"float16\", \"int8\"]}", "faults.formats[2]",
		 "repeats an earlier format"},
		{", \"faults\": {\"formats\": []}", "faults.formats", "array of 1 to 4"},
		{", \"faults\": {\"quantization\": \"per_row\"}", "faults.quantization", "one of per_tensor,per_channel"},
		{", \"faults\": {\"trials\": 0}", "faults.trials", "integer from 1 to 1000"},
		{", \"faults\": {\"bits\": {\"weights\": 0}}", "faults.bits.weights", "integer from 1 to 1000000"},
		{", \"faults\": {\"bits\": {\"trials\": 1001}}", "faults.bits.trials", "integer from 1 to 1000"},
		{", \"faults\": {\"bits\": {\"weight\": 2}}", "faults.bits.weight", "unknown field"},
		{", \"faults\": {\"bits\": 1}", "faults.bits", "must be false, true or {\"weights\": M, \"trials\": T}"},
		{", \"faults\": {\"groups\": [\"model\", \"neuron\"]}", "faults.groups[1]", "\"layer\""},
		{", \"faults\": {\"groups\": [\"layer\", \"layer\"]}", "faults.groups[1]", "repeats"},
		{", \"faults\": {\"search\": {\"method\": \"x\"}}", "faults.search.method", "one of best,bfa"},
		{", \"faults\": {\"search\": {\"target_accuracy\": 1}}", "faults.search.target_accuracy",
		 "must be a number in [0, 1)"},
		{", \"faults\": {\"search\": {\"target_accuracy\": -0.5}}", "faults.search.target_accuracy",
		 "must be a number in [0, 1)"},
		{", \"faults\": {\"search\": {\"max_flips\": 0}}", "faults.search.max_flips", "integer from 1 to 10000"},
		{", \"faults\": {\"search\": {\"max_flip\": 3}}", "faults.search.max_flip", "unknown field"},
		{", \"faults\": {\"search\": true}", "faults.search", "must be an object"},
		{", \"faults\": {\"format\": [\"int8\"]}", "faults.format", "unknown field"},
		{", \"kind\": \"harden\", \"training\": {\"dataset\": \"x\"}, \"faults\": {}", "faults",
		 "is for \"kind\": \"analyze\" jobs"},
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
	struct pc_work_model m = {100, 2, 1, -1};
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
			  strstr(err.text, "over the limit of 1e+08") && !strstr(err.text, "faults"),
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

/* The faults block's echo as text (compact, in the spec's key order). */
static char *faults_echo(const struct pc_spec *s)
{
	json_t *echo = pc_spec_to_json(s);
	char *text = json_dumps(json_object_get(echo, "faults"), JSON_COMPACT | JSON_ENCODE_ANY);

	json_decref(echo);
	return text;
}

#define CHECK_TEXT(got, want) CHECK_MSG((got) && strcmp((got), (want)) == 0, "got %s, expected %s", got, want)

TEST(spec_faults_defaults_echoed)
{
	struct pc_spec s;
	struct pc_error err = {0};
	char *text;
	json_t *echo;

	/* no block: none in the echo, nothing faults-wise set */
	REQUIRE(parse("{" MIN_SPEC "}", &s, &err) == PC_OK);
	CHECK_INT(s.has_faults, 0);
	echo = pc_spec_to_json(&s);
	CHECK(echo && json_object_get(echo, "faults") == NULL);
	json_decref(echo);
	pc_spec_free(&s);

	REQUIRE(parse("{" MIN_SPEC ", \"faults\": {}}", &s, &err) == PC_OK);
	CHECK_INT(s.has_faults, 1);
	CHECK_INT(s.faults.n_formats, 1);
	CHECK_INT(s.faults.formats[0], PC_FAULTS_FLOAT32);
	CHECK_INT(s.faults.quantization, PC_FAULTS_PER_TENSOR);
	CHECK_INT(s.faults.n_ber, 0);
	CHECK_INT(s.faults.trials, 20);
	CHECK_INT(s.faults.has_bits, 0);
	CHECK_INT(s.faults.groups, PC_GROUP_MODEL);
	CHECK_INT(s.faults.has_search, 0);
	CHECK_INT(s.n_blocks, 1); /* an absent "corruption" keeps its default block */
	text = faults_echo(&s);
	CHECK_TEXT(text, "{\"formats\":[\"float32\"],\"quantization\":\"per_tensor\",\"ber\":[],\"trials\":20,"
			 "\"bits\":false,\"groups\":[\"model\"]}");
	free(text);
	pc_spec_free(&s);

	/* only formats and search; the formats in the spec's order; bits: true
	 * is one weight over faults.trials trials */
	REQUIRE(parse("{" MIN_SPEC ", \"faults\": {\"formats\": [\"int8\", \"float32\"], \"search\": {}}}", &s, &err) ==
		PC_OK);
	CHECK_INT(s.faults.has_search, 1);
	CHECK(s.faults.target_accuracy == 0.1);
	CHECK_INT(s.faults.max_flips, 100);
	CHECK_INT(s.faults.method, PC_FAULTS_SEARCH_BEST);
	text = faults_echo(&s);
	CHECK_TEXT(text, "{\"formats\":[\"int8\",\"float32\"],\"quantization\":\"per_tensor\",\"ber\":[],\"trials\":20,"
			 "\"bits\":false,\"groups\":[\"model\"],"
			 "\"search\":{\"target_accuracy\":0.10000000000000001,\"max_flips\":100,\"method\":\"best\"}}");
	free(text);
	pc_spec_free(&s);

	REQUIRE(parse("{" MIN_SPEC ", \"faults\": {\"trials\": 7, \"bits\": true}}", &s, &err) == PC_OK);
	CHECK_INT(s.faults.has_bits, 1);
	CHECK_INT(s.faults.bits_weights, 1);
	CHECK_INT(s.faults.bits_trials, 7);
	text = faults_echo(&s);
	CHECK_TEXT(text, "{\"formats\":[\"float32\"],\"quantization\":\"per_tensor\",\"ber\":[],\"trials\":7,"
			 "\"bits\":{\"weights\":1,\"trials\":7},\"groups\":[\"model\"]}");
	free(text);
	pc_spec_free(&s);
}

TEST(spec_faults_full_round_trips)
{
	/* preprocess.scale set: the echo's "auto" is the report's to resolve */
	const char *text = "{" MIN_SPEC ", \"preprocess\": {\"scale\": 1}, \"faults\": {\"formats\": [\"bfloat16\", \"int8\", \"float16\"],"
			   " \"quantization\": \"per_channel\", \"ber\": [0.0001, 0.5], \"trials\": 5,"
			   " \"bits\": {\"weights\": 1000000, \"trials\": 3}, \"groups\": [\"layer\", \"tensor\", \"model\"],"
			   " \"search\": {\"target_accuracy\": 0, \"max_flips\": 10000, \"method\": \"bfa\"}}}";
	static const char want[] =
		"{\"formats\":[\"bfloat16\",\"int8\",\"float16\"],\"quantization\":\"per_channel\","
		"\"ber\":[0.0001,0.5],\"trials\":5,\"bits\":{\"weights\":1000000,\"trials\":3},"
		"\"groups\":[\"layer\",\"tensor\",\"model\"],"
		"\"search\":{\"target_accuracy\":0.0,\"max_flips\":10000,\"method\":\"bfa\"}}";
	struct pc_spec s, s2;
	struct pc_error err = {0};
	json_t *echo;
	char *dump, *t1, *t2;

	REQUIRE(parse(text, &s, &err) == PC_OK);
	CHECK_INT(s.faults.n_formats, 3);
	CHECK_INT(s.faults.formats[0], PC_FAULTS_BFLOAT16);
	CHECK_INT(s.faults.formats[1], PC_FAULTS_INT8);
	CHECK_INT(s.faults.formats[2], PC_FAULTS_FLOAT16);
	CHECK_INT(s.faults.quantization, PC_FAULTS_PER_CHANNEL);
	CHECK_INT(s.faults.n_ber, 2);
	CHECK(s.faults.ber[0] == 0.0001 && s.faults.ber[1] == 0.5);
	CHECK_INT(s.faults.trials, 5);
	CHECK_INT(s.faults.bits_weights, 1000000);
	CHECK_INT(s.faults.bits_trials, 3);
	CHECK_INT(s.faults.groups, PC_GROUP_MODEL | PC_GROUP_TENSOR | PC_GROUP_LAYER);
	CHECK_INT(s.faults.group_order[0], PC_GROUP_LAYER);
	CHECK_INT(s.faults.group_order[2], PC_GROUP_MODEL);
	CHECK(s.faults.target_accuracy == 0);
	CHECK_INT(s.faults.max_flips, 10000);
	CHECK_INT(s.faults.method, PC_FAULTS_SEARCH_BFA);
	t1 = faults_echo(&s);
	CHECK_TEXT(t1, want);
	/* the whole echo parses back to the same block */
	echo = pc_spec_to_json(&s);
	dump = json_dumps(echo, 0);
	REQUIRE(dump);
	REQUIRE_MSG(parse(dump, &s2, &err) == PC_OK, "%s: %s", err.where, err.text);
	t2 = faults_echo(&s2);
	CHECK_TEXT(t2, want);
	free(t1);
	free(t2);
	free(dump);
	json_decref(echo);
	pc_spec_free(&s);
	pc_spec_free(&s2);
}

/* "corruption": [] is a faults-only study (no corruption block); without a
 * faults block it is refused (spec_errors_name_the_field). */
TEST(spec_faults_only_study)
{
	struct pc_spec s, s2;
	struct pc_error err = {0};
	json_t *echo;
	char *dump;

	REQUIRE(parse("{" MIN_SPEC ", \"preprocess\": {\"scale\": 1}, \"corruption\": [], \"faults\": {\"ber\": [0.001]}}",
		      &s, &err) == PC_OK);
	CHECK_INT(s.n_blocks, 0);
	echo = pc_spec_to_json(&s);
	REQUIRE(echo);
	CHECK(json_is_array(json_object_get(echo, "corruption")) &&
	      json_array_size(json_object_get(echo, "corruption")) == 0);
	dump = json_dumps(echo, 0);
	REQUIRE(dump);
	REQUIRE_MSG(parse(dump, &s2, &err) == PC_OK, "%s: %s", err.where, err.text);
	CHECK_INT(s2.n_blocks, 0);
	CHECK_INT(s2.faults.n_ber, 1);
	free(dump);
	json_decref(echo);
	pc_spec_free(&s);
	pc_spec_free(&s2);
}

/* x -> Add(B) -> y: one parameter tensor, and not a weight int8 quantizes. */
static struct pc_graph *add_only_graph(struct pc_error *err)
{
	static const float b[2] = {0.5f, -1.0f};
	struct pc_shape in = {2, {-1, 2}}, sb = {1, {2}};
	const char *n0[] = {"x", "B"}, *o0[] = {"y"};
	struct pc_graph *g = pc_graph_new(17, err);

	if (!g)
		return NULL;
	if (pc_graph_add_input(g, "x", &in, err) || pc_graph_add_float(g, "B", &sb, b, err) ||
	    pc_graph_add_node(g, "Add", "add", 2, n0, 1, o0, 0, NULL, err) || pc_graph_add_output(g, "y", err) ||
	    pc_graph_finish(g, err)) {
		pc_graph_free(g);
		return NULL;
	}
	return g;
}

TEST(spec_check_model_int8_needs_quantizable_weights)
{
	struct pc_error err = {0};
	struct pc_graph *cnn = NULL, *add = add_only_graph(&err);
	struct pc_spec with_int8, without_int8, no_faults;
	struct pc_work_model mc, ma, unknown = {100, 2, 2, -1};
	char path[512];
	int axis;

	REQUIRE_MSG(add, "%s", err.text);
	REQUIRE(pc_graph_param_tensors(add) == 1 && !pc_faults_quantizable(add, 0, &axis));
	snprintf(path, sizeof(path), "%s/tests/reference/fixtures/cnn_op13.onnx", pc_test_root());
	REQUIRE_MSG(pc_onnx_load_file(path, &cnn, &err) == PC_OK, "%s", err.text);
	REQUIRE(parse("{" MIN_SPEC ", \"faults\": {\"formats\": [\"float16\", \"int8\"]}}", &with_int8, &err) == PC_OK);
	REQUIRE(parse("{" MIN_SPEC ", \"faults\": {\"formats\": [\"float32\", \"bfloat16\"]}}", &without_int8, &err) ==
		PC_OK);
	REQUIRE(parse("{" MIN_SPEC "}", &no_faults, &err) == PC_OK);

	pc_work_model_of(cnn, &mc);
	pc_work_model_of(add, &ma);
	CHECK_INT(mc.quantizable, 5); /* two Conv and three Gemm weights */
	CHECK_INT(ma.quantizable, 0);
	CHECK_INT(pc_spec_check_model(&with_int8, &mc, &err), PC_OK);
	CHECK_INT(pc_spec_check_model(&without_int8, &ma, &err), PC_OK);
	CHECK_INT(pc_spec_check_model(&no_faults, &ma, &err), PC_OK);
	/* a stored description that does not say: nothing refused before the run */
	CHECK_INT(pc_spec_check_model(&with_int8, &unknown, &err), PC_OK);
	CHECK_INT(err.code, PC_OK);
	CHECK_INT(pc_spec_check_model(&with_int8, &ma, &err), PC_ERR_INVALID);
	CHECK_MSG(strcmp(err.where, "faults.formats[1]") == 0, "where '%s'", err.where);
	CHECK_MSG(strstr(err.text, "\"int8\"") && strstr(err.text, "no int8-quantizable weight"), "%s", err.text);

	pc_spec_free(&with_int8);
	pc_spec_free(&without_int8);
	pc_spec_free(&no_faults);
	pc_graph_free(cnn);
	pc_graph_free(add);
}

/* The faults terms of spec.h's formula by hand, on the model of 100
 * parameters in 2 tensors and 1 layer of spec_work_estimate_follows_the_formula. */
TEST(spec_work_estimate_faults_terms)
{
	struct pc_work_model m = {100, 2, 1, -1};
	struct pc_error err = {0};
	struct pc_spec s;

	/* the default corruption block's 109 passes and float32's clean pass
	 * on the one "model" group */
	REQUIRE(parse("{" MIN_SPEC ", \"faults\": {}}", &s, &err) == PC_OK);
	CHECK_CLOSE(pc_spec_study_passes(&s, &m), 110.0, 0, 0);
	pc_spec_free(&s);
	/* no corruption; groups model + 2 tensors = 3, search tensors 2 + 1 + 1;
	 * bfa evaluates one candidate per tensor.
	 * Each format: 3 x (1 + 2 ber x 4 trials) = 27, search 10 x (1 + 2) + 1
	 * for the model and 2 x (10 x (1 + 1) + 1) for the tensors = 73; bits
	 * 3 groups x 3 trials x 32 = 288 for float32, x 8 = 72 for int8.
	 * 1 + (27 + 288 + 73) + (27 + 72 + 73) = 561 */
	REQUIRE(parse("{" MIN_SPEC ", \"corruption\": [], \"faults\": {\"formats\": [\"float32\", \"int8\"],"
		      " \"ber\": [0.001, 0.01], \"trials\": 4, \"bits\": {\"weights\": 5, \"trials\": 3},"
		      " \"groups\": [\"model\", \"tensor\"], \"search\": {\"max_flips\": 10, \"method\": \"bfa\"}}}",
		      &s, &err) == PC_OK);
	CHECK_CLOSE(pc_spec_study_passes(&s, &m), 561.0, 0, 0);
	CHECK_CLOSE(pc_spec_work(&s, &m, 50, 0), 561.0 * (50 * 100 + 1e6), 0, 0);
	CHECK_INT(pc_spec_check_work(&s, &m, 50, 0, 561.0 * (50 * 100 + 1e6), &err), PC_OK);
	CHECK_INT(pc_spec_check_work(&s, &m, 50, 0, 1e8, &err), PC_ERR_TOO_MUCH_WORK);
	CHECK_MSG(strstr(err.text, "561 passes") && strstr(err.text, "in faults: formats, ber"), "%s", err.text);
	pc_spec_free(&s);
	/* the layer group holds both tensors, and "best" evaluates 4 candidates
	 * of each: 1 + 1 + 10 x (1 + 4 x 2) + 1 = 93; bits: true on float16 adds
	 * 1 group x 16 bits x 20 trials = 320 */
	REQUIRE(parse("{" MIN_SPEC ", \"corruption\": [], \"faults\": {\"groups\": [\"layer\"],"
		      " \"search\": {\"max_flips\": 10}}}",
		      &s, &err) == PC_OK);
	CHECK_CLOSE(pc_spec_study_passes(&s, &m), 93.0, 0, 0);
	pc_spec_free(&s);
	REQUIRE(parse("{" MIN_SPEC ", \"corruption\": [], \"faults\": {\"formats\": [\"float16\"], \"bits\": true,"
		      " \"groups\": [\"layer\"], \"search\": {\"max_flips\": 10}}}",
		      &s, &err) == PC_OK);
	CHECK_CLOSE(pc_spec_study_passes(&s, &m), 413.0, 0, 0);
	pc_spec_free(&s);
}

/* "critical" in a block: defaults echoed, bad values named by their path,
 * and the searches' bound in the work estimate */
TEST(spec_critical_block)
{
	static const struct {
		const char *body, *where, *text;
	} bad_cases[] = {
		{"\"critical\": {\"accuracy_drop\": 0}", "corruption.critical.accuracy_drop", "(0, 1]"},
		{"\"critical\": {\"accuracy_drop\": 1.5}", "corruption.critical.accuracy_drop", "(0, 1]"},
		{"\"critical\": {\"accuracy_drop\": \"5%\"}", "corruption.critical.accuracy_drop", "(0, 1]"},
		{"\"critical\": {\"tolerance\": 0.6}", "corruption.critical.tolerance", "(0, 0.5]"},
		{"\"critical\": {\"tolerance\": 0}", "corruption.critical.tolerance", "(0, 0.5]"},
		{"\"critical\": {\"drop\": 0.1}", "corruption.critical.drop", "unknown field"},
		{"\"critical\": 0.05", "corruption.critical", "must be an object"},
	};
	struct pc_work_model m = {100, 2, 1, -1};
	struct pc_error err = {0};
	struct pc_spec s;
	char text[512];

	REQUIRE(parse("{" MIN_SPEC ", \"corruption\": {\"norms\": [\"l2\"], \"epsilons\": [0.1, 1],"
		      " \"random_trials\": 2, \"groups\": [\"layer\"], \"critical\": {\"accuracy_drop\": 0.1}}}",
		      &s, &err) == PC_OK);
	CHECK(s.blocks[0].has_critical);
	CHECK(s.blocks[0].critical_drop == 0.1 && s.blocks[0].critical_tolerance == 0.01);
	{
		json_t *echo = pc_spec_to_json(&s);
		char *c = json_dumps(json_object_get(json_object_get(echo, "corruption"), "critical"), JSON_COMPACT);
		CHECK_MSG(c && strcmp(c, "{\"accuracy_drop\":0.10000000000000001,\"tolerance\":0.01}") == 0, "%s", c);
		free(c);
		json_decref(echo);
	}
	/* 1 + 1 layer x (2 radii x (1 + 2) + the searches' 50 x (1 + 2)) */
	CHECK_CLOSE(pc_spec_study_passes(&s, &m), 1 + 6 + 150.0, 0, 0);
	pc_spec_free(&s);
	/* without "critical" the echo has none and the estimate is the sweep's */
	REQUIRE(parse("{" MIN_SPEC ", \"corruption\": {\"norms\": [\"l2\"], \"epsilons\": [0.1, 1],"
		      " \"random_trials\": 2, \"groups\": [\"layer\"]}}",
		      &s, &err) == PC_OK);
	{
		json_t *echo = pc_spec_to_json(&s);
		CHECK(!json_object_get(json_object_get(echo, "corruption"), "critical"));
		json_decref(echo);
	}
	CHECK_CLOSE(pc_spec_study_passes(&s, &m), 7.0, 0, 0);
	pc_spec_free(&s);
	for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
		struct pc_error e = {0};
		snprintf(text, sizeof(text), "{" MIN_SPEC ", \"corruption\": {%s}}", bad_cases[i].body);
		CHECK_MSG(parse(text, &s, &e) == PC_ERR_INVALID && strcmp(e.where, bad_cases[i].where) == 0 &&
				  strstr(e.text, bad_cases[i].text),
			  "%s: %s: %s", bad_cases[i].body, e.where, e.text);
		pc_spec_free(&s);
	}
}

/* "curvature": defaults echoed, bad values named by their path, harden
 * refused, [] corruption allowed with it, and its products in the work
 * estimate */
TEST(spec_curvature_block)
{
	static const struct {
		const char *body, *where, *text;
	} bad_cases[] = {
		{"\"curvature\": []", "curvature", "must be an object"},
		{"\"curvature\": {\"eigenvalues\": 0}", "curvature.eigenvalues", "integer from 1 to 20"},
		{"\"curvature\": {\"eigenvalues\": 21}", "curvature.eigenvalues", "integer from 1 to 20"},
		{"\"curvature\": {\"eigenvalues\": 5, \"iterations\": 4}", "curvature.iterations",
		 "integer from 5 to 500"},
		{"\"curvature\": {\"iterations\": 501}", "curvature.iterations", "integer from 1 to 500"},
		{"\"curvature\": {\"trace_samples\": -1}", "curvature.trace_samples", "integer from 0 to 1000"},
		{"\"curvature\": {\"trace_samples\": 2.5}", "curvature.trace_samples", "integer from 0 to 1000"},
		{"\"curvature\": {\"groups\": [\"neuron\"]}", "curvature.groups[0]", "\"layer\""},
		{"\"curvature\": {\"groups\": [\"tensor\", \"tensor\"]}", "curvature.groups[1]", "repeats"},
		{"\"curvature\": {\"second_order\": 1}", "curvature.second_order", "true or false"},
		{"\"curvature\": {\"eigenvalue\": 1}", "curvature.eigenvalue", "unknown field"},
		{"\"kind\": \"harden\", \"training\": {\"dataset\": \"x\"}, \"curvature\": {}", "curvature",
		 "is for \"kind\": \"analyze\" jobs"},
	};
	struct pc_work_model m = {100, 2, 1, -1};
	struct pc_error err = {0};
	struct pc_spec s, s2;
	char text[512], *c;
	json_t *echo;

	REQUIRE(parse("{" MIN_SPEC ", \"preprocess\": {\"scale\": 1}, \"corruption\": [], \"curvature\": {}}", &s, &err) == PC_OK);
	CHECK(s.has_curvature && s.n_blocks == 0);
	echo = pc_spec_to_json(&s);
	c = json_dumps(json_object_get(echo, "curvature"), JSON_COMPACT);
	CHECK_MSG(c && strcmp(c, "{\"eigenvalues\":1,\"iterations\":100,\"trace_samples\":20,\"groups\":[\"model\"],"
				 "\"second_order\":true}") == 0,
		  "%s", c);
	free(c);
	c = json_dumps(echo, 0);
	REQUIRE(c);
	REQUIRE_MSG(parse(c, &s2, &err) == PC_OK, "%s: %s", err.where, err.text);
	CHECK(s2.has_curvature && s2.curvature.iterations == 100 && s2.curvature.trace_samples == 20);
	free(c);
	json_decref(echo);
	pc_spec_free(&s2);
	/* 1 + 3 x 1 group x (100 + 20) */
	CHECK_CLOSE(pc_spec_study_passes(&s, &m), 1 + 360.0, 0, 0);
	pc_spec_free(&s);

	/* model + 2 tensors, 10 + 4 products each; second order: one product
	 * per gradient setting of the one-step block (model: 2 norms), one per
	 * radius of the multi-step one (1 layer x 1 norm x 3 radii). The
	 * sweeps: (1 + 2) x 2 radii x 2 norms, and 3 radii x (4 + 1 + 2) */
	REQUIRE(parse("{" MIN_SPEC ", \"corruption\": [{\"norms\": [\"l2\", \"linf\"], \"epsilons\": [0.1, 1],"
		      " \"random_trials\": 2, \"groups\": [\"model\"]}, {\"norms\": [\"l2\"], \"epsilons\": [0.1, 1, 2],"
		      " \"random_trials\": 2, \"groups\": [\"layer\"], \"steps\": 4}],"
		      " \"curvature\": {\"eigenvalues\": 2, \"iterations\": 10, \"trace_samples\": 4,"
		      " \"groups\": [\"tensor\"]}}",
		      &s, &err) == PC_OK);
	CHECK_CLOSE(pc_spec_curvature_passes(&s, &m), 3.0 * 3 * 14 + 3.0 * (2 + 3), 0, 0);
	CHECK_CLOSE(pc_spec_study_passes(&s, &m), 1 + 12 + 21 + 3.0 * 3 * 14 + 3.0 * (2 + 3), 0, 0);
	pc_spec_free(&s);
	/* second_order false: the block's own products only */
	REQUIRE(parse("{" MIN_SPEC ", \"curvature\": {\"iterations\": 10, \"trace_samples\": 0,"
		      " \"second_order\": false}}",
		      &s, &err) == PC_OK);
	CHECK_CLOSE(pc_spec_curvature_passes(&s, &m), 30.0, 0, 0);
	pc_spec_free(&s);

	for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
		struct pc_error e = {0};
		snprintf(text, sizeof(text), "{" MIN_SPEC ", %s}", bad_cases[i].body);
		CHECK_MSG(parse(text, &s, &e) == PC_ERR_INVALID && strcmp(e.where, bad_cases[i].where) == 0 &&
				  strstr(e.text, bad_cases[i].text),
			  "%s: %s: %s", bad_cases[i].body, e.where, e.text);
		pc_spec_free(&s);
	}
}
