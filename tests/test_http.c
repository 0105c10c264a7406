/* The daemon over HTTP: $PARACORRD_BIN is started on a free loopback port
 * with a fresh data directory and driven with libcurl. Skipped when
 * PARACORRD_BIN is unset (make test sets it).
 *
 *   http_flow      uploads, every error path with its status and problem
 *                  body, a job to success whose report equals `paracorr
 *                  run` on the same spec, idempotency, cancel, listings,
 *                  metrics, then SIGTERM -> exit 0.
 *   http_restart   SIGTERM with a job running (exit 0 within 10 s, the job
 *                  back in the queue), then kill -9 during the rerun and a
 *                  restart: the job succeeds with attempts 2. */
#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "be_util.h"
#include "test.h"

#define FIX    "tests/reference/fixtures/"
#define T10K_X "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz"
#define T10K_Y "/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz"

struct daemon {
	pid_t pid;
	int port;
	char dir[PATH_MAX - 64];
	char base[128];
};

struct resp {
	long status;
	char *body;
	size_t len;
	char headers[4096];
	size_t hlen;
};

static double now_s(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static void sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

	nanosleep(&ts, NULL);
}

static size_t on_body(char *p, size_t size, size_t n, void *arg)
{
	struct resp *r = arg;
	char *b = realloc(r->body, r->len + size * n + 1);

	if (!b)
		return 0;
	memcpy(b + r->len, p, size * n);
	r->body = b;
	r->len += size * n;
	b[r->len] = '\0';
	return size * n;
}

static size_t on_header(char *p, size_t size, size_t n, void *arg)
{
	struct resp *r = arg;
	size_t len = size * n;

	if (r->hlen + len < sizeof(r->headers)) {
		memcpy(r->headers + r->hlen, p, len);
		r->hlen += len;
		r->headers[r->hlen] = '\0';
	}
	return len;
}

/* The value of a response header (case-insensitive name) into buf. */
static const char *header(const struct resp *r, const char *name, char *buf, size_t size)
{
	const char *p = r->headers;
	size_t n = strlen(name);

	while (p && *p) {
		if (!strncasecmp(p, name, n) && p[n] == ':') {
			const char *v = p + n + 1, *e;
			size_t len;

			while (*v == ' ')
				v++;
			e = strpbrk(v, "\r\n");
			len = e ? (size_t)(e - v) : strlen(v);
			if (len >= size)
				len = size - 1;
			memcpy(buf, v, len);
			buf[len] = '\0';
			return buf;
		}
		p = strchr(p, '\n');
		if (p)
			p++;
	}
	return NULL;
}

/* One request. body NULL: none; mime non-NULL: multipart. extra: headers. */
static int request(const struct daemon *d, const char *method, const char *path, const char *ctype,
		   const void *body, size_t len, curl_mime *(*mime_fn)(CURL *, void *), void *mime_arg,
		   const char *extra, struct resp *r)
{
	CURL *c = curl_easy_init();
	struct curl_slist *h = NULL;
	curl_mime *mime = NULL;
	char url[512], ct[128];
	CURLcode rc;

	memset(r, 0, sizeof(*r));
	if (!c)
		return -1;
	snprintf(url, sizeof(url), "%s%s", d->base, path);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	if (!strcmp(method, "HEAD"))
		curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, r);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 60L);
	if (ctype) {
		snprintf(ct, sizeof(ct), "Content-Type: %s", ctype);
		h = curl_slist_append(h, ct);
	}
	if (extra)
		h = curl_slist_append(h, extra);
	h = curl_slist_append(h, "Expect:");
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	if (mime_fn) {
		mime = mime_fn(c, mime_arg);
		curl_easy_setopt(c, CURLOPT_MIMEPOST, mime);
		curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	} else if (body) {
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
	}
	rc = curl_easy_perform(c);
	if (rc == CURLE_OK)
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
	curl_mime_free(mime);
	curl_slist_free_all(h);
	curl_easy_cleanup(c);
	return rc == CURLE_OK ? 0 : -1;
}

static int get(const struct daemon *d, const char *path, struct resp *r)
{
	return request(d, "GET", path, NULL, NULL, 0, NULL, NULL, NULL, r);
}

static void resp_free(struct resp *r)
{
	free(r->body);
	r->body = NULL;
}

static json_t *resp_json(const struct resp *r)
{
	return r->body ? json_loadb(r->body, r->len, 0, NULL) : NULL;
}

