/* Hostile ONNX files: what used to kill the daemon, and the wire format's
 * other ways of lying.
 *
 *   hostile_deep_nesting_*   GraphProto > NodeProto > AttributeProto.g >
 *       GraphProto ... 5,000 levels (about 54 KB): protobuf-c recursed once
 *       per level and overflowed the stack of the HTTP thread. The loader
 *       now refuses it before decoding, naming the depth and byte offset;
 *       in-process on a thread with a 256 KB stack, and over HTTP, where the
 *       daemon answers 413 with a problem body and keeps serving.
 *   hostile_wire_*           malformed varints, lengths past their
 *       message, groups, field 0: a clear error with the byte offset.
 *
 * The HTTP test starts $PARACORRD_BIN on a free loopback port with a
 * fresh data directory (skipped when PARACORRD_BIN is unset). */
#include <arpa/inet.h>
#include <curl/curl.h>
#include <jansson.h>
#include <limits.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "be_util.h"
#include "onnx_build.h"
#include "paracorr/limits.h"
#include "paracorr/onnx.h"
#include "paracorr/plan.h"
#include "test.h"

/* --- a deeply nested model, written back to front ----------------------- */

struct deep {
	unsigned char *buf; /* the file is buf[start..cap) */
	size_t cap, pos;
};

static void put(struct deep *d, const unsigned char *bytes, size_t n)
{
	d->pos -= n;
	memcpy(d->buf + d->pos, bytes, n);
}

static void put_varint(struct deep *d, uint64_t v)
{
	unsigned char tmp[10];
	size_t n = 0;

	do {
		tmp[n++] = (unsigned char)((v & 0x7f) | (v >= 0x80 ? 0x80 : 0));
		v >>= 7;
	} while (v);
	put(d, tmp, n);
}

/* Wraps everything after pos (up to cap) as field `field` of the enclosing
 * message; returns the position of the tag. */
static size_t wrap(struct deep *d, int field)
{
	put_varint(d, d->cap - d->pos);
	put_varint(d, (uint64_t)field << 3 | 2);
	return d->pos;
}

/* ModelProto{ir_version 8, opset_import{version 13}, graph{node{attribute{g{
 * node{attribute{g{ ... }}}}}}}} with `levels` Attribute.g levels. The
 * Graph.node tag of the graph at nesting level 3j+1 opens level 3j+2;
 * node_tag[j] receives its offset in the file (j < levels). */
static unsigned char *deep_model(int levels, size_t *len, size_t *node_tag)
{
	struct deep d = {.cap = (size_t)levels * 12 + 64};
	size_t *tags = malloc((size_t)levels * sizeof(*tags) + 1);
	static const unsigned char opset[] = {0x42, 0x02, 0x10, 0x0d}; /* field 8: {version: 13} */
	static const unsigned char ir[] = {0x08, 0x08};		      /* field 1: 8 */
	unsigned char *out;

	d.buf = malloc(d.cap);
	d.pos = d.cap;
	if (!d.buf || !tags) {
		free(d.buf);
		free(tags);
		return NULL;
	}
	for (int i = 0; i < levels; i++) {
		wrap(&d, 6);		     /* AttributeProto.g */
		wrap(&d, 5);		     /* NodeProto.attribute */
		tags[levels - 1 - i] = wrap(&d, 1); /* GraphProto.node */
	}
	wrap(&d, 7); /* ModelProto.graph */
	put(&d, opset, sizeof(opset));
	put(&d, ir, sizeof(ir));
	*len = d.cap - d.pos;
	for (int j = 0; j < levels && node_tag; j++)
		node_tag[j] = tags[j] - d.pos;
	out = malloc(*len);
	if (out)
		memcpy(out, d.buf + d.pos, *len);
	free(d.buf);
	free(tags);
	return out;
}

struct load_job {
	const unsigned char *buf;
	size_t len;
	int rc;
	struct pc_error err;
	int got_graph;
};

static void *load_thread(void *arg)
{
	struct load_job *j = arg;
	struct pc_graph *g = NULL;

	j->rc = pc_onnx_load_buffer(j->buf, j->len, &g, &j->err);
	j->got_graph = g != NULL;
	pc_graph_free(g);
	return NULL;
}

/* Loads buf on a thread with a 256 KB stack, as a small HTTP thread has. */
static int load_small_stack(struct load_job *j)
{
	pthread_attr_t attr;
	pthread_t th;
	int rc;

	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, 256 * 1024);
	rc = pthread_create(&th, &attr, load_thread, j);
	pthread_attr_destroy(&attr);
	if (rc)
		return -1;
	pthread_join(th, NULL);
	return 0;
}

