/* assets: the table of built-in files. The bytes and sizes come from
 * assets_data.S; a row here says where each is served and as what. */
#include "assets.h"

#include <stdint.h>
#include <string.h>

#define ASSET(sym)                                                                                              \
	extern const unsigned char pcd_asset_##sym[];                                                          \
	extern const uint64_t pcd_asset_##sym##_size
ASSET(openapi_yaml);
ASSET(index_html);
ASSET(app_js);
ASSET(style_css);

static const struct {
	const char *path, *content_type;
	const unsigned char *data;
	const uint64_t *size; /* link-time data, not a constant expression */
} table[] = {
	{"/v1/openapi.yaml", "application/yaml", pcd_asset_openapi_yaml, &pcd_asset_openapi_yaml_size},
	{"/index.html", "text/html; charset=utf-8", pcd_asset_index_html, &pcd_asset_index_html_size},
	{"/app.js", "text/javascript; charset=utf-8", pcd_asset_app_js, &pcd_asset_app_js_size},
	{"/style.css", "text/css; charset=utf-8", pcd_asset_style_css, &pcd_asset_style_css_size},
};

int pcd_asset_find(const char *path, struct pcd_asset *out)
{
	size_t i;

	for (i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
		if (strcmp(table[i].path, path))
			continue;
		out->path = table[i].path;
		out->content_type = table[i].content_type;
		out->data = table[i].data;
		out->size = (size_t)*table[i].size;
		return 1;
	}
	return 0;
}
