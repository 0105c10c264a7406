/* pg_util: throwaway PostgreSQL servers for the tests (pg_util.h). */
#include "pg_util.h"

#include <libpq-fe.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "be_util.h"

/* pg_ctl's own bound on a start or stop, and be_run's on top of it */
#define PGU_WAIT_S 60

int pgu_available(char *why, size_t size)
{
	if (access(PGU_BIN "/initdb", X_OK) == 0 && access(PGU_BIN "/pg_ctl", X_OK) == 0 &&
	    access(PGU_BIN "/postgres", X_OK) == 0)
		return 1;
	snprintf(why, size, "PostgreSQL 15 is not installed (no %s/initdb, pg_ctl, postgres: apt-get install postgresql)",
		 PGU_BIN);
	return 0;
}

/* The prefix that runs a command as the cluster's owner: postgres refuses
 * to run as root, so root runs it as the postgres user. */
static const char *as_owner(void)
{
	return geteuid() == 0 ? "runuser -u postgres -- " : "";
}

static int run(struct pgu *p, const char *cmd)
{
	char out[2048];
	int st = be_run(cmd, out, sizeof(out), PGU_WAIT_S + 10);

	if (st != 0) {
		size_t n = strlen(out);

		while (n > 0 && out[n - 1] == '\n')
			out[--n] = '\0';
		snprintf(p->why, sizeof(p->why), "exit %d: %.200s: %.250s", st, cmd, out);
		return 0;
	}
	return 1;
}

int pgu_start(struct pgu *p)
{
	char cmd[2048];

	/* only 127.0.0.1, the socket in the cluster's directory; durability
	 * is not what these tests are about */
	snprintf(cmd, sizeof(cmd),
		 "%s" PGU_BIN "/pg_ctl -D '%s/data' -l '%s/server.log' -w -t %d -o \"-c listen_addresses=127.0.0.1%s%s"
		 " -p %d -k '%s' -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=40"
		 " -c shared_buffers=16MB\" start 2>&1",
		 as_owner(), p->dir, p->dir, PGU_WAIT_S, p->also[0] ? "," : "", p->also, p->port, p->dir);
	if (!run(p, cmd))
		return 0;
	p->running = 1;
	return 1;
}

int pgu_stop(struct pgu *p)
{
	char cmd[2048];

	if (!p->running)
		return 1;
	snprintf(cmd, sizeof(cmd), "%s" PGU_BIN "/pg_ctl -D '%s/data' -m fast -w -t %d stop 2>&1", as_owner(), p->dir,
		 PGU_WAIT_S);
	if (!run(p, cmd))
		return 0;
	p->running = 0;
	return 1;
}

int pgu_init(struct pgu *p)
{
	return pgu_init_on(p, NULL);
}

int pgu_init_on(struct pgu *p, const char *addr)
{
	char cmd[2048];

	memset(p, 0, sizeof(*p));
	if (addr) {
		/* an address only: it goes into a shell command and a config line */
		if (strlen(addr) >= sizeof(p->also) || strspn(addr, "0123456789.") != strlen(addr)) {
			snprintf(p->why, sizeof(p->why), "not an IPv4 address: %.60s", addr);
			return 0;
		}
		snprintf(p->also, sizeof(p->also), "%s", addr);
	}
	if (!pgu_available(p->why, sizeof(p->why)))
		return 0;
	if (!be_tmpdir(p->dir, sizeof(p->dir))) {
		snprintf(p->why, sizeof(p->why), "cannot make a temp directory");
		return 0;
	}
	if (geteuid() == 0) {
		struct passwd *pw = getpwnam("postgres");

		if (!pw || chown(p->dir, pw->pw_uid, pw->pw_gid) != 0) {
			snprintf(p->why, sizeof(p->why), "running as root, but there is no postgres user to own %s", p->dir);
			goto fail;
		}
	}
	snprintf(cmd, sizeof(cmd),
		 "%s" PGU_BIN "/initdb -D '%s/data' -U postgres -A trust -E UTF8 --locale=C.UTF-8 --no-sync 2>&1",
		 as_owner(), p->dir);
	if (!run(p, cmd))
		goto fail;
	if (p->also[0]) {
		snprintf(cmd, sizeof(cmd), "echo 'host all all %s/24 trust' >> '%s/data/pg_hba.conf'", p->also, p->dir);
		if (!run(p, cmd))
			goto fail;
	}
	/* a port free a moment ago; another process may take it first */
	for (int tries = 0; tries < 5; tries++) {
		if ((p->port = be_free_port()) < 0) {
			snprintf(p->why, sizeof(p->why), "no free loopback port");
			goto fail;
		}
		if (pgu_start(p))
			return 1;
	}
fail:
	be_rmtree(p->dir);
	p->dir[0] = '\0';
	return 0;
}

void pgu_free(struct pgu *p)
{
	if (!p || !p->dir[0])
		return;
	pgu_stop(p);
	be_rmtree(p->dir);
	p->dir[0] = '\0';
}

int pgu_exec(const char *url, const char *sql, char *why, size_t size)
{
	PGconn *c = PQconnectdb(url);
	PGresult *r = NULL;
	int ok = 0;

	if (PQstatus(c) != CONNECTION_OK)
		snprintf(why, size, "%s", PQerrorMessage(c));
	else {
		r = PQexec(c, sql);
		ok = PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK;
		if (!ok)
			snprintf(why, size, "%s", PQresultErrorMessage(r));
	}
	PQclear(r);
	PQfinish(c);
	return ok;
}

int pgu_new_db(struct pgu *p, char *url, size_t size)
{
	char admin[128], sql[160];

	snprintf(admin, sizeof(admin), "postgresql://postgres@127.0.0.1:%d/postgres", p->port);
	/* the name is ours (a counter), not a value from outside. The
	 * database's own collation is ICU's en-US, where "a" sorts before
	 * "B" (byte order has it after), so that a listing in byte order
	 * shows the store's COLLATE "C" at work; the cluster's C locale where
	 * this server has no ICU. */
	snprintf(sql, sizeof(sql), "CREATE DATABASE t%d TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE 'en-US'",
		 ++p->n_db);
	if (!pgu_exec(admin, sql, p->why, sizeof(p->why))) {
		snprintf(sql, sizeof(sql), "CREATE DATABASE t%d", p->n_db);
		if (!pgu_exec(admin, sql, p->why, sizeof(p->why)))
			return 0;
	}
	snprintf(url, size, "postgresql://postgres@127.0.0.1:%d/t%d", p->port, p->n_db);
	return 1;
}

static struct pgu shared;
static int shared_tried;

static void shared_free(void)
{
	pgu_free(&shared);
}

struct pgu *pgu_shared(char *why, size_t size)
{
	if (!shared_tried) {
		shared_tried = 1;
		if (pgu_init(&shared))
			atexit(shared_free);
	}
	if (!shared.running) {
		snprintf(why, size, "%s", shared.why[0] ? shared.why : "the shared PostgreSQL server is not running");
		return NULL;
	}
	return &shared;
}
