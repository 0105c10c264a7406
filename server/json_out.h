/* json_out: the one place that turns a JSON value into text, so that the
 * bytes the daemon and the CLI give out have one form each:
 *
 *   PCD_JSON_ANSWER  indented by 2, no final newline, reals with
 *                    17 significant digits: what the HTTP API answers and
 *                    the CLI prints for a person;
 *   PCD_JSON_COMPACT one line, no spaces, reals with 17 digits: what is
 *                    stored (rows, checkpoints) or sent as a request body.
 *
 * Keys keep their insertion order (jansson's own order); non-ASCII text
 * goes out as UTF-8, not escaped. */
#ifndef PARACORR_SERVER_JSON_OUT_H
#define PARACORR_SERVER_JSON_OUT_H

#include <jansson.h>

enum pcd_json_form { PCD_JSON_ANSWER, PCD_JSON_COMPACT };

/* The text of v in form (caller frees with free()); NULL when v is NULL
 * or out of memory. */
char *pcd_json_text(const json_t *v, enum pcd_json_form form);

#endif
