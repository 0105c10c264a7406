/* A full disk: $PARACORRD_BIN runs with its data directory on a small tmpfs
 * that the test mounts in a mount namespace of the daemon's own (the child
 * calls unshare(CLONE_NEWNS) before it mounts and execs), so the mount
 * never shows on the host and vanishes with the daemon however the test
 * ends. The test reaches the daemon's view of the directory through
 * /proc/<pid>/root, fills it with a ballast file so that the next write
 * runs out of space, and checks the answer and what is left on disk.
 *
 *   diskfull_upload      a model and a dataset upload: 507 nospace, no
 *                        temp file, no record; after the ballast goes, the
 *                        same uploads are 201 and a job succeeds.
 *   diskfull_report      a report larger than the space left: the job
 *                        fails with the nospace problem and no report; the
 *                        daemon serves on and runs the next job.
 *   diskfull_checkpoint  a harden job whose second checkpoint does not
 *                        fit: the job fails with the nospace problem, the
 *                        first checkpoint is intact and loadable, and no
 *                        hardened model is written or registered.
 *
 * Skipped when PARACORRD_BIN is unset; a failed unshare or mount (not
 * root, no namespaces) is a failure saying so, never a pass. */
#include <arpa/inet.h>
#include <curl/curl.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "job.h"
#include "be_util.h"
#include "paracorr/sys.h"
#include "paracorr/error.h"
#include "paracorr/graph.h"
#include "paracorr/onnx.h"
#include "paracorr/train.h"
#include "test.h"

#define MODEL FIX "mlp_op13.onnx"
#define XS    FIX "sample64_u8.npy"
#define YS    FIX "labels64_i64.npy"

struct daemon {
	pid_t pid;
	char dir[PATH_MAX - 64];  /* host temp dir: the log, the mount point */
	char data[PATH_MAX];	  /* the data directory (the tmpfs), as the daemon names it */
	char view[PATH_MAX + 64]; /* the same seen from here: /proc/<pid>/root<data> */
	char base[128];
};

/* One request: a JSON or octet-stream body, or (inputs set) a multipart
 * dataset of the fixture files inputs and labels. 0 when answered. */
static int http(const struct daemon *d, const char *method, const char *path, const char *ctype, const void *body,
		size_t len, const char *inputs, const char *labels, struct be_resp *r)
{
	char xi[PATH_MAX], yi[PATH_MAX];
	struct be_part parts[2];
	struct be_req q = {.method = method, .url = d->base, .path = path, .ctype = ctype, .body = body, .len = len};

	if (inputs) {
		snprintf(xi, sizeof(xi), "%s/%s", pc_test_root(), inputs);
		snprintf(yi, sizeof(yi), "%s/%s", pc_test_root(), labels);
		q.parts = parts;
		q.n_parts = be_dataset_parts(parts, xi, yi);
	}
	return be_request(&q, r);
}

static int get(const struct daemon *d, const char *path, struct be_resp *r)
{
	return http(d, "GET", path, NULL, NULL, 0, NULL, NULL, r);
}

/* In the forked child: what failed, on the pipe to the parent, then out. */
static void child_fail(int fd, const char *what)
{
	char msg[256];
	int n = snprintf(msg, sizeof(msg), "%s: %s", what, strerror(errno));

	if (n > 0 && write(fd, msg, (size_t)n) < 0)
		_exit(124);
	_exit(125);
}

/* The child: a mount namespace of its own with private propagation (so
 * nothing it mounts reaches the host), a tmpfs of mb MiB on the data
 * directory, then the daemon. Only async-signal-safe calls after fork. */
static void child_exec(int fd, const struct daemon *d, const char *const *argv, const char *log, const char *opts)
{
	int lfd;

	if (unshare(CLONE_NEWNS) != 0)
		child_fail(fd, "unshare(CLONE_NEWNS)");
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0)
		child_fail(fd, "making / private in the new mount namespace");
	if (mkdir(d->data, 0700) != 0 && errno != EEXIST)
		child_fail(fd, "mkdir of the data directory");
	if (mount("tmpfs", d->data, "tmpfs", MS_NOSUID | MS_NODEV, opts) != 0)
		child_fail(fd, "mount -t tmpfs on the data directory");
	if ((lfd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600)) < 0 || dup2(lfd, 2) < 0)
		child_fail(fd, "opening the daemon log");
	if (chdir(pc_test_root()) != 0)
		child_fail(fd, "chdir to the project root");
	execv(argv[0], (char *const *)argv);
	child_fail(fd, "execv of PARACORRD_BIN");
}

