/* data: labelled datasets from IDX, NPY, CSV and safetensors files, plain
 * or gzipped.
 *
 * Every file is first held whole in memory (the daemon has uploads there
 * anyway); gzip is inflated into a growing buffer that stops at a cap, so a
 * small bomb costs at most the cap. The parsers then describe the bytes as
 * an array (type, byte order, shape, a pointer into the buffer) after
 * checking every length the header claims against what is really there;
 * only then are floats allocated and the inputs converted and preprocessed
 * in one pass. Elements are assembled from bytes, so the host's byte order
 * and the buffer's alignment never matter. */
#include "paracorr/data.h"
#include "paracorr/limits.h"
#include "paracorr/report.h"
#include "paracorr/sys.h"

#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

/* ONNX TensorProto.DataType numbering, as pc_dtype_name reads it. */
enum {
	DT_FLOAT = 1,
	DT_UINT8 = 2,
	DT_INT8 = 3,
	DT_UINT16 = 4,
	DT_INT16 = 5,
	DT_INT32 = 6,
	DT_INT64 = 7,
	DT_DOUBLE = 11,
};

/* An array described by a file's header; data points into the file bytes. */
struct array {
	int dtype;
	int big_endian;
	size_t esize;
	struct pc_shape shape;
	int64_t numel;
	const unsigned char *data;
};

void pc_preprocess_default(struct pc_preprocess *pp)
{
	memset(pp, 0, sizeof(*pp));
	pp->scale = 1.0;
}

void pc_dataset_free(struct pc_dataset *d)
{
	if (!d)
		return;
	free(d->x);
	free(d->tokens);
	free(d->y);
	free(d);
}

/* ---- bytes ---- */

static uint64_t load_uint(const unsigned char *p, size_t n, int big_endian)
{
	uint64_t v = 0;

	if (big_endian)
		for (size_t i = 0; i < n; i++)
			v = v << 8 | p[i];
	else
		for (size_t i = n; i-- > 0;)
			v = v << 8 | p[i];
	return v;
}

/* Two's complement of the low `bits` bits, without implementation-defined
 * conversions. */
static int64_t sign_extend(uint64_t u, unsigned bits)
{
	uint64_t sign = (uint64_t)1 << (bits - 1);

	if (bits < 64)
		u &= (sign << 1) - 1;
	if (!(u & sign))
		return (int64_t)u;
	return -(int64_t)(~u & (sign - 1)) - 1;
}

static int64_t array_int(const struct array *a, int64_t i)
{
	uint64_t u = load_uint(a->data + (size_t)i * a->esize, a->esize, a->big_endian);

	return a->dtype == DT_UINT8 || a->dtype == DT_UINT16 ? (int64_t)u : sign_extend(u, (unsigned)a->esize * 8);
}

static float bits_float(uint32_t u)
{
	float f;

	memcpy(&f, &u, sizeof(f));
	return f;
}

/* ---- gzip ---- */

/* zlib's state and window come from the core's calloc and free rather
 * than zlib's own, so that the tests' allocation-failure injector reaches
 * them (a failure is Z_MEM_ERROR either way). */
static voidpf z_alloc(voidpf opaque, uInt items, uInt size)
{
	return calloc(items, size);
}

static void z_free(voidpf opaque, voidpf p)
{
	free(p);
}

/* Inflates in[0..len) (one or more gzip members) into a new buffer of at
 * most max_bytes. */
static int gunzip(const unsigned char *in, size_t len, uint64_t max_bytes, const char *where, unsigned char **out,
		  size_t *out_len, struct pc_error *err)
{
	z_stream zs;
	unsigned char *buf = NULL, *nb;
	size_t cap, used = 0, pos = 0;
	uint64_t hint;
	int zrc, rc;

	*out = NULL;
	*out_len = 0;
	/* ISIZE, the last member's length mod 2^32, is a hint to size the
	 * first buffer; nothing relies on it being true, and deflate cannot
	 * expand more than 1032-fold, so a forged one cannot make a small
	 * file reserve gigabytes */
	hint = len >= 18 ? load_uint(in + len - 4, 4, 0) : 0;
	if (hint < (uint64_t)len * 2)
		hint = (uint64_t)len * 2;
	if (hint < 4096)
		hint = 4096;
	if (hint > (uint64_t)len * 1032 + 4096)
		hint = (uint64_t)len * 1032 + 4096;
	if (hint > max_bytes)
		hint = max_bytes;
	if (hint >= SIZE_MAX)
		hint = SIZE_MAX - 1;
	cap = (size_t)hint + 1; /* room for one byte past the cap, to see it passed */
	buf = malloc(cap);
	if (!buf)
		return pc_error_set(err, PC_ERR_NOMEM, where, "cannot allocate %zu bytes to decompress", cap);
	memset(&zs, 0, sizeof(zs));
	zs.zalloc = z_alloc;
	zs.zfree = z_free;
	if (inflateInit2(&zs, 16 + MAX_WBITS) != Z_OK) {
		free(buf);
		return pc_error_set(err, PC_ERR_NOMEM, where, "cannot start zlib");
	}
	for (;;) {
		size_t in_chunk = len - pos, out_chunk;

		if (used == cap) {
			uint64_t want = (uint64_t)cap * 2;
			if (want > max_bytes + 1)
				want = max_bytes + 1;
			if (want > SIZE_MAX || want <= cap) {
				rc = pc_error_set(err, PC_ERR_LIMIT, where,
						  "gzip data decompresses to more than %llu bytes",
						  (unsigned long long)max_bytes);
				goto fail;
			}
			nb = realloc(buf, (size_t)want);
			if (!nb) {
				rc = pc_error_set(err, PC_ERR_NOMEM, where, "cannot allocate %llu bytes to decompress",
						  (unsigned long long)want);
				goto fail;
			}
			buf = nb;
			cap = (size_t)want;
		}
		if (in_chunk > UINT_MAX)
			in_chunk = UINT_MAX;
		out_chunk = cap - used;
		if (out_chunk > UINT_MAX)
			out_chunk = UINT_MAX;
		zs.next_in = (unsigned char *)(uintptr_t)(in + pos);
		zs.avail_in = (uInt)in_chunk;
		zs.next_out = buf + used;
		zs.avail_out = (uInt)out_chunk;
		zrc = inflate(&zs, Z_NO_FLUSH);
		pos += in_chunk - zs.avail_in;
		used += out_chunk - zs.avail_out;
		if (used > max_bytes) {
			rc = pc_error_set(err, PC_ERR_LIMIT, where, "gzip data decompresses to more than %llu bytes",
					  (unsigned long long)max_bytes);
			goto fail;
		}
		if (zrc == Z_STREAM_END) {
			if (pos == len)
				break;
			if (len - pos >= 2 && in[pos] == 0x1f && in[pos + 1] == 0x8b) {
				inflateReset(&zs); /* the next member of a concatenated stream */
				continue;
			}
			rc = pc_error_set(err, PC_ERR_FORMAT, where,
					  "%zu bytes of garbage after the gzip stream at byte offset %zu", len - pos,
					  pos);
			goto fail;
		}
		if (zrc == Z_MEM_ERROR) {
			rc = pc_error_set(err, PC_ERR_NOMEM, where, "zlib ran out of memory");
			goto fail;
		}
		if (zrc != Z_OK && zrc != Z_BUF_ERROR) {
			rc = pc_error_set(err, PC_ERR_FORMAT, where,
					  "corrupt gzip stream near compressed byte offset %zu: %s", pos,
					  zs.msg ? zs.msg : "invalid data");
			goto fail;
		}
		/* all input taken and output space left: the stream was cut */
		if (pos == len && zs.avail_out > 0) {
			rc = pc_error_set(err, PC_ERR_FORMAT, where,
					  "gzip stream is truncated: it ends at byte offset %zu before its end marker",
					  len);
			goto fail;
		}
	}
	inflateEnd(&zs);
	*out = buf;
	*out_len = used;
	return PC_OK;
fail:
	inflateEnd(&zs);
	free(buf);
	return rc;
}

