/* names: what a name or a label of an upload or a job may be. Names are
 * for people: any printable UTF-8 up to PCD_NAME_MAX bytes; label keys are
 * for filters and scripts: [A-Za-z0-9_.-]{1,63}. */
#ifndef PARACORR_SERVER_NAMES_H
#define PARACORR_SERVER_NAMES_H

#include <jansson.h>

#include "paracorr/error.h"

#define PCD_NAME_MAX 128	/* bytes of a name or a label value */
#define PCD_LABEL_KEY_MAX 63
#define PCD_LABELS_MAX 32

/* A name: 1..PCD_NAME_MAX bytes of valid UTF-8 without control characters
 * (C0, DEL, C1). Else code (PC_ERR_BAD_REQUEST for a query parameter,
 * PC_ERR_INVALID for a body field) naming field. */
int pcd_name_check(const char *field, const char *name, enum pc_status code, struct pc_error *err);
/* Labels: an object of at most PCD_LABELS_MAX key: string pairs, keys as
 * above, values names (may be empty). PC_ERR_INVALID naming
 * "labels" or "labels.KEY". */
int pcd_labels_check(const json_t *labels, struct pc_error *err);
/* "k=v" of a ?label= filter split into key (a buffer of
 * PCD_LABEL_KEY_MAX + 1) and *value (into s); PC_ERR_BAD_REQUEST naming
 * "label" when malformed. */
int pcd_label_filter_parse(const char *s, char key[PCD_LABEL_KEY_MAX + 1], const char **value,
			   struct pc_error *err);

#endif
