/* shard: the prefix's binary form, the part's JSON envelope and the
 * dealing of items (shard.h). The binary form is written and read byte by
 * byte, so it is the same file on every host whatever its endianness. */
#include "paracorr/shard.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "paracorr/report.h"

static const char prefix_magic[8] = {'P', 'C', 'P', 'R', 'E', 'F', 'I', 'X'};

int pc_shard_count(int n, int64_t m)
{
	if (n < 1)
		n = 1;
	if (n > PC_SHARD_MAX)
		n = PC_SHARD_MAX;
	if ((int64_t)n > m)
		n = m > 0 ? (int)m : 1;
	return n;
}

void pc_shard_range(int i, int n, int64_t m, int64_t *first, int64_t *last)
{
	*first = (int64_t)i * m / n;
	*last = (int64_t)(i + 1) * m / n;
}

static void put_u64(unsigned char *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

static uint64_t get_u64(const unsigned char *p)
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

static void put_f64(unsigned char *p, double d)
{
	uint64_t v;

	memcpy(&v, &d, sizeof(v));
	put_u64(p, v);
}

static double get_f64(const unsigned char *p)
{
	uint64_t v = get_u64(p);
	double d;

	memcpy(&d, &v, sizeof(d));
	return d;
}

int pc_shard_prefix_encode(const struct pc_study_prefix *p, unsigned char **buf, size_t *len, struct pc_error *err)
{
	size_t n = PC_SHARD_PREFIX_HEADER + (size_t)p->count * 4;
	unsigned char *b;

	*buf = NULL;
	*len = 0;
	if (p->count < 0 || (uint64_t)p->count > (SIZE_MAX - PC_SHARD_PREFIX_HEADER) / 4)
		return pc_error_set(err, PC_ERR_LIMIT, "prefix", "a gradient of %lld floats", (long long)p->count);
	if (!(b = malloc(n)))
		return pc_error_set(err, PC_ERR_NOMEM, "prefix", "out of memory for %zu bytes", n);
	memcpy(b, prefix_magic, 8);
	/* version, then four zero bytes */
	put_u64(b + 8, PC_SHARD_PREFIX_VERSION);
	put_u64(b + 16, (uint64_t)p->count);
	put_u64(b + 24, (uint64_t)p->clean.samples);
	put_u64(b + 32, (uint64_t)p->clean.correct);
	put_f64(b + 40, p->clean.loss);
	put_f64(b + 48, p->clean.accuracy);
	put_u64(b + 56, (uint64_t)p->clean.sequence);
	put_u64(b + 64, (uint64_t)p->clean.tokens);
	put_f64(b + 72, p->clean.perplexity);
	put_u64(b + 80, (uint64_t)p->clean.non_finite);
	for (int64_t i = 0; i < p->count; i++) {
		uint32_t v;
		memcpy(&v, &p->grad[i], 4);
		for (int k = 0; k < 4; k++)
			b[PC_SHARD_PREFIX_HEADER + (size_t)i * 4 + (size_t)k] = (unsigned char)(v >> (8 * k));
	}
	*buf = b;
	*len = n;
	return PC_OK;
}

static int bad_at(struct pc_error *err, size_t off, const char *what)
{
	char where[32];

	snprintf(where, sizeof(where), "byte %zu", off);
	return pc_error_set(err, PC_ERR_FORMAT, where, "prefix state: byte %zu: %s", off, what);
}

int pc_shard_prefix_decode(const unsigned char *buf, size_t len, int64_t parameters, struct pc_study_prefix **out,
			   struct pc_error *err)
{
	struct pc_study_prefix *p;
	uint64_t version, count, n;

	*out = NULL;
	if (len < 8 || memcmp(buf, prefix_magic, 8))
		return bad_at(err, 0, "not a paracorr prefix state (no \"PCPREFIX\" magic)");
	if (len < PC_SHARD_PREFIX_HEADER)
		return bad_at(err, len, "the header ends early (88 bytes)");
	if ((version = get_u64(buf + 8)) != PC_SHARD_PREFIX_VERSION)
		return bad_at(err, 8, "a version this build does not read (it reads 1)");
	count = get_u64(buf + 16);
	if (count != (uint64_t)parameters)
		return bad_at(err, 16, "a gradient count other than the model's parameter count");
	n = PC_SHARD_PREFIX_HEADER + count * 4;
	if (len != n)
		return bad_at(err, len < n ? len : n, len < n ? "the gradient ends early" : "bytes after the gradient");
	if (!(p = calloc(1, sizeof(*p))) || !(p->grad = malloc((size_t)count * 4 + 1))) {
		free(p);
		return pc_error_set(err, PC_ERR_NOMEM, "prefix", "out of memory");
	}
	p->count = (int64_t)count;
	p->clean.samples = (int64_t)get_u64(buf + 24);
	p->clean.correct = (int64_t)get_u64(buf + 32);
	p->clean.loss = get_f64(buf + 40);
	p->clean.accuracy = get_f64(buf + 48);
	p->clean.sequence = (int)get_u64(buf + 56);
	p->clean.tokens = (int64_t)get_u64(buf + 64);
	p->clean.perplexity = get_f64(buf + 72);
	p->clean.non_finite = (int64_t)get_u64(buf + 80);
	for (uint64_t i = 0; i < count; i++) {
		const unsigned char *q = buf + PC_SHARD_PREFIX_HEADER + i * 4;
		uint32_t v = (uint32_t)q[0] | (uint32_t)q[1] << 8 | (uint32_t)q[2] << 16 | (uint32_t)q[3] << 24;
		memcpy(&p->grad[i], &v, 4);
	}
	*out = p;
	return PC_OK;
}

int pc_shard_part_encode(const json_t *part, char **text, struct pc_error *err)
{
	json_t *env =
	    json_pack("{s:s, s:i, s:O}", "format", "paracorr-shard", "version", PC_SHARD_PART_VERSION, "part", part);

	*text = env ? pc_report_dumps(env, JSON_COMPACT | JSON_REAL_PRECISION(17)) : NULL;
	json_decref(env);
	return *text ? PC_OK : pc_error_set(err, PC_ERR_NOMEM, "shard", "out of memory writing the shard's part");
}

int pc_shard_part_decode(const char *text, size_t len, json_t **part, struct pc_error *err)
{
	json_error_t jerr;
	json_t *env, *v, *p;
	char where[32];

	*part = NULL;
	if (!(env = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr))) {
		snprintf(where, sizeof(where), "byte %d", jerr.position);
		return pc_error_set(err, PC_ERR_FORMAT, where, "shard part: byte %d (line %d, column %d): %s",
				    jerr.position, jerr.line, jerr.column, jerr.text);
	}
	if (!json_is_object(env) || !json_is_string(v = json_object_get(env, "format")) ||
	    strcmp(json_string_value(v), "paracorr-shard")) {
		json_decref(env);
		return pc_error_set(err, PC_ERR_FORMAT, "format", "shard part: \"format\" must be \"paracorr-shard\"");
	}
	if (!json_is_integer(v = json_object_get(env, "version")) || json_integer_value(v) != PC_SHARD_PART_VERSION) {
		json_decref(env);
		return pc_error_set(err, PC_ERR_FORMAT, "version", "shard part: \"version\" must be %d",
				    PC_SHARD_PART_VERSION);
	}
	if (!json_is_object(p = json_object_get(env, "part"))) {
		json_decref(env);
		return pc_error_set(err, PC_ERR_FORMAT, "part", "shard part: \"part\" must be an object");
	}
	*part = json_incref(p);
	json_decref(env);
	return PC_OK;
}