/* ---- shared checks ---- */

static int check_dims(const struct pc_shape *s, const char *fmt_name, const char *where, int64_t *numel,
		      struct pc_error *err)
{
	char buf[160];

	for (int i = 0; i < s->ndim; i++)
		if (s->dim[i] == 0)
			return pc_error_set(err, PC_ERR_FORMAT, where, "%s shape %s: dimension %d is zero", fmt_name,
					    pc_shape_format(s, buf, sizeof(buf)), i);
	return pc_shape_numel(s, numel, where, err);
}

/* The data the header describes must fill the rest of the file exactly. */
static int check_data_length(const struct array *a, size_t len, size_t off, const char *fmt_name, const char *where,
			     struct pc_error *err)
{
	uint64_t want = (uint64_t)a->numel * a->esize, have = len - off;
	char buf[160];

	if (have < want)
		return pc_error_set(err, PC_ERR_FORMAT, where,
				    "%s data is truncated at byte offset %zu: shape %s of %s needs %llu bytes from "
				    "byte offset %zu, the file has %llu",
				    fmt_name, len, pc_shape_format(&a->shape, buf, sizeof(buf)),
				    pc_dtype_name(a->dtype), (unsigned long long)want, off, (unsigned long long)have);
	if (have > want)
		return pc_error_set(err, PC_ERR_FORMAT, where,
				    "%llu unexpected bytes after the %s data at byte offset %llu (shape %s of %s "
				    "needs %llu bytes from byte offset %zu)",
				    (unsigned long long)(have - want), fmt_name, (unsigned long long)(off + want),
				    pc_shape_format(&a->shape, buf, sizeof(buf)), pc_dtype_name(a->dtype),
				    (unsigned long long)want, off);
	return PC_OK;
}

/* ---- IDX ---- */

static int parse_idx(const unsigned char *p, size_t len, const char *where, struct array *a, struct pc_error *err)
{
	size_t header;
	int rc;

	if (len < 4)
		return pc_error_set(err, PC_ERR_FORMAT, where,
				    "IDX header is truncated: the file has %zu bytes, the magic number needs 4", len);
	switch (p[2]) {
	case 0x08:
		a->dtype = DT_UINT8, a->esize = 1;
		break;
	case 0x09:
		a->dtype = DT_INT8, a->esize = 1;
		break;
	case 0x0B:
		a->dtype = DT_INT16, a->esize = 2;
		break;
	case 0x0C:
		a->dtype = DT_INT32, a->esize = 4;
		break;
	case 0x0D:
		a->dtype = DT_FLOAT, a->esize = 4;
		break;
	case 0x0E:
		a->dtype = DT_DOUBLE, a->esize = 8;
		break;
	default:
		return pc_error_set(err, PC_ERR_FORMAT, where, "unknown IDX element type 0x%02x at byte offset 2",
				    p[2]);
	}
	a->big_endian = 1;
	if (p[3] == 0 || p[3] > PC_MAX_DIMS)
		return pc_error_set(err, PC_ERR_FORMAT, where, "IDX rank %d (byte offset 3) is outside 1..%d", p[3],
				    PC_MAX_DIMS);
	a->shape.ndim = p[3];
	header = 4 + 4 * (size_t)p[3];
	if (len < header)
		return pc_error_set(err, PC_ERR_FORMAT, where,
				    "IDX header is truncated: %d dims need %zu header bytes, the file has %zu", p[3],
				    header, len);
	for (int i = 0; i < a->shape.ndim; i++)
		a->shape.dim[i] = (int64_t)load_uint(p + 4 + 4 * i, 4, 1);
	rc = check_dims(&a->shape, "IDX", where, &a->numel, err);
	if (rc)
		return rc;
	a->data = p + header;
	return check_data_length(a, len, header, "IDX", where, err);
}

/* ---- NPY ---- */

/* A cursor over the header dict; offsets in errors count from the file's
 * first byte. */
struct cur {
	const unsigned char *file, *p, *end;
	const char *where;
	struct pc_error *err;
};

static void skip_space(struct cur *c)
{
	while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r'))
		c->p++;
}

static int syntax(struct cur *c, const char *what)
{
	if (c->p >= c->end)
		return pc_error_set(c->err, PC_ERR_FORMAT, c->where,
				    "NPY header ends at byte offset %zu while %s: the header dict is not terminated",
				    (size_t)(c->p - c->file), what);
	return pc_error_set(c->err, PC_ERR_FORMAT, c->where, "NPY header: %s at byte offset %zu (found '%c')", what,
			    (size_t)(c->p - c->file), *c->p >= 0x20 && *c->p < 0x7f ? *c->p : '?');
}

static int expect(struct cur *c, char ch, const char *what)
{
	skip_space(c);
	if (c->p >= c->end || *c->p != (unsigned char)ch)
		return syntax(c, what);
	c->p++;
	return PC_OK;
}

/* A Python string literal, quoted with ' or ", into out. */
static int parse_string(struct cur *c, char *out, size_t size, const char *what)
{
	unsigned char q;
	size_t n = 0;

	skip_space(c);
	if (c->p >= c->end || (*c->p != '\'' && *c->p != '"'))
		return syntax(c, what);
	q = *c->p++;
	while (c->p < c->end && *c->p != q) {
		if (*c->p == '\\' && c->p + 1 < c->end)
			c->p++;
		if (n + 1 >= size)
			return pc_error_set(c->err, PC_ERR_FORMAT, c->where,
					    "NPY header: string at byte offset %zu is longer than %zu characters",
					    (size_t)(c->p - c->file), size - 1);
		out[n++] = (char)*c->p++;
	}
	if (c->p >= c->end)
		return syntax(c, "reading a string");
	c->p++;
	out[n] = '\0';
	return PC_OK;
}

static int parse_bool(struct cur *c, int *v)
{
	skip_space(c);
	if (c->end - c->p >= 4 && memcmp(c->p, "True", 4) == 0) {
		*v = 1;
		c->p += 4;
	} else if (c->end - c->p >= 5 && memcmp(c->p, "False", 5) == 0) {
		*v = 0;
		c->p += 5;
	} else {
		return syntax(c, "expected True or False for 'fortran_order'");
	}
	return PC_OK;
}

