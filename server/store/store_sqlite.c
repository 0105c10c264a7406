/* store_sqlite: the SQLite backend of the store (store_backend.h).
 *
 * One connection, one mutex: every public function takes the mutex for its
 * whole duration, so a multi-statement change (claim: find the oldest
 * queued job, then mark it running) is atomic for the threads of this
 * process, and the BEGIN IMMEDIATE around it makes it atomic on disk and
 * against another process using the same file. WAL with synchronous=FULL
 * means a committed transaction survives a power cut; readers never block
 * the writer.
 *
 * A job's references to uploads are rows of job_uploads (schema version
 * 3), given by the caller (the job kind's check, jobs.h): the store never
 * reads a spec, and deleting an upload a pending job needs is refused by
 * one join. What a job made (a harden job's model) is a row of
 * job_artifacts.
 *
 * Leases (schema version 5): the columns and the fencing by claim token of
 * the PostgreSQL backend (store.h), so that both answer alike; a SQLite
 * file has one node (the data directory's lock), whose recovery at startup
 * takes every running job, and leases only matter to the sweep.
 *
 * Tenants (schema version 2): models and datasets are keyed by (tenant,
 * id), jobs carry their tenant and idempotency keys are unique per tenant.
 * A scope argument of NULL (PCD_ALL_TENANTS) matches every tenant: the SQL
 * says "(?1 IS NULL OR tenant = ?1)" so one statement serves both. */
#include "store_backend.h"

#include <errno.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SCHEMA_VERSION 6
/* now in ms since 1970 on the database's clock (this host's: one node),
 * for leases */
#define NOW_MS "CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER)"

struct pcd_store_be {
	sqlite3 *db;
	pthread_mutex_t lock;
};

/* SQLite's primary result codes with a status of their own. A full disk
 * is SQLITE_FULL; a write that hit a quota (EDQUOT) is SQLITE_IOERR, told
 * by the errno of the system call that failed; anything else PC_ERR_IO. */
static const struct {
	int sqlite;
	enum pc_status code;
} db_codes[] = {
	{SQLITE_BUSY, PC_ERR_BUSY},
	{SQLITE_LOCKED, PC_ERR_BUSY},
	{SQLITE_NOMEM, PC_ERR_NOMEM},
	{SQLITE_FULL, PC_ERR_NOSPACE},
};

static int db_error(struct pcd_store_be *s, struct pc_error *err, const char *where)
{
	int code = sqlite3_errcode(s->db) & 0xff;
	enum pc_status st = code == SQLITE_IOERR ? pc_status_of_errno(sqlite3_system_errno(s->db)) : PC_ERR_IO;

	for (size_t i = 0; i < sizeof(db_codes) / sizeof(db_codes[0]); i++)
		if (db_codes[i].sqlite == code)
			st = db_codes[i].code;
	return pc_error_set(err, st, where, "database: %s", sqlite3_errmsg(s->db));
}

static int exec(struct pcd_store_be *s, const char *sql, struct pc_error *err)
{
	if (sqlite3_exec(s->db, sql, NULL, NULL, NULL) != SQLITE_OK)
		return db_error(s, err, "store");
	return PC_OK;
}

static int prep(struct pcd_store_be *s, const char *sql, sqlite3_stmt **st, struct pc_error *err)
{
	if (sqlite3_prepare_v2(s->db, sql, -1, st, NULL) != SQLITE_OK) {
		*st = NULL;
		return db_error(s, err, "store");
	}
	return PC_OK;
}

/* Steps st once: *found is 1 when it gave a row, 0 when it is done; a
 * database failure is the error. */
static int step_row(struct pcd_store_be *s, sqlite3_stmt *st, int *found, struct pc_error *err)
{
	int r = sqlite3_step(st);

	*found = r == SQLITE_ROW;
	if (r != SQLITE_ROW && r != SQLITE_DONE)
		return db_error(s, err, "store");
	return PC_OK;
}

/* Binds NULL for a NULL string. */
static void bind_text(sqlite3_stmt *st, int i, const char *v)
{
	if (v)
		sqlite3_bind_text(st, i, v, -1, SQLITE_TRANSIENT);
	else
		sqlite3_bind_null(st, i);
}

/* Runs a statement that returns no rows. */
static int step_done(struct pcd_store_be *s, sqlite3_stmt *st, struct pc_error *err)
{
	int found;

	return step_row(s, st, &found, err);
}

/* The integers of the one row sql always gives (a count, a pragma), with
 * ?1 bound to key when not NULL: column 0 to *a and column 1 to *b, each
 * when not NULL. No row is a database failure. The caller holds the lock
 * (or, opening, has the store to itself). */
static int one_row(struct pcd_store_be *s, const char *sql, const char *key, int64_t *a, int64_t *b,
		   struct pc_error *err)
{
	sqlite3_stmt *st = NULL;
	int rc;

	if ((rc = prep(s, sql, &st, err)))
		return rc;
	if (key)
		bind_text(st, 1, key);
	if (sqlite3_step(st) != SQLITE_ROW)
		rc = db_error(s, err, "store");
	else {
		if (a)
			*a = sqlite3_column_int64(st, 0);
		if (b)
			*b = sqlite3_column_int64(st, 1);
	}
	sqlite3_finalize(st);
	return rc;
}

static int begin(struct pcd_store_be *s, struct pc_error *err)
{
	return exec(s, "BEGIN IMMEDIATE", err);
}

static int commit(struct pcd_store_be *s, struct pc_error *err)
{
	return exec(s, "COMMIT", err);
}

static void rollback(struct pcd_store_be *s)
{
	if (!sqlite3_get_autocommit(s->db))
		sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
}

static const char schema_v1[] =
	"CREATE TABLE models (id TEXT PRIMARY KEY, bytes INTEGER NOT NULL, created_at TEXT NOT NULL,"
	" info TEXT NOT NULL);"
	"CREATE TABLE datasets (id TEXT PRIMARY KEY, bytes INTEGER NOT NULL, created_at TEXT NOT NULL,"
	" info TEXT NOT NULL);"
	"CREATE TABLE jobs ("
	" seq INTEGER PRIMARY KEY AUTOINCREMENT,"
	" id TEXT NOT NULL UNIQUE,"
	" kind TEXT NOT NULL,"
	" spec TEXT NOT NULL,"
	" status TEXT NOT NULL CHECK (status IN ('queued','running','succeeded','failed','cancelled')),"
	" attempts INTEGER NOT NULL DEFAULT 0,"
	" cancel_requested INTEGER NOT NULL DEFAULT 0,"
	" progress TEXT, error TEXT, report TEXT,"
	" idempotency_key TEXT UNIQUE,"
	" spec_hash TEXT NOT NULL,"
	" model_id TEXT, dataset_id TEXT,"
	" created_at TEXT NOT NULL, started_at TEXT, finished_at TEXT, heartbeat_at TEXT);"
	"CREATE INDEX jobs_status_seq ON jobs (status, seq);"
	"CREATE INDEX jobs_model ON jobs (model_id);"
	"CREATE INDEX jobs_dataset ON jobs (dataset_id);";

/* Version 2: a tenant on every row; what existed belongs to "default".
 * SQLite cannot change a primary key or drop a UNIQUE column constraint in
 * place, so each table is rebuilt and its rows copied. */
static const char schema_v2[] =
	"CREATE TABLE models_v2 (tenant TEXT NOT NULL, id TEXT NOT NULL, bytes INTEGER NOT NULL,"
	" created_at TEXT NOT NULL, info TEXT NOT NULL, PRIMARY KEY (tenant, id));"
	"INSERT INTO models_v2 SELECT 'default', id, bytes, created_at, info FROM models;"
	"DROP TABLE models;"
	"ALTER TABLE models_v2 RENAME TO models;"
	"CREATE INDEX models_id ON models (id);"
	"CREATE TABLE datasets_v2 (tenant TEXT NOT NULL, id TEXT NOT NULL, bytes INTEGER NOT NULL,"
	" created_at TEXT NOT NULL, info TEXT NOT NULL, PRIMARY KEY (tenant, id));"
	"INSERT INTO datasets_v2 SELECT 'default', id, bytes, created_at, info FROM datasets;"
	"DROP TABLE datasets;"
	"ALTER TABLE datasets_v2 RENAME TO datasets;"
	"CREATE INDEX datasets_id ON datasets (id);"
	"CREATE TABLE jobs_v2 ("
	" seq INTEGER PRIMARY KEY AUTOINCREMENT,"
	" id TEXT NOT NULL UNIQUE,"
	" tenant TEXT NOT NULL,"
	" kind TEXT NOT NULL,"
	" spec TEXT NOT NULL,"
	" status TEXT NOT NULL CHECK (status IN ('queued','running','succeeded','failed','cancelled')),"
	" attempts INTEGER NOT NULL DEFAULT 0,"
	" cancel_requested INTEGER NOT NULL DEFAULT 0,"
	" progress TEXT, error TEXT, report TEXT,"
	" idempotency_key TEXT,"
	" spec_hash TEXT NOT NULL,"
	" model_id TEXT, dataset_id TEXT,"
	" created_at TEXT NOT NULL, started_at TEXT, finished_at TEXT, heartbeat_at TEXT,"
	" UNIQUE (tenant, idempotency_key));"
	"INSERT INTO jobs_v2 (seq, id, tenant, kind, spec, status, attempts, cancel_requested, progress, error,"
	" report, idempotency_key, spec_hash, model_id, dataset_id, created_at, started_at, finished_at,"
	" heartbeat_at) SELECT seq, id, 'default', kind, spec, status, attempts, cancel_requested, progress,"
	" error, report, idempotency_key, spec_hash, model_id, dataset_id, created_at, started_at,"
	" finished_at, heartbeat_at FROM jobs;"
	/* a deleted job's seq is never handed out again: keep the counter */
	"DELETE FROM sqlite_sequence WHERE name = 'jobs_v2';"
	"INSERT INTO sqlite_sequence (name, seq) SELECT 'jobs_v2', seq FROM sqlite_sequence WHERE name = 'jobs';"
	"DROP TABLE jobs;"
	"ALTER TABLE jobs_v2 RENAME TO jobs;"
	"CREATE INDEX jobs_status_seq ON jobs (status, seq);"
	"CREATE INDEX jobs_tenant_seq ON jobs (tenant, seq);"
	"CREATE INDEX jobs_model ON jobs (model_id);"
	"CREATE INDEX jobs_dataset ON jobs (dataset_id);";

