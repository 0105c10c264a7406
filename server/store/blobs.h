/* blobs: uploaded models and datasets as content-addressed files under a
 * data directory.
 *
 *   <datadir>/tmp/            uploads being written (removed on abort)
 *   <datadir>/models/<id>.onnx
 *   <datadir>/datasets/<id>/inputs   and, when given, .../labels
 *   <datadir>/artifacts/<job id>/    a harden job's model.onnx and checkpoint.bin
 *                                    (the model's id is a row of the store)
 *
 * A model's id is the sha256 of its bytes. A dataset's id is
 *   sha256("inputs\0" || hex(sha256(inputs)) || "labels\0" || hex(sha256(labels)))
 * where hex() is the 64 lowercase digits; when there is no labels part
 * (a safetensors file holds both) the "labels\0" || ... part is omitted.
 *
 * Durability: a writer streams into a temp file (O_CLOEXEC, 0600) while
 * hashing; finish fsyncs it; commit renames it into place and fsyncs the
 * directory, so once a commit returns 0 the upload survives a crash. A
 * commit of content that already exists drops the temp file instead.
 *
 * Ids are validated (64 lowercase hex digits) before any path is built
 * from them: an id from a URL can never name another file.
 *
 * Shared (pcd_blobs_share, with a PostgreSQL store): a commit also stores
 * the bytes in the database (blobdb.h) before it returns, and models/ and
 * datasets/ become this node's cache of what the database holds, which
 * jobs reach through pcd_blobs_*_acquire: verified by hash at each use,
 * fetched when absent or damaged, bounded, least recently used first out.
 * Artifacts stay the node's own. */
#ifndef PARACORR_SERVER_BLOBS_H
#define PARACORR_SERVER_BLOBS_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "paracorr/error.h"

struct pcd_blobs;
struct pcd_blob_writer;

/* 1 when id is exactly 64 lowercase hex digits. */
int pcd_blobs_id_valid(const char *id);
/* A job id as the store makes them: "j-" and 16 lowercase hex digits. */
int pcd_blobs_job_id_valid(const char *id);

/* Creates datadir and its tmp, models and datasets subdirectories as
 * needed, and removes leftover temp files of an earlier run. *out is owned
 * by the caller (pcd_blobs_free). */
int pcd_blobs_open(const char *datadir, struct pcd_blobs **out, struct pc_error *err);
void pcd_blobs_free(struct pcd_blobs *b);
/* Shares the uploads through the PostgreSQL database at url (blobdb.h):
 * a commit stores the bytes there before it returns, and the directories
 * become this node's cache of them, at most cache_max_bytes (0: no bound;
 * least recently used first out, never an upload a job holds). chunk_bytes
 * 0 is the default chunk size (1 MiB). Call once, before any other use. */
int pcd_blobs_share(struct pcd_blobs *b, const char *url, uint64_t cache_max_bytes, size_t chunk_bytes,
		    struct pc_error *err);
int pcd_blobs_shared(const struct pcd_blobs *b);
/* The lock every change of an upload's file together with its record runs
 * under: an ingest's (file into place, record) and a delete's (record out,
 * file out when it was the last), from the routes and from the workers
 * registering a job's model alike, so a delete can never remove a file
 * that a concurrent ingest of the same bytes has just put back and
 * recorded. Both sections are short: a rename and an insert, or a delete
 * and an unlink. */
pthread_mutex_t *pcd_blobs_record_lock(struct pcd_blobs *b);

/* Opens a temp file in datadir/tmp. max_bytes 0 means no limit. *w is
 * owned by the caller until it passes it to abort or a commit. */
int pcd_blob_writer_begin(struct pcd_blobs *b, uint64_t max_bytes, struct pcd_blob_writer **w,
			  struct pc_error *err);
/* Appends and hashes. PC_ERR_LIMIT (HTTP 413) once more than max_bytes
 * have been written in all; the writer should then be aborted.
 * PC_ERR_NOSPACE (507) when the disk is full: the temp file is removed
 * at once, and the writer can only be aborted. */
