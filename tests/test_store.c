/* The job store: submission order, idempotency, the queue bound, cancel
 * in each state, recovery after a crash, the attempts bound, paging,
 * uploads that pending jobs still need, tenant scopes and quotas, and the
 * migration of a version-1 database and the refusal of a newer one.
 *
 * Every STORE_TEST runs twice, the same body on each backend: SQLite (a
 * file in a temp dir) and PostgreSQL (a new database on the run's
 * throwaway server, pg_util.h); while the second runs, the test's name
 * reads "name[postgresql]", so a failure names its backend. The PostgreSQL
 * run is skipped, saying why, only when PostgreSQL 15 is not installed.
 * The migrations from SQLite's older versions are SQLite's alone (the
 * PostgreSQL schema starts at the current one). */
#include <limits.h>
#include <pthread.h>
#include <jansson.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store.h"
#include "be_util.h"
#include "pg_util.h"
#include "test.h"

#define MODEL_ID "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define DATA_ID "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"

struct fixture {
	char dir[PATH_MAX - 32];
	char db[PATH_MAX];
	struct pcd_store *s;
};

enum backend { BE_SQLITE, BE_PG, BE_COUNT };
static const char *const backend_names[BE_COUNT] = {"sqlite", "postgresql"};
/* the backend the running STORE_TEST body is on */
static enum backend cur_be;

/* Runs body on each backend (see the top). */
static void on_each_backend(struct pc_test *t, void (*body)(struct pc_test *t))
{
	const char *name = t->name;
	char why[600], named[160];

	for (int be = 0; be < BE_COUNT; be++) {
		cur_be = (enum backend)be;
		if (be == BE_PG) {
			if (!pgu_available(why, sizeof(why))) {
				pc_test_skip(t, why);
				continue;
			}
			snprintf(named, sizeof(named), "%s[%s]", name, backend_names[be]);
			t->name = named;
		}
		body(t);
		t->name = name;
	}
	cur_be = BE_SQLITE;
}