/* Version 3: what a job references and what it made, as tables. The
 * references of jobs stored before are their model_id and dataset_id
 * columns, and for a harden job its training dataset, read once here from
 * the stored spec (version 2 did not record it, so a queued harden job's
 * training data could be deleted under it); the columns go. */
static const char schema_v3[] =
	"CREATE TABLE job_uploads (job_id TEXT NOT NULL, field TEXT NOT NULL,"
	" upload TEXT NOT NULL CHECK (upload IN ('model', 'dataset')), upload_id TEXT NOT NULL,"
	" PRIMARY KEY (job_id, field));"
	"CREATE INDEX job_uploads_upload ON job_uploads (upload, upload_id);"
	"CREATE TABLE job_artifacts (job_id TEXT NOT NULL, name TEXT NOT NULL, model_id TEXT NOT NULL,"
	" PRIMARY KEY (job_id, name));"
	"INSERT INTO job_uploads SELECT id, 'model', 'model', model_id FROM jobs WHERE model_id IS NOT NULL;"
	"INSERT INTO job_uploads SELECT id, 'dataset', 'dataset', dataset_id FROM jobs WHERE dataset_id IS NOT NULL;"
	"INSERT INTO job_uploads SELECT id, 'training.dataset', 'dataset', json_extract(spec, '$.training.dataset')"
	" FROM jobs WHERE json_valid(spec) AND json_type(spec, '$.training.dataset') = 'text';"
	"DROP INDEX jobs_model;"
	"DROP INDEX jobs_dataset;"
	"ALTER TABLE jobs DROP COLUMN model_id;"
	"ALTER TABLE jobs DROP COLUMN dataset_id;";

/* Version 4: names of uploads and jobs, a job's labels, and the headline
 * of its report (headline.h), computed for the reports stored before by
 * backfill_headlines. */
static const char schema_v4[] =
	"ALTER TABLE models ADD COLUMN name TEXT NOT NULL DEFAULT '';"
	"ALTER TABLE datasets ADD COLUMN name TEXT NOT NULL DEFAULT '';"
	"ALTER TABLE jobs ADD COLUMN name TEXT NOT NULL DEFAULT '';"
	"ALTER TABLE jobs ADD COLUMN labels TEXT NOT NULL DEFAULT '{}';"
	"ALTER TABLE jobs ADD COLUMN headline TEXT;"
	"CREATE INDEX models_name ON models (name);"
	"CREATE INDEX datasets_name ON datasets (name);"
	"CREATE INDEX jobs_name ON jobs (name);";

/* Version 5: leases, claim tokens and the node of a job's latest attempt
 * (lease_expires_at in ms since 1970, NOW_MS). */
static const char schema_v5[] =
	"ALTER TABLE jobs ADD COLUMN lease_expires_at INTEGER;"
	"ALTER TABLE jobs ADD COLUMN claim_token TEXT;"
	"ALTER TABLE jobs ADD COLUMN node TEXT NOT NULL DEFAULT '';";

/* Version 6: sharded studies (store.h). A shard job knows its parent and
 * index; a parent's waiting is 0 (a job as any), 1 (its shards run, no
 * worker holds it) or 2 (merging); job_state holds a job's named bytes
 * (the prefix state). */
static const char schema_v6[] =
	"ALTER TABLE jobs ADD COLUMN parent_id TEXT;"
	"ALTER TABLE jobs ADD COLUMN shard_index INTEGER;"
	"ALTER TABLE jobs ADD COLUMN waiting INTEGER NOT NULL DEFAULT 0;"
	"CREATE INDEX jobs_parent ON jobs (parent_id, shard_index);"
	"CREATE TABLE job_state (job_id TEXT NOT NULL, name TEXT NOT NULL, data BLOB NOT NULL,"
	" PRIMARY KEY (job_id, name));";

/* Every stored report's headline, once (the migration to version 4). */
static int backfill_headlines(struct pcd_store_be *s, struct pc_error *err)
{
	sqlite3_stmt *st = NULL, *up = NULL;
	int rc, r;

	if ((rc = prep(s, "SELECT id, report FROM jobs WHERE report IS NOT NULL", &st, err)) ||
	    (rc = prep(s, "UPDATE jobs SET headline = ?1 WHERE id = ?2", &up, err)))
		goto out;
	while ((r = sqlite3_step(st)) == SQLITE_ROW) {
		char *h = pcd_store_headline_text((const char *)sqlite3_column_text(st, 1));

		bind_text(up, 1, h);
		bind_text(up, 2, (const char *)sqlite3_column_text(st, 0));
		rc = step_done(s, up, err);
		free(h);
		if (rc)
			goto out;
		sqlite3_reset(up);
	}
	if (r != SQLITE_DONE)
		rc = db_error(s, err, "store");
out:
	sqlite3_finalize(st);
	sqlite3_finalize(up);
	return rc;
}

static int migrate(struct pcd_store_be *s, struct pc_error *err)
{
	int64_t version;
	int rc;

	if ((rc = begin(s, err)))
		return rc;
	if ((rc = one_row(s, "PRAGMA user_version", NULL, &version, NULL, err)))
		goto fail;
	if (version > SCHEMA_VERSION) {
		rc = pc_error_set(err, PC_ERR_UNSUPPORTED, "store",
				  "database schema version %d is newer than this program's %d", (int)version,
				  SCHEMA_VERSION);
		goto fail;
	}
	/* each step moves the schema one version up; later versions add steps */
	if (version < 1 && (rc = exec(s, schema_v1, err)))
		goto fail;
	if (version < 2 && (rc = exec(s, schema_v2, err)))
		goto fail;
	if (version < 3 && (rc = exec(s, schema_v3, err)))
		goto fail;
	if (version < 4 && ((rc = exec(s, schema_v4, err)) || (rc = backfill_headlines(s, err))))
		goto fail;
	if (version < 5 && (rc = exec(s, schema_v5, err)))
		goto fail;
	if (version < 6 && (rc = exec(s, schema_v6, err)))
		goto fail;
	if (version < SCHEMA_VERSION) {
		char sql[64];
		snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", SCHEMA_VERSION);
		if ((rc = exec(s, sql, err)))
			goto fail;
	}
	return commit(s, err);
fail:
	rollback(s);
	return rc;
}

static int sq_open(const char *path, struct pcd_store_be **out, struct pc_error *err)
{
	struct pcd_store_be *s;
	sqlite3_stmt *st = NULL;
	int rc;

	*out = NULL;
	s = calloc(1, sizeof(*s));
	if (!s)
		return pc_error_set(err, PC_ERR_NOMEM, "store", "out of memory");
	if (pthread_mutex_init(&s->lock, NULL) != 0) {
		free(s);
		return pc_error_set(err, PC_ERR_INTERNAL, "store", "cannot create a mutex");
	}
	/* our own mutex serialises use of the connection */
	if (sqlite3_open_v2(path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL) !=
	    SQLITE_OK) {
		rc = pc_error_set(err, PC_ERR_IO, path, "cannot open the database: %s",
				  s->db ? sqlite3_errmsg(s->db) : "out of memory");
		goto fail;
	}
	sqlite3_busy_timeout(s->db, 5000);
	if ((rc = prep(s, "PRAGMA journal_mode = WAL", &st, err)))
		goto fail;
	if (sqlite3_step(st) != SQLITE_ROW || strcmp((const char *)sqlite3_column_text(st, 0), "wal") != 0) {
		rc = pc_error_set(err, PC_ERR_IO, path, "cannot switch the database to WAL mode");
		goto fail;
	}
	sqlite3_finalize(st);
	st = NULL;
	if ((rc = exec(s, "PRAGMA synchronous = FULL", err)) || (rc = migrate(s, err)))
		goto fail;
	*out = s;
	return PC_OK;
fail:
	sqlite3_finalize(st);
	sqlite3_close(s->db);
	pthread_mutex_destroy(&s->lock);
	free(s);
	return rc;
}

