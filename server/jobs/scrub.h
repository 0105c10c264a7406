/* scrub: the data directory is the operator's business. */
#ifndef PARACORR_SERVER_SCRUB_H
#define PARACORR_SERVER_SCRUB_H

#include "paracorr/error.h"

/* Replaces path by name in err's where and text: the data directory is the
 * operator's business, so errors a client sees name the part ("model",
 * "inputs") instead. Bounded by the buffers; NULL or "" path: nothing. */
void pcd_error_hide_path(struct pc_error *err, const char *path, const char *name);

#endif
