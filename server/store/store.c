/* store: the dispatch layer of the store interface (store.h). It checks
 * the arguments, computes what needs no database (the idempotency hash, a
 * report's headline, the "gave up" problem object, a listing's clamped
 * limit, the API object of a job) and calls the backend the store was
 * opened with (store_backend.h): SQLite (store_sqlite.c) for a file path,
 * PostgreSQL (store_pg.c) for a postgresql:// or postgres:// URL. */
#include "store.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "headline.h"
#include "problem.h"
#include "sha256.h"
#include "store_backend.h"

struct pcd_store {
	const struct pcd_store_ops *ops;
	struct pcd_store_be *be;
	char node[PCD_NODE_MAX + 1];
	int lease_ms;
};

const char *const pcd_upload_table[PCD_UPLOAD_COUNT] = {[PCD_UPLOAD_MODEL] = "models",
							[PCD_UPLOAD_DATASET] = "datasets"};
const char *const pcd_upload_what[PCD_UPLOAD_COUNT] = {[PCD_UPLOAD_MODEL] = "model",
						       [PCD_UPLOAD_DATASET] = "dataset"};

static const char *const status_names[PCD_JOB_STATUS_COUNT] = {
	[PCD_JOB_QUEUED] = "queued",	   [PCD_JOB_RUNNING] = "running",	[PCD_JOB_SUCCEEDED] = "succeeded",
	[PCD_JOB_FAILED] = "failed",	   [PCD_JOB_CANCELLED] = "cancelled",
};

const char *pcd_job_status_name(enum pcd_job_status s)
{
	return (unsigned)s < PCD_JOB_STATUS_COUNT ? status_names[s] : NULL;
}

int pcd_job_status_parse(const char *name)
{
	int i;

	for (i = 0; name && i < PCD_JOB_STATUS_COUNT; i++)
		if (strcmp(name, status_names[i]) == 0)
			return i;
	return -1;
}

int pcd_job_status_finished(enum pcd_job_status s)
{
	return s == PCD_JOB_SUCCEEDED || s == PCD_JOB_FAILED || s == PCD_JOB_CANCELLED;
}

