/* SHA-256 through nettle, which libmicrohttpd already pulls in: one
 * implementation that others maintain, behind the interface the blob
 * store and the idempotency keys were written against. */
#include "sha256.h"

void pcd_sha256_init(struct pcd_sha256 *c)
{
	sha256_init(&c->ctx);
}

void pcd_sha256_update(struct pcd_sha256 *c, const void *data, size_t len)
{
	sha256_update(&c->ctx, len, data);
}

void pcd_sha256_final(struct pcd_sha256 *c, uint8_t out[32])
{
	sha256_digest(&c->ctx, SHA256_DIGEST_SIZE, out);
}

void pcd_sha256_hex(const uint8_t d[32], char hex[65])
{
	static const char digits[] = "0123456789abcdef";
	int i;

	for (i = 0; i < 32; i++) {
		hex[2 * i] = digits[d[i] >> 4];
		hex[2 * i + 1] = digits[d[i] & 15];
	}
	hex[64] = '\0';
}

void pcd_sha256_hex_of(const void *data, size_t len, char hex[65])
{
	struct pcd_sha256 c;
	uint8_t d[32];

	pcd_sha256_init(&c);
	pcd_sha256_update(&c, data, len);
	pcd_sha256_final(&c, d);
	pcd_sha256_hex(d, hex);
}
