/* assets: files built into the daemon (server/assets_data.S), found by the
 * URL path they are served at. */
#ifndef PARACORR_SERVER_ASSETS_H
#define PARACORR_SERVER_ASSETS_H

#include <stddef.h>

struct pcd_asset {
	const char *path; /* "/v1/openapi.yaml" */
	const char *content_type;
	const unsigned char *data; /* NUL-terminated; size excludes the NUL */
	size_t size;
};

/* Fills *out with the asset served at path: 1, or 0 when there is none. */
int pcd_asset_find(const char *path, struct pcd_asset *out);

#endif
