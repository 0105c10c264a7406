/* allocfail: fail the nth allocation, for every n, as SQLite's test
 * allocator does, so that every out-of-memory path of the core runs.
 *
 * Mechanism: the test binary alone is linked with -Wl,--wrap=malloc,...
 * (Makefile, AF_WRAP), so every call to malloc, calloc, realloc, free,
 * aligned_alloc, posix_memalign, strdup and strndup in the core, server
 * and test objects goes to the __wrap_* below, which count it, fail it on
 * demand and otherwise call the C library's (__real_*). This needs no
 * change to the code under test and no hook in the production binaries
 * (paracorr and paracorrd are linked without --wrap and call malloc
 * directly), and it composes with ASan, whose malloc __real_malloc reaches.
 * A macro (#define malloc) would have to be in every core file; an
 * LD_PRELOAD interposer would fight ASan's own.
 *
 * Libraries allocate inside their own shared objects, which --wrap does
 * not reach; those whose allocator can be plugged get one from the core
 * that calls malloc and free there, and so comes here too: jansson (the
 * spec parser, safetensors headers, the report; json_set_alloc_funcs in
 * core/report.c), protobuf-c (the ONNX loader's ProtobufCAllocator in
 * core/onnx.c) and zlib (gzip datasets: zalloc in core/data.c). The core
 * needs those allocators anyway, to tell a failed allocation from a bad
 * file. What the C library allocates for itself (a FILE's buffer) and
 * OpenBLAS's buffers are not counted.
 *
 * Live blocks: while armed, every block handed out is kept in a set, and
 * removed when it is freed or reallocated; what remains at disarm was
 * leaked by the run (or kept in a global). The set holds the pointers
 * scrambled, and is emptied at disarm, so that it never hides a leak from
 * LeakSanitizer in the sanitizer build. Outside an armed run the wrappers
 * only pass calls on. */
#include "allocfail.h"

#include <errno.h>
#include <execinfo.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void *__real_malloc(size_t n);
void *__real_calloc(size_t k, size_t n);
void *__real_realloc(void *p, size_t n);
void __real_free(void *p);
void *__real_aligned_alloc(size_t align, size_t n);
int __real_posix_memalign(void **p, size_t align, size_t n);
char *__real_strdup(const char *s);
char *__real_strndup(const char *s, size_t n);

void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t k, size_t n);
void *__wrap_realloc(void *p, size_t n);
void __wrap_free(void *p);
void *__wrap_aligned_alloc(size_t align, size_t n);
int __wrap_posix_memalign(void **p, size_t align, size_t n);
char *__wrap_strdup(const char *s);
char *__wrap_strndup(const char *s, size_t n);

/* Sweeps stop here rather than loop for ever on a target whose allocation
 * count never ends (a bug in the target, not a size anyone needs). */
#define AF_MAX_RUNS 1000000L
/* scrambles the pointers the set keeps, so that they do not look like
 * references to LeakSanitizer */
#define AF_SCRAMBLE ((uintptr_t)0x5a5a5a5a5a5a5a5aull)

static struct {
	pthread_mutex_t lock;
	int armed;
	long nth, count;
	int injected;
	/* the live set: open addressing, linear probing, 0 empty, 1 deleted */
	uintptr_t *slot;
	size_t cap, used, filled;
} af = {.lock = PTHREAD_MUTEX_INITIALIZER};

static size_t af_hash(uintptr_t k)
{
	k ^= k >> 33;
	k *= 0xff51afd7ed558ccdull;
	k ^= k >> 33;
	return (size_t)k;
}

/* Room for one more key; 0 when the set cannot grow (then the block is not
 * tracked, and the run's live count is short: reported by the sweep). */
static int af_reserve(void)
{
	uintptr_t *old = af.slot;
	size_t old_cap = af.cap, cap = af.cap ? af.cap : 1024;

	if ((af.filled + 1) * 2 <= af.cap)
		return 1;
	if (af.used * 4 >= cap)
		cap *= 2;
	if (!(af.slot = __real_calloc(cap, sizeof(*af.slot)))) {
		af.slot = old;
		return 0;
	}
	af.cap = cap;
	af.used = af.filled = 0;
	for (size_t i = 0; i < old_cap; i++)
		if (old[i] > 1) {
			size_t j = af_hash(old[i]) & (cap - 1);
			while (af.slot[j])
				j = (j + 1) & (cap - 1);
			af.slot[j] = old[i];
			af.used++;
			af.filled++;
		}
	__real_free(old);
	return 1;
}

static void af_track(void *p)
{
	uintptr_t k = (uintptr_t)p ^ AF_SCRAMBLE;
	size_t j;

	if (!p || !af_reserve())
		return;
	j = af_hash(k) & (af.cap - 1);
	while (af.slot[j] > 1)
		j = (j + 1) & (af.cap - 1);
	if (!af.slot[j])
		af.filled++;
	af.slot[j] = k;
	af.used++;
}

/* Whether p was tracked; forgets it. */
static int af_untrack(void *p)
{
	uintptr_t k = (uintptr_t)p ^ AF_SCRAMBLE;

	if (!p || !af.cap)
		return 0;
	for (size_t j = af_hash(k) & (af.cap - 1); af.slot[j]; j = (j + 1) & (af.cap - 1))
		if (af.slot[j] == k) {
			af.slot[j] = 1;
			af.used--;
			return 1;
		}
	return 0;
}

