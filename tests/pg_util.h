/* pg_util: throwaway PostgreSQL servers for the tests. A server is a new
 * cluster (initdb, as the postgres user when the tests run as root) in a
 * temp directory, listening on 127.0.0.1 only at a free port, its unix
 * socket in that directory; every wait on it is bounded (pg_ctl -t, and
 * be_run's timeout). pgu_shared() is one server for the whole test run,
 * stopped and removed at exit (atexit). */
#ifndef PARACORR_TEST_PG_UTIL_H
#define PARACORR_TEST_PG_UTIL_H

#include <limits.h>
#include <stddef.h>

#define PGU_BIN "/usr/lib/postgresql/15/bin"

struct pgu {
	char dir[256]; /* the cluster's temp dir: data/, server.log, the socket */
	int port;
	int running;
	int n_db; /* databases made, for the next name */
	char why[512]; /* what failed, when a call returned 0 */
	char also[64]; /* another address it listens on and trusts (pgu_init_on), "" when none */
};

/* Whether PostgreSQL 15's binaries are installed; else why says so. */
int pgu_available(char *why, size_t size);
/* initdb and start: 1 up, 0 failed (p->why). */
int pgu_init(struct pgu *p);
/* The same, listening on the IPv4 address addr too (it must exist: a
 * test's own veth in a network namespace it made) and trusting logins
 * from addr's /24. */
int pgu_init_on(struct pgu *p, const char *addr);
/* Stop (fast) and start the same cluster again: 1 done, 0 failed. */
int pgu_stop(struct pgu *p);
int pgu_start(struct pgu *p);
/* Stop and remove the directory. NULL or an unstarted one is fine. */
void pgu_free(struct pgu *p);
/* A new empty database: its postgresql:// URL into url. 1 done, 0 failed. */
int pgu_new_db(struct pgu *p, char *url, size_t size);
/* Runs one SQL statement on the database of url (a test's own
 * inspection); 1 done, 0 failed (why gets the message). */
int pgu_exec(const char *url, const char *sql, char *why, size_t size);

/* The run's shared server, started at the first call; NULL when it could
 * not be (why says why). */
struct pgu *pgu_shared(char *why, size_t size);

#endif