TEST(hostile_deep_nesting_refused_on_a_small_stack)
{
	size_t len, tags[5000];
	unsigned char *buf = deep_model(5000, &len, tags);
	struct load_job j = {0};
	char msg[800], want[64];

	REQUIRE(buf);
	CHECK(len > 30000 && len < 60000);
	j.buf = buf;
	j.len = len;
	REQUIRE(load_small_stack(&j) == 0);
	pc_error_format(&j.err, msg, sizeof(msg));
	CHECK_MSG(j.rc == PC_ERR_LIMIT, "%s: %s", pc_status_name(j.rc), msg);
	CHECK(!j.got_graph);
	/* level 17 is the node of the graph at level 16 (3*5 + 1): the Graph.node
	 * tag of the sixth graph from the outside opens it */
	snprintf(want, sizeof(want), "depth 17 at byte offset %zu ", tags[5]);
	CHECK_MSG(strstr(msg, want) != NULL, "'%s' lacks '%s'", msg, want);
	CHECK_MSG(strstr(msg, "graph.node[0].attribute[0].g.node[0]") != NULL, "%s", msg);
	CHECK_MSG(strstr(msg, "the limit is 16") != NULL, "%s", msg);
	free(buf);
}

/* 16 levels pass the wire check (and are refused for what they hold); 17
 * do not. */
TEST(hostile_deep_nesting_limit_is_exact)
{
	size_t len, tags[6];
	unsigned char *buf = deep_model(5, &len, tags);
	struct load_job j = {0};
	char msg[800], want[64];

	REQUIRE(buf);
	j.buf = buf;
	j.len = len;
	REQUIRE(load_small_stack(&j) == 0);
	pc_error_format(&j.err, msg, sizeof(msg));
	CHECK_MSG(j.rc != PC_OK && j.rc != PC_ERR_LIMIT && !strstr(msg, "depth"), "%s", msg);
	free(buf);
	buf = deep_model(6, &len, tags);
	REQUIRE(buf);
	memset(&j, 0, sizeof(j));
	j.buf = buf;
	j.len = len;
	REQUIRE(load_small_stack(&j) == 0);
	pc_error_format(&j.err, msg, sizeof(msg));
	snprintf(want, sizeof(want), "depth 17 at byte offset %zu ", tags[5]);
	CHECK_MSG(j.rc == PC_ERR_LIMIT && strstr(msg, want), "%s", msg);
	free(buf);
}

/* --- the wire format's other lies ---------------------------------------- */

static void expect_wire_error(struct pc_test *t, int line, const unsigned char *buf, size_t len, const char *needle)
{
	struct pc_graph *g = NULL;
	struct pc_error err = {0};
	unsigned char *copy = malloc(len ? len : 1); /* exactly len: ASan sees a read past it */
	char msg[800];
	int rc;

	if (!copy)
		return;
	memcpy(copy, buf, len);
	rc = pc_onnx_load_buffer(copy, len, &g, &err);
	pc_error_format(&err, msg, sizeof(msg));
	if (rc != PC_ERR_FORMAT || !strstr(msg, needle))
		pc_test_fail(t, __FILE__, line, "%s: '%s', expected format and '%s'", pc_status_name(rc), msg, needle);
	if (g)
		pc_test_fail(t, __FILE__, line, "a graph was returned");
	pc_graph_free(g);
	free(copy);
}

#define EXPECT_WIRE(bytes, needle) expect_wire_error(t, __LINE__, bytes, sizeof(bytes), needle)

TEST(hostile_wire_errors_name_the_offset)
{
	/* ir_version's varint never ends within 10 bytes */
	static const unsigned char long_varint[] = {0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01};
	/* ... or ends past 64 bits */
	static const unsigned char big_varint[] = {0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02};
	/* the file ends inside a varint */
	static const unsigned char cut_varint[] = {0x08, 0x08, 0x08, 0x80};
	/* graph claims 100 bytes, 2 follow */
	static const unsigned char long_graph[] = {0x08, 0x08, 0x3a, 0x64, 0x0a, 0x00};
	/* a node inside the graph claims more than the graph holds */
	static const unsigned char long_node[] = {0x3a, 0x04, 0x0a, 0x05, 0x0a, 0x00, 0x00, 0x00, 0x00};
	/* an unknown field's length passes the end */
	static const unsigned char long_unknown[] = {0x08, 0x08, 0xfa, 0x01, 0x09, 0x00};
	/* a group (wire type 3) */
	static const unsigned char group[] = {0x08, 0x08, 0x0b, 0x0c};
	/* field number 0 */
	static const unsigned char field0[] = {0x08, 0x08, 0x02, 0x00};
	/* a fixed64 with 3 of its 8 bytes */
	static const unsigned char cut_fixed[] = {0x08, 0x08, 0x11, 0x01, 0x02, 0x03};
	/* a tag that is a varint of 11 bytes */
	static const unsigned char long_tag[] = {0x08, 0x08, 0x80, 0x80, 0x80, 0x80, 0x80,
						 0x80, 0x80, 0x80, 0x80, 0x80, 0x01};

	EXPECT_WIRE(long_varint, "malformed varint at byte offset 1 (field 1 of the model)");
	EXPECT_WIRE(big_varint, "malformed varint at byte offset 1 (field 1 of the model): longer than 10 bytes or beyond 64 bits");
	EXPECT_WIRE(cut_varint, "malformed varint at byte offset 3 (field 1 of the model): it runs past the end");
	EXPECT_WIRE(long_graph, "graph at byte offset 2: its length passes the end of its message");
	EXPECT_WIRE(long_node, "graph.node[0] at byte offset 2: its length passes the end of its message");
	EXPECT_WIRE(long_unknown, "field 31 of the model at byte offset 2: its length passes the end");
	EXPECT_WIRE(group, "field 1 at byte offset 2 (in the model) has wire type 3");
	EXPECT_WIRE(field0, "malformed field tag at byte offset 2, in the model: field number 0");
	EXPECT_WIRE(cut_fixed, "field 2 at byte offset 2 (in the model) needs 8 bytes; its message has 3 left");
	EXPECT_WIRE(long_tag, "malformed field tag at byte offset 2, in the model: a varint longer than 10 bytes");
}