static void sq_close(struct pcd_store_be *s)
{
	if (!s)
		return;
	sqlite3_close(s->db);
	pthread_mutex_destroy(&s->lock);
	free(s);
}

static int sq_ping(struct pcd_store_be *s, struct pc_error *err)
{
	int rc;

	pthread_mutex_lock(&s->lock);
	if (!(rc = begin(s, err)))
		rc = commit(s, err);
	if (rc)
		rollback(s);
	pthread_mutex_unlock(&s->lock);
	return rc;
}

/* ---- models and datasets ------------------------------------------------ */

static char *dup_col(sqlite3_stmt *st, int i)
{
	const char *v = (const char *)sqlite3_column_text(st, i);

	return v ? strdup(v) : NULL;
}

static void copy_col(sqlite3_stmt *st, int i, char *out, size_t size)
{
	const char *v = (const char *)sqlite3_column_text(st, i);

	snprintf(out, size, "%s", v ? v : "");
}

#define REC_COLS "id, bytes, created_at, info, tenant, name"

static int read_rec(sqlite3_stmt *st, void *row, struct pc_error *err)
{
	struct pcd_blob_rec *r = row;

	copy_col(st, 0, r->id, sizeof(r->id));
	r->bytes = sqlite3_column_int64(st, 1);
	copy_col(st, 2, r->created_at, sizeof(r->created_at));
	copy_col(st, 4, r->tenant, sizeof(r->tenant));
	copy_col(st, 5, r->name, sizeof(r->name));
	r->info = dup_col(st, 3);
	if (!r->info)
		return pc_error_set(err, PC_ERR_NOMEM, "store", "out of memory");
	return PC_OK;
}

/* table is "models" or "datasets", never user input */
static int sq_upload_put(struct pcd_store_be *s, enum pcd_upload u, const char *tenant, const char *id,
			 int64_t bytes, const char *info, int *existed, struct pc_error *err)
{
	const char *table = pcd_upload_table[u];
	char sql[160], now[PCD_TIME_LEN];
	sqlite3_stmt *st = NULL;
	int rc;

	pcd_store_now(now);
	snprintf(sql, sizeof(sql),
		 "INSERT OR IGNORE INTO %s (id, bytes, created_at, info, tenant) VALUES (?, ?, ?, ?, ?)", table);
	pthread_mutex_lock(&s->lock);
	if ((rc = prep(s, sql, &st, err)))
		goto out;
	bind_text(st, 1, id);
	sqlite3_bind_int64(st, 2, bytes);
	bind_text(st, 3, now);
	bind_text(st, 4, info ? info : "{}");
	bind_text(st, 5, tenant);
	if ((rc = step_done(s, st, err)))
		goto out;
	if (existed)
		*existed = sqlite3_changes(s->db) == 0;
out:
	sqlite3_finalize(st);
	pthread_mutex_unlock(&s->lock);
	return rc;
}

static int sq_upload_get(struct pcd_store_be *s, enum pcd_upload u, const char *tenant, const char *id,
			 struct pcd_blob_rec *out, struct pc_error *err)
{
	const char *table = pcd_upload_table[u];
	char sql[160];
	sqlite3_stmt *st = NULL;
	int rc, found;

	memset(out, 0, sizeof(*out));
	snprintf(sql, sizeof(sql),
		 "SELECT " REC_COLS " FROM %s WHERE id = ?1 AND (?2 IS NULL OR tenant = ?2) ORDER BY tenant LIMIT 1",
		 table);
	pthread_mutex_lock(&s->lock);
	if ((rc = prep(s, sql, &st, err)))
		goto out;
	bind_text(st, 1, id);
	bind_text(st, 2, tenant);
	if ((rc = step_row(s, st, &found, err)))
		goto out;
	rc = found ? read_rec(st, out, err)
		   : pc_error_set(err, PC_ERR_NOT_FOUND, pcd_upload_what[u], "no %s with id %s", pcd_upload_what[u],
				  id);
out:
	sqlite3_finalize(st);
	pthread_mutex_unlock(&s->lock);
	return rc;
}

/* A listing's row type: its size, how a row is read from a statement and
 * how an array of them is freed. */
struct row_kind {
	size_t size;
	int (*read)(sqlite3_stmt *st, void *row, struct pc_error *err);
	void (*free_rows)(void *rows, size_t n);
};

/* A parameter of a listing query: an integer when is_int, else text
 * (NULL binds NULL). */
struct list_param {
	int is_int;
	int64_t i;
	const char *text;
};

/* One page of a listing: sql with ?1 the limit (1..PCD_LIST_MAX) and
 * params bound from ?2 on. *out is an array of n rows of kind, freed with
 * its free_rows (NULL when *n == 0). */
static int list_page(struct pcd_store_be *s, const char *sql, const struct list_param *params, int n_params,
		     int limit, const struct row_kind *kind, void **out, size_t *n, struct pc_error *err)
{
	sqlite3_stmt *st = NULL;
	char *rows;
	size_t count = 0;
	int rc, r;

	*out = NULL;
	*n = 0;
	rows = calloc((size_t)limit, kind->size);
	if (!rows)
		return pc_error_set(err, PC_ERR_NOMEM, "store", "out of memory");
	pthread_mutex_lock(&s->lock);
	if ((rc = prep(s, sql, &st, err)))
		goto out;
	sqlite3_bind_int(st, 1, limit);
	for (int i = 0; i < n_params; i++) {
		if (params[i].is_int)
			sqlite3_bind_int64(st, i + 2, params[i].i);
		else
			bind_text(st, i + 2, params[i].text);
	}
	while ((r = sqlite3_step(st)) == SQLITE_ROW) {
		if ((rc = kind->read(st, rows + count * kind->size, err)))
			goto out;
		count++;
	}
	if (r != SQLITE_DONE)
		rc = db_error(s, err, "store");
out:
	sqlite3_finalize(st);
	pthread_mutex_unlock(&s->lock);
	if (rc || count == 0) {
		kind->free_rows(rows, count);
		return rc;
	}
	*out = rows;
	*n = count;
	return PC_OK;
}

static void free_recs(void *rows, size_t n)
{
	pcd_blob_recs_free(rows, n);
}

static const struct row_kind rec_rows = {sizeof(struct pcd_blob_rec), read_rec, free_recs};

static int sq_upload_list(struct pcd_store_be *s, enum pcd_upload u, const char *tenant, const char *name,
			  const char *after, const char *after_tenant, int limit, struct pcd_blob_rec **out, size_t *n,
			  struct pc_error *err)
{
	const char *table = pcd_upload_table[u];
	/* without after_tenant (or with one tenant in scope) the cursor means
	 * "id > after": "(id, tenant) > (after, 0x7f)", since every character
	 * of a tenant name sorts below 0x7f */
	const struct list_param params[] = {
		{.text = tenant},
		{.text = after ? after : ""},
		{.text = tenant || !after_tenant || !after_tenant[0] ? "\x7f" : after_tenant},
		{.text = name},
	};
	char sql[300];
	void *rows;
	int rc;

	/* (id, tenant) order: with every tenant in scope one id can appear
	 * twice, and the cursor must not skip the second */
	snprintf(sql, sizeof(sql),
		 "SELECT " REC_COLS " FROM %s WHERE (?2 IS NULL OR tenant = ?2) AND (id, tenant) > (?3, ?4)"
		 " AND (?5 IS NULL OR name = ?5) ORDER BY id, tenant LIMIT ?1",
		 table);
	rc = list_page(s, sql, params, 4, limit, &rec_rows, &rows, n, err);
	*out = rows;
	return rc;
}

/* *found 1 when the query sql has a row: ?1 is the id and ?2, when the
 * query has it, the tenant scope; the caller holds the lock. */
static int any_row(struct pcd_store_be *s, const char *sql, const char *id, const char *tenant, int *found,
		   struct pc_error *err)
{
	sqlite3_stmt *st = NULL;
	int rc;

	if ((rc = prep(s, sql, &st, err)))
		return rc;
	bind_text(st, 1, id);
	if (sqlite3_bind_parameter_count(st) >= 2)
		bind_text(st, 2, tenant);
	rc = step_row(s, st, found, err);
	sqlite3_finalize(st);
	return rc;
}

