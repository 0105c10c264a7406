/* blobdb: uploads' bytes as content-addressed chunks in PostgreSQL
 * (blobdb.h). Values are parameters, chunks binary ones (no hex text of a
 * megabyte); at most one chunk is in memory at a time, in the caller's
 * buffer on the way in and in libpq's result on the way out. */
#include "blobdb.h"

#include <errno.h>
#include <fcntl.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sha256.h"
#include "store_backend.h"

/* "paracorr" in ASCII + 16 (store_pg.c has + 0 and + 1; the gap leaves it
 * room for more) */
#define LOCK_BLOBS "7053476706432299650"

struct pcd_blobdb {
	char *url;
	size_t chunk_bytes;
};

int pcd_blobdb_open(const char *url, size_t chunk_bytes, struct pcd_blobdb **out, struct pc_error *err)
{
	struct pcd_blobdb *db;

	*out = NULL;
	if (chunk_bytes > PCD_BLOBDB_CHUNK_MAX)
		return pc_error_set(err, PC_ERR_INVALID, "chunk_bytes", "at most %u", PCD_BLOBDB_CHUNK_MAX);
	if (!(db = calloc(1, sizeof(*db))) || !(db->url = strdup(url))) {
		free(db);
		return pc_error_set(err, PC_ERR_NOMEM, "blobs", "out of memory");
	}
	db->chunk_bytes = chunk_bytes ? chunk_bytes : PCD_BLOBDB_CHUNK_DEFAULT;
	*out = db;
	return PC_OK;
}

void pcd_blobdb_free(struct pcd_blobdb *db)
{
	if (!db)
		return;
	free(db->url);
	free(db);
}

static const char *conn_message(PGconn *c, char *buf, size_t size)
{
	size_t n;

	snprintf(buf, size, "%s", c ? PQerrorMessage(c) : "out of memory");
	n = strlen(buf);
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
		buf[--n] = '\0';
	return buf[0] ? buf : "no message";
}

/* The same bounded waits as the store's connection (store_pg.c). */
static int connect_db(const struct pcd_blobdb *db, PGconn **out, struct pc_error *err)
{
	const char *const keys[] = {"connect_timeout",
				    "keepalives_idle",
				    "keepalives_interval",
				    "keepalives_count",
				    "tcp_user_timeout",
				    "fallback_application_name",
				    "dbname",
				    NULL};
	const char *const values[] = {"10", "30", "10", "3", "60000", "paracorrd-blobs", db->url, NULL};
	PGconn *c = PQconnectdbParams(keys, values, 1);
	char msg[400];

	*out = NULL;
	if (!c || PQstatus(c) != CONNECTION_OK) {
		pc_error_set(err, PC_ERR_BUSY, "store", "the PostgreSQL store is unreachable: %s",
			     conn_message(c, msg, sizeof(msg)));
		PQfinish(c);
		return PC_ERR_BUSY;
	}
	*out = c;
	return PC_OK;
}

/* The error of a failed statement: a broken connection or a server going
 * away is PC_ERR_BUSY, anything else PC_ERR_IO with the server's message. */
static int pg_fail(PGconn *c, PGresult *r, struct pc_error *err)
{
	const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
	const char *msg = r ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) : NULL;
	char buf[400];

	if (PQstatus(c) == CONNECTION_BAD || !state || !strncmp(state, "08", 2) || !strncmp(state, "57P", 3))
		return pc_error_set(err, PC_ERR_BUSY, "store", "the PostgreSQL store is unreachable: %s",
				    msg ? msg : conn_message(c, buf, sizeof(buf)));
	if (!strcmp(state, "53100"))
		return pc_error_set(err, PC_ERR_NOSPACE, "store", "database: %s", msg ? msg : state);
	if (!strncmp(state, "40", 2) || !strcmp(state, "55P03") || !strcmp(state, "25006"))
		return pc_error_set(err, PC_ERR_BUSY, "store", "database: %s", msg ? msg : state);
	return pc_error_set(err, PC_ERR_IO, "store", "database: %s", msg ? msg : state);
}

/* One statement with text parameters, except that formats (may be NULL)
 * marks binary ones whose lengths are in lens. Results in binary when
 * binary_result. *res (may be NULL) is the caller's to clear. */
