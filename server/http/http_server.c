/* http_server: libmicrohttpd glue, the route dispatch, body sinks,
 * authentication, CORS and the response helpers.
 *
 * A request's life: the first callback allocates a struct pcd_req, matches
 * the route (404 / 405 with Allow), checks the token (401), the media type
 * (415) and the declared length (413) and opens the body's sink; these
 * answers are queued before any body byte is read. Body callbacks feed the
 * sink; a sink error (too many bytes, a bad part) is kept and the rest of
 * the body is discarded, because MHD only lets a response be queued before
 * the body or after all of it. The last callback runs the handler. The
 * completion callback logs the request, records its metrics and frees it. */
#include "http_server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "blobs.h"
#include "job.h"
#include "json_out.h"
#include "log.h"
#include "names.h"
#include "problem.h"
#include "paracorr/sys.h"
#include "prom.h"
#include "settings.h"
#include "sha256.h"

#define N_PARAMS  2
#define PARAM_MAX 160
#define PP_BUFFER    (64 * 1024)

struct pcd_http {
	struct MHD_Daemon *d;
	struct pcd_app *app;
	atomic_ulong next_req;
	int quiesced;
	MHD_socket listen_fd; /* returned by MHD_quiesce_daemon, closed after MHD_stop_daemon */
};

struct pcd_req {
	struct pcd_http *http;
	struct MHD_Connection *conn;
	const struct pcd_route *route;
	const char *route_label; /* a static string: the template, or "unmatched" */
	const char *method;	 /* MHD's string, valid for the request */
	char method_label[8];	 /* static copy for metrics: see method_static */
	char url[512];
	char params[N_PARAMS][PARAM_MAX]; /* the {…} segments of the path, in order */
	char req_id[24];
	double start; /* pc_sys_seconds() */
	unsigned status;
	int responded;
	uint64_t bytes_in;
	/* body sinks */
	struct pc_error body_err; /* first sink error; code 0 = none */
	char *body;
	size_t body_len, body_cap, body_max;
	struct pcd_blob_writer *model;
	struct pcd_blob_writer *inputs, *labels;
	struct MHD_PostProcessor *pp;
	uint64_t part_limit;
	/* the form's name part (one byte more than a name may have, to tell
	 * a long one), and the inputs part's file name: what names a dataset
	 * without ?name= */
	char form_name[PCD_NAME_MAX + 2];
	size_t form_name_len;
	int has_form_name;
	char inputs_filename[PCD_NAME_MAX + 1];
	char disposition_filename[PCD_NAME_MAX + 1];
	/* who: set by the authentication check */
	char tenant[PCD_TENANT_MAX + 1];
	int admin;
};

/* --- small helpers ------------------------------------------------------- */

/* Metrics keep label strings by pointer: map a method to a static one. */
static const char *method_static(const char *m)
{
	static const char *const known[] = {"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"};
	size_t i;

	for (i = 0; i < sizeof(known) / sizeof(known[0]); i++)
		if (!strcmp(known[i], m))
			return known[i];
	return "OTHER";
}

/* Whether a media type header names want (parameters after ';' ignored). */
static int media_is(const char *ct, const char *want)
{
	size_t n = strlen(want);

	if (!ct)
		return 0;
	while (*ct == ' ')
		ct++;
	return !strncasecmp(ct, want, n) && (ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ');
}

/* --- the request as handlers see it ------------------------------------- */

struct pcd_app *pcd_req_app(struct pcd_req *r)
{
	return r->http->app;
}

const char *pcd_req_tenant(struct pcd_req *r)
{
	return r->tenant;
}

const char *pcd_req_scope(struct pcd_req *r)
{
	return r->admin ? PCD_ALL_TENANTS : r->tenant;
}

int pcd_req_admin(struct pcd_req *r)
{
	return r->admin;
}

const char *pcd_req_id_param(struct pcd_req *r)
{
	return r->params[0];
}

const char *pcd_req_name_param(struct pcd_req *r)
{
	return r->params[1];
}

const char *pcd_req_request_id(struct pcd_req *r)
{
	return r->req_id;
}

const char *pcd_req_url(struct pcd_req *r)
{
	return r->url;
}

const char *pcd_req_header(struct pcd_req *r, const char *name)
{
	return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}

const char *pcd_req_query(struct pcd_req *r, const char *name)
{
	return MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, name);
}

struct query_all {
	const char *name;
	const char **out;
	int max, n;
};

static enum MHD_Result query_one(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
	struct query_all *q = cls;

	(void)kind;
	if (key && strcmp(key, q->name) == 0) {
		if (q->n < q->max)
			q->out[q->n] = value ? value : "";
		q->n++;
	}
	return MHD_YES;
}

int pcd_req_query_all(struct pcd_req *r, const char *name, const char **out, int max)
{
	struct query_all q = {name, out, max, 0};

	MHD_get_connection_values(r->conn, MHD_GET_ARGUMENT_KIND, query_one, &q);
	return q.n;
}

const char *pcd_req_body(struct pcd_req *r, size_t *len)
{
	if (len)
		*len = r->body_len;
	return r->body ? r->body : "";
}

struct pcd_blob_writer **pcd_req_model_writer(struct pcd_req *r)
{
	return &r->model;
}

struct pcd_blob_writer **pcd_req_part_writer(struct pcd_req *r, const char *part)
{
	if (!strcmp(part, "inputs"))
		return &r->inputs;
	if (!strcmp(part, "labels"))
		return &r->labels;
	return NULL;
}

