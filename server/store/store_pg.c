/* store_pg: the PostgreSQL backend of the store (store_backend.h), on
 * libpq.
 *
 * The same SQL semantics as the SQLite backend (store_sqlite.c), statement
 * for statement where the dialects allow: one connection and one mutex, so
 * the threads of a process take turns; every operation that writes is one
 * transaction (BEGIN ... COMMIT) and locks the rows it decides on (FOR
 * UPDATE, FOR SHARE), so that what SQLite's BEGIN IMMEDIATE gives for one
 * file holds against other connections too. Claims take the oldest queued
 * job with FOR UPDATE SKIP LOCKED. Text columns that order a listing or a
 * cursor are COLLATE "C": byte order, as SQLite compares.
 *
 * Values are always parameters (PQexecParams, text format, cast in the
 * SQL: "$2::text IS NULL OR tenant = $2::text"); only the constant table
 * names of pcd_upload_table are formatted into SQL text.
 *
 * The schema is created and migrated at open, in one transaction under
 * pg_advisory_xact_lock, so daemons opening one database together do not
 * race; its version is the row of paracorr_schema. This backend's version
 * 1 is the SQLite schema's version 4 (names, labels, headlines); version 2
 * adds the uploads' bytes (blobdb.h), which SQLite leaves in files.
 *
 * A lost connection: an operation finds the connection bad and resets it
 * once (PQreset) before it starts. When the first statement of an
 * operation fails because the connection broke, nothing of the operation
 * was applied (it is a BEGIN or a read), so the connection is reset and
 * the operation runs once more. A server that stays unreachable is
 * PC_ERR_BUSY (HTTP 503), "the PostgreSQL store is unreachable: ...".
 *
 * Many nodes per database (schema version 2): a claim is a lease on the
 * server's clock (lease_expires_at = now() + lease), renewed by heartbeats,
 * with a claim token that every write of the running job must match
 * (store.h); a job whose lease expired is requeued by whichever node
 * sweeps first. Submits and requeues NOTIFY paracorr_jobs, and
 * pg_wait_jobs LISTENs on a second connection of its own, so that an idle
 * node's workers wake when any node queues a job. */
#include "store_backend.h"

#include <libpq-fe.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SCHEMA_VERSION 4
/* advisory lock key: "paracorr" in ASCII */
#define LOCK_MIGRATE "7053476706432299634"
#define NOTIFY_JOBS "NOTIFY paracorr_jobs"

struct pcd_store_be {
	PGconn *c;
	pthread_mutex_t lock;
	int sent;	/* statements that succeeded in the current operation */
	int was_reset;	/* the current operation reset the connection */
	char sqlstate[6]; /* of the last failure, "" when it had none */
	char *url;
	/* the LISTEN connection of pg_wait_jobs, NULL until its first call or
	 * after it broke; under listen_lock, never under lock */
	PGconn *lc;
	pthread_mutex_t listen_lock;
};

/* SQLSTATEs (or their two-character classes) with a status of their own;
 * anything else is PC_ERR_IO. */
static const struct {
	const char *state;
	enum pc_status code;
} pg_codes[] = {
	{"23505", PC_ERR_CONFLICT}, /* unique violation: a conflict, as on SQLite */
	{"40001", PC_ERR_BUSY},	    /* serialization failure */
	{"40P01", PC_ERR_BUSY},	    /* deadlock detected */
	{"55P03", PC_ERR_BUSY},	    /* lock not available */
	{"53100", PC_ERR_NOSPACE},  /* disk full */
	{"53200", PC_ERR_NOMEM},    /* out of memory */
	{"25006", PC_ERR_BUSY},	    /* read-only transaction: a standby */
	{"57P", PC_ERR_BUSY},	    /* the server shuts down or starts */
	{"08", PC_ERR_BUSY},	    /* connection exceptions */
};

/* The message of the connection, without libpq's trailing newline. */
static const char *conn_message(struct pcd_store_be *b, char *buf, size_t size)
{
	size_t n;

	snprintf(buf, size, "%s", b->c ? PQerrorMessage(b->c) : "out of memory");
	n = strlen(buf);
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
		buf[--n] = '\0';
	return buf[0] ? buf : "no message";
}

static int unreachable(struct pcd_store_be *b, struct pc_error *err)
{
	char msg[400];

	return pc_error_set(err, PC_ERR_BUSY, "store", "the PostgreSQL store is unreachable: %s",
			    conn_message(b, msg, sizeof(msg)));
}

/* The error of a failed result r (may be NULL: libpq had none to give). */
static int pg_fail(struct pcd_store_be *b, PGresult *r, struct pc_error *err)
{
	const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
	const char *msg = r ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) : NULL;
	enum pc_status st = PC_ERR_IO;

	snprintf(b->sqlstate, sizeof(b->sqlstate), "%s", state ? state : "");
	if (PQstatus(b->c) == CONNECTION_BAD || (!state && !msg))
		return unreachable(b, err);
	for (size_t i = 0; state && i < sizeof(pg_codes) / sizeof(pg_codes[0]); i++)
		if (strncmp(state, pg_codes[i].state, strlen(pg_codes[i].state)) == 0) {
			st = pg_codes[i].code;
			break;
		}
	if (st == PC_ERR_BUSY && state && (strncmp(state, "08", 2) == 0 || strncmp(state, "57P", 3) == 0))
		return pc_error_set(err, st, "store", "the PostgreSQL store is unreachable: %s", msg ? msg : state);
	return pc_error_set(err, st, "store", "database: %s", msg ? msg : state);
}

/* Once per operation, before it starts: a connection known to be bad is
 * reset, once. */
static int reset(struct pcd_store_be *b, struct pc_error *err)
{
	PQreset(b->c);
	if (PQstatus(b->c) != CONNECTION_OK)
		return unreachable(b, err);
	return PC_OK;
}

static void enter(struct pcd_store_be *b)
{
	pthread_mutex_lock(&b->lock);
	b->sent = 0;
	b->was_reset = 0;
	b->sqlstate[0] = '\0';
	if (PQstatus(b->c) == CONNECTION_BAD) {
		b->was_reset = 1;
		reset(b, NULL); /* when it fails, the first statement says so */
	}
}

/* Ends an operation: a transaction left open (a failure) is rolled back. */
static void leave(struct pcd_store_be *b)
{
	PGTransactionStatusType ts = PQtransactionStatus(b->c);

	if (ts == PQTRANS_INTRANS || ts == PQTRANS_INERROR)
		PQclear(PQexecParams(b->c, "ROLLBACK", 0, NULL, NULL, NULL, NULL, 0));
	pthread_mutex_unlock(&b->lock);
}

/* Runs sql with n text parameters (NULL pointers are SQL NULL). *res (may
 * be NULL: the result is dropped) is the result, cleared by the caller. */
static int q(struct pcd_store_be *b, const char *sql, int n, const char *const *params, PGresult **res,
	     struct pc_error *err)
{
	PGresult *r;
	ExecStatusType st;
	int rc;

	if (res)
		*res = NULL;
	for (int attempt = 0;; attempt++) {
		r = PQexecParams(b->c, sql, n, NULL, params, NULL, NULL, 0);
		st = PQresultStatus(r);
		if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK)
			break;
		/* the first statement of an operation applied nothing: after a
		 * broken connection it may run again on a new one */
		if (attempt == 0 && b->sent == 0 && !b->was_reset && PQstatus(b->c) == CONNECTION_BAD) {
			PQclear(r);
			struct pc_error e = {0};

			b->was_reset = 1;
			if ((rc = reset(b, &e)) == PC_OK)
				continue;
			return pc_error_set(err, e.code, e.where, "%s", e.text);
		}
		rc = pg_fail(b, r, err);
		PQclear(r);
		return rc;
	}
	b->sent++;
	if (res)
		*res = r;
	else
		PQclear(r);
	return PC_OK;
}

/* The number of rows an UPDATE, INSERT or DELETE changed. */
static int changed(PGresult *r)
{
	return atoi(PQcmdTuples(r));
}

static const char *val(PGresult *r, int row, int col)
{
	return PQgetisnull(r, row, col) ? NULL : PQgetvalue(r, row, col);
}

static void copy_val(PGresult *r, int row, int col, char *out, size_t size)
{
	const char *v = val(r, row, col);

	snprintf(out, size, "%s", v ? v : "");
}

/* A copy of a value, NULL for SQL NULL; *oom is set when the copy failed. */
static char *dup_val(PGresult *r, int row, int col, int *oom)
{
	const char *v = val(r, row, col);
	char *d = v ? strdup(v) : NULL;

	if (v && !d)
		*oom = 1;
	return d;
}

/* ---- schema ---------------------------------------------------------------- */