/* --- total caps per model ------------------------------------------------ */

/* ModelProto{ir_version 8, opset_import{version 13}, graph{<graph bytes>}}. */
static unsigned char *wire_model(const unsigned char *graph, size_t glen, size_t *len)
{
	static const unsigned char head[] = {0x08, 0x08, 0x42, 0x02, 0x10, 0x0d, 0x3a};
	unsigned char *b = malloc(sizeof(head) + 10 + glen), *p;
	uint64_t v = glen;

	if (!b)
		return NULL;
	memcpy(b, head, sizeof(head));
	p = b + sizeof(head);
	do {
		*p++ = (unsigned char)((v & 0x7f) | (v >= 0x80 ? 0x80 : 0));
		v >>= 7;
	} while (v);
	memcpy(p, graph, glen);
	*len = (size_t)(p - b) + glen;
	return b;
}

/* count copies of the two bytes {tag, 0}: empty sub-messages. */
static unsigned char *empty_fields(unsigned char tag, size_t count, size_t *len)
{
	unsigned char *g = malloc(2 * count + 1), *m;

	if (!g)
		return NULL;
	for (size_t i = 0; i < count; i++) {
		g[2 * i] = tag;
		g[2 * i + 1] = 0;
	}
	m = wire_model(g, 2 * count, len);
	free(g);
	return m;
}

static void expect_limit_line(struct pc_test *t, int line, const unsigned char *buf, size_t len, const char *needle)
{
	struct pc_graph *g = NULL;
	struct pc_error err = {0};
	char msg[800];
	int rc = pc_onnx_load_buffer(buf, len, &g, &err);

	pc_error_format(&err, msg, sizeof(msg));
	if (rc != PC_ERR_LIMIT || !strstr(msg, needle))
		pc_test_fail(t, __FILE__, line, "%s: '%s', expected limit and '%s'", pc_status_name(rc), msg, needle);
	if (g)
		pc_test_fail(t, __FILE__, line, "a graph was returned");
	pc_graph_free(g);
}

/* 200,001 empty nodes in 400 KB (protobuf-c would build a struct of a
 * hundred bytes for each), and a million and one empty initializers in
 * 2 MB: refused while the wire is checked, naming the count, the limit and
 * the byte offset of the first one too many. */
TEST(hostile_node_and_value_counts_capped_before_decoding)
{
	size_t len;
	unsigned char *m;

	/* graph bytes start at offset 10: 7 bytes of header, a 3-byte length */
	m = empty_fields(0x0a, PC_LIMITS_DEFAULT_NODES + 1, &len);
	REQUIRE(m);
	expect_limit_line(t, __LINE__, m, len,
			  "model: the model has more than 200000 nodes (node 200001 at byte offset 400010); the limit "
			  "is 200000");
	free(m);
	m = empty_fields(0x2a, PC_LIMITS_DEFAULT_VALUES + 1, &len);
	REQUIRE(m);
	expect_limit_line(t, __LINE__, m, len,
			  "the model names more than 1000000 values (initializers, inputs and node outputs; value "
			  "1000001 at byte offset 2000010); the limit is 1000000");
	free(m);
	/* exactly the limit passes the count (and fails later, on a nameless node) */
	{
		struct pc_limits saved = *pc_limits_get(), small = saved;
		struct pc_graph *g = NULL;
		struct pc_error err = {0};
		small.max_nodes = 10;
		pc_limits_set(&small);
		m = empty_fields(0x0a, 10, &len);
		REQUIRE(m);
		CHECK(pc_onnx_load_buffer(m, len, &g, &err) != PC_ERR_LIMIT);
		free(m);
		m = empty_fields(0x0a, 11, &len);
		REQUIRE(m);
		expect_limit_line(t, __LINE__, m, len, "more than 10 nodes (node 11 at byte offset 28)");
		free(m);
		pc_graph_free(g);
		pc_limits_set(&saved);
	}
}

