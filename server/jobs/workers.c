/* workers: N threads that take jobs from the store and run them.
 *
 * One mutex and two condition variables: `wake` tells idle workers that a
 * job may be waiting (or that the pool stops), `idle` tells a drain that a
 * running job has been put away. A worker never holds the mutex while it
 * talks to the store or computes. Lost wakeups are impossible: a worker
 * notes the wakeup counter before it looks for a job and sleeps only while
 * the counter is unchanged; the poll timeout covers jobs queued by anyone
 * who does not call pcd_workers_notify.
 *
 * A running job learns of a cancel through its cancel callback, which the
 * study polls between batches: it asks the store (at most every 0.5 s, or
 * a quarter of the lease when that is shorter; this is the heartbeat that
 * renews the lease) and looks at the pool's drain flag. A heartbeat or a
 * write answered PC_ERR_LEASE_LOST means another node took the job over
 * after this one's lease ran out: the run stops and what it made is
 * dropped, never written.
 *
 * One more thread, the keeper, requeues jobs whose lease expired (any
 * node's: pcd_store_job_sweep) every lease/2, and on PostgreSQL waits for
 * the store's notifications (LISTEN) between sweeps, turning each into a
 * wakeup of every idle worker: a job queued on another node starts here
 * without waiting for the poll. */
#include "workers.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "blobs.h"
#include "ingest.h"
#include "job.h"
#include "paracorr/onnx.h"
#include "paracorr/sys.h"
#include "log.h"
#include "json_out.h"
#include "problem.h"

#define HEARTBEAT_SECONDS 0.5

struct pcd_workers {
	struct pcd_workers_cfg cfg;
	struct pcd_store *store;
	struct pcd_blobs *blobs;
	pthread_mutex_t mu;
	pthread_cond_t wake, idle, keeper_wake;
	double beat_s; /* the heartbeat interval */
	uint64_t wakeups; /* under mu */
	int busy;	  /* jobs running, under mu */
	int stopping;	  /* under mu */
	atomic_int draining;
	pthread_t *threads;
	int n_threads;
	pthread_t keeper;
	int has_keeper;
};

/* One job's run: what the callbacks need. The study calls the cancel
 * callback from its compute threads at once, so the heartbeat state is
 * under a mutex and the answer is an atomic. */
struct run_ctx {
	struct pcd_workers *w;
	const char *id;
	const char *token; /* the attempt's claim token */
	pthread_mutex_t mu;
	double last_beat; /* under mu */
	char phase[64];	  /* under mu */
	/* the last progress reported, written or not (under mu) */
	int reported;
	int64_t done, total;
	double elapsed, reported_at;
	int complete_written; /* it was written, done == total and fraction 1 */
	atomic_int cancel_requested;
	atomic_int lease_lost; /* another node took the job over */
};

void pcd_workers_auto_size(int *n_workers, int *threads_per_job)
{
	long cores = sysconf(_SC_NPROCESSORS_ONLN);

	if (cores < 1)
		cores = 1;
	if (*n_workers == 0)
		*n_workers = (int)(cores / 4 < 1 ? 1 : cores / 4 > 4 ? 4 : cores / 4);
	if (*threads_per_job == 0)
		*threads_per_job = (int)(cores / *n_workers < 1 ? 1 : cores / *n_workers);
}

void pcd_workers_cfg_default(struct pcd_workers_cfg *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	pcd_workers_auto_size(&cfg->n_workers, &cfg->threads_per_job);
	cfg->cache_bytes = PC_STUDY_DEFAULT_CACHE;
	cfg->max_attempts = 3;
	cfg->poll_ms = 1000;
	cfg->timing_seconds = 1;
}

static void log_job(const struct pcd_workers *w, const char *level, const char *id, const char *msg,
		    const struct pc_error *err)
{
	char detail[700], q[1500];

	if (w->cfg.quiet)
		return;
	if (err && err->code)
		pcd_log(level, "component=workers job=%s msg=\"%s\" error=%s", id, msg,
			pcd_log_quote(pc_error_format(err, detail, sizeof(detail)), q, sizeof(q)));
	else
		pcd_log(level, "component=workers job=%s msg=\"%s\"", id, msg);
}