static int run(PGconn *c, const char *sql, int n, const char *const *params, const int *lens, const int *formats,
	       int binary_result, PGresult **res, struct pc_error *err)
{
	PGresult *r = PQexecParams(c, sql, n, NULL, params, lens, formats, binary_result);
	ExecStatusType st = PQresultStatus(r);
	int rc;

	if (res)
		*res = NULL;
	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
		rc = pg_fail(c, r, err);
		PQclear(r);
		return rc;
	}
	if (res)
		*res = r;
	else
		PQclear(r);
	return PC_OK;
}

static int simple(PGconn *c, const char *sql, struct pc_error *err)
{
	return run(c, sql, 0, NULL, NULL, NULL, 0, NULL, err);
}

/* Ends a connection, rolling back what a failure left open. */
static void finish(PGconn *c)
{
	if (!c)
		return;
	if (PQtransactionStatus(c) == PQTRANS_INTRANS || PQtransactionStatus(c) == PQTRANS_INERROR)
		PQclear(PQexec(c, "ROLLBACK"));
	PQfinish(c);
}

static int read_full(int fd, char *buf, size_t len, size_t *got)
{
	size_t n = 0;

	while (n < len) {
		ssize_t k = read(fd, buf + n, len - n);

		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return -1;
		if (k == 0)
			break;
		n += (size_t)k;
	}
	*got = n;
	return 0;
}

static int write_full(int fd, const char *buf, size_t len)
{
	while (len) {
		ssize_t k = write(fd, buf, len);

		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return -1;
		buf += k;
		len -= (size_t)k;
	}
	return 0;
}

/* "model 3f2a..." or "dataset 3f2a... (labels)", for messages */
static void blob_name(const char *kind, const char *id, const char *part, char *buf, size_t size)
{
	if (part && part[0])
		snprintf(buf, size, "%s %s (%s)", kind, id, part);
	else
		snprintf(buf, size, "%s %s", kind, id);
}

int pcd_blobdb_put(struct pcd_blobdb *db, const char *kind, const char *id, const char *part, const char *path,
		   const char sha[65], int *existed, struct pc_error *err)
{
	PGconn *c = NULL;
	PGresult *r = NULL;
	char *buf = NULL, now[PCD_TIME_LEN], nbytes[24], nchunks[24], idx[24], clen[24], chex[65], whole[65];
	char what[200];
	struct pcd_sha256 h;
	uint8_t d[32];
	off_t size;
	int fd = -1, rc;
	uint64_t n_chunks, done = 0;

	if (existed)
		*existed = 0;
	blob_name(kind, id, part, what, sizeof(what));
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0 || (size = lseek(fd, 0, SEEK_END)) < 0 ||
	    lseek(fd, 0, SEEK_SET) != 0) {
		rc = pc_error_set(err, PC_ERR_IO, kind, "cannot read the %s to store it: %s", what, strerror(errno));
		goto out;
	}
	n_chunks = ((uint64_t)size + db->chunk_bytes - 1) / db->chunk_bytes;
	if (!(buf = malloc(db->chunk_bytes))) {
		rc = pc_error_set(err, PC_ERR_NOMEM, kind, "out of memory");
		goto out;
	}
	pcd_store_now(now);
	snprintf(nbytes, sizeof(nbytes), "%lld", (long long)size);
	snprintf(nchunks, sizeof(nchunks), "%llu", (unsigned long long)n_chunks);
	if ((rc = connect_db(db, &c, err)) || (rc = simple(c, "BEGIN", err)) ||
	    (rc = simple(c, "SELECT pg_advisory_xact_lock_shared(" LOCK_BLOBS ")", err)))
		goto out;
	{
		const char *p[] = {kind, id, part, nbytes, sha, nchunks, now};

		/* first, so that a second put of the same blob waits for this
		 * one's row and then finds it */
		if ((rc = run(c,
			      "INSERT INTO blobs (kind, id, part, bytes, sha256, n_chunks, created_at)"
			      " VALUES ($1, $2, $3, $4::bigint, $5, $6::integer, $7) ON CONFLICT DO NOTHING",
			      7, p, NULL, NULL, 0, &r, err)))
			goto out;
	}
	if (atoi(PQcmdTuples(r)) == 0) {
		if (existed)
			*existed = 1;
		rc = simple(c, "COMMIT", err);
		goto out;
	}
	PQclear(r);
	r = NULL;
	pcd_sha256_init(&h);
	for (uint64_t i = 0; i < n_chunks; i++) {
		size_t got;
		const char *pc[] = {chex, buf};
		const char *pp[] = {kind, id, part, idx, chex, clen};
		int lens[2] = {64, 0}, fmts[2] = {0, 1};

		if (read_full(fd, buf, db->chunk_bytes, &got) != 0 || got == 0) {
			rc = pc_error_set(err, PC_ERR_IO, kind, "cannot read the %s at byte %llu: %s", what,
					  (unsigned long long)done,
					  got == 0 ? "it is shorter than before" : strerror(errno));
			goto out;
		}
		pcd_sha256_update(&h, buf, got);
		pcd_sha256_hex_of(buf, got, chex);
		lens[1] = (int)got;
		snprintf(idx, sizeof(idx), "%llu", (unsigned long long)i);
		snprintf(clen, sizeof(clen), "%zu", got);
		if ((rc = run(c, "INSERT INTO blob_chunks (sha256, data) VALUES ($1, $2) ON CONFLICT DO NOTHING", 2, pc,
			      lens, fmts, 0, NULL, err)) ||
		    (rc = run(c,
			      "INSERT INTO blob_parts (kind, id, part, idx, chunk, bytes)"
			      " VALUES ($1, $2, $3, $4::integer, $5, $6::integer)",
			      6, pp, NULL, NULL, 0, NULL, err)))
			goto out;
		done += got;
	}
	pcd_sha256_final(&h, d);
	pcd_sha256_hex(d, whole);
	if (done != (uint64_t)size || strcmp(whole, sha)) {
		rc = pc_error_set(err, PC_ERR_IO, kind, "the %s changed while it was stored", what);
		goto out;
	}
	rc = simple(c, "COMMIT", err);
