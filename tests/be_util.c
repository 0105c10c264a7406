/* Temp directories for the backend tests, removed with nftw; the daemon
 * child process the HTTP tests run against. */
#include "be_util.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

static size_t discard(char *p, size_t size, size_t n, void *arg)
{
	(void)p, (void)arg;
	return size * n;
}

/* GET /healthz answered 200 (with the daemon's token, as every request). */
static int healthy(const struct be_daemon *d)
{
	CURL *c = curl_easy_init();
	struct curl_slist *h = NULL;
	char url[256], auth[512];
	long status = 0;

	if (!c)
		return 0;
	snprintf(url, sizeof(url), "%s/healthz", d->base);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 30L);
	if (d->token && snprintf(auth, sizeof(auth), "Authorization: Bearer %s", d->token) < (int)sizeof(auth)) {
		h = curl_slist_append(h, auth);
		curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	}
	if (curl_easy_perform(c) == CURLE_OK)
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	curl_slist_free_all(h);
	curl_easy_cleanup(c);
	return status == 200;
}

int be_daemon_start(struct be_daemon *d, const char *bin, const char *const *defaults, const char *const *extra)
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
		snprintf(d->base, sizeof(d->base), "http://127.0.0.1:%d", d->port);
		argv[n++] = bin;
		argv[n++] = "--port";
		argv[n++] = port;
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
			if (healthy(d))
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
