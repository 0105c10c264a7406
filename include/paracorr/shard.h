/* shard: the stored forms of a study in shards (analysis.h, "the study in
 * shards") and how its items are dealt out.
 *
 * - The prefix (clean numbers and gradient) as a small binary file, all
 *   integers and floats little-endian:
 *     0  "PCPREFIX"        8 bytes
 *     8  version           u32, PC_SHARD_PREFIX_VERSION
 *    12  zero              u32
 *    16  count             i64, gradient floats (the model's parameters)
 *    24  samples, correct  i64, i64
 *    40  loss, accuracy    f64, f64
 *    56  sequence, tokens  i64, i64
 *    72  perplexity        f64
 *    80  non_finite        i64
 *    88  gradient          count x f32
 *   Every size is checked on read; an error names the byte offset.
 * - A shard's part as JSON text {"format": "paracorr-shard", "version": 1,
 *   "part": <pc_study_shard_run's part>}, reals with 17 digits so that
 *   every double reads back exactly; an error names the byte offset (bad
 *   JSON) or the field.
 *
 * Items are dealt in contiguous ranges: shard i of n over m items holds
 * [i*m/n, (i+1)*m/n), so every item is in exactly one shard and the merge
 * reads them in item order. */
#ifndef PARACORR_SHARD_H
#define PARACORR_SHARD_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "paracorr/analysis.h"
#include "paracorr/error.h"

#define PC_SHARD_MAX		64
#define PC_SHARD_PREFIX_VERSION 1
#define PC_SHARD_PREFIX_HEADER	88
#define PC_SHARD_PART_VERSION	1

/* Shards a study of m items runs in when asked for n (1..PC_SHARD_MAX):
 * n, but never more than m (a shard without items does nothing), and at
 * least 1. */
int pc_shard_count(int n, int64_t m);

/* Items [*first, *last) of shard i of n over m. */
void pc_shard_range(int i, int n, int64_t m, int64_t *first, int64_t *last);

/* The prefix as bytes: *buf (malloc'd, the caller frees) of *len bytes. */
int pc_shard_prefix_encode(const struct pc_study_prefix *p, unsigned char **buf, size_t *len, struct pc_error *err);
/* The prefix of buf[0 .. len), for a model of `parameters` parameters;
 * *out is the caller's (pc_study_prefix_free). PC_ERR_FORMAT naming the
 * byte offset. */
int pc_shard_prefix_decode(const unsigned char *buf, size_t len, int64_t parameters, struct pc_study_prefix **out,
			   struct pc_error *err);

/* The part's text (malloc'd, the caller frees). */
int pc_shard_part_encode(const json_t *part, char **text, struct pc_error *err);
/* The part of text[0 .. len): *part a new reference. PC_ERR_FORMAT naming
 * the byte offset or the field. */
int pc_shard_part_decode(const char *text, size_t len, json_t **part, struct pc_error *err);

#endif