out:
	PQclear(r);
	finish(c);
	free(buf);
	if (fd >= 0)
		close(fd);
	return rc;
}

int pcd_blobdb_stat(struct pcd_blobdb *db, const char *kind, const char *id, const char *part, char sha[65],
		    int64_t *bytes, struct pc_error *err)
{
	const char *p[] = {kind, id, part};
	PGconn *c = NULL;
	PGresult *r = NULL;
	int rc;

	if ((rc = connect_db(db, &c, err)) ||
	    (rc = run(c, "SELECT sha256, bytes FROM blobs WHERE kind = $1 AND id = $2 AND part = $3", 3, p, NULL, NULL,
		      0, &r, err)))
		goto out;
	if (PQntuples(r) == 0) {
		rc = pc_error_set(err, PC_ERR_NOT_FOUND, kind, "no %s with id %s in the database", kind, id);
		goto out;
	}
	if (sha)
		snprintf(sha, 65, "%s", PQgetvalue(r, 0, 0));
	if (bytes)
		*bytes = strtoll(PQgetvalue(r, 0, 1), NULL, 10);
out:
	PQclear(r);
	finish(c);
	return rc;
}

int pcd_blobdb_fetch(struct pcd_blobdb *db, const char *kind, const char *id, const char *part, int fd, char sha[65],
		     struct pc_error *err)
{
	const char *p[] = {kind, id, part, NULL};
	PGconn *c = NULL;
	PGresult *r = NULL;
	char what[200], idx[24], want[65], hex[65], name[65];
	struct pcd_sha256 h;
	uint8_t d[32];
	long long n_chunks, bytes, done = 0;
	int rc;