const char *pcd_req_form_name(struct pcd_req *r)
{
	return r->has_form_name ? r->form_name : NULL;
}

const char *pcd_req_inputs_filename(struct pcd_req *r)
{
	return r->inputs_filename[0] ? r->inputs_filename : NULL;
}

const char *pcd_req_disposition_filename(struct pcd_req *r)
{
	const char *h = pcd_req_header(r, "Content-Disposition"), *p;
	size_t n = 0;

	if (!h)
		return NULL;
	/* the parameter named exactly filename, after a ';' */
	for (p = strchr(h, ';'); p; p = strchr(p + 1, ';')) {
		const char *q = p + 1;
		while (*q == ' ' || *q == '\t')
			q++;
		if (!strncasecmp(q, "filename", 8)) {
			q += 8;
			while (*q == ' ' || *q == '\t')
				q++;
			if (*q == '=') {
				p = q + 1;
				break;
			}
		}
	}
	if (!p)
		return NULL;
	while (*p == ' ' || *p == '\t')
		p++;
	if (*p == '"') {
		/* a quoted string: \x is x */
		for (p++; *p && *p != '"'; p++) {
			if (*p == '\\' && p[1])
				p++;
			if (n >= PCD_NAME_MAX)
				return NULL;
			r->disposition_filename[n++] = *p;
		}
		if (*p != '"')
			return NULL;
	} else {
		for (; *p && *p != ';' && *p != ' ' && *p != '\t'; p++) {
			if (n >= PCD_NAME_MAX)
				return NULL;
			r->disposition_filename[n++] = *p;
		}
	}
	r->disposition_filename[n] = 0;
	if (!n || pcd_name_check("name", r->disposition_filename, PC_ERR_BAD_REQUEST, &(struct pc_error){0}))
		return NULL;
	return r->disposition_filename;
}

/* --- responses ----------------------------------------------------------- */

/* Whether a comma-separated setting (items trimmed of spaces) holds "*"
 * or the n bytes at s; host names compare without case, origins exactly. */
static int list_has(const char *list, const char *s, size_t n, int nocase)
{
	const char *p = list;

	while (*p) {
		const char *e = strchr(p, ',');
		size_t len = e ? (size_t)(e - p) : strlen(p);

		while (len && *p == ' ') {
			p++;
			len--;
		}
		while (len && p[len - 1] == ' ')
			len--;
		if ((len == 1 && *p == '*') || (len == n && !(nocase ? strncasecmp(p, s, n) : strncmp(p, s, n))))
			return 1;
		if (!e)
			break;
		p = e + 1;
	}
	return 0;
}

static const char *cors_match(struct pcd_req *r)
{
	const char *origin = pcd_req_header(r, "Origin");

	return origin && list_has(r->http->app->settings->cors_origins, origin, strlen(origin), 0) ? origin : NULL;
}

static int queue(struct pcd_req *r, unsigned status, struct MHD_Response *resp, const char *const *extra)
{
	const char *origin;
	enum MHD_Result ok;

	if (!resp)
		return MHD_NO;
	MHD_add_response_header(resp, "X-Request-Id", r->req_id);
	MHD_add_response_header(resp, "Cache-Control", "no-store");
	if ((origin = cors_match(r))) {
		MHD_add_response_header(resp, "Access-Control-Allow-Origin", origin);
		MHD_add_response_header(resp, "Vary", "Origin");
		MHD_add_response_header(resp, "Access-Control-Expose-Headers",
					"Location, Retry-After, X-Request-Id, Idempotent-Replayed");
	}
	for (; extra && extra[0]; extra += 2)
		MHD_add_response_header(resp, extra[0], extra[1]);
	ok = MHD_queue_response(r->conn, status, resp);
	MHD_destroy_response(resp);
	r->status = status;
	r->responded = 1;
	return ok;
}

int pcd_send_text(struct pcd_req *r, unsigned status, const char *content_type, const char *text, size_t len)
{
	struct MHD_Response *resp;

	resp = MHD_create_response_from_buffer(len, (void *)text, MHD_RESPMEM_MUST_COPY);
	if (resp && content_type)
		MHD_add_response_header(resp, "Content-Type", content_type);
	return queue(r, status, resp, NULL);
}

int pcd_send_file(struct pcd_req *r, unsigned status, const char *content_type, int fd, uint64_t size,
		  const char *const *extra_headers)
{
	/* MHD reads the file as the socket takes it, and closes fd */
	struct MHD_Response *resp = MHD_create_response_from_fd64(size, fd);

	if (!resp) {
		close(fd);
		return MHD_NO;
	}
	MHD_add_response_header(resp, "Content-Type", content_type);
	return queue(r, status, resp, extra_headers);
}

static int send_json_typed(struct pcd_req *r, unsigned status, json_t *body, const char *type,
			   const char *const *extra)
{
	struct MHD_Response *resp;
	char *text = pcd_json_text(body, PCD_JSON_ANSWER);
	size_t len;

	json_decref(body);
	if (!text)
		return MHD_NO;
	len = strlen(text);
	/* MHD frees the text with free(), jansson's default allocator */
	resp = MHD_create_response_from_buffer(len, text, MHD_RESPMEM_MUST_FREE);
	if (!resp) {
		free(text);
		return MHD_NO;
	}
	MHD_add_response_header(resp, "Content-Type", type);
	return queue(r, status, resp, extra);
}

int pcd_send_json(struct pcd_req *r, unsigned status, json_t *body, const char *const *extra_headers)
{
	return send_json_typed(r, status, body, "application/json", extra_headers);
}

