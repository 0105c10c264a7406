/* A job's surroundings for the worker and shard tests, without a daemon:
 * a temp directory with a store (SQLite there, or a PostgreSQL URL), a blob
 * directory, and the MLP fixture and the Fashion-MNIST test set uploaded
 * (committed and recorded for tenant "default"). */
#ifndef PARACORR_TEST_JOB_ENV_H
#define PARACORR_TEST_JOB_ENV_H

#include <limits.h>

#include "blobs.h"
#include "store.h"

struct job_env {
	char dir[PATH_MAX - 64];
	struct pcd_store *store;
	struct pcd_blobs *blobs;
	char model[65], dataset[65];
};

/* The file at path into a new blob writer of b (not finished); NULL on
 * any error. */
struct pcd_blob_writer *job_env_copy_in(struct pcd_blobs *b, const char *path);
/* 0 ready, 1 no Fashion-MNIST (the caller skips), -1 failure; the store at
 * where (a PostgreSQL URL), or NULL: SQLite in the temp dir. */
int job_env_setup(struct job_env *e, const char *where);
void job_env_teardown(struct job_env *e);

#endif