	blob_name(kind, id, part, what, sizeof(what));
	/* one snapshot: a blob deleted meanwhile is read whole or not at all */
	if ((rc = connect_db(db, &c, err)) ||
	    (rc = simple(c, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", err)) ||
	    (rc = run(c, "SELECT sha256, bytes, n_chunks FROM blobs WHERE kind = $1 AND id = $2 AND part = $3", 3, p,
		      NULL, NULL, 0, &r, err)))
		goto out;
	if (PQntuples(r) == 0) {
		rc = pc_error_set(err, PC_ERR_NOT_FOUND, kind, "the %s is not in the database", what);
		goto out;
	}
	snprintf(want, sizeof(want), "%s", PQgetvalue(r, 0, 0));
	bytes = strtoll(PQgetvalue(r, 0, 1), NULL, 10);
	n_chunks = strtoll(PQgetvalue(r, 0, 2), NULL, 10);
	PQclear(r);
	r = NULL;
	pcd_sha256_init(&h);
	p[3] = idx;
	for (long long i = 0; i < n_chunks; i++) {
		const char *data;
		int len, namelen;

		snprintf(idx, sizeof(idx), "%lld", i);
		/* binary: the chunk's bytes as they are, the text as its bytes */
		if ((rc = run(c,
			      "SELECT p.chunk, c.data FROM blob_parts p LEFT JOIN blob_chunks c ON c.sha256 = p.chunk"
			      " WHERE p.kind = $1 AND p.id = $2 AND p.part = $3 AND p.idx = $4::integer",
			      4, p, NULL, NULL, 1, &r, err)))
			goto out;
		if (PQntuples(r) != 1 || PQgetisnull(r, 0, 1)) {
			rc = pc_error_set(err, PC_ERR_IO, kind,
					  "the %s is damaged in the database: chunk %lld of %lld is missing", what, i,
					  n_chunks);
			goto out;
		}
		namelen = PQgetlength(r, 0, 0);
		snprintf(name, sizeof(name), "%.*s", namelen < 64 ? namelen : 64, PQgetvalue(r, 0, 0));
		data = PQgetvalue(r, 0, 1);
		len = PQgetlength(r, 0, 1);
		pcd_sha256_hex_of(data, (size_t)len, hex);
		if (strcmp(hex, name)) {
			rc = pc_error_set(
			    err, PC_ERR_IO, kind,
			    "the %s is damaged in the database: chunk %lld of %lld does not match its sha256", what, i,
			    n_chunks);
			goto out;
		}
		pcd_sha256_update(&h, data, (size_t)len);
		if (write_full(fd, data, (size_t)len) != 0) {
			rc = pc_error_set(err, pc_status_of_errno(errno), kind, "cannot write the %s to the cache: %s",
					  what, strerror(errno));
			goto out;
		}
		done += len;
		PQclear(r);
		r = NULL;
	}
	pcd_sha256_final(&h, d);
	pcd_sha256_hex(d, hex);
	if (done != bytes || strcmp(hex, want)) {
		rc = pc_error_set(err, PC_ERR_IO, kind,
				  "the %s is damaged in the database: its chunks do not make its sha256", what);
		goto out;
	}
	if (sha)
		memcpy(sha, hex, 65);
	rc = simple(c, "COMMIT", err);
out:
	PQclear(r);
	finish(c);
	return rc;
}

int pcd_blobdb_delete(struct pcd_blobdb *db, const char *kind, const char *id, int *deleted, struct pc_error *err)
{
	const char *p[] = {kind, id};
	const char *table = !strcmp(kind, "model") ? "models" : "datasets";
	char sql[400];
	PGconn *c = NULL;
	PGresult *r = NULL;
	int rc;

	if (deleted)
		*deleted = 0;
	if ((rc = connect_db(db, &c, err)) || (rc = simple(c, "BEGIN", err)) ||
	    (rc = simple(c, "SELECT pg_advisory_xact_lock(" LOCK_BLOBS ")", err)))
		goto out;
	/* under the lock no put is under way: a record made since the
	 * caller's delete (another node's ingest of the same bytes) keeps them */
	snprintf(sql, sizeof(sql),
		 "SELECT 1 FROM %s WHERE id = $2 UNION ALL SELECT 1 FROM job_uploads u JOIN jobs j ON j.id = u.job_id"
		 " WHERE u.upload = $1 AND u.upload_id = $2 AND j.status IN ('queued', 'running') LIMIT 1",
		 table);
	if ((rc = run(c, sql, 2, p, NULL, NULL, 0, &r, err)))
		goto out;
	if (PQntuples(r) > 0) {
		rc = simple(c, "COMMIT", err);
		goto out;
	}
	PQclear(r);
	r = NULL;
	/* the chunks only this blob uses, then the blob (its list goes with
	 * it): the list's reference to its chunks is checked at COMMIT */
	if ((rc = simple(c, "SET CONSTRAINTS ALL DEFERRED", err)) ||
	    (rc = run(c,
		      "DELETE FROM blob_chunks c WHERE c.sha256 IN (SELECT chunk FROM blob_parts WHERE kind = $1 AND "
		      "id = $2)"
		      " AND NOT EXISTS (SELECT 1 FROM blob_parts o WHERE o.chunk = c.sha256 AND (o.kind, o.id) <> "
		      "($1::text, $2::text))",
		      2, p, NULL, NULL, 0, NULL, err)) ||
	    (rc = run(c, "DELETE FROM blobs WHERE kind = $1 AND id = $2", 2, p, NULL, NULL, 0, &r, err)))
		goto out;
	if (deleted)
		*deleted = atoi(PQcmdTuples(r)) > 0;
	rc = simple(c, "COMMIT", err);
out:
	PQclear(r);
	finish(c);
	return rc;
}
