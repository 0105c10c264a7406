/* store: the daemon's durable state (uploaded models and datasets, and the
 * job queue) behind one small interface with two backends
 * (store_backend.h): SQLite (store_sqlite.c: one connection in WAL mode
 * with synchronous=FULL) and PostgreSQL (store_pg.c, on libpq). Each keeps
 * one connection guarded by a mutex, so every function is safe to call
 * from any thread, and both give the same answers to the same calls.
 *
 * Job states only move forward: queued -> running -> succeeded | failed |
 * cancelled, except that a running job goes back to queued when the daemon
 * drains (pcd_store_job_requeue) or died (pcd_store_job_recover,
 * pcd_store_job_sweep).
 *
 * Leases and fencing (many nodes on one PostgreSQL database): a claim is a
 * lease of lease_ms on the database's clock (lease_expires_at), renewed by
 * every heartbeat, and comes with a claim token, random and new for each
 * attempt. Every write of a running job (heartbeat, artifact_put, complete,
 * requeue) names the token and changes the row only while the job is
 * running under that token; otherwise nothing changes and the answer is
 * PC_ERR_LEASE_LOST (another node requeued the job after the lease ran out,
 * and maybe runs it now): the caller drops what it had and does not retry.
 * A write with the right token on a job no longer running (written twice)
 * is PC_ERR_CONFLICT, and a deleted job PC_ERR_NOT_FOUND, as before.
 *
 * attempts counts the runs a job has started that did not end in a drain:
 * claim adds 1, requeue after a drain takes that 1 back, so a job is only
 * given up on (recover's max_attempts) after runs that crashed. Times are
 * RFC 3339 UTC strings ("2026-11-28T15:00:00Z"); an unset time is "".
 *
 * Tenants: every upload record and job belongs to one tenant (a name of
 * the tokens file, "default" for a bare token or no tokens). A function
 * that takes `const char *tenant` as a scope sees only that tenant's rows;
 * PCD_ALL_TENANTS (NULL) sees every tenant's (the admin role). Another
 * tenant's row is answered exactly like a missing one (PC_ERR_NOT_FOUND),
 * so no answer tells that it exists. Uploads are content-addressed on disk
 * and shared there, but the record (the id a tenant may use) is per
 * tenant: (tenant, id) is the key. */
#ifndef PARACORR_SERVER_STORE_H
#define PARACORR_SERVER_STORE_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "paracorr/error.h"
#include "names.h"

struct pcd_store;

enum pcd_job_status {
	PCD_JOB_QUEUED,
	PCD_JOB_RUNNING,
	PCD_JOB_SUCCEEDED,
	PCD_JOB_FAILED,
	PCD_JOB_CANCELLED,
	PCD_JOB_STATUS_COUNT
};

/* "queued", ...; NULL for an out-of-range value. */
const char *pcd_job_status_name(enum pcd_job_status s);
/* -1 for an unknown name. */
int pcd_job_status_parse(const char *name);
/* succeeded, failed or cancelled. */
int pcd_job_status_finished(enum pcd_job_status s);

#define PCD_JOB_ID_LEN 18 /* "j-" + 16 hex digits */
#define PCD_TIME_LEN 32
#define PCD_TENANT_MAX 64 /* a tenant name: 1..64 of [A-Za-z0-9._-] */
#define PCD_NODE_MAX 128	 /* a node's name (node_name) */
#define PCD_TOKEN_LEN 32	 /* a claim token: 32 hex digits */
#define PCD_LEASE_MS_DEFAULT 30000
#define PCD_ALL_TENANTS NULL
#define PCD_DEFAULT_TENANT "default"

/* Whether name is a valid tenant name. */
int pcd_tenant_name_valid(const char *name);

/* A job row. Strings marked owned are freed by pcd_job_free. */
struct pcd_job {
	int64_t seq; /* submission order */
	char id[PCD_JOB_ID_LEN + 1];
	char tenant[PCD_TENANT_MAX + 1];
	char kind[16];
	char *spec; /* owned: the spec JSON text as submitted */
	enum pcd_job_status status;
	int attempts;
	int cancel_requested;
	char *progress;	       /* owned: JSON text {phase, done, total, fraction}, or NULL */
	char *error;	       /* owned: problem object JSON text, or NULL */
	int has_report;	       /* the report text is stored (pcd_store_job_report) */
	char *idempotency_key; /* owned, or NULL */
	char spec_hash[65];
	char created_at[PCD_TIME_LEN];
	char started_at[PCD_TIME_LEN];
	char finished_at[PCD_TIME_LEN];
	char heartbeat_at[PCD_TIME_LEN];
	char name[PCD_NAME_MAX + 1]; /* "" when the job has none */
	char *labels;		     /* owned: JSON object text, "{}" when none */
	char *headline;		     /* owned: JSON text (headline.h), or NULL */
	char node[PCD_NODE_MAX + 1]; /* the node of the latest attempt, "" before one */
	char claim_token[PCD_TOKEN_LEN + 1]; /* of the running attempt; "" when none */
};

