/* Sharded studies through the store and the worker pool (no HTTP): the
 * parent hands its items to shard jobs that the pool's workers claim, the
 * last one merges, and the report is the unsharded job's byte for byte
 * (the timing aside); cancelling the parent cancels every shard; the
 * store's shard rows move as store.h says, on SQLite and PostgreSQL. */
#include <limits.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "be_util.h"
#include "blobs.h"
#include "job.h"
#include "job_env.h"
#include "paracorr/report.h"
#include "pg_util.h"
#include "store.h"
#include "test.h"
#include "workers.h"

static char *spec_of(const struct job_env *e, const char *shards, const char *rest)
{
	char *s = malloc(2048);

	if (s)
		snprintf(s, 2048, "{\"model\": \"%s\", \"dataset\": \"%s\"%s%s, %s}", e->model, e->dataset,
			 shards ? ", \"shards\": " : "", shards ? shards : "", rest);
	return s;
}

/* model + 6 tensors + 3 layers at 2 sparsities: 20 settings */
#define STUDY                                                                                                          \
	"\"limit\": 96, \"batch_size\": 32, \"seed\": 3, \"corruption\": {\"norms\": [\"l2\"], \"epsilons\": [0.1, "   \
	"1], \"sparsity\": [0, 50], \"random_trials\": 2, \"groups\": [\"model\", \"tensor\", \"layer\"]}"
/* long enough to be cancelled while its shards run */
#define LONG_STUDY                                                                                                     \
	"\"batch_size\": 50, \"seed\": 3, \"corruption\": {\"norms\": [\"l2\", \"linf\"], \"epsilons\": [0.01, "       \
	"0.02, 0.05, 0.1, 0.2, 0.5, 1, 2], \"random_trials\": 200, \"steps\": 20, \"groups\": [\"model\", "            \
	"\"tensor\", \"layer\"]}"

static void cfg_for_tests(struct pcd_workers_cfg *cfg, int workers)
{
	pcd_workers_cfg_default(cfg);
	cfg->n_workers = workers;
	cfg->threads_per_job = 1;
	cfg->poll_ms = 50;
	cfg->timing_seconds = 0;
	cfg->quiet = 1;
}

/* Polls (bounded) until the job is finished; its status, -1 on error. */
static int wait_finished(struct pcd_store *s, const char *id, double seconds)
{
	struct timespec ts = {0, 20 * 1000000L};
	struct pcd_job j;
	int status = -1;

	for (int i = 0; i < (int)(seconds * 50); i++) {
		if (pcd_store_job_get(s, PCD_ALL_TENANTS, id, &j, NULL) != PC_OK)
			return -1;
		status = (int)j.status;
		pcd_job_free(&j);
		if (pcd_job_status_finished((enum pcd_job_status)status))
			return status;
		nanosleep(&ts, NULL);
	}
	return status;
}

/* The report's text without its timing. */
static char *report_of(struct pcd_store *s, const char *id)
{
	char *text = NULL, *out;
	json_t *r;

	if (pcd_store_job_report(s, PCD_ALL_TENANTS, id, &text, NULL))
		return NULL;
	r = json_loads(text, 0, NULL);
	free(text);
	if (!r)
		return NULL;
	json_object_del(r, "timing");
	out = pc_report_dumps(r, JSON_INDENT(2) | JSON_REAL_PRECISION(17));
	json_decref(r);
	return out;
}

static int submit(struct pc_test *t, struct job_env *e, const char *shards, const char *study, struct pcd_job *j)
{
	struct pc_error err = {0};
	char *spec = spec_of(e, shards, study);
	int rc = spec ? pcd_store_job_submit(e->store, "default", 0, "analyze", spec, NULL, NULL, 0, 0, j, NULL, &err)
		      : PC_ERR_NOMEM;

	free(spec);
	if (rc)
		pc_test_fail(t, __FILE__, __LINE__, "submit: %s", err.text);
	return rc == PC_OK;
}

/* The unsharded report and the sharded ones, through one pool of two
 * workers: 3 shards, 1 shard, and 64 (clamped to the 20 items). */