static int sq_upload_delete(struct pcd_store_be *s, enum pcd_upload u, const char *tenant, const char *id,
			    int *unused, struct pc_error *err)
{
	const char *table = pcd_upload_table[u], *what = pcd_upload_what[u];
	char sql[300];
	sqlite3_stmt *st = NULL;
	int rc, found = 0;

	if (unused)
		*unused = 0;
	pthread_mutex_lock(&s->lock);
	if ((rc = begin(s, err)))
		goto out;
	/* only the pending jobs of the tenants whose record goes: another
	 * tenant's job must neither block this delete nor be revealed by it */
	if ((rc = prep(s,
		       "SELECT j.id, u.field FROM job_uploads u JOIN jobs j ON j.id = u.job_id WHERE u.upload = ?3"
		       " AND u.upload_id = ?1 AND (?2 IS NULL OR j.tenant = ?2) AND j.status IN ('queued', 'running')"
		       " LIMIT 1",
		       &st, err)))
		goto out;
	bind_text(st, 1, id);
	bind_text(st, 2, tenant);
	bind_text(st, 3, what);
	if ((rc = step_row(s, st, &found, err)))
		goto out;
	if (found) {
		rc = pc_error_set(err, PC_ERR_CONFLICT, what, "job %s still needs %s %s (its %s)",
				  sqlite3_column_text(st, 0), what, id, sqlite3_column_text(st, 1));
		goto out;
	}
	sqlite3_finalize(st);
	snprintf(sql, sizeof(sql), "DELETE FROM %s WHERE id = ?1 AND (?2 IS NULL OR tenant = ?2)", table);
	if ((rc = prep(s, sql, &st, err)))
		goto out;
	bind_text(st, 1, id);
	bind_text(st, 2, tenant);
	if ((rc = step_done(s, st, err)))
		goto out;
	if (sqlite3_changes(s->db) == 0) {
		rc = pc_error_set(err, PC_ERR_NOT_FOUND, what, "no %s with id %s", what, id);
		goto out;
	}
	sqlite3_finalize(st);
	st = NULL;
	/* the file is shared: it may go only when nobody holds or needs it */
	snprintf(sql, sizeof(sql),
		 "SELECT 1 FROM %s WHERE id = ?1 UNION ALL SELECT 1 FROM job_uploads u JOIN jobs j ON j.id = u.job_id"
		 " WHERE u.upload = '%s' AND u.upload_id = ?1 AND j.status IN ('queued', 'running') LIMIT 1",
		 table, what);
	if ((rc = any_row(s, sql, id, NULL, &found, err)))
		goto out;
	if ((rc = commit(s, err)))
		goto out;
	if (unused)
		*unused = !found;
out:
	sqlite3_finalize(st);
	if (rc)
		rollback(s);
	pthread_mutex_unlock(&s->lock);
	return rc;
}

/* One row of two counts from sql, with ?1 bound to key when not NULL. */
static int two_counts(struct pcd_store_be *s, const char *sql, const char *key, int64_t *a, int64_t *b,
		      struct pc_error *err)
{
	int rc;

	pthread_mutex_lock(&s->lock);
	rc = one_row(s, sql, key, a, b, err);
	pthread_mutex_unlock(&s->lock);
	return rc;
}

static int sq_tenant_usage(struct pcd_store_be *s, const char *tenant, int64_t *queued, int64_t *stored_bytes,
			   struct pc_error *err)
{
	return two_counts(s,
			  "SELECT (SELECT count(*) FROM jobs WHERE tenant = ?1 AND status = 'queued'),"
			  " (SELECT coalesce(sum(bytes), 0) FROM models WHERE tenant = ?1)"
			  " + (SELECT coalesce(sum(bytes), 0) FROM datasets WHERE tenant = ?1)",
			  tenant, queued, stored_bytes, err);
}

static int sq_upload_name(struct pcd_store_be *s, enum pcd_upload upload, const char *tenant, const char *id,
			  const char *name, struct pc_error *err)
{
	static const char *const sql[PCD_UPLOAD_COUNT] = {
		[PCD_UPLOAD_MODEL] = "UPDATE models SET name = ?1 WHERE id = ?2 AND (?3 IS NULL OR tenant = ?3)",
		[PCD_UPLOAD_DATASET] = "UPDATE datasets SET name = ?1 WHERE id = ?2 AND (?3 IS NULL OR tenant = ?3)"};
	sqlite3_stmt *st = NULL;
	int rc;

	pthread_mutex_lock(&s->lock);
	if ((rc = prep(s, sql[upload], &st, err)))
		goto out;
	bind_text(st, 1, name ? name : "");
	bind_text(st, 2, id);
	bind_text(st, 3, tenant);
	if (!(rc = step_done(s, st, err)) && sqlite3_changes(s->db) == 0)
		rc = pc_error_set(err, PC_ERR_NOT_FOUND, upload == PCD_UPLOAD_MODEL ? "model" : "dataset",
				  "no such upload");
out:
	sqlite3_finalize(st);
	pthread_mutex_unlock(&s->lock);
	return rc;
}

/* ---- jobs ---------------------------------------------------------------- */

#define JOB_COLS                                                                                                  \
	"seq, id, kind, spec, status, attempts, cancel_requested, progress, error, report IS NOT NULL,"          \
	" idempotency_key, spec_hash, created_at, started_at, finished_at, heartbeat_at, tenant, name, labels,"    \
	" headline, node, claim_token"

static int read_job(sqlite3_stmt *st, void *row, struct pc_error *err)
{
	struct pcd_job *j = row;
	int status;

	memset(j, 0, sizeof(*j));
	j->seq = sqlite3_column_int64(st, 0);
	copy_col(st, 1, j->id, sizeof(j->id));
	copy_col(st, 2, j->kind, sizeof(j->kind));
	j->spec = dup_col(st, 3);
	status = pcd_job_status_parse((const char *)sqlite3_column_text(st, 4));
	j->status = status < 0 ? PCD_JOB_FAILED : (enum pcd_job_status)status;
	j->attempts = sqlite3_column_int(st, 5);
	j->cancel_requested = sqlite3_column_int(st, 6);
	j->progress = dup_col(st, 7);
	j->error = dup_col(st, 8);
	j->has_report = sqlite3_column_int(st, 9);
	j->idempotency_key = dup_col(st, 10);
	copy_col(st, 11, j->spec_hash, sizeof(j->spec_hash));
	copy_col(st, 12, j->created_at, sizeof(j->created_at));
	copy_col(st, 13, j->started_at, sizeof(j->started_at));
	copy_col(st, 14, j->finished_at, sizeof(j->finished_at));
	copy_col(st, 15, j->heartbeat_at, sizeof(j->heartbeat_at));
	copy_col(st, 16, j->tenant, sizeof(j->tenant));
	copy_col(st, 17, j->name, sizeof(j->name));
	j->labels = dup_col(st, 18);
	j->headline = dup_col(st, 19);
	copy_col(st, 20, j->node, sizeof(j->node));
	copy_col(st, 21, j->claim_token, sizeof(j->claim_token));
	if (!j->spec || !j->labels || (!j->headline && sqlite3_column_type(st, 19) != SQLITE_NULL) || (!j->progress && sqlite3_column_type(st, 7) != SQLITE_NULL) ||
	    (!j->error && sqlite3_column_type(st, 8) != SQLITE_NULL) ||
	    (!j->idempotency_key && sqlite3_column_type(st, 10) != SQLITE_NULL)) {
		pcd_job_free(j);
		return pc_error_set(err, PC_ERR_NOMEM, "store", "out of memory");
	}
	return PC_OK;
}

/* Reads one job by id within the tenant scope; the caller holds the lock. */
static int job_get_locked(struct pcd_store_be *s, const char *tenant, const char *id, struct pcd_job *out,
			  struct pc_error *err)
{
	sqlite3_stmt *st = NULL;
	int rc, found;

	if ((rc = prep(s, "SELECT " JOB_COLS " FROM jobs WHERE id = ?1 AND (?2 IS NULL OR tenant = ?2)", &st, err)))
		return rc;
	bind_text(st, 1, id);
	bind_text(st, 2, tenant);
	if (!(rc = step_row(s, st, &found, err)) && !found)
		rc = pc_error_set(err, PC_ERR_NOT_FOUND, "job", "no job with id %s", id);
	else if (!rc && out)
		rc = read_job(st, out, err);
	sqlite3_finalize(st);
	return rc;
}

/* The status of a job within the tenant scope; the caller holds the lock. */
static int job_status_locked(struct pcd_store_be *s, const char *tenant, const char *id, enum pcd_job_status *status,
			     int *cancel, struct pc_error *err)
{
	sqlite3_stmt *st = NULL;
	int rc, v, found;

	if ((rc = prep(s, "SELECT status, cancel_requested FROM jobs WHERE id = ?1 AND (?2 IS NULL OR tenant = ?2)",
		       &st, err)))
		return rc;
	bind_text(st, 1, id);
	bind_text(st, 2, tenant);
	if (!(rc = step_row(s, st, &found, err)) && !found)
		rc = pc_error_set(err, PC_ERR_NOT_FOUND, "job", "no job with id %s", id);
	if (!rc) {
		v = pcd_job_status_parse((const char *)sqlite3_column_text(st, 0));
		*status = v < 0 ? PCD_JOB_FAILED : (enum pcd_job_status)v;
		if (cancel)
			*cancel = sqlite3_column_int(st, 1);
	}
	sqlite3_finalize(st);
	return rc;
}