/* Starts the daemon on a fresh tmpfs of mb MiB; 1 up, 0 failed with the
 * reason recorded as a test failure. */
static int daemon_start(struct pc_test *t, struct daemon *d, int mb)
{
	const char *bin = getenv("PARACORRD_BIN");
	char opts[64], log[PATH_MAX];

	snprintf(opts, sizeof(opts), "size=%dm,mode=0700", mb);
	snprintf(log, sizeof(log), "%s/daemon.log", d->dir);
	for (int attempt = 0; attempt < 5; attempt++) {
		char port[16], why[300] = "";
		const char *argv[] = {bin,	   "--port",	      port,		   "--data-dir", d->data,
				      "--workers", "1",		      "--threads-per-job", "1",	 "--poll-ms",
				      "50",	   "--max-model-mb",  "2",		   "--cache-mb", "16",
				      "--min-free-disk-mb", "0", NULL};
		int fds[2], st;
		ssize_t n;

		snprintf(port, sizeof(port), "%d", be_free_port());
		snprintf(d->base, sizeof(d->base), "http://127.0.0.1:%s", port);
		if (pipe2(fds, O_CLOEXEC) != 0)
			return 0;
		d->pid = fork();
		if (d->pid < 0)
			return 0;
		if (d->pid == 0)
			child_exec(fds[1], d, argv, log, opts);
		close(fds[1]);
		/* EOF: the exec happened (the pipe closed with it) */
		n = read(fds[0], why, sizeof(why) - 1);
		close(fds[0]);
		if (n > 0) {
			why[n] = '\0';
			waitpid(d->pid, &st, 0);
			d->pid = 0;
			pc_test_fail(t, __FILE__, __LINE__, "cannot run the daemon on its own tmpfs: %s", why);
			return 0;
		}
		snprintf(d->view, sizeof(d->view), "/proc/%d/root%s", (int)d->pid, d->data);
		for (int i = 0; i < 200; i++) {
			struct be_resp r;
			int up;

			if (waitpid(d->pid, &st, WNOHANG) == d->pid)
				break; /* died: the port may have been taken; try another */
			up = get(d, "/healthz", &r) == 0 && r.status == 200;
			free(r.body);
			if (up)
				return 1;
			be_sleep_ms(50);
		}
		kill(d->pid, SIGKILL);
		waitpid(d->pid, &st, 0);
		d->pid = 0;
	}
	pc_test_fail(t, __FILE__, __LINE__, "the daemon did not come up (see %s)", log);
	return 0;
}

/* SIGTERM; the exit status, -1 when it did not exit within 10 s. */
static int daemon_stop(struct daemon *d)
{
	int st = 0;

	if (d->pid <= 0)
		return -1;
	kill(d->pid, SIGTERM);
	for (int i = 0; i < 1000; i++) {
		if (waitpid(d->pid, &st, WNOHANG) == d->pid) {
			d->pid = 0;
			return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
		}
		be_sleep_ms(10);
	}
	kill(d->pid, SIGKILL);
	waitpid(d->pid, &st, 0);
	d->pid = 0;
	return -1;
}

static int setup(struct pc_test *t, struct daemon *d, int mb)
{
	const char *bin = getenv("PARACORRD_BIN");
	char tmp[PATH_MAX - 64];

	memset(d, 0, sizeof(*d));
	if (!bin || !bin[0]) {
		pc_test_skip(t, "PARACORRD_BIN is not set (make test sets it)");
		return 0;
	}
	/* absolute: /proc/<pid>/root is joined with it */
	if (!be_tmpdir(tmp, sizeof(tmp)) || !realpath(tmp, d->dir)) {
		pc_test_fail(t, __FILE__, __LINE__, "cannot make a temp dir");
		return 0;
	}
	snprintf(d->data, sizeof(d->data), "%s/data", d->dir);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	return daemon_start(t, d, mb);
}

static void teardown(struct pc_test *t, struct daemon *d)
{
	CHECK_INT(daemon_stop(d), 0);
	be_rmtree(d->dir);
}

