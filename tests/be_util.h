/* Helpers for the daemon backend tests: fresh temp directories, and a
 * paracorrd child on a free loopback port with its data under a temp dir. */
#ifndef PARACORR_TEST_BE_UTIL_H
#define PARACORR_TEST_BE_UTIL_H

#include <limits.h>
#include <stddef.h>
#include <sys/types.h>

/* mkdtemp under $TMPDIR (or /tmp) into buf; returns buf or NULL. */
char *be_tmpdir(char *buf, size_t size);
/* rm -rf path. */
void be_rmtree(const char *path);
/* Whole file into a malloc'd NUL-terminated buffer; NULL on error. */
char *be_read_file(const char *path, size_t *len);

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
/* Sends sig and waits; the exit status (128 + signal when killed), -1
 * when it had died before the signal or did not exit within 10 s (then
 * it is killed). *seconds (may be NULL): how long it took. After an
 * unclean exit on anything but SIGKILL, the log's tail goes to stderr. */
int be_daemon_stop(struct be_daemon *d, int sig, double *seconds);

#endif
