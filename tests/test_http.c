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
#include <dirent.h>
#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "http_server.h"
#include "problem.h"
#include "sha256.h"
#include "paracorr/sys.h"
#include "be_util.h"
#include "html.h"
#include "onnx_build.h"
#include "pg_util.h"
#include "test.h"


/* Every request the tests made ("METHOD /path", query dropped), for the
 * check that each route of api/openapi.yaml was exercised. */
static pthread_mutex_t seen_mu = PTHREAD_MUTEX_INITIALIZER;
static char **seen;
static size_t n_seen, cap_seen;

static void seen_add(const char *method, const char *path)
{
	char buf[600];
	size_t n;

	snprintf(buf, sizeof(buf), "%s %s", method, path);
	buf[strcspn(buf, "?")] = '\0';
	pthread_mutex_lock(&seen_mu);
	for (n = 0; n < n_seen; n++)
		if (!strcmp(seen[n], buf))
			break;
	if (n == n_seen) {
		if (n_seen == cap_seen) {
			char **p = realloc(seen, (cap_seen = cap_seen ? 2 * cap_seen : 64) * sizeof(*seen));
			if (!p)
				abort();
			seen = p;
		}
		if (!(seen[n_seen++] = strdup(buf)))
			abort();
	}
	pthread_mutex_unlock(&seen_mu);
}

/* One request, recorded for http_z_openapi_routes. body NULL: none;
 * n_parts > 0: multipart. extra: a header line. */
static int request(const struct be_daemon *d, const char *method, const char *path, const char *ctype,
		   const void *body, size_t len, const struct be_part *parts, int n_parts, const char *extra,
		   struct be_resp *r)
{
	const char *headers[] = {extra, NULL};
	struct be_req q = {.method = method,
			   .url = d->base,
			   .path = path,
			   .ctype = ctype,
			   .headers = headers,
			   .token = d->token,
			   .body = body,
			   .len = len,
			   .parts = parts,
			   .n_parts = n_parts};

	if (be_request(&q, r))
		return -1;
	seen_add(method, path);
	return 0;
}

static int get(const struct be_daemon *d, const char *path, struct be_resp *r)
{
	return request(d, "GET", path, NULL, NULL, 0, NULL, 0, NULL, r);
}

/* Whether r is a problem+json with the given status and type (NULL: any
 * type, for a success status only), its title the error table's. */
static int is_problem(const struct be_resp *r, long status, const char *type)
{
	char ct[128];
	json_t *j = be_resp_json(r);
	const char *jt = json_string_value(json_object_get(j, "type"));
	int code = pcd_problem_code(jt);
	int ok = r->status == status && be_resp_header(r, "Content-Type", ct, sizeof(ct)) &&
		 !strcmp(ct, "application/problem+json") && j && json_integer_value(json_object_get(j, "status")) == status &&
		 jt && (!type || !strcmp(jt, type)) && code > 0 && pc_status_http((enum pc_status)code) == status &&
		 !strcmp(json_string_value(json_object_get(j, "title")) ?: "", pc_status_message((enum pc_status)code)) &&
		 json_is_string(json_object_get(j, "detail")) && json_is_string(json_object_get(j, "instance"));

	json_decref(j);
	return ok;
}

/* An answer that is the problem status/type, or a failure naming what
 * came instead; frees r. */
static void expect_problem_resp(struct pc_test *t, int line, struct be_resp *r, long status, const char *type,
				const char *what)
{
	if (!is_problem(r, status, type))
		pc_test_fail(t, __FILE__, line, "%s: %ld %s, expected %ld %s", what, r->status, r->body ? r->body : "",
			     status, type);
	be_resp_free(r);
}

/* A cancel's answer, exact for the state the job was in: a queued job is
 * cancelled at once (200, cancelled); a running one stops at its next
 * check (202), which may come before the answer is read back (running or
 * cancelled, never queued). */
static int cancel_answer(const struct be_resp *r, const char *was)
{
	json_t *j = be_resp_json(r);
	const char *st = json_string_value(json_object_get(j, "status"));
	int ok = st && (!strcmp(was, "queued") ? r->status == 200 && !strcmp(st, "cancelled")
					       : r->status == 202 && (!strcmp(st, "running") || !strcmp(st, "cancelled")));

	json_decref(j);
	return ok;
}

/* A request without a body answered with status: a problem+json body for
 * an error (a HEAD has none), nothing else checked. */
static void expect(struct pc_test *t, int line, const struct be_daemon *d, const char *method, const char *path,
		   long status, const char *type)
{
	struct be_resp r;

	if (request(d, method, path, NULL, NULL, 0, NULL, 0, NULL, &r) != 0) {
		pc_test_fail(t, __FILE__, line, "%s %s: no answer", method, path);
		return;
	}
	if (r.status != status || (status >= 400 && strcmp(method, "HEAD") && !is_problem(&r, status, type)))
		pc_test_fail(t, __FILE__, line, "%s %s: %ld, expected %ld%s", method, path, r.status, status,
			     status >= 400 ? " with a problem body" : "");
	be_resp_free(&r);
}

#define EXPECT(d, method, path, status) expect(t, __LINE__, d, method, path, status, NULL)
/* an error answer: its status and problem type, exactly */
#define EXPECT_PROBLEM(d, method, path, status, type) expect(t, __LINE__, d, method, path, status, type)

/* The test defaults before `extra` (a later flag wins): one worker, a
 * 2 MiB model limit, a short poll. */
static const char *const http_defaults[] = {"--workers",	 "1",  "--threads-per-job", "2",  "--poll-ms",
					   "50",	 "--max-model-mb", "2",  "--max-queue",	       "8",
					   "--cache-mb",	 "64", "--min-free-disk-mb", "1",  NULL};

/* Starts the daemon on d->dir (kept between restarts); 1 up, 0 failed. */
static int daemon_start(struct be_daemon *d, const char *const *extra)
{
	return be_daemon_start(d, getenv("PARACORRD_BIN"), http_defaults, extra);
}

static int setup_with(struct pc_test *t, struct be_daemon *d, const char *const *extra)
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
	if (!daemon_start(d, extra)) {
		pc_test_fail(t, __FILE__, __LINE__, "the daemon did not come up (see %s/daemon.log)", d->dir);
		return 0;
	}
	return 1;
}

static int setup(struct pc_test *t, struct be_daemon *d)
{
	return setup_with(t, d, NULL);
}

static char *read_fixture(const char *rel, size_t *len)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/%s", pc_test_root(), rel);
	return be_read_file(path, len);
}

/* Uploads a dataset; its id into id (on 200/201), the answer into *keep
 * when keep is not NULL. The status. */
static long upload_dataset_keep(const struct be_daemon *d, const char *inputs, const char *labels, char id[65],
				struct be_resp *keep)
{
	char xi[PATH_MAX], yi[PATH_MAX];
	const char *px = NULL, *py = NULL;
	struct be_part p[2];
	struct be_resp r;
	json_t *j;
	long status;

	if (inputs) {
		snprintf(xi, sizeof(xi), "%s%s%s", inputs[0] == '/' ? "" : pc_test_root(), inputs[0] == '/' ? "" : "/",
			 inputs);
		px = xi;
	}
	if (labels) {
		snprintf(yi, sizeof(yi), "%s%s%s", labels[0] == '/' ? "" : pc_test_root(), labels[0] == '/' ? "" : "/",
			 labels);
		py = yi;
	}
	if (request(d, "POST", "/v1/datasets", NULL, NULL, 0, p, be_dataset_parts(p, px, py), NULL, &r))
		return -1;
	status = r.status;
	if ((status == 200 || status == 201) && (j = be_resp_json(&r))) {
		snprintf(id, 65, "%s", json_string_value(json_object_get(j, "id")) ? json_string_value(json_object_get(j, "id")) : "");
		json_decref(j);
	}
	if (keep)
		*keep = r;
	else
		be_resp_free(&r);
	return status;
}

static long upload_dataset(const struct be_daemon *d, const char *inputs, const char *labels, char id[65])
{
	return upload_dataset_keep(d, inputs, labels, id, NULL);
}

/* A dataset upload refused with this status and problem type. */
static void expect_dataset_refused(struct pc_test *t, int line, const struct be_daemon *d, const char *inputs,
				   const char *labels, long status, const char *type)
{
	char id[65] = "";
	struct be_resp r;

	if (upload_dataset_keep(d, inputs, labels, id, &r) < 0) {
		pc_test_fail(t, __FILE__, line, "dataset upload: no answer");
		return;
	}
	expect_problem_resp(t, line, &r, status, type, "dataset upload");
}

#define EXPECT_DATASET_REFUSED(d, inputs, labels, status, type)                                                    \
	expect_dataset_refused(t, __LINE__, d, inputs, labels, status, type)

static long upload_model(const struct be_daemon *d, const char *rel, char id[65], json_t **body)
{
	size_t len;
	char *data = read_fixture(rel, &len);
	struct be_resp r;
	json_t *j;
	long status;

	if (!data)
		return -1;
	if (request(d, "POST", "/v1/models", "application/octet-stream", data, len, NULL, 0, NULL, &r)) {
		free(data);
		return -1;
	}
	free(data);
	status = r.status;
	j = be_resp_json(&r);
	if (j && json_is_string(json_object_get(j, "id")))
		snprintf(id, 65, "%s", json_string_value(json_object_get(j, "id")));
	if (body)
		*body = j;
	else
		json_decref(j);
	be_resp_free(&r);
	return status;
}

/* Submits a spec; the job id into id; the status. */
static long submit(const struct be_daemon *d, const char *spec, const char *idem, char *id, size_t id_size,
		   struct be_resp *keep)
{
	char hdr[300];
	struct be_resp r;
	json_t *j;
	long status;

	if (idem)
		snprintf(hdr, sizeof(hdr), "Idempotency-Key: %s", idem);
	if (request(d, "POST", "/v1/jobs", "application/json", spec, strlen(spec), NULL, 0, idem ? hdr : NULL, &r))
		return -1;
	status = r.status;
	if ((j = be_resp_json(&r))) {
		if (id && json_is_string(json_object_get(j, "id")))
			snprintf(id, id_size, "%s", json_string_value(json_object_get(j, "id")));
		json_decref(j);
	}
	if (keep)
		*keep = r;
	else
		be_resp_free(&r);
	return status;
}

