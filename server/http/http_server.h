/* http_server: the daemon's HTTP front on libmicrohttpd (0.9.75 API).
 *
 * One MHD daemon with its internal polling thread (poll: http_server.c
 * says why not epoll) and every limit set explicitly. Requests are matched
 * against a route table (http_routes.c: method, template, handler, body
 * kind); the body is streamed into the sink its route declares (a blob
 * writer for a model, a multipart parser feeding two blob writers for a
 * dataset and a small buffer for its name part, a bounded buffer for
 * JSON) and the handler runs once the body is complete; a route's before
 * hook may refuse the request before any of the body is read. Nothing here computes a study: handlers only validate,
 * store, and wake the workers.
 *
 * Per-request state is allocated on the first callback and freed in the
 * completion callback, which also writes the request's log line and its
 * metrics. Errors are application/problem+json (problem.h), every one
 * from a pc_error and the error table of paracorr/error.h. */
#ifndef PARACORR_SERVER_HTTP_SERVER_H
#define PARACORR_SERVER_HTTP_SERVER_H

#include <jansson.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "paracorr/error.h"
#include "store.h"
#include "validate.h"

struct pcd_settings;
struct pcd_store;
struct pcd_blobs;
struct pcd_workers;
struct pcd_prom;
struct pcd_http;
struct pcd_req;

/* A bearer token of the tokens file: kept as its SHA-256 (the secret is
 * not held in memory, and a comparison costs the same for any length),
 * with the tenant it acts for and its role. */
struct pcd_token {
	uint8_t digest[32];
	char tenant[PCD_TENANT_MAX + 1];
	int admin; /* role admin: sees and acts on every tenant's uploads and jobs */
};

struct pcd_tokens {
	struct pcd_token *v;
	size_t n; /* >= 1 */
};

/* What the HTTP layer works with; owned by main, which outlives the server. */
struct pcd_app {
	const struct pcd_settings *settings;
	struct pcd_store *store;
	struct pcd_blobs *blobs;
	struct pcd_workers *workers;
	struct pcd_prom *prom;
	/* NULL: no authentication, and every client is tenant "default" with
	 * the ordinary role (README, security) */
	struct pcd_tokens *tokens;
	struct pcd_validator validator; /* where uploads are checked (validate.h) */
	atomic_int draining;
};

/* Starts serving on settings->listen:port (port 0 picks a free one;
 * *bound_port receives it). *out is owned by the caller (pcd_http_stop). */
int pcd_http_start(struct pcd_app *app, struct pcd_http **out, int *bound_port, struct pc_error *err);
/* The same with no listening socket and no thread of its own, for
 * harnesses (the HTTP fuzzer): connections come only from
 * pcd_http_add_connection, and nothing happens on them but in
 * pcd_http_run. */
int pcd_http_start_unbound(struct pcd_app *app, struct pcd_http **out, struct pc_error *err);
/* Hands MHD a connected socket (one end of a socketpair, say) as if it had
 * accepted it from peer; MHD owns and closes fd, also on failure. -1 when
 * MHD refuses it (errno says why). */
int pcd_http_add_connection(struct pcd_http *h, int fd, const struct sockaddr *peer, socklen_t peer_len);
/* For a daemon of pcd_http_start_unbound: waits up to wait_ms (0: not at
 * all) for activity on its connections, then processes what is ready
 * (reads, handlers, writes, timeouts) in the caller's thread. -1 when MHD
 * refuses. */
int pcd_http_run(struct pcd_http *h, int wait_ms);
/* Stops accepting new connections; requests in flight finish. */
void pcd_http_quiesce(struct pcd_http *h);
/* Stops the daemon and frees h. NULL is fine. */
void pcd_http_stop(struct pcd_http *h);

/* Reads a tokens file into *out, freed with pcd_http_tokens_free. A line
 * is `TOKEN [tenant=NAME] [role=admin|user]` (fields separated by spaces
 * or tabs, in any order after the token; defaults tenant=default,
 * role=user, so a bare token is valid); blank lines and lines starting
 * with # are skipped; lines of any length. A bad line is PC_ERR_INVALID
 * with where "tokens_file" and a text naming the line number, never the
 * token. parse does the same on text in memory (for the fuzzer); path
 * then only names the source in messages. */
int pcd_http_tokens_load(const char *path, struct pcd_tokens **out, struct pc_error *err);
int pcd_http_tokens_parse(const char *path, const char *text, size_t len, struct pcd_tokens **out,
			  struct pc_error *err);
void pcd_http_tokens_free(struct pcd_tokens *tokens);

/* --- for the route handlers (http_routes.c) ------------------------------ */

enum pcd_body {
	PCD_BODY_NONE,	    /* a body is ignored */
	PCD_BODY_JSON,	    /* application/json, at most max_spec_kb */
	PCD_BODY_MODEL,	    /* application/octet-stream, streamed to a blob writer */
	PCD_BODY_MULTIPART, /* multipart/form-data parts inputs and labels, to blob writers; name, kept */
};