void pcd_store_now(char out[PCD_TIME_LEN])
{
	struct timespec ts;
	struct tm tm;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(out, PCD_TIME_LEN, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

int pcd_tenant_name_valid(const char *name)
{
	size_t n;

	for (n = 0; name && name[n]; n++)
		if (!((name[n] >= 'a' && name[n] <= 'z') || (name[n] >= 'A' && name[n] <= 'Z') ||
		      (name[n] >= '0' && name[n] <= '9') || name[n] == '.' || name[n] == '_' || name[n] == '-'))
			return 0;
	return n >= 1 && n <= PCD_TENANT_MAX;
}

char *pcd_store_headline_text(const char *report_text)
{
	json_t *h = pcd_headline_of_report(report_text);
	char *t = h ? json_dumps(h, JSON_COMPACT) : NULL;

	json_decref(h);
	return t;
}

void pcd_blob_rec_free(struct pcd_blob_rec *r)
{
	if (!r)
		return;
	free(r->info);
	memset(r, 0, sizeof(*r));
}

void pcd_blob_recs_free(struct pcd_blob_rec *recs, size_t n)
{
	size_t i;

	for (i = 0; recs && i < n; i++)
		pcd_blob_rec_free(&recs[i]);
	free(recs);
}

void pcd_job_free(struct pcd_job *j)
{
	if (!j)
		return;
	free(j->spec);
	free(j->progress);
	free(j->error);
	free(j->idempotency_key);
	free(j->labels);
	free(j->headline);
	memset(j, 0, sizeof(*j));
}

void pcd_jobs_free(struct pcd_job *jobs, size_t n)
{
	size_t i;

	for (i = 0; jobs && i < n; i++)
		pcd_job_free(&jobs[i]);
	free(jobs);
}

/* n random bytes as 2n hex digits and a NUL at out. */
static int random_hex(char *out, size_t n, struct pc_error *err)
{
	static const char digits[] = "0123456789abcdef";
	uint8_t r[16];
	ssize_t got;

	if (n > sizeof(r))
		return pc_error_set(err, PC_ERR_INTERNAL, "job", "%zu random bytes", n);
	do
		got = getrandom(r, n, 0);
	while (got < 0 && errno == EINTR);
	if (got != (ssize_t)n)
		return pc_error_set(err, PC_ERR_IO, "job", "getrandom failed");
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[r[i] >> 4];
		out[2 * i + 1] = digits[r[i] & 15];
	}
	out[2 * n] = '\0';
	return PC_OK;
}

int pcd_store_new_job_id(char id[PCD_JOB_ID_LEN + 1], struct pc_error *err)
{
	id[0] = 'j', id[1] = '-';
	return random_hex(id + 2, (PCD_JOB_ID_LEN - 2) / 2, err);
}

int pcd_store_new_token(char token[PCD_TOKEN_LEN + 1], struct pc_error *err)
{
	return random_hex(token, PCD_TOKEN_LEN / 2, err);
}

int pcd_store_fenced(const char *id, int found, enum pcd_job_status status, const char *row_token,
		     const char *token, struct pc_error *err)
{
	if (!found)
		return pc_error_set(err, PC_ERR_NOT_FOUND, "job", "no job with id %s", id);
	if (!row_token || strcmp(row_token, token) != 0)
		return pc_error_set(err, PC_ERR_LEASE_LOST, "job",
				    "job %s is no longer this attempt's: its lease expired and it was requeued (it is %s "
				    "now); this attempt's result is dropped",
				    id, pcd_job_status_name(status));
	return pc_error_set(err, PC_ERR_CONFLICT, "job", "job %s is %s, not running", id, pcd_job_status_name(status));
}

/* The idempotency hash: the spec text's alone when the job has no name or
 * labels (as before they existed), else of spec, name and labels. */
static int job_hash(const char *spec_text, const struct pcd_job_meta *meta, char hash[65], struct pc_error *err)
{
	const char *name = meta && meta->name ? meta->name : "", *labels = meta && meta->labels ? meta->labels : "";
	char *all;
	size_t n;

	if (!name[0] && !labels[0]) {
		pcd_sha256_hex_of(spec_text, strlen(spec_text), hash);
		return PC_OK;
	}
	n = strlen(spec_text) + strlen(name) + strlen(labels) + 3;
	if (!(all = malloc(n)))
		return pc_error_set(err, PC_ERR_NOMEM, "store", "out of memory");
	snprintf(all, n, "%s\n%s\n%s", spec_text, name, labels);
	pcd_sha256_hex_of(all, strlen(all), hash);
	free(all);
	return PC_OK;
}

int pcd_store_is_url(const char *where)
{
	return where && (strncmp(where, "postgresql://", 13) == 0 || strncmp(where, "postgres://", 11) == 0);
}

int pcd_store_open(const char *where, struct pcd_store **out, struct pc_error *err)
{
	struct pcd_store *s;
	int rc;

	*out = NULL;
	if (!where || !where[0])
		return pc_error_set(err, PC_ERR_INVALID, "store", "no database path or URL");
	if (!(s = calloc(1, sizeof(*s))))
		return pc_error_set(err, PC_ERR_NOMEM, "store", "out of memory");
	s->ops = pcd_store_is_url(where) ? &pcd_store_pg_ops : &pcd_store_sqlite_ops;
	snprintf(s->node, sizeof(s->node), "local");
	s->lease_ms = PCD_LEASE_MS_DEFAULT;
	if ((rc = s->ops->open(where, &s->be, err))) {
		free(s);
		return rc;
	}
	*out = s;
	return PC_OK;
}

void pcd_store_close(struct pcd_store *s)
{
	if (!s)
		return;
	s->ops->close(s->be);
	free(s);
}

int pcd_store_set_node(struct pcd_store *s, const char *node, int lease_ms, struct pc_error *err)
{
	size_t n = node ? strlen(node) : 0;

	if (n < 1 || n > PCD_NODE_MAX)
		return pc_error_set(err, PC_ERR_INVALID, "node_name", "must be 1 to %d characters", PCD_NODE_MAX);
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)node[i] <= ' ' || (unsigned char)node[i] >= 0x7f || node[i] == '"' || node[i] == '\\')
			return pc_error_set(err, PC_ERR_INVALID, "node_name",
					    "must be printable ASCII without spaces, quotes or backslashes");
	if (lease_ms < 1000 || lease_ms > 3600000)
		return pc_error_set(err, PC_ERR_INVALID, "lease_ms", "must be from 1000 to 3600000, not %d", lease_ms);
	memcpy(s->node, node, n + 1);
	s->lease_ms = lease_ms;
	return PC_OK;
}

const char *pcd_store_node(const struct pcd_store *s)
{
	return s->node;
}