/* Whether r is a problem+json with the given status. */
static int is_problem(const struct resp *r, long status)
{
	char ct[128];
	json_t *j = resp_json(r);
	int ok = r->status == status && header(r, "Content-Type", ct, sizeof(ct)) &&
		 !strcmp(ct, "application/problem+json") && j && json_integer_value(json_object_get(j, "status")) == status &&
		 json_is_string(json_object_get(j, "type")) && json_is_string(json_object_get(j, "title")) &&
		 json_is_string(json_object_get(j, "detail")) && json_is_string(json_object_get(j, "instance"));

	json_decref(j);
	return ok;
}

static int free_port(void)
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

/* Starts the daemon on d->dir (kept between restarts); 1 up, 0 failed. */
static int daemon_start(struct daemon *d, const char *extra_flag, const char *extra_value)
{
	const char *bin = getenv("PARACORRD_BIN");
	int attempt;

	for (attempt = 0; attempt < 5; attempt++) {
		char port[16], data[PATH_MAX], log[PATH_MAX];
		struct resp r;
		int i, st;

		d->port = free_port();
		snprintf(port, sizeof(port), "%d", d->port);
		snprintf(data, sizeof(data), "%s/data", d->dir);
		snprintf(log, sizeof(log), "%s/daemon.log", d->dir);
		snprintf(d->base, sizeof(d->base), "http://127.0.0.1:%d", d->port);
		d->pid = fork();
		if (d->pid < 0)
			return 0;
		if (d->pid == 0) {
			FILE *f = freopen(log, "a", stderr);
			(void)f;
			if (chdir(pc_test_root()) != 0)
				_exit(126);
			execl(bin, bin, "--port", port, "--data-dir", data, "--workers", "1", "--threads-per-job", "2",
			      "--poll-ms", "50", "--max-model-mb", "2", "--max-queue", "8",
			      extra_flag ? extra_flag : "--cache-mb", extra_value ? extra_value : "64", (char *)NULL);
			_exit(127);
		}
		for (i = 0; i < 200; i++) {
			if (waitpid(d->pid, &st, WNOHANG) == d->pid)
				break; /* died: the port may have been taken; try another */
			if (get(d, "/healthz", &r) == 0 && r.status == 200) {
				resp_free(&r);
				return 1;
			}
			resp_free(&r);
			sleep_ms(50);
		}
		if (i == 200) {
			kill(d->pid, SIGKILL);
			waitpid(d->pid, &st, 0);
		}
	}
	d->pid = 0;
	return 0;
}

/* SIGTERM (or sig) and wait; the exit status, -1 when it did not exit on
 * its own within 10 s (then it is killed). *seconds: how long it took. */
static int daemon_stop(struct daemon *d, int sig, double *seconds)
{
	double t0 = now_s();
	int st = 0, i;

	if (d->pid <= 0)
		return -1;
	kill(d->pid, sig);
	for (i = 0; i < 1000; i++) {
		if (waitpid(d->pid, &st, WNOHANG) == d->pid)
			break;
		sleep_ms(10);
	}
	if (seconds)
		*seconds = now_s() - t0;
	if (i == 1000) {
		kill(d->pid, SIGKILL);
		waitpid(d->pid, &st, 0);
		d->pid = 0;
		return -1;
	}
	d->pid = 0;
	return WIFEXITED(st) ? WEXITSTATUS(st) : (WIFSIGNALED(st) ? 128 + WTERMSIG(st) : -1);
}

static int setup(struct pc_test *t, struct daemon *d)
{
	const char *bin = getenv("PARACORRD_BIN");

	memset(d, 0, sizeof(*d));
	if (!bin || !bin[0]) {
		pc_test_skip(t, "PARACORRD_BIN is not set (make test sets it)");
		return 0;
	}
	if (!be_tmpdir(d->dir, sizeof(d->dir))) {
		pc_test_fail(t, __FILE__, __LINE__, "cannot make a temp dir");
		return 0;
	}
	curl_global_init(CURL_GLOBAL_DEFAULT);
	if (!daemon_start(d, NULL, NULL)) {
		pc_test_fail(t, __FILE__, __LINE__, "the daemon did not come up (see %s/daemon.log)", d->dir);
		return 0;
	}
	return 1;
}

static char *read_fixture(const char *rel, size_t *len)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/%s", pc_test_root(), rel);
	return be_read_file(path, len);
}