/* x[N,4] -> Gemm -> h0 -> Identity -> h1 ... -> y: n nodes in all. Loads
 * (the alias pass and the op check are linear: this took tens of seconds
 * when they were quadratic). */
TEST(hostile_long_chain_of_identities_loads)
{
	enum { N = 50000 };
	static const float w[12] = {1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0}, bias[3] = {0};
	static const int64_t xd[2] = {-1, 4}, wd[2] = {3, 4}, bd[1] = {3};
	struct ob_model *b = calloc(1, sizeof(*b));
	Onnx__NodeProto *nodes = calloc(N, sizeof(*nodes)), **ptrs = calloc(N, sizeof(*ptrs));
	char (*names)[16] = calloc(N, sizeof(*names));
	char **ins = calloc(N, sizeof(*ins)), **outs = calloc(N, sizeof(*outs));
	struct pc_graph *g = NULL;
	struct pc_error err = {0};
	unsigned char *buf;
	size_t len;

	REQUIRE(b && nodes && ptrs && names && ins && outs);
	ob_init(b, 13, "x", 2, xd, "y");
	ob_float(b, "W", 2, wd, w);
	ob_float(b, "B", 1, bd, bias);
	ob_attr_int(ob_node(b, "Gemm", "gemm", (const char *const[]){"x", "W", "B", NULL},
			    (const char *const[]){"h0", NULL}),
		    b, "transB", 1);
	ptrs[0] = &b->nodes[0];
	for (int i = 1; i < N; i++) {
		onnx__node_proto__init(&nodes[i]);
		snprintf(names[i], sizeof(names[i]), "h%d", i);
		nodes[i].op_type = "Identity";
		ins[i] = i == 1 ? "h0" : names[i - 1];
		outs[i] = i == N - 1 ? "y" : names[i];
		nodes[i].n_input = nodes[i].n_output = 1;
		nodes[i].input = &ins[i];
		nodes[i].output = &outs[i];
		ptrs[i] = &nodes[i];
	}
	b->graph.node = ptrs;
	b->graph.n_node = N;
	buf = ob_pack(b, &len);
	REQUIRE(buf);
	CHECK_MSG(pc_onnx_load_buffer(buf, len, &g, &err) == PC_OK, "%s: %s", err.where, err.text);
	if (g) {
		CHECK_INT(pc_graph_node_count(g), N);
		CHECK_INT(pc_graph_classes(g), 3);
	}
	pc_graph_free(g);
	free(buf);
	free(b);
	free(nodes);
	free(ptrs);
	free(names);
	free(ins);
	free(outs);
}

/* x[N,1,4,4] -> Conv(1x1, pads 20000) -> [N,1,40004,40004] -> GlobalAveragePool
 * -> Flatten -> Gemm -> y[N,3]: 32 GB of activation and workspace at
 * batch 2 from a file of a few hundred bytes. */
static unsigned char *conv_pads_model(size_t *len)
{
	static const float w[1] = {1}, w2[3] = {1, 2, 3}, b2[3] = {0};
	static const int64_t xd[4] = {-1, 1, 4, 4}, wd[4] = {1, 1, 1, 1}, w2d[2] = {3, 1}, b2d[1] = {3};
	static int64_t pads[4] = {20000, 20000, 20000, 20000};
	static struct ob_model b;

	ob_init(&b, 13, "x", 4, xd, "y");
	ob_float(&b, "W", 4, wd, w);
	ob_float(&b, "W2", 2, w2d, w2);
	ob_float(&b, "B2", 1, b2d, b2);
	ob_attr_ints(ob_node(&b, "Conv", "conv", (const char *const[]){"x", "W", NULL}, (const char *const[]){"c", NULL}),
		     &b, "pads", 4, pads);
	ob_node(&b, "GlobalAveragePool", "gap", (const char *const[]){"c", NULL}, (const char *const[]){"p", NULL});
	ob_node(&b, "Flatten", "flat", (const char *const[]){"p", NULL}, (const char *const[]){"f", NULL});
	ob_attr_int(ob_node(&b, "Gemm", "gemm", (const char *const[]){"f", "W2", "B2", NULL},
			    (const char *const[]){"y", NULL}),
		    &b, "transB", 1);
	return ob_pack(&b, len);
}