/* Bytes free on the daemon's data directory; -1 when it cannot be asked. */
static long long free_bytes(const struct daemon *d)
{
	struct statvfs v;

	if (statvfs(d->view, &v) != 0)
		return -1;
	return (long long)v.f_bavail * (long long)v.f_frsize;
}

/* Fills the tmpfs with <data>/ballast until `leave` bytes are free (real
 * pages: tmpfs counts what is written, not what is sized). The bytes free
 * after it, -1 on failure. */
static long long ballast(const struct daemon *d, long long leave)
{
	static char zeros[1 << 16];
	char path[PATH_MAX + 128];
	long long want = free_bytes(d) - leave;
	int fd;

	snprintf(path, sizeof(path), "%s/ballast", d->view);
	if (want < 0 || (fd = open(path, O_WRONLY | O_CREAT | O_APPEND, 0600)) < 0)
		return -1;
	while (want > 0) {
		size_t n = want < (long long)sizeof(zeros) ? (size_t)want : sizeof(zeros);
		ssize_t w = write(fd, zeros, n);

		if (w <= 0)
			break;
		want -= w;
	}
	close(fd);
	return want > 0 ? -1 : free_bytes(d);
}

static int unballast(const struct daemon *d)
{
	char path[PATH_MAX + 128];

	snprintf(path, sizeof(path), "%s/ballast", d->view);
	return unlink(path);
}

/* The names in <data>/sub, space-separated, into buf; -1 if unreadable. */
static int list_dir(const struct daemon *d, const char *sub, char *buf, size_t size)
{
	char path[PATH_MAX + 256];
	struct dirent *e;
	size_t n = 0;
	DIR *dir;

	snprintf(path, sizeof(path), "%s/%s", d->view, sub);
	buf[0] = '\0';
	if (!(dir = opendir(path)))
		return -1;
	while ((e = readdir(dir))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		n += (size_t)snprintf(buf + n, n < size ? size - n : 0, "%s%s", n ? " " : "", e->d_name);
	}
	closedir(dir);
	return n < size ? 0 : -1;
}

#define CHECK_EMPTY(d, sub)                                                                                       \
	do {                                                                                                      \
		char names_[2048];                                                                                \
		int rc_ = list_dir(d, sub, names_, sizeof(names_));                                               \
		CHECK_MSG(rc_ == 0 && !names_[0], "%s/ holds: %s", sub, rc_ ? "(unreadable)" : names_);           \
	} while (0)

/* The answer is a problem of this status and type; its detail holds
 * needle when given. */
static void expect_problem_line(struct pc_test *t, int line, const struct be_resp *r, long status, const char *type,
				const char *needle)
{
	json_t *j = be_resp_json(r);
	const char *got = json_string_value(json_object_get(j, "type"));
	const char *detail = json_string_value(json_object_get(j, "detail"));

	if (r->status != status || strcmp(r->ctype, "application/problem+json") || !got || strcmp(got, type) ||
	    json_integer_value(json_object_get(j, "status")) != status || (needle && !(detail && strstr(detail, needle))))
		pc_test_fail(t, __FILE__, line, "expected %ld %s%s%s, got %ld %s: %s", status, type,
			     needle ? " saying " : "", needle ? needle : "", r->status, r->ctype, r->body ? r->body : "");
	json_decref(j);
}

#define EXPECT_PROBLEM(r, status, type, needle) expect_problem_line(t, __LINE__, r, status, type, needle)

/* "/problems/nospace": the type of the error table's row for a full disk */
static const char *nospace_type(void)
{
	static char type[64];

	snprintf(type, sizeof(type), "/problems/%s", pc_status_name(PC_ERR_NOSPACE));
	return type;
}

/* A model upload: the status; its id into id on 200/201. */
static long upload_model(const struct daemon *d, char id[65], struct be_resp *keep)
{
	char path[PATH_MAX];
	size_t len;
	char *onnx;
	struct be_resp r;
	json_t *j;
	long status = -1;

	snprintf(path, sizeof(path), "%s/%s", pc_test_root(), MODEL);
	if (!(onnx = be_read_file(path, &len)))
		return -1;
	if (http(d, "POST", "/v1/models", "application/octet-stream", onnx, len, NULL, NULL, &r) == 0) {
		status = r.status;
		j = be_resp_json(&r);
		if (id && json_is_string(json_object_get(j, "id")))
			snprintf(id, 65, "%s", json_string_value(json_object_get(j, "id")));
		json_decref(j);
	}
	free(onnx);
	if (keep)
		*keep = r;
	else
		free(r.body);
	return status;
}