/* A tuple of non-negative integers: (), (3,), (3, 4), (3, 4,), (3L, 4L). */
static int parse_shape(struct cur *c, struct pc_shape *s)
{
	int rc = expect(c, '(', "expected '(' to open 'shape'");

	if (rc)
		return rc;
	s->ndim = 0;
	for (;;) {
		int64_t v = 0;

		skip_space(c);
		if (c->p < c->end && *c->p == ')') {
			c->p++;
			return PC_OK;
		}
		if (c->p >= c->end || *c->p < '0' || *c->p > '9')
			return syntax(c, "expected a dimension in 'shape'");
		while (c->p < c->end && *c->p >= '0' && *c->p <= '9') {
			v = v * 10 + (*c->p++ - '0');
			if (v > PC_MAX_NUMEL)
				return pc_error_set(c->err, PC_ERR_SHAPE, c->where,
						    "NPY shape: dimension %d is larger than 2^40", s->ndim);
		}
		if (c->p < c->end && *c->p == 'L')
			c->p++; /* written by numpy under Python 2 */
		if (s->ndim == PC_MAX_DIMS)
			return pc_error_set(c->err, PC_ERR_UNSUPPORTED, c->where, "NPY shape has more than %d dims",
					    PC_MAX_DIMS);
		s->dim[s->ndim++] = v;
		skip_space(c);
		if (c->p < c->end && *c->p == ',') {
			c->p++;
			continue;
		}
		if (c->p < c->end && *c->p == ')') {
			c->p++;
			return PC_OK;
		}
		return syntax(c, "expected ',' or ')' in 'shape'");
	}
}

static int npy_descr(const char *d, struct array *a, const char *where, struct pc_error *err)
{
	static const struct {
		const char *code;
		int dtype;
		size_t esize;
	} types[] = {
	    {"u1", DT_UINT8, 1}, {"i1", DT_INT8, 1},  {"i2", DT_INT16, 2},  {"u2", DT_UINT16, 2},
	    {"i4", DT_INT32, 4}, {"i8", DT_INT64, 8}, {"f4", DT_FLOAT, 4}, {"f8", DT_DOUBLE, 8},
	};

	if ((d[0] == '<' || d[0] == '>' || d[0] == '|') && d[1]) {
		for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
			if (strcmp(d + 1, types[i].code) != 0)
				continue;
			/* '|' is numpy's "byte order does not apply" */
			if (d[0] == '|' && types[i].esize != 1)
				break;
			a->dtype = types[i].dtype;
			a->esize = types[i].esize;
			a->big_endian = d[0] == '>';
			return PC_OK;
		}
	}
	return pc_error_set(err, PC_ERR_UNSUPPORTED, where,
			    "NPY descr '%s' is not supported; use one of '|u1' '|i1' '<i2' '<u2' '<i4' '<i8' '<f4' "
			    "'<f8'",
			    d);
}

static int parse_npy(const unsigned char *p, size_t len, const char *where, struct array *a, struct pc_error *err)
{
	struct cur c = {.file = p, .where = where, .err = err};
	size_t lenfield, start, hlen;
	char key[32], descr[64];
	int have_descr = 0, have_order = 0, have_shape = 0, fortran = 0, rc;

	if (len < 8)
		return pc_error_set(err, PC_ERR_FORMAT, where,
				    "NPY header is truncated: the file has %zu bytes, magic and version need 8", len);
	if (p[6] < 1 || p[6] > 3 || p[7] != 0)
		return pc_error_set(err, PC_ERR_UNSUPPORTED, where,
				    "NPY version %d.%d (byte offset 6) is not supported; 1.0, 2.0 and 3.0 are", p[6],
				    p[7]);
	lenfield = p[6] == 1 ? 2 : 4;
	start = 8 + lenfield;
	if (len < start)
		return pc_error_set(err, PC_ERR_FORMAT, where,
				    "NPY header is truncated: the file has %zu bytes, the header length field ends at "
				    "byte offset %zu",
				    len, start);
	hlen = (size_t)load_uint(p + 8, lenfield, 0);
	if (hlen > len - start)
		return pc_error_set(err, PC_ERR_FORMAT, where,
				    "NPY header length %zu (byte offset 8) points past the end of the file: the header "
				    "would end at byte offset %llu, the file has %zu bytes",
				    hlen, (unsigned long long)start + hlen, len);
	c.p = p + start;
	c.end = c.p + hlen;
	if ((rc = expect(&c, '{', "expected '{' to open the header dict")))
		return rc;
	for (;;) {
		skip_space(&c);
		if (c.p < c.end && *c.p == '}') {
			c.p++;
			break;
		}
		if ((rc = parse_string(&c, key, sizeof(key), "expected a quoted key or '}'")))
			return rc;
		if ((rc = expect(&c, ':', "expected ':' after a key")))
			return rc;
		if (strcmp(key, "descr") == 0 && !have_descr) {
			skip_space(&c);
			if (c.p < c.end && *c.p == '[')
				return pc_error_set(err, PC_ERR_UNSUPPORTED, where,
						    "NPY structured dtypes (a list as 'descr') are not supported");
			rc = parse_string(&c, descr, sizeof(descr), "expected a quoted 'descr'");
			have_descr = 1;
		} else if (strcmp(key, "fortran_order") == 0 && !have_order) {
			rc = parse_bool(&c, &fortran);
			have_order = 1;
		} else if (strcmp(key, "shape") == 0 && !have_shape) {
			rc = parse_shape(&c, &a->shape);
			have_shape = 1;
		} else {
			return pc_error_set(err, PC_ERR_FORMAT, where,
					    "NPY header: unexpected or repeated key '%s' before byte offset %zu", key,
					    (size_t)(c.p - p));
		}
		if (rc)
			return rc;
		skip_space(&c);
		if (c.p < c.end && *c.p == ',') {
			c.p++;
			continue;
		}
		if ((rc = expect(&c, '}', "expected ',' or '}' after a value")))
			return rc;
		break;
	}
	skip_space(&c);
	if (c.p != c.end)
		return syntax(&c, "expected only padding after the header dict");
	if (!have_descr || !have_order || !have_shape)
		return pc_error_set(err, PC_ERR_FORMAT, where, "NPY header lacks '%s'",
				    !have_descr	  ? "descr"
				    : !have_order ? "fortran_order"
						  : "shape");
	if (fortran)
		return pc_error_set(err, PC_ERR_UNSUPPORTED, where,
				    "NPY array is in Fortran order; save it in C order (numpy.ascontiguousarray)");
	if ((rc = npy_descr(descr, a, where, err)))
		return rc;
	if (a->shape.ndim == 0)
		return pc_error_set(err, PC_ERR_SHAPE, where,
				    "NPY array is a scalar; a dataset needs at least one dim");
	if ((rc = check_dims(&a->shape, "NPY", where, &a->numel, err)))
		return rc;
	a->data = p + start + hlen;
	return check_data_length(a, len, start + hlen, "NPY", where, err);
}

/* ---- detection ---- */

/* ---- CSV ---- */

/* One row per sample: the features, then the label, separated by commas;
 * an optional header row (a first row whose last field is not a number).
 * Lines and columns in errors count from 1. The values become a new
 * buffer: float32 features then int64 labels, little-endian, which the
 * two arrays describe. */

#define CSV_MAX_FIELD 128

struct csv_line {
	const unsigned char *p;
	size_t len;
};