int pcd_send_error_h(struct pcd_req *r, const struct pc_error *err, const char *const *extra_headers)
{
	static const char *const retry[] = {"Retry-After", RETRY_AFTER_S, NULL};
	json_t *p = pcd_problem_json(err);
	unsigned status;

	/* the URL is the client's bytes: text that is not UTF-8 would make the
	 * problem unbuildable and the request unanswered */
	if (!p || json_object_set_new(p, "instance", pcd_problem_text(r->url))) {
		json_decref(p);
		return MHD_NO;
	}
	status = (unsigned)json_integer_value(json_object_get(p, "status"));
	return send_json_typed(r, status, p, "application/problem+json",
			       !extra_headers && status == 503 ? retry : extra_headers);
}

int pcd_send_error(struct pcd_req *r, const struct pc_error *err)
{
	return pcd_send_error_h(r, err, NULL);
}

int pcd_send_problem(struct pcd_req *r, enum pc_status code, const char *where, const char *const *extra_headers,
		     const char *fmt, ...)
{
	struct pc_error err = {.code = code};
	va_list ap;

	snprintf(err.where, sizeof(err.where), "%s", where ? where : "");
	va_start(ap, fmt);
	vsnprintf(err.text, sizeof(err.text), fmt, ap);
	va_end(ap);
	return pcd_send_error_h(r, &err, extra_headers);
}

/* --- routing ------------------------------------------------------------- */

/* Whether path matches template. Each {name} of the template matches one
 * non-empty path segment, copied in order into params. */
static int match(const char *tmpl, const char *path, char params[][PARAM_MAX], int max_params)
{
	int k = 0;

	while (*tmpl && *path) {
		if (*tmpl == '{') {
			const char *te = strchr(tmpl, '}');
			size_t n = strcspn(path, "/");

			if (!te || n == 0 || n >= PARAM_MAX || k >= max_params)
				return 0;
			memcpy(params[k], path, n);
			params[k++][n] = '\0';
			path += n;
			tmpl = te + 1;
			continue;
		}
		if (*tmpl != *path)
			return 0;
		tmpl++;
		path++;
	}
	return *tmpl == '\0' && *path == '\0';
}

/* Finds the route; *path_known says some route has this path (for 405),
 * allow receives the methods that path takes. */
static const struct pcd_route *route_find(const char *method, const char *path, char params[][PARAM_MAX],
					  int *path_known, char *allow, size_t allow_size)
{
	const struct pcd_route *found = NULL;
	char tmp[N_PARAMS][PARAM_MAX];
	size_t i;

	*path_known = 0;
	allow[0] = '\0';
	for (i = 0; i < pcd_n_routes; i++) {
		const struct pcd_route *rt = &pcd_routes[i];

		if (!match(rt->template, path, tmp, N_PARAMS))
			continue;
		*path_known = 1;
		if (strlen(allow) + strlen(rt->method) + 3 < allow_size) {
			if (allow[0])
				strcat(allow, ", ");
			strcat(allow, rt->method);
		}
		/* HEAD is served by a GET route unless the table has a HEAD row */
		if (!strcmp(rt->method, method) || (!found && !strcmp(method, "HEAD") && !strcmp(rt->method, "GET"))) {
			if (!found || strcmp(found->method, method)) {
				found = rt;
				memcpy(params, tmp, sizeof(tmp));
			}
		}
	}
	return found;
}

/* The Host header's name without its port: "[::1]:80" gives "::1". */
static size_t host_name(const char *host, const char **start)
{
	const char *e;

	if (host[0] == '[') {
		*start = host + 1;
		e = strchr(host, ']');
		return e ? (size_t)(e - host - 1) : strlen(host + 1);
	}
	*start = host;
	e = strchr(host, ':');
	return e ? (size_t)(e - host) : strlen(host);
}

static int is_loopback_name(const char *h, size_t n)
{
	struct in_addr a4;
	char buf[64];

	if ((n == 9 && !strncasecmp(h, "localhost", 9)) || (n == 3 && !strncmp(h, "::1", 3)))
		return 1;
	if (n >= sizeof(buf))
		return 0;
	memcpy(buf, h, n);
	buf[n] = '\0';
	return inet_pton(AF_INET, buf, &a4) == 1 && (ntohl(a4.s_addr) >> 24) == 127;
}

/* Whether the request's Host names this server: the listen address,
 * localhost, any loopback address, or a name of allowed_hosts ("*": any).
 * A browser tricked by DNS rebinding sends the attacker's name, so a
 * daemon on loopback is not a target for any web page. A request without
 * Host (HTTP/1.0) is let through: it comes from no browser. */
static int host_allowed(struct pcd_req *r)
{
	const char *host = pcd_req_header(r, "Host"), *h;
	size_t n;

	if (!host)
		return 1;
	n = host_name(host, &h);
	if (is_loopback_name(h, n) || (strlen(r->http->app->settings->listen) == n &&
				       !strncasecmp(h, r->http->app->settings->listen, n)))
		return 1;
	return list_has(r->http->app->settings->allowed_hosts, h, n, 1);
}

/* Whether the request carries a valid token; sets r->tenant and r->admin
 * (without tokens: tenant default, ordinary role). */
