/* A study in shards (analysis.h, shard.h): prefix, parts and merge give
 * the unsharded report byte for byte (the timing aside), for one shard,
 * three, and more shards than items; corrupt stored forms are refused
 * with the byte offset or the field. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "paracorr/analysis.h"
#include "paracorr/onnx.h"
#include "paracorr/report.h"
#include "paracorr/shard.h"
#include "test.h"

#define CHECK_STR(a, b) CHECK_MSG(strcmp((a), (b)) == 0, "%s == \"%s\", expected \"%s\"", #a, (a), (b))

/* Every kind of item: settings of model, tensor and layer groups, a
 * multi-step block with a critical radius, the bit faults and the
 * curvature. */
static const char *spec_text =
    "{\"model\": \"m\", \"dataset\": {\"inputs\": \"x\", \"labels\": \"y\"}, \"limit\": 120, \"batch_size\": 32,"
    " \"seed\": 7, \"corruption\": [{\"norms\": [\"l2\", \"linf\"], \"epsilons\": [0.05, 0.5], \"sparsity\": [0, 50],"
    " \"random_trials\": 2, \"groups\": [\"model\", \"tensor\", \"layer\"]},"
    " {\"norms\": [\"l1\"], \"epsilons\": [0.5, 2.0], \"steps\": 2, \"random_trials\": 1, \"groups\": [\"model\", "
    "\"layer\"],"
    " \"critical\": {\"accuracy_drop\": 0.05}}],"
    " \"faults\": {\"formats\": [\"int8\"], \"ber\": [0.01], \"trials\": 1, \"groups\": [\"model\"]},"
    " \"curvature\": {\"eigenvalues\": 1, \"iterations\": 4, \"trace_samples\": 2, \"groups\": [\"layer\"]}}";

struct fx {
	struct pc_graph *g;
	struct pc_dataset *d;
	struct pc_spec spec;
	int spec_ok;
};

static int fx_load(struct pc_test *t, struct fx *f)
{
	struct pc_error err = {0};
	char path[512], msg[800];
	json_t *root = json_loads(spec_text, 0, NULL);

	memset(f, 0, sizeof(*f));
	snprintf(path, sizeof(path), "%s/" FIX "cnn_op17.onnx", pc_test_root());
	if (!root || pc_spec_parse(root, &f->spec, &err) || (f->spec_ok = 1, 0) ||
	    pc_onnx_load_file(path, &f->g, &err) || pc_dataset_load(T10K_X, T10K_Y, NULL, 120, &f->d, &err)) {
		pc_test_fail(t, __FILE__, __LINE__, "%s", pc_error_format(&err, msg, sizeof(msg)));
		json_decref(root);
		return 0;
	}
	json_decref(root);
	return 1;
}

static void fx_free(struct fx *f)
{
	if (f->spec_ok)
		pc_spec_free(&f->spec);
	pc_dataset_free(f->d);
	pc_graph_free(f->g);
}

/* The report's text without its timing, as the daemon dumps it. */
static char *text_of(json_t *report)
{
	char *s;

	json_object_del(report, "timing");
	s = pc_report_dumps(report, JSON_INDENT(2) | JSON_REAL_PRECISION(17));
	json_decref(report);
	return s;
}

static void opts(struct pc_study_opts *o, int threads)
{
	pc_study_opts_default(o);
	o->threads = threads;
	o->timing_seconds = 0;
}

/* The study in n shards through the stored forms; the merged report's
 * text, *shards_run the shards it ran in. */
