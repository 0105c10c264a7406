/* gen_seeds: writes the seed inputs that are made rather than committed,
 * from the fixtures (run from the project root):
 *
 *   gen_seeds OUT
 *
 * OUT/onnx/     models nested Graph > Node > Attribute.g > Graph ... at
 *               depths around PC_ONNX_MAX_NESTING and far beyond, so the
 *               fuzzer starts where the depth check is (the fixture models
 *               themselves are copied by run.sh);
 * OUT/data/     every dataset format (IDX, gzip IDX, NPY, CSV, safetensors,
 *               token NPY) in the target's layout: a mode byte, a 4-byte
 *               inputs length, inputs, labels (targets.h);
 * OUT/ckpt/     checkpoints as job.c writes them, with a mode byte;
 * OUT/charts/   a harden report made of api/examples/demo-report.json;
 * OUT/http/     whole requests: the uploads of a fixture model and dataset
 *               (octet-stream, multipart) and a job that names their ids,
 *               alone and pipelined on one connection.
 *
 * Deterministic: the same tree gives the same bytes. */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#include "sha256.h"

static const char *out_dir;

struct buf {
	unsigned char *p;
	size_t n, cap;
};

static void put(struct buf *b, const void *data, size_t n)
{
	if (b->n + n > b->cap) {
		size_t cap = (b->n + n) * 2 + 64;
		unsigned char *p = realloc(b->p, cap);

		if (!p) {
			fprintf(stderr, "gen_seeds: out of memory\n");
			exit(1);
		}
		b->p = p;
		b->cap = cap;
	}
	if (n)
		memcpy(b->p + b->n, data, n);
	b->n += n;
}

static void puts_(struct buf *b, const char *s)
{
	put(b, s, strlen(s));
}

static void put_u32le(struct buf *b, uint32_t v)
{
	unsigned char c[4] = {(unsigned char)v, (unsigned char)(v >> 8), (unsigned char)(v >> 16),
			      (unsigned char)(v >> 24)};

	put(b, c, 4);
}

static void put_u32be(struct buf *b, uint32_t v)
{
	unsigned char c[4] = {(unsigned char)(v >> 24), (unsigned char)(v >> 16), (unsigned char)(v >> 8),
			      (unsigned char)v};

	put(b, c, 4);
}

static void write_seed(const char *target, const char *name, const void *data, size_t n)
{
	char path[1024];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", out_dir, target);
	if (mkdir(path, 0755) && errno != EEXIST) {
		perror(path);
		exit(1);
	}
	snprintf(path, sizeof(path), "%s/%s/%s", out_dir, target, name);
	if (!(f = fopen(path, "wb")) || fwrite(data, 1, n, f) != n || fclose(f)) {
		perror(path);
		exit(1);
	}
}

static void read_file(const char *path, struct buf *b)
{
	unsigned char chunk[65536];
	FILE *f = fopen(path, "rb");
	size_t k;

	b->n = 0;
	if (!f) {
		perror(path);
		exit(1);
	}
	while ((k = fread(chunk, 1, sizeof(chunk), f)) > 0)
		put(b, chunk, k);
	fclose(f);
}

/* --- ONNX: deep nesting ---------------------------------------------------- */

static void put_varint(struct buf *b, uint64_t v)
{
	unsigned char c;

	do {
		c = (unsigned char)(v & 0x7f);
		v >>= 7;
		if (v)
			c |= 0x80;
		put(b, &c, 1);
	} while (v);
}

/* field `field` of wire type 2 holding msg */
static void put_len(struct buf *b, unsigned field, const struct buf *msg)
{
	put_varint(b, (uint64_t)field << 3 | 2);
	put_varint(b, msg->n);
	put(b, msg->p, msg->n);
}

static void put_str(struct buf *b, unsigned field, const char *s)
{
	struct buf m = {(unsigned char *)s, strlen(s), 0};

	put_len(b, field, &m);
}

static void put_int(struct buf *b, unsigned field, uint64_t v)
{
	put_varint(b, (uint64_t)field << 3);
	put_varint(b, v);
}

/* A model whose graph holds an If node whose attribute holds a graph ...
 * `levels` times: the innermost graph is at nesting 1 + 3 * levels. */