TEST(hostile_conv_pads_refused_before_allocating)
{
	size_t len;
	unsigned char *m = conv_pads_model(&len);

	REQUIRE(m);
	expect_limit_line(t, __LINE__, m, len, "node 'conv' (Conv): at batch 2 the plan needs ");
	/* its output is 12.8 GB, its im2col workspace (at batch 2) more */
	expect_limit_line(t, __LINE__, m, len,
			  "at batch 2 the plan needs 32006400576 bytes, over max_plan_mb (4096 MiB); this node's "
			  "workspace is 19203840192 bytes of it");
	free(m);
}

/* The same cap at a job's batch size: a model that loads (its plan at
 * batch 2 is small) is refused at batch 65536 under a 1 MiB cap, with
 * the batch in the message, and still plans at batch 2. */
TEST(hostile_plan_cap_applies_at_the_job_batch)
{
	struct pc_limits saved = *pc_limits_get(), small = saved;
	char path[PATH_MAX];
	struct pc_graph *g = NULL;
	struct pc_plan *p;
	struct pc_error err = {0};

	snprintf(path, sizeof(path), "%s/tests/reference/fixtures/mlp_op13.onnx", pc_test_root());
	REQUIRE(pc_onnx_load_file(path, &g, &err) == PC_OK);
	small.max_plan_bytes = (uint64_t)1 << 20;
	pc_limits_set(&small);
	p = pc_plan_new(g, 65536, PC_PLAN_GRAD, &err);
	CHECK(p == NULL);
	CHECK_INT(err.code, PC_ERR_LIMIT);
	CHECK_MSG(strstr(err.text, "at batch 65536 the plan needs") && strstr(err.text, "over max_plan_mb (1 MiB)"),
		  "%s: %s", err.where, err.text);
	pc_plan_free(p);
	pc_error_clear(&err);
	p = pc_plan_new(g, 2, PC_PLAN_GRAD, &err);
	CHECK_MSG(p != NULL, "%s: %s", err.where, err.text);
	pc_plan_free(p);
	pc_limits_set(&saved);
	pc_graph_free(g);
}

/* --- over HTTP ------------------------------------------------------------- */

/* One request (a POST of octet-stream when body is non-NULL); 0 when
 * answered. */
static int http(const struct be_daemon *d, const char *path, const void *body, size_t len, struct be_resp *r)
{
	struct be_req q = {.method = body ? "POST" : "GET", .url = d->base, .path = path, .body = body, .len = len,
			   .timeout = 30};

	if (body)
		q.ctype = "application/octet-stream";
	return be_request(&q, r);
}

/* The hostile tests' daemon: one worker, a 2 MiB model limit. */
static const char *const hostile_defaults[] = {"--workers", "1", "--max-model-mb", "2", "--min-free-disk-mb", "1", NULL};

static int start(struct be_daemon *d, const char *bin, const char *const *extra)
{
	return be_daemon_start(d, bin, hostile_defaults, extra);
}

/* SIGTERM; the exit status, or -1 when it had died or did not exit. */
static int stop(struct be_daemon *d)
{
	return be_daemon_stop(d, SIGTERM, NULL);
}

/* The daemon's peak resident set (VmHWM) in KiB, -1 when unreadable:
 * hostile uploads must not make the daemon itself grow (the upload checks
 * run in child processes of their own). */
static long peak_rss_kb(pid_t pid)
{
	char path[64], line[256];
	long kb = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	if (!(f = fopen(path, "r")))
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmHWM: %ld kB", &kb) == 1)
			break;
	fclose(f);
	return kb;
}