/* Counts one allocation; whether it must fail. Called with the lock held. */
static int af_fail_now(void)
{
	if (!af.armed)
		return 0;
	if (++af.count != af.nth)
		return 0;
	af.injected = 1;
	/* AF_BACKTRACE=1: where each injected failure happens, to find the
	 * path that mishandled it */
	if (getenv("AF_BACKTRACE")) {
		void *frames[32];
		fprintf(stderr, "allocfail: failing allocation %ld:\n", af.nth);
		backtrace_symbols_fd(frames, backtrace(frames, 32), 2);
	}
	errno = ENOMEM;
	return 1;
}

void *__wrap_malloc(size_t n)
{
	void *p = NULL;

	pthread_mutex_lock(&af.lock);
	if (!af_fail_now() && (p = __real_malloc(n)) && af.armed)
		af_track(p);
	pthread_mutex_unlock(&af.lock);
	return p;
}

void *__wrap_calloc(size_t k, size_t n)
{
	void *p = NULL;

	pthread_mutex_lock(&af.lock);
	if (!af_fail_now() && (p = __real_calloc(k, n)) && af.armed)
		af_track(p);
	pthread_mutex_unlock(&af.lock);
	return p;
}

void *__wrap_realloc(void *p, size_t n)
{
	void *q = NULL;
	int tracked;

	pthread_mutex_lock(&af.lock);
	/* a failed realloc leaves p allocated, as the C library's does */
	if (!af_fail_now()) {
		tracked = af.armed && af_untrack(p);
		q = __real_realloc(p, n);
		if (q && af.armed && (tracked || !p))
			af_track(q);
		else if (!q && tracked && n)
			af_track(p);
	}
	pthread_mutex_unlock(&af.lock);
	return q;
}

void __wrap_free(void *p)
{
	if (!p)
		return;
	pthread_mutex_lock(&af.lock);
	if (af.armed)
		af_untrack(p);
	pthread_mutex_unlock(&af.lock);
	__real_free(p);
}

void *__wrap_aligned_alloc(size_t align, size_t n)
{
	void *p = NULL;

	pthread_mutex_lock(&af.lock);
	if (!af_fail_now() && (p = __real_aligned_alloc(align, n)) && af.armed)
		af_track(p);
	pthread_mutex_unlock(&af.lock);
	return p;
}

int __wrap_posix_memalign(void **p, size_t align, size_t n)
{
	int rc = ENOMEM;

	pthread_mutex_lock(&af.lock);
	if (!af_fail_now() && (rc = __real_posix_memalign(p, align, n)) == 0 && af.armed)
		af_track(*p);
	pthread_mutex_unlock(&af.lock);
	return rc;
}

char *__wrap_strdup(const char *s)
{
	char *p = NULL;

	pthread_mutex_lock(&af.lock);
	if (!af_fail_now() && (p = __real_strdup(s)) && af.armed)
		af_track(p);
	pthread_mutex_unlock(&af.lock);
	return p;
}

char *__wrap_strndup(const char *s, size_t n)
{
	char *p = NULL;

	pthread_mutex_lock(&af.lock);
	if (!af_fail_now() && (p = __real_strndup(s, n)) && af.armed)
		af_track(p);
	pthread_mutex_unlock(&af.lock);
	return p;
}

void af_arm(long nth)
{
	pthread_mutex_lock(&af.lock);
	af.armed = 1;
	af.nth = nth;
	af.count = 0;
	af.injected = 0;
	pthread_mutex_unlock(&af.lock);
}

struct af_run af_disarm(void)
{
	struct af_run r;

	pthread_mutex_lock(&af.lock);
	af.armed = 0;
	r.allocations = af.count;
	r.injected = af.injected;
	r.live = (long)af.used;
	if (af.cap)
		memset(af.slot, 0, af.cap * sizeof(*af.slot));
	af.used = af.filled = 0;
	pthread_mutex_unlock(&af.lock);
	return r;
}

long af_sweep(struct pc_test *t, const char *what, af_target_fn fn, void *arg)
{
	for (long n = 1; n <= AF_MAX_RUNS; n++) {
		struct pc_error err = {0};
		char msg[800];
		struct af_run r;
		int rc;

		af_arm(n);
		rc = fn(arg, &err);
		r = af_disarm();
		if (r.live != 0)
			pc_test_fail(t, __FILE__, __LINE__, "%s: failing allocation %ld: %ld blocks still live after the run",
				     what, n, r.live);
		if (!r.injected) {
			/* the run that needed fewer than n allocations: complete */
			if (rc != PC_OK)
				pc_test_fail(t, __FILE__, __LINE__, "%s: the run without a failure returned %s: %s", what,
					     pc_status_name(rc), pc_error_format(&err, msg, sizeof(msg)));
			fprintf(stderr, "  %s: %s: %ld allocations, each failed in turn\n", t->name, what, n - 1);
			return t->failures ? -1 : n - 1;
		}
		if (rc != PC_ERR_NOMEM || err.code != PC_ERR_NOMEM || !err.text[0]) {
			pc_test_fail(t, __FILE__, __LINE__,
				     "%s: failing allocation %ld of %ld: returned %s (err %s: %s), expected nomem with a "
				     "message",
				     what, n, r.allocations, pc_status_name(rc), pc_status_name(err.code),
				     pc_error_format(&err, msg, sizeof(msg)));
		}
		/* one broken path is enough to read; the rest would repeat it */
		if (t->failures >= 10)
			return -1;
	}
	pc_test_fail(t, __FILE__, __LINE__, "%s: still allocating after %ld runs", what, AF_MAX_RUNS);
	return -1;
}
