/* Temp directories for the backend tests, removed with nftw; the daemon
 * child process the HTTP tests run against. */
#include "be_util.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <ftw.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "paracorr/sys.h"
#include "test.h"

char *be_tmpdir(char *buf, size_t size)
{
	const char *base = getenv("TMPDIR");

	if (snprintf(buf, size, "%s/paracorr-be-XXXXXX", base && *base ? base : "/tmp") >= (int)size)
		return NULL;
	return mkdtemp(buf);
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st, (void)flag, (void)ftw;
	remove(path);
	return 0;
}

void be_rmtree(const char *path)
{
	nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

char *be_read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	long n;

	if (!f)
		return NULL;
	if (fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0)
		goto out;
	buf = malloc((size_t)n + 1);
	if (!buf)
		goto out;
	if (fread(buf, 1, (size_t)n, f) != (size_t)n) {
		free(buf);
		buf = NULL;
		goto out;
	}
	buf[n] = '\0';
	if (len)
		*len = (size_t)n;
out:
	fclose(f);
	return buf;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int be_run(const char *cmd, char *out, size_t size, int timeout_s)
{
	int fd[2], st, timed_out = 0;
	size_t used = 0;
	double deadline = now_s() + timeout_s;
	pid_t pid, w = 0;

	if (size)
		out[0] = '\0';
	if (pipe(fd) != 0)
		return -1;
	if ((pid = fork()) < 0) {
		close(fd[0]);
		close(fd[1]);
		return -1;
	}
	if (pid == 0) {
		/* its own process group, so a timeout kills what the shell started */
		setpgid(0, 0);
		dup2(fd[1], STDOUT_FILENO);
		close(fd[0]);
		close(fd[1]);
		if (chdir(pc_test_root()) != 0)
			_exit(127);
		execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
		_exit(127);
	}
	close(fd[1]);
	for (;;) {
		struct pollfd pf = {.fd = fd[0], .events = POLLIN};
		double left = deadline - now_s();
		char drop[4096];
		ssize_t n;

		if (left <= 0) {
			timed_out = 1;
			break;
		}
		if (poll(&pf, 1, (int)(left * 1000) + 1) <= 0)
			continue;
		if (used + 1 < size) {
			n = read(fd[0], out + used, size - 1 - used);
			if (n > 0)
				used += (size_t)n;
		} else {
			n = read(fd[0], drop, sizeof(drop));
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
	}
	close(fd[0]);
	if (size)
		out[used] = '\0';
	/* a command may close its stdout and go on running: the deadline still holds */
	while (!timed_out && (w = waitpid(pid, &st, WNOHANG)) == 0) {
		if (now_s() >= deadline)
			timed_out = 1;
		else
			be_sleep_ms(10);
	}
	if (timed_out) {
		kill(-pid, SIGKILL);
		waitpid(pid, &st, 0);
		return -1;
	}
	if (w != pid)
		return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : WIFSIGNALED(st) ? 128 + WTERMSIG(st) : -1;
}

void be_sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

	nanosleep(&ts, NULL);
}

int be_free_port(void)
{
	struct sockaddr_in a = {0};
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0), port = -1;

	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
	    getsockname(fd, (struct sockaddr *)&a, &len) == 0)
		port = ntohs(a.sin_port);
	if (fd >= 0)
		close(fd);
	return port;
}

static size_t on_body(char *p, size_t size, size_t n, void *arg)
{
	struct be_resp *r = arg;
	char *b = realloc(r->body, r->len + size * n + 1);

	if (!b)
		return 0;
	memcpy(b + r->len, p, size * n);
	r->body = b;
	r->len += size * n;
	b[r->len] = '\0';
	return size * n;
}

static size_t on_header(char *p, size_t size, size_t n, void *arg)
{
	struct be_resp *r = arg;
	size_t len = size * n;

	if (r->hlen + len < sizeof(r->headers)) {
		memcpy(r->headers + r->hlen, p, len);
		r->hlen += len;
		r->headers[r->hlen] = '\0';
	}
	return len;
}

