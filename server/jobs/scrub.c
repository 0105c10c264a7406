/* scrub: data-directory paths out of the errors a client sees (scrub.h). */
#include "scrub.h"

#include <stdio.h>
#include <string.h>

/* Replaces every occurrence of needle in buf by repl, in place. */
static void replace_all(char *buf, size_t size, const char *needle, const char *repl)
{
	size_t nl = strlen(needle), rl = strlen(repl);
	char *p = buf, tmp[1024];

	if (!nl)
		return;
	while ((p = strstr(p, needle))) {
		snprintf(tmp, sizeof(tmp), "%s", p + nl);
		snprintf(p, size - (size_t)(p - buf), "%s%s", repl, tmp);
		if ((size_t)(p - buf) + rl >= size)
			break;
		p += rl;
	}
}

void pcd_error_hide_path(struct pc_error *err, const char *path, const char *name)
{
	if (!err || !path)
		return;
	replace_all(err->where, sizeof(err->where), path, name);
	replace_all(err->text, sizeof(err->text), path, name);
}