/* The line starting at *off (without its "\n" or "\r\n"); advances *off. */
static struct csv_line csv_next_line(const unsigned char *p, size_t len, size_t *off)
{
	struct csv_line l = {p + *off, 0};
	const unsigned char *nl = memchr(p + *off, '\n', len - *off);

	l.len = nl ? (size_t)(nl - l.p) : len - *off;
	*off += l.len + (nl ? 1 : 0);
	if (l.len && l.p[l.len - 1] == '\r')
		l.len--;
	return l;
}

static int csv_blank(struct csv_line l)
{
	for (size_t i = 0; i < l.len; i++)
		if (l.p[i] != ' ' && l.p[i] != '\t')
			return 0;
	return 1;
}

/* The field at *pos of line l, trimmed, into out (NUL-terminated); advances
 * *pos past the comma. Returns 0, or -1 when the field is too long. */
static int csv_field(struct csv_line l, size_t *pos, char out[CSV_MAX_FIELD + 1])
{
	size_t b = *pos, e;
	const unsigned char *comma = memchr(l.p + b, ',', l.len - b);

	e = comma ? (size_t)(comma - l.p) : l.len;
	*pos = comma ? e + 1 : l.len + 1;
	while (b < e && (l.p[b] == ' ' || l.p[b] == '\t'))
		b++;
	while (e > b && (l.p[e - 1] == ' ' || l.p[e - 1] == '\t'))
		e--;
	if (e - b > CSV_MAX_FIELD)
		return -1;
	memcpy(out, l.p + b, e - b);
	out[e - b] = '\0';
	return 0;
}

static int64_t csv_width(struct csv_line l)
{
	int64_t w = 1;

	for (size_t i = 0; i < l.len; i++)
		w += l.p[i] == ',';
	return w;
}

/* A finite number filling the whole field. */
static int csv_number(const char *f, double *v)
{
	char *end;

	if (!*f)
		return 0;
	errno = 0;
	*v = strtod(f, &end);
	return *end == '\0' && isfinite(*v) && errno != ERANGE;
}

/* A header names the columns; its last field (the label's) is never a
 * number, while a data row's always is. */
static int csv_is_header(struct csv_line l)
{
	char f[CSV_MAX_FIELD + 1];
	size_t pos = 0;
	double v;

	while (pos <= l.len)
		if (csv_field(l, &pos, f) != 0)
			return 1;
	return !csv_number(f, &v);
}

static void put_le(unsigned char *p, uint64_t v, size_t n)
{
	for (size_t i = 0; i < n; i++, v >>= 8)
		p[i] = (unsigned char)v;
}

static int parse_csv(const unsigned char *p, size_t len, const char *where, struct array *x, struct array *y,
		     unsigned char **owned, struct pc_error *err)
{
	struct csv_line l;
	size_t off = 0, end = len, pos;
	int64_t width = 0, rows = 0, line = 0, first_data_line = 0, col, r;
	unsigned char *buf = NULL;
	char f[CSV_MAX_FIELD + 1];
	double v;
	int rc;

	*owned = NULL;
	/* trailing blank lines are not rows */
	while (end > 0 && (p[end - 1] == '\n' || p[end - 1] == '\r' || p[end - 1] == ' ' || p[end - 1] == '\t'))
		end--;
	if (end == 0)
		return pc_error_set(err, PC_ERR_FORMAT, where, "CSV file has no rows");
	/* pass 1: the header, the width and the row count */
	while (off < end) {
		l = csv_next_line(p, end, &off);
		line++;
		if (csv_blank(l))
			return pc_error_set(err, PC_ERR_FORMAT, where, "CSV line %lld is empty", (long long)line);
		if (line == 1) {
			width = csv_width(l);
			if (width < 2)
				return pc_error_set(err, PC_ERR_FORMAT, where,
						    "CSV line 1 has 1 column; rows need at least one feature and the "
						    "label (last column)");
			if (csv_is_header(l))
				continue;
		} else if (csv_width(l) != width) {
			return pc_error_set(err, PC_ERR_FORMAT, where,
					    "CSV line %lld has %lld columns; line 1 has %lld", (long long)line,
					    (long long)csv_width(l), (long long)width);
		}
		if (!first_data_line)
			first_data_line = line;
		rows++;
	}
	if (rows == 0)
		return pc_error_set(err, PC_ERR_FORMAT, where, "CSV file has a header row and no data rows");
	x->dtype = DT_FLOAT, x->esize = 4;
	x->shape.ndim = 2;
	x->shape.dim[0] = rows;
	x->shape.dim[1] = width - 1;
	y->dtype = DT_INT64, y->esize = 8;
	y->shape.ndim = 1;
	y->shape.dim[0] = rows;
	if ((rc = pc_shape_numel(&x->shape, &x->numel, where, err)))
		return rc;
	y->numel = rows;
	buf = malloc((size_t)x->numel * 4 + (size_t)rows * 8);
	if (!buf)
		return pc_error_set(err, PC_ERR_NOMEM, where, "cannot allocate %lld CSV rows of %lld values",
				    (long long)rows, (long long)width);
	/* pass 2: the values */
	off = 0;
	line = 0;
	r = 0;
	while (off < end) {
		l = csv_next_line(p, end, &off);
		if (++line < first_data_line)
			continue;
		pos = 0;
		for (col = 1; col <= width; col++) {
			if (csv_field(l, &pos, f) != 0) {
				rc = pc_error_set(err, PC_ERR_FORMAT, where,
						  "CSV line %lld, column %lld: value longer than %d characters",
						  (long long)line, (long long)col, CSV_MAX_FIELD);
				goto fail;
			}
			if (!csv_number(f, &v)) {
				rc = pc_error_set(err, PC_ERR_FORMAT, where,
						  "CSV line %lld, column %lld: '%s' is not a finite number", (long long)line,
						  (long long)col, f);
				goto fail;
			}
			if (col < width) {
				float fv = (float)v;
				uint32_t bits;
				if (!isfinite(fv)) {
					rc = pc_error_set(err, PC_ERR_FORMAT, where,
							  "CSV line %lld, column %lld: %s is outside the float32 range",
							  (long long)line, (long long)col, f);
					goto fail;
				}
				memcpy(&bits, &fv, sizeof(bits));
				put_le(buf + 4 * (size_t)(r * (width - 1) + col - 1), bits, 4);
			} else {
				if (v < 0 || v != floor(v) || v >= 2147483648.0) {
					rc = pc_error_set(err, PC_ERR_FORMAT, where,
							  "CSV line %lld, column %lld: label %s is not an integer in "
							  "[0, 2^31)",
							  (long long)line, (long long)col, f);
					goto fail;
				}
				put_le(buf + (size_t)x->numel * 4 + 8 * (size_t)r, (uint64_t)(int64_t)v, 8);
			}
		}
		r++;
	}
	x->data = buf;
	y->data = buf + (size_t)x->numel * 4;
	*owned = buf;
	return PC_OK;
fail:
	free(buf);
	return rc;
}

/* ---- safetensors ---- */

/* 8-byte little-endian header length N, N bytes of JSON {name: {dtype,
 * shape, data_offsets: [begin, end]}, "__metadata__": {...}}, then the
 * data section the offsets count from. */