/* Heartbeat with optional progress; remembers whether a cancel is asked.
 * The caller holds c->mu. */
static void beat(struct run_ctx *c, const char *progress_json)
{
	struct pc_error err = {0};
	int cancel = 0;

	c->last_beat = pc_sys_seconds();
	if (atomic_load(&c->lease_lost))
		return;
	if (pcd_store_job_heartbeat(c->w->store, c->id, c->token, progress_json, &cancel, &err) == PC_OK)
		atomic_store(&c->cancel_requested, cancel);
	else if (err.code == PC_ERR_NOT_FOUND)
		atomic_store(&c->cancel_requested, 1); /* the job was deleted under us */
	else if (err.code == PC_ERR_LEASE_LOST) {
		/* not this node's job any more: stop, and write nothing */
		atomic_store(&c->lease_lost, 1);
		atomic_store(&c->cancel_requested, 1);
		log_job(c->w, "warn", c->id, "lease lost; stopping the run, its result is dropped", &err);
	} else
		log_job(c->w, "warn", c->id, "heartbeat failed", &err);
}

static void on_progress(const struct pc_progress *pr, void *arg)
{
	struct run_ctx *c = arg;
	int phase_changed;
	json_t *p;
	char *text;

	pthread_mutex_lock(&c->mu);
	phase_changed = strncmp(c->phase, pr->phase ? pr->phase : "", sizeof(c->phase) - 1) != 0;
	c->reported = 1;
	c->done = pr->done;
	c->total = pr->total;
	c->elapsed = pr->elapsed;
	c->reported_at = pc_sys_seconds();
	if (!phase_changed && pr->done < pr->total && c->reported_at - c->last_beat < c->w->beat_s) {
		c->complete_written = 0;
		pthread_mutex_unlock(&c->mu);
		return;
	}
	c->complete_written = pr->done == pr->total && pr->fraction >= 1.0;
	if (pr->phase != c->phase)
		snprintf(c->phase, sizeof(c->phase), "%s", pr->phase ? pr->phase : "");
	/* done and total count the current stage; fraction and the seconds
	 * left are the whole job's (job.c weighs its stages) */
	p = json_pack("{s:s, s:I, s:I, s:f, s:f, s:o}", "phase", c->phase, "done", (json_int_t)pr->done, "total",
		      (json_int_t)pr->total, "fraction", pr->fraction, "elapsed_seconds", pr->elapsed,
		      "remaining_seconds", pr->remaining >= 0 ? json_real(pr->remaining) : json_null());
	text = pcd_json_text(p, PCD_JSON_COMPACT);
	json_decref(p);
	beat(c, text);
	pthread_mutex_unlock(&c->mu);
	free(text);
}

/* A succeeded job's progress reads as complete: its last one with done ==
 * total and fraction 1. The throttle above may have dropped the last
 * update, and a stage's planned passes are an estimate its run may not
 * reach exactly; the run is over, so what it did is its total. */
static void finish_progress(struct run_ctx *c)
{
	struct pc_progress pr = {.remaining = 0, .fraction = 1.0};

	pthread_mutex_lock(&c->mu);
	if (!c->reported || c->complete_written) {
		pthread_mutex_unlock(&c->mu);
		return;
	}
	pr.phase = c->phase; /* on_progress leaves it as it is */
	pr.done = pr.total = c->done;
	pr.elapsed = c->elapsed + (pc_sys_seconds() - c->reported_at);
	pthread_mutex_unlock(&c->mu);
	on_progress(&pr, c);
}

static int on_cancel(void *arg)
{
	struct run_ctx *c = arg;

	if (atomic_load(&c->w->draining) || atomic_load(&c->cancel_requested))
		return 1;
	/* one thread asks the store; the others go on with the last answer */
	if (pthread_mutex_trylock(&c->mu) == 0) {
		if (pc_sys_seconds() - c->last_beat >= c->w->beat_s)
			beat(c, NULL);
		pthread_mutex_unlock(&c->mu);
	}
	return atomic_load(&c->cancel_requested);
}

