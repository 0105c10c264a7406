/* blas_select: see blas_select.h. */
#include "blas_select.h"

#include <cblas.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

struct kernel_class {
	const char *name;
	int rank;
};

/* OpenBLAS x86-64 core names by what their kernels use. */
static const struct kernel_class classes[] = {
	{"Prescott", 1},   {"Core2", 1},     {"Penryn", 1},    {"Dunnington", 1}, {"Nehalem", 1},
	{"Atom", 1},	   {"Barcelona", 1}, {"Bobcat", 1},    {"Sandybridge", 2}, {"Bulldozer", 2},
	{"Piledriver", 2}, {"Steamroller", 2}, {"Excavator", 2}, {"Haswell", 3},   {"Zen", 3},
	{"SkylakeX", 4},   {"Cooperlake", 5}, {"SapphireRapids", 5},
};

static int rank_of(const char *name)
{
	for (size_t i = 0; i < sizeof(classes) / sizeof(classes[0]); i++)
		if (name && strcasecmp(name, classes[i].name) == 0)
			return classes[i].rank;
	return 0;
}

static const char *best_for_cpu(void)
{
	__builtin_cpu_init();
	if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
	    __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq"))
		return __builtin_cpu_supports("avx512bf16") ? "Cooperlake" : "SkylakeX";
	if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
		return "Haswell";
	return NULL;
}

void pc_blas_select_kernels(char **argv)
{
	const char *pref = getenv("PARACORR_BLAS_CORETYPE"), *want;

	if (getenv("OPENBLAS_CORETYPE") || getenv("PARACORR_BLAS_REEXEC"))
		return;
	if (pref && strcmp(pref, "off") == 0)
		return;
	want = pref && pref[0] && strcmp(pref, "auto") != 0 ? pref : best_for_cpu();
	if (!want || rank_of(want) <= rank_of(openblas_get_corename()))
		return;
	if (setenv("OPENBLAS_CORETYPE", want, 1) || setenv("PARACORR_BLAS_REEXEC", "1", 1))
		return;
	/* the resolved path rather than /proc/self/exe itself, so that the
	 * process keeps its name (ps, pkill paracorrd) */
	{
		char self[4096];
		ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);

		if (n > 0) {
			self[n] = '\0';
			execv(self, argv);
		}
	}
	execv("/proc/self/exe", argv);
	/* could not re-execute: run on with the kernels loaded */
	unsetenv("OPENBLAS_CORETYPE");
}

void pc_blas_set_threads(int n)
{
	openblas_set_num_threads(n < 1 ? 1 : n);
}
