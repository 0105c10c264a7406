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

#include "be_util.h"
#include "paracorr/onnx.h"
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

/* --- over HTTP ------------------------------------------------------------- */

struct daemon {
	pid_t pid;
	char dir[PATH_MAX - 64];
	char base[64];
};

struct reply {
	long status;
	char *body;
	size_t len;
	char ctype[128];
};

static size_t on_data(char *p, size_t size, size_t n, void *arg)
{
	struct reply *r = arg;
	char *b = realloc(r->body, r->len + size * n + 1);

	if (!b)
		return 0;
	memcpy(b + r->len, p, size * n);
	r->len += size * n;
	b[r->len] = '\0';
	r->body = b;
	return size * n;
}

/* One request (a POST when body is non-NULL); 0 when answered. */
static int http(const struct daemon *d, const char *path, const void *body, size_t len, struct reply *r)
{
	CURL *c = curl_easy_init();
	struct curl_slist *h = NULL;
	char url[256];
	char *ct = NULL;
	CURLcode rc;

	memset(r, 0, sizeof(*r));
	if (!c)
		return -1;
	snprintf(url, sizeof(url), "%s%s", d->base, path);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 30L);
	if (body) {
		h = curl_slist_append(h, "Content-Type: application/octet-stream");
		h = curl_slist_append(h, "Expect:");
		curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
	}
	rc = curl_easy_perform(c);
	if (rc == CURLE_OK) {
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
		if (curl_easy_getinfo(c, CURLINFO_CONTENT_TYPE, &ct) == CURLE_OK && ct)
			snprintf(r->ctype, sizeof(r->ctype), "%s", ct);
	}
	curl_slist_free_all(h);
	curl_easy_cleanup(c);
	return rc == CURLE_OK ? 0 : -1;
}

static int loopback_port(void)
{
	struct sockaddr_in a = {0};
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0), port = -1;

	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
	    getsockname(fd, (struct sockaddr *)&a, &len) == 0)
		port = ntohs(a.sin_port);
	if (fd >= 0)
		close(fd);
	return port;
}

static int healthy(const struct daemon *d)
{
	struct reply r;
	int ok = http(d, "/healthz", NULL, 0, &r) == 0 && r.status == 200;

	free(r.body);
	return ok;
}

/* 1 when the daemon is up; a few ports are tried in case one is taken. */
static int start(struct daemon *d, const char *bin)
{
	for (int attempt = 0; attempt < 5; attempt++) {
		char port[16], data[PATH_MAX], log[PATH_MAX];
		int st;

		snprintf(port, sizeof(port), "%d", loopback_port());
		snprintf(d->base, sizeof(d->base), "http://127.0.0.1:%s", port);
		snprintf(data, sizeof(data), "%s/data", d->dir);
		snprintf(log, sizeof(log), "%s/daemon.log", d->dir);
		d->pid = fork();
		if (d->pid < 0)
			return 0;
		if (d->pid == 0) {
			if (!freopen(log, "a", stderr) || chdir(pc_test_root()) != 0)
				_exit(126);
			execl(bin, bin, "--port", port, "--data-dir", data, "--workers", "1", "--max-model-mb", "2",
			      "--min-free-disk-mb", "1", (char *)NULL);
			_exit(127);
		}
		for (int i = 0; i < 200; i++) {
			struct timespec ts = {0, 50 * 1000000L};
			if (waitpid(d->pid, &st, WNOHANG) == d->pid)
				break;
			if (healthy(d))
				return 1;
			nanosleep(&ts, NULL);
		}
		kill(d->pid, SIGKILL);
		waitpid(d->pid, &st, 0);
	}
	d->pid = 0;
	return 0;
}

/* SIGTERM; the exit status, or -1 when it had died or did not exit. */
static int stop(struct daemon *d)
{
	int st = 0;

	if (d->pid <= 0)
		return -1;
	if (waitpid(d->pid, &st, WNOHANG) == d->pid)
		return -1; /* already dead */
	kill(d->pid, SIGTERM);
	for (int i = 0; i < 1000; i++) {
		struct timespec ts = {0, 10 * 1000000L};
		if (waitpid(d->pid, &st, WNOHANG) == d->pid)
			return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
		nanosleep(&ts, NULL);
	}
	kill(d->pid, SIGKILL);
	waitpid(d->pid, &st, 0);
	return -1;
}

TEST(hostile_deep_model_over_http_leaves_the_daemon_up)
{
	const char *bin = getenv("PARACORRD_BIN");
	struct daemon d = {0};
	struct reply r;
	size_t len, tags[5000];
	unsigned char *buf;
	json_t *j;

	if (!bin || !bin[0]) {
		pc_test_skip(t, "PARACORRD_BIN is not set (make test sets it)");
		return;
	}
	REQUIRE(be_tmpdir(d.dir, sizeof(d.dir)));
	curl_global_init(CURL_GLOBAL_DEFAULT);
	REQUIRE_MSG(start(&d, bin), "the daemon did not come up (see %s/daemon.log)", d.dir);
	buf = deep_model(5000, &len, tags);
	REQUIRE(buf);
	for (int round = 0; round < 2; round++) {
		char want[64];
		CHECK_MSG(http(&d, "/v1/models", buf, len, &r) == 0, "round %d: no answer to the POST", round);
		CHECK_MSG(r.status == 413, "round %d: status %ld: %s", round, r.status, r.body ? r.body : "");
		CHECK(strcmp(r.ctype, "application/problem+json") == 0);
		j = r.body ? json_loadb(r.body, r.len, 0, NULL) : NULL;
		CHECK(j && json_integer_value(json_object_get(j, "status")) == 413);
		snprintf(want, sizeof(want), "depth 17 at byte offset %zu", tags[5]);
		CHECK_MSG(j && strstr(json_string_value(json_object_get(j, "detail")) ?: "", want), "%s",
			  r.body ? r.body : "");
		json_decref(j);
		free(r.body);
		CHECK_MSG(healthy(&d), "round %d: /healthz does not answer after the upload", round);
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
	CHECK_INT(stop(&d), 0);
	free(buf);
	be_rmtree(d.dir);
}