int pcd_store_lease_ms(const struct pcd_store *s)
{
	return s->lease_ms;
}

const char *pcd_store_backend(const struct pcd_store *s)
{
	return s->ops->name;
}

int pcd_store_ping(struct pcd_store *s, struct pc_error *err)
{
	return s->ops->ping(s->be, err);
}

static int clamp_limit(int limit)
{
	return limit < 1 ? 1 : limit > PCD_LIST_MAX ? PCD_LIST_MAX : limit;
}

static int upload_put(struct pcd_store *s, enum pcd_upload u, const char *tenant, const char *id, int64_t bytes,
		      const char *info, int *existed, struct pc_error *err)
{
	if (!pcd_tenant_name_valid(tenant))
		return pc_error_set(err, PC_ERR_INTERNAL, "tenant", "an upload needs its tenant's name");
	return s->ops->upload_put(s->be, u, tenant, id, bytes, info ? info : "{}", existed, err);
}

static int upload_get(struct pcd_store *s, enum pcd_upload u, const char *tenant, const char *id,
		      struct pcd_blob_rec *out, struct pc_error *err)
{
	memset(out, 0, sizeof(*out));
	return s->ops->upload_get(s->be, u, tenant, id, out, err);
}

static int upload_list(struct pcd_store *s, enum pcd_upload u, const char *tenant, const char *name,
		       const char *after, const char *after_tenant, int limit, struct pcd_blob_rec **out, size_t *n,
		       struct pc_error *err)
{
	*out = NULL;
	*n = 0;
	return s->ops->upload_list(s->be, u, tenant, name, after ? after : "", after_tenant, clamp_limit(limit), out,
				   n, err);
}

static int upload_delete(struct pcd_store *s, enum pcd_upload u, const char *tenant, const char *id, int *unused,
			 struct pc_error *err)
{
	if (unused)
		*unused = 0;
	return s->ops->upload_delete(s->be, u, tenant, id, unused, err);
}

int pcd_store_model_put(struct pcd_store *s, const char *tenant, const char *id, int64_t bytes,
			const char *info_json, int *existed, struct pc_error *err)
{
	return upload_put(s, PCD_UPLOAD_MODEL, tenant, id, bytes, info_json, existed, err);
}

int pcd_store_model_get(struct pcd_store *s, const char *tenant, const char *id, struct pcd_blob_rec *out,
			struct pc_error *err)
{
	return upload_get(s, PCD_UPLOAD_MODEL, tenant, id, out, err);
}

int pcd_store_model_list(struct pcd_store *s, const char *tenant, const char *name, const char *after_id,
			 const char *after_tenant, int limit, struct pcd_blob_rec **out, size_t *n, struct pc_error *err)
{
	return upload_list(s, PCD_UPLOAD_MODEL, tenant, name, after_id, after_tenant, limit, out, n, err);
}

int pcd_store_model_delete(struct pcd_store *s, const char *tenant, const char *id, int *unused,
			   struct pc_error *err)
{
	return upload_delete(s, PCD_UPLOAD_MODEL, tenant, id, unused, err);
}

int pcd_store_dataset_put(struct pcd_store *s, const char *tenant, const char *id, int64_t bytes,
			  const char *info_json, int *existed, struct pc_error *err)
{
	return upload_put(s, PCD_UPLOAD_DATASET, tenant, id, bytes, info_json, existed, err);
}

int pcd_store_dataset_get(struct pcd_store *s, const char *tenant, const char *id, struct pcd_blob_rec *out,
			  struct pc_error *err)
{
	return upload_get(s, PCD_UPLOAD_DATASET, tenant, id, out, err);
}

int pcd_store_dataset_list(struct pcd_store *s, const char *tenant, const char *name, const char *after_id,
			   const char *after_tenant, int limit, struct pcd_blob_rec **out, size_t *n,
			   struct pc_error *err)
{
	return upload_list(s, PCD_UPLOAD_DATASET, tenant, name, after_id, after_tenant, limit, out, n, err);
}

int pcd_store_dataset_delete(struct pcd_store *s, const char *tenant, const char *id, int *unused,
			     struct pc_error *err)
{
	return upload_delete(s, PCD_UPLOAD_DATASET, tenant, id, unused, err);
}

int pcd_store_tenant_usage(struct pcd_store *s, const char *tenant, int64_t *queued, int64_t *stored_bytes,
			   struct pc_error *err)
{
	return s->ops->tenant_usage(s->be, tenant, queued, stored_bytes, err);
}

