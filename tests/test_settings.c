/* The daemon's settings: config/paracorr.conf documents every setting with
 * its default, and bad values are refused with the setting's name. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "be_util.h"
#include "settings.h"
#include "test.h"

static char *trim(char *p)
{
	char *e;

	while (*p == ' ' || *p == '\t')
		p++;
	e = p + strlen(p);
	while (e > p && (e[-1] == ' ' || e[-1] == '\n' || e[-1] == '\r' || e[-1] == '\t'))
		*--e = '\0';
	return p;
}

/* Whether the file has the uncommented line `key = value` (spaces aside). */
static int conf_has(const char *path, const char *line_want)
{
	char want[512], line[1024];
	FILE *f = fopen(path, "r");
	int found = 0;

	if (!f)
		return 0;
	snprintf(want, sizeof(want), "%s", line_want);
	while (!found && fgets(line, sizeof(line), f))
		found = !strcmp(trim(line), trim(want));
	fclose(f);
	return found;
}

TEST(settings_conf_documents_defaults)
{
	struct pcd_settings a, b;
	struct pc_error err = {0};
	char path[1024], *text = NULL, *p, *e;
	size_t len = 0;
	FILE *mem;
	int lines = 0;

	snprintf(path, sizeof(path), "%s/config/paracorr.conf", pc_test_root());
	pcd_settings_default(&a);
	pcd_settings_default(&b);
	/* the file's values are the defaults: loading it changes nothing */
	REQUIRE_MSG(pcd_settings_load_file(&b, path, &err) == 0, "%s: %s", err.where, err.text);
	CHECK(memcmp(&a, &b, sizeof(a)) == 0);
	/* and every setting is there, as `key = default` */
	REQUIRE((mem = open_memstream(&text, &len)) != NULL);
	pcd_settings_print(&a, mem);
	fclose(mem);
	for (p = text; p && *p; p = e + 1) {
		if (!(e = strchr(p, '\n')))
			break;
		*e = '\0';
		CHECK_MSG(conf_has(path, p), "config/paracorr.conf lacks `%s`", p);
		lines++;
	}
	CHECK(lines >= 20);
	free(text);
}

TEST(settings_refuse_by_name)
{
	struct pcd_settings s;
	struct pc_error err = {0};

	pcd_settings_default(&s);
	CHECK_INT(pcd_settings_set(&s, "max-queue", "12", "flag", &err), 0);
	CHECK_INT(s.max_queue, 12);
	CHECK_INT(pcd_settings_set(&s, "MAX_ATTEMPTS", "4", "flag", &err), 0);
	CHECK_INT(s.max_attempts, 4);
	CHECK(pcd_settings_set(&s, "max_attempts", "0", "PARACORR_MAX_ATTEMPTS", &err) != 0);
	CHECK(!strcmp(err.where, "max_attempts") && strstr(err.text, "1..100") &&
	      strstr(err.text, "PARACORR_MAX_ATTEMPTS"));
	pc_error_clear(&err);
	CHECK(pcd_settings_set(&s, "port", "80x", "flag", &err) != 0);
	CHECK(!strcmp(err.where, "port") && strstr(err.text, "80x"));
	pc_error_clear(&err);
	CHECK(pcd_settings_set(&s, "colour", "blue", "x.conf:3", &err) != 0);
	CHECK(!strcmp(err.where, "colour") && strstr(err.text, "x.conf:3"));
	CHECK_INT(s.max_attempts, 4); /* a refused value leaves the old one */
	/* the cache of a PostgreSQL store's uploads: MiB, 0 for no bound */
	pc_error_clear(&err);
	CHECK_INT(s.cache_max_mb, 10240);
	CHECK_INT(pcd_settings_set(&s, "cache-max-mb", "0", "flag", &err), 0);
	CHECK_INT(s.cache_max_mb, 0);
	CHECK(pcd_settings_set(&s, "cache_max_mb", "-5", "PARACORR_CACHE_MAX_MB", &err) != 0);
	CHECK_MSG(!strcmp(err.where, "cache_max_mb") && strstr(err.text, "0..16777216") &&
			  strstr(err.text, "PARACORR_CACHE_MAX_MB"),
		  "%s: %s", err.where, err.text);
	pc_error_clear(&err);
	/* auto workers and threads: within the cores */
	pcd_settings_default(&s);
	pcd_settings_resolve(&s);
	CHECK(s.workers >= 1 && s.threads_per_job >= 1);
}

/* store: sqlite (the default) or a PostgreSQL URL, from a flag or the
 * environment; anything else is refused naming the setting, and the
 * printed settings show a URL's password as ***. */