int pcd_blob_writer_write(struct pcd_blob_writer *w, const void *buf, size_t len, struct pc_error *err);
uint64_t pcd_blob_writer_bytes(const struct pcd_blob_writer *w);
/* The temp file's path, for validating the content before committing. */
const char *pcd_blob_writer_path(const struct pcd_blob_writer *w);
/* Closes and removes the temp file and frees w. NULL is fine. */
void pcd_blob_writer_abort(struct pcd_blob_writer *w);
/* fsyncs the temp file and gives the sha256 hex of its content. The file
 * stays open for reading through pcd_blob_writer_path; no more writes. */
int pcd_blob_writer_finish(struct pcd_blob_writer *w, char id[65], struct pc_error *err);

/* Moves a finished writer's file to models/<id>.onnx and fsyncs the
 * directory. Takes w in every case (freed, temp removed on failure).
 * *existed (may be NULL) says the model was already there. */
int pcd_blobs_commit_model(struct pcd_blobs *b, struct pcd_blob_writer *w, int *existed, struct pc_error *err);

/* The dataset id from the parts' hex digests (labels_hex NULL: no labels). */
void pcd_blobs_dataset_id(const char inputs_hex[65], const char *labels_hex, char id[65]);

/* Moves finished writers into datasets/<id>/ (labels may be NULL) and
 * fsyncs; id receives the dataset id. Takes both writers in every case. */
int pcd_blobs_commit_dataset(struct pcd_blobs *b, struct pcd_blob_writer *inputs, struct pcd_blob_writer *labels,
			     char id[65], int *existed, struct pc_error *err);

/* Paths of committed blobs (whether or not they exist). PC_ERR_INVALID for
 * a malformed id, PC_ERR_LIMIT when buf is too small. */
int pcd_blobs_model_path(const struct pcd_blobs *b, const char *id, char *buf, size_t size, struct pc_error *err);
/* *has_labels (may be NULL) says whether the labels file exists. */
int pcd_blobs_dataset_paths(const struct pcd_blobs *b, const char *id, char *inputs, char *labels, size_t size,
			    int *has_labels, struct pc_error *err);
/* A job's artifacts (a harden job's model and checkpoint):
 * <datadir>/artifacts/<job id>/, created when create is set. PC_ERR_INVALID
 * for a malformed job id. */
int pcd_blobs_artifacts_dir(const struct pcd_blobs *b, const char *job_id, int create, char *buf, size_t size,
			    struct pc_error *err);
/* Removes a job's artifacts, if any. */
void pcd_blobs_delete_artifacts(const struct pcd_blobs *b, const char *job_id);
/* 1 when the model / dataset is present on disk (shared: in the
 * database). */
int pcd_blobs_model_exists(const struct pcd_blobs *b, const char *id);
int pcd_blobs_dataset_exists(const struct pcd_blobs *b, const char *id);

/* PC_OK when the upload's bytes are stored (shared: in the database),
 * PC_ERR_NOT_FOUND when not, another error when that cannot be told now. */
int pcd_blobs_stored(const struct pcd_blobs *b, int dataset, const char *id, struct pc_error *err);

/* The file of a model / a dataset's parts for a job to read, in path
 * (inputs, labels; *has_labels may be NULL). PC_ERR_NOT_FOUND when there
 * is no such upload. Shared: the cached copy is used when its sha256
 * still gives the id, else (absent, or damaged on disk: removed) it is
 * fetched from the database into the cache; the upload is then held, never
 * evicted, until the matching pcd_blobs_release. Not shared: the paths
 * of the data directory, nothing held (release is a no-op). */
int pcd_blobs_model_acquire(struct pcd_blobs *b, const char *id, char *path, size_t size, struct pc_error *err);
int pcd_blobs_dataset_acquire(struct pcd_blobs *b, const char *id, char *inputs, char *labels, size_t size,
			      int *has_labels, struct pc_error *err);
/* dataset: 0 for a model, 1 for a dataset. */
void pcd_blobs_release(struct pcd_blobs *b, int dataset, const char *id);

/* Remove a committed blob; PC_ERR_NOT_FOUND when absent. Shared: the
 * database's copy goes (blobdb.h says when it stays) and this node's
 * cached one, PC_OK whether or not either was there. */
int pcd_blobs_delete_model(struct pcd_blobs *b, const char *id, struct pc_error *err);
int pcd_blobs_delete_dataset(struct pcd_blobs *b, const char *id, struct pc_error *err);

#endif