static int sq_job_submit(struct pcd_store_be *s, const struct pcd_job_new *nj, struct pcd_job *out, int *created,
			 struct pc_error *err)
{
	static const char *const exists[PCD_UPLOAD_COUNT] = {
		[PCD_UPLOAD_MODEL] = "SELECT 1 FROM models WHERE id = ?1 AND (?2 IS NULL OR tenant = ?2)",
		[PCD_UPLOAD_DATASET] = "SELECT 1 FROM datasets WHERE id = ?1 AND (?2 IS NULL OR tenant = ?2)"};
	const char *tenant = nj->tenant, *idem_key = nj->idem_key, *hash = nj->hash;
	char id[PCD_JOB_ID_LEN + 1], now[PCD_TIME_LEN], existing[PCD_JOB_ID_LEN + 1];
	int n_refs = nj->n_refs, max_queue = nj->max_queue, tenant_max_queued = nj->tenant_max_queued;
	sqlite3_stmt *st = NULL;
	int64_t queued;
	int rc, found, tries;

	pcd_store_now(now);

	pthread_mutex_lock(&s->lock);
	if ((rc = begin(s, err)))
		goto out;
	existing[0] = '\0';
	if (idem_key) {
		if ((rc = prep(s, "SELECT id, spec_hash FROM jobs WHERE tenant = ? AND idempotency_key = ?", &st, err)))
			goto out;
		bind_text(st, 1, tenant);
		bind_text(st, 2, idem_key);
		if ((rc = step_row(s, st, &found, err)))
			goto out;
		if (found) {
			if (strcmp((const char *)sqlite3_column_text(st, 1), hash) != 0) {
				rc = pc_error_set(err, PC_ERR_CONFLICT, "Idempotency-Key",
						  "was used for job %s with a different body", sqlite3_column_text(st, 0));
				goto out;
			}
			copy_col(st, 0, existing, sizeof(existing));
		}
		sqlite3_finalize(st);
		st = NULL;
	}
	if (existing[0]) {
		rollback(s);
		rc = job_get_locked(s, tenant, existing, out, err);
		goto out;
	}
	/* the uploads must exist now, in the same transaction as the job's
	 * references; deleting them later is refused (blob_delete) */
	for (int i = 0; i < n_refs; i++) {
		const struct pcd_job_ref *ref = &nj->refs[i];

		if ((rc = any_row(s, exists[ref->upload], ref->id, nj->upload_scope, &found, err)))
			goto out;
		if (!found) {
			rc = pc_error_set(err, PC_ERR_INVALID, ref->field, "no %s with this id",
					  ref->upload == PCD_UPLOAD_MODEL ? "model" : "dataset");
			goto out;
		}
	}
	if (max_queue > 0) {
		if ((rc = one_row(s, "SELECT count(*) FROM jobs WHERE status = 'queued'", NULL, &queued, NULL, err)))
			goto out;
		if (queued >= max_queue) {
			rc = pc_error_set(err, PC_ERR_BUSY, "queue", "%d jobs are queued already", max_queue);
			goto out;
		}
	}
	/* after the global bound: a full queue is the service's state (503),
	 * this is the tenant's (429) */
	if (tenant_max_queued > 0) {
		if ((rc = one_row(s, "SELECT count(*) FROM jobs WHERE tenant = ? AND status = 'queued'", tenant,
				  &queued, NULL, err)))
			goto out;
		if (queued >= tenant_max_queued) {
			rc = pc_error_set(err, PC_ERR_QUOTA, "tenant_max_queued_jobs",
					  "tenant %s has %d jobs queued already", tenant, tenant_max_queued);
			goto out;
		}
	}
	if ((rc = prep(s,
		       "INSERT INTO jobs (id, kind, spec, status, idempotency_key, spec_hash, created_at, tenant, name,"
		       " labels) VALUES (?, ?, ?, 'queued', ?, ?, ?, ?, ?, ?)",
		       &st, err)))
		goto out;
	for (tries = 0;; tries++) {
		/* 64 random bits: a clash is all but impossible, but cheap to retry */
		if ((rc = pcd_store_new_job_id(id, err)))
			goto out;
		bind_text(st, 1, id);
		bind_text(st, 2, nj->kind);
		bind_text(st, 3, nj->spec_text);
		bind_text(st, 4, idem_key);
		bind_text(st, 5, hash);
		bind_text(st, 6, now);
		bind_text(st, 7, tenant);
		bind_text(st, 8, nj->name);
		bind_text(st, 9, nj->labels);
		if (sqlite3_step(st) == SQLITE_DONE)
			break;
		if (sqlite3_errcode(s->db) != SQLITE_CONSTRAINT || tries == 3) {
			rc = db_error(s, err, "store");
			goto out;
		}
		sqlite3_reset(st);
	}
	sqlite3_finalize(st);
	st = NULL;
	if ((rc = prep(s, "INSERT INTO job_uploads (job_id, field, upload, upload_id) VALUES (?, ?, ?, ?)", &st, err)))
		goto out;
	for (int i = 0; i < n_refs; i++) {
		bind_text(st, 1, id);
		bind_text(st, 2, nj->refs[i].field);
		bind_text(st, 3, pcd_upload_what[nj->refs[i].upload]);
		bind_text(st, 4, nj->refs[i].id);
		if ((rc = step_done(s, st, err)))
			goto out;
		sqlite3_reset(st);
	}
	sqlite3_finalize(st);
	st = NULL;
	if ((rc = commit(s, err)))
		goto out;
	if (created)
		*created = 1;
	rc = out ? job_get_locked(s, tenant, id, out, err) : PC_OK;
out:
	sqlite3_finalize(st);
	if (rc)
		rollback(s);
	pthread_mutex_unlock(&s->lock);
	return rc;
}

static int sq_job_claim(struct pcd_store_be *s, const char *node, const char *token, int lease_ms,
			struct pcd_job *out, struct pc_error *err)
{
	char id[PCD_JOB_ID_LEN + 1], now[PCD_TIME_LEN];
	sqlite3_stmt *st = NULL;
	int rc, found;

	memset(out, 0, sizeof(*out));
	pcd_store_now(now);
	pthread_mutex_lock(&s->lock);
	if ((rc = begin(s, err)))
		goto out;
	if ((rc = prep(s, "SELECT id FROM jobs WHERE status = 'queued' ORDER BY seq LIMIT 1", &st, err)))
		goto out;
	if ((rc = step_row(s, st, &found, err)))
		goto out;
	if (!found) {
		rc = PC_ERR_NOT_FOUND; /* nothing queued: not an error worth recording */
		goto out;
	}
	copy_col(st, 0, id, sizeof(id));
	sqlite3_finalize(st);
	if ((rc = prep(s,
		       "UPDATE jobs SET status = 'running', attempts = attempts + 1, cancel_requested = 0,"
		       " started_at = ?1, heartbeat_at = ?1, finished_at = NULL, progress = NULL, node = ?3,"
		       " claim_token = ?4, lease_expires_at = " NOW_MS " + ?5 WHERE id = ?2",
		       &st, err)))
		goto out;
	bind_text(st, 1, now);
	bind_text(st, 2, id);
	bind_text(st, 3, node);
	bind_text(st, 4, token);
	sqlite3_bind_int(st, 5, lease_ms);
	if ((rc = step_done(s, st, err)) || (rc = commit(s, err)))
		goto out;
	rc = job_get_locked(s, PCD_ALL_TENANTS, id, out, err);
out:
	sqlite3_finalize(st);
	if (rc)
		rollback(s);
	pthread_mutex_unlock(&s->lock);
	return rc;
}

/* The answer of a fenced write that matched no row; the caller holds the
 * lock. */
static int fenced_locked(struct pcd_store_be *s, const char *id, const char *token, struct pc_error *err)
{
	sqlite3_stmt *st = NULL;
	int rc, v, found;

	if ((rc = prep(s, "SELECT status, claim_token FROM jobs WHERE id = ?1", &st, err)))
		return rc;
	bind_text(st, 1, id);
	if (!(rc = step_row(s, st, &found, err))) {
		v = found ? pcd_job_status_parse((const char *)sqlite3_column_text(st, 0)) : -1;
		rc = pcd_store_fenced(id, found, v < 0 ? PCD_JOB_FAILED : (enum pcd_job_status)v,
				      found ? (const char *)sqlite3_column_text(st, 1) : NULL, token, err);
	}
	sqlite3_finalize(st);
	return rc;
}

/* Runs an UPDATE on the job running under token; the fenced answer
 * (store.h) when it changed nothing. The caller holds the lock. */
static int update_running(struct pcd_store_be *s, sqlite3_stmt *st, const char *id, const char *token,
			  struct pc_error *err)
{
	int rc;

	if ((rc = step_done(s, st, err)))
		return rc;
	if (sqlite3_changes(s->db) > 0)
		return PC_OK;
	return fenced_locked(s, id, token, err);
}

/* Whether the job running under token is there (the caller holds the
 * lock): PC_OK, or the fenced answer. */
static int running_locked(struct pcd_store_be *s, const char *id, const char *token, struct pc_error *err)
{
	sqlite3_stmt *st = NULL;
	int rc, found;

	if ((rc = prep(s, "SELECT 1 FROM jobs WHERE id = ?1 AND status = 'running' AND claim_token = ?2", &st, err)))
		return rc;
	bind_text(st, 1, id);
	bind_text(st, 2, token);
	rc = step_row(s, st, &found, err);
	sqlite3_finalize(st);
	if (!rc && !found)
		rc = fenced_locked(s, id, token, err);
	return rc;
}