static int authorized(struct pcd_req *r)
{
	const struct pcd_tokens *toks = r->http->app->tokens;
	const char *h;
	uint8_t d[32];
	struct pcd_sha256 c;
	size_t i, match = 0;
	int ok = 0;

	r->tenant[0] = '\0'; /* nobody (a scope that matches no row) until a token matches */
	r->admin = 0;
	if (!toks) {
		snprintf(r->tenant, sizeof(r->tenant), "%s", PCD_DEFAULT_TENANT);
		return 1;
	}
	h = pcd_req_header(r, "Authorization");
	if (!h || strncasecmp(h, "Bearer ", 7))
		return 0;
	h += 7;
	pcd_sha256_init(&c);
	pcd_sha256_update(&c, h, strlen(h));
	pcd_sha256_final(&c, d);
	/* every digest is compared and the match taken without a branch, so
	 * the time says neither whether nor which token matched */
	for (i = 0; i < toks->n; i++) {
		unsigned char diff = 0;
		size_t k, eq;

		for (k = 0; k < 32; k++)
			diff |= (unsigned char)(d[k] ^ toks->v[i].digest[k]);
		eq = (size_t)((diff == 0) & !ok);
		match = match * (1 - eq) + i * eq;
		ok |= diff == 0;
	}
	if (ok) {
		snprintf(r->tenant, sizeof(r->tenant), "%s", toks->v[match].tenant);
		r->admin = toks->v[match].admin;
	}
	return ok;
}

/* --- body sinks ---------------------------------------------------------- */

/* The form's name part, kept in r->form_name: bounded, once, no NUL. */
static enum MHD_Result form_name_part(struct pcd_req *r, uint64_t off, const char *data, size_t size)
{
	if (off == 0 && r->has_form_name) {
		pc_error_set(&r->body_err, PC_ERR_BAD_REQUEST, "name", "the part appears twice");
		return MHD_NO;
	}
	r->has_form_name = 1;
	if (size > sizeof(r->form_name) - 1 - r->form_name_len) {
		pc_error_set(&r->body_err, PC_ERR_BAD_REQUEST, "name", "longer than %d bytes", PCD_NAME_MAX);
		return MHD_NO;
	}
	if (memchr(data, '\0', size)) {
		pc_error_set(&r->body_err, PC_ERR_BAD_REQUEST, "name", "contains a NUL byte");
		return MHD_NO;
	}
	memcpy(r->form_name + r->form_name_len, data, size);
	r->form_name_len += size;
	r->form_name[r->form_name_len] = '\0';
	return MHD_YES;
}

static enum MHD_Result part_cb(void *cls, enum MHD_ValueKind kind, const char *key, const char *filename,
			       const char *content_type, const char *transfer_encoding, const char *data,
			       uint64_t off, size_t size)
{
	struct pcd_req *r = cls;
	struct pcd_blob_writer **w;

	if (r->body_err.code)
		return MHD_NO;
	if (key && !strcmp(key, "name"))
		return form_name_part(r, off, data, size);
	if (!key || !(w = pcd_req_part_writer(r, key))) {
		pc_error_set(&r->body_err, PC_ERR_BAD_REQUEST, key ? key : "",
			     "unexpected form part (the parts are inputs, labels and name)");
		return MHD_NO;
	}
	/* a file name that could not be a name is no default for one */
	if (off == 0 && !strcmp(key, "inputs") && filename && filename[0] && strlen(filename) <= PCD_NAME_MAX &&
	    !pcd_name_check("name", filename, PC_ERR_BAD_REQUEST, &(struct pc_error){0}))
		snprintf(r->inputs_filename, sizeof(r->inputs_filename), "%s", filename);
	if (!*w && pcd_blob_writer_begin(r->http->app->blobs, r->part_limit, w, &r->body_err))
		return MHD_NO;
	if (off == 0 && pcd_blob_writer_bytes(*w) > 0) {
		pc_error_set(&r->body_err, PC_ERR_BAD_REQUEST, key, "the part appears twice");
		return MHD_NO;
	}
	if (size && pcd_blob_writer_write(*w, data, size, &r->body_err))
		return MHD_NO;
	if (r->body_err.code == 0 && pcd_blob_writer_bytes(r->inputs ? r->inputs : *w) +
					     (r->labels && r->inputs ? pcd_blob_writer_bytes(r->labels) : 0) >
				     r->part_limit) {
		pc_error_set(&r->body_err, PC_ERR_LIMIT, "dataset", "the dataset is larger than max_dataset_mb");
		return MHD_NO;
	}
	return MHD_YES;
}

static void sink(struct pcd_req *r, const char *data, size_t size)
{
	r->bytes_in += size;
	if (r->body_err.code)
		return; /* discarding the rest of a refused body */
	switch (r->route->body) {
	case PCD_BODY_NONE:
		break;
	case PCD_BODY_JSON:
		if (r->body_len + size > r->body_max) {
			pc_error_set(&r->body_err, PC_ERR_LIMIT, "body", "the body is larger than max_spec_kb");
			break;
		}
		if (r->body_len + size + 1 > r->body_cap) {
			size_t cap = (r->body_len + size + 1) * 2;
			char *b = realloc(r->body, cap);

			if (!b) {
				pc_error_set(&r->body_err, PC_ERR_NOMEM, "body", "out of memory");
				break;
			}
			r->body = b;
			r->body_cap = cap;
		}
		memcpy(r->body + r->body_len, data, size);
		r->body_len += size;
		r->body[r->body_len] = '\0';
		break;
	case PCD_BODY_MODEL:
		pcd_blob_writer_write(r->model, data, size, &r->body_err);
		break;
	case PCD_BODY_MULTIPART:
		if (MHD_post_process(r->pp, data, size) != MHD_YES && !r->body_err.code)
			pc_error_set(&r->body_err, PC_ERR_BAD_REQUEST, NULL, "malformed multipart/form-data body");
		break;
	}
}

