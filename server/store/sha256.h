/* sha256: SHA-256 (nettle's), streaming, for content-addressed uploads and
 * for the spec hash behind idempotency keys. */
#ifndef PARACORR_SERVER_SHA256_H
#define PARACORR_SERVER_SHA256_H

#include <stddef.h>
#include <stdint.h>

#include <nettle/sha2.h>

struct pcd_sha256 {
	struct sha256_ctx ctx;
};

void pcd_sha256_init(struct pcd_sha256 *c);
void pcd_sha256_update(struct pcd_sha256 *c, const void *data, size_t len);
/* Writes the digest; c must be initialised again before reuse. */
void pcd_sha256_final(struct pcd_sha256 *c, uint8_t out[32]);
/* 64 lowercase hex digits and a NUL. */
void pcd_sha256_hex(const uint8_t d[32], char hex[65]);
/* One-shot: the hex digest of data. */
void pcd_sha256_hex_of(const void *data, size_t len, char hex[65]);

#endif