static int sq_job_heartbeat(struct pcd_store_be *s, const char *id, const char *token, int lease_ms,
			    const char *progress_json, int *cancel_requested, struct pc_error *err)
{
	char now[PCD_TIME_LEN];
	enum pcd_job_status status;
	sqlite3_stmt *st = NULL;
	int rc, cancel = 0;

	pcd_store_now(now);
	pthread_mutex_lock(&s->lock);
	if ((rc = prep(s,
		       "UPDATE jobs SET progress = coalesce(?1, progress), heartbeat_at = ?2,"
		       " lease_expires_at = " NOW_MS " + ?5 WHERE id = ?3 AND status = 'running' AND claim_token = ?4",
		       &st, err)))
		goto out;
	bind_text(st, 1, progress_json);
	bind_text(st, 2, now);
	bind_text(st, 3, id);
	bind_text(st, 4, token);
	sqlite3_bind_int(st, 5, lease_ms);
	if ((rc = update_running(s, st, id, token, err)) ||
	    (rc = job_status_locked(s, PCD_ALL_TENANTS, id, &status, &cancel, err)))
		goto out;
	if (cancel_requested)
		*cancel_requested = cancel;
out:
	sqlite3_finalize(st);
	pthread_mutex_unlock(&s->lock);
	return rc;
}

static int sq_job_complete(struct pcd_store_be *s, const char *id, const char *token, enum pcd_job_status status,
			   const char *report_text, const char *error_json, const char *headline, struct pc_error *err)
{
	char now[PCD_TIME_LEN];
	sqlite3_stmt *st = NULL;
	int rc;

	pcd_store_now(now);
	pthread_mutex_lock(&s->lock);
	if ((rc = prep(s,
		       "UPDATE jobs SET status = ?1, report = ?2, error = ?3, finished_at = ?4, heartbeat_at = ?4,"
		       " headline = ?6, lease_expires_at = NULL WHERE id = ?5 AND status = 'running' AND claim_token = ?7",
		       &st, err)))
		goto out;
	bind_text(st, 6, headline);
	bind_text(st, 1, pcd_job_status_name(status));
	bind_text(st, 2, report_text);
	bind_text(st, 3, error_json);
	bind_text(st, 4, now);
	bind_text(st, 5, id);
	bind_text(st, 7, token);
	rc = update_running(s, st, id, token, err);
out:
	sqlite3_finalize(st);
	pthread_mutex_unlock(&s->lock);
	return rc;
}

/* A running job stopped without finishing: back to the queue, or cancelled
 * when a cancel was asked for meanwhile. Its token goes, so the attempt
 * that had it can write nothing more. */
#define REQUEUE_SET                                                                                               \
	" status = CASE WHEN cancel_requested THEN 'cancelled' ELSE 'queued' END,"                               \
	" finished_at = CASE WHEN cancel_requested THEN ?1 ELSE NULL END,"                                      \
	" started_at = CASE WHEN cancel_requested THEN started_at ELSE NULL END,"                               \
	" progress = CASE WHEN cancel_requested THEN progress ELSE NULL END,"                                   \
	" claim_token = NULL, lease_expires_at = NULL"

static int sq_job_requeue(struct pcd_store_be *s, const char *id, const char *token, struct pc_error *err)
{
	char now[PCD_TIME_LEN];
	sqlite3_stmt *st = NULL;
	int rc;

	pcd_store_now(now);
	pthread_mutex_lock(&s->lock);
	/* the claim counted an attempt; a drain is not the job's failure */
	if ((rc = prep(s,
		       "UPDATE jobs SET attempts = max(attempts - 1, 0)," REQUEUE_SET
		       " WHERE id = ?2 AND status = 'running' AND claim_token = ?3",
		       &st, err)))
		goto out;
	bind_text(st, 1, now);
	bind_text(st, 2, id);
	bind_text(st, 3, token);
	rc = update_running(s, st, id, token, err);
out:
	sqlite3_finalize(st);
	pthread_mutex_unlock(&s->lock);
	return rc;
}

/* Which running jobs recover takes: every one at startup (?9 = 1: this
 * file has one node), else those whose lease ran out (none recorded: a job
 * of a version before leases). */
#define RECOVERABLE                                                                                               \
	" status = 'running' AND waiting != 1 AND (?9 OR lease_expires_at IS NULL OR lease_expires_at < " NOW_MS ")"

static int sq_job_recover(struct pcd_store_be *s, int max_attempts, const char *problem_text, const char *node,
			  int *n_requeued, int *n_failed, struct pc_error *err)
{
	char now[PCD_TIME_LEN];
	sqlite3_stmt *st = NULL;
	int rc, requeued = 0, failed = 0;

	pcd_store_now(now);
	pthread_mutex_lock(&s->lock);
	if ((rc = begin(s, err)))
		goto out;
	if ((rc = prep(s,
		       "UPDATE jobs SET status = 'failed', error = ?1, finished_at = ?2, claim_token = NULL,"
		       " lease_expires_at = NULL WHERE" RECOVERABLE " AND NOT cancel_requested AND attempts >= ?3",
		       &st, err)))
		goto out;
	bind_text(st, 1, problem_text);
	bind_text(st, 2, now);
	sqlite3_bind_int(st, 3, max_attempts);
	sqlite3_bind_int(st, 9, node != NULL);
	if ((rc = step_done(s, st, err)))
		goto out;
	failed = sqlite3_changes(s->db);
	sqlite3_finalize(st);
	/* the attempt that crashed stays counted: that is what bounds retries */
	if ((rc = prep(s, "UPDATE jobs SET waiting = 0," REQUEUE_SET " WHERE" RECOVERABLE, &st, err)))
		goto out;
	bind_text(st, 1, now);
	sqlite3_bind_int(st, 9, node != NULL);
	if ((rc = step_done(s, st, err)))
		goto out;
	requeued = sqlite3_changes(s->db);
	rc = commit(s, err);
out:
	sqlite3_finalize(st);
	if (rc)
		rollback(s);
	pthread_mutex_unlock(&s->lock);
	if (!rc) {
		if (n_requeued)
			*n_requeued = requeued;
		if (n_failed)
			*n_failed = failed;
	}
	return rc;
}

static int sq_job_get(struct pcd_store_be *s, const char *tenant, const char *id, struct pcd_job *out,
		      struct pc_error *err)
{
	int rc;

	memset(out, 0, sizeof(*out));
	pthread_mutex_lock(&s->lock);
	rc = job_get_locked(s, tenant, id, out, err);
	pthread_mutex_unlock(&s->lock);
	return rc;
}

static int sq_job_report(struct pcd_store_be *s, const char *tenant, const char *id, char **text,
			 struct pc_error *err)
{
	sqlite3_stmt *st = NULL;
	int rc, found;

	*text = NULL;
	pthread_mutex_lock(&s->lock);
	if ((rc = prep(s, "SELECT report, status FROM jobs WHERE id = ?1 AND (?2 IS NULL OR tenant = ?2)", &st, err)))
		goto out;
	bind_text(st, 1, id);
	bind_text(st, 2, tenant);
	if ((rc = step_row(s, st, &found, err)))
		goto out;
	if (!found)
		rc = pc_error_set(err, PC_ERR_NOT_FOUND, "job", "no job with id %s", id);
	else if (sqlite3_column_type(st, 0) == SQLITE_NULL)
		rc = pc_error_set(err, PC_ERR_CONFLICT, "job", "job %s is %s and has no report", id,
				  sqlite3_column_text(st, 1));
	else if (!(*text = dup_col(st, 0)))
		rc = pc_error_set(err, PC_ERR_NOMEM, "store", "out of memory");
out:
	sqlite3_finalize(st);
	pthread_mutex_unlock(&s->lock);
	return rc;
}

static void free_jobs(void *rows, size_t n)
{
	pcd_jobs_free(rows, n);
}

static const struct row_kind job_rows = {sizeof(struct pcd_job), read_job, free_jobs};

static int sq_job_find(struct pcd_store_be *s, const char *tenant, const struct pcd_job_filter *f, int64_t after_seq,
		       int limit, struct pcd_job **out, size_t *n, struct pc_error *err)
{
	/* ?2 seq, ?3 status, ?4 tenant, ?5 name, then a path and a value per
	 * label: the keys are [A-Za-z0-9_.-] (names.h), quoted in the path */
	struct list_param params[4 + 2 * PCD_LABELS_MAX] = {{.is_int = 1, .i = after_seq},
							    {.text = f->status},
							    {.text = tenant},
							    {.text = f->name}};
	char paths[PCD_LABELS_MAX][PCD_LABEL_KEY_MAX + 8];
	char sql[512 + PCD_LABELS_MAX * 64];
	size_t len;
	void *rows;
	int rc;

	*out = NULL;
	*n = 0;
	len = (size_t)snprintf(sql, sizeof(sql),
			       "SELECT " JOB_COLS " FROM jobs WHERE seq > ?2 AND (?3 IS NULL OR status = ?3)"
			       " AND (?4 IS NULL OR tenant = ?4) AND (?5 IS NULL OR name = ?5)"
			       /* shard jobs are their parent's (its "shards") */
			       " AND parent_id IS NULL");
	for (int i = 0; i < f->n_labels; i++) {
		snprintf(paths[i], sizeof(paths[i]), "$.\"%s\"", f->label_keys[i]);
		params[4 + 2 * i] = (struct list_param){.text = paths[i]};
		params[5 + 2 * i] = (struct list_param){.text = f->label_values[i]};
		len += (size_t)snprintf(sql + len, sizeof(sql) - len, " AND json_extract(labels, ?%d) = ?%d", 6 + 2 * i,
					7 + 2 * i);
	}
	snprintf(sql + len, sizeof(sql) - len, " ORDER BY seq LIMIT ?1");
	rc = list_page(s, sql, params, 4 + 2 * f->n_labels, limit, &job_rows, &rows, n, err);
	*out = rows;
	return rc;
}