/* Returns an MHD_Result (MHD_YES / MHD_NO) after queueing a response. */
typedef int (*pcd_route_fn)(struct pcd_req *r);
/* A route's early check: runs once the route and the token are known,
 * before any body byte is read, so that a request refused for its query
 * (a bad ?name=) is not made to send megabytes first. 0: go on; else it
 * has answered (with pcd_send_*). */
typedef int (*pcd_before_fn)(struct pcd_req *r);

struct pcd_route {
	const char *method;
	const char *template; /* "/v1/jobs/{id}": a {…} matches one path segment */
	pcd_route_fn handler;
	enum pcd_body body;
	int public_route; /* served without a bearer token */
	int admin_route;  /* with a tokens file, the admin role only (403 for another token) */
	pcd_before_fn before; /* NULL: none */
};

extern const struct pcd_route pcd_routes[];
extern const size_t pcd_n_routes;

/* The request as a handler sees it. */
struct pcd_app *pcd_req_app(struct pcd_req *r);
const char *pcd_req_id_param(struct pcd_req *r);   /* the first {…} segment ({id}), or "" */
const char *pcd_req_name_param(struct pcd_req *r); /* the second ({name}), or "" */
/* The tenant the request acts for (its token's; "default" without tokens)
 * and the scope of what it may see: its tenant, or PCD_ALL_TENANTS (NULL)
 * for the admin role. */
const char *pcd_req_tenant(struct pcd_req *r);
const char *pcd_req_scope(struct pcd_req *r);
int pcd_req_admin(struct pcd_req *r);
const char *pcd_req_request_id(struct pcd_req *r); /* for log lines; also sent as X-Request-Id */
const char *pcd_req_url(struct pcd_req *r);
const char *pcd_req_header(struct pcd_req *r, const char *name);
const char *pcd_req_query(struct pcd_req *r, const char *name);
/* Every value of a repeated query parameter, in order: the first max into
 * out; returns how many there are (may exceed max). */
int pcd_req_query_all(struct pcd_req *r, const char *name, const char **out, int max);
/* PCD_BODY_JSON: the body (NUL-terminated) and its length. */
const char *pcd_req_body(struct pcd_req *r, size_t *len);
/* PCD_BODY_MODEL: the writer (the handler takes it: set to NULL after). */
struct pcd_blob_writer **pcd_req_model_writer(struct pcd_req *r);
/* PCD_BODY_MULTIPART: the writers of the parts (NULL when absent). */
struct pcd_blob_writer **pcd_req_part_writer(struct pcd_req *r, const char *part);
/* PCD_BODY_MULTIPART: the text of the form's "name" part (NUL-terminated,
 * at most PCD_NAME_MAX bytes, no NUL inside: the sink refuses others), and
 * the file name the inputs part was sent with; NULL when absent. */
const char *pcd_req_form_name(struct pcd_req *r);
const char *pcd_req_inputs_filename(struct pcd_req *r);
/* The filename parameter of the request's Content-Disposition header
 * (RFC 6266: filename="x.onnx" or filename=x.onnx; filename* is not
 * read), when it is a valid name (pcd_name_check); NULL otherwise. A raw
 * model upload's file name: curl -H 'Content-Disposition: attachment;
 * filename="m.onnx"', or what a client sets. */
const char *pcd_req_disposition_filename(struct pcd_req *r);

/* Responses. The json reference is taken (decref'd). extra_headers is
 * NULL or a NULL-terminated list of name, value pairs. */
int pcd_send_json(struct pcd_req *r, unsigned status, json_t *body, const char *const *extra_headers);
int pcd_send_text(struct pcd_req *r, unsigned status, const char *content_type, const char *text, size_t len);
/* A file's bytes, streamed from fd (taken: closed when sent). */
int pcd_send_file(struct pcd_req *r, unsigned status, const char *content_type, int fd, uint64_t size,
		  const char *const *extra_headers);
/* Seconds a 503's Retry-After asks a client to wait. */
#define RETRY_AFTER_S "5"
/* A problem+json (problem.h) for err, with instance the request path and
 * the HTTP status from the error table. _h: with extra_headers. A 503 (a
 * store that is busy or unreachable, memory) without extra_headers gets
 * Retry-After: every 503 is worth trying again. */
int pcd_send_error(struct pcd_req *r, const struct pc_error *err);
int pcd_send_error_h(struct pcd_req *r, const struct pc_error *err, const char *const *extra_headers);
/* The same for an error made here: code, where (a field, a setting or a
 * place, as the code's row of the table says; NULL: none) and the text. */
int pcd_send_problem(struct pcd_req *r, enum pc_status code, const char *where, const char *const *extra_headers,
		     const char *fmt, ...) __attribute__((format(printf, 5, 6)));

#endif