#define STORE_TEST(fn)                                                                                            \
	static void fn##_body(struct pc_test *t);                                                                 \
	TEST(fn)                                                                                                  \
	{                                                                                                         \
		on_each_backend(t, fn##_body);                                                                    \
	}                                                                                                         \
	static void fn##_body(struct pc_test *t)

/* Where a new store of the current backend is: f->db is the SQLite file's
 * path or the PostgreSQL database's URL. f->dir is a temp dir either way. */
static int fixture_where(struct fixture *f)
{
	char why[600];
	struct pgu *pg;

	if (!be_tmpdir(f->dir, sizeof(f->dir)))
		return -1;
	if (cur_be == BE_SQLITE) {
		snprintf(f->db, sizeof(f->db), "%s/paracorr.db", f->dir);
		return 0;
	}
	if (!(pg = pgu_shared(why, sizeof(why)))) {
		fprintf(stderr, "  the PostgreSQL server did not start: %s\n", why);
		return -1;
	}
	if (!pgu_new_db(pg, f->db, sizeof(f->db))) {
		fprintf(stderr, "  no new PostgreSQL database: %s\n", pg->why);
		return -1;
	}
	return 0;
}

static int setup(struct fixture *f)
{
	struct pc_error err = {0};

	f->s = NULL;
	if (fixture_where(f))
		return -1;
	if (pcd_store_open(f->db, &f->s, &err)) {
		fprintf(stderr, "  cannot open the %s store: %s\n", backend_names[cur_be], err.text);
		return -1;
	}
	if (pcd_store_model_put(f->s, "default", MODEL_ID, 10, "{\"parameters\": 3}", NULL, &err) ||
	    pcd_store_dataset_put(f->s, "default", DATA_ID, 20, "{}", NULL, &err))
		return -1;
	return 0;
}

static void teardown(struct fixture *f)
{
	pcd_store_close(f->s);
	be_rmtree(f->dir);
}

static const char *spec_seed(int seed)
{
	static char buf[256];

	snprintf(buf, sizeof(buf), "{\"model\": \"%s\", \"dataset\": \"%s\", \"seed\": %d}", MODEL_ID, DATA_ID, seed);
	return buf;
}

/* The references a job kind's check gives (jobs.h): the model, the
 * dataset and, when not NULL, the training dataset. */
static struct pcd_job_refs refs_of(const char *model, const char *dataset, const char *training)
{
	struct pcd_job_refs r = {.n = 0};

	r.v[r.n].field = "model";
	r.v[r.n].upload = PCD_UPLOAD_MODEL;
	snprintf(r.v[r.n++].id, 65, "%s", model);
	r.v[r.n].field = "dataset";
	r.v[r.n].upload = PCD_UPLOAD_DATASET;
	snprintf(r.v[r.n++].id, 65, "%s", dataset);
	if (training) {
		r.v[r.n].field = "training.dataset";
		r.v[r.n].upload = PCD_UPLOAD_DATASET;
		snprintf(r.v[r.n++].id, 65, "%s", training);
	}
	return r;
}

static int submit(struct pcd_store *s, int seed, const char *key, char id[PCD_JOB_ID_LEN + 1])
{
	struct pcd_job j;
	struct pc_error err = {0};
	struct pcd_job_refs refs = refs_of(MODEL_ID, DATA_ID, NULL);
	int rc = pcd_store_job_submit(s, "default", 0, "analyze", spec_seed(seed), &refs, key, 0, 0, &j, NULL, &err);

	if (!rc && id)
		memcpy(id, j.id, sizeof(j.id));
	pcd_job_free(&j);
	return rc;
}

STORE_TEST(store_submit_and_claim_in_order)
{
	struct fixture f;
	char ids[3][PCD_JOB_ID_LEN + 1], toks[3][PCD_TOKEN_LEN + 1];
	struct pcd_job j;
	struct pc_error err = {0};
	int i, cancel = -1;
	char *report;

	REQUIRE(setup(&f) == 0);
	for (i = 0; i < 3; i++)
		REQUIRE(submit(f.s, i, NULL, ids[i]) == PC_OK);
	CHECK(strncmp(ids[0], "j-", 2) == 0 && strlen(ids[0]) == PCD_JOB_ID_LEN);
	CHECK(strcmp(ids[0], ids[1]) != 0);
	for (i = 0; i < 3; i++) {
		REQUIRE(pcd_store_job_claim(f.s, &j, &err) == PC_OK);
		CHECK(strcmp(j.id, ids[i]) == 0);
		CHECK_INT(j.status, PCD_JOB_RUNNING);
		CHECK_INT(j.attempts, 1);
		CHECK(j.started_at[0] != '\0');
		CHECK_INT(strlen(j.claim_token), PCD_TOKEN_LEN);
		CHECK_MSG(!strcmp(j.node, "local"), "%s", j.node);
		memcpy(toks[i], j.claim_token, sizeof(toks[i]));
		pcd_job_free(&j);
	}
	CHECK(strcmp(toks[0], toks[1]) != 0);
	CHECK_INT(pcd_store_job_claim(f.s, &j, &err), PC_ERR_NOT_FOUND);
	CHECK_INT(err.code, PC_OK); /* "nothing queued" is not an error */

	CHECK_INT(pcd_store_job_heartbeat(f.s, ids[0], toks[0],
					  "{\"phase\":\"clean evaluation\",\"done\":1,\"total\":4}", &cancel, &err),
		  PC_OK);
	CHECK_INT(cancel, 0);
	/* another attempt's token is refused, and so is none */
	CHECK_INT(pcd_store_job_complete(f.s, ids[0], toks[1], PCD_JOB_SUCCEEDED, "{}", NULL, NULL), PC_ERR_LEASE_LOST);
	CHECK_INT(pcd_store_job_complete(f.s, ids[0], NULL, PCD_JOB_SUCCEEDED, "{}", NULL, NULL), PC_ERR_INTERNAL);
	CHECK_INT(pcd_store_job_complete(f.s, ids[0], toks[0], PCD_JOB_SUCCEEDED, "{\"report\": 1}", NULL, &err), PC_OK);
	REQUIRE(pcd_store_job_get(f.s, PCD_ALL_TENANTS, ids[0], &j, &err) == PC_OK);
	CHECK_INT(j.status, PCD_JOB_SUCCEEDED);
	CHECK(j.has_report);
	CHECK(j.finished_at[0] != '\0');
	CHECK(j.progress && strstr(j.progress, "clean evaluation"));
	pcd_job_free(&j);
	REQUIRE(pcd_store_job_report(f.s, PCD_ALL_TENANTS, ids[0], &report, &err) == PC_OK);
	CHECK(strcmp(report, "{\"report\": 1}") == 0);
	free(report);
	pc_error_clear(&err);
	CHECK_INT(pcd_store_job_report(f.s, PCD_ALL_TENANTS, ids[1], &report, &err), PC_ERR_CONFLICT);
	CHECK_INT(pcd_store_job_report(f.s, PCD_ALL_TENANTS, "j-0000000000000000", &report, NULL), PC_ERR_NOT_FOUND);
	/* a finished job cannot be completed or heartbeaten again */
	CHECK_INT(pcd_store_job_complete(f.s, ids[0], toks[0], PCD_JOB_FAILED, NULL, "{}", NULL), PC_ERR_CONFLICT);
	CHECK_INT(pcd_store_job_heartbeat(f.s, ids[0], toks[0], NULL, NULL, NULL), PC_ERR_CONFLICT);
	CHECK_INT(pcd_store_job_heartbeat(f.s, "j-nope", toks[0], NULL, NULL, NULL), PC_ERR_NOT_FOUND);
	teardown(&f);
}

STORE_TEST(store_idempotency_key)
{
	struct fixture f;
	char a[PCD_JOB_ID_LEN + 1], b[PCD_JOB_ID_LEN + 1];
	struct pcd_job j;
	struct pc_error err = {0};
	int created = -1;

	REQUIRE(setup(&f) == 0);
	REQUIRE(pcd_store_job_submit(f.s, "default", 0, "analyze", spec_seed(1), NULL, "key-1", 0, 0, &j, &created, &err) ==
		PC_OK);
	CHECK_INT(created, 1);
	memcpy(a, j.id, sizeof(a));
	pcd_job_free(&j);
	REQUIRE(pcd_store_job_submit(f.s, "default", 0, "analyze", spec_seed(1), NULL, "key-1", 0, 0, &j, &created, &err) ==
		PC_OK);
	CHECK_INT(created, 0);
	CHECK(strcmp(a, j.id) == 0);
	CHECK(j.idempotency_key && strcmp(j.idempotency_key, "key-1") == 0);
	pcd_job_free(&j);
	CHECK_INT(pcd_store_job_submit(f.s, "default", 0, "analyze", spec_seed(2), NULL, "key-1", 0, 0, &j, &created, &err),
		  PC_ERR_CONFLICT);
	CHECK(strstr(err.text, a) != NULL);
	CHECK(strcmp(err.where, "Idempotency-Key") == 0);
	/* another key, or none, makes a new job */
	REQUIRE(submit(f.s, 1, "key-2", b) == PC_OK);
	CHECK(strcmp(a, b) != 0);
	REQUIRE(submit(f.s, 1, NULL, b) == PC_OK);
	CHECK(strcmp(a, b) != 0);
	teardown(&f);
}

STORE_TEST(store_queue_full_and_bad_specs)
{
	struct fixture f;
	struct pcd_job j;
	struct pc_error err = {0};
	int i;

	REQUIRE(setup(&f) == 0);
	for (i = 0; i < 3; i++)
		REQUIRE(pcd_store_job_submit(f.s, "default", 0, "analyze", spec_seed(i), NULL, NULL, 3, 0, NULL, NULL, &err) ==
			PC_OK);
	CHECK_INT(pcd_store_job_submit(f.s, "default", 0, "analyze", spec_seed(9), NULL, NULL, 3, 0, NULL, NULL, &err), PC_ERR_BUSY);
	CHECK_INT(pc_status_http(PC_ERR_BUSY), 503);
	/* running jobs do not count towards the queue */
	REQUIRE(pcd_store_job_claim(f.s, &j, NULL) == PC_OK);
	pcd_job_free(&j);
	CHECK_INT(pcd_store_job_submit(f.s, "default", 0, "analyze", spec_seed(9), NULL, NULL, 3, 0, NULL, NULL, NULL), PC_OK);

	/* a reference to an upload nobody has: the field error of the check */
	pc_error_clear(&err);
	{
		struct pcd_job_refs refs = refs_of("cccc", DATA_ID, NULL);

		CHECK_INT(pcd_store_job_submit(f.s, "default", 0, "analyze", "{}", &refs, NULL, 0, 0, NULL, NULL, &err),
			  PC_ERR_INVALID);
		CHECK(strcmp(err.where, "model") == 0);
	}
	teardown(&f);
}

STORE_TEST(store_cancel_states)
{
	struct fixture f;
	char q[PCD_JOB_ID_LEN + 1], r[PCD_JOB_ID_LEN + 1], tok[PCD_TOKEN_LEN + 1];
	enum pcd_job_status after;
	struct pcd_job j;
	struct pc_error err = {0};
	int cancel = -1;

	REQUIRE(setup(&f) == 0);
	REQUIRE(submit(f.s, 1, NULL, r) == PC_OK);
	REQUIRE(submit(f.s, 2, NULL, q) == PC_OK);
	REQUIRE(pcd_store_job_claim(f.s, &j, &err) == PC_OK);
	CHECK(strcmp(j.id, r) == 0);
	memcpy(tok, j.claim_token, sizeof(tok));
	pcd_job_free(&j);

	REQUIRE(pcd_store_job_cancel(f.s, PCD_ALL_TENANTS, q, &after, &err) == PC_OK);
	CHECK_INT(after, PCD_JOB_CANCELLED);
	REQUIRE(pcd_store_job_get(f.s, PCD_ALL_TENANTS, q, &j, &err) == PC_OK);
	CHECK_INT(j.status, PCD_JOB_CANCELLED);
	CHECK(j.finished_at[0]);
	pcd_job_free(&j);
	CHECK_INT(pcd_store_job_claim(f.s, &j, NULL), PC_ERR_NOT_FOUND); /* the cancelled one is not claimed */

	REQUIRE(pcd_store_job_cancel(f.s, PCD_ALL_TENANTS, r, &after, &err) == PC_OK);
	CHECK_INT(after, PCD_JOB_RUNNING);
	REQUIRE(pcd_store_job_heartbeat(f.s, r, tok, NULL, &cancel, &err) == PC_OK);
	CHECK_INT(cancel, 1);
	REQUIRE(pcd_store_job_complete(f.s, r, tok, PCD_JOB_CANCELLED, NULL, NULL, &err) == PC_OK);

	CHECK_INT(pcd_store_job_cancel(f.s, PCD_ALL_TENANTS, r, &after, NULL), PC_ERR_CONFLICT);
	CHECK_INT(pcd_store_job_cancel(f.s, PCD_ALL_TENANTS, q, &after, NULL), PC_ERR_CONFLICT);
	CHECK_INT(pcd_store_job_cancel(f.s, PCD_ALL_TENANTS, "j-ffffffffffffffff", &after, NULL), PC_ERR_NOT_FOUND);

	/* delete: finished jobs only */
	REQUIRE(submit(f.s, 3, NULL, q) == PC_OK);
	CHECK_INT(pcd_store_job_delete(f.s, PCD_ALL_TENANTS, q, NULL), PC_ERR_CONFLICT);
	CHECK_INT(pcd_store_job_delete(f.s, PCD_ALL_TENANTS, r, NULL), PC_OK);
	CHECK_INT(pcd_store_job_get(f.s, PCD_ALL_TENANTS, r, &j, NULL), PC_ERR_NOT_FOUND);
	CHECK_INT(pcd_store_job_delete(f.s, PCD_ALL_TENANTS, r, NULL), PC_ERR_NOT_FOUND);
	teardown(&f);
}

STORE_TEST(store_recover_after_crash_and_attempts_bound)
{
	struct fixture f;
	char a[PCD_JOB_ID_LEN + 1], b[PCD_JOB_ID_LEN + 1];
	struct pcd_job j;
	struct pc_error err = {0};
	int nreq = -1, nfail = -1, round;

	REQUIRE(setup(&f) == 0);
	REQUIRE(submit(f.s, 1, NULL, a) == PC_OK);
	REQUIRE(submit(f.s, 2, NULL, b) == PC_OK);
	/* a runs and the process "dies" each time (close without completing),
	 * b stays queued throughout */
	for (round = 1; round <= 3; round++) {
		REQUIRE(pcd_store_job_claim(f.s, &j, &err) == PC_OK);
		CHECK(strcmp(j.id, a) == 0);
		CHECK_INT(j.attempts, round);
		pcd_job_free(&j);
		pcd_store_close(f.s);
		REQUIRE(pcd_store_open(f.db, &f.s, &err) == PC_OK);
		REQUIRE(pcd_store_job_recover(f.s, 3, &nreq, &nfail, &err) == PC_OK);
		REQUIRE(pcd_store_job_get(f.s, PCD_ALL_TENANTS, a, &j, &err) == PC_OK);
		if (round < 3) {
			CHECK_INT(nreq, 1);
			CHECK_INT(nfail, 0);
			CHECK_INT(j.status, PCD_JOB_QUEUED);
			CHECK(j.started_at[0] == '\0');
		} else {
			CHECK_INT(nreq, 0);
			CHECK_INT(nfail, 1);
			CHECK_INT(j.status, PCD_JOB_FAILED);
			CHECK(j.error && strstr(j.error, "gave up after 3 attempts"));
			{
				/* the problem the error table gives gave_up, as any other */
				json_t *pr = j.error ? json_loads(j.error, 0, NULL) : NULL;

				CHECK(pr && !strcmp(json_string_value(json_object_get(pr, "type")) ?: "",
						    "/problems/gave_up"));
				CHECK(pr && json_integer_value(json_object_get(pr, "status")) == 500);
				CHECK(pr && !strcmp(json_string_value(json_object_get(pr, "title")) ?: "",
						    pc_status_message(PC_ERR_GAVE_UP)));
				json_decref(pr);
			}
		}
		pcd_job_free(&j);
	}
	REQUIRE(pcd_store_job_get(f.s, PCD_ALL_TENANTS, b, &j, &err) == PC_OK);
	CHECK_INT(j.status, PCD_JOB_QUEUED);
	CHECK_INT(j.attempts, 0);
	pcd_job_free(&j);
	teardown(&f);
}

STORE_TEST(store_requeue_after_drain_is_not_an_attempt)
{
	struct fixture f;
	char a[PCD_JOB_ID_LEN + 1], tok[PCD_TOKEN_LEN + 1];
	struct pcd_job j;
	struct pc_error err = {0};
	int i;

	REQUIRE(setup(&f) == 0);
	REQUIRE(submit(f.s, 1, NULL, a) == PC_OK);
	for (i = 0; i < 5; i++) {
		REQUIRE(pcd_store_job_claim(f.s, &j, &err) == PC_OK);
		CHECK_INT(j.attempts, 1);
		memcpy(tok, j.claim_token, sizeof(tok));
		pcd_job_free(&j);
		REQUIRE(pcd_store_job_requeue(f.s, a, tok, &err) == PC_OK);
	}
	REQUIRE(pcd_store_job_get(f.s, PCD_ALL_TENANTS, a, &j, &err) == PC_OK);
	CHECK_INT(j.status, PCD_JOB_QUEUED);
	CHECK_INT(j.attempts, 0);
	pcd_job_free(&j);
	/* the requeue took the token away: that attempt can write no more */
	CHECK_INT(pcd_store_job_requeue(f.s, a, tok, NULL), PC_ERR_LEASE_LOST);
	/* a cancel asked for during the run wins over the requeue */
	REQUIRE(pcd_store_job_claim(f.s, &j, &err) == PC_OK);
	memcpy(tok, j.claim_token, sizeof(tok));
	pcd_job_free(&j);
	REQUIRE(pcd_store_job_cancel(f.s, PCD_ALL_TENANTS, a, NULL, &err) == PC_OK);
	REQUIRE(pcd_store_job_requeue(f.s, a, tok, &err) == PC_OK);
	REQUIRE(pcd_store_job_get(f.s, PCD_ALL_TENANTS, a, &j, &err) == PC_OK);
	CHECK_INT(j.status, PCD_JOB_CANCELLED);
	pcd_job_free(&j);
	teardown(&f);
}

STORE_TEST(store_job_paging_and_filter)
{
	struct fixture f;
	char ids[7][PCD_JOB_ID_LEN + 1];
	struct pcd_job *jobs, j;
	struct pc_error err = {0};
	size_t n, seen = 0, k;
	int64_t after = 0, queued = -1, running = -1;
	int i;

	REQUIRE(setup(&f) == 0);
	for (i = 0; i < 7; i++)
		REQUIRE(submit(f.s, i, NULL, ids[i]) == PC_OK);
	for (;;) {
		REQUIRE(pcd_store_job_list(f.s, PCD_ALL_TENANTS, NULL, after, 3, &jobs, &n, &err) == PC_OK);
		if (n == 0)
			break;
		for (k = 0; k < n; k++, seen++)
			CHECK(seen < 7 && strcmp(jobs[k].id, ids[seen]) == 0);
		after = jobs[n - 1].seq;
		pcd_jobs_free(jobs, n);
	}
	CHECK_INT(seen, 7);
	REQUIRE(pcd_store_job_claim(f.s, &j, &err) == PC_OK);
	pcd_job_free(&j);
	REQUIRE(pcd_store_job_list(f.s, PCD_ALL_TENANTS, "running", 0, 10, &jobs, &n, &err) == PC_OK);
	CHECK_INT(n, 1);
	if (n == 1)
		CHECK(strcmp(jobs[0].id, ids[0]) == 0);
	pcd_jobs_free(jobs, n);
	REQUIRE(pcd_store_job_list(f.s, PCD_ALL_TENANTS, "queued", 0, 100, &jobs, &n, &err) == PC_OK);
	CHECK_INT(n, 6);
	pcd_jobs_free(jobs, n);
	CHECK_INT(pcd_store_job_list(f.s, PCD_ALL_TENANTS, "sleeping", 0, 10, &jobs, &n, NULL), PC_ERR_INVALID);
	REQUIRE(pcd_store_queue_depth(f.s, &queued, &running, &err) == PC_OK);
	CHECK_INT(queued, 6);
	CHECK_INT(running, 1);
	CHECK_INT(pcd_store_ping(f.s, &err), PC_OK);
	teardown(&f);
}

STORE_TEST(store_uploads_put_list_delete)
{
	struct fixture f;
	struct pcd_blob_rec r, *recs;
	struct pc_error err = {0};
	char id[65], after[65] = "";
	size_t n, total = 0;
	int existed = -1, i;

	REQUIRE(setup(&f) == 0);
	CHECK_INT(pcd_store_model_put(f.s, "default", MODEL_ID, 10, "{}", &existed, &err), PC_OK);
	CHECK_INT(existed, 1);
	for (i = 0; i < 5; i++) {
		snprintf(id, sizeof(id), "%064d", i);
		REQUIRE(pcd_store_model_put(f.s, "default", id, i, "{\"n\": 1}", &existed, &err) == PC_OK);
		CHECK_INT(existed, 0);
	}
	REQUIRE(pcd_store_model_get(f.s, PCD_ALL_TENANTS, MODEL_ID, &r, &err) == PC_OK);
	CHECK_INT(r.bytes, 10);
	CHECK(strstr(r.info, "parameters") != NULL);
	pcd_blob_rec_free(&r);
	for (;;) {
		REQUIRE(pcd_store_model_list(f.s, PCD_ALL_TENANTS, NULL, after, NULL, 2, &recs, &n, &err) == PC_OK);
		if (!n)
			break;
		CHECK(strcmp(recs[0].id, after) > 0);
		memcpy(after, recs[n - 1].id, 65);
		total += n;
		pcd_blob_recs_free(recs, n);
	}
	CHECK_INT(total, 6);

	/* a queued job holds its model and dataset */
	REQUIRE(submit(f.s, 1, NULL, NULL) == PC_OK);
	pc_error_clear(&err);
	CHECK_INT(pcd_store_model_delete(f.s, PCD_ALL_TENANTS, MODEL_ID, NULL, &err), PC_ERR_CONFLICT);
	CHECK_INT(pcd_store_dataset_delete(f.s, PCD_ALL_TENANTS, DATA_ID, NULL, NULL), PC_ERR_CONFLICT);
	CHECK_INT(pcd_store_model_delete(f.s, PCD_ALL_TENANTS, id, NULL, NULL), PC_OK);
	CHECK_INT(pcd_store_model_get(f.s, PCD_ALL_TENANTS, id, &r, NULL), PC_ERR_NOT_FOUND);
	CHECK_INT(pcd_store_model_delete(f.s, PCD_ALL_TENANTS, id, NULL, NULL), PC_ERR_NOT_FOUND);
	teardown(&f);
}

/* Tenants: a scope sees its own rows only, answered for another's like
 * for an unknown id; records are per tenant, the shared file is "unused"
 * only with the last one; keys and quotas are per tenant. */
STORE_TEST(store_tenant_scopes)
{
	struct pcd_job_refs refs;
	struct fixture f;
	struct pcd_blob_rec r, *recs;
	struct pcd_job j, *jobs;
	struct pc_error err = {0};
	char a_job[PCD_JOB_ID_LEN + 1], b_job[PCD_JOB_ID_LEN + 1], text[256];
	enum pcd_job_status after;
	int existed = -1, created = -1, unused = -1;
	int64_t queued = -1, bytes = -1;
	size_t n;
	char *report;

	REQUIRE(setup(&f) == 0); /* MODEL_ID and DATA_ID of tenant default */
	CHECK_INT(pcd_tenant_name_valid("alice"), 1);
	CHECK_INT(pcd_tenant_name_valid("a.b_c-9"), 1);
	CHECK_INT(pcd_tenant_name_valid(""), 0);
	CHECK_INT(pcd_tenant_name_valid("a/b"), 0);
	CHECK_INT(pcd_tenant_name_valid("a b"), 0);
	CHECK_INT(pcd_tenant_name_valid("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"), 0); /* 65 */
	CHECK_INT(pcd_store_model_put(f.s, "no/such", MODEL_ID, 1, "{}", NULL, NULL), PC_ERR_INTERNAL);

	/* alice's record of the same id is hers: new for her */
	CHECK_INT(pcd_store_model_put(f.s, "alice", MODEL_ID, 11, "{}", &existed, &err), PC_OK);
	CHECK_INT(existed, 0);
	CHECK_INT(pcd_store_model_put(f.s, "alice", MODEL_ID, 11, "{}", &existed, &err), PC_OK);
	CHECK_INT(existed, 1);
	CHECK_INT(pcd_store_model_get(f.s, "bob", MODEL_ID, &r, NULL), PC_ERR_NOT_FOUND);
	REQUIRE(pcd_store_model_get(f.s, "alice", MODEL_ID, &r, &err) == PC_OK);
	CHECK_INT(r.bytes, 11);
	CHECK(!strcmp(r.tenant, "alice"));
	pcd_blob_rec_free(&r);
	REQUIRE(pcd_store_model_list(f.s, "bob", NULL, NULL, NULL, 10, &recs, &n, &err) == PC_OK);
	CHECK_INT(n, 0);
	REQUIRE(pcd_store_model_list(f.s, PCD_ALL_TENANTS, NULL, NULL, NULL, 10, &recs, &n, &err) == PC_OK);
	CHECK_INT(n, 2); /* alice's and default's, in (id, tenant) order */
	CHECK(n == 2 && !strcmp(recs[0].tenant, "alice") && !strcmp(recs[1].tenant, "default"));
	pcd_blob_recs_free(recs, n);
	/* an admin cursor (id, tenant) resumes between two tenants of one id */
	REQUIRE(pcd_store_model_list(f.s, PCD_ALL_TENANTS, NULL, MODEL_ID, "alice", 10, &recs, &n, &err) == PC_OK);
	CHECK(n == 1 && !strcmp(recs[0].tenant, "default"));
	pcd_blob_recs_free(recs, n);
	REQUIRE(pcd_store_model_list(f.s, PCD_ALL_TENANTS, NULL, MODEL_ID, NULL, 10, &recs, &n, &err) == PC_OK);
	CHECK_INT(n, 0);

	/* jobs: a job may only name its tenant's uploads */
	refs = refs_of(MODEL_ID, DATA_ID, NULL);
	snprintf(text, sizeof(text), "{\"model\": \"%s\", \"dataset\": \"%s\", \"seed\": 1}", MODEL_ID, DATA_ID);
	CHECK_INT(pcd_store_job_submit(f.s, "alice", 0, "analyze", text, &refs, NULL, 0, 0, NULL, NULL, NULL),
		  PC_ERR_INVALID); /* the dataset is default's: unknown to alice */
	CHECK_INT(pcd_store_dataset_put(f.s, "alice", DATA_ID, 20, "{}", NULL, &err), PC_OK);
	REQUIRE(pcd_store_job_submit(f.s, "alice", 0, "analyze", text, &refs, "k", 0, 0, &j, &created, &err) == PC_OK);
	CHECK_INT(created, 1);
	CHECK(!strcmp(j.tenant, "alice"));
	memcpy(a_job, j.id, sizeof(a_job));
	pcd_job_free(&j);
	/* the same key for bob is his own (he may not name alice's uploads,
	 * but the admin role may) */
	CHECK_INT(pcd_store_job_submit(f.s, "bob", 0, "analyze", text, &refs, "k", 0, 0, NULL, NULL, NULL), PC_ERR_INVALID);
	REQUIRE(pcd_store_job_submit(f.s, "bob", 1, "analyze", text, &refs, "k", 0, 0, &j, &created, &err) == PC_OK);
	CHECK_INT(created, 1);
	CHECK(strcmp(j.id, a_job) != 0);
	memcpy(b_job, j.id, sizeof(b_job));
	pcd_job_free(&j);
	REQUIRE(pcd_store_job_submit(f.s, "alice", 0, "analyze", text, &refs, "k", 0, 0, &j, &created, &err) == PC_OK);
	CHECK_INT(created, 0);
	CHECK(!strcmp(j.id, a_job));
	pcd_job_free(&j);
	/* every scoped call: bob cannot reach alice's job */
	CHECK_INT(pcd_store_job_get(f.s, "bob", a_job, &j, NULL), PC_ERR_NOT_FOUND);
	CHECK_INT(pcd_store_job_report(f.s, "bob", a_job, &report, NULL), PC_ERR_NOT_FOUND);
	CHECK_INT(pcd_store_job_cancel(f.s, "bob", a_job, &after, NULL), PC_ERR_NOT_FOUND);
	CHECK_INT(pcd_store_job_delete(f.s, "bob", a_job, NULL), PC_ERR_NOT_FOUND);
	REQUIRE(pcd_store_job_list(f.s, "bob", NULL, 0, 10, &jobs, &n, &err) == PC_OK);
	CHECK(n == 1 && !strcmp(jobs[0].id, b_job));
	pcd_jobs_free(jobs, n);
	REQUIRE(pcd_store_job_list(f.s, PCD_ALL_TENANTS, NULL, 0, 10, &jobs, &n, &err) == PC_OK);
	CHECK_INT(n, 2);
	pcd_jobs_free(jobs, n);
	REQUIRE(pcd_store_job_get(f.s, "alice", a_job, &j, &err) == PC_OK);
	CHECK(j.status == PCD_JOB_QUEUED);
	pcd_job_free(&j);

	/* quotas: queued jobs and stored bytes are counted per tenant */
	REQUIRE(pcd_store_tenant_usage(f.s, "alice", &queued, &bytes, &err) == PC_OK);
	CHECK_INT(queued, 1);
	CHECK_INT(bytes, 31);
	REQUIRE(pcd_store_tenant_usage(f.s, "default", &queued, &bytes, &err) == PC_OK);
	CHECK_INT(queued, 0);
	CHECK_INT(bytes, 30);
	snprintf(text, sizeof(text), "{\"model\": \"%s\", \"dataset\": \"%s\", \"seed\": 2}", MODEL_ID, DATA_ID);
	pc_error_clear(&err);
	CHECK_INT(pcd_store_job_submit(f.s, "alice", 0, "analyze", text, NULL, NULL, 0, 1, NULL, NULL, &err), PC_ERR_QUOTA);
	CHECK(!strcmp(err.where, "tenant_max_queued_jobs"));
	CHECK_INT(pc_status_http(PC_ERR_QUOTA), 429);
	CHECK_INT(pc_status_http(PC_ERR_STORAGE_QUOTA), 507);
	CHECK_INT(pcd_store_job_submit(f.s, "default", 0, "analyze", text, NULL, NULL, 0, 1, NULL, NULL, NULL), PC_OK);

	/* deletes: alice's queued job holds her record only; bob's job (the
	 * admin's) names the id too, so the file stays in use */
	CHECK_INT(pcd_store_model_delete(f.s, "alice", MODEL_ID, &unused, NULL), PC_ERR_CONFLICT);
	REQUIRE(pcd_store_job_cancel(f.s, "alice", a_job, &after, &err) == PC_OK);
	REQUIRE(pcd_store_job_cancel(f.s, PCD_ALL_TENANTS, b_job, &after, &err) == PC_OK);
	REQUIRE(pcd_store_job_list(f.s, "default", "queued", 0, 10, &jobs, &n, &err) == PC_OK);
	for (size_t i = 0; i < n; i++)
		REQUIRE(pcd_store_job_cancel(f.s, "default", jobs[i].id, &after, &err) == PC_OK);
	pcd_jobs_free(jobs, n);
	CHECK_INT(pcd_store_model_delete(f.s, "bob", MODEL_ID, &unused, NULL), PC_ERR_NOT_FOUND);
	CHECK_INT(pcd_store_model_delete(f.s, "alice", MODEL_ID, &unused, &err), PC_OK);
	CHECK_INT(unused, 0); /* default still holds a record */
	CHECK_INT(pcd_store_model_get(f.s, "default", MODEL_ID, &r, &err), PC_OK);
	pcd_blob_rec_free(&r);
	CHECK_INT(pcd_store_model_delete(f.s, "default", MODEL_ID, &unused, &err), PC_OK);
	CHECK_INT(unused, 1);
	teardown(&f);
}

/* A data directory of the version before tenants: its rows become tenant
 * default's, seq and the idempotency keys survive, and a deleted job's seq
 * is not handed out again. */
TEST(store_migrates_v1_to_tenants)
{
	char dir[PATH_MAX - 32], db[PATH_MAX];
	sqlite3 *raw = NULL;
	struct pcd_store *s = NULL;
	struct pc_error err = {0};
	struct pcd_blob_rec r;
	struct pcd_job j;
	char spec[256];
	int created = -1;
	static const char v1[] =
		"CREATE TABLE models (id TEXT PRIMARY KEY, bytes INTEGER NOT NULL, created_at TEXT NOT NULL,"
		" info TEXT NOT NULL);"
		"CREATE TABLE datasets (id TEXT PRIMARY KEY, bytes INTEGER NOT NULL, created_at TEXT NOT NULL,"
		" info TEXT NOT NULL);"
		"CREATE TABLE jobs (seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, kind TEXT NOT NULL,"
		" spec TEXT NOT NULL, status TEXT NOT NULL CHECK (status IN ('queued','running','succeeded','failed',"
		"'cancelled')), attempts INTEGER NOT NULL DEFAULT 0, cancel_requested INTEGER NOT NULL DEFAULT 0,"
		" progress TEXT, error TEXT, report TEXT, idempotency_key TEXT UNIQUE, spec_hash TEXT NOT NULL,"
		" model_id TEXT, dataset_id TEXT, created_at TEXT NOT NULL, started_at TEXT, finished_at TEXT,"
		" heartbeat_at TEXT);"
		"CREATE INDEX jobs_status_seq ON jobs (status, seq);"
		"CREATE INDEX jobs_model ON jobs (model_id);"
		"CREATE INDEX jobs_dataset ON jobs (dataset_id);"
		"INSERT INTO models VALUES ('" MODEL_ID "', 10, '2026-11-01T00:00:00Z', '{\"old\": 1}');"
		"INSERT INTO datasets VALUES ('" DATA_ID "', 20, '2026-11-01T00:00:00Z', '{}');"
		"INSERT INTO jobs (seq, id, kind, spec, status, idempotency_key, spec_hash, model_id, dataset_id,"
		" created_at, report) VALUES (7, 'j-00000000000000aa', 'analyze', '{}', 'succeeded', 'old-key',"
		" 'h', '" MODEL_ID "', '" DATA_ID "', '2026-11-01T00:00:00Z', '{\"r\": 1}');"
		"INSERT INTO jobs (seq, id, kind, spec, status, spec_hash, created_at) VALUES (9, 'j-00000000000000bb',"
		" 'analyze', '{}', 'failed', 'h', '2026-11-01T00:00:00Z');"
		"DELETE FROM jobs WHERE seq = 9;"
		"PRAGMA user_version = 1;";

	REQUIRE(be_tmpdir(dir, sizeof(dir)));
	snprintf(db, sizeof(db), "%s/paracorr.db", dir);
	REQUIRE(sqlite3_open(db, &raw) == SQLITE_OK);
	REQUIRE_MSG(sqlite3_exec(raw, v1, NULL, NULL, NULL) == SQLITE_OK, "%s", sqlite3_errmsg(raw));
	sqlite3_close(raw);

	REQUIRE_MSG(pcd_store_open(db, &s, &err) == PC_OK, "%s", err.text);
	REQUIRE(pcd_store_model_get(s, "default", MODEL_ID, &r, &err) == PC_OK);
	CHECK(!strcmp(r.tenant, "default") && r.bytes == 10 && strstr(r.info, "old"));
	pcd_blob_rec_free(&r);
	CHECK_INT(pcd_store_model_get(s, "alice", MODEL_ID, &r, NULL), PC_ERR_NOT_FOUND);
	CHECK_INT(pcd_store_dataset_get(s, "default", DATA_ID, &r, NULL), PC_OK);
	pcd_blob_rec_free(&r);
	REQUIRE(pcd_store_job_get(s, "default", "j-00000000000000aa", &j, &err) == PC_OK);
	CHECK(j.seq == 7 && !strcmp(j.tenant, "default") && j.has_report && j.status == PCD_JOB_SUCCEEDED);
	pcd_job_free(&j);
	/* the old key replays for default, and is free for another tenant */
	snprintf(spec, sizeof(spec), "{\"model\": \"%s\", \"dataset\": \"%s\"}", MODEL_ID, DATA_ID);
	CHECK_INT(pcd_store_job_submit(s, "default", 0, "analyze", spec, NULL, "old-key", 0, 0, NULL, NULL, NULL),
		  PC_ERR_CONFLICT); /* the spec text differs from the stored one */
	REQUIRE(pcd_store_job_submit(s, "default", 0, "analyze", spec, NULL, NULL, 0, 0, &j, &created, &err) == PC_OK);
	CHECK_MSG(j.seq == 10, "seq %lld after a deleted 9", (long long)j.seq);
	pcd_job_free(&j);
	pcd_store_close(s);
	/* opening again changes nothing */
	REQUIRE(pcd_store_open(db, &s, &err) == PC_OK);
	CHECK_INT(pcd_store_model_get(s, "default", MODEL_ID, &r, NULL), PC_OK);
	pcd_blob_rec_free(&r);
	pcd_store_close(s);
	be_rmtree(dir);
}

STORE_TEST(store_job_json_shape)
{
	struct fixture f;
	struct pcd_job j;
	struct pc_error err = {0};
	json_t *o;

	REQUIRE(setup(&f) == 0);
	REQUIRE(pcd_store_job_submit(f.s, "default", 0, "analyze", spec_seed(1), NULL, NULL, 0, 0, NULL, NULL, &err) == PC_OK);
	REQUIRE(pcd_store_job_claim(f.s, &j, &err) == PC_OK);
	REQUIRE(pcd_store_job_heartbeat(f.s, j.id, j.claim_token,
					"{\"phase\": \"random corruption\", \"done\": 37, \"total\": 120, \"fraction\": 0.31}",
					NULL, &err) == PC_OK);
	pcd_job_free(&j);
	{
		struct pcd_job *jobs;
		size_t n;
		REQUIRE(pcd_store_job_list(f.s, PCD_ALL_TENANTS, NULL, 0, 1, &jobs, &n, &err) == PC_OK && n == 1);
		o = pcd_job_to_json(&jobs[0]);
		REQUIRE(o);
		CHECK(strcmp(json_string_value(json_object_get(o, "status")), "running") == 0);
		CHECK_INT(json_integer_value(json_object_get(o, "attempts")), 1);
		CHECK_INT(json_integer_value(json_object_get(json_object_get(o, "progress"), "done")), 37);
		CHECK(json_is_null(json_object_get(o, "finished_at")));
		CHECK(json_is_null(json_object_get(o, "error")));
		CHECK(json_is_string(json_object_get(o, "created_at")));
		CHECK(strstr(json_string_value(json_object_get(json_object_get(o, "links"), "report")), "/report"));
		json_decref(o);
		pcd_jobs_free(jobs, n);
	}
	teardown(&f);
}

struct race {
	struct pcd_store *s;
	int submitted;
	int claimed;
	char seen[200][PCD_JOB_ID_LEN + 1];
};

static void *race_submit(void *arg)
{
	struct race *r = arg;
	int i;

	for (i = 0; i < 25; i++)
		if (pcd_store_job_submit(r->s, "default", 0, "analyze", spec_seed(i), NULL, NULL, 0, 0, NULL, NULL, NULL) == PC_OK)
			__atomic_add_fetch(&r->submitted, 1, __ATOMIC_SEQ_CST);
	return NULL;
}

static void *race_claim(void *arg)
{
	struct race *r = arg;
	struct pcd_job j;
	int idle = 0, k;

	while (__atomic_load_n(&r->claimed, __ATOMIC_SEQ_CST) < 100 && idle < 3000) {
		if (pcd_store_job_claim(r->s, &j, NULL) != PC_OK) {
			idle++;
			usleep(1000);
			continue;
		}
		idle = 0;
		k = __atomic_fetch_add(&r->claimed, 1, __ATOMIC_SEQ_CST);
		if (k < 200)
			memcpy(r->seen[k], j.id, sizeof(j.id));
		pcd_store_job_complete(r->s, j.id, j.claim_token, PCD_JOB_SUCCEEDED, "{}", NULL, NULL);
		pcd_job_free(&j);
	}
	return NULL;
}

STORE_TEST(store_concurrent_submit_and_claim)
{
	struct fixture f;
	struct race *r = calloc(1, sizeof(*r));
	pthread_t th[6];
	int i, k;

	REQUIRE(r);
	REQUIRE(setup(&f) == 0);
	r->s = f.s;
	for (i = 0; i < 4; i++)
		REQUIRE(pthread_create(&th[i], NULL, race_submit, r) == 0);
	for (i = 4; i < 6; i++)
		REQUIRE(pthread_create(&th[i], NULL, race_claim, r) == 0);
	for (i = 0; i < 6; i++)
		pthread_join(th[i], NULL);
	CHECK_INT(r->submitted, 100);
	CHECK_INT(r->claimed, 100);
	/* each job claimed once */
	for (i = 0; i < 100 && i < r->claimed; i++)
		for (k = i + 1; k < 100 && k < r->claimed; k++)
			CHECK_MSG(strcmp(r->seen[i], r->seen[k]) != 0, "%s claimed twice", r->seen[i]);
	free(r);
	teardown(&f);
}

/* What a pending job references cannot be deleted under it, its training
 * dataset included; once it has finished, it can. */
STORE_TEST(store_refuses_deleting_what_a_pending_job_references)
{
	static const char train[] = "cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc";
	struct fixture f;
	struct pc_error err = {0};
	struct pcd_job j;
	struct pcd_job_refs refs = refs_of(MODEL_ID, DATA_ID, train);
	int unused = -1;

	REQUIRE(setup(&f) == 0);
	REQUIRE(pcd_store_dataset_put(f.s, "default", train, 30, "{}", NULL, &err) == PC_OK);
	REQUIRE(pcd_store_job_submit(f.s, "default", 0, "harden", "{}", &refs, NULL, 0, 0, &j, NULL, &err) == PC_OK);
	CHECK_INT(pcd_store_dataset_delete(f.s, "default", train, &unused, &err), PC_ERR_CONFLICT);
	CHECK_MSG(strstr(err.text, j.id) && strstr(err.text, "training.dataset"), "%s", err.text);
	{
		struct pcd_blob_rec r = {0};

		CHECK_INT(pcd_store_dataset_get(f.s, "default", train, &r, NULL), PC_OK);
		pcd_blob_rec_free(&r);
	}
	/* while it runs, too */
	{
		struct pcd_job c;

		REQUIRE(pcd_store_job_claim(f.s, &c, &err) == PC_OK);
		CHECK_INT(pcd_store_dataset_delete(f.s, "default", train, NULL, NULL), PC_ERR_CONFLICT);
		REQUIRE(pcd_store_job_complete(f.s, j.id, c.claim_token, PCD_JOB_FAILED, NULL, "{}", &err) == PC_OK);
		pcd_job_free(&c);
	}
	CHECK_INT(pcd_store_dataset_delete(f.s, "default", train, &unused, &err), PC_OK);
	CHECK_INT(unused, 1);
	pcd_job_free(&j);
	teardown(&f);
}

/* A job's artifact is a row of the store: it survives a restart and goes
 * with the job. */
STORE_TEST(store_records_job_artifacts)
{
	static const char made[] = "dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd";
	struct fixture f;
	struct pc_error err = {0};
	char id[PCD_JOB_ID_LEN + 1], got[65];

	struct pcd_job c;

	REQUIRE(setup(&f) == 0);
	REQUIRE(submit(f.s, 1, NULL, id) == PC_OK);
	CHECK_INT(pcd_store_job_artifact_get(f.s, id, "model.onnx", got, NULL), PC_ERR_NOT_FOUND);
	/* only the running attempt records what it made */
	CHECK_INT(pcd_store_job_artifact_put(f.s, id, "0123456789abcdef0123456789abcdef", "model.onnx", made, NULL),
		  PC_ERR_LEASE_LOST);
	REQUIRE(pcd_store_job_claim(f.s, &c, &err) == PC_OK);
	REQUIRE(pcd_store_job_artifact_put(f.s, id, c.claim_token, "model.onnx", made, &err) == PC_OK);
	pcd_store_close(f.s);
	REQUIRE(pcd_store_open(f.db, &f.s, &err) == PC_OK);
	CHECK_INT(pcd_store_job_artifact_get(f.s, id, "model.onnx", got, &err), PC_OK);
	CHECK(!strcmp(got, made));
	REQUIRE(pcd_store_job_complete(f.s, id, c.claim_token, PCD_JOB_SUCCEEDED, "{}", NULL, &err) == PC_OK);
	pcd_job_free(&c);
	REQUIRE(pcd_store_job_delete(f.s, PCD_ALL_TENANTS, id, &err) == PC_OK);
	CHECK_INT(pcd_store_job_artifact_get(f.s, id, "model.onnx", got, NULL), PC_ERR_NOT_FOUND);
	teardown(&f);
}

/* A version 2 store: its jobs' references come from the model_id and
 * dataset_id columns, and a harden job's training dataset from its spec,
 * so a queued harden job's training data is held from the first start. */
TEST(store_migrates_v2_to_job_references)
{
	static const char train[] = "cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc";
	char dir[PATH_MAX - 32], db[PATH_MAX];
	sqlite3 *raw = NULL;
	struct pcd_store *s = NULL;
	struct pc_error err = {0};
	struct pcd_job j;
	int version = -1;
	sqlite3_stmt *st;
	static const char v2[] =
		"CREATE TABLE models (tenant TEXT NOT NULL, id TEXT NOT NULL, bytes INTEGER NOT NULL,"
		" created_at TEXT NOT NULL, info TEXT NOT NULL, PRIMARY KEY (tenant, id));"
		"CREATE INDEX models_id ON models (id);"
		"CREATE TABLE datasets (tenant TEXT NOT NULL, id TEXT NOT NULL, bytes INTEGER NOT NULL,"
		" created_at TEXT NOT NULL, info TEXT NOT NULL, PRIMARY KEY (tenant, id));"
		"CREATE INDEX datasets_id ON datasets (id);"
		"CREATE TABLE jobs (seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE,"
		" tenant TEXT NOT NULL, kind TEXT NOT NULL, spec TEXT NOT NULL,"
		" status TEXT NOT NULL CHECK (status IN ('queued','running','succeeded','failed','cancelled')),"
		" attempts INTEGER NOT NULL DEFAULT 0, cancel_requested INTEGER NOT NULL DEFAULT 0,"
		" progress TEXT, error TEXT, report TEXT, idempotency_key TEXT, spec_hash TEXT NOT NULL,"
		" model_id TEXT, dataset_id TEXT, created_at TEXT NOT NULL, started_at TEXT, finished_at TEXT,"
		" heartbeat_at TEXT, UNIQUE (tenant, idempotency_key));"
		"CREATE INDEX jobs_status_seq ON jobs (status, seq);"
		"CREATE INDEX jobs_tenant_seq ON jobs (tenant, seq);"
		"CREATE INDEX jobs_model ON jobs (model_id);"
		"CREATE INDEX jobs_dataset ON jobs (dataset_id);"
		"INSERT INTO models VALUES ('default', '" MODEL_ID "', 10, '2026-11-01T00:00:00Z', '{}');"
		"INSERT INTO datasets VALUES ('default', '" DATA_ID "', 20, '2026-11-01T00:00:00Z', '{}');"
		"INSERT INTO datasets VALUES ('default', 'cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc',"
		" 30, '2026-11-01T00:00:00Z', '{}');"
		"INSERT INTO jobs (seq, id, tenant, kind, spec, status, spec_hash, model_id, dataset_id, created_at)"
		" VALUES (3, 'j-00000000000000aa', 'default', 'harden', '{\"model\": \"" MODEL_ID "\", \"dataset\": \""
		DATA_ID "\", \"training\": {\"dataset\": \"cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc\"}}',"
		" 'queued', 'h', '" MODEL_ID "', '" DATA_ID "', '2026-11-01T00:00:00Z');"
		"PRAGMA user_version = 2;";

	REQUIRE(be_tmpdir(dir, sizeof(dir)));
	snprintf(db, sizeof(db), "%s/paracorr.db", dir);
	REQUIRE(sqlite3_open(db, &raw) == SQLITE_OK);
	REQUIRE_MSG(sqlite3_exec(raw, v2, NULL, NULL, NULL) == SQLITE_OK, "%s", sqlite3_errmsg(raw));
	sqlite3_close(raw);

	REQUIRE_MSG(pcd_store_open(db, &s, &err) == PC_OK, "%s", err.text);
	REQUIRE(pcd_store_job_get(s, "default", "j-00000000000000aa", &j, &err) == PC_OK);
	CHECK(j.seq == 3 && j.status == PCD_JOB_QUEUED && !strcmp(j.kind, "harden"));
	pcd_job_free(&j);
	pc_error_clear(&err);
	CHECK_INT(pcd_store_dataset_delete(s, "default", train, NULL, &err), PC_ERR_CONFLICT);
	CHECK_MSG(strstr(err.text, "training.dataset"), "%s", err.text);
	CHECK_INT(pcd_store_model_delete(s, "default", MODEL_ID, NULL, NULL), PC_ERR_CONFLICT);
	CHECK_INT(pcd_store_dataset_delete(s, "default", DATA_ID, NULL, NULL), PC_ERR_CONFLICT);
	pcd_store_close(s);
	/* version 3, the old columns gone */
	REQUIRE(sqlite3_open(db, &raw) == SQLITE_OK);
	REQUIRE(sqlite3_prepare_v2(raw, "PRAGMA user_version", -1, &st, NULL) == SQLITE_OK);
	if (sqlite3_step(st) == SQLITE_ROW)
		version = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	CHECK_INT(version, 6); /* and on to the current version */
	CHECK(sqlite3_prepare_v2(raw, "SELECT model_id FROM jobs", -1, &st, NULL) != SQLITE_OK);
	sqlite3_close(raw);
	be_rmtree(dir);
}

/* A database a newer program wrote is refused, and left as it was. */
TEST(store_refuses_a_newer_schema)
{
	char dir[PATH_MAX - 32], db[PATH_MAX];
	sqlite3 *raw = NULL;
	sqlite3_stmt *st;
	struct pcd_store *s = NULL;
	struct pc_error err = {0};
	int version = -1, objects = -1;

	REQUIRE(be_tmpdir(dir, sizeof(dir)));
	snprintf(db, sizeof(db), "%s/paracorr.db", dir);
	REQUIRE(sqlite3_open(db, &raw) == SQLITE_OK);
	REQUIRE(sqlite3_exec(raw, "PRAGMA user_version = 7", NULL, NULL, NULL) == SQLITE_OK);
	sqlite3_close(raw);

	CHECK_INT(pcd_store_open(db, &s, &err), PC_ERR_UNSUPPORTED);
	CHECK(!s);
	CHECK_MSG(!strcmp(err.where, "store") &&
			  !strcmp(err.text, "database schema version 7 is newer than this program's 6"),
		  "%s: %s", err.where, err.text);
	REQUIRE(sqlite3_open(db, &raw) == SQLITE_OK);
	REQUIRE(sqlite3_prepare_v2(raw,
				   "SELECT user_version, (SELECT count(*) FROM sqlite_master) FROM pragma_user_version", -1,
				   &st, NULL) == SQLITE_OK);
	if (sqlite3_step(st) == SQLITE_ROW) {
		version = sqlite3_column_int(st, 0);
		objects = sqlite3_column_int(st, 1);
	}
	sqlite3_finalize(st);
	sqlite3_close(raw);
	CHECK_INT(version, 7);
	CHECK_INT(objects, 0);
	be_rmtree(dir);
}

/* A store of version 3 (before names): it opens, every row gets an empty
 * name and no labels, and a stored report its headline. */
TEST(store_migrates_v3_to_names)
{
	char dir[PATH_MAX - 32], db[PATH_MAX];
	sqlite3 *raw = NULL;
	struct pcd_store *s = NULL;
	struct pc_error err = {0};
	struct pcd_blob_rec r;
	struct pcd_job j;
	json_t *h;
	static const char v3[] =
		"CREATE TABLE models (tenant TEXT NOT NULL, id TEXT NOT NULL, bytes INTEGER NOT NULL,"
		" created_at TEXT NOT NULL, info TEXT NOT NULL, PRIMARY KEY (tenant, id));"
		"CREATE TABLE datasets (tenant TEXT NOT NULL, id TEXT NOT NULL, bytes INTEGER NOT NULL,"
		" created_at TEXT NOT NULL, info TEXT NOT NULL, PRIMARY KEY (tenant, id));"
		"CREATE TABLE jobs (seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, tenant TEXT NOT NULL,"
		" kind TEXT NOT NULL, spec TEXT NOT NULL, status TEXT NOT NULL CHECK (status IN ('queued','running',"
		"'succeeded','failed','cancelled')), attempts INTEGER NOT NULL DEFAULT 0, cancel_requested INTEGER NOT"
		" NULL DEFAULT 0, progress TEXT, error TEXT, report TEXT, idempotency_key TEXT, spec_hash TEXT NOT NULL,"
		" created_at TEXT NOT NULL, started_at TEXT, finished_at TEXT, heartbeat_at TEXT,"
		" UNIQUE (tenant, idempotency_key));"
		"CREATE TABLE job_uploads (job_id TEXT NOT NULL, field TEXT NOT NULL, upload TEXT NOT NULL,"
		" upload_id TEXT NOT NULL, PRIMARY KEY (job_id, field));"
		"CREATE TABLE job_artifacts (job_id TEXT NOT NULL, name TEXT NOT NULL, model_id TEXT NOT NULL,"
		" PRIMARY KEY (job_id, name));"
		"INSERT INTO models VALUES ('default', '" MODEL_ID "', 10, '2026-11-01T00:00:00Z', '{}');"
		"INSERT INTO jobs (seq, id, tenant, kind, spec, status, spec_hash, created_at, report) VALUES (3,"
		" 'j-00000000000000aa', 'default', 'analyze', '{}', 'succeeded', 'h', '2026-11-01T00:00:00Z',"
		" '{\"clean\": {\"accuracy\": 0.9}, \"results\": [{\"group\": \"all\", \"norm\": \"l2\","
		" \"epsilon\": 0.1, \"sparsity\": 0, \"steps\": 1, \"gradient\": {\"accuracy\": 0.7}, \"random\":"
		" {\"accuracy_mean\": 0.85}}, {\"group\": \"all\", \"norm\": \"l2\", \"epsilon\": 0.3, \"sparsity\": 0,"
		" \"steps\": 1, \"gradient\": {\"accuracy\": 0.25}, \"random\": {\"accuracy_mean\": 0.8}},"
		" {\"group\": \"all\", \"norm\": \"linf\", \"epsilon\": 9, \"sparsity\": 0, \"steps\": 1, \"gradient\":"
		" {\"accuracy\": 0.1}, \"random\": {\"accuracy_mean\": 0.1}}], \"faults\": {\"search\": [{\"flips\":"
		" [1, 2, 3]}]}}');"
		"PRAGMA user_version = 3;";

	REQUIRE(be_tmpdir(dir, sizeof(dir)));
	snprintf(db, sizeof(db), "%s/paracorr.db", dir);
	REQUIRE(sqlite3_open(db, &raw) == SQLITE_OK);
	REQUIRE_MSG(sqlite3_exec(raw, v3, NULL, NULL, NULL) == SQLITE_OK, "%s", sqlite3_errmsg(raw));
	sqlite3_close(raw);

	REQUIRE_MSG(pcd_store_open(db, &s, &err) == PC_OK, "%s", err.text);
	REQUIRE(pcd_store_model_get(s, "default", MODEL_ID, &r, &err) == PC_OK);
	CHECK_MSG(!strcmp(r.name, ""), "%s", r.name);
	pcd_blob_rec_free(&r);
	REQUIRE(pcd_store_job_get(s, "default", "j-00000000000000aa", &j, &err) == PC_OK);
	CHECK_MSG(!strcmp(j.name, ""), "%s", j.name);
	CHECK_MSG(!strcmp(j.labels, "{}"), "%s", j.labels);
	REQUIRE_MSG(j.headline != NULL, "no headline after the migration");
	h = json_loads(j.headline, 0, NULL);
	REQUIRE(h);
	/* the largest radius of the first setting (l2), not the linf row */
	CHECK_CLOSE(json_real_value(json_object_get(h, "clean_accuracy")), 0.9, 0, 0);
	CHECK_CLOSE(json_real_value(json_object_get(h, "epsilon")), 0.3, 0, 0);
	CHECK_CLOSE(json_real_value(json_object_get(h, "gradient_accuracy")), 0.25, 0, 0);
	CHECK_CLOSE(json_real_value(json_object_get(h, "random_accuracy")), 0.8, 0, 0);
	CHECK_MSG(!strcmp(json_string_value(json_object_get(h, "norm")), "l2"), "%s", json_string_value(json_object_get(h, "norm")));
	CHECK_INT((int)json_integer_value(json_object_get(h, "flips_to_target")), 3);
	CHECK(json_object_get(h, "critical_epsilon") == NULL);
	json_decref(h);
	pcd_job_free(&j);
	pcd_store_close(s);
	be_rmtree(dir);
}

/* Names and labels: set, listed, filtered, and the pages of a filtered
 * listing cover exactly the matching jobs. */
STORE_TEST(store_names_and_label_filters)
{
	struct fixture f;
	struct pc_error err = {0};
	struct pcd_blob_rec *recs = NULL;
	struct pcd_job *jobs = NULL, j;
	size_t n = 0;
	int64_t after = 0;
	int seen = 0, pages = 0;

	REQUIRE(setup(&f) == 0);
	REQUIRE(pcd_store_upload_name(f.s, PCD_UPLOAD_MODEL, "default", MODEL_ID, "resnet v2", &err) == PC_OK);
	CHECK_INT(pcd_store_upload_name(f.s, PCD_UPLOAD_MODEL, "alice", MODEL_ID, "x", NULL), PC_ERR_NOT_FOUND);
	REQUIRE(pcd_store_model_list(f.s, "default", "resnet v2", NULL, NULL, 10, &recs, &n, &err) == PC_OK);
	CHECK(n == 1 && !strcmp(recs[0].name, "resnet v2"));
	pcd_blob_recs_free(recs, n);
	REQUIRE(pcd_store_model_list(f.s, "default", "resnet v1", NULL, NULL, 10, &recs, &n, &err) == PC_OK);
	CHECK(n == 0);
	for (int i = 0; i < 7; i++) {
		char spec[64], name[32];
		struct pcd_job_meta meta = {name, i % 2 ? "{\"arch\":\"cnn\",\"prec\":\"int8\"}" : "{\"arch\":\"cnn\"}"};

		snprintf(spec, sizeof(spec), "{\"seed\": %d}", i);
		snprintf(name, sizeof(name), "run %d", i % 3);
		REQUIRE(pcd_store_job_submit_meta(f.s, "default", 0, "analyze", spec, &meta, NULL, NULL, 0, 0, NULL, NULL,
						  &err) == PC_OK);
	}
	/* int8: i = 1, 3, 5, in pages of 2 */
	do {
		struct pcd_job_filter flt = {.label_keys = {"arch", "prec"}, .label_values = {"cnn", "int8"}, .n_labels = 2};

		REQUIRE(pcd_store_job_find(f.s, "default", &flt, after, 2, &jobs, &n, &err) == PC_OK);
		for (size_t k = 0; k < n; k++) {
			CHECK_MSG(strstr(jobs[k].labels, "int8") != NULL, "%s", jobs[k].labels);
			after = jobs[k].seq;
		}
		seen += (int)n;
		pages++;
		pcd_jobs_free(jobs, n);
	} while (n == 2 && pages < 10);
	CHECK_INT(seen, 3);
	{
		struct pcd_job_filter flt = {.name = "run 1", .label_keys = {"prec"}, .label_values = {"int8"}, .n_labels = 1};

		/* run 1: i = 1, 4; int8 of those: 1 */
		REQUIRE(pcd_store_job_find(f.s, "default", &flt, 0, 10, &jobs, &n, &err) == PC_OK);
		CHECK_INT((int)n, 1);
		if (n == 1) {
			CHECK_MSG(!strcmp(jobs[0].name, "run 1"), "%s", jobs[0].name);
			CHECK_MSG(!strcmp(jobs[0].spec, "{\"seed\": 1}"), "%s", jobs[0].spec);
		}
		pcd_jobs_free(jobs, n);
	}
	/* the idempotency key covers the name */
	{
		struct pcd_job_meta a = {"a", NULL}, b = {"b", NULL};

		REQUIRE(pcd_store_job_submit_meta(f.s, "default", 0, "analyze", "{}", &a, NULL, "k", 0, 0, &j, NULL, &err) ==
			PC_OK);
		pcd_job_free(&j);
		CHECK_INT(pcd_store_job_submit_meta(f.s, "default", 0, "analyze", "{}", &b, NULL, "k", 0, 0, NULL, NULL, NULL),
			  PC_ERR_CONFLICT);
	}
	teardown(&f);
}

/* A PostgreSQL database a newer program migrated is refused, and left as
 * it was (its version row and its tables). */
TEST(store_pg_refuses_a_newer_schema)
{
	struct fixture f;
	struct pc_error err = {0};
	struct pcd_store *s = NULL;
	char why[600];

	if (!pgu_available(why, sizeof(why))) {
		pc_test_skip(t, why);
		return;
	}
	cur_be = BE_PG;
	REQUIRE(setup(&f) == 0);
	cur_be = BE_SQLITE;
	pcd_store_close(f.s);
	f.s = NULL;
	REQUIRE_MSG(pgu_exec(f.db, "UPDATE paracorr_schema SET version = 99", why, sizeof(why)), "%s", why);
	CHECK_INT(pcd_store_open(f.db, &s, &err), PC_ERR_UNSUPPORTED);
	CHECK(!s);
	CHECK_MSG(!strcmp(err.where, "store") &&
			  !strcmp(err.text, "database schema version 99 is newer than this program's 4"),
		  "%s: %s", err.where, err.text);
	/* still version 99, the jobs table there: the refusal changed nothing */
	CHECK_MSG(pgu_exec(f.db, "SELECT 1 FROM paracorr_schema WHERE version = 99 HAVING count(*) = 1", why,
			   sizeof(why)),
		  "%s", why);
	CHECK_MSG(pgu_exec(f.db, "SELECT seq FROM jobs", why, sizeof(why)), "%s", why);
	teardown(&f);
}

struct two_claims {
	struct pcd_store *s;
	int64_t seqs[40];
	int n;
};

static void *claim_all(void *arg)
{
	struct two_claims *c = arg;
	struct pcd_job j;

	/* bounded: 40 jobs in all, and a claim that finds none ends it */
	while (c->n < 40 && pcd_store_job_claim(c->s, &j, NULL) == PC_OK) {
		c->seqs[c->n++] = j.seq;
		pcd_store_job_complete(c->s, j.id, j.claim_token, PCD_JOB_SUCCEEDED, "{}", NULL, NULL);
		pcd_job_free(&j);
	}
	return NULL;
}

/* Two connections (two daemons' stores) on one database claim together:
 * every job exactly once, each connection's claims in submission order
 * (on PostgreSQL, FOR UPDATE SKIP LOCKED; on SQLite, BEGIN IMMEDIATE). */
STORE_TEST(store_two_connections_claim_each_job_once)
{
	struct fixture f;
	struct two_claims c[2] = {{0}};
	struct pc_error err = {0};
	pthread_t th[2];
	int seen[41] = {0}, total = 0;

	REQUIRE(setup(&f) == 0);
	for (int i = 0; i < 40; i++)
		REQUIRE(submit(f.s, i, NULL, NULL) == PC_OK);
	c[0].s = f.s;
	REQUIRE_MSG(pcd_store_open(f.db, &c[1].s, &err) == PC_OK, "%s", err.text);
	for (int i = 0; i < 2; i++)
		REQUIRE(pthread_create(&th[i], NULL, claim_all, &c[i]) == 0);
	for (int i = 0; i < 2; i++)
		pthread_join(th[i], NULL);
	pcd_store_close(c[1].s);
	for (int i = 0; i < 2; i++) {
		for (int k = 0; k < c[i].n; k++) {
			CHECK_MSG(c[i].seqs[k] >= 1 && c[i].seqs[k] <= 40, "seq %lld", (long long)c[i].seqs[k]);
			if (c[i].seqs[k] >= 1 && c[i].seqs[k] <= 40)
				seen[c[i].seqs[k]]++;
			if (k > 0)
				CHECK_MSG(c[i].seqs[k] > c[i].seqs[k - 1], "claim %d after %lld: %lld", k,
					  (long long)c[i].seqs[k - 1], (long long)c[i].seqs[k]);
		}
		total += c[i].n;
	}
	CHECK_INT(total, 40);
	for (int i = 1; i <= 40; i++)
		CHECK_MSG(seen[i] == 1, "job seq %d claimed %d times", i, seen[i]);
	teardown(&f);
}

/* The PostgreSQL server stops: every call answers PC_ERR_BUSY (HTTP 503)
 * saying the store is unreachable; once it is back, the next call
 * reconnects by itself and sees what was committed before. */
TEST(store_pg_unreachable_is_busy_and_reconnects)
{
	struct pgu pg;
	struct pcd_store *s = NULL;
	struct pc_error err = {0};
	struct pcd_job j;
	char url[256], why[600], id[PCD_JOB_ID_LEN + 1];
	int64_t queued = -1;

	if (!pgu_available(why, sizeof(why))) {
		pc_test_skip(t, why);
		return;
	}
	REQUIRE_MSG(pgu_init(&pg), "%s", pg.why);
	REQUIRE_MSG(pgu_new_db(&pg, url, sizeof(url)), "%s", pg.why);
	REQUIRE_MSG(pcd_store_open(url, &s, &err) == PC_OK, "%s", err.text);
	CHECK(!strcmp(pcd_store_backend(s), "postgresql"));
	REQUIRE(pcd_store_model_put(s, "default", MODEL_ID, 10, "{}", NULL, &err) == PC_OK);
	REQUIRE(pcd_store_dataset_put(s, "default", DATA_ID, 20, "{}", NULL, &err) == PC_OK);
	REQUIRE(submit(s, 1, NULL, id) == PC_OK);

	REQUIRE_MSG(pgu_stop(&pg), "%s", pg.why);
	CHECK_INT(pcd_store_ping(s, &err), PC_ERR_BUSY);
	CHECK_MSG(strstr(err.text, "the PostgreSQL store is unreachable"), "%s", err.text);
	pc_error_clear(&err);
	CHECK_INT(pcd_store_job_get(s, PCD_ALL_TENANTS, id, &j, &err), PC_ERR_BUSY);
	CHECK_MSG(strstr(err.text, "the PostgreSQL store is unreachable"), "%s", err.text);
	pc_error_clear(&err);
	CHECK_INT(submit(s, 2, NULL, NULL), PC_ERR_BUSY);
	/* a new store cannot open either, with the same class of answer */
	{
		struct pcd_store *s2 = NULL;

		CHECK_INT(pcd_store_open(url, &s2, &err), PC_ERR_BUSY);
		CHECK_MSG(strstr(err.text, "cannot connect to the PostgreSQL store"), "%s", err.text);
		CHECK(!s2);
		pc_error_clear(&err);
	}

	REQUIRE_MSG(pgu_start(&pg), "%s", pg.why);
	CHECK_MSG(pcd_store_ping(s, &err) == PC_OK, "%s", err.text);
	REQUIRE_MSG(pcd_store_job_get(s, PCD_ALL_TENANTS, id, &j, &err) == PC_OK, "%s", err.text);
	CHECK_INT(j.status, PCD_JOB_QUEUED);
	pcd_job_free(&j);
	CHECK_INT(pcd_store_queue_depth(s, &queued, NULL, &err), PC_OK);
	CHECK_INT(queued, 1); /* the submit while it was down left nothing */
	pcd_store_close(s);
	pgu_free(&pg);
}

/* Sweeps from store b until it requeued (or failed) one job whose lease
 * ran out: at most 100 tries 0.1 s apart, well beyond the 1 s lease. */
static int sweep_until_one(struct pcd_store *b, int max_attempts, int *failed)
{
	struct pc_error err = {0};
	int requeued = 0, nfail = 0;

	for (int i = 0; i < 100 && requeued + nfail == 0; i++) {
		usleep(100000);
		if (pcd_store_job_sweep(b, max_attempts, &requeued, &nfail, &err) != PC_OK)
			return -1;
	}
	if (failed)
		*failed = nfail;
	return requeued + nfail;
}

/* Leases and fencing, on both backends: node "a" claims with a 1 s lease
 * and stops heartbeating; a second connection (node "b") finds nothing to
 * sweep while the lease holds, then requeues the job once it ran out,
 * attempts counted; a's heartbeat, artifact and outcome with its old token
 * are refused (PC_ERR_LEASE_LOST) and leave the row as it was; b claims
 * (attempt 2, a new token, node "b") and its outcome lands; after
 * max_attempts the sweep gives up on the job as recovery does. */
STORE_TEST(store_lease_expiry_requeues_and_fences_the_old_attempt)
{
	struct fixture f;
	struct pcd_store *b = NULL;
	struct pc_error err = {0};
	char id[PCD_JOB_ID_LEN + 1], old[PCD_TOKEN_LEN + 1], model[65];
	struct pcd_job j, before, after;
	int requeued = -1, failed = -1;
	char *report = NULL;

	REQUIRE(setup(&f) == 0);
	REQUIRE_MSG(pcd_store_set_node(f.s, "a", 1000, &err) == PC_OK, "%s", err.text);
	REQUIRE_MSG(pcd_store_open(f.db, &b, &err) == PC_OK, "%s", err.text);
	REQUIRE(pcd_store_set_node(b, "b", 1000, &err) == PC_OK);
	CHECK_INT(pcd_store_set_node(b, "b c", 1000, NULL), PC_ERR_INVALID);
	CHECK_INT(pcd_store_set_node(b, "b", 999, NULL), PC_ERR_INVALID);
	REQUIRE(submit(f.s, 1, NULL, id) == PC_OK);
	REQUIRE(pcd_store_job_claim(f.s, &j, &err) == PC_OK);
	CHECK(!strcmp(j.node, "a"));
	memcpy(old, j.claim_token, sizeof(old));
	pcd_job_free(&j);
	/* a live lease is nobody's to take */
	REQUIRE(pcd_store_job_sweep(b, 3, &requeued, &failed, &err) == PC_OK);
	CHECK_INT(requeued, 0);
	CHECK_INT(failed, 0);
	CHECK_INT(pcd_store_job_heartbeat(f.s, id, old, "{\"phase\": \"a\"}", NULL, &err), PC_OK);
	/* a stops; b requeues the job once the lease ran out */
	CHECK_INT(sweep_until_one(b, 3, &failed), 1);
	CHECK_INT(failed, 0);
	REQUIRE(pcd_store_job_get(b, PCD_ALL_TENANTS, id, &before, &err) == PC_OK);
	CHECK_INT(before.status, PCD_JOB_QUEUED);
	CHECK_INT(before.attempts, 1); /* the attempt that stopped stays counted */
	CHECK(before.claim_token[0] == '\0');
	/* a comes back: every write of its attempt is refused */
	pc_error_clear(&err);
	CHECK_INT(pcd_store_job_heartbeat(f.s, id, old, "{\"phase\": \"late\"}", NULL, &err), PC_ERR_LEASE_LOST);
	CHECK_MSG(strstr(err.text, "lease expired"), "%s", err.text);
	CHECK_INT(pc_status_http(PC_ERR_LEASE_LOST), 409);
	CHECK_INT(pcd_store_job_artifact_put(f.s, id, old, "model.onnx", MODEL_ID, NULL), PC_ERR_LEASE_LOST);
	CHECK_INT(pcd_store_job_complete(f.s, id, old, PCD_JOB_SUCCEEDED, "{\"by\": \"a\"}", NULL, NULL),
		  PC_ERR_LEASE_LOST);
	CHECK_INT(pcd_store_job_requeue(f.s, id, old, NULL), PC_ERR_LEASE_LOST);
	REQUIRE(pcd_store_job_get(b, PCD_ALL_TENANTS, id, &after, &err) == PC_OK);
	CHECK_INT(after.status, PCD_JOB_QUEUED);
	CHECK_INT(after.attempts, before.attempts);
	CHECK(!after.has_report);
	CHECK((!after.progress && !before.progress) ||
	      (after.progress && before.progress && !strcmp(after.progress, before.progress)));
	CHECK(!strcmp(after.heartbeat_at, before.heartbeat_at));
	CHECK_INT(pcd_store_job_artifact_get(b, id, "model.onnx", model, NULL), PC_ERR_NOT_FOUND);
	pcd_job_free(&before);
	pcd_job_free(&after);
	/* b runs it: attempt 2 under a new token; a's old token still fails */
	REQUIRE(pcd_store_job_claim(b, &j, &err) == PC_OK);
	CHECK(!strcmp(j.id, id));
	CHECK_INT(j.attempts, 2);
	CHECK(!strcmp(j.node, "b"));
	CHECK(strcmp(j.claim_token, old) != 0);
	CHECK_INT(pcd_store_job_complete(f.s, id, old, PCD_JOB_SUCCEEDED, "{\"by\": \"a\"}", NULL, NULL),
		  PC_ERR_LEASE_LOST);
	CHECK_INT(pcd_store_job_complete(b, id, j.claim_token, PCD_JOB_SUCCEEDED, "{\"by\": \"b\"}", NULL, &err),
		  PC_OK);
	pcd_job_free(&j);
	REQUIRE(pcd_store_job_report(f.s, PCD_ALL_TENANTS, id, &report, &err) == PC_OK);
	CHECK_MSG(!strcmp(report, "{\"by\": \"b\"}"), "%s", report);
	free(report);
	REQUIRE(pcd_store_job_get(f.s, PCD_ALL_TENANTS, id, &j, &err) == PC_OK);
	CHECK_INT(j.attempts, 2);
	CHECK(!strcmp(j.node, "b"));
	{
		json_t *o = pcd_job_to_json(&j);

		CHECK(o && !strcmp(json_string_value(json_object_get(o, "node")) ?: "", "b"));
		CHECK(o && !json_object_get(o, "claim_token"));
		json_decref(o);
	}
	pcd_job_free(&j);

	/* the attempts bound: a job whose every lease ran out is given up */
	REQUIRE(submit(f.s, 2, NULL, id) == PC_OK);
	for (int round = 1; round <= 2; round++) {
		REQUIRE(pcd_store_job_claim(f.s, &j, &err) == PC_OK);
		CHECK_INT(j.attempts, round);
		pcd_job_free(&j);
		CHECK_INT(sweep_until_one(b, 2, &failed), 1);
		CHECK_INT(failed, round == 2);
	}
	REQUIRE(pcd_store_job_get(f.s, PCD_ALL_TENANTS, id, &j, &err) == PC_OK);
	CHECK_INT(j.status, PCD_JOB_FAILED);
	CHECK(j.error && strstr(j.error, "gave up after 2 attempts"));
	pcd_job_free(&j);
	pcd_store_close(b);
	teardown(&f);
}

/* Many nodes on one PostgreSQL database: a node starting (its recovery)
 * requeues the jobs left running under its own name, and leaves another
 * live node's running job alone; both may recover at once (no daemon lock
 * any more). */
TEST(store_pg_recovery_leaves_other_nodes_jobs)
{
	struct fixture f;
	struct pcd_store *s2 = NULL;
	struct pc_error err = {0};
	char why[600], mine[PCD_JOB_ID_LEN + 1], theirs[PCD_JOB_ID_LEN + 1];
	struct pcd_job j;
	int requeued = -1, failed = -1;

	if (!pgu_available(why, sizeof(why))) {
		pc_test_skip(t, why);
		return;
	}
	cur_be = BE_PG;
	REQUIRE(setup(&f) == 0);
	cur_be = BE_SQLITE;
	REQUIRE(pcd_store_set_node(f.s, "n1", 60000, &err) == PC_OK);
	REQUIRE_MSG(pcd_store_open(f.db, &s2, &err) == PC_OK, "%s", err.text);
	REQUIRE(pcd_store_set_node(s2, "n2", 60000, &err) == PC_OK);
	REQUIRE(submit(f.s, 1, NULL, mine) == PC_OK);
	REQUIRE(submit(f.s, 2, NULL, theirs) == PC_OK);
	REQUIRE(pcd_store_job_claim(f.s, &j, &err) == PC_OK);
	CHECK(!strcmp(j.id, mine));
	pcd_job_free(&j);
	REQUIRE(pcd_store_job_claim(s2, &j, &err) == PC_OK);
	CHECK(!strcmp(j.id, theirs));
	pcd_job_free(&j);
	/* n1 "restarts" */
	pcd_store_close(f.s);
	REQUIRE(pcd_store_open(f.db, &f.s, &err) == PC_OK);
	REQUIRE(pcd_store_set_node(f.s, "n1", 60000, &err) == PC_OK);
	REQUIRE_MSG(pcd_store_job_recover(f.s, 3, &requeued, &failed, &err) == PC_OK, "%s", err.text);
	CHECK_INT(requeued, 1);
	CHECK_INT(failed, 0);
	REQUIRE(pcd_store_job_get(f.s, PCD_ALL_TENANTS, mine, &j, &err) == PC_OK);
	CHECK_INT(j.status, PCD_JOB_QUEUED);
	pcd_job_free(&j);
	REQUIRE(pcd_store_job_get(f.s, PCD_ALL_TENANTS, theirs, &j, &err) == PC_OK);
	CHECK_INT(j.status, PCD_JOB_RUNNING);
	CHECK(!strcmp(j.node, "n2"));
	pcd_job_free(&j);
	CHECK_MSG(pcd_store_job_recover(s2, 3, NULL, NULL, &err) == PC_OK, "%s", err.text);
	pcd_store_close(s2);
	teardown(&f);
}

/* LISTEN/NOTIFY: a store waiting for jobs hears a submit made through
 * another connection at once (the wait ends notified well before its 30 s
 * timeout, which bounds the test), and times out unnotified when nothing
 * is queued. SQLite has no notifications: PC_ERR_UNSUPPORTED at once. */
struct waiter {
	struct pcd_store *s;
	int rc, notified;
};

static void *wait_for_jobs(void *arg)
{
	struct waiter *w = arg;

	w->rc = pcd_store_wait_jobs(w->s, 30000, &w->notified, NULL);
	return NULL;
}

STORE_TEST(store_wait_jobs_hears_another_nodes_submit)
{
	struct fixture f;
	struct pcd_store *b = NULL;
	struct pc_error err = {0};
	struct waiter w = {0};
	pthread_t th;
	int notified = -1;

	REQUIRE(setup(&f) == 0);
	if (cur_be == BE_SQLITE) {
		CHECK_INT(pcd_store_wait_jobs(f.s, 1000, &notified, NULL), PC_ERR_UNSUPPORTED);
		CHECK_INT(notified, 0);
		teardown(&f);
		return;
	}
	REQUIRE_MSG(pcd_store_open(f.db, &b, &err) == PC_OK, "%s", err.text);
	/* the first call makes the LISTEN connection; nothing is queued */
	CHECK_INT(pcd_store_wait_jobs(f.s, 50, &notified, &err), PC_OK);
	CHECK_INT(notified, 0);
	w.s = f.s;
	REQUIRE(pthread_create(&th, NULL, wait_for_jobs, &w) == 0);
	/* the waiter may not be polling yet: a NOTIFY before that is kept by
	 * the connection and taken at the wait's start */
	REQUIRE(submit(b, 1, NULL, NULL) == PC_OK);
	pthread_join(th, NULL);
	CHECK_INT(w.rc, PC_OK);
	CHECK_INT(w.notified, 1);
	pcd_store_close(b);
	teardown(&f);
}

/* Listings and cursors in byte order on both backends, whatever the
 * PostgreSQL database's own collation (the test server's databases use
 * ICU's en-US, where "a" < "B" and "-" is all but ignored): tenants "B",
 * "Z-1", "Z1", "a" and "z" of one upload id list as B, Z-1, Z1, a, z; the
 * admin's get takes the first of them in that order; the cursor resumes
 * after each one; names filter exactly (byte for byte). */
STORE_TEST(store_listings_in_byte_order)
{
	static const char *const order[] = {"B", "Z-1", "Z1", "a", "z"};
	static const char *const put_order[] = {"z", "a", "Z1", "B", "Z-1"};
	static const char id[] = "cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc";
	struct fixture f;
	struct pcd_blob_rec r, *recs = NULL;
	struct pc_error err = {0};
	size_t n = 0;

	REQUIRE(setup(&f) == 0);
	for (int i = 0; i < 5; i++)
		REQUIRE(pcd_store_model_put(f.s, put_order[i], id, 1, "{}", NULL, &err) == PC_OK);
	REQUIRE(pcd_store_upload_name(f.s, PCD_UPLOAD_MODEL, "a", id, "Net", &err) == PC_OK);
	REQUIRE(pcd_store_model_list(f.s, PCD_ALL_TENANTS, NULL, id, "", 10, &recs, &n, &err) == PC_OK);
	CHECK_INT(n, 0); /* after every record of id */
	REQUIRE(pcd_store_model_list(f.s, PCD_ALL_TENANTS, NULL, MODEL_ID, "\x7f", 10, &recs, &n, &err) == PC_OK);
	CHECK_INT(n, 5);
	for (size_t i = 0; i < n && i < 5; i++)
		CHECK_MSG(!strcmp(recs[i].tenant, order[i]), "listing row %zu: %s, expected %s", i, recs[i].tenant,
			  order[i]);
	pcd_blob_recs_free(recs, n);
	for (int i = 0; i < 4; i++) {
		REQUIRE(pcd_store_model_list(f.s, PCD_ALL_TENANTS, NULL, id, order[i], 1, &recs, &n, &err) == PC_OK);
		CHECK_MSG(n == 1 && !strcmp(recs[0].tenant, order[i + 1]), "after %s: %s", order[i],
			  n ? recs[0].tenant : "(none)");
		pcd_blob_recs_free(recs, n);
	}
	REQUIRE(pcd_store_model_get(f.s, PCD_ALL_TENANTS, id, &r, &err) == PC_OK);
	CHECK_MSG(!strcmp(r.tenant, "B"), "the admin's get: %s", r.tenant);
	pcd_blob_rec_free(&r);
	REQUIRE(pcd_store_model_list(f.s, PCD_ALL_TENANTS, "net", NULL, NULL, 10, &recs, &n, &err) == PC_OK);
	CHECK_INT(n, 0);
	pcd_blob_recs_free(recs, n);
	REQUIRE(pcd_store_model_list(f.s, PCD_ALL_TENANTS, "Net", NULL, NULL, 10, &recs, &n, &err) == PC_OK);
	CHECK(n == 1 && !strcmp(recs[0].tenant, "a"));
	pcd_blob_recs_free(recs, n);
	teardown(&f);
}
