/* be_run, the one way the tests run a command: its output, its exit status,
 * and its deadline, which must hold even when the command has closed its
 * stdout, so that a hung CLI or daemon fails one test instead of the run. */
#include <string.h>
#include <time.h>

#include "be_util.h"
#include "test.h"

static double mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

TEST(be_run_output_and_status)
{
	char out[64];

	REQUIRE(be_run("echo hi; exit 3", out, sizeof(out), 30) == 3);
	REQUIRE(strcmp(out, "hi\n") == 0);
	REQUIRE(be_run("kill -TERM $$", out, sizeof(out), 30) == 128 + 15);
}

TEST(be_run_bounds_output)
{
	char out[8];

	/* the rest is read and dropped, so the writer does not block on a full pipe */
	REQUIRE(be_run("head -c 1000000 /dev/zero | tr '\\0' x", out, sizeof(out), 30) == 0);
	REQUIRE(strcmp(out, "xxxxxxx") == 0);
}

TEST(be_run_deadline)
{
	char out[16];
	double t0 = mono();

	REQUIRE(be_run("sleep 30", out, sizeof(out), 1) == -1);
	/* stdout closed, still running: the wait is bounded too */
	REQUIRE(be_run("exec >&-; sleep 30", out, sizeof(out), 1) == -1);
	REQUIRE_MSG(mono() - t0 < 20, "two 1 s deadlines took %.1f s", mono() - t0);
}