/* Polls a job until it is finished (or want); the job object (new ref). */
static json_t *wait_job(const struct be_daemon *d, const char *id, const char *want, double seconds)
{
	char path[128];
	double t0 = pc_sys_seconds();

	snprintf(path, sizeof(path), "/v1/jobs/%s", id);
	while (pc_sys_seconds() - t0 < seconds) {
		struct be_resp r;
		json_t *j = NULL;
		const char *st;

		if (get(d, path, &r) == 0 && r.status == 200 && (j = be_resp_json(&r))) {
			st = json_string_value(json_object_get(j, "status"));
			if (st && (!strcmp(st, want) || (!strcmp(want, "finished") &&
							 (!strcmp(st, "succeeded") || !strcmp(st, "failed") ||
							  !strcmp(st, "cancelled"))) ||
				   (strcmp(want, "running") && strcmp(want, "queued") &&
				    (!strcmp(st, "failed") || !strcmp(st, "cancelled") || !strcmp(st, "succeeded"))))) {
				be_resp_free(&r);
				return j;
			}
		}
		json_decref(j);
		be_resp_free(&r);
		be_sleep_ms(30);
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
	snprintf(cmd, sizeof(cmd), "'%s' run --threads 2 '%s' > '%s' 2>/dev/null", bin, spec, out);
	if (be_run(cmd, NULL, 0, 300) != 0) {
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

/* A setup helper's way out after the daemon is up: it goes, with its
 * directory. 0, the helpers' failure. */
static int setup_undo(struct be_daemon *d)
{
	be_daemon_stop(d, SIGKILL, NULL);
	be_rmtree(d->dir);
	return 0;
}

/* The http_flow tests: each starts its own daemon (flow_setup: a daemon
 * with mlp_op13 and the 64-sample dataset uploaded), so any one of them
 * runs alone and in any order. */
static int flow_setup(struct pc_test *t, struct be_daemon *d, char model[65], char ds[65])
{
	if (!setup(t, d))
		return 0;
	if (upload_model(d, FIX "mlp_op13.onnx", model, NULL) != 201 ||
	    upload_dataset(d, FIX "sample64_u8.npy", FIX "labels64_i64.npy", ds) != 201) {
		pc_test_fail(t, __FILE__, __LINE__, "the flow fixture's uploads failed");
		be_daemon_stop(d, SIGKILL, NULL);
		be_rmtree(d->dir);
		return 0;
	}
	return 1;
}

/* The end of every flow test: the daemon still serves, SIGTERM exits 0. */
static void flow_teardown(struct pc_test *t, struct be_daemon *d)
{
	EXPECT(d, "GET", "/healthz", 200);
	CHECK_INT(be_daemon_stop(d, SIGTERM, NULL), 0);
	be_rmtree(d->dir);
}

/* Runs the SPEC_REST job on the fixture to success; job gets its id. */
static int flow_job(struct pc_test *t, const struct be_daemon *d, const char *model, const char *ds, const char *idem,
		    char job[64])
{
	char spec[2048];
	json_t *j;
	int ok;

	snprintf(spec, sizeof(spec), "{\"model\": \"%s\", \"dataset\": \"%s\", " SPEC_REST "}", model, ds);
	if (submit(d, spec, idem, job, 64, NULL) != 202) {
		pc_test_fail(t, __FILE__, __LINE__, "the flow job was not accepted");
		return 0;
	}
	j = wait_job(d, job, "succeeded", 60);
	ok = j && !strcmp(json_string_value(json_object_get(j, "status")) ?: "", "succeeded");
	if (!ok)
		pc_test_fail(t, __FILE__, __LINE__, "job %s did not succeed", job);
	json_decref(j);
	return ok;
}

TEST(http_flow_upload_model)
{
	struct be_daemon d;
	char model[65] = "", model2[65] = "", path[256];
	json_t *m1 = NULL, *m2 = NULL;
	struct be_resp r;
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

	/* a malformed ONNX file: 422 format as problem+json, no server path */
	REQUIRE(request(&d, "POST", "/v1/models", "application/octet-stream", "not an onnx file at all", 23, NULL, 0,
			NULL, &r) == 0);
	CHECK_MSG(is_problem(&r, 422, "/problems/format"), "malformed model: %ld %s", r.status, r.body);
	CHECK(r.body && !strstr(r.body, "/tmp/") && !strstr(r.body, d.dir));
	be_resp_free(&r);
	/* wrong media type 415, oversized Content-Length 413 (limit 2 MiB) */
	REQUIRE(request(&d, "POST", "/v1/models", "text/plain", "x", 1, NULL, 0, NULL, &r) == 0);
	CHECK_MSG(is_problem(&r, 415, "/problems/media_type"), "415: %ld", r.status);
	be_resp_free(&r);
	big = calloc(1, 3 << 20);
	REQUIRE(big);
	/* as curl sends a large body: the answer comes before the body does */
	REQUIRE(request(&d, "POST", "/v1/models", "application/octet-stream", big, 3 << 20, NULL, 0,
			"Expect: 100-continue", &r) == 0);
	CHECK_MSG(is_problem(&r, 413, "/problems/limit"), "413: %ld", r.status);
	be_resp_free(&r);
	free(big);
	/* model GET and HEAD, and the listing */
	snprintf(path, sizeof(path), "/v1/models/%s", model);
	EXPECT(&d, "GET", path, 200);
	EXPECT(&d, "HEAD", path, 200);
	REQUIRE(get(&d, "/v1/models", &r) == 0);
	CHECK(r.status == 200 && r.body && strstr(r.body, model));
	be_resp_free(&r);
	flow_teardown(t, &d);
}

TEST(http_flow_unknown_routes)
{
	struct be_daemon d;
	char hv[256];
	struct be_resp r;

	if (!setup(t, &d))
		return;
	/* unknown ids and routes 404, wrong method 405 with Allow */
	EXPECT_PROBLEM(&d, "GET", "/v1/models/0000000000000000000000000000000000000000000000000000000000000000", 404, "/problems/not_found");
	EXPECT_PROBLEM(&d, "GET", "/v1/jobs/j-0000000000000000", 404, "/problems/not_found");
	EXPECT_PROBLEM(&d, "GET", "/v1/nothing", 404, "/problems/not_found");
	REQUIRE(request(&d, "PUT", "/v1/models", NULL, NULL, 0, NULL, 0, NULL, &r) == 0);
	CHECK(is_problem(&r, 405, "/problems/method_not_allowed"));
	CHECK(be_resp_header(&r, "Allow", hv, sizeof(hv)) && strstr(hv, "POST") && strstr(hv, "GET"));
	be_resp_free(&r);
	flow_teardown(t, &d);
}

TEST(http_flow_upload_dataset)
{
	struct be_daemon d;
	char ds[65] = "", path[256];
	json_t *j;
	struct be_resp r;

	if (!setup(t, &d))
		return;
	/* datasets: 201 with samples and classes; mismatched counts 422 */
	CHECK_INT(upload_dataset(&d, FIX "sample64_u8.npy", FIX "labels64_i64.npy", ds), 201);
	CHECK(strlen(ds) == 64);
	snprintf(path, sizeof(path), "/v1/datasets/%s", ds);
	REQUIRE(get(&d, path, &r) == 0);
	j = be_resp_json(&r);
	CHECK(r.status == 200 && j && json_integer_value(json_object_get(j, "samples")) == 64 &&
	      json_integer_value(json_object_get(j, "classes")) > 1);
	json_decref(j);
	be_resp_free(&r);
	if (access(T10K_Y, R_OK) == 0) /* 64 samples against 10,000 labels */
		EXPECT_DATASET_REFUSED(&d, FIX "sample64_u8.npy", T10K_Y, 422, "/problems/format");
	EXPECT_DATASET_REFUSED(&d, NULL, FIX "labels64_i64.npy", 422, "/problems/format");
	REQUIRE(request(&d, "POST", "/v1/datasets", "application/json", "{}", 2, NULL, 0, NULL, &r) == 0);
	CHECK(is_problem(&r, 415, "/problems/media_type"));
	be_resp_free(&r);
	/* dataset delete: 204, then 404 */
	EXPECT(&d, "DELETE", path, 204);
	EXPECT_PROBLEM(&d, "GET", path, 404, "/problems/not_found");
	flow_teardown(t, &d);
}

TEST(http_flow_job_spec_errors)
{
	struct be_daemon d;
	char model[65] = "", ds[65] = "", spec[2048];
	json_t *j;
	struct be_resp r;

	if (!flow_setup(t, &d, model, ds))
		return;
	/* jobs: malformed JSON 400, spec errors 422 with JSON pointers */
	REQUIRE(request(&d, "POST", "/v1/jobs", "application/json", "{nope", 5, NULL, 0, NULL, &r) == 0);
	CHECK(is_problem(&r, 400, "/problems/bad_request"));
	be_resp_free(&r);
	REQUIRE(request(&d, "POST", "/v1/jobs", "text/plain", "{}", 2, NULL, 0, NULL, &r) == 0);
	CHECK(is_problem(&r, 415, "/problems/media_type"));
	be_resp_free(&r);
	snprintf(spec, sizeof(spec), "{\"model\": \"%s\", \"dataset\": \"%s\", \"limit\": -2}", model, ds);
	REQUIRE(request(&d, "POST", "/v1/jobs", "application/json", spec, strlen(spec), NULL, 0, NULL, &r) == 0);
	j = be_resp_json(&r);
	CHECK(is_problem(&r, 422, "/problems/invalid"));
	CHECK(j && !strcmp(json_string_value(json_object_get(json_array_get(json_object_get(j, "errors"), 0), "pointer"))
				   ? json_string_value(json_object_get(json_array_get(json_object_get(j, "errors"), 0), "pointer"))
				   : "",
			   "/limit"));
	json_decref(j);
	be_resp_free(&r);
	snprintf(spec, sizeof(spec), "{\"model\": \"%064d\", \"dataset\": \"%s\"}", 0, ds);
	REQUIRE(request(&d, "POST", "/v1/jobs", "application/json", spec, strlen(spec), NULL, 0, NULL, &r) == 0);
	CHECK(is_problem(&r, 422, "/problems/invalid") && strstr(r.body, "\"/model\""));
	be_resp_free(&r);
	/* none of them made a job */
	REQUIRE(get(&d, "/v1/jobs", &r) == 0);
	j = be_resp_json(&r);
	CHECK(r.status == 200 && j && json_array_size(json_object_get(j, "items")) == 0);
	json_decref(j);
	be_resp_free(&r);
	flow_teardown(t, &d);
}

TEST(http_flow_job_report)
{
	struct be_daemon d;
	char model[65] = "", ds[65] = "", job[64] = "", spec[2048], path[256], hv[256];
	json_t *j, *rep, *cli;
	struct be_resp r;

	if (!flow_setup(t, &d, model, ds))
		return;
	/* a job to success: 202 + Location, then the report equals the CLI's */
	snprintf(spec, sizeof(spec), "{\"model\": \"%s\", \"dataset\": \"%s\", " SPEC_REST "}", model, ds);
	REQUIRE(submit(&d, spec, NULL, job, sizeof(job), &r) == 202);
	snprintf(path, sizeof(path), "/v1/jobs/%s", job);
	CHECK(be_resp_header(&r, "Location", hv, sizeof(hv)) && !strcmp(hv, path));
	be_resp_free(&r);
	j = wait_job(&d, job, "succeeded", 60);
	REQUIRE_MSG(j, "job %s did not finish", job);
	CHECK_MSG(!strcmp(json_string_value(json_object_get(j, "status")), "succeeded"), "status %s",
		  json_string_value(json_object_get(j, "status")));
	CHECK_INT(json_integer_value(json_object_get(j, "attempts")), 1);
	json_decref(j);
	snprintf(path, sizeof(path), "/v1/jobs/%s/report", job);
	REQUIRE(get(&d, path, &r) == 0);
	CHECK_INT(r.status, 200);
	rep = be_resp_json(&r);
	be_resp_free(&r);
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
	flow_teardown(t, &d);
}

TEST(http_flow_idempotency)
{
	struct be_daemon d;
	char model[65] = "", ds[65] = "", job[64] = "", job2[64] = "", spec[2048], other[2048];
	struct be_resp r;
	json_t *j;

	if (!flow_setup(t, &d, model, ds))
		return;
	REQUIRE(flow_job(t, &d, model, ds, "key-1", job));
	/* Idempotency-Key: the same spec gives the same job; another spec 409 */
	snprintf(spec, sizeof(spec), "{\"model\": \"%s\", \"dataset\": \"%s\", " SPEC_REST "}", model, ds);
	CHECK_INT(submit(&d, spec, "key-1", job2, sizeof(job2), NULL), 202);
	CHECK(!strcmp(job, job2));
	CHECK_INT(submit(&d, "{\"model\": \"x\"}", "key-1", NULL, 0, &r), 422);
	expect_problem_resp(t, __LINE__, &r, 422, "/problems/invalid", "a bad spec under a used key");
	snprintf(other, sizeof(other), "{\"model\": \"%s\", \"dataset\": \"%s\", \"limit\": 8}", model, ds);
	CHECK_INT(submit(&d, other, "key-1", NULL, 0, &r), 409);
	expect_problem_resp(t, __LINE__, &r, 409, "/problems/conflict", "another spec under a used key");
	/* still the one job */
	REQUIRE(get(&d, "/v1/jobs", &r) == 0);
	j = be_resp_json(&r);
	CHECK(r.status == 200 && j && json_array_size(json_object_get(j, "items")) == 1);
	json_decref(j);
	be_resp_free(&r);
	flow_teardown(t, &d);
}

TEST(http_flow_cancel)
{
	struct be_daemon d;
	char model[65] = "", ds[65] = "", slow[64] = "", queued[64] = "", spec[2048], path[256];
	struct be_resp r;
	json_t *j;

	if (!flow_setup(t, &d, model, ds))
		return;
	/* cancel: a queued job behind a long one (one worker) is cancelled at once */
	snprintf(spec, sizeof(spec),
		 "{\"model\": \"%s\", \"dataset\": \"%s\", \"seed\": 1, \"corruption\": {\"norms\": [\"l2\", "
		 "\"linf\"], \"epsilons\": [0.01, 0.1, 1, 2], \"random_trials\": 400, \"steps\": 20, \"groups\": "
		 "[\"model\", \"tensor\", \"layer\"]}}",
		 model, ds);
	CHECK_INT(submit(&d, spec, NULL, slow, sizeof(slow), NULL), 202);
	CHECK_INT(submit(&d, spec, NULL, queued, sizeof(queued), NULL), 202);
	snprintf(path, sizeof(path), "/v1/jobs/%s/cancel", queued);
	REQUIRE(request(&d, "POST", path, NULL, NULL, 0, NULL, 0, NULL, &r) == 0);
	CHECK_MSG(cancel_answer(&r, "queued"), "cancel: %ld %s", r.status, r.body ? r.body : "");
	be_resp_free(&r);
	j = wait_job(&d, queued, "cancelled", 10);
	CHECK(j && !strcmp(json_string_value(json_object_get(j, "status")), "cancelled"));
	json_decref(j);
	/* the running one through DELETE (which cancels a pending job) */
	j = wait_job(&d, slow, "running", 30);
	REQUIRE_MSG(j && !strcmp(json_string_value(json_object_get(j, "status")), "running"), "the slow job never ran");
	json_decref(j);
	snprintf(path, sizeof(path), "/v1/jobs/%s", slow);
	REQUIRE(request(&d, "DELETE", path, NULL, NULL, 0, NULL, 0, NULL, &r) == 0);
	CHECK_MSG(cancel_answer(&r, "running"), "delete of a running job: %ld %s", r.status, r.body ? r.body : "");
	be_resp_free(&r);
	j = wait_job(&d, slow, "cancelled", 20);
	CHECK(j && !strcmp(json_string_value(json_object_get(j, "status")), "cancelled"));
	json_decref(j);
	/* a finished job's report: 409; cancel of a finished job: 409 */
	snprintf(path, sizeof(path), "/v1/jobs/%s/report", queued);
	EXPECT_PROBLEM(&d, "GET", path, 409, "/problems/conflict");
	snprintf(path, sizeof(path), "/v1/jobs/%s/cancel", queued);
	EXPECT_PROBLEM(&d, "POST", path, 409, "/problems/conflict");
	/* DELETE of a finished job removes it */
	snprintf(path, sizeof(path), "/v1/jobs/%s", queued);
	EXPECT(&d, "DELETE", path, 204);
	EXPECT_PROBLEM(&d, "GET", path, 404, "/problems/not_found");
	flow_teardown(t, &d);
}

TEST(http_flow_job_listing)
{
	struct be_daemon d;
	char model[65] = "", ds[65] = "", job1[64] = "", job2[64] = "", path[256];
	struct be_resp r;
	json_t *j;
	size_t i;

	if (!flow_setup(t, &d, model, ds))
		return;
	REQUIRE(flow_job(t, &d, model, ds, NULL, job1));
	REQUIRE(flow_job(t, &d, model, ds, NULL, job2));
	/* listings with a status filter and paging */
	REQUIRE(get(&d, "/v1/jobs?status=succeeded", &r) == 0);
	j = be_resp_json(&r);
	CHECK(r.status == 200 && j && json_array_size(json_object_get(j, "items")) == 2);
	for (i = 0; j && i < json_array_size(json_object_get(j, "items")); i++)
		CHECK(!strcmp(json_string_value(json_object_get(json_array_get(json_object_get(j, "items"), i), "status")),
			      "succeeded"));
	json_decref(j);
	be_resp_free(&r);
	REQUIRE(get(&d, "/v1/jobs?status=cancelled", &r) == 0);
	j = be_resp_json(&r);
	CHECK(r.status == 200 && j && json_array_size(json_object_get(j, "items")) == 0);
	json_decref(j);
	be_resp_free(&r);
	REQUIRE(get(&d, "/v1/jobs?limit=1", &r) == 0);
	j = be_resp_json(&r);
	CHECK(r.status == 200 && j && json_array_size(json_object_get(j, "items")) == 1 &&
	      json_is_string(json_object_get(j, "next_cursor")));
	if (j && json_is_string(json_object_get(j, "next_cursor"))) {
		struct be_resp r2;
		json_t *j2;
		snprintf(path, sizeof(path), "/v1/jobs?limit=1&cursor=%s", json_string_value(json_object_get(j, "next_cursor")));
		REQUIRE(get(&d, path, &r2) == 0);
		j2 = be_resp_json(&r2);
		CHECK(j2 && json_array_size(json_object_get(j2, "items")) == 1 &&
		      strcmp(json_string_value(json_object_get(json_array_get(json_object_get(j2, "items"), 0), "id")),
			     json_string_value(json_object_get(json_array_get(json_object_get(j, "items"), 0), "id"))));
		json_decref(j2);
		be_resp_free(&r2);
	}
	json_decref(j);
	be_resp_free(&r);
	EXPECT_PROBLEM(&d, "GET", "/v1/jobs?status=bogus", 400, "/problems/bad_request");
	flow_teardown(t, &d);
}

TEST(http_flow_ready_metrics)
{
	struct be_daemon d;
	char model[65] = "", ds[65] = "", job[64] = "";
	struct be_resp r;
	json_t *j;

	if (!flow_setup(t, &d, model, ds))
		return;
	REQUIRE(flow_job(t, &d, model, ds, NULL, job));
	/* ready: the database takes writes, the disk has room */
	REQUIRE(get(&d, "/readyz", &r) == 0);
	j = be_resp_json(&r);
	CHECK_MSG(r.status == 200 && j && !strcmp(json_string_value(json_object_get(j, "status")), "ready"),
		  "readyz %ld %s", r.status, r.body ? r.body : "");
	json_decref(j);
	be_resp_free(&r);
	/* metrics: the one job succeeded, waiting on it polled /v1/jobs/{id} */
	REQUIRE(get(&d, "/metrics", &r) == 0);
	CHECK_INT(r.status, 200);
	{
		/* every series carries the node's label (node_name; here the
		 * default, "<hostname>:<port>") */
		char host[256] = "", line[600];

		gethostname(host, sizeof(host) - 1);
		snprintf(line, sizeof(line),
			 "paracorr_jobs_total{kind=\"analyze\",outcome=\"succeeded\",node=\"%.100s:%d\"} 1\n", host,
			 d.port);
		CHECK_MSG(r.body && strstr(r.body, line), "no %s in %s", line, r.body ? r.body : "");
	}
	CHECK(r.body && strstr(r.body, "paracorr_http_requests_total{route=\"/v1/jobs/{id}\",method=\"GET\",code=\"200\",node=\""));
	CHECK(r.body && strstr(r.body, "paracorr_http_request_duration_seconds_bucket{route=\"/v1/models\",node=\""));
	CHECK(r.body && strstr(r.body, "paracorr_queue_depth{state=\"queued\",node=\""));
	CHECK(r.body && strstr(r.body, "paracorr_upload_bytes_total{kind=\"model\",node=\""));
	CHECK(r.body && strstr(r.body, "paracorr_build_info{"));
	CHECK(r.body && strstr(r.body, "\nparacorr_draining{node=\""));
	be_resp_free(&r);
	flow_teardown(t, &d);
}

TEST(http_flow_sigterm_drain)
{
	struct be_daemon d;
	char model[65] = "", ds[65] = "", job[64] = "";
	double secs = 0;

	if (!flow_setup(t, &d, model, ds))
		return;
	REQUIRE(flow_job(t, &d, model, ds, NULL, job));
	/* the daemon still serves, then SIGTERM: exit 0 well within 10 s */
	EXPECT(&d, "GET", "/healthz", 200);
	CHECK_INT(be_daemon_stop(&d, SIGTERM, &secs), 0);
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
	struct be_daemon d;
	char model[65] = "", ds[65] = "", job[64] = "", queued[64] = "", spec[2048], path[128];
	struct be_resp r;
	json_t *j, *rep = NULL, *rep2 = NULL, *cli = NULL;
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
	CHECK_INT(be_daemon_stop(&d, SIGTERM, &secs), 0);
	CHECK_MSG(secs < 10, "drain took %.2f s", secs);
	fprintf(stderr, "  http_restart: SIGTERM with a job running: exit after %.3f s\n", secs);
	REQUIRE(daemon_start(&d, NULL));
	j = wait_job(&d, job, "running", 30);
	REQUIRE_MSG(j && !strcmp(json_string_value(json_object_get(j, "status")), "running"), "not rerun");
	CHECK_INT(json_integer_value(json_object_get(j, "attempts")), 1);
	json_decref(j);

	/* kill -9 during the rerun; the restart runs it again to success */
	CHECK_INT(be_daemon_stop(&d, SIGKILL, NULL), 128 + SIGKILL);
	REQUIRE(daemon_start(&d, NULL));
	j = wait_job(&d, job, "succeeded", 120);
	REQUIRE_MSG(j, "the job did not finish after the restart");
	CHECK_MSG(!strcmp(json_string_value(json_object_get(j, "status")), "succeeded"), "status %s",
		  json_string_value(json_object_get(j, "status")));
	CHECK_INT(json_integer_value(json_object_get(j, "attempts")), 2);
	json_decref(j);
	snprintf(path, sizeof(path), "/v1/jobs/%s/report", job);
	REQUIRE(get(&d, path, &r) == 0);
	CHECK_INT(r.status, 200);
	rep = be_resp_json(&r);
	be_resp_free(&r);
	/* the job queued behind it, and the uploads, survived too */
	j = wait_job(&d, queued, "succeeded", 120);
	CHECK(j && !strcmp(json_string_value(json_object_get(j, "status")), "succeeded"));
	json_decref(j);
	/* the interrupted job's report equals the uninterrupted run of the
	 * same spec, and `paracorr run` on the same files */
	snprintf(path, sizeof(path), "/v1/jobs/%s/report", queued);
	REQUIRE(get(&d, path, &r) == 0);
	rep2 = be_resp_json(&r);
	be_resp_free(&r);
	cli = cli_report(t,
			 "{\"model\": \"" FIX "mlp_op13.onnx\", \"dataset\": {\"inputs\": \"" T10K_X
			 "\", \"labels\": \"" T10K_Y "\"}, " RESTART_SPEC "}",
			 d.dir);
	REQUIRE(rep && rep2);
	strip_report(rep);
	strip_report(rep2);
	CHECK_MSG(json_equal(rep, rep2), "the report after kill -9 differs from an uninterrupted run's");
	if (cli) {
		strip_report(cli);
		CHECK_MSG(json_equal(rep, cli), "the service's report differs from paracorr run's");
	} else {
		CHECK_MSG(!getenv("PARACORR_BIN"), "no report from paracorr run");
	}
	json_decref(rep);
	json_decref(rep2);
	json_decref(cli);
	snprintf(path, sizeof(path), "/v1/models/%s", model);
	EXPECT(&d, "GET", path, 200);
	CHECK_INT(be_daemon_stop(&d, SIGTERM, &secs), 0);
	be_rmtree(d.dir);
}

static int run_daemon_cmd(const char *env, const char *args, char *out, size_t size);

/* --- authentication and CORS: each test on its own daemon -------------- */

/* A token longer than any line buffer: whole, it works; its pieces do not. */
static void auth_long_token(char tok[3001])
{
	for (int i = 0; i < 3000; i++)
		tok[i] = (char)('a' + i % 26);
	tok[3000] = '\0';
}

/* A daemon with a tokens file (two tokens and the long one), two CORS
 * origins and one extra allowed host. */
static int auth_setup(struct pc_test *t, struct be_daemon *d)
{
	char tokens[PATH_MAX], long_tok[3001];
	const char *extra[] = {"--tokens-file", tokens, "--cors-origins", "https://dash.example, http://localhost:3000",
			       "--allowed-hosts", "paracorr.internal", NULL};
	FILE *f;

	memset(d, 0, sizeof(*d));
	if (!getenv("PARACORRD_BIN") || !be_tmpdir(d->dir, sizeof(d->dir))) {
		pc_test_skip(t, "PARACORRD_BIN is not set (make test sets it)");
		return 0;
	}
	auth_long_token(long_tok);
	snprintf(tokens, sizeof(tokens), "%s/tokens", d->dir);
	if (!(f = fopen(tokens, "w"))) {
		pc_test_fail(t, __FILE__, __LINE__, "cannot write %s", tokens);
		be_rmtree(d->dir);
		return 0;
	}
	fputs("# dashboard\ns3cret-token-one\n\nsecond-token\n", f);
	fprintf(f, "%s\n", long_tok);
	fclose(f);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	if (!daemon_start(d, extra)) {
		pc_test_fail(t, __FILE__, __LINE__, "the daemon did not come up (see %s/daemon.log)", d->dir);
		return 0;
	}
	return 1;
}

static void auth_teardown(struct pc_test *t, struct be_daemon *d)
{
	CHECK_INT(be_daemon_stop(d, SIGTERM, NULL), 0);
	be_rmtree(d->dir);
}

TEST(http_auth_tokens)
{
	struct be_daemon d;
	char hv[256], long_tok[3001], auth[3100];
	struct be_resp r;

	if (!auth_setup(t, &d))
		return;
	auth_long_token(long_tok);
	/* no token, a wrong one, a prefix of a right one: 401 with the challenge */
	REQUIRE(get(&d, "/v1/models", &r) == 0);
	CHECK(is_problem(&r, 401, "/problems/unauthorized"));
	CHECK(be_resp_header(&r, "WWW-Authenticate", hv, sizeof(hv)) && !strncmp(hv, "Bearer", 6));
	be_resp_free(&r);
	REQUIRE(request(&d, "GET", "/v1/jobs", NULL, NULL, 0, NULL, 0, "Authorization: Bearer wrong", &r) == 0);
	CHECK(is_problem(&r, 401, "/problems/unauthorized"));
	be_resp_free(&r);
	REQUIRE(request(&d, "GET", "/v1/jobs", NULL, NULL, 0, NULL, 0, "Authorization: Bearer s3cret-token", &r) ==
		0);
	CHECK(is_problem(&r, 401, "/problems/unauthorized"));
	be_resp_free(&r);
	/* a refused upload is answered before its body is read */
	REQUIRE(request(&d, "POST", "/v1/models", "application/octet-stream", "abc", 3, NULL, 0, NULL, &r) == 0);
	CHECK(is_problem(&r, 401, "/problems/unauthorized"));
	be_resp_free(&r);
	/* either token works */
	REQUIRE(request(&d, "GET", "/v1/jobs", NULL, NULL, 0, NULL, 0, "Authorization: Bearer s3cret-token-one",
			&r) == 0);
	CHECK_INT(r.status, 200);
	be_resp_free(&r);
	REQUIRE(request(&d, "GET", "/v1/datasets", NULL, NULL, 0, NULL, 0, "Authorization: bearer second-token",
			&r) == 0);
	CHECK_INT(r.status, 200);
	be_resp_free(&r);
	snprintf(auth, sizeof(auth), "Authorization: Bearer %s", long_tok);
	REQUIRE(request(&d, "GET", "/v1/jobs", NULL, NULL, 0, NULL, 0, auth, &r) == 0);
	CHECK_INT(r.status, 200);
	be_resp_free(&r);
	snprintf(auth, sizeof(auth), "Authorization: Bearer %.1023s", long_tok);
	REQUIRE(request(&d, "GET", "/v1/jobs", NULL, NULL, 0, NULL, 0, auth, &r) == 0);
	CHECK(is_problem(&r, 401, "/problems/unauthorized"));
	be_resp_free(&r);
	snprintf(auth, sizeof(auth), "Authorization: Bearer %s", long_tok + 1023);
	REQUIRE(request(&d, "GET", "/v1/jobs", NULL, NULL, 0, NULL, 0, auth, &r) == 0);
	CHECK(is_problem(&r, 401, "/problems/unauthorized"));
	be_resp_free(&r);
	auth_teardown(t, &d);
}

TEST(http_auth_host_check)
{
	struct be_daemon d;
	struct be_resp r;

	if (!auth_setup(t, &d))
		return;
	/* Host: another name is refused before anything else (a rebinding page
	 * cannot use the daemon, not even its public routes); loopback
	 * addresses, localhost and allowed_hosts are served */
	REQUIRE(request(&d, "GET", "/healthz", NULL, NULL, 0, NULL, 0, "Host: attacker.example", &r) == 0);
	CHECK(is_problem(&r, 421, "/problems/misdirected"));
	CHECK_MSG(r.body && strstr(r.body, "/problems/misdirected"), "%s", r.body ? r.body : "");
	be_resp_free(&r);
	REQUIRE(request(&d, "GET", "/healthz", NULL, NULL, 0, NULL, 0, "Host: 127.9.8.7:8080", &r) == 0);
	CHECK_INT(r.status, 200);
	be_resp_free(&r);
	REQUIRE(request(&d, "GET", "/healthz", NULL, NULL, 0, NULL, 0, "Host: [::1]:8080", &r) == 0);
	CHECK_INT(r.status, 200);
	be_resp_free(&r);
	REQUIRE(request(&d, "GET", "/healthz", NULL, NULL, 0, NULL, 0, "Host: LocalHost", &r) == 0);
	CHECK_INT(r.status, 200);
	be_resp_free(&r);
	REQUIRE(request(&d, "GET", "/healthz", NULL, NULL, 0, NULL, 0, "Host: paracorr.internal:443", &r) == 0);
	CHECK_INT(r.status, 200);
	be_resp_free(&r);
	auth_teardown(t, &d);
}

TEST(http_auth_metrics_admin_only)
{
	struct be_daemon d;
	struct be_resp r;

	if (!auth_setup(t, &d))
		return;
	/* health stays public; the metrics (every tenant's queue) are the
	 * admin role's: 401 without a token, 403 for an ordinary one */
	EXPECT(&d, "GET", "/healthz", 200);
	EXPECT_PROBLEM(&d, "GET", "/metrics", 401, "/problems/unauthorized");
	REQUIRE(request(&d, "GET", "/metrics", NULL, NULL, 0, NULL, 0, "Authorization: Bearer second-token", &r) == 0);
	CHECK(is_problem(&r, 403, "/problems/forbidden"));
	CHECK_MSG(r.body && strstr(r.body, "\"/problems/forbidden\""), "%s", r.body ? r.body : "");
	be_resp_free(&r);

	auth_teardown(t, &d);
}

TEST(http_auth_cors)
{
	struct be_daemon d;
	char hv[256];
	struct be_resp r;

	if (!auth_setup(t, &d))
		return;
	/* CORS: a preflight from a listed origin is granted, without a token */
	REQUIRE(request(&d, "OPTIONS", "/v1/jobs", NULL, NULL, 0, NULL, 0, "Origin: https://dash.example", &r) == 0);
	CHECK_INT(r.status, 204);
	CHECK(be_resp_header(&r, "Access-Control-Allow-Origin", hv, sizeof(hv)) && !strcmp(hv, "https://dash.example"));
	CHECK(be_resp_header(&r, "Access-Control-Allow-Methods", hv, sizeof(hv)) && strstr(hv, "POST") && strstr(hv, "GET"));
	CHECK(be_resp_header(&r, "Access-Control-Allow-Headers", hv, sizeof(hv)) && strstr(hv, "Authorization"));
	be_resp_free(&r);
	/* an unlisted origin gets no grant */
	REQUIRE(request(&d, "OPTIONS", "/v1/jobs", NULL, NULL, 0, NULL, 0, "Origin: https://evil.example", &r) == 0);
	CHECK(!be_resp_header(&r, "Access-Control-Allow-Origin", hv, sizeof(hv)));
	be_resp_free(&r);
	/* an actual request from a listed origin: the grant on the answer, even a 401 */
	REQUIRE(request(&d, "GET", "/v1/jobs", NULL, NULL, 0, NULL, 0, "Origin: http://localhost:3000", &r) == 0);
	CHECK(is_problem(&r, 401, "/problems/unauthorized"));
	CHECK(be_resp_header(&r, "Access-Control-Allow-Origin", hv, sizeof(hv)) && !strcmp(hv, "http://localhost:3000"));
	be_resp_free(&r);
	auth_teardown(t, &d);
}

TEST(http_auth_data_dir_locked)
{
	struct be_daemon d;

	if (!auth_setup(t, &d))
		return;
	/* a second daemon on the same data directory is refused */
	{
		char out[4096], args[PATH_MAX + 64];

		snprintf(args, sizeof(args), "--port 0 --data-dir '%s/data'", d.dir);
		CHECK_INT(run_daemon_cmd(NULL, args, out, sizeof(out)), 1);
		CHECK_MSG(strstr(out, "another paracorrd"), "%s", out);
	}
	auth_teardown(t, &d);
}

/* --- uploads: formats, limits, listings ---------------------------------- */

static void put_be32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)(v >> 24);
	p[1] = (unsigned char)(v >> 16);
	p[2] = (unsigned char)(v >> 8);
	p[3] = (unsigned char)v;
}

static int write_file(const char *path, const void *data, size_t len)
{
	FILE *f = fopen(path, "wb");
	int ok = f && fwrite(data, 1, len, f) == len;

	if (f && fclose(f) != 0)
		ok = 0;
	return ok;
}

/* A gzip file of an IDX3 header claiming n images of 32x32 and all-zero
 * pixels: small on the wire, n * 1024 bytes once decompressed. */
static int write_gzip_bomb(const char *path, uint32_t n)
{
	size_t raw_len = 16 + (size_t)n * 1024;
	unsigned char *raw = calloc(1, raw_len), *gz = NULL;
	z_stream z;
	int ok = 0;

	if (!raw)
		return 0;
	put_be32(raw, 0x00000803);
	put_be32(raw + 4, n);
	put_be32(raw + 8, 32);
	put_be32(raw + 12, 32);
	memset(&z, 0, sizeof(z));
	if (deflateInit2(&z, 9, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
		goto out;
	if (!(gz = malloc(deflateBound(&z, raw_len))))
		goto out_z;
	z.next_in = raw;
	z.avail_in = (uInt)raw_len;
	z.next_out = gz;
	z.avail_out = (uInt)deflateBound(&z, raw_len);
	if (deflate(&z, Z_FINISH) == Z_STREAM_END)
		ok = write_file(path, gz, z.total_out);
out_z:
	deflateEnd(&z);
out:
	free(raw);
	free(gz);
	return ok;
}

struct chunked {
	size_t left;
};

static size_t read_zeros(char *buf, size_t size, size_t n, void *arg)
{
	struct chunked *c = arg;
	size_t k = size * n < c->left ? size * n : c->left;

	memset(buf, 0, k);
	c->left -= k;
	return k;
}

/* A POST of `bytes` zero bytes with chunked encoding (no Content-Length). */
static int post_chunked(const struct be_daemon *d, const char *path, const char *ctype, size_t bytes,
			struct be_resp *r)
{
	struct chunked src = {bytes};
	struct be_req q = {.method = "POST",
			   .url = d->base,
			   .path = path,
			   .ctype = ctype,
			   .token = d->token,
			   .read = read_zeros,
			   .read_arg = &src};

	if (be_request(&q, r))
		return -1;
	seen_add("POST", path);
	return 0;
}

/* The detail of a problem response ("" when none). */
static const char *detail_of(const struct be_resp *r, char *buf, size_t size)
{
	json_t *j = be_resp_json(r);
	const char *s = j ? json_string_value(json_object_get(j, "detail")) : NULL;

	snprintf(buf, size, "%s", s ? s : "");
	json_decref(j);
	return buf;
}

/* The http_uploads tests: each starts its own daemon with a 2 MiB dataset
 * limit and ends with flow_teardown. */
static int uploads_setup(struct pc_test *t, struct be_daemon *d)
{
	static const char *const extra[] = {"--max-dataset-mb", "2", NULL};

	return setup_with(t, d, extra);
}

/* A model with ops paracorr does not have: 422 naming each of them. */
TEST(http_uploads_refuse_unsupported_ops)
{
	struct be_daemon d;
	char det[1024];
	struct ob_model b;
	unsigned char *onnx;
	size_t len;
	struct be_resp r;

	if (!uploads_setup(t, &d))
		return;
	ob_mlp(&b);
	b.nodes[1].op_type = "FancyNorm";
	{
		const char *in[] = {"y", NULL}, *out[] = {"z", NULL};
		ob_node(&b, "Hardmax2", "extra", in, out);
		b.vi[1].name = "z";
	}
	onnx = ob_pack(&b, &len);
	REQUIRE(onnx);
	REQUIRE(request(&d, "POST", "/v1/models", "application/octet-stream", onnx, len, NULL, 0, NULL, &r) == 0);
	free(onnx);
	CHECK_MSG(is_problem(&r, 422, "/problems/unsupported"), "unsupported ops: %ld %s", r.status, r.body ? r.body : "");
	detail_of(&r, det, sizeof(det));
	CHECK_MSG(strstr(det, "FancyNorm") && strstr(det, "Hardmax2"), "detail: %s", det);
	be_resp_free(&r);
	flow_teardown(t, &d);
}

/* A truncated file: the reason, never a crash. */
TEST(http_uploads_refuse_truncated_model)
{
	struct be_daemon d;
	char det[1024];
	size_t len;
	struct be_resp r;
	char *text;

	if (!uploads_setup(t, &d))
		return;
	text = read_fixture(FIX "mlp_op13.onnx", &len);
	REQUIRE(text);
	REQUIRE(request(&d, "POST", "/v1/models", "application/octet-stream", text, len / 2, NULL, 0, NULL, &r) ==
		0);
	free(text);
	CHECK_MSG(is_problem(&r, 422, "/problems/format"), "truncated: %ld", r.status);
	CHECK(detail_of(&r, det, sizeof(det))[0] != '\0');
	be_resp_free(&r);
	flow_teardown(t, &d);
}

/* No Content-Length: the bytes are counted against the 2 MiB limit. */
TEST(http_uploads_chunked_counted_against_the_limit)
{
	struct be_daemon d;
	struct be_resp r;

	if (!uploads_setup(t, &d))
		return;
	REQUIRE(post_chunked(&d, "/v1/models", "application/octet-stream", 3u << 20, &r) == 0);
	CHECK_MSG(is_problem(&r, 413, "/problems/limit"), "chunked model: %ld", r.status);
	be_resp_free(&r);
	REQUIRE(post_chunked(&d, "/v1/jobs", "application/json", 300u << 10, &r) == 0);
	CHECK_MSG(is_problem(&r, 413, "/problems/limit"), "chunked spec: %ld", r.status);
	be_resp_free(&r);
	flow_teardown(t, &d);
}

/* CSV as one part, the label in the last column: 201, its description,
 * HEAD. */
TEST(http_uploads_csv_dataset_201)
{
	struct be_daemon d;
	char path[PATH_MAX], id[65] = "", url[256];
	struct be_resp r;
	json_t *j;
	const char *text = "0.5,1,2,0\n1.5,2,3,1\n-1,0,4,2\n3,3,3,1\n";

	if (!uploads_setup(t, &d))
		return;
	snprintf(path, sizeof(path), "%s/d.csv", d.dir);
	REQUIRE(write_file(path, text, strlen(text)));
	CHECK_INT(upload_dataset(&d, path, NULL, id), 201);
	snprintf(url, sizeof(url), "/v1/datasets/%s", id);
	REQUIRE(get(&d, url, &r) == 0);
	j = be_resp_json(&r);
	CHECK(j && json_integer_value(json_object_get(j, "samples")) == 4 &&
	      json_integer_value(json_object_get(j, "classes")) == 3 &&
	      json_integer_value(json_array_get(json_object_get(j, "shape"), 0)) == 3);
	json_decref(j);
	be_resp_free(&r);
	REQUIRE(request(&d, "HEAD", url, NULL, NULL, 0, NULL, 0, NULL, &r) == 0);
	CHECK(r.status == 200 && r.len == 0);
	be_resp_free(&r);
	flow_teardown(t, &d);
}

/* A negative label: 422; a ragged row: 422 naming the line. */
TEST(http_uploads_csv_refuse_bad_label_and_ragged_row)
{
	struct be_daemon d;
	char path[PATH_MAX], det[1024];
	struct be_resp r;
	const char *text;

	if (!uploads_setup(t, &d))
		return;
	snprintf(path, sizeof(path), "%s/d.csv", d.dir);
	text = "0.5,1,2,0\n1.5,2,3,-1\n";
	REQUIRE(write_file(path, text, strlen(text)));
	EXPECT_DATASET_REFUSED(&d, path, NULL, 422, "/problems/format");
	text = "0.5,1,2,0\n1.5,2,1\n";
	REQUIRE(write_file(path, text, strlen(text)));
	{
		struct be_part p[2];
		REQUIRE(request(&d, "POST", "/v1/datasets", NULL, NULL, 0, p, be_dataset_parts(p, path, NULL), NULL, &r) ==
			0);
		CHECK(is_problem(&r, 422, "/problems/format"));
		CHECK_MSG(strstr(detail_of(&r, det, sizeof(det)), "line 2"), "detail: %s", det);
		be_resp_free(&r);
	}
	flow_teardown(t, &d);
}

/* safetensors with tensors inputs and labels, as one part: 201; offsets
 * past the data: 422. */
TEST(http_uploads_safetensors_dataset)
{
	static const char hdr[] = "{\"inputs\":{\"dtype\":\"F32\",\"shape\":[4,2],\"data_offsets\":[0,32]},"
				  "\"labels\":{\"dtype\":\"I64\",\"shape\":[4],\"data_offsets\":[32,64]}}";
	struct be_daemon d;
	char path[PATH_MAX], id2[65] = "", url[256];
	unsigned char buf[8 + sizeof(hdr) + 64];
	uint64_t hl = sizeof(hdr) - 1;
	float x[8] = {0, 1, 2, 3, 4, 5, 6, 7};
	int64_t y[4] = {0, 1, 0, 1};
	struct be_resp r;
	json_t *j;

	if (!uploads_setup(t, &d))
		return;
	for (size_t k = 0; k < 8; k++)
		buf[k] = (unsigned char)(hl >> (8 * k));
	memcpy(buf + 8, hdr, hl);
	memcpy(buf + 8 + hl, x, sizeof(x));
	memcpy(buf + 8 + hl + sizeof(x), y, sizeof(y));
	snprintf(path, sizeof(path), "%s/d.safetensors", d.dir);
	REQUIRE(write_file(path, buf, 8 + hl + 64));
	CHECK_INT(upload_dataset(&d, path, NULL, id2), 201);
	snprintf(url, sizeof(url), "/v1/datasets/%s", id2);
	REQUIRE(get(&d, url, &r) == 0);
	j = be_resp_json(&r);
	CHECK(j && json_integer_value(json_object_get(j, "samples")) == 4 &&
	      json_integer_value(json_object_get(j, "classes")) == 2);
	json_decref(j);
	be_resp_free(&r);
	buf[8 + (size_t)(strstr(hdr, "32]") - hdr)] = '9';
	REQUIRE(write_file(path, buf, 8 + hl + 64));
	EXPECT_DATASET_REFUSED(&d, path, NULL, 422, "/problems/format");
	flow_teardown(t, &d);
}

/* gzip that decompresses past max_dataset_mb: 413 naming the limit. */
TEST(http_uploads_refuse_gzip_bomb)
{
	struct be_daemon d;
	char path[PATH_MAX], yi[PATH_MAX], det[1024];
	struct be_part p[2];
	struct be_resp r;

	if (!uploads_setup(t, &d))
		return;
	snprintf(path, sizeof(path), "%s/bomb-idx3-ubyte.gz", d.dir);
	REQUIRE(write_gzip_bomb(path, 3000));
	snprintf(yi, sizeof(yi), "%s/" FIX "labels64_i64.npy", pc_test_root());
	REQUIRE(request(&d, "POST", "/v1/datasets", NULL, NULL, 0, p, be_dataset_parts(p, path, yi), NULL, &r) == 0);
	CHECK_MSG(is_problem(&r, 413, "/problems/limit"), "gzip bomb: %ld %s", r.status, r.body ? r.body : "");
	CHECK_MSG(strstr(detail_of(&r, det, sizeof(det)), "decompress"), "detail: %s", det);
	be_resp_free(&r);
	flow_teardown(t, &d);
}

/* A form part with another name: refused, naming it. */
TEST(http_uploads_refuse_unknown_part)
{
	struct be_daemon d;
	char path[PATH_MAX], det[1024];
	struct be_part p = {.name = "images", .path = path};
	struct be_resp r;

	if (!uploads_setup(t, &d))
		return;
	snprintf(path, sizeof(path), "%s/" FIX "sample64_u8.npy", pc_test_root());
	REQUIRE(request(&d, "POST", "/v1/datasets", NULL, NULL, 0, &p, 1, NULL, &r) == 0);
	CHECK_MSG(is_problem(&r, 400, "/problems/bad_request"), "part 'images': %ld", r.status);
	CHECK_MSG(strstr(detail_of(&r, det, sizeof(det)), "images"), "detail: %s", det);
	be_resp_free(&r);
	flow_teardown(t, &d);
}

/* Listings page by limit and cursor; a limit of 0 is refused. */
TEST(http_uploads_listings_paged)
{
	struct be_daemon d;
	char id[65] = "", url[256];
	struct be_resp r;
	json_t *j;

	if (!uploads_setup(t, &d))
		return;
	CHECK_INT(upload_model(&d, FIX "mlp_op13.onnx", id, NULL), 201);
	CHECK_INT(upload_dataset(&d, FIX "sample64_u8.npy", FIX "labels64_i64.npy", id), 201);
	CHECK_INT(upload_dataset(&d, FIX "sample64_f32.npy", FIX "labels64_i64.npy", id), 201);
	REQUIRE(get(&d, "/v1/models?limit=1", &r) == 0);
	j = be_resp_json(&r);
	CHECK(r.status == 200 && j && json_array_size(json_object_get(j, "items")) == 1);
	json_decref(j);
	be_resp_free(&r);
	EXPECT_PROBLEM(&d, "GET", "/v1/datasets?limit=0", 400, "/problems/bad_request");
	REQUIRE(get(&d, "/v1/datasets?limit=1", &r) == 0);
	j = be_resp_json(&r);
	CHECK(r.status == 200 && j && json_array_size(json_object_get(j, "items")) == 1 &&
	      json_is_string(json_object_get(j, "next_cursor")));
	if (j && json_is_string(json_object_get(j, "next_cursor"))) {
		json_t *j2;
		struct be_resp r2;

		snprintf(url, sizeof(url), "/v1/datasets?limit=5&cursor=%s",
			 json_string_value(json_object_get(j, "next_cursor")));
		REQUIRE(get(&d, url, &r2) == 0);
		j2 = be_resp_json(&r2);
		CHECK(j2 && json_array_size(json_object_get(j2, "items")) == 1 &&
		      json_is_null(json_object_get(j2, "next_cursor")));
		json_decref(j2);
		be_resp_free(&r2);
	}
	json_decref(j);
	be_resp_free(&r);
	flow_teardown(t, &d);
}

/* HEAD and DELETE of a model: 204, then 404 for both; uploaded again
 * after the delete: 201. */
TEST(http_uploads_model_delete_then_201_again)
{
	struct be_daemon d;
	char id[65] = "", url[256];
	struct be_resp r;

	if (!uploads_setup(t, &d))
		return;
	CHECK_INT(upload_model(&d, FIX "mlp_op13.onnx", id, NULL), 201);
	snprintf(url, sizeof(url), "/v1/models/%s", id);
	REQUIRE(request(&d, "HEAD", url, NULL, NULL, 0, NULL, 0, NULL, &r) == 0);
	CHECK(r.status == 200 && r.len == 0);
	be_resp_free(&r);
	EXPECT(&d, "DELETE", url, 204);
	EXPECT_PROBLEM(&d, "HEAD", url, 404, "/problems/not_found");
	EXPECT_PROBLEM(&d, "DELETE", url, 404, "/problems/not_found");
	CHECK_INT(upload_model(&d, FIX "mlp_op13.onnx", id, NULL), 201);
	flow_teardown(t, &d);
}

/* The OpenAPI document is served, byte for byte the repository's. */
TEST(http_uploads_openapi_served)
{
	struct be_daemon d;
	struct be_resp r;
	size_t len;
	char *text;

	if (!uploads_setup(t, &d))
		return;
	REQUIRE(get(&d, "/v1/openapi.yaml", &r) == 0);
	text = read_fixture("api/openapi.yaml", &len);
	CHECK_INT(r.status, 200);
	CHECK(text && r.body && r.len == len && !memcmp(text, r.body, len));
	free(text);
	be_resp_free(&r);
	flow_teardown(t, &d);
}

/* --- the queue: concurrency, a full queue, pending uploads ---------------- */

/* A job of a second or less on model and dataset. */
static void small_spec(char *spec, size_t size, const char *model, const char *ds, int seed)
{
	snprintf(spec, size,
		 "{\"model\": \"%s\", \"dataset\": \"%s\", \"limit\": 32, \"batch_size\": 16, \"seed\": %d, "
		 "\"corruption\": {\"norms\": [\"l2\"], \"epsilons\": [0.1], \"random_trials\": 1}}",
		 model, ds, seed);
}

/* A harden job of a second or less, trained on its evaluation dataset. */
static void harden_small_spec(char *spec, size_t size, const char *model, const char *ds)
{
	snprintf(spec, size,
		 "{\"kind\": \"harden\", \"model\": \"%s\", \"dataset\": \"%s\", \"limit\": 32, \"seed\": 2, "
		 "\"corruption\": {\"norms\": [\"l2\"], \"epsilons\": [0.5], \"random_trials\": 1, \"groups\": "
		 "[\"model\"]}, \"training\": {\"dataset\": \"%s\", \"epochs\": 1, \"batch_size\": 16}}",
		 model, ds, ds);
}

/* A job that runs until cancelled (a test's time, many times over). */
static void slow_spec(char *spec, size_t size, const char *model, const char *ds)
{
	snprintf(spec, size,
		 "{\"model\": \"%s\", \"dataset\": \"%s\", \"seed\": 1, \"corruption\": {\"norms\": [\"l2\", "
		 "\"linf\"], \"epsilons\": [0.01, 0.1, 1, 2], \"random_trials\": 400, \"steps\": 20, \"groups\": "
		 "[\"model\", \"tensor\", \"layer\"]}}",
		 model, ds);
}


struct submitter {
	const struct be_daemon *d;
	char spec[1024];
	char id[64];
	long status;
};

static void *submit_thread(void *arg)
{
	struct submitter *s = arg;

	s->status = submit(s->d, s->spec, NULL, s->id, sizeof(s->id), NULL);
	return NULL;
}

/* 20 submissions at once, 2 workers: every one accepted with an id of its
 * own, and every one succeeds. */
TEST(http_queue_20_concurrent_submissions_succeed)
{
	struct be_daemon d;
	const char *extra[] = {"--workers", "2", "--threads-per-job", "1", "--max-queue", "30", NULL};
	struct submitter sub[20];
	pthread_t th[20];
	char model[65] = "", ds[65] = "";
	struct be_resp r;
	json_t *j;
	int i, ok = 0;

	if (!setup_with(t, &d, extra))
		return;
	CHECK_INT(upload_model(&d, FIX "mlp_op13.onnx", model, NULL), 201);
	CHECK_INT(upload_dataset(&d, FIX "sample64_u8.npy", FIX "labels64_i64.npy", ds), 201);
	for (i = 0; i < 20; i++) {
		sub[i].d = &d;
		sub[i].id[0] = '\0';
		snprintf(sub[i].spec, sizeof(sub[i].spec),
			 "{\"model\": \"%s\", \"dataset\": \"%s\", \"limit\": 32, \"batch_size\": 16, \"seed\": %d, "
			 "\"corruption\": {\"norms\": [\"l2\"], \"epsilons\": [0.1], \"random_trials\": 1}}",
			 model, ds, i + 1);
		REQUIRE(pthread_create(&th[i], NULL, submit_thread, &sub[i]) == 0);
	}
	for (i = 0; i < 20; i++)
		pthread_join(th[i], NULL);
	for (i = 0; i < 20; i++) {
		CHECK_MSG(sub[i].status == 202, "submission %d: %ld", i, sub[i].status);
		for (int k = 0; k < i; k++)
			CHECK_MSG(strcmp(sub[i].id, sub[k].id), "submissions %d and %d got one id", i, k);
	}
	for (i = 0; i < 20; i++) {
		j = sub[i].id[0] ? wait_job(&d, sub[i].id, "finished", 120) : NULL;
		if (j && !strcmp(json_string_value(json_object_get(j, "status")), "succeeded"))
			ok++;
		json_decref(j);
	}
	CHECK_MSG(ok == 20, "%d of 20 jobs succeeded", ok);
	REQUIRE(get(&d, "/v1/jobs?status=succeeded&limit=500", &r) == 0);
	j = be_resp_json(&r);
	CHECK(j && json_array_size(json_object_get(j, "items")) == 20);
	json_decref(j);
	be_resp_free(&r);
	flow_teardown(t, &d);
}

/* Uploads the fixture model and a CSV dataset of 4 rows whose row i is
 * row(i) (the label last). 1 when both were stored. */
static int queue_csv_fixture(struct pc_test *t, const struct be_daemon *d, const char *name,
			     const char *(*row)(int, char *, size_t), char model[65], char csv_ds[65])
{
	char path[PATH_MAX], line[64];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", d->dir, name);
	if (!(f = fopen(path, "w"))) {
		pc_test_fail(t, __FILE__, __LINE__, "cannot write %s", path);
		return 0;
	}
	for (int i = 0; i < 4; i++)
		fputs(row(i, line, sizeof(line)), f);
	fclose(f);
	if (upload_model(d, FIX "mlp_op13.onnx", model, NULL) != 201 || upload_dataset(d, path, NULL, csv_ds) != 201) {
		pc_test_fail(t, __FILE__, __LINE__, "the uploads of %s failed", name);
		return 0;
	}
	return 1;
}

static const char *wide_row(int i, char *buf, size_t size)
{
	snprintf(buf, size, "1,2,%d\n", i == 3 ? 40 : i);
	return buf;
}

static const char *narrow_row(int i, char *buf, size_t size)
{
	snprintf(buf, size, "1,2,3,%d\n", i % 2);
	return buf;
}

/* A dataset with more classes than the model has outputs: 422 at once,
 * pointing at /dataset. */
TEST(http_queue_refuse_dataset_with_more_classes)
{
	struct be_daemon d;
	char model[65] = "", csv_ds[65] = "", spec[1024];
	struct be_resp r;

	if (!setup(t, &d))
		return;
	if (queue_csv_fixture(t, &d, "wide.csv", wide_row, model, csv_ds)) {
		snprintf(spec, sizeof(spec), "{\"model\": \"%s\", \"dataset\": \"%s\"}", model, csv_ds);
		REQUIRE(submit(&d, spec, NULL, NULL, 0, &r) == 422);
		CHECK(is_problem(&r, 422, "/problems/invalid") && strstr(r.body, "\"/dataset\"") &&
		      strstr(r.body, "classes"));
		be_resp_free(&r);
	}
	flow_teardown(t, &d);
}

/* A job that fails (3 features for a 784-input model): failed, with its
 * error as a problem object; its report is 409. */
TEST(http_queue_failed_job_error_is_a_problem)
{
	struct be_daemon d;
	char model[65] = "", csv_ds[65] = "", spec[1024], q1[64] = "", url[256];
	json_t *j;

	if (!setup(t, &d))
		return;
	if (queue_csv_fixture(t, &d, "narrow.csv", narrow_row, model, csv_ds)) {
		snprintf(spec, sizeof(spec), "{\"model\": \"%s\", \"dataset\": \"%s\"}", model, csv_ds);
		REQUIRE(submit(&d, spec, NULL, q1, sizeof(q1), NULL) == 202);
		j = wait_job(&d, q1, "finished", 30);
		REQUIRE(j);
		{
			json_t *e = json_object_get(j, "error");
			CHECK_MSG(!strcmp(json_string_value(json_object_get(j, "status")), "failed"), "status %s",
				  json_string_value(json_object_get(j, "status")));
			CHECK(json_is_object(e) && json_is_string(json_object_get(e, "title")) &&
			      json_is_string(json_object_get(e, "detail")));
			CHECK_MSG(!strcmp(json_string_value(json_object_get(e, "type")) ?: "", "/problems/shape") &&
					  json_integer_value(json_object_get(e, "status")) == 422,
				  "the job's error: type %s, status %lld", json_string_value(json_object_get(e, "type")) ?: "-",
				  (long long)json_integer_value(json_object_get(e, "status")));
		}
		json_decref(j);
		snprintf(url, sizeof(url), "/v1/jobs/%s/report", q1);
		EXPECT_PROBLEM(&d, "GET", url, 409, "/problems/conflict");
	}
	flow_teardown(t, &d);
}

/* One worker, a queue of 1, a free-disk threshold no disk meets. */
static const char *const queue_tight[] = {"--workers", "1", "--max-queue", "1", "--min-free-disk-mb", "1048576", NULL};

/* readyz refuses below the free-disk threshold, saying how much is free. */
TEST(http_queue_readyz_refuses_below_free_disk)
{
	struct be_daemon d;
	struct be_resp r;

	if (!setup_with(t, &d, queue_tight))
		return;
	REQUIRE(get(&d, "/readyz", &r) == 0);
	CHECK(is_problem(&r, 503, "/problems/busy") && strstr(r.body, "MiB free"));
	be_resp_free(&r);
	flow_teardown(t, &d);
}

/* The busy queue: on the tight daemon, the slow job running and q1 queued
 * behind it (the queue is full). 1 when so. */
static int queue_busy(struct pc_test *t, struct be_daemon *d, char model[65], char ds[65], char spec[1024],
		      char slow[64], char q1[64])
{
	json_t *j;
	int running;

	if (!setup_with(t, d, queue_tight))
		return 0;
	if (upload_model(d, FIX "mlp_op13.onnx", model, NULL) != 201 ||
	    upload_dataset(d, FIX "sample64_u8.npy", FIX "labels64_i64.npy", ds) != 201) {
		pc_test_fail(t, __FILE__, __LINE__, "the queue fixture's uploads failed");
		goto fail;
	}
	slow_spec(spec, 1024, model, ds);
	if (submit(d, spec, NULL, slow, 64, NULL) != 202) {
		pc_test_fail(t, __FILE__, __LINE__, "the slow job was not accepted");
		goto fail;
	}
	j = wait_job(d, slow, "running", 30);
	running = j && !strcmp(json_string_value(json_object_get(j, "status")), "running");
	json_decref(j);
	if (!running) {
		pc_test_fail(t, __FILE__, __LINE__, "the slow job is not running");
		goto fail;
	}
	if (submit(d, spec, NULL, q1, 64, NULL) != 202) {
		pc_test_fail(t, __FILE__, __LINE__, "the queued job was not accepted");
		goto fail;
	}
	return 1;
fail:
	return setup_undo(d);
}

/* Cancels job id, which was in state `was`, so that the daemon stops at
 * once; the answer exact for that state (cancel_answer). */
static void queue_cancel(struct pc_test *t, int line, const struct be_daemon *d, const char *id, const char *was)
{
	char url[256];
	struct be_resp r;

	snprintf(url, sizeof(url), "/v1/jobs/%s/cancel", id);
	if (request(d, "POST", url, NULL, NULL, 0, NULL, 0, NULL, &r) != 0 || !cancel_answer(&r, was))
		pc_test_fail(t, __FILE__, line, "cancel of %s (%s): %ld %s", id, was, r.status, r.body ? r.body : "");
	be_resp_free(&r);
}

/* A full queue: 503 with Retry-After. */
TEST(http_queue_full_503_with_retry_after)
{
	struct be_daemon d;
	char model[65] = "", ds[65] = "", spec[1024], slow[64] = "", q1[64] = "", hv[64];
	struct be_resp r;

	if (!queue_busy(t, &d, model, ds, spec, slow, q1))
		return;
	REQUIRE(submit(&d, spec, NULL, NULL, 0, &r) == 503);
	CHECK(is_problem(&r, 503, "/problems/busy"));
	CHECK(be_resp_header(&r, "Retry-After", hv, sizeof(hv)) && atoi(hv) > 0);
	be_resp_free(&r);
	queue_cancel(t, __LINE__, &d, q1, "queued");
	queue_cancel(t, __LINE__, &d, slow, "running");
	flow_teardown(t, &d);
}

/* An upload a pending job names cannot be deleted: 409. */
TEST(http_queue_uploads_in_use_not_deleted)
{
	struct be_daemon d;
	char model[65] = "", ds[65] = "", spec[1024], slow[64] = "", q1[64] = "", url[256];
	struct be_resp r;

	if (!queue_busy(t, &d, model, ds, spec, slow, q1))
		return;
	snprintf(url, sizeof(url), "/v1/models/%s", model);
	REQUIRE(request(&d, "DELETE", url, NULL, NULL, 0, NULL, 0, NULL, &r) == 0);
	CHECK_MSG(is_problem(&r, 409, "/problems/conflict"), "delete of a model in use: %ld", r.status);
	be_resp_free(&r);
	snprintf(url, sizeof(url), "/v1/datasets/%s", ds);
	REQUIRE(request(&d, "DELETE", url, NULL, NULL, 0, NULL, 0, NULL, &r) == 0);
	CHECK_MSG(is_problem(&r, 409, "/problems/conflict"), "delete of a dataset in use: %ld", r.status);
	be_resp_free(&r);
	queue_cancel(t, __LINE__, &d, q1, "queued");
	queue_cancel(t, __LINE__, &d, slow, "running");
	flow_teardown(t, &d);
}

/* Cancelling the running job: it stops at its next check and the queued
 * one runs; DELETE of that running job cancels it too. */
TEST(http_queue_cancel_running_then_next_runs)
{
	struct be_daemon d;
	char model[65] = "", ds[65] = "", spec[1024], slow[64] = "", q1[64] = "", url[256];
	struct be_resp r;
	json_t *j;

	if (!queue_busy(t, &d, model, ds, spec, slow, q1))
		return;
	snprintf(url, sizeof(url), "/v1/jobs/%s/cancel", slow);
	REQUIRE(request(&d, "POST", url, NULL, NULL, 0, NULL, 0, NULL, &r) == 0);
	CHECK_MSG(cancel_answer(&r, "running"), "cancel: %ld %s", r.status, r.body ? r.body : "");
	be_resp_free(&r);
	j = wait_job(&d, slow, "cancelled", 20);
	CHECK(j && !strcmp(json_string_value(json_object_get(j, "status")), "cancelled") &&
	      json_is_string(json_object_get(j, "finished_at")));
	json_decref(j);
	j = wait_job(&d, q1, "running", 20);
	CHECK(j && !strcmp(json_string_value(json_object_get(j, "status")), "running"));
	json_decref(j);
	snprintf(url, sizeof(url), "/v1/jobs/%s", q1);
	REQUIRE(request(&d, "DELETE", url, NULL, NULL, 0, NULL, 0, NULL, &r) == 0);
	CHECK_MSG(cancel_answer(&r, "running"), "DELETE of a running job: %ld %s", r.status, r.body ? r.body : "");
	be_resp_free(&r);
	j = wait_job(&d, q1, "cancelled", 20);
	CHECK(j && !strcmp(json_string_value(json_object_get(j, "status")), "cancelled"));
	json_decref(j);
	flow_teardown(t, &d);
}

/* --- configuration ------------------------------------------------------- */

/* Runs paracorrd with args (a shell-quoted string) and env; its exit
 * status, stdout+stderr into out. */
static int run_daemon_cmd(const char *env, const char *args, char *out, size_t size)
{
	char cmd[8192];

	snprintf(cmd, sizeof(cmd), "%s '%s' %s 2>&1", env ? env : "", getenv("PARACORRD_BIN"), args);
	return be_run(cmd, out, size, 60);
}

TEST(http_config)
{
	char out[16384];

	if (!getenv("PARACORRD_BIN") || !getenv("PARACORRD_BIN")[0]) {
		pc_test_skip(t, "PARACORRD_BIN is not set (make test sets it)");
		return;
	}
	/* --print-config: the effective settings, sources in order */
	CHECK_INT(run_daemon_cmd(NULL, "--print-config", out, sizeof(out)), 0);
	CHECK(strstr(out, "port = 8080\n") && strstr(out, "max_attempts = 3\n") && strstr(out, "workers = "));
	CHECK_INT(run_daemon_cmd("PARACORR_PORT=9001", "--config config/paracorr.conf --print-config", out,
				 sizeof(out)),
		  0);
	CHECK_MSG(strstr(out, "port = 9001\n"), "environment over the file: %s", out);
	CHECK_INT(run_daemon_cmd("PARACORR_PORT=9001", "--port 9002 --print-config", out, sizeof(out)), 0);
	CHECK_MSG(strstr(out, "port = 9002\n"), "flag over the environment: %s", out);
	CHECK_INT(run_daemon_cmd(NULL, "--max-queue=7 --print-config", out, sizeof(out)), 0);
	CHECK(strstr(out, "max_queue = 7\n"));
	/* an unknown key or a value out of range stops startup, named */
	CHECK_INT(run_daemon_cmd(NULL, "--max-qeueu 7", out, sizeof(out)), 2);
	CHECK_MSG(strstr(out, "max-qeueu") && strstr(out, "unknown setting"), "%s", out);
	CHECK_INT(run_daemon_cmd(NULL, "--port 70000", out, sizeof(out)), 2);
	CHECK_MSG(strstr(out, "port") && strstr(out, "70000"), "%s", out);
	CHECK_INT(run_daemon_cmd("PARACORR_WORKERS=many", "", out, sizeof(out)), 2);
	CHECK_MSG(strstr(out, "PARACORR_WORKERS") && strstr(out, "many"), "%s", out);
	CHECK_INT(run_daemon_cmd(NULL, "--tokens-file /nonexistent/tokens --data-dir /tmp/pc-cfg-test --port 0", out,
				 sizeof(out)),
		  1);
	CHECK_MSG(strstr(out, "tokens_file"), "%s", out);
	/* beyond loopback without tokens: refused unless allow_anonymous */
	CHECK_INT(run_daemon_cmd(NULL, "--listen 0.0.0.0 --print-config", out, sizeof(out)), 2);
	CHECK_MSG(strstr(out, "listen") && strstr(out, "tokens_file") && strstr(out, "allow_anonymous"), "%s", out);
	CHECK_INT(run_daemon_cmd(NULL, "--listen 0.0.0.0 --allow-anonymous 1 --print-config", out, sizeof(out)), 0);
	CHECK_INT(run_daemon_cmd(NULL, "--listen 127.0.0.2 --print-config", out, sizeof(out)), 0);
	{
		char dir[PATH_MAX], conf[PATH_MAX + 16], args[PATH_MAX + 64];
		FILE *f;

		REQUIRE(be_tmpdir(dir, sizeof(dir)));
		snprintf(conf, sizeof(conf), "%s/bad.conf", dir);
		REQUIRE((f = fopen(conf, "w")));
		fputs("# fine\nport = 8081\n\nworkerz = 2\n", f);
		fclose(f);
		snprintf(args, sizeof(args), "--config '%s' --print-config", conf);
		CHECK_INT(run_daemon_cmd(NULL, args, out, sizeof(out)), 2);
		CHECK_MSG(strstr(out, "workerz") && strstr(out, "bad.conf:4"), "%s", out);
		be_rmtree(dir);
	}
}

/* --- api/openapi.yaml against the route table and the tests --------------- */


/* --- tenants ------------------------------------------------------------- */

/* Whether two problem answers are the same but for instance (the URL):
 * what another tenant's id gets must not differ from an unknown id's. */
static int same_problem(const struct be_resp *a, const struct be_resp *b)
{
	json_t *x = be_resp_json(a), *y = be_resp_json(b);
	int ok = x && y && a->status == b->status;
	const char *keys[] = {"type", "title", "status", "detail", "errors"};

	for (size_t k = 0; ok && k < sizeof(keys) / sizeof(keys[0]); k++) {
		json_t *u = json_object_get(x, keys[k]), *v = json_object_get(y, keys[k]);
		ok = (!u && !v) || (u && v && json_equal(u, v));
	}
	json_decref(x);
	json_decref(y);
	return ok;
}

/* A request as d, and the same request for the same path with the id
 * replaced by unknown: both must be 404 with the same problem. */
static void expect_hidden(struct pc_test *t, int line, const struct be_daemon *d, const char *method, const char *fmt,
			  const char *id, const char *unknown)
{
	char p1[300], p2[300];
	struct be_resp a, b;

	snprintf(p1, sizeof(p1), fmt, id);
	snprintf(p2, sizeof(p2), fmt, unknown);
	if (request(d, method, p1, NULL, NULL, 0, NULL, 0, NULL, &a) ||
	    request(d, method, p2, NULL, NULL, 0, NULL, 0, NULL, &b)) {
		pc_test_fail(t, __FILE__, line, "%s %s: no answer", method, p1);
		return;
	}
	if (a.status != 404 || b.status != 404 ||
	    (strcmp(method, "HEAD") && (!is_problem(&a, 404, "/problems/not_found") || !same_problem(&a, &b))))
		pc_test_fail(t, __FILE__, line, "%s %s: %ld %s; for an unknown id %ld %s", method, p1, a.status,
			     a.body ? a.body : "", b.status, b.body ? b.body : "");
	be_resp_free(&a);
	be_resp_free(&b);
}

#define EXPECT_HIDDEN(d, method, fmt, id, unknown) expect_hidden(t, __LINE__, d, method, fmt, id, unknown)

/* The ids of a listing's items (each "tenant/id" when with_tenant). */
static int list_has(const struct be_daemon *d, const char *path, const char *id, const char *tenant)
{
	struct be_resp r;
	json_t *j, *it;
	size_t i;
	int found = 0;

	if (get(d, path, &r) || r.status != 200)
		return -1;
	j = be_resp_json(&r);
	json_array_foreach(json_object_get(j, "items"), i, it)
	{
		if (!strcmp(json_string_value(json_object_get(it, "id")) ?: "", id) &&
		    (!tenant || !strcmp(json_string_value(json_object_get(it, "tenant")) ?: "", tenant)))
			found++;
	}
	json_decref(j);
	be_resp_free(&r);
	return found;
}

static int write_csv(const char *path, int rows, int salt)
{
	FILE *f = fopen(path, "w");

	if (!f)
		return 0;
	for (int i = 0; i < rows; i++)
		fprintf(f, "%d.%03d,%d.%03d,%d\n", i % 97, (i * 7 + salt) % 1000, i % 89, (i * 13) % 1000, i % 3);
	return fclose(f) == 0;
}

/* Two tenants, an admin and a bare legacy token: neither tenant can list,
 * get, detect, fetch a report, chart or artifact of, cancel, delete or use
 * the other's anything; an upload answers the same whether or not another
 * tenant holds the bytes; idempotency keys are per tenant; the admin sees
 * both; quotas answer 429 and 507 with their problem types. */
/* The http_tenants tests: a tokens file with two tenants (alice, whose
 * token is longer than any line buffer, and bob), an admin and a token of
 * an older file (tenant default); one queued job and 1 MiB stored per
 * tenant. Each test starts its own daemon (tenants_setup). */
struct tenants {
	struct be_daemon d; /* no token */
	struct be_daemon A, B, ADM, L;
	char tokens[PATH_MAX];
	char alice[3001];
};

static const char unknown_blob[] = "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff";
static const char unknown_job[] = "j-0123456789abcdef";

static int tenants_setup(struct pc_test *t, struct tenants *x)
{
	const char *extra[] = {"--tokens-file", x->tokens, "--tenant-max-queued-jobs", "1", "--tenant-max-stored-mb", "1",
			       NULL};
	FILE *f;

	memset(x, 0, sizeof(*x));
	if (!getenv("PARACORRD_BIN") || !be_tmpdir(x->d.dir, sizeof(x->d.dir))) {
		pc_test_skip(t, "PARACORRD_BIN is not set (make test sets it)");
		return 0;
	}
	for (int i = 0; i < 3000; i++)
		x->alice[i] = (char)('A' + i % 26);
	x->alice[3000] = '\0';
	snprintf(x->tokens, sizeof(x->tokens), "%s/tokens", x->d.dir);
	if (!(f = fopen(x->tokens, "w"))) {
		pc_test_fail(t, __FILE__, __LINE__, "cannot write %s", x->tokens);
		be_rmtree(x->d.dir);
		return 0;
	}
	fprintf(f, "# two tenants, an admin, a token of an older file\n%s tenant=alice\n", x->alice);
	fputs("  tok-bob\trole=user   tenant=bob\n\ntok-ops role=admin tenant=ops\ntok-legacy\n", f);
	fclose(f);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	if (!daemon_start(&x->d, extra)) {
		pc_test_fail(t, __FILE__, __LINE__, "the daemon did not come up (see %s/daemon.log)", x->d.dir);
		return 0;
	}
	x->A = x->B = x->ADM = x->L = x->d;
	x->A.token = x->alice;
	x->B.token = "tok-bob";
	x->ADM.token = "tok-ops";
	x->L.token = "tok-legacy";
	return 1;
}

static void tenants_teardown(struct pc_test *t, struct tenants *x)
{
	CHECK_INT(be_daemon_stop(&x->d, SIGTERM, NULL), 0);
	be_rmtree(x->d.dir);
}

/* Submits spec as d and waits for it to succeed; its id into id. */
static void run_job_line(struct pc_test *t, int line, const struct be_daemon *d, const char *spec, const char *idem,
			 char id[64])
{
	json_t *j = NULL;
	long st = submit(d, spec, idem, id, 64, NULL);

	if (st == 202 && id[0])
		j = wait_job(d, id, "finished", 60);
	if (!j || strcmp(json_string_value(json_object_get(j, "status")) ?: "", "succeeded"))
		pc_test_fail(t, __FILE__, line, "the job (%ld) did not succeed", st);
	json_decref(j);
}

#define RUN_JOB(d, spec, idem, id) run_job_line(t, __LINE__, d, spec, idem, id)

/* A prefix of alice's token is no token: 401. */
TEST(http_tenants_token_prefix_is_no_token)
{
	struct tenants x;
	struct be_resp r;

	if (!tenants_setup(t, &x))
		return;
	x.alice[1500] = '\0';
	REQUIRE(get(&x.A, "/v1/models", &r) == 0);
	CHECK(is_problem(&r, 401, "/problems/unauthorized"));
	be_resp_free(&r);
	x.alice[1500] = 'A' + 1500 % 26;
	CHECK_INT(list_has(&x.A, "/v1/models", unknown_blob, NULL), 0);
	tenants_teardown(t, &x);
}

/* Bob cannot see, detect or delete alice's uploads: the answers of
 * unknown ids; nor can the legacy token (tenant default). */
TEST(http_tenants_uploads_hidden_from_others)
{
	struct tenants x;
	char mA[65] = "", dA[65] = "";

	if (!tenants_setup(t, &x))
		return;
	CHECK_INT(upload_model(&x.A, FIX "mlp_op13.onnx", mA, NULL), 201);
	CHECK_INT(upload_model(&x.A, FIX "mlp_op13.onnx", mA, NULL), 200);
	CHECK_INT(upload_dataset(&x.A, FIX "sample64_u8.npy", FIX "labels64_i64.npy", dA), 201);
	REQUIRE(mA[0] && dA[0]);
	EXPECT_HIDDEN(&x.B, "GET", "/v1/models/%s", mA, unknown_blob);
	EXPECT_HIDDEN(&x.B, "HEAD", "/v1/models/%s", mA, unknown_blob);
	EXPECT_HIDDEN(&x.B, "DELETE", "/v1/models/%s", mA, unknown_blob);
	EXPECT_HIDDEN(&x.B, "GET", "/v1/datasets/%s", dA, unknown_blob);
	EXPECT_HIDDEN(&x.B, "HEAD", "/v1/datasets/%s", dA, unknown_blob);
	EXPECT_HIDDEN(&x.B, "DELETE", "/v1/datasets/%s", dA, unknown_blob);
	CHECK_INT(list_has(&x.B, "/v1/models", mA, NULL), 0);
	CHECK_INT(list_has(&x.B, "/v1/datasets", dA, NULL), 0);
	CHECK_INT(list_has(&x.A, "/v1/models", mA, NULL), 1);
	CHECK_INT(list_has(&x.A, "/v1/datasets", dA, NULL), 1);
	CHECK_INT(list_has(&x.L, "/v1/models", mA, NULL), 0);
	EXPECT_HIDDEN(&x.L, "GET", "/v1/models/%s", mA, unknown_blob);
	tenants_teardown(t, &x);
}

/* Dedup tells bob nothing: alice's bytes and bytes nobody has both get 201
 * with the description of new content, then 200. */
TEST(http_tenants_dedup_tells_nothing)
{
	struct tenants x;
	char mA[65] = "", mB[65] = "", m2[65] = "";
	json_t *b1 = NULL, *b2 = NULL;

	if (!tenants_setup(t, &x))
		return;
	CHECK_INT(upload_model(&x.A, FIX "mlp_op13.onnx", mA, &b1), 201);
	CHECK_INT(upload_model(&x.B, FIX "mlp_op13.onnx", mB, &b2), 201);
	CHECK(b1 && b2 && json_equal(b1, b2));
	CHECK(mA[0] && !strcmp(mA, mB));
	CHECK_INT(upload_model(&x.B, FIX "cnn_bn_tiny_op17.onnx", m2, NULL), 201);
	CHECK_INT(upload_model(&x.B, FIX "mlp_op13.onnx", mB, NULL), 200);
	CHECK_INT(upload_model(&x.B, FIX "cnn_bn_tiny_op17.onnx", m2, NULL), 200);
	json_decref(b1);
	json_decref(b2);
	EXPECT_HIDDEN(&x.A, "GET", "/v1/models/%s", m2, unknown_blob);
	tenants_teardown(t, &x);
}

/* Every route of alice's job answers bob as for an unknown job; alice
 * still has all of it, and is not told whose it is. */
TEST(http_tenants_jobs_hidden_from_others)
{
	struct tenants x;
	char mA[65] = "", dA[65] = "", jA[64] = "", spec[1024], url[300];
	json_t *j;

	if (!tenants_setup(t, &x))
		return;
	CHECK_INT(upload_model(&x.A, FIX "mlp_op13.onnx", mA, NULL), 201);
	CHECK_INT(upload_dataset(&x.A, FIX "sample64_u8.npy", FIX "labels64_i64.npy", dA), 201);
	small_spec(spec, sizeof(spec), mA, dA, 3);
	CHECK_INT(submit(&x.A, spec, "key-1", jA, sizeof(jA), NULL), 202);
	REQUIRE(jA[0]);
	j = wait_job(&x.A, jA, "finished", 60);
	CHECK(j && !strcmp(json_string_value(json_object_get(j, "status")), "succeeded"));
	CHECK(j && !json_object_get(j, "tenant")); /* only the admin is told whose */
	json_decref(j);
	EXPECT_HIDDEN(&x.B, "GET", "/v1/jobs/%s", jA, unknown_job);
	EXPECT_HIDDEN(&x.B, "GET", "/v1/jobs/%s/report", jA, unknown_job);
	EXPECT_HIDDEN(&x.B, "GET", "/v1/jobs/%s/charts", jA, unknown_job);
	EXPECT_HIDDEN(&x.B, "GET", "/v1/jobs/%s/charts/accuracy.svg", jA, unknown_job);
	EXPECT_HIDDEN(&x.B, "GET", "/v1/jobs/%s/artifacts/model.onnx", jA, unknown_job);
	EXPECT_HIDDEN(&x.B, "POST", "/v1/jobs/%s/cancel", jA, unknown_job);
	EXPECT_HIDDEN(&x.B, "DELETE", "/v1/jobs/%s", jA, unknown_job);
	CHECK_INT(list_has(&x.B, "/v1/jobs", jA, NULL), 0);
	CHECK_INT(list_has(&x.B, "/v1/jobs?status=succeeded", jA, NULL), 0);
	snprintf(url, sizeof(url), "/v1/jobs/%s/report", jA);
	EXPECT(&x.A, "GET", url, 200);
	snprintf(url, sizeof(url), "/v1/jobs/%s/artifacts/model.onnx", jA);
	EXPECT_PROBLEM(&x.A, "GET", url, 409, "/problems/conflict"); /* an analyze job has no artifact: found, not hidden */
	CHECK_INT(list_has(&x.A, "/v1/jobs", jA, NULL), 1);
	tenants_teardown(t, &x);
}

/* A harden job's model is registered as its tenant's: alice fetches the
 * artifact and the model, bob neither. */
TEST(http_tenants_harden_model_is_the_tenants)
{
	struct tenants x;
	char mA[65] = "", dA[65] = "", hj[64] = "", hid[65] = "", hspec[1024], url[300];
	const char *link;
	struct be_resp r;
	json_t *j;

	if (!tenants_setup(t, &x))
		return;
	CHECK_INT(upload_model(&x.A, FIX "mlp_op13.onnx", mA, NULL), 201);
	CHECK_INT(upload_dataset(&x.A, FIX "sample64_u8.npy", FIX "labels64_i64.npy", dA), 201);
	harden_small_spec(hspec, sizeof(hspec), mA, dA);
	REQUIRE(submit(&x.A, hspec, NULL, hj, sizeof(hj), &r) == 202);
	be_resp_free(&r);
	j = wait_job(&x.A, hj, "finished", 120);
	CHECK(j && !strcmp(json_string_value(json_object_get(j, "status")), "succeeded"));
	link = json_string_value(json_object_get(json_object_get(j, "links"), "hardened_model"));
	CHECK(link && strlen(link) == strlen("/v1/models/") + 64);
	if (link)
		snprintf(hid, sizeof(hid), "%s", link + strlen("/v1/models/"));
	json_decref(j);
	snprintf(url, sizeof(url), "/v1/models/%s", hid);
	EXPECT(&x.A, "GET", url, 200);
	EXPECT_HIDDEN(&x.B, "GET", "/v1/models/%s", hid, unknown_blob);
	snprintf(url, sizeof(url), "/v1/jobs/%s/artifacts/model.onnx", hj);
	EXPECT(&x.A, "GET", url, 200);
	EXPECT_HIDDEN(&x.B, "GET", "/v1/jobs/%s/artifacts/model.onnx", hj, unknown_job);
	CHECK_INT(list_has(&x.ADM, "/v1/models", hid, "alice"), 1);
	tenants_teardown(t, &x);
}

/* Bob cannot use alice's dataset: the answer of an unknown id. */
TEST(http_tenants_others_dataset_is_unknown)
{
	struct tenants x;
	char mA[65] = "", mB[65] = "", dA[65] = "", spec[1024], spec_unknown[1024];
	struct be_resp r, r2;

	if (!tenants_setup(t, &x))
		return;
	CHECK_INT(upload_model(&x.A, FIX "mlp_op13.onnx", mA, NULL), 201);
	CHECK_INT(upload_dataset(&x.A, FIX "sample64_u8.npy", FIX "labels64_i64.npy", dA), 201);
	CHECK_INT(upload_model(&x.B, FIX "mlp_op13.onnx", mB, NULL), 201);
	small_spec(spec, sizeof(spec), mA, dA, 3);
	small_spec(spec_unknown, sizeof(spec_unknown), mB, unknown_blob, 3);
	REQUIRE(submit(&x.B, spec, NULL, NULL, 0, &r) == 422);
	REQUIRE(submit(&x.B, spec_unknown, NULL, NULL, 0, &r2) == 422);
	CHECK(is_problem(&r, 422, "/problems/invalid") && strstr(r.body, "\"/dataset\"") && same_problem(&r, &r2));
	be_resp_free(&r);
	be_resp_free(&r2);
	tenants_teardown(t, &x);
}

/* Idempotency keys are per tenant: bob's key-1 with alice's very spec text
 * (his own records of the same bytes) is a new job of his; alice's own
 * replay still works. */
TEST(http_tenants_idempotency_keys_per_tenant)
{
	struct tenants x;
	char mA[65] = "", mB[65] = "", dA[65] = "", dB[65] = "", jA[64] = "", jA2[64] = "", jB[64] = "", spec[1024],
	     hv[64];
	struct be_resp r;
	json_t *j;

	if (!tenants_setup(t, &x))
		return;
	CHECK_INT(upload_model(&x.A, FIX "mlp_op13.onnx", mA, NULL), 201);
	CHECK_INT(upload_dataset(&x.A, FIX "sample64_u8.npy", FIX "labels64_i64.npy", dA), 201);
	small_spec(spec, sizeof(spec), mA, dA, 3);
	RUN_JOB(&x.A, spec, "key-1", jA);
	CHECK_INT(upload_model(&x.B, FIX "mlp_op13.onnx", mB, NULL), 201);
	CHECK_INT(upload_dataset(&x.B, FIX "sample64_u8.npy", FIX "labels64_i64.npy", dB), 201);
	CHECK(!strcmp(dA, dB));
	REQUIRE(submit(&x.B, spec, "key-1", jB, sizeof(jB), &r) == 202);
	CHECK(be_resp_header(&r, "Idempotent-Replayed", hv, sizeof(hv)) && !strcmp(hv, "false"));
	CHECK(jB[0] && strcmp(jA, jB));
	be_resp_free(&r);
	j = wait_job(&x.B, jB, "finished", 60);
	CHECK(j && !strcmp(json_string_value(json_object_get(j, "status")), "succeeded"));
	json_decref(j);
	EXPECT_HIDDEN(&x.A, "GET", "/v1/jobs/%s", jB, unknown_job);
	REQUIRE(submit(&x.A, spec, "key-1", jA2, sizeof(jA2), &r) == 202);
	CHECK(be_resp_header(&r, "Idempotent-Replayed", hv, sizeof(hv)) && !strcmp(hv, "true"));
	CHECK(!strcmp(jA, jA2));
	be_resp_free(&r);
	tenants_teardown(t, &x);
}

/* The admin sees both tenants' jobs and models, told whose each is, and
 * can page through a listing where ids are held by two tenants. */
TEST(http_tenants_admin_sees_all)
{
	struct tenants x;
	char mA[65] = "", mB[65] = "", m2[65] = "", dA[65] = "", dB[65] = "", jA[64] = "", jB[64] = "", spec[1024],
	     url[300], cursor[200] = "", seen_pairs[5][140];
	int pages = 0, n = 0;
	struct be_resp r;
	json_t *j;

	if (!tenants_setup(t, &x))
		return;
	/* each holds the same two models */
	CHECK_INT(upload_model(&x.A, FIX "mlp_op13.onnx", mA, NULL), 201);
	CHECK_INT(upload_model(&x.A, FIX "cnn_bn_tiny_op17.onnx", m2, NULL), 201);
	CHECK_INT(upload_model(&x.B, FIX "mlp_op13.onnx", mB, NULL), 201);
	CHECK_INT(upload_model(&x.B, FIX "cnn_bn_tiny_op17.onnx", m2, NULL), 201);
	CHECK_INT(upload_dataset(&x.A, FIX "sample64_u8.npy", FIX "labels64_i64.npy", dA), 201);
	CHECK_INT(upload_dataset(&x.B, FIX "sample64_u8.npy", FIX "labels64_i64.npy", dB), 201);
	small_spec(spec, sizeof(spec), mA, dA, 3);
	RUN_JOB(&x.A, spec, NULL, jA);
	RUN_JOB(&x.B, spec, NULL, jB);
	CHECK_INT(list_has(&x.ADM, "/v1/jobs", jA, "alice"), 1);
	CHECK_INT(list_has(&x.ADM, "/v1/jobs", jB, "bob"), 1);
	CHECK_INT(list_has(&x.ADM, "/v1/models", mA, "alice"), 1);
	CHECK_INT(list_has(&x.ADM, "/v1/models", mA, "bob"), 1);
	snprintf(url, sizeof(url), "/v1/jobs/%s", jA);
	EXPECT(&x.ADM, "GET", url, 200);
	snprintf(url, sizeof(url), "/v1/jobs/%s/report", jB);
	EXPECT(&x.ADM, "GET", url, 200);
	for (;;) {
		snprintf(url, sizeof(url), "/v1/models?limit=1%s%s", cursor[0] ? "&cursor=" : "", cursor);
		REQUIRE(get(&x.ADM, url, &r) == 0 && r.status == 200);
		j = be_resp_json(&r);
		be_resp_free(&r);
		REQUIRE(j);
		for (size_t i = 0; i < json_array_size(json_object_get(j, "items")) && n < 5; i++) {
			json_t *it = json_array_get(json_object_get(j, "items"), i);
			snprintf(seen_pairs[n++], sizeof(seen_pairs[0]), "%s/%s",
				 json_string_value(json_object_get(it, "tenant")), json_string_value(json_object_get(it, "id")));
		}
		pages++;
		if (!json_is_string(json_object_get(j, "next_cursor")) || pages > 6) {
			json_decref(j);
			break;
		}
		snprintf(cursor, sizeof(cursor), "%s", json_string_value(json_object_get(j, "next_cursor")));
		json_decref(j);
	}
	CHECK_MSG(n == 4, "the admin listed %d models, expected alice's two and bob's two", n);
	for (int a = 0; a < n; a++)
		for (int b = 0; b < a; b++)
			CHECK_MSG(strcmp(seen_pairs[a], seen_pairs[b]), "%s listed twice", seen_pairs[a]);
	tenants_teardown(t, &x);
}

/* A shared file outlives one tenant's record: alice deletes hers, bob
 * still has his and runs a job on it; the last record takes the file with
 * it, and the bytes are new again to both. */
TEST(http_tenants_shared_file_outlives_one_record)
{
	struct tenants x;
	char mA[65] = "", mB[65] = "", dB[65] = "", jB2[64] = "", spec[1024], url[300], mpath[2 * PATH_MAX];
	struct stat st;

	if (!tenants_setup(t, &x))
		return;
	CHECK_INT(upload_model(&x.A, FIX "mlp_op13.onnx", mA, NULL), 201);
	CHECK_INT(upload_model(&x.B, FIX "mlp_op13.onnx", mB, NULL), 201);
	CHECK_INT(upload_dataset(&x.B, FIX "sample64_u8.npy", FIX "labels64_i64.npy", dB), 201);
	REQUIRE(mA[0] && !strcmp(mA, mB));
	snprintf(mpath, sizeof(mpath), "%s/data/models/%s.onnx", x.d.dir, mA);
	snprintf(url, sizeof(url), "/v1/models/%s", mA);
	EXPECT(&x.A, "DELETE", url, 204);
	EXPECT_PROBLEM(&x.A, "GET", url, 404, "/problems/not_found");
	EXPECT(&x.B, "GET", url, 200);
	CHECK(stat(mpath, &st) == 0);
	small_spec(spec, sizeof(spec), mB, dB, 4);
	RUN_JOB(&x.B, spec, NULL, jB2);
	EXPECT(&x.B, "DELETE", url, 204);
	CHECK(stat(mpath, &st) != 0 && errno == ENOENT);
	CHECK_INT(list_has(&x.ADM, "/v1/models", mA, NULL), 0);
	CHECK_INT(upload_model(&x.A, FIX "mlp_op13.onnx", mA, NULL), 201);
	CHECK_INT(upload_model(&x.B, FIX "mlp_op13.onnx", mB, NULL), 201);
	tenants_teardown(t, &x);
}

/* Queued jobs per tenant (1): with the worker busy on alice's slow job,
 * bob's first waits and his second gets 429; alice may still queue hers;
 * cancelling frees the slot. */
TEST(http_tenants_queued_jobs_quota_429)
{
	struct tenants x;
	char mA[65] = "", mB[65] = "", dA[65] = "", dB[65] = "", jA2[64] = "", jq[64] = "", slow[64] = "",
	     spec[1024], spec2[1024], url[300], hv[64];
	struct be_resp r;
	json_t *j;

	if (!tenants_setup(t, &x))
		return;
	CHECK_INT(upload_model(&x.A, FIX "mlp_op13.onnx", mA, NULL), 201);
	CHECK_INT(upload_dataset(&x.A, FIX "sample64_u8.npy", FIX "labels64_i64.npy", dA), 201);
	CHECK_INT(upload_model(&x.B, FIX "mlp_op13.onnx", mB, NULL), 201);
	CHECK_INT(upload_dataset(&x.B, FIX "sample64_u8.npy", FIX "labels64_i64.npy", dB), 201);
	slow_spec(spec, sizeof(spec), mA, dA);
	REQUIRE(submit(&x.A, spec, NULL, slow, sizeof(slow), NULL) == 202);
	j = wait_job(&x.A, slow, "running", 30);
	CHECK(j && !strcmp(json_string_value(json_object_get(j, "status")), "running"));
	json_decref(j);
	CHECK_INT(submit(&x.B, spec, NULL, jq, sizeof(jq), NULL), 202);
	snprintf(spec2, sizeof(spec2), "%.*s, \"limit\": 16}", (int)strlen(spec) - 1, spec);
	REQUIRE(submit(&x.B, spec2, NULL, NULL, 0, &r) == 429);
	CHECK(is_problem(&r, 429, "/problems/quota"));
	j = be_resp_json(&r);
	CHECK(j && !strcmp(json_string_value(json_object_get(j, "type")) ?: "", "/problems/quota"));
	CHECK(j && strstr(json_string_value(json_object_get(j, "detail")) ?: "", "tenant_max_queued_jobs"));
	json_decref(j);
	CHECK(be_resp_header(&r, "Retry-After", hv, sizeof(hv)) && atoi(hv) > 0);
	be_resp_free(&r);
	CHECK_INT(submit(&x.A, spec2, NULL, jA2, sizeof(jA2), NULL), 202);
	snprintf(url, sizeof(url), "/v1/jobs/%s", jq);
	EXPECT(&x.B, "DELETE", url, 200);
	CHECK_INT(submit(&x.B, spec2, NULL, jq, sizeof(jq), NULL), 202);
	snprintf(url, sizeof(url), "/v1/jobs/%s", jq);
	EXPECT(&x.B, "DELETE", url, 200);
	snprintf(url, sizeof(url), "/v1/jobs/%s", jA2);
	EXPECT(&x.A, "DELETE", url, 200);
	snprintf(url, sizeof(url), "/v1/jobs/%s/cancel", slow);
	REQUIRE(request(&x.A, "POST", url, NULL, NULL, 0, NULL, 0, NULL, &r) == 0);
	CHECK_MSG(cancel_answer(&r, "running"), "cancel: %ld %s", r.status, r.body ? r.body : "");
	be_resp_free(&r);
	j = wait_job(&x.A, slow, "cancelled", 30);
	CHECK(j && !strcmp(json_string_value(json_object_get(j, "status")), "cancelled"));
	json_decref(j);
	tenants_teardown(t, &x);
}

/* Stored bytes per tenant (1 MiB): the legacy token's second 600 KB upload
 * gets 507; the quota is the tenant's (the admin's tenant, holding
 * nothing, may; bob, holding 600 KB, may not); after a delete it fits. */
TEST(http_tenants_stored_bytes_quota_507)
{
	struct tenants x;
	char mB[65] = "", m2[65] = "", dB[65] = "", c1[65] = "", c2[65] = "", path[PATH_MAX], url[300];
	struct be_part p[2];
	struct be_resp r;
	struct stat st;
	json_t *j;

	if (!tenants_setup(t, &x))
		return;
	CHECK_INT(upload_model(&x.B, FIX "mlp_op13.onnx", mB, NULL), 201);
	CHECK_INT(upload_model(&x.B, FIX "cnn_bn_tiny_op17.onnx", m2, NULL), 201);
	CHECK_INT(upload_dataset(&x.B, FIX "sample64_u8.npy", FIX "labels64_i64.npy", dB), 201);
	snprintf(path, sizeof(path), "%s/c1.csv", x.d.dir);
	REQUIRE(write_csv(path, 40000, 1));
	REQUIRE(stat(path, &st) == 0 && st.st_size > 550000 && st.st_size < 700000);
	CHECK_INT(upload_dataset(&x.L, path, NULL, c1), 201);
	snprintf(path, sizeof(path), "%s/c2.csv", x.d.dir);
	REQUIRE(write_csv(path, 40000, 2));
	REQUIRE(request(&x.L, "GET", "/v1/datasets", NULL, NULL, 0, NULL, 0, NULL, &r) == 0);
	CHECK_INT(r.status, 200);
	be_resp_free(&r);
	REQUIRE(request(&x.L, "POST", "/v1/datasets", NULL, NULL, 0, p, be_dataset_parts(p, path, NULL), NULL, &r) == 0);
	CHECK(is_problem(&r, 507, "/problems/storage_quota"));
	j = be_resp_json(&r);
	CHECK(j && !strcmp(json_string_value(json_object_get(j, "type")) ?: "", "/problems/storage_quota"));
	CHECK(j && strstr(json_string_value(json_object_get(j, "detail")) ?: "", "tenant_max_stored_mb"));
	json_decref(j);
	be_resp_free(&r);
	CHECK_INT(upload_dataset(&x.ADM, path, NULL, c2), 201);
	CHECK_INT(list_has(&x.ADM, "/v1/datasets", c2, "ops"), 1);
	EXPECT_DATASET_REFUSED(&x.B, path, NULL, 507, "/problems/storage_quota");
	/* the legacy tenant is "default" to the admin */
	CHECK_INT(list_has(&x.ADM, "/v1/datasets", c1, "default"), 1);
	snprintf(url, sizeof(url), "/v1/datasets/%s", c1);
	EXPECT(&x.L, "DELETE", url, 204);
	CHECK_INT(upload_dataset(&x.L, path, NULL, c2), 201);
	tenants_teardown(t, &x);
}

/* A bad tokens file stops startup, naming the line, never the token. */
TEST(http_tenants_bad_tokens_file_stops_startup)
{
	/* a file's contents; what the message must say (two), must not (two) */
	static const char *const files[][5] = {
		{"good-token tenant=a\n# comment\nsecret-in-line-3 role=root\n", "line 3", "role", "secret-in-line-3",
		 "secret-in-line-3"},
		{"tok-1 tenant=a\ntok-2 tenant=b/../c\n", "line 2", "tenant", "tok-2", "tok-2"},
		{"same-token tenant=a\nother\nsame-token tenant=b\n", "line 3", "line 1", "same-token", "same-token"},
		{"tok-1 colour=blue\n", "line 1", "line 1", "colour", "tok-1"},
	};
	char dir[1024], tokens[1100], out[8192], args[3000];
	FILE *f;

	if (!getenv("PARACORRD_BIN") || !be_tmpdir(dir, sizeof(dir))) {
		pc_test_skip(t, "PARACORRD_BIN is not set (make test sets it)");
		return;
	}
	snprintf(tokens, sizeof(tokens), "%s/tokens", dir);
	snprintf(args, sizeof(args), "--tokens-file '%s' --data-dir '%s/data' --port 0", tokens, dir);
	for (size_t k = 0; k < sizeof(files) / sizeof(files[0]); k++) {
		REQUIRE((f = fopen(tokens, "w")) != NULL);
		fputs(files[k][0], f);
		fclose(f);
		CHECK_MSG(run_daemon_cmd(NULL, args, out, sizeof(out)) != 0, "file %zu was accepted", k);
		CHECK_MSG(strstr(out, files[k][1]) && strstr(out, files[k][2]) && !strstr(out, files[k][3]) &&
				  !strstr(out, files[k][4]),
			  "file %zu: %s", k, out);
	}
	be_rmtree(dir);
}

/* Whether path matches a template whose {name} segments match one
 * non-empty path segment each. */
static int template_match(const char *tmpl, const char *path)
{
	while (*tmpl && *path) {
		if (*tmpl == '{') {
			const char *te = strchr(tmpl, '}');
			size_t n = strcspn(path, "/");

			if (!te || n == 0)
				return 0;
			tmpl = te + 1;
			path += n;
			continue;
		}
		if (*tmpl++ != *path++)
			return 0;
	}
	return !*tmpl && !*path;
}

/* "METHOD /template" of each operation under `paths:` (OPTIONS aside). */
static int openapi_operations(char ops[][160], int max)
{
	static const char *const methods[] = {"get", "head", "post", "put", "delete", "patch"};
	char line[1024], cur[128] = "";
	size_t len, m;
	char *text = read_fixture("api/openapi.yaml", &len), *p, *e;
	int n = 0, in_paths = 0;

	if (!text)
		return -1;
	for (p = text; *p && n < max; p = *e ? e + 1 : e) {
		e = strchr(p, '\n');
		if (!e)
			e = p + strlen(p);
		snprintf(line, sizeof(line), "%.*s", (int)(e - p), p);
		if (line[0] != ' ' && line[0] != '#' && line[0]) {
			in_paths = !strcmp(line, "paths:");
			continue;
		}
		if (!in_paths)
			continue;
		if (!strncmp(line, "  /", 3) && line[strlen(line) - 1] == ':') {
			snprintf(cur, sizeof(cur), "%.*s", (int)strlen(line) - 3, line + 2);
			continue;
		}
		for (m = 0; m < sizeof(methods) / sizeof(methods[0]); m++) {
			char want[32];

			snprintf(want, sizeof(want), "    %s:", methods[m]);
			if (!strcmp(line, want) && cur[0]) {
				char up[16];
				size_t k;

				for (k = 0; methods[m][k]; k++)
					up[k] = (char)(methods[m][k] - 'a' + 'A');
				up[k] = '\0';
				snprintf(ops[n++], 160, "%s %s", up, cur);
			}
		}
	}
	free(text);
	return n;
}

/* GET /metrics shows the queue depths of every tenant: with a tokens file
 * only the admin role reads it (401 without a token, 403 problem of type
 * /problems/forbidden for a tenant's token, 200 for the admin); without
 * one it stays open. */
TEST(http_tenants_metrics)
{
	struct be_daemon d;
	char tokens[PATH_MAX];
	const char *extra[] = {"--tokens-file", tokens, NULL};
	struct be_resp r;
	FILE *f;

	memset(&d, 0, sizeof(d));
	if (!getenv("PARACORRD_BIN") || !be_tmpdir(d.dir, sizeof(d.dir))) {
		pc_test_skip(t, "PARACORRD_BIN is not set (make test sets it)");
		return;
	}
	snprintf(tokens, sizeof(tokens), "%s/tokens", d.dir);
	REQUIRE((f = fopen(tokens, "w")) != NULL);
	fputs("tok-alice tenant=alice\ntok-ops tenant=ops role=admin\ntok-legacy\n", f);
	fclose(f);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	REQUIRE_MSG(daemon_start(&d, extra), "the daemon did not come up (see %s/daemon.log)", d.dir);
	REQUIRE(get(&d, "/metrics", &r) == 0);
	CHECK(is_problem(&r, 401, "/problems/unauthorized"));
	be_resp_free(&r);
	for (int i = 0; i < 2; i++) {
		const char *tok = i ? "Authorization: Bearer tok-legacy" : "Authorization: Bearer tok-alice";
		json_t *j;

		REQUIRE(request(&d, "GET", "/metrics", NULL, NULL, 0, NULL, 0, tok, &r) == 0);
		CHECK(is_problem(&r, 403, "/problems/forbidden"));
		j = be_resp_json(&r);
		CHECK_MSG(j && !strcmp(json_string_value(json_object_get(j, "type")) ?: "", "/problems/forbidden"), "%s",
			  r.body ? r.body : "");
		CHECK(r.body && !strstr(r.body, "paracorr_queue_depth"));
		json_decref(j);
		be_resp_free(&r);
	}
	REQUIRE(request(&d, "GET", "/metrics", NULL, NULL, 0, NULL, 0, "Authorization: Bearer tok-ops", &r) == 0);
	CHECK_INT(r.status, 200);
	CHECK(r.body && strstr(r.body, "paracorr_queue_depth{state=\"queued\",node=\""));
	be_resp_free(&r);
	/* the rest of the tenant's API is unchanged for an ordinary token */
	REQUIRE(request(&d, "GET", "/v1/jobs", NULL, NULL, 0, NULL, 0, "Authorization: Bearer tok-alice", &r) == 0);
	CHECK_INT(r.status, 200);
	be_resp_free(&r);
	CHECK_INT(be_daemon_stop(&d, SIGTERM, NULL), 0);
	be_rmtree(d.dir);
}

TEST(http_z_openapi_routes)
{
	char ops[128][160];
	int n = openapi_operations(ops, 128), i;
	size_t k;

	REQUIRE_MSG(n > 0, "no operations read from api/openapi.yaml");
	/* the document and the route table name the same operations */
	for (k = 0; k < pcd_n_routes; k++) {
		char want[160];

		snprintf(want, sizeof(want), "%s %s", pcd_routes[k].method, pcd_routes[k].template);
		for (i = 0; i < n && strcmp(ops[i], want); i++)
			;
		CHECK_MSG(i < n, "route %s is not in api/openapi.yaml", want);
	}
	for (i = 0; i < n; i++) {
		for (k = 0; k < pcd_n_routes; k++) {
			char have[160];

			snprintf(have, sizeof(have), "%s %s", pcd_routes[k].method, pcd_routes[k].template);
			if (!strcmp(ops[i], have))
				break;
		}
		CHECK_MSG(k < pcd_n_routes, "api/openapi.yaml documents %s, which the daemon does not serve", ops[i]);
	}
	/* and the HTTP tests before this one (its name sorts it last) exercised
	 * every operation: a coverage check, made only when they all ran */
	if (!pc_test_ran_all("http_")) {
		pc_test_skip(t, "run with all the other http_ tests to check that each route is exercised");
		return;
	}
	for (i = 0; i < n; i++) {
		const char *sp = strchr(ops[i], ' ');
		size_t ml = (size_t)(sp - ops[i]);

		for (k = 0; k < n_seen; k++)
			if (!strncmp(seen[k], ops[i], ml) && seen[k][ml] == ' ' && template_match(sp + 1, seen[k] + ml + 1))
				break;
		CHECK_MSG(k < n_seen, "no test sends %s", ops[i]);
	}
}

/* --- the dashboard in a headless browser ---------------------------------- */

/* Runs headless Chromium on url; `what` is "--dump-dom" (the DOM after the
 * scripts ran, into a malloc'd string) or "--screenshot=PATH". */
static char *chromium(const char *bin, const char *profile, const char *what, const char *url)
{
	enum { DOM_MAX = 16 << 20 };
	char cmd[32768], *out;
	int st;

	snprintf(cmd, sizeof(cmd),
		 "'%s' --headless --no-sandbox --disable-gpu --disable-dev-shm-usage --hide-scrollbars "
		 "--no-first-run --user-data-dir='%s' --window-size=1280,2400 --virtual-time-budget=15000 %s '%s' "
		 "2>/dev/null",
		 bin, profile, what, url);
	if (!(out = malloc(DOM_MAX)))
		return NULL;
	/* a browser that hangs fails its test, not the whole run */
	st = be_run(cmd, out, DOM_MAX, 120);
	if (st != 0 && !out[0]) {
		free(out);
		return NULL;
	}
	return out;
}

/* The value of attribute name in the tag that starts at tag (NULL: none). */
static const char *tag_attr(const char *tag, const char *name, char *buf, size_t size)
{
	const char *end = strchr(tag, '>'), *p;
	char key[64];

	snprintf(key, sizeof(key), " %s=\"", name);
	if (!end || !(p = strstr(tag, key)) || p > end)
		return NULL;
	p += strlen(key);
	snprintf(buf, size, "%.*s", (int)(strcspn(p, "\"")), p);
	return buf;
}

TEST(http_dashboard_browser)
{
	const char *bin = getenv("CHROMIUM") ? getenv("CHROMIUM") : "/usr/bin/chromium";
	const char *art = getenv("PARACORR_ARTIFACT_DIR");
	struct be_daemon d;
	char model[65] = "", ds[65] = "", job[64] = "", spec[2048], url[512], profile[PATH_MAX], shot[PATH_MAX + 64],
	     buf[256];
	char *dom = NULL, *p;
	json_t *j;
	int charts = 0, series = 0, gradient = 0;

	if (!setup(t, &d))
		return;
	CHECK_INT(upload_model(&d, FIX "mlp_op13.onnx", model, NULL), 201);
	CHECK_INT(upload_dataset(&d, FIX "sample64_u8.npy", FIX "labels64_i64.npy", ds), 201);
	/* two norms at four radii with random trials, and a layer block */
	snprintf(spec, sizeof(spec),
		 "{\"model\": \"%s\", \"dataset\": \"%s\", \"limit\": 48, \"batch_size\": 16, \"seed\": 3, "
		 "\"corruption\": [{\"norms\": [\"l2\", \"linf\"], \"epsilons\": [0.01, 0.1, 1, 3], \"random_trials\": 2, "
		 "\"groups\": [\"model\"]}, {\"norms\": [\"l2\"], \"epsilons\": [0.5], \"random_trials\": 0, \"groups\": "
		 "[\"layer\"]}]}",
		 model, ds);
	REQUIRE(submit(&d, spec, NULL, job, sizeof(job), NULL) == 202);
	j = wait_job(&d, job, "succeeded", 60);
	REQUIRE_MSG(j && !strcmp(json_string_value(json_object_get(j, "status")), "succeeded"), "the job did not succeed");
	json_decref(j);

	/* over plain HTTP first: the pages, and the charts the report offers */
	{
		struct be_resp r;
		char hv[128], path[256];
		size_t i;
		json_t *c;

		REQUIRE(get(&d, "/", &r) == 0);
		CHECK(r.status == 200 && be_resp_header(&r, "Content-Type", hv, sizeof(hv)) && strstr(hv, "text/html") &&
		      strstr(r.body, "/app.js") && strstr(r.body, "/style.css"));
		be_resp_free(&r);
		REQUIRE(get(&d, "/app.js", &r) == 0);
		CHECK(r.status == 200 && be_resp_header(&r, "Content-Type", hv, sizeof(hv)) && strstr(hv, "javascript") && r.len > 1000);
		be_resp_free(&r);
		REQUIRE(get(&d, "/style.css", &r) == 0);
		CHECK(r.status == 200 && be_resp_header(&r, "Content-Type", hv, sizeof(hv)) && strstr(hv, "text/css"));
		be_resp_free(&r);
		snprintf(path, sizeof(path), "/v1/jobs/%s/charts", job);
		REQUIRE(get(&d, path, &r) == 0);
		j = be_resp_json(&r);
		be_resp_free(&r);
		CHECK(j && json_array_size(json_object_get(j, "items")) == 3);
		json_array_foreach(json_object_get(j, "items"), i, c)
		{
			struct be_resp s2;
			const char *href = json_string_value(json_object_get(c, "href"));

			REQUIRE(href && get(&d, href, &s2) == 0);
			CHECK_MSG(s2.status == 200 && be_resp_header(&s2, "Content-Type", hv, sizeof(hv)) && strstr(hv, "image/svg+xml") &&
					  !strncmp(s2.body, "<svg ", 5) && strstr(s2.body, "class=\"series\""),
				  "%s: %ld", href, s2.status);
			be_resp_free(&s2);
		}
		json_decref(j);
		snprintf(path, sizeof(path), "/v1/jobs/%s/charts/pie.svg", job);
		EXPECT_PROBLEM(&d, "GET", path, 404, "/problems/not_found");
		snprintf(path, sizeof(path), "/v1/jobs/%s/charts/accuracy.png", job);
		EXPECT_PROBLEM(&d, "GET", path, 404, "/problems/not_found");
		EXPECT_PROBLEM(&d, "GET", "/v1/jobs/j-0000000000000000/charts", 404, "/problems/not_found");
	}

	if (access(bin, X_OK) != 0) {
		pc_test_skip(t, "no Chromium for the browser part (make deps-test installs it)");
		CHECK_INT(be_daemon_stop(&d, SIGTERM, NULL), 0);
		be_rmtree(d.dir);
		return;
	}
	REQUIRE(be_tmpdir(profile, sizeof(profile)));

	/* the job list shows the finished job */
	snprintf(url, sizeof(url), "%s/#/jobs", d.base);
	dom = chromium(bin, profile, "--dump-dom", url);
	REQUIRE_MSG(dom, "chromium did not run");
	snprintf(buf, sizeof(buf), "data-job-id=\"%s\"", job);
	p = strstr(dom, buf);
	while (p && p > dom && *p != '<')
		p--; /* the start of the row's tag */
	CHECK_MSG(strstr(dom, "data-testid=\"jobs\"") && p && tag_attr(p, "data-status", buf, sizeof(buf)) &&
			  !strcmp(buf, "succeeded"),
		  "the job list does not show %s as succeeded", job);
	free(dom);

	/* the job's page: its charts drawn inline, one path per series */
	snprintf(url, sizeof(url), "%s/#/jobs/%s", d.base, job);
	dom = chromium(bin, profile, "--dump-dom", url);
	REQUIRE(dom);
	snprintf(buf, sizeof(buf), "data-testid=\"job\" data-job-id=\"%s\"", job);
	CHECK_MSG(strstr(dom, buf) != NULL, "no job page for %s", job);
	CHECK(strstr(dom, "data-testid=\"results\"") != NULL);
	for (p = dom; (p = strstr(p, "data-testid=\"chart\"")); p++)
		charts++;
	CHECK_MSG(charts == 3, "%d charts drawn, expected accuracy, loss and ranking", charts);
	CHECK(strstr(dom, "data-chart=\"accuracy\"") && strstr(dom, "data-chart=\"loss\"") &&
	      strstr(dom, "data-chart=\"ranking\""));
	{
		/* the accuracy chart: per norm, gradient + random mean + worst, 4 points each */
		const char *acc = strstr(dom, "data-chart=\"accuracy\""), *next = acc ? strstr(acc + 1, "data-testid=\"chart\"") : NULL;

		for (p = (char *)acc; p && (p = strstr(p, "<path class=\"series\"")) && (!next || p < next); p++) {
			int points = tag_attr(p, "data-points", buf, sizeof(buf)) ? atoi(buf) : -1, counted = 0;
			const char *dd = strstr(p, " d=\"");

			for (const char *q = dd ? dd + 4 : ""; *q && *q != '"'; q++)
				counted += *q == 'M' || *q == 'L';
			series++;
			CHECK_MSG(points == 4 && counted == 4, "a series with %d points (d has %d), expected 4", points,
				  counted);
			if (tag_attr(p, "data-series", buf, sizeof(buf)) && strstr(buf, "gradient"))
				gradient++;
		}
		CHECK_MSG(series == 6 && gradient == 2, "%d series (%d gradient) in the accuracy chart, expected 6 (2)",
			  series, gradient);
	}
	free(dom);

	/* a screenshot, kept as the test's artifact */
	snprintf(shot, sizeof(shot), "%s/dashboard-job.png", art && art[0] ? art : d.dir);
	if (art && art[0])
		mkdir(art, 0755);
	{
		char flag[PATH_MAX + 128];

		snprintf(flag, sizeof(flag), "--screenshot=%s", shot);
		free(chromium(bin, profile, flag, url));
	}
	{
		struct stat st;
		CHECK_MSG(stat(shot, &st) == 0 && st.st_size > 20000, "no screenshot at %s", shot);
		fprintf(stderr, "  http_dashboard_browser: screenshot %s\n", shot);
	}
	be_rmtree(profile);
	CHECK_INT(be_daemon_stop(&d, SIGTERM, NULL), 0);
	be_rmtree(d.dir);
}

/* The report as one self-contained HTML file: served as the HTML of the
 * stored report, readable in a browser with no network and no script,
 * each chart drawn with its series (a screenshot kept as an artifact). */
/* A faults study on the dashboard: its card shows each format as stored,
 * the whole model's random bit errors and the searches, with the report's
 * numbers (two decimals of a percentage, as the page writes them). */
/* How often needle occurs in hay. */
static int count_of(const char *hay, const char *needle)
{
	int n = 0;

	for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle))
		n++;
	return n;
}

/* A curvature block through the service: the report's curvature object
 * (model and one entry per layer) and every gradient row's second_order,
 * the loss chart with its second-order series, and the dashboard's job
 * page with the curvature card (a row per group, its eigenvalues as the
 * report has them) and the second-order column. */
TEST(http_dashboard_curvature_browser)
{
	const char *bin = getenv("CHROMIUM") ? getenv("CHROMIUM") : "/usr/bin/chromium";
	struct be_daemon d;
	char model[65] = "", ds[65] = "", spec[1024], job[64] = "", path[256], url[512], profile[PATH_MAX], want[160];
	struct be_resp r;
	json_t *rep, *cv, *row;
	const char *name;
	char *dom;
	size_t i, rows = 0;

	if (!flow_setup(t, &d, model, ds))
		return;
	snprintf(spec, sizeof(spec),
		 "{\"model\": \"%s\", \"dataset\": \"%s\", \"seed\": 3, \"corruption\": {\"norms\": [\"l2\"], "
		 "\"epsilons\": [0.1, 0.5], \"random_trials\": 2, \"groups\": [\"model\"]}, \"curvature\": "
		 "{\"eigenvalues\": 2, \"iterations\": 30, \"trace_samples\": 4, \"groups\": [\"layer\"]}}",
		 model, ds);
	REQUIRE(submit(&d, spec, NULL, job, sizeof(job), NULL) == 202);
	json_decref(wait_job(&d, job, "succeeded", 120));
	snprintf(path, sizeof(path), "/v1/jobs/%s/report", job);
	REQUIRE(get(&d, path, &r) == 0);
	rep = be_resp_json(&r);
	be_resp_free(&r);
	REQUIRE(rep && (cv = json_object_get(rep, "curvature")));
	CHECK_INT(json_array_size(json_object_get(cv, "eigenvalues")), 2);
	CHECK(json_is_number(json_object_get(cv, "trace")) && json_array_size(json_object_get(cv, "trace_ci95")) == 2);
	/* mlp_op13: fc1, fc2, fc3 */
	CHECK_INT(json_object_size(json_object_get(cv, "groups")), 3);
	json_array_foreach(json_object_get(rep, "results"), i, row)
	{
		CHECK_MSG(json_is_number(json_object_get(row, "second_order")), "results[%zu] has no second_order", i);
		rows++;
	}
	CHECK_INT(rows, 2);
	snprintf(path, sizeof(path), "/v1/jobs/%s/charts/loss.svg", job);
	REQUIRE(get(&d, path, &r) == 0);
	CHECK_INT(r.status, 200);
	CHECK(r.body && strstr(r.body, "data-series=\"l2, second order\" data-points=\"2\""));
	be_resp_free(&r);
	if (access(bin, X_OK) != 0) {
		pc_test_skip(t, "no Chromium for the browser part (make deps-test installs it)");
		json_decref(rep);
		flow_teardown(t, &d);
		return;
	}
	REQUIRE(be_tmpdir(profile, sizeof(profile)));
	snprintf(url, sizeof(url), "%s/#/jobs/%s", d.base, job);
	dom = chromium(bin, profile, "--dump-dom", url);
	REQUIRE_MSG(dom, "chromium did not run");
	CHECK_MSG(strstr(dom, "data-testid=\"curvature\""), "the job page has no curvature card");
	CHECK_INT(count_of(dom, "data-h=\"second_order\""), 2);
	CHECK_INT(count_of(dom, "data-h=\"eigenvalues\""), 4);
	json_object_foreach(json_object_get(cv, "groups"), name, row)
	{
		snprintf(want, sizeof(want), ">%s</td>", name);
		CHECK_MSG(strstr(dom, want), "no row for %s", name);
	}
	free(dom);
	be_rmtree(profile);
	json_decref(rep);
	flow_teardown(t, &d);
}

TEST(http_dashboard_faults_browser)
{
	const char *bin = getenv("CHROMIUM") ? getenv("CHROMIUM") : "/usr/bin/chromium";
	struct be_daemon d;
	char model[65] = "", ds[65] = "", spec[1024], job[64] = "", path[256], url[512], profile[PATH_MAX], want[128];
	struct be_resp r;
	json_t *rep, *row;
	char *dom;
	size_t i;

	if (!flow_setup(t, &d, model, ds))
		return;
	snprintf(spec, sizeof(spec),
		 "{\"model\": \"%s\", \"dataset\": \"%s\", \"seed\": 3, \"corruption\": [], \"faults\": "
		 "{\"formats\": [\"int8\", \"float32\"], \"ber\": [1e-4, 1e-3], \"trials\": 3, \"search\": "
		 "{\"target_accuracy\": 0.3, \"max_flips\": 3}}}",
		 model, ds);
	REQUIRE(submit(&d, spec, NULL, job, sizeof(job), NULL) == 202);
	json_decref(wait_job(&d, job, "succeeded", 120));
	snprintf(path, sizeof(path), "/v1/jobs/%s/report", job);
	REQUIRE(get(&d, path, &r) == 0);
	rep = be_resp_json(&r);
	be_resp_free(&r);
	REQUIRE(rep && json_array_size(json_object_get(json_object_get(rep, "faults"), "random")) == 4);
	if (access(bin, X_OK) != 0) {
		pc_test_skip(t, "no Chromium for the browser part (make deps-test installs it)");
		json_decref(rep);
		flow_teardown(t, &d);
		return;
	}
	REQUIRE(be_tmpdir(profile, sizeof(profile)));
	snprintf(url, sizeof(url), "%s/#/jobs/%s", d.base, job);
	dom = chromium(bin, profile, "--dump-dom", url);
	REQUIRE_MSG(dom, "chromium did not run");
	CHECK_MSG(strstr(dom, "data-testid=\"faults\"") && strstr(dom, "data-testid=\"faults-random\"") &&
		      strstr(dom, "data-testid=\"faults-search\"") && strstr(dom, "data-testid=\"faults-formats\""),
		  "the job page has no faults card");
	CHECK_MSG(!strstr(dom, "data-testid=\"results\""), "a faults-only study lists empty results");
	json_array_foreach(json_object_get(json_object_get(rep, "faults"), "random"), i, row)
	{
		const char *p;

		snprintf(want, sizeof(want), "data-format=\"%s\" data-ber=\"%g\"", json_string_value(json_object_get(row, "format")),
			 json_real_value(json_object_get(row, "ber")));
		p = strstr(dom, want);
		{
			/* JavaScript's toFixed rounds an exact tie up, printf to even */
			double y = 100 * json_real_value(json_object_get(row, "accuracy_mean"));
			char up[64];
			const char *end = p ? strstr(p, "</tr>") : NULL, *a, *b;

			snprintf(want, sizeof(want), "%.2f%%", y);
			snprintf(up, sizeof(up), "%.2f%%", y + 1e-9);
			a = p ? strstr(p, want) : NULL;
			b = p ? strstr(p, up) : NULL;
			CHECK_MSG(end && ((a && a < end) || (b && b < end)), "random row %zu: no %s in its row", i, want);
		}
	}
	free(dom);
	be_rmtree(profile);
	json_decref(rep);
	flow_teardown(t, &d);
}

TEST(http_report_html_browser)
{
	const char *bin = getenv("CHROMIUM") ? getenv("CHROMIUM") : "/usr/bin/chromium";
	const char *art = getenv("PARACORR_ARTIFACT_DIR");
	struct be_daemon d;
	char model[65] = "", ds[65] = "", job[64] = "", spec[1024], path[256], hv[128], file[PATH_MAX + 32],
	     url[PATH_MAX + 64], profile[PATH_MAX], flag[2 * PATH_MAX], shot[PATH_MAX + 64];
	char *html = NULL, *dom = NULL, *p;
	size_t len = 0;
	struct be_resp r;
	struct pc_error err = {0};
	json_t *j, *rep;
	int figures = 0, rows = 0;
	FILE *f;

	if (!setup(t, &d))
		return;
	CHECK_INT(upload_model(&d, FIX "mlp_op13.onnx", model, NULL), 201);
	CHECK_INT(upload_dataset(&d, FIX "sample64_u8.npy", FIX "labels64_i64.npy", ds), 201);
	snprintf(spec, sizeof(spec),
		 "{\"model\": \"%s\", \"dataset\": \"%s\", \"batch_size\": 16, \"seed\": 3, \"corruption\": "
		 "{\"norms\": [\"l2\"], \"epsilons\": [0.1, 1, 3], \"random_trials\": 2, \"groups\": [\"model\", "
		 "\"layer\"]}}",
		 model, ds);
	REQUIRE(submit(&d, spec, NULL, job, sizeof(job), NULL) == 202);
	j = wait_job(&d, job, "succeeded", 60);
	REQUIRE_MSG(j && !strcmp(json_string_value(json_object_get(j, "status")), "succeeded"), "the job did not succeed");
	json_decref(j);

	snprintf(path, sizeof(path), "/v1/jobs/%s/report", job);
	REQUIRE(get(&d, path, &r) == 0);
	rep = be_resp_json(&r);
	be_resp_free(&r);
	REQUIRE(rep);
	REQUIRE(pcd_report_html(rep, &html, &len, &err) == PC_OK);
	CHECK_INT(json_array_size(json_object_get(rep, "results")), 3 + 3 * 3);
	json_decref(rep);
	snprintf(path, sizeof(path), "/v1/jobs/%s/report.html", job);
	REQUIRE(get(&d, path, &r) == 0);
	CHECK_INT(r.status, 200);
	CHECK(be_resp_header(&r, "Content-Type", hv, sizeof(hv)) && !strcmp(hv, "text/html; charset=utf-8"));
	/* exactly the HTML of the stored report */
	CHECK_MSG(r.body && r.len == len && !memcmp(r.body, html, len), "served %zu bytes, the report makes %zu",
		  r.len, len);
	CHECK(r.body && !strstr(r.body, "<script") && !strstr(r.body, " src=") && !strstr(r.body, " href="));
	be_resp_free(&r);
	EXPECT_PROBLEM(&d, "GET", "/v1/jobs/j-0000000000000000/report.html", 404, "/problems/not_found");
	CHECK_INT(be_daemon_stop(&d, SIGTERM, NULL), 0);

	if (access(bin, X_OK) != 0) {
		pc_test_skip(t, "no Chromium for the browser part (make deps-test installs it)");
		free(html);
		be_rmtree(d.dir);
		return;
	}
	/* read from a file, as a user who got it attached would: no server */
	snprintf(file, sizeof(file), "%s/report.html", d.dir);
	REQUIRE((f = fopen(file, "w")));
	fwrite(html, 1, len, f);
	fclose(f);
	free(html);
	REQUIRE(be_tmpdir(profile, sizeof(profile)));
	snprintf(url, sizeof(url), "file://%s", file);
	dom = chromium(bin, profile, "--dump-dom", url);
	REQUIRE_MSG(dom, "chromium did not run");
	for (p = dom; (p = strstr(p, "<figure data-chart=")); p++)
		figures++;
	CHECK_MSG(figures == 3, "%d charts in the page, expected accuracy, loss and ranking", figures);
	for (p = dom; (p = strstr(p, "<tr data-group=")); p++)
		rows++;
	CHECK_MSG(rows == 12, "%d result rows in the page, expected 12", rows);
	{
		/* the accuracy chart as the browser parsed it: gradient, random mean
		 * and worst of the whole model, 3 radii each */
		const char *acc = strstr(dom, "<figure data-chart=\"accuracy\""), *end = acc ? strstr(acc, "</figure>") : NULL;
		char buf[64];
		int series = 0;

		for (p = (char *)acc; p && (p = strstr(p, "<path class=\"series\"")) && p < end; p++) {
			series++;
			CHECK_MSG(tag_attr(p, "data-points", buf, sizeof(buf)) && atoi(buf) == 3, "a series of %s points",
				  buf);
		}
		CHECK_MSG(series == 3, "%d series in the accuracy chart, expected 3", series);
	}
	free(dom);
	snprintf(shot, sizeof(shot), "%s/report-html.png", art && art[0] ? art : d.dir);
	if (art && art[0])
		mkdir(art, 0755);
	snprintf(flag, sizeof(flag), "--screenshot=%s", shot);
	free(chromium(bin, profile, flag, url));
	{
		struct stat st;

		CHECK_MSG(stat(shot, &st) == 0 && st.st_size > 20000, "no screenshot at %s", shot);
		fprintf(stderr, "  http_report_html_browser: screenshot %s\n", shot);
	}
	be_rmtree(profile);
	be_rmtree(d.dir);
}

/* --- the command-line client against the daemon ---------------------------- */

/* Runs `paracorr ARGS` in the project root; exit status, output into out. */
static int run_cli(const char *args, char *out, size_t size)
{
	char cmd[6 * PATH_MAX];

	snprintf(cmd, sizeof(cmd), "'%s' %s 2>&1", getenv("PARACORR_BIN"), args);
	return be_run(cmd, out, size, 120);
}

TEST(http_cli_client)
{
	struct be_daemon d;
	char spec_path[PATH_MAX], rep_path[PATH_MAX], svg_path[PATH_MAX], args[4 * PATH_MAX], *out = malloc(65536),
	     job[64] = "";
	const char *spec_text = "{\"model\": \"" FIX "mlp_op13.onnx\", \"dataset\": {\"inputs\": \"" FIX
				"sample64_u8.npy\", \"labels\": \"" FIX "labels64_i64.npy\"}, " SPEC_REST "}";
	json_t *rep, *cli;
	FILE *f;

	REQUIRE(out);
	if (!getenv("PARACORR_BIN") || !getenv("PARACORR_BIN")[0]) {
		free(out);
		pc_test_skip(t, "PARACORR_BIN is not set (make test sets it)");
		return;
	}
	if (!setup(t, &d)) {
		free(out);
		return;
	}
	snprintf(spec_path, sizeof(spec_path), "%s/spec.json", d.dir);
	snprintf(rep_path, sizeof(rep_path), "%s/served.json", d.dir);
	snprintf(svg_path, sizeof(svg_path), "%s/accuracy.svg", d.dir);
	REQUIRE((f = fopen(spec_path, "w")));
	fputs(spec_text, f);
	fclose(f);

	snprintf(args, sizeof(args), "health --server %s", d.base);
	CHECK_INT(run_cli(args, out, 65536), 0);
	/* submit uploads the files the spec names, waits, writes the report */
	snprintf(args, sizeof(args), "submit --server %s --wait --summary -o '%s' '%s'", d.base, rep_path, spec_path);
	CHECK_MSG(run_cli(args, out, 65536) == 0, "%s", out);
	CHECK_MSG(strstr(out, "uploading the model") && strstr(out, "the whole model") && strstr(out, "epsilon"),
		  "%s", out);
	/* each upload's progress ends at its size; the job's counts passes */
	{
		char path[PATH_MAX], want[160];
		struct stat st;

		snprintf(path, sizeof(path), "%s/" FIX "mlp_op13.onnx", pc_test_root());
		REQUIRE(stat(path, &st) == 0);
		snprintf(want, sizeof(want), "[uploading the model] %lld/%lld kB (100%%)", (long long)st.st_size / 1000,
			 (long long)st.st_size / 1000);
		CHECK_MSG(strstr(out, want), "no '%s' in: %s", want, out);
		CHECK_MSG(strstr(out, "[uploading the dataset] ") && strstr(out, " passes (100%)"), "%s", out);
	}
	{
		const char *q = strstr(out, "job j-");
		if (q)
			snprintf(job, sizeof(job), "%.18s", q + 4);
	}
	rep = json_load_file(rep_path, 0, NULL);
	cli = cli_report(t, spec_text, d.dir);
	REQUIRE(rep && cli);
	strip_report(rep);
	strip_report(cli);
	CHECK_MSG(json_equal(rep, cli), "paracorr submit's report differs from paracorr run's");
	json_decref(rep);
	json_decref(cli);
	/* a second submit reuses the uploads (content-addressed: 200, same ids) */
	snprintf(args, sizeof(args), "submit --server %s '%s'", d.base, spec_path);
	CHECK_MSG(run_cli(args, out, 65536) == 0 && strstr(out, "\"status\""), "%s", out);
	/* status, fetch, a chart, and the report as tables */
	snprintf(args, sizeof(args), "status --server %s %s", d.base, job);
	CHECK_MSG(run_cli(args, out, 65536) == 0 && strstr(out, "\"succeeded\""), "status %s: %s", job, out);
	snprintf(args, sizeof(args), "fetch --server %s --chart accuracy -o '%s' %s", d.base, svg_path, job);
	CHECK_MSG(run_cli(args, out, 65536) == 0, "%s", out);
	{
		size_t len;
		char *svg = be_read_file(svg_path, &len);
		CHECK(svg && !strncmp(svg, "<svg ", 5));
		free(svg);
	}
	snprintf(args, sizeof(args), "report '%s'", rep_path);
	CHECK_MSG(run_cli(args, out, 65536) == 0 && strstr(out, "clean: accuracy") && strstr(out, "gradient acc") &&
			  strstr(out, "most fragile"),
		  "%s", out);
	/* errors: an unknown job, a spec the server refuses, no server */
	snprintf(args, sizeof(args), "status --server %s j-0000000000000000", d.base);
	CHECK(run_cli(args, out, 65536) == 1 && strstr(out, "404"));
	REQUIRE((f = fopen(spec_path, "w")));
	fprintf(f, "{\"model\": \"" FIX "mlp_op13.onnx\", \"dataset\": {\"inputs\": \"" FIX "sample64_u8.npy\", \"labels\": "
		   "\"" FIX "labels64_i64.npy\"}, \"corruption\": {\"epsilons\": [0.1, -1]}}");
	fclose(f);
	snprintf(args, sizeof(args), "submit --server %s '%s'", d.base, spec_path);
	CHECK_MSG(run_cli(args, out, 65536) == 1 && strstr(out, "/corruption/epsilons/1"), "%s", out);
	/* the problem's text: its detail, then a line per field it names */
	CHECK_MSG(strstr(out, "paracorr: error: /corruption/epsilons/1: HTTP 422: corruption.epsilons[1]: must be > 0\n"
			      "  /corruption/epsilons/1: must be > 0\n"),
		  "%s", out);
	CHECK_INT(be_daemon_stop(&d, SIGTERM, NULL), 0);
	snprintf(args, sizeof(args), "health --server %s", d.base);
	CHECK_INT(run_cli(args, out, 65536), 1);
	free(out);
	be_rmtree(d.dir);
}

/* --- harden jobs: kill -9 mid-training resumes from the checkpoint -------- */

#define HARDEN_SPEC                                                                                              \
	"\"kind\": \"harden\", \"limit\": 500, \"seed\": 4, \"corruption\": {\"norms\": [\"l2\"], \"epsilons\": "  \
	"[0.5, 1], \"random_trials\": 1, \"groups\": [\"model\"]}, \"training\": {\"dataset\": \"%s\", \"limit\": "  \
	"4000, \"epochs\": 4, \"batch_size\": 50, \"schedule\": \"cosine\", \"act\": {\"epsilon\": 0.3}}"

/* The CNN and Fashion-MNIST's test set uploaded; 1 when both are, 0 (and
 * the test skipped or failed) when not. */
static int harden_cnn_setup(struct pc_test *t, struct be_daemon *d, char model[65], char ds[65])
{
	size_t len;
	char *onnx;
	struct be_resp r;
	json_t *j;

	if (access(T10K_X, R_OK) != 0 || access(T10K_Y, R_OK) != 0) {
		pc_test_skip(t, "no Fashion-MNIST under /usr/share/datasets");
		return 0;
	}
	if (!setup(t, d))
		return 0;
	/* the CNN: slow enough per epoch to be caught between two */
	onnx = read_fixture(FIX "cnn_op17.onnx", &len);
	if (!onnx || request(d, "POST", "/v1/models", "application/octet-stream", onnx, len, NULL, 0, NULL, &r)) {
		pc_test_fail(t, __FILE__, __LINE__, "the CNN was not uploaded");
		free(onnx);
		goto fail;
	}
	free(onnx);
	j = be_resp_json(&r);
	CHECK_INT(r.status, 201);
	snprintf(model, 65, "%s", j ? json_string_value(json_object_get(j, "id")) ?: "" : "");
	json_decref(j);
	be_resp_free(&r);
	CHECK_INT(upload_dataset(d, T10K_X, T10K_Y, ds), 201);
	if (model[0] && ds[0])
		return 1;
fail:
	return setup_undo(d);
}

/* An unknown training dataset is refused at submission, by pointer. */
TEST(http_harden_refuse_unknown_training_dataset)
{
	struct be_daemon d;
	char model[65] = "", ds[65] = "", spec[2048], fmt[1024];
	struct be_resp r;

	if (!harden_cnn_setup(t, &d, model, ds))
		return;
	snprintf(fmt, sizeof(fmt), "{\"model\": \"%%s\", \"dataset\": \"%%s\", %s}", HARDEN_SPEC);
	snprintf(spec, sizeof(spec), fmt, model, ds, "00000000000000000000000000000000000000000000000000000000000000ff");
	REQUIRE(submit(&d, spec, NULL, NULL, 0, &r) == 422);
	CHECK(is_problem(&r, 422, "/problems/invalid") && strstr(r.body, "\"/training/dataset\""));
	be_resp_free(&r);
	flow_teardown(t, &d);
}

/* A running job's progress as openapi.yaml's Job says: the stage's phase,
 * done and total, the whole job's fraction (never falling within one run:
 * *last holds the previous one, reset per run) and seconds. */
static void check_job_progress(struct pc_test *t, const json_t *j, double *last)
{
	const json_t *p = json_object_get(j, "progress"), *r;
	double f;

	if (!json_is_object(p))
		return;
	f = json_number_value(json_object_get(p, "fraction"));
	CHECK_MSG(f >= 0 && f <= 1 && f >= *last, "fraction %g after %g (%s)", f, *last,
		  json_string_value(json_object_get(p, "phase")));
	*last = f;
	CHECK(json_is_integer(json_object_get(p, "done")) && json_is_integer(json_object_get(p, "total")));
	CHECK(json_is_number(json_object_get(p, "elapsed_seconds")) &&
	      json_number_value(json_object_get(p, "elapsed_seconds")) >= 0);
	r = json_object_get(p, "remaining_seconds");
	CHECK_MSG(json_is_null(r) || (json_is_number(r) && json_number_value(r) >= 0), "remaining_seconds: %s",
		  json_is_number(r) ? "negative" : "not a number or null");
}

/* kill -9 between two epochs: after the restart training resumes from its
 * checkpoint (epoch 2 or later, never 1), the job succeeds at its second
 * attempt, and its report is an uninterrupted run's. */
TEST(http_harden_resumes_after_kill)
{
	struct be_daemon d;
	char model[65] = "", ds[65] = "", job[64] = "", job2[64] = "", spec[2048], fmt[1024], path[256];
	json_t *j, *rep = NULL, *rep2 = NULL;
	struct be_resp r;
	int saw_first_epoch = 0, resumed_at = 0, fresh = 0;
	double t0, last = 0;

	if (!harden_cnn_setup(t, &d, model, ds))
		return;
	snprintf(fmt, sizeof(fmt), "{\"model\": \"%%s\", \"dataset\": \"%%s\", %s}", HARDEN_SPEC);
	snprintf(spec, sizeof(spec), fmt, model, ds, ds);
	REQUIRE(submit(&d, spec, NULL, job, sizeof(job), NULL) == 202);

	/* wait for epoch 2: epoch 1 is checkpointed; then kill -9 */
	snprintf(path, sizeof(path), "/v1/jobs/%s", job);
	for (t0 = pc_sys_seconds(); pc_sys_seconds() - t0 < 120;) {
		const char *ph;

		REQUIRE(get(&d, path, &r) == 0);
		j = be_resp_json(&r);
		be_resp_free(&r);
		check_job_progress(t, j, &last);
		ph = json_string_value(json_object_get(json_object_get(j, "progress"), "phase"));
		if (ph && strstr(ph, "training epoch 1 "))
			saw_first_epoch = 1;
		if (ph && (strstr(ph, "training epoch 2 ") || strstr(ph, "training epoch 3 "))) {
			json_decref(j);
			break;
		}
		REQUIRE_MSG(!j || strcmp(json_string_value(json_object_get(j, "status")), "succeeded"),
			    "the job finished before it could be interrupted");
		json_decref(j);
		be_sleep_ms(20);
	}
	CHECK_MSG(saw_first_epoch, "never saw the first epoch run");
	CHECK_INT(be_daemon_stop(&d, SIGKILL, NULL), 128 + SIGKILL);
	REQUIRE(daemon_start(&d, NULL));
	/* the second attempt starts over with its first study; until it
	 * reports, the row may still show the killed attempt's progress */
	last = 0;
	for (t0 = pc_sys_seconds(); pc_sys_seconds() - t0 < 180;) {
		const char *ph, *st;

		REQUIRE(get(&d, path, &r) == 0);
		j = be_resp_json(&r);
		be_resp_free(&r);
		ph = json_string_value(json_object_get(json_object_get(j, "progress"), "phase"));
		fresh |= ph && !strncmp(ph, "before: ", 8);
		if (fresh && json_is_object(json_object_get(j, "progress")))
			check_job_progress(t, j, &last);
		ph = json_string_value(json_object_get(json_object_get(j, "progress"), "phase"));
		st = json_string_value(json_object_get(j, "status"));
		if (ph && !resumed_at && !strncmp(ph, "training epoch ", 15))
			resumed_at = atoi(ph + 15);
		if (st && !strcmp(st, "succeeded")) {
			CHECK_INT(json_integer_value(json_object_get(j, "attempts")), 2);
			CHECK(json_is_string(json_object_get(json_object_get(j, "links"), "model")) &&
			      json_is_string(json_object_get(json_object_get(j, "links"), "hardened_model")));
			json_decref(j);
			break;
		}
		REQUIRE_MSG(!st || (strcmp(st, "failed") && strcmp(st, "cancelled")), "the job ended %s", st);
		json_decref(j);
		be_sleep_ms(20);
	}
	CHECK_MSG(resumed_at >= 2, "training restarted at epoch %d after kill -9, not from its checkpoint", resumed_at);

	/* the same report as an uninterrupted run of the same spec */
	snprintf(path, sizeof(path), "/v1/jobs/%s/report", job);
	REQUIRE(get(&d, path, &r) == 0);
	rep = be_resp_json(&r);
	be_resp_free(&r);
	REQUIRE(submit(&d, spec, NULL, job2, sizeof(job2), NULL) == 202);
	j = wait_job(&d, job2, "succeeded", 180);
	CHECK(j && !strcmp(json_string_value(json_object_get(j, "status")), "succeeded"));
	json_decref(j);
	snprintf(path, sizeof(path), "/v1/jobs/%s/report", job2);
	REQUIRE(get(&d, path, &r) == 0);
	rep2 = be_resp_json(&r);
	be_resp_free(&r);
	REQUIRE(rep && rep2);
	json_object_del(rep, "timing");
	json_object_del(rep2, "timing");
	{
		size_t i;
		json_t *e;
		/* the per-epoch seconds measure the runs */
		json_array_foreach(json_object_get(json_object_get(rep, "training"), "epochs"), i, e)
		json_object_del(e, "seconds");
		json_array_foreach(json_object_get(json_object_get(rep2, "training"), "epochs"), i, e)
		json_object_del(e, "seconds");
		json_object_del(json_object_get(rep, "before"), "timing");
		json_object_del(json_object_get(rep, "after"), "timing");
		json_object_del(json_object_get(rep2, "before"), "timing");
		json_object_del(json_object_get(rep2, "after"), "timing");
	}
	CHECK_INT(json_array_size(json_object_get(json_object_get(rep, "training"), "epochs")), 4);
	CHECK_MSG(json_equal(rep, rep2), "the resumed job's report differs from an uninterrupted run's");
	json_decref(rep);
	json_decref(rep2);
	flow_teardown(t, &d);
}

/* A harden job of a second (the fixture MLP on 64 samples), succeeded;
 * its id into job and its hardened_model link into hv. 1 when so. */
static int harden_small_job(struct pc_test *t, struct be_daemon *d, char job[64], char hv[256])
{
	char model[65] = "", ds[65] = "", spec[1024];
	const char *link;
	json_t *j;

	if (!flow_setup(t, d, model, ds))
		return 0;
	harden_small_spec(spec, sizeof(spec), model, ds);
	if (submit(d, spec, NULL, job, 64, NULL) != 202) {
		pc_test_fail(t, __FILE__, __LINE__, "the harden job was not accepted");
		goto fail;
	}
	j = wait_job(d, job, "finished", 120);
	link = json_string_value(json_object_get(json_object_get(j, "links"), "hardened_model"));
	if (!j || strcmp(json_string_value(json_object_get(j, "status")) ?: "", "succeeded") || !link) {
		pc_test_fail(t, __FILE__, __LINE__, "the harden job did not succeed with a hardened model");
		json_decref(j);
		goto fail;
	}
	snprintf(hv, 256, "%s", link);
	json_decref(j);
	return 1;
fail:
	return setup_undo(d);
}

/* The hardened model: downloadable as the job's artifact, which is the
 * registered model; no other artifact; the charts show before and after. */
TEST(http_harden_artifact_is_the_registered_model)
{
	struct be_daemon d;
	char job[64] = "", hv[256] = "", path[256], id[65];
	struct be_resp r;

	if (!harden_small_job(t, &d, job, hv))
		return;
	snprintf(path, sizeof(path), "/v1/jobs/%s/artifacts/model.onnx", job);
	REQUIRE(get(&d, path, &r) == 0);
	CHECK_INT(r.status, 200);
	pcd_sha256_hex_of(r.body, r.len, id);
	CHECK_MSG(strstr(hv, id) != NULL, "the artifact (sha256 %s) is not the registered model %s", id, hv);
	be_resp_free(&r);
	EXPECT(&d, "GET", hv, 200);
	snprintf(path, sizeof(path), "/v1/jobs/%s/artifacts/weights.bin", job);
	EXPECT_PROBLEM(&d, "GET", path, 404, "/problems/not_found");
	snprintf(path, sizeof(path), "/v1/jobs/%s/charts/harden.svg", job);
	REQUIRE(get(&d, path, &r) == 0);
	CHECK(r.status == 200 && r.body && strstr(r.body, "before: l2 gradient") && strstr(r.body, "after: l2 gradient"));
	be_resp_free(&r);
	flow_teardown(t, &d);
}

/* A thread the daemon did not start (OpenBLAS's pool, started when the
 * library loads) does not block SIGTERM; the kernel gives it a signal
 * sent while main still blocks it (the daemon's start). Sent to that
 * thread directly, SIGTERM must still drain and exit 0, not kill. */
TEST(http_sigterm_on_a_foreign_thread_drains)
{
	struct be_daemon d;
	char path[128], line[256];
	DIR *dir;
	struct dirent *e;
	pid_t foreign = 0;

	if (!setup(t, &d))
		return;
	snprintf(path, sizeof(path), "/proc/%d/task", (int)d.pid);
	REQUIRE((dir = opendir(path)));
	while (!foreign && (e = readdir(dir))) {
		pid_t tid = (pid_t)atoi(e->d_name);
		unsigned long long blk = 0;
		FILE *f;

		if (tid <= 0 || tid == d.pid)
			continue;
		snprintf(path, sizeof(path), "/proc/%d/task/%d/status", (int)d.pid, (int)tid);
		if (!(f = fopen(path, "r")))
			continue;
		while (fgets(line, sizeof(line), f))
			if (sscanf(line, "SigBlk: %llx", &blk) == 1)
				break;
		fclose(f);
		if (!(blk & (1ULL << (SIGTERM - 1))))
			foreign = tid;
	}
	closedir(dir);
	if (!foreign) {
		/* a BLAS without a pool: every thread is the daemon's, all block it */
		pc_test_skip(t, "no thread leaves SIGTERM unblocked in this build");
		CHECK_INT(be_daemon_stop(&d, SIGTERM, NULL), 0);
		be_rmtree(d.dir);
		return;
	}
	CHECK_INT((int)syscall(SYS_tgkill, d.pid, foreign, SIGTERM), 0);
	{
		int st = -1, i;

		for (i = 0; i < 1000 && waitpid(d.pid, &st, WNOHANG) != d.pid; i++)
			be_sleep_ms(10);
		if (i == 1000) {
			pc_test_fail(t, __FILE__, __LINE__, "the daemon did not stop within 10 s of SIGTERM");
			be_daemon_stop(&d, SIGKILL, NULL);
		} else {
			CHECK_MSG(WIFEXITED(st) && WEXITSTATUS(st) == 0, "the daemon %s %d, not a drain and exit 0",
				  WIFSIGNALED(st) ? "died of signal" : "exited", WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st));
			d.pid = 0;
		}
	}
	be_rmtree(d.dir);
}

