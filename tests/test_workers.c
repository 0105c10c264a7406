/* The worker pool without HTTP: a job through store, blobs and one worker
 * gives the report pcd_job_run gives; a spec error becomes a problem object
 * with a JSON pointer; cancel of a queued and of a running job; a drain puts
 * the running job back in the queue. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "blobs.h"
#include "job.h"
#include "job_env.h"
#include "store.h"
#include "workers.h"
#include "be_util.h"
#include "pg_util.h"
#include "test.h"


static char *spec_text(const struct job_env *e, const char *rest)
{
	char *s = malloc(1024);

	if (s)
		snprintf(s, 1024, "{\"model\": \"%s\", \"dataset\": \"%s\", %s}", e->model, e->dataset, rest);
	return s;
}

#define SHORT_SPEC                                                                                                \
	"\"limit\": 64, \"batch_size\": 32, \"seed\": 3, \"corruption\": {\"norms\": [\"l2\"], \"epsilons\": [0.1, " \
	"1], \"random_trials\": 2}"
/* seconds of work for one thread, checked for cancel between batches */
#define LONG_SPEC                                                                                                 \
	"\"batch_size\": 50, \"seed\": 3, \"corruption\": {\"norms\": [\"l2\", \"linf\"], \"epsilons\": [0.01, "   \
	"0.02, 0.05, 0.1, 0.2, 0.5, 1, 2], \"random_trials\": 200, \"steps\": 20, \"groups\": [\"model\", "     \
	"\"tensor\", \"layer\"]}"

static void cfg_for_tests(struct pcd_workers_cfg *cfg)
{
	pcd_workers_cfg_default(cfg);
	cfg->n_workers = 1;
	cfg->threads_per_job = 1;
	cfg->poll_ms = 50;
	cfg->timing_seconds = 0;
	cfg->quiet = 1;
}

/* Polls until the job reaches want (or any finished state); its status. */
static int wait_status(struct pcd_store *s, const char *id, enum pcd_job_status want, double seconds)
{
	struct timespec ts = {0, 20 * 1000000L};
	struct pcd_job j;
	int status = -1, i;

	for (i = 0; i < (int)(seconds * 50); i++) {
		if (pcd_store_job_get(s, PCD_ALL_TENANTS, id, &j, NULL) != PC_OK)
			return -1;
		status = (int)j.status;
		pcd_job_free(&j);
		if (status == (int)want || (pcd_job_status_finished((enum pcd_job_status)status) &&
					    pcd_job_status_finished(want)))
			return status;
		nanosleep(&ts, NULL);
	}
	return status;
}

TEST(workers_job_report_equals_job_run)
{
	struct job_env e;
	struct pcd_workers_cfg cfg;
	struct pcd_workers *w = NULL;
	struct pcd_job_opts o;
	struct pcd_job j;
	struct pc_error err = {0};
	char *spec, *want = NULL, *got = NULL;
	int rc = job_env_setup(&e, NULL);

	if (rc == 1) {
		pc_test_skip(t, "no Fashion-MNIST under /usr/share/datasets");
		return;
	}
	REQUIRE(rc == 0);
	spec = spec_text(&e, SHORT_SPEC);
	REQUIRE(spec);
	REQUIRE(pcd_store_job_submit(e.store, "default", 0, "analyze", spec, NULL, NULL, 0, 0, &j, NULL, &err) == PC_OK);
	cfg_for_tests(&cfg);
	REQUIRE(pcd_workers_start(&cfg, e.store, e.blobs, &w, &err) == PC_OK);
	pcd_workers_notify(w);
	CHECK_INT(wait_status(e.store, j.id, PCD_JOB_SUCCEEDED, 60), PCD_JOB_SUCCEEDED);
	pcd_workers_free(w);
	CHECK_INT(pcd_store_job_report(e.store, PCD_ALL_TENANTS, j.id, &got, &err), PC_OK);

	pcd_job_opts_default(&o);
	o.timing_seconds = 0;
	CHECK_INT(pcd_job_run(spec, e.store, e.blobs, &o, &want, &err), PC_OK);
	CHECK(got && want && strcmp(got, want) == 0);
	/* the report echoes the spec as given: ids, not paths */
	CHECK(got && strstr(got, e.model) && strstr(got, e.dataset) && !strstr(got, e.dir));
	pcd_job_free(&j);
	free(got);
	free(want);
	free(spec);
	job_env_teardown(&e);
}