int pcd_store_upload_name(struct pcd_store *s, enum pcd_upload upload, const char *tenant, const char *id,
			  const char *name, struct pc_error *err)
{
	if ((unsigned)upload >= PCD_UPLOAD_COUNT)
		return pc_error_set(err, PC_ERR_INTERNAL, "store", "no such upload kind");
	return s->ops->upload_name(s->be, upload, tenant, id, name ? name : "", err);
}

int pcd_store_job_submit(struct pcd_store *s, const char *tenant, int any_uploads, const char *kind,
			 const char *spec_text, const struct pcd_job_refs *refs, const char *idem_key, int max_queue,
			 int tenant_max_queued, struct pcd_job *out, int *created, struct pc_error *err)
{
	return pcd_store_job_submit_meta(s, tenant, any_uploads, kind, spec_text, NULL, refs, idem_key, max_queue,
					 tenant_max_queued, out, created, err);
}

int pcd_store_job_submit_meta(struct pcd_store *s, const char *tenant, int any_uploads, const char *kind,
			      const char *spec_text, const struct pcd_job_meta *meta, const struct pcd_job_refs *refs,
			      const char *idem_key, int max_queue, int tenant_max_queued, struct pcd_job *out,
			      int *created, struct pc_error *err)
{
	char hash[65];
	struct pcd_job_new nj = {
		.tenant = tenant,
		.upload_scope = any_uploads ? PCD_ALL_TENANTS : tenant,
		.kind = kind,
		.spec_text = spec_text,
		.hash = hash,
		.name = meta && meta->name ? meta->name : "",
		.labels = meta && meta->labels ? meta->labels : "{}",
		.refs = refs ? refs->v : NULL,
		.n_refs = refs ? refs->n : 0,
		.idem_key = idem_key,
		.max_queue = max_queue,
		.tenant_max_queued = tenant_max_queued,
	};
	int rc, made = 0;

	if (created)
		*created = 0;
	if (out)
		memset(out, 0, sizeof(*out));
	if (!pcd_tenant_name_valid(tenant))
		return pc_error_set(err, PC_ERR_INTERNAL, "tenant", "a job needs its tenant's name");
	if (nj.n_refs < 0 || nj.n_refs > PCD_JOB_REFS_MAX)
		return pc_error_set(err, PC_ERR_INTERNAL, "store", "%d job references", nj.n_refs);
	for (int i = 0; i < nj.n_refs; i++)
		if ((unsigned)nj.refs[i].upload >= PCD_UPLOAD_COUNT || !nj.refs[i].field)
			return pc_error_set(err, PC_ERR_INTERNAL, "store", "a job reference without its upload kind");
	if ((rc = job_hash(spec_text, meta, hash, err)))
		return rc;
	rc = s->ops->job_submit(s->be, &nj, out, &made, err);
	if (created)
		*created = made;
	return rc;
}

/* Every fenced write names its attempt. */
static int need_token(const char *token, struct pc_error *err)
{
	if (!token || strlen(token) != PCD_TOKEN_LEN)
		return pc_error_set(err, PC_ERR_INTERNAL, "job", "a write of a running job without its claim token");
	return PC_OK;
}

int pcd_store_job_artifact_put(struct pcd_store *s, const char *job_id, const char *token, const char *name,
			       const char *model_id, struct pc_error *err)
{
	int rc = need_token(token, err);

	return rc ? rc : s->ops->artifact_put(s->be, job_id, token, name, model_id, err);
}

int pcd_store_job_artifact_get(struct pcd_store *s, const char *job_id, const char *name, char model_id[65],
			       struct pc_error *err)
{
	model_id[0] = '\0';
	return s->ops->artifact_get(s->be, job_id, name, model_id, err);
}

int pcd_store_job_claim(struct pcd_store *s, struct pcd_job *out, struct pc_error *err)
{
	char token[PCD_TOKEN_LEN + 1];
	int rc;

	memset(out, 0, sizeof(*out));
	if ((rc = pcd_store_new_token(token, err)))
		return rc;
	return s->ops->job_claim(s->be, s->node, token, s->lease_ms, out, err);
}

int pcd_store_job_heartbeat(struct pcd_store *s, const char *id, const char *token, const char *progress_json,
			    int *cancel_requested, struct pc_error *err)
{
	int rc = need_token(token, err);

	return rc ? rc : s->ops->job_heartbeat(s->be, id, token, s->lease_ms, progress_json, cancel_requested, err);
}