/* Frees the owned strings (not j itself) and zeroes j. NULL is fine. */
void pcd_job_free(struct pcd_job *j);
/* Frees an array from pcd_store_job_list: each job and the array. */
void pcd_jobs_free(struct pcd_job *jobs, size_t n);

/* The job as the API returns it (design.md): {id, kind, status, attempts,
 * progress {phase, done, total, fraction} or null, created_at, started_at,
 * finished_at (null when unset), error (problem object or null), name
 * (null when unset), labels {}, headline (headline.h, or null), node (the
 * node of the latest attempt, null before one), links {self, report}}.
 * The claim token is never shown. New reference; NULL only when out of memory. */
json_t *pcd_job_to_json(const struct pcd_job *j);

/* An uploaded model or dataset. */
struct pcd_blob_rec {
	char id[65];
	char tenant[PCD_TENANT_MAX + 1];
	int64_t bytes;
	char created_at[PCD_TIME_LEN];
	char *info; /* owned: JSON text describing the upload */
	char name[PCD_NAME_MAX + 1]; /* "" when it has none */
};

void pcd_blob_rec_free(struct pcd_blob_rec *r);
void pcd_blob_recs_free(struct pcd_blob_rec *recs, size_t n);

/* Opens the store at where and creates or migrates its schema: a
 * postgresql:// (or postgres://) URL is a PostgreSQL database (the schema
 * version in a table, under an advisory lock), anything else the path of
 * a SQLite file, created when needed (PRAGMA user_version). A PostgreSQL
 * server that cannot be reached is PC_ERR_BUSY (HTTP 503), as is any call
 * made while it is unreachable. *out is owned by the caller. */
int pcd_store_open(const char *where, struct pcd_store **out, struct pc_error *err);
/* Whether where is a URL that pcd_store_open opens with PostgreSQL. */
int pcd_store_is_url(const char *where);
/* "sqlite" or "postgresql". */
const char *pcd_store_backend(const struct pcd_store *s);
/* NULL is fine. */
void pcd_store_close(struct pcd_store *s);
/* The node this store's claims are made for (1..PCD_NODE_MAX printable
 * characters; a store starts as node "local") and their lease in ms
 * (1000..3600000; PCD_LEASE_MS_DEFAULT at open). Call before the store is
 * shared among threads. */
int pcd_store_set_node(struct pcd_store *s, const char *node, int lease_ms, struct pc_error *err);
const char *pcd_store_node(const struct pcd_store *s);
int pcd_store_lease_ms(const struct pcd_store *s);
/* A write transaction that changes nothing: whether the database is
 * writable now (readiness). */
int pcd_store_ping(struct pcd_store *s, struct pc_error *err);

/* Models and datasets. put inserts tenant's record unless it has one with
 * this id; *existed (may be NULL) says which happened. get: PC_ERR_NOT_FOUND
 * when the scope holds no such record (with PCD_ALL_TENANTS, the first
 * tenant's record by name). list: records in ascending (id, tenant) order
 * strictly after the cursor (after_id, after_tenant; after_id NULL or ""
 * for the first page; after_tenant only matters with PCD_ALL_TENANTS, and
 * NULL or "" there means every record of after_id is behind), at most
 * limit; *out is an array the caller frees with pcd_blob_recs_free (NULL
 * when *n == 0). delete: removes the scope's records of id (every tenant's
 * with PCD_ALL_TENANTS); PC_ERR_NOT_FOUND when there is none,
 * PC_ERR_CONFLICT while a queued or running job of a tenant whose record
 * would go names the id. *unused (may be NULL) is 1 when no record of id
 * remains for any tenant and no pending job names it: only then may the
 * shared file go. list's name (NULL: any) keeps the records of that name
 * only. pcd_store_upload_name (below) sets the name of the scope's record
 * of id; the caller checked it (names.h). */
