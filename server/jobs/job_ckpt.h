/* job_ckpt: the checkpoint format of a harden job, resumed from after a
 * restart (job.c writes it after every epoch). */
#ifndef PARACORR_SERVER_JOB_CKPT_H
#define PARACORR_SERVER_JOB_CKPT_H

#include <jansson.h>
#include <stdint.h>

#include "paracorr/error.h"
#include "paracorr/train.h"

/* Writes the trainer's state and the curve so far (epochs_done epochs),
 * through a rename. */
int pcd_ckpt_save(const char *path, const struct pc_trainer *t, int epochs_done, const json_t *curve,
		  struct pc_error *err);
/* Loads a checkpoint into t when there is one that fits it, replacing
 * *curve; returns the epochs it holds, 0 otherwise (a file that does not
 * fit is ignored, not trusted). */
int pcd_ckpt_load(const char *path, struct pc_trainer *t, json_t **curve);
/* Reads a harden job's checkpoint written for a trainer whose state is
 * state_floats floats: returns the epochs it holds, with *state (malloc'd,
 * the caller frees), *steps and *curve (a new array of that many epochs)
 * set; 0 with all three empty when there is no file or it does not fit (no
 * epoch done, which is never written; a wrong magic, size or curve), which
 * the job treats as a fresh start. */
int pcd_ckpt_read(const char *path, int64_t state_floats, float **state, int64_t *steps, json_t **curve);

#endif