/* int8 needs a weight to quantize: a spec asking for it on a model whose
 * only weight is computed (Gemm reads Mul(W, k), so no parameter is a
 * weight input) is refused at submission naming faults.formats[i], from
 * the model's stored description; the same spec on the MLP is accepted,
 * and each tensor of a model's description says whether it is quantizable. */
TEST(http_faults_int8_needs_quantizable_weights)
{
	static float w[10 * 784], k[1] = {1.0f};
	static const int64_t in_dims[4] = {-1, 1, 28, 28}, w_dims[2] = {10, 784}, k_dims[1] = {1};
	const char *fl_in[] = {"x", NULL}, *fl_out[] = {"f", NULL}, *mul_in[] = {"W", "k", NULL}, *mul_out[] = {"Wk", NULL};
	const char *gemm_in[] = {"f", "Wk", NULL}, *gemm_out[] = {"y", NULL};
	struct be_daemon d;
	char mlp[65] = "", ds[65] = "", other[65] = "", spec[1024], job[64], *p;
	struct ob_model b;
	struct be_resp r;
	unsigned char *bytes;
	size_t len;
	json_t *j, *info = NULL;

	for (int i = 0; i < 10 * 784; i++)
		w[i] = (float)((i * 37 % 101) - 50) * 1e-3f;
	ob_init(&b, 13, "x", 4, in_dims, "y");
	ob_float(&b, "W", 2, w_dims, w);
	ob_float(&b, "k", 1, k_dims, k);
	ob_node(&b, "Flatten", "flat", fl_in, fl_out);
	ob_node(&b, "Mul", "scale", mul_in, mul_out);
	ob_attr_int(ob_node(&b, "Gemm", "fc", gemm_in, gemm_out), &b, "transB", 1);
	REQUIRE((bytes = ob_pack(&b, &len)));
	if (!flow_setup(t, &d, mlp, ds)) {
		free(bytes);
		return;
	}
	REQUIRE(request(&d, "POST", "/v1/models", "application/octet-stream", bytes, len, NULL, 0, NULL, &r) == 0);
	free(bytes);
	CHECK_INT(r.status, 201);
	j = be_resp_json(&r);
	be_resp_free(&r);
	snprintf(other, sizeof(other), "%s", json_string_value(json_object_get(j, "id")) ?: "");
	CHECK(json_is_false(json_object_get(json_array_get(json_object_get(j, "tensors"), 0), "quantizable")));
	json_decref(j);
	snprintf(spec, sizeof(spec), "/v1/models/%s", mlp);
	REQUIRE(get(&d, spec, &r) == 0);
	info = be_resp_json(&r);
	be_resp_free(&r);
	/* fc1.weight is a Gemm weight, fc1.bias is not */
	CHECK(info && json_is_true(json_object_get(json_array_get(json_object_get(info, "tensors"), 0), "quantizable")) &&
	      json_is_false(json_object_get(json_array_get(json_object_get(info, "tensors"), 1), "quantizable")));
	json_decref(info);

	snprintf(spec, sizeof(spec),
		 "{\"model\": \"%s\", \"dataset\": \"%s\", \"corruption\": [], \"faults\": {\"formats\": "
		 "[\"float16\", \"int8\"]}}",
		 other, ds);
	REQUIRE(request(&d, "POST", "/v1/jobs", "application/json", spec, strlen(spec), NULL, 0, NULL, &r) == 0);
	j = be_resp_json(&r);
	CHECK_MSG(is_problem(&r, 422, "/problems/invalid"), "%ld %s", r.status, r.body ? r.body : "");
	p = json_dumps(json_object_get(j, "errors"), 0);
	CHECK_MSG(p && strstr(p, "/faults/formats/1") && strstr(p, "int8-quantizable"), "errors: %s", p ? p : "");
	free(p);
	json_decref(j);
	be_resp_free(&r);
	/* float formats need no quantizable weight */
	snprintf(spec, sizeof(spec),
		 "{\"model\": \"%s\", \"dataset\": \"%s\", \"corruption\": [], \"faults\": {\"formats\": "
		 "[\"float16\"]}}",
		 other, ds);
	CHECK_INT(submit(&d, spec, NULL, job, sizeof(job), NULL), 202);
	json_decref(wait_job(&d, job, "finished", 60));
	snprintf(spec, sizeof(spec),
		 "{\"model\": \"%s\", \"dataset\": \"%s\", \"corruption\": [], \"faults\": {\"formats\": "
		 "[\"int8\"]}}",
		 mlp, ds);
	CHECK_INT(submit(&d, spec, NULL, job, sizeof(job), NULL), 202);
	json_decref(wait_job(&d, job, "finished", 60));
	flow_teardown(t, &d);
}