static char *sharded(struct pc_test *t, struct fx *f, int n, int *shards_run)
{
	struct pc_error err = {0};
	struct pc_study_opts o;
	struct pc_study_prefix *pre = NULL, *pre2 = NULL;
	unsigned char *buf = NULL;
	size_t len = 0;
	json_t *parts[PC_SHARD_MAX] = {0}, *report = NULL;
	int64_t items = 0;
	int k = 0, ok = 0;
	char msg[800];

	opts(&o, 2);
	if (pc_study_items(f->g, &f->spec, &items, &err) || pc_study_prefix_run(f->g, f->d, &f->spec, &o, &pre, &err) ||
	    pc_shard_prefix_encode(pre, &buf, &len, &err) ||
	    pc_shard_prefix_decode(buf, len, pc_graph_param_count(f->g), &pre2, &err))
		goto out;
	k = pc_shard_count(n, items);
	for (int i = 0; i < k; i++) {
		int64_t a, b;
		json_t *part = NULL;
		char *text = NULL;

		pc_shard_range(i, k, items, &a, &b);
		/* the thread count of a shard changes no number */
		opts(&o, 1 + i % 2);
		if (pc_study_shard_run(f->g, f->d, &f->spec, &o, pre2, a, b, &part, &err) ||
		    pc_shard_part_encode(part, &text, &err)) {
			json_decref(part);
			goto out;
		}
		json_decref(part);
		if (pc_shard_part_decode(text, strlen(text), &parts[i], &err)) {
			free(text);
			goto out;
		}
		free(text);
	}
	opts(&o, 1);
	if (pc_study_merge(f->g, f->d, &f->spec, &o, pre2, parts, k, &report, &err))
		goto out;
	CHECK_INT(json_integer_value(json_object_get(json_object_get(report, "timing"), "shards")), k);
	ok = 1;
out:
	if (!ok)
		pc_test_fail(t, __FILE__, __LINE__, "shards %d: %s", n, pc_error_format(&err, msg, sizeof(msg)));
	for (int i = 0; i < k; i++)
		json_decref(parts[i]);
	free(buf);
	pc_study_prefix_free(pre);
	pc_study_prefix_free(pre2);
	*shards_run = k;
	return ok ? text_of(report) : NULL;
}

TEST(shard_report_equals_unsharded)
{
	struct fx f;
	struct pc_error err = {0};
	struct pc_study_opts o;
	json_t *whole = NULL;
	char *want, *got;
	int64_t items = 0;
	int k;

	if (!fx_load(t, &f))
		return;
	opts(&o, 2);
	REQUIRE(pc_study_run(f.g, f.d, &f.spec, &o, &whole, &err) == PC_OK);
	REQUIRE(pc_study_items(f.g, &f.spec, &items, &err) == PC_OK);
	/* cnn_op17: model + 10 tensors + 5 layers at 2 norms x 2 sparsities,
	 * model + 5 layers at one; faults; curvature */
	CHECK_INT(items, 16 * 4 + 6 + 2);
	want = text_of(whole);
	REQUIRE(want);
	got = sharded(t, &f, 1, &k);
	CHECK_INT(k, 1);
	CHECK(got && strcmp(got, want) == 0);
	free(got);
	got = sharded(t, &f, 3, &k);
	CHECK_INT(k, 3);
	CHECK(got && strcmp(got, want) == 0);
	free(got);
	/* more shards than items: one item each */
	got = sharded(t, &f, 64, &k);
	CHECK_INT(k, 64);
	CHECK(got && strcmp(got, want) == 0);
	free(got);
	free(want);
	fx_free(&f);
}

TEST(shard_count_and_ranges)
{
	int64_t a, b, next = 0;

	CHECK_INT(pc_shard_count(3, 72), 3);
	CHECK_INT(pc_shard_count(64, 5), 5);
	CHECK_INT(pc_shard_count(0, 5), 1);
	CHECK_INT(pc_shard_count(3, 0), 1);
	for (int i = 0; i < 7; i++) {
		pc_shard_range(i, 7, 72, &a, &b);
		CHECK_INT(a, next);
		CHECK(b > a);
		next = b;
	}
	CHECK_INT(next, 72);
}