static long upload_dataset(const struct daemon *d, char id[65], struct be_resp *keep)
{
	struct be_resp r;
	json_t *j;
	long status = -1;

	if (http(d, "POST", "/v1/datasets", NULL, NULL, 0, XS, YS, &r) == 0) {
		status = r.status;
		j = be_resp_json(&r);
		if (id && json_is_string(json_object_get(j, "id")))
			snprintf(id, 65, "%s", json_string_value(json_object_get(j, "id")));
		json_decref(j);
	}
	if (keep)
		*keep = r;
	else
		free(r.body);
	return status;
}

/* POST /v1/jobs: the status, the job id into id on 202. */
static long submit(const struct daemon *d, const char *spec, char *id, size_t size)
{
	struct be_resp r;
	json_t *j;
	long status = -1;

	if (http(d, "POST", "/v1/jobs", "application/json", spec, strlen(spec), NULL, NULL, &r) == 0) {
		status = r.status;
		j = be_resp_json(&r);
		if (json_is_string(json_object_get(j, "id")))
			snprintf(id, size, "%s", json_string_value(json_object_get(j, "id")));
		else
			fprintf(stderr, "  submit: %ld %s\n", r.status, r.body ? r.body : "");
		json_decref(j);
	}
	free(r.body);
	return status;
}

/* The job once it has finished (succeeded, failed or cancelled), within
 * seconds; NULL when it did not. */
static json_t *wait_finished(const struct daemon *d, const char *id, double seconds)
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
			if (st && (!strcmp(st, "succeeded") || !strcmp(st, "failed") || !strcmp(st, "cancelled"))) {
				free(r.body);
				return j;
			}
		}
		json_decref(j);
		free(r.body);
		be_sleep_ms(50);
	}
	return NULL;
}

/* The job failed with the nospace problem (507), its detail naming what. */
static void expect_nospace_job_line(struct pc_test *t, int line, const json_t *job, const char *what)
{
	const json_t *e = json_object_get(job, "error");
	const char *st = json_string_value(json_object_get(job, "status"));
	const char *type = json_string_value(json_object_get(e, "type"));
	const char *detail = json_string_value(json_object_get(e, "detail"));
	char *text = json_dumps(job, JSON_COMPACT);

	if (!st || strcmp(st, "failed") || !type || strcmp(type, nospace_type()) ||
	    json_integer_value(json_object_get(e, "status")) != 507 || !detail || !strstr(detail, what))
		pc_test_fail(t, __FILE__, line, "expected a job failed with %s (507) about the %s: %s", nospace_type(),
			     what, text ? text : "?");
	free(text);
}

#define EXPECT_NOSPACE_JOB(job, what) expect_nospace_job_line(t, __LINE__, job, what)

/* A small analysis, to show the daemon still runs jobs to success. */
static void expect_job_succeeds(struct pc_test *t, const struct daemon *d, const char *model, const char *ds)
{
	char spec[512], id[64] = "", path[128];
	struct be_resp r;
	json_t *j;

	snprintf(spec, sizeof(spec),
		 "{\"model\": \"%s\", \"dataset\": \"%s\", \"limit\": 8, \"corruption\": {\"norms\": [\"l2\"], "
		 "\"epsilons\": [0.1], \"random_trials\": 1, \"groups\": [\"model\"]}}",
		 model, ds);
	CHECK_INT(submit(d, spec, id, sizeof(id)), 202);
	j = wait_finished(d, id, 120);
	CHECK_MSG(j && !strcmp(json_string_value(json_object_get(j, "status")), "succeeded"),
		  "the job after the full disk did not succeed");
	json_decref(j);
	snprintf(path, sizeof(path), "/v1/jobs/%s/report", id);
	CHECK(get(d, path, &r) == 0 && r.status == 200);
	free(r.body);
}

/* An upload that runs out of space half-way: a 438 KB model and a 50 KB
 * dataset into 32 KiB. */