TEST(hostile_deep_model_over_http_leaves_the_daemon_up)
{
	const char *bin = getenv("PARACORRD_BIN");
	struct be_daemon d = {0};
	struct be_resp r;
	size_t len, tags[5000];
	unsigned char *buf;
	json_t *j;

	if (!bin || !bin[0]) {
		pc_test_skip(t, "PARACORRD_BIN is not set (make test sets it)");
		return;
	}
	REQUIRE(be_tmpdir(d.dir, sizeof(d.dir)));
	curl_global_init(CURL_GLOBAL_DEFAULT);
	REQUIRE_MSG(start(&d, bin, NULL), "the daemon did not come up (see %s/daemon.log)", d.dir);
	buf = deep_model(5000, &len, tags);
	REQUIRE(buf);
	for (int round = 0; round < 2; round++) {
		char want[64];
		CHECK_MSG(http(&d, "/v1/models", buf, len, &r) == 0, "round %d: no answer to the POST", round);
		CHECK_MSG(r.status == 413, "round %d: status %ld: %s", round, r.status, r.body ? r.body : "");
		CHECK(strcmp(r.ctype, "application/problem+json") == 0);
		j = r.body ? json_loadb(r.body, r.len, 0, NULL) : NULL;
		CHECK(j && json_integer_value(json_object_get(j, "status")) == 413);
		CHECK_MSG(j && !strcmp(json_string_value(json_object_get(j, "type")) ?: "", "/problems/limit"), "%s",
			  r.body ? r.body : "");
		snprintf(want, sizeof(want), "depth 17 at byte offset %zu", tags[5]);
		CHECK_MSG(j && strstr(json_string_value(json_object_get(j, "detail")) ?: "", want), "%s",
			  r.body ? r.body : "");
		json_decref(j);
		free(r.body);
		CHECK_MSG(be_daemon_healthy(&d), "round %d: /healthz does not answer after the upload", round);
	}
	/* and it still takes a real model */
	{
		char path[PATH_MAX];
		size_t mlen;
		char *model;
		snprintf(path, sizeof(path), "%s/tests/reference/fixtures/mlp_op13.onnx", pc_test_root());
		model = be_read_file(path, &mlen);
		REQUIRE(model);
		CHECK(http(&d, "/v1/models", model, mlen, &r) == 0 && r.status == 201);
		free(r.body);
		free(model);
	}
	{
		long kb = peak_rss_kb(d.pid);
		CHECK_MSG(kb > 0 && kb < (1L << 20), "the daemon's peak RSS is %ld KiB", kb);
	}
	CHECK_INT(stop(&d), 0);
	free(buf);
	be_rmtree(d.dir);
}

/* --- work and size budgets over HTTP -------------------------------------- */

/* A POST of a multipart dataset (inputs, labels) or of a JSON spec. */
static int http_post(const struct be_daemon *d, const char *path, const char *json, const char *inputs,
		     const char *labels, struct be_resp *r)
{
	struct be_part parts[2];
	struct be_req q = {.method = "POST", .url = d->base, .path = path, .timeout = 30};

	if (json) {
		q.ctype = "application/json";
		q.body = json;
		q.len = strlen(json);
	} else {
		q.parts = parts;
		q.n_parts = be_dataset_parts(parts, inputs, labels);
	}
	return be_request(&q, r);
}

/* The answer's status, problem type and a piece of its detail; the id of
 * a 201/200 upload into id when given. */
static void expect_answer_line(struct pc_test *t, int line, struct be_resp *r, long status, const char *type,
			       const char *needle, char *id, size_t id_size)
{
	json_t *j = r->body ? json_loadb(r->body, r->len, 0, NULL) : NULL;
	const char *detail = json_string_value(json_object_get(j, "detail"));

	if (r->status != status)
		pc_test_fail(t, __FILE__, line, "status %ld, expected %ld: %s", r->status, status, r->body ? r->body : "");
	if (type && (!json_is_string(json_object_get(j, "type")) ||
		     strcmp(json_string_value(json_object_get(j, "type")), type) != 0 ||
		     strcmp(r->ctype, "application/problem+json") != 0))
		pc_test_fail(t, __FILE__, line, "expected a problem of type %s: %s", type, r->body ? r->body : "");
	if (needle && !(detail && strstr(detail, needle)))
		pc_test_fail(t, __FILE__, line, "the detail lacks '%s': %s", needle, r->body ? r->body : "");
	if (id && json_is_string(json_object_get(j, "id")))
		snprintf(id, id_size, "%s", json_string_value(json_object_get(j, "id")));
	json_decref(j);
	free(r->body);
	r->body = NULL;
}

#define EXPECT_ANSWER(r, status, type, needle) expect_answer_line(t, __LINE__, r, status, type, needle, NULL, 0)

/* Every corruption field within its own bound, their product a billion
 * passes: 8 blocks of 16 norms x 64 epsilons x 16 sparsities x (1001 + 1000)
 * passes for each of the model, tensor and layer groups, in 6 KB. */
static char *billion_pass_spec(const char *model, const char *dataset, size_t *len)
{
	size_t cap = 16384, n = 0;
	char *s = malloc(cap);

	if (!s)
		return NULL;
	n += (size_t)snprintf(s + n, cap - n, "{\"model\":\"%s\",\"dataset\":\"%s\",\"corruption\":[", model, dataset);
	for (int b = 0; b < 8; b++) {
		n += (size_t)snprintf(s + n, cap - n, "%s{\"norms\":[\"l1\",\"l2\",\"linf\"", b ? "," : "");
		for (int p = 3; p < 16; p++)
			n += (size_t)snprintf(s + n, cap - n, ",%d", p);
		n += (size_t)snprintf(s + n, cap - n, "],\"epsilons\":[");
		for (int e = 0; e < 64; e++)
			n += (size_t)snprintf(s + n, cap - n, "%s%d", e ? "," : "", e + 1);
		n += (size_t)snprintf(s + n, cap - n, "],\"sparsity\":[");
		for (int k = 0; k < 16; k++)
			n += (size_t)snprintf(s + n, cap - n, "%s%d", k ? "," : "", k);
		n += (size_t)snprintf(s + n, cap - n,
				      "],\"random_trials\":1000,\"steps\":1000,\"groups\":[\"model\",\"tensor\",\"layer\"]}");
	}
	n += (size_t)snprintf(s + n, cap - n, "]}");
	*len = n;
	return s;
}

