/* The container image, built and run for real where a Docker daemon
 * answers: `make image` (its base debootstrapped from Debian's packages
 * when no registry can be pulled from), then tests/container/roundtrip.sh
 * runs it on the host's network, submits a study through it, stops it with
 * SIGTERM and serves the job again from a second container on the same
 * volume. The build's log is a test artifact; the image's size and build
 * time go to stderr, for the CI log. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "be_util.h"
#include "test.h"

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

TEST(container_image_builds_runs_and_keeps_data)
{
	const char *cli = getenv("PARACORR_BIN"), *art = getenv("PARACORR_ARTIFACT_DIR");
	char log[1024], cmd[2048], out[4096], *text;
	double t0;
	int port, st;

#if defined(__SANITIZE_ADDRESS__)
	/* the image holds its own optimized build; the plain run tests it */
	pc_test_skip(t, "a sanitizer build (the image is tested by the plain build's run)");
	return;
#endif
	if (!cli) {
		pc_test_skip(t, "PARACORR_BIN is not set (make test sets it)");
		return;
	}
	if (be_run("command -v docker >/dev/null && docker info >/dev/null 2>&1", NULL, 0, 60) != 0) {
		pc_test_skip(t, "no Docker daemon");
		return;
	}
	snprintf(log, sizeof(log), "%s/container-image.log", art ? art : "/tmp");
	if (art) {
		snprintf(cmd, sizeof(cmd), "mkdir -p '%s'", art);
		be_run(cmd, NULL, 0, 30);
	}
	t0 = now();
	snprintf(cmd, sizeof(cmd), "make --no-print-directory image IMAGE=paracorr:test > '%s' 2>&1", log);
	st = be_run(cmd, NULL, 0, 1800);
	if (st != 0) {
		snprintf(cmd, sizeof(cmd), "tail -n 30 '%s'", log);
		be_run(cmd, out, sizeof(out), 30);
		REQUIRE_MSG(0, "make image failed (status %d); the end of %s:\n%s", st, log, out);
	}
	fprintf(stderr, "  container: make image took %.0f s\n", now() - t0);

	REQUIRE((port = be_free_port()) > 0);
	snprintf(cmd, sizeof(cmd), "sh tests/container/roundtrip.sh paracorr:test '%s' %d 2>&1", cli, port);
	st = be_run(cmd, out, sizeof(out), 900);
	fprintf(stderr, "%s", out);
	CHECK_MSG(st == 0, "tests/container/roundtrip.sh exited with %d", st);
	text = strstr(out, "container: ok");
	CHECK_MSG(text != NULL, "no 'container: ok' line from the round trip");
}
