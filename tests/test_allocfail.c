/* Out of memory at every allocation (allocfail.c's injector): the ONNX
 * loader with plan creation on an MLP, a CNN, an LSTM and an attention
 * block; every dataset format, gzip included; a small study from its spec
 * file to the report's text. Each run that loses an allocation must return
 * PC_ERR_NOMEM with a message and leave nothing allocated; the run that
 * loses none must succeed. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "allocfail.h"
#include "be_util.h"
#include "onnx_build.h"
#include "paracorr/analysis.h"
#include "paracorr/data.h"
#include "paracorr/onnx.h"
#include "paracorr/plan.h"
#include "paracorr/report.h"
#include "paracorr/spec.h"
#include "test.h"


/* ---- the ONNX loader and the plan ---- */

struct model_run {
	char path[PATH_MAX];
	unsigned flags;
};

static int run_model(void *arg, struct pc_error *err)
{
	const struct model_run *m = arg;
	struct pc_graph *g = NULL;
	struct pc_plan *p;
	int rc;

	if ((rc = pc_onnx_load_file(m->path, &g, err)))
		return rc;
	p = pc_plan_new(g, 2, m->flags, err);
	rc = p ? PC_OK : err->code;
	pc_plan_free(p);
	pc_graph_free(g);
	return rc;
}

static void sweep_model(struct pc_test *t, const char *name, unsigned flags)
{
	struct model_run m = {.flags = flags};

	snprintf(m.path, sizeof(m.path), "%s/" FIX "%s", pc_test_root(), name);
	CHECK_MSG(af_sweep(t, name, run_model, &m) > 0, "%s: the sweep did not complete", name);
}

TEST(allocfail_onnx_mlp)
{
	sweep_model(t, "mlp_op13.onnx", PC_PLAN_GRAD);
}

TEST(allocfail_onnx_cnn)
{
	sweep_model(t, "cnn_bn_tiny_op17.onnx", PC_PLAN_GRAD);
}

TEST(allocfail_onnx_lstm)
{
	sweep_model(t, "lstm_bf0_h0_op17.onnx", PC_PLAN_GRAD);
}

/* a GPT block: LayerNorm, attention's MatMul, Softmax and Transpose */
TEST(allocfail_onnx_attention)
{
	sweep_model(t, "ln_attn_op17.onnx", PC_PLAN_GRAD | PC_PLAN_INPUT_GRAD);
}

/* ---- the dataset loaders ---- */

struct data_run {
	const void *x, *y;
	size_t x_len, y_len;
	const char *x_path, *y_path; /* from files instead, when set */
	struct pc_preprocess pp;
	int64_t want_n; /* the complete run's sample count */
};

static int run_data(void *arg, struct pc_error *err)
{
	const struct data_run *r = arg;
	struct pc_dataset *d = NULL;
	int rc;

	rc = r->x_path ? pc_dataset_load(r->x_path, r->y_path, &r->pp, 0, &d, err)
		       : pc_dataset_load_memory(r->x, r->x_len, r->y, r->y_len, &r->pp, 0, &d, err);
	if (!rc && d->n != r->want_n)
		rc = pc_error_set(err, PC_ERR_INTERNAL, "test", "%lld samples, expected %lld", (long long)d->n,
				  (long long)r->want_n);
	pc_dataset_free(d);
	return rc;
}

