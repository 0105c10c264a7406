/* allocfail: the tests' allocation-failure injector (see allocfail.c).
 *
 * af_sweep runs a target again and again, failing its 1st allocation, then
 * its 2nd, ... until a run reaches no injected failure; each failed run
 * must return PC_ERR_NOMEM with a message and free everything it made. */
#ifndef PARACORR_TEST_ALLOCFAIL_H
#define PARACORR_TEST_ALLOCFAIL_H

#include "paracorr/error.h"
#include "test.h"

/* A run of the code under test: it returns a PC_ERR_* code, fills err, and
 * frees everything it allocated before it returns, success or not. */
typedef int (*af_target_fn)(void *arg, struct pc_error *err);

/* What one armed run did. */
struct af_run {
	long allocations; /* allocation calls counted while armed */
	int injected;	  /* the nth was reached and failed */
	long live;	  /* blocks allocated while armed and not freed at disarm */
};

/* Counts allocations from now on and fails the nth (n >= 1; 0: none). */
void af_arm(long nth);
/* Stops counting and says what the run did; forgets the blocks it kept. */
struct af_run af_disarm(void);

/* The sweep described above, over every n; failures are recorded on t
 * naming `what` and n. Returns the allocations of the complete run (the
 * number of runs that injected a failure), or -1 when the sweep broke off. */
long af_sweep(struct pc_test *t, const char *what, af_target_fn fn, void *arg);

#endif
