/* paracorr: one error vocabulary for the core and the server.
 *
 * Functions return 0 on success or a PC_ERR_* code, and fill a struct
 * pc_error whose first error wins: later failures while unwinding do not
 * overwrite the message that names the real cause. */
#ifndef PARACORR_ERROR_H
#define PARACORR_ERROR_H

#include <stddef.h>

/* X(code, name, http status, message) */
#define PC_ERROR_LIST(X)                                                          \
	X(PC_OK, "ok", 200, "success")                                            \
	X(PC_ERR_NOMEM, "nomem", 503, "out of memory")                            \
	X(PC_ERR_IO, "io", 500, "input/output error")                             \
	X(PC_ERR_FORMAT, "format", 422, "malformed file")                         \
	X(PC_ERR_UNSUPPORTED, "unsupported", 422, "unsupported feature")          \
	X(PC_ERR_SHAPE, "shape", 422, "shape mismatch")                           \
	X(PC_ERR_INVALID, "invalid", 400, "invalid argument")                     \
	X(PC_ERR_LIMIT, "limit", 413, "size limit exceeded")                      \
	X(PC_ERR_NOT_FOUND, "not_found", 404, "not found")                        \
	X(PC_ERR_CANCELLED, "cancelled", 409, "cancelled")                        \
	X(PC_ERR_INTERNAL, "internal", 500, "internal error")                     \
	X(PC_ERR_CONFLICT, "conflict", 409, "conflict with the current state")    \
	X(PC_ERR_BUSY, "busy", 503, "busy, try again later")                      \
	X(PC_ERR_QUOTA, "quota", 429, "quota exceeded, try again later")          \
	X(PC_ERR_STORAGE_QUOTA, "storage_quota", 507, "storage quota exceeded")   \
	X(PC_ERR_NOSPACE, "nospace", 507, "no space left on the device")          \
	X(PC_ERR_FORBIDDEN, "forbidden", 403, "forbidden to this token's role")

enum pc_status {
#define PC_ERROR_ENUM(code, name, http, msg) code,
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

/* The status of a failed write, mkdir, fsync or rename from its errno: a
 * full device or an exhausted quota (ENOSPC, EDQUOT) is PC_ERR_NOSPACE,          \
 * anything else PC_ERR_IO. */
enum pc_status pc_status_of_errno(int e);

/* "where: text" (or just text) into buf; returns buf. */
const char *pc_error_format(const struct pc_error *err, char *buf, size_t size);

#endif