struct parts {
	const char *inputs, *labels; /* file paths (NULL: part left out) */
};

static curl_mime *dataset_mime(CURL *c, void *arg)
{
	struct parts *p = arg;
	curl_mime *m = curl_mime_init(c);
	curl_mimepart *part;

	if (p->inputs) {
		part = curl_mime_addpart(m);
		curl_mime_name(part, "inputs");
		curl_mime_filedata(part, p->inputs);
	}
	if (p->labels) {
		part = curl_mime_addpart(m);
		curl_mime_name(part, "labels");
		curl_mime_filedata(part, p->labels);
	}
	return m;
}

/* Uploads a dataset; its id into id (on 200/201). The status. */
static long upload_dataset(const struct daemon *d, const char *inputs, const char *labels, char id[65])
{
	char xi[PATH_MAX], yi[PATH_MAX];
	struct parts p = {NULL, NULL};
	struct resp r;
	json_t *j;
	long status;

	if (inputs) {
		snprintf(xi, sizeof(xi), "%s%s%s", inputs[0] == '/' ? "" : pc_test_root(), inputs[0] == '/' ? "" : "/",
			 inputs);
		p.inputs = xi;
	}
	if (labels) {
		snprintf(yi, sizeof(yi), "%s%s%s", labels[0] == '/' ? "" : pc_test_root(), labels[0] == '/' ? "" : "/",
			 labels);
		p.labels = yi;
	}
	if (request(d, "POST", "/v1/datasets", NULL, NULL, 0, dataset_mime, &p, NULL, &r))
		return -1;
	status = r.status;
	if ((status == 200 || status == 201) && (j = resp_json(&r))) {
		snprintf(id, 65, "%s", json_string_value(json_object_get(j, "id")) ? json_string_value(json_object_get(j, "id")) : "");
		json_decref(j);
	}
	resp_free(&r);
	return status;
}

static long upload_model(const struct daemon *d, const char *rel, char id[65], json_t **body)
{
	size_t len;
	char *data = read_fixture(rel, &len);
	struct resp r;
	json_t *j;
	long status;

	if (!data)
		return -1;
	if (request(d, "POST", "/v1/models", "application/octet-stream", data, len, NULL, NULL, NULL, &r)) {
		free(data);
		return -1;
	}
	free(data);
	status = r.status;
	j = resp_json(&r);
	if (j && json_is_string(json_object_get(j, "id")))
		snprintf(id, 65, "%s", json_string_value(json_object_get(j, "id")));
	if (body)
		*body = j;
	else
		json_decref(j);
	resp_free(&r);
	return status;
}

/* Submits a spec; the job id into id; the status. */
static long submit(const struct daemon *d, const char *spec, const char *idem, char *id, size_t id_size,
		   struct resp *keep)
{
	char hdr[300];
	struct resp r;
	json_t *j;
	long status;

	if (idem)
		snprintf(hdr, sizeof(hdr), "Idempotency-Key: %s", idem);
	if (request(d, "POST", "/v1/jobs", "application/json", spec, strlen(spec), NULL, NULL, idem ? hdr : NULL, &r))
		return -1;
	status = r.status;
	if ((j = resp_json(&r))) {
		if (id && json_is_string(json_object_get(j, "id")))
			snprintf(id, id_size, "%s", json_string_value(json_object_get(j, "id")));
		json_decref(j);
	}
	if (keep)
		*keep = r;
	else
		resp_free(&r);
	return status;
}

/* Polls a job until it is finished (or want); the job object (new ref). */
static json_t *wait_job(const struct daemon *d, const char *id, const char *want, double seconds)
{
	char path[128];
	double t0 = now_s();

	snprintf(path, sizeof(path), "/v1/jobs/%s", id);
	while (now_s() - t0 < seconds) {
		struct resp r;
		json_t *j = NULL;
		const char *st;

		if (get(d, path, &r) == 0 && r.status == 200 && (j = resp_json(&r))) {
			st = json_string_value(json_object_get(j, "status"));
			if (st && (!strcmp(st, want) || (!strcmp(want, "finished") &&
							 (!strcmp(st, "succeeded") || !strcmp(st, "failed") ||
							  !strcmp(st, "cancelled"))) ||
				   (strcmp(want, "running") && strcmp(want, "queued") &&
				    (!strcmp(st, "failed") || !strcmp(st, "cancelled") || !strcmp(st, "succeeded"))))) {
				resp_free(&r);
				return j;
			}
		}
		json_decref(j);
		resp_free(&r);
		sleep_ms(30);
	}
	return NULL;
}

