/* problem: every problem object (RFC 9457) the daemon gives out, built
 * from a pc_error and the error table of paracorr/error.h alone: the
 * answers of the HTTP routes, the stored error of a failed job, and the
 * error recovery records for a job it gave up on. The same error is the
 * same object wherever it is caught, at submission or at run time.
 *
 *   type    "/problems/<status name>"   ("/problems/invalid")
 *   title   the row's message            ("invalid argument")
 *   status  the row's HTTP status        (422)
 *   detail  "where: text", or text
 *   errors  by what the row's where names (enum pc_about): a field, as
 *           [{pointer, detail: text}]; a setting, as [{pointer "",
 *           detail: the setting}]; a place (node, file), none.
 *
 * The HTTP layer adds instance, the request path (http_server.c). */
#ifndef PARACORR_SERVER_PROBLEM_H
#define PARACORR_SERVER_PROBLEM_H

#include <jansson.h>
#include <stddef.h>

#include "paracorr/error.h"

/* The problem object for err (PC_OK is taken as PC_ERR_INTERNAL: a caller
 * that lost its error still answers as a failure). Text that is not UTF-8
 * (a client's bytes quoted in a message) goes out with such bytes as '?'.
 * New reference; NULL only when out of memory. */
json_t *pcd_problem_json(const struct pc_error *err);

/* The problem object for err as one line of compact JSON text, the form a
 * failed job's error is stored in (caller frees with free()); NULL only
 * when out of memory. */
char *pcd_problem_json_text(const struct pc_error *err);

/* "/problems/<name>" of code into buf; returns buf. */
const char *pcd_problem_type(enum pc_status code, char *buf, size_t size);

/* The code a problem type names ("/problems/not_found"); -1 when none. */
int pcd_problem_code(const char *type);

/* The one rule from a field path to a JSON pointer (RFC 6901):
 * "corruption.epsilons[2]" -> "/corruption/epsilons/2", '~' and '/'
 * escaped, "" -> "". Returns 0, or -1 when out does not fit. */
int pcd_problem_pointer(const char *path, char *out, size_t size);

/* A JSON string of s with every byte that is not ASCII as '?' when s is
 * not UTF-8 (jansson refuses such strings). New reference; NULL when out of
 * memory. */
json_t *pcd_problem_text(const char *s);

/* A problem object (problem may be NULL: an answer that is not one) as
 * the CLI's text into buf: the detail (no_detail when it has none), then
 * one line "  <pointer>: <detail>" per entry of errors[] that names a
 * field. Cut short to size; returns buf. */
const char *pcd_problem_cli_text(const json_t *problem, const char *no_detail, char *buf, size_t size);

#endif
