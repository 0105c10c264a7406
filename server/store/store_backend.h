/* store_backend: what a store backend implements (SQLite in store_sqlite.c,
 * PostgreSQL in store_pg.c), and what the dispatch layer (store.c) shares
 * with them. store.c checks the arguments, computes what does not need the
 * database (the idempotency hash, a report's headline, the "gave up"
 * problem object, a listing's clamped limit) and calls one operation; an
 * operation runs the SQL, with the same semantics on every backend, as
 * store.h describes them for the public function of the same name.
 *
 * Each backend defines its own struct pcd_store_be; the dispatch layer only
 * passes the pointer along. Every operation is safe to call from any
 * thread (each backend serialises use of its one connection). */
#ifndef PARACORR_SERVER_STORE_BACKEND_H
#define PARACORR_SERVER_STORE_BACKEND_H

#include "store.h"

struct pcd_store_be;

/* A job to queue, checked by store.c: tenant is valid, the references
 * have their kinds and fields, hash is the idempotency hash, name and
 * labels are never NULL ("" and "{}" for none), upload_scope is the tenant
 * whose uploads the references must name (PCD_ALL_TENANTS: any). */
struct pcd_job_new {
	const char *tenant;
	const char *upload_scope;
	const char *kind;
	const char *spec_text;
	const char *hash;
	const char *name;
	const char *labels;
	const struct pcd_job_ref *refs;
	int n_refs;
	const char *idem_key;
	int max_queue;
	int tenant_max_queued;
};

struct pcd_store_ops {
	const char *name; /* "sqlite", "postgresql" */
	/* where: a file path (SQLite) or a connection URL (PostgreSQL) */
	int (*open)(const char *where, struct pcd_store_be **out, struct pc_error *err);
	void (*close)(struct pcd_store_be *b);
	int (*ping)(struct pcd_store_be *b, struct pc_error *err);
	int (*upload_put)(struct pcd_store_be *b, enum pcd_upload u, const char *tenant, const char *id, int64_t bytes,
			  const char *info_json, int *existed, struct pc_error *err);
	int (*upload_get)(struct pcd_store_be *b, enum pcd_upload u, const char *tenant, const char *id,
			  struct pcd_blob_rec *out, struct pc_error *err);
	/* limit already clamped to 1..PCD_LIST_MAX; after_id never NULL */
	int (*upload_list)(struct pcd_store_be *b, enum pcd_upload u, const char *tenant, const char *name,
			   const char *after_id, const char *after_tenant, int limit, struct pcd_blob_rec **out,
			   size_t *n, struct pc_error *err);
	int (*upload_delete)(struct pcd_store_be *b, enum pcd_upload u, const char *tenant, const char *id,
			     int *unused, struct pc_error *err);
	int (*upload_name)(struct pcd_store_be *b, enum pcd_upload u, const char *tenant, const char *id,
			   const char *name, struct pc_error *err);
	int (*tenant_usage)(struct pcd_store_be *b, const char *tenant, int64_t *queued, int64_t *stored_bytes,
			    struct pc_error *err);
	int (*job_submit)(struct pcd_store_be *b, const struct pcd_job_new *nj, struct pcd_job *out, int *created,
			  struct pc_error *err);
	int (*artifact_put)(struct pcd_store_be *b, const char *job_id, const char *token, const char *name,
			    const char *model_id, struct pc_error *err);
	int (*artifact_get)(struct pcd_store_be *b, const char *job_id, const char *name, char model_id[65],
			    struct pc_error *err);
	/* token: a new claim token (pcd_store_new_token); lease_ms checked */
	int (*job_claim)(struct pcd_store_be *b, const char *node, const char *token, int lease_ms,
			 struct pcd_job *out, struct pc_error *err);
	/* token never NULL; the lease renewed by lease_ms */
	int (*job_heartbeat)(struct pcd_store_be *b, const char *id, const char *token, int lease_ms,
			     const char *progress_json, int *cancel_requested, struct pc_error *err);
	/* status is finished; headline is the report's (NULL: none) */
	int (*job_complete)(struct pcd_store_be *b, const char *id, const char *token, enum pcd_job_status status,
			    const char *report_text, const char *error_json, const char *headline,
			    struct pc_error *err);
	int (*job_requeue)(struct pcd_store_be *b, const char *id, const char *token, struct pc_error *err);
	/* max_attempts >= 1; problem_text is the "gave up" problem object;
	 * node: this node (recover at startup), NULL: the expired leases only
	 * (sweep) */
	int (*job_recover)(struct pcd_store_be *b, int max_attempts, const char *problem_text, const char *node,
			   int *n_requeued, int *n_failed, struct pc_error *err);
	/* NULL when the backend has no notifications (SQLite) */
	int (*wait_jobs)(struct pcd_store_be *b, int timeout_ms, int *notified, struct pc_error *err);
	int (*job_get)(struct pcd_store_be *b, const char *tenant, const char *id, struct pcd_job *out,
		       struct pc_error *err);
	int (*job_report)(struct pcd_store_be *b, const char *tenant, const char *id, char **text,
			  struct pc_error *err);
	/* f checked (status name, n_labels); limit clamped */
	int (*job_find)(struct pcd_store_be *b, const char *tenant, const struct pcd_job_filter *f, int64_t after_seq,
			int limit, struct pcd_job **out, size_t *n, struct pc_error *err);
	int (*job_cancel)(struct pcd_store_be *b, const char *tenant, const char *id,
			  enum pcd_job_status *status_after, struct pc_error *err);
	int (*job_delete)(struct pcd_store_be *b, const char *tenant, const char *id, struct pc_error *err);
	int (*queue_depth)(struct pcd_store_be *b, int64_t *queued, int64_t *running, struct pc_error *err);
	/* sharded studies (store.h); spec_hashes[i] is spec_texts[i]'s */
	int (*shards_start)(struct pcd_store_be *b, const char *parent_id, const char *token, int n,
			    const char *const *spec_texts,
			    const char *const *spec_hashes, const char *state_name, const unsigned char *state,
			    size_t state_len, struct pc_error *err);
	int (*state_get)(struct pcd_store_be *b, const char *job_id, const char *name, unsigned char **data,
			 size_t *len, struct pc_error *err);
	int (*shards_list)(struct pcd_store_be *b, const char *parent_id, struct pcd_shard **out, size_t *n,
			   struct pc_error *err);
	int (*shard_finished)(struct pcd_store_be *b, const char *shard_id, const char *parent_problem,
			      const char *node, const char *token, int lease_ms, int *merge,
			      char parent_id[PCD_JOB_ID_LEN + 1], struct pc_error *err);
};