TEST(diskfull_upload)
{
	struct daemon d;
	char model[65] = "", ds[65] = "";
	struct be_resp r;
	long long left;
	json_t *j;

	if (!setup(t, &d, 8))
		return;
	left = ballast(&d, 32 << 10);
	REQUIRE_MSG(left >= 0 && left < (64 << 10), "the ballast left %lld bytes free", left);

	CHECK_INT(upload_model(&d, NULL, &r), 507);
	EXPECT_PROBLEM(&r, 507, nospace_type(), "No space left on device");
	free(r.body);
	CHECK_INT(upload_dataset(&d, NULL, &r), 507);
	EXPECT_PROBLEM(&r, 507, nospace_type(), "No space left on device");
	free(r.body);
	/* nothing half-written: no temp file, no blob, no record */
	CHECK_EMPTY(&d, "tmp");
	CHECK_EMPTY(&d, "models");
	CHECK_EMPTY(&d, "datasets");
	CHECK_MSG(free_bytes(&d) >= left, "the failed uploads kept %lld bytes", left - free_bytes(&d));
	REQUIRE(get(&d, "/v1/models", &r) == 0);
	j = be_resp_json(&r);
	CHECK(r.status == 200 && json_array_size(json_object_get(j, "items")) == 0);
	json_decref(j);
	free(r.body);
	REQUIRE(get(&d, "/v1/datasets", &r) == 0);
	j = be_resp_json(&r);
	CHECK(r.status == 200 && json_array_size(json_object_get(j, "items")) == 0);
	json_decref(j);
	free(r.body);

	/* room again: the same uploads are new (201), and a job runs */
	REQUIRE(unballast(&d) == 0);
	CHECK_INT(upload_model(&d, model, NULL), 201);
	CHECK_INT(upload_dataset(&d, ds, NULL), 201);
	REQUIRE(model[0] && ds[0]);
	CHECK_EMPTY(&d, "tmp");
	expect_job_succeeds(t, &d, model, ds);
	teardown(t, &d);
}

/* A report of about 1.8 MB (3,072 results) into 512 KiB: every write
 * before it (the job's row, its heartbeats) fits, the report does not. */
TEST(diskfull_report)
{
	struct daemon d;
	char model[65] = "", ds[65] = "", spec[2048], eps[1024], job[64] = "", path[128], names[2048];
	struct be_resp r;
	long long left;
	json_t *j;
	size_t n = 0;

	if (!setup(t, &d, 8))
		return;
	REQUIRE(upload_model(&d, model, NULL) == 201 && upload_dataset(&d, ds, NULL) == 201);
	for (int i = 1; i <= 64; i++)
		n += (size_t)snprintf(eps + n, sizeof(eps) - n, "%s%g", i > 1 ? "," : "", 0.01 * i);
	snprintf(spec, sizeof(spec),
		 "{\"model\": \"%s\", \"dataset\": \"%s\", \"limit\": 2, \"corruption\": {\"norms\": [\"l2\", \"l1\", "
		 "\"linf\", 3, 4, 5, 6, 7], \"epsilons\": [%s], \"random_trials\": 0, \"groups\": [\"tensor\"]}}",
		 model, ds, eps);
	left = ballast(&d, 512 << 10);
	REQUIRE_MSG(left >= 0 && left < (544 << 10), "the ballast left %lld bytes free", left);
	REQUIRE(submit(&d, spec, job, sizeof(job)) == 202);
	j = wait_finished(&d, job, 120);
	REQUIRE_MSG(j, "job %s did not finish within 120 s", job);
	EXPECT_NOSPACE_JOB(j, "report");
	json_decref(j);
	/* no report, whole or partial */
	snprintf(path, sizeof(path), "/v1/jobs/%s/report", job);
	REQUIRE(get(&d, path, &r) == 0);
	EXPECT_PROBLEM(&r, 409, "/problems/conflict", "has no report");
	free(r.body);
	CHECK_EMPTY(&d, "tmp");
	CHECK_EMPTY(&d, "artifacts");
	CHECK(list_dir(&d, "", names, sizeof(names)) == 0);
	fprintf(stderr, "  diskfull_report: the data directory holds: %s\n", names);

	/* it serves on, and runs the next job once there is room */
	REQUIRE(get(&d, "/healthz", &r) == 0);
	CHECK_INT(r.status, 200);
	free(r.body);
	REQUIRE(unballast(&d) == 0);
	expect_job_succeeds(t, &d, model, ds);
	teardown(t, &d);
}