/* The media type each kind of body must have, what the problem says
 * otherwise, and the limit: a setting in units of 1 << shift, plus slack.
 * A multipart body's parts are counted against its limit; the framing
 * (boundaries, part headers) gets a little room on top. */
static const struct {
	const char *type;
	const char *detail;
	size_t setting; /* offsetof a limit in struct pcd_settings */
	int shift;
	uint64_t slack;
} body_kinds[] = {
	[PCD_BODY_JSON] = {"application/json", "the body must be application/json",
			   offsetof(struct pcd_settings, max_spec_kb), 10, 0},
	[PCD_BODY_MODEL] = {"application/octet-stream", "the body must be the ONNX file as application/octet-stream",
			    offsetof(struct pcd_settings, max_model_mb), 20, 0},
	[PCD_BODY_MULTIPART] = {"multipart/form-data", "the body must be multipart/form-data with parts inputs, labels and name",
				offsetof(struct pcd_settings, max_dataset_mb), 20, 65536},
};

/* Checks the media type and declared length and opens the sink; 0 or a
 * response already queued (returns 1). */
static int body_begin(struct pcd_req *r)
{
	const struct pcd_settings *s = r->http->app->settings;
	const char *ct = pcd_req_header(r, "Content-Type");
	const char *cl = pcd_req_header(r, "Content-Length");
	uint64_t limit = 0, declared = 0;
	struct pc_error err = {0};
	int kind = r->route->body, setting;

	if (kind == PCD_BODY_NONE)
		return 0;
	if (!media_is(ct, body_kinds[kind].type)) {
		pcd_send_problem(r, PC_ERR_MEDIA_TYPE, NULL, (const char *const[]){"Accept-Post", body_kinds[kind].type, NULL},
				 "%s", body_kinds[kind].detail);
		return 1;
	}
	memcpy(&setting, (const char *)s + body_kinds[kind].setting, sizeof(setting));
	limit = ((uint64_t)setting << body_kinds[kind].shift) + body_kinds[kind].slack;
	if (cl) {
		char *end;

		errno = 0;
		declared = strtoull(cl, &end, 10);
		if (errno || end == cl || *end) {
			pcd_send_problem(r, PC_ERR_BAD_REQUEST, NULL, NULL, "malformed Content-Length");
			return 1;
		}
		if (declared > limit) {
			pcd_send_problem(r, PC_ERR_LIMIT, NULL, NULL,
					 "the body (%llu bytes) is larger than the limit (%llu bytes)",
					 (unsigned long long)declared, (unsigned long long)limit);
			return 1;
		}
	}
	switch (r->route->body) {
	case PCD_BODY_JSON:
		r->body_max = (size_t)limit;
		break;
	case PCD_BODY_MODEL:
		if (pcd_blob_writer_begin(r->http->app->blobs, limit, &r->model, &err)) {
			pcd_send_error(r, &err);
			return 1;
		}
		break;
	case PCD_BODY_MULTIPART:
		r->part_limit = (uint64_t)s->max_dataset_mb << 20;
		r->pp = MHD_create_post_processor(r->conn, PP_BUFFER, part_cb, r);
		if (!r->pp) {
			pcd_send_problem(r, PC_ERR_MEDIA_TYPE, NULL, NULL, "multipart/form-data without a boundary");
			return 1;
		}
		break;
	default:
		break;
	}
	return 0;
}

/* --- MHD callbacks ------------------------------------------------------- */

static void log_request(struct pcd_req *r, double seconds)
{
	char path[600];

	/* the path is the client's text: quoted and escaped; tenant is "-"
	 * before (or without) authentication */
	pcd_log("info",
		"msg=request req_id=%s method=%s path=%s route=\"%s\" status=%u bytes_in=%llu dur_ms=%.3f tenant=%s%s",
		r->req_id, r->method_label, pcd_log_quote(r->url, path, sizeof(path)), r->route_label, r->status,
		(unsigned long long)r->bytes_in, seconds * 1e3, r->tenant[0] ? r->tenant : "-",
		r->admin ? " role=admin" : "");
}