/* The model a job left (its kind's artifact) becomes a model of the
 * service as an upload does (ingest.h): copied in through a blob writer
 * (hashed, fsynced, renamed), validated and given its row, so that it can
 * be analysed in turn; the store records it as the job's artifact. The
 * record is the job's tenant's. */
static int register_model(struct pcd_workers *w, const char *tenant, const char *job_id, const char *token,
			  const char *artifact, const char *path, struct pc_error *err)
{
	struct pcd_ingest in = {
		.validator = &w->cfg.validator, .blobs = w->blobs, .store = w->store, .lock = pcd_blobs_record_lock(w->blobs)};
	struct pcd_blob_writer *bw = NULL;
	char id[65], buf[65536];
	json_t *info = NULL;
	FILE *f = fopen(path, "rb");
	size_t n;
	int rc = 0;

	if (!f)
		return pc_error_set(err, PC_ERR_IO, "hardened model", "cannot open it: %s", strerror(errno));
	if ((rc = pcd_blob_writer_begin(w->blobs, 0, &bw, err)))
		goto out;
	while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
		if ((rc = pcd_blob_writer_write(bw, buf, n, err)))
			goto out;
	if ((rc = pcd_blob_writer_finish(bw, id, err)) ||
	    (rc = pcd_model_ingest(&in, tenant, &bw, id, pcd_blob_writer_bytes(bw), &info, NULL, err)))
		goto out;
	rc = pcd_store_job_artifact_put(w->store, job_id, token, artifact, id, err);
out:
	pcd_blob_writer_abort(bw);
	fclose(f);
	json_decref(info);
	return rc;
}

/* Records a job's outcome; a store that cannot answer now (PC_ERR_BUSY)
 * is asked again every poll_ms, for up to PCD_OUTCOME_RETRY_S, unless the
 * pool drains (the job's row still says running: the next start runs it
 * again, as after a crash). */
static int record_outcome(struct pcd_workers *w, const char *id, const char *token, enum pcd_job_status outcome,
			  const char *report, const char *problem_text, struct pc_error *serr)
{
	int poll_ms = w->cfg.poll_ms > 0 ? w->cfg.poll_ms : 1000;
	long max_tries = PCD_OUTCOME_RETRY_S * 1000L / poll_ms;
	struct timespec ts = {poll_ms / 1000, (long)(poll_ms % 1000) * 1000000L};
	int rc;

	for (long tries = 0;; tries++) {
		pc_error_clear(serr);
		rc = pcd_store_job_complete(w->store, id, token, outcome, report, problem_text, serr);
		if (rc != PC_ERR_BUSY || tries >= max_tries || atomic_load(&w->draining))
			return rc;
		if (tries == 0)
			log_job(w, "warn", id, "cannot record the outcome yet; trying again every poll_ms", serr);
		nanosleep(&ts, NULL);
	}
}

static void run_one(struct pcd_workers *w, struct pcd_job *job);

/* After a shard's outcome: a failed shard fails its parent with the
 * shard's problem, named as the shard; the last one to succeed merges the
 * parent here, on this worker. */
static void shard_done(struct pcd_workers *w, const struct pcd_job *shard, int index, const struct pc_error *err)
{
	struct pc_error perr = {0}, serr = {0};
	char parent[PCD_JOB_ID_LEN + 1], token[PCD_TOKEN_LEN + 1], *problem = NULL;
	struct pcd_job pj;
	int merge = 0;

	if (err && err->code) {
		char where[sizeof(perr.where)];

		pc_error_set(&perr, err->code, "", "shard %d: %s", index, err->text);
		snprintf(where, sizeof(where), "shards[%d]", index);
		memcpy(perr.where, where, sizeof(where));
		problem = pcd_problem_json_text(&perr);
	}
	if (pcd_store_job_shard_finished(w->store, shard->id, problem, &merge, parent, token, &serr))
		log_job(w, "error", shard->id, "cannot record the shard's end with its parent", &serr);
	free(problem);
	if (!merge)
		return;
	if (pcd_store_job_get(w->store, PCD_ALL_TENANTS, parent, &pj, &serr)) {
		log_job(w, "error", parent, "cannot read the job to merge", &serr);
		return;
	}
	/* the merge is this worker's claim of the parent */
	snprintf(pj.claim_token, sizeof(pj.claim_token), "%s", token);
	log_job(w, "info", parent, "every shard done: merging", NULL);
	run_one(w, &pj);
	pcd_job_free(&pj);
}