int pcd_store_job_complete(struct pcd_store *s, const char *id, const char *token, enum pcd_job_status status,
			   const char *report_text, const char *error_json, struct pc_error *err)
{
	char *headline;
	int rc;

	if ((rc = need_token(token, err)))
		return rc;
	if (!pcd_job_status_finished(status))
		return pc_error_set(err, PC_ERR_INTERNAL, "job", "complete with status %d", (int)status);
	/* once here, so a listing reads a few numbers and never the report */
	headline = pcd_store_headline_text(report_text);
	rc = s->ops->job_complete(s->be, id, token, status, report_text, error_json, headline, err);
	free(headline);
	return rc;
}

int pcd_store_job_requeue(struct pcd_store *s, const char *id, const char *token, struct pc_error *err)
{
	int rc = need_token(token, err);

	return rc ? rc : s->ops->job_requeue(s->be, id, token, err);
}

static int recover(struct pcd_store *s, int max_attempts, const char *node, int *n_requeued, int *n_failed,
		   struct pc_error *err)
{
	struct pc_error gave_up = {0};
	char *problem_text;
	int rc;

	if (max_attempts < 1)
		max_attempts = 1;
	pc_error_set(&gave_up, PC_ERR_GAVE_UP, NULL,
		     "gave up after %d attempts: the daemon stopped while the job was running, each time", max_attempts);
	if (!(problem_text = pcd_problem_json_text(&gave_up)))
		return pc_error_set(err, PC_ERR_NOMEM, "store", "out of memory");
	rc = s->ops->job_recover(s->be, max_attempts, problem_text, node, n_requeued, n_failed, err);
	free(problem_text);
	return rc;
}

int pcd_store_job_recover(struct pcd_store *s, int max_attempts, int *n_requeued, int *n_failed,
			  struct pc_error *err)
{
	return recover(s, max_attempts, s->node, n_requeued, n_failed, err);
}

int pcd_store_job_sweep(struct pcd_store *s, int max_attempts, int *n_requeued, int *n_failed,
			struct pc_error *err)
{
	return recover(s, max_attempts, NULL, n_requeued, n_failed, err);
}

int pcd_store_wait_jobs(struct pcd_store *s, int timeout_ms, int *notified, struct pc_error *err)
{
	*notified = 0;
	if (!s->ops->wait_jobs)
		return pc_error_set(err, PC_ERR_UNSUPPORTED, "store", "the %s store has no notifications", s->ops->name);
	return s->ops->wait_jobs(s->be, timeout_ms < 0 ? 0 : timeout_ms, notified, err);
}

int pcd_store_job_get(struct pcd_store *s, const char *tenant, const char *id, struct pcd_job *out,
		      struct pc_error *err)
{
	memset(out, 0, sizeof(*out));
	return s->ops->job_get(s->be, tenant, id, out, err);
}

int pcd_store_job_report(struct pcd_store *s, const char *tenant, const char *id, char **text,
			 struct pc_error *err)
{
	*text = NULL;
	return s->ops->job_report(s->be, tenant, id, text, err);
}

int pcd_store_job_list(struct pcd_store *s, const char *tenant, const char *status, int64_t after_seq, int limit,
		       struct pcd_job **out, size_t *n, struct pc_error *err)
{
	const struct pcd_job_filter f = {.status = status};

	return pcd_store_job_find(s, tenant, &f, after_seq, limit, out, n, err);
}

int pcd_store_job_find(struct pcd_store *s, const char *tenant, const struct pcd_job_filter *f, int64_t after_seq,
		       int limit, struct pcd_job **out, size_t *n, struct pc_error *err)
{
	*out = NULL;
	*n = 0;
	if (f->status && pcd_job_status_parse(f->status) < 0)
		return pc_error_set(err, PC_ERR_INVALID, "status",
				    "must be queued, running, succeeded, failed or cancelled");
	if (f->n_labels < 0 || f->n_labels > PCD_LABELS_MAX)
		return pc_error_set(err, PC_ERR_BAD_REQUEST, "label", "at most %d label filters", PCD_LABELS_MAX);
	return s->ops->job_find(s->be, tenant, f, after_seq, clamp_limit(limit), out, n, err);
}

int pcd_store_job_cancel(struct pcd_store *s, const char *tenant, const char *id,
			 enum pcd_job_status *status_after, struct pc_error *err)
{
	return s->ops->job_cancel(s->be, tenant, id, status_after, err);
}