static void sharded_equals_whole(struct pc_test *t, const char *where)
{
	struct job_env e;
	struct pcd_workers_cfg cfg;
	struct pcd_workers *w = NULL;
	struct pcd_job whole, s3, s1, s64;
	struct pc_error err = {0};
	struct pcd_shard *sh = NULL;
	size_t n = 0;
	char *want = NULL, *got;
	int rc = job_env_setup(&e, where);

	if (rc == 1) {
		pc_test_skip(t, "no Fashion-MNIST under /usr/share/datasets");
		return;
	}
	REQUIRE(rc == 0);
	REQUIRE(submit(t, &e, NULL, STUDY, &whole) && submit(t, &e, "3", STUDY, &s3) &&
		submit(t, &e, "1", STUDY, &s1) && submit(t, &e, "64", STUDY, &s64));
	cfg_for_tests(&cfg, 2);
	REQUIRE(pcd_workers_start(&cfg, e.store, e.blobs, &w, &err) == PC_OK);
	pcd_workers_notify(w);
	CHECK_INT(wait_finished(e.store, whole.id, 300), PCD_JOB_SUCCEEDED);
	CHECK_INT(wait_finished(e.store, s3.id, 300), PCD_JOB_SUCCEEDED);
	CHECK_INT(wait_finished(e.store, s1.id, 300), PCD_JOB_SUCCEEDED);
	CHECK_INT(wait_finished(e.store, s64.id, 300), PCD_JOB_SUCCEEDED);
	pcd_workers_free(w);
	want = report_of(e.store, whole.id);
	REQUIRE(want != NULL);
	CHECK(strstr(want, "\"tensor:") != NULL);
	got = report_of(e.store, s3.id);
	CHECK(got && !strcmp(got, want));
	free(got);
	got = report_of(e.store, s1.id);
	CHECK(got && !strcmp(got, want));
	free(got);
	got = report_of(e.store, s64.id);
	CHECK(got && !strcmp(got, want));
	free(got);
	CHECK_INT(pcd_store_job_shards(e.store, s3.id, &sh, &n, &err), PC_OK);
	CHECK_INT(n, 3);
	for (size_t i = 0; i < n; i++) {
		CHECK_INT(sh[i].index, i);
		CHECK_INT(sh[i].status, PCD_JOB_SUCCEEDED);
	}
	pcd_shards_free(sh, n);
	/* shards 1 runs whole, without shard jobs */
	CHECK_INT(pcd_store_job_shards(e.store, s1.id, &sh, &n, &err), PC_OK);
	CHECK_INT(n, 0);
	CHECK_INT(pcd_store_job_shards(e.store, s64.id, &sh, &n, &err), PC_OK);
	CHECK_INT(n, 20);
	pcd_shards_free(sh, n);
	/* the shards go with their parent */
	CHECK_INT(pcd_store_job_delete(e.store, PCD_ALL_TENANTS, s3.id, &err), PC_OK);
	CHECK_INT(pcd_store_job_shards(e.store, s3.id, &sh, &n, &err), PC_OK);
	CHECK_INT(n, 0);
	free(want);
	pcd_job_free(&whole);
	pcd_job_free(&s3);
	pcd_job_free(&s1);
	pcd_job_free(&s64);
	job_env_teardown(&e);
}

TEST(shard_jobs_report_equals_unsharded_sqlite)
{
	sharded_equals_whole(t, NULL);
}

/* A job's stored progress, {done, total, fraction}; 0 when it has none. */
static int stored_progress(struct pcd_store *s, const char *id, long long *done, long long *total, double *fraction)
{
	struct pcd_job j;
	json_t *p = NULL;
	int ok = 0;

	if (pcd_store_job_get(s, PCD_ALL_TENANTS, id, &j, NULL) != PC_OK)
		return 0;
	p = j.progress ? json_loads(j.progress, 0, NULL) : NULL;
	if (json_is_integer(json_object_get(p, "done")) && json_is_integer(json_object_get(p, "total")) &&
	    json_is_number(json_object_get(p, "fraction"))) {
		*done = (long long)json_integer_value(json_object_get(p, "done"));
		*total = (long long)json_integer_value(json_object_get(p, "total"));
		*fraction = json_number_value(json_object_get(p, "fraction"));
		ok = 1;
	}
	json_decref(p);
	pcd_job_free(&j);
	return ok;
}