TEST(settings_store_is_sqlite_or_a_postgresql_url)
{
	struct pcd_settings s;
	struct pc_error err = {0};
	char *argv[] = {"paracorrd", "--store", "postgresql://bob:secret@127.0.0.1:5433/jobs", NULL};
	char *bad[] = {"paracorrd", "--store", "mysql://bob@h/db", NULL};
	char out[8192] = "";
	FILE *f;

	pcd_settings_default(&s);
	CHECK(!strcmp(s.store, "sqlite"));
	REQUIRE_MSG(pcd_settings_from_args(&s, 3, argv, &err) == 0, "%s", err.text);
	CHECK(!strcmp(s.store, "postgresql://bob:secret@127.0.0.1:5433/jobs"));
	REQUIRE((f = fmemopen(out, sizeof(out) - 1, "w")));
	pcd_settings_print(&s, f);
	fclose(f);
	CHECK_MSG(strstr(out, "\nstore = postgresql://bob:***@127.0.0.1:5433/jobs\n") && !strstr(out, "secret"), "%s",
		  out);
	CHECK(pcd_settings_from_args(&s, 3, bad, &err) != 0);
	CHECK_MSG(!strcmp(err.where, "store") && strstr(err.text, "postgresql://"), "%s: %s", err.where, err.text);
	pc_error_clear(&err);
	setenv("PARACORR_STORE", "postgres://alice@localhost/p", 1);
	CHECK(pcd_settings_from_args(&s, 1, argv, &err) == 0);
	unsetenv("PARACORR_STORE");
	CHECK(!strcmp(s.store, "postgres://alice@localhost/p"));
}

/* node_name: as set, else "<hostname>:<port>", and "<hostname>:pid<pid>"
 * on port 0 (a port that differs at each start would not name the node's
 * jobs across restarts); lease_ms within its bounds. */
TEST(settings_node_name_and_lease)
{
	struct pcd_settings s;
	struct pc_error err = {0};
	char host[256] = "", want[400], got[200];

	pcd_settings_default(&s);
	CHECK_INT(s.lease_ms, 30000);
	gethostname(host, sizeof(host) - 1);
	s.port = 8123;
	pcd_settings_node_name(&s, got, sizeof(got));
	snprintf(want, sizeof(want), "%.100s:8123", host);
	CHECK_MSG(!strcmp(got, want), "%s, expected %s", got, want);
	s.port = 0;
	pcd_settings_node_name(&s, got, sizeof(got));
	snprintf(want, sizeof(want), "%.100s:pid%ld", host, (long)getpid());
	CHECK_MSG(!strcmp(got, want), "%s, expected %s", got, want);
	CHECK_INT(pcd_settings_set(&s, "node-name", "worker-1", "flag", &err), 0);
	pcd_settings_node_name(&s, got, sizeof(got));
	CHECK(!strcmp(got, "worker-1"));
	CHECK_INT(pcd_settings_set(&s, "lease_ms", "999", "PARACORR_LEASE_MS", &err), PC_ERR_INVALID);
	CHECK(!strcmp(err.where, "lease_ms") && strstr(err.text, "1000..3600000"));
	CHECK_INT(pcd_settings_set(&s, "lease-ms", "5000", "flag", NULL), 0);
	CHECK_INT(s.lease_ms, 5000);
}

/* `paracorrd --help` (and -h) prints a usage text naming every setting as
 * its flag (the settings' own list: what --print-config prints) and the
 * other options, and exits 0, whatever else the command line, environment
 * or config file hold; a -h that is a setting's value is that value. */
TEST(settings_help_lists_every_setting)
{
	const char *bin = getenv("PARACORRD_BIN");
	const char *other[] = {"--config FILE", "--print-config", "-h, --help"};
	struct pcd_settings s;
	char cmd[2048], out[65536], *text = NULL, *p, *e;
	size_t len = 0;
	FILE *mem;
	int st;

	if (!bin) {
		pc_test_skip(t, "PARACORRD_BIN is not set (make test sets it)");
		return;
	}
	snprintf(cmd, sizeof(cmd), "'%s' --help 2>&1", bin);
	st = be_run(cmd, out, sizeof(out), 30);
	CHECK_MSG(st == 0, "--help exits %d: %s", st, out);
	CHECK_MSG(!strncmp(out, "usage: paracorrd", 16), "%s", out);
	for (size_t i = 0; i < sizeof(other) / sizeof(other[0]); i++)
		CHECK_MSG(strstr(out, other[i]), "--help lacks `%s`", other[i]);
	pcd_settings_default(&s);
	REQUIRE((mem = open_memstream(&text, &len)) != NULL);
	pcd_settings_print(&s, mem);
	fclose(mem);
	for (p = text; p && *p; p = e + 1) {
		char flag[128];
		size_t k;

		if (!(e = strchr(p, '\n')))
			break;
		/* `key = value`: the flag is --key, dashes for underscores */
		snprintf(flag, sizeof(flag), "\n  --");
		for (k = 0; p[k] && p[k] != ' ' && k + 7 < sizeof(flag); k++)
			flag[5 + k] = p[k] == '_' ? '-' : p[k];
		flag[5 + k] = ' ';
		flag[6 + k] = '\0';
		CHECK_MSG(strstr(out, flag), "--help lacks `%s`", flag + 1);
	}
	free(text);
	/* -h, after a setting and in spite of a bad environment and a missing
	 * config file: the text, exit 0, nothing started */
	snprintf(cmd, sizeof(cmd),
		 "PARACORR_PORT=nope '%s' --data-dir /nonexistent/x --config /nonexistent/paracorr.conf -h 2>&1", bin);
	st = be_run(cmd, out, sizeof(out), 30);
	CHECK_MSG(st == 0 && !strncmp(out, "usage: paracorrd", 16), "-h exits %d: %s", st, out);
	/* a value that reads -h is a value: node_name = -h, then --print-config */
	snprintf(cmd, sizeof(cmd), "'%s' --node-name -h --print-config 2>&1", bin);
	st = be_run(cmd, out, sizeof(out), 30);
	CHECK_MSG(st == 0 && strstr(out, "\nnode_name = -h\n"), "--node-name -h exits %d: %s", st, out);
}