/* `paracorr run` on a spec file: the report, or NULL (skip when unset). */
static json_t *cli_report(struct pc_test *t, const char *spec_text, const char *dir)
{
	const char *bin = getenv("PARACORR_BIN");
	char spec[PATH_MAX], out[PATH_MAX], cmd[3 * PATH_MAX];
	FILE *f;
	json_t *j;

	if (!bin || !bin[0])
		return NULL;
	snprintf(spec, sizeof(spec), "%s/spec.json", dir);
	snprintf(out, sizeof(out), "%s/cli-report.json", dir);
	if (!(f = fopen(spec, "w")))
		return NULL;
	fputs(spec_text, f);
	fclose(f);
	snprintf(cmd, sizeof(cmd), "cd '%s' && '%s' run --threads 2 '%s' > '%s' 2>/dev/null", pc_test_root(), bin, spec,
		 out);
	if (system(cmd) != 0) {
		pc_test_fail(t, __FILE__, __LINE__, "paracorr run failed: %s", cmd);
		return NULL;
	}
	j = json_load_file(out, 0, NULL);
	return j;
}

/* A report without what legitimately differs: timing, and the spec's
 * model/dataset (ids against paths). */
static void strip_report(json_t *rep)
{
	json_t *spec = json_object_get(rep, "spec");

	json_object_del(rep, "timing");
	if (spec) {
		json_object_del(spec, "model");
		json_object_del(spec, "dataset");
	}
}

#define SPEC_REST                                                                                                \
	"\"limit\": 48, \"batch_size\": 16, \"seed\": 5, \"corruption\": {\"norms\": [\"l2\", \"linf\"], "       \
	"\"epsilons\": [0.05, 0.5], \"random_trials\": 2, \"groups\": [\"model\", \"tensor\"]}"