static void run_one(struct pcd_workers *w, struct pcd_job *job)
{
	struct run_ctx c = {.w = w, .id = job->id, .token = job->claim_token};
	const struct pcd_job_kind *kind = pcd_job_kind_find(job->kind);
	char art[4096] = "", model_out[4200], ckpt[4200], parent[PCD_JOB_ID_LEN + 1] = "";
	struct pcd_job_opts o;
	struct pc_error err = {0}, serr = {0};
	enum pcd_job_status outcome;
	char *report = NULL, *problem_text = NULL, *spec_text = NULL;
	double t0 = pc_sys_seconds();
	int rc, waiting = 0, shard_index = -1, is_shard = !strcmp(job->kind, "shard");

	pthread_mutex_init(&c.mu, NULL);
	atomic_init(&c.cancel_requested, 0);
	atomic_init(&c.lease_lost, 0);
	c.last_beat = t0;
	pcd_job_opts_default(&o);
	o.threads = w->cfg.threads_per_job;
	o.cache_bytes = w->cfg.cache_bytes;
	o.max_work = w->cfg.max_work;
	o.timing_seconds = w->cfg.timing_seconds;
	o.progress = on_progress;
	o.progress_arg = &c;
	o.cancel = on_cancel;
	o.cancel_arg = &c;
	o.name = job->name;
	o.labels = job->labels;
	o.store = w->store;
	o.job_id = job->id;
	o.claim_token = job->claim_token;
	o.auto_shards = w->cfg.n_workers;
	o.waiting = &waiting;
	rc = PC_OK;
	if (is_shard) {
		/* the shard runs the parent's spec on its items */
		o.kind = job->kind;
		o.shard_parent = parent;
		rc = pcd_job_shard_spec_parse(job->spec, parent, &shard_index, &o.shard_first, &o.shard_last,
					      &spec_text, &err);
	}
	if (kind && kind->artifact) {
		/* the model and the checkpoint a restart resumes from; without
		 * their directory (a full disk) the job fails saying so */
		rc = pcd_blobs_artifacts_dir(w->blobs, job->id, 1, art, sizeof(art), &err);
		snprintf(model_out, sizeof(model_out), "%s/%s", art, kind->artifact);
		snprintf(ckpt, sizeof(ckpt), "%s/checkpoint.bin", art);
		o.model_out = model_out;
		o.checkpoint = ckpt;
	}
	log_job(w, "info", job->id, "started", NULL);
	if (rc == PC_OK)
		rc = pcd_job_run(spec_text ? spec_text : job->spec, w->store, w->blobs, &o, &report, &err);
	if (atomic_load(&c.lease_lost)) {
		/* another node runs the job now: nothing of this run is written */
		log_job(w, "warn", job->id, "lease lost; the result of this attempt is dropped", NULL);
		goto out;
	}
	if (rc == PC_OK && waiting) {
		/* the parent's items are shard jobs now; it is merged by the worker
		 * of the last one to finish */
		log_job(w, "info", job->id, "handed to its shards", NULL);
		goto out;
	}
	if (rc == PC_ERR_CANCELLED && atomic_load(&w->draining) && !atomic_load(&c.cancel_requested)) {
		/* stopped for the drain, not by the user: run again after restart */
		if (pcd_store_job_requeue(w->store, job->id, job->claim_token, &serr))
			log_job(w, "error", job->id, "requeue failed", &serr);
		else
			log_job(w, "info", job->id, "requeued for the drain", NULL);
		goto out;
	}
	if (rc == PC_OK && kind && kind->artifact &&
	    (rc = register_model(w, job->tenant, job->id, job->claim_token, kind->artifact, model_out, &err)) != PC_OK)
		log_job(w, "error", job->id, "cannot register the hardened model", &err);
	if (rc == PC_OK) {
		outcome = PCD_JOB_SUCCEEDED;
		finish_progress(&c);
	} else if (rc == PC_ERR_CANCELLED) {
		outcome = PCD_JOB_CANCELLED;
	} else {
		outcome = PCD_JOB_FAILED;
		problem_text = pcd_problem_json_text(&err);
	}
	if (w->cfg.before_outcome)
		w->cfg.before_outcome(w->cfg.before_outcome_arg, job->id);
	rc = record_outcome(w, job->id, job->claim_token, outcome, report, problem_text, &serr);
	if (rc == PC_ERR_NOSPACE && report) {
		/* the disk filled up under the report: the job fails with that
		 * problem, a row of a few bytes, which fits in the pages the
		 * rolled-back report had already claimed */
		pc_error_clear(&err);
		pc_error_set(&err, PC_ERR_NOSPACE, "report", "cannot store the report: %s", serr.text);
		outcome = PCD_JOB_FAILED;
		free(problem_text);
		problem_text = pcd_problem_json_text(&err);
		pc_error_clear(&serr);
		rc = record_outcome(w, job->id, job->claim_token, outcome, NULL, problem_text, &serr);
	}
	if (rc == PC_ERR_LEASE_LOST)
		/* the lease ran out while this node was cut off from the store
		 * (or stopped): the job was requeued, so this result must not
		 * land; never retried */
		log_job(w, "warn", job->id, "lease lost; the result of this attempt is dropped", &serr);
	else if (rc)
		log_job(w, "error", job->id, "cannot record the outcome", &serr);
	else
		log_job(w, outcome == PCD_JOB_FAILED ? "warn" : "info", job->id, pcd_job_status_name(outcome),
			outcome == PCD_JOB_FAILED ? &err : NULL);
	if (w->cfg.on_done)
		w->cfg.on_done(w->cfg.on_done_arg, job->kind, outcome, pc_sys_seconds() - t0);
	if (!rc && is_shard)
		shard_done(w, job, shard_index, outcome == PCD_JOB_FAILED ? &err : NULL);
out:
	pthread_mutex_destroy(&c.mu);
	free(spec_text);
	free(report);
	free(problem_text);
}

