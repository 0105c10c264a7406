/* workers: the pool of threads that run jobs from the store.
 *
 * Each worker claims the oldest queued job, runs it with pcd_job_run
 * outside any lock, heartbeats progress into the store (at most every
 * 0.5 s, and at every phase change) and records the outcome: succeeded
 * with the report, failed with a problem object, cancelled, or queued
 * again when the pool is draining. Workers sleep on a condition variable,
 * woken by pcd_workers_notify after a submission, and poll the store every
 * poll_ms anyway (a job queued by another process, or a lost wakeup).
 *
 * A claim is a lease (store.h): the heartbeats renew it, and a write the
 * store refuses with PC_ERR_LEASE_LOST (another node took the job over)
 * stops the run and drops its result. A keeper thread requeues every
 * node's jobs whose lease expired, every lease/2, and on PostgreSQL turns
 * the store's notifications (another node queued a job) into wakeups.
 *
 * A store that cannot answer when the outcome is to be recorded (busy, or
 * a PostgreSQL server that went away) is asked again every poll_ms, for up
 * to PCD_OUTCOME_RETRY_S and not once the pool drains: a finished job's
 * result is written once the store is back. */
#ifndef PARACORR_SERVER_WORKERS_H
#define PARACORR_SERVER_WORKERS_H

#include <stddef.h>

#include "paracorr/error.h"
#include "validate.h"
#include "store.h"

struct pcd_blobs;
struct pcd_workers;

#define PCD_OUTCOME_RETRY_S 600

/* Called by a worker thread after each job ends (for metrics); must be
 * thread-safe. seconds is the job's wall time in this run. */
typedef void (*pcd_job_done_fn)(void *arg, const char *kind, enum pcd_job_status status, double seconds);

struct pcd_workers_cfg {
	int n_workers;	     /* >= 1 */
	int threads_per_job; /* compute threads per study, >= 1 */
	size_t cache_bytes;  /* per job */
	int max_attempts;    /* for the caller's pcd_store_job_recover */
	int poll_ms;	     /* store poll interval */
	int timing_seconds;  /* pc_study_opts.timing_seconds */
	int quiet;	     /* no log lines on stderr */
	/* the work bound a job is checked against again when it runs, on the
	 * loaded model (max_job_work; <= 0: none) */
	double max_work;
	pcd_job_done_fn on_done;
	void *on_done_arg;
	/* NULL, or called by the worker just before it records a job's
	 * outcome (the tests use it to take the store away at that moment) */
	void (*before_outcome)(void *arg, const char *job_id);
	void *before_outcome_arg;
	/* how a model a job leaves is checked, as an upload is (zero: in
	 * this process) */
	struct pcd_validator validator;
};

/* Defaults from the core count: n_workers = max(1, cores / 4) capped at 4,
 * threads_per_job = max(1, cores / n_workers), so that workers x threads
 * never exceed the cores; cache 1 GiB, 3 attempts, poll 1000 ms, timing on. */
void pcd_workers_cfg_default(struct pcd_workers_cfg *cfg);
/* The sizes left 0 chosen from the online cores: a quarter of them as
 * workers (1 to 4), the cores shared among the workers as BLAS threads. */
void pcd_workers_auto_size(int *n_workers, int *threads_per_job);

/* Starts the threads. store and blobs must outlive the pool. */
int pcd_workers_start(const struct pcd_workers_cfg *cfg, struct pcd_store *store, struct pcd_blobs *blobs,
		      struct pcd_workers **out, struct pc_error *err);
/* A job was queued: wake an idle worker. */
void pcd_workers_notify(struct pcd_workers *w);
/* Jobs running now. */
int pcd_workers_busy(struct pcd_workers *w);
/* Stops claiming, asks running jobs to stop at their next check, waits for
 * them and puts them back in the queue. Idempotent. */
void pcd_workers_drain(struct pcd_workers *w);
/* The same, waiting at most `seconds` (< 0: without a limit); the number
 * of jobs still running when it gave up, 0 when all were put away. A job
 * still running then is in a long stretch without a check; the store still
 * says running, so the next start's recovery runs it again. */
int pcd_workers_drain_timed(struct pcd_workers *w, double seconds);
/* 1 once pcd_workers_drain has begun. */
int pcd_workers_draining(struct pcd_workers *w);
/* Drains if needed, joins the threads and frees. NULL is fine. */
void pcd_workers_free(struct pcd_workers *w);

#endif
