/* error: the status table and first-error-wins recording. The table is an
 * X-macro in error.h so the enum, names, messages and HTTP statuses can
 * never drift apart. */
#include "paracorr/error.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

struct status_row {
	const char *name;
	int http;
	enum pc_about about;
	const char *message;
};

static const struct status_row status_table[] = {
#define PC_ERROR_ROW(code, name, http, about, msg) [code] = {name, http, about, msg},
	PC_ERROR_LIST(PC_ERROR_ROW)
#undef PC_ERROR_ROW
};

_Static_assert(sizeof(status_table) / sizeof(status_table[0]) == PC_ERR_COUNT,
	       "status table out of step with the enum");

int pc_error_set(struct pc_error *err, enum pc_status code, const char *where, const char *fmt, ...)
{
	va_list ap;

	if (!err || err->code != PC_OK)
		return code;
	err->code = code;
	snprintf(err->where, sizeof(err->where), "%s", where ? where : "");
	va_start(ap, fmt);
	vsnprintf(err->text, sizeof(err->text), fmt, ap);
	va_end(ap);
	return code;
}

void pc_error_clear(struct pc_error *err)
{
	if (err)
		memset(err, 0, sizeof(*err));
}

const char *pc_status_name(enum pc_status code)
{
	return (unsigned)code < PC_ERR_COUNT ? status_table[code].name : "unknown";
}

const char *pc_status_message(enum pc_status code)
{
	return (unsigned)code < PC_ERR_COUNT ? status_table[code].message : "unknown error";
}

int pc_status_http(enum pc_status code)
{
	return (unsigned)code < PC_ERR_COUNT ? status_table[code].http : 500;
}

/* errno values with a status of their own; every other one is PC_ERR_IO */
static const struct {
	int e;
	enum pc_status code;
} errno_table[] = {
	{ENOSPC, PC_ERR_NOSPACE},
	{EDQUOT, PC_ERR_NOSPACE},
};

enum pc_status pc_status_of_errno(int e)
{
	for (size_t i = 0; i < sizeof(errno_table) / sizeof(errno_table[0]); i++)
		if (errno_table[i].e == e)
			return errno_table[i].code;
	return PC_ERR_IO;
}

enum pc_about pc_status_about(enum pc_status code)
{
	return (unsigned)code < PC_ERR_COUNT ? status_table[code].about : PC_ABOUT_PLACE;
}

int pc_status_parse(const char *name)
{
	for (int c = 0; name && c < PC_ERR_COUNT; c++)
		if (!strcmp(status_table[c].name, name))
			return c;
	return -1;
}

const char *pc_error_format(const struct pc_error *err, char *buf, size_t size)
{
	const char *text = err->text[0] ? err->text : pc_status_message(err->code);

	if (err->where[0])
		snprintf(buf, size, "%s: %s", err->where, text);
	else
		snprintf(buf, size, "%s", text);
	return buf;
}