static enum MHD_Result access_cb(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
				 const char *version, const char *upload_data, size_t *upload_data_size,
				 void **con_cls)
{
	struct pcd_http *h = cls;
	struct pcd_req *r = *con_cls;
	char allow[128];
	int known, rc;

	if (!r) {
		if (!(r = calloc(1, sizeof(*r))))
			return MHD_NO;
		*con_cls = r;
		r->http = h;
		r->conn = conn;
		r->method = method;
		snprintf(r->method_label, sizeof(r->method_label), "%s", method_static(method));
		snprintf(r->url, sizeof(r->url), "%s", url);
		snprintf(r->req_id, sizeof(r->req_id), "r-%lx-%lu", (unsigned long)getpid() & 0xffff,
			 (unsigned long)atomic_fetch_add(&h->next_req, 1));
		r->start = pc_sys_seconds();
		r->route_label = "unmatched";
		r->route = route_find(method, url, r->params, &known, allow, sizeof(allow));
		if (r->route)
			r->route_label = r->route->template;
		if (!strcmp(method, "OPTIONS") && known) {
			/* a preflight (or a plain OPTIONS): the methods, and the
			 * CORS grants when the origin is configured */
			const char *const cors_hdrs[] = {"Allow", allow, "Access-Control-Allow-Methods", allow,
							 "Access-Control-Allow-Headers",
							 "Authorization, Content-Type, Idempotency-Key",
							 "Access-Control-Max-Age", "600", NULL};
			const char *const plain[] = {"Allow", allow, NULL};
			struct MHD_Response *resp = MHD_create_response_from_buffer(0, "", MHD_RESPMEM_PERSISTENT);

			r->route_label = "preflight";
			return queue(r, 204, resp, cors_match(r) ? cors_hdrs : plain);
		}
		if (!host_allowed(r))
			return pcd_send_problem(r, PC_ERR_MISDIRECTED, NULL, NULL,
						"the Host header names another server (see allowed_hosts)");
		if (!r->route) {
			if (known)
				return pcd_send_problem(r, PC_ERR_METHOD, NULL, (const char *const[]){"Allow", allow, NULL},
							"method not allowed on this resource");
			return pcd_send_problem(r, PC_ERR_NOT_FOUND, NULL, NULL, "no such resource");
		}
		if (!r->route->public_route && !authorized(r))
			return pcd_send_problem(r, PC_ERR_UNAUTHORIZED, NULL,
						(const char *const[]){"WWW-Authenticate", "Bearer realm=\"paracorr\"",
								      NULL},
						"a valid bearer token is required");
		if (r->route->admin_route && r->http->app->tokens && !r->admin)
			return pcd_send_problem(r, PC_ERR_FORBIDDEN, NULL, NULL,
						"this route is for a token of the admin role");
		if (r->route->before && r->route->before(r))
			return r->responded ? MHD_YES : MHD_NO;
		body_begin(r); /* may answer 413 / 415 before the body */
		return MHD_YES;
	}
	if (r->responded) {
		/* answered before the body: MHD closes the connection after it */
		*upload_data_size = 0;
		return MHD_YES;
	}
	if (*upload_data_size) {
		sink(r, upload_data, *upload_data_size);
		*upload_data_size = 0;
		return MHD_YES;
	}
	/* the whole body is in */
	if (r->pp) {
		if (MHD_destroy_post_processor(r->pp) != MHD_YES && !r->body_err.code)
			pc_error_set(&r->body_err, PC_ERR_BAD_REQUEST, NULL, "malformed multipart/form-data body");
		r->pp = NULL;
	}
	if (r->body_err.code)
		return pcd_send_error(r, &r->body_err);
	rc = r->route->handler(r);
	/* MHD calls a handler that queued nothing again at once, and again:
	 * one that could not answer (no memory for the answer) closes the
	 * connection instead of spinning the thread */
	return r->responded ? rc : MHD_NO;
}

static void completed_cb(void *cls, struct MHD_Connection *conn, void **con_cls,
			 enum MHD_RequestTerminationCode toe)
{
	struct pcd_http *h = cls;
	struct pcd_req *r = *con_cls;
	double s;

	if (!r)
		return;
	*con_cls = NULL;
	s = pc_sys_seconds() - r->start;
	if (!r->responded)
		r->status = 499; /* the client went away (nginx's convention) */
	log_request(r, s);
	pcd_prom_request(h->app->prom, r->route_label, method_static(r->method_label), (int)r->status, s);
	if (r->pp)
		MHD_destroy_post_processor(r->pp);
	pcd_blob_writer_abort(r->model);
	pcd_blob_writer_abort(r->inputs);
	pcd_blob_writer_abort(r->labels);
	free(r->body);
	free(r);
}

/* --- the daemon ---------------------------------------------------------- */

/* Starts MHD on sa with its own polling threads, or, when sa is NULL, with
 * no listening socket and no thread: the caller's pcd_http_run polls. */
static int start_mhd(struct pcd_app *app, const struct sockaddr *sa, int ipv6, struct pcd_http **out,
		     struct pc_error *err)
{
	const struct pcd_settings *s = app->settings;
	/* the address and the thread pool go in an option array so that one
	 * call serves both: unbound, its first item ends it (no address, and
	 * no pool, which MHD refuses without its polling thread) */
	struct MHD_OptionItem where[] = {
		{sa ? MHD_OPTION_SOCK_ADDR : MHD_OPTION_END, 0, (void *)sa},
		{MHD_OPTION_THREAD_POOL_SIZE, (intptr_t)s->http_threads, NULL},
		{MHD_OPTION_END, 0, NULL}};
	struct pcd_http *h;
	unsigned flags;

	*out = NULL;
	if (!(h = calloc(1, sizeof(*h))))
		return pc_error_set(err, PC_ERR_NOMEM, "http", "out of memory");
	h->app = app;
	h->listen_fd = MHD_INVALID_SOCKET;
	atomic_init(&h->next_req, 1);
	/* ITC lets MHD_quiesce_daemon wake the polling threads at a drain,
	 * and MHD_add_connection wake them for a new connection. Unbound, the
	 * harness's own thread polls: a request then costs no hand-over
	 * between threads (the HTTP fuzzer's inputs are mostly that) */
	flags = MHD_USE_ITC | MHD_USE_ERROR_LOG | (ipv6 ? MHD_USE_IPv6 : 0) |
		(sa ? MHD_USE_INTERNAL_POLLING_THREAD : MHD_USE_NO_LISTEN_SOCKET);
	/* poll, not epoll: MHD_quiesce_daemon (the drain) takes an epoll
	 * daemon's listen socket out of its epoll set from our thread while the
	 * polling thread may be doing the same, and libmicrohttpd 0.9.75 aborts
	 * the process when that removal fails ("Failed to remove listen FD from
	 * epoll set": a SIGTERM drain in the test suite, under load, died so);
	 * quiescing a poll daemon only sets a flag. A few hundred connections
	 * at most cost poll nothing measurable. The harness's daemon selects,
	 * the one way MHD runs in its caller's thread. */
	h->d = MHD_start_daemon(flags | (sa ? MHD_USE_POLL : 0), 0, NULL, NULL, access_cb, h, MHD_OPTION_ARRAY, where,
				MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)s->connection_timeout_s,
				MHD_OPTION_CONNECTION_LIMIT, (unsigned int)s->max_connections,
				MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned int)s->max_connections_per_ip,
				MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)s->connection_memory_kb << 10,
				MHD_OPTION_NOTIFY_COMPLETED, completed_cb, h, MHD_OPTION_END);
	if (!h->d) {
		free(h);
		return pc_error_set(err, PC_ERR_IO, "listen", "cannot listen on %s port %d: %s", s->listen, s->port,
				    strerror(errno));
	}
	*out = h;
	return 0;
}