/* The mlp's checkpoint is ~1.3 MB (weights and two moments); 1.5 of them
 * are left free, so the first checkpoint fits and the second cannot. */
TEST(diskfull_checkpoint)
{
	struct daemon d;
	char model[65] = "", ds[65] = "", spec[2048], job[64] = "", sub[128], names[2048], ckpt[PATH_MAX + 256];
	struct pc_graph *g = NULL;
	struct pc_trainer *tr = NULL;
	struct pc_train_opts to;
	struct pc_error err = {0};
	int64_t state_floats, steps = 0, ckpt_bytes;
	float *state = NULL;
	json_t *curve = NULL, *j;
	struct be_resp r;
	struct stat st;
	long long left;
	char fix[PATH_MAX];

	/* the size of the state a checkpoint of this model holds, as the job's
	 * trainer counts it */
	snprintf(fix, sizeof(fix), "%s/%s", pc_test_root(), MODEL);
	REQUIRE(pc_onnx_load_file(fix, &g, &err) == PC_OK);
	pc_train_opts_default(&to);
	REQUIRE(pc_trainer_new(g, &to, 1, &tr, &err) == PC_OK);
	state_floats = pc_trainer_state_size(tr);
	pc_trainer_free(tr);
	pc_graph_free(g);
	ckpt_bytes = 40 + state_floats * 4; /* the header, the state; the curve is a few hundred bytes */

	if (!setup(t, &d, 16))
		return;
	REQUIRE(upload_model(&d, model, NULL) == 201 && upload_dataset(&d, ds, NULL) == 201);
	snprintf(spec, sizeof(spec),
		 "{\"kind\": \"harden\", \"model\": \"%s\", \"dataset\": \"%s\", \"limit\": 8, \"corruption\": "
		 "{\"norms\": [\"l2\"], \"epsilons\": [0.5], \"random_trials\": 1, \"groups\": [\"model\"]}, "
		 "\"training\": {\"dataset\": \"%s\", \"epochs\": 4, \"batch_size\": 32}}",
		 model, ds, ds);
	left = ballast(&d, ckpt_bytes * 3 / 2);
	REQUIRE_MSG(left >= 0 && left < ckpt_bytes * 3 / 2 + (32 << 10), "the ballast left %lld bytes free", left);
	REQUIRE(submit(&d, spec, job, sizeof(job)) == 202);
	j = wait_finished(&d, job, 180);
	REQUIRE_MSG(j, "job %s did not finish within 180 s", job);
	EXPECT_NOSPACE_JOB(j, "checkpoint");
	json_decref(j);

	/* the artifacts: the first checkpoint alone, no temp file, no model */
	snprintf(sub, sizeof(sub), "artifacts/%s", job);
	CHECK(list_dir(&d, sub, names, sizeof(names)) == 0);
	CHECK_MSG(!strcmp(names, "checkpoint.bin"), "%s holds: %s", sub, names);
	/* intact and loadable: the state the trainer expects, one epoch's curve */
	snprintf(ckpt, sizeof(ckpt), "%s/%s/checkpoint.bin", d.view, sub);
	CHECK(stat(ckpt, &st) == 0 && st.st_size > ckpt_bytes && st.st_size < ckpt_bytes + 4096);
	CHECK_INT(pcd_ckpt_read(ckpt, state_floats, &state, &steps, &curve), 1);
	CHECK(state && json_is_array(curve) && json_array_size(curve) == 1 && steps == 2);
	free(state);
	json_decref(curve);
	CHECK_EMPTY(&d, "tmp");
	/* the one model is the upload: nothing hardened was registered */
	REQUIRE(get(&d, "/v1/models", &r) == 0);
	j = be_resp_json(&r);
	CHECK_INT(json_array_size(json_object_get(j, "items")), 1);
	CHECK(!strcmp(json_string_value(json_object_get(json_array_get(json_object_get(j, "items"), 0), "id")) ?: "",
		      model));
	json_decref(j);
	free(r.body);
	CHECK(list_dir(&d, "models", names, sizeof(names)) == 0);
	CHECK_MSG(strlen(names) == 64 + 5, "models/ holds: %s", names);

	REQUIRE(get(&d, "/healthz", &r) == 0);
	CHECK_INT(r.status, 200);
	free(r.body);
	teardown(t, &d);
}
