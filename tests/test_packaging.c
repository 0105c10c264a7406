/* The container image against the Makefile: the Dockerfile's build stage
 * installs exactly the packages of `make deps`, and the image keeps the
 * properties an operator relies on. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "be_util.h"
#include "test.h"

#define MAX_PKGS 64

/* Package names (words with no '$', '=' or '\') from text[from..] until a
 * line that does not end with a backslash. */
static int words_until_eol(const char *p, char names[][64], int max)
{
	int n = 0;

	for (;;) {
		size_t k;

		while (*p == ' ' || *p == '\t')
			p++;
		if (*p == '\\' && p[1] == '\n') {
			p += 2;
			continue;
		}
		if (*p == '\n' || *p == '\0' || *p == '&')
			return n;
		k = strcspn(p, " \t\n\\");
		if (n < max && k < 64 && !memchr(p, '$', k) && !memchr(p, '=', k) && p[0] != '-') {
			memcpy(names[n], p, k);
			names[n++][k] = '\0';
		}
		p += k;
	}
}

static int has(char names[][64], int n, const char *name)
{
	for (int i = 0; i < n; i++)
		if (!strcmp(names[i], name))
			return 1;
	return 0;
}

static char *read_root(const char *rel)
{
	char path[1024];
	size_t len;

	snprintf(path, sizeof(path), "%s/%s", pc_test_root(), rel);
	return be_read_file(path, &len);
}

TEST(packaging_docker_matches_make_deps)
{
	char *mk = read_root("Makefile"), *df = read_root("docker/Dockerfile"), *p;
	char deps[MAX_PKGS][64], image[MAX_PKGS][64];
	int nd = 0, ni = 0, i;

	REQUIRE(mk && df);
	p = strstr(mk, "\nDEB_PACKAGES := ");
	REQUIRE_MSG(p, "no DEB_PACKAGES in the Makefile");
	nd = words_until_eol(p + strlen("\nDEB_PACKAGES := "), deps, MAX_PKGS);
	/* the build stage: the first apt-get install after the first FROM */
	p = strstr(df, "\nFROM ");
	REQUIRE(p);
	p = strstr(p, "apt-get install");
	REQUIRE_MSG(p, "no apt-get install in the Dockerfile");
	p = strstr(p, "--no-install-recommends");
	REQUIRE(p);
	ni = words_until_eol(p + strlen("--no-install-recommends"), image, MAX_PKGS);
	CHECK_MSG(nd >= 10, "read %d packages from DEB_PACKAGES", nd);
	for (i = 0; i < nd; i++)
		CHECK_MSG(has(image, ni, deps[i]), "the Dockerfile does not install %s (make deps does)", deps[i]);
	for (i = 0; i < ni; i++)
		CHECK_MSG(has(deps, nd, image[i]), "the Dockerfile installs %s, which make deps does not", image[i]);
	free(mk);
	free(df);
}

TEST(packaging_image_properties)
{
	char *df = read_root("docker/Dockerfile"), *p;
	int froms = 0;

	REQUIRE(df);
	/* both stages on the one base: bookworm-slim, or docker/base.sh's own build of it */
	CHECK(strstr(df, "\nARG BASE=debian:bookworm-slim\n") != NULL);
	for (p = df; (p = strstr(p, "\nFROM ${BASE}")); p++)
		froms++;
	CHECK_MSG(froms == 2, "%d stages FROM ${BASE}, expected a build and a run stage", froms);
	CHECK(strstr(df, "\nUSER paracorr") != NULL);
	CHECK(strstr(df, "\nVOLUME [\"/var/lib/paracorr\"]") != NULL);
	CHECK(strstr(df, "\nSTOPSIGNAL SIGTERM") != NULL);
	CHECK(strstr(df, "\nENTRYPOINT [\"/usr/local/bin/paracorrd\"]") != NULL);
	CHECK((p = strstr(df, "\nHEALTHCHECK")) && strstr(p, "health"));
	free(df);
}