static void *worker_main(void *arg)
{
	struct pcd_workers *w = arg;
	struct pcd_job job;
	struct pc_error err;
	struct timespec until;
	uint64_t seen;
	int rc;

	pthread_mutex_lock(&w->mu);
	while (!w->stopping) {
		if (atomic_load(&w->draining)) {
			pthread_cond_wait(&w->wake, &w->mu);
			continue;
		}
		/* counted busy before the claim, so a drain cannot slip between
		 * the claim and the run and return with the job still running */
		seen = w->wakeups;
		w->busy++;
		pthread_mutex_unlock(&w->mu);
		pc_error_clear(&err);
		rc = pcd_store_job_claim(w->store, &job, &err);
		if (rc == PC_OK) {
			if (atomic_load(&w->draining)) {
				if (pcd_store_job_requeue(w->store, job.id, job.claim_token, &err))
					log_job(w, "error", job.id, "requeue failed", &err);
			} else {
				run_one(w, &job);
			}
			pcd_job_free(&job);
		}
		pthread_mutex_lock(&w->mu);
		w->busy--;
		pthread_cond_broadcast(&w->idle);
		if (rc == PC_OK)
			continue;
		pthread_mutex_unlock(&w->mu);
		if (rc != PC_ERR_NOT_FOUND)
			log_job(w, "error", "-", "cannot claim a job", &err);
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += w->cfg.poll_ms / 1000;
		until.tv_nsec += (long)(w->cfg.poll_ms % 1000) * 1000000L;
		if (until.tv_nsec >= 1000000000L) {
			until.tv_sec++;
			until.tv_nsec -= 1000000000L;
		}
		pthread_mutex_lock(&w->mu);
		while (!w->stopping && w->wakeups == seen && !atomic_load(&w->draining))
			if (pthread_cond_timedwait(&w->wake, &w->mu, &until) == ETIMEDOUT)
				break;
	}
	pthread_mutex_unlock(&w->mu);
	return NULL;
}