extern const struct pcd_store_ops pcd_store_sqlite_ops;
extern const struct pcd_store_ops pcd_store_pg_ops;

/* The most rows one listing page returns. */
#define PCD_LIST_MAX 1000

/* An upload kind's table ("models", "datasets") and its singular name
 * ("model", "dataset"), for SQL text and messages; never user input. */
extern const char *const pcd_upload_table[PCD_UPLOAD_COUNT];
extern const char *const pcd_upload_what[PCD_UPLOAD_COUNT];

/* Now as RFC 3339 UTC ("2026-11-28T15:00:00Z"). */
void pcd_store_now(char out[PCD_TIME_LEN]);
/* A new random job id "j-" + 16 hex digits. */
int pcd_store_new_job_id(char id[PCD_JOB_ID_LEN + 1], struct pc_error *err);
/* A new random claim token: 32 hex digits (128 bits). */
int pcd_store_new_token(char token[PCD_TOKEN_LEN + 1], struct pc_error *err);
/* The answer of a fenced write that changed nothing, from what the row
 * says now: found (0: no such job), its status and its token ("" or NULL
 * when it has none). PC_ERR_NOT_FOUND, PC_ERR_LEASE_LOST (another token or
 * none) or PC_ERR_CONFLICT (this token, not running). */
int pcd_store_fenced(const char *id, int found, enum pcd_job_status status, const char *row_token,
		     const char *token, struct pc_error *err);
/* The headline JSON text of a report (headline.h), NULL when it has none;
 * the caller frees it. */
char *pcd_store_headline_text(const char *report_text);

#endif
