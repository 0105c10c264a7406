/* A small test harness: TEST(name) registers a function at load time; the
 * runner (test_main.c) runs them all (or those whose name contains argv[1])
 * and ends with "N passed, N failed" for CI.
 *
 * CHECK records a failure and goes on; REQUIRE returns from the test. Float
 * comparisons take both tolerances: |a - b| <= atol + rtol * |b|. */
#ifndef PARACORR_TEST_H
#define PARACORR_TEST_H

#include <math.h>
#include <stdio.h>

struct pc_test {
	const char *name;
	int failures;
	int skipped;
};

typedef void (*pc_test_fn)(struct pc_test *t);
void pc_test_register(const char *name, pc_test_fn fn);
void pc_test_fail(struct pc_test *t, const char *file, int line, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
void pc_test_skip(struct pc_test *t, const char *why);
/* Whether this run selected every test whose name starts with prefix
 * (tests run in name order, so a test named after them runs last). */
int pc_test_ran_all(const char *prefix);

/* Path of a test fixture file relative to the project root. */
const char *pc_test_root(void);

/* The committed fixtures, and Debian's Fashion-MNIST test set, relative to
 * pc_test_root(). */
#define FIX "tests/reference/fixtures/"
#define T10K_X "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz"
#define T10K_Y "/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz"

#define TEST(fn)                                                                                                  \
	static void fn(struct pc_test *t);                                                                        \
	__attribute__((constructor)) static void fn##_register(void)                                              \
	{                                                                                                         \
		pc_test_register(#fn, fn);                                                                        \
	}                                                                                                         \
	static void fn(struct pc_test *t)

#define CHECK(cond)                                                                                               \
	do {                                                                                                      \
		if (!(cond))                                                                                      \
			pc_test_fail(t, __FILE__, __LINE__, "CHECK(%s)", #cond);                                  \
	} while (0)

#define CHECK_MSG(cond, ...)                                                                                      \
	do {                                                                                                      \
		if (!(cond))                                                                                      \
			pc_test_fail(t, __FILE__, __LINE__, __VA_ARGS__);                                         \
	} while (0)

#define REQUIRE(cond)                                                                                             \
	do {                                                                                                      \
		if (!(cond)) {                                                                                    \
			pc_test_fail(t, __FILE__, __LINE__, "REQUIRE(%s)", #cond);                                \
			return;                                                                                   \
		}                                                                                                 \
	} while (0)

#define REQUIRE_MSG(cond, ...)                                                                                    \
	do {                                                                                                      \
		if (!(cond)) {                                                                                    \
			pc_test_fail(t, __FILE__, __LINE__, __VA_ARGS__);                                         \
			return;                                                                                   \
		}                                                                                                 \
	} while (0)

#define CHECK_INT(a, b)                                                                                           \
	do {                                                                                                      \
		long long a_ = (long long)(a), b_ = (long long)(b);                                               \
		if (a_ != b_)                                                                                     \
			pc_test_fail(t, __FILE__, __LINE__, "%s == %lld, expected %s == %lld", #a, a_, #b, b_);    \
	} while (0)

#define CHECK_CLOSE(a, b, atol, rtol)                                                                             \
	do {                                                                                                      \
		double a_ = (double)(a), b_ = (double)(b);                                                        \
		if (!(fabs(a_ - b_) <= (atol) + (rtol)*fabs(b_)))                                                 \
			pc_test_fail(t, __FILE__, __LINE__, "%s = %.9g, expected %s = %.9g (atol %g, rtol %g)", #a, \
				     a_, #b, b_, (double)(atol), (double)(rtol));                                 \
	} while (0)

#endif