static int st_tensor(json_t *t, const char *name, const char *where, size_t data_len, const unsigned char *data,
		     struct array *a, struct pc_error *err)
{
	json_t *dtype = json_object_get(t, "dtype"), *shape = json_object_get(t, "shape"),
	       *offs = json_object_get(t, "data_offsets"), *v;
	const char *dt;
	json_int_t begin, end;
	size_t i;
	int rc;

	if (!json_is_object(t) || !json_is_string(dtype) || !json_is_array(shape) || !json_is_array(offs) ||
	    json_array_size(offs) != 2 || !json_is_integer(json_array_get(offs, 0)) ||
	    !json_is_integer(json_array_get(offs, 1)))
		return pc_error_set(err, PC_ERR_FORMAT, where,
				    "safetensors tensor '%s' needs dtype, shape and data_offsets [begin, end]", name);
	begin = json_integer_value(json_array_get(offs, 0));
	end = json_integer_value(json_array_get(offs, 1));
	if (begin < 0 || end < begin || (uint64_t)end > data_len)
		return pc_error_set(err, PC_ERR_FORMAT, where,
				    "safetensors tensor '%s': data_offsets [%lld, %lld] are outside the %zu data bytes",
				    name, (long long)begin, (long long)end, data_len);
	if (!a)
		return PC_OK;
	dt = json_string_value(dtype);
	if (strcmp(dt, "F32") == 0)
		a->dtype = DT_FLOAT, a->esize = 4;
	else if (strcmp(dt, "U8") == 0)
		a->dtype = DT_UINT8, a->esize = 1;
	else if (strcmp(dt, "I64") == 0)
		a->dtype = DT_INT64, a->esize = 8;
	else if (strcmp(dt, "I32") == 0)
		a->dtype = DT_INT32, a->esize = 4;
	else if (strcmp(dt, "U16") == 0)
		a->dtype = DT_UINT16, a->esize = 2;
	else
		return pc_error_set(err, PC_ERR_UNSUPPORTED, where,
				    "safetensors tensor '%s' has dtype %s; F32, U8, U16, I64 and I32 are supported", name,
				    dt);
	if (json_array_size(shape) > PC_MAX_DIMS)
		return pc_error_set(err, PC_ERR_FORMAT, where, "safetensors tensor '%s' has more than %d dims", name,
				    PC_MAX_DIMS);
	a->shape.ndim = (int)json_array_size(shape);
	json_array_foreach(shape, i, v)
	{
		if (!json_is_integer(v) || json_integer_value(v) < 0)
			return pc_error_set(err, PC_ERR_FORMAT, where,
					    "safetensors tensor '%s': shape[%zu] is not a non-negative integer", name, i);
		a->shape.dim[i] = json_integer_value(v);
	}
	if (a->shape.ndim == 0)
		return pc_error_set(err, PC_ERR_SHAPE, where, "safetensors tensor '%s' is a scalar; it needs a sample axis",
				    name);
	if ((rc = check_dims(&a->shape, "safetensors", where, &a->numel, err)))
		return rc;
	if ((uint64_t)(end - begin) != (uint64_t)a->numel * a->esize)
		return pc_error_set(err, PC_ERR_FORMAT, where,
				    "safetensors tensor '%s': data_offsets [%lld, %lld] hold %lld bytes; shape and dtype "
				    "need %llu",
				    name, (long long)begin, (long long)end, (long long)(end - begin),
				    (unsigned long long)a->numel * a->esize);
	a->big_endian = 0;
	a->data = data + begin;
	return PC_OK;
}

static int parse_safetensors(const unsigned char *p, size_t len, const char *where, struct array *x,
			     struct array *y, struct pc_error *err)
{
	uint64_t n;
	unsigned long failures;
	json_t *root = NULL, *t;
	json_error_t jerr;
	const char *name;
	size_t data_len;
	int rc = PC_OK;

	if (len < 8)
		return pc_error_set(err, PC_ERR_FORMAT, where, "safetensors header length is truncated (%zu bytes)",
				    len);
	n = load_uint(p, 8, 0);
	if (n > PC_DATA_SAFETENSORS_MAX_HEADER)
		return pc_error_set(err, PC_ERR_LIMIT, where,
				    "safetensors header length %llu (byte offset 0) is over the limit of %llu",
				    (unsigned long long)n, (unsigned long long)PC_DATA_SAFETENSORS_MAX_HEADER);
	if (n > len - 8)
		return pc_error_set(err, PC_ERR_FORMAT, where,
				    "safetensors header length %llu (byte offset 0) runs past the end of the file "
				    "(%zu bytes)",
				    (unsigned long long)n, len);
	failures = pc_report_alloc_failures();
	root = json_loadb((const char *)p + 8, (size_t)n, JSON_REJECT_DUPLICATES, &jerr);
	/* jansson's lexer reports a failed allocation as a syntax error */
	if (!root && pc_report_alloc_failures() != failures)
		return pc_error_set(err, PC_ERR_NOMEM, where, "out of memory reading the safetensors header");
	if (!root)
		return pc_error_set(err, PC_ERR_FORMAT, where, "safetensors header at byte offset %llu: %s",
				    (unsigned long long)(8 + (uint64_t)(jerr.position > 0 ? jerr.position : 0)),
				    jerr.text);
	if (!json_is_object(root)) {
		rc = pc_error_set(err, PC_ERR_FORMAT, where, "safetensors header is not a JSON object");
		goto out;
	}
	data_len = len - 8 - (size_t)n;
	/* every tensor's offsets are checked, not only the two we read */
	json_object_foreach(root, name, t)
	{
		if (strcmp(name, "__metadata__") == 0)
			continue;
		if ((rc = st_tensor(t, name, where, data_len, p + 8 + n,
				    strcmp(name, "inputs") == 0   ? x
				    : strcmp(name, "labels") == 0 ? y
								  : NULL,
				    err)))
			goto out;
	}
	if (!json_object_get(root, "inputs") || !json_object_get(root, "labels"))
		rc = pc_error_set(err, PC_ERR_FORMAT, where, "safetensors file has no tensor '%s'; it needs 'inputs' and 'labels'",
				  json_object_get(root, "inputs") ? "labels" : "inputs");
out:
	json_decref(root);
	return rc;
}

/* Text that could be CSV: printable ASCII and whitespace at the start. */
static int looks_like_text(const unsigned char *p, size_t len)
{
	size_t n = len < 4096 ? len : 4096;

	for (size_t i = 0; i < n; i++)
		if (!(p[i] == '\n' || p[i] == '\r' || p[i] == '\t' || (p[i] >= 0x20 && p[i] < 0x7f)))
			return 0;
	return n > 0;
}

/* A safetensors header: a JSON object after a length whose top bytes are
 * zero (no real header is near 2^40 bytes). */
static int looks_like_safetensors(const unsigned char *p, size_t len)
{
	return len >= 10 && p[8] == '{' && p[5] == 0 && p[6] == 0 && p[7] == 0;
}

/* ---- detection ---- */

/* Parses one file into a. When the file holds labels too (CSV,
 * safetensors) they go to y and *combined is set; y NULL means the file is
 * a labels file, where such formats are an error. *owned is a buffer the
 * arrays point into, freed by the caller. */
