/* blobdb: the bytes of uploads in a PostgreSQL database (the tables of
 * store_pg.c's schema version 2), so that every node of one database can
 * run a job on any upload with nothing but the URL.
 *
 * A blob is one file: a model (kind "model", part "") or one part of a
 * dataset (kind "dataset", part "inputs" or "labels"), named by the
 * upload's id. It is stored as chunks of at most chunk_bytes, each keyed
 * by its own sha256 (the same bytes are stored once), and a row with its
 * size, its sha256 and the ordered list of its chunks. A put writes the
 * chunks, the row and the list in one transaction, so no reader sees part
 * of a blob; a fetch checks each chunk's sha256 and then the whole blob's.
 *
 * A put and a delete exclude each other (an advisory lock, shared by puts
 * and exclusive for a delete), and a delete removes nothing while a
 * record of the id (models, datasets) or a pending job naming it exists:
 * a chunk never goes while a put that reuses it is under way, and the
 * bytes of a recorded upload never go.
 *
 * Each call opens a connection of its own for its duration: a transfer
 * of a large model never holds the store's one connection (store_pg.c),
 * and the workers of a node fetch at the same time. An unreachable server
 * is PC_ERR_BUSY (HTTP 503), as for the store. */
#ifndef PARACORR_SERVER_BLOBDB_H
#define PARACORR_SERVER_BLOBDB_H

#include <stddef.h>
#include <stdint.h>

#include "paracorr/error.h"

#define PCD_BLOBDB_CHUNK_DEFAULT (1u << 20)
#define PCD_BLOBDB_CHUNK_MAX	 (16u << 20) /* the chunk table's CHECK */

struct pcd_blobdb;

/* Remembers the URL (no connection yet). chunk_bytes 0 is the default,
 * else 1..PCD_BLOBDB_CHUNK_MAX. *out is owned by the caller. */
int pcd_blobdb_open(const char *url, size_t chunk_bytes, struct pcd_blobdb **out, struct pc_error *err);
void pcd_blobdb_free(struct pcd_blobdb *db);

/* Stores the file at path, whose sha256 hex is sha (the upload's writer
 * computed it; the bytes read are checked against it), as the blob (kind,
 * id, part), unless that blob exists already (*existed, may be NULL).
 * Reads and sends one chunk at a time. */
int pcd_blobdb_put(struct pcd_blobdb *db, const char *kind, const char *id, const char *part, const char *path,
		   const char sha[65], int *existed, struct pc_error *err);

/* PC_OK when the blob exists (sha, bytes may be NULL), PC_ERR_NOT_FOUND
 * when not. */
int pcd_blobdb_stat(struct pcd_blobdb *db, const char *kind, const char *id, const char *part, char sha[65],
		    int64_t *bytes, struct pc_error *err);

/* Writes the blob's bytes to fd from its current offset, one chunk at a
 * time, each checked against its sha256 and the whole against the blob's:
 * a mismatch is PC_ERR_IO naming the id and the chunk's index.
 * PC_ERR_NOT_FOUND when the blob does not exist. sha (may be NULL) gets
 * the checked sha256 hex of what was written. What was written before an
 * error is the caller's to throw away. */
int pcd_blobdb_fetch(struct pcd_blobdb *db, const char *kind, const char *id, const char *part, int fd, char sha[65],
		     struct pc_error *err);

/* Removes every part of (kind, id) and the chunks no other blob uses,
 * unless a record of id or a pending job naming it exists (*deleted, may
 * be NULL, says whether it went). Absent already is PC_OK, *deleted 0. */
int pcd_blobdb_delete(struct pcd_blobdb *db, const char *kind, const char *id, int *deleted, struct pc_error *err);

#endif