int pcd_store_model_put(struct pcd_store *s, const char *tenant, const char *id, int64_t bytes,
			const char *info_json, int *existed, struct pc_error *err);
int pcd_store_model_get(struct pcd_store *s, const char *tenant, const char *id, struct pcd_blob_rec *out,
			struct pc_error *err);
int pcd_store_model_list(struct pcd_store *s, const char *tenant, const char *name, const char *after_id,
			 const char *after_tenant, int limit, struct pcd_blob_rec **out, size_t *n, struct pc_error *err);
int pcd_store_model_delete(struct pcd_store *s, const char *tenant, const char *id, int *unused,
			   struct pc_error *err);
int pcd_store_dataset_put(struct pcd_store *s, const char *tenant, const char *id, int64_t bytes,
			  const char *info_json, int *existed, struct pc_error *err);
int pcd_store_dataset_get(struct pcd_store *s, const char *tenant, const char *id, struct pcd_blob_rec *out,
			  struct pc_error *err);
int pcd_store_dataset_list(struct pcd_store *s, const char *tenant, const char *name, const char *after_id,
			   const char *after_tenant, int limit, struct pcd_blob_rec **out, size_t *n,
			   struct pc_error *err);
int pcd_store_dataset_delete(struct pcd_store *s, const char *tenant, const char *id, int *unused,
			     struct pc_error *err);

/* A tenant's use of its quotas: jobs queued now and the bytes of its
 * upload records (models and datasets; a file two tenants both uploaded
 * counts for each). Either pointer may be NULL. */
int pcd_store_tenant_usage(struct pcd_store *s, const char *tenant, int64_t *queued, int64_t *stored_bytes,
			   struct pc_error *err);

/* An upload a job references: the spec field naming it ("model",
 * "dataset", "training.dataset": a static string), which kind of upload
 * and its id. The job kinds' check (jobs.h) lists them; the store only
 * records them. */
enum pcd_upload { PCD_UPLOAD_MODEL, PCD_UPLOAD_DATASET, PCD_UPLOAD_COUNT };
/* the upload's name (see the uploads' functions above) */
int pcd_store_upload_name(struct pcd_store *s, enum pcd_upload upload, const char *tenant, const char *id,
			  const char *name, struct pc_error *err);
#define PCD_JOB_REFS_MAX 8
struct pcd_job_ref {
	const char *field;
	enum pcd_upload upload;
	char id[65];
};
struct pcd_job_refs {
	struct pcd_job_ref v[PCD_JOB_REFS_MAX];
	int n;
};

/* Queues a job of tenant with its spec text (kept as given, never read
 * here) and the uploads it references (refs, may be NULL: none), recorded
 * so that deleting one is refused with PC_ERR_CONFLICT while the job is
 * pending. Each must name a record of tenant (of any tenant when
 * any_uploads: the admin role), else PC_ERR_INVALID naming the field, as
 * the job kinds' check does. Idempotency keys are per tenant: with a key
 * tenant already used, the same spec text gives back that job (*created =
 * 0); a different one is PC_ERR_CONFLICT. PC_ERR_BUSY (HTTP 503) when
 * max_queue > 0 and max_queue jobs are already queued; PC_ERR_QUOTA (429)
 * when tenant_max_queued > 0 and the tenant has that many queued. out (may
 * be NULL) receives the job. */
int pcd_store_job_submit(struct pcd_store *s, const char *tenant, int any_uploads, const char *kind,
			 const char *spec_text, const struct pcd_job_refs *refs, const char *idem_key, int max_queue,
			 int tenant_max_queued, struct pcd_job *out, int *created, struct pc_error *err);
/* A job's name and labels (checked by the caller, names.h): name NULL or
 * "" for none, labels a JSON object text or NULL for none. */
struct pcd_job_meta {
	const char *name;
	const char *labels;
};
/* submit with meta (NULL: none). The idempotency hash covers them: the
 * same key with another name or labels is PC_ERR_CONFLICT. */
int pcd_store_job_submit_meta(struct pcd_store *s, const char *tenant, int any_uploads, const char *kind,
			      const char *spec_text, const struct pcd_job_meta *meta, const struct pcd_job_refs *refs,
			      const char *idem_key, int max_queue, int tenant_max_queued, struct pcd_job *out,
			      int *created, struct pc_error *err);
/* What a job made: the model id of its artifact name ("model.onnx" of a
 * harden job), recorded by the workers once the model is registered. get:
 * PC_ERR_NOT_FOUND when the job has no such artifact. The records go with
 * the job (pcd_store_job_delete). */