/* One gzip member holding p[0..len). */
static unsigned char *gzip_of(const void *p, size_t len, size_t *out_len)
{
	z_stream zs = {0};
	size_t cap = len + 128;
	unsigned char *out = malloc(cap);

	if (!out || deflateInit2(&zs, 9, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
		free(out);
		return NULL;
	}
	zs.next_in = (unsigned char *)(uintptr_t)p;
	zs.avail_in = (uInt)len;
	zs.next_out = out;
	zs.avail_out = (uInt)cap;
	if (deflate(&zs, Z_FINISH) != Z_STREAM_END) {
		deflateEnd(&zs);
		free(out);
		return NULL;
	}
	*out_len = cap - zs.avail_out;
	deflateEnd(&zs);
	return out;
}

/* 4 samples of 2x3 uint8, labels 0..2 */
static const unsigned char idx_x[] = {0, 0, 8, 3, 0, 0, 0, 4, 0, 0, 0, 2, 0, 0, 0, 3, 1,  2,  3,  4,  5,  6,
				      7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24};
static const unsigned char idx_y[] = {0, 0, 8, 1, 0, 0, 0, 4, 0, 1, 2, 1};

/* NPY 1.0: a header padded to 128 bytes, then data */
static size_t npy_build(unsigned char *out, const char *descr, const char *shape, const void *data, size_t dlen)
{
	char dict[118];
	int n = snprintf(dict, sizeof(dict), "{'descr': '%s', 'fortran_order': False, 'shape': %s, }", descr, shape);
	size_t hl = 128 - 10;

	memcpy(out, "\x93NUMPY\x01\x00", 8);
	out[8] = (unsigned char)hl;
	out[9] = 0;
	memset(out + 10, ' ', hl);
	memcpy(out + 10, dict, (size_t)n);
	out[10 + hl - 1] = '\n';
	memcpy(out + 128, data, dlen);
	return 128 + dlen;
}

static void sweep_data(struct pc_test *t, const char *what, struct data_run *r)
{
	CHECK_MSG(af_sweep(t, what, run_data, r) > 0, "%s: the sweep did not complete", what);
}

TEST(allocfail_data_idx_and_gzip)
{
	struct data_run r = {.x = idx_x, .x_len = sizeof(idx_x), .y = idx_y, .y_len = sizeof(idx_y), .want_n = 4};
	unsigned char *gx, *gy;
	size_t gx_len, gy_len;

	pc_preprocess_default(&r.pp);
	sweep_data(t, "IDX", &r);
	gx = gzip_of(idx_x, sizeof(idx_x), &gx_len);
	gy = gzip_of(idx_y, sizeof(idx_y), &gy_len);
	REQUIRE(gx && gy);
	r.x = gx, r.x_len = gx_len, r.y = gy, r.y_len = gy_len;
	sweep_data(t, "IDX, gzipped", &r);
	free(gx);
	free(gy);
}

TEST(allocfail_data_npy_and_gzip)
{
	static const float xf[4 * 3] = {0.5f, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11};
	static const int64_t yl[4] = {0, 1, 2, 1};
	static const int64_t tok[2 * 5] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 0};
	static const int64_t tok_y[2 * 5] = {2, 3, 4, 5, -100, 7, 8, 9, 0, 1};
	unsigned char x[256], y[256], *gx;
	size_t xl, yl_len, gx_len;
	struct data_run r = {.want_n = 4};

	pc_preprocess_default(&r.pp);
	xl = npy_build(x, "<f4", "(4, 3)", xf, sizeof(xf));
	yl_len = npy_build(y, "<i8", "(4,)", yl, sizeof(yl));
	r.x = x, r.x_len = xl, r.y = y, r.y_len = yl_len;
	sweep_data(t, "NPY float32", &r);
	gx = gzip_of(x, xl, &gx_len);
	REQUIRE(gx);
	r.x = gx, r.x_len = gx_len;
	sweep_data(t, "NPY float32, gzipped", &r);
	free(gx);
	/* token ids with a label per token */
	xl = npy_build(x, "<i8", "(2, 5)", tok, sizeof(tok));
	yl_len = npy_build(y, "<i8", "(2, 5)", tok_y, sizeof(tok_y));
	r.x = x, r.x_len = xl, r.y = y, r.y_len = yl_len, r.want_n = 2;
	r.pp.inputs = PC_DATA_INPUTS_TOKENS;
	r.pp.labels = PC_DATA_LABELS_TOKEN;
	sweep_data(t, "NPY token ids", &r);
}

TEST(allocfail_data_csv)
{
	static const char csv[] = "a,b,label\n0.5,1,0\n2,3,1\n4,5,2\n6,7,1\n";
	struct data_run r = {.x = csv, .x_len = sizeof(csv) - 1, .want_n = 4};

	pc_preprocess_default(&r.pp);
	sweep_data(t, "CSV", &r);
}

