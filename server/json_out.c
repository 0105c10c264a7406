/* json_out: the JSON text forms (json_out.h). */
#include "json_out.h"

char *pcd_json_text(const json_t *v, enum pcd_json_form form)
{
	size_t flags = form == PCD_JSON_ANSWER ? JSON_INDENT(2) : JSON_COMPACT;

	return v ? json_dumps(v, flags | JSON_REAL_PRECISION(17)) : NULL;
}
