/* names: names and labels (names.h). */
#include "names.h"

#include <string.h>

/* Whether s[0..n) is UTF-8 without control characters; why says what is
 * wrong otherwise. */
static int printable_utf8(const unsigned char *s, size_t n, const char **why)
{
	size_t i = 0;

	while (i < n) {
		unsigned c = s[i], len, cp, k;

		if (c < 0x80) {
			if (c < 0x20 || c == 0x7f)
				return *why = "has a control character", 0;
			i++;
			continue;
		}
		len = c >= 0xf0 && c <= 0xf4 ? 4 : c >= 0xe0 ? 3 : c >= 0xc2 && c < 0xe0 ? 2 : 0;
		if (!len || c >= 0xf5 || i + len > n)
			return *why = "is not valid UTF-8", 0;
		cp = c & (0x7f >> len);
		for (k = 1; k < len; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return *why = "is not valid UTF-8", 0;
			cp = cp << 6 | (s[i + k] & 0x3f);
		}
		/* overlong forms, surrogates and beyond U+10FFFF */
		if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
		    (cp >= 0xd800 && cp <= 0xdfff))
			return *why = "is not valid UTF-8", 0;
		if (cp >= 0x80 && cp <= 0x9f)
			return *why = "has a control character", 0;
		i += len;
	}
	return 1;
}

static int text_check(const char *field, const char *s, int allow_empty, enum pc_status code, struct pc_error *err)
{
	size_t n = s ? strlen(s) : 0;
	const char *why = NULL;

	if (!s || (!n && !allow_empty))
		return pc_error_set(err, code, field, "must not be empty");
	if (n > PCD_NAME_MAX)
		return pc_error_set(err, code, field, "is %zu bytes, above %d", n, PCD_NAME_MAX);
	if (!printable_utf8((const unsigned char *)s, n, &why))
		return pc_error_set(err, code, field, "%s", why);
	return PC_OK;
}

int pcd_name_check(const char *field, const char *name, enum pc_status code, struct pc_error *err)
{
	return text_check(field, name, 0, code, err);
}

static int key_valid(const char *k, size_t n)
{
	if (n < 1 || n > PCD_LABEL_KEY_MAX)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!((k[i] >= 'a' && k[i] <= 'z') || (k[i] >= 'A' && k[i] <= 'Z') || (k[i] >= '0' && k[i] <= '9') ||
		      k[i] == '.' || k[i] == '_' || k[i] == '-'))
			return 0;
	return 1;
}

int pcd_labels_check(const json_t *labels, struct pc_error *err)
{
	const char *key;
	json_t *v;
	char where[96];
	int rc;

	if (!json_is_object(labels))
		return pc_error_set(err, PC_ERR_INVALID, "labels", "must be an object of key: string pairs");
	if (json_object_size(labels) > PCD_LABELS_MAX)
		return pc_error_set(err, PC_ERR_INVALID, "labels", "has %zu labels, above %d", json_object_size(labels),
				    PCD_LABELS_MAX);
	json_object_foreach((json_t *)labels, key, v)
	{
		if (!key_valid(key, strlen(key)))
			return pc_error_set(err, PC_ERR_INVALID, "labels",
					    "key must be 1 to %d of A-Z a-z 0-9 _ . -", PCD_LABEL_KEY_MAX);
		snprintf(where, sizeof(where), "labels.%s", key);
		if (!json_is_string(v))
			return pc_error_set(err, PC_ERR_INVALID, where, "must be a string");
		if ((rc = text_check(where, json_string_value(v), 1, PC_ERR_INVALID, err)))
			return rc;
	}
	return PC_OK;
}

int pcd_label_filter_parse(const char *s, char key[PCD_LABEL_KEY_MAX + 1], const char **value,
			   struct pc_error *err)
{
	const char *eq = strchr(s, '=');

	if (!eq || !key_valid(s, (size_t)(eq - s)))
		return pc_error_set(err, PC_ERR_BAD_REQUEST, "label", "must be KEY=VALUE with KEY 1 to %d of A-Z a-z 0-9 _ . -",
				    PCD_LABEL_KEY_MAX);
	memcpy(key, s, (size_t)(eq - s));
	key[eq - s] = '\0';
	*value = eq + 1;
	return text_check("label", *value, 1, PC_ERR_BAD_REQUEST, err);
}