TEST(allocfail_data_safetensors)
{
	static const char header[] = "{\"__metadata__\": {\"format\": \"pt\"}, \"inputs\": {\"dtype\": \"F32\", "
				     "\"shape\": [3, 2], \"data_offsets\": [0, 24]}, \"labels\": {\"dtype\": \"I64\", "
				     "\"shape\": [3], \"data_offsets\": [24, 48]}}";
	static const float xf[6] = {1, 2, 3, 4, 5, 6};
	static const int64_t yl[3] = {0, 2, 1};
	size_t h = strlen(header), hp = (h + 7) / 8 * 8;
	unsigned char b[512];
	struct data_run r = {.x = b, .x_len = 8 + hp + sizeof(xf) + sizeof(yl), .want_n = 3};

	REQUIRE(r.x_len <= sizeof(b));
	for (int i = 0; i < 8; i++)
		b[i] = (unsigned char)((uint64_t)hp >> (8 * i));
	memcpy(b + 8, header, h);
	memset(b + 8 + h, ' ', hp - h);
	memcpy(b + 8 + hp, xf, sizeof(xf));
	memcpy(b + 8 + hp + sizeof(xf), yl, sizeof(yl));
	pc_preprocess_default(&r.pp);
	sweep_data(t, "safetensors", &r);
}

/* pc_dataset_load's own reading, of a plain and a gzipped file */
TEST(allocfail_data_files)
{
	char dir[PATH_MAX - 32], xp[PATH_MAX], yp[PATH_MAX];
	struct data_run r = {.x_path = xp, .y_path = yp, .want_n = 4};
	unsigned char *gx;
	size_t gx_len;
	FILE *f;

	REQUIRE(be_tmpdir(dir, sizeof(dir)));
	gx = gzip_of(idx_x, sizeof(idx_x), &gx_len);
	REQUIRE(gx);
	snprintf(xp, sizeof(xp), "%s/x.idx.gz", dir);
	snprintf(yp, sizeof(yp), "%s/y.idx", dir);
	f = fopen(xp, "wb");
	REQUIRE(f);
	CHECK_INT(fwrite(gx, 1, gx_len, f), gx_len);
	fclose(f);
	free(gx);
	f = fopen(yp, "wb");
	REQUIRE(f);
	CHECK_INT(fwrite(idx_y, 1, sizeof(idx_y), f), sizeof(idx_y));
	fclose(f);
	pc_preprocess_default(&r.pp);
	sweep_data(t, "IDX files", &r);
	be_rmtree(dir);
}

/* ---- a small study ---- */

struct study_run {
	const struct pc_graph *g;
	const struct pc_dataset *d;
	char spec_path[PATH_MAX];
	char *want; /* the report's text from a run before the sweep */
};

static int run_study(void *arg, struct pc_error *err)
{
	struct study_run *s = arg;
	struct pc_spec spec;
	struct pc_study_opts o;
	json_t *report = NULL;
	char *text = NULL;
	int rc;

	if ((rc = pc_spec_parse_file(s->spec_path, &spec, err)))
		return rc;
	pc_study_opts_default(&o);
	o.timing_seconds = 0;
	rc = pc_study_run(s->g, s->d, &spec, &o, &report, err);
	pc_spec_free(&spec);
	if (rc)
		return rc;
	text = pc_report_dumps(report, JSON_SORT_KEYS | JSON_COMPACT);
	json_decref(report);
	if (!text)
		return pc_error_set(err, PC_ERR_NOMEM, "report", "out of memory writing the report");
	if (s->want && strcmp(text, s->want) != 0) {
		size_t at = 0;
		while (text[at] == s->want[at])
			at++;
		at = at > 60 ? at - 60 : 0;
		rc = pc_error_set(err, PC_ERR_INTERNAL, "report", "the report differs from the reference: ...%.120s... for ...%.120s...",
				  text + at, s->want + at);
	}
	if (!s->want)
		s->want = text;
	else
		free(text);
	return rc;
}

/* Every allocation of the study of spec_text on a tiny MLP fails in turn:
 * each is a clean PC_ERR_NOMEM, and the rest of the run, once it works,
 * gives the reference report byte for byte. want_a and want_b must be in
 * the reference report. */
