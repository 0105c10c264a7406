/* compare: reports aligned by setting, what differs, a harden report's
 * before and after, and the refusals, on hand-made reports whose every
 * number is known. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compare.h"
#include "test.h"

static json_t *res(const char *group, double eps, double acc, double rnd)
{
	json_t *r = json_pack("{s:s, s:s, s:f, s:i, s:i, s:f, s:{s:f, s:f}}", "group", group, "norm", "l2",
			      "epsilon", eps, "sparsity", 0, "steps", 1, "first_order", 0.1, "gradient", "accuracy",
			      acc, "loss_change", 1 - acc);

	if (rnd >= 0)
		json_object_set_new(r, "random", json_pack("{s:f}", "accuracy_mean", rnd));
	return r;
}

/* A study with results at eps 0.1 and 1 for the model and a layer, and an
 * extra radius (0.5) when extra; seed and model name go into its spec. */
static json_t *study(const char *model, int seed, double base, int extra)
{
	json_t *r = json_pack("{s:{s:s, s:i, s:{s:[f, f]}}, s:{s:f, s:f}, s:{s:i}, s:{s:i}, s:[o, o, o], s:[]}",
			      "spec", "model", model, "seed", seed, "corruption", "epsilons", 0.1, 1.0, "clean", "loss",
			      0.3, "accuracy", base, "model", "parameters", 100, "dataset", "samples", 50, "results",
			      res("model", 0.1, base - 0.1, base), res("model", 1, base - 0.5, base - 0.01),
			      res("layer:fc", 1, base - 0.2, -1), "ranking");

	if (extra)
		json_array_append_new(json_object_get(r, "results"), res("model", 0.5, base - 0.3, base));
	return r;
}

static double num_at(const json_t *row, const char *key, int i)
{
	return json_number_value(json_array_get(json_object_get(row, key), (size_t)i));
}

TEST(compare_aligns_settings_and_lists_differences)
{
	json_t *reps[3] = {study("a.onnx", 1, 0.9, 0), study("b.onnx", 1, 0.8, 1), study("a.onnx", 2, 0.7, 0)};
	const char *labels[3] = {"A", "B", "C"};
	struct pc_error err = {0};
	json_t *cmp = NULL, *row, *d;
	char *text = NULL;
	size_t len = 0;
	FILE *f;

	REQUIRE(reps[0] && reps[1] && reps[2]);
	REQUIRE_MSG(pcd_compare(reps, labels, 3, &cmp, &err) == 0, "%s: %s", err.where, err.text);
	CHECK_INT(json_array_size(json_object_get(cmp, "studies")), 3);
	CHECK(!strcmp(json_string_value(json_object_get(json_array_get(json_object_get(cmp, "studies"), 1), "label")), "B"));
	/* eps 0.1 and 1 of the model and the layer's eps 1; B's 0.5 is not in A and C */
	CHECK_INT(json_array_size(json_object_get(cmp, "results")), 3);
	row = json_array_get(json_object_get(cmp, "results"), 1);
	CHECK(!strcmp(json_string_value(json_object_get(row, "group")), "model"));
	CHECK_CLOSE(json_number_value(json_object_get(row, "epsilon")), 1.0, 0, 0);
	CHECK_CLOSE(num_at(row, "gradient_accuracy", 0), 0.4, 0, 1e-12);
	CHECK_CLOSE(num_at(row, "gradient_accuracy", 1), 0.3, 0, 1e-12);
	CHECK_CLOSE(num_at(row, "gradient_accuracy", 2), 0.2, 0, 1e-12);
	CHECK_CLOSE(num_at(row, "random_accuracy_mean", 2), 0.69, 0, 1e-12);
	/* a study without random trials at a setting: null there */
	row = json_array_get(json_object_get(cmp, "results"), 2);
	CHECK(json_is_null(json_array_get(json_object_get(row, "random_accuracy_mean"), 0)));
	CHECK_INT(json_integer_value(json_array_get(json_object_get(cmp, "unmatched"), 1)), 1);
	CHECK_INT(json_integer_value(json_array_get(json_object_get(cmp, "unmatched"), 0)), 0);
	/* what differs: the model and the seed, nothing else */
	d = json_object_get(cmp, "differences");
	CHECK_INT(json_array_size(d), 2);
	CHECK(!strcmp(json_string_value(json_object_get(json_array_get(d, 0), "pointer")), "/model"));
	CHECK(!strcmp(json_string_value(json_array_get(json_object_get(json_array_get(d, 0), "values"), 1)), "b.onnx"));
	CHECK(!strcmp(json_string_value(json_object_get(json_array_get(d, 1), "pointer")), "/seed"));
	CHECK_INT(json_integer_value(json_array_get(json_object_get(json_array_get(d, 1), "values"), 2)), 2);
	/* the table has a column per study */
	REQUIRE((f = open_memstream(&text, &len)));
	pcd_compare_print(cmp, f);
	fclose(f);
	CHECK_MSG(text && strstr(text, "           1      40.00%      30.00%      20.00%      89.00%      79.00%      69.00%\n"),
		  "%s", text ? text : "");
	CHECK_MSG(text && strstr(text, "  /model: \"a.onnx\" | \"b.onnx\" | \"a.onnx\"\n"), "%s", text ? text : "");
	CHECK_MSG(text && strstr(text, "[2] has 1 rows that another study lacks"), "%s", text ? text : "");
	free(text);
	json_decref(cmp);
	for (int i = 0; i < 3; i++)
		json_decref(reps[i]);
}