TEST(workers_spec_error_is_a_problem_with_pointer)
{
	struct job_env e;
	struct pcd_workers_cfg cfg;
	struct pcd_workers *w = NULL;
	struct pcd_job j;
	struct pc_error err = {0};
	json_t *problem, *errors;
	char *spec;
	int rc = job_env_setup(&e, NULL);

	if (rc == 1) {
		pc_test_skip(t, "no Fashion-MNIST under /usr/share/datasets");
		return;
	}
	REQUIRE(rc == 0);
	spec = spec_text(&e, "\"limit\": 64, \"corruption\": {\"epsilons\": [0.1, -1]}");
	REQUIRE(pcd_store_job_submit(e.store, "default", 0, "analyze", spec, NULL, NULL, 0, 0, &j, NULL, &err) == PC_OK);
	cfg_for_tests(&cfg);
	REQUIRE(pcd_workers_start(&cfg, e.store, e.blobs, &w, &err) == PC_OK);
	pcd_workers_notify(w);
	CHECK_INT(wait_status(e.store, j.id, PCD_JOB_FAILED, 30), PCD_JOB_FAILED);
	pcd_workers_free(w);
	pcd_job_free(&j);
	free(spec);
	{
		struct pcd_job *jobs;
		size_t n;
		REQUIRE(pcd_store_job_list(e.store, PCD_ALL_TENANTS, "failed", 0, 1, &jobs, &n, &err) == PC_OK && n == 1);
		problem = json_loads(jobs[0].error, 0, NULL);
		pcd_jobs_free(jobs, n);
	}
	REQUIRE(problem);
	/* the answer the same spec gets at submission: one row, 422 */
	CHECK_INT(json_integer_value(json_object_get(problem, "status")), 422);
	CHECK(!strcmp(json_string_value(json_object_get(problem, "type")) ?: "", "/problems/invalid"));
	CHECK(!strcmp(json_string_value(json_object_get(problem, "title")) ?: "", "invalid argument"));
	errors = json_object_get(problem, "errors");
	CHECK(json_array_size(errors) == 1);
	CHECK(strcmp(json_string_value(json_object_get(json_array_get(errors, 0), "pointer")) ?: "",
		     "/corruption/epsilons/1") == 0);
	json_decref(problem);
	job_env_teardown(&e);
}

/* A job queued under a larger max_job_work (or straight into the store)
 * is checked again when it runs, on the loaded model: the same problem a
 * submission over the bound gets. */
