/* The Python client (clients/python) against a live daemon: its unittest
 * suite (clients/python/tests/test_client.py) run by Debian's python3 with a
 * token-protected paracorrd, and `pip install ./clients/python` into a
 * fresh venv, offline. */
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "be_util.h"
#include "test.h"

#define PY "/usr/bin/python3"

static const char *const py_defaults[] = {"--workers", "2", "--threads-per-job", "1", "--poll-ms", "50",
					  "--cache-mb", "64", "--min-free-disk-mb", "1", NULL};

/* Runs cmd through the shell with its output in dir/out; the exit status
 * and the output (malloc'd) in *out. */
static int sh(const char *dir, const char *cmd, char **out)
{
	char full[5 * PATH_MAX], path[PATH_MAX + 16];
	int st;

	snprintf(path, sizeof(path), "%s/out", dir);
	snprintf(full, sizeof(full), "( %s ) > '%s' 2>&1", cmd, path);
	/* bounded: the venv's pip install and the client suite, on a loaded machine */
	st = be_run(full, NULL, 0, 900);
	*out = be_read_file(path, NULL);
	return st;
}

TEST(pyclient_suite_against_the_daemon)
{
	struct be_daemon d = {0};
	char tokens[PATH_MAX], cmd[2 * PATH_MAX], *out = NULL;
	const char *extra[] = {"--tokens-file", tokens, NULL};
	const char *ran;
	FILE *f;
	int rc;

	if (!getenv("PARACORRD_BIN") || access(PY, X_OK)) {
		pc_test_skip(t, "needs PARACORRD_BIN and " PY);
		return;
	}
	REQUIRE(be_tmpdir(d.dir, sizeof(d.dir)));
	snprintf(tokens, sizeof(tokens), "%s/tokens", d.dir);
	REQUIRE((f = fopen(tokens, "w")));
	fputs("py-token tenant=python\n", f);
	fclose(f);
	d.token = "py-token";
	REQUIRE_MSG(be_daemon_start(&d, getenv("PARACORRD_BIN"), py_defaults, extra), "the daemon did not start");
	snprintf(cmd, sizeof(cmd),
		 "PARACORR_SERVER=%s PARACORR_TOKEN=py-token PARACORR_ROOT=. TMPDIR='%s' " PY
		 " clients/python/tests/test_client.py -v",
		 d.base, d.dir);
	rc = sh(d.dir, cmd, &out);
	CHECK_MSG(rc == 0, "the client's suite exited %d:\n%s", rc, out ? out : "");
	/* every test ran: a suite that ran none would also "pass" */
	ran = out ? strstr(out, "\nRan ") : NULL;
	CHECK_MSG(ran && atoi(ran + 5) == 15, "expected the 15 client tests of test_client.py:\n%s", out ? out : "");
	if (out && strstr(out, "skipped 'torch is not importable here'"))
		fprintf(stderr, "  the torch export test was skipped: torch is not importable by " PY "\n");
	free(out);
	be_daemon_stop(&d, SIGTERM, NULL);
	be_rmtree(d.dir);
}

TEST(pyclient_pip_installs_offline)
{
	char dir[256], cmd[2 * PATH_MAX], *out = NULL;
	int rc;

	if (access(PY, X_OK) || system(PY " -c 'import venv, ensurepip' 2>/dev/null") != 0) {
		pc_test_skip(t, PY " has no venv/ensurepip (Debian's python3-venv)");
		return;
	}
	REQUIRE(be_tmpdir(dir, sizeof(dir)));
	/* --no-index: nothing may come from a package index; the import runs
	 * from / so that the source tree cannot be what it finds */
	snprintf(cmd, sizeof(cmd),
		 PY " -m venv '%s/venv' && '%s/venv/bin/pip' install --no-index ./clients/python && cd / && "
		    "'%s/venv/bin/python' -c 'import paracorr, sys; print(\"imported\", paracorr.__version__, "
		    "paracorr.__file__)'",
		 dir, dir, dir);
	rc = sh(dir, cmd, &out);
	CHECK_MSG(rc == 0, "pip install exited %d:\n%s", rc, out ? out : "");
	CHECK_MSG(out && strstr(out, "imported 0.1.0 ") && strstr(out, "/venv/lib/"),
		  "the venv does not import the installed package:\n%s", out ? out : "");
	free(out);
	be_rmtree(dir);
}