/* The multipart body of q's parts; NULL when curl cannot make one. */
static curl_mime *make_mime(CURL *c, const struct be_req *q)
{
	curl_mime *m = curl_mime_init(c);

	for (int i = 0; m && i < q->n_parts; i++) {
		const struct be_part *p = &q->parts[i];
		curl_mimepart *part = curl_mime_addpart(m);

		if (!part) {
			curl_mime_free(m);
			return NULL;
		}
		curl_mime_name(part, p->name);
		if (p->path)
			curl_mime_filedata(part, p->path);
		else if (p->read)
			curl_mime_data_cb(part, (curl_off_t)p->len, p->read, p->seek, NULL, p->arg);
		else
			curl_mime_data(part, p->data, p->len);
		if (p->filename)
			curl_mime_filename(part, p->filename);
	}
	return m;
}

int be_daemon_request(const struct be_daemon *d, const char *method, const char *path, const char *ctype,
		      const void *body, size_t len, const struct be_part *parts, int n_parts, struct be_resp *r)
{
	struct be_req q = {.method = method,
			   .url = d->base,
			   .path = path,
			   .ctype = ctype,
			   .body = body,
			   .len = len,
			   .parts = parts,
			   .n_parts = n_parts};

	return be_request(&q, r);
}

int be_request(const struct be_req *q, struct be_resp *r)
{
	const char *method = q->method ? q->method : "GET";
	CURL *c = curl_easy_init();
	struct curl_slist *h = NULL;
	curl_mime *mime = NULL;
	char url[1024], line[1024], *ct = NULL;
	int expect = 0;
	CURLcode rc = CURLE_FAILED_INIT;

	memset(r, 0, sizeof(*r));
	if (!c)
		return -1;
	snprintf(url, sizeof(url), "%s%s", q->url, q->path ? q->path : "");
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	if (!strcmp(method, "HEAD"))
		curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, r);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, q->timeout > 0 ? q->timeout : 60L);
	/* the tests run requests from several threads */
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	if (q->ctype) {
		snprintf(line, sizeof(line), "Content-Type: %s", q->ctype);
		h = curl_slist_append(h, line);
	}
	for (int i = 0; q->headers && q->headers[i]; i++) {
		h = curl_slist_append(h, q->headers[i]);
		expect |= !strncasecmp(q->headers[i], "Expect:", 7);
	}
	if (q->token) {
		/* tokens may be longer than any line buffer (http_tenants) */
		char *auth = malloc(strlen(q->token) + 32);

		if (auth) {
			sprintf(auth, "Authorization: Bearer %s", q->token);
			h = curl_slist_append(h, auth);
			free(auth);
		}
	}
	/* no 100-continue round trip: the daemon answers an early error at once */
	if (!expect)
		h = curl_slist_append(h, "Expect:");
	if (q->n_parts > 0) {
		if (!(mime = make_mime(c, q)))
			goto out;
		curl_easy_setopt(c, CURLOPT_MIMEPOST, mime);
	} else if (q->read) {
		h = curl_slist_append(h, "Transfer-Encoding: chunked");
		curl_easy_setopt(c, CURLOPT_POST, 1L);
		curl_easy_setopt(c, CURLOPT_READFUNCTION, q->read);
		curl_easy_setopt(c, CURLOPT_READDATA, q->read_arg);
	} else if (q->body) {
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, q->body);
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)q->len);
	}
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	rc = curl_easy_perform(c);
	if (rc == CURLE_OK) {
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
		if (curl_easy_getinfo(c, CURLINFO_CONTENT_TYPE, &ct) == CURLE_OK && ct)
			snprintf(r->ctype, sizeof(r->ctype), "%s", ct);
	} else {
		be_resp_free(r);
	}
out:
	curl_mime_free(mime);
	curl_slist_free_all(h);
	curl_easy_cleanup(c);
	return rc == CURLE_OK ? 0 : -1;
}

void be_resp_free(struct be_resp *r)
{
	free(r->body);
	r->body = NULL;
	r->len = 0;
}

json_t *be_resp_json(const struct be_resp *r)
{
	return r->body ? json_loadb(r->body, r->len, 0, NULL) : NULL;
}

const char *be_resp_header(const struct be_resp *r, const char *name, char *buf, size_t size)
{
	const char *p = r->headers;
	size_t n = strlen(name);

	while (p && *p) {
		if (!strncasecmp(p, name, n) && p[n] == ':') {
			const char *v = p + n + 1, *e;
			size_t len;

			while (*v == ' ')
				v++;
			e = strpbrk(v, "\r\n");
			len = e ? (size_t)(e - v) : strlen(v);
			if (len >= size)
				len = size - 1;
			memcpy(buf, v, len);
			buf[len] = '\0';
			return buf;
		}
		p = strchr(p, '\n');
		if (p)
			p++;
	}
	return NULL;
}