static int parse_file(const unsigned char *p, size_t len, uint64_t max_bytes, const char *where, struct array *a,
		      struct array *y, int *combined, unsigned char **owned, struct pc_error *err)
{
	static const unsigned char npy_magic[6] = {0x93, 'N', 'U', 'M', 'P', 'Y'};
	unsigned char *csv = NULL;
	int rc;

	memset(a, 0, sizeof(*a));
	if (y)
		memset(y, 0, sizeof(*y));
	if (combined)
		*combined = 0;
	*owned = NULL;
	if (len > max_bytes)
		return pc_error_set(err, PC_ERR_LIMIT, where, "file has %zu bytes; at most %llu are accepted", len,
				    (unsigned long long)max_bytes);
	if (len >= 2 && p[0] == 0x1f && p[1] == 0x8b) {
		size_t plain_len;
		rc = gunzip(p, len, max_bytes, where, owned, &plain_len, err);
		if (rc)
			return rc;
		p = *owned;
		len = plain_len;
		if (len >= 2 && p[0] == 0x1f && p[1] == 0x8b)
			return pc_error_set(err, PC_ERR_UNSUPPORTED, where,
					    "gzip inside gzip; decompress the file once");
	}
	if (len == 0)
		return pc_error_set(err, PC_ERR_FORMAT, where, "file is empty");
	if (memcmp(p, npy_magic, len < 6 ? len : 6) == 0)
		return parse_npy(p, len, where, a, err);
	if (looks_like_safetensors(p, len) || (looks_like_text(p, len) && p[0] != 0)) {
		if (!y)
			return pc_error_set(err, PC_ERR_FORMAT, where,
					    "a %s file holds the inputs and the labels: give it as the inputs alone",
					    looks_like_safetensors(p, len) ? "safetensors" : "CSV");
		*combined = 1;
		if (looks_like_safetensors(p, len))
			return parse_safetensors(p, len, where, a, y, err);
		rc = parse_csv(p, len, where, a, y, &csv, err);
		if (rc)
			return rc;
		/* the arrays point into the CSV values now, not the text */
		free(*owned);
		*owned = csv;
		return PC_OK;
	}
	if (p[0] == 0 && (len < 2 || p[1] == 0))
		return parse_idx(p, len, where, a, err);
	return pc_error_set(err, PC_ERR_FORMAT, where,
			    "unrecognized format (first bytes %02x %02x %02x %02x): expected IDX, NPY, CSV, "
			    "safetensors or gzip",
			    p[0], len > 1 ? p[1] : 0, len > 2 ? p[2] : 0, len > 3 ? p[3] : 0);
}

/* ---- conversion ---- */

/* Channels of the stored samples (dims after the sample axis): the first
 * dim of a C×H×W sample, the features of a 1-D sample; a 2-D H×W sample
 * (N×28×28 data) is one channel, as the model sees it once the singleton
 * channel is added. */
static int64_t sample_channels(const struct pc_shape *stored)
{
	return stored->ndim == 3 ? 1 : stored->ndim > 1 ? stored->dim[1] : 1;
}

static int check_preprocess(const struct pc_preprocess *pp, int64_t channels, struct pc_error *err)
{
	if (!isfinite(pp->scale) || pp->scale == 0)
		return pc_error_set(err, PC_ERR_INVALID, "preprocess", "scale %g must be finite and non-zero",
				    pp->scale);
	if (pp->n_mean < 0 || pp->n_mean > PC_DATA_MAX_CHANNELS || pp->n_std < 0 || pp->n_std > PC_DATA_MAX_CHANNELS)
		return pc_error_set(err, PC_ERR_INVALID, "preprocess", "mean and std take 0 to %d values",
				    PC_DATA_MAX_CHANNELS);
	if (pp->n_mean > 1 && pp->n_mean != channels)
		return pc_error_set(err, PC_ERR_INVALID, "preprocess",
				    "mean has %d values; the samples have %lld channels", pp->n_mean,
				    (long long)channels);
	if (pp->n_std > 1 && pp->n_std != channels)
		return pc_error_set(err, PC_ERR_INVALID, "preprocess",
				    "std has %d values; the samples have %lld channels", pp->n_std,
				    (long long)channels);
	for (int i = 0; i < pp->n_mean; i++)
		if (!isfinite(pp->mean[i]))
			return pc_error_set(err, PC_ERR_INVALID, "preprocess", "mean[%d] is not finite", i);
	for (int i = 0; i < pp->n_std; i++)
		if (!isfinite(pp->std[i]) || pp->std[i] <= 0)
			return pc_error_set(err, PC_ERR_INVALID, "preprocess", "std[%d] = %g must be positive", i,
					    pp->std[i]);
	return PC_OK;
}

/* The first n samples of a into x, preprocessed. Inputs must stay finite:
 * one NaN would poison every loss the dataset feeds. */
static int convert_inputs(const struct array *a, int64_t n, const struct pc_preprocess *pp, const char *where, float *x,
			  struct pc_error *err)
{
	int64_t sample = a->numel / a->shape.dim[0];
	/* with one mean and one std every channel is alike: treat the sample
	 * as one channel so the loops stay long */
	int64_t channels = pp->n_mean > 1 || pp->n_std > 1 ? sample_channels(&a->shape) : 1;
	int64_t inner = sample / channels;
	double scale = pp->scale_set ? pp->scale : a->dtype == DT_UINT8 ? 1.0 / 255.0 : 1.0;
	double mean[PC_DATA_MAX_CHANNELS], std[PC_DATA_MAX_CHANNELS];
	float lut[PC_DATA_MAX_CHANNELS][256];
	int64_t i = 0;

	for (int64_t c = 0; c < channels; c++) {
		mean[c] = pp->n_mean == 0 ? 0.0 : pp->mean[pp->n_mean == 1 ? 0 : c];
		std[c] = pp->n_std == 0 ? 1.0 : pp->std[pp->n_std == 1 ? 0 : c];
		if (a->dtype != DT_UINT8)
			continue;
		/* every byte of a channel maps through one table, checked once */
		for (int v = 0; v < 256; v++) {
			lut[c][v] = (float)((v * scale - mean[c]) / std[c]);
			if (!isfinite(lut[c][v]))
				return pc_error_set(err, PC_ERR_INVALID, "preprocess",
						    "input value %d becomes %g after preprocessing; inputs must stay "
						    "finite",
						    v, lut[c][v]);
		}
	}
	for (int64_t s = 0; s < n; s++) {
		for (int64_t c = 0; c < channels; c++) {
			if (a->dtype == DT_UINT8) {
				const float *t = lut[c];
				for (int64_t k = 0; k < inner; k++, i++)
					x[i] = t[a->data[i]];
				continue;
			}
			for (int64_t k = 0; k < inner; k++, i++) {
				float v = bits_float((uint32_t)load_uint(a->data + 4 * (size_t)i, 4, a->big_endian));
				x[i] = (float)((v * scale - mean[c]) / std[c]);
				if (!isfinite(x[i]))
					return pc_error_set(err, PC_ERR_INVALID, where,
							    "sample %lld element %lld is %g, %g after preprocessing; "
							    "inputs must stay finite",
							    (long long)s, (long long)(i - s * sample), v, x[i]);
			}
		}
	}
	return PC_OK;
}