/* The shards of parent id not finished: queued ones cancelled now,
 * running ones asked to stop. The caller holds the lock, in a transaction. */
static int cancel_shards(struct pcd_store_be *s, const char *id, const char *now, struct pc_error *err)
{
	static const char *const sql[] = {
		"UPDATE jobs SET status = 'cancelled', finished_at = ?1 WHERE parent_id = ?2 AND status = 'queued'",
		"UPDATE jobs SET cancel_requested = 1 WHERE parent_id = ?2 AND status = 'running' AND ?1 IS NOT NULL"};
	sqlite3_stmt *st = NULL;
	int rc = PC_OK;

	for (int i = 0; i < 2 && !rc; i++) {
		if ((rc = prep(s, sql[i], &st, err)))
			break;
		bind_text(st, 1, now);
		bind_text(st, 2, id);
		rc = step_done(s, st, err);
		sqlite3_finalize(st);
		st = NULL;
	}
	return rc;
}

static int sq_job_cancel(struct pcd_store_be *s, const char *tenant, const char *id,
			 enum pcd_job_status *status_after, struct pc_error *err)
{
	char now[PCD_TIME_LEN];
	enum pcd_job_status status;
	sqlite3_stmt *st = NULL;
	int64_t waiting = 0;
	int rc;

	pcd_store_now(now);
	pthread_mutex_lock(&s->lock);
	if ((rc = begin(s, err)) || (rc = job_status_locked(s, tenant, id, &status, NULL, err)))
		goto out;
	if (pcd_job_status_finished(status)) {
		rc = pc_error_set(err, PC_ERR_CONFLICT, "job", "job %s is %s already", id, pcd_job_status_name(status));
		goto out;
	}
	/* a parent waiting for its shards has no worker to stop it: at once */
	if ((rc = one_row(s, "SELECT count(*) FROM jobs WHERE id = ?1 AND waiting = 1", id, &waiting, NULL, err)))
		goto out;
	if (status == PCD_JOB_QUEUED || waiting)
		rc = prep(s, "UPDATE jobs SET status = 'cancelled', finished_at = ?1, waiting = 0 WHERE id = ?2", &st,
			  err);
	else
		rc = prep(s, "UPDATE jobs SET cancel_requested = 1 WHERE id = ?2", &st, err); /* ?1 unused */
	if (rc)
		goto out;
	bind_text(st, 1, now);
	bind_text(st, 2, id);
	if ((rc = step_done(s, st, err)) || (rc = cancel_shards(s, id, now, err)) || (rc = commit(s, err)))
		goto out;
	if (status_after)
		*status_after = status == PCD_JOB_QUEUED || waiting ? PCD_JOB_CANCELLED : status;
out:
	sqlite3_finalize(st);
	if (rc)
		rollback(s);
	pthread_mutex_unlock(&s->lock);
	return rc;
}

static int sq_job_delete(struct pcd_store_be *s, const char *tenant, const char *id, struct pc_error *err)
{
	enum pcd_job_status status;
	sqlite3_stmt *st = NULL;
	int rc;

	pthread_mutex_lock(&s->lock);
	if ((rc = begin(s, err)) || (rc = job_status_locked(s, tenant, id, &status, NULL, err)))
		goto out;
	if (!pcd_job_status_finished(status)) {
		rc = pc_error_set(err, PC_ERR_CONFLICT, "job", "job %s is %s; cancel it first", id,
				  pcd_job_status_name(status));
		goto out;
	}
	/* its references and its artifacts' records go with it (a registered
	 * model stays: it is a model of the service) */
	for (int i = 0; i < 5; i++) {
		static const char *const sql[] = {"DELETE FROM job_uploads WHERE job_id = ?",
						  "DELETE FROM job_artifacts WHERE job_id = ?",
						  "DELETE FROM job_state WHERE job_id = ?", "DELETE FROM jobs WHERE parent_id = ?",
						  "DELETE FROM jobs WHERE id = ?"};

		if ((rc = prep(s, sql[i], &st, err)))
			goto out;
		bind_text(st, 1, id);
		if ((rc = step_done(s, st, err)))
			goto out;
		sqlite3_finalize(st);
		st = NULL;
	}
	if ((rc = commit(s, err)))
		goto out;
out:
	sqlite3_finalize(st);
	if (rc)
		rollback(s);
	pthread_mutex_unlock(&s->lock);
	return rc;
}

static int sq_artifact_put(struct pcd_store_be *s, const char *job_id, const char *token, const char *name,
			   const char *model_id, struct pc_error *err)
{
	sqlite3_stmt *st = NULL;
	int rc;

	pthread_mutex_lock(&s->lock);
	/* the check and the insert under the one lock: nothing can requeue the
	 * job between them */
	if ((rc = running_locked(s, job_id, token, err)) ||
	    (rc = prep(s, "INSERT OR REPLACE INTO job_artifacts (job_id, name, model_id) VALUES (?, ?, ?)", &st, err)))
		goto out;
	bind_text(st, 1, job_id);
	bind_text(st, 2, name);
	bind_text(st, 3, model_id);
	rc = step_done(s, st, err);
out:
	sqlite3_finalize(st);
	pthread_mutex_unlock(&s->lock);
	return rc;
}

static int sq_artifact_get(struct pcd_store_be *s, const char *job_id, const char *name, char model_id[65],
			       struct pc_error *err)
{
	sqlite3_stmt *st = NULL;
	int rc, found;

	model_id[0] = '\0';
	pthread_mutex_lock(&s->lock);
	if ((rc = prep(s, "SELECT model_id FROM job_artifacts WHERE job_id = ? AND name = ?", &st, err)))
		goto out;
	bind_text(st, 1, job_id);
	bind_text(st, 2, name);
	if ((rc = step_row(s, st, &found, err)))
		goto out;
	if (found)
		copy_col(st, 0, model_id, 65);
	else
		rc = pc_error_set(err, PC_ERR_NOT_FOUND, name, "job %s has no artifact %s", job_id, name);
out:
	sqlite3_finalize(st);
	pthread_mutex_unlock(&s->lock);
	return rc;
}

static int sq_queue_depth(struct pcd_store_be *s, int64_t *queued, int64_t *running, struct pc_error *err)
{
	return two_counts(s,
			  "SELECT coalesce(sum(status = 'queued'), 0), coalesce(sum(status = 'running'), 0) FROM jobs"
			  " WHERE status IN ('queued', 'running')",
			  NULL, queued, running, err);
}


/* --- sharded studies ---------------------------------------------------------- */

