/* problem: problem objects from the error table (problem.h). Nothing here
 * chooses a status or a title: a new kind of failure is a row of
 * PC_ERROR_LIST, and every route, worker and the store's recovery then
 * describe it the same way. */
#include "problem.h"

#include "json_out.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TYPE_PREFIX "/problems/"

const char *pcd_problem_type(enum pc_status code, char *buf, size_t size)
{
	snprintf(buf, size, TYPE_PREFIX "%s", pc_status_name(code));
	return buf;
}

int pcd_problem_code(const char *type)
{
	size_t n = strlen(TYPE_PREFIX);

	if (!type || strncmp(type, TYPE_PREFIX, n))
		return -1;
	return pc_status_parse(type + n);
}

int pcd_problem_pointer(const char *path, char *out, size_t size)
{
	size_t n = 0;

#define PUT(c)                                                                                                    \
	do {                                                                                                      \
		if (n + 1 >= size)                                                                                \
			return -1;                                                                                \
		out[n++] = (c);                                                                                   \
	} while (0)

	if (!size)
		return -1;
	if (*path)
		PUT('/');
	for (const char *p = path; *p; p++) {
		switch (*p) {
		case '.':
			PUT('/');
			break;
		case '[':
			/* "a[2]" is member a, element 2 */
			if (p != path)
				PUT('/');
			break;
		case ']':
			break;
		case '~':
			PUT('~');
			PUT('0');
			break;
		case '/':
			PUT('~');
			PUT('1');
			break;
		default:
			PUT(*p);
		}
	}
#undef PUT
	out[n] = '\0';
	return 0;
}

json_t *pcd_problem_text(const char *s)
{
	json_t *j = json_string(s);
	char *copy;
	size_t n;

	if (j)
		return j;
	n = strlen(s);
	if (!(copy = malloc(n + 1)))
		return NULL;
	for (size_t i = 0; i < n; i++)
		copy[i] = (unsigned char)s[i] < 0x80 ? s[i] : '?';
	copy[n] = '\0';
	j = json_string(copy);
	free(copy);
	return j;
}

/* errors: [{pointer, detail}] by what the row says where names; NULL (and
 * *ok set) when the row has none. */
static json_t *field_errors(const struct pc_error *err, enum pc_status code, int *ok)
{
	char pointer[sizeof(err->where) * 2 + 2];

	*ok = 1;
	if (!err->where[0])
		return NULL;
	switch (pc_status_about(code)) {
	case PC_ABOUT_FIELD:
		if (pcd_problem_pointer(err->where, pointer, sizeof(pointer)))
			return NULL;
		break;
	case PC_ABOUT_SETTING:
		/* the request as a whole went past the named setting */
		pointer[0] = '\0';
		break;
	case PC_ABOUT_PLACE:
		return NULL;
	}
	{
		json_t *e = json_pack("[{s:s, s:o}]", "pointer", pointer, "detail",
				      pcd_problem_text(pc_status_about(code) == PC_ABOUT_SETTING ? err->where
												 : err->text));
		*ok = e != NULL;
		return e;
	}
}

json_t *pcd_problem_json(const struct pc_error *in)
{
	struct pc_error e = *in, *err = &e;
	enum pc_status code = e.code == PC_OK || (unsigned)e.code >= PC_ERR_COUNT ? PC_ERR_INTERNAL : e.code;
	char type[64], detail[sizeof(e.where) + sizeof(e.text) + 4];
	json_t *p, *errors;
	int ok;

	e.code = code;
	pc_error_format(err, detail, sizeof(detail));
	p = json_pack("{s:s, s:s, s:i, s:o}", "type", pcd_problem_type(code, type, sizeof(type)), "title",
		      pc_status_message(code), "status", pc_status_http(code), "detail", pcd_problem_text(detail));
	if (!p)
		return NULL;
	errors = field_errors(err, code, &ok);
	if (!ok || (errors && json_object_set_new(p, "errors", errors))) {
		json_decref(p);
		return NULL;
	}
	return p;
}

char *pcd_problem_json_text(const struct pc_error *err)
{
	json_t *p = pcd_problem_json(err);
	char *text = pcd_json_text(p, PCD_JSON_COMPACT);

	json_decref(p);
	return text;
}

const char *pcd_problem_cli_text(const json_t *problem, const char *no_detail, char *buf, size_t size)
{
	const char *detail = json_string_value(json_object_get(problem, "detail"));
	const json_t *errors = json_object_get(problem, "errors");
	size_t i, n;

	snprintf(buf, size, "%s", detail ? detail : no_detail);
	/* the first line is the detail; each field the problem names is one
	 * more line, so that a person sees every field to fix at once */
	for (i = 0; i < json_array_size(errors); i++) {
		const json_t *e = json_array_get(errors, i);
		const char *ptr = json_string_value(json_object_get(e, "pointer"));
		const char *text = json_string_value(json_object_get(e, "detail"));

		if (!ptr || !ptr[0])
			continue;
		n = strlen(buf);
		snprintf(buf + n, size - n, "\n  %s: %s", ptr, text ? text : "invalid");
	}
	return buf;
}