/* The daemon with a 1 MiB decoded-dataset cap and default caps otherwise:
 * a conv model that would plan 32 GB and a model of 200,001 nodes get 413
 * naming the cap; a gzip dataset of 1.2 MB decoded gets 422; a spec of a
 * billion passes gets 422 naming max_job_work with the estimate and the
 * limit, as does a harden job of 10,000 epochs naming the field; an
 * ordinary spec is still accepted and the daemon still answers. */
TEST(hostile_budgets_over_http)
{
	const char *bin = getenv("PARACORRD_BIN");
	static const char *const extra[] = {"--max-dataset-decoded-mb", "1", NULL};
	struct be_daemon d = {0};
	struct be_resp r;
	char path[PATH_MAX], xgz[PATH_MAX], ylab[PATH_MAX], model[80] = "", data[80] = "", spec[1024];
	size_t len;
	unsigned char *buf;
	char *text;

	if (!bin || !bin[0]) {
		pc_test_skip(t, "PARACORRD_BIN is not set (make test sets it)");
		return;
	}
	REQUIRE(be_tmpdir(d.dir, sizeof(d.dir)));
	curl_global_init(CURL_GLOBAL_DEFAULT);
	REQUIRE_MSG(start(&d, bin, extra), "the daemon did not come up (see %s/daemon.log)", d.dir);

	/* models: refused at upload, before the plan or the decoder allocates */
	REQUIRE((buf = conv_pads_model(&len)));
	CHECK(http(&d, "/v1/models", buf, len, &r) == 0);
	EXPECT_ANSWER(&r, 413, "/problems/limit",
		      "node 'conv' (Conv): at batch 2 the plan needs 32006400576 bytes, over max_plan_mb (4096 MiB)");
	free(buf);
	REQUIRE((buf = empty_fields(0x0a, PC_LIMITS_DEFAULT_NODES + 1, &len)));
	CHECK(http(&d, "/v1/models", buf, len, &r) == 0);
	EXPECT_ANSWER(&r, 413, "/problems/limit", "more than 200000 nodes");
	free(buf);

	/* a dataset that decodes past max_dataset_decoded_mb */
	{
		FILE *f;
		gzFile z;
		unsigned char hdr[16] = {0, 0, 8, 3, 0, 0, 0x01, 0x2c, 0, 0, 0, 32, 0, 0, 0, 32}; /* 300 x 32 x 32 */
		unsigned char lhdr[8] = {0, 0, 8, 1, 0, 0, 0x01, 0x2c}, zero[1024] = {0};
		snprintf(xgz, sizeof(xgz), "%s/x.idx.gz", d.dir);
		snprintf(ylab, sizeof(ylab), "%s/y.idx", d.dir);
		REQUIRE((z = gzopen(xgz, "wb")));
		gzwrite(z, hdr, sizeof(hdr));
		for (int i = 0; i < 300; i++)
			gzwrite(z, zero, sizeof(zero));
		gzclose(z);
		REQUIRE((f = fopen(ylab, "wb")));
		fwrite(lhdr, 1, sizeof(lhdr), f);
		for (int i = 0; i < 300; i++)
			fputc(i % 3, f);
		fclose(f);
	}
	CHECK(http_post(&d, "/v1/datasets", NULL, xgz, ylab, &r) == 0);
	/* a size limit like any other: the same answer as the model's caps */
	EXPECT_ANSWER(&r, 413, "/problems/limit",
		      "shape [300,32,32] of uint8 decodes to 1230000 bytes of floats and labels, over "
		      "max_dataset_decoded_mb (1 MiB)");

	/* a model and a dataset that fit, then the specs */
	snprintf(path, sizeof(path), "%s/tests/reference/fixtures/mlp_op13.onnx", pc_test_root());
	text = be_read_file(path, &len);
	REQUIRE(text);
	CHECK(http(&d, "/v1/models", text, len, &r) == 0);
	expect_answer_line(t, __LINE__, &r, 201, NULL, NULL, model, sizeof(model));
	free(text);
	{
		char x[PATH_MAX], y[PATH_MAX];
		snprintf(x, sizeof(x), "%s/tests/reference/fixtures/sample64_u8.npy", pc_test_root());
		snprintf(y, sizeof(y), "%s/tests/reference/fixtures/labels64_i64.npy", pc_test_root());
		CHECK(http_post(&d, "/v1/datasets", NULL, x, y, &r) == 0);
		expect_answer_line(t, __LINE__, &r, 201, NULL, NULL, data, sizeof(data));
	}
	REQUIRE(model[0] && data[0]);
	text = billion_pass_spec(model, data, &len);
	REQUIRE(text);
	CHECK_MSG(len < 6500, "the spec has %zu bytes", len);
	CHECK(http_post(&d, "/v1/jobs", text, NULL, NULL, &r) == 0);
	EXPECT_ANSWER(&r, 422, "/problems/too_much_work", "max_job_work: the job's estimated work is ");
	CHECK(http_post(&d, "/v1/jobs", text, NULL, NULL, &r) == 0);
	EXPECT_ANSWER(&r, 422, "/problems/too_much_work", "over the limit of 1e+13 (max_job_work = 10000 x 10^9)");
	free(text);
	snprintf(spec, sizeof(spec),
		 "{\"kind\": \"harden\", \"model\": \"%s\", \"dataset\": \"%s\", \"training\": {\"dataset\": \"%s\", "
		 "\"epochs\": 10000}}",
		 model, data, data);
	CHECK(http_post(&d, "/v1/jobs", spec, NULL, NULL, &r) == 0);
	EXPECT_ANSWER(&r, 422, "/problems/invalid", "training.epochs: must be an integer from 0 to 1000");
	snprintf(spec, sizeof(spec), "{\"model\": \"%s\", \"dataset\": \"%s\", \"corruption\": {\"epsilons\": [0.1]}}",
		 model, data);
	CHECK(http_post(&d, "/v1/jobs", spec, NULL, NULL, &r) == 0);
	EXPECT_ANSWER(&r, 202, NULL, NULL);
	CHECK(be_daemon_healthy(&d));
	{
		long kb = peak_rss_kb(d.pid);
		CHECK_MSG(kb > 0 && kb < (1L << 20), "the daemon's peak RSS is %ld KiB", kb);
	}
	CHECK_INT(stop(&d), 0);
	be_rmtree(d.dir);
}