/* Validates every label; keeps those of the first n samples in y (n *
 * positions of them) and counts the ones that are not ignored. Per-token
 * labels (two dims) may be PC_LABEL_IGNORE; errors then name the sample
 * and the position. */
static int convert_labels(const struct array *a, int64_t n, const char *where, int32_t *y, int64_t *classes,
			  int64_t *labelled, struct pc_error *err)
{
	int per_token = a->shape.ndim == 2;
	int64_t max = -1, positions = per_token ? a->shape.dim[1] : 1, keep = n * positions, counted = 0;

	for (int64_t i = 0; i < a->numel; i++) {
		int64_t v = array_int(a, i), s = i / positions, pos = i % positions;
		if (per_token && v == PC_LABEL_IGNORE) {
			if (i < keep)
				y[i] = PC_LABEL_IGNORE;
			continue;
		}
		if (per_token && v < 0)
			return pc_error_set(err, PC_ERR_FORMAT, where,
					    "label %lld of sample %lld at position %lld is negative; only %d (ignored) "
					    "is allowed",
					    (long long)v, (long long)s, (long long)pos, PC_LABEL_IGNORE);
		if (per_token && v >= PC_DATA_MAX_CLASSES)
			return pc_error_set(err, PC_ERR_LIMIT, where,
					    "label %lld of sample %lld at position %lld implies more than %d classes",
					    (long long)v, (long long)s, (long long)pos, PC_DATA_MAX_CLASSES);
		if (v < 0 || v > INT32_MAX)
			return pc_error_set(err, PC_ERR_FORMAT, where, "label %lld (index %lld) is outside [0, 2^31)",
					    (long long)v, (long long)i);
		if (v >= PC_DATA_MAX_CLASSES)
			return pc_error_set(err, PC_ERR_LIMIT, where,
					    "label %lld (index %lld) implies more than %d classes", (long long)v,
					    (long long)i, PC_DATA_MAX_CLASSES);
		if (v > max)
			max = v;
		if (i < keep) {
			y[i] = (int32_t)v;
			counted++;
		}
	}
	if (per_token && max < 0)
		return pc_error_set(err, PC_ERR_FORMAT, where,
				    "every label is %d (ignored): there is no token to evaluate", PC_LABEL_IGNORE);
	if (max + 1 < 2)
		return pc_error_set(err, PC_ERR_FORMAT, where, "all labels are 0: a dataset needs at least 2 classes");
	if (counted == 0)
		return pc_error_set(err, PC_ERR_FORMAT, where,
				    "the first %lld samples have no labelled token: every label there is %d (ignored)",
				    (long long)n, PC_LABEL_IGNORE);
	*classes = max + 1;
	*labelled = counted;
	return PC_OK;
}

/* The integer types token ids come in. */
static int token_dtype(int dtype)
{
	return dtype == DT_INT64 || dtype == DT_INT32 || dtype == DT_UINT16 || dtype == DT_UINT8;
}

/* The first n samples of a as int64 token ids; a negative id is malformed
 * (Gather would read it from the end of the table). */
static int convert_tokens(const struct array *a, int64_t n, const char *where, int64_t *tok, struct pc_error *err)
{
	int64_t sample = a->numel / a->shape.dim[0];

	for (int64_t i = 0; i < n * sample; i++) {
		tok[i] = array_int(a, i);
		if (tok[i] < 0)
			return pc_error_set(err, PC_ERR_FORMAT, where,
					    "token %lld of sample %lld at position %lld is negative; token ids are "
					    ">= 0",
					    (long long)tok[i], (long long)(i / sample), (long long)(i % sample));
	}
	return PC_OK;
}

/* ---- loading ---- */

static int load(const unsigned char *in, size_t in_len, const char *in_name, const unsigned char *lab, size_t lab_len,
		const char *lab_name, const struct pc_preprocess *pp_in, int64_t limit, uint64_t max_bytes,
		struct pc_dataset **out, struct pc_error *err)
{
	struct pc_preprocess pp;
	struct array xa, ya;
	unsigned char *xo = NULL, *yo = NULL;
	struct pc_dataset *d = NULL;
	int64_t n, sample, channels, positions;
	char buf[160];
	int rc, combined = 0, tokens;