/* Every succeeded job's stored progress ends complete (done == total,
 * fraction 1), the unsharded job, the sharded one after its merge and each
 * of its shards; the sharded job counts the unsharded one's passes, and
 * its shards' totals are their items' passes: with the parent's clean pass
 * they add up to the unsharded total, none counting a pass it does not do. */
TEST(shard_jobs_progress_ends_complete)
{
	struct job_env e;
	struct pcd_workers_cfg cfg;
	struct pcd_workers *w = NULL;
	struct pcd_job whole, s3;
	struct pc_error err = {0};
	struct pcd_shard *sh = NULL;
	long long done = -1, total = -1, whole_total = -1, shard_totals = 0;
	double fraction = -1;
	size_t n = 0;
	int rc = job_env_setup(&e, NULL);

	if (rc == 1) {
		pc_test_skip(t, "no Fashion-MNIST under /usr/share/datasets");
		return;
	}
	REQUIRE(rc == 0);
	REQUIRE(submit(t, &e, NULL, STUDY, &whole) && submit(t, &e, "3", STUDY, &s3));
	cfg_for_tests(&cfg, 2);
	REQUIRE(pcd_workers_start(&cfg, e.store, e.blobs, &w, &err) == PC_OK);
	pcd_workers_notify(w);
	CHECK_INT(wait_finished(e.store, whole.id, 300), PCD_JOB_SUCCEEDED);
	CHECK_INT(wait_finished(e.store, s3.id, 300), PCD_JOB_SUCCEEDED);
	pcd_workers_free(w);
	REQUIRE_MSG(stored_progress(e.store, whole.id, &done, &whole_total, &fraction), "the unsharded job's progress");
	CHECK_MSG(done == whole_total && fraction == 1.0, "the unsharded job ends at %lld of %lld, %g", done,
		  whole_total, fraction);
	REQUIRE_MSG(stored_progress(e.store, s3.id, &done, &total, &fraction), "the sharded job's progress");
	CHECK_MSG(done == total && fraction == 1.0, "the sharded job ends at %lld of %lld, %g", done, total, fraction);
	CHECK_MSG(total == whole_total, "the sharded job's total is %lld, the unsharded one's %lld", total, whole_total);
	REQUIRE(pcd_store_job_shards(e.store, s3.id, &sh, &n, &err) == PC_OK);
	CHECK_INT(n, 3);
	for (size_t i = 0; i < n; i++) {
		CHECK_INT(sh[i].status, PCD_JOB_SUCCEEDED);
		done = total = -1;
		fraction = -1;
		CHECK_MSG(stored_progress(e.store, sh[i].id, &done, &total, &fraction), "shard %zu's progress", i);
		CHECK_MSG(done == total && fraction == 1.0, "shard %zu ends at %lld of %lld, %g", i, done, total,
			  fraction);
		shard_totals += total;
	}
	pcd_shards_free(sh, n);
	CHECK_MSG(shard_totals + 1 == whole_total, "the shards' totals add up to %lld, the unsharded total is %lld",
		  shard_totals, whole_total);
	pcd_job_free(&whole);
	pcd_job_free(&s3);
	job_env_teardown(&e);
}

/* Cancelling the parent while its shards run cancels it at once and every
 * shard: the queued ones at once, the running one at its next check. */