/* GET /v1/compare: two analyze jobs side by side, each number the one of
 * its own report; a harden job alone is its before and after; bad lists
 * and unknown or unfinished jobs are refused naming the entry. */
TEST(http_compare_jobs)
{
	struct be_daemon d;
	char job[64] = "", hv[256] = "", a[64] = "", b[64] = "", model[65] = "", ds[65] = "", spec[1024], path[512];
	json_t *cmp, *ra, *rb, *row;
	struct be_resp r;

	if (!harden_small_job(t, &d, job, hv))
		return;
	/* the harden job's own model and dataset ids are the flow fixture's */
	REQUIRE(upload_model(&d, FIX "mlp_op13.onnx", model, NULL) == 200);
	REQUIRE(upload_dataset(&d, FIX "sample64_u8.npy", FIX "labels64_i64.npy", ds) == 200);
	small_spec(spec, sizeof(spec), model, ds, 1);
	REQUIRE(submit(&d, spec, NULL, a, sizeof(a), NULL) == 202);
	small_spec(spec, sizeof(spec), model, ds, 2);
	REQUIRE(submit(&d, spec, NULL, b, sizeof(b), NULL) == 202);
	json_decref(wait_job(&d, a, "succeeded", 60));
	json_decref(wait_job(&d, b, "succeeded", 60));

	snprintf(path, sizeof(path), "/v1/compare?jobs=%s,%s", a, b);
	REQUIRE(get(&d, path, &r) == 0);
	CHECK_INT(r.status, 200);
	cmp = be_resp_json(&r);
	be_resp_free(&r);
	snprintf(path, sizeof(path), "/v1/jobs/%s/report", a);
	REQUIRE(get(&d, path, &r) == 0);
	ra = be_resp_json(&r);
	be_resp_free(&r);
	snprintf(path, sizeof(path), "/v1/jobs/%s/report", b);
	REQUIRE(get(&d, path, &r) == 0);
	rb = be_resp_json(&r);
	be_resp_free(&r);
	REQUIRE(cmp && ra && rb);
	CHECK(!strcmp(json_string_value(json_object_get(json_array_get(json_object_get(cmp, "studies"), 0), "label")), a));
	row = json_array_get(json_object_get(cmp, "differences"), 0);
	CHECK_MSG(json_array_size(json_object_get(cmp, "differences")) == 1 &&
		      !strcmp(json_string_value(json_object_get(row, "pointer")), "/seed"),
		  "the specs differ in their seed only");
	row = json_array_get(json_object_get(cmp, "results"), 0);
	/* the same spec but its seed: every setting is in both */
	CHECK_INT(json_array_size(json_object_get(cmp, "results")), json_array_size(json_object_get(ra, "results")));
	CHECK(json_equal(json_array_get(json_object_get(row, "gradient_accuracy"), 0),
			 json_object_get(json_object_get(json_array_get(json_object_get(ra, "results"), 0), "gradient"), "accuracy")));
	CHECK(json_equal(json_array_get(json_object_get(row, "random_accuracy_mean"), 1),
			 json_object_get(json_object_get(json_array_get(json_object_get(rb, "results"), 0), "random"), "accuracy_mean")));
	json_decref(cmp);
	json_decref(ra);
	json_decref(rb);

	snprintf(path, sizeof(path), "/v1/compare?jobs=%s", job);
	REQUIRE(get(&d, path, &r) == 0);
	CHECK_INT(r.status, 200);
	cmp = be_resp_json(&r);
	be_resp_free(&r);
	CHECK(cmp && !strcmp(json_string_value(json_object_get(json_array_get(json_object_get(cmp, "studies"), 1), "role")) ?: "", "after"));
	json_decref(cmp);

	EXPECT_PROBLEM(&d, "GET", "/v1/compare", 400, "/problems/bad_request");
	snprintf(path, sizeof(path), "/v1/compare?jobs=%s,nonsense", a);
	EXPECT_PROBLEM(&d, "GET", path, 400, "/problems/bad_request");
	snprintf(path, sizeof(path), "/v1/compare?jobs=%s,j-00000000000000ff", a);
	REQUIRE(get(&d, path, &r) == 0);
	row = be_resp_json(&r);
	CHECK_MSG(r.status == 404 && row && strstr(json_string_value(json_object_get(row, "detail")) ?: "", "jobs[1]"),
		  "an unknown job: %ld %s", r.status, r.body ? r.body : "");
	json_decref(row);
	be_resp_free(&r);
	/* one analyze job alone is not a comparison */
	snprintf(path, sizeof(path), "/v1/compare?jobs=%s", a);
	EXPECT_PROBLEM(&d, "GET", path, 422, "/problems/invalid");
	flow_teardown(t, &d);
}

