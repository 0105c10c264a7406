/* sys: the operating-system helpers of sys.h. */
#include "paracorr/sys.h"

#include <time.h>

double pc_sys_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}
