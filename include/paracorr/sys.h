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
 * madvise): large buffers (a file read, a model's weights, a plan's
 * activations and gradients, a dataset) are first touched page by page,
 * and under a hypervisor those 4 KiB faults cost as much as the work
 * itself (ResNet-18's eval spent half its fixed cost in them). Advice only:
 * nothing changes where the kernel declines. */
void pc_sys_advise_huge(void *p, size_t bytes);
/* Below this a block holds no whole huge page worth the system call. */
#define PC_SYS_HUGE_MIN ((size_t)2 << 20)
/* malloc and calloc, the block advised as above; free() owns it. */
void *pc_sys_malloc_huge(size_t bytes);
void *pc_sys_calloc_huge(size_t n, size_t size);

/* The whole file at path into a new buffer *out (*out_len bytes; the
 * caller frees it). PC_ERR_NOT_FOUND when it does not exist, PC_ERR_IO for
 * a directory or a failed read, PC_ERR_LIMIT for more than max_bytes,
 * PC_ERR_NOMEM; then *out is NULL. */
int pc_sys_read_file(const char *path, uint64_t max_bytes, unsigned char **out, size_t *out_len,
		     struct pc_error *err);

#endif