/* The hardened model is the job's artifact in the store: a restart still
 * links it; deleting the job removes its artifacts, not the model. */
TEST(http_harden_model_outlives_restart_and_job)
{
	struct be_daemon d;
	char job[64] = "", hv[256] = "", path[256];
	struct be_resp r;
	json_t *j;

	if (!harden_small_job(t, &d, job, hv))
		return;
	CHECK_INT(be_daemon_stop(&d, SIGTERM, NULL), 0);
	REQUIRE(daemon_start(&d, NULL));
	snprintf(path, sizeof(path), "/v1/jobs/%s", job);
	REQUIRE(get(&d, path, &r) == 0);
	j = be_resp_json(&r);
	CHECK_MSG(j && !strcmp(json_string_value(json_object_get(json_object_get(j, "links"), "hardened_model")) ?: "", hv),
		  "after a restart: %s", r.body ? r.body : "");
	json_decref(j);
	be_resp_free(&r);
	EXPECT(&d, "GET", hv, 200);
	EXPECT(&d, "DELETE", path, 204);
	snprintf(path, sizeof(path), "/v1/jobs/%s/artifacts/model.onnx", job);
	EXPECT_PROBLEM(&d, "GET", path, 404, "/problems/not_found");
	EXPECT(&d, "GET", hv, 200);
	flow_teardown(t, &d);
}