TEST(shard_jobs_cancel_cancels_every_shard)
{
	struct job_env e;
	struct pcd_workers_cfg cfg;
	struct pcd_workers *w = NULL;
	struct pcd_job p;
	struct pc_error err = {0};
	struct pcd_shard *sh = NULL;
	enum pcd_job_status after;
	struct timespec ts = {0, 20 * 1000000L};
	size_t n = 0;
	int rc = job_env_setup(&e, NULL), running = 0;

	if (rc == 1) {
		pc_test_skip(t, "no Fashion-MNIST under /usr/share/datasets");
		return;
	}
	REQUIRE(rc == 0);
	REQUIRE(submit(t, &e, "3", LONG_STUDY, &p));
	cfg_for_tests(&cfg, 1);
	REQUIRE(pcd_workers_start(&cfg, e.store, e.blobs, &w, &err) == PC_OK);
	pcd_workers_notify(w);
	/* until a shard runs (bounded) */
	for (int i = 0; i < 60 * 50 && !running; i++) {
		REQUIRE(pcd_store_job_shards(e.store, p.id, &sh, &n, &err) == PC_OK);
		for (size_t k = 0; k < n; k++)
			running |= sh[k].status == PCD_JOB_RUNNING;
		pcd_shards_free(sh, n);
		if (!running)
			nanosleep(&ts, NULL);
	}
	REQUIRE(running);
	CHECK_INT(pcd_store_job_cancel(e.store, PCD_ALL_TENANTS, p.id, &after, &err), PC_OK);
	CHECK_INT(after, PCD_JOB_CANCELLED);
	{
		int all = 0;
		for (int i = 0; i < 60 * 50 && !all; i++) {
			REQUIRE(pcd_store_job_shards(e.store, p.id, &sh, &n, &err) == PC_OK);
			all = n == 3;
			for (size_t k = 0; k < n; k++)
				all &= sh[k].status == PCD_JOB_CANCELLED;
			pcd_shards_free(sh, n);
			if (!all)
				nanosleep(&ts, NULL);
		}
		CHECK(all);
	}
	CHECK_INT(wait_finished(e.store, p.id, 1), PCD_JOB_CANCELLED);
	pcd_workers_free(w);
	pcd_job_free(&p);
	job_env_teardown(&e);
}

/* A shard that reads a corrupt prefix state fails, naming the byte
 * offset, and fails its parent with that problem; the other shard is
 * cancelled. The parent's prefix is run here, the shards by the pool. */
TEST(shard_jobs_corrupt_prefix_fails_the_parent)
{
	struct job_env e;
	struct pcd_workers_cfg cfg;
	struct pcd_workers *w = NULL;
	struct pcd_job p, claimed;
	struct pcd_job_opts o;
	struct pc_error err = {0};
	struct pcd_shard *sh = NULL;
	char path[PATH_MAX], *report = NULL;
	sqlite3 *raw = NULL;
	size_t n = 0;
	int waiting = 0, rc = job_env_setup(&e, NULL);

	if (rc == 1) {
		pc_test_skip(t, "no Fashion-MNIST under /usr/share/datasets");
		return;
	}
	REQUIRE(rc == 0);
	REQUIRE(submit(t, &e, "2", STUDY, &p));
	REQUIRE(pcd_store_job_claim(e.store, &claimed, &err) == PC_OK);
	CHECK(!strcmp(claimed.id, p.id));
	pcd_job_opts_default(&o);
	o.timing_seconds = 0;
	o.store = e.store;
	o.job_id = claimed.id;
	o.claim_token = claimed.claim_token;
	o.waiting = &waiting;
	REQUIRE(pcd_job_run(claimed.spec, e.store, e.blobs, &o, &report, &err) == PC_OK);
	CHECK_INT(waiting, 1);
	CHECK(report == NULL);
	/* the state cut short under the shards */
	snprintf(path, sizeof(path), "%s/paracorr.db", e.dir);
	REQUIRE(sqlite3_open(path, &raw) == SQLITE_OK);
	CHECK(sqlite3_exec(raw, "UPDATE job_state SET data = substr(data, 1, 50)", NULL, NULL, NULL) == SQLITE_OK);
	sqlite3_close(raw);
	cfg_for_tests(&cfg, 1);
	REQUIRE(pcd_workers_start(&cfg, e.store, e.blobs, &w, &err) == PC_OK);
	pcd_workers_notify(w);
	CHECK_INT(wait_finished(e.store, p.id, 120), PCD_JOB_FAILED);
	pcd_workers_free(w);
	pcd_job_free(&claimed);
	REQUIRE(pcd_store_job_get(e.store, PCD_ALL_TENANTS, p.id, &claimed, &err) == PC_OK);
	CHECK_MSG(claimed.error &&
		      strstr(claimed.error, "shard 0: prefix state: byte 50: the header ends early (88 bytes)"),
		  "%s", claimed.error ? claimed.error : "(no error)");
	pcd_job_free(&claimed);
	REQUIRE(pcd_store_job_shards(e.store, p.id, &sh, &n, &err) == PC_OK);
	CHECK_INT(n, 2);
	if (n == 2) {
		CHECK_INT(sh[0].status, PCD_JOB_FAILED);
		CHECK_INT(sh[1].status, PCD_JOB_CANCELLED);
	}
	pcd_shards_free(sh, n);
	pcd_job_free(&p);
	job_env_teardown(&e);
}

