/* paracorr: one error vocabulary for the core and the server.
 *
 * Functions return 0 on success or a PC_ERR_* code, and fill a struct
 * pc_error whose first error wins: later failures while unwinding do not
 * overwrite the message that names the real cause. */
#ifndef PARACORR_ERROR_H
#define PARACORR_ERROR_H

#include <stddef.h>

/* What a row's `where` names, for the problem objects the server builds
 * from an error: a field of the request (a spec field path such as
 * "corruption.epsilons[2]", a query parameter), which becomes a JSON
 * pointer; a setting that bounded the request (its name); or only a place
 * (a node, a file, a part), which is told in the detail alone. */
enum pc_about {
	PC_ABOUT_PLACE,
	PC_ABOUT_FIELD,
	PC_ABOUT_SETTING,
};

/* X(code, name, http status, what where names, message). The name is the
 * API's problem type (/problems/<name>) and the message its title. */
#define PC_ERROR_LIST(X)                                                                                    \
	X(PC_OK, "ok", 200, PC_ABOUT_PLACE, "success")                                                      \
	X(PC_ERR_NOMEM, "nomem", 503, PC_ABOUT_PLACE, "out of memory")                                      \
	X(PC_ERR_IO, "io", 500, PC_ABOUT_PLACE, "input/output error")                                       \
	X(PC_ERR_FORMAT, "format", 422, PC_ABOUT_PLACE, "malformed file")                                   \
	X(PC_ERR_UNSUPPORTED, "unsupported", 422, PC_ABOUT_PLACE, "unsupported feature")                    \
	X(PC_ERR_SHAPE, "shape", 422, PC_ABOUT_PLACE, "shape mismatch")                                     \
	X(PC_ERR_INVALID, "invalid", 422, PC_ABOUT_FIELD, "invalid argument")                               \
	X(PC_ERR_LIMIT, "limit", 413, PC_ABOUT_PLACE, "size limit exceeded")                                \
	X(PC_ERR_NOT_FOUND, "not_found", 404, PC_ABOUT_PLACE, "not found")                                  \
	X(PC_ERR_CANCELLED, "cancelled", 409, PC_ABOUT_PLACE, "cancelled")                                  \
	X(PC_ERR_INTERNAL, "internal", 500, PC_ABOUT_PLACE, "internal error")                               \
	X(PC_ERR_CONFLICT, "conflict", 409, PC_ABOUT_PLACE, "conflict with the current state")              \
	X(PC_ERR_BUSY, "busy", 503, PC_ABOUT_PLACE, "busy, try again later")                                \
	X(PC_ERR_QUOTA, "quota", 429, PC_ABOUT_SETTING, "quota exceeded, try again later")                  \
	X(PC_ERR_BAD_REQUEST, "bad_request", 400, PC_ABOUT_FIELD, "malformed request")                      \
	X(PC_ERR_UNAUTHORIZED, "unauthorized", 401, PC_ABOUT_PLACE, "a valid bearer token is required")     \
	X(PC_ERR_METHOD, "method_not_allowed", 405, PC_ABOUT_PLACE, "method not allowed")                   \
	X(PC_ERR_MEDIA_TYPE, "media_type", 415, PC_ABOUT_PLACE, "unsupported media type")                   \
	X(PC_ERR_MISDIRECTED, "misdirected", 421, PC_ABOUT_PLACE, "request for another server")             \
	X(PC_ERR_TOO_MUCH_WORK, "too_much_work", 422, PC_ABOUT_SETTING, "estimated work over the limit")    \
	X(PC_ERR_GAVE_UP, "gave_up", 500, PC_ABOUT_PLACE, "given up after every attempt")                   \
	X(PC_ERR_STORAGE_QUOTA, "storage_quota", 507, PC_ABOUT_SETTING, "storage quota exceeded")          \
	X(PC_ERR_NOSPACE, "nospace", 507, PC_ABOUT_PLACE, "no space left on the device")                  \
	X(PC_ERR_FORBIDDEN, "forbidden", 403, PC_ABOUT_PLACE, "forbidden to this token's role")             \
	X(PC_ERR_LEASE_LOST, "lease_lost", 409, PC_ABOUT_PLACE, "the job's lease was lost to another attempt")

enum pc_status {
#define PC_ERROR_ENUM(code, name, http, about, msg) code,
	PC_ERROR_LIST(PC_ERROR_ENUM)
#undef PC_ERROR_ENUM
	PC_ERR_COUNT
};

struct pc_error {
	enum pc_status code;
	char where[128]; /* field, node, op or byte offset the error is about */
	char text[512];
};

/* Record an error unless one is already recorded; returns code so that
 * callers can write `return pc_error_set(err, ...)`. err may be NULL. */
int pc_error_set(struct pc_error *err, enum pc_status code, const char *where, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

void pc_error_clear(struct pc_error *err);

const char *pc_status_name(enum pc_status code);
const char *pc_status_message(enum pc_status code);
int pc_status_http(enum pc_status code);
enum pc_about pc_status_about(enum pc_status code);
/* The code named name ("not_found"); -1 when no row has that name. */
int pc_status_parse(const char *name);

/* The status of a failed write, mkdir, fsync or rename from its errno: a
 * full device or an exhausted quota (ENOSPC, EDQUOT) is PC_ERR_NOSPACE,          \
 * anything else PC_ERR_IO. */
enum pc_status pc_status_of_errno(int e);

/* "where: text" (or just text) into buf; returns buf. */
const char *pc_error_format(const struct pc_error *err, char *buf, size_t size);

#endif