static const char *const schema_v1[] = {
	"CREATE TABLE models (tenant text COLLATE \"C\" NOT NULL, id text COLLATE \"C\" NOT NULL,"
	" bytes bigint NOT NULL, created_at text NOT NULL, info text NOT NULL,"
	" name text COLLATE \"C\" NOT NULL DEFAULT '', PRIMARY KEY (tenant, id))",
	"CREATE INDEX models_id ON models (id)",
	"CREATE INDEX models_name ON models (name)",
	"CREATE TABLE datasets (tenant text COLLATE \"C\" NOT NULL, id text COLLATE \"C\" NOT NULL,"
	" bytes bigint NOT NULL, created_at text NOT NULL, info text NOT NULL,"
	" name text COLLATE \"C\" NOT NULL DEFAULT '', PRIMARY KEY (tenant, id))",
	"CREATE INDEX datasets_id ON datasets (id)",
	"CREATE INDEX datasets_name ON datasets (name)",
	/* seq from a sequence: a deleted job's seq is never handed out again,
	 * as with SQLite's AUTOINCREMENT */
	"CREATE TABLE jobs ("
	" seq bigserial PRIMARY KEY,"
	" id text COLLATE \"C\" NOT NULL UNIQUE,"
	" tenant text COLLATE \"C\" NOT NULL,"
	" kind text NOT NULL,"
	" spec text NOT NULL,"
	" status text NOT NULL CHECK (status IN ('queued','running','succeeded','failed','cancelled')),"
	" attempts integer NOT NULL DEFAULT 0,"
	" cancel_requested integer NOT NULL DEFAULT 0,"
	" progress text, error text, report text,"
	" idempotency_key text COLLATE \"C\","
	" spec_hash text NOT NULL,"
	" created_at text NOT NULL, started_at text, finished_at text, heartbeat_at text,"
	" name text COLLATE \"C\" NOT NULL DEFAULT '',"
	" labels text NOT NULL DEFAULT '{}',"
	" headline text,"
	" UNIQUE (tenant, idempotency_key))",
	"CREATE INDEX jobs_status_seq ON jobs (status, seq)",
	"CREATE INDEX jobs_tenant_seq ON jobs (tenant, seq)",
	"CREATE INDEX jobs_name ON jobs (name)",
	"CREATE TABLE job_uploads (job_id text COLLATE \"C\" NOT NULL, field text NOT NULL,"
	" upload text NOT NULL CHECK (upload IN ('model', 'dataset')), upload_id text COLLATE \"C\" NOT NULL,"
	" PRIMARY KEY (job_id, field))",
	"CREATE INDEX job_uploads_upload ON job_uploads (upload, upload_id)",
	"CREATE TABLE job_artifacts (job_id text COLLATE \"C\" NOT NULL, name text NOT NULL, model_id text NOT NULL,"
	" PRIMARY KEY (job_id, name))",
	NULL,
};

/* Version 2: the bytes of uploads, shared by every node of the database
 * (blobdb.c reads and writes them). A chunk is keyed by the sha256 of its
 * bytes, so the same content is stored once; a blob (a model, or one part
 * of a dataset: kind, id, part) is its ordered list of chunks with its
 * size and whole sha256. Chunks are already compressed or incompressible
 * weights: EXTERNAL storage spares the server trying to compress them. */
static const char *const schema_v2[] = {
	"CREATE TABLE blob_chunks (sha256 text COLLATE \"C\" PRIMARY KEY, data bytea NOT NULL,"
	" CHECK (octet_length(data) BETWEEN 1 AND 16777216))",
	"ALTER TABLE blob_chunks ALTER COLUMN data SET STORAGE EXTERNAL",
	"CREATE TABLE blobs (kind text NOT NULL CHECK (kind IN ('model', 'dataset')), id text COLLATE \"C\" NOT NULL,"
	" part text NOT NULL, bytes bigint NOT NULL CHECK (bytes >= 0), sha256 text NOT NULL,"
	" n_chunks integer NOT NULL CHECK (n_chunks >= 0), created_at text NOT NULL, PRIMARY KEY (kind, id, part))",
	"CREATE TABLE blob_parts (kind text NOT NULL, id text COLLATE \"C\" NOT NULL, part text NOT NULL,"
	" idx integer NOT NULL CHECK (idx >= 0), chunk text COLLATE \"C\" NOT NULL REFERENCES blob_chunks (sha256)"
	" DEFERRABLE INITIALLY IMMEDIATE,"
	" bytes integer NOT NULL, PRIMARY KEY (kind, id, part, idx),"
	" FOREIGN KEY (kind, id, part) REFERENCES blobs (kind, id, part) ON DELETE CASCADE)",
	"CREATE INDEX blob_parts_chunk ON blob_parts (chunk)",
	NULL,
};

/* Version 3: leases, claim tokens and the node of a job's latest attempt.
 * A job left running by a version without leases has none: it counts as
 * expired, so the first sweep requeues it. */
static const char *const schema_leases[] = {
	"ALTER TABLE jobs ADD COLUMN lease_expires_at timestamptz, ADD COLUMN claim_token text COLLATE \"C\","
	" ADD COLUMN node text COLLATE \"C\" NOT NULL DEFAULT ''",
	"CREATE INDEX jobs_running_lease ON jobs (lease_expires_at) WHERE status = 'running'",
	NULL,
};

/* Version 4 (SQLite's 6): sharded studies (store.h). A shard job knows its
 * parent and index; a parent's waiting is 0, 1 (its shards run, no worker
 * holds it) or 2 (merging); job_state holds a job's named bytes. */
static const char *const schema_shards[] = {
	"ALTER TABLE jobs ADD COLUMN parent_id text COLLATE \"C\"",
	"ALTER TABLE jobs ADD COLUMN shard_index integer",
	"ALTER TABLE jobs ADD COLUMN waiting integer NOT NULL DEFAULT 0",
	"CREATE INDEX jobs_parent ON jobs (parent_id, shard_index)",
	"CREATE TABLE job_state (job_id text COLLATE \"C\" NOT NULL, name text NOT NULL, data bytea NOT NULL,"
	" PRIMARY KEY (job_id, name))",
	NULL,
};

/* Each version's statements; later versions add rows. */
static const char *const *const migrations[SCHEMA_VERSION] = {schema_v1, schema_v2, schema_leases, schema_shards};

static int migrate(struct pcd_store_be *b, struct pc_error *err)
{
	char v[16];
	const char *p[1] = {v};
	PGresult *r = NULL;
	int rc, version = 0;

	if ((rc = q(b, "BEGIN", 0, NULL, NULL, err)) ||
	    (rc = q(b, "SELECT pg_advisory_xact_lock(" LOCK_MIGRATE ")", 0, NULL, NULL, err)) ||
	    (rc = q(b, "CREATE TABLE IF NOT EXISTS paracorr_schema (version integer NOT NULL)", 0, NULL, NULL, err)) ||
	    (rc = q(b, "SELECT max(version) FROM paracorr_schema", 0, NULL, &r, err)))
		goto out;
	if (val(r, 0, 0))
		version = atoi(val(r, 0, 0));
	if (version > SCHEMA_VERSION) {
		rc = pc_error_set(err, PC_ERR_UNSUPPORTED, "store",
				  "database schema version %d is newer than this program's %d", version, SCHEMA_VERSION);
		goto out;
	}
	for (int k = version; k < SCHEMA_VERSION; k++)
		for (int i = 0; migrations[k][i]; i++)
			if ((rc = q(b, migrations[k][i], 0, NULL, NULL, err)))
				goto out;
	if (version < SCHEMA_VERSION) {
		snprintf(v, sizeof(v), "%d", SCHEMA_VERSION);
		if ((rc = q(b, "DELETE FROM paracorr_schema", 0, NULL, NULL, err)) ||
		    (rc = q(b, "INSERT INTO paracorr_schema (version) VALUES ($1::integer)", 1, p, NULL, err)))
			goto out;
	}
	rc = q(b, "COMMIT", 0, NULL, NULL, err);
out:
	PQclear(r);
	return rc;
}

/* libpq prints the server's notices on stderr by default ("relation
 * already exists, skipping"): they are not the daemon's log. */
static void quiet(void *arg, const char *message)
{
	(void)arg;
	(void)message;
}

static void pg_close(struct pcd_store_be *b)
{
	if (!b)
		return;
	PQfinish(b->c);
	PQfinish(b->lc);
	pthread_mutex_destroy(&b->lock);
	pthread_mutex_destroy(&b->listen_lock);
	free(b->url);
	free(b);
}

/* A new connection to url (check its status). */
static PGconn *connect_url(const char *url)
{
	/* defaults first, what the URL says wins (expand_dbname): bounded
	 * waits on a server that went away without closing the connection
	 * (the store's mutex is held while a statement runs) */
	/* and a session cut off inside a transaction (its node partitioned)
	 * is ended by the server after 10 s, so that its row locks do not
	 * keep the other nodes from requeueing its jobs */
	const char *const keys[] = {"connect_timeout",	"keepalives_idle",	     "keepalives_interval",
				    "keepalives_count", "tcp_user_timeout",	     "fallback_application_name",
				    "options",		"dbname",		     NULL};
	const char *const values[] = {"10",	"30",	     "10",
				      "3",	"60000",     "paracorrd",
				      "-c idle_in_transaction_session_timeout=10000", url, NULL};
	PGconn *c = PQconnectdbParams(keys, values, 1);

	if (c)
		PQsetNoticeProcessor(c, quiet, NULL);
	return c;
}

