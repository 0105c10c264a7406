/* The test runner: runs every registered test, or those whose name contains
 * one of the arguments, and ends with the summary line CI reads. */
#include "test.h"

#include "blas_select.h"
#include "paracorr/sys.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

struct entry {
	const char *name;
	pc_test_fn fn;
};

static struct entry *entries;
static int n_entries, cap_entries;

void pc_test_register(const char *name, pc_test_fn fn)
{
	if (n_entries == cap_entries) {
		cap_entries = cap_entries ? cap_entries * 2 : 64;
		entries = realloc(entries, (size_t)cap_entries * sizeof(*entries));
		if (!entries)
			abort();
	}
	entries[n_entries].name = name;
	entries[n_entries].fn = fn;
	n_entries++;
}

void pc_test_fail(struct pc_test *t, const char *file, int line, const char *fmt, ...)
{
	va_list ap;

	t->failures++;
	if (t->failures > 20)
		return; /* one broken loop should not flood the log */
	fprintf(stderr, "  %s:%d: %s: ", file, line, t->name);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

void pc_test_skip(struct pc_test *t, const char *why)
{
	t->skipped = 1;
	fprintf(stderr, "  %s: skipped: %s\n", t->name, why);
}

const char *pc_test_root(void)
{
	const char *r = getenv("PARACORR_ROOT");
	return r && r[0] ? r : ".";
}

static int by_name(const void *a, const void *b)
{
	return strcmp(((const struct entry *)a)->name, ((const struct entry *)b)->name);
}

static int run_argc;
static char **run_argv;

static int selected(const char *name, int argc, char **argv)
{
	if (argc < 2)
		return 1;
	for (int i = 1; i < argc; i++)
		if (strstr(name, argv[i]))
			return 1;
	return 0;
}

int pc_test_ran_all(const char *prefix)
{
	for (int i = 0; i < n_entries; i++)
		if (!strncmp(entries[i].name, prefix, strlen(prefix)) && !selected(entries[i].name, run_argc, run_argv))
			return 0;
	return 1;
}

int main(int argc, char **argv)
{
	int passed = 0, failed = 0, skipped = 0;

	run_argc = argc;
	run_argv = argv;
	/* the kernels the product runs with (see server/blas_select.h) */
	pc_blas_select_kernels(argv);
	pc_blas_set_threads(1);
	qsort(entries, (size_t)n_entries, sizeof(*entries), by_name);
	for (int i = 0; i < n_entries; i++) {
		struct pc_test t = {entries[i].name, 0, 0};
		if (!selected(t.name, argc, argv))
			continue;
		double t0 = pc_sys_seconds();
		entries[i].fn(&t);
		double ms = (pc_sys_seconds() - t0) * 1e3;
		if (t.failures) {
			failed++;
			printf("FAIL %s (%d failures)\n", t.name, t.failures);
		} else if (t.skipped) {
			skipped++;
			printf("skip %s\n", t.name);
		} else {
			passed++;
			printf("ok   %s (%.0f ms)\n", t.name, ms);
		}
		fflush(stdout);
	}
	free(entries);
	if (skipped)
		printf("%d passed, %d failed, %d skipped\n", passed, failed, skipped);
	else
		printf("%d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}
