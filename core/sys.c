/* sys: the operating-system helpers of sys.h. */
#include "paracorr/sys.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>

double pc_sys_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Sized by fstat when the file is regular, grown by doubling when it is not
 * (a pipe), and checked against max_bytes while reading either way. */
int pc_sys_read_file(const char *path, uint64_t max_bytes, unsigned char **out, size_t *out_len, struct pc_error *err)
{
	FILE *f;
	struct stat st;
	unsigned char *buf = NULL, *nb;
	size_t cap = 1 << 16, used = 0;
	int rc;

	*out = NULL;
	*out_len = 0;
	f = fopen(path, "rb");
	if (!f)
		return pc_error_set(err, errno == ENOENT ? PC_ERR_NOT_FOUND : PC_ERR_IO, path, "cannot open: %s",
				    strerror(errno));
	if (fstat(fileno(f), &st) == 0) {
		if (S_ISDIR(st.st_mode)) {
			rc = pc_error_set(err, PC_ERR_IO, path, "is a directory");
			goto fail;
		}
		if (S_ISREG(st.st_mode)) {
			if ((uint64_t)st.st_size > max_bytes) {
				rc = pc_error_set(err, PC_ERR_LIMIT, path,
						  "file has %lld bytes; at most %llu are accepted",
						  (long long)st.st_size, (unsigned long long)max_bytes);
				goto fail;
			}
			cap = (size_t)st.st_size + 1; /* +1 so EOF is seen without growing */
		}
	}
	buf = pc_sys_malloc_huge(cap);
	if (!buf) {
		rc = pc_error_set(err, PC_ERR_NOMEM, path, "cannot allocate %zu bytes to read the file", cap);
		goto fail;
	}
	for (;;) {
		size_t got = fread(buf + used, 1, cap - used, f);
		used += got;
		if (used > max_bytes) {
			rc = pc_error_set(err, PC_ERR_LIMIT, path, "file has more than %llu bytes",
					  (unsigned long long)max_bytes);
			goto fail;
		}
		if (got == 0 || used < cap) {
			if (ferror(f)) {
				rc = pc_error_set(err, PC_ERR_IO, path, "cannot read: %s", strerror(errno));
				goto fail;
			}
			if (feof(f))
				break;
			continue;
		}
		if (cap > SIZE_MAX / 2) {
			rc = pc_error_set(err, PC_ERR_LIMIT, path, "file does not fit in memory");
			goto fail;
		}
		nb = realloc(buf, cap * 2);
		if (!nb) {
			rc = pc_error_set(err, PC_ERR_NOMEM, path, "cannot allocate %zu bytes to read the file",
					  cap * 2);
			goto fail;
		}
		buf = nb;
		cap *= 2;
		pc_sys_advise_huge(buf, cap);
	}
	fclose(f);
	*out = buf;
	*out_len = used;
	return PC_OK;
fail:
	free(buf);
	fclose(f);
	return rc;
}


#define HUGE_PAGE ((uintptr_t)2 << 20)

void *pc_sys_malloc_huge(size_t bytes)
{
	void *p;

	if (bytes < PC_SYS_HUGE_MIN)
		return malloc(bytes ? bytes : 1);
	/* aligned, so that a block of a few huge pages is all whole ones;
	 * posix_memalign, since aligned_alloc wants the size a multiple of
	 * the alignment */
	if (posix_memalign(&p, HUGE_PAGE, bytes) != 0)
		return NULL;
	pc_sys_advise_huge(p, bytes);
	return p;
}

void *pc_sys_calloc_huge(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size ? size : 1);

	/* calloc does not touch a fresh mapping: the advice comes in time */
	if (p && size && n >= PC_SYS_HUGE_MIN / size)
		pc_sys_advise_huge(p, n * size);
	return p;
}

void pc_sys_advise_huge(void *p, size_t bytes)
{
#ifdef MADV_HUGEPAGE
	uintptr_t lo = ((uintptr_t)p + HUGE_PAGE - 1) & ~(HUGE_PAGE - 1);
	uintptr_t hi = ((uintptr_t)p + bytes) & ~(HUGE_PAGE - 1);

	if (p && hi > lo)
		(void)madvise((void *)lo, hi - lo, MADV_HUGEPAGE);
#else
	(void)p;
	(void)bytes;
#endif
}
