/* The fuzzers' finds, kept: every file under tests/fuzz/regress/<target>/
 * (an input that crashed, leaked or hit UB before its fix) and the
 * committed seeds under tests/fuzz/corpus/<target>/ go through the same
 * entry point the fuzzer calls (tests/fuzz/targets.c), in the ordinary
 * and the sanitizer builds. A regression aborts or is reported by ASan /
 * UBSan; the tests also check that the directories hold what they should,
 * so that a renamed directory cannot turn them into no-ops. */
#include <dirent.h>
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "job.h"
#include "settings.h"
#include "fuzz/targets.h"
#include "test.h"

static int read_all(const char *path, uint8_t **out, size_t *len)
{
	FILE *f = fopen(path, "rb");
	uint8_t *p = NULL;
	long n;

	*out = NULL;
	if (!f)
		return -1;
	if (fseek(f, 0, SEEK_END) || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) || !(p = malloc((size_t)n + 1)) ||
	    fread(p, 1, (size_t)n, f) != (size_t)n) {
		free(p);
		fclose(f);
		return -1;
	}
	fclose(f);
	*out = p;
	*len = (size_t)n;
	return 0;
}

/* Feeds every regular file of dir/<target> to its target; returns how many. */
static int run_dir(struct pc_test *t, const char *dir, const struct pcf_target *tg)
{
	char path[1024];
	struct dirent *e;
	DIR *d;
	int n = 0;

	snprintf(path, sizeof(path), "%s/%s/%s", pc_test_root(), dir, tg->name);
	if (!(d = opendir(path)))
		return 0;
	while ((e = readdir(d))) {
		char file[2048];
		struct stat st;
		uint8_t *data;
		size_t len;

		snprintf(file, sizeof(file), "%s/%s", path, e->d_name);
		if (e->d_name[0] == '.' || stat(file, &st) || !S_ISREG(st.st_mode))
			continue;
		if (read_all(file, &data, &len)) {
			pc_test_fail(t, __FILE__, __LINE__, "cannot read %s", file);
			continue;
		}
		tg->fn(data, len);
		free(data);
		n++;
	}
	closedir(d);
	return n;
}

TEST(fuzz_regress_inputs)
{
	int total = 0;

	for (const struct pcf_target *tg = pcf_targets; tg->name; tg++)
		total += run_dir(t, "tests/fuzz/regress", tg);
	/* the directory exists and holds the inputs the fixes were made for */
	CHECK_MSG(total > 0, "no input under tests/fuzz/regress/<target>/");
}

TEST(fuzz_regress_seeds)
{
	static const char *const must[] = {"settings", "tokens", "spec", "http"};

	for (const struct pcf_target *tg = pcf_targets; tg->name; tg++) {
		int n = run_dir(t, "tests/fuzz/corpus", tg);

		for (size_t i = 0; i < sizeof(must) / sizeof(must[0]); i++)
			CHECK_MSG(strcmp(tg->name, must[i]) || n > 0, "no seed under tests/fuzz/corpus/%s/", tg->name);
	}
}

/* Found reading the settings parser while fuzzing it: lines were read in
 * 4,096-byte pieces, so the tail of a long comment became a line of its
 * own (here the unknown setting "xx...x port", refusing a valid file; cut
 * just before "port", it would have set it), and a NUL byte hid the rest
 * of its line (port = 90 instead of 9000). */
TEST(fuzz_settings_long_line_is_one_line)
{
	char path[] = "/tmp/pcf-settings-XXXXXX";
	struct pcd_settings s;
	struct pc_error err = {0};
	int fd = mkstemp(path), rc;
	FILE *f;

	REQUIRE(fd >= 0);
	REQUIRE((f = fdopen(fd, "w")));
	fputs("# ", f);
	for (int i = 0; i < 5000; i++)
		fputc('x', f);
	fputs(" port = 9\nworkers = 2\n", f);
	fclose(f);
	pcd_settings_default(&s);
	rc = pcd_settings_load_file(&s, path, &err);
	CHECK_INT(rc, 0);
	CHECK_INT(s.port, 8080);
	CHECK_INT(s.workers, 2);

	REQUIRE((f = fopen(path, "w")));
	fputs("workers = 2\nport = 90", f);
	fputc('\0', f);
	fputs("00\n", f);
	fclose(f);
	pcd_settings_default(&s);
	pc_error_clear(&err);
	rc = pcd_settings_load_file(&s, path, &err);
	CHECK_INT(rc, PC_ERR_INVALID);
	CHECK_MSG(strstr(err.where, ":2") && strstr(err.text, "NUL"), "where '%s' text '%s'", err.where, err.text);
	unlink(path);
}

/* A checkpoint as job.c writes it (magic, epochs, pad, steps, state
 * floats, curve bytes; the state; the curve) reads back, and one that
 * does not fit is a fresh start: negative steps (which the trainer would
 * have taken as its step count), no epoch, another state size. */
static int ckpt_write_read(const char *path, int32_t epochs, int64_t steps, int64_t floats, int64_t want,
			   int64_t *steps_out)
{
	const char *curve = epochs == 2 ? "[{\"epoch\":1},{\"epoch\":2}]" : "[]";
	int32_t h32[2] = {epochs, 0};
	int64_t h64[3] = {steps, floats, (int64_t)strlen(curve)};
	float *state;
	json_t *c;
	FILE *f = fopen(path, "wb");
	int done;

	if (!f)
		return -1;
	fwrite("PCCKPT1", 1, 8, f);
	fwrite(h32, sizeof(h32), 1, f);
	fwrite(h64, sizeof(h64), 1, f);
	for (int64_t i = 0; i < floats; i++) {
		float v = (float)i;

		fwrite(&v, 4, 1, f);
	}
	fputs(curve, f);
	fclose(f);
	done = pcd_ckpt_read(path, want, &state, steps_out, &c);
	if (done && (!state || state[floats - 1] != (float)(floats - 1) || json_array_size(c) != (size_t)done))
		done = -2;
	free(state);
	json_decref(c);
	return done;
}

TEST(fuzz_ckpt_reader_refuses_what_does_not_fit)
{
	char path[] = "/tmp/pcf-ckpt-XXXXXX";
	int fd = mkstemp(path);
	int64_t steps = -7;

	REQUIRE(fd >= 0);
	close(fd);
	CHECK_INT(ckpt_write_read(path, 2, 40, 5, 5, &steps), 2);
	CHECK_INT(steps, 40);
	CHECK_INT(ckpt_write_read(path, 2, -1, 5, 5, &steps), 0);
	CHECK_INT(steps, 0);
	CHECK_INT(ckpt_write_read(path, 0, 40, 5, 5, &steps), 0);
	CHECK_INT(ckpt_write_read(path, 2, 40, 5, 6, &steps), 0);
	unlink(path);
	CHECK_INT(ckpt_write_read("/nonexistent/dir/ckpt", 2, 40, 5, 5, &steps), -1);
}
