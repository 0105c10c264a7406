/* sys: what paracorr asks of the operating system in more than one place,
 * written once: the monotonic clock and reading a whole file. */
#ifndef PARACORR_SYS_H
#define PARACORR_SYS_H

#include <stddef.h>
#include <stdint.h>

#include "paracorr/error.h"

/* Seconds on the monotonic clock (CLOCK_MONOTONIC) from an arbitrary
 * origin: only differences mean anything; never jumps with the wall clock. */
double pc_sys_seconds(void);

/* Asks the kernel to back the whole 2 MiB pages inside [p, p + bytes) with
 * huge pages (transparent huge pages, where the system leaves it to
 * madvise): a plan's large buffers are first touched page by page, and
 * with 4 KiB pages those faults cost as much as a layer. Advice only:
 * nothing changes where the kernel declines. */
void pc_sys_advise_huge(void *p, size_t bytes);

/* The whole file at path into a new buffer *out (*out_len bytes; the
 * caller frees it). PC_ERR_NOT_FOUND when it does not exist, PC_ERR_IO for
 * a directory or a failed read, PC_ERR_LIMIT for more than max_bytes,
 * PC_ERR_NOMEM; then *out is NULL. */
int pc_sys_read_file(const char *path, uint64_t max_bytes, unsigned char **out, size_t *out_len,
		     struct pc_error *err);

#endif