/* A queued harden job holds its training dataset as it holds its model and
 * evaluation dataset: deleting it is 409 naming the field; once the job is
 * cancelled the delete goes through. */
TEST(http_harden_holds_its_training_dataset)
{
	struct be_daemon d;
	char model[65] = "", ds[65] = "", train[65] = "", slow[64] = "", queued[64] = "", spec[2048], url[256],
	     ylab[PATH_MAX + 16];
	char *labels;
	size_t len;
	struct be_resp r;
	json_t *j;

	if (!setup(t, &d))
		return;
	CHECK_INT(upload_model(&d, FIX "mlp_op13.onnx", model, NULL), 201);
	CHECK_INT(upload_dataset(&d, FIX "sample64_u8.npy", FIX "labels64_i64.npy", ds), 201);
	/* other bytes, so another dataset: the last label changed */
	REQUIRE((labels = read_fixture(FIX "labels64_i64.npy", &len)) && len > 8);
	labels[len - 8] = labels[len - 8] == 1 ? 2 : 1;
	snprintf(ylab, sizeof(ylab), "%s/train_labels.npy", d.dir);
	REQUIRE(write_file(ylab, labels, len));
	free(labels);
	CHECK_INT(upload_dataset(&d, FIX "sample64_u8.npy", ylab, train), 201);
	REQUIRE(model[0] && ds[0] && train[0] && strcmp(ds, train));
	/* the one worker busy with a slow job, the harden job queued behind it */
	snprintf(spec, sizeof(spec),
		 "{\"model\": \"%s\", \"dataset\": \"%s\", \"seed\": 1, \"corruption\": {\"norms\": [\"l2\", "
		 "\"linf\"], \"epsilons\": [0.01, 0.1, 1, 2], \"random_trials\": 400, \"steps\": 20, \"groups\": "
		 "[\"model\", \"tensor\", \"layer\"]}}",
		 model, ds);
	REQUIRE(submit(&d, spec, NULL, slow, sizeof(slow), NULL) == 202);
	j = wait_job(&d, slow, "running", 30);
	CHECK(j && !strcmp(json_string_value(json_object_get(j, "status")), "running"));
	json_decref(j);
	snprintf(spec, sizeof(spec),
		 "{\"kind\": \"harden\", \"model\": \"%s\", \"dataset\": \"%s\", \"training\": {\"dataset\": "
		 "\"%s\", \"epochs\": 1}}",
		 model, ds, train);
	REQUIRE(submit(&d, spec, NULL, queued, sizeof(queued), NULL) == 202);
	snprintf(url, sizeof(url), "/v1/datasets/%s", train);
	REQUIRE(request(&d, "DELETE", url, NULL, NULL, 0, NULL, 0, NULL, &r) == 0);
	CHECK_MSG(is_problem(&r, 409, "/problems/conflict") && strstr(r.body, queued) &&
			  strstr(r.body, "training.dataset"),
		  "delete of a queued harden job's training dataset: %ld %s", r.status, r.body ? r.body : "");
	be_resp_free(&r);
	EXPECT(&d, "GET", url, 200);
	/* cancelled (it was queued: 200), the job holds nothing */
	snprintf(url, sizeof(url), "/v1/jobs/%s/cancel", queued);
	REQUIRE(request(&d, "POST", url, NULL, NULL, 0, NULL, 0, NULL, &r) == 0);
	CHECK_MSG(cancel_answer(&r, "queued"), "cancel: %ld %s", r.status, r.body ? r.body : "");
	be_resp_free(&r);
	snprintf(url, sizeof(url), "/v1/datasets/%s", train);
	EXPECT(&d, "DELETE", url, 204);
	EXPECT_PROBLEM(&d, "GET", url, 404, "/problems/not_found");
	snprintf(url, sizeof(url), "/v1/jobs/%s/cancel", slow);
	REQUIRE(request(&d, "POST", url, NULL, NULL, 0, NULL, 0, NULL, &r) == 0);
	be_resp_free(&r);
	j = wait_job(&d, slow, "cancelled", 30);
	CHECK(j && !strcmp(json_string_value(json_object_get(j, "status")), "cancelled"));
	json_decref(j);
	CHECK_INT(be_daemon_stop(&d, SIGTERM, NULL), 0);
	be_rmtree(d.dir);
}

