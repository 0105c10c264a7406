/* validate: the check of an upload, run in a child process.
 *
 * Parsing a model or a dataset is the daemon's most exposed work: the bytes
 * are anyone's, and the loaders build graphs, fold constants and decode
 * gzip. Run on an HTTP thread, a parser bug would kill the daemon and a
 * costly input would stall it. Here the daemon re-executes its own program
 * in validator mode (pcd_validate_main), under an address-space and a CPU
 * limit, hands it the stored file's path, and reads back one JSON line:
 * the upload's description or the loader's error. A crash, a limit or a
 * timeout then costs that one request its answer, never the daemon. */
#ifndef PARACORR_SERVER_VALIDATE_H
#define PARACORR_SERVER_VALIDATE_H

#include <stdint.h>

#include <jansson.h>

#include "paracorr/error.h"

struct pcd_validator {
	const char *exe; /* the program to run with --validate; NULL: check in this process */
	int max_mb;	 /* the child's address space, MiB (0: no limit) */
	int max_cpu_s;	 /* the child's CPU time, s (0: no limit) */
};

/* The model at path (its id and size for the description): *info is the
 * description (pcd_model_info), or an error from the loader, or one that
 * says the check crashed or ran out of its limits. */
int pcd_validate_model(const struct pcd_validator *v, const char *path, const char *id, uint64_t bytes,
		       json_t **info, struct pc_error *err);

/* The dataset of the files inputs and labels (labels NULL: one file),
 * decoded within max_bytes. */
int pcd_validate_dataset(const struct pcd_validator *v, const char *inputs, const char *labels, const char *id,
			 uint64_t bytes, uint64_t max_bytes, json_t **info, struct pc_error *err);

/* The validator's side: argv[1] is "--validate". Returns the exit status. */
int pcd_validate_main(int argc, char **argv);

#endif