/* paracorr run checks the same budget once the model and data are loaded:
 * the billion-pass spec is refused by default naming max_job_work, and a
 * spec of 1,000 random trials (about 10^4 passes, over 10^10 multiply-adds
 * with the fixed cost per pass) under --max-job-work 1 (10^9). */
static int run_cli(const char *bin, const char *spec_path, const char *flags, char *out, size_t size)
{
	char cmd[3 * PATH_MAX];

	snprintf(cmd, sizeof(cmd), "'%s' run '%s' --quiet --threads 1 %s 2>&1 >/dev/null", bin, spec_path, flags);
	return be_run(cmd, out, size, 120);
}

TEST(hostile_cli_checks_the_work_budget)
{
	const char *bin = getenv("PARACORR_BIN");
	char dir[PATH_MAX - 64], path[PATH_MAX], out[4096];
	const char *data = "{\"inputs\": \"tests/reference/fixtures/sample64_u8.npy\", \"labels\": "
			   "\"tests/reference/fixtures/labels64_i64.npy\"}";
	size_t len;
	char *text, *dq;
	FILE *f;

	if (!bin || !bin[0]) {
		pc_test_skip(t, "PARACORR_BIN is not set (make test sets it)");
		return;
	}
	REQUIRE(be_tmpdir(dir, sizeof(dir)));
	/* the HTTP spec with the CLI's paths: its dataset id becomes the file pair */
	text = billion_pass_spec("tests/reference/fixtures/mlp_op13.onnx", "@", &len);
	REQUIRE(text && (dq = strstr(text, "\"@\"")));
	snprintf(path, sizeof(path), "%s/big.json", dir);
	REQUIRE((f = fopen(path, "w")));
	fprintf(f, "%.*s%s%s", (int)(dq - text), text, data, dq + 3);
	fclose(f);
	free(text);
	CHECK_INT(run_cli(bin, path, "", out, sizeof(out)), 1);
	CHECK_MSG(strstr(out, "max_job_work: the job's estimated work is") &&
			  strstr(out, "over the limit of 1e+13 (max_job_work = 10000 x 10^9)"),
		  "%s", out);
	snprintf(path, sizeof(path), "%s/small.json", dir);
	REQUIRE((f = fopen(path, "w")));
	fprintf(f, "{\"model\": \"tests/reference/fixtures/mlp_op13.onnx\", \"dataset\": %s, \"corruption\": "
		   "{\"epsilons\": [0.1], \"random_trials\": 1000}}",
		data);
	fclose(f);
	CHECK_INT(run_cli(bin, path, "--max-job-work 1", out, sizeof(out)), 1);
	CHECK_MSG(strstr(out, "over the limit of 1e+09 (max_job_work = 1 x 10^9)"), "%s", out);
	be_rmtree(dir);
}