TEST(compare_harden_before_and_after)
{
	json_t *h = json_pack("{s:s, s:{s:s}, s:o, s:o}", "kind", "harden", "spec", "model", "m.onnx", "before",
			      study("m.onnx", 1, 0.9, 0), "after", study("m.onnx", 1, 0.85, 0));
	json_t *plain = study("m.onnx", 1, 0.9, 0), *cmp = NULL, *two[2];
	const char *labels[2] = {"H", "P"};
	struct pc_error err = {0};
	const json_t *s;

	REQUIRE(h && plain);
	json_object_del(json_object_get(h, "before"), "spec");
	json_object_del(json_object_get(h, "after"), "spec");
	REQUIRE_MSG(pcd_compare(&h, labels, 1, &cmp, &err) == 0, "%s: %s", err.where, err.text);
	s = json_object_get(cmp, "studies");
	CHECK(!strcmp(json_string_value(json_object_get(json_array_get(s, 0), "label")), "H before"));
	CHECK(!strcmp(json_string_value(json_object_get(json_array_get(s, 1), "role")), "after"));
	CHECK_INT(json_array_size(json_object_get(cmp, "differences")), 0);
	CHECK_CLOSE(num_at(json_array_get(json_object_get(cmp, "results"), 0), "gradient_accuracy", 1), 0.75, 0, 1e-12);
	json_decref(cmp);
	/* among others a harden report stands for its hardened model */
	two[0] = h;
	two[1] = plain;
	REQUIRE(pcd_compare(two, labels, 2, &cmp, &err) == 0);
	s = json_object_get(cmp, "studies");
	CHECK(!strcmp(json_string_value(json_object_get(json_array_get(s, 0), "label")), "H (hardened)"));
	CHECK_CLOSE(json_number_value(json_object_get(json_object_get(json_array_get(s, 0), "clean"), "accuracy")), 0.85, 0, 1e-12);
	json_decref(cmp);
	json_decref(h);
	json_decref(plain);
}

TEST(compare_faults_sections)
{
	json_t *reps[2], *cmp = NULL, *row;
	const char *labels[2] = {"f32", "i8"};
	struct pc_error err = {0};

	for (int i = 0; i < 2; i++) {
		reps[i] = study("m.onnx", 1, 0.9, 0);
		REQUIRE(reps[i]);
		json_object_set_new(
		    reps[i], "faults",
		    json_pack("{s:{s:{s:f, s:f}}, s:[{s:s, s:f, s:s, s:f, s:f, s:f}], s:[{s:s, s:s, s:s, s:b, s:[{}, {}]}]}",
			      "quantized", "int8", "loss", 0.3, "accuracy", 0.8 + 0.05 * i, "random", "format", "int8",
			      "ber", 1e-4, "group", "model", "accuracy_mean", 0.7 + 0.1 * i, "accuracy_min", 0.5,
			      "flips_mean", 3.0, "search", "format", "int8", "group", "model", "method", "bfa", "reached",
			      1, "flips"));
	}
	/* the second search took one flip more */
	json_array_append_new(json_object_get(json_array_get(json_object_get(json_object_get(reps[1], "faults"), "search"), 0), "flips"),
			      json_object());
	REQUIRE(pcd_compare(reps, labels, 2, &cmp, &err) == 0);
	CHECK_CLOSE(num_at(json_object_get(json_object_get(cmp, "faults_quantized"), "int8"), "accuracy", 1), 0.85, 0, 1e-12);
	row = json_array_get(json_object_get(cmp, "faults_random"), 0);
	CHECK(row && num_at(row, "accuracy_mean", 1) > 0.799 && num_at(row, "accuracy_mean", 1) < 0.801);
	row = json_array_get(json_object_get(cmp, "faults_search"), 0);
	CHECK_INT(json_integer_value(json_array_get(json_object_get(row, "flips"), 0)), 2);
	CHECK_INT(json_integer_value(json_array_get(json_object_get(row, "flips"), 1)), 3);
	CHECK(json_is_true(json_array_get(json_object_get(row, "reached"), 1)));
	json_decref(cmp);
	json_decref(reps[0]);
	json_decref(reps[1]);
}

TEST(compare_refusals)
{
	json_t *a = study("a.onnx", 1, 0.9, 0), *junk = json_pack("{s:i}", "version", 1), *cmp = NULL, *reps[9];
	const char *labels[9] = {"a", "junk", "c", "d", "e", "f", "g", "h", "i"};
	struct pc_error err = {0};

	REQUIRE(a && junk);
	CHECK_INT(pcd_compare(&a, labels, 1, &cmp, &err), PC_ERR_INVALID);
	CHECK(!strcmp(err.where, "reports") && strstr(err.text, "harden"));
	reps[0] = a;
	reps[1] = junk;
	err = (struct pc_error){0};
	CHECK_INT(pcd_compare(reps, labels, 2, &cmp, &err), PC_ERR_INVALID);
	CHECK_MSG(!strcmp(err.where, "reports[1]") && strstr(err.text, "junk is not the report"), "%s: %s", err.where, err.text);
	for (int i = 0; i < 9; i++)
		reps[i] = a;
	err = (struct pc_error){0};
	CHECK_INT(pcd_compare(reps, labels, 9, &cmp, &err), PC_ERR_INVALID);
	CHECK(!strcmp(err.where, "reports"));
	CHECK(cmp == NULL);
	json_decref(a);
	json_decref(junk);
}