static void study_sweep(struct pc_test *t, const char *what, const char *spec_text, const char *want_a,
			const char *want_b)
{
	static const float xf[5 * 4] = {1, 0, 2, 1, 0, 1, 1, 3, 2, 2, 0, 1, 3, 1, 0, 0, 1, 2, 3, 4};
	static const int64_t yl[5] = {0, 1, 2, 1, 0};
	unsigned char x[256], y[256], *model;
	size_t xl, yl_len, model_len;
	char dir[PATH_MAX - 32], msg[800];
	struct pc_error err = {0};
	struct pc_graph *g = NULL;
	struct pc_dataset *d = NULL;
	struct study_run s = {0};
	struct ob_model b;
	FILE *f;

	ob_mlp(&b);
	model = ob_pack(&b, &model_len);
	REQUIRE(model);
	xl = npy_build(x, "<f4", "(5, 4)", xf, sizeof(xf));
	yl_len = npy_build(y, "<i8", "(5,)", yl, sizeof(yl));
	if (pc_onnx_load_buffer(model, model_len, &g, &err) ||
	    pc_dataset_load_memory(x, xl, y, yl_len, NULL, 0, &d, &err)) {
		free(model);
		pc_graph_free(g);
		REQUIRE_MSG(0, "fixture: %s", pc_error_format(&err, msg, sizeof(msg)));
	}
	free(model);
	REQUIRE(be_tmpdir(dir, sizeof(dir)));
	snprintf(s.spec_path, sizeof(s.spec_path), "%s/spec.json", dir);
	f = fopen(s.spec_path, "w");
	REQUIRE(f);
	fputs(spec_text, f);
	fclose(f);
	s.g = g;
	s.d = d;
	/* the reference report, then every allocation of the same run fails in turn */
	CHECK_INT(run_study(&s, &err), PC_OK);
	REQUIRE_MSG(s.want, "reference run: %s", pc_error_format(&err, msg, sizeof(msg)));
	CHECK_MSG(strstr(s.want, want_a) != NULL, "no %s in the reference report", want_a);
	CHECK_MSG(strstr(s.want, want_b) != NULL, "no %s in the reference report", want_b);
	CHECK_MSG(af_sweep(t, what, run_study, &s) > 0, "%s: the sweep did not complete", what);
	free(s.want);
	pc_dataset_free(d);
	pc_graph_free(g);
	be_rmtree(dir);
}

TEST(allocfail_study)
{
	study_sweep(t, "study",
		    "{\"model\": \"m\", \"dataset\": {\"inputs\": \"x\", \"labels\": \"y\"}, \"batch_size\": 2, "
		    "\"seed\": 5, \"corruption\": [{\"groups\": [\"model\", \"layer\"], \"norms\": [\"l2\", \"linf\"], "
		    "\"epsilons\": [0.1, 0.5, 2.0], \"sparsity\": [0, 50], \"random_trials\": 2}, "
		    "{\"groups\": [\"tensor\"], \"norms\": [\"l2\"], \"epsilons\": [0.5], \"steps\": 2, "
		    "\"random_trials\": 1}]}",
		    "\"random\":{", "\"ranking\":[");
}

/* The bit-fault study: formats, random trials, bit positions and searches
 * over the model, its layer and its tensors. */
TEST(allocfail_study_faults)
{
	study_sweep(t, "faults study",
		    "{\"model\": \"m\", \"dataset\": {\"inputs\": \"x\", \"labels\": \"y\"}, \"batch_size\": 2, "
		    "\"seed\": 5, \"corruption\": [], \"faults\": {\"formats\": [\"int8\", \"float16\"], "
		    "\"quantization\": \"per_channel\", \"ber\": [0.01, 0.1], \"trials\": 2, \"bits\": {\"weights\": 2, "
		    "\"trials\": 1}, \"groups\": [\"model\", \"tensor\"], \"search\": {\"target_accuracy\": 0, "
		    "\"max_flips\": 2}}}",
		    "\"faults\":{", "\"search\":[{");
}

/* The curvature study: Lanczos and Hutchinson for the model and its
 * tensors, and the second-order estimate of one-step and multi-step rows. */
TEST(allocfail_study_curvature)
{
	study_sweep(t, "curvature study",
		    "{\"model\": \"m\", \"dataset\": {\"inputs\": \"x\", \"labels\": \"y\"}, \"batch_size\": 2, "
		    "\"seed\": 5, \"corruption\": [{\"groups\": [\"model\"], \"norms\": [\"l2\"], \"epsilons\": [0.1, 0.5], "
		    "\"random_trials\": 1}, {\"groups\": [\"layer\"], \"norms\": [\"linf\"], \"epsilons\": [0.2], "
		    "\"steps\": 2, \"random_trials\": 0}], \"curvature\": {\"eigenvalues\": 2, \"iterations\": 6, "
		    "\"trace_samples\": 3, \"groups\": [\"tensor\"]}}",
		    "\"curvature\":{", "\"second_order\":");
}