int be_dataset_parts(struct be_part parts[2], const char *inputs, const char *labels)
{
	int n = 0;

	memset(parts, 0, 2 * sizeof(*parts));
	if (inputs) {
		parts[n].name = "inputs";
		parts[n++].path = inputs;
	}
	if (labels) {
		parts[n].name = "labels";
		parts[n++].path = labels;
	}
	return n;
}

int be_daemon_healthy(const struct be_daemon *d)
{
	struct be_req q = {.url = d->base, .path = "/healthz", .token = d->token, .timeout = 30};
	struct be_resp r;
	int ok = be_request(&q, &r) == 0 && r.status == 200;

	be_resp_free(&r);
	return ok;
}

int be_daemon_start(struct be_daemon *d, const char *bin, const char *const *defaults, const char *const *extra)
{
	return be_daemon_start_on(d, NULL, bin, defaults, extra);
}

int be_daemon_start_on(struct be_daemon *d, const char *host, const char *bin, const char *const *defaults,
		       const char *const *extra)
{
	int attempt;

	for (attempt = 0; attempt < 5; attempt++) {
		char port[16], data[PATH_MAX], log[PATH_MAX];
		const char *argv[96];
		int i, st, n = 0;

		d->port = be_free_port();
		snprintf(port, sizeof(port), "%d", d->port);
		snprintf(data, sizeof(data), "%s/data", d->dir);
		snprintf(log, sizeof(log), "%s/daemon.log", d->dir);
		snprintf(d->base, sizeof(d->base), "http://%s:%d", host ? host : "127.0.0.1", d->port);
		argv[n++] = bin;
		argv[n++] = "--port";
		argv[n++] = port;
		if (host) {
			argv[n++] = "--listen";
			argv[n++] = host;
		}
		argv[n++] = "--data-dir";
		argv[n++] = data;
		for (i = 0; defaults && defaults[i] && n < 95; i++)
			argv[n++] = defaults[i];
		for (i = 0; extra && extra[i] && n < 95; i++)
			argv[n++] = extra[i];
		argv[n] = NULL;
		d->pid = fork();
		if (d->pid < 0)
			return 0;
		if (d->pid == 0) {
			if (!freopen(log, "a", stderr) || chdir(pc_test_root()) != 0)
				_exit(126);
			execv(bin, (char *const *)argv);
			_exit(127);
		}
		for (i = 0; i < 200; i++) {
			if (waitpid(d->pid, &st, WNOHANG) == d->pid)
				break; /* died: the port may have been taken; try another */
			if (be_daemon_healthy(d))
				return 1;
			be_sleep_ms(50);
		}
		if (i == 200) {
			kill(d->pid, SIGKILL);
			waitpid(d->pid, &st, 0);
		}
	}
	d->pid = 0;
	return 0;
}

int be_daemon_stop(struct be_daemon *d, int sig, double *seconds)
{
	double t0 = pc_sys_seconds();
	int st = 0, i;

	if (d->pid <= 0)
		return -1;
	if (waitpid(d->pid, &st, WNOHANG) == d->pid) {
		d->pid = 0;
		return -1; /* it died on its own: no clean stop to report */
	}
	kill(d->pid, sig);
	for (i = 0; i < 1000; i++) {
		if (waitpid(d->pid, &st, WNOHANG) == d->pid)
			break;
		be_sleep_ms(10);
	}
	if (seconds)
		*seconds = pc_sys_seconds() - t0;
	if (i == 1000) {
		kill(d->pid, SIGKILL);
		waitpid(d->pid, &st, 0);
		d->pid = 0;
		return -1;
	}
	d->pid = 0;
	if (sig != SIGKILL && !(WIFEXITED(st) && WEXITSTATUS(st) == 0)) {
		/* the daemon's last words, before the temp dir goes */
		char cmd[PATH_MAX + 64];

		snprintf(cmd, sizeof(cmd), "tail -n 40 '%s/daemon.log' >&2", d->dir);
		if (system(cmd) != 0)
			fprintf(stderr, "  (no daemon log)\n");
	}
	return WIFEXITED(st) ? WEXITSTATUS(st) : (WIFSIGNALED(st) ? 128 + WTERMSIG(st) : -1);
}
