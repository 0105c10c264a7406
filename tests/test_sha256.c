/* SHA-256 against the FIPS 180-4 example vectors, fed in one piece and in
 * chunks of awkward sizes. */
#include <stdlib.h>
#include <string.h>

#include "sha256.h"
#include "test.h"

static void digest_chunked(const uint8_t *p, size_t len, size_t chunk, char hex[65])
{
	struct pcd_sha256 c;
	uint8_t d[32];
	size_t off;

	pcd_sha256_init(&c);
	for (off = 0; off < len; off += chunk)
		pcd_sha256_update(&c, p + off, len - off < chunk ? len - off : chunk);
	pcd_sha256_final(&c, d);
	pcd_sha256_hex(d, hex);
}

TEST(sha256_fips_vectors)
{
	char hex[65];

	pcd_sha256_hex_of("abc", 3, hex);
	CHECK(strcmp(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad") == 0);
	pcd_sha256_hex_of("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", 56, hex);
	CHECK(strcmp(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1") == 0);
	pcd_sha256_hex_of("", 0, hex);
	CHECK(strcmp(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855") == 0);
}

TEST(sha256_million_a_any_chunking)
{
	static const size_t chunks[] = {1000000, 1, 3, 63, 64, 65, 127, 4097};
	const char *want = "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0";
	uint8_t *p = malloc(1000000);
	char hex[65];
	size_t i;

	REQUIRE(p);
	memset(p, 'a', 1000000);
	for (i = 0; i < sizeof(chunks) / sizeof(chunks[0]); i++) {
		digest_chunked(p, 1000000, chunks[i], hex);
		CHECK_MSG(strcmp(hex, want) == 0, "chunk %zu: %s", chunks[i], hex);
	}
	free(p);
}

TEST(sha256_padding_boundaries)
{
	/* lengths around the 55/56/64-byte padding edges, one piece vs bytewise */
	uint8_t buf[130];
	char a[65], b[65];
	size_t len;

	for (len = 0; len < sizeof(buf); len++)
		buf[len] = (uint8_t)(len * 7 + 1);
	for (len = 50; len < sizeof(buf); len++) {
		pcd_sha256_hex_of(buf, len, a);
		digest_chunked(buf, len, 1, b);
		CHECK_MSG(strcmp(a, b) == 0, "length %zu", len);
	}
}