/* The first errors[] pointer of a problem answer, "" when none; frees r. */
static void problem_pointer(struct be_resp *r, char *out, size_t n)
{
	json_t *j = be_resp_json(r);

	snprintf(out, n, "%s",
		 json_string_value(json_object_get(json_array_get(json_object_get(j, "errors"), 0), "pointer")) ?: "");
	json_decref(j);
	be_resp_free(r);
}

/* The items of a listing at path, new reference (NULL when it failed). */
static json_t *list_items(const struct be_daemon *d, const char *path)
{
	struct be_resp r;
	json_t *j, *items;

	if (get(d, path, &r) || r.status != 200) {
		if (!r.status)
			return NULL;
		be_resp_free(&r);
		return NULL;
	}
	j = be_resp_json(&r);
	be_resp_free(&r);
	items = json_incref(json_object_get(j, "items"));
	json_decref(j);
	return items;
}

struct counted_zeros {
	size_t left, sent;
};

static size_t read_counted_zeros(char *buf, size_t size, size_t n, void *arg)
{
	struct counted_zeros *c = arg;
	size_t k = size * n < c->left ? size * n : c->left;

	memset(buf, 0, k);
	c->left -= k;
	c->sent += k;
	return k;
}

/* A bad ?name= on an upload is refused before its body is read: the
 * client, waiting for 100-continue, sends none of its 512 MiB. */
TEST(http_upload_bad_name_refused_before_the_body)
{
	static const char *const paths[] = {"/v1/models?name=a%01b", "/v1/datasets?name=%7F"};
	static const char *const types[] = {"application/octet-stream", "multipart/form-data; boundary=xyz"};
	const char *headers[] = {"Expect: 100-continue", NULL};
	struct be_daemon d;
	struct be_resp r;
	char ptr[128];

	if (!setup(t, &d))
		return;
	for (int k = 0; k < 2; k++) {
		struct counted_zeros src = {(size_t)512 << 20, 0};
		struct be_req q = {.method = "POST", .url = d.base, .path = paths[k], .ctype = types[k],
				   .headers = headers, .token = d.token, .read = read_counted_zeros, .read_arg = &src};

		REQUIRE(be_request(&q, &r) == 0);
		seen_add("POST", paths[k]);
		CHECK_MSG(is_problem(&r, 400, "/problems/bad_request"), "%s: %ld %s", paths[k], r.status, r.body);
		problem_pointer(&r, ptr, sizeof(ptr));
		CHECK_MSG(strstr(ptr, "name") != NULL, "%s: pointer %s", paths[k], ptr);
		CHECK_MSG(src.sent < ((size_t)1 << 20), "%s: %zu bytes of the body were sent", paths[k], src.sent);
		be_resp_free(&r);
	}
	CHECK_INT(be_daemon_stop(&d, SIGTERM, NULL), 0);
	be_rmtree(d.dir);
}

/* Names and labels round-trip, filter, and are refused when bad; a
 * finished job's headline is its report's numbers. */
/* A raw model upload named by its Content-Disposition file name: the
 * quoted and the bare form; ?name= wins over it; a file name that is no
 * valid name is left out; and, the content known, a file name does not
 * rename a named model (?name= does). */
TEST(http_model_named_by_content_disposition)
{
	static const struct {
		const char *header, *query, *want; /* want NULL: the name stays null */
	} cases[] = {
		{"Content-Disposition: attachment; filename=\"lenet v2.onnx\"", "", "lenet v2.onnx"},
		{"Content-Disposition: attachment; filename=lenet.onnx; size=3", "", "lenet.onnx"},
		{"Content-Disposition: attachment; filename=\"a.onnx\"", "?name=chosen", "chosen"},
		{"Content-Disposition: attachment; filename*=UTF-8''x.onnx", "", NULL},
		{"Content-Disposition: attachment; filename=\"\"", "", NULL},
		{"Content-Disposition: attachment; filename=\"unterminated.onnx", "", NULL},
	};
	const char *models[] = {FIX "mlp_op13.onnx", FIX "mlp_tanh_op13.onnx", FIX "cnn_op17.onnx", FIX "mlp_op13.onnx",
				FIX "mlp_tanh_op13.onnx", FIX "cnn_op17.onnx"};
	struct be_daemon d;
	struct be_resp r;
	size_t len;
	char path[128];
	json_t *j;

	if (!setup(t, &d))
		return;
	/* each case on content the daemon has not seen: three models, twice */
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *data = read_fixture(models[i], &len);
		REQUIRE(data);
		if (i == 3) {
			/* a fresh daemon for the second round, so the content is new again */
			CHECK_INT(be_daemon_stop(&d, SIGTERM, NULL), 0);
			be_rmtree(d.dir);
			if (!setup(t, &d)) {
				free(data);
				return;
			}
		}
		snprintf(path, sizeof(path), "/v1/models%s", cases[i].query);
		REQUIRE(request(&d, "POST", path, "application/octet-stream", data, len, NULL, 0, cases[i].header, &r) == 0);
		free(data);
		CHECK_MSG(r.status == 201, "case %zu: %ld %s", i, r.status, r.body ? r.body : "");
		j = be_resp_json(&r);
		if (cases[i].want)
			CHECK_MSG(j && json_is_string(json_object_get(j, "name")) &&
					  !strcmp(json_string_value(json_object_get(j, "name")), cases[i].want),
				  "case %zu: %s", i, r.body ? r.body : "");
		else
			CHECK_MSG(j && json_is_null(json_object_get(j, "name")), "case %zu: %s", i, r.body ? r.body : "");
		json_decref(j);
		be_resp_free(&r);
	}
	/* known content: cnn_op17 has no name yet (case 5); a file name gives
	 * it one, another file name keeps it, ?name= renames it */
	{
		static const struct {
			const char *header, *query, *want;
		} again[] = {
			{"Content-Disposition: attachment; filename=\"first.onnx\"", "", "first.onnx"},
			{"Content-Disposition: attachment; filename=\"second.onnx\"", "", "first.onnx"},
			{"Content-Disposition: attachment; filename=\"third.onnx\"", "?name=renamed", "renamed"},
		};
		for (size_t i = 0; i < sizeof(again) / sizeof(again[0]); i++) {
			char *data = read_fixture(FIX "cnn_op17.onnx", &len);
			REQUIRE(data);
			snprintf(path, sizeof(path), "/v1/models%s", again[i].query);
			REQUIRE(request(&d, "POST", path, "application/octet-stream", data, len, NULL, 0, again[i].header,
					&r) == 0);
			free(data);
			CHECK_MSG(r.status == 200, "again %zu: %ld", i, r.status);
			j = be_resp_json(&r);
			CHECK_MSG(j && json_is_string(json_object_get(j, "name")) &&
					  !strcmp(json_string_value(json_object_get(j, "name")), again[i].want),
				  "again %zu: %s", i, r.body ? r.body : "");
			json_decref(j);
			be_resp_free(&r);
		}
	}
	flow_teardown(t, &d);
}

TEST(http_names_labels_headline)
{
	struct be_daemon d;
	char model[65] = "", ds[65] = "", job[64] = "", job2[64] = "", spec[2048], path[512], ptr[128];
	size_t len;
	char *data = read_fixture(FIX "mlp_op13.onnx", &len);
	struct be_resp r;
	json_t *j, *items, *rep, *h, *row, *best = NULL;
	size_t i;

	REQUIRE(data);
	if (!flow_setup(t, &d, model, ds)) {
		free(data);
		return;
	}
	/* the same bytes again, named: 200, and the record keeps the name */
	REQUIRE(request(&d, "POST", "/v1/models?name=mlp%20v1%20%C3%A9", "application/octet-stream", data, len, NULL, 0,
			NULL, &r) == 0);
	CHECK_INT((int)r.status, 200);
	j = be_resp_json(&r);
	be_resp_free(&r);
	CHECK_MSG(!strcmp(json_string_value(json_object_get(j, "name")) ?: "", "mlp v1 \xc3\xa9"), "upload name");
	json_decref(j);
	/* a control character in a name: 400 naming the parameter */
	REQUIRE(request(&d, "POST", "/v1/models?name=a%01b", "application/octet-stream", data, len, NULL, 0, NULL, &r) ==
		0);
	CHECK_INT((int)r.status, 400);
	problem_pointer(&r, ptr, sizeof(ptr));
	CHECK_MSG(strstr(ptr, "name") != NULL, "pointer %s", ptr);
	free(data);
	snprintf(path, sizeof(path), "/v1/models/%s", model);
	REQUIRE(get(&d, path, &r) == 0);
	j = be_resp_json(&r);
	be_resp_free(&r);
	CHECK_MSG(!strcmp(json_string_value(json_object_get(j, "name")) ?: "", "mlp v1 \xc3\xa9"), "model get name");
	json_decref(j);
	items = list_items(&d, "/v1/models?name=mlp%20v1%20%C3%A9");
	CHECK_MSG(json_array_size(items) == 1 &&
			  !strcmp(json_string_value(json_object_get(json_array_get(items, 0), "id")) ?: "", model),
		  "model name filter");
	json_decref(items);
	items = list_items(&d, "/v1/models?name=other");
	CHECK_MSG(items && json_array_size(items) == 0, "a name no model has");
	json_decref(items);
	/* a dataset without ?name= is named by the form: its name part, else
	 * the file name of its inputs part (curl sends the file's) */
	items = list_items(&d, "/v1/datasets");
	CHECK_MSG(!strcmp(json_string_value(json_object_get(json_array_get(items, 0), "name")) ?: "", "sample64_u8.npy"),
		  "a dataset named after its inputs file");
	json_decref(items);
	{
		struct be_part parts[3];
		int n = be_dataset_parts(parts, FIX "sample64_f32.npy", FIX "labels64_i64.npy");

		parts[n++] = (struct be_part){.name = "name", .data = "fashion f32 \xc3\xa9", .len = 14};
		REQUIRE(request(&d, "POST", "/v1/datasets", NULL, NULL, 0, parts, n, NULL, &r) == 0);
		CHECK_MSG(r.status == 201, "named dataset upload: %ld %s", r.status, r.body);
		j = be_resp_json(&r);
		be_resp_free(&r);
		CHECK_MSG(!strcmp(json_string_value(json_object_get(j, "name")) ?: "", "fashion f32 \xc3\xa9"),
			  "the form's name part names the dataset");
		json_decref(j);
		/* a bad name part: 400 naming it, whatever the parts hold */
		parts[n - 1] = (struct be_part){.name = "name", .data = "a\x01" "b", .len = 3};
		REQUIRE(request(&d, "POST", "/v1/datasets", NULL, NULL, 0, parts, n, NULL, &r) == 0);
		CHECK_MSG(is_problem(&r, 400, "/problems/bad_request"), "bad name part: %ld %s", r.status, r.body);
		problem_pointer(&r, ptr, sizeof(ptr));
		CHECK_MSG(strstr(ptr, "name") != NULL, "pointer %s", ptr);
		be_resp_free(&r);
		/* a file name is a default: the named dataset keeps its name */
		n = be_dataset_parts(parts, FIX "sample64_u8.npy", FIX "labels64_i64.npy");
		parts[0].filename = "renamed.npy";
		REQUIRE(request(&d, "POST", "/v1/datasets", NULL, NULL, 0, parts, n, NULL, &r) == 0);
		CHECK_INT((int)r.status, 200);
		j = be_resp_json(&r);
		be_resp_free(&r);
		CHECK_MSG(!strcmp(json_string_value(json_object_get(j, "name")) ?: "", "sample64_u8.npy"),
			  "a file name renamed a named dataset: %s", json_string_value(json_object_get(j, "name")));
		json_decref(j);
	}

	/* a job with a name and labels */
	snprintf(spec, sizeof(spec),
		 "{\"name\": \"baseline\", \"labels\": {\"arch\": \"mlp\", \"prec\": \"fp32\"}, \"model\": \"%s\","
		 " \"dataset\": \"%s\", " SPEC_REST "}",
		 model, ds);
	REQUIRE(submit(&d, spec, NULL, job, sizeof(job), NULL) == 202);
	snprintf(spec, sizeof(spec),
		 "{\"name\": \"other\", \"labels\": {\"arch\": \"mlp\"}, \"model\": \"%s\", \"dataset\": \"%s\", " SPEC_REST
		 "}",
		 model, ds);
	REQUIRE(submit(&d, spec, NULL, job2, sizeof(job2), NULL) == 202);
	j = wait_job(&d, job, "succeeded", 120);
	REQUIRE(j);
	CHECK_MSG(!strcmp(json_string_value(json_object_get(j, "name")) ?: "", "baseline"), "job name");
	CHECK_MSG(!strcmp(json_string_value(json_object_get(json_object_get(j, "labels"), "prec")) ?: "", "fp32"),
		  "job labels");
	h = json_object_get(j, "headline");
	snprintf(path, sizeof(path), "/v1/jobs/%s/report", job);
	REQUIRE(get(&d, path, &r) == 0);
	rep = be_resp_json(&r);
	be_resp_free(&r);
	REQUIRE(rep);
	/* the report says which job it is when it travels alone */
	CHECK_MSG(!strcmp(json_string_value(json_object_get(rep, "name")) ?: "", "baseline") &&
			  !strcmp(json_string_value(json_object_get(json_object_get(rep, "labels"), "prec")) ?: "", "fp32"),
		  "the report's name and labels");
	/* the largest radius of the first setting, from the report itself */
	row = json_array_get(json_object_get(rep, "results"), 0);
	json_array_foreach(json_object_get(rep, "results"), i, best)
	{
		json_t *x = best;

		if (json_equal(json_object_get(x, "group"), json_object_get(row, "group")) &&
		    json_equal(json_object_get(x, "norm"), json_object_get(row, "norm")) &&
		    json_equal(json_object_get(x, "sparsity"), json_object_get(row, "sparsity")) &&
		    json_equal(json_object_get(x, "steps"), json_object_get(row, "steps")) &&
		    json_number_value(json_object_get(x, "epsilon")) > json_number_value(json_object_get(row, "epsilon")))
			row = x;
	}
	REQUIRE_MSG(json_is_object(h), "no headline on a succeeded job");
	CHECK_CLOSE(json_number_value(json_object_get(h, "clean_accuracy")),
		    json_number_value(json_object_get(json_object_get(rep, "clean"), "accuracy")), 0, 0);
	CHECK_CLOSE(json_number_value(json_object_get(h, "epsilon")), 0.5, 0, 0);
	CHECK_CLOSE(json_number_value(json_object_get(h, "gradient_accuracy")),
		    json_number_value(json_object_get(json_object_get(row, "gradient"), "accuracy")), 0, 0);
	CHECK_CLOSE(json_number_value(json_object_get(h, "random_accuracy")),
		    json_number_value(json_object_get(json_object_get(row, "random"), "accuracy_mean")), 0, 0);
	json_decref(rep);
	json_decref(j);
	json_decref(wait_job(&d, job2, "succeeded", 120));

	/* filters: the name, one label, two labels (all must match) */
	items = list_items(&d, "/v1/jobs?name=baseline");
	CHECK_MSG(json_array_size(items) == 1 &&
			  !strcmp(json_string_value(json_object_get(json_array_get(items, 0), "id")) ?: "", job),
		  "job name filter");
	CHECK_MSG(json_is_object(json_object_get(json_array_get(items, 0), "headline")), "the listing has the headline");
	json_decref(items);
	items = list_items(&d, "/v1/jobs?label=arch=mlp&limit=1");
	CHECK_MSG(json_array_size(items) == 1, "one label, a page of 1");
	json_decref(items);
	items = list_items(&d, "/v1/jobs?label=arch=mlp");
	CHECK_INT((int)json_array_size(items), 2);
	json_decref(items);
	items = list_items(&d, "/v1/jobs?label=arch=mlp&label=prec=fp32");
	CHECK_MSG(json_array_size(items) == 1 &&
			  !strcmp(json_string_value(json_object_get(json_array_get(items, 0), "id")) ?: "", job),
		  "two labels");
	json_decref(items);
	items = list_items(&d, "/v1/jobs?label=prec=int8");
	CHECK_MSG(items && json_array_size(items) == 0, "a label value no job has");
	json_decref(items);
	EXPECT(&d, "GET", "/v1/jobs?label=noequals", 400);
	EXPECT(&d, "GET", "/v1/jobs?label=b%20d=x", 400);

	/* bad names and labels in the body: 422 naming the field */
	{
		static const struct {
			const char *fields, *pointer;
		} bad[] = {
			{"\"name\": \"a\\u0007b\"", "/name"},
			{"\"name\": 3", "/name"},
			{"\"name\": \"\"", "/name"},
			{"\"labels\": {\"a b\": \"x\"}", "/labels"},
			{"\"labels\": {\"k\": 1}", "/labels/k"},
			{"\"labels\": [\"k=v\"]", "/labels"},
		};

		for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
			snprintf(spec, sizeof(spec), "{%s, \"model\": \"%s\", \"dataset\": \"%s\", " SPEC_REST "}",
				 bad[i].fields, model, ds);
			REQUIRE(submit(&d, spec, NULL, NULL, 0, &r) >= 0);
			CHECK_MSG(r.status == 422, "%s: %ld", bad[i].fields, r.status);
			problem_pointer(&r, ptr, sizeof(ptr));
			CHECK_MSG(!strcmp(ptr, bad[i].pointer), "%s: pointer %s, expected %s", bad[i].fields, ptr,
				  bad[i].pointer);
		}
	}
	flow_teardown(t, &d);
}

/* paracorr submit --name --label: the job carries them, and the uploads
 * it made are named after their files. */
TEST(http_cli_submit_names)
{
	struct be_daemon d;
	char spec_path[PATH_MAX], args[2 * PATH_MAX], *out = malloc(65536);
	const char *spec_text = "{\"model\": \"" FIX "mlp_op13.onnx\", \"dataset\": {\"inputs\": \"" FIX
				"sample64_u8.npy\", \"labels\": \"" FIX "labels64_i64.npy\"}, \"labels\": {\"team\": \"a\"}, "
				SPEC_REST "}";
	const char *brace;
	json_t *job, *items;
	FILE *f;

	REQUIRE(out);
	if (!getenv("PARACORR_BIN") || !getenv("PARACORR_BIN")[0]) {
		free(out);
		pc_test_skip(t, "PARACORR_BIN is not set (make test sets it)");
		return;
	}
	if (!setup(t, &d)) {
		free(out);
		return;
	}
	snprintf(spec_path, sizeof(spec_path), "%s/spec.json", d.dir);
	REQUIRE((f = fopen(spec_path, "w")));
	fputs(spec_text, f);
	fclose(f);
	snprintf(args, sizeof(args), "submit --quiet --server %s --name 'mlp baseline' --label prec=fp32 --label team=b '%s'",
		 d.base, spec_path);
	CHECK_MSG(run_cli(args, out, 65536) == 0, "%s", out);
	brace = strchr(out, '{');
	job = brace ? json_loads(brace, JSON_DISABLE_EOF_CHECK, NULL) : NULL;
	REQUIRE_MSG(job, "%s", out);
	CHECK_MSG(!strcmp(json_string_value(json_object_get(job, "name")) ?: "", "mlp baseline"), "%s", out);
	CHECK_MSG(!strcmp(json_string_value(json_object_get(json_object_get(job, "labels"), "prec")) ?: "", "fp32") &&
			  !strcmp(json_string_value(json_object_get(json_object_get(job, "labels"), "team")) ?: "", "b"),
		  "--label over the spec's labels: %s", out);
	json_decref(job);
	items = list_items(&d, "/v1/models?name=mlp_op13.onnx");
	CHECK_MSG(json_array_size(items) == 1, "the model is named after its file");
	json_decref(items);
	items = list_items(&d, "/v1/datasets?name=sample64_u8.npy");
	CHECK_MSG(json_array_size(items) == 1, "the dataset is named after its inputs file");
	json_decref(items);
	snprintf(args, sizeof(args), "submit --server %s --label nokey '%s'", d.base, spec_path);
	CHECK_INT(run_cli(args, out, 65536), 2);
	free(out);
	flow_teardown(t, &d);
}

/* Whether the text between p and end has v as the dashboard's pct() writes
 * it (JavaScript's toFixed rounds an exact tie up, printf to even). */
static int has_pct(const char *p, const char *end, double v)
{
	char a[64], b[64];
	const char *x, *y;

	snprintf(a, sizeof(a), ">%.2f%%<", 100 * v);
	snprintf(b, sizeof(b), ">%.2f%%<", 100 * v + 1e-9);
	x = p ? strstr(p, a) : NULL;
	y = p ? strstr(p, b) : NULL;
	return (x && x < end) || (y && y < end);
}

/* Saves a screenshot of url as the artifact name; its path into shot. */
static void dashboard_shot(struct pc_test *t, const char *bin, const char *profile, const char *url, const char *dir,
			   const char *name)
{
	const char *art = getenv("PARACORR_ARTIFACT_DIR");
	char shot[PATH_MAX + 64], flag[PATH_MAX + 80];
	struct stat st;

	if (art && art[0])
		mkdir(art, 0755);
	snprintf(shot, sizeof(shot), "%s/%s", art && art[0] ? art : dir, name);
	snprintf(flag, sizeof(flag), "--screenshot=%s", shot);
	free(chromium(bin, profile, flag, url));
	CHECK_MSG(stat(shot, &st) == 0 && st.st_size > 10000, "no screenshot at %s", shot);
	fprintf(stderr, "  screenshot %s\n", shot);
}

/* The job list with names, labels and headlines, and the compare page of
 * two jobs, in headless Chromium: the numbers on the page are the API's. */
TEST(http_dashboard_names_compare_browser)
{
	const char *bin = getenv("CHROMIUM") ? getenv("CHROMIUM") : "/usr/bin/chromium";
	struct be_daemon d;
	char model[65] = "", ds[65] = "", ds2[65] = "", a[64] = "", b[64] = "", spec[2048], url[512], profile[PATH_MAX],
	     want[256];
	char *dom;
	const char *ids[2] = {a, b}, *names[2] = {"mlp baseline", "mlp seed 6"};
	json_t *ja[2] = {NULL, NULL}, *cmp;
	struct be_resp r;
	int lines = 0;

	if (!flow_setup(t, &d, model, ds))
		return;
	{
		/* the second job on a second dataset, named by the form */
		struct be_part parts[3];
		int n = be_dataset_parts(parts, FIX "sample64_f32.npy", FIX "labels64_i64.npy");
		json_t *dj;

		parts[n++] = (struct be_part){.name = "name", .data = "f32 set", .len = 7};
		REQUIRE(request(&d, "POST", "/v1/datasets", NULL, NULL, 0, parts, n, NULL, &r) == 0 && r.status == 201);
		dj = be_resp_json(&r);
		be_resp_free(&r);
		snprintf(ds2, sizeof(ds2), "%s", json_string_value(json_object_get(dj, "id")) ?: "");
		json_decref(dj);
	}
	snprintf(spec, sizeof(spec),
		 "{\"name\": \"mlp baseline\", \"labels\": {\"arch\": \"mlp\"}, \"model\": \"%s\", \"dataset\": \"%s\", "
		 SPEC_REST "}",
		 model, ds);
	REQUIRE(submit(&d, spec, NULL, a, sizeof(a), NULL) == 202);
	snprintf(spec, sizeof(spec),
		 "{\"name\": \"mlp seed 6\", \"labels\": {\"arch\": \"mlp\", \"seed\": \"6\"}, \"model\": \"%s\","
		 " \"dataset\": \"%s\", \"limit\": 48, \"batch_size\": 16, \"seed\": 6, \"corruption\": {\"norms\":"
		 " [\"l2\", \"linf\"], \"epsilons\": [0.05, 0.5], \"random_trials\": 2, \"groups\": [\"model\", \"tensor\"]}}",
		 model, ds2);
	REQUIRE(submit(&d, spec, NULL, b, sizeof(b), NULL) == 202);
	for (int k = 0; k < 2; k++)
		REQUIRE((ja[k] = wait_job(&d, ids[k], "succeeded", 120)) &&
			json_is_object(json_object_get(ja[k], "headline")));
	snprintf(url, sizeof(url), "/v1/compare?jobs=%s,%s", a, b);
	REQUIRE(get(&d, url, &r) == 0 && r.status == 200);
	cmp = be_resp_json(&r);
	be_resp_free(&r);
	REQUIRE(cmp);
	if (access(bin, X_OK) != 0) {
		pc_test_skip(t, "no Chromium for the browser part (make deps-test installs it)");
		goto out;
	}
	REQUIRE(be_tmpdir(profile, sizeof(profile)));

	/* the job list: each job's row has its name, labels and headline */
	snprintf(url, sizeof(url), "%s/#/jobs", d.base);
	dom = chromium(bin, profile, "--dump-dom", url);
	REQUIRE_MSG(dom, "chromium did not run");
	for (int k = 0; k < 2; k++) {
		const json_t *h = json_object_get(ja[k], "headline");
		const char *row, *end;

		snprintf(want, sizeof(want), "<tr class=\"link\" data-job-id=\"%s\"", ids[k]);
		row = strstr(dom, want);
		end = row ? strstr(row, "</tr>") : NULL;
		REQUIRE_MSG(row && end, "no row of job %s in the list", ids[k]);
		snprintf(want, sizeof(want), "data-testid=\"job-name\">%s</strong>", names[k]);
		CHECK_MSG(strstr(row, want) && strstr(row, want) < end, "row %d: no name %s", k, names[k]);
		CHECK_MSG(strstr(row, "data-label=\"arch\">arch=mlp<") && strstr(row, "data-label=\"arch\"") < end,
			  "row %d: no label arch=mlp", k);
		CHECK_MSG(has_pct(strstr(row, "data-h=\"clean\""), end, json_real_value(json_object_get(h, "clean_accuracy"))),
			  "row %d: clean accuracy", k);
		CHECK_MSG(has_pct(strstr(row, "data-h=\"gradient\""), end,
				  json_real_value(json_object_get(h, "gradient_accuracy"))),
			  "row %d: gradient accuracy", k);
		CHECK_MSG(has_pct(strstr(row, "data-h=\"random\""), end, json_real_value(json_object_get(h, "random_accuracy"))),
			  "row %d: random accuracy", k);
		snprintf(want, sizeof(want), "data-compare=\"%s\"", ids[k]);
		CHECK_MSG(strstr(row, want) && strstr(row, want) < end, "row %d: no compare box", k);
	}
	free(dom);
	dashboard_shot(t, bin, profile, url, d.dir, "dashboard-jobs.png");

	/* the compare page: a line per study per kind for each norm, the
	 * legend names the jobs, the clean accuracies and what differs */
	snprintf(url, sizeof(url), "%s/#/compare/%s,%s", d.base, a, b);
	dom = chromium(bin, profile, "--dump-dom", url);
	REQUIRE_MSG(dom, "chromium did not run");
	for (const char *p = dom; (p = strstr(p, "<polyline")); p++)
		lines++;
	CHECK_MSG(lines == 2 * 2 * 2, "%d lines, expected 2 studies x gradient, random x l2, linf", lines);
	for (int k = 0; k < 2; k++) {
		double clean = json_real_value(json_object_get(
			json_object_get(json_array_get(json_object_get(cmp, "studies"), (size_t)k), "clean"), "accuracy"));

		snprintf(want, sizeof(want), "data-legend=\"%d\">%s gradient<", k, names[k]);
		CHECK_MSG(strstr(dom, want), "no legend %s", want);
		snprintf(want, sizeof(want), "data-clean-accuracy=\"%.17g\"", clean);
		CHECK_MSG(strstr(dom, want) || has_pct(strstr(dom, "data-testid=\"compare-studies\""), dom + strlen(dom), clean),
			  "study %d: clean accuracy %g", k, clean);
	}
	{
		/* a point of the chart is the comparison's number */
		const json_t *row = json_array_get(json_object_get(cmp, "results"), 0);
		double acc = json_real_value(json_array_get(json_object_get(row, "gradient_accuracy"), 1));
		const char *p;
		int found = 0;

		for (p = dom; !found && (p = strstr(p, "<circle")); p++) {
			char buf[64];
			found = tag_attr(p, "data-study", buf, sizeof(buf)) && !strcmp(buf, "1") &&
				tag_attr(p, "data-kind", buf, sizeof(buf)) && !strcmp(buf, "gradient") &&
				tag_attr(p, "data-accuracy", buf, sizeof(buf)) && fabs(atof(buf) - acc) < 1e-12 &&
				tag_attr(p, "data-epsilon", buf, sizeof(buf)) &&
				fabs(atof(buf) - json_number_value(json_object_get(row, "epsilon"))) < 1e-12;
		}
		CHECK_MSG(found, "no point of study 1 at epsilon %g, accuracy %g",
			  json_number_value(json_object_get(row, "epsilon")), acc);
	}
	CHECK_MSG(strstr(dom, "data-pointer=\"/seed\""), "the differs list has no /seed");
	{
		/* the datasets they differ in, by name: the file's, the form's */
		const char *row = strstr(dom, "data-pointer=\"/dataset\""), *end = row ? strstr(row, "</tr>") : NULL;

		snprintf(want, sizeof(want), "data-upload=\"%s\">sample64_u8.npy <", ds);
		CHECK_MSG(row && end && strstr(row, want) && strstr(row, want) < end, "no %s in the /dataset row", want);
		snprintf(want, sizeof(want), "data-upload=\"%s\">f32 set <", ds2);
		CHECK_MSG(row && end && strstr(row, want) && strstr(row, want) < end, "no %s in the /dataset row", want);
	}
	CHECK_MSG(strstr(dom, "data-testid=\"compare-ranking\""), "no rankings side by side");
	free(dom);
	dashboard_shot(t, bin, profile, url, d.dir, "dashboard-compare.png");
	be_rmtree(profile);
out:
	json_decref(cmp);
	json_decref(ja[0]);
	json_decref(ja[1]);
	flow_teardown(t, &d);
}