static int pg_open(const char *url, struct pcd_store_be **out, struct pc_error *err)
{
	struct pcd_store_be *b;
	char msg[400];
	int rc;

	*out = NULL;
	if (!(b = calloc(1, sizeof(*b))))
		return pc_error_set(err, PC_ERR_NOMEM, "store", "out of memory");
	if (pthread_mutex_init(&b->lock, NULL) != 0) {
		free(b);
		return pc_error_set(err, PC_ERR_INTERNAL, "store", "cannot create a mutex");
	}
	if (pthread_mutex_init(&b->listen_lock, NULL) != 0) {
		pthread_mutex_destroy(&b->lock);
		free(b);
		return pc_error_set(err, PC_ERR_INTERNAL, "store", "cannot create a mutex");
	}
	if (!(b->url = strdup(url))) {
		pg_close(b);
		return pc_error_set(err, PC_ERR_NOMEM, "store", "out of memory");
	}
	b->c = connect_url(url);
	if (!b->c || PQstatus(b->c) != CONNECTION_OK) {
		rc = pc_error_set(err, PC_ERR_BUSY, "store", "cannot connect to the PostgreSQL store: %s",
				  conn_message(b, msg, sizeof(msg)));
		goto fail;
	}
	if ((rc = migrate(b, err)))
		goto fail;
	*out = b;
	return PC_OK;
fail:
	pg_close(b);
	return rc;
}

/* A transaction that may write and changes nothing: a standby (read only)
 * or a server that cannot be reached fails it. */
static int pg_ping(struct pcd_store_be *b, struct pc_error *err)
{
	int rc;

	enter(b);
	if (!(rc = q(b, "BEGIN READ WRITE", 0, NULL, NULL, err)) &&
	    !(rc = q(b, "SELECT version FROM paracorr_schema", 0, NULL, NULL, err)))
		rc = q(b, "COMMIT", 0, NULL, NULL, err);
	leave(b);
	return rc;
}

/* ---- models and datasets ------------------------------------------------ */

#define REC_COLS "id, bytes, created_at, info, tenant, name"

static int read_rec(PGresult *r, int row, void *out, struct pc_error *err)
{
	struct pcd_blob_rec *rec = out;
	int oom = 0;

	copy_val(r, row, 0, rec->id, sizeof(rec->id));
	rec->bytes = strtoll(PQgetvalue(r, row, 1), NULL, 10);
	copy_val(r, row, 2, rec->created_at, sizeof(rec->created_at));
	copy_val(r, row, 4, rec->tenant, sizeof(rec->tenant));
	copy_val(r, row, 5, rec->name, sizeof(rec->name));
	rec->info = dup_val(r, row, 3, &oom);
	if (!rec->info)
		return pc_error_set(err, PC_ERR_NOMEM, "store", "out of memory");
	return PC_OK;
}

static int pg_upload_put(struct pcd_store_be *b, enum pcd_upload u, const char *tenant, const char *id,
			 int64_t bytes, const char *info, int *existed, struct pc_error *err)
{
	char sql[200], now[PCD_TIME_LEN], nbytes[24];
	const char *p[] = {id, nbytes, now, info, tenant};
	PGresult *r = NULL;
	int rc;

	pcd_store_now(now);
	snprintf(nbytes, sizeof(nbytes), "%lld", (long long)bytes);
	snprintf(sql, sizeof(sql),
		 "INSERT INTO %s (id, bytes, created_at, info, tenant) VALUES ($1, $2::bigint, $3, $4, $5)"
		 " ON CONFLICT (tenant, id) DO NOTHING",
		 pcd_upload_table[u]);
	enter(b);
	if ((rc = q(b, "BEGIN", 0, NULL, NULL, err)) || (rc = q(b, sql, 5, p, &r, err)))
		goto out;
	if (existed)
		*existed = changed(r) == 0;
	rc = q(b, "COMMIT", 0, NULL, NULL, err);
out:
	PQclear(r);
	leave(b);
	return rc;
}

static int pg_upload_get(struct pcd_store_be *b, enum pcd_upload u, const char *tenant, const char *id,
			 struct pcd_blob_rec *out, struct pc_error *err)
{
	const char *p[] = {id, tenant};
	char sql[200];
	PGresult *r = NULL;
	int rc;

	snprintf(sql, sizeof(sql),
		 "SELECT " REC_COLS " FROM %s WHERE id = $1::text AND ($2::text IS NULL OR tenant = $2::text)"
		 " ORDER BY tenant LIMIT 1",
		 pcd_upload_table[u]);
	enter(b);
	if ((rc = q(b, sql, 2, p, &r, err)))
		goto out;
	rc = PQntuples(r) > 0 ? read_rec(r, 0, out, err)
			      : pc_error_set(err, PC_ERR_NOT_FOUND, pcd_upload_what[u], "no %s with id %s",
					     pcd_upload_what[u], id);
out:
	PQclear(r);
	leave(b);
	return rc;
}

/* A listing's row type: its size, how a row is read from a result and how
 * an array of them is freed. */
struct row_kind {
	size_t size;
	int (*read)(PGresult *r, int row, void *out, struct pc_error *err);
	void (*free_rows)(void *rows, size_t n);
};

/* One page of a listing: sql with $1 the limit and params from $2 on. *out
 * is an array of *n rows of kind (NULL when *n == 0). */
