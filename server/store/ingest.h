/* ingest: the one way a model enters the service, for an upload (the
 * POST /v1/models route) and for the model a job leaves (a harden job's,
 * registered by the workers): validated (validate.h, in a child process
 * when the validator says so), its blob committed and its record put, so
 * that both are described and checked alike. */
#ifndef PARACORR_SERVER_INGEST_H
#define PARACORR_SERVER_INGEST_H

#include <jansson.h>
#include <pthread.h>
#include <stdint.h>

#include "blobs.h"
#include "paracorr/error.h"
#include "store.h"
#include "validate.h"

struct pcd_ingest {
	const struct pcd_validator *validator;
	struct pcd_blobs *blobs;
	struct pcd_store *store;
	/* held around admit, the commit and the record (NULL: none): a delete
	 * of the same id holds it too, so it never removes a file an ingest
	 * has just put back */
	pthread_mutex_t *lock;
	/* under the lock, before the commit: PC_OK, or an error (a quota) that
	 * refuses the model. NULL: always admitted. */
	int (*admit)(void *arg, uint64_t bytes, struct pc_error *err);
	void *admit_arg;
};

/* Ingests the model in the finished writer *w (its id id, bytes bytes)
 * for tenant: *w is taken (set to NULL) once committed, and aborted by its
 * owner otherwise. *info is the description (new reference), *existed
 * (may be NULL) whether tenant had the record already. Errors name the
 * model, never the writer's path. */
int pcd_model_ingest(const struct pcd_ingest *in, const char *tenant, struct pcd_blob_writer **w, const char *id,
		     uint64_t bytes, json_t **info, int *existed, struct pc_error *err);

/* After an upload's record was put, new (shared blobs only): PC_OK when
 * its bytes are still stored. A delete on another node that ran between
 * the bytes' commit and the record (it found no record, so it took them)
 * leaves a record without bytes: that record is removed again and the
 * answer is PC_ERR_BUSY, to upload again. Once the record is in, no
 * delete takes the bytes (blobdb.h), so this check is the last one. */
int pcd_upload_bytes_kept(struct pcd_blobs *blobs, struct pcd_store *store, enum pcd_upload u, const char *tenant,
			  const char *id, struct pc_error *err);

#endif