/* Wakes every idle worker: any of them may find a job now. */
static void wake_all(struct pcd_workers *w)
{
	pthread_mutex_lock(&w->mu);
	w->wakeups++;
	pthread_cond_broadcast(&w->wake);
	pthread_mutex_unlock(&w->mu);
}

static void sweep(struct pcd_workers *w)
{
	struct pc_error err = {0};
	int requeued = 0, failed = 0;

	if (pcd_store_job_sweep(w->store, w->cfg.max_attempts, &requeued, &failed, &err)) {
		if (err.code != PC_ERR_BUSY) /* the store away: the heartbeats say so already */
			log_job(w, "warn", "-", "cannot requeue the jobs whose lease expired", &err);
		return;
	}
	if (requeued > 0 || failed > 0) {
		if (!w->cfg.quiet)
			pcd_log("info", "component=workers msg=\"leases expired\" requeued=%d failed=%d", requeued, failed);
		wake_all(w);
	}
}

static void *keeper_main(void *arg)
{
	struct pcd_workers *w = arg;
	int lease_ms = pcd_store_lease_ms(w->store), listen = 1;
	double next_sweep = 0;

	pthread_mutex_lock(&w->mu);
	while (!w->stopping) {
		struct pc_error err = {0};
		double now = pc_sys_seconds();
		int wait_ms, notified = 0, rc = PC_ERR_UNSUPPORTED;

		pthread_mutex_unlock(&w->mu);
		if (now >= next_sweep) {
			sweep(w);
			next_sweep = now + lease_ms / 2000.0;
		}
		wait_ms = (int)((next_sweep - now) * 1000);
		if (wait_ms > w->cfg.poll_ms)
			wait_ms = w->cfg.poll_ms;
		if (wait_ms < 1)
			wait_ms = 1;
		if (listen) {
			rc = pcd_store_wait_jobs(w->store, wait_ms, &notified, &err);
			if (rc == PC_ERR_UNSUPPORTED)
				listen = 0;
			else if (rc == PC_OK && notified)
				wake_all(w);
		}
		pthread_mutex_lock(&w->mu);
		/* no notifications (SQLite), or the server away: a plain wait */
		if (rc != PC_OK && !w->stopping) {
			struct timespec until;

			clock_gettime(CLOCK_REALTIME, &until);
			until.tv_sec += wait_ms / 1000;
			until.tv_nsec += (long)(wait_ms % 1000) * 1000000L;
			if (until.tv_nsec >= 1000000000L) {
				until.tv_sec++;
				until.tv_nsec -= 1000000000L;
			}
			pthread_cond_timedwait(&w->keeper_wake, &w->mu, &until);
		}
	}
	pthread_mutex_unlock(&w->mu);
	return NULL;
}

int pcd_workers_start(const struct pcd_workers_cfg *cfg, struct pcd_store *store, struct pcd_blobs *blobs,
		      struct pcd_workers **out, struct pc_error *err)
{
	struct pcd_workers *w;
	int i, rc;