static int list_page(struct pcd_store_be *b, const char *sql, const char **params, int n_params, int limit,
		     const struct row_kind *kind, void **out, size_t *n, struct pc_error *err)
{
	char lim[16];
	PGresult *r = NULL;
	char *rows = NULL;
	size_t count = 0;
	int rc;

	*out = NULL;
	*n = 0;
	snprintf(lim, sizeof(lim), "%d", limit);
	params[0] = lim;
	enter(b);
	rc = q(b, sql, n_params + 1, params, &r, err);
	leave(b);
	if (rc)
		return rc;
	if (PQntuples(r) > 0 && !(rows = calloc((size_t)PQntuples(r), kind->size))) {
		PQclear(r);
		return pc_error_set(err, PC_ERR_NOMEM, "store", "out of memory");
	}
	for (int i = 0; i < PQntuples(r); i++) {
		if ((rc = kind->read(r, i, rows + count * kind->size, err)))
			break;
		count++;
	}
	PQclear(r);
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

static int pg_upload_list(struct pcd_store_be *b, enum pcd_upload u, const char *tenant, const char *name,
			  const char *after, const char *after_tenant, int limit, struct pcd_blob_rec **out, size_t *n,
			  struct pc_error *err)
{
	/* the cursor as on SQLite: without after_tenant (or with one tenant
	 * in scope) "(id, tenant) > (after, 0x7f)", since every character of
	 * a tenant name sorts below 0x7f in byte order (COLLATE "C") */
	const char *p[] = {NULL, tenant, after, tenant || !after_tenant || !after_tenant[0] ? "\x7f" : after_tenant,
			   name};
	char sql[400];
	void *rows;
	int rc;

	snprintf(sql, sizeof(sql),
		 "SELECT " REC_COLS " FROM %s WHERE ($2::text IS NULL OR tenant = $2::text)"
		 " AND (id, tenant) > ($3::text COLLATE \"C\", $4::text COLLATE \"C\")"
		 " AND ($5::text IS NULL OR name = $5::text) ORDER BY id, tenant LIMIT $1::integer",
		 pcd_upload_table[u]);
	rc = list_page(b, sql, p, 4, limit, &rec_rows, &rows, n, err);
	*out = rows;
	return rc;
}

static int pg_upload_delete(struct pcd_store_be *b, enum pcd_upload u, const char *tenant, const char *id,
			    int *unused, struct pc_error *err)
{
	const char *table = pcd_upload_table[u], *what = pcd_upload_what[u];
	const char *p[] = {id, tenant, what};
	char sql[400];
	PGresult *r = NULL;
	int rc;

	snprintf(sql, sizeof(sql), "SELECT 1 FROM %s WHERE id = $1::text AND ($2::text IS NULL OR tenant = $2::text)"
		 " FOR UPDATE", table);
	enter(b);
	/* the records first, locked: a submit naming them (FOR SHARE) waits
	 * for this transaction, or this one for it and then sees its job */
	if ((rc = q(b, "BEGIN", 0, NULL, NULL, err)) || (rc = q(b, sql, 2, p, NULL, err)))
		goto out;
	/* only the pending jobs of the tenants whose record goes: another
	 * tenant's job must neither block this delete nor be revealed by it */
	if ((rc = q(b,
		    "SELECT j.id, u.field FROM job_uploads u JOIN jobs j ON j.id = u.job_id WHERE u.upload = $3::text"
		    " AND u.upload_id = $1::text AND ($2::text IS NULL OR j.tenant = $2::text)"
		    " AND j.status IN ('queued', 'running') LIMIT 1",
		    3, p, &r, err)))
		goto out;
	if (PQntuples(r) > 0) {
		rc = pc_error_set(err, PC_ERR_CONFLICT, what, "job %s still needs %s %s (its %s)", PQgetvalue(r, 0, 0),
				  what, id, PQgetvalue(r, 0, 1));
		goto out;
	}
	PQclear(r);
	r = NULL;
	snprintf(sql, sizeof(sql), "DELETE FROM %s WHERE id = $1::text AND ($2::text IS NULL OR tenant = $2::text)",
		 table);
	if ((rc = q(b, sql, 2, p, &r, err)))
		goto out;
	if (changed(r) == 0) {
		rc = pc_error_set(err, PC_ERR_NOT_FOUND, what, "no %s with id %s", what, id);
		goto out;
	}
	PQclear(r);
	r = NULL;
	/* the file is shared: it may go only when nobody holds or needs it */
	snprintf(sql, sizeof(sql),
		 "SELECT 1 FROM %s WHERE id = $1::text UNION ALL SELECT 1 FROM job_uploads u JOIN jobs j"
		 " ON j.id = u.job_id WHERE u.upload = $2::text AND u.upload_id = $1::text"
		 " AND j.status IN ('queued', 'running') LIMIT 1",
		 table);
	p[1] = what;
	if ((rc = q(b, sql, 2, p, &r, err)) || (rc = q(b, "COMMIT", 0, NULL, NULL, err)))
		goto out;
	if (unused)
		*unused = PQntuples(r) == 0;
out:
	PQclear(r);
	leave(b);
	return rc;
}

static int pg_upload_name(struct pcd_store_be *b, enum pcd_upload u, const char *tenant, const char *id,
			  const char *name, struct pc_error *err)
{
	const char *p[] = {name, id, tenant};
	char sql[200];
	PGresult *r = NULL;
	int rc;

	snprintf(sql, sizeof(sql),
		 "UPDATE %s SET name = $1::text WHERE id = $2::text AND ($3::text IS NULL OR tenant = $3::text)",
		 pcd_upload_table[u]);
	enter(b);
	if ((rc = q(b, "BEGIN", 0, NULL, NULL, err)) || (rc = q(b, sql, 3, p, &r, err)))
		goto out;
	if (changed(r) == 0)
		rc = pc_error_set(err, PC_ERR_NOT_FOUND, pcd_upload_what[u], "no such upload");
	else
		rc = q(b, "COMMIT", 0, NULL, NULL, err);
out:
	PQclear(r);
	leave(b);
	return rc;
}

/* The two integers of the one row sql gives, with $1 bound to key. */
static int two_counts(struct pcd_store_be *b, const char *sql, const char *key, int64_t *x, int64_t *y,
		      struct pc_error *err)
{
	const char *p[] = {key};
	PGresult *r = NULL;
	int rc;

	enter(b);
	rc = q(b, sql, key ? 1 : 0, p, &r, err);
	leave(b);
	if (rc)
		return rc;
	if (PQntuples(r) != 1 || PQnfields(r) != 2)
		rc = pc_error_set(err, PC_ERR_IO, "store", "database: a count gave no row");
	else {
		if (x)
			*x = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
		if (y)
			*y = strtoll(PQgetvalue(r, 0, 1), NULL, 10);
	}
	PQclear(r);
	return rc;
}

static int pg_tenant_usage(struct pcd_store_be *b, const char *tenant, int64_t *queued, int64_t *stored_bytes,
			   struct pc_error *err)
{
	return two_counts(b,
			  "SELECT (SELECT count(*) FROM jobs WHERE tenant = $1::text AND status = 'queued'),"
			  " (SELECT coalesce(sum(bytes), 0) FROM models WHERE tenant = $1::text)"
			  " + (SELECT coalesce(sum(bytes), 0) FROM datasets WHERE tenant = $1::text)",
			  tenant, queued, stored_bytes, err);
}

static int pg_queue_depth(struct pcd_store_be *b, int64_t *queued, int64_t *running, struct pc_error *err)
{
	return two_counts(b,
			  "SELECT count(*) FILTER (WHERE status = 'queued'), count(*) FILTER (WHERE status = 'running')"
			  " FROM jobs WHERE status IN ('queued', 'running')",
			  NULL, queued, running, err);
}

/* ---- jobs ---------------------------------------------------------------- */

#define JOB_COLS                                                                                                  \
	"seq, id, kind, spec, status, attempts, cancel_requested, progress, error, (report IS NOT NULL)::integer,"  \
	" idempotency_key, spec_hash, created_at, started_at, finished_at, heartbeat_at, tenant, name, labels,"    \
	" headline, node, claim_token"

static int read_job(PGresult *r, int row, void *out, struct pc_error *err)
{
	struct pcd_job *j = out;
	int status, oom = 0;

	memset(j, 0, sizeof(*j));
	j->seq = strtoll(PQgetvalue(r, row, 0), NULL, 10);
	copy_val(r, row, 1, j->id, sizeof(j->id));
	copy_val(r, row, 2, j->kind, sizeof(j->kind));
	j->spec = dup_val(r, row, 3, &oom);
	status = pcd_job_status_parse(PQgetvalue(r, row, 4));
	j->status = status < 0 ? PCD_JOB_FAILED : (enum pcd_job_status)status;
	j->attempts = atoi(PQgetvalue(r, row, 5));
	j->cancel_requested = atoi(PQgetvalue(r, row, 6));
	j->progress = dup_val(r, row, 7, &oom);
	j->error = dup_val(r, row, 8, &oom);
	j->has_report = atoi(PQgetvalue(r, row, 9));
	j->idempotency_key = dup_val(r, row, 10, &oom);
	copy_val(r, row, 11, j->spec_hash, sizeof(j->spec_hash));
	copy_val(r, row, 12, j->created_at, sizeof(j->created_at));
	copy_val(r, row, 13, j->started_at, sizeof(j->started_at));
	copy_val(r, row, 14, j->finished_at, sizeof(j->finished_at));
	copy_val(r, row, 15, j->heartbeat_at, sizeof(j->heartbeat_at));
	copy_val(r, row, 16, j->tenant, sizeof(j->tenant));
	copy_val(r, row, 17, j->name, sizeof(j->name));
	j->labels = dup_val(r, row, 18, &oom);
	j->headline = dup_val(r, row, 19, &oom);
	copy_val(r, row, 20, j->node, sizeof(j->node));
	copy_val(r, row, 21, j->claim_token, sizeof(j->claim_token));
	if (oom || !j->spec || !j->labels) {
		pcd_job_free(j);
		return pc_error_set(err, PC_ERR_NOMEM, "store", "out of memory");
	}
	return PC_OK;
}

/* Reads one job by id within the tenant scope (inside an operation). */
static int job_get_in(struct pcd_store_be *b, const char *tenant, const char *id, struct pcd_job *out,
		      struct pc_error *err)
{
	const char *p[] = {id, tenant};
	PGresult *r = NULL;
	int rc;

	if ((rc = q(b, "SELECT " JOB_COLS " FROM jobs WHERE id = $1::text AND ($2::text IS NULL OR tenant = $2::text)",
		    2, p, &r, err)))
		return rc;
	if (PQntuples(r) == 0)
		rc = pc_error_set(err, PC_ERR_NOT_FOUND, "job", "no job with id %s", id);
	else if (out)
		rc = read_job(r, 0, out, err);
	PQclear(r);
	return rc;
}

/* The status of a job within the tenant scope, its row locked when lock
 * (inside a transaction). */
static int job_status_in(struct pcd_store_be *b, const char *tenant, const char *id, int lock,
			 enum pcd_job_status *status, int *cancel, struct pc_error *err)
{
	const char *p[] = {id, tenant};
	PGresult *r = NULL;
	int rc, v;

	if ((rc = q(b,
		    lock ? "SELECT status, cancel_requested FROM jobs WHERE id = $1::text"
			   " AND ($2::text IS NULL OR tenant = $2::text) FOR UPDATE"
			 : "SELECT status, cancel_requested FROM jobs WHERE id = $1::text"
			   " AND ($2::text IS NULL OR tenant = $2::text)",
		    2, p, &r, err)))
		return rc;
	if (PQntuples(r) == 0)
		rc = pc_error_set(err, PC_ERR_NOT_FOUND, "job", "no job with id %s", id);
	else {
		v = pcd_job_status_parse(PQgetvalue(r, 0, 0));
		*status = v < 0 ? PCD_JOB_FAILED : (enum pcd_job_status)v;
		if (cancel)
			*cancel = atoi(PQgetvalue(r, 0, 1));
	}
	PQclear(r);
	return rc;
}

/* One try of a submit, in a transaction; *replay is the id of the job an
 * idempotency key already names ("" when none). */
static int submit_once(struct pcd_store_be *b, const struct pcd_job_new *nj, char id[PCD_JOB_ID_LEN + 1],
		       char replay[PCD_JOB_ID_LEN + 1], struct pc_error *err)
{
	static const char *const exists[PCD_UPLOAD_COUNT] = {
		[PCD_UPLOAD_MODEL] = "SELECT 1 FROM models WHERE id = $1::text AND ($2::text IS NULL OR tenant = $2::text)"
				     " FOR SHARE",
		[PCD_UPLOAD_DATASET] = "SELECT 1 FROM datasets WHERE id = $1::text"
				       " AND ($2::text IS NULL OR tenant = $2::text) FOR SHARE"};
	char now[PCD_TIME_LEN];
	PGresult *r = NULL;
	int rc;

	replay[0] = '\0';
	pcd_store_now(now);
	if ((rc = q(b, "BEGIN", 0, NULL, NULL, err)))
		return rc;
	if (nj->idem_key) {
		const char *p[] = {nj->tenant, nj->idem_key};

		if ((rc = q(b, "SELECT id, spec_hash FROM jobs WHERE tenant = $1::text AND idempotency_key = $2::text", 2,
			    p, &r, err)))
			goto out;
		if (PQntuples(r) > 0) {
			if (strcmp(PQgetvalue(r, 0, 1), nj->hash) != 0)
				rc = pc_error_set(err, PC_ERR_CONFLICT, "Idempotency-Key",
						  "was used for job %s with a different body", PQgetvalue(r, 0, 0));
			else
				copy_val(r, 0, 0, replay, PCD_JOB_ID_LEN + 1);
			goto out;
		}
		PQclear(r);
		r = NULL;
	}
	/* the uploads must exist now, in the same transaction as the job's
	 * references, locked against a delete until it commits */
	for (int i = 0; i < nj->n_refs; i++) {
		const struct pcd_job_ref *ref = &nj->refs[i];
		const char *p[] = {ref->id, nj->upload_scope};

		if ((rc = q(b, exists[ref->upload], 2, p, &r, err)))
			goto out;
		if (PQntuples(r) == 0) {
			rc = pc_error_set(err, PC_ERR_INVALID, ref->field, "no %s with this id", pcd_upload_what[ref->upload]);
			goto out;
		}
		PQclear(r);
		r = NULL;
	}
	if (nj->max_queue > 0) {
		if ((rc = q(b, "SELECT count(*) FROM jobs WHERE status = 'queued'", 0, NULL, &r, err)))
			goto out;
		if (strtoll(PQgetvalue(r, 0, 0), NULL, 10) >= nj->max_queue) {
			rc = pc_error_set(err, PC_ERR_BUSY, "queue", "%d jobs are queued already", nj->max_queue);
			goto out;
		}
		PQclear(r);
		r = NULL;
	}
	/* after the global bound: a full queue is the service's state (503),
	 * this is the tenant's (429) */
	if (nj->tenant_max_queued > 0) {
		const char *p[] = {nj->tenant};

		if ((rc = q(b, "SELECT count(*) FROM jobs WHERE tenant = $1::text AND status = 'queued'", 1, p, &r, err)))
			goto out;
		if (strtoll(PQgetvalue(r, 0, 0), NULL, 10) >= nj->tenant_max_queued) {
			rc = pc_error_set(err, PC_ERR_QUOTA, "tenant_max_queued_jobs", "tenant %s has %d jobs queued already",
					  nj->tenant, nj->tenant_max_queued);
			goto out;
		}
		PQclear(r);
		r = NULL;
	}
	for (int tries = 0;; tries++) {
		const char *p[] = {id, nj->kind, nj->spec_text, nj->idem_key, nj->hash, now, nj->tenant, nj->name, nj->labels};

		/* 64 random bits: a clash is all but impossible, but cheap to retry */
		if ((rc = pcd_store_new_job_id(id, err)))
			goto out;
		if ((rc = q(b,
			    "INSERT INTO jobs (id, kind, spec, status, idempotency_key, spec_hash, created_at, tenant, name,"
			    " labels) VALUES ($1, $2, $3, 'queued', $4, $5, $6, $7, $8, $9) ON CONFLICT (id) DO NOTHING",
			    9, p, &r, err)))
			goto out;
		if (changed(r) == 1)
			break;
		if (tries == 3) {
			rc = pc_error_set(err, PC_ERR_IO, "store", "database: no free job id after 4 tries");
			goto out;
		}
		PQclear(r);
		r = NULL;
	}
	for (int i = 0; i < nj->n_refs; i++) {
		const char *p[] = {id, nj->refs[i].field, pcd_upload_what[nj->refs[i].upload], nj->refs[i].id};

		if ((rc = q(b, "INSERT INTO job_uploads (job_id, field, upload, upload_id) VALUES ($1, $2, $3, $4)", 4, p,
			    NULL, err)))
			goto out;
	}
	/* delivered at the commit, to the idle workers of every node */
	if ((rc = q(b, NOTIFY_JOBS, 0, NULL, NULL, err)))
		goto out;
	rc = q(b, "COMMIT", 0, NULL, NULL, err);
out:
	PQclear(r);
	return rc;
}

static int pg_job_submit(struct pcd_store_be *b, const struct pcd_job_new *nj, struct pcd_job *out, int *created,
			 struct pc_error *err)
{
	char id[PCD_JOB_ID_LEN + 1], replay[PCD_JOB_ID_LEN + 1];
	struct pc_error first = {0};
	int rc;

	enter(b);
	rc = submit_once(b, nj, id, replay, &first);
	/* another connection inserted the same idempotency key meanwhile (a
	 * unique violation): once more, and this time that job is found */
	if (rc == PC_ERR_CONFLICT && nj->idem_key && strcmp(b->sqlstate, "23505") == 0) {
		PGTransactionStatusType ts = PQtransactionStatus(b->c);

		if (ts == PQTRANS_INTRANS || ts == PQTRANS_INERROR)
			PQclear(PQexecParams(b->c, "ROLLBACK", 0, NULL, NULL, NULL, NULL, 0));
		memset(&first, 0, sizeof(first));
		rc = submit_once(b, nj, id, replay, &first);
	}
	if (rc)
		pc_error_set(err, first.code, first.where, "%s", first.text);
	else if (replay[0]) {
		PGTransactionStatusType ts = PQtransactionStatus(b->c);

		if (ts == PQTRANS_INTRANS)
			PQclear(PQexecParams(b->c, "ROLLBACK", 0, NULL, NULL, NULL, NULL, 0));
		rc = out ? job_get_in(b, nj->tenant, replay, out, err) : PC_OK;
	} else {
		*created = 1;
		rc = out ? job_get_in(b, nj->tenant, id, out, err) : PC_OK;
	}
	leave(b);
	return rc;
}

/* The answer of a fenced write that matched no row (inside the
 * operation's transaction). */
static int fenced_in(struct pcd_store_be *b, const char *id, const char *token, struct pc_error *err)
{
	const char *p[] = {id};
	PGresult *r = NULL;
	int rc, v;

	if ((rc = q(b, "SELECT status, claim_token FROM jobs WHERE id = $1::text", 1, p, &r, err)))
		return rc;
	v = PQntuples(r) > 0 ? pcd_job_status_parse(PQgetvalue(r, 0, 0)) : -1;
	rc = pcd_store_fenced(id, PQntuples(r) > 0, v < 0 ? PCD_JOB_FAILED : (enum pcd_job_status)v,
			      PQntuples(r) > 0 ? val(r, 0, 1) : NULL, token, err);
	PQclear(r);
	return rc;
}

static int pg_artifact_put(struct pcd_store_be *b, const char *job_id, const char *token, const char *name,
			   const char *model_id, struct pc_error *err)
{
	const char *p[] = {job_id, name, model_id, token};
	PGresult *r = NULL;
	int rc;

	enter(b);
	/* the job's row locked first: a sweep cannot requeue it between the
	 * check and the insert */
	if ((rc = q(b, "BEGIN", 0, NULL, NULL, err)) ||
	    (rc = q(b,
		    "SELECT 1 FROM jobs WHERE id = $1::text AND status = 'running' AND claim_token = $2::text FOR UPDATE", 2,
		    (const char *[]){job_id, token}, &r, err)))
		goto out;
	if (PQntuples(r) == 0) {
		rc = fenced_in(b, job_id, token, err);
		goto out;
	}
	if (!(rc = q(b,
		     "INSERT INTO job_artifacts (job_id, name, model_id) VALUES ($1, $2, $3)"
		     " ON CONFLICT (job_id, name) DO UPDATE SET model_id = excluded.model_id",
		     3, p, NULL, err)))
		rc = q(b, "COMMIT", 0, NULL, NULL, err);
out:
	PQclear(r);
	leave(b);
	return rc;
}

static int pg_artifact_get(struct pcd_store_be *b, const char *job_id, const char *name, char model_id[65],
			   struct pc_error *err)
{
	const char *p[] = {job_id, name};
	PGresult *r = NULL;
	int rc;

	enter(b);
	if (!(rc = q(b, "SELECT model_id FROM job_artifacts WHERE job_id = $1::text AND name = $2::text", 2, p, &r,
		     err))) {
		if (PQntuples(r) > 0)
			copy_val(r, 0, 0, model_id, 65);
		else
			rc = pc_error_set(err, PC_ERR_NOT_FOUND, name, "job %s has no artifact %s", job_id, name);
	}
	PQclear(r);
	leave(b);
	return rc;
}

static int pg_job_claim(struct pcd_store_be *b, const char *node, const char *token, int lease_ms,
			struct pcd_job *out, struct pc_error *err)
{
	char id[PCD_JOB_ID_LEN + 1], now[PCD_TIME_LEN], lease[16];
	const char *p[] = {now, id, node, token, lease};
	PGresult *r = NULL;
	int rc;

	pcd_store_now(now);
	snprintf(lease, sizeof(lease), "%d", lease_ms);
	enter(b);
	/* submission order; a row another connection is claiming is skipped,
	 * not waited for */
	if ((rc = q(b, "BEGIN", 0, NULL, NULL, err)) ||
	    (rc = q(b, "SELECT id FROM jobs WHERE status = 'queued' ORDER BY seq LIMIT 1 FOR UPDATE SKIP LOCKED", 0,
		    NULL, &r, err)))
		goto out;
	if (PQntuples(r) == 0) {
		rc = PC_ERR_NOT_FOUND; /* nothing queued: not an error worth recording */
		goto out;
	}
	copy_val(r, 0, 0, id, sizeof(id));
	/* the lease on the server's clock: the nodes' clocks do not matter */
	if ((rc = q(b,
		    "UPDATE jobs SET status = 'running', attempts = attempts + 1, cancel_requested = 0,"
		    " started_at = $1, heartbeat_at = $1, finished_at = NULL, progress = NULL, node = $3::text,"
		    " claim_token = $4::text, lease_expires_at = now() + $5::integer * interval '1 millisecond'"
		    " WHERE id = $2::text",
		    5, p, NULL, err)) ||
	    (rc = q(b, "COMMIT", 0, NULL, NULL, err)))
		goto out;
	rc = job_get_in(b, PCD_ALL_TENANTS, id, out, err);
out:
	PQclear(r);
	leave(b);
	return rc;
}

/* Runs an UPDATE of the job running under a token, in a transaction,
 * and commits it; the fenced answer (store.h) when it changed nothing.
 * extra (may be NULL) runs before the commit. */
static int update_running(struct pcd_store_be *b, const char *sql, int n, const char *const *params, const char *id,
			  const char *token, const char *extra, struct pc_error *err)
{
	PGresult *r = NULL;
	int rc, rows;

	if ((rc = q(b, "BEGIN", 0, NULL, NULL, err)) || (rc = q(b, sql, n, params, &r, err)))
		return rc;
	rows = changed(r);
	PQclear(r);
	if (rows == 0)
		return fenced_in(b, id, token, err);
	if (extra && (rc = q(b, extra, 0, NULL, NULL, err)))
		return rc;
	return q(b, "COMMIT", 0, NULL, NULL, err);
}

static int pg_job_heartbeat(struct pcd_store_be *b, const char *id, const char *token, int lease_ms,
			    const char *progress_json, int *cancel_requested, struct pc_error *err)
{
	char now[PCD_TIME_LEN], lease[16];
	const char *p[] = {progress_json, now, id, token, lease};
	enum pcd_job_status status;
	int rc, cancel = 0;

	pcd_store_now(now);
	snprintf(lease, sizeof(lease), "%d", lease_ms);
	enter(b);
	if (!(rc = update_running(b,
				  "UPDATE jobs SET progress = coalesce($1::text, progress), heartbeat_at = $2,"
				  " lease_expires_at = now() + $5::integer * interval '1 millisecond'"
				  " WHERE id = $3::text AND status = 'running' AND claim_token = $4::text",
				  5, p, id, token, NULL, err)) &&
	    !(rc = job_status_in(b, PCD_ALL_TENANTS, id, 0, &status, &cancel, err)) && cancel_requested)
		*cancel_requested = cancel;
	leave(b);
	return rc;
}

static int pg_job_complete(struct pcd_store_be *b, const char *id, const char *token, enum pcd_job_status status,
			   const char *report_text, const char *error_json, const char *headline, struct pc_error *err)
{
	char now[PCD_TIME_LEN];
	const char *p[] = {pcd_job_status_name(status), report_text, error_json, now, id, headline, token};
	int rc;

	pcd_store_now(now);
	enter(b);
	rc = update_running(b,
			    "UPDATE jobs SET status = $1, report = $2, error = $3, finished_at = $4, heartbeat_at = $4,"
			    " headline = $6, lease_expires_at = NULL"
			    " WHERE id = $5::text AND status = 'running' AND claim_token = $7::text",
			    7, p, id, token, NULL, err);
	leave(b);
	return rc;
}

/* A running job stopped without finishing: back to the queue, or cancelled
 * when a cancel was asked for meanwhile. Its token goes, so the attempt
 * that had it can write nothing more. */
#define REQUEUE_SET                                                                                               \
	" status = CASE WHEN cancel_requested <> 0 THEN 'cancelled' ELSE 'queued' END,"                          \
	" finished_at = CASE WHEN cancel_requested <> 0 THEN $1::text ELSE NULL END,"                            \
	" started_at = CASE WHEN cancel_requested <> 0 THEN started_at ELSE NULL END,"                           \
	" progress = CASE WHEN cancel_requested <> 0 THEN progress ELSE NULL END,"                               \
	" claim_token = NULL, lease_expires_at = NULL"

static int pg_job_requeue(struct pcd_store_be *b, const char *id, const char *token, struct pc_error *err)
{
	char now[PCD_TIME_LEN];
	const char *p[] = {now, id, token};
	int rc;

	pcd_store_now(now);
	enter(b);
	/* the claim counted an attempt; a drain is not the job's failure */
	rc = update_running(b,
			    "UPDATE jobs SET attempts = greatest(attempts - 1, 0)," REQUEUE_SET
			    " WHERE id = $2::text AND status = 'running' AND claim_token = $3::text",
			    3, p, id, token, NOTIFY_JOBS, err);
	leave(b);
	return rc;
}

/* Which running jobs recover takes: those of node $N (NULL: none), and
 * any whose lease ran out (none recorded: a job of a version before
 * leases). */
#define RECOVERABLE(n)                                                                                            \
	" status = 'running' AND waiting <> 1"                                                                    \
	" AND (lease_expires_at IS NULL OR lease_expires_at < now() OR node = $" #n "::text)"

static int pg_job_recover(struct pcd_store_be *b, int max_attempts, const char *problem_text, const char *node,
			  int *n_requeued, int *n_failed, struct pc_error *err)
{
	char now[PCD_TIME_LEN], max[16];
	const char *p[] = {problem_text, now, max, node};
	PGresult *r = NULL;
	int rc, requeued = 0, failed = 0;

	pcd_store_now(now);
	snprintf(max, sizeof(max), "%d", max_attempts);
	enter(b);
	/* rows another session has locked are left for the next sweep: a
	 * heartbeat in flight, or the open transaction of a node cut off
	 * mid-statement, which the server ends (idle_in_transaction_session_
	 * timeout, connect_url) */
	if ((rc = q(b, "BEGIN", 0, NULL, NULL, err)) ||
	    (rc = q(b,
		    "UPDATE jobs SET status = 'failed', error = $1, finished_at = $2, claim_token = NULL,"
		    " lease_expires_at = NULL WHERE id IN (SELECT id FROM jobs WHERE" RECOVERABLE(4)
		    " AND cancel_requested = 0 AND attempts >= $3::integer FOR UPDATE SKIP LOCKED)",
		    4, p, &r, err)))
		goto out;
	failed = changed(r);
	PQclear(r);
	r = NULL;
	/* the attempt that crashed stays counted: that is what bounds retries */
	p[0] = now;
	p[1] = node;
	if ((rc = q(b,
		    "UPDATE jobs SET waiting = 0," REQUEUE_SET " WHERE id IN (SELECT id FROM jobs WHERE" RECOVERABLE(2)
		    " FOR UPDATE SKIP LOCKED)",
		    2, p, &r, err)))
		goto out;
	requeued = changed(r);
	if ((requeued > 0 && (rc = q(b, NOTIFY_JOBS, 0, NULL, NULL, err))) || (rc = q(b, "COMMIT", 0, NULL, NULL, err)))
		goto out;
	if (n_requeued)
		*n_requeued = requeued;
	if (n_failed)
		*n_failed = failed;
out:
	PQclear(r);
	leave(b);
	return rc;
}

/* The LISTEN connection, made when there is none or it broke (the caller
 * holds listen_lock). */
static int listen_conn(struct pcd_store_be *b, struct pc_error *err)
{
	PGresult *r;
	char msg[400];
	int ok;

	if (b->lc && PQstatus(b->lc) == CONNECTION_OK)
		return PC_OK;
	PQfinish(b->lc);
	b->lc = connect_url(b->url);
	if (!b->lc || PQstatus(b->lc) != CONNECTION_OK) {
		snprintf(msg, sizeof(msg), "%s", b->lc ? PQerrorMessage(b->lc) : "out of memory");
		msg[strcspn(msg, "\n")] = '\0';
		PQfinish(b->lc);
		b->lc = NULL;
		return pc_error_set(err, PC_ERR_BUSY, "store", "the PostgreSQL store is unreachable: %s", msg);
	}
	r = PQexec(b->lc, "LISTEN paracorr_jobs");
	ok = PQresultStatus(r) == PGRES_COMMAND_OK;
	PQclear(r);
	if (!ok) {
		PQfinish(b->lc);
		b->lc = NULL;
		return pc_error_set(err, PC_ERR_BUSY, "store", "cannot LISTEN on the PostgreSQL store");
	}
	return PC_OK;
}

/* Takes every notification libpq has read; 1 when there was any. */
static int take_notifies(PGconn *c)
{
	PGnotify *n;
	int any = 0;

	while ((n = PQnotifies(c)) != NULL) {
		any = 1;
		PQfreemem(n);
	}
	return any;
}

static int pg_wait_jobs(struct pcd_store_be *b, int timeout_ms, int *notified, struct pc_error *err)
{
	struct pollfd pfd;
	int rc;

	pthread_mutex_lock(&b->listen_lock);
	if ((rc = listen_conn(b, err)))
		goto out;
	/* what arrived since the last call first: a NOTIFY is never missed
	 * while this connection lives, only when it is made again (then the
	 * caller's poll interval covers the gap) */
	if (!PQconsumeInput(b->lc))
		goto broken;
	if ((*notified = take_notifies(b->lc)))
		goto out;
	pfd.fd = PQsocket(b->lc);
	pfd.events = POLLIN;
	pfd.revents = 0;
	if (pfd.fd < 0)
		goto broken;
	if (poll(&pfd, 1, timeout_ms) > 0) {
		if (!PQconsumeInput(b->lc))
			goto broken;
		*notified = take_notifies(b->lc);
	}
	goto out;
broken:
	rc = pc_error_set(err, PC_ERR_BUSY, "store", "the PostgreSQL store's LISTEN connection broke");
	PQfinish(b->lc);
	b->lc = NULL;
out:
	pthread_mutex_unlock(&b->listen_lock);
	return rc;
}

static int pg_job_get(struct pcd_store_be *b, const char *tenant, const char *id, struct pcd_job *out,
		      struct pc_error *err)
{
	int rc;

	enter(b);
	rc = job_get_in(b, tenant, id, out, err);
	leave(b);
	return rc;
}

static int pg_job_report(struct pcd_store_be *b, const char *tenant, const char *id, char **text,
			 struct pc_error *err)
{
	const char *p[] = {id, tenant};
	PGresult *r = NULL;
	int rc;

	enter(b);
	if ((rc = q(b, "SELECT report, status FROM jobs WHERE id = $1::text AND ($2::text IS NULL OR tenant = $2::text)",
		    2, p, &r, err)))
		goto out;
	if (PQntuples(r) == 0)
		rc = pc_error_set(err, PC_ERR_NOT_FOUND, "job", "no job with id %s", id);
	else if (PQgetisnull(r, 0, 0))
		rc = pc_error_set(err, PC_ERR_CONFLICT, "job", "job %s is %s and has no report", id, PQgetvalue(r, 0, 1));
	else if (!(*text = strdup(PQgetvalue(r, 0, 0))))
		rc = pc_error_set(err, PC_ERR_NOMEM, "store", "out of memory");
out:
	PQclear(r);
	leave(b);
	return rc;
}

static void free_jobs(void *rows, size_t n)
{
	pcd_jobs_free(rows, n);
}

static const struct row_kind job_rows = {sizeof(struct pcd_job), read_job, free_jobs};

static int pg_job_find(struct pcd_store_be *b, const char *tenant, const struct pcd_job_filter *f, int64_t after_seq,
		       int limit, struct pcd_job **out, size_t *n, struct pc_error *err)
{
	/* $2 seq, $3 status, $4 tenant, $5 name, then a key and a value per
	 * label, both parameters (->> takes the key as text) */
	char seq[24], sql[640 + PCD_LABELS_MAX * 80];
	const char *p[5 + 2 * PCD_LABELS_MAX] = {NULL, seq, f->status, tenant, f->name};
	size_t len;
	void *rows;
	int rc;

	snprintf(seq, sizeof(seq), "%lld", (long long)after_seq);
	len = (size_t)snprintf(sql, sizeof(sql),
			       "SELECT " JOB_COLS " FROM jobs WHERE seq > $2::bigint AND ($3::text IS NULL OR status = $3::text)"
			       " AND ($4::text IS NULL OR tenant = $4::text) AND ($5::text IS NULL OR name = $5::text)"
			       /* shard jobs are their parent's (its "shards") */
			       " AND parent_id IS NULL");
	for (int i = 0; i < f->n_labels; i++) {
		p[5 + 2 * i] = f->label_keys[i];
		p[6 + 2 * i] = f->label_values[i];
		len += (size_t)snprintf(sql + len, sizeof(sql) - len, " AND (labels::jsonb ->> $%d::text) = $%d::text",
					6 + 2 * i, 7 + 2 * i);
	}
	snprintf(sql + len, sizeof(sql) - len, " ORDER BY seq LIMIT $1::integer");
	rc = list_page(b, sql, p, 4 + 2 * f->n_labels, limit, &job_rows, &rows, n, err);
	*out = rows;
	return rc;
}

/* The shards of parent id not finished: queued ones cancelled now,
 * running ones asked to stop. In the caller's transaction. */
static int cancel_shards(struct pcd_store_be *b, const char *id, const char *now, struct pc_error *err)
{
	const char *p[] = {now, id};
	int rc;

	if ((rc = q(b, "UPDATE jobs SET status = 'cancelled', finished_at = $1 WHERE parent_id = $2::text"
		       " AND status = 'queued'",
		    2, p, NULL, err)))
		return rc;
	return q(b, "UPDATE jobs SET cancel_requested = 1 WHERE parent_id = $1::text AND status = 'running'", 1, p + 1,
		 NULL, err);
}

static int pg_job_cancel(struct pcd_store_be *b, const char *tenant, const char *id,
			 enum pcd_job_status *status_after, struct pc_error *err)
{
	char now[PCD_TIME_LEN];
	const char *p[] = {now, id};
	enum pcd_job_status status;
	PGresult *r = NULL;
	int rc, waiting = 0;

	pcd_store_now(now);
	enter(b);
	if ((rc = q(b, "BEGIN", 0, NULL, NULL, err)) || (rc = job_status_in(b, tenant, id, 1, &status, NULL, err)))
		goto out;
	if (pcd_job_status_finished(status)) {
		rc = pc_error_set(err, PC_ERR_CONFLICT, "job", "job %s is %s already", id, pcd_job_status_name(status));
		goto out;
	}
	/* a parent waiting for its shards has no worker to stop it: at once */
	if ((rc = q(b, "SELECT waiting FROM jobs WHERE id = $1::text", 1, p + 1, &r, err)))
		goto out;
	waiting = PQntuples(r) && atoi(PQgetvalue(r, 0, 0)) == 1;
	if (status == PCD_JOB_QUEUED || waiting)
		rc = q(b, "UPDATE jobs SET status = 'cancelled', finished_at = $1, waiting = 0 WHERE id = $2::text", 2, p,
		       NULL, err);
	else
		rc = q(b, "UPDATE jobs SET cancel_requested = 1 WHERE id = $1::text", 1, p + 1, NULL, err);
	if (rc || (rc = cancel_shards(b, id, now, err)) || (rc = q(b, "COMMIT", 0, NULL, NULL, err)))
		goto out;
	if (status_after)
		*status_after = status == PCD_JOB_QUEUED || waiting ? PCD_JOB_CANCELLED : status;
out:
	PQclear(r);
	leave(b);
	return rc;
}

static int pg_job_delete(struct pcd_store_be *b, const char *tenant, const char *id, struct pc_error *err)
{
	static const char *const sql[] = {"DELETE FROM job_uploads WHERE job_id = $1::text",
					  "DELETE FROM job_artifacts WHERE job_id = $1::text",
					  "DELETE FROM job_state WHERE job_id = $1::text",
					  "DELETE FROM jobs WHERE parent_id = $1::text", "DELETE FROM jobs WHERE id = $1::text"};
	const char *p[] = {id};
	enum pcd_job_status status;
	int rc;

	enter(b);
	if ((rc = q(b, "BEGIN", 0, NULL, NULL, err)) || (rc = job_status_in(b, tenant, id, 1, &status, NULL, err)))
		goto out;
	if (!pcd_job_status_finished(status)) {
		rc = pc_error_set(err, PC_ERR_CONFLICT, "job", "job %s is %s; cancel it first", id,
				  pcd_job_status_name(status));
		goto out;
	}
	/* its references and its artifacts' records go with it (a registered
	 * model stays: it is a model of the service) */
	for (size_t i = 0; i < sizeof(sql) / sizeof(sql[0]); i++)
		if ((rc = q(b, sql[i], 1, p, NULL, err)))
			goto out;
	rc = q(b, "COMMIT", 0, NULL, NULL, err);
out:
	leave(b);
	return rc;
}

/* --- sharded studies ---------------------------------------------------------- */

static int pg_shards_start(struct pcd_store_be *b, const char *parent_id, const char *token, int n,
			   const char *const *spec_texts, const char *const *spec_hashes, const char *state_name,
			   const unsigned char *state, size_t state_len, struct pc_error *err)
{
	static const char hexd[] = "0123456789abcdef";
	char now[PCD_TIME_LEN], id[PCD_JOB_ID_LEN + 1], tenant[PCD_TENANT_MAX + 1], idx[16];
	char *hex = malloc(2 * state_len + 3);
	PGresult *r = NULL;
	int rc;

	if (!hex)
		return pc_error_set(err, PC_ERR_NOMEM, "store", "out of memory");
	/* bytea's hex input form */
	hex[0] = '\\';
	hex[1] = 'x';
	for (size_t i = 0; i < state_len; i++) {
		hex[2 + 2 * i] = hexd[state[i] >> 4];
		hex[3 + 2 * i] = hexd[state[i] & 15];
	}
	hex[2 + 2 * state_len] = '\0';
	pcd_store_now(now);
	enter(b);
	{
		const char *p[] = {parent_id, token};
		if ((rc = q(b, "BEGIN", 0, NULL, NULL, err)) ||
		    (rc = q(b,
			    "SELECT tenant, cancel_requested FROM jobs WHERE id = $1::text AND status = 'running'"
			    " AND claim_token = $2::text FOR UPDATE",
			    2, p, &r, err)))
			goto out;
	}
	if (!PQntuples(r)) {
		rc = fenced_in(b, parent_id, token, err);
		goto out;
	}
	if (atoi(PQgetvalue(r, 0, 1)) != 0) {
		rc = pc_error_set(err, PC_ERR_CONFLICT, "job", "job %s is being cancelled", parent_id);
		goto out;
	}
	copy_val(r, 0, 0, tenant, sizeof(tenant));
	{
		const char *p[] = {parent_id, state_name, hex};
		if ((rc = q(b,
			    "INSERT INTO job_state (job_id, name, data) VALUES ($1::text, $2::text, $3::bytea)"
			    " ON CONFLICT (job_id, name) DO UPDATE SET data = excluded.data",
			    3, p, NULL, err)))
			goto out;
	}
	for (int i = 0; i < n; i++) {
		const char *p[] = {id, spec_texts[i], spec_hashes[i], now, tenant, parent_id, idx};

		if ((rc = pcd_store_new_job_id(id, err)))
			goto out;
		snprintf(idx, sizeof(idx), "%d", i);
		if ((rc = q(b,
			    "INSERT INTO jobs (id, kind, spec, status, spec_hash, created_at, tenant, name, labels,"
			    " parent_id, shard_index) VALUES ($1::text, 'shard', $2::text, 'queued', $3::text, $4::text,"
			    " $5::text, '', '{}', $6::text, $7::integer)",
			    7, p, NULL, err)))
			goto out;
	}
	{
		const char *p[] = {parent_id};
		/* held by no worker from here: no token, no lease */
		if ((rc = q(b,
			    "UPDATE jobs SET waiting = 1, claim_token = NULL, lease_expires_at = NULL WHERE id = $1::text",
			    1, p, NULL, err)))
			goto out;
	}
	/* the shards are queued jobs: every node's idle workers wake */
	if ((rc = q(b, NOTIFY_JOBS, 0, NULL, NULL, err)))
		goto out;
	rc = q(b, "COMMIT", 0, NULL, NULL, err);
out:
	PQclear(r);
	leave(b);
	free(hex);
	return rc;
}

static int hex_nibble(char c)
{
	return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

static int pg_state_get(struct pcd_store_be *b, const char *job_id, const char *name, unsigned char **data,
			size_t *len, struct pc_error *err)
{
	const char *p[] = {job_id, name}, *v;
	PGresult *r = NULL;
	size_t n;
	int rc;

	enter(b);
	if ((rc = q(b, "SELECT data FROM job_state WHERE job_id = $1::text AND name = $2::text", 2, p, &r, err)))
		goto out;
	if (!PQntuples(r)) {
		rc = pc_error_set(err, PC_ERR_NOT_FOUND, name, "job %s has no %s", job_id, name);
		goto out;
	}
	v = PQgetvalue(r, 0, 0);
	n = strlen(v);
	if (n < 2 || v[0] != '\\' || v[1] != 'x' || n % 2) {
		rc = pc_error_set(err, PC_ERR_FORMAT, name, "the stored bytes are not in bytea's hex form");
		goto out;
	}
	*len = (n - 2) / 2;
	if (!(*data = malloc(*len + 1))) {
		rc = pc_error_set(err, PC_ERR_NOMEM, name, "out of memory for %zu bytes", *len);
		goto out;
	}
	for (size_t i = 0; i < *len; i++) {
		int hi = hex_nibble(v[2 + 2 * i]), lo = hex_nibble(v[3 + 2 * i]);
		if (hi < 0 || lo < 0) {
			free(*data);
			*data = NULL;
			*len = 0;
			rc = pc_error_set(err, PC_ERR_FORMAT, name, "the stored bytes are not in bytea's hex form");
			goto out;
		}
		(*data)[i] = (unsigned char)(hi << 4 | lo);
	}
out:
	PQclear(r);
	leave(b);
	return rc;
}

static int pg_shards_list(struct pcd_store_be *b, const char *parent_id, struct pcd_shard **out, size_t *n,
			  struct pc_error *err)
{
	const char *p[] = {parent_id};
	struct pcd_shard *v = NULL;
	PGresult *r = NULL;
	int rc, oom = 0, rows;

	enter(b);
	if ((rc = q(b,
		    "SELECT shard_index, id, status, progress, error, report IS NOT NULL, node FROM jobs"
		    " WHERE parent_id = $1::text ORDER BY shard_index",
		    1, p, &r, err)))
		goto out;
	rows = PQntuples(r);
	if (rows && !(v = calloc((size_t)rows, sizeof(*v)))) {
		rc = pc_error_set(err, PC_ERR_NOMEM, "store", "out of memory");
		goto out;
	}
	for (int i = 0; i < rows; i++) {
		int status = pcd_job_status_parse(PQgetvalue(r, i, 2));

		v[i].index = atoi(PQgetvalue(r, i, 0));
		copy_val(r, i, 1, v[i].id, sizeof(v[i].id));
		v[i].status = status < 0 ? PCD_JOB_FAILED : (enum pcd_job_status)status;
		v[i].progress = dup_val(r, i, 3, &oom);
		v[i].error = dup_val(r, i, 4, &oom);
		v[i].has_report = PQgetvalue(r, i, 5)[0] == 't';
		copy_val(r, i, 6, v[i].node, sizeof(v[i].node));
	}
	*n = (size_t)rows;
	if (oom)
		rc = pc_error_set(err, PC_ERR_NOMEM, "store", "out of memory");
out:
	PQclear(r);
	leave(b);
	if (rc) {
		pcd_shards_free(v, *n);
		*n = 0;
		v = NULL;
	}
	*out = v;
	return rc;
}

static int pg_shard_finished(struct pcd_store_be *b, const char *shard_id, const char *parent_problem,
			     const char *node, const char *token, int lease_ms, int *merge,
			     char parent_id[PCD_JOB_ID_LEN + 1], struct pc_error *err)
{
	char now[PCD_TIME_LEN], parent[PCD_JOB_ID_LEN + 1], lease[16];
	PGresult *r = NULL;
	int rc, status;

	pcd_store_now(now);
	enter(b);
	{
		const char *p[] = {shard_id};
		if ((rc = q(b, "BEGIN", 0, NULL, NULL, err)) ||
		    (rc = q(b, "SELECT parent_id, status FROM jobs WHERE id = $1::text", 1, p, &r, err)))
			goto out;
	}
	if (!PQntuples(r) || PQgetisnull(r, 0, 0))
		goto out; /* not a shard: nothing to do (leave rolls back) */
	copy_val(r, 0, 0, parent, sizeof(parent));
	status = pcd_job_status_parse(PQgetvalue(r, 0, 1));
	PQclear(r);
	r = NULL;
	{
		/* the parent's row first: two last shards finishing together take
		 * turns here */
		const char *p[] = {parent};
		if ((rc = q(b, "SELECT waiting FROM jobs WHERE id = $1::text FOR UPDATE", 1, p, &r, err)))
			goto out;
		PQclear(r);
		r = NULL;
	}
	if (status == PCD_JOB_FAILED) {
		const char *p[] = {parent_problem, now, parent};
		if ((rc = q(b,
			    "UPDATE jobs SET status = 'failed', error = $1, finished_at = $2, waiting = 0,"
			    " claim_token = NULL, lease_expires_at = NULL WHERE id = $3::text AND status = 'running'",
			    3, p, NULL, err)) ||
		    (rc = cancel_shards(b, parent, now, err)))
			goto out;
	} else if (status == PCD_JOB_SUCCEEDED) {
		const char *p[] = {parent, token, node ? node : "", lease};

		/* claimed for the merge by this node, as a claim is */
		snprintf(lease, sizeof(lease), "%d", lease_ms);
		if ((rc = q(b,
			    "UPDATE jobs SET waiting = 2, claim_token = $2::text, node = $3::text,"
			    " lease_expires_at = now() + $4::integer * interval '1 millisecond'"
			    " WHERE id = $1::text AND status = 'running' AND waiting = 1"
			    " AND NOT EXISTS (SELECT 1 FROM jobs s WHERE s.parent_id = $1::text AND s.status != 'succeeded')",
			    4, p, &r, err)))
			goto out;
		*merge = changed(r) > 0;
	}
	if ((rc = q(b, "COMMIT", 0, NULL, NULL, err)))
		goto out;
	snprintf(parent_id, PCD_JOB_ID_LEN + 1, "%s", parent);
out:
	if (rc)
		*merge = 0;
	PQclear(r);
	leave(b);
	return rc;
}

const struct pcd_store_ops pcd_store_pg_ops = {
	.name = "postgresql",
	.open = pg_open,
	.close = pg_close,
	.ping = pg_ping,
	.upload_put = pg_upload_put,
	.upload_get = pg_upload_get,
	.upload_list = pg_upload_list,
	.upload_delete = pg_upload_delete,
	.upload_name = pg_upload_name,
	.tenant_usage = pg_tenant_usage,
	.job_submit = pg_job_submit,
	.artifact_put = pg_artifact_put,
	.artifact_get = pg_artifact_get,
	.job_claim = pg_job_claim,
	.job_heartbeat = pg_job_heartbeat,
	.job_complete = pg_job_complete,
	.job_requeue = pg_job_requeue,
	.job_recover = pg_job_recover,
	.job_get = pg_job_get,
	.job_report = pg_job_report,
	.job_find = pg_job_find,
	.job_cancel = pg_job_cancel,
	.job_delete = pg_job_delete,
	.queue_depth = pg_queue_depth,
	.wait_jobs = pg_wait_jobs,
	.shards_start = pg_shards_start,
	.state_get = pg_state_get,
	.shards_list = pg_shards_list,
	.shard_finished = pg_shard_finished,
};