TEST(workers_check_the_work_bound_at_run_time)
{
	struct job_env e;
	struct pcd_workers_cfg cfg;
	struct pcd_workers *w = NULL;
	struct pcd_job j;
	struct pc_error err = {0};
	json_t *problem = NULL, *errors;
	char *spec;
	int rc = job_env_setup(&e, NULL);

	if (rc == 1) {
		pc_test_skip(t, "no Fashion-MNIST under /usr/share/datasets");
		return;
	}
	REQUIRE(rc == 0);
	spec = spec_text(&e, "\"limit\": 64");
	REQUIRE(pcd_store_job_submit(e.store, "default", 0, "analyze", spec, NULL, NULL, 0, 0, &j, NULL, &err) == PC_OK);
	cfg_for_tests(&cfg);
	cfg.max_work = 1000; /* far below any study's passes x cost */
	REQUIRE(pcd_workers_start(&cfg, e.store, e.blobs, &w, &err) == PC_OK);
	pcd_workers_notify(w);
	CHECK_INT(wait_status(e.store, j.id, PCD_JOB_FAILED, 30), PCD_JOB_FAILED);
	pcd_workers_free(w);
	pcd_job_free(&j);
	free(spec);
	{
		struct pcd_job *jobs;
		size_t n;
		REQUIRE(pcd_store_job_list(e.store, PCD_ALL_TENANTS, "failed", 0, 1, &jobs, &n, &err) == PC_OK && n == 1);
		problem = json_loads(jobs[0].error, 0, NULL);
		pcd_jobs_free(jobs, n);
	}
	REQUIRE(problem);
	CHECK_INT(json_integer_value(json_object_get(problem, "status")), 422);
	CHECK_MSG(!strcmp(json_string_value(json_object_get(problem, "type")) ?: "", "/problems/too_much_work"), "%s",
		  json_string_value(json_object_get(problem, "type")) ?: "(none)");
	errors = json_object_get(problem, "errors");
	CHECK(json_array_size(errors) == 1);
	CHECK(!strcmp(json_string_value(json_object_get(json_array_get(errors, 0), "detail")) ?: "", "max_job_work"));
	json_decref(problem);
	job_env_teardown(&e);
}

TEST(workers_cancel_queued_and_running)
{
	struct job_env e;
	struct pcd_workers_cfg cfg;
	struct pcd_workers *w = NULL;
	struct pcd_job a, b;
	struct pc_error err = {0};
	enum pcd_job_status after;
	char *spec;
	int rc = job_env_setup(&e, NULL);

	if (rc == 1) {
		pc_test_skip(t, "no Fashion-MNIST under /usr/share/datasets");
		return;
	}
	REQUIRE(rc == 0);
	spec = spec_text(&e, LONG_SPEC);
	REQUIRE(pcd_store_job_submit(e.store, "default", 0, "analyze", spec, NULL, NULL, 0, 0, &a, NULL, &err) == PC_OK);
	REQUIRE(pcd_store_job_submit(e.store, "default", 0, "analyze", spec, NULL, NULL, 0, 0, &b, NULL, &err) == PC_OK);
	cfg_for_tests(&cfg);
	cfg.threads_per_job = 3; /* the cancel callback is called from several threads */
	REQUIRE(pcd_workers_start(&cfg, e.store, e.blobs, &w, &err) == PC_OK);
	pcd_workers_notify(w);
	CHECK_INT(wait_status(e.store, a.id, PCD_JOB_RUNNING, 30), PCD_JOB_RUNNING);
	CHECK_INT(pcd_store_job_cancel(e.store, PCD_ALL_TENANTS, b.id, &after, &err), PC_OK);
	CHECK_INT(after, PCD_JOB_CANCELLED);
	CHECK_INT(pcd_store_job_cancel(e.store, PCD_ALL_TENANTS, a.id, &after, &err), PC_OK);
	CHECK_INT(after, PCD_JOB_RUNNING);
	CHECK_INT(wait_status(e.store, a.id, PCD_JOB_CANCELLED, 30), PCD_JOB_CANCELLED);
	{
		/* the worker writes the status, then leaves its job: give it
		 * that moment (bounded) before asking that it is idle */
		struct timespec tick = {0, 10 * 1000000L};
		for (int i = 0; i < 1000 && pcd_workers_busy(w); i++)
			nanosleep(&tick, NULL);
	}
	CHECK_INT(pcd_workers_busy(w), 0);
	pcd_workers_free(w);
	pcd_job_free(&a);
	pcd_job_free(&b);
	free(spec);
	job_env_teardown(&e);
}