int pcd_http_start(struct pcd_app *app, struct pcd_http **out, int *bound_port, struct pc_error *err)
{
	const struct pcd_settings *s = app->settings;
	struct sockaddr_in sin;
	struct sockaddr_in6 sin6;
	struct sockaddr *sa;
	const union MHD_DaemonInfo *info;
	int ipv6 = 0, rc;

	*out = NULL;
	memset(&sin, 0, sizeof(sin));
	memset(&sin6, 0, sizeof(sin6));
	if (inet_pton(AF_INET, s->listen, &sin.sin_addr) == 1) {
		sin.sin_family = AF_INET;
		sin.sin_port = htons((uint16_t)s->port);
		sa = (struct sockaddr *)&sin;
	} else if (inet_pton(AF_INET6, s->listen, &sin6.sin6_addr) == 1) {
		sin6.sin6_family = AF_INET6;
		sin6.sin6_port = htons((uint16_t)s->port);
		sa = (struct sockaddr *)&sin6;
		ipv6 = 1;
	} else {
		return pc_error_set(err, PC_ERR_INVALID, "listen", "'%s' is not an IPv4 or IPv6 address", s->listen);
	}
	if ((rc = start_mhd(app, sa, ipv6, out, err)))
		return rc;
	info = MHD_get_daemon_info((*out)->d, MHD_DAEMON_INFO_BIND_PORT);
	if (bound_port)
		*bound_port = info ? info->port : s->port;
	return 0;
}

int pcd_http_start_unbound(struct pcd_app *app, struct pcd_http **out, struct pc_error *err)
{
	return start_mhd(app, NULL, 0, out, err);
}

int pcd_http_add_connection(struct pcd_http *h, int fd, const struct sockaddr *peer, socklen_t peer_len)
{
	return MHD_add_connection(h->d, fd, peer, peer_len) == MHD_YES ? 0 : -1;
}

int pcd_http_run(struct pcd_http *h, int wait_ms)
{
	return MHD_run_wait(h->d, wait_ms) == MHD_YES ? 0 : -1;
}

void pcd_http_quiesce(struct pcd_http *h)
{
	MHD_socket fd;

	if (!h || h->quiesced)
		return;
	h->quiesced = 1;
	fd = MHD_quiesce_daemon(h->d);
	/* ours to close, but only once MHD has stopped: closed now, its number
	 * could be reused (a database file, a connection) while MHD's threads
	 * still hold it, and MHD panics (aborts) when a close it makes fails */
	if (fd != MHD_INVALID_SOCKET)
		shutdown(fd, SHUT_RDWR);
	h->listen_fd = fd;
}

void pcd_http_stop(struct pcd_http *h)
{
	if (!h)
		return;
	MHD_stop_daemon(h->d);
	if (h->listen_fd != MHD_INVALID_SOCKET)
		close(h->listen_fd);
	free(h);
}

/* One line of a tokens file (NUL-terminated, without its newline) into
 * *t; 0 for a blank or comment line (*t untouched), 1 for a token, or a
 * PC_ERR_* (after setting err with the line number). */
static int token_line(const char *path, size_t lineno, char *line, struct pcd_token *t, struct pc_error *err)
{
	static const char usage[] = "a line is TOKEN [tenant=NAME] [role=admin|user]";
	char *p = line, *field, *save = NULL;
	int have_tenant = 0, have_role = 0, nfield = 0;
	struct pcd_sha256 c;

	while (*p == ' ' || *p == '\t')
		p++;
	if (!*p || *p == '#' || *p == '\r')
		return 0;
	memset(t, 0, sizeof(*t));
	snprintf(t->tenant, sizeof(t->tenant), "%s", PCD_DEFAULT_TENANT);
	for (field = strtok_r(p, " \t\r", &save); field; field = strtok_r(NULL, " \t\r", &save), nfield++) {
		if (nfield == 0) {
			/* a token that reads like a field is a line whose token is missing */
			if (!strncmp(field, "tenant=", 7) || !strncmp(field, "role=", 5))
				return pc_error_set(err, PC_ERR_INVALID, "tokens_file", "%s line %zu: the token is missing (%s)",
						    path, lineno, usage);
			pcd_sha256_init(&c);
			pcd_sha256_update(&c, field, strlen(field));
			pcd_sha256_final(&c, t->digest);
			continue;
		}
		if (!strncmp(field, "tenant=", 7)) {
			if (have_tenant++)
				return pc_error_set(err, PC_ERR_INVALID, "tokens_file", "%s line %zu: tenant= appears twice",
						    path, lineno);
			if (!pcd_tenant_name_valid(field + 7))
				return pc_error_set(err, PC_ERR_INVALID, "tokens_file",
						    "%s line %zu: a tenant name is 1 to %d of A-Z a-z 0-9 . _ -", path,
						    lineno, PCD_TENANT_MAX);
			snprintf(t->tenant, sizeof(t->tenant), "%s", field + 7);
		} else if (!strncmp(field, "role=", 5)) {
			if (have_role++)
				return pc_error_set(err, PC_ERR_INVALID, "tokens_file", "%s line %zu: role= appears twice",
						    path, lineno);
			if (!strcmp(field + 5, "admin"))
				t->admin = 1;
			else if (strcmp(field + 5, "user"))
				return pc_error_set(err, PC_ERR_INVALID, "tokens_file",
						    "%s line %zu: role must be admin or user", path, lineno);
		} else {
			/* the field is not echoed: it may be a token with a space in it */
			return pc_error_set(err, PC_ERR_INVALID, "tokens_file", "%s line %zu: field %d is unknown (%s)",
					    path, lineno, nfield + 1, usage);
		}
	}
	return 1;
}