TEST(shard_jobs_report_equals_unsharded_pg)
{
	char why[512], url[512];
	struct pgu *pg;

	if (!pgu_available(why, sizeof(why))) {
		pc_test_skip(t, why);
		return;
	}
	REQUIRE_MSG((pg = pgu_shared(why, sizeof(why))) != NULL, "%s", why);
	REQUIRE_MSG(pgu_new_db(pg, url, sizeof(url)), "%s", pg->why);
	sharded_equals_whole(t, url);
}

/* The store's side alone: hand-over, the last shard's merge, a failed
 * shard failing its parent, a waiting parent left alone by recover and
 * cancelled at once. */
static void store_rows(struct pc_test *t, const char *where)
{
	char dir[PATH_MAX - 64], path[PATH_MAX], parent[PCD_JOB_ID_LEN + 1];
	char ptok[PCD_TOKEN_LEN + 1], mtok[PCD_TOKEN_LEN + 1];
	const char *specs[3] = {"{\"i\": 0}", "{\"i\": 1}", "{\"i\": 2}"};
	const unsigned char state[5] = {0, 1, 0xfe, 0x5c, 0xff};
	struct pcd_store *s = NULL;
	struct pcd_job p, q, sh[3], got;
	struct pcd_shard *v = NULL;
	struct pc_error err = {0};
	enum pcd_job_status after;
	unsigned char *data = NULL;
	size_t n = 0, len = 0;
	int merge = -1, requeued = -1;

	REQUIRE(be_tmpdir(dir, sizeof(dir)));
	snprintf(path, sizeof(path), "%s/paracorr.db", dir);
	REQUIRE(pcd_store_open(where ? where : path, &s, &err) == PC_OK);
	REQUIRE(pcd_store_job_submit(s, "t1", 1, "analyze", "{\"a\": 1}", NULL, NULL, 0, 0, &p, NULL, &err) == PC_OK);
	/* only a running parent hands over, and only under its claim */
	CHECK_INT(pcd_store_job_shards_start(s, p.id, "0123456789abcdef0123456789abcdef", 3, specs, "prefix", state,
					     sizeof(state), &err),
		  PC_ERR_LEASE_LOST);
	REQUIRE(pcd_store_job_claim(s, &got, &err) == PC_OK);
	CHECK(!strcmp(got.id, p.id));
	snprintf(ptok, sizeof(ptok), "%s", got.claim_token);
	pcd_job_free(&got);
	CHECK_INT(pcd_store_job_shards_start(s, p.id, "0123456789abcdef0123456789abcdef", 3, specs, "prefix", state,
					     sizeof(state), &err),
		  PC_ERR_LEASE_LOST);
	REQUIRE(pcd_store_job_shards_start(s, p.id, ptok, 3, specs, "prefix", state, sizeof(state), &err) == PC_OK);
	/* no worker holds the waiting parent: its old claim writes nothing */
	CHECK_INT(pcd_store_job_heartbeat(s, p.id, ptok, NULL, NULL, &err), PC_ERR_LEASE_LOST);
	REQUIRE(pcd_store_job_state_get(s, p.id, "prefix", &data, &len, &err) == PC_OK);
	CHECK(len == sizeof(state) && !memcmp(data, state, len));
	free(data);
	CHECK_INT(pcd_store_job_state_get(s, p.id, "other", &data, &len, &err), PC_ERR_NOT_FOUND);
	/* recover and the sweep leave the waiting parent running */
	CHECK_INT(pcd_store_job_recover(s, 3, &requeued, NULL, &err), PC_OK);
	CHECK_INT(requeued, 0);
	CHECK_INT(pcd_store_job_sweep(s, 3, &requeued, NULL, &err), PC_OK);
	CHECK_INT(requeued, 0);
	REQUIRE(pcd_store_job_shards(s, p.id, &v, &n, &err) == PC_OK);
	CHECK_INT(n, 3);
	for (size_t i = 0; i < n && i < 3; i++) {
		CHECK_INT(v[i].index, i);
		CHECK_INT(v[i].status, PCD_JOB_QUEUED);
	}
	pcd_shards_free(v, n);
	/* the shards are claimed in order, as jobs of kind "shard" of the tenant */
	for (int i = 0; i < 3; i++) {
		REQUIRE(pcd_store_job_claim(s, &sh[i], &err) == PC_OK);
		CHECK(!strcmp(sh[i].kind, "shard"));
		CHECK(!strcmp(sh[i].tenant, "t1"));
		CHECK(!strcmp(sh[i].spec, specs[i]));
	}
	for (int i = 0; i < 3; i++) {
		REQUIRE(pcd_store_job_complete(s, sh[i].id, sh[i].claim_token, PCD_JOB_SUCCEEDED, "{}", NULL, &err) ==
			PC_OK);
		REQUIRE(pcd_store_job_shard_finished(s, sh[i].id, NULL, &merge, parent, mtok, &err) == PC_OK);
		/* only the last one merges */
		CHECK_INT(merge, i == 2);
		CHECK(!strcmp(parent, p.id));
	}
	/* the merge holds the parent under the token it was given */
	CHECK_INT(pcd_store_job_heartbeat(s, p.id, mtok, NULL, NULL, &err), PC_OK);
	REQUIRE(pcd_store_job_get(s, PCD_ALL_TENANTS, p.id, &got, &err) == PC_OK);
	CHECK(!strcmp(got.claim_token, mtok));
	pcd_job_free(&got);
	{
		char again[PCD_TOKEN_LEN + 1];

		/* a second call for the last one does not merge twice */
		REQUIRE(pcd_store_job_shard_finished(s, sh[2].id, NULL, &merge, parent, again, &err) == PC_OK);
		CHECK_INT(merge, 0);
	}
	/* a merge that died is recovered as any running job, and its late
	 * write is refused */
	CHECK_INT(pcd_store_job_recover(s, 3, &requeued, NULL, &err), PC_OK);
	CHECK_INT(requeued, 1);
	CHECK_INT(pcd_store_job_complete(s, p.id, mtok, PCD_JOB_SUCCEEDED, "{}", NULL, &err), PC_ERR_LEASE_LOST);
	for (int i = 0; i < 3; i++)
		pcd_job_free(&sh[i]);
	pcd_job_free(&got);

	/* a failed shard fails its parent and cancels the others */
	REQUIRE(pcd_store_job_submit(s, "t1", 1, "analyze", "{\"b\": 1}", NULL, NULL, 0, 0, &q, NULL, &err) == PC_OK);
	REQUIRE(pcd_store_job_claim(s, &got, &err) == PC_OK);
	/* the recovered parent p comes first */
	CHECK(!strcmp(got.id, p.id));
	pcd_job_free(&got);
	REQUIRE(pcd_store_job_claim(s, &got, &err) == PC_OK);
	CHECK(!strcmp(got.id, q.id));
	REQUIRE(pcd_store_job_shards_start(s, q.id, got.claim_token, 3, specs, "prefix", state, sizeof(state), &err) ==
		PC_OK);
	pcd_job_free(&got);
	REQUIRE(pcd_store_job_claim(s, &sh[0], &err) == PC_OK);
	REQUIRE(pcd_store_job_claim(s, &sh[1], &err) == PC_OK);
	REQUIRE(pcd_store_job_complete(s, sh[0].id, sh[0].claim_token, PCD_JOB_FAILED, NULL, "{\"title\": \"x\"}",
				       &err) == PC_OK);
	REQUIRE(pcd_store_job_shard_finished(s, sh[0].id, "{\"detail\": \"shard 0: x\"}", &merge, parent, mtok,
					     &err) == PC_OK);
	CHECK_INT(merge, 0);
	REQUIRE(pcd_store_job_get(s, PCD_ALL_TENANTS, q.id, &got, &err) == PC_OK);
	CHECK_INT(got.status, PCD_JOB_FAILED);
	CHECK(got.error && strstr(got.error, "shard 0: x"));
	pcd_job_free(&got);
	REQUIRE(pcd_store_job_shards(s, q.id, &v, &n, &err) == PC_OK);
	CHECK_INT(n, 3);
	if (n == 3) {
		CHECK_INT(v[0].status, PCD_JOB_FAILED);
		CHECK_INT(v[1].status, PCD_JOB_RUNNING); /* asked to stop */
		CHECK_INT(v[2].status, PCD_JOB_CANCELLED);
	}
	pcd_shards_free(v, n);
	REQUIRE(pcd_store_job_get(s, PCD_ALL_TENANTS, sh[1].id, &got, &err) == PC_OK);
	CHECK_INT(got.cancel_requested, 1);
	pcd_job_free(&got);
	pcd_job_free(&sh[0]);
	pcd_job_free(&sh[1]);

	/* cancelling a waiting parent: at once, with its shards */
	CHECK_INT(pcd_store_job_cancel(s, PCD_ALL_TENANTS, p.id, &after, &err), PC_OK);
	CHECK_INT(after, PCD_JOB_RUNNING); /* p is merging, held by a worker */
	pcd_job_free(&p);
	pcd_job_free(&q);
	REQUIRE(pcd_store_job_submit(s, "t1", 1, "analyze", "{\"c\": 1}", NULL, NULL, 0, 0, &p, NULL, &err) == PC_OK);
	REQUIRE(pcd_store_job_claim(s, &got, &err) == PC_OK);
	/* sh[1] of q was running; p went back to running above: the new job */
	CHECK(!strcmp(got.id, p.id));
	REQUIRE(pcd_store_job_shards_start(s, p.id, got.claim_token, 2, specs, "prefix", state, sizeof(state), &err) ==
		PC_OK);
	pcd_job_free(&got);
	REQUIRE(pcd_store_job_claim(s, &sh[0], &err) == PC_OK);
	CHECK_INT(pcd_store_job_cancel(s, PCD_ALL_TENANTS, p.id, &after, &err), PC_OK);
	CHECK_INT(after, PCD_JOB_CANCELLED);
	REQUIRE(pcd_store_job_shards(s, p.id, &v, &n, &err) == PC_OK);
	CHECK_INT(n, 2);
	if (n == 2) {
		CHECK_INT(v[0].status, PCD_JOB_RUNNING);
		CHECK_INT(v[1].status, PCD_JOB_CANCELLED);
	}
	pcd_shards_free(v, n);
	REQUIRE(pcd_store_job_get(s, PCD_ALL_TENANTS, sh[0].id, &got, &err) == PC_OK);
	CHECK_INT(got.cancel_requested, 1);
	pcd_job_free(&got);
	pcd_job_free(&sh[0]);
	pcd_job_free(&p);
	pcd_store_close(s);
	be_rmtree(dir);
}

TEST(shard_store_rows_sqlite)
{
	store_rows(t, NULL);
}

TEST(shard_store_rows_pg)
{
	char why[512], url[512];
	struct pgu *pg;

	if (!pgu_available(why, sizeof(why))) {
		pc_test_skip(t, why);
		return;
	}
	REQUIRE_MSG((pg = pgu_shared(why, sizeof(why))) != NULL, "%s", why);
	REQUIRE_MSG(pgu_new_db(pg, url, sizeof(url)), "%s", pg->why);
	store_rows(t, url);
}