TEST(shard_corrupt_forms_refused)
{
	struct pc_study_prefix p = {0}, *q = NULL;
	float grad[3] = {1.5f, -2.0f, 0.25f};
	struct pc_error err = {0};
	unsigned char *buf = NULL;
	size_t len = 0;
	json_t *part = NULL;

	p.count = 3;
	p.grad = grad;
	p.clean.samples = 10;
	p.clean.loss = 0.5;
	REQUIRE(pc_shard_prefix_encode(&p, &buf, &len, &err) == PC_OK);
	CHECK_INT(len, 88 + 12);
	REQUIRE(pc_shard_prefix_decode(buf, len, 3, &q, &err) == PC_OK);
	CHECK(q->grad[1] == -2.0f && q->clean.loss == 0.5 && q->clean.samples == 10);
	pc_study_prefix_free(q);
	q = NULL;
	/* the gradient ends early */
	memset(&err, 0, sizeof(err));
	CHECK_INT(pc_shard_prefix_decode(buf, len - 1, 3, &q, &err), PC_ERR_FORMAT);
	CHECK_STR(err.where, "byte 99");
	CHECK(strstr(err.text, "ends early") != NULL);
	/* another model's prefix */
	memset(&err, 0, sizeof(err));
	CHECK_INT(pc_shard_prefix_decode(buf, len, 4, &q, &err), PC_ERR_FORMAT);
	CHECK_STR(err.where, "byte 16");
	memset(&err, 0, sizeof(err));
	buf[8] = 2;
	CHECK_INT(pc_shard_prefix_decode(buf, len, 3, &q, &err), PC_ERR_FORMAT);
	CHECK_STR(err.where, "byte 8");
	memset(&err, 0, sizeof(err));
	CHECK_INT(pc_shard_prefix_decode(buf, 40, 3, &q, &err), PC_ERR_FORMAT);
	CHECK_STR(err.text, "prefix state: byte 40: the header ends early (88 bytes)");
	buf[0] = 'X';
	memset(&err, 0, sizeof(err));
	CHECK_INT(pc_shard_prefix_decode(buf, len, 3, &q, &err), PC_ERR_FORMAT);
	CHECK_STR(err.where, "byte 0");
	CHECK(q == NULL);
	free(buf);

	/* a part cut short, and one of another format */
	{
		const char *good = "{\"format\": \"paracorr-shard\", \"version\": 1, \"part\": {\"first\": 0}}";
		memset(&err, 0, sizeof(err));
		CHECK_INT(pc_shard_part_decode(good, 30, &part, &err), PC_ERR_FORMAT);
		CHECK_STR(err.where, "byte 30");
		memset(&err, 0, sizeof(err));
		CHECK_INT(pc_shard_part_decode("{\"format\": \"x\"}", 15, &part, &err), PC_ERR_FORMAT);
		CHECK_STR(err.where, "format");
		memset(&err, 0, sizeof(err));
		CHECK_INT(pc_shard_part_decode(good, strlen(good), &part, &err), PC_OK);
		json_decref(part);
	}
}

/* Parts that do not tile the items, or carry other rows, are refused
 * naming the part and the field. */
TEST(shard_merge_checks_parts)
{
	struct fx f;
	struct pc_error err = {0};
	struct pc_study_opts o;
	struct pc_study_prefix *pre = NULL;
	json_t *parts[2] = {0}, *report = NULL;
	int64_t items = 0;

	if (!fx_load(t, &f))
		return;
	opts(&o, 2);
	REQUIRE(pc_study_items(f.g, &f.spec, &items, &err) == PC_OK);
	REQUIRE(pc_study_prefix_run(f.g, f.d, &f.spec, &o, &pre, &err) == PC_OK);
	REQUIRE(pc_study_shard_run(f.g, f.d, &f.spec, &o, pre, 0, 2, &parts[0], &err) == PC_OK);
	REQUIRE(pc_study_shard_run(f.g, f.d, &f.spec, &o, pre, 2, 4, &parts[1], &err) == PC_OK);
	/* two parts that stop at item 4 */
	CHECK_INT(pc_study_merge(f.g, f.d, &f.spec, &o, pre, parts, 2, &report, &err), PC_ERR_FORMAT);
	CHECK_STR(err.text, "the parts end at item 4 of 72");
	/* the second part alone does not start at item 0 */
	memset(&err, 0, sizeof(err));
	CHECK_INT(pc_study_merge(f.g, f.d, &f.spec, &o, pre, parts + 1, 1, &report, &err), PC_ERR_FORMAT);
	CHECK_STR(err.text, "part 0: items [2, 4) do not follow item 0 of 72");
	/* a row lost */
	memset(&err, 0, sizeof(err));
	json_array_remove(json_object_get(parts[0], "results"), 0);
	CHECK_INT(pc_study_merge(f.g, f.d, &f.spec, &o, pre, parts, 2, &report, &err), PC_ERR_FORMAT);
	CHECK_STR(err.text, "part 0: 3 result and 0 critical rows where items [0, 2) make 4 and 0");
	/* a prefix of other clean numbers */
	memset(&err, 0, sizeof(err));
	pre->clean.loss += 1e-9;
	json_decref(parts[1]);
	parts[1] = NULL;
	CHECK_INT(pc_study_shard_run(f.g, f.d, &f.spec, &o, pre, 2, 4, &parts[1], &err), PC_ERR_CONFLICT);
	CHECK_STR(err.where, "prefix");
	CHECK(report == NULL);
	json_decref(parts[0]);
	json_decref(parts[1]);
	pc_study_prefix_free(pre);
	fx_free(&f);
}
