/* sys: what paracorr asks of the operating system in more than one place,
 * written once: the monotonic clock. */
#ifndef PARACORR_SYS_H
#define PARACORR_SYS_H

/* Seconds on the monotonic clock (CLOCK_MONOTONIC) from an arbitrary
 * origin: only differences mean anything; never jumps with the wall clock. */
double pc_sys_seconds(void);

#endif