TEST(http_flow)
{
	struct daemon d;
	char model[65] = "", model2[65] = "", ds[65] = "", bad_ds[65] = "", job[64] = "", job2[64] = "",
	     spec[2048], path[256], hv[256];
	json_t *m1 = NULL, *m2 = NULL, *j, *rep, *cli;
	struct resp r;
	size_t i;
	double secs = 0;
	char *big;

	if (!setup(t, &d))
		return;
	/* models: 201, then 200 with the same body */
	CHECK_INT(upload_model(&d, FIX "mlp_op13.onnx", model, &m1), 201);
	CHECK_INT(upload_model(&d, FIX "mlp_op13.onnx", model2, &m2), 200);
	CHECK(m1 && m2 && json_equal(m1, m2));
	CHECK(!strcmp(model, model2) && strlen(model) == 64);
	CHECK(m1 && json_integer_value(json_object_get(m1, "parameters")) > 0);
	CHECK(m1 && json_array_size(json_object_get(m1, "tensors")) > 0 &&
	      json_is_string(json_object_get(json_array_get(json_object_get(m1, "tensors"), 0), "node")));
	CHECK(m1 && json_array_size(json_object_get(m1, "ops")) > 0);
	json_decref(m1);
	json_decref(m2);

	/* a malformed ONNX file: 400 or 422 as problem+json, no server path */
	REQUIRE(request(&d, "POST", "/v1/models", "application/octet-stream", "not an onnx file at all", 23, NULL, NULL,
			NULL, &r) == 0);
	CHECK_MSG(is_problem(&r, 422) || is_problem(&r, 400), "malformed model: %ld %s", r.status, r.body);
	CHECK(r.body && !strstr(r.body, "/tmp/") && !strstr(r.body, d.dir));
	resp_free(&r);
	/* wrong media type 415, oversized Content-Length 413 (limit 2 MiB) */
	REQUIRE(request(&d, "POST", "/v1/models", "text/plain", "x", 1, NULL, NULL, NULL, &r) == 0);
	CHECK_MSG(is_problem(&r, 415), "415: %ld", r.status);
	resp_free(&r);
	big = calloc(1, 3 << 20);
	REQUIRE(big);
	REQUIRE(request(&d, "POST", "/v1/models", "application/octet-stream", big, 3 << 20, NULL, NULL, NULL, &r) == 0);
	CHECK_MSG(is_problem(&r, 413), "413: %ld", r.status);
	resp_free(&r);
	free(big);
	/* unknown ids and routes 404, wrong method 405 with Allow */
	REQUIRE(get(&d, "/v1/models/0000000000000000000000000000000000000000000000000000000000000000", &r) == 0);
	CHECK(is_problem(&r, 404));
	resp_free(&r);
	REQUIRE(get(&d, "/v1/jobs/j-0000000000000000", &r) == 0);
	CHECK(is_problem(&r, 404));
	resp_free(&r);
	REQUIRE(get(&d, "/v1/nothing", &r) == 0);
	CHECK(is_problem(&r, 404));
	resp_free(&r);
	REQUIRE(request(&d, "PUT", "/v1/models", NULL, NULL, 0, NULL, NULL, NULL, &r) == 0);
	CHECK(is_problem(&r, 405));
	CHECK(header(&r, "Allow", hv, sizeof(hv)) && strstr(hv, "POST") && strstr(hv, "GET"));
	resp_free(&r);
	/* model GET and HEAD */
	snprintf(path, sizeof(path), "/v1/models/%s", model);
	REQUIRE(get(&d, path, &r) == 0);
	CHECK_INT(r.status, 200);
	resp_free(&r);
	REQUIRE(request(&d, "HEAD", path, NULL, NULL, 0, NULL, NULL, NULL, &r) == 0);
	CHECK_INT(r.status, 200);
	resp_free(&r);
	REQUIRE(get(&d, "/v1/models", &r) == 0);
	CHECK(r.status == 200 && r.body && strstr(r.body, model));
	resp_free(&r);

	/* datasets: 201 with samples and classes; mismatched counts 422 */
	CHECK_INT(upload_dataset(&d, FIX "sample64_u8.npy", FIX "labels64_i64.npy", ds), 201);
	CHECK(strlen(ds) == 64);
	snprintf(path, sizeof(path), "/v1/datasets/%s", ds);
	REQUIRE(get(&d, path, &r) == 0);
	j = resp_json(&r);
	CHECK(r.status == 200 && j && json_integer_value(json_object_get(j, "samples")) == 64 &&
	      json_integer_value(json_object_get(j, "classes")) > 1);
	json_decref(j);
	resp_free(&r);
	if (access(T10K_Y, R_OK) == 0) /* 64 samples against 10,000 labels */
		CHECK_INT(upload_dataset(&d, FIX "sample64_u8.npy", T10K_Y, bad_ds), 422);
	CHECK_INT(upload_dataset(&d, NULL, FIX "labels64_i64.npy", bad_ds), 422);
	REQUIRE(request(&d, "POST", "/v1/datasets", "application/json", "{}", 2, NULL, NULL, NULL, &r) == 0);
	CHECK(is_problem(&r, 415));
	resp_free(&r);

	/* jobs: spec errors 400 / 422 with JSON pointers */
	REQUIRE(request(&d, "POST", "/v1/jobs", "application/json", "{nope", 5, NULL, NULL, NULL, &r) == 0);
	CHECK(is_problem(&r, 400));
	resp_free(&r);
	REQUIRE(request(&d, "POST", "/v1/jobs", "text/plain", "{}", 2, NULL, NULL, NULL, &r) == 0);
	CHECK(is_problem(&r, 415));
	resp_free(&r);
	snprintf(spec, sizeof(spec), "{\"model\": \"%s\", \"dataset\": \"%s\", \"limit\": -2}", model, ds);
	REQUIRE(request(&d, "POST", "/v1/jobs", "application/json", spec, strlen(spec), NULL, NULL, NULL, &r) == 0);
	j = resp_json(&r);
	CHECK(is_problem(&r, 422));
	CHECK(j && !strcmp(json_string_value(json_object_get(json_array_get(json_object_get(j, "errors"), 0), "pointer"))
				   ? json_string_value(json_object_get(json_array_get(json_object_get(j, "errors"), 0), "pointer"))
				   : "",
			   "/limit"));
	json_decref(j);
	resp_free(&r);
	snprintf(spec, sizeof(spec), "{\"model\": \"%064d\", \"dataset\": \"%s\"}", 0, ds);
	REQUIRE(request(&d, "POST", "/v1/jobs", "application/json", spec, strlen(spec), NULL, NULL, NULL, &r) == 0);
	CHECK(is_problem(&r, 422) && strstr(r.body, "\"/model\""));
	resp_free(&r);

	/* a job to success: 202 + Location, then the report equals the CLI's */
	snprintf(spec, sizeof(spec), "{\"model\": \"%s\", \"dataset\": \"%s\", " SPEC_REST "}", model, ds);
	REQUIRE(submit(&d, spec, "key-1", job, sizeof(job), &r) == 202);
	snprintf(path, sizeof(path), "/v1/jobs/%s", job);
	CHECK(header(&r, "Location", hv, sizeof(hv)) && !strcmp(hv, path));
	resp_free(&r);
	j = wait_job(&d, job, "succeeded", 60);
	REQUIRE_MSG(j, "job %s did not finish", job);
	CHECK_MSG(!strcmp(json_string_value(json_object_get(j, "status")), "succeeded"), "status %s",
		  json_string_value(json_object_get(j, "status")));
	CHECK_INT(json_integer_value(json_object_get(j, "attempts")), 1);
	json_decref(j);
	/* Idempotency-Key: the same spec gives the same job; another spec 409 */
	CHECK_INT(submit(&d, spec, "key-1", job2, sizeof(job2), NULL), 202);
	CHECK(!strcmp(job, job2));
	CHECK_INT(submit(&d, "{\"model\": \"x\"}", "key-1", NULL, 0, NULL), 422);
	{
		char other[2048];
		snprintf(other, sizeof(other), "{\"model\": \"%s\", \"dataset\": \"%s\", \"limit\": 8}", model, ds);
		CHECK_INT(submit(&d, other, "key-1", NULL, 0, NULL), 409);
	}
	snprintf(path, sizeof(path), "/v1/jobs/%s/report", job);
	REQUIRE(get(&d, path, &r) == 0);
	CHECK_INT(r.status, 200);
	rep = resp_json(&r);
	resp_free(&r);
	{
		char cli_spec[2048];
		snprintf(cli_spec, sizeof(cli_spec),
			 "{\"model\": \"" FIX "mlp_op13.onnx\", \"dataset\": {\"inputs\": \"" FIX
			 "sample64_u8.npy\", \"labels\": \"" FIX "labels64_i64.npy\"}, " SPEC_REST "}");
		cli = cli_report(t, cli_spec, d.dir);
	}
	if (rep && cli) {
		strip_report(rep);
		strip_report(cli);
		CHECK_MSG(json_equal(rep, cli), "the service's report differs from paracorr run's");
	} else {
		CHECK_MSG(rep != NULL, "no report");
		CHECK_MSG(cli != NULL || !getenv("PARACORR_BIN"), "no report from paracorr run");
	}
	json_decref(rep);
	json_decref(cli);

	/* cancel: a queued job behind a long one is cancelled at once */
	{
		char slow[64] = "", queued[64] = "";

		snprintf(spec, sizeof(spec),
			 "{\"model\": \"%s\", \"dataset\": \"%s\", \"seed\": 1, \"corruption\": {\"norms\": [\"l2\", "
			 "\"linf\"], \"epsilons\": [0.01, 0.1, 1, 2], \"random_trials\": 400, \"steps\": 20, \"groups\": "
			 "[\"model\", \"tensor\", \"layer\"]}}",
			 model, ds);
		CHECK_INT(submit(&d, spec, NULL, slow, sizeof(slow), NULL), 202);
		CHECK_INT(submit(&d, spec, NULL, queued, sizeof(queued), NULL), 202);
		snprintf(path, sizeof(path), "/v1/jobs/%s/cancel", queued);
		REQUIRE(request(&d, "POST", path, NULL, NULL, 0, NULL, NULL, NULL, &r) == 0);
		j = resp_json(&r);
		CHECK_MSG(r.status == 200 || r.status == 202, "cancel: %ld", r.status);
		json_decref(j);
		resp_free(&r);
		j = wait_job(&d, queued, "cancelled", 10);
		CHECK(j && !strcmp(json_string_value(json_object_get(j, "status")), "cancelled"));
		json_decref(j);
		/* the running one through DELETE (which cancels a pending job) */
		snprintf(path, sizeof(path), "/v1/jobs/%s", slow);
		REQUIRE(request(&d, "DELETE", path, NULL, NULL, 0, NULL, NULL, NULL, &r) == 0);
		CHECK_MSG(r.status == 200 || r.status == 202, "delete of a pending job: %ld", r.status);
		resp_free(&r);
		j = wait_job(&d, slow, "cancelled", 20);
		CHECK(j && !strcmp(json_string_value(json_object_get(j, "status")), "cancelled"));
		json_decref(j);
		/* a finished job's report: 409; cancel of a finished job: 409 */
		snprintf(path, sizeof(path), "/v1/jobs/%s/report", queued);
		REQUIRE(get(&d, path, &r) == 0);
		CHECK(is_problem(&r, 409));
		resp_free(&r);
		snprintf(path, sizeof(path), "/v1/jobs/%s/cancel", queued);
		REQUIRE(request(&d, "POST", path, NULL, NULL, 0, NULL, NULL, NULL, &r) == 0);
		CHECK(is_problem(&r, 409));
		resp_free(&r);
		/* DELETE of a finished job removes it */
		snprintf(path, sizeof(path), "/v1/jobs/%s", queued);
		REQUIRE(request(&d, "DELETE", path, NULL, NULL, 0, NULL, NULL, NULL, &r) == 0);
		CHECK_INT(r.status, 204);
		resp_free(&r);
		REQUIRE(get(&d, path, &r) == 0);
		CHECK(is_problem(&r, 404));
		resp_free(&r);
	}

	/* listings with a status filter and paging */
	REQUIRE(get(&d, "/v1/jobs?status=succeeded", &r) == 0);
	j = resp_json(&r);
	CHECK(r.status == 200 && j && json_array_size(json_object_get(j, "items")) == 1);
	for (i = 0; j && i < json_array_size(json_object_get(j, "items")); i++)
		CHECK(!strcmp(json_string_value(json_object_get(json_array_get(json_object_get(j, "items"), i), "status")),
			      "succeeded"));
	json_decref(j);
	resp_free(&r);
	REQUIRE(get(&d, "/v1/jobs?limit=1", &r) == 0);
	j = resp_json(&r);
	CHECK(r.status == 200 && j && json_array_size(json_object_get(j, "items")) == 1 &&
	      json_is_string(json_object_get(j, "next_cursor")));
	if (j && json_is_string(json_object_get(j, "next_cursor"))) {
		struct resp r2;
		json_t *j2;
		snprintf(path, sizeof(path), "/v1/jobs?limit=1&cursor=%s", json_string_value(json_object_get(j, "next_cursor")));
		REQUIRE(get(&d, path, &r2) == 0);
		j2 = resp_json(&r2);
		CHECK(j2 && json_array_size(json_object_get(j2, "items")) == 1 &&
		      strcmp(json_string_value(json_object_get(json_array_get(json_object_get(j2, "items"), 0), "id")),
			     json_string_value(json_object_get(json_array_get(json_object_get(j, "items"), 0), "id"))));
		json_decref(j2);
		resp_free(&r2);
	}
	json_decref(j);
	resp_free(&r);
	REQUIRE(get(&d, "/v1/jobs?status=bogus", &r) == 0);
	CHECK(is_problem(&r, 400));
	resp_free(&r);

	/* a model a pending job names cannot go; an unused dataset can */
	REQUIRE(get(&d, "/readyz", &r) == 0);
	CHECK_MSG(r.status == 200 || r.status == 503, "readyz %ld", r.status);
	resp_free(&r);

	/* metrics */
	REQUIRE(get(&d, "/metrics", &r) == 0);
	CHECK_INT(r.status, 200);
	CHECK(r.body && strstr(r.body, "paracorr_http_requests_total{route=\"/v1/jobs/{id}\",method=\"GET\",code=\"200\"}"));
	CHECK(r.body && strstr(r.body, "paracorr_http_request_duration_seconds_bucket{route=\"/v1/models\""));
	CHECK(r.body && strstr(r.body, "paracorr_jobs_total{kind=\"analyze\",outcome=\"succeeded\"} 1"));
	CHECK(r.body && strstr(r.body, "paracorr_queue_depth{state=\"queued\"}"));
	CHECK(r.body && strstr(r.body, "paracorr_upload_bytes_total{kind=\"model\"}"));
	CHECK(r.body && strstr(r.body, "paracorr_build_info{"));
	resp_free(&r);

	/* dataset delete: 204, then 404 */
	snprintf(path, sizeof(path), "/v1/datasets/%s", ds);
	REQUIRE(request(&d, "DELETE", path, NULL, NULL, 0, NULL, NULL, NULL, &r) == 0);
	CHECK_INT(r.status, 204);
	resp_free(&r);
	REQUIRE(get(&d, path, &r) == 0);
	CHECK(is_problem(&r, 404));
	resp_free(&r);

	/* the daemon still serves, then SIGTERM: exit 0 well within 10 s */
	REQUIRE(get(&d, "/healthz", &r) == 0);
	CHECK_INT(r.status, 200);
	resp_free(&r);
	CHECK_INT(daemon_stop(&d, SIGTERM, &secs), 0);
	CHECK_MSG(secs < 10, "drain took %.2f s", secs);
	be_rmtree(d.dir);
}

