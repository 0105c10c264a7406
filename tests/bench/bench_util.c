/* bench_util: see bench_util.h. */
#include "bench_util.h"

#include <stdlib.h>

#include "paracorr/sys.h"

double bench_time_call(bench_fn fn, void *arg, double seconds)
{
	double best = 1e300;

	if (fn(arg))
		return -1;
	for (int round = 0; round < 3; round++) {
		double t0 = pc_sys_seconds(), t;
		long reps = 0;

		do {
			if (fn(arg))
				return -1;
			reps++;
			t = pc_sys_seconds() - t0;
		} while (t < seconds);
		if (t / (double)reps < best)
			best = t / (double)reps;
	}
	return best;
}

int bench_parse_threads(const char *s, int *threads, int max)
{
	int n = 0;

	while (*s && n < max) {
		char *end;
		long v = strtol(s, &end, 10);

		if (end == s || v < 1 || v > 256 || (*end && *end != ','))
			return 0;
		threads[n++] = (int)v;
		s = *end ? end + 1 : end;
	}
	return *s ? 0 : n;
}