/* A job's state once its progress is in a training epoch with an estimate
 * of the time left (NULL when it is not within `seconds`, a bound and no
 * assertion: the test waits for a state, as wait_job does). */
static json_t *wait_training_eta(const struct be_daemon *d, const char *id, double seconds)
{
	char path[128];
	double t0 = pc_sys_seconds();

	snprintf(path, sizeof(path), "/v1/jobs/%s", id);
	while (pc_sys_seconds() - t0 < seconds) {
		struct be_resp r;
		json_t *j = NULL, *p;

		if (get(d, path, &r) == 0 && r.status == 200 && (j = be_resp_json(&r))) {
			p = json_object_get(j, "progress");
			if (!strncmp(json_string_value(json_object_get(p, "phase")) ?: "", "training epoch", 14) &&
			    json_is_number(json_object_get(p, "remaining_seconds"))) {
				be_resp_free(&r);
				return j;
			}
			if (strcmp(json_string_value(json_object_get(j, "status")) ?: "", "queued") &&
			    strcmp(json_string_value(json_object_get(j, "status")) ?: "", "running")) {
				be_resp_free(&r);
				json_decref(j);
				return NULL;
			}
		}
		json_decref(j);
		be_resp_free(&r);
		be_sleep_ms(50);
	}
	return NULL;
}

/* The start of the element (its '<') whose attributes hold attr, or NULL. */
static const char *elem_with(const char *dom, const char *attr)
{
	const char *p = strstr(dom, attr);

	while (p && p > dom && *p != '<')
		p--;
	return p;
}

/* A running harden job in the dashboard: its page and its row in the job
 * list say the training epoch, the steps and the time left, with a
 * progress bar; the job list keeps its ticked jobs in the URL
 * (#/jobs?selected=ID survives a reload); a finished harden job's page
 * links its before-and-after comparison. */
TEST(http_dashboard_progress_browser)
{
	const char *bin = getenv("CHROMIUM") ? getenv("CHROMIUM") : "/usr/bin/chromium";
	struct be_daemon d;
	char model[65] = "", ds[65] = "", hj[64] = "", slow[64] = "", spec[2048], url[512], profile[PATH_MAX],
	     want[256], buf[256];
	char *dom = NULL;
	const char *p, *end;
	json_t *j;

	if (!harden_cnn_setup(t, &d, model, ds))
		return;
	/* a harden job that finishes, then one that trains for far longer than the test */
	harden_small_spec(spec, sizeof(spec), model, ds);
	REQUIRE(submit(&d, spec, NULL, hj, sizeof(hj), NULL) == 202);
	j = wait_job(&d, hj, "succeeded", 300);
	REQUIRE_MSG(j && !strcmp(json_string_value(json_object_get(j, "status")) ?: "", "succeeded"),
		    "the small harden job did not succeed");
	json_decref(j);
	snprintf(spec, sizeof(spec),
		 "{\"name\": \"cnn act long\", \"kind\": \"harden\", \"model\": \"%s\", \"dataset\": \"%s\", \"limit\": 64, "
		 "\"seed\": 5, \"corruption\": {\"norms\": [\"l2\"], \"epsilons\": [0.5], \"random_trials\": 0, "
		 "\"groups\": [\"model\"]}, \"training\": {\"dataset\": \"%s\", \"limit\": 10000, \"epochs\": 1000, "
		 "\"batch_size\": 50, \"act\": {\"epsilon\": 0.3}}}",
		 model, ds, ds);
	REQUIRE(submit(&d, spec, NULL, slow, sizeof(slow), NULL) == 202);
	j = wait_training_eta(&d, slow, 300);
	REQUIRE_MSG(j, "the long harden job never reached a training epoch with a time left");
	json_decref(j);
	if (access(bin, X_OK) != 0) {
		pc_test_skip(t, "no Chromium for the browser part (make deps-test installs it)");
		goto out;
	}
	REQUIRE(be_tmpdir(profile, sizeof(profile)));

	/* the running job's page: the epoch, its steps, the time left, a bar */
	snprintf(url, sizeof(url), "%s/#/jobs/%s", d.base, slow);
	dom = chromium(bin, profile, "--dump-dom", url);
	REQUIRE_MSG(dom, "chromium did not run");
	p = strstr(dom, "<p data-testid=\"eta\">");
	end = p ? strstr(p, "</p>") : NULL;
	REQUIRE_MSG(p && end, "no progress line on the running job's page");
	snprintf(buf, sizeof(buf), "%.*s", (int)(end - p), p);
	CHECK_MSG(strstr(buf, "training epoch ") && strstr(buf, " of 1000: ") && strstr(buf, " steps (") &&
			  strstr(buf, "% of the job)") && strstr(buf, " left"),
		  "the progress line: %s", buf);
	CHECK_MSG(strstr(end, "role=\"progressbar\""), "no progress bar on the running job's page");
	free(dom);
	dashboard_shot(t, bin, profile, url, d.dir, "dashboard-progress.png");

	/* the job list with the finished one ticked in the URL: kept ticked,
	 * the running one's row with its stage and time left */
	snprintf(url, sizeof(url), "%s/#/jobs?selected=%s", d.base, hj);
	dom = chromium(bin, profile, "--dump-dom", url);
	REQUIRE_MSG(dom, "chromium did not run");
	snprintf(want, sizeof(want), "data-compare=\"%s\"", hj);
	p = elem_with(dom, want);
	end = p ? strchr(p, '>') : NULL;
	CHECK_MSG(p && end && memmem(p, (size_t)(end - p), " checked=\"\"", 11), "the selected job is not ticked");
	snprintf(want, sizeof(want), "<tr class=\"link\" data-job-id=\"%s\"", slow);
	p = strstr(dom, want);
	end = p ? strstr(p, "</tr>") : NULL;
	REQUIRE_MSG(p && end, "no row of the running job");
	p = strstr(p, "data-testid=\"eta\">");
	CHECK_MSG(p && p < end && strstr(p, "training epoch ") < end && strstr(p, " left<") < end &&
			  strstr(strstr(dom, want), "role=\"progressbar\"") < end,
		  "the running job's row has no stage, time left and bar");
	free(dom);

	/* the finished harden job's page links its before and after */
	snprintf(url, sizeof(url), "%s/#/jobs/%s", d.base, hj);
	dom = chromium(bin, profile, "--dump-dom", url);
	REQUIRE_MSG(dom, "chromium did not run");
	p = elem_with(dom, "data-testid=\"compare-before-after\"");
	snprintf(want, sizeof(want), "#/compare/%s", hj);
	CHECK_MSG(p && tag_attr(p, "href", buf, sizeof(buf)) && !strcmp(buf, want), "no link to %s", want);
	free(dom);
	be_rmtree(profile);
out:
	snprintf(url, sizeof(url), "/v1/jobs/%s/cancel", slow);
	{
		struct be_resp r;

		REQUIRE(request(&d, "POST", url, NULL, NULL, 0, NULL, 0, NULL, &r) == 0);
		be_resp_free(&r);
	}
	j = wait_job(&d, slow, "cancelled", 60);
	CHECK(j && !strcmp(json_string_value(json_object_get(j, "status")) ?: "", "cancelled"));
	json_decref(j);
	flow_teardown(t, &d);
}

/* Base64 of n bytes into a malloc'd string (for a page that carries a file). */
static char *base64_of(const unsigned char *b, size_t n)
{
	static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	char *out = malloc(4 * ((n + 2) / 3) + 1), *o = out;

	if (!out)
		return NULL;
	for (size_t i = 0; i < n; i += 3) {
		unsigned v = (unsigned)b[i] << 16 | (i + 1 < n ? (unsigned)b[i + 1] << 8 : 0) | (i + 2 < n ? b[i + 2] : 0);

		*o++ = tab[v >> 18 & 63];
		*o++ = tab[v >> 12 & 63];
		*o++ = i + 1 < n ? tab[v >> 6 & 63] : '=';
		*o++ = i + 2 < n ? tab[v & 63] : '=';
	}
	*o = '\0';
	return out;
}

/* The dashboard's upload with progress (app.js's upload and
 * uploadProgress, as the New study page calls them) in headless Chromium:
 * a page that loads the daemon's app.js uploads the fixture MLP through
 * it. The line says the megabytes and the time left from the rate so far,
 * the last progress event is the whole file, then that the daemon checks
 * it; the answer is the model, named. A bad ?name= comes back as the
 * ApiError with the daemon's problem. */
TEST(http_dashboard_upload_progress_browser)
{
	const char *bin = getenv("CHROMIUM") ? getenv("CHROMIUM") : "/usr/bin/chromium";
	struct be_daemon d;
	char page[PATH_MAX + 16], url[PATH_MAX + 32], profile[PATH_MAX], buf[256], digest[65];
	char *dom = NULL, *b64 = NULL, *onnx = NULL;
	const char *p;
	size_t len;
	FILE *f;

	if (access(bin, X_OK) != 0) {
		pc_test_skip(t, "no Chromium (make deps-test installs it)");
		return;
	}
	if (!setup(t, &d))
		return;
	REQUIRE((onnx = read_fixture(FIX "mlp_op13.onnx", &len)) && (b64 = base64_of((unsigned char *)onnx, len)));
	pcd_sha256_hex_of(onnx, len, digest);
	snprintf(page, sizeof(page), "%s/upload.html", d.dir);
	REQUIRE((f = fopen(page, "w")));
	fprintf(f,
		"<!DOCTYPE html><html><body><main id=\"view\"></main><div id=\"banner\" hidden></div>"
		"<form id=\"token-form\" hidden><input id=\"token-input\"></form><div id=\"out\"></div>"
		"<pre id=\"result\"></pre>\n<script>sessionStorage.setItem('paracorr-token', '%s');</script>\n"
		"<script src=\"%s/app.js\"></script>\n<script>\n"
		"const res = document.getElementById('result');\n"
		"(async () => {\n"
		"  const probe = document.createElement('div');\n"
		"  uploadProgress(probe, 'model')(1e6, 4e6, 2);\n"
		"  res.setAttribute('data-mid', probe.querySelector('[data-testid=upload-eta]').textContent);\n"
		"  const bytes = Uint8Array.from(atob('%s'), (c) => c.charCodeAt(0));\n"
		"  const show = uploadProgress(document.getElementById('out'), 'model');\n"
		"  let last = null;\n"
		"  const m = await upload('%s/v1/models?name=browser%%20upload', new Blob([bytes]), 'application/octet-stream',\n"
		"    (s, t, sec) => { last = [s, t]; show(s, t, sec); });\n"
		"  res.setAttribute('data-last', last ? last.join('/') : 'none');\n"
		"  res.setAttribute('data-line', document.querySelector('#out [data-testid=upload-eta]').textContent);\n"
		"  res.setAttribute('data-id', m.id);\n"
		"  res.setAttribute('data-name', m.name);\n"
		"  try { await upload('%s/v1/models?name=%%01', new Blob([bytes]), 'application/octet-stream', () => {}); }\n"
		"  catch (e) { res.setAttribute('data-refused', e.status + ' ' + (e.problem && e.problem.type)); }\n"
		"  res.setAttribute('data-done', '1');\n"
		"})().catch((e) => res.setAttribute('data-error', String(e)));\n"
		"</script></body></html>\n",
		d.token ? d.token : "", d.base, b64, d.base, d.base);
	fclose(f);
	REQUIRE(be_tmpdir(profile, sizeof(profile)));
	snprintf(url, sizeof(url), "file://%s", page);
	/* the page is a file and the daemon another origin: no CORS between them here */
	dom = chromium(bin, profile, "--disable-web-security --dump-dom", url);
	REQUIRE_MSG(dom, "chromium did not run");
	p = strstr(dom, "<pre id=\"result\"");
	REQUIRE_MSG(p, "no result element");
	CHECK_MSG(!tag_attr(p, "data-error", buf, sizeof(buf)), "the page failed: %s", buf);
	CHECK_MSG(tag_attr(p, "data-done", buf, sizeof(buf)), "the page did not finish");
	CHECK_MSG(tag_attr(p, "data-mid", buf, sizeof(buf)) && !strcmp(buf, "1.0 of 4.0 MB (25%) · ~6 s left"),
		  "the line a quarter in, after 2 s: %s", buf);
	snprintf(url, sizeof(url), "%zu/%zu", len, len);
	CHECK_MSG(tag_attr(p, "data-last", buf, sizeof(buf)) && !strcmp(buf, url), "the last progress event: %s", buf);
	snprintf(url, sizeof(url), "Sent %.1f MB; the daemon checks the model…", len / 1e6);
	CHECK_MSG(tag_attr(p, "data-line", buf, sizeof(buf)) && !strcmp(buf, url), "the line at the end: %s", buf);
	CHECK_MSG(tag_attr(p, "data-id", buf, sizeof(buf)) && !strcmp(buf, digest), "the model id: %s", buf);
	CHECK_MSG(tag_attr(p, "data-name", buf, sizeof(buf)) && !strcmp(buf, "browser upload"), "the name: %s", buf);
	CHECK_MSG(tag_attr(p, "data-refused", buf, sizeof(buf)) && !strcmp(buf, "400 /problems/bad_request"),
		  "a bad name: %s", buf);
	free(dom);
	be_rmtree(profile);
	free(b64);
	free(onnx);
	flow_teardown(t, &d);
}

/* An answer that is 503 /problems/busy with Retry-After and a detail
 * that says what; frees r. */
static void expect_unreachable(struct pc_test *t, int line, struct be_resp *r, const char *what)
{
	char hv[64] = "";
	json_t *j = be_resp_json(r);
	const char *detail = json_string_value(json_object_get(j, "detail"));

	if (!is_problem(r, 503, "/problems/busy") || !be_resp_header(r, "Retry-After", hv, sizeof(hv)) ||
	    atoi(hv) <= 0 || !detail || !strstr(detail, "the PostgreSQL store is unreachable"))
		pc_test_fail(t, __FILE__, line, "%s: %ld (Retry-After '%s') %s", what, r->status, hv,
			     r->body ? r->body : "");
	json_decref(j);
	be_resp_free(r);
}

/* The daemon on a PostgreSQL store (--store postgresql://..., on a
 * throwaway server): ready, uploads and a job end to end with the report
 * paracorr run gives; with the server stopped, /readyz and the requests
 * that need the store answer 503 with Retry-After; once it is back, the
 * daemon serves again without a restart, the job as it was. */
TEST(http_postgresql_store)
{
	struct pgu pg;
	struct be_daemon d;
	char url[256], why[600], model[65] = "", ds[65] = "", job[64] = "", spec[2048], path[128];
	const char *extra[] = {"--store", url, NULL};
	struct be_resp r;
	json_t *j, *rep, *cli;

	if (!pgu_available(why, sizeof(why))) {
		pc_test_skip(t, why);
		return;
	}
	REQUIRE_MSG(pgu_init(&pg), "%s", pg.why);
	if (!pgu_new_db(&pg, url, sizeof(url)) || !setup_with(t, &d, extra)) {
		CHECK_MSG(0, "no database or no daemon: %s", pg.why);
		pgu_free(&pg);
		return;
	}
	REQUIRE(get(&d, "/readyz", &r) == 0);
	j = be_resp_json(&r);
	CHECK_MSG(r.status == 200 && j && !strcmp(json_string_value(json_object_get(j, "status")) ?: "", "ready"),
		  "readyz %ld %s", r.status, r.body ? r.body : "");
	json_decref(j);
	be_resp_free(&r);
	CHECK_INT(upload_model(&d, FIX "mlp_op13.onnx", model, NULL), 201);
	CHECK_INT(upload_dataset(&d, FIX "sample64_u8.npy", FIX "labels64_i64.npy", ds), 201);
	snprintf(spec, sizeof(spec), "{\"model\": \"%s\", \"dataset\": \"%s\", " SPEC_REST "}", model, ds);
	if (!flow_job(t, &d, model, ds, NULL, job))
		goto out;
	snprintf(path, sizeof(path), "/v1/jobs/%s/report", job);
	REQUIRE(get(&d, path, &r) == 0);
	CHECK_INT(r.status, 200);
	rep = be_resp_json(&r);
	be_resp_free(&r);
	snprintf(spec, sizeof(spec),
		 "{\"model\": \"" FIX "mlp_op13.onnx\", \"dataset\": {\"inputs\": \"" FIX
		 "sample64_u8.npy\", \"labels\": \"" FIX "labels64_i64.npy\"}, " SPEC_REST "}");
	cli = cli_report(t, spec, d.dir);
	if (rep && cli) {
		strip_report(rep);
		strip_report(cli);
		CHECK_MSG(json_equal(rep, cli), "the report on PostgreSQL differs from paracorr run's");
	} else
		CHECK_MSG(rep && (cli || !getenv("PARACORR_BIN")), "no report");
	json_decref(rep);
	json_decref(cli);
	{
		/* the job names the node that ran it: without node_name,
		 * "<hostname>:<port>" */
		char host[256] = "", want[300];

		gethostname(host, sizeof(host) - 1);
		snprintf(want, sizeof(want), "%.100s:%d", host, d.port);
		snprintf(path, sizeof(path), "/v1/jobs/%s", job);
		REQUIRE(get(&d, path, &r) == 0);
		j = be_resp_json(&r);
		CHECK_MSG(j && !strcmp(json_string_value(json_object_get(j, "node")) ?: "", want),
			  "the job's node: %s", r.body ? r.body : "");
		json_decref(j);
		be_resp_free(&r);
	}

	REQUIRE_MSG(pgu_stop(&pg), "%s", pg.why);
	REQUIRE(get(&d, "/readyz", &r) == 0);
	expect_unreachable(t, __LINE__, &r, "/readyz with the server stopped");
	snprintf(path, sizeof(path), "/v1/jobs/%s", job);
	REQUIRE(get(&d, path, &r) == 0);
	expect_unreachable(t, __LINE__, &r, "GET /v1/jobs/{id} with the server stopped");
	snprintf(spec, sizeof(spec), "{\"model\": \"%s\", \"dataset\": \"%s\", " SPEC_REST "}", model, ds);
	REQUIRE(request(&d, "POST", "/v1/jobs", "application/json", spec, strlen(spec), NULL, 0, NULL, &r) == 0);
	expect_unreachable(t, __LINE__, &r, "POST /v1/jobs with the server stopped");
	{
		/* new bytes: they go to the database, which is not there */
		size_t len;
		char *bytes = read_fixture(FIX "cnn_op13.onnx", &len);

		REQUIRE(bytes);
		REQUIRE(request(&d, "POST", "/v1/models", "application/octet-stream", bytes, len, NULL, 0, NULL, &r) == 0);
		expect_unreachable(t, __LINE__, &r, "POST /v1/models with the server stopped");
		free(bytes);
	}
	EXPECT(&d, "GET", "/healthz", 200); /* alive, only not ready */

	REQUIRE_MSG(pgu_start(&pg), "%s", pg.why);
	REQUIRE(get(&d, "/readyz", &r) == 0);
	CHECK_MSG(r.status == 200, "readyz once the server is back: %ld %s", r.status, r.body ? r.body : "");
	be_resp_free(&r);
	REQUIRE(get(&d, path, &r) == 0);
	j = be_resp_json(&r);
	CHECK_MSG(r.status == 200 && j && !strcmp(json_string_value(json_object_get(j, "status")) ?: "", "succeeded"),
		  "the job once the server is back: %ld %s", r.status, r.body ? r.body : "");
	json_decref(j);
	be_resp_free(&r);
	/* killed and started again at once: the dead daemon's lock goes with
	 * its session, which the server may close a moment later; the new
	 * one waits for it (a bounded wait) and comes up */
	be_daemon_stop(&d, SIGKILL, NULL);
	REQUIRE_MSG(daemon_start(&d, extra), "no restart after SIGKILL (see %s/daemon.log)", d.dir);
	REQUIRE(get(&d, path, &r) == 0);
	CHECK_MSG(r.status == 200, "the job after the restart: %ld", r.status);
	be_resp_free(&r);
out:
	flow_teardown(t, &d);
	pgu_free(&pg);
}

/* Whether a finished job's progress reads as complete, done == total and
 * fraction 1; its total into *total. */
static int progress_complete(struct pc_test *t, const char *what, const json_t *job, json_int_t *total)
{
	const json_t *p = json_object_get(job, "progress");
	json_int_t done = json_integer_value(json_object_get(p, "done"));
	char *text = p ? json_dumps(p, JSON_COMPACT) : NULL;
	int ok;

	*total = json_integer_value(json_object_get(p, "total"));
	ok = json_is_integer(json_object_get(p, "done")) && done == *total && *total > 0 &&
	     json_number_value(json_object_get(p, "fraction")) == 1.0;
	CHECK_MSG(ok, "%s's progress: %s", what, text ? text : "(none)");
	free(text);
	return ok;
}

/* A sharded job through the daemon: its JSON lists the shards, which the
 * listing leaves out, and its report is the unsharded job's (the timing
 * aside); "shards" out of range is refused naming the field. Once
 * succeeded, the job, each of its shards and the unsharded job read as
 * complete, the sharded job with the unsharded one's passes. */
TEST(http_flow_sharded_job)
{
	struct be_daemon d;
	char model[65], ds[65], spec[1024], whole[64] = "", sharded[64] = "", path[128];
	const char *bad[] = {"0", "65", "\"x\"", "2.5"};
	struct be_resp r;
	json_t *j, *a = NULL, *b = NULL, *shards;
	json_int_t whole_total = -1, total = -1, shard_totals = 0;
	char *sa, *sb;

	if (!flow_setup(t, &d, model, ds))
		return;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(spec, sizeof(spec), "{\"model\": \"%s\", \"dataset\": \"%s\", \"shards\": %s, " SPEC_REST "}",
			 model, ds, bad[i]);
		REQUIRE(submit(&d, spec, NULL, NULL, 0, &r) == 422);
		j = be_resp_json(&r);
		CHECK(is_problem(&r, 422, "/problems/invalid"));
		CHECK(j && json_is_string(json_object_get(json_array_get(json_object_get(j, "errors"), 0), "pointer")) &&
		      !strcmp(json_string_value(json_object_get(json_array_get(json_object_get(j, "errors"), 0), "pointer")),
			      "/shards"));
		CHECK(r.body && strstr(r.body, "must be an integer from 1 to 64 or \\\"auto\\\""));
		json_decref(j);
		be_resp_free(&r);
	}
	snprintf(spec, sizeof(spec), "{\"model\": \"%s\", \"dataset\": \"%s\", " SPEC_REST "}", model, ds);
	REQUIRE(submit(&d, spec, NULL, whole, sizeof(whole), NULL) == 202);
	snprintf(spec, sizeof(spec), "{\"model\": \"%s\", \"dataset\": \"%s\", \"shards\": 3, " SPEC_REST "}", model, ds);
	REQUIRE(submit(&d, spec, NULL, sharded, sizeof(sharded), NULL) == 202);
	j = wait_job(&d, whole, "succeeded", 300);
	CHECK(j && !strcmp(json_string_value(json_object_get(j, "status")), "succeeded"));
	CHECK(j && !json_object_get(j, "shards"));
	progress_complete(t, "the unsharded job", j, &whole_total);
	json_decref(j);
	j = wait_job(&d, sharded, "succeeded", 300);
	REQUIRE(j);
	CHECK(!strcmp(json_string_value(json_object_get(j, "status")), "succeeded"));
	progress_complete(t, "the sharded job", j, &total);
	CHECK_MSG(total == whole_total, "the sharded job's total %lld, the unsharded one's %lld", (long long)total,
		  (long long)whole_total);
	shards = json_object_get(j, "shards");
	CHECK_INT(json_array_size(shards), 3);
	for (size_t i = 0; i < json_array_size(shards); i++) {
		json_t *s = json_array_get(shards, i), *sj;
		char what[32];

		CHECK_INT(json_integer_value(json_object_get(s, "index")), i);
		/* one daemon: every shard ran on its node, the job's */
		CHECK_MSG(json_is_string(json_object_get(s, "node")) &&
				  json_equal(json_object_get(s, "node"), json_object_get(j, "node")),
			  "shard %zu's node", i);
		CHECK(!strcmp(json_string_value(json_object_get(s, "status")) ?: "", "succeeded"));
		snprintf(path, sizeof(path), "/v1/jobs/%s", json_string_value(json_object_get(s, "job")) ?: "");
		REQUIRE(get(&d, path, &r) == 0);
		CHECK_INT(r.status, 200);
		sj = be_resp_json(&r);
		be_resp_free(&r);
		snprintf(what, sizeof(what), "shard %zu", i);
		progress_complete(t, what, sj, &total);
		shard_totals += total;
		json_decref(sj);
	}
	/* the shards' passes and the parent's clean pass: the study's */
	CHECK_MSG(shard_totals + 1 == whole_total, "the shards' totals add up to %lld, the study's is %lld",
		  (long long)shard_totals, (long long)whole_total);
	json_decref(j);
	/* the listing holds the two jobs, not the shards */
	REQUIRE(get(&d, "/v1/jobs", &r) == 0);
	j = be_resp_json(&r);
	CHECK(r.status == 200 && j && json_array_size(json_object_get(j, "items")) == 2);
	json_decref(j);
	be_resp_free(&r);
	snprintf(path, sizeof(path), "/v1/jobs/%s/report", whole);
	REQUIRE(get(&d, path, &r) == 0);
	CHECK_INT(r.status, 200);
	a = be_resp_json(&r);
	be_resp_free(&r);
	snprintf(path, sizeof(path), "/v1/jobs/%s/report", sharded);
	REQUIRE(get(&d, path, &r) == 0);
	CHECK_INT(r.status, 200);
	b = be_resp_json(&r);
	be_resp_free(&r);
	REQUIRE(a && b);
	json_object_del(a, "timing");
	json_object_del(b, "timing");
	sa = json_dumps(a, JSON_INDENT(2) | JSON_REAL_PRECISION(17));
	sb = json_dumps(b, JSON_INDENT(2) | JSON_REAL_PRECISION(17));
	CHECK(sa && sb && !strcmp(sa, sb));
	free(sa);
	free(sb);
	json_decref(a);
	json_decref(b);
	flow_teardown(t, &d);
}