/* The job of http_restart: about a second of work, checked for cancel
 * between batches. */
#define RESTART_SPEC                                                                                             \
	"\"limit\": 1000, \"batch_size\": 100, \"seed\": 2, \"corruption\": {\"norms\": [\"l2\", \"linf\"], "    \
	"\"epsilons\": [0.01, 0.1, 1], \"random_trials\": 10, \"steps\": 3, \"groups\": [\"model\", \"tensor\"]}"

TEST(http_restart)
{
	struct daemon d;
	char model[65] = "", ds[65] = "", job[64] = "", queued[64] = "", spec[2048], path[128];
	struct resp r;
	json_t *j;
	double secs = 0;

	if (access(T10K_X, R_OK) != 0 || access(T10K_Y, R_OK) != 0) {
		pc_test_skip(t, "no Fashion-MNIST under /usr/share/datasets");
		return;
	}
	if (!setup(t, &d))
		return;
	CHECK_INT(upload_model(&d, FIX "mlp_op13.onnx", model, NULL), 201);
	CHECK_INT(upload_dataset(&d, T10K_X, T10K_Y, ds), 201);
	snprintf(spec, sizeof(spec), "{\"model\": \"%s\", \"dataset\": \"%s\", " RESTART_SPEC "}", model, ds);
	REQUIRE(submit(&d, spec, NULL, job, sizeof(job), NULL) == 202);
	REQUIRE(submit(&d, spec, NULL, queued, sizeof(queued), NULL) == 202);
	j = wait_job(&d, job, "running", 30);
	REQUIRE_MSG(j && !strcmp(json_string_value(json_object_get(j, "status")), "running"), "the job never ran");
	json_decref(j);

	/* SIGTERM while it runs: exit 0 within 10 s, the job queued again */
	CHECK_INT(daemon_stop(&d, SIGTERM, &secs), 0);
	CHECK_MSG(secs < 10, "drain took %.2f s", secs);
	fprintf(stderr, "  http_restart: SIGTERM with a job running: exit after %.3f s\n", secs);
	REQUIRE(daemon_start(&d, NULL, NULL));
	j = wait_job(&d, job, "running", 30);
	REQUIRE_MSG(j && !strcmp(json_string_value(json_object_get(j, "status")), "running"), "not rerun");
	CHECK_INT(json_integer_value(json_object_get(j, "attempts")), 1);
	json_decref(j);

	/* kill -9 during the rerun; the restart runs it again to success */
	CHECK_INT(daemon_stop(&d, SIGKILL, NULL), 128 + SIGKILL);
	REQUIRE(daemon_start(&d, NULL, NULL));
	j = wait_job(&d, job, "succeeded", 120);
	REQUIRE_MSG(j, "the job did not finish after the restart");
	CHECK_MSG(!strcmp(json_string_value(json_object_get(j, "status")), "succeeded"), "status %s",
		  json_string_value(json_object_get(j, "status")));
	CHECK_INT(json_integer_value(json_object_get(j, "attempts")), 2);
	json_decref(j);
	snprintf(path, sizeof(path), "/v1/jobs/%s/report", job);
	REQUIRE(get(&d, path, &r) == 0);
	CHECK_INT(r.status, 200);
	resp_free(&r);
	/* the job queued behind it, and the uploads, survived too */
	j = wait_job(&d, queued, "succeeded", 120);
	CHECK(j && !strcmp(json_string_value(json_object_get(j, "status")), "succeeded"));
	json_decref(j);
	snprintf(path, sizeof(path), "/v1/models/%s", model);
	REQUIRE(get(&d, path, &r) == 0);
	CHECK_INT(r.status, 200);
	resp_free(&r);
	CHECK_INT(daemon_stop(&d, SIGTERM, &secs), 0);
	be_rmtree(d.dir);
}
