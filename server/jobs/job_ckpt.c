/* job_ckpt: a harden job's checkpoint file (job_ckpt.h): a fixed header,
 * the trainer's state and the training curve so far, written through a
 * rename so that a crash leaves the last complete epoch. */
#include "job_ckpt.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "json_out.h"

#define CKPT_MAGIC "PCCKPT1"

struct ckpt_header {
	char magic[8];
	int32_t epochs_done;
	int32_t pad;
	int64_t steps;
	int64_t state_floats;
	int64_t curve_bytes;
};

int pcd_ckpt_save(const char *path, const struct pc_trainer *t, int epochs_done, const json_t *curve,
		  struct pc_error *err)
{
	struct ckpt_header h = {CKPT_MAGIC, epochs_done, 0, 0, pc_trainer_state_size(t), 0};
	char *text = pcd_json_text(curve, PCD_JSON_COMPACT), tmp[4200];
	float *state = malloc((size_t)h.state_floats * sizeof(float));
	FILE *f = NULL;
	int rc = 0, e;

	tmp[0] = '\0';
	if (!text || !state) {
		rc = pc_error_set(err, PC_ERR_NOMEM, "checkpoint", "out of memory");
		goto out;
	}
	pc_trainer_state_save(t, state, &h.steps);
	h.curve_bytes = (int64_t)strlen(text);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	if (!(f = fopen(tmp, "wb")) || fwrite(&h, sizeof(h), 1, f) != 1 ||
	    fwrite(state, sizeof(float), (size_t)h.state_floats, f) != (size_t)h.state_floats ||
	    fwrite(text, 1, (size_t)h.curve_bytes, f) != (size_t)h.curve_bytes || fflush(f) || fsync(fileno(f))) {
		e = errno;
		rc = pc_error_set(err, pc_status_of_errno(e), "checkpoint", "cannot write: %s", strerror(e));
		goto out;
	}
	e = fclose(f) ? errno : 0;
	f = NULL;
	if (e)
		rc = pc_error_set(err, pc_status_of_errno(e), "checkpoint", "cannot write: %s", strerror(e));
	else if (rename(tmp, path))
		rc = pc_error_set(err, pc_status_of_errno(errno), "checkpoint", "cannot rename into place: %s",
				  strerror(errno));
out:
	if (f)
		fclose(f);
	/* a failed write (a full disk) leaves the previous checkpoint as it was */
	if (rc && tmp[0])
		unlink(tmp);
	free(state);
	free(text);
	return rc;
}

int pcd_ckpt_read(const char *path, int64_t state_floats, float **state_out, int64_t *steps, json_t **curve)
{
	struct ckpt_header h;
	FILE *f = fopen(path, "rb");
	float *state = NULL;
	char *text = NULL;
	json_t *c = NULL;
	int done = 0;

	*state_out = NULL;
	*steps = 0;
	*curve = NULL;
	if (!f)
		return 0;
	/* every field is checked before it sizes anything: the file is
	 * ours, but a crash or a full disk can leave anything in it */
	if (fread(&h, sizeof(h), 1, f) != 1 || memcmp(h.magic, CKPT_MAGIC, 8) || h.epochs_done < 1 ||
	    state_floats < 0 || h.state_floats != state_floats || h.steps < 0 || h.curve_bytes < 0 ||
	    h.curve_bytes > (1 << 24))
		goto out;
	state = malloc((size_t)h.state_floats * sizeof(float) + 1);
	text = calloc(1, (size_t)h.curve_bytes + 1);
	if (!state || !text || fread(state, sizeof(float), (size_t)h.state_floats, f) != (size_t)h.state_floats ||
	    fread(text, 1, (size_t)h.curve_bytes, f) != (size_t)h.curve_bytes)
		goto out;
	c = json_loads(text, 0, NULL);
	if (!json_is_array(c) || json_array_size(c) != (size_t)h.epochs_done)
		goto out;
	*state_out = state;
	*steps = h.steps;
	*curve = c;
	state = NULL;
	c = NULL;
	done = h.epochs_done;
out:
	fclose(f);
	json_decref(c);
	free(state);
	free(text);
	return done;
}

int pcd_ckpt_load(const char *path, struct pc_trainer *t, json_t **curve)
{
	float *state;
	int64_t steps;
	json_t *c;
	int done = pcd_ckpt_read(path, pc_trainer_state_size(t), &state, &steps, &c);

	if (!done)
		return 0;
	json_decref(*curve);
	*curve = c;
	pc_trainer_state_load(t, state, steps);
	free(state);
	return done;
}

