/* kill -9 at 50 random points (issue 12, "Faults").
 *
 *   kill9_scenario  one scenario (a model upload, a dataset sent slowly,
 *                   an analyze job and a harden job with checkpoints) run
 *                   twice on fresh data directories: once uninterrupted,
 *                   once with paracorrd killed by SIGKILL at 50 points and
 *                   restarted on the same directory each time, the client
 *                   resuming (an upload without an answer is sent again, a
 *                   job submission again with the same Idempotency-Key).
 *                   Then: every acknowledged upload is on disk byte for
 *                   byte; no temp file outlives a restart; each job has
 *                   one record, succeeded, logged "succeeded" once; the
 *                   reports (timing fields aside, listed in
 *                   timing_fields) and the hardened model equal the
 *                   uninterrupted run's.
 *
 * Where the points go: the uninterrupted run records its timeline as
 * segments (an upload, a submission, a job's progress phase, "done") and
 * their start times; 45 points are drawn uniformly over its duration and 5
 * over its uploads, from a seeded PRNG (the seed is printed;
 * PARACORR_KILL9_SEED replays one). A point becomes (segment, offset into
 * it), and the interrupted run kills when it is that far into that
 * segment, or past it. A point is thus a state of the work, not a moment
 * of the clock: after a restart the run goes on until it reaches the next
 * point, so a harden job resumed from its checkpoint gets killed again in
 * a later epoch rather than never getting past the first.
 *
 * This file drives the daemon with its own small libcurl client rather
 * than test_http.c's: every call here must survive the daemon vanishing
 * under it (wait for the restart, send again) and one body is paced. */
#include <arpa/inet.h>
#include <curl/curl.h>
#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "be_util.h"
#include "paracorr/sys.h"
#include "test.h"

#define MODEL  FIX "mlp_op13.onnx"

#define N_KILLS	       50
#define N_UPLOAD_KILLS 5 /* of N_KILLS, drawn over the uploads only */
#define MAX_SEGS       256
#define SEG_NAME       112
#define PACE_CHUNK     (32 << 10) /* the slow upload: this many bytes ... */
#define PACE_US	       8000	  /* ... then this long a pause */
#define CALL_WAIT_S    60	  /* longest wait for a restart before a call gives up */
#define JOBS_WAIT_S    240	  /* longest wait for both jobs */

/* The studies: small, but each phase long enough to be caught in. */
#define ANALYZE_SPEC                                                                                                   \
	"{\"model\": \"%s\", \"dataset\": \"%s\", \"limit\": 1000, \"batch_size\": 100, \"seed\": 3, "                 \
	"\"corruption\": {\"norms\": [\"l2\"], \"epsilons\": [0.1, 1], \"random_trials\": 6, \"groups\": "             \
	"[\"model\", \"tensor\"]}}"
#define HARDEN_SPEC                                                                                                    \
	"{\"model\": \"%s\", \"dataset\": \"%s\", \"kind\": \"harden\", \"limit\": 300, \"seed\": 4, "                 \
	"\"corruption\": {\"norms\": [\"l2\"], \"epsilons\": [0.5], \"random_trials\": 1, \"groups\": "                \
	"[\"model\"]}, \"training\": {\"dataset\": \"%s\", \"limit\": 1000, \"epochs\": 4, \"batch_size\": 50, "       \
	"\"schedule\": \"cosine\", \"act\": {\"epsilon\": 0.3}}}"

/* The fields of a report that measure the run rather than the result
 * (api/report.schema.json: "absent with --reproducible"; the per-epoch
 * seconds of a harden report). "*" is any array element. */
static const char *const timing_fields[] = {
    "/timing/seconds",
    "/before/timing/seconds",
    "/after/timing/seconds",
    "/timing/phases",
    "/before/timing/phases",
    "/after/timing/phases",
    "/training/epochs/*/seconds",
};

struct seg {
	char name[SEG_NAME];
	double start; /* seconds since the run began */
};

struct target {
	int seg;
	double off;
	double t; /* on the reference timeline, for sorting */
};

/* One scenario's run: the daemon, where the client is, and (interrupted
 * run) the kill points. mu guards everything below it. */
struct run {
	char dir[1024]; /* data/ and daemon.log */
	pthread_mutex_t mu;
	pthread_cond_t restarted;
	pid_t pid;
	int port;
	unsigned gen; /* restarts so far */
	int broken;   /* the daemon could not be restarted */
	char cur[SEG_NAME];
	double entered;
	double t0;
	int recording; /* the reference: segments are appended */
	struct seg segs[MAX_SEGS];
	int n_segs;
	/* interrupted run */
	const struct run *ref;
	struct target targets[N_KILLS];
	int n_targets, next_target;
	int client_done;
	int kills, kills_upload, kills_submit, kills_analyze, kills_harden, kills_after;
	int stale_tmp; /* temp files a restart left behind */
	char stale_path[PATH_MAX];
	int restart_failed;
	int tries; /* the sends of the client's last call */
};

static void sleep_us(long us)
{
	struct timespec ts = {us / 1000000, (us % 1000000) * 1000L};

	nanosleep(&ts, NULL);
}