int pcd_store_job_artifact_put(struct pcd_store *s, const char *job_id, const char *token, const char *name,
			       const char *model_id, struct pc_error *err);
int pcd_store_job_artifact_get(struct pcd_store *s, const char *job_id, const char *name, char model_id[65],
			       struct pc_error *err);
/* Moves the oldest queued job (lowest seq; on PostgreSQL a row another
 * node is claiming is skipped) to running, attempts + 1, started_at = now,
 * cancel_requested = 0, node = this store's node, a new claim token and a
 * lease of lease_ms from now, and returns it (with out->claim_token).
 * PC_ERR_NOT_FOUND (without touching err) when nothing is queued. */
int pcd_store_job_claim(struct pcd_store *s, struct pcd_job *out, struct pc_error *err);
/* Records progress (JSON text, may be NULL to keep the last) and the
 * heartbeat time of the job running under token, and renews its lease;
 * *cancel_requested (may be NULL) says whether a cancel was asked for.
 * PC_ERR_LEASE_LOST, PC_ERR_CONFLICT, PC_ERR_NOT_FOUND: see the top. */
int pcd_store_job_heartbeat(struct pcd_store *s, const char *id, const char *token, const char *progress_json,
			    int *cancel_requested, struct pc_error *err);
/* running -> status (succeeded, failed or cancelled), finished_at = now,
 * with the report text and/or the problem object JSON text (either NULL).
 * The report's headline (headline.h) is kept with the job. Errors as for
 * heartbeat. */
int pcd_store_job_complete(struct pcd_store *s, const char *id, const char *token, enum pcd_job_status status,
			   const char *report_text, const char *error_json, struct pc_error *err);
/* running -> queued after a drain, the attempt taken back (see above).
 * Errors as for heartbeat. */
int pcd_store_job_requeue(struct pcd_store *s, const char *id, const char *token, struct pc_error *err);
/* At startup: the jobs this node left running go back to queued, or to
 * failed with a problem object "gave up after N attempts" once attempts >=
 * max_attempts; so do those of any node whose lease has expired. On SQLite
 * (one node per file: the data directory's lock) every running job is this
 * node's; on PostgreSQL those whose node is this store's node, so another
 * live node's jobs are left alone (node names must be unique). Counts (may
 * be NULL) say how many went each way. Wakes idle workers of every node
 * when it requeued any. */
int pcd_store_job_recover(struct pcd_store *s, int max_attempts, int *n_requeued, int *n_failed,
			  struct pc_error *err);
/* What every node does every lease/2: recover's work for the jobs whose
 * lease has expired (on the database's clock), whichever node ran them. */
int pcd_store_job_sweep(struct pcd_store *s, int max_attempts, int *n_requeued, int *n_failed,
			struct pc_error *err);
/* Waits up to timeout_ms for a job to be queued by any node (PostgreSQL:
 * LISTEN paracorr_jobs on a connection of its own, which submit and
 * requeue NOTIFY); *notified says whether one was. PC_ERR_UNSUPPORTED at
 * once on SQLite, whose only writer is this process (the workers' own
 * wakeup covers it). PC_ERR_BUSY when the server cannot be reached (the
 * caller waits its timeout another way and tries again). */
int pcd_store_wait_jobs(struct pcd_store *s, int timeout_ms, int *notified, struct pc_error *err);
/* The functions below take a tenant scope (see the top): another tenant's
 * job is PC_ERR_NOT_FOUND, as an unknown id is. */
/* PC_ERR_NOT_FOUND for an unknown id. *out owns its strings (pcd_job_free). */
int pcd_store_job_get(struct pcd_store *s, const char *tenant, const char *id, struct pcd_job *out,
		      struct pc_error *err);
/* The report text (caller frees with free()). PC_ERR_NOT_FOUND for an
 * unknown job, PC_ERR_CONFLICT when the job has no report (yet). */
int pcd_store_job_report(struct pcd_store *s, const char *tenant, const char *id, char **text,
			 struct pc_error *err);
/* Jobs in submission order (ascending seq) with seq > after_seq, filtered
 * by status when status is not NULL ("queued", ...; another name is
 * PC_ERR_INVALID), at most limit; the next page starts after the last seq
 * returned. *out is freed with pcd_jobs_free (NULL when *n == 0). */
int pcd_store_job_list(struct pcd_store *s, const char *tenant, const char *status, int64_t after_seq, int limit,
		       struct pcd_job **out, size_t *n, struct pc_error *err);