static void onnx_deep(int levels)
{
	struct buf g = {0}, node = {0}, attr = {0}, model = {0}, opset = {0};
	char name[64];

	put_str(&g, 2, "inner"); /* GraphProto.name */
	for (int i = 0; i < levels; i++) {
		attr.n = node.n = 0;
		put_str(&attr, 1, "then_branch"); /* AttributeProto.name */
		put_int(&attr, 20, 5);		  /* type GRAPH */
		put_len(&attr, 6, &g);		  /* g */
		put_str(&node, 4, "If");	  /* NodeProto.op_type */
		put_str(&node, 1, "cond");	  /* input */
		put_str(&node, 2, "out");	  /* output */
		put_len(&node, 5, &attr);	  /* attribute */
		g.n = 0;
		put_len(&g, 1, &node); /* GraphProto.node */
		put_str(&g, 2, "g");
	}
	put_int(&model, 1, 8);	    /* ir_version */
	put_int(&opset, 2, 13);	    /* OperatorSetIdProto.version */
	put_len(&model, 8, &opset); /* opset_import */
	put_str(&model, 2, "pytorch");
	put_len(&model, 7, &g); /* graph */
	snprintf(name, sizeof(name), "deep_%d", levels);
	write_seed("onnx", name, model.p, model.n);
	free(g.p);
	free(node.p);
	free(attr.p);
	free(model.p);
	free(opset.p);
}

/* --- datasets -------------------------------------------------------------- */

static void data_seed(const char *name, unsigned mode, const struct buf *inputs, const struct buf *labels)
{
	struct buf s = {0};
	unsigned char m = (unsigned char)(mode | (labels ? 0x10 : 0));

	put(&s, &m, 1);
	if (labels)
		put_u32le(&s, (uint32_t)inputs->n);
	put(&s, inputs->p, inputs->n);
	if (labels)
		put(&s, labels->p, labels->n);
	write_seed("data", name, s.p, s.n);
	free(s.p);
}

static void idx(struct buf *b, unsigned char type, int ndim, const uint32_t *dims, const void *data, size_t n)
{
	unsigned char h[4] = {0, 0, type, (unsigned char)ndim};

	b->n = 0;
	put(b, h, 4);
	for (int i = 0; i < ndim; i++)
		put_u32be(b, dims[i]);
	put(b, data, n);
}

static void npy(struct buf *b, const char *descr, const char *shape, const void *data, size_t n)
{
	char h[256];
	int len = snprintf(h, sizeof(h), "{'descr': '%s', 'fortran_order': False, 'shape': %s, }", descr, shape);
	unsigned char pre[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, 0, 0};
	int total = 10 + len + 1, pad = (64 - total % 64) % 64;

	b->n = 0;
	pre[8] = (unsigned char)((len + 1 + pad) & 0xff);
	pre[9] = (unsigned char)((len + 1 + pad) >> 8);
	put(b, pre, 10);
	put(b, h, (size_t)len);
	for (int i = 0; i < pad; i++)
		put(b, " ", 1);
	put(b, "\n", 1);
	put(b, data, n);
}