static uint64_t splitmix64(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static double uniform01(uint64_t *s)
{
	return (double)(splitmix64(s) >> 11) * (1.0 / 9007199254740992.0);
}

/* --- the client -------------------------------------------------------------- */

/* A body curl reads in paced chunks, so that the daemon can die while it
 * streams in. */
struct paced {
	const char *buf;
	size_t len, pos;
};

static size_t paced_read(char *out, size_t size, size_t n, void *arg)
{
	struct paced *p = arg;
	size_t want = size * n, left = p->len - p->pos;

	if (want > PACE_CHUNK)
		want = PACE_CHUNK;
	if (want > left)
		want = left;
	memcpy(out, p->buf + p->pos, want);
	p->pos += want;
	if (want)
		sleep_us(PACE_US);
	return want;
}

static int paced_seek(void *arg, curl_off_t off, int origin)
{
	struct paced *p = arg;

	if (origin != SEEK_SET || off < 0 || (size_t)off > p->len)
		return CURL_SEEKFUNC_FAIL;
	p->pos = (size_t)off;
	return CURL_SEEKFUNC_OK;
}

/* A request's body: raw bytes, or a dataset's two parts (inputs paced). */
struct body {
	const char *ctype;
	const char *data;
	size_t len;
	const char *inputs, *labels; /* multipart when inputs is set */
	size_t inputs_len, labels_len;
};

/* One attempt at base; 0 when answered (r->status set). */
static int http_once(const char *base, const char *method, const char *path, const struct body *b, const char *extra,
		     struct be_resp *r)
{
	const char *headers[] = {extra, NULL};
	struct paced pin = {0};
	struct be_part parts[2] = {{.name = "inputs", .filename = "inputs.idx", .read = paced_read, .seek = paced_seek,
				    .arg = &pin},
				   {.name = "labels", .filename = "labels.idx"}};
	struct be_req q = {.method = method, .url = base, .path = path, .headers = headers};

	if (b && b->inputs) {
		pin.buf = b->inputs;
		pin.len = parts[0].len = b->inputs_len;
		parts[1].data = b->labels;
		parts[1].len = b->labels_len;
		q.parts = parts;
		q.n_parts = 2;
	} else if (b) {
		q.ctype = b->ctype;
		q.body = b->data;
		q.len = b->len;
	}
	return be_request(&q, r);
}

static void base_of(int port, char *buf, size_t size)
{
	snprintf(buf, size, "http://127.0.0.1:%d", port);
}

static void seg_enter(struct run *run, const char *name);

/* A call that outlives kills: without an answer it waits for the next
 * restart and sends again (the reference run has no restarts: one try).
 * seg (may be NULL): the segment each attempt starts afresh, so that the
 * points inside it count from the send, as in the reference. 0 when
 * answered. */
static int call(struct run *run, const char *seg, const char *method, const char *path, const struct body *b,
		const char *extra, struct be_resp *r)
{
	double t0 = pc_sys_seconds();

	run->tries = 0;
	for (;;) {
		char base[64];
		unsigned gen;

		if (seg)
			seg_enter(run, seg);
		pthread_mutex_lock(&run->mu);
		gen = run->gen;
		base_of(run->port, base, sizeof(base));
		pthread_mutex_unlock(&run->mu);
		run->tries++;
		if (http_once(base, method, path, b, extra, r) == 0)
			return 0;
		if (run->recording)
			return -1;
		pthread_mutex_lock(&run->mu);
		while (run->gen == gen && !run->broken && pc_sys_seconds() - t0 < CALL_WAIT_S) {
			struct timespec until;

			clock_gettime(CLOCK_REALTIME, &until);
			until.tv_sec += 1;
			pthread_cond_timedwait(&run->restarted, &run->mu, &until);
		}
		gen = run->gen != gen;
		pthread_mutex_unlock(&run->mu);
		if (!gen)
			return -1; /* no answer and no kill: the daemon is wedged or gone */
	}
}

/* Where the client is: a new segment of the timeline. */
static void seg_enter(struct run *run, const char *name)
{
	pthread_mutex_lock(&run->mu);
	if (strcmp(run->cur, name)) {
		snprintf(run->cur, sizeof(run->cur), "%s", name);
		run->entered = pc_sys_seconds();
		if (run->recording && run->n_segs < MAX_SEGS) {
			snprintf(run->segs[run->n_segs].name, SEG_NAME, "%s", name);
			run->segs[run->n_segs++].start = run->entered - run->t0;
		}
	}
	pthread_mutex_unlock(&run->mu);
}

/* --- the daemon ---------------------------------------------------------------- */

/* Starts paracorrd on run->dir/data, on run->port when set (a restart
 * keeps its port when it can), and waits for /healthz. Caller holds mu or
 * runs alone. 1 up, 0 failed. */
static int daemon_start(struct run *run)
{
	const char *bin = getenv("PARACORRD_BIN");
	int attempt;

	for (attempt = 0; attempt < 5; attempt++) {
		char port[16], data[PATH_MAX], log[PATH_MAX], base[64];
		int i, st;

		if (attempt > 0 || run->port <= 0)
			run->port = be_free_port();
		snprintf(port, sizeof(port), "%d", run->port);
		snprintf(data, sizeof(data), "%s/data", run->dir);
		snprintf(log, sizeof(log), "%s/daemon.log", run->dir);
		base_of(run->port, base, sizeof(base));
		run->pid = fork();
		if (run->pid < 0)
			return 0;
		if (run->pid == 0) {
			const char *const argv[] = {
			    bin, "--port",    port, "--data-dir",     data,  "--workers",  "1",	 "--threads-per-job",
			    "1", "--poll-ms", "50", "--max-attempts", "100", "--cache-mb", "64", "--min-free-disk-mb",
			    "1", NULL};
			FILE *f = freopen(log, "a", stderr);

			(void)f;
			if (chdir(pc_test_root()) != 0)
				_exit(126);
			execv(bin, (char *const *)argv);
			_exit(127);
		}
		for (i = 0; i < 500; i++) {
			struct be_resp r;

			if (waitpid(run->pid, &st, WNOHANG) == run->pid)
				break; /* died: the port may have been taken */
			if (http_once(base, "GET", "/healthz", NULL, NULL, &r) == 0 && r.status == 200) {
				be_resp_free(&r);
				return 1;
			}
			be_resp_free(&r);
			sleep_us(20000);
		}
		if (i == 500) {
			kill(run->pid, SIGKILL);
			waitpid(run->pid, &st, 0);
		}
	}
	run->pid = 0;
	return 0;
}

/* SIGTERM and the exit status (-1: not within 20 s, then killed). */
static int daemon_stop(struct run *run)
{
	int st = 0, i;

	if (run->pid <= 0)
		return -1;
	kill(run->pid, SIGTERM);
	for (i = 0; i < 2000; i++) {
		if (waitpid(run->pid, &st, WNOHANG) == run->pid)
			break;
		sleep_us(10000);
	}
	if (i == 2000) {
		kill(run->pid, SIGKILL);
		waitpid(run->pid, &st, 0);
		st = -1;
	}
	run->pid = 0;
	return st == -1 ? -1 : WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* Entries of dir/ modified before `before` (CLOCK_REALTIME): what a
 * crash left and recovery should have removed. The first goes to path. */
static int stale_entries(const char *dir, const struct timespec *before, char *path, size_t size)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;

	if (!d)
		return 0;
	while ((e = readdir(d))) {
		char p[PATH_MAX];
		struct stat st;

		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		if (snprintf(p, sizeof(p), "%s/%s", dir, e->d_name) >= (int)sizeof(p) || lstat(p, &st) != 0)
			continue;
		if (st.st_mtim.tv_sec < before->tv_sec ||
		    (st.st_mtim.tv_sec == before->tv_sec && st.st_mtim.tv_nsec < before->tv_nsec)) {
			if (!n++)
				snprintf(path, size, "%s", p);
		}
	}
	closedir(d);
	return n;
}

/* --- the killer ---------------------------------------------------------------- */

static int seg_index(const struct run *ref, const char *name)
{
	for (int i = 0; i < ref->n_segs; i++)
		if (!strcmp(ref->segs[i].name, name))
			return i;
	return -1;
}

/* Kills the daemon, restarts it on the same directory, and counts where
 * the kill landed. Caller holds mu. */
static void kill_restart(struct run *run)
{
	char tmp[PATH_MAX];
	struct timespec spawned;
	int st, n;

	kill(run->pid, SIGKILL);
	waitpid(run->pid, &st, 0);
	run->kills++;
	if (!strncmp(run->cur, "upload", 6))
		run->kills_upload++;
	else if (!strncmp(run->cur, "submit", 6))
		run->kills_submit++;
	else if (!strncmp(run->cur, "analyze", 7))
		run->kills_analyze++;
	else if (!strncmp(run->cur, "harden", 6))
		run->kills_harden++;
	else
		run->kills_after++;
	clock_gettime(CLOCK_REALTIME, &spawned);
	if (!daemon_start(run)) {
		run->broken = 1;
		run->restart_failed = 1;
		return;
	}
	/* what the dead daemon was writing is gone once the new one is up
	 * (anything newer is the new one's) */
	snprintf(tmp, sizeof(tmp), "%s/data/tmp", run->dir);
	if ((n = stale_entries(tmp, &spawned, run->stale_tmp ? tmp : run->stale_path, sizeof(run->stale_path))))
		run->stale_tmp += n;
	run->gen++;
	/* the position is unknown until the client looks again */
	snprintf(run->cur, sizeof(run->cur), "restarted");
	run->entered = pc_sys_seconds();
	pthread_cond_broadcast(&run->restarted);
}

static void *killer_main(void *arg)
{
	struct run *run = arg;

	pthread_mutex_lock(&run->mu);
	while (run->next_target < run->n_targets && !run->broken) {
		const struct target *tg = &run->targets[run->next_target];
		/* once the client is done (or gave up) it no longer says where it
		 * is: every point left is past, and kills the finished state */
		int at = run->client_done ? run->ref->n_segs - 1 : seg_index(run->ref, run->cur);

		if (at >= 0 && (at > tg->seg || (at == tg->seg && pc_sys_seconds() - run->entered >= tg->off))) {
			kill_restart(run);
			run->next_target++;
			continue;
		}
		pthread_mutex_unlock(&run->mu);
		sleep_us(2000);
		pthread_mutex_lock(&run->mu);
	}
	pthread_mutex_unlock(&run->mu);
	return NULL;
}

/* --- the scenario ---------------------------------------------------------------- */

struct files {
	char *model, *inputs, *labels;
	size_t model_len, inputs_len, labels_len;
};

/* What a run leaves to compare. */
struct outcome {
	char model[65], ds[65], analyze[64], harden[64];
	json_t *rep_analyze, *rep_harden;
	char *hardened;
	size_t hardened_len;
	char hardened_id[65];
	int attempts_analyze, attempts_harden;
	double seconds;
};

static int id_of(const struct be_resp *r, char *id, size_t size)
{
	json_t *j = r->body ? json_loadb(r->body, r->len, 0, NULL) : NULL;
	const char *s = json_string_value(json_object_get(j, "id"));

	if (s)
		snprintf(id, size, "%s", s);
	json_decref(j);
	return s != NULL;
}

/* A phase seen in an attempt, counted so that a name a study repeats (a
 * harden job's before and after studies) gives distinct segments. */
struct phase_count {
	char name[64];
	int n;
};

/* Polls both jobs until they have succeeded, entering a segment per job
 * phase. 1 when both succeeded. */
static int wait_jobs(struct pc_test *t, struct run *run, struct outcome *o)
{
	const char *ids[2] = {o->analyze, o->harden}, *kinds[2] = {"analyze", "harden"};
	struct phase_count pc[16];
	int n_pc = 0, k = 0, last_attempts = -1;
	unsigned last_gen = ~0u;
	char last_phase[64] = "";
	double t0 = pc_sys_seconds();

	while (k < 2) {
		char path[128], name[SEG_NAME];
		struct be_resp r;
		json_t *j;
		const char *st, *ph;
		int attempts;
		unsigned gen;

		if (pc_sys_seconds() - t0 > JOBS_WAIT_S) {
			pc_test_fail(t, __FILE__, __LINE__, "the jobs did not finish within %d s", JOBS_WAIT_S);
			return 0;
		}
		snprintf(path, sizeof(path), "/v1/jobs/%s", ids[k]);
		if (call(run, NULL, "GET", path, NULL, NULL, &r) != 0 || r.status != 200) {
			pc_test_fail(t, __FILE__, __LINE__, "GET %s: %ld", path, r.status);
			be_resp_free(&r);
			return 0;
		}
		pthread_mutex_lock(&run->mu);
		gen = run->gen;
		pthread_mutex_unlock(&run->mu);
		j = json_loadb(r.body, r.len, 0, NULL);
		be_resp_free(&r);
		st = json_string_value(json_object_get(j, "status"));
		ph = json_string_value(json_object_get(json_object_get(j, "progress"), "phase"));
		attempts = (int)json_integer_value(json_object_get(j, "attempts"));
		if (!st || !strcmp(st, "failed") || !strcmp(st, "cancelled")) {
			char *text = json_dumps(j, JSON_COMPACT);
			pc_test_fail(t, __FILE__, __LINE__, "the %s job ended %s: %s", kinds[k], st ? st : "?",
				     text ? text : "");
			free(text);
			json_decref(j);
			return 0;
		}
		if (!strcmp(st, "succeeded")) {
			if (k == 0)
				o->attempts_analyze = attempts;
			else
				o->attempts_harden = attempts;
			json_decref(j);
			k++;
			n_pc = 0;
			last_phase[0] = '\0';
			continue;
		}
		if (gen != last_gen || attempts != last_attempts) {
			/* a new attempt counts its phases afresh */
			n_pc = 0;
			last_phase[0] = '\0';
			last_gen = gen;
			last_attempts = attempts;
		}
		if (!strcmp(st, "running") && ph) {
			int i;

			if (strcmp(ph, last_phase)) {
				snprintf(last_phase, sizeof(last_phase), "%s", ph);
				for (i = 0; i < n_pc && strcmp(pc[i].name, ph); i++)
					;
				if (i == n_pc && n_pc < 16) {
					snprintf(pc[n_pc].name, sizeof(pc[n_pc].name), "%s", ph);
					pc[n_pc++].n = 0;
				}
				if (i < 16)
					pc[i].n++;
			}
			for (i = 0; i < n_pc && strcmp(pc[i].name, ph); i++)
				;
			snprintf(name, sizeof(name), "%s: %s #%d", kinds[k], ph, i < n_pc ? pc[i].n : 0);
		} else {
			snprintf(name, sizeof(name), "%s: %s", kinds[k], st);
		}
		seg_enter(run, name);
		json_decref(j);
		sleep_us(15000);
	}
	return 1;
}

/* An upload into a fresh data directory answered at its first send is new
 * content: 201. After a kill it was sent again, and the killed send may
 * have stored it before the daemon died: then 200, otherwise 201. */
static int upload_status_ok(const struct run *run, long status)
{
	return status == 201 || (run->tries > 1 && status == 200);
}

/* Uploads, submissions, the wait, then the reports and the model. */
static int scenario(struct pc_test *t, struct run *run, const struct files *f, struct outcome *o)
{
	struct body b = {0};
	struct be_resp r;
	char spec[2048];
	double t0 = pc_sys_seconds();
	int ok = 0;

	memset(o, 0, sizeof(*o));
	run->t0 = pc_sys_seconds();
	b.ctype = "application/octet-stream";
	b.data = f->model;
	b.len = f->model_len;
	if (call(run, "upload model", "POST", "/v1/models", &b, NULL, &r) != 0 || !upload_status_ok(run, r.status) ||
	    !id_of(&r, o->model, sizeof(o->model))) {
		pc_test_fail(t, __FILE__, __LINE__, "model upload: %ld %s", r.status, r.body ? r.body : "(no answer)");
		goto out;
	}
	be_resp_free(&r);

	memset(&b, 0, sizeof(b));
	b.inputs = f->inputs;
	b.inputs_len = f->inputs_len;
	b.labels = f->labels;
	b.labels_len = f->labels_len;
	if (call(run, "upload dataset", "POST", "/v1/datasets", &b, NULL, &r) != 0 || !upload_status_ok(run, r.status) ||
	    !id_of(&r, o->ds, sizeof(o->ds))) {
		pc_test_fail(t, __FILE__, __LINE__, "dataset upload: %ld %s", r.status,
			     r.body ? r.body : "(no answer)");
		goto out;
	}
	be_resp_free(&r);

	memset(&b, 0, sizeof(b));
	snprintf(spec, sizeof(spec), ANALYZE_SPEC, o->model, o->ds);
	b.ctype = "application/json";
	b.data = spec;
	b.len = strlen(spec);
	if (call(run, "submit analyze", "POST", "/v1/jobs", &b, "Idempotency-Key: kill9-analyze", &r) != 0 ||
	    r.status != 202 || !id_of(&r, o->analyze, sizeof(o->analyze))) {
		pc_test_fail(t, __FILE__, __LINE__, "analyze submission: %ld %s", r.status,
			     r.body ? r.body : "(no answer)");
		goto out;
	}
	be_resp_free(&r);

	snprintf(spec, sizeof(spec), HARDEN_SPEC, o->model, o->ds, o->ds);
	b.len = strlen(spec);
	if (call(run, "submit harden", "POST", "/v1/jobs", &b, "Idempotency-Key: kill9-harden", &r) != 0 ||
	    r.status != 202 || !id_of(&r, o->harden, sizeof(o->harden))) {
		pc_test_fail(t, __FILE__, __LINE__, "harden submission: %ld %s", r.status,
			     r.body ? r.body : "(no answer)");
		goto out;
	}
	be_resp_free(&r);

	if (!wait_jobs(t, run, o))
		goto out;
	o->seconds = pc_sys_seconds() - t0;
	seg_enter(run, "done");
	ok = 1;
out:
	be_resp_free(&r);
	pthread_mutex_lock(&run->mu);
	run->client_done = 1;
	pthread_mutex_unlock(&run->mu);
	return ok;
}

/* After the scenario (and its kills): the reports and the model. */
static int collect(struct pc_test *t, struct run *run, struct outcome *o)
{
	struct be_resp r;
	char path[256];
	json_t *j;

	snprintf(path, sizeof(path), "/v1/jobs/%s/report", o->analyze);
	if (call(run, NULL, "GET", path, NULL, NULL, &r) != 0 || r.status != 200)
		goto fail;
	o->rep_analyze = json_loadb(r.body, r.len, 0, NULL);
	be_resp_free(&r);
	snprintf(path, sizeof(path), "/v1/jobs/%s/report", o->harden);
	if (call(run, NULL, "GET", path, NULL, NULL, &r) != 0 || r.status != 200)
		goto fail;
	o->rep_harden = json_loadb(r.body, r.len, 0, NULL);
	be_resp_free(&r);
	snprintf(path, sizeof(path), "/v1/jobs/%s/artifacts/model.onnx", o->harden);
	if (call(run, NULL, "GET", path, NULL, NULL, &r) != 0 || r.status != 200)
		goto fail;
	o->hardened = r.body;
	o->hardened_len = r.len;
	r.body = NULL;
	snprintf(path, sizeof(path), "/v1/jobs/%s", o->harden);
	if (call(run, NULL, "GET", path, NULL, NULL, &r) != 0 || r.status != 200)
		goto fail;
	j = json_loadb(r.body, r.len, 0, NULL);
	{
		const char *link = json_string_value(json_object_get(json_object_get(j, "links"), "hardened_model"));
		const char *slash = link ? strrchr(link, '/') : NULL;
		snprintf(o->hardened_id, sizeof(o->hardened_id), "%s", slash ? slash + 1 : "");
	}
	json_decref(j);
	be_resp_free(&r);
	return o->rep_analyze && o->rep_harden;
fail:
	pc_test_fail(t, __FILE__, __LINE__, "GET %s: %ld", path, r.status);
	be_resp_free(&r);
	return 0;
}

/* --- the checks ---------------------------------------------------------------- */

/* Deletes the member a pointer names ("*": every element of an array). */
static void del_pointer(json_t *j, const char *ptr)
{
	char head[128];
	const char *rest;
	size_t n;

	if (!j || *ptr != '/')
		return;
	ptr++;
	rest = strchr(ptr, '/');
	n = rest ? (size_t)(rest - ptr) : strlen(ptr);
	snprintf(head, sizeof(head), "%.*s", (int)n, ptr);
	if (!rest) {
		json_object_del(j, head);
	} else if (!strcmp(head, "*") && json_is_array(j)) {
		size_t i;
		json_t *e;
		json_array_foreach(j, i, e) del_pointer(e, rest);
	} else {
		del_pointer(json_object_get(j, head), rest);
	}
}

static void strip_timing(json_t *rep)
{
	for (size_t i = 0; i < sizeof(timing_fields) / sizeof(timing_fields[0]); i++)
		del_pointer(rep, timing_fields[i]);
}

/* The first place a and b differ, as a JSON pointer into where; 0 when
 * equal. Field by field, so that a failure names the field. */
static int json_diff(const json_t *a, const json_t *b, char *where, size_t size)
{
	size_t len = strlen(where);

	if (json_typeof(a) != json_typeof(b))
		return 1;
	if (json_is_object(a)) {
		const char *k;
		json_t *v;

		if (json_object_size(a) != json_object_size(b))
			return 1;
		json_object_foreach((json_t *)a, k, v)
		{
			snprintf(where + len, size - len, "/%s", k);
			if (!json_object_get(b, k) || json_diff(v, json_object_get(b, k), where, size))
				return 1;
		}
		where[len] = '\0';
		return 0;
	}
	if (json_is_array(a)) {
		size_t i;
		json_t *v;

		if (json_array_size(a) != json_array_size(b))
			return 1;
		json_array_foreach((json_t *)a, i, v)
		{
			snprintf(where + len, size - len, "/%zu", i);
			if (json_diff(v, json_array_get(b, i), where, size))
				return 1;
		}
		where[len] = '\0';
		return 0;
	}
	return !json_equal((json_t *)a, (json_t *)b);
}

static int file_equals(const char *path, const char *want, size_t want_len)
{
	size_t len;
	char *got = be_read_file(path, &len);
	int eq = got && len == want_len && !memcmp(got, want, len);

	free(got);
	return eq;
}

/* The first N_SAMPLES items of a gzip IDX file as a plain IDX file (its
 * count rewritten): a dataset large enough to be killed in mid-upload, and
 * small enough that each restarted job loads it quickly. */
#define N_SAMPLES 2000

static char *idx_head(const char *path, size_t header, size_t item, size_t *len)
{
	gzFile g = gzopen(path, "rb");
	size_t n = header + (size_t)N_SAMPLES * item;
	char *buf = g ? malloc(n) : NULL;

	if (!buf || gzread(g, buf, (unsigned)n) != (int)n) {
		free(buf);
		buf = NULL;
	} else {
		buf[4] = (char)((N_SAMPLES >> 24) & 0xff);
		buf[5] = (char)((N_SAMPLES >> 16) & 0xff);
		buf[6] = (char)((N_SAMPLES >> 8) & 0xff);
		buf[7] = (char)(N_SAMPLES & 0xff);
		*len = n;
	}
	if (g)
		gzclose(g);
	return buf;
}

/* The names in dir, sorted, joined by spaces into buf. */
static const char *dir_names(const char *dir, char *buf, size_t size)
{
	char names[16][256];
	int n = 0;
	DIR *d = opendir(dir);
	struct dirent *e;

	buf[0] = '\0';
	if (!d)
		return buf;
	while ((e = readdir(d)) && n < 16)
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
			snprintf(names[n++], sizeof(names[0]), "%s", e->d_name);
	closedir(d);
	qsort(names, (size_t)n, sizeof(names[0]), (int (*)(const void *, const void *))strcmp);
	for (int i = 0; i < n; i++)
		snprintf(buf + strlen(buf), size - strlen(buf), "%s%s", i ? " " : "", names[i]);
	return buf;
}

/* Lines of path holding both a and b. */
static int count_lines(const char *path, const char *a, const char *b)
{
	FILE *f = fopen(path, "r");
	char line[4096];
	int n = 0;

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (strstr(line, a) && (!b || strstr(line, b)))
			n++;
	fclose(f);
	return n;
}

/* What must hold after a run, interrupted or not: the uploads on disk
 * byte for byte and nothing else there, one record per job, one
 * "succeeded" per job in the log. */
static void check_state(struct pc_test *t, struct run *run, const struct files *f, const struct outcome *o)
{
	char path[PATH_MAX], want[1024], got[1024], log[PATH_MAX], needle[128];
	struct be_resp r;
	json_t *j;
	const char *ids[2] = {o->analyze, o->harden};

	snprintf(path, sizeof(path), "%s/data/models/%s.onnx", run->dir, o->model);
	CHECK_MSG(file_equals(path, f->model, f->model_len), "the model on disk differs from the upload: %s", path);
	snprintf(path, sizeof(path), "%s/data/datasets/%s/inputs", run->dir, o->ds);
	CHECK_MSG(file_equals(path, f->inputs, f->inputs_len), "the dataset's inputs differ from the upload: %s", path);
	snprintf(path, sizeof(path), "%s/data/datasets/%s/labels", run->dir, o->ds);
	CHECK_MSG(file_equals(path, f->labels, f->labels_len), "the dataset's labels differ from the upload: %s", path);
	snprintf(path, sizeof(path), "%s/data/models/%s.onnx", run->dir, o->hardened_id);
	CHECK_MSG(file_equals(path, o->hardened, o->hardened_len),
		  "the registered hardened model differs from the artifact");

	/* nothing half-written or left over anywhere */
	snprintf(path, sizeof(path), "%s/data/tmp", run->dir);
	CHECK_MSG(!strcmp(dir_names(path, got, sizeof(got)), ""), "left in tmp/: %s", got);
	snprintf(path, sizeof(path), "%s/data/models", run->dir);
	if (strcmp(o->model, o->hardened_id) < 0)
		snprintf(want, sizeof(want), "%s.onnx %s.onnx", o->model, o->hardened_id);
	else
		snprintf(want, sizeof(want), "%s.onnx %s.onnx", o->hardened_id, o->model);
	CHECK_MSG(!strcmp(dir_names(path, got, sizeof(got)), want), "models/ holds %s, expected %s", got, want);
	snprintf(path, sizeof(path), "%s/data/datasets", run->dir);
	CHECK_MSG(!strcmp(dir_names(path, got, sizeof(got)), o->ds), "datasets/ holds %s, expected %s", got, o->ds);
	snprintf(path, sizeof(path), "%s/data/artifacts", run->dir);
	CHECK_MSG(!strcmp(dir_names(path, got, sizeof(got)), o->harden), "artifacts/ holds %s, expected %s", got,
		  o->harden);
	snprintf(path, sizeof(path), "%s/data/artifacts/%s", run->dir, o->harden);
	CHECK_MSG(!strcmp(dir_names(path, got, sizeof(got)), "checkpoint.bin model.onnx"),
		  "the harden job's artifacts are %s", got);

	/* one record per job, per upload */
	REQUIRE(call(run, NULL, "GET", "/v1/jobs?limit=100", NULL, NULL, &r) == 0 && r.status == 200);
	j = json_loadb(r.body, r.len, 0, NULL);
	be_resp_free(&r);
	CHECK_INT(json_array_size(json_object_get(j, "items")), 2);
	for (size_t i = 0; i < json_array_size(json_object_get(j, "items")) && i < 2; i++) {
		json_t *e = json_array_get(json_object_get(j, "items"), i);
		CHECK_MSG(!strcmp(json_string_value(json_object_get(e, "id")), ids[i]), "job %zu is %s, expected %s", i,
			  json_string_value(json_object_get(e, "id")), ids[i]);
		CHECK_MSG(!strcmp(json_string_value(json_object_get(e, "status")), "succeeded"), "job %s is %s", ids[i],
			  json_string_value(json_object_get(e, "status")));
	}
	json_decref(j);
	REQUIRE(call(run, NULL, "GET", "/v1/models?limit=100", NULL, NULL, &r) == 0 && r.status == 200);
	j = json_loadb(r.body, r.len, 0, NULL);
	be_resp_free(&r);
	CHECK_INT(json_array_size(json_object_get(j, "items")), 2);
	json_decref(j);
	REQUIRE(call(run, NULL, "GET", "/v1/datasets?limit=100", NULL, NULL, &r) == 0 && r.status == 200);
	j = json_loadb(r.body, r.len, 0, NULL);
	be_resp_free(&r);
	CHECK_INT(json_array_size(json_object_get(j, "items")), 1);
	json_decref(j);

	/* ran to completion once: the record says succeeded (above), and the
	 * log of every start says so at most once. Not exactly once: a kill
	 * between the store's commit and the log line loses the line, and no
	 * order of the two can be atomic. */
	snprintf(log, sizeof(log), "%s/daemon.log", run->dir);
	for (int i = 0; i < 2; i++) {
		int n;

		snprintf(needle, sizeof(needle), "job=%s ", ids[i]);
		n = count_lines(log, needle, "msg=\"succeeded\"");
		CHECK_MSG(n == 1 || (n == 0 && !run->recording), "job %s logged \"succeeded\" %d times", ids[i], n);
		CHECK_MSG(count_lines(log, needle, "msg=\"failed\"") == 0, "job %s logged \"failed\"", ids[i]);
	}
	CHECK_MSG(count_lines(log, "gave up", NULL) == 0, "a job was given up on (see %s)", log);
}

static void outcome_free(struct outcome *o)
{
	json_decref(o->rep_analyze);
	json_decref(o->rep_harden);
	free(o->hardened);
	memset(o, 0, sizeof(*o));
}

static int by_time(const void *a, const void *b)
{
	double x = ((const struct target *)a)->t, y = ((const struct target *)b)->t;

	return x < y ? -1 : x > y;
}

/* The kill points on the reference's timeline, as (segment, offset). */
static void draw_targets(const struct run *ref, uint64_t seed, struct target *tg, int *n)
{
	double end = ref->segs[ref->n_segs - 1].start, uploads = 0;
	uint64_t s = seed;
	int i;

	for (i = 0; i < ref->n_segs; i++)
		if (!strcmp(ref->segs[i].name, "submit analyze"))
			uploads = ref->segs[i].start;
	for (*n = 0; *n < N_KILLS; (*n)++) {
		double span = *n < N_UPLOAD_KILLS ? uploads : end, t = uniform01(&s) * span;

		for (i = 0; i + 1 < ref->n_segs && ref->segs[i + 1].start <= t; i++)
			;
		tg[*n].seg = i;
		tg[*n].off = t - ref->segs[i].start;
		tg[*n].t = t;
	}
	qsort(tg, (size_t)*n, sizeof(*tg), by_time);
}

static int run_init(struct pc_test *t, struct run *run)
{
	memset(run, 0, sizeof(*run));
	pthread_mutex_init(&run->mu, NULL);
	pthread_cond_init(&run->restarted, NULL);
	if (!be_tmpdir(run->dir, sizeof(run->dir))) {
		pc_test_fail(t, __FILE__, __LINE__, "cannot make a temp dir");
		return 0;
	}
	run->t0 = pc_sys_seconds();
	if (!daemon_start(run)) {
		pc_test_fail(t, __FILE__, __LINE__, "the daemon did not come up (see %s/daemon.log)", run->dir);
		return 0;
	}
	return 1;
}

static void run_done(struct run *run, int keep)
{
	if (run->pid > 0) {
		kill(run->pid, SIGKILL);
		waitpid(run->pid, NULL, 0);
		run->pid = 0;
	}
	if (keep)
		fprintf(stderr, "  kept %s for a look\n", run->dir);
	else if (run->dir[0])
		be_rmtree(run->dir);
	pthread_cond_destroy(&run->restarted);
	pthread_mutex_destroy(&run->mu);
}

TEST(kill9_scenario)
{
	static struct run ref, run; /* big: off the stack */
	struct files f = {0};
	struct outcome a = {0}, b = {0};
	const char *seed_env = getenv("PARACORR_KILL9_SEED");
	uint64_t seed;
	pthread_t killer;
	char where[512], root_path[PATH_MAX];
	double t_start = pc_sys_seconds(), t_kill;
	int failures_before = t->failures;

	if (!getenv("PARACORRD_BIN") || !getenv("PARACORRD_BIN")[0]) {
		pc_test_skip(t, "PARACORRD_BIN is not set (make test sets it)");
		return;
	}
	if (access(T10K_X, R_OK) != 0 || access(T10K_Y, R_OK) != 0) {
		pc_test_skip(t, "no Fashion-MNIST under /usr/share/datasets");
		return;
	}
	snprintf(root_path, sizeof(root_path), "%s/%s", pc_test_root(), MODEL);
	REQUIRE((f.model = be_read_file(root_path, &f.model_len)));
	REQUIRE((f.inputs = idx_head(T10K_X, 16, 28 * 28, &f.inputs_len)));
	REQUIRE((f.labels = idx_head(T10K_Y, 8, 1, &f.labels_len)));
	curl_global_init(CURL_GLOBAL_DEFAULT);
	seed = seed_env && *seed_env ? strtoull(seed_env, NULL, 0) : (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
	fprintf(stderr, "  kill9_scenario: seed %llu (PARACORR_KILL9_SEED replays it)\n", (unsigned long long)seed);

	/* the uninterrupted run, its timeline recorded */
	if (!run_init(t, &ref))
		goto out;
	ref.recording = 1;
	if (!scenario(t, &ref, &f, &a) || !collect(t, &ref, &a))
		goto out;
	check_state(t, &ref, &f, &a);
	CHECK_INT(a.attempts_analyze, 1);
	CHECK_INT(a.attempts_harden, 1);
	CHECK_INT(daemon_stop(&ref), 0);
	REQUIRE_MSG(ref.n_segs >= 8 && ref.n_segs < MAX_SEGS, "the reference timeline has %d segments", ref.n_segs);
	fprintf(stderr, "  kill9_scenario: uninterrupted run %.2f s, %d segments:", a.seconds, ref.n_segs);
	for (int i = 0; i < ref.n_segs; i++)
		fprintf(stderr, "%s %.2f %s", i ? "," : "", ref.segs[i].start, ref.segs[i].name);
	fprintf(stderr, "\n");

	/* the same with 50 kills */
	if (!run_init(t, &run))
		goto out;
	run.ref = &ref;
	draw_targets(&ref, seed, run.targets, &run.n_targets);
	t_kill = pc_sys_seconds();
	REQUIRE(pthread_create(&killer, NULL, killer_main, &run) == 0);
	scenario(t, &run, &f, &b);
	pthread_join(killer, NULL);
	CHECK_MSG(!run.restart_failed, "the daemon did not come back after kill %d (see %s/daemon.log)", run.kills,
		  run.dir);
	CHECK_INT(run.kills, N_KILLS);
	CHECK_MSG(!run.stale_tmp, "%d temp files outlived a restart, the first %s", run.stale_tmp, run.stale_path);
	fprintf(stderr,
		"  kill9_scenario: %d kills (uploads %d, submissions %d, analyze job %d, harden job %d, after %d); "
		"attempts analyze %d harden %d; %.2f s\n",
		run.kills, run.kills_upload, run.kills_submit, run.kills_analyze, run.kills_harden, run.kills_after,
		b.attempts_analyze, b.attempts_harden, pc_sys_seconds() - t_kill);
	if (t->failures != failures_before || !collect(t, &run, &b))
		goto out;
	check_state(t, &run, &f, &b);

	/* the same uploads, the same results */
	CHECK_MSG(!strcmp(a.model, b.model) && !strcmp(a.ds, b.ds), "the upload ids differ");
	strip_timing(a.rep_analyze);
	strip_timing(b.rep_analyze);
	strip_timing(a.rep_harden);
	strip_timing(b.rep_harden);
	where[0] = '\0';
	CHECK_MSG(!json_diff(a.rep_analyze, b.rep_analyze, where, sizeof(where)),
		  "the analyze report differs from the uninterrupted run's at %s", where[0] ? where : "/");
	where[0] = '\0';
	CHECK_MSG(!json_diff(a.rep_harden, b.rep_harden, where, sizeof(where)),
		  "the harden report differs from the uninterrupted run's at %s", where[0] ? where : "/");
	CHECK_MSG(a.hardened_len == b.hardened_len && !memcmp(a.hardened, b.hardened, a.hardened_len),
		  "the hardened model differs from the uninterrupted run's (%zu and %zu bytes)", a.hardened_len,
		  b.hardened_len);
	CHECK_MSG(!strcmp(a.hardened_id, b.hardened_id), "the hardened model ids differ");
	CHECK_INT(daemon_stop(&run), 0);
	fprintf(stderr, "  kill9_scenario: %.2f s in all\n", pc_sys_seconds() - t_start);
out:
	run_done(&ref, t->failures != failures_before);
	if (run.dir[0])
		run_done(&run, t->failures != failures_before);
	outcome_free(&a);
	outcome_free(&b);
	free(f.model);
	free(f.inputs);
	free(f.labels);
}