TEST(workers_drain_requeues_the_running_job)
{
	struct job_env e;
	struct pcd_workers_cfg cfg;
	struct pcd_workers *w = NULL;
	struct pcd_job a, j;
	struct pc_error err = {0};
	struct timespec ts = {0, 300 * 1000000L};
	char *spec;
	int rc = job_env_setup(&e, NULL);

	if (rc == 1) {
		pc_test_skip(t, "no Fashion-MNIST under /usr/share/datasets");
		return;
	}
	REQUIRE(rc == 0);
	spec = spec_text(&e, LONG_SPEC);
	REQUIRE(pcd_store_job_submit(e.store, "default", 0, "analyze", spec, NULL, NULL, 0, 0, &a, NULL, &err) == PC_OK);
	cfg_for_tests(&cfg);
	REQUIRE(pcd_workers_start(&cfg, e.store, e.blobs, &w, &err) == PC_OK);
	pcd_workers_notify(w);
	CHECK_INT(wait_status(e.store, a.id, PCD_JOB_RUNNING, 30), PCD_JOB_RUNNING);
	nanosleep(&ts, NULL); /* into the study, past loading */
	pcd_workers_drain(w);
	CHECK(pcd_workers_draining(w));
	CHECK_INT(pcd_workers_busy(w), 0);
	REQUIRE(pcd_store_job_get(e.store, PCD_ALL_TENANTS, a.id, &j, &err) == PC_OK);
	CHECK_INT(j.status, PCD_JOB_QUEUED);
	CHECK_INT(j.attempts, 0);
	pcd_job_free(&j);
	/* a drained pool claims nothing more */
	pcd_workers_notify(w);
	nanosleep(&ts, NULL);
	REQUIRE(pcd_store_job_get(e.store, PCD_ALL_TENANTS, a.id, &j, &err) == PC_OK);
	CHECK_INT(j.status, PCD_JOB_QUEUED);
	pcd_job_free(&j);
	pcd_workers_free(w);
	pcd_job_free(&a);
	free(spec);
	job_env_teardown(&e);
}

TEST(workers_resume_after_crash_gives_the_same_report)
{
	struct job_env e;
	struct pcd_workers_cfg cfg;
	struct pcd_workers *w = NULL;
	struct pcd_job_opts o;
	struct pcd_job j, got_job;
	struct pc_error err = {0};
	char path[PATH_MAX], *spec, *want = NULL, *got = NULL;
	int nreq = -1, nfail = -1;
	int rc = job_env_setup(&e, NULL);

	if (rc == 1) {
		pc_test_skip(t, "no Fashion-MNIST under /usr/share/datasets");
		return;
	}
	REQUIRE(rc == 0);
	spec = spec_text(&e, SHORT_SPEC);
	REQUIRE(pcd_store_job_submit(e.store, "default", 0, "analyze", spec, NULL, NULL, 0, 0, &j, NULL, &err) == PC_OK);
	/* a worker took it, then the process died: no complete, no requeue */
	REQUIRE(pcd_store_job_claim(e.store, &got_job, &err) == PC_OK);
	pcd_job_free(&got_job);
	pcd_store_close(e.store);
	snprintf(path, sizeof(path), "%s/paracorr.db", e.dir);
	REQUIRE(pcd_store_open(path, &e.store, &err) == PC_OK);
	REQUIRE(pcd_store_job_recover(e.store, 3, &nreq, &nfail, &err) == PC_OK);
	CHECK_INT(nreq, 1);
	CHECK_INT(nfail, 0);
	cfg_for_tests(&cfg);
	REQUIRE(pcd_workers_start(&cfg, e.store, e.blobs, &w, &err) == PC_OK);
	CHECK_INT(wait_status(e.store, j.id, PCD_JOB_SUCCEEDED, 60), PCD_JOB_SUCCEEDED);
	pcd_workers_free(w);
	pcd_job_free(&j);
	{
		struct pcd_job *jobs;
		size_t n;
		REQUIRE(pcd_store_job_list(e.store, PCD_ALL_TENANTS, "succeeded", 0, 10, &jobs, &n, &err) == PC_OK && n == 1);
		CHECK_INT(jobs[0].attempts, 2); /* the crashed run counts */
		CHECK_INT(pcd_store_job_report(e.store, PCD_ALL_TENANTS, jobs[0].id, &got, &err), PC_OK);
		pcd_jobs_free(jobs, n);
	}
	pcd_job_opts_default(&o);
	o.timing_seconds = 0;
	CHECK_INT(pcd_job_run(spec, e.store, e.blobs, &o, &want, &err), PC_OK);
	CHECK(got && want && strcmp(got, want) == 0);
	free(got);
	free(want);
	free(spec);
	job_env_teardown(&e);
}