int pcd_http_tokens_parse(const char *path, const char *text, size_t len, struct pcd_tokens **out,
			  struct pc_error *err)
{
	struct pcd_tokens *toks = NULL;
	struct pcd_token t;
	size_t *lines = NULL, lineno = 0, pos = 0, cap = 0, i, line_len = 0;
	char *line = NULL;
	int rc = 0;

	*out = NULL;
	if (!path)
		path = "the tokens file";
	if (!(toks = calloc(1, sizeof(*toks))))
		goto nomem;
	while (pos < len) {
		const char *nl = memchr(text + pos, '\n', len - pos);
		size_t n = nl ? (size_t)(nl - (text + pos)) : len - pos;

		lineno++;
		if (memchr(text + pos, '\0', n)) {
			rc = pc_error_set(err, PC_ERR_INVALID, "tokens_file", "%s line %zu: a NUL byte", path, lineno);
			goto fail;
		}
		if (line)
			explicit_bzero(line, line_len);
		free(line);
		if (!(line = malloc(n + 1)))
			goto nomem;
		line_len = n;
		memcpy(line, text + pos, n);
		line[n] = '\0';
		pos += n + (nl != NULL);
		rc = token_line(path, lineno, line, &t, err);
		if (rc == 0)
			continue;
		if (rc != 1)
			goto fail;
		rc = 0;
		/* a token listed twice would act for whichever line comes first */
		for (i = 0; i < toks->n; i++)
			if (!memcmp(toks->v[i].digest, t.digest, sizeof(t.digest))) {
				rc = pc_error_set(err, PC_ERR_INVALID, "tokens_file", "%s line %zu: the same token as line %zu",
						  path, lineno, lines[i]);
				goto fail;
			}
		if (toks->n == cap) {
			size_t nc = cap ? 2 * cap : 8;
			struct pcd_token *v = realloc(toks->v, nc * sizeof(*v));
			size_t *l;

			if (!v)
				goto nomem;
			toks->v = v;
			if (!(l = realloc(lines, nc * sizeof(*l))))
				goto nomem;
			lines = l;
			cap = nc;
		}
		lines[toks->n] = lineno;
		toks->v[toks->n++] = t;
	}
	if (!toks->n) {
		rc = pc_error_set(err, PC_ERR_INVALID, "tokens_file", "%s holds no token", path);
		goto fail;
	}
	if (line)
		explicit_bzero(line, line_len);
	free(line);
	free(lines);
	*out = toks;
	return 0;
nomem:
	rc = pc_error_set(err, PC_ERR_NOMEM, "tokens_file", "out of memory");
fail:
	if (line)
		explicit_bzero(line, line_len);
	free(line);
	free(lines);
	pcd_http_tokens_free(toks);
	return rc;
}

int pcd_http_tokens_load(const char *path, struct pcd_tokens **out, struct pc_error *err)
{
	char *text = NULL, *p;
	size_t len = 0, cap = 0, n;
	FILE *f = fopen(path, "r");
	int rc;

	*out = NULL;
	if (!f)
		return pc_error_set(err, PC_ERR_IO, "tokens_file", "cannot open %s: %s", path, strerror(errno));
	/* the whole file, of any size: a token cut at a buffer's end would stop
	 * working and leave its pieces valid */
	for (;;) {
		if (len == cap) {
			if (cap > ((size_t)64 << 20)) {
				fclose(f);
				free(text);
				return pc_error_set(err, PC_ERR_LIMIT, "tokens_file", "%s is larger than 64 MiB", path);
			}
			cap = cap ? 2 * cap : 4096;
			if (!(p = realloc(text, cap))) {
				fclose(f);
				free(text);
				return pc_error_set(err, PC_ERR_NOMEM, "tokens_file", "out of memory");
			}
			text = p;
		}
		n = fread(text + len, 1, cap - len, f);
		len += n;
		if (n == 0)
			break;
	}
	if (ferror(f)) {
		fclose(f);
		free(text);
		return pc_error_set(err, PC_ERR_IO, "tokens_file", "cannot read %s", path);
	}
	fclose(f);
	rc = pcd_http_tokens_parse(path, text, len, out, err);
	/* the secrets do not outlive the parse */
	explicit_bzero(text, cap);
	free(text);
	return rc;
}

void pcd_http_tokens_free(struct pcd_tokens *tokens)
{
	if (!tokens)
		return;
	free(tokens->v);
	free(tokens);
}