int pcd_store_job_delete(struct pcd_store *s, const char *tenant, const char *id, struct pc_error *err)
{
	return s->ops->job_delete(s->be, tenant, id, err);
}

int pcd_store_queue_depth(struct pcd_store *s, int64_t *queued, int64_t *running, struct pc_error *err)
{
	return s->ops->queue_depth(s->be, queued, running, err);
}

/* ---- sharded studies ------------------------------------------------------- */

void pcd_shards_free(struct pcd_shard *v, size_t n)
{
	for (size_t i = 0; v && i < n; i++) {
		free(v[i].progress);
		free(v[i].error);
	}
	free(v);
}

int pcd_store_job_shards_start(struct pcd_store *s, const char *parent_id, const char *token, int n,
			       const char *const *spec_texts, const char *state_name, const unsigned char *state,
			       size_t state_len, struct pc_error *err)
{
	char (*hashes)[65] = NULL;
	const char **hp = NULL;
	int rc;

	if ((rc = need_token(token, err)))
		return rc;
	hashes = calloc((size_t)n + 1, sizeof(*hashes));
	hp = calloc((size_t)n + 1, sizeof(*hp));
	if (!hashes || !hp) {
		free(hashes);
		free(hp);
		return pc_error_set(err, PC_ERR_NOMEM, "store", "out of memory");
	}
	for (int i = 0; i < n; i++) {
		pcd_sha256_hex_of(spec_texts[i], strlen(spec_texts[i]), hashes[i]);
		hp[i] = hashes[i];
	}
	rc = s->ops->shards_start(s->be, parent_id, token, n, spec_texts, hp, state_name, state, state_len, err);
	free(hashes);
	free(hp);
	return rc;
}

int pcd_store_job_state_get(struct pcd_store *s, const char *job_id, const char *name, unsigned char **data,
			    size_t *len, struct pc_error *err)
{
	*data = NULL;
	*len = 0;
	return s->ops->state_get(s->be, job_id, name, data, len, err);
}

int pcd_store_job_shards(struct pcd_store *s, const char *parent_id, struct pcd_shard **out, size_t *n,
			 struct pc_error *err)
{
	*out = NULL;
	*n = 0;
	return s->ops->shards_list(s->be, parent_id, out, n, err);
}

int pcd_store_job_shard_finished(struct pcd_store *s, const char *shard_id, const char *parent_problem, int *merge,
				 char parent_id[PCD_JOB_ID_LEN + 1], char token[PCD_TOKEN_LEN + 1],
				 struct pc_error *err)
{
	int rc;

	*merge = 0;
	parent_id[0] = '\0';
	if ((rc = pcd_store_new_token(token, err)))
		return rc;
	return s->ops->shard_finished(s->be, shard_id, parent_problem, s->node, token, s->lease_ms, merge, parent_id,
				      err);
}

/* ---- the API object -------------------------------------------------------- */

static json_t *time_or_null(const char *t)
{
	return t[0] ? json_string(t) : json_null();
}

/* Stored JSON text back to a value; null when absent or unreadable. */
static json_t *parse_or_null(const char *text)
{
	json_t *v = text ? json_loads(text, JSON_DECODE_ANY, NULL) : NULL;

	return v ? v : json_null();
}

json_t *pcd_job_to_json(const struct pcd_job *j)
{
	char self[64], report[80];

	snprintf(self, sizeof(self), "/v1/jobs/%s", j->id);
	snprintf(report, sizeof(report), "/v1/jobs/%s/report", j->id);
	json_t *labels = parse_or_null(j->labels);

	if (!json_is_object(labels)) {
		json_decref(labels);
		labels = json_object();
	}
	return json_pack("{s:s, s:s, s:s, s:i, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:{s:s, s:s}}", "id", j->id,
			 "kind", j->kind, "status", pcd_job_status_name(j->status), "attempts", j->attempts, "progress",
			 parse_or_null(j->progress), "created_at", time_or_null(j->created_at), "started_at",
			 time_or_null(j->started_at), "finished_at", time_or_null(j->finished_at), "error",
			 parse_or_null(j->error), "name", j->name[0] ? json_string(j->name) : json_null(), "labels",
			 labels, "headline", parse_or_null(j->headline), "node",
			 j->node[0] ? json_string(j->node) : json_null(), "links", "self", self, "report", report);
}