struct take_away {
	struct pgu *pg;
	int stopped; /* 1 stopped, -1 could not stop it; atomic */
};

/* The worker's hook before it records an outcome: the store's server
 * stops, so that the first try to record it fails. */
static void stop_server(void *arg, const char *job_id)
{
	struct take_away *a = arg;

	(void)job_id;
	if (!__atomic_load_n(&a->stopped, __ATOMIC_SEQ_CST))
		__atomic_store_n(&a->stopped, pgu_stop(a->pg) ? 1 : -1, __ATOMIC_SEQ_CST);
}

/* A job finishes while its PostgreSQL store is down: the worker keeps the
 * result and records it once the server is back (the job succeeds, with
 * its report), instead of leaving the job running until a restart. */
TEST(workers_outcome_waits_for_an_unreachable_store)
{
	struct take_away a = {0};
	struct timespec ts = {0, 20 * 1000000L};
	struct pgu pg;
	struct job_env e;
	struct pcd_workers_cfg cfg;
	struct pcd_workers *w = NULL;
	struct pcd_job j;
	struct pc_error err = {0};
	char url[256], why[600], *spec, *report = NULL;
	int rc;

	if (!pgu_available(why, sizeof(why))) {
		pc_test_skip(t, why);
		return;
	}
	REQUIRE_MSG(pgu_init(&pg), "%s", pg.why);
	REQUIRE_MSG(pgu_new_db(&pg, url, sizeof(url)), "%s", pg.why);
	if ((rc = job_env_setup(&e, url)) == 1) {
		pc_test_skip(t, "no Fashion-MNIST under /usr/share/datasets");
		pgu_free(&pg);
		return;
	}
	REQUIRE(rc == 0);
	a.pg = &pg;
	spec = spec_text(&e, SHORT_SPEC);
	REQUIRE(spec);
	REQUIRE(pcd_store_job_submit(e.store, "default", 0, "analyze", spec, NULL, NULL, 0, 0, &j, NULL, &err) == PC_OK);
	cfg_for_tests(&cfg);
	cfg.before_outcome = stop_server;
	cfg.before_outcome_arg = &a;
	REQUIRE(pcd_workers_start(&cfg, e.store, e.blobs, &w, &err) == PC_OK);
	pcd_workers_notify(w);
	for (int i = 0; i < 60 * 50 && !__atomic_load_n(&a.stopped, __ATOMIC_SEQ_CST); i++)
		nanosleep(&ts, NULL);
	REQUIRE_MSG(__atomic_load_n(&a.stopped, __ATOMIC_SEQ_CST) == 1, "the server was not stopped: %s", pg.why);
	/* the store cannot answer now; the worker holds the result */
	{
		struct pcd_job k;

		CHECK_INT(pcd_store_job_get(e.store, PCD_ALL_TENANTS, j.id, &k, NULL), PC_ERR_BUSY);
		pcd_job_free(&k);
	}
	REQUIRE_MSG(pgu_start(&pg), "%s", pg.why);
	CHECK_INT(wait_status(e.store, j.id, PCD_JOB_SUCCEEDED, 60), PCD_JOB_SUCCEEDED);
	pcd_workers_free(w);
	CHECK_INT(pcd_store_job_report(e.store, PCD_ALL_TENANTS, j.id, &report, &err), PC_OK);
	CHECK(report && strstr(report, e.model));
	free(report);
	pcd_job_free(&j);
	free(spec);
	job_env_teardown(&e);
	pgu_free(&pg);
}
