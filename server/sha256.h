/* sha256: FIPS 180-4 SHA-256, streaming, for content-addressed uploads and
 * for the spec hash behind idempotency keys. */
#ifndef PARACORR_SERVER_SHA256_H
#define PARACORR_SERVER_SHA256_H

#include <stddef.h>
#include <stdint.h>

struct pcd_sha256 {
	uint32_t h[8];
	uint64_t bytes;	   /* message length so far */
	uint8_t buf[64];   /* partial block */
	size_t fill;	   /* bytes used in buf */
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