	*out = NULL;
	if (cfg->n_workers < 1 || cfg->n_workers > 256)
		return pc_error_set(err, PC_ERR_INVALID, "workers", "must be from 1 to 256, not %d", cfg->n_workers);
	if (cfg->threads_per_job < 1 || cfg->threads_per_job > 256)
		return pc_error_set(err, PC_ERR_INVALID, "threads_per_job", "must be from 1 to 256, not %d",
				    cfg->threads_per_job);
	if (cfg->poll_ms < 1)
		return pc_error_set(err, PC_ERR_INVALID, "poll_ms", "must be at least 1, not %d", cfg->poll_ms);
	w = calloc(1, sizeof(*w));
	if (!w)
		return pc_error_set(err, PC_ERR_NOMEM, "workers", "out of memory");
	w->cfg = *cfg;
	w->store = store;
	w->beat_s = pcd_store_lease_ms(store) / 4000.0;
	if (w->beat_s > HEARTBEAT_SECONDS)
		w->beat_s = HEARTBEAT_SECONDS;
	w->blobs = blobs;
	atomic_init(&w->draining, 0);
	w->threads = calloc((size_t)cfg->n_workers, sizeof(*w->threads));
	if (!w->threads) {
		free(w);
		return pc_error_set(err, PC_ERR_NOMEM, "workers", "out of memory");
	}
	pthread_mutex_init(&w->mu, NULL);
	pthread_cond_init(&w->wake, NULL);
	pthread_cond_init(&w->idle, NULL);
	pthread_cond_init(&w->keeper_wake, NULL);
	if ((rc = pthread_create(&w->keeper, NULL, keeper_main, w)) != 0) {
		pc_error_set(err, PC_ERR_INTERNAL, "workers", "cannot start the lease keeper: %s", strerror(rc));
		pcd_workers_free(w);
		return PC_ERR_INTERNAL;
	}
	w->has_keeper = 1;
	for (i = 0; i < cfg->n_workers; i++) {
		if ((rc = pthread_create(&w->threads[i], NULL, worker_main, w)) != 0) {
			pc_error_set(err, PC_ERR_INTERNAL, "workers", "cannot start worker %d: %s", i, strerror(rc));
			pcd_workers_free(w);
			return PC_ERR_INTERNAL;
		}
		w->n_threads++;
	}
	*out = w;
	return PC_OK;
}

void pcd_workers_notify(struct pcd_workers *w)
{
	pthread_mutex_lock(&w->mu);
	w->wakeups++;
	pthread_cond_signal(&w->wake);
	pthread_mutex_unlock(&w->mu);
}

int pcd_workers_busy(struct pcd_workers *w)
{
	int n;

	pthread_mutex_lock(&w->mu);
	n = w->busy;
	pthread_mutex_unlock(&w->mu);
	return n;
}

int pcd_workers_draining(struct pcd_workers *w)
{
	return atomic_load(&w->draining);
}

int pcd_workers_drain_timed(struct pcd_workers *w, double seconds)
{
	struct timespec until;
	int busy;

	clock_gettime(CLOCK_REALTIME, &until);
	if (seconds > 0) {
		until.tv_sec += (time_t)seconds;
		until.tv_nsec += (long)((seconds - (double)(time_t)seconds) * 1e9);
		if (until.tv_nsec >= 1000000000L) {
			until.tv_sec++;
			until.tv_nsec -= 1000000000L;
		}
	}
	pthread_mutex_lock(&w->mu);
	atomic_store(&w->draining, 1);
	pthread_cond_broadcast(&w->wake);
	while (w->busy > 0) {
		if (seconds < 0)
			pthread_cond_wait(&w->idle, &w->mu);
		else if (pthread_cond_timedwait(&w->idle, &w->mu, &until) == ETIMEDOUT)
			break;
	}
	busy = w->busy;
	pthread_mutex_unlock(&w->mu);
	return busy;
}

void pcd_workers_drain(struct pcd_workers *w)
{
	pcd_workers_drain_timed(w, -1);
}

void pcd_workers_free(struct pcd_workers *w)
{
	int i;

	if (!w)
		return;
	pcd_workers_drain(w);
	pthread_mutex_lock(&w->mu);
	w->stopping = 1;
	pthread_cond_broadcast(&w->wake);
	pthread_cond_broadcast(&w->keeper_wake);
	pthread_mutex_unlock(&w->mu);
	for (i = 0; i < w->n_threads; i++)
		pthread_join(w->threads[i], NULL);
	/* at most poll_ms: it may be waiting for a notification */
	if (w->has_keeper)
		pthread_join(w->keeper, NULL);
	pthread_cond_destroy(&w->keeper_wake);
	pthread_cond_destroy(&w->idle);
	pthread_cond_destroy(&w->wake);
	pthread_mutex_destroy(&w->mu);
	free(w->threads);
	free(w);
}