/* What a listing keeps: status as above, name (exact), and every label
 * key=value of labels (n_labels of them, at most PCD_LABELS_MAX); NULL
 * members match anything. */
struct pcd_job_filter {
	const char *status;
	const char *name;
	const char *label_keys[PCD_LABELS_MAX];
	const char *label_values[PCD_LABELS_MAX];
	int n_labels;
};
int pcd_store_job_find(struct pcd_store *s, const char *tenant, const struct pcd_job_filter *f, int64_t after_seq,
		       int limit, struct pcd_job **out, size_t *n, struct pc_error *err);
/* queued -> cancelled at once; running -> cancel_requested = 1 (the worker
 * stops at its next check); finished -> PC_ERR_CONFLICT. *status_after
 * (may be NULL) is the job's status once the call returns. */
int pcd_store_job_cancel(struct pcd_store *s, const char *tenant, const char *id,
			 enum pcd_job_status *status_after, struct pc_error *err);
/* Deletes a finished job and its report; PC_ERR_CONFLICT when it is queued
 * or running, PC_ERR_NOT_FOUND when unknown. */
int pcd_store_job_delete(struct pcd_store *s, const char *tenant, const char *id, struct pc_error *err);
/* --- sharded studies ----------------------------------------------------------
 *
 * A job whose spec asks for shards (analysis.h, "the study in shards")
 * runs its prefix, then hands its items to shard jobs: rows of kind
 * "shard" with the parent's id and their index, claimed by any worker of
 * any node like every job. Between the hand-over and the merge the parent
 * is running but held by no worker (waiting): recover leaves it alone,
 * cancelling it cancels it at once with every shard. The last shard to
 * succeed moves it to merging, and its worker merges; a merge that died is
 * recovered as any running job (the rerun finds every shard done and
 * merges). A shard that fails fails the parent with the problem given and
 * cancels the other shards. The prefix state is a named byte string of
 * the parent (job_state), read by the shards. Shard jobs and the state go
 * when the parent is deleted. */

struct pcd_shard {
	int index;
	char id[PCD_JOB_ID_LEN + 1];
	char node[PCD_NODE_MAX + 1]; /* of its latest attempt; "" before one */
	enum pcd_job_status status;
	char *progress; /* owned, or NULL */
	char *error;	/* owned, or NULL */
	int has_report;
};
void pcd_shards_free(struct pcd_shard *v, size_t n);

/* The running parent's hand-over, in one transaction: the state bytes
 * under state_name, n shard jobs (spec_texts[i] the spec of shard i, of
 * kind "shard", the parent's tenant) and the parent waiting, its claim
 * token and lease gone (no worker holds it). token is the parent's claim:
 * PC_ERR_LEASE_LOST when the attempt lost it, PC_ERR_CONFLICT when a
 * cancel was asked for meanwhile. */
int pcd_store_job_shards_start(struct pcd_store *s, const char *parent_id, const char *token, int n,
			       const char *const *spec_texts,
			       const char *state_name, const unsigned char *state, size_t state_len,
			       struct pc_error *err);
/* The parent's state bytes (*data malloc'd, the caller frees).
 * PC_ERR_NOT_FOUND when there are none. */
int pcd_store_job_state_get(struct pcd_store *s, const char *job_id, const char *name, unsigned char **data,
			    size_t *len, struct pc_error *err);
/* The shards of parent_id by index (*out NULL when *n == 0; free with
 * pcd_shards_free). */
int pcd_store_job_shards(struct pcd_store *s, const char *parent_id, struct pcd_shard **out, size_t *n,
			 struct pc_error *err);
/* After shard_id's outcome was recorded: a failed shard fails its parent
 * (if still running) with parent_problem and cancels the other shards; a
 * succeeded one that was the last moves the waiting parent to merging,
 * claimed for this node (a new claim token into token, a lease as a claim
 * has), and sets *merge (and parent_id). Anything else changes nothing. */
int pcd_store_job_shard_finished(struct pcd_store *s, const char *shard_id, const char *parent_problem, int *merge,
				 char parent_id[PCD_JOB_ID_LEN + 1], char token[PCD_TOKEN_LEN + 1],
				 struct pc_error *err);

/* Jobs queued and running now (either pointer may be NULL). */
int pcd_store_queue_depth(struct pcd_store *s, int64_t *queued, int64_t *running, struct pc_error *err);

#endif
