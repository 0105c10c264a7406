/* Helpers for the daemon backend tests: fresh temp directories, a
 * paracorrd child on a free loopback port with its data under a temp dir,
 * and the one HTTP request function they all send with. */
#ifndef PARACORR_TEST_BE_UTIL_H
#define PARACORR_TEST_BE_UTIL_H

#include <curl/curl.h>
#include <jansson.h>
#include <limits.h>
#include <stddef.h>
#include <sys/types.h>

/* mkdtemp under $TMPDIR (or /tmp) into buf; returns buf or NULL. */
char *be_tmpdir(char *buf, size_t size);
/* rm -rf path. */
void be_rmtree(const char *path);
/* Whole file into a malloc'd NUL-terminated buffer; NULL on error. */
char *be_read_file(const char *path, size_t *len);
/* Runs `/bin/sh -c cmd` in the project root; its stdout into out (at most
 * size - 1 bytes kept, the rest read and dropped; NUL-terminated). The exit
 * status, 128 + signal when it died of one, -1 when it could not run or took
 * longer than timeout_s seconds (then it and its process group are killed). */
int be_run(const char *cmd, char *out, size_t size, int timeout_s);

/* A daemon the test started: dir (the caller's temp dir) holds data/ and
 * daemon.log; base is its http://127.0.0.1:port. */
struct be_daemon {
	pid_t pid;
	int port;
	char dir[PATH_MAX - 64];
	char base[128];
	const char *token; /* sent as a bearer token by every request when set */
};

void be_sleep_ms(int ms);
/* A loopback port free a moment ago, -1 when none could be bound. */
int be_free_port(void);
/* Starts $PARACORRD_BIN (bin) on d->dir with --port, --data-dir, then
 * `defaults` and `extra` (NULL-terminated flag/value lists, either may be
 * NULL; a later flag wins), and waits until /healthz answers 200; a few
 * ports are tried in case one is taken. 1 up, 0 failed (d->pid 0). */
int be_daemon_start(struct be_daemon *d, const char *bin, const char *const *defaults, const char *const *extra);
/* The same on another loopback address (host: "127.0.0.2", ...; NULL:
 * 127.0.0.1), passed as --listen and used in d->base. */
int be_daemon_start_on(struct be_daemon *d, const char *host, const char *bin, const char *const *defaults,
		       const char *const *extra);
/* GET /healthz answered 200 (with the daemon's token, as every request). */
int be_daemon_healthy(const struct be_daemon *d);
/* Sends sig and waits; the exit status (128 + signal when killed), -1
 * when it had died before the signal or did not exit within 10 s (then
 * it is killed). *seconds (may be NULL): how long it took. After an
 * unclean exit on anything but SIGKILL, the log's tail goes to stderr. */
int be_daemon_stop(struct be_daemon *d, int sig, double *seconds);

/* --- requests --------------------------------------------------------------- */

/* One part of a multipart body: the bytes of the file path, or len bytes
 * of data, or len bytes pulled from read (seek may be NULL), in that order
 * of preference. */
struct be_part {
	const char *name;
	const char *filename; /* sent as the part's filename when set */
	const char *path;
	const void *data;
	size_t len;
	curl_read_callback read;
	curl_seek_callback seek;
	void *arg;
};

struct be_req {
	const char *method; /* NULL: GET; HEAD reads no body */
	const char *url;    /* http://host:port */
	const char *path;   /* appended to url when set */
	const char *ctype;  /* the Content-Type header, NULL: none */
	/* more header lines, NULL-terminated (NULL: none); "Expect:" is sent
	 * unless one of them is an Expect header */
	const char *const *headers;
	const char *token; /* sent as a bearer token when set */
	/* the body, at most one of: len bytes at body; n_parts parts; or read
	 * until it returns 0, sent chunked */
	const void *body;
	size_t len;
	const struct be_part *parts;
	int n_parts;
	curl_read_callback read;
	void *read_arg;
	long timeout; /* seconds, 0: 60 */
};

struct be_resp {
	long status; /* 0 when no answer came */
	char *body;  /* NUL-terminated, malloc'd; NULL when empty */
	size_t len;
	char ctype[128];     /* the Content-Type, "" when none */
	char headers[8192];  /* the header lines, as many as fit */
	size_t hlen;
};

/* Sends q, filling *r (which it clears first; be_resp_free it after).
 * 0 when answered, -1 when no answer came (r->body then NULL). */
int be_request(const struct be_req *q, struct be_resp *r);
/* be_request to daemon d: method (NULL: GET) on path, with a body of len
 * bytes of type ctype, or with n_parts multipart parts. */
int be_daemon_request(const struct be_daemon *d, const char *method, const char *path, const char *ctype,
		      const void *body, size_t len, const struct be_part *parts, int n_parts, struct be_resp *r);
void be_resp_free(struct be_resp *r);
/* The body parsed as JSON (NULL when it is not), the caller's to decref. */
json_t *be_resp_json(const struct be_resp *r);
/* The value of header name (case-insensitive) into buf; NULL when absent. */
const char *be_resp_header(const struct be_resp *r, const char *name, char *buf, size_t size);
/* A dataset upload's parts into parts: the files inputs and labels, either
 * NULL to leave that part out. Their count. */
int be_dataset_parts(struct be_part parts[2], const char *inputs, const char *labels);

#endif