static int sq_shards_start(struct pcd_store_be *s, const char *parent_id, const char *token, int n,
			   const char *const *spec_texts, const char *const *spec_hashes, const char *state_name,
			   const unsigned char *state, size_t state_len, struct pc_error *err)
{
	char now[PCD_TIME_LEN], id[PCD_JOB_ID_LEN + 1], tenant[PCD_TENANT_MAX + 1] = "";
	char row_token[PCD_TOKEN_LEN + 1] = "";
	enum pcd_job_status status = PCD_JOB_QUEUED;
	sqlite3_stmt *st = NULL;
	int rc, found;

	pcd_store_now(now);
	pthread_mutex_lock(&s->lock);
	if ((rc = begin(s, err)) ||
	    (rc = prep(s, "SELECT tenant, status, claim_token, cancel_requested FROM jobs WHERE id = ?", &st, err)))
		goto out;
	bind_text(st, 1, parent_id);
	if ((rc = step_row(s, st, &found, err)))
		goto out;
	if (found) {
		status = pcd_job_status_parse((const char *)sqlite3_column_text(st, 1));
		copy_col(st, 2, row_token, sizeof(row_token));
	}
	if (!found || status != PCD_JOB_RUNNING || strcmp(row_token, token) != 0) {
		rc = pcd_store_fenced(parent_id, found, status, row_token, token, err);
		goto out;
	}
	if (sqlite3_column_int(st, 3)) {
		rc = pc_error_set(err, PC_ERR_CONFLICT, "job", "job %s is being cancelled", parent_id);
		goto out;
	}
	copy_col(st, 0, tenant, sizeof(tenant));
	sqlite3_finalize(st);
	st = NULL;
	if ((rc = prep(s, "INSERT OR REPLACE INTO job_state (job_id, name, data) VALUES (?, ?, ?)", &st, err)))
		goto out;
	bind_text(st, 1, parent_id);
	bind_text(st, 2, state_name);
	sqlite3_bind_blob64(st, 3, state_len ? (const void *)state : "", state_len, SQLITE_STATIC);
	if ((rc = step_done(s, st, err)))
		goto out;
	sqlite3_finalize(st);
	st = NULL;
	if ((rc = prep(s,
		       "INSERT INTO jobs (id, kind, spec, status, spec_hash, created_at, tenant, name, labels, parent_id,"
		       " shard_index) VALUES (?, 'shard', ?, 'queued', ?, ?, ?, '', '{}', ?, ?)",
		       &st, err)))
		goto out;
	for (int i = 0; i < n; i++) {
		if ((rc = pcd_store_new_job_id(id, err)))
			goto out;
		bind_text(st, 1, id);
		bind_text(st, 2, spec_texts[i]);
		bind_text(st, 3, spec_hashes[i]);
		bind_text(st, 4, now);
		bind_text(st, 5, tenant);
		bind_text(st, 6, parent_id);
		sqlite3_bind_int(st, 7, i);
		if ((rc = step_done(s, st, err)))
			goto out;
		sqlite3_reset(st);
	}
	sqlite3_finalize(st);
	st = NULL;
	if ((rc = prep(s, "UPDATE jobs SET waiting = 1, claim_token = NULL, lease_expires_at = NULL WHERE id = ?", &st,
		       err)))
		goto out;
	bind_text(st, 1, parent_id);
	if ((rc = step_done(s, st, err)))
		goto out;
	rc = commit(s, err);
out:
	sqlite3_finalize(st);
	if (rc)
		rollback(s);
	pthread_mutex_unlock(&s->lock);
	return rc;
}

static int sq_state_get(struct pcd_store_be *s, const char *job_id, const char *name, unsigned char **data,
			size_t *len, struct pc_error *err)
{
	sqlite3_stmt *st = NULL;
	int rc, found;

	pthread_mutex_lock(&s->lock);
	if ((rc = prep(s, "SELECT data FROM job_state WHERE job_id = ? AND name = ?", &st, err)))
		goto out;
	bind_text(st, 1, job_id);
	bind_text(st, 2, name);
	if ((rc = step_row(s, st, &found, err)))
		goto out;
	if (!found) {
		rc = pc_error_set(err, PC_ERR_NOT_FOUND, name, "job %s has no %s", job_id, name);
		goto out;
	}
	*len = (size_t)sqlite3_column_bytes(st, 0);
	if (!(*data = malloc(*len + 1))) {
		rc = pc_error_set(err, PC_ERR_NOMEM, name, "out of memory for %zu bytes", *len);
		goto out;
	}
	if (*len)
		memcpy(*data, sqlite3_column_blob(st, 0), *len);
out:
	sqlite3_finalize(st);
	pthread_mutex_unlock(&s->lock);
	return rc;
}

static int sq_shards_list(struct pcd_store_be *s, const char *parent_id, struct pcd_shard **out, size_t *n,
			  struct pc_error *err)
{
	sqlite3_stmt *st = NULL;
	struct pcd_shard *v = NULL;
	int64_t count = 0;
	int rc, r;

	pthread_mutex_lock(&s->lock);
	if ((rc = one_row(s, "SELECT count(*) FROM jobs WHERE parent_id = ?1", parent_id, &count, NULL, err)) ||
	    !count)
		goto out;
	if (!(v = calloc((size_t)count, sizeof(*v)))) {
		rc = pc_error_set(err, PC_ERR_NOMEM, "store", "out of memory");
		goto out;
	}
	if ((rc = prep(s,
		       "SELECT shard_index, id, status, progress, error, report IS NOT NULL, node FROM jobs"
		       " WHERE parent_id = ? ORDER BY shard_index",
		       &st, err)))
		goto out;
	bind_text(st, 1, parent_id);
	while ((size_t)*n < (size_t)count && (r = sqlite3_step(st)) == SQLITE_ROW) {
		struct pcd_shard *x = &v[*n];
		int status = pcd_job_status_parse((const char *)sqlite3_column_text(st, 2));

		x->index = sqlite3_column_int(st, 0);
		copy_col(st, 1, x->id, sizeof(x->id));
		x->status = status < 0 ? PCD_JOB_FAILED : (enum pcd_job_status)status;
		x->progress = dup_col(st, 3);
		x->error = dup_col(st, 4);
		x->has_report = sqlite3_column_int(st, 5);
		copy_col(st, 6, x->node, sizeof(x->node));
		(*n)++;
	}
out:
	sqlite3_finalize(st);
	pthread_mutex_unlock(&s->lock);
	if (rc) {
		pcd_shards_free(v, *n);
		*n = 0;
		v = NULL;
	}
	*out = v;
	return rc;
}

static int sq_shard_finished(struct pcd_store_be *s, const char *shard_id, const char *parent_problem,
			     const char *node, const char *token, int lease_ms, int *merge,
			     char parent_id[PCD_JOB_ID_LEN + 1], struct pc_error *err)
{
	char now[PCD_TIME_LEN], parent[PCD_JOB_ID_LEN + 1] = "";
	sqlite3_stmt *st = NULL;
	int64_t left = 0;
	int rc, found, status;

	pcd_store_now(now);
	pthread_mutex_lock(&s->lock);
	if ((rc = begin(s, err)) || (rc = prep(s, "SELECT parent_id, status FROM jobs WHERE id = ?", &st, err)))
		goto out;
	bind_text(st, 1, shard_id);
	if ((rc = step_row(s, st, &found, err)) || !found || sqlite3_column_type(st, 0) == SQLITE_NULL)
		goto out;
	copy_col(st, 0, parent, sizeof(parent));
	status = pcd_job_status_parse((const char *)sqlite3_column_text(st, 1));
	sqlite3_finalize(st);
	st = NULL;
	if (status == PCD_JOB_FAILED) {
		if ((rc = prep(s,
			       "UPDATE jobs SET status = 'failed', error = ?1, finished_at = ?2, waiting = 0,"
			       " claim_token = NULL, lease_expires_at = NULL WHERE id = ?3 AND status = 'running'",
			       &st, err)))
			goto out;
		bind_text(st, 1, parent_problem);
		bind_text(st, 2, now);
		bind_text(st, 3, parent);
		if ((rc = step_done(s, st, err)) || (rc = cancel_shards(s, parent, now, err)))
			goto out;
	} else if (status == PCD_JOB_SUCCEEDED) {
		if ((rc = one_row(s, "SELECT count(*) FROM jobs WHERE parent_id = ?1 AND status != 'succeeded'", parent,
				  &left, NULL, err)))
			goto out;
		if (!left) {
			/* claimed for the merge by this node, as a claim is */
			if ((rc = prep(s,
				       "UPDATE jobs SET waiting = 2, claim_token = ?2, node = ?3, lease_expires_at = " NOW_MS
				       " + ?4 WHERE id = ?1 AND status = 'running' AND waiting = 1",
				       &st, err)))
				goto out;
			bind_text(st, 1, parent);
			bind_text(st, 2, token);
			bind_text(st, 3, node ? node : "");
			sqlite3_bind_int(st, 4, lease_ms);
			if ((rc = step_done(s, st, err)))
				goto out;
			*merge = sqlite3_changes(s->db) > 0;
		}
	}
	if ((rc = commit(s, err)))
		goto out;
	snprintf(parent_id, PCD_JOB_ID_LEN + 1, "%s", parent);
out:
	sqlite3_finalize(st);
	if (rc) {
		*merge = 0;
		rollback(s);
	} else if (!sqlite3_get_autocommit(s->db)) {
		rollback(s); /* not a shard: nothing changed */
	}
	pthread_mutex_unlock(&s->lock);
	return rc;
}

const struct pcd_store_ops pcd_store_sqlite_ops = {
	.name = "sqlite",
	.open = sq_open,
	.close = sq_close,
	.ping = sq_ping,
	.upload_put = sq_upload_put,
	.upload_get = sq_upload_get,
	.upload_list = sq_upload_list,
	.upload_delete = sq_upload_delete,
	.upload_name = sq_upload_name,
	.tenant_usage = sq_tenant_usage,
	.job_submit = sq_job_submit,
	.artifact_put = sq_artifact_put,
	.artifact_get = sq_artifact_get,
	.job_claim = sq_job_claim,
	.job_heartbeat = sq_job_heartbeat,
	.job_complete = sq_job_complete,
	.job_requeue = sq_job_requeue,
	.job_recover = sq_job_recover,
	.job_get = sq_job_get,
	.job_report = sq_job_report,
	.job_find = sq_job_find,
	.job_cancel = sq_job_cancel,
	.job_delete = sq_job_delete,
	.queue_depth = sq_queue_depth,
	.shards_start = sq_shards_start,
	.state_get = sq_state_get,
	.shards_list = sq_shards_list,
	.shard_finished = sq_shard_finished,
};