	*out = NULL;
	if (pp_in)
		pp = *pp_in;
	else
		pc_preprocess_default(&pp);
	if ((rc = parse_file(in, in_len, max_bytes, in_name, &xa, &ya, &combined, &xo, err)))
		goto fail;
	if (combined && lab) {
		rc = pc_error_set(err, PC_ERR_INVALID, lab_name,
				  "the inputs file holds the labels too (CSV or safetensors): give no labels file");
		goto fail;
	}
	if (!combined && !lab) {
		rc = pc_error_set(err, PC_ERR_INVALID, lab_name,
				  "no labels file given; only CSV and safetensors inputs hold their labels");
		goto fail;
	}
	if (!combined && (rc = parse_file(lab, lab_len, max_bytes, lab_name, &ya, NULL, NULL, &yo, err)))
		goto fail;
	/* token ids when the model takes them; uint8 stays an image unless it does */
	tokens = pp.inputs == PC_DATA_INPUTS_TOKENS ||
		 (pp.inputs == PC_DATA_INPUTS_AUTO && token_dtype(xa.dtype) && xa.dtype != DT_UINT8);
	if (tokens && !token_dtype(xa.dtype)) {
		rc = pc_error_set(err, PC_ERR_UNSUPPORTED, in_name,
				  "inputs hold %s; the model's input takes integer token ids: int64, int32, uint16 or "
				  "uint8",
				  pc_dtype_name(xa.dtype));
		goto fail;
	}
	if (tokens && (pp.scale_set || pp.n_mean || pp.n_std)) {
		rc = pc_error_set(err, PC_ERR_INVALID, "preprocess",
				  "scale, mean and std do not apply to token ids (the model's input is int64)");
		goto fail;
	}
	if (!tokens && xa.dtype != DT_UINT8 && xa.dtype != DT_FLOAT) {
		rc = pc_error_set(err, PC_ERR_UNSUPPORTED, in_name, "inputs hold %s; uint8 or float32 are supported",
				  pc_dtype_name(xa.dtype));
		goto fail;
	}
	if (ya.dtype == DT_FLOAT || ya.dtype == DT_DOUBLE) {
		rc = pc_error_set(err, PC_ERR_UNSUPPORTED, lab_name, "labels hold %s; labels must be integers",
				  pc_dtype_name(ya.dtype));
		goto fail;
	}
	if (pp.labels == PC_DATA_LABELS_SAMPLE && ya.shape.ndim != 1) {
		rc = pc_error_set(err, PC_ERR_SHAPE, lab_name, "labels have shape %s; they must have one dim",
				  pc_shape_format(&ya.shape, buf, sizeof(buf)));
		goto fail;
	}
	if (pp.labels == PC_DATA_LABELS_TOKEN && ya.shape.ndim != 2) {
		rc = pc_error_set(err, PC_ERR_SHAPE, lab_name,
				  "labels have shape %s; the model reads a class per token: they must have two dims "
				  "(N, T)",
				  pc_shape_format(&ya.shape, buf, sizeof(buf)));
		goto fail;
	}
	if (ya.shape.ndim != 1 && ya.shape.ndim != 2) {
		rc = pc_error_set(err, PC_ERR_SHAPE, lab_name,
				  "labels have shape %s; they must have one dim (a class per sample) or two (a class "
				  "per token)",
				  pc_shape_format(&ya.shape, buf, sizeof(buf)));
		goto fail;
	}
	if (ya.shape.dim[0] != xa.shape.dim[0]) {
		char lbuf[160];
		if (ya.shape.ndim == 1)
			rc = pc_error_set(err, PC_ERR_SHAPE, lab_name, "%lld labels for %lld input samples (inputs %s)",
					  (long long)ya.shape.dim[0], (long long)xa.shape.dim[0],
					  pc_shape_format(&xa.shape, buf, sizeof(buf)));
		else
			rc = pc_error_set(err, PC_ERR_SHAPE, lab_name,
					  "labels of shape %s are for %lld samples; the inputs (%s) have %lld",
					  pc_shape_format(&ya.shape, lbuf, sizeof(lbuf)), (long long)ya.shape.dim[0],
					  pc_shape_format(&xa.shape, buf, sizeof(buf)), (long long)xa.shape.dim[0]);
		goto fail;
	}
	channels = sample_channels(&xa.shape);
	if (!tokens && (rc = check_preprocess(&pp, channels, err)))
		goto fail;
	n = xa.shape.dim[0];
	if (limit > 0 && limit < n)
		n = limit;
	sample = xa.numel / xa.shape.dim[0];
	positions = ya.shape.ndim == 2 ? ya.shape.dim[1] : 1;
	/* positions * n <= the labels' numel, which check_dims bounded */
	if ((uint64_t)n * (uint64_t)sample > SIZE_MAX / (tokens ? sizeof(int64_t) : sizeof(float))) {
		rc = pc_error_set(err, PC_ERR_LIMIT, in_name, "%lld samples of %lld %s do not fit in memory",
				  (long long)n, (long long)sample, tokens ? "tokens" : "floats");
		goto fail;
	}
	/* the decoded size, before it is allocated: a small gzip, or uint8
	 * becoming float, may decode to far more than the upload's bytes */
	{
		uint64_t want = (uint64_t)n * (uint64_t)sample * (tokens ? sizeof(int64_t) : sizeof(float)) +
				(uint64_t)n * (uint64_t)positions * sizeof(int32_t);
		uint64_t cap = pc_limits_get()->max_decoded_bytes;
		if (want > cap) {
			rc = pc_error_set(err, PC_ERR_LIMIT, in_name,
					  "shape %s of %s decodes to %llu bytes of %s and labels, over "
					  "max_dataset_decoded_mb (%llu MiB)",
					  pc_shape_format(&xa.shape, buf, sizeof(buf)), pc_dtype_name(xa.dtype),
					  (unsigned long long)want, tokens ? "int64 token ids" : "floats",
					  (unsigned long long)(cap >> 20));
			goto fail;
		}
	}
	d = calloc(1, sizeof(*d));
	if (!d) {
		rc = pc_error_set(err, PC_ERR_NOMEM, in_name, "cannot allocate the dataset");
		goto fail;
	}
	if (tokens)
		d->tokens = pc_sys_malloc_huge((size_t)(n * sample) * sizeof(int64_t));
	else
		d->x = pc_sys_malloc_huge((size_t)(n * sample) * sizeof(float));
	d->y = malloc((size_t)(n * positions) * sizeof(int32_t));
	if ((!d->x && !d->tokens) || !d->y) {
		rc = pc_error_set(err, PC_ERR_NOMEM, in_name, "cannot allocate %lld samples of %lld %s", (long long)n,
				  (long long)sample, tokens ? "tokens" : "floats");
		goto fail;
	}
	d->n = n;
	d->input_dtype = xa.dtype;
	d->positions = positions;
	d->label_ndim = ya.shape.ndim;
	d->sample.ndim = xa.shape.ndim - 1;
	memcpy(d->sample.dim, xa.shape.dim + 1, sizeof(d->sample.dim[0]) * (size_t)d->sample.ndim);
	if ((rc = convert_labels(&ya, n, lab_name, d->y, &d->classes, &d->labelled, err)))
		goto fail;
	if (tokens)
		rc = convert_tokens(&xa, n, in_name, d->tokens, err);
	else
		rc = convert_inputs(&xa, n, &pp, in_name, d->x, err);
	if (rc)
		goto fail;
	free(xo);
	free(yo);
	*out = d;
	return PC_OK;
fail:
	pc_dataset_free(d);
	free(xo);
	free(yo);
	return rc;
}

int pc_dataset_load_memory_max(const void *inputs, size_t inputs_len, const void *labels, size_t labels_len,
			       const struct pc_preprocess *pp, int64_t limit, uint64_t max_bytes,
			       struct pc_dataset **out, struct pc_error *err)
{
	*out = NULL;
	if ((!inputs && inputs_len) || (!labels && labels_len))
		return pc_error_set(err, PC_ERR_INVALID, inputs ? "labels" : "inputs", "NULL buffer");
	return load(inputs, inputs_len, "inputs", labels, labels_len, "labels", pp, limit, max_bytes, out, err);
}

int pc_dataset_load_memory(const void *inputs, size_t inputs_len, const void *labels, size_t labels_len,
			   const struct pc_preprocess *pp, int64_t limit, struct pc_dataset **out, struct pc_error *err)
{
	return pc_dataset_load_memory_max(inputs, inputs_len, labels, labels_len, pp, limit, PC_DATA_MAX_BYTES, out,
					  err);
}

int pc_dataset_load(const char *inputs_path, const char *labels_path, const struct pc_preprocess *pp, int64_t limit,
		    struct pc_dataset **out, struct pc_error *err)
{
	unsigned char *in = NULL, *lab = NULL;
	size_t in_len, lab_len;
	int rc;

	*out = NULL;
	lab_len = 0;
	if (!inputs_path)
		return pc_error_set(err, PC_ERR_INVALID, "inputs", "no file given");
	rc = pc_sys_read_file(inputs_path, PC_DATA_MAX_BYTES, &in, &in_len, err);
	if (!rc && labels_path)
		rc = pc_sys_read_file(labels_path, PC_DATA_MAX_BYTES, &lab, &lab_len, err);
	if (!rc)
		rc = load(in, in_len, inputs_path, lab, lab_len, labels_path ? labels_path : "labels", pp, limit,
			  PC_DATA_MAX_BYTES, out, err);
	free(in);
	free(lab);
	return rc;
}

int pc_dataset_check_input(const struct pc_dataset *d, const struct pc_shape *model_sample, struct pc_error *err)
{
	const struct pc_shape *s = &d->sample, *m = model_sample;
	char a[160], b[160];
	int ok = pc_shape_equal(s, m);

	if (!ok && m->ndim == s->ndim + 1 && m->dim[0] == 1) {
		ok = 1;
		for (int i = 0; i < s->ndim; i++)
			ok &= m->dim[i + 1] == s->dim[i];
	}
	if (ok)
		return PC_OK;
	return pc_error_set(err, PC_ERR_SHAPE, "dataset",
			    "the dataset's samples have shape %s; the model expects %s per sample",
			    pc_shape_format(s, a, sizeof(a)), pc_shape_format(m, b, sizeof(b)));
}
