/* client: the command-line program's side of the HTTP API (libcurl), for
 * `paracorr submit | status | fetch`. One request at a time; uploads are
 * streamed from their files, never read whole into memory. */
#ifndef PARACORR_SERVER_CLIENT_H
#define PARACORR_SERVER_CLIENT_H

#include <stddef.h>

#include "paracorr/error.h"

struct pcd_client {
	char base[512];	  /* "http://127.0.0.1:8080", no trailing slash */
	char auth[1100];  /* "Authorization: Bearer …" or "" */
	const char *extra; /* one more header line for the next requests, or NULL */
	/* an upload's progress (kB sent, time left) drawn on stderr under this
	 * label; NULL: none */
	const char *upload_label;
};

struct pcd_client_resp {
	long status;
	char *body; /* NUL-terminated, malloc'd */
	size_t len;
	char location[512];
};

/* server: a base URL (NULL: $PARACORR_SERVER, else http://127.0.0.1:8080);
 * token: NULL for $PARACORR_TOKEN, "" for none. */
int pcd_client_init(struct pcd_client *c, const char *server, const char *token, struct pc_error *err);

/* One request. The body is one of: len bytes at body, the file at
 * upload_path, or multipart parts (NULL-terminated name, path pairs). */
int pcd_client_do(const struct pcd_client *c, const char *method, const char *path, const char *content_type,
		  const char *body, size_t len, const char *upload_path, const char *const *parts,
		  struct pcd_client_resp *r, struct pc_error *err);
void pcd_client_resp_free(struct pcd_client_resp *r);
/* "PATH?name=<the base name of file, percent-encoded>" into out; the
 * upload's name (else the bare path when the name does not fit). */
void pcd_client_named_path(const char *path, const char *file, char *out, size_t n);

/* A response that is not 2xx as an error: "<what>: HTTP <status>: <detail>",
 * then a line per field the problem's errors[] names (pcd_problem_cli_text),
 * with the problem's first JSON pointer as where. Returns the code set. */
int pcd_client_problem(const struct pcd_client_resp *r, const char *what, struct pc_error *err);

#endif