static void gzip_of(const struct buf *in, struct buf *out)
{
	z_stream z;
	unsigned char chunk[4096];
	int rc;

	memset(&z, 0, sizeof(z));
	out->n = 0;
	if (deflateInit2(&z, 9, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
		exit(1);
	z.next_in = in->p;
	z.avail_in = (uInt)in->n;
	do {
		z.next_out = chunk;
		z.avail_out = sizeof(chunk);
		rc = deflate(&z, Z_FINISH);
		put(out, chunk, sizeof(chunk) - z.avail_out);
	} while (rc == Z_OK);
	deflateEnd(&z);
}

static void data_seeds(void)
{
	unsigned char img[4 * 3 * 3], lab[4] = {0, 1, 2, 1};
	float f[4 * 3 * 3];
	int64_t lab64[4] = {0, 1, 2, 1}, tok[3 * 5], tlab[3 * 5];
	uint32_t dims3[3] = {4, 3, 3}, dims1[1] = {4};
	struct buf a = {0}, b = {0}, ga = {0}, gb = {0};

	for (int i = 0; i < 36; i++) {
		img[i] = (unsigned char)(i * 7);
		f[i] = (float)i / 36.0f - 0.5f;
	}
	for (int i = 0; i < 15; i++) {
		tok[i] = i % 6;
		tlab[i] = i % 5 == 4 ? -100 : (i + 1) % 6;
	}
	idx(&a, 0x08, 3, dims3, img, sizeof(img));
	idx(&b, 0x08, 1, dims1, lab, sizeof(lab));
	data_seed("idx_u8", 0, &a, &b);
	gzip_of(&a, &ga);
	gzip_of(&b, &gb);
	data_seed("idx_u8_gz", 0, &ga, &gb);
	data_seed("idx_u8_gz_limit", 0x80 | 0x20, &ga, &gb);
	{
		unsigned char be[sizeof(f)];

		for (size_t i = 0; i < 36; i++) {
			uint32_t v;

			memcpy(&v, &f[i], 4);
			be[4 * i] = (unsigned char)(v >> 24);
			be[4 * i + 1] = (unsigned char)(v >> 16);
			be[4 * i + 2] = (unsigned char)(v >> 8);
			be[4 * i + 3] = (unsigned char)v;
		}
		idx(&a, 0x0D, 3, dims3, be, sizeof(be));
		data_seed("idx_f32", 0, &a, &b);
	}
	npy(&a, "|u1", "(4, 3, 3)", img, sizeof(img));
	npy(&b, "<i8", "(4,)", lab64, sizeof(lab64));
	data_seed("npy_u8", 0, &a, &b);
	gzip_of(&a, &ga);
	data_seed("npy_u8_gz", 0, &ga, &b);
	npy(&a, "<f4", "(4, 3, 3)", f, sizeof(f));
	data_seed("npy_f32", 0x20, &a, &b);
	npy(&a, "<i8", "(3, 5)", tok, sizeof(tok));
	npy(&b, "<i8", "(3, 5)", tlab, sizeof(tlab));
	data_seed("npy_tokens", 1 | 1 << 2, &a, &b);
	data_seed("npy_tokens_auto", 2 | 2 << 2, &a, &b);
	a.n = 0;
	puts_(&a, "x0,x1,x2,label\n0.5,1,2,0\n-1,2.5e-3,3,1\n4,5,6,2\n");
	data_seed("csv_header", 0, &a, NULL);
	a.n = 0;
	puts_(&a, "1,2,0\r\n3,4,1\r\n");
	data_seed("csv_crlf", 0, &a, NULL);
	{
		const char *hdr = "{\"__metadata__\":{\"k\":\"v\"},\"inputs\":{\"dtype\":\"U8\",\"shape\":[4,3,3],"
				  "\"data_offsets\":[0,36]},\"labels\":{\"dtype\":\"I64\",\"shape\":[4],"
				  "\"data_offsets\":[36,68]}}";
		uint64_t hl = strlen(hdr);
		unsigned char len8[8];

		for (int i = 0; i < 8; i++)
			len8[i] = (unsigned char)(hl >> (8 * i));
		a.n = 0;
		put(&a, len8, 8);
		puts_(&a, hdr);
		put(&a, img, sizeof(img));
		put(&a, lab64, sizeof(lab64));
		data_seed("safetensors", 0, &a, NULL);
	}
	free(a.p);
	free(b.p);
	free(ga.p);
	free(gb.p);
}

/* --- checkpoints ----------------------------------------------------------- */

static void ckpt_seed(const char *name, unsigned char mode, int64_t floats, int epochs)
{
	struct buf s = {0};
	char curve[512];
	int64_t h64[3] = {10, floats, 0};
	int32_t h32[2] = {epochs, 0};
	size_t n = 0;

	n += (size_t)snprintf(curve, sizeof(curve), "[");
	for (int e = 0; e < epochs; e++)
		n += (size_t)snprintf(curve + n, sizeof(curve) - n, "%s{\"epoch\":%d,\"loss\":0.5,\"accuracy\":90.5}",
				      e ? "," : "", e + 1);
	snprintf(curve + n, sizeof(curve) - n, "]");
	h64[2] = (int64_t)strlen(curve);
	put(&s, &mode, 1);
	put(&s, "PCCKPT1", 8);
	put(&s, h32, sizeof(h32));
	put(&s, h64, sizeof(h64));
	for (int64_t i = 0; i < floats; i++) {
		float v = (float)i * 0.25f;

		put(&s, &v, 4);
	}
	puts_(&s, curve);
	write_seed("ckpt", name, s.p, s.n);
	free(s.p);
}

/* --- charts ---------------------------------------------------------------- */

static void charts_seeds(void)
{
	json_t *rep = json_load_file("api/examples/demo-report.json", 0, NULL), *h;
	char *text;

	if (!rep) {
		fprintf(stderr, "gen_seeds: cannot read api/examples/demo-report.json\n");
		exit(1);
	}
	h = json_pack("{s:s, s:O, s:O}", "kind", "harden", "before", rep, "after", rep);
	text = json_dumps(h, JSON_COMPACT);
	write_seed("charts", "harden", text, strlen(text));
	free(text);
	json_decref(h);
	json_decref(rep);
}

/* --- HTTP ------------------------------------------------------------------ */

#define AUTH "Authorization: Bearer fuzz-token\r\n"
#define BOUNDARY "pcfuzzB0und4ry"

static void http_part(struct buf *b, const char *name, const struct buf *data)
{
	puts_(b, "--" BOUNDARY "\r\nContent-Disposition: form-data; name=\"");
	puts_(b, name);
	puts_(b, "\"; filename=\"");
	puts_(b, name);
	puts_(b, ".npy\"\r\nContent-Type: application/octet-stream\r\n\r\n");
	put(b, data->p, data->n);
	puts_(b, "\r\n");
}

static void http_request(struct buf *b, const char *method, const char *path, const char *headers,
			 const struct buf *body)
{
	char line[512];

	snprintf(line, sizeof(line), "%s %s HTTP/1.1\r\nHost: localhost\r\n%s", method, path, headers);
	puts_(b, line);
	if (body) {
		snprintf(line, sizeof(line), "Content-Length: %zu\r\n", body->n);
		puts_(b, line);
	}
	puts_(b, "\r\n");
	if (body)
		put(b, body->p, body->n);
}

static void http_seeds(void)
{
	struct buf model = {0}, inputs = {0}, labels = {0}, form = {0}, job = {0}, req = {0}, all = {0};
	char mid[65], iid[65], lid[65], did[65], spec[1024];
	struct pcd_sha256 c;
	uint8_t d[32];

	read_file("tests/reference/fixtures/seq_lm_op14.onnx", &model);
	read_file("tests/reference/fixtures/seq_tokens_i64.npy", &inputs);
	read_file("tests/reference/fixtures/seq_labels_i64.npy", &labels);
	pcd_sha256_hex_of(model.p, model.n, mid);
	pcd_sha256_hex_of(inputs.p, inputs.n, iid);
	pcd_sha256_hex_of(labels.p, labels.n, lid);
	/* as pcd_blobs_dataset_id names a dataset */
	pcd_sha256_init(&c);
	pcd_sha256_update(&c, "inputs", 7);
	pcd_sha256_update(&c, iid, 64);
	pcd_sha256_update(&c, "labels", 7);
	pcd_sha256_update(&c, lid, 64);
	pcd_sha256_final(&c, d);
	pcd_sha256_hex(d, did);

	http_request(&req, "GET", "/v1/jobs?limit=5", AUTH, NULL);
	write_seed("http", "get_jobs", req.p, req.n);
	req.n = 0;
	http_request(&req, "GET", "/healthz", "", NULL);
	http_request(&req, "GET", "/v1/models", "", NULL); /* no token: 401 */
	write_seed("http", "get_pipelined", req.p, req.n);

	req.n = 0;
	http_request(&req, "POST", "/v1/models", AUTH "Content-Type: application/octet-stream\r\n", &model);
	write_seed("http", "post_model", req.p, req.n);
	put(&all, req.p, req.n);

	http_part(&form, "inputs", &inputs);
	http_part(&form, "labels", &labels);
	puts_(&form, "--" BOUNDARY "--\r\n");
	req.n = 0;
	http_request(&req, "POST", "/v1/datasets",
		     AUTH "Content-Type: multipart/form-data; boundary=" BOUNDARY "\r\n", &form);
	write_seed("http", "post_dataset", req.p, req.n);
	put(&all, req.p, req.n);

	snprintf(spec, sizeof(spec),
		 "{\"kind\":\"analyze\",\"model\":\"%s\",\"dataset\":\"%s\",\"limit\":3,\"corruption\":"
		 "{\"norms\":[\"l2\"],\"epsilons\":[0.1],\"groups\":[\"model\"],\"random_trials\":1}}",
		 mid, did);
	puts_(&job, spec);
	req.n = 0;
	http_request(&req, "POST", "/v1/jobs", AUTH "Content-Type: application/json\r\nIdempotency-Key: k1\r\n", &job);
	write_seed("http", "post_job", req.p, req.n);
	put(&all, req.p, req.n);
	snprintf(spec, sizeof(spec), "/v1/jobs/j-1/charts/accuracy.svg");
	http_request(&all, "GET", "/v1/jobs", AUTH, NULL);
	http_request(&all, "GET", spec, AUTH, NULL);
	snprintf(spec, sizeof(spec), "/v1/models/%s", mid);
	http_request(&all, "GET", spec, AUTH, NULL);
	http_request(&all, "DELETE", spec, AUTH, NULL);
	write_seed("http", "upload_and_job", all.p, all.n);

	free(model.p);
	free(inputs.p);
	free(labels.p);
	free(form.p);
	free(job.p);
	free(req.p);
	free(all.p);
}

int main(int argc, char **argv)
{
	static const int depths[] = {1, 4, 5, 6, 40, 3000};

	if (argc != 2) {
		fprintf(stderr, "usage: gen_seeds OUT\n");
		return 2;
	}
	out_dir = argv[1];
	if (mkdir(out_dir, 0755) && errno != EEXIST) {
		perror(out_dir);
		return 1;
	}
	for (size_t i = 0; i < sizeof(depths) / sizeof(depths[0]); i++)
		onnx_deep(depths[i]);
	data_seeds();
	ckpt_seed("none", 0, 0, 1);
	ckpt_seed("seven", 2, 7, 2);
	ckpt_seed("wrong_size", 1, 7, 2);
	charts_seeds();
	http_seeds();
	return 0;
}
